//! `licen deploy` and `licen admin`: putting the DataPolicy contract on a chain (0G Galileo,
//! 0G mainnet, or any EVM chain) and running its admin functions with the same binary.
//!
//! `deploy` checks every constructor argument the contract checks before sending anything (a
//! refused deployment still costs gas), deploys from the wallet, and records the deployment in
//! `<data-dir>/deployments/<chain-id>.json` ([`crate::deployments`]); it refuses to replace a
//! recorded contract that is still on the chain unless told to. `admin` subcommands check that
//! the wallet is the contract's admin, and every precondition the contract would revert on,
//! before sending; a revert that still happens reaches the user as licen-chain's sentence.

use crate::deployments::{self, DeploymentRecord};
use crate::onchain::parse_duration;
use crate::output::{self, Tx};
use crate::wallet::{ChainArgs, WalletArgs};
use alloy::primitives::{Address, B256};
use alloy::providers::Provider;
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use licen_chain::{DataPolicyClient, DeployParams, connect};
use std::path::PathBuf;

/// The contract's fee cap, `DataPolicy.MAX_FEE_BPS` (contracts/src/DataPolicy.sol): checked here
/// before a deployment, when there is no contract yet to ask. Deployed contracts are asked.
const MAX_FEE_BPS: u16 = 1000;

/// The longest run timeout the contract accepts: `type(uint32).max` seconds.
const MAX_RUN_TIMEOUT: u64 = u32::MAX as u64;

#[derive(Debug, Args)]
pub(crate) struct DeployArgs {
    /// Chain JSON-RPC endpoint to deploy over [default: the network's: http://127.0.0.1:8545
    /// for dev, https://evmrpc-testnet.0g.ai for galileo, https://evmrpc.0g.ai for mainnet].
    #[arg(long, env = "LICEN_RPC_URL")]
    rpc_url: Option<String>,
    /// Local state folder: the deployment is recorded in `<data-dir>/deployments/<chain-id>.json`.
    #[arg(long, env = "LICEN_DATA_DIR", default_value_os_t = crate::default_data_dir())]
    data_dir: PathBuf,
    /// The contract's admin: registers orchestrators, sets the fee, may hand the role on
    /// (`licen admin`). Default: the deploying wallet.
    #[arg(long)]
    admin: Option<Address>,
    /// The account credited with the protocol fee. Default: the admin (`licen admin set-fee`
    /// changes it later).
    #[arg(long)]
    treasury: Option<Address>,
    /// Protocol fee in basis points of each royalty (100 = 1%), at most 1000 (10%), the
    /// contract's cap. The admin can change it later (`licen admin set-fee`).
    #[arg(long, default_value_t = 0)]
    fee_bps: u64,
    /// How long a started training run has to settle before its researcher may reclaim the
    /// escrow: seconds, or `90m`, `2h`, `1d`; 1 s to 4294967295 s. Fixed for the contract's
    /// lifetime: choose above the longest run your compute nodes take.
    #[arg(long, default_value = "1d")]
    run_timeout: String,
    /// Deploy even though a deployment is already recorded for this chain and its contract is
    /// still there: the record then names the new contract (the old one stays on the chain,
    /// with its datasets and escrow, under its own admin).
    #[arg(long)]
    replace: bool,
    /// The deploying wallet (pays the gas).
    #[command(flatten)]
    wallet: WalletArgs,
}

#[derive(Debug, Args)]
pub(crate) struct AdminArgs {
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// The contract's admin, treasury, protocol fee and run timeout (read-only; no wallet);
    /// with `--orchestrator`, that orchestrator's key and whether it is active.
    Show(ShowArgs),
    /// Register an orchestrator (an account that releases dataset keys to attested training
    /// runs) with its X25519 public key; also re-activates a deactivated one.
    RegisterOrchestrator(OrchestratorKeyArgs),
    /// Replace an active orchestrator's X25519 public key (datasets published from now on
    /// seal their keys to the new one).
    RotateOrchestratorKey(OrchestratorKeyArgs),
    /// Stop new publications and requests naming an orchestrator; jobs already granted stay
    /// with it.
    DeactivateOrchestrator(OrchestratorArgs),
    /// Change the protocol fee and/or the treasury it is credited to (fees already accrued stay
    /// with the previous treasury).
    SetFee(SetFeeArgs),
    /// Hand the admin role to another account. Irreversible from this wallet: only the new
    /// admin can act (or hand it back) afterwards.
    TransferAdmin(TransferAdminArgs),
}

