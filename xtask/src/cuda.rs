//! `cargo xtask check-cuda` and `cargo xtask gpu-smoke`: the candle CUDA build of the LoRA
//! trainer, with a CUDA toolkit made of NVIDIA's PyPI wheels (no system toolkit needed).
//!
//! Owns the toolkit install under `tools/.cuda` (pinned, hash-checked wheels of
//! `tools/cuda/requirements.txt`, plus the two link-time pieces the wheels lack: unversioned
//! `lib*.so` names and a symbol-only `libcuda.so` that stands in for the NVIDIA driver at link
//! time, as the toolkit's own `lib/stubs/libcuda.so` does) and the environment candle's build
//! scripts read (nvcc on `PATH`, `CUDA_ROOT`/`CUDA_PATH`/`CUDA_HOME`, `CUDA_COMPUTE_CAP`).
//! Must never: run inside `cargo xtask test` / CI (it compiles candle a second time, with
//! nvcc), share the normal target dir (the feature change would rebuild candle there), or put
//! the link-time `libcuda.so` on a run-time library path (the real driver must be loaded).

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::{cargo_bin, pip_install_hashed, run};

/// Compute capability the kernels are compiled for when `CUDA_COMPUTE_CAP` is not set: 90 is
/// Hopper (H100/H200), the GPUs this project is measured on. Nothing here can query a GPU.
const DEFAULT_COMPUTE_CAP: &str = "90";

/// The CUDA toolkit tree that the wheels unpack into (inside the `pip --target` folder).
const TOOLKIT_SUBDIR: &str = "nvidia/cu13";

/// Versioned shared libraries in the wheels that the linker is asked for by their plain name
/// (`-lcudart`, `-lcublas`, …): the wheels ship only the versioned file.
const UNVERSIONED_LIBS: [&str; 5] = [
    "libcudart.so.13",
    "libcublas.so.13",
    "libcublasLt.so.13",
    "libcurand.so.10",
    "libnvrtc.so.13",
];

/// The GPU smoke test (`crates/lora/tests/cuda.rs`): `check` builds it and `gpu_smoke` runs
/// it with the same selection, so the second reuses the first's build.
const SMOKE_TEST: [&str; 6] = ["-p", "licen-lora", "--features", "cuda", "--test", "cuda"];

/// The installed toolkit and the target dir of the CUDA build.
struct CudaBuild {
    toolkit: PathBuf,
    target_dir: PathBuf,
}

impl CudaBuild {
    fn locate(root: &Path) -> Self {
        let target_dir = std::env::var_os("LICEN_CUDA_TARGET_DIR")
            .map_or_else(|| root.join("target/cuda"), PathBuf::from);
        CudaBuild {
            toolkit: root.join("tools/.cuda").join(TOOLKIT_SUBDIR),
            target_dir,
        }
    }

    /// `cargo` with the environment the CUDA build scripts read (cudarc: `nvcc --version` and
    /// `CUDA_ROOT`'s `lib`/`lib/stubs`; candle-kernels/cudaforge: nvcc on `PATH` and
    /// `CUDA_COMPUTE_CAP`). Only variables that stay the same from run to run, so a second run
    /// reruns no build script (candle-kernels' nvcc step takes most of an hour on 2 cores).
    fn cargo(&self, root: &Path) -> Result<Command> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let path = std::env::join_paths(
            std::iter::once(self.toolkit.join("bin")).chain(std::env::split_paths(&path)),
        )
        .context("the toolkit path cannot go on PATH")?;
        let mut cargo = Command::new(cargo_bin());
        cargo
            .current_dir(root)
            .env("PATH", path)
            .env("CARGO_TARGET_DIR", &self.target_dir)
            .env("CARGO_INCREMENTAL", "0");
        for var in ["CUDA_ROOT", "CUDA_PATH", "CUDA_HOME"] {
            cargo.env(var, &self.toolkit);
        }
        if std::env::var_os("CUDA_COMPUTE_CAP").is_none() {
            cargo.env("CUDA_COMPUTE_CAP", DEFAULT_COMPUTE_CAP);
        }
        Ok(cargo)
    }
}

