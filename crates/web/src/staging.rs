//! Staged uploads: how a file sealed in the page reaches storage (one storage node, or the
//! sharded nodes a 0G storage indexer names).
//!
//! The page seals once and streams the ciphertext here as raw binary pieces, in order (over
//! the upload's WebSocket, or `PUT /api/uploads/{id}?offset=N`). The server writes each piece to
//! a temporary file. The page commits (`POST /api/uploads/{id}/commit`) with the root it
//! computed and, for a large file, the segment roots it joined into that root: the server checks
//! that they do hash to the root and forwards the file with the proofs they give
//! ([`upload_file_to`]: to the node, or to a set of the indexer's nodes holding every segment
//! between them, each sent its shard's segments). Each node verifies every segment's bytes
//! against its proof, so a segment root that does not describe the bytes received makes the node
//! refuse that segment and the file is never finalized: the server need not hash the bytes
//! itself (that was a third keccak pass over every upload, after the page's and before the
//! node's). A commit without segment roots (small files) has the server hash the staged bytes
//! and compare the roots before anything is stored. The page follows with
//! `GET /api/uploads/{id}?wait_ms=N` until the nodes hold the file: each answers as soon as
//! storing ends, or after N ms with the progress ([`Staging::settled_report`]).
//!
//! A committed upload picks its nodes ([`Storage::upload_nodes`]) and both waits for its
//! payment on them and uploads to them, so the nodes that saw the payment are the ones that
//! get the file. While it waits, a picked node that stops answering has it pick again (through
//! a storage indexer, among the nodes that answer), so one dead node does not hold the upload
//! up for good; every node of the set it ends with must have seen the payment.
//!
//! On a 0G network ([`Staging::paid_through_flow`]) a node takes only files whose Flow
//! submission it has seen, and the page pays for that from the person's wallet once they
//! publish. A committed upload then waits (`awaiting_payment`) until every one of its nodes
//! knows its root (each node follows the Flow on its own, so one may see the submission before
//! another), for as long as the page keeps asking about it, and is stored from then on.
//!
//! Owns: the upload sessions, their temporary files and their limits ([`MAX_STAGED_BYTES`] per
//! file, [`MAX_OPEN_SESSIONS`] at once, sessions the page cancels (`DELETE /api/uploads/{id}`)
//! dropped at once and abandoned ones after [`IDLE_TIMEOUT`]).
//!
//! Must never: receive plaintext or keys (the page seals before it sends; this module only sees
//! sealed-stream bytes and roots), report a file stored unless every node it went to finalized
//! it under the page's root, log or keep a body beyond its session (the temporary file is
//! deleted once the file is stored, has failed, or is abandoned).

use std::collections::HashMap;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use licen_storage::client::FileReads;
use licen_storage::direct::{ALIGN, DirectFile};
use licen_storage::indexer::upload_file_to;
use licen_storage::merkle::{FileLayout, FileTree, Hash, SEGMENT_SIZE};
use licen_storage::{Storage, StorageClient};
use serde::Serialize;

/// Largest file one session may stage.
pub const MAX_STAGED_BYTES: u64 = 16 << 30;
/// Sessions receiving or storing at once; a new one beyond this is refused.
pub const MAX_OPEN_SESSIONS: usize = 16;
/// A session untouched this long is dropped with its temporary file.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a piece that arrived ahead of its predecessor waits for it.
const OUT_OF_ORDER_WAIT: Duration = Duration::from_secs(60);

/// Why a staging call was refused: a sentence for the page, and the HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 400, 404, 409, 413 or 503.
    pub status: u16,
    /// What was wrong and what to do.
    pub message: String,
}

fn refuse(status: u16, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        message: message.into(),
    }
}

/// Where a session stands (what `GET /api/uploads/{id}` answers).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `receiving`, `awaiting_payment` (committed; the storage nodes wait for the file's Flow
    /// submission), `storing`, `stored` or `failed`.
    pub state: &'static str,
    /// Bytes the file has.
    pub size: u64,
    /// Bytes received so far.
    pub received: u64,
    /// Bytes the storage nodes have accepted so far (of `size`: with several nodes, their share
    /// of the bytes they take between them).
    pub stored: u64,
    /// The file's 0G root, once the page committed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<Hash>,
    /// Why storing failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