#[derive(Debug, Args)]
struct ShowArgs {
    /// Also show this orchestrator's registered key and whether it is active.
    #[arg(long)]
    orchestrator: Option<Address>,
    #[command(flatten)]
    chain: ChainArgs,
}

/// Where the orchestrator's public key comes from.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct KeySource {
    /// The orchestrator's X25519 public key: 64 hex digits (what `licen keygen` prints as its
    /// public key). Use this when the orchestrator's operator sent you the key.
    #[arg(long)]
    public_key: Option<String>,
    /// The orchestrator's X25519 secret key file, as `licen keygen -o FILE` writes it (the file
    /// `licen orchestrator --key-file` reads): its public key is derived here; nothing secret
    /// is sent or printed.
    #[arg(long)]
    key_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct OrchestratorKeyArgs {
    /// The orchestrator's account (the wallet `licen orchestrator` runs with).
    #[arg(long)]
    orchestrator: Address,
    #[command(flatten)]
    key: KeySource,
    #[command(flatten)]
    chain: ChainArgs,
    /// The admin's wallet.
    #[command(flatten)]
    wallet: WalletArgs,
}

#[derive(Debug, Args)]
struct OrchestratorArgs {
    /// The orchestrator's account.
    #[arg(long)]
    orchestrator: Address,
    #[command(flatten)]
    chain: ChainArgs,
    /// The admin's wallet.
    #[command(flatten)]
    wallet: WalletArgs,
}

#[derive(Debug, Args)]
#[group(id = "fee_change", required = true, multiple = true, args = ["fee_bps", "treasury"])]
struct SetFeeArgs {
    /// New protocol fee in basis points of each royalty (100 = 1%), at most the contract's cap
    /// (`licen admin show`). Default: keep the current fee.
    #[arg(long)]
    fee_bps: Option<u64>,
    /// New treasury, credited with the fees from now on. Default: keep the current treasury.
    #[arg(long)]
    treasury: Option<Address>,
    #[command(flatten)]
    chain: ChainArgs,
    /// The admin's wallet.
    #[command(flatten)]
    wallet: WalletArgs,
}

#[derive(Debug, Args)]
struct TransferAdminArgs {
    /// The new admin. Check it twice: a wrong address loses the admin role for good.
    #[arg(long)]
    to: Address,
    /// Transfer without asking (scripts).
    #[arg(long)]
    yes: bool,
    #[command(flatten)]
    chain: ChainArgs,
    /// The current admin's wallet.
    #[command(flatten)]
    wallet: WalletArgs,
}

/// `--run-timeout`: a duration the contract's constructor accepts (1 ..= 2^32 - 1 seconds).
fn parse_run_timeout(text: &str) -> Result<u64> {
    let seconds = parse_duration(text)
        .map_err(|e| anyhow::anyhow!("--run-timeout: {e} (nothing was sent)"))?;
    if seconds == 0 || seconds > MAX_RUN_TIMEOUT {
        bail!(
            "--run-timeout {text} is {seconds} s: the contract accepts 1 s to {MAX_RUN_TIMEOUT} s \
             (~136 years); give e.g. 1d (nothing was sent)"
        );
    }
    Ok(seconds)
}

/// A fee in basis points the contract accepts (at most `max`).
fn check_fee(fee_bps: u64, max: u16) -> Result<u16> {
    match u16::try_from(fee_bps) {
        Ok(fee) if fee <= max => Ok(fee),
        _ => bail!(
            "--fee-bps {fee_bps} is above the contract's cap of {max} bps ({}): give 0 to {max} \
             (100 = 1%); nothing was sent",
            percent(u64::from(max))
        ),
    }
}

/// An address argument the contract refuses when zero.
fn check_not_zero(address: Address, flag: &str) -> Result<()> {
    if address.is_zero() {
        bail!("{flag} is the zero address: give a real account (nothing was sent)");
    }
    Ok(())
}

/// `250` bps → `2.50%`.
fn percent(bps: u64) -> String {
    format!("{}.{:02}%", bps / 100, bps % 100)
}

