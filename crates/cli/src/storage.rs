//! Storage commands: `put`, `get` against a zgs endpoint (the local node or a 0G node), and
//! `storage-node` to run the local node.

use crate::files::ensure_absent;
use crate::progress::{bytes_bar, storage_progress};
use anyhow::{Context, Result};
use clap::Args;
use licen_storage::client::DownloadOptions;
use licen_storage::client::StorageClient;
use licen_storage::merkle::FileTree;
use licen_storage::node::{self, DEFAULT_MAX_BODY_BYTES, NodeConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

/// The local storage node's default endpoint (0G's zgs RPC port).
pub(crate) const DEFAULT_STORAGE_URL: &str = "http://127.0.0.1:5678";

#[derive(Debug, Args)]
pub(crate) struct PutArgs {
    /// File to upload (normally a sealed file: storage only ever holds ciphertext).
    file: PathBuf,
    /// zgs JSON-RPC endpoint.
    #[arg(long, env = "LICEN_STORAGE_URL", default_value = DEFAULT_STORAGE_URL)]
    storage: String,
}

#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    /// 0G root of the file.
    root: String,
    /// Where to write it (written as `<output>.partial`, renamed once every segment verified).
    #[arg(short, long)]
    output: PathBuf,
    /// zgs JSON-RPC endpoint.
    #[arg(long, env = "LICEN_STORAGE_URL", default_value = DEFAULT_STORAGE_URL)]
    storage: String,
}

#[derive(Debug, Args)]
pub(crate) struct StorageNodeArgs {
    /// Folder holding stored files.
    #[arg(long, env = "LICEN_STORAGE_DATA_DIR", default_value = ".licen/storage")]
    data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:5678")]
    listen: SocketAddr,
    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
}

/// Whether `path` starts like text (valid UTF-8 in its first 64 KiB) rather than a sealed stream
/// (its magic) or other binary data such as a key envelope.
fn looks_like_plaintext(path: &std::path::Path) -> Result<bool> {
    use std::io::Read as _;
    let mut head = Vec::with_capacity(64 * 1024);
    std::fs::File::open(path)
        .with_context(|| format!("opening {}", path.display()))?
        .take(64 * 1024)
        .read_to_end(&mut head)
        .with_context(|| format!("reading {}", path.display()))?;
    if head.is_empty() || head.starts_with(&licen_crypto::stream::MAGIC) {
        return Ok(false);
    }
    // A cut at 64 KiB may split a UTF-8 sequence: judge what comes before it.
    Ok(match std::str::from_utf8(&head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && e.valid_up_to() > 0,
    })
}

pub(crate) async fn put(args: PutArgs, json: bool) -> Result<()> {
    let client = StorageClient::new(&args.storage)?;
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("opening {}", args.file.display()))?;
    let size = file.metadata()?.len();
    if looks_like_plaintext(&args.file)? && !json {
        eprintln!(
            "warning: {} looks like plain text, not a LICEN sealed stream: it is stored as is and \
             anyone who has its root can read it. Seal private data first (`licen seal`); public \
             files such as a dataset manifest are fine.",
            args.file.display()
        );
    }

    // Pass 1: the Merkle tree (every segment proof needs the root before the first upload).
    let started = Instant::now();
    let bar = bytes_bar("hashing", size, json);
    let hashing_bar = bar.clone();
    let tree = tokio::task::spawn_blocking(move || {
        FileTree::from_reader(
            hashing_bar.wrap_read(std::io::BufReader::with_capacity(1 << 20, file)),
        )
    })
    .await?
    .with_context(|| format!("reading {}", args.file.display()))?;
    let hash_seconds = started.elapsed().as_secs_f64();

    // Pass 2: the segments, with proofs, skipping what the node already holds.
    let started = Instant::now();
    let uploaded = client
        .upload_file_with_tree(&args.file, &tree, Some(storage_progress(&bar)))
        .await
        .with_context(|| format!("uploading {} to {}", args.file.display(), args.storage))?;
    let upload_seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    if json {
        crate::output::print_line(&crate::output::Put {
            root: uploaded.root,
            size_bytes: uploaded.size,
            segments: uploaded.segments,
            sent_segments: uploaded.sent_segments,
            skipped_segments: uploaded.skipped_segments,
            finalized: uploaded.finalized,
            hash_s: hash_seconds,
            upload_s: upload_seconds,
            peak_rss_bytes: crate::files::peak_rss_bytes(),
        });
    } else {
        println!("{}", uploaded.root);
        let segments = |n: u64| {
            if n == 1 {
                "1 segment".to_owned()
            } else {
                format!("{n} segments")
            }
        };
        if uploaded.sent_segments == 0 {
            eprintln!(
                "already stored: {} bytes in {}; nothing was sent",
                uploaded.size,
                segments(uploaded.segments)
            );
        } else {
            eprintln!(
                "uploaded {} bytes in {} ({} sent, {} already stored)",
                uploaded.size,
                segments(uploaded.segments),
                uploaded.sent_segments,
                uploaded.skipped_segments
            );
        }
    }
    Ok(())
}

