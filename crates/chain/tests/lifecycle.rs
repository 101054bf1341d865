//! End-to-end against a real anvil: deploy, the happy path, every refund path, the policy
//! hash, and reverts decoded into sentences.

use alloy::primitives::B256;
use licen_chain::testing::{TEST_FEE_BPS, TEST_RUN_TIMEOUT, TestEnv};
use licen_chain::{Error, JobView};
use licen_types::{DatasetRoot, JobState, Policy, Purpose, PurposeSet};

const PRICE: u128 = 10_000_000_000_000_000; // 0.01 per epoch

fn policy() -> Policy {
    Policy {
        price_per_epoch: PRICE,
        max_epochs_per_run: 5,
        max_runs_per_requester: 2,
        session_ttl: 600,
        allowed_purposes: [Purpose::Research, Purpose::Evaluation]
            .into_iter()
            .collect(),
        expiry: None,
    }
}

fn root(tag: u8) -> DatasetRoot {
    DatasetRoot(B256::repeat_byte(tag))
}

async fn publish(env: &TestEnv, tag: u8) -> DatasetRoot {
    let dataset = root(tag);
    env.owner
        .publish(
            dataset,
            env.address_of(2),
            B256::repeat_byte(0xE0),
            B256::repeat_byte(0xA0),
            &policy(),
        )
        .await
        .expect("publish");
    dataset
}

async fn request(env: &TestEnv, dataset: DatasetRoot, epochs: u16) -> licen_types::JobId {
    let (job, _) = env
        .researcher
        .request_access(
            dataset,
            epochs,
            Purpose::Research,
            [9; 32],
            PRICE * u128::from(epochs),
        )
        .await
        .expect("requestAccess");
    job
}

fn reverted_with(result: Result<impl std::fmt::Debug, Error>, name: &str, sentence: &str) {
    match result {
        Err(Error::Reverted { revert, .. }) => {
            assert_eq!(revert.name, name, "{revert}");
            assert!(
                revert.sentence.contains(sentence),
                "`{}` does not contain `{sentence}`",
                revert.sentence
            );
        }
        other => panic!("expected revert {name}, got {other:?}"),
    }
}

#[tokio::test]
async fn happy_path_settles_royalty_fee_and_refund() {
    let env = TestEnv::start().await.unwrap();
    let dataset = publish(&env, 1).await;

    let (owner, orchestrator, paused, on_chain) = env.owner.dataset_info(dataset).await.unwrap();
    assert_eq!(
        (owner, orchestrator, paused),
        (env.address_of(3), env.address_of(2), false)
    );
    assert_eq!(on_chain, policy());
    assert_eq!(
        env.owner.policy_hash(&policy()).await.unwrap(),
        policy().hash()
    );

    assert_eq!(env.owner.admin().await.unwrap(), env.address_of(0));
    assert_eq!(env.owner.max_fee_bps().await.unwrap(), 1000);
    assert_eq!(
        env.owner.protocol_fee().await.unwrap(),
        (TEST_FEE_BPS, env.address_of(1))
    );
    assert_eq!(env.owner.run_timeout().await.unwrap(), TEST_RUN_TIMEOUT);
    assert_eq!(
        env.owner.next_job_id().await.unwrap(),
        licen_types::JobId(1)
    );
    let job = request(&env, dataset, 4).await;
    let stored = env.researcher.job(job).await.unwrap();
    assert_eq!(stored.state, JobState::Granted);
    assert_eq!(
        (stored.epochs, stored.price_per_epoch, stored.escrow()),
        (4, PRICE, 4 * PRICE)
    );
    assert_eq!(env.researcher.live_escrow().await.unwrap(), 4 * PRICE);
    assert_eq!(env.researcher.job_dataset_root(job).await.unwrap(), dataset);

    env.orchestrator.start_job(job).await.unwrap();
    assert_eq!(
        env.researcher.job(job).await.unwrap().state,
        JobState::Running
    );
    env.orchestrator
        .confirm_training_complete(job, 3, B256::repeat_byte(0x51), B256::repeat_byte(0x52))
        .await
        .unwrap();
    let done: JobView = env.researcher.job(job).await.unwrap();
    assert_eq!(done.state, JobState::Completed);

    let royalty = 3 * PRICE;
    let fee = royalty * u128::from(TEST_FEE_BPS) / 10_000;
    assert_eq!(
        env.owner.withdrawable(env.address_of(3)).await.unwrap(),
        royalty - fee
    );
    assert_eq!(
        env.owner.withdrawable(env.address_of(1)).await.unwrap(),
        fee
    );
    assert_eq!(
        env.owner.withdrawable(env.address_of(4)).await.unwrap(),
        PRICE
    );
    assert_eq!(env.owner.live_escrow().await.unwrap(), 0);

    let before = env.balance(env.address_of(3)).await.unwrap();
    let (amount, receipt) = env.owner.withdraw().await.unwrap();
    assert_eq!(amount, royalty - fee);
    let after = env.balance(env.address_of(3)).await.unwrap();
    let gas_cost = after + u128::from(receipt.gas_used) * 10u128.pow(10) - before;
    assert!(gas_cost >= amount, "owner received less than the royalty");
    let (refund, _) = env.researcher.withdraw().await.unwrap();
    assert_eq!(refund, PRICE);
    let (treasury_fee, _) = env.treasury.withdraw().await.unwrap();
    assert_eq!(treasury_fee, fee);
    reverted_with(
        env.owner.withdraw().await,
        "NothingToWithdraw",
        "has nothing to withdraw",
    );
}