/// `86400` → `86400 s (1d)`: seconds, with the largest whole unit when there is one.
fn duration_text(seconds: u64) -> String {
    let unit = [(86_400, "d"), (3600, "h"), (60, "m")]
        .into_iter()
        .find(|(scale, _)| seconds >= *scale && seconds.is_multiple_of(*scale));
    match unit {
        Some((scale, name)) => format!("{seconds} s ({}{name})", seconds / scale),
        None => format!("{seconds} s"),
    }
}

async fn chain_id(provider: &impl Provider, rpc: &str) -> Result<u64> {
    provider.get_chain_id().await.with_context(|| {
        format!("asking {rpc} for its chain id: check --rpc-url (or LICEN_RPC_URL)")
    })
}

async fn has_code(provider: &impl Provider, address: Address, rpc: &str) -> Result<bool> {
    let code = provider
        .get_code_at(address)
        .await
        .with_context(|| format!("asking {rpc} for the code at {address}"))?;
    Ok(!code.is_empty())
}

pub(crate) async fn deploy(args: DeployArgs, json: bool) -> Result<()> {
    // Everything the constructor checks is checked here, before any gas is spent.
    let run_timeout = parse_run_timeout(&args.run_timeout)?;
    let fee_bps = check_fee(args.fee_bps, MAX_FEE_BPS)?;
    let signer = args.wallet.signer()?;
    let admin = args.admin.unwrap_or_else(|| signer.address());
    let treasury = args.treasury.unwrap_or(admin);
    check_not_zero(admin, "--admin")?;
    check_not_zero(treasury, "--treasury")?;

    let network = crate::network::current();
    let rpc_url = crate::network::rpc_url(args.rpc_url.as_deref());
    let connection = connect(rpc_url, Some(signer.clone()))?;
    let provider = connection.provider.clone();
    let chain_id = network.check_chain(&provider, rpc_url).await?;
    let record_file = deployments::record_path(&args.data_dir, chain_id);
    let previous = deployments::remembered(&args.data_dir, chain_id)?;
    if let Some(previous) = &previous {
        if has_code(&provider, previous.address, rpc_url).await? {
            if !args.replace {
                bail!(
                    "DataPolicy is already deployed on chain {chain_id} at {} (block {}), as \
                     recorded in {}; nothing was sent. To deploy another contract and record it \
                     instead, pass --replace (the old contract stays on the chain, with its \
                     datasets and escrow); to keep both recorded, use another --data-dir",
                    previous.address,
                    previous.block,
                    record_file.display()
                );
            }
        } else {
            eprintln!(
                "note: {} names {} on chain {chain_id}, but the chain has no contract there (was \
                 it reset?); deploying a new one",
                record_file.display(),
                previous.address
            );
        }
    }

    let params = DeployParams {
        admin,
        treasury,
        fee_bps,
        run_timeout,
    };
    let (_, deployment, receipt) = DataPolicyClient::deploy_with_receipt(connection, params)
        .await
        .with_context(|| format!("deploying DataPolicy over {}", rpc_url))?;
    let record = DeploymentRecord {
        chain_id,
        address: deployment.address,
        block: deployment.block,
        tx: receipt.tx_hash,
        admin,
        treasury,
        fee_bps,
        run_timeout,
    };
    deployments::remember(&args.data_dir, &record).with_context(|| {
        format!(
            "DataPolicy was deployed at {} (block {}, tx {}) but could not be recorded in {}: \
             note the address, fix the data dir, and pass --contract {} to other commands",
            record.address,
            record.block,
            record.tx,
            record_file.display(),
            record.address
        )
    })?;
    let replaced = previous.map(|p| p.address).filter(|a| *a != record.address);
    if json {
        output::print(&output::Deployed {
            chain_id,
            contract: record.address,
            admin,
            treasury,
            fee_bps,
            run_timeout_s: run_timeout,
            deployer: signer.address(),
            record_file,
            replaced,
            tx: Tx::from(&receipt),
        });
    } else {
        println!("deployed DataPolicy on chain {chain_id}");
        println!("  contract     {}", record.address);
        println!("  block        {}", record.block);
        println!("  tx           {}", record.tx);
        println!("  admin        {admin}");
        println!("  treasury     {treasury}");
        println!(
            "  protocol fee {fee_bps} bps ({})",
            percent(u64::from(fee_bps))
        );
        println!("  run timeout  {}", duration_text(run_timeout));
        println!("  recorded in  {}", record_file.display());
        if let Some(old) = replaced {
            println!("  replaces     {old} (still on the chain; no longer recorded)");
        }
    }
    Ok(())
}

