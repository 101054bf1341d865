//! Four keccak-256 hashes at once on AVX2: each 256-bit register holds the same lane of four
//! independent keccak-f[1600] states, so one permutation's worth of vector instructions does
//! four permutations. A 0G root is made of equal-length inputs (256-byte leaves, 64-byte
//! parents) in large batches, which is exactly the shape this needs; a scalar keccak cannot
//! go below three permutations per 256 bytes however fast it is (measured in the storage bench).
//!
//! Owns only the vector permutation and the fixed-length absorb/squeeze around it. Must never
//! be entered without AVX2: [`Avx2`] can only be obtained from a successful runtime check,
//! and it is the only way in.

use core::arch::x86_64::{
    __m256i, _mm256_andnot_si256, _mm256_or_si256, _mm256_set_epi64x, _mm256_set1_epi64x,
    _mm256_setzero_si256, _mm256_shuffle_epi8, _mm256_slli_epi64, _mm256_srli_epi64,
    _mm256_xor_si256,
};

use alloy_primitives::B256;

/// Proof that the running CPU has AVX2 (obtained only from [`Avx2::detect`]).
#[derive(Clone, Copy, Debug)]
pub(super) struct Avx2(());

impl Avx2 {
    /// Inputs hashed per call.
    pub(super) const WAYS: usize = 4;

    /// `Some` when the CPU supports AVX2 (std caches the CPUID answer).
    pub(super) fn detect() -> Option<Self> {
        std::is_x86_feature_detected!("avx2").then_some(Avx2(()))
    }

    /// `out[i] = keccak256(chunks[i])` for four 256-byte chunks.
    #[inline]
    pub(super) fn chunks(self, chunks: [&[u8; 256]; 4]) -> [B256; 4] {
        // SAFETY: an `Avx2` exists only after `is_x86_feature_detected!("avx2")` returned true,
        // which is the one precondition of calling a `#[target_feature(enable = "avx2")]` fn.
        #[allow(unsafe_code)]
        unsafe {
            chunks_x4(chunks)
        }
    }

    /// `out[i] = keccak256(pairs[i].0 ‖ pairs[i].1)` for four Merkle parents.
    #[inline]
    pub(super) fn pairs(self, pairs: [(&B256, &B256); 4]) -> [B256; 4] {
        // SAFETY: as in `chunks`: the token proves AVX2 is present.
        #[allow(unsafe_code)]
        unsafe {
            pairs_x4(pairs)
        }
    }
}

/// keccak's rate for a 256-bit output: 136 bytes, 17 lanes.
const RATE_LANES: usize = 17;

type State = [__m256i; 25];

/// Each 64-bit lane rotated left by `$n` bits (AVX2 has no vector rotate: two shifts and an or).
macro_rules! rol {
    ($x:expr, $n:literal) => {{
        let x = $x;
        _mm256_or_si256(
            _mm256_slli_epi64::<$n>(x),
            _mm256_srli_epi64::<{ 64 - $n }>(x),
        )
    }};
}

#[target_feature(enable = "avx2")]
fn xor(a: __m256i, b: __m256i) -> __m256i {
    _mm256_xor_si256(a, b)
}

/// Each lane rotated left by 8 bits: a byte shuffle, one instruction instead of three.
#[target_feature(enable = "avx2")]
fn rol8(x: __m256i) -> __m256i {
    let shuffle = _mm256_set_epi64x(
        0x0e0d_0c0b_0a09_080f,
        0x0605_0403_0201_0007,
        0x0e0d_0c0b_0a09_080f,
        0x0605_0403_0201_0007,
    );
    _mm256_shuffle_epi8(x, shuffle)
}

/// Each lane rotated left by 56 bits (right by 8): a byte shuffle.
#[target_feature(enable = "avx2")]
fn rol56(x: __m256i) -> __m256i {
    let shuffle = _mm256_set_epi64x(
        0x080f_0e0d_0c0b_0a09,
        0x0007_0605_0403_0201,
        0x080f_0e0d_0c0b_0a09,
        0x0007_0605_0403_0201,
    );
    _mm256_shuffle_epi8(x, shuffle)
}

