//! LICEN's chain indexer: follows the DataPolicy contract's events into a database and serves
//! the marketplace's queries over HTTP.
//!
//! Owns: the follower ([`follower`]: batched `eth_getLogs` over an adaptive range, confirmation
//! depth, reorg detection and rewind, a cursor committed with each batch), the database
//! ([`db`]: raw events plus derived datasets, jobs, transitions, withdrawals; SQLite in WAL
//! mode or Postgres, one code path), manifest fetching for text search ([`manifests`]), the read side ([`query`]), the query API ([`api`], documented in `openapi.json`), the
//! live stream ([`stream`], Server-Sent Events) and the runner ([`runner`]: follower + API in
//! one process, what a `licen index` command calls).
//!
//! Must never: hold keys, plaintext or anything secret (it reads public chain events only),
//! send transactions, or trust its own derived tables over the events they came from.
//!
//! Limits: a rewind deeper than the undo log recomputes every derived table from all stored
//! events; text search is a substring scan of the fetched manifests (no ranking, no index
//! beyond the table itself); no `licen index` CLI command yet.

pub mod api;
pub mod db;
mod derive;
mod error;
pub mod event;
pub mod follower;
pub mod manifests;
pub mod query;
pub mod runner;
pub mod source;
pub mod stream;
pub mod testing;

pub use db::{Backend, Cursor, Db};
pub use error::{Error, Result};
pub use follower::{Follower, FollowerConfig, Step};
pub use runner::{IndexerConfig, Running, run, start};
pub use source::{BlockRef, ChainSource, RpcSource};
