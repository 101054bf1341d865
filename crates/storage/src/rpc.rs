//! zgs JSON-RPC wire types, with 0G's exact field names (camelCase), as served by
//! `node/rpc/src/types.rs` of the 0G storage node and read by its Go client (`node/types.go`).
//!
//! Owns the shapes only: hashes are `0x`-hex strings, segment data is standard base64 (what Go's
//! `encoding/json` does to `[]byte` and the Rust node's `#[serde(with = "base64")]`), sizes and
//! indexes are JSON numbers. Also holds the JSON-RPC 2.0 envelope and error codes shared by the
//! local node and the client. Never carries plaintext: segment data is ciphertext.

use alloy_primitives::{Address, U256};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::merkle::Hash;
use crate::proof::Proof;

/// JSON-RPC method names (namespace `zgs`) plus the local node's one extension.
pub mod methods {
    /// `zgs_getStatus()` → [`super::Status`].
    pub const GET_STATUS: &str = "zgs_getStatus";
    /// `zgs_uploadSegment(seg)` → `null`.
    pub const UPLOAD_SEGMENT: &str = "zgs_uploadSegment";
    /// `zgs_uploadSegments([seg])` → `null`.
    pub const UPLOAD_SEGMENTS: &str = "zgs_uploadSegments";
    /// `zgs_uploadSegmentByTxSeq(seg, txSeq)` → `null`: the segment of the file with that
    /// submission sequence number (what 0G's own clients send).
    pub const UPLOAD_SEGMENT_BY_TX_SEQ: &str = "zgs_uploadSegmentByTxSeq";
    /// `zgs_uploadSegmentsByTxSeq([seg], txSeq)` → `null`.
    pub const UPLOAD_SEGMENTS_BY_TX_SEQ: &str = "zgs_uploadSegmentsByTxSeq";
    /// `zgs_downloadSegmentByTxSeq(txSeq, startChunk, endChunk)` → base64 or `null`.
    pub const DOWNLOAD_SEGMENT_BY_TX_SEQ: &str = "zgs_downloadSegmentByTxSeq";
    /// `zgs_downloadSegment(root, startChunk, endChunk)` → base64 or `null`.
    pub const DOWNLOAD_SEGMENT: &str = "zgs_downloadSegment";
    /// `zgs_downloadSegmentWithProof(root, segIndex)` → [`super::SegmentWithProof`] or `null`.
    pub const DOWNLOAD_SEGMENT_WITH_PROOF: &str = "zgs_downloadSegmentWithProof";
    /// `zgs_getFileInfo(root, needAvailable)` → [`super::FileInfo`] or `null`.
    pub const GET_FILE_INFO: &str = "zgs_getFileInfo";
    /// `zgs_getFileInfoByTxSeq(txSeq)` → [`super::FileInfo`] or `null`.
    pub const GET_FILE_INFO_BY_TX_SEQ: &str = "zgs_getFileInfoByTxSeq";
    /// `zgs_checkFileFinalized(txSeqOrRoot)` → `bool` or `null`.
    pub const CHECK_FILE_FINALIZED: &str = "zgs_checkFileFinalized";
    /// `zgs_getShardConfig()` → [`super::ShardConfig`].
    pub const GET_SHARD_CONFIG: &str = "zgs_getShardConfig";
    /// LICEN extension, local node only: `licen_uploadedSegments(root)` →
    /// [`super::UploadedSegments`] or `null`. Lets a resuming client skip exactly the segments
    /// the node already holds; 0G nodes answer -32601 and the client falls back.
    pub const UPLOADED_SEGMENTS: &str = "licen_uploadedSegments";
}

/// JSON-RPC 2.0 error codes used by the local node.
pub mod codes {
    /// Invalid JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// Not a valid request object (or the body is too large).
    pub const INVALID_REQUEST: i64 = -32600;
    /// Unknown method.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Wrong parameters, including segments whose data or proof does not verify (as 0G does).
    pub const INVALID_PARAMS: i64 = -32602;
    /// Unexpected failure inside the node.
    pub const INTERNAL_ERROR: i64 = -32603;
    /// Application: the node's disk failed (I/O error); retry later or fix the node.
    pub const STORAGE_IO: i64 = -32000;
    /// Application: a complete upload did not re-hash to its root at finalization; the named
    /// segments were discarded and must be uploaded again.
    pub const INTEGRITY: i64 = -32001;
    /// Application: the root is already known with a different file size.
    pub const SIZE_CONFLICT: i64 = -32002;
}

