//! keccak-256 backend selection. Owns nothing but the choice of implementation: CRYPTOGAMS
//! assembly (`keccak-asm`) on x86_64/aarch64, `tiny-keccak` elsewhere (wasm32). Both produce
//! identical output; the choice is purely about speed (measured in the README).

use alloy_primitives::B256;

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

/// Name of the keccak implementation compiled in (reported by benches).
pub(crate) const BACKEND: &str = imp::BACKEND;
