//! Failure paths across real processes (`licen dev`, `licen orchestrator`, `licen
//! compute-node`): policy violations refused before any transaction; a grant that expires is
//! refunded to the wei; an orchestrator process killed with SIGKILL mid-job finishes the job
//! exactly once after a restart; corrupted ciphertext, a non-JSONL dataset and a compute node
//! killed mid-training each end in `failJob` with a full refund; `licen indexer` and `licen
//! orchestrator` run a job apart from `licen dev`, and an indexer of another deployment is
//! refused by the orchestrator, the web app and its own database; a dev chain that was lost
//! starts over with a fresh index and ledger, and its job 1 runs; orchestrator replicas sharing
//! a ledger (SQLite file or Postgres) hand the jobs over when the leader is paused or killed.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{
    Dev, Guarded, LICEN, OWNER_KEY, RESEARCHER_KEY, advance_chain_time, dev_address, free_port,
    get_json, indexed_job, indexed_timeline_until_completed, licen, licen_command, nonce,
    ok_json as ok, publish, refund_paid_by_transition, refused, request, rpc, wait_for_state,
};

const RESEARCHER: usize = 4;

/// A wallet nobody funded.
const POOR_KEY: &str = "0x1111111111111111111111111111111111111111111111111111111111111111";

/// Policy flags for [`publish`]: up to 3 epochs, 5 runs per researcher, research only (the
/// grant's TTL is each test's).
const FIVE_RESEARCH_RUNS: [&str; 6] = [
    "--max-epochs",
    "3",
    "--max-runs",
    "5",
    "--purposes",
    "research",
];

fn ports() -> [u16; 4] {
    [free_port(), free_port(), free_port(), free_port()]
}

fn write_rows(dir: &Path, name: &str, rows: usize) {
    let lines: String = (0..rows)
        .map(|i| format!("{{\"prompt\":\"question number {i}\",\"completion\":\"answer {i}\"}}\n"))
        .collect();
    std::fs::write(dir.join(name), lines).unwrap();
}

