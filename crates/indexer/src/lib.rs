//! LICEN's chain indexer: follows the DataPolicy contract's events into a database and serves
//! the marketplace's queries over HTTP.
//!
//! Owns: the follower ([`follower`]: batched `eth_getLogs` over an adaptive range, confirmation
//! depth, reorg detection and rewind, a cursor committed with each batch), the database
//! ([`db`]: raw events plus derived datasets, jobs, transitions, withdrawals; SQLite in WAL
//! mode), the read side ([`query`]), the query API ([`api`], documented in `openapi.json`), the
//! live stream ([`stream`], Server-Sent Events) and the runner ([`runner`]: follower + API in
//! one process, what a `licen index` command calls).
//!
//! Must never: hold keys, plaintext or anything secret (it reads public chain events only),
//! send transactions, or trust its own derived tables over the events they came from.
//!
//! Limits of this slice: SQLite only (the SQL is portable, Postgres is not wired); a rewind
//! deeper than the undo log recomputes every derived table from all stored events; no text
//! search (manifests live in storage and are not fetched yet); no CLI command.

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
