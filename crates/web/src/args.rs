//! Command-line flags of the standalone web app, shared by `licen-web` and `licen web`.
//! Holds public configuration only: there is no flag for a key, because the server needs none.

use crate::server::{PublicChain, WebConfig};
use licen_chain::Network;

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
    /// The storage node's zgs JSON-RPC endpoint (ciphertext uploads are relayed to it)
    /// [env: LICEN_STORAGE_URL; default: on dev the local node, http://127.0.0.1:5678; on
    /// galileo and mainnet 0G's storage indexer].
    #[arg(long, conflicts_with = "storage_indexer")]
    pub storage: Option<String>,
    /// A 0G storage indexer (0G's, or `licen storage-indexer`), instead of a node: uploads go
    /// to a set of its nodes that holds every segment, each node taking the segments of its
    /// shard; the page's downloads are routed to a node holding each segment [env:
    /// LICEN_STORAGE_INDEXER]. A flag wins over the environment; both variables set is refused.
    #[arg(long)]
    pub storage_indexer: Option<String>,
    /// The chain's JSON-RPC URL offered to wallets [default: the network's].
    #[arg(long, env = "LICEN_RPC_URL")]
    pub rpc: Option<String>,
    /// The chain id wallets must be on [default: the network's; 31337, anvil's, for dev].
    #[arg(long, env = "LICEN_CHAIN_ID")]
    pub chain_id: Option<u64>,
    /// The network's name offered to a wallet that does not know the chain yet [default: the
    /// network's].
    #[arg(long, env = "LICEN_CHAIN_NAME")]
    pub chain_name: Option<String>,
    /// The DataPolicy contract address [`licen web`'s default: the one `licen deploy` recorded
    /// for the network's chain under the data dir, or on dev `licen dev`'s; `licen-web` needs it].
    #[arg(long, env = "LICEN_CONTRACT")]
    pub contract: Option<alloy_primitives::Address>,
    /// Orchestrator suggested on the publish page (its key is still read from the chain).
    #[arg(long, env = "LICEN_ORCHESTRATOR")]
    pub orchestrator: Option<alloy_primitives::Address>,
    /// Block explorer prefix for transaction links (`<prefix><tx hash>`) [default: 0G's
    /// explorer on galileo and mainnet; none on dev, whose links open the app's own
    /// transaction page].
    #[arg(long, env = "LICEN_EXPLORER_TX_URL")]
    pub explorer_tx_url: Option<String>,
    /// On a 0G network: the Flow contract storage is paid through. The page pays it for each
    /// file from the person's wallet when they publish, and the storage node (which takes only
    /// paid files) stores the file then.
    #[arg(long, env = "LICEN_FLOW")]
    pub flow: Option<alloy_primitives::Address>,
    /// The Flow's `submit` generation: read from its code (`auto`), `current` or `legacy`.
    #[arg(long, value_parser = ["auto", "current", "legacy"], default_value = "auto")]
    pub flow_abi: String,
}

/// The chain id of `licen dev`'s anvil, the dev network's default.
const DEV_CHAIN_ID: u64 = 31337;

impl WebArgs {
    /// The storage node, or the indexer (see [`licen_storage::StorageEndpoint::from_flags`]);
    /// nothing given is `network`'s storage indexer, or the local node on dev.
    pub fn storage_endpoint(
        &self,
        network: Network,
    ) -> licen_storage::Result<licen_storage::StorageEndpoint> {
        licen_storage::StorageEndpoint::from_flags(
            self.storage.as_deref(),
            self.storage_indexer.as_deref(),
            licen_storage::StorageEndpoint::default_for(network.storage_indexer()),
        )
    }

