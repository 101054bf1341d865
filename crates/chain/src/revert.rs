//! Decoding reverts into sentences: what was wrong, what the contract expected, what to do.

use crate::bindings::DataPolicy::DataPolicyErrors as E;
use alloy::primitives::{Address, Bytes, U256};
use alloy::sol_types::{SolInterface, decode_revert_reason};
use licen_types::{JobState, Purpose, PurposeSet, format_wei};
use std::fmt;

/// A decoded revert.
#[derive(Debug, Clone)]
pub struct Revert {
    /// The custom error's name (`EpochsOutOfRange`), or `Error`/`Panic`/`unknown`.
    pub name: String,
    /// A sentence for a person.
    pub sentence: String,
}

impl fmt::Display for Revert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sentence)
    }
}

impl Revert {
    /// Decodes raw revert data returned by the node.
    pub fn decode(data: &[u8]) -> Self {
        match E::abi_decode(data) {
            Ok(error) => Self {
                name: error_name(&error).to_owned(),
                sentence: sentence(&error),
            },
            Err(_) => Self {
                name: "unknown".into(),
                sentence: decode_revert_reason(data).unwrap_or_else(|| {
                    format!(
                        "the call reverted with data {} that is not a DataPolicy error",
                        Bytes::copy_from_slice(data)
                    )
                }),
            },
        }
    }
}

fn state_name(raw: u8) -> &'static str {
    JobState::from_u8(raw).map_or("unknown", JobState::name)
}

fn short(address: &Address) -> String {
    address.to_checksum(None)
}

fn wei(amount: U256) -> String {
    u128::try_from(amount).map_or_else(
        |_| format!("{amount} wei"),
        |w| format!("{} (native token)", format_wei(w)),
    )
}

fn error_name(error: &E) -> &'static str {
    match error {
        E::NotAdmin(_) => "NotAdmin",
        E::NotDatasetOwner(_) => "NotDatasetOwner",
        E::NotJobOrchestrator(_) => "NotJobOrchestrator",
        E::NotJobResearcher(_) => "NotJobResearcher",
        E::ZeroAddress(_) => "ZeroAddress",
        E::InvalidPublicKey(_) => "InvalidPublicKey",
        E::OrchestratorAlreadyRegistered(_) => "OrchestratorAlreadyRegistered",
        E::OrchestratorNotActive(_) => "OrchestratorNotActive",
        E::DatasetAlreadyPublished(_) => "DatasetAlreadyPublished",
        E::DatasetNotFound(_) => "DatasetNotFound",
        E::InvalidRoot(_) => "InvalidRoot",
        E::InvalidPolicy(_) => "InvalidPolicy",
        E::DatasetIsPaused(_) => "DatasetIsPaused",
        E::DatasetNotPaused(_) => "DatasetNotPaused",
        E::DatasetExpired(_) => "DatasetExpired",
        E::EpochsOutOfRange(_) => "EpochsOutOfRange",
        E::RunLimitReached(_) => "RunLimitReached",
        E::PurposeNotAllowed(_) => "PurposeNotAllowed",
        E::WrongEscrow(_) => "WrongEscrow",
        E::JobNotFound(_) => "JobNotFound",
        E::WrongJobState(_) => "WrongJobState",
        E::GrantExpired(_) => "GrantExpired",
        E::GrantNotExpired(_) => "GrantNotExpired",
        E::RunDeadlineNotReached(_) => "RunDeadlineNotReached",
        E::ActualEpochsExceedRequested(_) => "ActualEpochsExceedRequested",
        E::FeeTooHigh(_) => "FeeTooHigh",
        E::NothingToWithdraw(_) => "NothingToWithdraw",
        E::TransferFailed(_) => "TransferFailed",
    }
}

