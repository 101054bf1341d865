//! Sealed-stream throughput: seal and open 64 MiB in memory with 64 KiB and 1 MiB segments,
//! next to the bare AES-256-GCM backends over the same segments (the limit the stream can
//! reach). Criterion reports wall-clock GB/s (decimal) as `thrpt`; afterwards a CPU-time pass
//! reports GB per CPU-second of the benchmarking thread (immune to other processes on a shared
//! machine) with the ratios to the 1.5 GB/s-per-core target and to the bare backend.
//!
//! Run: `cargo bench -p licen-crypto --bench seal`.

use std::hint::black_box;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use aes_gcm::aead::{AeadInOut, KeyInit};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_main};
use licen_crypto::stream::{self, AEAD_BACKEND, OpenReader, SealWriter};
use licen_crypto::{NoncePrefix, StreamKey};

const TOTAL: usize = 64 * 1024 * 1024;
const SEGMENTS: [(u32, &str); 2] = [(64 * 1024, "64KiB"), (1024 * 1024, "1MiB")];
/// Issue 3's target for sealing, in GB/s per core.
const SEAL_TARGET_GB_S: f64 = 1.5;

fn data() -> Vec<u8> {
    (0..TOTAL)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

/// The operations measured, each over all of `TOTAL` bytes.
struct Subjects {
    key: StreamKey,
    prefix: NoncePrefix,
    plaintext: Vec<u8>,
}

impl Subjects {
    fn seal(&self, segment_size: u32, out: &mut Vec<u8>) {
        out.clear();
        let mut w = SealWriter::new(&mut *out, &self.key, self.prefix, segment_size).unwrap();
        w.write_all(black_box(&self.plaintext)).unwrap();
        w.finish().unwrap();
    }

    fn open(&self, sealed: &[u8], opened: &mut Vec<u8>) {
        opened.clear();
        let mut r = OpenReader::new(black_box(sealed), &self.key).unwrap();
        r.read_to_end(opened).unwrap();
    }

    /// The native backend alone (ring), in place, over the same segment boundaries.
    fn bare_ring(&self, segment_size: u32, buf: &mut [u8]) {
        use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, self.key.as_bytes()).unwrap());
        for (i, chunk) in buf.chunks_mut(segment_size as usize).enumerate() {
            let mut nonce = [0u8; 12];
            nonce[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let tag = key
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(&[0u8; 36]),
                    chunk,
                )
                .unwrap();
            black_box(tag.as_ref()[0]);
        }
    }

    /// RustCrypto `aes-gcm` (the wasm32 backend, and the native one before), in place.
    fn bare_rustcrypto(&self, segment_size: u32, buf: &mut [u8]) {
        let aead = aes_gcm::Aes256Gcm::new(self.key.as_bytes().into());
        for (i, chunk) in buf.chunks_mut(segment_size as usize).enumerate() {
            let mut nonce = [0u8; 12];
            nonce[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let tag = aead
                .encrypt_inout_detached(&nonce.into(), &[0u8; 36], chunk.into())
                .unwrap();
            black_box(tag);
        }
    }
}

