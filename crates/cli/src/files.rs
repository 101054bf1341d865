//! Local file commands: `keygen`, `root`, `seal`, `open`.
//!
//! `seal` is one streaming pass: plaintext → sealed stream → (output file ‖ 0G root builder),
//! so the dataset root is known the moment sealing ends, in constant memory. Outputs are written
//! to `<path>.partial` and renamed only when complete: a failure never leaves a half-written
//! file under the requested name.

use crate::keyfile::{parse_public_key, read_secret_key, write_secret_key};
use crate::output;
use crate::progress::bytes_bar;
use alloy::primitives::B256;
use anyhow::{Context, Result, bail};
use clap::Args;
use licen_crypto::envelope::{Envelope, EnvelopeContext, PublicKey, SecretKey, open_key, seal_key};
use licen_crypto::rng::OsRng;
use licen_crypto::stream::DEFAULT_SEGMENT_SIZE;
use licen_crypto::{NoncePrefix, OpenReader, SealWriter, StreamKey};
use licen_storage::merkle::{FileTree, RootBuilder};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Read/write buffer for file streaming.
const IO_BUFFER: usize = 1 << 20;

#[derive(Debug, Args)]
pub(crate) struct KeygenArgs {
    /// Where to write the secret key (created with mode 0600; never overwritten).
    #[arg(short, long)]
    output: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct RootArgs {
    /// The file whose 0G Merkle root to compute.
    file: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct SealArgs {
    /// Plaintext file (a JSONL dataset, or any file).
    file: PathBuf,
    /// Recipient X25519 public key (64 hex digits), e.g. the orchestrator's key from the chain.
    #[arg(long)]
    to: String,
    /// Sealed output file; the key envelope is written next to it as `<output>.envelope`.
    #[arg(short, long)]
    output: PathBuf,
    /// Plaintext bytes per sealed segment.
    #[arg(long, default_value_t = DEFAULT_SEGMENT_SIZE)]
    segment_size: u32,
}

#[derive(Debug, Args)]
pub(crate) struct OpenArgs {
    /// Sealed file.
    file: PathBuf,
    /// Its key envelope (default: `<file>.envelope`).
    #[arg(long)]
    envelope: Option<PathBuf>,
    /// The recipient's secret key file.
    #[arg(long)]
    key: PathBuf,
    /// Where to write the plaintext.
    #[arg(short, long)]
    output: PathBuf,
}

pub(crate) fn keygen(args: KeygenArgs, json: bool) -> Result<()> {
    let secret = SecretKey::random();
    write_secret_key(&args.output, &secret)?;
    let public = hex::encode(secret.public_key().to_bytes());
    if json {
        output::print_line(&output::KeyGenerated {
            secret_key_file: args.output,
            public_key: B256::from(secret.public_key().to_bytes()),
        });
    } else {
        println!("secret key  {} (mode 0600)", args.output.display());
        println!("public key  0x{public}");
    }
    Ok(())
}

pub(crate) fn root(args: RootArgs, json: bool) -> Result<()> {
    let file =
        File::open(&args.file).with_context(|| format!("opening {}", args.file.display()))?;
    let size = file.metadata()?.len();
    let bar = bytes_bar("hashing", size, json);
    let mut builder = RootBuilder::new();
    std::io::copy(
        &mut bar.wrap_read(BufReader::with_capacity(IO_BUFFER, file)),
        &mut builder,
    )
    .with_context(|| format!("reading {}", args.file.display()))?;
    bar.finish_and_clear();
    let root = builder.finish().root();
    if json {
        output::print_line(&output::Rooted {
            file: args.file,
            size_bytes: size,
            root,
        });
    } else {
        println!("{root}");
    }
    Ok(())
}

/// Writes to two sinks: the sealed output file and the root hasher.
struct Tee<A, B>(A, B);

impl<A: Write, B: Write> Write for Tee<A, B> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(buf)?;
        self.1.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()?;
        self.1.flush()
    }
}

/// Bytes handed to the hashing thread at a time (16 segments: enough for rayon to use every core).
const HASH_BATCH: usize = 4 << 20;
/// Batches in flight between the sealer and the hasher: bounds memory to a few MiB.
const HASH_QUEUE: usize = 2;

