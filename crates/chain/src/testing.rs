//! Shared helpers for tests across the workspace: spawn anvil, deploy DataPolicy, register an
//! orchestrator, and hand out one client per role. One place, so no test copies this setup.
//!
//! Uses anvil's publicly known development keys: **insecure**, local chains only.

use crate::anvil::DevChain;
use crate::client::{DataPolicyClient, DeployParams, Deployment, connect};
use crate::error::Result;
use alloy::primitives::Address;
use alloy::providers::Provider;
use alloy::providers::ext::AnvilApi;
use alloy::signers::local::PrivateKeySigner;

pub mod zerog;

/// Protocol fee used by test deployments (2.5%).
pub const TEST_FEE_BPS: u16 = 250;
/// Run timeout used by test deployments (one hour).
pub const TEST_RUN_TIMEOUT: u64 = 3600;
/// The orchestrator's X25519 public key registered by [`TestEnv::start`] (a fixed test value;
/// tests that open envelopes register their own).
pub const TEST_ORCHESTRATOR_KEY: [u8; 32] = [7; 32];

/// A running anvil with DataPolicy deployed and one client per role.
#[derive(Debug)]
pub struct TestEnv {
    /// The chain (killed on drop).
    pub chain: DevChain,
    /// Where the contract lives.
    pub deployment: Deployment,
    /// Admin (dev account 0).
    pub admin: DataPolicyClient,
    /// Treasury account (dev account 1).
    pub treasury: DataPolicyClient,
    /// Registered orchestrator (dev account 2).
    pub orchestrator: DataPolicyClient,
    /// A dataset owner (dev account 3).
    pub owner: DataPolicyClient,
    /// A researcher (dev account 4).
    pub researcher: DataPolicyClient,
    /// Another researcher (dev account 5).
    pub researcher2: DataPolicyClient,
}

impl TestEnv {
    /// Spawns anvil, deploys, and registers dev account 2 as orchestrator.
    pub async fn start() -> Result<Self> {
        let chain = DevChain::spawn()?;
        let rpc = chain.rpc_url().to_owned();
        let admin_signer = chain.dev_signer(0);
        let params = DeployParams {
            admin: admin_signer.address(),
            treasury: chain.dev_signer(1).address(),
            fee_bps: TEST_FEE_BPS,
            run_timeout: TEST_RUN_TIMEOUT,
        };
        let (admin, deployment) =
            DataPolicyClient::deploy(connect(&rpc, Some(admin_signer))?, params).await?;
        let client_for = |i: usize| -> Result<DataPolicyClient> {
            Ok(DataPolicyClient::new(
                connect(&rpc, Some(chain.dev_signer(i)))?,
                deployment.address,
            ))
        };
        let env = Self {
            treasury: client_for(1)?,
            orchestrator: client_for(2)?,
            owner: client_for(3)?,
            researcher: client_for(4)?,
            researcher2: client_for(5)?,
            admin,
            deployment,
            chain,
        };
        env.admin
            .register_orchestrator(env.address_of(2), TEST_ORCHESTRATOR_KEY)
            .await?;
        Ok(env)
    }

    /// The address of dev account `index`.
    pub fn address_of(&self, index: usize) -> Address {
        self.chain.dev_signer(index).address()
    }

    /// The signer of dev account `index` (insecure, publicly known).
    pub fn signer(&self, index: usize) -> PrivateKeySigner {
        self.chain.dev_signer(index)
    }

    /// Moves the chain clock forward by `seconds` and mines a block.
    pub async fn advance_time(&self, seconds: u64) -> Result<()> {
        let provider = self.admin.provider();
        provider
            .anvil_increase_time(seconds)
            .await
            .map_err(|e| crate::Error::Anvil(format!("evm_increaseTime: {e}")))?;
        provider
            .anvil_mine(Some(1), None)
            .await
            .map_err(|e| crate::Error::Anvil(format!("anvil_mine: {e}")))?;
        Ok(())
    }

    /// The native balance of `address` in wei.
    pub async fn balance(&self, address: Address) -> Result<u128> {
        let wei = self
            .admin
            .provider()
            .get_balance(address)
            .await
            .map_err(|e| crate::Error::Anvil(format!("eth_getBalance: {e}")))?;
        Ok(u128::try_from(wei).unwrap_or(u128::MAX))
    }
}
