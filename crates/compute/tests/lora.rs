//! The `lora` trainer behind the node's `Trainer` trait, on the deterministic tiny fixture
//! model: the result tar, its PEFT files (checked by Python's `safetensors` too), the metrics,
//! and refusing bad configuration when the node starts.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use licen_compute::Trainer;
use licen_compute::lora::{ADAPTER_TAR_MEDIA_TYPE, LoraTrainer, TrainerArgs};
use licen_lora::{TrainConfig, fixture};

fn dataset(dir: &Path, n: usize) -> PathBuf {
    let lines: String = (0..n)
        .map(|i| {
            serde_json::json!({"prompt": format!("double {i}:"), "completion": format!(" {}", 2 * i)})
                .to_string()
                + "\n"
        })
        .collect();
    let path = dir.join("d.jsonl");
    std::fs::write(&path, lines).unwrap();
    path
}

fn untar(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = tar::Archive::new(bytes);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (name, data)
        })
        .collect()
}

fn python() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let venv = root.join("tools/.venv/bin/python");
    venv.is_file().then_some(venv)
}

#[test]
fn lora_trainer_delivers_a_peft_adapter_tar() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny-llama");
    fixture::write_model(&model, &fixture::tiny_config(), 3).unwrap();
    let config = TrainConfig {
        learning_rate: 1e-2,
        batch_size: 8,
        ..TrainConfig::default()
    };
    let mut trainer = LoraTrainer::open(&model, None, config, None).unwrap();
    let tc = trainer.config();
    assert_eq!(tc.name, "lora");
    assert!(tc.produces_weights);
    assert_eq!(tc.params["model"]["name"], "tiny-llama");
    assert_eq!(tc.params["lora"]["r"], 8);
    assert!(tc.params["model"]["sha256"].as_str().unwrap().len() == 66);

    let data = dataset(dir.path(), 40);
    let mut epochs_seen = Vec::new();
    let out = trainer
        .train(&data, 2, &mut |p| epochs_seen.push(p.epoch))
        .unwrap();
    assert_eq!(out.actual_epochs, 2);
    assert_eq!(out.result_media_type, ADAPTER_TAR_MEDIA_TYPE);
    assert!(epochs_seen.contains(&1) && epochs_seen.contains(&2));
    assert_eq!(out.metrics["epochs_run"], 2);
    assert_eq!(out.metrics["usable_records"], 40);
    assert!(out.metrics["eval_loss"].is_string());
    // Metrics are integers, strings and booleans only (canonical encoding).
    for (k, v) in out.metrics.as_object().unwrap() {
        assert!(!v.is_f64(), "metric {k} is a float");
    }

    let files = untar(&out.result);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "adapter_config.json",
            "adapter_model.safetensors",
            "training_report.json"
        ]
    );
    let config: serde_json::Value = serde_json::from_slice(&files[0].1).unwrap();
    assert_eq!(config["peft_type"], "LORA");
    assert_eq!(config["base_model_name_or_path"], "tiny-llama");
    let report: serde_json::Value = serde_json::from_slice(&files[2].1).unwrap();
    assert_eq!(report["report"]["epochs_completed"], 2);
    assert_eq!(
        report["report"]["loss_curve"].as_array().unwrap().len() as u64,
        2 * report["report"]["train_examples"]
            .as_u64()
            .unwrap()
            .div_ceil(8)
    );

    // Python's safetensors reads the adapter; names and shapes match the base model.
    let adapter_dir = dir.path().join("adapter");
    std::fs::create_dir(&adapter_dir).unwrap();
    for (name, data) in &files {
        std::fs::write(adapter_dir.join(name), data).unwrap();
    }
    match python() {
        None => eprintln!(
            "SKIPPED the Python safetensors check: tools/.venv is missing (run `cargo xtask python` to install the pinned packages)"
        ),
        Some(py) => {
            let script =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/python/check_adapter.py");
            let out = std::process::Command::new(py)
                .arg(script)
                .arg(&adapter_dir)
                .arg(&model)
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(stdout.contains("adapter ok: 42 tensors"), "{stdout}");
            println!("{stdout}");
        }
    }
}

#[test]
fn time_budget_delivers_only_completed_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m");
    fixture::write_model(&model, &fixture::tiny_config(), 3).unwrap();
    // A zero budget stops before the first step: no epoch completed, the job fails (refund).
    let mut trainer =
        LoraTrainer::open(&model, None, TrainConfig::default(), Some(Duration::ZERO)).unwrap();
    let err = trainer
        .train(&dataset(dir.path(), 8), 2, &mut |_| {})
        .unwrap_err();
    assert!(
        err.to_string().contains("before the first epoch completed"),
        "{err}"
    );
}

#[test]
fn unusable_dataset_is_an_invalid_dataset_error() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m");
    fixture::write_model(&model, &fixture::tiny_config(), 3).unwrap();
    let mut trainer = LoraTrainer::open(&model, None, TrainConfig::default(), None).unwrap();
    let data = dir.path().join("bad.jsonl");
    std::fs::write(&data, "SECRET-LINE\n{\"nope\":1}\n").unwrap();
    let err = trainer.train(&data, 1, &mut |_| {}).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, licen_compute::trainer::TrainError::InvalidDataset(_)),
        "{msg}"
    );
    assert!(
        msg.contains("no usable record") && !msg.contains("SECRET"),
        "{msg}"
    );
}

#[test]
fn trainer_arguments_are_checked_at_start() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        trainer: TrainerArgs,
    }
    let parse = |args: &[&str]| {
        Cli::parse_from(std::iter::once("node").chain(args.iter().copied())).trainer
    };
    assert!(parse(&[]).factory().is_ok());
    let err = parse(&["--trainer", "lora"]).factory().err().unwrap();
    assert!(err.contains("needs --model"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let err = parse(&["--trainer", "lora", "--model", dir.path().to_str().unwrap()])
        .factory()
        .err()
        .unwrap();
    assert!(err.contains("no config.json"), "{err}");
    let err = parse(&["--trainer", "gpt"]).factory().err().unwrap();
    assert!(err.contains("unknown trainer"), "{err}");
    fixture::write_model(dir.path(), &fixture::tiny_config(), 1).unwrap();
    let err = parse(&[
        "--trainer",
        "lora",
        "--model",
        dir.path().to_str().unwrap(),
        "--lora-targets",
        "q_proj,wq",
    ])
    .factory()
    .err()
    .unwrap();
    assert!(err.contains("unknown LoRA target module \"wq\""), "{err}");
    let factory = parse(&[
        "--trainer",
        "lora",
        "--model",
        dir.path().to_str().unwrap(),
        "--lora-rank",
        "4",
    ])
    .factory()
    .unwrap();
    assert_eq!(factory().config().params["lora"]["r"], 4);
}
