//! Background `fdatasync` for large files written in pieces (a node's upload in progress, a
//! client's download). Without it a 1 GiB file sits dirty in the page cache until the one
//! fsync at the end, which then writes all of it while the caller waits; with it the disk
//! writes while the rest is still arriving.
//!
//! Owns only the pacing and the failure flag. Never a durability point: the writer still syncs
//! before it reports anything durable, and must refuse to when [`BackgroundFlush::failed`]
//! (after a failed fsync the kernel may report later ones clean although the pages never
//! reached the disk).

use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Bytes written after which a background flush starts.
const FLUSH_EVERY_BYTES: u64 = 32 << 20;

/// Paces background flushes of one file.
#[derive(Debug)]
pub(crate) struct BackgroundFlush {
    /// A handle on the file being written (its own descriptor, same open file).
    file: File,
    /// Names the file in the log line of a failed flush.
    label: String,
    /// Bytes written since the last flush started.
    unflushed: AtomicU64,
    /// A flush is running.
    flushing: AtomicBool,
    /// A flush failed.
    failed: AtomicBool,
}

impl BackgroundFlush {
    /// Flushes `file` (a clone of the writer's handle) in the background as it is written.
    pub(crate) fn new(file: File, label: impl Into<String>) -> Arc<Self> {
        Arc::new(BackgroundFlush {
            file,
            label: label.into(),
            unflushed: AtomicU64::new(0),
            flushing: AtomicBool::new(false),
            failed: AtomicBool::new(false),
        })
    }

    /// Counts `bytes` just written and, every 32 MiB, starts a background `fdatasync` (one at
    /// a time, on its own thread).
    pub(crate) fn note_written(self: &Arc<Self>, bytes: u64) {
        let pending = self.unflushed.fetch_add(bytes, Ordering::AcqRel) + bytes;
        if pending < FLUSH_EVERY_BYTES || self.flushing.swap(true, Ordering::AcqRel) {
            return;
        }
        let flush = self.clone();
        let spawned = std::thread::Builder::new()
            .name("licen-flush".into())
            .spawn(move || {
                flush.unflushed.store(0, Ordering::Release);
                if let Err(e) = flush.file.sync_data() {
                    tracing::error!(file = %flush.label, error = %e, "background flush failed");
                    flush.failed.store(true, Ordering::Release);
                }
                flush.flushing.store(false, Ordering::Release);
            });
        if spawned.is_err() {
            self.flushing.store(false, Ordering::Release);
        }
    }

    /// Whether a background flush failed: the file must not be reported durable.
    pub(crate) fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }
}
