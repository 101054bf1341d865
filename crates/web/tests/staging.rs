//! Committing a staged upload against a real storage node (in process): with the page's
//! segment roots the server stores the file without hashing it, and the node, which checks
//! every segment's bytes against the proofs those roots give, refuses a page whose segment roots
//! (consistent with its root) describe other bytes: the upload fails with a sentence and the
//! node never finalizes a file under that root. (The page's side runs in `tests/browser.rs`.)

use std::time::Duration;

use licen_storage::merkle::FileTree;
use serde_json::{Value, json};

struct Stack {
    web: licen_web::Running,
    storage: licen_storage::node::RunningNode,
    _dir: tempfile::TempDir,
}

async fn stack() -> Stack {
    let dir = tempfile::tempdir().unwrap();
    let (web, storage) = licen_web::testing::web_with_storage_node(dir.path(), None).await;
    Stack {
        web,
        storage,
        _dir: dir,
    }
}

/// Stages `data` over HTTP in 200 kB pieces and commits with `commitment` (the page's root, and
/// its segment roots or not); returns the upload's id, and the commit's status and answer.
async fn stage(web: &licen_web::Running, data: &[u8], commitment: Value) -> (String, u16, Value) {
    let http = reqwest::Client::new();
    let id = licen_web::testing::begin_upload(&web.url(), data.len() as u64).await;
    for (i, piece) in data.chunks(200_000).enumerate() {
        let put = http
            .put(format!(
                "{}/api/uploads/{id}?offset={}",
                web.url(),
                i * 200_000
            ))
            .body(piece.to_vec())
            .send()
            .await
            .unwrap();
        assert!(put.status().is_success(), "{:?}", put.text().await);
    }
    let commit = http
        .post(format!("{}/api/uploads/{id}/commit", web.url()))
        .json(&commitment)
        .send()
        .await
        .unwrap();
    let status = commit.status().as_u16();
    (id, status, commit.json().await.unwrap())
}

/// Stages `data` over HTTP and commits `root` with `segment_roots`; returns the commit's status
/// and answer, then the upload's final report.
async fn stage_and_commit(
    web: &licen_web::Running,
    data: &[u8],
    root: &str,
    segment_roots: &str,
) -> (u16, Value, Value) {
    let commitment = json!({ "root": root, "segment_roots": segment_roots });
    let (id, status, answer) = stage(web, data, commitment).await;
    let mut report = answer.clone();
    for _ in 0..200 {
        if report["state"] != "storing" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        report = report_of(web, &id, 0).await;
    }
    (status, answer, report)
}

