//! The `licen` binary as a user runs it: real processes, real files, real storage node.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

mod common;
use common::{LICEN, StorageNode, free_port, ok_json as json, ok_text as ok, refused as failed};

fn licen(dir: &Path, args: &[&str]) -> Output {
    Command::new(LICEN)
        .args(args)
        .current_dir(dir)
        .env_remove("LICEN_STORAGE_URL")
        .output()
        .expect("licen runs")
}

#[test]
fn seal_put_get_open_round_trips_and_tampering_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let plaintext: Vec<u8> = (0..700_000u32).flat_map(|i| i.to_le_bytes()).collect();
    std::fs::write(d.join("data.jsonl"), &plaintext).unwrap();

    let keygen = json(licen(d, &["--json", "keygen", "-o", "researcher.key"]));
    let mode = std::fs::metadata(d.join("researcher.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "key files are private");
    let public = keygen["public_key"].as_str().unwrap().to_owned();
    assert!(failed(licen(d, &["keygen", "-o", "researcher.key"])).contains("never overwritten"));

    let sealed = json(licen(
        d,
        &[
            "--json",
            "seal",
            "data.jsonl",
            "--to",
            &public,
            "-o",
            "data.sealed",
        ],
    ));
    let root = sealed["dataset_root"].as_str().unwrap().to_owned();
    assert_eq!(ok(licen(d, &["root", "data.sealed"])).trim(), root);
    let ciphertext = std::fs::read(d.join("data.sealed")).unwrap();
    assert!(
        !ciphertext.windows(16).any(|w| w == &plaintext[4000..4016]),
        "sealed file leaks plaintext"
    );

    // A reader that goes away (`licen … | head`) ends the command quietly, not with a panic.
    let mut piped = Command::new(LICEN)
        .args(["root", "data.jsonl"])
        .current_dir(d)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(piped.stdout.take());
    let ended = piped.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&ended.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    {
        use std::os::unix::process::ExitStatusExt;
        assert!(
            ended.status.success() || ended.status.signal() == Some(13),
            "ended with {}: {stderr}",
            ended.status
        );
    }

    let node = StorageNode::start(d);
    let put = licen(d, &["put", "data.sealed", "--storage", &node.url]);
    assert!(
        !String::from_utf8_lossy(&put.stderr).contains("warning"),
        "a sealed stream is put without a warning"
    );
    assert_eq!(ok(put).trim(), root);
    // Text that is not sealed is stored as is, with a warning that anyone can read it.
    std::fs::write(d.join("notes.jsonl"), "{\"text\": \"private notes\"}\n").unwrap();
    let plain = licen(d, &["put", "notes.jsonl", "--storage", &node.url]);
    assert!(
        String::from_utf8_lossy(&plain.stderr)
            .contains("looks like plain text, not a LICEN sealed stream"),
        "{}",
        String::from_utf8_lossy(&plain.stderr)
    );
    ok(plain);
    ok(licen(
        d,
        &["get", &root, "-o", "fetched.sealed", "--storage", &node.url],
    ));
    assert_eq!(std::fs::read(d.join("fetched.sealed")).unwrap(), ciphertext);
    // Uploading again sends nothing new.
    let again = json(licen(
        d,
        &["--json", "put", "data.sealed", "--storage", &node.url],
    ));
    assert_eq!(again["sent_segments"], 0);

    ok(licen(
        d,
        &[
            "open",
            "fetched.sealed",
            "--envelope",
            "data.sealed.envelope",
            "--key",
            "researcher.key",
            "-o",
            "opened.jsonl",
        ],
    ));
    assert_eq!(std::fs::read(d.join("opened.jsonl")).unwrap(), plaintext);

    // A flipped bit anywhere: refused, and no output file (or partial) is left behind.
    let mut tampered = ciphertext.clone();
    tampered[ciphertext.len() / 2] ^= 0x01;
    std::fs::write(d.join("tampered.sealed"), &tampered).unwrap();
    let err = failed(licen(
        d,
        &[
            "open",
            "tampered.sealed",
            "--envelope",
            "data.sealed.envelope",
            "--key",
            "researcher.key",
            "-o",
            "bad.jsonl",
        ],
    ));
    assert!(err.contains("does not open for tampered.sealed"), "{err}");
    assert!(!d.join("bad.jsonl").exists() && !d.join("bad.jsonl.partial").exists());

    // Someone else's key cannot open it.
    ok(licen(d, &["keygen", "-o", "other.key"]));
    let err = failed(licen(
        d,
        &[
            "open",
            "data.sealed",
            "--envelope",
            "data.sealed.envelope",
            "--key",
            "other.key",
            "-o",
            "x.jsonl",
        ],
    ));
    assert!(err.contains("wrong key"), "{err}");

    // Existing outputs are never clobbered; bad input is named.
    assert!(
        failed(licen(
            d,
            &["seal", "data.jsonl", "--to", &public, "-o", "data.sealed"]
        ))
        .contains("already exists")
    );
    assert!(
        failed(licen(
            d,
            &["seal", "data.jsonl", "--to", "0x1234", "-o", "y"]
        ))
        .contains("expected 64 hex digits")
    );
    let missing = format!("0x{}", "ab".repeat(32));
    assert!(
        failed(licen(
            d,
            &["get", &missing, "-o", "z", "--storage", &node.url]
        ))
        .contains("does not hold")
    );
}

#[test]
fn dev_starts_the_stack_and_resumes_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ports = [
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    ]
    .map(|p| p.to_string());
    let args = [
        "--json",
        "dev",
        "--exit-after-start",
        "--data-dir",
        "state",
        "--chain-port",
        &ports[0],
        "--storage-port",
        &ports[1],
        "--compute-port",
        &ports[2],
        "--indexer-port",
        &ports[3],
        "--web-port",
        &ports[4],
    ];
    let first = json(licen(d, &args));
    assert_eq!(first["web_url"], format!("http://127.0.0.1:{}", ports[4]));
    assert_eq!(first["freshly_deployed"], true);
    assert_eq!(first["chain_id"], 31337);
    assert!(first["warning"].as_str().unwrap().contains("INSECURE"));
    assert_eq!(
        first["storage_url"],
        format!("http://127.0.0.1:{}", ports[1])
    );
    assert_eq!(
        first["compute_url"],
        format!("http://127.0.0.1:{}", ports[2])
    );
    let key = d.join("state/dev/orchestrator.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let second = json(licen(d, &args));
    assert_eq!(
        second["freshly_deployed"], false,
        "state survives a restart"
    );
    assert_eq!(second["contract"], first["contract"]);
    assert_eq!(
        second["orchestrator_public_key"],
        first["orchestrator_public_key"]
    );
    assert_eq!(
        second["compute_attestation_key"], first["compute_attestation_key"],
        "the compute node keeps its dev attestation key across restarts"
    );
    // The person who runs the stack is told, in the terminal, that training is simulated and
    // how to train for real (the web app tells visitors only the first).
    let human = licen(d, &args[1..]);
    assert!(human.status.success(), "{human:?}");
    let printed = String::from_utf8_lossy(&human.stdout);
    assert!(
        printed.contains("SIMULATED training") && printed.contains("--trainer lora --model DIR"),
        "{printed}"
    );

    // Killed outright (SIGKILL, the OOM killer), `licen dev` cannot stop anvil itself: the
    // kernel does (parent-death signal), so anvil writes its state and frees the port, and the
    // next start resumes the same chain instead of failing on a taken port.
    let mut running = Command::new(LICEN)
        .args(args.iter().filter(|a| **a != "--exit-after-start"))
        .current_dir(d)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let summary = common::read_summary(&mut running);
    let third: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(third["freshly_deployed"], false);
    running.kill().unwrap(); // SIGKILL
    running.wait().unwrap();
    let killed = std::time::Instant::now();
    let chain = format!("127.0.0.1:{}", ports[0]);
    while std::net::TcpListener::bind(&chain).is_err() {
        assert!(
            killed.elapsed() < std::time::Duration::from_secs(15),
            "anvil still holds {chain} 15 s after licen dev was killed"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let fourth = json(licen(d, &args));
    assert_eq!(
        fourth["freshly_deployed"], false,
        "the chain survived the kill"
    );
    assert_eq!(fourth["contract"], first["contract"]);
}

/// Storing on a 0G network: `licen put --flow` pays 0G's own Flow contract (its shipped
/// bytecode, deployed on anvil) before uploading, to a `licen storage-node --flow` that, like
/// a 0G node, accepts only files it has seen submitted on chain. A file already stored is not
/// paid for twice, and the node keeps what it learnt across a restart.
#[test]
fn put_with_flow_pays_0g_flow_contract_then_uploads() {
    use alloy::providers::Provider as _;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let chain = licen_chain::anvil::DevChain::spawn().unwrap();
    let rpc = chain.rpc_url().to_owned();
    let admin = licen_chain::connect(&rpc, Some(chain.dev_signer(0))).unwrap();
    const PRICE: u64 = 1_000_000_000; // wei per 256-byte sector
    let zerog = runtime
        .block_on(licen_chain::testing::zerog::deploy_0g_flow(
            &admin,
            alloy::primitives::U256::from(PRICE),
        ))
        .unwrap();
    let flow = zerog.flow.to_string();
    let payer = chain.dev_signer(3);
    let balance = || {
        let wei = runtime
            .block_on(async { admin.provider.get_balance(payer.address()).await })
            .unwrap();
        u128::try_from(wei).unwrap()
    };
    let follow = ["--flow", flow.as_str(), "--rpc-url", rpc.as_str()];
    let mut node = StorageNode::start_with(d, &follow);
    // Binary (sealed-looking) files of two and one segments.
    let bytes = |n: usize, seed: u8| -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(131) ^ seed ^ 0x80)
            .collect()
    };
    std::fs::write(d.join("a.bin"), bytes(300_000, 1)).unwrap();
    std::fs::write(d.join("b.bin"), bytes(5_000, 2)).unwrap();
    // `--flow` names the Flow to pay; without it, the one the node names in zgs_getStatus.
    let put = |file: &str, url: &str, flow: Option<&str>| {
        let mut command = Command::new(LICEN);
        command
            .current_dir(d)
            .env_remove("LICEN_STORAGE_URL")
            .env(
                "LICEN_PRIVATE_KEY",
                format!("0x{}", hex::encode(payer.to_bytes())),
            )
            .args(["--json", "put", file, "--storage", url, "--rpc-url", &rpc]);
        if let Some(flow) = flow {
            command.args(["--flow", flow]);
        }
        command.output().unwrap()
    };

    // Paying another Flow than the node's would be lost: refused before anything is sent.
    let before = balance();
    let said = failed(put(
        "b.bin",
        &node.url,
        Some("0x7777777777777777777777777777777777777777"),
    ));
    assert!(
        said.contains("is not the Flow contract the storage nodes follow") && said.contains(&flow),
        "{said}"
    );
    assert_eq!(balance(), before);
    // So is paying the node's Flow through another chain's endpoint.
    let elsewhere = licen_chain::anvil::DevChain::spawn_as(424_242).unwrap();
    let said = failed(
        Command::new(LICEN)
            .current_dir(d)
            .env(
                "LICEN_PRIVATE_KEY",
                format!("0x{}", hex::encode(payer.to_bytes())),
            )
            .args(["put", "b.bin", "--storage", &node.url])
            .args(["--rpc-url", elsewhere.rpc_url()])
            .output()
            .unwrap(),
    );
    assert!(
        said.contains(&format!(
            "the storage nodes follow the Flow contract {flow} on chain 31337"
        )) && said.contains("would go to chain 424242"),
        "{said}"
    );
    drop(elsewhere);

    let stored = json(put("a.bin", &node.url, Some(&flow)));
    let paid = &stored["flow_submission"];
    // 300,000 bytes = 1,172 chunks, padded to 1,280 sectors (1,024 + 256).
    assert_eq!(paid["sectors"], 1280, "{stored}");
    assert_eq!(paid["tx_seq"], 0);
    let fee = u128::from(PRICE) * 1280;
    assert_eq!(paid["fee_wei"], fee.to_string());
    assert_eq!(stored["finalized"], true);
    let spent = before - balance();
    assert!(
        spent > fee && spent < fee + 10u128.pow(16),
        "spent {spent}, fee {fee} plus gas"
    );
    let root = stored["root"].as_str().unwrap().to_owned();
    ok(licen(
        d,
        &["get", &root, "-o", "a.back", "--storage", &node.url],
    ));
    assert_eq!(std::fs::read(d.join("a.back")).unwrap(), bytes(300_000, 1));

    // Stored already: nothing is paid or sent again.
    let before = balance();
    let again = json(put("a.bin", &node.url, Some(&flow)));
    assert!(again["flow_submission"].is_null(), "{again}");
    assert_eq!(again["sent_segments"], 0);
    assert_eq!(balance(), before);

    // The node keeps the submissions it saw across a restart: the next file is submission #1,
    // paid to the Flow the node names (no --flow).
    drop(node);
    node = StorageNode::start_with(d, &follow);
    let next = json(put("b.bin", &node.url, None));
    assert_eq!(next["flow_submission"]["tx_seq"], 1, "{next}");
    let info = json(licen(
        d,
        &[
            "--json",
            "get",
            &root,
            "-o",
            "a.again",
            "--storage",
            &node.url,
        ],
    ));
    assert_eq!(info["root"], root.as_str());

    // A wrong Flow address is refused before the node serves anything.
    let said = failed(
        Command::new(LICEN)
            .args(["storage-node", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(d.join("other"))
            .args([
                "--flow",
                "0x7777777777777777777777777777777777777777",
                "--rpc-url",
                &rpc,
            ])
            .output()
            .unwrap(),
    );
    assert!(
        said.contains("does not look like a 0G Flow contract"),
        "{said}"
    );
    // A data dir follows one Flow: another Flow's sequence numbers would mix with its own.
    let second = runtime
        .block_on(licen_chain::testing::zerog::deploy_0g_flow(
            &admin,
            alloy::primitives::U256::from(PRICE),
        ))
        .unwrap();
    drop(node);
    let said = failed(
        Command::new(LICEN)
            .args(["storage-node", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(d.join("storage"))
            .args(["--flow", &second.flow.to_string(), "--rpc-url", &rpc])
            .output()
            .unwrap(),
    );
    assert!(
        said.contains(&format!("holds the files of Flow contract {}", zerog.flow))
            && said.contains("give the node another data directory"),
        "{said}"
    );
    // Another chain at the RPC URL (here a fresh one where the same deployer put a Flow at the
    // same address): while it is shorter, the node says the RPC is behind and waits to be
    // started again; once it has a block of its own at that height, the recorded submissions
    // may not hold there, and the node is refused.
    let fresh = licen_chain::anvil::DevChain::spawn().unwrap();
    let fresh_admin = licen_chain::connect(fresh.rpc_url(), Some(fresh.dev_signer(0))).unwrap();
    let again = runtime
        .block_on(licen_chain::testing::zerog::deploy_0g_flow(
            &fresh_admin,
            alloy::primitives::U256::from(PRICE),
        ))
        .unwrap();
    assert_eq!(again.flow, zerog.flow);
    let start_on_fresh = || {
        failed(
            Command::new(LICEN)
                .args(["storage-node", "--listen", "127.0.0.1:0", "--data-dir"])
                .arg(d.join("storage"))
                .args(["--flow", &flow, "--rpc-url", fresh.rpc_url()])
                .output()
                .unwrap(),
        )
    };
    let said = start_on_fresh();
    assert!(
        said.contains("behind block") && said.contains("wait until the RPC has caught up"),
        "{said}"
    );
    runtime
        .block_on(async {
            use alloy::providers::ext::AnvilApi as _;
            fresh_admin.provider.anvil_mine(Some(50), None).await
        })
        .unwrap();
    let said = start_on_fresh();
    assert!(
        said.contains("the chain no longer has block") && said.contains("fresh data dir"),
        "{said}"
    );
    // A data dir keeps its mode: sequence numbers of the Flow and of a local node would mix.
    let said = failed(
        Command::new(LICEN)
            .args(["storage-node", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(d.join("storage"))
            .output()
            .unwrap(),
    );
    assert!(said.contains("was used in Flow mode"), "{said}");
}

/// `licen storage-indexer` over two `licen storage-node --shard` processes: `put` spreads a file
/// over the halves, `get` puts it back together (verified), a half alone refuses to hand out
/// the whole file, and a bad shard position is refused at start.
#[test]
fn put_and_get_through_a_storage_indexer_over_sharded_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let even = StorageNode::start_with(&d.join("even"), &["--shard", "0/2"]);
    let odd = StorageNode::start_with(&d.join("odd"), &["--shard", "1/2"]);
    let (_indexer, line) = common::spawn_service(
        Command::new(LICEN)
            .args(["--json", "storage-indexer", "--listen", "127.0.0.1:0"])
            .args(["--node", &even.url, "--node", &odd.url])
            .stderr(Stdio::null()),
    );
    let started: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    let indexer = started["storage_indexer_url"].as_str().unwrap().to_owned();

    // Five segments and a bit: both halves get some.
    let data: Vec<u8> = (0..(5 * 262_144 + 999) as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(d.join("data.bin"), &data).unwrap();
    let root = ok(licen(d, &["root", "data.bin"])).trim().to_owned();
    let put = json(licen(
        d,
        &["--json", "put", "data.bin", "--storage-indexer", &indexer],
    ));
    assert_eq!(put["root"], root.as_str());
    assert_eq!(put["sent_segments"], 6, "each segment went to one half");
    assert_eq!(put["finalized"], true);

    ok(licen(
        d,
        &[
            "get",
            &root,
            "-o",
            "back.bin",
            "--storage-indexer",
            &indexer,
        ],
    ));
    assert_eq!(std::fs::read(d.join("back.bin")).unwrap(), data);

    // A half given as if it held whole files takes nothing.
    let lone = failed(licen(d, &["put", "data.bin", "--storage", &odd.url]));
    assert!(lone.contains("hold shards 1/2 only"), "{lone}");

    let half = failed(licen(
        d,
        &["get", &root, "-o", "half.bin", "--storage", &even.url],
    ));
    assert!(half.contains("holds shard 0/2 only"), "{half}");
    assert!(half.contains("--storage-indexer"), "{half}");
    assert!(!d.join("half.bin").exists() && !d.join("half.bin.partial").exists());

    // The indexer given where a node is expected says what it is.
    let mixed_up = failed(licen(
        d,
        &["get", &root, "-o", "w.bin", "--storage", &indexer],
    ));
    assert!(
        mixed_up.contains("give it as --storage-indexer"),
        "{mixed_up}"
    );

    let bad = failed(licen(
        d,
        &["storage-node", "--shard", "2/2", "--data-dir", "bad"],
    ));
    assert!(bad.contains("invalid shard position"), "{bad}");
    assert!(bad.contains("SHARD_ID is not below NUM_SHARD"), "{bad}");
}
