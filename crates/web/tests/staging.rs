//! Committing a staged upload against a real storage node (in process): with the page's
//! segment roots the server stores the file without hashing it, and the node, which checks
//! every segment's bytes against the proofs those roots give, refuses a page whose segment roots
//! (consistent with its root) describe other bytes: the upload fails with a sentence and the
//! node never finalizes a file under that root. Through a 0G storage indexer over two shard
//! nodes, a committed file is split between them (each holds its shard's segments only), a Flow
//! upload waits until both nodes saw its submission, and the page's storage relay reads the
//! file back whole from both. (The page's side runs in `tests/browser.rs`.)

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
    let report = stored(&web, &id).await;
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

/// Which segments of `root` (of `segments`) the node at `url` serves.
async fn served(url: &str, root: licen_storage::Hash, segments: u64) -> Vec<u64> {
    let node = licen_storage::StorageClient::new(url).unwrap();
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

/// One call through the page's storage relay: its HTTP status and answer.
async fn relay(web: &licen_web::Running, method: &str, params: Value) -> (u16, Value) {
    let answer = reqwest::Client::new()
        .post(format!("{}/api/storage", web.url()))
        .json(&json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}))
        .send()
        .await
        .unwrap();
    (answer.status().as_u16(), answer.json().await.unwrap())
}

/// Waits for upload `id` to be stored (through `awaiting_payment` and `storing`), up to about
/// 12 s; returns its last report.
async fn stored(web: &licen_web::Running, id: &str) -> Value {
    let mut report = report_of(web, id, 2_000).await;
    for _ in 0..50 {
        if report["state"] == "stored" {
            break;
        }
        report = report_of(web, id, 200).await;
    }
    report
}

/// Waits for upload `id` to leave `storing`; returns its report.
async fn settled(web: &licen_web::Running, id: &str) -> Value {
    let mut report = report_of(web, id, 2_000).await;
    for _ in 0..50 {
        if report["state"] != "storing" {
            break;
        }
        report = report_of(web, id, 200).await;
    }
    report
}

