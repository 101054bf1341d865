//! Driving one job to its end. Every step first re-reads the job on-chain and is recorded in
//! the ledger after it happened, so the driver can be re-run from any point after a crash.

use crate::ledger::{Ledger, LedgerJob, Stage};
use crate::provider::ComputeProvider;
use crate::{Error, Result};
use alloy::primitives::{Address, B256};
use licen_chain::DataPolicyClient;
use licen_compute::attestation::{InsecureDevEvidence, VerifiedNode, verify_evidence};
use licen_compute::client::ComputeNodeClient;
use licen_compute::manifest::verify_result_manifest;
use licen_compute::node::{CreateJobRequest, FailureKind, TaskState};
use licen_crypto::envelope::{EnvelopeContext, SecretKey, reseal_key};
use licen_storage::Storage;
use licen_types::{JobId, JobState};
use std::sync::Arc;
use std::time::Duration;

/// What every job driver shares.
pub(crate) struct Ctx {
    pub(crate) chain: DataPolicyClient,
    pub(crate) me: Address,
    pub(crate) key: SecretKey,
    pub(crate) storage: Storage,
    pub(crate) provider: Arc<dyn ComputeProvider>,
    pub(crate) ledger: Ledger,
    pub(crate) poll: Duration,
    /// Fresh node tasks tried for retryable failures before giving up with `failJob`.
    pub(crate) node_attempts: u32,
    /// Wait after a compute-node error before the job is driven again.
    pub(crate) node_retry_delay: Duration,
    /// Compute-node errors (unreachable, refused) per job since this process started.
    pub(crate) unreachable: std::sync::Mutex<std::collections::HashMap<JobId, u32>>,
    /// Whether this replica still leads: checked before every transaction and key release.
    pub(crate) lease: crate::runner::LeaseClock,
    /// Set when a transaction was refused because another process sent from the wallet since
    /// this replica fenced it: the term ends, and the next one fences again.
    /// The lead loop watches it.
    pub(crate) wallet_lost: tokio::sync::watch::Sender<bool>,
}

/// The job's compute node: the one the ledger assigned it to (its task lives there), else a
/// new assignment from the provider, recorded before anything is sent to the node.
async fn node_of(ctx: &Ctx, id: JobId) -> Result<ComputeNodeClient, Step> {
    if let Some(url) = ctx.ledger.node(id).await? {
        return Ok(ComputeNodeClient::new(url));
    }
    let excluded = ctx.ledger.given_up_nodes(id).await?;
    let node = ctx
        .provider
        .node_for(id, &excluded)
        .ok_or_else(|| unrecoverable("no compute node is available to run it"))?;
    ctx.ledger.set_node(id, node.url()).await?;
    Ok(node)
}

/// Gives up on the job's current node and assigns the next one the provider offers; `None`
/// when every node was given up on.
async fn move_to_next_node(ctx: &Ctx, id: JobId) -> Result<Option<(String, String)>> {
    let Some(current) = ctx.ledger.node(id).await? else {
        return Ok(None);
    };
    let excluded = ctx.ledger.give_up_node(id, &current).await?;
    let Some(next) = ctx.provider.node_for(id, &excluded) else {
        return Ok(None);
    };
    ctx.ledger.set_node(id, next.url()).await?;
    Ok(Some((current, next.url().to_owned())))
}

/// Why a job cannot finish: becomes the `failJob` reason (never key or data bytes).
struct Unrecoverable(String);

/// Drives `job` until it is settled, failed, or no longer ours.
pub(crate) async fn drive(ctx: &Ctx, job: LedgerJob) -> Result<()> {
    let outcome = run(ctx, &job).await;
    let errors = {
        let mut counts = ctx.unreachable.lock().expect("error counts poisoned");
        if matches!(outcome, Err(Step::Error(Error::Compute(_)))) {
            let count = counts.entry(job.job).or_default();
            *count += 1;
            *count
        } else {
            counts.remove(&job.job);
            0
        }
    };
    match outcome {
        Ok(()) => Ok(()),
        Err(Step::Fail(Unrecoverable(reason))) => fail(ctx, job.job, &reason).await,
        // A node that stays unreachable (killed, crashed, gone) must not strand the escrow
        // until the run deadline: after a few attempts the researcher gets a full refund.
        Err(Step::Error(Error::Compute(e))) if errors >= ctx.node_attempts => {
            ctx.unreachable
                .lock()
                .expect("error counts poisoned")
                .remove(&job.job);
            // Another node can take the job over: it is attested afresh and gets the key
            // re-sealed to it; the one given up on never settles it.
            if let Some((from, to)) = move_to_next_node(ctx, job.job).await? {
                tracing::warn!(job = %job.job, %from, %to, errors, error = %e, "the compute node keeps failing; moving the job to another node");
                return Ok(());
            }
            let nodes = ctx.ledger.given_up_nodes(job.job).await?.len().max(1);
            let reason = if nodes > 1 {
                format!("all {nodes} compute nodes failed, each {errors} times (last: {e})")
            } else {
                format!("the compute node failed {errors} times (last: {e})")
            };
            fail(ctx, job.job, &reason).await
        }
        Err(Step::Error(e @ Error::Compute(_))) => {
            tokio::time::sleep(ctx.node_retry_delay).await;
            Err(e)
        }
        Err(Step::Error(e)) => Err(e),
    }
}

