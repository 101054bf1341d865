//! Read side: the marketplace's queries over the derived tables, returning JSON-ready views.
//!
//! Amounts are decimal strings of wei (they exceed JSON's safe integers); addresses and hashes
//! are lowercase `0x…` hex. List queries use keyset pagination: an opaque cursor encodes the
//! sort key of the last item returned, so pages stay stable while new rows arrive.

use crate::db::{Db, numbered, price_sort_key, to_i64, to_u64};
use crate::error::{Error, Result};
use alloy::primitives::{Address, B256, U256};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use licen_types::{Purpose, PurposeSet};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{Any, QueryBuilder, Row};

/// Largest page a list query returns.
pub const MAX_LIMIT: u32 = 100;
/// Page size when none is asked for.
pub const DEFAULT_LIMIT: u32 = 20;

/// Why a query was refused (bad filter, bad cursor): the caller's mistake, not the server's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadQuery(pub String);

/// Where something happened on the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainRef {
    /// Block number.
    pub block: u64,
    /// Block time (unix seconds).
    pub time: u64,
    /// Transaction hash.
    pub tx: String,
}

/// A dataset's policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyView {
    /// Wei per epoch (decimal).
    pub price_per_epoch: String,
    /// Most epochs per run.
    pub max_epochs_per_run: u32,
    /// Lifetime runs per researcher.
    pub max_runs_per_requester: u32,
    /// Seconds a grant stays startable.
    pub session_ttl: u32,
    /// Allowed purposes by slug.
    pub allowed_purposes: Vec<String>,
    /// The raw purpose bitmask.
    pub allowed_purposes_bits: u32,
    /// No new requests after this unix time; absent = never.
    pub expiry: Option<u64>,
}

/// A dataset in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetView {
    /// Dataset root (0G Merkle root of the ciphertext).
    pub root: String,
    /// Owner account.
    pub owner: String,
    /// Orchestrator account.
    pub orchestrator: String,
    /// Current key envelope root.
    pub envelope_root: String,
    /// Public manifest root.
    pub manifest_root: String,
    /// The manifest's name, once the indexer fetched the manifest from storage.
    pub name: Option<String>,
    /// The manifest's description, once fetched.
    pub description: Option<String>,
    /// Current policy.
    pub policy: PolicyView,
    /// `keccak256(abi.encode(policy))`.
    pub policy_hash: String,
    /// Paused by its owner.
    pub paused: bool,
    /// Accepting requests now: not paused and not past its expiry (judged by the later of the
    /// system clock and the newest indexed block time).
    pub active: bool,
    /// Requests ever made (popularity).
    pub job_count: u64,
    /// Where it was published.
    pub created: ChainRef,
}

/// Aggregates over a dataset's jobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetStats {
    /// Requests ever made.
    pub requests: u64,
    /// Jobs settled as completed.
    pub completed_runs: u64,
    /// Σ actual epochs of completed jobs.
    pub epochs_sold: u64,
    /// Σ royalties of completed jobs before the protocol fee (wei).
    pub revenue: String,
    /// Σ royalties less fees: what the owner was credited (wei).
    pub owner_revenue: String,
    /// Distinct researchers that requested it.
    pub distinct_researchers: u64,
    /// Escrow held by jobs not yet settled (wei).
    pub escrow_held: String,
}

/// A dataset with its stats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetDetail {
    /// The dataset.
    #[serde(flatten)]
    pub dataset: DatasetView,
    /// Its stats.
    pub stats: DatasetStats,
}

