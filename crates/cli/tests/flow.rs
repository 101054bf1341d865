//! Owner and researcher commands against a running `licen dev` stack (real anvil, real storage
//! node, real processes), including a graceful stop and a restart that keeps every state.

use std::path::Path;
use std::process::{Command, Output, Stdio};

mod common;
use common::{Dev, LICEN, free_port, ok_json as ok, refused};

/// Anvil's publicly known dev keys (insecure, local chain only): owner and researcher.
const OWNER_KEY: &str = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6";
const RESEARCHER_KEY: &str = "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a";

fn licen(dir: &Path, dev: &Dev, key: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(LICEN);
    command
        .arg("--json")
        .args(args)
        .current_dir(dir)
        .env("LICEN_DATA_DIR", "state")
        .env("LICEN_RPC_URL", dev.summary["rpc_url"].as_str().unwrap())
        .env(
            "LICEN_STORAGE_URL",
            dev.summary["storage_url"].as_str().unwrap(),
        )
        .env(
            "LICEN_INDEXER_URL",
            dev.summary["indexer_url"].as_str().unwrap(),
        )
        .env_remove("LICEN_PRIVATE_KEY")
        .env_remove("LICEN_CONTRACT")
        .stdin(Stdio::null());
    if let Some(key) = key {
        command.env("LICEN_PRIVATE_KEY", key);
    }
    command.output().unwrap()
}

