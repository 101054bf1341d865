//! The typed DataPolicy client: one method per contract function, domain types in and out.

use crate::bindings::{DataPolicy, IDataPolicy};
use crate::convert::{policy_from_sol, policy_to_sol};
use crate::error::{Error, Result};
use crate::nonce::ResyncingNonceManager;
use crate::revert::Revert;
use alloy::contract::{CallDecoder, SolCallBuilder};
use alloy::network::EthereumWallet;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionReceipt;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolCall, SolEvent};
use licen_types::{DatasetRoot, JobId, JobState, Policy, Purpose};
use std::sync::Arc;

/// A provider plus what the client needs to keep its account's nonces straight.
#[derive(Clone, Debug)]
pub struct Connection {
    /// The provider (signs with the wallet when one was given).
    pub provider: DynProvider,
    /// The RPC URL, for error messages.
    pub rpc: String,
    /// The signing account, if any.
    pub sender: Option<Address>,
    nonces: ResyncingNonceManager,
    /// The send lock (see `DataPolicyClient::sending`).
    sending: Arc<tokio::sync::Mutex<()>>,
}

impl Connection {
    pub(crate) fn forget_nonce(&self) {
        if let Some(sender) = self.sender {
            self.nonces.forget(sender);
        }
    }
}

/// Connects to `rpc_url`, signing with `signer` when given (read-only otherwise).
pub fn connect(rpc_url: &str, signer: Option<PrivateKeySigner>) -> Result<Connection> {
    connect_with(rpc_url, signer, ResyncingNonceManager::default())
}

/// [`connect`] for an account several processes hold but only one may use at a time
/// (orchestrator replicas): its nonces are fenced (see [`crate::nonce`]); the process that
/// comes to hold the account calls [`DataPolicyClient::fence_account`] before anything else.
pub fn connect_fenced(rpc_url: &str, signer: PrivateKeySigner) -> Result<Connection> {
    connect_with(rpc_url, Some(signer), ResyncingNonceManager::fenced())
}

fn connect_with(
    rpc_url: &str,
    signer: Option<PrivateKeySigner>,
    nonces: ResyncingNonceManager,
) -> Result<Connection> {
    let url: url::Url = rpc_url.parse().map_err(|e| {
        Error::Config(format!(
            "`{rpc_url}` is not an RPC URL ({e}): expected e.g. http://127.0.0.1:8545"
        ))
    })?;
    let sender = signer.as_ref().map(PrivateKeySigner::address);
    let base = ProviderBuilder::new()
        .disable_recommended_fillers()
        .with_gas_estimation()
        .with_nonce_management(nonces.clone())
        .fetch_chain_id();
    let provider = match signer {
        Some(signer) => base
            .wallet(EthereumWallet::from(signer))
            .connect_http(url)
            .erased(),
        None => base.connect_http(url).erased(),
    };
    Ok(Connection {
        provider,
        rpc: rpc_url.to_owned(),
        sender,
        nonces,
        sending: Arc::default(),
    })
}

/// Constructor arguments of `DataPolicy`.
#[derive(Debug, Clone, Copy)]
pub struct DeployParams {
    /// Contract admin (orchestrator registry, fees).
    pub admin: Address,
    /// Receives the protocol fee.
    pub treasury: Address,
    /// Protocol fee in basis points (≤ 1000).
    pub fee_bps: u16,
    /// Seconds a started job has to settle before the researcher may reclaim it.
    pub run_timeout: u64,
}

/// Where [`DataPolicyClient::fence_account`] fenced the account.
#[derive(Debug, Clone, Copy)]
pub struct FencedAt {
    /// The fence's nonce: no transaction of the account with this nonce or a lower one can be
    /// mined after it.
    pub nonce: u64,
    /// The fencing transaction.
    pub tx: TxReceipt,
}

/// A deployed contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deployment {
    /// Contract address.
    pub address: Address,
    /// Block the deployment was mined in (where indexers start).
    pub block: u64,
}

/// What a mined, successful transaction cost.
#[derive(Debug, Clone, Copy)]
pub struct TxReceipt {
    /// Transaction hash.
    pub tx_hash: B256,
    /// Block number.
    pub block: u64,
    /// Gas used.
    pub gas_used: u64,
}

