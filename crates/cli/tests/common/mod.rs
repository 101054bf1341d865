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

/// A free loopback port (bound then released; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process that is killed and reaped when dropped.
pub struct Guarded(pub Child);

impl Drop for Guarded {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running `licen --json dev` (its printed summary parsed), killed on drop.
pub struct Dev {
    /// The process.
    pub child: Child,
    /// The `--json` summary (URLs, contract, dev accounts).
    pub summary: serde_json::Value,
}

impl Dev {
    /// Starts the stack in `dir` on the given chain, storage, compute and indexer ports (the
    /// web app gets a free port).
    pub fn start(
        dir: &Path,
        [chain_port, storage_port, compute_port, indexer_port]: [u16; 4],
    ) -> Self {
        let mut child = Command::new(LICEN)
            .args(["--json", "dev", "--data-dir", "state"])
            .args(["--chain-port", &chain_port.to_string()])
            .args(["--storage-port", &storage_port.to_string()])
            .args(["--compute-port", &compute_port.to_string()])
            .args(["--indexer-port", &indexer_port.to_string()])
            .args(["--web-port", &free_port().to_string()])
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut text = String::new();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for line in lines.by_ref() {
            let line = line.unwrap();
            text.push_str(&line);
            if line == "}" {
                break;
            }
        }
        Self {
            child,
            summary: serde_json::from_str(&text).expect("licen dev --json prints its summary"),
        }
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
