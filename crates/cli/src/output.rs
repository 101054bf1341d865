//! What `--json` prints: one vocabulary for every command.
//!
//! Every machine-readable output is one of the typed structs here, so the same thing has the
//! same name and format whichever command prints it and wherever the command read it (the
//! chain or the indexer):
//!
//! - ids: `job_id` (number), `dataset_root` (0x + 64 hex digits);
//! - states: lowercase words, jobs as `licen job` names them (`granted`, `running`,
//!   `completed`, `failed`, `expired`, `reclaimed`), datasets `open`, `paused` or `closed`;
//! - amounts: decimal strings of wei, named `…_wei`;
//! - addresses and hashes: lowercase 0x-hex; a transaction as `tx` (hash) and `block`;
//! - times: unix seconds, named `…_at` or `deadline`; durations in seconds, named `…_s`;
//! - byte counts: `…_bytes`;
//! - a failure: `{"error": {"message": …, "causes": […]}}` (see [`ErrorReport`]).
//!
//! Fields only one source knows (a job's purpose is in the indexer, not in the contract's job
//! view) are left out rather than printed as `null` when unknown, so two commands describing
//! the same job or dataset agree on every field both print. The indexer's answers are mapped
//! into these structs here ([`Job::from_indexer`], [`Dataset::from_indexer`]), never passed
//! through.

use alloy::primitives::{Address, B256};
use anyhow::{Context, Result};
use licen_chain::{JobCompletion, TxReceipt};
use licen_indexer::query::{DatasetView, JobView, PolicyView, Transition};
use licen_types::{DatasetRoot, JobId, JobState, Policy};
use serde::Serialize;
use std::path::PathBuf;

/// Prints `value` as pretty JSON on stdout (one-shot commands).
pub(crate) fn print<T: Serialize>(value: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("output structs serialize")
    );
}

/// Prints `value` as JSON on one line (services' start lines, `job --watch`, errors).
pub(crate) fn print_line<T: Serialize>(value: &T) {
    println!(
        "{}",
        serde_json::to_string(value).expect("output structs serialize")
    );
}

/// A failed command under `--json`: `{"error": {"message": …, "causes": […]}}` on stdout,
/// besides the sentence on stderr. The message and causes are the error's own sentences,
/// which never hold keys or data.
#[derive(Debug, Serialize)]
pub(crate) struct ErrorReport {
    pub error: ErrorBody,
}

/// The sentences of an [`ErrorReport`].
#[derive(Debug, Serialize)]
pub(crate) struct ErrorBody {
    /// The top-level sentence (what `error:` shows on stderr).
    pub message: String,
    /// anyhow's cause chain below it, outermost first (the `caused by:` lines).
    pub causes: Vec<String>,
}

impl ErrorReport {
    pub(crate) fn new(error: &anyhow::Error) -> Self {
        Self {
            error: ErrorBody {
                message: error.to_string(),
                causes: error.chain().skip(1).map(ToString::to_string).collect(),
            },
        }
    }
}

/// Arguments clap refused (or `--help`/`--version`): clap's own text and exit code, plus the
/// [`ErrorReport`] on stdout under `--json` for a refusal.
pub(crate) fn usage_error(error: &clap::Error, json: bool) -> std::process::ExitCode {
    let _ = error.print();
    let code = u8::try_from(error.exit_code()).unwrap_or(2);
    if json && error.use_stderr() {
        // clap's text: the sentence, often continued on indented lines (the missing or
        // conflicting arguments), then a usage line and a hint. The sentence and its
        // continuation are the message; the usage and hint go to `causes`.
        let text = error.render().to_string();
        let mut message = String::new();
        let mut causes = Vec::new();
        for line in text.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
            let line = line.strip_prefix("error: ").unwrap_or(line);
            if causes.is_empty() && (message.is_empty() || line.starts_with(' ')) {
                if !message.is_empty() {
                    message.push(' ');
                }
                message.push_str(line.trim());
            } else {
                causes.push(line.trim().to_owned());
            }
        }
        print_line(&ErrorReport {
            error: ErrorBody { message, causes },
        });
    }
    std::process::ExitCode::from(code)
}

