//! Orchestrator errors.

/// What can go wrong while orchestrating.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A chain call failed or was refused.
    #[error(transparent)]
    Chain(#[from] licen_chain::Error),
    /// The ledger database failed.
    #[error("orchestrator ledger: {0}")]
    Ledger(#[from] sqlx::Error),
    /// Storage could not serve an envelope or manifest.
    #[error(transparent)]
    Storage(#[from] licen_storage::Error),
    /// The compute node could not be reached or refused a request.
    #[error("compute node: {0}")]
    Compute(String),
    /// The indexer's stream could not be read.
    #[error("indexer: {0}")]
    Indexer(String),
    /// This replica no longer leads (its lease ran out or another replica took over): it must
    /// not act on any job.
    #[error("this orchestrator replica no longer leads; another replica drives the jobs")]
    NotLeading,
    /// The ledger refused a write: this replica's lead (term `term`) ended, by its lease
    /// running out or another replica taking over, so it must not record anything.
    #[error(
        "the orchestrator ledger refused this replica's write: its lead (term {term}) ended, its lease ran out or another replica took over; nothing was recorded"
    )]
    Fenced {
        /// The term the write was made in.
        term: u64,
    },
    /// Configuration problem.
    #[error("{0}")]
    Config(String),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
