//! End-to-end tests of the LoRA trainer on the deterministic tiny fixture model.

use std::io::Cursor;

mod common;

use candle_core::Device;
use common::{counting_dataset, fast_config, run, tiny_folder};
use licen_lora::peft::{adapter_config_json, adapter_safetensors, read_adapter};
use licen_lora::train::eval_loss;
use licen_lora::{Error, Hooks, LoraConfig, ModelFolder, TrainConfig, fixture, train};

#[test]
fn gradients_flow_through_attention_and_loss_decreases() {
    let (_dir, folder) = tiny_folder();
    // Only the query and key projections: their sole path to the loss is through RoPE and the
    // attention softmax, so a loss that falls proves those ops pass gradients.
    let config = TrainConfig {
        lora: LoraConfig {
            target_modules: vec!["q_proj".into(), "k_proj".into()],
            dropout: 0.0,
            ..LoraConfig::default()
        },
        learning_rate: 3e-2,
        warmup_ratio: 0.0,
        ..fast_config()
    };
    let out = run(&folder, &counting_dataset(48), 3, &config).unwrap();
    let r = &out.report;
    let first = r.loss_curve.first().unwrap().loss;
    let last = r.loss_curve.last().unwrap().loss;
    assert!(
        last < first - 0.05,
        "training loss did not fall through attention: {first} -> {last}"
    );
    // B starts at zero; it must have moved for every targeted projection.
    for (name, t) in out.adapter.peft_tensors() {
        if name.ends_with("lora_B.weight") {
            let norm = t
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(norm > 0.0, "{name} received no gradient");
        }
    }
}

#[test]
fn adapter_round_trips_as_peft_and_lowers_eval_loss() {
    let (_dir, folder) = tiny_folder();
    let data = counting_dataset(64);
    let out = run(&folder, &data, 2, &fast_config()).unwrap();
    let r = &out.report;
    assert_eq!(r.epochs_completed, 2);
    assert_eq!(r.epochs.len(), 2);
    let base = r.base_eval_loss.unwrap();
    let after = r.epochs[1].eval_loss.unwrap();
    assert!(after < base, "eval loss {after} not below base {base}");

    // The delivered files, read back: same names/shapes as the model implies, same effect.
    let config_json =
        serde_json::to_vec(&adapter_config_json(&out.adapter, folder.name())).unwrap();
    let weights = adapter_safetensors(&out.adapter).unwrap();
    let config: serde_json::Value = serde_json::from_slice(&config_json).unwrap();
    assert_eq!(config["peft_type"], "LORA");
    assert_eq!(config["task_type"], "CAUSAL_LM");
    assert_eq!(config["base_model_name_or_path"], "licen/tiny-llama");
    assert_eq!(config["bias"], "none");
    let loaded = read_adapter(folder.model(), &config_json, &weights).unwrap();
    let c = folder.model().config();
    let tensors = candle_core::safetensors::load_buffer(&weights, &Device::Cpu).unwrap();
    assert_eq!(tensors.len(), c.num_hidden_layers * 7 * 2);
    assert_eq!(
        tensors["base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight"].dims(),
        [8, c.hidden_size]
    );
    assert_eq!(
        tensors["base_model.model.model.layers.2.self_attn.k_proj.lora_B.weight"].dims(),
        [c.num_key_value_heads * c.head_dim(), 8]
    );
    assert_eq!(
        tensors["base_model.model.model.layers.1.mlp.down_proj.lora_A.weight"].dims(),
        [8, c.intermediate_size]
    );

    // On fresh records of the training distribution, the adapter beats the base model.
    let (held_out, _) = licen_lora::data::read_examples(
        Cursor::new(counting_dataset(80).into_bytes()),
        folder.tokenizer(),
        64,
    )
    .unwrap();
    let base_loss = eval_loss(folder.model(), None, &held_out, 8)
        .unwrap()
        .unwrap();
    let adapted_loss = eval_loss(folder.model(), Some(&loaded), &held_out, 8)
        .unwrap()
        .unwrap();
    assert!(
        adapted_loss < base_loss - 0.1,
        "adapter {adapted_loss} vs base {base_loss}"
    );
}

#[test]
fn same_seed_same_adapter_other_seed_other_adapter() {
    let (_dir, folder) = tiny_folder();
    let data = counting_dataset(24);
    let config = TrainConfig {
        lora: LoraConfig {
            dropout: 0.1,
            ..LoraConfig::default()
        },
        ..fast_config()
    };
    let a = run(&folder, &data, 1, &config).unwrap();
    let b = run(&folder, &data, 1, &config).unwrap();
    assert_eq!(
        adapter_safetensors(&a.adapter).unwrap(),
        adapter_safetensors(&b.adapter).unwrap()
    );
    assert_eq!(a.report.loss_curve, b.report.loss_curve);
    let c = run(&folder, &data, 1, &TrainConfig { seed: 43, ..config }).unwrap();
    assert_ne!(
        adapter_safetensors(&a.adapter).unwrap(),
        adapter_safetensors(&c.adapter).unwrap()
    );
}

