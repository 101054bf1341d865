//! Key envelopes: a 32-byte stream key sealed to an X25519 public key with HPKE (RFC 9180).
//!
//! Owns the envelope byte layout (`version ‖ kind ‖ enc ‖ ciphertext ‖ tag`, 82 bytes), the
//! three envelope kinds with their `info` strings and AAD layouts, and the X25519 key types
//! ([`SecretKey`], [`PublicKey`], [`generate_keypair`], [`keypair_from_seed`]). The suite is
//! fixed: base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM. Normative
//! description: `docs/FORMATS.md` §2; vectors: `crates/crypto/tests/vectors/envelope.json`.
//!
//! Must never: open an envelope under a context (kind, dataset root, job id) other than the one
//! the caller states; return key bytes on failure; keep secret keys or unwrapped stream keys
//! alive longer than the caller's values (all are zeroized on drop); print secret keys.

use hpke::aead::{AeadTag, AesGcm256};
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, HpkeError, Kem as KemTrait, OpModeR, OpModeS, Serializable};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::keys::{STREAM_KEY_LEN, StreamKey};

type Kem = X25519HkdfSha256;
type HpkeSecret = <Kem as KemTrait>::PrivateKey;
type HpkePublic = <Kem as KemTrait>::PublicKey;
type HpkeEnc = <Kem as KemTrait>::EncappedKey;

/// Envelope format version this build writes and reads.
pub const ENVELOPE_VERSION: u8 = 1;
/// Length of the HPKE encapsulated key (an X25519 public key).
pub const ENC_LEN: usize = 32;
/// Length of the AEAD tag.
pub const ENVELOPE_TAG_LEN: usize = 16;
/// Total envelope length: version, kind, enc, encrypted key, tag.
pub const ENVELOPE_LEN: usize = 2 + ENC_LEN + STREAM_KEY_LEN + ENVELOPE_TAG_LEN;
/// Length of an X25519 public or secret key.
pub const X25519_KEY_LEN: usize = 32;

/// HPKE `info` of [`EnvelopeKind::DatasetKeyToOrchestrator`] envelopes (ASCII).
pub const INFO_DATASET_TO_ORCHESTRATOR: &[u8] =
    b"LICEN v1 key envelope: dataset key, owner to orchestrator";
/// HPKE `info` of [`EnvelopeKind::DatasetKeyToNode`] envelopes (ASCII).
pub const INFO_DATASET_TO_NODE: &[u8] =
    b"LICEN v1 key envelope: dataset key, orchestrator to compute node";
/// HPKE `info` of [`EnvelopeKind::ResultKeyToResearcher`] envelopes (ASCII).
pub const INFO_RESULT_TO_RESEARCHER: &[u8] =
    b"LICEN v1 key envelope: result key, compute node to researcher";

/// What an envelope carries, and from whom to whom. Stored as byte 1 of the envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum EnvelopeKind {
    /// Dataset key, dataset owner → orchestrator (`0x01`). AAD: `datasetRoot`.
    DatasetKeyToOrchestrator = 0x01,
    /// Dataset key, orchestrator → attested compute node (`0x02`). AAD: `jobId ‖ datasetRoot`.
    DatasetKeyToNode = 0x02,
    /// Result key, compute node → researcher's `resultKey` (`0x03`). AAD: `jobId ‖ datasetRoot`.
    ResultKeyToResearcher = 0x03,
}

impl EnvelopeKind {
    /// The kind with this byte value.
    ///
    /// # Errors
    /// [`Error::UnknownEnvelopeKind`].
    pub fn from_byte(b: u8) -> Result<Self> {
        match b {
            0x01 => Ok(EnvelopeKind::DatasetKeyToOrchestrator),
            0x02 => Ok(EnvelopeKind::DatasetKeyToNode),
            0x03 => Ok(EnvelopeKind::ResultKeyToResearcher),
            found => Err(Error::UnknownEnvelopeKind { found }),
        }
    }

    /// The HPKE `info` string of this kind.
    #[must_use]
    pub fn info(self) -> &'static [u8] {
        match self {
            EnvelopeKind::DatasetKeyToOrchestrator => INFO_DATASET_TO_ORCHESTRATOR,
            EnvelopeKind::DatasetKeyToNode => INFO_DATASET_TO_NODE,
            EnvelopeKind::ResultKeyToResearcher => INFO_RESULT_TO_RESEARCHER,
        }
    }
}

