//! The local storage node: a real HTTP JSON-RPC 2.0 server (POST /) speaking the subset of 0G's
//! zgs API that a 0G client uses, so the same [`crate::client::StorageClient`] talks to it and
//! to 0G storage nodes.
//!
//! Methods: `zgs_getStatus`, `zgs_uploadSegment`, `zgs_uploadSegments`, their `…ByTxSeq` forms
//! (what 0G's own clients send once they know the submission's sequence number),
//! `zgs_downloadSegment`, `zgs_downloadSegmentByTxSeq`, `zgs_downloadSegmentWithProof`,
//! `zgs_getFileInfo`, `zgs_getFileInfoByTxSeq`,
//! `zgs_checkFileFinalized`, `zgs_getShardConfig`, plus the extension
//! `licen_uploadedSegments` (which segments of a partial upload are stored).
//!
//! Differences from a 0G node, on purpose:
//! - 0G accepts segments only for a file whose Flow submission is on chain. So does this node in
//!   Flow mode ([`NodeConfig::flow`]: whoever follows the Flow contract's `Submit` events
//!   tells it through [`RunningNode::register_submission`]; `licen storage-node --flow` does);
//!   the file then has the submission's sequence number and flow position. Without Flow mode
//!   (the dev default) a file comes into existence when its first segment arrives carrying
//!   `fileSize`; its root is the one the segments are proven against, and `startEntryIndex`
//!   is 0.
//! - Empty files are accepted (one empty segment, root = keccak of one zero chunk); 0G refuses
//!   them.
//! - Re-sending a segment of an unfinished file is accepted (idempotent) instead of 0G's
//!   "segment has already been uploaded" error; segments of a finalized file get 0G's
//!   "already uploaded and finalized" error.
//! - Downloads are served only for finalized files (0G may serve a file as it syncs).
//!
//! Sharding, as 0G's `shard_position` ([`NodeConfig::shard`], [`crate::shard`]): a node
//! `SHARD_ID/NUM_SHARD` keeps only the segments whose Flow position
//! (`startEntryIndex / 1024` + index) is `SHARD_ID` modulo `NUM_SHARD`. It verifies every
//! uploaded segment (size, proof) and silently drops other shards' ones (the upload answers
//! `null`); a file is finalized once all of the node's own segments are stored and re-hashed
//! (`uploadedSegNum` then counts the whole file, as 0G's does; before, the own segments
//! stored); downloads of another shard's segment answer `null`, as for an unknown file;
//! `zgs_getShardConfig` answers the configured shard. A sharded node keeps each own segment's
//! proof as it was uploaded (it cannot rebuild the file's tree) and serves that, and leaves
//! `merkleNodes` empty. A data directory keeps the shard it was first used with.
//!
//! What it must never do: report a file finalized whose bytes do not hash to its root (the private `disk`
//! module documents the crash-safety protocol), accept a segment whose proof does not verify, or
//! look at what the bytes mean (they are ciphertext).

mod disk;
mod server;
mod submissions;

pub use disk::Submitted;
pub use submissions::{FlowCursor, read_cursor};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::shard::ShardConfig;

pub use server::router;

/// Default request body limit: 64 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 << 20;

/// How to run a node.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Where files live (created if missing).
    pub data_dir: PathBuf,
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes; larger requests get HTTP 413 and a JSON-RPC
    /// -32600 error.
    pub max_body_bytes: usize,
    /// Re-hash every segment from disk at finalization, including those this process verified
    /// just before writing them. Off by default: those segments' bytes are the ones that were
    /// hashed, and a re-read would come from the same page cache; segments that survived a
    /// restart are always re-hashed.
    pub full_rehash: bool,
    /// Flow mode: the 0G Flow contract the node follows. It then accepts only files whose Flow
    /// submission was registered, as 0G nodes do, and names the contract and its chain in
    /// `zgs_getStatus` (`networkIdentity`), where 0G's clients learn what to pay.
    pub flow: Option<FollowedFlow>,
    /// Which segments the node keeps (0G's `shard_position`; [`ShardConfig::WHOLE`]: all).
    /// A data directory keeps the shard it was first used with.
    pub shard: ShardConfig,
}