impl From<&TransactionReceipt> for TxReceipt {
    fn from(r: &TransactionReceipt) -> Self {
        Self {
            tx_hash: r.transaction_hash,
            block: r.block_number.unwrap_or_default(),
            gas_used: r.gas_used,
        }
    }
}

/// A paid grant, from its `AccessGranted` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// The job.
    pub job: JobId,
    /// The dataset.
    pub dataset: DatasetRoot,
    /// Who paid.
    pub researcher: Address,
    /// Epochs paid for.
    pub epochs: u16,
    /// Declared purpose bit.
    pub purpose: u8,
    /// The researcher's X25519 result key.
    pub result_key: [u8; 32],
    /// Escrow paid, in wei.
    pub escrow: u128,
    /// Unix time after which the grant can no longer start.
    pub expires_at: u64,
    /// Block of the grant.
    pub block: u64,
}

/// How a completed job was settled (from its `JobCompleted` event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobCompletion {
    /// Epochs actually trained.
    pub actual_epochs: u16,
    /// The result's identifier: the 0G root of the sealed result object.
    pub result_hash: B256,
    /// Reference to the attestation evidence (its 0G root).
    pub attestation_ref: B256,
    /// Credited to the owner before the fee.
    pub royalty: u128,
    /// Credited to the treasury.
    pub fee: u128,
    /// Credited back to the researcher.
    pub refund: u128,
}

/// A job as stored on-chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobView {
    /// Who requested and paid.
    pub researcher: Address,
    /// The dataset's sequential index in the contract.
    pub dataset_index: u32,
    /// Current state.
    pub state: JobState,
    /// `Granted`: the grant's expiry; `Running`: the run deadline (unix seconds).
    pub deadline: u64,
    /// Epochs paid for.
    pub epochs: u16,
    /// Price per epoch snapshotted at request time.
    pub price_per_epoch: u128,
}

impl JobView {
    /// The escrow paid for this job.
    pub fn escrow(&self) -> u128 {
        self.price_per_epoch * u128::from(self.epochs)
    }
}

/// A client bound to one DataPolicy deployment.
#[derive(Clone)]
pub struct DataPolicyClient {
    contract: DataPolicy::DataPolicyInstance<DynProvider>,
    connection: Connection,
}

impl std::fmt::Debug for DataPolicyClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataPolicyClient")
            .field("address", self.contract.address())
            .field("rpc", &self.connection.rpc)
            .finish()
    }
}

impl DataPolicyClient {
    /// A client for the contract at `address`.
    pub fn new(connection: Connection, address: Address) -> Self {
        Self {
            contract: DataPolicy::new(address, connection.provider.clone()),
            connection,
        }
    }

    /// Deploys a new DataPolicy from the committed artifact's bytecode.
    pub async fn deploy(
        connection: Connection,
        params: DeployParams,
    ) -> Result<(Self, Deployment)> {
        let (client, deployment, _) = Self::deploy_with_receipt(connection, params).await?;
        Ok((client, deployment))
    }

    /// [`deploy`](Self::deploy), also returning the deploying transaction (its hash is what an
    /// operator keeps as the deployment's proof).
    pub async fn deploy_with_receipt(
        connection: Connection,
        params: DeployParams,
    ) -> Result<(Self, Deployment, TxReceipt)> {
        let (provider, rpc) = (&connection.provider, connection.rpc.as_str());
        let builder = DataPolicy::deploy_builder(
            provider.clone(),
            params.admin,
            params.treasury,
            params.fee_bps,
            params.run_timeout,
        );
        let pending = builder.send().await.map_err(|e| {
            connection.forget_nonce();
            contract_error("deploy", rpc, e)
        })?;
        let receipt = wait_for_receipt(provider, rpc, "deploy", *pending.tx_hash()).await?;
        let address = receipt
            .contract_address
            .filter(|_| receipt.status())
            .ok_or_else(|| Error::TxFailed {
                action: "deploy",
                tx: receipt.transaction_hash.to_string(),
                block: receipt.block_number.unwrap_or_default(),
            })?;
        let deployment = Deployment {
            address,
            block: receipt.block_number.unwrap_or_default(),
        };
        let tx = TxReceipt::from(&receipt);
        Ok((Self::new(connection, address), deployment, tx))
    }

    /// The contract address.
    pub fn address(&self) -> Address {
        *self.contract.address()
    }