enum Step {
    Fail(Unrecoverable),
    Error(Error),
}

impl<E: Into<Error>> From<E> for Step {
    fn from(e: E) -> Self {
        Step::Error(e.into())
    }
}

fn unrecoverable(reason: impl Into<String>) -> Step {
    Step::Fail(Unrecoverable(reason.into()))
}

async fn run(ctx: &Ctx, job: &LedgerJob) -> Result<(), Step> {
    let id = job.job;
    let (_, orchestrator, _, _) = ctx.chain.dataset_info(job.dataset).await?;
    if orchestrator != ctx.me {
        ctx.ledger
            .set_stage(id, Stage::Closed, Some("not orchestrated by us"))
            .await?;
        return Ok(());
    }
    let mut attempts = 0;
    loop {
        let on_chain = ctx.chain.job(id).await?;
        match on_chain.state {
            JobState::Granted => {
                // The later of our clock and the chain's: a chain clock moved ahead (or a
                // stale latest block on an idle dev chain) must not make us retry a start the
                // contract would refuse.
                if now().max(chain_time(ctx).await?) >= on_chain.deadline {
                    // Nobody can start it any more: refund the researcher right away.
                    ctx.lease.check()?;
                    ctx.chain.expire(id).await?;
                    tracing::info!(job = %id, "grant expired before it could start; escrow refunded");
                    ctx.ledger
                        .set_stage(id, Stage::Closed, Some("grant expired before start"))
                        .await?;
                    return Ok(());
                }
            }
            JobState::Running => {}
            terminal => {
                let stage = match terminal {
                    JobState::Completed => Stage::Settled,
                    JobState::Failed => Stage::Failed,
                    _ => Stage::Closed,
                };
                ctx.ledger
                    .set_stage(id, stage, Some(terminal.name()))
                    .await?;
                return Ok(());
            }
        }

        // A node for this job, with verified evidence. Node tasks do not survive a node restart,
        // and after our own crash the task may already hold the key: ask before acting.
        let node = node_of(ctx, id).await?;
        let existing = node
            .status(id)
            .await
            .ok()
            .filter(|s| !matches!(s.state, TaskState::Init | TaskState::Failed));
        let (verified, status) = match existing {
            Some(status) => {
                let verified = verify(ctx, &status.evidence, job).await?;
                (verified, status)
            }
            None => {
                let verified = attest(ctx, &node, job).await?;
                let envelope = dataset_envelope(ctx, job).await?;
                let to_node = reseal_key(
                    &ctx.key,
                    &envelope,
                    &EnvelopeContext::OwnerToOrchestrator { dataset_root: *job.dataset.as_bytes() },
                    &verified.node_public_key,
                    &EnvelopeContext::OrchestratorToNode {
                        job_id: id.to_be_bytes32(),
                        dataset_root: *job.dataset.as_bytes(),
                    },
                    &mut licen_crypto::rng::OsRng,
                )
                .map_err(|_| {
                    unrecoverable("the dataset key envelope does not open with this orchestrator's key for this dataset")
                })?;
                // Start only now: a job whose key cannot be released is failed, never started.
                ctx.lease.check()?;
                if on_chain.state == JobState::Granted {
                    ctx.chain.start_job(id).await?;
                    tracing::info!(job = %id, dataset = %job.dataset, epochs = job.epochs, "job started on-chain");
                    ctx.ledger.set_stage(id, Stage::Started, None).await?;
                }
                ctx.lease.check()?;
                let status = node
                    .submit_key(id, to_node.as_bytes())
                    .await
                    .map_err(|e| Error::Compute(e.to_string()))?;
                ctx.ledger.set_stage(id, Stage::KeyReleased, None).await?;
                tracing::info!(job = %id, measurement = %format!("0x{}", hex::encode(verified.measurement)), "dataset key released to the attested compute node");
                (verified, status)
            }
        };
        let mut status = status;
        loop {
            match status.state {
                TaskState::Delivered => return settle(ctx, &node, &verified, id, status).await,
                TaskState::Failed => break,
                _ => {
                    tokio::time::sleep(ctx.poll).await;
                    status = node
                        .status(id)
                        .await
                        .map_err(|e| Error::Compute(e.to_string()))?;
                }
            }
        }
        let reason = status
            .error
            .unwrap_or_else(|| "the compute node failed".into());
        match status.failure {
            Some(FailureKind::Envelope | FailureKind::Ciphertext | FailureKind::InvalidDataset) => {
                return Err(unrecoverable(reason));
            }
            _ => {
                attempts += 1;
                if attempts >= ctx.node_attempts {
                    return Err(unrecoverable(format!(
                        "{reason} (after {attempts} attempts)"
                    )));
                }
                tracing::warn!(job = %id, attempt = attempts, "compute task failed, retrying with a fresh task");
            }
        }
    }
}