#[tokio::test]
async fn every_refund_path_returns_the_full_escrow_and_frees_the_run() {
    let env = TestEnv::start().await.unwrap();
    let dataset = publish(&env, 2).await;

    // Full refunds are paid to the researcher's wallet in the same transaction (an EOA accepts the plain
    // transfer); the orchestrator and the caller of `expire` pay the gas, so the wallet gains exactly the escrow.
    let researcher = env.address_of(4);

    // failJob from Running.
    let failed = request(&env, dataset, 2).await;
    env.orchestrator.start_job(failed).await.unwrap();
    let before = env.balance(researcher).await.unwrap();
    env.orchestrator
        .fail_job(failed, "dataset is not valid JSONL")
        .await
        .unwrap();
    assert_eq!(
        env.researcher.job(failed).await.unwrap().state,
        JobState::Failed
    );
    assert_eq!(env.balance(researcher).await.unwrap() - before, 2 * PRICE);

    // expire: not started within the session TTL; anyone may call it.
    let expired = request(&env, dataset, 1).await;
    reverted_with(
        env.owner.expire(expired).await,
        "GrantNotExpired",
        "still startable",
    );
    env.advance_time(601).await.unwrap();
    reverted_with(
        env.orchestrator.start_job(expired).await,
        "GrantExpired",
        "can no longer start",
    );
    let before = env.balance(researcher).await.unwrap();
    env.owner.expire(expired).await.unwrap();
    assert_eq!(env.balance(researcher).await.unwrap() - before, PRICE);
    assert_eq!(
        env.researcher.job(expired).await.unwrap().state,
        JobState::Expired
    );

    // reclaim: started but not settled before the run deadline.
    let reclaimed = request(&env, dataset, 5).await;
    env.orchestrator.start_job(reclaimed).await.unwrap();
    reverted_with(
        env.researcher.reclaim(reclaimed).await,
        "RunDeadlineNotReached",
        "within its run deadline",
    );
    reverted_with(
        env.researcher2.reclaim(reclaimed).await,
        "NotJobResearcher",
        "only its researcher",
    );
    env.advance_time(TEST_RUN_TIMEOUT + 1).await.unwrap();
    let before = env.balance(researcher).await.unwrap();
    let receipt = env.researcher.reclaim(reclaimed).await.unwrap();
    let after = env.balance(researcher).await.unwrap();
    // The researcher sent this one: the escrow came back, less its gas (at most 10 gwei on anvil).
    assert!(after <= before + 5 * PRICE, "never more than the escrow");
    assert!(
        after + u128::from(receipt.gas_used) * 10u128.pow(10) >= before + 5 * PRICE,
        "the whole escrow came back"
    );
    assert_eq!(
        env.researcher.job(reclaimed).await.unwrap().state,
        JobState::Reclaimed
    );

    // All three refunds were paid out (nothing left to withdraw) and none counts against the 2-run cap.
    assert_eq!(env.researcher.withdrawable(researcher).await.unwrap(), 0);
    assert_eq!(
        env.researcher
            .runs_used(dataset, env.address_of(4))
            .await
            .unwrap(),
        0
    );
    assert_eq!(env.researcher.live_escrow().await.unwrap(), 0);
    reverted_with(
        env.researcher.withdraw().await,
        "NothingToWithdraw",
        "has nothing to withdraw",
    );

    // Terminal states are final.
    reverted_with(
        env.orchestrator.start_job(failed).await,
        "WrongJobState",
        "is failed",
    );
    reverted_with(
        env.researcher.reclaim(reclaimed).await,
        "WrongJobState",
        "is reclaimed",
    );
}

