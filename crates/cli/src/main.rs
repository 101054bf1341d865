//! `licen`: the LICEN command line.
//!
//! Thin: parses arguments and calls the library crates. Every command prints a readable
//! summary, or machine-readable JSON with `--json`.

mod admin;
mod deployments;
mod dev;
mod files;
mod index;
mod keyfile;
mod manifest;
mod market;
mod network;
mod onchain;
mod orchestrate;
mod output;
mod progress;
mod storage;
mod wallet;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// LICEN — license private datasets to AI training without revealing them.
#[derive(Debug, Parser)]
#[command(name = "licen", version, about, propagate_version = true)]
struct Cli {
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,

    /// The network: `dev` (the local stack of `licen dev`), `galileo` (0G testnet, chain 16602)
    /// or `mainnet` (0G, chain 16661). It supplies the defaults an endpoint flag does not give
    /// (RPC endpoint, storage indexer, explorer, the contract `licen deploy` recorded), and on
    /// 0G every RPC endpoint must be that chain's.
    #[arg(long, global = true, env = "LICEN_NETWORK", default_value = "dev")]
    network: licen_chain::Network,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole product locally: anvil with persisted state and the DataPolicy contract.
    Dev(dev::DevArgs),
    /// Create an X25519 key pair; the secret key file is written with mode 0600.
    Keygen(files::KeygenArgs),
    /// Print a file's 0G Merkle root (its storage id).
    Root(files::RootArgs),
    /// Seal a file to a public key: sealed stream + key envelope, root computed in one pass.
    Seal(files::SealArgs),
    /// Open a sealed file with its envelope and the recipient's secret key.
    Open(files::OpenArgs),
    /// Upload a file to a zgs storage endpoint; prints its root.
    Put(storage::PutArgs),
    /// Download a file by root, verifying every segment's proof.
    Get(storage::GetArgs),
    /// Run the local storage node (zgs JSON-RPC).
    StorageNode(storage::StorageNodeArgs),
    /// Run a local 0G storage indexer over storage nodes (e.g. one per shard), for
    /// `--storage-indexer`.
    StorageIndexer(storage::StorageIndexerArgs),
    /// Run a compute node (insecure development attestation; simulated or LoRA trainer).
    ComputeNode(storage::ComputeNodeArgs),
    /// Run the chain indexer and its query API as its own process (SQLite or Postgres).
    Indexer(index::IndexerArgs),
    /// Run the orchestrator as its own process (grants via the indexer; crash-safe ledger).
    Orchestrator(orchestrate::OrchestratorArgs),
    /// Owner: check, seal, upload and publish a JSONL dataset with its policy.
    Publish(onchain::PublishArgs),
    /// Owner: stop new requests for a dataset.
    Pause(onchain::DatasetArgs),
    /// Owner: accept requests again.
    Resume(onchain::DatasetArgs),
    /// Owner: replace a dataset's policy (running jobs keep their snapshot).
    UpdatePolicy(onchain::UpdatePolicyArgs),
    /// A dataset's on-chain state: owner, orchestrator, open/paused/closed and its policy.
    Dataset(onchain::ShowDatasetArgs),
    /// Researcher: pay the exact escrow and request a training run.
    Request(onchain::RequestArgs),
    /// Serve the marketplace web app (no secrets; wallets sign in the browser).
    Web(WebCommand),
    /// Browse the marketplace (the indexer): datasets with filters and sorting.
    Market(market::MarketArgs),
    /// List jobs from the indexer (`--mine`, or by researcher, owner or dataset).
    Jobs(market::JobsArgs),
    /// A job's on-chain state; `--watch` follows its timeline live until it ends.
    Job(onchain::JobArgs),
    /// Take back a stalled job's escrow in full: a grant never started (anyone), or a run past
    /// its run deadline (its researcher).
    Reclaim(onchain::JobActionArgs),
    /// Researcher: download a completed job's sealed result and open it with the wallet's key.
    Download(onchain::DownloadArgs),
    /// What the wallet can withdraw (royalties, fees, refunds).
    Earnings(onchain::AccountArgs),
    /// Withdraw everything the contract holds for the wallet (royalties, fees, refunds).
    Withdraw(onchain::AccountArgs),
    /// Operator: deploy the DataPolicy contract to a chain (0G Galileo, 0G mainnet, any EVM
    /// chain) and record it in `<data-dir>/deployments/<chain-id>.json`.
    Deploy(admin::DeployArgs),
    /// Operator: the contract's admin functions (orchestrators, protocol fee, admin role) and
    /// `show`.
    Admin(admin::AdminArgs),
}

fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return output::usage_error(&error, json_requested()),
    };
    let json = cli.json;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    let outcome = match runtime {
        Ok(runtime) => runtime.block_on(run(cli)),
        Err(e) => Err(anyhow::Error::new(e).context("starting the async runtime")),
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // The whole cause chain, one line per cause; never a backtrace for a user error.
            eprintln!("error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            if json {
                output::print_line(&output::ErrorReport::new(&error));
            }
            std::process::ExitCode::FAILURE
        }
    }
}

/// Whether `--json` is on the command line (before a `--`), for an error clap found before
/// the arguments could be parsed.
fn json_requested() -> bool {
    std::env::args()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json")
}

/// What services log by default: warnings, and what each LICEN service did (jobs started,
/// keys released, settlements, files stored). Never keys or data: those are not logged at all.
const SERVICE_LOG: &str = "warn,licen_orchestrator=info,licen_compute=info,licen_storage=info,licen_indexer=info,licen_web=info";

