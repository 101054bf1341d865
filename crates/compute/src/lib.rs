//! `licen-compute`: the LICEN compute node.
//!
//! Owns:
//! - [`attestation`] — **INSECURE development attestation**: per-job ephemeral keys bound into
//!   evidence signed by a local dev key, and [`attestation::verify_evidence`] for the
//!   orchestrator;
//! - [`trainer`] — the [`trainer::Trainer`] trait and [`trainer::SimulatedTrainer`] (reads and
//!   validates every record every epoch, counts tokens, produces **no weights**);
//! - [`lora`] — the `lora` trainer (real LoRA training via `licen-lora`, result: a tar of the
//!   PEFT adapter and the training report) and the shared `--trainer` arguments;
//! - [`manifest`] — the signed result manifest and [`manifest::verify_result_manifest`];
//! - [`node`] — the node's HTTP service: receives the re-sealed dataset key, downloads and
//!   verifies the ciphertext, decrypts **only inside its per-job work dir** (wiped after),
//!   trains, seals the result to the researcher, uploads it and signs the manifest;
//! - [`client`] — a typed HTTP client of the node API for the orchestrator and the CLI;
//! - [`canonical`] — canonical JSON and hex byte strings.
//!
//! Must never: log or return key bytes or plaintext; write plaintext outside
//! `<data-dir>/work/<job>/`; present development attestation as secure.

pub mod attestation;
pub mod canonical;
pub mod client;
pub mod lora;
pub mod manifest;
pub mod node;
pub mod trainer;

pub use attestation::{
    AttestationError, InsecureDevAttestationKey, InsecureDevEvidence, VerifiedNode, verify_evidence,
};
pub use client::{ClientError, ComputeNodeClient};
pub use manifest::{ResultManifest, verify_result_manifest};
pub use node::{NodeConfig, RunningComputeNode, StoragePayer, TaskState, start};
pub use trainer::{SimulatedTrainer, Trainer, TrainerConfig};
