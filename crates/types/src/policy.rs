//! The owner's policy, its validation (mirroring the contract's checks) and its hash.

use crate::purpose::{Purpose, PurposeSet};
use alloy_primitives::{B256, keccak256};

/// The most epochs one run may request: jobs store epochs as `uint16`.
pub const MAX_EPOCHS_PER_RUN_LIMIT: u32 = u16::MAX as u32;

/// The highest price per epoch the contract accepts (`uint96` in its packed storage).
pub const MAX_PRICE_PER_EPOCH: u128 = (1u128 << 96) - 1;

/// An owner's enforceable usage policy, field for field `IDataPolicy.Policy`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Policy {
    /// Price of one epoch in wei (0 = free; at most [`MAX_PRICE_PER_EPOCH`]).
    pub price_per_epoch: u128,
    /// Most epochs one run may request (1..=65535).
    pub max_epochs_per_run: u32,
    /// Lifetime runs per requester wallet on this dataset (fully refunded runs do not count).
    pub max_runs_per_requester: u32,
    /// Seconds a grant stays startable.
    pub session_ttl: u32,
    /// Purposes a requester may declare.
    pub allowed_purposes: PurposeSet,
    /// Unix seconds after which no new request is accepted; `None` = never.
    pub expiry: Option<u64>,
}

/// Why a policy or a request against it is invalid. Messages name the field, the value and the
/// accepted range, matching the contract's reverts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Price above what the contract stores.
    #[error("price per epoch {0} wei exceeds the maximum of {MAX_PRICE_PER_EPOCH} wei (2^96 - 1)")]
    PricePerEpoch(u128),
    /// `max_epochs_per_run` outside 1..=65535.
    #[error("max epochs per run must be between 1 and {MAX_EPOCHS_PER_RUN_LIMIT}, got {0}")]
    MaxEpochsPerRun(u32),
    /// `max_runs_per_requester` is zero.
    #[error(
        "max runs per requester must be at least 1 (got 0): a dataset nobody may run is not publishable; pause it instead"
    )]
    MaxRunsPerRequester,
    /// `session_ttl` is zero.
    #[error("session TTL must be at least 1 second (got 0)")]
    SessionTtl,
    /// No purpose allowed.
    #[error("allowed purposes is empty: allow at least one of research, evaluation, …")]
    NoPurposes,
    /// Purpose bits outside the registry.
    #[error(
        "allowed purposes has unregistered bits {0:#x}: only the registry in licen-types is meaningful"
    )]
    UnknownPurposeBits(u32),
    /// Expiry not in the future.
    #[error(
        "expiry {expiry} (unix seconds) is not in the future (it is {now} now): give a later \
         time, such as a duration like 30d, or no end (leave --expiry out; `--expiry none` when \
         updating a policy)"
    )]
    ExpiryInPast {
        /// Requested expiry (unix seconds).
        expiry: u64,
        /// The reference time (unix seconds).
        now: u64,
    },
    /// Requested epochs outside the policy.
    #[error("epochs {epochs} exceed this dataset's limit of {max} per run")]
    EpochsAboveLimit {
        /// Requested.
        epochs: u32,
        /// The policy's `max_epochs_per_run`.
        max: u32,
    },
    /// Zero epochs requested.
    #[error("epochs must be at least 1")]
    ZeroEpochs,
    /// Purpose not allowed by the policy.
    #[error("purpose `{purpose}` is not allowed by this dataset (allowed: {allowed})")]
    PurposeNotAllowed {
        /// Requested purpose.
        purpose: Purpose,
        /// The policy's allowed set.
        allowed: PurposeSet,
    },
    /// `price × epochs` does not fit in 256 bits (cannot happen with u128 × u16, kept for safety).
    #[error("escrow overflows")]
    EscrowOverflow,
    /// An amount string that is not a decimal number of tokens.
    #[error(
        "`{0}` is not an amount: expected a decimal number of tokens like 0.05 (no sign or \
         exponent, at most 18 decimals), or wei like 5000wei"
    )]
    BadAmount(String),
}

