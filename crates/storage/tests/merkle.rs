//! Known 0G roots, proofs of every segment of multi-segment files, tampered proofs, and the
//! streaming builder against a from-scratch reference.

use std::io::Write;

use licen_storage::merkle::{
    self, CHUNK_SIZE, FileLayout, FileTree, Hash, RootBuilder, SEGMENT_SIZE, ZERO_CHUNK_HASH,
    keccak256, root_of_leaves, segment_root,
};
use licen_storage::proof::{Proof, ProofError};
use proptest::prelude::*;

fn h(s: &str) -> Hash {
    s.parse().unwrap()
}

#[test]
fn zero_chunk_hash_is_0g_constant() {
    assert_eq!(keccak256(&[0u8; CHUNK_SIZE]), ZERO_CHUNK_HASH);
    let hex = format!("{ZERO_CHUNK_HASH:x}");
    assert!(
        hex.starts_with("d397b3b0") && hex.ends_with("e0b5"),
        "{hex}"
    );
}

#[test]
fn five_leaf_tree_matches_0g_client() {
    // 0G Go client core/merkle TestTreeRoot.
    let leaves = |n: usize| -> Vec<Hash> {
        (0..n)
            .map(|i| keccak256(format!("chunk data - {i}").as_bytes()))
            .collect()
    };
    assert_eq!(
        root_of_leaves(&leaves(5)).unwrap(),
        h("0x2dea03c693750777940bcd0cc3f5d93543c075fa3b9a07b9fd86ec8fbaf6a8b2")
    );
    assert_eq!(
        root_of_leaves(&leaves(6)).unwrap(),
        h("0x318c92000aefba6ebf570a8a6daa57aa643f04350ffbe583999ddd9e24ceb147")
    );
    assert_eq!(
        root_of_leaves(&leaves(7)).unwrap(),
        h("0xca80116fb7fb8d6ef4a47e322f22e94ae8beb03e6fcbf8ab59c4d6f54fe42c4d")
    );
}

#[test]
fn zero_files_match_known_roots() {
    assert_eq!(
        merkle::root(&[0u8; 1536]),
        h("0x567c47a879794dd489a210dec17d31cc5919bc427d138d716a8107e025e2dbcb")
    );
    assert_eq!(
        merkle::root(&[0u8; 1792]),
        h("0x294253ab31cbf90dbbbef755a75ff1601da790e35c365f530e7c1a1ca904dcf8")
    );
    // An empty file is one zero chunk.
    assert_eq!(merkle::root(&[]), ZERO_CHUNK_HASH);
}

/// Reference: every padded chunk hashed, one flat tree, no segments.
fn reference_root(data: &[u8]) -> Hash {
    let layout = FileLayout::new(data.len() as u64);
    let leaves: Vec<Hash> = (0..layout.padded_chunks() as usize)
        .map(|i| {
            let mut c = [0u8; CHUNK_SIZE];
            let s = (i * CHUNK_SIZE).min(data.len());
            let e = ((i + 1) * CHUNK_SIZE).min(data.len());
            c[..e - s].copy_from_slice(&data[s..e]);
            keccak256(&c)
        })
        .collect();
    root_of_leaves(&leaves).unwrap()
}

