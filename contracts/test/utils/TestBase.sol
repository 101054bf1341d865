// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {vm, vmx} from "./Cheats.sol";

/// @notice A minimal stand-in for forge-std's `Test` (the npm forge-std 1.1.2 `Test` needs ds-test, which is not
///         available here). Assertions are forge's assertion cheatcodes: a failing one reverts with a message
///         naming both sides, and forge 1.x counts a reverting test as failed.
abstract contract TestBase {
    // ------------------------------------------------------------ assertions

    function assertTrue(bool condition, string memory what) internal pure {
        vmx.assertTrue(condition, what);
    }

    function assertFalse(bool condition, string memory what) internal pure {
        vmx.assertFalse(condition, what);
    }

    function assertEq(bool left, bool right, string memory what) internal pure {
        vmx.assertEq(left, right, what);
    }

    function assertEq(uint256 left, uint256 right, string memory what) internal pure {
        vmx.assertEq(left, right, what);
    }

    function assertEq(address left, address right, string memory what) internal pure {
        vmx.assertEq(left, right, what);
    }

    function assertEq(bytes32 left, bytes32 right, string memory what) internal pure {
        vmx.assertEq(left, right, what);
    }

    function assertEq(bytes memory left, bytes memory right, string memory what) internal pure {
        vmx.assertEq(left, right, what);
    }

    function assertLe(uint256 left, uint256 right, string memory what) internal pure {
        vmx.assertLe(left, right, what);
    }

    function assertGe(uint256 left, uint256 right, string memory what) internal pure {
        vmx.assertGe(left, right, what);
    }

    function fail(string memory what) internal pure {
        vmx.assertTrue(false, what);
    }

    // ------------------------------------------------------------ helpers

    /// A deterministic labelled address with no code.
    function makeAddr(string memory name) internal returns (address account) {
        account = address(uint160(uint256(keccak256(abi.encodePacked(name)))));
        vm.label(account, name);
    }

    // ------------------------------------------------------------ invariant targeting

    /// Same layout as forge-std's `StdInvariant.FuzzSelector`: forge reads it from `targetSelectors()`.
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    address[] private _targetedContracts;
    FuzzSelector[] private _targetedSelectors;
    address[] private _targetedSenders;

    function targetContract(address target) internal {
        _targetedContracts.push(target);
    }

    function targetSelector(FuzzSelector memory selector) internal {
        _targetedSelectors.push(selector);
    }

    function targetSender(address sender) internal {
        _targetedSenders.push(sender);
    }

    function targetContracts() public view returns (address[] memory) {
        return _targetedContracts;
    }

    function targetSelectors() public view returns (FuzzSelector[] memory) {
        return _targetedSelectors;
    }

    function targetSenders() public view returns (address[] memory) {
        return _targetedSenders;
    }
}
