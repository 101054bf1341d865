//! The base model's `config.json` (Llama architecture only) and the LoRA and training
//! hyper-parameters.
//!
//! Owns parsing and validating a Hugging Face Llama config into [`LlamaConfig`]; refuses any
//! other architecture with a sentence naming what was found and what is supported.
//! Must never: guess a value the model folder does not state unless Hugging Face documents the
//! same default (`num_key_value_heads` = heads, `rope_theta` = 10000, untied embeddings).

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The Llama modules LoRA can target, in PEFT's names.
pub const LLAMA_MODULES: [&str; 7] = [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];

/// The architecture of a Llama-family causal LM, as read from `config.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the MLP.
    pub intermediate_size: usize,
    /// Number of decoder layers.
    pub num_hidden_layers: usize,
    /// Number of query heads.
    pub num_attention_heads: usize,
    /// Number of key/value heads (grouped-query attention).
    pub num_key_value_heads: usize,
    /// Size of the vocabulary.
    pub vocab_size: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// RoPE base.
    pub rope_theta: f64,
    /// Longest sequence the model was trained for.
    pub max_position_embeddings: usize,
    /// Whether the LM head reuses the token embedding.
    pub tie_word_embeddings: bool,
    /// Beginning-of-sequence token, if the model has one.
    pub bos_token_id: Option<u32>,
    /// End-of-sequence token, if the model has one.
    pub eos_token_id: Option<u32>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(u32),
    Many(Vec<u32>),
}

#[derive(Deserialize)]
struct RawConfig {
    architectures: Option<Vec<String>>,
    model_type: Option<String>,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    vocab_size: usize,
    rms_norm_eps: Option<f64>,
    rope_theta: Option<f64>,
    max_position_embeddings: Option<usize>,
    tie_word_embeddings: Option<bool>,
    bos_token_id: Option<OneOrMany>,
    eos_token_id: Option<OneOrMany>,
    hidden_act: Option<String>,
    rope_scaling: Option<serde_json::Value>,
    head_dim: Option<usize>,
    attention_bias: Option<bool>,
    mlp_bias: Option<bool>,
}

fn first(v: Option<OneOrMany>) -> Option<u32> {
    match v? {
        OneOrMany::One(id) => Some(id),
        OneOrMany::Many(ids) => ids.first().copied(),
    }
}

impl LlamaConfig {
    /// Parses and checks a `config.json`.
    ///
    /// # Errors
    /// [`Error::UnsupportedModel`] for anything but a plain Llama causal LM; [`Error::ModelFolder`]
    /// when the JSON is not a model config.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let raw: RawConfig = serde_json::from_slice(bytes).map_err(|e| {
            Error::ModelFolder(format!(
                "config.json is not a Hugging Face model config ({e}): expected hidden_size, intermediate_size, num_hidden_layers, num_attention_heads and vocab_size"
            ))
        })?;
        let unsupported = |what: String| Err(Error::UnsupportedModel(what));
        let arch_ok = raw
            .architectures
            .as_ref()
            .is_none_or(|a| a.iter().any(|a| a == "LlamaForCausalLM"));
        let type_ok = raw.model_type.as_deref().is_none_or(|t| t == "llama");
        if !arch_ok || !type_ok {
            return unsupported(format!(
                "architecture {:?} (model_type {:?}); only LlamaForCausalLM (model_type \"llama\") is supported",
                raw.architectures.unwrap_or_default(),
                raw.model_type.unwrap_or_default()
            ));
        }
        if let Some(act) = raw.hidden_act.as_deref()
            && act != "silu"
        {
            return unsupported(format!("hidden_act {act:?}; only \"silu\" is supported"));
        }
        if raw.rope_scaling.as_ref().is_some_and(|v| !v.is_null()) {
            return unsupported(
                "rope_scaling is set; only plain RoPE (rope_scaling null) is supported".into(),
            );
        }
        if raw.attention_bias == Some(true) || raw.mlp_bias == Some(true) {
            return unsupported(
                "attention_bias/mlp_bias; only bias-free Llama layers are supported".into(),
            );
        }
        let heads = raw.num_attention_heads;
        if heads == 0 || !raw.hidden_size.is_multiple_of(heads) {
            return unsupported(format!(
                "hidden_size {} is not a multiple of num_attention_heads {heads}",
                raw.hidden_size
            ));
        }
        let head_dim = raw.hidden_size / heads;
        if raw.head_dim.is_some_and(|d| d != head_dim) || !head_dim.is_multiple_of(2) {
            return unsupported(format!(
                "head_dim {:?} (hidden_size / heads = {head_dim}); only an even head_dim of hidden_size / num_attention_heads is supported",
                raw.head_dim
            ));
        }
        let kv = raw.num_key_value_heads.unwrap_or(heads);
        if kv == 0 || !heads.is_multiple_of(kv) {
            return unsupported(format!(
                "num_key_value_heads {kv} does not divide num_attention_heads {heads}"
            ));
        }
        Ok(LlamaConfig {
            hidden_size: raw.hidden_size,
            intermediate_size: raw.intermediate_size,
            num_hidden_layers: raw.num_hidden_layers,
            num_attention_heads: heads,
            num_key_value_heads: kv,
            vocab_size: raw.vocab_size,
            rms_norm_eps: raw.rms_norm_eps.unwrap_or(1e-6),
            rope_theta: raw.rope_theta.unwrap_or(10_000.0),
            max_position_embeddings: raw.max_position_embeddings.unwrap_or(2048),
            tie_word_embeddings: raw.tie_word_embeddings.unwrap_or(false),
            bos_token_id: first(raw.bos_token_id),
            eos_token_id: first(raw.eos_token_id),
        })
    }

    /// The `config.json` Hugging Face writes for this config.
    #[must_use]
    pub fn to_hf_json(&self) -> serde_json::Value {
        serde_json::json!({
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_act": "silu",
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "vocab_size": self.vocab_size,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "rope_scaling": null,
            "max_position_embeddings": self.max_position_embeddings,
            "tie_word_embeddings": self.tie_word_embeddings,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "torch_dtype": "float32",
        })
    }

    /// Size of one attention head.
    #[must_use]
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// `(in, out)` features of a target module.
    #[must_use]
    pub fn module_shape(&self, module: &str) -> Option<(usize, usize)> {
        let h = self.hidden_size;
        let kv = self.num_key_value_heads * self.head_dim();
        let i = self.intermediate_size;
        Some(match module {
            "q_proj" | "o_proj" => (h, h),
            "k_proj" | "v_proj" => (h, kv),
            "gate_proj" | "up_proj" => (h, i),
            "down_proj" => (i, h),
            _ => return None,
        })
    }

    /// The module path of a projection (`model.layers.<i>.self_attn.q_proj`).
    #[must_use]
    pub fn module_path(layer: usize, module: &str) -> String {
        let block = if matches!(module, "gate_proj" | "up_proj" | "down_proj") {
            "mlp"
        } else {
            "self_attn"
        };
        format!("model.layers.{layer}.{block}.{module}")
    }
}

