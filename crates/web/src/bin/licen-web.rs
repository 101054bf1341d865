//! `licen-web`: the marketplace web app on its own (deployments; also `licen web`). `licen dev`
//! starts the same server in-process with the local stack's URLs.

use anyhow::{Context, Result};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "licen-web",
    version,
    about = "Serve the LICEN marketplace web app"
)]
struct Cli {
    /// The network: `dev`, `galileo` (0G testnet) or `mainnet` (0G); it supplies the chain id,
    /// RPC URL, explorer and storage indexer no flag gives.
    #[arg(long, env = "LICEN_NETWORK", default_value = "dev")]
    network: licen_chain::Network,
    #[command(flatten)]
    web: licen_web::args::WebArgs,
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let contract = cli.web.contract.context(
        "no DataPolicy contract given: pass --contract ADDRESS or set LICEN_CONTRACT (`licen web` \
         also finds the one `licen deploy` or `licen dev` recorded)",
    )?;
    let mut config = cli.web.config_on(cli.network, contract)?;
    // On 0G the page pays the Flow the storage nodes name.
    licen_web::server::pay_the_nodes_flow(&mut config, cli.network)
        .await
        .context("asking the storage nodes which Flow contract the page pays")?;
    let running = licen_web::start(config)
        .await
        .context("starting the web app")?;
    println!("LICEN web app at {}", running.url());
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    running.stop().await;
    Ok(())
}
