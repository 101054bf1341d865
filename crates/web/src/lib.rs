//! `licen-web`: the marketplace web app.
//!
//! Owns the HTTP server the browser talks to ([`server`]): the pages and their static assets
//! (embedded in the binary, [`assets`]), a read-only proxy of the indexer's query API and live
//! stream, and a relay of zgs JSON-RPC segment uploads/downloads to the storage node
//! ([`relay`]). The in-page crypto is `crates/wasm` (`licen-crypto` and the 0G root compiled to
//! WebAssembly) plus WebCrypto AES-GCM for bulk sealing (`assets/crypto.js`).
//!
//! Must never: hold a secret (no keys, no signer: every transaction is signed by the user's
//! wallet in the page), receive plaintext or keys (the page seals before anything leaves it;
//! the relay forwards only the zgs methods that carry ciphertext segments and file info), or
//! serve the orchestrator's public key (the page reads it from the chain through the wallet's
//! own RPC, so a compromised server cannot substitute it).

pub mod args;
pub mod assets;
pub mod error;
pub mod relay;
pub mod server;
pub mod testing;

pub use error::{Error, Result};
pub use server::{PublicChain, RequestTap, Running, WebConfig, start};
