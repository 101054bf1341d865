//! Storage commands: `put`, `get` against a zgs endpoint (the local node or a 0G node) or
//! the nodes a 0G storage indexer names, `storage-node` to run the local node (whole or one
//! shard), and `storage-indexer` to run a local 0G storage indexer over such nodes.

use crate::files::ensure_absent;
use crate::progress::{bytes_bar, storage_progress};
use crate::wallet::WalletArgs;
use anyhow::{Context, Result};
use clap::Args;
use licen_storage::client::DownloadOptions;
use licen_storage::client::StorageClient;
use licen_storage::indexer::service::IndexerConfig;
use licen_storage::indexer::upload_file_to;
use licen_storage::merkle::FileTree;
use licen_storage::node::{self, DEFAULT_MAX_BODY_BYTES, NodeConfig};
use licen_storage::shard::ShardConfig;
use licen_storage::zerog::{FlowAbi, FlowSubmission};
use licen_storage::{Storage, StorageEndpoint};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

/// Where files are stored when nothing names it: the network's storage indexer on 0G, the
/// local node of `licen dev` otherwise.
pub(crate) fn default_storage() -> StorageEndpoint {
    StorageEndpoint::default_for(crate::network::current().storage_indexer())
}

/// Where files are stored: one zgs node, or the nodes a 0G storage indexer names. A flag wins
/// over the environment (`LICEN_STORAGE_URL`, `LICEN_STORAGE_INDEXER`); both variables set is
/// refused as ambiguous, as for wallets.
#[derive(Debug, Clone, Args)]
pub(crate) struct StorageArgs {
    /// zgs JSON-RPC endpoint of a storage node holding whole files (the local node of `licen
    /// dev`, or a 0G node) [env: LICEN_STORAGE_URL; default: on dev the local node,
    /// http://127.0.0.1:5678; on galileo and mainnet 0G's storage indexer].
    #[arg(long, conflicts_with = "storage_indexer")]
    storage: Option<String>,
    /// A 0G storage indexer (0G's, or `licen storage-indexer`), instead of a node: uploads go
    /// to a set of its nodes that holds every segment, each node taking the segments of its
    /// shard; downloads take each segment from a node holding it [env: LICEN_STORAGE_INDEXER].
    #[arg(long)]
    storage_indexer: Option<String>,
}

impl StorageArgs {
    /// The node or the indexer.
    pub(crate) fn endpoint(&self) -> Result<StorageEndpoint> {
        Ok(StorageEndpoint::from_flags(
            self.storage.as_deref(),
            self.storage_indexer.as_deref(),
            default_storage(),
        )?)
    }

    /// The node or indexer, for messages.
    pub(crate) fn describe(&self) -> String {
        self.endpoint()
            .map_or_else(|_| "storage".to_owned(), |e| e.to_string())
    }

    /// A client of the node or indexer.
    pub(crate) fn open(&self) -> Result<Storage> {
        Ok(self.endpoint()?.connect()?)
    }
}

#[derive(Debug, Args)]
pub(crate) struct PutArgs {
    /// File to upload (normally a sealed file: storage only ever holds ciphertext).
    file: PathBuf,
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    payment: FlowPayment,
}

/// Paying a Flow from a wallet of one's own (`put`, `compute-node`): the Flow, its chain and the
/// wallet. (`publish` pays from its publishing wallet, on the DataPolicy's chain.)
#[derive(Debug, Args)]
pub(crate) struct FlowPayment {
    #[command(flatten)]
    flow: FlowArgs,
    /// Chain JSON-RPC endpoint of the Flow contract [default: the network's].
    #[arg(long, env = "LICEN_RPC_URL")]
    rpc_url: Option<String>,
    #[command(flatten)]
    wallet: WalletArgs,
}

impl FlowPayment {
    /// `--rpc-url`, else the network's.
    fn rpc_url(&self) -> String {
        crate::network::rpc_url(self.rpc_url.as_deref()).to_owned()
    }

