//! The zgs JSON-RPC client: uploads and downloads files segment by segment against one storage
//! node (the local node or a 0G node; same protocol).
//!
//! A sharded node (`zgs_getShardConfig` other than `0/1`) is sent only the segments of its
//! shard, by their Flow position ([`crate::shard`]); a whole-file download from it is refused
//! with [`Error::PartialNode`] (the [`crate::indexer::IndexerStore`] spreads a file over nodes).
//!
//! Upload: a first pass computes the segment tree (root and proofs), then segments are read
//! again with positional reads, each paired with its proof, and sent in `zgs_uploadSegments`
//! batches with a few requests in flight. Memory stays bounded (a few batches), never the
//! whole file. Segments the node already holds are skipped (finalized file: everything;
//! partial upload on the local node: exactly the missing segments, via the
//! `licen_uploadedSegments` extension; on 0G, duplicate-segment errors are tolerated).
//!
//! Download: `zgs_downloadSegmentWithProof` segment by segment (pipelined, written in order);
//! every segment's data is hashed and its proof checked against the root the caller asked for
//! before a single byte of it reaches the writer. A failure names the node URL and the segment.
//!
//! Never logs or returns segment contents in errors, and never trusts the node's `root`,
//! `index` or proof without checking them.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt as _;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::error::{Error, Result};
use crate::merkle::{FileLayout, FileTree, Hash, RootBuilder, SEGMENT_SIZE, segment_root};
use crate::rpc::{
    self, FileInfo, RpcResponse, SegmentWithProof, Status, UploadedSegments, codes, methods,
};
use crate::shard::ShardConfig;
use crate::store::{BoxFuture, Downloaded, Phase, Progress, ProgressFn, Store, Uploaded};

/// Tuning of a [`StorageClient`].
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Segments per `zgs_uploadSegments` request (16 × 256 KiB ≈ 5.6 MB of JSON).
    pub batch_segments: usize,
    /// Requests in flight at once, for uploads and downloads. Eight keep a node busy while some
    /// of its requests wait on the disk (it writes segments with direct I/O).
    pub max_in_flight: usize,
    /// Timeout of one HTTP request.
    pub request_timeout: Duration,
    /// How long an upload waits for the node to report the file finalized after the last
    /// segment was accepted; zero: do not wait.
    pub finalize_timeout: Duration,
    /// Retries of a request that failed at the transport level (connection refused or reset).
    pub retries: u32,
    /// Ask the node which segments it has (`licen_uploadedSegments`) when resuming.
    pub use_extensions: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            batch_segments: 16,
            max_in_flight: 8,
            request_timeout: Duration::from_secs(120),
            finalize_timeout: Duration::from_secs(60),
            retries: 2,
            use_extensions: true,
        }
    }
}

/// Options of a download.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DownloadOptions {
    /// The size the caller knows from a trusted source (the manifest). A 0G root does not
    /// commit to how many trailing zero bytes a file has, so without it a node could pad or cut
    /// trailing zeros undetected.
    pub expected_size: Option<u64>,
}

/// Where an interrupted download stopped: segments before `next_segment` (`bytes_written`
/// bytes) were verified and written.
#[derive(Debug)]
pub struct PartialDownload {
    /// First segment not written.
    pub next_segment: u64,
    /// Bytes written so far.
    pub bytes_written: u64,
    /// Why it stopped.
    pub error: Error,
}

/// A client of one zgs JSON-RPC endpoint.
#[derive(Clone)]
pub struct StorageClient {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    http: reqwest::Client,
    cfg: ClientConfig,
    next_id: AtomicU64,
    /// The node's shard, once asked (a node's shard position does not change while it runs).
    shard: std::sync::OnceLock<ShardConfig>,
}

impl fmt::Debug for StorageClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageClient")
            .field("url", &self.inner.url)
            .finish()
    }
}

#[derive(Serialize)]
struct RpcRequestOut<'a, P: Serialize> {
    jsonrpc: &'static str,
    id: u64,
    method: &'a str,
    params: P,
}

/// How an upload reads its file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileReads {
    /// Through the page cache: for a file that may be cached (written or read recently), as
    /// most files are.
    Cached,
    /// With direct I/O ([`crate::direct`]), in one read per batch: for a file written with
    /// direct I/O and read once, such as the web server's staged uploads, which would otherwise
    /// fill the page cache afresh.
    Direct,
}

/// Where upload bytes come from.
enum Source {
    /// Read with direct I/O or through the page cache, as [`FileReads`] says.
    File(crate::direct::DirectFile),
    Bytes(Arc<[u8]>),
}

