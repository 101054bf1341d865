//! The storage relay: the page's zgs JSON-RPC read calls, forwarded to storage.
//!
//! Only the methods that read public file information or download ciphertext pass (uploads go
//! through [`crate::staging`], which checks the root first); everything else is refused with a
//! sentence. Bodies are forwarded as they are, never logged or stored.
//!
//! With one storage node every allowed call goes to it unchanged. With a 0G storage indexer
//! ([`IndexerRelay`]) no single node holds a whole file, so calls are routed per root: the
//! indexer names the nodes holding the file finalized (`indexer_getFileLocations`), each is
//! asked the file's Flow position (its first entry, which fixes the shard of every segment),
//! and then `zgs_getFileInfo` goes to the first of them (for a file not located, to a node
//! that knows it unfinalized, if one does: the publish page asks it whether a file was paid
//! for already) and `zgs_downloadSegment(root, start,
//! end)` / `zgs_downloadSegmentWithProof(root, index)` to one whose shard holds that segment.
//! A range crossing into a segment no single located node holds is refused (the page asks one
//! aligned segment at a time). Shards are as the indexer names them (0G's indexer reports each
//! node's own). Locations are kept a few seconds per root
//! ([`LOCATIONS_TTL`], at most [`MAX_LOCATED`] roots) so a download asks the indexer about
//! once, not once per segment. The indexer is trusted for routing only: the page verifies
//! every byte against the root.
//!
//! The relay is public, and a call about a file not located costs the indexer and the nodes
//! calls of their own: at most [`MAX_LOOKUPS`] such lookups run at once (the rest wait their
//! turn), and the indexer's node list is reused for [`LOCATIONS_TTL`], so no rate of calls from
//! pages turns into more than a bounded load on storage. Answers about a file nobody holds yet
//! are never cached: the publish page asks whether a file was paid for, and a stale "no" would
//! have it paid twice.
//!
//! Must never: accept a method outside [`ALLOWED_METHODS`], log a request body, or keep one
//! after the call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use licen_storage::Hash;
use licen_storage::indexer::IndexerClient;
use licen_storage::merkle::SEGMENT_CHUNKS;
use licen_storage::rpc::{FileInfo, methods};
use licen_storage::shard::ShardConfig;
use serde::Deserialize;
use serde_json::{Value, json};

/// The zgs methods the page may call through the relay.
pub const ALLOWED_METHODS: &[&str] = &[
    "zgs_getFileInfo",
    "zgs_downloadSegment",
    "zgs_downloadSegmentWithProof",
];

#[derive(Deserialize)]
struct Call<'a> {
    #[serde(borrow)]
    method: std::borrow::Cow<'a, str>,
}

/// Why a relay request was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not a JSON-RPC call object (batches are not relayed).
    NotACall,
    /// A method that is not relayed.
    Method(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotACall => f.write_str(
                "the storage relay expects one JSON-RPC call object {\"jsonrpc\":\"2.0\",\"id\":…,\"method\":…,\"params\":[…]}",
            ),
            Refusal::Method(m) => write!(
                f,
                "the storage relay does not forward {m:?}; allowed: {}",
                ALLOWED_METHODS.join(", ")
            ),
        }
    }
}

/// Checks that `body` is one call of an allowed method.
pub fn check(body: &[u8]) -> Result<(), Refusal> {
    let call: Call<'_> = serde_json::from_slice(body).map_err(|_| Refusal::NotACall)?;
    if ALLOWED_METHODS.contains(&call.method.as_ref()) {
        Ok(())
    } else {
        Err(Refusal::Method(call.method.into_owned()))
    }
}

/// How long the nodes located for a root are reused.
pub const LOCATIONS_TTL: Duration = Duration::from_secs(5);
/// Roots whose locations are kept at once.
pub const MAX_LOCATED: usize = 256;
/// How long the relay waits for one node's file info while locating a file.
const NODE_TIMEOUT: Duration = Duration::from_secs(10);
/// Lookups that ask the indexer and the nodes (a root not cached) running at once.
pub const MAX_LOOKUPS: usize = 4;

/// Why a routed call got no node's answer: the HTTP status and a sentence for the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// 400 (a call that cannot be routed) or 502 (the indexer or the nodes did not answer).
    pub status: u16,
    /// What went wrong and what to do.
    pub message: String,
}

