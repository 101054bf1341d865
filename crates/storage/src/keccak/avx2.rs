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
    _mm256_shuffle_epi8, _mm256_slli_epi64, _mm256_srli_epi64, _mm256_xor_si256,
};

use alloy_primitives::B256;

/// Proof that the running CPU has AVX2 (obtained only from [`Avx2::detect`]).
#[derive(Clone, Copy, Debug)]
pub(super) struct Avx2(());

impl Avx2 {
    /// `Some` when the CPU supports AVX2 (std caches the CPUID answer).
    pub(super) fn detect() -> Option<Self> {
        std::is_x86_feature_detected!("avx2").then_some(Avx2(()))
    }
}

impl super::multiway::Ways<4> for Avx2 {
    /// `out[i] = keccak256(chunks[i])` for four 256-byte chunks.
    #[inline]
    fn chunks(self, chunks: [&[u8; 256]; 4]) -> [B256; 4] {
        // SAFETY: an `Avx2` exists only after `is_x86_feature_detected!("avx2")` returned true,
        // which is the one precondition of calling a `#[target_feature(enable = "avx2")]` fn.
        #[allow(unsafe_code)]
        unsafe {
            chunks_x(chunks)
        }
    }

    /// `out[i] = keccak256(pairs[i].0 ‖ pairs[i].1)` for four Merkle parents.
    #[inline]
    fn pairs(self, pairs: [(&B256, &B256); 4]) -> [B256; 4] {
        // SAFETY: as in `chunks`: the token proves AVX2 is present.
        #[allow(unsafe_code)]
        unsafe {
            pairs_x(pairs)
        }
    }
}

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

/// Each 128-bit half's bytes picked by `low` (bytes 0..8) and `high` (bytes 8..16): a
/// byte-aligned rotation in one instruction instead of three.
#[target_feature(enable = "avx2")]
fn shuffle_bytes(x: __m256i, low: i64, high: i64) -> __m256i {
    _mm256_shuffle_epi8(x, _mm256_set_epi64x(high, low, high, low))
}

/// Each lane rotated left by 8 bits.
#[target_feature(enable = "avx2")]
fn rol8(x: __m256i) -> __m256i {
    shuffle_bytes(x, 0x0605_0403_0201_0007, 0x0e0d_0c0b_0a09_080f)
}

/// Each lane rotated left by 56 bits (right by 8).
#[target_feature(enable = "avx2")]
fn rol56(x: __m256i) -> __m256i {
    shuffle_bytes(x, 0x0007_0605_0403_0201, 0x080f_0e0d_0c0b_0a09)
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

fixed_length_hashes!(
    #[target_feature(enable = "avx2")]
    ways = 4
);