impl Source {
    /// Reads segment `index` as sent on the wire (last chunk zero-filled).
    fn segment(&self, layout: &FileLayout, index: u64) -> std::io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.segment_into(layout, index, &mut buf)?;
        Ok(buf)
    }

    /// Reads segment `index` as sent on the wire into `buf` (reused between segments, so the
    /// bytes are not zero-filled first; only the padding of a last segment is written).
    fn segment_into<'b>(
        &self,
        layout: &FileLayout,
        index: u64,
        buf: &'b mut Vec<u8>,
    ) -> std::io::Result<&'b [u8]> {
        self.run_into(layout, index..index + 1, buf)
    }

    /// Reads the consecutive segments `run` as sent on the wire, one after another, into `buf`
    /// with one read (only a file's last segment is short, so the wire bytes are the file's
    /// bytes followed by that segment's padding).
    fn run_into<'b>(
        &self,
        layout: &FileLayout,
        run: std::ops::Range<u64>,
        buf: &'b mut Vec<u8>,
    ) -> std::io::Result<&'b [u8]> {
        let len: usize = run.clone().map(|i| layout.segment_data_len(i)).sum();
        let n: usize = run.clone().map(|i| layout.segment_file_bytes(i)).sum();
        if buf.len() < len {
            buf.resize(len, 0);
        }
        let off = layout.segment_offset(run.start);
        match self {
            Source::File(f) => f.read_exact_at(&mut buf[..n], off)?,
            Source::Bytes(b) => buf[..n].copy_from_slice(&b[off as usize..off as usize + n]),
        }
        buf[n..len].fill(0);
        Ok(&buf[..len])
    }
}

/// Outcome of sending one batch.
enum BatchOutcome {
    Stored,
    AlreadyFinalized,
}

fn report(progress: &Option<ProgressFn>, phase: Phase, done: u64, total: u64) {
    if let Some(p) = progress {
        p(Progress { phase, done, total });
    }
}

impl StorageClient {
    /// A client of the node at `url` (e.g. `http://127.0.0.1:5678`, or an `https://` URL: TLS
    /// is rustls, checking certificates against the system's roots) with default tuning.
    pub fn new(url: &str) -> Result<Self> {
        Self::with_config(url, ClientConfig::default())
    }

