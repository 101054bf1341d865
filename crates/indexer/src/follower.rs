//! The follower: ingests every DataPolicy event from the deployment block into the database.
//!
//! Each step reads up to `batches_per_step` consecutive batches with `eth_getLogs` (address
//! filter), each over an adaptive block range: halved when the provider says the range or
//! result is too large or a batch was heavy, doubled (up to a cap) when a full-size batch was
//! cheap. The next batch is read while the previous one commits. It indexes only blocks at
//! least `confirmations` deep. Before each step it checks that the block under the cursor
//! still has the hash it had when indexed; if not, the chain reorganised: it walks back through
//! the kept block hashes to the newest block still canonical and rewinds the database there
//! (see [`crate::db::Db::rewind`]). A batch is only committed if, after its logs were read, its
//! last block still has the hash read before them and the block under the cursor (the previous
//! batch's last) is still canonical (otherwise the step ends there, reporting
//! [`Error::Inconsistent`] when nothing was committed, and the next step retries). A batch's
//! events, block hashes and the cursor are committed in one transaction, so a restart resumes
//! exactly after the last committed batch. Logs that do not decode as DataPolicy events are
//! skipped with a warning.

use crate::db::{Cursor, Db};
use crate::error::{Error, Result};
use crate::event::{Event, Located};
use crate::source::{BlockRef, ChainSource};
use alloy::primitives::{Address, B256};
use alloy::rpc::types::Log;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::watch;

/// Block headers requested at once when a batch's logs carry no block timestamps.
const HEADER_REQUESTS_IN_FLIGHT: usize = 16;

/// How the follower reads the chain.
#[derive(Debug, Clone)]
pub struct FollowerConfig {
    /// The DataPolicy contract.
    pub contract: Address,
    /// The deployment block (nothing before it is read).
    pub start_block: u64,
    /// Blocks an event must be buried under before it is indexed (0 on the dev chain).
    pub confirmations: u64,
    /// First `eth_getLogs` block range.
    pub initial_range: u64,
    /// Largest block range the follower grows to.
    pub max_range: u64,
    /// A full-size batch with fewer logs than this doubles the range; one with more than four
    /// times this halves it, so batches stay small enough for reads and commits to overlap.
    pub cheap_logs: usize,
    /// Batches one [`Follower::step`] reads and commits at most (one read ahead of each commit).
    pub batches_per_step: usize,
    /// Pause between polls once caught up with the chain.
    pub poll_interval: Duration,
}

impl FollowerConfig {
    /// Defaults for a contract deployed at `start_block`: range 16 growing to 100 000 while
    /// batches are cheap (a sparse history reaches the cap in a dozen requests; a dense one
    /// starts with batches small enough to pipeline), no confirmations (dev chain), 100 ms
    /// polls.
    pub fn new(contract: Address, start_block: u64) -> Self {
        Self {
            contract,
            start_block,
            confirmations: 0,
            initial_range: 16,
            max_range: 100_000,
            cheap_logs: 5000,
            batches_per_step: 8,
            poll_interval: Duration::from_millis(100),
        }
    }
}

/// What one [`Follower::step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Indexed blocks `from..=to`, storing `events` new events.
    Indexed {
        /// First block of the batch.
        from: u64,
        /// Last block of the batch (the new cursor).
        to: u64,
        /// New events stored.
        events: u64,
    },
    /// A reorg was detected; the database was rewound to after block `to` (`None`: to the
    /// start).
    Rewound {
        /// The newest block still canonical.
        to: Option<u64>,
    },
    /// The provider refused the range; the next batch uses `range` blocks.
    Shrunk {
        /// The new range.
        range: u64,
    },
    /// Nothing to index: the cursor is at the confirmed head.
    Idle {
        /// The chain's latest block.
        head: u64,
    },
}

/// Follows one DataPolicy deployment into a [`Db`].
#[derive(Debug)]
pub struct Follower<S> {
    source: S,
    db: Db,
    config: FollowerConfig,
    range: u64,
}