/// A job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobView {
    /// Job id.
    pub id: u64,
    /// Dataset root.
    pub dataset_root: String,
    /// Requesting researcher.
    pub researcher: String,
    /// Epochs paid for.
    pub epochs: u64,
    /// Declared purpose (slug; `bit-N` for a bit the registry does not know).
    pub purpose: String,
    /// The researcher's X25519 result key.
    pub result_key: String,
    /// Price per epoch snapshotted at request (wei).
    pub price_per_epoch: String,
    /// Escrow paid (wei).
    pub escrow: String,
    /// The grant must be started before this unix time.
    pub expires_at: u64,
    /// `Granted`, `Running`, `Completed`, `Expired`, `Failed` or `Reclaimed`.
    pub state: String,
    /// Settlement deadline once running.
    pub run_deadline: Option<u64>,
    /// Epochs actually trained (completed jobs).
    pub actual_epochs: Option<u64>,
    /// Hash of the result manifest (completed jobs).
    pub result_hash: Option<String>,
    /// Attestation evidence reference (completed jobs).
    pub attestation_ref: Option<String>,
    /// Royalty before fee (completed jobs, wei).
    pub royalty: Option<String>,
    /// Protocol fee (completed jobs, wei).
    pub fee: Option<String>,
    /// Refunded to the researcher (settled jobs, wei).
    pub refund: Option<String>,
    /// The orchestrator's reason (failed jobs).
    pub fail_reason: Option<String>,
    /// Where it was requested.
    pub created: ChainRef,
}

/// One state change of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// The state entered.
    pub state: String,
    /// Block number.
    pub block: u64,
    /// Log index in the block.
    pub log_index: u64,
    /// Block time.
    pub time: u64,
    /// Transaction hash.
    pub tx: String,
}

/// A job with its timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobDetail {
    /// The job.
    #[serde(flatten)]
    pub job: JobView,
    /// Every transition, oldest first.
    pub timeline: Vec<Transition>,
}

/// What an account earned and holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Earnings {
    /// The account.
    pub account: String,
    /// Datasets it owns.
    pub datasets: u64,
    /// Completed runs on its datasets.
    pub completed_runs: u64,
    /// Σ royalties of those runs before fees (wei).
    pub gross_royalties: String,
    /// Σ protocol fees taken from them (wei).
    pub fees: String,
    /// Σ royalties less fees: credited to the owner (wei).
    pub earned: String,
    /// Σ withdrawals by the account (wei).
    pub withdrawn: String,
    /// Everything credited to the account (royalties, treasury fees, refunds) less its
    /// withdrawals: what `withdrawable(account)` should read on-chain (wei).
    pub balance: String,
    /// Per dataset.
    pub per_dataset: Vec<DatasetEarnings>,
}

/// What one dataset earned its owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetEarnings {
    /// Dataset root.
    pub root: String,
    /// Completed runs.
    pub completed_runs: u64,
    /// Royalties less fees (wei).
    pub earned: String,
}

/// A page of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Dataset listing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    /// Newest first.
    #[default]
    Newest,
    /// Cheapest per epoch first.
    Price,
    /// Most requested first.
    Popularity,
}

impl std::str::FromStr for Sort {
    type Err = BadQuery;
    fn from_str(s: &str) -> Result<Self, BadQuery> {
        match s {
            "newest" => Ok(Self::Newest),
            "price" => Ok(Self::Price),
            "popularity" => Ok(Self::Popularity),
            other => Err(BadQuery(format!(
                "unknown sort `{other}`: expected newest, price or popularity"
            ))),
        }
    }
}

/// Longest text search accepted (characters).
pub const MAX_SEARCH_CHARS: usize = 200;

/// Dataset listing filters (all optional).
#[derive(Debug, Clone, Default)]
pub struct DatasetFilter {
    /// Only datasets whose manifest name or description contains this text (case-insensitive,
    /// taken literally: `%` and `_` are not wildcards). Datasets whose manifest is not fetched
    /// yet do not match.
    pub text: Option<String>,
    /// Only datasets allowing this purpose.
    pub purpose: Option<Purpose>,
    /// Only datasets at most this price per epoch (wei).
    pub max_price: Option<u128>,
    /// Only this owner's datasets.
    pub owner: Option<Address>,
    /// Only datasets that are (or are not) accepting requests.
    pub active: Option<bool>,
    /// Order.
    pub sort: Sort,
    /// Page size (capped at [`MAX_LIMIT`]).
    pub limit: Option<u32>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

/// Job listing filters (all optional).
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// Only this researcher's jobs.
    pub researcher: Option<Address>,
    /// Only jobs on datasets of this owner.
    pub owner: Option<Address>,
    /// Only jobs on this dataset.
    pub dataset: Option<B256>,
    /// Page size (capped at [`MAX_LIMIT`]).
    pub limit: Option<u32>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

/// Where the index stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexStatus {
    /// Last indexed block.
    pub indexed_block: Option<u64>,
    /// Its hash.
    pub indexed_hash: Option<String>,
    /// Events stored.
    pub events: u64,
}

