//! Deterministic Llama-architecture model folders for tests and benchmarks: random weights from
//! a seed, a byte-level BPE `tokenizer.json` (256 byte tokens + `<s>` + `</s>`, no merges).
//!
//! Owns the one place tests (of this crate, the compute node and the CLI) and the benchmark get
//! a model from; nothing is downloaded.
//! Must never: be presented as a useful model — its weights are noise.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};

use crate::Result;
use crate::config::{LLAMA_MODULES, LlamaConfig};
use crate::rng::SplitMix64;

/// Id of `<s>` in the fixture tokenizer.
pub const BOS: u32 = 256;
/// Id of `</s>` in the fixture tokenizer.
pub const EOS: u32 = 257;

/// The test model: about 350 thousand parameters, grouped-query attention (4 heads, 2 KV).
#[must_use]
pub fn tiny_config() -> LlamaConfig {
    LlamaConfig {
        hidden_size: 96,
        intermediate_size: 256,
        num_hidden_layers: 3,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        vocab_size: 258,
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        max_position_embeddings: 512,
        tie_word_embeddings: false,
        bos_token_id: Some(BOS),
        eos_token_id: Some(EOS),
    }
}

/// The benchmark model: about 10 million parameters.
#[must_use]
pub fn bench_config() -> LlamaConfig {
    LlamaConfig {
        hidden_size: 320,
        intermediate_size: 864,
        num_hidden_layers: 8,
        num_attention_heads: 8,
        num_key_value_heads: 4,
        ..tiny_config()
    }
}

/// GPT-2's byte → printable-char map used by byte-level BPE.
fn byte_chars() -> Vec<char> {
    let mut printable: Vec<u32> = (33..=126).chain(161..=172).chain(174..=255).collect();
    let mut chars: Vec<u32> = printable.clone();
    let mut extra = 0;
    for b in 0..=255u32 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + extra);
            extra += 1;
        }
    }
    let mut map = vec!['\0'; 256];
    for (b, c) in printable.iter().zip(chars) {
        map[*b as usize] = char::from_u32(c).expect("valid char");
    }
    map
}

/// The fixture's `tokenizer.json`.
#[must_use]
pub fn byte_tokenizer_json() -> serde_json::Value {
    let vocab: serde_json::Map<String, serde_json::Value> = byte_chars()
        .into_iter()
        .enumerate()
        .map(|(i, c)| (c.to_string(), serde_json::json!(i)))
        .chain([
            ("<s>".to_string(), serde_json::json!(BOS)),
            ("</s>".to_string(), serde_json::json!(EOS)),
        ])
        .collect();
    let special = |id: u32, content: &str| {
        serde_json::json!({"id": id, "content": content, "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": true})
    };
    serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [special(BOS, "<s>"), special(EOS, "</s>")],
        "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab, "merges": []}
    })
}

/// Writes a model folder for `config` with weights drawn from `seed` into `dir`
/// (`config.json`, `model.safetensors`, `tokenizer.json`). Same seed, same bytes.
///
/// # Errors
/// [`crate::Error::Io`] or [`crate::Error::Tensor`] when writing fails.
pub fn write_model(dir: &Path, config: &LlamaConfig, seed: u64) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut rng = SplitMix64::new(seed);
    let dev = Device::Cpu;
    // Uniform with std 0.02, like Hugging Face's default initializer_range.
    let bound = 0.02 * 3f64.sqrt();
    let mut random = |shape: &[usize]| -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| ((rng.next_f64() * 2.0 - 1.0) * bound) as f32)
            .collect();
        Ok(Tensor::from_vec(v, shape, &dev)?)
    };
    let h = config.hidden_size;
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    tensors.insert(
        "model.embed_tokens.weight".into(),
        random(&[config.vocab_size, h])?,
    );
    for i in 0..config.num_hidden_layers {
        for m in LLAMA_MODULES {
            let (fan_in, out) = config.module_shape(m).expect("known module");
            tensors.insert(
                format!("{}.weight", LlamaConfig::module_path(i, m)),
                random(&[out, fan_in])?,
            );
        }
        for norm in ["input_layernorm", "post_attention_layernorm"] {
            tensors.insert(
                format!("model.layers.{i}.{norm}.weight"),
                Tensor::ones(h, candle_core::DType::F32, &dev)?,
            );
        }
    }
    tensors.insert(
        "model.norm.weight".into(),
        Tensor::ones(h, candle_core::DType::F32, &dev)?,
    );
    if !config.tie_word_embeddings {
        tensors.insert("lm_head.weight".into(), random(&[config.vocab_size, h])?);
    }
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors"))?;
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_vec_pretty(&config.to_hf_json())?,
    )?;
    std::fs::write(
        dir.join("tokenizer.json"),
        serde_json::to_vec(&byte_tokenizer_json())?,
    )?;
    Ok(())
}
