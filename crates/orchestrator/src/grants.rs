//! Where the orchestrator learns of new grants.
//!
//! [`GrantSource::Indexer`] (the default, DESIGN §2 step 6) reads the indexer's live stream
//! (`GET /stream`, Server-Sent Events) and records every `AccessGranted` in the ledger together
//! with the stream position, in one transaction. A (re)connection replays from the ledger's
//! cursor block *inclusive*: recording is idempotent, so a crash between two grants of one block
//! loses nothing. A `reorg` notice moves the cursor back; the stream then re-sends the new
//! branch. [`GrantSource::Chain`] reads `AccessGranted` logs straight from the chain (for a
//! deployment without an indexer).
//!
//! Before every connection it checks that the indexer holds this orchestrator's deployment
//! (contract and chain id, `GET /health`); [`crate::Orchestrator::start`] refuses to start
//! with an indexer of another one.
//!
//! Must never: act on a grant. Grants only enter the ledger; the job driver re-reads every job
//! on-chain before it does anything, so a wrong or stale indexer can delay or hide a job, never
//! make the orchestrator start, settle or release a key for one the chain does not hold.

use crate::ledger::Ledger;
use crate::{Error, Result};
use alloy::primitives::Address;
use licen_chain::Grant;
use licen_indexer::{Deployment, check_follows};
use licen_types::{DatasetRoot, JobId};
use serde::Deserialize;
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// Where grants come from.
#[derive(Debug, Clone)]
pub enum GrantSource {
    /// The indexer's query API at this base URL (its live stream).
    Indexer {
        /// Base URL of the indexer API (`http://127.0.0.1:8080`).
        url: String,
    },
    /// `AccessGranted` logs read from the chain RPC directly.
    Chain,
}

/// The `data` of one streamed event (the indexer's `StreamedEvent`, the fields used here).
#[derive(Debug, Deserialize)]
struct StreamedEvent {
    block: u64,
    event: serde_json::Value,
}

/// The `data` of a `reorg` message.
#[derive(Debug, Deserialize)]
struct ReorgNotice {
    rewound_to: i64,
}

/// `AccessGranted` as the indexer serialises it.
#[derive(Debug, Deserialize)]
struct AccessGranted {
    job_id: u64,
    dataset_root: String,
    researcher: String,
    epochs: u16,
    purpose: u8,
    result_key: String,
    escrow: String,
    expires_at: u64,
}

impl AccessGranted {
    fn into_grant(self, block: u64) -> Option<Grant> {
        let mut result_key = [0u8; 32];
        hex::decode_to_slice(self.result_key.trim_start_matches("0x"), &mut result_key).ok()?;
        Some(Grant {
            job: JobId(self.job_id),
            dataset: self.dataset_root.parse::<DatasetRoot>().ok()?,
            researcher: self.researcher.parse::<Address>().ok()?,
            epochs: self.epochs,
            purpose: self.purpose,
            result_key,
            escrow: self.escrow.parse().ok()?,
            expires_at: self.expires_at,
            block,
        })
    }
}

/// Which indexer to follow, for which deployment.
#[derive(Debug, Clone)]
pub(crate) struct IndexerFeed {
    /// The indexer's API base URL.
    pub(crate) url: String,
    /// The deployment it must index.
    pub(crate) deployment: Deployment,
    /// The orchestrator's chain RPC (the indexer's anchor block is checked against it).
    pub(crate) chain_rpc: String,
    /// Where to start when the ledger has no cursor yet.
    pub(crate) start_block: u64,
}

/// Follows the indexer's stream until `stop`, recording grants and waking `wake` after each.
/// Reconnects (after `retry`) whenever the stream breaks.
pub(crate) async fn follow_indexer(
    ledger: Ledger,
    feed: IndexerFeed,
    wake: std::sync::Arc<Notify>,
    mut stop: watch::Receiver<bool>,
    retry: Duration,
) {
    let http = reqwest::Client::new();
    loop {
        let outcome = tokio::select! {
            outcome = stream_once(&http, &ledger, &feed, &wake) => outcome,
            _ = stop.changed() => return,
        };
        if let Err(e) = outcome {
            tracing::warn!(indexer = %feed.url, error = %e, "following grants through the indexer failed; reconnecting");
        }
        tokio::select! {
            () = tokio::time::sleep(retry) => {}
            _ = stop.changed() => return,
        }
    }
}