/// Text of 0G's error `data` when a finalized file receives segments again (0G's Go client
/// treats it as success, so does ours).
pub const ALREADY_FINALIZED: &str = "already uploaded and finalized";
/// Text 0G's node uses for a segment it already holds.
pub const SEGMENT_ALREADY_UPLOADED: &str = "segment has already been uploaded or is being uploaded";

/// A segment with its proof: the unit of upload and of verified download.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentWithProof {
    /// File root.
    pub root: Hash,
    /// Segment bytes: 256 KiB, except the last segment, which is the remaining bytes rounded
    /// up to a whole 256-byte chunk.
    #[serde(with = "base64_bytes")]
    pub data: Vec<u8>,
    /// Segment index.
    pub index: u64,
    /// Proof of the segment root against the file root.
    pub proof: Proof,
    /// File size in bytes.
    pub file_size: u64,
}

/// On-chain transaction describing a file (0G `Transaction`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transaction {
    /// Stream ids (KV streams); always empty here.
    #[serde(default)]
    pub stream_ids: Vec<U256>,
    /// In-place data; always empty here (0G serialises it as a JSON array of numbers).
    #[serde(default)]
    pub data: Vec<u8>,
    /// The file root.
    pub data_merkle_root: Hash,
    /// `(subtree depth, root)` of each submission node; depth = height + 1. 0G always fills
    /// it; the local node fills it once the file is finalized.
    #[serde(default)]
    pub merkle_nodes: Vec<(u64, Hash)>,
    /// First flow entry (chunk) of the file; 0 on the local node (files are not in a flow).
    pub start_entry_index: u64,
    /// File size in bytes.
    pub size: u64,
    /// Submission sequence number.
    pub seq: u64,
}

/// `zgs_getFileInfo` result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileInfo {
    /// The file's transaction.
    pub tx: Transaction,
    /// All segments are stored and verified.
    pub finalized: bool,
    /// Segments are held in the node's cache (no transaction yet).
    #[serde(default)]
    pub is_cached: bool,
    /// Segments uploaded so far.
    pub uploaded_seg_num: u64,
    /// The file was pruned (then `finalized` is false).
    #[serde(default)]
    pub pruned: bool,
}

/// P2P protocol version in [`NetworkIdentity`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ProtocolVersion {
    /// Major.
    pub major: u8,
    /// Minor.
    pub minor: u8,
    /// Build.
    pub build: u8,
}

/// Network identity in [`Status`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct NetworkIdentity {
    /// Chain id of the Flow contract the node follows (0 on a local node that follows none).
    pub chain_id: u64,
    /// The Flow contract the node follows: where uploaders pay for storage (zero on a local node
    /// that follows none: it takes files unpaid).
    pub flow_address: Address,
    /// P2P protocol version.
    pub p2p_protocol_version: ProtocolVersion,
}

/// `zgs_getStatus` result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Connected peers (0 on the local node).
    pub connected_peers: u64,
    /// Last synced block height.
    pub log_sync_height: u64,
    /// Last synced block hash.
    pub log_sync_block: Hash,
    /// Next transaction sequence number (on the local node: files known).
    pub next_tx_seq: u64,
    /// Network identity.
    pub network_identity: NetworkIdentity,
}

/// `zgs_getShardConfig` result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardConfig {
    /// Number of shards.
    pub num_shard: u64,
    /// This node's shard.
    pub shard_id: u64,
}

/// `licen_uploadedSegments` result (local node extension).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadedSegments {
    /// Segments in the file.
    pub total: u64,
    /// Bitmap, bit `i % 8` of byte `i / 8` set when segment `i` is stored (a sharded node
    /// stores only its shard's segments); base64.
    #[serde(with = "base64_bytes")]
    pub bitmap: Vec<u8>,
    /// The file is finalized (then every bit of the node's shard is set: every bit on a node
    /// that holds every segment).
    pub finalized: bool,
}

impl UploadedSegments {
    /// Whether segment `index` is stored. Read from the bitmap even once finalized: a sharded
    /// node's finalized file lacks the other shards' segments.
    pub fn has(&self, index: u64) -> bool {
        self.bitmap
            .get((index / 8) as usize)
            .is_some_and(|b| b & (1 << (index % 8)) != 0)
    }
}

/// A tx sequence number or a root (`zgs_checkFileFinalized`'s parameter).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TxSeqOrRoot {
    /// Sequence number.
    TxSeq(u64),
    /// File root.
    Root(Hash),
}

