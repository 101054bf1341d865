//! **INSECURE** development attestation.
//!
//! A real deployment runs the node in a TEE whose hardware-signed quote binds the node's
//! ephemeral key to a measured binary. This module is the stand-in for development and tests:
//! the "quote" is an ed25519 signature by a key the node keeps in its own data dir
//! ([`InsecureDevAttestationKey`]), so it proves **nothing** about confidentiality — whoever
//! runs the node can read the data. Every type, the evidence JSON (`"kind": "insecure-dev"`)
//! and the node's logs say so.
//!
//! What it does bind, exactly as the real one will:
//! - `measurement = sha256(node binary bytes ‖ canonical trainer config JSON)`;
//! - `report_data = sha256("LICEN attestation v1" ‖ node_public_key ‖ result_signing_key ‖
//!   job_id (32-byte big-endian) ‖ dataset_root)`, where `node_public_key` is the job's
//!   ephemeral X25519 (HPKE recipient) key and `result_signing_key` the job's ephemeral ed25519
//!   key that signs the result manifest;
//! - `signature` = the attestation key's ed25519 signature over [`InsecureDevEvidence::signed_bytes`]
//!   (a fixed-length binary encoding of every other field).
//!
//! [`verify_evidence`] is what the orchestrator runs before re-sealing a dataset key.
//!
//! Must never: present development evidence as anything but insecure; write the attestation
//! secret key anywhere but its 0600 file; log secret keys.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use licen_crypto::PublicKey;
use licen_types::{DatasetRoot, JobId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::canonical::{HexBytes, to_canonical_json};
use crate::trainer::TrainerConfig;

/// The `kind` of development evidence. Anything else is rejected by [`verify_evidence`].
pub const INSECURE_DEV_KIND: &str = "insecure-dev";
/// Domain tag at the start of `report_data`'s preimage.
pub const REPORT_DATA_TAG: &[u8] = b"LICEN attestation v1";
/// Domain tag at the start of the bytes the attestation key signs.
pub const EVIDENCE_SIGNING_TAG: &[u8] = b"LICEN insecure-dev attestation evidence v1\0";
/// File (in the node's data dir) holding the dev attestation secret key, hex, mode 0600.
pub const ATTESTATION_KEY_FILE: &str = "insecure-dev-attestation.key";
/// File (in the node's data dir) holding the dev attestation public key, hex.
pub const ATTESTATION_PUBLIC_KEY_FILE: &str = "insecure-dev-attestation.pub";

/// Errors of attestation: creating keys and verifying evidence.
#[derive(Debug, thiserror::Error)]
pub enum AttestationError {
    /// Reading or writing the attestation key file failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The key file exists but does not hold a key.
    #[error("{0} does not hold a 32-byte hex ed25519 key: remove it to generate a new one")]
    BadKeyFile(PathBuf),
    /// The evidence is of another kind.
    #[error("evidence kind is {found:?}, expected {INSECURE_DEV_KIND:?}")]
    UnknownKind {
        /// The kind found.
        found: String,
    },
    /// Signed by a key that is not trusted.
    #[error("evidence is signed by attestation key {0}, which is not among the trusted keys")]
    UntrustedAttestationKey(HexBytes<32>),
    /// The signature does not verify.
    #[error(
        "evidence signature does not verify: the evidence was altered or not signed by its attestation key"
    )]
    BadSignature,
    /// A key in the evidence is not a valid point.
    #[error("evidence {0} is not a valid ed25519 public key")]
    InvalidKey(&'static str),
    /// `report_data` is not the hash of the keys, job and dataset.
    #[error("evidence report_data does not bind its keys, job and dataset root")]
    ReportDataMismatch,
    /// Evidence for another job.
    #[error("evidence is for job {found}, expected job {expected}")]
    JobMismatch {
        /// Job in the evidence.
        found: u64,
        /// Job expected.
        expected: u64,
    },
    /// Evidence for another dataset.
    #[error("evidence is for dataset {found}, expected {expected}")]
    RootMismatch {
        /// Root in the evidence.
        found: HexBytes<32>,
        /// Root expected.
        expected: HexBytes<32>,
    },
    /// The measurement is not allowed by the dataset.
    #[error("node measurement {0} is not among the measurements this dataset allows")]
    MeasurementNotAllowed(HexBytes<32>),
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> AttestationError {
    let context = context.into();
    move |source| AttestationError::Io { context, source }
}

/// The node's long-lived **INSECURE development** attestation key (ed25519). It signs evidence
/// in place of a TEE's hardware key. `Debug` prints only the public key.
pub struct InsecureDevAttestationKey {
    signing: SigningKey,
}

impl std::fmt::Debug for InsecureDevAttestationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "InsecureDevAttestationKey(public {})",
            HexBytes(self.public_key())
        )
    }
}

