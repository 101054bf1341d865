// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

/// @title LICEN DataPolicy interface
/// @notice Encrypted datasets with an enforceable usage policy, escrowed training jobs and
///         pull-payment royalty settlement. See DESIGN.md §4 for the state machine and invariants.
/// @dev This file is the ABI contract between the Solidity implementation, the Rust bindings
///      (`crates/chain`, generated from the forge artifact of `DataPolicy`) and the indexer.
interface IDataPolicy {
    // ---------------------------------------------------------------- types

    /// The owner's control surface. `policyHash = keccak256(abi.encode(policy))`.
    struct Policy {
        /// Price of one training epoch, in wei of the chain's native token (0 = free).
        uint128 pricePerEpoch;
        /// Most epochs one run may request (1..=65535).
        uint32 maxEpochsPerRun;
        /// Lifetime runs per requester wallet on this dataset (>= 1); fully refunded runs do not count.
        uint32 maxRunsPerRequester;
        /// Seconds a grant stays startable after `requestAccess` (>= 1).
        uint32 sessionTtl;
        /// Bitmask over the purpose registry in `crates/types` (bit i = purpose i; non-zero).
        uint32 allowedPurposes;
        /// Unix seconds after which no new request is accepted; 0 = never expires.
        uint64 expiry;
    }

    enum JobState {
        None,
        Granted,
        Running,
        Completed,
        Expired,
        Failed,
        Reclaimed
    }

    /// A job as stored (what the contract needs to enforce the state machine). The result key,
    /// purpose, result hash and attestation reference live only in events.
    struct Job {
        address researcher;
        uint32 datasetIndex;
        JobState state;
        /// `Granted`: the grant's `expiresAt`; `Running`: the run deadline; terminal: last deadline.
        uint40 deadline;
        uint16 epochs;
        uint128 pricePerEpoch;
    }

    // ---------------------------------------------------------------- events

    event OrchestratorRegistered(address indexed orchestrator, bytes32 publicKey);
    event OrchestratorKeyRotated(address indexed orchestrator, bytes32 publicKey);
    event OrchestratorDeactivated(address indexed orchestrator);

    event DatasetPublished(
        bytes32 indexed datasetRoot,
        address indexed owner,
        address indexed orchestrator,
        bytes32 envelopeRoot,
        bytes32 manifestRoot,
        Policy policy,
        bytes32 policyHash
    );
    event PolicyUpdated(bytes32 indexed datasetRoot, Policy policy, bytes32 policyHash);
    event DatasetPaused(bytes32 indexed datasetRoot);
    event DatasetResumed(bytes32 indexed datasetRoot);
    event EnvelopeRotated(bytes32 indexed datasetRoot, bytes32 envelopeRoot);

    event AccessGranted(
        uint256 indexed jobId,
        bytes32 indexed datasetRoot,
        address indexed researcher,
        uint16 epochs,
        uint8 purpose,
        bytes32 resultKey,
        uint128 pricePerEpoch,
        uint256 escrow,
        uint64 expiresAt
    );
    event JobStarted(uint256 indexed jobId, uint64 runDeadline);
    event JobCompleted(
        uint256 indexed jobId,
        uint16 actualEpochs,
        bytes32 resultHash,
        bytes32 attestationRef,
        uint256 royalty,
        uint256 fee,
        uint256 refund
    );
    event JobFailed(uint256 indexed jobId, string reason, uint256 refund);
    event JobExpired(uint256 indexed jobId, uint256 refund);
    event JobReclaimed(uint256 indexed jobId, uint256 refund);

    event Withdrawn(address indexed account, uint256 amount);
    event ProtocolFeeSet(uint16 feeBps, address treasury);
    event AdminTransferred(address indexed previousAdmin, address indexed newAdmin);

    // ---------------------------------------------------------------- errors

