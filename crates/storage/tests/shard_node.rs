//! Sharded local nodes (0G's `shard_position`): each keeps and serves only its own segments,
//! verifies and drops the others', finalizes on its own segments, survives kill -9 mid-upload
//! and a restart once finalized, keeps its shard per data dir, and follows the Flow position.

mod common;

use std::path::Path;

use common::{NodeProcess, pseudo};
use licen_storage::merkle::{FileTree, SEGMENT_SIZE, segment_root};
use licen_storage::node::{self, NodeConfig, RunningNode, Submitted};
use licen_storage::rpc::{SegmentWithProof, UploadedSegments, codes, methods};
use licen_storage::shard::ShardConfig;
use licen_storage::{Error, Hash, StorageClient};

fn shard(s: &str) -> ShardConfig {
    s.parse().unwrap()
}

fn hex_dir(root: &Hash) -> String {
    hex::encode(root.as_slice())
}

async fn start(dir: &Path, shard: ShardConfig) -> licen_storage::Result<RunningNode> {
    node::start(NodeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        shard,
        ..NodeConfig::new(dir)
    })
    .await
}

async fn shard_config(client: &StorageClient) -> ShardConfig {
    client
        .call::<_, ShardConfig>(methods::GET_SHARD_CONFIG, ())
        .await
        .unwrap()
        .unwrap()
}

async fn uploaded(client: &StorageClient, root: Hash) -> UploadedSegments {
    client
        .call::<_, UploadedSegments>(methods::UPLOADED_SEGMENTS, (root,))
        .await
        .unwrap()
        .unwrap()
}

/// Which segments the bitmap says are stored.
fn stored(u: &UploadedSegments) -> Vec<u64> {
    (0..u.total).filter(|&i| u.has(i)).collect()
}

/// Checks that the node serves segment `index` of `data` with a proof that verifies against
/// the file root.
async fn assert_serves(client: &StorageClient, tree: &FileTree, data: &[u8], index: u64) {
    let layout = tree.layout();
    let got = client
        .download_segment_with_proof(tree.root(), index)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("segment {index} is not served"));
    let want = common::segment(tree, data, index);
    assert_eq!(got.data, want.data, "segment {index}");
    assert_eq!(
        (got.root, got.index, got.file_size),
        (tree.root(), index, data.len() as u64)
    );
    let seg_root = segment_root(&got.data, layout.segment_tree_chunks(index));
    got.proof
        .verify_segment(&tree.root(), &seg_root, index, &layout)
        .unwrap_or_else(|e| panic!("segment {index}: {e}"));
}