    /// A client with explicit tuning.
    pub fn with_config(url: &str, cfg: ClientConfig) -> Result<Self> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Error::InvalidInput(format!(
                "storage node URL {url:?} must start with http:// or https://"
            )));
        }
        if cfg.batch_segments == 0 || cfg.max_in_flight == 0 {
            return Err(Error::InvalidInput(
                "batch_segments and max_in_flight must be at least 1".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(cfg.request_timeout)
            .build()
            .map_err(|e| Error::Transport {
                url: url.to_string(),
                method: "(client setup)".into(),
                reason: e.to_string(),
            })?;
        Ok(StorageClient {
            inner: Arc::new(Inner {
                url: url.trim_end_matches('/').to_string(),
                http,
                cfg,
                next_id: AtomicU64::new(1),
                shard: std::sync::OnceLock::new(),
            }),
        })
    }

    /// The node URL.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.cfg
    }

    fn body<P: Serialize>(&self, method: &str, params: P) -> Vec<u8> {
        let req = RpcRequestOut {
            jsonrpc: "2.0",
            id: self.inner.next_id.fetch_add(1, Ordering::Relaxed),
            method,
            params,
        };
        serde_json::to_vec(&req).expect("request types always serialise")
    }

    /// POSTs a JSON-RPC body; retries transport failures. Returns the raw response body.
    async fn post(&self, method: &str, body: Vec<u8>) -> Result<Bytes> {
        let body = Bytes::from(body);
        let mut attempt = 0;
        loop {
            let res = self
                .inner
                .http
                .post(&self.inner.url)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await;
            let err = match res {
                Ok(resp) => {
                    let status = resp.status();
                    match resp.bytes().await {
                        Ok(b) if !b.is_empty() => return Ok(b),
                        Ok(_) => format!("empty response body (HTTP {status})"),
                        Err(e) => format!("reading the response failed: {e}"),
                    }
                }
                Err(e) => {
                    let retryable = e.is_connect() || e.is_request();
                    let msg = e.to_string();
                    if !retryable {
                        return Err(self.transport(method, msg));
                    }
                    msg
                }
            };
            if attempt >= self.inner.cfg.retries {
                return Err(self.transport(method, err));
            }
            attempt += 1;
            tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
        }
    }

    fn transport(&self, method: &str, reason: String) -> Error {
        Error::Transport {
            url: self.inner.url.clone(),
            method: method.into(),
            reason,
        }
    }

    fn rpc_error(&self, method: &str, e: rpc::RpcError) -> Error {
        Error::Rpc {
            url: self.inner.url.clone(),
            method: method.into(),
            code: e.code,
            data: e.data_text(),
            message: e.message,
        }
    }

    fn parse<T: DeserializeOwned>(&self, method: &str, raw: &[u8]) -> Result<Option<T>> {
        let resp: RpcResponse<T> = serde_json::from_slice(raw).map_err(|e| Error::Protocol {
            url: self.inner.url.clone(),
            method: method.into(),
            reason: format!("not a JSON-RPC response of the expected shape: {e}"),
        })?;
        if let Some(e) = resp.error {
            return Err(self.rpc_error(method, e));
        }
        Ok(resp.result)
    }

    /// Calls `method` with `params`; `Ok(None)` when the result is JSON `null`.
    pub async fn call<P: Serialize, T: DeserializeOwned>(
        &self,
        method: &str,
        params: P,
    ) -> Result<Option<T>> {
        let body = self.body(method, params);
        let raw = self.post(method, body).await?;
        self.parse(method, &raw)
    }

    /// `zgs_getStatus`.
    pub async fn status(&self) -> Result<Status> {
        self.call(methods::GET_STATUS, ())
            .await?
            .ok_or_else(|| Error::Protocol {
                url: self.inner.url.clone(),
                method: methods::GET_STATUS.into(),
                reason: "null status".into(),
            })
    }

    /// The Flow contract this node follows and its chain (`zgs_getStatus`'s
    /// `networkIdentity`), or `None` when it names none (a local node that takes files unpaid).
    pub async fn followed_flow(&self) -> Result<Option<crate::zerog::FollowedFlow>> {
        let identity = self.status().await?.network_identity;
        Ok(
            (!identity.flow_address.is_zero()).then_some(crate::zerog::FollowedFlow {
                chain_id: identity.chain_id,
                address: identity.flow_address,
            }),
        )
    }

    /// `zgs_getShardConfig`: which segments the node holds (asked once per client). A node
    /// that does not answer the method (not implemented, or not let through by a gateway)
    /// holds every segment.
    pub async fn shard_config(&self) -> Result<ShardConfig> {
        if let Some(shard) = self.inner.shard.get() {
            return Ok(*shard);
        }
        let shard = self.fetch_shard_config().await?;
        Ok(*self.inner.shard.get_or_init(|| shard))
    }

    /// [`shard_config`](Self::shard_config), asked afresh (an indexer watching nodes that may
    /// restart with another shard).
    pub async fn fetch_shard_config(&self) -> Result<ShardConfig> {
        let method = methods::GET_SHARD_CONFIG;
        match self.call::<_, ShardConfig>(method, ()).await {
            Ok(Some(shard)) => shard.validate().map_err(|e| Error::Protocol {
                url: self.inner.url.clone(),
                method: method.into(),
                reason: e.to_string(),
            }),
            Ok(None) | Err(Error::Rpc { .. }) => Ok(ShardConfig::WHOLE),
            Err(e) => Err(e),
        }
    }

    /// `zgs_getFileInfo(root, true)`; `None` when the node does not know the file.
    pub async fn file_info(&self, root: Hash) -> Result<Option<FileInfo>> {
        self.call(methods::GET_FILE_INFO, (root, true)).await
    }

    /// `licen_uploadedSegments(root)`; `None` when the node does not know the file or does not
    /// implement the extension (0G nodes).
    pub async fn uploaded_segments(&self, root: Hash) -> Result<Option<UploadedSegments>> {
        if !self.inner.cfg.use_extensions {
            return Ok(None);
        }
        match self.call(methods::UPLOADED_SEGMENTS, (root,)).await {
            Err(Error::Rpc { code, .. }) if code == codes::METHOD_NOT_FOUND => Ok(None),
            other => other,
        }
    }

    /// Whether the node holds segment `index` of `root`.
    pub async fn has_segment(&self, root: Hash, index: u64) -> Result<bool> {
        let Some(info) = self.file_info(root).await? else {
            return Ok(false);
        };
        let layout = FileLayout::new(info.tx.size);
        if index >= layout.segments() {
            return Ok(false);
        }
        let shard = self.shard_config().await?;
        if !shard.holds_file_segment(info.tx.start_entry_index, index) {
            return Ok(false);
        }
        if info.finalized {
            return Ok(true);
        }
        Ok(self
            .uploaded_segments(root)
            .await?
            .is_some_and(|u| u.has(index)))
    }

    /// `zgs_uploadSegments(segments)`.
    pub async fn upload_segments(&self, segments: &[SegmentWithProof]) -> Result<()> {
        let _: Option<serde_json::Value> = self.call(methods::UPLOAD_SEGMENTS, (segments,)).await?;
        Ok(())
    }

    /// `zgs_downloadSegmentWithProof(root, index)`, unverified (use [`download`](Self::download)
    /// for verified data).
    pub async fn download_segment_with_proof(
        &self,
        root: Hash,
        index: u64,
    ) -> Result<Option<SegmentWithProof>> {
        self.call(methods::DOWNLOAD_SEGMENT_WITH_PROOF, (root, index))
            .await
    }

    /// `zgs_downloadSegment(root, start_chunk, end_chunk)` (end exclusive, at most 1024
    /// chunks), unverified.
    pub async fn download_chunks(
        &self,
        root: Hash,
        start: u64,
        end: u64,
    ) -> Result<Option<Vec<u8>>> {
        let s: Option<String> = self
            .call(methods::DOWNLOAD_SEGMENT, (root, start, end))
            .await?;
        s.map(|s| {
            rpc::base64_bytes::decode(&s).map_err(|reason| Error::Protocol {
                url: self.inner.url.clone(),
                method: methods::DOWNLOAD_SEGMENT.into(),
                reason,
            })
        })
        .transpose()
    }

    // ----------------------------------------------------------------------------- upload --

    /// Uploads the file at `path`: one pass to compute its tree, one to send its segments.
    pub async fn upload_file(&self, path: &Path, progress: Option<ProgressFn>) -> Result<Uploaded> {
        let tree = tree_of_file(path, progress.clone()).await?;
        self.upload_file_with_tree(path, &tree, FileReads::Cached, progress)
            .await
    }

    /// Uploads the file at `path` whose tree is already known (e.g. computed while sealing
    /// with a [`RootBuilder`]); skips the hashing pass. The tree must match the file.
    pub async fn upload_file_with_tree(
        &self,
        path: &Path,
        tree: &FileTree,
        reads: FileReads,
        progress: Option<ProgressFn>,
    ) -> Result<Uploaded> {
        let file = std::fs::File::open(path)
            .map_err(|e| Error::io(format!("opening {} for upload", path.display()), e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io(format!("reading metadata of {}", path.display()), e))?
            .len();
        if len != tree.layout().size() {
            return Err(Error::InvalidInput(format!(
                "{} has {len} bytes but the tree given for it covers {} bytes: recompute the tree",
                path.display(),
                tree.layout().size()
            )));
        }
        self.upload_source(
            Arc::new(Source::File(match reads {
                FileReads::Cached => crate::direct::DirectFile::buffered(file),
                FileReads::Direct => crate::direct::DirectFile::new(file, path, false),
            })),
            Arc::new(tree.clone()),
            progress,
        )
        .await
    }

    /// Uploads bytes held in memory (manifests, envelopes, small results).
    pub async fn upload_bytes(
        &self,
        data: &[u8],
        progress: Option<ProgressFn>,
    ) -> Result<Uploaded> {
        let bytes: Arc<[u8]> = Arc::from(data);
        let tree = tree_of_bytes(bytes.clone()).await?;
        self.upload_source(Arc::new(Source::Bytes(bytes)), Arc::new(tree), progress)
            .await
    }

    /// Uploads bytes whose tree is already known (one hashing pass for several nodes).
    pub(crate) async fn upload_bytes_with_tree(
        &self,
        data: Arc<[u8]>,
        tree: Arc<FileTree>,
        progress: Option<ProgressFn>,
    ) -> Result<Uploaded> {
        self.upload_source(Arc::new(Source::Bytes(data)), tree, progress)
            .await
    }

    /// Uploads everything `reader` yields, spooled through a temporary file.
    pub async fn upload_reader(
        &self,
        reader: &mut (dyn AsyncRead + Unpin + Send),
        progress: Option<ProgressFn>,
    ) -> Result<Uploaded> {
        let spool = spool_to_temp(reader).await?;
        self.upload_file(spool.path(), progress).await
    }

    async fn upload_source(
        &self,
        source: Arc<Source>,
        tree: Arc<FileTree>,
        progress: Option<ProgressFn>,
    ) -> Result<Uploaded> {
        let layout = tree.layout();
        let root = tree.root();
        let total = layout.segments();
        let size = layout.size();
        let mut receipt = Uploaded {
            root,
            size,
            segments: total,
            sent_segments: 0,
            skipped_segments: 0,
            already_stored: false,
            finalized: false,
        };
        let info = self
            .call::<_, FileInfo>(methods::GET_FILE_INFO, (root, false))
            .await?;
        if let Some(info) = &info
            && info.tx.size != size
        {
            return Err(Error::SizeMismatch {
                url: self.inner.url.clone(),
                root,
                expected: size,
                actual: info.tx.size,
            });
        }
        // A sharded node takes only the segments at its Flow positions (0G's rule); the file's
        // position is known once its submission is (Flow mode), and is 0 on a local node.
        let shard = self.shard_config().await?;
        let start_entry = info.as_ref().map_or(0, |i| i.tx.start_entry_index);
        let mut held: Vec<u64> = shard.file_segments(start_entry, total);
        if info.as_ref().is_some_and(|i| i.finalized) {
            report(&progress, Phase::Uploading, size, size);
            receipt.already_stored = true;
            receipt.finalized = true;
            receipt.skipped_segments = held.len() as u64;
            return Ok(receipt);
        }
        // No segment of this (small) file is at the node's positions: one segment, verified and
        // dropped, tells it of the file, which it then holds as completely as it ever will and
        // finalizes. It is not counted as sent.
        let placeholder = held.is_empty();
        if placeholder {
            held.push(0);
        }
        let held_bytes: u64 = held
            .iter()
            .map(|&i| layout.segment_file_bytes(i) as u64)
            .sum();
        let mut ask_node = info.as_ref().is_some_and(|i| i.uploaded_seg_num > 0);
        for round in 0..3 {
            let have = if ask_node {
                self.uploaded_segments(root).await?
            } else {
                None
            };
            if have.as_ref().is_some_and(|h| h.finalized) {
                receipt.finalized = true;
                receipt.already_stored = receipt.sent_segments == 0;
                return Ok(receipt);
            }
            let todo: Vec<u64> = held
                .iter()
                .copied()
                .filter(|&i| !have.as_ref().is_some_and(|h| h.has(i)))
                .collect();
            if round == 0 {
                receipt.skipped_segments = held.len() as u64 - todo.len() as u64;
            }
            let skipped_bytes: u64 = held
                .iter()
                .filter(|&&i| have.as_ref().is_some_and(|h| h.has(i)))
                .map(|&i| layout.segment_file_bytes(i) as u64)
                .sum();
            match self
                .send_segments(&source, &tree, todo, &progress, (skipped_bytes, held_bytes))
                .await
            {
                Ok((sent, finalized_elsewhere)) => {
                    if !placeholder {
                        receipt.sent_segments += sent;
                    }
                    if finalized_elsewhere {
                        receipt.finalized = true;
                        return Ok(receipt);
                    }
                }
                // The node re-hashed the complete file at finalization, found segments that
                // did not match and discarded them: ask which are missing and send them again.
                Err(Error::Rpc { code, .. }) if code == codes::INTEGRITY && round < 2 => {
                    tracing::warn!(node = %self.inner.url, %root, "node discarded segments at finalization; re-sending them");
                    ask_node = true;
                    continue;
                }
                Err(e) => return Err(e),
            }
            receipt.finalized = self.wait_finalized(root, held.len() as u64).await?;
            return Ok(receipt);
        }
        Err(Error::NotFinalized {
            url: self.inner.url.clone(),
            root,
            uploaded: 0,
            total: held.len() as u64,
        })
    }

    /// Sends the segments `todo`, pipelined; progress counts from `done_base` of the `size`
    /// bytes this node takes. Returns (segments sent, whether the node said the file is
    /// already finalized).
    async fn send_segments(
        &self,
        source: &Arc<Source>,
        tree: &Arc<FileTree>,
        todo: Vec<u64>,
        progress: &Option<ProgressFn>,
        (done_base, size): (u64, u64),
    ) -> Result<(u64, bool)> {
        let layout = tree.layout();
        report(progress, Phase::Uploading, done_base, size);
        if todo.is_empty() {
            return Ok((0, false));
        }
        let in_flight = self.inner.cfg.max_in_flight;
        let batch = self.inner.cfg.batch_segments;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<(Vec<u64>, Vec<u8>)>>(in_flight);

        // Producer: reads segments and serialises request bodies on a blocking thread.
        let producer = {
            let source = source.clone();
            let tree = tree.clone();
            let client = self.clone();
            tokio::task::spawn_blocking(move || {
                let mut scratch = Vec::new();
                for group in todo.chunks(batch) {
                    let item = client.batch_body(&source, &tree, group, &mut scratch);
                    let failed = item.is_err();
                    if tx.blocking_send(item.map(|b| (group.to_vec(), b))).is_err() || failed {
                        return;
                    }
                }
            })
        };

        let mut tasks: tokio::task::JoinSet<Result<(Vec<u64>, BatchOutcome)>> =
            tokio::task::JoinSet::new();
        let mut done = done_base;
        let mut sent = 0u64;
        let mut finalized_elsewhere = false;
        let mut result: Result<()> = Ok(());
        'outer: loop {
            tokio::select! {
                biased;
                Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                    match joined.map_err(|e| Error::io("upload task failed", std::io::Error::other(e))) {
                        Ok(Ok((indices, outcome))) => {
                            sent += indices.len() as u64;
                            done += indices.iter().map(|&i| layout.segment_file_bytes(i) as u64).sum::<u64>();
                            report(progress, Phase::Uploading, done, size);
                            if matches!(outcome, BatchOutcome::AlreadyFinalized) {
                                finalized_elsewhere = true;
                                break 'outer;
                            }
                        }
                        Ok(Err(e)) | Err(e) => { result = Err(e); break 'outer; }
                    }
                }
                item = rx.recv(), if tasks.len() < in_flight => {
                    match item {
                        Some(Ok((indices, body))) => {
                            let client = self.clone();
                            let source = source.clone();
                            let tree = tree.clone();
                            tasks.spawn(async move {
                                let outcome = client.send_batch(&source, &tree, &indices, body).await?;
                                Ok::<_, Error>((indices, outcome))
                            });
                        }
                        Some(Err(e)) => { result = Err(e); break 'outer; }
                        None => {
                            if tasks.is_empty() { break 'outer; }
                            // Drain the remaining tasks.
                            while let Some(joined) = tasks.join_next().await {
                                match joined.map_err(|e| Error::io("upload task failed", std::io::Error::other(e))) {
                                    Ok(Ok((indices, outcome))) => {
                                        sent += indices.len() as u64;
                                        done += indices.iter().map(|&i| layout.segment_file_bytes(i) as u64).sum::<u64>();
                                        report(progress, Phase::Uploading, done, size);
                                        if matches!(outcome, BatchOutcome::AlreadyFinalized) {
                                            finalized_elsewhere = true;
                                        }
                                    }
                                    Ok(Err(e)) | Err(e) => { result = Err(e); break; }
                                }
                            }
                            break 'outer;
                        }
                    }
                }
            }
        }
        tasks.abort_all();
        drop(rx);
        let _ = producer.await;
        result.map(|()| (sent, finalized_elsewhere))
    }

    fn segment_with_proof(
        source: &Source,
        tree: &FileTree,
        index: u64,
    ) -> Result<SegmentWithProof> {
        let layout = tree.layout();
        let data = source
            .segment(&layout, index)
            .map_err(|e| Error::io(format!("reading segment {index} for upload"), e))?;
        Ok(SegmentWithProof {
            root: tree.root(),
            data,
            index,
            proof: tree.proof(index)?,
            file_size: layout.size(),
        })
    }

    /// The `zgs_uploadSegments` request for segments `indices`, written straight into one
    /// buffer: each segment is read into `scratch` and base64-encoded into the body, with no
    /// per-segment structs or strings in between.
    fn batch_body(
        &self,
        source: &Source,
        tree: &FileTree,
        indices: &[u64],
        scratch: &mut Vec<u8>,
    ) -> Result<Vec<u8>> {
        let layout = tree.layout();
        let root = tree.root();
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let mut body = Vec::with_capacity(
            indices.len() * (rpc::base64_bytes::encoded_len(SEGMENT_SIZE) + 4096) + 128,
        );
        body.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
        body.extend_from_slice(id.to_string().as_bytes());
        body.extend_from_slice(br#","method":""#);
        body.extend_from_slice(methods::UPLOAD_SEGMENTS.as_bytes());
        body.extend_from_slice(br#"","params":[["#);
        // Consecutive segments are read with one call (one direct read of the whole run).
        let mut rest = indices;
        let mut written = 0;
        while let Some(&first) = rest.first() {
            let count = rest
                .iter()
                .zip(first..)
                .take_while(|(i, want)| **i == *want)
                .count();
            let run = first..first + count as u64;
            let bytes = source
                .run_into(&layout, run.clone(), scratch)
                .map_err(|e| Error::io(format!("reading segments {run:?} for upload"), e))?;
            let mut at = 0;
            for i in run {
                if written > 0 {
                    body.push(b',');
                }
                written += 1;
                let data = &bytes[at..at + layout.segment_data_len(i)];
                at += data.len();
                let proof = tree.proof(i)?;
                rpc::write_segment_json(&mut body, &root, data, i, &proof, layout.size());
            }
            rest = &rest[count..];
        }
        body.extend_from_slice(b"]]}");
        Ok(body)
    }

    async fn send_batch(
        &self,
        source: &Arc<Source>,
        tree: &Arc<FileTree>,
        indices: &[u64],
        body: Vec<u8>,
    ) -> Result<BatchOutcome> {
        let method = methods::UPLOAD_SEGMENTS;
        let raw = self.post(method, body).await?;
        match self.parse::<serde_json::Value>(method, &raw) {
            Ok(_) => Ok(BatchOutcome::Stored),
            Err(Error::Rpc { data: Some(d), .. }) if d.contains(rpc::ALREADY_FINALIZED) => {
                Ok(BatchOutcome::AlreadyFinalized)
            }
            // A 0G node stops a batch at the first segment it already has: send the batch one
            // segment at a time, tolerating duplicates.
            Err(Error::Rpc {
                data: Some(d),
                message,
                ..
            }) if d.contains(rpc::SEGMENT_ALREADY_UPLOADED)
                || message.contains(rpc::SEGMENT_ALREADY_UPLOADED) =>
            {
                for &i in indices {
                    let (s, t) = (source.clone(), tree.clone());
                    let seg =
                        tokio::task::spawn_blocking(move || Self::segment_with_proof(&s, &t, i))
                            .await
                            .map_err(|e| {
                                Error::io("reading a segment failed", std::io::Error::other(e))
                            })??;
                    match self
                        .call::<_, serde_json::Value>(methods::UPLOAD_SEGMENT, (seg,))
                        .await
                    {
                        Ok(_) => {}
                        Err(Error::Rpc {
                            data: Some(d),
                            message,
                            ..
                        }) if d.contains(rpc::SEGMENT_ALREADY_UPLOADED)
                            || message.contains(rpc::SEGMENT_ALREADY_UPLOADED) => {}
                        Err(Error::Rpc { data: Some(d), .. })
                            if d.contains(rpc::ALREADY_FINALIZED) =>
                        {
                            return Ok(BatchOutcome::AlreadyFinalized);
                        }
                        Err(e) => return Err(e),
                    }
                }
                Ok(BatchOutcome::Stored)
            }
            Err(e) => Err(e),
        }
    }

    /// Polls `zgs_getFileInfo` until the node reports the file finalized or the configured
    /// timeout passes.
    async fn wait_finalized(&self, root: Hash, total: u64) -> Result<bool> {
        let deadline = Instant::now() + self.inner.cfg.finalize_timeout;
        let mut delay = Duration::from_millis(20);
        loop {
            let info = self
                .call::<_, FileInfo>(methods::GET_FILE_INFO, (root, false))
                .await?;
            if info.as_ref().is_some_and(|i| i.finalized) {
                return Ok(true);
            }
            if self.inner.cfg.finalize_timeout.is_zero() {
                return Ok(false);
            }
            if Instant::now() >= deadline {
                return Err(Error::NotFinalized {
                    url: self.inner.url.clone(),
                    root,
                    uploaded: info.map(|i| i.uploaded_seg_num).unwrap_or(0),
                    total,
                });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(500));
        }
    }

    // --------------------------------------------------------------------------- download --

    /// Downloads `root` into `writer`, verifying every segment's proof against `root` before
    /// writing it. On a verification failure nothing of the bad segment is written and the
    /// error names this node and the segment.
    pub async fn download(
        &self,
        root: Hash,
        writer: &mut (dyn AsyncWrite + Unpin + Send),
        options: DownloadOptions,
        progress: Option<ProgressFn>,
    ) -> Result<Downloaded> {
        let info = self.file_info(root).await?.ok_or_else(|| Error::NotFound {
            url: self.inner.url.clone(),
            root,
        })?;
        let size = info.tx.size;
        let layout = FileLayout::new(size);
        if info.tx.data_merkle_root != root {
            return Err(Error::LyingNode {
                url: self.inner.url.clone(),
                root,
                segment: 0,
                reason: format!(
                    "getFileInfo answered for root {} instead",
                    info.tx.data_merkle_root
                ),
            });
        }
        if !info.finalized {
            return Err(Error::NotFinalized {
                url: self.inner.url.clone(),
                root,
                uploaded: info.uploaded_seg_num,
                total: layout.segments(),
            });
        }
        if let Some(expected) = options.expected_size
            && expected != size
        {
            return Err(Error::SizeMismatch {
                url: self.inner.url.clone(),
                root,
                expected,
                actual: size,
            });
        }
        let shard = self.shard_config().await?;
        let held = shard
            .file_segments(info.tx.start_entry_index, layout.segments())
            .len() as u64;
        if held != layout.segments() {
            return Err(Error::PartialNode {
                url: self.inner.url.clone(),
                root,
                shard: shard.to_string(),
                held,
                total: layout.segments(),
            });
        }
        report(&progress, Phase::Downloading, 0, size);
        self.download_segments(root, layout, 0, 0, writer, &progress)
            .await
            .map_err(|p| p.error)?;
        Ok(Downloaded {
            root,
            size,
            node: self.inner.url.clone(),
        })
    }

    /// Downloads segments `from..` of `root` (laid out as `layout`) into `writer`, each verified
    /// before it is written, then flushes. `done` is the byte count already written (for
    /// progress). On failure, says which segment to continue from: everything before it was
    /// written and verified, so another node can take over from there.
    pub async fn download_segments(
        &self,
        root: Hash,
        layout: FileLayout,
        from: u64,
        done: u64,
        writer: &mut (dyn AsyncWrite + Unpin + Send),
        progress: &Option<ProgressFn>,
    ) -> std::result::Result<u64, PartialDownload> {
        let size = layout.size();
        let mut segments = futures_util::stream::iter(from..layout.segments())
            .map(|i| self.fetch_verified(root, layout, i))
            .buffered(self.inner.cfg.max_in_flight);
        let mut next = from;
        let mut done = done;
        while let Some(seg) = segments.next().await {
            let fail = |error| PartialDownload {
                next_segment: next,
                bytes_written: done,
                error,
            };
            let data = seg.map_err(fail)?;
            writer
                .write_all(&data)
                .await
                .map_err(|e| fail(Error::io(format!("writing downloaded file {root}"), e)))?;
            done += data.len() as u64;
            next += 1;
            report(progress, Phase::Downloading, done, size);
        }
        writer.flush().await.map_err(|e| PartialDownload {
            next_segment: next,
            bytes_written: done,
            error: Error::io(format!("flushing downloaded file {root}"), e),
        })?;
        Ok(done)
    }

    /// Downloads `root` into memory.
    pub async fn download_to_vec(&self, root: Hash, options: DownloadOptions) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.download(root, &mut out, options, None).await?;
        Ok(out)
    }

    /// Downloads `root` to `path`: written to `path` + `.partial` and renamed only once every
    /// segment verified, so `path` never holds unverified bytes.
    pub async fn download_to_path(
        &self,
        root: Hash,
        path: &Path,
        options: DownloadOptions,
        progress: Option<ProgressFn>,
    ) -> Result<Downloaded> {
        crate::store::download_to_path(self, root, path, options, progress).await
    }

    /// Segment `index` of `root` (laid out as `layout`), its proof checked against `root`;
    /// the file's bytes only (no padding).
    pub(crate) async fn fetch_verified(
        &self,
        root: Hash,
        layout: FileLayout,
        index: u64,
    ) -> Result<Vec<u8>> {
        let method = methods::DOWNLOAD_SEGMENT_WITH_PROOF;
        let body = self.body(method, (root, index));
        let raw = self.post(method, body).await?;
        let client = self.clone();
        tokio::task::spawn_blocking(move || client.verify_segment(&raw, root, layout, index))
            .await
            .map_err(|e| Error::io("verification task failed", std::io::Error::other(e)))?
    }

    fn verify_segment(
        &self,
        raw: &[u8],
        root: Hash,
        layout: FileLayout,
        index: u64,
    ) -> Result<Vec<u8>> {
        let lying = |reason: String| Error::LyingNode {
            url: self.inner.url.clone(),
            root,
            segment: index,
            reason,
        };
        let seg: SegmentWithProof = self
            .parse(methods::DOWNLOAD_SEGMENT_WITH_PROOF, raw)?
            .ok_or_else(|| {
                lying("the node returned null for a segment of a file it reports finalized".into())
            })?;
        if seg.root != root {
            return Err(lying(format!(
                "the segment is labelled with root {}",
                seg.root
            )));
        }
        if seg.index != index {
            return Err(lying(format!(
                "the node returned segment {} instead",
                seg.index
            )));
        }
        if seg.file_size != layout.size() {
            return Err(lying(format!(
                "the segment says the file has {} bytes, getFileInfo said {}",
                seg.file_size,
                layout.size()
            )));
        }
        let expected_len = layout.segment_data_len(index);
        if seg.data.len() != expected_len {
            return Err(lying(format!(
                "{} bytes of data, expected {expected_len}",
                seg.data.len()
            )));
        }
        let file_bytes = layout.segment_file_bytes(index);
        if seg.data[file_bytes..].iter().any(|&b| b != 0) {
            return Err(lying(
                "the padding after the end of the file is not zero".into(),
            ));
        }
        let seg_root = segment_root(&seg.data, layout.segment_tree_chunks(index));
        seg.proof
            .verify_segment(&root, &seg_root, index, &layout)
            .map_err(|e| lying(format!("its Merkle proof does not verify: {e}")))?;
        let mut data = seg.data;
        data.truncate(file_bytes);
        Ok(data)
    }
}

/// What the node at `url` said about `root`, checked before downloading from it: the file is
/// finalized there, the answer is about `root`, and its size is the one settled so far
/// (`layout`: the caller's expected size, or the first usable node's, which this settles).
/// The error says why this node cannot serve the file.
pub(crate) fn usable_for_download(
    url: &str,
    root: Hash,
    info: Option<FileInfo>,
    layout: &mut Option<FileLayout>,
) -> std::result::Result<FileInfo, String> {
    let info = match info {
        Some(info) if info.finalized && info.tx.data_merkle_root == root => info,
        _ => return Err(format!("{url}: file missing or not finalized")),
    };
    match layout {
        Some(l) if l.size() != info.tx.size => Err(Error::SizeMismatch {
            url: url.to_string(),
            root,
            expected: l.size(),
            actual: info.tx.size,
        }
        .to_string()),
        Some(_) => Ok(info),
        None => {
            *layout = Some(FileLayout::new(info.tx.size));
            Ok(info)
        }
    }
}

/// [`hash_file`] on a blocking thread.
pub(crate) async fn tree_of_file(path: &Path, progress: Option<ProgressFn>) -> Result<FileTree> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || hash_file(&path, progress))
        .await
        .map_err(|e| Error::io("hashing task failed", std::io::Error::other(e)))?
}

/// The tree of bytes in memory, hashed on a blocking thread.
pub(crate) async fn tree_of_bytes(data: Arc<[u8]>) -> Result<FileTree> {
    tokio::task::spawn_blocking(move || FileTree::from_bytes(&data))
        .await
        .map_err(|e| Error::io("hashing task failed", std::io::Error::other(e)))
}

/// First pass of an upload: the tree of the file at `path`, reporting [`Phase::Hashing`].
fn hash_file(path: &Path, progress: Option<ProgressFn>) -> Result<FileTree> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)
        .map_err(|e| Error::io(format!("opening {} to hash it", path.display()), e))?;
    let total = f
        .metadata()
        .map_err(|e| Error::io(format!("reading metadata of {}", path.display()), e))?
        .len();
    let mut b = RootBuilder::new();
    let mut buf = vec![0u8; 16 * SEGMENT_SIZE];
    report(&progress, Phase::Hashing, 0, total);
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        b.update(&buf[..n]);
        report(&progress, Phase::Hashing, b.len(), total);
    }
    Ok(b.finish())
}

