//! Domain types shared by every LICEN crate.
//!
//! Owns the vocabulary of the product: the owner's [`Policy`], the [`Purpose`] registry and
//! [`PurposeSet`] bitmask, dataset and job identifiers, [`JobState`], and the policy hash that
//! the DataPolicy contract computes identically (`keccak256(abi.encode(policy))`).
//!
//! Must never: perform I/O, talk to a chain or storage, or carry transport serialization
//! (DTOs live at the edges: the CLI, the indexer API, the web server).

mod ids;
mod job;
mod policy;
mod purpose;

pub use alloy_primitives::{Address, B256, U256};
pub use ids::{DatasetRoot, JobId};
pub use job::JobState;
pub use policy::{
    MAX_EPOCHS_PER_RUN_LIMIT, MAX_PRICE_PER_EPOCH, Policy, PolicyError, format_wei, parse_wei,
};
pub use purpose::{Purpose, PurposeSet, UnknownPurpose};

/// Result alias for this crate's fallible operations.
pub type Result<T, E = PolicyError> = std::result::Result<T, E>;
