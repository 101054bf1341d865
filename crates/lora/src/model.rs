//! The Llama forward pass with LoRA, written with differentiable candle ops only.
//!
//! Owns [`BaseModel`] (frozen weights loaded from a model folder's safetensors, f32) and
//! [`Adapter`] (the trainable LoRA pairs) and the forward/loss computation.
//! Must never: use candle's fused `softmax_last_dim`, `rms_norm`, `layer_norm` or `rope` ops —
//! in candle 0.11.1 they silently stop gradients (candle issues #2168, #3568, #3569); RMSNorm,
//! RoPE and softmax here are built from primitive ops. Base weights never become `Var`s.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{CpuStorage, CustomOp1, D, DType, Device, Layout, Shape, Tensor, Var};

use crate::config::{LlamaConfig, LoraConfig};
use crate::rng::SplitMix64;
use crate::{Error, Result};

/// `x · Wᵀ` for a frozen `W` whose backward computes only the input gradient. candle's own
/// matmul backward always computes the weight gradient too, which for frozen weights is pure
/// waste (a third of the training FLOPs).
struct FrozenLinear {
    weight: Tensor,
}

impl CustomOp1 for FrozenLinear {
    fn name(&self) -> &'static str {
        "frozen-linear"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (start, end) = layout.contiguous_offsets().ok_or_else(|| {
            candle_core::Error::Msg("frozen-linear input must be contiguous".into())
        })?;
        let data = &storage.as_slice::<f32>()?[start..end];
        let x = Tensor::from_slice(data, layout.shape(), &Device::Cpu)?;
        let y = x.matmul(&self.weight.t()?)?;
        let shape = y.shape().clone();
        Ok((CpuStorage::F32(y.flatten_all()?.to_vec1::<f32>()?), shape))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(grad_res.matmul(&self.weight)?))
    }
}

/// `x [n, in] · Wᵀ` with `W [out, in]` frozen.
fn frozen_linear(x: &Tensor, weight: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == DType::F32 && x.track_op() {
        Ok(x.contiguous()?.apply_op1(FrozenLinear {
            weight: weight.clone(),
        })?)
    } else {
        Ok(x.matmul(&weight.t()?)?)
    }
}

struct Layer {
    input_norm: Tensor,
    post_norm: Tensor,
    /// q, k, v, o, gate, up, down in [`crate::config::LLAMA_MODULES`] order.
    proj: [Tensor; 7],
}

/// A frozen Llama causal LM (f32).
pub struct BaseModel {
    config: LlamaConfig,
    embed: Tensor,
    layers: Vec<Layer>,
    norm: Tensor,
    lm_head: Tensor,
    device: Device,
}

