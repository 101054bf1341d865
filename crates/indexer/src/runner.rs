//! The indexer as a service: the follower and the query API in one process, over one SQLite
//! file under the data dir or a Postgres database. This is what `licen indexer` calls ([`run`]); [`start`]
//! gives tests and the dev profile a handle to stop it.

use crate::api::{self, ApiState};
use crate::db::{Db, Deployment};
use crate::error::{Error, Result};
use crate::follower::{Follower, FollowerConfig};
use crate::manifests::{FetcherConfig, ManifestFetcher};
use crate::source::{ChainSource, RpcSource};
use alloy::primitives::Address;
use alloy::providers::Provider;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// File name of the database inside the data dir.
pub const DATABASE_FILE: &str = "indexer.sqlite";

/// How long [`Running::stop`] lets in-flight API requests finish before closing connections.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Where the indexer reads, stores and serves.
#[derive(Debug, Clone)]
pub struct IndexerConfig {
    /// Chain JSON-RPC URL.
    pub rpc_url: String,
    /// The DataPolicy contract.
    pub contract: Address,
    /// Its deployment block.
    pub start_block: u64,
    /// Directory holding the SQLite database ([`DATABASE_FILE`]) when no
    /// [`database_url`](Self::database_url) is given.
    pub data_dir: PathBuf,
    /// A database URL (`postgres://…` or `sqlite:…`) used instead of the file under `data_dir`.
    pub database_url: Option<String>,
    /// Where dataset manifests are fetched for text search (a zgs node, or a 0G storage
    /// indexer's nodes); without it search finds nothing (see [`crate::manifests`]).
    pub storage: Option<licen_storage::StorageEndpoint>,
    /// How the manifest fetcher paces its fetches and retries.
    pub manifests: FetcherConfig,
    /// Address the query API listens on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Confirmation depth (0 on the dev chain).
    pub confirmations: u64,
    /// Poll interval once caught up.
    pub poll_interval: Duration,
}

impl IndexerConfig {
    /// Dev-chain defaults: no confirmations, 100 ms polls, API on 127.0.0.1:8590.
    pub fn new(rpc_url: &str, contract: Address, start_block: u64, data_dir: PathBuf) -> Self {
        Self {
            rpc_url: rpc_url.to_owned(),
            contract,
            start_block,
            data_dir,
            database_url: None,
            storage: None,
            manifests: FetcherConfig::default(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8590)),
            confirmations: 0,
            poll_interval: Duration::from_millis(100),
        }
    }

    /// The database file.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join(DATABASE_FILE)
    }
}

/// A running indexer.
#[derive(Debug)]
pub struct Running {
    api_addr: SocketAddr,
    db: Db,
    stop: watch::Sender<bool>,
    follower: JoinHandle<()>,
    manifests: Option<JoinHandle<()>>,
    server: JoinHandle<()>,
}

impl Running {
    /// Where the query API listens.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Stops the follower (between batches: a batch is committed whole or not at all) and the
    /// API, and closes the database.
    pub async fn stop(self) -> Result<()> {
        let _ = self.stop.send(true);
        let joined = |e: tokio::task::JoinError| Error::Config(format!("indexer task: {e}"));
        self.follower.await.map_err(joined)?;
        if let Some(manifests) = self.manifests {
            manifests.await.map_err(joined)?;
        }
        // Open live streams never end by themselves: give requests a moment, then cut them.
        let mut server = self.server;
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut server)
            .await
            .is_err()
        {
            server.abort();
        }
        self.db.close().await;
        Ok(())
    }
}

