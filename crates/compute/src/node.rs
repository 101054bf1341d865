//! The compute node service: an HTTP JSON API (axum) in front of the job pipeline.
//!
//! Endpoints (JSON in and out; errors are `{"error": "..."}` with a 4xx/5xx status):
//! - `GET  /v1/node` → [`NodeInfo`]: attestation kind (`"insecure-dev"`), attestation public
//!   key, measurement, trainer config.
//! - `POST /v1/jobs` [`CreateJobRequest`] → 201 [`CreateJobResponse`] `{evidence}`: creates the
//!   task with fresh ephemeral keys (X25519 for the dataset key, ed25519 for the result
//!   manifest). Repeating the same request returns the same evidence (200); a job that failed
//!   may be created again (fresh keys).
//! - `POST /v1/jobs/{id}/key` [`SubmitKeyRequest`] `{envelope}` → 202 [`JobStatus`]: opens the
//!   re-sealed dataset key (kind orchestrator→node, AAD `jobId ‖ datasetRoot`) and starts the
//!   pipeline in the background. An envelope that does not open → 422 and the task is Failed.
//! - `GET  /v1/jobs/{id}` → [`JobStatus`]: 0G fine-tuning task state, progress, failure reason,
//!   and once Delivered the signed [`ResultManifest`].
//! - `POST /v1/jobs/{id}/ack` → [`JobStatus`]: Delivered → (UserAcknowledged →) Finished.
//!
//! Pipeline after the key opens: SettingUp (download the ciphertext, every segment verified
//! against `dataset_root`, retried while storage is unreachable; decrypt into
//! `<data-dir>/work/<job>/`, a 0700 dir) → SetUp → Training (the [`Trainer`]) → Trained →
//! Delivering (seal the result to the researcher's `result_key`, upload it, upload the evidence,
//! sign the manifest with the job's attested ed25519 key) → Delivered. The work dir is removed
//! whatever happens, before the final state is published. Any failure → Failed with a reason
//! the orchestrator can pass to `failJob`.
//!
//! Jobs live in memory: ephemeral keys are never persisted, so a restarted node forgets its
//! jobs (404) and the orchestrator must start over with a new task.
//!
//! Must never: log or return key bytes or plaintext; write plaintext outside the job's work
//! dir; keep a job's secret keys after it ends.

use std::collections::HashMap;
use std::fs::DirBuilder;
use std::future::Future;
use std::io::{BufReader, BufWriter, Read, Write};
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ed25519_dalek::SigningKey;
use licen_crypto::envelope::{EnvelopeContext, SecretKey, open_key};
use licen_crypto::{OpenReader, PublicKey, StreamKey};
use licen_storage::client::DownloadOptions;
use licen_storage::{Storage, StorageEndpoint};
use licen_types::{DatasetRoot, JobId};
use serde::{Deserialize, Serialize};
use tracing::{error, info, warn};

use crate::attestation::{
    AttestationError, INSECURE_DEV_KIND, InsecureDevAttestationKey, InsecureDevEvidence,
    random_signing_key,
};
use crate::canonical::HexBytes;
use crate::manifest::{RESULT_MANIFEST_KIND, RESULT_MANIFEST_VERSION, ResultManifest};
use crate::trainer::{Progress, SimulatedTrainer, TrainError, Trainer, TrainerConfig};

/// Makes a fresh trainer for each job.
pub type TrainerFactory = Arc<dyn Fn() -> Box<dyn Trainer> + Send + Sync>;

/// Name of the per-job work dirs' parent, inside the data dir.
pub const WORK_DIR: &str = "work";
/// File name of the downloaded ciphertext inside a job's work dir.
pub const SEALED_FILE: &str = "dataset.sealed";
/// File name of the decrypted dataset inside a job's work dir.
pub const PLAINTEXT_FILE: &str = "dataset.jsonl";

