//! `licen-web`: the marketplace web app on its own (deployments). `licen dev` starts the same
//! server in-process with the local stack's URLs.

use anyhow::{Context, Result};
use clap::Parser;

/// Serve the LICEN marketplace web app (holds no secrets; wallets sign in the browser).
#[derive(Debug, Parser)]
#[command(name = "licen-web", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "LICEN_WEB_LISTEN", default_value = "127.0.0.1:3000")]
    listen: std::net::SocketAddr,
    /// The indexer's query API.
    #[arg(
        long,
        env = "LICEN_INDEXER_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    indexer: String,
    /// The storage node's zgs JSON-RPC endpoint (ciphertext uploads are relayed to it).
    #[arg(
        long,
        env = "LICEN_STORAGE_URL",
        default_value = "http://127.0.0.1:5678"
    )]
    storage: String,
    /// The chain's JSON-RPC URL offered to wallets.
    #[arg(long, env = "LICEN_RPC_URL", default_value = "http://127.0.0.1:8545")]
    rpc: String,
    /// The chain id wallets must be on.
    #[arg(long, env = "LICEN_CHAIN_ID", default_value_t = 31337)]
    chain_id: u64,
    /// The DataPolicy contract address.
    #[arg(long, env = "LICEN_CONTRACT")]
    contract: alloy_primitives::Address,
    /// Orchestrator suggested on the publish page.
    #[arg(long, env = "LICEN_ORCHESTRATOR")]
    orchestrator: Option<alloy_primitives::Address>,
    /// Block explorer prefix for transaction links.
    #[arg(long, env = "LICEN_EXPLORER_TX_URL")]
    explorer_tx_url: Option<String>,
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let running = licen_web::start(licen_web::WebConfig {
        listen: args.listen,
        indexer_url: args.indexer,
        storage_url: args.storage,
        chain: licen_web::PublicChain {
            chain_id: args.chain_id,
            rpc_url: args.rpc,
            data_policy: args.contract,
            default_orchestrator: args.orchestrator,
            explorer_tx_url: args.explorer_tx_url,
        },
        dev_wallet: false,
        request_tap: None,
    })
    .await
    .context("starting the web app")?;
    println!("LICEN web app at {}", running.url());
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    running.stop().await;
    Ok(())
}