pub(crate) async fn get(args: GetArgs, json: bool) -> Result<()> {
    ensure_absent(&args.output)?;
    let root = args.root.parse().map_err(|_| {
        anyhow::anyhow!(
            "`{}` is not a root: expected 0x followed by 64 hex digits",
            args.root
        )
    })?;
    let client = StorageClient::new(&args.storage)?;
    let info = client
        .file_info(root)
        .await
        .with_context(|| format!("asking {} about {root}", args.storage))?
        .with_context(|| format!("{} does not hold a file with root {root}", args.storage))?;
    let bar = bytes_bar("downloading", info.tx.size, json);
    let done = client
        .download_to_path(
            root,
            &args.output,
            DownloadOptions::default(),
            Some(storage_progress(&bar)),
        )
        .await
        .with_context(|| format!("downloading {root} from {}", args.storage))?;
    bar.finish_and_clear();
    if json {
        crate::output::print_line(&crate::output::Got {
            root: done.root,
            size_bytes: done.size,
            output: args.output,
            node: done.node,
            peak_rss_bytes: crate::files::peak_rss_bytes(),
        });
    } else {
        eprintln!("verified {} bytes against {root}", done.size);
        println!("{}", args.output.display());
    }
    Ok(())
}

pub(crate) async fn storage_node(args: StorageNodeArgs, json: bool) -> Result<()> {
    let running = node::start(NodeConfig {
        data_dir: args.data_dir,
        listen: args.listen,
        max_body_bytes: args.max_body_bytes,
        full_rehash: false,
    })
    .await
    .context("starting the storage node")?;
    if json {
        crate::output::print_line(&crate::output::StorageNodeStarted {
            storage_url: running.url(),
        });
    } else {
        println!("listening on {}", running.url());
    }
    tokio::signal::ctrl_c().await?;
    running.shutdown().await?;
    Ok(())
}

#[derive(Debug, Args)]
pub(crate) struct ComputeNodeArgs {
    /// Folder for the node's insecure dev attestation key and per-job work dirs.
    #[arg(long, env = "LICEN_COMPUTE_DATA_DIR", default_value = ".licen/compute")]
    data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7878")]
    listen: SocketAddr,
    /// zgs storage endpoint the node downloads datasets from and uploads results to.
    #[arg(long, env = "LICEN_STORAGE_URL", default_value = DEFAULT_STORAGE_URL)]
    storage: String,
    /// Which trainer runs the jobs (`--trainer lora --model DIR` for real LoRA training).
    #[command(flatten)]
    trainer: licen_compute::lora::TrainerArgs,
}

pub(crate) async fn compute_node(args: ComputeNodeArgs, json: bool) -> Result<()> {
    // The model folder is opened and checked now, before the node accepts any job.
    let trainer = args
        .trainer
        .factory()
        .map_err(anyhow::Error::msg)
        .context("configuring the compute node's trainer")?;
    let running = licen_compute::node::start(licen_compute::node::NodeConfig {
        trainer,
        ..licen_compute::node::NodeConfig::new(args.data_dir, args.listen, args.storage)
    })
    .await
    .context("starting the compute node")?;
    if json {
        crate::output::print_line(&crate::output::ComputeNodeStarted {
            compute_url: running.url(),
            compute_attestation_key: running.attestation_key().into(),
            measurement: running.measurement().into(),
            warning: "INSECURE development attestation: for local nodes only",
        });
    } else {
        println!("listening on {}", running.url());
        println!(
            "INSECURE development attestation key 0x{} measurement 0x{}",
            hex::encode(running.attestation_key()),
            hex::encode(running.measurement())
        );
    }
    tokio::signal::ctrl_c().await?;
    running.shutdown().await?;
    Ok(())
}
