// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {IDataPolicy} from "../../src/IDataPolicy.sol";

/// @notice A researcher that is a contract: it requests access with the escrow it holds.
abstract contract ResearcherContract {
    IDataPolicy internal immutable dp;

    constructor(IDataPolicy dp_) {
        dp = dp_;
    }

    function requestAccess(bytes32 root, uint16 epochs, uint8 purpose, bytes32 resultKey, uint256 value)
        external
        returns (uint256)
    {
        return dp.requestAccess{value: value}(root, epochs, purpose, resultKey);
    }
}

/// @notice A researcher contract that cannot receive the native token (no receive/fallback).
contract RejectingReceiver is ResearcherContract {
    constructor(IDataPolicy dp_) ResearcherContract(dp_) {}

    function withdraw() external {
        dp.withdraw();
    }
}

/// @notice A researcher contract whose `receive` burns every unit of gas it is given.
contract GasBurningReceiver is ResearcherContract {
    constructor(IDataPolicy dp_) ResearcherContract(dp_) {}

    receive() external payable {
        while (true) {}
    }
}

/// @notice A researcher contract whose `receive` re-enters the DataPolicy. Each re-entry is a low-level call whose
///         outcome is recorded, so the test can check both that the lock fired and what the attacker got.
contract ReentrantReceiver {
    enum Attack {
        None,
        Withdraw,
        WithdrawBubbling,
        RequestAccess,
        Expire,
        FailJob,
        Reclaim
    }

    IDataPolicy internal immutable dp;
    Attack public attack;
    bytes32 public root;
    uint256 public targetJob;
    uint256 public attempts;
    uint256 public received;
    bool public lastReentryOk;
    bytes public lastReentryData;

    constructor(IDataPolicy dp_) {
        dp = dp_;
    }

    function arm(Attack attack_, bytes32 root_, uint256 targetJob_) external {
        attack = attack_;
        root = root_;
        targetJob = targetJob_;
    }

    function requestAccess(bytes32 root_, uint16 epochs, uint8 purpose, bytes32 resultKey, uint256 value)
        external
        returns (uint256)
    {
        return dp.requestAccess{value: value}(root_, epochs, purpose, resultKey);
    }

    function withdraw() external {
        dp.withdraw();
    }

    receive() external payable {
        received += msg.value;
        if (attempts >= 3) return; // bounded recursion whatever the outcome
        ++attempts;
        Attack a = attack;
        bytes memory data;
        uint256 value;
        if (a == Attack.Withdraw || a == Attack.WithdrawBubbling) {
            data = abi.encodeCall(IDataPolicy.withdraw, ());
        } else if (a == Attack.RequestAccess) {
            (,,, IDataPolicy.Policy memory p) = dp.datasetInfo(root);
            value = p.pricePerEpoch;
            data = abi.encodeCall(IDataPolicy.requestAccess, (root, 1, 1, keccak256("attacker key")));
        } else if (a == Attack.Expire) {
            data = abi.encodeCall(IDataPolicy.expire, (targetJob));
        } else if (a == Attack.FailJob) {
            data = abi.encodeCall(IDataPolicy.failJob, (targetJob, "attacker"));
        } else if (a == Attack.Reclaim) {
            data = abi.encodeCall(IDataPolicy.reclaim, (targetJob));
        } else {
            return;
        }
        (bool ok, bytes memory ret) = address(dp).call{value: value}(data);
        lastReentryOk = ok;
        lastReentryData = ret;
        if (!ok && a == Attack.WithdrawBubbling) {
            assembly ("memory-safe") {
                revert(add(ret, 0x20), mload(ret))
            }
        }
    }
}