pub(crate) async fn run(args: AdminArgs, json: bool) -> Result<()> {
    match args.command {
        AdminCommand::Show(args) => show(args, json).await,
        AdminCommand::RegisterOrchestrator(args) => register_orchestrator(args, json).await,
        AdminCommand::RotateOrchestratorKey(args) => rotate_orchestrator_key(args, json).await,
        AdminCommand::DeactivateOrchestrator(args) => deactivate_orchestrator(args, json).await,
        AdminCommand::SetFee(args) => set_fee(args, json).await,
        AdminCommand::TransferAdmin(args) => transfer_admin(args, json).await,
    }
}

/// Refuses a client whose address holds no contract on the chain (every later call would fail
/// with an undecodable answer).
async fn ensure_contract(client: &DataPolicyClient, chain: &ChainArgs) -> Result<()> {
    if !has_code(client.provider(), client.address(), chain.rpc_url()).await? {
        let id = chain_id(client.provider(), chain.rpc_url()).await?;
        bail!(
            "there is no contract at {} on chain {id} ({}): check --contract (or LICEN_CONTRACT) \
             and --rpc-url",
            client.address(),
            chain.rpc_url()
        );
    }
    Ok(())
}

/// A client signing with the wallet, checked to be the contract's admin; `can` says what only
/// the admin can do, for the refusal.
async fn as_admin(
    chain: &ChainArgs,
    wallet: &WalletArgs,
    can: &str,
) -> Result<(DataPolicyClient, Address)> {
    let (client, signer) = chain.signer(wallet).await?;
    ensure_contract(&client, chain).await?;
    let admin = client.admin().await?;
    if admin != signer.address() {
        bail!(
            "wallet {} is not the DataPolicy admin ({admin}): only the admin can {can}; run this \
             with the admin's wallet (--private-key, --keystore, LICEN_PRIVATE_KEY or \
             LICEN_KEYSTORE). Nothing was sent",
            signer.address()
        );
    }
    Ok((client, admin))
}

impl KeySource {
    /// The X25519 public key, checked as the contract checks it (not zero).
    fn public_key(&self) -> Result<[u8; 32]> {
        let key = match (&self.public_key, &self.key_file) {
            (Some(text), _) => crate::keyfile::parse_public_key(text)?.to_bytes(),
            (None, Some(path)) => crate::keyfile::read_secret_key(path)
                .with_context(|| {
                    format!(
                        "--key-file {} must be an X25519 secret key file as `licen keygen -o` \
                         writes it (or pass the public key with --public-key)",
                        path.display()
                    )
                })?
                .public_key()
                .to_bytes(),
            (None, None) => {
                bail!("give the orchestrator's key: --public-key HEX or --key-file FILE")
            }
        };
        if key == [0u8; 32] {
            bail!(
                "the orchestrator's public key is zero, which the contract refuses: give its real \
                 X25519 public key (nothing was sent)"
            );
        }
        Ok(key)
    }
}

async fn show(args: ShowArgs, json: bool) -> Result<()> {
    let client = args.chain.reader().await?;
    ensure_contract(&client, &args.chain).await?;
    let chain_id = chain_id(client.provider(), args.chain.rpc_url()).await?;
    let admin = client.admin().await?;
    let (fee_bps, treasury) = client.protocol_fee().await?;
    let max_fee_bps = client.max_fee_bps().await?;
    let run_timeout = client.run_timeout().await?;
    let orchestrator = match args.orchestrator {
        Some(orchestrator) => {
            let (key, active) = client.orchestrator_key(orchestrator).await?;
            Some(output::OrchestratorStatus {
                orchestrator,
                public_key: B256::from(key),
                active,
                registered: key != [0u8; 32],
            })
        }
        None => None,
    };
    if json {
        output::print(&output::AdminShown {
            chain_id,
            contract: client.address(),
            admin,
            treasury,
            fee_bps,
            max_fee_bps,
            run_timeout_s: run_timeout,
            orchestrator_registration: orchestrator,
        });
        return Ok(());
    }
    println!("DataPolicy {} on chain {chain_id}", client.address());
    println!("  admin        {admin}");
    println!("  treasury     {treasury}");
    println!(
        "  protocol fee {fee_bps} bps ({}; at most {max_fee_bps} bps)",
        percent(u64::from(fee_bps))
    );
    println!("  run timeout  {}", duration_text(run_timeout));
    if let Some(o) = orchestrator {
        let state = match (o.active, o.registered) {
            (true, _) => "active",
            (false, true) => "deactivated",
            (false, false) => "not registered",
        };
        println!("  orchestrator {}: {state}", o.orchestrator);
        if o.registered {
            println!("    public key {}", o.public_key);
        }
    }
    Ok(())
}