/// `scheme://host:port` of a URL: hosted RPC URLs carry API keys in their path or query, and
/// logs must not.
pub(crate) fn origin(url: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[after_scheme..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host = authority.rsplit('@').next().unwrap_or(authority);
    format!("{}{host}", &url[..after_scheme])
}

/// The chain must still be the one this database indexed: the hash of its anchor block (the
/// start block of its first run) must not have changed. A dev chain started afresh has the same
/// id and deploys to the same address, so only a block hash tells it apart; its events would
/// otherwise mix with the old chain's. The first start records the anchor.
async fn check_anchor(db: &Db, source: &RpcSource, start_block: u64, rpc: &str) -> Result<()> {
    match db.anchor().await? {
        Some((block, hash)) => {
            let now = source.block(block).await?.map(|b| b.hash);
            if now != Some(hash) {
                return Err(Error::Config(format!(
                    "this indexer database holds the events of a chain whose block {block} was \
                     {hash}, but the chain at {} has {} there: that chain was replaced (a dev \
                     chain started afresh?). Delete this database to index the new chain from \
                     scratch, or give it its own data dir or database",
                    origin(rpc),
                    now.map_or_else(|| "no such block".to_owned(), |h| h.to_string())
                )));
            }
        }
        None => {
            let Some(start) = source.block(start_block).await? else {
                return Err(Error::Config(format!(
                    "the chain at {} has no block {start_block} (the start block) yet: check \
                     --start-block",
                    origin(rpc)
                )));
            };
            db.record_anchor(start_block, start.hash).await?;
        }
    }
    Ok(())
}

/// Opens the database, checks the chain answers, and starts the follower and the API.
pub async fn start(config: IndexerConfig) -> Result<Running> {
    let source = RpcSource::connect(&config.rpc_url)?;
    let head = source.head().await?;
    tracing::info!(rpc = %origin(&config.rpc_url), head, contract = %config.contract, "indexer starting");
    let chain_id = source
        .provider()
        .get_chain_id()
        .await
        .map_err(|e| Error::Rpc {
            action: "asking the chain for its id".into(),
            message: e.to_string(),
        })?;
    let db = match &config.database_url {
        Some(url) => Db::connect(url).await?,
        None => Db::open(&config.database_path()).await?,
    };
    let claimed = async {
        db.claim_deployment(Deployment {
            chain_id,
            contract: config.contract,
        })
        .await?;
        check_anchor(&db, &source, config.start_block, &config.rpc_url).await
    }
    .await;
    if let Err(e) = claimed {
        db.close().await;
        return Err(e);
    }
    let mut follower_config = FollowerConfig::new(config.contract, config.start_block);
    follower_config.confirmations = config.confirmations;
    follower_config.poll_interval = config.poll_interval;
    let (stop, stopped) = watch::channel(false);
    let follower = Follower::new(source.clone(), db.clone(), follower_config);
    let follower = tokio::spawn(follower.run(stopped.clone()));
    let manifests = match &config.storage {
        Some(endpoint) => {
            let storage = endpoint.connect().map_err(|e| {
                Error::Config(format!("the storage for manifests, {endpoint}: {e}"))
            })?;
            let fetcher = ManifestFetcher::new(db.clone(), storage, config.manifests.clone());
            Some(tokio::spawn(fetcher.run(stopped.clone())))
        }
        None => None,
    };
    let mut api_stopped = stopped;
    let (api_addr, server) = api::spawn_until(
        config.listen,
        ApiState {
            db: db.clone(),
            chain: Some(source),
        },
        async move {
            let _ = api_stopped.wait_for(|stop| *stop).await;
        },
    )
    .await?;
    tracing::info!(%api_addr, "indexer API listening");
    Ok(Running {
        api_addr,
        db,
        stop,
        follower,
        manifests,
        server,
    })
}

/// Runs the indexer until Ctrl-C (or SIGINT), then stops it cleanly.
pub async fn run(config: IndexerConfig) -> Result<()> {
    let running = start(config).await?;
    tokio::signal::ctrl_c().await.map_err(|source| Error::Io {
        context: "waiting for Ctrl-C".into(),
        source,
    })?;
    running.stop().await
}

#[cfg(test)]
mod tests {
    #[test]
    fn logged_rpc_urls_keep_only_their_origin() {
        for (url, shown) in [
            ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
            ("https://rpc.example/v2/SECRETKEY", "https://rpc.example"),
            (
                "https://user:pw@rpc.example:443/x?key=SECRET",
                "https://rpc.example:443",
            ),
        ] {
            assert_eq!(super::origin(url), shown);
        }
    }
}