fn pseudo(n: usize, seed: u8) -> Vec<u8> {
    let mut x = u32::from(seed) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[test]
fn multi_segment_roots_match_reference_and_padding_segments() {
    // 17 segments + 1 byte: 4353 chunks → nextPow2 8192, unit 512 → 4608 padded: the last
    // data segment is partial and there is one extra all-padding half segment.
    for size in [
        SEGMENT_SIZE * 4,
        SEGMENT_SIZE * 4 + 1,
        SEGMENT_SIZE * 17 + 1,
        SEGMENT_SIZE * 16 + 3 * CHUNK_SIZE,
    ] {
        let data = pseudo(size, 3);
        let tree = FileTree::from_bytes(&data);
        assert_eq!(tree.root(), reference_root(&data), "size {size}");
    }
}

#[test]
fn every_segment_proof_verifies_and_tampering_fails() {
    // 64 segments + a bit: after padding there are whole padding segments (unit = 8 segments).
    let size = SEGMENT_SIZE * 64 + 1000;
    let data = pseudo(size, 9);
    let tree = FileTree::from_bytes(&data);
    let layout = tree.layout();
    assert!(layout.padded_segments() > layout.segments());
    let root = tree.root();
    for i in 0..layout.segments() {
        let off = layout.segment_offset(i) as usize;
        let len = layout.segment_file_bytes(i);
        let seg = &data[off..off + len];
        let sroot = segment_root(seg, layout.segment_tree_chunks(i));
        assert_eq!(Some(sroot), tree.segment_root(i));
        let proof = tree.proof(i).unwrap();
        proof.verify_segment(&root, &sroot, i, &layout).unwrap();

        // Flip one sibling.
        if proof.lemma.len() > 2 {
            let mut bad = proof.clone();
            bad.lemma[1].0[0] ^= 1;
            assert!(bad.verify_segment(&root, &sroot, i, &layout).is_err());
        }
        // Flip a path bit.
        if !proof.path.is_empty() {
            let mut bad = proof.clone();
            bad.path[0] = !bad.path[0];
            assert!(bad.verify_segment(&root, &sroot, i, &layout).is_err());
        }
        // Wrong data.
        let mut other = seg.to_vec();
        other[0] ^= 0x80;
        let wrong = segment_root(&other, layout.segment_tree_chunks(i));
        assert!(matches!(
            proof.verify_segment(&root, &wrong, i, &layout),
            Err(ProofError::LeafMismatch { .. })
        ));
        // Proof of segment i presented as segment i+1.
        if i + 1 < layout.segments() {
            assert!(proof.verify_segment(&root, &sroot, i + 1, &layout).is_err());
        }
        // Wrong root.
        assert!(matches!(
            proof.verify_segment(&Hash::repeat_byte(7), &sroot, i, &layout),
            Err(ProofError::RootMismatch { .. })
        ));
    }
}

#[test]
fn one_segment_file_has_root_only_proof() {
    let data = pseudo(5000, 1);
    let tree = FileTree::from_bytes(&data);
    let p = tree.proof(0).unwrap();
    assert_eq!(
        p,
        Proof {
            lemma: vec![tree.root()],
            path: vec![]
        }
    );
    let layout = tree.layout();
    p.verify_segment(&tree.root(), &tree.root(), 0, &layout)
        .unwrap();
    let malformed = Proof {
        lemma: vec![tree.root(), tree.root()],
        path: vec![],
    };
    assert!(matches!(
        malformed.verify_segment(&tree.root(), &tree.root(), 0, &layout),
        Err(ProofError::Malformed { .. })
    ));
}

#[test]
fn padding_siblings_must_be_zero_subtrees() {
    // A proof that swaps in a non-zero sibling over pure padding is rejected even if the
    // attacker also controls the root (0G's rear-padding rule).
    let size = SEGMENT_SIZE * 16 + 1; // 17 data segments, padded to 18
    let layout = FileLayout::new(size as u64);
    assert_eq!((layout.segments(), layout.padded_segments()), (17, 18));
    let mut roots: Vec<Hash> = (0..18u8).map(Hash::repeat_byte).collect();
    roots[17] = Hash::repeat_byte(0xee); // should be the zero segment root
    let forged = FileTree::from_segment_roots(layout, roots).unwrap();
    let p = forged.proof(16).unwrap();
    let err = p
        .verify_segment(&forged.root(), &Hash::repeat_byte(16), 16, &layout)
        .unwrap_err();
    assert!(matches!(err, ProofError::BadPadding { .. }), "{err}");
}

#[test]
fn streaming_builder_is_chunking_independent() {
    let data = pseudo(SEGMENT_SIZE * 37 + 123, 5);
    let expect = FileTree::from_bytes(&data).root();
    for piece in [1usize, 255, 4096, SEGMENT_SIZE + 17, 5 << 20] {
        let mut b = RootBuilder::new();
        for c in data.chunks(piece) {
            b.write_all(c).unwrap();
        }
        assert_eq!(b.finish().root(), expect, "piece {piece}");
    }
    assert_eq!(expect, reference_root(&data));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]
    #[test]
    fn roots_match_reference(size in 0usize..(3 * SEGMENT_SIZE + 600), seed in any::<u8>()) {
        let data = pseudo(size, seed);
        let tree = FileTree::from_bytes(&data);
        prop_assert_eq!(tree.root(), reference_root(&data));
        for i in 0..tree.layout().segments() {
            let p = tree.proof(i).unwrap();
            let sr = tree.segment_root(i).unwrap();
            prop_assert!(p.verify_segment(&tree.root(), &sr, i, &tree.layout()).is_ok());
        }
    }
}

#[test]
fn tree_rebuilt_from_segment_roots_gives_the_same_submission() {
    for size in [300usize, SEGMENT_SIZE * 3 + 1000, SEGMENT_SIZE * 16 + 5] {
        let data = pseudo(size, 17);
        let full = FileTree::from_bytes(&data);
        let layout = full.layout();
        let last = layout.segments() - 1;
        let off = layout.segment_offset(last) as usize;
        let rebuilt = FileTree::from_segment_roots(layout, full.segment_roots().to_vec())
            .unwrap()
            .with_tail_data(&data[off..]);
        assert_eq!(rebuilt.root(), full.root());
        assert_eq!(
            rebuilt.submission_nodes().unwrap(),
            full.submission_nodes().unwrap(),
            "size {size}"
        );
    }
}