    /// The Flow client paying from the wallet, for uploads to `nodes`: `--flow`, else the Flow
    /// the nodes follow (`None`: neither, so nothing is paid).
    async fn client(&self, nodes: &[StorageClient]) -> Result<Option<licen_chain::FlowClient>> {
        self.flow
            .client(&self.rpc_url(), || self.wallet.signer(), nodes)
            .await
    }
}

/// Paying for storage on a 0G network: the Flow contract a file is submitted to before its
/// segments are uploaded (0G nodes accept only submitted files).
#[derive(Debug, Clone, Args)]
pub(crate) struct FlowArgs {
    /// The 0G Flow contract to pay for each file's storage from the wallet (a Flow submission)
    /// before uploading it, as 0G storage nodes require; a file the nodes already know is not
    /// paid for again. By default, the Flow the storage nodes name in `zgs_getStatus` (as 0G's
    /// clients do; nothing is paid to nodes that name none, such as `licen dev`'s without
    /// `--flow`); given, it must be the one they name.
    #[arg(long, env = "LICEN_FLOW")]
    flow: Option<alloy::primitives::Address>,
    /// The Flow's `submit` generation: read from its code (`auto`), or `current` (0G's Flow
    /// since 2026) or `legacy` (deployments before).
    #[arg(long, value_enum, default_value = "auto")]
    flow_abi: FlowAbiArg,
}

impl FlowArgs {
    /// The Flow client paying from the wallet `signer` gives over `rpc_url` for uploads to
    /// `nodes`: `--flow`, else the Flow the nodes follow; `None` when there is neither (the
    /// wallet is only asked for when there is one). The nodes' Flow must be on `rpc_url`'s
    /// chain, and `--flow` must be the nodes' Flow when they name one: a payment elsewhere
    /// would be lost, and the nodes would never accept the file.
    pub(crate) async fn client(
        &self,
        rpc_url: &str,
        signer: impl FnOnce() -> Result<alloy::signers::local::PrivateKeySigner>,
        nodes: &[StorageClient],
    ) -> Result<Option<licen_chain::FlowClient>> {
        let followed = licen_storage::client::followed_flow(nodes)
            .await
            .context("asking the storage nodes which Flow contract they follow")?;
        if self.flow.is_none() && followed.is_none() {
            return Ok(None);
        }
        let connection = licen_chain::connect(rpc_url, Some(signer()?))?;
        let chain_id = crate::network::current()
            .check_chain(&connection.provider, rpc_url)
            .await?;
        let Some(flow) = licen_storage::zerog::FollowedFlow::to_pay(self.flow, followed, chain_id)?
        else {
            return Ok(None);
        };
        Ok(Some(match self.flow_abi {
            FlowAbiArg::Auto => licen_chain::FlowClient::detect(connection, flow).await?,
            FlowAbiArg::Current => licen_chain::FlowClient::new(connection, flow, FlowAbi::Current),
            FlowAbiArg::Legacy => licen_chain::FlowClient::new(connection, flow, FlowAbi::Legacy),
        }))
    }
}

/// Pays `flow` for the file `tree` describes unless one of `nodes` already knows it (paid
/// earlier, or stored), then waits until every node has seen the submission. Returns the
/// submission when one was sent.
pub(crate) async fn pay_for_storage(
    nodes: &[StorageClient],
    flow: &licen_chain::FlowClient,
    tree: &FileTree,
    json: bool,
) -> Result<Option<licen_chain::FlowReceipt>> {
    Ok(pay_for_files(nodes, flow, &[tree], json).await?.pop())
}

