//! Errors of the web server (startup and upstream calls). Never carries request bodies.

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listen address could not be bound.
    #[error(
        "cannot listen on {addr}: {source} (is another process using the port? choose another with --port)"
    )]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A configured upstream URL is not a usable http(s) URL.
    #[error("{what} URL {url:?} is not valid: expected http://host:port")]
    BadUrl {
        /// Which upstream.
        what: &'static str,
        /// The value given.
        url: String,
    },
    /// The chain RPC offered to wallets is another chain than `--chain-id` says.
    #[error(
        "the chain RPC {rpc} is chain {actual}, but this web app is configured for chain {configured}: \
         pass --chain-id {actual} (or the RPC URL of chain {configured})"
    )]
    WrongChain {
        /// The RPC URL.
        rpc: String,
        /// What it answered to `eth_chainId`.
        actual: u64,
        /// `--chain-id`.
        configured: u64,
    },
    /// The indexer holds another deployment's data than the chain configured here.
    #[error(transparent)]
    OtherIndexer(licen_indexer::FollowsError),
    /// The 0G Flow contract cannot be used (unreachable chain, no Flow there, or not the one the
    /// storage nodes follow).
    #[error("the 0G Flow contract: {0}")]
    Flow(String),
    /// The HTTP client could not be built.
    #[error("building the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
