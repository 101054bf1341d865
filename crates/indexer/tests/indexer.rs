//! The indexer against a real anvil: every DataPolicy event type indexed into the derived
//! tables, a restart mid-sync that loses and doubles nothing, a reorg that is rewound and
//! re-applied, and the HTTP query API.

use alloy::primitives::{Address, B256};
use alloy::providers::Provider;
use alloy::providers::ext::AnvilApi;
use licen_chain::testing::{TEST_FEE_BPS, TEST_RUN_TIMEOUT, TestEnv};
use licen_chain::{DataPolicyClient, connect};
use licen_indexer::query::{self, DatasetFilter, JobDetail, JobFilter};
use licen_indexer::testing::TestDb;
use licen_indexer::{Backend, Db, Follower, FollowerConfig, RpcSource, Step};
use licen_types::{DatasetRoot, JobId, Policy, Purpose};
use sqlx::Row;
use std::collections::BTreeMap;

licen_indexer::backend_tests!(
    every_event_type_is_indexed,
    restart_mid_sync_loses_and_doubles_nothing,
    reorg_is_rewound_and_reapplied,
    api_answers_marketplace_queries_over_http,
    runner_follows_live_and_resumes_after_stop,
    live_stream_sends_dataset_changes_job_transitions_and_reorgs,
    malformed_and_unknown_logs_from_the_contract_address_are_skipped,
    expiry_is_judged_by_chain_time,
    anvil_reorg_is_rewound_to_match_a_fresh_index,
    text_search_matches_manifest_names_and_descriptions_literally,
);

const PRICE: u128 = 10_000_000_000_000_000;

fn policy(price: u128, purposes: &[Purpose]) -> Policy {
    Policy {
        price_per_epoch: price,
        max_epochs_per_run: 5,
        max_runs_per_requester: 5,
        session_ttl: 600,
        allowed_purposes: purposes.iter().copied().collect(),
        expiry: None,
    }
}

fn root(tag: u8) -> DatasetRoot {
    DatasetRoot(B256::repeat_byte(tag))
}

fn hex(word: B256) -> String {
    format!("{word:#x}")
}

fn lower(address: Address) -> String {
    format!("{address:#x}")
}

fn follower(env: &TestEnv, db: Db, range: u64) -> Follower<RpcSource> {
    let mut config = FollowerConfig::new(env.deployment.address, env.deployment.block);
    config.initial_range = range;
    config.max_range = range;
    Follower::new(RpcSource::new(env.admin.provider().clone()), db, config)
}

async fn publish(client: &DataPolicyClient, env: &TestEnv, tag: u8, policy: &Policy) {
    client
        .publish(
            root(tag),
            env.address_of(2),
            B256::repeat_byte(0xE0),
            B256::repeat_byte(0xA0 + tag),
            policy,
        )
        .await
        .expect("publish");
}

async fn request(
    client: &DataPolicyClient,
    dataset: DatasetRoot,
    epochs: u16,
    price: u128,
) -> JobId {
    client
        .request_access(
            dataset,
            epochs,
            Purpose::Research,
            [9; 32],
            price * u128::from(epochs),
        )
        .await
        .expect("requestAccess")
        .0
}

/// Jobs made by [`every_event`].
struct Jobs {
    completed: JobId,
    failed: JobId,
    expired: JobId,
    reclaimed: JobId,
}

/// Emits every DataPolicy event type at least once (the constructor and `TestEnv::start` emit
/// `AdminTransferred`, `ProtocolFeeSet` and `OrchestratorRegistered`).
async fn every_event(env: &TestEnv) -> Jobs {
    let orchestrator = env.address_of(2);
    env.admin
        .rotate_orchestrator_key(orchestrator, [8; 32])
        .await
        .unwrap();
    publish(&env.owner, env, 1, &policy(2 * PRICE, &[Purpose::Research])).await;
    publish(
        &env.owner,
        env,
        2,
        &policy(3 * PRICE, &[Purpose::Research, Purpose::Evaluation]),
    )
    .await;
    env.owner
        .update_policy(
            root(1),
            &policy(PRICE, &[Purpose::Research, Purpose::Evaluation]),
        )
        .await
        .unwrap();
    env.owner.pause(root(1)).await.unwrap();
    env.owner.resume(root(1)).await.unwrap();
    env.owner
        .rotate_envelope(root(1), B256::repeat_byte(0xE2))
        .await
        .unwrap();

    let completed = request(&env.researcher, root(1), 4, PRICE).await;
    env.orchestrator.start_job(completed).await.unwrap();
    env.orchestrator
        .confirm_training_complete(
            completed,
            3,
            B256::repeat_byte(0x51),
            B256::repeat_byte(0x52),
        )
        .await
        .unwrap();

    let failed = request(&env.researcher, root(1), 2, PRICE).await;
    env.orchestrator.start_job(failed).await.unwrap();
    env.orchestrator.fail_job(failed, "bad data").await.unwrap();

    let expired = request(&env.researcher2, root(1), 1, PRICE).await;
    env.advance_time(601).await.unwrap();
    env.owner.expire(expired).await.unwrap();

    let reclaimed = request(&env.researcher, root(2), 1, 3 * PRICE).await;
    env.orchestrator.start_job(reclaimed).await.unwrap();
    env.advance_time(TEST_RUN_TIMEOUT + 1).await.unwrap();
    env.researcher.reclaim(reclaimed).await.unwrap();

    env.owner.withdraw().await.unwrap();
    env.admin
        .set_protocol_fee(100, env.address_of(1))
        .await
        .unwrap();
    env.admin
        .deactivate_orchestrator(orchestrator)
        .await
        .unwrap();
    Jobs {
        completed,
        failed,
        expired,
        reclaimed,
    }
}

async fn event_counts(db: &Db) -> BTreeMap<String, i64> {
    sqlx::query("SELECT name, COUNT(*) AS n FROM events GROUP BY name")
        .fetch_all(db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get::<String, _>("name"), r.get::<i64, _>("n")))
        .collect()
}