/// Computes the 0G tree on a background thread while the caller keeps sealing, so sealing
/// (one core) and hashing (rayon, all cores) overlap instead of taking turns.
struct BackgroundRoot {
    batch: Vec<u8>,
    queue: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    worker: Option<std::thread::JoinHandle<FileTree>>,
}

impl BackgroundRoot {
    fn new() -> Self {
        let (queue, batches) = std::sync::mpsc::sync_channel::<Vec<u8>>(HASH_QUEUE);
        let worker = std::thread::spawn(move || {
            let mut builder = RootBuilder::new();
            for batch in batches {
                builder.update(&batch);
            }
            builder.finish()
        });
        Self {
            batch: Vec::with_capacity(HASH_BATCH),
            queue: Some(queue),
            worker: Some(worker),
        }
    }

    fn send_batch(&mut self) -> std::io::Result<()> {
        let full = std::mem::replace(&mut self.batch, Vec::with_capacity(HASH_BATCH));
        self.queue
            .as_ref()
            .expect("queue lives until finish")
            .send(full)
            .map_err(|_| std::io::Error::other("the hashing thread stopped"))
    }

    fn finish(mut self) -> std::io::Result<FileTree> {
        if !self.batch.is_empty() {
            self.send_batch()?;
        }
        drop(self.queue.take());
        self.worker
            .take()
            .expect("joined once")
            .join()
            .map_err(|_| std::io::Error::other("the hashing thread panicked"))
    }
}

