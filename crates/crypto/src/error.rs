//! Errors of `licen-crypto`.
//!
//! Owns the single [`Error`] enum and the [`Result`] alias used by every module, plus the
//! conversions to and from [`std::io::Error`] that let the streaming types implement
//! [`std::io::Read`] / [`std::io::Write`] without losing the specific variant.
//!
//! Must never: put key bytes, plaintext bytes or any other secret into an error (variants carry
//! only lengths, indices, versions and kinds), or collapse distinct failures into one variant
//! when the caller could act differently on them.

use std::io;

use crate::envelope::EnvelopeKind;

/// Result alias for every fallible function of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while sealing or opening LICEN formats.
///
/// Each message says what was wrong, what was expected, and what to do about it. None of them
/// contains key material or plaintext.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ----- sealed stream: header -------------------------------------------------------------
    /// The input ended before a complete sealed-stream header.
    #[error(
        "sealed stream header is incomplete: got {found} bytes, expected {expected}; \
         the object is truncated or is not a LICEN sealed stream — re-download it"
    )]
    HeaderTruncated {
        /// Bytes available.
        found: usize,
        /// Header length.
        expected: usize,
    },

    /// The first eight bytes are not the sealed-stream magic.
    #[error(
        "not a LICEN sealed stream: the first 8 bytes are not the magic \"LICENSS\\0\"; \
         check that you passed the sealed (ciphertext) object and not something else"
    )]
    BadMagic,

    /// The header names a format version this build does not know.
    #[error(
        "unsupported sealed stream version {found}, this build reads version {expected}; \
         upgrade licen-crypto to open it"
    )]
    UnsupportedVersion {
        /// Version byte in the header.
        found: u8,
        /// The version this build reads and writes.
        expected: u8,
    },

    /// The segment size is outside the allowed bounds (in a header, or passed by a caller).
    #[error(
        "invalid sealed stream segment size {found} bytes: expected {min}..={max}; \
         the default (65536) suits almost every file"
    )]
    InvalidSegmentSize {
        /// The rejected segment size.
        found: u64,
        /// Smallest allowed segment size.
        min: u32,
        /// Largest allowed segment size.
        max: u32,
    },

    /// The header tag did not verify: wrong key, or the header (segment size, nonce prefix)
    /// was altered.
    #[error(
        "sealed stream header failed authentication: the key is not the key of this stream, \
         or the header was altered; check that you use the right key for this object"
    )]
    HeaderAuthFailed,

    // ----- sealed stream: segments -----------------------------------------------------------
    /// A segment's tag did not verify under its position and last-segment flag.
    #[error(
        "sealed stream segment {index} failed authentication: the ciphertext was altered, \
         reordered, duplicated, spliced from another stream, or cut inside this segment; \
         nothing of this segment was released — re-download the object"
    )]
    SegmentAuthFailed {
        /// Zero-based index of the failing segment.
        index: u64,
    },

    /// The stream ended without a final segment (cut at a segment boundary).
    #[error(
        "sealed stream is truncated: it ended after {segments} complete segments without the \
         final segment; the object is incomplete — re-download it"
    )]
    Truncated {
        /// Number of complete, authentic segments before the end of the input.
        segments: u64,
    },

    /// Bytes follow the final segment.
    #[error(
        "sealed stream has data after its final segment (segment {index}); the object was \
         appended to or concatenated with another — re-download it"
    )]
    TrailingData {
        /// Index of the final segment that was followed by extra bytes.
        index: u64,
    },

    /// An empty final segment after at least one other segment (never produced by a writer).
    #[error(
        "sealed stream segment {index} is an empty final segment, which is only valid as \
         segment 0 (empty input); the object was produced by a non-conforming writer"
    )]
    EmptyFinalSegment {
        /// Index of the offending segment.
        index: u64,
    },

    /// The input needs more segments than the 32-bit segment counter allows.
    #[error(
        "sealed stream too long: more than {max_segments} segments; \
         use a larger segment size or split the data"
    )]
    StreamTooLong {
        /// Largest number of segments one stream can hold.
        max_segments: u64,
    },

    /// A total length that no sealed stream with this segment size can have.
    #[error(
        "{len} bytes is not a valid sealed stream length for segment size {segment_size}; \
         the object is truncated or padded"
    )]
    InvalidSealedLength {
        /// The rejected total length.
        len: u64,
        /// Segment size it was checked against.
        segment_size: u32,
    },

    /// A [`crate::stream::SealWriter`] is used after a write to its inner writer failed.
    #[error(
        "sealed stream writer is unusable after an earlier I/O error; \
         discard the partial output and seal again with a new writer"
    )]
    WriterPoisoned,

    // ----- key envelope ----------------------------------------------------------------------
    /// The envelope has the wrong length.
    #[error(
        "key envelope is {found} bytes, expected exactly {expected}; \
         check that the whole envelope object was downloaded"
    )]
    EnvelopeLength {
        /// Bytes given.
        found: usize,
        /// Envelope length.
        expected: usize,
    },

    /// The envelope names a version this build does not know.
    #[error(
        "unsupported key envelope version {found}, this build reads version {expected}; \
         upgrade licen-crypto to open it"
    )]
    UnsupportedEnvelopeVersion {
        /// Version byte in the envelope.
        found: u8,
        /// The version this build reads and writes.
        expected: u8,
    },

    /// The envelope's kind byte is not a known kind.
    #[error(
        "unknown key envelope kind 0x{found:02x}: expected 0x01, 0x02 or 0x03; the envelope is \
         corrupt or from a newer LICEN version — fetch it again or upgrade licen-crypto"
    )]
    UnknownEnvelopeKind {
        /// Kind byte in the envelope.
        found: u8,
    },

    /// The envelope was made for another purpose than the one the caller opens it for.
    #[error(
        "key envelope is a {found} envelope but a {expected} envelope was expected; \
         pass the envelope made for this step"
    )]
    EnvelopeKindMismatch {
        /// Kind in the envelope.
        found: EnvelopeKind,
        /// Kind the caller asked for.
        expected: EnvelopeKind,
    },

    /// HPKE decryption failed: wrong secret key, or the context (dataset root, job id) differs
    /// from the one the envelope was sealed for, or the envelope was altered.
    #[error(
        "key envelope ({kind}) could not be opened: the secret key is not the recipient's, the \
         dataset root or job id differs from the one it was sealed for, or it was altered; \
         check which key, job and dataset this envelope belongs to"
    )]
    EnvelopeOpenFailed {
        /// Kind of the envelope.
        kind: EnvelopeKind,
    },

    /// The recipient public key cannot be used (a low-order X25519 point).
    #[error(
        "recipient X25519 public key is invalid (low-order point); \
         read the recipient's key again from its authoritative source"
    )]
    InvalidPublicKey,

    /// A key given as a slice has the wrong length.
    #[error(
        "{what} must be {expected} bytes, got {found}; pass the raw key bytes \
         (decode hex or base64 first)"
    )]
    KeyLength {
        /// Which key.
        what: &'static str,
        /// Bytes given.
        found: usize,
        /// Required length.
        expected: usize,
    },

    // ----- I/O -------------------------------------------------------------------------------
    /// The underlying reader or writer failed.
    #[error("I/O error on the underlying stream: {0}")]
    Io(#[source] io::Error),
}

