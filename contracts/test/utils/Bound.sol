// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

// Fuzz-input shaping without discarding runs (forge-std's `bound`, re-done here), plus typed variants so that
// call sites need no narrowing casts.

/// Maps `x` into `[min, max]` (inclusive): `x` itself when already inside, otherwise `min + x % (max - min + 1)`.
function bound(uint256 x, uint256 min, uint256 max) pure returns (uint256) {
    require(min <= max, "bound: min > max");
    if (x >= min && x <= max) return x;
    uint256 size = max - min;
    if (size == type(uint256).max) return x;
    return min + (x % (size + 1));
}

function bound8(uint256 x, uint256 min, uint256 max) pure returns (uint8) {
    require(max <= type(uint8).max, "bound8: max too large");
    // forge-lint: disable-next-line(unsafe-typecast)
    return uint8(bound(x, min, max));
}

function bound16(uint256 x, uint256 min, uint256 max) pure returns (uint16) {
    require(max <= type(uint16).max, "bound16: max too large");
    // forge-lint: disable-next-line(unsafe-typecast)
    return uint16(bound(x, min, max));
}

function bound32(uint256 x, uint256 min, uint256 max) pure returns (uint32) {
    require(max <= type(uint32).max, "bound32: max too large");
    // forge-lint: disable-next-line(unsafe-typecast)
    return uint32(bound(x, min, max));
}

function bound64(uint256 x, uint256 min, uint256 max) pure returns (uint64) {
    require(max <= type(uint64).max, "bound64: max too large");
    // forge-lint: disable-next-line(unsafe-typecast)
    return uint64(bound(x, min, max));
}

function bound128(uint256 x, uint256 min, uint256 max) pure returns (uint128) {
    require(max <= type(uint128).max, "bound128: max too large");
    // forge-lint: disable-next-line(unsafe-typecast)
    return uint128(bound(x, min, max));
}
