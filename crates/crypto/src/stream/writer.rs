//! Streaming encryption into the sealed-stream format.
//!
//! Owns [`SealWriter`]: a `std::io::Write` adapter that writes the header at construction, then
//! one sealed segment each time a full segment of plaintext is known not to be the last, and
//! the final segment (with the last-segment flag) in [`SealWriter::finish`].
//!
//! Must never: write a segment as final before `finish`, write plaintext to the inner writer,
//! allocate per segment (one buffer of `segment_size + 16` bytes is allocated up front and
//! zeroized on drop), or keep going after the inner writer failed.

use std::io::{self, Write};

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::{HEADER_LEN, MAX_SEGMENTS, SegmentCipher, StreamHeader, TAG_LEN, check_segment_size};
use crate::error::{Error, Result};
use crate::keys::{NoncePrefix, StreamKey};

/// Seals everything written to it into the inner writer as a LICEN sealed stream.
///
/// Memory use is one segment, whatever the input size. Call [`SealWriter::finish`] at the end:
/// a writer dropped without `finish` leaves a stream with no final segment, which every reader
/// rejects as truncated ([`Error::Truncated`]).
///
/// ```
/// use std::io::Write;
/// use licen_crypto::{NoncePrefix, StreamKey, stream::{self, SealWriter}};
///
/// let key = StreamKey::from_bytes([7; 32]);
/// let mut w = SealWriter::new(Vec::new(), &key, NoncePrefix::from_bytes([1; 7]), 64)?;
/// w.write_all(b"hello, sealed world")?;
/// let sealed = w.finish()?;
/// assert_eq!(stream::open(&key, &sealed)?, b"hello, sealed world");
/// # Ok::<(), licen_crypto::Error>(())
/// ```
pub struct SealWriter<W: Write> {
    inner: W,
    cipher: SegmentCipher,
    segment_size: usize,
    /// `segment_size + TAG_LEN` bytes: pending plaintext, then a sealed segment being written.
    buf: Zeroizing<Vec<u8>>,
    /// Plaintext bytes waiting in `buf[..pending]`.
    pending: usize,
    /// Index of the next segment to seal.
    index: u64,
    poisoned: bool,
}

impl<W: Write> SealWriter<W> {
    /// Starts a sealed stream: validates `segment_size` and writes the 36-byte header to
    /// `inner`. `nonce_prefix` must be random (use [`NoncePrefix::generate`]); a fixed one is
    /// for test vectors only.
    ///
    /// # Errors
    /// [`Error::InvalidSegmentSize`]; [`Error::Io`] if writing the header fails.
    pub fn new(
        mut inner: W,
        key: &StreamKey,
        nonce_prefix: NoncePrefix,
        segment_size: u32,
    ) -> Result<Self> {
        let segment_size = check_segment_size(segment_size)?;
        let header = StreamHeader {
            segment_size,
            nonce_prefix,
        };
        let cipher = SegmentCipher::new(key, &header);
        inner.write_all(&cipher.header).map_err(Error::Io)?;
        let segment_size = segment_size as usize;
        Ok(SealWriter {
            inner,
            cipher,
            segment_size,
            buf: Zeroizing::new(vec![0u8; segment_size + TAG_LEN]),
            pending: 0,
            index: 0,
            poisoned: false,
        })
    }

    /// Like [`SealWriter::new`] with a nonce prefix drawn from `rng`.
    ///
    /// # Errors
    /// As [`SealWriter::new`].
    pub fn with_rng(
        inner: W,
        key: &StreamKey,
        segment_size: u32,
        rng: &mut impl CryptoRng,
    ) -> Result<Self> {
        Self::new(inner, key, NoncePrefix::generate(rng), segment_size)
    }

    /// Like [`SealWriter::new`] with a nonce prefix from the operating system's CSPRNG.
    ///
    /// # Errors
    /// As [`SealWriter::new`].
    #[cfg(feature = "os-rng")]
    pub fn new_random(inner: W, key: &StreamKey, segment_size: u32) -> Result<Self> {
        Self::new(inner, key, NoncePrefix::random(), segment_size)
    }

    /// The 36-byte header already written to the inner writer.
    #[must_use]
    pub fn header(&self) -> &[u8; HEADER_LEN] {
        &self.cipher.header
    }

    /// Plaintext bytes accepted so far.
    #[must_use]
    pub fn plaintext_written(&self) -> u64 {
        self.index * self.segment_size as u64 + self.pending as u64
    }

    /// The inner writer.
    #[must_use]
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// Seals the pending data as the final segment, flushes, and returns the inner writer.
    ///
    /// # Errors
    /// [`Error::WriterPoisoned`] after an earlier I/O failure, [`Error::StreamTooLong`], or
    /// [`Error::Io`].
    pub fn finish(mut self) -> Result<W> {
        if self.poisoned {
            return Err(Error::WriterPoisoned);
        }
        let len = self.pending;
        self.seal_buffered(len, true)?;
        self.inner.flush().map_err(Error::Io)?;
        Ok(self.inner)
    }

    /// Seals `buf[..len]` in place as segment `self.index` and writes it out.
    fn seal_buffered(&mut self, len: usize, last: bool) -> Result<()> {
        self.check_index()?;
        let (data, rest) = self.buf.split_at_mut(len);
        let tag = self.cipher.seal_segment(self.index, last, data);
        rest[..TAG_LEN].copy_from_slice(&tag);
        self.emit(len + TAG_LEN)?;
        self.pending = 0;
        Ok(())
    }

    fn check_index(&self) -> Result<()> {
        if self.index >= MAX_SEGMENTS {
            return Err(Error::StreamTooLong {
                max_segments: MAX_SEGMENTS,
            });
        }
        Ok(())
    }

    /// Writes `buf[..len]` (a sealed segment) and advances the segment index.
    fn emit(&mut self, len: usize) -> Result<()> {
        self.poisoned = true;
        self.inner.write_all(&self.buf[..len]).map_err(Error::Io)?;
        self.poisoned = false;
        self.index += 1;
        Ok(())
    }

    fn write_inner(&mut self, mut data: &[u8]) -> Result<()> {
        if self.poisoned {
            return Err(Error::WriterPoisoned);
        }
        let s = self.segment_size;
        while !data.is_empty() {
            if self.pending == s {
                // A full segment is buffered and more data follows: it is not the last.
                // (Copy-then-encrypt-in-place: AES-GCM's in-place path is markedly faster than
                // encrypting from the caller's buffer into ours.)
                self.seal_buffered(s, false)?;
            }
            let take = (s - self.pending).min(data.len());
            self.buf[self.pending..self.pending + take].copy_from_slice(&data[..take]);
            self.pending += take;
            data = &data[take..];
        }
        Ok(())
    }
}

impl<W: Write> Write for SealWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.write_inner(data)?;
        Ok(data.len())
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        Ok(self.write_inner(data)?)
    }

    /// Flushes the inner writer. Buffered plaintext of the current segment stays buffered: a
    /// segment can only be sealed once it is known whether it is the last.
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write> std::fmt::Debug for SealWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealWriter")
            .field("segment_size", &self.segment_size)
            .field("segments_written", &self.index)
            .field("pending", &self.pending)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}
