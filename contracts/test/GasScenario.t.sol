// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {IDataPolicy} from "../src/IDataPolicy.sol";
import {vm} from "./utils/Cheats.sol";
import {Fixture} from "./utils/Fixture.sol";

/// @notice The budgeted transactions, for `forge test --match-contract GasScenarioTest --gas-report` and the
///         committed `.gas-snapshot`. forge reports each top-level call as its own transaction (21000 base,
///         calldata, cold storage, refunds), the same with or without `--isolate`. Every call comes from a funded
///         EOA that is both `msg.sender` and `tx.origin`, as on a chain; the amounts are realistic (non-zero fee,
///         partial refund), so every credit writes a fresh balance slot.
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

    /// failJob on a running job whose researcher has no other balance: the refund writes a fresh balance slot.
    function test_gas_failJob_firstCredit() public {
        publishDefault();
        uint256 jobId = request(researcher, 8);
        start(jobId);
        vm.prank(orchestrator, orchestrator);
        dp.failJob(jobId, "attestation rejected");
    }

    /// failJob on a running job whose researcher is already owed something (an earlier refund not yet withdrawn).
    function test_gas_failJob_existingBalance() public {
        publishDefault();
        uint256 first = request(researcher, 8);
        start(first);
        confirm(first, 5);
        uint256 jobId = request(researcher, 8);
        start(jobId);
        vm.prank(orchestrator, orchestrator);
        dp.failJob(jobId, "attestation rejected");
        assertEq(uint8(dp.job(jobId).state), uint8(IDataPolicy.JobState.Failed), "failed");
    }
}
