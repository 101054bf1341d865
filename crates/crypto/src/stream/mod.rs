//! The LICEN sealed-stream format: AES-256-GCM in the STREAM construction (online AEAD).
//!
//! Owns the byte layout of sealed datasets and sealed results (header, per-segment nonces,
//! segment framing, last-segment rule), the streaming [`SealWriter`] / [`OpenReader`], the
//! buffer-level [`seal`] / [`open`] helpers and the size arithmetic ([`sealed_len`],
//! [`plaintext_len`]). The normative description is `docs/FORMATS.md` §1; the test vectors are
//! `crates/crypto/tests/vectors/sealed-stream.json`.
//!
//! Layout, in short: a 36-byte header `magic ‖ version ‖ segment_size ‖ nonce_prefix ‖
//! header_tag`, then segments `ciphertext ‖ tag`; segment `i` uses the nonce
//! `nonce_prefix ‖ BE32(i) ‖ last_flag` and the whole header as AAD.
//!
//! Must never: release any plaintext of a segment before that segment's tag has verified;
//! accept a stream that is truncated, reordered, spliced or extended; allocate per segment or
//! hold more than a segment's ciphertext and a segment's plaintext in memory; perform I/O other than through the `Read`/`Write` it is
//! given; put key or plaintext bytes into errors.

mod aead;
mod reader;
mod writer;

pub use aead::AEAD_BACKEND;
pub use reader::OpenReader;
pub use writer::SealWriter;

use std::io::{Read, Write};

use self::aead::{NONCE_LEN, SegmentAead};
use crate::error::{Error, Result};
use crate::keys::{NONCE_PREFIX_LEN, NoncePrefix, StreamKey};

/// The 8 magic bytes that open every sealed stream: ASCII `LICENSS` and a zero byte.
pub const MAGIC: [u8; 8] = *b"LICENSS\0";
/// The format version this build writes and reads.
pub const VERSION: u8 = 1;
/// Length of the authenticated part of the header (magic, version, segment size, prefix).
pub const HEADER_CORE_LEN: usize = 8 + 1 + 4 + NONCE_PREFIX_LEN;
/// Length of the AES-GCM tag after every segment and after the header.
pub const TAG_LEN: usize = 16;
/// Length of the full header, header tag included.
pub const HEADER_LEN: usize = HEADER_CORE_LEN + TAG_LEN;
/// Default plaintext bytes per segment (64 KiB).
pub const DEFAULT_SEGMENT_SIZE: u32 = 64 * 1024;
/// Smallest allowed segment size.
pub const MIN_SEGMENT_SIZE: u32 = 16;
/// Largest allowed segment size (16 MiB); bounds a reader's memory.
pub const MAX_SEGMENT_SIZE: u32 = 16 * 1024 * 1024;
/// Largest number of segments in one stream (the segment counter is 32 bits).
pub const MAX_SEGMENTS: u64 = 1 << 32;

/// Last-segment flag byte of a non-final segment's nonce.
const FLAG_NOT_LAST: u8 = 0x00;
/// Last-segment flag byte of the final segment's nonce.
const FLAG_LAST: u8 = 0x01;
/// Flag byte of the header tag's nonce (never used by a segment).
const FLAG_HEADER: u8 = 0x02;
/// Counter value of the header tag's nonce.
const HEADER_COUNTER: u32 = u32::MAX;

/// The public fields of a sealed-stream header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamHeader {
    /// Plaintext bytes in every segment but the last.
    pub segment_size: u32,
    /// The stream's random nonce prefix.
    pub nonce_prefix: NoncePrefix,
}