/// Copies a stream into a new temporary file (ciphertext only; deleted when dropped).
pub(crate) async fn spool_to_temp(
    reader: &mut (dyn AsyncRead + Unpin + Send),
) -> Result<tempfile::NamedTempFile> {
    let tmp = tempfile::NamedTempFile::new()
        .map_err(|e| Error::io("creating a temporary file to spool an upload", e))?;
    let std_file = tmp
        .reopen()
        .map_err(|e| Error::io("opening the upload spool file", e))?;
    let mut f = tokio::fs::File::from_std(std_file);
    tokio::io::copy(reader, &mut f)
        .await
        .map_err(|e| Error::io("spooling an upload to a temporary file", e))?;
    f.flush()
        .await
        .map_err(|e| Error::io("flushing the upload spool file", e))?;
    Ok(tmp)
}

impl Store for StorageClient {
    fn put_file<'a>(
        &'a self,
        path: &'a Path,
        progress: Option<ProgressFn>,
    ) -> BoxFuture<'a, Result<Uploaded>> {
        Box::pin(self.upload_file(path, progress))
    }

    fn put_bytes<'a>(
        &'a self,
        data: &'a [u8],
        progress: Option<ProgressFn>,
    ) -> BoxFuture<'a, Result<Uploaded>> {
        Box::pin(self.upload_bytes(data, progress))
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

    fn file_info(&self, root: Hash) -> BoxFuture<'_, Result<Option<FileInfo>>> {
        Box::pin(StorageClient::file_info(self, root))
    }

    fn has_segment(&self, root: Hash, index: u64) -> BoxFuture<'_, Result<bool>> {
        Box::pin(StorageClient::has_segment(self, root, index))
    }
}

