//! HTTP and JSON-RPC 2.0 framing of the local node: body limits, parsing, batches, method
//! dispatch, error objects. Heavy work (hashing, disk) runs on blocking threads.
//!
//! `zgs_getShardConfig` answers the node's configured shard; what a shard keeps and serves
//! (other shards' segments verified then dropped, `null` for them on download) is the `disk`
//! module's.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use super::NodeState;
use crate::merkle::Hash;
use crate::rpc::{
    NetworkIdentity, RpcError, SegmentWithProof, Status, TxSeqOrRoot, codes, methods,
};

/// The node's router: `POST /` takes JSON-RPC requests (single or batch).
pub fn router(state: Arc<NodeState>) -> Router {
    Router::new()
        .route("/", post(handle))
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// A request object with its parameters kept raw (parsed per method later).
#[derive(Deserialize)]
struct Request<'a> {
    #[serde(default, borrow)]
    jsonrpc: Option<&'a RawValue>,
    #[serde(default, borrow)]
    id: Option<&'a RawValue>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default, borrow)]
    params: Option<&'a RawValue>,
}

/// Parameters of a request as [`FastRequest`] found them.
enum Params<'a> {
    /// Kept raw: parsed by the method.
    Raw(Option<&'a RawValue>),
    /// Upload segments, parsed in the same pass as the envelope.
    Segments(Vec<SegmentWithProof>),
}

impl<'a> Params<'a> {
    fn raw(&self) -> Option<&'a RawValue> {
        match self {
            Params::Raw(p) => *p,
            Params::Segments(_) => None,
        }
    }
}

/// A request object parsed in one pass: when `method` comes before `params` (as JSON-RPC
/// clients write it, 0G's Go client and ours included) and names an upload, the segments are
/// decoded right there instead of the multi-megabyte `params` being scanned once as raw JSON
/// and again for its values. Any other shape parses as [`Request`] does.
struct FastRequest<'a> {
    jsonrpc: Option<&'a RawValue>,
    id: Option<&'a RawValue>,
    method: Option<String>,
    params: Params<'a>,
}

impl<'de> Deserialize<'de> for FastRequest<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = FastRequest<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON-RPC request object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<FastRequest<'de>, A::Error> {
                use serde::de::Error as _;
                let mut req = FastRequest {
                    jsonrpc: None,
                    id: None,
                    method: None,
                    params: Params::Raw(None),
                };
                let mut seen_params = false;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match key.as_ref() {
                        "jsonrpc" if req.jsonrpc.is_none() => req.jsonrpc = Some(map.next_value()?),
                        "id" if req.id.is_none() => req.id = Some(map.next_value()?),
                        "method" if req.method.is_none() => req.method = map.next_value()?,
                        "params" if !seen_params => {
                            seen_params = true;
                            req.params = match req.method.as_deref() {
                                Some(methods::UPLOAD_SEGMENTS) => {
                                    let (segs,): (Vec<SegmentWithProof>,) = map.next_value()?;
                                    Params::Segments(segs)
                                }
                                Some(methods::UPLOAD_SEGMENT) => {
                                    let (seg,): (SegmentWithProof,) = map.next_value()?;
                                    Params::Segments(vec![seg])
                                }
                                _ => Params::Raw(map.next_value()?),
                            };
                        }
                        "jsonrpc" | "id" | "method" | "params" => {
                            return Err(A::Error::custom(format!("duplicate field `{key}`")));
                        }
                        _ => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(req)
            }
        }
        d.deserialize_map(V)
    }
}

/// Parses one request object: [`FastRequest`] first; if that fails on the values (not the
/// syntax), again as [`Request`], so malformed upload parameters get the same specific
/// `Invalid params` error the per-method parsing gives.
fn parse_request(text: &str) -> Result<FastRequest<'_>, serde_json::Error> {
    match serde_json::from_str::<FastRequest<'_>>(text) {
        Ok(r) => Ok(r),
        Err(e) if e.is_data() => {
            let r: Request<'_> = serde_json::from_str(text)?;
            Ok(FastRequest {
                jsonrpc: r.jsonrpc,
                id: r.id,
                method: r.method,
                params: Params::Raw(r.params),
            })
        }
        Err(e) => Err(e),
    }
}

