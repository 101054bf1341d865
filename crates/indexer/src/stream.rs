//! The live stream (`GET /stream`, Server-Sent Events) of dataset changes and job transitions
//! for the marketplace.
//!
//! Each SSE message is one stored event: `event:` is its Solidity name (`DatasetPublished`,
//! `AccessGranted`, `JobStarted`, …), `id:` its position `block-logIndex`, `data:` a JSON object
//! with `block`, `log_index`, `time`, `tx` and the decoded `event`. When the indexer rewinds a
//! reorg the stream sends `event: reorg` with `{"rewound_to": block, "removed_events": n}` and
//! then continues with the events of the new branch, so a client that applies messages in order
//! stays correct. The stream reads the database (not the follower's memory), so it works
//! whether or not the follower runs in the same process. A reconnecting `EventSource` resumes
//! after its `Last-Event-ID`; `?from_block=N` replays from block N; otherwise only new events
//! are sent.

use crate::db::{Db, to_i64, to_u64};
use crate::error::Result;
use crate::event::Event;
use axum::response::sse;
use futures_util::Stream;
use serde::Serialize;
use sqlx::Row;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

/// Events the stream carries: dataset changes and job transitions.
pub const STREAMED: &[&str] = &[
    "DatasetPublished",
    "PolicyUpdated",
    "DatasetPaused",
    "DatasetResumed",
    "EnvelopeRotated",
    "AccessGranted",
    "JobStarted",
    "JobCompleted",
    "JobFailed",
    "JobExpired",
    "JobReclaimed",
];

/// The `data` of one streamed event.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct StreamedEvent {
    /// Block number.
    pub block: u64,
    /// Log index in the block.
    pub log_index: u64,
    /// Block time.
    pub time: u64,
    /// Transaction hash.
    pub tx: String,
    /// The decoded event.
    pub event: Event,
}

/// The `data` of a `reorg` message.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ReorgNotice {
    /// Events after this block were undone (-1: everything).
    pub rewound_to: i64,
    /// How many stored events were removed.
    pub removed_events: u64,
}

/// Where a stream starts.
#[derive(Debug, Clone, Copy)]
pub enum From {
    /// Every event from this block on.
    Block(u64),
    /// After this (block, log index).
    After(u64, u64),
    /// Only events stored from now on.
    Now,
}

struct State {
    db: Db,
    position: (i64, i64),
    reorg_id: i64,
    pending: VecDeque<sse::Event>,
    poll: Duration,
}

async fn end_position(db: &Db) -> Result<(i64, i64)> {
    let row = sqlx::query(
        "SELECT block_number, log_index FROM events ORDER BY block_number DESC, log_index DESC LIMIT 1",
    )
    .fetch_optional(db.pool())
    .await?;
    Ok(match row {
        Some(r) => (r.try_get(0)?, r.try_get(1)?),
        None => (-1, -1),
    })
}

async fn last_reorg(db: &Db) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM reorgs")
            .fetch_one(db.pool())
            .await?,
    )
}

impl State {
    /// Loads what happened since the last poll into `pending`.
    async fn poll(&mut self) -> Result<()> {
        let reorgs = sqlx::query(
            "SELECT id, rewound_to, removed_events FROM reorgs WHERE id > $1 ORDER BY id",
        )
        .bind(self.reorg_id)
        .fetch_all(self.db.pool())
        .await?;
        for r in reorgs {
            self.reorg_id = r.try_get("id")?;
            let notice = ReorgNotice {
                rewound_to: r.try_get("rewound_to")?,
                removed_events: to_u64(r.try_get("removed_events")?),
            };
            if self.position.0 > notice.rewound_to {
                self.position = (notice.rewound_to, i64::MAX);
            }
            self.pending.push_back(
                sse::Event::default()
                    .event("reorg")
                    .json_data(&notice)
                    .unwrap_or_default(),
            );
        }
        let names = STREAMED
            .iter()
            .map(|n| format!("'{n}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(&format!(
            "SELECT block_number, log_index, block_time, tx_hash, data FROM events \
             WHERE (block_number > $1 OR (block_number = $1 AND log_index > $2)) AND name IN ({names}) \
             ORDER BY block_number, log_index LIMIT 500"
        ))
        .bind(self.position.0)
        .bind(self.position.1)
        .fetch_all(self.db.pool())
        .await?;
        for r in rows {
            let (block, log_index): (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
            self.position = (block, log_index);
            let data: String = r.try_get("data")?;
            let Ok(event) = serde_json::from_str::<Event>(&data) else {
                tracing::warn!(
                    block,
                    log_index,
                    "unreadable stored event skipped by the stream"
                );
                continue;
            };
            let name = event.name();
            let body = StreamedEvent {
                block: to_u64(block),
                log_index: to_u64(log_index),
                time: to_u64(r.try_get("block_time")?),
                tx: r.try_get("tx_hash")?,
                event,
            };
            self.pending.push_back(
                sse::Event::default()
                    .event(name)
                    .id(format!("{block}-{log_index}"))
                    .json_data(&body)
                    .unwrap_or_default(),
            );
        }
        Ok(())
    }
}

/// Parses a `Last-Event-ID` (`block-logIndex`).
pub fn parse_event_id(id: &str) -> Option<(u64, u64)> {
    let (block, index) = id.split_once('-')?;
    Some((block.parse().ok()?, index.parse().ok()?))
}

/// The SSE stream from `from`, polling the database every `poll`.
pub async fn events(
    db: Db,
    from: From,
    poll: Duration,
) -> Result<impl Stream<Item = std::result::Result<sse::Event, Infallible>>> {
    let position = match from {
        From::Block(block) => (to_i64(block) - 1, i64::MAX),
        From::After(block, index) => (to_i64(block), to_i64(index)),
        From::Now => end_position(&db).await?,
    };
    let reorg_id = last_reorg(&db).await?;
    let state = State {
        db,
        position,
        reorg_id,
        pending: VecDeque::new(),
        poll,
    };
    Ok(futures_util::stream::unfold(
        state,
        |mut state| async move {
            loop {
                if let Some(event) = state.pending.pop_front() {
                    return Some((Ok(event), state));
                }
                if let Err(e) = state.poll().await {
                    tracing::warn!(error = %e, "live stream poll failed");
                }
                if state.pending.is_empty() {
                    tokio::time::sleep(state.poll).await;
                }
            }
        },
    ))
}
