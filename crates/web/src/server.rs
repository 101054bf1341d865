//! The axum server: page routes (the HTML shell), `/assets/*`, `/api/config` (public chain
//! facts), `/api/indexer/*` (read-only proxy of the indexer, the live stream included),
//! `/api/uploads` (staged ciphertext uploads, [`crate::staging`]; the page streams the pieces
//! over one WebSocket per upload, `/api/uploads/{id}/socket`) and `/api/storage` (the
//! [`crate::relay`] for file info and downloads).
//!
//! Storage is one zgs node or a 0G storage indexer over sharded nodes
//! ([`licen_storage::StorageEndpoint`]): uploads go through [`licen_storage::Storage`] either
//! way; the relay forwards to the node, or routes each call to a node the indexer locates
//! ([`crate::relay::IndexerRelay`]).
//!
//! Must never: hold or accept a secret, log a request body, or answer with the orchestrator's
//! key (the page reads it from the chain itself).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::Address;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{DefaultBodyLimit, Path, Query, RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use crate::assets;
use crate::error::{Error, Result};
use crate::relay::{self, IndexerRelay};
use crate::staging::{Refusal, Staging};

/// Largest request the server accepts (the page sends ciphertext in pieces of 4 MiB).
const MAX_BODY: usize = 32 * 1024 * 1024;

/// Public facts about the chain the page talks to (through the wallet's RPC).
#[derive(Debug, Clone, Serialize)]
pub struct PublicChain {
    /// Chain id the wallet must be on.
    pub chain_id: u64,
    /// JSON-RPC URL offered to wallets (and used by the development wallet).
    pub rpc_url: String,
    /// The network's name, as the page offers it to a wallet that does not know the chain
    /// (`wallet_addEthereumChain`).
    pub name: String,
    /// The DataPolicy contract.
    pub data_policy: Address,
    /// Orchestrator suggested for new datasets (its key is still read from the chain).
    pub default_orchestrator: Option<Address>,
    /// Block explorer prefix for transaction links (`<prefix><tx hash>`), if any.
    pub explorer_tx_url: Option<String>,
}

/// The 0G Flow contract storage is paid through, on a 0G network: the page pays it for every
/// file it uploads, from the person's wallet, before the storage node takes the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicFlow {
    /// The Flow contract (what `submit`/`batchSubmit` go to).
    pub address: Address,
    /// Its `submit` generation; `None` reads it from the deployed code at start.
    pub abi: Option<licen_storage::zerog::FlowAbi>,
}

/// Sees every request body the server receives (tests assert on it). Never set in production.
pub type RequestTap = Arc<dyn Fn(&str, &[u8]) + Send + Sync>;

/// How to run the web server.
#[derive(Clone)]
pub struct WebConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The indexer's query API (`http://host:port`).
    pub indexer_url: String,
    /// Where ciphertext uploads are relayed and downloads read: a storage node's zgs JSON-RPC
    /// endpoint, or a 0G storage indexer (files spread over its sharded nodes).
    pub storage: licen_storage::StorageEndpoint,
    /// The chain.
    pub chain: PublicChain,
    /// On a 0G network: the Flow contract the page pays for storage through (the storage node
    /// then takes only paid files). `None` for a node that takes every file, as in `licen dev`.
    pub flow: Option<PublicFlow>,
    /// Offer the INSECURE development wallet (anvil's unlocked accounts) when the browser has
    /// no wallet: `licen dev` only.
    pub dev_wallet: bool,
    /// Public notices every page shows under the header (e.g. `licen dev`'s simulated
    /// trainer); never anything secret.
    pub notices: Vec<String>,
    /// Test hook: called with the path and body of every request.
    pub request_tap: Option<RequestTap>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("listen", &self.listen)
            .field("indexer_url", &self.indexer_url)
            .field("storage", &self.storage)
            .field("chain", &self.chain)
            .field("flow", &self.flow)
            .field("dev_wallet", &self.dev_wallet)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct AppState {
    http: reqwest::Client,
    indexer: String,
    storage: Relayed,
    staging: Staging,
    config: Arc<serde_json::Value>,
    // WebSocket messages bypass the request middleware: the socket handler shows them here.
    tap: Option<RequestTap>,
}

