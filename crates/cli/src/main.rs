//! `licen`: the LICEN command line.
//!
//! Thin: parses arguments and calls the library crates. Every command prints a readable
//! summary, or machine-readable JSON with `--json`.

mod dev;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// LICEN — license private datasets to AI training without revealing them.
#[derive(Debug, Parser)]
#[command(name = "licen", version, about, propagate_version = true)]
struct Cli {
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole product locally: anvil with persisted state and the DataPolicy contract.
    Dev(dev::DevArgs),
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LICEN_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Dev(args) => dev::run(args, cli.json).await,
    }
}

/// The default folder for local state: `.licen/` in the current directory.
fn default_data_dir() -> PathBuf {
    PathBuf::from(".licen")
}
