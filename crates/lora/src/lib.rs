//! `licen-lora`: LoRA fine-tuning of a Llama-architecture causal LM with candle, delivering a
//! PEFT adapter.
//!
//! Owns:
//! - [`folder`] — opening and checking a Hugging Face model folder (refused at node start, not
//!   when a job arrives) and the model's identity hash;
//! - [`config`] — the Llama config and the LoRA/training hyper-parameters;
//! - [`model`] — the forward pass with LoRA, from differentiable ops only (candle 0.11.1's fused
//!   softmax/rms_norm/rope stop gradients), and a frozen-weight linear that skips the weight
//!   gradient;
//! - [`engine`] — the CPU training step written out by hand (fused kernels, LoRA folded into
//!   the frozen weights, no base-weight gradients), tested against the composed model;
//! - [`data`] — JSONL records → tokens with prompt masking, truncation and skip counts;
//! - [`train`] — AdamW, warm-up + cosine, gradient accumulation, held-out eval, early stop;
//! - [`peft`] — `adapter_config.json` + `adapter_model.safetensors` bytes;
//! - [`fixture`] — deterministic tiny model folders for tests and benchmarks.
//!
//! Must never: download anything; write the dataset or the adapter to disk (it returns bytes);
//! put record content into errors, logs or the report.

pub mod config;
pub mod data;
pub mod engine;
pub mod fixture;
pub mod folder;
pub mod model;
pub mod peft;
pub mod rng;
pub mod tokenizer;
pub mod train;

pub use config::{LlamaConfig, LoraConfig, TrainConfig};
pub use folder::ModelFolder;
pub use train::{Hooks, TrainOutcome, TrainProgress, TrainingReport, train};

/// Why loading a model or training failed. Messages never contain dataset content.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model folder is missing a file or its files do not fit together.
    #[error("model folder refused: {0}")]
    ModelFolder(String),
    /// The model is not a supported architecture.
    #[error("unsupported model: {0}")]
    UnsupportedModel(String),
    /// A hyper-parameter is out of range.
    #[error("invalid training config: {0}")]
    InvalidConfig(String),
    /// The tokenizer failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// An adapter does not fit the model.
    #[error("adapter: {0}")]
    Adapter(String),
    /// No record of the dataset can be trained on.
    #[error(
        "the dataset has no usable record ({} non-blank lines: {} malformed, {} empty, {} without a trainable token): expected JSONL of {{\"text\"}}, {{\"prompt\",\"completion\"}} or {{\"messages\"}} records",
        .0.lines, .0.skipped_malformed, .0.skipped_empty, .0.skipped_no_target
    )]
    NoUsableRecords(data::DatasetStats),
    /// A stop request came before the first epoch completed.
    #[error("training was stopped before the first epoch completed")]
    Stopped,
    /// A tensor operation failed.
    #[error("tensor operation failed: {0}")]
    Tensor(#[from] candle_core::Error),
    /// Reading a file failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// JSON encoding failed.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;
