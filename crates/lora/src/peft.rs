//! The PEFT adapter files: `adapter_config.json` and `adapter_model.safetensors`.
//!
//! Owns PEFT's names and layout (`base_model.model.<module path>.lora_A.weight` `[r, in]`,
//! `…lora_B.weight` `[out, r]`) and reading an adapter back for evaluation.
//! Must never: write files itself — it returns bytes; the caller decides where they go (the
//! compute node seals them, never writes them in the clear).

use std::collections::HashMap;

use candle_core::Tensor;

use crate::config::LoraConfig;
use crate::model::{Adapter, BaseModel};
use crate::{Error, Result};

/// File name of the adapter config.
pub const ADAPTER_CONFIG_FILE: &str = "adapter_config.json";
/// File name of the adapter weights.
pub const ADAPTER_WEIGHTS_FILE: &str = "adapter_model.safetensors";

/// `adapter_config.json` for `adapter` trained on the base model `base_model`.
#[must_use]
pub fn adapter_config_json(adapter: &Adapter, base_model: &str) -> serde_json::Value {
    let c = adapter.config();
    serde_json::json!({
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model,
        "r": c.rank,
        "lora_alpha": c.alpha,
        "lora_dropout": c.dropout,
        "target_modules": c.target_modules,
        "bias": "none",
        "fan_in_fan_out": false,
        "inference_mode": true,
        "init_lora_weights": true,
        "modules_to_save": null,
        "use_rslora": false,
        "use_dora": false,
    })
}

/// `adapter_model.safetensors` bytes (f32).
///
/// # Errors
/// [`Error::Adapter`] when serialisation fails.
pub fn adapter_safetensors(adapter: &Adapter) -> Result<Vec<u8>> {
    let tensors = adapter.peft_tensors();
    safetensors::serialize(tensors.iter().map(|(k, v)| (k.as_str(), v)), None)
        .map_err(|e| Error::Adapter(format!("serialising the adapter failed: {e}")))
}

/// Reads an adapter back from its two files' bytes, for `model`.
///
/// # Errors
/// [`Error::Adapter`] for a config or tensors that do not fit `model`.
pub fn read_adapter(model: &BaseModel, config_json: &[u8], weights: &[u8]) -> Result<Adapter> {
    let v: serde_json::Value = serde_json::from_slice(config_json)
        .map_err(|e| Error::Adapter(format!("adapter_config.json is not JSON: {e}")))?;
    if v["peft_type"] != "LORA" {
        return Err(Error::Adapter(
            "adapter_config.json: peft_type is not \"LORA\"".into(),
        ));
    }
    let config = LoraConfig {
        rank: v["r"]
            .as_u64()
            .ok_or_else(|| Error::Adapter("adapter_config.json: r missing".into()))?
            as usize,
        alpha: v["lora_alpha"]
            .as_f64()
            .ok_or_else(|| Error::Adapter("adapter_config.json: lora_alpha missing".into()))?,
        dropout: v["lora_dropout"].as_f64().unwrap_or(0.0),
        target_modules: serde_json::from_value(v["target_modules"].clone())
            .map_err(|e| Error::Adapter(format!("adapter_config.json: target_modules: {e}")))?,
    };
    let tensors: HashMap<String, Tensor> =
        candle_core::safetensors::load_buffer(weights, model.device())?;
    Adapter::from_peft_tensors(model, &config, &tensors)
}