/// "Now" for `active`: the later of the system clock and the newest indexed event's block
/// time, so a dev chain whose clock was moved forward is judged by its own time, as the
/// contract does.
async fn now(db: &Db) -> Result<u64> {
    let latest: Option<i64> = sqlx::query_scalar(
        "SELECT block_time FROM events ORDER BY block_number DESC, log_index DESC LIMIT 1",
    )
    .fetch_optional(db.pool())
    .await?;
    Ok(now_unix().max(latest.map_or(0, to_u64)))
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn limit(requested: Option<u32>) -> i64 {
    i64::from(requested.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT))
}

fn encode_cursor(parts: &[String]) -> String {
    URL_SAFE_NO_PAD.encode(parts.join("|"))
}

fn decode_cursor(cursor: &str, tag: &str, parts: usize) -> Result<Vec<String>, BadQuery> {
    let bad = || BadQuery(format!("`{cursor}` is not a cursor this listing returned"));
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let mut fields: Vec<String> = text.split('|').map(str::to_owned).collect();
    if fields.len() != parts + 1 || fields[0] != tag {
        return Err(bad());
    }
    fields.remove(0);
    Ok(fields)
}

fn cursor_int(field: &str) -> Result<i64, BadQuery> {
    field
        .parse()
        .map_err(|_| BadQuery(format!("corrupt cursor field `{field}`")))
}

fn purpose_slug(bit: u8) -> String {
    Purpose::from_bit(bit).map_or_else(|| format!("bit-{bit}"), |p| p.slug().to_owned())
}

fn u256(s: &str) -> U256 {
    U256::from_str_radix(s, 10).unwrap_or_default()
}

fn u32_col(row: &AnyRow, col: &str) -> Result<u32> {
    let v: i64 = row.try_get(col)?;
    u32::try_from(v).map_err(|_| Error::Corrupt(format!("{col} = {v}")))
}

fn dataset_from_row(row: &AnyRow, now: u64) -> Result<DatasetView> {
    let bits = u32_col(row, "allowed_purposes")?;
    let expiry = to_u64(row.try_get("expiry")?);
    let paused = row.try_get::<i64, _>("paused")? != 0;
    Ok(DatasetView {
        root: row.try_get("root")?,
        owner: row.try_get("owner")?,
        orchestrator: row.try_get("orchestrator")?,
        envelope_root: row.try_get("envelope_root")?,
        manifest_root: row.try_get("manifest_root")?,
        name: row.try_get("manifest_name")?,
        description: row.try_get("manifest_description")?,
        policy: PolicyView {
            price_per_epoch: row.try_get("price_per_epoch")?,
            max_epochs_per_run: u32_col(row, "max_epochs_per_run")?,
            max_runs_per_requester: u32_col(row, "max_runs_per_requester")?,
            session_ttl: u32_col(row, "session_ttl")?,
            allowed_purposes: PurposeSet::from_bits(bits)
                .iter()
                .map(|p| p.slug().to_owned())
                .collect(),
            allowed_purposes_bits: bits,
            expiry: (expiry != 0).then_some(expiry),
        },
        policy_hash: row.try_get("policy_hash")?,
        paused,
        active: !paused && (expiry == 0 || expiry > now),
        job_count: to_u64(row.try_get("job_count")?),
        created: ChainRef {
            block: to_u64(row.try_get("created_block")?),
            time: to_u64(row.try_get("created_time")?),
            tx: row.try_get("created_tx")?,
        },
    })
}