#[test]
fn truncated_and_skipped_records_are_counted() {
    let (_dir, folder) = tiny_folder();
    let long = "x".repeat(500);
    let data = [
        r#"{"text":"hello world"}"#.to_string(),
        format!(r#"{{"text":"{long}"}}"#),
        "not json at all".into(),
        r#"{"other":"shape"}"#.into(),
        r#"{"text":"   "}"#.into(),
        r#"{"prompt":"","completion":""}"#.into(),
        String::new(),
        format!(r#"{{"prompt":"{long}","completion":"never reached"}}"#),
        r#"{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}"#
            .into(),
        r#"{"messages":[]}"#.into(),
    ]
    .join("\n");
    let out = run(
        &folder,
        &data,
        1,
        &TrainConfig {
            max_seq_len: 64,
            ..fast_config()
        },
    )
    .unwrap();
    let s = &out.report.dataset;
    assert_eq!(s.lines, 9);
    assert_eq!(s.blank_lines, 1);
    assert_eq!(s.usable, 3, "{s:?}");
    assert_eq!(s.truncated, 2, "{s:?}");
    assert_eq!(s.skipped_malformed, 3, "{s:?}");
    assert_eq!(s.skipped_empty, 2, "{s:?}");
    assert_eq!(s.skipped_no_target, 1, "{s:?}");
    let report = serde_json::to_string(&out.report).unwrap();
    assert!(
        !report.contains("hello"),
        "the report must carry no content"
    );
}

#[test]
fn prompt_and_chat_prompts_are_masked() {
    let (_dir, folder) = tiny_folder();
    let data = concat!(
        r#"{"prompt":"ab","completion":"cd"}"#,
        "\n",
        r#"{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}]}"#,
        "\n"
    );
    let (ex, _) =
        licen_lora::data::read_examples(Cursor::new(data.as_bytes()), folder.tokenizer(), 64)
            .unwrap();
    // <s> a b | c d </s>
    assert_eq!(ex[0].ids, [fixture::BOS, 97, 98, 99, 100, fixture::EOS]);
    assert_eq!(ex[0].trained, [false, false, false, true, true, true]);
    // <s> "user: " "q\n" "assistant: " "a\n" </s>: only "a\n" and </s> are trained.
    let trained: Vec<u32> = ex[1]
        .ids
        .iter()
        .zip(&ex[1].trained)
        .filter(|(_, t)| **t)
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(trained, [97, 10, fixture::EOS]);
}

#[test]
fn no_usable_record_is_an_error() {
    let (_dir, folder) = tiny_folder();
    for data in ["", "\n\n", "garbage\n{\"x\":1}\n", "{\"text\":\"\"}\n"] {
        let err = run(&folder, data, 1, &fast_config()).unwrap_err();
        assert!(matches!(err, Error::NoUsableRecords(_)), "{err}");
    }
}

#[test]
fn stop_request_keeps_only_completed_epochs() {
    let (_dir, folder) = tiny_folder();
    let data = counting_dataset(32);
    let config = TrainConfig {
        batch_size: 4,
        eval_fraction: 0.0,
        ..fast_config()
    };
    // 8 steps per epoch; stop when asked before step 12 (mid epoch 2).
    let calls = std::cell::Cell::new(0u32);
    let stop = || {
        calls.set(calls.get() + 1);
        calls.get() > 11
    };
    let mut progress = |_| {};
    let out = train(
        &folder,
        Cursor::new(data.as_bytes()),
        3,
        &config,
        &mut Hooks {
            progress: &mut progress,
            should_stop: &stop,
        },
    )
    .unwrap();
    assert_eq!(out.completed_epochs(), 1);
    assert!(out.report.stopped_early);
    let stop_now = || true;
    let err = train(
        &folder,
        Cursor::new(data.as_bytes()),
        3,
        &config,
        &mut Hooks {
            progress: &mut progress,
            should_stop: &stop_now,
        },
    )
    .unwrap_err();
    assert!(matches!(err, Error::Stopped), "{err}");
}

#[test]
fn bad_model_folders_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let open = |p: &std::path::Path| {
        ModelFolder::open(p, None, &Device::Cpu)
            .unwrap_err()
            .to_string()
    };
    assert!(open(&dir.path().join("absent")).contains("not a directory"));
    fixture::write_model(dir.path(), &fixture::tiny_config(), 1).unwrap();

    std::fs::rename(dir.path().join("tokenizer.json"), dir.path().join("t.json")).unwrap();
    assert!(open(dir.path()).contains("no tokenizer.json"));
    std::fs::rename(dir.path().join("t.json"), dir.path().join("tokenizer.json")).unwrap();

    let config = std::fs::read(dir.path().join("config.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(&config).unwrap();
    v["architectures"] = serde_json::json!(["GPT2LMHeadModel"]);
    v["model_type"] = serde_json::json!("gpt2");
    std::fs::write(dir.path().join("config.json"), v.to_string()).unwrap();
    let msg = open(dir.path());
    assert!(
        msg.contains("unsupported model") && msg.contains("LlamaForCausalLM"),
        "{msg}"
    );

    let mut v: serde_json::Value = serde_json::from_slice(&config).unwrap();
    v["num_hidden_layers"] = serde_json::json!(4);
    std::fs::write(dir.path().join("config.json"), v.to_string()).unwrap();
    let msg = open(dir.path());
    assert!(msg.contains("model.layers.3"), "{msg}");

    std::fs::write(dir.path().join("config.json"), &config).unwrap();
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    assert!(open(dir.path()).contains("no *.safetensors"));
}
