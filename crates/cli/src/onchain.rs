//! On-chain commands for both roles.
//!
//! Owner: `publish` (check → seal → root → upload → envelope to the orchestrator key read from
//! the chain → manifest → one transaction), `pause`, `resume`, `update-policy`.
//! Researcher: `request` (shows the exact escrow and asks before paying), `job`, `earnings`,
//! `withdraw`. Every policy check the contract makes is made here first, so a bad request fails
//! before any upload or fee, with the same sentence the contract's revert decodes to.

use crate::files::{ensure_absent, seal_to_file};
use crate::manifest::{DatasetManifest, MANIFEST_VERSION, scan_jsonl};
use crate::output::{self, PolicyTerms, Tx};
use crate::progress::{bytes_bar, storage_progress};
use crate::wallet::{ChainArgs, WalletArgs, result_keypair};
use alloy::primitives::{Address, B256};
use anyhow::{Context, Result, bail};
use clap::Args;
use licen_crypto::envelope::PublicKey;
use licen_crypto::stream::DEFAULT_SEGMENT_SIZE;
use licen_storage::indexer::{upload_bytes_to, upload_file_to};
use licen_types::{DatasetRoot, JobId, Policy, Purpose, PurposeSet, format_wei, parse_wei};
use std::io::{BufReader, IsTerminal};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Args)]
pub(crate) struct PolicyArgs {
    /// Price per epoch in native tokens (`0.01`) or wei (`5000wei`).
    #[arg(long, allow_hyphen_values = true)]
    price: String,
    /// Most epochs one run may request.
    #[arg(long, default_value_t = 3)]
    max_epochs: u32,
    /// Lifetime runs per researcher wallet (fully refunded runs do not count).
    #[arg(long, default_value_t = 1)]
    max_runs: u32,
    /// How long a paid grant stays startable: seconds, or `90m`, `2h`, `1d`.
    #[arg(long, default_value = "1h")]
    ttl: String,
    /// Allowed purposes, comma-separated (research, non-commercial-fine-tuning,
    /// commercial-fine-tuning, medical-research, evaluation, education, safety-research).
    #[arg(long, value_delimiter = ',', required = true)]
    purposes: Vec<Purpose>,
    /// No new requests after this: unix seconds, or a duration from now such as `30d`.
    #[arg(long)]
    expiry: Option<String>,
}

/// What `update-policy` changes: each flag given replaces that term, every other term keeps
/// its current on-chain value.
#[derive(Debug, Clone, Args)]
pub(crate) struct PolicyChangeArgs {
    /// New price per epoch in native tokens (`0.02`) or wei (`5000wei`).
    #[arg(long, allow_hyphen_values = true)]
    price: Option<String>,
    /// New most epochs one run may request.
    #[arg(long)]
    max_epochs: Option<u32>,
    /// New lifetime runs per researcher wallet.
    #[arg(long)]
    max_runs: Option<u32>,
    /// New grant lifetime: seconds, or `90m`, `2h`, `1d`.
    #[arg(long)]
    ttl: Option<String>,
    /// New allowed purposes, comma-separated (replaces the whole list).
    #[arg(long, value_delimiter = ',')]
    purposes: Option<Vec<Purpose>>,
    /// New end for new requests: unix seconds, a duration from now such as `30d`, or `none` to
    /// remove it.
    #[arg(long)]
    expiry: Option<String>,
}

impl PolicyChangeArgs {
    /// `current` with the given terms replaced, checked as the contract checks a policy.
    fn apply(&self, current: &Policy, now: u64) -> Result<Policy> {
        let mut policy = *current;
        let mut changed = false;
        if let Some(price) = &self.price {
            policy.price_per_epoch = parse_wei(price)?;
            changed = true;
        }
        if let Some(max_epochs) = self.max_epochs {
            policy.max_epochs_per_run = max_epochs;
            changed = true;
        }
        if let Some(max_runs) = self.max_runs {
            policy.max_runs_per_requester = max_runs;
            changed = true;
        }
        if let Some(ttl) = &self.ttl {
            policy.session_ttl = parse_ttl(ttl)?;
            changed = true;
        }
        if let Some(purposes) = &self.purposes {
            policy.allowed_purposes = purposes.iter().copied().collect::<PurposeSet>();
            changed = true;
        }
        if let Some(expiry) = &self.expiry {
            policy.expiry = match expiry.trim() {
                "none" => None,
                text => Some(parse_expiry(text, now)?),
            };
            changed = true;
        }
        if !changed {
            bail!(
                "nothing to change: give at least one of --price, --max-epochs, --max-runs, --ttl, \
                 --purposes or --expiry (the terms not given keep their current values)"
            );
        }
        policy.validate(now)?;
        Ok(policy)
    }
}