/// Where `/api/storage` calls go.
#[derive(Clone)]
enum Relayed {
    /// Every call to this node, unchanged.
    Node(String),
    /// Each call to a node the indexer locates for its root.
    Indexer(Arc<IndexerRelay>),
}

/// A running server.
#[derive(Debug)]
pub struct Running {
    addr: SocketAddr,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting and waits for the server task.
    pub async fn stop(self) {
        let _ = self.shutdown.send(());
        let _ = self.task.await;
    }
}

fn checked_url(what: &'static str, url: &str) -> Result<String> {
    let trimmed = url.trim_end_matches('/');
    if (trimmed.starts_with("http://") || trimmed.starts_with("https://")) && trimmed.len() > 8 {
        Ok(trimmed.to_owned())
    } else {
        Err(Error::BadUrl {
            what,
            url: url.to_owned(),
        })
    }
}

/// On a 0G `network`, sets `config.flow` to the Flow contract the storage nodes name in
/// `zgs_getStatus` (as 0G's clients read it; nothing when they name none), so the page pays
/// what the nodes follow. A `--flow` they do not follow, or nodes whose Flow is on another chain
/// than the app's, is refused: visitors would pay where the nodes never look. On `dev` nothing
/// is asked: storage may start after the web app there, and a Flow is named with `--flow` (as
/// `licen dev --flow` does).
///
/// # Errors
/// [`Error::Flow`] for those refusals, or when the storage cannot be asked.
pub async fn pay_the_nodes_flow(
    config: &mut WebConfig,
    network: licen_chain::Network,
) -> Result<()> {
    if network == licen_chain::Network::Dev {
        return Ok(());
    }
    let storage = config
        .storage
        .connect()
        .map_err(|e| Error::Flow(e.to_string()))?;
    let nodes = storage
        .upload_nodes()
        .await
        .map_err(|e| Error::Flow(format!("asking {} for its nodes: {e}", config.storage)))?;
    let followed = licen_storage::client::followed_flow(&nodes)
        .await
        .map_err(|e| Error::Flow(e.to_string()))?;
    let given = config.flow.as_ref().map(|f| f.address);
    let paid = licen_storage::zerog::FollowedFlow::to_pay(given, followed, config.chain.chain_id)
        .map_err(|e| Error::Flow(e.to_string()))?;
    config.flow = paid.map(|address| PublicFlow {
        address,
        abi: config
            .flow
            .as_ref()
            .filter(|f| f.address == address)
            .and_then(|f| f.abi),
    });
    Ok(())
}

