//! Owner and researcher commands against a running `licen dev` stack (real anvil, real storage
//! node, real processes), including a graceful stop and a restart that keeps every state.

use std::process::{Command, Stdio};

mod common;
use common::{
    Dev, LICEN, ONE_RESEARCH_RUN, OWNER_KEY, RESEARCHER_KEY, free_port,
    indexed_timeline_until_completed, licen, ok_json as ok, publish, refused, request,
    wait_for_state,
};

/// States after which a job never changes.
const TERMINAL: [&str; 4] = ["completed", "failed", "expired", "reclaimed"];

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
    // A policy update changes the terms given and keeps every other one.
    let err = refused(licen(d, &dev, Some(OWNER_KEY), &["update-policy", &root]));
    assert!(err.contains("nothing to change"), "{err}");
    let updated = ok(licen(
        d,
        &dev,
        Some(OWNER_KEY),
        &[
            "update-policy",
            &root,
            "--price",
            "0.02",
            "--max-runs",
            "3",
            "--expiry",
            "30d",
        ],
    ));
    let terms = &updated["policy"];
    assert_eq!(terms["price_per_epoch_wei"], "20000000000000000");
    assert_eq!(terms["max_runs_per_requester"], 3);
    assert_eq!(terms["max_epochs_per_run"], 5, "kept: {updated}");
    assert_eq!(terms["session_ttl_s"], 3600, "kept: {updated}");
    assert_eq!(
        terms["allowed_purposes"],
        serde_json::json!(["research", "evaluation"]),
        "kept: {updated}"
    );
    assert!(terms["expires_at"].as_u64().is_some(), "{updated}");
    let updated = ok(licen(
        d,
        &dev,
        Some(OWNER_KEY),
        &["update-policy", &root, "--expiry", "none"],
    ));
    assert_eq!(updated["policy"]["expires_at"], serde_json::Value::Null);
    assert_eq!(
        updated["policy"]["price_per_epoch_wei"],
        "20000000000000000"
    );

    // The stack's orchestrator picks both grants up, attests the compute node, releases the key,
    // starts, trains (simulated) and settles them.
    for job in [1, 2] {
        let state = wait_for_state(d, &dev, job, &TERMINAL, 60);
        assert_eq!(state, "completed", "job {job} ended {state}");
    }
    // `licen job` shows the settlement: 2 epochs × 0.01, the owner's share after the 2.5 % fee.
    let settled = ok(licen(d, &dev, None, &["job", "1"]));
    let completion = &settled["completion"];
    assert_eq!(completion["actual_epochs"], 2, "{settled}");
    assert_eq!(completion["royalty_wei"], "20000000000000000");
    assert_eq!(completion["protocol_fee_wei"], "500000000000000");
    assert_eq!(completion["to_owner_wei"], "19500000000000000");
    assert_eq!(completion["refund_wei"], "0");
    // The stack's log says what the services did, and nothing secret: no record of the data,
    // no orchestrator key, no wallet key.
    let log = std::fs::read_to_string(d.join(common::DEV_STDERR)).unwrap();
    for activity in [
        "grant announced by the indexer",
        "job started on-chain",
        "dataset key released to the attested compute node",
        "job settled",
        "file finalized",
    ] {
        assert!(
            log.contains(activity),
            "`{activity}` is not in the log:\n{log}"
        );
    }
    let orchestrator_key = std::fs::read_to_string(d.join("state/dev/orchestrator.key")).unwrap();
    for secret in [
        "\"prompt\":\"q1",
        orchestrator_key.trim(),
        RESEARCHER_KEY.trim_start_matches("0x"),
        OWNER_KEY.trim_start_matches("0x"),
    ] {
        assert!(!log.contains(secret), "the log holds a secret");
    }
    // The stack's indexer saw the whole timeline.
    let timeline = indexed_timeline_until_completed(&dev, 1);
    assert_eq!(timeline, ["granted", "running", "completed"]);
    // The marketplace and job listings come from the indexer.
    let market = ok(licen(d, &dev, None, &["market", "--purpose", "research"]));
    let listed: Vec<&str> = market["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["dataset_root"].as_str())
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
    let earnings = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = Command::new(LICEN);
        command
            .args(["--json", "earnings"])
            .args(args)
            .current_dir(d)
            .env("LICEN_DATA_DIR", "state")
            .env("LICEN_RPC_URL", dev.summary["rpc_url"].as_str().unwrap())
            .env_remove("LICEN_PRIVATE_KEY")
            .env_remove("LICEN_KEYSTORE")
            .env_remove("LICEN_KEYSTORE_PASSWORD")
            .envs(env.iter().copied())
            .stdin(Stdio::null());
        command.output().unwrap()
    };
    let keystore = d.join("keys/researcher");
    let keystore = keystore.to_str().unwrap();
    let researcher = "0x15d34aaf54267db7d7c367839aaf71a00a2c6a65";
    let owner = "0x90f79bf6eb2c4f870365e785982e1f101e93b906";
    let account = |output| ok(output)["account"].as_str().unwrap().to_lowercase();
    // A flag names the wallet for this command: it wins over one exported in the shell.
    let with_password = ("LICEN_KEYSTORE_PASSWORD", "pw");
    assert_eq!(
        account(earnings(
            &["--keystore", keystore],
            &[with_password, ("LICEN_PRIVATE_KEY", OWNER_KEY)]
        )),
        researcher
    );
    assert_eq!(
        account(earnings(
            &["--private-key", OWNER_KEY],
            &[with_password, ("LICEN_KEYSTORE", keystore)]
        )),
        owner
    );
    assert_eq!(
        account(earnings(
            &[],
            &[with_password, ("LICEN_KEYSTORE", keystore)]
        )),
        researcher
    );
    let both = refused(earnings(
        &[],
        &[
            ("LICEN_KEYSTORE", keystore),
            ("LICEN_PRIVATE_KEY", OWNER_KEY),
        ],
    ));
    assert!(
        both.contains("both LICEN_KEYSTORE and LICEN_PRIVATE_KEY are set"),
        "{both}"
    );
    let wrong = refused(earnings(
        &["--keystore", keystore],
        &[("LICEN_KEYSTORE_PASSWORD", "wrong")],
    ));
    assert!(wrong.contains("could not open keystore"), "{wrong}");
    // A missing keystore is said before any password is asked for (none is set here).
    let nobody = d.join("keys/nobody");
    let missing = refused(earnings(&["--keystore", nobody.to_str().unwrap()], &[]));
    assert!(
        missing.contains("does not exist") && !missing.contains("password for"),
        "{missing}"
    );

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