fn fail(status: u16, message: impl Into<String>) -> Failure {
    Failure {
        status,
        message: message.into(),
    }
}

/// A node's answer, passed on as it is.
#[derive(Debug)]
pub struct Answer {
    /// The node's HTTP status (200 for a JSON-RPC answer, errors included).
    pub status: u16,
    /// The node's JSON-RPC response, or one the relay wrote (`null` for a file not located).
    pub body: Bytes,
}

/// A node holding a file finalized.
#[derive(Debug, Clone)]
struct Holder {
    url: String,
    shard: ShardConfig,
    /// The file's first Flow entry on this node: with the shard, which segments it holds.
    start_entry: u64,
}

impl Holder {
    fn holds(&self, segment: u64) -> bool {
        self.shard.holds_file_segment(self.start_entry, segment)
    }
}

type Located = Arc<[Holder]>;

/// The relay over a 0G storage indexer's sharded nodes.
#[derive(Debug)]
pub struct IndexerRelay {
    indexer: IndexerClient,
    located: Mutex<HashMap<Hash, (Instant, Located)>>,
    /// The indexer's trusted nodes, as last listed, and when.
    trusted: Mutex<Option<(Instant, Vec<String>)>>,
    /// Bounds the lookups that reach the indexer and the nodes ([`MAX_LOOKUPS`]).
    lookups: tokio::sync::Semaphore,
}

#[derive(Deserialize)]
struct FullCall {
    #[serde(default)]
    id: Value,
    method: String,
    #[serde(default)]
    params: Value,
}

impl IndexerRelay {
    /// A relay routing through the indexer at `url` (`http://host:port`).
    pub fn new(url: &str) -> licen_storage::Result<Self> {
        Ok(IndexerRelay {
            indexer: IndexerClient::new(url)?,
            located: Mutex::default(),
            trusted: Mutex::default(),
            lookups: tokio::sync::Semaphore::new(MAX_LOOKUPS),
        })
    }

    /// The indexer's URL.
    pub fn url(&self) -> &str {
        self.indexer.url()
    }

