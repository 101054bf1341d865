//! The orchestrator process: follows grants (through the indexer by default, see
//! [`crate::grants`]), drives each job on its own task, resumes unfinished jobs from the ledger
//! on start.
//!
//! Replicas: every orchestrator process sharing a ledger is a replica, and only the one holding
//! the ledger's lease ([`Ledger::lead`]) follows grants and drives jobs; the others stand by.
//! The leader renews its lease every quarter of it, on a task of its own, and treats itself as
//! leading only until three quarters of the lease after the last renewal began (a local
//! monotonic deadline the job drivers check before every transaction and key release), so a
//! leader cut off from the database, or paused between steps, stops acting before another can
//! take over. A standby takes over when the leader resigns (a clean stop), when its lease runs
//! out, or at once when it is a process of this machine that no longer exists
//! ([`crate::replica`]). Every step re-reads the chain first, so a job handed over mid-way is
//! resumed, never repeated.
//!
//! The lease alone is not a fence: a leader paused after its last check and before its
//! transaction (SIGSTOP, a VM pause) would still send that transaction when it resumes,
//! possibly after a standby took over, and a `failJob` of a job the new leader runs would
//! succeed. So the wallet's nonce is the fence: every replica connects with fenced nonces
//! ([`licen_chain::connect_fenced`]) and, on taking the lead, sends one transaction of its own
//! before acting ([`licen_chain::DataPolicyClient::fence_account`]). A transaction the old
//! leader signs afterwards carries a nonce the fence used, so it can never be mined, and the
//! old leader does not re-read the nonce and send anyway: its client refuses
//! ([`licen_chain::Error::AccountUsedElsewhere`]), and a replica that meets that refusal stops
//! driving jobs and drives them again only while the ledger still names it leader, fencing
//! afresh. What remains are transactions already sent when the fence is sent: they were on
//! their way, and the contract's state machine decides them, as for any single send.
//!
//! The lease relies on the database's wall clock (expiry) and this process's monotonic clock
//! (its own deadline); a clock that steps forward by more than a quarter lease can let two
//! replicas lead at once (each then fences the wallet, and the first transaction of one after
//! the other's fence is refused). Keep clocks slewed, not stepped.

use crate::grants::{GrantSource, IndexerFeed, follow_indexer};
use crate::job::{Ctx, drive};
use crate::ledger::{Lead, Ledger, LedgerDeployment};
use crate::provider::ComputeProvider;
use crate::replica::{is_gone, replica_name};
use crate::{Error, Result};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use licen_chain::{DataPolicyClient, connect_fenced};
use licen_crypto::envelope::SecretKey;
use licen_indexer::{Deployment, FollowsError, check_follows};
use licen_storage::StorageEndpoint;
use licen_types::JobId;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where the ledger is.
#[derive(Debug, Clone)]
pub enum LedgerLocation {
    /// A SQLite file (created when missing).
    File(PathBuf),
    /// A database URL: `sqlite:<path>` or `postgres://user@host/db` (shared by replicas on
    /// several hosts).
    Url(String),
}

impl LedgerLocation {
    async fn open(&self) -> Result<Ledger> {
        match self {
            Self::File(path) => Ledger::open(path).await,
            Self::Url(url) => Ledger::connect(url).await,
        }
    }
}

/// How long a replica's lead lasts without renewal, unless configured.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);

/// Until when this replica may act (a monotonic deadline; `None` while it stands by).
#[derive(Debug, Default)]
pub(crate) struct LeaseClock(Mutex<Option<Instant>>);

impl LeaseClock {
    /// Ok while this replica leads; checked before every transaction and key release.
    pub(crate) fn check(&self) -> Result<()> {
        match *self.0.lock().expect("lease clock poisoned") {
            Some(until) if Instant::now() < until => Ok(()),
            _ => Err(Error::NotLeading),
        }
    }