impl std::fmt::Display for EnvelopeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EnvelopeKind::DatasetKeyToOrchestrator => "dataset-key owner→orchestrator",
            EnvelopeKind::DatasetKeyToNode => "dataset-key orchestrator→node",
            EnvelopeKind::ResultKeyToResearcher => "result-key node→researcher",
        })
    }
}

/// The context an envelope is bound to: its kind plus the AAD values. Sealing and opening must
/// use the same context, otherwise opening fails.
///
/// `job_id` is the on-chain `uint256` job id as 32 big-endian bytes; `dataset_root` is the
/// 32-byte 0G Merkle root of the sealed dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EnvelopeContext {
    /// Dataset key, owner → orchestrator; AAD = `dataset_root`.
    OwnerToOrchestrator {
        /// 0G root of the sealed dataset.
        dataset_root: [u8; 32],
    },
    /// Dataset key, orchestrator → compute node; AAD = `job_id ‖ dataset_root`.
    OrchestratorToNode {
        /// On-chain job id, uint256 big-endian.
        job_id: [u8; 32],
        /// 0G root of the sealed dataset.
        dataset_root: [u8; 32],
    },
    /// Result key, compute node → researcher; AAD = `job_id ‖ dataset_root`.
    NodeToResearcher {
        /// On-chain job id, uint256 big-endian.
        job_id: [u8; 32],
        /// 0G root of the sealed dataset the job trained on.
        dataset_root: [u8; 32],
    },
}

impl EnvelopeContext {
    /// The envelope kind of this context.
    #[must_use]
    pub fn kind(&self) -> EnvelopeKind {
        match self {
            EnvelopeContext::OwnerToOrchestrator { .. } => EnvelopeKind::DatasetKeyToOrchestrator,
            EnvelopeContext::OrchestratorToNode { .. } => EnvelopeKind::DatasetKeyToNode,
            EnvelopeContext::NodeToResearcher { .. } => EnvelopeKind::ResultKeyToResearcher,
        }
    }

    /// The HPKE AAD: 32 bytes (`dataset_root`) or 64 bytes (`job_id ‖ dataset_root`).
    #[must_use]
    pub fn aad(&self) -> Vec<u8> {
        match self {
            EnvelopeContext::OwnerToOrchestrator { dataset_root } => dataset_root.to_vec(),
            EnvelopeContext::OrchestratorToNode {
                job_id,
                dataset_root,
            }
            | EnvelopeContext::NodeToResearcher {
                job_id,
                dataset_root,
            } => [job_id.as_slice(), dataset_root.as_slice()].concat(),
        }
    }
}

/// Converts a job id that fits in 64 bits to the 32-byte big-endian `uint256` form.
#[must_use]
pub fn job_id_from_u64(id: u64) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[24..].copy_from_slice(&id.to_be_bytes());
    out
}

/// An X25519 secret key (HPKE recipient key). Zeroized on drop; `Debug` prints nothing secret.
#[derive(Clone)]
pub struct SecretKey(HpkeSecret);

impl SecretKey {
    /// Wraps raw X25519 secret key bytes (clamped internally, as X25519 does).
    #[must_use]
    pub fn from_bytes(bytes: &[u8; X25519_KEY_LEN]) -> Self {
        // Cannot fail: the length is right and every 32-byte string is a valid X25519 scalar.
        match HpkeSecret::from_bytes(bytes) {
            Ok(sk) => SecretKey(sk),
            Err(_) => unreachable!("32-byte X25519 secret keys always parse"),
        }
    }