/// How to run a node.
#[derive(Clone)]
pub struct NodeConfig {
    /// The node's data dir: the dev attestation key and `work/` live here (created 0700).
    pub data_dir: PathBuf,
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// Where datasets are read from and results written to: a zgs node, or a 0G storage
    /// indexer's nodes.
    pub storage: StorageEndpoint,
    /// Makes the trainer of each job ([`SimulatedTrainer`] by default).
    pub trainer: TrainerFactory,
    /// Attempts of each storage operation while storage is unreachable.
    pub storage_attempts: u32,
    /// Delay before the first retry (doubles each time).
    pub retry_delay: Duration,
    /// The binary to measure; `None`: the running executable.
    pub measured_binary: Option<PathBuf>,
    /// Pays for each file before it is uploaded (0G storage: a Flow submission); `None` for
    /// storage that takes files unpaid (the local node of `licen dev`).
    pub payer: Option<Arc<dyn StoragePayer>>,
}

/// Pays for a file's storage before it is uploaded (on 0G: a Flow submission from the node
/// operator's wallet, then waiting until the storage node has seen it). Implemented where the
/// wallet is (the CLI), so this crate holds no chain key.
pub trait StoragePayer: Send + Sync {
    /// Pays for the file `tree` describes unless one of `nodes` already knows it, and waits
    /// until each of `nodes` (those the file is then uploaded to) has seen the payment. The
    /// error is a sentence.
    fn pay<'a>(
        &'a self,
        nodes: &'a [licen_storage::StorageClient],
        tree: &'a licen_storage::merkle::FileTree,
    ) -> licen_storage::store::BoxFuture<'a, Result<(), String>>;
}

impl std::fmt::Debug for NodeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeConfig")
            .field("data_dir", &self.data_dir)
            .field("listen", &self.listen)
            .field("storage", &self.storage)
            .field("storage_attempts", &self.storage_attempts)
            .finish_non_exhaustive()
    }
}

impl NodeConfig {
    /// A node with the simulated trainer, 3 storage attempts 500 ms apart (doubling).
    pub fn new(
        data_dir: impl Into<PathBuf>,
        listen: SocketAddr,
        storage: impl Into<StorageEndpoint>,
    ) -> Self {
        NodeConfig {
            data_dir: data_dir.into(),
            listen,
            storage: storage.into(),
            trainer: Arc::new(|| Box::new(SimulatedTrainer::new())),
            storage_attempts: 3,
            retry_delay: Duration::from_millis(500),
            measured_binary: None,
            payer: None,
        }
    }
}

/// Errors starting a node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// File system or socket error.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// Attestation key or measurement.
    #[error(transparent)]
    Attestation(#[from] AttestationError),
    /// The storage client.
    #[error(transparent)]
    Storage(#[from] licen_storage::Error),
}

/// 0G fine-tuning task states (DESIGN.md §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskState {
    /// Created; waiting for the dataset key.
    Init,
    /// Key opened; downloading, verifying and decrypting the dataset.
    SettingUp,
    /// Dataset decrypted in the work dir.
    SetUp,
    /// The trainer runs.
    Training,
    /// Training done.
    Trained,
    /// Sealing and uploading the result, signing the manifest.
    Delivering,
    /// Result uploaded; signed manifest available.
    Delivered,
    /// The orchestrator acknowledged the result.
    UserAcknowledged,
    /// Done.
    Finished,
    /// Failed; see the error.
    Failed,
}

impl TaskState {
    /// Whether the task can change no more (Finished or Failed).
    #[must_use]
    pub fn is_terminal(self) -> bool {
        matches!(self, TaskState::Finished | TaskState::Failed)
    }
}

/// Why a task failed, for the orchestrator to decide what to do (every kind but
/// `storage_unreachable` and `node` is final for the job: `failJob`; those two may be retried
/// on a new task or another node).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The dataset key envelope does not open for this job, dataset and node key.
    Envelope,
    /// The ciphertext from storage does not match the dataset root, or the dataset key does
    /// not open it.
    Ciphertext,
    /// The decrypted dataset is not JSONL of one supported schema.
    InvalidDataset,
    /// Storage could not be reached, or did not have the file, after retries.
    StorageUnreachable,
    /// The node itself failed (I/O, trainer error, internal error).
    Node,
}

/// A task failure: its kind and a reason fit for `failJob` (never key bytes or data).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Failure {
    kind: FailureKind,
    reason: String,
}

impl Failure {
    fn new(kind: FailureKind, reason: impl Into<String>) -> Self {
        Failure {
            kind,
            reason: reason.into(),
        }
    }
}

