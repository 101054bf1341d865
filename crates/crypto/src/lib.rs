//! `licen-crypto`: the byte formats that keep LICEN datasets and results confidential.
//!
//! Owns:
//! - [`stream`] — the sealed-stream format (AES-256-GCM STREAM): datasets and results are
//!   encrypted with it, in constant memory, both ways;
//! - [`envelope`] — HPKE (RFC 9180) key envelopes that carry a stream key from the dataset
//!   owner to the orchestrator, from the orchestrator to an attested compute node, and from the
//!   node to the researcher;
//! - [`result`] — the sealed result object (envelope ‖ sealed stream) a node returns;
//! - [`keys`] — the symmetric key and nonce-prefix types; [`rng`] — OS randomness (feature
//!   `os-rng`, on by default); [`error`] — the error type.
//!
//! The formats are specified byte for byte in `docs/FORMATS.md`, with test vectors under
//! `crates/crypto/tests/vectors/`.
//!
//! This crate is pure: it performs no I/O beyond the `std::io::Read`/`Write` values it is
//! handed, touches no filesystem, network, clock or thread, and builds for
//! `wasm32-unknown-unknown`. Every function that needs randomness takes an explicit
//! `&mut impl rand_core::CryptoRng`; convenience variants use [`rng::OsRng`].
//!
//! Must never: write, log or return plaintext or key bytes anywhere but the caller's own
//! buffers; release unauthenticated plaintext; leave keys in memory after drop (they are
//! zeroized); depend on crates above it (`storage`, `chain`, …).

pub mod envelope;
pub mod error;
pub mod keys;
pub mod result;
#[cfg(feature = "os-rng")]
pub mod rng;
pub mod stream;

pub use envelope::{
    Envelope, EnvelopeContext, EnvelopeKind, PublicKey, SecretKey, generate_keypair,
    keypair_from_seed, open_key, reseal_key, seal_key,
};
pub use error::{Error, Result};
pub use keys::{NoncePrefix, StreamKey};
/// The `rand_core` version whose `CryptoRng` this crate's functions accept.
pub use rand_core;
pub use stream::{OpenReader, SealWriter, StreamHeader};
