// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {DataPolicy} from "../../src/DataPolicy.sol";
import {IDataPolicy} from "../../src/IDataPolicy.sol";
import {vm} from "./Cheats.sol";
import {TestBase} from "./TestBase.sol";

/// @notice A deployed DataPolicy with a registered orchestrator and helpers for the common steps.
abstract contract Fixture is TestBase {
    uint16 internal constant FEE_BPS = 250; // 2.5 %
    uint64 internal constant RUN_TIMEOUT = 2 days;
    uint64 internal constant START_TIME = 1_750_000_000;

    bytes32 internal constant ROOT = keccak256("licen.test.datasetRoot");
    bytes32 internal constant ENVELOPE = keccak256("licen.test.envelopeRoot");
    bytes32 internal constant MANIFEST = keccak256("licen.test.manifestRoot");
    bytes32 internal constant ORCH_KEY = keccak256("licen.test.orchestratorKey");
    bytes32 internal constant RESULT_KEY = keccak256("licen.test.resultKey");
    bytes32 internal constant RESULT_HASH = keccak256("licen.test.resultHash");
    bytes32 internal constant ATTESTATION = keccak256("licen.test.attestationRef");

    uint128 internal constant PRICE = 0.01 ether;
    uint8 internal constant PURPOSE = 1; // bit 1 of allowedPurposes

    DataPolicy internal dp;
    address internal admin;
    address internal treasury;
    address internal orchestrator;
    address internal owner;
    address internal researcher;
    address internal stranger;

    function setUp() public virtual {
        vm.warp(START_TIME);
        admin = makeAddr("admin");
        treasury = makeAddr("treasury");
        orchestrator = makeAddr("orchestrator");
        owner = makeAddr("owner");
        researcher = makeAddr("researcher");
        stranger = makeAddr("stranger");
        // Funded accounts are not "empty" (EIP-161), as real wallets are: transfers to them cost what they
        // cost on a chain.
        vm.deal(admin, 1 ether);
        vm.deal(treasury, 1 ether);
        vm.deal(orchestrator, 1 ether);
        vm.deal(owner, 1 ether);
        vm.deal(researcher, 1_000 ether);
        vm.deal(stranger, 1_000 ether);

        dp = new DataPolicy(admin, treasury, FEE_BPS, RUN_TIMEOUT);
        vm.label(address(dp), "DataPolicy");
        vm.prank(admin, admin);
        dp.registerOrchestrator(orchestrator, ORCH_KEY);
    }

    function defaultPolicy() internal pure returns (IDataPolicy.Policy memory) {
        return IDataPolicy.Policy({
            pricePerEpoch: PRICE,
            maxEpochsPerRun: 10,
            maxRunsPerRequester: 3,
            sessionTtl: 1 hours,
            allowedPurposes: 0x0b, // purposes 0, 1, 3
            expiry: 0
        });
    }

    function publishDefault() internal {
        vm.prank(owner, owner);
        dp.publish(ROOT, orchestrator, ENVELOPE, MANIFEST, defaultPolicy());
    }

    function request(address who, uint16 epochs) internal returns (uint256 jobId) {
        vm.prank(who, who);
        jobId = dp.requestAccess{value: uint256(PRICE) * epochs}(ROOT, epochs, PURPOSE, RESULT_KEY);
    }

    function start(uint256 jobId) internal {
        vm.prank(orchestrator, orchestrator);
        dp.startJob(jobId);
    }

    function confirm(uint256 jobId, uint16 actualEpochs) internal {
        vm.prank(orchestrator, orchestrator);
        dp.confirmTrainingComplete(jobId, actualEpochs, RESULT_HASH, ATTESTATION);
    }

    function withdrawAs(address who) internal {
        vm.prank(who, who);
        dp.withdraw();
    }

    function err(bytes4 selector) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(selector);
    }
}
