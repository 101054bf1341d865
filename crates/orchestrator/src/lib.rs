//! The orchestrator: turns paid grants into settled jobs, and releases dataset keys only to
//! attested compute nodes.
//!
//! Owns: following `AccessGranted` (through the indexer's live stream, or the chain's logs)
//! for datasets it orchestrates, re-checking every job on-chain
//! before acting, asking a compute provider for a node, verifying the node's attestation
//! evidence and that its measurement is allowed by the dataset's manifest, opening the owner's
//! key envelope and re-sealing the dataset key to the node's attested key, `startJob`, following
//! the task through the 0G fine-tuning states, verifying the signed result manifest, and
//! `confirmTrainingComplete` — or `failJob` with a reason (full refund) when the job cannot
//! finish. Every step is recorded in a crash-safe ledger (SQLite, or Postgres) and reconciled
//! against the chain, so a restart after `kill -9` finishes each job exactly once. Several
//! replicas may share one ledger: one leads (a lease in the ledger), the others stand by and
//! take over when it stops or stops renewing.
//!
//! Must never: log, store or send the dataset key anywhere but inside an envelope to an attested
//! node; see plaintext data; start or settle a job without re-reading its on-chain state.

mod error;
mod grants;
mod job;
mod ledger;
mod provider;
mod replica;
mod runner;

pub use error::{Error, Result};
pub use grants::GrantSource;
pub use ledger::{Handover, Lead, Ledger, LedgerDeployment, Stage};
pub use provider::{ComputeProvider, LocalProvider};
pub use replica::{describe_replica, replica_name};
pub use runner::{DEFAULT_LEASE, LedgerLocation, NODE_ATTEMPTS, Orchestrator, OrchestratorConfig};
