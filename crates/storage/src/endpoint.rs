//! Where a LICEN service finds storage: one zgs node ([`StorageEndpoint::Node`]) or the nodes a
//! 0G storage indexer names ([`StorageEndpoint::Indexer`]), and [`Storage`], the connected
//! client, with the operations the services use. Either way every downloaded byte is verified
//! against the root asked for, and an upload ends when the file is finalized everywhere it
//! went.

use std::fmt;
use std::path::Path;

use tokio::io::AsyncWrite;

use crate::client::{DownloadOptions, FileReads, StorageClient, tree_of_file};
use crate::error::{Error, Result};
use crate::indexer::{IndexerStore, upload_bytes_to, upload_file_to};
use crate::merkle::{FileTree, Hash};
use crate::rpc::FileInfo;
use crate::store::{BoxFuture, Downloaded, ProgressFn, Store, Uploaded};

/// Where storage is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageEndpoint {
    /// One zgs node holding whole files (the local node, or a 0G node of shard `0/1`).
    Node(String),
    /// A 0G storage indexer: files are spread over the sharded nodes it names.
    Indexer(String),
}

/// The local storage node's default zgs RPC URL (0G's zgs RPC port).
pub const LOCAL_NODE_URL: &str = "http://127.0.0.1:5678";

impl StorageEndpoint {
    /// Where files go when nothing names a place: a network's storage `indexer` when it has
    /// one, else the local node at [`LOCAL_NODE_URL`].
    pub fn default_for(indexer: Option<&str>) -> Self {
        indexer.map_or_else(
            || StorageEndpoint::Node(LOCAL_NODE_URL.to_owned()),
            |url| StorageEndpoint::Indexer(url.to_owned()),
        )
    }

    /// The node's or indexer's URL.
    pub fn url(&self) -> &str {
        match self {
            StorageEndpoint::Node(url) | StorageEndpoint::Indexer(url) => url,
        }
    }

    /// From a `--storage URL` / `--storage-indexer URL` pair, as every LICEN command reads them:
    /// a flag wins over the environment (`LICEN_STORAGE_URL`, `LICEN_STORAGE_INDEXER`), both
    /// variables set is refused as ambiguous, and nothing given is `default` (the local node, or
    /// a 0G network's indexer).
    pub fn from_flags(
        storage: Option<&str>,
        indexer: Option<&str>,
        default: StorageEndpoint,
    ) -> Result<Self> {
        let env = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        Ok(match (storage, indexer) {
            (Some(_), Some(_)) => {
                return Err(Error::InvalidInput(
                    "both --storage and --storage-indexer were given: pass one".into(),
                ));
            }
            (Some(url), None) => StorageEndpoint::Node(url.to_string()),
            (None, Some(url)) => StorageEndpoint::Indexer(url.to_string()),
            (None, None) => match (env("LICEN_STORAGE_URL"), env("LICEN_STORAGE_INDEXER")) {
                (Some(_), Some(_)) => {
                    return Err(Error::InvalidInput(
                        "both LICEN_STORAGE_URL and LICEN_STORAGE_INDEXER are set, so where \
                         files are stored is ambiguous: unset one, or pass --storage or \
                         --storage-indexer"
                            .into(),
                    ));
                }
                (Some(url), None) => StorageEndpoint::Node(url),
                (None, Some(url)) => StorageEndpoint::Indexer(url),
                (None, None) => default,
            },
        })
    }

    /// A client of it (no request is sent yet).
    pub fn connect(&self) -> Result<Storage> {
        Ok(match self {
            StorageEndpoint::Node(url) => Storage::Node(StorageClient::new(url)?),
            StorageEndpoint::Indexer(url) => Storage::Indexer(IndexerStore::new(url)?),
        })
    }
}

/// A bare URL names a node.
impl From<String> for StorageEndpoint {
    fn from(url: String) -> Self {
        StorageEndpoint::Node(url)
    }
}

/// A bare URL names a node.
impl From<&str> for StorageEndpoint {
    fn from(url: &str) -> Self {
        StorageEndpoint::Node(url.to_string())
    }
}

