//! The 0G Flow submission against 0G's own contract code on anvil (`FixedPriceFlow` and
//! `FixedPrice` from the pinned 0G SDK; see `licen_chain::testing::zerog`): the exact fee is
//! paid and ends in the reward pool, sequence numbers and flow positions come back from the
//! `Submit` event, and wrong setups are refused with sentences before or instead of a payment.

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use licen_chain::anvil::DevChain;
use licen_chain::testing::zerog::deploy_0g_flow;
use licen_chain::{Error, FlowClient, connect};
use licen_storage::merkle::FileTree;
use licen_storage::zerog::{FlowAbi, FlowSubmission};

const PRICE_PER_SECTOR: u64 = 1_000_000_000;

fn submission(bytes: usize, seed: u8) -> FlowSubmission {
    let data: Vec<u8> = (0..bytes)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect();
    FlowSubmission::from_tree(&FileTree::from_bytes(&data), Vec::new()).unwrap()
}

#[tokio::test]
async fn files_are_paid_for_and_sequenced_by_0g_flow_contract() {
    let chain = DevChain::spawn().unwrap();
    let admin = connect(chain.rpc_url(), Some(chain.dev_signer(0))).unwrap();
    let zerog = deploy_0g_flow(&admin, U256::from(PRICE_PER_SECTOR))
        .await
        .unwrap();
    let payer = chain.dev_signer(3);
    let client = FlowClient::new(
        connect(chain.rpc_url(), Some(payer.clone())).unwrap(),
        zerog.flow,
        FlowAbi::Current,
    );
    // The ABI generation is read from the deployed code: 0G's current Flow.
    let detected = FlowClient::detect(
        connect(chain.rpc_url(), Some(payer.clone())).unwrap(),
        zerog.flow,
    )
    .await
    .unwrap();
    assert_eq!(detected.abi(), FlowAbi::Current);
    let said = FlowClient::detect(connect(chain.rpc_url(), None).unwrap(), zerog.market)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        said.contains("a `submit` of either ABI generation"),
        "{said}"
    );
    // 0G deploys its Flow behind a beacon proxy: detection follows EIP-1967 proxies (the
    // implementation slot, and the beacon slot's `implementation()`) to the Flow's code.
    for via_beacon in [false, true] {
        let proxy =
            licen_chain::testing::zerog::deploy_eip1967_pointer(&admin, zerog.flow, via_beacon)
                .await
                .unwrap();
        let detected = FlowClient::detect(connect(chain.rpc_url(), None).unwrap(), proxy)
            .await
            .unwrap();
        assert_eq!(detected.abi(), FlowAbi::Current, "via beacon: {via_beacon}");
    }
    let (market, price) = client.price_per_sector().await.unwrap();
    assert_eq!(
        (market, price),
        (zerog.market, U256::from(PRICE_PER_SECTOR))
    );
    let provider = &admin.provider;
    let balance = |who: Address| async move { provider.get_balance(who).await.unwrap() };

    // A file of several segments: 1 MiB + 100 bytes pads to 4,608 chunks (4,096 + 512).
    let first = submission((1 << 20) + 100, 1);
    assert_eq!(first.sectors(), U256::from(4096 + 512));
    let before = balance(payer.address()).await;
    let mined = client.submit(&first).await.unwrap();
    assert_eq!(mined.tx_seq, 0);
    assert_eq!(mined.sectors, 4608);
    assert_eq!(mined.fee, U256::from(PRICE_PER_SECTOR) * U256::from(4608));
    assert_eq!(client.fee(&first).await.unwrap(), mined.fee);
    // The whole fee went through the market to the reward pool; the payer paid it plus gas.
    assert_eq!(balance(zerog.reward).await, mined.fee);
    assert_eq!(balance(zerog.flow).await, U256::ZERO);
    let receipt = provider
        .get_transaction_receipt(mined.tx)
        .await
        .unwrap()
        .unwrap();
    let gas = U256::from(receipt.gas_used) * U256::from(receipt.effective_gas_price);
    assert_eq!(balance(payer.address()).await, before - mined.fee - gas);

    // The next submission gets the next sequence number, further along the flow.
    let second = submission(300, 2);
    let next = client.submit(&second).await.unwrap();
    assert_eq!(next.tx_seq, 1);
    assert!(
        next.start_entry >= mined.start_entry + mined.sectors,
        "{next:?} after {mined:?}"
    );
    assert_eq!(balance(zerog.reward).await, mined.fee + next.fee);

    // What a storage node following this Flow learns: each file's root, size, sequence number
    // and position, in order.
    let head = provider.get_block_number().await.unwrap();
    let seen = client.submissions(0, head).await.unwrap();
    let roots: Vec<_> = seen
        .iter()
        .map(|f| (f.root, f.size, f.tx_seq, f.start_entry))
        .collect();
    assert_eq!(
        roots,
        [
            (first.root().unwrap(), (1 << 20) + 100, 0, mined.start_entry),
            (second.root().unwrap(), 300, 1, next.start_entry),
        ]
    );
    assert_eq!(seen[1].block, next.block);

    // Several files in one transaction (`batchSubmit`, what the web app's publish page sends
    // through a wallet): each gets its own sequence number and the fees add up to the wei.
    let batch = [
        submission(5000, 3),
        submission(3 << 18, 4),
        submission(40, 5),
    ];
    let reward_before = balance(zerog.reward).await;
    let mined = client.submit_all(&batch).await.unwrap();
    assert_eq!(
        mined.iter().map(|m| m.tx_seq).collect::<Vec<_>>(),
        [2, 3, 4]
    );
    assert!(mined.iter().all(|m| m.tx == mined[0].tx), "{mined:?}");
    let fees = batch
        .iter()
        .map(|s| s.fee(U256::from(PRICE_PER_SECTOR)))
        .sum::<U256>();
    assert_eq!(mined.iter().map(|m| m.fee).sum::<U256>(), fees);
    assert_eq!(balance(zerog.reward).await, reward_before + fees);
    let head = provider.get_block_number().await.unwrap();
    let seen = client.submissions(head, head).await.unwrap();
    assert_eq!(
        seen.iter().map(|f| (f.root, f.tx_seq)).collect::<Vec<_>>(),
        batch
            .iter()
            .zip(2..)
            .map(|(s, seq)| (s.root().unwrap(), seq))
            .collect::<Vec<_>>()
    );

    // The legacy ABI's `submit` does not exist on this Flow: refused with a sentence, no fee.
    let legacy = FlowClient::new(
        connect(chain.rpc_url(), Some(payer.clone())).unwrap(),
        zerog.flow,
        FlowAbi::Legacy,
    );
    let before = balance(zerog.reward).await;
    let said = legacy.submit(&second).await.unwrap_err();
    assert!(matches!(said, Error::FlowRefused { .. }), "{said:?}");
    assert!(said.to_string().contains("other ABI generation"), "{said}");
    assert_eq!(balance(zerog.reward).await, before);

    // A wallet that cannot pay the fee is told what it needs, before anything is sent.
    let poor: alloy::signers::local::PrivateKeySigner =
        "0x1111111111111111111111111111111111111111111111111111111111111111"
            .parse()
            .unwrap();
    let broke = FlowClient::new(
        connect(chain.rpc_url(), Some(poor.clone())).unwrap(),
        zerog.flow,
        FlowAbi::Current,
    );
    let said = broke.submit(&first).await.unwrap_err().to_string();
    assert!(
        said.contains(&poor.address().to_string()) && said.contains("holds 0"),
        "{said}"
    );

    // An address that is not a Flow contract is named as such.
    let nowhere = FlowClient::new(
        connect(chain.rpc_url(), Some(payer)).unwrap(),
        Address::repeat_byte(0x77),
        FlowAbi::Current,
    );
    let said = nowhere.submit(&first).await.unwrap_err().to_string();
    assert!(
        said.contains("does not look like a 0G Flow contract"),
        "{said}"
    );
}
