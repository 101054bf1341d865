//! The 0G Merkle root of a file, its segment tree and the Flow submission node list.
//!
//! Owns the exact arithmetic 0G uses to name a file (checked against 0G's Go client
//! `core/merkle`, `core/dataflow.go`, `core/flow.go` and the Rust node's `shared_types`):
//!
//! - the file is cut into 256-byte chunks; the last chunk is zero-filled;
//! - a leaf is `keccak256(chunk)`, a parent is `keccak256(left ‖ right)`, and a node without a
//!   partner at the end of a level is promoted to the next level unchanged;
//! - the chunk count `n` is padded: `n` itself if it is a power of two, otherwise rounded up to a
//!   multiple of `max(1, nextPow2(n) / 16)`; padding chunks are zero chunks;
//! - segments are 1024 chunks (256 KiB). Because a full segment is a power-of-two subtree, the
//!   file root is the same tree built over segment roots, which is how this module computes
//!   it: constant memory, one pass, segments hashed in parallel.
//!
//! An empty file has one (zero) chunk, as 0G's own arithmetic gives (`NumSplits(0) = 1`), so
//! its root is `keccak256(256 zero bytes)`. (0G itself refuses to store empty files; the local
//! node accepts them.)
//!
//! This module must never do I/O beyond the `Read`/`Write` it is handed, and never look at
//! what the bytes mean: it hashes ciphertext.

use std::io::{self, Read, Write};
use std::sync::OnceLock;

use alloy_primitives::{B256, b256};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::keccak::{hash_chunks, hash_pairs_in_place, keccak256 as keccak, keccak256_pair};
use crate::proof::Proof;

/// A 32-byte hash: file roots, segment roots, Merkle nodes. Serialises as `0x`-prefixed hex.
pub type Hash = B256;

/// Bytes in a chunk (a Merkle leaf; 0G also calls it a sector or an entry).
pub const CHUNK_SIZE: usize = 256;
/// Chunks in a segment.
pub const SEGMENT_CHUNKS: usize = 1024;
/// Bytes in a segment (256 KiB).
pub const SEGMENT_SIZE: usize = CHUNK_SIZE * SEGMENT_CHUNKS;
/// Height of a full segment's subtree (log2 of [`SEGMENT_CHUNKS`]).
pub const SEGMENT_HEIGHT: u32 = 10;

/// `keccak256` of one zero chunk: the padding leaf, `0xd397b3b0…e0b5`.
pub const ZERO_CHUNK_HASH: Hash =
    b256!("d397b3b043d87fcd6fad1291ff0bfd16401c274896d8c63a923727f077b8e0b5");

/// Segments hashed together (in parallel) by [`RootBuilder`]: 16 × 256 KiB = 4 MiB buffered.
const BATCH_SEGMENTS: usize = 16;

/// Name of the keccak implementation compiled in.
pub fn keccak_backend() -> &'static str {
    crate::keccak::backend()
}

/// `keccak256(data)`.
pub fn keccak256(data: &[u8]) -> Hash {
    keccak(data)
}

/// A Merkle parent: `keccak256(left ‖ right)`.
pub fn hash_pair(left: &Hash, right: &Hash) -> Hash {
    keccak256_pair(left, right)
}

/// Root of a complete all-zero subtree of `2^height` chunks (`height` 0 is one zero chunk).
pub fn zero_subtree_root(height: u32) -> Hash {
    static TABLE: OnceLock<Vec<Hash>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = Vec::with_capacity(65);
        t.push(ZERO_CHUNK_HASH);
        for i in 1..=64 {
            let prev = t[i - 1];
            t.push(hash_pair(&prev, &prev));
        }
        t
    });
    table[height.min(64) as usize]
}

/// 0G's tree over `leaves`, reducing level by level; an unpaired last node is promoted
/// unchanged. `None` for no leaves.
pub fn root_of_leaves(leaves: &[Hash]) -> Option<Hash> {
    if leaves.is_empty() {
        return None;
    }
    let mut level = leaves.to_vec();
    reduce_in_place(&mut level);
    Some(level[0])
}

/// Reduces `level` (non-empty) to its root in place; `level[0]` is the root afterwards.
fn reduce_in_place(level: &mut Vec<Hash>) {
    while level.len() > 1 {
        let n = level.len();
        let half = n / 2;
        hash_pairs_in_place(level);
        if n % 2 == 1 {
            level[half] = level[n - 1];
            level.truncate(half + 1);
        } else {
            level.truncate(half);
        }
    }
}

