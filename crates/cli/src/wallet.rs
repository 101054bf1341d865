//! Which chain, which contract, which wallet: flags shared by every on-chain command.
//!
//! The wallet comes from `--private-key`, the `LICEN_PRIVATE_KEY` env var, or a Foundry-style
//! encrypted keystore (`--keystore`, password from `LICEN_KEYSTORE_PASSWORD` or standard input).
//! The contract (and the default orchestrator) default to what `licen dev` deployed.

use alloy::primitives::Address;
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context, Result, bail};
use clap::Args;
use licen_chain::{DataPolicyClient, connect};
use licen_crypto::envelope::{
    PublicKey, RESULT_KEY_MESSAGE, SecretKey, result_keypair_from_signature,
};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Args)]
pub(crate) struct ChainArgs {
    /// Chain JSON-RPC endpoint [default: the network's: http://127.0.0.1:8545 for dev,
    /// https://evmrpc-testnet.0g.ai for galileo, https://evmrpc.0g.ai for mainnet].
    #[arg(long, env = "LICEN_RPC_URL")]
    rpc_url: Option<String>,
    /// DataPolicy contract address (default: on dev, the one `licen dev` deployed; on 0G, the
    /// one `licen deploy` recorded for the network's chain under the data dir).
    #[arg(long, env = "LICEN_CONTRACT")]
    pub(crate) contract: Option<Address>,
    /// Local state folder: where `licen dev` remembers its deployment and `licen deploy`
    /// records one per chain (`deployments/<chain-id>.json`).
    #[arg(long, env = "LICEN_DATA_DIR", default_value_os_t = crate::default_data_dir())]
    pub(crate) data_dir: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct WalletArgs {
    /// Private key (hex); else `LICEN_PRIVATE_KEY`. Prefer the variable or a keystore: command
    /// lines are visible to others.
    #[arg(long, conflicts_with = "keystore")]
    private_key: Option<String>,
    /// Foundry-style encrypted JSON keystore; else `LICEN_KEYSTORE` (password from
    /// `LICEN_KEYSTORE_PASSWORD` or standard input).
    #[arg(long)]
    keystore: Option<PathBuf>,
}

impl ChainArgs {
    /// Where services keep their state (index, ledger): the data dir on dev, a folder per
    /// network inside it otherwise (`<data-dir>/galileo`), so one data dir serves several
    /// networks without one's index or ledger refusing another's deployment.
    pub(crate) fn state_dir(&self) -> PathBuf {
        match crate::network::current() {
            licen_chain::Network::Dev => self.data_dir.clone(),
            network => self.data_dir.join(network.name()),
        }
    }

    /// The chain's JSON-RPC endpoint: `--rpc-url`, else the network's.
    pub(crate) fn rpc_url(&self) -> &str {
        crate::network::rpc_url(self.rpc_url.as_deref())
    }

    /// The contract address: `--contract`; else, on a network with a fixed chain, the one
    /// `licen deploy` recorded for it; else the dev deployment.
    pub(crate) fn contract(&self) -> Result<Address> {
        contract_or_recorded(self.contract, &self.data_dir)
    }

    /// Refuses an RPC endpoint that is not the network's chain (`dev` takes any but 0G's).
    pub(crate) async fn check_chain(&self, provider: &alloy::providers::DynProvider) -> Result<()> {
        crate::network::current()
            .check_chain(provider, self.rpc_url())
            .await?;
        Ok(())
    }

    /// The block to follow `contract` from: `given`, else its deployment block when it is the
    /// recorded contract (`licen deploy`'s on the network's chain, or `licen dev`'s), else 0.
    pub(crate) fn start_block(&self, contract: Address, given: Option<u64>) -> u64 {
        let recorded = || {
            let chain_id = crate::network::current().chain_id()?;
            crate::deployments::remembered(&self.data_dir, chain_id)
                .ok()
                .flatten()
                .filter(|d| d.address == contract)
                .map(|d| d.block)
        };
        given
            .or_else(recorded)
            .or_else(|| {
                crate::dev::remembered_deployment(&self.data_dir)
                    .filter(|d| d.address == contract)
                    .map(|d| d.block)
            })
            .unwrap_or(0)
    }

    /// The default orchestrator: the dev stack's, when `contract` is the dev stack's.
    pub(crate) fn dev_orchestrator(&self, contract: Address) -> Option<Address> {
        dev_orchestrator(&self.data_dir, contract)
    }

    /// A read-only client, on the network's chain (checked before the contract is looked up).
    pub(crate) async fn reader(&self) -> Result<DataPolicyClient> {
        let connection = connect(self.rpc_url(), None)?;
        self.check_chain(&connection.provider).await?;
        Ok(DataPolicyClient::new(connection, self.contract()?))
    }

