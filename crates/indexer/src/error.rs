//! Errors of the indexer: database, chain RPC, configuration and API failures.

/// A failed indexer operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database refused or failed an operation.
    #[error("indexer database: {0}")]
    Db(#[from] sqlx::Error),
    /// The chain node could not be reached or answered with an error.
    #[error("chain RPC {action}: {message}")]
    Rpc {
        /// What was asked ("eth_getLogs 100..=200", "eth_getBlockByNumber 7", …).
        action: String,
        /// The transport's message.
        message: String,
    },
    /// The chain reorganised deeper than the block hashes the indexer keeps, or the node
    /// answered inconsistently; the follower rewinds and retries.
    #[error("chain inconsistency: {0}")]
    Inconsistent(String),
    /// Bad configuration (URL, address, data dir, …).
    #[error("{0}")]
    Config(String),
    /// A file-system operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A stored row could not be read back (a bug or a hand-edited database).
    #[error("corrupt indexer database: {0}")]
    Corrupt(String),
}

impl Error {
    /// Whether this RPC error is a provider limit on the block range or the result size, so
    /// the follower should retry with a smaller range.
    pub fn is_range_limit(&self) -> bool {
        let Self::Rpc { message, .. } = self else {
            return false;
        };
        let m = message.to_ascii_lowercase();
        [
            "range",
            "too large",
            "too many",
            "limit exceeded",
            "exceeds",
            "response size",
            "more than",
            "timeout",
            "timed out",
        ]
        .iter()
        .any(|needle| m.contains(needle))
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn rpc(message: &str) -> Error {
        Error::Rpc {
            action: "eth_getLogs 1..=5000".into(),
            message: message.into(),
        }
    }

    #[test]
    fn provider_limit_messages_are_recognised() {
        for message in [
            "query returned more than 10000 results",
            "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range",
            "eth_getLogs is limited to a 10,000 range",
            "block range too large",
            "exceeds the max block range",
            "request timed out",
        ] {
            assert!(rpc(message).is_range_limit(), "{message}");
        }
        for message in ["connection refused", "invalid params", "method not found"] {
            assert!(!rpc(message).is_range_limit(), "{message}");
        }
        assert!(!Error::Config("range".into()).is_range_limit());
    }
}