/// [`pay_for_storage`] for several files: those no node knows are paid for in one
/// transaction (one each on a legacy Flow). Returns the submissions sent, in order.
pub(crate) async fn pay_for_files(
    nodes: &[StorageClient],
    flow: &licen_chain::FlowClient,
    trees: &[&FileTree],
    json: bool,
) -> Result<Vec<licen_chain::FlowReceipt>> {
    let mut unpaid = Vec::new();
    // Paid earlier, known to some of the nodes: the others must see it before they take it.
    let mut paid_before = Vec::new();
    for tree in trees {
        let root = tree.root();
        // A submission is on chain for all nodes: one node knowing the file means it is paid.
        let mut known = false;
        for node in nodes {
            known |= node
                .file_info(root)
                .await
                .with_context(|| format!("asking {} about {root}", node.url()))?
                .is_some();
        }
        if known {
            paid_before.push(root);
        } else {
            unpaid.push((root, FlowSubmission::from_tree(tree, Vec::new())?));
        }
    }
    if nodes.len() > 1 {
        for root in &paid_before {
            for node in nodes {
                wait_until_node_knows(node, *root, None).await?;
            }
        }
    }
    if unpaid.is_empty() {
        return Ok(Vec::new());
    }
    let submissions: Vec<FlowSubmission> = unpaid.iter().map(|(_, s)| s.clone()).collect();
    let receipts = flow
        .submit_all(&submissions)
        .await
        .context("paying for storage (nothing was uploaded)")?;
    for ((root, _), receipt) in unpaid.iter().zip(&receipts) {
        if !json {
            eprintln!(
                "paid {} for {} sectors of {root}: Flow submission #{} in transaction {}",
                licen_types::format_wei(u128::try_from(receipt.fee).unwrap_or(u128::MAX)),
                receipt.sectors,
                receipt.tx_seq,
                receipt.tx
            );
        }
    }
    for ((root, _), receipt) in unpaid.iter().zip(&receipts) {
        for node in nodes {
            wait_until_node_knows(node, *root, Some(receipt)).await?;
        }
    }
    Ok(receipts)
}

/// `--flow-abi`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum FlowAbiArg {
    /// Read from the Flow's deployed code.
    Auto,
    /// `submit(((uint256,bytes,(bytes32,uint256)[]),address))`.
    Current,
    /// `submit((uint256,bytes,(bytes32,uint256)[]))`.
    Legacy,
}

/// How long `put --flow` waits for the storage node to see a mined submission.
const NODE_SEES_SUBMISSION: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    /// 0G root of the file.
    root: String,
    /// Where to write it (written as `<output>.partial`, renamed once every segment verified).
    #[arg(short, long)]
    output: PathBuf,
    #[command(flatten)]
    storage: StorageArgs,
}

#[derive(Debug, Args)]
pub(crate) struct StorageNodeArgs {
    /// Folder holding stored files.
    #[arg(long, env = "LICEN_STORAGE_DATA_DIR", default_value = ".licen/storage")]
    data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:5678")]
    listen: SocketAddr,
    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// Follow this 0G Flow contract, as a 0G node does: accept only files whose submission it
    /// has seen in the Flow's `Submit` events, with their sequence numbers and positions.
    #[arg(long, env = "LICEN_FLOW")]
    flow: Option<alloy::primitives::Address>,
    /// Chain JSON-RPC endpoint of the Flow contract [default: the network's].
    #[arg(long, env = "LICEN_RPC_URL")]
    rpc_url: Option<String>,
    /// First block to read Flow submissions from: the Flow's deployment block (from 0 the
    /// node reads the whole chain's history first, 5,000 blocks per request).
    #[arg(long, default_value_t = 0, requires = "flow")]
    flow_start_block: u64,
    /// Blocks a submission must be buried under before the node accepts its file. 0 (the
    /// default, right for anvil, which mines only on demand) accepts a submission a reorg may
    /// still remove; on a public network give a depth.
    #[arg(long, default_value_t = 0, requires = "flow")]
    flow_confirmations: u64,
    /// Shard position, as 0G's `shard_position`: SHARD_ID/NUM_SHARD keeps only the segments
    /// whose Flow position is SHARD_ID modulo NUM_SHARD (a power of two); 0/1 keeps every
    /// segment. A data folder keeps the shard it was first used with.
    #[arg(long, env = "LICEN_STORAGE_SHARD", default_value = "0/1")]
    shard: ShardConfig,
}

#[derive(Debug, Args)]
pub(crate) struct StorageIndexerArgs {
    /// A trusted storage node's zgs RPC URL (repeat for each node; e.g. one per shard).
    #[arg(long = "node", required = true)]
    nodes: Vec<String>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:12345")]
    listen: SocketAddr,
}

