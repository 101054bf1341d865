//! The 0G Storage backend.
//!
//! Owns two things:
//! - the Flow contract submission: the node list, the fee and the `submit` calldata in both ABI
//!   generations ([`FlowAbi::Current`]: `submit(((uint256,bytes,(bytes32,uint256)[]),address))`,
//!   the `SubmissionData` wrapped with the submitter; [`FlowAbi::Legacy`]:
//!   `submit((uint256,bytes,(bytes32,uint256)[]))`). It builds calldata and value only; sending
//!   the transaction is `licen-chain`'s business, and this module never holds a key.
//! - (feature `net`) [`ZeroGStore`]: the same segment client pointed at one or more 0G storage
//!   nodes; downloads fall through to the next node when one is unreachable or lies.
//!
//! On 0G a node only accepts segments of a file whose submission is on chain, so the order is:
//! [`FlowSubmission::from_tree`] → chain sends [`FlowSubmission::call`] → wait for the node to
//! see the log entry → upload. Which Flow to pay is what the nodes say: a 0G node names the
//! Flow contract it follows and its chain in `zgs_getStatus` ([`FollowedFlow`]), as 0G's own
//! clients read it. Nodes are picked through a 0G storage indexer in [`crate::indexer`].

use alloy_primitives::{Address, Bytes, U256};
use alloy_sol_types::SolCall;

use crate::error::{Error, Result};
use crate::merkle::{FileTree, Hash, SubmissionNode, hash_pair, keccak256};

/// The Flow contract a storage node follows, and its chain: what uploads to that node are paid
/// through. A 0G node reports it in `zgs_getStatus` (`networkIdentity`); a local node in Flow
/// mode reports its own, and one that follows none reports zeros.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FollowedFlow {
    /// The chain's id (`eth_chainId`).
    pub chain_id: u64,
    /// The Flow contract.
    pub address: Address,
}

impl FollowedFlow {
    /// The Flow to pay on chain `chain_id` for uploads to nodes that follow `followed` (what
    /// [`crate::client::followed_flow`] found), `given` the one named by the user if any: the
    /// nodes' Flow, or `given` when they name none; `None` when neither. A `given` Flow the nodes
    /// do not follow, or nodes following a Flow on another chain, are refused: the payment would
    /// be lost and the nodes would never take the file.
    pub fn to_pay(
        given: Option<Address>,
        followed: Option<FollowedFlow>,
        chain_id: u64,
    ) -> Result<Option<Address>> {
        let Some(followed) = followed else {
            return Ok(given);
        };
        if let Some(given) = given
            && given != followed.address
        {
            return Err(Error::NotTheNodesFlow {
                given,
                followed: followed.address,
                chain_id: followed.chain_id,
            });
        }
        if followed.chain_id != chain_id {
            return Err(Error::FlowOnAnotherChain {
                flow: followed.address,
                flow_chain: followed.chain_id,
                chain_id,
            });
        }
        Ok(Some(followed.address))
    }
}

/// Solidity bindings of the Flow and market contracts (the parts LICEN uses).
pub mod abi {
    /// Current Flow ABI (0g-storage-contracts `Submission.sol`: `SubmissionData` wrapped in
    /// `Submission { data, submitter }`).
    pub mod current {
        alloy_sol_types::sol! {
            /// A power-of-two run of chunks: its root and `log2(chunks)`.
            #[derive(Debug, PartialEq, Eq)]
            struct SubmissionNode {
                bytes32 root;
                uint256 height;
            }
            /// What is being stored: byte length, tags, node list.
            #[derive(Debug, PartialEq, Eq)]
            struct SubmissionData {
                uint256 length;
                bytes tags;
                SubmissionNode[] nodes;
            }
            /// A submission and who submits it.
            #[derive(Debug, PartialEq, Eq)]
            struct Submission {
                SubmissionData data;
                address submitter;
            }
            /// Appends a file to the flow; pays `pricePerSector × sectors`.
            function submit(Submission submission) external payable returns (uint256 index, bytes32 digest, uint256 startIndex, uint256 length);
            /// Appends several files in one transaction, paying for all of them.
            function batchSubmit(Submission[] submissions) external payable returns (uint256[] indexes, bytes32[] digests, uint256[] startIndexes, uint256[] lengths);
            /// The market contract that prices sectors.
            function market() external view returns (address);
            /// Emitted for every submission (the same in both ABI generations): `identity` is
            /// the digest of the node roots, `submissionIndex` the transaction sequence number
            /// storage nodes know the file by, `length` the sectors paid for.
            event Submit(address indexed sender, bytes32 indexed identity, uint256 submissionIndex, uint256 startPos, uint256 length, SubmissionData submission);
            /// The fee held does not cover `sectors × price`.
            error NotEnoughFee(uint256 price, uint256 sectors, uint256 paid);
        }
    }

