//! The orchestrator process: follows grants (through the indexer by default, see
//! [`crate::grants`]), drives each job on its own task, resumes unfinished jobs from the ledger
//! on start.

use crate::grants::{GrantSource, follow_indexer};
use crate::job::{Ctx, drive};
use crate::ledger::{Ledger, LedgerDeployment};
use crate::provider::ComputeProvider;
use crate::{Error, Result};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use licen_chain::{DataPolicyClient, connect};
use licen_crypto::envelope::SecretKey;
use licen_indexer::{Deployment, FollowsError, check_follows};
use licen_storage::client::StorageClient;
use licen_types::JobId;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How to run an orchestrator.
pub struct OrchestratorConfig {
    /// Chain RPC URL.
    pub rpc_url: String,
    /// DataPolicy address.
    pub contract: alloy::primitives::Address,
    /// Block to start following grants from (the deployment block).
    pub start_block: u64,
    /// Where grants are learnt of (the indexer, or the chain's logs directly).
    pub grants: GrantSource,
    /// The orchestrator's wallet (registered on-chain).
    pub signer: PrivateKeySigner,
    /// The orchestrator's X25519 secret key (its public key is registered on-chain).
    pub key: SecretKey,
    /// Storage endpoint (envelopes, manifests).
    pub storage_url: String,
    /// Where compute nodes come from.
    pub provider: Arc<dyn ComputeProvider>,
    /// The ledger database file.
    pub ledger_path: PathBuf,
    /// How often to poll the chain and nodes.
    pub poll: Duration,
    /// Wait between attempts on an unreachable compute node; after
    /// [`NODE_ATTEMPTS`] unreachable attempts in a row the job is failed (full refund).
    pub node_retry_delay: Duration,
}

/// Compute-node attempts per job (failed tasks, or the node unreachable) before `failJob`.
pub const NODE_ATTEMPTS: u32 = 3;