/// A policy's terms as (name, value) for people, in a fixed order.
fn policy_terms(policy: &Policy) -> [(&'static str, String); 6] {
    let purposes: Vec<&str> = policy.allowed_purposes.iter().map(Purpose::slug).collect();
    [
        ("price per epoch", format_wei(policy.price_per_epoch)),
        ("max epochs per run", policy.max_epochs_per_run.to_string()),
        (
            "runs per researcher",
            policy.max_runs_per_requester.to_string(),
        ),
        ("grant lifetime", format!("{} s", policy.session_ttl)),
        ("purposes", purposes.join(",")),
        (
            "no new requests after",
            policy.expiry.map_or_else(|| "no end".to_owned(), date),
        ),
    ]
}

#[derive(Debug, Args)]
pub(crate) struct PublishArgs {
    /// The JSONL dataset (stays on this machine; only ciphertext is uploaded).
    file: PathBuf,
    #[command(flatten)]
    policy: PolicyArgs,
    /// Dataset name (public, in the manifest).
    #[arg(long)]
    name: String,
    /// Dataset description (public).
    #[arg(long, default_value = "")]
    description: String,
    /// License text shown to researchers (public).
    #[arg(
        long,
        default_value = "LICEN standard training license: no redistribution of the data"
    )]
    license: String,
    /// Trainer measurements allowed to see the data (hex); empty = any attested LICEN trainer.
    #[arg(long, value_delimiter = ',')]
    allow_measurement: Vec<String>,
    /// The orchestrator that releases the key (default: the `licen dev` orchestrator).
    #[arg(long)]
    orchestrator: Option<Address>,
    #[command(flatten)]
    storage: crate::storage::StorageArgs,
    /// On 0G storage: pay the Flow contract for the three files (the sealed dataset, its key
    /// envelope and its manifest), in one transaction, before uploading them. The Flow must be
    /// on the same chain as the DataPolicy contract (`--rpc-url`). Publishing to the node of a
    /// `licen dev --flow` stack pays its Flow without this flag.
    #[command(flatten)]
    flow: crate::storage::FlowArgs,
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    wallet: WalletArgs,
}

#[derive(Debug, Args)]
pub(crate) struct DatasetArgs {
    /// Dataset root.
    root: DatasetRoot,
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    wallet: WalletArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ShowDatasetArgs {
    /// Dataset root.
    root: DatasetRoot,
    #[command(flatten)]
    chain: ChainArgs,
}

#[derive(Debug, Args)]
pub(crate) struct UpdatePolicyArgs {
    /// Dataset root.
    root: DatasetRoot,
    #[command(flatten)]
    change: PolicyChangeArgs,
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    wallet: WalletArgs,
}

#[derive(Debug, Args)]
pub(crate) struct RequestArgs {
    /// Dataset root.
    root: DatasetRoot,
    /// Epochs to train (escrow = price per epoch × epochs).
    #[arg(long)]
    epochs: u16,
    /// Declared purpose (must be allowed by the dataset's policy).
    #[arg(long)]
    purpose: Purpose,
    /// Pay without asking (scripts).
    #[arg(long)]
    yes: bool,
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    wallet: WalletArgs,
}

#[derive(Debug, Args)]
pub(crate) struct JobArgs {
    /// Job id.
    id: JobId,
    /// Follow the job's timeline (from the indexer) live, one line per transition, until it
    /// ends; with `--json`, one JSON object per line.
    #[arg(long)]
    watch: bool,
    /// The indexer's query API (for `--watch`).
    #[arg(
        long,
        env = "LICEN_INDEXER_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    indexer: String,
    #[command(flatten)]
    chain: ChainArgs,
}

#[derive(Debug, Args)]
pub(crate) struct DownloadArgs {
    /// Job id.
    id: JobId,
    /// Folder to write the opened result into (created; must not hold a result already).
    #[arg(short, long)]
    output: PathBuf,
    #[command(flatten)]
    storage: crate::storage::StorageArgs,
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    wallet: WalletArgs,
}

#[derive(Debug, Args)]
pub(crate) struct JobActionArgs {
    /// Job id.
    id: JobId,
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    wallet: WalletArgs,
}

#[derive(Debug, Args)]
pub(crate) struct AccountArgs {
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    wallet: WalletArgs,
}

impl PolicyArgs {
    fn to_policy(&self, now: u64) -> Result<Policy> {
        let policy = Policy {
            price_per_epoch: parse_wei(&self.price)?,
            max_epochs_per_run: self.max_epochs,
            max_runs_per_requester: self.max_runs,
            session_ttl: parse_ttl(&self.ttl)?,
            allowed_purposes: self.purposes.iter().copied().collect::<PurposeSet>(),
            expiry: self
                .expiry
                .as_deref()
                .map(|e| parse_expiry(e, now))
                .transpose()?,
        };
        policy.validate(now)?;
        Ok(policy)
    }
}

/// `3600`, `90s`, `90m`, `2h`, `1d` → seconds.
pub(crate) fn parse_duration(text: &str) -> Result<u64> {
    let t = text.trim();
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => bail!("`{text}` is not a duration: expected seconds or a number with s, m, h or d"),
    };
    let value: u64 = digits.parse().map_err(|_| {
        anyhow::anyhow!("`{text}` is not a duration: expected e.g. 3600, 90m, 2h, 1d")
    })?;
    value
        .checked_mul(scale)
        .ok_or_else(|| anyhow::anyhow!("`{text}` is too long"))
}

