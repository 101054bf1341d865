// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {IDataPolicy} from "./IDataPolicy.sol";

/// @title LICEN DataPolicy
/// @notice Encrypted datasets with an enforceable usage policy, escrowed training jobs and pull-payment
///         royalty settlement (DESIGN.md §4).
/// @dev Job state machine: `Granted → Running → Completed`, `Granted → Expired` (not started by `expiresAt`),
///      `Granted | Running → Failed` (the orchestrator gives up), `Running → Reclaimed` (not settled by the run
///      deadline). Terminal states never change. Every refund path returns the whole escrow and un-counts the run.
///
///      Accounting invariant: `address(this).balance == Σ withdrawable(account) + Σ escrow of live jobs`. Value
///      leaves the contract in {withdraw} and, for the full refunds of `failJob`, `expire` and `reclaim`, by a
///      plain transfer to the researcher with only the 2300-gas stipend (too little to re-enter; state is final
///      before it) — a researcher that does not accept it is credited instead and withdraws later.
///
///      Storage is laid out for the per-transaction gas budgets of the hot paths:
///      - a job is two packed words: `_jobCore` = orchestrator | datasetIndex | state | deadline | epochs (all that
///        `startJob` reads and writes) and `_jobParty` = researcher | pricePerEpoch. The dataset's orchestrator is
///        copied into the job (it never changes), so the orchestrator's calls read no dataset slot;
///      - a dataset's orchestrator, paused flag and policy fill two slots (all that `requestAccess` reads); its owner
///        and root are kept apart;
///      - the treasury and the fee rate share one slot; the treasury's fees accrue in its `_balances` entry, which
///        {TREASURY_MARK} keeps non-zero across withdrawals (no fresh-slot write on the next fee);
///      - no running total of escrow is stored: it is Σ escrow of live jobs, which the indexer and the invariant
///        tests sum from events and job views.
///      Envelope and manifest roots, result keys, purposes, result hashes and attestation references live only in
///      events. Prices are therefore capped at 2^96 - 1 wei per epoch (`InvalidPolicy("pricePerEpoch")`).
contract DataPolicy is IDataPolicy {
    // ---------------------------------------------------------------- constants

    /// @notice Cap on the protocol fee: 10 %.
    uint16 public constant MAX_FEE_BPS = 1000;

    /// @notice Seconds a started job has to be settled before its researcher may reclaim the escrow.
    uint64 public immutable RUN_TIMEOUT;

    uint256 private constant BPS = 10_000;

    // `_jobCore` word: orchestrator [0, 160) | datasetIndex [160, 192) | state [192, 200) | deadline [200, 240)
    // | epochs [240, 256).
    uint256 private constant INDEX_SHIFT = 160;
    uint256 private constant STATE_SHIFT = 192;
    uint256 private constant DEADLINE_SHIFT = 200;
    uint256 private constant EPOCHS_SHIFT = 240;
    /// Clears the state and deadline fields of a core word.
    uint256 private constant KEEP_ON_TRANSITION = ~(uint256(type(uint48).max) << STATE_SHIFT);

    // `_jobParty` word: researcher [0, 160) | pricePerEpoch [160, 256).
    uint256 private constant PRICE_SHIFT = 160;

    /// Marks the treasury's `_balances` entry, so that {withdraw} recognises the treasury from the slot it reads
    /// anyway. Amounts never reach 2^255 wei.
    uint256 private constant TREASURY_MARK = 1 << 255;

    // ---------------------------------------------------------------- storage

    /// The orchestrator, the paused flag and the policy: exactly the two slots `requestAccess` reads.
    struct Dataset {
        // slot 0
        address orchestrator;
        bool paused;
        uint16 maxEpochsPerRun;
        uint32 maxRunsPerRequester;
        uint32 sessionTtl;
        // slot 1
        uint96 pricePerEpoch;
        uint32 allowedPurposes;
        uint64 expiry;
    }

    /// The global slot: who receives the protocol fee and how much (what `confirmTrainingComplete` reads for the
    /// fee) and the job counter (what `requestAccess` reads and writes). Sharing it keeps the counter's slot warm
    /// from construction, so the first request pays no fresh-slot write for it.
    struct Ledger {
        address treasury;
        uint16 feeBps;
        /// Number of jobs ever granted; job ids are 1..=jobCount.
        uint40 jobCount;
    }

    /// @inheritdoc IDataPolicy
    address public admin;
    uint32 private _datasetCount;

    Ledger private _ledger;

    mapping(address orchestrator => bytes32) private _orchestratorKey;
    mapping(address orchestrator => bool) private _orchestratorActive;

    /// Dataset root → 1-based index (0 = not published).
    mapping(bytes32 root => uint32) private _datasetIndex;
    mapping(uint256 index => Dataset) private _datasets;
    /// Read by `confirmTrainingComplete` (royalty) and the owner-only functions.
    mapping(uint256 index => address) private _owners;
    /// Index → root, for `jobDatasetRoot`.
    mapping(uint256 index => bytes32) private _roots;

    mapping(uint256 jobId => uint256) private _jobCore;
    mapping(uint256 jobId => uint256) private _jobParty;

    mapping(uint256 datasetIndex => mapping(address researcher => uint32)) private _runsUsed;

    /// Pull-payment balances. The treasury's entry carries {TREASURY_MARK} on top of its fees.
    mapping(address account => uint256) private _balances;

    // ---------------------------------------------------------------- construction

    /// @param admin_ Registers orchestrators and sets the protocol fee.
    /// @param treasury_ Receives the protocol fee.
    /// @param feeBps Protocol fee in basis points of each royalty (at most {MAX_FEE_BPS}).
    /// @param runTimeout Seconds from `startJob` until the researcher may reclaim: 1 ..= 2^32 - 1, otherwise the
    ///        constructor reverts with `InvalidPolicy("runTimeout")`.
    constructor(address admin_, address treasury_, uint16 feeBps, uint64 runTimeout) {
        if (admin_ == address(0) || treasury_ == address(0)) revert ZeroAddress();
        if (feeBps > MAX_FEE_BPS) revert FeeTooHigh(feeBps, MAX_FEE_BPS);
        if (runTimeout == 0 || runTimeout > type(uint32).max) revert InvalidPolicy("runTimeout");
        RUN_TIMEOUT = runTimeout;
        admin = admin_;
        (_ledger.treasury, _ledger.feeBps) = (treasury_, feeBps);
        _balances[treasury_] = TREASURY_MARK;
        emit AdminTransferred(address(0), admin_);
        emit ProtocolFeeSet(feeBps, treasury_);
    }

    // ---------------------------------------------------------------- modifiers

    modifier onlyAdmin() {
        if (msg.sender != admin) revert NotAdmin(msg.sender);
        _;
    }

    // ---------------------------------------------------------------- admin

    /// @inheritdoc IDataPolicy
    /// @dev Also re-activates a deactivated orchestrator (with a possibly new key).
    function registerOrchestrator(address orchestrator, bytes32 publicKey) external onlyAdmin {
        if (orchestrator == address(0)) revert ZeroAddress();
        if (publicKey == bytes32(0)) revert InvalidPublicKey();
        if (_orchestratorActive[orchestrator]) revert OrchestratorAlreadyRegistered(orchestrator);
        _orchestratorKey[orchestrator] = publicKey;
        _orchestratorActive[orchestrator] = true;
        emit OrchestratorRegistered(orchestrator, publicKey);
    }

    /// @inheritdoc IDataPolicy
    function rotateOrchestratorKey(address orchestrator, bytes32 publicKey) external onlyAdmin {
        if (publicKey == bytes32(0)) revert InvalidPublicKey();
        if (!_orchestratorActive[orchestrator]) revert OrchestratorNotActive(orchestrator);
        _orchestratorKey[orchestrator] = publicKey;
        emit OrchestratorKeyRotated(orchestrator, publicKey);
    }

    /// @inheritdoc IDataPolicy
    /// @dev Blocks new publications and requests on its datasets. Jobs already granted stay with it: it may still
    ///      start, confirm or fail them, and their researchers keep the expire/reclaim refund paths.
    function deactivateOrchestrator(address orchestrator) external onlyAdmin {
        if (!_orchestratorActive[orchestrator]) revert OrchestratorNotActive(orchestrator);
        _orchestratorActive[orchestrator] = false;
        emit OrchestratorDeactivated(orchestrator);
    }

    /// @inheritdoc IDataPolicy
    /// @dev Fees accrued for a previous treasury stay that address's withdrawable balance.
    function setProtocolFee(uint16 feeBps, address treasury_) external onlyAdmin {
        if (feeBps > MAX_FEE_BPS) revert FeeTooHigh(feeBps, MAX_FEE_BPS);
        if (treasury_ == address(0)) revert ZeroAddress();
        Ledger storage l = _ledger;
        address previous = l.treasury;
        if (treasury_ != previous) {
            _balances[previous] &= ~TREASURY_MARK;
            _balances[treasury_] |= TREASURY_MARK;
        }
        (l.treasury, l.feeBps) = (treasury_, feeBps);
        emit ProtocolFeeSet(feeBps, treasury_);
    }

    /// @inheritdoc IDataPolicy
    function transferAdmin(address newAdmin) external onlyAdmin {
        if (newAdmin == address(0)) revert ZeroAddress();
        admin = newAdmin;
        emit AdminTransferred(msg.sender, newAdmin);
    }

    // ---------------------------------------------------------------- owner

    /// @inheritdoc IDataPolicy
    /// @dev The caller becomes the dataset's owner. Datasets get sequential 1-based indices (`Job.datasetIndex`).
    function publish(
        bytes32 datasetRoot,
        address orchestrator,
        bytes32 envelopeRoot,
        bytes32 manifestRoot,
        Policy calldata policy
    ) external {
        if (datasetRoot == bytes32(0) || envelopeRoot == bytes32(0) || manifestRoot == bytes32(0)) {
            revert InvalidRoot();
        }
        if (_datasetIndex[datasetRoot] != 0) revert DatasetAlreadyPublished(datasetRoot);
        if (!_orchestratorActive[orchestrator]) revert OrchestratorNotActive(orchestrator);
        _validatePolicy(policy);

        uint32 index = ++_datasetCount;
        _datasetIndex[datasetRoot] = index;
        Dataset storage d = _datasets[index];
        d.orchestrator = orchestrator;
        _writePolicy(d, policy);
        _owners[index] = msg.sender;
        _roots[index] = datasetRoot;

        emit DatasetPublished(
            datasetRoot, msg.sender, orchestrator, envelopeRoot, manifestRoot, policy, keccak256(abi.encode(policy))
        );
    }

    /// @inheritdoc IDataPolicy
    /// @dev Applies to future requests only: existing jobs keep their price and epochs snapshot. Lowering
    ///      `maxRunsPerRequester` below a researcher's current count only blocks that researcher's new requests.
    function updatePolicy(bytes32 datasetRoot, Policy calldata policy) external {
        Dataset storage d = _ownedDataset(datasetRoot);
        _validatePolicy(policy);
        _writePolicy(d, policy);
        emit PolicyUpdated(datasetRoot, policy, keccak256(abi.encode(policy)));
    }

    /// @inheritdoc IDataPolicy
    /// @dev Blocks new requests; live jobs are unaffected. Reverts with `DatasetIsPaused` if already paused.
    function pause(bytes32 datasetRoot) external {
        Dataset storage d = _ownedDataset(datasetRoot);
        if (d.paused) revert DatasetIsPaused(datasetRoot);
        d.paused = true;
        emit DatasetPaused(datasetRoot);
    }

    /// @inheritdoc IDataPolicy
    function resume(bytes32 datasetRoot) external {
        Dataset storage d = _ownedDataset(datasetRoot);
        if (!d.paused) revert DatasetNotPaused(datasetRoot);
        d.paused = false;
        emit DatasetResumed(datasetRoot);
    }

    /// @inheritdoc IDataPolicy
    /// @dev The envelope root lives only in events.
    function rotateEnvelope(bytes32 datasetRoot, bytes32 envelopeRoot) external {
        _ownedDataset(datasetRoot);
        if (envelopeRoot == bytes32(0)) revert InvalidRoot();
        emit EnvelopeRotated(datasetRoot, envelopeRoot);
    }

    // ---------------------------------------------------------------- researcher

    /// @inheritdoc IDataPolicy
    /// @dev Checks, in order: dataset exists, not paused, not expired, orchestrator active, epochs in
    ///      `1..=maxEpochsPerRun`, purpose allowed, `resultKey` non-zero (`InvalidPublicKey`), `msg.value` exactly
    ///      `pricePerEpoch × epochs`, run cap. The grant is startable until `expiresAt = now + sessionTtl`.
    ///      Job ids are sequential from 1.
    function requestAccess(bytes32 datasetRoot, uint16 epochs, uint8 purpose, bytes32 resultKey)
        external
        payable
        returns (uint256 jobId)
    {
        (uint32 index, address orchestrator, uint32 ttl, uint128 price) =
            _admit(datasetRoot, epochs, purpose, resultKey);
        uint64 expiresAt = uint64(block.timestamp) + ttl;
        {
            Ledger storage l = _ledger;
            jobId = uint256(l.jobCount) + 1;
            // Job ids stay below 2^40: one per request transaction.
            // forge-lint: disable-next-line(unsafe-typecast)
            l.jobCount = uint40(jobId);
        }
        _jobCore[jobId] = _packCore(orchestrator, index, JobState.Granted, expiresAt, epochs);
        _jobParty[jobId] = uint256(uint160(msg.sender)) | (uint256(price) << PRICE_SHIFT);

        emit AccessGranted(jobId, datasetRoot, msg.sender, epochs, purpose, resultKey, price, msg.value, expiresAt);
    }

    /// @inheritdoc IDataPolicy
    /// @dev Only the job's researcher, once the run deadline has passed without settlement: full refund, the run
    ///      does not count.
    function reclaim(uint256 jobId) external {
        uint256 core = _jobCore[jobId];
        JobState state = _state(core);
        if (state == JobState.None) revert JobNotFound(jobId);
        uint256 party = _jobParty[jobId];
        if (_researcher(party) != msg.sender) revert NotJobResearcher(jobId, msg.sender);
        if (state != JobState.Running) revert WrongJobState(jobId, state, JobState.Running);
        uint64 runDeadline = _deadline(core);
        // forge-lint: disable-next-line(block-timestamp) deadlines are minutes to days; seconds of skew do not matter
        if (block.timestamp < runDeadline) revert RunDeadlineNotReached(jobId, runDeadline);
        (address researcher, uint256 refund, bool paid) = _refund(jobId, core, party, JobState.Reclaimed);
        emit JobReclaimed(jobId, refund);
        if (paid) emit Withdrawn(researcher, refund);
    }

    // ---------------------------------------------------------------- orchestrator

    /// @inheritdoc IDataPolicy
    /// @dev Only the dataset's orchestrator, strictly before the grant's `expiresAt`. The run deadline is
    ///      now + RUN_TIMEOUT.
    function startJob(uint256 jobId) external {
        uint256 core = _jobCore[jobId];
        JobState state = _orchestratedState(jobId, core);
        if (state != JobState.Granted) revert WrongJobState(jobId, state, JobState.Granted);
        uint64 expiresAt = _deadline(core);
        // forge-lint: disable-next-line(block-timestamp) deadlines are minutes to days; seconds of skew do not matter
        if (block.timestamp >= expiresAt) revert GrantExpired(jobId, expiresAt);
        uint64 runDeadline = uint64(block.timestamp) + RUN_TIMEOUT;
        _jobCore[jobId] = _transition(core, JobState.Running, runDeadline);
        emit JobStarted(jobId, runDeadline);
    }

    /// @inheritdoc IDataPolicy
    /// @dev Only the dataset's orchestrator, while `Running` (also past the run deadline, as long as the researcher
    ///      has not reclaimed). `actualEpochs` may be anything from 0 to the requested epochs: the owner earns
    ///      `royalty = actualEpochs × pricePerEpoch` less the protocol fee `royalty × feeBps / 10000`, which goes to
    ///      the treasury, and the researcher gets `escrow - royalty` back. With `actualEpochs == 0` the whole escrow
    ///      is refunded but the run still counts towards `maxRunsPerRequester` (only `failJob`, `expire` and
    ///      `reclaim` un-count a run). Zero amounts are not credited.
    function confirmTrainingComplete(uint256 jobId, uint16 actualEpochs, bytes32 resultHash, bytes32 attestationRef)
        external
    {
        uint256 core = _jobCore[jobId];
        JobState state = _orchestratedState(jobId, core);
        if (state != JobState.Running) revert WrongJobState(jobId, state, JobState.Running);
        uint16 epochs = _epochs(core);
        if (actualEpochs > epochs) revert ActualEpochsExceedRequested(actualEpochs, epochs);
        _jobCore[jobId] = _transition(core, JobState.Completed, _deadline(core));

        uint256 party = _jobParty[jobId];
        uint256 price = _price(party);
        uint256 escrow = price * epochs;
        uint256 royalty = price * actualEpochs;

        Ledger memory l = _ledger;
        uint256 fee = royalty * l.feeBps / BPS;
        if (fee != 0) _balances[l.treasury] += fee;
        if (royalty != fee) _balances[_owners[_index(core)]] += royalty - fee;
        if (escrow != royalty) _balances[_researcher(party)] += escrow - royalty;

        emit JobCompleted(jobId, actualEpochs, resultHash, attestationRef, royalty, fee, escrow - royalty);
    }

    /// @inheritdoc IDataPolicy
    /// @dev Only the dataset's orchestrator, from `Granted` or `Running`: full refund, the run does not count.
    ///      A job in another state reverts with `WrongJobState(jobId, state, Running)`.
    function failJob(uint256 jobId, string calldata reason) external {
        uint256 core = _jobCore[jobId];
        JobState state = _orchestratedState(jobId, core);
        if (state != JobState.Running && state != JobState.Granted) {
            revert WrongJobState(jobId, state, JobState.Running);
        }
        (address researcher, uint256 refund, bool paid) = _refund(jobId, core, _jobParty[jobId], JobState.Failed);
        emit JobFailed(jobId, reason, refund);
        if (paid) emit Withdrawn(researcher, refund);
    }

    // ---------------------------------------------------------------- anyone

    /// @inheritdoc IDataPolicy
    /// @dev Anyone, once a grant has not been started by its `expiresAt`: full refund, the run does not count.
    function expire(uint256 jobId) external {
        uint256 core = _jobCore[jobId];
        JobState state = _state(core);
        if (state == JobState.None) revert JobNotFound(jobId);
        if (state != JobState.Granted) revert WrongJobState(jobId, state, JobState.Granted);
        uint64 expiresAt = _deadline(core);
        // forge-lint: disable-next-line(block-timestamp) deadlines are minutes to days; seconds of skew do not matter
        if (block.timestamp < expiresAt) revert GrantNotExpired(jobId, expiresAt);
        (address researcher, uint256 refund, bool paid) = _refund(jobId, core, _jobParty[jobId], JobState.Expired);
        emit JobExpired(jobId, refund);
        if (paid) emit Withdrawn(researcher, refund);
    }

    /// @inheritdoc IDataPolicy
    /// @dev Pays out the caller's whole balance. The balance is cleared before the transfer, so a re-entrant
    ///      `withdraw` finds nothing (`NothingToWithdraw`) and every other function sees final state; no lock is
    ///      needed (checks-effects-interactions).
    function withdraw() external {
        uint256 entry = _balances[msg.sender];
        uint256 amount = entry & ~TREASURY_MARK;
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        // The treasury keeps its mark, so its next fee is not a fresh-slot write.
        _balances[msg.sender] = entry & TREASURY_MARK;
        emit Withdrawn(msg.sender, amount);

        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed(msg.sender, amount);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IDataPolicy
    function protocolFeeBps() external view returns (uint16) {
        return _ledger.feeBps;
    }

    /// @inheritdoc IDataPolicy
    function treasury() external view returns (address) {
        return _ledger.treasury;
    }

    /// @inheritdoc IDataPolicy
    /// @dev A deactivated orchestrator keeps reporting its last key with `active == false`.
    function orchestratorKey(address orchestrator) external view returns (bytes32 publicKey, bool active) {
        return (_orchestratorKey[orchestrator], _orchestratorActive[orchestrator]);
    }

    /// @inheritdoc IDataPolicy
    /// @dev Reverts with `DatasetNotFound` for an unknown root.
    function datasetInfo(bytes32 datasetRoot)
        external
        view
        returns (address owner, address orchestrator, bool paused, Policy memory policy)
    {
        uint32 index = _datasetIndex[datasetRoot];
        if (index == 0) revert DatasetNotFound(datasetRoot);
        Dataset storage d = _datasets[index];
        owner = _owners[index];
        orchestrator = d.orchestrator;
        paused = d.paused;
        policy = Policy({
            pricePerEpoch: d.pricePerEpoch,
            maxEpochsPerRun: d.maxEpochsPerRun,
            maxRunsPerRequester: d.maxRunsPerRequester,
            sessionTtl: d.sessionTtl,
            allowedPurposes: d.allowedPurposes,
            expiry: d.expiry
        });
    }

    /// @inheritdoc IDataPolicy
    function policyHash(Policy calldata policy) external pure returns (bytes32) {
        return keccak256(abi.encode(policy));
    }

    /// @inheritdoc IDataPolicy
    /// @dev An unknown job id returns the zero record (`state == None`).
    function job(uint256 jobId) external view returns (Job memory) {
        uint256 core = _jobCore[jobId];
        uint256 party = _jobParty[jobId];
        return Job({
            researcher: _researcher(party),
            datasetIndex: _index(core),
            state: _state(core),
            deadline: uint40(_deadline(core)),
            epochs: _epochs(core),
            pricePerEpoch: _price(party)
        });
    }

    /// @inheritdoc IDataPolicy
    /// @dev Reverts with `JobNotFound` for an unknown job id.
    function jobDatasetRoot(uint256 jobId) external view returns (bytes32) {
        uint256 core = _jobCore[jobId];
        if (core == 0) revert JobNotFound(jobId);
        return _roots[_index(core)];
    }

    /// @inheritdoc IDataPolicy
    /// @dev The id the next successful `requestAccess` returns.
    function nextJobId() external view returns (uint256) {
        return uint256(_ledger.jobCount) + 1;
    }

    /// @inheritdoc IDataPolicy
    /// @dev Runs counted against the cap (granted, running or completed jobs); 0 for an unknown root.
    function runsUsed(bytes32 datasetRoot, address researcher) external view returns (uint32) {
        return _runsUsed[_datasetIndex[datasetRoot]][researcher];
    }

    /// @inheritdoc IDataPolicy
    function withdrawable(address account) external view returns (uint256) {
        return _balances[account] & ~TREASURY_MARK;
    }

    // ---------------------------------------------------------------- internals

    /// The dataset at `datasetRoot`, which the caller must own.
    function _ownedDataset(bytes32 datasetRoot) private view returns (Dataset storage) {
        uint32 index = _datasetIndex[datasetRoot];
        if (index == 0) revert DatasetNotFound(datasetRoot);
        if (_owners[index] != msg.sender) revert NotDatasetOwner(datasetRoot, msg.sender);
        return _datasets[index];
    }

    /// Every check of `requestAccess` (see there), then counts the run. Returns what the job records.
    function _admit(bytes32 datasetRoot, uint16 epochs, uint8 purpose, bytes32 resultKey)
        private
        returns (uint32 index, address orchestrator, uint32 ttl, uint128 price)
    {
        index = _datasetIndex[datasetRoot];
        if (index == 0) revert DatasetNotFound(datasetRoot);
        Dataset memory d = _datasets[index];
        if (d.paused) revert DatasetIsPaused(datasetRoot);
        // forge-lint: disable-next-line(block-timestamp) deadlines are minutes to days; seconds of skew do not matter
        if (d.expiry != 0 && block.timestamp >= d.expiry) revert DatasetExpired(datasetRoot, d.expiry);
        orchestrator = d.orchestrator;
        if (!_orchestratorActive[orchestrator]) revert OrchestratorNotActive(orchestrator);
        if (epochs == 0 || epochs > d.maxEpochsPerRun) revert EpochsOutOfRange(epochs, d.maxEpochsPerRun);
        if (purpose >= 32 || (d.allowedPurposes >> purpose) & 1 == 0) {
            revert PurposeNotAllowed(purpose, d.allowedPurposes);
        }
        if (resultKey == bytes32(0)) revert InvalidPublicKey();
        price = d.pricePerEpoch;
        if (msg.value != price * epochs) revert WrongEscrow(msg.value, price * epochs);
        uint32 maxRuns = d.maxRunsPerRequester;
        ttl = d.sessionTtl;
        mapping(address => uint32) storage runs = _runsUsed[index];
        uint32 used = runs[msg.sender];
        if (used >= maxRuns) revert RunLimitReached(datasetRoot, msg.sender, maxRuns);
        runs[msg.sender] = used + 1;
    }

    /// Checks that the job exists and that the caller is its orchestrator; returns the job's state.
    function _orchestratedState(uint256 jobId, uint256 core) private view returns (JobState state) {
        state = _state(core);
        if (state == JobState.None) revert JobNotFound(jobId);
        if (_orchestrator(core) != msg.sender) revert NotJobOrchestrator(jobId, msg.sender);
    }

    /// Moves a live job to a refund state: the run is un-counted and the whole escrow goes back to the researcher,
    /// paid at once (`paid`) when a plain transfer with the 2300-gas stipend succeeds — an externally owned account
    /// or a trivial `receive` — and credited to its balance otherwise. The stipend cannot re-enter (no SSTORE below
    /// 2300 gas) nor burn the caller's gas, and every state change precedes the transfer.
    function _refund(uint256 jobId, uint256 core, uint256 party, JobState to)
        private
        returns (address researcher, uint256 refund, bool paid)
    {
        _jobCore[jobId] = _transition(core, to, _deadline(core));
        researcher = _researcher(party);
        _runsUsed[_index(core)][researcher] -= 1;
        refund = uint256(_price(party)) * _epochs(core);
        if (refund != 0) {
            paid = payable(researcher).send(refund);
            if (!paid) _balances[researcher] += refund;
        }
    }

    function _validatePolicy(Policy calldata p) private view {
        if (p.pricePerEpoch > type(uint96).max) revert InvalidPolicy("pricePerEpoch");
        if (p.maxEpochsPerRun == 0 || p.maxEpochsPerRun > type(uint16).max) revert InvalidPolicy("maxEpochsPerRun");
        if (p.maxRunsPerRequester == 0) revert InvalidPolicy("maxRunsPerRequester");
        if (p.sessionTtl == 0) revert InvalidPolicy("sessionTtl");
        if (p.allowedPurposes == 0) revert InvalidPolicy("allowedPurposes");
        // forge-lint: disable-next-line(block-timestamp) deadlines are minutes to days; seconds of skew do not matter
        if (p.expiry != 0 && p.expiry <= block.timestamp) revert InvalidPolicy("expiry");
    }

    /// Writes a validated policy (the narrowing casts are checked by {_validatePolicy}).
    function _writePolicy(Dataset storage d, Policy calldata p) private {
        d.maxEpochsPerRun = uint16(p.maxEpochsPerRun);
        d.maxRunsPerRequester = p.maxRunsPerRequester;
        d.sessionTtl = p.sessionTtl;
        d.pricePerEpoch = uint96(p.pricePerEpoch);
        d.allowedPurposes = p.allowedPurposes;
        d.expiry = p.expiry;
    }

    function _packCore(address orchestrator, uint32 index, JobState state, uint64 deadline, uint16 epochs)
        private
        pure
        returns (uint256)
    {
        return uint256(uint160(orchestrator)) | (uint256(index) << INDEX_SHIFT) | (uint256(state) << STATE_SHIFT)
            | (uint256(deadline) << DEADLINE_SHIFT) | (uint256(epochs) << EPOCHS_SHIFT);
    }

    /// Sets a core word's state and deadline (deadlines stay below 2^40: timestamps plus at most 2^32 - 1 seconds).
    function _transition(uint256 core, JobState to, uint64 deadline) private pure returns (uint256) {
        return (core & KEEP_ON_TRANSITION) | (uint256(to) << STATE_SHIFT) | (uint256(deadline) << DEADLINE_SHIFT);
    }

    // Field extractors: each narrowing cast cuts one field out of a packed word, which is the point.

    function _orchestrator(uint256 core) private pure returns (address) {
        // forge-lint: disable-next-line(unsafe-typecast)
        return address(uint160(core));
    }

    function _index(uint256 core) private pure returns (uint32) {
        // forge-lint: disable-next-line(unsafe-typecast)
        return uint32(core >> INDEX_SHIFT);
    }

    function _state(uint256 core) private pure returns (JobState) {
        // forge-lint: disable-next-line(unsafe-typecast)
        return JobState(uint8(core >> STATE_SHIFT));
    }

    function _deadline(uint256 core) private pure returns (uint64) {
        // forge-lint: disable-next-line(unsafe-typecast)
        return uint40(core >> DEADLINE_SHIFT);
    }

    function _epochs(uint256 core) private pure returns (uint16) {
        // forge-lint: disable-next-line(unsafe-typecast)
        return uint16(core >> EPOCHS_SHIFT);
    }

    function _researcher(uint256 party) private pure returns (address) {
        // forge-lint: disable-next-line(unsafe-typecast)
        return address(uint160(party));
    }

    function _price(uint256 party) private pure returns (uint128) {
        // forge-lint: disable-next-line(unsafe-typecast) the top 96 bits
        return uint128(party >> PRICE_SHIFT);
    }
}
