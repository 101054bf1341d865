//! The crate's error type. Every variant says what was wrong, what was expected where that
//! applies, and what to do about it. Messages name roots, segment indexes, sizes and node URLs,
//! never file contents (which are ciphertext anyway, but still never belong in a log).

use crate::merkle::Hash;
use crate::proof::ProofError;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `licen-storage`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A local file system operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The caller passed something unusable (the message says what and what was expected).
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// A Merkle proof did not verify.
    #[error("Merkle proof for segment {segment} of file {root} does not verify: {reason}")]
    Proof {
        /// File root the proof was checked against.
        root: Hash,
        /// Segment index.
        segment: u64,
        /// Why it failed.
        #[source]
        reason: ProofError,
    },

    /// A storage node served data that does not match the root that was asked for.
    #[error(
        "storage node {url} served bad data for segment {segment} of file {root}: {reason}. \
         The node is lying or its copy is corrupted: stop using it for this file and download \
         from another node"
    )]
    LyingNode {
        /// The node that served the data.
        url: String,
        /// The file root that was requested.
        root: Hash,
        /// The segment that failed verification.
        segment: u64,
        /// What exactly did not match.
        reason: String,
    },

    /// The HTTP request itself failed (connection refused, reset, timeout, non-JSON answer).
    #[error(
        "cannot talk to storage node {url} ({method}): {reason}. Check the URL and that the node \
         is running and reachable"
    )]
    Transport {
        /// Node URL.
        url: String,
        /// JSON-RPC method being called.
        method: String,
        /// What went wrong.
        reason: String,
    },

    /// The node answered with a JSON-RPC error object.
    #[error("storage node {url} rejected {method} with JSON-RPC error {code}: {message}{}",
        data.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Rpc {
        /// Node URL.
        url: String,
        /// JSON-RPC method.
        method: String,
        /// JSON-RPC error code.
        code: i64,
        /// Error message.
        message: String,
        /// The error's `data` member, if any, rendered as text.
        data: Option<String>,
    },

    /// The node's answer was valid JSON but not what the protocol says it should be.
    #[error("storage node {url} answered {method} with an unexpected response: {reason}")]
    Protocol {
        /// Node URL.
        url: String,
        /// JSON-RPC method.
        method: String,
        /// What was unexpected.
        reason: String,
    },

    /// The node does not know the file.
    #[error("file {root} is not on storage node {url}: check the root, or upload the file first")]
    NotFound {
        /// Node URL.
        url: String,
        /// Requested root.
        root: Hash,
    },

    /// The node knows the file but has not finalized it.
    #[error(
        "file {root} on storage node {url} is not finalized yet ({uploaded} of {total} segments \
         uploaded): finish the upload (re-running it resumes where it stopped) or wait"
    )]
    NotFinalized {
        /// Node URL.
        url: String,
        /// Requested root.
        root: Hash,
        /// Segments the node has.
        uploaded: u64,
        /// Segments the file has.
        total: u64,
    },

    /// The size the node reports differs from the size the caller expects.
    #[error(
        "file {root}: expected {expected} bytes but storage node {url} says it has {actual} bytes. \
         A 0G root does not commit to the length of trailing zero bytes, so the size must come \
         from a trusted source (the manifest); do not trust this node's copy"
    )]
    SizeMismatch {
        /// Node URL.
        url: String,
        /// File root.
        root: Hash,
        /// Size the caller expected.
        expected: u64,
        /// Size the node reported.
        actual: u64,
    },

    /// A sharded node was asked for a whole file it holds only part of.
    #[error(
        "storage node {url} holds shard {shard} only ({held} of the {total} segments of file \
         {root}): download through the storage indexer (--storage-indexer) or from a node \
         holding every segment"
    )]
    PartialNode {
        /// Node URL.
        url: String,
        /// File root.
        root: Hash,
        /// The node's shard position (`SHARD_ID/NUM_SHARD`).
        shard: String,
        /// Segments of the file the node holds.
        held: u64,
        /// Segments the file has.
        total: u64,
    },

    /// The 0G storage indexer could not be reached or refused a call.
    #[error(
        "the 0G storage indexer {url} failed {method}: {reason}. Check the URL (the indexer \
         serves JSON-RPC at its root) and that it is running"
    )]
    Indexer {
        /// Indexer URL.
        url: String,
        /// JSON-RPC method.
        method: String,
        /// What went wrong.
        reason: String,
    },

    /// The nodes an indexer knows cannot hold every segment as often as asked.
    #[error(
        "the storage nodes the indexer {url} knows (shards {shards}) cannot hold every segment \
         {replicas} time(s): start nodes for the missing shard positions, or ask for fewer \
         replicas"
    )]
    NoCoveringNodes {
        /// Indexer URL.
        url: String,
        /// The shard positions of the nodes it knows, e.g. `0/2, 0/4`.
        shards: String,
        /// Copies of each segment asked for.
        replicas: u32,
    },

    /// The nodes an upload was given do not hold every segment between them.
    #[error(
        "the storage nodes {nodes} hold shards {shards} only, not every segment of a file: \
         upload through a storage indexer (--storage-indexer) that also knows the other shards' \
         nodes, or to a node holding every segment (shard 0/1)"
    )]
    NodesDoNotCover {
        /// The nodes' URLs.
        nodes: String,
        /// Their shard positions.
        shards: String,
    },

    /// The nodes an upload goes to follow different Flow contracts (or chains), so no one
    /// payment reaches them all.
    #[error(
        "the storage nodes follow different Flow contracts: {first} follows {first_flow}, \
         {other} follows {other_flow}; upload to nodes of one 0G network"
    )]
    FlowsDisagree {
        /// A node's URL.
        first: String,
        /// Its Flow and chain, for the message.
        first_flow: String,
        /// A node disagreeing with it.
        other: String,
        /// Its Flow and chain.
        other_flow: String,
    },

    /// A Flow was named to pay that the storage nodes do not follow: they would never see the
    /// payment.
    #[error(
        "{given} is not the Flow contract the storage nodes follow ({followed} on chain \
         {chain_id}): they would never see a payment to it. Name theirs (or none, to pay theirs), \
         or use storage of that Flow's network"
    )]
    NotTheNodesFlow {
        /// The Flow named (`--flow`).
        given: alloy_primitives::Address,
        /// The nodes' Flow.
        followed: alloy_primitives::Address,
        /// Its chain.
        chain_id: u64,
    },

    /// The storage nodes' Flow is on another chain than the one payments would be sent on.
    #[error(
        "the storage nodes follow the Flow contract {flow} on chain {flow_chain}, but payments \
         would go to chain {chain_id}: pay through an RPC endpoint of chain {flow_chain}, or use \
         storage of chain {chain_id}'s network (nothing was paid or uploaded)"
    )]
    FlowOnAnotherChain {
        /// The nodes' Flow.
        flow: alloy_primitives::Address,
        /// Its chain.
        flow_chain: u64,
        /// The chain payments would be sent on.
        chain_id: u64,
    },

    /// No set of nodes an indexer knows holds every segment of a file.
    #[error(
        "no set of storage nodes the indexer {url} knows holds every segment of file {root}: \
         check the root, upload the file first, or wait until its nodes finalize it"
    )]
    NotLocated {
        /// Indexer URL.
        url: String,
        /// File root.
        root: Hash,
    },

    /// Every node that was tried failed.
    #[error("no storage node could serve file {root}: {}", errors.join("; "))]
    AllNodesFailed {
        /// File root.
        root: Hash,
        /// One error per node tried, in order.
        errors: Vec<String>,
    },
}

impl Error {
    /// Builds an [`Error::Io`] with a description of what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// True when the error means "this node served data that does not verify".
    pub fn is_lying_node(&self) -> bool {
        matches!(self, Error::LyingNode { .. } | Error::SizeMismatch { .. })
    }
}
