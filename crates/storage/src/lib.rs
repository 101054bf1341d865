//! # licen-storage
//!
//! Content-addressed storage for LICEN, speaking 0G Storage's protocol.
//!
//! What this crate owns:
//! - [`merkle`]: the 0G file id — the keccak Merkle root over 256-byte chunks with 0G's padding
//!   rule — computed in one streaming pass ([`merkle::RootBuilder`]), plus the per-segment
//!   proofs ([`proof::Proof`]) and the Flow submission node list.
//! - [`rpc`]: the zgs JSON-RPC wire types (`SegmentWithProof`, `FileInfo`, …) with 0G's exact
//!   field names.
//! - [`shard`]: 0G's sharding rules: which Flow positions a `shard_id/num_shard` node holds,
//!   and 0G's node selection (every segment held `replicas` times).
//! - [`store`] (feature `net`): the async [`store::Store`] trait the CLI, compute node and
//!   orchestrator program against.
//! - [`node`] (feature `net`): a local storage node that answers the zgs JSON-RPC methods a 0G
//!   client uses, verifies every segment against the file root and persists crash-safely.
//! - [`client`] (feature `net`): the HTTP client that uploads and downloads files segment by
//!   segment, verifying every downloaded segment's proof against the requested root.
//! - [`endpoint`] (feature `net`): where a service finds storage — one node or an indexer's
//!   nodes — and the connected [`Storage`] the services use.
//! - [`indexer`] (feature `net`): 0G's storage indexer — the client, the
//!   [`indexer::IndexerStore`] that spreads a file over the sharded nodes an indexer names, and
//!   a local indexer service.
//! - [`zerog`]: the 0G backend: the same client pointed at 0G storage nodes, and the Flow
//!   contract `submit` calldata and fee.
//!
//! What it must never do: see plaintext. Everything that passes through this crate is
//! ciphertext (sealed datasets and results), key envelopes (HPKE ciphertext) or public
//! manifests. It never decrypts, never logs file contents, and never trusts a storage node:
//! every byte downloaded is checked against the root the caller asked for. It never sends a
//! chain transaction either: [`zerog`] builds calldata and value, `licen-chain` sends them.

pub mod error;
pub mod merkle;
pub mod proof;
pub mod rpc;
pub mod shard;
pub mod zerog;

#[cfg(feature = "net")]
pub mod client;
#[cfg(feature = "net")]
pub mod direct;
#[cfg(feature = "net")]
pub mod endpoint;
#[cfg(feature = "net")]
mod flush;
#[cfg(feature = "net")]
pub mod indexer;
#[cfg(feature = "net")]
pub mod node;
#[cfg(feature = "net")]
pub mod store;

mod keccak;

pub use error::{Error, Result};
pub use merkle::{FileLayout, FileTree, Hash, RootBuilder};
pub use proof::Proof;

#[cfg(feature = "net")]
pub use client::{ClientConfig, StorageClient};
#[cfg(feature = "net")]
pub use endpoint::{Storage, StorageEndpoint};
#[cfg(feature = "net")]
pub use store::{Downloaded, Phase, Progress, ProgressFn, Store, Uploaded};
