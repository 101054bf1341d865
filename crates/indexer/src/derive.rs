//! Derived tables from events, a batch at a time: the rows a batch touches are loaded once,
//! the events are applied to them in memory in chain order, and the results are written back
//! with multi-row statements. Round trips per batch are a handful instead of several per event,
//! which is what makes an initial sync fast; the outcome is exactly that of applying the
//! events one by one (the tests compare a resumed, a rewound and a fresh index).

use crate::db::{Backend, numbered, price_sort_key, to_i64};
use crate::error::Error;
use crate::error::Result;
use crate::event::Event;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, QueryBuilder, Row};
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// Rows per multi-row statement (well under SQLite's 32 766 bound variables).
const CHUNK: usize = 400;

/// Where an event happened, in database form.
#[derive(Debug, Clone)]
pub(crate) struct Position {
    pub(crate) block: i64,
    pub(crate) log_index: i64,
    pub(crate) time: i64,
    pub(crate) tx: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct DatasetRow {
    owner: String,
    orchestrator: String,
    envelope_root: String,
    manifest_root: String,
    price_per_epoch: String,
    max_epochs_per_run: i64,
    max_runs_per_requester: i64,
    session_ttl: i64,
    allowed_purposes: i64,
    expiry: i64,
    policy_hash: String,
    paused: i64,
    job_count: i64,
    created_block: i64,
    created_log_index: i64,
    created_time: i64,
    created_tx: String,
    updated_block: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct JobRow {
    dataset_root: String,
    researcher: String,
    epochs: i64,
    purpose: i64,
    result_key: String,
    price_per_epoch: String,
    escrow: String,
    expires_at: i64,
    state: String,
    run_deadline: Option<i64>,
    actual_epochs: Option<i64>,
    result_hash: Option<String>,
    attestation_ref: Option<String>,
    royalty: Option<String>,
    fee: Option<String>,
    fee_treasury: Option<String>,
    refund: Option<String>,
    fail_reason: Option<String>,
    created_block: i64,
    created_time: i64,
    created_tx: String,
    updated_block: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OrchestratorRow {
    public_key: String,
    active: i64,
    registered_block: i64,
    updated_block: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ProtocolRow {
    fee_bps: i64,
    treasury: String,
    admin: String,
}

/// The loaded rows before any event was applied.
#[derive(Debug, Default)]
struct Before {
    datasets: BTreeMap<String, DatasetRow>,
    jobs: BTreeMap<i64, JobRow>,
    orchestrators: BTreeMap<String, OrchestratorRow>,
    protocol: Option<ProtocolRow>,
}

/// One undo record: a derived row's state before a batch (`None`: it did not exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UndoRecord {
    /// `dataset`, `job`, `orchestrator` or `protocol`.
    pub(crate) kind: String,
    /// The row's key.
    pub(crate) key: String,
    /// The row as JSON.
    pub(crate) before: Option<String>,
}

fn json<T: Serialize>(row: &T) -> Result<String> {
    serde_json::to_string(row).map_err(|e| Error::Corrupt(format!("serializing a row: {e}")))
}

fn unjson<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| Error::Corrupt(format!("undo record `{text}`: {e}")))
}

/// The rows a batch reads and writes.
#[derive(Debug, Default)]
pub(crate) struct Working {
    datasets: BTreeMap<String, DatasetRow>,
    jobs: BTreeMap<i64, JobRow>,
    orchestrators: BTreeMap<String, OrchestratorRow>,
    protocol: Option<ProtocolRow>,
    dirty_datasets: BTreeSet<String>,
    dirty_jobs: BTreeSet<i64>,
    dirty_orchestrators: BTreeSet<String>,
    dirty_protocol: bool,
    /// The loaded rows as they were before the batch (for the undo log).
    before: Option<Box<Before>>,
    transitions: Vec<(i64, &'static str, Position)>,
    transition_keys: HashSet<(i64, &'static str)>,
    withdrawals: Vec<(String, String, Position)>,
}

fn dataset_row(r: &AnyRow) -> Result<DatasetRow> {
    Ok(DatasetRow {
        owner: r.try_get("owner")?,
        orchestrator: r.try_get("orchestrator")?,
        envelope_root: r.try_get("envelope_root")?,
        manifest_root: r.try_get("manifest_root")?,
        price_per_epoch: r.try_get("price_per_epoch")?,
        max_epochs_per_run: r.try_get("max_epochs_per_run")?,
        max_runs_per_requester: r.try_get("max_runs_per_requester")?,
        session_ttl: r.try_get("session_ttl")?,
        allowed_purposes: r.try_get("allowed_purposes")?,
        expiry: r.try_get("expiry")?,
        policy_hash: r.try_get("policy_hash")?,
        paused: r.try_get("paused")?,
        job_count: r.try_get("job_count")?,
        created_block: r.try_get("created_block")?,
        created_log_index: r.try_get("created_log_index")?,
        created_time: r.try_get("created_time")?,
        created_tx: r.try_get("created_tx")?,
        updated_block: r.try_get("updated_block")?,
    })
}

fn job_row(r: &AnyRow) -> Result<JobRow> {
    Ok(JobRow {
        dataset_root: r.try_get("dataset_root")?,
        researcher: r.try_get("researcher")?,
        epochs: r.try_get("epochs")?,
        purpose: r.try_get("purpose")?,
        result_key: r.try_get("result_key")?,
        price_per_epoch: r.try_get("price_per_epoch")?,
        escrow: r.try_get("escrow")?,
        expires_at: r.try_get("expires_at")?,
        state: r.try_get("state")?,
        run_deadline: r.try_get("run_deadline")?,
        actual_epochs: r.try_get("actual_epochs")?,
        result_hash: r.try_get("result_hash")?,
        attestation_ref: r.try_get("attestation_ref")?,
        royalty: r.try_get("royalty")?,
        fee: r.try_get("fee")?,
        fee_treasury: r.try_get("fee_treasury")?,
        refund: r.try_get("refund")?,
        fail_reason: r.try_get("fail_reason")?,
        created_block: r.try_get("created_block")?,
        created_time: r.try_get("created_time")?,
        created_tx: r.try_get("created_tx")?,
        updated_block: r.try_get("updated_block")?,
    })
}

fn dataset_of(event: &Event) -> Option<&str> {
    match event {
        Event::DatasetPublished { dataset_root, .. }
        | Event::PolicyUpdated { dataset_root, .. }
        | Event::DatasetPaused { dataset_root }
        | Event::DatasetResumed { dataset_root }
        | Event::EnvelopeRotated { dataset_root, .. }
        | Event::AccessGranted { dataset_root, .. } => Some(dataset_root),
        _ => None,
    }
}

fn job_of(event: &Event) -> Option<u64> {
    match event {
        Event::AccessGranted { job_id, .. }
        | Event::JobStarted { job_id, .. }
        | Event::JobCompleted { job_id, .. }
        | Event::JobFailed { job_id, .. }
        | Event::JobExpired { job_id, .. }
        | Event::JobReclaimed { job_id, .. } => Some(*job_id),
        _ => None,
    }
}

fn orchestrator_of(event: &Event) -> Option<&str> {
    match event {
        Event::OrchestratorRegistered { orchestrator, .. }
        | Event::OrchestratorKeyRotated { orchestrator, .. }
        | Event::OrchestratorDeactivated { orchestrator } => Some(orchestrator),
        _ => None,
    }
}

impl Working {
    /// Loads every stored row the events will read or change.
    pub(crate) async fn load<'e>(
        conn: &mut AnyConnection,
        events: impl Iterator<Item = &'e Event> + Clone,
    ) -> Result<Self> {
        let mut w = Self::default();
        let roots: BTreeSet<&str> = events.clone().filter_map(dataset_of).collect();
        let roots: Vec<&str> = roots.into_iter().collect();
        for chunk in roots.chunks(CHUNK) {
            let mut q: QueryBuilder<'_, Any> =
                QueryBuilder::new("SELECT * FROM datasets WHERE root IN (");
            let mut list = q.separated(", ");
            for root in chunk {
                list.push_bind(*root);
            }
            q.push(")");
            let (sql, args) = numbered(&mut q, Backend::of_connection(conn))?;
            for r in sqlx::query_with(&sql, args).fetch_all(&mut *conn).await? {
                w.datasets.insert(r.try_get("root")?, dataset_row(&r)?);
            }
        }
        let ids: BTreeSet<i64> = events.clone().filter_map(job_of).map(to_i64).collect();
        let ids: Vec<i64> = ids.into_iter().collect();
        for chunk in ids.chunks(CHUNK) {
            let mut q: QueryBuilder<'_, Any> =
                QueryBuilder::new("SELECT * FROM jobs WHERE id IN (");
            let mut list = q.separated(", ");
            for id in chunk {
                list.push_bind(*id);
            }
            q.push(")");
            let (sql, args) = numbered(&mut q, Backend::of_connection(conn))?;
            for r in sqlx::query_with(&sql, args).fetch_all(&mut *conn).await? {
                w.jobs.insert(r.try_get("id")?, job_row(&r)?);
            }
        }
        let orchestrators: BTreeSet<&str> = events.clone().filter_map(orchestrator_of).collect();
        for address in orchestrators {
            let row = sqlx::query(
                "SELECT public_key, active, registered_block, updated_block FROM orchestrators WHERE address = $1",
            )
            .bind(address)
            .fetch_optional(&mut *conn)
            .await?;
            if let Some(r) = row {
                w.orchestrators.insert(
                    address.to_owned(),
                    OrchestratorRow {
                        public_key: r.try_get("public_key")?,
                        active: r.try_get("active")?,
                        registered_block: r.try_get("registered_block")?,
                        updated_block: r.try_get("updated_block")?,
                    },
                );
            }
        }
        let protocol = sqlx::query("SELECT fee_bps, treasury, admin FROM protocol WHERE id = 1")
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(r) = protocol {
            w.protocol = Some(ProtocolRow {
                fee_bps: r.try_get("fee_bps")?,
                treasury: r.try_get("treasury")?,
                admin: r.try_get("admin")?,
            });
        }
        w.before = Some(Box::new(Before {
            datasets: w.datasets.clone(),
            jobs: w.jobs.clone(),
            orchestrators: w.orchestrators.clone(),
            protocol: w.protocol.clone(),
        }));
        Ok(w)
    }

    /// The state before the batch of every row the batch changed.
    pub(crate) fn undo_records(&self) -> Result<Vec<UndoRecord>> {
        let Some(before) = &self.before else {
            return Ok(Vec::new());
        };
        let mut records = Vec::new();
        for key in &self.dirty_datasets {
            records.push(UndoRecord {
                kind: "dataset".into(),
                key: key.clone(),
                before: before.datasets.get(key).map(json).transpose()?,
            });
        }
        for key in &self.dirty_jobs {
            records.push(UndoRecord {
                kind: "job".into(),
                key: key.to_string(),
                before: before.jobs.get(key).map(json).transpose()?,
            });
        }
        for key in &self.dirty_orchestrators {
            records.push(UndoRecord {
                kind: "orchestrator".into(),
                key: key.clone(),
                before: before.orchestrators.get(key).map(json).transpose()?,
            });
        }
        if self.dirty_protocol {
            records.push(UndoRecord {
                kind: "protocol".into(),
                key: "1".into(),
                before: before.protocol.as_ref().map(json).transpose()?,
            });
        }
        Ok(records)
    }

    /// Puts back the rows described by one batch's undo records.
    pub(crate) async fn restore(conn: &mut AnyConnection, records: &[UndoRecord]) -> Result<()> {
        let mut w = Self::default();
        for record in records {
            let Some(before) = &record.before else {
                let (table, column) = match record.kind.as_str() {
                    "dataset" => ("datasets", "root"),
                    "job" => ("jobs", "id"),
                    "orchestrator" => ("orchestrators", "address"),
                    "protocol" => ("protocol", "id"),
                    other => return Err(Error::Corrupt(format!("undo record of kind `{other}`"))),
                };
                let sql = format!("DELETE FROM {table} WHERE {column} = $1");
                if matches!(record.kind.as_str(), "job" | "protocol") {
                    let key: i64 = record
                        .key
                        .parse()
                        .map_err(|_| Error::Corrupt(format!("undo record key `{}`", record.key)))?;
                    sqlx::query(&sql).bind(key).execute(&mut *conn).await?;
                } else {
                    sqlx::query(&sql)
                        .bind(&record.key)
                        .execute(&mut *conn)
                        .await?;
                }
                continue;
            };
            match record.kind.as_str() {
                "dataset" => {
                    w.datasets.insert(record.key.clone(), unjson(before)?);
                    w.dirty_datasets.insert(record.key.clone());
                }
                "job" => {
                    let id: i64 = record
                        .key
                        .parse()
                        .map_err(|_| Error::Corrupt(format!("undo record key `{}`", record.key)))?;
                    w.jobs.insert(id, unjson(before)?);
                    w.dirty_jobs.insert(id);
                }
                "orchestrator" => {
                    w.orchestrators.insert(record.key.clone(), unjson(before)?);
                    w.dirty_orchestrators.insert(record.key.clone());
                }
                "protocol" => {
                    w.protocol = Some(unjson(before)?);
                    w.dirty_protocol = true;
                }
                other => return Err(Error::Corrupt(format!("undo record of kind `{other}`"))),
            }
        }
        w.flush(conn).await
    }

    fn transition(&mut self, job: u64, state: &'static str, at: &Position) {
        let key = (to_i64(job), state);
        if self.transition_keys.insert(key) {
            self.transitions.push((key.0, state, at.clone()));
        }
    }

    fn job_mut(&mut self, job: u64, at: &Position) -> Option<&mut JobRow> {
        let id = to_i64(job);
        let row = self.jobs.get_mut(&id)?;
        row.updated_block = at.block;
        self.dirty_jobs.insert(id);
        Some(row)
    }

    fn dataset_mut(&mut self, root: &str, at: &Position) -> Option<&mut DatasetRow> {
        let row = self.datasets.get_mut(root)?;
        row.updated_block = at.block;
        self.dirty_datasets.insert(root.to_owned());
        Some(row)
    }

    fn protocol_mut(&mut self) -> &mut ProtocolRow {
        self.dirty_protocol = true;
        self.protocol.get_or_insert_with(ProtocolRow::default)
    }

    fn finish(
        &mut self,
        job: u64,
        state: &'static str,
        refund: &str,
        reason: Option<&str>,
        at: &Position,
    ) {
        if let Some(row) = self.job_mut(job, at) {
            row.state = state.to_owned();
            row.refund = Some(refund.to_owned());
            row.fail_reason = reason.map(str::to_owned);
        }
        self.transition(job, state, at);
    }

    /// Applies one event to the working set.
    pub(crate) fn apply(&mut self, at: &Position, event: &Event) {
        match event {
            Event::OrchestratorRegistered {
                orchestrator,
                public_key,
            } => {
                let row = self
                    .orchestrators
                    .entry(orchestrator.clone())
                    .or_insert_with(|| OrchestratorRow {
                        public_key: String::new(),
                        active: 1,
                        registered_block: at.block,
                        updated_block: at.block,
                    });
                row.public_key = public_key.clone();
                row.active = 1;
                row.updated_block = at.block;
                self.dirty_orchestrators.insert(orchestrator.clone());
            }
            Event::OrchestratorKeyRotated {
                orchestrator,
                public_key,
            } => {
                if let Some(row) = self.orchestrators.get_mut(orchestrator) {
                    row.public_key = public_key.clone();
                    row.updated_block = at.block;
                    self.dirty_orchestrators.insert(orchestrator.clone());
                }
            }
            Event::OrchestratorDeactivated { orchestrator } => {
                if let Some(row) = self.orchestrators.get_mut(orchestrator) {
                    row.active = 0;
                    row.updated_block = at.block;
                    self.dirty_orchestrators.insert(orchestrator.clone());
                }
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
                if !self.datasets.contains_key(dataset_root) {
                    self.datasets.insert(
                        dataset_root.clone(),
                        DatasetRow {
                            owner: owner.clone(),
                            orchestrator: orchestrator.clone(),
                            envelope_root: envelope_root.clone(),
                            manifest_root: manifest_root.clone(),
                            price_per_epoch: policy.price_per_epoch.clone(),
                            max_epochs_per_run: i64::from(policy.max_epochs_per_run),
                            max_runs_per_requester: i64::from(policy.max_runs_per_requester),
                            session_ttl: i64::from(policy.session_ttl),
                            allowed_purposes: i64::from(policy.allowed_purposes),
                            expiry: to_i64(policy.expiry),
                            policy_hash: policy_hash.clone(),
                            paused: 0,
                            job_count: 0,
                            created_block: at.block,
                            created_log_index: at.log_index,
                            created_time: at.time,
                            created_tx: at.tx.clone(),
                            updated_block: at.block,
                        },
                    );
                    self.dirty_datasets.insert(dataset_root.clone());
                }
            }
            Event::PolicyUpdated {
                dataset_root,
                policy,
                policy_hash,
            } => {
                if let Some(row) = self.dataset_mut(dataset_root, at) {
                    row.price_per_epoch = policy.price_per_epoch.clone();
                    row.max_epochs_per_run = i64::from(policy.max_epochs_per_run);
                    row.max_runs_per_requester = i64::from(policy.max_runs_per_requester);
                    row.session_ttl = i64::from(policy.session_ttl);
                    row.allowed_purposes = i64::from(policy.allowed_purposes);
                    row.expiry = to_i64(policy.expiry);
                    row.policy_hash = policy_hash.clone();
                }
            }
            Event::DatasetPaused { dataset_root } => {
                if let Some(row) = self.dataset_mut(dataset_root, at) {
                    row.paused = 1;
                }
            }
            Event::DatasetResumed { dataset_root } => {
                if let Some(row) = self.dataset_mut(dataset_root, at) {
                    row.paused = 0;
                }
            }
            Event::EnvelopeRotated {
                dataset_root,
                envelope_root,
            } => {
                if let Some(row) = self.dataset_mut(dataset_root, at) {
                    row.envelope_root = envelope_root.clone();
                }
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
                let id = to_i64(*job_id);
                if let Entry::Vacant(slot) = self.jobs.entry(id) {
                    slot.insert(JobRow {
                        dataset_root: dataset_root.clone(),
                        researcher: researcher.clone(),
                        epochs: i64::from(*epochs),
                        purpose: i64::from(*purpose),
                        result_key: result_key.clone(),
                        price_per_epoch: price_per_epoch.clone(),
                        escrow: escrow.clone(),
                        expires_at: to_i64(*expires_at),
                        state: "Granted".to_owned(),
                        run_deadline: None,
                        actual_epochs: None,
                        result_hash: None,
                        attestation_ref: None,
                        royalty: None,
                        fee: None,
                        fee_treasury: None,
                        refund: None,
                        fail_reason: None,
                        created_block: at.block,
                        created_time: at.time,
                        created_tx: at.tx.clone(),
                        updated_block: at.block,
                    });
                    self.dirty_jobs.insert(id);
                    if let Some(dataset) = self.datasets.get_mut(dataset_root) {
                        dataset.job_count += 1;
                        self.dirty_datasets.insert(dataset_root.clone());
                    }
                }
                self.transition(*job_id, "Granted", at);
            }
            Event::JobStarted {
                job_id,
                run_deadline,
            } => {
                if let Some(row) = self.job_mut(*job_id, at) {
                    row.state = "Running".to_owned();
                    row.run_deadline = Some(to_i64(*run_deadline));
                }
                self.transition(*job_id, "Running", at);
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
                let treasury = self.protocol.as_ref().map(|p| p.treasury.clone());
                if let Some(row) = self.job_mut(*job_id, at) {
                    row.state = "Completed".to_owned();
                    row.actual_epochs = Some(i64::from(*actual_epochs));
                    row.result_hash = Some(result_hash.clone());
                    row.attestation_ref = Some(attestation_ref.clone());
                    row.royalty = Some(royalty.clone());
                    row.fee = Some(fee.clone());
                    row.refund = Some(refund.clone());
                    row.fee_treasury = treasury;
                }
                self.transition(*job_id, "Completed", at);
            }
            Event::JobFailed {
                job_id,
                reason,
                refund,
            } => self.finish(*job_id, "Failed", refund, Some(reason), at),
            Event::JobExpired { job_id, refund } => {
                self.finish(*job_id, "Expired", refund, None, at);
            }
            Event::JobReclaimed { job_id, refund } => {
                self.finish(*job_id, "Reclaimed", refund, None, at);
            }
            Event::Withdrawn { account, amount } => {
                self.withdrawals
                    .push((account.clone(), amount.clone(), at.clone()));
            }
            Event::ProtocolFeeSet { fee_bps, treasury } => {
                let p = self.protocol_mut();
                p.fee_bps = i64::from(*fee_bps);
                p.treasury = treasury.clone();
            }
            Event::AdminTransferred { new_admin, .. } => {
                self.protocol_mut().admin = new_admin.clone();
            }
        }
    }

    /// Writes every changed row back.
    pub(crate) async fn flush(self, conn: &mut AnyConnection) -> Result<()> {
        let datasets: Vec<(&String, &DatasetRow)> = self
            .dirty_datasets
            .iter()
            .filter_map(|k| self.datasets.get(k).map(|row| (k, row)))
            .collect();
        for chunk in datasets.chunks(CHUNK) {
            let mut q: QueryBuilder<'_, Any> = QueryBuilder::new(
                "INSERT INTO datasets (root, owner, orchestrator, envelope_root, manifest_root, \
                 price_per_epoch, price_sort, max_epochs_per_run, max_runs_per_requester, session_ttl, \
                 allowed_purposes, expiry, policy_hash, paused, job_count, created_block, \
                 created_log_index, created_time, created_tx, updated_block) ",
            );
            q.push_values(chunk, |mut b, (root, d)| {
                b.push_bind(root.as_str())
                    .push_bind(&d.owner)
                    .push_bind(&d.orchestrator)
                    .push_bind(&d.envelope_root)
                    .push_bind(&d.manifest_root)
                    .push_bind(&d.price_per_epoch)
                    .push_bind(price_sort_key(&d.price_per_epoch))
                    .push_bind(d.max_epochs_per_run)
                    .push_bind(d.max_runs_per_requester)
                    .push_bind(d.session_ttl)
                    .push_bind(d.allowed_purposes)
                    .push_bind(d.expiry)
                    .push_bind(&d.policy_hash)
                    .push_bind(d.paused)
                    .push_bind(d.job_count)
                    .push_bind(d.created_block)
                    .push_bind(d.created_log_index)
                    .push_bind(d.created_time)
                    .push_bind(&d.created_tx)
                    .push_bind(d.updated_block);
            });
            q.push(
                " ON CONFLICT (root) DO UPDATE SET envelope_root = excluded.envelope_root, \
                 price_per_epoch = excluded.price_per_epoch, price_sort = excluded.price_sort, \
                 max_epochs_per_run = excluded.max_epochs_per_run, \
                 max_runs_per_requester = excluded.max_runs_per_requester, \
                 session_ttl = excluded.session_ttl, allowed_purposes = excluded.allowed_purposes, \
                 expiry = excluded.expiry, policy_hash = excluded.policy_hash, paused = excluded.paused, \
                 job_count = excluded.job_count, updated_block = excluded.updated_block",
            );
            let (sql, args) = numbered(&mut q, Backend::of_connection(conn))?;
            sqlx::query_with(&sql, args).execute(&mut *conn).await?;
        }
        let jobs: Vec<(i64, &JobRow)> = self
            .dirty_jobs
            .iter()
            .filter_map(|k| self.jobs.get(k).map(|row| (*k, row)))
            .collect();
        for chunk in jobs.chunks(CHUNK) {
            let mut q: QueryBuilder<'_, Any> = QueryBuilder::new(
                "INSERT INTO jobs (id, dataset_root, researcher, epochs, purpose, result_key, \
                 price_per_epoch, escrow, expires_at, state, run_deadline, actual_epochs, result_hash, \
                 attestation_ref, royalty, fee, fee_treasury, refund, fail_reason, created_block, \
                 created_time, created_tx, updated_block) ",
            );
            q.push_values(chunk, |mut b, (id, j)| {
                b.push_bind(*id)
                    .push_bind(&j.dataset_root)
                    .push_bind(&j.researcher)
                    .push_bind(j.epochs)
                    .push_bind(j.purpose)
                    .push_bind(&j.result_key)
                    .push_bind(&j.price_per_epoch)
                    .push_bind(&j.escrow)
                    .push_bind(j.expires_at)
                    .push_bind(&j.state)
                    .push_bind(j.run_deadline)
                    .push_bind(j.actual_epochs)
                    .push_bind(&j.result_hash)
                    .push_bind(&j.attestation_ref)
                    .push_bind(&j.royalty)
                    .push_bind(&j.fee)
                    .push_bind(&j.fee_treasury)
                    .push_bind(&j.refund)
                    .push_bind(&j.fail_reason)
                    .push_bind(j.created_block)
                    .push_bind(j.created_time)
                    .push_bind(&j.created_tx)
                    .push_bind(j.updated_block);
            });
            q.push(
                " ON CONFLICT (id) DO UPDATE SET state = excluded.state, \
                 run_deadline = excluded.run_deadline, actual_epochs = excluded.actual_epochs, \
                 result_hash = excluded.result_hash, attestation_ref = excluded.attestation_ref, \
                 royalty = excluded.royalty, fee = excluded.fee, fee_treasury = excluded.fee_treasury, \
                 refund = excluded.refund, fail_reason = excluded.fail_reason, \
                 updated_block = excluded.updated_block",
            );
            let (sql, args) = numbered(&mut q, Backend::of_connection(conn))?;
            sqlx::query_with(&sql, args).execute(&mut *conn).await?;
        }
        for chunk in self.transitions.chunks(CHUNK) {
            let mut q: QueryBuilder<'_, Any> = QueryBuilder::new(
                "INSERT INTO job_transitions (job_id, state, block_number, log_index, block_time, tx_hash) ",
            );
            q.push_values(chunk, |mut b, (job, state, at)| {
                b.push_bind(*job)
                    .push_bind(*state)
                    .push_bind(at.block)
                    .push_bind(at.log_index)
                    .push_bind(at.time)
                    .push_bind(&at.tx);
            });
            q.push(" ON CONFLICT DO NOTHING");
            let (sql, args) = numbered(&mut q, Backend::of_connection(conn))?;
            sqlx::query_with(&sql, args).execute(&mut *conn).await?;
        }
        for chunk in self.withdrawals.chunks(CHUNK) {
            let mut q: QueryBuilder<'_, Any> = QueryBuilder::new(
                "INSERT INTO withdrawals (account, amount, block_number, log_index, block_time, tx_hash) ",
            );
            q.push_values(chunk, |mut b, (account, amount, at)| {
                b.push_bind(account)
                    .push_bind(amount)
                    .push_bind(at.block)
                    .push_bind(at.log_index)
                    .push_bind(at.time)
                    .push_bind(&at.tx);
            });
            q.push(" ON CONFLICT DO NOTHING");
            let (sql, args) = numbered(&mut q, Backend::of_connection(conn))?;
            sqlx::query_with(&sql, args).execute(&mut *conn).await?;
        }
        for address in &self.dirty_orchestrators {
            let Some(o) = self.orchestrators.get(address) else {
                continue;
            };
            sqlx::query(
                "INSERT INTO orchestrators (address, public_key, active, registered_block, updated_block) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (address) DO UPDATE SET \
                 public_key = excluded.public_key, active = excluded.active, \
                 updated_block = excluded.updated_block",
            )
            .bind(address)
            .bind(&o.public_key)
            .bind(o.active)
            .bind(o.registered_block)
            .bind(o.updated_block)
            .execute(&mut *conn)
            .await?;
        }
        if let Some(p) = self.protocol.as_ref().filter(|_| self.dirty_protocol) {
            sqlx::query(
                "INSERT INTO protocol (id, fee_bps, treasury, admin) VALUES (1, $1, $2, $3) \
                 ON CONFLICT (id) DO UPDATE SET fee_bps = excluded.fee_bps, \
                 treasury = excluded.treasury, admin = excluded.admin",
            )
            .bind(p.fee_bps)
            .bind(&p.treasury)
            .bind(&p.admin)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}
