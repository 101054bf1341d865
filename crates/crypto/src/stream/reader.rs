//! Streaming decryption of the sealed-stream format.
//!
//! Owns [`OpenReader`]: a `std::io::Read` adapter that authenticates the header at
//! construction, then reads one segment at a time (plus one byte of look-ahead to learn whether
//! the segment is the last), verifies its tag under its index and last-segment flag, and only
//! then hands out its plaintext.
//!
//! Must never: return a single byte of a segment whose tag has not verified; continue after an
//! integrity failure (the reader stays failed and repeats the error); accept input that ends
//! without a final segment or continues after it; decrypt in its ciphertext buffer (the
//! native AES-GCM wipes a failed segment, and the ciphertext is needed to name the failure);
//! allocate more than one ciphertext and one plaintext segment buffer.

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
/// plaintext of the authentic segments before the failing one. Memory use is one segment of
/// ciphertext, plus one of plaintext when reads are smaller than a segment.
///
/// Errors surface from `read` as `io::Error`s; `licen_crypto::Error::from(io_error)` gives the
/// specific variant back ([`Error::SegmentAuthFailed`], [`Error::Truncated`], …).
pub struct OpenReader<R: Read> {
    inner: R,
    cipher: SegmentCipher,
    header: StreamHeader,
    /// Ciphertext length of a full segment (`segment_size + 16`).
    full_ct: usize,
    /// `full_ct + 1` bytes: one segment's ciphertext plus one byte of look-ahead. Never
    /// decrypted in place, so a failed segment can still be diagnosed.
    buf: Vec<u8>,
    /// Verified plaintext of one segment, for callers whose buffer is smaller than a segment
    /// (allocated on first such read).
    plain: Zeroizing<Vec<u8>>,
    /// Bytes of the segment being assembled in `buf`.
    filled: usize,
    /// Whether `buf[full_ct]` holds the first byte of the next segment.
    lookahead: bool,
    /// Verified plaintext ready to hand out: `plain[pos..end]`.
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
            buf: vec![0u8; full_ct + 1],
            plain: Zeroizing::new(Vec::new()),
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

    /// Reads the next segment (and one look-ahead byte) into `buf` and opens it into `out`
    /// when given (it must hold a full segment's plaintext), else into `plain`. Returns the
    /// plaintext bytes written to `out` (0 when they went to `plain`).
    fn next_segment(&mut self, out: Option<&mut [u8]>) -> Result<usize> {
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
        let plain_len = len - TAG_LEN;
        let direct = out.is_some();
        let dst = match out {
            Some(out) => &mut out[..plain_len],
            None => {
                if self.plain.len() < self.full_ct - TAG_LEN {
                    self.plain.resize(self.full_ct - TAG_LEN, 0);
                }
                &mut self.plain[..plain_len]
            }
        };
        open_segment_into(
            &self.cipher,
            &self.buf[..len],
            index,
            last,
            self.full_ct,
            dst,
        )?;
        if last && plain_len == 0 && index > 0 {
            return Err(Error::EmptyFinalSegment { index });
        }
        if last {
            self.state = State::Done;
        } else {
            self.index += 1;
        }
        self.pos = 0;
        if direct {
            self.end = 0;
            Ok(plain_len)
        } else {
            self.end = plain_len;
            Ok(0)
        }
    }

    fn read_inner(&mut self, out: &mut [u8]) -> Result<usize> {
        loop {
            if self.pos < self.end {
                let n = (self.end - self.pos).min(out.len());
                out[..n].copy_from_slice(&self.plain[self.pos..self.pos + n]);
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
            // A caller's buffer that holds a whole segment receives the plaintext directly
            // (one copy of the ciphertext instead of two of the plaintext).
            let direct = out.len() >= self.full_ct - TAG_LEN;
            match self.next_segment(direct.then_some(&mut *out)) {
                Ok(0) => {}
                Ok(n) => return Ok(n),
                Err(Error::Io(e)) => return Err(Error::Io(e)),
                Err(e) => {
                    self.state = State::Failed(e.duplicate());
                    return Err(e);
                }
            }
        }
    }
}

/// Opens `segment` (ciphertext ‖ tag, as read) into `dst`, leaving `segment` untouched so a
/// failure can be named: when the segment verifies under the opposite last-segment flag it is
/// genuine but misplaced (the stream was cut at a boundary, or has bytes after its final
/// segment). On any failure `dst` is wiped: no byte of an unverified segment is released.
fn open_segment_into(
    cipher: &SegmentCipher,
    segment: &[u8],
    index: u64,
    last: bool,
    full_ct: usize,
    dst: &mut [u8],
) -> Result<()> {
    let (ct, tag) = segment.split_at(segment.len() - TAG_LEN);
    dst.copy_from_slice(ct);
    if cipher.open_segment(index, last, dst, tag) {
        return Ok(());
    }
    let mut error = Error::SegmentAuthFailed { index };
    if segment.len() == full_ct {
        dst.copy_from_slice(ct);
        if cipher.open_segment(index, !last, dst, tag) {
            error = if last {
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
    dst.zeroize();
    Err(error)
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