    /// Older Flow deployments: `submit` takes the inner struct directly.
    pub mod legacy {
        alloy_sol_types::sol! {
            /// A power-of-two run of chunks: its root and `log2(chunks)`.
            #[derive(Debug, PartialEq, Eq)]
            struct SubmissionNode {
                bytes32 root;
                uint256 height;
            }
            /// What is being stored: byte length, tags, node list.
            #[derive(Debug, PartialEq, Eq)]
            struct Submission {
                uint256 length;
                bytes tags;
                SubmissionNode[] nodes;
            }
            /// Appends a file to the flow.
            function submit(Submission submission) external payable returns (uint256, bytes32, uint256, uint256);
        }
    }

    /// The fixed-price market.
    pub mod market {
        alloy_sol_types::sol! {
            /// Wei per 256-byte sector.
            function pricePerSector() external view returns (uint256);
        }
    }
}

/// Which `submit` signature the Flow deployment has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowAbi {
    /// `submit(((uint256,bytes,(bytes32,uint256)[]),address))`.
    Current,
    /// `submit((uint256,bytes,(bytes32,uint256)[]))`.
    Legacy,
}

/// A contract call to make: calldata and the value to attach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowCall {
    /// ABI-encoded calldata (selector first).
    pub data: Bytes,
    /// Wei to send with the call (the storage fee).
    pub value: U256,
}

/// Everything the Flow contract needs to know about a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowSubmission {
    /// File size in bytes.
    pub length: u64,
    /// Opaque tags (0G's client sends empty tags by default).
    pub tags: Vec<u8>,
    /// Nodes in descending height; Σ 2^height = padded chunk count.
    pub nodes: Vec<SubmissionNode>,
}

impl FlowSubmission {
    /// The submission for a file whose tree was built from its bytes.
    pub fn from_tree(tree: &FileTree, tags: Vec<u8>) -> Result<Self> {
        Ok(FlowSubmission {
            length: tree.layout().size(),
            tags,
            nodes: tree.submission_nodes()?,
        })
    }

    /// Sectors (256-byte chunks) paid for: Σ 2^height.
    pub fn sectors(&self) -> U256 {
        self.nodes.iter().fold(U256::ZERO, |acc, n| {
            acc + (U256::from(1u8) << n.height as usize)
        })
    }

    /// The storage fee: `price_per_sector × Σ 2^height`.
    pub fn fee(&self, price_per_sector: U256) -> U256 {
        price_per_sector * self.sectors()
    }

    /// The file root the node list commits to (folded right to left as 0G does).
    pub fn root(&self) -> Option<Hash> {
        let (last, rest) = self.nodes.split_last()?;
        Some(
            rest.iter()
                .rev()
                .fold(last.root, |acc, n| hash_pair(&n.root, &acc)),
        )
    }

    /// The identity the contract emits: `keccak256(abi.encodePacked(node roots))`.
    pub fn digest(&self) -> Hash {
        let mut packed = Vec::with_capacity(self.nodes.len() * 32);
        for n in &self.nodes {
            packed.extend_from_slice(n.root.as_slice());
        }
        keccak256(&packed)
    }