async fn run(cli: Cli) -> Result<()> {
    network::set(cli.network);
    // One-shot commands say what they did on stdout; long-running services log their activity.
    let service = matches!(
        cli.command,
        Command::Dev(_)
            | Command::Indexer(_)
            | Command::Orchestrator(_)
            | Command::StorageNode(_)
            | Command::StorageIndexer(_)
            | Command::ComputeNode(_)
            | Command::Web(_)
    );
    if !service {
        end_quietly_when_stdout_closes();
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LICEN_LOG")
                .unwrap_or_else(|_| (if service { SERVICE_LOG } else { "warn" }).into()),
        )
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, not in a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if matches!(cli.command, Command::Dev(_)) && cli.network != licen_chain::Network::Dev {
        anyhow::bail!(
            "`licen dev` runs the local stack; it cannot run on {} (from --network or \
             LICEN_NETWORK): drop --network, or unset LICEN_NETWORK",
            cli.network
        );
    }
    match cli.command {
        Command::Dev(args) => dev::run(args, cli.json).await,
        Command::Keygen(args) => files::keygen(args, cli.json),
        Command::Root(args) => files::root(args, cli.json),
        Command::Seal(args) => files::seal(args, cli.json),
        Command::Open(args) => files::open(args, cli.json),
        Command::Put(args) => storage::put(args, cli.json).await,
        Command::Get(args) => storage::get(args, cli.json).await,
        Command::StorageNode(args) => storage::storage_node(args, cli.json).await,
        Command::StorageIndexer(args) => storage::storage_indexer(args, cli.json).await,
        Command::ComputeNode(args) => storage::compute_node(args, cli.json).await,
        Command::Indexer(args) => index::run(args, cli.json).await,
        Command::Orchestrator(args) => orchestrate::run(args, cli.json).await,
        Command::Publish(args) => onchain::publish(args, cli.json).await,
        Command::Pause(args) => onchain::pause(args, cli.json).await,
        Command::Resume(args) => onchain::resume(args, cli.json).await,
        Command::UpdatePolicy(args) => onchain::update_policy(args, cli.json).await,
        Command::Dataset(args) => onchain::dataset(args, cli.json).await,
        Command::Request(args) => onchain::request(args, cli.json).await,
        Command::Web(args) => serve_web(args, cli.json).await,
        Command::Market(args) => market::market(args, cli.json).await,
        Command::Jobs(args) => market::jobs(args, cli.json).await,
        Command::Job(args) => onchain::job(args, cli.json).await,
        Command::Download(args) => onchain::download(args, cli.json).await,
        Command::Earnings(args) => onchain::earnings(args, cli.json).await,
        Command::Withdraw(args) => onchain::withdraw(args, cli.json).await,
        Command::Reclaim(args) => onchain::reclaim(args, cli.json).await,
        Command::Deploy(args) => admin::deploy(args, cli.json).await,
        Command::Admin(args) => admin::run(args, cli.json).await,
    }
}

/// One-shot commands end quietly when their reader goes away (`licen market | head`), as Unix
/// tools do, by taking back the default SIGPIPE action: Rust ignores the signal, so the next
/// `println!` would panic with "Broken pipe". Services keep ignoring it: for them a closed
/// connection must stay an error, not end the process. (Sockets are unaffected either way: the
/// standard library sends with `MSG_NOSIGNAL`.)
#[cfg(unix)]
#[allow(unsafe_code)]
fn end_quietly_when_stdout_closes() {
    // SAFETY: `signal(2)` with `SIG_DFL` only resets this process's disposition of SIGPIPE; no
    // handler of ours runs, and no memory is shared with the call.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn end_quietly_when_stdout_closes() {}

/// The default folder for local state: `.licen/` in the current directory.
fn default_data_dir() -> PathBuf {
    PathBuf::from(".licen")
}

/// `licen web`: the web app's flags, and where to find the recorded contract.
#[derive(Debug, clap::Args)]
struct WebCommand {
    #[command(flatten)]
    web: licen_web::args::WebArgs,
    /// Local state folder, where `licen deploy` and `licen dev` record their contract (used
    /// when no --contract is given).
    #[arg(long, env = "LICEN_DATA_DIR", default_value_os_t = default_data_dir())]
    data_dir: PathBuf,
}

/// `licen web`: the standalone web app until Ctrl-C or SIGTERM.
async fn serve_web(args: WebCommand, json: bool) -> Result<()> {
    let stop = dev::StopSignal::install()?;
    let contract = wallet::contract_or_recorded(args.web.contract, &args.data_dir)?;
    let mut web = args.web;
    web.orchestrator = web
        .orchestrator
        .or_else(|| wallet::dev_orchestrator(&args.data_dir, contract));
    let mut config = web.config_on(network::current(), contract)?;
    // On 0G, as the CLI pays: the Flow the storage nodes name.
    licen_web::server::pay_the_nodes_flow(&mut config, network::current())
        .await
        .context("asking the storage nodes which Flow contract the page pays")?;
    let running = licen_web::start(config)
        .await
        .map_err(anyhow::Error::new)
        .map_err(|e| e.context("starting the web app"))?;
    if json {
        output::print_line(&output::WebStarted {
            web_url: running.url(),
        });
    } else {
        println!("LICEN web app at {}", running.url());
    }
    stop.wait().await;
    running.stop().await;
    Ok(())
}