/// One level up: pairs hashed, an unpaired last node promoted.
fn next_level(level: &[Hash]) -> Vec<Hash> {
    level
        .chunks(2)
        .map(|p| {
            if p.len() == 2 {
                hash_pair(&p[0], &p[1])
            } else {
                p[0]
            }
        })
        .collect()
}

/// All levels of 0G's tree over `leaves` (non-empty): `levels[0] = leaves`, last = `[root]`.
fn build_levels(leaves: Vec<Hash>) -> Vec<Vec<Hash>> {
    let mut levels = vec![leaves];
    while levels.last().map(Vec::len).unwrap_or(0) > 1 {
        let next = next_level(levels.last().expect("non-empty"));
        levels.push(next);
    }
    levels
}

/// The proof of leaf `index` from the tree's levels.
fn proof_from_levels(levels: &[Vec<Hash>], index: usize) -> Proof {
    let root = levels.last().expect("non-empty")[0];
    if levels[0].len() == 1 {
        return Proof {
            lemma: vec![root],
            path: vec![],
        };
    }
    let mut lemma = vec![levels[0][index]];
    let mut path = Vec::new();
    let mut i = index;
    for level in &levels[..levels.len() - 1] {
        if i.is_multiple_of(2) {
            if i + 1 < level.len() {
                lemma.push(level[i + 1]);
                path.push(true);
            }
            // else: promoted unchanged, no sibling at this level.
        } else {
            lemma.push(level[i - 1]);
            path.push(false);
        }
        i /= 2;
    }
    lemma.push(root);
    Proof { lemma, path }
}

/// The proof of leaf `index` in 0G's tree over `leaves` (`None` if out of range).
pub fn leaf_proof(leaves: &[Hash], index: usize) -> Option<Proof> {
    (index < leaves.len()).then(|| proof_from_levels(&build_levels(leaves.to_vec()), index))
}

/// Smallest power of two `>= x` (1 for 0).
pub fn next_pow2(x: u64) -> u64 {
    x.max(1).next_power_of_two()
}

/// 0G's padded chunk count for a file of `chunks` chunks (`ComputePaddedSize` in 0G's client):
/// `chunks` if it is a power of two, else rounded up to a multiple of
/// `max(1, nextPow2(chunks) / 16)`.
pub fn padded_chunk_count(chunks: u64) -> u64 {
    let np2 = next_pow2(chunks);
    if np2 == chunks {
        return chunks;
    }
    let unit = if np2 >= 16 { np2 / 16 } else { 1 };
    chunks.div_ceil(unit) * unit
}

/// Where every byte of a file of a given size sits in 0G's chunk/segment/padding structure.
/// Everything here is derived from the size alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileLayout {
    size: u64,
}

impl FileLayout {
    /// Layout of a file of `size` bytes.
    pub fn new(size: u64) -> Self {
        FileLayout { size }
    }

    /// File size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Chunks holding file bytes: `ceil(size / 256)` (0 for an empty file).
    pub fn data_chunks(&self) -> u64 {
        self.size.div_ceil(CHUNK_SIZE as u64)
    }

    /// Leaves before padding: `max(1, data_chunks)` (an empty file is one zero chunk).
    pub fn chunks(&self) -> u64 {
        self.data_chunks().max(1)
    }

    /// Leaves after 0G's padding ([`padded_chunk_count`]).
    pub fn padded_chunks(&self) -> u64 {
        padded_chunk_count(self.chunks())
    }

    /// Segments that carry file bytes: the segments an uploader sends (at least 1).
    pub fn segments(&self) -> u64 {
        self.chunks().div_ceil(SEGMENT_CHUNKS as u64)
    }

    /// Leaves of the file tree's top part: segments after padding.
    pub fn padded_segments(&self) -> u64 {
        self.padded_chunks().div_ceil(SEGMENT_CHUNKS as u64)
    }

    /// Byte offset of segment `index` in the file.
    pub fn segment_offset(&self, index: u64) -> u64 {
        index * SEGMENT_SIZE as u64
    }

