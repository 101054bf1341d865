//! The trainer on a CUDA device: built only with the `cuda` feature (`cargo xtask check-cuda`
//! compiles it, `cargo xtask gpu-smoke` runs it). Trains the tiny fixture model on GPU 0 — the
//! composed model under candle's autograd, since the hand-written engine is CPU-only — and holds
//! it to the CPU run of the same seed. Without a usable GPU it prints why and returns.

mod common;

use candle_core::Device;
use common::{counting_dataset, fast_config, run, tiny_folder_on};
use licen_lora::peft::adapter_safetensors;
use licen_lora::{LoraConfig, TrainConfig};

#[test]
fn trains_on_the_gpu_like_on_the_cpu() {
    let gpu = match Device::new_cuda(0) {
        Ok(device) => device,
        Err(error) => {
            eprintln!("skipped: CUDA device 0 is not usable here: {error}");
            return;
        }
    };
    let (_gpu_dir, on_gpu) = tiny_folder_on(&gpu);
    assert!(
        on_gpu.model().device().is_cuda(),
        "the model did not load onto the GPU"
    );
    let (_cpu_dir, on_cpu) = tiny_folder_on(&Device::Cpu);
    // No dropout and no warm-up: the first optimiser step sees the same weights, adapter and
    // batches on both devices, so its loss must agree up to float reduction order.
    let config = TrainConfig {
        lora: LoraConfig {
            dropout: 0.0,
            ..LoraConfig::default()
        },
        warmup_ratio: 0.0,
        ..fast_config()
    };
    let data = counting_dataset(48);
    let gpu_run = run(&on_gpu, &data, 2, &config).unwrap();
    let cpu_run = run(&on_cpu, &data, 2, &config).unwrap();

    let curve = &gpu_run.report.loss_curve;
    let (first, last) = (curve.first().unwrap().loss, curve.last().unwrap().loss);
    assert!(
        last < first - 0.05,
        "GPU training loss did not fall: {first} -> {last}"
    );
    let cpu_first = cpu_run.report.loss_curve.first().unwrap().loss;
    assert!(
        (first - cpu_first).abs() <= 1e-3 * cpu_first.abs(),
        "first-step loss differs: GPU {first}, CPU {cpu_first}"
    );
    assert_eq!(gpu_run.report.epochs_completed, 2);

    // The same adapter layout as the CPU run, and it serialises from device memory.
    let shapes = |run: &licen_lora::TrainOutcome| -> Vec<(String, Vec<usize>)> {
        run.adapter
            .peft_tensors()
            .into_iter()
            .map(|(name, t)| (name, t.dims().to_vec()))
            .collect()
    };
    assert_eq!(shapes(&gpu_run), shapes(&cpu_run));
    let bytes = adapter_safetensors(&gpu_run.adapter).unwrap();
    let loaded = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).unwrap();
    assert_eq!(loaded.len(), shapes(&cpu_run).len());

    let tokens = gpu_run.report.tokens_seen as f64;
    eprintln!(
        "gpu-smoke: loss {first:.4} -> {last:.4} (CPU first step {cpu_first:.4}); \
         GPU {} ms ({:.0} tokens/s), CPU {} ms ({:.0} tokens/s)",
        gpu_run.report.wall_time_ms,
        tokens * 1000.0 / gpu_run.report.wall_time_ms.max(1) as f64,
        cpu_run.report.wall_time_ms,
        tokens * 1000.0 / cpu_run.report.wall_time_ms.max(1) as f64,
    );
}
