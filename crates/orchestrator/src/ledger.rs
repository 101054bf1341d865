//! The crash-safe job ledger (SQLite, WAL): one row per job this orchestrator has seen, the
//! last step it completed, and the grant-log cursor. Each step is recorded after it happened on
//! chain; on restart every unfinished job is driven again and every step re-checks the chain
//! first, so nothing is started or settled twice. A ledger serves one deployment
//! ([`Ledger::record_deployment`]): contract, chain id and the hash of its deployment block.

use crate::Result;
use licen_chain::Grant;
use licen_types::{DatasetRoot, JobId};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use std::path::Path;
use std::str::FromStr;
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

/// The ledger database.
#[derive(Debug, Clone)]
pub struct Ledger {
    pool: SqlitePool,
}

impl Ledger {
    /// Opens (creating if needed) the ledger at `path`.
    pub async fn open(path: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS jobs (
                job_id INTEGER PRIMARY KEY,
                dataset_root TEXT NOT NULL,
                epochs INTEGER NOT NULL,
                result_key TEXT NOT NULL,
                stage TEXT NOT NULL,
                detail TEXT,
                updated_at INTEGER NOT NULL
            )",
        )
        .execute(&pool)
        .await?;
        // The compute node a job runs on (added after the first ledgers were written).
        let has_node: bool = sqlx::query_scalar(
            "SELECT COUNT(*) > 0 FROM pragma_table_info('jobs') WHERE name = 'node'",
        )
        .fetch_one(&pool)
        .await?;
        if !has_node {
            sqlx::query("ALTER TABLE jobs ADD COLUMN node TEXT")
                .execute(&pool)
                .await?;
        }
        sqlx::query("CREATE TABLE IF NOT EXISTS cursor (id INTEGER PRIMARY KEY CHECK (id = 0), block INTEGER NOT NULL)")
            .execute(&pool)
            .await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS deployment (
                id INTEGER PRIMARY KEY CHECK (id = 0),
                chain_id INTEGER NOT NULL,
                contract TEXT NOT NULL,
                anchor_block INTEGER NOT NULL,
                anchor_hash TEXT NOT NULL
            )",
        )
        .execute(&pool)
        .await?;
        Ok(Self { pool })
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
             VALUES (0, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
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
        let mut tx = self.pool.begin().await?;
        let mut new = Vec::new();
        for g in grants {
            let done = sqlx::query(
                "INSERT INTO jobs (job_id, dataset_root, epochs, result_key, stage, updated_at)
                 VALUES ($1, $2, $3, $4, 'seen', $5)
                 ON CONFLICT (job_id) DO UPDATE SET dataset_root = excluded.dataset_root,
                    epochs = excluded.epochs, result_key = excluded.result_key
                 WHERE jobs.stage = 'seen' AND (jobs.dataset_root, jobs.epochs, jobs.result_key)
                    IS NOT (excluded.dataset_root, excluded.epochs, excluded.result_key)",
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
        sqlx::query("UPDATE cursor SET block = $1 WHERE id = 0 AND block > $1")
            .bind(i64::try_from(block).unwrap_or(i64::MAX))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Moves a job to `stage`, with an optional detail (a failure reason, a result root).
    pub async fn set_stage(&self, job: JobId, stage: Stage, detail: Option<&str>) -> Result<()> {
        sqlx::query("UPDATE jobs SET stage = $1, detail = COALESCE($2, detail), updated_at = $3 WHERE job_id = $4")
            .bind(stage.as_str())
            .bind(detail)
            .bind(now())
            .bind(i64::try_from(job.0).unwrap_or(i64::MAX))
            .execute(&self.pool)
            .await?;
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
        sqlx::query("UPDATE jobs SET node = $1, updated_at = $2 WHERE job_id = $3")
            .bind(url)
            .bind(now())
            .bind(i64::try_from(job.0).unwrap_or(i64::MAX))
            .execute(&self.pool)
            .await?;
        Ok(())
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
                Stage::parse(r.get::<&str, _>(0)),
                r.get::<Option<String>, _>(1),
            )
        }))
    }
}

fn from_row(r: &sqlx::sqlite::SqliteRow) -> LedgerJob {
    let mut result_key = [0u8; 32];
    let _ = hex::decode_to_slice(r.get::<&str, _>(3), &mut result_key);
    LedgerJob {
        job: JobId(u64::try_from(r.get::<i64, _>(0)).unwrap_or(0)),
        dataset: r
            .get::<&str, _>(1)
            .parse()
            .unwrap_or(DatasetRoot(Default::default())),
        epochs: u16::try_from(r.get::<i64, _>(2)).unwrap_or(0),
        result_key,
        stage: Stage::parse(r.get::<&str, _>(4)),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