enum Phase {
    Receiving {
        file: Spool,
    },
    /// Committed; the nodes do not know the file until its Flow submission is paid.
    AwaitingPayment,
    Storing,
    Stored,
    Failed(String),
}

struct Session {
    size: u64,
    received: u64,
    // Deleted when dropped: after storing, on failure, or when the session is swept.
    staged: Option<tempfile::TempPath>,
    phase: Phase,
    root: Option<Hash>,
    stored: Arc<AtomicU64>,
    touched: Instant,
}

impl Session {
    fn report(&self) -> Report {
        let (state, error) = match &self.phase {
            Phase::Receiving { .. } => ("receiving", None),
            Phase::AwaitingPayment => ("awaiting_payment", None),
            Phase::Storing => ("storing", None),
            Phase::Stored => ("stored", None),
            Phase::Failed(e) => ("failed", Some(e.clone())),
        };
        Report {
            state,
            size: self.size,
            received: self.received,
            stored: self.stored.load(Ordering::Relaxed),
            root: self.root,
            error,
        }
    }

    fn is_open(&self) -> bool {
        matches!(
            self.phase,
            Phase::Receiving { .. } | Phase::AwaitingPayment | Phase::Storing
        )
    }

    /// Whether the page waits for this session to settle (committed, not yet stored or failed).
    fn is_settling(&self) -> bool {
        matches!(self.phase, Phase::AwaitingPayment | Phase::Storing)
    }
}

/// One session and what its waiters wait on.
struct Slot {
    session: Mutex<Session>,
    /// Woken when a piece is written (a piece that arrived early waits for its predecessor).
    arrived: Condvar,
    /// Woken when storing starts after a payment, and when it ends, stored or failed
    /// ([`Staging::settled_report`]).
    settled: tokio::sync::Notify,
}

type Shared = Arc<Slot>;

