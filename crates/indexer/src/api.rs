//! The HTTP query API (axum, JSON) the marketplace reads.
//!
//! - `GET /datasets?q=&purpose=&max_price=&owner=&active=&sort=newest|price|popularity&limit=&cursor=`
//!   (`q`: text search over the manifest's name and description, see [`crate::manifests`])
//! - `GET /datasets/{root}`: detail with stats
//! - `GET /jobs?researcher=&owner=&dataset=&limit=&cursor=`
//! - `GET /jobs/{id}`: detail with its full timeline
//! - `GET /owners/{address}/earnings`
//! - `GET /health`: latest chain block vs latest indexed block, and the deployment indexed
//!   (chain id and contract) that readers check before trusting the rest
//! - `GET /openapi.json`: the OpenAPI 3.1 document of all of this (`crates/indexer/openapi.json`)
//! - `GET /stream?from_block=`: Server-Sent Events of dataset changes and job transitions
//!   (see [`crate::stream`])
//!
//! Errors are `{"error": "<sentence>"}` with 400 (bad parameter), 404 (unknown dataset or job)
//! or 500. Serves public chain data only: nothing here is secret.

use crate::db::Db;
use crate::error::{Error, Result};
use crate::query::{self, BadQuery, DatasetFilter, JobFilter, QueryError, Sort};
use crate::source::{ChainSource, RpcSource};
use crate::stream;
use alloy::primitives::{Address, B256};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use licen_types::Purpose;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct ApiState {
    /// The index.
    pub db: Db,
    /// The chain, for `/health`'s latest block (absent: health reports only the index).
    pub chain: Option<RpcSource>,
}

/// An API error: a status and a sentence.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn bad(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        tracing::error!(error = %e, "indexer API query failed");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: e.to_string(),
        }
    }
}

impl From<BadQuery> for ApiError {
    fn from(e: BadQuery) -> Self {
        Self::bad(e.0)
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Bad(bad) => bad.into(),
            QueryError::Internal(e) => e.into(),
        }
    }
}

#[derive(Serialize)]
struct ErrorBody {
    error: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorBody {
                error: self.message,
            }),
        )
            .into_response()
    }
}

type ApiResult<T> = std::result::Result<Json<T>, ApiError>;

fn parse_address(field: &str, value: &str) -> std::result::Result<Address, ApiError> {
    value.parse().map_err(|_| {
        ApiError::bad(format!(
            "`{field}` must be a 0x-prefixed 20-byte hex address, got `{value}`"
        ))
    })
}

fn parse_root(field: &str, value: &str) -> std::result::Result<B256, ApiError> {
    value.parse().map_err(|_| {
        ApiError::bad(format!(
            "`{field}` must be a 0x-prefixed 32-byte hex root, got `{value}`"
        ))
    })
}

fn parse_limit(value: Option<&str>) -> std::result::Result<Option<u32>, ApiError> {
    value
        .map(|v| {
            v.parse::<u32>().map_err(|_| {
                ApiError::bad(format!(
                    "`limit` must be a number from 1 to {}, got `{v}`",
                    query::MAX_LIMIT
                ))
            })
        })
        .transpose()
}

