//! Property tests of the key envelope: round trips, and any change of recipient key, kind,
//! dataset root, job id or envelope byte fails with its specific error.

mod common;

use common::{TestRng, variant};
use licen_crypto::envelope::{
    ENVELOPE_LEN, EnvelopeContext, EnvelopeKind, generate_keypair, keypair_from_seed, open_key,
    reseal_key, seal_key,
};
use licen_crypto::{Error, StreamKey};
use proptest::prelude::*;

fn context(kind: u8, job_id: [u8; 32], dataset_root: [u8; 32]) -> EnvelopeContext {
    match kind % 3 {
        0 => EnvelopeContext::OwnerToOrchestrator { dataset_root },
        1 => EnvelopeContext::OrchestratorToNode {
            job_id,
            dataset_root,
        },
        _ => EnvelopeContext::NodeToResearcher {
            job_id,
            dataset_root,
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn round_trip(seed in any::<u64>(), key in any::<[u8; 32]>(), kind in 0u8..3, job in any::<[u8; 32]>(), root in any::<[u8; 32]>()) {
        let mut rng = TestRng(seed);
        let (sk, pk) = generate_keypair(&mut rng);
        let ctx = context(kind, job, root);
        let env = seal_key(&pk, &StreamKey::from_bytes(key), &ctx, &mut rng).unwrap();
        prop_assert_eq!(env.as_bytes().len(), ENVELOPE_LEN);
        prop_assert_eq!(env.as_bytes()[0], 1);
        prop_assert_eq!(env.as_bytes()[1], ctx.kind() as u8);
        let opened = open_key(&sk, env.as_bytes(), &ctx).unwrap();
        prop_assert_eq!(opened.as_bytes(), &key);
    }

    #[test]
    fn wrong_root_or_job_id_fails(seed in any::<u64>(), kind in 0u8..3, job in any::<[u8; 32]>(), root in any::<[u8; 32]>(), byte in 0usize..32, mask in 1u8..=255, which in any::<bool>()) {
        let mut rng = TestRng(seed);
        let (sk, pk) = generate_keypair(&mut rng);
        let ctx = context(kind, job, root);
        let env = seal_key(&pk, &StreamKey::from_bytes([7; 32]), &ctx, &mut rng).unwrap();
        let (mut job2, mut root2) = (job, root);
        if which && kind % 3 != 0 {
            job2[byte] ^= mask;
        } else {
            root2[byte] ^= mask;
        }
        let err = open_key(&sk, env.as_bytes(), &context(kind, job2, root2)).unwrap_err();
        prop_assert!(matches!(err, Error::EnvelopeOpenFailed { kind: k } if k == ctx.kind()), "{}", err);
    }

    #[test]
    fn wrong_secret_key_fails(seed in any::<u64>(), kind in 0u8..3, root in any::<[u8; 32]>()) {
        let mut rng = TestRng(seed);
        let (_, pk) = generate_keypair(&mut rng);
        let (other_sk, _) = generate_keypair(&mut rng);
        let ctx = context(kind, [1; 32], root);
        let env = seal_key(&pk, &StreamKey::from_bytes([7; 32]), &ctx, &mut rng).unwrap();
        let err = open_key(&other_sk, env.as_bytes(), &ctx).unwrap_err();
        prop_assert!(matches!(err, Error::EnvelopeOpenFailed { .. }), "{}", err);
    }

    #[test]
    fn other_kind_fails(seed in any::<u64>(), kind in 0u8..3, shift in 1u8..3, root in any::<[u8; 32]>()) {
        let mut rng = TestRng(seed);
        let (sk, pk) = generate_keypair(&mut rng);
        let ctx = context(kind, [1; 32], root);
        let env = seal_key(&pk, &StreamKey::from_bytes([7; 32]), &ctx, &mut rng).unwrap();
        let other = context(kind + shift, [1; 32], root);
        let err = open_key(&sk, env.as_bytes(), &other).unwrap_err();
        prop_assert!(matches!(err, Error::EnvelopeKindMismatch { .. }), "{}", err);
        // Rewriting the kind byte to match does not help: info differs, so HPKE fails.
        let mut forged = env.to_vec();
        forged[1] = other.kind() as u8;
        let err = open_key(&sk, &forged, &other).unwrap_err();
        prop_assert!(matches!(err, Error::EnvelopeOpenFailed { .. }), "{}", err);
    }

    #[test]
    fn any_bit_flip_fails(seed in any::<u64>(), kind in 0u8..3, at in 0usize..ENVELOPE_LEN, bit in 0u8..8) {
        let mut rng = TestRng(seed);
        let (sk, pk) = generate_keypair(&mut rng);
        let ctx = context(kind, [1; 32], [2; 32]);
        let env = seal_key(&pk, &StreamKey::from_bytes([7; 32]), &ctx, &mut rng).unwrap();
        let mut bad = env.to_vec();
        bad[at] ^= 1 << bit;
        let err = open_key(&sk, &bad, &ctx).unwrap_err();
        let expected = match at {
            0 => "UnsupportedEnvelopeVersion",
            1 if matches!(bad[1], 1..=3) => "EnvelopeKindMismatch",
            1 => "UnknownEnvelopeKind",
            _ => "EnvelopeOpenFailed",
        };
        prop_assert_eq!(variant(&err), expected);
    }

    #[test]
    fn wrong_length_fails(len in 0usize..200) {
        prop_assume!(len != ENVELOPE_LEN);
        let (sk, _) = keypair_from_seed(&[1; 32]);
        let ctx = context(0, [0; 32], [0; 32]);
        let err = open_key(&sk, &vec![1u8; len], &ctx).unwrap_err();
        prop_assert!(matches!(err, Error::EnvelopeLength { found, expected: ENVELOPE_LEN } if found == len), "{}", err);
    }
}

#[test]
fn orchestrator_reseal_binds_job_and_root() {
    let mut rng = TestRng(99);
    let (orch_sk, orch_pk) = generate_keypair(&mut rng);
    let (node_sk, node_pk) = generate_keypair(&mut rng);
    let key = StreamKey::generate(&mut rng);
    let root = [0xAA; 32];
    let owner_ctx = EnvelopeContext::OwnerToOrchestrator { dataset_root: root };
    let from_owner = seal_key(&orch_pk, &key, &owner_ctx, &mut rng).unwrap();
    let node_ctx = EnvelopeContext::OrchestratorToNode {
        job_id: licen_crypto::envelope::job_id_from_u64(5),
        dataset_root: root,
    };
    let to_node = reseal_key(
        &orch_sk,
        from_owner.as_bytes(),
        &owner_ctx,
        &node_pk,
        &node_ctx,
        &mut rng,
    )
    .unwrap();
    assert_eq!(to_node.kind(), EnvelopeKind::DatasetKeyToNode);
    assert_eq!(
        open_key(&node_sk, to_node.as_bytes(), &node_ctx)
            .unwrap()
            .as_bytes(),
        key.as_bytes()
    );
    // The node cannot open the owner's envelope, nor the orchestrator the node's.
    assert!(open_key(&node_sk, from_owner.as_bytes(), &owner_ctx).is_err());
    assert!(open_key(&orch_sk, to_node.as_bytes(), &node_ctx).is_err());
}

#[test]
fn errors_never_contain_key_bytes() {
    let mut rng = TestRng(1);
    let (sk, pk) = generate_keypair(&mut rng);
    let key = StreamKey::from_bytes([0xC3; 32]);
    let ctx = context(1, [1; 32], [2; 32]);
    let env = seal_key(&pk, &key, &ctx, &mut rng).unwrap();
    let err = open_key(&sk, env.as_bytes(), &context(1, [9; 32], [2; 32])).unwrap_err();
    let text = format!("{err} {err:?}").to_lowercase();
    assert!(!text.contains("c3c3"), "{text}");
    let sk_hex: String = sk.to_bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert!(!text.contains(&sk_hex[..8]), "{text}");
}
