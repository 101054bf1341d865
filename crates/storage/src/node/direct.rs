//! Page-cache-bypassing (`O_DIRECT`) writes of whole segments, on Linux.
//!
//! A buffered write of an upload costs the node a kernel copy into the page cache (on the
//! machine this was measured on, 1.4 CPU-s per GiB, as much as verifying every proof) and then
//! the writeback; a direct write hands the disk the bytes from an aligned buffer instead. It
//! is not a durability point: finalization still fsyncs the file before anything is reported
//! finalized.
//!
//! Owns the aligned staging buffer and the decision whether a write can go direct. Writes that
//! cannot (a length or offset not a multiple of [`ALIGN`], as the file's short last segment,
//! or a filesystem that refuses `O_DIRECT`, like tmpfs) are left to the caller's buffered
//! handle, which then writes the whole segment (over anything a refused attempt left).

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Alignment of buffer, offset and length that direct I/O requires on every block device
/// this is expected to meet (logical blocks of at most 4 KiB).
const ALIGN: usize = 4096;

thread_local! {
    /// One segment's bytes on their way to the disk, copied to an `ALIGN`-aligned address.
    static STAGING: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A second handle on a partial upload's data file, opened for direct writes.
#[derive(Debug)]
pub(super) struct DirectWriter {
    file: File,
    /// The filesystem refused a direct write: everything goes through the buffered handle.
    refused: AtomicBool,
}

impl DirectWriter {
    /// Opens `path` (which exists) for direct writes; `None` where the platform or the
    /// filesystem does not offer them.
    pub(super) fn open(path: &Path) -> Option<Self> {
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_DIRECT)
                .open(path)
                .ok()
                .map(|file| DirectWriter {
                    file,
                    refused: AtomicBool::new(false),
                })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = path;
            None
        }
    }

    /// Writes all of `data` at `offset`, bypassing the page cache. `Ok(false)`: this write
    /// cannot go direct and nothing was written; the caller writes it through its buffered
    /// handle.
    #[cfg(target_os = "linux")]
    pub(super) fn write_at(&self, data: &[u8], offset: u64) -> io::Result<bool> {
        if data.is_empty()
            || !data.len().is_multiple_of(ALIGN)
            || !offset.is_multiple_of(ALIGN as u64)
            || self.refused.load(Ordering::Relaxed)
        {
            return Ok(false);
        }
        STAGING.with_borrow_mut(|staging| {
            if staging.len() < data.len() + ALIGN {
                staging.resize(data.len() + ALIGN, 0);
            }
            let start = staging.as_ptr().align_offset(ALIGN);
            let aligned = &mut staging[start..start + data.len()];
            aligned.copy_from_slice(data);
            match std::os::unix::fs::FileExt::write_all_at(&self.file, aligned, offset) {
                Ok(()) => Ok(true),
                // EINVAL: this filesystem or device wants another alignment. A direct write
                // that fails this way has written nothing; stop trying for this file.
                Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                    self.refused.store(true, Ordering::Relaxed);
                    Ok(false)
                }
                Err(e) => Err(e),
            }
        })
    }

    #[cfg(not(target_os = "linux"))]
    pub(super) fn write_at(&self, _data: &[u8], _offset: u64) -> io::Result<bool> {
        Ok(false)
    }
}