/// `POST /v1/jobs` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateJobRequest {
    /// On-chain job id.
    pub job_id: u64,
    /// 0G root of the sealed dataset.
    pub dataset_root: HexBytes<32>,
    /// Epochs to train (≥ 1).
    pub epochs: u16,
    /// The researcher's X25519 `resultKey` (from the chain).
    pub result_key: HexBytes<32>,
    /// Size of the sealed dataset from its manifest; checked against storage when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_size: Option<u64>,
}

/// `POST /v1/jobs` answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CreateJobResponse {
    /// **INSECURE development** evidence binding the job's ephemeral keys.
    pub evidence: InsecureDevEvidence,
}

/// `POST /v1/jobs/{id}/key` body.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitKeyRequest {
    /// The dataset key envelope (hex, 82 bytes), kind orchestrator→node, sealed to the
    /// evidence's `node_public_key` with AAD `jobId ‖ datasetRoot`.
    pub envelope: String,
}

/// `GET /v1/jobs/{id}` answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobStatus {
    /// On-chain job id.
    pub job_id: u64,
    /// Dataset root.
    pub dataset_root: HexBytes<32>,
    /// Epochs requested.
    pub epochs: u16,
    /// Task state.
    pub state: TaskState,
    /// Training progress (absent before training starts).
    pub progress: Option<Progress>,
    /// Why the task failed (never key bytes or data).
    pub error: Option<String>,
    /// What kind of failure it was.
    pub failure: Option<FailureKind>,
    /// The evidence the task was created with.
    pub evidence: InsecureDevEvidence,
    /// The signed result manifest, from Delivered on.
    pub result_manifest: Option<ResultManifest>,
    /// ed25519 signature of the manifest by the job's attested result-signing key.
    pub result_signature: Option<HexBytes<64>>,
    /// When the state last changed, Unix milliseconds.
    pub updated_at_ms: u64,
}

/// `GET /v1/node` answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Attestation kind: `"insecure-dev"`.
    pub attestation_kind: String,
    /// Always `true`: development attestation proves nothing about confidentiality.
    pub insecure: bool,
    /// The dev attestation public key (ed25519) that signs evidence.
    pub attestation_key: HexBytes<32>,
    /// The node's measurement (binary ‖ trainer config).
    pub measurement: HexBytes<32>,
    /// The trainer's config.
    pub trainer: TrainerConfig,
    /// Node software version.
    pub version: String,
}

/// Error body.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
}

struct JobSecrets {
    hpke: SecretKey,
    signing: SigningKey,
}

struct Job {
    request: CreateJobRequest,
    result_key: PublicKey,
    evidence: InsecureDevEvidence,
    state: TaskState,
    progress: Option<Progress>,
    error: Option<String>,
    failure: Option<FailureKind>,
    manifest: Option<(ResultManifest, HexBytes<64>)>,
    secrets: Option<JobSecrets>,
    updated_at_ms: u64,
}

impl Job {
    fn status(&self) -> JobStatus {
        JobStatus {
            job_id: self.request.job_id,
            dataset_root: self.request.dataset_root,
            epochs: self.request.epochs,
            state: self.state,
            progress: self.progress,
            error: self.error.clone(),
            failure: self.failure,
            evidence: self.evidence.clone(),
            result_manifest: self.manifest.as_ref().map(|m| m.0.clone()),
            result_signature: self.manifest.as_ref().map(|m| m.1),
            updated_at_ms: self.updated_at_ms,
        }
    }
}

