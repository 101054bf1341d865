//! Helpers shared by the CLI's end-to-end tests: run `licen`, judge its exit, own child
//! processes (killed on drop), find free ports.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

/// The `licen` binary under test.
pub const LICEN: &str = env!("CARGO_BIN_EXE_licen");

/// Asserts success and returns stdout as text.
pub fn ok_text(output: Output) -> String {
    assert!(
        output.status.success(),
        "licen failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Asserts success and parses stdout as JSON (`--json` commands).
pub fn ok_json(output: Output) -> serde_json::Value {
    serde_json::from_str(&ok_text(output)).expect("--json prints JSON")
}

/// Asserts failure and returns stderr (the user-facing reason).
pub fn refused(output: Output) -> String {
    assert!(!output.status.success(), "licen unexpectedly succeeded");
    String::from_utf8(output.stderr).unwrap()
}

/// A free loopback port for a `licen` process told to listen on it.
pub use licen_web::testing::free_port;

/// Spawns a `licen` service with its stdout piped and returns it with the first line it
/// prints (services print one line once they serve).
pub fn spawn_service(command: &mut Command) -> (Guarded, String) {
    let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (Guarded(child), line)
}

/// Reads `licen dev --json`'s multi-line start summary (up to its closing `}`) from `child`'s
/// piped stdout.
pub fn read_summary(child: &mut Child) -> String {
    let mut text = String::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        text.push_str(&line);
        if line == "}" {
            break;
        }
    }
    text
}

/// A child process that is killed and reaped when dropped.
pub struct Guarded(pub Child);

impl Drop for Guarded {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Anvil's publicly known dev keys (insecure, local chain only): owner and researcher.
pub const OWNER_KEY: &str = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6";
pub const RESEARCHER_KEY: &str =
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a";

/// Where [`Dev::start`] keeps `licen dev`'s stderr, in the test's folder.
pub const DEV_STDERR: &str = "licen-dev.stderr";

/// A running `licen dev` (killed on drop).
pub struct Dev {
    pub child: Child,
    /// Its `--json` start summary (URLs, contract, dev accounts).
    pub summary: serde_json::Value,
}

impl Dev {
    pub fn start(dir: &Path, ports: [u16; 4]) -> Self {
        Self::start_with(dir, ports, &[])
    }

    /// Starts with extra `licen dev` flags (`--no-orchestrator`).
    pub fn start_with(dir: &Path, ports: [u16; 4], extra: &[&str]) -> Self {
        // A port picked free may be taken by a parallel test before this stack binds it: such
        // a start is retried on other ports (twice); any other failure fails the test.
        let mut ports = ports;
        for attempt in 1..=3 {
            match Self::try_start(dir, ports, extra) {
                Ok(dev) => return dev,
                Err(why) if attempt < 3 && (why.contains("taken") || why.contains("in use")) => {
                    eprintln!("licen dev could not bind its ports ({why}); retrying on others");
                    ports = [free_port(), free_port(), free_port(), free_port()];
                }
                Err(why) => panic!("{why}"),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    fn try_start(
        dir: &Path,
        [chain_port, storage_port, compute_port, indexer_port]: [u16; 4],
        extra: &[&str],
    ) -> Result<Self, String> {
        let mut child = Command::new(LICEN)
            .args(["--json", "dev", "--data-dir", "state"])
            .args(["--chain-port", &chain_port.to_string()])
            .args(["--storage-port", &storage_port.to_string()])
            .args(["--compute-port", &compute_port.to_string()])
            .args(["--indexer-port", &indexer_port.to_string()])
            .args(extra)
            .args(["--web-port", &free_port().to_string()])
            .current_dir(dir)
            .stdout(Stdio::piped())
            // Kept in a file, so a stack that fails to start says why in the test's panic.
            .stderr(std::fs::File::create(dir.join(DEV_STDERR)).unwrap())
            .spawn()
            .unwrap();
        let text = read_summary(&mut child);
        let summary: serde_json::Value = match serde_json::from_str::<serde_json::Value>(&text) {
            // Under --json a failed start prints its error object instead of the summary.
            Ok(summary) if summary.get("error").is_none() => summary,
            parsed => {
                let _ = child.wait();
                return Err(format!(
                    "licen dev did not print its --json summary ({}); stdout: {text:?}; stderr: {}",
                    parsed.map_or_else(|e| e.to_string(), |_| "it failed".into()),
                    std::fs::read_to_string(dir.join(DEV_STDERR)).unwrap_or_default()
                ));
            }
        };
        Ok(Self { child, summary })
    }

    /// SIGTERM, as a service manager would: the stack must stop cleanly.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "licen dev exited with {status} on SIGTERM"
        );
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `licen --json ARGS` against `dev`'s stack, with `key` as the wallet.
pub fn licen(dir: &Path, dev: &Dev, key: Option<&str>, args: &[&str]) -> Output {
    let mut command = licen_command(dir, dev, args);
    command.env_remove("LICEN_PRIVATE_KEY").stdin(Stdio::null());
    if let Some(key) = key {
        command.env("LICEN_PRIVATE_KEY", key);
    }
    command.output().unwrap()
}

/// `licen --json ARGS` pointed at `dev`'s chain, storage and indexer (no wallet set).
pub fn licen_command(dir: &Path, dev: &Dev, args: &[&str]) -> Command {
    let url = |name: &str| dev.summary[name].as_str().unwrap().to_owned();
    let mut command = Command::new(LICEN);
    command
        .arg("--json")
        .args(args)
        .current_dir(dir)
        .env("LICEN_DATA_DIR", "state")
        .env("LICEN_RPC_URL", url("rpc_url"))
        .env("LICEN_INDEXER_URL", url("indexer_url"))
        .env_remove("LICEN_CONTRACT");
    // One node, or (`--storage-shards`) the storage indexer naming the shard nodes.
    match dev.summary["storage_url"].as_str() {
        Some(node) => command
            .env("LICEN_STORAGE_URL", node)
            .env_remove("LICEN_STORAGE_INDEXER"),
        None => command
            .env_remove("LICEN_STORAGE_URL")
            .env("LICEN_STORAGE_INDEXER", url("storage_indexer_url")),
    };
    command
}

/// Policy flags for [`publish`]: up to 3 epochs, one run per researcher, grants valid an hour,
/// research only.
pub const ONE_RESEARCH_RUN: &[&str] = &[
    "--max-epochs",
    "3",
    "--max-runs",
    "1",
    "--ttl",
    "1h",
    "--purposes",
    "research",
];

/// `licen publish FILE` as the dev owner (named after the file, 0.01 ETH per epoch) with the
/// other `policy` flags; returns the dataset root.
pub fn publish(dir: &Path, dev: &Dev, file: &str, policy: &[&str]) -> String {
    let published = ok_json(licen(
        dir,
        dev,
        Some(OWNER_KEY),
        &[
            &["publish", file, "--name", file, "--price", "0.01"][..],
            policy,
        ]
        .concat(),
    ));
    published["dataset_root"].as_str().unwrap().to_owned()
}

/// `licen request ROOT --epochs EPOCHS` for research as the dev researcher: (job id, escrow
/// in wei).
pub fn request(dir: &Path, dev: &Dev, root: &str, epochs: &str) -> (u64, u128) {
    let job = ok_json(licen(
        dir,
        dev,
        Some(RESEARCHER_KEY),
        &[
            "request",
            root,
            "--epochs",
            epochs,
            "--purpose",
            "research",
            "--yes",
        ],
    ));
    (
        job["job_id"].as_u64().unwrap(),
        job["escrow_wei"].as_str().unwrap().parse().unwrap(),
    )
}

/// One JSON-RPC call to `dev`'s chain (for what the CLI does not expose: nonces, time travel).
/// Blocking: from an async test, use [`rpc_async`].
pub fn rpc(dev: &Dev, method: &str, params: serde_json::Value) -> serde_json::Value {
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(rpc_async(dev, method, params))
}

/// [`rpc`] for async tests.
pub async fn rpc_async(dev: &Dev, method: &str, params: serde_json::Value) -> serde_json::Value {
    let url = dev.summary["rpc_url"].as_str().unwrap().to_owned();
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let answer: serde_json::Value = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(answer["error"].is_null(), "{method} failed: {answer}");
    answer["result"].clone()
}

/// The transaction count of `address` (proves whether a command sent anything).
pub fn nonce(dev: &Dev, address: &str) -> u64 {
    let hex = rpc(
        dev,
        "eth_getTransactionCount",
        serde_json::json!([address, "latest"]),
    );
    u64::from_str_radix(hex.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

/// [`nonce`] for async tests.
pub async fn nonce_async(dev: &Dev, address: &str) -> u64 {
    let hex = rpc_async(
        dev,
        "eth_getTransactionCount",
        serde_json::json!([address, "latest"]),
    )
    .await;
    u64::from_str_radix(hex.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

/// Moves the chain clock forward and mines a block.
pub fn advance_chain_time(dev: &Dev, seconds: u64) {
    rpc(dev, "evm_increaseTime", serde_json::json!([seconds]));
    rpc(dev, "evm_mine", serde_json::json!([]));
}

/// The address of dev account `index` from the summary.
pub fn dev_address(dev: &Dev, index: usize) -> String {
    dev.summary["accounts"][index]["address"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Polls `licen job ID` until its state is one of `wanted` (panics after `limit_s`).
pub fn wait_for_state(dir: &Path, dev: &Dev, job: u64, wanted: &[&str], limit_s: u64) -> String {
    let started = std::time::Instant::now();
    loop {
        let state = ok_json(licen(dir, dev, None, &["job", &job.to_string()]))["state"]
            .as_str()
            .unwrap()
            .to_owned();
        if wanted.contains(&state.as_str()) {
            return state;
        }
        assert!(
            started.elapsed().as_secs() < limit_s,
            "job {job} is {state} after {limit_s} s, wanted one of {wanted:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The indexer's view of `job` (`GET /jobs/{id}`); `Null` while it cannot answer.
pub fn indexed_job(dev: &Dev, job: u64) -> serde_json::Value {
    get_json(&format!(
        "{}/jobs/{job}",
        dev.summary["indexer_url"].as_str().unwrap()
    ))
}

/// `GET url` as JSON; `Null` while it cannot answer.
pub fn get_json(url: &str) -> serde_json::Value {
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async { reqwest::get(url).await?.json().await })
        .unwrap_or_default()
}

/// The indexed state timeline of `job` (lower-case states), polled until it ends in
/// `completed` or 20 s pass.
pub fn indexed_timeline_until_completed(dev: &Dev, job: u64) -> Vec<String> {
    let started = std::time::Instant::now();
    loop {
        let states: Vec<String> = indexed_job(dev, job)["timeline"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| t["state"].as_str().unwrap().to_ascii_lowercase())
            .collect();
        if states.last().map(String::as_str) == Some("completed")
            || started.elapsed().as_secs() > 20
        {
            return states;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// What the transaction that moved `job` into `terminal` (a refund state: "failed", "expired",
/// "reclaimed") paid straight to `account`, in wei: the amount of its `Withdrawn(account, …)`
/// log, 0 when it only credited the refund. Waits up to 20 s for the indexer to hold the
/// transition.
pub fn refund_paid_by_transition(dev: &Dev, job: u64, terminal: &str, account: &str) -> u128 {
    let started = std::time::Instant::now();
    let tx = loop {
        let found = indexed_job(dev, job)["timeline"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["state"].as_str().unwrap().eq_ignore_ascii_case(terminal))
            .map(|t| t["tx"].as_str().unwrap().to_owned());
        if let Some(tx) = found {
            break tx;
        }
        assert!(
            started.elapsed().as_secs() < 20,
            "job {job} never reached {terminal} in the indexer"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let receipt = rpc(dev, "eth_getTransactionReceipt", serde_json::json!([tx]));
    let withdrawn = format!(
        "{:#x}",
        alloy::primitives::keccak256("Withdrawn(address,uint256)")
    );
    let account = account.trim_start_matches("0x").to_ascii_lowercase();
    receipt["logs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|log| {
            let topics = log["topics"].as_array().unwrap();
            topics.len() == 2
                && topics[0].as_str() == Some(withdrawn.as_str())
                && topics[1].as_str().unwrap().ends_with(&account)
        })
        .map(|log| {
            u128::from_str_radix(log["data"].as_str().unwrap().trim_start_matches("0x"), 16)
                .unwrap()
        })
        .sum()
}

/// A `licen storage-node` process on a free port; killed on drop.
pub struct StorageNode {
    _child: Guarded,
    pub url: String,
}

impl StorageNode {
    pub fn start(dir: &Path) -> Self {
        Self::start_with(dir, &[])
    }

    pub fn start_with(dir: &Path, extra: &[&str]) -> Self {
        let (child, line) = spawn_service(
            Command::new(LICEN)
                .args(["storage-node", "--listen", "127.0.0.1:0", "--data-dir"])
                .arg(dir.join("storage"))
                .args(extra)
                .stderr(Stdio::null()),
        );
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap()
            .to_owned();
        Self { _child: child, url }
    }
}