    /// The server configuration for `contract` (`--contract`, or what the caller found
    /// recorded), `network` supplying what no flag gives (RPC URL, chain id and name, explorer,
    /// storage). No development wallet: that is `licen dev` only. Refused when where files are
    /// stored is ambiguous.
    pub fn config_on(
        &self,
        network: Network,
        contract: alloy_primitives::Address,
    ) -> licen_storage::Result<WebConfig> {
        Ok(WebConfig {
            listen: self.listen,
            indexer_url: self.indexer.clone(),
            storage: self.storage_endpoint(network)?,
            chain: PublicChain {
                chain_id: self.chain_id.or(network.chain_id()).unwrap_or(DEV_CHAIN_ID),
                rpc_url: self
                    .rpc
                    .clone()
                    .unwrap_or_else(|| network.rpc_url().to_owned()),
                name: self
                    .chain_name
                    .clone()
                    .unwrap_or_else(|| network.chain_name().to_owned()),
                data_policy: contract,
                default_orchestrator: self.orchestrator,
                explorer_tx_url: self
                    .explorer_tx_url
                    .clone()
                    .or_else(|| network.explorer_tx_url().map(str::to_owned)),
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
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        web: WebArgs,
    }

    const CONTRACT: alloy_primitives::Address = alloy_primitives::Address::repeat_byte(1);

    #[test]
    fn storage_is_a_node_or_an_indexer_never_both() {
        let contract = "0x0000000000000000000000000000000000000001";
        let node = Cli::try_parse_from(["web", "--contract", contract, "--storage", "http://n:1"])
            .unwrap();
        assert_eq!(
            node.web.config_on(Network::Dev, CONTRACT).unwrap().storage,
            licen_storage::StorageEndpoint::Node("http://n:1".into())
        );
        let indexer = Cli::try_parse_from([
            "web",
            "--contract",
            contract,
            "--storage-indexer",
            "http://i:2",
        ])
        .unwrap();
        assert_eq!(
            indexer
                .web
                .config_on(Network::Dev, CONTRACT)
                .unwrap()
                .storage,
            licen_storage::StorageEndpoint::Indexer("http://i:2".into())
        );
        let both = Cli::try_parse_from([
            "web",
            "--contract",
            contract,
            "--storage",
            "http://n:1",
            "--storage-indexer",
            "http://i:2",
        ]);
        assert!(both.is_err(), "the two flags conflict");
    }

    #[test]
    fn a_network_supplies_what_no_flag_gives() {
        let contract = "0x0000000000000000000000000000000000000001";
        let bare = Cli::try_parse_from(["web", "--contract", contract]).unwrap();
        let dev = bare.web.config_on(Network::Dev, CONTRACT).unwrap();
        assert_eq!(dev.chain.chain_id, 31337);
        assert_eq!(dev.chain.rpc_url, "http://127.0.0.1:8545");
        assert_eq!(dev.chain.explorer_tx_url, None);
        assert_eq!(
            dev.storage,
            licen_storage::StorageEndpoint::Node("http://127.0.0.1:5678".into())
        );
        let galileo = bare.web.config_on(Network::Galileo, CONTRACT).unwrap();
        assert_eq!(galileo.chain.chain_id, 16602);
        assert_eq!(galileo.chain.rpc_url, "https://evmrpc-testnet.0g.ai");
        assert_eq!(galileo.chain.name, "0G Galileo Testnet");
        assert_eq!(
            galileo.chain.explorer_tx_url.as_deref(),
            Some("https://chainscan-galileo.0g.ai/tx/")
        );
        assert_eq!(
            galileo.storage,
            licen_storage::StorageEndpoint::Indexer(
                "https://indexer-storage-testnet-turbo.0g.ai".into()
            )
        );
        // A flag wins over the network's default.
        let own = Cli::try_parse_from([
            "web",
            "--contract",
            contract,
            "--rpc",
            "https://rpc.example",
            "--storage",
            "http://n:1",
        ])
        .unwrap();
        let mainnet = own.web.config_on(Network::Mainnet, CONTRACT).unwrap();
        assert_eq!(mainnet.chain.rpc_url, "https://rpc.example");
        assert_eq!(mainnet.chain.chain_id, 16661);
        assert_eq!(
            mainnet.storage,
            licen_storage::StorageEndpoint::Node("http://n:1".into())
        );
    }
}
