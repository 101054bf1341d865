//! Command-line flags of the standalone web app, shared by `licen-web` and `licen web`.
//! Holds public configuration only: there is no flag for a key, because the server needs none.

use crate::server::{PublicChain, WebConfig};

/// Serve the LICEN marketplace web app (holds no secrets; wallets sign in the browser).
#[derive(Debug, Clone, clap::Args)]
pub struct WebArgs {
    /// Address to listen on.
    #[arg(long, env = "LICEN_WEB_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: std::net::SocketAddr,
    /// The indexer's query API.
    #[arg(
        long,
        env = "LICEN_INDEXER_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub indexer: String,
    /// The storage node's zgs JSON-RPC endpoint (ciphertext uploads are relayed to it).
    #[arg(
        long,
        env = "LICEN_STORAGE_URL",
        default_value = "http://127.0.0.1:5678"
    )]
    pub storage: String,
    /// The chain's JSON-RPC URL offered to wallets.
    #[arg(long, env = "LICEN_RPC_URL", default_value = "http://127.0.0.1:8545")]
    pub rpc: String,
    /// The chain id wallets must be on.
    #[arg(long, env = "LICEN_CHAIN_ID", default_value_t = 31337)]
    pub chain_id: u64,
    /// The network's name offered to a wallet that does not know the chain yet.
    #[arg(long, env = "LICEN_CHAIN_NAME", default_value = "LICEN")]
    pub chain_name: String,
    /// The DataPolicy contract address.
    #[arg(long, env = "LICEN_CONTRACT")]
    pub contract: alloy_primitives::Address,
    /// Orchestrator suggested on the publish page (its key is still read from the chain).
    #[arg(long, env = "LICEN_ORCHESTRATOR")]
    pub orchestrator: Option<alloy_primitives::Address>,
    /// Block explorer prefix for transaction links (`<prefix><tx hash>`).
    #[arg(long, env = "LICEN_EXPLORER_TX_URL")]
    pub explorer_tx_url: Option<String>,
    /// On a 0G network: the Flow contract storage is paid through. The page pays it for each
    /// file from the person's wallet when they publish, and the storage node (which takes only
    /// paid files) stores the file then.
    #[arg(long, env = "LICEN_FLOW")]
    pub flow: Option<alloy_primitives::Address>,
    /// The Flow's `submit` generation: read from its code (`auto`), `current` or `legacy`.
    #[arg(long, value_parser = ["auto", "current", "legacy"], default_value = "auto", requires = "flow")]
    pub flow_abi: String,
}

impl WebArgs {
    /// The server configuration (no development wallet: that is `licen dev` only).
    pub fn config(&self) -> WebConfig {
        WebConfig {
            listen: self.listen,
            indexer_url: self.indexer.clone(),
            storage: licen_storage::StorageEndpoint::Node(self.storage.clone()),
            chain: PublicChain {
                chain_id: self.chain_id,
                rpc_url: self.rpc.clone(),
                name: self.chain_name.clone(),
                data_policy: self.contract,
                default_orchestrator: self.orchestrator,
                explorer_tx_url: self.explorer_tx_url.clone(),
            },
            flow: self.flow.map(|address| crate::PublicFlow {
                address,
                abi: match self.flow_abi.as_str() {
                    "current" => Some(licen_storage::zerog::FlowAbi::Current),
                    "legacy" => Some(licen_storage::zerog::FlowAbi::Legacy),
                    _ => None,
                },
            }),
            dev_wallet: false,
            notices: Vec::new(),
            request_tap: None,
        }
    }
}
