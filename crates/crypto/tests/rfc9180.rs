//! RFC 9180 test vector for exactly the suite LICEN envelopes use (mode_base,
//! DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM), from
//! `tests/vectors/rfc9180-x25519-sha256-aes256gcm.json`.
//!
//! Checks, through the `hpke` crate's public API: DeriveKeyPair(ikmR/ikmE) → skRm/pkRm/pkEm;
//! SetupBaseS with an RNG yielding ikmE → enc and every encryption (in sequence order); SetupBaseR
//! → every decryption and export. Independently of `hpke`, recomputes the DHKEM shared secret
//! and the key schedule (key_schedule_context, secret, key, base_nonce, exporter_secret) with
//! HKDF-SHA256, and decrypts the first ciphertext with plain AES-256-GCM under key/base_nonce.

mod common;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use common::FixedRng;
use hkdf::{Hkdf, HkdfExtract};
use hpke::aead::AesGcm256;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
use serde::Deserialize;
use sha2::Sha256;

#[derive(Deserialize)]
struct File {
    vector: Vector,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Vector {
    mode: u8,
    kem_id: u16,
    kdf_id: u16,
    aead_id: u16,
    info: String,
    #[serde(rename = "ikmR")]
    ikm_r: String,
    #[serde(rename = "ikmE")]
    ikm_e: String,
    #[serde(rename = "skRm")]
    sk_rm: String,
    #[serde(rename = "skEm")]
    sk_em: String,
    #[serde(rename = "pkRm")]
    pk_rm: String,
    #[serde(rename = "pkEm")]
    pk_em: String,
    enc: String,
    shared_secret: String,
    key_schedule_context: String,
    secret: String,
    key: String,
    base_nonce: String,
    exporter_secret: String,
    encryptions: Vec<Encryption>,
    exports: Vec<Export>,
}

#[derive(Deserialize)]
struct Encryption {
    aad: String,
    ct: String,
    nonce: String,
    pt: String,
}

#[derive(Deserialize)]
struct Export {
    #[serde(rename = "exporter_context")]
    context: String,
    #[serde(rename = "L")]
    length: usize,
    #[serde(rename = "exported_value")]
    value: String,
}

fn unh(s: &str) -> Vec<u8> {
    hex::decode(s).expect("hex")
}

fn load() -> Vector {
    let text = std::fs::read_to_string(common::vector_path("rfc9180-x25519-sha256-aes256gcm.json"))
        .expect("read RFC 9180 vector file");
    let file: File = serde_json::from_str(&text).expect("parse RFC 9180 vector file");
    let v = file.vector;
    assert_eq!(
        (v.mode, v.kem_id, v.kdf_id, v.aead_id),
        (0, 0x0020, 0x0001, 0x0002),
        "the vector must be for LICEN's suite"
    );
    v
}

type Ctx = (Vec<u8>, Vec<u8>);

fn clamp(mut k: Vec<u8>) -> Vec<u8> {
    k[0] &= 248;
    k[31] &= 127;
    k[31] |= 64;
    k
}

#[test]
fn derive_keypair_matches() {
    let v = load();
    let (sk_r, pk_r) = X25519HkdfSha256::derive_keypair(&unh(&v.ikm_r));
    assert_eq!(hex::encode(pk_r.to_bytes()), v.pk_rm);
    // hpke stores the clamped scalar; RFC 9180 lists it unclamped.
    assert_eq!(sk_r.to_bytes().to_vec(), clamp(unh(&v.sk_rm)));
    let (sk_e, pk_e) = X25519HkdfSha256::derive_keypair(&unh(&v.ikm_e));
    assert_eq!(hex::encode(pk_e.to_bytes()), v.pk_em);
    assert_eq!(sk_e.to_bytes().to_vec(), clamp(unh(&v.sk_em)));
    // The same derivation is licen_crypto::keypair_from_seed.
    let ikm_r: [u8; 32] = unh(&v.ikm_r).try_into().unwrap();
    let (_, ours) = licen_crypto::keypair_from_seed(&ikm_r);
    assert_eq!(hex::encode(ours.to_bytes()), v.pk_rm);
}

#[test]
fn sender_encryptions_and_receiver_decryptions_match() {
    let v = load();
    let info = unh(&v.info);
    let pk_r = <X25519HkdfSha256 as Kem>::PublicKey::from_bytes(&unh(&v.pk_rm)).unwrap();
    let sk_r = <X25519HkdfSha256 as Kem>::PrivateKey::from_bytes(&unh(&v.sk_rm)).unwrap();

    let mut rng = FixedRng::new(&unh(&v.ikm_e));
    let (enc, mut sender) = hpke::setup_sender_with_rng::<AesGcm256, HkdfSha256, X25519HkdfSha256>(
        &OpModeS::Base,
        &pk_r,
        &info,
        &mut rng,
    )
    .unwrap();
    assert!(rng.is_exhausted());
    assert_eq!(hex::encode(enc.to_bytes()), v.enc);

    let enc_r = <X25519HkdfSha256 as Kem>::EncappedKey::from_bytes(&unh(&v.enc)).unwrap();
    let mut receiver = hpke::setup_receiver::<AesGcm256, HkdfSha256, X25519HkdfSha256>(
        &OpModeR::Base,
        &sk_r,
        &enc_r,
        &info,
    )
    .unwrap();

    assert!(v.encryptions.len() > 1);
    for (i, e) in v.encryptions.iter().enumerate() {
        let ct = sender.seal(&unh(&e.pt), &unh(&e.aad)).unwrap();
        assert_eq!(hex::encode(&ct), e.ct, "encryption {i}");
        let pt = receiver.open(&unh(&e.ct), &unh(&e.aad)).unwrap();
        assert_eq!(hex::encode(pt), e.pt, "decryption {i}");
    }
    for (i, x) in v.exports.iter().enumerate() {
        let mut out = vec![0u8; x.length];
        receiver.export(&unh(&x.context), &mut out).unwrap();
        assert_eq!(hex::encode(&out), x.value, "export {i} (receiver)");
        sender.export(&unh(&x.context), &mut out).unwrap();
        assert_eq!(hex::encode(&out), x.value, "export {i} (sender)");
    }
}

// ----- independent key schedule (RFC 9180 §4.1, §5.1) -------------------------------------------

const KEM_SUITE: &[u8] = &[b'K', b'E', b'M', 0x00, 0x20];
const HPKE_SUITE: &[u8] = &[b'H', b'P', b'K', b'E', 0x00, 0x20, 0x00, 0x01, 0x00, 0x02];

fn labeled_extract(suite: &[u8], salt: &[u8], label: &[u8], ikm: &[u8]) -> Vec<u8> {
    let mut x = HkdfExtract::<Sha256>::new(Some(salt));
    for part in [b"HPKE-v1".as_slice(), suite, label, ikm] {
        x.input_ikm(part);
    }
    x.finalize().0.to_vec()
}

fn labeled_expand(suite: &[u8], prk: &[u8], label: &[u8], info: &[u8], len: usize) -> Vec<u8> {
    let hk = Hkdf::<Sha256>::from_prk(prk).unwrap();
    let l = u16::try_from(len).unwrap().to_be_bytes();
    let mut out = vec![0u8; len];
    hk.expand_multi_info(&[&l, b"HPKE-v1", suite, label, info], &mut out)
        .unwrap();
    out
}

fn key_schedule(v: &Vector) -> (Vec<u8>, Ctx, Vec<u8>, Vec<u8>) {
    // DHKEM Encap with the ephemeral key from the vector.
    let sk_e: [u8; 32] = unh(&v.sk_em).try_into().unwrap();
    let pk_r: [u8; 32] = unh(&v.pk_rm).try_into().unwrap();
    let dh = x25519_dalek::x25519(sk_e, pk_r);
    let kem_context = [unh(&v.enc), pk_r.to_vec()].concat();
    let eae_prk = labeled_extract(KEM_SUITE, b"", b"eae_prk", &dh);
    let shared_secret = labeled_expand(KEM_SUITE, &eae_prk, b"shared_secret", &kem_context, 32);
    // KeySchedule(mode_base, shared_secret, info, psk = "", psk_id = "").
    let psk_id_hash = labeled_extract(HPKE_SUITE, b"", b"psk_id_hash", b"");
    let info_hash = labeled_extract(HPKE_SUITE, b"", b"info_hash", &unh(&v.info));
    let ksc = [vec![0u8], psk_id_hash, info_hash].concat();
    let secret = labeled_extract(HPKE_SUITE, &shared_secret, b"secret", b"");
    let key = labeled_expand(HPKE_SUITE, &secret, b"key", &ksc, 32);
    let base_nonce = labeled_expand(HPKE_SUITE, &secret, b"base_nonce", &ksc, 12);
    let exporter_secret = labeled_expand(HPKE_SUITE, &secret, b"exp", &ksc, 32);
    (
        shared_secret,
        (ksc, secret),
        [key, base_nonce].concat(),
        exporter_secret,
    )
}

#[test]
fn key_schedule_matches() {
    let v = load();
    let (shared_secret, (ksc, secret), key_nonce, exporter_secret) = key_schedule(&v);
    assert_eq!(hex::encode(&shared_secret), v.shared_secret);
    assert_eq!(hex::encode(&ksc), v.key_schedule_context);
    assert_eq!(hex::encode(&secret), v.secret);
    assert_eq!(hex::encode(&key_nonce[..32]), v.key);
    assert_eq!(hex::encode(&key_nonce[32..]), v.base_nonce);
    assert_eq!(hex::encode(&exporter_secret), v.exporter_secret);

    // Sequence 0 uses base_nonce itself; the AEAD is plain AES-256-GCM.
    let first = &v.encryptions[0];
    assert_eq!(first.nonce, v.base_nonce);
    let aead = aes_gcm::Aes256Gcm::new_from_slice(&key_nonce[..32]).unwrap();
    let nonce: [u8; 12] = key_nonce[32..].try_into().unwrap();
    let pt = aead
        .decrypt(
            &nonce.into(),
            Payload {
                msg: &unh(&first.ct),
                aad: &unh(&first.aad),
            },
        )
        .unwrap();
    assert_eq!(hex::encode(pt), first.pt);
}
