//! The training loop: split, batches, AdamW with warm-up + cosine schedule, gradient
//! accumulation, per-epoch eval loss, early stop between steps.
//!
//! Owns epoch accounting: [`TrainOutcome::completed_epochs`] counts only epochs that ran to
//! their end; a stop request ends the run after the current optimiser step.
//! Must never: let the report carry record content (losses, counts and timings only).

use std::io::BufRead;
use std::time::Instant;

use candle_core::Tensor;
use serde::Serialize;

use crate::config::TrainConfig;
use crate::data::{DatasetStats, Example, read_examples};
use crate::engine::{Batch, Engine, Gradients};
use crate::folder::ModelFolder;
use crate::model::{Adapter, BaseModel};
use crate::rng::SplitMix64;
use crate::{Error, Result};

/// Progress of a run, reported after every optimiser step and at each epoch end.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct TrainProgress {
    /// Current epoch, from 1.
    pub epoch: u16,
    /// Epochs requested.
    pub epochs: u16,
    /// Optimiser steps done in all.
    pub step: u64,
    /// Optimiser steps of the whole run.
    pub total_steps: u64,
    /// Training examples done in this epoch.
    pub examples_done: u64,
    /// Training examples per epoch.
    pub examples_per_epoch: u64,
}

/// One point of the loss curve.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepLoss {
    /// Optimiser step, from 1.
    pub step: u64,
    /// Epoch of the step.
    pub epoch: u16,
    /// Mean training loss of the step's micro-batches.
    pub loss: f64,
    /// Learning rate used.
    pub learning_rate: f64,
}

/// One epoch's summary.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EpochSummary {
    /// Epoch, from 1.
    pub epoch: u16,
    /// Token-weighted mean training loss.
    pub train_loss: f64,
    /// Held-out loss after the epoch (`None` without an eval split).
    pub eval_loss: Option<f64>,
    /// Wall time, milliseconds.
    pub duration_ms: u64,
}

/// The training report delivered with the adapter.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrainingReport {
    /// What the dataset held (counts).
    pub dataset: DatasetStats,
    /// Examples trained on per epoch.
    pub train_examples: u64,
    /// Examples held out.
    pub eval_examples: u64,
    /// Held-out loss of the base model before training.
    pub base_eval_loss: Option<f64>,
    /// Epochs requested.
    pub epochs_requested: u16,
    /// Epochs completed.
    pub epochs_completed: u16,
    /// Whether a stop request ended the run early.
    pub stopped_early: bool,
    /// Per epoch.
    pub epochs: Vec<EpochSummary>,
    /// Per optimiser step.
    pub loss_curve: Vec<StepLoss>,
    /// Input tokens fed forward (all epochs, training only).
    pub tokens_seen: u64,
    /// Tokens that counted in the loss (all epochs, training only).
    pub trained_tokens: u64,
    /// Trainable LoRA parameters.
    pub trainable_parameters: u64,
    /// Base model parameters (frozen).
    pub base_parameters: u64,
    /// Wall time of the run, milliseconds.
    pub wall_time_ms: u64,
}

/// The result of [`train`].
#[derive(Debug)]
pub struct TrainOutcome {
    /// The trained adapter.
    pub adapter: Adapter,
    /// The report.
    pub report: TrainingReport,
}

impl TrainOutcome {
    /// Epochs completed (what the researcher pays for).
    #[must_use]
    pub fn completed_epochs(&self) -> u16 {
        self.report.epochs_completed
    }
}

/// Hooks a caller gives [`train`].
pub struct Hooks<'a> {
    /// Called after each optimiser step.
    pub progress: &'a mut dyn FnMut(TrainProgress),
    /// Polled before each optimiser step; `true` ends the run (completed epochs are kept).
    pub should_stop: &'a dyn Fn() -> bool,
}

/// Right-padded ids, targets and loss mask of a micro-batch, and the number of counted positions.
fn batch_of(batch: &[&Example]) -> (Batch, u64) {
    let t = batch.iter().map(|e| e.ids.len()).max().unwrap_or(2).max(2) - 1;
    let mut ids = Vec::with_capacity(batch.len() * t);
    let mut targets = Vec::with_capacity(batch.len() * t);
    let mut mask = Vec::with_capacity(batch.len() * t);
    let mut counted = 0u64;
    for e in batch {
        for i in 0..t {
            ids.push(e.ids.get(i).copied().unwrap_or(0));
            let (target, m) = match e.ids.get(i + 1) {
                Some(&next) if e.trained[i + 1] => (next, 1.0f32),
                Some(&next) => (next, 0.0),
                None => (0, 0.0),
            };
            targets.push(target);
            mask.push(m);
            counted += u64::from(m > 0.0);
        }
    }
    let batch = Batch {
        batch: batch.len(),
        seq: t,
        ids,
        targets,
        mask,
    };
    (batch, counted)
}

/// The batch as `(ids, targets, mask)` tensors on the model's device (composed-model path).
fn batch_tensors(model: &BaseModel, batch: &Batch) -> Result<(Tensor, Tensor, Tensor)> {
    let dev = model.device();
    let shape = (batch.batch, batch.seq);
    Ok((
        Tensor::from_slice(&batch.ids, shape, dev)?,
        Tensor::from_slice(&batch.targets, shape, dev)?,
        Tensor::from_slice(&batch.mask, shape, dev)?,
    ))
}

