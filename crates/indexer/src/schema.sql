-- LICEN indexer schema. Portable SQL: $N parameters, BIGINT 0/1 flags, TEXT for hex and for
-- wei amounts (uint256 does not fit any SQL integer), so Postgres can run the same statements.

-- Which deployment this database indexes (one row, written on the first start): a database is
-- never reused for another contract or chain, whose events would mix with these. The anchor
-- (the start block of the first run and its hash) tells a replaced chain from this one: a dev
-- chain started afresh has the same id and deploys to the same address. Databases written
-- before the anchor existed get its columns added, and it recorded, on their next start.
CREATE TABLE IF NOT EXISTS deployment (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    chain_id BIGINT NOT NULL,
    contract TEXT NOT NULL,
    anchor_block BIGINT,
    anchor_hash TEXT
);

-- Where the follower stopped: the last fully indexed block and its hash (one row).
CREATE TABLE IF NOT EXISTS cursor (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    block_number BIGINT NOT NULL,
    block_hash TEXT NOT NULL
);

-- Recent block hashes (cursor blocks and blocks with events), for reorg detection.
CREATE TABLE IF NOT EXISTS blocks (
    number BIGINT PRIMARY KEY,
    hash TEXT NOT NULL
);

-- Every DataPolicy event as decoded: the source of truth the other tables are derived from.
CREATE TABLE IF NOT EXISTS events (
    block_number BIGINT NOT NULL,
    block_hash TEXT NOT NULL,
    log_index BIGINT NOT NULL,
    tx_hash TEXT NOT NULL,
    block_time BIGINT NOT NULL,
    name TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (block_hash, log_index)
);
CREATE INDEX IF NOT EXISTS events_by_position ON events (block_number, log_index);

CREATE TABLE IF NOT EXISTS protocol (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    fee_bps BIGINT NOT NULL DEFAULT 0,
    treasury TEXT NOT NULL DEFAULT '',
    admin TEXT NOT NULL DEFAULT ''
);

CREATE TABLE IF NOT EXISTS orchestrators (
    address TEXT PRIMARY KEY,
    public_key TEXT NOT NULL,
    active BIGINT NOT NULL,
    registered_block BIGINT NOT NULL,
    updated_block BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS datasets (
    root TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    orchestrator TEXT NOT NULL,
    envelope_root TEXT NOT NULL,
    manifest_root TEXT NOT NULL,
    price_per_epoch TEXT NOT NULL,
    -- price_per_epoch left-padded with zeros to 40 digits: sorts and compares as text.
    price_sort TEXT NOT NULL,
    max_epochs_per_run BIGINT NOT NULL,
    max_runs_per_requester BIGINT NOT NULL,
    session_ttl BIGINT NOT NULL,
    allowed_purposes BIGINT NOT NULL,
    expiry BIGINT NOT NULL,
    policy_hash TEXT NOT NULL,
    paused BIGINT NOT NULL,
    job_count BIGINT NOT NULL,
    created_block BIGINT NOT NULL,
    created_log_index BIGINT NOT NULL,
    created_time BIGINT NOT NULL,
    created_tx TEXT NOT NULL,
    updated_block BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS datasets_by_owner ON datasets (owner);
CREATE INDEX IF NOT EXISTS datasets_newest ON datasets (created_block, created_log_index);
CREATE INDEX IF NOT EXISTS datasets_by_price ON datasets (price_sort, root);
-- In the listing's order (most requested first, ties by root ascending): an index in the
-- other direction for one column cannot serve that ORDER BY, and the sort then reads every row.
DROP INDEX IF EXISTS datasets_by_popularity;
CREATE INDEX IF NOT EXISTS datasets_popular_first ON datasets (job_count DESC, root);

CREATE TABLE IF NOT EXISTS jobs (
    id BIGINT PRIMARY KEY,
    dataset_root TEXT NOT NULL,
    researcher TEXT NOT NULL,
    epochs BIGINT NOT NULL,
    purpose BIGINT NOT NULL,
    result_key TEXT NOT NULL,
    price_per_epoch TEXT NOT NULL,
    escrow TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    state TEXT NOT NULL,
    run_deadline BIGINT,
    actual_epochs BIGINT,
    result_hash TEXT,
    attestation_ref TEXT,
    royalty TEXT,
    fee TEXT,
    -- the treasury credited with `fee` (the protocol's treasury at settlement)
    fee_treasury TEXT,
    refund TEXT,
    fail_reason TEXT,
    created_block BIGINT NOT NULL,
    created_time BIGINT NOT NULL,
    created_tx TEXT NOT NULL,
    updated_block BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_dataset ON jobs (dataset_root);
CREATE INDEX IF NOT EXISTS jobs_by_researcher ON jobs (researcher);

CREATE TABLE IF NOT EXISTS job_transitions (
    job_id BIGINT NOT NULL,
    state TEXT NOT NULL,
    block_number BIGINT NOT NULL,
    log_index BIGINT NOT NULL,
    block_time BIGINT NOT NULL,
    tx_hash TEXT NOT NULL,
    PRIMARY KEY (job_id, state)
);

CREATE TABLE IF NOT EXISTS withdrawals (
    account TEXT NOT NULL,
    amount TEXT NOT NULL,
    block_number BIGINT NOT NULL,
    log_index BIGINT NOT NULL,
    block_time BIGINT NOT NULL,
    tx_hash TEXT NOT NULL,
    PRIMARY KEY (block_number, log_index)
);
CREATE INDEX IF NOT EXISTS withdrawals_by_account ON withdrawals (account);

-- One row per rewind: the live stream tells its clients what was undone.
CREATE TABLE IF NOT EXISTS reorgs (
    id BIGINT PRIMARY KEY,
    rewound_to BIGINT NOT NULL,
    removed_events BIGINT NOT NULL
);

-- Undo log for cheap rewinds: one row per committed batch (with the cursor before it) and,
-- per batch, the state before it of every derived row it changed (NULL = the row did not
-- exist). Kept for the newest batches only; a rewind further back recomputes everything.
CREATE TABLE IF NOT EXISTS batches (
    batch_to BIGINT PRIMARY KEY,
    prev_number BIGINT,
    prev_hash TEXT
);
CREATE TABLE IF NOT EXISTS undo (
    batch_to BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    row_key TEXT NOT NULL,
    before TEXT,
    PRIMARY KEY (batch_to, seq)
);

-- Dataset manifests fetched from storage by their root (see `manifests.rs`). A root names its
-- content, so a fetched row never changes; the table is a cache beside the event-derived
-- tables, untouched by rewinds. `state`: 'fetched', 'pending' (retried at next_attempt_ms) or
-- 'invalid' (not a manifest, or over the size cap: never retried). `search_text` is the
-- lowercased name and description that text search matches with LIKE.
CREATE TABLE IF NOT EXISTS manifests (
    manifest_root TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    name TEXT,
    description TEXT,
    search_text TEXT,
    attempts BIGINT NOT NULL,
    next_attempt_ms BIGINT NOT NULL,
    error TEXT
);
CREATE INDEX IF NOT EXISTS manifests_due ON manifests (state, next_attempt_ms);
