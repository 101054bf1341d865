//! `cargo xtask`: project automation.
//!
//! - `bootstrap`: install the pinned tools (anvil, forge, cast, solc shim) from
//!   `tools/package-lock.json`; idempotent and offline on the second run.
//! - `contracts`: compile the contracts and refresh the committed ABI artifact that
//!   `crates/chain` generates its bindings from.
//! - `python`: create `tools/.venv` with the pinned, hash-checked packages of
//!   `tools/python/requirements.txt` (the LoRA adapter check); a no-op when up to date.
//! - `snapshot`: regenerate `contracts/.gas-snapshot` exactly as `test` checks it.
//! - `test`: everything CI checks, in order, failing on the first failure. `.ci/run` calls it.
//! - `check-cuda`: build the LoRA trainer with candle's CUDA backend, using a CUDA toolkit of
//!   pinned PyPI wheels (`tools/cuda/requirements.txt`); not part of `test` (see `cuda`).
//! - `gpu-smoke`: build and run the CUDA smoke test (the fixture model trained on GPU 0); skips
//!   with the reason on a machine without an NVIDIA driver.
//! - `with-postgres <command…>`: runs a command with a throwaway Postgres cluster (e.g. the
//!   indexer's tests or benchmarks on Postgres).

mod bench;
mod bench_flow;
mod cuda;
mod postgres;

use anyhow::{Context, Result, bail};
use licen_toolchain::{InstallOutcome, Tools, repo_root};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The forge artifact the Rust bindings are generated from (one ABI source of truth).
const ARTIFACT_SRC: &str = "contracts/out/DataPolicy.sol/DataPolicy.json";
const ARTIFACT_COMMITTED: &str = "crates/chain/artifacts/DataPolicy.json";

