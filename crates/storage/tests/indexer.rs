//! A file spread over sharded node processes through the local 0G storage indexer: each node
//! holds only its shard, a download assembles the file from all of them (verified), a node
//! going away is routed around when a replica exists, and what cannot work says why.

mod common;

use std::net::SocketAddr;

use common::{NodeProcess, pseudo};
use licen_storage::client::{DownloadOptions, StorageClient};
use licen_storage::indexer::service::{self, IndexerConfig, RunningIndexer};
use licen_storage::indexer::{IndexerClient, IndexerStore};
use licen_storage::merkle::{FileTree, SEGMENT_SIZE};
use licen_storage::store::Store;
use licen_storage::{Error, Hash};

fn nodes(dir: &std::path::Path, shards: &[&str]) -> Vec<NodeProcess> {
    shards
        .iter()
        .enumerate()
        .map(|(i, shard)| {
            let data = dir.join(format!("node{i}"));
            NodeProcess::spawn_with(&data, &["--shard", shard])
        })
        .collect()
}

async fn indexer(urls: Vec<String>) -> RunningIndexer {
    service::start(IndexerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        nodes: urls,
    })
    .await
    .unwrap()
}

/// Which segments of `root` the node at `url` serves.
async fn served(url: &str, root: Hash, segments: u64) -> Vec<u64> {
    let node = StorageClient::new(url).unwrap();
    let mut held = Vec::new();
    for i in 0..segments {
        if node
            .download_segment_with_proof(root, i)
            .await
            .unwrap()
            .is_some()
        {
            held.push(i);
        }
    }
    held
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_is_spread_over_two_shards_and_comes_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let running = nodes(dir.path(), &["0/2", "1/2"]);
    let urls: Vec<String> = running.iter().map(|n| n.url.clone()).collect();
    // A node that is down is listed by nobody.
    let mut with_dead = urls.clone();
    with_dead.push("http://127.0.0.1:1".into());
    let idx = indexer(with_dead).await;

    let listed = IndexerClient::new(&idx.url())
        .unwrap()
        .sharded_nodes()
        .await
        .unwrap();
    let mut shards: Vec<String> = listed
        .trusted
        .iter()
        .map(|n| format!("{} {}", n.url, n.config))
        .collect();
    shards.sort();
    let mut want = vec![format!("{} 0/2", urls[0]), format!("{} 1/2", urls[1])];
    want.sort();
    assert_eq!(shards, want);

    let data = pseudo(5 * SEGMENT_SIZE + 1000, 7);
    let root = FileTree::from_bytes(&data).root();
    let store = IndexerStore::new(&idx.url()).unwrap();
    let unknown = store.file_info(root).await.unwrap();
    assert!(unknown.is_none(), "nobody holds it yet");

    let up = store.put_bytes(&data, None).await.unwrap();
    assert_eq!(up.root, root);
    assert!(up.finalized);
    assert_eq!(up.sent_segments, 6, "each segment sent once, to its shard");

    // Each node holds its shard only, finalized.
    assert_eq!(served(&urls[0], root, 6).await, vec![0, 2, 4]);
    assert_eq!(served(&urls[1], root, 6).await, vec![1, 3, 5]);
    for url in &urls {
        let info = StorageClient::new(url)
            .unwrap()
            .file_info(root)
            .await
            .unwrap()
            .unwrap();
        assert!(info.finalized, "{url}");
    }

    // One node alone cannot hand out the whole file, and says where to go instead.
    let alone = StorageClient::new(&urls[0])
        .unwrap()
        .download_to_vec(root, DownloadOptions::default())
        .await;
    let e = alone.unwrap_err();
    assert!(matches!(e, Error::PartialNode { .. }), "{e}");
    assert!(e.to_string().contains("--storage-indexer"), "{e}");

    // Through the indexer it comes back byte for byte, with the size checked.
    let mut back = Vec::new();
    let got = store
        .get(
            root,
            &mut back,
            DownloadOptions {
                expected_size: Some(data.len() as u64),
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(back, data);
    assert_eq!(got.size, data.len() as u64);
    let info = store.file_info(root).await.unwrap().unwrap();
    assert_eq!(info.tx.size, data.len() as u64);
    assert!(store.has_segment(root, 5).await.unwrap());
    assert!(!store.has_segment(root, 6).await.unwrap());

    // A wrong expected size is refused by every node.
    let mut sink = Vec::new();
    let e = store
        .get(
            root,
            &mut sink,
            DownloadOptions {
                expected_size: Some(1),
            },
            None,
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("expected 1 bytes"), "{e}");
    assert!(sink.is_empty());

    // Uploading again sends nothing.
    let again = store.put_bytes(&data, None).await.unwrap();
    assert!(again.already_stored && again.finalized);
    assert_eq!(again.sent_segments, 0);
    assert_eq!(again.skipped_segments, 6, "each half skips its own three");

    // A shard node says it has only its own segments.
    let even = StorageClient::new(&urls[0]).unwrap();
    assert!(even.has_segment(root, 4).await.unwrap());
    assert!(!even.has_segment(root, 5).await.unwrap());

    // A one-segment file: one half holds it, the other learns of it and finalizes; one
    // segment is counted as sent.
    let small = pseudo(1000, 9);
    let up = store.put_bytes(&small, None).await.unwrap();
    assert!(up.finalized);
    assert_eq!(up.sent_segments, 1);
    let mut back = Vec::new();
    store
        .get(up.root, &mut back, DownloadOptions::default(), None)
        .await
        .unwrap();
    assert_eq!(back, small);

    // One half alone cannot take a file: refused before anything is sent.
    let other = pseudo(3 * SEGMENT_SIZE, 13);
    let e = licen_storage::indexer::upload_bytes_to(std::slice::from_ref(&even), &other, None)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NodesDoNotCover { .. }), "{e}");
    assert!(e.to_string().contains("shards 0/2 only"), "{e}");
    let other_root = FileTree::from_bytes(&other).root();
    assert!(even.file_info(other_root).await.unwrap().is_none());

    // A file nobody has: the indexer says so.
    let mut sink = Vec::new();
    let missing = Hash::repeat_byte(0xab);
    let e = store
        .get(missing, &mut sink, DownloadOptions::default(), None)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotLocated { .. }), "{e}");
    assert!(e.to_string().contains("upload the file first"), "{e}");
    idx.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_serves_when_a_shard_node_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let mut running = nodes(dir.path(), &["0/2", "1/2", "0/1"]);
    let urls: Vec<String> = running.iter().map(|n| n.url.clone()).collect();
    let idx = indexer(urls.clone()).await;
    let store = IndexerStore::with_config(&idx.url(), Default::default(), 2).unwrap();
    let data = pseudo(3 * SEGMENT_SIZE + 5, 11);
    let root = store.put_bytes(&data, None).await.unwrap().root;
    // Two copies of every segment: the whole node and the two halves.
    assert_eq!(served(&urls[2], root, 4).await, vec![0, 1, 2, 3]);
    assert_eq!(served(&urls[1], root, 4).await, vec![1, 3]);

    // The 1/2 node dies: its segments come from the whole node.
    running[1].kill();
    let one = IndexerStore::new(&idx.url()).unwrap();
    let mut back = Vec::new();
    one.get(root, &mut back, DownloadOptions::default(), None)
        .await
        .unwrap();
    assert_eq!(back, data);

    // Two copies cannot be placed any more: the error names what the indexer has.
    let e = store.put_bytes(&pseudo(1000, 3), None).await.unwrap_err();
    assert!(matches!(e, Error::NoCoveringNodes { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("0/1") && text.contains("0/2") && text.contains("2 time(s)"),
        "{text}"
    );
    idx.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_the_shards_cannot_take_a_file_and_nothing_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let running = nodes(dir.path(), &["1/2"]);
    let idx = indexer(vec![running[0].url.clone()]).await;
    let store = IndexerStore::new(&idx.url()).unwrap();
    let data = pseudo(2 * SEGMENT_SIZE, 5);
    let e = store.put_bytes(&data, None).await.unwrap_err();
    assert!(e.to_string().contains("shards 1/2"), "{e}");
    let root = FileTree::from_bytes(&data).root();
    let info = StorageClient::new(&running[0].url)
        .unwrap()
        .file_info(root)
        .await
        .unwrap();
    assert!(info.is_none(), "nothing was uploaded");

    // An indexer that is not there is named as the indexer.
    let e = IndexerStore::new("http://127.0.0.1:1")
        .unwrap()
        .put_bytes(&data, None)
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("the 0G storage indexer http://127.0.0.1:1"),
        "{e}"
    );
    // Unknown methods are refused with the ones it answers.
    let (_, body) = common::raw_post(
        &idx.url(),
        r#"{"jsonrpc":"2.0","id":1,"method":"zgs_getStatus","params":[]}"#,
    )
    .await;
    assert_eq!(body["error"]["code"], -32601);
    assert!(
        body["error"]["data"]
            .as_str()
            .unwrap()
            .contains("indexer_getFileLocations")
    );
    idx.shutdown().await.unwrap();
}
