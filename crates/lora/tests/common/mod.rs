//! Helpers shared by the trainer's end-to-end tests (CPU and CUDA): the tiny fixture model
//! folder on a device, a learnable dataset, a fast config and a run without hooks.

#![allow(dead_code, unreachable_pub)]

use std::io::Cursor;

use candle_core::Device;
use licen_lora::{Hooks, ModelFolder, TrainConfig, TrainOutcome, fixture, train};

/// The tiny fixture model (seed 7) opened on `device`.
pub fn tiny_folder_on(device: &Device) -> (tempfile::TempDir, ModelFolder) {
    let dir = tempfile::tempdir().unwrap();
    fixture::write_model(dir.path(), &fixture::tiny_config(), 7).unwrap();
    let folder = ModelFolder::open(dir.path(), Some("licen/tiny-llama".into()), device).unwrap();
    (dir, folder)
}

/// The tiny fixture model on the CPU.
pub fn tiny_folder() -> (tempfile::TempDir, ModelFolder) {
    tiny_folder_on(&Device::Cpu)
}

/// A learnable prompt/completion dataset: counting sequences.
pub fn counting_dataset(n: usize) -> String {
    (0..n)
        .map(|i| {
            let start = i % 7;
            let completion: Vec<String> = (start..start + 6).map(|d| d.to_string()).collect();
            serde_json::json!({"prompt": format!("count from {start}:"), "completion": format!(" {}", completion.join(" "))})
                .to_string()
                + "\n"
        })
        .collect()
}

/// A short, fast-learning configuration for the fixture model.
pub fn fast_config() -> TrainConfig {
    TrainConfig {
        learning_rate: 1e-2,
        batch_size: 8,
        eval_fraction: 0.2,
        max_seq_len: 64,
        ..TrainConfig::default()
    }
}

/// Trains without progress reporting or stop requests.
pub fn run(
    folder: &ModelFolder,
    data: &str,
    epochs: u16,
    config: &TrainConfig,
) -> licen_lora::Result<TrainOutcome> {
    let mut progress = |_| {};
    let never = || false;
    train(
        folder,
        Cursor::new(data.as_bytes()),
        epochs,
        config,
        &mut Hooks {
            progress: &mut progress,
            should_stop: &never,
        },
    )
}
