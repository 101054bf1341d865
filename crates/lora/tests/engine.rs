//! The hand-written CPU training step against candle's autograd on the composed model: same
//! loss, same LoRA gradients, with and without dropout, on the grouped-query tiny fixture.

use candle_core::{Device, Tensor};
use licen_lora::engine::{Batch, Engine, Gradients};
use licen_lora::model::{Adapter, BaseModel};
use licen_lora::rng::SplitMix64;
use licen_lora::{LoraConfig, ModelFolder, fixture};

fn tiny_folder() -> (tempfile::TempDir, ModelFolder) {
    let dir = tempfile::tempdir().unwrap();
    fixture::write_model(dir.path(), &fixture::tiny_config(), 11).unwrap();
    let folder = ModelFolder::open(dir.path(), None, &Device::Cpu).unwrap();
    (dir, folder)
}

/// `b` sequences of `t` positions: a masked prompt, trained positions, right padding.
fn batch(b: usize, t: usize) -> Batch {
    let mut rng = SplitMix64::new(5);
    let mut ids = Vec::new();
    let mut targets = Vec::new();
    let mut mask = Vec::new();
    for seq in 0..b {
        let len = t - (4 * seq) % (t / 2);
        for pos in 0..t {
            ids.push((rng.next_u64() % 258) as u32);
            targets.push((rng.next_u64() % 258) as u32);
            mask.push(if pos >= 3 && pos < len { 1.0 } else { 0.0 });
        }
    }
    Batch {
        batch: b,
        seq: t,
        ids,
        targets,
        mask,
    }
}

/// An adapter whose B matrices are non-zero too, so both A and B receive gradients.
fn adapter(model: &BaseModel, lora: &LoraConfig) -> Adapter {
    let mut rng = SplitMix64::new(3);
    let adapter = Adapter::init(model, lora, &mut rng).unwrap();
    for (i, var) in adapter.vars().iter().enumerate() {
        if i % 2 == 1 {
            let values: Vec<f32> = (0..var.elem_count())
                .map(|_| (rng.next_f64() as f32 - 0.5) * 0.2)
                .collect();
            var.set(&Tensor::from_vec(values, var.shape(), &Device::Cpu).unwrap())
                .unwrap();
        }
    }
    adapter
}

/// Loss sum and gradients of `grad_scale ·` that sum by candle's autograd on the composed model.
fn composed(
    model: &BaseModel,
    adapter: &Adapter,
    batch: &Batch,
    rng: &mut SplitMix64,
    grad_scale: f32,
) -> (f64, Gradients) {
    let shape = (batch.batch, batch.seq);
    let ids = Tensor::from_slice(&batch.ids, shape, &Device::Cpu).unwrap();
    let targets = Tensor::from_slice(&batch.targets, shape, &Device::Cpu).unwrap();
    let mask = Tensor::from_slice(&batch.mask, shape, &Device::Cpu).unwrap();
    let counted: f32 = batch.mask.iter().sum();
    let logits = model.forward(&ids, Some(adapter), Some(rng)).unwrap();
    let loss = BaseModel::masked_loss(&logits, &targets, &mask).unwrap();
    let sum = f64::from(loss.to_scalar::<f32>().unwrap() * counted);
    let store = (loss * f64::from(counted * grad_scale))
        .unwrap()
        .backward()
        .unwrap();
    let mut grads = Gradients::zeros(adapter);
    grads.add_grad_store(adapter, &store).unwrap();
    (sum, grads)
}

fn assert_same(lora: LoraConfig, batch: Batch) {
    let (_dir, folder) = tiny_folder();
    let model = folder.model();
    let adapter = adapter(model, &lora);
    let grad_scale = 0.25;
    let (want_loss, want) = composed(model, &adapter, &batch, &mut SplitMix64::new(9), grad_scale);
    let engine = Engine::new(model).unwrap().expect("CPU model");
    let mut got = Gradients::zeros(&adapter);
    let got_loss = engine
        .loss_sum(
            Some(&adapter),
            &batch,
            Some(&mut SplitMix64::new(9)),
            Some((&mut got, grad_scale)),
        )
        .unwrap();
    assert!(
        (got_loss - want_loss).abs() < 1e-4 * want_loss.abs(),
        "loss: engine {got_loss}, composed {want_loss}"
    );
    let eval_loss = engine.loss_sum(Some(&adapter), &batch, None, None).unwrap();
    if lora.dropout == 0.0 {
        assert!((eval_loss - got_loss).abs() < 1e-4 * got_loss.abs());
    }
    assert_eq!(got.pairs().len(), want.pairs().len());
    for (key, (got_a, got_b)) in got.pairs() {
        let (want_a, want_b) = &want.pairs()[key];
        for (name, got, want) in [("A", got_a, want_a), ("B", got_b, want_b)] {
            let norm = want.iter().map(|v| v * v).sum::<f32>().sqrt();
            let diff = got
                .iter()
                .zip(want)
                .map(|(g, w)| (g - w) * (g - w))
                .sum::<f32>()
                .sqrt();
            assert!(norm > 0.0, "{key:?} {name}: the composed gradient is zero");
            assert!(
                diff <= 1e-3 * norm,
                "{key:?} {name}: engine gradient differs from autograd by {diff} (norm {norm})"
            );
        }
    }
}

#[test]
fn engine_matches_autograd_without_dropout() {
    assert_same(
        LoraConfig {
            dropout: 0.0,
            ..LoraConfig::default()
        },
        batch(3, 24),
    );
}

#[test]
fn engine_matches_autograd_with_dropout_and_some_modules() {
    assert_same(
        LoraConfig {
            dropout: 0.2,
            target_modules: vec!["k_proj".into(), "o_proj".into(), "up_proj".into()],
            ..LoraConfig::default()
        },
        batch(3, 24),
    );
}

#[test]
fn engine_matches_autograd_with_dropout_on_all_modules() {
    assert_same(
        LoraConfig {
            dropout: 0.1,
            ..LoraConfig::default()
        },
        batch(3, 24),
    );
}

/// A batch the engine splits into uneven chunks of sequences run on separate threads (2, 2
/// and 1 sequences of 100 positions): each chunk must take its own rows of the dropout masks
/// drawn for the whole batch, and the chunk sums must add up to the whole batch's.
#[test]
fn engine_matches_autograd_across_chunks_with_dropout() {
    assert_same(
        LoraConfig {
            dropout: 0.1,
            ..LoraConfig::default()
        },
        batch(5, 100),
    );
}
