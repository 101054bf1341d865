//! The 0G Flow contract: paying for and registering a file before 0G storage nodes accept its
//! segments (DESIGN §6).
//!
//! Owns: reading the market's `pricePerSector` through `Flow.market()`, sending `submit` with
//! exactly `pricePerSector × Σ 2^height` (the fee 0G's own clients pay; the contract keeps any
//! excess), and reading the `Submit` event back: the transaction sequence number storage nodes
//! know the file by, checked against the submission's digest. The node list, fee arithmetic and
//! calldata of both ABI generations come from `licen_storage::zerog`.
//!
//! Must never: send a submission whose receipt it does not check, or report a sequence number
//! from a `Submit` event of another file.

use crate::client::{Connection, fund_error, wait_for_receipt};
use crate::{Error, Result};
use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::{SolCall, SolError, SolEvent};
use licen_storage::zerog::abi::{current, market};
use licen_storage::zerog::{FlowAbi, FlowSubmission};

/// A Flow deployment and the wallet that pays for submissions.
#[derive(Debug, Clone)]
pub struct FlowClient {
    connection: Connection,
    flow: Address,
    abi: FlowAbi,
}

/// A file submitted to the Flow, as its `Submit` event says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubmittedFile {
    /// The block of the submission.
    pub block: u64,
    /// The file root (folded from the submission's node list).
    pub root: B256,
    /// File size in bytes.
    pub size: u64,
    /// The submission's sequence number (`txSeq`).
    pub tx_seq: u64,
    /// Its first flow entry.
    pub start_entry: u64,
}

/// A mined submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowReceipt {
    /// The transaction.
    pub tx: B256,
    /// Its block.
    pub block: u64,
    /// The submission's sequence number (`submissionIndex`; 0G's `txSeq`).
    pub tx_seq: u64,
    /// Where the file starts in the flow (entry index).
    pub start_entry: u64,
    /// Sectors (256-byte chunks) paid for.
    pub sectors: u64,
    /// The fee paid (wei).
    pub fee: U256,
}

impl FlowClient {
    /// The Flow contract at `flow`, whose `submit` has the `abi` generation; `connection` must
    /// carry a wallet to submit.
    pub fn new(connection: Connection, flow: Address, abi: FlowAbi) -> Self {
        Self {
            connection,
            flow,
            abi,
        }
    }