fn segment_roots_hex(tree: &FileTree) -> String {
    tree.data_segment_roots()
        .iter()
        .map(|r| hex::encode(r.0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_checks_the_pages_segment_roots_against_the_bytes() {
    let stack = stack().await;
    let node = licen_storage::StorageClient::new(&stack.storage.url()).unwrap();
    // Three segments, the last one short.
    let data: Vec<u8> = (0..600_000u32).map(|i| (i * 7 + 3) as u8).collect();
    let tree = FileTree::from_bytes(&data);

    let (status, _, report) = stage_and_commit(
        &stack.web,
        &data,
        &tree.root().to_string(),
        &segment_roots_hex(&tree),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(report["state"], "stored", "{report}");
    let stored = node
        .download_to_vec(tree.root(), Default::default())
        .await
        .unwrap();
    assert!(stored == data, "the node holds the bytes the page sent");

    // A page whose root and segment roots agree with each other but belong to other bytes:
    // accepted at commit (the server does not hash), refused by the node segment by segment.
    let mut other = data.clone();
    other[400_000] ^= 1;
    let lying = FileTree::from_bytes(&other);
    let (status, _, report) = stage_and_commit(
        &stack.web,
        &data,
        &lying.root().to_string(),
        &segment_roots_hex(&lying),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(report["state"], "failed", "{report}");
    let error = report["error"].as_str().unwrap();
    assert!(
        error.contains("the storage node did not take the file") && error.contains("upload again"),
        "{error}"
    );
    let info = node.file_info(lying.root()).await.unwrap();
    assert!(
        info.as_ref().is_none_or(|i| !i.finalized),
        "no file is finalized under the lying root: {info:?}"
    );

    // Malformed segment roots are refused before anything is stored.
    for (malformed, says) in [
        ("0xnot-hex".to_owned(), "has 7 characters"),
        ("zz".repeat(32), "not hex at segment 0"),
    ] {
        let (status, answer, _) =
            stage_and_commit(&stack.web, &data, &tree.root().to_string(), &malformed).await;
        assert_eq!(status, 400);
        let error = answer["error"].as_str().unwrap();
        assert!(
            error.contains(says) && error.contains("expected 64 hex digits per segment root"),
            "{error}"
        );
    }
    stack.web.stop().await;
}

/// Where upload `id` stands, after waiting up to `wait_ms` for it to settle.
async fn report_of(web: &licen_web::Running, id: &str, wait_ms: u64) -> Value {
    reqwest::Client::new()
        .get(format!("{}/api/uploads/{id}?wait_ms={wait_ms}", web.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Stages and commits `data` (root only: the server hashes it); returns the upload's id and the
/// commit's answer.
async fn stage_root_only(web: &licen_web::Running, data: &[u8]) -> (String, Value) {
    let root = FileTree::from_bytes(data).root();
    let (id, _, answer) = stage(web, data, json!({ "root": root.to_string() })).await;
    (id, answer)
}

/// Tells `storage` that `data` was paid for as Flow submission `seq` (what `licen storage-node
/// --flow` does on a Submit event).
fn paid(storage: &licen_storage::node::RunningNode, data: &[u8], seq: u64) {
    storage
        .register_submission(licen_storage::node::Submitted {
            root: FileTree::from_bytes(data).root(),
            size: data.len() as u64,
            seq,
            start_entry: seq * 2048,
        })
        .unwrap();
}

/// On a 0G network the storage node takes a file only once its Flow submission is on chain, and
/// the page pays for it only when the person publishes: a committed upload waits for that
/// (`awaiting_payment`), is stored as soon as the node knows the file, and one given up while
/// waiting is never stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_upload_waits_for_its_flow_payment() {
    let dir = tempfile::tempdir().unwrap();
    let flow = alloy_primitives::Address::repeat_byte(0x0f);
    let (web, storage) = licen_web::testing::web_with_flow_storage_node(dir.path(), flow).await;
    let config: Value = reqwest::get(format!("{}/api/config", web.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        config["flow"],
        json!({ "address": format!("{flow:#x}"), "abi": "current" })
    );
    let node = licen_storage::StorageClient::new(&storage.url()).unwrap();

    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 11 + 5) as u8).collect();
    let tree = FileTree::from_bytes(&data);
    let (id, answer) = stage_root_only(&web, &data).await;
    assert_eq!(answer["state"], "awaiting_payment", "{answer}");
    // Unpaid, it stays waiting (asking keeps it), and the node has nothing under its root.
    let report = report_of(&web, &id, 600).await;
    assert_eq!(report["state"], "awaiting_payment", "{report}");
    assert!(node.file_info(tree.root()).await.unwrap().is_none());

    // The Flow submission is seen (what `licen storage-node --flow` does on a Submit event).
    paid(&storage, &data, 0);
    let mut report = report_of(&web, &id, 2_000).await;
    for _ in 0..50 {
        if report["state"] == "stored" {
            break;
        }
        report = report_of(&web, &id, 200).await;
    }
    assert_eq!(report["state"], "stored", "{report}");
    let stored = node
        .download_to_vec(tree.root(), Default::default())
        .await
        .unwrap();
    assert!(stored == data, "the node holds the bytes the page sent");

    // An upload given up while it waits for its payment is never stored, even once paid.
    let other: Vec<u8> = data.iter().map(|b| b ^ 0x5a).collect();
    let other_tree = FileTree::from_bytes(&other);
    let (id, answer) = stage_root_only(&web, &other).await;
    assert_eq!(answer["state"], "awaiting_payment", "{answer}");
    let cancelled = reqwest::Client::new()
        .delete(format!("{}/api/uploads/{id}", web.url()))
        .send()
        .await
        .unwrap();
    assert!(cancelled.status().is_success());
    paid(&storage, &other, 1);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let info = node.file_info(other_tree.root()).await.unwrap().unwrap();
    assert!(
        !info.finalized && info.uploaded_seg_num == 0,
        "a cancelled upload was stored: {info:?}"
    );
    web.stop().await;
}