/// keccak-f[1600] on four states at once. Lane `x + 5y` of the state is `a[x + 5 * y]`.
#[target_feature(enable = "avx2")]
fn permute(a: &mut State) {
    keccak_f1600_rounds!(a, xor, andnot, rol, rol8, rol56, splat);
}

/// `!a & b` in each lane (χ).
#[target_feature(enable = "avx2")]
fn andnot(a: __m256i, b: __m256i) -> __m256i {
    _mm256_andnot_si256(a, b)
}

/// The same 64-bit value in every lane (ι's round constant).
#[target_feature(enable = "avx2")]
fn splat(value: u64) -> __m256i {
    _mm256_set1_epi64x(value as i64)
}

/// Lane `lane` (8 little-endian bytes at `8 * lane`) of each of four inputs, one per 64-bit
/// element.
#[target_feature(enable = "avx2")]
fn gather(inputs: [&[u8]; 4], lane: usize) -> __m256i {
    let word = |i: usize| {
        let bytes: [u8; 8] = inputs[i][8 * lane..8 * lane + 8]
            .try_into()
            .expect("8-byte lane");
        u64::from_le_bytes(bytes) as i64
    };
    _mm256_set_epi64x(word(3), word(2), word(1), word(0))
}

/// The first 32 bytes of each state: the four keccak-256 digests.
#[target_feature(enable = "avx2")]
fn squeeze(a: &State) -> [B256; 4] {
    let mut out = [B256::ZERO; 4];
    for (lane, register) in a.iter().enumerate().take(4) {
        let words: [u64; 4] = bytemuck::cast(*register);
        for (digest, word) in out.iter_mut().zip(words) {
            digest.0[8 * lane..8 * lane + 8].copy_from_slice(&word.to_le_bytes());
        }
    }
    out
}

/// keccak's multi-rate padding, for a message that ends `len` bytes into its last block.
#[target_feature(enable = "avx2")]
fn pad(a: &mut State, len: usize) {
    debug_assert!(len.is_multiple_of(8) && len < 8 * RATE_LANES);
    a[len / 8] = xor(a[len / 8], _mm256_set1_epi64x(0x01));
    a[RATE_LANES - 1] = xor(a[RATE_LANES - 1], _mm256_set1_epi64x(i64::MIN));
}

/// keccak256 of four 256-byte inputs: one full block of 136 bytes, then 120 bytes and padding.
#[target_feature(enable = "avx2")]
fn chunks_x4(chunks: [&[u8; 256]; 4]) -> [B256; 4] {
    let inputs = chunks.map(|c| &c[..]);
    let mut a: State = [_mm256_setzero_si256(); 25];
    for (lane, slot) in a.iter_mut().enumerate().take(RATE_LANES) {
        *slot = gather(inputs, lane);
    }
    permute(&mut a);
    let second = chunks.map(|c| &c[8 * RATE_LANES..]);
    for (lane, slot) in a.iter_mut().enumerate().take((256 - 8 * RATE_LANES) / 8) {
        *slot = xor(*slot, gather(second, lane));
    }
    pad(&mut a, 256 - 8 * RATE_LANES);
    permute(&mut a);
    squeeze(&a)
}

/// keccak256 of four 64-byte inputs (`left ‖ right`): one block with padding.
#[target_feature(enable = "avx2")]
fn pairs_x4(pairs: [(&B256, &B256); 4]) -> [B256; 4] {
    let mut a: State = [_mm256_setzero_si256(); 25];
    let lefts = pairs.map(|(l, _)| &l.0[..]);
    let rights = pairs.map(|(_, r)| &r.0[..]);
    for lane in 0..4 {
        a[lane] = gather(lefts, lane);
        a[lane + 4] = gather(rights, lane);
    }
    pad(&mut a, 64);
    permute(&mut a);
    squeeze(&a)
}