async fn assert_not_served(client: &StorageClient, root: Hash, index: u64) {
    let got = client
        .download_segment_with_proof(root, index)
        .await
        .unwrap();
    assert!(
        got.is_none(),
        "segment {index} is served by a node of another shard"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_each_finalize_on_their_own_segments_and_serve_only_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = pseudo(5 * SEGMENT_SIZE + 1000, 1);
    let tree = FileTree::from_bytes(&data);
    let root = tree.root();
    let segments = tree.layout().segments();
    assert_eq!(segments, 6);
    let seg = |i: u64| common::segment(&tree, &data, i);

    for (name, own) in [("0/2", vec![0, 2, 4]), ("1/2", vec![1, 3, 5])] {
        let node = start(&dir.path().join(name.replace('/', "-")), shard(name))
            .await
            .unwrap();
        let client = StorageClient::new(&node.url()).unwrap();
        assert_eq!(shard_config(&client).await, shard(name));

        // Own segments one at a time: finalized with the last of them, not before.
        for (k, &i) in own.iter().enumerate() {
            client.upload_segments(&[seg(i)]).await.unwrap();
            let info = client.file_info(root).await.unwrap().unwrap();
            let last = k + 1 == own.len();
            assert_eq!(info.finalized, last, "{name} after segment {i}");
            let count = if last { segments } else { k as u64 + 1 };
            assert_eq!(info.uploaded_seg_num, count, "{name} after segment {i}");
            assert!(info.tx.merkle_nodes.is_empty());
        }
        let checked: Option<bool> = client
            .call(methods::CHECK_FILE_FINALIZED, (root,))
            .await
            .unwrap();
        assert_eq!(checked, Some(true));
        let u = uploaded(&client, root).await;
        assert!(u.finalized);
        assert_eq!((u.total, stored(&u)), (segments, own.clone()));

        for i in 0..segments {
            if own.contains(&i) {
                assert_serves(&client, &tree, &data, i).await;
            } else {
                assert_not_served(&client, root, i).await;
            }
        }
        // Chunk ranges: inside an own segment, served; touching another shard's, null.
        let first = own[0] * 1024;
        let chunks = client
            .download_chunks(root, first, first + 8)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            chunks,
            data[first as usize * 256..(first as usize + 8) * 256]
        );
        let across = client.download_chunks(root, 1020, 1030).await.unwrap();
        assert!(
            across.is_none(),
            "{name}: a range into another shard's segment"
        );
        // Out of range stays an error.
        let err = client
            .download_segment_with_proof(root, segments)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Rpc { code, .. } if *code == codes::INVALID_PARAMS),
            "{err}"
        );
        // Segments of a finalized file, of either shard, get 0G's "already finalized".
        let err = client
            .upload_segments(&[seg(own[0] ^ 1)])
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("already uploaded and finalized"),
            "{err}"
        );
        node.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_shards_segments_are_verified_then_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), shard("0/2")).await.unwrap();
    let client = StorageClient::new(&node.url()).unwrap();
    let data = pseudo(3 * SEGMENT_SIZE + 77, 2);
    let tree = FileTree::from_bytes(&data);
    let root = tree.root();
    let seg = |i: u64| common::segment(&tree, &data, i);

    // A tampered segment is refused, of this shard or another.
    for i in [0, 1] {
        let mut bad = seg(i);
        bad.data[9] ^= 1;
        let err = client.upload_segments(&[bad]).await.unwrap_err();
        assert!(
            matches!(&err, Error::Rpc { code, message, .. } if *code == codes::INVALID_PARAMS && message.contains("proof")),
            "segment {i}: {err}"
        );
    }
    // So is a segment of the wrong length.
    let mut short = seg(1);
    short.data.truncate(1000);
    let err = client.upload_segments(&[short]).await.unwrap_err();
    assert!(
        matches!(&err, Error::Rpc { code, .. } if *code == codes::INVALID_PARAMS),
        "{err}"
    );

    // Another shard's segments alone: accepted, nothing stored.
    client.upload_segments(&[seg(1), seg(3)]).await.unwrap();
    let info = client.file_info(root).await.unwrap().unwrap();
    assert!(!info.finalized);
    assert_eq!(info.uploaded_seg_num, 0);
    assert!(stored(&uploaded(&client, root).await).is_empty());

    // Everything at once: the own ones are kept and the file is finalized.
    let all: Vec<SegmentWithProof> = (0..4).map(seg).collect();
    client.upload_segments(&all).await.unwrap();
    let info = client.file_info(root).await.unwrap().unwrap();
    assert!(info.finalized);
    assert_eq!(stored(&uploaded(&client, root).await), vec![0, 2]);
    assert_serves(&client, &tree, &data, 2).await;
    assert_not_served(&client, root, 3).await;
    let final_dir = dir.path().join("files").join(hex_dir(&root));
    assert!(final_dir.join("proofs").exists() && !final_dir.join("tree").exists());
    node.shutdown().await.unwrap();

    // A one-segment file at Flow position 0 has nothing for shard 1/2: complete at once.
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), shard("1/2")).await.unwrap();
    let client = StorageClient::new(&node.url()).unwrap();
    let small = pseudo(1000, 3);
    let small_tree = FileTree::from_bytes(&small);
    client
        .upload_segments(&[common::segment(&small_tree, &small, 0)])
        .await
        .unwrap();
    let info = client.file_info(small_tree.root()).await.unwrap().unwrap();
    assert!(info.finalized);
    assert_eq!(info.uploaded_seg_num, 1);
    assert_not_served(&client, small_tree.root(), 0).await;
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_node_resumes_after_kill_9_and_serves_proofs_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("node");
    let data = pseudo(9 * SEGMENT_SIZE + 4321, 4);
    let tree = FileTree::from_bytes(&data);
    let root = tree.root();
    let segments = tree.layout().segments();
    let own: Vec<u64> = (0..segments).filter(|i| i % 2 == 1).collect();
    let seg = |i: u64| common::segment(&tree, &data, i);
    let args = ["--shard", "1/2"];

    let mut node = NodeProcess::spawn_with(&data_dir, &args);
    let client = StorageClient::new(&node.url).unwrap();
    assert_eq!(shard_config(&client).await, shard("1/2"));
    client
        .upload_segments(&[seg(0), seg(1), seg(2), seg(3), seg(5)])
        .await
        .unwrap();
    node.kill();

    // While the node is down: a torn record at the end of the proof log (a crash mid-append)
    // and a flipped bit in segment 3's bytes (a write lost to a power cut, or rot).
    let partial = data_dir.join("partial").join(hex_dir(&root));
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(partial.join("proofs"))
        .unwrap();
    std::io::Write::write_all(&mut log, &[7u8; 40]).unwrap();
    drop(log);
    let path = partial.join("data");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[3 * SEGMENT_SIZE + 10] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();

    let mut node = NodeProcess::spawn_with(&data_dir, &args);
    let client = StorageClient::new(&node.url).unwrap();
    let info = client.file_info(root).await.unwrap().unwrap();
    assert!(!info.finalized);
    assert_eq!(info.uploaded_seg_num, 3);
    assert_eq!(stored(&uploaded(&client, root).await), vec![1, 3, 5]);
    assert_not_served(&client, root, 1).await; // not finalized yet

    // The rest completes the shard: the re-hash catches segment 3 and drops it.
    let err = client.upload_segments(&[seg(7), seg(9)]).await.unwrap_err();
    match &err {
        Error::Rpc { code, data, .. } => {
            assert_eq!(*code, codes::INTEGRITY, "{err}");
            assert!(data.as_deref().unwrap_or("").contains("[3]"), "{err}");
        }
        other => panic!("expected an integrity error, got {other}"),
    }
    assert_eq!(stored(&uploaded(&client, root).await), vec![1, 5, 7, 9]);
    client.upload_segments(&[seg(3)]).await.unwrap();
    let info = client.file_info(root).await.unwrap().unwrap();
    assert!(info.finalized);
    assert_eq!(info.uploaded_seg_num, segments);
    node.kill();

    // A restart of the finalized file serves the kept proofs.
    let node = NodeProcess::spawn_with(&data_dir, &args);
    let client = StorageClient::new(&node.url).unwrap();
    let info = client.file_info(root).await.unwrap().unwrap();
    assert!(info.finalized);
    for i in 0..segments {
        if own.contains(&i) {
            assert_serves(&client, &tree, &data, i).await;
        } else {
            assert_not_served(&client, root, i).await;
        }
    }
    drop(node);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_record_without_its_proof_is_not_a_stored_segment() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("node");
    let data = pseudo(4 * SEGMENT_SIZE + 1, 5);
    let tree = FileTree::from_bytes(&data);
    let root = tree.root();
    let seg = |i: u64| common::segment(&tree, &data, i);
    let args = ["--shard", "0/2"];

    let mut node = NodeProcess::spawn_with(&data_dir, &args);
    let client = StorageClient::new(&node.url).unwrap();
    client.upload_segments(&[seg(0), seg(2)]).await.unwrap();
    assert_eq!(stored(&uploaded(&client, root).await), vec![0, 2]);
    node.kill();
    // The proofs never reached the disk, the journal records did.
    let partial = data_dir.join("partial").join(hex_dir(&root));
    std::fs::write(partial.join("proofs"), b"").unwrap();
    assert!(std::fs::metadata(partial.join("journal")).unwrap().len() > 0);

    let node = NodeProcess::spawn_with(&data_dir, &args);
    let client = StorageClient::new(&node.url).unwrap();
    let info = client.file_info(root).await.unwrap().unwrap();
    assert_eq!((info.finalized, info.uploaded_seg_num), (false, 0));
    client.upload_segments(&[seg(2), seg(4)]).await.unwrap();
    assert!(!client.file_info(root).await.unwrap().unwrap().finalized);
    client.upload_segments(&[seg(0)]).await.unwrap();
    assert!(client.file_info(root).await.unwrap().unwrap().finalized);
    for i in [0, 2, 4] {
        assert_serves(&client, &tree, &data, i).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_keeps_its_shard() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), shard("0/2")).await.unwrap();
    node.shutdown().await.unwrap();
    for other in ["1/2", "0/1", "0/4"] {
        let err = start(dir.path(), shard(other))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("shard 0/2") && err.contains(other) && err.contains("another data dir"),
            "{other}: {err}"
        );
    }
    start(dir.path(), shard("0/2"))
        .await
        .unwrap()
        .shutdown()
        .await
        .unwrap();

    // A data dir from before sharding (files, no `shard` file) held every segment.
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), ShardConfig::WHOLE).await.unwrap();
    let client = StorageClient::new(&node.url()).unwrap();
    let data = pseudo(2 * SEGMENT_SIZE + 5, 6);
    let up = client.upload_bytes(&data, None).await.unwrap();
    drop(client);
    node.shutdown().await.unwrap();
    std::fs::remove_file(dir.path().join("shard")).unwrap();
    let err = start(dir.path(), shard("1/2"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("every segment (shard 0/1)") && err.contains("1/2"),
        "{err}"
    );
    let node = start(dir.path(), ShardConfig::WHOLE).await.unwrap();
    let client = StorageClient::new(&node.url()).unwrap();
    let back = client
        .download_to_vec(up.root, Default::default())
        .await
        .unwrap();
    assert!(back == data);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("shard")).unwrap(),
        "0/1"
    );
    drop(client);
    node.shutdown().await.unwrap();

    // The binary refuses a bad position with the reason, and exits non-zero.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_licen-storage-node"))
        .arg("--data-dir")
        .arg(dir.path().join("never"))
        .args(["--listen", "127.0.0.1:0", "--shard", "1/3"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("NUM_SHARD is not a power of two"),
        "{stderr}"
    );
    assert!(!dir.path().join("never").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flow_mode_the_shard_follows_the_submissions_flow_position() {
    let dir = tempfile::tempdir().unwrap();
    let node = node::start(NodeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        flow: Some(node::FollowedFlow {
            chain_id: 31337,
            address: alloy_primitives::Address::repeat_byte(0xf1),
        }),
        shard: shard("1/2"),
        ..NodeConfig::new(dir.path())
    })
    .await
    .unwrap();
    let client = StorageClient::new(&node.url()).unwrap();
    let data = pseudo(4 * SEGMENT_SIZE + 9, 7);
    let tree = FileTree::from_bytes(&data);
    let root = tree.root();
    // The file starts in the Flow's second segment: its even segments are odd positions.
    node.register_submission(Submitted {
        root,
        size: data.len() as u64,
        seq: 0,
        start_entry: 1024,
    })
    .unwrap();
    let all: Vec<SegmentWithProof> = (0..5).map(|i| common::segment(&tree, &data, i)).collect();
    client.upload_segments(&all[1..2]).await.unwrap();
    assert_eq!(
        client
            .file_info(root)
            .await
            .unwrap()
            .unwrap()
            .uploaded_seg_num,
        0
    );
    client.upload_segments(&all).await.unwrap();
    let info = client.file_info(root).await.unwrap().unwrap();
    assert!(info.finalized);
    assert_eq!(info.tx.start_entry_index, 1024);
    assert_eq!(stored(&uploaded(&client, root).await), vec![0, 2, 4]);
    assert_serves(&client, &tree, &data, 4).await;
    assert_not_served(&client, root, 3).await;
    drop(client);
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_name_the_flow_they_follow_and_uploads_refuse_nodes_of_different_flows() {
    let dirs = [(); 3].map(|()| tempfile::tempdir().unwrap());
    let following = |address: u8, chain_id: u64| node::FollowedFlow {
        chain_id,
        address: alloy_primitives::Address::repeat_byte(address),
    };
    let start_following = |dir: &Path, flow: Option<node::FollowedFlow>| {
        node::start(NodeConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            flow,
            ..NodeConfig::new(dir)
        })
    };
    let unpaid = start(dirs[0].path(), ShardConfig::WHOLE).await.unwrap();
    let paid = start_following(dirs[1].path(), Some(following(0xf1, 16602)))
        .await
        .unwrap();
    let other_chain = start_following(dirs[2].path(), Some(following(0xf1, 16661)))
        .await
        .unwrap();
    let client = |n: &RunningNode| StorageClient::new(&n.url()).unwrap();

    // zgs_getStatus names the Flow and its chain, as 0G nodes do; zeros when none is followed.
    assert_eq!(client(&unpaid).followed_flow().await.unwrap(), None);
    assert_eq!(
        client(&paid).followed_flow().await.unwrap(),
        Some(following(0xf1, 16602))
    );
    // A node following a Flow refuses a file nobody paid for.
    let data = pseudo(3_000, 5);
    let tree = FileTree::from_bytes(&data);
    let refused = client(&paid)
        .upload_segments(&[common::segment(&tree, &data, 0)])
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("no Flow submission of file"), "{refused}");
    let followed = licen_storage::client::followed_flow;
    assert_eq!(followed(&[client(&unpaid)]).await.unwrap(), None);
    // A node that follows none beside one that does: the one Flow is what is paid.
    assert_eq!(
        followed(&[client(&unpaid), client(&paid)]).await.unwrap(),
        Some(following(0xf1, 16602))
    );
    // The same address on two chains is two Flows: no one payment reaches both.
    let error = followed(&[client(&paid), client(&other_chain)])
        .await
        .unwrap_err();
    assert!(matches!(error, Error::FlowsDisagree { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("on chain 16602") && message.contains("on chain 16661"),
        "{message}"
    );
}