/// Installs the toolkit and builds `licen-lora` and `licen-compute` (lib, bins and the CUDA
/// smoke test) with the `cuda` feature in their own target dir.
pub(crate) fn check(root: &Path) -> Result<()> {
    let started = Instant::now();
    let build = CudaBuild::locate(root);
    install_toolkit(root)?;
    eprintln!(
        "check-cuda: building with {} into {} (CUDA_COMPUTE_CAP={})",
        build.toolkit.join("bin/nvcc").display(),
        build.target_dir.display(),
        std::env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| DEFAULT_COMPUTE_CAP.into()),
    );
    run(build.cargo(root)?.args([
        "build",
        "--locked",
        "-p",
        "licen-lora",
        "-p",
        "licen-compute",
        "--features",
        "cuda",
        "--lib",
        "--bins",
    ]))
    .context("the CUDA build failed")?;
    // The smoke test's build activates licen-lora's dev-dependencies, which changes the
    // features of shared dependencies (cudaforge among them), so candle's kernels are compiled
    // a second time for it, in the same target dir. Unfinished: one `cargo build` selecting
    // the bins and this test together would compile them once, but was not measured here.
    run(build
        .cargo(root)?
        .args(["test", "--locked", "--no-run"])
        .args(SMOKE_TEST))
    .context("building the CUDA smoke test failed")?;
    eprintln!(
        "check-cuda: licen-lora and licen-compute build with the cuda feature ({:.0?})",
        started.elapsed()
    );
    Ok(())
}

/// Runs the CUDA smoke test (building it first, as `check` does): it trains the fixture model
/// on GPU 0. Without an NVIDIA driver it prints why and succeeds without building (the CUDA
/// build links `libcuda.so.1`, so its binaries cannot even start there; `check-cuda` is the
/// build check for such machines).
pub(crate) fn gpu_smoke(root: &Path) -> Result<()> {
    if let Some(reason) = no_driver_reason() {
        eprintln!("gpu-smoke: skipped: {reason}");
        return Ok(());
    }
    install_toolkit(root)?;
    let build = CudaBuild::locate(root);
    // The wheels' run-time libraries (cudart, cublas, curand, nvrtc); never lib/stubs.
    let lib = build.toolkit.join("lib");
    let ld_path = match std::env::var_os("LD_LIBRARY_PATH") {
        Some(old) => {
            std::env::join_paths(std::iter::once(lib.clone()).chain(std::env::split_paths(&old)))?
        }
        None => lib.into_os_string(),
    };
    run(build
        .cargo(root)?
        .env("LD_LIBRARY_PATH", ld_path)
        .args(["test", "--locked"])
        .args(SMOKE_TEST)
        .args(["--", "--nocapture"]))
    .context("the GPU smoke test failed")
}

/// Why the CUDA binaries cannot run here, or `None` when the NVIDIA driver library is present.
fn no_driver_reason() -> Option<String> {
    let listed = Command::new("ldconfig")
        .arg("-p")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("libcuda.so.1"));
    if listed {
        return None;
    }
    Some(
        "no NVIDIA driver on this machine (`ldconfig -p` lists no libcuda.so.1), so no CUDA \
         device can be used; run `cargo xtask gpu-smoke` on a machine with an NVIDIA GPU and a \
         driver of version 580 or newer (CUDA 13)"
            .into(),
    )
}

/// Installs `tools/cuda/requirements.txt` into `tools/.cuda` with `--require-hashes` and adds
/// the link-time pieces; a stamp holding the requirements makes a second run a no-op.
fn install_toolkit(root: &Path) -> Result<()> {
    let requirements = root.join("tools/cuda/requirements.txt");
    let dir = root.join("tools/.cuda");
    let toolkit = dir.join(TOOLKIT_SUBDIR);
    let stamp = dir.join(".licen-requirements");
    let wanted = std::fs::read(&requirements)
        .with_context(|| format!("reading {}", requirements.display()))?;
    if std::fs::read(&stamp).is_ok_and(|s| s == wanted) {
        eprintln!(
            "check-cuda: the CUDA toolkit in {} is up to date",
            dir.display()
        );
        return Ok(());
    }
    let started = Instant::now();
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    run(pip_install_hashed("python3", &requirements)
        .arg("--target")
        .arg(&dir))
    .context("installing the CUDA wheels needs python3 with pip and access to PyPI")?;
    let lib = toolkit.join("lib");
    for versioned in UNVERSIONED_LIBS {
        if !lib.join(versioned).is_file() {
            bail!(
                "the CUDA wheels did not install {}: {} does not match the toolkit layout this \
                 command expects",
                lib.join(versioned).display(),
                requirements.display()
            );
        }
        let plain = versioned.split_once(".so").expect("a .so name").0;
        std::os::unix::fs::symlink(versioned, lib.join(format!("{plain}.so")))?;
    }
    write_driver_link_stub(&toolkit)?;
    std::fs::write(&stamp, wanted)?;
    eprintln!(
        "check-cuda: installed the CUDA toolkit wheels into {} ({:.0?})",
        dir.display(),
        started.elapsed()
    );
    Ok(())
}

