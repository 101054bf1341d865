//! Helpers shared by the CLI's end-to-end tests: run `licen`, judge its exit, own child
//! processes (killed on drop), find free ports.

#![allow(dead_code, unreachable_pub)]

use std::process::{Child, Output};

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
