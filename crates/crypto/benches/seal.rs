//! Sealed-stream throughput: seal and open 64 MiB in memory with 64 KiB and 1 MiB segments,
//! against a bare AES-256-GCM baseline over the same segments. Criterion reports GB/s
//! (decimal) as `thrpt`.
//!
//! Run: `cargo bench -p licen-crypto --bench seal`.

use std::hint::black_box;
use std::io::{Read, Write};
use std::time::Duration;

use aes_gcm::aead::{AeadInOut, KeyInit};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_main};
use licen_crypto::stream::{self, OpenReader, SealWriter};
use licen_crypto::{NoncePrefix, StreamKey};

const TOTAL: usize = 64 * 1024 * 1024;
const SEGMENTS: [(u32, &str); 2] = [(64 * 1024, "64KiB"), (1024 * 1024, "1MiB")];

fn data() -> Vec<u8> {
    (0..TOTAL)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn bench(c: &mut Criterion) {
    let key = StreamKey::from_bytes([0x5c; 32]);
    let prefix = NoncePrefix::from_bytes([0x11; 7]);
    let plaintext = data();

    let mut group = c.benchmark_group("sealed_stream_64MiB");
    group.throughput(Throughput::BytesDecimal(TOTAL as u64));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));

    for (segment_size, label) in SEGMENTS {
        let capacity = stream::sealed_len(TOTAL as u64, segment_size).unwrap() as usize;
        let mut out = Vec::with_capacity(capacity);
        group.bench_function(BenchmarkId::new("seal", label), |b| {
            b.iter(|| {
                out.clear();
                let mut w = SealWriter::new(&mut out, &key, prefix, segment_size).unwrap();
                w.write_all(black_box(&plaintext)).unwrap();
                w.finish().unwrap();
            });
        });

        let sealed =
            stream::seal_with_segment_size(&key, &prefix, segment_size, &plaintext).unwrap();
        let mut opened = Vec::with_capacity(TOTAL);
        group.bench_function(BenchmarkId::new("open", label), |b| {
            b.iter(|| {
                opened.clear();
                let mut r = OpenReader::new(black_box(sealed.as_slice()), &key).unwrap();
                r.read_to_end(&mut opened).unwrap();
            });
        });
        assert_eq!(opened, plaintext);

        // Baseline: bare AES-256-GCM, in place, over the same segment boundaries.
        let aead = aes_gcm::Aes256Gcm::new(key.as_bytes().into());
        let mut buf = plaintext.clone();
        group.bench_function(BenchmarkId::new("bare_aes256gcm_in_place", label), |b| {
            b.iter(|| {
                for (i, chunk) in buf.chunks_mut(segment_size as usize).enumerate() {
                    let mut nonce = [0u8; 12];
                    nonce[..8].copy_from_slice(&(i as u64).to_be_bytes());
                    let tag = aead
                        .encrypt_inout_detached(&nonce.into(), b"", chunk.into())
                        .unwrap();
                    black_box(tag);
                }
            });
        });
    }
    group.finish();
}

// The macro generates an undocumented `pub fn benches`.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench);
}
use group::benches;
criterion_main!(benches);
