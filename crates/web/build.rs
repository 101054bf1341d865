//! Builds `crates/wasm` for `wasm32-unknown-unknown` and leaves `licen_wasm.wasm` in `OUT_DIR`,
//! where `src/assets.rs` embeds it. A nested cargo with its own target folder (under `OUT_DIR`,
//! so it never contends for the outer build's lock); stripped, optimised, no extra tool.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let workspace = manifest_dir.join("../..");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for watched in [
        "crates/wasm",
        "crates/crypto/src",
        "crates/crypto/Cargo.toml",
        "crates/storage/src",
        "crates/storage/Cargo.toml",
        "Cargo.lock",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target_dir = out_dir.join("wasm-target");
    let mut command = Command::new(cargo);
    command
        .current_dir(&workspace)
        .args([
            "build",
            "--locked",
            "--release",
            "--target",
            "wasm32-unknown-unknown",
            "-p",
            "licen-wasm",
            "--lib",
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "true")
        .env("CARGO_PROFILE_RELEASE_LTO", "true")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1");
    // The outer build's flags and wrappers (clippy, coverage) are for the host, not for wasm.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
    ] {
        command.env_remove(var);
    }
    let status = command
        .status()
        .expect("running cargo to build crates/wasm");
    assert!(
        status.success(),
        "building crates/wasm for wasm32-unknown-unknown failed (is the target installed? `rustup target add wasm32-unknown-unknown`)"
    );
    let built = target_dir.join("wasm32-unknown-unknown/release/licen_wasm.wasm");
    std::fs::copy(&built, out_dir.join("licen_wasm.wasm"))
        .expect("copying licen_wasm.wasm into OUT_DIR");
}