async fn register_orchestrator(args: OrchestratorKeyArgs, json: bool) -> Result<()> {
    let key = args.key.public_key()?;
    check_not_zero(args.orchestrator, "--orchestrator")?;
    let (client, _) = as_admin(&args.chain, &args.wallet, "register orchestrators").await?;
    let (current, active) = client.orchestrator_key(args.orchestrator).await?;
    if active {
        bail!(
            "orchestrator {} is already registered and active (key {}): nothing was sent; to \
             change its key use `licen admin rotate-orchestrator-key`",
            args.orchestrator,
            B256::from(current)
        );
    }
    let receipt = client
        .register_orchestrator(args.orchestrator, key)
        .await
        .with_context(|| format!("registering orchestrator {}", args.orchestrator))?;
    let previous = (current != [0u8; 32]).then(|| B256::from(current));
    report_key(
        json,
        "registered",
        &client,
        args.orchestrator,
        key,
        previous,
        &receipt,
    );
    Ok(())
}

async fn rotate_orchestrator_key(args: OrchestratorKeyArgs, json: bool) -> Result<()> {
    let key = args.key.public_key()?;
    let (client, _) = as_admin(&args.chain, &args.wallet, "rotate orchestrator keys").await?;
    let (current, active) = client.orchestrator_key(args.orchestrator).await?;
    if !active {
        bail!(
            "orchestrator {} is not active on {}: nothing was sent; register it (again) with \
             `licen admin register-orchestrator`",
            args.orchestrator,
            client.address()
        );
    }
    if current == key {
        bail!(
            "orchestrator {} already has the key {}: nothing was sent",
            args.orchestrator,
            B256::from(key)
        );
    }
    let receipt = client
        .rotate_orchestrator_key(args.orchestrator, key)
        .await
        .with_context(|| format!("rotating the key of orchestrator {}", args.orchestrator))?;
    report_key(
        json,
        "rotated the key of",
        &client,
        args.orchestrator,
        key,
        Some(B256::from(current)),
        &receipt,
    );
    Ok(())
}

/// What `register-orchestrator` and `rotate-orchestrator-key` did.
fn report_key(
    json: bool,
    did: &str,
    client: &DataPolicyClient,
    orchestrator: Address,
    key: [u8; 32],
    previous: Option<B256>,
    receipt: &licen_chain::TxReceipt,
) {
    if json {
        output::print(&output::OrchestratorKeySet {
            contract: client.address(),
            orchestrator,
            public_key: B256::from(key),
            previous_public_key: previous,
            active: true,
            tx: Tx::from(receipt),
        });
    } else {
        println!("{did} orchestrator {orchestrator} (active)");
        println!("  public key {}", B256::from(key));
        if let Some(previous) = previous {
            println!("  was        {previous}");
        }
        println!("  tx {} (block {})", receipt.tx_hash, receipt.block);
    }
}

async fn deactivate_orchestrator(args: OrchestratorArgs, json: bool) -> Result<()> {
    let (client, _) = as_admin(&args.chain, &args.wallet, "deactivate orchestrators").await?;
    let (_, active) = client.orchestrator_key(args.orchestrator).await?;
    if !active {
        bail!(
            "orchestrator {} is not active on {}: nothing to deactivate, nothing was sent",
            args.orchestrator,
            client.address()
        );
    }
    let receipt = client
        .deactivate_orchestrator(args.orchestrator)
        .await
        .with_context(|| format!("deactivating orchestrator {}", args.orchestrator))?;
    if json {
        output::print(&output::OrchestratorDeactivated {
            contract: client.address(),
            orchestrator: args.orchestrator,
            active: false,
            tx: Tx::from(&receipt),
        });
    } else {
        println!(
            "deactivated orchestrator {} (no new publications or requests name it; its granted \
             jobs stay with it)",
            args.orchestrator
        );
        println!("  tx {} (block {})", receipt.tx_hash, receipt.block);
    }
    Ok(())
}