    /// The provider this client sends through.
    pub fn provider(&self) -> &DynProvider {
        self.contract.provider()
    }

    /// The RPC URL.
    pub fn rpc(&self) -> &str {
        &self.connection.rpc
    }

    /// Takes the signing account over from any other process holding it (orchestrator
    /// replicas, on a [`connect_fenced`] connection): starts its nonces afresh from the node and
    /// sends one transaction of its own, a 0-value transfer to itself, waiting until it is
    /// mined. From then on no transaction another process signed from the account with an
    /// earlier nonce can be mined, and a process that did sign one learns that it lost the
    /// account ([`Error::AccountUsedElsewhere`]) instead of re-reading the nonce and sending.
    pub async fn fence_account(&self) -> Result<FencedAt> {
        let sender = self.connection.sender.ok_or_else(|| {
            Error::Config("fencing an account needs a signing connection".to_owned())
        })?;
        let sending = self.sending().await;
        self.connection.nonces.reset(sender);
        let request = alloy::rpc::types::TransactionRequest::default()
            .to(sender)
            .value(U256::ZERO);
        let (receipt, nonce) = self
            .send_locked(
                sending,
                "fence the account (a 0-value transfer to itself)",
                request,
            )
            .await?;
        Ok(FencedAt {
            nonce: nonce.unwrap_or_default(),
            tx: TxReceipt::from(&receipt),
        })
    }

    /// The signing account, if this client can send transactions.
    pub fn sender(&self) -> Option<Address> {
        self.connection.sender
    }

    async fn send<C: SolCall>(
        &self,
        action: &'static str,
        call: SolCallBuilder<&DynProvider, C>,
    ) -> Result<TransactionReceipt>
    where
        std::marker::PhantomData<C>: CallDecoder,
    {
        let sending = self.sending().await;
        let (receipt, _) = self
            .send_locked(sending, action, call.into_transaction_request())
            .await?;
        Ok(receipt)
    }

    /// The connection's send lock: held from taking a nonce until the node has the
    /// transaction, so a send that fails before reaching the node never leaves a later one
    /// behind a gap.
    async fn sending(&self) -> tokio::sync::OwnedMutexGuard<()> {
        Arc::clone(&self.connection.sending).lock_owned().await
    }

    /// Sends `request` from the signing account under `sending` (released once the node has
    /// it) and waits until it is mined successfully; returns the receipt and the nonce used.
    async fn send_locked(
        &self,
        sending: tokio::sync::OwnedMutexGuard<()>,
        action: &'static str,
        mut request: alloy::rpc::types::TransactionRequest,
    ) -> Result<(TransactionReceipt, Option<u64>)> {
        let value = request.value;
        // The nonce is taken here, not by the filler, so a failure knows which one it left
        // unused (the filler would hand one out, or not, depending on how far it got).
        let nonce = self.next_nonce(action).await?;
        request.nonce = nonce;
        let pending = match self.provider().send_transaction(request).await {
            Ok(pending) => pending,
            Err(e) => {
                let error = contract_error(action, self.rpc(), e.into());
                // A fenced account refused a stale nonce because another process took it over:
                // say that, not the node's "nonce too low".
                if let Some(used) = self.failed_send(nonce).await {
                    return Err(Error::AccountUsedElsewhere(used));
                }
                return Err(self.explain_funds(error, value).await);
            }
        };
        drop(sending);
        let receipt = self.receipt(action, *pending.tx_hash(), nonce).await?;
        if !receipt.status() {
            return Err(Error::TxFailed {
                action,
                tx: receipt.transaction_hash.to_string(),
                block: receipt.block_number.unwrap_or_default(),
            });
        }
        Ok((receipt, nonce))
    }

    /// The next nonce of the signing account (`None` for a read-only client).
    async fn next_nonce(&self, action: &'static str) -> Result<Option<u64>> {
        use alloy::providers::fillers::NonceManager as _;
        let Some(sender) = self.connection.sender else {
            return Ok(None);
        };
        self.connection
            .nonces
            .get_next_nonce(self.provider(), sender)
            .await
            .map(Some)
            .map_err(|e| contract_error(action, self.rpc(), e.into()))
    }