impl std::fmt::Debug for BaseModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BaseModel")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl BaseModel {
    /// Loads the weights of `config` from the `*.safetensors` files in `dir`.
    ///
    /// # Errors
    /// [`Error::ModelFolder`] naming a missing tensor or a wrong shape.
    pub fn load(dir: &Path, config: LlamaConfig, device: &Device) -> Result<Self> {
        let mut tensors: HashMap<String, Tensor> = HashMap::new();
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| Error::ModelFolder(format!("cannot list {}: {e}", dir.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(Error::ModelFolder(format!(
                "{} has no *.safetensors weights: expected a Hugging Face model folder (config.json, model.safetensors, tokenizer.json)",
                dir.display()
            )));
        }
        for file in files {
            let loaded = candle_core::safetensors::load(&file, device)
                .map_err(|e| Error::ModelFolder(format!("cannot read {}: {e}", file.display())))?;
            tensors.extend(loaded);
        }
        let mut take = |name: &str, shape: &[usize]| -> Result<Tensor> {
            let t = tensors.remove(name).ok_or_else(|| {
                Error::ModelFolder(format!(
                    "the weights have no tensor {name}: expected a Llama checkpoint in Hugging Face naming"
                ))
            })?;
            if t.dims() != shape {
                return Err(Error::ModelFolder(format!(
                    "tensor {name} has shape {:?}, config.json implies {shape:?}",
                    t.dims()
                )));
            }
            Ok(t.to_dtype(DType::F32)?)
        };
        let c = &config;
        let h = c.hidden_size;
        let embed = take("model.embed_tokens.weight", &[c.vocab_size, h])?;
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for i in 0..c.num_hidden_layers {
            let mut proj = Vec::with_capacity(7);
            for m in crate::config::LLAMA_MODULES {
                let (fan_in, out) = c.module_shape(m).expect("known module");
                proj.push(take(
                    &format!("{}.weight", LlamaConfig::module_path(i, m)),
                    &[out, fan_in],
                )?);
            }
            layers.push(Layer {
                input_norm: take(&format!("model.layers.{i}.input_layernorm.weight"), &[h])?,
                post_norm: take(
                    &format!("model.layers.{i}.post_attention_layernorm.weight"),
                    &[h],
                )?,
                proj: proj.try_into().expect("seven projections"),
            });
        }
        let norm = take("model.norm.weight", &[h])?;
        let lm_head = if c.tie_word_embeddings {
            embed.clone()
        } else {
            take("lm_head.weight", &[c.vocab_size, h])?
        };
        Ok(BaseModel {
            config,
            embed,
            layers,
            norm,
            lm_head,
            device: device.clone(),
        })
    }

    /// The architecture.
    #[must_use]
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// The device the weights live on.
    #[must_use]
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Layer `layer`'s q, k, v, o, gate, up, down weights (`[out, in]`).
    pub(crate) fn projections(&self, layer: usize) -> &[Tensor; 7] {
        &self.layers[layer].proj
    }

    /// Layer `layer`'s input and post-attention RMSNorm weights.
    pub(crate) fn norms(&self, layer: usize) -> (&Tensor, &Tensor) {
        let l = &self.layers[layer];
        (&l.input_norm, &l.post_norm)
    }

    /// The token embedding `[vocab, hidden]`.
    pub(crate) fn embedding(&self) -> &Tensor {
        &self.embed
    }

    /// The final RMSNorm weight.
    pub(crate) fn final_norm(&self) -> &Tensor {
        &self.norm
    }

    /// The LM head `[vocab, hidden]` (the embedding when tied).
    pub(crate) fn lm_head(&self) -> &Tensor {
        &self.lm_head
    }

    /// Number of base parameters.
    #[must_use]
    pub fn parameter_count(&self) -> usize {
        let mut n = self.embed.elem_count() + self.norm.elem_count();
        if !self.config.tie_word_embeddings {
            n += self.lm_head.elem_count();
        }
        for l in &self.layers {
            n += l.input_norm.elem_count() + l.post_norm.elem_count();
            n += l.proj.iter().map(Tensor::elem_count).sum::<usize>();
        }
        n
    }

    fn rope_tables(&self, seq: usize) -> Result<(Tensor, Tensor)> {
        let d = self.config.head_dim();
        let half = d / 2;
        let theta = self.config.rope_theta;
        let mut cos = Vec::with_capacity(seq * d);
        let mut sin = Vec::with_capacity(seq * d);
        for pos in 0..seq {
            for _ in 0..2 {
                for i in 0..half {
                    let inv = theta.powf(-((2 * i) as f64) / d as f64);
                    let angle = pos as f64 * inv;
                    cos.push(angle.cos() as f32);
                    sin.push(angle.sin() as f32);
                }
            }
        }
        Ok((
            Tensor::from_vec(cos, (1, 1, seq, d), &self.device)?,
            Tensor::from_vec(sin, (1, 1, seq, d), &self.device)?,
        ))
    }

    /// Logits `[batch, seq, vocab]` for token ids `[batch, seq]`, with `adapter` applied
    /// (`None`: the base model). `dropout` draws the LoRA dropout masks (training only).
    ///
    /// # Errors
    /// [`Error::Tensor`] on a shape or device mismatch.
    pub fn forward(
        &self,
        ids: &Tensor,
        adapter: Option<&Adapter>,
        mut dropout: Option<&mut SplitMix64>,
    ) -> Result<Tensor> {
        let c = &self.config;
        let (b, t) = ids.dims2()?;
        let (h, heads, kv_heads, hd) = (
            c.hidden_size,
            c.num_attention_heads,
            c.num_key_value_heads,
            c.head_dim(),
        );
        let (cos, sin) = self.rope_tables(t)?;
        let mask: Vec<f32> = (0..t)
            .flat_map(|i| (0..t).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
            .collect();
        let mask = Tensor::from_vec(mask, (1, 1, t, t), &self.device)?;
        let scale = 1.0 / (hd as f64).sqrt();
        let mut x = self.embed.index_select(&ids.flatten_all()?, 0)?; // [b*t, h]
        for (i, layer) in self.layers.iter().enumerate() {
            let lin =
                |x: &Tensor, m: usize, drop: &mut Option<&mut SplitMix64>| -> Result<Tensor> {
                    let y = frozen_linear(x, &layer.proj[m])?;
                    match adapter.and_then(|a| a.pair(i, m)) {
                        None => Ok(y),
                        Some((a, bm)) => {
                            let scale = adapter.map_or(1.0, |a| a.config.scale());
                            let p = adapter.map_or(0.0, |a| a.config.dropout);
                            let input = match drop.as_deref_mut() {
                                Some(rng) if p > 0.0 => dropout_mask(x, p, rng)?,
                                _ => x.clone(),
                            };
                            let delta = input.matmul(&a.t()?)?.matmul(&bm.t()?)?;
                            Ok((y + (delta * scale)?)?)
                        }
                    }
                };
            let normed = rms_norm(&x, &layer.input_norm, c.rms_norm_eps)?;
            let q = lin(&normed, 0, &mut dropout)?;
            let k = lin(&normed, 1, &mut dropout)?;
            let v = lin(&normed, 2, &mut dropout)?;
            let q = q
                .reshape((b, t, heads, hd))?
                .transpose(1, 2)?
                .contiguous()?;
            let k = k
                .reshape((b, t, kv_heads, hd))?
                .transpose(1, 2)?
                .contiguous()?;
            let v = v
                .reshape((b, t, kv_heads, hd))?
                .transpose(1, 2)?
                .contiguous()?;
            let q = rope(&q, &cos, &sin)?;
            let k = rope(&k, &cos, &sin)?;
            let (k, v) = if heads == kv_heads {
                (k, v)
            } else {
                let rep = heads / kv_heads;
                let expand = |x: Tensor| -> Result<Tensor> {
                    Ok(x.unsqueeze(2)?
                        .broadcast_as((b, kv_heads, rep, t, hd))?
                        .reshape((b, heads, t, hd))?)
                };
                (expand(k)?, expand(v)?)
            };
            let scores = (q.matmul(&k.t()?.contiguous()?)? * scale)?.broadcast_add(&mask)?;
            let probs = softmax_last(&scores)?;
            let att = probs.matmul(&v)?.transpose(1, 2)?.reshape((b * t, h))?;
            x = (x + lin(&att, 3, &mut dropout)?)?;
            let normed = rms_norm(&x, &layer.post_norm, c.rms_norm_eps)?;
            let gate = lin(&normed, 4, &mut dropout)?;
            let up = lin(&normed, 5, &mut dropout)?;
            let act = (gate.silu()? * up)?;
            x = (x + lin(&act, 6, &mut dropout)?)?;
        }
        let x = rms_norm(&x, &self.norm, c.rms_norm_eps)?;
        let logits = frozen_linear(&x, &self.lm_head)?;
        Ok(logits.reshape((b, t, c.vocab_size))?)
    }

    /// Mean cross-entropy over the positions where `mask` is 1: `logits [b, t, v]` predict
    /// `targets [b, t]` (u32); `mask [b, t]` (f32). Returns the scalar loss and the number of
    /// counted positions.
    ///
    /// # Errors
    /// [`Error::Tensor`] on a shape mismatch; [`Error::InvalidConfig`] when nothing is counted.
    pub fn masked_loss(logits: &Tensor, targets: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (b, t, v) = logits.dims3()?;
        let logits = logits.reshape((b * t, v))?;
        let max = logits.max_keepdim(1)?.detach();
        let shifted = logits.broadcast_sub(&max)?;
        let log_z = shifted.exp()?.sum_keepdim(1)?.log()?;
        let picked = shifted.gather(&targets.reshape((b * t, 1))?, 1)?;
        let nll = (log_z - picked)?.reshape((b * t,))?;
        let mask = mask.reshape((b * t,))?;
        let count = mask.sum_all()?;
        Ok((nll * mask)?.sum_all()?.broadcast_div(&count)?)
    }
}

/// RMSNorm from primitive ops (candle's fused `rms_norm` stops gradients).
fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor> {
    let mean_sq = x.sqr()?.mean_keepdim(D::Minus1)?;
    let inv = (mean_sq + eps)?.sqrt()?.recip()?;
    Ok(x.broadcast_mul(&inv)?.broadcast_mul(weight)?)
}

/// RoPE in Hugging Face's rotate-half layout, from primitive ops (candle's fused `rope` stops
/// gradients). `x [b, heads, t, d]`, `cos`/`sin` `[1, 1, t, d]`.
fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let d = x.dim(D::Minus1)?;
    let x1 = x.narrow(D::Minus1, 0, d / 2)?;
    let x2 = x.narrow(D::Minus1, d / 2, d / 2)?;
    let rotated = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
    Ok((x.broadcast_mul(cos)? + rotated.broadcast_mul(sin)?)?)
}