fn json_response(status: StatusCode, body: impl Into<Body>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.into(),
    )
        .into_response()
}

fn error_json(id: Option<&RawValue>, err: &RpcError) -> String {
    let id = id.map(RawValue::get).unwrap_or("null");
    let err = serde_json::to_string(err).expect("error objects serialise");
    format!(r#"{{"jsonrpc":"2.0","id":{id},"error":{err}}}"#)
}

/// The start of a success response, `{"jsonrpc":"2.0","id":<id>,"result":`; the method appends
/// its result and the closing brace, so a 350 KB segment is written once, in place.
fn result_prefix(id: Option<&RawValue>) -> Vec<u8> {
    let id = id.map(RawValue::get).unwrap_or("null");
    format!(r#"{{"jsonrpc":"2.0","id":{id},"result":"#).into_bytes()
}

fn too_large(limit: usize, got: Option<u64>) -> Response {
    let size = got
        .map(|n| format!("{n} bytes"))
        .unwrap_or_else(|| "more bytes".into());
    let err = RpcError::new(
        codes::INVALID_REQUEST,
        "Invalid Request: body too large",
        format!(
            "the request body has {size}, this node accepts at most {limit} bytes: send fewer \
             segments per zgs_uploadSegments call"
        ),
    );
    json_response(StatusCode::PAYLOAD_TOO_LARGE, error_json(None, &err))
}

async fn handle(State(state): State<Arc<NodeState>>, headers: HeaderMap, body: Body) -> Response {
    let limit = state.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large(limit, declared);
    }
    let Some(bytes) = collect_body(body, declared, limit).await else {
        return too_large(limit, declared);
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        let err = RpcError::new(
            codes::PARSE_ERROR,
            "Parse error",
            "the body is not UTF-8 JSON",
        );
        return json_response(StatusCode::OK, error_json(None, &err));
    };
    if text.trim_start().starts_with('[') {
        let items: Vec<&RawValue> = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                let err = RpcError::new(
                    codes::PARSE_ERROR,
                    "Parse error",
                    format!("the body is not valid JSON: {e}"),
                );
                return json_response(StatusCode::OK, error_json(None, &err));
            }
        };
        if items.is_empty() {
            let err = RpcError::new(
                codes::INVALID_REQUEST,
                "Invalid Request",
                "an empty batch: send at least one request object",
            );
            return json_response(StatusCode::OK, error_json(None, &err));
        }
        let mut out = vec![b'['];
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&handle_one(&state, item.get()).await);
        }
        out.push(b']');
        json_response(StatusCode::OK, out)
    } else {
        json_response(StatusCode::OK, handle_one(&state, text).await)
    }
}

/// Reads the whole body into one buffer sized from `Content-Length` up front (a 5 MB upload
/// arrives in many frames; growing a buffer as they come would copy it several times).
/// `None` when it exceeds `limit` or the connection fails.
async fn collect_body(body: Body, declared: Option<u64>, limit: usize) -> Option<Vec<u8>> {
    use futures_util::StreamExt as _;
    let mut out = Vec::with_capacity(declared.map_or(0, |n| n as usize).min(limit));
    let mut frames = body.into_data_stream();
    while let Some(frame) = frames.next().await {
        let frame = frame.ok()?;
        if out.len() + frame.len() > limit {
            return None;
        }
        out.extend_from_slice(&frame);
    }
    Some(out)
}

