// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {IDataPolicy} from "../src/IDataPolicy.sol";
import {liveEscrow} from "./utils/Escrow.sol";
import {vm} from "./utils/Cheats.sol";
import {Fixture} from "./utils/Fixture.sol";
import {ReentrantReceiver} from "./utils/Receivers.sol";

/// @notice A malicious receiver re-enters the contract from `receive()` during `withdraw`: it can never take more
///         than it is owed, and the books stay balanced whatever it calls.
contract ReentrancyTest is Fixture {
    ReentrantReceiver internal attacker;
    uint256 internal owed; // the attacker's legitimate balance

    function setUp() public override {
        super.setUp();
        attacker = new ReentrantReceiver(dp);
        vm.deal(address(attacker), 100 ether);
        publishDefault();

        // The attacker is owed a refund of 4 epochs; honest parties are owed (or have escrowed) much more. Its
        // `receive` needs more than the 2300-gas stipend the refund push offers, so the refund is credited.
        uint256 jobId = attacker.requestAccess(ROOT, 4, PURPOSE, RESULT_KEY, 4 * uint256(PRICE));
        vm.prank(orchestrator);
        dp.failJob(jobId, "x");
        owed = 4 * uint256(PRICE);
        assertEq(attacker.attempts(), 0, "the stipend-only push could not run its receive");

        uint256 honest = request(researcher, 10);
        start(honest);
        confirm(honest, 7);
        request(stranger, 10); // live escrow
        assertEq(dp.withdrawable(address(attacker)), owed, "attacker owed");
        assertGe(address(dp).balance, 4 * owed, "the contract holds much more");
    }

    function test_reentrantWithdraw_findsNothing() public {
        attacker.arm(ReentrantReceiver.Attack.Withdraw, ROOT, 0);
        uint256 held = address(dp).balance;

        attacker.withdraw();

        assertEq(attacker.received(), owed, "received exactly its balance");
        assertFalse(attacker.lastReentryOk(), "re-entry failed");
        assertEq(
            attacker.lastReentryData(),
            abi.encodeWithSelector(IDataPolicy.NothingToWithdraw.selector, address(attacker)),
            "its balance was cleared before the transfer"
        );
        assertEq(address(dp).balance, held - owed, "only its balance left the contract");
        assertEq(dp.withdrawable(address(attacker)), 0, "drained");
        assertBooksBalanced();
        withdrawAs(owner);
    }

    function test_reentrantWithdraw_bubblingRevertFailsTheTransfer() public {
        attacker.arm(ReentrantReceiver.Attack.WithdrawBubbling, ROOT, 0);
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.TransferFailed.selector, address(attacker), owed));
        attacker.withdraw();
        assertEq(dp.withdrawable(address(attacker)), owed, "balance kept");
        assertBooksBalanced();
        withdrawAs(owner);
    }

    function test_reentrantRequestAccess_isAnOrdinaryRequest() public {
        attacker.arm(ReentrantReceiver.Attack.RequestAccess, ROOT, 0);
        uint256 nextId = dp.nextJobId();

        attacker.withdraw();

        assertTrue(attacker.lastReentryOk(), "request during the callback is allowed");
        assertEq(abi.decode(attacker.lastReentryData(), (uint256)), nextId, "got the next job id");
        assertEq(dp.job(nextId).researcher, address(attacker), "its job");
        assertEq(attacker.received(), owed, "received exactly its balance");
        assertEq(dp.withdrawable(address(attacker)), 0, "drained");
        assertBooksBalanced();
    }

    function test_reentrantExpire_onlyCreditsTheJobsResearcher() public {
        uint256 victim = request(researcher, 3);
        vm.warp(START_TIME + 1 hours);
        attacker.arm(ReentrantReceiver.Attack.Expire, ROOT, victim);

        attacker.withdraw();

        assertTrue(attacker.lastReentryOk(), "anyone may expire");
        assertEq(uint8(dp.job(victim).state), uint8(IDataPolicy.JobState.Expired), "expired");
        assertEq(attacker.received(), owed, "received exactly its balance");
        assertEq(dp.withdrawable(address(attacker)), 0, "gained nothing");
        assertBooksBalanced();
    }

    function test_reentrantFailJob_isRejected() public {
        uint256 victim = request(researcher, 3);
        attacker.arm(ReentrantReceiver.Attack.FailJob, ROOT, victim);

        attacker.withdraw();

        assertFalse(attacker.lastReentryOk(), "not the orchestrator");
        assertEq(
            attacker.lastReentryData(),
            abi.encodeWithSelector(IDataPolicy.NotJobOrchestrator.selector, victim, address(attacker)),
            "NotJobOrchestrator"
        );
        assertEq(uint8(dp.job(victim).state), uint8(IDataPolicy.JobState.Granted), "untouched");
        assertBooksBalanced();
    }

    function test_reentrantReclaim_creditsAfreshButNeverTwice() public {
        // The attacker also has a running job past its deadline: reclaiming it from the callback credits its
        // balance (already zeroed for this payout), to be withdrawn by a later call, not by this one.
        uint256 own = attacker.requestAccess(ROOT, 2, PURPOSE, RESULT_KEY, 2 * uint256(PRICE));
        start(own);
        vm.warp(START_TIME + RUN_TIMEOUT);
        attacker.arm(ReentrantReceiver.Attack.Reclaim, ROOT, own);

        attacker.withdraw();

        assertTrue(attacker.lastReentryOk(), "reclaim allowed");
        assertEq(attacker.received(), owed, "this payout is the old balance only");
        assertEq(dp.withdrawable(address(attacker)), 2 * uint256(PRICE), "refund credited for later");
        assertBooksBalanced();

        attacker.arm(ReentrantReceiver.Attack.None, ROOT, 0);
        attacker.withdraw();
        assertEq(attacker.received(), owed + 2 * uint256(PRICE), "total received == total owed");
        assertEq(dp.withdrawable(address(attacker)), 0, "drained");
        assertBooksBalanced();
    }

    function assertBooksBalanced() internal view {
        uint256 sum = dp.withdrawable(address(attacker)) + dp.withdrawable(owner) + dp.withdrawable(researcher)
            + dp.withdrawable(stranger) + dp.withdrawable(treasury);
        assertEq(address(dp).balance, sum + liveEscrow(dp), "balance == sum withdrawable + live escrow");
    }
}