    /// The Flow contract at `flow`, with the `submit` generation its code has: the dispatcher
    /// of a Solidity contract pushes each external function's selector (`PUSH4 selector`), so
    /// the runtime code shows which `submit` it takes. 0G deploys the Flow behind a beacon
    /// proxy, so an address whose own code has no `submit` is followed to its implementation
    /// (the EIP-1967 implementation slot, else the beacon slot's `implementation()`). Refuses an
    /// address where neither has one.
    pub async fn detect(connection: Connection, flow: Address) -> Result<Self> {
        let rpc_error = |action: &'static str, e: &dyn std::fmt::Display| Error::Rpc {
            action,
            rpc: connection.rpc.clone(),
            message: e.to_string(),
        };
        let provider = &connection.provider;
        let code = provider
            .get_code_at(flow)
            .await
            .map_err(|e| rpc_error("eth_getCode (Flow)", &e))?;
        let mut abi = abi_of(&code);
        if abi.is_none() && !code.is_empty() {
            let slot = |value: B256| Address::from_word(value);
            let word = |slot_hex: B256| async move {
                provider
                    .get_storage_at(flow, slot_hex.into())
                    .await
                    .map(B256::from)
            };
            let mut implementation = slot(
                word(EIP1967_IMPLEMENTATION_SLOT)
                    .await
                    .map_err(|e| rpc_error("eth_getStorageAt (proxy)", &e))?,
            );
            if implementation.is_zero() {
                let beacon = slot(
                    word(EIP1967_BEACON_SLOT)
                        .await
                        .map_err(|e| rpc_error("eth_getStorageAt (proxy)", &e))?,
                );
                if !beacon.is_zero() {
                    let answer = provider
                        .call(TransactionRequest::default().with_to(beacon).with_input(
                            alloy::primitives::keccak256("implementation()")[..4].to_vec(),
                        ))
                        .await
                        .map_err(|e| rpc_error("implementation() (beacon)", &e))?;
                    if answer.len() == 32 {
                        implementation = Address::from_word(B256::from_slice(&answer));
                    }
                }
            }
            if !implementation.is_zero() {
                let code = provider
                    .get_code_at(implementation)
                    .await
                    .map_err(|e| rpc_error("eth_getCode (Flow implementation)", &e))?;
                abi = abi_of(&code);
            }
        }
        let abi = abi.ok_or_else(|| {
            Error::Config(format!(
                "{flow} does not look like a 0G Flow contract: {}; check the Flow address for \
                 this network",
                if code.is_empty() {
                    "there is no contract code there".to_owned()
                } else {
                    "neither its code nor that of the implementation it proxies to has a `submit` \
                     of either ABI generation"
                        .to_owned()
                }
            ))
        })?;
        Ok(Self::new(connection, flow, abi))
    }

    /// The `submit` generation this client encodes.
    pub fn abi(&self) -> FlowAbi {
        self.abi
    }

    /// The Flow contract's address.
    pub fn address(&self) -> Address {
        self.flow
    }

    /// The market pricing sectors for this Flow, and its price per sector (wei).
    pub async fn price_per_sector(&self) -> Result<(Address, U256)> {
        let market_address = current::marketCall::abi_decode_returns(
            &self
                .call(
                    self.flow,
                    current::marketCall {}.abi_encode(),
                    "Flow.market()",
                )
                .await?,
        )
        .map_err(|e| {
            self.not_flow(format!(
                "market() answered something else than an address ({e})"
            ))
        })?;
        let price = market::pricePerSectorCall::abi_decode_returns(
            &self
                .call(
                    market_address,
                    market::pricePerSectorCall {}.abi_encode(),
                    "pricePerSector()",
                )
                .await?,
        )
        .map_err(|e| {
            self.not_flow(format!(
                "its market {market_address} answered pricePerSector() with something else than a number ({e})"
            ))
        })?;
        Ok((market_address, price))
    }

    /// The fee `submission` costs at the market's current price (wei).
    pub async fn fee(&self, submission: &FlowSubmission) -> Result<U256> {
        Ok(submission.fee(self.price_per_sector().await?.1))
    }

    /// Pays for and registers `submission`, waits for it to be mined, and returns its sequence
    /// number from the `Submit` event.
    pub async fn submit(&self, submission: &FlowSubmission) -> Result<FlowReceipt> {
        let mut receipts = self.submit_all(std::slice::from_ref(submission)).await?;
        Ok(receipts.remove(0))
    }

    /// Pays for and registers every file of `submissions` in one transaction (`batchSubmit`;
    /// on a legacy Flow, which has none, one `submit` each), and returns their receipts in order.
    pub async fn submit_all(&self, submissions: &[FlowSubmission]) -> Result<Vec<FlowReceipt>> {
        if self.abi == FlowAbi::Legacy && submissions.len() > 1 {
            let mut receipts = Vec::with_capacity(submissions.len());
            for submission in submissions {
                receipts.extend(self.send(std::slice::from_ref(submission)).await?);
            }
            return Ok(receipts);
        }
        self.send(submissions).await
    }

    /// One transaction for `submissions` (one, or several on the current ABI).
    async fn send(&self, submissions: &[FlowSubmission]) -> Result<Vec<FlowReceipt>> {
        const ACTION: &str = "Flow.submit";
        let sender = self.connection.sender.ok_or_else(|| {
            Error::Config(
                "submitting to the 0G Flow contract needs a wallet: give a private key or keystore"
                    .into(),
            )
        })?;
        let (_, price) = self.price_per_sector().await?;
        let call = FlowSubmission::batch_call(submissions, self.abi, sender, price)
            .map_err(|e| Error::Config(e.to_string()))?;
        let request = TransactionRequest::default()
            .with_to(self.flow)
            .with_input(call.data)
            .with_value(call.value);
        let provider = &self.connection.provider;
        let pending = match provider.send_transaction(request).await {
            Ok(pending) => pending,
            Err(e) => {
                self.connection.forget_nonce();
                let for_funds = e
                    .to_string()
                    .to_ascii_lowercase()
                    .contains("insufficient funds");
                let error = match e.as_error_resp().and_then(|r| r.as_revert_data()) {
                    Some(data) if !for_funds => Error::FlowRefused {
                        flow: self.flow,
                        reason: refusal(&data, submissions, price),
                    },
                    _ => Error::Rpc {
                        action: ACTION,
                        rpc: self.connection.rpc.clone(),
                        message: e.to_string(),
                    },
                };
                return Err(fund_error(&self.connection, error, Some(call.value)).await);
            }
        };
        let receipt =
            wait_for_receipt(provider, &self.connection.rpc, ACTION, *pending.tx_hash()).await?;
        let tx = receipt.transaction_hash;
        let block = receipt.block_number.unwrap_or_default();
        if !receipt.status() {
            return Err(Error::TxFailed {
                action: ACTION,
                tx: tx.to_string(),
                block,
            });
        }
        let events: Vec<current::Submit> = receipt
            .inner
            .logs()
            .iter()
            .filter(|log| log.address() == self.flow)
            .filter_map(|log| current::Submit::decode_log_data(log.data()).ok())
            .collect();
        let number = |value: U256, what: &str| {
            u64::try_from(value).map_err(|_| {
                self.not_flow(format!(
                    "its Submit event has a {what} beyond 64 bits ({value})"
                ))
            })
        };
        // Two files with the same node list get two events with one digest: each file takes
        // the first event of its digest not taken yet.
        let mut taken = vec![false; events.len()];
        let mut receipts = Vec::with_capacity(submissions.len());
        for submission in submissions {
            let digest = submission.digest();
            let found = (0..events.len())
                .find(|&i| !taken[i] && events[i].identity == digest)
                .ok_or_else(|| Error::MissingEvent {
                    action: ACTION,
                    event: "Submit (for this file's node list)",
                    tx: tx.to_string(),
                    address: self.flow.to_string(),
                })?;
            taken[found] = true;
            let event = &events[found];
            receipts.push(FlowReceipt {
                tx,
                block,
                tx_seq: number(event.submissionIndex, "submission index")?,
                start_entry: number(event.startPos, "start position")?,
                sectors: number(event.length, "length")?,
                fee: submission.fee(price),
            });
        }
        Ok(receipts)
    }

    /// The files submitted in blocks `from..=to`, in chain order (what a storage node following
    /// this Flow learns). Events that do not decode, or whose node list is empty, are skipped
    /// with a warning.
    pub async fn submissions(&self, from: u64, to: u64) -> Result<Vec<SubmittedFile>> {
        let filter = alloy::rpc::types::Filter::new()
            .address(self.flow)
            .event_signature(current::Submit::SIGNATURE_HASH)
            .from_block(from)
            .to_block(to);
        let logs = self
            .connection
            .provider
            .get_logs(&filter)
            .await
            .map_err(|e| Error::Rpc {
                action: "eth_getLogs (Flow Submit)",
                rpc: self.connection.rpc.clone(),
                message: e.to_string(),
            })?;
        let mut files = Vec::with_capacity(logs.len());
        for log in logs {
            let block = log.block_number.unwrap_or_default();
            let Ok(event) = current::Submit::decode_log_data(log.data()) else {
                tracing::warn!(block, "skipping a Submit log that does not decode");
                continue;
            };
            let nodes = event
                .submission
                .nodes
                .iter()
                .map(|n| {
                    Some(licen_storage::merkle::SubmissionNode {
                        root: n.root,
                        height: u32::try_from(n.height).ok()?,
                    })
                })
                .collect::<Option<Vec<_>>>();
            let submission = FlowSubmission {
                length: u64::try_from(event.submission.length).unwrap_or(u64::MAX),
                tags: Vec::new(),
                nodes: nodes.unwrap_or_default(),
            };
            let (Some(root), Ok(tx_seq), Ok(start_entry)) = (
                submission.root(),
                u64::try_from(event.submissionIndex),
                u64::try_from(event.startPos),
            ) else {
                tracing::warn!(
                    block,
                    "skipping a Submit log with an unusable node list or position"
                );
                continue;
            };
            files.push(SubmittedFile {
                block,
                root,
                size: submission.length,
                tx_seq,
                start_entry,
            });
        }
        Ok(files)
    }

    async fn call(&self, to: Address, data: Vec<u8>, what: &'static str) -> Result<Vec<u8>> {
        let request = TransactionRequest::default().with_to(to).with_input(data);
        let answer = self
            .connection
            .provider
            .call(request)
            .await
            .map_err(|e| Error::Rpc {
                action: what,
                rpc: self.connection.rpc.clone(),
                message: e.to_string(),
            })?;
        if answer.is_empty() {
            return Err(self.not_flow(format!("{what} returned nothing (no contract there?)")));
        }
        Ok(answer.to_vec())
    }

    fn not_flow(&self, why: String) -> Error {
        Error::Config(format!(
            "{} does not look like a 0G Flow contract: {why}; check the Flow address for this network",
            self.flow
        ))
    }
}