/// LoRA hyper-parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoraConfig {
    /// Rank `r`.
    pub rank: usize,
    /// Scaling numerator: the update is `(alpha / r) · B·A`.
    pub alpha: f64,
    /// Dropout on the LoRA input while training.
    pub dropout: f64,
    /// Target module names (subset of [`LLAMA_MODULES`]).
    pub target_modules: Vec<String>,
}

impl Default for LoraConfig {
    fn default() -> Self {
        LoraConfig {
            rank: 8,
            alpha: 16.0,
            dropout: 0.05,
            target_modules: LLAMA_MODULES.iter().map(|m| (*m).to_string()).collect(),
        }
    }
}

impl LoraConfig {
    /// Checks rank, dropout and target names.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the bad value and the allowed range.
    pub fn validate(&self) -> Result<()> {
        if self.rank == 0 {
            return Err(Error::InvalidConfig("LoRA rank must be at least 1".into()));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::InvalidConfig(format!(
                "LoRA dropout {} must be in [0, 1)",
                self.dropout
            )));
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(Error::InvalidConfig("LoRA alpha must be positive".into()));
        }
        if self.target_modules.is_empty() {
            return Err(Error::InvalidConfig(
                "LoRA needs at least one target module".into(),
            ));
        }
        for m in &self.target_modules {
            if !LLAMA_MODULES.contains(&m.as_str()) {
                return Err(Error::InvalidConfig(format!(
                    "unknown LoRA target module {m:?}; expected some of {LLAMA_MODULES:?}"
                )));
            }
        }
        Ok(())
    }

    /// `alpha / r`.
    #[must_use]
    pub fn scale(&self) -> f64 {
        self.alpha / self.rank as f64
    }
}

/// Optimisation hyper-parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// LoRA shape.
    pub lora: LoraConfig,
    /// Peak learning rate (AdamW).
    pub learning_rate: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Linear warm-up, as a fraction of all optimiser steps; cosine decay to 0 after.
    pub warmup_ratio: f64,
    /// Records per micro-batch.
    pub batch_size: usize,
    /// Micro-batches per optimiser step.
    pub gradient_accumulation: usize,
    /// Longer records are truncated to this many tokens (and counted).
    pub max_seq_len: usize,
    /// Fraction of usable records held out for the per-epoch eval loss (at least one record
    /// when there are two or more).
    pub eval_fraction: f64,
    /// Seed of the split, the shuffles, the LoRA init and dropout.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            lora: LoraConfig::default(),
            learning_rate: 2e-4,
            weight_decay: 0.0,
            warmup_ratio: 0.1,
            batch_size: 4,
            gradient_accumulation: 1,
            max_seq_len: 512,
            eval_fraction: 0.1,
            seed: 42,
        }
    }
}

impl TrainConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the bad value.
    pub fn validate(&self) -> Result<()> {
        self.lora.validate()?;
        let bad = |m: String| Err(Error::InvalidConfig(m));
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad(format!(
                "learning rate {} must be positive",
                self.learning_rate
            ));
        }
        if !(0.0..1.0).contains(&self.warmup_ratio) {
            return bad(format!(
                "warmup ratio {} must be in [0, 1)",
                self.warmup_ratio
            ));
        }
        if !(0.0..0.5).contains(&self.eval_fraction) {
            return bad(format!(
                "eval fraction {} must be in [0, 0.5)",
                self.eval_fraction
            ));
        }
        if self.batch_size == 0 || self.gradient_accumulation == 0 {
            return bad("batch size and gradient accumulation must be at least 1".into());
        }
        if self.max_seq_len < 2 {
            return bad("max sequence length must be at least 2 tokens".into());
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad("weight decay must be non-negative".into());
        }
        Ok(())
    }
}
