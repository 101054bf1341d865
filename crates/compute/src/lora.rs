//! The `lora` trainer: real LoRA fine-tuning ([`licen_lora`]) behind the [`Trainer`] trait, and
//! [`TrainerArgs`], the command-line choice of trainer shared by `licen-compute-node` and
//! `licen compute-node`.
//!
//! Owns the result package: an uncompressed tar (`application/x-tar`) of
//! `adapter_config.json`, `adapter_model.safetensors` (PEFT) and `training_report.json`, with
//! fixed mtimes/owners so equal adapters give equal bytes; the node seals it to the researcher
//! like every result. The model folder is opened (and refused if unusable) when the trainer is
//! built, i.e. when the node starts, never when a job arrives.
//! Must never: write the adapter or the dataset outside the node's work dir; put record content
//! into metrics, the report or errors.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use licen_lora::peft::{
    ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, adapter_config_json, adapter_safetensors,
};
use licen_lora::{Hooks, LoraConfig, ModelFolder, TrainConfig};

use crate::canonical::{HexBytes, to_canonical_json};
use crate::node::TrainerFactory;
use crate::trainer::{
    Progress, SimulatedTrainer, TrainError, Trainer, TrainerConfig, TrainingOutput,
};

/// Media type of the lora trainer's result (a tar of the PEFT adapter and the report).
pub const ADAPTER_TAR_MEDIA_TYPE: &str = "application/x-tar";
/// File name of the training report inside the result tar.
pub const TRAINING_REPORT_FILE: &str = "training_report.json";

/// Real LoRA training on a local Llama-architecture model folder.
#[derive(Clone, Debug)]
pub struct LoraTrainer {
    folder: Arc<ModelFolder>,
    config: TrainConfig,
    time_budget: Option<Duration>,
}

impl LoraTrainer {
    /// The trainer's name in its config, reports and manifests.
    pub const NAME: &'static str = "lora";

    /// Opens and checks the model folder `dir` (on GPU 0 with the `cuda` feature when one is
    /// usable, else the CPU) and validates `config`.
    ///
    /// # Errors
    /// [`licen_lora::Error`] naming the folder and what is wrong with it.
    pub fn open(
        dir: &Path,
        model_name: Option<String>,
        config: TrainConfig,
        time_budget: Option<Duration>,
    ) -> licen_lora::Result<Self> {
        config.validate()?;
        let folder = ModelFolder::open(dir, model_name, &candle_device())?;
        Ok(LoraTrainer {
            folder: Arc::new(folder),
            config,
            time_budget,
        })
    }

    /// A factory handing every job a trainer that shares the loaded model.
    #[must_use]
    pub fn factory(self) -> TrainerFactory {
        Arc::new(move || Box::new(self.clone()))
    }
}

/// The first CUDA device when built with the `cuda` feature and one is usable, else the CPU
/// (with a warning saying why, so a GPU node silently training on its CPU shows in the log).
fn candle_device() -> candle_core::Device {
    match candle_core::Device::cuda_if_available(0) {
        Ok(device) => device,
        Err(error) => {
            tracing::warn!(%error, "CUDA device 0 is not usable: the LoRA trainer runs on the CPU");
            candle_core::Device::Cpu
        }
    }
}

fn tar_entry(builder: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) -> std::io::Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, name, data)
}

/// Packs the result files into an uncompressed tar.
fn package(files: &[(&str, &[u8])]) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in files {
        tar_entry(&mut builder, name, data)?;
    }
    builder.into_inner()
}

fn loss_string(loss: Option<f64>) -> serde_json::Value {
    loss.map_or(serde_json::Value::Null, |l| {
        serde_json::Value::String(format!("{l:.6}"))
    })
}