    /// Bytes of segment `index` on the wire: 256 KiB, except the last, which is the remaining
    /// bytes rounded up to a whole chunk (0 for an empty file).
    pub fn segment_data_len(&self, index: u64) -> usize {
        let start = self.segment_offset(index);
        let end = (self.data_chunks() * CHUNK_SIZE as u64).min(start + SEGMENT_SIZE as u64);
        end.saturating_sub(start) as usize
    }

    /// File bytes (without chunk padding) in segment `index`.
    pub fn segment_file_bytes(&self, index: u64) -> usize {
        let start = self.segment_offset(index);
        let end = self.size.min(start + SEGMENT_SIZE as u64);
        end.saturating_sub(start) as usize
    }

    /// Leaves of segment `index` in the tree, padding included: 1024 except possibly for the
    /// last padded segment.
    pub fn segment_tree_chunks(&self, index: u64) -> usize {
        let start = index * SEGMENT_CHUNKS as u64;
        (self.padded_chunks().saturating_sub(start)).min(SEGMENT_CHUNKS as u64) as usize
    }
}

/// Leaf hashes of one segment: its data cut into chunks (the last one zero-filled), then zero
/// chunks up to `tree_chunks` leaves.
pub fn segment_leaves(data: &[u8], tree_chunks: usize) -> Vec<Hash> {
    let mut leaves = Vec::with_capacity(tree_chunks.max(1));
    let whole = data.len() / CHUNK_SIZE;
    leaves.resize(whole, Hash::ZERO);
    hash_chunks(&data[..whole * CHUNK_SIZE], &mut leaves);
    let rest = &data[whole * CHUNK_SIZE..];
    if !rest.is_empty() {
        let mut last = [0u8; CHUNK_SIZE];
        last[..rest.len()].copy_from_slice(rest);
        leaves.push(keccak(&last));
    }
    while leaves.len() < tree_chunks {
        leaves.push(ZERO_CHUNK_HASH);
    }
    leaves
}

/// Root of one segment: [`segment_leaves`] reduced with 0G's tree rule. `data` longer than
/// `tree_chunks` chunks is an error in the caller; it is hashed as given.
pub fn segment_root(data: &[u8], tree_chunks: usize) -> Hash {
    if data.len() == SEGMENT_SIZE && tree_chunks == SEGMENT_CHUNKS {
        return full_segment_root(data);
    }
    let mut leaves = segment_leaves(data, tree_chunks);
    if leaves.is_empty() {
        return ZERO_CHUNK_HASH;
    }
    reduce_in_place(&mut leaves);
    leaves[0]
}

/// Root of a full 256 KiB segment without heap allocation.
fn full_segment_root(data: &[u8]) -> Hash {
    debug_assert_eq!(data.len(), SEGMENT_SIZE);
    let mut level = [Hash::ZERO; SEGMENT_CHUNKS];
    hash_chunks(data, &mut level);
    let mut n = SEGMENT_CHUNKS;
    while n > 1 {
        hash_pairs_in_place(&mut level[..n]);
        n /= 2;
    }
    level[0]
}

/// Root of `n` zero chunks under 0G's tree rule (any `n >= 1`).
fn zero_root(n: usize) -> Hash {
    if n.is_power_of_two() {
        return zero_subtree_root(n.trailing_zeros());
    }
    let mut leaves = vec![ZERO_CHUNK_HASH; n];
    reduce_in_place(&mut leaves);
    leaves[0]
}

/// Hashes the segment roots of the data segments of `data`, which must start at a segment
/// boundary and be whole segments except possibly at the end of the file.
fn hash_segments(data: &[u8], first_index: u64, layout: &FileLayout, parallel: bool) -> Vec<Hash> {
    let work = |(i, seg): (usize, &[u8])| {
        segment_root(seg, layout.segment_tree_chunks(first_index + i as u64))
    };
    if parallel && data.len() > SEGMENT_SIZE {
        data.par_chunks(SEGMENT_SIZE)
            .enumerate()
            .map(work)
            .collect()
    } else {
        data.chunks(SEGMENT_SIZE).enumerate().map(work).collect()
    }
}

/// One node of a Flow submission: the root of a power-of-two run of chunks and its height
/// (`log2` of the chunk count).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SubmissionNode {
    /// Root of the run of chunks.
    pub root: Hash,
    /// `log2` of the number of chunks the node covers.
    pub height: u32,
}

