//! LoRA training throughput on the ~10M-parameter benchmark model (r = 8, all seven target
//! modules, batches of 8 × 128 tokens), in tokens per second, plus the process's peak RSS.
//!
//! `cargo bench -p licen-lora --bench train` (target: ≥ 1,500 tokens/s on the 2-core CI CPU).

use std::io::Cursor;
use std::time::{Duration, Instant};

use candle_core::Device;
use criterion::{Criterion, Throughput, criterion_main};
use licen_lora::{Hooks, LoraConfig, ModelFolder, TrainConfig, fixture, train};

const RECORDS: usize = 32;

fn dataset() -> String {
    (0..RECORDS)
        .map(|i| {
            // 127 bytes of text → 129 tokens with <s> and </s> → 128 positions per sequence.
            let text: String = format!("record {i:03} ")
                .chars()
                .chain(
                    "the quick brown fox jumps over the lazy dog "
                        .chars()
                        .cycle(),
                )
                .take(127)
                .collect();
            serde_json::json!({ "text": text }).to_string() + "\n"
        })
        .collect()
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    fixture::write_model(dir.path(), &fixture::bench_config(), 1).unwrap();
    let folder = ModelFolder::open(dir.path(), None, &Device::Cpu).unwrap();
    let data = dataset();
    let config = TrainConfig {
        lora: LoraConfig {
            rank: 8,
            dropout: 0.0,
            ..LoraConfig::default()
        },
        batch_size: 8,
        max_seq_len: 129,
        eval_fraction: 0.0,
        learning_rate: 1e-3,
        ..TrainConfig::default()
    };
    let run = || {
        let mut progress = |_| {};
        let never = || false;
        train(
            &folder,
            Cursor::new(data.as_bytes()),
            1,
            &config,
            &mut Hooks {
                progress: &mut progress,
                should_stop: &never,
            },
        )
        .unwrap()
    };
    let tokens = run().report.tokens_seen;
    eprintln!(
        "benchmark model: {} base parameters, {} LoRA parameters, {tokens} tokens per iteration",
        folder.model().parameter_count(),
        run().report.trainable_parameters
    );
    let mut group = c.benchmark_group("lora");
    group.throughput(Throughput::Elements(tokens));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(30));
    group.bench_function("train_10m_r8_tokens", |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            for _ in 0..iters {
                std::hint::black_box(run());
            }
            started.elapsed()
        });
    });
    group.finish();
    if let Some(kib) = peak_rss_kib() {
        eprintln!("peak RSS: {:.1} MiB", kib as f64 / 1024.0);
    }
}

// The macro generates an undocumented `pub fn benches`.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench);
}
use group::benches;
criterion_main!(benches);