impl StreamHeader {
    /// Parses the public fields of a header **without authenticating it** (that needs the key;
    /// [`OpenReader::new`] does it). Useful to learn the segment size of a stored object.
    ///
    /// # Errors
    /// [`Error::HeaderTruncated`], [`Error::BadMagic`], [`Error::UnsupportedVersion`],
    /// [`Error::InvalidSegmentSize`].
    pub fn parse(bytes: &[u8]) -> Result<StreamHeader> {
        let magic_seen = bytes.len().min(MAGIC.len());
        if bytes[..magic_seen] != MAGIC[..magic_seen] {
            return Err(Error::BadMagic);
        }
        if bytes.len() < HEADER_LEN {
            return Err(Error::HeaderTruncated {
                found: bytes.len(),
                expected: HEADER_LEN,
            });
        }
        if bytes[8] != VERSION {
            return Err(Error::UnsupportedVersion {
                found: bytes[8],
                expected: VERSION,
            });
        }
        let segment_size = u32::from_be_bytes([bytes[9], bytes[10], bytes[11], bytes[12]]);
        let segment_size = check_segment_size(segment_size)?;
        let mut prefix = [0u8; NONCE_PREFIX_LEN];
        prefix.copy_from_slice(&bytes[13..HEADER_CORE_LEN]);
        Ok(StreamHeader {
            segment_size,
            nonce_prefix: NoncePrefix::from_bytes(prefix),
        })
    }

    fn core_bytes(&self) -> [u8; HEADER_CORE_LEN] {
        let mut core = [0u8; HEADER_CORE_LEN];
        core[..8].copy_from_slice(&MAGIC);
        core[8] = VERSION;
        core[9..13].copy_from_slice(&self.segment_size.to_be_bytes());
        core[13..].copy_from_slice(self.nonce_prefix.as_bytes());
        core
    }
}

/// Checks a segment size against [`MIN_SEGMENT_SIZE`]`..=`[`MAX_SEGMENT_SIZE`].
fn check_segment_size(segment_size: u32) -> Result<u32> {
    if (MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&segment_size) {
        Ok(segment_size)
    } else {
        Err(Error::InvalidSegmentSize {
            found: u64::from(segment_size),
            min: MIN_SEGMENT_SIZE,
            max: MAX_SEGMENT_SIZE,
        })
    }
}

/// Number of segments for `plaintext_len` bytes: `max(1, ceil(len / segment_size))`.
fn segment_count(plaintext_len: u64, segment_size: u32) -> u64 {
    plaintext_len.div_ceil(u64::from(segment_size)).max(1)
}

/// Exact length of the sealed stream of `plaintext_len` bytes with `segment_size`:
/// `36 + plaintext_len + 16 × max(1, ⌈plaintext_len / segment_size⌉)`.
///
/// # Errors
/// [`Error::InvalidSegmentSize`], or [`Error::StreamTooLong`] past [`MAX_SEGMENTS`] segments.
pub fn sealed_len(plaintext_len: u64, segment_size: u32) -> Result<u64> {
    let segment_size = check_segment_size(segment_size)?;
    let segments = segment_count(plaintext_len, segment_size);
    if segments > MAX_SEGMENTS {
        return Err(Error::StreamTooLong {
            max_segments: MAX_SEGMENTS,
        });
    }
    // segments ≤ 2^32 and plaintext_len ≤ 2^32 × 2^24, so nothing overflows.
    Ok(HEADER_LEN as u64 + plaintext_len + segments * TAG_LEN as u64)
}

/// Plaintext length of a well-formed sealed stream of `sealed_len` bytes with `segment_size`
/// (the inverse of [`sealed_len`]); does not authenticate anything.
///
/// # Errors
/// [`Error::InvalidSegmentSize`], or [`Error::InvalidSealedLength`] when no sealed stream has
/// that length.
pub fn plaintext_len(sealed_len: u64, segment_size: u32) -> Result<u64> {
    let segment_size = check_segment_size(segment_size)?;
    let invalid = Error::InvalidSealedLength {
        len: sealed_len,
        segment_size,
    };
    let Some(body) = sealed_len.checked_sub(HEADER_LEN as u64) else {
        return Err(invalid);
    };
    let full = u64::from(segment_size) + TAG_LEN as u64;
    if body < TAG_LEN as u64 {
        return Err(invalid);
    }
    let segments = body.div_ceil(full);
    let last_ct = body - (segments - 1) * full;
    // The last segment carries a tag; an empty last segment only exists alone.
    if last_ct < TAG_LEN as u64 || (last_ct == TAG_LEN as u64 && segments > 1) {
        return Err(invalid);
    }
    if segments > MAX_SEGMENTS {
        return Err(invalid);
    }
    Ok(body - segments * TAG_LEN as u64)
}

