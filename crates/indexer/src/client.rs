//! What a service reading an indexer checks first: that it indexes the same deployment.
//!
//! An indexer of another DataPolicy contract, or of the same address on another chain (every
//! fresh anvil deploys to the same address), would show datasets and grants the reader's chain
//! does not hold: the marketplace would offer datasets a request then fails on, and the
//! orchestrator would chase grants that do not exist. [`check_follows`] asks `GET /health` and
//! compares; given the reader's chain RPC it also compares the indexer's anchor block hash with
//! that chain's, which tells a replaced chain (a dev chain started afresh: same id, same
//! contract address) from the one the indexer holds.

use crate::api::Health;
use crate::db::Deployment;
use alloy::primitives::B256;

/// Why an indexer cannot be used for a deployment.
#[derive(Debug, thiserror::Error)]
pub enum FollowsError {
    /// It did not answer, or not with a health report: it may still be starting.
    #[error("the indexer at {url} did not answer `GET /health`: {reason}")]
    Unreachable {
        /// The indexer's base URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// It names no deployment: it has not started following a chain (or predates the check).
    #[error(
        "the indexer at {url} does not say which deployment it indexes (it has not started \
         following a chain yet, or is older than this program): start it with `licen indexer`"
    )]
    Unnamed {
        /// The indexer's base URL.
        url: String,
    },
    /// It indexes another deployment.
    #[error(
        "the indexer at {url} indexes DataPolicy {} on chain {}, not {} on chain {}: point this \
         at an indexer of that deployment (`licen indexer --contract {}`)",
        indexed.contract, indexed.chain_id, expected.contract, expected.chain_id, expected.contract
    )]
    Other {
        /// The indexer's base URL.
        url: String,
        /// What it indexes.
        indexed: Deployment,
        /// The deployment the caller serves.
        expected: Deployment,
    },
    /// It indexes this deployment's id and address, but on a chain that was replaced.
    #[error(
        "the indexer at {url} indexes a chain whose block {block} was {indexed}, but the chain at \
         {rpc} has {} there: the indexer holds a chain that was replaced (a dev chain started \
         afresh?); restart it on a fresh database",
        here.map_or_else(|| "no such block".to_owned(), |h| h.to_string())
    )]
    Replaced {
        /// The indexer's base URL.
        url: String,
        /// The chain RPC the caller uses.
        rpc: String,
        /// The indexer's anchor block.
        block: u64,
        /// Its hash on the indexed chain.
        indexed: B256,
        /// Its hash on the caller's chain.
        here: Option<B256>,
    },
}

/// Checks that the indexer at `url` (its API base URL) indexes `expected`, and, given the
/// caller's chain RPC (`chain_rpc`), that it indexes that very chain (its anchor block hash).
pub async fn check_follows(
    http: &reqwest::Client,
    url: &str,
    expected: Deployment,
    chain_rpc: Option<&str>,
) -> Result<(), FollowsError> {
    let unreachable = |reason: String| FollowsError::Unreachable {
        url: url.to_owned(),
        reason,
    };
    let response = http
        .get(format!("{}/health", url.trim_end_matches('/')))
        // An indexer that takes the connection but never answers must not hold its reader up.
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    if !response.status().is_success() {
        return Err(unreachable(format!("HTTP {}", response.status())));
    }
    let health: Health = response
        .json()
        .await
        .map_err(|e| unreachable(format!("not a health report: {e}")))?;
    let (Some(chain_id), Some(contract)) = (health.chain_id, health.contract) else {
        return Err(FollowsError::Unnamed {
            url: url.to_owned(),
        });
    };
    let indexed = Deployment { chain_id, contract };
    if indexed != expected {
        return Err(FollowsError::Other {
            url: url.to_owned(),
            indexed,
            expected,
        });
    }
    let (Some(rpc), Some(block), Some(indexed)) =
        (chain_rpc, health.anchor_block, health.anchor_hash)
    else {
        return Ok(());
    };
    // Hosted RPC URLs carry API keys in their path: messages name the origin only.
    let shown = crate::runner::origin(rpc);
    let here = block_hash(http, rpc, block)
        .await
        .map_err(|reason| FollowsError::Unreachable {
            url: shown.clone(),
            reason: format!(
                "asking the chain for block {block}: {}",
                reason.replace(rpc, &shown)
            ),
        })?;
    if here == Some(indexed) {
        Ok(())
    } else {
        Err(FollowsError::Replaced {
            url: url.to_owned(),
            rpc: shown,
            block,
            indexed,
            here,
        })
    }
}

/// The hash of block `number` on the chain at `rpc` (`None`: no such block).
async fn block_hash(
    http: &reqwest::Client,
    rpc: &str,
    number: u64,
) -> Result<Option<B256>, String> {
    let answer: serde_json::Value = http
        .post(rpc)
        .timeout(std::time::Duration::from_secs(5))
        .json(&serde_json::json!({
            "jsonrpc": "2.0",
            "id": 1,
            "method": "eth_getBlockByNumber",
            "params": [format!("0x{number:x}"), false],
        }))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    if let Some(error) = answer.get("error") {
        return Err(error.to_string());
    }
    match &answer["result"] {
        serde_json::Value::Null => Ok(None),
        block => block["hash"]
            .as_str()
            .and_then(|h| h.parse().ok())
            .map(Some)
            .ok_or_else(|| format!("no block hash in {block}")),
    }
}