/// A transaction this command sent.
#[derive(Debug, Serialize)]
pub(crate) struct Tx {
    /// Its hash.
    pub tx: B256,
    /// The block it was mined in.
    pub block: u64,
}

impl From<&TxReceipt> for Tx {
    fn from(receipt: &TxReceipt) -> Self {
        Self {
            tx: receipt.tx_hash,
            block: receipt.block,
        }
    }
}

/// Wei as a decimal string (amounts exceed JSON's safe integers).
pub(crate) fn wei(amount: u128) -> String {
    amount.to_string()
}

/// A decimal wei string from the indexer, checked.
fn indexer_wei(text: &str, what: &str) -> Result<String> {
    let amount: u128 = text
        .parse()
        .with_context(|| format!("the indexer answered a malformed {what}: `{text}`"))?;
    Ok(wei(amount))
}

fn indexer_hex<T: std::str::FromStr>(text: &str, what: &str) -> Result<T> {
    text.parse()
        .map_err(|_| anyhow::anyhow!("the indexer answered a malformed {what}: `{text}`"))
}

/// A job state from the indexer (`Completed`), as `licen job` names it (`completed`).
fn indexer_state(text: &str) -> Result<JobState> {
    (0..=u8::MAX)
        .map_while(JobState::from_u8)
        .find(|s| s.name().eq_ignore_ascii_case(text))
        .with_context(|| format!("the indexer answered an unknown job state `{text}`"))
}

/// A dataset's policy terms.
#[derive(Debug, Serialize)]
pub(crate) struct PolicyTerms {
    pub price_per_epoch_wei: String,
    pub max_epochs_per_run: u32,
    pub max_runs_per_requester: u32,
    /// How long a paid grant stays startable.
    pub session_ttl_s: u32,
    /// Purpose slugs (`research`, `evaluation`, …).
    pub allowed_purposes: Vec<String>,
    /// No new requests from this unix time on; `null` = no end.
    pub expires_at: Option<u64>,
}

impl From<&Policy> for PolicyTerms {
    fn from(policy: &Policy) -> Self {
        Self {
            price_per_epoch_wei: wei(policy.price_per_epoch),
            max_epochs_per_run: policy.max_epochs_per_run,
            max_runs_per_requester: policy.max_runs_per_requester,
            session_ttl_s: policy.session_ttl,
            allowed_purposes: policy
                .allowed_purposes
                .iter()
                .map(|p| p.slug().to_owned())
                .collect(),
            expires_at: policy.expiry,
        }
    }
}

impl PolicyTerms {
    fn from_indexer(policy: &PolicyView) -> Result<Self> {
        Ok(Self {
            price_per_epoch_wei: indexer_wei(&policy.price_per_epoch, "price per epoch")?,
            max_epochs_per_run: policy.max_epochs_per_run,
            max_runs_per_requester: policy.max_runs_per_requester,
            session_ttl_s: policy.session_ttl,
            allowed_purposes: policy.allowed_purposes.clone(),
            expires_at: policy.expiry,
        })
    }
}

/// Whether a dataset takes requests: `open`, `paused` (by its owner) or `closed` (past its
/// policy's expiry).
pub(crate) fn dataset_state(paused: bool, open_by_time: bool) -> &'static str {
    if paused {
        "paused"
    } else if open_by_time {
        "open"
    } else {
        "closed"
    }
}

/// A dataset: `licen dataset` (from the chain) and each item of `licen market` (from the
/// indexer).
#[derive(Debug, Serialize)]
pub(crate) struct Dataset {
    pub dataset_root: B256,
    /// `open`, `paused` or `closed` (see [`dataset_state`]).
    pub state: &'static str,
    pub paused: bool,
    pub owner: Address,
    pub orchestrator: Address,
    pub policy: PolicyTerms,
    pub policy_hash: B256,
    /// The manifest's name and description (indexer, once it fetched the manifest).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Roots the contract keeps only in events (indexer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envelope_root: Option<B256>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_root: Option<B256>,
    /// Requests ever made (indexer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_count: Option<u64>,
    /// The publishing transaction and its block time (indexer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published_tx: Option<B256>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published_block: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published_at: Option<u64>,
}