/// Binds and serves in the background.
///
/// # Errors
/// [`Error::BadUrl`] for an unusable upstream URL, [`Error::OtherIndexer`] for an indexer of
/// another deployment, [`Error::Flow`] for a Flow address whose code is not a Flow,
/// [`Error::Bind`] if the address is taken.
pub async fn start(mut config: WebConfig) -> Result<Running> {
    if let Some(flow) = config.flow.as_mut().filter(|f| f.abi.is_none()) {
        flow.abi = Some(flow_abi(&config.chain.rpc_url, flow.address).await?);
    }
    // Both kinds: an http(s) URL.
    let (endpoint, relayed) = match &config.storage {
        licen_storage::StorageEndpoint::Node(url) => {
            let url = checked_url("storage", url)?;
            (
                licen_storage::StorageEndpoint::Node(url.clone()),
                Relayed::Node(url),
            )
        }
        licen_storage::StorageEndpoint::Indexer(url) => {
            let checked = checked_url("storage indexer", url)?;
            let relay = IndexerRelay::new(&checked).map_err(|_| Error::BadUrl {
                what: "storage indexer",
                url: url.clone(),
            })?;
            (
                licen_storage::StorageEndpoint::Indexer(checked),
                Relayed::Indexer(Arc::new(relay)),
            )
        }
    };
    let storage = endpoint.connect().map_err(|_| Error::BadUrl {
        what: match endpoint {
            licen_storage::StorageEndpoint::Node(_) => "storage",
            licen_storage::StorageEndpoint::Indexer(_) => "storage indexer",
        },
        url: config.storage.url().to_string(),
    })?;
    let state = AppState {
        http: reqwest::Client::builder().build()?,
        indexer: checked_url("indexer", &config.indexer_url)?,
        storage: relayed,
        staging: if config.flow.is_some() {
            Staging::new(storage).paid_through_flow()
        } else {
            Staging::new(storage)
        },
        config: Arc::new(public_config(&config)),
        tap: config.request_tap.clone(),
    };
    // Wallets are told to use this chain id with this RPC: the two must agree.
    match chain_id_of(&state.http, &config.chain.rpc_url).await {
        Ok(actual) if actual != config.chain.chain_id => {
            return Err(Error::WrongChain {
                rpc: config.chain.rpc_url.clone(),
                actual,
                configured: config.chain.chain_id,
            });
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(rpc = %config.chain.rpc_url, error = %e, "cannot ask the chain for its id yet")
        }
    }
    // The pages show what the indexer holds and send transactions to the configured contract:
    // an indexer of another deployment would offer datasets that do not exist there.
    let deployment = licen_indexer::Deployment {
        chain_id: config.chain.chain_id,
        contract: config.chain.data_policy,
    };
    match licen_indexer::check_follows(
        &state.http,
        &state.indexer,
        deployment,
        Some(&config.chain.rpc_url),
    )
    .await
    {
        Ok(()) => {}
        Err(
            e @ (licen_indexer::FollowsError::Other { .. }
            | licen_indexer::FollowsError::Replaced { .. }),
        ) => return Err(Error::OtherIndexer(e)),
        Err(e) => tracing::warn!(error = %e, "cannot check the indexer's deployment yet"),
    }
    state.staging.spawn_sweeper();
    let mut app = router(state);
    if let Some(tap) = config.request_tap.clone() {
        app = app.layer(middleware::from_fn(move |req: Request, next: Next| {
            let tap = tap.clone();
            async move { tapped(tap, req, next).await }
        }));
    }
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| Error::Bind {
        addr: config.listen,
        source,
    })?;
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async {
            let _ = stopped.await;
        });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "web server stopped");
        }
    });
    tracing::info!(%addr, "web app listening");
    Ok(Running {
        addr,
        shutdown,
        task,
    })
}

/// The `submit` generation of the Flow at `address`, read from its code (through EIP-1967
/// proxies) over `rpc`.
async fn flow_abi(rpc: &str, address: Address) -> Result<licen_storage::zerog::FlowAbi> {
    let connection = licen_chain::connect(rpc, None).map_err(|e| Error::Flow(e.to_string()))?;
    licen_chain::FlowClient::detect(connection, address)
        .await
        .map(|client| client.abi())
        .map_err(|e| Error::Flow(e.to_string()))
}

/// `eth_chainId` of the RPC at `url`.
async fn chain_id_of(http: &reqwest::Client, url: &str) -> std::result::Result<u64, String> {
    let answer: serde_json::Value = http
        .post(url)
        .timeout(std::time::Duration::from_secs(5))
        .json(
            &serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}),
        )
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let hex = answer["result"]
        .as_str()
        .ok_or_else(|| format!("no chain id in {answer}"))?;
    u64::from_str_radix(hex.trim_start_matches("0x"), 16).map_err(|e| e.to_string())
}

