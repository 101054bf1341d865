//! The [`Trainer`] trait every training backend implements, and [`SimulatedTrainer`].
//!
//! Owns the trainer contract: a trainer is handed the path of the decrypted JSONL dataset
//! inside the node's per-job work dir and the requested epoch count, reports [`Progress`], and
//! returns a [`TrainingOutput`]: the bytes the node seals to the researcher plus public metrics
//! for the result manifest. Its [`TrainerConfig`] is part of the node's attested measurement.
//! A real LoRA trainer plugs in by implementing [`Trainer`] and being handed to
//! [`crate::node::NodeConfig::trainer`].
//!
//! [`SimulatedTrainer`] is the seed's demo mode, honestly labelled: it trains **no model and
//! produces no weights**. It really reads and validates every record of the dataset in every
//! epoch and counts whitespace-separated tokens, and its result is a training report of those
//! real statistics.
//!
//! Must never: write the dataset or any part of it anywhere (results carry statistics only);
//! put a line's content in an error (errors name the line number and what was expected).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::canonical::to_canonical_json;

/// What a trainer is and how it is configured: hashed into the node's measurement, so a
/// dataset owner can allow exactly this trainer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainerConfig {
    /// Trainer name (`"simulated"` for [`SimulatedTrainer`]).
    pub name: String,
    /// Trainer version.
    pub version: String,
    /// Whether the result contains trained weights. `false` for [`SimulatedTrainer`].
    pub produces_weights: bool,
    /// Trainer-specific parameters (hyper-parameters for a real trainer).
    pub params: serde_json::Value,
}

impl TrainerConfig {
    /// The canonical JSON of this config (what the measurement hashes).
    #[must_use]
    pub fn canonical_json(&self) -> Vec<u8> {
        to_canonical_json(self)
    }
}

/// Training progress, reported while [`Trainer::train`] runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// The epoch being run, from 1; 0 before the first.
    pub epoch: u16,
    /// Epochs requested.
    pub epochs: u16,
    /// Records processed in the current epoch.
    pub records_done: u64,
    /// Dataset bytes processed in the current epoch.
    pub bytes_done: u64,
    /// Dataset size in bytes.
    pub bytes_total: u64,
}

/// What a finished training run returns.
#[derive(Clone, Debug)]
pub struct TrainingOutput {
    /// Epochs actually completed (what the researcher pays for).
    pub actual_epochs: u16,
    /// Public metrics for the result manifest: counts and durations, never data. Use integers
    /// and strings only, so the canonical encoding is unambiguous.
    pub metrics: serde_json::Value,
    /// The bytes sealed to the researcher (the adapter for a real trainer; the training report
    /// for [`SimulatedTrainer`]).
    pub result: Vec<u8>,
    /// Media type of `result`.
    pub result_media_type: String,
}

/// Why training failed. Messages never contain dataset content.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The dataset is not JSONL of one supported schema; the message names the line.
    #[error("dataset is not valid JSONL: {0}")]
    InvalidDataset(String),
    /// The decrypted dataset could not be read.
    #[error("reading the decrypted dataset failed: {0}")]
    Io(#[from] std::io::Error),
    /// Anything else the trainer reports.
    #[error("trainer failed: {0}")]
    Failed(String),
}

/// A training backend. Runs synchronously on a blocking thread of the node.
pub trait Trainer: Send {
    /// This trainer's configuration (part of the attested measurement).
    fn config(&self) -> TrainerConfig;

    /// Trains on the decrypted JSONL at `dataset` (inside the node's work dir) for `epochs`
    /// epochs, calling `progress` as it goes.
    ///
    /// # Errors
    /// [`TrainError`]; [`TrainError::InvalidDataset`] must name the line, never its content.
    fn train(
        &mut self,
        dataset: &Path,
        epochs: u16,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<TrainingOutput, TrainError>;
}

/// The record shapes a LICEN dataset may use (one per dataset).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schema {
    /// `{"text": string}`
    Text,
    /// `{"prompt": string, "completion": string}`
    PromptCompletion,
    /// `{"messages": [{"role": string, "content": string}, …]}` (at least one message)
    Messages,
}

fn whitespace_tokens(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}

