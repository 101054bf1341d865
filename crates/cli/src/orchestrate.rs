//! `licen orchestrator`: runs the orchestrator as its own process (what `licen dev` runs
//! in-process, or an operator's deployment): grants from the indexer's live stream (or, with
//! `--grants-from-chain`, from the chain's logs), one compute node, a crash-safe ledger.
//!
//! Must never: print or log the orchestrator's secret key (it is only read from its 0600 file).

use crate::keyfile::read_secret_key;
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
    /// Off the dev network, release dataset keys to compute nodes trusted on their development
    /// attestation anyway. INSECURE: it proves no TEE, so a node's operator could read the data;
    /// for testnet trials with data you own. Without it the orchestrator refuses to start on
    /// galileo or mainnet (the TEE attestation provider is not built yet).
    #[arg(long)]
    insecure_dev_attestation: bool,
    /// Where key envelopes and manifests are read.
    #[command(flatten)]
    storage: crate::storage::StorageArgs,
    /// The job ledger, a SQLite file (default: `<data-dir>/orchestrator/ledger.sqlite`).
    /// Replicas on one host may share it (one drives the jobs, the others stand by); replicas on
    /// several hosts share a Postgres ledger (`--ledger-url`).
    #[arg(long, conflicts_with = "ledger_url")]
    ledger: Option<PathBuf>,
    /// The job ledger as a database URL instead: `postgres://user:password@host/db` (the
    /// database must exist), or `sqlite:<path>`. Replicas given the same ledger coordinate
    /// through it: one drives the jobs, the others stand by and take over.
    #[arg(long, env = "LICEN_LEDGER_URL")]
    ledger_url: Option<String>,
    /// How long this replica's lead lasts without renewal while it leads (seconds, or with a
    /// unit: `10s`, `1m`; at least 2 s). It renews every quarter of it; a standby takes over a
    /// leader that stopped renewing once the leader's lease runs out, and checks every quarter
    /// of its own lease.
    #[arg(long, default_value = "10s", value_parser = parse_lease)]
    lease: std::time::Duration,
    /// Block to follow grants from (default: the `licen dev` deployment block, else 0).
    #[arg(long)]
    start_block: Option<u64>,
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    wallet: WalletArgs,
}

pub(crate) async fn run(args: OrchestratorArgs, json: bool) -> Result<()> {
    let stop = crate::dev::StopSignal::install()?;
    let network = crate::network::current();
    let warning = match (network, args.insecure_dev_attestation) {
        (licen_chain::Network::Dev, _) => None,
        (_, false) => anyhow::bail!(
            "on {network} the orchestrator releases owners' dataset keys to compute nodes, and \
             the only attestation built is the development one, which proves no TEE: a node's \
             operator could read the data. Pass --insecure-dev-attestation to run anyway \
             (testnet trials with data you own), or run on the dev network"
        ),
        (_, true) => Some(
            "INSECURE development attestation off the local stack: compute nodes are trusted on \
             their key alone, and their operators could read the data",
        ),
    };
    if let Some(warning) = warning {
        tracing::warn!("{warning}");
    }
    // On the network's chain, with its contract, before anything starts.
    let (client, signer) = args.chain.signer(&args.wallet).await?;
    let contract = args.chain.contract()?;
    let key_file = match (args.key_file, network) {
        (Some(file), _) => file,
        (None, licen_chain::Network::Dev) => {
            args.chain.data_dir.join("dev").join("orchestrator.key")
        }
        (None, _) => anyhow::bail!(
            "pass --key-file (or LICEN_ORCHESTRATOR_KEY_FILE): the orchestrator's X25519 key \
             file, as `licen keygen` writes it, whose public key is registered for {} on \
             {network}",
            signer.address()
        ),
    };
    let key = read_secret_key(&key_file)?;
    // The key owners' envelopes are sealed to is the one registered on the chain: a different
    // key file would be found out only when a job's envelope fails to open.
    let public = key.public_key().to_bytes();
    let (registered, _) = client.orchestrator_key(signer.address()).await?;
    if registered == [0u8; 32] {
        anyhow::bail!(
            "{} is not registered as an orchestrator on {contract}: the contract's admin runs \
             `licen admin register-orchestrator --orchestrator {} --key-file {}`",
            signer.address(),
            signer.address(),
            key_file.display()
        );
    }
    if registered != public {
        anyhow::bail!(
            "the key in {} (public key 0x{}) is not the one registered for orchestrator {} on \
             {contract} (0x{}): pass the registered key's file with --key-file, or have the \
             contract's admin run `licen admin rotate-orchestrator-key --orchestrator {} \
             --key-file {}`",
            key_file.display(),
            hex::encode(public),
            signer.address(),
            hex::encode(registered),
            signer.address(),
            key_file.display()
        );
    }
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
    let ledger = match args.ledger_url {
        Some(url) => licen_orchestrator::LedgerLocation::Url(url),
        None => licen_orchestrator::LedgerLocation::File(args.ledger.unwrap_or_else(|| {
            args.chain
                .state_dir()
                .join("orchestrator")
                .join("ledger.sqlite")
        })),
    };
    let ledger_name = match &ledger {
        licen_orchestrator::LedgerLocation::File(path) => path.display().to_string(),
        licen_orchestrator::LedgerLocation::Url(url) => licen_indexer::db::redact(url),
    };
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
            rpc_url: args.chain.rpc_url().to_owned(),
            contract,
            start_block: args.chain.start_block(contract, args.start_block),
            grants,
            signer,
            key,
            storage: args.storage.endpoint()?,
            provider: std::sync::Arc::new(licen_orchestrator::LocalProvider::with_nodes(nodes)),
            ledger,
            lease: args.lease,
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
        crate::output::print_line(&crate::output::OrchestratorStarted {
            orchestrator: address,
            contract,
            grants_from: source,
            compute_urls: args.compute_url,
            ledger: ledger_name,
            replica: orchestrator.replica().to_owned(),
            leading: orchestrator.leader_at_start().is_none(),
            leader: orchestrator
                .leader_at_start()
                .map_or(orchestrator.replica(), |(leader, _)| leader)
                .to_owned(),
            warning,
        });
    } else {
        println!(
            "orchestrator {address} on {contract}: grants from {source}, compute nodes {} (ledger {})",
            args.compute_url.join(", "),
            ledger_name
        );
        let me = licen_orchestrator::describe_replica(orchestrator.replica());
        match orchestrator.leader_at_start() {
            None => println!("replica {me} leads: it drives the jobs"),
            Some((leader, left)) => println!(
                "replica {me} stands by: {} leads; this one takes over when that one stops, or \
                 once its lease runs out ({:.1} s from now, then at each renewal it misses)",
                licen_orchestrator::describe_replica(leader),
                left.as_secs_f64()
            ),
        }
    }
    stop.wait().await;
    orchestrator.stop().await;
    Ok(())
}

/// `--lease`: a duration of at least 2 s (renewals run every quarter of it).
fn parse_lease(text: &str) -> Result<std::time::Duration, String> {
    let lease = std::time::Duration::from_secs(
        crate::onchain::parse_duration(text).map_err(|e| e.to_string())?,
    );
    if lease < std::time::Duration::from_secs(2) {
        return Err(format!(
            "{text} is too short: renewals run every quarter of the lease, so give at least 2s"
        ));
    }
    Ok(lease)
}
