//! keccak-256 backend selection. Owns nothing but the choice of implementation and the batch
//! entry points a Merkle tree needs:
//!
//! - one input at a time: CRYPTOGAMS assembly (`keccak-asm`) on x86_64/aarch64, `tiny-keccak`
//!   elsewhere (wasm32);
//! - batches of equal-length inputs ([`hash_chunks`], [`hash_pairs_in_place`]): four at a time
//!   on AVX2 (`avx2`, chosen at run time), two at a time on WebAssembly SIMD (`simd128`, in
//!   the browser), which is what makes a 0G root cheaper than three scalar permutations per
//!   256 bytes; the single-input backend otherwise. Both share one round function (`rounds`).
//!
//! Every backend produces identical output (tests compare them on random inputs); the choice is
//! purely about speed (measured in the storage bench).

use alloy_primitives::B256;

#[cfg(any(
    all(target_arch = "x86_64", not(target_family = "wasm")),
    all(target_arch = "wasm32", target_feature = "simd128")
))]
#[macro_use]
mod rounds;

#[cfg(all(target_arch = "x86_64", not(target_family = "wasm")))]
mod avx2;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128;

#[cfg(all(
    any(target_arch = "x86_64", target_arch = "aarch64"),
    not(target_family = "wasm")
))]
mod imp {
    use alloy_primitives::B256;
    use keccak_asm::Keccak256;

    #[inline]
    pub(crate) fn keccak256(data: &[u8]) -> B256 {
        B256::from(<[u8; 32]>::from(Keccak256::digest(data)))
    }

    /// One 64-byte digest rather than two streaming updates: keccak-asm loads fixed 64-byte
    /// inputs straight into the state (no block buffer), which makes Merkle parents,
    /// a third of all permutations in a 0G root, markedly cheaper (the storage bench compares).
    #[inline]
    pub(crate) fn keccak256_pair(a: &[u8; 32], b: &[u8; 32]) -> B256 {
        let mut both = [0u8; 64];
        both[..32].copy_from_slice(a);
        both[32..].copy_from_slice(b);
        B256::from(<[u8; 32]>::from(Keccak256::digest(both)))
    }

    pub(crate) const BACKEND: &str = "keccak-asm";
}

#[cfg(not(all(
    any(target_arch = "x86_64", target_arch = "aarch64"),
    not(target_family = "wasm")
)))]
mod imp {
    use alloy_primitives::B256;
    use tiny_keccak::{Hasher, Keccak};

    #[inline]
    pub(crate) fn keccak256(data: &[u8]) -> B256 {
        let mut out = [0u8; 32];
        let mut h = Keccak::v256();
        h.update(data);
        h.finalize(&mut out);
        B256::from(out)
    }

    #[inline]
    pub(crate) fn keccak256_pair(a: &[u8; 32], b: &[u8; 32]) -> B256 {
        let mut out = [0u8; 32];
        let mut h = Keccak::v256();
        h.update(a);
        h.update(b);
        h.finalize(&mut out);
        B256::from(out)
    }

    pub(crate) const BACKEND: &str = "tiny-keccak";
}

/// Bytes in a Merkle leaf (a 0G chunk).
const CHUNK: usize = 256;

/// keccak-256 of `data`.
#[inline]
pub(crate) fn keccak256(data: &[u8]) -> B256 {
    imp::keccak256(data)
}

/// keccak-256 of `a ‖ b` (a Merkle parent).
#[inline]
pub(crate) fn keccak256_pair(a: &B256, b: &B256) -> B256 {
    imp::keccak256_pair(&a.0, &b.0)
}

/// `out[i] = keccak256(data[256 i .. 256 (i + 1)])`. `data.len()` must be `256 * out.len()`.
pub(crate) fn hash_chunks(data: &[u8], out: &mut [B256]) {
    assert_eq!(
        data.len(),
        CHUNK * out.len(),
        "hash_chunks: data is not out.len() chunks"
    );
    let done = multiway::hash_chunks(data, out);
    for (digest, chunk) in out[done..]
        .iter_mut()
        .zip(data[done * CHUNK..].chunks_exact(CHUNK))
    {
        *digest = keccak256(chunk);
    }
}

/// One Merkle level up, in place: `level[i] = keccak256(level[2i] ‖ level[2i + 1])` for
/// `i < level.len() / 2`. Entries from `level.len() / 2` on are left as they were (the caller
/// promotes an unpaired last node and truncates).
pub(crate) fn hash_pairs_in_place(level: &mut [B256]) {
    let pairs = level.len() / 2;
    for i in multiway::hash_pairs_in_place(level)..pairs {
        level[i] = keccak256_pair(&level[2 * i], &level[2 * i + 1]);
    }
}

/// Name of the keccak implementation(s) in use on this CPU (reported by benches).
pub(crate) fn backend() -> &'static str {
    multiway::NAME
        .filter(|_| multiway::available())
        .unwrap_or(imp::BACKEND)
}

