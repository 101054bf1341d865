//! LICEN's view of the chain: the DataPolicy contract.
//!
//! Owns: the alloy bindings generated from the committed forge artifact
//! (`artifacts/DataPolicy.json`, refreshed by `cargo xtask contracts`: one ABI source of truth),
//! a typed client for every contract function, deployment, decoding of reverts into sentences a
//! person can act on, and spawning a local anvil from the pinned toolchain. Also the 0G Flow
//! contract's `submit` (paying for a file's storage before 0G nodes accept it).
//!
//! Must never: hold plaintext data or dataset keys (the chain sees only roots, hashes and
//! public keys), or retry a state-changing transaction blindly.

pub mod anvil;
pub mod bindings;
mod client;
mod convert;
mod error;
mod flow;
pub mod network;
mod nonce;
pub mod revert;
pub mod testing;

pub use client::{
    Connection, DataPolicyClient, DeployParams, Deployment, FencedAt, Grant, JobCompletion,
    JobView, TxReceipt, connect, connect_fenced,
};
pub use convert::{policy_from_sol, policy_to_sol};
pub use error::{Error, Result};
pub use flow::{FlowClient, FlowReceipt, SubmittedFile};
pub use network::Network;
pub use nonce::{AccountUsedElsewhere, ResyncingNonceManager};