    /// Answers one allowed call ([`check`] passed) from a node holding what it asks for;
    /// `body` goes to that node unchanged.
    pub async fn relay(&self, http: &reqwest::Client, body: Bytes) -> Result<Answer, Failure> {
        let call: FullCall =
            serde_json::from_slice(&body).map_err(|_| fail(400, Refusal::NotACall.to_string()))?;
        let params = call.params.as_array().map(Vec::as_slice).unwrap_or(&[]);
        let signature = match call.method.as_str() {
            methods::GET_FILE_INFO => "zgs_getFileInfo(root, needAvailable)",
            methods::DOWNLOAD_SEGMENT => "zgs_downloadSegment(root, startChunk, endChunk)",
            methods::DOWNLOAD_SEGMENT_WITH_PROOF => {
                "zgs_downloadSegmentWithProof(root, segmentIndex)"
            }
            other => return Err(fail(400, Refusal::Method(other.to_owned()).to_string())),
        };
        let bad = |what: &str| {
            fail(
                400,
                format!("{signature}: {what}; the storage relay routes by these parameters"),
            )
        };
        let root: Hash = params
            .first()
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("the root must be a 0x-prefixed 32-byte hex string"))?;
        let index = |at: usize, name: &str| {
            params
                .get(at)
                .and_then(Value::as_u64)
                .ok_or_else(|| bad(&format!("{name} must be a whole number")))
        };
        // Segments the call touches, first and last (checked before anything is asked).
        let segments = match call.method.as_str() {
            methods::DOWNLOAD_SEGMENT => {
                let (start, end) = (index(1, "startChunk")?, index(2, "endChunk")?);
                let chunks = SEGMENT_CHUNKS as u64;
                // An empty or reversed range goes to the node that holds `start`, which
                // answers it with its own error.
                let (first, last) = (
                    start / chunks,
                    end.max(start.saturating_add(1)).saturating_sub(1) / chunks,
                );
                if last > first + 1 {
                    return Err(spanning(root, start, end));
                }
                Some((first, last, start, end))
            }
            methods::DOWNLOAD_SEGMENT_WITH_PROOF => {
                let i = index(1, "segmentIndex")?;
                Some((i, i, 0, 0))
            }
            _ => None,
        };
        let Some(holders) = self.located(http, root).await? else {
            if segments.is_none()
                && let Some(url) = self.knowing_node(http, root).await?
            {
                return forward(http, root, &[url], body).await;
            }
            // As a node answers for a file it does not have.
            let none = json!({"jsonrpc": "2.0", "id": call.id, "result": null});
            return Ok(Answer {
                status: 200,
                body: Bytes::from(none.to_string()),
            });
        };
        let holding: Vec<String> = match segments {
            None => holders.iter().map(|h| h.url.clone()).collect(),
            Some((first, last, start, end)) => {
                let holding: Vec<String> = holders
                    .iter()
                    .filter(|h| h.holds(first) && h.holds(last))
                    .map(|h| h.url.clone())
                    .collect();
                if holding.is_empty() && first != last {
                    return Err(spanning(root, start, end));
                }
                if holding.is_empty() {
                    // Not what the indexer promised: ask it again next time.
                    self.forget(root);
                    return Err(fail(
                        502,
                        format!(
                            "none of the storage nodes the indexer {} located for file {root} holds its segment {first}: try again in a moment",
                            self.url()
                        ),
                    ));
                }
                holding
            }
        };
        let answer = forward(http, root, &holding, body).await;
        if answer.is_err() {
            // The nodes may have moved: the next call asks the indexer again.
            self.forget(root);
        }
        answer
    }

    /// A node of the indexer's that knows `root` although no set of nodes holds it finalized
    /// (an upload under way, or a Flow submission seen and not uploaded yet). The publish page
    /// asks `zgs_getFileInfo` whether a file was paid for already: answering `null` for a
    /// known file would have it paid twice.
    async fn knowing_node(
        &self,
        http: &reqwest::Client,
        root: Hash,
    ) -> Result<Option<String>, Failure> {
        let _turn = self.turn().await?;
        let nodes = self.trusted_nodes().await?;
        let infos =
            futures_util::future::join_all(nodes.iter().map(|url| node_file_info(http, url, root)))
                .await;
        Ok(nodes
            .into_iter()
            .zip(infos)
            .find(|(_, info)| matches!(info, Ok(Some(_))))
            .map(|(url, _)| url))
    }

    /// The indexer's trusted nodes' URLs, listed again once [`LOCATIONS_TTL`] has passed.
    async fn trusted_nodes(&self) -> Result<Vec<String>, Failure> {
        if let Some((at, urls)) = &*lock_plain(&self.trusted)
            && at.elapsed() < LOCATIONS_TTL
        {
            return Ok(urls.clone());
        }
        let urls: Vec<String> = self
            .indexer
            .sharded_nodes()
            .await
            .map_err(|e| fail(502, e.to_string()))?
            .trusted
            .into_iter()
            .map(|n| n.url)
            .collect();
        *lock_plain(&self.trusted) = Some((Instant::now(), urls.clone()));
        Ok(urls)
    }

    /// Waits for a turn to run a lookup that reaches storage ([`MAX_LOOKUPS`] at once).
    async fn turn(&self) -> Result<tokio::sync::SemaphorePermit<'_>, Failure> {
        self.lookups
            .acquire()
            .await
            .map_err(|_| fail(503, "the storage relay is shutting down"))
    }

    /// The nodes holding `root` finalized, in the indexer's order, from the cache while fresh;
    /// `None` when the indexer locates no set of nodes holding all of it.
    async fn located(
        &self,
        http: &reqwest::Client,
        root: Hash,
    ) -> Result<Option<Located>, Failure> {
        if let Some(holders) = self.cached(root) {
            return Ok(Some(holders));
        }
        let _turn = self.turn().await?;
        // Located by a lookup that ran while this one waited its turn.
        if let Some(holders) = self.cached(root) {
            return Ok(Some(holders));
        }
        let nodes = match self.indexer.file_locations(root).await {
            Ok(Some(nodes)) => nodes,
            Ok(None) => return Ok(None),
            Err(e) => return Err(fail(502, e.to_string())),
        };
        let infos = futures_util::future::join_all(
            nodes.iter().map(|n| node_file_info(http, &n.url, root)),
        )
        .await;
        let mut holders = Vec::new();
        let mut errors = Vec::new();
        for (node, info) in nodes.iter().zip(infos) {
            match info {
                Ok(Some(info)) if info.finalized && info.tx.data_merkle_root == root => {
                    holders.push(Holder {
                        url: node.url.clone(),
                        shard: node.config,
                        start_entry: info.tx.start_entry_index,
                    });
                }
                Ok(_) => errors.push(format!("{}: not finalized there", node.url)),
                Err(e) => errors.push(e),
            }
        }
        if holders.is_empty() {
            return Err(fail(
                502,
                format!(
                    "the storage indexer {} located file {root} on {} node(s), but none has it finalized now ({}): try again in a moment",
                    self.url(),
                    nodes.len(),
                    errors.join("; ")
                ),
            ));
        }
        let holders: Located = holders.into();
        self.remember(root, holders.clone());
        Ok(Some(holders))
    }

    /// Keeps `holders` for `root`, dropping stale roots, then the oldest, beyond
    /// [`MAX_LOCATED`].
    fn remember(&self, root: Hash, holders: Located) {
        let mut cache = self.lock();
        if cache.len() >= MAX_LOCATED {
            cache.retain(|_, (at, _)| at.elapsed() < LOCATIONS_TTL);
        }
        if cache.len() >= MAX_LOCATED
            && let Some(oldest) = cache.iter().min_by_key(|(_, (at, _))| *at).map(|(r, _)| *r)
        {
            cache.remove(&oldest);
        }
        cache.insert(root, (Instant::now(), holders));
    }

    /// `root`'s holders while fresh.
    fn cached(&self, root: Hash) -> Option<Located> {
        self.lock()
            .get(&root)
            .filter(|(at, _)| at.elapsed() < LOCATIONS_TTL)
            .map(|(_, holders)| holders.clone())
    }

    fn forget(&self, root: Hash) {
        self.lock().remove(&root);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Hash, (Instant, Located)>> {
        lock_plain(&self.located)
    }
}