/// Handles one request object. Parsing validates the JSON in the same pass, and an upload's
/// segments are decoded in that pass too (see [`FastRequest`]), so a 5 MB upload body is
/// scanned once.
async fn handle_one(state: &Arc<NodeState>, text: &str) -> Vec<u8> {
    let req = match parse_request(text) {
        Ok(r) => r,
        Err(e) if e.is_syntax() || e.is_eof() => {
            let err = RpcError::new(
                codes::PARSE_ERROR,
                "Parse error",
                format!("the body is not valid JSON: {e}"),
            );
            return error_json(None, &err).into_bytes();
        }
        Err(e) => {
            let err = RpcError::new(
                codes::INVALID_REQUEST,
                "Invalid Request",
                format!(
                    "expected a JSON-RPC 2.0 request object {{jsonrpc, id, method, params}}: {e}"
                ),
            );
            return error_json(None, &err).into_bytes();
        }
    };
    if req.jsonrpc.map(RawValue::get) != Some("\"2.0\"") {
        let err = RpcError::new(
            codes::INVALID_REQUEST,
            "Invalid Request",
            "\"jsonrpc\" must be \"2.0\"",
        );
        return error_json(req.id, &err).into_bytes();
    }
    let Some(method) = req.method.as_deref() else {
        let err = RpcError::new(
            codes::INVALID_REQUEST,
            "Invalid Request",
            "\"method\" is missing",
        );
        return error_json(req.id, &err).into_bytes();
    };
    match dispatch(state, method, req.params, result_prefix(req.id)).await {
        Ok(mut out) => {
            out.push(b'}');
            out
        }
        Err(err) => {
            if err.code != codes::METHOD_NOT_FOUND {
                tracing::debug!(method, code = err.code, message = %err.message, "request refused");
            }
            error_json(req.id, &err).into_bytes()
        }
    }
}

/// Positional parameters: between `min` and `max` of them.
fn positional<'a>(
    params: Option<&'a RawValue>,
    min: usize,
    max: usize,
    signature: &str,
) -> Result<Vec<&'a RawValue>, RpcError> {
    let list: Vec<&RawValue> = match params {
        None => vec![],
        Some(p) => serde_json::from_str(p.get()).map_err(|_| {
            RpcError::invalid_params(
                "params",
                format!("params must be a JSON array of positional arguments: {signature}"),
            )
        })?,
    };
    if list.len() < min || list.len() > max {
        return Err(RpcError::invalid_params(
            "params",
            format!(
                "expected {} parameter(s), got {}: {signature}",
                if min == max {
                    min.to_string()
                } else {
                    format!("{min} to {max}")
                },
                list.len()
            ),
        ));
    }
    Ok(list)
}

/// Parses the whole positional parameter array straight into `T` (one pass; used for the large
/// upload bodies).
fn typed<T: DeserializeOwned>(
    params: Option<&RawValue>,
    name: &str,
    signature: &str,
    expected: &str,
) -> Result<T, RpcError> {
    let Some(p) = params else {
        return Err(RpcError::invalid_params(
            "params",
            format!("params are missing: {signature}"),
        ));
    };
    serde_json::from_str(p.get()).map_err(|e| {
        RpcError::invalid_params(
            name,
            format!("expected params [{expected}] ({signature}): {e}"),
        )
    })
}

fn arg<T: DeserializeOwned>(raw: &RawValue, name: &str, expected: &str) -> Result<T, RpcError> {
    serde_json::from_str(raw.get())
        .map_err(|e| RpcError::invalid_params(name, format!("expected {expected}: {e}")))
}

/// Appends `v` as JSON to `out`.
fn to_raw<T: serde::Serialize>(mut out: Vec<u8>, v: &T) -> Result<Vec<u8>, RpcError> {
    serde_json::to_writer(&mut out, v)
        .map_err(|e| RpcError::new(codes::INTERNAL_ERROR, "Internal error", e.to_string()))?;
    Ok(out)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RpcError> + Send + 'static,
) -> Result<T, RpcError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| RpcError::new(codes::INTERNAL_ERROR, "Internal error", e.to_string()))?
}

const HASH: &str = "a 0x-prefixed 32-byte hex root";

