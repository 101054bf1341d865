// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {IDataPolicy} from "../src/IDataPolicy.sol";
import {vm} from "./utils/Cheats.sol";
import {Fixture} from "./utils/Fixture.sol";
import {RejectingReceiver} from "./utils/Receivers.sol";

/// @notice The budgeted transactions, for `forge test --match-contract GasScenarioTest --gas-report` and the
///         committed `.gas-snapshot`. forge reports each top-level call as its own transaction (21000 base,
///         calldata, cold storage, refunds), the same with or without `--isolate`. Every call comes from a funded
///         EOA that is both `msg.sender` and `tx.origin`, as on a chain; the amounts are realistic (non-zero fee,
///         partial refund), so every credit writes a fresh balance slot. The full refunds of failJob, expire and reclaim
///         are paid in the same call to a researcher that accepts a plain transfer, credited otherwise.
contract GasScenarioTest is Fixture {
    /// publish → first requestAccess of the wallet → startJob → confirmTrainingComplete (5 of 8 epochs, 2.5 % fee)
    /// → owner withdraw → researcher withdraw.
    function test_gas_lifecycle() public {
        publishDefault();
        uint256 jobId = request(researcher, 8);
        start(jobId);
        confirm(jobId, 5);
        withdrawAs(owner);
        withdrawAs(researcher);
        assertEq(dp.withdrawable(owner) + dp.withdrawable(researcher), 0, "both paid");
    }

    /// The treasury sweeping its accrued fees (not part of the lifecycle).
    function test_gas_treasuryWithdraw() public {
        publishDefault();
        uint256 jobId = request(researcher, 8);
        start(jobId);
        confirm(jobId, 5);
        withdrawAs(treasury);
    }

    /// failJob on a running job of an externally owned researcher: the refund is paid in the same call.
    function test_gas_failJob_refundPaid() public {
        publishDefault();
        uint256 jobId = request(researcher, 8);
        start(jobId);
        uint256 before = researcher.balance;
        vm.prank(orchestrator, orchestrator);
        dp.failJob(jobId, "attestation rejected");
        assertEq(researcher.balance - before, 8 * uint256(PRICE), "refunded");
    }

    /// failJob on a running job of a researcher contract that refuses a stipend-only transfer (the slow path): the
    /// push fails and the refund is credited to a fresh balance slot.
    function test_gas_failJob_refundCreditedToAContractWallet() public {
        publishDefault();
        RejectingReceiver wallet = new RejectingReceiver(dp);
        vm.deal(address(wallet), 1 ether);
        uint256 jobId = wallet.requestAccess(ROOT, 8, PURPOSE, RESULT_KEY, 8 * uint256(PRICE));
        start(jobId);
        vm.prank(orchestrator, orchestrator);
        dp.failJob(jobId, "attestation rejected");
        assertEq(dp.withdrawable(address(wallet)), 8 * uint256(PRICE), "credited");
    }
}