/// Sum over counted positions of the loss of one micro-batch; with `grads`, adds `grad_scale ·`
/// its LoRA gradients. On the CPU the hand-written [`Engine`] runs it; elsewhere candle's
/// autograd on the composed model.
fn micro_batch(
    model: &BaseModel,
    engine: Option<&Engine<'_>>,
    adapter: Option<&Adapter>,
    batch: &Batch,
    dropout: Option<&mut SplitMix64>,
    grads: Option<(&mut Gradients, f32)>,
) -> Result<f64> {
    if let Some(engine) = engine {
        return engine.loss_sum(adapter, batch, dropout, grads);
    }
    let (ids, targets, mask) = batch_tensors(model, batch)?;
    let counted = f64::from(mask.sum_all()?.to_scalar::<f32>()?);
    let Some((grads, grad_scale)) = grads else {
        let logits = model.forward(&ids, adapter, None)?.detach();
        let loss = BaseModel::masked_loss(&logits, &targets, &mask)?;
        return Ok(f64::from(loss.to_scalar::<f32>()?) * counted);
    };
    let logits = model.forward(&ids, adapter, dropout)?;
    let loss = BaseModel::masked_loss(&logits, &targets, &mask)?;
    let value = f64::from(loss.to_scalar::<f32>()?) * counted;
    let store = (loss * (f64::from(grad_scale) * counted))?.backward()?;
    if let Some(adapter) = adapter {
        grads.add_grad_store(adapter, &store)?;
    }
    Ok(value)
}

/// AdamW (decoupled weight decay, bias-corrected moments) over the adapter's pairs.
struct AdamW {
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    step: i32,
    /// Per variable in [`Adapter::vars`] order: first and second moments.
    moments: Vec<(Vec<f32>, Vec<f32>)>,
}

impl AdamW {
    fn new(adapter: &Adapter, weight_decay: f64) -> Self {
        AdamW {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
            step: 0,
            moments: adapter
                .vars()
                .iter()
                .map(|v| (vec![0.0; v.elem_count()], vec![0.0; v.elem_count()]))
                .collect(),
        }
    }

    fn step(&mut self, adapter: &Adapter, grads: &Gradients, lr: f64) -> Result<()> {
        self.step += 1;
        let m_scale = 1.0 / (1.0 - self.beta1.powi(self.step));
        let v_scale = 1.0 / (1.0 - self.beta2.powi(self.step));
        let decay = (1.0 - lr * self.weight_decay) as f32;
        let (b1, b2) = (self.beta1 as f32, self.beta2 as f32);
        let grads = grads.pairs().values().flat_map(|(da, db)| [da, db]);
        for ((var, grad), (m, v)) in adapter.vars().iter().zip(grads).zip(&mut self.moments) {
            let mut theta = var
                .flatten_all()?
                .to_device(&candle_core::Device::Cpu)?
                .to_vec1::<f32>()?;
            for i in 0..theta.len() {
                let g = grad[i];
                m[i] = b1 * m[i] + (1.0 - b1) * g;
                v[i] = b2 * v[i] + (1.0 - b2) * g * g;
                let m_hat = f64::from(m[i]) * m_scale;
                let v_hat = f64::from(v[i]) * v_scale;
                theta[i] = theta[i] * decay - (lr * m_hat / (v_hat.sqrt() + self.eps)) as f32;
            }
            var.set(&Tensor::from_vec(theta, var.shape(), var.device())?)?;
        }
        Ok(())
    }
}

/// Token-weighted mean loss of `examples` (no dropout).
///
/// # Errors
/// [`Error::Tensor`].
pub fn eval_loss(
    model: &BaseModel,
    adapter: Option<&Adapter>,
    examples: &[Example],
    batch_size: usize,
) -> Result<Option<f64>> {
    if examples.is_empty() {
        return Ok(None);
    }
    let engine = Engine::new(model)?;
    let mut total = 0.0;
    let mut count = 0u64;
    let refs: Vec<&Example> = examples.iter().collect();
    for chunk in refs.chunks(batch_size.max(1)) {
        let (batch, counted) = batch_of(chunk);
        if counted == 0 {
            continue;
        }
        total += micro_batch(model, engine.as_ref(), adapter, &batch, None, None)?;
        count += counted;
    }
    Ok((count > 0).then(|| total / count as f64))
}