impl Dataset {
    /// A dataset as the chain holds it (`datasetInfo`), judged open or closed at `now`.
    pub(crate) fn from_chain(
        root: DatasetRoot,
        owner: Address,
        orchestrator: Address,
        paused: bool,
        policy: &Policy,
        policy_hash: B256,
        now: u64,
    ) -> Self {
        Self {
            dataset_root: root.0,
            state: dataset_state(paused, policy.expiry.is_none_or(|e| now < e)),
            paused,
            owner,
            orchestrator,
            policy: PolicyTerms::from(policy),
            policy_hash,
            name: None,
            description: None,
            envelope_root: None,
            manifest_root: None,
            job_count: None,
            published_tx: None,
            published_block: None,
            published_at: None,
        }
    }

    /// An indexer listing item.
    pub(crate) fn from_indexer(d: &DatasetView) -> Result<Self> {
        Ok(Self {
            dataset_root: indexer_hex(&d.root, "dataset root")?,
            state: dataset_state(d.paused, d.active),
            paused: d.paused,
            owner: indexer_hex(&d.owner, "owner")?,
            orchestrator: indexer_hex(&d.orchestrator, "orchestrator")?,
            policy: PolicyTerms::from_indexer(&d.policy)?,
            policy_hash: indexer_hex(&d.policy_hash, "policy hash")?,
            name: d.name.clone(),
            description: d.description.clone(),
            envelope_root: Some(indexer_hex(&d.envelope_root, "envelope root")?),
            manifest_root: Some(indexer_hex(&d.manifest_root, "manifest root")?),
            job_count: Some(d.job_count),
            published_tx: Some(indexer_hex(&d.created.tx, "transaction hash")?),
            published_block: Some(d.created.block),
            published_at: Some(d.created.time),
        })
    }
}

/// A settled job's outcome (completed jobs).
#[derive(Debug, Serialize)]
pub(crate) struct Completion {
    pub actual_epochs: u64,
    /// Credited for the epochs trained, before the protocol fee.
    pub royalty_wei: String,
    pub protocol_fee_wei: String,
    /// `royalty_wei - protocol_fee_wei`: what the owner was credited.
    pub to_owner_wei: String,
    pub refund_wei: String,
    /// The sealed result's root (the on-chain `resultHash`; `licen download` fetches it).
    pub result_root: B256,
    pub attestation_ref: B256,
}

impl From<&JobCompletion> for Completion {
    fn from(c: &JobCompletion) -> Self {
        Self {
            actual_epochs: u64::from(c.actual_epochs),
            royalty_wei: wei(c.royalty),
            protocol_fee_wei: wei(c.fee),
            to_owner_wei: wei(c.royalty.saturating_sub(c.fee)),
            refund_wei: wei(c.refund),
            result_root: c.result_hash,
            attestation_ref: c.attestation_ref,
        }
    }
}

/// A job: `licen job` (from the chain) and each item of `licen jobs` (from the indexer).
#[derive(Debug, Serialize)]
pub(crate) struct Job {
    pub job_id: u64,
    pub dataset_root: B256,
    pub researcher: Address,
    /// Lowercase: `granted`, `running`, `completed`, `failed`, `expired` or `reclaimed`.
    pub state: &'static str,
    /// Epochs paid for.
    pub epochs: u64,
    pub price_per_epoch_wei: String,
    pub escrow_wei: String,
    /// The contract's one deadline (unix seconds): a grant must start by it, a run must settle
    /// by it (then its researcher may reclaim it); kept once the job ends.
    pub deadline: u64,
    /// Declared purpose and the researcher's result key (indexer: they live in the grant event).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_key: Option<B256>,
    /// The requesting transaction and its block time (indexer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_tx: Option<B256>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_block: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<u64>,
    /// The orchestrator's reason (failed jobs, indexer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail_reason: Option<String>,
    /// Completed jobs only; `null` otherwise.
    pub completion: Option<Completion>,
}

