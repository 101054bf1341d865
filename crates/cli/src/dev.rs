//! `licen dev`: the local stack on embedded defaults.
//!
//! Starts anvil with persisted state, deploys DataPolicy once (remembered in
//! `<data-dir>/dev/deployment.json` and re-checked against the chain on every start), creates
//! the local orchestrator's X25519 key (`orchestrator.key`, mode 0600) and registers it on-chain,
//! starts the local storage node, compute node, indexer, the orchestrator (which learns of
//! grants from that indexer; `--no-orchestrator` leaves it out) and the web app, prints the
//! URLs, contract address and the insecure dev accounts, and stops everything cleanly on Ctrl-C
//! so the next run resumes with all state.
//!
//! `--flow` runs storage the way 0G does: 0G's own Flow and market contracts (from 0G's npm
//! SDK, remembered in `flow.json`) on the dev chain, a storage node (`storage-0g/`) that takes
//! only files paid for through them, and every uploader paying: `licen publish --flow`, the web
//! app from the person's wallet, the compute node from its operator's dev account.

use crate::keyfile::{read_secret_key, write_secret_key};
use crate::output::{DevAccount, DevStarted};
use alloy::primitives::{Address, B256};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context, Result, bail};
use clap::Args;
use licen_chain::anvil::DevChain;
use licen_chain::{DataPolicyClient, DeployParams, Deployment, connect};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Protocol fee on the dev chain, in basis points.
const DEV_FEE_BPS: u16 = 250;
/// Run timeout on the dev chain: one day.
const DEV_RUN_TIMEOUT: u64 = 24 * 60 * 60;

#[derive(Debug, Args)]
pub(crate) struct DevArgs {
    /// Folder for all local state (chain, deployment, keys).
    #[arg(long, env = "LICEN_DATA_DIR", default_value_os_t = crate::default_data_dir())]
    data_dir: PathBuf,
    /// Port for the anvil JSON-RPC endpoint.
    #[arg(long, default_value_t = 8545)]
    chain_port: u16,
    /// Port for the local storage node (zgs JSON-RPC).
    #[arg(long, default_value_t = 5678)]
    storage_port: u16,
    /// Port for the local compute node.
    #[arg(long, default_value_t = 7878)]
    compute_port: u16,
    /// Port for the indexer's query API.
    #[arg(long, default_value_t = 8080)]
    indexer_port: u16,
    /// Run no orchestrator (to run `licen orchestrator` as its own process instead).
    #[arg(long)]
    no_orchestrator: bool,
    /// Port for the marketplace web app.
    #[arg(long, default_value_t = 3000)]
    web_port: u16,
    /// Start, print what is running, and stop again (for scripts and smoke tests).
    #[arg(long)]
    exit_after_start: bool,
    /// The local compute node's trainer (simulated unless `--trainer lora --model DIR`).
    #[command(flatten)]
    trainer: licen_compute::lora::TrainerArgs,
    /// Store files the way 0G does: deploy 0G's Flow and market contracts (0G's own code, from
    /// its npm SDK; the reward pool is a development stand-in) on the dev chain, and run a
    /// storage node that takes only files paid for through the Flow. The web app and the compute
    /// node pay for what they upload; `licen publish --flow ADDRESS` does from the CLI. Its
    /// files are kept apart from the plain node's (`storage-0g/`).
    #[arg(long)]
    flow: bool,
    /// Spread storage over this many sharded storage nodes (a power of two), the way 0G
    /// stores files: node i holds the segments at Flow positions i mod N, and a local 0G storage
    /// indexer on the storage port names them; every service reads and writes through it, and
    /// the CLI takes `--storage-indexer URL`. 1 (the default): one node holding whole files.
    #[arg(long, default_value_t = 1, value_parser = shard_count)]
    storage_shards: u64,
}

/// `--storage-shards`: a power of two from 1 to 64.
fn shard_count(s: &str) -> std::result::Result<u64, String> {
    match s.parse::<u64>() {
        Ok(n) if n.is_power_of_two() && n <= 64 => Ok(n),
        _ => Err(format!(
            "{s:?} is not a shard count: give a power of two from 1 to 64 (1: one node holding \
             whole files)"
        )),
    }
}

/// What `licen dev --flow` remembers of 0G's contracts on the dev chain.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DevFlow {
    pub(crate) chain_id: u64,
    /// `FixedPriceFlow` (what uploaders pay).
    pub(crate) flow: Address,
    /// `FixedPrice` (prices sectors).
    pub(crate) market: Address,
    /// The reward-pool stand-in (a STOP contract; not 0G's).
    pub(crate) reward: Address,
    /// The first block the storage node reads submissions from.
    pub(crate) block: u64,
}