fn main() -> std::process::ExitCode {
    match run_command() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("\nxtask failed: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_command() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = repo_root();
    match args.first().map(String::as_str) {
        Some("bootstrap") => bootstrap().map(|_| ()),
        Some("contracts") => contracts(&root, &bootstrap()?, false),
        Some("snapshot") => gas_snapshot(&root, &bootstrap()?, false),
        Some("test") => test(&root),
        Some("python") => python_deps(&root),
        Some("check-cuda") => cuda::check(&root),
        Some("gpu-smoke") => cuda::gpu_smoke(&root),
        Some("with-postgres") => postgres::run_with(&args[1..]),
        Some("bench") => match args.get(1).map(String::as_str) {
            Some("start-latency") => bench_flow::start_latency(&root),
            Some("concurrent-jobs") => bench_flow::concurrent_jobs(&root),
            Some("seal-memory") => bench::seal_memory(&root),
            None => bench::run(&root),
            Some(other) => bail!(
                "unknown bench `{other}`: start-latency, concurrent-jobs, seal-memory, or none for \
                 the 1 GiB figures"
            ),
        },
        _ => {
            eprintln!(
                "usage: cargo xtask <bootstrap|contracts|snapshot|python|test|bench|check-cuda|gpu-smoke>\n\
                 \n  bootstrap   install pinned anvil/forge/cast 1.7.1 and solc 0.8.30 into tools/\
                 \n  contracts   forge build and refresh {ARTIFACT_COMMITTED}\
                 \n  snapshot    regenerate contracts/.gas-snapshot the way `test` checks it\
                 \n  python      install the pinned Python test packages into tools/.venv\
                 \n  test        run every check and test CI runs\
                 \n  check-cuda  build licen-lora/licen-compute with the cuda feature (toolkit from PyPI wheels)\
                 \n  gpu-smoke   build and run the GPU smoke test: the fixture model trained on GPU 0 (skips without a driver)\
                 \n  bench       1 GiB seal/root/upload/download/open figures (LICEN_BENCH_MIB to resize)\
                 \n  bench start-latency    request mined -> startJob mined, median of 20 (limit 1 s)\
                 \n  bench concurrent-jobs  50 concurrent jobs on one orchestrator: jobs/min, no nonce errors\
                 \n  bench seal-memory      licen seal peak RSS at 64 MiB .. 1 GiB: the 64 MiB bound, no growth\
                 \n  with-postgres <command…>  run a command with a throwaway Postgres in LICEN_TEST_POSTGRES_URL"
            );
            bail!("unknown or missing xtask command");
        }
    }
}

fn bootstrap() -> Result<Tools> {
    let tools = Tools::locate();
    match tools.ensure_installed()? {
        InstallOutcome::AlreadyInstalled => {
            eprintln!("tools: already installed in {}", tools.dir.display())
        }
        InstallOutcome::Installed => eprintln!("tools: installed into {}", tools.dir.display()),
    }
    Ok(tools)
}

/// Builds the contracts; with `check`, fails if the committed artifact is stale instead of
/// refreshing it.
fn contracts(root: &Path, tools: &Tools, check: bool) -> Result<()> {
    let contracts_dir = root.join("contracts");
    run(Command::new(tools.forge())
        .arg("build")
        .current_dir(&contracts_dir))?;
    let fresh = std::fs::read(root.join(ARTIFACT_SRC)).context("reading the forge artifact")?;
    let committed_path = root.join(ARTIFACT_COMMITTED);
    let committed = std::fs::read(&committed_path).unwrap_or_default();
    if fresh == committed {
        eprintln!("contracts: {ARTIFACT_COMMITTED} is up to date");
        return Ok(());
    }
    if check {
        bail!(
            "{ARTIFACT_COMMITTED} is stale: the contract changed; run `cargo xtask contracts` and commit the result"
        );
    }
    std::fs::create_dir_all(committed_path.parent().expect("artifact has a parent"))?;
    std::fs::write(&committed_path, fresh)?;
    eprintln!("contracts: refreshed {ARTIFACT_COMMITTED}");
    Ok(())
}

/// Runs `forge snapshot`: with `check`, against the committed `.gas-snapshot`, else rewriting it.
///
/// The fuzz tests' figures (mean/median gas of the seeded runs) also depend on two things outside
/// the tree, pinned here so CI and `cargo xtask snapshot` agree on every machine: forge splits the
/// runs over one worker per thread (up to runs/64), each with its own seed, so the thread count is
/// fixed at CI's two; and forge replays a counterexample persisted by an earlier failing run as an
/// extra run, so failures are persisted to a directory emptied first.
fn gas_snapshot(root: &Path, tools: &Tools, check: bool) -> Result<()> {
    let contracts_dir = root.join("contracts");
    let failures_dir = contracts_dir.join("cache/snapshot-fuzz-failures");
    if let Err(error) = std::fs::remove_dir_all(&failures_dir)
        && error.kind() != std::io::ErrorKind::NotFound
    {
        return Err(error).with_context(|| format!("emptying {}", failures_dir.display()));
    }
    let mut command = Command::new(tools.forge());
    command
        .args(["snapshot", "--threads", "2"])
        .args(check.then_some("--check"))
        .env("FOUNDRY_FUZZ_FAILURE_PERSIST_DIR", &failures_dir)
        .current_dir(&contracts_dir);
    run(&mut command)
}

fn test(root: &Path) -> Result<()> {
    let started = Instant::now();
    let tools = bootstrap()?;
    let contracts_dir = root.join("contracts");
    let forge = |args: &[&str]| -> Result<()> {
        run(Command::new(tools.forge())
            .args(args)
            .current_dir(&contracts_dir))
    };
    // CI builds from a cold `target/` once, so incremental caches only cost disk (they about
    // double the size of our own crates' artifacts).
    let cargo = |args: &[&str]| -> Result<()> {
        run(Command::new(cargo_bin())
            .args(args)
            .env("CARGO_INCREMENTAL", "0")
            .current_dir(root))
    };

    step("forge fmt --check", || forge(&["fmt", "--check"]))?;
    step("contract artifact is fresh", || {
        contracts(root, &tools, true)
    })?;
    step("forge test", || forge(&["test"]))?;
    step("forge snapshot --check", || {
        gas_snapshot(root, &tools, true)
    })?;
    step("cargo fmt --check", || cargo(&["fmt", "--all", "--check"]))?;
    // licen-web's build script compiles crates/wasm (licen-crypto and licen-storage's Merkle
    // code) for wasm32, so that target must exist before the first build; that nested build is
    // also the check that licen-crypto builds for wasm32.
    step("rust wasm32 target", || ensure_rust_target(WASM_TARGET))?;
    step("cargo clippy", || {
        cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ])
    })?;
    step("chromium for the browser tests", browser_tools)?;
    step("python test packages", || python_deps(root))?;
    // The indexer's and the orchestrator ledger's tests also run on Postgres: a throwaway
    // cluster unless one is given.
    let cluster = match std::env::var(postgres::URL_ENV) {
        Ok(_) => None,
        Err(_) => Some(step(
            "start a throwaway Postgres",
            postgres::Cluster::start,
        )?),
    };
    step("cargo nextest", || {
        let mut nextest = Command::new(cargo_bin());
        nextest
            .args([
                "nextest",
                "run",
                "--workspace",
                "--locked",
                "--no-fail-fast",
            ])
            .env("CARGO_INCREMENTAL", "0")
            .current_dir(root);
        if let Some(cluster) = &cluster {
            nextest.env(postgres::URL_ENV, &cluster.url);
        }
        run(&mut nextest)
    })?;
    drop(cluster);
    eprintln!("xtask test: all checks passed in {:.0?}", started.elapsed());
    Ok(())
}

