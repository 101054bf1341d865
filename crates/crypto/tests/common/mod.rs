//! Helpers shared by the integration tests: deterministic RNGs and error naming.
#![allow(dead_code, unreachable_pub)]

use licen_crypto::Error;
use licen_crypto::rand_core::{Infallible, TryCryptoRng, TryRng};

/// Yields exactly the given bytes, in order, then panics: makes every random draw of a
/// function under test explicit (test vectors).
pub struct FixedRng {
    bytes: Vec<u8>,
    pos: usize,
}

impl FixedRng {
    pub fn new(bytes: &[u8]) -> Self {
        FixedRng {
            bytes: bytes.to_vec(),
            pos: 0,
        }
    }

    /// Whether every byte was consumed.
    pub fn is_exhausted(&self) -> bool {
        self.pos == self.bytes.len()
    }
}

impl TryRng for FixedRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        let end = self.pos + dst.len();
        assert!(
            end <= self.bytes.len(),
            "FixedRng exhausted: asked for {} bytes, {} left",
            dst.len(),
            self.bytes.len() - self.pos
        );
        dst.copy_from_slice(&self.bytes[self.pos..end]);
        self.pos = end;
        Ok(())
    }
}
// Test-only: the bytes are chosen by the test, which is the point.
impl TryCryptoRng for FixedRng {}

/// A small deterministic PRNG (SplitMix64) for tests that need many keys. NOT secure.
pub struct TestRng(pub u64);

impl TryRng for TestRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.try_next_u64()? as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Ok(z ^ (z >> 31))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(8) {
            let v = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Ok(())
    }
}
impl TryCryptoRng for TestRng {}

/// The variant name of an error, as written in the vector files.
pub fn variant(e: &Error) -> &'static str {
    match e {
        Error::HeaderTruncated { .. } => "HeaderTruncated",
        Error::BadMagic => "BadMagic",
        Error::UnsupportedVersion { .. } => "UnsupportedVersion",
        Error::InvalidSegmentSize { .. } => "InvalidSegmentSize",
        Error::HeaderAuthFailed => "HeaderAuthFailed",
        Error::SegmentAuthFailed { .. } => "SegmentAuthFailed",
        Error::Truncated { .. } => "Truncated",
        Error::TrailingData { .. } => "TrailingData",
        Error::EmptyFinalSegment { .. } => "EmptyFinalSegment",
        Error::StreamTooLong { .. } => "StreamTooLong",
        Error::InvalidSealedLength { .. } => "InvalidSealedLength",
        Error::WriterPoisoned => "WriterPoisoned",
        Error::EnvelopeLength { .. } => "EnvelopeLength",
        Error::UnsupportedEnvelopeVersion { .. } => "UnsupportedEnvelopeVersion",
        Error::UnknownEnvelopeKind { .. } => "UnknownEnvelopeKind",
        Error::EnvelopeKindMismatch { .. } => "EnvelopeKindMismatch",
        Error::EnvelopeOpenFailed { .. } => "EnvelopeOpenFailed",
        Error::InvalidPublicKey => "InvalidPublicKey",
        Error::KeyLength { .. } => "KeyLength",
        Error::Io(_) => "Io",
        _ => "Unknown",
    }
}

/// Path of a vector file.
pub fn vector_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("vectors")
        .join(name)
}

/// Whether the tests should rewrite the vector files instead of comparing against them.
pub fn regenerate() -> bool {
    std::env::var("LICEN_REGENERATE_VECTORS").is_ok_and(|v| v == "1")
}

/// Compares `generated` against the checked-in file `name` byte for byte, or rewrites the file
/// when `LICEN_REGENERATE_VECTORS=1`.
pub fn check_or_regenerate(name: &str, generated: &str) {
    let path = vector_path(name);
    if regenerate() {
        std::fs::write(&path, generated)
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "read {}: {e}; run with LICEN_REGENERATE_VECTORS=1 to create it",
            path.display()
        )
    });
    assert!(
        on_disk == generated,
        "{} differs from what this build generates; if the format change is intended, run \
         LICEN_REGENERATE_VECTORS=1 cargo test -p licen-crypto --test vectors and review the diff",
        path.display()
    );
}
