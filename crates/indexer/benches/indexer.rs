//! Indexer benchmarks (`cargo bench -p licen-indexer --bench indexer [-- list|sync|live]`):
//! issue 4's figures, each printed as a ratio to its limit.
//!
//! - `list`: list queries over 10k indexed datasets with filters (text search included), sorts
//!   and cursors: p99 (limit 20 ms);
//! - `sync`: initial sync over JSON-RPC from a real anvil (limit ≥ 10,000 events/s into
//!   SQLite); `LICEN_BENCH_EVENTS` sets how many datasets are published first (default 100,000);
//! - `live`: a dataset published on a dev anvil until it is visible in the query API of a
//!   running indexer with the dev settings (limit 250 ms).
//!
//! Each runs on SQLite and, when `LICEN_TEST_POSTGRES_URL` names a server (e.g. under
//! `cargo xtask with-postgres`), on Postgres too.

use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider;
use alloy::providers::ext::AnvilApi;
use futures_util::StreamExt;
use licen_chain::bindings::DataPolicy;
use licen_chain::policy_to_sol;
use licen_chain::testing::TestEnv;
use licen_indexer::event::{Event, Located, PolicyRecord};
use licen_indexer::query::{DatasetFilter, Sort, datasets};
use licen_indexer::testing::TestDb;
use licen_indexer::{Backend, Cursor, Follower, FollowerConfig, RpcSource};
use licen_types::{DatasetRoot, Policy, Purpose};
use std::time::{Duration, Instant};

const BACKENDS: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    if wanted("list") {
        for backend in BACKENDS {
            runtime.block_on(list_query_latency(backend));
        }
    }
    if wanted("sync") {
        runtime.block_on(rpc_initial_sync_throughput());
    }
    if wanted("live") {
        for backend in BACKENDS {
            runtime.block_on(live_latency(backend));
        }
    }
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

const WORDS: [&str; 8] = [
    "clinical", "legal", "code", "finance", "chat", "math", "science", "news",
];

