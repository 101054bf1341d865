//! The network this invocation runs against (`--network`, `LICEN_NETWORK`): read once from the
//! command line, then consulted wherever a default depends on it (the RPC endpoint, storage,
//! where `licen deploy` recorded the contract). One process runs against one network, so it is
//! set once, before any command runs, and never changes.

use licen_chain::Network;
use std::sync::OnceLock;

static CURRENT: OnceLock<Network> = OnceLock::new();

/// Records the network named on the command line. Called once, by `main`.
pub(crate) fn set(network: Network) {
    // A second call could only come from a bug; the first value stays.
    let _ = CURRENT.set(network);
}

/// The network named on the command line (`dev` before [`set`]).
pub(crate) fn current() -> Network {
    CURRENT.get().copied().unwrap_or_default()
}

/// The chain RPC endpoint: `given` (`--rpc-url`, `LICEN_RPC_URL`), else the network's.
pub(crate) fn rpc_url(given: Option<&str>) -> &str {
    given.unwrap_or_else(|| current().rpc_url())
}
