//! The CPU training step: the Llama + LoRA forward pass and its backward pass written out by
//! hand over f32 buffers, with every matrix product on candle's gemm and every element-wise
//! stage a fused loop.
//!
//! Why it exists: candle's autograd on the composed formulation (see [`crate::model`]) spends
//! most of its time outside matrix products — one allocation, fill and pass per primitive op
//! and per gradient accumulation, and broadcast tensors of `[batch, heads, seq, seq]` — so it
//! trains about six times slower than the FLOPs allow. Here the frozen base weights take no
//! gradient, q/k/v and gate/up run as one fused matrix product each, without dropout the LoRA
//! pairs are folded into the weights (`W + s·B·A`, one product per module group), grouped-query
//! attention needs no key/value expansion, and softmax, RMSNorm, RoPE, SwiGLU and the
//! cross-entropy run with their gradients as single passes. Parallelism is coarse: a micro-batch
//! is cut into fixed chunks of whole sequences, each run forward and backward on one core with
//! no synchronisation until the chunk sums are added (in chunk order, so the result does not
//! depend on the core count).
//!
//! Owns: [`Engine`] (forward, masked loss and LoRA gradients of one micro-batch) and
//! [`Gradients`]. Must never: compute a gradient for a base weight, or draw dropout masks in an
//! order other than the composed model's (q, k, v, o, gate, up, down per layer), so the same
//! seed gives the same run on either path; the composed model stays the reference these
//! gradients are tested against. Side effect: the first training step sets gemm's process-wide
//! threading threshold so gemm never splits a product over threads.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use candle_core::{Device, Storage, StorageRef, Tensor};
use rayon::prelude::*;

use crate::config::LoraConfig;
use crate::model::{Adapter, BaseModel};
use crate::rng::SplitMix64;
use crate::{Error, Result};

/// A read-only view of a contiguous f32 CPU tensor.
struct View<'a> {
    storage: StorageRef<'a>,
    start: usize,
    end: usize,
}

impl View<'_> {
    fn slice(&self) -> &[f32] {
        match &*self.storage {
            Storage::Cpu(cpu) => cpu
                .as_slice::<f32>()
                .map_or(&[][..], |s| &s[self.start..self.end]),
            _ => &[],
        }
    }
}

fn view(t: &Tensor) -> Result<View<'_>> {
    let (storage, layout) = t.storage_and_layout();
    let (start, end) = layout.contiguous_offsets().ok_or_else(|| {
        Error::Tensor(candle_core::Error::Msg(
            "engine: tensor is not contiguous".into(),
        ))
    })?;
    match &*storage {
        Storage::Cpu(cpu) if cpu.as_slice::<f32>().is_ok() => {}
        _ => {
            return Err(Error::Tensor(candle_core::Error::Msg(
                "engine: expected an f32 CPU tensor".into(),
            )));
        }
    }
    Ok(View {
        storage,
        start,
        end,
    })
}

fn tensor(data: Vec<f32>, shape: &[usize]) -> Result<Tensor> {
    Ok(Tensor::from_vec(data, shape, &Device::Cpu)?)
}

/// Rows per rayon task for row-wise kernels: enough work per task to amortise scheduling.
const MIN_ROWS: usize = 8;

/// The projections fused into one matrix product, with the input they read.
#[derive(Clone, Copy)]
enum Group {
    /// q, k, v on the attention norm's output.
    Qkv,
    /// o on the attention output.
    O,
    /// gate, up on the MLP norm's output.
    GateUp,
    /// down on the SwiGLU output.
    Down,
}

impl Group {
    /// Module indices (into [`crate::config::LLAMA_MODULES`]) in row order.
    fn modules(self) -> &'static [usize] {
        match self {
            Group::Qkv => &[0, 1, 2],
            Group::O => &[3],
            Group::GateUp => &[4, 5],
            Group::Down => &[6],
        }
    }
}

/// The current LoRA weights, detached from the adapter's variables.
struct Lora {
    pairs: BTreeMap<(usize, usize), (Tensor, Tensor)>,
    scale: f32,
    dropout: f64,
}

/// What every chunk of one [`Engine::loss_sum`] call shares (read-only).
struct Shared {
    lora: Lora,
    /// Per layer: the weight `[rows, in]` each module group multiplies by (LoRA folded in when
    /// there is no dropout).
    weights: Vec<[Tensor; 4]>,
    /// Whether the LoRA paths run apart from the base weights, through dropout masks.
    with_dropout: bool,
    /// Per `(layer, module)` with dropout: the mask of the whole batch `[b·t, in]`, drawn in the
    /// composed model's order before the batch is split.
    masks: BTreeMap<(usize, usize), Vec<f32>>,
    /// Per layer and module group: its LoRA pairs stacked, when it has any.
    lora_groups: Vec<[Option<LoraGroup>; 4]>,
    cos: Vec<f32>,
    sin: Vec<f32>,
}

/// The LoRA pairs of one module group stacked, so that each of the group's LoRA products is one
/// matrix product rather than one per module.
struct LoraGroup {
    /// `(module, column, width)` per module with a pair, in row order; the `j`-th one owns
    /// columns `j·r..(j+1)·r` of the stacked products.
    targets: Vec<(usize, usize, usize)>,
    rank: usize,
    /// The A matrices stacked `[R, in]`, `R = r · targets`.
    a: Tensor,
    /// The B matrices block-diagonal `[rows, R]`.
    b: Tensor,
}

/// What a module group's backward pass needs from its forward pass.
struct GroupTape<'s> {
    /// The effective weight `[rows, in]` (LoRA folded in when there is no dropout).
    weight: Tensor,
    /// The LoRA side, when the group has pairs and the pass trains or draws dropout.
    lora: Option<LoraTape<'s>>,
}

struct LoraTape<'s> {
    group: &'s LoraGroup,
    /// Every module's `input · Aᵀ`, side by side `[n, R]`.
    projected: Tensor,
    inputs: LoraInputs<'s>,
}

/// The LoRA inputs of a group's modules.
enum LoraInputs<'s> {
    /// No dropout: every module reads the group's input `[n, in]`.
    Shared(Tensor),
    /// Per module: its masked input `[n, in]` and mask (this chunk's rows).
    Masked(Vec<(Tensor, &'s [f32])>),
}

struct LayerTape<'s> {
    x: Tensor,
    inv_rms1: Vec<f32>,
    qkv: GroupTape<'s>,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    probs: Tensor,
    o: GroupTape<'s>,
    x2: Tensor,
    inv_rms2: Vec<f32>,
    gate_up_out: Tensor,
    gate_up: GroupTape<'s>,
    down: GroupTape<'s>,
}

