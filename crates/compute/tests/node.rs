//! End-to-end tests of the compute node across real processes: an in-process storage node, the
//! `licen-compute-node` binary, and this test playing dataset owner, orchestrator and researcher.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use licen_compute::attestation::{
    ATTESTATION_KEY_FILE, ATTESTATION_PUBLIC_KEY_FILE, AttestationError, InsecureDevEvidence,
    VerifiedNode, measurement, verify_evidence,
};
use licen_compute::canonical::HexBytes;
use licen_compute::client::ComputeNodeClient;
use licen_compute::manifest::verify_result_manifest;
use licen_compute::node::{
    CreateJobRequest, CreateJobResponse, FailureKind, JobStatus, NodeInfo, TaskState,
};
use licen_compute::trainer::{SimulatedTrainer, Trainer};
use licen_crypto::envelope::{EnvelopeContext, reseal_key, seal_key};
use licen_crypto::rng::OsRng;
use licen_crypto::stream::DEFAULT_SEGMENT_SIZE;
use licen_crypto::{NoncePrefix, PublicKey, SealWriter, SecretKey, StreamKey, generate_keypair};
use licen_storage::client::DownloadOptions;
use licen_storage::node::{NodeConfig as StorageConfig, RunningNode};
use licen_storage::{RootBuilder, StorageClient};
use licen_types::{DatasetRoot, JobId};

const BIN: &str = env!("CARGO_BIN_EXE_licen-compute-node");

/// A `licen-compute-node` child process, killed on drop.
struct NodeProcess {
    child: Child,
    url: String,
    data_dir: PathBuf,
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_node(data_dir: &Path, storage_url: &str) -> NodeProcess {
    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--listen", "127.0.0.1:0", "--storage", storage_url])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(
            std::fs::File::create(data_dir.with_extension("log")).unwrap(),
        ))
        .spawn()
        .expect("spawn licen-compute-node");
    let stdout = child.stdout.take().unwrap();
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    // Keep reading so the node never writes into a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    NodeProcess {
        child,
        url,
        data_dir: data_dir.to_path_buf(),
    }
}

/// Dataset owner + orchestrator + researcher, with a storage node and a compute node process.
struct World {
    _dirs: tempfile::TempDir,
    storage: RunningNode,
    storage_client: StorageClient,
    node: NodeProcess,
    http: reqwest::Client,
    orchestrator_sk: SecretKey,
    orchestrator_pk: PublicKey,
    researcher_sk: SecretKey,
    researcher_pk: PublicKey,
}

/// A sealed, uploaded dataset and its owner → orchestrator envelope.
struct Dataset {
    root: DatasetRoot,
    size: u64,
    owner_envelope: Vec<u8>,
}

impl World {
    async fn new() -> World {
        let dirs = tempfile::tempdir().unwrap();
        let mut cfg = StorageConfig::new(dirs.path().join("storage"));
        cfg.listen = "127.0.0.1:0".parse().unwrap();
        let storage = licen_storage::node::start(cfg).await.unwrap();
        World::with_storage(dirs, storage, None)
    }

    fn with_storage(
        dirs: tempfile::TempDir,
        storage: RunningNode,
        node_storage_url: Option<String>,
    ) -> World {
        let storage_client = StorageClient::new(&storage.url()).unwrap();
        let url = node_storage_url.unwrap_or_else(|| storage.url());
        let node = spawn_node(&dirs.path().join("compute"), &url);
        let (orchestrator_sk, orchestrator_pk) = generate_keypair(&mut OsRng);
        let (researcher_sk, researcher_pk) = generate_keypair(&mut OsRng);
        World {
            _dirs: dirs,
            storage,
            storage_client,
            node,
            http: reqwest::Client::new(),
            orchestrator_sk,
            orchestrator_pk,
            researcher_sk,
            researcher_pk,
        }
    }