impl Trainer for LoraTrainer {
    fn config(&self) -> TrainerConfig {
        let c = &self.config;
        TrainerConfig {
            name: Self::NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            produces_weights: true,
            params: serde_json::json!({
                "model": {
                    "name": self.folder.name(),
                    "sha256": HexBytes(self.folder.sha256()).to_string(),
                    "architecture": "LlamaForCausalLM",
                    "parameters": self.folder.model().parameter_count(),
                },
                "lora": {
                    "r": c.lora.rank,
                    "alpha": c.lora.alpha.to_string(),
                    "dropout": c.lora.dropout.to_string(),
                    "target_modules": c.lora.target_modules,
                },
                "optimizer": "adamw",
                "learning_rate": c.learning_rate.to_string(),
                "weight_decay": c.weight_decay.to_string(),
                "schedule": "linear warm-up then cosine to 0",
                "warmup_ratio": c.warmup_ratio.to_string(),
                "batch_size": c.batch_size,
                "gradient_accumulation": c.gradient_accumulation,
                "max_seq_len": c.max_seq_len,
                "eval_fraction": c.eval_fraction.to_string(),
                "seed": c.seed,
                "time_budget_s": self.time_budget.map(|d| d.as_secs()),
                "device": if self.folder.model().device().is_cpu() { "cpu" } else { "cuda" },
                "dtype": "f32",
                "result": "tar: adapter_config.json, adapter_model.safetensors (PEFT), training_report.json",
            }),
        }
    }

    fn train(
        &mut self,
        dataset: &Path,
        epochs: u16,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<TrainingOutput, TrainError> {
        let started = Instant::now();
        let file = std::fs::File::open(dataset)?;
        let bytes_total = file.metadata()?.len();
        let deadline = self.time_budget.map(|b| started + b);
        let should_stop = || deadline.is_some_and(|d| Instant::now() >= d);
        let mut report_progress = |p: licen_lora::TrainProgress| {
            progress(Progress {
                epoch: p.epoch,
                epochs: p.epochs,
                records_done: p.examples_done,
                bytes_done: bytes_total,
                bytes_total,
            });
        };
        let outcome = licen_lora::train(
            &self.folder,
            BufReader::with_capacity(1 << 20, file),
            epochs,
            &self.config,
            &mut Hooks {
                progress: &mut report_progress,
                should_stop: &should_stop,
            },
        )
        .map_err(|e| match e {
            licen_lora::Error::NoUsableRecords(_) => TrainError::InvalidDataset(e.to_string()),
            licen_lora::Error::Io(io) => TrainError::Io(io),
            other => TrainError::Failed(other.to_string()),
        })?;
        let r = &outcome.report;
        let report = serde_json::json!({
            "kind": "licen-training-report",
            "version": 1,
            "simulated": false,
            "produces_weights": true,
            "trainer": self.config(),
            "report": r,
        });
        let adapter_config =
            serde_json::to_vec_pretty(&adapter_config_json(&outcome.adapter, self.folder.name()))
                .map_err(|e| TrainError::Failed(e.to_string()))?;
        let weights =
            adapter_safetensors(&outcome.adapter).map_err(|e| TrainError::Failed(e.to_string()))?;
        let report_bytes = to_canonical_json(&report);
        let result = package(&[
            (ADAPTER_CONFIG_FILE, &adapter_config),
            (ADAPTER_WEIGHTS_FILE, &weights),
            (TRAINING_REPORT_FILE, &report_bytes),
        ])?;
        let last_eval = r.epochs.last().and_then(|e| e.eval_loss);
        let metrics = serde_json::json!({
            "trainer": Self::NAME,
            "simulated": false,
            "model_sha256": HexBytes(self.folder.sha256()).to_string(),
            "records": r.dataset.lines,
            "usable_records": r.dataset.usable,
            "truncated_records": r.dataset.truncated,
            "skipped_records": r.dataset.skipped_malformed + r.dataset.skipped_empty + r.dataset.skipped_no_target,
            "train_examples": r.train_examples,
            "eval_examples": r.eval_examples,
            "tokens_seen": r.tokens_seen,
            "trained_tokens": r.trained_tokens,
            "epochs_run": r.epochs_completed,
            "stopped_early": r.stopped_early,
            "base_eval_loss": loss_string(r.base_eval_loss),
            "eval_loss": loss_string(last_eval),
            "duration_ms": r.wall_time_ms,
        });
        Ok(TrainingOutput {
            actual_epochs: outcome.completed_epochs(),
            metrics,
            result,
            result_media_type: ADAPTER_TAR_MEDIA_TYPE.into(),
        })
    }
}

/// Which trainer a node runs, from the command line (shared by both node binaries).
#[derive(Clone, Debug, clap::Args)]
pub struct TrainerArgs {
    /// `simulated` (reads and counts, no weights) or `lora` (real LoRA training; needs --model).
    #[arg(long, env = "LICEN_TRAINER", default_value = "simulated")]
    pub trainer: String,
    /// Hugging Face Llama model folder (config.json, *.safetensors, tokenizer.json) for `lora`.
    #[arg(long, env = "LICEN_MODEL_DIR")]
    pub model: Option<PathBuf>,
    /// Model id written into the adapter's base_model_name_or_path (default: folder name).
    #[arg(long, env = "LICEN_MODEL_NAME")]
    pub model_name: Option<String>,
    /// LoRA rank.
    #[arg(long, default_value_t = 8)]
    pub lora_rank: usize,
    /// LoRA alpha.
    #[arg(long, default_value_t = 16.0)]
    pub lora_alpha: f64,
    /// LoRA dropout.
    #[arg(long, default_value_t = 0.05)]
    pub lora_dropout: f64,
    /// LoRA target modules, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
    )]
    pub lora_targets: Vec<String>,
    /// Peak learning rate.
    #[arg(long, default_value_t = 2e-4)]
    pub learning_rate: f64,
    /// Records per micro-batch.
    #[arg(long, default_value_t = 4)]
    pub batch_size: usize,
    /// Micro-batches per optimiser step.
    #[arg(long, default_value_t = 1)]
    pub grad_accum: usize,
    /// Longer records are truncated (and counted).
    #[arg(long, default_value_t = 512)]
    pub max_seq_len: usize,
    /// Seed of split, shuffles, init and dropout.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Stop a job after this many seconds; only completed epochs are delivered and paid.
    #[arg(long)]
    pub max_train_seconds: Option<u64>,
}