fn sentence(error: &E) -> String {
    match error {
        E::NotAdmin(e) => format!(
            "{} is not the contract admin; only the admin may manage orchestrators and fees",
            short(&e.caller)
        ),
        E::NotDatasetOwner(e) => format!(
            "{} does not own dataset {}; only its owner may change it (use the owner's wallet)",
            short(&e.caller),
            e.datasetRoot
        ),
        E::NotJobOrchestrator(e) => format!(
            "{} is not the orchestrator of job {}; only the dataset's orchestrator may start, settle or fail it",
            short(&e.caller),
            e.jobId
        ),
        E::NotJobResearcher(e) => format!(
            "{} did not request job {}; only its researcher may reclaim it",
            short(&e.caller),
            e.jobId
        ),
        E::ZeroAddress(_) => "an address argument is the zero address; give a real account".into(),
        E::InvalidPublicKey(_) => {
            "the orchestrator public key is all zeros; give its 32-byte X25519 public key".into()
        }
        E::OrchestratorAlreadyRegistered(e) => format!(
            "orchestrator {} is already registered; rotate its key instead",
            short(&e.orchestrator)
        ),
        E::OrchestratorNotActive(e) => format!(
            "orchestrator {} is not registered or was deactivated; choose an active orchestrator",
            short(&e.orchestrator)
        ),
        E::DatasetAlreadyPublished(e) => format!(
            "dataset {} is already published; a root can be published once (update its policy instead)",
            e.datasetRoot
        ),
        E::DatasetNotFound(e) => format!(
            "no dataset with root {} is published on this contract; check the root with `licen market`",
            e.datasetRoot
        ),
        E::InvalidRoot(_) => {
            "a root is all zeros; roots are 0G Merkle roots of uploaded files".into()
        }
        E::InvalidPolicy(e) => format!(
            "the policy field `{}` is invalid (max epochs 1..=65535, max runs ≥ 1, TTL ≥ 1 s, at least one purpose, expiry 0 or in the future)",
            e.field
        ),
        E::DatasetIsPaused(e) => format!(
            "dataset {} is paused by its owner and takes no requests now",
            e.datasetRoot
        ),
        E::DatasetNotPaused(e) => format!("dataset {} is not paused", e.datasetRoot),
        E::DatasetExpired(e) => format!(
            "dataset {} expired at unix time {} and takes no new requests",
            e.datasetRoot, e.expiry
        ),
        E::EpochsOutOfRange(e) => {
            if e.epochs.is_zero() {
                "epochs must be at least 1".into()
            } else {
                format!(
                    "epochs {} exceed this dataset's limit of {} per run",
                    e.epochs, e.maxEpochsPerRun
                )
            }
        }
        E::RunLimitReached(e) => format!(
            "{} has used all the runs this dataset allows per requester ({})",
            short(&e.researcher),
            e.maxRunsPerRequester
        ),
        E::PurposeNotAllowed(e) => {
            let purpose = Purpose::from_bit(e.purpose)
                .map_or_else(|| format!("#{}", e.purpose), |p| p.slug().to_owned());
            format!(
                "purpose `{purpose}` is not allowed by this dataset (allowed: {})",
                PurposeSet::from_bits(e.allowedPurposes)
            )
        }
        E::WrongEscrow(e) => format!(
            "sent {} but the escrow must be exactly {} (price per epoch × epochs)",
            wei(e.sent),
            wei(e.required)
        ),
        E::JobNotFound(e) => format!("there is no job {}", e.jobId),
        E::WrongJobState(e) => format!(
            "job {} is {}, but this needs it {}",
            e.jobId,
            state_name(e.actual),
            state_name(e.expected)
        ),
        E::GrantExpired(e) => format!(
            "job {}'s grant expired at unix time {}; it can no longer start (anyone may now expire it for a full refund)",
            e.jobId, e.expiresAt
        ),
        E::GrantNotExpired(e) => format!(
            "job {}'s grant is still startable until unix time {}; it can be expired after that",
            e.jobId, e.expiresAt
        ),
        E::RunDeadlineNotReached(e) => format!(
            "job {} is still within its run deadline (unix time {}); it can be reclaimed after that",
            e.jobId, e.runDeadline
        ),
        E::ActualEpochsExceedRequested(e) => format!(
            "actual epochs {} exceed the {} epochs the researcher paid for",
            e.actualEpochs, e.requestedEpochs
        ),
        E::FeeTooHigh(e) => format!(
            "protocol fee {} bps exceeds the cap of {} bps",
            e.feeBps, e.maxFeeBps
        ),
        E::NothingToWithdraw(e) => format!("{} has nothing to withdraw", short(&e.account)),
        E::TransferFailed(e) => format!(
            "sending {} to {} failed; the balance is kept, withdraw from an account that accepts native tokens",
            wei(e.amount),
            short(&e.account)
        ),
    }
}