    /// Seals `plaintext` under a fresh key (as the owner does), uploads it, and wraps the key to
    /// the orchestrator. `envelope_key` replaces the key in the envelope (a wrong-key test).
    async fn publish(&self, plaintext: &[u8], envelope_key: Option<StreamKey>) -> Dataset {
        let key = StreamKey::random();
        let mut w = SealWriter::new(
            Vec::new(),
            &key,
            NoncePrefix::random(),
            DEFAULT_SEGMENT_SIZE,
        )
        .unwrap();
        w.write_all(plaintext).unwrap();
        let sealed = w.finish().unwrap();
        let mut rb = RootBuilder::new();
        rb.write_all(&sealed).unwrap();
        let root = rb.finish().root();
        let up = self
            .storage_client
            .upload_bytes(&sealed, None)
            .await
            .unwrap();
        assert_eq!(up.root, root);
        let root = DatasetRoot(root);
        let owner_envelope = seal_key(
            &self.orchestrator_pk,
            envelope_key.as_ref().unwrap_or(&key),
            &EnvelopeContext::OwnerToOrchestrator {
                dataset_root: *root.as_bytes(),
            },
            &mut OsRng,
        )
        .unwrap()
        .to_vec();
        Dataset {
            root,
            size: sealed.len() as u64,
            owner_envelope,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.node.url)
    }

    async fn create_job(&self, job: u64, data: &Dataset, epochs: u16) -> InsecureDevEvidence {
        let res = self.post_job(job, data, epochs).await;
        assert_eq!(res.status(), 201);
        res.json::<CreateJobResponse>().await.unwrap().evidence
    }

    /// `POST /v1/jobs` for `job` on `data`, with the researcher's result key.
    async fn post_job(&self, job: u64, data: &Dataset, epochs: u16) -> reqwest::Response {
        let req = CreateJobRequest {
            job_id: job,
            dataset_root: HexBytes(*data.root.as_bytes()),
            epochs,
            result_key: HexBytes(self.researcher_pk.to_bytes()),
            dataset_size: Some(data.size),
        };
        self.http
            .post(self.url("/v1/jobs"))
            .json(&req)
            .send()
            .await
            .unwrap()
    }

    fn trusted_key(&self) -> [u8; 32] {
        let text =
            std::fs::read_to_string(self.node.data_dir.join(ATTESTATION_PUBLIC_KEY_FILE)).unwrap();
        HexBytes::<32>::parse(text.trim(), "attestation key")
            .unwrap()
            .0
    }

    fn expected_measurement() -> [u8; 32] {
        measurement(
            &std::fs::read(BIN).unwrap(),
            &SimulatedTrainer::new().config(),
        )
    }

    fn verify(&self, ev: &InsecureDevEvidence, job: u64, data: &Dataset) -> VerifiedNode {
        verify_evidence(
            ev,
            &[self.trusted_key()],
            &[World::expected_measurement()],
            JobId(job),
            &data.root,
        )
        .unwrap()
    }

    /// The orchestrator step: re-seal the dataset key to the node for `for_job`.
    fn reseal(&self, data: &Dataset, node: &VerifiedNode, for_job: u64) -> String {
        let env = reseal_key(
            &self.orchestrator_sk,
            &data.owner_envelope,
            &EnvelopeContext::OwnerToOrchestrator {
                dataset_root: *data.root.as_bytes(),
            },
            &node.node_public_key,
            &EnvelopeContext::OrchestratorToNode {
                job_id: JobId(for_job).to_be_bytes32(),
                dataset_root: *data.root.as_bytes(),
            },
            &mut OsRng,
        )
        .unwrap();
        hex::encode(env.as_bytes())
    }

    async fn submit_key(&self, job: u64, envelope: &str) -> reqwest::StatusCode {
        self.http
            .post(self.url(&format!("/v1/jobs/{job}/key")))
            .json(&serde_json::json!({ "envelope": envelope }))
            .send()
            .await
            .unwrap()
            .status()
    }