/// Per `(layer, module)`: `(dA, dB)` flat, row-major.
pub type PairGradients = BTreeMap<(usize, usize), (Vec<f32>, Vec<f32>)>;

/// LoRA gradients summed over micro-batches: per `(layer, module)`, `dA [r·in]` and `dB [out·r]`.
#[derive(Debug)]
pub struct Gradients {
    pairs: PairGradients,
}

impl Gradients {
    /// Zero gradients shaped like `adapter`'s pairs.
    #[must_use]
    pub fn zeros(adapter: &Adapter) -> Self {
        let pairs = adapter
            .pair_vars()
            .map(|(key, a, b)| (key, (vec![0.0; a.elem_count()], vec![0.0; b.elem_count()])))
            .collect();
        Gradients { pairs }
    }

    /// Zero gradients shaped like these.
    fn zeros_like(&self) -> Self {
        let pairs = self
            .pairs
            .iter()
            .map(|(&key, (a, b))| (key, (vec![0.0; a.len()], vec![0.0; b.len()])))
            .collect();
        Gradients { pairs }
    }

    /// Adds `other` (shaped the same) into these sums.
    fn accumulate(&mut self, other: &Gradients) {
        for (key, (da, db)) in &mut self.pairs {
            let (oa, ob) = &other.pairs[key];
            for (dst, src) in [(da, oa), (db, ob)] {
                for (d, s) in dst.iter_mut().zip(src) {
                    *d += s;
                }
            }
        }
    }

    /// Adds `scale · grad` of `tensor` (contiguous, any shape) into `dst`.
    fn add(dst: &mut [f32], grad: &Tensor, scale: f32) -> Result<()> {
        let grad = grad.contiguous()?;
        let g = view(&grad)?;
        for (d, g) in dst.iter_mut().zip(g.slice()) {
            *d += scale * g;
        }
        Ok(())
    }

    /// Adds the gradients of a composed-model loss (candle autograd) into these sums.
    ///
    /// # Errors
    /// [`Error::Tensor`].
    pub fn add_grad_store(
        &mut self,
        adapter: &Adapter,
        store: &candle_core::backprop::GradStore,
    ) -> Result<()> {
        for (key, a, b) in adapter.pair_vars() {
            let (da, db) = self.pairs.get_mut(&key).expect("same adapter");
            for (dst, var) in [(da, a), (db, b)] {
                if let Some(g) = store.get(var.as_tensor()) {
                    let host = g.to_device(&Device::Cpu)?.flatten_all()?.to_vec1::<f32>()?;
                    for (d, g) in dst.iter_mut().zip(host) {
                        *d += g;
                    }
                }
            }
        }
        Ok(())
    }

    /// Per `(layer, module)`: `(dA, dB)` flat, row-major.
    #[must_use]
    pub fn pairs(&self) -> &PairGradients {
        &self.pairs
    }
}

/// A micro-batch: right-padded token ids with next-token targets and a per-position loss mask.
#[derive(Debug)]
pub struct Batch {
    /// Sequences.
    pub batch: usize,
    /// Positions per sequence.
    pub seq: usize,
    /// `[batch·seq]` input ids.
    pub ids: Vec<u32>,
    /// `[batch·seq]` next-token targets.
    pub targets: Vec<u32>,
    /// `[batch·seq]` 1 where the position counts in the loss, else 0.
    pub mask: Vec<f32>,
}

/// Tokens per chunk: a micro-batch is split into chunks of whole sequences of about this many
/// tokens, each run forward and backward start to end on one thread. Fixed (not derived from the
/// thread count) so that the chunking, and with it every rounding, is the same on any machine.
const CHUNK_TOKENS: usize = 256;

/// One single-threaded rayon pool per thread of the global pool. A chunk runs inside one of
/// them, so candle's matrix products and the kernels' parallel loops within it stay on that
/// thread: the chunks never wait on each other, and no loop pays for waking a second thread.
///
/// Also turns off gemm's own splitting of a product over threads, process-wide: candle asks gemm
/// for a rayon split whenever the machine has several threads, and inside a one-thread pool the
/// split only adds scheduling work (it made the small LoRA products twice as slow).
fn chunk_pools() -> &'static [rayon::ThreadPool] {
    static POOLS: OnceLock<Vec<rayon::ThreadPool>> = OnceLock::new();
    POOLS.get_or_init(|| {
        gemm::set_threading_threshold(usize::MAX);
        (0..rayon::current_num_threads())
            .map_while(|i| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(1)
                    .thread_name(move |_| format!("licen-lora-{i}"))
                    .build()
                    .ok()
            })
            .collect()
    })
}

/// `work(0..count)` spread over [`chunk_pools`], results in index order.
fn run_chunks<R: Send>(count: usize, work: impl Fn(usize) -> Result<R> + Sync) -> Result<Vec<R>> {
    let pools = chunk_pools();
    let workers = pools.len().min(count);
    if workers <= 1 {
        return (0..count).map(work).collect();
    }
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Result<R>>>> = (0..count).map(|_| Mutex::new(None)).collect();
    let drain = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= count {
                break;
            }
            let result = work(i);
            *slots[i].lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
        }
    };
    std::thread::scope(|scope| {
        for pool in &pools[1..workers] {
            scope.spawn(|| pool.install(drain));
        }
        pools[0].install(drain);
    });
    slots
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .unwrap_or_else(PoisonError::into_inner)
                .expect("every chunk ran")
        })
        .collect()
}

/// Hand-written training step of a [`BaseModel`] on the CPU (f32).
pub struct Engine<'m> {
    model: &'m BaseModel,
    /// Per layer: the q/k/v, o, gate/up and down base weights in fused row order.
    weights: Vec<[Tensor; 4]>,
}

impl std::fmt::Debug for Engine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

