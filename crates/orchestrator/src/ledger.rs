//! The crash-safe job ledger (SQLite, WAL): one row per job this orchestrator has seen, the
//! last step it completed, and the grant-log cursor. Each step is recorded after it happened on
//! chain; on restart every unfinished job is driven again and every step re-checks the chain
//! first, so nothing is started or settled twice. A ledger serves one deployment
//! ([`Ledger::record_deployment`]): contract, chain id and the hash of its deployment block.
//!
//! Replicas share one ledger and take turns through its `leader` lease ([`Ledger::lead`]). A
//! replica leading a term fences its ledger to it ([`Ledger::fence`]): every write then checks,
//! in its own transaction and under the lease row's lock, that the lease is still this replica's
//! in that term and has not run out, so a replica that was paused past its lease cannot
//! overwrite what the next leader recorded.

use crate::Result;
use licen_chain::Grant;
use licen_indexer::db::{Backend, add_missing_column, open_pool, sqlite_url};
use licen_types::{DatasetRoot, JobId};
use sqlx::{AnyPool, Row};
use std::path::Path;
use std::time::Duration;

/// The last step a job completed. Ordered: later stages compare greater.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Grant recorded; nothing done yet.
    Seen,
    /// `startJob` mined.
    Started,
    /// The dataset key was released to an attested node.
    KeyReleased,
    /// `confirmTrainingComplete` mined.
    Settled,
    /// `failJob` mined (full refund).
    Failed,
    /// Nothing left to do: another party ended the job, or it is not ours.
    Closed,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Self::Seen => "seen",
            Self::Started => "started",
            Self::KeyReleased => "key_released",
            Self::Settled => "settled",
            Self::Failed => "failed",
            Self::Closed => "closed",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "started" => Self::Started,
            "key_released" => Self::KeyReleased,
            "settled" => Self::Settled,
            "failed" => Self::Failed,
            "closed" => Self::Closed,
            _ => Self::Seen,
        }
    }

    /// Whether the job needs no more work.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Settled | Self::Failed | Self::Closed)
    }
}

/// A ledger row: what the job runner needs to resume.
#[derive(Debug, Clone)]
pub struct LedgerJob {
    /// The job.
    pub job: JobId,
    /// Its dataset.
    pub dataset: DatasetRoot,
    /// Epochs paid for.
    pub epochs: u16,
    /// The researcher's result key.
    pub result_key: [u8; 32],
    /// Last completed step.
    pub stage: Stage,
}

/// The deployment a ledger serves: the contract, its chain, and one block hash of that chain
/// (the deployment block's), which tells a replaced chain from the one the jobs were run on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerDeployment {
    /// `eth_chainId`.
    pub chain_id: u64,
    /// The DataPolicy contract.
    pub contract: alloy::primitives::Address,
    /// The block whose hash anchors the chain (the contract's deployment block).
    pub anchor_block: u64,
    /// Its hash.
    pub anchor_hash: alloy::primitives::B256,
}

/// How the ledger's SQLite connections run: WAL, and every commit durable before the step it
/// records is taken as done (`synchronous = FULL`); writers wait for each other.
const SQLITE_PRAGMAS: &str =
    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000;";

/// The schema, in the SQL both backends read. `node` is also added to ledgers written before
/// it existed ([`Ledger::connect`]).
const SCHEMA: [&str; 5] = [
    "CREATE TABLE IF NOT EXISTS jobs (
        job_id BIGINT PRIMARY KEY,
        dataset_root TEXT NOT NULL,
        epochs BIGINT NOT NULL,
        result_key TEXT NOT NULL,
        stage TEXT NOT NULL,
        detail TEXT,
        updated_at BIGINT NOT NULL,
        node TEXT
    )",
    "CREATE TABLE IF NOT EXISTS cursor (id BIGINT PRIMARY KEY CHECK (id = 0), block BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS deployment (
        id BIGINT PRIMARY KEY CHECK (id = 0),
        chain_id BIGINT NOT NULL,
        contract TEXT NOT NULL,
        anchor_block BIGINT NOT NULL,
        anchor_hash TEXT NOT NULL
    )",
    // Compute nodes a job gave up on (unreachable or failing): never assigned to it again, also
    // by another replica or after a restart.
    "CREATE TABLE IF NOT EXISTS given_up (
        job_id BIGINT NOT NULL,
        node TEXT NOT NULL,
        PRIMARY KEY (job_id, node)
    )",
    // The replica that drives the jobs, until `expires_at` (milliseconds on the database's
    // clock, so replicas on hosts whose clocks differ agree on when a lease ran out).
    "CREATE TABLE IF NOT EXISTS leader (
        id BIGINT PRIMARY KEY CHECK (id = 0),
        holder TEXT NOT NULL,
        term BIGINT NOT NULL,
        expires_at BIGINT NOT NULL
    )",
];