pub(crate) fn random_bytes32() -> Zeroizing<[u8; 32]> {
    use licen_crypto::rand_core::Rng;
    let mut seed = Zeroizing::new([0u8; 32]);
    licen_crypto::rng::OsRng.fill_bytes(seed.as_mut_slice());
    seed
}

pub(crate) fn random_signing_key() -> SigningKey {
    SigningKey::from_bytes(&random_bytes32())
}

impl InsecureDevAttestationKey {
    /// A fresh key, not persisted (tests).
    #[must_use]
    pub fn generate() -> Self {
        InsecureDevAttestationKey {
            signing: random_signing_key(),
        }
    }

    /// Loads the key from `data_dir/`[`ATTESTATION_KEY_FILE`], creating it (mode 0600, never
    /// overwriting) and the matching [`ATTESTATION_PUBLIC_KEY_FILE`] on first use.
    ///
    /// # Errors
    /// [`AttestationError::Io`], [`AttestationError::BadKeyFile`].
    pub fn load_or_create(data_dir: &Path) -> Result<Self, AttestationError> {
        let path = data_dir.join(ATTESTATION_KEY_FILE);
        let key = match fs::File::open(&path) {
            Ok(mut file) => {
                let mut text = Zeroizing::new(String::new());
                file.read_to_string(&mut text)
                    .map_err(io_err(format!("reading {}", path.display())))?;
                let mut seed = Zeroizing::new([0u8; 32]);
                hex::decode_to_slice(text.trim(), seed.as_mut_slice())
                    .map_err(|_| AttestationError::BadKeyFile(path.clone()))?;
                let mode = file
                    .metadata()
                    .map_err(io_err(format!("reading metadata of {}", path.display())))?
                    .permissions()
                    .mode();
                if mode & 0o077 != 0 {
                    fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
                        .map_err(io_err(format!("restricting {} to 0600", path.display())))?;
                }
                InsecureDevAttestationKey {
                    signing: SigningKey::from_bytes(&seed),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate();
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(io_err(format!("creating {}", path.display())))?;
                let text = Zeroizing::new(hex::encode(key.signing.to_bytes()));
                file.write_all(text.as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(io_err(format!("writing {}", path.display())))?;
                key
            }
            Err(e) => return Err(io_err(format!("opening {}", path.display()))(e)),
        };
        let public = data_dir.join(ATTESTATION_PUBLIC_KEY_FILE);
        fs::write(&public, format!("{}\n", HexBytes(key.public_key())))
            .map_err(io_err(format!("writing {}", public.display())))?;
        Ok(key)
    }

    /// The public attestation key (what an orchestrator lists as trusted).
    #[must_use]
    pub fn public_key(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// Issues signed evidence for one job's ephemeral keys.
    #[must_use]
    pub fn attest(
        &self,
        job_id: JobId,
        dataset_root: &DatasetRoot,
        node_public_key: &PublicKey,
        result_signing_key: &VerifyingKey,
        measurement: [u8; 32],
    ) -> InsecureDevEvidence {
        let node_public_key = node_public_key.to_bytes();
        let result_signing_key = result_signing_key.to_bytes();
        let mut evidence = InsecureDevEvidence {
            kind: INSECURE_DEV_KIND.into(),
            job_id: job_id.0,
            dataset_root: HexBytes(*dataset_root.as_bytes()),
            node_public_key: HexBytes(node_public_key),
            result_signing_key: HexBytes(result_signing_key),
            measurement: HexBytes(measurement),
            report_data: HexBytes(report_data(
                &node_public_key,
                &result_signing_key,
                job_id,
                dataset_root,
            )),
            attestation_key: HexBytes(self.public_key()),
            signature: HexBytes([0; 64]),
        };
        evidence.signature = HexBytes(self.signing.sign(&evidence.signed_bytes()).to_bytes());
        evidence
    }
}

/// `sha256(binary ‖ canonical trainer config JSON)`.
#[must_use]
pub fn measurement(binary: &[u8], trainer: &TrainerConfig) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(binary);
    h.update(trainer.canonical_json());
    h.finalize().into()
}

/// [`measurement`] of the binary at `path`, streamed from disk.
///
/// # Errors
/// [`AttestationError::Io`] if the binary cannot be read.
pub fn measure_binary(path: &Path, trainer: &TrainerConfig) -> Result<[u8; 32], AttestationError> {
    let mut file = fs::File::open(path)
        .map_err(io_err(format!("opening {} to measure it", path.display())))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(io_err(format!("reading {} to measure it", path.display())))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    h.update(trainer.canonical_json());
    Ok(h.finalize().into())
}

/// [`measure_binary`] of the running executable (`std::env::current_exe`).
///
/// # Errors
/// [`AttestationError::Io`].
pub fn measure_current_exe(trainer: &TrainerConfig) -> Result<[u8; 32], AttestationError> {
    let exe = std::env::current_exe().map_err(io_err("locating the running executable"))?;
    measure_binary(&exe, trainer)
}

/// `sha256("LICEN attestation v1" ‖ node_public_key ‖ result_signing_key ‖ job_id (32 BE) ‖
/// dataset_root)`.
#[must_use]
pub fn report_data(
    node_public_key: &[u8; 32],
    result_signing_key: &[u8; 32],
    job_id: JobId,
    dataset_root: &DatasetRoot,
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(REPORT_DATA_TAG);
    h.update(node_public_key);
    h.update(result_signing_key);
    h.update(job_id.to_be_bytes32());
    h.update(dataset_root.as_bytes());
    h.finalize().into()
}

/// **INSECURE development** attestation evidence for one job (JSON: `"kind": "insecure-dev"`;
/// byte fields are `0x` hex).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InsecureDevEvidence {
    /// Always [`INSECURE_DEV_KIND`].
    pub kind: String,
    /// The on-chain job id.
    pub job_id: u64,
    /// The dataset the job trains on.
    pub dataset_root: HexBytes<32>,
    /// The job's ephemeral X25519 key: the orchestrator re-seals the dataset key to it.
    pub node_public_key: HexBytes<32>,
    /// The job's ephemeral ed25519 key that signs the result manifest.
    pub result_signing_key: HexBytes<32>,
    /// `sha256(node binary ‖ canonical trainer config)`.
    pub measurement: HexBytes<32>,
    /// See [`report_data`].
    pub report_data: HexBytes<32>,
    /// The node's dev attestation public key (ed25519).
    pub attestation_key: HexBytes<32>,
    /// ed25519 signature by `attestation_key` over [`Self::signed_bytes`].
    pub signature: HexBytes<64>,
}

impl InsecureDevEvidence {
    /// What the attestation key signs: [`EVIDENCE_SIGNING_TAG`] ‖ len(kind) (u16 BE) ‖ kind ‖
    /// job_id (32 BE) ‖ dataset_root ‖ node_public_key ‖ result_signing_key ‖ measurement ‖
    /// report_data ‖ attestation_key.
    #[must_use]
    pub fn signed_bytes(&self) -> Vec<u8> {
        let kind = self.kind.as_bytes();
        let kind_len = u16::try_from(kind.len()).unwrap_or(u16::MAX);
        let mut out = Vec::with_capacity(EVIDENCE_SIGNING_TAG.len() + 2 + kind.len() + 7 * 32);
        out.extend_from_slice(EVIDENCE_SIGNING_TAG);
        out.extend_from_slice(&kind_len.to_be_bytes());
        out.extend_from_slice(&kind[..usize::from(kind_len)]);
        out.extend_from_slice(&JobId(self.job_id).to_be_bytes32());
        for field in [
            &self.dataset_root,
            &self.node_public_key,
            &self.result_signing_key,
            &self.measurement,
            &self.report_data,
            &self.attestation_key,
        ] {
            out.extend_from_slice(&field.0);
        }
        out
    }