impl<'m> Engine<'m> {
    /// The engine for `model`, or `None` when the model is not on the CPU.
    ///
    /// # Errors
    /// [`Error::Tensor`].
    pub fn new(model: &'m BaseModel) -> Result<Option<Self>> {
        if !model.device().is_cpu() {
            return Ok(None);
        }
        let weights = (0..model.config().num_hidden_layers)
            .map(|layer| {
                let p = model.projections(layer);
                Ok([
                    Tensor::cat(&[&p[0], &p[1], &p[2]], 0)?,
                    p[3].clone(),
                    Tensor::cat(&[&p[4], &p[5]], 0)?,
                    p[6].clone(),
                ])
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(Engine { model, weights }))
    }

    fn lora(adapter: Option<&Adapter>) -> Lora {
        let Some(adapter) = adapter else {
            return Lora {
                pairs: BTreeMap::new(),
                scale: 0.0,
                dropout: 0.0,
            };
        };
        let config: &LoraConfig = adapter.config();
        Lora {
            pairs: adapter
                .pair_vars()
                .map(|(key, a, b)| (key, (a.as_tensor().detach(), b.as_tensor().detach())))
                .collect(),
            scale: config.scale() as f32,
            dropout: config.dropout,
        }
    }

    /// The `(module, column, width)` of each module of `group` in `layer` that has a LoRA pair.
    fn targets(
        &self,
        layer: usize,
        group: Group,
        lora: &Lora,
    ) -> Result<Vec<(usize, usize, usize)>> {
        let mut column = 0;
        let mut targets = Vec::new();
        for &m in group.modules() {
            let width = self.model.projections(layer)[m].dim(0)?;
            if lora.pairs.contains_key(&(layer, m)) {
                targets.push((m, column, width));
            }
            column += width;
        }
        Ok(targets)
    }

    /// `group`'s LoRA pairs in `layer` stacked, or `None` when it has none.
    fn lora_group(&self, layer: usize, group: Group, lora: &Lora) -> Result<Option<LoraGroup>> {
        let targets = self.targets(layer, group, lora)?;
        let Some(&(first, _, _)) = targets.first() else {
            return Ok(None);
        };
        let rank = lora.pairs[&(layer, first)].0.dim(0)?;
        let rows = self.weights[layer][group as usize].dim(0)?;
        let stacked = targets.len() * rank;
        let a: Vec<&Tensor> = targets
            .iter()
            .map(|(m, _, _)| &lora.pairs[&(layer, *m)].0)
            .collect();
        let mut b = vec![0.0f32; rows * stacked];
        for (j, &(m, column, width)) in targets.iter().enumerate() {
            let pair_b = view(&lora.pairs[&(layer, m)].1)?;
            for (o, src) in pair_b.slice().chunks_exact(rank).enumerate().take(width) {
                let at = (column + o) * stacked + j * rank;
                b[at..at + rank].copy_from_slice(src);
            }
        }
        Ok(Some(LoraGroup {
            rank,
            a: Tensor::cat(&a, 0)?,
            b: tensor(b, &[rows, stacked])?,
            targets,
        }))
    }

    /// The LoRA weights, the effective group weights and the whole batch's dropout masks.
    fn shared(
        &self,
        adapter: Option<&Adapter>,
        batch: &Batch,
        dropout: Option<&mut SplitMix64>,
    ) -> Result<Shared> {
        let c = self.model.config();
        let n = batch.batch * batch.seq;
        let lora = Self::lora(adapter);
        let rng = dropout.filter(|_| lora.dropout > 0.0);
        let with_dropout = rng.is_some();
        let mut masks = BTreeMap::new();
        if let Some(rng) = rng {
            for layer in 0..c.num_hidden_layers {
                for group in [Group::Qkv, Group::O, Group::GateUp, Group::Down] {
                    let fan_in = self.weights[layer][group as usize].dim(1)?;
                    for (m, _, _) in self.targets(layer, group, &lora)? {
                        masks.insert((layer, m), dropout_mask(n * fan_in, lora.dropout, rng));
                    }
                }
            }
        }
        let weights = (0..c.num_hidden_layers)
            .into_par_iter()
            .map(|layer| {
                let mut groups = self.weights[layer].clone();
                if with_dropout {
                    return Ok(groups);
                }
                for group in [Group::Qkv, Group::O, Group::GateUp, Group::Down] {
                    let targets = self.targets(layer, group, &lora)?;
                    if targets.is_empty() {
                        continue;
                    }
                    // Fold s·B·A into the frozen weight: one product per group instead of three.
                    let base = &groups[group as usize];
                    let (rows, fan_in) = base.dims2()?;
                    let mut w = view(base)?.slice().to_vec();
                    for (m, column, width) in targets {
                        let (a, b) = &lora.pairs[&(layer, m)];
                        let delta = b.matmul(a)?;
                        let delta = view(&delta)?;
                        for (w, d) in w[column * fan_in..(column + width) * fan_in]
                            .iter_mut()
                            .zip(delta.slice())
                        {
                            *w += lora.scale * d;
                        }
                    }
                    groups[group as usize] = tensor(w, &[rows, fan_in])?;
                }
                Ok(groups)
            })
            .collect::<Result<Vec<_>>>()?;
        let lora_groups = (0..c.num_hidden_layers)
            .map(|layer| {
                let mut groups = [None, None, None, None];
                for group in [Group::Qkv, Group::O, Group::GateUp, Group::Down] {
                    groups[group as usize] = self.lora_group(layer, group, &lora)?;
                }
                Ok(groups)
            })
            .collect::<Result<Vec<_>>>()?;
        let (cos, sin) = rope_tables(batch.seq, c.head_dim(), c.rope_theta);
        Ok(Shared {
            lora,
            weights,
            with_dropout,
            masks,
            lora_groups,
            cos,
            sin,
        })
    }

    /// Sum over counted positions of the next-token negative log-likelihood. With `grads`, also
    /// adds `grad_scale ·` the gradient of that sum with respect to every LoRA matrix into it;
    /// `dropout` (training only) draws the LoRA dropout masks.
    ///
    /// The batch runs as chunks of whole sequences ([`CHUNK_TOKENS`]) in parallel, one thread
    /// each; their losses and gradients are summed in chunk order, so the result does not depend
    /// on the thread count.
    ///
    /// # Errors
    /// [`Error::Tensor`] on a shape mismatch.
    pub fn loss_sum(
        &self,
        adapter: Option<&Adapter>,
        batch: &Batch,
        dropout: Option<&mut SplitMix64>,
        mut grads: Option<(&mut Gradients, f32)>,
    ) -> Result<f64> {
        let shared = self.shared(adapter, batch, dropout)?;
        let (b, t) = (batch.batch, batch.seq);
        let per_chunk = (CHUNK_TOKENS / t.max(1)).max(1);
        let chunks: Vec<std::ops::Range<usize>> = (0..b)
            .step_by(per_chunk)
            .map(|first| first..(first + per_chunk).min(b))
            .collect();
        let template = grads.as_ref().map(|(g, scale)| (g.zeros_like(), *scale));
        let results = run_chunks(chunks.len(), |i| {
            let sequences = chunks[i].clone();
            let rows = sequences.start * t..sequences.end * t;
            let part = Batch {
                batch: sequences.len(),
                seq: t,
                ids: batch.ids[rows.clone()].to_vec(),
                targets: batch.targets[rows.clone()].to_vec(),
                mask: batch.mask[rows.clone()].to_vec(),
            };
            let mut part_grads = template.as_ref().map(|(g, s)| (g.zeros_like(), *s));
            let loss = self.chunk_loss(
                &shared,
                &part,
                rows,
                part_grads.as_mut().map(|(g, s)| (g, *s)),
            )?;
            Ok((loss, part_grads.map(|(g, _)| g)))
        })?;
        let mut loss = 0.0;
        for (part_loss, part_grads) in results {
            loss += part_loss;
            if let (Some((grads, _)), Some(part)) = (grads.as_mut(), part_grads) {
                grads.accumulate(&part);
            }
        }
        Ok(loss)
    }

    /// [`Engine::loss_sum`] of one chunk: `batch` holds the rows `rows` of the whole batch.
    fn chunk_loss(
        &self,
        shared: &Shared,
        batch: &Batch,
        rows: std::ops::Range<usize>,
        grads: Option<(&mut Gradients, f32)>,
    ) -> Result<f64> {
        let c = self.model.config();
        let (b, t) = (batch.batch, batch.seq);
        let n = b * t;
        let (h, heads, kv_heads, hd) = (
            c.hidden_size,
            c.num_attention_heads,
            c.num_key_value_heads,
            c.head_dim(),
        );
        let eps = c.rms_norm_eps as f32;
        let training = grads.is_some();
        let (cos, sin) = (&shared.cos, &shared.sin);
        let dims = AttentionDims {
            b,
            t,
            heads,
            kv_heads,
            hd,
        };
        let scale = 1.0 / (hd as f32).sqrt();
        let forward = |layer, group, input: &Tensor| {
            self.group_forward(layer, group, input, shared, &rows, training)
        };

        let mut x = {
            let e = view(self.model.embedding())?;
            let e = e.slice();
            let mut x = vec![0.0f32; n * h];
            x.par_chunks_mut(h)
                .zip(batch.ids.par_iter())
                .for_each(|(row, &id)| {
                    let id = id as usize;
                    row.copy_from_slice(&e[id * h..(id + 1) * h]);
                });
            tensor(x, &[n, h])?
        };
        let mut tapes = Vec::with_capacity(c.num_hidden_layers);
        for layer in 0..c.num_hidden_layers {
            let (input_norm, post_norm) = self.model.norms(layer);
            let (n1, inv_rms1) = rms_norm(&x, input_norm, eps)?;
            let (qkv_out, qkv) = forward(layer, Group::Qkv, &n1)?;
            let (q, k, v) = split_rope(&qkv_out, &dims, cos, sin)?;
            let group = b * kv_heads;
            let rep_t = (heads / kv_heads) * t;
            let q3 = q.reshape((group, rep_t, hd))?;
            let k3 = k.reshape((group, t, hd))?;
            let v3 = v.reshape((group, t, hd))?;
            let scores = q3.matmul(&k3.t()?)?;
            let probs = causal_softmax(&scores, t, scale)?;
            let att = merge_heads(&probs.matmul(&v3)?, &dims)?;
            let (o_out, o) = forward(layer, Group::O, &att)?;
            let (x2, n2, inv_rms2) = residual_rms_norm(&x, &o_out, post_norm, eps)?;
            let (gate_up_out, gate_up) = forward(layer, Group::GateUp, &n2)?;
            let act = swiglu(&gate_up_out)?;
            let (down_out, down) = forward(layer, Group::Down, &act)?;
            let next = add(&x2, &down_out)?;
            if training {
                tapes.push(LayerTape {
                    x,
                    inv_rms1,
                    qkv,
                    q,
                    k,
                    v,
                    probs,
                    o,
                    x2,
                    inv_rms2,
                    gate_up_out,
                    gate_up,
                    down,
                });
            }
            x = next;
        }
        let (nf, inv_rms_f) = rms_norm(&x, self.model.final_norm(), eps)?;
        let logits = nf.matmul(&self.model.lm_head().t()?)?;
        let grad_scale = grads.as_ref().map_or(0.0, |(_, s)| *s);
        let (loss, dlogits) = cross_entropy(&logits, batch, grad_scale, training)?;
        let Some((grads, _)) = grads else {
            return Ok(loss);
        };
        let dlogits = dlogits.expect("training computes dlogits");
        let lora = &shared.lora;

        let d_nf = dlogits.matmul(self.model.lm_head())?;
        let mut dx = rms_norm_backward(&x, &inv_rms_f, self.model.final_norm(), &d_nf, None)?;
        for (layer, tape) in tapes.iter().enumerate().rev() {
            let (input_norm, post_norm) = self.model.norms(layer);
            let d_act = self.group_backward(layer, &tape.down, &dx, lora, grads)?;
            let d_gate_up = swiglu_backward(&tape.gate_up_out, &d_act)?;
            let d_n2 = self.group_backward(layer, &tape.gate_up, &d_gate_up, lora, grads)?;
            let dx2 = rms_norm_backward(&tape.x2, &tape.inv_rms2, post_norm, &d_n2, Some(&dx))?;
            let d_att = self.group_backward(layer, &tape.o, &dx2, lora, grads)?;
            let group = b * kv_heads;
            let rep_t = (heads / kv_heads) * t;
            let d_o3 = split_heads(&d_att, &dims)?.reshape((group, rep_t, hd))?;
            let q3 = tape.q.reshape((group, rep_t, hd))?;
            let k3 = tape.k.reshape((group, t, hd))?;
            let v3 = tape.v.reshape((group, t, hd))?;
            let d_probs = d_o3.matmul(&v3.t()?)?;
            let d_scores = causal_softmax_backward(&tape.probs, &d_probs, t, scale)?;
            let dq = d_scores.matmul(&k3)?;
            let dk = d_scores.t()?.matmul(&q3)?;
            let dv = tape.probs.t()?.matmul(&d_o3)?;
            let d_qkv = merge_rope_backward(&dq, &dk, &dv, &dims, cos, sin)?;
            if layer == 0 {
                // The embeddings are frozen: below the first q/k/v nothing takes a gradient.
                self.lora_backward(layer, &tape.qkv, &d_qkv, lora, grads)?;
                break;
            }
            let d_n1 = self.group_backward(layer, &tape.qkv, &d_qkv, lora, grads)?;
            dx = rms_norm_backward(&tape.x, &tape.inv_rms1, input_norm, &d_n1, Some(&dx2))?;
        }
        Ok(loss)
    }

    /// `y = u · W_effᵀ` for one module group, plus the LoRA terms; `rows` are the chunk's rows
    /// of the whole batch (for its slice of the dropout masks).
    fn group_forward<'s>(
        &self,
        layer: usize,
        group: Group,
        input: &Tensor,
        shared: &'s Shared,
        rows: &std::ops::Range<usize>,
        training: bool,
    ) -> Result<(Tensor, GroupTape<'s>)> {
        let weight = shared.weights[layer][group as usize].clone();
        let fan_in = weight.dim(1)?;
        let mut out = input.matmul(&weight.t()?)?;
        let lora_group = shared.lora_groups[layer][group as usize].as_ref();
        let Some(lora_group) = lora_group.filter(|_| training || shared.with_dropout) else {
            return Ok((out, GroupTape { weight, lora: None }));
        };
        let tape = if shared.with_dropout {
            let r = lora_group.rank;
            let mut projected = Vec::with_capacity(lora_group.targets.len());
            let mut inputs = Vec::with_capacity(lora_group.targets.len());
            let mut additions = Vec::with_capacity(lora_group.targets.len());
            for (j, &(module, column, _)) in lora_group.targets.iter().enumerate() {
                let mask = &shared.masks[&(layer, module)][rows.start * fan_in..rows.end * fan_in];
                let masked = apply_mask(input, mask)?;
                let p = masked.matmul(&lora_group.a.narrow(0, j * r, r)?.t()?)?;
                let (_, b) = &shared.lora.pairs[&(layer, module)];
                additions.push((column, p.matmul(&b.t()?)?));
                projected.push(p);
                inputs.push((masked, mask));
            }
            out = add_column_blocks(&out, &additions, shared.lora.scale)?;
            LoraTape {
                group: lora_group,
                projected: Tensor::cat(&projected, 1)?,
                inputs: LoraInputs::Masked(inputs),
            }
        } else {
            LoraTape {
                group: lora_group,
                projected: input.matmul(&lora_group.a.t()?)?,
                inputs: LoraInputs::Shared(input.clone()),
            }
        };
        Ok((
            out,
            GroupTape {
                weight,
                lora: Some(tape),
            },
        ))
    }