impl Job {
    /// A job as the contract holds it, with its dataset and (completed) its settlement.
    pub(crate) fn from_chain(
        id: JobId,
        job: &licen_chain::JobView,
        dataset: DatasetRoot,
        completion: Option<&JobCompletion>,
    ) -> Self {
        Self {
            job_id: id.0,
            dataset_root: dataset.0,
            researcher: job.researcher,
            state: job.state.name(),
            epochs: u64::from(job.epochs),
            price_per_epoch_wei: wei(job.price_per_epoch),
            escrow_wei: wei(job.escrow()),
            deadline: job.deadline,
            purpose: None,
            result_key: None,
            requested_tx: None,
            requested_block: None,
            requested_at: None,
            fail_reason: None,
            completion: completion.map(Completion::from),
        }
    }

    /// An indexer listing item.
    pub(crate) fn from_indexer(j: &JobView) -> Result<Self> {
        let state = indexer_state(&j.state)?;
        let completion = match (state, &j.actual_epochs, &j.royalty, &j.fee, &j.refund) {
            (JobState::Completed, Some(epochs), Some(royalty), Some(fee), Some(refund)) => {
                let royalty: u128 = indexer_wei(royalty, "royalty")?.parse()?;
                let fee: u128 = indexer_wei(fee, "fee")?.parse()?;
                Some(Completion {
                    actual_epochs: *epochs,
                    royalty_wei: wei(royalty),
                    protocol_fee_wei: wei(fee),
                    to_owner_wei: wei(royalty.saturating_sub(fee)),
                    refund_wei: indexer_wei(refund, "refund")?,
                    result_root: indexer_hex(
                        j.result_hash.as_deref().unwrap_or_default(),
                        "result root",
                    )?,
                    attestation_ref: indexer_hex(
                        j.attestation_ref.as_deref().unwrap_or_default(),
                        "attestation reference",
                    )?,
                })
            }
            _ => None,
        };
        Ok(Self {
            job_id: j.id,
            dataset_root: indexer_hex(&j.dataset_root, "dataset root")?,
            researcher: indexer_hex(&j.researcher, "researcher")?,
            state: state.name(),
            epochs: j.epochs,
            price_per_epoch_wei: indexer_wei(&j.price_per_epoch, "price per epoch")?,
            escrow_wei: indexer_wei(&j.escrow, "escrow")?,
            // The contract's deadline is the grant's expiry until the job starts, then the run
            // deadline; it keeps the last one set when the job ends.
            deadline: j.run_deadline.unwrap_or(j.expires_at),
            purpose: Some(j.purpose.clone()),
            result_key: Some(indexer_hex(&j.result_key, "result key")?),
            requested_tx: Some(indexer_hex(&j.created.tx, "transaction hash")?),
            requested_block: Some(j.created.block),
            requested_at: Some(j.created.time),
            fail_reason: j.fail_reason.clone(),
            completion,
        })
    }
}

/// A listing (`licen market`, `licen jobs`): one page, newest first unless sorted otherwise.
#[derive(Debug, Serialize)]
pub(crate) struct Listing<T> {
    pub items: Vec<T>,
    /// More matched than `--limit` allowed.
    pub more: bool,
}

/// One transition of `licen job --watch` (one line each).
#[derive(Debug, Serialize)]
pub(crate) struct JobTransition {
    pub job_id: u64,
    /// The state entered (lowercase).
    pub state: &'static str,
    pub tx: B256,
    pub block: u64,
    /// Its block time.
    pub at: u64,
}

impl JobTransition {
    pub(crate) fn from_indexer(job_id: u64, t: &Transition) -> Result<Self> {
        Ok(Self {
            job_id,
            state: indexer_state(&t.state)?.name(),
            tx: indexer_hex(&t.tx, "transaction hash")?,
            block: t.block,
            at: t.time,
        })
    }
}