/// Plain data: a panic elsewhere leaves nothing half-done worth refusing over.
fn lock_plain<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Sends `body` unchanged to the first of `urls` that answers; its answer as it is.
async fn forward(
    http: &reqwest::Client,
    root: Hash,
    urls: &[String],
    body: Bytes,
) -> Result<Answer, Failure> {
    let mut errors = Vec::new();
    for url in urls {
        let url = url.as_str();
        let sent = http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(r) => {
                let status = r.status().as_u16();
                match r.bytes().await {
                    Ok(body) => return Ok(Answer { status, body }),
                    Err(e) => errors.push(format!("{url}: {e}")),
                }
            }
            Err(e) => errors.push(format!("{url}: {e}")),
        }
    }
    Err(fail(
        502,
        format!(
            "the storage nodes holding file {root} did not answer ({}): try again in a moment",
            errors.join("; ")
        ),
    ))
}

fn spanning(root: Hash, start: u64, end: u64) -> Failure {
    fail(
        400,
        format!(
            "zgs_downloadSegment asks for chunks {start}..{end} of file {root}, which cross segments that different storage nodes (shards) hold: ask for one segment at a time, at most {SEGMENT_CHUNKS} chunks starting at a multiple of {SEGMENT_CHUNKS}"
        ),
    )
}