/// Who leads the replicas of one ledger, as [`Ledger::lead`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lead {
    /// The caller holds the lease for the `ttl` it asked for, in this term (a counter that
    /// grows with every change of holder).
    Held {
        /// The term.
        term: u64,
        /// The replica this call took the lead from, and why it could (`None`: the caller
        /// already led, or nobody ever had).
        took_over: Option<(String, Handover)>,
    },
    /// Another replica holds it.
    Elsewhere {
        /// The holder's name ([`replica_name`](crate::replica_name)).
        holder: String,
        /// How long its lease still runs.
        expires_in: Duration,
    },
}

/// Why a replica could take the lead from another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handover {
    /// The holder resigned (it stopped cleanly).
    Resigned,
    /// The holder's lease ran out (it stopped renewing: paused, cut off, or killed elsewhere).
    Expired,
    /// The holder's process is gone (the caller knew).
    Gone,
}

impl std::fmt::Display for Handover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Resigned => "it stopped and released the lead",
            Self::Expired => "its lease ran out",
            Self::Gone => "its process is gone",
        })
    }
}

/// The ledger database: SQLite (a file, the default) or Postgres (shared by replicas on
/// several hosts), one code path through sqlx's `Any` driver.
#[derive(Debug, Clone)]
pub struct Ledger {
    pool: AnyPool,
    backend: Backend,
    /// The term this replica writes in, shared by every clone ([`Ledger::fence`]).
    fence: std::sync::Arc<std::sync::Mutex<Option<Fence>>>,
}

/// A leading replica's term, which every ledger write must still hold.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fence {
    holder: String,
    term: u64,
    /// The lease's length: bounds how long a write may hold the lease row.
    lease: Duration,
}

impl Ledger {
    /// Opens (creating if needed) the SQLite ledger at `path`.
    pub async fn open(path: &Path) -> Result<Self> {
        Self::connect(&sqlite_url(path, "orchestrator ledger").map_err(config)?).await
    }

    /// Connects to the ledger at `url` (`sqlite:<path>` or `postgres://user@host/db`; a Postgres
    /// database must exist, its tables are created when missing).
    pub async fn connect(url: &str) -> Result<Self> {
        // A SQLite file named by URL is created when missing, as `open` creates it.
        let url = if url.starts_with("sqlite:") && !url.contains("mode=") {
            format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
        } else {
            url.to_owned()
        };
        let url = url.as_str();
        let (pool, backend) = open_pool(url, "orchestrator ledger", SQLITE_PRAGMAS)
            .await
            .map_err(config)?;
        let mut tx = pool.begin().await?;
        if backend == Backend::Postgres {
            // Replicas starting together would race on the catalog.
            sqlx::query("SELECT 1 FROM (SELECT pg_advisory_xact_lock(41002)) AS locked")
                .execute(&mut *tx)
                .await?;
        }
        for statement in SCHEMA {
            sqlx::query(statement).execute(&mut *tx).await?;
        }
        // Ledgers written before jobs had a compute node.
        add_missing_column(&mut tx, backend, "jobs", "node", "TEXT")
            .await
            .map_err(config)?;
        tx.commit().await?;
        Ok(Self {
            pool,
            backend,
            fence: std::sync::Arc::default(),
        })
    }

    /// From now on, every write of this ledger (and its clones) succeeds only while `holder`
    /// holds the lease in `term` and it has not run out; otherwise it changes nothing and
    /// fails with [`Error::Fenced`](crate::Error::Fenced).
    /// On Postgres a write holds the lease row for at most a quarter of `lease` while idle (a
    /// replica paused inside a write loses its session), so a standby is never kept from taking
    /// over.
    pub fn fence(&self, holder: &str, term: u64, lease: Duration) {
        *self.fence.lock().expect("ledger fence poisoned") = Some(Fence {
            holder: holder.to_owned(),
            term,
            lease,
        });
    }

    /// Writes are no longer checked against a term (a replica that stopped leading writes
    /// nothing; a single orchestrator's tools may).
    pub fn unfence(&self) {
        *self.fence.lock().expect("ledger fence poisoned") = None;
    }

