// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {DataPolicy} from "../src/DataPolicy.sol";
import {IDataPolicy} from "../src/IDataPolicy.sol";
import {liveEscrow} from "./utils/Escrow.sol";
import {vm, vmx} from "./utils/Cheats.sol";
import {Fixture} from "./utils/Fixture.sol";
import {GasBurningReceiver, RejectingReceiver} from "./utils/Receivers.sol";

/// @notice One test per behaviour: every function, every custom error, every event.
contract DataPolicyTest is Fixture {
    bytes32 internal constant ROOT2 = keccak256("licen.test.datasetRoot.2");

    // ================================================================ constructor

    function test_constructor_setsConfiguration() public view {
        assertEq(dp.admin(), admin, "admin");
        assertEq(dp.treasury(), treasury, "treasury");
        assertEq(dp.protocolFeeBps(), FEE_BPS, "fee");
        assertEq(dp.RUN_TIMEOUT(), RUN_TIMEOUT, "run timeout");
        assertEq(dp.MAX_FEE_BPS(), 1000, "max fee");
        assertEq(dp.nextJobId(), 1, "job ids start at 1");
        assertEq(liveEscrow(dp), 0, "no escrow");
        assertEq(dp.withdrawable(treasury), 0, "treasury has nothing yet");
    }

    function test_constructor_emitsAdminAndFee() public {
        vmx.expectEmit();
        emit IDataPolicy.AdminTransferred(address(0), admin);
        vmx.expectEmit();
        emit IDataPolicy.ProtocolFeeSet(FEE_BPS, treasury);
        new DataPolicy(admin, treasury, FEE_BPS, RUN_TIMEOUT);
    }

    function test_constructor_revertsOnZeroAdmin() public {
        vm.expectRevert(err(IDataPolicy.ZeroAddress.selector));
        new DataPolicy(address(0), treasury, FEE_BPS, RUN_TIMEOUT);
    }

    function test_constructor_revertsOnZeroTreasury() public {
        vm.expectRevert(err(IDataPolicy.ZeroAddress.selector));
        new DataPolicy(admin, address(0), FEE_BPS, RUN_TIMEOUT);
    }

    function test_constructor_revertsOnFeeTooHigh() public {
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.FeeTooHigh.selector, uint16(1001), uint16(1000)));
        new DataPolicy(admin, treasury, 1001, RUN_TIMEOUT);
    }

    function test_constructor_revertsOnZeroRunTimeout() public {
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.InvalidPolicy.selector, "runTimeout"));
        new DataPolicy(admin, treasury, FEE_BPS, 0);
    }

    function test_constructor_revertsOnHugeRunTimeout() public {
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.InvalidPolicy.selector, "runTimeout"));
        new DataPolicy(admin, treasury, FEE_BPS, uint64(type(uint32).max) + 1);
    }

    // ================================================================ orchestrator registry

    function test_registerOrchestrator_storesKeyAndEmits() public {
        address o = makeAddr("o2");
        bytes32 key = keccak256("k2");
        vmx.expectEmit(address(dp));
        emit IDataPolicy.OrchestratorRegistered(o, key);
        vm.prank(admin);
        dp.registerOrchestrator(o, key);
        (bytes32 stored, bool active) = dp.orchestratorKey(o);
        assertEq(stored, key, "key");
        assertTrue(active, "active");
    }

    function test_registerOrchestrator_revertsForNonAdmin() public {
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.NotAdmin.selector, stranger));
        vm.prank(stranger);
        dp.registerOrchestrator(stranger, ORCH_KEY);
    }

    function test_registerOrchestrator_revertsOnZeroAddress() public {
        vm.expectRevert(err(IDataPolicy.ZeroAddress.selector));
        vm.prank(admin);
        dp.registerOrchestrator(address(0), ORCH_KEY);
    }

    function test_registerOrchestrator_revertsOnZeroKey() public {
        vm.expectRevert(err(IDataPolicy.InvalidPublicKey.selector));
        vm.prank(admin);
        dp.registerOrchestrator(stranger, bytes32(0));
    }

    function test_registerOrchestrator_revertsWhenActive() public {
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.OrchestratorAlreadyRegistered.selector, orchestrator));
        vm.prank(admin);
        dp.registerOrchestrator(orchestrator, keccak256("other"));
    }

    function test_registerOrchestrator_reactivatesDeactivated() public {
        vm.prank(admin);
        dp.deactivateOrchestrator(orchestrator);
        vm.prank(admin);
        dp.registerOrchestrator(orchestrator, keccak256("new key"));
        (bytes32 key, bool active) = dp.orchestratorKey(orchestrator);
        assertEq(key, keccak256("new key"), "new key");
        assertTrue(active, "active again");
    }

    function test_rotateOrchestratorKey_updatesAndEmits() public {
        bytes32 key = keccak256("rotated");
        vmx.expectEmit(address(dp));
        emit IDataPolicy.OrchestratorKeyRotated(orchestrator, key);
        vm.prank(admin);
        dp.rotateOrchestratorKey(orchestrator, key);
        (bytes32 stored, bool active) = dp.orchestratorKey(orchestrator);
        assertEq(stored, key, "key");
        assertTrue(active, "still active");
    }

    function test_rotateOrchestratorKey_revertsForNonAdmin() public {
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.NotAdmin.selector, orchestrator));
        vm.prank(orchestrator);
        dp.rotateOrchestratorKey(orchestrator, keccak256("k"));
    }

    function test_rotateOrchestratorKey_revertsOnZeroKey() public {
        vm.expectRevert(err(IDataPolicy.InvalidPublicKey.selector));
        vm.prank(admin);
        dp.rotateOrchestratorKey(orchestrator, bytes32(0));
    }

    function test_rotateOrchestratorKey_revertsWhenNotActive() public {
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.OrchestratorNotActive.selector, stranger));
        vm.prank(admin);
        dp.rotateOrchestratorKey(stranger, keccak256("k"));
    }

    function test_deactivateOrchestrator_deactivatesAndEmits() public {
        vmx.expectEmit(address(dp));
        emit IDataPolicy.OrchestratorDeactivated(orchestrator);
        vm.prank(admin);
        dp.deactivateOrchestrator(orchestrator);
        (bytes32 key, bool active) = dp.orchestratorKey(orchestrator);
        assertEq(key, ORCH_KEY, "key kept");
        assertFalse(active, "inactive");
    }

    function test_deactivateOrchestrator_revertsForNonAdmin() public {
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.NotAdmin.selector, stranger));
        vm.prank(stranger);
        dp.deactivateOrchestrator(orchestrator);
    }

    function test_deactivateOrchestrator_revertsWhenNotActive() public {
        vm.prank(admin);
        dp.deactivateOrchestrator(orchestrator);
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.OrchestratorNotActive.selector, orchestrator));
        vm.prank(admin);
        dp.deactivateOrchestrator(orchestrator);
    }

    function test_deactivatedOrchestrator_keepsServingLiveJobs() public {
        publishDefault();
        uint256 a = request(researcher, 2);
        uint256 b = request(researcher, 2);
        vm.prank(admin);
        dp.deactivateOrchestrator(orchestrator);
        start(a);
        confirm(a, 2);
        vm.prank(orchestrator);
        dp.failJob(b, "shutting down");
        assertEq(uint8(dp.job(a).state), uint8(IDataPolicy.JobState.Completed), "a completed");
        assertEq(uint8(dp.job(b).state), uint8(IDataPolicy.JobState.Failed), "b failed");
    }

    // ================================================================ protocol fee and admin

    function test_setProtocolFee_updatesAndEmits() public {
        address t2 = makeAddr("treasury2");
        vmx.expectEmit(address(dp));
        emit IDataPolicy.ProtocolFeeSet(1000, t2);
        vm.prank(admin);
        dp.setProtocolFee(1000, t2);
        assertEq(dp.protocolFeeBps(), 1000, "fee");
        assertEq(dp.treasury(), t2, "treasury");
    }

    function test_setProtocolFee_revertsForNonAdmin() public {
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.NotAdmin.selector, treasury));
        vm.prank(treasury);
        dp.setProtocolFee(0, treasury);
    }

    function test_setProtocolFee_revertsOnFeeTooHigh() public {
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.FeeTooHigh.selector, uint16(1001), uint16(1000)));
        vm.prank(admin);
        dp.setProtocolFee(1001, treasury);
    }

    function test_setProtocolFee_revertsOnZeroTreasury() public {
        vm.expectRevert(err(IDataPolicy.ZeroAddress.selector));
        vm.prank(admin);
        dp.setProtocolFee(100, address(0));
    }

    function test_setProtocolFee_newTreasuryLeavesEarnedFeesWithdrawable() public {
        publishDefault();
        uint256 jobId = request(researcher, 4);
        start(jobId);
        confirm(jobId, 4);
        uint256 fee = uint256(PRICE) * 4 * FEE_BPS / 10_000;
        assertEq(dp.withdrawable(treasury), fee, "fee accrued");

        address t2 = makeAddr("treasury2");
        vm.prank(admin);
        dp.setProtocolFee(FEE_BPS, t2);
        assertEq(dp.withdrawable(treasury), fee, "old treasury keeps its fee");
        assertEq(dp.withdrawable(t2), 0, "new treasury starts empty");

        uint256 second = request(researcher, 2);
        start(second);
        confirm(second, 2);
        uint256 fee2 = uint256(PRICE) * 2 * FEE_BPS / 10_000;
        assertEq(dp.withdrawable(t2), fee2, "new treasury accrues");
        assertEq(dp.withdrawable(treasury), fee, "old treasury unchanged");

        uint256 before = treasury.balance;
        withdrawAs(treasury);
        assertEq(treasury.balance - before, fee, "old treasury paid");
        vm.deal(t2, 1 ether);
        withdrawAs(t2);
        assertEq(t2.balance, 1 ether + fee2, "new treasury paid");
        assertEq(address(dp).balance, dp.withdrawable(owner) + dp.withdrawable(researcher), "accounting");
    }

    function test_setProtocolFee_sameTreasuryKeepsAccruedFees() public {
        publishDefault();
        uint256 jobId = request(researcher, 4);
        start(jobId);
        confirm(jobId, 4);
        uint256 fee = uint256(PRICE) * 4 * FEE_BPS / 10_000;
        vm.prank(admin);
        dp.setProtocolFee(0, treasury);
        assertEq(dp.withdrawable(treasury), fee, "still accrued");
    }

    function test_transferAdmin_movesRightsAndEmits() public {
        vmx.expectEmit(address(dp));
        emit IDataPolicy.AdminTransferred(admin, stranger);
        vm.prank(admin);
        dp.transferAdmin(stranger);
        assertEq(dp.admin(), stranger, "admin");

        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.NotAdmin.selector, admin));
        vm.prank(admin);
        dp.setProtocolFee(0, treasury);
        vm.prank(stranger);
        dp.setProtocolFee(0, treasury);
    }

    function test_transferAdmin_revertsForNonAdmin() public {
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.NotAdmin.selector, stranger));
        vm.prank(stranger);
        dp.transferAdmin(stranger);
    }

    function test_transferAdmin_revertsOnZeroAddress() public {
        vm.expectRevert(err(IDataPolicy.ZeroAddress.selector));
        vm.prank(admin);
        dp.transferAdmin(address(0));
    }

    // ================================================================ publish

    function test_publish_storesDatasetAndEmits() public {
        IDataPolicy.Policy memory p = defaultPolicy();
        vmx.expectEmit(address(dp));
        emit IDataPolicy.DatasetPublished(ROOT, owner, orchestrator, ENVELOPE, MANIFEST, p, keccak256(abi.encode(p)));
        publishDefault();

        (address o, address orch, bool paused, IDataPolicy.Policy memory stored) = dp.datasetInfo(ROOT);
        assertEq(o, owner, "owner");
        assertEq(orch, orchestrator, "orchestrator");
        assertFalse(paused, "not paused");
        assertEq(keccak256(abi.encode(stored)), keccak256(abi.encode(p)), "policy");
    }

    function test_publish_assignsSequentialIndices() public {
        publishDefault();
        vm.prank(stranger);
        dp.publish(ROOT2, orchestrator, ENVELOPE, MANIFEST, defaultPolicy());
        assertEq(dp.job(request(researcher, 1)).datasetIndex, 1, "first dataset");
        vm.prank(researcher);
        uint256 jobId = dp.requestAccess{value: PRICE}(ROOT2, 1, PURPOSE, RESULT_KEY);
        assertEq(dp.job(jobId).datasetIndex, 2, "second dataset");
        assertEq(dp.jobDatasetRoot(jobId), ROOT2, "root of job");
    }

    function test_publish_acceptsFreeDatasetAndFutureExpiry() public {
        IDataPolicy.Policy memory p = defaultPolicy();
        p.pricePerEpoch = 0;
        p.expiry = START_TIME + 1;
        vm.prank(owner);
        dp.publish(ROOT, orchestrator, ENVELOPE, MANIFEST, p);
        (,,, IDataPolicy.Policy memory stored) = dp.datasetInfo(ROOT);
        assertEq(stored.pricePerEpoch, 0, "free");
        assertEq(stored.expiry, START_TIME + 1, "expiry");
    }

    function test_publish_acceptsExtremePolicyValues() public {
        IDataPolicy.Policy memory p = IDataPolicy.Policy({
            pricePerEpoch: type(uint96).max,
            maxEpochsPerRun: type(uint16).max,
            maxRunsPerRequester: type(uint32).max,
            sessionTtl: type(uint32).max,
            allowedPurposes: type(uint32).max,
            expiry: type(uint64).max
        });
        vm.prank(owner);
        dp.publish(ROOT, orchestrator, ENVELOPE, MANIFEST, p);
        (,,, IDataPolicy.Policy memory stored) = dp.datasetInfo(ROOT);
        assertEq(keccak256(abi.encode(stored)), keccak256(abi.encode(p)), "round trip");
    }

    function test_publish_revertsOnZeroDatasetRoot() public {
        vm.expectRevert(err(IDataPolicy.InvalidRoot.selector));
        vm.prank(owner);
        dp.publish(bytes32(0), orchestrator, ENVELOPE, MANIFEST, defaultPolicy());
    }

    function test_publish_revertsOnZeroEnvelopeRoot() public {
        vm.expectRevert(err(IDataPolicy.InvalidRoot.selector));
        vm.prank(owner);
        dp.publish(ROOT, orchestrator, bytes32(0), MANIFEST, defaultPolicy());
    }

    function test_publish_revertsOnZeroManifestRoot() public {
        vm.expectRevert(err(IDataPolicy.InvalidRoot.selector));
        vm.prank(owner);
        dp.publish(ROOT, orchestrator, ENVELOPE, bytes32(0), defaultPolicy());
    }

    function test_publish_revertsWhenAlreadyPublished() public {
        publishDefault();
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.DatasetAlreadyPublished.selector, ROOT));
        vm.prank(stranger);
        dp.publish(ROOT, orchestrator, ENVELOPE, MANIFEST, defaultPolicy());
    }

    function test_publish_revertsForUnregisteredOrchestrator() public {
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.OrchestratorNotActive.selector, stranger));
        vm.prank(owner);
        dp.publish(ROOT, stranger, ENVELOPE, MANIFEST, defaultPolicy());
    }

    function test_publish_revertsForDeactivatedOrchestrator() public {
        vm.prank(admin);
        dp.deactivateOrchestrator(orchestrator);
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.OrchestratorNotActive.selector, orchestrator));
        publishDefault();
    }

    function test_publish_revertsOnPriceAbove96Bits() public {
        IDataPolicy.Policy memory p = defaultPolicy();
        p.pricePerEpoch = uint128(type(uint96).max) + 1;
        expectInvalidPolicy(p, "pricePerEpoch");
    }

    function test_publish_revertsOnZeroMaxEpochs() public {
        IDataPolicy.Policy memory p = defaultPolicy();
        p.maxEpochsPerRun = 0;
        expectInvalidPolicy(p, "maxEpochsPerRun");
    }

    function test_publish_revertsOnMaxEpochsAbove65535() public {
        IDataPolicy.Policy memory p = defaultPolicy();
        p.maxEpochsPerRun = 65_536;
        expectInvalidPolicy(p, "maxEpochsPerRun");
    }

    function test_publish_revertsOnZeroMaxRuns() public {
        IDataPolicy.Policy memory p = defaultPolicy();
        p.maxRunsPerRequester = 0;
        expectInvalidPolicy(p, "maxRunsPerRequester");
    }

    function test_publish_revertsOnZeroSessionTtl() public {
        IDataPolicy.Policy memory p = defaultPolicy();
        p.sessionTtl = 0;
        expectInvalidPolicy(p, "sessionTtl");
    }

    function test_publish_revertsOnNoPurposes() public {
        IDataPolicy.Policy memory p = defaultPolicy();
        p.allowedPurposes = 0;
        expectInvalidPolicy(p, "allowedPurposes");
    }

    function test_publish_revertsOnExpiryNow() public {
        IDataPolicy.Policy memory p = defaultPolicy();
        p.expiry = START_TIME;
        expectInvalidPolicy(p, "expiry");
    }

    function test_publish_revertsOnExpiryInThePast() public {
        IDataPolicy.Policy memory p = defaultPolicy();
        p.expiry = 1;
        expectInvalidPolicy(p, "expiry");
    }

    // ================================================================ owner controls

    function test_updatePolicy_appliesToNewRequestsOnly() public {
        publishDefault();
        uint256 old = request(researcher, 2);
        IDataPolicy.Policy memory p = defaultPolicy();
        p.pricePerEpoch = 3 * PRICE;
        p.maxEpochsPerRun = 20;
        vmx.expectEmit(address(dp));
        emit IDataPolicy.PolicyUpdated(ROOT, p, keccak256(abi.encode(p)));
        vm.prank(owner);
        dp.updatePolicy(ROOT, p);

        (,,, IDataPolicy.Policy memory stored) = dp.datasetInfo(ROOT);
        assertEq(keccak256(abi.encode(stored)), keccak256(abi.encode(p)), "stored");
        assertEq(dp.job(old).pricePerEpoch, PRICE, "old job keeps its price snapshot");

        vm.prank(researcher);
        uint256 fresh = dp.requestAccess{value: 3 * uint256(PRICE) * 15}(ROOT, 15, PURPOSE, RESULT_KEY);
        assertEq(dp.job(fresh).pricePerEpoch, 3 * PRICE, "new price");
        start(old);
        confirm(old, 2);
        assertEq(dp.withdrawable(owner), uint256(PRICE) * 2 - uint256(PRICE) * 2 * FEE_BPS / 10_000, "old price paid");
    }

    function test_updatePolicy_loweringRunCapBlocksFurtherRequests() public {
        publishDefault();
        request(researcher, 1);
        request(researcher, 1);
        IDataPolicy.Policy memory p = defaultPolicy();
        p.maxRunsPerRequester = 1;
        vm.prank(owner);
        dp.updatePolicy(ROOT, p);
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.RunLimitReached.selector, ROOT, researcher, uint32(1)));
        vm.prank(researcher);
        dp.requestAccess{value: PRICE}(ROOT, 1, PURPOSE, RESULT_KEY);
    }

    function test_updatePolicy_revertsForUnknownDataset() public {
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.DatasetNotFound.selector, ROOT));
        vm.prank(owner);
        dp.updatePolicy(ROOT, defaultPolicy());
    }

    function test_updatePolicy_revertsForNonOwner() public {
        publishDefault();
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.NotDatasetOwner.selector, ROOT, stranger));
        vm.prank(stranger);
        dp.updatePolicy(ROOT, defaultPolicy());
    }

    function test_updatePolicy_revertsOnInvalidPolicy() public {
        publishDefault();
        IDataPolicy.Policy memory p = defaultPolicy();
        p.sessionTtl = 0;
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.InvalidPolicy.selector, "sessionTtl"));
        vm.prank(owner);
        dp.updatePolicy(ROOT, p);
    }

    function test_pause_blocksRequestsAndEmits() public {
        publishDefault();
        vmx.expectEmit(address(dp));
        emit IDataPolicy.DatasetPaused(ROOT);
        vm.prank(owner);
        dp.pause(ROOT);
        (,, bool paused,) = dp.datasetInfo(ROOT);
        assertTrue(paused, "paused");
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.DatasetIsPaused.selector, ROOT));
        vm.prank(researcher);
        dp.requestAccess{value: PRICE}(ROOT, 1, PURPOSE, RESULT_KEY);
    }

    function test_pause_leavesLiveJobsAlone() public {
        publishDefault();
        uint256 jobId = request(researcher, 2);
        vm.prank(owner);
        dp.pause(ROOT);
        start(jobId);
        confirm(jobId, 2);
        assertEq(uint8(dp.job(jobId).state), uint8(IDataPolicy.JobState.Completed), "completed");
    }

    function test_pause_revertsWhenAlreadyPaused() public {
        publishDefault();
        vm.prank(owner);
        dp.pause(ROOT);
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.DatasetIsPaused.selector, ROOT));
        vm.prank(owner);
        dp.pause(ROOT);
    }

    function test_pause_revertsForNonOwner() public {
        publishDefault();
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.NotDatasetOwner.selector, ROOT, admin));
        vm.prank(admin);
        dp.pause(ROOT);
    }

    function test_pause_revertsForUnknownDataset() public {
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.DatasetNotFound.selector, ROOT));
        vm.prank(owner);
        dp.pause(ROOT);
    }

    function test_resume_reopensAndEmits() public {
        publishDefault();
        vm.prank(owner);
        dp.pause(ROOT);
        vmx.expectEmit(address(dp));
        emit IDataPolicy.DatasetResumed(ROOT);
        vm.prank(owner);
        dp.resume(ROOT);
        (,, bool paused,) = dp.datasetInfo(ROOT);
        assertFalse(paused, "resumed");
        request(researcher, 1);
    }

    function test_resume_revertsWhenNotPaused() public {
        publishDefault();
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.DatasetNotPaused.selector, ROOT));
        vm.prank(owner);
        dp.resume(ROOT);
    }

    function test_resume_revertsForNonOwner() public {
        publishDefault();
        vm.prank(owner);
        dp.pause(ROOT);
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.NotDatasetOwner.selector, ROOT, stranger));
        vm.prank(stranger);
        dp.resume(ROOT);
    }

    function test_resume_revertsForUnknownDataset() public {
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.DatasetNotFound.selector, ROOT2));
        vm.prank(owner);
        dp.resume(ROOT2);
    }

    function test_rotateEnvelope_emits() public {
        publishDefault();
        bytes32 envelope = keccak256("envelope v2");
        vmx.expectEmit(address(dp));
        emit IDataPolicy.EnvelopeRotated(ROOT, envelope);
        vm.prank(owner);
        dp.rotateEnvelope(ROOT, envelope);
    }

    function test_rotateEnvelope_revertsOnZeroRoot() public {
        publishDefault();
        vm.expectRevert(err(IDataPolicy.InvalidRoot.selector));
        vm.prank(owner);
        dp.rotateEnvelope(ROOT, bytes32(0));
    }

    function test_rotateEnvelope_revertsForNonOwner() public {
        publishDefault();
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.NotDatasetOwner.selector, ROOT, orchestrator));
        vm.prank(orchestrator);
        dp.rotateEnvelope(ROOT, ENVELOPE);
    }

    function test_rotateEnvelope_revertsForUnknownDataset() public {
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.DatasetNotFound.selector, ROOT));
        vm.prank(owner);
        dp.rotateEnvelope(ROOT, ENVELOPE);
    }

    // ================================================================ requestAccess

    function test_requestAccess_grantsAndEmits() public {
        publishDefault();
        uint64 expiresAt = START_TIME + 1 hours;
        vmx.expectEmit(address(dp));
        emit IDataPolicy.AccessGranted(
            1, ROOT, researcher, 3, PURPOSE, RESULT_KEY, PRICE, 3 * uint256(PRICE), expiresAt
        );
        uint256 jobId = request(researcher, 3);

        assertEq(jobId, 1, "first job id");
        IDataPolicy.Job memory j = dp.job(jobId);
        assertEq(j.researcher, researcher, "researcher");
        assertEq(j.datasetIndex, 1, "dataset index");
        assertEq(uint8(j.state), uint8(IDataPolicy.JobState.Granted), "state");
        assertEq(j.deadline, expiresAt, "expiresAt");
        assertEq(j.epochs, 3, "epochs");
        assertEq(j.pricePerEpoch, PRICE, "price snapshot");
        assertEq(dp.jobDatasetRoot(jobId), ROOT, "root");
        assertEq(dp.runsUsed(ROOT, researcher), 1, "run counted");
        assertEq(liveEscrow(dp), 3 * uint256(PRICE), "escrowed");
        assertEq(address(dp).balance, 3 * uint256(PRICE), "balance");
        assertEq(dp.nextJobId(), 2, "next id");
    }

    function test_requestAccess_idsAreSequential() public {
        publishDefault();
        assertEq(request(researcher, 1), 1, "1");
        assertEq(request(stranger, 1), 2, "2");
        assertEq(request(researcher, 1), 3, "3");
    }

    function test_requestAccess_freeDatasetTakesNoValue() public {
        IDataPolicy.Policy memory p = defaultPolicy();
        p.pricePerEpoch = 0;
        vm.prank(owner);
        dp.publish(ROOT, orchestrator, ENVELOPE, MANIFEST, p);
        vm.prank(researcher);
        uint256 jobId = dp.requestAccess(ROOT, 5, PURPOSE, RESULT_KEY);
        assertEq(dp.job(jobId).researcher, researcher, "researcher recorded");
        start(jobId);
        confirm(jobId, 5);
        assertEq(dp.withdrawable(owner), 0, "nothing earned");
        assertEq(dp.withdrawable(researcher), 0, "nothing refunded");
    }

    function test_requestAccess_acceptsMaxEpochsAndLastPurposeBit() public {
        IDataPolicy.Policy memory p = defaultPolicy();
        p.allowedPurposes = 1 << 31;
        vm.prank(owner);
        dp.publish(ROOT, orchestrator, ENVELOPE, MANIFEST, p);
        vm.prank(researcher);
        dp.requestAccess{value: 10 * uint256(PRICE)}(ROOT, 10, 31, RESULT_KEY);
    }

    function test_requestAccess_revertsForUnknownDataset() public {
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.DatasetNotFound.selector, ROOT));
        request(researcher, 1);
    }

    function test_requestAccess_revertsAtExpiry() public {
        IDataPolicy.Policy memory p = defaultPolicy();
        p.expiry = START_TIME + 100;
        vm.prank(owner);
        dp.publish(ROOT, orchestrator, ENVELOPE, MANIFEST, p);
        vm.warp(START_TIME + 99);
        request(researcher, 1);
        vm.warp(START_TIME + 100);
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.DatasetExpired.selector, ROOT, START_TIME + 100));
        request(researcher, 1);
    }

    function test_requestAccess_revertsWhenOrchestratorDeactivated() public {
        publishDefault();
        vm.prank(admin);
        dp.deactivateOrchestrator(orchestrator);
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.OrchestratorNotActive.selector, orchestrator));
        request(researcher, 1);
    }

    function test_requestAccess_revertsOnZeroEpochs() public {
        publishDefault();
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.EpochsOutOfRange.selector, uint256(0), uint32(10)));
        request(researcher, 0);
    }

    function test_requestAccess_revertsOnTooManyEpochs() public {
        publishDefault();
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.EpochsOutOfRange.selector, uint256(11), uint32(10)));
        request(researcher, 11);
    }

    function test_requestAccess_revertsOnPurposeNotAllowed() public {
        publishDefault();
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.PurposeNotAllowed.selector, uint8(2), uint32(0x0b)));
        vm.prank(researcher);
        dp.requestAccess{value: PRICE}(ROOT, 1, 2, RESULT_KEY);
    }

    function test_requestAccess_revertsOnPurposeOutOfRange() public {
        IDataPolicy.Policy memory p = defaultPolicy();
        p.allowedPurposes = type(uint32).max;
        vm.prank(owner);
        dp.publish(ROOT, orchestrator, ENVELOPE, MANIFEST, p);
        vm.expectRevert(
            abi.encodeWithSelector(IDataPolicy.PurposeNotAllowed.selector, uint8(32), uint32(type(uint32).max))
        );
        vm.prank(researcher);
        dp.requestAccess{value: PRICE}(ROOT, 1, 32, RESULT_KEY);
    }

    function test_requestAccess_revertsOnZeroResultKey() public {
        publishDefault();
        vm.expectRevert(err(IDataPolicy.InvalidPublicKey.selector));
        vm.prank(researcher);
        dp.requestAccess{value: PRICE}(ROOT, 1, PURPOSE, bytes32(0));
    }

    function test_requestAccess_revertsOnTooLittleEscrow() public {
        publishDefault();
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.WrongEscrow.selector, 2 * uint256(PRICE) - 1, 2 * PRICE));
        vm.prank(researcher);
        dp.requestAccess{value: 2 * uint256(PRICE) - 1}(ROOT, 2, PURPOSE, RESULT_KEY);
    }

    function test_requestAccess_revertsOnTooMuchEscrow() public {
        publishDefault();
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.WrongEscrow.selector, 2 * uint256(PRICE) + 1, 2 * PRICE));
        vm.prank(researcher);
        dp.requestAccess{value: 2 * uint256(PRICE) + 1}(ROOT, 2, PURPOSE, RESULT_KEY);
    }

    function test_requestAccess_revertsOnValueForFreeDataset() public {
        IDataPolicy.Policy memory p = defaultPolicy();
        p.pricePerEpoch = 0;
        vm.prank(owner);
        dp.publish(ROOT, orchestrator, ENVELOPE, MANIFEST, p);
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.WrongEscrow.selector, uint256(1), uint256(0)));
        vm.prank(researcher);
        dp.requestAccess{value: 1}(ROOT, 1, PURPOSE, RESULT_KEY);
    }

    function test_requestAccess_revertsAtRunLimit() public {
        publishDefault();
        request(researcher, 1);
        request(researcher, 1);
        request(researcher, 1);
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.RunLimitReached.selector, ROOT, researcher, uint32(3)));
        request(researcher, 1);
        request(stranger, 1); // the cap is per wallet
    }

    function test_requestAccess_largestEscrowsAddUp() public {
        IDataPolicy.Policy memory p = defaultPolicy();
        p.pricePerEpoch = type(uint96).max;
        p.maxEpochsPerRun = type(uint16).max;
        vm.prank(owner);
        dp.publish(ROOT, orchestrator, ENVELOPE, MANIFEST, p);
        uint256 escrow = uint256(type(uint96).max) * type(uint16).max;
        vm.deal(researcher, 2 * escrow);
        vm.prank(researcher);
        dp.requestAccess{value: escrow}(ROOT, type(uint16).max, PURPOSE, RESULT_KEY);
        vm.prank(researcher);
        dp.requestAccess{value: escrow}(ROOT, type(uint16).max, PURPOSE, RESULT_KEY);
        assertEq(liveEscrow(dp), 2 * escrow, "no running total to overflow");
        assertEq(address(dp).balance, 2 * escrow, "held");
    }

    // ================================================================ startJob

    function test_startJob_startsAndEmits() public {
        publishDefault();
        uint256 jobId = request(researcher, 2);
        vm.warp(START_TIME + 1 hours - 1);
        uint64 runDeadline = START_TIME + 1 hours - 1 + RUN_TIMEOUT;
        vmx.expectEmit(address(dp));
        emit IDataPolicy.JobStarted(jobId, runDeadline);
        start(jobId);
        IDataPolicy.Job memory j = dp.job(jobId);
        assertEq(uint8(j.state), uint8(IDataPolicy.JobState.Running), "running");
        assertEq(j.deadline, runDeadline, "run deadline");
        assertEq(j.researcher, researcher, "researcher kept");
        assertEq(j.epochs, 2, "epochs kept");
        assertEq(j.datasetIndex, 1, "index kept");
        assertEq(j.pricePerEpoch, PRICE, "price kept");
    }

    function test_startJob_revertsForUnknownJob() public {
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.JobNotFound.selector, uint256(7)));
        start(7);
    }

    function test_startJob_revertsForNonOrchestrator() public {
        publishDefault();
        uint256 jobId = request(researcher, 2);
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.NotJobOrchestrator.selector, jobId, owner));
        vm.prank(owner);
        dp.startJob(jobId);
    }

    function test_startJob_revertsForOtherOrchestrator() public {
        address other = makeAddr("other orchestrator");
        vm.prank(admin);
        dp.registerOrchestrator(other, keccak256("other"));
        publishDefault();
        uint256 jobId = request(researcher, 2);
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.NotJobOrchestrator.selector, jobId, other));
        vm.prank(other);
        dp.startJob(jobId);
    }

    function test_startJob_revertsWhenRunning() public {
        publishDefault();
        uint256 jobId = request(researcher, 2);
        start(jobId);
        expectWrongState(jobId, IDataPolicy.JobState.Running, IDataPolicy.JobState.Granted);
        start(jobId);
    }

    function test_startJob_revertsAtExpiresAt() public {
        publishDefault();
        uint256 jobId = request(researcher, 2);
        vm.warp(START_TIME + 1 hours);
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.GrantExpired.selector, jobId, START_TIME + 1 hours));
        start(jobId);
    }

    // ================================================================ confirmTrainingComplete

    function test_confirm_settlesPartialRunAndEmits() public {
        publishDefault();
        uint256 jobId = request(researcher, 8);
        start(jobId);
        uint256 escrow = 8 * uint256(PRICE);
        uint256 royalty = 5 * uint256(PRICE);
        uint256 fee = royalty * FEE_BPS / 10_000;
        vmx.expectEmit(address(dp));
        emit IDataPolicy.JobCompleted(jobId, 5, RESULT_HASH, ATTESTATION, royalty, fee, escrow - royalty);
        confirm(jobId, 5);

        assertEq(uint8(dp.job(jobId).state), uint8(IDataPolicy.JobState.Completed), "completed");
        assertEq(dp.withdrawable(owner), royalty - fee, "owner share");
        assertEq(dp.withdrawable(treasury), fee, "fee");
        assertEq(dp.withdrawable(researcher), escrow - royalty, "refund");
        assertEq(liveEscrow(dp), 0, "escrow released");
        assertEq(dp.runsUsed(ROOT, researcher), 1, "completed run counts");
        assertEq(address(dp).balance, escrow, "nothing moved yet");
    }

    function test_confirm_fullRunCreditsNoRefund() public {
        publishDefault();
        uint256 jobId = request(researcher, 4);
        start(jobId);
        confirm(jobId, 4);
        assertEq(dp.withdrawable(researcher), 0, "no refund");
        uint256 royalty = 4 * uint256(PRICE);
        assertEq(dp.withdrawable(owner) + dp.withdrawable(treasury), royalty, "royalty split");
    }

    function test_confirm_zeroEpochsRefundsAllButCountsTheRun() public {
        publishDefault();
        uint256 jobId = request(researcher, 4);
        start(jobId);
        vmx.expectEmit(address(dp));
        emit IDataPolicy.JobCompleted(jobId, 0, RESULT_HASH, ATTESTATION, 0, 0, 4 * uint256(PRICE));
        confirm(jobId, 0);
        assertEq(dp.withdrawable(researcher), 4 * uint256(PRICE), "all refunded");
        assertEq(dp.withdrawable(owner), 0, "owner nothing");
        assertEq(dp.withdrawable(treasury), 0, "treasury nothing");
        assertEq(dp.runsUsed(ROOT, researcher), 1, "run still counts");
    }

    function test_confirm_withoutFeeCreditsOwnerFully() public {
        vm.prank(admin);
        dp.setProtocolFee(0, treasury);
        publishDefault();
        uint256 jobId = request(researcher, 4);
        start(jobId);
        confirm(jobId, 3);
        assertEq(dp.withdrawable(owner), 3 * uint256(PRICE), "owner");
        assertEq(dp.withdrawable(treasury), 0, "no fee");
    }

    function test_confirm_allowedAfterRunDeadlineUntilReclaimed() public {
        publishDefault();
        uint256 jobId = request(researcher, 4);
        start(jobId);
        vm.warp(START_TIME + RUN_TIMEOUT + 1 days);
        confirm(jobId, 4);
        assertEq(uint8(dp.job(jobId).state), uint8(IDataPolicy.JobState.Completed), "completed");
    }

    function test_confirm_treasuryFeeOverflowMovesToBalance() public {
        IDataPolicy.Policy memory p = defaultPolicy();
        p.pricePerEpoch = type(uint96).max;
        vm.prank(owner);
        dp.publish(ROOT, orchestrator, ENVELOPE, MANIFEST, p);
        vm.prank(admin);
        dp.setProtocolFee(1000, treasury);
        uint256 escrow = uint256(type(uint96).max) * 10;
        vm.deal(researcher, escrow);
        vm.prank(researcher);
        uint256 jobId = dp.requestAccess{value: escrow}(ROOT, 10, PURPOSE, RESULT_KEY);
        start(jobId);
        confirm(jobId, 10);
        uint256 fee = escrow / 10;
        assertGe(fee, uint256(type(uint88).max), "fee exceeds the accrual field");
        assertEq(dp.withdrawable(treasury), fee, "fee withdrawable");
        assertEq(dp.withdrawable(owner), escrow - fee, "owner");
        uint256 before = treasury.balance;
        withdrawAs(treasury);
        assertEq(treasury.balance - before, fee, "paid");
        assertEq(dp.withdrawable(treasury), 0, "drained");
    }

    function test_confirm_revertsForUnknownJob() public {
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.JobNotFound.selector, uint256(1)));
        confirm(1, 0);
    }

    function test_confirm_revertsForNonOrchestrator() public {
        publishDefault();
        uint256 jobId = request(researcher, 4);
        start(jobId);
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.NotJobOrchestrator.selector, jobId, researcher));
        vm.prank(researcher);
        dp.confirmTrainingComplete(jobId, 4, RESULT_HASH, ATTESTATION);
    }

    function test_confirm_revertsWhenGranted() public {
        publishDefault();
        uint256 jobId = request(researcher, 4);
        expectWrongState(jobId, IDataPolicy.JobState.Granted, IDataPolicy.JobState.Running);
        confirm(jobId, 4);
    }

    function test_confirm_revertsOnTooManyEpochs() public {
        publishDefault();
        uint256 jobId = request(researcher, 4);
        start(jobId);
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.ActualEpochsExceedRequested.selector, uint256(5), uint16(4)));
        confirm(jobId, 5);
    }

    // ================================================================ failJob

    function test_failJob_fromRunningRefundsAndUncounts() public {
        publishDefault();
        uint256 jobId = request(researcher, 4);
        start(jobId);
        uint256 before = researcher.balance;
        vmx.expectEmit(address(dp));
        emit IDataPolicy.JobFailed(jobId, "node lost", 4 * uint256(PRICE));
        vmx.expectEmit(address(dp));
        emit IDataPolicy.Withdrawn(researcher, 4 * uint256(PRICE));
        vm.prank(orchestrator);
        dp.failJob(jobId, "node lost");
        assertEq(uint8(dp.job(jobId).state), uint8(IDataPolicy.JobState.Failed), "failed");
        assertEq(researcher.balance - before, 4 * uint256(PRICE), "refund paid at once");
        assertEq(dp.withdrawable(researcher), 0, "nothing left to withdraw");
        assertEq(dp.runsUsed(ROOT, researcher), 0, "run un-counted");
        assertEq(liveEscrow(dp), 0, "escrow released");
    }

    function test_failJob_fromGranted() public {
        publishDefault();
        uint256 jobId = request(researcher, 4);
        uint256 before = researcher.balance;
        vm.prank(orchestrator);
        dp.failJob(jobId, "no attested node");
        assertEq(uint8(dp.job(jobId).state), uint8(IDataPolicy.JobState.Failed), "failed");
        assertEq(researcher.balance - before, 4 * uint256(PRICE), "refund paid");
    }

    /// A researcher that refuses plain transfers (here: no receive function) is credited instead, and the refund
    /// waits for it in `withdrawable` — the push never blocks the orchestrator.
    function test_failJob_creditsAResearcherThatRefusesTheTransfer() public {
        publishDefault();
        RejectingReceiver wallet = new RejectingReceiver(dp);
        vm.deal(address(wallet), 1 ether);
        uint256 jobId = wallet.requestAccess(ROOT, 4, PURPOSE, RESULT_KEY, 4 * uint256(PRICE));
        vmx.recordLogs();
        vm.prank(orchestrator);
        dp.failJob(jobId, "node lost");
        assertEq(vmx.getRecordedLogs().length, 1, "JobFailed only: no Withdrawn");
        assertEq(dp.withdrawable(address(wallet)), 4 * uint256(PRICE), "credited");
        assertEq(address(dp).balance, 4 * uint256(PRICE), "still held for it");
        assertEq(dp.runsUsed(ROOT, address(wallet)), 0, "un-counted");
    }

    /// A receiver that burns gas only gets the 2300-gas stipend: the orchestrator's transaction stays cheap.
    function test_failJob_gasBurningResearcherCannotStallTheOrchestrator() public {
        publishDefault();
        GasBurningReceiver wallet = new GasBurningReceiver(dp);
        vm.deal(address(wallet), 1 ether);
        uint256 jobId = wallet.requestAccess(ROOT, 4, PURPOSE, RESULT_KEY, 4 * uint256(PRICE));
        vm.prank(orchestrator);
        uint256 gasBefore = gasleft();
        dp.failJob(jobId, "node lost");
        assertLe(gasBefore - gasleft(), 80_000, "bounded by the stipend");
        assertEq(dp.withdrawable(address(wallet)), 4 * uint256(PRICE), "credited");
    }

    function test_failJob_freeJobCreditsNothing() public {
        IDataPolicy.Policy memory p = defaultPolicy();
        p.pricePerEpoch = 0;
        vm.prank(owner);
        dp.publish(ROOT, orchestrator, ENVELOPE, MANIFEST, p);
        vm.prank(researcher);
        uint256 jobId = dp.requestAccess(ROOT, 1, PURPOSE, RESULT_KEY);
        vmx.expectEmit(address(dp));
        emit IDataPolicy.JobFailed(jobId, "", 0);
        vm.prank(orchestrator);
        dp.failJob(jobId, "");
        assertEq(dp.withdrawable(researcher), 0, "nothing");
        assertEq(dp.runsUsed(ROOT, researcher), 0, "un-counted");
    }

    function test_failJob_revertsForUnknownJob() public {
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.JobNotFound.selector, uint256(3)));
        vm.prank(orchestrator);
        dp.failJob(3, "x");
    }

    function test_failJob_revertsForNonOrchestrator() public {
        publishDefault();
        uint256 jobId = request(researcher, 4);
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.NotJobOrchestrator.selector, jobId, admin));
        vm.prank(admin);
        dp.failJob(jobId, "x");
    }

    function test_failJob_revertsWhenCompleted() public {
        publishDefault();
        uint256 jobId = request(researcher, 4);
        start(jobId);
        confirm(jobId, 4);
        expectWrongState(jobId, IDataPolicy.JobState.Completed, IDataPolicy.JobState.Running);
        vm.prank(orchestrator);
        dp.failJob(jobId, "x");
    }

    // ================================================================ expire

    function test_expire_byAnyoneAfterExpiresAt() public {
        publishDefault();
        uint256 jobId = request(researcher, 4);
        vm.warp(START_TIME + 1 hours);
        vmx.expectEmit(address(dp));
        emit IDataPolicy.JobExpired(jobId, 4 * uint256(PRICE));
        vmx.expectEmit(address(dp));
        emit IDataPolicy.Withdrawn(researcher, 4 * uint256(PRICE));
        uint256 before = researcher.balance;
        vm.prank(stranger);
        dp.expire(jobId);
        IDataPolicy.Job memory j = dp.job(jobId);
        assertEq(uint8(j.state), uint8(IDataPolicy.JobState.Expired), "expired");
        assertEq(j.deadline, START_TIME + 1 hours, "deadline kept");
        assertEq(researcher.balance - before, 4 * uint256(PRICE), "refund paid to the researcher");
        assertEq(dp.withdrawable(stranger), 0, "caller gets nothing");
        assertEq(dp.runsUsed(ROOT, researcher), 0, "run un-counted");
        assertEq(liveEscrow(dp), 0, "escrow released");
    }

    function test_expire_revertsForUnknownJob() public {
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.JobNotFound.selector, uint256(1)));
        dp.expire(1);
    }

    function test_expire_revertsBeforeExpiresAt() public {
        publishDefault();
        uint256 jobId = request(researcher, 4);
        vm.warp(START_TIME + 1 hours - 1);
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.GrantNotExpired.selector, jobId, START_TIME + 1 hours));
        dp.expire(jobId);
    }

    function test_expire_revertsWhenRunning() public {
        publishDefault();
        uint256 jobId = request(researcher, 4);
        start(jobId);
        vm.warp(START_TIME + 1 days);
        expectWrongState(jobId, IDataPolicy.JobState.Running, IDataPolicy.JobState.Granted);
        dp.expire(jobId);
    }

    // ================================================================ reclaim

    function test_reclaim_afterRunDeadline() public {
        publishDefault();
        uint256 jobId = request(researcher, 4);
        start(jobId);
        vm.warp(START_TIME + RUN_TIMEOUT);
        vmx.expectEmit(address(dp));
        emit IDataPolicy.JobReclaimed(jobId, 4 * uint256(PRICE));
        vmx.expectEmit(address(dp));
        emit IDataPolicy.Withdrawn(researcher, 4 * uint256(PRICE));
        uint256 before = researcher.balance;
        vm.prank(researcher);
        dp.reclaim(jobId);
        assertEq(uint8(dp.job(jobId).state), uint8(IDataPolicy.JobState.Reclaimed), "reclaimed");
        assertEq(researcher.balance - before, 4 * uint256(PRICE), "refund paid");
        assertEq(dp.withdrawable(researcher), 0, "nothing left");
        assertEq(dp.runsUsed(ROOT, researcher), 0, "run un-counted");
        assertEq(liveEscrow(dp), 0, "escrow released");
    }

    function test_reclaim_revertsForUnknownJob() public {
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.JobNotFound.selector, uint256(9)));
        vm.prank(researcher);
        dp.reclaim(9);
    }

    function test_reclaim_revertsForNonResearcher() public {
        publishDefault();
        uint256 jobId = request(researcher, 4);
        start(jobId);
        vm.warp(START_TIME + RUN_TIMEOUT);
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.NotJobResearcher.selector, jobId, orchestrator));
        vm.prank(orchestrator);
        dp.reclaim(jobId);
    }

    function test_reclaim_revertsWhenGranted() public {
        publishDefault();
        uint256 jobId = request(researcher, 4);
        expectWrongState(jobId, IDataPolicy.JobState.Granted, IDataPolicy.JobState.Running);
        vm.prank(researcher);
        dp.reclaim(jobId);
    }

    function test_reclaim_revertsBeforeRunDeadline() public {
        publishDefault();
        uint256 jobId = request(researcher, 4);
        start(jobId);
        vm.warp(START_TIME + RUN_TIMEOUT - 1);
        vm.expectRevert(
            abi.encodeWithSelector(IDataPolicy.RunDeadlineNotReached.selector, jobId, START_TIME + RUN_TIMEOUT)
        );
        vm.prank(researcher);
        dp.reclaim(jobId);
    }

    // ================================================================ terminal states

    function test_terminalStates_neverChange() public {
        publishDefault();
        uint256 completed = request(researcher, 1);
        start(completed);
        confirm(completed, 1);
        uint256 failed = request(researcher, 1);
        vm.prank(orchestrator);
        dp.failJob(failed, "x");
        uint256 expired = request(researcher, 1);
        uint256 reclaimed = request(researcher, 1);
        start(reclaimed);
        vm.warp(START_TIME + RUN_TIMEOUT);
        dp.expire(expired);
        vm.prank(researcher);
        dp.reclaim(reclaimed);

        uint256[4] memory ids = [completed, failed, expired, reclaimed];
        IDataPolicy.JobState[4] memory states = [
            IDataPolicy.JobState.Completed,
            IDataPolicy.JobState.Failed,
            IDataPolicy.JobState.Expired,
            IDataPolicy.JobState.Reclaimed
        ];
        for (uint256 i; i < 4; ++i) {
            uint256 id = ids[i];
            IDataPolicy.JobState s = states[i];
            assertEq(uint8(dp.job(id).state), uint8(s), "terminal");
            expectWrongState(id, s, IDataPolicy.JobState.Granted);
            start(id);
            expectWrongState(id, s, IDataPolicy.JobState.Running);
            confirm(id, 0);
            expectWrongState(id, s, IDataPolicy.JobState.Running);
            vm.prank(orchestrator);
            dp.failJob(id, "again");
            expectWrongState(id, s, IDataPolicy.JobState.Granted);
            dp.expire(id);
            expectWrongState(id, s, IDataPolicy.JobState.Running);
            vm.prank(researcher);
            dp.reclaim(id);
            assertEq(uint8(dp.job(id).state), uint8(s), "unchanged");
        }
    }

    // ================================================================ withdraw

    function test_withdraw_paysAndEmits() public {
        publishDefault();
        uint256 jobId = request(researcher, 8);
        start(jobId);
        confirm(jobId, 5);
        uint256 ownerShare = dp.withdrawable(owner);
        uint256 before = owner.balance;
        vmx.expectEmit(address(dp));
        emit IDataPolicy.Withdrawn(owner, ownerShare);
        withdrawAs(owner);
        assertEq(owner.balance - before, ownerShare, "owner paid");
        assertEq(dp.withdrawable(owner), 0, "owner drained");

        uint256 fee = dp.withdrawable(treasury);
        before = treasury.balance;
        vmx.expectEmit(address(dp));
        emit IDataPolicy.Withdrawn(treasury, fee);
        withdrawAs(treasury);
        assertEq(treasury.balance - before, fee, "treasury paid");
        assertEq(dp.withdrawable(treasury), 0, "treasury drained");

        withdrawAs(researcher);
        assertEq(address(dp).balance, 0, "empty");
    }

    function test_withdraw_treasuryAlsoOwner() public {
        IDataPolicy.Policy memory p = defaultPolicy();
        vm.prank(treasury);
        dp.publish(ROOT, orchestrator, ENVELOPE, MANIFEST, p);
        uint256 jobId = request(researcher, 4);
        start(jobId);
        confirm(jobId, 4);
        assertEq(dp.withdrawable(treasury), 4 * uint256(PRICE), "royalty and fee");
        uint256 before = treasury.balance;
        withdrawAs(treasury);
        assertEq(treasury.balance - before, 4 * uint256(PRICE), "paid both");
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.NothingToWithdraw.selector, treasury));
        withdrawAs(treasury);
    }

    function test_withdraw_revertsWhenNothingOwed() public {
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.NothingToWithdraw.selector, stranger));
        withdrawAs(stranger);
    }

    function test_withdraw_revertsForTreasuryWithoutFees() public {
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.NothingToWithdraw.selector, treasury));
        withdrawAs(treasury);
    }

    function test_withdraw_revertsWhenTransferFails() public {
        RejectingReceiver rejecting = new RejectingReceiver(dp);
        vm.deal(address(rejecting), 1 ether);
        publishDefault();
        uint256 jobId = rejecting.requestAccess(ROOT, 2, PURPOSE, RESULT_KEY, 2 * uint256(PRICE));
        vm.prank(orchestrator);
        dp.failJob(jobId, "x");
        vm.expectRevert(
            abi.encodeWithSelector(IDataPolicy.TransferFailed.selector, address(rejecting), 2 * uint256(PRICE))
        );
        rejecting.withdraw();
        assertEq(dp.withdrawable(address(rejecting)), 2 * uint256(PRICE), "balance kept");
    }

    // ================================================================ views

    function test_views_unknownIds() public view {
        IDataPolicy.Job memory j = dp.job(42);
        assertEq(uint8(j.state), uint8(IDataPolicy.JobState.None), "none");
        assertEq(j.researcher, address(0), "no researcher");
        assertEq(dp.runsUsed(ROOT, researcher), 0, "no runs");
        assertEq(dp.withdrawable(stranger), 0, "nothing");
        (bytes32 key, bool active) = dp.orchestratorKey(stranger);
        assertEq(key, bytes32(0), "no key");
        assertFalse(active, "inactive");
    }

    function test_datasetInfo_revertsForUnknownDataset() public {
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.DatasetNotFound.selector, ROOT));
        dp.datasetInfo(ROOT);
    }

    function test_jobDatasetRoot_revertsForUnknownJob() public {
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.JobNotFound.selector, uint256(1)));
        dp.jobDatasetRoot(1);
    }

    function test_policyHash_isKeccakOfAbiEncoding() public view {
        IDataPolicy.Policy memory p = defaultPolicy();
        assertEq(dp.policyHash(p), keccak256(abi.encode(p)), "hash");
        // Six static words, in declaration order.
        bytes memory encoded = abi.encode(
            uint256(p.pricePerEpoch),
            uint256(p.maxEpochsPerRun),
            uint256(p.maxRunsPerRequester),
            uint256(p.sessionTtl),
            uint256(p.allowedPurposes),
            uint256(p.expiry)
        );
        assertEq(dp.policyHash(p), keccak256(encoded), "layout");
    }

    // ================================================================ helpers

    function expectInvalidPolicy(IDataPolicy.Policy memory p, string memory field) internal {
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.InvalidPolicy.selector, field));
        vm.prank(owner);
        dp.publish(ROOT, orchestrator, ENVELOPE, MANIFEST, p);
    }

    function expectWrongState(uint256 jobId, IDataPolicy.JobState actual, IDataPolicy.JobState expected) internal {
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.WrongJobState.selector, jobId, actual, expected));
    }
}
