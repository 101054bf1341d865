//! The indexer's database: schema, the persisted cursor, atomic batch commits, rewinds after a
//! reorg, and the derived tables (datasets, jobs, transitions, withdrawals, orchestrators,
//! protocol settings) computed from the raw `events` table.
//!
//! Every batch (its events, their derived rows, the block hashes and the cursor) is written in
//! ONE transaction, so a crash leaves either all of a batch or none of it. Events are keyed by
//! `(block_hash, log_index)` and inserted with `ON CONFLICT DO NOTHING ... RETURNING`; derived
//! rows are only touched for events that were actually inserted, so nothing is applied twice
//! (the private `derive` module computes a batch's derived rows). Each batch also records, in
//! an undo log kept for the last [`UNDO_BATCHES`] batches, the state before it of every derived
//! row it changed. A rewind within that window restores those rows batch by batch (newest
//! first) and deletes the removed blocks' events; a deeper one deletes the events and
//! recomputes every derived table from the remaining events.
//!
//! Two backends behind one code path: SQLite (a file, WAL) and Postgres (a `postgres://` URL),
//! both through sqlx's `Any` driver. The SQL is the common subset of both (`$N` parameters,
//! `ON CONFLICT`, BIGINT and TEXT columns only, amounts as decimal TEXT), so every statement
//! here and in the query side runs unchanged on either; the tests run on both.

use crate::derive::{Position, UndoRecord, Working};
use crate::error::{Error, Result};
use crate::event::{Event, Located, hex_b256};
use alloy::primitives::{Address, B256};
use sqlx::any::{AnyArguments, AnyPoolOptions};
use sqlx::{Any, AnyConnection, AnyPool, Connection, Execute, Executor, QueryBuilder, Row};
use std::collections::HashSet;
use std::path::Path;

const SCHEMA: &str = include_str!("schema.sql");

/// Events per multi-row insert (7 bound values each).
const EVENT_CHUNK: usize = 1000;

/// How many recent block hashes are kept for reorg detection.
pub const KEPT_BLOCK_HASHES: i64 = 64;

/// The SQL and arguments of a built statement, with placeholders the `backend` parses fast.
///
/// `QueryBuilder<Any>` writes an anonymous `?` for every bound value, which Postgres does not
/// accept, so for Postgres they are renumbered `$1, $2, …`. SQLite keeps the `?`s: it reads
/// `$N` as a *named* parameter and looks each one up in a linear list while parsing, which is
/// quadratic in the number of placeholders (a 1000-row, 20-column insert took seconds to
/// prepare; with `?` it takes milliseconds). Our SQL has no `?` of its own (no string literal
/// holds one), so every `?` is a placeholder.
pub(crate) fn numbered<'a>(
    q: &'a mut QueryBuilder<'a, Any>,
    backend: Backend,
) -> Result<(String, AnyArguments<'a>)> {
    let sql = match backend {
        Backend::Sqlite => q.sql().to_owned(),
        Backend::Postgres => {
            let mut sql = String::with_capacity(q.sql().len() + 64);
            let mut n = 0usize;
            for c in q.sql().chars() {
                if c == '?' {
                    n += 1;
                    sql.push('$');
                    sql.push_str(&n.to_string());
                } else {
                    sql.push(c);
                }
            }
            sql
        }
    };
    let args = q
        .build()
        .take_arguments()
        .map_err(|e| Error::Corrupt(format!("binding a statement's values: {e}")))?
        .unwrap_or_default();
    Ok((sql, args))
}

/// The last fully indexed block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// Block number.
    pub number: u64,
    /// Its hash when it was indexed.
    pub hash: B256,
}

/// The deployment a database indexes: a DataPolicy contract on one chain (anvil deploys to the
/// same address on every fresh chain, so the address alone does not name it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deployment {
    /// The chain's id (`eth_chainId`).
    pub chain_id: u64,
    /// The DataPolicy contract.
    pub contract: Address,
}

/// Which database engine a [`Db`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file (the default: zero configuration).
    Sqlite,
    /// A Postgres server (scale-out; shared by several processes).
    Postgres,
}

impl Backend {
    /// The backend a database URL names: `sqlite:` or `postgres://` / `postgresql://`.
    pub fn of_url(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            Err(Error::Config(format!(
                "unsupported database URL `{}`: expected sqlite:<path> or postgres://user@host/db",
                redact(url)
            )))
        }
    }
}

