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
//! reading the new nonce and sending anyway is this manager: it never re-reads the nonce on its
//! own after a failed send without checking that nobody else used the account, i.e. that the
//! node's pending count is not beyond the highest nonce this manager handed out since its last
//! [`reset`](ResyncingNonceManager::reset). If it is, the send is refused with
//! [`AccountUsedElsewhere`] (nothing is signed) until the owner of the manager resets it, which
//! it does only when it holds the account again.

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
    /// The highest nonce handed out since the last reset (fenced mode's check).
    highest: Option<u64>,
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

/// Someone else sent from an account a fenced manager holds: the node's pending count is past
/// every nonce this manager handed out, so another process (a replica that took over, or the
/// same key used elsewhere) sent since.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "another process sent from {account} since this one last did (the account's next nonce is \
     {pending}; this process had used up to {highest}): it holds the account now, so nothing \
     was sent"
)]
pub struct AccountUsedElsewhere {
    /// The account.
    pub account: Address,
    /// The node's pending transaction count.
    pub pending: u64,
    /// The highest nonce this manager handed out.
    pub highest: u64,
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

    /// Drops the cached nonce of `address` after a failed send: the next one comes from the
    /// node's pending count (checked against the highest handed out, in fenced mode).
    pub fn forget(&self, address: Address) {
        self.account(address)
            .known
            .lock()
            .expect("nonce state poisoned")
            .last = None;
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

    /// The nonce handed out last for `address`, while it holds.
    pub fn last(&self, address: Address) -> Option<u64> {
        self.account(address)
            .known
            .lock()
            .expect("nonce state poisoned")
            .last
    }

    /// In fenced mode, after a failed send: whether the node's pending count shows another
    /// sender since this manager's last reset. Every nonce this manager handed out up to its
    /// highest may have been its own; the failed one was not used by this process, so a count
    /// past the highest means someone else used a nonce (a replica's fence, typically). One
    /// edge is refused too: a send reported as failed that the node had in fact accepted; the
    /// owner then resets and fences again, which costs one transaction. Always `Ok` when not
    /// fenced.
    pub fn check(&self, address: Address, pending: u64) -> Result<(), AccountUsedElsewhere> {
        if !self.fenced {
            return Ok(());
        }
        let highest = self
            .account(address)
            .known
            .lock()
            .expect("nonce state poisoned")
            .highest;
        match highest {
            Some(highest) if pending > highest => Err(AccountUsedElsewhere {
                account: address,
                pending,
                highest,
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
                self.check(address, pending)
                    .map_err(TransportErrorKind::custom)?;
                pending
            }
        };
        let mut known = account.known.lock().expect("nonce state poisoned");
        known.last = Some(next);
        known.highest = Some(known.highest.map_or(next, |highest| highest.max(next)));
        Ok(next)
    }
}