    /// A write transaction, checked against the fence when there is one: the lease row is
    /// locked first (SQLite's write lock; on Postgres the row, for share), so no takeover
    /// commits between the check and this transaction's commit.
    async fn write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        let mut tx = self.pool.begin().await?;
        let fence = self.fence.lock().expect("ledger fence poisoned").clone();
        let Some(fence) = fence else {
            return Ok(tx);
        };
        if self.backend == Backend::Postgres {
            bound_postgres_locks(&mut tx, fence.lease / 4).await?;
        }
        let lock = match self.backend {
            Backend::Sqlite => "UPDATE leader SET holder = holder WHERE id = 0",
            Backend::Postgres => "SELECT holder FROM leader WHERE id = 0 FOR SHARE",
        };
        sqlx::query(lock).execute(&mut *tx).await?;
        let holds: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM leader WHERE id = 0 AND holder = $1 AND term = $2
             AND expires_at > {}",
            self.now_ms()
        ))
        .bind(&fence.holder)
        .bind(i64::try_from(fence.term).unwrap_or(i64::MAX))
        .fetch_one(&mut *tx)
        .await?;
        if holds == 0 {
            tx.rollback().await?;
            return Err(crate::Error::Fenced { term: fence.term });
        }
        Ok(tx)
    }

    /// The database's clock in milliseconds, as SQL.
    fn now_ms(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000 AS BIGINT)",
            Backend::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        }
    }

    /// Takes or renews the lead for `holder` for `ttl`: granted when nobody holds it, when
    /// `holder` already does, or when the holder's lease ran out (or `dead_holder`, a holder the
    /// caller knows is gone, holds it). Otherwise says who leads. One transaction.
    pub async fn lead(
        &self,
        holder: &str,
        ttl: Duration,
        dead_holder: Option<&str>,
    ) -> Result<Lead> {
        let now = self.now_ms();
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            bound_postgres_locks(&mut tx, ttl / 4).await?;
        }
        // Take the write lock first: a SQLite transaction that reads and then writes fails
        // ("database is locked") when another replica wrote in between; on Postgres this locks
        // the row, so the holder read below is the one the upsert replaces.
        sqlx::query("UPDATE leader SET holder = holder WHERE id = 0")
            .execute(&mut *tx)
            .await?;
        let before = sqlx::query("SELECT holder, expires_at FROM leader WHERE id = 0")
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| -> Result<(String, i64)> { Ok((row.try_get(0)?, row.try_get(1)?)) })
            .transpose()?;
        sqlx::query(&format!(
            "INSERT INTO leader (id, holder, term, expires_at) VALUES (0, $1, 1, {now} + $2)
             ON CONFLICT (id) DO UPDATE SET
                term = CASE WHEN leader.holder = excluded.holder THEN leader.term
                            ELSE leader.term + 1 END,
                holder = excluded.holder,
                expires_at = excluded.expires_at
             WHERE leader.holder = excluded.holder OR leader.expires_at < {now}
                OR leader.holder = $3"
        ))
        .bind(holder)
        .bind(ttl_ms)
        .bind(dead_holder.unwrap_or(""))
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(&format!(
            "SELECT holder, term, expires_at - {now} FROM leader WHERE id = 0"
        ))
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        let (current, term, left): (String, i64, i64) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        Ok(if current == holder {
            let took_over =
                before
                    .filter(|(previous, _)| previous != holder)
                    .map(|(previous, expires_at)| {
                        // A holder that resigned and then exited is known gone too: its
                        // resignation is what happened.
                        let why = if expires_at == 0 {
                            Handover::Resigned
                        } else if Some(previous.as_str()) == dead_holder {
                            Handover::Gone
                        } else {
                            Handover::Expired
                        };
                        (previous, why)
                    });
            Lead::Held {
                term: u64::try_from(term).unwrap_or(0),
                took_over,
            }
        } else {
            Lead::Elsewhere {
                holder: current,
                expires_in: Duration::from_millis(u64::try_from(left).unwrap_or(0)),
            }
        })
    }

    /// [`lead`](Self::lead), waiting at most `limit` for the answer (`None`: none yet). The
    /// attempt runs on a task of its own and is never cancelled half-way: dropping a database
    /// future inside its transaction can leave the connection, and SQLite's write lock, held.
    pub async fn lead_within(
        &self,
        holder: &str,
        ttl: Duration,
        dead_holder: Option<&str>,
        limit: Duration,
    ) -> Result<Option<Lead>> {
        let (ledger, holder) = (self.clone(), holder.to_owned());
        let dead_holder = dead_holder.map(str::to_owned);
        let attempt =
            tokio::spawn(async move { ledger.lead(&holder, ttl, dead_holder.as_deref()).await });
        match tokio::time::timeout(limit, attempt).await {
            Ok(Ok(answer)) => answer.map(Some),
            Ok(Err(failed)) => Err(crate::Error::Config(format!(
                "the lease attempt failed: {failed}"
            ))),
            Err(_) => Ok(None),
        }
    }

    /// Gives the lead up (a replica stopping), so another takes over at once (in the next term).
    pub async fn resign(&self, holder: &str) -> Result<()> {
        sqlx::query("UPDATE leader SET expires_at = 0 WHERE id = 0 AND holder = $1")
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The deployment whose jobs this ledger holds, once [`record_deployment`](Self::record_deployment)
    /// wrote it.
    pub async fn deployment(&self) -> Result<Option<LedgerDeployment>> {
        let row = sqlx::query(
            "SELECT chain_id, contract, anchor_block, anchor_hash FROM deployment WHERE id = 0",
        )
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let corrupt = |what: &str| {
            crate::Error::Config(format!(
                "the ledger's deployment row has an unreadable {what}: the ledger is damaged"
            ))
        };
        Ok(Some(LedgerDeployment {
            chain_id: u64::try_from(row.try_get::<i64, _>("chain_id")?)
                .map_err(|_| corrupt("chain id"))?,
            contract: row
                .try_get::<String, _>("contract")?
                .parse()
                .map_err(|_| corrupt("contract"))?,
            anchor_block: u64::try_from(row.try_get::<i64, _>("anchor_block")?)
                .map_err(|_| corrupt("anchor block"))?,
            anchor_hash: row
                .try_get::<String, _>("anchor_hash")?
                .parse()
                .map_err(|_| corrupt("anchor hash"))?,
        }))
    }

    /// Records the deployment this ledger serves (its first start). Job ids restart at 1 on
    /// every deployment, so the runner checks this record on every start: a ledger of another
    /// contract, or of a chain that was replaced, would take new jobs for ones it finished.
    pub async fn record_deployment(&self, deployment: &LedgerDeployment) -> Result<()> {
        sqlx::query(
            "INSERT INTO deployment (id, chain_id, contract, anchor_block, anchor_hash)
             VALUES (0, $1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
        )
        .bind(i64::try_from(deployment.chain_id).unwrap_or(i64::MAX))
        .bind(deployment.contract.to_string())
        .bind(i64::try_from(deployment.anchor_block).unwrap_or(i64::MAX))
        .bind(deployment.anchor_hash.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The highest job this orchestrator acted on on-chain (started, settled, failed), when it is
    /// not below `next_job`, the chain's next job id: that chain lost blocks this ledger saw
    /// (rolled back), and new jobs would reuse ids the ledger holds as done.
    pub async fn acted_beyond(&self, next_job: JobId) -> Result<Option<JobId>> {
        let highest: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(job_id) FROM jobs WHERE stage IN ('started', 'key_released', 'settled', 'failed')",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(highest
            .map(|j| JobId(u64::try_from(j).unwrap_or(0)))
            .filter(|highest| highest.0 >= next_job.0))
    }

    /// Closes the database (checkpoints the WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The last block whose grants were recorded, if any.
    pub async fn cursor(&self) -> Result<Option<u64>> {
        let row = sqlx::query("SELECT block FROM cursor WHERE id = 0")
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| u64::try_from(r.get::<i64, _>(0)).unwrap_or(0)))
    }

    /// Records `grants` and moves the cursor to `through`, atomically: a crash either keeps
    /// both or neither, so no grant is lost or seen twice. A grant replayed with other content
    /// (a reorg gave its id to another request) replaces the row while nothing was done for it.
    /// Returns the jobs inserted or replaced.
    pub async fn record_grants(&self, grants: &[Grant], through: u64) -> Result<Vec<JobId>> {
        let mut tx = self.write().await?;
        let mut new = Vec::new();
        for g in grants {
            let done = sqlx::query(
                "INSERT INTO jobs (job_id, dataset_root, epochs, result_key, stage, updated_at)
                 VALUES ($1, $2, $3, $4, 'seen', $5)
                 ON CONFLICT (job_id) DO UPDATE SET dataset_root = excluded.dataset_root,
                    epochs = excluded.epochs, result_key = excluded.result_key
                 WHERE jobs.stage = 'seen' AND (jobs.dataset_root, jobs.epochs, jobs.result_key)
                    <> (excluded.dataset_root, excluded.epochs, excluded.result_key)",
            )
            .bind(i64::try_from(g.job.0).unwrap_or(i64::MAX))
            .bind(g.dataset.to_string())
            .bind(i64::from(g.epochs))
            .bind(hex::encode(g.result_key))
            .bind(now())
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 1 {
                new.push(g.job);
            }
        }
        sqlx::query("INSERT INTO cursor (id, block) VALUES (0, $1) ON CONFLICT (id) DO UPDATE SET block = excluded.block")
            .bind(i64::try_from(through).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(new)
    }

    /// Moves the cursor back to `block` (after a reorg) if it is beyond it.
    pub async fn rewind_cursor(&self, block: u64) -> Result<()> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE cursor SET block = $1 WHERE id = 0 AND block > $1")
            .bind(i64::try_from(block).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Moves a job to `stage`, with an optional detail (a failure reason, a result root).
    pub async fn set_stage(&self, job: JobId, stage: Stage, detail: Option<&str>) -> Result<()> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE jobs SET stage = $1, detail = COALESCE($2, detail), updated_at = $3 WHERE job_id = $4")
            .bind(stage.as_str())
            .bind(detail)
            .bind(now())
            .bind(i64::try_from(job.0).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The compute node (URL) `job` was assigned to, if any: its task lives there.
    pub async fn node(&self, job: JobId) -> Result<Option<String>> {
        let node: Option<Option<String>> =
            sqlx::query_scalar("SELECT node FROM jobs WHERE job_id = $1")
                .bind(i64::try_from(job.0).unwrap_or(i64::MAX))
                .fetch_optional(&self.pool)
                .await?;
        Ok(node.flatten())
    }

    /// Assigns `job` to the compute node at `url`, before anything is sent to it.
    pub async fn set_node(&self, job: JobId, url: &str) -> Result<()> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE jobs SET node = $1, updated_at = $2 WHERE job_id = $3")
            .bind(url)
            .bind(now())
            .bind(i64::try_from(job.0).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records that `job` gave up on the compute node at `url`; returns every node it gave up
    /// on so far.
    pub async fn give_up_node(&self, job: JobId, url: &str) -> Result<Vec<String>> {
        let mut tx = self.write().await?;
        sqlx::query("INSERT INTO given_up (job_id, node) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(i64::try_from(job.0).unwrap_or(i64::MAX))
            .bind(url)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.given_up_nodes(job).await
    }

    /// The compute nodes `job` gave up on.
    pub async fn given_up_nodes(&self, job: JobId) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT node FROM given_up WHERE job_id = $1 ORDER BY node")
                .bind(i64::try_from(job.0).unwrap_or(i64::MAX))
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// A job's row.
    pub async fn job(&self, job: JobId) -> Result<Option<LedgerJob>> {
        let row = sqlx::query(
            "SELECT job_id, dataset_root, epochs, result_key, stage FROM jobs WHERE job_id = $1",
        )
        .bind(i64::try_from(job.0).unwrap_or(i64::MAX))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| from_row(&r)))
    }

    /// Every job not yet final (to resume after a restart).
    pub async fn unfinished(&self) -> Result<Vec<LedgerJob>> {
        let rows = sqlx::query(
            "SELECT job_id, dataset_root, epochs, result_key, stage FROM jobs
             WHERE stage NOT IN ('settled', 'failed', 'closed') ORDER BY job_id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(from_row).collect())
    }

    /// A job's stage and detail (for tests and status output).
    pub async fn stage(&self, job: JobId) -> Result<Option<(Stage, Option<String>)>> {
        let row = sqlx::query("SELECT stage, detail FROM jobs WHERE job_id = $1")
            .bind(i64::try_from(job.0).unwrap_or(i64::MAX))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| {
            (
                Stage::parse(&r.get::<String, _>(0)),
                r.get::<Option<String>, _>(1),
            )
        }))
    }
}

fn from_row(r: &sqlx::any::AnyRow) -> LedgerJob {
    let mut result_key = [0u8; 32];
    let _ = hex::decode_to_slice(r.get::<String, _>(3), &mut result_key);
    LedgerJob {
        job: JobId(u64::try_from(r.get::<i64, _>(0)).unwrap_or(0)),
        dataset: r
            .get::<String, _>(1)
            .parse()
            .unwrap_or(DatasetRoot(Default::default())),
        epochs: u16::try_from(r.get::<i64, _>(2)).unwrap_or(0),
        result_key,
        stage: Stage::parse(&r.get::<String, _>(4)),
    }
}

/// Bounds a Postgres transaction's hold on the lease row to `limit`: waiting for a lock (a
/// replica paused while holding the row must not stall the others past their own renewals), and
/// sitting idle inside the transaction (a replica paused mid-transaction loses its session, and
/// with it the lock).
async fn bound_postgres_locks(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    limit: Duration,
) -> Result<()> {
    let ms = limit.as_millis().max(1);
    sqlx::query(&format!("SET LOCAL lock_timeout = '{ms}ms'"))
        .execute(&mut **tx)
        .await?;
    sqlx::query(&format!(
        "SET LOCAL idle_in_transaction_session_timeout = '{ms}ms'"
    ))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn config(e: licen_indexer::Error) -> crate::Error {
    crate::Error::Config(e.to_string())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use licen_indexer::testing::TestDb;

    licen_indexer::backend_tests!(
        one_replica_leads_at_a_time,
        jobs_resume_from_the_same_rows,
        a_replica_whose_term_ended_writes_nothing
    );

    #[tokio::test]
    async fn a_sqlite_url_names_a_file_created_when_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("by-url.sqlite");
        let ledger = Ledger::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        ledger.record_grants(&[], 3).await.unwrap();
        ledger.close().await;
        assert!(path.is_file());
        let again = Ledger::connect(&format!("sqlite:{}", path.display()))
            .await
            .unwrap();
        assert_eq!(again.cursor().await.unwrap(), Some(3));
    }

    #[tokio::test]
    async fn a_ledger_from_before_compute_nodes_gets_the_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.sqlite");
        let (pool, _) = open_pool(
            &sqlite_url(&path, "test ledger").unwrap(),
            "test ledger",
            SQLITE_PRAGMAS,
        )
        .await
        .unwrap();
        sqlx::query(
            "CREATE TABLE jobs (job_id BIGINT PRIMARY KEY, dataset_root TEXT NOT NULL, \
             epochs BIGINT NOT NULL, result_key TEXT NOT NULL, stage TEXT NOT NULL, detail TEXT, \
             updated_at BIGINT NOT NULL)",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
        let ledger = Ledger::open(&path).await.unwrap();
        ledger.set_node(JobId(1), "http://node").await.unwrap();
        assert_eq!(
            ledger.node(JobId(1)).await.unwrap(),
            None,
            "no such job row"
        );
    }

    /// Two pools on one database, as two replica processes would hold.
    async fn two_ledgers(backend: Backend) -> Option<(TestDb, Ledger, Ledger)> {
        let db = TestDb::create(backend).await.unwrap()?;
        let first = Ledger::connect(db.url()).await.unwrap();
        let second = Ledger::connect(db.url()).await.unwrap();
        Some((db, first, second))
    }

    async fn one_replica_leads_at_a_time(backend: Backend) {
        let Some((_db, a, b)) = two_ledgers(backend).await else {
            return;
        };
        let ttl = Duration::from_millis(800);
        let held = |term, took_over: Option<(&str, Handover)>| Lead::Held {
            term,
            took_over: took_over.map(|(from, why)| (from.to_owned(), why)),
        };
        assert_eq!(a.lead("a", ttl, None).await.unwrap(), held(1, None));
        assert_eq!(
            a.lead("a", ttl, None).await.unwrap(),
            held(1, None),
            "a renewal keeps the term"
        );
        match b.lead("b", ttl, None).await.unwrap() {
            Lead::Elsewhere { holder, expires_in } => {
                assert_eq!(holder, "a");
                assert!(
                    expires_in > Duration::ZERO && expires_in <= ttl,
                    "{expires_in:?}"
                );
            }
            held => panic!("b took a live lease: {held:?}"),
        }
        // A hint naming another holder than the current one takes nothing.
        assert!(matches!(
            b.lead("b", ttl, Some("c")).await.unwrap(),
            Lead::Elsewhere { .. }
        ));
        // A holder known to be gone is taken over at once, in a new term.
        assert_eq!(
            b.lead("b", ttl, Some("a")).await.unwrap(),
            held(2, Some(("a", Handover::Gone)))
        );
        assert!(
            matches!(a.lead("a", ttl, None).await.unwrap(), Lead::Elsewhere { holder, .. } if holder == "b")
        );
        // A lease that runs out goes to the next who asks.
        tokio::time::sleep(ttl + Duration::from_millis(200)).await;
        assert_eq!(
            a.lead("a", ttl, None).await.unwrap(),
            held(3, Some(("b", Handover::Expired)))
        );
        assert!(
            matches!(b.lead("b", ttl, None).await.unwrap(), Lead::Elsewhere { holder, .. } if holder == "a")
        );
        // Only the holder can resign; then the lead passes at once.
        b.resign("b").await.unwrap();
        assert!(matches!(
            b.lead("b", ttl, None).await.unwrap(),
            Lead::Elsewhere { .. }
        ));
        a.resign("a").await.unwrap();
        assert_eq!(
            b.lead("b", ttl, None).await.unwrap(),
            held(4, Some(("a", Handover::Resigned)))
        );
    }

    async fn jobs_resume_from_the_same_rows(backend: Backend) {
        let Some((_db, ledger, reopened)) = two_ledgers(backend).await else {
            return;
        };
        let grant = |job: u64, epochs: u16| Grant {
            job: JobId(job),
            dataset: DatasetRoot([7; 32].into()),
            researcher: alloy::primitives::Address::repeat_byte(1),
            epochs,
            purpose: 1,
            result_key: [9; 32],
            escrow: 10,
            expires_at: 99,
            block: 5,
        };
        assert_eq!(
            ledger
                .record_grants(&[grant(1, 2), grant(2, 3)], 5)
                .await
                .unwrap(),
            vec![JobId(1), JobId(2)]
        );
        // A replay records nothing; a reorg's other grant under the same id replaces it.
        assert!(
            ledger
                .record_grants(&[grant(1, 2)], 6)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            ledger.record_grants(&[grant(2, 1)], 6).await.unwrap(),
            vec![JobId(2)]
        );
        ledger
            .set_stage(JobId(1), Stage::Started, None)
            .await
            .unwrap();
        ledger.set_node(JobId(1), "http://node-a").await.unwrap();
        assert_eq!(
            ledger
                .give_up_node(JobId(1), "http://node-b")
                .await
                .unwrap(),
            ["http://node-b"]
        );
        assert_eq!(
            ledger
                .give_up_node(JobId(1), "http://node-a")
                .await
                .unwrap(),
            ["http://node-a", "http://node-b"]
        );
        assert_eq!(
            ledger
                .give_up_node(JobId(1), "http://node-a")
                .await
                .unwrap()
                .len(),
            2
        );
        // Once acted on, a grant is never replaced.
        assert!(
            ledger
                .record_grants(&[grant(1, 3)], 7)
                .await
                .unwrap()
                .is_empty()
        );
        ledger
            .set_stage(JobId(2), Stage::Failed, Some("no node"))
            .await
            .unwrap();
        let deployment = LedgerDeployment {
            chain_id: 31337,
            contract: alloy::primitives::Address::repeat_byte(2),
            anchor_block: 3,
            anchor_hash: alloy::primitives::B256::repeat_byte(4),
        };
        ledger.record_deployment(&deployment).await.unwrap();

        // What another replica (or a restart) reads back.
        assert_eq!(reopened.cursor().await.unwrap(), Some(7));
        let unfinished = reopened.unfinished().await.unwrap();
        assert_eq!(unfinished.len(), 1);
        assert_eq!(
            (unfinished[0].job, unfinished[0].epochs, unfinished[0].stage),
            (JobId(1), 2, Stage::Started)
        );
        assert_eq!(unfinished[0].result_key, [9; 32]);
        assert_eq!(
            reopened.node(JobId(1)).await.unwrap().as_deref(),
            Some("http://node-a")
        );
        assert_eq!(
            reopened.stage(JobId(2)).await.unwrap(),
            Some((Stage::Failed, Some("no node".into())))
        );
        assert_eq!(reopened.deployment().await.unwrap(), Some(deployment));
        assert_eq!(
            reopened.acted_beyond(JobId(2)).await.unwrap(),
            Some(JobId(2))
        );
        assert_eq!(reopened.acted_beyond(JobId(3)).await.unwrap(), None);
        reopened.rewind_cursor(6).await.unwrap();
        assert_eq!(ledger.cursor().await.unwrap(), Some(6));
    }

    async fn a_replica_whose_term_ended_writes_nothing(backend: Backend) {
        let Some((_db, a, b)) = two_ledgers(backend).await else {
            return;
        };
        let ttl = Duration::from_millis(800);
        let term_of = |lead: Lead| match lead {
            Lead::Held { term, .. } => term,
            other => panic!("expected to lead: {other:?}"),
        };
        let grant = |job: u64| Grant {
            job: JobId(job),
            dataset: DatasetRoot([7; 32].into()),
            researcher: alloy::primitives::Address::repeat_byte(1),
            epochs: 2,
            purpose: 1,
            result_key: [9; 32],
            escrow: 10,
            expires_at: 99,
            block: 5,
        };
        let first = term_of(a.lead("a", ttl, None).await.unwrap());
        a.fence("a", first, ttl);
        a.record_grants(&[grant(1)], 5).await.unwrap();
        a.set_stage(JobId(1), Stage::Started, None).await.unwrap();

        // b takes over (a is gone, as far as b knows: a was paused). Every write a still
        // attempts in its old term is refused and changes nothing.
        let second = term_of(b.lead("b", ttl, Some("a")).await.unwrap());
        b.fence("b", second, ttl);
        let refused = |outcome: Result<()>| {
            assert!(
                matches!(outcome, Err(crate::Error::Fenced { term }) if term == first),
                "{outcome:?}"
            );
        };
        refused(a.set_stage(JobId(1), Stage::Settled, Some("late")).await);
        refused(a.set_node(JobId(1), "http://late").await);
        refused(a.give_up_node(JobId(1), "http://late").await.map(drop));
        refused(a.record_grants(&[grant(2)], 9).await.map(drop));
        refused(a.rewind_cursor(1).await);
        assert_eq!(
            b.stage(JobId(1)).await.unwrap(),
            Some((Stage::Started, None))
        );
        assert_eq!(b.node(JobId(1)).await.unwrap(), None);
        assert!(b.given_up_nodes(JobId(1)).await.unwrap().is_empty());
        assert_eq!(b.cursor().await.unwrap(), Some(5));
        assert_eq!(b.unfinished().await.unwrap().len(), 1);
        // The leader writes.
        b.set_stage(JobId(1), Stage::Settled, Some("0xresult"))
            .await
            .unwrap();

        // A lease that ran out fences its own holder too until it renews (nobody else took
        // over, so the term goes on).
        tokio::time::sleep(ttl + Duration::from_millis(200)).await;
        assert!(matches!(
            b.record_grants(&[grant(3)], 7).await,
            Err(crate::Error::Fenced { term }) if term == second
        ));
        assert_eq!(term_of(b.lead("b", ttl, None).await.unwrap()), second);
        b.record_grants(&[grant(3)], 7).await.unwrap();
        // Unfenced (a single orchestrator's tools), writes are not checked.
        a.unfence();
        a.rewind_cursor(6).await.unwrap();
        assert_eq!(b.cursor().await.unwrap(), Some(6));
    }

    /// A replica paused inside a write (holding the lease row) loses its Postgres session after
    /// a quarter lease, and with it the lock: a standby takes over instead of waiting for it.
    #[tokio::test]
    async fn a_writer_paused_on_postgres_does_not_keep_the_others_out() {
        let Some((_db, a, b)) = two_ledgers(Backend::Postgres).await else {
            return;
        };
        let ttl = Duration::from_millis(800);
        assert!(matches!(
            a.lead("a", ttl, None).await.unwrap(),
            Lead::Held { .. }
        ));
        // What `write` does for a fenced replica, then a pause before the commit.
        let mut paused = a.pool.begin().await.unwrap();
        bound_postgres_locks(&mut paused, ttl / 4).await.unwrap();
        sqlx::query("SELECT holder FROM leader WHERE id = 0 FOR SHARE")
            .execute(&mut *paused)
            .await
            .unwrap();
        tokio::time::sleep(ttl + Duration::from_millis(100)).await;
        let started = std::time::Instant::now();
        let taken = loop {
            match b.lead("b", ttl, None).await {
                Ok(lead @ Lead::Held { .. }) => break lead,
                outcome => {
                    assert!(
                        started.elapsed() < Duration::from_secs(5),
                        "the standby is still kept out: {outcome:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        assert!(
            matches!(&taken, Lead::Held { took_over: Some((from, Handover::Expired)), .. } if from == "a"),
            "{taken:?}"
        );
        // The paused replica's transaction is gone with its session.
        assert!(paused.commit().await.is_err());
    }
}