/// `--ttl`: a duration that fits the contract's 32-bit seconds.
fn parse_ttl(text: &str) -> Result<u32> {
    u32::try_from(parse_duration(text)?)
        .map_err(|_| anyhow::anyhow!("--ttl {text} is too long: at most ~136 years"))
}

/// Unix seconds, or a duration from `now` (anything with a unit).
fn parse_expiry(text: &str, now: u64) -> Result<u64> {
    if text.chars().all(|c| c.is_ascii_digit()) {
        return text.parse().context("expiry is not a unix time");
    }
    Ok(now + parse_duration(text)?)
}

/// A unix time for people: `Tue, 01 Dec 2026 16:02:52 GMT (unix 1796140972)`.
pub(crate) fn date(unix: u64) -> String {
    // httpdate formats years up to 9999 (and panics beyond); an expiry may be further out.
    const LAST_FORMATTABLE: u64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    if unix > LAST_FORMATTABLE {
        return format!("unix {unix}");
    }
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix);
    format!("{} (unix {unix})", httpdate::fmt_http_date(at))
}

/// "1 epoch", "2 epochs".
pub(crate) fn epochs_text(n: u64) -> String {
    if n == 1 {
        "1 epoch".to_owned()
    } else {
        format!("{n} epochs")
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Gas a `publish` is checked against before anything is uploaded: above what it takes (about
/// 146k in `contracts/.gas-snapshot`), with room for a long policy and storage slot prices.
const PUBLISH_GAS: u128 = 250_000;

pub(crate) async fn publish(args: PublishArgs, json: bool) -> Result<()> {
    // Everything that can be refused is checked before any upload.
    if args.name.trim().is_empty() {
        bail!("--name is empty: give the dataset a name researchers will see in the marketplace");
    }
    let policy = args.policy.to_policy(now())?;
    let (client, signer) = args.chain.signer(&args.wallet).await?;
    let orchestrator = args
        .orchestrator
        .or_else(|| args.chain.dev_orchestrator(client.address()))
        .context(
            "no orchestrator given: pass --orchestrator ADDRESS (the `licen dev` default is only \
             for the contract `licen dev` deployed)",
        )?;
    let (key, active) = client.orchestrator_key(orchestrator).await?;
    if !active {
        bail!(
            "orchestrator {orchestrator} is not registered or was deactivated on this contract: choose an active orchestrator"
        );
    }
    // Publishing costs gas: a wallet that cannot pay would only find out after the upload.
    let holds = client.balance(signer.address()).await?;
    let needs = PUBLISH_GAS.saturating_mul(client.gas_price().await?);
    if holds < needs {
        bail!(
            "publishing costs about {} in gas, but the wallet {} holds {}: add funds to it, then \
             try again (nothing was uploaded)",
            format_wei(needs),
            signer.address(),
            format_wei(holds)
        );
    }
    let recipient = PublicKey::from_bytes(&key);
    let input = std::fs::File::open(&args.file)
        .with_context(|| format!("opening {}", args.file.display()))?;
    let size = input.metadata()?.len();
    let bar = bytes_bar("checking", size, json);
    let summary = scan_jsonl(BufReader::new(bar.wrap_read(input)))
        .with_context(|| format!("{} is not a valid JSONL dataset", args.file.display()))?;
    bar.finish_and_clear();
    for m in &args.allow_measurement {
        if hex::decode(m.trim_start_matches("0x")).map_or(true, |b| b.len() != 32) {
            bail!("--allow-measurement {m} is not a measurement: expected 64 hex digits");
        }
    }

    // Seal into a private scratch file (ciphertext only), upload, then remove it.
    let scratch_dir = args.chain.data_dir.join("tmp");
    std::fs::create_dir_all(&scratch_dir)?;
    let scratch = scratch_dir.join(format!("publish-{}.sealed", std::process::id()));
    ensure_absent(&scratch)?;
    let outcome = async {
        let input = std::fs::File::open(&args.file)?;
        let (tree, envelope) = seal_to_file(
            input,
            &scratch,
            &recipient,
            DEFAULT_SEGMENT_SIZE,
            size,
            json,
        )?;
        let nodes = args
            .storage
            .open()?
            .upload_nodes()
            .await
            .context("choosing where to store the dataset (nothing was paid or uploaded)")?;
        let manifest = DatasetManifest {
            allowed_trainer_measurements: args.allow_measurement.clone(),
            byte_size: summary.bytes,
            description: args.description.clone(),
            license: args.license.clone(),
            name: args.name.clone(),
            row_count: summary.rows,
            schema: summary.schema,
            token_estimate: summary.bytes / 4,
            version: MANIFEST_VERSION,
        };
        let manifest_bytes = manifest.to_canonical_json();
        // On 0G: every file is paid for before any is uploaded, in one transaction, all at once
        // checked against the wallet (fees plus the publish gas).
        let mut paid = Vec::new();
        if let Some(flow) = args
            .flow
            .client(args.chain.rpc_url(), || Ok(signer.clone()), &nodes)
            .await?
        {
            let envelope_tree = licen_storage::merkle::FileTree::from_bytes(envelope.as_bytes());
            let manifest_tree = licen_storage::merkle::FileTree::from_bytes(&manifest_bytes);
            let trees = [&tree, &envelope_tree, &manifest_tree];
            // One price read serves the three files.
            let (_, price) = flow.price_per_sector().await?;
            let mut fees = 0u128;
            for t in trees {
                let submission = licen_storage::zerog::FlowSubmission::from_tree(t, Vec::new())?;
                fees =
                    fees.saturating_add(u128::try_from(submission.fee(price)).unwrap_or(u128::MAX));
            }
            let holds = client.balance(signer.address()).await?;
            if holds < fees.saturating_add(needs) {
                bail!(
                    "storing the dataset on 0G costs {} in Flow fees plus about {} in gas, but the \
                     wallet {} holds {}: add funds to it, then try again (nothing was paid or \
                     uploaded)",
                    format_wei(fees),
                    format_wei(needs),
                    signer.address(),
                    format_wei(holds)
                );
            }
            // One transaction for the three (batchSubmit).
            paid = crate::storage::pay_for_files(&nodes, &flow, &trees, json).await?;
        }
        let bar = bytes_bar("uploading", tree.layout().size(), json);
        let uploaded = upload_file_to(
            &nodes,
            &scratch,
            &tree,
            licen_storage::client::FileReads::Cached,
            Some(storage_progress(&bar)),
        )
        .await
        .with_context(|| {
            format!(
                "uploading the sealed dataset to {}",
                args.storage.describe()
            )
        })?;
        bar.finish_and_clear();
        let envelope_root = upload_bytes_to(&nodes, envelope.as_bytes(), None)
            .await
            .context("uploading the key envelope")?
            .root;
        let manifest_root = upload_bytes_to(&nodes, &manifest_bytes, None)
            .await
            .context("uploading the manifest")?
            .root;
        let dataset = DatasetRoot(uploaded.root);
        let receipt = client
            .publish(dataset, orchestrator, envelope_root, manifest_root, &policy)
            .await?;
        anyhow::Ok((
            dataset,
            envelope_root,
            manifest_root,
            receipt,
            uploaded.size,
            paid,
        ))
    }
    .await;
    let _ = std::fs::remove_file(&scratch);
    let (dataset, envelope_root, manifest_root, receipt, sealed_bytes, paid) = outcome?;
    if json {
        output::print(&output::Published {
            dataset_root: dataset.0,
            envelope_root,
            manifest_root,
            owner: signer.address(),
            orchestrator,
            policy_hash: policy.hash(),
            policy: PolicyTerms::from(&policy),
            rows: summary.rows,
            sealed_bytes,
            flow_submissions: paid.iter().map(output::FlowSubmission::from).collect(),
            tx: Tx::from(&receipt),
        });
    } else {
        println!("published {}", dataset);
        println!(
            "  rows {} ({}), sealed {} bytes",
            summary.rows,
            summary.schema.name(),
            sealed_bytes
        );
        for (name, value) in policy_terms(&policy) {
            println!("  {name}: {value}");
        }
        println!("  tx {} (block {})", receipt.tx_hash, receipt.block);
    }
    Ok(())
}

/// Asks a person at the terminal `question` (`[y/N]`, on stderr); refuses with `unattended`
/// when nobody is there to ask (a script must say `--yes`), and with `cancelled` unless the
/// answer is yes.
pub(crate) fn confirm(question: &str, unattended: &str, cancelled: &str) -> Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!("{unattended}");
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if !matches!(answer.trim(), "y" | "Y" | "yes") {
        bail!("{cancelled}");
    }
    Ok(())
}

pub(crate) async fn pause(args: DatasetArgs, json: bool) -> Result<()> {
    let (client, _) = args.chain.signer(&args.wallet).await?;
    let (_, _, paused, _) = client.dataset_info(args.root).await?;
    if paused {
        bail!(
            "dataset {} is already paused: nothing was sent (`licen resume {}` reopens it)",
            args.root,
            args.root
        );
    }
    let receipt = client.pause(args.root).await?;
    report_pause(json, args.root, true, &receipt);
    Ok(())
}

pub(crate) async fn resume(args: DatasetArgs, json: bool) -> Result<()> {
    let (client, _) = args.chain.signer(&args.wallet).await?;
    let (_, _, paused, _) = client.dataset_info(args.root).await?;
    if !paused {
        bail!(
            "dataset {} is not paused: it takes requests already; nothing was sent",
            args.root
        );
    }
    let receipt = client.resume(args.root).await?;
    report_pause(json, args.root, false, &receipt);
    Ok(())
}

pub(crate) async fn update_policy(args: UpdatePolicyArgs, json: bool) -> Result<()> {
    let (client, _) = args.chain.signer(&args.wallet).await?;
    // The terms not given keep their current values: read them first.
    let (_, _, _, current) = client.dataset_info(args.root).await?;
    let policy = args.change.apply(&current, now())?;
    if policy == current {
        bail!(
            "the policy of {} already has these terms: nothing was sent",
            args.root
        );
    }
    let receipt = client.update_policy(args.root, &policy).await?;
    if json {
        output::print(&output::PolicyUpdated {
            dataset_root: args.root.0,
            policy: PolicyTerms::from(&policy),
            previous_policy: PolicyTerms::from(&current),
            policy_hash: policy.hash(),
            tx: Tx::from(&receipt),
        });
        return Ok(());
    }
    println!(
        "updated the policy of {} (new requests get it; running jobs keep theirs)",
        args.root
    );
    for ((name, before), (_, after)) in policy_terms(&current)
        .into_iter()
        .zip(policy_terms(&policy))
    {
        if before == after {
            println!("  {name}: {after}");
        } else {
            println!("  {name}: {before} → {after}");
        }
    }
    println!("  tx {} (block {})", receipt.tx_hash, receipt.block);
    Ok(())
}

pub(crate) async fn request(args: RequestArgs, json: bool) -> Result<()> {
    let (client, signer) = args.chain.signer(&args.wallet).await?;
    let (_, _, paused, policy) = client.dataset_info(args.root).await?;
    if paused {
        bail!(
            "dataset {} is paused by its owner and takes no requests now",
            args.root
        );
    }
    let escrow = policy.escrow_for(u32::from(args.epochs), args.purpose)?;
    // The contract judges expiry by block time, so the check here does too.
    if let Some(expiry) = policy.expiry {
        // The next block's time is at least the later of the two clocks.
        let chain_now = chain_time(&client).await?.max(now());
        if chain_now >= expiry {
            bail!(
                "dataset {} expired on {} and takes no new requests",
                args.root,
                date(expiry)
            );
        }
    }
    let used = client.runs_used(args.root, signer.address()).await?;
    if used >= policy.max_runs_per_requester {
        bail!(
            "{} has used all the runs dataset {} allows per requester ({})",
            signer.address(),
            args.root,
            policy.max_runs_per_requester
        );
    }
    let holds = client.balance(signer.address()).await?;
    if holds < escrow {
        bail!(
            "this request escrows {} plus gas, but the wallet {} holds {}: choose fewer epochs or \
             add funds to the wallet (nothing was paid)",
            format_wei(escrow),
            signer.address(),
            format_wei(holds)
        );
    }
    if !args.yes {
        confirm(
            &format!(
                "Request {} of {} for `{}`: pay {} (native token) into escrow?",
                epochs_text(u64::from(args.epochs)),
                args.root,
                args.purpose,
                format_wei(escrow)
            ),
            &format!(
                "refusing to pay {} without confirmation: pass --yes to request from a script",
                format_wei(escrow)
            ),
            "cancelled: nothing was paid",
        )?;
    }
    let (_, result_key) = result_keypair(&signer)?;
    let (job, receipt) = client
        .request_access(
            args.root,
            args.epochs,
            args.purpose,
            result_key.to_bytes(),
            escrow,
        )
        .await?;
    if json {
        output::print(&output::Requested {
            job_id: job.0,
            dataset_root: args.root.0,
            epochs: u64::from(args.epochs),
            purpose: args.purpose.slug(),
            escrow_wei: output::wei(escrow),
            result_key: B256::from(result_key.to_bytes()),
            tx: Tx::from(&receipt),
        });
    } else {
        println!(
            "job {job}: {}, escrow {} paid",
            epochs_text(u64::from(args.epochs)),
            format_wei(escrow)
        );
        println!("  tx {} (block {})", receipt.tx_hash, receipt.block);
    }
    Ok(())
}

/// Takes back the escrow of a job the orchestrator did not see through, in full: a grant not
/// started by its deadline is expired (anyone may), a run past its run deadline is reclaimed (its
/// researcher only). Anything else is refused before a transaction, saying when it becomes possible.
pub(crate) async fn reclaim(args: JobActionArgs, json: bool) -> Result<()> {
    use licen_types::JobState;
    let (client, signer) = args.chain.signer(&args.wallet).await?;
    let id = args.id;
    let job = client.job(id).await?;
    // The next block's time: the later of the latest block's and ours (an idle dev chain's last
    // block can be hours old). If the chain disagrees after all, its refusal is decoded.
    let clock = chain_time(&client).await?.max(now());
    let wait = |what: &str| {
        anyhow::anyhow!(
            "job {id} {what} until {} ({} s from now): its escrow can be taken back after that",
            date(job.deadline),
            job.deadline.saturating_sub(clock)
        )
    };
    let (action, receipt) = match job.state {
        JobState::None => bail!("there is no job {id} on this contract"),
        JobState::Granted if clock < job.deadline => return Err(wait("may still be started")),
        JobState::Granted => ("expired", client.expire(id).await?),
        JobState::Running if job.researcher != signer.address() => bail!(
            "only the researcher who requested job {id} ({}) can reclaim its escrow; this wallet is {}",
            job.researcher,
            signer.address()
        ),
        JobState::Running if clock < job.deadline => {
            return Err(wait("is running: it may still be settled"));
        }
        JobState::Running => ("reclaimed", client.reclaim(id).await?),
        settled => bail!(
            "job {id} is {settled}: its escrow was already settled, there is nothing to take back"
        ),
    };
    if json {
        output::print(&output::Reclaimed {
            job_id: id.0,
            state: action,
            refund_wei: output::wei(job.escrow()),
            researcher: job.researcher,
            tx: Tx::from(&receipt),
        });
    } else {
        println!(
            "job {id} {action}: {} sent back to the researcher's wallet {} (directly: it is not \
             added to `licen earnings`)",
            format_wei(job.escrow()),
            job.researcher
        );
        println!("  tx {} (block {})", receipt.tx_hash, receipt.block);
    }
    Ok(())
}

/// The latest block's timestamp (what the contract calls `block.timestamp`).
async fn chain_time(client: &licen_chain::DataPolicyClient) -> Result<u64> {
    use alloy::providers::Provider;
    let block = client
        .provider()
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .context("asking the chain for its latest block")?
        .context("the chain has no latest block")?;
    Ok(block.header.timestamp)
}

pub(crate) async fn job(args: JobArgs, json: bool) -> Result<()> {
    let client = args.chain.reader().await?;
    let job = client.job(args.id).await?;
    if job.state == licen_types::JobState::None {
        bail!("there is no job {} on this contract", args.id);
    }
    if args.watch {
        return crate::market::watch_job(args.id.0, &args.indexer, json).await;
    }
    let dataset = client.job_dataset_root(args.id).await?;
    let completion = if job.state == licen_types::JobState::Completed {
        client.job_completion(args.id, 0).await?
    } else {
        None
    };
    // The contract keeps one deadline per job; what it bounds depends on the state.
    let deadline = match job.state {
        licen_types::JobState::Granted => "must start by",
        licen_types::JobState::Running => "must settle by (then its researcher may reclaim it)",
        _ => "deadline was",
    };
    if json {
        output::print(&output::Job::from_chain(
            args.id,
            &job,
            dataset,
            completion.as_ref(),
        ));
    } else {
        println!("job {}  {}", args.id, job.state);
        println!("  dataset    {dataset}");
        println!("  researcher {}", job.researcher);
        println!(
            "  paid for   {} at {} = escrow {}",
            epochs_text(u64::from(job.epochs)),
            format_wei(job.price_per_epoch),
            format_wei(job.escrow())
        );
        if let Some(c) = &completion {
            println!(
                "  trained    {}: royalty {} = {} to the owner + {} protocol fee; {} refunded",
                epochs_text(u64::from(c.actual_epochs)),
                format_wei(c.royalty),
                format_wei(c.royalty.saturating_sub(c.fee)),
                format_wei(c.fee),
                format_wei(c.refund)
            );
            println!(
                "  result     {} (`licen download {}`)",
                c.result_hash, args.id
            );
        }
        println!("  {deadline} {}", date(job.deadline));
    }
    Ok(())
}

/// A dataset's on-chain state: owner, orchestrator, open/paused/closed and its policy.
pub(crate) async fn dataset(args: ShowDatasetArgs, json: bool) -> Result<()> {
    let client = args.chain.reader().await?;
    // An unknown root is refused by the contract (`DatasetNotFound`, decoded to a sentence).
    let (owner, orchestrator, paused, policy) = client.dataset_info(args.root).await?;
    // Expiry is judged as `request` judges it: by the later of the chain's and our clock.
    let now = chain_time(&client).await?.max(now());
    let shown = output::Dataset::from_chain(
        args.root,
        owner,
        orchestrator,
        paused,
        &policy,
        policy.hash(),
        now,
    );
    if json {
        output::print(&shown);
    } else {
        println!("dataset {}  {}", args.root, shown.state);
        println!("  owner        {owner}");
        println!("  orchestrator {orchestrator}");
        for (name, value) in policy_terms(&policy) {
            println!("  {name}: {value}");
        }
    }
    Ok(())
}

pub(crate) async fn earnings(args: AccountArgs, json: bool) -> Result<()> {
    let account = args.wallet.address()?;
    let amount = args.chain.reader().await?.withdrawable(account).await?;
    if json {
        output::print(&output::Earnings {
            account,
            withdrawable_wei: output::wei(amount),
        });
    } else {
        println!("{account} can withdraw {}", format_wei(amount));
    }
    Ok(())
}

pub(crate) async fn withdraw(args: AccountArgs, json: bool) -> Result<()> {
    let (client, signer) = args.chain.signer(&args.wallet).await?;
    let (amount, receipt) = client.withdraw().await?;
    if json {
        output::print(&output::Withdrawn {
            account: signer.address(),
            withdrawn_wei: output::wei(amount),
            tx: Tx::from(&receipt),
        });
    } else {
        println!("withdrew {} to {}", format_wei(amount), signer.address());
        println!("  tx {} (block {})", receipt.tx_hash, receipt.block);
    }
    Ok(())
}

/// Researcher: fetch a completed job's sealed result and open it with the wallet-derived key.
pub(crate) async fn download(args: DownloadArgs, json: bool) -> Result<()> {
    let (client, signer) = args.chain.signer(&args.wallet).await?;
    let job = client.job(args.id).await?;
    match job.state {
        licen_types::JobState::None => bail!("there is no job {} on this contract", args.id),
        licen_types::JobState::Completed => {}
        state => bail!(
            "job {} is {state}: only a completed job has a result to download",
            args.id
        ),
    }
    if job.researcher != signer.address() {
        bail!(
            "job {} was requested by {}, not by this wallet ({}): only its researcher's key opens the result",
            args.id,
            job.researcher,
            signer.address()
        );
    }
    let dataset = client.job_dataset_root(args.id).await?;
    let completion = client.job_completion(args.id, 0).await?.with_context(|| {
        format!(
            "job {} is completed but its JobCompleted event was not found",
            args.id
        )
    })?;
    let result_root = completion.result_hash;
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;
    let sealed = args.output.join(".result.sealed");
    ensure_absent(&sealed)?;
    let storage = args.storage.open()?;
    let bar = bytes_bar("downloading", 0, json);
    let downloaded = storage
        .download_to_path(
            result_root,
            &sealed,
            Default::default(),
            Some(storage_progress(&bar)),
        )
        .await
        .with_context(|| {
            format!(
                "downloading result {result_root} from {}",
                args.storage.describe()
            )
        });
    bar.finish_and_clear();
    let outcome = downloaded.and_then(|_| {
        let (secret, _) = result_keypair(&signer)?;
        let input = BufReader::new(std::fs::File::open(&sealed)?);
        let mut reader = licen_crypto::result::begin_open_result(
            input,
            &secret,
            args.id.to_be_bytes32(),
            *dataset.as_bytes(),
        )
        .context("the result does not open with this wallet's result key")?;
        // Stream into a partial file (constant memory), then name it by what it holds: the
        // simulated trainer returns a JSON training report; LoRA adapters arrive as bytes.
        let partial = args.output.join(".result.partial");
        let mut out = std::io::BufWriter::new(std::fs::File::create(&partial)?);
        let copied = std::io::copy(&mut reader, &mut out)
            .map_err(licen_crypto::Error::from)
            .context("the sealed result failed verification");
        let written = match copied.and_then(|n| {
            Ok(out
                .into_inner()
                .map_err(|e| e.into_error())?
                .sync_all()
                .map(|()| n)?)
        }) {
            Ok(n) => n,
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                return Err(e);
            }
        };
        let mut head = [0u8; 512];
        let n = read_head(&partial, &mut head)?;
        let is_json = n >= 1 && head[0] == b'{';
        // The lora trainer delivers a ustar archive of the PEFT adapter and its report.
        let is_tar = n == 512 && &head[257..262] == b"ustar";
        let path = args.output.join(if is_json {
            "result.json"
        } else if is_tar {
            "result.tar"
        } else {
            "result.bin"
        });
        if let Err(e) = ensure_absent(&path) {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
        std::fs::rename(&partial, &path)?;
        let unpacked = if is_tar {
            unpack_adapter(&path, &args.output)?
        } else {
            Vec::new()
        };
        anyhow::Ok((path, written, unpacked))
    });
    let _ = std::fs::remove_file(&sealed);
    let (path, bytes, unpacked) = outcome?;
    if json {
        output::print(&output::Downloaded {
            job_id: args.id.0,
            result_root,
            actual_epochs: u64::from(completion.actual_epochs),
            file: path,
            size_bytes: bytes,
            unpacked,
        });
    } else {
        println!(
            "job {}: {} trained; result opened into {} ({bytes} bytes)",
            args.id,
            epochs_text(u64::from(completion.actual_epochs)),
            path.display()
        );
        for file in &unpacked {
            println!("  unpacked {}", file.display());
        }
    }
    Ok(())
}

fn read_head(path: &Path, head: &mut [u8]) -> Result<usize> {
    let mut file = std::fs::File::open(path)?;
    let mut n = 0;
    while n < head.len() {
        match std::io::Read::read(&mut file, &mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Unpacks the adapter archive's plain files (`adapter_config.json`,
/// `adapter_model.safetensors`, `training_report.json`) into `dir`, refusing any entry that is
/// not a regular file with a bare name, and never overwriting.
fn unpack_adapter(archive: &Path, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut tar = tar::Archive::new(std::fs::File::open(archive)?);
    let mut written = Vec::new();
    for entry in tar.entries().context("reading the result archive")? {
        let mut entry = entry.context("reading the result archive")?;
        let name = entry.path()?.into_owned();
        let bare = name.file_name().is_some_and(|f| Path::new(f) == name);
        if entry.header().entry_type() != tar::EntryType::Regular || !bare {
            bail!(
                "the result archive holds {} which is not a plain file name; it was left packed in {}",
                name.display(),
                archive.display()
            );
        }
        let target = dir.join(&name);
        ensure_absent(&target)?;
        let partial = dir.join(format!(".{}.partial", name.display()));
        let mut out = std::fs::File::create(&partial)?;
        std::io::copy(&mut entry, &mut out)?;
        out.sync_all()?;
        std::fs::rename(&partial, &target)?;
        written.push(target);
    }
    Ok(written)
}

/// What `pause` and `resume` did.
fn report_pause(json: bool, root: DatasetRoot, paused: bool, receipt: &licen_chain::TxReceipt) {
    if json {
        output::print(&output::PauseChanged {
            dataset_root: root.0,
            paused,
            tx: Tx::from(receipt),
        });
    } else {
        let what = if paused { "paused" } else { "resumed" };
        println!(
            "{what} {root}\n  tx {} (block {})",
            receipt.tx_hash, receipt.block
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_readable_and_never_panic() {
        assert_eq!(date(0), "Thu, 01 Jan 1970 00:00:00 GMT (unix 0)");
        assert_eq!(date(300_000_000_000), "unix 300000000000");
        assert_eq!(date(u64::MAX), format!("unix {}", u64::MAX));
    }

    #[test]
    fn durations() {
        for (text, secs) in [
            ("3600", 3600),
            ("90s", 90),
            ("90m", 5400),
            ("2h", 7200),
            ("1d", 86_400),
        ] {
            assert_eq!(parse_duration(text).unwrap(), secs, "{text}");
        }
        for bad in ["", "h", "1w", "-5", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_expiry("30d", 100).unwrap(), 100 + 30 * 86_400);
        assert_eq!(parse_expiry("1700000000", 100).unwrap(), 1_700_000_000);
    }
}