    /// Wraps raw secret key bytes given as a slice.
    ///
    /// # Errors
    /// [`Error::KeyLength`] unless `bytes` is 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let arr: &[u8; X25519_KEY_LEN] = bytes.try_into().map_err(|_| Error::KeyLength {
            what: "X25519 secret key",
            found: bytes.len(),
            expected: X25519_KEY_LEN,
        })?;
        Ok(Self::from_bytes(arr))
    }

    /// The secret key bytes (clamped), in a buffer that is zeroized on drop.
    #[must_use]
    pub fn to_bytes(&self) -> Zeroizing<[u8; X25519_KEY_LEN]> {
        let mut out = Zeroizing::new([0u8; X25519_KEY_LEN]);
        self.0.write_exact(out.as_mut());
        out
    }

    /// The matching public key.
    #[must_use]
    pub fn public_key(&self) -> PublicKey {
        PublicKey(Kem::sk_to_pk(&self.0))
    }

    /// A fresh key from the operating system's CSPRNG.
    #[cfg(feature = "os-rng")]
    #[must_use]
    pub fn random() -> Self {
        generate_keypair(&mut crate::rng::OsRng).0
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// An X25519 public key (HPKE recipient key): an orchestrator key from the chain registry, a
/// node's attested ephemeral key, or a researcher's `resultKey`.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey(HpkePublic);

impl PublicKey {
    /// Wraps raw public key bytes. Every 32-byte string is accepted here; a low-order point is
    /// rejected when sealing ([`Error::InvalidPublicKey`]).
    #[must_use]
    pub fn from_bytes(bytes: &[u8; X25519_KEY_LEN]) -> Self {
        match HpkePublic::from_bytes(bytes) {
            Ok(pk) => PublicKey(pk),
            Err(_) => unreachable!("32-byte X25519 public keys always parse"),
        }
    }

    /// Wraps raw public key bytes given as a slice.
    ///
    /// # Errors
    /// [`Error::KeyLength`] unless `bytes` is 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let arr: &[u8; X25519_KEY_LEN] = bytes.try_into().map_err(|_| Error::KeyLength {
            what: "X25519 public key",
            found: bytes.len(),
            expected: X25519_KEY_LEN,
        })?;
        Ok(Self::from_bytes(arr))
    }

    /// The 32 public key bytes.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; X25519_KEY_LEN] {
        let mut out = [0u8; X25519_KEY_LEN];
        self.0.write_exact(&mut out);
        out
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey(")?;
        for b in self.to_bytes() {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// A fresh X25519 key pair from `rng` (RFC 9180 `DeriveKeyPair` of 32 random bytes).
pub fn generate_keypair(rng: &mut impl CryptoRng) -> (SecretKey, PublicKey) {
    let (sk, pk) = Kem::gen_keypair_with_rng(rng);
    (SecretKey(sk), PublicKey(pk))
}

/// The X25519 key pair deterministically derived from a 32-byte seed with RFC 9180
/// `DeriveKeyPair` (DHKEM(X25519, HKDF-SHA256), §7.1.3) — the same function `@hpke/core`'s
/// `deriveKeyPair` computes, so a browser derives the same pair. The CLI derives a researcher's
/// result key pair from the hash of a wallet signature this way. The seed must be secret and
/// high-entropy.
#[must_use]
pub fn keypair_from_seed(seed: &[u8; 32]) -> (SecretKey, PublicKey) {
    let (sk, pk) = Kem::derive_keypair(seed);
    (SecretKey(sk), PublicKey(pk))
}

/// The message a researcher's wallet signs (EIP-191 `personal_sign`) to derive the result key
/// pair. Fixed forever: changing it changes every researcher's result key.
pub const RESULT_KEY_MESSAGE: &str = "LICEN result key v1\n\nSigning this message derives the private key that opens your trained models. Sign it only in LICEN's own CLI or web app.";

/// The researcher's result key pair, derived from their wallet's signature of
/// [`RESULT_KEY_MESSAGE`]: `seed = HKDF-SHA256(salt = "LICEN v1 result key", ikm = signature,
/// info = "X25519 seed", L = 32)`, then [`keypair_from_seed`]. ECDSA signatures from RFC 6979
/// wallets are deterministic, so the same wallet always derives the same pair and no separate
/// key file is needed. Never log the signature: it is the secret.
#[must_use]
pub fn result_keypair_from_signature(signature: &[u8]) -> (SecretKey, PublicKey) {
    let hkdf = hkdf::Hkdf::<sha2::Sha256>::new(Some(b"LICEN v1 result key"), signature);
    let mut seed = Zeroizing::new([0u8; 32]);
    hkdf.expand(b"X25519 seed", seed.as_mut_slice())
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    keypair_from_seed(&seed)
}

/// A parsed 82-byte key envelope. Holds no secret (the key inside is encrypted).
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope([u8; ENVELOPE_LEN]);

impl Envelope {
    /// Parses and checks an envelope's framing (length, version, kind); does not decrypt.
    ///
    /// # Errors
    /// [`Error::EnvelopeLength`], [`Error::UnsupportedEnvelopeVersion`],
    /// [`Error::UnknownEnvelopeKind`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; ENVELOPE_LEN] = bytes.try_into().map_err(|_| Error::EnvelopeLength {
            found: bytes.len(),
            expected: ENVELOPE_LEN,
        })?;
        if arr[0] != ENVELOPE_VERSION {
            return Err(Error::UnsupportedEnvelopeVersion {
                found: arr[0],
                expected: ENVELOPE_VERSION,
            });
        }
        EnvelopeKind::from_byte(arr[1])?;
        Ok(Envelope(arr))
    }

    /// The envelope bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; ENVELOPE_LEN] {
        &self.0
    }

    /// The envelope bytes as a vector.
    #[must_use]
    pub fn to_vec(&self) -> Vec<u8> {
        self.0.to_vec()
    }

    /// The envelope's kind.
    #[must_use]
    pub fn kind(&self) -> EnvelopeKind {
        match EnvelopeKind::from_byte(self.0[1]) {
            Ok(kind) => kind,
            Err(_) => unreachable!("checked in from_bytes"),
        }
    }

    /// The HPKE encapsulated key (the sender's ephemeral X25519 public key).
    #[must_use]
    pub fn enc(&self) -> &[u8] {
        &self.0[2..2 + ENC_LEN]
    }
}