    /// The input gradient of one module group; adds its LoRA gradients into `grads`.
    fn group_backward(
        &self,
        layer: usize,
        tape: &GroupTape<'_>,
        d_out: &Tensor,
        lora: &Lora,
        grads: &mut Gradients,
    ) -> Result<Tensor> {
        let mut d_in = d_out.matmul(&tape.weight)?;
        let masked = self.lora_backward(layer, tape, d_out, lora, grads)?;
        if !masked.is_empty() {
            d_in = add_masked(&d_in, &masked, lora.scale)?;
        }
        Ok(d_in)
    }

    /// Adds one module group's LoRA gradients into `grads`; returns, per module with dropout,
    /// its mask and `dP · A` (the LoRA path's input gradient before the mask and scale).
    fn lora_backward<'t>(
        &self,
        layer: usize,
        tape: &GroupTape<'t>,
        d_out: &Tensor,
        lora: &Lora,
        grads: &mut Gradients,
    ) -> Result<Vec<(&'t [f32], Tensor)>> {
        let mut masked = Vec::new();
        let Some(lt) = &tape.lora else {
            return Ok(masked);
        };
        let group = lt.group;
        let r = group.rank;
        let stacked = group.targets.len() * r;
        // dlogits already carry the caller's gradient scale.
        let s = lora.scale;
        let d_projected = d_out.matmul(&group.b)?;
        // `d_outᵀ · P` for every module pair of rows and rank columns; each module reads its
        // own diagonal block.
        let d_b_all = d_out.t()?.matmul(&lt.projected)?;
        let d_b_all = view(&d_b_all)?;
        let d_b_all = d_b_all.slice();
        let d_a_all = match &lt.inputs {
            LoraInputs::Shared(input) => Some(d_projected.t()?.matmul(input)?),
            LoraInputs::Masked(_) => None,
        };
        for (j, &(module, column, width)) in group.targets.iter().enumerate() {
            let (da, db) = grads.pairs.get_mut(&(layer, module)).expect("adapter");
            for (o, db_row) in db.chunks_exact_mut(r).enumerate().take(width) {
                let at = (column + o) * stacked + j * r;
                for (d, g) in db_row.iter_mut().zip(&d_b_all[at..at + r]) {
                    *d += s * g;
                }
            }
            match (&lt.inputs, &d_a_all) {
                (LoraInputs::Shared(_), Some(d_a_all)) => {
                    let fan_in = d_a_all.dim(1)?;
                    let all = view(d_a_all)?;
                    let block = &all.slice()[j * r * fan_in..(j + 1) * r * fan_in];
                    for (d, g) in da.iter_mut().zip(block) {
                        *d += s * g;
                    }
                }
                (LoraInputs::Masked(inputs), _) => {
                    let (input, mask) = &inputs[j];
                    let d_p = d_projected.narrow(1, j * r, r)?;
                    Gradients::add(da, &d_p.t()?.matmul(input)?, s)?;
                    masked.push((*mask, d_p.matmul(&group.a.narrow(0, j * r, r)?)?));
                }
                (LoraInputs::Shared(_), None) => unreachable!("shared inputs have d_a_all"),
            }
        }
        Ok(masked)
    }
}

