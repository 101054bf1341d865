//! What a service reading an indexer checks first: that it indexes the same deployment.
//!
//! An indexer of another DataPolicy contract, or of the same address on another chain (every
//! fresh anvil deploys to the same address), would show datasets and grants the reader's chain
//! does not hold: the marketplace would offer datasets a request then fails on, and the
//! orchestrator would chase grants that do not exist. [`check_follows`] asks `GET /health` and
//! compares.

use crate::api::Health;
use crate::db::Deployment;

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
}

/// Checks that the indexer at `url` (its API base URL) indexes `expected`.
pub async fn check_follows(
    http: &reqwest::Client,
    url: &str,
    expected: Deployment,
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
    if indexed == expected {
        Ok(())
    } else {
        Err(FollowsError::Other {
            url: url.to_owned(),
            indexed,
            expected,
        })
    }
}
