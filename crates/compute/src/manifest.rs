//! The result manifest a node signs when it delivers a job (DESIGN.md §2 step 7, §5.3).
//!
//! Owns [`ResultManifest`] (canonical JSON), the bytes its signature covers
//! ([`ResultManifest::signed_bytes`]) and [`verify_result_manifest`], which the orchestrator
//! runs before `confirmTrainingComplete`. The signing key is the job's ephemeral ed25519 key
//! that the node's (development) attestation bound to the job.
//!
//! Must never: carry dataset content (metrics are counts and durations only).

use ed25519_dalek::{Signature, Signer, SigningKey};
use licen_types::JobId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::attestation::{INSECURE_DEV_KIND, VerifiedNode};
use crate::canonical::{HexBytes, to_canonical_json};

/// `kind` of a result manifest.
pub const RESULT_MANIFEST_KIND: &str = "licen-result-manifest";
/// Result manifest format version.
pub const RESULT_MANIFEST_VERSION: u32 = 1;
/// Domain tag prefixed to the canonical JSON before signing.
pub const RESULT_MANIFEST_SIGNING_TAG: &[u8] = b"LICEN result manifest v1\0";

/// What a node delivered for one job. Byte fields are `0x` hex in JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultManifest {
    /// Always [`RESULT_MANIFEST_KIND`].
    pub kind: String,
    /// Always [`RESULT_MANIFEST_VERSION`].
    pub version: u32,
    /// The on-chain job id.
    pub job_id: u64,
    /// The dataset trained on.
    pub dataset_root: HexBytes<32>,
    /// 0G root of the sealed result (envelope to the researcher's `resultKey` ‖ sealed stream).
    pub result_root: HexBytes<32>,
    /// Size of the sealed result in bytes (download with this as the expected size).
    pub result_size: u64,
    /// Media type of the plaintext result.
    pub result_media_type: String,
    /// Epochs actually run (what `confirmTrainingComplete` is called with).
    pub actual_epochs: u16,
    /// Trainer metrics (counts and durations, never data).
    pub metrics: serde_json::Value,
    /// Trainer name (`"simulated"`: no weights were produced).
    pub trainer: String,
    /// The node measurement from the evidence.
    pub trainer_measurement: HexBytes<32>,
    /// Kind of the attestation the node presented (`"insecure-dev"`).
    pub attestation_kind: String,
    /// sha256 of the evidence's canonical JSON.
    pub evidence_hash: HexBytes<32>,
    /// 0G root of the evidence's canonical JSON, uploaded to storage for audit.
    pub evidence_root: HexBytes<32>,
}

impl ResultManifest {
    /// Canonical JSON of the manifest.
    #[must_use]
    pub fn canonical_json(&self) -> Vec<u8> {
        to_canonical_json(self)
    }

    /// `sha256` of [`Self::canonical_json`].
    #[must_use]
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.canonical_json()).into()
    }

    /// What the signature covers: [`RESULT_MANIFEST_SIGNING_TAG`] ‖ canonical JSON.
    #[must_use]
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = RESULT_MANIFEST_SIGNING_TAG.to_vec();
        out.extend(self.canonical_json());
        out
    }

    pub(crate) fn sign(&self, key: &SigningKey) -> HexBytes<64> {
        HexBytes(key.sign(&self.signed_bytes()).to_bytes())
    }
}

/// Why a result manifest was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The signature does not verify under the node's attested result-signing key.
    #[error(
        "result manifest signature does not verify under the node's attested result-signing key"
    )]
    BadSignature,
    /// A field disagrees with the verified evidence or the format.
    #[error("result manifest {field} is {found}, expected {expected}")]
    Mismatch {
        /// The field.
        field: &'static str,
        /// What it holds.
        found: String,
        /// What the verified evidence says.
        expected: String,
    },
}

/// Verifies a delivered manifest against the node verified with
/// [`crate::attestation::verify_evidence`]: the signature (ed25519, strict) under the node's
/// attested result-signing key, and that kind, version, job, dataset, measurement and evidence
/// hash/root are the attested ones.
///
/// # Errors
/// [`ManifestError`].
pub fn verify_result_manifest(
    manifest: &ResultManifest,
    signature: &HexBytes<64>,
    node: &VerifiedNode,
) -> Result<(), ManifestError> {
    let sig = Signature::from_bytes(&signature.0);
    node.result_signing_key
        .verify_strict(&manifest.signed_bytes(), &sig)
        .map_err(|_| ManifestError::BadSignature)?;
    let check = |field: &'static str, found: String, expected: String| {
        if found == expected {
            Ok(())
        } else {
            Err(ManifestError::Mismatch {
                field,
                found,
                expected,
            })
        }
    };
    check("kind", manifest.kind.clone(), RESULT_MANIFEST_KIND.into())?;
    check(
        "attestation_kind",
        manifest.attestation_kind.clone(),
        INSECURE_DEV_KIND.into(),
    )?;
    check(
        "version",
        manifest.version.to_string(),
        RESULT_MANIFEST_VERSION.to_string(),
    )?;
    check(
        "job_id",
        JobId(manifest.job_id).to_string(),
        node.job_id.to_string(),
    )?;
    check(
        "dataset_root",
        manifest.dataset_root.to_string(),
        HexBytes(*node.dataset_root.as_bytes()).to_string(),
    )?;
    check(
        "trainer_measurement",
        manifest.trainer_measurement.to_string(),
        HexBytes(node.measurement).to_string(),
    )?;
    check(
        "evidence_hash",
        manifest.evidence_hash.to_string(),
        HexBytes(node.evidence_hash).to_string(),
    )?;
    check(
        "evidence_root",
        manifest.evidence_root.to_string(),
        HexBytes(node.evidence_root).to_string(),
    )?;
    Ok(())
}