/// Publish → request 2 epochs → real LoRA training on the tiny fixture model → settle →
/// download and unpack the PEFT adapter.
#[test]
fn lora_training_delivers_a_peft_adapter() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = d.join("tiny-llama");
    licen_lora::fixture::write_model(&model, &licen_lora::fixture::tiny_config(), 11).unwrap();
    let model_arg = model.to_str().unwrap();
    // A bad model folder is refused when the node starts, not when a job arrives.
    let err = refused(
        Command::new(LICEN)
            .args(["compute-node", "--trainer", "lora", "--model"])
            .arg(d.join("missing"))
            .args(["--storage", "http://127.0.0.1:1", "--data-dir"])
            .arg(d.join("node"))
            .output()
            .unwrap(),
    );
    assert!(err.contains("is not a directory"), "{err}");

    let lines: String = (0..48)
        .map(|i| {
            format!(
                "{{\"prompt\":\"add {i} and 1:\",\"completion\":\" {}\"}}\n",
                i + 1
            )
        })
        .collect();
    std::fs::write(d.join("data.jsonl"), &lines).unwrap();
    let ports = [free_port(), free_port(), free_port(), free_port()];
    let dev = Dev::start_with(
        d,
        ports,
        &[
            "--trainer",
            "lora",
            "--model",
            model_arg,
            "--learning-rate",
            "0.01",
            "--batch-size",
            "8",
        ],
    );
    assert_eq!(dev.summary["compute_trainer"], "lora");
    let root = publish(d, &dev, "data.jsonl", ONE_RESEARCH_RUN);
    let (job, _) = request(d, &dev, &root, "2");
    let id = job.to_string();
    let state = wait_for_state(d, &dev, job, &TERMINAL, 120);
    assert_eq!(state, "completed", "job ended {state}");
    let downloaded = ok(licen(
        d,
        &dev,
        Some(RESEARCHER_KEY),
        &["download", &id, "-o", "out"],
    ));
    assert_eq!(downloaded["actual_epochs"], 2);
    assert!(downloaded["file"].as_str().unwrap().ends_with("result.tar"));
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("out/adapter_config.json")).unwrap()).unwrap();
    assert_eq!(config["peft_type"], "LORA");
    assert_eq!(config["base_model_name_or_path"], "tiny-llama");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("out/training_report.json")).unwrap())
            .unwrap();
    assert_eq!(report["report"]["dataset"]["usable"], 48);
    assert_eq!(report["report"]["epochs_completed"], 2);
    let weights = std::fs::read(d.join("out/adapter_model.safetensors")).unwrap();
    let header_len = u64::from_le_bytes(weights[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&weights[8..8 + header_len]).unwrap();
    assert_eq!(
        header["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"]["shape"],
        serde_json::json!([8, 96])
    );
    // Both epochs trained and settled: 2 × 0.01 minus the 2.5 % dev fee to the owner.
    let earnings = ok(licen(d, &dev, Some(OWNER_KEY), &["earnings"]));
    assert_eq!(earnings["withdrawable_wei"], "19500000000000000");
    dev.stop();
}
