//! The job state machine, mirroring `IDataPolicy.JobState` (same order, same numbering).

use std::fmt;

/// The state of a training job. `Granted → Running → Completed`; `Granted → Expired`;
/// `Granted | Running → Failed`; `Running → Reclaimed`. Terminal states never change.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum JobState {
    /// No such job.
    None,
    /// Escrow paid, waiting for the orchestrator to start it before `expiresAt`.
    Granted,
    /// Started on a compute node; must settle before its run deadline.
    Running,
    /// Settled: royalty to the owner, fee to the treasury, unspent escrow refunded.
    Completed,
    /// Not started in time; escrow refunded in full.
    Expired,
    /// The orchestrator gave up; escrow refunded in full.
    Failed,
    /// Not settled by its run deadline; the researcher took the escrow back.
    Reclaimed,
}

impl JobState {
    /// All states in contract order.
    pub const ALL: [JobState; 7] = [
        Self::None,
        Self::Granted,
        Self::Running,
        Self::Completed,
        Self::Expired,
        Self::Failed,
        Self::Reclaimed,
    ];

    /// Decodes the contract's `uint8` representation.
    pub fn from_u8(value: u8) -> Option<Self> {
        Self::ALL.get(usize::from(value)).copied()
    }

    /// The contract's `uint8` representation.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// Whether the state can never change again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Expired | Self::Failed | Self::Reclaimed
        )
    }

    /// Whether the job ended with the whole escrow refunded.
    pub fn is_full_refund(self) -> bool {
        matches!(self, Self::Expired | Self::Failed | Self::Reclaimed)
    }

    /// Lower-case name used in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Granted => "granted",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Expired => "expired",
            Self::Failed => "failed",
            Self::Reclaimed => "reclaimed",
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_contract_numbering() {
        for (i, state) in JobState::ALL.iter().enumerate() {
            assert_eq!(JobState::from_u8(i as u8), Some(*state));
            assert_eq!(state.as_u8() as usize, i);
        }
        assert_eq!(JobState::from_u8(7), None);
    }

    #[test]
    fn terminal_states() {
        let terminal: Vec<_> = JobState::ALL.iter().filter(|s| s.is_terminal()).collect();
        assert_eq!(terminal.len(), 4);
        assert!(!JobState::Running.is_terminal());
        assert!(JobState::Reclaimed.is_full_refund());
        assert!(!JobState::Completed.is_full_refund());
    }
}
