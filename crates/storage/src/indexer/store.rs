//! [`IndexerStore`]: one file spread over the sharded nodes an indexer names.
//!
//! Upload: ask the indexer for its trusted nodes, ask each node its shard (as 0G's client
//! does: the node, not the indexer, decides what it accepts), pick a set that holds every
//! segment `replicas` times, hash the file once, and upload to the picked nodes at once; each
//! node is sent only its shard's segments and the upload ends when every picked node reports
//! the file finalized. Download: ask the indexer which nodes hold the file, check each node's
//! file info (size, Flow position) and shard, then fetch each segment from a node whose shard
//! holds it (the next such node when one fails), verified against the root before it is
//! written, in order.

use std::path::Path;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt as _;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::IndexerClient;
use crate::client::{
    ClientConfig, DownloadOptions, FileReads, StorageClient, tree_of_bytes, tree_of_file,
    usable_for_download,
};
use crate::error::{Error, Result};
use crate::merkle::{FileLayout, FileTree, Hash};
use crate::rpc::FileInfo;
use crate::shard::{SelectOrder, ShardConfig, select};
use crate::store::{BoxFuture, Downloaded, Phase, Progress, ProgressFn, Store, Uploaded};

/// The [`Store`] behind a 0G storage indexer.
#[derive(Clone, Debug)]
pub struct IndexerStore {
    indexer: IndexerClient,
    cfg: ClientConfig,
    replicas: u32,
}

/// A node and its shard.
#[derive(Clone, Debug)]
struct Holder {
    node: StorageClient,
    shard: ShardConfig,
    /// The file's first Flow entry, as this node has it (downloads).
    start_entry: u64,
}

impl IndexerStore {
    /// A store behind the indexer at `url`, one copy of every segment.
    pub fn new(url: &str) -> Result<Self> {
        Self::with_config(url, ClientConfig::default(), 1)
    }

    /// A store with explicit node-client tuning and `replicas` copies of every segment.
    pub fn with_config(url: &str, cfg: ClientConfig, replicas: u32) -> Result<Self> {
        if replicas == 0 {
            return Err(Error::InvalidInput(
                "replicas must be at least 1: every segment needs a node to hold it".into(),
            ));
        }
        Ok(IndexerStore {
            indexer: IndexerClient::new(url)?,
            cfg,
            replicas,
        })
    }

    /// The indexer.
    pub fn indexer(&self) -> &IndexerClient {
        &self.indexer
    }

    /// The nodes an upload goes to: the indexer's trusted nodes that answer, picked so that
    /// every segment is held `replicas` times.
    pub async fn select_nodes(&self) -> Result<Vec<StorageClient>> {
        let listed = self.indexer.sharded_nodes().await?.trusted;
        let asked = futures_util::future::join_all(listed.iter().map(|n| async move {
            let node = StorageClient::with_config(&n.url, self.cfg.clone())?;
            let shard = node.shard_config().await?;
            Ok::<_, Error>((node, shard))
        }))
        .await;
        let mut candidates = Vec::new();
        for (n, answer) in listed.iter().zip(asked) {
            match answer {
                Ok(c) => candidates.push(c),
                Err(e) => {
                    tracing::warn!(node = %n.url, error = %e, "storage node named by the indexer does not answer; leaving it out")
                }
            }
        }
        let shards: Vec<ShardConfig> = candidates.iter().map(|(_, s)| *s).collect();
        let picked =
            select(&shards, self.replicas, SelectOrder::FewestShards).ok_or_else(|| {
                Error::NoCoveringNodes {
                    url: self.indexer.url().to_string(),
                    shards: if shards.is_empty() {
                        "none answering".into()
                    } else {
                        shards
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    },
                    replicas: self.replicas,
                }
            })?;
        Ok(picked
            .into_iter()
            .map(|i| candidates[i].0.clone())
            .collect())
    }

    /// Uploads the file at `path` whose tree is known to the nodes [`select_nodes`]
    /// (Self::select_nodes) picks.
    pub async fn upload_file_with_tree(
        &self,
        path: &Path,
        tree: &FileTree,
        progress: Option<ProgressFn>,
    ) -> Result<Uploaded> {
        upload_file_to(
            &self.select_nodes().await?,
            path,
            tree,
            FileReads::Cached,
            progress,
        )
        .await
    }