/// Through a storage indexer over shards 0/2 and 1/2: a committed file is split between the
/// nodes, and the relay answers the page's file info and every segment download from the node
/// holding it, byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_a_storage_indexer_a_file_is_split_over_shards_and_read_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (web, indexer, nodes) =
        licen_web::testing::web_with_storage_indexer(dir.path(), &["0/2", "1/2"]).await;
    // Six segments, the last one short.
    let size = 5 * licen_storage::merkle::SEGMENT_SIZE + 1000;
    let data: Vec<u8> = (0..size as u32).map(|i| (i * 13 + 1) as u8).collect();
    let tree = FileTree::from_bytes(&data);
    let root = tree.root();
    let (status, _, report) =
        stage_and_commit(&web, &data, &root.to_string(), &segment_roots_hex(&tree)).await;
    assert_eq!(status, 200);
    assert_eq!(report["state"], "stored", "{report}");
    assert_eq!(report["stored"], size, "{report}");
    // Each node holds its own shard's segments (Flow position = segment index here), finalized.
    assert_eq!(served(&nodes[0].url(), root, 6).await, vec![0, 2, 4]);
    assert_eq!(served(&nodes[1].url(), root, 6).await, vec![1, 3, 5]);

    // The page's reads (`readStored` in crypto.js), through the relay.
    let (status, info) = relay(&web, "zgs_getFileInfo", json!([root, true])).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["id"], 7);
    assert_eq!(info["result"]["finalized"], true, "{info}");
    assert_eq!(info["result"]["tx"]["size"], size, "{info}");
    let chunks = size.div_ceil(256) as u64;
    let mut back = Vec::new();
    for start in (0..chunks).step_by(1024) {
        let end = chunks.min(start + 1024);
        let (status, answer) = relay(&web, "zgs_downloadSegment", json!([root, start, end])).await;
        assert_eq!(status, 200, "{answer}");
        let b64 = answer["result"]
            .as_str()
            .unwrap_or_else(|| panic!("chunks {start}..{end}: {answer}"));
        let bytes =
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).unwrap();
        back.extend_from_slice(&bytes[..bytes.len().min(size - back.len())]);
    }
    assert!(
        back == data,
        "the relay hands out the bytes the page stored"
    );
    let (_, proof) = relay(&web, "zgs_downloadSegmentWithProof", json!([root, 3])).await;
    assert!(
        proof["result"].is_object(),
        "segment 3 from the 1/2 node: {proof}"
    );

    // A range crossing from one shard's segment into the other's is refused with a sentence.
    let (status, answer) = relay(&web, "zgs_downloadSegment", json!([root, 512, 1536])).await;
    assert_eq!(status, 400);
    let error = answer["error"].as_str().unwrap();
    assert!(error.contains("one segment at a time"), "{error}");
    // A file no node holds: as a node answers, `null`.
    let unknown = licen_storage::Hash::repeat_byte(0x42);
    let (status, answer) = relay(&web, "zgs_getFileInfo", json!([unknown, true])).await;
    assert_eq!((status, &answer["result"]), (200, &Value::Null), "{answer}");

    // With the indexer gone, the relay and new uploads say so.
    tokio::time::timeout(Duration::from_secs(10), indexer.shutdown())
        .await
        .expect("the storage indexer stops")
        .unwrap();
    let (status, answer) = relay(&web, "zgs_getFileInfo", json!([unknown, true])).await;
    assert_eq!(status, 502, "{answer}");
    let error = answer["error"].as_str().unwrap();
    assert!(error.contains("storage indexer"), "{error}");
    let (id, _) = stage_root_only(&web, &data[..1000]).await;
    let report = settled(&web, &id).await;
    assert_eq!(report["state"], "failed", "{report}");
    let error = report["error"].as_str().unwrap();
    assert!(
        error.contains("found no storage nodes") && error.contains("upload again"),
        "{error}"
    );
    web.stop().await;
}

/// On a 0G network each node follows the Flow on its own: a committed upload through a storage
/// indexer waits until every node it goes to saw the submission, then is stored on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_a_storage_indexer_an_upload_waits_until_every_node_saw_its_payment() {
    let dir = tempfile::tempdir().unwrap();
    let flow = alloy_primitives::Address::repeat_byte(0x0f);
    let (web, _indexer, nodes) =
        licen_web::testing::web_with_flow_storage_indexer(dir.path(), &["0/2", "1/2"], flow).await;
    let data: Vec<u8> = (0..600_000u32).map(|i| (i * 5 + 9) as u8).collect();
    let root = FileTree::from_bytes(&data).root();
    let (id, answer) = stage_root_only(&web, &data).await;
    assert_eq!(answer["state"], "awaiting_payment", "{answer}");

    // One node saw the submission, the other not yet: still waiting, nothing sent.
    paid(&nodes[0], &data, 0);
    let report = report_of(&web, &id, 1_500).await;
    assert_eq!(report["state"], "awaiting_payment", "{report}");
    let info = licen_storage::StorageClient::new(&nodes[0].url())
        .unwrap()
        .file_info(root)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        info.uploaded_seg_num, 0,
        "nothing sent before both saw it: {info:?}"
    );
    // The publish page asks whether a file was paid for already: known, not stored yet.
    let (status, known) = relay(&web, "zgs_getFileInfo", json!([root, false])).await;
    assert_eq!(status, 200, "{known}");
    assert_eq!(known["result"]["finalized"], false, "{known}");

    paid(&nodes[1], &data, 0);
    let report = stored(&web, &id).await;
    assert_eq!(report["state"], "stored", "{report}");
    assert_eq!(served(&nodes[0].url(), root, 3).await, vec![0, 2]);
    assert_eq!(served(&nodes[1].url(), root, 3).await, vec![1]);
    let (_, info) = relay(&web, "zgs_getFileInfo", json!([root, true])).await;
    assert_eq!(info["result"]["finalized"], true, "{info}");
    web.stop().await;
}