fn withdrawable(dir: &Path, dev: &Dev, key: &str) -> u128 {
    ok(licen(dir, dev, Some(key), &["earnings"]))["withdrawable_wei"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Starts a `licen` service and returns it with the JSON line it prints once it serves.
fn service(mut command: Command) -> (Guarded, serde_json::Value) {
    let (child, line) =
        common::spawn_service(command.stdin(Stdio::null()).stderr(Stdio::inherit()));
    let started =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("no start summary ({e}): {line:?}"));
    (child, started)
}

/// `licen orchestrator` as its own process, with the dev stack's key and account, following
/// grants through the indexer at `indexer_url`.
fn orchestrator(
    dir: &Path,
    dev: &Dev,
    indexer_url: &str,
    compute_url: &str,
    attestation_key: &str,
) -> Guarded {
    let (child, started) = service(orchestrator_command(
        dir,
        dev,
        indexer_url,
        &[
            "--compute-url",
            compute_url,
            "--compute-attestation-key",
            attestation_key,
        ],
    ));
    assert_eq!(started["grants_from"], indexer_url);
    child
}

/// The dev stack's compute node, for an orchestrator of one's own: its URL and its (insecure)
/// attestation key.
fn compute_node(dev: &Dev) -> (String, String) {
    let field = |name: &str| dev.summary[name].as_str().unwrap().to_owned();
    (field("compute_url"), field("compute_attestation_key"))
}

/// `licen orchestrator` with the dev orchestrator's wallet, the indexer at `indexer_url` and
/// the `compute` flags (nodes and their attestation keys).
fn orchestrator_command(dir: &Path, dev: &Dev, indexer_url: &str, compute: &[&str]) -> Command {
    let mut command = licen_command(
        dir,
        dev,
        &[&["orchestrator", "--indexer", indexer_url][..], compute].concat(),
    );
    command.env(
        "LICEN_PRIVATE_KEY",
        dev.summary["accounts"][2]["private_key"].as_str().unwrap(),
    );
    command
}

/// Runs a service command that must refuse to start; returns its error output.
fn refuses_to_start(mut command: Command) -> String {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("{command:?} started instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let said = refused(child.wait_with_output().unwrap());
    eprintln!("refused to start:\n{said}");
    said
}

#[test]
fn policy_violations_are_refused_before_any_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_rows(d, "data.jsonl", 20);
    let dev = Dev::start(d, ports());
    let root = publish(
        d,
        &dev,
        "data.jsonl",
        &[
            "--max-epochs",
            "2",
            "--max-runs",
            "1",
            "--ttl",
            "1h",
            "--purposes",
            "research",
            "--expiry",
            "2h",
        ],
    );
    let researcher = dev_address(&dev, RESEARCHER);
    let refuse = |args: &[&str], reason: &str| {
        let before = nonce(&dev, &researcher);
        let err = refused(licen(d, &dev, Some(RESEARCHER_KEY), args));
        assert!(err.contains(reason), "wanted `{reason}`, got: {err}");
        assert_eq!(
            nonce(&dev, &researcher),
            before,
            "a transaction was sent although the request was refused ({reason})"
        );
    };
    let ask = |epochs: &'static str, purpose: &'static str| {
        [
            "request",
            root.as_str(),
            "--epochs",
            epochs,
            "--purpose",
            purpose,
            "--yes",
        ]
    };
    refuse(
        &ask("3", "research"),
        "epochs 3 exceed this dataset's limit of 2 per run",
    );
    refuse(
        &ask("1", "evaluation"),
        "purpose `evaluation` is not allowed by this dataset",
    );
    ok(licen(d, &dev, Some(OWNER_KEY), &["pause", &root]));
    refuse(&ask("1", "research"), "is paused by its owner");
    let owner = dev_address(&dev, 3);
    let owner_nonce = nonce(&dev, &owner);
    let again = refused(licen(d, &dev, Some(OWNER_KEY), &["pause", &root]));
    assert!(
        again.contains("is already paused: nothing was sent"),
        "{again}"
    );
    ok(licen(d, &dev, Some(OWNER_KEY), &["resume", &root]));
    let again = refused(licen(d, &dev, Some(OWNER_KEY), &["resume", &root]));
    assert!(again.contains("is not paused"), "{again}");
    assert_eq!(
        nonce(&dev, &owner),
        owner_nonce + 1,
        "only the resume was sent"
    );

    // A wallet that cannot pay is told so with its balance, before anything is uploaded or
    // sent: the node's own "insufficient funds for gas * price + value" never reaches the user.
    let poor: alloy::signers::local::PrivateKeySigner = POOR_KEY.parse().unwrap();
    let poor_address = poor.address().to_string();
    let stored = || {
        std::fs::read_dir(d.join("state/dev/storage/files"))
            .unwrap()
            .count()
    };
    let files_before = stored();
    let err = refused(licen(
        d,
        &dev,
        Some(POOR_KEY),
        &[
            &[
                "publish",
                "data.jsonl",
                "--name",
                "unpaid",
                "--price",
                "0.01",
            ][..],
            &FIVE_RESEARCH_RUNS,
        ]
        .concat(),
    ));
    assert!(
        err.contains("publishing costs about")
            && err.contains(&format!("the wallet {poor_address} holds 0:"))
            && err.contains("nothing was uploaded"),
        "{err}"
    );
    assert_eq!(stored(), files_before, "nothing was uploaded");
    let err = refused(licen(d, &dev, Some(POOR_KEY), &ask("1", "research")));
    assert!(
        err.contains("this request escrows 0.01 plus gas, but the wallet")
            && err.contains("holds 0:"),
        "{err}"
    );
    // Exactly the escrow, nothing for gas: the chain refuses the send, said the same way.
    common::rpc(
        &dev,
        "anvil_setBalance",
        serde_json::json!([poor_address, "0x2386f26fc10000"]),
    );
    let err = refused(licen(d, &dev, Some(POOR_KEY), &ask("1", "research")));
    assert!(
        err.contains(&format!(
            "requestAccess needs 0.01 plus gas, but the wallet {poor_address} holds 0.01:"
        )) && !err.to_lowercase().contains("gas * price"),
        "{err}"
    );
    assert_eq!(nonce(&dev, &poor_address), 0, "nothing was sent");

    let (job, _) = request(d, &dev, &root, "1");
    refuse(&ask("1", "research"), "has used all the runs dataset");
    wait_for_state(d, &dev, job, &["completed"], 60);
    // Past the dataset's expiry (chain time, as the contract judges it).
    advance_chain_time(&dev, 3 * 3600);
    refuse(&ask("1", "research"), " GMT (unix ");
    dev.stop();
}

#[test]
fn expired_grant_is_refunded_and_a_sigkilled_orchestrator_finishes_the_job_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_rows(d, "short.jsonl", 10);
    write_rows(d, "long.jsonl", 20_000);
    let dev = Dev::start_with(d, ports(), &["--no-orchestrator"]);
    let (compute_url, attestation) = compute_node(&dev);
    let policy = FIVE_RESEARCH_RUNS;
    let short = publish(
        d,
        &dev,
        "short.jsonl",
        &[&policy[..], &["--ttl", "2s"]].concat(),
    );
    let long = publish(
        d,
        &dev,
        "long.jsonl",
        &[&policy[..], &["--ttl", "1h"]].concat(),
    );

    // No orchestrator runs: the first grant cannot start before its 2 s TTL ends.
    let (expiring, expiring_escrow) = request(d, &dev, &short, "1");
    std::thread::sleep(Duration::from_secs(3));
    let (job, escrow) = request(d, &dev, &long, "3");

    let indexer = dev.summary["indexer_url"].as_str().unwrap().to_owned();
    let first = orchestrator(d, &dev, &indexer, &compute_url, &attestation);
    assert_eq!(
        wait_for_state(d, &dev, expiring, &["expired"], 60),
        "expired"
    );
    // kill -9 once the job has started on-chain (the key released, the node training).
    wait_for_state(d, &dev, job, &["running", "completed"], 60);
    let mut first = first;
    first.0.kill().unwrap(); // SIGKILL
    first.0.wait().unwrap();
    let at_kill = ok(licen(d, &dev, None, &["job", &job.to_string()]))["state"].clone();
    eprintln!("orchestrator killed while job {job} was {at_kill}");
    assert_eq!(
        at_kill, "running",
        "the kill must land mid-job (enlarge the dataset)"
    );

    let second = orchestrator(d, &dev, &indexer, &compute_url, &attestation);
    wait_for_state(d, &dev, job, &["completed"], 90);
    // Exactly once: one start and one settlement in the indexed event history, and the owner
    // credited once (3 epochs × 0.01 less the 2.5 % dev fee).
    let timeline = indexed_timeline_until_completed(&dev, job);
    assert_eq!(timeline, ["granted", "running", "completed"]);
    assert_eq!(escrow, 30_000_000_000_000_000);
    assert_eq!(withdrawable(d, &dev, OWNER_KEY), 29_250_000_000_000_000);

    // The expired grant's escrow comes back to the wei, paid to the researcher's wallet by the
    // `expire` transaction itself: nothing is left to withdraw.
    assert_eq!(expiring_escrow, 10_000_000_000_000_000);
    let researcher = dev_address(&dev, RESEARCHER);
    assert_eq!(
        refund_paid_by_transition(&dev, expiring, "expired", &researcher),
        expiring_escrow
    );
    assert_eq!(withdrawable(d, &dev, RESEARCHER_KEY), 0);
    drop(second);
    dev.stop();
}