/// Where `licen dev --flow` keeps 0G's contract addresses and its storage node's files.
const FLOW_FILE: &str = "flow.json";
const FLOW_STORAGE_DIR: &str = "storage-0g";
/// Under `--storage-shards N`: one folder per shard node, `<i>-of-<N>`, inside these.
const SHARDED_STORAGE_DIR: &str = "storage-shards";
const FLOW_SHARDED_STORAGE_DIR: &str = "storage-0g-shards";

/// The data folders of the storage nodes of a stack: one whole node, or one per shard.
fn storage_dirs(
    dir: &Path,
    flow: bool,
    shards: u64,
) -> Vec<(PathBuf, licen_storage::shard::ShardConfig)> {
    use licen_storage::shard::ShardConfig;
    if shards == 1 {
        let name = if flow { FLOW_STORAGE_DIR } else { "storage" };
        return vec![(dir.join(name), ShardConfig::WHOLE)];
    }
    let parent = dir.join(if flow {
        FLOW_SHARDED_STORAGE_DIR
    } else {
        SHARDED_STORAGE_DIR
    });
    (0..shards)
        .map(|i| {
            let shard = ShardConfig {
                num_shard: shards,
                shard_id: i,
            };
            (parent.join(format!("{i}-of-{shards}")), shard)
        })
        .collect()
}

/// Every Flow-mode storage node folder under `dir` (whole, and each shard of every count).
fn flow_node_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![dir.join(FLOW_STORAGE_DIR)];
    if let Ok(entries) = std::fs::read_dir(dir.join(FLOW_SHARDED_STORAGE_DIR)) {
        dirs.extend(entries.flatten().map(|e| e.path()));
    }
    dirs
}

/// Removes every Flow-mode storage node's files.
fn remove_flow_storage(dir: &Path) -> Result<()> {
    for storage in [
        dir.join(FLOW_STORAGE_DIR),
        dir.join(FLOW_SHARDED_STORAGE_DIR),
    ] {
        if storage.exists() {
            std::fs::remove_dir_all(&storage)
                .with_context(|| format!("removing {}", storage.display()))?;
        }
    }
    Ok(())
}
/// The dev Flow's price: 1 gwei per 256-byte sector (about 0.004 ETH per GiB).
const DEV_PRICE_PER_SECTOR: u64 = 1_000_000_000;
/// The dev account the compute node pays 0G storage from under `--flow`.
const COMPUTE_OPERATOR_ACCOUNT: usize = 9;

/// The dev Flow node's files when the chain no longer has the block its follower recorded up to
/// (anvil killed before saving came back older): submissions recorded from lost blocks would
/// not hold, and new ones would reuse their sequence numbers. The node starts over.
async fn discard_flow_files_ahead_of_chain(
    provider: &alloy::providers::DynProvider,
    dir: &Path,
) -> Result<()> {
    for storage in flow_node_dirs(dir) {
        let cursor = licen_storage::node::read_cursor(&storage)
            .context("reading the dev Flow node's cursor")?;
        let Some(cursor) = cursor else {
            continue;
        };
        if matches!(
            crate::storage::chain_has(provider, cursor.block, cursor.hash).await?,
            crate::storage::ChainHas::Block
        ) {
            continue;
        }
        tracing::warn!(
            block = cursor.block,
            "the chain lost blocks the dev Flow node followed (anvil stopped before saving its state): discarding the Flow nodes' files"
        );
        // Their submissions share one chain: all go.
        return remove_flow_storage(dir);
    }
    Ok(())
}

