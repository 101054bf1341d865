//! The indexer's database: schema, the persisted cursor, atomic batch commits, rewinds after a
//! reorg, and the derived tables (datasets, jobs, transitions, withdrawals, orchestrators,
//! protocol settings) computed from the raw `events` table.
//!
//! Every batch (its events, their derived rows, the block hashes and the cursor) is written in
//! ONE transaction, so a crash leaves either all of a batch or none of it. Events are keyed by
//! `(block_hash, log_index)` and inserted with `ON CONFLICT DO NOTHING`; derived rows are only
//! touched for events that were actually inserted, so nothing is applied twice. A rewind deletes
//! the events of removed blocks and recomputes every derived table from the remaining events:
//! simple and obviously correct (its cost grows with history; see the crate docs).
//!
//! SQLite only in this slice; the SQL is written to run unchanged on Postgres (`$N`
//! parameters, `ON CONFLICT`, no SQLite-only types).

use crate::error::{Error, Result};
use crate::event::{Event, Located, hex_b256};
use alloy::primitives::B256;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqliteConnection, SqlitePool};
use std::path::Path;
use std::time::Duration;

const SCHEMA: &str = include_str!("schema.sql");

/// How many recent block hashes are kept for reorg detection.
pub const KEPT_BLOCK_HASHES: i64 = 64;

/// The last fully indexed block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// Block number.
    pub number: u64,
    /// Its hash when it was indexed.
    pub hash: B256,
}

/// The indexer database (a pool; cheap to clone).
#[derive(Debug, Clone)]
pub struct Db {
    pool: SqlitePool,
}

pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn parse_b256(s: &str) -> Result<B256> {
    s.parse()
        .map_err(|e| Error::Corrupt(format!("`{s}` is not a 32-byte hex hash: {e}")))
}

/// Zero-padded decimal so that text order is numeric order (uint128 has at most 39 digits).
pub(crate) fn price_sort_key(price: &str) -> String {
    format!("{price:0>40}")
}

impl Db {
    /// Opens (creating if needed) the SQLite database at `path` in WAL mode and applies the
    /// schema.
    pub async fn open(path: &Path) -> Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| Error::Io {
                context: format!("creating the indexer data dir {}", parent.display()),
                source,
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(false);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::raw_sql(SCHEMA).execute(&pool).await?;
        Ok(Self { pool })
    }

    /// The connection pool (for queries).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes the pool, waiting for connections to finish (checkpoints the WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Where the follower stopped, if it ever indexed a batch.
    pub async fn cursor(&self) -> Result<Option<Cursor>> {
        let row = sqlx::query("SELECT block_number, block_hash FROM cursor WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(Cursor {
                number: to_u64(r.try_get("block_number")?),
                hash: parse_b256(&r.try_get::<String, _>("block_hash")?)?,
            })
        })
        .transpose()
    }

    /// The kept recent block hashes, newest first.
    pub async fn recent_blocks(&self) -> Result<Vec<(u64, B256)>> {
        let rows = sqlx::query("SELECT number, hash FROM blocks ORDER BY number DESC")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    to_u64(r.try_get("number")?),
                    parse_b256(&r.try_get::<String, _>("hash")?)?,
                ))
            })
            .collect()
    }

    /// Number of stored events.
    pub async fn event_count(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(to_u64(n))
    }

    /// Writes one batch atomically: its events (ignoring any already stored), their derived
    /// rows, the block hashes seen, and the new cursor. Returns how many events were new.
    pub async fn commit_batch(
        &self,
        events: &[Located],
        blocks: &[(u64, B256)],
        cursor: Cursor,
    ) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let mut inserted = 0;
        for located in events {
            let data = serde_json::to_string(&located.event)
                .map_err(|e| Error::Corrupt(format!("serializing an event: {e}")))?;
            let result = sqlx::query(
                "INSERT INTO events (block_number, block_hash, log_index, tx_hash, block_time, name, data) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            )
            .bind(to_i64(located.block_number))
            .bind(hex_b256(&located.block_hash))
            .bind(to_i64(located.log_index))
            .bind(hex_b256(&located.tx_hash))
            .bind(to_i64(located.block_time))
            .bind(located.event.name())
            .bind(data)
            .execute(&mut *tx)
            .await?;
            if result.rows_affected() == 1 {
                inserted += 1;
                apply(&mut tx, &Position::of(located), &located.event).await?;
            }
        }
        let mut all_blocks = blocks.to_vec();
        all_blocks.push((cursor.number, cursor.hash));
        for (number, hash) in all_blocks {
            sqlx::query(
                "INSERT INTO blocks (number, hash) VALUES ($1, $2) \
                 ON CONFLICT (number) DO UPDATE SET hash = excluded.hash",
            )
            .bind(to_i64(number))
            .bind(hex_b256(&hash))
            .execute(&mut *tx)
            .await?;
        }
        set_cursor(&mut tx, Some(cursor)).await?;
        sqlx::query(
            "DELETE FROM blocks WHERE number < \
             (SELECT MIN(number) FROM (SELECT number FROM blocks ORDER BY number DESC LIMIT $1) AS recent)",
        )
        .bind(KEPT_BLOCK_HASHES)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(inserted)
    }

    /// Undoes every block after `keep` (or everything, when `None`): deletes their events and
    /// block hashes, moves the cursor back and recomputes the derived tables. Atomic.
    pub async fn rewind(&self, keep: Option<Cursor>) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let after = keep.map_or(-1, |c| to_i64(c.number));
        let removed = sqlx::query("DELETE FROM events WHERE block_number > $1")
            .bind(after)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query(
            "INSERT INTO reorgs (id, rewound_to, removed_events) \
             SELECT COALESCE(MAX(id), 0) + 1, $1, $2 FROM reorgs",
        )
        .bind(after)
        .bind(i64::try_from(removed).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM blocks WHERE number > $1")
            .bind(after)
            .execute(&mut *tx)
            .await?;
        set_cursor(&mut tx, keep).await?;
        rebuild(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }
}