#[tokio::test]
async fn policy_violations_are_refused_with_sentences() {
    let env = TestEnv::start().await.unwrap();
    let dataset = publish(&env, 3).await;
    let r = &env.researcher;

    reverted_with(
        r.request_access(dataset, 9, Purpose::Research, [1; 32], 9 * PRICE)
            .await,
        "EpochsOutOfRange",
        "epochs 9 exceed this dataset's limit of 5 per run",
    );
    reverted_with(
        r.request_access(dataset, 2, Purpose::Research, [1; 32], PRICE)
            .await,
        "WrongEscrow",
        "must be exactly 0.02",
    );
    reverted_with(
        r.request_access(dataset, 1, Purpose::CommercialFineTuning, [1; 32], PRICE)
            .await,
        "PurposeNotAllowed",
        "purpose `commercial-fine-tuning` is not allowed by this dataset (allowed: research, evaluation)",
    );
    reverted_with(
        r.request_access(root(0x77), 1, Purpose::Research, [1; 32], PRICE)
            .await,
        "DatasetNotFound",
        "no dataset with root",
    );
    reverted_with(
        env.owner
            .publish(
                dataset,
                env.address_of(2),
                B256::repeat_byte(1),
                B256::repeat_byte(2),
                &policy(),
            )
            .await,
        "DatasetAlreadyPublished",
        "already published",
    );
    let mut bad = policy();
    bad.allowed_purposes = PurposeSet::EMPTY;
    reverted_with(
        env.owner
            .publish(
                root(4),
                env.address_of(2),
                B256::repeat_byte(1),
                B256::repeat_byte(2),
                &bad,
            )
            .await,
        "InvalidPolicy",
        "`allowedPurposes`",
    );
    reverted_with(
        env.researcher.pause(dataset).await,
        "NotDatasetOwner",
        "does not own dataset",
    );

    // Pause blocks requests; resume re-opens them.
    env.owner.pause(dataset).await.unwrap();
    reverted_with(
        r.request_access(dataset, 1, Purpose::Research, [1; 32], PRICE)
            .await,
        "DatasetIsPaused",
        "paused by its owner",
    );
    env.owner.resume(dataset).await.unwrap();

    // The run cap counts completed runs.
    for _ in 0..2 {
        let job = request(&env, dataset, 1).await;
        env.orchestrator.start_job(job).await.unwrap();
        env.orchestrator
            .confirm_training_complete(job, 1, B256::repeat_byte(3), B256::repeat_byte(4))
            .await
            .unwrap();
    }
    reverted_with(
        r.request_access(dataset, 1, Purpose::Research, [1; 32], PRICE)
            .await,
        "RunLimitReached",
        "has used all the runs this dataset allows per requester (2)",
    );

    // Policy updates apply to new requests; another researcher is unaffected by the cap.
    let mut cheaper = policy();
    cheaper.price_per_epoch = PRICE / 2;
    env.owner.update_policy(dataset, &cheaper).await.unwrap();
    let (job, _) = env
        .researcher2
        .request_access(dataset, 2, Purpose::Evaluation, [2; 32], PRICE)
        .await
        .unwrap();
    assert_eq!(
        env.researcher2.job(job).await.unwrap().price_per_epoch,
        PRICE / 2
    );
    reverted_with(
        env.researcher.start_job(job).await,
        "NotJobOrchestrator",
        "is not the orchestrator of job",
    );
    reverted_with(
        env.orchestrator
            .confirm_training_complete(job, 1, B256::ZERO, B256::ZERO)
            .await,
        "WrongJobState",
        "is granted, but this needs it running",
    );
}

