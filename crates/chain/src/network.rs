//! Named deployment profiles (DESIGN §8): the local `dev` stack, 0G's `galileo` testnet and 0G
//! `mainnet`. The same binaries serve all three; a profile only supplies the public facts of a
//! network (its chain id, a public RPC endpoint, its storage indexer, its block explorer), and
//! any of them can be overridden by a flag or variable. Keys and LICEN's own contract address are
//! never part of a profile: they come from the operator's config, environment or
//! `licen deploy`'s record.
//!
//! A profile with a chain id is a promise about the endpoint: [`Network::check_chain`] refuses
//! an RPC endpoint of another chain before anything is signed, so a transaction meant for the
//! testnet can never be sent to mainnet (or the reverse) through a mistyped URL; and `dev`
//! refuses a 0G chain, which must be named to get its checks (such as
//! [`Network::check_wallet`]'s refusal of public development keys).

use alloy::providers::{DynProvider, Provider as _};

use crate::error::{Error, Result};

/// A named network LICEN runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Network {
    /// The local stack of `licen dev` (anvil on 127.0.0.1:8545, local storage): any chain id.
    #[default]
    Dev,
    /// 0G's Galileo testnet (chain id 16602).
    Galileo,
    /// 0G mainnet (chain id 16661).
    Mainnet,
}

impl Network {
    /// Every profile, in the order `--help` lists them.
    pub const ALL: [Network; 3] = [Network::Dev, Network::Galileo, Network::Mainnet];

    /// The name used on the command line and in `LICEN_NETWORK`.
    pub fn name(self) -> &'static str {
        match self {
            Network::Dev => "dev",
            Network::Galileo => "galileo",
            Network::Mainnet => "mainnet",
        }
    }

    /// The chain id every endpoint must answer; `None` for `dev`, whose local chain may be any.
    pub fn chain_id(self) -> Option<u64> {
        match self {
            Network::Dev => None,
            Network::Galileo => Some(16602),
            Network::Mainnet => Some(16661),
        }
    }

    /// The chain's name, offered to wallets that do not know it yet.
    pub fn chain_name(self) -> &'static str {
        match self {
            Network::Dev => "LICEN",
            Network::Galileo => "0G Galileo Testnet",
            Network::Mainnet => "0G Mainnet",
        }
    }

    /// The JSON-RPC endpoint used when none is given. 0G's public endpoints are rate-limited
    /// and meant for development; operators name their own provider's with `--rpc-url`.
    pub fn rpc_url(self) -> &'static str {
        match self {
            Network::Dev => "http://127.0.0.1:8545",
            Network::Galileo => "https://evmrpc-testnet.0g.ai",
            Network::Mainnet => "https://evmrpc.0g.ai",
        }
    }

    /// 0G's storage indexer (the "turbo" storage network), where uploads and downloads go when
    /// no storage is named; `None` for `dev`, whose local node is the default.
    pub fn storage_indexer(self) -> Option<&'static str> {
        match self {
            Network::Dev => None,
            Network::Galileo => Some("https://indexer-storage-testnet-turbo.0g.ai"),
            Network::Mainnet => Some("https://indexer-storage-turbo.0g.ai"),
        }
    }

    /// The block explorer's transaction link prefix (`<prefix><tx hash>`); `None` for `dev`.
    pub fn explorer_tx_url(self) -> Option<&'static str> {
        match self {
            Network::Dev => None,
            Network::Galileo => Some("https://chainscan-galileo.0g.ai/tx/"),
            Network::Mainnet => Some("https://chainscan.0g.ai/tx/"),
        }
    }

    /// Asks `provider` (at `rpc_url`, for messages) for its chain id and refuses one that is not
    /// this network's; on `dev`, which takes any chain, refuses a 0G network's chain, which must
    /// be named (so its defaults and checks apply). Returns the chain id.
    pub async fn check_chain(self, provider: &DynProvider, rpc_url: &str) -> Result<u64> {
        let actual = provider.get_chain_id().await.map_err(|e| Error::Rpc {
            action: "asking for the chain id",
            rpc: rpc_url.to_owned(),
            message: e.to_string(),
        })?;
        match self.chain_id() {
            Some(expected) if actual != expected => Err(Error::WrongChain {
                network: self.name(),
                expected,
                actual,
                rpc: rpc_url.to_owned(),
            }),
            None => match Network::ALL
                .into_iter()
                .find(|n| n.chain_id() == Some(actual))
            {
                Some(named) => Err(Error::Config(format!(
                    "{rpc_url} is {named} (chain {actual}): name the network with --network \
                     {named} (or LICEN_NETWORK={named}), so its checks apply (nothing was sent)"
                ))),
                None => Ok(actual),
            },
            Some(_) => Ok(actual),
        }
    }
}