async fn attest(
    ctx: &Ctx,
    node: &ComputeNodeClient,
    job: &LedgerJob,
) -> Result<VerifiedNode, Step> {
    let evidence = node
        .create_job(&CreateJobRequest {
            job_id: job.job.0,
            dataset_root: job.dataset.as_bytes().to_owned().into(),
            epochs: job.epochs,
            result_key: job.result_key.into(),
            dataset_size: None,
        })
        .await
        .map_err(|e| Error::Compute(e.to_string()))?;
    verify(ctx, &evidence, job).await
}

/// Checks a node's evidence: a trusted attestation key, bound to this job and dataset, with a
/// measurement the dataset's manifest allows.
async fn verify(
    ctx: &Ctx,
    evidence: &InsecureDevEvidence,
    job: &LedgerJob,
) -> Result<VerifiedNode, Step> {
    verify_evidence(
        evidence,
        &ctx.provider.trusted_attestation_keys(),
        &allowed_measurements(ctx, job).await?,
        job.job,
        &job.dataset,
    )
    .map_err(|e| unrecoverable(format!("the compute node's attestation was rejected: {e}")))
}

/// The dataset manifest's allowed trainer measurements (empty = any attested trainer).
async fn allowed_measurements(ctx: &Ctx, job: &LedgerJob) -> Result<Vec<[u8; 32]>, Step> {
    let (_, manifest_root) = ctx
        .chain
        .dataset_roots(job.dataset)
        .await?
        .ok_or_else(|| unrecoverable("the dataset's publish event was not found"))?;
    let bytes = ctx
        .storage
        .download_to_vec(manifest_root, Default::default())
        .await?;
    let manifest: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|_| unrecoverable("the dataset manifest is not JSON"))?;
    let mut allowed = Vec::new();
    for m in manifest["allowed_trainer_measurements"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let mut out = [0u8; 32];
        hex::decode_to_slice(m.as_str().unwrap_or("").trim_start_matches("0x"), &mut out).map_err(
            |_| unrecoverable("the dataset manifest lists a malformed trainer measurement"),
        )?;
        allowed.push(out);
    }
    Ok(allowed)
}

async fn dataset_envelope(ctx: &Ctx, job: &LedgerJob) -> Result<Vec<u8>, Step> {
    let (envelope_root, _) = ctx
        .chain
        .dataset_roots(job.dataset)
        .await?
        .ok_or_else(|| unrecoverable("the dataset's publish event was not found"))?;
    Ok(ctx
        .storage
        .download_to_vec(envelope_root, Default::default())
        .await?)
}

async fn settle(
    ctx: &Ctx,
    node: &ComputeNodeClient,
    verified: &VerifiedNode,
    id: JobId,
    status: licen_compute::node::JobStatus,
) -> Result<(), Step> {
    let (Some(manifest), Some(signature)) = (status.result_manifest, status.result_signature)
    else {
        return Err(unrecoverable(
            "the compute node delivered no signed result manifest",
        ));
    };
    verify_result_manifest(&manifest, &signature, verified)
        .map_err(|e| unrecoverable(format!("the result manifest does not verify: {e}")))?;
    let on_chain = ctx.chain.job(id).await?;
    ctx.lease.check()?;
    if on_chain.state == JobState::Running {
        let actual = manifest.actual_epochs.min(on_chain.epochs);
        ctx.chain
            .confirm_training_complete(
                id,
                actual,
                B256::from(manifest.result_root.0),
                B256::from(manifest.evidence_root.0),
            )
            .await?;
        tracing::info!(
            job = %id,
            epochs = actual,
            paid_for = on_chain.epochs,
            result = %format!("0x{}", hex::encode(manifest.result_root.0)),
            "job settled: royalty to the owner{}",
            if actual < on_chain.epochs {
                ", unspent escrow refunded to the researcher"
            } else {
                " (all epochs trained: nothing to refund)"
            }
        );
    }
    ctx.ledger
        .set_stage(
            id,
            Stage::Settled,
            Some(&format!("result 0x{}", hex::encode(manifest.result_root.0))),
        )
        .await?;
    // Telling the node is courtesy: settlement already happened on-chain.
    let _ = node.ack(id).await;
    Ok(())
}

async fn fail(ctx: &Ctx, id: JobId, reason: &str) -> Result<()> {
    let on_chain = ctx.chain.job(id).await?;
    ctx.lease.check()?;
    if matches!(on_chain.state, JobState::Granted | JobState::Running) {
        ctx.chain.fail_job(id, reason).await?;
    }
    tracing::warn!(job = %id, reason, "job failed; escrow refunded in full");
    ctx.ledger
        .set_stage(id, Stage::Failed, Some(reason))
        .await?;
    Ok(())
}

/// The latest block's timestamp.
async fn chain_time(ctx: &Ctx) -> Result<u64> {
    use alloy::providers::Provider;
    let block = ctx
        .chain
        .provider()
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .map_err(|e| licen_chain::Error::Rpc {
            action: "eth_getBlockByNumber",
            rpc: ctx.chain.rpc().to_owned(),
            message: e.to_string(),
        })?;
    Ok(block.map_or(0, |b| b.header.timestamp))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