impl Policy {
    /// Checks every field the contract checks at `publish`/`updatePolicy`, at time `now`.
    pub fn validate(&self, now: u64) -> crate::Result<()> {
        if self.price_per_epoch > MAX_PRICE_PER_EPOCH {
            return Err(PolicyError::PricePerEpoch(self.price_per_epoch));
        }
        if !(1..=MAX_EPOCHS_PER_RUN_LIMIT).contains(&self.max_epochs_per_run) {
            return Err(PolicyError::MaxEpochsPerRun(self.max_epochs_per_run));
        }
        if self.max_runs_per_requester == 0 {
            return Err(PolicyError::MaxRunsPerRequester);
        }
        if self.session_ttl == 0 {
            return Err(PolicyError::SessionTtl);
        }
        if self.allowed_purposes.is_empty() {
            return Err(PolicyError::NoPurposes);
        }
        let unknown = self.allowed_purposes.unknown_bits();
        if unknown != 0 {
            return Err(PolicyError::UnknownPurposeBits(unknown));
        }
        if let Some(expiry) = self.expiry
            && expiry <= now
        {
            return Err(PolicyError::ExpiryInPast { expiry, now });
        }
        Ok(())
    }

    /// The exact escrow for `epochs` epochs, after checking the request against the policy.
    pub fn escrow_for(&self, epochs: u32, purpose: Purpose) -> crate::Result<u128> {
        if epochs == 0 {
            return Err(PolicyError::ZeroEpochs);
        }
        if epochs > self.max_epochs_per_run {
            return Err(PolicyError::EpochsAboveLimit {
                epochs,
                max: self.max_epochs_per_run,
            });
        }
        if !self.allowed_purposes.contains(purpose) {
            return Err(PolicyError::PurposeNotAllowed {
                purpose,
                allowed: self.allowed_purposes,
            });
        }
        self.price_per_epoch
            .checked_mul(u128::from(epochs))
            .ok_or(PolicyError::EscrowOverflow)
    }

    /// `keccak256(abi.encode(policy))`, exactly as `DataPolicy.policyHash` computes it: six
    /// static fields, each left-padded to a 32-byte word.
    pub fn hash(&self) -> B256 {
        let mut words = [0u8; 6 * 32];
        let mut put = |index: usize, value: u128| {
            words[index * 32 + 16..(index + 1) * 32].copy_from_slice(&value.to_be_bytes());
        };
        put(0, self.price_per_epoch);
        put(1, u128::from(self.max_epochs_per_run));
        put(2, u128::from(self.max_runs_per_requester));
        put(3, u128::from(self.session_ttl));
        put(4, u128::from(self.allowed_purposes.bits()));
        put(5, u128::from(self.expiry.unwrap_or(0)));
        keccak256(words)
    }

    /// The on-chain `expiry` value (0 = never).
    pub fn expiry_raw(&self) -> u64 {
        self.expiry.unwrap_or(0)
    }
}

/// Parses an amount of the native token: `"0.05"` (tokens, 18 decimals) or `"5000wei"`.
pub fn parse_wei(input: &str) -> crate::Result<u128> {
    let bad = || PolicyError::BadAmount(input.to_owned());
    let s = input.trim();
    if let Some(wei) = s.strip_suffix("wei") {
        return wei.trim().parse::<u128>().map_err(|_| bad());
    }
    let s = s
        .strip_suffix("0g")
        .or_else(|| s.strip_suffix("eth"))
        .unwrap_or(s)
        .trim();
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() && frac.is_empty()
        || frac.len() > 18
        || !whole
            .chars()
            .chain(frac.chars())
            .all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let frac_wei: u128 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<18}").parse().map_err(|_| bad())?
    };
    whole
        .checked_mul(10u128.pow(18))
        .and_then(|w| w.checked_add(frac_wei))
        .ok_or_else(bad)
}

