//! The local node as a real process, driven by the client: round trips, resume after kill -9,
//! damaged bytes never finalized, a lying node named, concurrency, and JSON-RPC error handling.

mod common;

use std::sync::{Arc, Mutex};

use common::{NodeProcess, pseudo, raw_post};
use licen_storage::client::{ClientConfig, DownloadOptions, StorageClient};
use licen_storage::merkle::{FileTree, SEGMENT_SIZE};
use licen_storage::rpc::codes;
use licen_storage::store::{Phase, ProgressFn, Store};
use licen_storage::{Error, Hash};
use serde_json::json;

fn hex_dir(root: &Hash) -> String {
    hex::encode(root.as_slice())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_is_byte_identical_for_awkward_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::spawn(dir.path());
    let client = StorageClient::new(&node.url).unwrap();
    let status = client.status().await.unwrap();
    assert_eq!(status.connected_peers, 0);

    let sizes = [
        0usize,
        1,
        255,
        256,
        257,
        1000,
        SEGMENT_SIZE - 1,
        SEGMENT_SIZE,
        SEGMENT_SIZE + 1,
        3 * SEGMENT_SIZE + 777,
        17 * SEGMENT_SIZE + 5,
    ];
    for (k, &size) in sizes.iter().enumerate() {
        let data = pseudo(size, k as u32 + 1);
        let up = if k % 2 == 0 {
            client.upload_bytes(&data, None).await.unwrap()
        } else {
            let f = dir.path().join(format!("in-{k}"));
            std::fs::write(&f, &data).unwrap();
            client.upload_file(&f, None).await.unwrap()
        };
        assert_eq!(up.root, FileTree::from_bytes(&data).root(), "size {size}");
        assert!(up.finalized && !up.already_stored, "size {size}");
        assert_eq!(up.size, size as u64);

        let info = client.file_info(up.root).await.unwrap().unwrap();
        assert!(info.finalized);
        assert_eq!(info.tx.size, size as u64);
        assert_eq!(info.tx.data_merkle_root, up.root);
        assert_eq!(info.uploaded_seg_num, up.segments);

        let back = client
            .download_to_vec(
                up.root,
                DownloadOptions {
                    expected_size: Some(size as u64),
                },
            )
            .await
            .unwrap();
        assert!(back == data, "size {size}: downloaded bytes differ");

        // Uploading again sends nothing.
        let again = client.upload_bytes(&data, None).await.unwrap();
        assert!(again.already_stored && again.sent_segments == 0);
    }

    // zgs_downloadSegment serves raw chunk ranges of a finalized file (last chunk zero-filled).
    let data = pseudo(3 * SEGMENT_SIZE + 777, 99);
    let up = client.upload_bytes(&data, None).await.unwrap();
    let chunks = client
        .download_chunks(up.root, 1024, 1030)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(chunks, data[SEGMENT_SIZE..SEGMENT_SIZE + 6 * 256]);
    let last_chunk = (data.len() / 256) as u64;
    let tail = client
        .download_chunks(up.root, last_chunk, last_chunk + 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        &tail[..data.len() % 256],
        &data[last_chunk as usize * 256..]
    );
    assert!(tail[data.len() % 256..].iter().all(|&b| b == 0));
    let too_far = client
        .download_chunks(up.root, last_chunk, last_chunk + 2)
        .await;
    assert!(matches!(too_far, Err(Error::Rpc { code, .. }) if code == codes::INVALID_PARAMS));

    // A wrong expected size is refused before any byte is written.
    let err = client
        .download_to_vec(
            up.root,
            DownloadOptions {
                expected_size: Some(5),
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::SizeMismatch { .. }), "{err}");
    // Unknown roots are reported as such.
    let err = client
        .download_to_vec(Hash::repeat_byte(3), DownloadOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_resumes_after_kill_9_and_finalizes_only_when_complete() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("node");
    let src = dir.path().join("src.bin");
    let segments = 40usize;
    let data = pseudo(segments * SEGMENT_SIZE - 1234, 7);
    std::fs::write(&src, &data).unwrap();
    let root = FileTree::from_bytes(&data).root();

    let node = Arc::new(Mutex::new(NodeProcess::spawn(&data_dir)));
    let url = node.lock().unwrap().url.clone();
    let cfg = ClientConfig {
        batch_segments: 1,
        max_in_flight: 1,
        ..ClientConfig::default()
    };
    let client = StorageClient::with_config(&url, cfg.clone()).unwrap();
    let killer = node.clone();
    let progress: ProgressFn = Arc::new(move |p| {
        if p.phase == Phase::Uploading && p.done >= 12 * SEGMENT_SIZE as u64 {
            killer.lock().unwrap().kill();
        }
    });
    let err = client.upload_file(&src, Some(progress)).await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err}");
    assert!(
        err.to_string().contains(&url),
        "error names the node: {err}"
    );

    // Restart on the same data directory: partial, not finalized, not downloadable.
    let node2 = NodeProcess::spawn(&data_dir);
    let client = StorageClient::with_config(&node2.url, cfg).unwrap();
    let info = client.file_info(root).await.unwrap().unwrap();
    assert!(!info.finalized);
    let had = info.uploaded_seg_num;
    assert!((12..segments as u64).contains(&had), "uploaded {had}");
    let err = client
        .download_to_vec(root, DownloadOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFinalized { .. }), "{err}");
    assert!(!client.has_segment(root, segments as u64 - 1).await.unwrap());
    assert!(client.has_segment(root, 0).await.unwrap());

    // Resume: only the missing segments are sent.
    let up = client.upload_file(&src, None).await.unwrap();
    assert!(up.finalized);
    assert_eq!(up.skipped_segments, had);
    assert_eq!(up.sent_segments, segments as u64 - had);
    let back = client
        .download_to_vec(root, DownloadOptions::default())
        .await
        .unwrap();
    assert!(back == data);
    drop(node2);
    drop(node);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_partial_bytes_are_never_finalized() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("node");
    let data = pseudo(6 * SEGMENT_SIZE + 100, 11);
    let tree = FileTree::from_bytes(&data);
    let root = tree.root();

    // Upload every segment except the last, by hand.
    let mut node = NodeProcess::spawn(&data_dir);
    let client = StorageClient::new(&node.url).unwrap();
    let layout = tree.layout();
    let seg = |i: u64| common::segment(&tree, &data, i);
    let first: Vec<_> = (0..layout.segments() - 1).map(seg).collect();
    client.upload_segments(&first).await.unwrap();
    node.kill();

    // The disk flips a bit in segment 2 while the node is down (a torn or rotten write).
    let path = data_dir.join("partial").join(hex_dir(&root)).join("data");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[2 * SEGMENT_SIZE + 10] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();

    let node = NodeProcess::spawn(&data_dir);
    let client = StorageClient::new(&node.url).unwrap();
    // The last segment completes the set: the re-hash catches the damage, refuses to
    // finalize and discards segment 2.
    let err = client
        .upload_segments(&[seg(layout.segments() - 1)])
        .await
        .unwrap_err();
    match &err {
        Error::Rpc { code, data, .. } => {
            assert_eq!(*code, codes::INTEGRITY, "{err}");
            assert!(data.as_deref().unwrap_or("").contains("[2]"), "{err}");
        }
        other => panic!("expected an integrity error, got {other}"),
    }
    let info = client.file_info(root).await.unwrap().unwrap();
    assert!(!info.finalized);
    assert_eq!(info.uploaded_seg_num, layout.segments() - 1);

    // A normal upload re-sends just the discarded segment and the file is then correct.
    let up = client.upload_bytes(&data, None).await.unwrap();
    assert!(up.finalized);
    assert_eq!(up.sent_segments, 1);
    let back = client
        .download_to_vec(root, DownloadOptions::default())
        .await
        .unwrap();
    assert!(back == data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lying_node_is_detected_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("node");
    let data = pseudo(5 * SEGMENT_SIZE + 3, 21);
    let mut node = NodeProcess::spawn(&data_dir);
    let client = StorageClient::new(&node.url).unwrap();
    let up = client.upload_bytes(&data, None).await.unwrap();
    node.kill();

    // Corrupt segment 3 of the finalized file behind the node's back.
    let path = data_dir.join("files").join(hex_dir(&up.root)).join("data");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[3 * SEGMENT_SIZE + 77] ^= 1;
    std::fs::write(&path, &bytes).unwrap();

    let node = NodeProcess::spawn(&data_dir);
    let client = StorageClient::new(&node.url).unwrap();
    let out = dir.path().join("out.bin");
    let err = client
        .download_to_path(up.root, &out, DownloadOptions::default(), None)
        .await
        .unwrap_err();
    match &err {
        Error::LyingNode { url, segment, .. } => {
            assert_eq!(url, &node.url);
            assert_eq!(*segment, 3);
        }
        other => panic!("expected LyingNode, got {other}"),
    }
    assert!(err.to_string().contains(&node.url) && err.to_string().contains("segment 3"));
    assert!(!out.exists(), "no output file for a failed download");
    assert!(!dir.path().join("out.bin.partial").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_uploads_and_downloads() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::spawn(dir.path());
    let store: Arc<dyn Store> = Arc::new(StorageClient::new(&node.url).unwrap());
    let files: Vec<Vec<u8>> = (0..6)
        .map(|i| pseudo(SEGMENT_SIZE * (i + 1) + 1000 * i, 100 + i as u32))
        .collect();
    let uploads = files.iter().map(|d| {
        let store = store.clone();
        async move { store.put_bytes(d, None).await }
    });
    // The same file twice at once as well: both must succeed.
    let dup = store.put_bytes(&files[2], None);
    let (results, dup) = tokio::join!(futures_util::future::join_all(uploads), dup);
    dup.unwrap();
    let roots: Vec<Hash> = results.into_iter().map(|r| r.unwrap().root).collect();

    let downloads = roots.iter().map(|&root| {
        let store = store.clone();
        async move {
            let mut out = Vec::new();
            store
                .get(root, &mut out, DownloadOptions::default(), None)
                .await
                .map(|_| out)
        }
    });
    let got = futures_util::future::join_all(downloads).await;
    for (g, want) in got.into_iter().zip(&files) {
        assert!(&g.unwrap() == want);
    }

    // put_reader through the trait object.
    let data = pseudo(2 * SEGMENT_SIZE + 5, 5);
    let mut reader: &[u8] = &data;
    let up = store.put_reader(&mut reader, None).await.unwrap();
    assert_eq!(up.root, FileTree::from_bytes(&data).root());
    assert!(store.has_segment(up.root, 2).await.unwrap());
    assert!(!store.has_segment(up.root, 3).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_hostile_requests_get_json_rpc_errors() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::spawn_with(dir.path(), &["--max-body-bytes", "1000000"]);
    let url = node.url.as_str();
    let code = |v: &serde_json::Value| v["error"]["code"].as_i64().unwrap_or(0);

    let (_, v) = raw_post(url, "{not json").await;
    assert_eq!(code(&v), codes::PARSE_ERROR, "{v}");
    let (_, v) = raw_post(url, "[]").await;
    assert_eq!(code(&v), codes::INVALID_REQUEST, "{v}");
    let (_, v) = raw_post(url, r#"{"id":1,"method":"zgs_getStatus"}"#).await;
    assert_eq!(code(&v), codes::INVALID_REQUEST, "{v}");
    let (_, v) = raw_post(
        url,
        r#"{"jsonrpc":"2.0","id":1,"method":"zgs_nope","params":[]}"#,
    )
    .await;
    assert_eq!(code(&v), codes::METHOD_NOT_FOUND, "{v}");
    assert_eq!(v["id"], 1);
    let (_, v) = raw_post(
        url,
        r#"{"jsonrpc":"2.0","id":"a","method":"zgs_getFileInfo","params":["xyz", true]}"#,
    )
    .await;
    assert_eq!(code(&v), codes::INVALID_PARAMS, "{v}");
    assert_eq!(v["id"], "a");
    let (_, v) = raw_post(
        url,
        r#"{"jsonrpc":"2.0","id":2,"method":"zgs_downloadSegment","params":["0x0000000000000000000000000000000000000000000000000000000000000000",0,2000]}"#,
    )
    .await;
    assert_eq!(code(&v), codes::INVALID_PARAMS, "{v}");
    // Batch: one good, one bad, answered in order.
    let (_, v) = raw_post(
        url,
        r#"[{"jsonrpc":"2.0","id":1,"method":"zgs_getStatus","params":[]},{"jsonrpc":"2.0","id":2,"method":"zgs_x"}]"#,
    )
    .await;
    assert!(v[0]["result"]["networkIdentity"].is_object(), "{v}");
    assert_eq!(code(&v[1]), codes::METHOD_NOT_FOUND);
    // Unknown file: null, as 0G answers.
    let (_, v) = raw_post(
        url,
        json!({"jsonrpc":"2.0","id":3,"method":"zgs_getFileInfo","params":[Hash::repeat_byte(9), false]}).to_string(),
    )
    .await;
    assert!(v["result"].is_null() && v.get("error").is_none(), "{v}");

    // Oversize body: HTTP 413 and a JSON-RPC error.
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"zgs_getStatus","params":["{}"]}}"#,
        "a".repeat(1_200_000)
    );
    let (status, v) = raw_post(url, big).await;
    assert_eq!(status, 413);
    assert_eq!(code(&v), codes::INVALID_REQUEST, "{v}");

    // Segments: a bad proof, a wrong length, then a good upload, then a size conflict and a
    // segment for a finalized file.
    let data = pseudo(2 * SEGMENT_SIZE + 300, 3);
    let tree = FileTree::from_bytes(&data);
    let mk = |i: u64, d: &[u8]| common::segment(&tree, d, i);
    let client = StorageClient::new(url).unwrap();
    let mut tampered = mk(1, &data);
    tampered.data[5] ^= 1;
    let err = client.upload_segments(&[tampered]).await.unwrap_err();
    assert!(
        matches!(&err, Error::Rpc { code, message, .. } if *code == codes::INVALID_PARAMS && message.contains("proof")),
        "{err}"
    );
    let mut short = mk(0, &data);
    short.data.truncate(1000);
    let err = client.upload_segments(&[short]).await.unwrap_err();
    assert!(
        matches!(&err, Error::Rpc { code, message, .. } if *code == codes::INVALID_PARAMS && message.contains("data")),
        "{err}"
    );
    let mut dirty_tail = mk(2, &data);
    let last = dirty_tail.data.len() - 1;
    dirty_tail.data[last] = 1; // beyond fileSize inside the last chunk
    assert!(client.upload_segments(&[dirty_tail]).await.is_err());
    let mut wrong_size = mk(0, &data);
    client.upload_segments(&[mk(0, &data)]).await.unwrap();
    wrong_size.file_size += 1;
    let err = client.upload_segments(&[wrong_size]).await.unwrap_err();
    assert!(
        matches!(&err, Error::Rpc { code, .. } if *code == codes::SIZE_CONFLICT),
        "{err}"
    );
    client
        .upload_segments(&[mk(1, &data), mk(2, &data)])
        .await
        .unwrap();
    assert!(
        client
            .file_info(tree.root())
            .await
            .unwrap()
            .unwrap()
            .finalized
    );
    let err = client.upload_segments(&[mk(0, &data)]).await.unwrap_err();
    assert!(
        err.to_string().contains("already uploaded and finalized"),
        "{err}"
    );
    // Out-of-range segment index for download.
    let err = client
        .download_segment_with_proof(tree.root(), 3)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Rpc { code, .. } if *code == codes::INVALID_PARAMS),
        "{err}"
    );
    // Upload still works after all that.
    let back = client
        .download_to_vec(tree.root(), DownloadOptions::default())
        .await
        .unwrap();
    assert!(back == data);
}