/// Query string of `GET /datasets`.
#[derive(Debug, Default, Deserialize)]
struct DatasetParams {
    q: Option<String>,
    purpose: Option<String>,
    max_price: Option<String>,
    owner: Option<String>,
    active: Option<String>,
    sort: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

impl DatasetParams {
    fn filter(self) -> std::result::Result<DatasetFilter, ApiError> {
        Ok(DatasetFilter {
            text: self.q.filter(|q| !q.trim().is_empty()),
            purpose: self
                .purpose
                .as_deref()
                .map(|p| {
                    p.parse::<Purpose>()
                        .map_err(|e| ApiError::bad(e.to_string()))
                })
                .transpose()?,
            max_price: self
                .max_price
                .as_deref()
                .map(|p| {
                    p.parse::<u128>().map_err(|_| {
                        ApiError::bad(format!(
                            "`max_price` must be a whole number of wei, got `{p}`"
                        ))
                    })
                })
                .transpose()?,
            owner: self
                .owner
                .as_deref()
                .map(|o| parse_address("owner", o))
                .transpose()?,
            active: self
                .active
                .as_deref()
                .map(|a| match a {
                    "true" | "1" => Ok(true),
                    "false" | "0" => Ok(false),
                    other => Err(ApiError::bad(format!(
                        "`active` must be true or false, got `{other}`"
                    ))),
                })
                .transpose()?,
            sort: self
                .sort
                .as_deref()
                .map(str::parse::<Sort>)
                .transpose()?
                .unwrap_or_default(),
            limit: parse_limit(self.limit.as_deref())?,
            cursor: self.cursor,
        })
    }
}

/// Query string of `GET /jobs`.
#[derive(Debug, Default, Deserialize)]
struct JobParams {
    researcher: Option<String>,
    owner: Option<String>,
    dataset: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

impl JobParams {
    fn filter(self) -> std::result::Result<JobFilter, ApiError> {
        Ok(JobFilter {
            researcher: self
                .researcher
                .as_deref()
                .map(|r| parse_address("researcher", r))
                .transpose()?,
            owner: self
                .owner
                .as_deref()
                .map(|o| parse_address("owner", o))
                .transpose()?,
            dataset: self
                .dataset
                .as_deref()
                .map(|d| parse_root("dataset", d))
                .transpose()?,
            limit: parse_limit(self.limit.as_deref())?,
            cursor: self.cursor,
        })
    }
}

/// Body of `GET /health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// The chain's latest block (absent when the chain is not configured or unreachable).
    pub chain_block: Option<u64>,
    /// The last indexed block.
    pub indexed_block: Option<u64>,
    /// `chain_block - indexed_block` when both are known.
    pub lag: Option<u64>,
    /// Events stored.
    pub events: u64,
    /// Why the chain could not be asked, if it could not.
    pub chain_error: Option<String>,
    /// The chain id of the deployment this index holds (absent before the first start recorded
    /// it). A reader checks it and [`contract`](Self::contract) against its own before trusting
    /// anything else here.
    pub chain_id: Option<u64>,
    /// The DataPolicy contract this index follows.
    pub contract: Option<Address>,
    /// The block the index is anchored on (its first start block) and that block's hash on the
    /// chain it indexes: a reader compares it with its own chain's, since a dev chain started
    /// afresh has the same id and contract address. Absent before the first start recorded it.
    #[serde(default)]
    pub anchor_block: Option<u64>,
    /// The anchor block's hash.
    #[serde(default)]
    pub anchor_hash: Option<B256>,
}

async fn list_datasets(
    State(state): State<ApiState>,
    Query(params): Query<DatasetParams>,
) -> ApiResult<query::Page<query::DatasetView>> {
    Ok(Json(query::datasets(&state.db, &params.filter()?).await?))
}

async fn get_dataset(
    State(state): State<ApiState>,
    Path(root): Path<String>,
) -> ApiResult<query::DatasetDetail> {
    let root = parse_root("root", &root)?;
    query::dataset(&state.db, root)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no dataset {root} is indexed")))
}

async fn list_jobs(
    State(state): State<ApiState>,
    Query(params): Query<JobParams>,
) -> ApiResult<query::Page<query::JobView>> {
    Ok(Json(query::jobs(&state.db, &params.filter()?).await?))
}

async fn get_job(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<query::JobDetail> {
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::bad(format!("job id must be a number, got `{id}`")))?;
    query::job(&state.db, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no job {id} is indexed")))
}

async fn owner_earnings(
    State(state): State<ApiState>,
    Path(address): Path<String>,
) -> ApiResult<query::Earnings> {
    let address = parse_address("address", &address)?;
    Ok(Json(query::earnings(&state.db, address).await?))
}

async fn health(State(state): State<ApiState>) -> ApiResult<Health> {
    let status = query::status(&state.db).await?;
    let deployment = state.db.deployment().await?;
    let anchor = state.db.anchor().await?;
    let (chain_block, chain_error) = match &state.chain {
        Some(chain) => match chain.head().await {
            Ok(head) => (Some(head), None),
            Err(e) => (None, Some(e.to_string())),
        },
        None => (None, Some("no chain RPC configured".to_owned())),
    };
    Ok(Json(Health {
        chain_block,
        indexed_block: status.indexed_block,
        lag: chain_block
            .zip(status.indexed_block)
            .map(|(c, i)| c.saturating_sub(i)),
        events: status.events,
        chain_error,
        chain_id: deployment.map(|d| d.chain_id),
        contract: deployment.map(|d| d.contract),
        anchor_block: anchor.map(|(block, _)| block),
        anchor_hash: anchor.map(|(_, hash)| hash),
    }))
}

/// Query string of `GET /stream`.
#[derive(Debug, Default, Deserialize)]
struct StreamParams {
    from_block: Option<String>,
}

async fn live(
    State(state): State<ApiState>,
    headers: axum::http::HeaderMap,
    Query(params): Query<StreamParams>,
) -> std::result::Result<Response, ApiError> {
    let from = if let Some(block) = params.from_block.as_deref() {
        let block: u64 = block.parse().map_err(|_| {
            ApiError::bad(format!(
                "`from_block` must be a block number, got `{block}`"
            ))
        })?;
        stream::From::Block(block)
    } else if let Some((block, index)) = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(stream::parse_event_id)
    {
        stream::From::After(block, index)
    } else {
        stream::From::Now
    };
    let events = stream::events(
        state.db.clone(),
        from,
        std::time::Duration::from_millis(100),
    )
    .await?;
    Ok(axum::response::sse::Sse::new(events)
        .keep_alive(axum::response::sse::KeepAlive::default())
        .into_response())
}

/// The OpenAPI document of this API.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// Every route, as written in [`OPENAPI`].
pub const ROUTES: [&str; 8] = [
    "/datasets",
    "/datasets/{root}",
    "/jobs",
    "/jobs/{id}",
    "/owners/{address}/earnings",
    "/health",
    "/stream",
    "/openapi.json",
];

async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
        .into_response()
}

/// The API's routes.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/datasets", get(list_datasets))
        .route("/datasets/{root}", get(get_dataset))
        .route("/jobs", get(list_jobs))
        .route("/jobs/{id}", get(get_job))
        .route("/owners/{address}/earnings", get(owner_earnings))
        .route("/health", get(health))
        .route("/stream", get(live))
        .route("/openapi.json", get(openapi))
        .with_state(state)
}