/// 0G's Flow on the dev chain: the remembered one while its code is there, else deployed anew
/// (the storage node's files, paid for on a chain that is gone, are discarded then: their
/// sequence numbers would collide with the new Flow's).
async fn ensure_flow(chain: &DevChain, dir: &Path) -> Result<DevFlow> {
    let admin = connect(chain.rpc_url(), Some(chain.dev_signer(0)))?;
    let provider = admin.provider.clone();
    let chain_id = provider
        .get_chain_id()
        .await
        .context("asking anvil for its chain id")?;
    let path = dir.join(FLOW_FILE);
    if let Ok(bytes) = std::fs::read(&path) {
        let remembered: DevFlow = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is corrupt; delete it to redeploy", path.display()))?;
        let code = provider
            .get_code_at(remembered.flow)
            .await
            .context("checking the remembered Flow contract")?;
        if remembered.chain_id == chain_id && !code.is_empty() {
            discard_flow_files_ahead_of_chain(&provider, dir).await?;
            return Ok(remembered);
        }
        eprintln!(
            "note: the chain state no longer has 0G's Flow at {}; deploying it again",
            remembered.flow
        );
    }
    if flow_node_dirs(dir).iter().any(|d| d.exists()) {
        tracing::warn!("a new Flow deployment: discarding the files paid for on the previous one");
        remove_flow_storage(dir)?;
    }
    let block = provider
        .get_block_number()
        .await
        .context("asking anvil for its block number")?;
    let zerog = licen_chain::testing::zerog::deploy_0g_flow(
        &admin,
        alloy::primitives::U256::from(DEV_PRICE_PER_SECTOR),
    )
    .await
    .context("deploying 0G's Flow contracts (from 0G's npm SDK in the tools folder)")?;
    let flow = DevFlow {
        chain_id,
        flow: zerog.flow,
        market: zerog.market,
        reward: zerog.reward,
        block,
    };
    write_atomically(&path, &serde_json::to_vec_pretty(&flow)?)?;
    Ok(flow)
}

/// What `licen dev` remembers between runs.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct DevDeployment {
    pub(crate) chain_id: u64,
    pub(crate) address: Address,
    pub(crate) block: u64,
    /// The local orchestrator's address (the default for `licen publish`).
    #[serde(default)]
    pub(crate) orchestrator: Option<Address>,
}

