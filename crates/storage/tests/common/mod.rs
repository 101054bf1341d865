//! Test helpers: the node as a real process, deterministic pseudo-random data.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `licen-storage-node` child process; killed (SIGKILL) on drop.
pub struct NodeProcess {
    pub child: Child,
    pub url: String,
    pub data_dir: PathBuf,
}

impl NodeProcess {
    pub fn spawn(data_dir: &Path) -> NodeProcess {
        Self::spawn_with(data_dir, &[])
    }

    pub fn spawn_with(data_dir: &Path, extra: &[&str]) -> NodeProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_licen-storage-node"))
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn licen-storage-node");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut reader = BufReader::new(stdout);
        while !line.contains("listening on ") {
            line.clear();
            let n = reader.read_line(&mut line).expect("read node stdout");
            assert!(n > 0, "node exited before printing its URL");
            assert!(Instant::now() < deadline, "node did not start in time");
        }
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .expect("url line")
            .to_string();
        NodeProcess {
            child,
            url,
            data_dir: data_dir.to_path_buf(),
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Deterministic pseudo-random bytes (xorshift), distinct per seed.
pub fn pseudo(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 11) as u8
        })
        .collect()
}

/// POSTs a raw body to the node and returns (HTTP status, parsed JSON body).
pub async fn raw_post(url: &str, body: impl Into<reqwest::Body>) -> (u16, serde_json::Value) {
    let resp = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("post");
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.expect("body");
    let v = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "non-JSON response ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, v)
}

/// Segment `index` of the file `data`, whose tree is `tree`, as an upload sends it: the bytes
/// padded to whole chunks, with its proof.
#[allow(dead_code)] // not every test binary builds segments by hand
pub fn segment(
    tree: &licen_storage::merkle::FileTree,
    data: &[u8],
    index: u64,
) -> licen_storage::rpc::SegmentWithProof {
    let layout = tree.layout();
    let off = layout.segment_offset(index) as usize;
    let mut bytes = data[off..off + layout.segment_file_bytes(index)].to_vec();
    bytes.resize(layout.segment_data_len(index), 0);
    licen_storage::rpc::SegmentWithProof {
        root: tree.root(),
        data: bytes,
        index,
        proof: tree.proof(index).unwrap(),
        file_size: layout.size(),
    }
}