/// Binds `addr` (port 0 picks a free one) and serves the API in a background task until the
/// process ends; returns the bound address and the task.
pub async fn spawn(
    addr: SocketAddr,
    state: ApiState,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    spawn_until(addr, state, std::future::pending()).await
}

/// Like [`spawn`], but shuts down gracefully once `shutdown` completes.
pub async fn spawn_until(
    addr: SocketAddr,
    state: ApiState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await.map_err(|source| Error::Io {
        context: format!("binding the indexer API to {addr}"),
        source,
    })?;
    let bound = listener.local_addr().map_err(|source| Error::Io {
        context: "reading the API's bound address".into(),
        source,
    })?;
    let app = router(state);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "indexer API stopped");
        }
    });
    Ok((bound, task))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn openapi_documents_exactly_the_routes() {
        let spec: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        let documented: BTreeSet<&str> = spec["paths"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(documented, ROUTES.into_iter().collect());
    }

    crate::backend_tests!(every_route_is_served);

    async fn every_route_is_served(backend: crate::db::Backend) {
        let Some(store) = crate::testing::TestDb::create(backend).await.unwrap() else {
            return;
        };
        let db = store.open().await;
        let state = ApiState { db, chain: None };
        let (addr, server) = spawn("127.0.0.1:0".parse().unwrap(), state).await.unwrap();
        for route in ROUTES {
            let path = route
                .replace("{root}", &format!("0x{}", "ab".repeat(32)))
                .replace("{id}", "1")
                .replace("{address}", &format!("0x{}", "cd".repeat(20)));
            let response = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
            let status = response.status();
            if status == StatusCode::OK {
                continue;
            }
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
            let body: serde_json::Value = response.json().await.unwrap();
            assert!(
                body["error"].as_str().unwrap().contains("is indexed"),
                "{path}: {body}"
            );
        }
        server.abort();
    }
}