impl Backend {
    /// The backend an open connection talks to.
    pub(crate) fn of_connection(conn: &AnyConnection) -> Self {
        if conn.backend_name().eq_ignore_ascii_case("sqlite") {
            Self::Sqlite
        } else {
            Self::Postgres
        }
    }
}

/// `url` without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &credentials[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Statements run on every new SQLite connection: WAL (readers never block the writer),
/// `synchronous = NORMAL` (durable at checkpoints, safe with WAL), a busy timeout so the
/// API's readers and the follower's writer wait for each other instead of failing, and a 64 MiB
/// page cache (the default 2 MiB spills a sync batch of thousands of rows and their index pages
/// to the WAL and reads them back before the commit).
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
     PRAGMA busy_timeout = 10000; PRAGMA cache_size = -65536;";

/// The `sqlite://` URL of the SQLite file at `path` (created with its folder when missing),
/// for [`open_pool`]; `what` names the database in messages ("indexer database").
pub fn sqlite_url(path: &Path, what: &str) -> Result<String> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| Error::Io {
            context: format!("creating the folder of the {what} {}", parent.display()),
            source,
        })?;
    }
    let absolute = std::path::absolute(path).map_err(|source| Error::Io {
        context: format!("resolving the {what} path {}", path.display()),
        source,
    })?;
    let path = absolute.to_str().ok_or_else(|| {
        Error::Config(format!(
            "the {what} path {} is not UTF-8: choose a data dir with a UTF-8 path",
            absolute.display()
        ))
    })?;
    // Percent-encode what a URL would read as a query or fragment.
    let path = path
        .replace('%', "%25")
        .replace('?', "%3F")
        .replace('#', "%23");
    Ok(format!("sqlite://{path}?mode=rwc"))
}

/// A connection pool on `url` (`sqlite:` or `postgres://`), through sqlx's `Any` driver, with
/// `sqlite_pragmas` run on every SQLite connection. A Postgres server that does not answer or
/// refuses is reported with its cause at once. `what` names the database in messages; the URL's
/// password never appears in them.
pub async fn open_pool(
    url: &str,
    what: &str,
    sqlite_pragmas: &'static str,
) -> Result<(AnyPool, Backend)> {
    let backend = Backend::of_url(url)?;
    sqlx::any::install_default_drivers();
    let mut options = AnyPoolOptions::new().max_connections(match backend {
        Backend::Sqlite => 4,
        Backend::Postgres => 8,
    });
    if backend == Backend::Sqlite {
        options = options.after_connect(move |conn, _| {
            Box::pin(async move {
                conn.execute(sqlite_pragmas).await?;
                Ok(())
            })
        });
    }
    let cannot_open =
        |e: sqlx::Error| Error::Config(format!("cannot open the {what} {}: {e}", redact(url)));
    if backend == Backend::Postgres {
        // One direct connection first: the pool would retry for its whole acquire timeout
        // (30 s) and then report only that it timed out, hiding "connection refused" or a
        // bad password.
        let probe = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            AnyConnection::connect(url),
        )
        .await
        .map_err(|_| {
            Error::Config(format!(
                "cannot reach the {what} {}: no answer within 10 s; check the host and port",
                redact(url)
            ))
        })?
        .map_err(cannot_open)?;
        let _ = probe.close().await;
    }
    let pool = options.connect(url).await.map_err(cannot_open)?;
    Ok((pool, backend))
}