    /// `submit` calldata and value for a Flow deployment with `abi`, paying
    /// `price_per_sector` per sector. `submitter` is only encoded by the current ABI.
    pub fn call(&self, abi: FlowAbi, submitter: Address, price_per_sector: U256) -> FlowCall {
        let data = match abi {
            FlowAbi::Current => abi::current::submitCall {
                submission: self.current(submitter),
            }
            .abi_encode(),
            FlowAbi::Legacy => {
                use abi::legacy as l;
                let call = l::submitCall {
                    submission: l::Submission {
                        length: U256::from(self.length),
                        tags: Bytes::from(self.tags.clone()),
                        nodes: self
                            .nodes
                            .iter()
                            .map(|n| l::SubmissionNode {
                                root: n.root,
                                height: U256::from(n.height),
                            })
                            .collect(),
                    },
                };
                call.abi_encode()
            }
        };
        FlowCall {
            data: Bytes::from(data),
            value: self.fee(price_per_sector),
        }
    }

    /// One transaction paying for every file of `submissions` (in order) at `price_per_sector`:
    /// `submit` for one file, `batchSubmit` for several (current ABI only; a legacy Flow has no
    /// batch, so each file is then submitted on its own). The value is the sum of the fees.
    pub fn batch_call(
        submissions: &[FlowSubmission],
        abi: FlowAbi,
        submitter: Address,
        price_per_sector: U256,
    ) -> Result<FlowCall> {
        match (submissions, abi) {
            ([], _) => Err(Error::InvalidInput(
                "a Flow submission needs at least one file".into(),
            )),
            ([one], _) => Ok(one.call(abi, submitter, price_per_sector)),
            (many, FlowAbi::Current) => Ok(FlowCall {
                data: Bytes::from(
                    abi::current::batchSubmitCall {
                        submissions: many.iter().map(|s| s.current(submitter)).collect(),
                    }
                    .abi_encode(),
                ),
                value: many.iter().map(|s| s.fee(price_per_sector)).sum(),
            }),
            (many, FlowAbi::Legacy) => Err(Error::InvalidInput(format!(
                "a Flow of the legacy ABI generation has no batchSubmit: submit the {} files one \
                 at a time",
                many.len()
            ))),
        }
    }

    /// The submission in the current ABI's terms.
    fn current(&self, submitter: Address) -> abi::current::Submission {
        use abi::current as c;
        c::Submission {
            data: c::SubmissionData {
                length: U256::from(self.length),
                tags: Bytes::from(self.tags.clone()),
                nodes: self
                    .nodes
                    .iter()
                    .map(|n| c::SubmissionNode {
                        root: n.root,
                        height: U256::from(n.height),
                    })
                    .collect(),
            },
            submitter,
        }
    }
}

/// Decodes `pricePerSector()`'s return data.
pub fn decode_price_per_sector(ret: &[u8]) -> Result<U256> {
    abi::market::pricePerSectorCall::abi_decode_returns(ret).map_err(|e| {
        Error::InvalidInput(format!(
            "pricePerSector() returned {} bytes that are not one uint256: {e}",
            ret.len()
        ))
    })
}

#[cfg(feature = "net")]
pub use net::ZeroGStore;

#[cfg(feature = "net")]
mod net {
    use std::path::Path;

    use tokio::io::AsyncWrite;

    use crate::client::{
        ClientConfig, DownloadOptions, FileReads, StorageClient, usable_for_download,
    };
    use crate::error::{Error, Result};
    use crate::merkle::{FileLayout, FileTree, Hash};
    use crate::rpc::FileInfo;
    use crate::store::{BoxFuture, Downloaded, ProgressFn, Store, Uploaded};

    /// 0G storage nodes behind the [`Store`] trait. Uploads go to every configured node (each
    /// is a replica); downloads try nodes in order and, when a node is unreachable, does not
    /// have the file or serves a segment that fails verification, continue from that segment
    /// on the next node.
    #[derive(Clone, Debug)]
    pub struct ZeroGStore {
        nodes: Vec<StorageClient>,
    }

