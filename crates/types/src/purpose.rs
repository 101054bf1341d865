//! The purpose registry: the named bits of `Policy.allowedPurposes`.
//!
//! Bit positions are part of the on-chain format: never renumber, only append.

use std::fmt;
use std::str::FromStr;

/// A declared use of a dataset. The discriminant is the bit index in the policy bitmask and the
/// `purpose` argument of `requestAccess`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum Purpose {
    /// Academic or scientific research whose output is not sold.
    Research = 0,
    /// Fine-tuning a model that is not used commercially.
    NonCommercialFineTuning = 1,
    /// Fine-tuning a model that is used in a commercial product.
    CommercialFineTuning = 2,
    /// Medical or clinical research under the owner's license terms.
    MedicalResearch = 3,
    /// Evaluating or benchmarking a model (no weights kept beyond the run).
    Evaluation = 4,
    /// Teaching and coursework.
    Education = 5,
    /// AI safety work: red-teaming, alignment, interpretability.
    SafetyResearch = 6,
}

impl Purpose {
    /// Every registered purpose, in bit order.
    pub const ALL: [Purpose; 7] = [
        Self::Research,
        Self::NonCommercialFineTuning,
        Self::CommercialFineTuning,
        Self::MedicalResearch,
        Self::Evaluation,
        Self::Education,
        Self::SafetyResearch,
    ];

    /// The bit index (the contract's `uint8 purpose`).
    pub fn bit(self) -> u8 {
        self as u8
    }

    /// The purpose registered at `bit`, if any.
    pub fn from_bit(bit: u8) -> Option<Self> {
        Self::ALL.get(usize::from(bit)).copied()
    }

    /// The stable kebab-case name used on the command line and in manifests.
    pub fn slug(self) -> &'static str {
        match self {
            Self::Research => "research",
            Self::NonCommercialFineTuning => "non-commercial-fine-tuning",
            Self::CommercialFineTuning => "commercial-fine-tuning",
            Self::MedicalResearch => "medical-research",
            Self::Evaluation => "evaluation",
            Self::Education => "education",
            Self::SafetyResearch => "safety-research",
        }
    }

    /// A human label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Research => "Research",
            Self::NonCommercialFineTuning => "Non-commercial fine-tuning",
            Self::CommercialFineTuning => "Commercial fine-tuning",
            Self::MedicalResearch => "Medical research",
            Self::Evaluation => "Evaluation",
            Self::Education => "Education",
            Self::SafetyResearch => "Safety research",
        }
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.slug())
    }
}

/// A name that is not in the purpose registry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown purpose `{0}`: expected one of {known}", known = known_slugs())]
pub struct UnknownPurpose(pub String);

fn known_slugs() -> String {
    Purpose::ALL.map(Purpose::slug).join(", ")
}

impl FromStr for Purpose {
    type Err = UnknownPurpose;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace('_', "-");
        Self::ALL
            .into_iter()
            .find(|p| p.slug() == wanted)
            .ok_or_else(|| UnknownPurpose(s.to_owned()))
    }
}

/// A set of purposes: the policy's `allowedPurposes` bitmask.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PurposeSet(u32);

impl PurposeSet {
    /// The empty set (not a valid policy value).
    pub const EMPTY: Self = Self(0);

    /// Wraps a raw bitmask as read from the chain. Bits outside the registry are kept so that a
    /// newer contract user's policy round-trips; [`PurposeSet::unknown_bits`] reports them.
    pub fn from_bits(bits: u32) -> Self {
        Self(bits)
    }

    /// The raw bitmask.
    pub fn bits(self) -> u32 {
        self.0
    }

    /// Adds a purpose.
    #[must_use]
    pub fn with(self, purpose: Purpose) -> Self {
        Self(self.0 | (1 << purpose.bit()))
    }

    /// Whether `purpose` is allowed.
    pub fn contains(self, purpose: Purpose) -> bool {
        self.0 & (1 << purpose.bit()) != 0
    }

    /// Whether no purpose is allowed.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Bits set that name no registered purpose.
    pub fn unknown_bits(self) -> u32 {
        let known = Purpose::ALL
            .iter()
            .fold(0u32, |acc, p| acc | (1 << p.bit()));
        self.0 & !known
    }

    /// The registered purposes in the set, in bit order.
    pub fn iter(self) -> impl Iterator<Item = Purpose> {
        Purpose::ALL.into_iter().filter(move |p| self.contains(*p))
    }
}

impl FromIterator<Purpose> for PurposeSet {
    fn from_iter<I: IntoIterator<Item = Purpose>>(iter: I) -> Self {
        iter.into_iter().fold(Self::EMPTY, Self::with)
    }
}

impl fmt::Debug for PurposeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl fmt::Display for PurposeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.iter().map(Purpose::slug).collect();
        f.write_str(&names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_stable() {
        // On-chain format: these numbers may never change.
        let expected = [
            ("research", 0),
            ("non-commercial-fine-tuning", 1),
            ("commercial-fine-tuning", 2),
            ("medical-research", 3),
            ("evaluation", 4),
            ("education", 5),
            ("safety-research", 6),
        ];
        for (slug, bit) in expected {
            let purpose: Purpose = slug.parse().unwrap();
            assert_eq!(purpose.bit(), bit);
            assert_eq!(Purpose::from_bit(bit), Some(purpose));
        }
    }

    #[test]
    fn parsing_is_forgiving_about_case_and_underscores() {
        assert_eq!(
            "Medical_Research".parse::<Purpose>(),
            Ok(Purpose::MedicalResearch)
        );
        let err = "mining".parse::<Purpose>().unwrap_err().to_string();
        assert!(
            err.contains("unknown purpose `mining`") && err.contains("evaluation"),
            "{err}"
        );
    }

    #[test]
    fn sets() {
        let set: PurposeSet = [Purpose::Research, Purpose::Evaluation]
            .into_iter()
            .collect();
        assert_eq!(set.bits(), 0b1_0001);
        assert!(set.contains(Purpose::Evaluation));
        assert!(!set.contains(Purpose::CommercialFineTuning));
        assert_eq!(set.to_string(), "research, evaluation");
        assert_eq!(PurposeSet::from_bits(1 << 31).unknown_bits(), 1 << 31);
    }
}