/// The tree over a file's segment roots: the file root, every segment's proof, and the Flow
/// submission nodes. Memory: about 64 bytes per segment (all levels), i.e. 256 KiB for 1 GiB.
#[derive(Clone, Debug)]
pub struct FileTree {
    layout: FileLayout,
    /// `levels[0]` = segment roots (all padded segments); last level = `[root]`.
    levels: Vec<Vec<Hash>>,
    /// Leaf hashes of the last padded segment when it has fewer than 1024 chunks (needed for
    /// submission nodes smaller than a segment); `None` when not known.
    tail_leaves: Option<Vec<Hash>>,
}

impl FileTree {
    /// Builds the tree from the roots of every padded segment (as a node stores them), or of the
    /// data segments only (padding segments are then filled in).
    pub fn from_segment_roots(layout: FileLayout, mut roots: Vec<Hash>) -> Result<Self> {
        let data = layout.segments() as usize;
        let padded = layout.padded_segments() as usize;
        if roots.len() != data && roots.len() != padded {
            return Err(Error::InvalidInput(format!(
                "a file of {} bytes has {data} data segments ({padded} after padding), but {} \
                 segment roots were given",
                layout.size(),
                roots.len()
            )));
        }
        for i in roots.len()..padded {
            roots.push(zero_root(layout.segment_tree_chunks(i as u64)));
        }
        Ok(Self::from_all_segment_roots(layout, roots, None))
    }

    fn from_all_segment_roots(
        layout: FileLayout,
        roots: Vec<Hash>,
        tail_leaves: Option<Vec<Hash>>,
    ) -> Self {
        FileTree {
            layout,
            levels: build_levels(roots),
            tail_leaves,
        }
    }

    /// Attaches the chunk hashes of the last padded segment, computed from the bytes of the
    /// last data segment, so that [`submission_nodes`](Self::submission_nodes) works on a tree
    /// rebuilt from segment roots.
    pub fn with_tail_data(mut self, last_data_segment: &[u8]) -> Self {
        let last = self.layout.padded_segments() - 1;
        let n = self.layout.segment_tree_chunks(last);
        self.tail_leaves = if n == SEGMENT_CHUNKS {
            None
        } else if last == self.layout.segments() - 1 {
            Some(segment_leaves(last_data_segment, n))
        } else {
            Some(vec![ZERO_CHUNK_HASH; n])
        };
        self
    }

    /// Hashes a whole in-memory file (in parallel when it spans several segments).
    pub fn from_bytes(data: &[u8]) -> Self {
        let mut b = RootBuilder::new();
        b.update(data);
        b.finish()
    }

    /// Hashes everything `reader` yields. Returns the tree (whose layout carries the size).
    pub fn from_reader(mut reader: impl Read) -> io::Result<Self> {
        let mut b = RootBuilder::new();
        let mut buf = vec![0u8; BATCH_SEGMENTS * SEGMENT_SIZE];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            b.update(&buf[..n]);
        }
        Ok(b.finish())
    }

    /// The file root (the 0G file id).
    pub fn root(&self) -> Hash {
        self.levels.last().expect("a tree has at least one level")[0]
    }

    /// The file's layout (size, chunk and segment counts).
    pub fn layout(&self) -> FileLayout {
        self.layout
    }

    /// Roots of all padded segments, in order.
    pub fn segment_roots(&self) -> &[Hash] {
        &self.levels[0]
    }

    /// Roots of the data segments only (what a client commits for a file: the padding segments'
    /// roots follow from the size).
    pub fn data_segment_roots(&self) -> &[Hash] {
        &self.levels[0][..self.layout.segments() as usize]
    }

    /// Root of segment `index`, if it exists.
    pub fn segment_root(&self, index: u64) -> Option<Hash> {
        self.levels[0].get(index as usize).copied()
    }

    /// The proof of segment `index` in 0G's `{lemma, path}` form: lemma = [segment root,
    /// siblings bottom-up, file root], `path[i]` true when the node at that level is a left
    /// child; a one-segment file has `lemma = [root]`, `path = []`.
    pub fn proof(&self, index: u64) -> Result<Proof> {
        let n = self.levels[0].len() as u64;
        if index >= n {
            return Err(Error::InvalidInput(format!(
                "segment index {index} is out of range: the file has {n} segments (after padding)"
            )));
        }
        Ok(proof_from_levels(&self.levels, index as usize))
    }

    /// The Flow submission node list: the padded chunk count split into descending powers of
    /// two, each with the root of its run of chunks and `height = log2(chunks)`.
    pub fn submission_nodes(&self) -> Result<Vec<SubmissionNode>> {
        let padded = self.layout.padded_chunks();
        let mut nodes = Vec::new();
        let mut offset = 0u64; // in chunks
        let mut bit = 63;
        loop {
            let size = 1u64 << bit;
            if padded & size != 0 {
                let root = self.range_root(offset, size)?;
                nodes.push(SubmissionNode { root, height: bit });
                offset += size;
            }
            if bit == 0 {
                break;
            }
            bit -= 1;
        }
        Ok(nodes)
    }

    /// Root of the aligned power-of-two run of `size` chunks starting at chunk `offset`.
    fn range_root(&self, offset: u64, size: u64) -> Result<Hash> {
        let seg = SEGMENT_CHUNKS as u64;
        if size >= seg {
            let level = (size / seg).trailing_zeros() as usize;
            let idx = (offset / size) as usize;
            return Ok(self.levels[level][idx]);
        }
        // A run smaller than a segment lies inside the last padded segment.
        let leaves = self.tail_leaves.as_ref().ok_or_else(|| {
            Error::InvalidInput(
                "this tree was rebuilt from segment roots only; the Flow submission needs the \
                 chunk hashes of the last segment: build the tree from the file's bytes"
                    .into(),
            )
        })?;
        let start = (offset % seg) as usize;
        let run = &leaves[start..start + size as usize];
        Ok(root_of_leaves(run).expect("non-empty run"))
    }
}

