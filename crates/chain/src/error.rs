//! Errors of chain operations: reverts decoded into sentences, and transport failures.

use crate::revert::Revert;

/// A failed chain operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The contract refused the call; the message is a sentence saying why and what to do.
    #[error("{action} was refused by the DataPolicy contract: {revert}")]
    Reverted {
        /// What was attempted ("requestAccess", "publish", …).
        action: &'static str,
        /// The decoded revert.
        revert: Revert,
    },
    /// The 0G Flow contract refused a submission; the reason is a sentence.
    #[error("submitting the file to the 0G Flow contract at {flow} was refused: {reason}")]
    FlowRefused {
        /// The Flow contract.
        flow: alloy::primitives::Address,
        /// Why, and what to do.
        reason: String,
    },
    /// The node could not be reached or answered with an error that is not a revert.
    #[error("{}", rpc_sentence(action, rpc, message))]
    Rpc {
        /// What was attempted.
        action: &'static str,
        /// The RPC URL.
        rpc: String,
        /// The transport's message.
        message: String,
    },
    /// The wallet cannot pay for the transaction: its value plus gas exceed the balance.
    #[error(
        "{action} needs {} plus gas, but the wallet {account} holds {}: add funds to it{}, then \
         try again (nothing was sent)",
        licen_types::format_wei(*value),
        licen_types::format_wei(*holds),
        if *value > 0 { " or lower the amount" } else { "" }
    )]
    InsufficientFunds {
        /// What was attempted.
        action: &'static str,
        /// The paying wallet.
        account: alloy::primitives::Address,
        /// Value the transaction carries (wei).
        value: u128,
        /// The wallet's balance (wei).
        holds: u128,
    },
    /// The transaction was mined but did not succeed.
    #[error("{action}: transaction {tx} was mined in block {block} but failed (status 0)")]
    TxFailed {
        /// What was attempted.
        action: &'static str,
        /// Transaction hash.
        tx: String,
        /// Block number.
        block: u64,
    },
    /// A receipt lacked the event the contract always emits for this action.
    #[error(
        "{action}: receipt of {tx} has no {event} event; is {address} really a DataPolicy contract?"
    )]
    MissingEvent {
        /// What was attempted.
        action: &'static str,
        /// The event expected.
        event: &'static str,
        /// Transaction hash.
        tx: String,
        /// Contract address.
        address: String,
    },
    /// Bad configuration (a private key, URL, …).
    #[error("{0}")]
    Config(String),
    /// An RPC endpoint belongs to another chain than the network named.
    #[error(
        "{rpc} is chain {actual}, not {network} (chain {expected}): pass an RPC endpoint of \
         {network} with --rpc-url, or name the network it belongs to with --network (nothing was \
         sent)"
    )]
    WrongChain {
        /// The network named (`galileo`, `mainnet`).
        network: &'static str,
        /// Its chain id.
        expected: u64,
        /// The endpoint's.
        actual: u64,
        /// The endpoint.
        rpc: String,
    },
    /// Another process sent from the account this fenced connection holds (a replica that
    /// took over): nothing was sent.
    #[error(transparent)]
    AccountUsedElsewhere(#[from] crate::nonce::AccountUsedElsewhere),
    /// Spawning or talking to a local anvil failed.
    #[error("anvil: {0}")]
    Anvil(String),
    /// The pinned tools are missing.
    #[error(transparent)]
    Tools(#[from] licen_toolchain::Error),
}

/// "The chain at URL could not serve `action` (why)", with a hint when it was not reached.
fn rpc_sentence(action: &str, rpc: &str, message: &str) -> String {
    let lower = message.to_ascii_lowercase();
    let unreached = [
        "error sending request",
        "connection refused",
        "timed out",
        "dns error",
    ]
    .iter()
    .any(|sign| lower.contains(sign));
    if unreached {
        format!(
            "the chain at {rpc} could not be reached for `{action}` ({message}): is the node \
             running, and is this the right RPC URL?"
        )
    } else {
        format!("the chain at {rpc} could not serve `{action}`: {message}")
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
