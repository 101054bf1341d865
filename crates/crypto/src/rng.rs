//! Operating-system randomness for the convenience constructors (feature `os-rng`).
//!
//! Owns [`OsRng`], a zero-sized handle on the platform CSPRNG: `getrandom` on native targets,
//! `crypto.getRandomValues` through wasm-bindgen on `wasm32-unknown-unknown`. Every function of
//! this crate that needs randomness takes an explicit `&mut impl CryptoRng`; `OsRng` is simply
//! the one to pass in production.
//!
//! Must never: seed or cache randomness itself, fall back to a weaker source, or be used by
//! tests that need reproducible output (those pass their own deterministic RNG).

use rand_core::{Infallible, TryCryptoRng, TryRng, UnwrapErr};

/// The platform's cryptographically secure random number generator.
///
/// # Panics
/// Its methods panic if the platform source fails, which on supported platforms only happens
/// when the platform is broken (no `/dev/urandom`, no `crypto.getRandomValues`).
#[derive(Clone, Copy, Debug, Default)]
pub struct OsRng;

impl TryRng for OsRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        UnwrapErr(getrandom::SysRng).try_next_u32()
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        UnwrapErr(getrandom::SysRng).try_next_u64()
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        UnwrapErr(getrandom::SysRng).try_fill_bytes(dst)
    }
}

impl TryCryptoRng for OsRng {}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::Rng;

    #[test]
    fn produces_different_output() {
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        OsRng.fill_bytes(&mut a);
        OsRng.fill_bytes(&mut b);
        assert_ne!(a, b);
    }
}