/// Adds `column` (of SQL type `definition`) to `table` unless it is there: databases written
/// before the column existed. Both backends; `table`, `column` and `definition` are this
/// program's own names, never input.
pub async fn add_missing_column(
    conn: &mut AnyConnection,
    backend: Backend,
    table: &str,
    column: &str,
    definition: &str,
) -> Result<()> {
    let present: i64 = sqlx::query_scalar(match backend {
        Backend::Sqlite => "SELECT COUNT(*) FROM pragma_table_info($1) WHERE name = $2",
        Backend::Postgres => {
            "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = \
             current_schema() AND table_name = $1 AND column_name = $2"
        }
    })
    .bind(table)
    .bind(column)
    .fetch_one(&mut *conn)
    .await?;
    if present == 0 {
        sqlx::query(&format!(
            "ALTER TABLE {table} ADD COLUMN {column} {definition}"
        ))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The indexer database (a pool; cheap to clone).
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
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
        Self::connect(&sqlite_url(path, "indexer database")?).await
    }

    /// Connects to the database at `url` (`sqlite:<path>?mode=rwc` or
    /// `postgres://user:password@host:port/database`) and applies the schema. A Postgres
    /// database must exist already; the schema's tables are created in it if missing.
    pub async fn connect(url: &str) -> Result<Self> {
        let (pool, backend) = open_pool(url, "indexer database", SQLITE_PRAGMAS).await?;
        let mut conn = pool.acquire().await?;
        let mut tx = conn.begin().await?;
        if backend == Backend::Postgres {
            // Two processes creating the schema at once would race on the catalog.
            sqlx::query("SELECT 1 FROM (SELECT pg_advisory_xact_lock(41001)) AS locked")
                .execute(&mut *tx)
                .await?;
        }
        sqlx::raw_sql(SCHEMA).execute(&mut *tx).await?;
        // Databases from before the deployment anchor.
        add_missing_column(&mut tx, backend, "deployment", "anchor_block", "BIGINT").await?;
        add_missing_column(&mut tx, backend, "deployment", "anchor_hash", "TEXT").await?;
        tx.commit().await?;
        drop(conn);
        Ok(Self { pool, backend })
    }

    /// The connection pool (for queries).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The engine behind this database.
    pub fn backend(&self) -> Backend {
        self.backend
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

    /// Records that this database indexes `contract` on chain `chain_id`, or checks that it
    /// already does: a database holding another deployment's events is refused, never mixed.
    pub async fn claim_deployment(&self, deployment: Deployment) -> Result<()> {
        sqlx::query(
            "INSERT INTO deployment (id, chain_id, contract) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(to_i64(deployment.chain_id))
        .bind(deployment.contract.to_string())
        .execute(&self.pool)
        .await?;
        let held = self.deployment().await?.ok_or_else(|| {
            Error::Corrupt("the deployment row vanished right after it was written".into())
        })?;
        if held != deployment {
            return Err(Error::Config(format!(
                "this indexer database holds the events of DataPolicy {} on chain {}, not {} on \
                 chain {}: give this deployment its own data dir or database, or delete this one \
                 to index from scratch",
                held.contract, held.chain_id, deployment.contract, deployment.chain_id
            )));
        }
        Ok(())
    }

    /// The deployment this database indexes, once [`claim_deployment`](Self::claim_deployment)
    /// recorded it.
    pub async fn deployment(&self) -> Result<Option<Deployment>> {
        let row = sqlx::query("SELECT chain_id, contract FROM deployment WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            let contract: String = r.try_get("contract")?;
            Ok(Deployment {
                chain_id: to_u64(r.try_get("chain_id")?),
                contract: contract.parse().map_err(|e| {
                    Error::Corrupt(format!("`{contract}` is not a contract address: {e}"))
                })?,
            })
        })
        .transpose()
    }

    /// The block this index is anchored on and its hash (the follower's start block when the
    /// database was first used), once [`record_anchor`](Self::record_anchor) wrote it.
    pub async fn anchor(&self) -> Result<Option<(u64, B256)>> {
        let row = sqlx::query("SELECT anchor_block, anchor_hash FROM deployment WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let block: Option<i64> = row.try_get("anchor_block")?;
        let hash: Option<String> = row.try_get("anchor_hash")?;
        match (block, hash) {
            (Some(block), Some(hash)) => Ok(Some((to_u64(block), parse_b256(&hash)?))),
            _ => Ok(None),
        }
    }

    /// Records the anchor (after [`claim_deployment`](Self::claim_deployment)), unless one is
    /// recorded already.
    pub async fn record_anchor(&self, block: u64, hash: B256) -> Result<()> {
        sqlx::query(
            "UPDATE deployment SET anchor_block = $1, anchor_hash = $2 \
             WHERE id = 1 AND anchor_block IS NULL",
        )
        .bind(to_i64(block))
        .bind(hash.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
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
        let previous = read_cursor(&mut tx).await?;
        let mut rows = Vec::with_capacity(events.len());
        for located in events {
            let data = serde_json::to_string(&located.event)
                .map_err(|e| Error::Corrupt(format!("serializing an event: {e}")))?;
            rows.push((located, hex_b256(&located.block_hash), data));
        }
        // Insert-or-ignore; RETURNING names the rows that were new.
        let mut new_keys: HashSet<(String, i64)> = HashSet::new();
        for chunk in rows.chunks(EVENT_CHUNK) {
            let mut q: QueryBuilder<'_, Any> = QueryBuilder::new(
                "INSERT INTO events (block_number, block_hash, log_index, tx_hash, block_time, name, data) ",
            );
            q.push_values(chunk, |mut b, (located, hash, data)| {
                b.push_bind(to_i64(located.block_number))
                    .push_bind(hash.as_str())
                    .push_bind(to_i64(located.log_index))
                    .push_bind(hex_b256(&located.tx_hash))
                    .push_bind(to_i64(located.block_time))
                    .push_bind(located.event.name())
                    .push_bind(data.as_str());
            });
            q.push(" ON CONFLICT DO NOTHING RETURNING block_hash, log_index");
            let (sql, args) = numbered(&mut q, self.backend)?;
            for r in sqlx::query_with(&sql, args).fetch_all(&mut *tx).await? {
                new_keys.insert((r.try_get(0)?, r.try_get(1)?));
            }
        }
        let fresh: Vec<(Position, &Event)> = rows
            .iter()
            .filter(|(located, hash, _)| {
                new_keys.remove(&(hash.clone(), to_i64(located.log_index)))
            })
            .map(|(located, _, _)| (position_of(located), &located.event))
            .collect();
        let inserted = fresh.len() as u64;
        let mut working = Working::load(&mut tx, fresh.iter().map(|(_, e)| *e)).await?;
        for (position, event) in &fresh {
            working.apply(position, event);
        }
        let undo = working.undo_records()?;
        working.flush(&mut tx).await?;
        record_batch(&mut tx, cursor.number, previous, &undo).await?;
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

    /// Undoes every block after `keep` (or everything, when `None`). Atomic. When the undo log
    /// covers every batch after `keep`, those batches are undone row by row and the cursor moves
    /// to the end of the newest batch that ends at or before `keep` (so a batch is never half
    /// undone); otherwise the events after `keep` are deleted and every derived table is
    /// recomputed from the remaining events, with the cursor at `keep`.
    pub async fn rewind(&self, keep: Option<Cursor>) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let after = keep.map_or(-1, |c| to_i64(c.number));
        let batches = sqlx::query(
            "SELECT batch_to, prev_number, prev_hash FROM batches WHERE batch_to > $1 \
             ORDER BY batch_to DESC",
        )
        .bind(after)
        .fetch_all(&mut *tx)
        .await?;
        // The log covers the rewind when the oldest batch after `keep` starts at or before it.
        let oldest = match batches.last() {
            Some(r) => Some((
                r.try_get::<Option<i64>, _>("prev_number")?,
                r.try_get::<Option<String>, _>("prev_hash")?,
            )),
            None => None,
        };
        let covered = oldest
            .as_ref()
            .filter(|(number, _)| number.unwrap_or(-1) <= after);
        let (until, cursor) = if let Some((number, hash)) = covered {
            for batch in &batches {
                let records = sqlx::query(
                    "SELECT kind, row_key, before FROM undo WHERE batch_to = $1 ORDER BY seq",
                )
                .bind(batch.try_get::<i64, _>("batch_to")?)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| {
                    Ok(UndoRecord {
                        kind: r.try_get("kind")?,
                        key: r.try_get("row_key")?,
                        before: r.try_get("before")?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
                Working::restore(&mut tx, &records).await?;
            }
            let cursor = match (number, hash) {
                (Some(n), Some(h)) => Some(Cursor {
                    number: to_u64(*n),
                    hash: parse_b256(h)?,
                }),
                _ => None,
            };
            (number.unwrap_or(-1), cursor)
        } else {
            (after, keep)
        };
        let removed = sqlx::query("DELETE FROM events WHERE block_number > $1")
            .bind(until)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query(
            "INSERT INTO reorgs (id, rewound_to, removed_events) \
             SELECT COALESCE(MAX(id), 0) + 1, $1, $2 FROM reorgs",
        )
        .bind(until)
        .bind(i64::try_from(removed).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
        for sql in [
            "DELETE FROM blocks WHERE number > $1",
            "DELETE FROM job_transitions WHERE block_number > $1",
            "DELETE FROM withdrawals WHERE block_number > $1",
            "DELETE FROM undo WHERE batch_to > $1",
            "DELETE FROM batches WHERE batch_to > $1",
        ] {
            sqlx::query(sql).bind(until).execute(&mut *tx).await?;
        }
        set_cursor(&mut tx, cursor).await?;
        if covered.is_none() {
            sqlx::query("DELETE FROM undo").execute(&mut *tx).await?;
            sqlx::query("DELETE FROM batches").execute(&mut *tx).await?;
            rebuild(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

async fn read_cursor(conn: &mut AnyConnection) -> Result<Option<Cursor>> {
    let row = sqlx::query("SELECT block_number, block_hash FROM cursor WHERE id = 1")
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| {
        Ok(Cursor {
            number: to_u64(r.try_get("block_number")?),
            hash: parse_b256(&r.try_get::<String, _>("block_hash")?)?,
        })
    })
    .transpose()
}

/// How many batches the undo log covers.
pub const UNDO_BATCHES: i64 = 128;

/// Records a committed batch and the before-state of the rows it changed; prunes the log.
async fn record_batch(
    conn: &mut AnyConnection,
    to: u64,
    previous: Option<Cursor>,
    undo: &[UndoRecord],
) -> Result<()> {
    let inserted = sqlx::query(
        "INSERT INTO batches (batch_to, prev_number, prev_hash) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING",
    )
    .bind(to_i64(to))
    .bind(previous.map(|c| to_i64(c.number)))
    .bind(previous.map(|c| hex_b256(&c.hash)))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 1 {
        let records: Vec<(i64, &UndoRecord)> = (0..).zip(undo.iter()).collect();
        for chunk in records.chunks(EVENT_CHUNK) {
            let mut q: QueryBuilder<'_, Any> =
                QueryBuilder::new("INSERT INTO undo (batch_to, seq, kind, row_key, before) ");
            q.push_values(chunk, |mut b, (seq, record)| {
                b.push_bind(to_i64(to))
                    .push_bind(*seq)
                    .push_bind(record.kind.as_str())
                    .push_bind(record.key.as_str())
                    .push_bind(record.before.as_deref());
            });
            let (sql, args) = numbered(&mut q, Backend::of_connection(conn))?;
            sqlx::query_with(&sql, args).execute(&mut *conn).await?;
        }
    }
    sqlx::query(
        "DELETE FROM batches WHERE batch_to < \
         (SELECT MIN(batch_to) FROM (SELECT batch_to FROM batches ORDER BY batch_to DESC LIMIT $1) AS recent)",
    )
    .bind(UNDO_BATCHES)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM undo WHERE batch_to < (SELECT MIN(batch_to) FROM batches)")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn set_cursor(conn: &mut AnyConnection, cursor: Option<Cursor>) -> Result<()> {
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
async fn rebuild(conn: &mut AnyConnection) -> Result<()> {
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
    let mut events = Vec::with_capacity(rows.len());
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
        events.push((position, event));
    }
    let mut working = Working::load(conn, events.iter().map(|(_, e)| e)).await?;
    for (position, event) in &events {
        working.apply(position, event);
    }
    working.flush(conn).await
}

fn position_of(located: &Located) -> Position {
    Position {
        block: to_i64(located.block_number),
        log_index: to_i64(located.log_index),
        time: to_i64(located.block_time),
        tx: hex_b256(&located.tx_hash),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_postgres_is_named_with_its_cause_and_no_password() {
        // Port 1 on loopback: nothing listens there.
        let url = "postgres://bob:s3cret@127.0.0.1:1/licen";
        let said = Db::connect(url)
            .await
            .expect_err("nothing listens")
            .to_string();
        assert!(
            said.contains("cannot open the indexer database postgres://bob:***@127.0.0.1:1/licen"),
            "{said}"
        );
        assert!(!said.contains("s3cret"), "{said}");
        assert!(
            !said.contains("timed out"),
            "the cause, not the pool's timeout: {said}"
        );
    }
}