impl AsRef<[u8]> for Envelope {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envelope")
            .field("kind", &self.kind())
            .finish_non_exhaustive()
    }
}

/// Seals `key` to `recipient` for `context`, with the HPKE ephemeral key drawn from `rng`.
///
/// # Errors
/// [`Error::InvalidPublicKey`] if `recipient` is a low-order point.
pub fn seal_key(
    recipient: &PublicKey,
    key: &StreamKey,
    context: &EnvelopeContext,
    rng: &mut impl CryptoRng,
) -> Result<Envelope> {
    let kind = context.kind();
    let mut buf = Zeroizing::new(*key.as_bytes());
    let (enc, tag) = hpke::single_shot_seal_inout_detached_with_rng::<AesGcm256, HkdfSha256, Kem>(
        &OpModeS::Base,
        &recipient.0,
        kind.info(),
        buf.as_mut_slice().into(),
        &context.aad(),
        rng,
    )
    // Encapsulation fails only for a low-order recipient key (all-zero shared secret); the
    // AEAD's length limit is never reached by 32 bytes.
    .map_err(|_: HpkeError| Error::InvalidPublicKey)?;
    let mut out = [0u8; ENVELOPE_LEN];
    out[0] = ENVELOPE_VERSION;
    out[1] = kind as u8;
    enc.write_exact(&mut out[2..2 + ENC_LEN]);
    out[2 + ENC_LEN..2 + ENC_LEN + STREAM_KEY_LEN].copy_from_slice(buf.as_slice());
    tag.write_exact(&mut out[2 + ENC_LEN + STREAM_KEY_LEN..]);
    Ok(Envelope(out))
}

/// Like [`seal_key`], with the ephemeral key from the operating system's CSPRNG.
///
/// # Errors
/// As [`seal_key`].
#[cfg(feature = "os-rng")]
pub fn seal_key_random(
    recipient: &PublicKey,
    key: &StreamKey,
    context: &EnvelopeContext,
) -> Result<Envelope> {
    seal_key(recipient, key, context, &mut crate::rng::OsRng)
}

/// Opens an envelope with the recipient's secret key, for exactly `context`.
///
/// # Errors
/// Framing errors of [`Envelope::from_bytes`]; [`Error::EnvelopeKindMismatch`] if the envelope
/// is of another kind than `context`; [`Error::EnvelopeOpenFailed`] if the secret key, the
/// dataset root or the job id is not the one it was sealed for, or the envelope was altered.
pub fn open_key(
    recipient: &SecretKey,
    envelope: &[u8],
    context: &EnvelopeContext,
) -> Result<StreamKey> {
    let envelope = Envelope::from_bytes(envelope)?;
    let kind = context.kind();
    if envelope.kind() != kind {
        return Err(Error::EnvelopeKindMismatch {
            found: envelope.kind(),
            expected: kind,
        });
    }
    let failed = Error::EnvelopeOpenFailed { kind };
    let bytes = envelope.as_bytes();
    let enc = HpkeEnc::from_bytes(&bytes[2..2 + ENC_LEN]).map_err(|_| failed.duplicate())?;
    let tag = AeadTag::<AesGcm256>::from_bytes(&bytes[2 + ENC_LEN + STREAM_KEY_LEN..])
        .map_err(|_| failed.duplicate())?;
    let mut buf = Zeroizing::new([0u8; STREAM_KEY_LEN]);
    buf.copy_from_slice(&bytes[2 + ENC_LEN..2 + ENC_LEN + STREAM_KEY_LEN]);
    hpke::single_shot_open_inout_detached::<AesGcm256, HkdfSha256, Kem>(
        &OpModeR::Base,
        &recipient.0,
        &enc,
        kind.info(),
        buf.as_mut_slice().into(),
        &context.aad(),
        &tag,
    )
    .map_err(|_| failed)?;
    Ok(StreamKey::from_bytes(*buf))
}

