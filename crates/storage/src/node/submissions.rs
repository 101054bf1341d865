//! Flow mode's record of the Flow submissions a node was told of: an append-only JSON Lines log
//! (`submissions.jsonl` in the data directory), one submission per line, each appended and
//! `fdatasync`ed before the node acts on it. A node following a busy Flow learns of every file
//! anyone submits, so recording one costs one short append, whatever the count so far (the
//! whole list used to be rewritten on every new submission).
//!
//! Owns: the log and its in-memory indexes (by root, by sequence number), and the follower's
//! cursor (`flow-cursor.json`: which Flow contract this data directory follows, and the last
//! block whose submissions are all in the log), so a restart reads on from there instead of
//! from the Flow's deployment, and a data directory is never fed a second Flow's submissions. A crash during an
//! append leaves at most a torn last line, dropped at the next open (that submission was never
//! acted on, and its follower reads it from the chain again). A list written by an older node
//! (`submissions.json`) is carried into the log once, then removed.
//!
//! Never: drops or rewrites a complete line, or accepts a damaged one silently.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::merkle::Hash;

use super::disk::Submitted;

/// The log, under the data directory.
const LOG: &str = "submissions.jsonl";
/// The whole-list file older nodes rewrote on every submission.
const LEGACY_LIST: &str = "submissions.json";
/// The follower's cursor.
const CURSOR: &str = "flow-cursor.json";

/// Where a follower of a Flow left off in a data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FlowCursor {
    /// The Flow contract followed.
    pub flow: alloy_primitives::Address,
    /// The last block whose submissions are all registered.
    pub block: u64,
    /// That block's hash, so a follower can tell its chain still has it (a reorg deeper than
    /// its confirmations, or a replaced chain, would have changed the submissions).
    pub hash: alloy_primitives::B256,
}