/// The server's upload sessions.
#[derive(Clone)]
pub struct Staging {
    sessions: Arc<Mutex<HashMap<String, Shared>>>,
    storage: Storage,
    /// The node takes only files paid for through a 0G Flow contract.
    flow: bool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn new_id() -> Result<String, Refusal> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| {
        refuse(
            503,
            format!("the server has no randomness for an upload id ({e}); try again"),
        )
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl Staging {
    /// Sessions forwarding to `storage`: one node, or the nodes of a storage indexer.
    pub fn new(storage: Storage) -> Self {
        Staging {
            sessions: Arc::default(),
            storage,
            flow: false,
        }
    }

    /// The same, for storage nodes that take a file only once its 0G Flow submission is on
    /// chain: committed uploads wait until each of their nodes saw it (`awaiting_payment`)
    /// before they are stored.
    pub fn paid_through_flow(mut self) -> Self {
        self.flow = true;
        self
    }

    fn get(&self, id: &str) -> Result<Shared, Refusal> {
        lock(&self.sessions).get(id).cloned().ok_or_else(|| {
            refuse(
                404,
                format!(
                    "no upload {id:?}: it finished, failed or was idle for over {} minutes; start the upload again",
                    IDLE_TIMEOUT.as_secs() / 60
                ),
            )
        })
    }

    fn sweep_locked(sessions: &mut HashMap<String, Shared>) {
        sessions.retain(|_, s| {
            let s = lock(&s.session);
            matches!(s.phase, Phase::Storing) || s.touched.elapsed() < IDLE_TIMEOUT
        });
    }

    /// Drops sessions idle for over [`IDLE_TIMEOUT`] (not one being stored) with their
    /// temporary files. A session awaiting payment is kept alive by the page asking about it
    /// (no longer limit: a payment may be on its way, and [`MAX_OPEN_SESSIONS`] bounds what
    /// sessions can hold).
    pub fn sweep(&self) {
        Self::sweep_locked(&mut lock(&self.sessions));
    }

    /// Sweeps every minute for as long as this staging area is in use.
    pub fn spawn_sweeper(&self) {
        let sessions = Arc::downgrade(&self.sessions);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                match sessions.upgrade() {
                    Some(s) => Self::sweep_locked(&mut lock(&s)),
                    None => return,
                }
            }
        });
    }

    /// Opens a session for a file of `size` bytes; returns its id.
    pub fn begin(&self, size: u64) -> Result<String, Refusal> {
        if size == 0 || size > MAX_STAGED_BYTES {
            return Err(refuse(
                413,
                format!(
                    "an upload is 1 byte to {} GiB, got {size} bytes",
                    MAX_STAGED_BYTES >> 30
                ),
            ));
        }
        let mut sessions = lock(&self.sessions);
        Self::sweep_locked(&mut sessions);
        let open = sessions
            .values()
            .filter(|s| lock(&s.session).is_open())
            .count();
        if open >= MAX_OPEN_SESSIONS {
            return Err(refuse(
                503,
                format!("the server is staging {open} uploads already; try again in a minute"),
            ));
        }
        let staged = tempfile::Builder::new()
            .prefix("licen-web-upload-")
            .tempfile()
            .map_err(|e| refuse(503, format!("the server cannot stage an upload: {e}")))?;
        let (file, path) = staged.into_parts();
        let file = Spool::new(file, &path);
        let id = new_id()?;
        let session = Session {
            size,
            received: 0,
            staged: Some(path),
            phase: Phase::Receiving { file },
            root: None,
            stored: Arc::default(),
            touched: Instant::now(),
        };
        let slot = Slot {
            session: Mutex::new(session),
            arrived: Condvar::new(),
            settled: tokio::sync::Notify::new(),
        };
        sessions.insert(id.clone(), Arc::new(slot));
        Ok(id)
    }

    /// Appends `bytes` at `offset` (pieces must cover the file in order; one that arrives
    /// ahead of its predecessor waits for it). Blocking: call from a blocking thread.
    pub fn put(&self, id: &str, offset: u64, bytes: &[u8]) -> Result<Report, Refusal> {
        let shared = self.get(id)?;
        let mut session = lock(&shared.session);
        let deadline = Instant::now() + OUT_OF_ORDER_WAIT;
        while session.received < offset && matches!(session.phase, Phase::Receiving { .. }) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(refuse(
                    409,
                    format!(
                        "the piece at byte {offset} came, but bytes {}..{offset} never did: send the pieces in order",
                        session.received
                    ),
                ));
            }
            session = shared
                .arrived
                .wait_timeout(session, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        let received = session.received;
        let size = session.size;
        if offset != received {
            return Err(refuse(
                409,
                format!(
                    "the next piece starts at byte {received}, this one at {offset}: send each piece once, in order"
                ),
            ));
        }
        let end = received + bytes.len() as u64;
        if end > size {
            return Err(refuse(
                413,
                format!(
                    "the upload was opened for {size} bytes, this piece would end at byte {end}"
                ),
            ));
        }
        let Phase::Receiving { file } = &mut session.phase else {
            return Err(refuse(
                409,
                "this upload is complete: it takes no more bytes",
            ));
        };
        file.append(bytes, end == size)
            .map_err(|e| refuse(503, format!("the server could not stage the piece: {e}")))?;
        session.received = end;
        session.touched = Instant::now();
        shared.arrived.notify_all();
        Ok(session.report())
    }

    /// Checks the page's commitment and, if it holds, starts storing the file on its storage
    /// nodes in the background. With `segment_roots` (the page's roots of every data segment)
    /// they must hash to `page_root`, and the node checks each segment's bytes against them as
    /// it takes them; without, the server hashes the staged bytes and compares the roots first.
    /// Blocking (reads the staged file): call from a blocking thread, inside a tokio runtime (the
    /// forwarding runs on it).
    pub fn commit(
        &self,
        id: &str,
        page_root: Hash,
        segment_roots: Option<Vec<Hash>>,
    ) -> Result<Report, Refusal> {
        let shared = self.get(id)?;
        let mut session = lock(&shared.session);
        if session.received != session.size {
            return Err(refuse(
                409,
                format!(
                    "the upload has {} of its {} bytes: send the rest before committing",
                    session.received, session.size
                ),
            ));
        }
        let first = if self.flow {
            Phase::AwaitingPayment
        } else {
            Phase::Storing
        };
        let phase = std::mem::replace(&mut session.phase, first);
        let Phase::Receiving { file } = phase else {
            session.phase = phase;
            return Err(refuse(409, "this upload was committed already"));
        };
        let hashed = if segment_roots.is_some() {
            "the segment roots it sent"
        } else {
            "the bytes the server received"
        };
        // The staged bytes were written around the page cache; read them the same way, unless
        // the server just hashed them (then they are cached).
        let reads = if segment_roots.is_some() {
            FileReads::Direct
        } else {
            FileReads::Cached
        };
        let tree = match committed_tree(file.file.into_file(), session.size, segment_roots) {
            Ok(tree) if tree.root() == page_root => tree,
            outcome => {
                let refusal = match outcome {
                    Ok(tree) => refuse(
                        409,
                        format!(
                            "the page committed root {page_root}, but {hashed} hash to {}: nothing was stored; upload again",
                            tree.root()
                        ),
                    ),
                    Err(refusal) => refusal,
                };
                session.phase = Phase::Failed(refusal.message.clone());
                session.staged = None;
                return Err(refusal);
            }
        };
        session.root = Some(page_root);
        session.touched = Instant::now();
        let path = session
            .staged
            .as_ref()
            .map(|p| p.to_path_buf())
            .ok_or_else(|| refuse(409, "this upload's staged bytes are gone"))?;
        let stored = session.stored.clone();
        let report = session.report();
        drop(session);
        let storage = self.storage.clone();
        let task_session = shared.clone();
        let sessions = Arc::downgrade(&self.sessions);
        let id = id.to_owned();
        let size = report.size;
        tokio::spawn(async move {
            let Some(nodes) = pick_nodes(&storage, &sessions, &id, &task_session).await else {
                return;
            };
            let nodes = if matches!(lock(&task_session.session).phase, Phase::AwaitingPayment) {
                match await_payment(&storage, nodes, &sessions, &id, &task_session, page_root).await
                {
                    Some(nodes) => nodes,
                    None => return,
                }
            } else {
                nodes
            };
            // Several nodes report the bytes each takes; the page's bar counts the file's bytes.
            let progress: licen_storage::store::ProgressFn = Arc::new(move |p| {
                let done = if p.total == 0 {
                    0
                } else {
                    (u128::from(p.done.min(p.total)) * u128::from(size) / u128::from(p.total))
                        as u64
                };
                stored.store(done, Ordering::Relaxed)
            });
            let outcome = upload_file_to(&nodes, &path, &tree, reads, Some(progress)).await;
            let mut session = lock(&task_session.session);
            session.staged = None;
            session.touched = Instant::now();
            match outcome {
                Ok(_) => {
                    session.stored.store(session.size, Ordering::Relaxed);
                    session.phase = Phase::Stored;
                }
                Err(e) => {
                    session.phase = Phase::Failed(format!(
                        "the storage node did not take the file (a segment whose bytes differ from the segment root the page committed is refused): {e}; the file is not stored, upload again"
                    ));
                }
            }
            drop(session);
            task_session.settled.notify_waiters();
        });
        Ok(report)
    }

    /// Drops session `id` and deletes its staged bytes: the page gave the upload up (another
    /// file was picked, or sealing failed). An upload being stored cannot be cancelled.
    pub fn cancel(&self, id: &str) -> Result<(), Refusal> {
        let shared = self.get(id)?;
        let mut session = lock(&shared.session);
        match session.phase {
            Phase::Storing => {
                return Err(refuse(
                    409,
                    "this upload is being stored on the storage node: it can no longer be cancelled",
                ));
            }
            Phase::Stored => {
                return Err(refuse(
                    409,
                    "this upload is stored on the storage node already: there is nothing to cancel",
                ));
            }
            _ => {}
        }
        // Deleted now, even while a writer still holds the session.
        session.staged = None;
        session.phase = Phase::Failed("the page cancelled this upload".into());
        drop(session);
        lock(&self.sessions).remove(id);
        shared.arrived.notify_all();
        Ok(())
    }

    /// Where session `id` stands.
    pub fn report(&self, id: &str) -> Result<Report, Refusal> {
        let shared = self.get(id)?;
        let session = lock(&shared.session);
        Ok(session.report())
    }

    /// Where session `id` stands once its storing ends, or after `wait` if it is still being
    /// stored then (the page's progress bar wants news that often): a page following an upload
    /// learns it is stored as soon as it is, without polling faster.
    pub async fn settled_report(&self, id: &str, wait: Duration) -> Result<Report, Refusal> {
        let shared = self.get(id)?;
        // Registered before the state is read, so an end between the two is not missed.
        let settled = shared.settled.notified();
        tokio::pin!(settled);
        settled.as_mut().enable();
        if lock(&shared.session).is_settling() {
            let _ = tokio::time::timeout(wait, settled).await;
        }
        let mut session = lock(&shared.session);
        // A page still asking keeps an upload that waits for its payment from being swept.
        session.touched = Instant::now();
        Ok(session.report())
    }
}