/// Checks one JSONL line (without its newline) and counts its whitespace tokens.
/// `Ok(None)` for a blank line (skipped). `number` is the 1-based line number used in errors.
///
/// # Errors
/// A sentence naming line `number` and what was expected, never the line's content.
pub fn check_record(line: &[u8], number: u64) -> Result<Option<(Schema, u64)>, String> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: serde_json::Value = serde_json::from_slice(line).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Syntax => "a syntax error",
            serde_json::error::Category::Eof => "an unexpected end",
            serde_json::error::Category::Data => "invalid data",
            serde_json::error::Category::Io => "a read error",
        };
        format!(
            "line {number} is not valid JSON ({what} at column {}): each line must be one JSON object",
            e.column()
        )
    })?;
    let not_example = || {
        format!(
            "line {number} is not a training example: expected {{\"text\": string}}, \
             {{\"prompt\": string, \"completion\": string}} or \
             {{\"messages\": [{{\"role\": string, \"content\": string}}, …]}}"
        )
    };
    let object = value.as_object().ok_or_else(not_example)?;
    let text = |key: &str| object.get(key).and_then(serde_json::Value::as_str);
    if let Some(t) = text("text") {
        return Ok(Some((Schema::Text, whitespace_tokens(t))));
    }
    if let (Some(p), Some(c)) = (text("prompt"), text("completion")) {
        return Ok(Some((
            Schema::PromptCompletion,
            whitespace_tokens(p) + whitespace_tokens(c),
        )));
    }
    let messages = object
        .get("messages")
        .and_then(serde_json::Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or_else(not_example)?;
    let mut tokens = 0;
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(serde_json::Value::as_str);
        let content = m.get("content").and_then(serde_json::Value::as_str);
        match (role, content) {
            (Some(_), Some(c)) => tokens += whitespace_tokens(c),
            _ => {
                return Err(format!(
                    "line {number}, message {}: expected {{\"role\": string, \"content\": string}}",
                    i + 1
                ));
            }
        }
    }
    Ok(Some((Schema::Messages, tokens)))
}

/// Statistics of one pass over the dataset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochStats {
    /// Epoch number, from 1.
    pub epoch: u16,
    /// Records (non-blank lines) read.
    pub records: u64,
    /// Whitespace-separated tokens in the text fields.
    pub tokens: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Wall time of the pass, milliseconds.
    pub duration_ms: u64,
}

/// Reads and validates every record of `dataset` once, reporting progress every 1024 records.
///
/// # Errors
/// [`TrainError::InvalidDataset`] naming the first bad line, [`TrainError::Io`].
pub fn scan_dataset(
    dataset: &Path,
    epoch: u16,
    epochs: u16,
    progress: &mut dyn FnMut(Progress),
) -> Result<(Schema, EpochStats), TrainError> {
    let started = Instant::now();
    let file = std::fs::File::open(dataset)?;
    let bytes_total = file.metadata()?.len();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = zeroize::Zeroizing::new(Vec::new());
    let mut schema: Option<Schema> = None;
    let mut stats = EpochStats {
        epoch,
        ..EpochStats::default()
    };
    let mut number = 0u64;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        number += 1;
        stats.bytes += n as u64;
        let body = line.strip_suffix(b"\n").unwrap_or(&line);
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        let Some((found, tokens)) =
            check_record(body, number).map_err(TrainError::InvalidDataset)?
        else {
            continue;
        };
        match schema {
            None => schema = Some(found),
            Some(first) if first != found => {
                return Err(TrainError::InvalidDataset(format!(
                    "line {number} is a {} example but earlier lines are {}: a dataset uses one schema",
                    schema_name(found),
                    schema_name(first)
                )));
            }
            Some(_) => {}
        }
        stats.records += 1;
        stats.tokens += tokens;
        if stats.records.is_multiple_of(1024) {
            progress(Progress {
                epoch,
                epochs,
                records_done: stats.records,
                bytes_done: stats.bytes,
                bytes_total,
            });
        }
    }
    let schema = schema.ok_or_else(|| {
        TrainError::InvalidDataset(
            "the dataset has no records: expected at least one JSON line".into(),
        )
    })?;
    stats.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    progress(Progress {
        epoch,
        epochs,
        records_done: stats.records,
        bytes_done: stats.bytes,
        bytes_total,
    });
    Ok((schema, stats))
}

/// The snake_case name of a schema (as in manifests and reports).
#[must_use]
pub fn schema_name(schema: Schema) -> &'static str {
    match schema {
        Schema::Text => "text",
        Schema::PromptCompletion => "prompt_completion",
        Schema::Messages => "messages",
    }
}

/// Media type of the simulated trainer's result (a JSON training report).
pub const TRAINING_REPORT_MEDIA_TYPE: &str = "application/vnd.licen.training-report+json";

/// The seed's demo mode, honestly labelled: **SIMULATED — trains no model, produces no
/// weights.** Each epoch it reads and validates every record and counts whitespace tokens; its
/// result is a JSON training report of those real statistics (schema, records, tokens per
/// epoch, bytes, epochs run, durations).
#[derive(Clone, Debug, Default)]
pub struct SimulatedTrainer;

impl SimulatedTrainer {
    /// The trainer's name in its config, reports and manifests.
    pub const NAME: &'static str = "simulated";

    /// A simulated trainer.
    #[must_use]
    pub fn new() -> Self {
        SimulatedTrainer
    }
}

impl Trainer for SimulatedTrainer {
    fn config(&self) -> TrainerConfig {
        TrainerConfig {
            name: Self::NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            produces_weights: false,
            params: serde_json::json!({
                "tokenizer": "whitespace",
                "reads_every_record_each_epoch": true,
                "note": "SIMULATED trainer: trains no model and produces no weights; the result is a report of real dataset statistics",
            }),
        }
    }