#[derive(Clone, Copy)]
struct AttentionDims {
    b: usize,
    t: usize,
    heads: usize,
    kv_heads: usize,
    hd: usize,
}

/// `cos`/`sin` `[t, hd/2]` of Hugging Face's rotate-half RoPE.
fn rope_tables(t: usize, hd: usize, theta: f64) -> (Vec<f32>, Vec<f32>) {
    let half = hd / 2;
    let mut cos = Vec::with_capacity(t * half);
    let mut sin = Vec::with_capacity(t * half);
    for pos in 0..t {
        for i in 0..half {
            let inv = theta.powf(-((2 * i) as f64) / hd as f64);
            let angle = pos as f64 * inv;
            cos.push(angle.cos() as f32);
            sin.push(angle.sin() as f32);
        }
    }
    (cos, sin)
}

/// RMSNorm rows of `x [n, h]`: `(x · r · w, r)` with `r = 1/√(mean(x²) + eps)`.
fn rms_norm(x: &Tensor, weight: &Tensor, eps: f32) -> Result<(Tensor, Vec<f32>)> {
    let (n, h) = x.dims2()?;
    let xv = view(x)?;
    let wv = view(weight)?;
    let (xs, w) = (xv.slice(), wv.slice());
    let mut out = vec![0.0f32; n * h];
    let mut inv = vec![0.0f32; n];
    out.par_chunks_mut(h)
        .zip(inv.par_iter_mut())
        .enumerate()
        .with_min_len(MIN_ROWS)
        .for_each(|(row, (o, r))| {
            let x = &xs[row * h..(row + 1) * h];
            let ss = dot(x, x);
            *r = 1.0 / (ss / h as f32 + eps).sqrt();
            for ((o, x), w) in o.iter_mut().zip(x).zip(w) {
                *o = x * *r * w;
            }
        });
    Ok((tensor(out, &[n, h])?, inv))
}