/// How often a committed upload asks its nodes whether its Flow submission was seen (and, while
/// it waits for its payment, asks the storage indexer again for nodes when it did not answer).
const PAYMENT_POLL: Duration = Duration::from_millis(250);

/// Whether session `id` is still `slot` in the staging area (not cancelled, not swept).
fn alive(
    sessions: &std::sync::Weak<Mutex<HashMap<String, Shared>>>,
    id: &str,
    slot: &Shared,
) -> bool {
    sessions
        .upgrade()
        .is_some_and(|s| lock(&s).get(id).is_some_and(|own| Arc::ptr_eq(own, slot)))
}

/// The nodes a committed upload goes to, picked once (for one node: that node, at once).
/// While the upload awaits its payment a storage indexer that does not answer is asked again,
/// as the page keeps waiting; an upload being stored fails with a sentence instead. `None`
/// when the session ended (cancelled, swept, or failed here).
async fn pick_nodes(
    storage: &Storage,
    sessions: &std::sync::Weak<Mutex<HashMap<String, Shared>>>,
    id: &str,
    slot: &Shared,
) -> Option<Vec<StorageClient>> {
    loop {
        if !alive(sessions, id, slot) {
            return None;
        }
        let error = match storage.upload_nodes().await {
            Ok(nodes) => return Some(nodes),
            Err(e) => e,
        };
        {
            let mut session = lock(&slot.session);
            match session.phase {
                Phase::AwaitingPayment => {}
                Phase::Storing => {
                    session.staged = None;
                    session.touched = Instant::now();
                    session.phase = Phase::Failed(format!(
                        "the server found no storage nodes to store the file on: {error}; the file is not stored, upload again"
                    ));
                    drop(session);
                    slot.settled.notify_waiters();
                    return None;
                }
                _ => return None,
            }
        }
        tracing::debug!(error = %error, "asking the storage indexer for nodes for a file awaiting payment");
        tokio::time::sleep(PAYMENT_POLL).await;
    }
}