impl TrainerArgs {
    /// The training hyper-parameters these arguments name.
    #[must_use]
    pub fn train_config(&self) -> TrainConfig {
        TrainConfig {
            lora: LoraConfig {
                rank: self.lora_rank,
                alpha: self.lora_alpha,
                dropout: self.lora_dropout,
                target_modules: self.lora_targets.clone(),
            },
            learning_rate: self.learning_rate,
            batch_size: self.batch_size,
            gradient_accumulation: self.grad_accum,
            max_seq_len: self.max_seq_len,
            seed: self.seed,
            ..TrainConfig::default()
        }
    }

    /// The trainer factory, opening (and checking) the model folder now.
    ///
    /// # Errors
    /// A sentence naming the bad argument or model folder.
    pub fn factory(&self) -> Result<TrainerFactory, String> {
        match self.trainer.as_str() {
            SimulatedTrainer::NAME => {
                if self.model.is_some() {
                    return Err("--model is only used by --trainer lora".into());
                }
                Ok(Arc::new(|| Box::new(SimulatedTrainer::new())))
            }
            LoraTrainer::NAME => {
                let dir = self.model.as_ref().ok_or(
                    "--trainer lora needs --model DIR: a Hugging Face Llama model folder (config.json, *.safetensors, tokenizer.json)",
                )?;
                let trainer = LoraTrainer::open(
                    dir,
                    self.model_name.clone(),
                    self.train_config(),
                    self.max_train_seconds.map(Duration::from_secs),
                )
                .map_err(|e| e.to_string())?;
                Ok(trainer.factory())
            }
            other => Err(format!(
                "unknown trainer {other:?}: expected \"simulated\" or \"lora\""
            )),
        }
    }
}