async fn set_cursor(conn: &mut SqliteConnection, cursor: Option<Cursor>) -> Result<()> {
    match cursor {
        Some(c) => {
            sqlx::query(
                "INSERT INTO cursor (id, block_number, block_hash) VALUES (1, $1, $2) \
                 ON CONFLICT (id) DO UPDATE SET block_number = excluded.block_number, block_hash = excluded.block_hash",
            )
            .bind(to_i64(c.number))
            .bind(hex_b256(&c.hash))
            .execute(&mut *conn)
            .await?;
        }
        None => {
            sqlx::query("DELETE FROM cursor")
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

/// Recomputes every derived table from the `events` table, in chain order.
async fn rebuild(conn: &mut SqliteConnection) -> Result<()> {
    for table in [
        "protocol",
        "orchestrators",
        "datasets",
        "jobs",
        "job_transitions",
        "withdrawals",
    ] {
        sqlx::query(&format!("DELETE FROM {table}"))
            .execute(&mut *conn)
            .await?;
    }
    let rows = sqlx::query(
        "SELECT block_number, log_index, tx_hash, block_time, data FROM events \
         ORDER BY block_number, log_index",
    )
    .fetch_all(&mut *conn)
    .await?;
    for row in rows {
        let position = Position {
            block: row.try_get("block_number")?,
            log_index: row.try_get("log_index")?,
            time: row.try_get("block_time")?,
            tx: row.try_get("tx_hash")?,
        };
        let data: String = row.try_get("data")?;
        let event: Event = serde_json::from_str(&data)
            .map_err(|e| Error::Corrupt(format!("stored event `{data}`: {e}")))?;
        apply(conn, &position, &event).await?;
    }
    Ok(())
}

/// Where an event happened, in database form.
struct Position {
    block: i64,
    log_index: i64,
    time: i64,
    tx: String,
}

impl Position {
    fn of(located: &Located) -> Self {
        Self {
            block: to_i64(located.block_number),
            log_index: to_i64(located.log_index),
            time: to_i64(located.block_time),
            tx: hex_b256(&located.tx_hash),
        }
    }
}

async fn transition(
    conn: &mut SqliteConnection,
    at: &Position,
    job_id: u64,
    state: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO job_transitions (job_id, state, block_number, log_index, block_time, tx_hash) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(to_i64(job_id))
    .bind(state)
    .bind(at.block)
    .bind(at.log_index)
    .bind(at.time)
    .bind(&at.tx)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn finish_job(
    conn: &mut SqliteConnection,
    at: &Position,
    job_id: u64,
    state: &str,
    refund: &str,
    reason: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "UPDATE jobs SET state = $2, refund = $3, fail_reason = $4, updated_block = $5 WHERE id = $1",
    )
    .bind(to_i64(job_id))
    .bind(state)
    .bind(refund)
    .bind(reason)
    .bind(at.block)
    .execute(&mut *conn)
    .await?;
    transition(conn, at, job_id, state).await
}

/// Applies one event to the derived tables.
async fn apply(conn: &mut SqliteConnection, at: &Position, event: &Event) -> Result<()> {
    match event {
        Event::OrchestratorRegistered {
            orchestrator,
            public_key,
        } => {
            sqlx::query(
                "INSERT INTO orchestrators (address, public_key, active, registered_block, updated_block) \
                 VALUES ($1, $2, 1, $3, $3) ON CONFLICT (address) DO UPDATE SET \
                 public_key = excluded.public_key, active = 1, updated_block = excluded.updated_block",
            )
            .bind(orchestrator)
            .bind(public_key)
            .bind(at.block)
            .execute(&mut *conn)
            .await?;
        }
        Event::OrchestratorKeyRotated {
            orchestrator,
            public_key,
        } => {
            sqlx::query(
                "UPDATE orchestrators SET public_key = $2, updated_block = $3 WHERE address = $1",
            )
            .bind(orchestrator)
            .bind(public_key)
            .bind(at.block)
            .execute(&mut *conn)
            .await?;
        }
        Event::OrchestratorDeactivated { orchestrator } => {
            sqlx::query(
                "UPDATE orchestrators SET active = 0, updated_block = $2 WHERE address = $1",
            )
            .bind(orchestrator)
            .bind(at.block)
            .execute(&mut *conn)
            .await?;
        }
        Event::DatasetPublished {
            dataset_root,
            owner,
            orchestrator,
            envelope_root,
            manifest_root,
            policy,
            policy_hash,
        } => {
            sqlx::query(
                "INSERT INTO datasets (root, owner, orchestrator, envelope_root, manifest_root, \
                 price_per_epoch, price_sort, max_epochs_per_run, max_runs_per_requester, session_ttl, \
                 allowed_purposes, expiry, policy_hash, paused, job_count, created_block, \
                 created_log_index, created_time, created_tx, updated_block) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 0, 0, $14, $15, $16, $17, $14) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(dataset_root)
            .bind(owner)
            .bind(orchestrator)
            .bind(envelope_root)
            .bind(manifest_root)
            .bind(&policy.price_per_epoch)
            .bind(price_sort_key(&policy.price_per_epoch))
            .bind(i64::from(policy.max_epochs_per_run))
            .bind(i64::from(policy.max_runs_per_requester))
            .bind(i64::from(policy.session_ttl))
            .bind(i64::from(policy.allowed_purposes))
            .bind(to_i64(policy.expiry))
            .bind(policy_hash)
            .bind(at.block)
            .bind(at.log_index)
            .bind(at.time)
            .bind(&at.tx)
            .execute(&mut *conn)
            .await?;
        }
        Event::PolicyUpdated {
            dataset_root,
            policy,
            policy_hash,
        } => {
            sqlx::query(
                "UPDATE datasets SET price_per_epoch = $2, price_sort = $3, max_epochs_per_run = $4, \
                 max_runs_per_requester = $5, session_ttl = $6, allowed_purposes = $7, expiry = $8, \
                 policy_hash = $9, updated_block = $10 WHERE root = $1",
            )
            .bind(dataset_root)
            .bind(&policy.price_per_epoch)
            .bind(price_sort_key(&policy.price_per_epoch))
            .bind(i64::from(policy.max_epochs_per_run))
            .bind(i64::from(policy.max_runs_per_requester))
            .bind(i64::from(policy.session_ttl))
            .bind(i64::from(policy.allowed_purposes))
            .bind(to_i64(policy.expiry))
            .bind(policy_hash)
            .bind(at.block)
            .execute(&mut *conn)
            .await?;
        }
        Event::DatasetPaused { dataset_root } | Event::DatasetResumed { dataset_root } => {
            let paused = i64::from(matches!(event, Event::DatasetPaused { .. }));
            sqlx::query("UPDATE datasets SET paused = $2, updated_block = $3 WHERE root = $1")
                .bind(dataset_root)
                .bind(paused)
                .bind(at.block)
                .execute(&mut *conn)
                .await?;
        }
        Event::EnvelopeRotated {
            dataset_root,
            envelope_root,
        } => {
            sqlx::query(
                "UPDATE datasets SET envelope_root = $2, updated_block = $3 WHERE root = $1",
            )
            .bind(dataset_root)
            .bind(envelope_root)
            .bind(at.block)
            .execute(&mut *conn)
            .await?;
        }
        Event::AccessGranted {
            job_id,
            dataset_root,
            researcher,
            epochs,
            purpose,
            result_key,
            price_per_epoch,
            escrow,
            expires_at,
        } => {
            let result = sqlx::query(
                "INSERT INTO jobs (id, dataset_root, researcher, epochs, purpose, result_key, \
                 price_per_epoch, escrow, expires_at, state, created_block, created_time, created_tx, \
                 updated_block) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'Granted', $10, $11, $12, $10) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(to_i64(*job_id))
            .bind(dataset_root)
            .bind(researcher)
            .bind(i64::from(*epochs))
            .bind(i64::from(*purpose))
            .bind(result_key)
            .bind(price_per_epoch)
            .bind(escrow)
            .bind(to_i64(*expires_at))
            .bind(at.block)
            .bind(at.time)
            .bind(&at.tx)
            .execute(&mut *conn)
            .await?;
            if result.rows_affected() == 1 {
                sqlx::query("UPDATE datasets SET job_count = job_count + 1 WHERE root = $1")
                    .bind(dataset_root)
                    .execute(&mut *conn)
                    .await?;
            }
            transition(conn, at, *job_id, "Granted").await?;
        }
        Event::JobStarted {
            job_id,
            run_deadline,
        } => {
            sqlx::query(
                "UPDATE jobs SET state = 'Running', run_deadline = $2, updated_block = $3 WHERE id = $1",
            )
            .bind(to_i64(*job_id))
            .bind(to_i64(*run_deadline))
            .bind(at.block)
            .execute(&mut *conn)
            .await?;
            transition(conn, at, *job_id, "Running").await?;
        }
        Event::JobCompleted {
            job_id,
            actual_epochs,
            result_hash,
            attestation_ref,
            royalty,
            fee,
            refund,
        } => {
            sqlx::query(
                "UPDATE jobs SET state = 'Completed', actual_epochs = $2, result_hash = $3, \
                 attestation_ref = $4, royalty = $5, fee = $6, refund = $7, \
                 fee_treasury = (SELECT treasury FROM protocol WHERE id = 1), updated_block = $8 \
                 WHERE id = $1",
            )
            .bind(to_i64(*job_id))
            .bind(i64::from(*actual_epochs))
            .bind(result_hash)
            .bind(attestation_ref)
            .bind(royalty)
            .bind(fee)
            .bind(refund)
            .bind(at.block)
            .execute(&mut *conn)
            .await?;
            transition(conn, at, *job_id, "Completed").await?;
        }
        Event::JobFailed {
            job_id,
            reason,
            refund,
        } => finish_job(conn, at, *job_id, "Failed", refund, Some(reason)).await?,
        Event::JobExpired { job_id, refund } => {
            finish_job(conn, at, *job_id, "Expired", refund, None).await?;
        }
        Event::JobReclaimed { job_id, refund } => {
            finish_job(conn, at, *job_id, "Reclaimed", refund, None).await?;
        }
        Event::Withdrawn { account, amount } => {
            sqlx::query(
                "INSERT INTO withdrawals (account, amount, block_number, log_index, block_time, tx_hash) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind(account)
            .bind(amount)
            .bind(at.block)
            .bind(at.log_index)
            .bind(at.time)
            .bind(&at.tx)
            .execute(&mut *conn)
            .await?;
        }
        Event::ProtocolFeeSet { fee_bps, treasury } => {
            sqlx::query(
                "INSERT INTO protocol (id, fee_bps, treasury) VALUES (1, $1, $2) \
                 ON CONFLICT (id) DO UPDATE SET fee_bps = excluded.fee_bps, treasury = excluded.treasury",
            )
            .bind(i64::from(*fee_bps))
            .bind(treasury)
            .execute(&mut *conn)
            .await?;
        }
        Event::AdminTransferred { new_admin, .. } => {
            sqlx::query(
                "INSERT INTO protocol (id, admin) VALUES (1, $1) \
                 ON CONFLICT (id) DO UPDATE SET admin = excluded.admin",
            )
            .bind(new_admin)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}
