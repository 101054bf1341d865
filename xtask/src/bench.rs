//! `cargo xtask bench`: the end-to-end figures issue 3 names, measured on real processes.
//!
//! Generates a pseudo-random file (1 GiB by default, `LICEN_BENCH_MIB` to change), then times
//! `licen seal` (seal + 0G root in one streaming pass; peak RSS must stay ≤ 64 MiB), a local
//! storage node upload and verified download over loopback (≥ 300 MB/s each way), and
//! `licen open`, and checks the round trip is byte-identical. Builds `licen` in release (as
//! `cargo bench` does): benchmarks are not part of `cargo xtask test`, so CI compiles nothing
//! twice.
//!
//! `cargo xtask bench seal-memory` runs only `licen seal` on files of growing size (64 MiB up to
//! 1 GiB, `LICEN_BENCH_MIB` for the largest) and shows that the peak RSS of the streaming
//! seal + root pass stays under 64 MiB and does not grow with the file.

use anyhow::{Context, Result, bail, ensure};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const MIB: u64 = 1 << 20;
const PEAK_RSS_LIMIT: u64 = 64 * MIB;
const TRANSFER_LIMIT_MB_S: f64 = 300.0;

/// The file size the benches use: `LICEN_BENCH_MIB`, 1 GiB by default.
fn bench_mib() -> Result<u64> {
    Ok(std::env::var("LICEN_BENCH_MIB")
        .ok()
        .map(|v| v.parse())
        .transpose()
        .context("LICEN_BENCH_MIB must be a number of MiB")?
        .unwrap_or(1024))
}

pub(crate) fn run(root: &Path) -> Result<()> {
    let mib = bench_mib()?;
    let licen = build_licen(root)?;
    let work = target_dir(root).join("xtask-bench");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;

    let data = work.join("data.bin");
    let started = Instant::now();
    write_pseudo_random(&data, mib * MIB)?;
    eprintln!("generated {mib} MiB in {:.1?}", started.elapsed());

    let key = json(&licen, &work, &["keygen", "-o", "bench.key"])?;
    let public = key["public_key"]
        .as_str()
        .context("keygen prints public_key")?
        .to_owned();

    let (seal, seal_s) = timed(|| {
        json(
            &licen,
            &work,
            &["seal", "data.bin", "--to", &public, "-o", "data.sealed"],
        )
    })?;
    let root_hex = seal["dataset_root"]
        .as_str()
        .context("seal prints dataset_root")?
        .to_owned();
    let sealed_bytes = seal["sealed_bytes"].as_u64().unwrap_or(0);
    let seal_rss = seal["peak_rss_bytes"].as_u64().unwrap_or(u64::MAX);

    let mut node = Command::new(&licen)
        .args([
            "storage-node",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            "storage",
        ])
        .current_dir(&work)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting the storage node")?;
    let mut line = String::new();
    BufReader::new(node.stdout.take().expect("piped")).read_line(&mut line)?;
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .context("node prints its URL")?
        .to_owned();

    let outcome = (|| -> Result<Vec<Row>> {
        let (put, put_s) =
            timed(|| json(&licen, &work, &["put", "data.sealed", "--storage", &url]))?;
        ensure!(
            put["root"].as_str() == Some(root_hex.as_str()),
            "upload root differs from seal root"
        );
        let (get, get_s) = timed(|| {
            json(
                &licen,
                &work,
                &["get", &root_hex, "-o", "back.sealed", "--storage", &url],
            )
        })?;
        let (open, open_s) = timed(|| {
            json(
                &licen,
                &work,
                &[
                    "open",
                    "back.sealed",
                    "--envelope",
                    "data.sealed.envelope",
                    "--key",
                    "bench.key",
                    "-o",
                    "back.bin",
                ],
            )
        })?;
        ensure!(
            same_contents(&data, &work.join("back.bin"))?,
            "round trip is not byte-identical"
        );
        let mb = |bytes: u64, s: f64| bytes as f64 / 1e6 / s;
        Ok(vec![
            Row::min(
                "seal + root, throughput (MB/s of plaintext)",
                mb(mib * MIB, seal_s),
                None,
            ),
            Row::max(
                "seal + root, peak RSS (MiB)",
                seal_rss as f64 / MIB as f64,
                PEAK_RSS_LIMIT as f64 / MIB as f64,
            ),
            Row::min(
                "put: hash pass + upload (MB/s)",
                mb(sealed_bytes, put_s),
                None,
            ),
            Row::min(
                "upload to local node, segments + proofs (MB/s)",
                mb(sealed_bytes, put["upload_s"].as_f64().unwrap_or(f64::NAN)),
                Some(TRANSFER_LIMIT_MB_S),
            ),
            Row::max("upload, client peak RSS (MiB)", rss(&put), f64::NAN),
            Row::min(
                "verified download (MB/s)",
                mb(sealed_bytes, get_s),
                Some(TRANSFER_LIMIT_MB_S),
            ),
            Row::max("download, client peak RSS (MiB)", rss(&get), f64::NAN),
            Row::min(
                "open, throughput (MB/s of plaintext)",
                mb(mib * MIB, open_s),
                None,
            ),
            Row::max(
                "open, peak RSS (MiB)",
                rss(&open),
                PEAK_RSS_LIMIT as f64 / MIB as f64,
            ),
        ])
    })();
    let _ = node.kill();
    let _ = node.wait();
    let rows = outcome?;
    println!("\nLICEN end-to-end bench, {mib} MiB, round trip byte-identical: yes");
    println!(
        "{:<48} {:>10} {:>10} {:>8}",
        "measure", "value", "limit", "ratio"
    );
    let mut failed = false;
    for row in &rows {
        println!("{row}");
        failed |= row.violated();
    }
    let _ = std::fs::remove_dir_all(&work);
    if failed {
        bail!("a measured figure is outside its limit (see the table)");
    }
    Ok(())
}

