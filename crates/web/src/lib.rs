//! `licen-web`: the marketplace web app.
//!
//! Owns the HTTP server the browser talks to ([`server`]): the pages and their static assets
//! (embedded in the binary, [`assets`]), a read-only proxy of the indexer's query API and live
//! stream, staged uploads ([`staging`]: the page streams ciphertext, the server checks its root
//! and forwards it to storage with proofs) and a relay of zgs JSON-RPC file-info and download
//! calls to storage ([`relay`]). Storage is one zgs node or a 0G storage indexer over sharded
//! nodes (`--storage-indexer`). The in-page crypto is `crates/wasm` (`licen-crypto` and the 0G
//! root compiled to WebAssembly) plus WebCrypto AES-GCM for bulk sealing (`assets/crypto.js`).
//!
//! Must never: hold a secret (no keys, no signer: every transaction is signed by the user's
//! wallet in the page), receive plaintext or keys (the page seals before anything leaves it;
//! uploads are sealed-stream bytes, the relay forwards only file-info and download calls), or
//! serve the orchestrator's public key (the page reads it from the chain through the wallet's
//! own RPC, so a compromised server cannot substitute it).

pub mod args;
pub mod assets;
pub mod error;
pub mod relay;
pub mod server;
pub mod staging;
pub mod testing;

pub use error::{Error, Result};
pub use server::{PublicChain, PublicFlow, RequestTap, Running, WebConfig, start};