/// Writes `lib/stubs/libcuda.so`: one empty function per driver API entry point declared in
/// the wheel's `cuda.h`, with the real driver's soname `libcuda.so.1`. candle builds cudarc
/// with `dynamic-linking`, so the linker needs the driver's symbols; no wheel ships the driver
/// (it comes with the GPU machine's kernel module). The binaries record `libcuda.so.1` and load
/// the real driver at run time; this file is only ever read by the linker.
fn write_driver_link_stub(toolkit: &Path) -> Result<()> {
    let header = toolkit.join("include/cuda.h");
    let preprocessed = Command::new("cc")
        .args(["-E", "-P", "-I"])
        .arg(toolkit.join("include"))
        .arg(&header)
        .output()
        .context("preprocessing cuda.h needs a C compiler (`cc`)")?;
    if !preprocessed.status.success() {
        bail!(
            "preprocessing {} failed: {}",
            header.display(),
            String::from_utf8_lossy(&preprocessed.stderr)
        );
    }
    let entry_points = driver_entry_points(&String::from_utf8_lossy(&preprocessed.stdout));
    if entry_points.len() < 100 {
        bail!(
            "found only {} driver entry points in {}: not the cuda.h this command expects",
            entry_points.len(),
            header.display()
        );
    }
    let stubs = toolkit.join("lib/stubs");
    std::fs::create_dir_all(&stubs)?;
    let source = stubs.join("libcuda-link-stub.c");
    let body: String = entry_points
        .iter()
        .map(|name| format!("void {name}(void) {{}}\n"))
        .collect();
    std::fs::write(&source, body)?;
    run(Command::new("cc")
        .args(["-shared", "-fPIC", "-Wl,-soname,libcuda.so.1", "-o"])
        .arg(stubs.join("libcuda.so"))
        .arg(&source))
    .context("compiling the link-time libcuda.so")
}

/// Names `cu[A-Z]…` directly followed by `(` in preprocessed `cuda.h`: the driver API's
/// exported functions under their versioned names (`cuMemAlloc_v2`, …), which is what the
/// macros in `cuda.h` make every caller reference.
fn driver_entry_points(preprocessed: &str) -> std::collections::BTreeSet<String> {
    let bytes = preprocessed.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut names = std::collections::BTreeSet::new();
    let mut i = 0;
    while i < bytes.len() {
        let starts_word = i == 0 || !is_ident(bytes[i - 1]);
        if starts_word
            && bytes[i..].starts_with(b"cu")
            && bytes.get(i + 2).is_some_and(u8::is_ascii_uppercase)
        {
            let end = (i..bytes.len())
                .find(|&j| !is_ident(bytes[j]))
                .unwrap_or(bytes.len());
            let rest = preprocessed[end..].trim_start();
            if rest.starts_with('(') {
                names.insert(preprocessed[i..end].to_string());
            }
            i = end;
        } else {
            i += 1;
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::driver_entry_points;

    #[test]
    fn entry_points_are_the_called_names_only() {
        let header = "typedef int CUresult;\nCUresult cuInit(unsigned int Flags);\n\
                      CUresult cuMemAlloc_v2 (void **p, unsigned long n);\n\
                      typedef void (*CUhostFn)(void *);\nint notcuda(void); int xcuFoo(void);\n\
                      struct CUuuid_st cuuid; CUresult cuLinkCreate_v2\n(unsigned int n);";
        let names: Vec<_> = driver_entry_points(header).into_iter().collect();
        assert_eq!(names, ["cuInit", "cuLinkCreate_v2", "cuMemAlloc_v2"]);
    }
}