/// Orchestrator step: opens `envelope` (sealed for `from`) with `recipient` and seals the same
/// key to `to_public` for `to`, without the key leaving zeroized memory.
///
/// # Errors
/// Everything [`open_key`] and [`seal_key`] return.
pub fn reseal_key(
    recipient: &SecretKey,
    envelope: &[u8],
    from: &EnvelopeContext,
    to_public: &PublicKey,
    to: &EnvelopeContext,
    rng: &mut impl CryptoRng,
) -> Result<Envelope> {
    let key = open_key(recipient, envelope, from)?;
    seal_key(to_public, &key, to, rng)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct CountingRng(u8);
    impl rand_core::TryRng for CountingRng {
        type Error = rand_core::Infallible;
        fn try_next_u32(&mut self) -> std::result::Result<u32, Self::Error> {
            let mut b = [0u8; 4];
            self.try_fill_bytes(&mut b)?;
            Ok(u32::from_le_bytes(b))
        }
        fn try_next_u64(&mut self) -> std::result::Result<u64, Self::Error> {
            let mut b = [0u8; 8];
            self.try_fill_bytes(&mut b)?;
            Ok(u64::from_le_bytes(b))
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> std::result::Result<(), Self::Error> {
            for b in dst {
                self.0 = self.0.wrapping_add(1);
                *b = self.0;
            }
            Ok(())
        }
    }
    impl rand_core::TryCryptoRng for CountingRng {}

    #[test]
    fn round_trip_and_context_binding() {
        let mut rng = CountingRng(0);
        let (sk, pk) = generate_keypair(&mut rng);
        let key = StreamKey::from_bytes([9; 32]);
        let ctx = EnvelopeContext::OrchestratorToNode {
            job_id: job_id_from_u64(42),
            dataset_root: [3; 32],
        };
        let env = seal_key(&pk, &key, &ctx, &mut rng).unwrap();
        assert_eq!(env.as_bytes().len(), ENVELOPE_LEN);
        assert_eq!(env.kind(), EnvelopeKind::DatasetKeyToNode);
        let opened = open_key(&sk, env.as_bytes(), &ctx).unwrap();
        assert_eq!(opened.as_bytes(), key.as_bytes());

        let other = EnvelopeContext::OrchestratorToNode {
            job_id: job_id_from_u64(43),
            dataset_root: [3; 32],
        };
        assert!(matches!(
            open_key(&sk, env.as_bytes(), &other),
            Err(Error::EnvelopeOpenFailed { .. })
        ));
        let result_ctx = EnvelopeContext::NodeToResearcher {
            job_id: job_id_from_u64(42),
            dataset_root: [3; 32],
        };
        assert!(matches!(
            open_key(&sk, env.as_bytes(), &result_ctx),
            Err(Error::EnvelopeKindMismatch { .. })
        ));
    }

    #[test]
    fn seed_derivation_is_deterministic_and_key_bytes_round_trip() {
        let (sk1, pk1) = keypair_from_seed(&[5; 32]);
        let (sk2, pk2) = keypair_from_seed(&[5; 32]);
        assert_eq!(pk1, pk2);
        assert_eq!(*sk1.to_bytes(), *sk2.to_bytes());
        let again = SecretKey::from_bytes(&sk1.to_bytes());
        assert_eq!(again.public_key(), pk1);
        assert_eq!(PublicKey::from_bytes(&pk1.to_bytes()), pk1);
        assert_eq!(format!("{sk1:?}"), "SecretKey(<redacted>)");
    }

    #[test]
    fn low_order_public_key_is_rejected() {
        let pk = PublicKey::from_bytes(&[0u8; 32]);
        let key = StreamKey::from_bytes([1; 32]);
        let ctx = EnvelopeContext::OwnerToOrchestrator {
            dataset_root: [0; 32],
        };
        assert!(matches!(
            seal_key(&pk, &key, &ctx, &mut CountingRng(0)),
            Err(Error::InvalidPublicKey)
        ));
    }
}

#[cfg(test)]
mod result_key_tests {
    use super::*;

    #[test]
    fn result_key_is_deterministic_and_signature_bound() {
        let signature = [7u8; 65];
        let (a, pa) = result_keypair_from_signature(&signature);
        let (b, pb) = result_keypair_from_signature(&signature);
        assert_eq!(*a.to_bytes(), *b.to_bytes());
        assert_eq!(pa.to_bytes(), pb.to_bytes());
        let mut other = signature;
        other[64] = 8;
        assert_ne!(
            result_keypair_from_signature(&other).1.to_bytes(),
            pa.to_bytes()
        );
    }
}