    fn set(&self, until: Option<Instant>) {
        *self.0.lock().expect("lease clock poisoned") = until;
    }
}

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
    /// Where key envelopes and manifests are read (a zgs node, or a 0G storage indexer's
    /// nodes).
    pub storage: StorageEndpoint,
    /// Where compute nodes come from.
    pub provider: Arc<dyn ComputeProvider>,
    /// The ledger database.
    pub ledger: LedgerLocation,
    /// How long this replica's lead lasts without renewal ([`DEFAULT_LEASE`]); a standby
    /// takes over a replica that stopped renewing after at most this long.
    pub lease: Duration,
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
    replica: String,
    leader_at_start: Option<(String, Duration)>,
    shutdown: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Orchestrator {
    /// Starts following grants and resumes every unfinished job in the ledger.
    pub async fn start(config: OrchestratorConfig) -> Result<Self> {
        let ledger = config.ledger.open().await?;
        let me = config.signer.address();
        let chain = DataPolicyClient::new(
            connect_fenced(&config.rpc_url, config.signer)?,
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
            match check_follows(
                &reqwest::Client::new(),
                url,
                deployment,
                Some(&config.rpc_url),
            )
            .await
            {
                // A current indexer names its deployment before it serves: one that names none
                // is of another kind or version, and will not start naming one.
                Err(
                    e @ (FollowsError::Other { .. }
                    | FollowsError::Unnamed { .. }
                    | FollowsError::Replaced { .. }),
                ) => {
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
            storage: config.storage.connect()?,
            provider: config.provider,
            ledger: ledger.clone(),
            poll: config.poll,
            node_attempts: NODE_ATTEMPTS,
            node_retry_delay: config.node_retry_delay,
            unreachable: Mutex::default(),
            lease: LeaseClock::default(),
            wallet_lost: tokio::sync::watch::Sender::new(false),
        });
        let (shutdown, mut stop) = tokio::sync::watch::channel(false);
        let term = Term {
            ctx,
            grants: config.grants,
            deployment,
            start_block: config.start_block,
            poll: config.poll,
            lease: config.lease,
        };
        let holder = replica_name();
        // The first attempt before returning, so the caller can say which role it started in.
        let (mut held, leader_at_start) = match term.try_lead(&holder).await? {
            Attempt::Held(held) => (Some(held), None),
            Attempt::Elsewhere { leader, expires_in } => (None, Some((leader, expires_in))),
        };
        let replica = holder.clone();
        let task = tokio::spawn(async move {
            while let Some(term_held) = match held.take() {
                Some(held) => Some(held),
                None => stand_by(&term, &holder, &mut stop).await,
            } {
                let stopped = term.lead(&holder, term_held, &mut stop).await;
                term.ctx.lease.set(None);
                if stopped {
                    break;
                }
            }
            match term.ctx.ledger.resign(&holder).await {
                Ok(()) => tracing::info!(
                    "stopping: the lead, if this replica held it, is released to a standby"
                ),
                Err(e) => tracing::warn!(
                    error = %e,
                    "could not release the lead; a standby takes over when the lease runs out"
                ),
            }
        });
        Ok(Self {
            ledger,
            replica,
            leader_at_start,
            shutdown,
            task,
        })
    }

    /// This replica's name in the ledger's lease.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// The replica that led when this one started, if not this one (it then stands by), and
    /// how long its lease still ran: the longest this one waits should the leader stop renewing.
    pub fn leader_at_start(&self) -> Option<(&str, Duration)> {
        self.leader_at_start
            .as_ref()
            .map(|(leader, left)| (leader.as_str(), *left))
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

/// What a replica needs to lead a term.
struct Term {
    ctx: Arc<Ctx>,
    grants: GrantSource,
    deployment: Deployment,
    start_block: u64,
    poll: Duration,
    lease: Duration,
}

/// One attempt at the lead.
enum Attempt {
    /// This replica leads, in this term.
    Held(u64),
    /// Another leads.
    Elsewhere {
        leader: String,
        expires_in: Duration,
    },
}

/// Waits until this replica holds the lead (its term), or `None` when told to stop first.
async fn stand_by(
    term: &Term,
    holder: &str,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Option<u64> {
    let mut announced = None;
    loop {
        // Bounded, and given up when told to stop: a leader paused inside a ledger
        // transaction holds its lock until it runs again.
        let attempt = tokio::select! {
            attempt = term.try_lead(holder) => attempt,
            _ = stop.changed() => return None,
        };
        match attempt {
            Ok(Attempt::Held(held)) => return Some(held),
            Ok(Attempt::Elsewhere { leader, expires_in }) => {
                if announced.as_deref() != Some(leader.as_str()) {
                    tracing::info!(
                        %leader,
                        lease_left_ms = u64::try_from(expires_in.as_millis()).unwrap_or(u64::MAX),
                        "another replica leads; standing by until it stops or its lease runs out"
                    );
                    announced = Some(leader);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the ledger's lease; retrying"),
        }
        tokio::select! {
            () = tokio::time::sleep(term.lease / 4) => {}
            _ = stop.changed() => return None,
        }
    }
}

impl Term {
    /// Takes the lead if it is free, ran out, or its holder's process is gone; sets the lease
    /// clock when it is this replica's.
    async fn try_lead(&self, holder: &str) -> Result<Attempt> {
        let asked = Instant::now();
        // Bounded: a leader paused inside a ledger transaction holds its lock until it runs
        // again. An attempt that outlasts the bound still completes on its own task.
        let busy = || Attempt::Elsewhere {
            leader: "unknown: the ledger did not answer in time (a paused replica may hold its \
                     lock)"
                .to_owned(),
            expires_in: self.lease,
        };
        let limit = self.lease / 4;
        let ledger = &self.ctx.ledger;
        let Some(mut lead) = ledger.lead_within(holder, self.lease, None, limit).await? else {
            return Ok(busy());
        };
        if let Lead::Elsewhere { holder: other, .. } = &lead
            && is_gone(other)
        {
            let Some(taken) = ledger
                .lead_within(holder, self.lease, Some(other), limit)
                .await?
            else {
                return Ok(busy());
            };
            lead = taken;
        }
        Ok(match lead {
            Lead::Held { term, took_over } => {
                self.ctx.lease.set(Some(asked + self.lease * 3 / 4));
                // Every ledger write of this term checks it still holds (kept after the term
                // ends, so a late write of a stopped driver is refused too).
                self.ctx.ledger.fence(holder, term, self.lease);
                match took_over {
                    Some((from, why)) => tracing::info!(
                        replica = holder,
                        term,
                        %from,
                        "this replica leads, taking over from the previous leader ({why}): \
                         following grants and driving jobs"
                    ),
                    None => tracing::info!(
                        replica = holder,
                        term,
                        "this replica leads: following grants and driving jobs"
                    ),
                }
                Attempt::Held(term)
            }
            Lead::Elsewhere { holder, expires_in } => Attempt::Elsewhere {
                leader: holder,
                expires_in,
            },
        })
    }

    /// Follows grants and drives jobs while this replica holds the lead; returns `true` when
    /// told to stop, `false` when the lead was lost (the caller stands by again).
    async fn lead(
        &self,
        holder: &str,
        held: u64,
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> bool {
        let ctx = &self.ctx;
        let (term_over, term_stop) = tokio::sync::watch::channel(false);
        let wake = Arc::new(tokio::sync::Notify::new());
        let follower = match &self.grants {
            GrantSource::Indexer { url } => Some(tokio::spawn(follow_indexer(
                ctx.ledger.clone(),
                IndexerFeed {
                    url: url.clone(),
                    deployment: self.deployment,
                    chain_rpc: ctx.chain.rpc().to_owned(),
                    start_block: self.start_block,
                },
                Arc::clone(&wake),
                term_stop,
                self.poll.max(Duration::from_millis(500)),
            ))),
            GrantSource::Chain => None,
        };
        let from_chain = follower.is_none();
        // Per term: drivers aborted when the term ends never clear their entries.
        let active: Arc<Mutex<HashSet<JobId>>> = Arc::default();
        let mut jobs = tokio::task::JoinSet::new();
        // Renewal runs on its own task: a slow round of grant-following or a ledger write
        // waiting for a lock must not starve it into losing the lead.
        let (lost, mut lead_lost) = tokio::sync::watch::channel(false);
        let renewer = tokio::spawn(renew(
            Arc::clone(ctx),
            holder.to_owned(),
            held,
            self.lease,
            lost,
        ));
        let fenced = self.fence_wallet(&mut lead_lost, stop).await;
        // Watched from here: the fence cleared it.
        let mut wallet_lost = ctx.wallet_lost.subscribe();
        let stopped = if let Some(stopped) = fenced {
            stopped
        } else {
            loop {
                if *wallet_lost.borrow_and_update() {
                    tracing::warn!(
                        "a transaction of this replica was refused: another process sent from the \
                         orchestrator's wallet while this replica led (a replica that took over, \
                         or the same key used elsewhere). It stops driving jobs, waits a moment, \
                         and drives them again only if the ledger still names it leader, fencing \
                         the wallet afresh; make sure only this deployment's replicas hold the key"
                    );
                    // Not at once: a key used elsewhere all the time would cost a fence per
                    // refusal.
                    tokio::select! {
                        () = tokio::time::sleep(self.lease / 4) => {}
                        _ = stop.changed() => break true,
                    }
                    break false;
                }
                if let Err(e) =
                    follow_once(ctx, &active, &mut jobs, self.start_block, from_chain).await
                {
                    tracing::warn!(error = %e, "following grants failed; retrying");
                }
                while let Some(done) = jobs.try_join_next() {
                    if let Err(e) = done {
                        tracing::error!(error = %e, "a job task panicked");
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(self.poll) => {}
                    () = wake.notified() => {}
                    _ = wallet_lost.changed() => {}
                    _ = lead_lost.changed() => break false,
                    _ = stop.changed() => break true,
                }
            }
        };
        renewer.abort();
        ctx.lease.set(None);
        jobs.shutdown().await;
        let _ = term_over.send(true);
        if let Some(follower) = follower {
            let _ = follower.await;
        }
        stopped
    }
}

impl Term {
    /// Holds the orchestrator's wallet before acting on any job: one transaction of this
    /// replica's own ([`DataPolicyClient::fence_account`]), after which no transaction a
    /// previous leader signed and has not sent yet can be mined (the lease alone cannot stop a
    /// leader paused between its last check and its send). `None` once fenced; `Some(stopped)`
    /// when told to stop, or when the lead was lost, first.
    async fn fence_wallet(
        &self,
        lead_lost: &mut tokio::sync::watch::Receiver<bool>,
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Option<bool> {
        let ctx = &self.ctx;
        ctx.wallet_lost.send_replace(false);
        loop {
            let attempt = tokio::select! {
                attempt = ctx.chain.fence_account() => attempt,
                _ = lead_lost.changed() => return Some(false),
                _ = stop.changed() => return Some(true),
            };
            match attempt {
                Ok(at) => {
                    tracing::info!(
                        nonce = at.nonce,
                        tx = %at.tx.tx_hash,
                        "fenced the orchestrator's wallet: no transaction an earlier leader signed \
                         and did not send can be mined now"
                    );
                    return None;
                }
                Err(e) => tracing::warn!(
                    error = %e,
                    "cannot fence the orchestrator's wallet yet (no job is driven until it is); \
                     retrying"
                ),
            }
            tokio::select! {
                () = tokio::time::sleep(self.poll.max(Duration::from_secs(1))) => {}
                _ = lead_lost.changed() => return Some(false),
                _ = stop.changed() => return Some(true),
            }
        }
    }
}

/// Renews `holder`'s lead (term `held`) every quarter lease, each attempt bounded by a quarter
/// lease; signals `lost` (and clears the lease clock) once another replica leads, the term
/// changed, or the lease ran out without a renewal.
async fn renew(
    ctx: Arc<Ctx>,
    holder: String,
    held: u64,
    lease: Duration,
    lost: tokio::sync::watch::Sender<bool>,
) {
    let mut tick = tokio::time::interval(lease / 4);
    tick.tick().await;
    loop {
        tick.tick().await;
        let asked = Instant::now();
        let outcome = ctx
            .ledger
            .lead_within(&holder, lease, None, lease / 4)
            .await;
        // `Err(())`: no answer within a quarter lease.
        let outcome = match outcome {
            Ok(Some(lead)) => Ok(Ok(lead)),
            Ok(None) => Err(()),
            Err(e) => Ok(Err(e)),
        };
        let why = match outcome {
            Ok(Ok(Lead::Held { term, .. })) if term == held => {
                ctx.lease.set(Some(asked + lease * 3 / 4));
                continue;
            }
            // The lease ran out and this replica took it again: another may have acted
            // in between, so the term starts over.
            Ok(Ok(Lead::Held { term, .. })) => {
                format!("this replica's lease had run out (now term {term}); it starts over")
            }
            Ok(Ok(Lead::Elsewhere { holder: other, .. })) => format!(
                "another replica took the lead ({}): this one stopped renewing in time; standing by",
                crate::replica::describe_replica(&other)
            ),
            Ok(Err(e)) if ctx.lease.check().is_err() => {
                format!("cannot renew the lead ({e}) and it ran out; standing by")
            }
            Err(_) if ctx.lease.check().is_err() => {
                "the ledger did not answer a renewal in time and the lead ran out; standing by"
                    .to_owned()
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot renew the lead yet; retrying");
                continue;
            }
            Err(_) => {
                tracing::warn!("the ledger did not answer a renewal in time; retrying");
                continue;
            }
        };
        ctx.lease.set(None);
        tracing::warn!("{why}");
        let _ = lost.send(true);
        return;
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
        match drive(&ctx, row).await {
            Ok(()) => {}
            // Another process holds the wallet now: the lead loop ends this term.
            Err(Error::Chain(licen_chain::Error::AccountUsedElsewhere(used))) => {
                tracing::warn!(job = %id, error = %used, "job step refused: the wallet is held elsewhere");
                ctx.wallet_lost.send_replace(true);
            }
            // Transient (RPC, node unreachable): the next follow round drives it again.
            Err(e) => tracing::warn!(job = %id, error = %e, "job step failed; will retry"),
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
