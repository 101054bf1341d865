//! Where the follower reads the chain: a small trait over the three RPC calls it needs, so the
//! follower's range adaptation, reorg handling and malformed-log handling can be tested with a
//! scripted chain as well as against anvil.

use crate::error::{Error, Result};
use alloy::eips::BlockNumberOrTag;
use alloy::primitives::{Address, B256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{Filter, Log};
use std::future::Future;

/// A block header as far as the follower cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRef {
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: B256,
    /// Parent block hash.
    pub parent_hash: B256,
    /// Timestamp (unix seconds).
    pub time: u64,
}

/// The chain reads the follower needs.
pub trait ChainSource: Send + Sync {
    /// The latest block number.
    fn head(&self) -> impl Future<Output = Result<u64>> + Send;
    /// The canonical block at `number`, if the chain has one.
    fn block(&self, number: u64) -> impl Future<Output = Result<Option<BlockRef>>> + Send;
    /// Every log emitted by `address` in blocks `from..=to` (one `eth_getLogs`).
    fn logs(
        &self,
        address: Address,
        from: u64,
        to: u64,
    ) -> impl Future<Output = Result<Vec<Log>>> + Send;
}

/// A [`ChainSource`] over an alloy provider (JSON-RPC).
#[derive(Debug, Clone)]
pub struct RpcSource {
    provider: DynProvider,
}

impl RpcSource {
    /// Reads through `provider`.
    pub fn new(provider: DynProvider) -> Self {
        Self { provider }
    }

    /// Connects to `rpc_url` (read-only).
    pub fn connect(rpc_url: &str) -> Result<Self> {
        let connection = licen_chain::connect(rpc_url, None)
            .map_err(|e| Error::Config(format!("chain RPC `{rpc_url}`: {e}")))?;
        Ok(Self::new(connection.provider))
    }

    /// The provider.
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }
}

fn rpc_error(action: String, e: impl std::fmt::Display) -> Error {
    Error::Rpc {
        action,
        message: e.to_string(),
    }
}

impl ChainSource for RpcSource {
    async fn head(&self) -> Result<u64> {
        self.provider
            .get_block_number()
            .await
            .map_err(|e| rpc_error("eth_blockNumber".into(), e))
    }

    async fn block(&self, number: u64) -> Result<Option<BlockRef>> {
        let block = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Number(number))
            .await
            .map_err(|e| rpc_error(format!("eth_getBlockByNumber {number}"), e))?;
        Ok(block.map(|b| BlockRef {
            number: b.header.number,
            hash: b.header.hash,
            parent_hash: b.header.parent_hash,
            time: b.header.timestamp,
        }))
    }

    async fn logs(&self, address: Address, from: u64, to: u64) -> Result<Vec<Log>> {
        let filter = Filter::new().address(address).from_block(from).to_block(to);
        self.provider
            .get_logs(&filter)
            .await
            .map_err(|e| rpc_error(format!("eth_getLogs {from}..={to}"), e))
    }
}