/// What `licen dev` deployed under `data_dir`, if anything (read by the other commands).
pub(crate) fn remembered_deployment(data_dir: &Path) -> Option<DevDeployment> {
    let bytes = std::fs::read(data_dir.join("dev").join("deployment.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Ctrl-C (SIGINT) or SIGTERM, either of which stops a service gracefully. Installed before
/// the service says it is up: a signal sent as soon as its start line is read would otherwise
/// find the default action and kill the process uncleanly.
pub(crate) struct StopSignal {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl StopSignal {
    /// Takes SIGINT and SIGTERM over from their default actions.
    pub(crate) fn install() -> Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignal {
            interrupt: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            terminate: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
        })
    }

    /// Waits for either signal (one that arrived since [`install`](Self::install) counts).
    pub(crate) async fn wait(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// The dev account the local orchestrator signs with.
const ORCHESTRATOR_ACCOUNT: usize = 2;

/// Roles of the anvil dev accounts in the local stack.
const ROLES: [&str; 4] = [
    "admin/deployer",
    "treasury",
    "orchestrator",
    "dataset owner",
];

pub(crate) async fn run(args: DevArgs, json: bool) -> Result<()> {
    let stop = StopSignal::install()?;
    let dir = args.data_dir.join("dev");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let chain = DevChain::spawn_with(args.chain_port, Some(&dir.join("anvil-state.json")))
        .context("starting anvil")?;
    let flow = if args.flow {
        Some(ensure_flow(&chain, &dir).await?)
    } else {
        None
    };
    // Everything started so far is stopped gracefully on every path (anvil by its Drop too).
    let services = start_services(&args, &dir, &chain, flow).await;
    let outcome = match &services {
        Ok(services) => start(&chain, &dir, services, &args, json).await.map(Some),
        Err(_) => Ok(None),
    };
    if outcome.is_ok() && services.is_ok() && !args.exit_after_start {
        eprintln!(
            "\nlicen dev is running; press Ctrl-C to stop (state is kept in {}).",
            dir.display()
        );
        stop.wait().await;
        eprintln!("stopping…");
    }
    let interactive = !args.exit_after_start;
    let outcome = match outcome {
        Ok(Some(chainside)) => {
            chainside.web.stop().await;
            if let Some(orchestrator) = chainside.orchestrator {
                orchestrator.stop().await;
            }
            chainside
                .indexer
                .stop()
                .await
                .context("stopping the indexer")
        }
        Ok(None) => Ok(()),
        Err(e) => Err(e),
    };
    let stopped = match services {
        Ok(services) => services.stop().await,
        Err(e) => Err(e),
    };
    chain.stop().context("stopping anvil")?;
    let result = stopped.and(outcome);
    if interactive && result.is_ok() {
        eprintln!("stopped; the chain's state is saved in {}", dir.display());
    }
    result
}

/// The parts that need the deployed contract: the orchestrator, the indexer and the web app.
struct Chainside {
    orchestrator: Option<licen_orchestrator::Orchestrator>,
    indexer: licen_indexer::runner::Running,
    web: licen_web::Running,
}

/// The off-chain services of the local stack.
struct Services {
    /// One whole node, or one node per shard.
    storage: Vec<std::sync::Arc<licen_storage::node::RunningNode>>,
    /// Under `--storage-shards`: the local 0G storage indexer naming the shard nodes.
    storage_indexer: Option<licen_storage::indexer::service::RunningIndexer>,
    compute: licen_compute::node::RunningComputeNode,
    /// The compute node's trainer name.
    trainer: String,
    /// Under `--flow`: 0G's contracts, and the task telling the storage node of submissions.
    flow: Option<(DevFlow, Vec<tokio::task::JoinHandle<()>>)>,
}

impl Services {
    async fn stop(self) -> Result<()> {
        self.compute
            .shutdown()
            .await
            .context("stopping the compute node")?;
        stop_storage(
            self.storage,
            self.storage_indexer,
            self.flow
                .map(|(_, followers)| followers)
                .unwrap_or_default(),
        )
        .await
    }

    /// Where the services read and write: the node, or the storage indexer.
    fn storage_endpoint(&self) -> licen_storage::StorageEndpoint {
        storage_endpoint(&self.storage, self.storage_indexer.as_ref())
    }
}

/// The storage indexer when there is one, else the one whole node.
fn storage_endpoint(
    storage: &[std::sync::Arc<licen_storage::node::RunningNode>],
    indexer: Option<&licen_storage::indexer::service::RunningIndexer>,
) -> licen_storage::StorageEndpoint {
    match indexer {
        Some(indexer) => licen_storage::StorageEndpoint::Indexer(indexer.url()),
        None => licen_storage::StorageEndpoint::Node(storage[0].url()),
    }
}

/// Stops the Flow followers, the storage indexer, then the storage nodes.
async fn stop_storage(
    storage: Vec<std::sync::Arc<licen_storage::node::RunningNode>>,
    indexer: Option<licen_storage::indexer::service::RunningIndexer>,
    followers: Vec<tokio::task::JoinHandle<()>>,
) -> Result<()> {
    for follower in followers {
        follower.abort();
        let _ = follower.await;
    }
    if let Some(indexer) = indexer {
        indexer
            .shutdown()
            .await
            .context("stopping the storage indexer")?;
    }
    for node in storage {
        match std::sync::Arc::try_unwrap(node) {
            Ok(node) => node.shutdown().await.context("stopping the storage node")?,
            Err(_) => anyhow::bail!("the storage node is still in use at shutdown"),
        }
    }
    Ok(())
}

/// The dev index and orchestrator ledger of the deployment before a fresh one: they describe
/// a chain (or contract) that no longer exists, and the ledger would take the new deployment's
/// job 1, 2, … for the old jobs it already finished. Both are rebuilt from the new chain.
fn discard_previous_chain_state(dir: &Path) -> Result<()> {
    let index = dir.join(INDEX_DIR);
    if !index.exists() && !ledger_files(dir).iter().any(|f| f.exists()) {
        return Ok(());
    }
    tracing::warn!(
        "a new DataPolicy deployment: discarding the previous chain's index and orchestrator ledger"
    );
    if index.exists() {
        std::fs::remove_dir_all(&index)
            .with_context(|| format!("removing the previous chain's index {}", index.display()))?;
    }
    remove_ledger(dir)
}

/// The dev ledger's SQLite files: the database and its WAL companions.
fn ledger_files(dir: &Path) -> [PathBuf; 3] {
    [
        LEDGER_FILE,
        &format!("{LEDGER_FILE}-wal"),
        &format!("{LEDGER_FILE}-shm"),
    ]
    .map(|name| dir.join(name))
}

fn remove_ledger(dir: &Path) -> Result<()> {
    for file in ledger_files(dir).iter().filter(|f| f.exists()) {
        std::fs::remove_file(file)
            .with_context(|| format!("removing the dev ledger {}", file.display()))?;
    }
    Ok(())
}

/// The dev orchestrator's ledger when it acted on jobs the chain no longer has: anvil killed
/// outright comes back with the state it last saved, and the ledger would take the new job ids
/// for jobs it finished. Outside `licen dev` the orchestrator refuses such a ledger instead.
async fn discard_ledger_ahead_of_chain(dir: &Path, client: &DataPolicyClient) -> Result<()> {
    let path = dir.join(LEDGER_FILE);
    if !path.exists() {
        return Ok(());
    }
    let next = client
        .next_job_id()
        .await
        .context("asking the contract for its next job id")?;
    let ledger = licen_orchestrator::Ledger::open(&path)
        .await
        .context("opening the dev orchestrator ledger")?;
    let beyond = ledger.acted_beyond(next).await;
    ledger.close().await;
    if beyond
        .context("reading the dev orchestrator ledger")?
        .is_some()
    {
        tracing::warn!(
            next_job = %next,
            "the chain lost jobs the dev orchestrator ledger saw (anvil stopped before saving its state): discarding the ledger"
        );
        remove_ledger(dir)?;
    }
    Ok(())
}

/// The dev indexer's folder and the dev orchestrator's ledger, under `<data-dir>/dev`.
const INDEX_DIR: &str = "indexer";
const LEDGER_FILE: &str = "orchestrator.sqlite";

async fn start_services(
    args: &DevArgs,
    dir: &Path,
    chain: &DevChain,
    flow: Option<DevFlow>,
) -> Result<Services> {
    let loopback = |port| std::net::SocketAddr::from(([127, 0, 0, 1], port));
    // One whole node on the storage port; or shard nodes on free ports, named by a storage
    // indexer on the storage port.
    let sharded = args.storage_shards > 1;
    let mut storage = Vec::new();
    for (node_dir, shard) in storage_dirs(dir, flow.is_some(), args.storage_shards) {
        let started = licen_storage::node::start(licen_storage::node::NodeConfig {
            listen: loopback(if sharded { 0 } else { args.storage_port }),
            flow: flow.as_ref().map(|f| licen_storage::node::FollowedFlow {
                chain_id: f.chain_id,
                address: f.flow,
            }),
            shard,
            ..licen_storage::node::NodeConfig::new(node_dir)
        })
        .await
        .with_context(|| format!("starting the local storage node (shard {shard})"));
        match started {
            Ok(node) => storage.push(std::sync::Arc::new(node)),
            Err(e) => {
                let _ = stop_storage(storage, None, Vec::new()).await;
                return Err(e);
            }
        }
    }
    let storage_indexer = if sharded {
        let started = licen_storage::indexer::service::start(
            licen_storage::indexer::service::IndexerConfig {
                listen: loopback(args.storage_port),
                nodes: storage.iter().map(|n| n.url()).collect(),
            },
        )
        .await
        .context("starting the local storage indexer");
        match started {
            Ok(indexer) => Some(indexer),
            Err(e) => {
                let _ = stop_storage(storage, None, Vec::new()).await;
                return Err(e);
            }
        }
    } else {
        None
    };
    let endpoint = storage_endpoint(&storage, storage_indexer.as_ref());
    // Under --flow each node learns of paid files from the Flow's events, as a 0G node does;
    // the compute node pays for its uploads.
    let flow_parts = async {
        let Some(f) = &flow else {
            return Ok((Vec::new(), None));
        };
        let provider = connect(chain.rpc_url(), None)?.provider;
        let mut starts = Vec::new();
        for node in &storage {
            starts.push(crate::storage::resume_block(node, f.flow, f.block, &provider).await?);
        }
        let payer: std::sync::Arc<dyn licen_compute::StoragePayer> =
            std::sync::Arc::new(crate::storage::FlowPayer::with_wallet(
                Some(f.flow),
                chain.rpc_url(),
                chain.dev_signer(COMPUTE_OPERATOR_ACCOUNT),
            ));
        // One read-only client per node's follower.
        let mut clients = Vec::new();
        for _ in &storage {
            clients.push(licen_chain::FlowClient::new(
                connect(chain.rpc_url(), None)?,
                f.flow,
                licen_storage::zerog::FlowAbi::Current,
            ));
        }
        // Spawned last: nothing after it can fail and leave them holding the nodes.
        let followers = storage
            .iter()
            .zip(starts)
            .zip(clients)
            .map(|((node, from), client)| {
                tokio::spawn(crate::storage::follow_flow(
                    client,
                    provider.clone(),
                    std::sync::Arc::clone(node),
                    from,
                    0,
                ))
            })
            .collect();
        anyhow::Ok((followers, Some(payer)))
    };
    let (followers, payer) = match flow_parts.await {
        Ok(parts) => parts,
        Err(e) => {
            let _ = stop_storage(storage, storage_indexer, Vec::new()).await;
            return Err(e.context("following 0G's Flow on the dev chain"));
        }
    };
    // A LoRA model folder is opened and checked here, before anything accepts a job.
    let trainer = match args.trainer.factory() {
        Ok(trainer) => trainer,
        Err(e) => {
            let _ = stop_storage(storage, storage_indexer, followers).await;
            anyhow::bail!("configuring the compute node's trainer: {e}");
        }
    };
    let compute = licen_compute::node::start(licen_compute::node::NodeConfig {
        trainer,
        payer,
        ..licen_compute::node::NodeConfig::new(
            dir.join("compute"),
            loopback(args.compute_port),
            endpoint,
        )
    })
    .await;
    match compute {
        Ok(compute) => Ok(Services {
            storage,
            storage_indexer,
            compute,
            trainer: args.trainer.trainer.clone(),
            flow: flow.map(|f| (f, followers)),
        }),
        Err(e) => {
            let _ = stop_storage(storage, storage_indexer, followers).await;
            Err(anyhow::Error::new(e).context("starting the local compute node"))
        }
    }
}

async fn start(
    chain: &DevChain,
    dir: &Path,
    services: &Services,
    options: &DevArgs,
    json: bool,
) -> Result<Chainside> {
    let admin = chain.dev_signer(0);
    let connection = connect(chain.rpc_url(), Some(admin.clone()))?;
    let provider = connection.provider.clone();
    let chain_id = provider
        .get_chain_id()
        .await
        .context("asking anvil for its chain id")?;
    let remembered = dir.join("deployment.json");
    let (deployment, fresh) = match existing_deployment(&provider, &remembered, chain_id).await? {
        Some(d) => (d, false),
        None => {
            discard_previous_chain_state(dir)?;
            let params = DeployParams {
                admin: admin.address(),
                treasury: chain.dev_signer(1).address(),
                fee_bps: DEV_FEE_BPS,
                run_timeout: DEV_RUN_TIMEOUT,
            };
            let (_, deployment) = DataPolicyClient::deploy(connection.clone(), params)
                .await
                .context("deploying DataPolicy")?;
            write_atomically(
                &remembered,
                &serde_json::to_vec_pretty(&DevDeployment {
                    chain_id,
                    address: deployment.address,
                    block: deployment.block,
                    orchestrator: Some(chain.dev_signer(ORCHESTRATOR_ACCOUNT).address()),
                })?,
            )?;
            (deployment, true)
        }
    };
    let client = DataPolicyClient::new(connection, deployment.address);
    discard_ledger_ahead_of_chain(dir, &client).await?;
    let (orchestrator_secret, orchestrator_key) =
        ensure_orchestrator_key(&client, chain, dir).await?;
    let indexer = licen_indexer::runner::start(licen_indexer::runner::IndexerConfig {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], options.indexer_port)),
        poll_interval: std::time::Duration::from_millis(200),
        // manifests for the marketplace's text search
        storage: Some(services.storage_endpoint()),
        ..licen_indexer::runner::IndexerConfig::new(
            chain.rpc_url(),
            deployment.address,
            deployment.block,
            dir.join(INDEX_DIR),
        )
    })
    .await
    .context("starting the indexer")?;
    let indexer_url = format!("http://{}", indexer.api_addr());
    // The orchestrator learns of grants through the indexer (DESIGN §2 step 6).
    let orchestrator = if options.no_orchestrator {
        None
    } else {
        let started =
            licen_orchestrator::Orchestrator::start(licen_orchestrator::OrchestratorConfig {
                rpc_url: chain.rpc_url().to_owned(),
                contract: deployment.address,
                start_block: deployment.block,
                grants: licen_orchestrator::GrantSource::Indexer {
                    url: indexer_url.clone(),
                },
                signer: chain.dev_signer(ORCHESTRATOR_ACCOUNT),
                key: orchestrator_secret,
                storage: services.storage_endpoint(),
                provider: std::sync::Arc::new(licen_orchestrator::LocalProvider::new(
                    services.compute.url(),
                    services.compute.attestation_key(),
                )),
                ledger: licen_orchestrator::LedgerLocation::File(dir.join(LEDGER_FILE)),
                lease: licen_orchestrator::DEFAULT_LEASE,
                poll: std::time::Duration::from_millis(200),
                node_retry_delay: std::time::Duration::from_secs(2),
            })
            .await
            .context("starting the orchestrator");
        match started {
            Ok(orchestrator) => Some(orchestrator),
            Err(e) => {
                let _ = indexer.stop().await;
                return Err(e);
            }
        }
    };
    // The web app holds no secrets; in dev it offers the INSECURE dev wallet (anvil's unlocked
    // accounts) to browsers without a wallet.
    let web = licen_web::start(licen_web::WebConfig {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], options.web_port)),
        indexer_url: indexer_url.clone(),
        storage: services.storage_endpoint(),
        chain: licen_web::PublicChain {
            chain_id,
            rpc_url: chain.rpc_url().to_owned(),
            name: "LICEN dev chain (anvil)".to_owned(),
            data_policy: deployment.address,
            default_orchestrator: Some(chain.dev_signer(ORCHESTRATOR_ACCOUNT).address()),
            explorer_tx_url: None,
        },
        flow: services.flow.as_ref().map(|(f, _)| licen_web::PublicFlow {
            address: f.flow,
            abi: Some(licen_storage::zerog::FlowAbi::Current),
        }),
        dev_wallet: true,
        notices: if services.trainer == "simulated" {
            vec![
                "Training here is SIMULATED: a job's result is a report of what was read in each \
                 epoch, not a model with weights. This is a local development marketplace."
                    .to_owned(),
            ]
        } else {
            Vec::new()
        },
        request_tap: None,
    })
    .await
    .context("starting the web app");
    let web = match web {
        Ok(web) => web,
        Err(e) => {
            if let Some(orchestrator) = orchestrator {
                orchestrator.stop().await;
            }
            let _ = indexer.stop().await;
            return Err(e);
        }
    };
    let summary = DevStarted {
        web_url: web.url(),
        rpc_url: chain.rpc_url().to_owned(),
        storage_url: match services.storage_endpoint() {
            licen_storage::StorageEndpoint::Node(url) => Some(url),
            licen_storage::StorageEndpoint::Indexer(_) => None,
        },
        storage_indexer_url: services.storage_indexer.as_ref().map(|i| i.url()),
        storage_nodes: services
            .storage
            .iter()
            .map(|n| crate::output::DevStorageNode {
                url: n.url(),
                shard: n.shard().to_string(),
            })
            .collect(),
        compute_url: services.compute.url(),
        compute_trainer: services.trainer.clone(),
        indexer_url,
        compute_attestation_key: B256::from(services.compute.attestation_key()),
        orchestrator_public_key: B256::from(orchestrator_key),
        orchestrator_running: !options.no_orchestrator,
        chain_id,
        contract: deployment.address,
        deployed_block: deployment.block,
        freshly_deployed: fresh,
        flow: services.flow.as_ref().map(|(f, _)| f.flow),
        accounts: chain
            .dev_signers()
            .iter()
            .enumerate()
            .map(|(i, s)| DevAccount {
                role: match ROLES.get(i) {
                    Some(role) => role,
                    None if i == COMPUTE_OPERATOR_ACCOUNT && services.flow.is_some() => {
                        "compute operator"
                    }
                    None => "researcher",
                },
                address: s.address(),
                private_key: hex_key(s),
            })
            .collect(),
        warning: "INSECURE development keys: publicly known, for the local chain only",
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary, &options.data_dir);
    }
    Ok(Chainside {
        orchestrator,
        indexer,
        web,
    })
}

