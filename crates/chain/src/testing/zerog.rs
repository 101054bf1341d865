//! 0G's storage contracts on a local chain, for tests: `FixedPriceFlow` and its `FixedPrice`
//! market, deployed from the creation code 0G ships in its pinned npm SDK
//! (`@0gfoundation/0g-ts-sdk` 1.2.8 in `tools/package-lock.json`; the same bytes as the Go
//! client's contract artifacts), and initialised the way 0G's own test harness does: the
//! market with a price, the Flow and a reward pool; the Flow with its market, no deploy delay
//! and epochs long enough never to roll over in a test.
//!
//! The reward pool is the one stand-in: 0G's reward contracts only receive the fees here, so a
//! contract whose code is a single STOP (accepting any call and value) takes their place. It is
//! labelled as such wherever it appears.

use crate::client::{Connection, wait_for_receipt};
use crate::{Error, Result};
use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::{SolCall, SolValue};

alloy::sol! {
    /// `FixedPrice.initialize` (0g-storage-contracts `market/FixedPrice.sol`).
    function initialize(uint256 price, address flow, address reward) external;
}

mod flow_init {
    alloy::sol! {
        /// `Flow.initialize` (0g-storage-contracts `dataFlow/Flow.sol`).
        function initialize(address market, uint256 blocksPerEpoch) external;
    }
}

/// Runtime code `STOP`, returned by a 12-byte constructor: the reward-pool stand-in.
const STOP_CONTRACT: [u8; 13] = [
    0x60, 0x01, 0x60, 0x0c, 0x60, 0x00, 0x39, 0x60, 0x01, 0x60, 0x00, 0xf3, 0x00,
];

/// Blocks per Flow epoch: far more than any test mines.
const BLOCKS_PER_EPOCH: u64 = 1_000_000_000;

/// Where the deployed contracts are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZeroGFlow {
    /// `FixedPriceFlow` (what clients `submit` to).
    pub flow: Address,
    /// `FixedPrice` (prices sectors).
    pub market: Address,
    /// The reward-pool stand-in (STOP code; not 0G's contract).
    pub reward: Address,
}

/// Deploys 0G's Flow and market with `price_per_sector` wei per 256-byte sector, paid by the
/// wallet of `connection`.
pub async fn deploy_0g_flow(connection: &Connection, price_per_sector: U256) -> Result<ZeroGFlow> {
    let reward = deploy(connection, STOP_CONTRACT.to_vec(), "deploy reward stand-in").await?;
    let market = deploy(
        connection,
        creation_code("market/factories/FixedPrice__factory.js")?,
        "deploy FixedPrice",
    )
    .await?;
    let mut flow_code = creation_code("flow/factories/FixedPriceFlow__factory.js")?;
    flow_code.extend_from_slice(&U256::ZERO.abi_encode()); // deployDelay
    let flow = deploy(connection, flow_code, "deploy FixedPriceFlow").await?;
    send(
        connection,
        market,
        initializeCall {
            price: price_per_sector,
            flow,
            reward,
        }
        .abi_encode(),
        "FixedPrice.initialize",
    )
    .await?;
    send(
        connection,
        flow,
        flow_init::initializeCall {
            market,
            blocksPerEpoch: U256::from(BLOCKS_PER_EPOCH),
        }
        .abi_encode(),
        "Flow.initialize",
    )
    .await?;
    Ok(ZeroGFlow {
        flow,
        market,
        reward,
    })
}

/// An EIP-1967 proxy's storage pointing at `implementation` (directly through the
/// implementation slot, or `via_beacon`: through the beacon slot and a beacon whose
/// `implementation()` answers it), for tests of code that follows proxies. Only the pointers
/// are real: the contract holding them does not forward calls (its code is a STOP; deployed on
/// anvil, whose `anvil_setStorageAt` writes the slot).
pub async fn deploy_eip1967_pointer(
    connection: &Connection,
    implementation: Address,
    via_beacon: bool,
) -> Result<Address> {
    use alloy::providers::ext::AnvilApi as _;
    let holder = deploy(connection, STOP_CONTRACT.to_vec(), "deploy proxy stand-in").await?;
    let (slot, target) = if via_beacon {
        // Runtime: PUSH20 implementation, PUSH1 0, MSTORE, PUSH1 32, PUSH1 0, RETURN (29 bytes),
        // behind a constructor that copies it out (12 bytes).
        let mut runtime = vec![0x73];
        runtime.extend_from_slice(implementation.as_slice());
        runtime.extend_from_slice(&[0x60, 0x00, 0x52, 0x60, 0x20, 0x60, 0x00, 0xf3]);
        let mut code = vec![
            0x60, 0x1d, 0x60, 0x0c, 0x60, 0x00, 0x39, 0x60, 0x1d, 0x60, 0x00, 0xf3,
        ];
        code.extend_from_slice(&runtime);
        let beacon = deploy(connection, code, "deploy beacon stand-in").await?;
        (
            alloy::primitives::b256!(
                "a3f0ad74e5423aebfd80d3ef4346578335a9a72aeaee59ff6cb3582b35133d50"
            ),
            beacon,
        )
    } else {
        (
            alloy::primitives::b256!(
                "360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc"
            ),
            implementation,
        )
    };
    connection
        .provider
        .anvil_set_storage_at(holder, slot.into(), target.into_word())
        .await
        .map_err(|e| Error::Anvil(format!("anvil_setStorageAt: {e}")))?;
    Ok(holder)
}

/// The `_bytecode` of one of the SDK's typechain factories.
fn creation_code(factory: &str) -> Result<Vec<u8>> {
    let path = licen_toolchain::Tools::locate()
        .dir
        .join("node_modules/@0gfoundation/0g-ts-sdk/lib.commonjs/contracts")
        .join(factory);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::Config(format!(
            "reading 0G's contract code from {} ({e}): run `cargo xtask bootstrap` to install the pinned tools",
            path.display()
        ))
    })?;
    let hex = text
        .split("_bytecode = \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .ok_or_else(|| Error::Config(format!("{} holds no `_bytecode`", path.display())))?;
    hex.parse::<Bytes>().map(|b| b.to_vec()).map_err(|e| {
        Error::Config(format!(
            "the `_bytecode` of {} is not hex: {e}",
            path.display()
        ))
    })
}

async fn deploy(connection: &Connection, code: Vec<u8>, action: &'static str) -> Result<Address> {
    let receipt = mined(
        connection,
        TransactionRequest::default().with_deploy_code(code),
        action,
    )
    .await?;
    receipt
        .contract_address
        .ok_or_else(|| Error::Anvil(format!("{action}: no contract address in the receipt")))
}

async fn send(
    connection: &Connection,
    to: Address,
    data: Vec<u8>,
    action: &'static str,
) -> Result<()> {
    mined(
        connection,
        TransactionRequest::default().with_to(to).with_input(data),
        action,
    )
    .await?;
    Ok(())
}

async fn mined(
    connection: &Connection,
    request: TransactionRequest,
    action: &'static str,
) -> Result<alloy::rpc::types::TransactionReceipt> {
    let pending = connection
        .provider
        .send_transaction(request)
        .await
        .map_err(|e| Error::Anvil(format!("{action}: {e}")))?;
    let receipt = wait_for_receipt(
        &connection.provider,
        &connection.rpc,
        action,
        *pending.tx_hash(),
    )
    .await?;
    if !receipt.status() {
        return Err(Error::Anvil(format!(
            "{action}: transaction {} failed",
            receipt.transaction_hash
        )));
    }
    Ok(receipt)
}