fn millis(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Learning rate at optimiser step `step` (from 0): linear warm-up, then cosine to 0.
#[must_use]
pub fn learning_rate(peak: f64, step: u64, total: u64, warmup: u64) -> f64 {
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let span = total.saturating_sub(warmup).max(1);
    let progress = (step - warmup) as f64 / span as f64;
    peak * 0.5 * (1.0 + (std::f64::consts::PI * progress.min(1.0)).cos())
}

/// Trains a LoRA adapter on the JSONL in `dataset` for `epochs` epochs.
///
/// # Errors
/// [`Error::NoUsableRecords`] when no record can be trained on (the job fails, full refund);
/// [`Error::InvalidConfig`]; [`Error::Tensor`]; [`Error::Io`]; [`Error::Stopped`] when a stop
/// request came before the first epoch completed.
pub fn train(
    folder: &ModelFolder,
    dataset: impl BufRead,
    epochs: u16,
    config: &TrainConfig,
    hooks: &mut Hooks<'_>,
) -> Result<TrainOutcome> {
    config.validate()?;
    if epochs == 0 {
        return Err(Error::InvalidConfig("epochs must be at least 1".into()));
    }
    let started = Instant::now();
    let model = folder.model();
    let seq_cap = config
        .max_seq_len
        .min(model.config().max_position_embeddings);
    let (mut examples, stats) = read_examples(dataset, folder.tokenizer(), seq_cap)?;
    if examples.is_empty() {
        return Err(Error::NoUsableRecords(stats));
    }
    let mut rng = SplitMix64::new(config.seed);
    rng.shuffle(&mut examples);
    let eval_n = if examples.len() >= 2 {
        ((examples.len() as f64 * config.eval_fraction).round() as usize)
            .max(usize::from(config.eval_fraction > 0.0))
            .min(examples.len() - 1)
    } else {
        0
    };
    let train_set = examples.split_off(eval_n);
    let eval_set = examples;

    let adapter = Adapter::init(model, &config.lora, &mut rng)?;
    let mut opt = AdamW::new(&adapter, config.weight_decay);
    let engine = Engine::new(model)?;
    let micro_per_epoch = train_set.len().div_ceil(config.batch_size) as u64;
    let steps_per_epoch = micro_per_epoch.div_ceil(config.gradient_accumulation as u64);
    let total_steps = steps_per_epoch * u64::from(epochs);
    let warmup = (total_steps as f64 * config.warmup_ratio).round() as u64;

    let base_eval_loss = eval_loss(model, None, &eval_set, config.batch_size)?;
    let mut report = TrainingReport {
        dataset: stats,
        train_examples: train_set.len() as u64,
        eval_examples: eval_set.len() as u64,
        base_eval_loss,
        epochs_requested: epochs,
        epochs_completed: 0,
        stopped_early: false,
        epochs: Vec::new(),
        loss_curve: Vec::new(),
        tokens_seen: 0,
        trained_tokens: 0,
        trainable_parameters: adapter.parameter_count() as u64,
        base_parameters: model.parameter_count() as u64,
        wall_time_ms: 0,
    };
    let mut step = 0u64;
    let mut order: Vec<usize> = (0..train_set.len()).collect();
    'epochs: for epoch in 1..=epochs {
        let epoch_started = Instant::now();
        rng.shuffle(&mut order);
        let batches: Vec<Vec<&Example>> = order
            .chunks(config.batch_size)
            .map(|c| c.iter().map(|&i| &train_set[i]).collect())
            .collect();
        let mut epoch_loss = 0.0;
        let mut epoch_tokens = 0u64;
        let mut done = 0u64;
        for group in batches.chunks(config.gradient_accumulation) {
            if (hooks.should_stop)() {
                report.stopped_early = true;
                break 'epochs;
            }
            let group_tokens: u64 = group
                .iter()
                .map(|b| b.iter().map(|e| e.trained_tokens() as u64).sum::<u64>())
                .sum();
            let mut grads = Gradients::zeros(&adapter);
            let mut step_loss = 0.0;
            for batch in group {
                let (micro, _) = batch_of(batch);
                report.tokens_seen += micro.ids.len() as u64;
                // Each micro-batch's gradient is scaled by 1/(the step's trained tokens), so the
                // step minimises the token-weighted mean over the whole accumulated batch.
                step_loss += micro_batch(
                    model,
                    engine.as_ref(),
                    Some(&adapter),
                    &micro,
                    Some(&mut rng),
                    Some((&mut grads, 1.0 / group_tokens.max(1) as f32)),
                )?;
                done += batch.len() as u64;
            }
            let lr = learning_rate(config.learning_rate, step, total_steps, warmup);
            opt.step(&adapter, &grads, lr)?;
            step += 1;
            report.trained_tokens += group_tokens;
            epoch_loss += step_loss;
            epoch_tokens += group_tokens;
            report.loss_curve.push(StepLoss {
                step,
                epoch,
                loss: step_loss / group_tokens.max(1) as f64,
                learning_rate: lr,
            });
            (hooks.progress)(TrainProgress {
                epoch,
                epochs,
                step,
                total_steps,
                examples_done: done,
                examples_per_epoch: train_set.len() as u64,
            });
        }
        let eval = eval_loss(model, Some(&adapter), &eval_set, config.batch_size)?;
        report.epochs.push(EpochSummary {
            epoch,
            train_loss: epoch_loss / epoch_tokens.max(1) as f64,
            eval_loss: eval,
            duration_ms: millis(epoch_started),
        });
        report.epochs_completed = epoch;
    }
    report.wall_time_ms = millis(started);
    if report.epochs_completed == 0 {
        return Err(Error::Stopped);
    }
    Ok(TrainOutcome { adapter, report })
}
