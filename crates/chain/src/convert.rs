//! Conversions between domain types (`licen-types`) and the ABI structs of the bindings.

use crate::bindings::IDataPolicy;
use licen_types::{Policy, PurposeSet};

/// The ABI struct for a domain policy.
pub fn policy_to_sol(policy: &Policy) -> IDataPolicy::Policy {
    IDataPolicy::Policy {
        pricePerEpoch: policy.price_per_epoch,
        maxEpochsPerRun: policy.max_epochs_per_run,
        maxRunsPerRequester: policy.max_runs_per_requester,
        sessionTtl: policy.session_ttl,
        allowedPurposes: policy.allowed_purposes.bits(),
        expiry: policy.expiry_raw(),
    }
}

/// The domain policy for an ABI struct read from the chain or an event.
pub fn policy_from_sol(policy: &IDataPolicy::Policy) -> Policy {
    Policy {
        price_per_epoch: policy.pricePerEpoch,
        max_epochs_per_run: policy.maxEpochsPerRun,
        max_runs_per_requester: policy.maxRunsPerRequester,
        session_ttl: policy.sessionTtl,
        allowed_purposes: PurposeSet::from_bits(policy.allowedPurposes),
        expiry: (policy.expiry != 0).then_some(policy.expiry),
    }
}