struct Inner {
    work_root: PathBuf,
    storage: Storage,
    attestation: InsecureDevAttestationKey,
    measurement: [u8; 32],
    trainer_config: TrainerConfig,
    trainer: TrainerFactory,
    attempts: u32,
    retry_delay: Duration,
    payer: Option<Arc<dyn StoragePayer>>,
    jobs: Mutex<HashMap<u64, Job>>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Inner {
    fn jobs(&self) -> MutexGuard<'_, HashMap<u64, Job>> {
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn set_state(&self, job_id: u64, state: TaskState) {
        if let Some(job) = self.jobs().get_mut(&job_id) {
            job.state = state;
            job.updated_at_ms = now_ms();
        }
        info!(job = job_id, state = ?state, "task state");
    }

    fn fail(&self, job_id: u64, failure: Failure) {
        warn!(job = job_id, kind = ?failure.kind, reason = %failure.reason, "task failed");
        if let Some(job) = self.jobs().get_mut(&job_id) {
            job.state = TaskState::Failed;
            job.error = Some(failure.reason);
            job.failure = Some(failure.kind);
            job.secrets = None;
            job.updated_at_ms = now_ms();
        }
    }
}

/// A node serving in the background of the current tokio runtime.
#[derive(Debug)]
pub struct RunningComputeNode {
    addr: SocketAddr,
    attestation_key: [u8; 32],
    measurement: [u8; 32],
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningComputeNode {
    /// The bound address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The dev attestation public key.
    #[must_use]
    pub fn attestation_key(&self) -> [u8; 32] {
        self.attestation_key
    }

    /// The node's measurement.
    #[must_use]
    pub fn measurement(&self) -> [u8; 32] {
        self.measurement
    }

    /// Stops accepting requests and waits for the server to stop.
    ///
    /// # Errors
    /// The server's I/O error.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.wait().await
    }

    /// Waits until the server stops.
    ///
    /// # Errors
    /// The server's I/O error.
    pub async fn wait(self) -> std::io::Result<()> {
        self.task.await.map_err(std::io::Error::other)?
    }
}

fn create_private_dir(path: &Path) -> std::io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(path)
}

/// Opens the data dir (creating it and the dev attestation key), wipes work dirs left by a
/// crash, measures the binary, binds `config.listen` and serves in the background.
///
/// # Errors
/// [`NodeError`].
pub async fn start(config: NodeConfig) -> Result<RunningComputeNode, NodeError> {
    let io = |context: String| move |source| NodeError::Io { context, source };
    create_private_dir(&config.data_dir)
        .map_err(io(format!("creating {}", config.data_dir.display())))?;
    let work_root = config.data_dir.join(WORK_DIR);
    if work_root.exists() {
        std::fs::remove_dir_all(&work_root)
            .map_err(io(format!("wiping leftover {}", work_root.display())))?;
    }
    create_private_dir(&work_root).map_err(io(format!("creating {}", work_root.display())))?;
    let attestation = InsecureDevAttestationKey::load_or_create(&config.data_dir)?;
    let trainer_config = (config.trainer)().config();
    let tc = trainer_config.clone();
    let binary = config.measured_binary.clone();
    let measurement = tokio::task::spawn_blocking(move || match binary {
        Some(path) => crate::attestation::measure_binary(&path, &tc),
        None => crate::attestation::measure_current_exe(&tc),
    })
    .await
    .map_err(|e| NodeError::Io {
        context: "measuring the node binary".into(),
        source: std::io::Error::other(e),
    })??;
    let storage = config.storage.connect()?;
    warn!(
        attestation_key = %HexBytes(attestation.public_key()),
        measurement = %HexBytes(measurement),
        trainer = %trainer_config.name,
        "INSECURE development attestation: evidence is signed by a key on this machine and proves \
         nothing about confidentiality; whoever runs this node can read the data it trains on"
    );
    let inner = Arc::new(Inner {
        work_root,
        storage,
        attestation,
        measurement,
        trainer_config,
        trainer: config.trainer.clone(),
        attempts: config.storage_attempts.max(1),
        retry_delay: config.retry_delay,
        payer: config.payer.clone(),
        jobs: Mutex::new(HashMap::new()),
    });
    let attestation_key = inner.attestation.public_key();
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(io(format!("binding {}", config.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(io("reading the bound address".into()))?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = router(inner);
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
    });
    Ok(RunningComputeNode {
        addr,
        attestation_key,
        measurement,
        shutdown: Some(tx),
        task,
    })
}

fn router(inner: Arc<Inner>) -> Router {
    Router::new()
        .route("/v1/node", get(node_info))
        .route("/v1/jobs", post(create_job))
        .route("/v1/jobs/{id}", get(job_status))
        .route("/v1/jobs/{id}/key", post(submit_key))
        .route("/v1/jobs/{id}/ack", post(ack_job))
        .with_state(inner)
}

struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(ErrorBody { error: self.1 })).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        ApiError(r.status(), r.body_text())
    }
}