/// `x + delta` and its RMSNorm.
fn residual_rms_norm(
    x: &Tensor,
    delta: &Tensor,
    weight: &Tensor,
    eps: f32,
) -> Result<(Tensor, Tensor, Vec<f32>)> {
    let sum = add(x, delta)?;
    let (normed, inv) = rms_norm(&sum, weight, eps)?;
    Ok((sum, normed, inv))
}

fn add(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let dims = a.dims().to_vec();
    let av = view(a)?;
    let bv = view(b)?;
    let out: Vec<f32> = av
        .slice()
        .par_iter()
        .zip(bv.slice().par_iter())
        .with_min_len(4096)
        .map(|(a, b)| a + b)
        .collect();
    tensor(out, &dims)
}

/// The gradient of RMSNorm's input (plus `residual`, the gradient arriving by the skip path).
fn rms_norm_backward(
    x: &Tensor,
    inv_rms: &[f32],
    weight: &Tensor,
    d_out: &Tensor,
    residual: Option<&Tensor>,
) -> Result<Tensor> {
    let (n, h) = x.dims2()?;
    let xv = view(x)?;
    let wv = view(weight)?;
    let dv = view(d_out)?;
    let rv = residual.map(view).transpose()?;
    let (xs, w, ds) = (xv.slice(), wv.slice(), dv.slice());
    let rs = rv.as_ref().map(View::slice);
    let mut out = vec![0.0f32; n * h];
    out.par_chunks_mut(h)
        .enumerate()
        .with_min_len(MIN_ROWS)
        .for_each(|(row, o)| {
            let range = row * h..(row + 1) * h;
            let (x, d) = (&xs[range.clone()], &ds[range.clone()]);
            let r = inv_rms[row];
            let k = r * r * r * dot3(x, d, w) / h as f32;
            for (i, o) in o.iter_mut().enumerate() {
                *o = r * d[i] * w[i] - k * x[i];
            }
            if let Some(rs) = rs {
                for (o, r) in o.iter_mut().zip(&rs[range]) {
                    *o += r;
                }
            }
        });
    tensor(out, &[n, h])
}

/// Splits the fused q/k/v output `[b·t, (heads + 2·kv)·hd]` into head-major `q [b, heads, t, hd]`
/// and `k`, `v [b, kv, t, hd]`, applying RoPE to q and k on the way.
fn split_rope(
    qkv: &Tensor,
    d: &AttentionDims,
    cos: &[f32],
    sin: &[f32],
) -> Result<(Tensor, Tensor, Tensor)> {
    let width = (d.heads + 2 * d.kv_heads) * d.hd;
    let src = view(qkv)?;
    let src = src.slice();
    let half = d.hd / 2;
    let gather = |heads: usize, first_column: usize, rotate: bool| -> Result<Tensor> {
        let mut out = vec![0.0f32; d.b * heads * d.t * d.hd];
        out.par_chunks_mut(d.t * d.hd)
            .enumerate()
            .for_each(|(bh, block)| {
                let (b, head) = (bh / heads, bh % heads);
                for (pos, o) in block.chunks_mut(d.hd).enumerate() {
                    let at = (b * d.t + pos) * width + first_column + head * d.hd;
                    let x = &src[at..at + d.hd];
                    if rotate {
                        let (c, s) = (&cos[pos * half..][..half], &sin[pos * half..][..half]);
                        for i in 0..half {
                            o[i] = x[i] * c[i] - x[i + half] * s[i];
                            o[i + half] = x[i + half] * c[i] + x[i] * s[i];
                        }
                    } else {
                        o.copy_from_slice(x);
                    }
                }
            });
        tensor(out, &[d.b, heads, d.t, d.hd])
    };
    let q_cols = d.heads * d.hd;
    let kv_cols = d.kv_heads * d.hd;
    Ok((
        gather(d.heads, 0, true)?,
        gather(d.kv_heads, q_cols, true)?,
        gather(d.kv_heads, q_cols + kv_cols, false)?,
    ))
}

/// The inverse of [`split_rope`] for gradients: `dq [b·kv, rep·t, hd]`, `dk`, `dv [b·kv, t, hd]`
/// back to `[b·t, (heads + 2·kv)·hd]`, RoPE transposed (rotation by −angle).
fn merge_rope_backward(
    dq: &Tensor,
    dk: &Tensor,
    dv: &Tensor,
    d: &AttentionDims,
    cos: &[f32],
    sin: &[f32],
) -> Result<Tensor> {
    let width = (d.heads + 2 * d.kv_heads) * d.hd;
    let (qv, kv, vv) = (view(dq)?, view(dk)?, view(dv)?);
    let (qs, ks, vs) = (qv.slice(), kv.slice(), vv.slice());
    let half = d.hd / 2;
    let mut out = vec![0.0f32; d.b * d.t * width];
    out.par_chunks_mut(width)
        .enumerate()
        .with_min_len(MIN_ROWS)
        .for_each(|(row, o)| {
            let (b, pos) = (row / d.t, row % d.t);
            let (c, s) = (&cos[pos * half..][..half], &sin[pos * half..][..half]);
            let mut put = |column: usize, src: &[f32], rotate: bool| {
                let o = &mut o[column..column + d.hd];
                if rotate {
                    for i in 0..half {
                        o[i] = src[i] * c[i] + src[i + half] * s[i];
                        o[i + half] = src[i + half] * c[i] - src[i] * s[i];
                    }
                } else {
                    o.copy_from_slice(src);
                }
            };
            for head in 0..d.heads {
                let at = ((b * d.heads + head) * d.t + pos) * d.hd;
                put(head * d.hd, &qs[at..at + d.hd], true);
            }
            for head in 0..d.kv_heads {
                let at = ((b * d.kv_heads + head) * d.t + pos) * d.hd;
                put((d.heads + head) * d.hd, &ks[at..at + d.hd], true);
                put(
                    (d.heads + d.kv_heads + head) * d.hd,
                    &vs[at..at + d.hd],
                    false,
                );
            }
        });
    tensor(out, &[d.b * d.t, width])
}