/// Formats wei as tokens with up to 18 decimals, trailing zeros trimmed (`"0.05"`).
pub fn format_wei(wei: u128) -> String {
    let unit = 10u128.pow(18);
    let (whole, frac) = (wei / unit, wei % unit);
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:018}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            price_per_epoch: 10u128.pow(16),
            max_epochs_per_run: 5,
            max_runs_per_requester: 3,
            session_ttl: 3600,
            allowed_purposes: [Purpose::Research].into_iter().collect(),
            expiry: None,
        }
    }

    #[test]
    fn validation_table() {
        let now = 1_000;
        type Case = (fn(&mut Policy), Option<PolicyError>);
        let cases: Vec<Case> = vec![
            (|_| {}, None),
            (|p| p.price_per_epoch = 0, None),
            (
                |p| p.price_per_epoch = MAX_PRICE_PER_EPOCH + 1,
                Some(PolicyError::PricePerEpoch(MAX_PRICE_PER_EPOCH + 1)),
            ),
            (
                |p| p.max_epochs_per_run = 0,
                Some(PolicyError::MaxEpochsPerRun(0)),
            ),
            (
                |p| p.max_epochs_per_run = 65_536,
                Some(PolicyError::MaxEpochsPerRun(65_536)),
            ),
            (
                |p| p.max_runs_per_requester = 0,
                Some(PolicyError::MaxRunsPerRequester),
            ),
            (|p| p.session_ttl = 0, Some(PolicyError::SessionTtl)),
            (
                |p| p.allowed_purposes = PurposeSet::EMPTY,
                Some(PolicyError::NoPurposes),
            ),
            (
                |p| p.allowed_purposes = PurposeSet::from_bits(1 << 20),
                Some(PolicyError::UnknownPurposeBits(1 << 20)),
            ),
            (
                |p| p.expiry = Some(1_000),
                Some(PolicyError::ExpiryInPast {
                    expiry: 1_000,
                    now: 1_000,
                }),
            ),
            (|p| p.expiry = Some(1_001), None),
        ];
        for (mutate, expected) in cases {
            let mut p = policy();
            mutate(&mut p);
            assert_eq!(p.validate(now).err(), expected, "{p:?}");
        }
    }

    #[test]
    fn escrow_checks_request() {
        let p = policy();
        assert_eq!(p.escrow_for(5, Purpose::Research), Ok(5 * 10u128.pow(16)));
        assert_eq!(
            p.escrow_for(9, Purpose::Research).unwrap_err().to_string(),
            "epochs 9 exceed this dataset's limit of 5 per run"
        );
        assert!(matches!(
            p.escrow_for(1, Purpose::Evaluation),
            Err(PolicyError::PurposeNotAllowed { .. })
        ));
        assert_eq!(
            p.escrow_for(0, Purpose::Research),
            Err(PolicyError::ZeroEpochs)
        );
    }

    #[test]
    fn hash_is_abi_encoding_of_six_words() {
        let p = Policy {
            price_per_epoch: 1,
            max_epochs_per_run: 2,
            max_runs_per_requester: 3,
            session_ttl: 4,
            allowed_purposes: PurposeSet::from_bits(5),
            expiry: Some(6),
        };
        let mut expected = Vec::new();
        for v in 1u8..=6 {
            let mut word = [0u8; 32];
            word[31] = v;
            expected.extend_from_slice(&word);
        }
        assert_eq!(p.hash(), keccak256(&expected));
    }

    #[test]
    fn amounts() {
        assert_eq!(parse_wei("0.05").unwrap(), 5 * 10u128.pow(16));
        assert_eq!(parse_wei("1").unwrap(), 10u128.pow(18));
        assert_eq!(parse_wei("12wei").unwrap(), 12);
        assert_eq!(parse_wei(".5").unwrap(), 5 * 10u128.pow(17));
        for bad in ["", ".", "1.2.3", "-1", "abc", "0.0000000000000000001"] {
            assert!(parse_wei(bad).is_err(), "{bad}");
        }
        assert_eq!(format_wei(5 * 10u128.pow(16)), "0.05");
        assert_eq!(format_wei(2 * 10u128.pow(18)), "2");
        assert_eq!(format_wei(1), "0.000000000000000001");
    }
}
