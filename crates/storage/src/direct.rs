//! Direct I/O (Linux `O_DIRECT`) for bulk bytes that pass through a process once: the segments
//! a node takes, a file read for upload, the web server's staged uploads.
//!
//! Buffered writes copy every byte into page-cache pages the kernel allocates for them, and an
//! upload's bytes are not read again soon (a staged upload is deleted once stored; a node's
//! new file is read when someone downloads it). On the virtual machines this project runs on,
//! pages the kernel allocates afresh are expensive to touch (the host backs them on first
//! write), and those copies cost more CPU than the node's proof checks: about 0.6 CPU-s per
//! 256 MiB in the web bench's profile (`copy_folio_from_iter_atomic`). Direct I/O moves the
//! bytes between the process's own (reused) buffer and the disk instead.
//!
//! [`DirectFile`] keeps the ordinary handle beside an `O_DIRECT` one and uses the direct one
//! for the aligned part of each call ([`ALIGN`]-aligned offset, whole blocks), through an
//! aligned per-thread buffer; the rest (a file's last partial block, unaligned calls, systems
//! or filesystems without `O_DIRECT`) goes through the ordinary handle. Both see the same bytes:
//! the kernel writes back and drops cached pages of a range before direct I/O on it.
//!
//! Owns nothing but the second handle and the per-thread buffers ([`SCRATCH`] bytes each).
//! Never a durability point: callers still `fsync` what they report durable.

use std::cell::RefCell;
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Alignment of direct I/O offsets, lengths and buffers: 4096 covers 512- and 4096-byte
/// logical blocks.
pub const ALIGN: usize = 4096;
/// Bytes one direct call moves at most (the per-thread buffer's size).
pub const SCRATCH: usize = 4 << 20;

thread_local! {
    // Over-allocated by ALIGN so an aligned window of SCRATCH bytes fits (no `unsafe` needed).
    static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on an aligned window of `len` (at most [`SCRATCH`]) bytes of this thread's buffer,
/// which grows to the largest window asked for (a thread reading 256 KiB segments keeps 260 KiB).
fn with_aligned<R>(len: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
    debug_assert!(len <= SCRATCH);
    BUFFER.with(|cell| {
        let mut buffer = cell.borrow_mut();
        if buffer.len() < len + ALIGN {
            buffer.resize(len + ALIGN, 0);
        }
        let start = buffer.as_ptr().align_offset(ALIGN);
        f(&mut buffer[start..start + len])
    })
}

/// A file with an `O_DIRECT` handle beside its ordinary one (see the module docs).
#[derive(Debug)]
pub struct DirectFile {
    file: File,
    direct: Option<File>,
    /// Set by the first call the filesystem refused (`EINVAL`: it opens `O_DIRECT` files but
    /// wants another alignment); every later call then goes through the page cache at once.
    refused: AtomicBool,
}

impl DirectFile {
    /// `file` (the ordinary handle on `path`), with a direct handle opened on `path` for reading
    /// or for reading and writing. Without `O_DIRECT` (another OS, a filesystem refusing it)
    /// every call uses `file`.
    #[must_use]
    pub fn new(file: File, path: &Path, write: bool) -> Self {
        DirectFile {
            direct: open_direct(path, write),
            file,
            refused: AtomicBool::new(false),
        }
    }

    /// `file` alone: every call through the page cache.
    #[must_use]
    pub fn buffered(file: File) -> Self {
        DirectFile {
            file,
            direct: None,
            refused: AtomicBool::new(false),
        }
    }

    /// The ordinary handle.
    #[must_use]
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The ordinary handle, the direct one closed.
    #[must_use]
    pub fn into_file(self) -> File {
        self.file
    }

    /// Whether aligned calls bypass the page cache.
    #[must_use]
    pub fn is_direct(&self) -> bool {
        self.direct().is_some()
    }

    /// The direct handle, unless there is none or the filesystem refused a call on it.
    fn direct(&self) -> Option<&File> {
        self.direct
            .as_ref()
            .filter(|_| !self.refused.load(Ordering::Relaxed))
    }

    /// Whether `result` is the filesystem refusing direct I/O (remembered: see `refused`).
    fn refusal<T>(&self, result: &io::Result<T>) -> bool {
        let refused = matches!(result, Err(e) if e.raw_os_error() == Some(EINVAL));
        if refused {
            self.refused.store(true, Ordering::Relaxed);
        }
        refused
    }

    /// Writes all of `data` at `offset` (as [`Self::write_pieces`] of its consecutive
    /// [`SCRATCH`]-byte parts).
    ///
    /// # Errors
    /// The write's I/O error.
    pub fn write_all_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        let parts: Vec<(u64, &[u8])> = data
            .chunks(SCRATCH)
            .zip((offset..).step_by(SCRATCH))
            .map(|(part, at)| (at, part))
            .collect();
        self.write_pieces(&parts)
    }

    /// Writes each `(offset, bytes)` piece. Contiguous pieces go to the disk as one direct write
    /// of up to [`SCRATCH`] bytes: fewer, larger writes wait less on the device (a node writes
    /// a batch of consecutive segments this way).
    ///
    /// # Errors
    /// The first write's I/O error.
    pub fn write_pieces(&self, pieces: &[(u64, &[u8])]) -> io::Result<()> {
        let mut i = 0;
        while i < pieces.len() {
            let (start, first) = pieces[i];
            if self.direct().is_none()
                || !start.is_multiple_of(ALIGN as u64)
                || first.len() > SCRATCH
            {
                write_at(&self.file, first, start)?;
                i += 1;
                continue;
            }
            // The run of pieces that continue each other whole blocks at a time and fit.
            let mut end = i;
            let mut len = 0;
            while end < pieces.len()
                && pieces[end].0 == start + len as u64
                && len + pieces[end].1.len() <= SCRATCH
                && len.is_multiple_of(ALIGN)
            {
                len += pieces[end].1.len();
                end += 1;
            }
            with_aligned(len, |buffer| {
                let mut at = 0;
                for (_, piece) in &pieces[i..end] {
                    buffer[at..at + piece.len()].copy_from_slice(piece);
                    at += piece.len();
                }
                self.write_aligned(buffer, start)
            })?;
            i = end;
        }
        Ok(())
    }

    /// Writes `data`, which lies in aligned memory, at the aligned `offset`: its whole blocks
    /// directly, a partial last block through the page cache.
    fn write_aligned(&self, data: &[u8], offset: u64) -> io::Result<()> {
        let whole = data.len() / ALIGN * ALIGN;
        if let Some(direct) = self.direct()
            && whole > 0
        {
            let written = write_at(direct, &data[..whole], offset);
            if !self.refusal(&written) {
                written?;
                return write_at(&self.file, &data[whole..], offset + whole as u64);
            }
        }
        write_at(&self.file, data, offset)
    }

    /// Fills `buf` from `offset`.
    ///
    /// # Errors
    /// The read's I/O error; `UnexpectedEof` if the file ends first.
    pub fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        if let Some(direct) = self.direct()
            && offset.is_multiple_of(ALIGN as u64)
        {
            while !buf.is_empty() {
                let want = buf.len().min(SCRATCH);
                // Whole blocks: the file's last block may be partial, which a direct read
                // answers with the bytes there are.
                let ask = want.div_ceil(ALIGN) * ALIGN;
                let read = with_aligned(ask, |buffer| {
                    let got = read_at(direct, buffer, offset)?;
                    let n = got.min(want);
                    buf[..n].copy_from_slice(&buffer[..n]);
                    Ok::<_, io::Error>(n)
                });
                if self.refusal(&read) {
                    break;
                }
                match read? {
                    0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                    n => {
                        buf = &mut buf[n..];
                        offset += n as u64;
                        if !n.is_multiple_of(ALIGN) {
                            break;
                        }
                    }
                }
            }
        }
        read_exact_at(&self.file, buf, offset)
    }
}