/// A node picked for an upload that stops answering while the upload awaits its payment does
/// not hold it up for good: the upload picks its nodes again through the indexer (which leaves
/// the silent node out) and is stored on a set that saw the payment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_awaiting_payment_picks_again_when_a_picked_node_stops_answering() {
    let dir = tempfile::tempdir().unwrap();
    let flow = alloy_primitives::Address::repeat_byte(0x0f);
    // Two nodes hold the odd segments: 0G's selection picks the first of them.
    let (web, _indexer, mut nodes) =
        licen_web::testing::web_with_flow_storage_indexer(dir.path(), &["0/2", "1/2", "1/2"], flow)
            .await;
    let data: Vec<u8> = (0..600_000u32).map(|i| (i * 7 + 3) as u8).collect();
    let root = FileTree::from_bytes(&data).root();
    let (id, answer) = stage_root_only(&web, &data).await;
    assert_eq!(answer["state"], "awaiting_payment", "{answer}");

    // The payment reaches the even node and the second odd one, not the picked odd one: the
    // upload keeps waiting for the node it picked.
    paid(&nodes[0], &data, 0);
    paid(&nodes[2], &data, 0);
    let report = report_of(&web, &id, 1_500).await;
    assert_eq!(report["state"], "awaiting_payment", "{report}");

    // The picked odd node stops: the upload goes to the nodes that answer and saw the payment.
    let picked = nodes.remove(1);
    picked.shutdown().await.unwrap();
    let report = stored(&web, &id).await;
    assert_eq!(report["state"], "stored", "{report}");
    assert_eq!(served(&nodes[0].url(), root, 3).await, vec![0, 2]);
    assert_eq!(served(&nodes[1].url(), root, 3).await, vec![1]);
    web.stop().await;
}

/// On 0G the page pays the Flow the storage nodes name in `zgs_getStatus`; a Flow they do not
/// follow, or nodes of another chain's Flow, are refused before the app serves a page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_pays_the_flow_the_storage_nodes_name() {
    let dir = tempfile::tempdir().unwrap();
    let theirs = alloy_primitives::Address::repeat_byte(0xf1);
    let mut node_config = licen_storage::node::NodeConfig::new(dir.path().join("node"));
    node_config.listen = "127.0.0.1:0".parse().unwrap();
    node_config.flow = Some(licen_storage::node::FollowedFlow {
        chain_id: 31337,
        address: theirs,
    });
    let node = licen_storage::node::start(node_config).await.unwrap();
    let config =
        || licen_web::testing::config_without_chain("http://127.0.0.1:9".into(), node.url());

    // On dev nothing is asked: a Flow there is named with --flow.
    let mut dev = config();
    licen_web::server::pay_the_nodes_flow(&mut dev, licen_chain::Network::Dev)
        .await
        .unwrap();
    assert!(dev.flow.is_none());

    let mut named = config();
    licen_web::server::pay_the_nodes_flow(&mut named, licen_chain::Network::Galileo)
        .await
        .unwrap();
    assert_eq!(named.flow.map(|f| f.address), Some(theirs));

    let mut other = config();
    other.flow = Some(licen_web::PublicFlow {
        address: alloy_primitives::Address::repeat_byte(0x77),
        abi: None,
    });
    let refused = licen_web::server::pay_the_nodes_flow(&mut other, licen_chain::Network::Galileo)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("is not the Flow contract the storage nodes follow"),
        "{refused}"
    );

    let mut elsewhere = config();
    elsewhere.chain.chain_id = 16602;
    let refused =
        licen_web::server::pay_the_nodes_flow(&mut elsewhere, licen_chain::Network::Galileo)
            .await
            .unwrap_err()
            .to_string();
    assert!(
        refused.contains("on chain 31337, but payments would go to chain 16602"),
        "{refused}"
    );
    node.shutdown().await.unwrap();
}
