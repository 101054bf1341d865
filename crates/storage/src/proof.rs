//! Merkle proofs in 0G's `{lemma, path}` form and their verification.
//!
//! `lemma` = [leaf (a segment root), siblings bottom-up, root]; `path[i]` is true when the node
//! at level `i` is a left child (its sibling is on the right). A tree with a single leaf has
//! `lemma = [root]` and `path = []`. Levels where a node is promoted without a partner have no
//! entry. The leaf position is recovered from `path` and the leaf count exactly as 0G does, so a
//! proof for segment 3 cannot be passed off as a proof for segment 5.
//!
//! Owns proof checking only; it never trusts the `root` inside a lemma, always the one the
//! caller asked for.

use serde::{Deserialize, Serialize};

use crate::merkle::{FileLayout, Hash, SEGMENT_HEIGHT, hash_pair, next_pow2, zero_subtree_root};

/// A Merkle proof as 0G's JSON-RPC carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Proof {
    /// `[leaf, siblings bottom-up, root]` (or just `[root]` for a one-leaf tree).
    pub lemma: Vec<Hash>,
    /// `true` where the node on the path is a left child.
    pub path: Vec<bool>,
}

/// Why a proof was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// `lemma` must have `path.len() + 2` entries (or exactly 1 when `path` is empty).
    #[error(
        "malformed proof: {lemma} lemma entries for {path} path entries (expected path + 2, or 1 with an empty path)"
    )]
    Malformed {
        /// Entries in `lemma`.
        lemma: usize,
        /// Entries in `path`.
        path: usize,
    },
    /// `lemma[0]` is not the leaf that was hashed from the data.
    #[error("the proof is for leaf {in_proof}, but the data hashes to {computed}")]
    LeafMismatch {
        /// Leaf named by the proof.
        in_proof: Hash,
        /// Leaf computed from the data.
        computed: Hash,
    },
    /// The last lemma entry is not the expected root.
    #[error("the proof ends at root {in_proof}, but {expected} was expected")]
    RootMismatch {
        /// Root named by the proof.
        in_proof: Hash,
        /// The root the caller asked for.
        expected: Hash,
    },
    /// The path does not lead to the claimed leaf position.
    #[error("the proof's path leads to position {from_path:?} of {leaves} leaves, not {expected}")]
    PositionMismatch {
        /// Position the path encodes (`None` if it is not a valid path for this many leaves).
        from_path: Option<u64>,
        /// The position being proven.
        expected: u64,
        /// Leaves in the tree.
        leaves: u64,
    },
    /// Hashing up the path does not reach the root.
    #[error("hashing the leaf up the path gives {computed}, not the root {expected}")]
    HashMismatch {
        /// What the path hashes to.
        computed: Hash,
        /// The root.
        expected: Hash,
    },
    /// A sibling that covers only padding is not the all-zero subtree.
    #[error("the sibling at level {level} covers only zero padding but is {found}, not {expected}")]
    BadPadding {
        /// Level (0 = bottom) of the offending sibling.
        level: usize,
        /// Hash found in the proof.
        found: Hash,
        /// The all-zero subtree root it must be.
        expected: Hash,
    },
}

impl Proof {
    /// Leaf position the path encodes in a tree of `leaves` leaves (0G's rule), or `None` if
    /// the path is not a valid path in such a tree.
    pub fn position(&self, leaves: u64) -> Option<u64> {
        let mut n = leaves;
        let mut pos = 0u64;
        for &is_left in self.path.iter().rev() {
            if n <= 1 {
                return None;
            }
            let left = next_pow2(n) / 2;
            if is_left {
                n = left;
            } else {
                pos += left;
                n -= left;
            }
        }
        (n == 1).then_some(pos)
    }