/// The Flow contract the nodes an upload goes to follow, asked of each (as 0G's clients do before
/// paying): `None` when none names one (local nodes that take files unpaid). Nodes following
/// different Flows, or a Flow on different chains, are refused ([`Error::FlowsDisagree`]): no
/// one payment would reach them all. A node that follows none beside ones that do is left to
/// refuse or take the file itself.
pub async fn followed_flow(nodes: &[StorageClient]) -> Result<Option<crate::zerog::FollowedFlow>> {
    let answers =
        futures_util::future::try_join_all(nodes.iter().map(StorageClient::followed_flow)).await?;
    let describe =
        |f: &crate::zerog::FollowedFlow| format!("{} on chain {}", f.address, f.chain_id);
    let mut found: Option<(usize, crate::zerog::FollowedFlow)> = None;
    for (i, answer) in answers.iter().enumerate() {
        let Some(flow) = answer else { continue };
        match found {
            None => found = Some((i, *flow)),
            Some((first, seen)) if seen != *flow => {
                return Err(Error::FlowsDisagree {
                    first: nodes[first].url().to_owned(),
                    first_flow: describe(&seen),
                    other: nodes[i].url().to_owned(),
                    other_flow: describe(flow),
                });
            }
            Some(_) => {}
        }
    }
    Ok(found.map(|(_, flow)| flow))
}