    /// A client that signs with `wallet`, on the network's chain.
    pub(crate) async fn signer(
        &self,
        wallet: &WalletArgs,
    ) -> Result<(DataPolicyClient, PrivateKeySigner)> {
        let signer = wallet.signer()?;
        let connection = connect(self.rpc_url(), Some(signer.clone()))?;
        self.check_chain(&connection.provider).await?;
        Ok((DataPolicyClient::new(connection, self.contract()?), signer))
    }
}

/// The contract address: `given` (`--contract`); else, on a network with a fixed chain, the one
/// `licen deploy` recorded for it under `data_dir`; else the dev deployment there.
pub(crate) fn contract_or_recorded(given: Option<Address>, data_dir: &Path) -> Result<Address> {
    if let Some(address) = given {
        return Ok(address);
    }
    let network = crate::network::current();
    if let Some(chain_id) = network.chain_id() {
        return crate::deployments::remembered(data_dir, chain_id)?
            .map(|d| d.address)
            .with_context(|| {
                format!(
                    "no contract given and no deployment on {network} (chain {chain_id}) \
                     recorded in {}: pass --contract or set LICEN_CONTRACT, or deploy one \
                     with `licen --network {network} deploy`",
                    crate::deployments::record_path(data_dir, chain_id).display()
                )
            });
    }
    crate::dev::remembered_deployment(data_dir)
        .map(|d| d.address)
        .with_context(|| {
            format!(
                "no contract given and no `licen dev` deployment in {}: pass --contract or set \
                 LICEN_CONTRACT",
                data_dir.display()
            )
        })
}

/// The dev stack's orchestrator remembered under `data_dir`, on the dev network only and only
/// for its own contract (another deployment's orchestrators are not the dev stack's).
pub(crate) fn dev_orchestrator(data_dir: &Path, contract: Address) -> Option<Address> {
    if crate::network::current() != licen_chain::Network::Dev {
        return None;
    }
    crate::dev::remembered_deployment(data_dir)
        .filter(|d| d.address == contract)
        .and_then(|d| d.orchestrator)
}

impl WalletArgs {
    /// Whether a wallet was named at all (flag or variable), right or wrong.
    pub(crate) fn is_given(&self) -> bool {
        self.keystore.is_some()
            || self.private_key.is_some()
            || wallet_variable("LICEN_KEYSTORE").is_some()
            || wallet_variable("LICEN_PRIVATE_KEY").is_some()
    }

    /// The wallet: a flag on the command line wins over the environment (so a key exported
    /// in the shell never overrides the wallet named for this command); both flags, or both
    /// variables, are refused as ambiguous.
    pub(crate) fn signer(&self) -> Result<PrivateKeySigner> {
        let signer = self.named_signer()?;
        crate::network::current().check_wallet(signer.address())?;
        Ok(signer)
    }

    /// The wallet's address, for reading only (`jobs --mine`, `earnings`): a development
    /// account is not refused off dev here, since nothing is signed.
    pub(crate) fn address(&self) -> Result<Address> {
        Ok(self.named_signer()?.address())
    }

    fn named_signer(&self) -> Result<PrivateKeySigner> {
        if let Some(path) = &self.keystore {
            return open_keystore(path);
        }
        if let Some(key) = &self.private_key {
            return parse_private_key(key);
        }
        match (
            wallet_variable("LICEN_KEYSTORE"),
            wallet_variable("LICEN_PRIVATE_KEY"),
        ) {
            (Some(_), Some(_)) => bail!(
                "both LICEN_KEYSTORE and LICEN_PRIVATE_KEY are set: unset one, or name the wallet \
                 with --keystore or --private-key"
            ),
            (Some(path), None) => open_keystore(Path::new(&path)),
            (None, Some(key)) => parse_private_key(&key),
            (None, None) => bail!(
                "no wallet: pass --private-key or --keystore FILE, or set LICEN_PRIVATE_KEY or \
                 LICEN_KEYSTORE"
            ),
        }
    }
}

/// A wallet variable's value, when set to something other than blanks.
fn wallet_variable(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn parse_private_key(key: &str) -> Result<PrivateKeySigner> {
    key.trim().parse::<PrivateKeySigner>().map_err(|_| {
        anyhow::anyhow!(
            "the private key is not valid: expected 64 hex digits (optionally 0x-prefixed)"
        )
    })
}

fn open_keystore(path: &Path) -> Result<PrivateKeySigner> {
    if !path.is_file() {
        bail!(
            "keystore {} does not exist (or is not a file): pass the path of a Foundry keystore, \
             e.g. ~/.foundry/keystores/NAME",
            path.display()
        );
    }
    let password = match std::env::var("LICEN_KEYSTORE_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            eprint!("password for {}: ", path.display());
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    PrivateKeySigner::decrypt_keystore(path, password).map_err(|e| {
        anyhow::anyhow!(
            "could not open keystore {}: {e} (wrong password or not a keystore)",
            path.display()
        )
    })
}

/// The researcher's result key pair, derived from the wallet's signature of a fixed message.
pub(crate) fn result_keypair(signer: &PrivateKeySigner) -> Result<(SecretKey, PublicKey)> {
    let signature = signer
        .sign_message_sync(RESULT_KEY_MESSAGE.as_bytes())
        .context("signing the result-key message")?;
    let bytes = zeroize::Zeroizing::new(signature.as_bytes());
    Ok(result_keypair_from_signature(bytes.as_slice()))
}