    /// The receipt of a sent transaction. One never mined in time may have been dropped (its
    /// nonce taken by another process's fence, on a fenced account): the next send then asks
    /// the node afresh, checked, instead of counting on `nonce` having been used.
    async fn receipt(
        &self,
        action: &'static str,
        tx: B256,
        nonce: Option<u64>,
    ) -> Result<TransactionReceipt> {
        let receipt = wait_for_receipt(self.provider(), self.rpc(), action, tx).await;
        if receipt.is_err()
            && let (Some(sender), Some(nonce)) = (self.connection.sender, nonce)
            && self.connection.nonces.is_fenced()
        {
            self.connection.nonces.failed(sender, nonce);
        }
        receipt
    }

    /// Records that the send with `nonce` failed; on a fenced connection, whether another
    /// process has used the account since (`None` when not fenced, or the node cannot say).
    async fn failed_send(&self, nonce: Option<u64>) -> Option<crate::nonce::AccountUsedElsewhere> {
        let (sender, nonce) = (self.connection.sender?, nonce?);
        let nonces = &self.connection.nonces;
        nonces.failed(sender, nonce);
        if !nonces.is_fenced() {
            return None;
        }
        let pending = self
            .provider()
            .get_transaction_count(sender)
            .pending()
            .await
            .ok()?;
        nonces.check(sender, pending).err()
    }

    /// A node refusing a send for lack of funds answers in its own words ("insufficient funds
    /// for gas * price + value"): say it with the wallet, its balance and the value instead.
    async fn explain_funds(&self, error: Error, value: Option<U256>) -> Error {
        fund_error(&self.connection, error, value).await
    }

    /// A transport error of the read `action` (an RPC method name).
    fn rpc_error(&self, action: &'static str, e: impl std::fmt::Display) -> Error {
        Error::Rpc {
            action,
            rpc: self.rpc().to_owned(),
            message: e.to_string(),
        }
    }

    /// The balance of `account` (wei).
    pub async fn balance(&self, account: Address) -> Result<u128> {
        let wei = self
            .provider()
            .get_balance(account)
            .await
            .map_err(|e| self.rpc_error("eth_getBalance", e))?;
        Ok(u128::try_from(wei).unwrap_or(u128::MAX))
    }

    /// The chain's gas price now (wei per gas).
    pub async fn gas_price(&self) -> Result<u128> {
        self.provider()
            .get_gas_price()
            .await
            .map_err(|e| self.rpc_error("eth_gasPrice", e))
    }

    /// Sends and waits, keeping only what callers need from the receipt.
    async fn transact<C: SolCall>(
        &self,
        action: &'static str,
        call: SolCallBuilder<&DynProvider, C>,
    ) -> Result<TxReceipt>
    where
        std::marker::PhantomData<C>: CallDecoder,
    {
        Ok((&self.send(action, call).await?).into())
    }

    async fn view<C: SolCall>(
        &self,
        action: &'static str,
        call: SolCallBuilder<&DynProvider, C>,
    ) -> Result<C::Return>
    where
        std::marker::PhantomData<C>: CallDecoder<CallOutput = C::Return>,
    {
        call.call()
            .await
            .map_err(|e| contract_error(action, self.rpc(), e))
    }

    fn event<E: SolEvent>(&self, action: &'static str, receipt: &TransactionReceipt) -> Result<E> {
        receipt
            .inner
            .logs()
            .iter()
            .filter(|log| log.address() == self.address())
            .find_map(|log| E::decode_log(&log.inner).ok().map(|l| l.data))
            .ok_or_else(|| Error::MissingEvent {
                action,
                event: E::SIGNATURE,
                tx: receipt.transaction_hash.to_string(),
                address: self.address().to_string(),
            })
    }

    // ------------------------------------------------------------------ admin

    /// Registers an orchestrator with its X25519 public key (admin only).
    pub async fn register_orchestrator(
        &self,
        orchestrator: Address,
        public_key: [u8; 32],
    ) -> Result<TxReceipt> {
        let call = self
            .contract
            .registerOrchestrator(orchestrator, public_key.into());
        self.transact("registerOrchestrator", call).await
    }

    /// Rotates an orchestrator's public key (admin only).
    pub async fn rotate_orchestrator_key(
        &self,
        orchestrator: Address,
        public_key: [u8; 32],
    ) -> Result<TxReceipt> {
        let call = self
            .contract
            .rotateOrchestratorKey(orchestrator, public_key.into());
        self.transact("rotateOrchestratorKey", call).await
    }