    /// Canonical JSON of the evidence (what the node uploads to storage).
    #[must_use]
    pub fn canonical_json(&self) -> Vec<u8> {
        to_canonical_json(self)
    }

    /// `sha256` of [`Self::canonical_json`]: the evidence hash in result manifests.
    #[must_use]
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.canonical_json()).into()
    }

    /// The 0G root of [`Self::canonical_json`]: where the evidence is stored.
    #[must_use]
    pub fn storage_root(&self) -> [u8; 32] {
        licen_storage::merkle::root(&self.canonical_json()).0
    }
}

/// A node whose evidence verified: what the orchestrator re-seals to and checks results with.
#[derive(Clone, Debug)]
pub struct VerifiedNode {
    /// Always `true` for this module: the evidence is development evidence, not a TEE quote.
    pub insecure: bool,
    /// The job the evidence is bound to.
    pub job_id: JobId,
    /// The dataset the evidence is bound to.
    pub dataset_root: DatasetRoot,
    /// The job's ephemeral X25519 key: re-seal the dataset key to this (context
    /// `OrchestratorToNode { job_id, dataset_root }`).
    pub node_public_key: PublicKey,
    /// The job's ephemeral ed25519 key that signs the result manifest.
    pub result_signing_key: VerifyingKey,
    /// The node's measurement.
    pub measurement: [u8; 32],
    /// The attestation key that signed the evidence.
    pub attestation_key: [u8; 32],
    /// [`InsecureDevEvidence::hash`].
    pub evidence_hash: [u8; 32],
    /// [`InsecureDevEvidence::storage_root`].
    pub evidence_root: [u8; 32],
}