fn public_config(config: &WebConfig) -> serde_json::Value {
    let purposes: Vec<_> = licen_types::Purpose::ALL
        .iter()
        .map(|p| serde_json::json!({"bit": p.bit(), "slug": p.slug(), "label": p.label()}))
        .collect();
    let flow = config.flow.map(|f| {
        serde_json::json!({
            "address": f.address,
            "abi": match f.abi {
                Some(licen_storage::zerog::FlowAbi::Legacy) => "legacy",
                _ => "current",
            },
        })
    });
    serde_json::json!({
        "chain": config.chain,
        "flow": flow,
        "dev_wallet": config.dev_wallet,
        "notices": config.notices,
        "purposes": purposes,
    })
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/publish", get(page))
        .route("/dashboard", get(page))
        .route("/jobs", get(page))
        .route("/datasets/{root}", get(page_with))
        .route("/jobs/{id}", get(page_with))
        .route("/audit/datasets/{root}", get(page_with))
        .route("/audit/jobs/{id}", get(page_with))
        .route("/tx/{hash}", get(page_with))
        .route("/roots/{root}", get(page_with))
        .route("/assets/{name}", get(asset))
        .route("/api/config", get(config))
        .route("/api/indexer/{*path}", get(indexer_proxy))
        .route("/api/storage", post(storage_relay))
        .route("/api/uploads", post(upload_begin))
        .route(
            "/api/uploads/{id}",
            put(upload_piece).get(upload_report).delete(upload_cancel),
        )
        .route("/api/uploads/{id}/commit", post(upload_commit))
        .route("/api/uploads/{id}/socket", get(upload_socket))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

async fn tapped(tap: RequestTap, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "request too large").into_response(),
    };
    tap(parts.uri.path(), &bytes);
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn html_shell() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        assets::INDEX_HTML,
    )
        .into_response()
}

async fn page() -> Response {
    html_shell()
}

async fn page_with(Path(_): Path<String>) -> Response {
    html_shell()
}

async fn asset(Path(name): Path<String>) -> Response {
    match assets::asset(&name) {
        Some(a) => (
            [
                (header::CONTENT_TYPE, a.content_type),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            a.bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, format!("no asset {name:?}")).into_response(),
    }
}

async fn config(State(state): State<AppState>) -> Response {
    axum::Json(state.config.as_ref().clone()).into_response()
}

fn json_error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(serde_json::json!({"error": message.into()})),
    )
        .into_response()
}

/// Forwards `GET /api/indexer/<path>?<query>` to the indexer, streaming the answer (the SSE
/// stream stays open as long as the browser keeps it).
async fn indexer_proxy(
    State(state): State<AppState>,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let mut url = format!("{}/{}", state.indexer, path.trim_start_matches('/'));
    if let Some(q) = query {
        url.push('?');
        url.push_str(&q);
    }
    let upstream = match state.http.get(&url).send().await {
        Ok(r) => r,
        Err(e) => {
            return json_error(
                StatusCode::BAD_GATEWAY,
                format!("the indexer at {} did not answer: {e}", state.indexer),
            );
        }
    };
    let status = upstream.status();
    let content_type = upstream
        .headers()
        .get(header::CONTENT_TYPE)
        .cloned()
        .unwrap_or(HeaderValue::from_static("application/json"));
    let chunks = futures_util::stream::unfold(upstream, |mut upstream| async move {
        match upstream.chunk().await {
            Ok(Some(chunk)) => Some((Ok::<Bytes, reqwest::Error>(chunk), upstream)),
            Ok(None) => None,
            Err(e) => Some((Err(e), upstream)),
        }
    });
    let mut response = Response::new(Body::from_stream(chunks));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Forwards one allowed zgs JSON-RPC call to the storage node, or to the node a storage
/// indexer locates for it ([`IndexerRelay::relay`]).
async fn storage_relay(State(state): State<AppState>, body: Bytes) -> Response {
    if let Err(refusal) = relay::check(&body) {
        return json_error(StatusCode::BAD_REQUEST, refusal.to_string());
    }
    let storage = match &state.storage {
        Relayed::Node(url) => url,
        Relayed::Indexer(relay) => {
            return match relay.relay(&state.http, body).await {
                Ok(answer) => (
                    StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY),
                    [(header::CONTENT_TYPE, "application/json")],
                    answer.body,
                )
                    .into_response(),
                Err(failure) => json_error(
                    StatusCode::from_u16(failure.status).unwrap_or(StatusCode::BAD_GATEWAY),
                    failure.message,
                ),
            };
        }
    };
    let upstream = state
        .http
        .post(storage)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    let upstream = match upstream {
        Ok(r) => r,
        Err(e) => {
            return json_error(
                StatusCode::BAD_GATEWAY,
                format!("the storage node at {storage} did not answer: {e}"),
            );
        }
    };
    let status = upstream.status();
    match upstream.bytes().await {
        Ok(bytes) => (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(e) => json_error(
            StatusCode::BAD_GATEWAY,
            format!("reading the storage node's answer: {e}"),
        ),
    }
}

fn refused(refusal: Refusal) -> Response {
    json_error(
        StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::BAD_REQUEST),
        refusal.message,
    )
}