/// Loads or creates the local orchestrator's key and makes sure the chain's registry holds its
/// public key for the orchestrator dev account (registering or rotating as needed).
async fn ensure_orchestrator_key(
    admin: &DataPolicyClient,
    chain: &DevChain,
    dir: &Path,
) -> Result<(licen_crypto::envelope::SecretKey, [u8; 32])> {
    let path = dir.join("orchestrator.key");
    let secret = if path.exists() {
        read_secret_key(&path)?
    } else {
        let secret = licen_crypto::envelope::SecretKey::random();
        write_secret_key(&path, &secret)?;
        secret
    };
    let public = secret.public_key().to_bytes();
    let orchestrator = chain.dev_signer(ORCHESTRATOR_ACCOUNT).address();
    let (registered, active) = admin.orchestrator_key(orchestrator).await?;
    if registered == [0u8; 32] {
        admin.register_orchestrator(orchestrator, public).await?;
    } else if registered != public || !active {
        if !active {
            admin.register_orchestrator(orchestrator, public).await?;
        }
        if registered != public {
            admin.rotate_orchestrator_key(orchestrator, public).await?;
        }
    }
    Ok((secret, public))
}

/// The remembered deployment, if its code is still on this chain.
async fn existing_deployment(
    provider: &alloy::providers::DynProvider,
    path: &Path,
    chain_id: u64,
) -> Result<Option<Deployment>> {
    let Ok(bytes) = std::fs::read(path) else {
        return Ok(None);
    };
    let remembered: DevDeployment = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is corrupt; delete it to redeploy", path.display()))?;
    if remembered.chain_id != chain_id {
        return Ok(None);
    }
    let code = provider
        .get_code_at(remembered.address)
        .await
        .context("checking the remembered contract")?;
    if code.is_empty() {
        eprintln!(
            "note: the chain state no longer has DataPolicy at {}; deploying again",
            remembered.address
        );
        return Ok(None);
    }
    Ok(Some(Deployment {
        address: remembered.address,
        block: remembered.block,
    }))
}