/// The first ten accounts of the public development mnemonic ("test test … junk"), the ones
/// anvil hands out (hardhat uses more of the same mnemonic):
/// their keys are published, so on a public network anything they hold is taken at once. Only
/// the local stack may use them.
pub const PUBLIC_DEV_ACCOUNTS: [alloy::primitives::Address; 10] = [
    alloy::primitives::address!("f39Fd6e51aad88F6F4ce6aB8827279cffFb92266"),
    alloy::primitives::address!("70997970C51812dc3A010C7d01b50e0d17dc79C8"),
    alloy::primitives::address!("3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"),
    alloy::primitives::address!("90F79bf6EB2c4f870365E785982E1f101E93b906"),
    alloy::primitives::address!("15d34AAf54267DB7D7c367839AAf71A00a2C6A65"),
    alloy::primitives::address!("9965507D1a55bcC2695C58ba16FB37d819B0A4dc"),
    alloy::primitives::address!("976EA74026E726554dB657fA54763abd0C3a0aa9"),
    alloy::primitives::address!("14dC79964da2C08b23698B3D3cc7Ca32193d9955"),
    alloy::primitives::address!("23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"),
    alloy::primitives::address!("a0Ee7A142d267C1f36714E4a8F75612F20a79720"),
];

impl Network {
    /// Refuses a wallet whose key is public (one of [`PUBLIC_DEV_ACCOUNTS`]) on a network other
    /// than `dev`: whatever it sends or holds there is anyone's.
    pub fn check_wallet(self, wallet: alloy::primitives::Address) -> Result<()> {
        if self == Network::Dev {
            return Ok(());
        }
        match PUBLIC_DEV_ACCOUNTS.iter().position(|a| *a == wallet) {
            Some(index) => Err(Error::Config(format!(
                "the wallet {wallet} is anvil's development account #{index}, whose private key \
                 is public (INSECURE): on {self} anyone can take what it holds or sends. Use a \
                 key of your own (--keystore, or LICEN_KEYSTORE) (nothing was sent)"
            ))),
            None => Ok(()),
        }
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Network {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let wanted = s.trim().to_ascii_lowercase();
        Network::ALL
            .into_iter()
            .find(|n| n.name() == wanted)
            .ok_or_else(|| {
                format!(
                    "{s:?} is not a LICEN network: expected dev (the local stack of `licen dev`), \
                     galileo (0G testnet, chain 16602) or mainnet (0G mainnet, chain 16661)"
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_unknown_ones_say_what_is_expected() {
        for network in Network::ALL {
            assert_eq!(network.name().parse::<Network>(), Ok(network));
            assert_eq!(network.to_string(), network.name());
        }
        assert_eq!(" Galileo ".parse::<Network>(), Ok(Network::Galileo));
        let error = "testnet".parse::<Network>().unwrap_err();
        assert!(
            error.contains("\"testnet\" is not a LICEN network"),
            "{error}"
        );
        assert!(
            error.contains("galileo") && error.contains("mainnet"),
            "{error}"
        );
    }

    #[test]
    fn profiles_carry_each_networks_public_facts() {
        // (network, chain id, rpc, storage indexer, explorer)
        let table = [
            (Network::Dev, None, "http://127.0.0.1:8545", None, None),
            (
                Network::Galileo,
                Some(16602),
                "https://evmrpc-testnet.0g.ai",
                Some("https://indexer-storage-testnet-turbo.0g.ai"),
                Some("https://chainscan-galileo.0g.ai/tx/"),
            ),
            (
                Network::Mainnet,
                Some(16661),
                "https://evmrpc.0g.ai",
                Some("https://indexer-storage-turbo.0g.ai"),
                Some("https://chainscan.0g.ai/tx/"),
            ),
        ];
        for (network, chain_id, rpc, indexer, explorer) in table {
            assert_eq!(network.chain_id(), chain_id, "{network}");
            assert_eq!(network.rpc_url(), rpc, "{network}");
            assert_eq!(network.storage_indexer(), indexer, "{network}");
            assert_eq!(network.explorer_tx_url(), explorer, "{network}");
        }
        assert_eq!(Network::default(), Network::Dev);
    }

    #[test]
    fn public_development_keys_are_refused_off_the_local_stack() {
        let public = PUBLIC_DEV_ACCOUNTS[3];
        assert!(Network::Dev.check_wallet(public).is_ok());
        let error = Network::Galileo
            .check_wallet(public)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("development account #3") && error.contains("on galileo"),
            "{error}"
        );
        assert!(Network::Mainnet.check_wallet(public).is_err());
        let own = alloy::primitives::Address::repeat_byte(0x42);
        assert!(Network::Mainnet.check_wallet(own).is_ok());
    }
}