/// Creates `tools/.venv` and installs `tools/python/requirements.txt` with `--require-hashes`;
/// a stamp holding the requirements makes a second run a no-op.
fn python_deps(root: &Path) -> Result<()> {
    let requirements = root.join("tools/python/requirements.txt");
    let venv = root.join("tools/.venv");
    let stamp = venv.join(".licen-requirements");
    let wanted = std::fs::read(&requirements)
        .with_context(|| format!("reading {}", requirements.display()))?;
    if std::fs::read(&stamp).is_ok_and(|s| s == wanted) {
        eprintln!("python: {} is up to date", venv.display());
        return Ok(());
    }
    run(Command::new("python3")
        .args(["-m", "venv", "--clear"])
        .arg(&venv))
    .context("creating tools/.venv needs python3 (3.11) with the venv module")?;
    run(&mut pip_install_hashed(
        venv.join("bin/python"),
        &requirements,
    ))?;
    std::fs::write(&stamp, wanted)?;
    eprintln!(
        "python: installed {} into {}",
        requirements.display(),
        venv.display()
    );
    Ok(())
}

/// `pip install` of a hash-pinned requirements file: wheels only, exactly the listed files
/// (no dependency resolution), every hash checked. Callers add where it installs to.
pub(crate) fn pip_install_hashed(
    python: impl AsRef<std::ffi::OsStr>,
    requirements: &Path,
) -> Command {
    let mut pip = Command::new(python);
    pip.args([
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--only-binary=:all:",
        "--require-hashes",
        "--disable-pip-version-check",
        "-r",
    ])
    .arg(requirements);
    pip
}

const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// Installs a rustup target when the active toolchain lacks it (a no-op, offline, when present).
fn ensure_rust_target(target: &str) -> Result<()> {
    let output = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .context("could not run `rustc --print sysroot`")?;
    let sysroot = String::from_utf8(output.stdout).context("rustc printed a non-UTF-8 sysroot")?;
    if Path::new(sysroot.trim())
        .join("lib/rustlib")
        .join(target)
        .is_dir()
    {
        return Ok(());
    }
    eprintln!("rust: installing the {target} target with rustup");
    run(Command::new("rustup").args(["target", "add", target])).with_context(|| {
        format!("installing the {target} target failed; run `rustup target add {target}`")
    })
}

/// Debian's `chromium` and `chromium-driver` for the web app's browser tests: installed with
/// apt-get when missing and running as root (CI); otherwise the tests print why they skip.
fn browser_tools() -> Result<()> {
    let present = |p: &str| Path::new(p).exists();
    if present("/usr/bin/chromium") && present("/usr/bin/chromedriver") {
        return Ok(());
    }
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !is_root || !present("/usr/bin/apt-get") {
        eprintln!(
            "chromium/chromedriver missing and not root on Debian: the browser tests will skip (install `chromium chromium-driver`)"
        );
        return Ok(());
    }
    let install = || {
        run(Command::new("apt-get")
            .args([
                "install",
                "-y",
                "--no-install-recommends",
                "chromium",
                "chromium-driver",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive"))
    };
    if install().is_err() {
        run(Command::new("apt-get").arg("update"))?;
        install()?;
    }
    Ok(())
}

fn step<T>(name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    eprintln!("\n==> {name}");
    let started = Instant::now();
    let value = f().with_context(|| format!("step `{name}` failed"))?;
    eprintln!("<== {name}: ok in {:.1?}", started.elapsed());
    Ok(value)
}

pub(crate) fn run(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("could not start {command:?}"))?;
    if !status.success() {
        bail!("{command:?} exited with {status}");
    }
    Ok(())
}

pub(crate) fn cargo_bin() -> PathBuf {
    std::env::var_os("CARGO").map_or_else(|| "cargo".into(), PathBuf::from)
}