/// Waits until every one of `nodes` knows `root` (its Flow submission was paid, and each node
/// saw it: they follow the Flow separately), then moves the session on to storing and returns
/// the nodes to store on. When a node does not answer, the nodes are picked again from
/// `storage` (a storage indexer leaves out nodes that stopped answering). `None` when the
/// session ended first (cancelled, or swept once the page stopped asking): nothing is stored
/// then.
async fn await_payment(
    storage: &Storage,
    mut nodes: Vec<StorageClient>,
    sessions: &std::sync::Weak<Mutex<HashMap<String, Shared>>>,
    id: &str,
    slot: &Shared,
    root: Hash,
) -> Option<Vec<StorageClient>> {
    loop {
        if !alive(sessions, id, slot)
            || !matches!(lock(&slot.session).phase, Phase::AwaitingPayment)
        {
            return None;
        }
        let answers =
            futures_util::future::join_all(nodes.iter().map(|node| node.file_info(root))).await;
        let mut known = true;
        let mut silent = false;
        for (node, answer) in nodes.iter().zip(answers) {
            match answer {
                Ok(Some(_)) => {}
                Ok(None) => known = false,
                // The node may be restarting, or gone: ask again, as the page keeps waiting.
                Err(e) => {
                    known = false;
                    silent = true;
                    tracing::debug!(node = node.url(), error = %e, "asking a storage node about a file awaiting payment")
                }
            }
        }
        if known {
            let mut session = lock(&slot.session);
            if !matches!(session.phase, Phase::AwaitingPayment) {
                return None;
            }
            session.phase = Phase::Storing;
            drop(session);
            slot.settled.notify_waiters();
            return Some(nodes);
        }
        if silent && let Ok(picked) = storage.upload_nodes().await {
            let urls = |nodes: &[StorageClient]| {
                nodes.iter().map(|n| n.url().to_owned()).collect::<Vec<_>>()
            };
            if urls(&picked) != urls(&nodes) {
                tracing::info!(from = ?urls(&nodes), to = ?urls(&picked), "a storage node of an upload awaiting payment stopped answering: picked its nodes again");
                nodes = picked;
            }
        }
        tokio::time::sleep(PAYMENT_POLL).await;
    }
}