    /// Verifies that `leaf` is leaf number `position` of the `leaves`-leaf tree with root
    /// `root`.
    pub fn verify(
        &self,
        root: &Hash,
        leaf: &Hash,
        position: u64,
        leaves: u64,
    ) -> Result<(), ProofError> {
        let malformed = if self.path.is_empty() {
            self.lemma.len() != 1
        } else {
            self.lemma.len() != self.path.len() + 2
        };
        if malformed {
            return Err(ProofError::Malformed {
                lemma: self.lemma.len(),
                path: self.path.len(),
            });
        }
        if self.lemma[0] != *leaf {
            return Err(ProofError::LeafMismatch {
                in_proof: self.lemma[0],
                computed: *leaf,
            });
        }
        let last = *self.lemma.last().expect("non-empty lemma");
        if last != *root {
            return Err(ProofError::RootMismatch {
                in_proof: last,
                expected: *root,
            });
        }
        match self.position(leaves) {
            Some(p) if p == position => {}
            from_path => {
                return Err(ProofError::PositionMismatch {
                    from_path,
                    expected: position,
                    leaves,
                });
            }
        }
        let mut h = *leaf;
        for (i, &is_left) in self.path.iter().enumerate() {
            let sibling = &self.lemma[i + 1];
            h = if is_left {
                hash_pair(&h, sibling)
            } else {
                hash_pair(sibling, &h)
            };
        }
        if h != *root {
            return Err(ProofError::HashMismatch {
                computed: h,
                expected: *root,
            });
        }
        Ok(())
    }

    /// Verifies the proof of segment `index` of a file with `layout` whose segment root is
    /// `segment_root`, including 0G's rule that siblings covering only padding segments are
    /// all-zero subtrees.
    pub fn verify_segment(
        &self,
        root: &Hash,
        segment_root: &Hash,
        index: u64,
        layout: &FileLayout,
    ) -> Result<(), ProofError> {
        let leaves = layout.padded_segments();
        self.verify(root, segment_root, index, leaves)?;
        self.check_rear_padding(leaves, layout.segments())
    }

    /// Siblings to the right whose whole range is padding must be zero subtrees.
    fn check_rear_padding(&self, leaves: u64, data_segments: u64) -> Result<(), ProofError> {
        let mut n = leaves;
        let mut pos = 0u64;
        let levels = self.path.len();
        for (k, &is_left) in self.path.iter().rev().enumerate() {
            let left = next_pow2(n) / 2;
            if is_left {
                // Our node is the left child; the sibling covers [pos + left, pos + n).
                if pos + left >= data_segments {
                    let level = levels - 1 - k;
                    let expected = zero_subtree_root(left.trailing_zeros() + SEGMENT_HEIGHT);
                    let found = self.lemma[level + 1];
                    if found != expected {
                        return Err(ProofError::BadPadding {
                            level,
                            found,
                            expected,
                        });
                    }
                }
                n = left;
            } else {
                pos += left;
                n -= left;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{keccak256, leaf_proof, root_of_leaves};

    #[test]
    fn positions_follow_0g() {
        // 5 leaves: leaf 4 is promoted twice, its path is a single `false`.
        let p = Proof {
            lemma: vec![],
            path: vec![false],
        };
        assert_eq!(p.position(5), Some(4));
        let p = Proof {
            lemma: vec![],
            path: vec![true, true, true],
        };
        assert_eq!(p.position(5), Some(0));
        assert_eq!(p.position(9), None); // too short for 9 leaves
    }

    #[test]
    fn chunk_level_proofs_of_small_trees() {
        // Same shape as 0G's TestTreeProof: every leaf of trees with 1..=32 leaves.
        for n in 1..=32usize {
            let leaves: Vec<Hash> = (0..n)
                .map(|i| keccak256(format!("chunk data - {i}").as_bytes()))
                .collect();
            let root = root_of_leaves(&leaves).unwrap();
            for i in 0..n {
                let p = leaf_proof(&leaves, i).unwrap();
                p.verify(&root, &leaves[i], i as u64, n as u64).unwrap();
                // The same proof must not pass for any other position.
                for j in 0..n {
                    if j != i {
                        assert!(p.verify(&root, &leaves[i], j as u64, n as u64).is_err());
                    }
                }
            }
        }
    }
}