/// Whether `path` starts like text (valid UTF-8 in its first 64 KiB) rather than a sealed stream
/// (its magic) or other binary data such as a key envelope.
fn looks_like_plaintext(path: &std::path::Path) -> Result<bool> {
    use std::io::Read as _;
    let mut head = Vec::with_capacity(64 * 1024);
    std::fs::File::open(path)
        .with_context(|| format!("opening {}", path.display()))?
        .take(64 * 1024)
        .read_to_end(&mut head)
        .with_context(|| format!("reading {}", path.display()))?;
    if head.is_empty() || head.starts_with(&licen_crypto::stream::MAGIC) {
        return Ok(false);
    }
    // A cut at 64 KiB may split a UTF-8 sequence: judge what comes before it.
    Ok(match std::str::from_utf8(&head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && e.valid_up_to() > 0,
    })
}

pub(crate) async fn put(args: PutArgs, json: bool) -> Result<()> {
    let storage = args.storage.open()?;
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("opening {}", args.file.display()))?;
    let size = file.metadata()?.len();
    // On stderr also under --json: a script is where unsealed data gets uploaded by mistake.
    if looks_like_plaintext(&args.file)? {
        eprintln!(
            "warning: {} looks like plain text, not a LICEN sealed stream: it is stored as is and \
             anyone who has its root can read it. Seal private data first (`licen seal`); public \
             files such as a dataset manifest are fine.",
            args.file.display()
        );
    }

    // Pass 1: the Merkle tree (every segment proof needs the root before the first upload).
    let started = Instant::now();
    let bar = bytes_bar("hashing", size, json);
    let hashing_bar = bar.clone();
    let tree = tokio::task::spawn_blocking(move || {
        FileTree::from_reader(
            hashing_bar.wrap_read(std::io::BufReader::with_capacity(1 << 20, file)),
        )
    })
    .await?
    .with_context(|| format!("reading {}", args.file.display()))?;
    let hash_seconds = started.elapsed().as_secs_f64();

    // On a 0G network: pay for the file with a Flow submission first, unless a node already
    // knows it (submitted earlier, or stored and finalized: nothing to pay, as 0G's clients do).
    let nodes = storage
        .upload_nodes()
        .await
        .with_context(|| format!("choosing where to store {}", args.file.display()))?;
    let paid = match args.payment.client(&nodes).await? {
        Some(flow) => pay_for_storage(&nodes, &flow, &tree, json).await?,
        None => None,
    };

    // Pass 2: the segments, with proofs, skipping what the nodes already hold.
    let started = Instant::now();
    let uploaded = upload_file_to(
        &nodes,
        &args.file,
        &tree,
        licen_storage::client::FileReads::Cached,
        Some(storage_progress(&bar)),
    )
    .await
    .with_context(|| {
        format!(
            "uploading {} to {}",
            args.file.display(),
            args.storage.describe()
        )
    })?;
    let upload_seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    if json {
        crate::output::print_line(&crate::output::Put {
            root: uploaded.root,
            size_bytes: uploaded.size,
            segments: uploaded.segments,
            sent_segments: uploaded.sent_segments,
            skipped_segments: uploaded.skipped_segments,
            finalized: uploaded.finalized,
            hash_s: hash_seconds,
            upload_s: upload_seconds,
            peak_rss_bytes: crate::files::peak_rss_bytes(),
            flow_submission: paid.as_ref().map(crate::output::FlowSubmission::from),
        });
    } else {
        println!("{}", uploaded.root);
        let segments = |n: u64| {
            if n == 1 {
                "1 segment".to_owned()
            } else {
                format!("{n} segments")
            }
        };
        if uploaded.sent_segments == 0 {
            eprintln!(
                "already stored: {} bytes in {}; nothing was sent",
                uploaded.size,
                segments(uploaded.segments)
            );
        } else {
            eprintln!(
                "uploaded {} bytes in {} ({} sent, {} already stored)",
                uploaded.size,
                segments(uploaded.segments),
                uploaded.sent_segments,
                uploaded.skipped_segments
            );
        }
    }
    Ok(())
}