async fn list_query_latency(backend: Backend) {
    const DATASETS: u64 = 10_000;
    let Some(store) = TestDb::create(backend).await.unwrap() else {
        return;
    };
    let db = store.open().await;
    let at = |i: u64| (1 + i / 10, i % 10);
    let mut events: Vec<Located> = (0..DATASETS)
        .map(|i| Located {
            block_number: at(i).0,
            block_hash: B256::from(U256::from(at(i).0)),
            block_time: 1000,
            tx_hash: B256::repeat_byte(1),
            log_index: at(i).1,
            event: Event::DatasetPublished {
                dataset_root: licen_indexer::event::hex_b256(&B256::from(U256::from(i + 1))),
                owner: format!("0x{:040x}", i % 50),
                orchestrator: format!("0x{:040x}", 7),
                envelope_root: format!("0x{:064x}", 1),
                manifest_root: format!("0x{:064x}", 1_000_000 + i),
                policy: PolicyRecord {
                    price_per_epoch: ((i * 7919) % 100_000 * 1_000_000_000).to_string(),
                    max_epochs_per_run: 5,
                    max_runs_per_requester: 3,
                    session_ttl: 600,
                    allowed_purposes: u32::try_from(1 + i % 127).unwrap(),
                    expiry: 0,
                },
                policy_hash: format!("0x{:064x}", 3),
            },
        })
        .collect();
    for j in 0..DATASETS {
        let (block, index) = at(DATASETS + j);
        events.push(Located {
            block_number: block,
            block_hash: B256::from(U256::from(block)),
            block_time: 1000,
            tx_hash: B256::repeat_byte(2),
            log_index: index,
            event: Event::AccessGranted {
                job_id: j + 1,
                dataset_root: licen_indexer::event::hex_b256(&B256::from(U256::from(
                    (j * j) % DATASETS + 1,
                ))),
                researcher: format!("0x{:040x}", j % 300),
                epochs: 1,
                purpose: 0,
                result_key: format!("0x{:064x}", 4),
                price_per_epoch: "1".into(),
                escrow: "1".into(),
                expires_at: 9,
            },
        });
    }
    let last = events.last().unwrap().block_number;
    db.commit_batch(
        &events,
        &[],
        Cursor {
            number: last,
            hash: B256::from(U256::from(last)),
        },
    )
    .await
    .unwrap();
    // every dataset's manifest fetched, as the manifest fetcher leaves them
    for chunk in (0..DATASETS).collect::<Vec<_>>().chunks(1000) {
        let mut q = sqlx::QueryBuilder::<sqlx::Any>::new(
            "INSERT INTO manifests (manifest_root, state, name, description, search_text, attempts, next_attempt_ms) ",
        );
        q.push_values(chunk, |mut b, i| {
            let name = format!("{} corpus {i}", WORDS[(*i % 8) as usize]);
            let description = format!("{} examples of {}", i * 3, WORDS[(*i / 8 % 8) as usize]);
            b.push_bind(format!("0x{:064x}", 1_000_000 + i))
                .push_bind("fetched")
                .push_bind(name.clone())
                .push_bind(description.clone())
                .push_bind(format!("{name}\n{description}").to_lowercase())
                .push_bind(1i64)
                .push_bind(0i64);
        });
        let sql = q.sql().to_owned();
        let mut n = 0;
        let sql: String = sql
            .chars()
            .flat_map(|c| {
                if c == '?' {
                    n += 1;
                    format!("${n}").chars().collect::<Vec<_>>()
                } else {
                    vec![c]
                }
            })
            .collect();
        let args = sqlx::Execute::take_arguments(&mut q.build())
            .unwrap()
            .unwrap();
        sqlx::query_with(&sql, args)
            .execute(db.pool())
            .await
            .unwrap();
    }
    if backend == Backend::Postgres {
        // what autovacuum does after a bulk load: planner statistics for the new rows
        sqlx::query("ANALYZE").execute(db.pool()).await.unwrap();
    }
    let filters = [
        DatasetFilter::default(),
        DatasetFilter {
            text: Some("clinical".into()),
            ..DatasetFilter::default()
        },
        DatasetFilter {
            text: Some("Examples of LEGAL".into()),
            purpose: Some(Purpose::Research),
            sort: Sort::Price,
            ..DatasetFilter::default()
        },
        DatasetFilter {
            purpose: Some(Purpose::Evaluation),
            sort: Sort::Price,
            ..DatasetFilter::default()
        },
        DatasetFilter {
            max_price: Some(5_000_000_000_000),
            active: Some(true),
            sort: Sort::Popularity,
            ..DatasetFilter::default()
        },
        DatasetFilter {
            owner: Some(Address::from_word(B256::from(U256::from(7)))),
            sort: Sort::Newest,
            ..DatasetFilter::default()
        },
    ];
    let mut times = Vec::new();
    let mut per_filter = vec![Vec::new(); filters.len()];
    for round in 0..100 {
        for (which, filter) in filters.iter().enumerate() {
            let mut filter = filter.clone();
            if round % 2 == 1 {
                let first = datasets(&db, &filter).await.unwrap();
                filter.cursor = first.next_cursor;
            }
            let started = std::time::Instant::now();
            let page = datasets(&db, &filter).await.unwrap();
            times.push(started.elapsed());
            per_filter[which].push(started.elapsed());
            assert!(!page.items.is_empty());
        }
    }
    for (which, filter_times) in per_filter.iter_mut().enumerate() {
        filter_times.sort();
        eprintln!(
            "  filter set {which} ({backend:?}): p50 {:?}, p99 {:?}",
            percentile(filter_times, 0.5),
            percentile(filter_times, 0.99)
        );
    }
    times.sort();
    let p99 = percentile(&times, 0.99);
    println!(
        "list query over {DATASETS} datasets ({backend:?}, {} queries, 6 filter sets): p50 {:?}, p99 {p99:?}, max {:?}; \
         p99 / 20 ms limit = {:.3}",
        times.len(),
        percentile(&times, 0.5),
        times[times.len() - 1],
        p99.as_secs_f64() / 0.020
    );
    db.close().await;
}

/// Publishes `n` datasets from the owner account quickly: explicit nonces and gas (no
/// per-transaction estimates), 64 in flight, automine off and one block mined per 1000
/// transactions, so a block holds many events as on a busy chain. The block gas limit is raised
/// so those blocks stay under the gas target: at anvil's default 30M they are full, the base fee
/// climbs 12.5% a block and soon prices the remaining transactions out.
async fn publish_many(env: &TestEnv, n: u32, policy: &Policy) {
    const PER_BLOCK: usize = 1000;
    let provider = env.owner.provider().clone();
    let contract = DataPolicy::new(env.deployment.address, provider.clone());
    let sol_policy = policy_to_sol(policy);
    let root = |i: u32| {
        let mut root = [0u8; 32];
        root[28..].copy_from_slice(&(i + 1).to_be_bytes());
        B256::from(root)
    };
    let publish = |i: u32| {
        contract.publish(
            root(i),
            env.address_of(2),
            B256::repeat_byte(0xE0),
            B256::repeat_byte(0xA0),
            sol_policy.clone(),
        )
    };
    let gas = publish(0).estimate_gas().await.unwrap() * 3 / 2;
    let first_nonce = provider
        .get_transaction_count(env.address_of(3))
        .await
        .unwrap();
    provider.anvil_set_auto_mine(false).await.unwrap();
    provider
        .anvil_set_block_gas_limit(gas * PER_BLOCK as u64 * 4)
        .await
        .unwrap();
    let ids: Vec<u32> = (0..n).collect();
    for chunk in ids.chunks(PER_BLOCK) {
        let sends = futures_util::stream::iter(chunk.iter().copied())
            .map(|i| {
                let call = publish(i)
                    .gas(gas)
                    .max_fee_per_gas(100_000_000_000)
                    .max_priority_fee_per_gas(1)
                    .nonce(first_nonce + u64::from(i));
                async move { call.send().await.map(|pending| (i, *pending.tx_hash())) }
            })
            .buffer_unordered(64);
        let sent: Vec<(u32, B256)> = sends.map(|r| r.unwrap()).collect().await;
        // the highest nonce is mined last: once it is, the whole chunk is
        let newest = sent.iter().max_by_key(|(i, _)| *i).unwrap().1;
        let mut blocks = 0;
        loop {
            provider.anvil_mine(Some(1), None).await.unwrap();
            if let Some(receipt) = provider.get_transaction_receipt(newest).await.unwrap() {
                assert!(receipt.status(), "a publish transaction reverted");
                break;
            }
            blocks += 1;
            assert!(
                blocks < 100,
                "the published transactions are not being mined"
            );
        }
    }
    provider.anvil_set_auto_mine(true).await.unwrap();
}