    impl ZeroGStore {
        /// A store over the given zgs RPC URLs (`http://host:5678`), with 0G-friendly defaults
        /// (batches of 10 segments as 0G's own client sends, no LICEN extensions assumed).
        pub fn new<I, S>(urls: I) -> Result<Self>
        where
            I: IntoIterator<Item = S>,
            S: AsRef<str>,
        {
            let cfg = ClientConfig {
                batch_segments: 10,
                ..ClientConfig::default()
            };
            Self::with_config(urls, cfg)
        }

        /// Like [`new`](Self::new) with an explicit client configuration.
        pub fn with_config<I, S>(urls: I, cfg: ClientConfig) -> Result<Self>
        where
            I: IntoIterator<Item = S>,
            S: AsRef<str>,
        {
            let nodes = urls
                .into_iter()
                .map(|u| StorageClient::with_config(u.as_ref(), cfg.clone()))
                .collect::<Result<Vec<_>>>()?;
            if nodes.is_empty() {
                return Err(Error::InvalidInput(
                    "no 0G storage node URL given: pass at least one zgs RPC URL".into(),
                ));
            }
            Ok(ZeroGStore { nodes })
        }

        /// The node clients, in order.
        pub fn nodes(&self) -> &[StorageClient] {
            &self.nodes
        }

        /// Uploads a file (whose Flow submission is already on chain) to every node.
        pub async fn upload_file_with_tree(
            &self,
            path: &Path,
            tree: &FileTree,
            progress: Option<ProgressFn>,
        ) -> Result<Uploaded> {
            let mut last = None;
            for node in &self.nodes {
                last = Some(
                    node.upload_file_with_tree(path, tree, FileReads::Cached, progress.clone())
                        .await?,
                );
            }
            Ok(last.expect("at least one node"))
        }

        async fn first_ok<'a, T, F, Fut>(&'a self, root: Hash, mut f: F) -> Result<T>
        where
            F: FnMut(&'a StorageClient) -> Fut,
            Fut: std::future::Future<Output = Result<T>>,
        {
            let mut errors = Vec::new();
            for node in &self.nodes {
                match f(node).await {
                    Ok(v) => return Ok(v),
                    Err(e) => {
                        tracing::warn!(node = node.url(), %root, error = %e, "0G node failed, trying the next");
                        errors.push(e.to_string());
                    }
                }
            }
            Err(Error::AllNodesFailed { root, errors })
        }
    }