/// Publishes `plaintext` as-is through the library (no owner-side JSONL check), sealed to the
/// dev orchestrator's key read from the stack summary.
fn publish_unchecked(dev: &Dev, plaintext: &[u8]) -> String {
    use licen_crypto::envelope::{EnvelopeContext, PublicKey, seal_key};
    use licen_storage::client::StorageClient;
    let storage = StorageClient::new(dev.summary["storage_url"].as_str().unwrap()).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let key = licen_crypto::StreamKey::random();
        let sealed =
            licen_crypto::stream::seal(&key, &licen_crypto::NoncePrefix::random(), plaintext)
                .unwrap();
        let root = storage.upload_bytes(&sealed, None).await.unwrap().root;
        let mut orchestrator_key = [0u8; 32];
        hex::decode_to_slice(
            dev.summary["orchestrator_public_key"]
                .as_str()
                .unwrap()
                .trim_start_matches("0x"),
            &mut orchestrator_key,
        )
        .unwrap();
        let envelope = seal_key(
            &PublicKey::from_bytes(&orchestrator_key),
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
        let manifest = br#"{"allowed_trainer_measurements":[],"name":"not jsonl"}"#;
        let manifest_root = storage.upload_bytes(manifest, None).await.unwrap().root;
        let owner = licen_chain::DataPolicyClient::new(
            licen_chain::connect(
                dev.summary["rpc_url"].as_str().unwrap(),
                Some(OWNER_KEY.parse().unwrap()),
            )
            .unwrap(),
            dev.summary["contract"].as_str().unwrap().parse().unwrap(),
        );
        let policy = licen_types::Policy {
            price_per_epoch: 10_000_000_000_000_000,
            max_epochs_per_run: 3,
            max_runs_per_requester: 5,
            session_ttl: 3600,
            allowed_purposes: [licen_types::Purpose::Research].into_iter().collect(),
            expiry: None,
        };
        let dataset = licen_types::DatasetRoot(root);
        owner
            .publish(
                dataset,
                dev_address(dev, 2).parse().unwrap(),
                envelope_root,
                manifest_root,
                &policy,
            )
            .await
            .unwrap();
        dataset.to_string()
    })
}

/// Flips one byte of a file the storage node holds, as a rotting disk would.
fn corrupt_stored(dir: &Path, root: &str) {
    let files = dir.join("state/dev/storage/files");
    let hex = root.trim_start_matches("0x").to_ascii_lowercase();
    let entry = std::fs::read_dir(&files)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .to_ascii_lowercase()
                .contains(&hex)
        })
        .expect("the stored dataset");
    let data = entry.join("data");
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[100] ^= 0x01;
    std::fs::write(&data, bytes).unwrap();
}

fn node_state(url: &str, job: u64) -> Option<String> {
    let url = format!("{url}/v1/jobs/{job}");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let status: serde_json::Value = reqwest::get(&url).await.ok()?.json().await.ok()?;
        status["state"].as_str().map(str::to_owned)
    })
}