async fn set_fee(args: SetFeeArgs, json: bool) -> Result<()> {
    let (client, _) = as_admin(&args.chain, &args.wallet, "set the protocol fee").await?;
    let (current_fee, current_treasury) = client.protocol_fee().await?;
    let fee_bps = match args.fee_bps {
        Some(fee) => check_fee(fee, client.max_fee_bps().await?)?,
        None => current_fee,
    };
    let treasury = args.treasury.unwrap_or(current_treasury);
    check_not_zero(treasury, "--treasury")?;
    if (fee_bps, treasury) == (current_fee, current_treasury) {
        bail!("the protocol fee is already {fee_bps} bps credited to {treasury}: nothing was sent");
    }
    let receipt = client
        .set_protocol_fee(fee_bps, treasury)
        .await
        .context("setting the protocol fee")?;
    if json {
        output::print(&output::FeeSet {
            contract: client.address(),
            fee_bps,
            treasury,
            previous_fee_bps: current_fee,
            previous_treasury: current_treasury,
            tx: Tx::from(&receipt),
        });
    } else {
        println!(
            "protocol fee {fee_bps} bps ({}) credited to {treasury}",
            percent(u64::from(fee_bps))
        );
        println!("  was {current_fee} bps credited to {current_treasury}");
        println!("  tx {} (block {})", receipt.tx_hash, receipt.block);
    }
    Ok(())
}

async fn transfer_admin(args: TransferAdminArgs, json: bool) -> Result<()> {
    check_not_zero(args.to, "--to")?;
    let (client, admin) = as_admin(&args.chain, &args.wallet, "transfer the admin role").await?;
    if args.to == admin {
        bail!("{} is already the admin: nothing was sent", args.to);
    }
    if !args.yes {
        crate::onchain::confirm(
            &format!(
                "Hand the admin role of DataPolicy {} to {}? This wallet cannot take it back.",
                client.address(),
                args.to
            ),
            &format!(
                "refusing to hand the admin role of {} to {} without confirmation: pass --yes \
                 (nothing was sent)",
                client.address(),
                args.to
            ),
            "cancelled: nothing was sent",
        )?;
    }
    let receipt = client
        .transfer_admin(args.to)
        .await
        .with_context(|| format!("handing the admin role to {}", args.to))?;
    if json {
        output::print(&output::AdminTransferred {
            contract: client.address(),
            admin: args.to,
            previous_admin: admin,
            tx: Tx::from(&receipt),
        });
    } else {
        println!(
            "the admin of DataPolicy {} is now {} (was {admin})",
            client.address(),
            args.to
        );
        println!("  tx {} (block {})", receipt.tx_hash, receipt.block);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_timeouts_and_fees_are_checked_as_the_contract_does() {
        assert_eq!(parse_run_timeout("1").unwrap(), 1);
        assert_eq!(parse_run_timeout("2h").unwrap(), 7200);
        assert_eq!(parse_run_timeout("4294967295").unwrap(), MAX_RUN_TIMEOUT);
        for bad in ["0", "0s", "4294967296", "49711d", "soon"] {
            assert!(parse_run_timeout(bad).is_err(), "{bad}");
        }
        assert_eq!(check_fee(1000, MAX_FEE_BPS).unwrap(), 1000);
        assert!(check_fee(1001, MAX_FEE_BPS).is_err());
        assert!(check_fee(70_000, MAX_FEE_BPS).is_err());
    }

    #[test]
    fn readable_numbers() {
        assert_eq!(percent(250), "2.50%");
        assert_eq!(percent(1000), "10.00%");
        assert_eq!(duration_text(86_400), "86400 s (1d)");
        assert_eq!(duration_text(5400), "5400 s (90m)");
        assert_eq!(duration_text(61), "61 s");
    }
}