async fn rpc_initial_sync_throughput() {
    let n: u32 = std::env::var("LICEN_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let env = TestEnv::start().await.unwrap();
    let p = Policy {
        price_per_epoch: 1_000_000_000_000_000,
        max_epochs_per_run: 5,
        max_runs_per_requester: 5,
        session_ttl: 600,
        allowed_purposes: [Purpose::Research].into_iter().collect(),
        expiry: None,
    };
    let made = Instant::now();
    publish_many(&env, n, &p).await;
    let head = env.admin.provider().get_block_number().await.unwrap();
    eprintln!(
        "published {n} datasets in {:?} ({head} blocks)",
        made.elapsed()
    );
    for backend in BACKENDS {
        let Some(store) = TestDb::create(backend).await.unwrap() else {
            continue;
        };
        let db = store.open().await;
        let mut config = FollowerConfig::new(env.deployment.address, env.deployment.block);
        config.max_range = 100_000;
        let mut f = Follower::new(
            RpcSource::new(env.admin.provider().clone()),
            db.clone(),
            config,
        );
        let started = Instant::now();
        let stored = f.sync_to_head().await.unwrap();
        let elapsed = started.elapsed();
        let rate = stored as f64 / elapsed.as_secs_f64();
        println!(
            "initial sync over RPC from anvil ({backend:?}): {stored} events in {elapsed:.2?} = {rate:.0} events/s; \
             / 10,000 events/s target = {:.2}x",
            rate / 10_000.0
        );
        assert!(stored >= u64::from(n));
        db.close().await;
    }
}

/// Publish → visible in `GET /datasets/{root}` of a running indexer (dev settings: no
/// confirmations, 100 ms polls), timed from the mined receipt.
async fn live_latency(backend: Backend) {
    const SAMPLES: u32 = 40;
    let Some(store) = TestDb::create(backend).await.unwrap() else {
        return;
    };
    let env = TestEnv::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = licen_indexer::IndexerConfig::new(
        env.chain.rpc_url(),
        env.deployment.address,
        env.deployment.block,
        dir.path().to_owned(),
    );
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.database_url = Some(store.url().to_owned());
    let poll = config.poll_interval;
    let running = licen_indexer::start(config).await.unwrap();
    let http = reqwest::Client::new();
    let p = Policy {
        price_per_epoch: 1_000_000_000_000_000,
        max_epochs_per_run: 5,
        max_runs_per_requester: 5,
        session_ttl: 600,
        allowed_purposes: [Purpose::Research].into_iter().collect(),
        expiry: None,
    };
    let mut times = Vec::new();
    for i in 0..SAMPLES {
        let root = B256::from(U256::from(0xBEEF_0000u64 + u64::from(i)));
        env.owner
            .publish(
                DatasetRoot(root),
                env.address_of(2),
                B256::repeat_byte(0xE0),
                B256::repeat_byte(0xA0),
                &p,
            )
            .await
            .unwrap();
        let mined = Instant::now();
        let url = format!("http://{}/datasets/{root:#x}", running.api_addr());
        while !http.get(&url).send().await.unwrap().status().is_success() {
            assert!(mined.elapsed() < Duration::from_secs(10), "never visible");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        times.push(mined.elapsed());
        // de-phase from the poll timer so samples cover the whole poll interval
        tokio::time::sleep(Duration::from_millis(37)).await;
    }
    times.sort();
    let p99 = percentile(&times, 0.99);
    println!(
        "live latency mined → visible in the API ({backend:?}, poll {poll:?}, {SAMPLES} samples): \
         p50 {:?}, p99 {p99:?}, max {:?}; max / 250 ms limit = {:.2}",
        percentile(&times, 0.5),
        times[times.len() - 1],
        times[times.len() - 1].as_secs_f64() / 0.250
    );
    running.stop().await.unwrap();
}
