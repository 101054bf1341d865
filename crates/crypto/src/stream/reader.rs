//! Streaming decryption of the sealed-stream format.
//!
//! Owns [`OpenReader`]: a `std::io::Read` adapter that authenticates the header at
//! construction, then reads one segment at a time (plus one byte of look-ahead to learn whether
//! the segment is the last), verifies its tag under its index and last-segment flag, and only
//! then hands out its plaintext.
//!
//! Must never: return a single byte of a segment whose tag has not verified; continue after an
//! integrity failure (the reader stays failed and repeats the error); accept input that ends
//! without a final segment or continues after it; allocate more than one segment buffer.

use std::io::{self, Read};

use zeroize::{Zeroize, Zeroizing};

use super::{
    HEADER_CORE_LEN, HEADER_LEN, MAGIC, MAX_SEGMENTS, SegmentCipher, StreamHeader, TAG_LEN,
};
use crate::error::{Error, Result};
use crate::keys::StreamKey;

enum State {
    /// More segments to read.
    Open,
    /// The final segment verified; after its plaintext, reads return 0.
    Done,
    /// An integrity failure; every later read repeats it.
    Failed(Error),
}

/// Reads a LICEN sealed stream from the inner reader and yields its plaintext.
///
/// Plaintext is released one whole segment at a time and only after that segment's tag has
/// verified, so the bytes a caller has received before an error are always exactly the
/// plaintext of the authentic segments before the failing one. Memory use is one segment.
///
/// Errors surface from `read` as `io::Error`s; `licen_crypto::Error::from(io_error)` gives the
/// specific variant back ([`Error::SegmentAuthFailed`], [`Error::Truncated`], …).
pub struct OpenReader<R: Read> {
    inner: R,
    cipher: SegmentCipher,
    header: StreamHeader,
    /// Ciphertext length of a full segment (`segment_size + 16`).
    full_ct: usize,
    /// `full_ct + 1` bytes: one segment plus one byte of look-ahead.
    buf: Zeroizing<Vec<u8>>,
    /// Bytes of the segment being assembled in `buf`.
    filled: usize,
    /// Whether `buf[full_ct]` holds the first byte of the next segment.
    lookahead: bool,
    /// Verified plaintext ready to hand out: `buf[pos..end]`.
    pos: usize,
    end: usize,
    /// Index of the next segment to open.
    index: u64,
    state: State,
}

impl<R: Read> OpenReader<R> {
    /// Reads and authenticates the header.
    ///
    /// # Errors
    /// [`Error::HeaderTruncated`], [`Error::BadMagic`], [`Error::UnsupportedVersion`],
    /// [`Error::InvalidSegmentSize`], [`Error::HeaderAuthFailed`] (wrong key or altered header),
    /// [`Error::Io`].
    pub fn new(mut inner: R, key: &StreamKey) -> Result<Self> {
        let mut raw = [0u8; HEADER_LEN];
        let got = read_full(&mut inner, &mut raw).map_err(Error::Io)?;
        let seen = got.min(MAGIC.len());
        if raw[..seen] != MAGIC[..seen] {
            return Err(Error::BadMagic);
        }
        let header = StreamHeader::parse(&raw[..got])?;
        let cipher = SegmentCipher::new(key, &header);
        if !cipher.header_tag_matches(&raw[HEADER_CORE_LEN..]) {
            return Err(Error::HeaderAuthFailed);
        }
        let full_ct = header.segment_size as usize + TAG_LEN;
        Ok(OpenReader {
            inner,
            cipher,
            header,
            full_ct,
            buf: Zeroizing::new(vec![0u8; full_ct + 1]),
            filled: 0,
            lookahead: false,
            pos: 0,
            end: 0,
            index: 0,
            state: State::Open,
        })
    }

    /// The authenticated header fields.
    #[must_use]
    pub fn header(&self) -> StreamHeader {
        self.header
    }

    /// Whether the final segment has been verified (its plaintext may still be unread).
    #[must_use]
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Number of segments verified so far.
    #[must_use]
    pub fn segments_verified(&self) -> u64 {
        match self.state {
            State::Done => self.index + 1,
            _ => self.index,
        }
    }

    /// The inner reader.
    #[must_use]
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// Gives back the inner reader.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Fills `buf` with the next segment (and one look-ahead byte) and opens it.
    fn next_segment(&mut self) -> Result<()> {
        if self.lookahead {
            self.buf[0] = self.buf[self.full_ct];
            self.filled = 1;
            self.lookahead = false;
        }
        let cap = self.full_ct + 1;
        while self.filled < cap {
            match self.inner.read(&mut self.buf[self.filled..cap]) {
                Ok(0) => break,
                Ok(n) => self.filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Not an integrity failure: the partial segment stays buffered for a retry.
                Err(e) => return Err(Error::Io(e)),
            }
        }
        let last = self.filled < cap;
        let len = if last { self.filled } else { self.full_ct };
        self.filled = 0;
        self.lookahead = !last;
        let index = self.index;

        if len < TAG_LEN {
            // Nothing, or too little for a tag, where a segment must be.
            return Err(Error::Truncated { segments: index });
        }
        if index >= MAX_SEGMENTS {
            return Err(Error::StreamTooLong {
                max_segments: MAX_SEGMENTS,
            });
        }
        let (ct, tag) = self.buf[..len].split_at_mut(len - TAG_LEN);
        if !self.cipher.open_segment(index, last, ct, tag) {
            return Err(self.diagnose(index, last, len));
        }
        if last && len == TAG_LEN && index > 0 {
            self.buf[..len].zeroize();
            return Err(Error::EmptyFinalSegment { index });
        }
        self.pos = 0;
        self.end = len - TAG_LEN;
        if last {
            self.state = State::Done;
        } else {
            self.index += 1;
        }
        Ok(())
    }

    /// Names the failure of segment `index` as precisely as the data allows. The trial
    /// decryptions below are on the error path only, and their plaintext is wiped unreleased.
    fn diagnose(&mut self, index: u64, last: bool, len: usize) -> Error {
        let flipped = !last;
        if len == self.full_ct {
            let (ct, tag) = self.buf[..len].split_at_mut(len - TAG_LEN);
            if self.cipher.open_segment(index, flipped, ct, tag) {
                self.buf[..len].zeroize();
                return if last {
                    // A genuine non-final segment with nothing after it: cut at a boundary.
                    Error::Truncated {
                        segments: index + 1,
                    }
                } else {
                    // A genuine final segment with bytes after it.
                    Error::TrailingData { index }
                };
            }
        }
        Error::SegmentAuthFailed { index }
    }

    fn read_inner(&mut self, out: &mut [u8]) -> Result<usize> {
        loop {
            if self.pos < self.end {
                let n = (self.end - self.pos).min(out.len());
                out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if out.is_empty() {
                return Ok(0);
            }
            match &self.state {
                State::Done => return Ok(0),
                State::Failed(e) => return Err(e.duplicate()),
                State::Open => {}
            }
            match self.next_segment() {
                Ok(()) => {}
                Err(Error::Io(e)) => return Err(Error::Io(e)),
                Err(e) => {
                    self.state = State::Failed(e.duplicate());
                    return Err(e);
                }
            }
        }
    }
}

impl<R: Read> Read for OpenReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        Ok(self.read_inner(out)?)
    }
}

impl<R: Read> std::fmt::Debug for OpenReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenReader")
            .field("header", &self.header)
            .field("segments_verified", &self.segments_verified())
            .field("finished", &self.is_finished())
            .finish_non_exhaustive()
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}
