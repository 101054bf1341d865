//! Storage throughput bench (`cargo bench -p licen-storage --bench storage`).
//!
//! Measures: keccak on 16 KiB inputs (the long-input limit), 256-byte leaves and 64-byte
//! parents, the 0G root on one core and on all cores (per CPU-second and wall, against issue
//! 3's bar, the measured keccak limit and the structural ceiling), and a 1 GiB upload and
//! download through a real `licen-storage-node` process over loopback. `LICEN_BENCH_MB` sets the
//! transfer size (default 1024); `-- root` runs the hashing figures only. Run without `--bench`
//! (as `cargo test --all-targets` does) it runs a small smoke version.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

use licen_storage::client::{ClientConfig, DownloadOptions, FileReads, StorageClient};
use licen_storage::merkle::{self, FileTree, RootBuilder};

/// CPU seconds (user + system) used so far by a process (Linux `/proc`; 0 elsewhere). The
/// machine this runs on may be shared, so CPU time is reported next to wall time.
fn cpu_secs(pid: Option<u32>) -> f64 {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0.0;
    };
    // Fields after the parenthesised command name: state is field 3; utime 14, stime 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(14) + ticks(15)) / 100.0
}

fn mbps(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / secs / 1e6
}

fn fill(buf: &mut [u8], seed: &mut u64) {
    for chunk in buf.chunks_mut(8) {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        let b = seed.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
}

/// CPU time of the calling thread in seconds (Linux `/proc/thread-self/schedstat`, in ns; NaN
/// elsewhere): single-threaded figures per CPU-second, immune to other load on the machine.
fn thread_cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |ns| ns / 1e9)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Issue 3's bar for the 0G root: 80 % of "about 500 MB/s per core" of keccak on 16 KiB inputs.
const ROOT_TARGET_MB_S: f64 = 400.0;

/// Single-core keccak figures, per CPU-second of this thread: what the 0G root is made of.
struct KeccakLimits {
    /// keccak256 of 16 KiB inputs, MB/s: the long-input limit the issue names.
    long_input: f64,
    /// keccak256 of 256-byte leaves, MB/s of leaf data.
    leaves: f64,
    /// keccak256 of 64-byte Merkle parents, per second.
    parents_per_s: f64,
}

impl KeccakLimits {
    /// The ceiling of a 0G root on one core hashed one input at a time: every 256 bytes cost a
    /// leaf hash and (asymptotically) one parent hash, i.e. 3 permutations where long input
    /// needs 1.88. The library's batched (4-way) hashing is what goes past it.
    fn scalar_root_ceiling(&self) -> f64 {
        let secs_per_byte = 1.0 / (self.leaves * 1e6) + 1.0 / (self.parents_per_s * 256.0);
        1.0 / secs_per_byte / 1e6
    }
}

fn keccak_backends(mb: usize) -> KeccakLimits {
    let data = vec![0x5au8; mb << 20];
    let n = data.len() as u64;
    let mut acc = 0u8;

    let c = thread_cpu_secs();
    for chunk in data.chunks_exact(16 << 10) {
        acc ^= merkle::keccak256(chunk)[0];
    }
    let long_input = mbps(n, thread_cpu_secs() - c);

    let c = thread_cpu_secs();
    for chunk in data.chunks_exact(256) {
        acc ^= merkle::keccak256(chunk)[0];
    }
    let leaves = mbps(n, thread_cpu_secs() - c);

    let c = thread_cpu_secs();
    for chunk in data.chunks_exact(256) {
        use tiny_keccak::Hasher;
        let mut h = tiny_keccak::Keccak::v256();
        let mut o = [0u8; 32];
        h.update(chunk);
        h.finalize(&mut o);
        acc ^= o[0];
    }
    let tiny = mbps(n, thread_cpu_secs() - c);

    let c = thread_cpu_secs();
    for chunk in data.chunks_exact(256) {
        acc ^= alloy_primitives::keccak256(chunk)[0];
    }
    let alloy = mbps(n, thread_cpu_secs() - c);
    println!(
        "keccak256 one input at a time, one core, per CPU-second: 16 KiB inputs \
         {long_input:.0} MB/s (the long-input limit), 256-byte leaves {leaves:.0} MB/s | \
         256-byte leaves with tiny-keccak (the wasm32 backend) {tiny:.0} MB/s, \
         alloy_primitives::keccak256 {alloy:.0} MB/s   [{acc}]",
    );
    KeccakLimits {
        long_input,
        leaves,
        parents_per_s: merkle_parents(mb),
    }
}

