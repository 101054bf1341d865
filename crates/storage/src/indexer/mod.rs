//! 0G's storage indexer: which storage nodes exist, which shard each holds, and which hold a
//! given file. (Not LICEN's marketplace indexer, `crates/indexer`, which reads the chain.)
//!
//! - The wire types and method names, with 0G's field names (`indexer_getShardedNodes`,
//!   `indexer_getFileLocations`, `indexer_getNodeLocations`).
//! - [`IndexerClient`]: calls an indexer, 0G's or the local [`service`].
//! - [`IndexerStore`]: the [`Store`](crate::store::Store) over the nodes an indexer names:
//!   uploads pick a set of nodes that holds every segment (0G's [`select`](crate::shard::select))
//!   and send each node the segments of its shard; downloads take each segment from a node
//!   holding it, every segment verified against the root as from one node.
//! - [`service`]: a local indexer over a configured list of (trusted) nodes, for the local
//!   stack and tests.
//!
//! An indexer is trusted for nothing but routing: it can withhold or misname nodes (an upload
//! then fails to find a covering set, a download finds no copy), never make a client accept
//! bytes the root does not describe.

mod client;
pub mod service;
mod store;

use serde::{Deserialize, Deserializer, Serialize};

pub use client::IndexerClient;
pub use store::{IndexerStore, upload_bytes_to, upload_file_to};

use crate::shard::ShardConfig;

/// Method names, exactly as 0G's indexer registers them.
pub mod methods {
    /// `indexer_getShardedNodes()` → [`super::ShardedNodes`].
    pub const GET_SHARDED_NODES: &str = "indexer_getShardedNodes";
    /// `indexer_getFileLocations(root)` → `[`[`super::ShardedNode`]`]`, or `null` while no set
    /// of nodes holding the file covers every shard; a JSON-RPC error `file not found` when no
    /// node knows the file.
    pub const GET_FILE_LOCATIONS: &str = "indexer_getFileLocations";
    /// `indexer_getNodeLocations()` → a map from IP to geolocation (the local indexer knows
    /// none and answers `{}`).
    pub const GET_NODE_LOCATIONS: &str = "indexer_getNodeLocations";
}

/// The error message 0G's indexer gives when no node knows a file.
pub const FILE_NOT_FOUND: &str = "file not found";

/// A storage node as an indexer describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardedNode {
    /// The node's zgs RPC URL.
    pub url: String,
    /// Its shard position.
    pub config: ShardConfig,
    /// Round-trip time the indexer measured, in milliseconds.
    #[serde(default)]
    pub latency: i64,
    /// When the indexer discovered it (Unix seconds; 0 for configured, trusted nodes).
    #[serde(default)]
    pub since: i64,
}

/// `indexer_getShardedNodes` result. 0G's indexer writes an empty list as `null`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardedNodes {
    /// Nodes the indexer operator configured (0G's clients upload only to these).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub trusted: Vec<ShardedNode>,
    /// Nodes found on the network.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub discovered: Vec<ShardedNode>,
}

fn null_as_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_g_shapes_parse_including_null_lists() {
        let go = r#"{"trusted":[{"url":"http://10.0.0.1:5678","config":{"shardId":1,"numShard":2},"latency":12,"since":0}],"discovered":null}"#;
        let nodes: ShardedNodes = serde_json::from_str(go).unwrap();
        assert_eq!(nodes.trusted[0].config.to_string(), "1/2");
        assert_eq!(nodes.trusted[0].latency, 12);
        assert!(nodes.discovered.is_empty());
        let both_null: ShardedNodes =
            serde_json::from_str(r#"{"trusted":null,"discovered":null}"#).unwrap();
        assert_eq!(both_null, ShardedNodes::default());
        let out = serde_json::to_value(&nodes.trusted[0]).unwrap();
        assert_eq!(out["config"]["numShard"], 2);
        assert_eq!(out["config"]["shardId"], 1);
    }
}
