//! [`IndexerClient`]: the three indexer calls, with errors that name the indexer.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{FILE_NOT_FOUND, ShardedNode, ShardedNodes, methods};
use crate::client::{ClientConfig, StorageClient};
use crate::error::{Error, Result};
use crate::merkle::Hash;

/// A client of one 0G storage indexer (JSON-RPC at its root URL).
#[derive(Clone, Debug)]
pub struct IndexerClient {
    /// The JSON-RPC transport (the same HTTP client the node calls use).
    rpc: StorageClient,
}

impl IndexerClient {
    /// A client of the indexer at `url` (`http://host:port`, or `https://…` as 0G's are).
    pub fn new(url: &str) -> Result<Self> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Error::InvalidInput(format!(
                "storage indexer URL {url:?} must start with http:// or https://"
            )));
        }
        let cfg = ClientConfig {
            request_timeout: Duration::from_secs(30),
            ..ClientConfig::default()
        };
        Ok(IndexerClient {
            rpc: StorageClient::with_config(url, cfg)?,
        })
    }

    /// The indexer URL.
    pub fn url(&self) -> &str {
        self.rpc.url()
    }

    async fn call<P: Serialize, T: DeserializeOwned>(
        &self,
        method: &str,
        params: P,
    ) -> Result<Option<T>> {
        self.rpc.call(method, params).await.map_err(|e| {
            let reason = match e {
                Error::Transport { reason, .. } | Error::Protocol { reason, .. } => reason,
                Error::Rpc {
                    code,
                    message,
                    data,
                    ..
                } => format!(
                    "JSON-RPC error {code}: {message}{}",
                    data.map(|d| format!(" ({d})")).unwrap_or_default()
                ),
                other => other.to_string(),
            };
            Error::Indexer {
                url: self.url().to_string(),
                method: method.to_string(),
                reason,
            }
        })
    }

    /// `indexer_getShardedNodes`: the nodes it knows and their shards.
    pub async fn sharded_nodes(&self) -> Result<ShardedNodes> {
        Ok(self
            .call(methods::GET_SHARDED_NODES, ())
            .await?
            .unwrap_or_default())
    }

    /// `indexer_getFileLocations(root)`: nodes that together hold every segment of `root`;
    /// `None` when no node knows it or those that do do not cover every shard yet.
    pub async fn file_locations(&self, root: Hash) -> Result<Option<Vec<ShardedNode>>> {
        match self.call(methods::GET_FILE_LOCATIONS, (root,)).await {
            Err(Error::Indexer { reason, .. }) if reason.contains(FILE_NOT_FOUND) => Ok(None),
            other => other,
        }
    }
}