/// Softmax over the last dim from primitive ops (candle's fused `softmax_last_dim` stops
/// gradients). The max is a constant shift, so it is detached.
fn softmax_last(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    let sum = e.sum_keepdim(D::Minus1)?;
    Ok(e.broadcast_div(&sum)?)
}

/// Inverted dropout with masks drawn from the run's seeded generator (candle's dropout draws
/// from an unseeded generator, which would break determinism).
fn dropout_mask(x: &Tensor, p: f64, rng: &mut SplitMix64) -> Result<Tensor> {
    let keep = 1.0 / (1.0 - p);
    let mask: Vec<f32> = (0..x.elem_count())
        .map(|_| if rng.next_f64() < p { 0.0 } else { keep as f32 })
        .collect();
    let mask = Tensor::from_vec(mask, x.shape(), x.device())?;
    Ok((x * mask)?)
}

/// The LoRA pairs of one adapter: per `(layer, module)`, `A [r, in]` and `B [out, r]`.
pub struct Adapter {
    config: LoraConfig,
    /// Keyed by (layer, module index in [`crate::config::LLAMA_MODULES`]).
    pairs: BTreeMap<(usize, usize), (Var, Var)>,
}

impl std::fmt::Debug for Adapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Adapter")
            .field("config", &self.config)
            .field("pairs", &self.pairs.len())
            .finish()
    }
}