/// `licen publish`.
#[derive(Debug, Serialize)]
pub(crate) struct Published {
    pub dataset_root: B256,
    pub envelope_root: B256,
    pub manifest_root: B256,
    pub owner: Address,
    pub orchestrator: Address,
    pub policy_hash: B256,
    pub policy: PolicyTerms,
    /// JSONL records checked.
    pub rows: u64,
    pub sealed_bytes: u64,
    /// The 0G Flow submissions paid for the files (`--flow`; empty otherwise).
    pub flow_submissions: Vec<FlowSubmission>,
    #[serde(flatten)]
    pub tx: Tx,
}

impl From<&licen_chain::FlowReceipt> for FlowSubmission {
    fn from(r: &licen_chain::FlowReceipt) -> Self {
        Self {
            tx: r.tx,
            block: r.block,
            tx_seq: r.tx_seq,
            sectors: r.sectors,
            fee_wei: r.fee.to_string(),
        }
    }
}

/// `licen pause` / `licen resume`.
#[derive(Debug, Serialize)]
pub(crate) struct PauseChanged {
    pub dataset_root: B256,
    /// After this transaction.
    pub paused: bool,
    #[serde(flatten)]
    pub tx: Tx,
}

/// `licen update-policy`.
#[derive(Debug, Serialize)]
pub(crate) struct PolicyUpdated {
    pub dataset_root: B256,
    pub policy: PolicyTerms,
    pub previous_policy: PolicyTerms,
    pub policy_hash: B256,
    #[serde(flatten)]
    pub tx: Tx,
}

/// `licen request`.
#[derive(Debug, Serialize)]
pub(crate) struct Requested {
    pub job_id: u64,
    pub dataset_root: B256,
    pub epochs: u64,
    pub purpose: &'static str,
    pub escrow_wei: String,
    /// The researcher's X25519 result key (public; derived from the wallet).
    pub result_key: B256,
    #[serde(flatten)]
    pub tx: Tx,
}

/// `licen reclaim`.
#[derive(Debug, Serialize)]
pub(crate) struct Reclaimed {
    pub job_id: u64,
    /// `expired` or `reclaimed`.
    pub state: &'static str,
    pub refund_wei: String,
    pub researcher: Address,
    #[serde(flatten)]
    pub tx: Tx,
}

/// `licen earnings`.
#[derive(Debug, Serialize)]
pub(crate) struct Earnings {
    pub account: Address,
    pub withdrawable_wei: String,
}

/// `licen withdraw`.
#[derive(Debug, Serialize)]
pub(crate) struct Withdrawn {
    pub account: Address,
    pub withdrawn_wei: String,
    #[serde(flatten)]
    pub tx: Tx,
}

/// `licen download`.
#[derive(Debug, Serialize)]
pub(crate) struct Downloaded {
    pub job_id: u64,
    pub result_root: B256,
    pub actual_epochs: u64,
    /// The opened result (`result.json`, `result.tar` or `result.bin`).
    pub file: PathBuf,
    pub size_bytes: u64,
    /// Files unpacked from a LoRA adapter archive.
    pub unpacked: Vec<PathBuf>,
}

/// `licen web`'s start line.
#[derive(Debug, Serialize)]
pub(crate) struct WebStarted {
    pub web_url: String,
}

/// `licen keygen`.
#[derive(Debug, Serialize)]
pub(crate) struct KeyGenerated {
    /// The secret key file (mode 0600).
    pub secret_key_file: PathBuf,
    /// The X25519 public key (0x + 64 hex digits): what `licen seal --to` takes.
    pub public_key: B256,
}

/// `licen root`.
#[derive(Debug, Serialize)]
pub(crate) struct Rooted {
    pub file: PathBuf,
    pub size_bytes: u64,
    /// The file's 0G Merkle root (its storage id).
    pub root: B256,
}

/// `licen seal`.
#[derive(Debug, Serialize)]
pub(crate) struct Sealed {
    /// The sealed file's 0G root: the id `publish` would give it.
    pub dataset_root: B256,
    pub sealed_file: PathBuf,
    pub envelope_file: PathBuf,
    pub plaintext_bytes: u64,
    pub sealed_bytes: u64,
    /// This process's peak resident memory (Linux), for the streaming bound.
    pub peak_rss_bytes: Option<u64>,
}