    async fn status(&self, job: u64) -> JobStatus {
        let res = self
            .http
            .get(self.url(&format!("/v1/jobs/{job}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }

    async fn wait_final(&self, job: u64) -> JobStatus {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.status(job).await;
            if matches!(s.state, TaskState::Delivered | TaskState::Failed) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "job {job} stuck in {:?}",
                s.state
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn assert_work_dir_empty(&self) {
        let work = self.node.data_dir.join("work");
        let left: Vec<_> = std::fs::read_dir(&work).unwrap().collect();
        assert!(left.is_empty(), "work dir not wiped: {left:?}");
    }
}

const DATASET: &str = concat!(
    "{\"prompt\":\"What is the capital of France?\",\"completion\":\"Paris.\"}\n",
    "{\"prompt\":\"Two plus two\",\"completion\":\"is four\"}\n",
    "\n",
    "{\"prompt\":\"Say hi\",\"completion\":\"hi\"}\n",
);
// Whitespace tokens: (6 + 1) + (3 + 2) + (2 + 1) = 15 per epoch; 3 records.

#[tokio::test(flavor = "multi_thread")]
async fn job_is_trained_delivered_verified_and_opened_by_the_researcher() {
    let w = World::new().await;
    let data = w.publish(DATASET.as_bytes(), None).await;

    // The node advertises its INSECURE attestation key and measurement.
    let client = ComputeNodeClient::new(&w.node.url);
    let info: NodeInfo = client.node_info().await.unwrap();
    assert_eq!(info.attestation_kind, "insecure-dev");
    assert!(info.insecure);
    assert_eq!(info.attestation_key.0, w.trusted_key());
    assert_eq!(info.measurement.0, World::expected_measurement());
    assert_eq!(info.trainer.name, "simulated");
    assert!(!info.trainer.produces_weights);
    let key_mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(w.node.data_dir.join(ATTESTATION_KEY_FILE))
            .unwrap()
            .permissions(),
    );
    assert_eq!(key_mode & 0o777, 0o600);

    let ev = w.create_job(7, &data, 3).await;
    assert_eq!(ev.kind, "insecure-dev");
    let node = w.verify(&ev, 7, &data);
    assert_eq!(w.status(7).await.state, TaskState::Init);
    // Creating the same task again is idempotent.
    let again = w.create_job_status(7, &data, 3).await;
    assert_eq!(again, 200);

    let envelope = hex::decode(w.reseal(&data, &node, 7)).unwrap();
    let accepted = client.submit_key(JobId(7), &envelope).await.unwrap();
    assert_ne!(accepted.state, TaskState::Failed);
    let s = w.wait_final(7).await;
    assert_eq!(s.state, TaskState::Delivered, "error: {:?}", s.error);
    w.assert_work_dir_empty();
    // The key is accepted once.
    assert_eq!(w.submit_key(7, &w.reseal(&data, &node, 7)).await, 409);
    let err = client.submit_key(JobId(7), &envelope).await.unwrap_err();
    assert_eq!(err.status(), Some(409));

    // Logs say INSECURE and carry neither data nor key material.
    let log = std::fs::read_to_string(w.node.data_dir.with_extension("log")).unwrap();
    assert!(log.contains("INSECURE"), "{log}");
    for secret in ["Paris", "capital", &hex::encode(&envelope)] {
        assert!(!log.contains(secret), "log leaks {secret}: {log}");
    }
    let attestation_secret =
        std::fs::read_to_string(w.node.data_dir.join(ATTESTATION_KEY_FILE)).unwrap();
    assert!(!log.contains(attestation_secret.trim()));
    let work_mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(w.node.data_dir.join("work"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(work_mode & 0o777, 0o700);

    let manifest = s.result_manifest.unwrap();
    let signature = s.result_signature.unwrap();
    verify_result_manifest(&manifest, &signature, &node).unwrap();
    assert_eq!(manifest.actual_epochs, 3);
    assert_eq!(manifest.trainer, "simulated");
    assert_eq!(manifest.metrics["records"], 3);
    assert_eq!(manifest.metrics["tokens_per_epoch"], 15);
    let mut forged = manifest.clone();
    forged.actual_epochs = 2;
    assert!(verify_result_manifest(&forged, &signature, &node).is_err());

    // The evidence is in storage for anyone to audit.
    let ev_bytes = w
        .storage_client
        .download_to_vec(manifest.evidence_root.0.into(), DownloadOptions::default())
        .await
        .unwrap();
    assert_eq!(ev_bytes, ev.canonical_json());

    // The researcher downloads and opens the sealed result.
    let sealed = w
        .storage_client
        .download_to_vec(
            manifest.result_root.0.into(),
            DownloadOptions {
                expected_size: Some(manifest.result_size),
            },
        )
        .await
        .unwrap();
    let report = licen_crypto::result::open_result(
        &w.researcher_sk,
        JobId(7).to_be_bytes32(),
        *data.root.as_bytes(),
        &sealed,
    )
    .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&report).unwrap();
    assert_eq!(report["simulated"], true);
    assert_eq!(report["produces_weights"], false);
    assert_eq!(report["dataset"]["records"], 3);
    assert_eq!(report["dataset"]["tokens_per_epoch"], 15);
    assert_eq!(report["dataset"]["bytes"], DATASET.len());
    assert_eq!(report["dataset"]["schema"], "prompt_completion");
    assert_eq!(report["epochs_run"], 3);
    assert_eq!(report["epochs"].as_array().unwrap().len(), 3);
    for e in report["epochs"].as_array().unwrap() {
        assert_eq!(e["records"], 3);
        assert_eq!(e["tokens"], 15);
    }
    assert!(!String::from_utf8_lossy(&sealed).contains("Paris"));

    // Acknowledge → Finished.
    assert_eq!(
        client.ack(JobId(7)).await.unwrap().state,
        TaskState::Finished
    );
    assert_eq!(
        client.status(JobId(7)).await.unwrap().state,
        TaskState::Finished
    );
    assert_eq!(
        client.status(JobId(8)).await.unwrap_err().status(),
        Some(404)
    );
    w.storage.shutdown().await.unwrap();
}

impl World {
    async fn create_job_status(&self, job: u64, data: &Dataset, epochs: u16) -> u16 {
        self.post_job(job, data, epochs).await.status().as_u16()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_end_in_failed_with_a_reason_and_a_clean_work_dir() {
    let w = World::new().await;

    // 1. An envelope bound to another job (AAD jobId ‖ root) does not open.
    let data = w.publish(DATASET.as_bytes(), None).await;
    let ev = w.create_job(1, &data, 1).await;
    let node = w.verify(&ev, 1, &data);
    assert_eq!(w.submit_key(1, &w.reseal(&data, &node, 2)).await, 422);
    let s = w.status(1).await;
    assert_eq!(s.state, TaskState::Failed);
    assert_eq!(s.failure, Some(FailureKind::Envelope));
    let reason = s.error.unwrap();
    eprintln!("reason: {reason}");
    assert!(reason.contains("envelope does not open"), "{reason}");
    // A failed job can be created again, with fresh keys.
    let ev2 = w.create_job(1, &data, 1).await;
    assert_ne!(ev2.node_public_key, ev.node_public_key);

    // 2. Not JSONL: Failed naming the line, never its content.
    let bad = w
        .publish(b"{\"text\":\"fine\"}\nSECRET-CONTENT is not json\n", None)
        .await;
    let ev = w.create_job(3, &bad, 2).await;
    let node = w.verify(&ev, 3, &bad);
    assert_eq!(w.submit_key(3, &w.reseal(&bad, &node, 3)).await, 202);
    let s = w.wait_final(3).await;
    assert_eq!(s.state, TaskState::Failed);
    assert_eq!(s.failure, Some(FailureKind::InvalidDataset));
    let reason = s.error.unwrap();
    eprintln!("reason: {reason}");
    assert!(reason.contains("line 2"), "{reason}");
    assert!(reason.contains("not valid JSON"), "{reason}");
    assert!(!reason.contains("SECRET"), "{reason}");
    assert!(s.result_manifest.is_none());
    w.assert_work_dir_empty();

    // 3. The envelope opens but carries a key that does not open the ciphertext.
    let wrong = w
        .publish(DATASET.as_bytes(), Some(StreamKey::random()))
        .await;
    let ev = w.create_job(4, &wrong, 1).await;
    let node = w.verify(&ev, 4, &wrong);
    assert_eq!(w.submit_key(4, &w.reseal(&wrong, &node, 4)).await, 202);
    let s = w.wait_final(4).await;
    assert_eq!(s.state, TaskState::Failed);
    assert_eq!(s.failure, Some(FailureKind::Ciphertext));
    assert!(
        s.error
            .as_deref()
            .unwrap()
            .contains("does not open the ciphertext"),
        "{s:?}"
    );
    w.assert_work_dir_empty();

    // 4. A dataset storage does not have: Failed after retries.
    let missing = Dataset {
        root: DatasetRoot([0x42; 32].into()),
        size: 100,
        owner_envelope: seal_key(
            &w.orchestrator_pk,
            &StreamKey::random(),
            &EnvelopeContext::OwnerToOrchestrator {
                dataset_root: [0x42; 32],
            },
            &mut OsRng,
        )
        .unwrap()
        .to_vec(),
    };
    let ev = w.create_job(5, &missing, 1).await;
    let node = w.verify(&ev, 5, &missing);
    assert_eq!(w.submit_key(5, &w.reseal(&missing, &node, 5)).await, 202);
    let s = w.wait_final(5).await;
    assert_eq!(s.state, TaskState::Failed);
    assert_eq!(s.failure, Some(FailureKind::StorageUnreachable));
    let reason = s.error.unwrap();
    eprintln!("reason: {reason}");
    assert!(
        reason.contains("storage unreachable") && reason.contains("3 attempts"),
        "{reason}"
    );
    w.assert_work_dir_empty();

    // Bad requests are refused before a task exists.
    let mut req = CreateJobRequest {
        job_id: 6,
        dataset_root: HexBytes(*data.root.as_bytes()),
        epochs: 0,
        result_key: HexBytes(w.researcher_pk.to_bytes()),
        dataset_size: None,
    };
    let res = w
        .http
        .post(w.url("/v1/jobs"))
        .json(&req)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    req.epochs = 1;
    req.result_key = HexBytes([0; 32]);
    let res = w
        .http
        .post(w.url("/v1/jobs"))
        .json(&req)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("result_key"));

    // Unknown job, ack before delivery.
    let res = w.http.get(w.url("/v1/jobs/999")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let res = w.http.post(w.url("/v1/jobs/5/ack")).send().await.unwrap();
    assert_eq!(res.status(), 409);
}

#[tokio::test(flavor = "multi_thread")]
async fn tampered_evidence_and_wrong_measurements_are_rejected() {
    let w = World::new().await;
    let data = w.publish(DATASET.as_bytes(), None).await;
    let ev = w.create_job(11, &data, 1).await;
    let trusted = [w.trusted_key()];
    let m = [World::expected_measurement()];
    verify_evidence(&ev, &trusted, &m, JobId(11), &data.root).unwrap();

    let mut t = ev.clone();
    t.node_public_key.0[5] ^= 0x80; // an attacker's key
    assert!(matches!(
        verify_evidence(&t, &trusted, &m, JobId(11), &data.root),
        Err(AttestationError::BadSignature)
    ));
    let mut t = ev.clone();
    t.measurement.0[0] ^= 1;
    assert!(matches!(
        verify_evidence(&t, &trusted, &m, JobId(11), &data.root),
        Err(AttestationError::BadSignature)
    ));
    assert!(matches!(
        verify_evidence(&ev, &trusted, &[[9; 32]], JobId(11), &data.root),
        Err(AttestationError::MeasurementNotAllowed(_))
    ));
    assert!(matches!(
        verify_evidence(&ev, &trusted, &m, JobId(12), &data.root),
        Err(AttestationError::JobMismatch { .. })
    ));
    assert!(matches!(
        verify_evidence(&ev, &[[1; 32]], &m, JobId(11), &data.root),
        Err(AttestationError::UntrustedAttestationKey(_))
    ));
    // The JSON the node sent, edited as text, fails too.
    let mut json: serde_json::Value = serde_json::to_value(&ev).unwrap();
    json["job_id"] = 12.into();
    let edited: InsecureDevEvidence = serde_json::from_value(json).unwrap();
    assert!(verify_evidence(&edited, &trusted, &m, JobId(12), &data.root).is_err());
}

/// A storage "node" that forwards to the real one but flips data in downloaded segments.
async fn lying_proxy(upstream: String) -> String {
    use axum::body::Bytes;
    let http = reqwest::Client::new();
    let app = axum::Router::new().fallback(move |body: Bytes| {
        let http = http.clone();
        let upstream = upstream.clone();
        async move {
            let text = String::from_utf8_lossy(&body).to_string();
            let answer = http
                .post(&upstream)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let mut out = answer;
            if text.contains("zgs_downloadSegmentWithProof") {
                let mut v: serde_json::Value = serde_json::from_str(&out).unwrap();
                if let Some(data) = v["result"]["data"].as_str() {
                    let mut chars: Vec<char> = data.chars().collect();
                    chars[10] = if chars[10] == 'A' { 'B' } else { 'A' };
                    v["result"]["data"] = chars.into_iter().collect::<String>().into();
                }
                out = v.to_string();
            }
            ([("content-type", "application/json")], out)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread")]
async fn ciphertext_that_does_not_match_its_root_fails_the_job() {
    let dirs = tempfile::tempdir().unwrap();
    let mut cfg = StorageConfig::new(dirs.path().join("storage"));
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    let storage = licen_storage::node::start(cfg).await.unwrap();
    let proxy = lying_proxy(storage.url()).await;
    let w = World::with_storage(dirs, storage, Some(proxy));
    let data = w.publish(DATASET.as_bytes(), None).await;
    let ev = w.create_job(21, &data, 1).await;
    let node = w.verify(&ev, 21, &data);
    assert_eq!(w.submit_key(21, &w.reseal(&data, &node, 21)).await, 202);
    let s = w.wait_final(21).await;
    assert_eq!(s.state, TaskState::Failed);
    assert_eq!(s.failure, Some(FailureKind::Ciphertext));
    let reason = s.error.unwrap();
    eprintln!("reason: {reason}");
    assert!(reason.contains("does not match dataset root"), "{reason}");
    w.assert_work_dir_empty();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_multi_segment_dataset_is_counted_exactly() {
    let w = World::new().await;
    // ~1.3 MB of chat records: several 256 KiB storage segments and 64 KiB stream segments.
    let mut data = String::new();
    let records = 6000u64;
    for i in 0..records {
        data.push_str(&format!(
            "{{\"messages\":[{{\"role\":\"user\",\"content\":\"question number {i} about things\"}},{{\"role\":\"assistant\",\"content\":\"answer {i} with several words of padding to make the record longer\"}}]}}\n"
        ));
    }
    let tokens_per_record = 5 + 12;
    let published = w.publish(data.as_bytes(), None).await;
    assert!(published.size > 4 * 256 * 1024);
    let ev = w.create_job(31, &published, 2).await;
    let node = w.verify(&ev, 31, &published);
    assert_eq!(
        w.submit_key(31, &w.reseal(&published, &node, 31)).await,
        202
    );
    let s = w.wait_final(31).await;
    assert_eq!(s.state, TaskState::Delivered, "{:?}", s.error);
    let progress = s.progress.unwrap();
    assert_eq!((progress.epoch, progress.records_done), (2, records));
    let m = s.result_manifest.unwrap();
    verify_result_manifest(&m, &s.result_signature.unwrap(), &node).unwrap();
    assert_eq!(m.metrics["records"], records);
    assert_eq!(m.metrics["tokens_per_epoch"], records * tokens_per_record);
    assert_eq!(m.metrics["bytes"], data.len());
    assert_eq!(m.metrics["schema"], "messages");
    w.assert_work_dir_empty();
}
