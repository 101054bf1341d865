// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {IDataPolicy} from "../../src/IDataPolicy.sol";

/// Σ escrow of live (`Granted` or `Running`) jobs, summed from the job views — what the contract must hold on top
/// of every withdrawable balance. The contract keeps no running total (it would cost every request, settlement and
/// refund a write), so tests and the indexer sum it.
function liveEscrow(IDataPolicy dp) view returns (uint256 total) {
    uint256 next = dp.nextJobId();
    for (uint256 id = 1; id < next; ++id) {
        IDataPolicy.Job memory j = dp.job(id);
        if (j.state == IDataPolicy.JobState.Granted || j.state == IDataPolicy.JobState.Running) {
            total += uint256(j.pricePerEpoch) * j.epochs;
        }
    }
}