/// A running orchestrator.
pub struct Orchestrator {
    ledger: Ledger,
    shutdown: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Orchestrator {
    /// Starts following grants and resumes every unfinished job in the ledger.
    pub async fn start(config: OrchestratorConfig) -> Result<Self> {
        let ledger = Ledger::open(&config.ledger_path).await?;
        let me = config.signer.address();
        let chain = DataPolicyClient::new(
            connect(&config.rpc_url, Some(config.signer))?,
            config.contract,
        );
        let (_, active) = chain.orchestrator_key(me).await?;
        if !active {
            return Err(Error::Config(format!(
                "{me} is not an active orchestrator on {}: the contract's admin must register it \
                 with its X25519 public key (`registerOrchestrator(address,bytes32)`) first",
                config.contract
            )));
        }
        let chain_id = chain.provider().get_chain_id().await.map_err(|e| {
            Error::Config(format!("asking {} for its chain id: {e}", config.rpc_url))
        })?;
        let deployment = Deployment {
            chain_id,
            contract: config.contract,
        };
        check_ledger(
            &ledger,
            &chain,
            config.contract,
            chain_id,
            config.start_block,
        )
        .await?;
        if let GrantSource::Indexer { url } = &config.grants {
            // An indexer of another deployment is a configuration error: refuse to start. One
            // that does not answer yet is waited for (it is re-checked on every connection).
            match check_follows(&reqwest::Client::new(), url, deployment).await {
                // A current indexer names its deployment before it serves: one that names none
                // is of another kind or version, and will not start naming one.
                Err(e @ (FollowsError::Other { .. } | FollowsError::Unnamed { .. })) => {
                    return Err(Error::Config(e.to_string()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot check the indexer yet; waiting for it")
                }
                Ok(()) => {}
            }
        }
        let ctx = Arc::new(Ctx {
            chain,
            me,
            key: config.key,
            storage: StorageClient::new(&config.storage_url)?,
            provider: config.provider,
            ledger: ledger.clone(),
            poll: config.poll,
            node_attempts: NODE_ATTEMPTS,
            node_retry_delay: config.node_retry_delay,
            unreachable: Mutex::default(),
            gave_up: Mutex::default(),
        });
        let (shutdown, mut stop) = tokio::sync::watch::channel(false);
        let start_block = config.start_block;
        let poll = config.poll;
        let wake = Arc::new(tokio::sync::Notify::new());
        let follower = match config.grants {
            GrantSource::Indexer { url } => Some(tokio::spawn(follow_indexer(
                ledger.clone(),
                url,
                deployment,
                start_block,
                Arc::clone(&wake),
                shutdown.subscribe(),
                poll.max(Duration::from_millis(500)),
            ))),
            GrantSource::Chain => None,
        };
        let from_chain = follower.is_none();
        let task = tokio::spawn(async move {
            let active: Arc<Mutex<HashSet<JobId>>> = Arc::default();
            let mut jobs = tokio::task::JoinSet::new();
            // Resume what a previous run left unfinished.
            match ctx.ledger.unfinished().await {
                Ok(rows) => {
                    for row in rows {
                        spawn_job(&ctx, &active, &mut jobs, row);
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot read the ledger"),
            }
            loop {
                if let Err(e) = follow_once(&ctx, &active, &mut jobs, start_block, from_chain).await
                {
                    tracing::warn!(error = %e, "following grants failed; retrying");
                }
                while let Some(done) = jobs.try_join_next() {
                    if let Err(e) = done {
                        tracing::error!(error = %e, "a job task panicked");
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(poll) => {}
                    () = wake.notified() => {}
                    _ = stop.changed() => break,
                }
            }
            jobs.shutdown().await;
            if let Some(follower) = follower {
                let _ = follower.await;
            }
        });
        Ok(Self {
            ledger,
            shutdown,
            task,
        })
    }

    /// The ledger (for status and tests).
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Stops following and abandons in-flight steps; the ledger lets the next start resume.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

async fn follow_once(
    ctx: &Arc<Ctx>,
    active: &Arc<Mutex<HashSet<JobId>>>,
    jobs: &mut tokio::task::JoinSet<()>,
    start_block: u64,
    from_chain: bool,
) -> Result<()> {
    if from_chain {
        let head = ctx.chain.block_number().await?;
        let from = ctx.ledger.cursor().await?.map_or(start_block, |c| c + 1);
        if from <= head {
            let grants = ctx.chain.grants(from, head).await?;
            ctx.ledger.record_grants(&grants, head).await?;
        }
    }
    // Drive every unfinished job not already being driven (new grants, and jobs whose driver
    // stopped on a transient error).
    for row in ctx.ledger.unfinished().await? {
        spawn_job(ctx, active, jobs, row);
    }
    Ok(())
}

fn spawn_job(
    ctx: &Arc<Ctx>,
    active: &Arc<Mutex<HashSet<JobId>>>,
    jobs: &mut tokio::task::JoinSet<()>,
    row: crate::ledger::LedgerJob,
) {
    if !active.lock().expect("job set poisoned").insert(row.job) {
        return;
    }
    let (ctx, active) = (Arc::clone(ctx), Arc::clone(active));
    jobs.spawn(async move {
        let id = row.job;
        if let Err(e) = drive(&ctx, row).await {
            // Transient (RPC, node unreachable): the next follow round drives it again.
            tracing::warn!(job = %id, error = %e, "job step failed; will retry");
        }
        active.lock().expect("job set poisoned").remove(&id);
    });
}

/// The ledger must hold this deployment's jobs: the same contract and chain, a chain that still
/// has the block the ledger anchored on, and one that did not lose the jobs the ledger acted on.
async fn check_ledger(
    ledger: &Ledger,
    chain: &DataPolicyClient,
    contract: alloy::primitives::Address,
    chain_id: u64,
    start_block: u64,
) -> Result<()> {
    let block_hash = |number: u64| async move {
        chain
            .provider()
            .get_block_by_number(number.into())
            .await
            .map(|block| block.map(|b| b.header.hash))
            .map_err(|e| Error::Config(format!("reading block {number}: {e}")))
    };
    let other = |why: String| {
        Err(Error::Config(format!(
            "{why}: its job ids would be taken for this deployment's. Give this deployment its own \
             ledger (`--ledger`), or delete this one if its chain is gone"
        )))
    };
    match ledger.deployment().await? {
        None => {
            let anchor_hash = block_hash(start_block).await?.ok_or_else(|| {
                Error::Config(format!(
                    "the chain has no block {start_block} (the start block): is it the right chain?"
                ))
            })?;
            ledger
                .record_deployment(&LedgerDeployment {
                    chain_id,
                    contract,
                    anchor_block: start_block,
                    anchor_hash,
                })
                .await?;
        }
        Some(held) if held.chain_id != chain_id || held.contract != contract => {
            return other(format!(
                "this ledger records the jobs of DataPolicy {} on chain {}, not {contract} on chain \
                 {chain_id}",
                held.contract, held.chain_id
            ));
        }
        Some(held) => {
            let now = block_hash(held.anchor_block).await?;
            if now != Some(held.anchor_hash) {
                return other(format!(
                    "this ledger records jobs of a chain whose block {} was {}, but this chain has {} \
                     there: it belongs to a chain that was replaced",
                    held.anchor_block,
                    held.anchor_hash,
                    now.map_or_else(|| "no such block".to_owned(), |h| h.to_string())
                ));
            }
        }
    }
    let next = chain.next_job_id().await?;
    if let Some(highest) = ledger.acted_beyond(next).await? {
        return other(format!(
            "this ledger acted on job {highest}, but the chain's next job id is {next}: the chain \
             lost blocks the ledger saw (rolled back, e.g. a node killed before it saved its state)"
        ));
    }
    Ok(())
}