/// The multi-way batch backend, where this target has one. Each function hashes a prefix of
/// the batch and returns how many outputs it wrote (0 without a backend); the caller finishes
/// the rest one input at a time.
#[cfg(any(
    all(target_arch = "x86_64", not(target_family = "wasm")),
    all(target_arch = "wasm32", target_feature = "simd128")
))]
mod multiway {
    #[cfg(all(target_arch = "x86_64", not(target_family = "wasm")))]
    use super::avx2::Avx2 as Backend;
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    use super::simd128::Simd128 as Backend;
    use super::{B256, CHUNK};

    #[cfg(all(target_arch = "x86_64", not(target_family = "wasm")))]
    pub(super) const NAME: Option<&str> = Some("AVX2 4-way (batches) + keccak-asm (single inputs)");
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    pub(super) const NAME: Option<&str> =
        Some("simd128 2-way (batches) + tiny-keccak (single inputs)");

    const WAYS: usize = Backend::WAYS;

    pub(super) fn available() -> bool {
        Backend::detect().is_some()
    }

    pub(super) fn hash_chunks(data: &[u8], out: &mut [B256]) -> usize {
        let Some(simd) = Backend::detect() else {
            return 0;
        };
        for (group, digests) in data
            .chunks_exact(WAYS * CHUNK)
            .zip(out.chunks_exact_mut(WAYS))
        {
            let chunks: [&[u8; CHUNK]; WAYS] = std::array::from_fn(|i| {
                group[i * CHUNK..(i + 1) * CHUNK]
                    .try_into()
                    .expect("256-byte chunk")
            });
            digests.copy_from_slice(&simd.chunks(chunks));
        }
        out.len() / WAYS * WAYS
    }

    pub(super) fn hash_pairs_in_place(level: &mut [B256]) -> usize {
        let Some(simd) = Backend::detect() else {
            return 0;
        };
        let pairs = level.len() / 2;
        // Parents i..i+WAYS read children 2i..2i+2·WAYS: at or after index i + WAYS once i > 0
        // (i is a multiple of WAYS), and read before the write when i == 0, so writing in place
        // never clobbers an unread child.
        let mut i = 0;
        while i + WAYS <= pairs {
            let children = &level[2 * i..2 * (i + WAYS)];
            let inputs: [(&B256, &B256); WAYS] =
                std::array::from_fn(|k| (&children[2 * k], &children[2 * k + 1]));
            let parents = simd.pairs(inputs);
            level[i..i + WAYS].copy_from_slice(&parents);
            i += WAYS;
        }
        i
    }
}

#[cfg(not(any(
    all(target_arch = "x86_64", not(target_family = "wasm")),
    all(target_arch = "wasm32", target_feature = "simd128")
)))]
mod multiway {
    use super::B256;

    pub(super) const NAME: Option<&str> = None;

    pub(super) fn available() -> bool {
        false
    }

    pub(super) fn hash_chunks(_data: &[u8], _out: &mut [B256]) -> usize {
        0
    }

    pub(super) fn hash_pairs_in_place(_level: &mut [B256]) -> usize {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reference(data: &[u8]) -> B256 {
        use tiny_keccak::{Hasher, Keccak};
        let mut out = [0u8; 32];
        let mut h = Keccak::v256();
        h.update(data);
        h.finalize(&mut out);
        B256::from(out)
    }

    proptest! {
        #[test]
        fn batched_chunks_equal_one_at_a_time(
            data in proptest::collection::vec(any::<u8>(), 0..(11 * CHUNK)),
        ) {
            let whole = data.len() / CHUNK * CHUNK;
            let data = &data[..whole];
            let mut out = vec![B256::ZERO; whole / CHUNK];
            hash_chunks(data, &mut out);
            for (digest, chunk) in out.iter().zip(data.chunks_exact(CHUNK)) {
                prop_assert_eq!(*digest, reference(chunk));
            }
        }

        #[test]
        fn batched_pairs_equal_one_at_a_time(
            seed in proptest::collection::vec(any::<[u8; 32]>(), 0..23),
        ) {
            let level: Vec<B256> = seed.into_iter().map(B256::from).collect();
            let mut reduced = level.clone();
            hash_pairs_in_place(&mut reduced);
            for i in 0..level.len() / 2 {
                let mut both = level[2 * i].to_vec();
                both.extend_from_slice(&level[2 * i + 1].0);
                prop_assert_eq!(reduced[i], reference(&both));
            }
            for i in level.len() / 2..level.len() {
                prop_assert_eq!(reduced[i], level[i]);
            }
        }
    }

    #[test]
    fn single_input_backend_matches_reference() {
        for len in [0, 1, 135, 136, 137, 256, 1000] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            assert_eq!(keccak256(&data), reference(&data), "length {len}");
        }
    }
}
