//! `licen indexer`: the chain indexer and its query API as a service of its own, for a
//! deployment that runs the web app and the orchestrator apart from `licen dev`.
//!
//! The database is bound to one deployment (contract and chain id) on its first start and
//! refuses any other; its readers (`licen web`, `licen orchestrator`) check the same pair
//! through `GET /health` before they trust it.

use crate::wallet::ChainArgs;
use alloy::providers::Provider;
use anyhow::{Context, Result};
use clap::Args;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Args)]
pub(crate) struct IndexerArgs {
    /// Where the query API listens (the web app and the orchestrator default to port 8080).
    #[arg(long, env = "LICEN_INDEXER_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// A Postgres (`postgres://user:password@host/db`) or SQLite (`sqlite:PATH?mode=rwc`)
    /// database instead of `<data-dir>/indexer/indexer.sqlite`.
    #[arg(long, env = "LICEN_INDEXER_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Block to index from: the contract's deployment block (default: the `licen dev`
    /// deployment's when it is that contract, else 0).
    #[arg(long)]
    start_block: Option<u64>,
    /// Blocks an event must be buried under before it is indexed (reorgs deeper than this are
    /// still detected and rewound).
    #[arg(long, default_value_t = 0)]
    confirmations: u64,
    /// Pause between polls of the chain once caught up, in milliseconds.
    #[arg(long, default_value_t = 500)]
    poll_ms: u64,
    /// Where the public manifests are read from (for text search).
    #[command(flatten)]
    storage: crate::storage::StorageArgs,
    #[command(flatten)]
    chain: ChainArgs,
}

pub(crate) async fn run(args: IndexerArgs, json: bool) -> Result<()> {
    let stop = crate::dev::StopSignal::install()?;
    let contract = args.chain.contract()?;
    // The database is bound to the first contract it indexes: a mistyped address would claim it.
    let code = args
        .chain
        .reader()
        .await?
        .provider()
        .get_code_at(contract)
        .await
        .with_context(|| format!("asking {} for the code at {contract}", args.chain.rpc_url()))?;
    if code.is_empty() {
        anyhow::bail!(
            "there is no contract at {contract} on the chain at {}: check --contract (or \
             LICEN_CONTRACT) and --rpc-url",
            args.chain.rpc_url()
        );
    }
    let start_block = args.chain.start_block(contract, args.start_block);
    let config = licen_indexer::IndexerConfig {
        listen: args.listen,
        database_url: args.database_url,
        storage: Some(args.storage.endpoint()?),
        confirmations: args.confirmations,
        poll_interval: Duration::from_millis(args.poll_ms.max(1)),
        ..licen_indexer::IndexerConfig::new(
            args.chain.rpc_url(),
            contract,
            start_block,
            args.chain.state_dir().join("indexer"),
        )
    };
    let running = licen_indexer::start(config)
        .await
        .context("starting the indexer")?;
    let api = format!("http://{}", running.api_addr());
    if json {
        crate::output::print_line(&crate::output::IndexerStarted {
            indexer_url: api,
            contract,
            start_block,
        });
    } else {
        println!(
            "indexer of DataPolicy {contract} from block {start_block}: API at {api} (OpenAPI at /openapi.json)"
        );
    }
    stop.wait().await;
    running.stop().await.context("stopping the indexer")?;
    Ok(())
}