    /// Deactivates an orchestrator: no new publishes or requests name it (admin only).
    pub async fn deactivate_orchestrator(&self, orchestrator: Address) -> Result<TxReceipt> {
        let call = self.contract.deactivateOrchestrator(orchestrator);
        self.transact("deactivateOrchestrator", call).await
    }

    /// Sets the protocol fee and treasury (admin only; fee ≤ 10%).
    pub async fn set_protocol_fee(&self, fee_bps: u16, treasury: Address) -> Result<TxReceipt> {
        let call = self.contract.setProtocolFee(fee_bps, treasury);
        self.transact("setProtocolFee", call).await
    }

    /// Hands the admin role to another account (admin only).
    pub async fn transfer_admin(&self, new_admin: Address) -> Result<TxReceipt> {
        let call = self.contract.transferAdmin(new_admin);
        self.transact("transferAdmin", call).await
    }

    // ------------------------------------------------------------------ owner

    /// Anchors a sealed, uploaded dataset with its policy.
    pub async fn publish(
        &self,
        dataset: DatasetRoot,
        orchestrator: Address,
        envelope_root: B256,
        manifest_root: B256,
        policy: &Policy,
    ) -> Result<TxReceipt> {
        let call = self.contract.publish(
            dataset.0,
            orchestrator,
            envelope_root,
            manifest_root,
            policy_to_sol(policy),
        );
        self.transact("publish", call).await
    }

    /// Replaces a dataset's policy (owner only); running jobs keep their snapshot.
    pub async fn update_policy(&self, dataset: DatasetRoot, policy: &Policy) -> Result<TxReceipt> {
        let call = self.contract.updatePolicy(dataset.0, policy_to_sol(policy));
        self.transact("updatePolicy", call).await
    }

    /// Stops new requests (owner only).
    pub async fn pause(&self, dataset: DatasetRoot) -> Result<TxReceipt> {
        let call = self.contract.pause(dataset.0);
        self.transact("pause", call).await
    }

    /// Accepts requests again (owner only).
    pub async fn resume(&self, dataset: DatasetRoot) -> Result<TxReceipt> {
        let call = self.contract.resume(dataset.0);
        self.transact("resume", call).await
    }

    /// Points the dataset at a new key envelope (owner only).
    pub async fn rotate_envelope(
        &self,
        dataset: DatasetRoot,
        envelope_root: B256,
    ) -> Result<TxReceipt> {
        let call = self.contract.rotateEnvelope(dataset.0, envelope_root);
        self.transact("rotateEnvelope", call).await
    }

    // ------------------------------------------------------------------ researcher

    /// Pays exactly `escrow` and requests a training run; returns the new job id.
    pub async fn request_access(
        &self,
        dataset: DatasetRoot,
        epochs: u16,
        purpose: Purpose,
        result_key: [u8; 32],
        escrow: u128,
    ) -> Result<(JobId, TxReceipt)> {
        let call = self
            .contract
            .requestAccess(dataset.0, epochs, purpose.bit(), result_key.into())
            .value(U256::from(escrow));
        let receipt = self.send("requestAccess", call).await?;
        let granted: DataPolicy::AccessGranted = self.event("requestAccess", &receipt)?;
        let job = u64::try_from(granted.jobId).map_err(|_| {
            Error::Config(format!("job id {} does not fit in 64 bits", granted.jobId))
        })?;
        Ok((JobId(job), (&receipt).into()))
    }

    /// Takes back the full escrow of a running job past its run deadline (researcher only).
    pub async fn reclaim(&self, job: JobId) -> Result<TxReceipt> {
        let call = self.contract.reclaim(job.to_u256());
        self.transact("reclaim", call).await
    }

    // ------------------------------------------------------------------ orchestrator

    /// Marks a granted job running (the dataset's orchestrator only).
    pub async fn start_job(&self, job: JobId) -> Result<TxReceipt> {
        let call = self.contract.startJob(job.to_u256());
        self.transact("startJob", call).await
    }