/// Everything the index says, in a comparable form.
#[derive(Debug, PartialEq)]
struct Dump {
    events: Vec<(i64, i64, String, String)>,
    datasets: Vec<query::DatasetDetail>,
    jobs: Vec<JobDetail>,
    earnings: Vec<query::Earnings>,
}

async fn dump(db: &Db, accounts: &[Address]) -> Dump {
    let events = sqlx::query(
        "SELECT block_number, log_index, name, data FROM events ORDER BY block_number, log_index",
    )
    .fetch_all(db.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
    .collect();
    let filter = DatasetFilter {
        limit: Some(100),
        ..DatasetFilter::default()
    };
    let mut datasets = Vec::new();
    for d in query::datasets(db, &filter).await.unwrap().items {
        datasets.push(
            query::dataset(db, d.root.parse().unwrap())
                .await
                .unwrap()
                .unwrap(),
        );
    }
    let mut jobs = Vec::new();
    let all = JobFilter {
        limit: Some(100),
        ..JobFilter::default()
    };
    for j in query::jobs(db, &all).await.unwrap().items {
        jobs.push(query::job(db, j.id).await.unwrap().unwrap());
    }
    let mut earnings = Vec::new();
    for a in accounts {
        earnings.push(query::earnings(db, *a).await.unwrap());
    }
    Dump {
        events,
        datasets,
        jobs,
        earnings,
    }
}

async fn every_event_type_is_indexed(backend: Backend) {
    let Some(store) = TestDb::create(backend).await.unwrap() else {
        return;
    };
    let env = TestEnv::start().await.unwrap();
    let jobs = every_event(&env).await;
    let db = store.open().await;
    let mut f = follower(&env, db.clone(), 2000);
    let stored = f.sync_to_head().await.unwrap();

    let counts = event_counts(&db).await;
    for name in [
        "AdminTransferred",
        "ProtocolFeeSet",
        "OrchestratorRegistered",
        "OrchestratorKeyRotated",
        "OrchestratorDeactivated",
        "DatasetPublished",
        "PolicyUpdated",
        "DatasetPaused",
        "DatasetResumed",
        "EnvelopeRotated",
        "AccessGranted",
        "JobStarted",
        "JobCompleted",
        "JobFailed",
        "JobExpired",
        "JobReclaimed",
        "Withdrawn",
    ] {
        assert!(counts.contains_key(name), "{name} not indexed: {counts:?}");
    }
    assert_eq!(counts["ProtocolFeeSet"], 2);
    assert_eq!(counts["AccessGranted"], 4);
    assert_eq!(stored, counts.values().sum::<i64>() as u64);
    assert!(matches!(f.step().await.unwrap(), Step::Idle { .. }));

    // the dataset: latest policy, envelope, not paused, stats
    let d1 = query::dataset(&db, root(1).0).await.unwrap().unwrap();
    assert_eq!(d1.dataset.owner, lower(env.address_of(3)));
    assert_eq!(d1.dataset.orchestrator, lower(env.address_of(2)));
    assert_eq!(d1.dataset.envelope_root, hex(B256::repeat_byte(0xE2)));
    assert_eq!(d1.dataset.manifest_root, hex(B256::repeat_byte(0xA1)));
    let p1 = policy(PRICE, &[Purpose::Research, Purpose::Evaluation]);
    assert_eq!(d1.dataset.policy.price_per_epoch, PRICE.to_string());
    assert_eq!(
        d1.dataset.policy.allowed_purposes,
        ["research", "evaluation"]
    );
    assert_eq!(d1.dataset.policy_hash, hex(p1.hash()));
    assert!(!d1.dataset.paused && d1.dataset.active);
    assert_eq!(d1.dataset.job_count, 3);
    let royalty = 3 * PRICE;
    let fee = royalty * u128::from(TEST_FEE_BPS) / 10_000;
    assert_eq!(d1.stats.requests, 3);
    assert_eq!(d1.stats.completed_runs, 1);
    assert_eq!(d1.stats.epochs_sold, 3);
    assert_eq!(d1.stats.revenue, royalty.to_string());
    assert_eq!(d1.stats.owner_revenue, (royalty - fee).to_string());
    assert_eq!(d1.stats.distinct_researchers, 2);
    assert_eq!(d1.stats.escrow_held, "0");

    // jobs and their timelines
    let states = |j: &JobDetail| {
        j.timeline
            .iter()
            .map(|t| t.state.clone())
            .collect::<Vec<_>>()
    };
    let completed = query::job(&db, jobs.completed.0).await.unwrap().unwrap();
    assert_eq!(states(&completed), ["Granted", "Running", "Completed"]);
    assert_eq!(completed.job.state, "Completed");
    assert_eq!(completed.job.actual_epochs, Some(3));
    assert_eq!(completed.job.royalty, Some(royalty.to_string()));
    assert_eq!(completed.job.fee, Some(fee.to_string()));
    assert_eq!(completed.job.refund, Some(PRICE.to_string()));
    assert_eq!(
        completed.job.result_hash,
        Some(hex(B256::repeat_byte(0x51)))
    );
    assert_eq!(
        completed.job.attestation_ref,
        Some(hex(B256::repeat_byte(0x52)))
    );
    assert_eq!(completed.job.purpose, "research");
    assert!(completed.job.run_deadline.is_some());
    assert!(
        completed
            .timeline
            .iter()
            .all(|t| t.time > 0 && t.tx.len() == 66)
    );
    let failed = query::job(&db, jobs.failed.0).await.unwrap().unwrap();
    assert_eq!(states(&failed), ["Granted", "Running", "Failed"]);
    assert_eq!(failed.job.fail_reason.as_deref(), Some("bad data"));
    assert_eq!(failed.job.refund, Some((2 * PRICE).to_string()));
    let expired = query::job(&db, jobs.expired.0).await.unwrap().unwrap();
    assert_eq!(states(&expired), ["Granted", "Expired"]);
    assert_eq!(expired.job.researcher, lower(env.address_of(5)));
    let reclaimed = query::job(&db, jobs.reclaimed.0).await.unwrap().unwrap();
    assert_eq!(states(&reclaimed), ["Granted", "Running", "Reclaimed"]);
    assert_eq!(reclaimed.job.refund, Some((3 * PRICE).to_string()));

    // balances agree with the contract for every account that was credited
    for i in [1, 3, 4, 5] {
        let account = env.address_of(i);
        let indexed = query::earnings(&db, account).await.unwrap();
        let on_chain = env.owner.withdrawable(account).await.unwrap();
        assert_eq!(indexed.balance, on_chain.to_string(), "account {i}");
    }
    let owner = query::earnings(&db, env.address_of(3)).await.unwrap();
    assert_eq!(owner.earned, (royalty - fee).to_string());
    assert_eq!(owner.withdrawn, (royalty - fee).to_string());
    assert_eq!((owner.datasets, owner.completed_runs), (2, 1));

    // registry and protocol settings
    let row = sqlx::query("SELECT public_key, active FROM orchestrators WHERE address = $1")
        .bind(lower(env.address_of(2)))
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(row.get::<String, _>(0), hex(B256::repeat_byte(8)));
    assert_eq!(row.get::<i64, _>(1), 0);
    let row = sqlx::query("SELECT fee_bps, treasury, admin FROM protocol")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(row.get::<i64, _>(0), 100);
    assert_eq!(row.get::<String, _>(1), lower(env.address_of(1)));
    assert_eq!(row.get::<String, _>(2), lower(env.address_of(0)));
}

async fn restart_mid_sync_loses_and_doubles_nothing(backend: Backend) {
    let Some(store) = TestDb::create(backend).await.unwrap() else {
        return;
    };
    let env = TestEnv::start().await.unwrap();
    publish(&env.owner, &env, 1, &policy(PRICE, &[Purpose::Research])).await;
    let first = request(&env.researcher, root(1), 2, PRICE).await;
    env.orchestrator.start_job(first).await.unwrap();

    let db = store.open().await;
    // one block per batch and per step; stop after three batches, part-way through the history
    let mut config = FollowerConfig::new(env.deployment.address, env.deployment.block);
    (
        config.initial_range,
        config.max_range,
        config.batches_per_step,
    ) = (1, 1, 1);
    let mut f = Follower::new(
        RpcSource::new(env.admin.provider().clone()),
        db.clone(),
        config,
    );
    for _ in 0..3 {
        assert!(matches!(f.step().await.unwrap(), Step::Indexed { .. }));
    }
    let stopped_at = db.cursor().await.unwrap().unwrap().number;
    assert!(stopped_at < env.admin.provider().get_block_number().await.unwrap());
    drop(f);
    db.close().await;

    // more history while the indexer is down
    env.orchestrator
        .confirm_training_complete(first, 2, B256::repeat_byte(1), B256::repeat_byte(2))
        .await
        .unwrap();
    publish(
        &env.owner,
        &env,
        2,
        &policy(2 * PRICE, &[Purpose::Research]),
    )
    .await;
    request(&env.researcher2, root(2), 1, 2 * PRICE).await;
    env.owner.withdraw().await.unwrap();

    let reopened = store.open().await;
    assert_eq!(reopened.cursor().await.unwrap().unwrap().number, stopped_at);
    follower(&env, reopened.clone(), 2000)
        .sync_to_head()
        .await
        .unwrap();

    let fresh_store = TestDb::create(backend).await.unwrap().unwrap();
    let fresh = fresh_store.open().await;
    follower(&env, fresh.clone(), 2000)
        .sync_to_head()
        .await
        .unwrap();

    let accounts: Vec<Address> = (0..6).map(|i| env.address_of(i)).collect();
    let resumed = dump(&reopened, &accounts).await;
    assert_eq!(resumed, dump(&fresh, &accounts).await);
    assert_eq!(resumed.datasets.len(), 2);
    assert_eq!(resumed.jobs.len(), 2);
    let owner_balance = env.owner.withdrawable(env.address_of(3)).await.unwrap();
    assert_eq!(resumed.earnings[3].balance, owner_balance.to_string());

    // rewinding to the stop point and syncing the same blocks again gives the same index
    let again = follower(&env, reopened.clone(), 2000);
    reopened
        .rewind(Some(licen_indexer::Cursor {
            number: stopped_at,
            hash: reopened
                .recent_blocks()
                .await
                .unwrap()
                .into_iter()
                .find(|(n, _)| *n == stopped_at)
                .unwrap()
                .1,
        }))
        .await
        .unwrap();
    let mut again = again;
    again.sync_to_head().await.unwrap();
    assert_eq!(dump(&reopened, &accounts).await, resumed);
}

async fn reorg_is_rewound_and_reapplied(backend: Backend) {
    let Some(store) = TestDb::create(backend).await.unwrap() else {
        return;
    };
    let env = TestEnv::start().await.unwrap();
    publish(&env.owner, &env, 1, &policy(PRICE, &[Purpose::Research])).await;
    let db = store.open().await;
    let mut f = follower(&env, db.clone(), 2000);
    f.sync_to_head().await.unwrap();

    let provider = env.admin.provider();
    let snapshot = provider.anvil_snapshot().await.unwrap();
    // the branch that will be dropped
    publish(&env.owner, &env, 0x0F, &policy(PRICE, &[Purpose::Research])).await;
    let orphan_job = request(&env.researcher, root(1), 3, PRICE).await;
    env.owner.pause(root(1)).await.unwrap();
    f.sync_to_head().await.unwrap();
    assert!(query::dataset(&db, root(0x0F).0).await.unwrap().is_some());
    assert_eq!(
        query::job(&db, orphan_job.0)
            .await
            .unwrap()
            .unwrap()
            .job
            .researcher,
        lower(env.address_of(4))
    );
    let orphaned_head = provider.get_block_number().await.unwrap();

    // the chain drops that branch and grows a different, longer one
    assert!(provider.anvil_revert(snapshot).await.unwrap());
    let rpc = env.chain.rpc_url().to_owned();
    let fresh_client = |i: usize| {
        DataPolicyClient::new(
            connect(&rpc, Some(env.signer(i))).unwrap(),
            env.deployment.address,
        )
    };
    let (owner, researcher2) = (fresh_client(3), fresh_client(5));
    publish(&owner, &env, 0x0E, &policy(2 * PRICE, &[Purpose::Research])).await;
    let new_job = request(&researcher2, root(1), 1, PRICE).await;
    assert_eq!(
        new_job, orphan_job,
        "the job id is reused on the new branch"
    );
    provider.anvil_mine(Some(5), None).await.unwrap();
    assert!(provider.get_block_number().await.unwrap() > orphaned_head);

    let mut rewound = false;
    loop {
        match f.step().await.unwrap() {
            Step::Rewound { to } => {
                rewound = true;
                assert!(to.unwrap() < orphaned_head);
            }
            Step::Idle { .. } => break,
            _ => {}
        }
    }
    assert!(rewound, "the follower did not notice the reorg");
    assert!(query::dataset(&db, root(0x0F).0).await.unwrap().is_none());
    assert!(query::dataset(&db, root(0x0E).0).await.unwrap().is_some());
    let d1 = query::dataset(&db, root(1).0).await.unwrap().unwrap();
    assert!(!d1.dataset.paused, "the pause was on the dropped branch");
    assert_eq!(d1.dataset.job_count, 1);
    let job = query::job(&db, new_job.0).await.unwrap().unwrap();
    assert_eq!(job.job.researcher, lower(env.address_of(5)));
    assert_eq!(job.job.epochs, 1);
    assert_eq!(job.timeline.len(), 1);

    // identical to indexing the surviving chain from scratch
    let fresh_store = TestDb::create(backend).await.unwrap().unwrap();
    let fresh = fresh_store.open().await;
    follower(&env, fresh.clone(), 2000)
        .sync_to_head()
        .await
        .unwrap();
    let accounts: Vec<Address> = (0..6).map(|i| env.address_of(i)).collect();
    assert_eq!(dump(&db, &accounts).await, dump(&fresh, &accounts).await);
}

async fn get_json<T: serde::de::DeserializeOwned>(base: &str, path: &str) -> T {
    let response = reqwest::get(format!("{base}{path}")).await.unwrap();
    assert!(
        response.status().is_success(),
        "GET {path}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

async fn status_of(base: &str, path: &str) -> (u16, serde_json::Value) {
    let response = reqwest::get(format!("{base}{path}")).await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn roots(page: &query::Page<query::DatasetView>) -> Vec<String> {
    page.items.iter().map(|d| d.root.clone()).collect()
}

async fn api_answers_marketplace_queries_over_http(backend: Backend) {
    let Some(store) = TestDb::create(backend).await.unwrap() else {
        return;
    };
    let env = TestEnv::start().await.unwrap();
    let jobs = every_event(&env).await;
    let db = store.open().await;
    follower(&env, db.clone(), 2000)
        .sync_to_head()
        .await
        .unwrap();
    let state = licen_indexer::api::ApiState {
        db: db.clone(),
        chain: Some(RpcSource::new(env.admin.provider().clone())),
    };
    let (addr, server) = licen_indexer::api::spawn("127.0.0.1:0".parse().unwrap(), state)
        .await
        .unwrap();
    let base = format!("http://{addr}");
    let (d1, d2) = (hex(root(1).0), hex(root(2).0));
    type Datasets = query::Page<query::DatasetView>;

    // sorting
    let newest: Datasets = get_json(&base, "/datasets").await;
    assert_eq!(roots(&newest), [d2.clone(), d1.clone()]);
    assert_eq!(newest.next_cursor, None);
    let by_price: Datasets = get_json(&base, "/datasets?sort=price").await;
    assert_eq!(roots(&by_price), [d1.clone(), d2.clone()]);
    let popular: Datasets = get_json(&base, "/datasets?sort=popularity").await;
    assert_eq!(roots(&popular), [d1.clone(), d2.clone()]);

    // filters
    let cheap: Datasets = get_json(&base, &format!("/datasets?max_price={PRICE}")).await;
    assert_eq!(roots(&cheap), std::slice::from_ref(&d1));
    let evaluation: Datasets = get_json(&base, "/datasets?purpose=evaluation&active=true").await;
    assert_eq!(evaluation.items.len(), 2);
    let medical: Datasets = get_json(&base, "/datasets?purpose=medical-research").await;
    assert!(medical.items.is_empty());
    let owned: Datasets = get_json(&base, &format!("/datasets?owner={}", env.address_of(3))).await;
    assert_eq!(owned.items.len(), 2);
    let none: Datasets = get_json(&base, &format!("/datasets?owner={}", env.address_of(4))).await;
    assert!(none.items.is_empty());
    let inactive: Datasets = get_json(&base, "/datasets?active=false").await;
    assert!(inactive.items.is_empty());

    // cursor pagination, for every sort
    for sort in ["newest", "price", "popularity"] {
        let first: Datasets = get_json(&base, &format!("/datasets?sort={sort}&limit=1")).await;
        let cursor = first.next_cursor.clone().expect("a second page");
        let second: Datasets = get_json(
            &base,
            &format!("/datasets?sort={sort}&limit=1&cursor={cursor}"),
        )
        .await;
        assert_eq!(second.next_cursor, None);
        let full: Datasets = get_json(&base, &format!("/datasets?sort={sort}")).await;
        assert_eq!(
            [roots(&first), roots(&second)].concat(),
            roots(&full),
            "{sort}"
        );
    }

    // detail with stats
    let detail: query::DatasetDetail = get_json(&base, &format!("/datasets/{d1}")).await;
    assert_eq!(detail.stats.requests, 3);
    assert_eq!(detail.stats.epochs_sold, 3);
    assert_eq!(detail.stats.distinct_researchers, 2);

    // jobs by researcher, owner, dataset; pagination; detail with timeline
    type Jobs = query::Page<query::JobView>;
    let mine: Jobs = get_json(&base, &format!("/jobs?researcher={}", env.address_of(4))).await;
    assert_eq!(mine.items.len(), 3);
    let owners: Jobs = get_json(&base, &format!("/jobs?owner={}", env.address_of(3))).await;
    assert_eq!(owners.items.len(), 4);
    let on_d2: Jobs = get_json(&base, &format!("/jobs?dataset={d2}")).await;
    assert_eq!(
        on_d2.items.iter().map(|j| j.id).collect::<Vec<_>>(),
        [jobs.reclaimed.0]
    );
    let page: Jobs = get_json(&base, "/jobs?limit=3").await;
    let rest: Jobs = get_json(
        &base,
        &format!("/jobs?limit=3&cursor={}", page.next_cursor.clone().unwrap()),
    )
    .await;
    assert_eq!(page.items.len() + rest.items.len(), 4);
    assert_eq!(rest.next_cursor, None);
    let job: JobDetail = get_json(&base, &format!("/jobs/{}", jobs.completed.0)).await;
    assert_eq!(job.timeline.len(), 3);
    assert_eq!(job.job.state, "Completed");

    // earnings
    let earnings: query::Earnings =
        get_json(&base, &format!("/owners/{}/earnings", env.address_of(3))).await;
    assert_eq!(earnings.completed_runs, 1);
    assert_eq!(earnings.per_dataset.len(), 2);
    assert_eq!(earnings.balance, "0");

    // health
    let health: licen_indexer::api::Health = get_json(&base, "/health").await;
    let head = env.admin.provider().get_block_number().await.unwrap();
    assert_eq!(health.chain_block, Some(head));
    assert_eq!(health.indexed_block, Some(head));
    assert_eq!(health.lag, Some(0));
    env.admin
        .provider()
        .anvil_mine(Some(3), None)
        .await
        .unwrap();
    let health: licen_indexer::api::Health = get_json(&base, "/health").await;
    assert_eq!(health.lag, Some(3));

    // errors are sentences with the right status
    let (status, body) = status_of(&base, "/datasets?sort=cheapest").await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("newest, price or popularity")
    );
    assert_eq!(status_of(&base, "/datasets?purpose=mining").await.0, 400);
    assert_eq!(status_of(&base, "/datasets?cursor=garbage").await.0, 400);
    assert_eq!(status_of(&base, "/jobs?researcher=0x12").await.0, 400);
    let (status, body) = status_of(
        &base,
        &format!("/datasets/{}", hex(B256::repeat_byte(0x99))),
    )
    .await;
    assert_eq!(status, 404);
    assert!(body["error"].as_str().unwrap().contains("no dataset"));
    assert_eq!(status_of(&base, "/jobs/999").await.0, 404);
    server.abort();
}

async fn runner_follows_live_and_resumes_after_stop(backend: Backend) {
    let Some(store) = TestDb::create(backend).await.unwrap() else {
        return;
    };
    let env = TestEnv::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = licen_indexer::IndexerConfig::new(
        env.chain.rpc_url(),
        env.deployment.address,
        env.deployment.block,
        dir.path().join("data"),
    );
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.poll_interval = std::time::Duration::from_millis(20);
    config.database_url = Some(store.url().to_owned());
    let running = licen_indexer::start(config.clone()).await.unwrap();
    let base = format!("http://{}", running.api_addr());

    // live: an event mined now shows up in the API shortly after
    publish(&env.owner, &env, 1, &policy(PRICE, &[Purpose::Research])).await;
    let mined = std::time::Instant::now();
    let path = format!("/datasets/{}", hex(root(1).0));
    loop {
        if status_of(&base, &path).await.0 == 200 {
            break;
        }
        assert!(
            mined.elapsed() < std::time::Duration::from_secs(10),
            "never indexed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    eprintln!("mined → visible in the API: {:?}", mined.elapsed());
    running.stop().await.unwrap();

    // while stopped, more history; a restart picks it up
    publish(&env.owner, &env, 2, &policy(PRICE, &[Purpose::Research])).await;
    let running = licen_indexer::start(config.clone()).await.unwrap();
    let base = format!("http://{}", running.api_addr());
    let started = std::time::Instant::now();
    loop {
        let page: query::Page<query::DatasetView> = get_json(&base, "/datasets").await;
        if page.items.len() == 2 {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "never resumed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let health: licen_indexer::api::Health = get_json(&base, "/health").await;
    assert_eq!(
        health.events, 5,
        "3 from deployment + 2 publishes, none twice"
    );

    // it names its deployment, and its readers check it
    let deployment = licen_indexer::Deployment {
        chain_id: 31337,
        contract: env.deployment.address,
    };
    assert_eq!(
        (health.chain_id, health.contract),
        (Some(31337), Some(env.deployment.address))
    );
    let http = reqwest::Client::new();
    licen_indexer::check_follows(&http, &base, deployment, None)
        .await
        .unwrap();
    let elsewhere = licen_indexer::Deployment {
        contract: Address::repeat_byte(0x77),
        ..deployment
    };
    let refused = licen_indexer::check_follows(&http, &base, elsewhere, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains(&format!(
            "indexes DataPolicy {} on chain 31337, not {} on chain 31337",
            env.deployment.address, elsewhere.contract
        )) && refused.contains("licen indexer --contract"),
        "{refused}"
    );
    let on_another_chain = licen_indexer::Deployment {
        chain_id: 16602,
        ..deployment
    };
    assert!(
        matches!(
            licen_indexer::check_follows(&http, &base, on_another_chain, None).await,
            Err(licen_indexer::FollowsError::Other { .. })
        ),
        "the same address on another chain is another deployment"
    );
    // The same chain id and contract address on a chain started afresh (as a dev chain that
    // lost its state is): told apart by the anchor block's hash, by readers and by the
    // indexer's own database.
    assert_eq!(
        (health.anchor_block, health.anchor_hash.is_some()),
        (Some(env.deployment.block), true)
    );
    licen_indexer::check_follows(&http, &base, deployment, Some(env.chain.rpc_url()))
        .await
        .unwrap();
    // Anvil chains started in the same second with the same transactions are bit-identical
    // (and so indistinguishable, and equivalent): the fresh one starts a second later.
    let anchor_time = {
        use alloy::providers::Provider as _;
        env.admin
            .provider()
            .get_block_by_number(env.deployment.block.into())
            .await
            .unwrap()
            .unwrap()
            .header
            .timestamp
    };
    while std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        <= anchor_time
    {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let fresh = TestEnv::start().await.unwrap();
    assert_eq!(fresh.deployment.address, env.deployment.address);
    let replaced =
        licen_indexer::check_follows(&http, &base, deployment, Some(fresh.chain.rpc_url()))
            .await
            .unwrap_err();
    assert!(
        matches!(replaced, licen_indexer::FollowsError::Replaced { .. })
            && replaced
                .to_string()
                .contains("holds a chain that was replaced"),
        "{replaced}"
    );
    running.stop().await.unwrap();
    let mut on_fresh_chain = config.clone();
    on_fresh_chain.rpc_url = fresh.chain.rpc_url().to_owned();
    let refused = licen_indexer::start(on_fresh_chain)
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("that chain was replaced"), "{refused}");
    let unreachable = licen_indexer::check_follows(&http, &base, deployment, None)
        .await
        .unwrap_err();
    assert!(
        matches!(unreachable, licen_indexer::FollowsError::Unreachable { .. }),
        "{unreachable}"
    );

    // the database holds this deployment's events: it refuses to index another one into them
    let mut other = config.clone();
    other.contract = elsewhere.contract;
    let refused = licen_indexer::start(other).await.unwrap_err().to_string();
    assert!(
        refused.contains(&format!(
            "holds the events of DataPolicy {} on chain 31337, not {}",
            env.deployment.address, elsewhere.contract
        )),
        "{refused}"
    );
    let reopened = licen_indexer::start(config).await.unwrap();
    let health: licen_indexer::api::Health =
        get_json(&format!("http://{}", reopened.api_addr()), "/health").await;
    assert_eq!(health.events, 5, "the refused start wrote nothing");
    reopened.stop().await.unwrap();
}

/// Reads an SSE response until `buffer` contains `needle` (10 s at most).
async fn read_until(response: &mut reqwest::Response, buffer: &mut String, needle: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !buffer.contains(needle) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let chunk = tokio::time::timeout(left, response.chunk())
            .await
            .unwrap_or_else(|_| panic!("no `{needle}` in the stream; got:\n{buffer}"))
            .unwrap()
            .expect("stream ended");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
}

async fn live_stream_sends_dataset_changes_job_transitions_and_reorgs(backend: Backend) {
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
    config.poll_interval = std::time::Duration::from_millis(20);
    config.database_url = Some(store.url().to_owned());
    let running = licen_indexer::start(config).await.unwrap();
    let base = format!("http://{}", running.api_addr());
    let mut live = reqwest::get(format!("{base}/stream")).await.unwrap();
    assert_eq!(
        live.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut seen = String::new();

    publish(&env.owner, &env, 1, &policy(PRICE, &[Purpose::Research])).await;
    read_until(&mut live, &mut seen, "event: DatasetPublished").await;
    assert!(seen.contains(&hex(root(1).0)));

    let provider = env.admin.provider();
    let snapshot = provider.anvil_snapshot().await.unwrap();
    let job = request(&env.researcher, root(1), 2, PRICE).await;
    env.orchestrator.start_job(job).await.unwrap();
    read_until(&mut live, &mut seen, "event: JobStarted").await;
    let granted = seen.find("event: AccessGranted").unwrap();
    assert!(granted < seen.find("event: JobStarted").unwrap());

    // the job's blocks are dropped; the stream says so, then carries the new branch
    assert!(provider.anvil_revert(snapshot).await.unwrap());
    let owner = DataPolicyClient::new(
        connect(env.chain.rpc_url(), Some(env.signer(3))).unwrap(),
        env.deployment.address,
    );
    publish(&owner, &env, 2, &policy(PRICE, &[Purpose::Research])).await;
    provider.anvil_mine(Some(5), None).await.unwrap();
    seen.clear();
    read_until(&mut live, &mut seen, "event: reorg").await;
    read_until(&mut live, &mut seen, &hex(root(2).0)).await;
    let notice = seen.find("event: reorg").unwrap();
    assert!(notice < seen.find("event: DatasetPublished").unwrap());

    // a replay from the first block shows only the surviving history
    let mut replay = reqwest::get(format!("{base}/stream?from_block=0"))
        .await
        .unwrap();
    let mut replayed = String::new();
    read_until(&mut replay, &mut replayed, &hex(root(2).0)).await;
    assert!(replayed.contains(&hex(root(1).0)));
    assert!(!replayed.contains("AccessGranted"));
    assert!(
        !replayed.contains("OrchestratorRegistered"),
        "only dataset and job events"
    );
    // stopping does not wait for the open streams
    let stopping = std::time::Instant::now();
    running.stop().await.unwrap();
    assert!(stopping.elapsed() < std::time::Duration::from_secs(5));
    drop((live, replay));
}

async fn malformed_and_unknown_logs_from_the_contract_address_are_skipped(backend: Backend) {
    let Some(store) = TestDb::create(backend).await.unwrap() else {
        return;
    };
    use alloy::network::TransactionBuilder;
    use alloy::primitives::Bytes;
    use alloy::rpc::types::TransactionRequest;
    use alloy::sol_types::SolEvent;

    let env = TestEnv::start().await.unwrap();
    let provider = env.admin.provider();
    let address = env.deployment.address;
    publish(&env.owner, &env, 1, &policy(PRICE, &[Purpose::Research])).await;

    // Swap the contract's code for one that emits an unknown LOG1 and a JobStarted LOG2 whose
    // data is 3 bytes (not an ABI encoding), call it, then put the real code back.
    let original = provider.get_code_at(address).await.unwrap();
    let started_topic = licen_chain::bindings::DataPolicy::JobStarted::SIGNATURE_HASH;
    let mut code = vec![0x7f];
    code.extend_from_slice(B256::repeat_byte(0xAB).as_slice()); // PUSH32 unknown topic
    code.extend_from_slice(&[0x60, 0x00, 0x60, 0x00, 0xa1]); // LOG1(0, 0, topic)
    code.extend_from_slice(&[0x62, 0x01, 0x02, 0x03, 0x60, 0x00, 0x52]); // MSTORE(0, 0x010203)
    code.push(0x7f);
    code.extend_from_slice(B256::with_last_byte(1).as_slice()); // PUSH32 job id topic
    code.push(0x7f);
    code.extend_from_slice(started_topic.as_slice()); // PUSH32 JobStarted topic
    code.extend_from_slice(&[0x60, 0x03, 0x60, 0x1d, 0xa2, 0x00]); // LOG2(29, 3, t0, t1); STOP
    provider
        .anvil_set_code(address, Bytes::from(code))
        .await
        .unwrap();
    let tx = TransactionRequest::default()
        .with_to(address)
        .with_input(Bytes::new());
    let receipt = provider
        .send_transaction(tx)
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    assert_eq!(receipt.inner.logs().len(), 2);
    provider.anvil_set_code(address, original).await.unwrap();
    publish(&env.owner, &env, 2, &policy(PRICE, &[Purpose::Research])).await;

    let db = store.open().await;
    let mut f = follower(&env, db.clone(), 2000);
    f.sync_to_head().await.unwrap();
    let counts = event_counts(&db).await;
    assert_eq!(counts["DatasetPublished"], 2, "{counts:?}");
    assert!(!counts.contains_key("JobStarted"), "{counts:?}");
    assert_eq!(counts.values().sum::<i64>(), 5, "{counts:?}");
    let head = provider.get_block_number().await.unwrap();
    assert_eq!(db.cursor().await.unwrap().unwrap().number, head);
}

async fn expiry_is_judged_by_chain_time(backend: Backend) {
    let Some(store) = TestDb::create(backend).await.unwrap() else {
        return;
    };
    let env = TestEnv::start().await.unwrap();
    let provider = env.admin.provider();
    let latest = provider
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .unwrap()
        .unwrap();
    let mut expiring = policy(PRICE, &[Purpose::Research]);
    expiring.expiry = Some(latest.header.timestamp + 1000);
    publish(&env.owner, &env, 1, &expiring).await;
    publish(&env.owner, &env, 2, &policy(PRICE, &[Purpose::Research])).await;
    let db = store.open().await;
    let mut f = follower(&env, db.clone(), 2000);
    f.sync_to_head().await.unwrap();
    let active = |active| DatasetFilter {
        active: Some(active),
        ..DatasetFilter::default()
    };
    assert_eq!(
        query::datasets(&db, &active(true))
            .await
            .unwrap()
            .items
            .len(),
        2
    );

    // the chain's clock passes the expiry (the system clock does not)
    env.advance_time(2000).await.unwrap();
    env.owner.pause(root(2)).await.unwrap();
    f.sync_to_head().await.unwrap();
    assert!(
        query::datasets(&db, &active(true))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let inactive = query::datasets(&db, &active(false)).await.unwrap();
    assert_eq!(inactive.items.len(), 2);
    let d1 = query::dataset(&db, root(1).0).await.unwrap().unwrap();
    assert!(!d1.dataset.active && !d1.dataset.paused);
    assert_eq!(d1.dataset.policy.expiry, expiring.expiry);
}

async fn anvil_reorg_is_rewound_to_match_a_fresh_index(backend: Backend) {
    let Some(store) = TestDb::create(backend).await.unwrap() else {
        return;
    };
    let env = TestEnv::start().await.unwrap();
    publish(&env.owner, &env, 1, &policy(PRICE, &[Purpose::Research])).await;
    let db = store.open().await;
    let mut f = follower(&env, db.clone(), 2000);
    f.sync_to_head().await.unwrap();

    publish(&env.owner, &env, 2, &policy(PRICE, &[Purpose::Research])).await;
    env.owner.pause(root(1)).await.unwrap();
    request(&env.researcher, root(2), 1, PRICE).await;
    f.sync_to_head().await.unwrap();
    assert_eq!(
        query::dataset(&db, root(2).0)
            .await
            .unwrap()
            .unwrap()
            .dataset
            .job_count,
        1
    );

    let provider = env.admin.provider();
    provider
        .anvil_reorg(alloy::rpc::types::anvil::ReorgOptions {
            depth: 3,
            tx_block_pairs: vec![],
        })
        .await
        .unwrap();
    let mut rewound = false;
    loop {
        match f.step().await.unwrap() {
            Step::Rewound { .. } => rewound = true,
            Step::Idle { .. } => break,
            _ => {}
        }
    }
    assert!(rewound, "the follower did not notice anvil_reorg");
    let fresh_store = TestDb::create(backend).await.unwrap().unwrap();
    let fresh = fresh_store.open().await;
    follower(&env, fresh.clone(), 2000)
        .sync_to_head()
        .await
        .unwrap();
    let accounts: Vec<Address> = (0..6).map(|i| env.address_of(i)).collect();
    assert_eq!(dump(&db, &accounts).await, dump(&fresh, &accounts).await);
}

/// Roots of the datasets listed by `GET /datasets?q=<text>`, as their tags.
async fn search(base: &str, text: &str) -> Vec<u8> {
    let url = reqwest::Url::parse_with_params(&format!("{base}/datasets"), [("q", text)]).unwrap();
    let page: query::Page<query::DatasetView> =
        reqwest::get(url).await.unwrap().json().await.unwrap();
    let mut tags: Vec<u8> = page
        .items
        .iter()
        .map(|d| d.root.parse::<B256>().unwrap()[0])
        .collect();
    tags.sort_unstable();
    tags
}

/// Waits (10 s at most) until searching `text` lists exactly `expected`.
async fn search_until(base: &str, text: &str, expected: &[u8]) {
    let started = std::time::Instant::now();
    loop {
        let found = search(base, text).await;
        if found == expected {
            return;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "search `{text}` lists {found:?}, expected {expected:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn text_search_matches_manifest_names_and_descriptions_literally(backend: Backend) {
    let Some(store) = TestDb::create(backend).await.unwrap() else {
        return;
    };
    let env = TestEnv::start().await.unwrap();
    let storage_dir = tempfile::tempdir().unwrap();
    let node = licen_storage::node::start(licen_storage::node::NodeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..licen_storage::node::NodeConfig::new(storage_dir.path())
    })
    .await
    .unwrap();
    let storage = licen_storage::StorageClient::new(&node.url()).unwrap();
    let manifest = |name: &str, description: &str| {
        serde_json::to_vec(
            &serde_json::json!({"name": name, "description": description, "row_count": 3}),
        )
        .unwrap()
    };
    let later = manifest(
        "Uploaded later",
        "published before its manifest reached storage",
    );
    let later_root = licen_storage::FileTree::from_bytes(&later).root();
    let oversized = manifest("Huge", &"x".repeat(70 * 1024));
    let mut roots = vec![
        manifest("Clinical QA", "100% synthetic patient questions"),
        manifest("Legal contracts", "1000 synthetic clauses"),
    ];
    roots.push(oversized);
    roots.push(b"not a manifest".to_vec());
    let mut manifest_roots = Vec::new();
    for bytes in &roots {
        manifest_roots.push(storage.upload_bytes(bytes, None).await.unwrap().root);
    }
    manifest_roots.insert(2, later_root);
    for (i, manifest_root) in manifest_roots.iter().enumerate() {
        let tag = u8::try_from(i + 1).unwrap();
        env.owner
            .publish(
                root(tag),
                env.address_of(2),
                B256::repeat_byte(0xE0),
                *manifest_root,
                &policy(PRICE, &[Purpose::Research]),
            )
            .await
            .unwrap();
    }

    let dir = tempfile::tempdir().unwrap();
    let mut config = licen_indexer::IndexerConfig::new(
        env.chain.rpc_url(),
        env.deployment.address,
        env.deployment.block,
        dir.path().to_owned(),
    );
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.poll_interval = std::time::Duration::from_millis(20);
    config.database_url = Some(store.url().to_owned());
    config.storage = Some(node.url().into());
    config.manifests.poll_interval = std::time::Duration::from_millis(20);
    config.manifests.retry_base = std::time::Duration::from_millis(50);
    config.manifests.max_retry = std::time::Duration::from_millis(200);
    let running = licen_indexer::start(config).await.unwrap();
    let base = format!("http://{}", running.api_addr());

    // case-insensitive, over names and descriptions
    search_until(&base, "clinical", &[1]).await;
    assert_eq!(search(&base, "CLINICAL qa").await, [1]);
    assert_eq!(search(&base, "synthetic").await, [1, 2]);
    assert_eq!(search(&base, "clauses").await, [2]);
    // `%` and `_` are literal characters, not wildcards
    assert_eq!(search(&base, "100%").await, [1]);
    assert_eq!(search(&base, "leg_l").await, Vec::<u8>::new());
    assert_eq!(search(&base, "%").await, [1]);
    // the listing carries the manifest's name and description
    let detail: query::DatasetDetail =
        get_json(&base, &format!("/datasets/{}", hex(root(1).0))).await;
    assert_eq!(detail.dataset.name.as_deref(), Some("Clinical QA"));
    assert_eq!(
        detail.dataset.description.as_deref(),
        Some("100% synthetic patient questions")
    );

    // a manifest missing from storage is retried until it arrives
    assert_eq!(search(&base, "uploaded later").await, Vec::<u8>::new());
    assert_eq!(
        storage.upload_bytes(&later, None).await.unwrap().root,
        later_root
    );
    search_until(&base, "uploaded later", &[3]).await;

    // an oversized or malformed manifest never blocks indexing: its dataset is listed, unnamed
    let all: query::Page<query::DatasetView> = get_json(&base, "/datasets").await;
    assert_eq!(all.items.len(), 5);
    for tag in [4, 5] {
        let unnamed = all
            .items
            .iter()
            .find(|d| d.root == hex(root(tag).0))
            .unwrap();
        assert_eq!(unnamed.name, None, "dataset {tag}");
    }
    let states: BTreeMap<String, String> =
        sqlx::query("SELECT manifest_root, state FROM manifests")
            .fetch_all(running.db().pool())
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
    assert_eq!(states[&hex(manifest_roots[3])], "invalid");
    assert_eq!(states[&hex(manifest_roots[4])], "invalid");

    // a search longer than the cap is refused with a reason
    let (status, body) = status_of(&base, &format!("/datasets?q={}", "a".repeat(201))).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("at most 200"));
    running.stop().await.unwrap();
    node.shutdown().await.unwrap();
}