fn job_from_row(row: &AnyRow) -> Result<JobView> {
    let opt_u64 =
        |col: &str| -> Result<Option<u64>> { Ok(row.try_get::<Option<i64>, _>(col)?.map(to_u64)) };
    let purpose: i64 = row.try_get("purpose")?;
    Ok(JobView {
        id: to_u64(row.try_get("id")?),
        dataset_root: row.try_get("dataset_root")?,
        researcher: row.try_get("researcher")?,
        epochs: to_u64(row.try_get("epochs")?),
        purpose: purpose_slug(u8::try_from(purpose).unwrap_or(u8::MAX)),
        result_key: row.try_get("result_key")?,
        price_per_epoch: row.try_get("price_per_epoch")?,
        escrow: row.try_get("escrow")?,
        expires_at: to_u64(row.try_get("expires_at")?),
        state: row.try_get("state")?,
        run_deadline: opt_u64("run_deadline")?,
        actual_epochs: opt_u64("actual_epochs")?,
        result_hash: row.try_get("result_hash")?,
        attestation_ref: row.try_get("attestation_ref")?,
        royalty: row.try_get("royalty")?,
        fee: row.try_get("fee")?,
        refund: row.try_get("refund")?,
        fail_reason: row.try_get("fail_reason")?,
        created: ChainRef {
            block: to_u64(row.try_get("created_block")?),
            time: to_u64(row.try_get("created_time")?),
            tx: row.try_get("created_tx")?,
        },
    })
}

/// Hex form used in the database.
fn addr(a: &Address) -> String {
    crate::event::hex_address(a)
}

