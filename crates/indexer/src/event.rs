//! DataPolicy events as the indexer stores them: decoded from raw logs with the generated
//! bindings, flattened into a serializable form (hex strings, decimal amounts) that is the
//! `data` column of the raw `events` table and the input of the derived tables.

use alloy::primitives::{Address, B256, U256};
use alloy::sol_types::SolEventInterface;
use licen_chain::bindings::{DataPolicy, IDataPolicy};
use serde::{Deserialize, Serialize};

/// Lowercase `0x…` hex of an address (the form stored and matched in the database).
pub fn hex_address(address: &Address) -> String {
    format!("{address:#x}")
}

/// Lowercase `0x…` hex of a 32-byte word.
pub fn hex_b256(word: &B256) -> String {
    format!("{word:#x}")
}

/// A policy as stored: amounts in decimal, the purpose bitmask as an integer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRecord {
    /// Wei per epoch, decimal.
    pub price_per_epoch: String,
    /// Most epochs per run.
    pub max_epochs_per_run: u32,
    /// Lifetime runs per requester.
    pub max_runs_per_requester: u32,
    /// Seconds a grant stays startable.
    pub session_ttl: u32,
    /// Purpose bitmask.
    pub allowed_purposes: u32,
    /// Unix seconds after which no request is accepted; 0 = never.
    pub expiry: u64,
}

impl From<&IDataPolicy::Policy> for PolicyRecord {
    fn from(p: &IDataPolicy::Policy) -> Self {
        Self {
            price_per_epoch: p.pricePerEpoch.to_string(),
            max_epochs_per_run: p.maxEpochsPerRun,
            max_runs_per_requester: p.maxRunsPerRequester,
            session_ttl: p.sessionTtl,
            allowed_purposes: p.allowedPurposes,
            expiry: p.expiry,
        }
    }
}

/// One DataPolicy event, field for field as emitted (see `contracts/src/IDataPolicy.sol`).
#[allow(missing_docs)] // the fields are the Solidity event's, documented there
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event")]
pub enum Event {
    OrchestratorRegistered {
        orchestrator: String,
        public_key: String,
    },
    OrchestratorKeyRotated {
        orchestrator: String,
        public_key: String,
    },
    OrchestratorDeactivated {
        orchestrator: String,
    },
    DatasetPublished {
        dataset_root: String,
        owner: String,
        orchestrator: String,
        envelope_root: String,
        manifest_root: String,
        policy: PolicyRecord,
        policy_hash: String,
    },
    PolicyUpdated {
        dataset_root: String,
        policy: PolicyRecord,
        policy_hash: String,
    },
    DatasetPaused {
        dataset_root: String,
    },
    DatasetResumed {
        dataset_root: String,
    },
    EnvelopeRotated {
        dataset_root: String,
        envelope_root: String,
    },
    AccessGranted {
        job_id: u64,
        dataset_root: String,
        researcher: String,
        epochs: u16,
        purpose: u8,
        result_key: String,
        price_per_epoch: String,
        escrow: String,
        expires_at: u64,
    },
    JobStarted {
        job_id: u64,
        run_deadline: u64,
    },
    JobCompleted {
        job_id: u64,
        actual_epochs: u16,
        result_hash: String,
        attestation_ref: String,
        royalty: String,
        fee: String,
        refund: String,
    },
    JobFailed {
        job_id: u64,
        reason: String,
        refund: String,
    },
    JobExpired {
        job_id: u64,
        refund: String,
    },
    JobReclaimed {
        job_id: u64,
        refund: String,
    },
    Withdrawn {
        account: String,
        amount: String,
    },
    ProtocolFeeSet {
        fee_bps: u16,
        treasury: String,
    },
    AdminTransferred {
        previous_admin: String,
        new_admin: String,
    },
}

/// Why a log could not be turned into an [`Event`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The topics or data do not decode as any DataPolicy event.
    #[error("not a DataPolicy event: {0}")]
    Abi(String),
    /// A job id above 2^64 (the contract counts up from 1; this would be a foreign log).
    #[error("job id {0} does not fit in 64 bits")]
    JobId(U256),
}

fn job_id(id: U256) -> Result<u64, DecodeError> {
    u64::try_from(id).map_err(|_| DecodeError::JobId(id))
}