/// Head-major `[b, heads, t, hd]` (any equal-sized view) → token-major `[b·t, heads·hd]`.
fn merge_heads(x: &Tensor, d: &AttentionDims) -> Result<Tensor> {
    let xv = view(x)?;
    let xs = xv.slice();
    let h = d.heads * d.hd;
    let mut out = vec![0.0f32; d.b * d.t * h];
    out.par_chunks_mut(h)
        .enumerate()
        .with_min_len(MIN_ROWS)
        .for_each(|(row, o)| {
            let (b, pos) = (row / d.t, row % d.t);
            for (head, o) in o.chunks_mut(d.hd).enumerate() {
                let at = ((b * d.heads + head) * d.t + pos) * d.hd;
                o.copy_from_slice(&xs[at..at + d.hd]);
            }
        });
    tensor(out, &[d.b * d.t, h])
}

/// Token-major `[b·t, heads·hd]` → head-major `[b, heads, t, hd]`.
fn split_heads(x: &Tensor, d: &AttentionDims) -> Result<Tensor> {
    let xv = view(x)?;
    let xs = xv.slice();
    let h = d.heads * d.hd;
    let mut out = vec![0.0f32; d.b * d.t * h];
    out.par_chunks_mut(d.t * d.hd)
        .enumerate()
        .for_each(|(bh, block)| {
            let (b, head) = (bh / d.heads, bh % d.heads);
            for (pos, o) in block.chunks_mut(d.hd).enumerate() {
                let at = (b * d.t + pos) * h + head * d.hd;
                o.copy_from_slice(&xs[at..at + d.hd]);
            }
        });
    tensor(out, &[d.b, d.heads, d.t, d.hd])
}

/// Causal softmax of `scale · scores` over rows of length `t`; row `i` of each `[t, t]` block
/// sees keys `0..=i` (the rest are written as 0).
fn causal_softmax(scores: &Tensor, t: usize, scale: f32) -> Result<Tensor> {
    let dims = scores.dims().to_vec();
    let sv = view(scores)?;
    let ss = sv.slice();
    let mut out = vec![0.0f32; ss.len()];
    out.par_chunks_mut(t)
        .enumerate()
        .with_min_len(MIN_ROWS)
        .for_each(|(row, p)| {
            let visible = row % t + 1;
            let s = &ss[row * t..row * t + visible];
            let max = s.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) * scale;
            for (p, s) in p.iter_mut().zip(s) {
                *p = exp(s * scale - max);
            }
            let inv = 1.0 / sum_lanes(&p[..visible]);
            for p in &mut p[..visible] {
                *p *= inv;
            }
        });
    tensor(out, &dims)
}

/// The gradient of the pre-scale scores: `scale · P ∘ (dP − rowsum(P ∘ dP))`.
fn causal_softmax_backward(
    probs: &Tensor,
    d_probs: &Tensor,
    t: usize,
    scale: f32,
) -> Result<Tensor> {
    let dims = probs.dims().to_vec();
    let (pv, dv) = (view(probs)?, view(d_probs)?);
    let (ps, ds) = (pv.slice(), dv.slice());
    let mut out = vec![0.0f32; ps.len()];
    out.par_chunks_mut(t)
        .enumerate()
        .with_min_len(MIN_ROWS)
        .for_each(|(row, o)| {
            let visible = row % t + 1;
            let p = &ps[row * t..row * t + visible];
            let d = &ds[row * t..row * t + visible];
            let dot = dot(p, d);
            for ((o, p), d) in o.iter_mut().zip(p).zip(d) {
                *o = scale * p * (d - dot);
            }
        });
    tensor(out, &dims)
}

/// `eˣ` to a few ulps (relative error below 5·10⁻⁷), in straight-line float and bit arithmetic that the compiler turns into
/// vector code inside a loop (libm's `expf` is a call per element and stops vectorisation).
/// Inputs are clamped to `[-87, 88]`, so the result is a normal float: `exp(-∞)` is `~1.6e-38`.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in two so `n · LN2_HI` is exact for |n| < 2⁸.
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // 1.5 · 2²³: adding it rounds to an integer that then sits in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    // Taylor series of eʳ for |r| ≤ ln2/2: the degree-7 term would add < 2⁻²⁴.
    let p = 1.0 / 720.0;
    let p = p * r + 1.0 / 120.0;
    let p = p * r + 1.0 / 24.0;
    let p = p * r + 1.0 / 6.0;
    let p = p * r + 0.5;
    let p = p * r + 1.0;
    let p = p * r + 1.0;
    let n = shifted.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    p * f32::from_bits(((n + 127) as u32) << 23)
}

