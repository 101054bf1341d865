//! Nonce management that survives failed sends.
//!
//! alloy's cached nonce manager hands out a nonce while the gas filler runs; when the gas
//! estimate then reverts, that nonce is lost and every later transaction of the account waits
//! forever behind the gap. This manager hands out nonces the same way (one lock per account, so
//! concurrent sends never collide) but can [`forget`](ResyncingNonceManager::forget) an account
//! after a failed send, so the next one re-reads the pending count from the node.

use alloy::network::Network;
use alloy::primitives::Address;
use alloy::providers::Provider;
use alloy::providers::fillers::NonceManager;
use alloy::transports::TransportResult;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Sentinel for "not fetched yet".
const UNKNOWN: u64 = u64::MAX;

/// A per-account nonce cache that resynchronises after failures.
#[derive(Clone, Debug, Default)]
pub struct ResyncingNonceManager {
    accounts: Arc<Mutex<HashMap<Address, Arc<tokio::sync::Mutex<u64>>>>>,
}

impl ResyncingNonceManager {
    /// Drops what is cached for `address`: the next nonce comes from the node's pending count.
    pub fn forget(&self, address: Address) {
        if let Some(slot) = self.slot_if_present(address)
            && let Ok(mut nonce) = slot.try_lock()
        {
            *nonce = UNKNOWN;
            return;
        }
        // A send is in flight for this account; replacing the slot makes the next send refetch.
        self.accounts
            .lock()
            .expect("nonce map poisoned")
            .remove(&address);
    }

    fn slot_if_present(&self, address: Address) -> Option<Arc<tokio::sync::Mutex<u64>>> {
        self.accounts
            .lock()
            .expect("nonce map poisoned")
            .get(&address)
            .cloned()
    }

    fn slot(&self, address: Address) -> Arc<tokio::sync::Mutex<u64>> {
        self.accounts
            .lock()
            .expect("nonce map poisoned")
            .entry(address)
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(UNKNOWN)))
            .clone()
    }
}

#[async_trait::async_trait]
impl NonceManager for ResyncingNonceManager {
    async fn get_next_nonce<P, N>(&self, provider: &P, address: Address) -> TransportResult<u64>
    where
        P: Provider<N>,
        N: Network,
    {
        let slot = self.slot(address);
        let mut nonce = slot.lock().await;
        let next = if *nonce == UNKNOWN {
            provider.get_transaction_count(address).pending().await?
        } else {
            *nonce + 1
        };
        *nonce = next;
        Ok(next)
    }
}