/// Seals `plaintext` into a sealed stream with [`DEFAULT_SEGMENT_SIZE`] segments.
///
/// # Errors
/// [`Error::StreamTooLong`] (only past 256 TiB).
pub fn seal(key: &StreamKey, nonce_prefix: &NoncePrefix, plaintext: &[u8]) -> Result<Vec<u8>> {
    seal_with_segment_size(key, nonce_prefix, DEFAULT_SEGMENT_SIZE, plaintext)
}

/// Seals `plaintext` into a sealed stream with the given segment size.
///
/// # Errors
/// [`Error::InvalidSegmentSize`], [`Error::StreamTooLong`].
pub fn seal_with_segment_size(
    key: &StreamKey,
    nonce_prefix: &NoncePrefix,
    segment_size: u32,
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    let total = sealed_len(plaintext.len() as u64, segment_size)?;
    let capacity = usize::try_from(total).map_err(|_| Error::StreamTooLong {
        max_segments: MAX_SEGMENTS,
    })?;
    let mut writer = SealWriter::new(
        Vec::with_capacity(capacity),
        key,
        *nonce_prefix,
        segment_size,
    )?;
    writer.write_all(plaintext)?;
    writer.finish()
}

/// Opens a whole sealed stream held in memory and returns its plaintext.
///
/// # Errors
/// Every integrity error of [`OpenReader`]; no plaintext is returned on error.
pub fn open(key: &StreamKey, sealed: &[u8]) -> Result<Vec<u8>> {
    let mut reader = OpenReader::new(sealed, key)?;
    let expected = plaintext_len(sealed.len() as u64, reader.header().segment_size).unwrap_or(0);
    let mut out =
        zeroize::Zeroizing::new(Vec::with_capacity(usize::try_from(expected).unwrap_or(0)));
    reader.read_to_end(&mut out)?;
    Ok(std::mem::take(&mut *out))
}

/// The keyed per-stream state shared by the writer and the reader.
struct SegmentCipher {
    aead: SegmentAead,
    prefix: [u8; NONCE_PREFIX_LEN],
    /// The full header, header tag included: the AAD of every segment.
    header: [u8; HEADER_LEN],
}

impl SegmentCipher {
    /// Builds the cipher and computes the header tag for `header`.
    fn new(key: &StreamKey, header: &StreamHeader) -> SegmentCipher {
        let aead = SegmentAead::new(key.as_bytes());
        let core = header.core_bytes();
        let mut full = [0u8; HEADER_LEN];
        full[..HEADER_CORE_LEN].copy_from_slice(&core);
        let mut cipher = SegmentCipher {
            aead,
            prefix: *header.nonce_prefix.as_bytes(),
            header: full,
        };
        let tag = cipher.header_tag(&core);
        cipher.header[HEADER_CORE_LEN..].copy_from_slice(&tag);
        cipher
    }

    fn nonce(&self, counter: u32, flag: u8) -> [u8; NONCE_LEN] {
        let mut n = [0u8; NONCE_LEN];
        n[..NONCE_PREFIX_LEN].copy_from_slice(&self.prefix);
        n[NONCE_PREFIX_LEN..NONCE_PREFIX_LEN + 4].copy_from_slice(&counter.to_be_bytes());
        n[11] = flag;
        n
    }

    /// GMAC of the header core under the reserved header nonce.
    fn header_tag(&self, core: &[u8; HEADER_CORE_LEN]) -> [u8; TAG_LEN] {
        let nonce = self.nonce(HEADER_COUNTER, FLAG_HEADER);
        self.aead.seal_in_place(nonce, core, &mut [])
    }