#[test]
fn unrecoverable_jobs_end_in_fail_job_with_a_full_refund() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_rows(d, "small.jsonl", 50);
    write_rows(d, "large.jsonl", 60_000);
    let dev = Dev::start_with(d, ports(), &["--no-orchestrator"]);
    // A compute node of its own, so the test can kill it.
    let mut node = Command::new(LICEN)
        .args([
            "compute-node",
            "--data-dir",
            "node",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
        ])
        .args(["--storage", dev.summary["storage_url"].as_str().unwrap()])
        .current_dir(d)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(node.stdout.take().unwrap()).lines();
    let node_url = lines
        .next()
        .unwrap()
        .unwrap()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    let attestation = lines.next().unwrap().unwrap();
    let attestation = attestation.split_whitespace().nth(4).unwrap().to_owned();
    let mut node = Guarded(node);
    let indexer = dev.summary["indexer_url"].as_str().unwrap().to_owned();
    let _orchestrator = orchestrator(d, &dev, &indexer, &node_url, &attestation);
    let policy = [&FIVE_RESEARCH_RUNS[..], &["--ttl", "1h"]].concat();

    let corrupted = publish(d, &dev, "small.jsonl", &policy);
    corrupt_stored(d, &corrupted);
    let not_jsonl = publish_unchecked(&dev, b"this is plain text, not JSON lines\n");
    let (bad_bytes, e1) = request(d, &dev, &corrupted, "1");
    let (bad_data, e2) = request(d, &dev, &not_jsonl, "2");

    // `licen job --watch --json` follows the timeline to its end, one object per line.
    let watched = licen_command(d, &dev, &["job", &bad_bytes.to_string(), "--watch"])
        .output()
        .unwrap();
    let states: Vec<String> = common::ok_text(watched)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["state"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(states.first().map(String::as_str), Some("granted"));
    assert_eq!(
        states.last().map(String::as_str),
        Some("failed"),
        "{states:?}"
    );
    wait_for_state(d, &dev, bad_data, &["failed"], 60);
    // The indexer may lag the chain by a poll: wait for it to hold the reason.
    let reason = |job| {
        let started = Instant::now();
        loop {
            if let Some(reason) = indexed_job(&dev, job)["fail_reason"].as_str() {
                return reason.to_owned();
            }
            assert!(
                started.elapsed().as_secs() < 20,
                "job {job}'s failure was not indexed"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let bytes_reason = reason(bad_bytes);
    assert!(
        bytes_reason.contains("root") || bytes_reason.contains("ciphertext"),
        "{bytes_reason}"
    );
    let data_reason = reason(bad_data);
    assert!(data_reason.contains("JSON"), "{data_reason}");

    // The node is killed mid-training: after retries the job fails, fully refunded.
    let large = publish(d, &dev, "large.jsonl", &policy);
    let (killed, e3) = request(d, &dev, &large, "3");
    let started = Instant::now();
    let at_kill = loop {
        match node_state(&node_url, killed).as_deref() {
            Some(state @ "Training") => break state.to_owned(),
            Some(state @ ("Trained" | "Delivering" | "Delivered" | "Finished" | "Failed")) => {
                panic!(
                    "training ended ({state}) before the node could be killed: enlarge the dataset"
                )
            }
            _ => {}
        }
        assert!(
            started.elapsed().as_secs() < 60,
            "the node never started job {killed}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    node.0.kill().unwrap();
    node.0.wait().unwrap();
    eprintln!("compute node killed while job {killed} was {at_kill}");
    wait_for_state(d, &dev, killed, &["failed"], 60);
    let killed_reason = reason(killed);
    assert!(killed_reason.contains("compute node"), "{killed_reason}");

    // Every failed job is refunded in full, to the wei, paid by its failJob transaction.
    let researcher = dev_address(&dev, RESEARCHER);
    for (job, escrow) in [(bad_bytes, e1), (bad_data, e2), (killed, e3)] {
        assert_eq!(
            refund_paid_by_transition(&dev, job, "failed", &researcher),
            escrow,
            "job {job}"
        );
    }
    assert_eq!(withdrawable(d, &dev, RESEARCHER_KEY), 0);
    assert_eq!(withdrawable(d, &dev, OWNER_KEY), 0);
    dev.stop();
}

/// `licen reclaim`: with no orchestrator running, a researcher's escrow is not stuck. A grant
/// never started is expired once its TTL ends (by anyone), a run that was started and never
/// settled is reclaimed once its run deadline passes (by its researcher only); each refunds the
/// escrow in full, and everything too early, by the wrong wallet or too late is refused with a
/// sentence and no transaction.
#[test]
fn a_stalled_jobs_escrow_is_taken_back_with_reclaim() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_rows(d, "rows.jsonl", 10);
    let dev = Dev::start_with(d, ports(), &["--no-orchestrator"]);
    let root = publish(
        d,
        &dev,
        "rows.jsonl",
        &[&FIVE_RESEARCH_RUNS[..], &["--ttl", "1h"]].concat(),
    );
    let (never_started, never_started_escrow) = request(d, &dev, &root, "1");
    let (stalled, stalled_escrow) = request(d, &dev, &root, "2");
    // The dev orchestrator (account 2, unlocked on anvil) starts the second job, then never
    // settles it.
    let start_job = format!(
        "0x{}{stalled:064x}",
        alloy::hex::encode(&alloy::primitives::keccak256("startJob(uint256)")[..4])
    );
    let orchestrator = dev_address(&dev, 2);
    common::rpc(
        &dev,
        "eth_sendTransaction",
        serde_json::json!([{"from": orchestrator, "to": dev.summary["contract"], "data": start_job}]),
    );
    assert_eq!(
        wait_for_state(d, &dev, stalled, &["running"], 30),
        "running"
    );
    let researcher = dev_address(&dev, RESEARCHER);
    let owner = dev_address(&dev, 3);
    let reclaim = |key: &str, job: u64| licen(d, &dev, Some(key), &["reclaim", &job.to_string()]);
    let sent = |who: &str| nonce(&dev, who);

    // Too early for both, and not the owner's to reclaim: sentences, nothing sent.
    let (researcher_nonce, owner_nonce) = (sent(&researcher), sent(&owner));
    let early = refused(reclaim(RESEARCHER_KEY, never_started));
    assert!(
        early.contains("may still be started until ") && early.contains(" GMT (unix "),
        "{early}"
    );
    let running = refused(reclaim(RESEARCHER_KEY, stalled));
    assert!(
        running.contains("is running: it may still be settled"),
        "{running}"
    );
    let not_theirs = refused(reclaim(OWNER_KEY, stalled));
    assert!(
        not_theirs.contains("only the researcher who requested job"),
        "{not_theirs}"
    );
    let missing = refused(reclaim(RESEARCHER_KEY, 99));
    assert!(missing.contains("there is no job 99"), "{missing}");
    assert_eq!(
        (sent(&researcher), sent(&owner)),
        (researcher_nonce, owner_nonce)
    );

    // Past the grant's TTL, anyone may expire it: the refund is paid to the researcher.
    advance_chain_time(&dev, 3601);
    let expired = ok(reclaim(OWNER_KEY, never_started));
    assert_eq!(expired["state"], "expired");
    assert_eq!(
        refund_paid_by_transition(&dev, never_started, "expired", &researcher),
        never_started_escrow
    );
    // Past the run deadline (one day on the dev chain), its researcher reclaims the run.
    advance_chain_time(&dev, 24 * 3600);
    let reclaimed = ok(reclaim(RESEARCHER_KEY, stalled));
    assert_eq!(reclaimed["state"], "reclaimed");
    assert_eq!(reclaimed["refund_wei"], stalled_escrow.to_string());
    assert_eq!(
        refund_paid_by_transition(&dev, stalled, "reclaimed", &researcher),
        stalled_escrow
    );
    let again = refused(reclaim(RESEARCHER_KEY, stalled));
    assert!(again.contains("there is nothing to take back"), "{again}");
    dev.stop();
}

#[test]
fn services_run_apart_and_refuse_an_indexer_of_another_deployment() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_rows(d, "rows.jsonl", 10);
    let dev = Dev::start_with(d, ports(), &["--no-orchestrator"]);
    let (compute_url, attestation) = compute_node(&dev);
    let contract = dev.summary["contract"].as_str().unwrap().to_owned();
    let listen = || format!("127.0.0.1:{}", free_port());

    // `licen indexer` on its own (SQLite under state/indexer), feeding `licen orchestrator`:
    // a job runs to settlement with neither inside `licen dev`.
    let indexer_command = |extra: &[&str]| {
        let mut args = vec!["indexer", "--poll-ms", "100"];
        args.extend_from_slice(extra);
        licen_command(d, &dev, &args)
    };
    let (indexer, started) = service(indexer_command(&["--listen", &listen()]));
    let indexer_url = started["indexer_url"].as_str().unwrap().to_owned();
    assert_eq!(started["contract"].as_str().unwrap(), contract);
    // Compute nodes and their attestation keys come in pairs.
    let said = refuses_to_start(orchestrator_command(
        d,
        &dev,
        &indexer_url,
        &[
            "--compute-url",
            &compute_url,
            "--compute-url",
            "http://127.0.0.1:9",
            "--compute-attestation-key",
            &attestation,
        ],
    ));
    assert!(
        said.contains("2 compute node URLs but 1 attestation keys"),
        "{said}"
    );
    let orchestrating = orchestrator(d, &dev, &indexer_url, &compute_url, &attestation);
    let root = publish(d, &dev, "rows.jsonl", common::ONE_RESEARCH_RUN);
    let (job, _) = request(d, &dev, &root, "2");
    wait_for_state(d, &dev, job, &["completed"], 90);
    let settled = Instant::now();
    loop {
        let indexed = get_json(&format!("{indexer_url}/jobs/{job}"));
        if indexed["state"] == "Completed" {
            break;
        }
        assert!(
            settled.elapsed() < Duration::from_secs(10),
            "the standalone indexer never showed the settlement: {indexed}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(orchestrating);

    // An indexer of another DataPolicy on the same chain: the orchestrator and the web app
    // refuse it, naming both deployments, before doing anything.
    let another = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let admin: alloy::signers::local::PrivateKeySigner =
            dev.summary["accounts"][0]["private_key"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
        let connection = licen_chain::connect(
            dev.summary["rpc_url"].as_str().unwrap(),
            Some(admin.clone()),
        )
        .unwrap();
        let params = licen_chain::DeployParams {
            admin: admin.address(),
            treasury: admin.address(),
            fee_bps: 0,
            run_timeout: 3600,
        };
        licen_chain::DataPolicyClient::deploy(connection, params)
            .await
            .unwrap()
            .1
            .address
            .to_string()
    });
    let elsewhere = another.as_str();
    let typo = "0x7777777777777777777777777777777777777777";
    let said = refuses_to_start(indexer_command(&["--contract", typo, "--data-dir", "typo"]));
    assert!(
        said.contains(&format!("there is no contract at {typo}")),
        "{said}"
    );
    let (_other, started) = service(indexer_command(&[
        "--contract",
        elsewhere,
        "--data-dir",
        "other",
        "--listen",
        &listen(),
    ]));
    let other_url = started["indexer_url"].as_str().unwrap().to_owned();
    let mismatch =
        format!("indexes DataPolicy {elsewhere} on chain 31337, not {contract} on chain 31337");
    let said = refuses_to_start(orchestrator_command(
        d,
        &dev,
        &other_url,
        &[
            "--compute-url",
            &compute_url,
            "--compute-attestation-key",
            &attestation,
        ],
    ));
    assert!(
        said.to_lowercase().contains(&mismatch.to_lowercase()),
        "{said}"
    );
    assert!(said.contains("licen indexer --contract"), "{said}");
    let said = refuses_to_start(licen_command(
        d,
        &dev,
        &[
            "web",
            "--contract",
            &contract,
            "--indexer",
            &other_url,
            "--listen",
            &listen(),
        ],
    ));
    assert!(
        said.to_lowercase().contains(&mismatch.to_lowercase()),
        "{said}"
    );

    // The first indexer's database holds this deployment: it will not index another into it.
    drop(indexer);
    let said = refuses_to_start(indexer_command(&[
        "--contract",
        elsewhere,
        "--listen",
        &listen(),
    ]));
    assert!(
        said.to_lowercase().contains(
            &format!("holds the events of DataPolicy {contract} on chain 31337, not {elsewhere}")
                .to_lowercase()
        ),
        "{said}"
    );
    dev.stop();
}

#[test]
fn a_lost_dev_chain_starts_over_with_a_fresh_index_and_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_rows(d, "rows.jsonl", 10);
    let ports = ports();
    let dev = Dev::start(d, ports);
    let root = publish(d, &dev, "rows.jsonl", common::ONE_RESEARCH_RUN);
    let (job, _) = request(d, &dev, &root, "1");
    wait_for_state(d, &dev, job, &["completed"], 60);
    dev.stop();

    // The chain is gone (its state file deleted or never written); the index and the ledger
    // of the old chain are still on disk. The new chain's first job is job 1 again.
    std::fs::remove_file(d.join("state/dev/anvil-state.json")).unwrap();
    let marker = d.join("state/dev/indexer/old-chain");
    std::fs::write(&marker, b"").unwrap();
    let dev = Dev::start(d, ports);
    assert_eq!(dev.summary["freshly_deployed"], true);
    assert!(
        !marker.exists(),
        "the old chain's index was discarded, not reused"
    );
    let again = publish(d, &dev, "rows.jsonl", common::ONE_RESEARCH_RUN);
    let (new_job, _) = request(d, &dev, &again, "1");
    assert_eq!(new_job, job);
    assert_eq!(
        wait_for_state(d, &dev, new_job, &["completed", "failed"], 60),
        "completed",
        "the orchestrator ran the new chain's job 1"
    );
    // The indexer may list the dataset a poll after the job settled on-chain.
    let listed_since = Instant::now();
    let roots = loop {
        let listed = get_json(&format!(
            "{}/datasets",
            dev.summary["indexer_url"].as_str().unwrap()
        ));
        let roots: Vec<String> = listed["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|item| item["root"].as_str().unwrap().to_owned())
            .collect();
        if !roots.is_empty() || listed_since.elapsed() > Duration::from_secs(10) {
            break roots;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(roots, [again], "only the new chain's dataset is listed");
    dev.stop();
}

#[test]
fn orchestrator_replicas_on_one_sqlite_ledger_hand_over_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("shared-ledger.sqlite");
    replicas_hand_over_jobs(dir.path(), &["--ledger", ledger.to_str().unwrap()]);
}

#[test]
fn orchestrator_replicas_on_one_postgres_ledger_hand_over_jobs() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(db) = runtime
        .block_on(licen_indexer::testing::TestDb::create(
            licen_indexer::Backend::Postgres,
        ))
        .unwrap()
    else {
        return; // the reason was printed
    };
    let dir = tempfile::tempdir().unwrap();
    replicas_hand_over_jobs(dir.path(), &["--ledger-url", db.url()]);
}

/// Two `licen orchestrator` replicas on one ledger: the first leads, the second stands by. The
/// leader is frozen (SIGSTOP) right after a grant: the standby takes over when its lease runs
/// out and settles the job; the old leader, thawed, finds it lost the lead and stands by. The
/// new leader is then killed outright: the standby, seeing its process gone, takes over at once
/// and settles the next job. Last, a leader stopped cleanly resigns and a standby leads at once.
fn replicas_hand_over_jobs(d: &Path, ledger: &[&str]) {
    write_rows(d, "rows.jsonl", 10);
    let dev = Dev::start_with(d, ports(), &["--no-orchestrator"]);
    let (compute_url, attestation) = compute_node(&dev);
    let indexer_url = dev.summary["indexer_url"].as_str().unwrap().to_owned();
    let replica = |log: &str| {
        let mut command = orchestrator_command(
            d,
            &dev,
            &indexer_url,
            &[
                &[
                    "--compute-url",
                    &compute_url,
                    "--compute-attestation-key",
                    &attestation,
                    "--lease",
                    "2s",
                ][..],
                ledger,
            ]
            .concat(),
        );
        command.stderr(std::fs::File::create(d.join(log)).unwrap());
        let (child, line) = common::spawn_service(command.stdin(Stdio::null()));
        let started: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("no start summary ({e}): {line:?}"));
        (child, started)
    };
    let log_says = |log: &str, what: &str| {
        let started = Instant::now();
        loop {
            let text = std::fs::read_to_string(d.join(log)).unwrap();
            if text.contains(what) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{log} never said {what:?}:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let signal = |child: &Guarded, signal: &str| {
        let status = Command::new("kill")
            .args([signal, &child.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} failed");
    };

    let (first, started) = replica("first.log");
    assert_eq!(started["leading"], true, "{started}");
    let first_name = started["replica"].as_str().unwrap().to_owned();
    let (second, started) = replica("second.log");
    assert_eq!(started["leading"], false, "{started}");
    assert_eq!(started["leader"], first_name.as_str());
    let second_name = started["replica"].as_str().unwrap().to_owned();
    assert_ne!(first_name, second_name);

    let root = publish(
        d,
        &dev,
        "rows.jsonl",
        &[&FIVE_RESEARCH_RUNS[..], &["--ttl", "1h"]].concat(),
    );
    let (job, _) = request(d, &dev, &root, "2");
    signal(&first, "-STOP");
    wait_for_state(d, &dev, job, &["completed"], 60);
    log_says("second.log", "this replica leads");
    // Before acting it held the wallet: what the frozen one signs after this can never be mined.
    log_says("second.log", "fenced the orchestrator's wallet");
    // Frozen right after the grant was mined, the first replica cannot have settled it.
    log_says("second.log", "job settled");
    let settled = ok(licen(d, &dev, None, &["job", &job.to_string()]));
    assert_eq!(settled["completion"]["actual_epochs"], 2, "{settled}");

    // Thawed, the old leader finds its lease taken and acts on nothing.
    signal(&first, "-CONT");
    log_says("first.log", "another replica took the lead");

    // The leader killed outright: its process is gone, so the standby takes over at once.
    let mut second = second;
    second.0.kill().unwrap();
    second.0.wait().unwrap();
    let (next, _) = request(d, &dev, &root, "1");
    wait_for_state(d, &dev, next, &["completed"], 60);
    log_says(
        "first.log",
        "taking over from the previous leader (its process is gone)",
    );
    let first_log = std::fs::read_to_string(d.join("first.log")).unwrap();
    assert!(
        !first_log.contains("lease had run out"),
        "the thawed replica must not have taken its old term back:\n{first_log}"
    );

    // A replica stopped cleanly resigns: a standby leads at once, not because it found the
    // process gone.
    let (third, started) = replica("third.log");
    assert_eq!(started["leading"], false, "{started}");
    signal(&first, "-TERM");
    let mut first = first;
    assert!(first.0.wait().unwrap().success());
    log_says("third.log", "this replica leads");
    let third_log = std::fs::read_to_string(d.join("third.log")).unwrap();
    assert!(
        third_log
            .contains("taking over from the previous leader (it stopped and released the lead)"),
        "{third_log}"
    );

    // Another process sends from the wallet while the third leads (the key used elsewhere, or a
    // replica acting on a stepped clock): the leader's next transaction is refused rather than
    // re-sent with a fresh nonce; it ends its term, leads again through the ledger, fences the
    // wallet afresh, and the job settles.
    log_says("third.log", "fenced the orchestrator's wallet");
    let wallet = dev.summary["accounts"][2]["address"].clone();
    rpc(
        &dev,
        "eth_sendTransaction",
        serde_json::json!([{"from": wallet, "to": wallet, "value": "0x0"}]),
    );
    let (last, _) = request(d, &dev, &root, "1");
    wait_for_state(d, &dev, last, &["completed"], 60);
    log_says(
        "third.log",
        "a transaction of this replica was refused: another process sent from the orchestrator's wallet",
    );
    let third_log = std::fs::read_to_string(d.join("third.log")).unwrap();
    assert_eq!(
        third_log
            .matches("fenced the orchestrator's wallet")
            .count(),
        2,
        "{third_log}"
    );
    drop(third);
}

/// 0G's Flow and market on `dev`'s chain (0G's own bytecode, `price` wei per 256-byte sector)
/// and a `licen storage-node --flow` following it: storage that, like 0G's, takes only files
/// paid for through the Flow.
struct FlowStorage {
    runtime: tokio::runtime::Runtime,
    admin: licen_chain::Connection,
    rpc: String,
    flow: String,
    flow_address: alloy::primitives::Address,
    storage: String,
    _node: common::StorageNode,
}

impl FlowStorage {
    fn start(d: &Path, dev: &Dev, price: u128) -> Self {
        let rpc = dev.summary["rpc_url"].as_str().unwrap().to_owned();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let admin: alloy::signers::local::PrivateKeySigner =
            dev.summary["accounts"][0]["private_key"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
        let admin = licen_chain::connect(&rpc, Some(admin)).unwrap();
        let zerog = runtime
            .block_on(licen_chain::testing::zerog::deploy_0g_flow(
                &admin,
                alloy::primitives::U256::from(price),
            ))
            .unwrap();
        let flow = zerog.flow.to_string();
        let node = common::StorageNode::start_with(
            &d.join("zerog"),
            &["--flow", &flow, "--rpc-url", &rpc],
        );
        let storage = node.url.clone();
        Self {
            runtime,
            admin,
            rpc,
            flow,
            flow_address: zerog.flow,
            storage,
            _node: node,
        }
    }

    /// Every file submitted to the Flow so far.
    fn submissions(&self) -> Vec<licen_chain::SubmittedFile> {
        use alloy::providers::Provider as _;
        let client = licen_chain::FlowClient::new(
            licen_chain::connect(&self.rpc, None).unwrap(),
            self.flow_address,
            licen_storage::zerog::FlowAbi::Current,
        );
        self.runtime.block_on(async {
            let head = self.admin.provider.get_block_number().await.unwrap();
            client.submissions(0, head).await.unwrap()
        })
    }

    /// `licen publish rows.jsonl --flow` to this storage, as the wallet `key`.
    fn publish(&self, d: &Path, dev: &Dev, key: &str) -> std::process::Output {
        licen(
            d,
            dev,
            Some(key),
            &[
                &[
                    "publish",
                    "rows.jsonl",
                    "--name",
                    "on 0G",
                    "--price",
                    "0.01",
                    "--storage",
                    &self.storage,
                    "--flow",
                    &self.flow,
                ][..],
                &FIVE_RESEARCH_RUNS[..],
            ]
            .concat(),
        )
    }

    /// `licen get ROOT` from this storage into `out`.
    fn get(&self, root: &str, out: &Path) {
        let got = Command::new(LICEN)
            .args(["get", root, "-o"])
            .arg(out)
            .args(["--storage", &self.storage])
            .output()
            .unwrap();
        assert!(
            got.status.success(),
            "{root}: {}",
            String::from_utf8_lossy(&got.stderr)
        );
    }
}

/// `licen publish --flow`: on 0G storage every file of a dataset (the sealed data, its key
/// envelope, its manifest) is paid for with a Flow submission to 0G's own Flow contract, all
/// three in one transaction, before it is uploaded to a node that, like a 0G node, accepts only
/// submitted files. A wallet that can pay the publish gas but not the storage fees is refused
/// before anything is paid.
#[test]
fn publish_with_flow_pays_for_every_file_before_uploading() {
    use alloy::providers::ext::AnvilApi as _;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_rows(d, "rows.jsonl", 40);
    let dev = Dev::start_with(d, ports(), &["--no-orchestrator"]);
    // 0.001 per sector: the dataset's storage costs far more than its publish gas.
    let zerog = FlowStorage::start(d, &dev, 10u128.pow(15));

    // Enough for the publish gas, not for the storage fees: refused before paying anything.
    let modest: alloy::signers::local::PrivateKeySigner =
        "0x2222222222222222222222222222222222222222222222222222222222222222"
            .parse()
            .unwrap();
    zerog
        .runtime
        .block_on(zerog.admin.provider.anvil_set_balance(
            modest.address(),
            alloy::primitives::U256::from(10u128.pow(16)),
        ))
        .unwrap();
    let said = refused(zerog.publish(d, &dev, &format!("0x{}", hex::encode(modest.to_bytes()))));
    assert!(said.contains("in Flow fees plus about"), "{said}");
    assert!(said.contains("nothing was paid or uploaded"), "{said}");
    assert!(zerog.submissions().is_empty());

    let published = ok(zerog.publish(d, &dev, OWNER_KEY));
    let paid = published["flow_submissions"].as_array().unwrap();
    assert_eq!(paid.len(), 3, "{published}");
    let seqs: Vec<_> = paid.iter().map(|p| p["tx_seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [0, 1, 2]);
    // In one transaction (batchSubmit).
    assert!(paid.iter().all(|p| p["tx"] == paid[0]["tx"]), "{published}");
    assert_eq!(zerog.submissions().len(), 3);
    // Each file is on the Flow-following node under its root.
    for root in ["dataset_root", "envelope_root", "manifest_root"] {
        let root = published[root].as_str().unwrap();
        zerog.get(root, &d.join(format!("{root}.back")));
    }
    let chain_root = published["dataset_root"].as_str().unwrap();
    let on_chain = ok(licen(d, &dev, None, &["dataset", chain_root]));
    assert_eq!(on_chain["state"], "open", "{on_chain}");
}

/// A whole job on storage that, like 0G's, takes only files paid for through the Flow contract
/// (0G's own Flow bytecode on the dev chain, a `licen storage-node --flow`): the owner pays for
/// the dataset's three files, the compute node operator for the result and its evidence, and
/// the orchestrator and compute node read and write through that node.
#[test]
fn a_whole_job_runs_on_storage_paid_through_the_flow() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_rows(d, "rows.jsonl", 30);
    let dev = Dev::start_with(d, ports(), &["--no-orchestrator"]);
    let zerog = FlowStorage::start(d, &dev, 1_000_000_000);
    let indexer_url = dev.summary["indexer_url"].as_str().unwrap().to_owned();
    // The compute node pays from its operator's wallet (dev account 5) the Flow the storage
    // node names: no --flow.
    let mut compute = Command::new(LICEN);
    compute
        .args([
            "--json",
            "compute-node",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(d.join("compute"))
        .args(["--storage", &zerog.storage])
        .args(["--rpc-url", &zerog.rpc])
        .env(
            "LICEN_PRIVATE_KEY",
            dev.summary["accounts"][5]["private_key"].as_str().unwrap(),
        )
        .env_remove("LICEN_KEYSTORE");
    let (_compute, started) = service(compute);
    let compute_url = started["compute_url"].as_str().unwrap().to_owned();
    let attestation = started["compute_attestation_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let _orchestrating = service(orchestrator_command(
        d,
        &dev,
        &indexer_url,
        &[
            "--compute-url",
            &compute_url,
            "--compute-attestation-key",
            &attestation,
            "--storage",
            &zerog.storage,
        ],
    ));
    let published = ok(zerog.publish(d, &dev, OWNER_KEY));
    assert_eq!(published["flow_submissions"].as_array().unwrap().len(), 3);
    let root = published["dataset_root"].as_str().unwrap().to_owned();
    let (job, _) = request(d, &dev, &root, "2");
    wait_for_state(d, &dev, job, &["completed"], 90);
    let settled = ok(licen(d, &dev, None, &["job", &job.to_string()]));
    assert_eq!(settled["completion"]["actual_epochs"], 2, "{settled}");
    // Five paid files: the dataset's three, the result and its evidence.
    let paid = zerog.submissions();
    assert_eq!(paid.len(), 5, "{paid:?}");
    let result_root = settled["completion"]["result_root"].as_str().unwrap();
    assert!(
        paid.iter().any(|f| f.root.to_string() == result_root),
        "the result was paid for: {paid:?}"
    );
    zerog.get(result_root, &d.join("result.sealed"));
}

/// `licen dev --flow` when anvil comes back older than the Flow node's record (killed before it
/// saved its state): the submissions the node recorded from the lost blocks would not hold, and
/// the chain hands their sequence numbers out again, so the node's files are discarded and the
/// stack starts its storage over; a clean restart keeps them.
#[test]
fn a_dev_flow_node_starts_over_when_anvil_comes_back_older() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_rows(d, "rows.jsonl", 5);
    let ports = ports();
    let lines = |path: &std::path::Path| {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let log = d.join("state/dev/storage-0g/submissions.jsonl");
    let dev = Dev::start_with(d, ports, &["--flow", "--no-orchestrator"]);
    dev.stop();
    let before_publishing = std::fs::read(d.join("state/dev/anvil-state.json")).unwrap();
    let dev = Dev::start_with(d, ports, &["--flow", "--no-orchestrator"]);
    let root = publish(d, &dev, "rows.jsonl", common::ONE_RESEARCH_RUN);
    assert_eq!(lines(&log), 3, "the three paid files are recorded");
    // The follower records how far it got once the range is read.
    let cursor = d.join("state/dev/storage-0g/flow-cursor.json");
    for _ in 0..40 {
        if std::fs::read_to_string(&cursor).is_ok_and(|c| c.contains("\"block\"")) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    dev.stop();

    // A clean restart keeps the node's files.
    let dev = Dev::start_with(d, ports, &["--flow", "--no-orchestrator"]);
    assert_eq!(lines(&log), 3);
    let got = ok(licen(
        d,
        &dev,
        None,
        &["get", &root, "-o", d.join("back").to_str().unwrap()],
    ));
    assert_eq!(got["root"], root.as_str());
    dev.stop();

    // Anvil comes back from before the publication: the node starts over.
    std::fs::write(d.join("state/dev/anvil-state.json"), before_publishing).unwrap();
    let dev = Dev::start_with(d, ports, &["--flow", "--no-orchestrator"]);
    let said = std::fs::read_to_string(d.join(common::DEV_STDERR)).unwrap();
    assert!(
        said.contains("discarding the Flow nodes' files"),
        "the dev stack said why the node starts over: {said}"
    );
    assert_eq!(lines(&log), 0, "no submission of the lost blocks is kept");
    // And the stack works: publishing pays the Flow again, from sequence number 0.
    let again = ok(licen(
        d,
        &dev,
        Some(common::OWNER_KEY),
        &[
            &[
                "publish",
                "rows.jsonl",
                "--name",
                "again",
                "--price",
                "0.01",
            ][..],
            common::ONE_RESEARCH_RUN,
        ]
        .concat(),
    ));
    assert_eq!(again["flow_submissions"][0]["tx_seq"], 0, "{again}");
    dev.stop();
}

/// A whole job on storage laid out the way 0G lays it out: `licen dev --flow --storage-shards 2`
/// runs two shard nodes following the Flow and a storage indexer naming them. The owner pays
/// for and spreads the dataset over both halves, the orchestrator and the compute node read
/// through the indexer, the compute node pays for and spreads its result, the indexer finds the
/// dataset's manifest for text search, and the researcher downloads the result, each segment
/// from the node holding it; one node alone refuses to hand out a whole file.
#[test]
fn a_whole_job_runs_on_sharded_storage_behind_a_storage_indexer() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // About 850 KB: four segments, two on each half.
    write_rows(d, "rows.jsonl", 15_000);
    let dev = Dev::start_with(d, ports(), &["--flow", "--storage-shards", "2"]);
    assert!(dev.summary["storage_url"].is_null(), "{}", dev.summary);
    let nodes = dev.summary["storage_nodes"].as_array().unwrap().clone();
    let shards: Vec<&str> = nodes.iter().map(|n| n["shard"].as_str().unwrap()).collect();
    assert_eq!(shards, ["0/2", "1/2"]);

    let published = ok(licen(
        d,
        &dev,
        Some(OWNER_KEY),
        &[
            &[
                "publish",
                "rows.jsonl",
                "--name",
                "sharded rows",
                "--price",
                "0.01",
            ][..],
            &FIVE_RESEARCH_RUNS,
        ]
        .concat(),
    ));
    assert_eq!(
        published["flow_submissions"].as_array().unwrap().len(),
        3,
        "the dev stack's Flow is paid without --flow: {published}"
    );
    let root = published["dataset_root"].as_str().unwrap().to_owned();
    for node in &nodes {
        let url = node["url"].as_str().unwrap();
        let alone = refused(licen(
            d,
            &dev,
            None,
            &["get", &root, "-o", "half", "--storage", url],
        ));
        assert!(alone.contains("holds shard"), "{alone}");
    }

    let (job, _) = request(d, &dev, &root, "2");
    wait_for_state(d, &dev, job, &["completed"], 120);
    let settled = ok(licen(d, &dev, None, &["job", &job.to_string()]));
    assert_eq!(settled["completion"]["actual_epochs"], 2, "{settled}");
    let downloaded = ok(licen(
        d,
        &dev,
        Some(RESEARCHER_KEY),
        &["download", &job.to_string(), "-o", "out"],
    ));
    assert_eq!(downloaded["job_id"], job, "{downloaded}");

    // The chain indexer read the manifest through the storage indexer too.
    let indexer = dev.summary["indexer_url"].as_str().unwrap();
    let started = Instant::now();
    loop {
        let found = get_json(&format!("{indexer}/datasets?q=sharded"));
        if found["items"].as_array().is_some_and(|items| {
            items
                .iter()
                .any(|i| i["root"].as_str() == Some(root.as_str()))
        }) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "text search never found the dataset: {found}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    dev.stop();
}
