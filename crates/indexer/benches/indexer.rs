//! Indexer benchmarks (`cargo bench -p licen-indexer --bench indexer`): issue 4's figures.
//!
//! - list queries over 10k indexed datasets with filters, sorts and cursors: p99 (limit 20 ms);
//! - initial sync over JSON-RPC from a real anvil (limit ≥ 10,000 events/s);
//!   `LICEN_BENCH_EVENTS` sets how many datasets are published first (default 5000).

use alloy::primitives::{Address, B256, U256};
use licen_chain::testing::TestEnv;
use licen_indexer::event::{Event, Located, PolicyRecord};
use licen_indexer::query::{DatasetFilter, Sort, datasets};
use licen_indexer::{Cursor, Db, Follower, FollowerConfig, RpcSource};
use licen_types::{DatasetRoot, Policy, Purpose};

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    runtime.block_on(list_query_latency());
    runtime.block_on(rpc_initial_sync_throughput());
}

async fn list_query_latency() {
    const DATASETS: u64 = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("i.sqlite")).await.unwrap();
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
                manifest_root: format!("0x{:064x}", 2),
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
    let filters = [
        DatasetFilter::default(),
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
    for round in 0..100 {
        for filter in &filters {
            let mut filter = filter.clone();
            if round % 2 == 1 {
                let first = datasets(&db, &filter).await.unwrap();
                filter.cursor = first.next_cursor;
            }
            let started = std::time::Instant::now();
            let page = datasets(&db, &filter).await.unwrap();
            times.push(started.elapsed());
            assert!(!page.items.is_empty());
        }
    }
    times.sort();
    let p = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    eprintln!(
        "list query over {DATASETS} datasets: p50 {:?}, p99 {:?}, max {:?}",
        p(0.5),
        p(0.99),
        times[times.len() - 1]
    );
}

async fn rpc_initial_sync_throughput() {
    let n: u32 = std::env::var("LICEN_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let env = TestEnv::start().await.unwrap();
    let p = Policy {
        price_per_epoch: 1_000_000_000_000_000,
        max_epochs_per_run: 5,
        max_runs_per_requester: 5,
        session_ttl: 600,
        allowed_purposes: [Purpose::Research].into_iter().collect(),
        expiry: None,
    };
    let made = std::time::Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(25) {
        let sends = chunk.iter().map(|i| {
            let mut root = [0u8; 32];
            root[28..].copy_from_slice(&(i + 1).to_be_bytes());
            env.owner.publish(
                DatasetRoot(B256::from(root)),
                env.address_of(2),
                B256::repeat_byte(0xE0),
                B256::repeat_byte(0xA0),
                &p,
            )
        });
        for r in futures_util::future::join_all(sends).await {
            r.unwrap();
        }
    }
    eprintln!("published {n} datasets in {:?}", made.elapsed());
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("index.sqlite")).await.unwrap();
    let mut config = FollowerConfig::new(env.deployment.address, env.deployment.block);
    config.max_range = 100_000;
    let mut f = Follower::new(RpcSource::new(env.admin.provider().clone()), db, config);
    let started = std::time::Instant::now();
    let stored = f.sync_to_head().await.unwrap();
    let elapsed = started.elapsed();
    eprintln!(
        "initial sync over RPC: {stored} events in {elapsed:?} = {:.0} events/s",
        stored as f64 / elapsed.as_secs_f64()
    );
    println!(
        "initial sync over RPC: {:.0} events/s against the 10,000 events/s target: {:.2}x",
        stored as f64 / elapsed.as_secs_f64(),
        stored as f64 / elapsed.as_secs_f64() / 10_000.0
    );
    assert!(stored >= u64::from(n));
}
