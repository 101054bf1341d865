//! Who this orchestrator replica is, as written into the ledger's `leader` row, and whether a
//! replica named there is known to be gone.
//!
//! A name is `host/pid.instance/boot-id/pid-namespace` (several replicas may run in one process:
//! tests, or an embedding service). A replica that was killed outright (SIGKILL, the
//! OOM killer) cannot resign its lease; waiting for the lease to run out is the only safe
//! answer for a replica on another machine, but one on *this* machine and kernel (same boot
//! id) in *this* PID namespace whose process no longer exists is certainly gone, so a restart
//! after a crash takes over at once instead of after the lease.
//!
//! Must never: call a replica gone unless its process provably is (same kernel boot and PID
//! namespace, and no such process).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// A new replica name in this process (each call another instance).
pub fn replica_name() -> String {
    static INSTANCE: AtomicU64 = AtomicU64::new(1);
    let host = read_trimmed("/proc/sys/kernel/hostname").unwrap_or_else(|| "unknown-host".into());
    format!(
        "{host}/{}.{}/{}/{}",
        std::process::id(),
        INSTANCE.fetch_add(1, Ordering::Relaxed),
        boot_id().unwrap_or_else(|| "unknown-boot".into()),
        pid_namespace().unwrap_or_else(|| "unknown-pidns".into())
    )
}

/// Whether the replica named `holder` is certainly not running: a process of this machine's
/// current boot and of this PID namespace that no longer exists.
pub(crate) fn is_gone(holder: &str) -> bool {
    let mut parts = holder.rsplitn(4, '/');
    let (Some(namespace), Some(boot), Some(pid), Some(_host)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Ok(pid) = pid.split('.').next().unwrap_or_default().parse::<u32>() else {
        return false;
    };
    boot_id().is_some_and(|ours| ours == boot)
        && pid_namespace().is_some_and(|ours| ours == namespace)
        && pid != std::process::id()
        && !running(pid)
}

/// Whether process `pid` of this PID namespace runs: it exists and is not a zombie (killed but
/// not yet reaped by its parent, which may take a while or never happen).
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and may hold spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => Path::new(&format!("/proc/{pid}")).exists(),
    }
}

/// A short description of a replica name for people: `pid 2525 on vm` (`(instance 2)` when a
/// process runs several).
pub fn describe_replica(name: &str) -> String {
    let mut parts = name.rsplitn(4, '/');
    let (Some(_), Some(_), Some(pid), Some(host)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return name.to_owned();
    };
    let (pid, instance) = pid.split_once('.').unwrap_or((pid, "1"));
    if instance == "1" || instance.is_empty() {
        format!("pid {pid} on {host}")
    } else {
        format!("pid {pid} (instance {instance}) on {host}")
    }
}

fn boot_id() -> Option<String> {
    read_trimmed("/proc/sys/kernel/random/boot_id")
}

fn pid_namespace() -> Option<String> {
    std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .map(|link| link.to_string_lossy().replace('/', "_"))
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().replace('/', "_"))
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_replica_is_never_gone_and_a_dead_local_one_is() {
        let me = replica_name();
        assert!(!is_gone(&me), "this process is running");
        assert_ne!(
            replica_name(),
            me,
            "each replica in a process has its own name"
        );
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let dead = me.replacen(&format!("/{}.", std::process::id()), &format!("/{pid}."), 1);
        assert_ne!(dead, me);
        assert!(is_gone(&dead), "{dead} exited and was reaped");
        // Another machine's (or kernel boot's) replica is never declared gone.
        let elsewhere = format!("other-host/{pid}.1/another-boot/pid:[1]");
        assert!(!is_gone(&elsewhere));
        assert!(!is_gone("not a replica name"));
        // A killed process its parent has not reaped yet (a zombie) is gone too.
        let mut zombie = std::process::Command::new("true").spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        let unreaped = me.replacen(
            &format!("/{}.", std::process::id()),
            &format!("/{}.", zombie.id()),
            1,
        );
        assert!(
            is_gone(&unreaped),
            "{unreaped} exited and waits to be reaped"
        );
        zombie.wait().unwrap();
        assert_eq!(describe_replica("vm/2525.1/boot/pid:[1]"), "pid 2525 on vm");
        assert_eq!(
            describe_replica("vm/2525.3/boot/pid:[1]"),
            "pid 2525 (instance 3) on vm"
        );
    }
}
