//! `licen-storage-node`: the local zgs-compatible storage node as a process.
//!
//! Prints one line `listening on http://<addr>` to stdout once it accepts requests (so scripts
//! and tests can start it on port 0 and read the URL), logs to stderr, stops on Ctrl-C or
//! SIGTERM. It stores ciphertext only and never needs a key.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use licen_storage::node::{self, DEFAULT_MAX_BODY_BYTES, NodeConfig};
use licen_storage::shard::ShardConfig;

/// Local storage node speaking 0G's zgs JSON-RPC (POST /).
#[derive(Parser, Debug)]
#[command(name = "licen-storage-node", version)]
struct Args {
    /// Directory holding stored files (created if missing).
    #[arg(long, env = "LICEN_STORAGE_DATA_DIR")]
    data_dir: PathBuf,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:5678", env = "LICEN_STORAGE_LISTEN")]
    listen: SocketAddr,
    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// At finalization, re-hash every segment from disk, not only those that survived a
    /// restart.
    #[arg(long)]
    full_rehash: bool,
    /// Shard position as 0G's `shard_position`, SHARD_ID/NUM_SHARD: keep only the segments
    /// whose Flow position is SHARD_ID modulo NUM_SHARD (a power of two). 0/1 keeps all.
    #[arg(long, default_value = "0/1", env = "LICEN_STORAGE_SHARD")]
    shard: ShardConfig,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("licen-storage-node: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let res = rt.block_on(async move {
        let cfg = NodeConfig {
            data_dir: args.data_dir,
            listen: args.listen,
            max_body_bytes: args.max_body_bytes,
            full_rehash: args.full_rehash,
            flow: None,
            shard: args.shard,
        };
        let running = node::start(cfg).await?;
        println!("listening on {}", running.url());
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        tokio::select! {
            r = shutdown_signal() => {
                r.map_err(|e| licen_storage::Error::io("waiting for a shutdown signal", e))?;
                tracing::info!("shutting down");
                running.shutdown().await
            }
        }
    });
    match res {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("licen-storage-node: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