    /// The nodes holding `root`, each with its shard and the file's info; checked to hold
    /// every segment between them.
    async fn holders(
        &self,
        root: Hash,
        expected_size: Option<u64>,
    ) -> Result<(Vec<Holder>, FileLayout)> {
        let not_located = || Error::NotLocated {
            url: self.indexer.url().to_string(),
            root,
        };
        let located = self
            .indexer
            .file_locations(root)
            .await?
            .ok_or_else(not_located)?;
        let answers = futures_util::future::join_all(located.iter().map(|n| async move {
            let node = StorageClient::with_config(&n.url, self.cfg.clone())?;
            let shard = node.shard_config().await?;
            let info = node.file_info(root).await?;
            Ok::<_, Error>((node, shard, info))
        }))
        .await;
        let mut layout = expected_size.map(FileLayout::new);
        let mut holders = Vec::new();
        let mut errors = Vec::new();
        for answer in answers {
            let (node, shard, info) = match answer {
                Ok((node, shard, info)) => {
                    match usable_for_download(node.url(), root, info, &mut layout) {
                        Ok(info) => (node, shard, info),
                        Err(why) => {
                            errors.push(why);
                            continue;
                        }
                    }
                }
                Err(e) => {
                    errors.push(e.to_string());
                    continue;
                }
            };
            holders.push(Holder {
                node,
                shard,
                start_entry: info.tx.start_entry_index,
            });
        }
        let layout = layout.ok_or_else(|| Error::AllNodesFailed {
            root,
            errors: errors.clone(),
        })?;
        for i in 0..layout.segments() {
            if !holders
                .iter()
                .any(|h| h.shard.holds_file_segment(h.start_entry, i))
            {
                errors.push(format!("no answering node holds segment {i}"));
                return Err(Error::AllNodesFailed { root, errors });
            }
        }
        Ok((holders, layout))
    }

