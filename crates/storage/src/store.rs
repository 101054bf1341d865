//! The [`Store`] trait: what the rest of LICEN needs from storage, whatever is behind it (the
//! local node or 0G).
//!
//! Owns the contract only: put a file, a byte slice or a reader and get back its 0G root; get a
//! root into a writer, every byte verified against that root; ask for file info; ask whether a
//! segment is stored. It must never hand a caller bytes that were not verified against the
//! root the caller asked for, and it only ever moves ciphertext.
//!
//! The trait is dyn-compatible (`Arc<dyn Store>`): methods return boxed futures.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};

use std::sync::atomic::{AtomicU64, Ordering};

use crate::client::DownloadOptions;
use crate::error::Error;
use crate::error::Result;
use crate::flush::BackgroundFlush;
use crate::merkle::Hash;
use crate::rpc::FileInfo;

/// A boxed, `Send` future (what [`Store`] methods return).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What an operation is doing when it reports progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// First pass: computing the root and segment tree.
    Hashing,
    /// Sending segments.
    Uploading,
    /// Receiving and verifying segments.
    Downloading,
}

/// A progress report: `done` of `total` bytes in `phase`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Current phase.
    pub phase: Phase,
    /// Bytes done in this phase (segments skipped because the node has them count as done).
    pub done: u64,
    /// Bytes in this phase.
    pub total: u64,
}

/// Progress callback; called from worker tasks, so it must be cheap and thread-safe.
pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// Outcome of an upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uploaded {
    /// The 0G root: the file id.
    pub root: Hash,
    /// File size in bytes.
    pub size: u64,
    /// Segments in the file.
    pub segments: u64,
    /// Segments sent in this call.
    pub sent_segments: u64,
    /// Segments the node already had (resumed upload) and were not sent again.
    pub skipped_segments: u64,
    /// The node already had the whole file finalized; nothing was sent.
    pub already_stored: bool,
    /// The node reports the file finalized.
    pub finalized: bool,
}

/// Outcome of a download.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Downloaded {
    /// The root that was requested and verified.
    pub root: Hash,
    /// Bytes written.
    pub size: u64,
    /// The node the bytes came from.
    pub node: String,
}

/// Content-addressed storage of ciphertext, addressed by 0G root.
pub trait Store: Send + Sync {
    /// Uploads the file at `path`; returns its root. Resumes a partial upload.
    fn put_file<'a>(
        &'a self,
        path: &'a Path,
        progress: Option<ProgressFn>,
    ) -> BoxFuture<'a, Result<Uploaded>>;

    /// Uploads `data`; returns its root.
    fn put_bytes<'a>(
        &'a self,
        data: &'a [u8],
        progress: Option<ProgressFn>,
    ) -> BoxFuture<'a, Result<Uploaded>>;

    /// Uploads everything `reader` yields. The root is needed before the first segment can be
    /// sent, so the stream is spooled to a temporary file first (ciphertext only).
    fn put_reader<'a>(
        &'a self,
        reader: &'a mut (dyn AsyncRead + Unpin + Send),
        progress: Option<ProgressFn>,
    ) -> BoxFuture<'a, Result<Uploaded>> {
        Box::pin(async move {
            let spool = crate::client::spool_to_temp(reader).await?;
            self.put_file(spool.path(), progress).await
        })
    }

    /// Downloads `root` into `writer`, verifying every segment against `root` before it is
    /// written. Bytes of a segment that fails verification are never written.
    fn get<'a>(
        &'a self,
        root: Hash,
        writer: &'a mut (dyn AsyncWrite + Unpin + Send),
        options: DownloadOptions,
        progress: Option<ProgressFn>,
    ) -> BoxFuture<'a, Result<Downloaded>>;

    /// What the store knows about `root` (`None`: unknown).
    fn file_info(&self, root: Hash) -> BoxFuture<'_, Result<Option<FileInfo>>>;

    /// Whether segment `index` of `root` is stored.
    fn has_segment(&self, root: Hash, index: u64) -> BoxFuture<'_, Result<bool>>;
}

/// Downloads `root` from `store` to `path`: written to `path` + `.partial` and renamed only once every
/// segment verified, so `path` never holds unverified bytes.
pub async fn download_to_path(
    store: &dyn Store,
    root: Hash,
    path: &Path,
    options: DownloadOptions,
    progress: Option<ProgressFn>,
) -> Result<Downloaded> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = std::path::PathBuf::from(tmp);
    let file = std::fs::File::create(&tmp)
        .and_then(|file| Ok((file.try_clone()?, file)))
        .map_err(|e| Error::io(format!("creating {}", tmp.display()), e));
    let (file, for_flush) = match file {
        Ok(files) => files,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    // Start the disk writing while segments still arrive, so the final sync has little
    // left to do (the written-byte count comes from the progress reports).
    let flush = BackgroundFlush::new(for_flush, tmp.display().to_string());
    let flushed = Arc::new(AtomicU64::new(0));
    let paced: ProgressFn = {
        let flush = flush.clone();
        Arc::new(move |p: Progress| {
            if p.phase == Phase::Downloading {
                let before = flushed.fetch_max(p.done, Ordering::AcqRel);
                flush.note_written(p.done.saturating_sub(before));
            }
            if let Some(user) = &progress {
                user(p);
            }
        })
    };
    let mut w = tokio::io::BufWriter::with_capacity(1 << 20, tokio::fs::File::from_std(file));
    let res = store.get(root, &mut w, options, Some(paced)).await;
    let res = match res {
        Ok(_) if flush.failed() => Err(Error::io(
            format!("flushing {}", tmp.display()),
            std::io::Error::other("a background flush failed"),
        )),
        other => other,
    };
    match res {
        Ok(d) => {
            let file = w.into_inner();
            file.sync_all()
                .await
                .map_err(|e| Error::io(format!("syncing {}", tmp.display()), e))?;
            tokio::fs::rename(&tmp, path)
                .await
                .map_err(|e| Error::io(format!("renaming {} into place", tmp.display()), e))?;
            Ok(d)
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            Err(e)
        }
    }
}
