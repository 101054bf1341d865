// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {IDataPolicy} from "../src/IDataPolicy.sol";
import {liveEscrow} from "./utils/Escrow.sol";
import {vm, vmx} from "./utils/Cheats.sol";
import {bound, bound16, bound32, bound64, bound128} from "./utils/Bound.sol";
import {Fixture} from "./utils/Fixture.sol";

/// @notice Property tests over policy values, epochs, purposes, escrow and fee maths.
contract DataPolicyFuzzTest is Fixture {
    uint256 internal constant MAX_PRICE = type(uint96).max;

    // ---------------------------------------------------------------- policy validation

    /// Each bit of `keepValid` forces one field into its valid range, so both outcomes are exercised.
    function testFuzz_publish_validatesEveryPolicyField(IDataPolicy.Policy memory p, uint8 keepValid, uint32 elapsed)
        public
    {
        vm.warp(uint256(START_TIME) + elapsed);
        if (keepValid & 1 != 0) p.pricePerEpoch = bound128(p.pricePerEpoch, 0, MAX_PRICE);
        if (keepValid & 2 != 0) p.maxEpochsPerRun = bound32(p.maxEpochsPerRun, 1, type(uint16).max);
        if (keepValid & 4 != 0) p.maxRunsPerRequester = bound32(p.maxRunsPerRequester, 1, type(uint32).max);
        if (keepValid & 8 != 0) p.sessionTtl = bound32(p.sessionTtl, 1, type(uint32).max);
        if (keepValid & 16 != 0) p.allowedPurposes = bound32(p.allowedPurposes, 1, type(uint32).max);
        if (keepValid & 32 != 0) {
            p.expiry = p.expiry % 2 == 0 ? 0 : bound64(p.expiry, vmx.getBlockTimestamp() + 1, type(uint64).max);
        }

        string memory invalid;
        if (p.pricePerEpoch > MAX_PRICE) invalid = "pricePerEpoch";
        else if (p.maxEpochsPerRun == 0 || p.maxEpochsPerRun > type(uint16).max) invalid = "maxEpochsPerRun";
        else if (p.maxRunsPerRequester == 0) invalid = "maxRunsPerRequester";
        else if (p.sessionTtl == 0) invalid = "sessionTtl";
        else if (p.allowedPurposes == 0) invalid = "allowedPurposes";
        else if (p.expiry != 0 && p.expiry <= vmx.getBlockTimestamp()) invalid = "expiry";

        if (bytes(invalid).length != 0) {
            vm.expectRevert(abi.encodeWithSelector(IDataPolicy.InvalidPolicy.selector, invalid));
            vm.prank(owner);
            dp.publish(ROOT, orchestrator, ENVELOPE, MANIFEST, p);
            return;
        }
        vmx.expectEmit(address(dp));
        emit IDataPolicy.DatasetPublished(ROOT, owner, orchestrator, ENVELOPE, MANIFEST, p, keccak256(abi.encode(p)));
        vm.prank(owner);
        dp.publish(ROOT, orchestrator, ENVELOPE, MANIFEST, p);
        (,,, IDataPolicy.Policy memory stored) = dp.datasetInfo(ROOT);
        assertEq(keccak256(abi.encode(stored)), keccak256(abi.encode(p)), "policy round trip");
        assertEq(dp.policyHash(p), keccak256(abi.encode(p)), "policy hash");
    }

    // ---------------------------------------------------------------- requestAccess

    function testFuzz_requestAccess_escrowMustBeExact(uint256 priceSeed, uint256 epochsSeed, uint256 value, bool exact)
        public
    {
        uint128 price = bound128(priceSeed, 0, MAX_PRICE);
        uint16 epochs = bound16(epochsSeed, 1, type(uint16).max);
        uint256 escrow = uint256(price) * epochs;
        value = exact ? escrow : bound(value, 0, escrow * 2 + 1);
        publishWith(price, type(uint16).max, 1, 0x2);
        vm.deal(researcher, value);

        if (value != escrow) {
            vm.expectRevert(abi.encodeWithSelector(IDataPolicy.WrongEscrow.selector, value, escrow));
            vm.prank(researcher);
            dp.requestAccess{value: value}(ROOT, epochs, PURPOSE, RESULT_KEY);
            return;
        }
        vm.prank(researcher);
        uint256 jobId = dp.requestAccess{value: value}(ROOT, epochs, PURPOSE, RESULT_KEY);
        assertEq(liveEscrow(dp), escrow, "escrowed");
        assertEq(address(dp).balance, escrow, "held");
        IDataPolicy.Job memory j = dp.job(jobId);
        assertEq(j.pricePerEpoch, price, "price snapshot");
        assertEq(j.epochs, epochs, "epochs snapshot");
    }

    function testFuzz_requestAccess_epochsWithinPolicy(uint256 maxEpochsSeed, uint16 epochs) public {
        uint32 maxEpochs = bound32(maxEpochsSeed, 1, type(uint16).max);
        publishWith(PRICE, maxEpochs, 1, 0x2);
        uint256 value = uint256(PRICE) * epochs;
        vm.deal(researcher, value);
        if (epochs == 0 || epochs > maxEpochs) {
            vm.expectRevert(abi.encodeWithSelector(IDataPolicy.EpochsOutOfRange.selector, uint256(epochs), maxEpochs));
        }
        vm.prank(researcher);
        dp.requestAccess{value: value}(ROOT, epochs, PURPOSE, RESULT_KEY);
    }

    function testFuzz_requestAccess_purposeMustBeAllowed(uint32 allowed, uint8 purpose) public {
        allowed = bound32(allowed, 1, type(uint32).max);
        publishWith(PRICE, 10, 1, allowed);
        bool ok = purpose < 32 && (allowed >> purpose) & 1 == 1;
        if (!ok) vm.expectRevert(abi.encodeWithSelector(IDataPolicy.PurposeNotAllowed.selector, purpose, allowed));
        vm.prank(researcher);
        dp.requestAccess{value: PRICE}(ROOT, 1, purpose, RESULT_KEY);
    }

    function testFuzz_requestAccess_runCapPerWallet(uint256 maxRunsSeed, uint256 attempts) public {
        uint32 maxRuns = bound32(maxRunsSeed, 1, 6);
        attempts = bound(attempts, 1, 8);
        publishWith(PRICE, 10, maxRuns, 0x2);
        for (uint256 i; i < attempts; ++i) {
            if (i >= maxRuns) {
                vm.expectRevert(abi.encodeWithSelector(IDataPolicy.RunLimitReached.selector, ROOT, researcher, maxRuns));
            }
            request(researcher, 1);
        }
        uint256 counted = attempts < maxRuns ? attempts : uint256(maxRuns);
        assertEq(dp.runsUsed(ROOT, researcher), counted, "runs counted");
        assertLe(dp.runsUsed(ROOT, researcher), maxRuns, "never above the cap");
    }

    // ---------------------------------------------------------------- settlement

    /// royalty + fee + refund == escrow, and each party is credited exactly its share.
    function testFuzz_confirm_splitsEscrowExactly(
        uint256 priceSeed,
        uint256 epochsSeed,
        uint256 actualSeed,
        uint256 feeSeed
    ) public {
        uint128 price = bound128(priceSeed, 0, MAX_PRICE);
        uint16 epochs = bound16(epochsSeed, 1, type(uint16).max);
        uint16 actual = bound16(actualSeed, 0, epochs);
        uint16 feeBps = bound16(feeSeed, 0, 1000);
        vm.prank(admin);
        dp.setProtocolFee(feeBps, treasury);
        publishWith(price, type(uint16).max, 1, 0x2);

        uint256 escrow = uint256(price) * epochs;
        vm.deal(researcher, escrow);
        vm.prank(researcher);
        uint256 jobId = dp.requestAccess{value: escrow}(ROOT, epochs, PURPOSE, RESULT_KEY);
        start(jobId);

        uint256 royalty = uint256(price) * actual;
        uint256 fee = royalty * feeBps / 10_000;
        uint256 refund = escrow - royalty;
        vmx.expectEmit(address(dp));
        emit IDataPolicy.JobCompleted(jobId, actual, RESULT_HASH, ATTESTATION, royalty, fee, refund);
        confirm(jobId, actual);

        assertEq(royalty - fee + fee + refund, escrow, "royalty + fee + refund == escrow");
        assertEq(dp.withdrawable(owner), royalty - fee, "owner share");
        assertEq(dp.withdrawable(treasury), fee, "treasury fee");
        assertEq(dp.withdrawable(researcher), refund, "refund");
        assertEq(liveEscrow(dp), 0, "released");
        assertEq(
            address(dp).balance,
            dp.withdrawable(owner) + dp.withdrawable(treasury) + dp.withdrawable(researcher),
            "balance == owed"
        );
        assertEq(dp.runsUsed(ROOT, researcher), 1, "completed run counts");
    }

    /// failJob (from Granted or Running), expire and reclaim return the whole escrow and un-count the run.
    function testFuzz_refundPaths_returnWholeEscrow(uint256 priceSeed, uint256 epochsSeed, uint256 path) public {
        uint128 price = bound128(priceSeed, 0, MAX_PRICE);
        uint16 epochs = bound16(epochsSeed, 1, type(uint16).max);
        path = bound(path, 0, 3);
        publishWith(price, type(uint16).max, 1, 0x2);
        uint256 escrow = uint256(price) * epochs;
        vm.deal(researcher, escrow);
        vm.prank(researcher);
        uint256 jobId = dp.requestAccess{value: escrow}(ROOT, epochs, PURPOSE, RESULT_KEY);

        IDataPolicy.JobState expected;
        if (path == 0) {
            vm.prank(orchestrator);
            dp.failJob(jobId, "no node");
            expected = IDataPolicy.JobState.Failed;
        } else if (path == 1) {
            start(jobId);
            vm.prank(orchestrator);
            dp.failJob(jobId, "node lost");
            expected = IDataPolicy.JobState.Failed;
        } else if (path == 2) {
            vm.warp(START_TIME + 1 hours);
            dp.expire(jobId);
            expected = IDataPolicy.JobState.Expired;
        } else {
            start(jobId);
            vm.warp(START_TIME + RUN_TIMEOUT);
            vm.prank(researcher);
            dp.reclaim(jobId);
            expected = IDataPolicy.JobState.Reclaimed;
        }
        assertEq(uint8(dp.job(jobId).state), uint8(expected), "state");
        assertEq(researcher.balance, escrow, "full refund, paid at once");
        assertEq(dp.withdrawable(researcher), 0, "nothing left to withdraw");
        assertEq(address(dp).balance, 0, "nothing held");
        assertEq(dp.withdrawable(owner), 0, "owner nothing");
        assertEq(dp.withdrawable(treasury), 0, "treasury nothing");
        assertEq(liveEscrow(dp), 0, "released");
        assertEq(dp.runsUsed(ROOT, researcher), 0, "run un-counted");
        // The un-counted run frees the wallet's only slot (maxRunsPerRequester == 1).
        vm.deal(researcher, price);
        vm.prank(researcher);
        dp.requestAccess{value: price}(ROOT, 1, PURPOSE, RESULT_KEY);
    }

    // ---------------------------------------------------------------- time windows

    function testFuzz_grantWindow(uint32 ttl, uint32 elapsed) public {
        ttl = bound32(ttl, 1, type(uint32).max);
        IDataPolicy.Policy memory p = defaultPolicy();
        p.sessionTtl = ttl;
        vm.prank(owner);
        dp.publish(ROOT, orchestrator, ENVELOPE, MANIFEST, p);
        uint256 jobId = request(researcher, 1);
        uint64 expiresAt = START_TIME + ttl;
        assertEq(dp.job(jobId).deadline, expiresAt, "expiresAt");
        vm.warp(uint256(START_TIME) + elapsed);

        if (elapsed < ttl) {
            vm.expectRevert(abi.encodeWithSelector(IDataPolicy.GrantNotExpired.selector, jobId, expiresAt));
            dp.expire(jobId);
            start(jobId);
            assertEq(dp.job(jobId).deadline, uint256(START_TIME) + elapsed + RUN_TIMEOUT, "run deadline");
        } else {
            vm.expectRevert(abi.encodeWithSelector(IDataPolicy.GrantExpired.selector, jobId, expiresAt));
            start(jobId);
            dp.expire(jobId);
        }
    }

    function testFuzz_runDeadline(uint32 elapsed) public {
        publishDefault();
        uint256 jobId = request(researcher, 1);
        start(jobId);
        uint64 runDeadline = START_TIME + RUN_TIMEOUT;
        vm.warp(uint256(START_TIME) + elapsed);
        if (elapsed < RUN_TIMEOUT) {
            vm.expectRevert(abi.encodeWithSelector(IDataPolicy.RunDeadlineNotReached.selector, jobId, runDeadline));
        }
        vm.prank(researcher);
        dp.reclaim(jobId);
    }

    // ---------------------------------------------------------------- helpers

    function publishWith(uint128 price, uint32 maxEpochs, uint32 maxRuns, uint32 purposes) internal {
        IDataPolicy.Policy memory p = IDataPolicy.Policy({
            pricePerEpoch: price,
            maxEpochsPerRun: maxEpochs,
            maxRunsPerRequester: maxRuns,
            sessionTtl: 1 hours,
            allowedPurposes: purposes,
            expiry: 0
        });
        vm.prank(owner);
        dp.publish(ROOT, orchestrator, ENVELOPE, MANIFEST, p);
    }
}