/// Merkle parents (keccak256 of 64 bytes) per CPU-second: the library's `hash_pair` against
/// the streaming two-`update` form, which misses keccak-asm's fixed-length fast path.
fn merkle_parents(mb: usize) -> f64 {
    let pairs = (mb << 20) / 256;
    let a = merkle::keccak256(b"left");
    let b = merkle::keccak256(b"right");
    let c = thread_cpu_secs();
    let mut acc = a;
    for _ in 0..pairs {
        acc = merkle::hash_pair(&acc, &b);
    }
    let ours = thread_cpu_secs() - c;
    #[cfg(all(
        any(target_arch = "x86_64", target_arch = "aarch64"),
        not(target_family = "wasm")
    ))]
    let streaming = {
        use keccak_asm::{Digest, Keccak256};
        let c = thread_cpu_secs();
        let mut acc2 = a.0;
        for _ in 0..pairs {
            let mut h = Keccak256::new();
            h.update(acc2);
            h.update(b.0);
            acc2 = h.finalize().into();
        }
        assert_eq!(acc2, acc.0);
        thread_cpu_secs() - c
    };
    #[cfg(not(all(
        any(target_arch = "x86_64", target_arch = "aarch64"),
        not(target_family = "wasm")
    )))]
    let streaming = f64::NAN;
    println!(
        "Merkle parents (keccak256 of 64 bytes), one core, per CPU-second: hash_pair {:.2} M/s \
         | streaming update+update+finalize {:.2} M/s",
        pairs as f64 / ours / 1e6,
        pairs as f64 / streaming / 1e6
    );
    pairs as f64 / ours
}

fn root_throughput(mb: usize, limits: &KeccakLimits) {
    let mut data = vec![0u8; mb << 20];
    let mut seed = 0x1234_5678_9abc_def1;
    fill(&mut data, &mut seed);
    let n = data.len() as u64;

    let t = Instant::now();
    let c = thread_cpu_secs();
    let mut b = RootBuilder::sequential();
    b.write_all(&data).unwrap();
    let r1 = b.finish().root();
    let one = t.elapsed().as_secs_f64();
    let one_cpu = thread_cpu_secs() - c;

    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let t = Instant::now();
    let c = cpu_secs(None);
    let r2 = pool.install(|| FileTree::from_bytes(&data).root());
    let all = t.elapsed().as_secs_f64();
    let all_cpu = cpu_secs(None) - c;
    assert_eq!(r1, r2);
    let per_core = mbps(n, one_cpu);
    println!(
        "0G root of {mb} MiB: 1 core {:.0} MB/s wall, {per_core:.0} MB per CPU-second | \
         {threads} cores {:.0} MB/s wall, {:.0} MB per CPU-second",
        mbps(n, one),
        mbps(n, all),
        mbps(n, all_cpu.max(0.01))
    );
    println!(
        "  per core vs issue 3's absolute bar (400 MB/s = 80 % of ~500 MB/s): {:.2}x | vs 80 % of \
         the measured long-input keccak limit ({:.0} MB/s): {:.2}x ({:.2} of the limit) | vs \
         the ceiling of a root hashed one input at a time (3 permutations per 256 B: {:.0} \
         MB/s): {:.2} of it",
        per_core / ROOT_TARGET_MB_S,
        limits.long_input,
        per_core / (0.8 * limits.long_input),
        per_core / limits.long_input,
        limits.scalar_root_ceiling(),
        per_core / limits.scalar_root_ceiling()
    );
}