/// One connection: replays from the cursor block and follows until the stream ends or fails.
async fn stream_once(
    http: &reqwest::Client,
    ledger: &Ledger,
    feed: &IndexerFeed,
    wake: &Notify,
) -> Result<()> {
    let url = feed.url.as_str();
    // Checked on every connection: the URL may now reach another indexer than at start.
    check_follows(http, url, feed.deployment, Some(&feed.chain_rpc))
        .await
        .map_err(|e| Error::Indexer(e.to_string()))?;
    let from = ledger.cursor().await?.unwrap_or(feed.start_block);
    let unreachable = |e: reqwest::Error| Error::Indexer(format!("{url}/stream: {e}"));
    let mut response = http
        .get(format!(
            "{}/stream?from_block={from}",
            url.trim_end_matches('/')
        ))
        .send()
        .await
        .map_err(unreachable)?;
    if !response.status().is_success() {
        return Err(Error::Indexer(format!(
            "{url}/stream answered HTTP {}",
            response.status()
        )));
    }
    let mut buffer = String::new();
    while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        // Messages end with a blank line; a partial message waits for the next chunk.
        while let Some(end) = buffer.find("\n\n") {
            let message: String = buffer.drain(..end + 2).collect();
            handle_message(ledger, &message, wake).await?;
        }
    }
    Err(Error::Indexer(format!("{url}/stream ended")))
}

async fn handle_message(ledger: &Ledger, message: &str, wake: &Notify) -> Result<()> {
    let mut name = "message";
    let mut data = String::new();
    for line in message.lines() {
        if let Some(value) = line.strip_prefix("event:") {
            name = value.trim();
        } else if let Some(value) = line.strip_prefix("data:") {
            data.push_str(value.strip_prefix(' ').unwrap_or(value));
        }
    }
    if data.is_empty() {
        return Ok(()); // keep-alive comment
    }
    match name {
        "reorg" => {
            let notice: ReorgNotice = serde_json::from_str(&data)
                .map_err(|e| Error::Indexer(format!("unreadable reorg notice: {e}")))?;
            tracing::warn!(
                rewound_to = notice.rewound_to,
                "the indexer rewound a reorg; re-reading grants from there"
            );
            ledger
                .rewind_cursor(u64::try_from(notice.rewound_to.max(0)).unwrap_or(0))
                .await?;
        }
        "AccessGranted" => {
            let event: StreamedEvent = serde_json::from_str(&data)
                .map_err(|e| Error::Indexer(format!("unreadable stream event: {e}")))?;
            let block = event.block;
            match serde_json::from_value::<AccessGranted>(event.event)
                .ok()
                .and_then(|g| g.into_grant(block))
            {
                Some(grant) => {
                    tracing::info!(job = %grant.job, dataset = %grant.dataset, block, "grant announced by the indexer");
                    ledger.record_grants(&[grant], block).await?;
                    wake.notify_one();
                }
                None => tracing::warn!(
                    block,
                    "skipping an unreadable AccessGranted from the indexer"
                ),
            }
        }
        _ => {
            // Any other event still moves the cursor, so a reconnection replays little.
            if let Ok(event) = serde_json::from_str::<StreamedEvent>(&data) {
                ledger.record_grants(&[], event.block).await?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stream_messages_record_grants_move_the_cursor_and_rewind_on_reorg() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("ledger.sqlite"))
            .await
            .unwrap();
        let wake = Notify::new();
        let grant = format!(
            "event: AccessGranted\nid: 12-0\ndata: {}\n\n",
            serde_json::json!({
                "block": 12, "log_index": 0, "time": 1, "tx": "0x00",
                "event": {
                    "event": "AccessGranted", "job_id": 7,
                    "dataset_root": format!("0x{}", "ab".repeat(32)),
                    "researcher": format!("0x{}", "11".repeat(20)),
                    "epochs": 2, "purpose": 1,
                    "result_key": format!("0x{}", "cd".repeat(32)),
                    "price_per_epoch": "5", "escrow": "10", "expires_at": 99
                }
            })
        );
        handle_message(&ledger, &grant, &wake).await.unwrap();
        // Replaying the same message (a reconnection) records nothing twice.
        handle_message(&ledger, &grant, &wake).await.unwrap();
        let rows = ledger.unfinished().await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].job, JobId(7));
        assert_eq!(rows[0].epochs, 2);
        assert_eq!(rows[0].result_key, [0xcd; 32]);
        assert_eq!(ledger.cursor().await.unwrap(), Some(12));

        let later = "event: JobStarted\ndata: {\"block\":20,\"log_index\":1,\"time\":2,\"tx\":\"0x01\",\"event\":{\"event\":\"JobStarted\",\"job_id\":7,\"run_deadline\":5}}\n\n";
        handle_message(&ledger, later, &wake).await.unwrap();
        assert_eq!(ledger.cursor().await.unwrap(), Some(20));
        handle_message(&ledger, ": keep-alive\n\n", &wake)
            .await
            .unwrap();
        handle_message(
            &ledger,
            "event: reorg\ndata: {\"rewound_to\":15,\"removed_events\":1}\n\n",
            &wake,
        )
        .await
        .unwrap();
        assert_eq!(ledger.cursor().await.unwrap(), Some(15));
        assert!(
            handle_message(&ledger, "event: reorg\ndata: nonsense\n\n", &wake)
                .await
                .is_err()
        );
    }
}
