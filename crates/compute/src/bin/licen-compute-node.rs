//! `licen-compute-node`: runs a LICEN compute node (INSECURE development attestation,
//! simulated trainer, or `--trainer lora --model DIR` for real LoRA training) until Ctrl-C or SIGTERM. Prints `listening on http://ADDR` on stdout once
//! it accepts requests; logs go to stderr (`RUST_LOG` filters them).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use licen_compute::canonical::HexBytes;
use licen_compute::lora::TrainerArgs;
use licen_compute::node::{NodeConfig, start};

/// Runs a LICEN compute node with INSECURE development attestation and the simulated or LoRA trainer.
#[derive(Debug, Parser)]
#[command(name = "licen-compute-node", version)]
struct Args {
    /// Data dir: the dev attestation key (0600) and the per-job work dirs (0700).
    #[arg(long, env = "LICEN_COMPUTE_DATA_DIR")]
    data_dir: PathBuf,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:7878")]
    listen: SocketAddr,
    /// Storage node URL (zgs JSON-RPC).
    #[arg(long, env = "LICEN_STORAGE_URL")]
    storage: String,
    /// Which trainer runs the jobs.
    #[command(flatten)]
    trainer: TrainerArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    // The model folder is opened and checked here, before the node accepts any job.
    let trainer = match args.trainer.factory() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let config = NodeConfig {
        trainer,
        ..NodeConfig::new(args.data_dir, args.listen, args.storage)
    };
    let node = match start(config).await {
        Ok(node) => node,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // A closed stdout (the parent stopped reading) must not stop the node: ignore write errors.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on {}", node.url());
    let _ = writeln!(
        out,
        "INSECURE development attestation key {} measurement {}",
        HexBytes(node.attestation_key()),
        HexBytes(node.measurement())
    );
    let _ = out.flush();
    drop(out);
    let stop = async {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => {
                        let _ = ctrl_c.await;
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
        }
    };
    stop.await;
    match node.shutdown().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