impl Adapter {
    /// A fresh adapter: `A` uniform in ±1/√in (PEFT's Kaiming-uniform bound), `B` zero, so the
    /// adapted model starts equal to the base model.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a bad LoRA config.
    pub fn init(model: &BaseModel, config: &LoraConfig, rng: &mut SplitMix64) -> Result<Self> {
        config.validate()?;
        let mut pairs = BTreeMap::new();
        for layer in 0..model.config.num_hidden_layers {
            for (m, name) in crate::config::LLAMA_MODULES.iter().enumerate() {
                if !config.target_modules.iter().any(|t| t == name) {
                    continue;
                }
                let (fan_in, out) = model.config.module_shape(name).expect("known module");
                let bound = 1.0 / (fan_in as f64).sqrt();
                let a: Vec<f32> = (0..config.rank * fan_in)
                    .map(|_| ((rng.next_f64() * 2.0 - 1.0) * bound) as f32)
                    .collect();
                let a =
                    Var::from_tensor(&Tensor::from_vec(a, (config.rank, fan_in), &model.device)?)?;
                let b = Var::zeros((out, config.rank), DType::F32, &model.device)?;
                pairs.insert((layer, m), (a, b));
            }
        }
        Ok(Adapter {
            config: config.clone(),
            pairs,
        })
    }