fn not_found(id: u64) -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        format!("no task for job {id} on this node (tasks are kept in memory only)"),
    )
}

async fn node_info(State(inner): State<Arc<Inner>>) -> Json<NodeInfo> {
    Json(NodeInfo {
        attestation_kind: INSECURE_DEV_KIND.into(),
        insecure: true,
        attestation_key: HexBytes(inner.attestation.public_key()),
        measurement: HexBytes(inner.measurement),
        trainer: inner.trainer_config.clone(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

async fn create_job(
    State(inner): State<Arc<Inner>>,
    body: Result<Json<CreateJobRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body?;
    if req.job_id == 0 {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "job_id must be a positive integer".into(),
        ));
    }
    if req.epochs == 0 {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "epochs must be at least 1".into(),
        ));
    }
    let result_key = PublicKey::from_bytes(&req.result_key.0);
    // A low-order key cannot be sealed to: refuse the task now rather than after training.
    let probe = licen_crypto::envelope::seal_key(
        &result_key,
        &StreamKey::from_bytes([0; 32]),
        &licen_crypto::result::result_context([0; 32], [0; 32]),
        &mut licen_crypto::rng::OsRng,
    );
    if probe.is_err() {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "result_key is not a usable X25519 public key (low-order point)".into(),
        ));
    }
    let mut jobs = inner.jobs();
    if let Some(existing) = jobs.get(&req.job_id)
        && existing.state != TaskState::Failed
    {
        if existing.request == req {
            let body = CreateJobResponse {
                evidence: existing.evidence.clone(),
            };
            return Ok((StatusCode::OK, Json(body)).into_response());
        }
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!(
                "job {} already has a task in state {:?} with other parameters",
                req.job_id, existing.state
            ),
        ));
    }
    let (hpke, node_public) = licen_crypto::generate_keypair(&mut licen_crypto::rng::OsRng);
    let signing = random_signing_key();
    let root = DatasetRoot(req.dataset_root.0.into());
    let evidence = inner.attestation.attest(
        JobId(req.job_id),
        &root,
        &node_public,
        &signing.verifying_key(),
        inner.measurement,
    );
    info!(
        job = req.job_id,
        dataset_root = %req.dataset_root,
        epochs = req.epochs,
        "task created (INSECURE development attestation)"
    );
    jobs.insert(
        req.job_id,
        Job {
            result_key,
            request: req,
            evidence: evidence.clone(),
            state: TaskState::Init,
            progress: None,
            error: None,
            failure: None,
            manifest: None,
            secrets: Some(JobSecrets { hpke, signing }),
            updated_at_ms: now_ms(),
        },
    );
    Ok((StatusCode::CREATED, Json(CreateJobResponse { evidence })).into_response())
}

async fn job_status(
    State(inner): State<Arc<Inner>>,
    UrlPath(id): UrlPath<u64>,
) -> Result<Json<JobStatus>, ApiError> {
    let jobs = inner.jobs();
    let job = jobs.get(&id).ok_or_else(|| not_found(id))?;
    Ok(Json(job.status()))
}

async fn ack_job(
    State(inner): State<Arc<Inner>>,
    UrlPath(id): UrlPath<u64>,
) -> Result<Json<JobStatus>, ApiError> {
    let mut jobs = inner.jobs();
    let job = jobs.get_mut(&id).ok_or_else(|| not_found(id))?;
    match job.state {
        TaskState::Delivered | TaskState::UserAcknowledged => {
            job.state = TaskState::UserAcknowledged;
            info!(job = id, state = ?job.state, "task state");
            job.state = TaskState::Finished;
            job.updated_at_ms = now_ms();
            info!(job = id, state = ?job.state, "task state");
        }
        TaskState::Finished => {}
        other => {
            return Err(ApiError(
                StatusCode::CONFLICT,
                format!("job {id} is {other:?}: only a Delivered task can be acknowledged"),
            ));
        }
    }
    Ok(Json(job.status()))
}

struct JobParams {
    job_id: u64,
    dataset_root: DatasetRoot,
    epochs: u16,
    dataset_size: Option<u64>,
    result_key: PublicKey,
    evidence: InsecureDevEvidence,
}