/// Errors of a query: a bad request or a failure of the database.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The caller's mistake.
    #[error(transparent)]
    Bad(#[from] BadQuery),
    /// The server's failure.
    #[error(transparent)]
    Internal(#[from] Error),
}

impl From<sqlx::Error> for QueryError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

/// A dataset row (`d`) with its manifest's name and description (NULL until fetched).
const DATASET_SELECT: &str =
    "SELECT d.*, m.name AS manifest_name, m.description AS manifest_description";
/// Joins a dataset row `d` to its fetched manifest.
const MANIFEST_JOIN: &str =
    "LEFT JOIN manifests m ON m.manifest_root = d.manifest_root AND m.state = 'fetched'";

/// `%text%` for `LIKE … ESCAPE '\'`: the text lowercased (search_text is stored lowercased, so
/// the match is case-insensitive on both backends, beyond ASCII too) with `\`, `%` and `_`
/// escaped so they match themselves.
pub(crate) fn like_pattern(text: &str) -> Result<String, BadQuery> {
    let text = text.trim();
    if text.chars().count() > MAX_SEARCH_CHARS {
        return Err(BadQuery(format!(
            "the search text is {} characters long; at most {MAX_SEARCH_CHARS} are accepted",
            text.chars().count()
        )));
    }
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    Ok(pattern)
}

/// Lists datasets.
pub async fn datasets(db: &Db, filter: &DatasetFilter) -> Result<Page<DatasetView>, QueryError> {
    let now = now(db).await?;
    // Filter, order and cut the page on `datasets` alone (its indexes serve the order), then
    // join the page's manifests: joining first made Postgres hash-join every manifest row
    // before the sort and limit.
    let mut q: QueryBuilder<'_, Any> = QueryBuilder::new(format!(
        "{DATASET_SELECT} FROM (SELECT * FROM datasets d WHERE 1 = 1"
    ));
    if let Some(text) = &filter.text {
        q.push(
            " AND d.manifest_root IN (SELECT manifest_root FROM manifests WHERE search_text LIKE ",
        )
        .push_bind(like_pattern(text)?)
        .push(" ESCAPE '\\')");
    }
    if let Some(purpose) = filter.purpose {
        q.push(" AND (allowed_purposes & ")
            .push_bind(1i64 << purpose.bit())
            .push(") != 0");
    }
    if let Some(max) = filter.max_price {
        q.push(" AND price_sort <= ")
            .push_bind(price_sort_key(&max.to_string()));
    }
    if let Some(owner) = &filter.owner {
        q.push(" AND owner = ").push_bind(addr(owner));
    }
    match filter.active {
        Some(true) => {
            q.push(" AND paused = 0 AND (expiry = 0 OR expiry > ")
                .push_bind(to_i64(now))
                .push(")");
        }
        Some(false) => {
            q.push(" AND (paused != 0 OR (expiry != 0 AND expiry <= ")
                .push_bind(to_i64(now))
                .push("))");
        }
        None => {}
    }
    let (tag, order) = match filter.sort {
        Sort::Newest => (
            "n",
            " ORDER BY d.created_block DESC, d.created_log_index DESC",
        ),
        Sort::Price => ("p", " ORDER BY d.price_sort ASC, d.root ASC"),
        Sort::Popularity => ("h", " ORDER BY d.job_count DESC, d.root ASC"),
    };
    if let Some(cursor) = &filter.cursor {
        let f = decode_cursor(cursor, tag, 2)?;
        match filter.sort {
            Sort::Newest => {
                let (b, l) = (cursor_int(&f[0])?, cursor_int(&f[1])?);
                // The leading `<=` / `>=` repeats what the OR implies: it gives the planner
                // a range on the order's index to start from instead of a filter on a scan
                // from the first row.
                q.push(" AND created_block <= ")
                    .push_bind(b)
                    .push(" AND (created_block < ")
                    .push_bind(b)
                    .push(" OR (created_block = ")
                    .push_bind(b)
                    .push(" AND created_log_index < ")
                    .push_bind(l)
                    .push("))");
            }
            Sort::Price => {
                q.push(" AND price_sort >= ")
                    .push_bind(f[0].clone())
                    .push(" AND (price_sort > ")
                    .push_bind(f[0].clone())
                    .push(" OR (price_sort = ")
                    .push_bind(f[0].clone())
                    .push(" AND root > ")
                    .push_bind(f[1].clone())
                    .push("))");
            }
            Sort::Popularity => {
                let c = cursor_int(&f[0])?;
                q.push(" AND job_count <= ")
                    .push_bind(c)
                    .push(" AND (job_count < ")
                    .push_bind(c)
                    .push(" OR (job_count = ")
                    .push_bind(c)
                    .push(" AND root > ")
                    .push_bind(f[1].clone())
                    .push("))");
            }
        }
    }
    let limit = limit(filter.limit);
    q.push(order).push(" LIMIT ").push_bind(limit + 1);
    q.push(format!(") d {MANIFEST_JOIN}{order}"));
    let (sql, args) = numbered(&mut q, db.backend())?;
    let rows = sqlx::query_with(&sql, args).fetch_all(db.pool()).await?;
    let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    let mut items = Vec::with_capacity(rows.len());
    let mut last_key = None;
    for row in rows
        .iter()
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
    {
        items.push(dataset_from_row(row, now)?);
        last_key = Some(match filter.sort {
            Sort::Newest => vec![
                tag.to_owned(),
                row.try_get::<i64, _>("created_block")?.to_string(),
                row.try_get::<i64, _>("created_log_index")?.to_string(),
            ],
            Sort::Price => vec![
                tag.to_owned(),
                row.try_get("price_sort")?,
                row.try_get("root")?,
            ],
            Sort::Popularity => vec![
                tag.to_owned(),
                row.try_get::<i64, _>("job_count")?.to_string(),
                row.try_get("root")?,
            ],
        });
    }
    Ok(Page {
        items,
        next_cursor: last_key.filter(|_| more).map(|k| encode_cursor(&k)),
    })
}