    /// An adapter from its tensors keyed by PEFT name.
    ///
    /// # Errors
    /// [`Error::Adapter`] for a missing tensor or a wrong shape.
    pub fn from_peft_tensors(
        model: &BaseModel,
        config: &LoraConfig,
        tensors: &HashMap<String, Tensor>,
    ) -> Result<Self> {
        config.validate()?;
        let mut pairs = BTreeMap::new();
        for layer in 0..model.config.num_hidden_layers {
            for (m, name) in crate::config::LLAMA_MODULES.iter().enumerate() {
                if !config.target_modules.iter().any(|t| t == name) {
                    continue;
                }
                let (fan_in, out) = model.config.module_shape(name).expect("known module");
                let (a_name, b_name) = peft_names(layer, name);
                let get = |n: &str, shape: [usize; 2]| -> Result<Var> {
                    let t = tensors
                        .get(n)
                        .ok_or_else(|| Error::Adapter(format!("adapter has no tensor {n}")))?;
                    if t.dims() != shape {
                        return Err(Error::Adapter(format!(
                            "adapter tensor {n} has shape {:?}, expected {shape:?}",
                            t.dims()
                        )));
                    }
                    Ok(Var::from_tensor(
                        &t.to_dtype(DType::F32)?.to_device(&model.device)?,
                    )?)
                };
                pairs.insert(
                    (layer, m),
                    (
                        get(&a_name, [config.rank, fan_in])?,
                        get(&b_name, [out, config.rank])?,
                    ),
                );
            }
        }
        Ok(Adapter {
            config: config.clone(),
            pairs,
        })
    }

    fn pair(&self, layer: usize, module: usize) -> Option<(&Tensor, &Tensor)> {
        self.pairs
            .get(&(layer, module))
            .map(|(a, b)| (a.as_tensor(), b.as_tensor()))
    }

    /// Every pair as `((layer, module), A, B)`, in the order of [`Adapter::vars`].
    pub(crate) fn pair_vars(&self) -> impl Iterator<Item = ((usize, usize), &Var, &Var)> {
        self.pairs.iter().map(|(&key, (a, b))| (key, a, b))
    }

    /// The LoRA config.
    #[must_use]
    pub fn config(&self) -> &LoraConfig {
        &self.config
    }

    /// Every trainable variable, in a fixed order.
    #[must_use]
    pub fn vars(&self) -> Vec<Var> {
        self.pairs
            .values()
            .flat_map(|(a, b)| [a.clone(), b.clone()])
            .collect()
    }

    /// Number of trainable parameters.
    #[must_use]
    pub fn parameter_count(&self) -> usize {
        self.pairs
            .values()
            .map(|(a, b)| a.elem_count() + b.elem_count())
            .sum()
    }

    /// The tensors under PEFT's names (`base_model.model.<module>.lora_A.weight` `[r, in]`,
    /// `…lora_B.weight` `[out, r]`).
    #[must_use]
    pub fn peft_tensors(&self) -> BTreeMap<String, Tensor> {
        let mut out = BTreeMap::new();
        for (&(layer, m), (a, b)) in &self.pairs {
            let (a_name, b_name) = peft_names(layer, crate::config::LLAMA_MODULES[m]);
            out.insert(a_name, a.as_tensor().clone());
            out.insert(b_name, b.as_tensor().clone());
        }
        out
    }
}

/// PEFT's names of the A and B matrices of one module.
#[must_use]
pub fn peft_names(layer: usize, module: &str) -> (String, String) {
    let path = LlamaConfig::module_path(layer, module);
    (
        format!("base_model.model.{path}.lora_A.weight"),
        format!("base_model.model.{path}.lora_B.weight"),
    )
}
