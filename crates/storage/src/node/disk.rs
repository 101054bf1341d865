//! On-disk state of the local node: crash-safe, verified, resumable.
//!
//! Layout under the data directory:
//! - `mode` (`local` or `flow`) and `shard` (the shard position, `SHARD_ID/NUM_SHARD`): what
//!   the directory was first used as; opening it otherwise is refused. A directory without a
//!   `shard` file but with files was written by an older node, which held every segment (`0/1`).
//! - `partial/<root>/` — an upload in progress: `meta.json` (root, size, seq, flow position),
//!   `data` (the file, chunk-rounded, written at segment offsets; a sharded node writes only its
//!   own segments, the holes cost nothing), `journal` (one 48-byte record per stored segment:
//!   index, segment root, check bytes; appended after the segment's bytes were written) and, on
//!   a sharded node, `proofs` (one record per stored segment: index, the proof as received,
//!   check bytes; appended before the segment's journal record).
//! - `files/<root>/` — a finalized file: the same `data` and `meta.json`, plus `tree` (all
//!   padded segment roots) on a whole node, or `proofs` (one record per own segment, in index
//!   order) on a sharded node.
//!
//! Sharding (0G's `shard_position`): a node `SHARD_ID/NUM_SHARD` holds the segments whose Flow
//! position (`startEntryIndex / 1024` + index) is `SHARD_ID` modulo `NUM_SHARD`
//! ([`crate::shard`]). It verifies every uploaded segment (size, proof) and silently drops those
//! of other shards. Holding only some segments, it cannot rebuild the file's tree, so it keeps
//! each own segment's proof as received (checked against the root before it is kept) and
//! serves it with the segment. A whole node (`0/1`) stores exactly what it did before sharding.
//!
//! A file is finalized only when every segment the node holds is in the journal *and*, after
//! an fsync of `data`, those segments re-hash to their roots (a whole node: the whole file to
//! its root); then `tree` or `proofs` and `meta.json` are written and fsynced, the directory is
//! renamed from `partial/` to `files/` (atomic) and the parent directories are fsynced. A crash
//! at any point leaves either a partial upload (resumed on restart: its journal says which
//! segments are stored; a torn last record is ignored, as is a torn last proof record, and on
//! a sharded node a journal record without its proof means the segment is not stored) or a
//! finalized file whose bytes were verified after they were made durable. If the re-hash
//! fails (a segment's bytes did not reach the disk before a power cut, or rotted), the segments
//! whose roots differ are dropped from the journal and must be uploaded again; the file is
//! never reported finalized.
//!
//! Partial uploads are not fsynced segment by segment (a synchronous flush per request costs
//! ~20 ms here): segments are written with positioned writes, a background `fdatasync` starts
//! every 32 MiB so the disk writes while segments still arrive, and the one durability point is
//! the fsync at finalization. A process crash (kill -9) loses nothing the kernel has; a power
//! cut can lose recent segments, which the re-hash then catches.
//!
//! In Flow mode (a node following a 0G Flow contract) the `submissions` module's append-only
//! log holds the Flow submissions the node was told of (root, size, sequence number, flow
//! position): a file is accepted only once its submission is known, and it takes the
//! submission's sequence number and position (which decides the shard of each segment).
//!
//! Never interprets file bytes; everything here is ciphertext addressed by its root.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use super::submissions::{FlowCursor, Submissions};
use serde::{Deserialize, Serialize};

use crate::direct::{DirectFile, read_exact_at};
use crate::flush::BackgroundFlush;
use crate::merkle::{
    CHUNK_SIZE, FileLayout, FileTree, Hash, SEGMENT_CHUNKS, keccak256, segment_root,
};
use crate::proof::Proof;
use crate::rpc::{
    self, FileInfo, RpcError, SegmentWithProof, Transaction, UploadedSegments, codes,
};
use crate::shard::ShardConfig;

const RECORD: usize = 48;

thread_local! {
    /// One segment's bytes on their way from disk to a download response (per blocking thread,
    /// so serving a segment allocates and zero-fills nothing of that size).
    static SEGMENT_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    root: Hash,
    size: u64,
    seq: u64,
    /// First flow entry (Flow mode; 0 otherwise).
    #[serde(default)]
    start_entry: u64,
    /// `(depth, root)` submission nodes, written at finalization.
    #[serde(default)]
    merkle_nodes: Vec<(u64, Hash)>,
}

struct FinalFile {
    meta: Meta,
    dir: PathBuf,
    held: Held,
}

/// What a finalized file's proofs come from.
enum Held {
    /// A whole node: every segment; proofs are cut from the file's tree.
    Whole(FileTree),
    /// A sharded node: its own segments' proofs as received (verified), by index.
    Shard(BTreeMap<u64, Proof>),
}

struct PartialFile {
    root: Hash,
    layout: FileLayout,
    seq: u64,
    start_entry: u64,
    /// The node's shard (decides which segments of this file it keeps).
    shard: ShardConfig,
    /// How many of the file's segments the node keeps (all of them on a whole node).
    own_segments: u64,
    dir: PathBuf,
    /// Segments are written with direct I/O (see [`crate::direct`]).
    data: DirectFile,
    state: Mutex<PartialState>,
    /// Background flushes of `data` while segments arrive.
    flush: Arc<BackgroundFlush>,
}

struct PartialState {
    present: Vec<bool>,
    /// Verified and written by this process (its bytes are the ones that were hashed);
    /// segments carried over from before a restart are not fresh and are re-hashed from disk
    /// at finalization.
    fresh: Vec<bool>,
    seg_roots: Vec<Hash>,
    /// Own segments stored.
    count: u64,
    journal: File,
    /// A sharded node's proof log (`None` on a whole node, which rebuilds the tree instead).
    proofs: Option<ProofLog>,
    finalizing: bool,
}

/// The `proofs` log of a partial upload on a sharded node, and the proofs it holds.
struct ProofLog {
    file: File,
    by_index: HashMap<u64, Proof>,
}

impl PartialFile {
    /// Whether the node keeps segment `index` of this file.
    fn holds(&self, index: u64) -> bool {
        self.shard.holds_file_segment(self.start_entry, index)
    }
}