fn hex_key(signer: &PrivateKeySigner) -> String {
    format!("0x{}", alloy::hex::encode(signer.credential().to_bytes()))
}

fn print_summary(s: &DevStarted, data_dir: &Path) {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "LICEN local stack");
    let _ = writeln!(
        out,
        "  web app          {}  (marketplace; INSECURE dev wallet when the browser has none)",
        s.web_url
    );
    let _ = writeln!(
        out,
        "  chain RPC        {}  (chain id {})",
        s.rpc_url, s.chain_id
    );
    if let Some(url) = &s.storage_url {
        let _ = writeln!(out, "  storage node     {url}");
    }
    if let Some(url) = &s.storage_indexer_url {
        let _ = writeln!(
            out,
            "  storage indexer  {url}  (0G-style; `--storage-indexer {url}` for the CLI)"
        );
        for node in &s.storage_nodes {
            let _ = writeln!(out, "    shard {:<5}    {}", node.shard, node.url);
        }
    }
    if let Some(flow) = s.flow {
        let _ = writeln!(
            out,
            "  0G Flow          {flow}  (0G's own contract code; the node takes only files paid \
             for through it: `licen publish --flow {flow}`; its reward pool is a development \
             stand-in)"
        );
    }
    let _ = writeln!(
        out,
        "  indexer API      {}  (OpenAPI at /openapi.json)",
        s.indexer_url
    );
    let _ = writeln!(
        out,
        "  compute node     {}  (INSECURE dev attestation key {}, {} trainer)",
        s.compute_url, s.compute_attestation_key, s.compute_trainer
    );
    if s.compute_trainer == "simulated" {
        // The web app tells visitors training is simulated; how to change that is for whoever
        // runs the stack.
        let _ = writeln!(
            out,
            "                   SIMULATED training: results are reports, no weights; \
             `licen dev --trainer lora --model DIR` trains real LoRA adapters"
        );
    }
    let _ = writeln!(
        out,
        "  orchestrator key {}  (secret in orchestrator.key, mode 0600)",
        s.orchestrator_public_key
    );
    if !s.orchestrator_running {
        let _ = writeln!(
            out,
            "  orchestrator     NOT RUNNING (--no-orchestrator): granted jobs wait until a \
             `licen orchestrator` runs, and expire (refunded) if none starts them in time; this \
             one runs the dev orchestrator (INSECURE dev key):"
        );
        let _ = writeln!(
            out,
            "                   LICEN_PRIVATE_KEY={} licen orchestrator --data-dir {} \
             --rpc-url {} --contract {} --indexer {} {} --compute-url {} \
             --compute-attestation-key {}",
            s.accounts
                .get(ORCHESTRATOR_ACCOUNT)
                .map_or("<dev account 2's key>", |a| a.private_key.as_str()),
            data_dir.display(),
            s.rpc_url,
            s.contract,
            s.indexer_url,
            match (&s.storage_url, &s.storage_indexer_url) {
                (Some(url), _) => format!("--storage {url}"),
                (None, Some(url)) => format!("--storage-indexer {url}"),
                (None, None) => String::new(),
            },
            s.compute_url,
            s.compute_attestation_key
        );
    }
    let _ = writeln!(
        out,
        "  DataPolicy       {}  (block {}{})",
        s.contract,
        s.deployed_block,
        if s.freshly_deployed {
            ", deployed now"
        } else {
            ", resumed"
        }
    );
    let _ = writeln!(out, "\nDev accounts — {}:", s.warning);
    for (i, a) in s.accounts.iter().enumerate() {
        let _ = writeln!(
            out,
            "  ({i}) {:<15} {}  {}",
            a.role, a.address, a.private_key
        );
    }
    // A closed stdout (`licen dev | head`) must not abort startup: the stack keeps running.
    let _ = std::io::Write::write_all(&mut std::io::stdout(), out.as_bytes());
}

/// Writes via a temporary file and rename, so a crash never leaves a half-written file.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming into {}", path.display()))?;
    if !path.exists() {
        bail!("{} vanished after writing", path.display());
    }
    Ok(())
}