async fn submit_key(
    State(inner): State<Arc<Inner>>,
    UrlPath(id): UrlPath<u64>,
    body: Result<Json<SubmitKeyRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<JobStatus>), ApiError> {
    let Json(req) = body?;
    let (params, key, signing) = {
        let mut jobs = inner.jobs();
        let job = jobs.get_mut(&id).ok_or_else(|| not_found(id))?;
        if job.state != TaskState::Init || job.secrets.is_none() {
            return Err(ApiError(
                StatusCode::CONFLICT,
                format!(
                    "job {id} is {:?}: the dataset key is accepted once, in state Init",
                    job.state
                ),
            ));
        }
        let secrets = job.secrets.take().expect("checked above");
        let context = EnvelopeContext::OrchestratorToNode {
            job_id: JobId(id).to_be_bytes32(),
            dataset_root: job.request.dataset_root.0,
        };
        let opened = hex::decode(req.envelope.trim().trim_start_matches("0x"))
            .map_err(|_| "the envelope is not hex".to_string())
            .and_then(|bytes| open_key(&secrets.hpke, &bytes, &context).map_err(|e| e.to_string()));
        let key = match opened {
            Ok(key) => key,
            Err(reason) => {
                let reason = format!(
                    "the dataset key envelope does not open for job {id} on dataset {}: {reason}",
                    job.request.dataset_root
                );
                drop(jobs);
                inner.fail(id, Failure::new(FailureKind::Envelope, reason.clone()));
                let status = inner.jobs().get(&id).map(Job::status);
                return match status {
                    Some(s) => Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(s))),
                    None => Err(ApiError(StatusCode::UNPROCESSABLE_ENTITY, reason)),
                };
            }
        };
        job.state = TaskState::SettingUp;
        job.updated_at_ms = now_ms();
        let params = JobParams {
            job_id: id,
            dataset_root: DatasetRoot(job.request.dataset_root.0.into()),
            epochs: job.request.epochs,
            dataset_size: job.request.dataset_size,
            result_key: job.result_key.clone(),
            evidence: job.evidence.clone(),
        };
        (params, key, secrets.signing)
    };
    info!(job = id, "dataset key received; task SettingUp");
    tokio::spawn(supervise(inner.clone(), params, key, signing));
    let status = inner
        .jobs()
        .get(&id)
        .map(Job::status)
        .ok_or_else(|| not_found(id))?;
    Ok((StatusCode::ACCEPTED, Json(status)))
}

/// A job's work dir: created 0700, removed on [`WorkDir::wipe`] or drop (also on panic).
struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    fn create(work_root: &Path, job_id: u64) -> std::io::Result<Self> {
        let path = work_root.join(job_id.to_string());
        if path.exists() {
            std::fs::remove_dir_all(&path)?;
        }
        DirBuilder::new().mode(0o700).create(&path)?;
        Ok(WorkDir { path })
    }

    fn wipe(&self) -> std::io::Result<()> {
        match std::fs::remove_dir_all(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = self.wipe();
    }
}

async fn supervise(inner: Arc<Inner>, params: JobParams, key: StreamKey, signing: SigningKey) {
    let job_id = params.job_id;
    let work = match WorkDir::create(&inner.work_root, job_id) {
        Ok(w) => w,
        Err(e) => {
            inner.fail(
                job_id,
                Failure::new(
                    FailureKind::Node,
                    format!("compute node could not create its work dir: {e}"),
                ),
            );
            return;
        }
    };
    let path = work.path.clone();
    let task = tokio::spawn(pipeline(inner.clone(), params, key, signing, path));
    let outcome = match task.await {
        Ok(outcome) => outcome,
        Err(e) => Err(Failure::new(
            FailureKind::Node,
            format!("compute node internal error: the job task ended abnormally ({e})"),
        )),
    };
    if let Err(e) = work.wipe() {
        error!(job = job_id, error = %e, "could not wipe the work dir");
    }
    drop(work);
    match outcome {
        Ok((manifest, signature)) => {
            if let Some(job) = inner.jobs().get_mut(&job_id) {
                job.manifest = Some((manifest, signature));
                job.state = TaskState::Delivered;
                job.updated_at_ms = now_ms();
            }
            info!(job = job_id, state = ?TaskState::Delivered, "task state");
        }
        Err(reason) => inner.fail(job_id, reason),
    }
}

