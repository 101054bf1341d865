//! Identifiers: dataset roots (0G Merkle roots of the ciphertext) and job ids (contract counter).

use alloy_primitives::{B256, U256};
use std::fmt;
use std::str::FromStr;

/// The 0G Merkle root of a dataset's sealed ciphertext: the dataset's identity everywhere.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DatasetRoot(pub B256);

impl DatasetRoot {
    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0.0
    }
}

impl fmt::Display for DatasetRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for DatasetRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatasetRoot({})", self.0)
    }
}

impl FromStr for DatasetRoot {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        B256::from_str(s).map(Self).map_err(|_| {
            format!("`{s}` is not a dataset root: expected 0x followed by 64 hex digits")
        })
    }
}

/// A job id as assigned by the contract (sequential, starting at 1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct JobId(pub u64);

impl JobId {
    /// The id as the contract's `uint256`.
    pub fn to_u256(self) -> U256 {
        U256::from(self.0)
    }

    /// The 32-byte big-endian encoding used in envelope AAD (`jobId ‖ datasetRoot`).
    pub fn to_be_bytes32(self) -> [u8; 32] {
        self.to_u256().to_be_bytes()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for JobId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<u64>()
            .ok()
            .filter(|id| *id > 0)
            .map(Self)
            .ok_or_else(|| format!("`{s}` is not a job id: expected a positive integer like 7"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_id_encodes_big_endian_in_32_bytes() {
        let bytes = JobId(258).to_be_bytes32();
        assert_eq!(&bytes[..30], &[0u8; 30]);
        assert_eq!(&bytes[30..], &[1, 2]);
    }

    #[test]
    fn parse_errors_say_what_is_expected() {
        assert!(
            "0".parse::<JobId>()
                .unwrap_err()
                .contains("positive integer")
        );
        assert!(
            "0x12"
                .parse::<DatasetRoot>()
                .unwrap_err()
                .contains("64 hex")
        );
    }
}