/// `licen open`.
#[derive(Debug, Serialize)]
pub(crate) struct Opened {
    pub output: PathBuf,
    pub plaintext_bytes: u64,
    pub dataset_root: B256,
    pub peak_rss_bytes: Option<u64>,
}

/// `licen put`.
#[derive(Debug, Serialize)]
pub(crate) struct Put {
    pub root: B256,
    pub size_bytes: u64,
    pub segments: u64,
    pub sent_segments: u64,
    /// Segments the node already held (not sent again).
    pub skipped_segments: u64,
    pub finalized: bool,
    /// Wall time of the hashing pass and of the upload.
    pub hash_s: f64,
    pub upload_s: f64,
    pub peak_rss_bytes: Option<u64>,
    /// The 0G Flow submission paid for the file (`--flow`), when one was sent.
    pub flow_submission: Option<FlowSubmission>,
}

/// A mined 0G Flow submission.
#[derive(Debug, Serialize)]
pub(crate) struct FlowSubmission {
    pub tx: B256,
    pub block: u64,
    /// The submission's sequence number (0G's `txSeq`).
    pub tx_seq: u64,
    /// 256-byte sectors paid for.
    pub sectors: u64,
    pub fee_wei: String,
}

/// `licen get`.
#[derive(Debug, Serialize)]
pub(crate) struct Got {
    pub root: B256,
    pub size_bytes: u64,
    pub output: PathBuf,
    /// The storage node the file came from.
    pub node: String,
    pub peak_rss_bytes: Option<u64>,
}

/// `licen storage-node`'s start line.
#[derive(Debug, Serialize)]
pub(crate) struct StorageNodeStarted {
    pub storage_url: String,
}

/// `licen storage-indexer`'s start line.
#[derive(Debug, Serialize)]
pub(crate) struct StorageIndexerStarted {
    pub storage_indexer_url: String,
}

/// `licen compute-node`'s start line.
#[derive(Debug, Serialize)]
pub(crate) struct ComputeNodeStarted {
    pub compute_url: String,
    /// The INSECURE development attestation key and the node's measurement (trainer config).
    pub compute_attestation_key: B256,
    pub measurement: B256,
    pub warning: &'static str,
}

/// `licen indexer`'s start line.
#[derive(Debug, Serialize)]
pub(crate) struct IndexerStarted {
    pub indexer_url: String,
    pub contract: Address,
    pub start_block: u64,
}

/// `licen orchestrator`'s start line.
#[derive(Debug, Serialize)]
pub(crate) struct OrchestratorStarted {
    /// The orchestrator's account.
    pub orchestrator: Address,
    pub contract: Address,
    /// The indexer's URL, or `chain logs`.
    pub grants_from: String,
    pub compute_urls: Vec<String>,
    /// The ledger (a file path, or a database URL without its password).
    pub ledger: String,
    /// This replica's name, whether it leads now, and the leader's name.
    pub replica: String,
    pub leading: bool,
    pub leader: String,
    /// Off the dev network with `--insecure-dev-attestation`: what that gives up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<&'static str>,
}

/// `licen dev`'s start summary.
#[derive(Debug, Serialize)]
pub(crate) struct DevStarted {
    pub web_url: String,
    pub rpc_url: String,
    /// The storage node, when one node holds whole files.
    pub storage_url: Option<String>,
    /// Under `--storage-shards`: the storage indexer naming the shard nodes.
    pub storage_indexer_url: Option<String>,
    /// Every storage node with its shard position (`0/1`: whole files).
    pub storage_nodes: Vec<DevStorageNode>,
    pub compute_url: String,
    /// The compute node's INSECURE development attestation key.
    pub compute_attestation_key: B256,
    /// `simulated` or `lora`.
    pub compute_trainer: String,
    pub indexer_url: String,
    pub orchestrator_public_key: B256,
    /// Whether the stack runs the orchestrator (`--no-orchestrator` leaves it out).
    pub orchestrator_running: bool,
    pub chain_id: u64,
    /// The DataPolicy contract and the block it was deployed in.
    pub contract: Address,
    pub deployed_block: u64,
    pub freshly_deployed: bool,
    /// Under `--flow`: 0G's Flow contract, which every upload is paid through.
    pub flow: Option<Address>,
    pub accounts: Vec<DevAccount>,
    pub warning: &'static str,
}