/// Verifies development evidence for `expected_job` on `expected_root`: kind, that
/// `attestation_key` is one of `trusted_attestation_keys` (an empty list trusts nothing), the
/// signature, the `report_data` recomputation, the job/dataset binding, and that the
/// measurement is in `allowed_measurements` (empty = any measurement).
///
/// # Errors
/// The first [`AttestationError`] found.
pub fn verify_evidence(
    evidence: &InsecureDevEvidence,
    trusted_attestation_keys: &[[u8; 32]],
    allowed_measurements: &[[u8; 32]],
    expected_job: JobId,
    expected_root: &DatasetRoot,
) -> Result<VerifiedNode, AttestationError> {
    if evidence.kind != INSECURE_DEV_KIND {
        return Err(AttestationError::UnknownKind {
            found: evidence.kind.clone(),
        });
    }
    if !trusted_attestation_keys.contains(&evidence.attestation_key.0) {
        return Err(AttestationError::UntrustedAttestationKey(
            evidence.attestation_key,
        ));
    }
    let attestation_key = VerifyingKey::from_bytes(&evidence.attestation_key.0)
        .map_err(|_| AttestationError::InvalidKey("attestation_key"))?;
    let signature = Signature::from_bytes(&evidence.signature.0);
    attestation_key
        .verify_strict(&evidence.signed_bytes(), &signature)
        .map_err(|_| AttestationError::BadSignature)?;
    let result_signing_key = VerifyingKey::from_bytes(&evidence.result_signing_key.0)
        .map_err(|_| AttestationError::InvalidKey("result_signing_key"))?;
    let job_id = JobId(evidence.job_id);
    let dataset_root = DatasetRoot(evidence.dataset_root.0.into());
    let expected_rd = report_data(
        &evidence.node_public_key.0,
        &evidence.result_signing_key.0,
        job_id,
        &dataset_root,
    );
    if expected_rd != evidence.report_data.0 {
        return Err(AttestationError::ReportDataMismatch);
    }
    if job_id != expected_job {
        return Err(AttestationError::JobMismatch {
            found: job_id.0,
            expected: expected_job.0,
        });
    }
    if dataset_root != *expected_root {
        return Err(AttestationError::RootMismatch {
            found: evidence.dataset_root,
            expected: HexBytes(*expected_root.as_bytes()),
        });
    }
    if !allowed_measurements.is_empty() && !allowed_measurements.contains(&evidence.measurement.0) {
        return Err(AttestationError::MeasurementNotAllowed(
            evidence.measurement,
        ));
    }
    Ok(VerifiedNode {
        insecure: true,
        job_id,
        dataset_root,
        node_public_key: PublicKey::from_bytes(&evidence.node_public_key.0),
        result_signing_key,
        measurement: evidence.measurement.0,
        attestation_key: evidence.attestation_key.0,
        evidence_hash: evidence.hash(),
        evidence_root: evidence.storage_root(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trainer::{SimulatedTrainer, Trainer};

    fn sample() -> (InsecureDevAttestationKey, InsecureDevEvidence, DatasetRoot) {
        let key = InsecureDevAttestationKey::generate();
        let (_, node_pk) = licen_crypto::generate_keypair(&mut licen_crypto::rng::OsRng);
        let signer = random_signing_key();
        let root = DatasetRoot([7u8; 32].into());
        let m = measurement(b"binary", &SimulatedTrainer::new().config());
        let ev = key.attest(JobId(9), &root, &node_pk, &signer.verifying_key(), m);
        (key, ev, root)
    }

    #[test]
    fn evidence_verifies_and_every_check_bites() {
        let (key, ev, root) = sample();
        let trusted = [key.public_key()];
        let m = ev.measurement.0;
        let node = verify_evidence(&ev, &trusted, &[m], JobId(9), &root).unwrap();
        assert!(node.insecure);
        assert_eq!(node.node_public_key.to_bytes(), ev.node_public_key.0);
        assert_eq!(node.evidence_hash, ev.hash());
        verify_evidence(&ev, &trusted, &[], JobId(9), &root).unwrap();

        let err = |e: &InsecureDevEvidence, meas: &[[u8; 32]], job: u64, r: &DatasetRoot| {
            verify_evidence(e, &trusted, meas, JobId(job), r).unwrap_err()
        };
        assert!(matches!(
            err(&ev, &[[0; 32]], 9, &root),
            AttestationError::MeasurementNotAllowed(_)
        ));
        assert!(matches!(
            err(&ev, &[], 10, &root),
            AttestationError::JobMismatch { .. }
        ));
        assert!(matches!(
            err(&ev, &[], 9, &DatasetRoot([8u8; 32].into())),
            AttestationError::RootMismatch { .. }
        ));
        assert!(matches!(
            verify_evidence(&ev, &[], &[], JobId(9), &root).unwrap_err(),
            AttestationError::UntrustedAttestationKey(_)
        ));
        let mut t = ev.clone();
        t.node_public_key.0[0] ^= 1;
        assert!(matches!(
            err(&t, &[], 9, &root),
            AttestationError::BadSignature
        ));
        let mut t = ev.clone();
        t.kind = "tdx".into();
        assert!(matches!(
            err(&t, &[], 9, &root),
            AttestationError::UnknownKind { .. }
        ));
        // Re-signed with consistent signature but a report_data that does not bind the keys.
        let mut t = ev.clone();
        t.report_data.0[0] ^= 1;
        t.signature = HexBytes(key.signing.sign(&t.signed_bytes()).to_bytes());
        assert!(matches!(
            err(&t, &[], 9, &root),
            AttestationError::ReportDataMismatch
        ));
    }

    #[test]
    fn evidence_json_is_labelled_and_round_trips() {
        let (_, ev, _) = sample();
        let json = String::from_utf8(ev.canonical_json()).unwrap();
        assert!(json.contains("\"kind\":\"insecure-dev\""));
        let back: InsecureDevEvidence = serde_json::from_str(&json).unwrap();
        assert_eq!(back, ev);
    }

    #[test]
    fn key_file_is_0600_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let a = InsecureDevAttestationKey::load_or_create(dir.path()).unwrap();
        let mode = fs::metadata(dir.path().join(ATTESTATION_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = InsecureDevAttestationKey::load_or_create(dir.path()).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        assert!(!format!("{a:?}").contains(&hex::encode(a.signing.to_bytes())));
    }
}