    /// Verifies a received header tag (constant time, inside AES-GCM). The header core it
    /// covers is the one this cipher was built from.
    fn header_tag_matches(&self, received_tag: &[u8]) -> bool {
        let Ok(tag) = <[u8; TAG_LEN]>::try_from(received_tag) else {
            return false;
        };
        let nonce = self.nonce(HEADER_COUNTER, FLAG_HEADER);
        self.aead
            .open_in_place(nonce, &self.header[..HEADER_CORE_LEN], &mut [], &tag)
    }

    fn flag(last: bool) -> u8 {
        if last { FLAG_LAST } else { FLAG_NOT_LAST }
    }

    /// Encrypts one segment in place and returns its tag. `index` must be < [`MAX_SEGMENTS`].
    fn seal_segment(&self, index: u64, last: bool, data: &mut [u8]) -> [u8; TAG_LEN] {
        debug_assert!(index < MAX_SEGMENTS);
        let nonce = self.nonce(index as u32, Self::flag(last));
        self.aead.seal_in_place(nonce, &self.header, data)
    }

    /// Verifies and decrypts one segment in place. On failure `ct` holds no plaintext: it is
    /// wiped or left as the ciphertext, depending on the backend (callers must not rely on
    /// either).
    fn open_segment(&self, index: u64, last: bool, ct: &mut [u8], tag: &[u8]) -> bool {
        if index >= MAX_SEGMENTS {
            return false;
        }
        let Ok(tag) = <[u8; TAG_LEN]>::try_from(tag) else {
            return false;
        };
        let nonce = self.nonce(index as u32, Self::flag(last));
        self.aead.open_in_place(nonce, &self.header, ct, &tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_trip() {
        for s in [16u32, 64, 100, 65536] {
            for n in [
                0u64, 1, 15, 16, 17, 63, 64, 65, 128, 1000, 65536, 65537, 200_000,
            ] {
                let total = sealed_len(n, s).unwrap();
                assert_eq!(plaintext_len(total, s).unwrap(), n, "n={n} s={s}");
            }
        }
        assert_eq!(sealed_len(0, 64).unwrap(), 36 + 16);
        assert_eq!(sealed_len(64, 64).unwrap(), 36 + 64 + 16);
        assert_eq!(sealed_len(65, 64).unwrap(), 36 + 65 + 32);
    }

    #[test]
    fn invalid_lengths_rejected() {
        // Too short for a header plus one tag.
        assert!(plaintext_len(36 + 15, 64).is_err());
        // An empty final segment after a full one.
        assert!(plaintext_len(36 + 80 + 16, 64).is_err());
        // A final segment shorter than a tag.
        assert!(plaintext_len(36 + 80 + 5, 64).is_err());
        assert!(matches!(
            sealed_len(1, 15),
            Err(Error::InvalidSegmentSize { found: 15, .. })
        ));
        assert!(sealed_len(1, MAX_SEGMENT_SIZE + 1).is_err());
        assert!(matches!(
            sealed_len(u64::from(u32::MAX) * 16 + 17, 16),
            Err(Error::StreamTooLong { .. })
        ));
    }

    #[test]
    fn header_parse_errors() {
        let key = StreamKey::from_bytes([1; 32]);
        let sealed = seal(&key, &NoncePrefix::from_bytes([2; 7]), b"hi").unwrap();
        let h = StreamHeader::parse(&sealed).unwrap();
        assert_eq!(h.segment_size, DEFAULT_SEGMENT_SIZE);
        assert!(matches!(
            StreamHeader::parse(&sealed[..5]),
            Err(Error::HeaderTruncated { found: 5, .. })
        ));
        assert!(matches!(
            StreamHeader::parse(b"LICENSX"),
            Err(Error::BadMagic)
        ));
        let mut v = sealed.clone();
        v[8] = 9;
        assert!(matches!(
            StreamHeader::parse(&v),
            Err(Error::UnsupportedVersion {
                found: 9,
                expected: 1
            })
        ));
        let mut v = sealed;
        v[9..13].copy_from_slice(&8u32.to_be_bytes());
        assert!(matches!(
            StreamHeader::parse(&v),
            Err(Error::InvalidSegmentSize { found: 8, .. })
        ));
    }
}