fn retryable(e: &licen_storage::Error) -> bool {
    use licen_storage::Error as E;
    matches!(
        e,
        E::Transport { .. }
            | E::Io { .. }
            | E::NotFound { .. }
            | E::NotFinalized { .. }
            | E::Rpc { .. }
            | E::Protocol { .. }
            | E::AllNodesFailed { .. }
            // Through a storage indexer: it or the nodes it names may be back shortly.
            | E::Indexer { .. }
            | E::NoCoveringNodes { .. }
            | E::NotLocated { .. }
    )
}

fn integrity(e: &licen_storage::Error) -> bool {
    use licen_storage::Error as E;
    matches!(
        e,
        E::LyingNode { .. } | E::Proof { .. } | E::SizeMismatch { .. }
    )
}

async fn with_retries<T, F, Fut>(inner: &Inner, what: &str, mut op: F) -> Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, licen_storage::Error>>,
{
    let mut delay = inner.retry_delay;
    let mut attempt = 1;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if retryable(&e) && attempt < inner.attempts => {
                warn!(attempt, error = %e, "{what} failed; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            Err(e) if retryable(&e) => {
                return Err(Failure::new(
                    FailureKind::StorageUnreachable,
                    format!("storage unreachable: {what} failed after {attempt} attempts: {e}"),
                ));
            }
            Err(e) if integrity(&e) => {
                return Err(Failure::new(
                    FailureKind::Ciphertext,
                    format!("{what} failed: {e}"),
                ));
            }
            Err(e) => {
                return Err(Failure::new(
                    FailureKind::Node,
                    format!("{what} failed: {e}"),
                ));
            }
        }
    }
}

fn blocking_failed(e: tokio::task::JoinError) -> Failure {
    Failure::new(
        FailureKind::Node,
        format!("compute node internal error: a worker thread ended abnormally ({e})"),
    )
}