/// Polls the storage node until it reports the file paid for (`receipt`: just now; `None`:
/// earlier, as another node already knows). Nodes learn of submissions from the chain.
async fn wait_until_node_knows(
    client: &StorageClient,
    root: licen_storage::merkle::Hash,
    receipt: Option<&licen_chain::FlowReceipt>,
) -> Result<()> {
    let started = Instant::now();
    loop {
        if client.file_info(root).await?.is_some() {
            return Ok(());
        }
        if started.elapsed() > NODE_SEES_SUBMISSION {
            let submission = match receipt {
                Some(r) => format!("Flow submission #{} (transaction {})", r.tx_seq, r.tx),
                None => format!("the Flow submission of {root}, which another node has seen,"),
            };
            anyhow::bail!(
                "the storage node {} has not seen {submission} after {} s: is it following this \
                 Flow contract (`licen storage-node --flow`)? The file is paid for: run the same \
                 command again once the node knows it, and it uploads without paying again",
                client.url(),
                NODE_SEES_SUBMISSION.as_secs()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

pub(crate) async fn get(args: GetArgs, json: bool) -> Result<()> {
    ensure_absent(&args.output)?;
    let root = args.root.parse().map_err(|_| {
        anyhow::anyhow!(
            "`{}` is not a root: expected 0x followed by 64 hex digits",
            args.root
        )
    })?;
    let storage = args.storage.open()?;
    let from = args.storage.describe();
    let info = storage
        .file_info(root)
        .await
        .with_context(|| format!("asking {from} about {root}"))?
        .with_context(|| format!("{from} does not hold a file with root {root}"))?;
    let bar = bytes_bar("downloading", info.tx.size, json);
    let done = storage
        .download_to_path(
            root,
            &args.output,
            DownloadOptions::default(),
            Some(storage_progress(&bar)),
        )
        .await
        .with_context(|| format!("downloading {root} from {from}"))?;
    bar.finish_and_clear();
    if json {
        crate::output::print_line(&crate::output::Got {
            root: done.root,
            size_bytes: done.size,
            output: args.output,
            node: done.node,
            peak_rss_bytes: crate::files::peak_rss_bytes(),
        });
    } else {
        eprintln!("verified {} bytes against {root}", done.size);
        println!("{}", args.output.display());
    }
    Ok(())
}

pub(crate) async fn storage_node(args: StorageNodeArgs, json: bool) -> Result<()> {
    let stop = crate::dev::StopSignal::install()?;
    let network = crate::network::current();
    let rpc_url = crate::network::rpc_url(args.rpc_url.as_deref());
    let flow = match args.flow {
        Some(address) => {
            let connection = licen_chain::connect(rpc_url, None)?;
            let provider = connection.provider.clone();
            Some((
                licen_chain::FlowClient::new(connection, address, FlowAbi::Current),
                provider,
            ))
        }
        None => None,
    };
    let mut followed = None;
    if let Some((flow, provider)) = &flow {
        // Refuse another chain, then a wrong address, before serving anything.
        let chain_id = network.check_chain(provider, rpc_url).await?;
        flow.price_per_sector().await.with_context(|| {
            format!("checking the Flow contract {} on {rpc_url}", flow.address(),)
        })?;
        followed = Some(licen_storage::node::FollowedFlow {
            chain_id,
            address: flow.address(),
        });
    }
    let running = std::sync::Arc::new(
        node::start(NodeConfig {
            data_dir: args.data_dir,
            listen: args.listen,
            max_body_bytes: args.max_body_bytes,
            full_rehash: false,
            flow: followed,
            shard: args.shard,
        })
        .await
        .context("starting the storage node")?,
    );
    if json {
        crate::output::print_line(&crate::output::StorageNodeStarted {
            storage_url: running.url(),
        });
    } else {
        println!("listening on {}", running.url());
    }
    let follower = match flow {
        Some((flow, provider)) => {
            let from =
                resume_block(&running, flow.address(), args.flow_start_block, &provider).await?;
            tracing::info!(flow = %flow.address(), from_block = from, "following the Flow contract's submissions");
            Some(tokio::spawn(follow_flow(
                flow,
                provider,
                std::sync::Arc::clone(&running),
                from,
                args.flow_confirmations,
            )))
        }
        None => None,
    };
    stop.wait().await;
    if let Some(follower) = follower {
        follower.abort();
        let _ = follower.await;
    }
    match std::sync::Arc::try_unwrap(running) {
        Ok(running) => running.shutdown().await?,
        Err(_) => anyhow::bail!("the storage node is still in use at shutdown"),
    }
    Ok(())
}

/// `licen storage-indexer`: a local 0G storage indexer over the given nodes, until Ctrl-C or
/// SIGTERM.
pub(crate) async fn storage_indexer(args: StorageIndexerArgs, json: bool) -> Result<()> {
    let stop = crate::dev::StopSignal::install()?;
    for url in &args.nodes {
        StorageClient::new(url).with_context(|| format!("--node {url}"))?;
    }
    let running = licen_storage::indexer::service::start(IndexerConfig {
        listen: args.listen,
        nodes: args.nodes,
    })
    .await
    .context("starting the storage indexer")?;
    if json {
        crate::output::print_line(&crate::output::StorageIndexerStarted {
            storage_indexer_url: running.url(),
        });
    } else {
        println!("listening on {}", running.url());
    }
    stop.wait().await;
    running.shutdown().await?;
    Ok(())
}

/// Blocks per `eth_getLogs` while catching up (public RPCs cap the range).
const FLOW_LOG_RANGE: u64 = 5_000;

/// Where a follower of `flow` starts: after the last block the node's data directory has every
/// submission of, or at `start` (the Flow's deployment). Refuses a data directory that follows
/// another Flow, or whose last block the chain at `provider` no longer has (a reorg deeper than
/// the confirmations waited for, or a replaced chain: submissions recorded from it may not hold).
pub(crate) async fn resume_block(
    node: &node::RunningNode,
    flow: alloy::primitives::Address,
    start: u64,
    provider: &alloy::providers::DynProvider,
) -> Result<u64> {
    let Some(cursor) = node
        .flow_cursor(flow)
        .context("resuming the Flow follower")?
    else {
        return Ok(start);
    };
    match chain_has(provider, cursor.block, cursor.hash).await? {
        ChainHas::Block => {}
        ChainHas::NotYet { head } => anyhow::bail!(
            "the chain at this RPC URL is at block {head}, behind block {} up to which this node \
             recorded the Flow's submissions: wait until the RPC has caught up, then start the \
             node again (or check that the URL is this Flow's chain)",
            cursor.block
        ),
        ChainHas::OtherBlock => anyhow::bail!(
            "the chain no longer has block {} (hash {}) up to which this node recorded the Flow's \
             submissions: a reorg deeper than --flow-confirmations, or another chain at this RPC \
             URL; the submissions recorded may not hold there, so give the node a fresh data dir",
            cursor.block,
            cursor.hash
        ),
    }
    Ok((cursor.block + 1).max(start))
}

/// What the chain at an RPC has at a block height.
pub(crate) enum ChainHas {
    /// The block with the hash asked about.
    Block,
    /// Nothing yet: its head is below the height.
    NotYet {
        /// Its head.
        head: u64,
    },
    /// Another block at that height.
    OtherBlock,
}

/// Whether the chain at `provider` has block `number` with hash `hash`.
pub(crate) async fn chain_has(
    provider: &alloy::providers::DynProvider,
    number: u64,
    hash: alloy::primitives::B256,
) -> Result<ChainHas> {
    use alloy::providers::Provider as _;
    let block = provider
        .get_block_by_number(number.into())
        .await
        .with_context(|| format!("reading block {number} of the Flow's chain"))?;
    Ok(match block {
        Some(b) if b.header.hash == hash => ChainHas::Block,
        Some(_) => ChainHas::OtherBlock,
        None => ChainHas::NotYet {
            head: provider
                .get_block_number()
                .await
                .context("reading the Flow chain's head")?,
        },
    })
}

/// Registers every Flow submission with the node, from `from` on, as blocks arrive, and records
/// how far it got in the node's data directory ([`resume_block`] starts there next time;
/// registering again is idempotent).
pub(crate) async fn follow_flow(
    flow: licen_chain::FlowClient,
    provider: alloy::providers::DynProvider,
    node: std::sync::Arc<node::RunningNode>,
    from: u64,
    confirmations: u64,
) {
    use alloy::providers::Provider as _;
    let mut next = from;
    loop {
        match provider
            .get_block_number()
            .await
            .map(|head| head.saturating_sub(confirmations))
        {
            Ok(head) if head >= next => {
                let to = head.min(next + FLOW_LOG_RANGE - 1);
                // The last block's hash, read before and after its logs: a reorg in between
                // would pair the new chain's hash with the old chain's submissions.
                let hash_of = |number: u64| {
                    let provider = &provider;
                    async move {
                        provider
                            .get_block_by_number(number.into())
                            .await
                            .ok()
                            .flatten()
                            .map(|b| b.header.hash)
                    }
                };
                let before = hash_of(to).await;
                match flow.submissions(next, to).await {
                    Ok(files) => {
                        let mut recorded = true;
                        for file in files {
                            let submitted = node::Submitted {
                                root: file.root,
                                size: file.size,
                                seq: file.tx_seq,
                                start_entry: file.start_entry,
                            };
                            match node.register_submission(submitted) {
                                Ok(true) => {
                                    tracing::info!(seq = file.tx_seq, root = %file.root, size = file.size, block = file.block, "Flow submission seen; the file may be uploaded")
                                }
                                Ok(false) => {}
                                Err(e) => {
                                    tracing::error!(error = %e, "cannot record a Flow submission; retrying");
                                    recorded = false;
                                    break;
                                }
                            }
                        }
                        let after = hash_of(to).await;
                        if recorded && before.is_some() && before != after {
                            tracing::warn!(
                                block = to,
                                "the chain reorganised while its Flow submissions were read; reading them again"
                            );
                        } else if recorded {
                            // The block's hash lets a restart tell its chain still has it.
                            let recorded_cursor = match after {
                                Some(hash) => node.set_flow_cursor(node::FlowCursor {
                                    flow: flow.address(),
                                    block: to,
                                    hash,
                                }),
                                None => Err(licen_storage::Error::InvalidInput(format!(
                                    "block {to} could not be read for its hash"
                                ))),
                            };
                            if let Err(e) = recorded_cursor {
                                tracing::warn!(error = %e, "cannot record how far the Flow was followed; a restart reads those blocks again");
                            }
                            next = to + 1;
                            continue;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "reading Flow submissions failed; retrying")
                    }
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "reading the chain head failed; retrying"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

#[derive(Debug, Args)]
pub(crate) struct ComputeNodeArgs {
    /// Folder for the node's insecure dev attestation key and per-job work dirs.
    #[arg(long, env = "LICEN_COMPUTE_DATA_DIR", default_value = ".licen/compute")]
    data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7878")]
    listen: SocketAddr,
    /// Where the node downloads datasets from and uploads results to.
    #[command(flatten)]
    storage: StorageArgs,
    /// Which trainer runs the jobs (`--trainer lora --model DIR` for real LoRA training).
    #[command(flatten)]
    trainer: licen_compute::lora::TrainerArgs,
    /// On 0G storage: the node pays the Flow contract for each result and evidence file it
    /// uploads, from its operator's wallet (`--private-key` / `LICEN_PRIVATE_KEY` / keystore).
    #[command(flatten)]
    payment: FlowPayment,
}

/// Pays for the compute node's uploads (result, evidence) from the operator's wallet: to
/// `--flow`, else to the Flow the nodes of each upload follow (nothing when they follow none).
/// Each upload asks its nodes afresh, and uploads of several jobs pay at once (the wallet's
/// nonces are kept by `licen-chain`).
pub(crate) struct FlowPayer {
    flow: FlowArgs,
    rpc_url: String,
    /// `None`: no wallet was configured, which is only an error once a Flow is to be paid.
    signer: Option<alloy::signers::local::PrivateKeySigner>,
}

impl FlowPayer {
    /// Pays from `payment`'s wallet. With `--flow`, the wallet must be there now; without, it
    /// is asked for only when the nodes name a Flow.
    fn new(payment: &FlowPayment) -> Result<Self> {
        let signer = if payment.flow.flow.is_some() || payment.wallet.is_given() {
            Some(payment.wallet.signer()?)
        } else {
            None
        };
        Ok(Self {
            flow: payment.flow.clone(),
            rpc_url: payment.rpc_url(),
            signer,
        })
    }

    /// Pays `flow` (`None`: the nodes' Flow) from `signer` over `rpc_url`.
    pub(crate) fn with_wallet(
        flow: Option<alloy::primitives::Address>,
        rpc_url: &str,
        signer: alloy::signers::local::PrivateKeySigner,
    ) -> Self {
        Self {
            flow: FlowArgs {
                flow,
                flow_abi: FlowAbiArg::Auto,
            },
            rpc_url: rpc_url.to_owned(),
            signer: Some(signer),
        }
    }

    async fn pay_for(
        &self,
        nodes: &[StorageClient],
        tree: &FileTree,
    ) -> Result<Option<licen_chain::FlowReceipt>> {
        let wallet = || {
            self.signer.clone().context(
                "the storage nodes take only files paid through their Flow contract: start the \
                 compute node with a wallet to pay from (--private-key, --keystore, \
                 LICEN_PRIVATE_KEY or LICEN_KEYSTORE)",
            )
        };
        let Some(flow) = self.flow.client(&self.rpc_url, wallet, nodes).await? else {
            return Ok(None);
        };
        pay_for_storage(nodes, &flow, tree, true).await
    }
}

impl licen_compute::StoragePayer for FlowPayer {
    fn pay<'a>(
        &'a self,
        nodes: &'a [StorageClient],
        tree: &'a FileTree,
    ) -> licen_storage::store::BoxFuture<'a, std::result::Result<(), String>> {
        Box::pin(async move {
            match self.pay_for(nodes, tree).await {
                Ok(Some(receipt)) => {
                    tracing::info!(root = %tree.root(), tx_seq = receipt.tx_seq, fee_wei = %receipt.fee, tx = %receipt.tx, "paid the Flow for an upload");
                    Ok(())
                }
                Ok(None) => Ok(()),
                Err(e) => Err(format!("{e:#}")),
            }
        })
    }
}

pub(crate) async fn compute_node(args: ComputeNodeArgs, json: bool) -> Result<()> {
    let stop = crate::dev::StopSignal::install()?;
    // The model folder is opened and checked now, before the node accepts any job.
    let trainer = args
        .trainer
        .factory()
        .map_err(anyhow::Error::msg)
        .context("configuring the compute node's trainer")?;
    let payer = FlowPayer::new(&args.payment)?;
    let network = crate::network::current();
    if network != licen_chain::Network::Dev {
        // A wrong RPC endpoint would otherwise show only when a finished job's result is paid.
        let connection = licen_chain::connect(&payer.rpc_url, None)?;
        network
            .check_chain(&connection.provider, &payer.rpc_url)
            .await?;
    }
    let payer: Option<std::sync::Arc<dyn licen_compute::StoragePayer>> =
        Some(std::sync::Arc::new(payer));
    let running = licen_compute::node::start(licen_compute::node::NodeConfig {
        trainer,
        payer,
        ..licen_compute::node::NodeConfig::new(args.data_dir, args.listen, args.storage.endpoint()?)
    })
    .await
    .context("starting the compute node")?;
    if json {
        crate::output::print_line(&crate::output::ComputeNodeStarted {
            compute_url: running.url(),
            compute_attestation_key: running.attestation_key().into(),
            measurement: running.measurement().into(),
            warning: "INSECURE development attestation: for local nodes only",
        });
    } else {
        println!("listening on {}", running.url());
        println!(
            "INSECURE development attestation key 0x{} measurement 0x{}",
            hex::encode(running.attestation_key()),
            hex::encode(running.measurement())
        );
    }
    stop.wait().await;
    running.shutdown().await?;
    Ok(())
}