/// A storage node of the local stack.
#[derive(Debug, Serialize)]
pub(crate) struct DevStorageNode {
    pub url: String,
    /// `SHARD_ID/NUM_SHARD`.
    pub shard: String,
}

/// An anvil dev account with its role in the local stack (INSECURE, publicly known key).
#[derive(Debug, Serialize)]
pub(crate) struct DevAccount {
    pub role: &'static str,
    pub address: Address,
    pub private_key: String,
}

/// `licen deploy`.
#[derive(Debug, Serialize)]
pub(crate) struct Deployed {
    pub chain_id: u64,
    /// The new DataPolicy contract.
    pub contract: Address,
    pub admin: Address,
    pub treasury: Address,
    pub fee_bps: u16,
    /// Seconds a started run has to settle (fixed for the contract's lifetime).
    pub run_timeout_s: u64,
    /// The wallet that sent the deployment.
    pub deployer: Address,
    /// Where the deployment is recorded (`<data-dir>/deployments/<chain-id>.json`).
    pub record_file: PathBuf,
    /// The contract the record named before (`--replace`); it stays on the chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced: Option<Address>,
    /// The deploying transaction and its block (where indexers start).
    #[serde(flatten)]
    pub tx: Tx,
}

/// An orchestrator's registration, as `licen admin show --orchestrator` reads it.
#[derive(Debug, Serialize)]
pub(crate) struct OrchestratorStatus {
    pub orchestrator: Address,
    /// Its X25519 public key (zero when never registered).
    pub public_key: B256,
    /// Whether publications and requests may name it now.
    pub active: bool,
    /// Whether it was ever registered (a deactivated orchestrator keeps its key).
    pub registered: bool,
}

/// `licen admin show`.
#[derive(Debug, Serialize)]
pub(crate) struct AdminShown {
    pub chain_id: u64,
    pub contract: Address,
    pub admin: Address,
    pub treasury: Address,
    pub fee_bps: u16,
    /// The contract's cap on `fee_bps`.
    pub max_fee_bps: u16,
    pub run_timeout_s: u64,
    /// With `--orchestrator` (`orchestrator` itself is always an address in this vocabulary).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orchestrator_registration: Option<OrchestratorStatus>,
}

/// `licen admin register-orchestrator` / `rotate-orchestrator-key`.
#[derive(Debug, Serialize)]
pub(crate) struct OrchestratorKeySet {
    pub contract: Address,
    pub orchestrator: Address,
    pub public_key: B256,
    /// The key it had before (a rotation, or re-registering a deactivated orchestrator); left
    /// out for a first registration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_public_key: Option<B256>,
    /// After this transaction.
    pub active: bool,
    #[serde(flatten)]
    pub tx: Tx,
}

/// `licen admin deactivate-orchestrator`.
#[derive(Debug, Serialize)]
pub(crate) struct OrchestratorDeactivated {
    pub contract: Address,
    pub orchestrator: Address,
    /// After this transaction.
    pub active: bool,
    #[serde(flatten)]
    pub tx: Tx,
}

/// `licen admin set-fee`.
#[derive(Debug, Serialize)]
pub(crate) struct FeeSet {
    pub contract: Address,
    pub fee_bps: u16,
    pub treasury: Address,
    pub previous_fee_bps: u16,
    pub previous_treasury: Address,
    #[serde(flatten)]
    pub tx: Tx,
}

/// `licen admin transfer-admin`.
#[derive(Debug, Serialize)]
pub(crate) struct AdminTransferred {
    pub contract: Address,
    /// The new admin.
    pub admin: Address,
    pub previous_admin: Address,
    #[serde(flatten)]
    pub tx: Tx,
}
