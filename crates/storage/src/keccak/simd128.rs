//! Two keccak-256 hashes at once on WebAssembly SIMD (`simd128`): each 128-bit register holds
//! the same lane of two independent keccak-f[1600] states. The browser computes 0G roots of
//! whole datasets, and its engines compile these instructions to the CPU's vector unit, so a
//! leaf batch costs about as many instructions as one scalar permutation, with native
//! and-not and no per-lane bounds.
//!
//! Owns only the vector lane operations and the fixed-length absorb/squeeze around the shared
//! rounds. Compiled only when the build enables `simd128` (`.cargo/config.toml` does for
//! wasm32): a WebAssembly module either validates with its SIMD instructions or does not load
//! at all, so there is nothing to detect at run time.

use core::arch::wasm32::{
    i8x16_shuffle, u64x2, u64x2_extract_lane, u64x2_shl, u64x2_shr, u64x2_splat, v128, v128_andnot,
    v128_or, v128_xor,
};

use alloy_primitives::B256;

/// The backend handle (always available: see the module doc).
#[derive(Clone, Copy, Debug)]
pub(super) struct Simd128;

impl super::multiway::Ways<2> for Simd128 {
    /// `out[i] = keccak256(chunks[i])` for two 256-byte chunks.
    fn chunks(self, chunks: [&[u8; 256]; 2]) -> [B256; 2] {
        chunks_x(chunks)
    }

    /// `out[i] = keccak256(pairs[i].0 ‖ pairs[i].1)` for two Merkle parents.
    fn pairs(self, pairs: [(&B256, &B256); 2]) -> [B256; 2] {
        pairs_x(pairs)
    }
}

type State = [v128; 25];

/// Each 64-bit lane rotated left by `$n` bits: two shifts and an or.
macro_rules! rol {
    ($x:expr, $n:literal) => {{
        let x = $x;
        v128_or(u64x2_shl(x, $n), u64x2_shr(x, 64 - $n))
    }};
}

fn xor(a: v128, b: v128) -> v128 {
    v128_xor(a, b)
}

/// `!a & b` in each lane (χ). WebAssembly's `v128.andnot` is `a & !b`, hence the swap.
fn andnot(a: v128, b: v128) -> v128 {
    v128_andnot(b, a)
}

fn splat(value: u64) -> v128 {
    u64x2_splat(value)
}

/// Each lane rotated left by 8 bits: one byte shuffle.
fn rol8(x: v128) -> v128 {
    i8x16_shuffle::<7, 0, 1, 2, 3, 4, 5, 6, 15, 8, 9, 10, 11, 12, 13, 14>(x, x)
}

/// Each lane rotated left by 56 bits (right by 8): one byte shuffle.
fn rol56(x: v128) -> v128 {
    i8x16_shuffle::<1, 2, 3, 4, 5, 6, 7, 0, 9, 10, 11, 12, 13, 14, 15, 8>(x, x)
}

/// keccak-f[1600] on two states at once. Lane `x + 5y` of the state is `a[x + 5 * y]`.
fn permute(a: &mut State) {
    keccak_f1600_rounds!(a, xor, andnot, rol, rol8, rol56, splat);
}

/// Lane `lane` (8 little-endian bytes at `8 * lane`) of each of two inputs.
fn gather(inputs: [&[u8]; 2], lane: usize) -> v128 {
    let word = |i: usize| {
        let bytes: [u8; 8] = inputs[i][8 * lane..8 * lane + 8]
            .try_into()
            .expect("8-byte lane");
        u64::from_le_bytes(bytes)
    };
    u64x2(word(0), word(1))
}

/// The first 32 bytes of each state: the two keccak-256 digests.
fn squeeze(a: &State) -> [B256; 2] {
    let mut out = [B256::ZERO; 2];
    for (lane, register) in a.iter().enumerate().take(4) {
        let words = [
            u64x2_extract_lane::<0>(*register),
            u64x2_extract_lane::<1>(*register),
        ];
        for (digest, word) in out.iter_mut().zip(words) {
            digest.0[8 * lane..8 * lane + 8].copy_from_slice(&word.to_le_bytes());
        }
    }
    out
}

fixed_length_hashes!(ways = 2);