    /// Settles a running job: royalty, fee and refund are credited.
    pub async fn confirm_training_complete(
        &self,
        job: JobId,
        actual_epochs: u16,
        result_hash: B256,
        attestation_ref: B256,
    ) -> Result<TxReceipt> {
        let call = self.contract.confirmTrainingComplete(
            job.to_u256(),
            actual_epochs,
            result_hash,
            attestation_ref,
        );
        self.transact("confirmTrainingComplete", call).await
    }

    /// Gives up on a job with a reason: full refund.
    pub async fn fail_job(&self, job: JobId, reason: &str) -> Result<TxReceipt> {
        let call = self.contract.failJob(job.to_u256(), reason.to_owned());
        self.transact("failJob", call).await
    }

    // ------------------------------------------------------------------ anyone

    /// Expires a grant that was not started in time: full refund.
    pub async fn expire(&self, job: JobId) -> Result<TxReceipt> {
        let call = self.contract.expire(job.to_u256());
        self.transact("expire", call).await
    }

    /// Withdraws the sender's whole balance; returns the amount.
    pub async fn withdraw(&self) -> Result<(u128, TxReceipt)> {
        let receipt = self.send("withdraw", self.contract.withdraw()).await?;
        let withdrawn: DataPolicy::Withdrawn = self.event("withdraw", &receipt)?;
        Ok((
            u128::try_from(withdrawn.amount).unwrap_or(u128::MAX),
            (&receipt).into(),
        ))
    }

    // ------------------------------------------------------------------ views

    /// The orchestrator's registered X25519 key and whether it is active.
    pub async fn orchestrator_key(&self, orchestrator: Address) -> Result<([u8; 32], bool)> {
        let r = self
            .view(
                "orchestratorKey",
                self.contract.orchestratorKey(orchestrator),
            )
            .await?;
        Ok((r.publicKey.0, r.active))
    }

    /// Owner, orchestrator, paused flag and current policy of a dataset.
    pub async fn dataset_info(
        &self,
        dataset: DatasetRoot,
    ) -> Result<(Address, Address, bool, Policy)> {
        let r = self
            .view("datasetInfo", self.contract.datasetInfo(dataset.0))
            .await?;
        Ok((
            r.owner,
            r.orchestrator,
            r.paused,
            policy_from_sol(&r.policy),
        ))
    }

    /// The contract's own `policyHash` of `policy`.
    pub async fn policy_hash(&self, policy: &Policy) -> Result<B256> {
        self.view(
            "policyHash",
            self.contract.policyHash(policy_to_sol(policy)),
        )
        .await
    }

    /// A job as stored.
    pub async fn job(&self, job: JobId) -> Result<JobView> {
        let j: IDataPolicy::Job = self.view("job", self.contract.job(job.to_u256())).await?;
        Ok(JobView {
            researcher: j.researcher,
            dataset_index: j.datasetIndex,
            state: JobState::from_u8(j.state).unwrap_or(JobState::None),
            deadline: j.deadline.to::<u64>(),
            epochs: j.epochs,
            price_per_epoch: j.pricePerEpoch,
        })
    }

    /// The dataset root a job runs on.
    pub async fn job_dataset_root(&self, job: JobId) -> Result<DatasetRoot> {
        Ok(DatasetRoot(
            self.view(
                "jobDatasetRoot",
                self.contract.jobDatasetRoot(job.to_u256()),
            )
            .await?,
        ))
    }

    /// Runs a researcher has used on a dataset.
    pub async fn runs_used(&self, dataset: DatasetRoot, researcher: Address) -> Result<u32> {
        self.view("runsUsed", self.contract.runsUsed(dataset.0, researcher))
            .await
    }

    /// An account's withdrawable balance in wei.
    pub async fn withdrawable(&self, account: Address) -> Result<u128> {
        let amount = self
            .view("withdrawable", self.contract.withdrawable(account))
            .await?;
        Ok(u128::try_from(amount).unwrap_or(u128::MAX))
    }

    /// Σ escrow of live (`Granted` or `Running`) jobs, summed from the job views: the contract keeps no
    /// running total (it would cost every request, settlement and refund a storage write). One view call per
    /// job ever granted, so this is for diagnostics and tests; the indexer answers it for marketplaces.
    pub async fn live_escrow(&self) -> Result<u128> {
        let next = self.next_job_id().await?.0;
        let mut total = 0u128;
        for id in 1..next {
            let job = self.job(JobId(id)).await?;
            if matches!(job.state, JobState::Granted | JobState::Running) {
                total += job.price_per_epoch * u128::from(job.epochs);
            }
        }
        Ok(total)
    }