    /// The file info of the first trusted node that knows `root` (`None`: none does).
    async fn known_to_a_node(&self, root: Hash) -> Result<Option<FileInfo>> {
        for listed in self.indexer.sharded_nodes().await?.trusted {
            let node = StorageClient::with_config(&listed.url, self.cfg.clone())?;
            match node.file_info(root).await {
                Ok(Some(info)) => return Ok(Some(info)),
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(node = %listed.url, %root, error = %e, "asking a node about a file")
                }
            }
        }
        Ok(None)
    }

    /// Downloads `root` into `writer`, each segment from a node holding it, verified before
    /// it is written.
    pub async fn download(
        &self,
        root: Hash,
        writer: &mut (dyn AsyncWrite + Unpin + Send),
        options: DownloadOptions,
        progress: Option<ProgressFn>,
    ) -> Result<Downloaded> {
        let (holders, layout) = self.holders(root, options.expected_size).await?;
        let size = layout.size();
        let report = |done| {
            if let Some(p) = &progress {
                p(Progress {
                    phase: Phase::Downloading,
                    done,
                    total: size,
                });
            }
        };
        report(0);
        let holders = &holders;
        let mut segments = futures_util::stream::iter(0..layout.segments())
            .map(|i| async move {
                let mut errors = Vec::new();
                let candidates = holders
                    .iter()
                    .filter(|h| h.shard.holds_file_segment(h.start_entry, i));
                // Spread the segments over the holders of each shard.
                let n = candidates.clone().count();
                for h in candidates.cycle().skip(i as usize % n.max(1)).take(n) {
                    match h.node.fetch_verified(root, layout, i).await {
                        Ok(data) => return Ok(data),
                        Err(e) => {
                            tracing::warn!(node = h.node.url(), %root, segment = i, error = %e, "segment failed from this node; trying the next holding it");
                            errors.push(e.to_string());
                        }
                    }
                }
                Err(Error::AllNodesFailed { root, errors })
            })
            .buffered(self.cfg.max_in_flight);
        let mut done = 0u64;
        while let Some(data) = segments.next().await {
            let data = data?;
            writer
                .write_all(&data)
                .await
                .map_err(|e| Error::io(format!("writing downloaded file {root}"), e))?;
            done += data.len() as u64;
            report(done);
        }
        writer
            .flush()
            .await
            .map_err(|e| Error::io(format!("flushing downloaded file {root}"), e))?;
        Ok(Downloaded {
            root,
            size,
            node: holders
                .iter()
                .map(|h| h.node.url())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }
}

/// Refuses nodes that do not hold every segment between them (a shard node given alone would
/// otherwise take its share and leave the rest of the file nowhere).
/// Returns each node's expected share of a file's bytes (`1 / NUM_SHARD` of them), to seed
/// the combined progress before every node has reported.
async fn check_cover(nodes: &[StorageClient]) -> Result<Vec<f64>> {
    let mut shards = Vec::with_capacity(nodes.len());
    for node in nodes {
        shards.push(node.shard_config().await?);
    }
    if select(&shards, 1, SelectOrder::AsGiven).is_some() {
        return Ok(shards.iter().map(|s| 1.0 / s.num_shard as f64).collect());
    }
    let list = |items: Vec<String>| items.join(", ");
    Err(Error::NodesDoNotCover {
        nodes: list(nodes.iter().map(|n| n.url().to_string()).collect()),
        shards: list(shards.iter().map(ToString::to_string).collect()),
    })
}

/// Uploads the file at `path` (whose tree is known) to each of `nodes` at once: each is sent
/// the segments of its shard. Ends when every node reports the file finalized. Refused, before
/// anything is sent, when the nodes do not hold every segment between them.
pub async fn upload_file_to(
    nodes: &[StorageClient],
    path: &Path,
    tree: &FileTree,
    reads: FileReads,
    progress: Option<ProgressFn>,
) -> Result<Uploaded> {
    let shares = check_cover(nodes).await?;
    let progress = Combined::new(&shares, tree.layout().size(), progress);
    let uploads = nodes.iter().enumerate().map(|(i, node)| {
        let progress = progress.for_node(i);
        async move {
            node.upload_file_with_tree(path, tree, reads, progress)
                .await
        }
    });
    merge(futures_util::future::try_join_all(uploads).await?)
}

/// [`upload_file_to`] for bytes in memory (manifests, key envelopes), hashed once.
pub async fn upload_bytes_to(
    nodes: &[StorageClient],
    data: &[u8],
    progress: Option<ProgressFn>,
) -> Result<Uploaded> {
    if data.is_empty() {
        return Err(Error::InvalidInput(
            "0G storage does not accept empty files".into(),
        ));
    }
    let shares = check_cover(nodes).await?;
    let data: Arc<[u8]> = Arc::from(data);
    let tree = Arc::new(tree_of_bytes(data.clone()).await?);
    let progress = Combined::new(&shares, data.len() as u64, progress);
    let uploads = nodes.iter().enumerate().map(|(i, node)| {
        node.upload_bytes_with_tree(data.clone(), tree.clone(), progress.for_node(i))
    });
    merge(futures_util::future::try_join_all(uploads).await?)
}

/// One upload's receipt from the receipts of its nodes.
fn merge(receipts: Vec<Uploaded>) -> Result<Uploaded> {
    let mut it = receipts.into_iter();
    let mut all = it
        .next()
        .ok_or_else(|| Error::InvalidInput("no storage node to upload to".into()))?;
    for r in it {
        all.sent_segments += r.sent_segments;
        all.skipped_segments += r.skipped_segments;
        all.already_stored &= r.already_stored;
        all.finalized &= r.finalized;
    }
    Ok(all)
}

/// Progress of several node uploads reported as one: the bytes sent to all of them over the
/// bytes all of them take. A node that has not reported yet counts with its expected share,
/// so the total does not jump when it does.
struct Combined {
    user: Option<ProgressFn>,
    nodes: Mutex<Vec<(u64, u64)>>,
}

impl Combined {
    fn new(shares: &[f64], size: u64, user: Option<ProgressFn>) -> Arc<Self> {
        let expected = |share: f64| (size as f64 * share).ceil() as u64;
        Arc::new(Combined {
            user,
            nodes: Mutex::new(shares.iter().map(|&s| (0, expected(s))).collect()),
        })
    }

    fn for_node(self: &Arc<Self>, i: usize) -> Option<ProgressFn> {
        self.user.as_ref()?;
        let me = self.clone();
        Some(Arc::new(move |p: Progress| {
            let (done, total) = {
                let mut nodes = me.nodes.lock().expect("poisoned");
                nodes[i] = (p.done, p.total);
                nodes
                    .iter()
                    .fold((0, 0), |(d, t), (nd, nt)| (d + nd, t + nt))
            };
            if let Some(user) = &me.user {
                user(Progress {
                    phase: p.phase,
                    done,
                    total,
                });
            }
        }))
    }
}

impl Store for IndexerStore {
    fn put_file<'a>(
        &'a self,
        path: &'a Path,
        progress: Option<ProgressFn>,
    ) -> BoxFuture<'a, Result<Uploaded>> {
        Box::pin(async move {
            let tree = tree_of_file(path, progress.clone()).await?;
            self.upload_file_with_tree(path, &tree, progress).await
        })
    }

    fn put_bytes<'a>(
        &'a self,
        data: &'a [u8],
        progress: Option<ProgressFn>,
    ) -> BoxFuture<'a, Result<Uploaded>> {
        Box::pin(async move { upload_bytes_to(&self.select_nodes().await?, data, progress).await })
    }

    fn get<'a>(
        &'a self,
        root: Hash,
        writer: &'a mut (dyn AsyncWrite + Unpin + Send),
        options: DownloadOptions,
        progress: Option<ProgressFn>,
    ) -> BoxFuture<'a, Result<Downloaded>> {
        Box::pin(self.download(root, writer, options, progress))
    }

    /// The file as the nodes holding it report it: finalized when the indexer locates a set
    /// of nodes holding every segment.
    fn file_info(&self, root: Hash) -> BoxFuture<'_, Result<Option<FileInfo>>> {
        Box::pin(async move {
            match self.holders(root, None).await {
                Ok((holders, _)) => Ok(holders[0].node.file_info(root).await?),
                // Not stored everywhere yet (paid for, or partly uploaded): what a node that
                // knows it says, as one node would.
                Err(Error::NotLocated { .. }) => self.known_to_a_node(root).await,
                Err(e) => Err(e),
            }
        })
    }

    fn has_segment(&self, root: Hash, index: u64) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move {
            match self.holders(root, None).await {
                Ok((holders, layout)) => Ok(index < layout.segments()
                    && holders
                        .iter()
                        .any(|h| h.shard.holds_file_segment(h.start_entry, index))),
                Err(Error::NotLocated { .. }) => Ok(false),
                Err(e) => Err(e),
            }
        })
    }
}