impl NodeConfig {
    /// A config with the given data directory, listening on `127.0.0.1:5678` (0G's default
    /// zgs RPC port) with a 64 MiB body limit.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        NodeConfig {
            data_dir: data_dir.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 5678)),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            full_rehash: false,
            flow: None,
            shard: ShardConfig::WHOLE,
        }
    }
}

pub use crate::zerog::FollowedFlow;

/// Shared state of a running node.
pub struct NodeState {
    disk: disk::Disk,
    max_body_bytes: usize,
    flow: Option<FollowedFlow>,
}

impl NodeState {
    /// Opens the data directory (resuming partial uploads and finalizing complete ones).
    pub fn open(config: &NodeConfig) -> Result<Arc<NodeState>> {
        let disk = disk::Disk::open(
            &config.data_dir,
            config.full_rehash,
            config.flow.is_some(),
            config.shard,
        )
        .map_err(|e| {
            Error::io(
                format!(
                    "opening the node data directory {}",
                    config.data_dir.display()
                ),
                e,
            )
        })?;
        Ok(Arc::new(NodeState {
            disk,
            max_body_bytes: config.max_body_bytes,
            flow: config.flow,
        }))
    }
}

/// A node serving in the background of the current tokio runtime.
pub struct RunningNode {
    addr: SocketAddr,
    shard: ShardConfig,
    state: Arc<NodeState>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl std::fmt::Debug for RunningNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningNode")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl RunningNode {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`: the URL clients use.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The shard it holds.
    pub fn shard(&self) -> ShardConfig {
        self.shard
    }

    /// Records a Flow submission (Flow mode): its file may now be uploaded. Returns whether it
    /// was new. Errors when the node is not in Flow mode or cannot write its record.
    pub fn register_submission(&self, submitted: Submitted) -> Result<bool> {
        self.state
            .disk
            .register_submission(submitted)
            .map_err(|e| Error::io("recording a Flow submission", e))
    }

    /// Flow mode: the last block whose submissions to `flow` are all registered in this data
    /// directory, and its hash (`None`: none yet), so a follower resumes after it. Errors when
    /// the directory follows another Flow contract.
    pub fn flow_cursor(&self, flow: alloy_primitives::Address) -> Result<Option<FlowCursor>> {
        self.state
            .disk
            .flow_cursor(flow)
            .map_err(|e| Error::io("reading the Flow follower's cursor", e))
    }

    /// Flow mode: records that every submission to `cursor.flow` through `cursor.block` is
    /// registered.
    pub fn set_flow_cursor(&self, cursor: FlowCursor) -> Result<()> {
        self.state
            .disk
            .set_flow_cursor(cursor)
            .map_err(|e| Error::io("recording the Flow follower's cursor", e))
    }

    /// Stops accepting requests, lets in-flight ones finish, and waits.
    pub async fn shutdown(mut self) -> Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.wait().await
    }

    /// Waits until the server stops (it only stops on shutdown or error).
    pub async fn wait(self) -> Result<()> {
        match self.task.await {
            Ok(r) => r.map_err(|e| Error::io("serving the storage node", e)),
            Err(e) => Err(Error::io("the storage node task", std::io::Error::other(e))),
        }
    }
}

/// Opens the data directory, binds `config.listen` and serves in the background.
pub async fn start(config: NodeConfig) -> Result<RunningNode> {
    let cfg = config.clone();
    let state = tokio::task::spawn_blocking(move || NodeState::open(&cfg))
        .await
        .map_err(|e| Error::io("opening the node", std::io::Error::other(e)))??;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| Error::io(format!("binding {}", config.listen), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("reading the bound address", e))?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = router(state.clone());
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
    });
    tracing::info!(%addr, data_dir = %config.data_dir.display(), shard = %config.shard, "storage node listening");
    Ok(RunningNode {
        addr,
        shard: config.shard,
        state,
        shutdown: Some(tx),
        task,
    })
}
