//! keccak-256 backend selection. Owns nothing but the choice of implementation and the batch
//! entry points a Merkle tree needs:
//!
//! - one input at a time: CRYPTOGAMS assembly (`keccak-asm`) on x86_64/aarch64, `tiny-keccak`
//!   elsewhere (wasm32);
//! - batches of equal-length inputs ([`hash_chunks`], [`hash_pairs_in_place`]): eight at a
//!   time on AVX-512 (`avx512`), else four on AVX2 (`avx2`), chosen at run time; two at a time
//!   on WebAssembly SIMD (`simd128`, in the browser). That is what makes a 0G root cheaper
//!   than three scalar permutations per 256 bytes; the single-input backend otherwise. All
//!   share one round function (`rounds`).
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
#[cfg(all(target_arch = "x86_64", not(target_family = "wasm")))]
mod avx512;
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
    multiway::name().unwrap_or(imp::BACKEND)
}

/// The multi-way batch backends, where this target has them. Each function hashes a prefix of
/// the batch and returns how many outputs it wrote (0 without a backend); the caller finishes
/// the rest one input at a time.
#[cfg(any(
    all(target_arch = "x86_64", not(target_family = "wasm")),
    all(target_arch = "wasm32", target_feature = "simd128")
))]
mod multiway {
    use super::{B256, CHUNK};

    /// A backend hashing `N` equal-length inputs per call (each backend module implements it;
    /// x86 backends only on a token proving the CPU feature).
    pub(super) trait Ways<const N: usize>: Copy {
        /// `out[i] = keccak256(chunks[i])`.
        fn chunks(self, chunks: [&[u8; CHUNK]; N]) -> [B256; N];
        /// `out[i] = keccak256(pairs[i].0 ‖ pairs[i].1)` (Merkle parents).
        fn pairs(self, pairs: [(&B256, &B256); N]) -> [B256; N];
    }

    #[cfg(all(target_arch = "x86_64", not(target_family = "wasm")))]
    mod x86 {
        use super::super::avx2::Avx2;
        use super::super::avx512::Avx512;
        use super::{B256, chunks_with, pairs_with};

        pub(in super::super) fn name() -> Option<&'static str> {
            if Avx512::detect().is_some() {
                Some("AVX-512 8-way (batches) + keccak-asm (single inputs)")
            } else if Avx2::detect().is_some() {
                Some("AVX2 4-way (batches) + keccak-asm (single inputs)")
            } else {
                None
            }
        }

        /// The widest backend this CPU has.
        pub(in super::super) fn hash_chunks(data: &[u8], out: &mut [B256]) -> usize {
            if let Some(b) = Avx512::detect() {
                chunks_with(b, data, out)
            } else if let Some(b) = Avx2::detect() {
                chunks_with(b, data, out)
            } else {
                0
            }
        }

        pub(in super::super) fn hash_pairs_in_place(level: &mut [B256]) -> usize {
            if let Some(b) = Avx512::detect() {
                pairs_with(b, level)
            } else if let Some(b) = Avx2::detect() {
                pairs_with(b, level)
            } else {
                0
            }
        }