/// A JSON-RPC 2.0 error object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpcError {
    /// Error code (see [`codes`]).
    pub code: i64,
    /// Short message (0G style: `Invalid params: <name>`).
    pub message: String,
    /// Details: what was wrong, what was expected, what to do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

impl RpcError {
    /// An error with a code, message and textual details.
    pub fn new(code: i64, message: impl Into<String>, data: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: Some(serde_json::Value::String(data.into())),
        }
    }

    /// `-32602 Invalid params: <param>` with details, as 0G formats it.
    pub fn invalid_params(param: &str, data: impl Into<String>) -> Self {
        Self::new(
            codes::INVALID_PARAMS,
            format!("Invalid params: {param}"),
            data,
        )
    }

    /// The `data` member as text.
    pub fn data_text(&self) -> Option<String> {
        self.data.as_ref().map(|d| match d {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }
}

/// A JSON-RPC 2.0 response (either `result` or `error`).
#[derive(Debug, Deserialize)]
pub struct RpcResponse<T> {
    /// Request id echoed back.
    #[serde(default)]
    pub id: serde_json::Value,
    /// Result, when successful (may be JSON `null`).
    #[serde(default = "Option::default")]
    pub result: Option<T>,
    /// Error, when not.
    #[serde(default)]
    pub error: Option<RpcError>,
}

/// Serde helpers for base64 (standard alphabet, padded) byte fields. SIMD-accelerated
/// (`base64-simd`, runtime CPU detection): segment data is a third of every byte on the wire, so
/// encoding and decoding must cost far less than hashing it. Decoding borrows the JSON string
/// where possible, so a 256 KiB segment is decoded without an intermediate copy.
pub mod base64_bytes {
    use super::*;
    use base64_simd::STANDARD;

    /// Serialises bytes as a standard base64 string.
    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&encode(bytes))
    }

    /// Deserialises a standard base64 string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a base64 string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
                decode(v).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }

    /// Decodes standard base64 (padding required and unused trailing bits zero, as Go and the
    /// 0G node write it).
    pub fn decode(s: &str) -> Result<Vec<u8>, String> {
        STANDARD.decode_to_vec(s).map_err(|_| {
            format!(
                "invalid base64 ({} characters); expected standard base64 with padding",
                s.len()
            )
        })
    }

    /// Encodes bytes as standard base64.
    pub fn encode(bytes: &[u8]) -> String {
        STANDARD.encode_to_string(bytes)
    }

    /// Appends the standard base64 of `bytes` to `out` (no intermediate string).
    pub fn encode_append(bytes: &[u8], out: &mut Vec<u8>) {
        STANDARD.encode_append(bytes, out);
    }

    /// Length of the standard base64 of `n` bytes.
    pub fn encoded_len(n: usize) -> usize {
        n.div_ceil(3) * 4
    }
}

/// Appends the JSON of a [`SegmentWithProof`] to `out` without building one: the segment bytes
/// go straight from `data` into the output as base64. Produces exactly what serde produces for
/// the struct (same field order and formatting), minus serde's per-byte escape scan of the
/// 350 KB data string, which base64 never needs.
pub fn write_segment_json(
    out: &mut Vec<u8>,
    root: &Hash,
    data: &[u8],
    index: u64,
    proof: &Proof,
    file_size: u64,
) {
    out.reserve(base64_bytes::encoded_len(data.len()) + 80 * (proof.lemma.len() + 2));
    out.extend_from_slice(b"{\"root\":\"");
    push_hash(out, root);
    out.extend_from_slice(b"\",\"data\":\"");
    base64_bytes::encode_append(data, out);
    out.extend_from_slice(b"\",\"index\":");
    out.extend_from_slice(index.to_string().as_bytes());
    out.extend_from_slice(b",\"proof\":{\"lemma\":[");
    for (i, h) in proof.lemma.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'"');
        push_hash(out, h);
        out.push(b'"');
    }
    out.extend_from_slice(b"],\"path\":[");
    for (i, left) in proof.path.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(if *left { b"true" } else { b"false" });
    }
    out.extend_from_slice(b"]},\"fileSize\":");
    out.extend_from_slice(file_size.to_string().as_bytes());
    out.push(b'}');
}

