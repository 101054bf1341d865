//! The AES-256-GCM primitive under the sealed stream, and the choice of its implementation.
//!
//! Owns [`SegmentAead`]: in-place seal with a detached tag and in-place open against a detached
//! tag, under an explicit 96-bit nonce. Native builds use `ring` (BoringSSL's AES-GCM assembly:
//! AES-NI/VAES with CLMUL/VPCLMULQDQ, several times faster than portable code); wasm32 uses
//! RustCrypto `aes-gcm`. Both are standard AES-256-GCM, so they produce identical bytes: the
//! committed vectors (`tests/vectors.rs`) are checked on both.
//!
//! Must never: release plaintext of a failed open (the buffer is wiped, or left as the
//! ciphertext it was); keep the expanded key after drop (it is overwritten on drop); choose a
//! nonce (the caller's STREAM construction does).

/// Length of a GCM nonce.
pub(crate) const NONCE_LEN: usize = 12;
/// Length of a GCM tag.
pub(crate) const AEAD_TAG_LEN: usize = 16;

#[cfg(not(target_family = "wasm"))]
mod native {
    use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, Tag, UnboundKey};

    use super::{AEAD_TAG_LEN, NONCE_LEN};

    pub(crate) const BACKEND: &str = "ring (BoringSSL AES-GCM assembly)";

    pub(crate) struct SegmentAead {
        key: LessSafeKey,
    }

    fn keyed(key: &[u8; 32]) -> LessSafeKey {
        LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte key is valid for AES-256-GCM"),
        )
    }

    impl SegmentAead {
        pub(crate) fn new(key: &[u8; 32]) -> Self {
            SegmentAead { key: keyed(key) }
        }

        pub(crate) fn seal_in_place(
            &self,
            nonce: [u8; NONCE_LEN],
            aad: &[u8],
            data: &mut [u8],
        ) -> [u8; AEAD_TAG_LEN] {
            let tag = self
                .key
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad),
                    data,
                )
                .expect("segments (≤ 16 MiB) are far below AES-GCM's 64 GiB message limit");
            let mut out = [0u8; AEAD_TAG_LEN];
            out.copy_from_slice(tag.as_ref());
            out
        }

        /// On failure `data` is zeroed (ring wipes the unverified plaintext).
        pub(crate) fn open_in_place(
            &self,
            nonce: [u8; NONCE_LEN],
            aad: &[u8],
            data: &mut [u8],
            tag: &[u8; AEAD_TAG_LEN],
        ) -> bool {
            self.key
                .open_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad),
                    Tag::from(*tag),
                    data,
                    0..,
                )
                .is_ok()
        }
    }

    impl Drop for SegmentAead {
        /// ring does not wipe its key schedule: overwrite it in place with the schedule of the
        /// all-zero key, and make the store observable so it is not optimised away.
        fn drop(&mut self) {
            self.key = keyed(&[0u8; 32]);
            std::hint::black_box(&self.key);
        }
    }
}

/// Compiled natively too, for the cross-check test below.
#[cfg(any(target_family = "wasm", test))]
mod portable {
    use aes_gcm::aead::consts::U16;
    use aes_gcm::aead::{AeadInOut, KeyInit, inout::InOutBuf};
    use aes_gcm::{Aes256Gcm, Tag};

    use super::{AEAD_TAG_LEN, NONCE_LEN};

    #[cfg_attr(not(target_family = "wasm"), allow(dead_code))]
    pub(crate) const BACKEND: &str = "RustCrypto aes-gcm";

    /// RustCrypto's key schedule is zeroized on drop (`aes-gcm`'s `zeroize` feature).
    pub(crate) struct SegmentAead {
        key: Aes256Gcm,
    }

    impl SegmentAead {
        pub(crate) fn new(key: &[u8; 32]) -> Self {
            SegmentAead {
                key: Aes256Gcm::new(key.into()),
            }
        }

        pub(crate) fn seal_in_place(
            &self,
            nonce: [u8; NONCE_LEN],
            aad: &[u8],
            data: &mut [u8],
        ) -> [u8; AEAD_TAG_LEN] {
            self.key
                .encrypt_inout_detached(&nonce.into(), aad, InOutBuf::from(data))
                .expect("segments (≤ 16 MiB) are far below AES-GCM's 64 GiB message limit")
                .into()
        }

        /// On failure `data` is left as the ciphertext it was (the tag is checked first).
        pub(crate) fn open_in_place(
            &self,
            nonce: [u8; NONCE_LEN],
            aad: &[u8],
            data: &mut [u8],
            tag: &[u8; AEAD_TAG_LEN],
        ) -> bool {
            let tag = Tag::<U16>::from(*tag);
            self.key
                .decrypt_inout_detached(&nonce.into(), aad, InOutBuf::from(data), &tag)
                .is_ok()
        }
    }
}

#[cfg(not(target_family = "wasm"))]
use native as imp;
#[cfg(target_family = "wasm")]
use portable as imp;

pub(crate) use imp::SegmentAead;

/// Name of the AES-256-GCM implementation compiled in (reported by benches).
pub const AEAD_BACKEND: &str = imp::BACKEND;

#[cfg(all(test, not(target_family = "wasm")))]
mod tests {
    use super::*;

    /// The native backend and the wasm32 one agree byte for byte (ciphertext and tag) and
    /// open each other's output, for every length around the 16-byte block and the 8-block
    /// stride of the wide assembly paths.
    #[test]
    fn native_and_portable_backends_agree() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        };
        for len in (0..300).chain([1023, 1024, 1025, 4096 + 7, 65536]) {
            let key: [u8; 32] = std::array::from_fn(|_| next());
            let nonce: [u8; NONCE_LEN] = std::array::from_fn(|_| next());
            let aad: Vec<u8> = (0..len % 41).map(|_| next()).collect();
            let plain: Vec<u8> = (0..len).map(|_| next()).collect();
            let fast = native::SegmentAead::new(&key);
            let slow = portable::SegmentAead::new(&key);
            let mut a = plain.clone();
            let mut b = plain.clone();
            let tag_a = fast.seal_in_place(nonce, &aad, &mut a);
            let tag_b = slow.seal_in_place(nonce, &aad, &mut b);
            assert_eq!(a, b, "ciphertext, len {len}");
            assert_eq!(tag_a, tag_b, "tag, len {len}");
            assert!(slow.open_in_place(nonce, &aad, &mut a, &tag_a));
            assert_eq!(a, plain);
            assert!(fast.open_in_place(nonce, &aad, &mut b, &tag_b));
            assert_eq!(b, plain);
            // A wrong tag fails on both, and releases nothing.
            let mut bad = tag_a;
            bad[len % AEAD_TAG_LEN] ^= 1;
            let mut c = plain.clone();
            fast.seal_in_place(nonce, &aad, &mut c);
            let sealed = c.clone();
            assert!(!slow.open_in_place(nonce, &aad, &mut c, &bad));
            assert_eq!(c, sealed, "portable leaves the ciphertext");
            assert!(!fast.open_in_place(nonce, &aad, &mut c, &bad));
            assert!(c.iter().all(|&x| x == 0), "native wipes the buffer");
        }
    }
}