/// Runs a blocking staging call (file writes, hashing) off the async workers.
async fn blocking<T: Serialize + Send + 'static>(
    f: impl FnOnce() -> std::result::Result<T, Refusal> + Send + 'static,
) -> Response {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => axum::Json(v).into_response(),
        Ok(Err(refusal)) => refused(refusal),
        Err(e) => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the upload step stopped unexpectedly: {e}"),
        ),
    }
}

#[derive(Deserialize)]
struct Begin {
    size: u64,
}

/// `POST /api/uploads {"size": N}` → `{"id": …}`.
async fn upload_begin(State(state): State<AppState>, body: Bytes) -> Response {
    let Ok(begin) = serde_json::from_slice::<Begin>(&body) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "expected {\"size\": <bytes of the sealed file>}",
        );
    };
    blocking(move || {
        state
            .staging
            .begin(begin.size)
            .map(|id| serde_json::json!({ "id": id }))
    })
    .await
}

#[derive(Deserialize)]
struct Piece {
    offset: u64,
}

/// `DELETE /api/uploads/{id}`: the page gives the upload up; its staged bytes are deleted.
async fn upload_cancel(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    blocking(move || {
        state.staging.cancel(&id)?;
        Ok(serde_json::json!({ "cancelled": id }))
    })
    .await
}

/// `PUT /api/uploads/{id}?offset=N` with the raw ciphertext bytes as the body.
async fn upload_piece(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(piece): Query<Piece>,
    body: Bytes,
) -> Response {
    blocking(move || state.staging.put(&id, piece.offset, &body)).await
}

#[derive(Deserialize)]
struct Commit {
    root: licen_storage::Hash,
    /// Every data segment's root, concatenated, as hex (64 digits each).
    segment_roots: Option<String>,
}

/// `POST /api/uploads/{id}/commit {"root": "0x…", "segment_roots": "<hex>"}`: the page's root
/// and, optionally, the segment roots it joined into it; stores the file if they agree (see
/// [`Staging::commit`]).
async fn upload_commit(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(commit) = serde_json::from_slice::<Commit>(&body) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "expected {\"root\": \"0x<64 hex digits>\", \"segment_roots\": \"<64 hex digits per segment>\" (optional)}: the 0G root the page computed",
        );
    };
    let segment_roots = match commit.segment_roots.as_deref().map(parse_segment_roots) {
        None => None,
        Some(Ok(roots)) => Some(roots),
        Some(Err(message)) => return json_error(StatusCode::BAD_REQUEST, message),
    };
    blocking(move || state.staging.commit(&id, commit.root, segment_roots)).await
}

/// Concatenated 32-byte roots in hex (an optional `0x`), as the page sends them.
fn parse_segment_roots(text: &str) -> Result<Vec<licen_storage::Hash>, String> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    if digits.is_empty() || !digits.len().is_multiple_of(64) || !digits.is_ascii() {
        return Err(format!(
            "segment_roots has {} characters: expected 64 hex digits per segment root, at least one",
            digits.len()
        ));
    }
    (0..digits.len())
        .step_by(64)
        .map(|at| {
            digits[at..at + 64].parse().map_err(|e| {
                format!(
                    "segment_roots is not hex at segment {} ({e}): expected 64 hex digits per segment root",
                    at / 64
                )
            })
        })
        .collect()
}

