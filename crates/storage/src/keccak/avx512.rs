//! Eight keccak-256 hashes at once on AVX-512: each 512-bit register holds the same lane of
//! eight independent keccak-f[1600] states. Twice the ways of [`super::avx2`], and AVX-512 has
//! a vector rotate (`vprolq`), so each ρ rotation is one instruction instead of three. A
//! storage node checks every uploaded segment's proof with these batches, so on CPUs with
//! AVX-512 this halves its keccak cost (measured in the storage bench).
//!
//! Owns only the vector lane operations and the fixed-length absorb/squeeze around the shared
//! rounds. Must never be entered without AVX-512F: [`Avx512`] can only be obtained from a
//! successful runtime check, and it is the only way in.

use core::arch::x86_64::{
    __m512i, _mm512_andnot_si512, _mm512_extracti64x4_epi64, _mm512_rol_epi64, _mm512_set_epi64,
    _mm512_set1_epi64, _mm512_xor_si512,
};

use alloy_primitives::B256;

/// Proof that the running CPU has AVX-512F (obtained only from [`Avx512::detect`]).
#[derive(Clone, Copy, Debug)]
pub(super) struct Avx512(());

impl Avx512 {
    /// `Some` when the CPU supports AVX-512F (std caches the CPUID answer).
    pub(super) fn detect() -> Option<Self> {
        std::is_x86_feature_detected!("avx512f").then_some(Avx512(()))
    }
}

impl super::multiway::Ways<8> for Avx512 {
    /// `out[i] = keccak256(chunks[i])` for eight 256-byte chunks.
    #[inline]
    fn chunks(self, chunks: [&[u8; 256]; 8]) -> [B256; 8] {
        // SAFETY: an `Avx512` exists only after `is_x86_feature_detected!("avx512f")` returned
        // true, the one precondition of calling a `#[target_feature(enable = "avx512f")]` fn.
        #[allow(unsafe_code)]
        unsafe {
            chunks_x(chunks)
        }
    }

    /// `out[i] = keccak256(pairs[i].0 ‖ pairs[i].1)` for eight Merkle parents.
    #[inline]
    fn pairs(self, pairs: [(&B256, &B256); 8]) -> [B256; 8] {
        // SAFETY: as in `chunks`: the token proves AVX-512F is present.
        #[allow(unsafe_code)]
        unsafe {
            pairs_x(pairs)
        }
    }
}

type State = [__m512i; 25];

/// Each 64-bit lane rotated left by `$n` bits: one `vprolq`.
macro_rules! rol {
    ($x:expr, $n:literal) => {
        _mm512_rol_epi64::<$n>($x)
    };
}

#[target_feature(enable = "avx512f")]
fn xor(a: __m512i, b: __m512i) -> __m512i {
    _mm512_xor_si512(a, b)
}

/// Each lane rotated left by 8 bits (a rotate is one instruction here, as any other).
#[target_feature(enable = "avx512f")]
fn rol8(x: __m512i) -> __m512i {
    _mm512_rol_epi64::<8>(x)
}

/// Each lane rotated left by 56 bits.
#[target_feature(enable = "avx512f")]
fn rol56(x: __m512i) -> __m512i {
    _mm512_rol_epi64::<56>(x)
}

/// keccak-f[1600] on eight states at once. Lane `x + 5y` of the state is `a[x + 5 * y]`.
#[target_feature(enable = "avx512f")]
fn permute(a: &mut State) {
    keccak_f1600_rounds!(a, xor, andnot, rol, rol8, rol56, splat);
}

/// `!a & b` in each lane (χ).
#[target_feature(enable = "avx512f")]
fn andnot(a: __m512i, b: __m512i) -> __m512i {
    _mm512_andnot_si512(a, b)
}

/// The same 64-bit value in every lane (ι's round constant).
#[target_feature(enable = "avx512f")]
fn splat(value: u64) -> __m512i {
    _mm512_set1_epi64(value as i64)
}

/// Lane `lane` (8 little-endian bytes at `8 * lane`) of each of eight inputs, one per 64-bit
/// element.
#[target_feature(enable = "avx512f")]
fn gather(inputs: [&[u8]; 8], lane: usize) -> __m512i {
    let word = |i: usize| {
        let bytes: [u8; 8] = inputs[i][8 * lane..8 * lane + 8]
            .try_into()
            .expect("8-byte lane");
        u64::from_le_bytes(bytes) as i64
    };
    _mm512_set_epi64(
        word(7),
        word(6),
        word(5),
        word(4),
        word(3),
        word(2),
        word(1),
        word(0),
    )
}

/// The first 32 bytes of each state: the eight keccak-256 digests.
#[target_feature(enable = "avx512f")]
fn squeeze(a: &State) -> [B256; 8] {
    let mut out = [B256::ZERO; 8];
    for (lane, register) in a.iter().enumerate().take(4) {
        // Elements 0..4 and 4..8, as two 256-bit halves (plain data from here on).
        let low: [u64; 4] = bytemuck::cast(_mm512_extracti64x4_epi64::<0>(*register));
        let high: [u64; 4] = bytemuck::cast(_mm512_extracti64x4_epi64::<1>(*register));
        for (digest, word) in out.iter_mut().zip(low.into_iter().chain(high)) {
            digest.0[8 * lane..8 * lane + 8].copy_from_slice(&word.to_le_bytes());
        }
    }
    out
}

fixed_length_hashes!(
    #[target_feature(enable = "avx512f")]
    ways = 8
);