/// The sum of `values` over eight interleaved partial sums (vectorisable, unlike a serial sum).
#[inline(always)]
fn sum_lanes(values: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let chunks = values.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().sum();
    for chunk in chunks {
        for (lane, v) in lanes.iter_mut().zip(chunk) {
            *lane += v;
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// `Σ aᵢ·bᵢ` over eight interleaved partial sums.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .map(|(a, b)| a * b)
        .sum();
    for (a, b) in a8.zip(b8) {
        for ((lane, a), b) in lanes.iter_mut().zip(a).zip(b) {
            *lane += a * b;
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// `Σ aᵢ·bᵢ·cᵢ` over eight interleaved partial sums.
#[inline(always)]
fn dot3(a: &[f32], b: &[f32], c: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (a8, b8, c8) = (a.chunks_exact(8), b.chunks_exact(8), c.chunks_exact(8));
    let tail: f32 = (a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .zip(c8.remainder()))
    .map(|((a, b), c)| a * b * c)
    .sum();
    for ((a, b), c) in a8.zip(b8).zip(c8) {
        for (((lane, a), b), c) in lanes.iter_mut().zip(a).zip(b).zip(c) {
            *lane += a * b * c;
        }
    }
    lanes.iter().sum::<f32>() + tail
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `silu(gate) · up` from the fused gate/up output `[n, 2i]`.
fn swiglu(gate_up: &Tensor) -> Result<Tensor> {
    let (n, two_i) = gate_up.dims2()?;
    let i = two_i / 2;
    let gv = view(gate_up)?;
    let gs = gv.slice();
    let mut out = vec![0.0f32; n * i];
    out.par_chunks_mut(i)
        .enumerate()
        .with_min_len(MIN_ROWS)
        .for_each(|(row, o)| {
            let (g, u) = gs[row * two_i..(row + 1) * two_i].split_at(i);
            for ((o, g), u) in o.iter_mut().zip(g).zip(u) {
                *o = g * sigmoid(*g) * u;
            }
        });
    tensor(out, &[n, i])
}

/// The gradient of the fused gate/up output from the gradient of `silu(gate) · up`.
fn swiglu_backward(gate_up: &Tensor, d_act: &Tensor) -> Result<Tensor> {
    let (n, two_i) = gate_up.dims2()?;
    let i = two_i / 2;
    let (gv, dv) = (view(gate_up)?, view(d_act)?);
    let (gs, ds) = (gv.slice(), dv.slice());
    let mut out = vec![0.0f32; n * two_i];
    out.par_chunks_mut(two_i)
        .enumerate()
        .with_min_len(MIN_ROWS)
        .for_each(|(row, o)| {
            let (g, u) = gs[row * two_i..(row + 1) * two_i].split_at(i);
            let d = &ds[row * i..(row + 1) * i];
            let (dg, du) = o.split_at_mut(i);
            for j in 0..i {
                let sig = sigmoid(g[j]);
                let silu = g[j] * sig;
                du[j] = d[j] * silu;
                dg[j] = d[j] * u[j] * sig * (1.0 + g[j] * (1.0 - sig));
            }
        });
    tensor(out, &[n, two_i])
}

/// Masked next-token cross-entropy of `logits [n, v]`: the sum over counted positions and,
/// when training, `grad_scale ·` its gradient with respect to the logits.
fn cross_entropy(
    logits: &Tensor,
    batch: &Batch,
    grad_scale: f32,
    training: bool,
) -> Result<(f64, Option<Tensor>)> {
    let (n, v) = logits.dims2()?;
    let lv = view(logits)?;
    let ls = lv.slice();
    let mut grad = if training {
        vec![0.0f32; n * v]
    } else {
        Vec::new()
    };
    let row_loss = |row: usize, g: Option<&mut [f32]>| -> f64 {
        let mask = batch.mask[row];
        if mask == 0.0 {
            return 0.0;
        }
        let l = &ls[row * v..(row + 1) * v];
        let max = l.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
        let sum: f32 = l.iter().map(|x| exp(x - max)).sum();
        let log_z = sum.ln();
        let target = batch.targets[row] as usize;
        if let Some(g) = g {
            let w = grad_scale * mask;
            for (g, x) in g.iter_mut().zip(l) {
                *g = w * (exp(x - max) / sum);
            }
            g[target] -= w;
        }
        f64::from((log_z - (l[target] - max)) * mask)
    };
    let loss = if training {
        grad.par_chunks_mut(v)
            .enumerate()
            .with_min_len(MIN_ROWS)
            .map(|(row, g)| row_loss(row, Some(g)))
            .collect::<Vec<_>>()
    } else {
        (0..n)
            .into_par_iter()
            .with_min_len(MIN_ROWS)
            .map(|row| row_loss(row, None))
            .collect::<Vec<_>>()
    };
    // Summed in row order so the result does not depend on the thread split.
    let loss = loss.iter().sum();
    let grad = if training {
        Some(tensor(grad, &[n, v])?)
    } else {
        None
    };
    Ok((loss, grad))
}

/// Draws an inverted-dropout mask of `len` values, in the composed model's draw order.
fn dropout_mask(len: usize, p: f64, rng: &mut SplitMix64) -> Vec<f32> {
    let keep = (1.0 / (1.0 - p)) as f32;
    (0..len)
        .map(|_| if rng.next_f64() < p { 0.0 } else { keep })
        .collect()
}

/// `x ∘ mask`.
fn apply_mask(x: &Tensor, mask: &[f32]) -> Result<Tensor> {
    let xv = view(x)?;
    let out: Vec<f32> = xv.slice().iter().zip(mask).map(|(x, m)| x * m).collect();
    tensor(out, x.dims())
}

/// `out[:, column..column + width] += scale · block` for each block `[n, width]`.
fn add_column_blocks(out: &Tensor, blocks: &[(usize, Tensor)], scale: f32) -> Result<Tensor> {
    let (n, width) = out.dims2()?;
    let mut data = view(out)?.slice().to_vec();
    for (column, block) in blocks {
        let w = block.dim(1)?;
        let bv = view(block)?;
        let bs = bv.slice();
        data.par_chunks_mut(width)
            .enumerate()
            .with_min_len(MIN_ROWS)
            .for_each(|(row, o)| {
                for (o, b) in o[*column..column + w]
                    .iter_mut()
                    .zip(&bs[row * w..(row + 1) * w])
                {
                    *o += scale * b;
                }
            });
    }
    tensor(data, &[n, width])
}

/// `out + scale · Σ mask ∘ z`.
fn add_masked(out: &Tensor, terms: &[(&[f32], Tensor)], scale: f32) -> Result<Tensor> {
    let dims = out.dims().to_vec();
    let mut data = view(out)?.slice().to_vec();
    for (mask, z) in terms {
        let zv = view(z)?;
        data.par_iter_mut()
            .zip(mask.par_iter())
            .zip(zv.slice().par_iter())
            .with_min_len(4096)
            .for_each(|((o, m), z)| *o += scale * m * z);
    }
    tensor(data, &dims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_a_few_ulps_of_libm_over_its_range() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x <= 88.0 {
            let want = f64::from(x).exp();
            let got = f64::from(exp(x));
            worst = worst.max(((got - want) / want).abs());
            x += 0.000_37;
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
        assert!(exp(f32::NEG_INFINITY) < 1e-37);
        assert!(exp(-1e6) >= 0.0);
    }

    #[test]
    fn sum_lanes_adds_every_value() {
        let values: Vec<f32> = (1..=37).map(|v| v as f32).collect();
        assert_eq!(sum_lanes(&values), 703.0);
        assert_eq!(sum_lanes(&[]), 0.0);
    }
}
