//! The 0G backend against real local node processes: replicas, fail-over mid-download when a
//! node lies or is down, and the Flow submission data a node reports for a finalized file.

mod common;

use common::{NodeProcess, pseudo};
use licen_storage::client::{DownloadOptions, StorageClient};
use licen_storage::merkle::{FileTree, SEGMENT_SIZE};
use licen_storage::store::Store;
use licen_storage::zerog::{FlowSubmission, ZeroGStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_fails_over_to_the_next_node_mid_file() {
    let dir = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    let mut a = NodeProcess::spawn(&a_dir);
    let b = NodeProcess::spawn_with(&b_dir, &["--full-rehash"]);
    let data = pseudo(6 * SEGMENT_SIZE + 999, 42);

    // Uploads go to every node.
    let store = ZeroGStore::new([a.url.as_str(), b.url.as_str()]).unwrap();
    let up = store.put_bytes(&data, None).await.unwrap();
    for url in [&a.url, &b.url] {
        let info = StorageClient::new(url)
            .unwrap()
            .file_info(up.root)
            .await
            .unwrap()
            .unwrap();
        assert!(info.finalized);
    }

    // Node A's copy of segment 4 rots.
    a.kill();
    let path = a_dir
        .join("files")
        .join(hex::encode(up.root.as_slice()))
        .join("data");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[4 * SEGMENT_SIZE + 1] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let a = NodeProcess::spawn(&a_dir);

    // A dead node, then the lying node, then the good one.
    let store = ZeroGStore::new(["http://127.0.0.1:1", a.url.as_str(), b.url.as_str()]).unwrap();
    let mut out = Vec::new();
    let got = store
        .get(
            up.root,
            &mut out,
            DownloadOptions {
                expected_size: Some(data.len() as u64),
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(got.node, b.url, "the good node finished the download");
    assert!(out == data, "bytes identical after fail-over");

    // Only the lying node: the error names it and the segment.
    let store = ZeroGStore::new([a.url.as_str()]).unwrap();
    let err = store
        .get(up.root, &mut Vec::new(), DownloadOptions::default(), None)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&a.url) && msg.contains("segment 4"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalized_file_reports_the_flow_submission_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::spawn(dir.path());
    let client = StorageClient::new(&node.url).unwrap();
    for size in [1usize, 5000, 17 * SEGMENT_SIZE + 3] {
        let data = pseudo(size, size as u32);
        let tree = FileTree::from_bytes(&data);
        let sub = FlowSubmission::from_tree(&tree, vec![]).unwrap();
        assert_eq!(sub.root(), Some(tree.root()));
        let up = client.upload_bytes(&data, None).await.unwrap();
        let info = client.file_info(up.root).await.unwrap().unwrap();
        let reported: Vec<(u64, licen_storage::Hash)> = sub
            .nodes
            .iter()
            .map(|n| (u64::from(n.height) + 1, n.root))
            .collect();
        assert_eq!(info.tx.merkle_nodes, reported, "size {size}");
    }
}

/// 0G's own clients upload and download by submission sequence number once they know it
/// (`zgs_uploadSegmentsByTxSeq`, `zgs_downloadSegmentByTxSeq`); the node answers them as it
/// answers by root, and refuses segments of another file or an unknown sequence number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_go_up_and_down_by_tx_seq() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::spawn(dir.path());
    let client = StorageClient::new(&node.url).unwrap();
    let data = pseudo(3 * SEGMENT_SIZE + 1000, 9);
    let tree = FileTree::from_bytes(&data);
    let seg = |i: u64| common::segment(&tree, &data, i);
    // Another file first, so this one's sequence number is not 0.
    client.upload_bytes(&pseudo(700, 1), None).await.unwrap();
    // The first segment by root makes the file known; its sequence number comes back.
    client.upload_segments(&[seg(0)]).await.unwrap();
    let seq = client.file_info(tree.root()).await.unwrap().unwrap().tx.seq;
    assert_eq!(seq, 1);
    let by_seq = |method: &'static str, params: serde_json::Value| {
        let client = client.clone();
        async move { client.call::<_, serde_json::Value>(method, params).await }
    };
    by_seq("zgs_uploadSegmentByTxSeq", serde_json::json!([seg(1), seq]))
        .await
        .unwrap();
    by_seq(
        "zgs_uploadSegmentsByTxSeq",
        serde_json::json!([[seg(2), seg(3)], seq]),
    )
    .await
    .unwrap();
    let info = client.file_info(tree.root()).await.unwrap().unwrap();
    assert!(info.finalized, "{info:?}");
    // Chunks 1024..1028 (segment 1's first kilobyte) by sequence number.
    let chunk = by_seq(
        "zgs_downloadSegmentByTxSeq",
        serde_json::json!([seq, 1024, 1028]),
    )
    .await
    .unwrap();
    let expected = base64_simd::STANDARD.encode_to_string(&data[SEGMENT_SIZE..SEGMENT_SIZE + 1024]);
    assert_eq!(chunk, Some(serde_json::json!(expected)));
    assert_eq!(
        by_seq("zgs_downloadSegmentByTxSeq", serde_json::json!([99, 0, 1]))
            .await
            .unwrap(),
        None
    );
    // Another file's segment under this sequence number, or an unknown number: refused.
    let other = FileTree::from_bytes(&pseudo(700, 1));
    let said = by_seq(
        "zgs_uploadSegmentsByTxSeq",
        serde_json::json!([[seg(0)], 0]),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        said.contains(&format!("txSeq 0 is file {}", other.root())),
        "{said}"
    );
    let said = by_seq(
        "zgs_uploadSegmentsByTxSeq",
        serde_json::json!([[seg(0)], 7]),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        said.contains("no file with submission sequence number 7"),
        "{said}"
    );
}