/// EIP-1967: `keccak256("eip1967.proxy.implementation") - 1`.
const EIP1967_IMPLEMENTATION_SLOT: B256 =
    alloy::primitives::b256!("360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc");
/// EIP-1967: `keccak256("eip1967.proxy.beacon") - 1`.
const EIP1967_BEACON_SLOT: B256 =
    alloy::primitives::b256!("a3f0ad74e5423aebfd80d3ef4346578335a9a72aeaee59ff6cb3582b35133d50");

/// The `submit` generation whose selector the runtime `code` pushes (current first).
fn abi_of(code: &[u8]) -> Option<FlowAbi> {
    const PUSH4: u8 = 0x63;
    let pushes = |selector: [u8; 4]| code.windows(5).any(|w| w[0] == PUSH4 && w[1..] == selector);
    if pushes(current::submitCall::SELECTOR) {
        Some(FlowAbi::Current)
    } else if pushes(licen_storage::zerog::abi::legacy::submitCall::SELECTOR) {
        Some(FlowAbi::Legacy)
    } else {
        None
    }
}

/// A sentence for a refused submission.
fn refusal(data: &[u8], submissions: &[FlowSubmission], price: U256) -> String {
    if let Ok(e) = current::NotEnoughFee::abi_decode(data) {
        return format!(
            "the fee sent does not cover {} sectors at {} wei each ({} wei held, {} wei needed): \
             the market's price changed since it was read; submit again",
            e.sectors,
            e.price,
            e.paid,
            e.price * e.sectors
        );
    }
    if data.starts_with(&alloy::primitives::keccak256("EnforcedPause()")[..4]) {
        return "submissions are paused by the Flow contract's admin; try again later".into();
    }
    match alloy::sol_types::decode_revert_reason(data).filter(|reason| !reason.is_empty()) {
        Some(reason) if reason.contains("Invalid submission") => format!(
            "it calls the submission invalid ({reason}): {} do not fit 0G's rules, which is a \
             LICEN bug; please report it",
            submissions
                .iter()
                .map(|s| format!("{} nodes for {} bytes", s.nodes.len(), s.length))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Some(reason) => format!("{reason} (price {price} wei per sector)"),
        None if data.is_empty() || data.iter().all(|b| *b == 0) => {
            "it reverted without a reason: a Flow contract of the other \
             ABI generation has no such `submit` (choose the other generation), or the Flow is \
             not launched yet"
                .into()
        }
        None => format!(
            "it reverted with data {} that is not a known Flow error",
            alloy::primitives::Bytes::copy_from_slice(data)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use licen_storage::merkle::FileTree;

    #[test]
    fn the_submit_generation_is_read_from_the_code() {
        let with = |selector: [u8; 4]| {
            let mut code = vec![0x60, 0x80, 0x60, 0x40, 0x52];
            code.push(0x63);
            code.extend_from_slice(&selector);
            code.extend_from_slice(&[0x14, 0x61, 0x01, 0x23, 0x57]);
            code
        };
        assert_eq!(
            abi_of(&with([0xbc, 0x8c, 0x11, 0xf8])),
            Some(FlowAbi::Current)
        );
        assert_eq!(
            abi_of(&with([0xef, 0x3e, 0x12, 0xdc])),
            Some(FlowAbi::Legacy)
        );
        assert_eq!(abi_of(&with([0x61, 0xec, 0x50, 0x82])), None);
        // The selector's bytes not pushed (inside other data) do not count.
        assert_eq!(abi_of(&[0x00, 0xbc, 0x8c, 0x11, 0xf8]), None);
    }

    #[test]
    fn refusals_read_as_sentences() {
        let submission =
            FlowSubmission::from_tree(&FileTree::from_bytes(&[1; 5000]), vec![]).unwrap();
        let not_enough = current::NotEnoughFee {
            price: U256::from(7),
            sectors: submission.sectors(),
            paid: U256::from(3),
        }
        .abi_encode();
        let said = refusal(
            &not_enough,
            std::slice::from_ref(&submission),
            U256::from(5),
        );
        assert!(
            said.contains("does not cover 20 sectors at 7 wei each (3 wei held, 140 wei needed)"),
            "{said}"
        );
        let invalid = alloy::sol_types::Revert::from("Invalid submission").abi_encode();
        let said = refusal(&invalid, std::slice::from_ref(&submission), U256::from(5));
        assert!(
            said.contains("LICEN bug") && said.contains("5000 bytes"),
            "{said}"
        );
        let paused = alloy::primitives::keccak256("EnforcedPause()")[..4].to_vec();
        assert!(refusal(&paused, std::slice::from_ref(&submission), U256::ZERO).contains("paused"));
        assert!(
            refusal(&[], std::slice::from_ref(&submission), U256::ZERO)
                .contains("other ABI generation")
        );
    }
}