/// One dataset with its stats.
pub async fn dataset(db: &Db, root: B256) -> Result<Option<DatasetDetail>> {
    let root = crate::event::hex_b256(&root);
    let Some(row) = sqlx::query(&format!(
        "{DATASET_SELECT} FROM datasets d {MANIFEST_JOIN} WHERE d.root = $1"
    ))
    .bind(&root)
    .fetch_optional(db.pool())
    .await?
    else {
        return Ok(None);
    };
    let dataset = dataset_from_row(&row, now(db).await?)?;
    let jobs = sqlx::query(
        "SELECT researcher, state, escrow, actual_epochs, royalty, fee FROM jobs WHERE dataset_root = $1",
    )
    .bind(&root)
    .fetch_all(db.pool())
    .await?;
    let mut researchers = std::collections::HashSet::new();
    let (mut completed, mut epochs) = (0u64, 0u64);
    let (mut revenue, mut net, mut held) = (U256::ZERO, U256::ZERO, U256::ZERO);
    for job in &jobs {
        researchers.insert(job.try_get::<String, _>("researcher")?);
        let state: String = job.try_get("state")?;
        match state.as_str() {
            "Completed" => {
                completed += 1;
                epochs += to_u64(job.try_get::<Option<i64>, _>("actual_epochs")?.unwrap_or(0));
                let royalty = u256(
                    &job.try_get::<Option<String>, _>("royalty")?
                        .unwrap_or_default(),
                );
                let fee = u256(&job.try_get::<Option<String>, _>("fee")?.unwrap_or_default());
                revenue += royalty;
                net += royalty.saturating_sub(fee);
            }
            "Granted" | "Running" => held += u256(&job.try_get::<String, _>("escrow")?),
            _ => {}
        }
    }
    Ok(Some(DatasetDetail {
        dataset,
        stats: DatasetStats {
            requests: jobs.len() as u64,
            completed_runs: completed,
            epochs_sold: epochs,
            revenue: revenue.to_string(),
            owner_revenue: net.to_string(),
            distinct_researchers: researchers.len() as u64,
            escrow_held: held.to_string(),
        },
    }))
}

/// Lists jobs, newest first.
pub async fn jobs(db: &Db, filter: &JobFilter) -> Result<Page<JobView>, QueryError> {
    let mut q: QueryBuilder<'_, Any> = QueryBuilder::new("SELECT j.* FROM jobs j");
    if filter.owner.is_some() {
        q.push(" JOIN datasets d ON d.root = j.dataset_root");
    }
    q.push(" WHERE 1 = 1");
    if let Some(owner) = &filter.owner {
        q.push(" AND d.owner = ").push_bind(addr(owner));
    }
    if let Some(researcher) = &filter.researcher {
        q.push(" AND j.researcher = ").push_bind(addr(researcher));
    }
    if let Some(dataset) = &filter.dataset {
        q.push(" AND j.dataset_root = ")
            .push_bind(crate::event::hex_b256(dataset));
    }
    if let Some(cursor) = &filter.cursor {
        let f = decode_cursor(cursor, "j", 1)?;
        q.push(" AND j.id < ").push_bind(cursor_int(&f[0])?);
    }
    let limit = limit(filter.limit);
    q.push(" ORDER BY j.id DESC LIMIT ").push_bind(limit + 1);
    let (sql, args) = numbered(&mut q, db.backend())?;
    let rows = sqlx::query_with(&sql, args).fetch_all(db.pool()).await?;
    let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    let items = rows
        .iter()
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .map(job_from_row)
        .collect::<Result<Vec<_>>>()?;
    let next_cursor = items
        .last()
        .filter(|_| more)
        .map(|j| encode_cursor(&["j".to_owned(), j.id.to_string()]));
    Ok(Page { items, next_cursor })
}