/// Rust's `Policy::validate` and the contract's `publish` agree on every field (data-driven).
#[tokio::test]
async fn rust_and_contract_agree_on_policy_validation() {
    use licen_types::{MAX_PRICE_PER_EPOCH, PolicyError};
    let env = TestEnv::start().await.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    type Case = (&'static str, fn(&mut Policy), fn(&PolicyError) -> bool);
    let cases: [Case; 7] = [
        (
            "pricePerEpoch",
            |p| p.price_per_epoch = MAX_PRICE_PER_EPOCH + 1,
            |e| matches!(e, PolicyError::PricePerEpoch(_)),
        ),
        (
            "maxEpochsPerRun",
            |p| p.max_epochs_per_run = 0,
            |e| matches!(e, PolicyError::MaxEpochsPerRun(0)),
        ),
        (
            "maxEpochsPerRun",
            |p| p.max_epochs_per_run = 70_000,
            |e| matches!(e, PolicyError::MaxEpochsPerRun(70_000)),
        ),
        (
            "maxRunsPerRequester",
            |p| p.max_runs_per_requester = 0,
            |e| matches!(e, PolicyError::MaxRunsPerRequester),
        ),
        (
            "sessionTtl",
            |p| p.session_ttl = 0,
            |e| matches!(e, PolicyError::SessionTtl),
        ),
        (
            "allowedPurposes",
            |p| p.allowed_purposes = PurposeSet::EMPTY,
            |e| matches!(e, PolicyError::NoPurposes),
        ),
        (
            "expiry",
            |p| p.expiry = Some(1),
            |e| matches!(e, PolicyError::ExpiryInPast { .. }),
        ),
    ];
    for (i, (field, mutate, rust_error)) in cases.into_iter().enumerate() {
        let mut bad = policy();
        mutate(&mut bad);
        let local = bad.validate(now).expect_err(field);
        assert!(rust_error(&local), "{field}: Rust said {local:?}");
        let on_chain = env
            .owner
            .publish(
                root(0x40 + i as u8),
                env.address_of(2),
                B256::repeat_byte(1),
                B256::repeat_byte(2),
                &bad,
            )
            .await;
        reverted_with(on_chain, "InvalidPolicy", &format!("`{field}`"));
    }
    // The boundary values are accepted by both.
    let mut edge = policy();
    edge.price_per_epoch = MAX_PRICE_PER_EPOCH;
    edge.max_epochs_per_run = 65_535;
    edge.expiry = Some(now + 3600);
    edge.validate(now).unwrap();
    env.owner
        .publish(
            root(0x60),
            env.address_of(2),
            B256::repeat_byte(1),
            B256::repeat_byte(2),
            &edge,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn admin_registry_fee_and_envelope_rotation() {
    let env = TestEnv::start().await.unwrap();
    let orchestrator = env.address_of(2);
    assert_eq!(
        env.owner.orchestrator_key(orchestrator).await.unwrap(),
        (licen_chain::testing::TEST_ORCHESTRATOR_KEY, true)
    );
    reverted_with(
        env.owner
            .register_orchestrator(env.address_of(6), [1; 32])
            .await,
        "NotAdmin",
        "is not the contract admin",
    );
    reverted_with(
        env.admin.register_orchestrator(orchestrator, [1; 32]).await,
        "OrchestratorAlreadyRegistered",
        "rotate its key instead",
    );
    env.admin
        .rotate_orchestrator_key(orchestrator, [8; 32])
        .await
        .unwrap();
    assert_eq!(
        env.owner.orchestrator_key(orchestrator).await.unwrap(),
        ([8; 32], true)
    );

    let dataset = publish(&env, 9).await;
    env.owner
        .rotate_envelope(dataset, B256::repeat_byte(0xEE))
        .await
        .unwrap();
    reverted_with(
        env.researcher
            .rotate_envelope(dataset, B256::repeat_byte(0xEF))
            .await,
        "NotDatasetOwner",
        "does not own dataset",
    );

    env.admin
        .deactivate_orchestrator(orchestrator)
        .await
        .unwrap();
    reverted_with(
        env.owner
            .publish(
                root(10),
                orchestrator,
                B256::repeat_byte(1),
                B256::repeat_byte(2),
                &policy(),
            )
            .await,
        "OrchestratorNotActive",
        "choose an active orchestrator",
    );

    reverted_with(
        env.admin.set_protocol_fee(1001, env.address_of(1)).await,
        "FeeTooHigh",
        "exceeds the cap of 1000 bps",
    );
    env.admin
        .set_protocol_fee(500, env.address_of(7))
        .await
        .unwrap();
    assert_eq!(
        env.owner.protocol_fee().await.unwrap(),
        (500, env.address_of(7))
    );

    env.admin.transfer_admin(env.address_of(8)).await.unwrap();
    assert_eq!(env.owner.admin().await.unwrap(), env.address_of(8));
    reverted_with(
        env.admin.set_protocol_fee(100, env.address_of(1)).await,
        "NotAdmin",
        "is not the contract admin",
    );
}

/// The accounts refused on public networks as publicly keyed are exactly the ones the pinned
/// anvil hands out.
#[test]
fn the_public_development_accounts_are_anvils() {
    let chain = licen_chain::anvil::DevChain::spawn().unwrap();
    let handed_out: Vec<_> = chain.dev_signers().iter().map(|s| s.address()).collect();
    assert_eq!(
        handed_out,
        licen_chain::network::PUBLIC_DEV_ACCOUNTS.to_vec()
    );
}

/// Two orchestrator replicas hold one account (DESIGN §8). The one that takes over fences it:
/// the other's next transaction, signed with the nonce it had cached, can never be mined; it is
/// refused with a sentence, and asking the node for a fresh nonce does not get it through
/// either. Only once it holds the account again (and fences it itself) does it send.
#[tokio::test]
async fn a_fenced_account_refuses_the_replica_that_lost_it() {
    let env = TestEnv::start().await.unwrap();
    let replica = || {
        licen_chain::DataPolicyClient::new(
            licen_chain::connect_fenced(env.chain.rpc_url(), env.signer(2)).unwrap(),
            env.deployment.address,
        )
    };
    let (first, second) = (replica(), replica());
    let dataset = publish(&env, 1).await;
    let (started, waiting) = (
        request(&env, dataset, 1).await,
        request(&env, dataset, 1).await,
    );

    let first_fence = first.fence_account().await.unwrap();
    first.start_job(started).await.unwrap();
    // The second takes over: its fence uses the nonce the first would have used next.
    let second_fence = second.fence_account().await.unwrap();
    assert_eq!(second_fence.nonce, first_fence.nonce + 2);

    let state = |job| {
        let orchestrator = &env.orchestrator;
        async move { orchestrator.job(job).await.unwrap().state }
    };
    let stale = first.fail_job(started, "a stale replica's step").await;
    assert!(
        matches!(stale, Err(Error::AccountUsedElsewhere(_))),
        "{stale:?}"
    );
    let said = stale.unwrap_err().to_string();
    assert!(
        said.contains("another process sent from") && said.contains("nothing was sent"),
        "{said}"
    );
    let again = first.start_job(waiting).await;
    assert!(
        matches!(again, Err(Error::AccountUsedElsewhere(_))),
        "{again:?}"
    );
    assert_eq!(state(started).await, JobState::Running);
    assert_eq!(state(waiting).await, JobState::Granted);

    // The holder sends; the first sends again only after fencing the account itself.
    second.start_job(waiting).await.unwrap();
    first.fence_account().await.unwrap();
    first.fail_job(started, "handed back").await.unwrap();
    assert_eq!(state(started).await, JobState::Failed);
    let late = second.fail_job(waiting, "now stale").await;
    assert!(
        matches!(late, Err(Error::AccountUsedElsewhere(_))),
        "{late:?}"
    );
    assert_eq!(state(waiting).await, JobState::Running);
}

/// A fenced client whose send reverts (a job that cannot start) reports the contract's
/// sentence, not a lost account, and its next sends go through, also when the revert raced
/// another send: a revert leaves its nonce unused, which is not another process's doing.
#[tokio::test]
async fn a_fenced_client_tells_a_revert_from_a_lost_account() {
    let env = TestEnv::start().await.unwrap();
    let orchestrator = licen_chain::DataPolicyClient::new(
        licen_chain::connect_fenced(env.chain.rpc_url(), env.signer(2)).unwrap(),
        env.deployment.address,
    );
    let dataset = publish(&env, 2).await;
    let (job, other) = (
        request(&env, dataset, 1).await,
        request(&env, dataset, 1).await,
    );
    orchestrator.fence_account().await.unwrap();
    orchestrator.start_job(job).await.unwrap();
    for _ in 0..2 {
        reverted_with(orchestrator.start_job(job).await, "WrongJobState", "");
    }
    // Sent at once by two job drivers, one reverting: no gap is left behind the revert.
    let (reverted, started) =
        tokio::join!(orchestrator.start_job(job), orchestrator.start_job(other));
    reverted_with(reverted, "WrongJobState", "");
    started.unwrap();
    orchestrator.fail_job(job, "gave up").await.unwrap();
    orchestrator.fail_job(other, "gave up too").await.unwrap();
    for job in [job, other] {
        assert_eq!(
            env.orchestrator.job(job).await.unwrap().state,
            JobState::Failed
        );
    }
}