impl Error {
    /// Whether this error means the data is not authentic or not well-formed (as opposed to an
    /// I/O failure or a caller mistake). Callers should treat such data as hostile.
    #[must_use]
    pub fn is_integrity_failure(&self) -> bool {
        matches!(
            self,
            Error::HeaderTruncated { .. }
                | Error::BadMagic
                | Error::UnsupportedVersion { .. }
                | Error::HeaderAuthFailed
                | Error::SegmentAuthFailed { .. }
                | Error::Truncated { .. }
                | Error::TrailingData { .. }
                | Error::EmptyFinalSegment { .. }
                | Error::InvalidSealedLength { .. }
                | Error::EnvelopeLength { .. }
                | Error::UnsupportedEnvelopeVersion { .. }
                | Error::UnknownEnvelopeKind { .. }
                | Error::EnvelopeKindMismatch { .. }
                | Error::EnvelopeOpenFailed { .. }
        )
    }

    /// A copy of this error for a reader that must keep reporting it. I/O errors cannot be
    /// cloned; their kind and message are kept.
    pub(crate) fn duplicate(&self) -> Error {
        match self {
            Error::HeaderTruncated { found, expected } => Error::HeaderTruncated {
                found: *found,
                expected: *expected,
            },
            Error::BadMagic => Error::BadMagic,
            Error::UnsupportedVersion { found, expected } => Error::UnsupportedVersion {
                found: *found,
                expected: *expected,
            },
            Error::InvalidSegmentSize { found, min, max } => Error::InvalidSegmentSize {
                found: *found,
                min: *min,
                max: *max,
            },
            Error::HeaderAuthFailed => Error::HeaderAuthFailed,
            Error::SegmentAuthFailed { index } => Error::SegmentAuthFailed { index: *index },
            Error::Truncated { segments } => Error::Truncated {
                segments: *segments,
            },
            Error::TrailingData { index } => Error::TrailingData { index: *index },
            Error::EmptyFinalSegment { index } => Error::EmptyFinalSegment { index: *index },
            Error::StreamTooLong { max_segments } => Error::StreamTooLong {
                max_segments: *max_segments,
            },
            Error::InvalidSealedLength { len, segment_size } => Error::InvalidSealedLength {
                len: *len,
                segment_size: *segment_size,
            },
            Error::WriterPoisoned => Error::WriterPoisoned,
            Error::EnvelopeLength { found, expected } => Error::EnvelopeLength {
                found: *found,
                expected: *expected,
            },
            Error::UnsupportedEnvelopeVersion { found, expected } => {
                Error::UnsupportedEnvelopeVersion {
                    found: *found,
                    expected: *expected,
                }
            }
            Error::UnknownEnvelopeKind { found } => Error::UnknownEnvelopeKind { found: *found },
            Error::EnvelopeKindMismatch { found, expected } => Error::EnvelopeKindMismatch {
                found: *found,
                expected: *expected,
            },
            Error::EnvelopeOpenFailed { kind } => Error::EnvelopeOpenFailed { kind: *kind },
            Error::InvalidPublicKey => Error::InvalidPublicKey,
            Error::KeyLength {
                what,
                found,
                expected,
            } => Error::KeyLength {
                what,
                found: *found,
                expected: *expected,
            },
            Error::Io(e) => Error::Io(io::Error::new(e.kind(), e.to_string())),
        }
    }

