//! A local 0G storage indexer: answers `indexer_getShardedNodes`, `indexer_getFileLocations`
//! and `indexer_getNodeLocations` over a configured list of trusted nodes, the way 0G's
//! indexer answers for its trusted nodes (it has no peer discovery: `discovered` is empty).
//!
//! Every answer is fresh: the nodes are asked their shard (and, for a file, its info) on each
//! call, concurrently, with a short timeout, so a node that is down is left out rather than
//! named. Holds no files and no keys.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use serde_json::{Value, json};

use super::{FILE_NOT_FOUND, ShardedNode, ShardedNodes, methods};
use crate::client::{ClientConfig, StorageClient};
use crate::error::{Error, Result};
use crate::merkle::Hash;
use crate::rpc::{RpcError, codes};
use crate::shard::{SelectOrder, select};

/// How long the indexer waits for one node.
const NODE_TIMEOUT: Duration = Duration::from_secs(5);

/// How to run a local indexer.
#[derive(Clone, Debug)]
pub struct IndexerConfig {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// The trusted nodes' zgs RPC URLs.
    pub nodes: Vec<String>,
}

struct Indexer {
    nodes: Vec<StorageClient>,
}

impl Indexer {
    /// Every configured node that answers, with its shard and round-trip time.
    async fn sharded_nodes(&self) -> Vec<ShardedNode> {
        let asked = futures_util::future::join_all(self.nodes.iter().map(|node| async move {
            let started = Instant::now();
            let shard = node.fetch_shard_config().await;
            (node, shard, started.elapsed())
        }))
        .await;
        asked
            .into_iter()
            .filter_map(|(node, shard, rtt)| match shard {
                Ok(config) => Some(ShardedNode {
                    url: node.url().to_string(),
                    config,
                    latency: rtt.as_millis() as i64,
                    since: 0,
                }),
                Err(e) => {
                    tracing::warn!(node = node.url(), error = %e, "storage node does not answer; not listed");
                    None
                }
            })
            .collect()
    }

    /// The nodes holding `root` finalized, when together they hold every segment.
    async fn file_locations(
        &self,
        root: Hash,
    ) -> std::result::Result<Option<Vec<ShardedNode>>, RpcError> {
        let asked = futures_util::future::join_all(self.nodes.iter().map(|node| async move {
            let started = Instant::now();
            let info = node.file_info(root).await;
            let shard = node.fetch_shard_config().await;
            (node, info, shard, started.elapsed())
        }))
        .await;
        let mut known = false;
        let mut holders = Vec::new();
        for (node, info, shard, rtt) in asked {
            match (info, shard) {
                (Ok(Some(info)), Ok(config)) => {
                    known = true;
                    if info.finalized {
                        holders.push(ShardedNode {
                            url: node.url().to_string(),
                            config,
                            latency: rtt.as_millis() as i64,
                            since: 0,
                        });
                    }
                }
                (Ok(None), _) => {}
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!(node = node.url(), %root, error = %e, "storage node does not answer; not counted")
                }
            }
        }
        if !known {
            return Err(RpcError::new(
                -32000,
                FILE_NOT_FOUND,
                format!("no storage node this indexer knows has file {root}"),
            ));
        }
        let shards: Vec<_> = holders.iter().map(|n| n.config).collect();
        Ok(select(&shards, 1, SelectOrder::AsGiven).map(|_| holders))
    }
}

async fn handle(State(indexer): State<Arc<Indexer>>, body: axum::body::Bytes) -> axum::Json<Value> {
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return axum::Json(error_response(
                Value::Null,
                RpcError::new(codes::PARSE_ERROR, "Parse error", e.to_string()),
            ));
        }
    };
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let method = request.get("method").and_then(Value::as_str).unwrap_or("");
    let params = request.get("params").cloned().unwrap_or(Value::Null);
    let result = match method {
        methods::GET_SHARDED_NODES => Ok(json!(ShardedNodes {
            trusted: indexer.sharded_nodes().await,
            discovered: Vec::new(),
        })),
        methods::GET_FILE_LOCATIONS => match root_param(&params) {
            Ok(root) => indexer.file_locations(root).await.map(|l| json!(l)),
            Err(e) => Err(e),
        },
        methods::GET_NODE_LOCATIONS => Ok(json!({})),
        other => Err(RpcError::new(
            codes::METHOD_NOT_FOUND,
            "Method not found",
            format!(
                "{other:?} is not a method of this storage indexer; it answers {}, {} and {}. \
                 This URL is a 0G storage indexer, not a storage node: give it as \
                 --storage-indexer",
                methods::GET_SHARDED_NODES,
                methods::GET_FILE_LOCATIONS,
                methods::GET_NODE_LOCATIONS
            ),
        )),
    };
    axum::Json(match result {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(e) => error_response(id, e),
    })
}

fn error_response(id: Value, e: RpcError) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": e})
}

fn root_param(params: &Value) -> std::result::Result<Hash, RpcError> {
    let bad = || {
        RpcError::invalid_params(
            "root",
            "expected one parameter: a 0x-prefixed 32-byte hex file root",
        )
    };
    match params.as_array().map(Vec::as_slice) {
        Some([Value::String(s)]) => s.parse().map_err(|_| bad()),
        _ => Err(bad()),
    }
}

/// A local indexer serving in the background of the current tokio runtime.
pub struct RunningIndexer {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningIndexer {
    /// `http://<addr>`: the URL clients use.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving and waits.
    pub async fn shutdown(mut self) -> Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.wait().await
    }

    /// Waits until the server stops (only on shutdown or error).
    pub async fn wait(self) -> Result<()> {
        match self.task.await {
            Ok(r) => r.map_err(|e| Error::io("serving the storage indexer", e)),
            Err(e) => Err(Error::io(
                "the storage indexer task",
                std::io::Error::other(e),
            )),
        }
    }
}

/// Binds `config.listen` and serves in the background.
pub async fn start(config: IndexerConfig) -> Result<RunningIndexer> {
    if config.nodes.is_empty() {
        return Err(Error::InvalidInput(
            "a storage indexer needs at least one storage node URL (--node http://HOST:PORT)"
                .into(),
        ));
    }
    let cfg = ClientConfig {
        request_timeout: NODE_TIMEOUT,
        retries: 0,
        ..ClientConfig::default()
    };
    let nodes = config
        .nodes
        .iter()
        .map(|url| StorageClient::with_config(url, cfg.clone()))
        .collect::<Result<Vec<_>>>()?;
    let app = Router::new()
        .route("/", post(handle))
        .with_state(Arc::new(Indexer { nodes }));
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| Error::io(format!("binding {}", config.listen), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("reading the bound address", e))?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
    });
    tracing::info!(%addr, nodes = config.nodes.len(), "storage indexer listening");
    Ok(RunningIndexer {
        addr,
        shutdown: Some(tx),
        task,
    })
}