impl<S: ChainSource> Follower<S> {
    /// A follower reading `source` into `db`.
    pub fn new(source: S, db: Db, config: FollowerConfig) -> Self {
        let range = config.initial_range.clamp(1, config.max_range.max(1));
        Self {
            source,
            db,
            config,
            range,
        }
    }

    /// The current `eth_getLogs` block range.
    pub fn range(&self) -> u64 {
        self.range
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Indexes up to [`FollowerConfig::batches_per_step`] consecutive batches of `range` blocks (or handles one
    /// reorg, or shrinks the range once). Each batch is read, checked and committed on its own;
    /// the next batch's `eth_getLogs` is in flight while the previous one commits, so the node's
    /// work and the database's overlap. A batch that fails ends the step after the batches
    /// before it were committed (they are consistent on their own); the next step resumes at
    /// the cursor.
    pub async fn step(&mut self) -> Result<Step> {
        let head = self.source.head().await?;
        let target = head.saturating_sub(self.config.confirmations);
        let cursor = self.db.cursor().await?;
        if let Some(cursor) = cursor {
            let canonical = self.source.block(cursor.number).await?;
            if canonical.map(|b| b.hash) != Some(cursor.hash) {
                return self.rewind(cursor).await;
            }
        }
        let from = cursor.map_or(self.config.start_block, |c| c.number + 1);
        if from > target {
            return Ok(Step::Idle { head });
        }
        let range = self.range;
        let batches = self.config.batches_per_step.max(1);
        let mut spans = Vec::with_capacity(batches);
        let mut next = from;
        while next <= target && spans.len() < batches {
            let to = target.min(next.saturating_add(range - 1));
            spans.push((next, to));
            next = to + 1;
        }
        let source = &self.source;
        let contract = self.config.contract;
        let mut reads = futures_util::stream::iter(spans)
            .map(|(from, to)| async move {
                let reading = std::time::Instant::now();
                let Some(last) = source.block(to).await? else {
                    return Err(Error::Inconsistent(format!(
                        "block {to} vanished while indexing (reorg in progress?)"
                    )));
                };
                let logs = source.logs(contract, from, to).await;
                Ok((from, to, last, logs, reading.elapsed()))
            })
            .buffered(2);
        let mut anchor = cursor;
        let mut new_range = range;
        let mut indexed: Option<(u64, u64, u64)> = None;
        let mut upcoming = reads.next().await;
        while let Some(read) = upcoming.take() {
            let batch = match read {
                Ok((from, to, last, Ok(logs), read)) => (from, to, last, logs, read),
                Ok((from, to, _, Err(e), _)) if e.is_range_limit() && to > from => {
                    let refused = to - from + 1;
                    new_range = (refused / 2).max(1);
                    tracing::warn!(from, to, range = new_range, error = %e, "eth_getLogs range refused; shrinking");
                    if indexed.is_none() {
                        self.range = new_range;
                        return Ok(Step::Shrunk { range: new_range });
                    }
                    break;
                }
                Ok((_, _, _, Err(e), _)) | Err(e) => {
                    if indexed.is_none() {
                        return Err(e);
                    }
                    tracing::warn!(error = %e, "reading a batch failed; the next step retries it");
                    break;
                }
            };
            let (from, to, last, logs, read) = batch;
            let decoding = std::time::Instant::now();
            let fitted = match self.checked(anchor, from, to, last).await {
                Ok(()) => self.decode(&logs, last).await,
                Err(e) => Err(e),
            };
            let (events, blocks) = match fitted {
                Ok(fitted) => fitted,
                Err(e) if indexed.is_some() => {
                    tracing::warn!(error = %e, "a batch did not fit the chain; the next step retries it");
                    break;
                }
                Err(e) => return Err(e),
            };
            let decoded = decoding.elapsed();
            let committing = std::time::Instant::now();
            let batch_cursor = Cursor {
                number: to,
                hash: last.hash,
            };
            let (inserted, after) = tokio::join!(
                self.db.commit_batch(&events, &blocks, batch_cursor),
                reads.next()
            );
            let inserted = inserted?;
            let committed = committing.elapsed();
            upcoming = after;
            anchor = Some(batch_cursor);
            let span = to - from + 1;
            if span == range && logs.len() < self.config.cheap_logs {
                new_range = new_range.saturating_mul(2).min(self.config.max_range);
            } else if span == range && logs.len() > self.config.cheap_logs.saturating_mul(4) {
                new_range = (new_range / 2).max(1);
            }
            tracing::debug!(
                from,
                to,
                events = inserted,
                range = new_range,
                ?read,
                ?decoded,
                ?committed,
                "indexed"
            );
            let (first, _, events) = indexed.unwrap_or((from, to, 0));
            indexed = Some((first, to, events + inserted));
        }
        self.range = new_range;
        let (from, to, events) = indexed.expect("the first batch either returned or was indexed");
        Ok(Step::Indexed { from, to, events })
    }

    /// The logs of blocks `from..=to` belong to `last`'s chain only if that chain did not change
    /// while they were read: `to` must still be `last`, and the cursor must still be canonical
    /// under it.
    async fn checked(
        &self,
        anchor: Option<Cursor>,
        from: u64,
        to: u64,
        last: BlockRef,
    ) -> Result<()> {
        let unchanged = self.source.block(to).await?.map(|b| b.hash) == Some(last.hash);
        let anchored = match anchor {
            Some(c) => self.source.block(c.number).await?.map(|b| b.hash) == Some(c.hash),
            None => true,
        };
        if unchanged && anchored {
            Ok(())
        } else {
            Err(Error::Inconsistent(format!(
                "the chain changed while blocks {from}..={to} were read; retrying"
            )))
        }
    }

    /// Steps until caught up with the confirmed head; returns the new events stored. A step
    /// that saw the chain change under it is retried (up to 10 times in a row).
    pub async fn sync_to_head(&mut self) -> Result<u64> {
        let mut total = 0;
        let mut unsettled = 0;
        loop {
            let step = match self.step().await {
                Err(Error::Inconsistent(why)) if unsettled < 10 => {
                    unsettled += 1;
                    tracing::warn!(%why, "retrying a step");
                    continue;
                }
                other => other?,
            };
            unsettled = 0;
            match step {
                Step::Indexed { events, .. } => total += events,
                Step::Idle { .. } => return Ok(total),
                Step::Rewound { .. } | Step::Shrunk { .. } => {}
            }
        }
    }

    /// Follows the chain until `stop` turns true: steps, sleeping `poll_interval` when caught
    /// up; a failed step is logged and retried after a growing back-off (never fatal).
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut backoff = self.config.poll_interval;
        loop {
            if *stop.borrow() {
                return;
            }
            let pause = match self.step().await {
                Ok(Step::Idle { .. }) => {
                    backoff = self.config.poll_interval;
                    Some(self.config.poll_interval)
                }
                Ok(_) => {
                    backoff = self.config.poll_interval;
                    None
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "indexer step failed");
                    let pause = backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    Some(pause)
                }
            };
            if let Some(pause) = pause {
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }

    async fn rewind(&mut self, cursor: Cursor) -> Result<Step> {
        tracing::warn!(
            block = cursor.number,
            hash = %cursor.hash,
            "indexed block is no longer canonical: chain reorganised"
        );
        for (number, hash) in self.db.recent_blocks().await? {
            if number > cursor.number {
                continue;
            }
            if self.source.block(number).await?.map(|b| b.hash) == Some(hash) {
                self.db.rewind(Some(Cursor { number, hash })).await?;
                tracing::warn!(to = number, "rewound past the reorg");
                return Ok(Step::Rewound { to: Some(number) });
            }
        }
        tracing::warn!(
            start = self.config.start_block,
            "reorg deeper than the kept block hashes: re-indexing from the start"
        );
        self.db.rewind(None).await?;
        Ok(Step::Rewound { to: None })
    }

    /// Decodes a batch's logs; returns the events and the (number, hash) of blocks that had
    /// events. Fails (without writing) when the node's answers do not fit together.
    async fn decode(
        &self,
        logs: &[Log],
        last: BlockRef,
    ) -> Result<(Vec<Located>, Vec<(u64, B256)>)> {
        let mut events = Vec::with_capacity(logs.len());
        let mut blocks: HashMap<u64, (B256, Option<u64>)> = HashMap::new();
        blocks.insert(last.number, (last.hash, Some(last.time)));
        for log in logs {
            let (Some(number), Some(hash), Some(tx_hash), Some(log_index)) = (
                log.block_number,
                log.block_hash,
                log.transaction_hash,
                log.log_index,
            ) else {
                tracing::warn!(?log, "skipping a log without block, transaction or index");
                continue;
            };
            if log.removed || log.address() != self.config.contract {
                tracing::warn!(?log, "skipping a removed or foreign log");
                continue;
            }
            let entry = blocks.entry(number).or_insert((hash, None));
            if entry.0 != hash {
                return Err(Error::Inconsistent(format!(
                    "block {number} reported as {} and {hash} in one batch",
                    entry.0
                )));
            }
            if entry.1.is_none() {
                entry.1 = log.block_timestamp;
            }
            let event = match Event::decode(log.topics(), &log.data().data) {
                Ok(event) => event,
                Err(e) => {
                    tracing::warn!(block = number, log_index, tx = %tx_hash, error = %e, "skipping an undecodable log");
                    continue;
                }
            };
            events.push(Located {
                block_number: number,
                block_hash: hash,
                block_time: 0,
                tx_hash,
                log_index,
                event,
            });
        }
        // Logs without a timestamp (nodes before the `blockTimestamp` log field): the headers
        // of their blocks, several requests in flight instead of one round trip per block.
        let untimed: Vec<u64> = blocks
            .iter()
            .filter(|(_, (_, time))| time.is_none())
            .map(|(number, _)| *number)
            .collect();
        let mut headers = futures_util::stream::iter(untimed)
            .map(|number| async move { (number, self.source.block(number).await) })
            .buffer_unordered(HEADER_REQUESTS_IN_FLIGHT);
        while let Some((number, block)) = headers.next().await {
            let (hash, time) = blocks.get_mut(&number).ok_or_else(|| {
                Error::Corrupt(format!("block {number} fetched but not in the batch"))
            })?;
            match block? {
                Some(b) if b.hash == *hash => *time = Some(b.time),
                _ => {
                    return Err(Error::Inconsistent(format!(
                        "block {number} is no longer {hash} (reorg in progress?)"
                    )));
                }
            }
        }
        for event in &mut events {
            event.block_time = blocks
                .get(&event.block_number)
                .and_then(|(_, time)| *time)
                .unwrap_or_default();
        }
        let hashes = blocks
            .into_iter()
            .filter(|(number, _)| *number != last.number)
            .map(|(number, (hash, _))| (number, hash))
            .collect();
        Ok((events, hashes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Backend;
    use crate::testing::TestDb;
    use alloy::primitives::{Bytes, LogData, U256};
    use alloy::sol_types::SolEvent;
    use licen_chain::bindings::DataPolicy;
    use std::sync::Mutex;

    const CONTRACT: Address = Address::repeat_byte(0xCC);

    fn hash(number: u64) -> B256 {
        B256::from(U256::from(number + 1_000_000))
    }

    /// A scripted chain: blocks 0..=head, logs, and an optional provider range limit.
    struct FakeChain {
        head: u64,
        logs: Vec<Log>,
        max_span: Option<u64>,
        refused: Mutex<u32>,
        /// `eth_getLogs` from this block on fails like a node that went away.
        failing_from: Mutex<Option<u64>>,
    }

    impl FakeChain {
        fn new(head: u64, logs: Vec<Log>) -> Self {
            Self {
                head,
                logs,
                max_span: None,
                refused: Mutex::new(0),
                failing_from: Mutex::new(None),
            }
        }
    }

    fn log(block: u64, index: u64, data: LogData) -> Log {
        Log {
            inner: alloy::primitives::Log {
                address: CONTRACT,
                data,
            },
            block_hash: Some(hash(block)),
            block_number: Some(block),
            block_timestamp: None,
            transaction_hash: Some(B256::repeat_byte(0x77)),
            transaction_index: Some(0),
            log_index: Some(index),
            removed: false,
        }
    }

    fn started(job: u64) -> LogData {
        DataPolicy::JobStarted {
            jobId: U256::from(job),
            runDeadline: 5,
        }
        .encode_log_data()
    }

    impl ChainSource for FakeChain {
        async fn head(&self) -> Result<u64> {
            Ok(self.head)
        }

        async fn block(&self, number: u64) -> Result<Option<BlockRef>> {
            Ok((number <= self.head).then(|| BlockRef {
                number,
                hash: hash(number),
                parent_hash: hash(number.wrapping_sub(1)),
                time: 1000 + number,
            }))
        }

        async fn logs(&self, address: Address, from: u64, to: u64) -> Result<Vec<Log>> {
            if self.failing_from.lock().unwrap().is_some_and(|b| from >= b) {
                return Err(Error::Rpc {
                    action: format!("eth_getLogs {from}..={to}"),
                    message: "connection reset".into(),
                });
            }
            if self.max_span.is_some_and(|max| to - from + 1 > max) {
                *self.refused.lock().unwrap() += 1;
                return Err(Error::Rpc {
                    action: format!("eth_getLogs {from}..={to}"),
                    message: "query exceeds max block range 10".into(),
                });
            }
            Ok(self
                .logs
                .iter()
                .filter(|l| l.address() == address)
                .filter(|l| (from..=to).contains(&l.block_number.unwrap_or(u64::MAX)))
                .cloned()
                .collect())
        }
    }

    /// A fresh database on `backend`, or `None` when the backend is not available here.
    async fn db(backend: Backend) -> Option<(TestDb, Db)> {
        let store = TestDb::create(backend).await.unwrap()?;
        let db = store.open().await;
        Some((store, db))
    }

    crate::backend_tests!(
        range_shrinks_on_provider_limits_and_still_indexes_everything,
        range_grows_when_batches_are_cheap,
        heavy_batches_halve_the_range,
        a_step_keeps_the_batches_committed_before_one_failed,
        unknown_and_malformed_logs_are_skipped,
        confirmations_hold_back_recent_blocks,
        a_batch_committed_twice_is_stored_once,
        a_reorg_deeper_than_the_kept_hashes_reindexes_from_the_start,
        rewinds_use_the_undo_log_when_it_covers_them_and_replay_otherwise,
    );

    fn config(initial: u64, max: u64) -> FollowerConfig {
        let mut c = FollowerConfig::new(CONTRACT, 1);
        c.initial_range = initial;
        c.max_range = max;
        c
    }

    async fn range_shrinks_on_provider_limits_and_still_indexes_everything(backend: Backend) {
        let logs = (1..=100)
            .step_by(7)
            .map(|b| log(b, 0, started(b)))
            .collect::<Vec<_>>();
        let expected = logs.len() as u64;
        let mut chain = FakeChain::new(100, logs);
        chain.max_span = Some(10);
        let Some((_store, db)) = db(backend).await else {
            return;
        };
        let mut f = Follower::new(chain, db.clone(), config(64, 64));
        assert_eq!(f.sync_to_head().await.unwrap(), expected);
        assert_eq!(db.event_count().await.unwrap(), expected);
        assert_eq!(db.cursor().await.unwrap().unwrap().number, 100);
        assert!(*f.source.refused.lock().unwrap() >= 3);
    }

    async fn range_grows_when_batches_are_cheap(backend: Backend) {
        let Some((_store, db)) = db(backend).await else {
            return;
        };
        let mut f = Follower::new(FakeChain::new(1000, vec![]), db, config(2, 256));
        f.sync_to_head().await.unwrap();
        assert_eq!(f.range(), 256);
    }

    async fn heavy_batches_halve_the_range(backend: Backend) {
        // 30 logs in each of blocks 1..=40; with `cheap_logs` 5 a full 16-block batch is heavy
        let logs = (1..=40)
            .flat_map(|b| (0..30).map(move |i| log(b, i, started(b * 100 + i))))
            .collect::<Vec<_>>();
        let Some((_store, db)) = db(backend).await else {
            return;
        };
        let mut c = config(16, 64);
        c.cheap_logs = 5;
        let mut f = Follower::new(FakeChain::new(40, logs), db.clone(), c);
        assert_eq!(f.sync_to_head().await.unwrap(), 40 * 30);
        assert!(f.range() < 16, "range stayed {}", f.range());
        assert_eq!(db.event_count().await.unwrap(), 40 * 30);
    }

    async fn a_step_keeps_the_batches_committed_before_one_failed(backend: Backend) {
        let logs = (1..=40).map(|b| log(b, 0, started(b))).collect::<Vec<_>>();
        let Some((_store, db)) = db(backend).await else {
            return;
        };
        let mut f = Follower::new(FakeChain::new(40, logs), db.clone(), config(5, 5));
        *f.source.failing_from.lock().unwrap() = Some(21);
        // batches 1..=5 .. 16..=20 commit; the read of 21..=25 fails and ends the step there
        assert_eq!(
            f.step().await.unwrap(),
            Step::Indexed {
                from: 1,
                to: 20,
                events: 20
            }
        );
        assert_eq!(db.cursor().await.unwrap().unwrap().number, 20);
        // the next step starts at the failing batch and reports its error
        assert!(matches!(f.step().await, Err(Error::Rpc { .. })));
        *f.source.failing_from.lock().unwrap() = None;
        assert_eq!(f.sync_to_head().await.unwrap(), 20);
        assert_eq!(db.event_count().await.unwrap(), 40);
    }

    async fn unknown_and_malformed_logs_are_skipped(backend: Backend) {
        let unknown = LogData::new_unchecked(vec![B256::repeat_byte(0xAB)], Bytes::new());
        let truncated = LogData::new_unchecked(
            vec![DataPolicy::JobStarted::SIGNATURE_HASH, B256::ZERO],
            Bytes::from_static(&[1, 2, 3]),
        );
        let mut without_index = log(6, 0, started(6));
        without_index.log_index = None;
        let logs = vec![
            log(3, 0, started(3)),
            log(4, 0, unknown),
            log(4, 1, truncated),
            without_index,
            log(7, 2, started(7)),
        ];
        let Some((_store, db)) = db(backend).await else {
            return;
        };
        let mut f = Follower::new(FakeChain::new(10, logs), db.clone(), config(3, 3));
        assert_eq!(f.sync_to_head().await.unwrap(), 2);
        assert_eq!(db.cursor().await.unwrap().unwrap().number, 10);
        let times: Vec<i64> =
            sqlx::query_scalar("SELECT block_time FROM events ORDER BY block_number")
                .fetch_all(db.pool())
                .await
                .unwrap();
        assert_eq!(times, [1003, 1007], "block times come from the headers");
    }

    async fn confirmations_hold_back_recent_blocks(backend: Backend) {
        let logs = vec![log(14, 0, started(1)), log(16, 0, started(2))];
        let Some((_store, db)) = db(backend).await else {
            return;
        };
        let mut c = config(100, 100);
        c.confirmations = 5;
        let mut f = Follower::new(FakeChain::new(20, logs), db.clone(), c);
        assert_eq!(f.sync_to_head().await.unwrap(), 1);
        assert_eq!(db.cursor().await.unwrap().unwrap().number, 15);
        assert!(matches!(f.step().await.unwrap(), Step::Idle { head: 20 }));
    }

    async fn a_batch_committed_twice_is_stored_once(backend: Backend) {
        let Some((_store, db)) = db(backend).await else {
            return;
        };
        let event = Located {
            block_number: 3,
            block_hash: hash(3),
            block_time: 9,
            tx_hash: B256::repeat_byte(1),
            log_index: 0,
            event: Event::JobStarted {
                job_id: 1,
                run_deadline: 2,
            },
        };
        let cursor = Cursor {
            number: 3,
            hash: hash(3),
        };
        let batch = [event.clone(), event];
        assert_eq!(db.commit_batch(&batch, &[], cursor).await.unwrap(), 1);
        assert_eq!(db.commit_batch(&batch, &[], cursor).await.unwrap(), 0);
        assert_eq!(db.event_count().await.unwrap(), 1);
    }

    async fn a_reorg_deeper_than_the_kept_hashes_reindexes_from_the_start(backend: Backend) {
        let Some((_store, db)) = db(backend).await else {
            return;
        };
        let mut f = Follower::new(
            FakeChain::new(10, vec![log(5, 0, started(1))]),
            db.clone(),
            config(100, 100),
        );
        f.sync_to_head().await.unwrap();
        // the database believes in a different history than the chain
        sqlx::query("UPDATE blocks SET hash = $1")
            .bind(crate::event::hex_b256(&B256::repeat_byte(0xEE)))
            .execute(db.pool())
            .await
            .unwrap();
        sqlx::query("UPDATE cursor SET block_hash = $1")
            .bind(crate::event::hex_b256(&B256::repeat_byte(0xEE)))
            .execute(db.pool())
            .await
            .unwrap();
        assert_eq!(f.step().await.unwrap(), Step::Rewound { to: None });
        assert_eq!(db.event_count().await.unwrap(), 0);
        assert_eq!(f.sync_to_head().await.unwrap(), 1);
    }

    async fn count(db: &Db, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(db.pool())
            .await
            .unwrap()
    }

    async fn rewinds_use_the_undo_log_when_it_covers_them_and_replay_otherwise(backend: Backend) {
        let logs = (1..=200).map(|b| log(b, 0, started(b))).collect::<Vec<_>>();
        let Some((_store, db)) = db(backend).await else {
            return;
        };
        let mut f = Follower::new(FakeChain::new(200, logs), db.clone(), config(1, 1));
        f.sync_to_head().await.unwrap();
        assert_eq!(count(&db, "job_transitions").await, 200);
        assert_eq!(count(&db, "batches").await, crate::db::UNDO_BATCHES);

        // within the log: undone batch by batch, the cursor at a batch boundary
        db.rewind(Some(Cursor {
            number: 150,
            hash: hash(150),
        }))
        .await
        .unwrap();
        assert_eq!(db.cursor().await.unwrap().unwrap().number, 150);
        assert_eq!(count(&db, "job_transitions").await, 150);
        assert_eq!(count(&db, "events").await, 150);

        // beyond it: replayed from the events
        db.rewind(Some(Cursor {
            number: 10,
            hash: hash(10),
        }))
        .await
        .unwrap();
        assert_eq!(db.cursor().await.unwrap().unwrap().number, 10);
        assert_eq!(count(&db, "job_transitions").await, 10);
        assert_eq!(count(&db, "batches").await, 0);

        f.sync_to_head().await.unwrap();
        assert_eq!(count(&db, "job_transitions").await, 200);
        assert_eq!(count(&db, "events").await, 200);
    }
}