async fn pipeline(
    inner: Arc<Inner>,
    p: JobParams,
    key: StreamKey,
    signing: SigningKey,
    work: PathBuf,
) -> Result<(ResultManifest, HexBytes<64>), Failure> {
    let id = p.job_id;
    let root_hex = HexBytes(*p.dataset_root.as_bytes());

    // SettingUp: download (verified against the root), decrypt inside the work dir.
    let sealed = work.join(SEALED_FILE);
    let options = DownloadOptions {
        expected_size: p.dataset_size,
    };
    with_retries(&inner, "downloading the dataset ciphertext", || {
        inner
            .storage
            .download_to_path(p.dataset_root.0, &sealed, options, None)
    })
    .await
    .map_err(|mut f| {
        if f.kind == FailureKind::Ciphertext {
            f.reason = format!(
                "the ciphertext from storage does not match dataset root {root_hex}: {}",
                f.reason
            );
        }
        f
    })?;
    let plaintext = work.join(PLAINTEXT_FILE);
    let (s, pt) = (sealed.clone(), plaintext.clone());
    tokio::task::spawn_blocking(move || decrypt(&s, &pt, &key))
        .await
        .map_err(blocking_failed)??;
    let _ = std::fs::remove_file(&sealed);
    inner.set_state(id, TaskState::SetUp);

    // Training.
    inner.set_state(id, TaskState::Training);
    let mut trainer = (inner.trainer)();
    let epochs = p.epochs;
    let progress_inner = inner.clone();
    let output = tokio::task::spawn_blocking(move || {
        let mut report = |prog: Progress| {
            if let Some(job) = progress_inner.jobs().get_mut(&id) {
                job.progress = Some(prog);
            }
        };
        trainer.train(&plaintext, epochs, &mut report)
    })
    .await
    .map_err(blocking_failed)?
    .map_err(|e: TrainError| match e {
        TrainError::InvalidDataset(_) => Failure::new(FailureKind::InvalidDataset, e.to_string()),
        other => Failure::new(FailureKind::Node, other.to_string()),
    })?;
    inner.set_state(id, TaskState::Trained);

    // Delivering: seal to the researcher, upload result and evidence, sign the manifest.
    inner.set_state(id, TaskState::Delivering);
    let sealed_result = licen_crypto::result::seal_result(
        &p.result_key,
        JobId(id).to_be_bytes32(),
        *p.dataset_root.as_bytes(),
        &output.result,
        &mut licen_crypto::rng::OsRng,
    )
    .map_err(|e| {
        Failure::new(
            FailureKind::Node,
            format!("sealing the result to the researcher's result key failed: {e}"),
        )
    })?;
    drop(output.result);
    let evidence_json = p.evidence.canonical_json();
    // One set of nodes for paying and uploading: each must have seen the payment it takes.
    let nodes = with_retries(&inner, "choosing the storage nodes for the result", || {
        inner.storage.upload_nodes()
    })
    .await?;
    if let Some(payer) = &inner.payer {
        for (what, bytes) in [("result", &sealed_result), ("evidence", &evidence_json)] {
            let tree = licen_storage::merkle::FileTree::from_bytes(bytes);
            payer.pay(&nodes, &tree).await.map_err(|e| {
                Failure::new(
                    FailureKind::Node,
                    format!("paying for the {what}'s storage failed: {e}"),
                )
            })?;
        }
    }
    let uploaded = with_retries(&inner, "uploading the sealed result", || {
        licen_storage::indexer::upload_bytes_to(&nodes, &sealed_result, None)
    })
    .await?;
    let evidence_up = with_retries(&inner, "uploading the attestation evidence", || {
        licen_storage::indexer::upload_bytes_to(&nodes, &evidence_json, None)
    })
    .await?;
    let manifest = ResultManifest {
        kind: RESULT_MANIFEST_KIND.into(),
        version: RESULT_MANIFEST_VERSION,
        job_id: id,
        dataset_root: root_hex,
        result_root: HexBytes(uploaded.root.0),
        result_size: uploaded.size,
        result_media_type: output.result_media_type,
        actual_epochs: output.actual_epochs,
        metrics: output.metrics,
        trainer: inner.trainer_config.name.clone(),
        trainer_measurement: HexBytes(inner.measurement),
        attestation_kind: INSECURE_DEV_KIND.into(),
        evidence_hash: HexBytes(p.evidence.hash()),
        evidence_root: HexBytes(evidence_up.root.0),
    };
    let signature = manifest.sign(&signing);
    info!(
        job = id,
        result_root = %manifest.result_root,
        evidence_root = %manifest.evidence_root,
        actual_epochs = manifest.actual_epochs,
        "result sealed, uploaded and signed"
    );
    Ok((manifest, signature))
}

/// Decrypts `sealed` into `plaintext` (created 0600, never overwriting).
fn decrypt(sealed: &Path, plaintext: &Path, key: &StreamKey) -> Result<(), Failure> {
    let node = |what: &str, e: std::io::Error| {
        Failure::new(
            FailureKind::Node,
            format!("compute node could not {what}: {e}"),
        )
    };
    let file =
        std::fs::File::open(sealed).map_err(|e| node("read the downloaded ciphertext", e))?;
    let mut reader =
        OpenReader::new(BufReader::with_capacity(1 << 20, file), key).map_err(|e| match e {
            licen_crypto::Error::HeaderAuthFailed => Failure::new(
                FailureKind::Ciphertext,
                "the dataset key does not open the ciphertext (sealed-stream header \
                 authentication failed): the envelope carries another key than the one the \
                 dataset was sealed with",
            ),
            other => Failure::new(
                FailureKind::Ciphertext,
                format!("the dataset ciphertext does not open: {other}"),
            ),
        })?;
    let out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(plaintext)
        .map_err(|e| node("create the work file", e))?;
    let mut w = BufWriter::with_capacity(1 << 20, out);
    let mut buf = zeroize::Zeroizing::new(vec![0u8; 1 << 16]);
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Failure::new(
                    FailureKind::Ciphertext,
                    format!("the dataset ciphertext does not open: {e}"),
                ));
            }
        };
        w.write_all(&buf[..n])
            .map_err(|e| node("write the work file", e))?;
    }
    w.flush().map_err(|e| node("write the work file", e))?;
    Ok(())
}