    /// Protocol fee (bps) and treasury.
    pub async fn protocol_fee(&self) -> Result<(u16, Address)> {
        let fee = self
            .view("protocolFeeBps", self.contract.protocolFeeBps())
            .await?;
        let treasury = self.view("treasury", self.contract.treasury()).await?;
        Ok((fee, treasury))
    }

    /// The settlement of a completed job, read from its `JobCompleted` event (searched from
    /// block `from_block`); `None` if the job has not completed.
    pub async fn job_completion(
        &self,
        job: JobId,
        from_block: u64,
    ) -> Result<Option<JobCompletion>> {
        let logs = self
            .logs(
                DataPolicy::JobCompleted::SIGNATURE_HASH,
                Some(B256::from(job.to_u256())),
                from_block,
                None,
            )
            .await?;
        let Some(log) = logs.last() else {
            return Ok(None);
        };
        let event = DataPolicy::JobCompleted::decode_log(&log.inner)
            .map_err(|e| Error::Config(format!("undecodable JobCompleted log: {e}")))?
            .data;
        let amount = |v: U256| u128::try_from(v).unwrap_or(u128::MAX);
        Ok(Some(JobCompletion {
            actual_epochs: event.actualEpochs,
            result_hash: event.resultHash,
            attestation_ref: event.attestationRef,
            royalty: amount(event.royalty),
            fee: amount(event.fee),
            refund: amount(event.refund),
        }))
    }

    /// Every `AccessGranted` in blocks `from..=to`, in chain order.
    pub async fn grants(&self, from: u64, to: u64) -> Result<Vec<Grant>> {
        let logs = self
            .logs(
                DataPolicy::AccessGranted::SIGNATURE_HASH,
                None,
                from,
                Some(to),
            )
            .await?;
        let mut grants = Vec::with_capacity(logs.len());
        for log in logs {
            let Ok(event) = DataPolicy::AccessGranted::decode_log(&log.inner) else {
                tracing::warn!(tx = ?log.transaction_hash, "skipping an undecodable AccessGranted log");
                continue;
            };
            let e = event.data;
            grants.push(Grant {
                job: JobId(u64::try_from(e.jobId).unwrap_or(u64::MAX)),
                dataset: DatasetRoot(e.datasetRoot),
                researcher: e.researcher,
                epochs: e.epochs,
                purpose: e.purpose,
                result_key: e.resultKey.0,
                escrow: u128::try_from(e.escrow).unwrap_or(u128::MAX),
                expires_at: e.expiresAt,
                block: log.block_number.unwrap_or_default(),
            });
        }
        Ok(grants)
    }

    /// The dataset's current key-envelope root and its manifest root (from `DatasetPublished`
    /// and the latest `EnvelopeRotated`).
    pub async fn dataset_roots(&self, dataset: DatasetRoot) -> Result<Option<(B256, B256)>> {
        let topic = Some(dataset.0);
        let published = self
            .logs(DataPolicy::DatasetPublished::SIGNATURE_HASH, topic, 0, None)
            .await?;
        let Some(event) = published
            .iter()
            .find_map(|l| DataPolicy::DatasetPublished::decode_log(&l.inner).ok())
        else {
            return Ok(None);
        };
        let mut envelope = event.data.envelopeRoot;
        let rotations = self
            .logs(DataPolicy::EnvelopeRotated::SIGNATURE_HASH, topic, 0, None)
            .await?;
        if let Some(last) = rotations
            .iter()
            .filter_map(|l| DataPolicy::EnvelopeRotated::decode_log(&l.inner).ok())
            .last()
        {
            envelope = last.data.envelopeRoot;
        }
        Ok(Some((envelope, event.data.manifestRoot)))
    }

    /// The latest block number.
    pub async fn block_number(&self) -> Result<u64> {
        self.provider()
            .get_block_number()
            .await
            .map_err(|e| self.rpc_error("eth_blockNumber", e))
    }

