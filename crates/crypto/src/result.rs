//! Result sealing: how a compute node returns a trained adapter to the researcher.
//!
//! Owns the "sealed result object" layout: an 82-byte [`crate::envelope`] envelope of kind
//! [`crate::envelope::EnvelopeKind::ResultKeyToResearcher`] followed immediately by a sealed stream
//! ([`crate::stream`]). The node generates a fresh random result key, seals the adapter bytes
//! with the sealed stream under it, and wraps the key with HPKE to the researcher's on-chain
//! `resultKey`, binding `jobId ‖ datasetRoot` as AAD. The researcher opens the envelope with
//! the result secret key, then streams the adapter out. Normative description:
//! `docs/FORMATS.md` §3.
//!
//! Must never: reuse a result key for two results, seal a result to any key but the job's
//! `resultKey`, or release adapter plaintext before its segment verified (the stream reader
//! guarantees this).

use std::io::{Read, Write};

use rand_core::CryptoRng;

use crate::envelope::{ENVELOPE_LEN, EnvelopeContext, PublicKey, SecretKey, open_key, seal_key};
use crate::error::{Error, Result};
use crate::keys::{NoncePrefix, StreamKey};
use crate::stream::{OpenReader, SealWriter};

/// The envelope context of a job's result.
#[must_use]
pub fn result_context(job_id: [u8; 32], dataset_root: [u8; 32]) -> EnvelopeContext {
    EnvelopeContext::NodeToResearcher {
        job_id,
        dataset_root,
    }
}

/// Starts a sealed result object on `out`: draws a fresh result key and nonce prefix from
/// `rng`, writes the envelope to `researcher`, and returns the stream writer for the adapter
/// bytes. Call [`SealWriter::finish`] at the end.
///
/// # Errors
/// [`Error::InvalidPublicKey`], [`Error::InvalidSegmentSize`], [`Error::Io`].
pub fn begin_seal_result<W: Write>(
    mut out: W,
    researcher: &PublicKey,
    job_id: [u8; 32],
    dataset_root: [u8; 32],
    segment_size: u32,
    rng: &mut impl CryptoRng,
) -> Result<SealWriter<W>> {
    let key = StreamKey::generate(rng);
    let prefix = NoncePrefix::generate(rng);
    let envelope = seal_key(researcher, &key, &result_context(job_id, dataset_root), rng)?;
    out.write_all(envelope.as_bytes()).map_err(Error::Io)?;
    SealWriter::new(out, &key, prefix, segment_size)
}

/// Opens a sealed result object from `input`: reads and opens the envelope with the
/// researcher's result secret key for this job, and returns the verifying reader of the
/// adapter bytes.
///
/// # Errors
/// [`Error::EnvelopeLength`] if the input ends inside the envelope, the envelope errors of
/// [`open_key`] (wrong key, job or dataset), the header errors of [`OpenReader::new`].
pub fn begin_open_result<R: Read>(
    mut input: R,
    researcher: &SecretKey,
    job_id: [u8; 32],
    dataset_root: [u8; 32],
) -> Result<OpenReader<R>> {
    let mut envelope = [0u8; ENVELOPE_LEN];
    let mut got = 0;
    while got < ENVELOPE_LEN {
        match input.read(&mut envelope[got..]) {
            Ok(0) => {
                return Err(Error::EnvelopeLength {
                    found: got,
                    expected: ENVELOPE_LEN,
                });
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::Io(e)),
        }
    }
    let key = open_key(researcher, &envelope, &result_context(job_id, dataset_root))?;
    OpenReader::new(input, &key)
}

/// Seals a whole adapter held in memory into a sealed result object.
///
/// # Errors
/// As [`begin_seal_result`].
pub fn seal_result(
    researcher: &PublicKey,
    job_id: [u8; 32],
    dataset_root: [u8; 32],
    plaintext: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<Vec<u8>> {
    let mut w = begin_seal_result(
        Vec::new(),
        researcher,
        job_id,
        dataset_root,
        crate::stream::DEFAULT_SEGMENT_SIZE,
        rng,
    )?;
    w.write_all(plaintext)?;
    w.finish()
}

/// Opens a whole sealed result object held in memory.
///
/// # Errors
/// As [`begin_open_result`], plus every integrity error of the stream.
pub fn open_result(
    researcher: &SecretKey,
    job_id: [u8; 32],
    dataset_root: [u8; 32],
    sealed: &[u8],
) -> Result<Vec<u8>> {
    let mut r = begin_open_result(sealed, researcher, job_id, dataset_root)?;
    let mut out = Vec::new();
    r.read_to_end(&mut out)?;
    Ok(out)
}