/// A session's staged bytes. Pieces are appended in order and written in whole blocks with
/// direct I/O ([`licen_storage::direct`]): a staged upload is read once, when it is stored, and
/// then deleted, so passing it through the page cache only costs CPU (on this project's virtual
/// machines, a third of the server's share of an upload). Holds back less than one block.
struct Spool {
    file: DirectFile,
    /// Bytes after `written`, fewer than [`ALIGN`], waiting for the rest of their block.
    pending: Vec<u8>,
    /// Bytes on disk: a multiple of [`ALIGN`] until the last piece.
    written: u64,
}

impl Spool {
    fn new(file: std::fs::File, path: &std::path::Path) -> Self {
        Spool {
            file: DirectFile::new(file, path, true),
            pending: Vec::with_capacity(ALIGN),
            written: 0,
        }
    }

    /// Appends `bytes`; `last` writes out what is held back. A failed write leaves the spool as
    /// it was before the call, so the piece can be sent again.
    fn append(&mut self, bytes: &[u8], last: bool) -> std::io::Result<()> {
        let (held, written) = (self.pending.clone(), self.written);
        let result = self.write(bytes, last);
        if result.is_err() {
            self.pending = held;
            self.written = written;
        }
        result
    }

    fn write(&mut self, mut bytes: &[u8], last: bool) -> std::io::Result<()> {
        if !self.pending.is_empty() {
            let take = (ALIGN - self.pending.len()).min(bytes.len());
            self.pending.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.pending.len() < ALIGN && !last {
                return Ok(());
            }
            self.file.write_all_at(&self.pending, self.written)?;
            self.written += self.pending.len() as u64;
            self.pending.clear();
        }
        let whole = if last {
            bytes.len()
        } else {
            bytes.len() / ALIGN * ALIGN
        };
        self.file.write_all_at(&bytes[..whole], self.written)?;
        self.written += whole as u64;
        self.pending.extend_from_slice(&bytes[whole..]);
        Ok(())
    }
}