/// Runs `method` and appends its JSON result to `out` (which holds the response prefix).
/// Chunks `start..end` of `root` as a JSON base64 string appended to `out` (`null` when the
/// node does not hold them).
async fn chunks_json(
    state: &Arc<NodeState>,
    root: Hash,
    start: u64,
    end: u64,
    mut out: Vec<u8>,
) -> Result<Vec<u8>, RpcError> {
    let st = state.clone();
    match blocking(move || st.disk.chunks(&root, start, end)).await? {
        None => out.extend_from_slice(b"null"),
        Some(d) => {
            out.push(b'"');
            crate::rpc::base64_bytes::encode_append(&d, &mut out);
            out.push(b'"');
        }
    }
    Ok(out)
}

async fn dispatch(
    state: &Arc<NodeState>,
    method: &str,
    parsed: Params<'_>,
    out: Vec<u8>,
) -> Result<Vec<u8>, RpcError> {
    let params = parsed.raw();
    match method {
        methods::GET_STATUS => {
            positional(params, 0, 0, "zgs_getStatus()")?;
            to_raw(
                out,
                &Status {
                    connected_peers: 0,
                    log_sync_height: 0,
                    log_sync_block: Hash::ZERO,
                    next_tx_seq: state.disk.next_seq(),
                    network_identity: state.flow.map_or_else(NetworkIdentity::default, |f| {
                        NetworkIdentity {
                            chain_id: f.chain_id,
                            flow_address: f.address,
                            ..NetworkIdentity::default()
                        }
                    }),
                },
            )
        }
        methods::GET_SHARD_CONFIG => {
            positional(params, 0, 0, "zgs_getShardConfig()")?;
            to_raw(out, &state.disk.shard())
        }
        methods::UPLOAD_SEGMENT | methods::UPLOAD_SEGMENTS => {
            let single = method == methods::UPLOAD_SEGMENT;
            let sig = if single {
                "zgs_uploadSegment(segment)"
            } else {
                "zgs_uploadSegments([segment, …])"
            };
            let expected = "a segment {root, data (base64), index, proof: {lemma, path}, fileSize}";
            let segs: Vec<SegmentWithProof> = if let Params::Segments(segs) = parsed {
                segs
            } else if single {
                let (seg,): (SegmentWithProof,) = typed(params, "segment", sig, expected)?;
                vec![seg]
            } else {
                let (segs,): (Vec<SegmentWithProof>,) =
                    typed(params, "segments", sig, &format!("an array of {expected}"))?;
                segs
            };
            if segs.is_empty() {
                return to_raw(out, &());
            }
            let st = state.clone();
            blocking(move || st.disk.put_segments(segs)).await?;
            to_raw(out, &())
        }
        methods::UPLOAD_SEGMENT_BY_TX_SEQ | methods::UPLOAD_SEGMENTS_BY_TX_SEQ => {
            let expected = "a segment {root, data (base64), index, proof: {lemma, path}, fileSize}";
            let (segs, seq): (Vec<SegmentWithProof>, u64) =
                if method == methods::UPLOAD_SEGMENT_BY_TX_SEQ {
                    let (seg, seq): (SegmentWithProof, u64) = typed(
                        params,
                        "segment",
                        "zgs_uploadSegmentByTxSeq(segment, txSeq)",
                        &format!("{expected} and a sequence number"),
                    )?;
                    (vec![seg], seq)
                } else {
                    typed(
                        params,
                        "segments",
                        "zgs_uploadSegmentsByTxSeq([segment, …], txSeq)",
                        &format!("an array of {expected} and a sequence number"),
                    )?
                };
            let root = state.disk.root_of_seq(seq).ok_or_else(|| {
                RpcError::invalid_params(
                    "tx_seq",
                    format!(
                        "no file with submission sequence number {seq} is known to this node: \
                         upload by root, or wait until the node has seen the submission"
                    ),
                )
            })?;
            if let Some(other) = segs.iter().find(|s| s.root != root) {
                return Err(RpcError::invalid_params(
                    "root",
                    format!(
                        "segment {} is of file {}, but txSeq {seq} is file {root}: send each \
                         file's segments with its own sequence number",
                        other.index, other.root
                    ),
                ));
            }
            if segs.is_empty() {
                return to_raw(out, &());
            }
            let st = state.clone();
            blocking(move || st.disk.put_segments(segs)).await?;
            to_raw(out, &())
        }
        methods::DOWNLOAD_SEGMENT_BY_TX_SEQ => {
            let p = positional(
                params,
                3,
                3,
                "zgs_downloadSegmentByTxSeq(txSeq, startChunk, endChunk)",
            )?;
            let seq: u64 = arg(p[0], "tx_seq", "a sequence number")?;
            let start: u64 = arg(p[1], "start_index", "a chunk index")?;
            let end: u64 = arg(p[2], "end_index", "a chunk index (exclusive)")?;
            match state.disk.root_of_seq(seq) {
                Some(root) => chunks_json(state, root, start, end, out).await,
                None => {
                    let mut out = out;
                    out.extend_from_slice(b"null");
                    Ok(out)
                }
            }
        }
        methods::DOWNLOAD_SEGMENT => {
            let p = positional(
                params,
                3,
                3,
                "zgs_downloadSegment(root, startChunk, endChunk)",
            )?;
            let root: Hash = arg(p[0], "data_root", HASH)?;
            let start: u64 = arg(p[1], "start_index", "a chunk index")?;
            let end: u64 = arg(p[2], "end_index", "a chunk index (exclusive)")?;
            chunks_json(state, root, start, end, out).await
        }
        methods::DOWNLOAD_SEGMENT_WITH_PROOF => {
            let p = positional(
                params,
                2,
                2,
                "zgs_downloadSegmentWithProof(root, segmentIndex)",
            )?;
            let root: Hash = arg(p[0], "data_root", HASH)?;
            let index: u64 = arg(p[1], "index", "a segment index")?;
            let st = state.clone();
            blocking(move || st.disk.segment_with_proof_json(&root, index, out)).await
        }
        methods::GET_FILE_INFO => {
            let p = positional(params, 1, 2, "zgs_getFileInfo(root, needAvailable)")?;
            let root: Hash = arg(p[0], "data_root", HASH)?;
            if let Some(n) = p.get(1) {
                let _: bool = arg(n, "need_available", "a boolean")?;
            }
            to_raw(out, &state.disk.file_info(&root))
        }
        methods::GET_FILE_INFO_BY_TX_SEQ => {
            let p = positional(params, 1, 1, "zgs_getFileInfoByTxSeq(txSeq)")?;
            let seq: u64 = arg(p[0], "tx_seq", "a sequence number")?;
            to_raw(out, &state.disk.file_info_by_seq(seq))
        }
        methods::CHECK_FILE_FINALIZED => {
            let p = positional(params, 1, 1, "zgs_checkFileFinalized(txSeqOrRoot)")?;
            let key: TxSeqOrRoot = arg(p[0], "tx_seq_or_root", "a sequence number or a root")?;
            let info = match key {
                TxSeqOrRoot::TxSeq(s) => state.disk.file_info_by_seq(s),
                TxSeqOrRoot::Root(r) => state.disk.file_info(&r),
            };
            to_raw(out, &info.map(|i| i.finalized))
        }
        methods::UPLOADED_SEGMENTS => {
            let p = positional(params, 1, 1, "licen_uploadedSegments(root)")?;
            let root: Hash = arg(p[0], "data_root", HASH)?;
            to_raw(out, &state.disk.uploaded_segments(&root))
        }
        other => Err(RpcError::new(
            codes::METHOD_NOT_FOUND,
            "Method not found",
            format!(
                "this node does not implement {other:?}; it answers zgs_getStatus, \
                 zgs_uploadSegment(s), zgs_uploadSegment(s)ByTxSeq, zgs_downloadSegment, \
                 zgs_downloadSegmentByTxSeq, zgs_downloadSegmentWithProof, zgs_getFileInfo, \
                 zgs_getFileInfoByTxSeq, zgs_checkFileFinalized, zgs_getShardConfig and \
                 licen_uploadedSegments"
            ),
        )),
    }
}
