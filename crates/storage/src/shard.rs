//! Sharding as 0G storage does it: which node holds which segment, and which set of nodes
//! holds every segment.
//!
//! A node configured `shard_id/num_shard` (0G's `shard_position`, e.g. `0/2`) holds the
//! segments whose **position in the Flow log** `p` has `p % num_shard == shard_id`, where
//! `p = start_entry_index / 1024 + index in the file`. The position is global, not relative to
//! the file: two files of one segment each can land on different shards. `num_shard` is a power
//! of two, so shards nest: a `1/4` node holds half of what a `1/2` node holds.
//!
//! [`select`] is 0G's node selection (`shard.Select` in 0G's Go client): walk the candidates
//! and keep each one that adds coverage until every segment position is held by
//! `replicas` selected nodes. It never returns a set that does not cover every position.
//!
//! Owns no I/O: the indexer service, the client and the node all use these rules.

use std::fmt;
use std::str::FromStr;

use crate::merkle::SEGMENT_CHUNKS;
pub use crate::rpc::ShardConfig;

/// Why a shard position was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid shard position {given:?}: {reason}; expected SHARD_ID/NUM_SHARD with NUM_SHARD a \
     power of two and SHARD_ID below it, e.g. 0/1 (every segment) or 1/2 (every other segment)"
)]
pub struct InvalidShard {
    /// What was given.
    pub given: String,
    /// What was wrong with it.
    pub reason: &'static str,
}

impl ShardConfig {
    /// The configuration of a node that holds every segment.
    pub const WHOLE: ShardConfig = ShardConfig {
        num_shard: 1,
        shard_id: 0,
    };

    /// Checks 0G's rule: `num_shard` a power of two, `shard_id < num_shard`.
    pub fn validate(self) -> Result<Self, InvalidShard> {
        let reason = if self.num_shard == 0 || !self.num_shard.is_power_of_two() {
            "NUM_SHARD is not a power of two"
        } else if self.shard_id >= self.num_shard {
            "SHARD_ID is not below NUM_SHARD"
        } else {
            return Ok(self);
        };
        Err(InvalidShard {
            given: self.to_string(),
            reason,
        })
    }

    /// Whether this node holds the segment at Flow position `position`.
    pub fn holds(self, position: u64) -> bool {
        self.num_shard < 2 || position % self.num_shard == self.shard_id
    }

    /// Whether this node holds segment `index` of a file whose first Flow entry is
    /// `start_entry_index`.
    pub fn holds_file_segment(self, start_entry_index: u64, index: u64) -> bool {
        self.holds(segment_position(start_entry_index, index))
    }

    /// The segments of a file (`segments` of them, starting at Flow entry
    /// `start_entry_index`) this node holds, by index in the file.
    pub fn file_segments(self, start_entry_index: u64, segments: u64) -> Vec<u64> {
        (0..segments)
            .filter(|&i| self.holds_file_segment(start_entry_index, i))
            .collect()
    }
}

/// The Flow position of segment `index` of a file starting at Flow entry `start_entry_index`.
pub fn segment_position(start_entry_index: u64, index: u64) -> u64 {
    start_entry_index / SEGMENT_CHUNKS as u64 + index
}

impl fmt::Display for ShardConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.shard_id, self.num_shard)
    }
}

impl FromStr for ShardConfig {
    type Err = InvalidShard;

    /// Parses 0G's `shard_position` form, `SHARD_ID/NUM_SHARD` (spaces allowed).
    fn from_str(s: &str) -> Result<Self, InvalidShard> {
        let bad = |reason| InvalidShard {
            given: s.to_string(),
            reason,
        };
        let (id, num) = s.split_once('/').ok_or_else(|| bad("there is no '/'"))?;
        let parse = |part: &str, what| part.trim().parse::<u64>().map_err(|_| bad(what));
        ShardConfig {
            shard_id: parse(id, "SHARD_ID is not a whole number")?,
            num_shard: parse(num, "NUM_SHARD is not a whole number")?,
        }
        .validate()
        .map_err(|e| bad(e.reason))
    }
}

