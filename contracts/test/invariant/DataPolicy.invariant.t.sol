// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {DataPolicy} from "../../src/DataPolicy.sol";
import {IDataPolicy} from "../../src/IDataPolicy.sol";
import {liveEscrow} from "../utils/Escrow.sol";
import {vm, vmx} from "../utils/Cheats.sol";
import {TestBase} from "../utils/TestBase.sol";
import {DataPolicyHandler} from "./DataPolicyHandler.sol";

/// @notice DESIGN.md §4 invariants over random action sequences (see {DataPolicyHandler}).
contract DataPolicyInvariantTest is TestBase {
    DataPolicy internal dp;
    DataPolicyHandler internal handler;

    function setUp() public {
        vm.warp(1_750_000_000);
        address admin = makeAddr("admin");
        address[2] memory orchestrators = [makeAddr("orchestrator0"), makeAddr("orchestrator1")];
        address[2] memory treasuries = [makeAddr("treasury0"), makeAddr("treasury1")];
        dp = new DataPolicy(admin, treasuries[0], 250, 2 days);
        vm.startPrank(admin);
        dp.registerOrchestrator(orchestrators[0], keccak256("key0"));
        dp.registerOrchestrator(orchestrators[1], keccak256("key1"));
        vm.stopPrank();
        handler = new DataPolicyHandler(dp, admin, orchestrators, treasuries);
        // Two datasets from the start (one paid, one free), so that every sequence has something to request.
        handler.publish(0, 0, 0.5 ether + 1, 7 | (uint256(2) << 64));
        handler.publish(1, 1, 0, 3 | (uint256(1) << 64));

        targetContract(address(handler));
        // Weighted: requests and the orchestrator's calls drive everything else.
        bytes4[] memory selectors = new bytes4[](18);
        selectors[0] = handler.publish.selector;
        selectors[1] = handler.updatePolicy.selector;
        selectors[2] = handler.togglePause.selector;
        selectors[3] = handler.setProtocolFee.selector;
        selectors[4] = handler.toggleOrchestrator.selector;
        selectors[5] = handler.requestAccess.selector;
        selectors[6] = handler.requestAccess.selector;
        selectors[7] = handler.requestAccess.selector;
        selectors[8] = handler.startJob.selector;
        selectors[9] = handler.startJob.selector;
        selectors[10] = handler.confirm.selector;
        selectors[11] = handler.confirm.selector;
        selectors[12] = handler.failJob.selector;
        selectors[13] = handler.expire.selector;
        selectors[14] = handler.reclaim.selector;
        selectors[15] = handler.withdraw.selector;
        selectors[16] = handler.withdraw.selector;
        selectors[17] = handler.warp.selector;
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
    }

    /// (1) The contract holds exactly what it owes: Σ withdrawable + Σ live escrow.
    function invariant_balanceCoversOwedAndEscrow() public view {
        address[] memory accounts = handler.allAccounts();
        uint256 owed;
        for (uint256 i; i < accounts.length; ++i) {
            owed += dp.withdrawable(accounts[i]);
        }
        assertEq(address(dp).balance, owed + liveEscrow(dp), "balance == sum withdrawable + live escrow");
        assertEq(liveEscrow(dp), handler.ghostLiveEscrow(), "job views == ghost escrow of live jobs");
    }

    /// (2) Every settled job credited exactly its escrow (royalty - fee + fee + refund) and released it.
    function invariant_settlementSplitsEscrowExactly() public view {
        uint256[] memory settled = handler.settledJobs();
        for (uint256 i; i < settled.length; ++i) {
            uint256 id = settled[i];
            assertEq(handler.ghostCredited(id), handler.ghostEscrow(id), "royalty + fee + refund == escrow");
            assertEq(handler.ghostReleased(id), handler.ghostEscrow(id), "escrow released once");
        }
    }

    /// (3) A job that reached a terminal state is still in it.
    function invariant_terminalStatesAreFinal() public view {
        uint256[] memory ids = handler.jobs();
        for (uint256 i; i < ids.length; ++i) {
            IDataPolicy.JobState terminal = handler.ghostTerminal(ids[i]);
            IDataPolicy.JobState state = dp.job(ids[i]).state;
            if (terminal != IDataPolicy.JobState.None) {
                assertEq(uint8(state), uint8(terminal), "terminal state changed");
            } else {
                assertTrue(
                    state == IDataPolicy.JobState.Granted || state == IDataPolicy.JobState.Running,
                    "unsettled job is live"
                );
            }
        }
    }

    /// (4) No wallet's run count exceeds its dataset's cap, and it counts exactly the live and completed runs.
    function invariant_runsWithinCap() public view {
        bytes32[] memory roots = handler.roots();
        address[] memory actors = handler.actors();
        for (uint256 r; r < roots.length; ++r) {
            (,,, IDataPolicy.Policy memory p) = dp.datasetInfo(roots[r]);
            uint32 index = handler.indexOf(roots[r]);
            for (uint256 a; a < actors.length; ++a) {
                uint256 used = dp.runsUsed(roots[r], actors[a]);
                assertLe(used, p.maxRunsPerRequester, "runs within cap");
                assertEq(used, handler.ghostRuns(index, actors[a]), "runs == live + completed");
            }
        }
    }

    /// Job ids stay dense and sequential.
    function invariant_jobIdsSequential() public view {
        assertEq(dp.nextJobId(), handler.jobs().length + 1, "next id");
    }
}
