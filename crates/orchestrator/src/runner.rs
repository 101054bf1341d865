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
                "{me} is not an active orchestrator on {}: register it first",
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
        let anchor = chain
            .provider()
            .get_block_by_number(config.start_block.into())
            .await
            .map_err(|e| Error::Config(format!("reading block {}: {e}", config.start_block)))?
            .ok_or_else(|| {
                Error::Config(format!(
                    "the chain at {} has no block {} (the start block): is it the right chain?",
                    config.rpc_url, config.start_block
                ))
            })?;
        ledger
            .claim_deployment(&LedgerDeployment {
                chain_id,
                contract: config.contract,
                anchor_block: config.start_block,
                anchor_hash: anchor.header.hash,
            })
            .await?;
        if let GrantSource::Indexer { url } = &config.grants {
            // An indexer of another deployment is a configuration error: refuse to start. One
            // that does not answer yet is waited for (it is re-checked on every connection).
            match check_follows(&reqwest::Client::new(), url, deployment).await {
                Err(e @ FollowsError::Other { .. }) => return Err(Error::Config(e.to_string())),
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