    error NotAdmin(address caller);
    error NotDatasetOwner(bytes32 datasetRoot, address caller);
    error NotJobOrchestrator(uint256 jobId, address caller);
    error NotJobResearcher(uint256 jobId, address caller);
    error ZeroAddress();
    error InvalidPublicKey();
    error OrchestratorAlreadyRegistered(address orchestrator);
    error OrchestratorNotActive(address orchestrator);
    error DatasetAlreadyPublished(bytes32 datasetRoot);
    error DatasetNotFound(bytes32 datasetRoot);
    error InvalidRoot();
    error InvalidPolicy(string field);
    error DatasetIsPaused(bytes32 datasetRoot);
    error DatasetNotPaused(bytes32 datasetRoot);
    error DatasetExpired(bytes32 datasetRoot, uint64 expiry);
    error EpochsOutOfRange(uint256 epochs, uint32 maxEpochsPerRun);
    error RunLimitReached(bytes32 datasetRoot, address researcher, uint32 maxRunsPerRequester);
    error PurposeNotAllowed(uint8 purpose, uint32 allowedPurposes);
    error WrongEscrow(uint256 sent, uint256 required);
    error JobNotFound(uint256 jobId);
    error WrongJobState(uint256 jobId, JobState actual, JobState expected);
    error GrantExpired(uint256 jobId, uint64 expiresAt);
    error GrantNotExpired(uint256 jobId, uint64 expiresAt);
    error RunDeadlineNotReached(uint256 jobId, uint64 runDeadline);
    error ActualEpochsExceedRequested(uint256 actualEpochs, uint16 requestedEpochs);
    error FeeTooHigh(uint16 feeBps, uint16 maxFeeBps);
    error NothingToWithdraw(address account);
    error TransferFailed(address account, uint256 amount);

    // ---------------------------------------------------------------- admin

    function registerOrchestrator(address orchestrator, bytes32 publicKey) external;
    function rotateOrchestratorKey(address orchestrator, bytes32 publicKey) external;
    function deactivateOrchestrator(address orchestrator) external;
    function setProtocolFee(uint16 feeBps, address treasury) external;
    function transferAdmin(address newAdmin) external;

    // ---------------------------------------------------------------- owner

    function publish(
        bytes32 datasetRoot,
        address orchestrator,
        bytes32 envelopeRoot,
        bytes32 manifestRoot,
        Policy calldata policy
    ) external;
    function updatePolicy(bytes32 datasetRoot, Policy calldata policy) external;
    function pause(bytes32 datasetRoot) external;
    function resume(bytes32 datasetRoot) external;
    function rotateEnvelope(bytes32 datasetRoot, bytes32 envelopeRoot) external;

    // ---------------------------------------------------------------- researcher

    function requestAccess(bytes32 datasetRoot, uint16 epochs, uint8 purpose, bytes32 resultKey)
        external
        payable
        returns (uint256 jobId);
    function reclaim(uint256 jobId) external;

    // ---------------------------------------------------------------- orchestrator

    function startJob(uint256 jobId) external;
    function confirmTrainingComplete(uint256 jobId, uint16 actualEpochs, bytes32 resultHash, bytes32 attestationRef)
        external;
    function failJob(uint256 jobId, string calldata reason) external;

    // ---------------------------------------------------------------- anyone

    function expire(uint256 jobId) external;
    function withdraw() external;

    // ---------------------------------------------------------------- views

    function MAX_FEE_BPS() external view returns (uint16);
    function RUN_TIMEOUT() external view returns (uint64);
    function admin() external view returns (address);
    function protocolFeeBps() external view returns (uint16);
    function treasury() external view returns (address);
    function orchestratorKey(address orchestrator) external view returns (bytes32 publicKey, bool active);
    function datasetInfo(bytes32 datasetRoot)
        external
        view
        returns (address owner, address orchestrator, bool paused, Policy memory policy);
    function policyHash(Policy calldata policy) external pure returns (bytes32);
    function job(uint256 jobId) external view returns (Job memory);
    function jobDatasetRoot(uint256 jobId) external view returns (bytes32);
    function nextJobId() external view returns (uint256);
    function runsUsed(bytes32 datasetRoot, address researcher) external view returns (uint32);
    function withdrawable(address account) external view returns (uint256);
}