/// Streaming 0G root computation: write bytes in (it implements [`std::io::Write`]), then
/// [`finish`](Self::finish). Keeps one batch of segments (4 MiB) plus 32 bytes per segment;
/// full batches are hashed in parallel on the current rayon pool.
#[derive(Debug)]
pub struct RootBuilder {
    buf: Vec<u8>,
    roots: Vec<Hash>,
    total: u64,
    parallel: bool,
}

impl Default for RootBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl RootBuilder {
    /// A builder that hashes segments in parallel on the current rayon pool.
    pub fn new() -> Self {
        RootBuilder {
            buf: Vec::with_capacity(BATCH_SEGMENTS * SEGMENT_SIZE),
            roots: Vec::new(),
            total: 0,
            parallel: true,
        }
    }

    /// A builder that hashes on the calling thread only.
    pub fn sequential() -> Self {
        RootBuilder {
            parallel: false,
            ..Self::new()
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// True when nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Feeds bytes.
    pub fn update(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        let cap = BATCH_SEGMENTS * SEGMENT_SIZE;
        // Hash whole batches straight from the caller's slice, without copying.
        if self.buf.is_empty() {
            let whole = data.len() / cap * cap;
            if whole > 0 {
                self.hash_full(&data[..whole]);
                data = &data[whole..];
            }
        }
        while !data.is_empty() {
            let take = (cap - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == cap {
                let buf = std::mem::take(&mut self.buf);
                self.hash_full(&buf);
                self.buf = buf;
                self.buf.clear();
            }
        }
    }

    /// Hashes whole segments (always 1024 tree chunks: a full data segment is never shortened
    /// by padding).
    fn hash_full(&mut self, data: &[u8]) {
        debug_assert_eq!(data.len() % SEGMENT_SIZE, 0);
        if self.parallel && data.len() > SEGMENT_SIZE {
            let mut out = Vec::with_capacity(data.len() / SEGMENT_SIZE);
            data.par_chunks(SEGMENT_SIZE)
                .map(full_segment_root)
                .collect_into_vec(&mut out);
            self.roots.extend(out);
        } else {
            self.roots
                .extend(data.chunks(SEGMENT_SIZE).map(full_segment_root));
        }
    }

    /// Finishes: hashes what is buffered, adds the padding segments and builds the tree.
    pub fn finish(mut self) -> FileTree {
        let layout = FileLayout::new(self.total);
        let first = self.roots.len() as u64;
        let padded = layout.padded_segments();
        let last = padded - 1;
        let mut tail_leaves = None;
        let buf = std::mem::take(&mut self.buf);
        // Whole segments in the buffer, then the (possibly partial) last data segment.
        let whole = if buf.len().is_multiple_of(SEGMENT_SIZE) && !buf.is_empty() {
            buf.len() - SEGMENT_SIZE
        } else {
            buf.len() / SEGMENT_SIZE * SEGMENT_SIZE
        };
        let mut roots = std::mem::take(&mut self.roots);
        roots.extend(hash_segments(&buf[..whole], first, &layout, self.parallel));
        let tail_index = roots.len() as u64;
        if tail_index < layout.segments() {
            let tail = &buf[whole..];
            let tree_chunks = layout.segment_tree_chunks(tail_index);
            let mut leaves = segment_leaves(tail, tree_chunks);
            if tail_index == last && tree_chunks < SEGMENT_CHUNKS {
                tail_leaves = Some(leaves.clone());
            }
            reduce_in_place(&mut leaves);
            roots.push(leaves[0]);
        }
        for i in roots.len() as u64..padded {
            let n = layout.segment_tree_chunks(i);
            if i == last && n < SEGMENT_CHUNKS {
                tail_leaves = Some(vec![ZERO_CHUNK_HASH; n]);
            }
            roots.push(zero_root(n));
        }
        FileTree::from_all_segment_roots(layout, roots, tail_leaves)
    }
}

impl Write for RootBuilder {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.update(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The 0G root of `data` (parallel for large inputs).
pub fn root(data: &[u8]) -> Hash {
    FileTree::from_bytes(data).root()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_root(data: &[u8]) -> Hash {
        let layout = FileLayout::new(data.len() as u64);
        let mut leaves: Vec<Hash> = Vec::new();
        for i in 0..layout.padded_chunks() as usize {
            let mut c = [0u8; CHUNK_SIZE];
            let s = (i * CHUNK_SIZE).min(data.len());
            let e = ((i + 1) * CHUNK_SIZE).min(data.len());
            c[..e - s].copy_from_slice(&data[s..e]);
            leaves.push(keccak(&c));
        }
        root_of_leaves(&leaves).unwrap()
    }

    #[test]
    fn padding_rule_matches_0g() {
        // From 0G's ComputePaddedSize.
        assert_eq!(padded_chunk_count(1), 1);
        assert_eq!(padded_chunk_count(3), 3);
        assert_eq!(padded_chunk_count(5), 5);
        assert_eq!(padded_chunk_count(15), 15);
        assert_eq!(padded_chunk_count(17), 18);
        assert_eq!(padded_chunk_count(33), 36);
        assert_eq!(padded_chunk_count(1025), 1152);
        assert_eq!(padded_chunk_count(16385), 18432);
        assert_eq!(padded_chunk_count(1 << 20), 1 << 20);
    }

    #[test]
    fn streaming_equals_naive_for_awkward_sizes() {
        let sizes = [
            0usize,
            1,
            255,
            256,
            257,
            4095,
            SEGMENT_SIZE - 1,
            SEGMENT_SIZE,
            SEGMENT_SIZE + 1,
            2 * SEGMENT_SIZE + 300,
            17 * SEGMENT_SIZE + 7,
        ];
        for &n in &sizes {
            let data: Vec<u8> = (0..n).map(|i| (i * 31 % 251) as u8 + 1).collect();
            let expect = naive_root(&data);
            assert_eq!(root(&data), expect, "size {n}");
            // Feed in odd pieces through the Write impl.
            let mut b = RootBuilder::sequential();
            for piece in data.chunks(777) {
                b.write_all(piece).unwrap();
            }
            assert_eq!(b.finish().root(), expect, "size {n} streamed");
        }
    }

    #[test]
    fn submission_nodes_fold_to_root() {
        for n in [
            1usize,
            300,
            5000,
            SEGMENT_SIZE * 3 + 1000,
            SEGMENT_SIZE * 17 + 5,
        ] {
            let data = vec![0x5au8; n];
            let tree = FileTree::from_bytes(&data);
            let nodes = tree.submission_nodes().unwrap();
            let sum: u64 = nodes.iter().map(|x| 1u64 << x.height).sum();
            assert_eq!(sum, tree.layout().padded_chunks());
            for w in nodes.windows(2) {
                assert!(w[0].height > w[1].height);
            }
            let mut acc = nodes.last().unwrap().root;
            for node in nodes.iter().rev().skip(1) {
                acc = hash_pair(&node.root, &acc);
            }
            assert_eq!(acc, tree.root(), "size {n}");
        }
    }
}
