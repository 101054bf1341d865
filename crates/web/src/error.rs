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
    /// The indexer holds another deployment's data than the chain configured here.
    #[error(transparent)]
    OtherIndexer(licen_indexer::FollowsError),
    /// The HTTP client could not be built.
    #[error("building the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