/// Largest WebSocket message of sealed bytes (the page sends 1 MiB).
const MAX_SOCKET_PIECE: usize = 8 * 1024 * 1024;
/// Pieces received from the socket but not yet written: bounds the server's memory per upload
/// whatever the page sends.
const SOCKET_QUEUE: usize = 4;

/// `GET /api/uploads/{id}/socket` (WebSocket): the sealed bytes as consecutive binary messages,
/// from where the upload stands. Chromium sends a WebSocket message at a fraction of the CPU
/// cost of a `fetch` body (no per-request body copies through the browser's processes), which
/// is what the page's upload speed is bound by. Each piece is staged exactly like a `PUT`; the
/// server answers each one with a text message, `{"received": N}`, or `{"error": "…"}` before
/// it closes. The page then commits over plain HTTP.
async fn upload_socket(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ws: WebSocketUpgrade,
) -> Response {
    ws.max_message_size(MAX_SOCKET_PIECE)
        .max_frame_size(MAX_SOCKET_PIECE)
        .on_upgrade(move |socket| receive_pieces(state, id, socket))
}

async fn receive_pieces(state: AppState, id: String, mut socket: WebSocket) {
    let answer = |v: serde_json::Value| Message::Text(v.to_string().into());
    let start = {
        let (staging, id) = (state.staging.clone(), id.clone());
        tokio::task::spawn_blocking(move || staging.report(&id)).await
    };
    let mut offset = match start {
        Ok(Ok(report)) => report.received,
        Ok(Err(refusal)) => {
            let _ = socket
                .send(answer(serde_json::json!({ "error": refusal.message })))
                .await;
            return;
        }
        Err(_) => return,
    };
    // Writing runs on one blocking thread, in order, while this task goes on receiving; the
    // bounded queue is the back-pressure on the socket.
    let (pieces, mut queued) = tokio::sync::mpsc::channel::<Bytes>(SOCKET_QUEUE);
    let (staged, mut acks) = tokio::sync::mpsc::unbounded_channel();
    let writer = {
        let (staging, id) = (state.staging.clone(), id.clone());
        tokio::task::spawn_blocking(move || {
            while let Some(piece) = queued.blocking_recv() {
                let outcome = staging.put(&id, offset, &piece);
                offset += piece.len() as u64;
                let failed = outcome.is_err();
                if staged.send(outcome).is_err() || failed {
                    return;
                }
            }
        })
    };
    let path = format!("/api/uploads/{id}/socket");
    loop {
        tokio::select! {
            ack = acks.recv() => match ack {
                Some(Ok(report)) => {
                    if socket.send(answer(serde_json::json!({ "received": report.received }))).await.is_err() {
                        break;
                    }
                }
                Some(Err(refusal)) => {
                    let _ = socket.send(answer(serde_json::json!({ "error": refusal.message }))).await;
                    break;
                }
                None => break,
            },
            message = socket.recv() => match message {
                Some(Ok(Message::Binary(bytes))) => {
                    if let Some(tap) = &state.tap {
                        tap(&path, &bytes);
                    }
                    if pieces.send(bytes).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
    drop(pieces);
    let _ = writer.await;
}

/// Longest `wait_ms` a report waits for storing to end.
const MAX_REPORT_WAIT: Duration = Duration::from_secs(2);

#[derive(Deserialize)]
struct ReportQuery {
    wait_ms: Option<u64>,
}

/// `GET /api/uploads/{id}[?wait_ms=N]`: where the upload stands; with `wait_ms`, an upload
/// being stored is answered when storing ends or after N ms (at most 2 s), whichever is first.
async fn upload_report(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<ReportQuery>,
) -> Response {
    let wait = Duration::from_millis(query.wait_ms.unwrap_or(0)).min(MAX_REPORT_WAIT);
    match state.staging.settled_report(&id, wait).await {
        Ok(report) => axum::Json(report).into_response(),
        Err(refusal) => refused(refusal),
    }
}