impl fmt::Display for StorageEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageEndpoint::Node(url) => write!(f, "storage node {url}"),
            StorageEndpoint::Indexer(url) => write!(f, "the nodes of storage indexer {url}"),
        }
    }
}

/// A connected [`StorageEndpoint`].
#[derive(Clone, Debug)]
pub enum Storage {
    /// One node.
    Node(StorageClient),
    /// The nodes an indexer names.
    Indexer(IndexerStore),
}

impl Storage {
    /// The nodes an upload goes to: the node, or a set of the indexer's nodes holding every
    /// segment between them (asked afresh on each call).
    pub async fn upload_nodes(&self) -> Result<Vec<StorageClient>> {
        Ok(match self {
            Storage::Node(node) => vec![node.clone()],
            Storage::Indexer(indexer) => indexer.select_nodes().await?,
        })
    }

    /// Uploads the file at `path` whose tree is known.
    pub async fn upload_file_with_tree(
        &self,
        path: &Path,
        tree: &FileTree,
        progress: Option<ProgressFn>,
    ) -> Result<Uploaded> {
        upload_file_to(
            &self.upload_nodes().await?,
            path,
            tree,
            FileReads::Cached,
            progress,
        )
        .await
    }

    /// Uploads bytes held in memory.
    pub async fn upload_bytes(
        &self,
        data: &[u8],
        progress: Option<ProgressFn>,
    ) -> Result<Uploaded> {
        upload_bytes_to(&self.upload_nodes().await?, data, progress).await
    }

    /// Downloads `root` to `path` (through `path.partial`, renamed once every segment
    /// verified).
    pub async fn download_to_path(
        &self,
        root: Hash,
        path: &Path,
        options: DownloadOptions,
        progress: Option<ProgressFn>,
    ) -> Result<Downloaded> {
        crate::store::download_to_path(self, root, path, options, progress).await
    }

    /// Downloads `root` into memory, verified.
    pub async fn download_to_vec(&self, root: Hash, options: DownloadOptions) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.get(root, &mut out, options, None).await?;
        Ok(out)
    }

    /// What the storage knows about `root` (`None`: unknown).
    pub async fn file_info(&self, root: Hash) -> Result<Option<FileInfo>> {
        Store::file_info(self, root).await
    }

    /// The node's or indexer's URL.
    pub fn url(&self) -> &str {
        match self {
            Storage::Node(node) => node.url(),
            Storage::Indexer(indexer) => indexer.indexer().url(),
        }
    }
}

impl Store for Storage {
    fn put_file<'a>(
        &'a self,
        path: &'a Path,
        progress: Option<ProgressFn>,
    ) -> BoxFuture<'a, Result<Uploaded>> {
        Box::pin(async move {
            let tree = tree_of_file(path, progress.clone()).await?;
            self.upload_file_with_tree(path, &tree, progress).await
        })
    }

    fn put_bytes<'a>(
        &'a self,
        data: &'a [u8],
        progress: Option<ProgressFn>,
    ) -> BoxFuture<'a, Result<Uploaded>> {
        Box::pin(self.upload_bytes(data, progress))
    }

    fn get<'a>(
        &'a self,
        root: Hash,
        writer: &'a mut (dyn AsyncWrite + Unpin + Send),
        options: DownloadOptions,
        progress: Option<ProgressFn>,
    ) -> BoxFuture<'a, Result<Downloaded>> {
        match self {
            Storage::Node(node) => node.get(root, writer, options, progress),
            Storage::Indexer(indexer) => indexer.get(root, writer, options, progress),
        }
    }

    fn file_info(&self, root: Hash) -> BoxFuture<'_, Result<Option<FileInfo>>> {
        match self {
            Storage::Node(node) => Store::file_info(node, root),
            Storage::Indexer(indexer) => Store::file_info(indexer, root),
        }
    }

    fn has_segment(&self, root: Hash, index: u64) -> BoxFuture<'_, Result<bool>> {
        match self {
            Storage::Node(node) => Store::has_segment(node, root, index),
            Storage::Indexer(indexer) => Store::has_segment(indexer, root, index),
        }
    }
}