/// `0x` + lowercase hex, as serde writes a [`Hash`].
fn push_hash(out: &mut Vec<u8>, h: &Hash) {
    let mut hex_buf = [0u8; 64];
    hex::encode_to_slice(h.as_slice(), &mut hex_buf).expect("64 hex digits for 32 bytes");
    out.extend_from_slice(b"0x");
    out.extend_from_slice(&hex_buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_json_uses_0g_field_names() {
        let seg = SegmentWithProof {
            root: Hash::repeat_byte(0xab),
            data: vec![1, 2, 3],
            index: 7,
            proof: Proof {
                lemma: vec![Hash::repeat_byte(0xab)],
                path: vec![],
            },
            file_size: 3,
        };
        let v = serde_json::to_value(&seg).unwrap();
        assert_eq!(v["data"], "AQID");
        assert_eq!(v["fileSize"], 3);
        assert_eq!(v["index"], 7);
        assert_eq!(
            v["root"],
            "0xabababababababababababababababababababababababababababababababab"
        );
        assert_eq!(v["proof"]["path"], serde_json::json!([]));
        let back: SegmentWithProof = serde_json::from_value(v).unwrap();
        assert_eq!(back, seg);
    }

    #[test]
    fn hand_written_segment_json_matches_serde() {
        for (data, lemma, path) in [
            (vec![], vec![Hash::repeat_byte(1)], vec![]),
            (vec![7u8; 1], vec![Hash::repeat_byte(1)], vec![]),
            (
                (0..=255u8).cycle().take(1000).collect(),
                vec![
                    Hash::repeat_byte(0xab),
                    Hash::repeat_byte(0x01),
                    Hash::repeat_byte(0xfe),
                ],
                vec![true],
            ),
            (
                vec![0u8; 4],
                vec![Hash::ZERO, Hash::repeat_byte(2), Hash::ZERO, Hash::ZERO],
                vec![false, true],
            ),
        ] {
            let seg = SegmentWithProof {
                root: Hash::repeat_byte(0x5c),
                data,
                index: 123_456,
                proof: Proof { lemma, path },
                file_size: u64::MAX,
            };
            let mut out = b"prefix".to_vec();
            write_segment_json(
                &mut out,
                &seg.root,
                &seg.data,
                seg.index,
                &seg.proof,
                seg.file_size,
            );
            let serde = serde_json::to_vec(&seg).unwrap();
            assert_eq!(&out[6..], &serde[..]);
            let back: SegmentWithProof = serde_json::from_slice(&out[6..]).unwrap();
            assert_eq!(back, seg);
        }
    }

    #[test]
    fn base64_is_strict() {
        assert_eq!(base64_bytes::decode("AQID").unwrap(), vec![1, 2, 3]);
        assert_eq!(base64_bytes::decode("AQ==").unwrap(), vec![1]);
        // Missing padding, non-canonical trailing bits, other alphabets, whitespace.
        for bad in ["AQ", "AR==", "-_-_", "AQ ID", "AQID\n", "A"] {
            assert!(base64_bytes::decode(bad).is_err(), "{bad:?}");
        }
        let data: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
        let text = base64_bytes::encode(&data);
        assert_eq!(text.len(), base64_bytes::encoded_len(data.len()));
        assert_eq!(base64_bytes::decode(&text).unwrap(), data);
        let mut appended = b"x".to_vec();
        base64_bytes::encode_append(&data, &mut appended);
        assert_eq!(&appended[1..], text.as_bytes());
    }

    #[test]
    fn file_info_parses_0g_shape() {
        let raw = r#"{"tx":{"streamIds":[],"data":[],"dataMerkleRoot":"0x0000000000000000000000000000000000000000000000000000000000000001",
            "merkleNodes":[[11,"0x0000000000000000000000000000000000000000000000000000000000000001"]],
            "startEntryIndex":1024,"size":300,"seq":9},"finalized":false,"isCached":false,"uploadedSegNum":0,"pruned":false}"#;
        let info: FileInfo = serde_json::from_str(raw).unwrap();
        assert_eq!(info.tx.size, 300);
        assert_eq!(info.tx.merkle_nodes[0].0, 11);
        let v = serde_json::to_value(&info).unwrap();
        for k in ["tx", "finalized", "isCached", "uploadedSegNum", "pruned"] {
            assert!(v.get(k).is_some(), "{k}");
        }
        for k in [
            "streamIds",
            "data",
            "dataMerkleRoot",
            "startEntryIndex",
            "size",
            "seq",
        ] {
            assert!(v["tx"].get(k).is_some(), "{k}");
        }
    }
}