/// The cargo target directory (`CARGO_TARGET_DIR` when set, as cargo itself resolves it).
fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

/// Builds `licen` in release and returns its path.
fn build_licen(root: &Path) -> Result<PathBuf> {
    crate::run(
        Command::new(crate::cargo_bin())
            .args(["build", "--release", "-p", "licen-cli"])
            .current_dir(root),
    )?;
    Ok(target_dir(root).join("release/licen"))
}

/// CPU seconds (user + system) of this process's children that have been waited for
/// (`cutime` + `cstime` of Linux `/proc/self/stat`); NaN elsewhere.
fn children_cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the parenthesised command name start at field 3 (state).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |field: usize| {
        fields
            .get(field - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    // The kernel reports these in USER_HZ, which is 100 on every Linux ABI.
    (ticks(16) + ticks(17)) / 100.0
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// `cargo xtask bench seal-memory`: `licen seal` (seal + 0G root in one streaming pass) on
/// files of 64 MiB, 256 MiB and 1 GiB; peak RSS of each run against the 64 MiB bound, and its
/// growth from the smallest file to the largest.
pub(crate) fn seal_memory(root: &Path) -> Result<()> {
    let largest = bench_mib()?;
    let mut sizes: Vec<u64> = [64, 256, 1024]
        .into_iter()
        .filter(|&s| s < largest)
        .collect();
    sizes.push(largest);
    let licen = build_licen(root)?;
    let work = target_dir(root).join("xtask-bench-seal-memory");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let key = json(&licen, &work, &["keygen", "-o", "bench.key"])?;
    let public = key["public_key"]
        .as_str()
        .context("keygen prints public_key")?
        .to_owned();

    println!(
        "\nlicen seal (seal + 0G root, one streaming pass), release build, load average before: {}",
        load_average()
    );
    println!(
        "{:>9} {:>11} {:>14} {:>14} {:>16}",
        "file MiB", "MB/s wall", "MB/CPU-second", "peak RSS MiB", "vs 64 MiB bound"
    );
    let mut peaks = Vec::new();
    for &mib in &sizes {
        let data = work.join("data.bin");
        write_pseudo_random(&data, mib * MIB)?;
        let cpu_before = children_cpu_secs();
        let (seal, seal_s) = timed(|| {
            json(
                &licen,
                &work,
                &["seal", "data.bin", "--to", &public, "-o", "data.sealed"],
            )
        })?;
        let cpu_s = children_cpu_secs() - cpu_before;
        let peak = seal["peak_rss_bytes"]
            .as_u64()
            .context("licen seal reports peak_rss_bytes (Linux only)")?;
        let mb = (mib * MIB) as f64 / 1e6;
        println!(
            "{:>9} {:>11.0} {:>14.0} {:>14.1} {:>15.2}x",
            mib,
            mb / seal_s,
            mb / cpu_s,
            peak as f64 / MIB as f64,
            PEAK_RSS_LIMIT as f64 / peak as f64
        );
        peaks.push(peak);
        for file in ["data.bin", "data.sealed", "data.sealed.envelope"] {
            std::fs::remove_file(work.join(file))?;
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    let (first, last) = (peaks[0], *peaks.last().expect("at least one size"));
    println!(
        "peak RSS growth from {} MiB to {} MiB of input: {:+.1} MiB (load average after: {})",
        sizes[0],
        largest,
        (last as f64 - first as f64) / MIB as f64,
        load_average()
    );
    let worst = peaks.iter().copied().max().unwrap_or(0);
    ensure!(
        worst <= PEAK_RSS_LIMIT,
        "peak RSS {:.1} MiB exceeds the 64 MiB bound",
        worst as f64 / MIB as f64
    );
    Ok(())
}

struct Row {
    name: &'static str,
    value: f64,
    limit: Option<f64>,
    higher_is_better: bool,
}

impl Row {
    fn min(name: &'static str, value: f64, limit: Option<f64>) -> Self {
        Self {
            name,
            value,
            limit,
            higher_is_better: true,
        }
    }

    fn max(name: &'static str, value: f64, limit: f64) -> Self {
        Self {
            name,
            value,
            limit: (!limit.is_nan()).then_some(limit),
            higher_is_better: false,
        }
    }

    fn violated(&self) -> bool {
        // Only the memory bound is a hard failure: throughput depends on what else the
        // machine is doing and is reported as a ratio instead.
        !self.higher_is_better && self.limit.is_some_and(|l| self.value > l)
    }
}

impl std::fmt::Display for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.limit {
            Some(limit) => {
                let ratio = if self.higher_is_better {
                    self.value / limit
                } else {
                    limit / self.value
                };
                write!(
                    f,
                    "{:<48} {:>10.1} {:>10.1} {:>7.2}x",
                    self.name, self.value, limit, ratio
                )
            }
            None => write!(
                f,
                "{:<48} {:>10.1} {:>10} {:>8}",
                self.name, self.value, "-", "-"
            ),
        }
    }
}

fn rss(report: &serde_json::Value) -> f64 {
    report["peak_rss_bytes"]
        .as_u64()
        .map_or(f64::NAN, |b| b as f64 / MIB as f64)
}

fn timed<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, f64)> {
    let started = Instant::now();
    let value = f()?;
    Ok((value, started.elapsed().as_secs_f64()))
}

fn json(licen: &Path, dir: &Path, args: &[&str]) -> Result<serde_json::Value> {
    let output = Command::new(licen)
        .arg("--json")
        .args(args)
        .current_dir(dir)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running licen {args:?}"))?;
    ensure!(
        output.status.success(),
        "licen {args:?} failed with {}",
        output.status
    );
    serde_json::from_slice(&output.stdout)
        .with_context(|| format!("licen {args:?} printed no JSON"))
}

/// Deterministic pseudo-random bytes (xorshift64*), fast enough not to dominate the bench.
fn write_pseudo_random(path: &Path, len: u64) -> Result<()> {
    let mut out = std::io::BufWriter::with_capacity(MIB as usize, std::fs::File::create(path)?);
    let mut state: u64 = 0x4C49_4345_4E21_0001;
    let mut block = vec![0u8; MIB as usize];
    let mut left = len;
    while left > 0 {
        for word in block.chunks_exact_mut(8) {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            word.copy_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
        }
        let n = left.min(MIB) as usize;
        out.write_all(&block[..n])?;
        left -= n as u64;
    }
    out.flush()?;
    Ok(())
}

fn same_contents(a: &Path, b: &Path) -> Result<bool> {
    let (mut a, mut b) = (std::fs::File::open(a)?, std::fs::File::open(b)?);
    if a.metadata()?.len() != b.metadata()?.len() {
        return Ok(false);
    }
    let (mut x, mut y) = (vec![0u8; MIB as usize], vec![0u8; MIB as usize]);
    loop {
        let n = read_full(&mut a, &mut x)?;
        let m = read_full(&mut b, &mut y)?;
        if n != m || x[..n] != y[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