/// What Linux answers a direct call it cannot do as asked (the same on every architecture).
const EINVAL: i32 = 22;

#[cfg(target_os = "linux")]
fn open_direct(path: &Path, write: bool) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .ok()
}

#[cfg(not(target_os = "linux"))]
fn open_direct(_path: &Path, _write: bool) -> Option<File> {
    None
}

#[cfg(unix)]
fn write_at(file: &File, data: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, data, offset)
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    loop {
        match std::os::unix::fs::FileExt::read_at(file, buf, offset) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// Fills `buf` from `offset` of `file` (positioned; `UnexpectedEof` if the file ends first).
#[cfg(unix)]
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn write_at(file: &File, mut data: &[u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !data.is_empty() {
        let n = file.seek_write(data, offset)?;
        data = &data[n..];
        offset += n as u64;
    }
    Ok(())
}

#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

#[cfg(windows)]
pub(crate) fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        let n = read_at(file, buf, offset)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf = &mut buf[n..];
        offset += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every mix of aligned and unaligned calls, around block and buffer boundaries, reads back
    /// exactly what was written, direct or not.
    #[test]
    fn direct_and_buffered_calls_see_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        let f = DirectFile::new(file, &path, true);
        // Linux filesystems that tests run on (ext4, xfs, btrfs; tmpfs since Linux 6.6) take
        // `O_DIRECT`; without it this test would only check the page-cache path.
        #[cfg(target_os = "linux")]
        assert!(f.is_direct(), "the temporary directory refuses O_DIRECT");
        let size = 3 * SCRATCH + 5 * ALIGN + 300;
        let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        // Aligned pieces of odd lengths, one unaligned piece, and the short tail.
        let cuts = [
            0,
            ALIGN,
            ALIGN + 10,
            2 * ALIGN,
            SCRATCH + 3 * ALIGN,
            3 * SCRATCH,
            size,
        ];
        for w in cuts.windows(2) {
            f.write_all_at(&data[w[0]..w[1]], w[0] as u64).unwrap();
        }
        assert_eq!(std::fs::read(&path).unwrap(), data);
        for (start, len) in [
            (0, size),
            (ALIGN, SCRATCH + 17),
            (17, ALIGN),
            (3 * SCRATCH, size - 3 * SCRATCH),
        ] {
            let mut back = vec![0u8; len];
            f.read_exact_at(&mut back, start as u64).unwrap();
            assert_eq!(back, data[start..start + len], "read {start}+{len}");
        }
        let mut past = vec![0u8; ALIGN];
        let err = f.read_exact_at(&mut past, (size - 100) as u64).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        // The same bytes again as pieces: runs of contiguous pieces, a gap, an unaligned piece,
        // a run longer than the buffer and the short tail.
        std::fs::write(&path, vec![0u8; size]).unwrap();
        let bounds = [
            0,
            ALIGN,
            3 * ALIGN,
            3 * ALIGN + 100,
            4 * ALIGN,
            SCRATCH - ALIGN,
            SCRATCH + ALIGN,
            2 * SCRATCH,
            3 * SCRATCH + 4 * ALIGN,
            size,
        ];
        let pieces: Vec<(u64, &[u8])> = bounds
            .windows(2)
            .map(|w| (w[0] as u64, &data[w[0]..w[1]]))
            .collect();
        let (early, late) = pieces.split_at(4);
        f.write_pieces(late).unwrap();
        f.write_pieces(early).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), data);
        let last_block = (size / ALIGN * ALIGN) as u64;
        let err = f.read_exact_at(&mut past, last_block).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