/// One job with its full timeline.
pub async fn job(db: &Db, id: u64) -> Result<Option<JobDetail>> {
    let Some(row) = sqlx::query("SELECT * FROM jobs WHERE id = $1")
        .bind(to_i64(id))
        .fetch_optional(db.pool())
        .await?
    else {
        return Ok(None);
    };
    let timeline = sqlx::query(
        "SELECT state, block_number, log_index, block_time, tx_hash FROM job_transitions \
         WHERE job_id = $1 ORDER BY block_number, log_index",
    )
    .bind(to_i64(id))
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|r| {
        Ok(Transition {
            state: r.try_get("state")?,
            block: to_u64(r.try_get("block_number")?),
            log_index: to_u64(r.try_get("log_index")?),
            time: to_u64(r.try_get("block_time")?),
            tx: r.try_get("tx_hash")?,
        })
    })
    .collect::<Result<Vec<_>>>()?;
    Ok(Some(JobDetail {
        job: job_from_row(&row)?,
        timeline,
    }))
}

/// What `account` earned as a dataset owner, and its balance from every credit.
pub async fn earnings(db: &Db, account: Address) -> Result<Earnings> {
    let account = addr(&account);
    let datasets: Vec<String> = sqlx::query_scalar(
        "SELECT root FROM datasets WHERE owner = $1 ORDER BY created_block, created_log_index",
    )
    .bind(&account)
    .fetch_all(db.pool())
    .await?;
    let completed = sqlx::query(
        "SELECT j.dataset_root, j.royalty, j.fee FROM jobs j JOIN datasets d ON d.root = j.dataset_root \
         WHERE d.owner = $1 AND j.state = 'Completed'",
    )
    .bind(&account)
    .fetch_all(db.pool())
    .await?;
    let mut per: Vec<DatasetEarnings> = datasets
        .iter()
        .map(|root| DatasetEarnings {
            root: root.clone(),
            completed_runs: 0,
            earned: "0".into(),
        })
        .collect();
    let (mut gross, mut fees) = (U256::ZERO, U256::ZERO);
    for row in &completed {
        let root: String = row.try_get("dataset_root")?;
        let royalty = u256(
            &row.try_get::<Option<String>, _>("royalty")?
                .unwrap_or_default(),
        );
        let fee = u256(&row.try_get::<Option<String>, _>("fee")?.unwrap_or_default());
        gross += royalty;
        fees += fee;
        if let Some(entry) = per.iter_mut().find(|d| d.root == root) {
            entry.completed_runs += 1;
            entry.earned = (u256(&entry.earned) + royalty.saturating_sub(fee)).to_string();
        }
    }
    let earned = gross.saturating_sub(fees);
    let sum = |values: Vec<Option<String>>| {
        values
            .iter()
            .map(|v| u256(v.as_deref().unwrap_or("0")))
            .fold(U256::ZERO, |a, b| a + b)
    };
    let withdrawn = sum(
        sqlx::query_scalar("SELECT amount FROM withdrawals WHERE account = $1")
            .bind(&account)
            .fetch_all(db.pool())
            .await?,
    );
    let treasury_fees = sum(sqlx::query_scalar(
        "SELECT fee FROM jobs WHERE state = 'Completed' AND fee_treasury = $1",
    )
    .bind(&account)
    .fetch_all(db.pool())
    .await?);
    let refunds = sum(sqlx::query_scalar(
        "SELECT refund FROM jobs WHERE researcher = $1 AND refund IS NOT NULL",
    )
    .bind(&account)
    .fetch_all(db.pool())
    .await?);
    let balance = (earned + treasury_fees + refunds).saturating_sub(withdrawn);
    Ok(Earnings {
        account,
        datasets: datasets.len() as u64,
        completed_runs: completed.len() as u64,
        gross_royalties: gross.to_string(),
        fees: fees.to_string(),
        earned: earned.to_string(),
        withdrawn: withdrawn.to_string(),
        balance: balance.to_string(),
        per_dataset: per,
    })
}

/// Where the index stands.
pub async fn status(db: &Db) -> Result<IndexStatus> {
    let cursor = db.cursor().await?;
    Ok(IndexStatus {
        indexed_block: cursor.map(|c| c.number),
        indexed_hash: cursor.map(|c| crate::event::hex_b256(&c.hash)),
        events: db.event_count().await?,
    })
}