    fn train(
        &mut self,
        dataset: &Path,
        epochs: u16,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<TrainingOutput, TrainError> {
        if epochs == 0 {
            return Err(TrainError::Failed("epochs must be at least 1".into()));
        }
        let started = Instant::now();
        let mut per_epoch = Vec::with_capacity(usize::from(epochs));
        let mut schema = None;
        for epoch in 1..=epochs {
            let (s, stats) = scan_dataset(dataset, epoch, epochs, progress)?;
            if let Some(first) = per_epoch.first().map(|f: &EpochStats| f.records)
                && first != stats.records
            {
                return Err(TrainError::Failed(format!(
                    "the dataset changed during training: epoch 1 read {first} records, epoch {epoch} read {}",
                    stats.records
                )));
            }
            schema = Some(s);
            per_epoch.push(stats);
        }
        let first = per_epoch[0];
        let schema = schema_name(schema.expect("epochs >= 1 ran"));
        let total_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let config = self.config();
        let report = serde_json::json!({
            "kind": "licen-training-report",
            "version": 1,
            "simulated": true,
            "produces_weights": false,
            "notice": "SIMULATED training: no model was trained and this result contains no weights. Every record was read and validated in every epoch; the statistics below are real.",
            "trainer": config,
            "dataset": {
                "schema": schema,
                "records": first.records,
                "bytes": first.bytes,
                "tokens_per_epoch": first.tokens,
                "tokenizer": "whitespace",
            },
            "epochs_requested": epochs,
            "epochs_run": per_epoch.len(),
            "epochs": per_epoch,
            "duration_ms": total_ms,
        });
        let metrics = serde_json::json!({
            "trainer": Self::NAME,
            "simulated": true,
            "schema": schema,
            "records": first.records,
            "bytes": first.bytes,
            "tokens_per_epoch": first.tokens,
            "tokens_total": first.tokens * u64::from(epochs),
            "epochs_run": epochs,
            "duration_ms": total_ms,
        });
        Ok(TrainingOutput {
            actual_epochs: epochs,
            metrics,
            result: to_canonical_json(&report),
            result_media_type: TRAINING_REPORT_MEDIA_TYPE.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(data: &str, epochs: u16) -> Result<(TrainingOutput, Vec<Progress>), TrainError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.jsonl");
        std::fs::write(&path, data).unwrap();
        let mut seen = Vec::new();
        let out = SimulatedTrainer::new().train(&path, epochs, &mut |p| seen.push(p))?;
        Ok((out, seen))
    }

    #[test]
    fn counts_records_and_tokens_every_epoch() {
        let data = "{\"prompt\":\"a b\",\"completion\":\"c d e\"}\n\n{\"prompt\":\"x\",\"completion\":\"y\"}\n";
        let (out, seen) = run(data, 3).unwrap();
        assert_eq!(out.actual_epochs, 3);
        assert_eq!(out.metrics["records"], 2);
        assert_eq!(out.metrics["tokens_per_epoch"], 7);
        assert_eq!(out.metrics["tokens_total"], 21);
        assert_eq!(out.metrics["schema"], "prompt_completion");
        let report: serde_json::Value = serde_json::from_slice(&out.result).unwrap();
        assert_eq!(report["epochs"].as_array().unwrap().len(), 3);
        assert_eq!(report["epochs"][2]["tokens"], 7);
        assert_eq!(report["dataset"]["bytes"], data.len());
        assert_eq!(report["produces_weights"], false);
        assert_eq!(seen.iter().map(|p| p.epoch).collect::<Vec<_>>(), [1, 2, 3]);
    }

    #[test]
    fn schemas_are_recognised() {
        assert_eq!(
            check_record(br#"{"text":"a b c"}"#, 1).unwrap(),
            Some((Schema::Text, 3))
        );
        assert_eq!(
            check_record(br#"{"messages":[{"role":"user","content":"hi there"},{"role":"assistant","content":"ok"}]}"#, 1).unwrap(),
            Some((Schema::Messages, 3))
        );
        assert_eq!(check_record(b"  ", 1).unwrap(), None);
    }

    #[test]
    fn errors_name_the_line_never_its_content() {
        let secret = "TOPSECRET";
        for (data, line) in [
            (
                format!("{{\"text\":\"ok\"}}\n{secret} not json\n"),
                "line 2",
            ),
            (
                format!("{{\"text\":\"ok\"}}\n\n{{\"foo\":\"{secret}\"}}\n"),
                "line 3",
            ),
            (
                format!(
                    "{{\"text\":\"{secret}\"}}\n{{\"prompt\":\"{secret}\",\"completion\":\"x\"}}\n"
                ),
                "line 2",
            ),
            (
                format!("{{\"messages\":[{{\"role\":\"u\",\"content\":5,\"x\":\"{secret}\"}}]}}\n"),
                "line 1",
            ),
            (format!("[\"{secret}\"]\n"), "line 1"),
            (
                "{\"text\":\"\\ud800 unpaired\"} trailing\n".to_string(),
                "line 1",
            ),
        ] {
            let err = run(&data, 1).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, TrainError::InvalidDataset(_)), "{msg}");
            assert!(msg.contains(line), "{msg}");
            assert!(!msg.contains(secret), "{msg}");
        }
        assert!(
            run("\n\n", 1)
                .unwrap_err()
                .to_string()
                .contains("no records")
        );
    }
}