fn bench(c: &mut Criterion) {
    let s = Subjects {
        key: StreamKey::from_bytes([0x5c; 32]),
        prefix: NoncePrefix::from_bytes([0x11; 7]),
        plaintext: data(),
    };
    println!("sealed-stream bench, AES-256-GCM backend: {AEAD_BACKEND}");

    let mut group = c.benchmark_group("sealed_stream_64MiB");
    group.throughput(Throughput::BytesDecimal(TOTAL as u64));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));

    for (segment_size, label) in SEGMENTS {
        let capacity = stream::sealed_len(TOTAL as u64, segment_size).unwrap() as usize;
        let mut out = Vec::with_capacity(capacity);
        group.bench_function(BenchmarkId::new("seal", label), |b| {
            b.iter(|| s.seal(segment_size, &mut out));
        });

        let sealed =
            stream::seal_with_segment_size(&s.key, &s.prefix, segment_size, &s.plaintext).unwrap();
        let mut opened = Vec::with_capacity(TOTAL);
        group.bench_function(BenchmarkId::new("open", label), |b| {
            b.iter(|| s.open(&sealed, &mut opened));
        });
        assert_eq!(opened, s.plaintext);

        let mut buf = s.plaintext.clone();
        group.bench_function(BenchmarkId::new("bare_ring_in_place", label), |b| {
            b.iter(|| s.bare_ring(segment_size, &mut buf));
        });
        group.bench_function(BenchmarkId::new("bare_rustcrypto_in_place", label), |b| {
            b.iter(|| s.bare_rustcrypto(segment_size, &mut buf));
        });
    }
    group.finish();
    cpu_time_summary(&s);
}

/// CPU time of the calling thread in seconds (Linux `/proc/thread-self/schedstat`, in ns).
fn thread_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Runs `op` (over `TOTAL` bytes) for about two seconds; returns (GB per CPU-second, GB/s wall).
fn measure(mut op: impl FnMut()) -> (f64, f64) {
    op(); // warm-up
    let (wall, cpu) = (Instant::now(), thread_cpu_secs());
    let mut rounds = 0u32;
    while wall.elapsed() < Duration::from_secs(2) || rounds < 3 {
        op();
        rounds += 1;
    }
    let bytes = f64::from(rounds) * TOTAL as f64 / 1e9;
    let wall_s = wall.elapsed().as_secs_f64();
    let cpu_s = match (cpu, thread_cpu_secs()) {
        (Some(a), Some(b)) => b - a,
        _ => f64::NAN,
    };
    (bytes / cpu_s, bytes / wall_s)
}

fn cpu_time_summary(s: &Subjects) {
    println!(
        "\nPer CPU-second of the benchmarking thread (load average before: {}):",
        load_average()
    );
    println!(
        "{:<34} {:>12} {:>10} {:>11} {:>10}",
        "measure", "GB/CPU-s", "GB/s wall", "vs 1.5 GB/s", "vs bare"
    );
    for (segment_size, label) in SEGMENTS {
        let sealed =
            stream::seal_with_segment_size(&s.key, &s.prefix, segment_size, &s.plaintext).unwrap();
        let mut out = Vec::with_capacity(sealed.len());
        let mut opened = Vec::with_capacity(TOTAL);
        let mut buf = s.plaintext.clone();
        let bare = measure(|| s.bare_ring(segment_size, &mut buf));
        let mut copy = vec![0u8; TOTAL];
        let rows = [
            ("bare ring AES-256-GCM", bare),
            // What a `Write` adapter adds to in-place AES-GCM: the caller's bytes copied into
            // the segment buffer, and the sealed segment copied into the output.
            (
                "memcpy of the same bytes",
                measure(|| {
                    copy.copy_from_slice(black_box(&s.plaintext));
                    black_box(&mut copy);
                }),
            ),
            (
                "bare RustCrypto aes-gcm",
                measure(|| s.bare_rustcrypto(segment_size, &mut buf)),
            ),
            (
                "seal (SealWriter)",
                measure(|| s.seal(segment_size, &mut out)),
            ),
            (
                "open (OpenReader)",
                measure(|| s.open(&sealed, &mut opened)),
            ),
        ];
        for (name, (cpu, wall)) in rows {
            println!(
                "{:<34} {:>12.2} {:>10.2} {:>10.2}x {:>9.2}x",
                format!("{name}, {label} segments"),
                cpu,
                wall,
                cpu / SEAL_TARGET_GB_S,
                cpu / bare.0
            );
        }
    }
    println!("(load average after: {})", load_average());
}

// The macro generates an undocumented `pub fn benches`.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench);
}
use group::benches;
criterion_main!(benches);
