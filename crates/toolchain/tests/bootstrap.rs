//! The pinned-tool bootstrap is idempotent: once installed (by `cargo xtask bootstrap`, which
//! `cargo xtask test` runs first), another run does nothing — it starts no `npm`, so it works
//! offline — and every tool answers with the pinned version.

use licen_toolchain::{FOUNDRY_VERSION, InstallOutcome, Tools};

#[test]
fn a_second_bootstrap_does_nothing_and_the_tools_are_pinned() {
    let tools = Tools::locate();
    // First call installs if this checkout never bootstrapped; the second must be a no-op.
    tools.ensure_installed().expect("bootstrap");
    assert_eq!(
        tools.ensure_installed().expect("second bootstrap"),
        InstallOutcome::AlreadyInstalled
    );
    tools
        .verify()
        .expect("every tool runs and reports the pinned version");
    let version = std::process::Command::new(tools.anvil())
        .arg("--version")
        .output()
        .expect("anvil runs");
    assert!(String::from_utf8_lossy(&version.stdout).contains(FOUNDRY_VERSION));
}

#[test]
fn a_tools_folder_without_a_lockfile_is_named_in_the_error() {
    let empty = tempfile::tempdir().unwrap();
    let tools = Tools {
        dir: empty.path().to_path_buf(),
    };
    let error = tools.ensure_installed().unwrap_err().to_string();
    assert!(
        error.contains("package-lock.json") && error.contains("LICEN_TOOLS_DIR"),
        "{error}"
    );
}