/// The tree the file is stored with: from the page's segment roots (the last data segment's
/// bytes are read back for the leaves a short last segment needs), or, without them, from
/// hashing the staged bytes.
fn committed_tree(
    mut file: std::fs::File,
    size: u64,
    segment_roots: Option<Vec<Hash>>,
) -> Result<FileTree, Refusal> {
    let staged = |e: std::io::Error| {
        refuse(
            503,
            format!("the server could not read back the staged upload: {e}"),
        )
    };
    let layout = FileLayout::new(size);
    let Some(roots) = segment_roots else {
        file.seek(SeekFrom::Start(0)).map_err(staged)?;
        return FileTree::from_reader(file).map_err(staged);
    };
    if roots.len() as u64 != layout.segments() {
        return Err(refuse(
            400,
            format!(
                "a file of {size} bytes has {} segments of {SEGMENT_SIZE} bytes, but the page sent {} segment roots: upload again",
                layout.segments(),
                roots.len()
            ),
        ));
    }
    let tree = FileTree::from_segment_roots(layout, roots).map_err(|e| {
        refuse(
            400,
            format!("the page's segment roots do not make a tree: {e}"),
        )
    })?;
    let last = layout.segments() - 1;
    let mut tail = vec![0u8; layout.segment_file_bytes(last)];
    file.seek(SeekFrom::Start(layout.segment_offset(last)))
        .and_then(|_| file.read_exact(&mut tail))
        .map_err(staged)?;
    Ok(tree.with_tail_data(&tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staging() -> Staging {
        Staging::new(Storage::Node(
            StorageClient::new("http://127.0.0.1:9").unwrap(),
        ))
    }

    #[tokio::test]
    async fn pieces_must_come_in_order_and_the_roots_must_agree() {
        let s = staging();
        let data: Vec<u8> = (0..600_000u32).map(|i| (i * 13) as u8).collect();
        let id = s.begin(data.len() as u64).unwrap();
        assert_eq!(s.put(&id, 0, &data[..300_000]).unwrap().received, 300_000);
        // Sent twice, or past the declared size: refused with a sentence.
        assert_eq!(s.put(&id, 0, &data[..10]).unwrap_err().status, 409);
        assert_eq!(
            s.put(&id, 300_000, &vec![0; 400_000]).unwrap_err().status,
            413
        );
        assert_eq!(
            s.commit(&id, Hash::ZERO, None).unwrap_err().status,
            409,
            "incomplete"
        );
        s.put(&id, 300_000, &data[300_000..]).unwrap();
        let wrong = s.commit(&id, Hash::repeat_byte(1), None).unwrap_err();
        assert!(
            wrong
                .message
                .contains("the bytes the server received hash to")
                && wrong.message.contains("nothing was stored"),
            "{wrong:?}"
        );
        assert_eq!(s.report(&id).unwrap().state, "failed");

        // With the page's segment roots: they must be one per segment and hash to its root.
        let tree = FileTree::from_bytes(&data);
        let roots = tree.data_segment_roots().to_vec();
        for (segment_roots, root, status, says) in [
            (roots[..2].to_vec(), tree.root(), 400, "has 3 segments"),
            (
                roots.clone(),
                Hash::repeat_byte(1),
                409,
                "the segment roots it sent hash to",
            ),
        ] {
            let id = s.begin(data.len() as u64).unwrap();
            s.put(&id, 0, &data).unwrap();
            let refused = s.commit(&id, root, Some(segment_roots)).unwrap_err();
            assert_eq!(refused.status, status, "{refused:?}");
            assert!(refused.message.contains(says), "{refused:?}");
            assert_eq!(s.report(&id).unwrap().state, "failed");
        }
        assert_eq!(s.begin(0).unwrap_err().status, 413);
        assert_eq!(s.report("nope").unwrap_err().status, 404);
    }

    #[tokio::test]
    async fn a_waiting_report_answers_when_storing_ends() {
        // No node listens on port 9: storing fails after the client's retries, and the report
        // waiting for it must answer then, not at the end of its wait.
        let s = staging();
        let data = vec![7u8; 1000];
        let id = s.begin(data.len() as u64).unwrap();
        s.put(&id, 0, &data).unwrap();
        let report = s
            .settled_report(&id, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(report.state, "receiving", "answers at once unless storing");
        assert_eq!(
            s.commit(&id, FileTree::from_bytes(&data).root(), None)
                .unwrap()
                .state,
            "storing"
        );
        let report = tokio::time::timeout(
            Duration::from_secs(30),
            s.settled_report(&id, Duration::from_secs(60)),
        )
        .await
        .expect("the report answered when storing failed, not after its 60 s wait")
        .unwrap();
        assert_eq!(report.state, "failed");
        assert!(report.error.unwrap().contains("did not take the file"));
    }

    /// Pieces of every size, across block boundaries and none, land byte for byte: the spool
    /// holds back a partial block until the next piece completes it, and the last piece
    /// writes out what is left.
    #[test]
    fn the_spool_stages_pieces_of_any_size_exactly() {
        let size = 5 * ALIGN * 64 + 1234;
        let data: Vec<u8> = (0..size).map(|i| (i * 31 % 253) as u8).collect();
        let cuts = [
            0,
            1,
            ALIGN - 1,
            ALIGN,
            3 * ALIGN + 7,
            1 << 20,
            (1 << 20) + 5,
            size,
        ];
        let staged = tempfile::NamedTempFile::new().unwrap();
        let (file, path) = staged.into_parts();
        let mut spool = Spool::new(file, &path);
        for w in cuts.windows(2) {
            spool.append(&data[w[0]..w[1]], w[1] == size).unwrap();
        }
        assert_eq!(std::fs::read(&path).unwrap(), data);
    }

    /// A piece whose write fails can be sent again: the spool is left as it was before it.
    #[test]
    fn a_failed_write_leaves_the_spool_as_it_was() {
        let staged = tempfile::NamedTempFile::new().unwrap();
        let (file, path) = staged.into_parts();
        let mut spool = Spool::new(file, &path);
        spool.append(&[1; 100], false).unwrap();
        assert_eq!((spool.pending.len(), spool.written), (100, 0), "held back");
        // The same spool over handles that refuse writes.
        let read_only = std::fs::File::open(&path).unwrap();
        let mut refusing = Spool {
            file: DirectFile::new(read_only, &path, false),
            pending: spool.pending.clone(),
            written: spool.written,
        };
        assert!(refusing.append(&[2; 3 * ALIGN], false).is_err());
        assert_eq!(refusing.pending, vec![1; 100]);
        assert_eq!(refusing.written, 0);
        // Sent again where it can be written, the piece lands once.
        spool.append(&[2; 3 * ALIGN], true).unwrap();
        let mut want = vec![1; 100];
        want.extend_from_slice(&[2; 3 * ALIGN]);
        assert_eq!(std::fs::read(&path).unwrap(), want);
    }

    #[test]
    fn a_cancelled_upload_is_gone_with_its_bytes() {
        let s = staging();
        let id = s.begin(100).unwrap();
        s.put(&id, 0, &[1; 40]).unwrap();
        let staged = lock(&s.get(&id).unwrap().session)
            .staged
            .as_ref()
            .unwrap()
            .to_path_buf();
        assert!(staged.exists());
        s.cancel(&id).unwrap();
        assert!(!staged.exists(), "the staged bytes are deleted");
        assert_eq!(s.report(&id).unwrap_err().status, 404);
        assert_eq!(s.put(&id, 40, &[1; 60]).unwrap_err().status, 404);
        assert_eq!(s.cancel(&id).unwrap_err().status, 404);
    }

    #[test]
    fn a_piece_ahead_of_its_predecessor_waits_for_it() {
        let s = staging();
        let id = s.begin(20).unwrap();
        let ahead = {
            let (s, id) = (s.clone(), id.clone());
            std::thread::spawn(move || s.put(&id, 10, &[2; 10]))
        };
        std::thread::sleep(Duration::from_millis(50));
        s.put(&id, 0, &[1; 10]).unwrap();
        assert_eq!(ahead.join().unwrap().unwrap().received, 20);
    }
}