/// `zgs_getFileInfo(root, true)` of the node at `url`.
async fn node_file_info(
    http: &reqwest::Client,
    url: &str,
    root: Hash,
) -> Result<Option<FileInfo>, String> {
    let request = json!({"jsonrpc": "2.0", "id": 1, "method": methods::GET_FILE_INFO, "params": [root, true]});
    let answer: Value = http
        .post(url)
        .timeout(NODE_TIMEOUT)
        .json(&request)
        .send()
        .await
        .map_err(|e| format!("{url} did not answer: {e}"))?
        .json()
        .await
        .map_err(|e| format!("{url} did not answer with JSON: {e}"))?;
    if let Some(error) = answer.get("error") {
        return Err(format!("{url} refused zgs_getFileInfo: {error}"));
    }
    serde_json::from_value(answer.get("result").cloned().unwrap_or(Value::Null))
        .map_err(|e| format!("{url} answered zgs_getFileInfo with something else: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_info_and_download_methods_pass() {
        assert_eq!(
            check(br#"{"jsonrpc":"2.0","id":1,"method":"zgs_getFileInfo","params":["0x00",true]}"#),
            Ok(())
        );
        // Uploads go through the staging endpoints, which check the root first.
        assert_eq!(
            check(br#"{"jsonrpc":"2.0","id":1,"method":"zgs_uploadSegments","params":[[]]}"#),
            Err(Refusal::Method("zgs_uploadSegments".into()))
        );
        assert_eq!(
            check(br#"{"jsonrpc":"2.0","id":1,"method":"admin_shutdown","params":[]}"#),
            Err(Refusal::Method("admin_shutdown".into()))
        );
        assert_eq!(check(b"[1,2]"), Err(Refusal::NotACall));
        assert!(Refusal::NotACall.to_string().contains("JSON-RPC"));
    }

    fn relay() -> IndexerRelay {
        // Nothing listens on port 9: a call that got as far as the indexer would fail with 502.
        IndexerRelay::new("http://127.0.0.1:9").unwrap()
    }

    async fn routed(call: Value) -> Result<Answer, Failure> {
        relay()
            .relay(&reqwest::Client::new(), Bytes::from(call.to_string()))
            .await
    }

    /// However many pages call at once, at most [`MAX_LOOKUPS`] lookups reach storage: the
    /// next waits its turn (here for the indexer, at a closed port, to fail fast with 502).
    #[tokio::test]
    async fn lookups_reaching_storage_wait_their_turn() {
        let relay = relay();
        let http = reqwest::Client::new();
        let info = |n: u8| {
            let root = Hash::repeat_byte(n).to_string();
            Bytes::from(
                json!({"jsonrpc": "2.0", "id": 1, "method": "zgs_getFileInfo", "params": [root, true]})
                    .to_string(),
            )
        };
        let turns: Vec<_> = futures_util::future::join_all((0..MAX_LOOKUPS).map(|_| relay.turn()))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let waiting = tokio::time::timeout(Duration::from_millis(300), relay.relay(&http, info(7)));
        assert!(waiting.await.is_err(), "a lookup beyond the bound ran");
        drop(turns);
        let failure = tokio::time::timeout(Duration::from_secs(10), relay.relay(&http, info(7)))
            .await
            .expect("its turn came")
            .unwrap_err();
        assert_eq!(failure.status, 502, "{failure:?}");
    }

    #[tokio::test]
    async fn calls_that_cannot_be_routed_are_refused_before_the_indexer_is_asked() {
        let root = Hash::repeat_byte(1).to_string();
        for (params, says) in [
            (json!(["0x12", true]), "the root must be"),
            (
                json!([root, "zero", 1024]),
                "startChunk must be a whole number",
            ),
            // Three segments at once: never one node's.
            (json!([root, 512, 2600]), "one segment at a time"),
        ] {
            let method = if says.contains("root") {
                "zgs_getFileInfo"
            } else {
                "zgs_downloadSegment"
            };
            let call = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
            let failure = routed(call).await.unwrap_err();
            assert_eq!(failure.status, 400, "{failure:?}");
            assert!(failure.message.contains(says), "{failure:?}");
        }
        let upload =
            json!({"jsonrpc": "2.0", "id": 1, "method": "zgs_uploadSegments", "params": []});
        assert!(
            routed(upload)
                .await
                .unwrap_err()
                .message
                .contains("does not forward")
        );
        // A routable call reaches the indexer, which is down: a sentence naming it.
        let info =
            json!({"jsonrpc": "2.0", "id": 1, "method": "zgs_getFileInfo", "params": [root, true]});
        let failure = routed(info).await.unwrap_err();
        assert_eq!(failure.status, 502);
        assert!(failure.message.contains("127.0.0.1:9"), "{failure:?}");
    }

    #[test]
    fn located_roots_are_bounded() {
        let relay = relay();
        let holders: Located = vec![Holder {
            url: "http://127.0.0.1:9".into(),
            shard: ShardConfig::WHOLE,
            start_entry: 0,
        }]
        .into();
        for i in 0..MAX_LOCATED as u64 + 10 {
            let mut root = [0u8; 32];
            root[..8].copy_from_slice(&i.to_le_bytes());
            relay.remember(Hash::from(root), holders.clone());
        }
        assert_eq!(relay.lock().len(), MAX_LOCATED);
        // The newest is kept.
        let mut newest = [0u8; 32];
        newest[..8].copy_from_slice(&(MAX_LOCATED as u64 + 9).to_le_bytes());
        assert!(relay.lock().contains_key(&Hash::from(newest)));
    }
}