/// How [`select`] orders the candidates before picking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelectOrder {
    /// Fewest shards first (nodes holding the most data), then by shard id: 0G's CLI default;
    /// picks the fewest nodes.
    FewestShards,
    /// The order given (e.g. the indexer's, or shuffled by the caller).
    AsGiven,
}

/// Picks nodes so that every segment position is held by `replicas` of them; `None` when the
/// candidates cannot cover every position that often. Candidates with an invalid shard
/// configuration are skipped. Returns indexes into `candidates`, in the order picked.
pub fn select(candidates: &[ShardConfig], replicas: u32, order: SelectOrder) -> Option<Vec<usize>> {
    let mut order_of: Vec<usize> = (0..candidates.len())
        .filter(|&i| candidates[i].validate().is_ok())
        .collect();
    if order == SelectOrder::FewestShards {
        order_of.sort_by_key(|&i| (candidates[i].num_shard, candidates[i].shard_id));
    }
    if replicas == 0 {
        return Some(Vec::new());
    }
    let mut tree = Coverage::default();
    let mut picked = Vec::new();
    for i in order_of {
        let c = candidates[i];
        if tree.insert(1, c.num_shard, c.shard_id, replicas) {
            picked.push(i);
            if tree.replicas >= replicas {
                return Some(picked);
            }
        }
    }
    None
}

/// A binary tree over shard positions: the node at depth `d` stands for the `2^d`-shard
/// position its path spells, and `replicas` is the least coverage of any position under it.
/// `pending` is coverage added to the whole subtree and not yet pushed to the children.
#[derive(Default)]
struct Coverage {
    replicas: u32,
    pending: u32,
    children: Option<Box<[Coverage; 2]>>,
}

