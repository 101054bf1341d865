//! `licen orchestrator`: runs the orchestrator as its own process (what `licen dev` runs
//! in-process, or an operator's deployment): grants from the indexer's live stream (or, with
//! `--grants-from-chain`, from the chain's logs), one compute node, a crash-safe ledger.
//!
//! Must never: print or log the orchestrator's secret key (it is only read from its 0600 file).

use crate::keyfile::read_secret_key;
use crate::storage::DEFAULT_STORAGE_URL;
use crate::wallet::{ChainArgs, WalletArgs};
use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub(crate) struct OrchestratorArgs {
    /// The orchestrator's X25519 secret key file (default: the `licen dev` one); its public key
    /// must be registered on-chain for the wallet's address.
    #[arg(long, env = "LICEN_ORCHESTRATOR_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// The indexer's query API, whose live stream announces grants.
    #[arg(
        long,
        env = "LICEN_INDEXER_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    indexer: String,
    /// Read grants from the chain's logs instead of the indexer (no indexer deployed).
    #[arg(long)]
    grants_from_chain: bool,
    /// The compute nodes to run jobs on (repeat the flag, or separate with commas): jobs are
    /// spread over them, and a job whose node stops answering moves to the next one.
    #[arg(
        long,
        env = "LICEN_COMPUTE_URL",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:7878"
    )]
    compute_url: Vec<String>,
    /// Each compute node's attestation key (hex), in the order of `--compute-url`, whose
    /// evidence is trusted. The development attestation is INSECURE: use it only with local nodes.
    #[arg(
        long,
        env = "LICEN_COMPUTE_ATTESTATION_KEY",
        value_delimiter = ',',
        required = true
    )]
    compute_attestation_key: Vec<String>,
    /// zgs storage endpoint (envelopes, manifests).
    #[arg(long, env = "LICEN_STORAGE_URL", default_value = DEFAULT_STORAGE_URL)]
    storage: String,
    /// The job ledger (default: `<data-dir>/orchestrator/ledger.sqlite`).
    #[arg(long)]
    ledger: Option<PathBuf>,
    /// Block to follow grants from (default: the `licen dev` deployment block, else 0).
    #[arg(long)]
    start_block: Option<u64>,
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    wallet: WalletArgs,
}

pub(crate) async fn run(args: OrchestratorArgs, json: bool) -> Result<()> {
    let signer = args.wallet.signer()?;
    let contract = args.chain.contract()?;
    let key_file = args
        .key_file
        .unwrap_or_else(|| args.chain.data_dir.join("dev").join("orchestrator.key"));
    let key = read_secret_key(&key_file)?;
    if args.compute_url.len() != args.compute_attestation_key.len() {
        anyhow::bail!(
            "{} compute node URLs but {} attestation keys: give one --compute-attestation-key per \
             --compute-url, in the same order",
            args.compute_url.len(),
            args.compute_attestation_key.len()
        );
    }
    let mut nodes = Vec::with_capacity(args.compute_url.len());
    for (url, key) in args.compute_url.iter().zip(&args.compute_attestation_key) {
        let mut attestation_key = [0u8; 32];
        hex::decode_to_slice(key.trim().trim_start_matches("0x"), &mut attestation_key)
            .with_context(|| {
                format!(
                    "--compute-attestation-key for {url} must be 32 bytes of hex (the node prints \
                     it at start)"
                )
            })?;
        nodes.push((url.trim().to_owned(), attestation_key));
    }
    let ledger = args.ledger.unwrap_or_else(|| {
        args.chain
            .data_dir
            .join("orchestrator")
            .join("ledger.sqlite")
    });
    if let Some(parent) = ledger.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let grants = if args.grants_from_chain {
        licen_orchestrator::GrantSource::Chain
    } else {
        licen_orchestrator::GrantSource::Indexer {
            url: args.indexer.clone(),
        }
    };
    let address = signer.address();
    let orchestrator =
        licen_orchestrator::Orchestrator::start(licen_orchestrator::OrchestratorConfig {
            rpc_url: args.chain.rpc_url.clone(),
            contract,
            start_block: args.chain.start_block(contract, args.start_block),
            grants,
            signer,
            key,
            storage_url: args.storage,
            provider: std::sync::Arc::new(licen_orchestrator::LocalProvider::with_nodes(nodes)),
            ledger_path: ledger.clone(),
            poll: std::time::Duration::from_millis(200),
            node_retry_delay: std::time::Duration::from_secs(2),
        })
        .await
        .context("starting the orchestrator")?;
    let source = if args.grants_from_chain {
        "chain logs".to_owned()
    } else {
        args.indexer
    };
    if json {
        println!(
            "{}",
            serde_json::json!({
                "orchestrator": address,
                "contract": contract,
                "grants_from": source,
                "compute_urls": args.compute_url,
                "ledger": ledger,
            })
        );
    } else {
        println!(
            "orchestrator {address} on {contract}: grants from {source}, compute nodes {} (ledger {})",
            args.compute_url.join(", "),
            ledger.display()
        );
    }
    crate::dev::wait_for_stop_signal().await?;
    orchestrator.stop().await;
    Ok(())
}
