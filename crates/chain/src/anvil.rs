//! Spawning a local anvil (the dev chain) from the pinned toolchain.
//!
//! Anvil's development accounts come from a public mnemonic: they are **insecure** and exist
//! only on local chains. With a state file, anvil loads it at start and writes it back when
//! stopped gracefully ([`DevChain::stop`]), so `licen dev` resumes the same chain. On Linux
//! anvil is also sent SIGTERM when the process that started it dies in any way (SIGKILL, the
//! OOM killer), so it still writes its state and frees its port for the next start instead of
//! lingering as an orphan.

use crate::error::{Error, Result};
use alloy::signers::local::PrivateKeySigner;
use licen_toolchain::Tools;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long anvil may take to print its listening address.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running anvil; killed on drop unless stopped gracefully first.
#[derive(Debug)]
pub struct DevChain {
    child: Child,
    rpc_url: String,
    keys: Vec<PrivateKeySigner>,
}

impl DevChain {
    /// Spawns an ephemeral anvil on a free port (tests).
    pub fn spawn() -> Result<Self> {
        Self::spawn_with(0, None)
    }

    /// Spawns an ephemeral anvil answering `chain_id` (tests standing in for a named network,
    /// such as 0G Galileo's 16602).
    pub fn spawn_as(chain_id: u64) -> Result<Self> {
        Self::spawn_on(0, None, chain_id)
    }

    /// Spawns anvil on `port` (0 = any free port), persisting to `state_file` if given.
    pub fn spawn_with(port: u16, state_file: Option<&Path>) -> Result<Self> {
        Self::spawn_on(port, state_file, 31337)
    }

    fn spawn_on(port: u16, state_file: Option<&Path>, chain_id: u64) -> Result<Self> {
        let tools = Tools::locate();
        tools.ensure_installed()?;
        let mut command = Command::new(tools.anvil());
        command
            .args(["--port", &port.to_string()])
            .args(["--chain-id", &chain_id.to_string()])
            .args(["--host", "127.0.0.1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(state) = state_file {
            command.arg("--state").arg(state);
        }
        end_with_this_process(&mut command);
        let mut child = command.spawn().map_err(|e| {
            Error::Anvil(format!("could not start {}: {e}", tools.anvil().display()))
        })?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        // Anvil keeps logging to stdout; drain it on a thread so it never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut keys = Vec::new();
            let mut in_keys = false;
            let mut sent = false;
            for line in BufReader::new(stdout)
                .lines()
                .map_while(std::result::Result::ok)
            {
                if sent {
                    continue;
                }
                let trimmed = line.trim();
                if trimmed.starts_with("Private Keys") {
                    in_keys = true;
                } else if in_keys && trimmed.starts_with('(') {
                    if let Some(key) = trimmed.split_whitespace().nth(1) {
                        keys.push(key.to_owned());
                    }
                } else if in_keys && !trimmed.is_empty() && !trimmed.starts_with('=') {
                    in_keys = false;
                }
                if let Some(addr) = trimmed.strip_prefix("Listening on ") {
                    let _ = tx.send((addr.to_owned(), std::mem::take(&mut keys)));
                    sent = true;
                }
            }
        });
        let started = Instant::now();
        let (addr, keys) = loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(found) => break found,
                Err(_) if started.elapsed() > START_TIMEOUT => {
                    let _ = child.kill();
                    return Err(Error::Anvil(format!(
                        "anvil did not report a listening address within {START_TIMEOUT:?}"
                    )));
                }
                Err(_) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        return Err(Error::Anvil(format!(
                            "anvil exited with {status} before listening (is port {port} taken?)"
                        )));
                    }
                }
            }
        };
        let keys = keys
            .iter()
            .map(|k| {
                k.parse::<PrivateKeySigner>()
                    .map_err(|e| Error::Anvil(format!("unparsable dev key from anvil: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            child,
            rpc_url: format!("http://{addr}"),
            keys,
        })
    }

    /// The HTTP RPC URL.
    pub fn rpc_url(&self) -> &str {
        &self.rpc_url
    }

    /// The insecure, publicly known development account `index`.
    pub fn dev_signer(&self, index: usize) -> PrivateKeySigner {
        self.keys[index].clone()
    }

    /// All development accounts (insecure).
    pub fn dev_signers(&self) -> &[PrivateKeySigner] {
        &self.keys
    }

    /// Stops anvil gracefully (SIGTERM), so it writes its state file, and waits for it.
    pub fn stop(mut self) -> Result<()> {
        self.terminate()
    }

    fn terminate(&mut self) -> Result<()> {
        if let Ok(Some(_)) = self.child.try_wait() {
            return Ok(());
        }
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        Err(Error::Anvil(
            "anvil did not stop within 10 s after SIGTERM; killed it (state may be stale)".into(),
        ))
    }
}

impl Drop for DevChain {
    /// Even on an error path the chain stops gracefully, so a persisted state file is written.
    fn drop(&mut self) {
        let _ = self.terminate();
    }
}

/// Asks the kernel to send `command`'s process SIGTERM when this process ends (Linux
/// `PR_SET_PDEATHSIG`): anvil then writes its state and exits as on a graceful stop.
///
/// The signal follows the *thread* that spawns: call this from one that lives as long as the
/// chain is wanted (`licen dev`'s main thread, a test's thread, a runtime worker), not from a
/// short-lived blocking-pool thread.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn end_with_this_process(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before `exec`; it only calls `prctl(2)` and
    // `getppid(2)`, which are async-signal-safe, and builds an `io::Error` from errno without
    // allocating (`last_os_error`), so it cannot deadlock on a lock the parent held at fork.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before the prctl took effect: then nobody will signal.
            if u32::try_from(libc::getppid()).ok() != Some(parent) {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// Elsewhere an orphaned anvil must be stopped by hand.
#[cfg(not(target_os = "linux"))]
fn end_with_this_process(_command: &mut Command) {}