impl Coverage {
    /// Adds a node of `num_shard`/`shard_id` below this tree node (which stands for
    /// `level` shards); returns whether it added coverage anywhere still short of `want`.
    fn insert(&mut self, level: u64, num_shard: u64, shard_id: u64, want: u32) -> bool {
        if self.replicas >= want {
            return false;
        }
        if level == num_shard {
            self.replicas += 1;
            self.pending += 1;
            return true;
        }
        let pending = std::mem::take(&mut self.pending);
        let children = self.children.get_or_insert_with(Default::default);
        for child in children.iter_mut() {
            child.replicas += pending;
            child.pending += pending;
        }
        let added =
            children[(shard_id % 2) as usize].insert(level * 2, num_shard, shard_id >> 1, want);
        self.replicas = children[0].replicas.min(children[1].replicas);
        added
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(s: &str) -> ShardConfig {
        s.parse().unwrap()
    }

    #[test]
    fn positions_parse_like_zero_g_and_bad_ones_say_why() {
        assert_eq!(
            shard("1/2"),
            ShardConfig {
                shard_id: 1,
                num_shard: 2
            }
        );
        assert_eq!(
            shard(" 3 / 8 "),
            ShardConfig {
                shard_id: 3,
                num_shard: 8
            }
        );
        assert_eq!(shard("0/1").to_string(), "0/1");
        for (bad, why) in [
            ("2/2", "not below"),
            ("0/3", "power of two"),
            ("0/0", "power of two"),
            ("1", "no '/'"),
            ("a/2", "SHARD_ID is not"),
            ("0/-2", "NUM_SHARD is not"),
        ] {
            let e = bad.parse::<ShardConfig>().unwrap_err().to_string();
            assert!(e.contains(why) && e.contains(bad.trim()), "{bad}: {e}");
        }
    }

    #[test]
    fn a_segment_belongs_to_the_shard_of_its_flow_position() {
        let s = shard("1/2");
        // A file starting at entry 0: odd segments.
        assert_eq!(s.file_segments(0, 5), vec![1, 3]);
        // A file starting at the second Flow segment: its even segments are odd positions.
        assert_eq!(s.file_segments(1024, 5), vec![0, 2, 4]);
        // Entries inside a segment share that segment's position.
        assert_eq!(s.file_segments(1024 + 7, 1), vec![0]);
        assert_eq!(ShardConfig::WHOLE.file_segments(4096, 3), vec![0, 1, 2]);
    }

    fn pick(nodes: &[&str], replicas: u32) -> Option<Vec<String>> {
        let configs: Vec<ShardConfig> = nodes.iter().map(|n| shard(n)).collect();
        select(&configs, replicas, SelectOrder::FewestShards)
            .map(|p| p.into_iter().map(|i| nodes[i].to_string()).collect())
    }

    #[test]
    fn selection_covers_every_position_or_says_it_cannot() {
        // Table: candidates, replicas, expected pick (None: cannot cover).
        type Case = (
            &'static [&'static str],
            u32,
            Option<&'static [&'static str]>,
        );
        let cases: &[Case] = &[
            (&["0/1"], 1, Some(&["0/1"])),
            (&["1/2", "0/2"], 1, Some(&["0/2", "1/2"])),
            (&["0/2"], 1, None),
            (&["0/2", "0/2"], 1, None),
            // The whole-file node alone covers; the shards are not needed.
            (&["1/2", "0/1", "0/2"], 1, Some(&["0/1"])),
            // Mixed widths: 0/2 plus 1/4 and 3/4.
            (&["3/4", "0/2", "1/4"], 1, Some(&["0/2", "1/4", "3/4"])),
            (&["3/4", "0/2"], 1, None),
            // Two replicas: two full covers.
            (&["0/1", "0/2", "1/2"], 2, Some(&["0/1", "0/2", "1/2"])),
            (&["0/1", "0/2", "1/2", "1/2"], 3, None),
            // A node that adds nothing (its positions are covered enough) is not picked.
            (&["0/2", "0/4", "1/2"], 1, Some(&["0/2", "1/2"])),
            // No replicas asked: nothing to pick.
            (&["0/1"], 0, Some(&[])),
        ];
        for (nodes, replicas, want) in cases {
            let got = pick(nodes, *replicas);
            let want = want.map(|w| w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert_eq!(got, want, "{nodes:?} × {replicas}");
        }
        // Invalid configurations are skipped.
        let invalid = [
            ShardConfig {
                num_shard: 3,
                shard_id: 0,
            },
            ShardConfig::WHOLE,
        ];
        assert_eq!(select(&invalid, 1, SelectOrder::AsGiven), Some(vec![1]));
    }

    #[test]
    fn a_selection_holds_every_segment_as_often_as_asked() {
        // Exhaustive check against the definition on small shard sets.
        let all: Vec<ShardConfig> = ["0/1", "0/2", "1/2", "0/4", "1/4", "2/4", "3/4", "5/8"]
            .iter()
            .map(|s| shard(s))
            .collect();
        for mask in 0u32..(1 << all.len()) {
            let nodes: Vec<ShardConfig> = (0..all.len())
                .filter(|i| mask & (1 << i) != 0)
                .map(|i| all[i])
                .collect();
            for replicas in 1..=2 {
                let cover =
                    |set: &[ShardConfig], p: u64| set.iter().filter(|s| s.holds(p)).count() as u32;
                let possible = (0..8).all(|p| cover(&nodes, p) >= replicas);
                match select(&nodes, replicas, SelectOrder::FewestShards) {
                    Some(picked) => {
                        let set: Vec<ShardConfig> = picked.iter().map(|&i| nodes[i]).collect();
                        assert!((0..8).all(|p| cover(&set, p) >= replicas), "{nodes:?}");
                    }
                    None => assert!(!possible, "{nodes:?} × {replicas} could be covered"),
                }
            }
        }
    }
}