    async fn logs(
        &self,
        signature: B256,
        topic1: Option<B256>,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<alloy::rpc::types::Log>> {
        let mut filter = alloy::rpc::types::Filter::new()
            .address(self.address())
            .event_signature(signature)
            .from_block(from);
        if let Some(to) = to {
            filter = filter.to_block(to);
        }
        if let Some(topic) = topic1 {
            filter = filter.topic1(topic);
        }
        self.provider()
            .get_logs(&filter)
            .await
            .map_err(|e| self.rpc_error("eth_getLogs", e))
    }

    /// The contract admin.
    pub async fn admin(&self) -> Result<Address> {
        self.view("admin", self.contract.admin()).await
    }

    /// The protocol fee cap in basis points.
    pub async fn max_fee_bps(&self) -> Result<u16> {
        self.view("MAX_FEE_BPS", self.contract.MAX_FEE_BPS()).await
    }

    /// The id the next granted job will get.
    pub async fn next_job_id(&self) -> Result<JobId> {
        let next = self.view("nextJobId", self.contract.nextJobId()).await?;
        Ok(JobId(u64::try_from(next).unwrap_or(u64::MAX)))
    }

    /// The run timeout fixed at deployment (seconds).
    pub async fn run_timeout(&self) -> Result<u64> {
        self.view("RUN_TIMEOUT", self.contract.RUN_TIMEOUT()).await
    }
}

/// `error` of a send that the node refused for funds, as [`Error::InsufficientFunds`] naming
/// the wallet, its balance and the value; any other error unchanged.
pub(crate) async fn fund_error(
    connection: &Connection,
    error: Error,
    value: Option<U256>,
) -> Error {
    let Error::Rpc {
        action, message, ..
    } = &error
    else {
        return error;
    };
    let action = *action;
    let Some(account) = connection.sender else {
        return error;
    };
    if !message.to_ascii_lowercase().contains("insufficient funds") {
        return error;
    }
    let Ok(holds) = connection.provider.get_balance(account).await else {
        return error;
    };
    Error::InsufficientFunds {
        action,
        account,
        value: value.map_or(0, |v| u128::try_from(v).unwrap_or(u128::MAX)),
        holds: u128::try_from(holds).unwrap_or(u128::MAX),
    }
}

/// How long a sent transaction may take to be mined before we give up waiting (it may still be
/// mined later; the error says so and names the hash).
const RECEIPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Polls for a receipt with a short, growing interval (20 ms up to 1 s): fast on a dev chain
/// with automine, gentle on a remote one, and bounded so a stuck transaction is reported with
/// its hash instead of hanging the caller.
pub(crate) async fn wait_for_receipt(
    provider: &DynProvider,
    rpc: &str,
    action: &'static str,
    tx: B256,
) -> Result<TransactionReceipt> {
    let started = std::time::Instant::now();
    let mut interval = std::time::Duration::from_millis(20);
    loop {
        match provider.get_transaction_receipt(tx).await {
            Ok(Some(receipt)) => return Ok(receipt),
            Ok(None) => {}
            Err(e) => {
                return Err(Error::Rpc {
                    action,
                    rpc: rpc.to_owned(),
                    message: format!("asking for the receipt of {tx}: {e}"),
                });
            }
        }
        if started.elapsed() > RECEIPT_TIMEOUT {
            return Err(Error::Rpc {
                action,
                rpc: rpc.to_owned(),
                message: format!(
                    "transaction {tx} was sent but not mined within {RECEIPT_TIMEOUT:?}; it may still be mined: check it before retrying"
                ),
            });
        }
        tokio::time::sleep(interval).await;
        interval = (interval * 2).min(std::time::Duration::from_secs(1));
    }
}

/// Maps a contract-call error: reverts become sentences, the rest transport errors.
fn contract_error(action: &'static str, rpc: &str, error: alloy::contract::Error) -> Error {
    if let alloy::contract::Error::TransportError(alloy::transports::RpcError::Transport(
        alloy::transports::TransportErrorKind::Custom(custom),
    )) = &error
        && let Some(used) = custom.downcast_ref::<crate::nonce::AccountUsedElsewhere>()
    {
        return Error::AccountUsedElsewhere(*used);
    }
    match error.as_revert_data() {
        Some(data) => Error::Reverted {
            action,
            revert: Revert::decode(&data),
        },
        None => Error::Rpc {
            action,
            rpc: rpc.to_owned(),
            message: error.to_string(),
        },
    }
}
