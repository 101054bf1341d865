//! LICEN's chain indexer: follows the DataPolicy contract's events into a database and serves
//! the marketplace's queries over HTTP.
//!
//! Owns: the follower ([`follower`]: batched `eth_getLogs` over an adaptive range, confirmation
//! depth, reorg detection and rewind, a cursor committed with each batch), the database
//! ([`db`]: raw events plus derived datasets, jobs, transitions, withdrawals; SQLite in WAL
//! mode or Postgres, one code path; bound to one deployment on its first start), manifest
//! fetching for text search ([`manifests`]), the read side ([`query`]), the query API
//! ([`api`], documented in `openapi.json`), the live stream ([`stream`], Server-Sent Events),
//! the check its readers make that it indexes their deployment ([`client`]) and the runner
//! ([`runner`]: follower + API in one process, what `licen indexer` calls).
//!
//! Must never: hold keys, plaintext or anything secret (it reads public chain events only),
//! send transactions, or trust its own derived tables over the events they came from.
//!
//! Limits: a rewind deeper than the undo log recomputes every derived table from all stored
//! events; text search is a substring scan of the fetched manifests (no ranking, no index
//! beyond the table itself).

pub mod api;
pub mod client;
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

pub use client::{FollowsError, check_follows};
pub use db::{Backend, Cursor, Db, Deployment};
pub use error::{Error, Result};
pub use follower::{Follower, FollowerConfig, Step};
pub use runner::{IndexerConfig, Running, run, start};
pub use source::{BlockRef, ChainSource, RpcSource};