impl Event {
    /// The Solidity event name (`DatasetPublished`, …), stored in the `events.name` column.
    pub fn name(&self) -> &'static str {
        match self {
            Self::OrchestratorRegistered { .. } => "OrchestratorRegistered",
            Self::OrchestratorKeyRotated { .. } => "OrchestratorKeyRotated",
            Self::OrchestratorDeactivated { .. } => "OrchestratorDeactivated",
            Self::DatasetPublished { .. } => "DatasetPublished",
            Self::PolicyUpdated { .. } => "PolicyUpdated",
            Self::DatasetPaused { .. } => "DatasetPaused",
            Self::DatasetResumed { .. } => "DatasetResumed",
            Self::EnvelopeRotated { .. } => "EnvelopeRotated",
            Self::AccessGranted { .. } => "AccessGranted",
            Self::JobStarted { .. } => "JobStarted",
            Self::JobCompleted { .. } => "JobCompleted",
            Self::JobFailed { .. } => "JobFailed",
            Self::JobExpired { .. } => "JobExpired",
            Self::JobReclaimed { .. } => "JobReclaimed",
            Self::Withdrawn { .. } => "Withdrawn",
            Self::ProtocolFeeSet { .. } => "ProtocolFeeSet",
            Self::AdminTransferred { .. } => "AdminTransferred",
        }
    }

    /// Decodes a raw log's topics and data with the generated bindings.
    pub fn decode(topics: &[B256], data: &[u8]) -> Result<Self, DecodeError> {
        use DataPolicy::DataPolicyEvents as E;
        let decoded =
            E::decode_raw_log(topics, data).map_err(|e| DecodeError::Abi(e.to_string()))?;
        let a = hex_address;
        let w = hex_b256;
        Ok(match decoded {
            E::OrchestratorRegistered(e) => Self::OrchestratorRegistered {
                orchestrator: a(&e.orchestrator),
                public_key: w(&e.publicKey),
            },
            E::OrchestratorKeyRotated(e) => Self::OrchestratorKeyRotated {
                orchestrator: a(&e.orchestrator),
                public_key: w(&e.publicKey),
            },
            E::OrchestratorDeactivated(e) => Self::OrchestratorDeactivated {
                orchestrator: a(&e.orchestrator),
            },
            E::DatasetPublished(e) => Self::DatasetPublished {
                dataset_root: w(&e.datasetRoot),
                owner: a(&e.owner),
                orchestrator: a(&e.orchestrator),
                envelope_root: w(&e.envelopeRoot),
                manifest_root: w(&e.manifestRoot),
                policy: (&e.policy).into(),
                policy_hash: w(&e.policyHash),
            },
            E::PolicyUpdated(e) => Self::PolicyUpdated {
                dataset_root: w(&e.datasetRoot),
                policy: (&e.policy).into(),
                policy_hash: w(&e.policyHash),
            },
            E::DatasetPaused(e) => Self::DatasetPaused {
                dataset_root: w(&e.datasetRoot),
            },
            E::DatasetResumed(e) => Self::DatasetResumed {
                dataset_root: w(&e.datasetRoot),
            },
            E::EnvelopeRotated(e) => Self::EnvelopeRotated {
                dataset_root: w(&e.datasetRoot),
                envelope_root: w(&e.envelopeRoot),
            },
            E::AccessGranted(e) => Self::AccessGranted {
                job_id: job_id(e.jobId)?,
                dataset_root: w(&e.datasetRoot),
                researcher: a(&e.researcher),
                epochs: e.epochs,
                purpose: e.purpose,
                result_key: w(&e.resultKey),
                price_per_epoch: e.pricePerEpoch.to_string(),
                escrow: e.escrow.to_string(),
                expires_at: e.expiresAt,
            },
            E::JobStarted(e) => Self::JobStarted {
                job_id: job_id(e.jobId)?,
                run_deadline: e.runDeadline,
            },
            E::JobCompleted(e) => Self::JobCompleted {
                job_id: job_id(e.jobId)?,
                actual_epochs: e.actualEpochs,
                result_hash: w(&e.resultHash),
                attestation_ref: w(&e.attestationRef),
                royalty: e.royalty.to_string(),
                fee: e.fee.to_string(),
                refund: e.refund.to_string(),
            },
            E::JobFailed(e) => Self::JobFailed {
                job_id: job_id(e.jobId)?,
                reason: e.reason,
                refund: e.refund.to_string(),
            },
            E::JobExpired(e) => Self::JobExpired {
                job_id: job_id(e.jobId)?,
                refund: e.refund.to_string(),
            },
            E::JobReclaimed(e) => Self::JobReclaimed {
                job_id: job_id(e.jobId)?,
                refund: e.refund.to_string(),
            },
            E::Withdrawn(e) => Self::Withdrawn {
                account: a(&e.account),
                amount: e.amount.to_string(),
            },
            E::ProtocolFeeSet(e) => Self::ProtocolFeeSet {
                fee_bps: e.feeBps,
                treasury: a(&e.treasury),
            },
            E::AdminTransferred(e) => Self::AdminTransferred {
                previous_admin: a(&e.previousAdmin),
                new_admin: a(&e.newAdmin),
            },
        })
    }
}

/// An event with where it happened on the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// Block number.
    pub block_number: u64,
    /// Block hash.
    pub block_hash: B256,
    /// Block timestamp (unix seconds).
    pub block_time: u64,
    /// Transaction hash.
    pub tx_hash: B256,
    /// Log index within the block.
    pub log_index: u64,
    /// The decoded event.
    pub event: Event,
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::sol_types::SolEvent;

    #[test]
    fn unknown_topic_and_truncated_data_are_errors_not_panics() {
        assert!(matches!(
            Event::decode(&[B256::repeat_byte(1)], &[]),
            Err(DecodeError::Abi(_))
        ));
        let topic = DataPolicy::JobStarted::SIGNATURE_HASH;
        assert!(Event::decode(&[topic, B256::ZERO], &[1, 2, 3]).is_err());
        assert!(Event::decode(&[], &[]).is_err());
    }

    #[test]
    fn job_started_round_trips_through_json() {
        let e = DataPolicy::JobStarted {
            jobId: U256::from(7),
            runDeadline: 99,
        };
        let log = e.encode_log_data();
        let event = Event::decode(log.topics(), &log.data).unwrap();
        assert_eq!(
            event,
            Event::JobStarted {
                job_id: 7,
                run_deadline: 99
            }
        );
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), event);
        assert_eq!(event.name(), "JobStarted");
    }

    #[test]
    fn oversized_job_id_is_rejected() {
        let e = DataPolicy::JobStarted {
            jobId: U256::MAX,
            runDeadline: 1,
        };
        let log = e.encode_log_data();
        assert!(matches!(
            Event::decode(log.topics(), &log.data),
            Err(DecodeError::JobId(_))
        ));
    }
}
