//! What `licen deploy` remembers: one record per chain, `<data-dir>/deployments/<chain-id>.json`,
//! naming the DataPolicy contract deployed there (address, block, transaction) and the
//! constructor arguments it was deployed with.
//!
//! A record is written atomically (a temporary file renamed over it), so a crash leaves the old
//! record or the new one, never half of one. It holds nothing secret (everything in it is public
//! on the chain) and is written with mode 0644. A file that cannot be read as a record is an
//! error naming the file, never silently taken for "no deployment".

use alloy::primitives::{Address, B256};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The folder under the data dir holding the records.
const DEPLOYMENTS_DIR: &str = "deployments";

/// A DataPolicy deployment on one chain, as `licen deploy` made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DeploymentRecord {
    /// The chain it is on (0G Galileo testnet 16602, 0G mainnet 16661, anvil 31337).
    pub(crate) chain_id: u64,
    /// The contract.
    pub(crate) address: Address,
    /// The block it was deployed in (where indexers and orchestrators start following it).
    pub(crate) block: u64,
    /// The deploying transaction.
    pub(crate) tx: B256,
    /// The admin it was deployed with (`transferAdmin` may have changed it since).
    pub(crate) admin: Address,
    /// The treasury and protocol fee it was deployed with (`setProtocolFee` may change them).
    pub(crate) treasury: Address,
    pub(crate) fee_bps: u16,
    /// Seconds a started job has to settle (fixed for the contract's lifetime).
    pub(crate) run_timeout: u64,
}

/// Where the record of `chain_id` lives under `data_dir`.
pub(crate) fn record_path(data_dir: &Path, chain_id: u64) -> PathBuf {
    data_dir
        .join(DEPLOYMENTS_DIR)
        .join(format!("{chain_id}.json"))
}

/// Writes `record` as the deployment of its chain, replacing any earlier record of that chain.
pub(crate) fn remember(data_dir: &Path, record: &DeploymentRecord) -> Result<()> {
    let path = record_path(data_dir, record.chain_id);
    let dir = data_dir.join(DEPLOYMENTS_DIR);
    std::fs::create_dir_all(&dir).with_context(|| {
        format!(
            "creating {} to record the deployment: check that the data dir (--data-dir, \
             LICEN_DATA_DIR) is writable",
            dir.display()
        )
    })?;
    let mut bytes = serde_json::to_vec_pretty(record).context("encoding the deployment record")?;
    bytes.push(b'\n');
    crate::dev::write_atomically(&path, &bytes)?;
    // Public facts only: readable by everyone, writable by the operator alone, whatever the umask.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
        .with_context(|| format!("setting the mode of {}", path.display()))?;
    Ok(())
}

/// The recorded deployment on `chain_id`, if `licen deploy` recorded one under `data_dir`.
pub(crate) fn remembered(data_dir: &Path, chain_id: u64) -> Result<Option<DeploymentRecord>> {
    let path = record_path(data_dir, chain_id);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "reading the deployment record {}: check its permissions",
                    path.display()
                )
            });
        }
    };
    let record: DeploymentRecord = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "the deployment record {} is corrupt (expected the JSON `licen deploy` writes): \
             restore it, or delete it and pass --contract (the contract on the chain is unaffected)",
            path.display()
        )
    })?;
    if record.chain_id != chain_id {
        bail!(
            "the deployment record {} is for chain {}, but its name says chain {chain_id}: it was \
             moved or edited; rename it to {}.json, or delete it and pass --contract",
            path.display(),
            record.chain_id,
            record.chain_id
        );
    }
    Ok(Some(record))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(chain_id: u64) -> DeploymentRecord {
        DeploymentRecord {
            chain_id,
            address: Address::repeat_byte(0x11),
            block: 42,
            tx: B256::repeat_byte(0x22),
            admin: Address::repeat_byte(0x33),
            treasury: Address::repeat_byte(0x44),
            fee_bps: 250,
            run_timeout: 86_400,
        }
    }

    #[test]
    fn a_record_reads_back_per_chain() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(remembered(dir.path(), 16602).unwrap(), None);
        remember(dir.path(), &record(16602)).unwrap();
        assert_eq!(remembered(dir.path(), 16602).unwrap(), Some(record(16602)));
        assert_eq!(remembered(dir.path(), 16661).unwrap(), None);
        let path = record_path(dir.path(), 16602);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o644
        );
        // Replacing leaves no temporary file behind.
        let replaced = DeploymentRecord {
            address: Address::repeat_byte(0x55),
            ..record(16602)
        };
        remember(dir.path(), &replaced).unwrap();
        assert_eq!(remembered(dir.path(), 16602).unwrap(), Some(replaced));
        let names: Vec<_> = std::fs::read_dir(dir.path().join(DEPLOYMENTS_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["16602.json"]);
    }

    #[test]
    fn a_corrupt_or_misnamed_record_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(DEPLOYMENTS_DIR)).unwrap();
        let path = record_path(dir.path(), 16602);
        std::fs::write(&path, "{not json").unwrap();
        let error = format!("{:#}", remembered(dir.path(), 16602).unwrap_err());
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(error.contains("corrupt"), "{error}");

        remember(dir.path(), &record(16661)).unwrap();
        std::fs::rename(record_path(dir.path(), 16661), &path).unwrap();
        let error = format!("{:#}", remembered(dir.path(), 16602).unwrap_err());
        assert!(error.contains("is for chain 16661"), "{error}");
    }
}
