//! Nonce management that survives failed sends, and can fence an account shared by replicas.
//!
//! alloy's cached nonce manager hands out a nonce while the gas filler runs; when the gas
//! estimate then reverts, that nonce is lost and every later transaction of the account waits
//! forever behind the gap. This manager hands out nonces the same way (one lock per account, so
//! concurrent sends never collide) but can [`forget`](ResyncingNonceManager::forget) an account
//! after a failed send, so the next one re-reads the pending count from the node.
//!
//! **Fenced mode** ([`ResyncingNonceManager::fenced`]) is for an account several processes
//! hold but only one may use at a time (orchestrator replicas). The account's nonce is then the
//! fencing token: the process that takes over sends one transaction of its own first
//! ([`crate::DataPolicyClient::fence_account`]), and every transaction another process signed
//! with an earlier nonce can never be mined after it. What keeps a stale process from simply
//! reading the new nonce and sending anyway is this manager: a stale transaction fails (its
//! nonce is taken), the sender reports the nonce that failed
//! ([`failed`](ResyncingNonceManager::failed)), and the manager re-reads the nonce only if the
//! node does not count that one as used. If it does, another process used it, and every send
//! is refused with [`AccountUsedElsewhere`] (nothing is signed) until the owner of the manager
//! [`reset`](ResyncingNonceManager::reset)s it, which it does only when it holds the account
//! again. Transactions the stale process had already sent when the fence was sent may still be
//! mined: those were on their way, and the contract's state machine decides them.
//!
//! The check covers sends that report their nonce (`DataPolicyClient`'s, which also hold a
//! per-connection lock from taking a nonce until the node has the transaction, so a failed send
//! never leaves a later one behind a gap, and which count a transaction not mined in time as
//! failed); sends through the nonce filler alone (deployment, the Flow) only
//! [`forget`](ResyncingNonceManager::forget), unchecked, and are not for fenced accounts.

use alloy::network::Network;
use alloy::primitives::Address;
use alloy::providers::Provider;
use alloy::providers::fillers::NonceManager;
use alloy::transports::{TransportErrorKind, TransportResult};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What this manager knows of one account.
#[derive(Debug, Clone, Copy, Default)]
struct Known {
    /// The nonce handed out last, while it still holds (`None`: ask the node next time).
    last: Option<u64>,
    /// The lowest nonce handed out for a send that then failed, since the node was last asked
    /// (fenced mode's check: this process did not use it, so the node must not count it used).
    unused: Option<u64>,
}

/// One account: its state, and a lock that serialises asking the node for its pending count.
#[derive(Debug, Default)]
struct Account {
    known: Mutex<Known>,
    asking: tokio::sync::Mutex<()>,
}

/// A per-account nonce cache that resynchronises after failures.
#[derive(Clone, Debug, Default)]
pub struct ResyncingNonceManager {
    accounts: Arc<Mutex<HashMap<Address, Arc<Account>>>>,
    fenced: bool,
}

/// Someone else sent from an account a fenced manager holds: the node counts as used a nonce
/// this process handed out for a send that failed, so another process (a replica that took
/// over, or the same key used elsewhere) sent with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "another process sent from {account} since this one last did: nonce {unused}, which this \
     process's transaction was to use, is taken (the account's next nonce is {pending}), so \
     nothing was sent. Another process holds the account now (a replica that took over), or \
     this key is used elsewhere too, or a send this process saw fail was accepted after all; \
     make sure only one LICEN orchestrator deployment uses this key"
)]
pub struct AccountUsedElsewhere {
    /// The account.
    pub account: Address,
    /// The node's pending transaction count.
    pub pending: u64,
    /// The nonce this process handed out for a failed send, which the node counts as used.
    pub unused: u64,
}

impl ResyncingNonceManager {
    /// A manager in fenced mode (see the module docs).
    pub fn fenced() -> Self {
        Self {
            fenced: true,
            ..Self::default()
        }
    }

    /// Whether this manager fences its accounts.
    pub fn is_fenced(&self) -> bool {
        self.fenced
    }

    /// Drops the cached nonce of `address` after a failed send whose nonce is unknown (it may
    /// not have been handed out): the next one comes from the node's pending count.
    pub fn forget(&self, address: Address) {
        self.account(address)
            .known
            .lock()
            .expect("nonce state poisoned")
            .last = None;
    }

    /// A send from `address` with `nonce` failed: it was not used by this process. The next
    /// nonce comes from the node's pending count, which in fenced mode must not count `nonce`
    /// (or a lower unused one) as used.
    pub fn failed(&self, address: Address, nonce: u64) {
        let account = self.account(address);
        let mut known = account.known.lock().expect("nonce state poisoned");
        known.last = None;
        known.unused = Some(known.unused.map_or(nonce, |unused| unused.min(nonce)));
    }

    /// Starts over for `address`: the next nonce is the node's pending count, unchecked. Only
    /// for a process that has just come to hold the account (and then fences it).
    pub fn reset(&self, address: Address) {
        *self
            .account(address)
            .known
            .lock()
            .expect("nonce state poisoned") = Known::default();
    }

    /// In fenced mode: whether `pending`, the node's count, shows another sender, i.e. counts
    /// as used a nonce this process handed out for a send that failed. A send reported as
    /// failed that the node had in fact accepted is refused the same way; the owner then
    /// fences again, which costs one transaction. Always `Ok` when not fenced.
    pub fn check(&self, address: Address, pending: u64) -> Result<(), AccountUsedElsewhere> {
        if !self.fenced {
            return Ok(());
        }
        let unused = self
            .account(address)
            .known
            .lock()
            .expect("nonce state poisoned")
            .unused;
        match unused {
            Some(unused) if pending > unused => Err(AccountUsedElsewhere {
                account: address,
                pending,
                unused,
            }),
            _ => Ok(()),
        }
    }

    fn account(&self, address: Address) -> Arc<Account> {
        Arc::clone(
            self.accounts
                .lock()
                .expect("nonce map poisoned")
                .entry(address)
                .or_default(),
        )
    }
}

#[async_trait::async_trait]
impl NonceManager for ResyncingNonceManager {
    async fn get_next_nonce<P, N>(&self, provider: &P, address: Address) -> TransportResult<u64>
    where
        P: Provider<N>,
        N: Network,
    {
        let account = self.account(address);
        let _asking = account.asking.lock().await;
        let last = account.known.lock().expect("nonce state poisoned").last;
        let next = match last {
            Some(last) => last + 1,
            None => {
                let pending = provider.get_transaction_count(address).pending().await?;
                // Refused until reset: a stale process never sends past another's fence.
                self.check(address, pending)
                    .map_err(TransportErrorKind::custom)?;
                pending
            }
        };
        let mut known = account.known.lock().expect("nonce state poisoned");
        if last.is_none() {
            // Resynchronised: what failed below `next` is handed out again from here.
            known.unused = None;
        }
        known.last = Some(next);
        Ok(next)
    }
}