/// The cursor a follower left in the data directory `dir`, if any (read without opening the
/// node, e.g. to discard a directory whose chain is gone).
pub fn read_cursor(dir: &Path) -> std::io::Result<Option<FlowCursor>> {
    let path = dir.join(CURSOR);
    match fs::read(&path) {
        Ok(raw) => serde_json::from_slice(&raw).map(Some).map_err(|e| {
            std::io::Error::other(format!(
                "{} is damaged ({e}): remove it, and the node follows the Flow again from its \
                 deployment block",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The submissions known so far (only their files are accepted).
pub(crate) struct Submissions {
    by_root: HashMap<Hash, Submitted>,
    by_seq: HashMap<u64, Hash>,
    log: File,
    path: PathBuf,
    /// Bytes of complete lines in the log: an append that fails is cut back to this.
    len: u64,
    /// An append failed and could not be cut back: the log's end is unknown, so nothing more
    /// is appended until the node restarts (and drops the torn line).
    torn: bool,
}

impl Submissions {
    /// Opens (creating) the log in `dir`, dropping a torn last line and carrying over an older
    /// node's `submissions.json`.
    pub(crate) fn open(dir: &Path) -> std::io::Result<Self> {
        let path = dir.join(LOG);
        let mut log = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)?;
        let mut raw = Vec::new();
        log.read_to_end(&mut raw)?;
        let complete = raw.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if complete < raw.len() {
            tracing::warn!(
                path = %path.display(),
                bytes = raw.len() - complete,
                "dropping a torn last line of the Flow submission log (a crash mid-append); the follower reads it from the chain again"
            );
            log.set_len(complete as u64)?;
            log.sync_data()?;
        }
        let mut known = Submissions {
            by_root: HashMap::new(),
            by_seq: HashMap::new(),
            log,
            path,
            len: complete as u64,
            torn: false,
        };
        for (number, line) in raw[..complete].split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let s: Submitted = serde_json::from_slice(line).map_err(|e| {
                std::io::Error::other(format!(
                    "{} is damaged at line {} ({e}): restore it, or remove it together with \
                     {CURSOR} and the node follows the Flow again from its deployment block",
                    known.path.display(),
                    number + 1
                ))
            })?;
            known.index(s);
        }
        let legacy = dir.join(LEGACY_LIST);
        match fs::read(&legacy) {
            Ok(raw) => {
                let listed: Vec<Submitted> = serde_json::from_slice(&raw).map_err(|e| {
                    std::io::Error::other(format!("{} is damaged ({e})", legacy.display()))
                })?;
                for s in listed {
                    known.record(s)?;
                }
                fs::remove_file(&legacy)?;
                File::open(dir)?.sync_all()?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(known)
    }

    fn index(&mut self, s: Submitted) {
        self.by_seq.insert(s.seq, s.root);
        self.by_root.entry(s.root).or_insert(s);
    }

    /// The submission of `root`, if known.
    pub(crate) fn get(&self, root: &Hash) -> Option<&Submitted> {
        self.by_root.get(root)
    }

    /// Whether `root` was submitted.
    pub(crate) fn contains(&self, root: &Hash) -> bool {
        self.by_root.contains_key(root)
    }

    /// The root submitted with sequence number `seq`.
    pub(crate) fn root_of_seq(&self, seq: u64) -> Option<Hash> {
        self.by_seq.get(&seq).copied()
    }

    /// The last block whose submissions to `flow` are all recorded here (`None`: start from
    /// the Flow's deployment). Refuses a data directory that follows another Flow.
    pub(crate) fn cursor(
        &self,
        flow: alloy_primitives::Address,
    ) -> std::io::Result<Option<FlowCursor>> {
        let Some(cursor) = read_cursor(self.dir())? else {
            return Ok(None);
        };
        if cursor.flow != flow {
            return Err(std::io::Error::other(format!(
                "this data directory holds the files of Flow contract {}, not {flow}: their \
                 sequence numbers would mix; give the node another data directory for this Flow",
                cursor.flow
            )));
        }
        Ok(Some(cursor))
    }

    /// Records that every submission to `cursor.flow` through `cursor.block` is in the log.
    pub(crate) fn set_cursor(&self, cursor: FlowCursor) -> std::io::Result<()> {
        let path = self.dir().join(CURSOR);
        let tmp = path.with_extension("tmp");
        {
            let mut f = File::create(&tmp)?;
            f.write_all(&serde_json::to_vec(&cursor).map_err(std::io::Error::other)?)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &path)
    }

    fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// The highest sequence number known.
    pub(crate) fn max_seq(&self) -> Option<u64> {
        self.by_seq.keys().max().copied()
    }

    /// Records `s` on disk, then in memory; whether it was new (a second submission of the same
    /// root keeps the first). A failed append leaves the submission unknown and the log as it
    /// was, so it is retried.
    pub(crate) fn record(&mut self, s: Submitted) -> std::io::Result<bool> {
        if self.by_root.contains_key(&s.root) {
            return Ok(false);
        }
        if self.torn {
            return Err(std::io::Error::other(format!(
                "an earlier append to {} failed and could not be undone: restart the node",
                self.path.display()
            )));
        }
        let mut line = serde_json::to_vec(&s).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let appended = self
            .log
            .write_all(&line)
            .and_then(|()| self.log.sync_data());
        if let Err(e) = appended {
            // Cut a partial line back off, so the next append starts on a line of its own.
            self.torn = self
                .log
                .set_len(self.len)
                .and_then(|()| self.log.seek(SeekFrom::End(0)).map(drop))
                .is_err();
            return Err(e);
        }
        self.len += line.len() as u64;
        self.index(s);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submitted(seq: u64) -> Submitted {
        Submitted {
            root: Hash::repeat_byte(seq as u8 + 1),
            size: 1000 + seq,
            seq,
            start_entry: seq * 8,
        }
    }

    #[test]
    fn submissions_survive_a_reopen_and_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Submissions::open(dir.path()).unwrap();
        assert!(log.record(submitted(0)).unwrap());
        assert!(log.record(submitted(1)).unwrap());
        assert!(
            !log.record(submitted(1)).unwrap(),
            "a root is recorded once"
        );
        drop(log);
        // A crash mid-append: half a line at the end.
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.path().join(LOG))
            .unwrap();
        file.write_all(br#"{"root":"0x03"#).unwrap();
        drop(file);
        let mut log = Submissions::open(dir.path()).unwrap();
        assert_eq!(log.get(&submitted(1).root), Some(&submitted(1)));
        assert_eq!(log.root_of_seq(0), Some(submitted(0).root));
        assert_eq!(log.max_seq(), Some(1));
        // The next append starts on a line of its own.
        assert!(log.record(submitted(2)).unwrap());
        drop(log);
        let log = Submissions::open(dir.path()).unwrap();
        assert!(log.contains(&submitted(2).root));
        assert_eq!(
            fs::read_to_string(dir.path().join(LOG))
                .unwrap()
                .lines()
                .count(),
            3
        );
    }

    #[test]
    fn the_cursor_names_its_flow() {
        let dir = tempfile::tempdir().unwrap();
        let log = Submissions::open(dir.path()).unwrap();
        let flow = alloy_primitives::Address::repeat_byte(0xf1);
        assert_eq!(log.cursor(flow).unwrap(), None);
        let cursor = FlowCursor {
            flow,
            block: 41,
            hash: alloy_primitives::B256::repeat_byte(0x41),
        };
        log.set_cursor(cursor).unwrap();
        drop(log);
        let log = Submissions::open(dir.path()).unwrap();
        assert_eq!(log.cursor(flow).unwrap(), Some(cursor));
        assert_eq!(read_cursor(dir.path()).unwrap(), Some(cursor));
        let other = alloy_primitives::Address::repeat_byte(0xf2);
        let said = log.cursor(other).unwrap_err().to_string();
        assert!(
            said.contains("give the node another data directory"),
            "{said}"
        );
    }

    #[test]
    fn an_older_nodes_list_is_carried_over_and_a_damaged_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(LEGACY_LIST),
            serde_json::to_vec(&[submitted(0), submitted(1)]).unwrap(),
        )
        .unwrap();
        let log = Submissions::open(dir.path()).unwrap();
        assert_eq!(log.root_of_seq(1), Some(submitted(1).root));
        assert!(!dir.path().join(LEGACY_LIST).exists());
        drop(log);
        let log = Submissions::open(dir.path()).unwrap();
        assert_eq!(log.max_seq(), Some(1));
        drop(log);

        let mut raw = fs::read(dir.path().join(LOG)).unwrap();
        raw.splice(0..1, *b"x");
        fs::write(dir.path().join(LOG), raw).unwrap();
        let said = Submissions::open(dir.path()).err().unwrap().to_string();
        assert!(said.contains("damaged at line 1"), "{said}");
    }
}
