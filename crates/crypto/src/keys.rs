//! Symmetric keys of sealed streams.
//!
//! Owns [`StreamKey`], the 256-bit AES-256-GCM key of one sealed stream (a dataset key or a
//! result key), and [`NoncePrefix`], the per-stream random 7-byte nonce prefix.
//!
//! Must never: print, log, serialise or compare key bytes in variable time; keep a copy of a key
//! after it is dropped (keys are zeroized on drop); derive a key from anything but a CSPRNG or
//! an HPKE envelope.

use rand_core::CryptoRng;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{Error, Result};

/// Length of a [`StreamKey`] in bytes.
pub const STREAM_KEY_LEN: usize = 32;
/// Length of a [`NoncePrefix`] in bytes.
pub const NONCE_PREFIX_LEN: usize = 7;

/// A 256-bit AES-256-GCM key for one sealed stream: the dataset key, or a result key.
///
/// Zeroized on drop; `Debug` prints no key bytes. A key should seal exactly one stream (see
/// `docs/FORMATS.md`, nonce prefix).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct StreamKey([u8; STREAM_KEY_LEN]);

impl StreamKey {
    /// Wraps raw key bytes (for example the output of [`crate::envelope::open_key`], or a test
    /// vector). The caller should zeroize its own copy.
    #[must_use]
    pub fn from_bytes(bytes: [u8; STREAM_KEY_LEN]) -> Self {
        StreamKey(bytes)
    }

    /// Wraps raw key bytes given as a slice.
    ///
    /// # Errors
    /// [`Error::KeyLength`] unless `bytes` is exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; STREAM_KEY_LEN] = bytes.try_into().map_err(|_| Error::KeyLength {
            what: "stream key",
            found: bytes.len(),
            expected: STREAM_KEY_LEN,
        })?;
        Ok(StreamKey(arr))
    }

    /// A fresh random key from `rng`.
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let mut bytes = Zeroizing::new([0u8; STREAM_KEY_LEN]);
        rng.fill_bytes(bytes.as_mut());
        StreamKey(*bytes)
    }

    /// A fresh random key from the operating system's CSPRNG.
    #[cfg(feature = "os-rng")]
    #[must_use]
    pub fn random() -> Self {
        Self::generate(&mut crate::rng::OsRng)
    }

    /// The raw key bytes. Handle with care: do not copy them anywhere that outlives the key.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; STREAM_KEY_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for StreamKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StreamKey(<redacted>)")
    }
}

/// The random 7-byte nonce prefix of one sealed stream; stored in clear in the stream header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NoncePrefix([u8; NONCE_PREFIX_LEN]);

impl NoncePrefix {
    /// Wraps raw prefix bytes (tests and vectors; production code uses [`NoncePrefix::generate`]).
    #[must_use]
    pub const fn from_bytes(bytes: [u8; NONCE_PREFIX_LEN]) -> Self {
        NoncePrefix(bytes)
    }

    /// A fresh random prefix from `rng`.
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let mut bytes = [0u8; NONCE_PREFIX_LEN];
        rng.fill_bytes(&mut bytes);
        NoncePrefix(bytes)
    }

    /// A fresh random prefix from the operating system's CSPRNG.
    #[cfg(feature = "os-rng")]
    #[must_use]
    pub fn random() -> Self {
        Self::generate(&mut crate::rng::OsRng)
    }

    /// The raw prefix bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; NONCE_PREFIX_LEN] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_key() {
        let key = StreamKey::from_bytes([0xAB; 32]);
        let shown = format!("{key:?}");
        assert!(!shown.to_lowercase().contains("ab"), "{shown}");
        assert!(!shown.contains("171"), "{shown}");
    }

    #[test]
    fn from_slice_checks_length() {
        assert!(matches!(
            StreamKey::from_slice(&[0u8; 31]),
            Err(Error::KeyLength {
                found: 31,
                expected: 32,
                ..
            })
        ));
        assert_eq!(
            StreamKey::from_slice(&[7u8; 32]).unwrap().as_bytes(),
            &[7u8; 32]
        );
    }
}