    fn io_kind(&self) -> io::ErrorKind {
        match self {
            Error::Io(e) => e.kind(),
            Error::HeaderTruncated { .. } | Error::Truncated { .. } => io::ErrorKind::UnexpectedEof,
            Error::InvalidSegmentSize { .. } | Error::KeyLength { .. } => {
                io::ErrorKind::InvalidInput
            }
            _ => io::ErrorKind::InvalidData,
        }
    }
}

/// Wraps a crypto error so that it travels through `std::io` APIs; [`Error::from`] on the
/// resulting `io::Error` gives the original variant back. An [`Error::Io`] is unwrapped.
impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        match e {
            Error::Io(inner) => inner,
            other => io::Error::new(other.io_kind(), other),
        }
    }
}

/// Recovers a crypto error that was wrapped into an `io::Error` by this crate's
/// `Read`/`Write` implementations; any other `io::Error` becomes [`Error::Io`].
impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            match e.into_inner().map(|inner| inner.downcast::<Error>()) {
                Some(Ok(inner)) => *inner,
                // Unreachable: checked above. Keep a sensible fallback anyway.
                Some(Err(other)) => Error::Io(io::Error::other(other)),
                None => Error::Io(io::Error::other("unknown I/O error")),
            }
        } else {
            Error::Io(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_round_trip_keeps_variant() {
        let io: io::Error = Error::SegmentAuthFailed { index: 7 }.into();
        assert_eq!(io.kind(), io::ErrorKind::InvalidData);
        assert!(matches!(
            Error::from(io),
            Error::SegmentAuthFailed { index: 7 }
        ));
        let io: io::Error = Error::Truncated { segments: 2 }.into();
        assert_eq!(io.kind(), io::ErrorKind::UnexpectedEof);
        let plain = io::Error::new(io::ErrorKind::BrokenPipe, "pipe");
        assert!(
            matches!(Error::from(plain), Error::Io(e) if e.kind() == io::ErrorKind::BrokenPipe)
        );
    }
}