fn transfer(mb: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.bin");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&src).unwrap());
        let mut buf = vec![0u8; 4 << 20];
        let mut seed = 0xdead_beef_cafe_f00d;
        let mut left = (mb << 20) as u64 + 12345; // not a multiple of 256
        while left > 0 {
            let n = (left as usize).min(buf.len());
            fill(&mut buf[..n], &mut seed);
            f.write_all(&buf[..n]).unwrap();
            left -= n as u64;
        }
    }
    let size = std::fs::metadata(&src).unwrap().len();
    let mut child = Command::new(env!("CARGO_BIN_EXE_licen-storage-node"))
        .arg("--data-dir")
        .arg(dir.path().join("node"))
        .arg("--listen")
        .arg("127.0.0.1:0")
        .args(
            std::env::var("LICEN_BENCH_FULL_REHASH")
                .is_ok()
                .then_some("--full-rehash"),
        )
        .env(
            "RUST_LOG",
            std::env::var("LICEN_BENCH_NODE_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();

    let pid = child.id();
    rt.block_on(async {
        let env = |k: &str, d: usize| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(d)
        };
        let defaults = ClientConfig::default();
        let cfg = ClientConfig {
            batch_segments: env("LICEN_BENCH_BATCH", defaults.batch_segments),
            max_in_flight: env("LICEN_BENCH_IN_FLIGHT", defaults.max_in_flight),
            ..defaults
        };
        let client = StorageClient::with_config(&url, cfg).unwrap();
        let t = Instant::now();
        let tree = {
            let f = std::fs::File::open(&src).unwrap();
            FileTree::from_reader(f).unwrap()
        };
        let hash_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let (c0, n0) = (cpu_secs(None), cpu_secs(Some(pid)));
        let up = client
            .upload_file_with_tree(&src, &tree, FileReads::Cached, None)
            .await
            .unwrap();
        let send_s = t.elapsed().as_secs_f64();
        let (c1, n1) = (cpu_secs(None), cpu_secs(Some(pid)));
        assert!(up.finalized);
        println!(
            "upload {} MiB over loopback: {:.0} MB/s sending segments (node verifies every \
             proof, fsyncs and re-hashes before finalizing{}); {:.0} MB/s including the \
             client's hashing pass ({:.2} s hash + {:.2} s send)",
            size >> 20,
            mbps(size, send_s),
            if std::env::var("LICEN_BENCH_FULL_REHASH").is_ok() {
                ", --full-rehash"
            } else {
                ""
            },
            mbps(size, hash_s + send_s),
            hash_s,
            send_s
        );
        println!(
            "  upload CPU: client {:.2} s, node {:.2} s ({:.0} MB/s if both had 2 idle cores)",
            c1 - c0,
            n1 - n0,
            mbps(size, ((c1 - c0) + (n1 - n0)) / 2.0)
        );

        let t = Instant::now();
        let (c0, n0) = (cpu_secs(None), cpu_secs(Some(pid)));
        let mut sink = tokio::io::sink();
        client
            .download(up.root, &mut sink, DownloadOptions::default(), None)
            .await
            .unwrap();
        let dl_s = t.elapsed().as_secs_f64();
        let (c1, n1) = (cpu_secs(None), cpu_secs(Some(pid)));
        let out = dir.path().join("out.bin");
        let t = Instant::now();
        client
            .download_to_path(up.root, &out, DownloadOptions::default(), None)
            .await
            .unwrap();
        let dlf_s = t.elapsed().as_secs_f64();
        println!(
            "download {} MiB over loopback, every segment proof verified: {:.0} MB/s to memory \
             sink | {:.0} MB/s to a file (fsynced)",
            size >> 20,
            mbps(size, dl_s),
            mbps(size, dlf_s)
        );
        println!(
            "  download CPU (to sink): client {:.2} s, node {:.2} s ({:.0} MB/s if both had 2 idle cores)",
            c1 - c0,
            n1 - n0,
            mbps(size, ((c1 - c0) + (n1 - n0)) / 2.0)
        );
        let back = FileTree::from_reader(std::fs::File::open(&out).unwrap()).unwrap();
        assert_eq!(back.root(), up.root);
        assert_eq!(std::fs::metadata(&out).unwrap().len(), size);
    });
    let _ = child.kill();
    let _ = child.wait();
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let mb: usize = std::env::var("LICEN_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if bench { 1024 } else { 4 });
    println!(
        "licen-storage bench (keccak backend: {})",
        merkle::keccak_backend()
    );
    println!("load average: {}", load_average());
    let limits = keccak_backends(if bench { 64 } else { 1 });
    root_throughput(if bench { 256 } else { 4 }, &limits);
    println!("load average: {}", load_average());
    // `cargo bench -p licen-storage --bench storage -- root`: the hashing figures only.
    if !std::env::args().skip(1).any(|a| a == "root") {
        transfer(mb);
    }
}