#[derive(Clone)]
enum Entry {
    Final(Arc<FinalFile>),
    Partial(Arc<PartialFile>),
}

struct Index {
    files: HashMap<Hash, Entry>,
    by_seq: BTreeMap<u64, Hash>,
    next_seq: u64,
}

/// A file's Flow submission, as the chain recorded it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Submitted {
    /// The file root (folded from the submission's node list).
    pub root: Hash,
    /// File size in bytes.
    pub size: u64,
    /// The submission's sequence number (`txSeq`).
    pub seq: u64,
    /// Its first flow entry.
    pub start_entry: u64,
}

/// The node's storage.
pub(crate) struct Disk {
    dir: PathBuf,
    full_rehash: bool,
    /// Which segments this node keeps.
    shard: ShardConfig,
    index: Mutex<Index>,
    /// Flow mode: the submissions known so far (only these files are accepted).
    submissions: Option<Mutex<Submissions>>,
}

fn io_err(what: impl std::fmt::Display, e: std::io::Error) -> RpcError {
    RpcError::new(
        codes::STORAGE_IO,
        "storage I/O error",
        format!("{what}: {e}; check the node's data directory (disk full? permissions?)"),
    )
}

fn hex_name(root: &Hash) -> String {
    hex::encode(root.as_slice())
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

fn record(index: u64, seg_root: &Hash) -> [u8; RECORD] {
    let mut r = [0u8; RECORD];
    r[..8].copy_from_slice(&index.to_le_bytes());
    r[8..40].copy_from_slice(seg_root.as_slice());
    let check = keccak256(&r[..40]);
    r[40..].copy_from_slice(&check[..8]);
    r
}

fn parse_journal(bytes: &[u8], segments: u64) -> Vec<(u64, Hash)> {
    let mut out = Vec::new();
    for r in bytes.chunks_exact(RECORD) {
        let index = u64::from_le_bytes(r[..8].try_into().expect("8 bytes"));
        let root = Hash::from_slice(&r[8..40]);
        if keccak256(&r[..40])[..8] != r[40..] || index >= segments {
            // A torn or damaged record: stop trusting the journal from here on.
            break;
        }
        out.push((index, root));
    }
    out
}

/// Header of a proof record: index (8), lemma entries (2), path entries (2).
const PROOF_HEADER: usize = 12;
/// Longest lemma a proof record may carry (a tree of 2^64 segments has 66).
const MAX_LEMMA: usize = 70;

/// Appends a proof record to `out`: index (u64 LE), lemma length (u16 LE), path length
/// (u16 LE), the lemma hashes, one byte (0/1) per path entry, and 8 check bytes (keccak of the
/// rest), so a torn or damaged record is recognised.
fn push_proof_record(out: &mut Vec<u8>, index: u64, proof: &Proof) {
    let start = out.len();
    out.extend_from_slice(&index.to_le_bytes());
    out.extend_from_slice(&(proof.lemma.len() as u16).to_le_bytes());
    out.extend_from_slice(&(proof.path.len() as u16).to_le_bytes());
    for h in &proof.lemma {
        out.extend_from_slice(h.as_slice());
    }
    out.extend(proof.path.iter().map(|&left| u8::from(left)));
    let check = keccak256(&out[start..]);
    out.extend_from_slice(&check[..8]);
}

/// The proof records at the start of `bytes` that are whole and intact, and how many bytes
/// they take; parsing stops at the first torn or damaged record.
fn parse_proofs(bytes: &[u8], segments: u64) -> (Vec<(u64, Proof)>, usize) {
    let mut out = Vec::new();
    let mut at = 0;
    while bytes.len() - at >= PROOF_HEADER {
        let r = &bytes[at..];
        let index = u64::from_le_bytes(r[..8].try_into().expect("8 bytes"));
        let lemma = u16::from_le_bytes(r[8..10].try_into().expect("2 bytes")) as usize;
        let path = u16::from_le_bytes(r[10..12].try_into().expect("2 bytes")) as usize;
        let body = PROOF_HEADER + 32 * lemma + path;
        if lemma > MAX_LEMMA || path > MAX_LEMMA || r.len() < body + 8 {
            break;
        }
        if keccak256(&r[..body])[..8] != r[body..body + 8] || index >= segments {
            break;
        }
        let path_bytes = &r[PROOF_HEADER + 32 * lemma..body];
        if path_bytes.iter().any(|&b| b > 1) {
            break;
        }
        out.push((
            index,
            Proof {
                lemma: r[PROOF_HEADER..PROOF_HEADER + 32 * lemma]
                    .chunks_exact(32)
                    .map(Hash::from_slice)
                    .collect(),
                path: path_bytes.iter().map(|&b| b == 1).collect(),
            },
        ));
        at += body + 8;
    }
    (out, at)
}

/// The segment root a kept proof proves (its first lemma entry; a one-segment file's is the
/// file root, which is that segment's root), if the proof holds for segment `index` of `root`.
fn proven_segment_root(
    proof: &Proof,
    root: &Hash,
    index: u64,
    layout: &FileLayout,
) -> Option<Hash> {
    let leaf = *proof.lemma.first()?;
    proof.verify_segment(root, &leaf, index, layout).ok()?;
    Some(leaf)
}

/// Checks that the data dir holds `shard`'s segments (recording it in a new directory).
/// `used`: the directory already holds files.
fn check_shard(dir: &Path, shard: ShardConfig, used: bool) -> std::io::Result<()> {
    let refuse = |held: ShardConfig| {
        std::io::Error::other(format!(
            "this data dir holds {}, but the node was asked to hold shard {shard}: its files \
             would lack segments the node says it holds; use another data dir for shard \
             {shard}, or start the node as {held} again",
            if held.num_shard < 2 {
                format!("every segment (shard {held})")
            } else {
                format!(
                    "shard {held} (segments at Flow positions p with p % {} == {})",
                    held.num_shard, held.shard_id
                )
            }
        ))
    };
    let path = dir.join(SHARD);
    match fs::read_to_string(&path) {
        Ok(held) => {
            let held: ShardConfig = held.trim().parse().map_err(|e| {
                std::io::Error::other(format!(
                    "the data dir's `{SHARD}` file is damaged ({e}); write the shard position it \
                     was used with into it, or use another data dir"
                ))
            })?;
            if held != shard {
                return Err(refuse(held));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Nodes before sharding held every segment and wrote no shard file.
            if used && shard != ShardConfig::WHOLE {
                return Err(refuse(ShardConfig::WHOLE));
            }
            write_atomically(&path, shard.to_string().as_bytes())
        }
        Err(e) => Err(e),
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)
}

fn read_meta(dir: &Path) -> std::io::Result<Meta> {
    let raw = fs::read(dir.join("meta.json"))?;
    serde_json::from_slice(&raw).map_err(std::io::Error::other)
}

impl Disk {
    /// Opens (creating) the data directory, loads finalized files, resumes partial uploads
    /// and finalizes those that are complete.
    pub(crate) fn open(
        dir: &Path,
        full_rehash: bool,
        flow_mode: bool,
        shard: ShardConfig,
    ) -> std::io::Result<Disk> {
        let shard = shard.validate().map_err(std::io::Error::other)?;
        fs::create_dir_all(dir.join("files"))?;
        fs::create_dir_all(dir.join("partial"))?;
        let used = fs::read_dir(dir.join("files"))?.next().is_some()
            || fs::read_dir(dir.join("partial"))?.next().is_some();
        // Sequence numbers mean different things in the two modes (files counted here, Flow
        // submissions there): a data dir keeps the mode it was first used in.
        let mode = if flow_mode { "flow" } else { "local" };
        match fs::read_to_string(dir.join(MODE)) {
            Ok(held) if held.trim() == mode => {}
            Ok(held) => {
                return Err(std::io::Error::other(format!(
                    "this data dir was used {} Flow mode: its sequence numbers would mix with \
                     {}; use another data dir",
                    if held.trim() == "flow" {
                        "in"
                    } else {
                        "without"
                    },
                    if flow_mode {
                        "the Flow's"
                    } else {
                        "the ones this node would count"
                    }
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if used && flow_mode {
                    return Err(std::io::Error::other(
                        "this data dir holds files stored without Flow mode: their sequence \
                         numbers would mix with the Flow's; use another data dir",
                    ));
                }
                write_atomically(&dir.join(MODE), mode.as_bytes())?;
            }
            Err(e) => return Err(e),
        }
        check_shard(dir, shard, used)?;
        let mut index = Index {
            files: HashMap::new(),
            by_seq: BTreeMap::new(),
            next_seq: 0,
        };
        for entry in fs::read_dir(dir.join("files"))? {
            let path = entry?.path();
            match Self::load_final(&path, shard) {
                Ok(f) => {
                    index.next_seq = index.next_seq.max(f.meta.seq + 1);
                    index.by_seq.insert(f.meta.seq, f.meta.root);
                    index.files.insert(f.meta.root, Entry::Final(Arc::new(f)));
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "ignoring an unreadable finalized file")
                }
            }
        }
        let mut complete = Vec::new();
        for entry in fs::read_dir(dir.join("partial"))? {
            let path = entry?.path();
            let meta = match read_meta(&path) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "removing a partial upload without metadata");
                    let _ = fs::remove_dir_all(&path);
                    continue;
                }
            };
            if index.files.contains_key(&meta.root) {
                let _ = fs::remove_dir_all(&path);
                continue;
            }
            let p = Self::load_partial(&path, meta, shard)?;
            index.next_seq = index.next_seq.max(p.seq + 1);
            index.by_seq.insert(p.seq, p.root);
            let full = p.state.lock().expect("poisoned").count == p.own_segments;
            let p = Arc::new(p);
            if full {
                complete.push(p.clone());
            }
            index.files.insert(p.root, Entry::Partial(p));
        }
        let submissions = if flow_mode {
            let known = Submissions::open(dir)?;
            if let Some(seq) = known.max_seq() {
                index.next_seq = index.next_seq.max(seq + 1);
            }
            Some(Mutex::new(known))
        } else {
            None
        };
        let disk = Disk {
            dir: dir.to_path_buf(),
            full_rehash,
            shard,
            index: Mutex::new(index),
            submissions,
        };
        for p in complete {
            p.state.lock().expect("poisoned").finalizing = true;
            if let Err(e) = disk.finalize(&p) {
                tracing::warn!(root = %p.root, error = ?e, "a complete upload failed to finalize at startup");
            }
        }
        Ok(disk)
    }

    fn load_final(dir: &Path, shard: ShardConfig) -> std::io::Result<FinalFile> {
        let meta = read_meta(dir)?;
        let layout = FileLayout::new(meta.size);
        let len = fs::metadata(dir.join("data"))?.len();
        if len != layout.data_chunks() * CHUNK_SIZE as u64 {
            return Err(std::io::Error::other("data file has the wrong length"));
        }
        if shard.num_shard > 1 {
            // Exactly the own segments' proofs, each proving its segment against the root.
            let raw = fs::read(dir.join(PROOFS))?;
            let (records, good) = parse_proofs(&raw, layout.segments());
            if good != raw.len() {
                return Err(std::io::Error::other("proofs file is damaged"));
            }
            let own = shard.file_segments(meta.start_entry, layout.segments());
            let mut by_index = BTreeMap::new();
            for (i, proof) in records {
                if proven_segment_root(&proof, &meta.root, i, &layout).is_none() {
                    return Err(std::io::Error::other(format!(
                        "the proof of segment {i} does not verify against the root"
                    )));
                }
                by_index.insert(i, proof);
            }
            if !by_index.keys().copied().eq(own.iter().copied()) {
                return Err(std::io::Error::other(
                    "proofs file does not hold exactly this shard's segments",
                ));
            }
            return Ok(FinalFile {
                meta,
                dir: dir.to_path_buf(),
                held: Held::Shard(by_index),
            });
        }
        let raw = fs::read(dir.join("tree"))?;
        if raw.len() as u64 != layout.padded_segments() * 32 {
            return Err(std::io::Error::other("tree file has the wrong length"));
        }
        let roots = raw.chunks_exact(32).map(Hash::from_slice).collect();
        let tree = FileTree::from_segment_roots(layout, roots).map_err(std::io::Error::other)?;
        if tree.root() != meta.root {
            return Err(std::io::Error::other("tree file does not hash to the root"));
        }
        Ok(FinalFile {
            meta,
            dir: dir.to_path_buf(),
            held: Held::Whole(tree),
        })
    }

    fn load_partial(dir: &Path, meta: Meta, shard: ShardConfig) -> std::io::Result<PartialFile> {
        let layout = FileLayout::new(meta.size);
        let data = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join("data"))?;
        let want = layout.data_chunks() * CHUNK_SIZE as u64;
        if data.metadata()?.len() != want {
            data.set_len(want)?;
        }
        let mut journal = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(dir.join("journal"))?;
        let mut raw = Vec::new();
        journal.read_to_end(&mut raw)?;
        let segments = layout.segments();
        let records = parse_journal(&raw, segments);
        if records.len() * RECORD != raw.len() {
            // Drop the torn tail so new records start at a record boundary.
            let mut good = Vec::with_capacity(records.len() * RECORD);
            for (i, r) in &records {
                good.extend_from_slice(&record(*i, r));
            }
            write_atomically(&dir.join("journal"), &good)?;
            journal = OpenOptions::new().append(true).open(dir.join("journal"))?;
        }
        let proofs = if shard.num_shard > 1 {
            Some(Self::load_proof_log(dir, &meta.root, &layout)?)
        } else {
            None
        };
        let mut present = vec![false; segments as usize];
        let mut seg_roots = vec![Hash::ZERO; segments as usize];
        let mut count = 0;
        for (i, r) in records {
            if let Some(log) = &proofs {
                // The proof is logged before the journal record: a record without its proof
                // (a crash, or a power cut that kept one write and not the other) means the
                // segment is not stored.
                let proven = log.by_index.get(&i).and_then(|p| p.lemma.first());
                if !shard.holds_file_segment(meta.start_entry, i) || proven != Some(&r) {
                    continue;
                }
            }
            if !present[i as usize] {
                present[i as usize] = true;
                count += 1;
            }
            seg_roots[i as usize] = r;
        }
        let flush = BackgroundFlush::new(data.try_clone()?, hex_name(&meta.root));
        Ok(PartialFile {
            root: meta.root,
            layout,
            seq: meta.seq,
            start_entry: meta.start_entry,
            shard,
            own_segments: shard.file_segments(meta.start_entry, segments).len() as u64,
            dir: dir.to_path_buf(),
            data: DirectFile::new(data, &dir.join("data"), true),
            state: Mutex::new(PartialState {
                fresh: vec![false; present.len()],
                present,
                seg_roots,
                count,
                journal,
                proofs,
                finalizing: false,
            }),
            flush,
        })
    }

    /// Opens a sharded partial upload's proof log, dropping a torn tail, and keeps the proofs
    /// that verify against the root.
    fn load_proof_log(dir: &Path, root: &Hash, layout: &FileLayout) -> std::io::Result<ProofLog> {
        let path = dir.join(PROOFS);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)?;
        let mut raw = Vec::new();
        file.read_to_end(&mut raw)?;
        let (records, good) = parse_proofs(&raw, layout.segments());
        if good != raw.len() {
            // Drop the torn tail so new records start at a record boundary.
            write_atomically(&path, &raw[..good])?;
            file = OpenOptions::new().append(true).open(&path)?;
        }
        let by_index = records
            .into_iter()
            .filter(|(i, p)| proven_segment_root(p, root, *i, layout).is_some())
            .collect();
        Ok(ProofLog { file, by_index })
    }

    fn entry(&self, root: &Hash) -> Option<Entry> {
        self.index
            .lock()
            .expect("poisoned")
            .files
            .get(root)
            .cloned()
    }

    /// The shard of every file this node keeps.
    pub(crate) fn shard(&self) -> ShardConfig {
        self.shard
    }

    /// Number of files known (the next sequence number).
    pub(crate) fn next_seq(&self) -> u64 {
        self.index.lock().expect("poisoned").next_seq
    }

    fn partial_for(&self, root: Hash, size: u64) -> Result<Arc<PartialFile>, RpcError> {
        let mut index = self.index.lock().expect("poisoned");
        match index.files.get(&root) {
            Some(Entry::Final(_)) => return Err(already_finalized()),
            Some(Entry::Partial(p)) if p.layout.size() == size => return Ok(p.clone()),
            Some(Entry::Partial(p)) => return Err(size_conflict(&root, p.layout.size(), size)),
            None => {}
        }
        let (seq, start_entry) = match &self.submissions {
            None => (index.next_seq, 0),
            Some(known) => match known.lock().expect("poisoned").get(&root) {
                None => return Err(not_submitted(&root)),
                Some(s) if s.size != size => return Err(size_conflict(&root, s.size, size)),
                Some(s) => (s.seq, s.start_entry),
            },
        };
        let dir = self.dir.join("partial").join(hex_name(&root));
        let create = || -> std::io::Result<PartialFile> {
            fs::create_dir_all(&dir)?;
            let meta = Meta {
                root,
                size,
                seq,
                start_entry,
                merkle_nodes: vec![],
            };
            write_atomically(
                &dir.join("meta.json"),
                &serde_json::to_vec(&meta).map_err(std::io::Error::other)?,
            )?;
            sync_dir(&dir)?;
            sync_dir(&self.dir.join("partial"))?;
            Self::load_partial(&dir, meta, self.shard)
        };
        let p = Arc::new(create().map_err(|e| io_err(format!("creating {}", dir.display()), e))?);
        index.next_seq = index.next_seq.max(seq + 1);
        index.by_seq.insert(seq, root);
        index.files.insert(root, Entry::Partial(p.clone()));
        Ok(p)
    }

    /// Verifies and stores segments (any roots). Runs on a blocking thread.
    pub(crate) fn put_segments(&self, segs: Vec<SegmentWithProof>) -> Result<(), RpcError> {
        // Refuse cheaply before hashing anything.
        for s in &segs {
            match self.entry(&s.root) {
                Some(Entry::Final(_)) => return Err(already_finalized()),
                Some(Entry::Partial(p)) if p.layout.size() != s.file_size => {
                    return Err(size_conflict(&s.root, p.layout.size(), s.file_size));
                }
                Some(Entry::Partial(_)) => {}
                None => {
                    if let Some(known) = &self.submissions
                        && !known.lock().expect("poisoned").contains(&s.root)
                    {
                        return Err(not_submitted(&s.root));
                    }
                }
            }
        }
        let verified: Vec<(SegmentWithProof, Hash)> = segs
            .into_par_iter()
            .map(|s| {
                let r = verify_segment(&s)?;
                Ok((s, r))
            })
            .collect::<Result<_, RpcError>>()?;

        let mut by_root: HashMap<Hash, Vec<(SegmentWithProof, Hash)>> = HashMap::new();
        for (s, r) in verified {
            by_root.entry(s.root).or_default().push((s, r));
        }
        for (root, group) in by_root {
            let size = group[0].0.file_size;
            let p = self.partial_for(root, size)?;
            self.store_group(&p, group)?;
        }
        Ok(())
    }

    fn store_group(
        &self,
        p: &Arc<PartialFile>,
        group: Vec<(SegmentWithProof, Hash)>,
    ) -> Result<(), RpcError> {
        // Segments of other shards were verified like any other; 0G's node then drops them
        // without an error, and so does this one.
        let (group, others): (Vec<_>, Vec<_>) =
            group.into_iter().partition(|(s, _)| p.holds(s.index));
        if !others.is_empty() {
            let indexes: Vec<u64> = others.iter().map(|(s, _)| s.index).collect();
            tracing::debug!(root = %p.root, shard = %p.shard, ?indexes, "segments outside this node's shard verified and not stored");
        }
        let todo: Vec<(SegmentWithProof, Hash)> = {
            let st = p.state.lock().expect("poisoned");
            group
                .into_iter()
                .filter(|(s, _)| !st.present[s.index as usize])
                .collect()
        };
        // A file of which this node holds no segment is complete once one of its segments
        // (of another shard) was verified.
        if todo.is_empty() && p.own_segments > 0 {
            return Ok(());
        }
        let pieces: Vec<(u64, &[u8])> = todo
            .iter()
            .map(|(s, _)| (p.layout.segment_offset(s.index), s.data.as_slice()))
            .collect();
        p.data.write_pieces(&pieces).map_err(|e| {
            io_err(
                format!(
                    "writing segments {:?} of {}",
                    todo.iter().map(|(s, _)| s.index).collect::<Vec<_>>(),
                    p.root
                ),
                e,
            )
        })?;
        p.flush
            .note_written(todo.iter().map(|(s, _)| s.data.len() as u64).sum());
        let finalize = {
            let mut st = p.state.lock().expect("poisoned");
            let mut records = Vec::new();
            let mut newly = Vec::new();
            for (s, r) in &todo {
                if !st.present[s.index as usize] && !newly.contains(&s.index) {
                    records.extend_from_slice(&record(s.index, r));
                    newly.push(s.index);
                }
            }
            if let Some(log) = st.proofs.as_mut() {
                // Proofs before journal records: a record is trusted only with its proof.
                let mut bytes = Vec::new();
                let mut logged = Vec::new();
                for (s, _) in &todo {
                    if newly.contains(&s.index) && !log.by_index.contains_key(&s.index) {
                        push_proof_record(&mut bytes, s.index, &s.proof);
                        log.by_index.insert(s.index, s.proof.clone());
                        logged.push(s.index);
                    }
                }
                let end = log.file.metadata().map(|m| m.len());
                if let Err(e) = log.file.write_all(&bytes) {
                    // Cut a partly written record back off, so later records stay readable,
                    // and forget what this call added, so a resend logs it again.
                    if let Ok(end) = end {
                        let _ = log.file.set_len(end);
                    }
                    for i in &logged {
                        log.by_index.remove(i);
                    }
                    return Err(io_err(
                        format!("appending to the proof log of {}", p.root),
                        e,
                    ));
                }
            }
            st.journal
                .write_all(&records)
                .map_err(|e| io_err(format!("appending to the journal of {}", p.root), e))?;
            for (s, r) in &todo {
                let i = s.index as usize;
                if !st.present[i] {
                    st.present[i] = true;
                    st.fresh[i] = true;
                    st.seg_roots[i] = *r;
                    st.count += 1;
                }
            }
            let go = st.count == p.own_segments && !st.finalizing;
            if go {
                st.finalizing = true;
            }
            go
        };
        if finalize {
            self.finalize(p)?;
        }
        Ok(())
    }

    /// Re-hashes a complete upload and, if it matches its root, moves it to `files/`.
    fn finalize(&self, p: &Arc<PartialFile>) -> Result<(), RpcError> {
        let res = self.try_finalize(p);
        if res.is_err() {
            p.state.lock().expect("poisoned").finalizing = false;
        }
        res
    }

    fn try_finalize(&self, p: &Arc<PartialFile>) -> Result<(), RpcError> {
        let root = p.root;
        let started = std::time::Instant::now();
        let ctx = |what: &str| format!("{what} of {root}");
        // Make the bytes durable, then re-hash from disk every segment whose bytes this process
        // did not itself verify before writing them (all of them with `full_rehash`).
        p.data
            .file()
            .sync_all()
            .map_err(|e| io_err(ctx("syncing data"), e))?;
        if p.flush.failed() {
            return Err(io_err(
                ctx("flushing data"),
                std::io::Error::other("an earlier background flush failed"),
            ));
        }
        let (stale, mut seg_roots) = {
            let st = p.state.lock().expect("poisoned");
            let stale: Vec<u64> = (0..p.layout.segments())
                .filter(|&i| st.present[i as usize])
                .filter(|&i| self.full_rehash || !st.fresh[i as usize])
                .collect();
            (stale, st.seg_roots.clone())
        };
        let read_segment = |i: u64| -> Result<Vec<u8>, RpcError> {
            let mut buf = vec![0u8; p.layout.segment_data_len(i)];
            p.data
                .read_exact_at(&mut buf, p.layout.segment_offset(i))
                .map_err(|e| io_err(ctx("re-reading data"), e))?;
            Ok(buf)
        };
        let recomputed: Vec<(u64, Hash)> = stale
            .par_iter()
            .map(|&i| {
                let buf = read_segment(i)?;
                Ok((i, segment_root(&buf, p.layout.segment_tree_chunks(i))))
            })
            .collect::<Result<_, RpcError>>()?;
        let bad: Vec<u64> = recomputed
            .iter()
            .filter(|(i, r)| seg_roots[*i as usize] != *r)
            .map(|(i, _)| *i)
            .collect();
        if !bad.is_empty() {
            return Err(self.discard_damaged(p, bad));
        }
        for (i, r) in &recomputed {
            seg_roots[*i as usize] = *r;
        }
        tracing::debug!(%root, rehashed = stale.len(), "segments re-hashed at finalization");
        let size = p.layout.size();
        let (meta, index_file, held) = if self.shard.num_shard > 1 {
            self.shard_proofs(p, &seg_roots)?
        } else {
            let tree = FileTree::from_segment_roots(p.layout, seg_roots).map_err(|e| {
                RpcError::new(codes::INTERNAL_ERROR, "Internal error", e.to_string())
            })?;
            if tree.root() != root {
                // Cannot happen: every segment root was proven against `root`. Start over.
                return Err(self.discard_damaged(p, (0..p.layout.segments()).collect()));
            }
            let tree = tree.with_tail_data(&read_segment(p.layout.segments() - 1)?);
            let nodes = tree.submission_nodes().map_err(|e| {
                RpcError::new(codes::INTERNAL_ERROR, "Internal error", e.to_string())
            })?;
            let meta = Meta {
                root,
                size,
                seq: p.seq,
                start_entry: p.start_entry,
                merkle_nodes: nodes
                    .iter()
                    .map(|n| (u64::from(n.height) + 1, n.root))
                    .collect(),
            };
            let mut tree_bytes = Vec::with_capacity(tree.segment_roots().len() * 32);
            for r in tree.segment_roots() {
                tree_bytes.extend_from_slice(r.as_slice());
            }
            (meta, ("tree", tree_bytes), Held::Whole(tree))
        };
        let final_dir = self.dir.join("files").join(hex_name(&root));
        let commit = || -> std::io::Result<()> {
            write_atomically(&p.dir.join(index_file.0), &index_file.1)?;
            write_atomically(
                &p.dir.join("meta.json"),
                &serde_json::to_vec(&meta).map_err(std::io::Error::other)?,
            )?;
            sync_dir(&p.dir)?;
            fs::rename(&p.dir, &final_dir)?;
            sync_dir(&self.dir.join("files"))?;
            sync_dir(&self.dir.join("partial"))?;
            let _ = fs::remove_file(final_dir.join("journal"));
            Ok(())
        };
        commit().map_err(|e| io_err(ctx("committing the finalized file"), e))?;
        let f = FinalFile {
            meta,
            dir: final_dir,
            held,
        };
        self.index
            .lock()
            .expect("poisoned")
            .files
            .insert(root, Entry::Final(Arc::new(f)));
        tracing::info!(%root, size, shard = %self.shard, elapsed_ms = started.elapsed().as_millis() as u64, "file finalized");
        Ok(())
    }

    /// A sharded node's finalized file: the own segments' proofs as received (each names the
    /// segment root its bytes just re-hashed to), in index order. The compacted log replaces
    /// the partial log under the same name and in the same record format, so a crash between
    /// the two leaves a readable partial upload. No Flow node list: it needs the whole tree.
    #[allow(clippy::type_complexity)]
    fn shard_proofs(
        &self,
        p: &Arc<PartialFile>,
        seg_roots: &[Hash],
    ) -> Result<(Meta, (&'static str, Vec<u8>), Held), RpcError> {
        let proofs: BTreeMap<u64, Proof> = {
            let st = p.state.lock().expect("poisoned");
            let log = st
                .proofs
                .as_ref()
                .expect("a sharded partial upload has a proof log");
            (0..p.layout.segments())
                .filter(|&i| st.present[i as usize])
                .filter_map(|i| Some((i, log.by_index.get(&i)?.clone())))
                .collect()
        };
        let own = p.shard.file_segments(p.start_entry, p.layout.segments());
        let unproven: Vec<u64> = own
            .iter()
            .copied()
            .filter(|i| {
                proofs.get(i).and_then(|pr| pr.lemma.first()) != Some(&seg_roots[*i as usize])
            })
            .collect();
        if !unproven.is_empty() {
            // Cannot happen: a segment is stored only with its proof. Upload them again.
            return Err(self.discard_damaged(p, unproven));
        }
        let mut bytes = Vec::new();
        for (i, proof) in &proofs {
            push_proof_record(&mut bytes, *i, proof);
        }
        let meta = Meta {
            root: p.root,
            size: p.layout.size(),
            seq: p.seq,
            start_entry: p.start_entry,
            merkle_nodes: vec![],
        };
        Ok((meta, (PROOFS, bytes), Held::Shard(proofs)))
    }

    /// Segments whose bytes on disk no longer hash to the segment root they were verified with:
    /// forget them, so they are uploaded again.
    fn discard_damaged(&self, p: &Arc<PartialFile>, bad: Vec<u64>) -> RpcError {
        let mut st = p.state.lock().expect("poisoned");
        for &i in &bad {
            if st.present[i as usize] {
                st.present[i as usize] = false;
                st.fresh[i as usize] = false;
                st.count -= 1;
            }
        }
        let mut good = Vec::new();
        for (i, present) in st.present.iter().enumerate() {
            if *present {
                good.extend_from_slice(&record(i as u64, &st.seg_roots[i]));
            }
        }
        let path = p.dir.join("journal");
        let rewrite = write_atomically(&path, &good)
            .and_then(|()| OpenOptions::new().append(true).open(&path));
        match rewrite {
            Ok(j) => st.journal = j,
            Err(e) => return io_err(format!("rewriting the journal of {}", p.root), e),
        }
        tracing::error!(root = %p.root, ?bad, "complete upload did not re-hash to its root; segments discarded");
        RpcError::new(
            codes::INTEGRITY,
            "integrity check failed at finalization",
            if p.shard.num_shard > 1 {
                format!(
                    "segments of file {} did not re-hash to the roots they were verified with \
                     from the node's disk; segments {:?} were discarded: upload them again",
                    p.root, bad
                )
            } else {
                format!(
                    "file {} did not re-hash to its root from the node's disk; segments {:?} were \
                     discarded: upload them again",
                    p.root, bad
                )
            },
        )
    }

    fn tx(
        root: Hash,
        size: u64,
        seq: u64,
        start_entry: u64,
        merkle_nodes: Vec<(u64, Hash)>,
    ) -> Transaction {
        Transaction {
            stream_ids: vec![],
            data: vec![],
            data_merkle_root: root,
            merkle_nodes,
            start_entry_index: start_entry,
            size,
            seq,
        }
    }

    /// Flow mode: the last block whose submissions to `flow` are all registered here.
    pub(crate) fn flow_cursor(
        &self,
        flow: alloy_primitives::Address,
    ) -> std::io::Result<Option<FlowCursor>> {
        self.flow_log()?.lock().expect("poisoned").cursor(flow)
    }

    /// Flow mode: records how far the Flow's submissions are all registered.
    pub(crate) fn set_flow_cursor(&self, cursor: FlowCursor) -> std::io::Result<()> {
        self.flow_log()?
            .lock()
            .expect("poisoned")
            .set_cursor(cursor)
    }

    fn flow_log(&self) -> std::io::Result<&Mutex<Submissions>> {
        self.submissions.as_ref().ok_or_else(|| {
            std::io::Error::other(
                "this node does not follow a Flow contract: it takes no submissions",
            )
        })
    }

    /// Records a Flow submission (Flow mode): its file may now be uploaded. Returns whether it
    /// was new. A second submission of the same root keeps the first.
    pub(crate) fn register_submission(&self, submitted: Submitted) -> std::io::Result<bool> {
        let Some(known) = &self.submissions else {
            return Err(std::io::Error::other(
                "this node does not follow a Flow contract: it takes no submissions",
            ));
        };
        // On disk first: a failed write leaves the submission unknown, so it is retried.
        if !known.lock().expect("poisoned").record(submitted)? {
            return Ok(false);
        }
        let mut index = self.index.lock().expect("poisoned");
        index.next_seq = index.next_seq.max(submitted.seq + 1);
        Ok(true)
    }

    /// A known submission whose file has no segment here yet.
    fn submitted_only(&self, root: &Hash) -> Option<FileInfo> {
        let known = self.submissions.as_ref()?.lock().expect("poisoned");
        let s = known.get(root)?;
        Some(FileInfo {
            tx: Self::tx(s.root, s.size, s.seq, s.start_entry, vec![]),
            finalized: false,
            is_cached: false,
            uploaded_seg_num: 0,
            pruned: false,
        })
    }

    /// `zgs_getFileInfo`.
    pub(crate) fn file_info(&self, root: &Hash) -> Option<FileInfo> {
        let Some(entry) = self.entry(root) else {
            return self.submitted_only(root);
        };
        Some(match entry {
            Entry::Final(f) => FileInfo {
                tx: Self::tx(
                    f.meta.root,
                    f.meta.size,
                    f.meta.seq,
                    f.meta.start_entry,
                    f.meta.merkle_nodes.clone(),
                ),
                finalized: true,
                is_cached: false,
                uploaded_seg_num: FileLayout::new(f.meta.size).segments(),
                pruned: false,
            },
            Entry::Partial(p) => FileInfo {
                tx: Self::tx(p.root, p.layout.size(), p.seq, p.start_entry, vec![]),
                finalized: false,
                is_cached: false,
                uploaded_seg_num: p.state.lock().expect("poisoned").count,
                pruned: false,
            },
        })
    }

    /// The root of the file with submission sequence number `seq` (stored, being stored, or in
    /// Flow mode only submitted).
    pub(crate) fn root_of_seq(&self, seq: u64) -> Option<Hash> {
        let stored = self
            .index
            .lock()
            .expect("poisoned")
            .by_seq
            .get(&seq)
            .copied();
        stored.or_else(|| {
            let known = self.submissions.as_ref()?.lock().expect("poisoned");
            known.root_of_seq(seq)
        })
    }

    /// `zgs_getFileInfoByTxSeq`.
    pub(crate) fn file_info_by_seq(&self, seq: u64) -> Option<FileInfo> {
        self.file_info(&self.root_of_seq(seq)?)
    }

    /// `licen_uploadedSegments`.
    pub(crate) fn uploaded_segments(&self, root: &Hash) -> Option<UploadedSegments> {
        Some(match self.entry(root)? {
            Entry::Final(f) => {
                let total = FileLayout::new(f.meta.size).segments();
                let bitmap = match &f.held {
                    Held::Whole(_) => vec![0xff; total.div_ceil(8) as usize],
                    Held::Shard(proofs) => {
                        let mut bitmap = vec![0u8; total.div_ceil(8) as usize];
                        for &i in proofs.keys() {
                            bitmap[(i / 8) as usize] |= 1 << (i % 8);
                        }
                        bitmap
                    }
                };
                UploadedSegments {
                    total,
                    bitmap,
                    finalized: true,
                }
            }
            Entry::Partial(p) => {
                let st = p.state.lock().expect("poisoned");
                let mut bitmap = vec![0u8; st.present.len().div_ceil(8)];
                for (i, &b) in st.present.iter().enumerate() {
                    if b {
                        bitmap[i / 8] |= 1 << (i % 8);
                    }
                }
                UploadedSegments {
                    total: st.present.len() as u64,
                    bitmap,
                    finalized: false,
                }
            }
        })
    }

    fn final_file(&self, root: &Hash) -> Option<Arc<FinalFile>> {
        match self.entry(root)? {
            Entry::Final(f) => Some(f),
            Entry::Partial(_) => None,
        }
    }

    fn read(f: &FinalFile, off: u64, len: usize) -> Result<Vec<u8>, RpcError> {
        let path = f.dir.join("data");
        let file =
            File::open(&path).map_err(|e| io_err(format!("opening {}", path.display()), e))?;
        let mut buf = vec![0u8; len];
        read_exact_at(&file, &mut buf, off)
            .map_err(|e| io_err(format!("reading {}", path.display()), e))?;
        Ok(buf)
    }

    /// `zgs_downloadSegmentWithProof`: appends the segment with its proof as JSON to `out`, or
    /// `null` unless the file is finalized here and the segment is of this node's shard. The bytes are read into a per-thread buffer and
    /// base64-encoded straight into `out` (no zero-filled buffer, struct or string per request).
    pub(crate) fn segment_with_proof_json(
        &self,
        root: &Hash,
        index: u64,
        mut out: Vec<u8>,
    ) -> Result<Vec<u8>, RpcError> {
        let Some(f) = self.final_file(root) else {
            out.extend_from_slice(b"null");
            return Ok(out);
        };
        let layout = FileLayout::new(f.meta.size);
        if index >= layout.segments() {
            return Err(RpcError::invalid_params(
                "index",
                format!(
                    "index out of bound: segment {index} requested, the file has {} segments (0..{})",
                    layout.segments(),
                    layout.segments()
                ),
            ));
        }
        let proof = match &f.held {
            Held::Whole(tree) => std::borrow::Cow::Owned(tree.proof(index).map_err(|e| {
                RpcError::new(codes::INTERNAL_ERROR, "Internal error", e.to_string())
            })?),
            Held::Shard(proofs) => match proofs.get(&index) {
                Some(p) => std::borrow::Cow::Borrowed(p),
                // Another shard's segment: not here, as for an unknown file.
                None => {
                    out.extend_from_slice(b"null");
                    return Ok(out);
                }
            },
        };
        let path = f.dir.join("data");
        let file =
            File::open(&path).map_err(|e| io_err(format!("opening {}", path.display()), e))?;
        let len = layout.segment_data_len(index);
        SEGMENT_BUF.with_borrow_mut(|buf| {
            if buf.len() < len {
                buf.resize(len, 0);
            }
            read_exact_at(&file, &mut buf[..len], layout.segment_offset(index))
                .map_err(|e| io_err(format!("reading {}", path.display()), e))?;
            rpc::write_segment_json(&mut out, root, &buf[..len], index, &proof, f.meta.size);
            Ok(out)
        })
    }

    /// `zgs_downloadSegment`: chunks `[start, end)`; `None` unless finalized here with every
    /// segment the range touches.
    pub(crate) fn chunks(
        &self,
        root: &Hash,
        start: u64,
        end: u64,
    ) -> Result<Option<Vec<u8>>, RpcError> {
        if start >= end {
            return Err(RpcError::invalid_params(
                "end_index",
                format!("invalid chunk index: end ({end}) must be greater than start ({start})"),
            ));
        }
        if end - start > crate::merkle::SEGMENT_CHUNKS as u64 {
            return Err(RpcError::invalid_params(
                "end_index",
                format!(
                    "exceeds maximum chunks {}: asked for {} chunks",
                    crate::merkle::SEGMENT_CHUNKS,
                    end - start
                ),
            ));
        }
        let Some(f) = self.final_file(root) else {
            return Ok(None);
        };
        let chunks = FileLayout::new(f.meta.size).data_chunks();
        if end > chunks {
            return Err(RpcError::invalid_params(
                "end_index",
                format!("end entry index exceeds tx size: end={end}, the file has {chunks} chunks"),
            ));
        }
        if let Held::Shard(proofs) = &f.held {
            let segment = |chunk: u64| chunk / SEGMENT_CHUNKS as u64;
            if !(segment(start)..=segment(end - 1)).all(|i| proofs.contains_key(&i)) {
                // The range touches another shard's segment: not here.
                return Ok(None);
            }
        }
        let data = Self::read(
            &f,
            start * CHUNK_SIZE as u64,
            ((end - start) * CHUNK_SIZE as u64) as usize,
        )?;
        Ok(Some(data))
    }
}