        /// Every backend this CPU has, narrowest first, as (name, chunks, pairs) (tests).
        #[cfg(test)]
        pub(in super::super) fn each() -> Vec<super::Backend> {
            let mut all: Vec<super::Backend> = Vec::new();
            if let Some(b) = Avx2::detect() {
                all.push((
                    "AVX2",
                    Box::new(move |d, o| chunks_with(b, d, o)),
                    Box::new(move |l| pairs_with(b, l)),
                ));
            }
            if let Some(b) = Avx512::detect() {
                all.push((
                    "AVX-512",
                    Box::new(move |d, o| chunks_with(b, d, o)),
                    Box::new(move |l| pairs_with(b, l)),
                ));
            }
            all
        }
    }
    #[cfg(all(test, target_arch = "x86_64", not(target_family = "wasm")))]
    pub(super) use x86::each;
    #[cfg(all(target_arch = "x86_64", not(target_family = "wasm")))]
    pub(super) use x86::{hash_chunks, hash_pairs_in_place, name};

    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    mod wasm {
        use super::super::simd128::Simd128;
        use super::{B256, chunks_with, pairs_with};

        pub(in super::super) fn name() -> Option<&'static str> {
            Some("simd128 2-way (batches) + tiny-keccak (single inputs)")
        }

        pub(in super::super) fn hash_chunks(data: &[u8], out: &mut [B256]) -> usize {
            chunks_with(Simd128, data, out)
        }

        pub(in super::super) fn hash_pairs_in_place(level: &mut [B256]) -> usize {
            pairs_with(Simd128, level)
        }
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    pub(super) use wasm::{hash_chunks, hash_pairs_in_place, name};

    /// A backend's name and batch functions, boxed (tests).
    #[cfg(test)]
    pub(super) type Backend = (
        &'static str,
        Box<dyn Fn(&[u8], &mut [B256]) -> usize>,
        Box<dyn Fn(&mut [B256]) -> usize>,
    );

    /// Hashes the longest prefix of `out` made of whole groups of `N` chunks.
    fn chunks_with<const N: usize, B: Ways<N>>(backend: B, data: &[u8], out: &mut [B256]) -> usize {
        for (group, digests) in data.chunks_exact(N * CHUNK).zip(out.chunks_exact_mut(N)) {
            let chunks: [&[u8; CHUNK]; N] = std::array::from_fn(|i| {
                group[i * CHUNK..(i + 1) * CHUNK]
                    .try_into()
                    .expect("256-byte chunk")
            });
            digests.copy_from_slice(&backend.chunks(chunks));
        }
        out.len() / N * N
    }

    /// Hashes the longest prefix of the parents of `level` made of whole groups of `N`.
    fn pairs_with<const N: usize, B: Ways<N>>(backend: B, level: &mut [B256]) -> usize {
        let pairs = level.len() / 2;
        // Parents i..i+N read children 2i..2i+2N: at or after index i + N once i > 0 (i is a
        // multiple of N), and read before the write when i == 0, so writing in place never
        // clobbers an unread child.
        let mut i = 0;
        while i + N <= pairs {
            let children = &level[2 * i..2 * (i + N)];
            let inputs: [(&B256, &B256); N] =
                std::array::from_fn(|k| (&children[2 * k], &children[2 * k + 1]));
            let parents = backend.pairs(inputs);
            level[i..i + N].copy_from_slice(&parents);
            i += N;
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

    pub(super) fn name() -> Option<&'static str> {
        None
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

    /// Each batch backend this CPU has, not only the widest one the dispatch picks, matches
    /// the reference on batches that leave remainders for the caller.
    #[cfg(all(target_arch = "x86_64", not(target_family = "wasm")))]
    #[test]
    fn every_batch_backend_matches_reference() {
        let backends = multiway::each();
        if backends.is_empty() {
            println!("SKIPPED: this CPU has neither AVX2 nor AVX-512F");
        }
        let data: Vec<u8> = (0..37 * CHUNK).map(|i| (i * 131 + 7) as u8).collect();
        let level: Vec<B256> = (0..41u8).map(B256::repeat_byte).collect();
        for (name, chunks, pairs) in backends {
            let mut out = vec![B256::ZERO; 37];
            let done = chunks(&data, &mut out);
            assert!(done > 0 && done <= 37, "{name} hashed {done} chunks");
            for (i, digest) in out[..done].iter().enumerate() {
                assert_eq!(
                    *digest,
                    reference(&data[i * CHUNK..(i + 1) * CHUNK]),
                    "{name} chunk {i}"
                );
            }
            let mut reduced = level.clone();
            let done = pairs(&mut reduced);
            assert!(done > 0, "{name} hashed no parents");
            for i in 0..done {
                let mut both = level[2 * i].to_vec();
                both.extend_from_slice(&level[2 * i + 1].0);
                assert_eq!(reduced[i], reference(&both), "{name} parent {i}");
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
