//! The orchestrator against a real anvil, a real storage node and a real compute node:
//! concurrent jobs settle exactly once, a crash mid-job is recovered from the ledger, and a job
//! whose key envelope does not open ends in `failJob` with a full refund; a ledger of a
//! replaced chain is refused; a job whose compute node stops answering moves to another node.

use alloy::primitives::B256;
use licen_chain::testing::TestEnv;
use licen_compute::node::RunningComputeNode;
use licen_crypto::envelope::{EnvelopeContext, SecretKey, seal_key};
use licen_crypto::{NoncePrefix, StreamKey};
use licen_orchestrator::{
    DEFAULT_LEASE, GrantSource, LedgerLocation, LocalProvider, Orchestrator, OrchestratorConfig,
    Stage,
};
use licen_storage::client::StorageClient;
use licen_storage::node::RunningNode;
use licen_types::{DatasetRoot, JobId, JobState, Policy, Purpose};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PRICE: u128 = 1_000_000_000_000_000;

struct Stack {
    env: TestEnv,
    storage: RunningNode,
    compute: RunningComputeNode,
    orchestrator_key: SecretKey,
    dir: tempfile::TempDir,
}

impl Stack {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let env = TestEnv::start().await.unwrap();
        let storage = licen_storage::node::start(licen_storage::node::NodeConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..licen_storage::node::NodeConfig::new(dir.path().join("storage"))
        })
        .await
        .unwrap();
        let compute = licen_compute::node::start(licen_compute::node::NodeConfig::new(
            dir.path().join("compute"),
            "127.0.0.1:0".parse().unwrap(),
            storage.url(),
        ))
        .await
        .unwrap();
        let orchestrator_key = SecretKey::random();
        env.admin
            .rotate_orchestrator_key(env.address_of(2), orchestrator_key.public_key().to_bytes())
            .await
            .unwrap();
        Self {
            env,
            storage,
            compute,
            orchestrator_key,
            dir,
        }
    }

    async fn orchestrator(&self) -> Orchestrator {
        Orchestrator::start(self.config()).await.unwrap()
    }

    fn config(&self) -> OrchestratorConfig {
        OrchestratorConfig {
            rpc_url: self.env.chain.rpc_url().to_owned(),
            contract: self.env.deployment.address,
            start_block: self.env.deployment.block,
            grants: GrantSource::Chain,
            signer: self.env.signer(2),
            key: SecretKey::from_bytes(&self.orchestrator_key.to_bytes()),
            storage: self.storage.url().into(),
            provider: Arc::new(LocalProvider::new(
                self.compute.url(),
                self.compute.attestation_key(),
            )),
            ledger: LedgerLocation::File(self.dir.path().join("ledger.sqlite")),
            lease: DEFAULT_LEASE,
            poll: Duration::from_millis(100),
            node_retry_delay: Duration::from_millis(200),
        }
    }

    /// Owner side: seal, upload ciphertext, envelope and manifest, publish.
    async fn publish(&self, rows: usize, tag: u8) -> DatasetRoot {
        let jsonl: String = (0..rows)
            .map(|i| format!("{{\"text\":\"row {i} of {tag}\"}}\n"))
            .collect();
        let key = StreamKey::random();
        let sealed =
            licen_crypto::stream::seal(&key, &NoncePrefix::random(), jsonl.as_bytes()).unwrap();
        let storage = StorageClient::new(&self.storage.url()).unwrap();
        let root = storage.upload_bytes(&sealed, None).await.unwrap().root;
        let envelope = seal_key(
            &self.orchestrator_key.public_key(),
            &key,
            &EnvelopeContext::OwnerToOrchestrator {
                dataset_root: root.0,
            },
            &mut licen_crypto::rng::OsRng,
        )
        .unwrap();
        let envelope_root = storage
            .upload_bytes(envelope.as_bytes(), None)
            .await
            .unwrap()
            .root;
        let manifest = br#"{"allowed_trainer_measurements":[],"name":"test"}"#;
        let manifest_root = storage.upload_bytes(manifest, None).await.unwrap().root;
        let policy = Policy {
            price_per_epoch: PRICE,
            max_epochs_per_run: 3,
            max_runs_per_requester: 100,
            session_ttl: 3600,
            allowed_purposes: [Purpose::Research].into_iter().collect(),
            expiry: None,
        };
        let dataset = DatasetRoot(root);
        self.env
            .owner
            .publish(
                dataset,
                self.env.address_of(2),
                envelope_root,
                manifest_root,
                &policy,
            )
            .await
            .unwrap();
        dataset
    }

    async fn request(&self, dataset: DatasetRoot, epochs: u16) -> (JobId, SecretKey) {
        let result_key = SecretKey::random();
        let (job, _) = self
            .env
            .researcher
            .request_access(
                dataset,
                epochs,
                Purpose::Research,
                result_key.public_key().to_bytes(),
                PRICE * u128::from(epochs),
            )
            .await
            .unwrap();
        (job, result_key)
    }

    /// The epochs `job` was settled for.
    async fn actual_epochs(&self, job: JobId) -> u16 {
        self.env
            .researcher
            .job_completion(job, 0)
            .await
            .unwrap()
            .expect("the job was settled")
            .actual_epochs
    }

    async fn wait_for(&self, job: JobId, wanted: JobState) {
        let started = Instant::now();
        loop {
            let state = self.env.researcher.job(job).await.unwrap().state;
            if state == wanted {
                return;
            }
            if started.elapsed() > Duration::from_secs(60) {
                // Say where the job is stuck: the ledger's stage and the node's task.
                let ledger =
                    licen_orchestrator::Ledger::open(&self.dir.path().join("ledger.sqlite"))
                        .await
                        .ok();
                let stage = match &ledger {
                    Some(ledger) => format!("{:?}", ledger.stage(job).await),
                    None => "unreadable".into(),
                };
                let task = licen_compute::client::ComputeNodeClient::new(self.compute.url())
                    .status(job)
                    .await
                    .map(|s| format!("{:?} (error {:?})", s.state, s.error))
                    .unwrap_or_else(|e| format!("none ({e})"));
                panic!(
                    "job {job} is {state}, wanted {wanted}; ledger stage {stage}; node task {task}"
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Waits until `orchestrator`'s ledger records `job` at `wanted` and returns the recorded
/// reason. The ledger is written just after the transaction's receipt, so a test that saw the
/// chain move can still find the ledger one step behind on a busy machine.
async fn ledger_reaches(orchestrator: &Orchestrator, job: JobId, wanted: Stage) -> Option<String> {
    let started = Instant::now();
    loop {
        let (stage, reason) = orchestrator.ledger().stage(job).await.unwrap().unwrap();
        if stage == wanted {
            return reason;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "job {job} stays at {stage:?} in the ledger, wanted {wanted:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_jobs_settle_once_with_the_real_result() {
    let stack = Stack::start().await;
    let dataset = stack.publish(50, 1).await;
    let orchestrator = stack.orchestrator().await;
    let mut jobs = Vec::new();
    for _ in 0..8 {
        jobs.push(stack.request(dataset, 2).await);
    }
    for (job, _) in &jobs {
        stack.wait_for(*job, JobState::Completed).await;
    }
    // Every job settled exactly once: the owner got 8 × 2 epochs of royalty minus the fee.
    let royalty = 8 * 2 * PRICE;
    let fee = royalty * u128::from(licen_chain::testing::TEST_FEE_BPS) / 10_000;
    assert_eq!(
        stack
            .env
            .owner
            .withdrawable(stack.env.address_of(3))
            .await
            .unwrap(),
        royalty - fee
    );
    assert_eq!(stack.env.owner.live_escrow().await.unwrap(), 0);

    // The result the researcher opens is the node's report about the real records.
    let (job, secret) = &jobs[0];
    let completion = stack
        .env
        .researcher
        .job_completion(*job, 0)
        .await
        .unwrap()
        .unwrap();
    let storage = StorageClient::new(&stack.storage.url()).unwrap();
    let sealed = storage
        .download_to_vec(completion.result_hash, Default::default())
        .await
        .unwrap();
    let report = licen_crypto::result::open_result(
        secret,
        job.to_be_bytes32(),
        *dataset.as_bytes(),
        &sealed,
    )
    .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&report).unwrap();
    assert_eq!(report["dataset"]["records"], 50);
    assert_eq!(
        stack.env.researcher.job(*job).await.unwrap().state,
        JobState::Completed
    );
    ledger_reaches(&orchestrator, *job, Stage::Settled).await;
    orchestrator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_job_is_recovered_from_the_ledger() {
    let stack = Stack::start().await;
    let dataset = stack.publish(20, 2).await;
    let (job, _) = stack.request(dataset, 1).await;
    let first = stack.orchestrator().await;
    // Stop (abandoning in-flight steps) as soon as the job has started on-chain.
    stack.wait_for(job, JobState::Running).await;
    first.stop().await;
    let state = stack.env.researcher.job(job).await.unwrap().state;
    assert!(
        matches!(state, JobState::Running | JobState::Completed),
        "{state}"
    );

    let second = stack.orchestrator().await;
    stack.wait_for(job, JobState::Completed).await;
    assert_eq!(stack.actual_epochs(job).await, 1);
    ledger_reaches(&second, job, Stage::Settled).await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envelope_that_does_not_open_ends_in_fail_job_with_a_full_refund() {
    let stack = Stack::start().await;
    let dataset = stack.publish(10, 3).await;
    // The owner rotates to an envelope bound to another root: it does not open for this
    // dataset, so the key can never be released. The job must fail (full refund), not start.
    let bogus = DatasetRoot(B256::repeat_byte(0x42));
    let storage = StorageClient::new(&stack.storage.url()).unwrap();
    let envelope = seal_key(
        &stack.orchestrator_key.public_key(),
        &StreamKey::random(),
        &EnvelopeContext::OwnerToOrchestrator {
            dataset_root: bogus.0.0,
        },
        &mut licen_crypto::rng::OsRng,
    )
    .unwrap();
    let wrong_envelope = storage
        .upload_bytes(envelope.as_bytes(), None)
        .await
        .unwrap()
        .root;
    stack
        .env
        .owner
        .rotate_envelope(dataset, wrong_envelope)
        .await
        .unwrap();

    let orchestrator = stack.orchestrator().await;
    let researcher = stack.env.address_of(4);
    let before = stack.env.balance(researcher).await.unwrap();
    let (job, _) = stack.request(dataset, 2).await;
    stack.wait_for(job, JobState::Failed).await;
    // failJob paid the escrow straight back: the wallet is down only the request's gas (far below one epoch).
    let spent = before - stack.env.balance(researcher).await.unwrap();
    assert!(
        spent < PRICE,
        "escrow not refunded: wallet is down {spent} wei"
    );
    assert_eq!(
        stack.env.researcher.withdrawable(researcher).await.unwrap(),
        0
    );
    assert_eq!(
        stack
            .env
            .researcher
            .runs_used(dataset, stack.env.address_of(4))
            .await
            .unwrap(),
        0
    );
    let reason = ledger_reaches(&orchestrator, job, Stage::Failed).await;
    assert!(reason.unwrap().contains("envelope does not open"));
    orchestrator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_of_a_replaced_chain_is_refused_not_trusted() {
    let first = Stack::start().await;
    let dataset = first.publish(5, 4).await;
    let (job, _) = first.request(dataset, 1).await;
    let orchestrator = first.orchestrator().await;
    first.wait_for(job, JobState::Completed).await;
    ledger_reaches(&orchestrator, job, Stage::Settled).await;
    orchestrator.stop().await;

    // A fresh chain deploys DataPolicy to the same address, and its first job is job 1 again:
    // the old ledger would take it for the job it already settled.
    let second = Stack::start().await;
    assert_eq!(second.env.deployment.address, first.env.deployment.address);
    let refused = Orchestrator::start(OrchestratorConfig {
        ledger: LedgerLocation::File(first.dir.path().join("ledger.sqlite")),
        lease: DEFAULT_LEASE,
        ..second.config()
    })
    .await
    .err()
    .expect("a ledger of another chain must be refused")
    .to_string();
    // Two fresh anvils started within the same second can build bit-identical blocks up to the
    // deployment, so the anchor hash cannot always tell them apart; the job ids can.
    assert!(
        (refused.contains("it belongs to a chain that was replaced")
            || refused.contains("the chain lost blocks the ledger saw"))
            && refused.contains("--ledger"),
        "{refused}"
    );
    // Its own ledger runs the new job 1.
    let dataset = second.publish(5, 5).await;
    let (again, _) = second.request(dataset, 1).await;
    assert_eq!(again, job);
    let orchestrator = second.orchestrator().await;
    second.wait_for(again, JobState::Completed).await;
    orchestrator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_compute_node_stops_answering_moves_to_another_node() {
    let stack = Stack::start().await;
    let node = |name: &'static str| {
        licen_compute::node::start(licen_compute::node::NodeConfig::new(
            stack.dir.path().join(name),
            "127.0.0.1:0".parse().unwrap(),
            stack.storage.url(),
        ))
    };
    // Two nodes, each with its own attestation key, both trusted.
    let (first, second) = (
        node("compute-a").await.unwrap(),
        node("compute-b").await.unwrap(),
    );
    let (first_url, second_url) = (first.url(), second.url());
    let orchestrator = Orchestrator::start(OrchestratorConfig {
        provider: Arc::new(LocalProvider::with_nodes(vec![
            (first.url(), first.attestation_key()),
            (second.url(), second.attestation_key()),
        ])),
        ..stack.config()
    })
    .await
    .unwrap();

    // Job 1 goes to the first node, which stops answering once the job runs (the key was
    // released to it): the job moves to the second node, attested afresh with the key
    // re-sealed to it, and settles there instead of being failed and refunded.
    let dataset = stack.publish(20_000, 6).await;
    let (job, _) = stack.request(dataset, 3).await;
    stack.wait_for(job, JobState::Running).await;
    let ledger = orchestrator.ledger();
    assert_eq!(ledger.node(job).await.unwrap(), Some(first_url));
    first.shutdown().await.unwrap();
    stack.wait_for(job, JobState::Completed).await;
    assert_eq!(ledger.node(job).await.unwrap(), Some(second_url));
    assert_eq!(stack.actual_epochs(job).await, 3);
    orchestrator.stop().await;
    second.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_ahead_of_a_rolled_back_chain_is_refused() {
    use alloy::providers::ext::AnvilApi;
    let stack = Stack::start().await;
    let dataset = stack.publish(5, 7).await;
    let provider = stack.env.admin.provider();
    let before_the_job = provider.anvil_snapshot().await.unwrap();
    let (job, _) = stack.request(dataset, 1).await;
    let orchestrator = stack.orchestrator().await;
    stack.wait_for(job, JobState::Completed).await;
    ledger_reaches(&orchestrator, job, Stage::Settled).await;
    orchestrator.stop().await;

    // The chain loses the job (a node killed before it saved its state comes back older): the
    // next request would be job 1 again, which the ledger settled already.
    assert!(provider.anvil_revert(before_the_job).await.unwrap());
    let refused = Orchestrator::start(stack.config())
        .await
        .err()
        .expect("a ledger ahead of the chain must be refused")
        .to_string();
    assert!(
        refused.contains(&format!(
            "this ledger acted on job {job}, but the chain's next job id is {job}"
        )) && refused.contains("rolled back"),
        "{refused}"
    );
}