    impl Store for ZeroGStore {
        fn put_file<'a>(
            &'a self,
            path: &'a Path,
            progress: Option<ProgressFn>,
        ) -> BoxFuture<'a, Result<Uploaded>> {
            Box::pin(async move {
                let mut last = None;
                for node in &self.nodes {
                    last = Some(node.upload_file(path, progress.clone()).await?);
                }
                Ok(last.expect("at least one node"))
            })
        }

        fn put_bytes<'a>(
            &'a self,
            data: &'a [u8],
            progress: Option<ProgressFn>,
        ) -> BoxFuture<'a, Result<Uploaded>> {
            Box::pin(async move {
                if data.is_empty() {
                    return Err(Error::InvalidInput(
                        "0G storage does not accept empty files".into(),
                    ));
                }
                let mut last = None;
                for node in &self.nodes {
                    last = Some(node.upload_bytes(data, progress.clone()).await?);
                }
                Ok(last.expect("at least one node"))
            })
        }

        fn get<'a>(
            &'a self,
            root: Hash,
            writer: &'a mut (dyn AsyncWrite + Unpin + Send),
            options: DownloadOptions,
            progress: Option<ProgressFn>,
        ) -> BoxFuture<'a, Result<Downloaded>> {
            Box::pin(async move {
                // Segments are verified before they are written, so when a node fails or lies
                // mid-way the next node continues from the first segment not yet written.
                let mut errors = Vec::new();
                let mut layout = options.expected_size.map(FileLayout::new);
                let (mut next, mut done) = (0u64, 0u64);
                for node in &self.nodes {
                    let answer = node.file_info(root).await;
                    if let Err(why) = answer
                        .map_err(|e| e.to_string())
                        .and_then(|info| usable_for_download(node.url(), root, info, &mut layout))
                    {
                        errors.push(why);
                        continue;
                    }
                    let l = layout.expect("set above");
                    match node
                        .download_segments(root, l, next, done, writer, &progress)
                        .await
                    {
                        Ok(_) => {
                            return Ok(Downloaded {
                                root,
                                size: l.size(),
                                node: node.url().to_string(),
                            });
                        }
                        Err(p) => {
                            tracing::warn!(node = node.url(), %root, segment = p.next_segment, error = %p.error, "0G node failed mid-download, continuing from the next node");
                            next = p.next_segment;
                            done = p.bytes_written;
                            errors.push(p.error.to_string());
                        }
                    }
                }
                Err(Error::AllNodesFailed { root, errors })
            })
        }

        fn file_info(&self, root: Hash) -> BoxFuture<'_, Result<Option<FileInfo>>> {
            Box::pin(async move {
                self.first_ok(root, |n| async move { n.file_info(root).await })
                    .await
            })
        }

        fn has_segment(&self, root: Hash, index: u64) -> BoxFuture<'_, Result<bool>> {
            Box::pin(async move {
                self.first_ok(root, |n| async move { n.has_segment(root, index).await })
                    .await
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::keccak256 as alloy_keccak;
    use alloy_sol_types::SolType;

    /// Given Flow, the nodes' Flow, the payment chain, and the Flow paid or the refusal's words.
    type Case = (
        Option<Address>,
        Option<FollowedFlow>,
        u64,
        std::result::Result<Option<Address>, &'static str>,
    );

    #[test]
    fn the_flow_to_pay_is_the_nodes_on_their_chain() {
        let (theirs, other) = (Address::repeat_byte(0xf1), Address::repeat_byte(0x77));
        let followed = Some(FollowedFlow {
            chain_id: 16602,
            address: theirs,
        });
        let table: [Case; 6] = [
            (None, None, 31337, Ok(None)),
            (Some(other), None, 31337, Ok(Some(other))),
            (None, followed, 16602, Ok(Some(theirs))),
            (Some(theirs), followed, 16602, Ok(Some(theirs))),
            (
                Some(other),
                followed,
                16602,
                Err("is not the Flow contract the storage nodes follow"),
            ),
            (
                None,
                followed,
                31337,
                Err("on chain 16602, but payments would go to chain 31337"),
            ),
        ];
        for (given, nodes, chain, expected) in table {
            let got = FollowedFlow::to_pay(given, nodes, chain);
            match (got, expected) {
                (Ok(paid), Ok(want)) => assert_eq!(paid, want, "{given:?} {nodes:?} {chain}"),
                (Err(e), Err(words)) => assert!(e.to_string().contains(words), "{e}"),
                (got, want) => panic!("{given:?} {nodes:?} {chain}: got {got:?}, want {want:?}"),
            }
        }
    }

    fn sample() -> FlowSubmission {
        let data = vec![7u8; 5 * 1024 * 256 + 300]; // 5 segments + 2 chunks
        let tree = FileTree::from_bytes(&data);
        FlowSubmission::from_tree(&tree, vec![]).unwrap()
    }

    #[test]
    fn selectors_match_signatures() {
        assert_eq!(
            abi::current::submitCall::SIGNATURE,
            "submit(((uint256,bytes,(bytes32,uint256)[]),address))"
        );
        assert_eq!(
            abi::legacy::submitCall::SIGNATURE,
            "submit((uint256,bytes,(bytes32,uint256)[]))"
        );
        assert_eq!(
            abi::current::submitCall::SELECTOR,
            alloy_keccak(abi::current::submitCall::SIGNATURE.as_bytes())[..4]
        );
        // The selector dispatched by the Flow bytecode 0G's Go client ships
        // (storage-contracts-abis/Flow.json) for the legacy ABI.
        assert_eq!(hex::encode(abi::legacy::submitCall::SELECTOR), "ef3e12dc");
        assert_ne!(
            abi::current::submitCall::SELECTOR,
            abi::legacy::submitCall::SELECTOR
        );
    }

    #[test]
    fn node_list_and_fee() {
        let s = sample();
        // 5122 chunks → nextPow2 8192, unit 512 → padded 5632 = 4096 + 1024 + 512.
        let heights: Vec<u32> = s.nodes.iter().map(|n| n.height).collect();
        assert_eq!(heights, vec![12, 10, 9]);
        assert_eq!(s.sectors(), U256::from(5632u64));
        assert_eq!(s.fee(U256::from(3u64)), U256::from(3u64 * 5632));
        let data = vec![7u8; 5 * 1024 * 256 + 300];
        assert_eq!(s.root(), Some(crate::merkle::root(&data)));
    }

    #[test]
    fn calldata_decodes_back() {
        let s = sample();
        let submitter = Address::repeat_byte(0x11);
        let price = U256::from(1_000_000_000u64);
        let call = s.call(FlowAbi::Current, submitter, price);
        assert_eq!(call.value, price * U256::from(5632u64));
        assert_eq!(
            &call.data[..4],
            abi::current::submitCall::SELECTOR.as_slice()
        );
        let back = abi::current::submitCall::abi_decode(&call.data).unwrap();
        assert_eq!(back.submission.submitter, submitter);
        assert_eq!(back.submission.data.length, U256::from(s.length));
        assert_eq!(back.submission.data.nodes.len(), 3);
        assert_eq!(back.submission.data.nodes[0].root, s.nodes[0].root);
        assert_eq!(back.submission.data.nodes[2].height, U256::from(9u64));

        let legacy = s.call(FlowAbi::Legacy, submitter, price);
        assert_eq!(
            &legacy.data[..4],
            abi::legacy::submitCall::SELECTOR.as_slice()
        );
        let back = abi::legacy::submitCall::abi_decode(&legacy.data).unwrap();
        assert_eq!(back.submission.length, U256::from(s.length));
        assert_eq!(back.submission.nodes[1].height, U256::from(10u64));
        // The legacy body is the inner struct; the current body wraps it with the submitter.
        let inner = <abi::legacy::Submission as SolType>::abi_encode(&back.submission);
        assert!(call.data.len() > inner.len());
    }

    #[test]
    fn several_files_are_one_batch_submit() {
        let (a, b) = (
            sample(),
            FlowSubmission::from_tree(&FileTree::from_bytes(&[3; 700]), vec![]).unwrap(),
        );
        let submitter = Address::repeat_byte(0x22);
        let price = U256::from(5u64);
        let both = [a.clone(), b.clone()];
        let call = FlowSubmission::batch_call(&both, FlowAbi::Current, submitter, price).unwrap();
        assert_eq!(call.value, a.fee(price) + b.fee(price));
        assert_eq!(
            abi::current::batchSubmitCall::SIGNATURE,
            "batchSubmit(((uint256,bytes,(bytes32,uint256)[]),address)[])"
        );
        let back = abi::current::batchSubmitCall::abi_decode(&call.data).unwrap();
        assert_eq!(back.submissions.len(), 2);
        assert_eq!(back.submissions[1].data.length, U256::from(700u64));
        assert_eq!(back.submissions[0].submitter, submitter);
        // One file is a plain `submit`, in either generation.
        let one =
            FlowSubmission::batch_call(&both[..1], FlowAbi::Legacy, submitter, price).unwrap();
        assert_eq!(one, a.call(FlowAbi::Legacy, submitter, price));
        let said = FlowSubmission::batch_call(&both, FlowAbi::Legacy, submitter, price)
            .unwrap_err()
            .to_string();
        assert!(said.contains("no batchSubmit"), "{said}");
        assert!(FlowSubmission::batch_call(&[], FlowAbi::Current, submitter, price).is_err());
    }

    #[test]
    fn price_decoding() {
        let ret = U256::from(42u64).to_be_bytes::<32>();
        assert_eq!(decode_price_per_sector(&ret).unwrap(), U256::from(42u64));
        assert!(decode_price_per_sector(&[1, 2]).is_err());
    }
}