impl Write for BackgroundRoot {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let take = (HASH_BATCH - self.batch.len()).min(buf.len());
        self.batch.extend_from_slice(&buf[..take]);
        if self.batch.len() == HASH_BATCH {
            self.send_batch()?;
        }
        Ok(take)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for BackgroundRoot {
    fn drop(&mut self) {
        // On an error path: close the queue so the worker ends, and reap it.
        drop(self.queue.take());
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

pub(crate) fn seal(args: SealArgs, json: bool) -> Result<()> {
    let recipient = parse_public_key(&args.to)?;
    let input =
        File::open(&args.file).with_context(|| format!("opening {}", args.file.display()))?;
    let plaintext_bytes = input.metadata()?.len();
    let envelope_path = sibling(&args.output, "envelope");
    ensure_absent(&args.output)?;
    ensure_absent(&envelope_path)?;
    let partial = sibling(&args.output, "partial");
    let result = (|| -> Result<(B256, u64)> {
        let (tree, envelope) = seal_to_file(
            input,
            &partial,
            &recipient,
            args.segment_size,
            plaintext_bytes,
            json,
        )
        .with_context(|| format!("sealing {}", args.file.display()))?;
        write_new(&envelope_path, envelope.as_bytes())?;
        std::fs::rename(&partial, &args.output)
            .with_context(|| format!("moving the sealed file into {}", args.output.display()))?;
        Ok((tree.root(), tree.layout().size()))
    })();
    let (dataset_root, sealed_bytes) = result.inspect_err(|_| {
        let _ = std::fs::remove_file(&partial);
    })?;
    let report = output::Sealed {
        dataset_root,
        sealed_file: args.output,
        envelope_file: envelope_path,
        plaintext_bytes,
        sealed_bytes,
        peak_rss_bytes: peak_rss_bytes(),
    };
    if json {
        output::print(&report);
    } else {
        println!("dataset root  {}", report.dataset_root);
        println!(
            "sealed        {} ({} bytes)",
            report.sealed_file.display(),
            report.sealed_bytes
        );
        println!("envelope      {}", report.envelope_file.display());
    }
    Ok(())
}

/// Seals `input` into a new file at `out` in one streaming pass, computing the 0G tree of the
/// ciphertext as it is written, and wraps the fresh dataset key to `recipient` with AAD = root.
/// The dataset key never leaves this function.
pub(crate) fn seal_to_file(
    input: File,
    out: &Path,
    recipient: &PublicKey,
    segment_size: u32,
    plaintext_bytes: u64,
    quiet: bool,
) -> Result<(FileTree, Envelope)> {
    let file = File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let key = StreamKey::random();
    let sink = Tee(
        BufWriter::with_capacity(IO_BUFFER, file),
        BackgroundRoot::new(),
    );
    let mut writer = SealWriter::new(sink, &key, NoncePrefix::random(), segment_size)
        .context("starting the sealed stream")?;
    let bar = bytes_bar("sealing", plaintext_bytes, quiet);
    let mut reader = bar.wrap_read(BufReader::with_capacity(IO_BUFFER, input));
    std::io::copy(&mut reader, &mut writer)?;
    let Tee(file, hasher) = writer.finish().context("finishing the sealed stream")?;
    let file = file.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    bar.finish_and_clear();
    let tree = hasher.finish()?;
    let envelope = seal_key(
        recipient,
        &key,
        &EnvelopeContext::OwnerToOrchestrator {
            dataset_root: tree.root().0,
        },
        &mut OsRng,
    )
    .context("wrapping the dataset key")?;
    Ok((tree, envelope))
}

pub(crate) fn open(args: OpenArgs, json: bool) -> Result<()> {
    ensure_absent(&args.output)?;
    let secret = read_secret_key(&args.key)?;
    let envelope_path = args
        .envelope
        .unwrap_or_else(|| sibling(&args.file, "envelope"));
    let envelope = std::fs::read(&envelope_path)
        .with_context(|| format!("reading envelope {}", envelope_path.display()))?;
    let size = std::fs::metadata(&args.file)
        .with_context(|| format!("opening {}", args.file.display()))?
        .len();

    // The envelope is bound to the sealed file's root: recompute it, don't trust a name.
    let bar = bytes_bar("hashing", size, json);
    let mut builder = RootBuilder::new();
    std::io::copy(
        &mut bar.wrap_read(BufReader::with_capacity(IO_BUFFER, File::open(&args.file)?)),
        &mut builder,
    )?;
    bar.finish_and_clear();
    let root = builder.finish().root();
    let key = open_key(&secret, &envelope, &EnvelopeContext::OwnerToOrchestrator { dataset_root: root.0 })
        .with_context(|| {
            format!(
                "the envelope {} does not open for {} (root {root}) with this key: wrong key, wrong envelope, or the sealed file was changed",
                envelope_path.display(),
                args.file.display()
            )
        })?;

    let partial = sibling(&args.output, "partial");
    let result = (|| -> Result<u64> {
        let bar = bytes_bar("opening", size, json);
        let input = bar.wrap_read(BufReader::with_capacity(IO_BUFFER, File::open(&args.file)?));
        let mut reader = OpenReader::new(input, &key).context("reading the sealed header")?;
        let out =
            File::create(&partial).with_context(|| format!("creating {}", partial.display()))?;
        let mut out = BufWriter::with_capacity(IO_BUFFER, out);
        let written = copy_verified(&mut reader, &mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        bar.finish_and_clear();
        std::fs::rename(&partial, &args.output)?;
        Ok(written)
    })();
    let written = result.inspect_err(|_| {
        let _ = std::fs::remove_file(&partial);
    })?;
    if json {
        output::print_line(&output::Opened {
            output: args.output,
            plaintext_bytes: written,
            dataset_root: root,
            peak_rss_bytes: peak_rss_bytes(),
        });
    } else {
        println!(
            "opened {} → {} ({written} bytes)",
            args.file.display(),
            args.output.display()
        );
    }
    Ok(())
}

/// Copies verified plaintext; a tampered segment stops the copy with the crypto error.
fn copy_verified(reader: &mut impl Read, out: &mut impl Write) -> Result<u64> {
    std::io::copy(reader, out).map_err(|e| {
        let crypto = licen_crypto::Error::from(e);
        anyhow::Error::new(crypto)
            .context("the sealed file failed verification; nothing was written")
    })
}

/// `path` with `.ext` appended to its file name.
pub(crate) fn sibling(path: &Path, ext: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".");
    name.push(ext);
    PathBuf::from(name)
}

/// Creates `path` with `bytes`, refusing to overwrite.
fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}

/// Peak resident memory of this process (Linux `VmHWM`), for the memory-bound benchmark.
pub(crate) fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Fails when `path` exists, so outputs never clobber user files.
pub(crate) fn ensure_absent(path: &Path) -> Result<()> {
    if path.exists() {
        bail!(
            "{} already exists; choose another output path or remove it",
            path.display()
        );
    }
    Ok(())
}