#[test]
fn owner_and_researcher_flow_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lines: String = (0..200)
        .map(|i| format!("{{\"prompt\":\"q{i}\",\"completion\":\"a{i}\"}}\n"))
        .collect();
    std::fs::write(d.join("data.jsonl"), &lines).unwrap();
    std::fs::write(
        d.join("broken.jsonl"),
        "{\"prompt\":\"q\",\"completion\":\"a\"}\n{oops}\n",
    )
    .unwrap();
    let ports = [free_port(), free_port(), free_port(), free_port()];
    let dev = Dev::start(d, ports);
    // The stack's compute node answers and says what it is.
    let url = dev.summary["compute_url"].as_str().unwrap().to_owned();
    let info = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(licen_compute::client::ComputeNodeClient::new(url).node_info())
        .unwrap();
    assert!(info.insecure && info.attestation_kind == "insecure-dev");

    let policy = [
        "--price",
        "0.01",
        "--max-epochs",
        "5",
        "--max-runs",
        "2",
        "--ttl",
        "1h",
        "--purposes",
        "research,evaluation",
    ];
    let err = refused(licen(
        d,
        &dev,
        Some(OWNER_KEY),
        &[&["publish", "broken.jsonl", "--name", "b"][..], &policy].concat(),
    ));
    assert!(err.contains("line 2 is not valid JSON"), "{err}");
    assert!(!err.contains("oops"), "errors never echo dataset content");
    let err = refused(licen(
        d,
        &dev,
        None,
        &[&["publish", "data.jsonl", "--name", "x"][..], &policy].concat(),
    ));
    assert!(err.contains("no wallet"), "{err}");

    let published = ok(licen(
        d,
        &dev,
        Some(OWNER_KEY),
        &[
            &["publish", "data.jsonl", "--name", "QA pairs"][..],
            &policy,
        ]
        .concat(),
    ));
    let root = published["dataset_root"].as_str().unwrap().to_owned();
    assert_eq!(published["rows"], 200);
    assert!(
        std::fs::read_dir(d.join("state/tmp"))
            .unwrap()
            .next()
            .is_none(),
        "scratch ciphertext removed"
    );

    // Local policy checks give the contract's sentences before paying anything.
    let err = refused(licen(
        d,
        &dev,
        Some(RESEARCHER_KEY),
        &[
            "request",
            &root,
            "--epochs",
            "9",
            "--purpose",
            "research",
            "--yes",
        ],
    ));
    assert!(
        err.contains("epochs 9 exceed this dataset's limit of 5 per run"),
        "{err}"
    );
    let err = refused(licen(
        d,
        &dev,
        Some(RESEARCHER_KEY),
        &["request", &root, "--epochs", "2", "--purpose", "research"],
    ));
    assert!(err.contains("pass --yes"), "{err}");

    let job = ok(licen(
        d,
        &dev,
        Some(RESEARCHER_KEY),
        &[
            "request",
            &root,
            "--epochs",
            "2",
            "--purpose",
            "evaluation",
            "--yes",
        ],
    ));
    assert_eq!(job["job_id"], 1);
    assert_eq!(job["escrow_wei"], "20000000000000000");
    let again = ok(licen(
        d,
        &dev,
        Some(RESEARCHER_KEY),
        &[
            "request",
            &root,
            "--epochs",
            "1",
            "--purpose",
            "research",
            "--yes",
        ],
    ));
    assert_eq!(
        again["result_key"], job["result_key"],
        "result key is derived from the wallet"
    );

    let err = refused(licen(d, &dev, Some(RESEARCHER_KEY), &["pause", &root]));
    assert!(err.contains("does not own dataset"), "{err}");
    ok(licen(d, &dev, Some(OWNER_KEY), &["pause", &root]));
    let err = refused(licen(
        d,
        &dev,
        Some(RESEARCHER_KEY),
        &[
            "request",
            &root,
            "--epochs",
            "1",
            "--purpose",
            "research",
            "--yes",
        ],
    ));
    assert!(err.contains("paused"), "{err}");
    ok(licen(d, &dev, Some(OWNER_KEY), &["resume", &root]));
    ok(licen(
        d,
        &dev,
        Some(OWNER_KEY),
        &[
            &["update-policy", &root][..],
            &[
                "--price",
                "0.02",
                "--max-epochs",
                "5",
                "--max-runs",
                "3",
                "--purposes",
                "research",
            ],
        ]
        .concat(),
    ));

    let runtime = tokio::runtime::Runtime::new().unwrap();
    // The stack's orchestrator picks both grants up, attests the compute node, releases the key,
    // starts, trains (simulated) and settles them.
    for job in ["1", "2"] {
        let started = std::time::Instant::now();
        loop {
            let state = ok(licen(d, &dev, None, &["job", job]));
            if state["state"] == "completed" {
                break;
            }
            assert!(
                state["state"] == "granted" || state["state"] == "running",
                "job {job} ended {}",
                state["state"]
            );
            assert!(
                started.elapsed().as_secs() < 60,
                "job {job} did not complete in 60 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
    // The stack's indexer saw the whole timeline.
    let timeline_url = format!("{}/jobs/1", dev.summary["indexer_url"].as_str().unwrap());
    let started = std::time::Instant::now();
    let timeline = loop {
        let detail: serde_json::Value = runtime
            .block_on(async { reqwest::get(&timeline_url).await?.json().await })
            .unwrap_or_default();
        let states: Vec<String> = detail["timeline"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| t["state"].as_str().unwrap_or_default().to_ascii_lowercase())
            .collect();
        if states.last().map(String::as_str) == Some("completed")
            || started.elapsed().as_secs() > 20
        {
            break states;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(timeline, ["granted", "running", "completed"]);
    // The marketplace and job listings come from the indexer.
    let market = ok(licen(d, &dev, None, &["market", "--purpose", "research"]));
    let listed: Vec<&str> = market["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["root"].as_str())
        .collect();
    assert_eq!(listed, [root.as_str()]);
    let none = ok(licen(
        d,
        &dev,
        None,
        &["market", "--purpose", "medical-research"],
    ));
    assert!(none["items"].as_array().unwrap().is_empty());
    let mine = ok(licen(d, &dev, Some(RESEARCHER_KEY), &["jobs", "--mine"]));
    assert_eq!(mine["items"].as_array().unwrap().len(), 2);
    let err = refused(licen(
        d,
        &dev,
        Some(OWNER_KEY),
        &["download", "1", "-o", "owner-out"],
    ));
    assert!(err.contains("was requested by"), "{err}");
    let downloaded = ok(licen(
        d,
        &dev,
        Some(RESEARCHER_KEY),
        &["download", "1", "-o", "out"],
    ));
    assert_eq!(downloaded["actual_epochs"], 2);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("out/result.json")).unwrap()).unwrap();
    assert_eq!(
        report["dataset"]["records"], 200,
        "the report counts the real records"
    );
    assert!(!d.join("out/.result.sealed").exists() && !d.join("out/.result.partial").exists());
    let err = refused(licen(
        d,
        &dev,
        Some(RESEARCHER_KEY),
        &["download", "9", "-o", "out9"],
    ));
    assert!(err.contains("there is no job 9"), "{err}");

    // Royalty minus the 2.5 % dev fee, to the wei: (2 + 1) epochs × 0.01 (the price snapshotted
    // at request time, before the update) = 0.03 → owner 0.02925; every epoch was trained, so
    // the researcher gets no refund.
    let earnings = ok(licen(d, &dev, Some(OWNER_KEY), &["earnings"]));
    assert_eq!(earnings["withdrawable_wei"], "29250000000000000");
    let withdrawn = ok(licen(d, &dev, Some(OWNER_KEY), &["withdraw"]));
    assert_eq!(withdrawn["withdrawn_wei"], "29250000000000000");
    let err = refused(licen(d, &dev, Some(RESEARCHER_KEY), &["withdraw"]));
    assert!(err.contains("has nothing to withdraw"), "{err}");

    // A Foundry keystore works as the wallet too (made with the pinned cast).
    let cast = licen_toolchain::Tools::locate().cast();
    let made = Command::new(cast)
        .args([
            "wallet",
            "import",
            "researcher",
            "--private-key",
            RESEARCHER_KEY,
        ])
        .args(["--unsafe-password", "pw", "--keystore-dir"])
        .arg(d.join("keys"))
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let keystore = d.join("keys/researcher");
    let with_keystore = |password: &str| {
        let mut command = Command::new(LICEN);
        command
            .args(["--json", "earnings", "--keystore"])
            .arg(&keystore)
            .current_dir(d)
            .env("LICEN_DATA_DIR", "state")
            .env("LICEN_RPC_URL", dev.summary["rpc_url"].as_str().unwrap())
            .env("LICEN_KEYSTORE_PASSWORD", password)
            .env_remove("LICEN_PRIVATE_KEY")
            .stdin(Stdio::null());
        command.output().unwrap()
    };
    let account = ok(with_keystore("pw"));
    assert_eq!(
        account["account"],
        "0x15d34aaf54267db7d7c367839aaf71a00a2c6a65"
    );
    assert!(refused(with_keystore("wrong")).contains("could not open keystore"));

    // Stop gracefully and restart: the chain, the deployment and the jobs are all still there.
    dev.stop();
    let dev = Dev::start(d, ports);
    assert_eq!(dev.summary["freshly_deployed"], false);
    let state = ok(licen(d, &dev, None, &["job", "1"]));
    assert_eq!(state["state"], "completed");
    assert_eq!(state["dataset_root"], root.as_str());
    assert_eq!(state["escrow_wei"], "20000000000000000");
    let err = refused(licen(d, &dev, None, &["job", "9"]));
    assert!(err.contains("there is no job 9"), "{err}");
    dev.stop();
}