/// The mode a data directory was first used in (`local` or `flow`).
const MODE: &str = "mode";
/// The shard position a data directory holds (`SHARD_ID/NUM_SHARD`).
const SHARD: &str = "shard";
/// A sharded node's proofs of its own segments (log while partial, compacted when finalized).
const PROOFS: &str = "proofs";

fn not_submitted(root: &Hash) -> RpcError {
    RpcError::invalid_params(
        "root",
        format!(
            "no Flow submission of file {root} is known to this node: submit it to the Flow \
             contract first (`licen put --flow`), wait until the node has seen it, then upload"
        ),
    )
}

fn already_finalized() -> RpcError {
    RpcError::invalid_params("root", rpc::ALREADY_FINALIZED)
}

fn size_conflict(root: &Hash, known: u64, got: u64) -> RpcError {
    RpcError::new(
        codes::SIZE_CONFLICT,
        "Invalid params: file_size",
        format!(
            "file {root} is already being stored with fileSize {known}, this segment says {got}: \
             finish or abandon the first upload, or check the file size"
        ),
    )
}

/// Checks a segment's shape and proof against its own root; returns its segment root.
fn verify_segment(s: &SegmentWithProof) -> Result<Hash, RpcError> {
    let layout = FileLayout::new(s.file_size);
    let segments = layout.segments();
    if s.index >= segments {
        return Err(RpcError::invalid_params(
            "index",
            format!(
                "index out of bound: segment {} of a {}-byte file, which has {segments} segments",
                s.index, s.file_size
            ),
        ));
    }
    let expected = layout.segment_data_len(s.index);
    if s.data.len() != expected {
        return Err(RpcError::invalid_params(
            "data",
            format!(
                "invalid data length: segment {} of a {}-byte file must carry {expected} bytes \
                 (256 KiB, the last segment rounded up to 256), got {}",
                s.index,
                s.file_size,
                s.data.len()
            ),
        ));
    }
    let file_bytes = layout.segment_file_bytes(s.index);
    if s.data[file_bytes..].iter().any(|&b| b != 0) {
        return Err(RpcError::invalid_params(
            "data",
            format!(
                "segment {}: the bytes after the end of the file (fileSize {}) must be zero",
                s.index, s.file_size
            ),
        ));
    }
    let seg_root = segment_root(&s.data, layout.segment_tree_chunks(s.index));
    s.proof
        .verify_segment(&s.root, &seg_root, s.index, &layout)
        .map_err(|e| {
            RpcError::invalid_params(
                "proof",
                format!(
                    "validation failed for segment {} of {}: {e}",
                    s.index, s.root
                ),
            )
        })?;
    Ok(seg_root)
}
