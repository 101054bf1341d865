//! Browser tests of the in-page crypto (headless Chromium over WebDriver): the page reproduces
//! the format's test vectors and 0G roots, a file sealed in the page opens in Rust and one
//! sealed in Rust opens in the page, and a dataset sealed by the page and staged on the server
//! reaches the real storage node as ciphertext only (the server's request tap sees every
//! body it received: no plaintext, no key).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use licen_crypto::{NoncePrefix, StreamKey};
use licen_storage::merkle;
use licen_web::testing::{Browser, unavailable};
use serde_json::{Value, json};

fn vectors(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../crypto/tests/vectors")
        .join(name);
    serde_json::from_slice(&std::fs::read(&path).expect("reading a vector file"))
        .expect("vector JSON")
}

type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

struct Stack {
    web: licen_web::Running,
    storage: licen_storage::node::RunningNode,
    seen: Seen,
    _dir: tempfile::TempDir,
}

async fn stack() -> Stack {
    let dir = tempfile::tempdir().unwrap();
    let seen: Seen = Arc::default();
    let tap = seen.clone();
    // No indexer in this test: the pages used here do not query it.
    let (web, storage) = licen_web::testing::web_with_storage_node(
        dir.path(),
        Some(Arc::new(move |path: &str, body: &[u8]| {
            tap.lock().unwrap().push((path.to_owned(), body.to_vec()));
        })),
    )
    .await;
    Stack {
        web,
        storage,
        seen,
        _dir: dir,
    }
}

async fn open_page(stack: &Stack) -> Browser {
    let browser = Browser::launch(1280, 900)
        .await
        .expect("launching headless Chromium");
    browser.script_timeout(120_000).await.unwrap();
    browser
        .goto(&format!("{}/jobs", stack.web.url()))
        .await
        .unwrap();
    browser
        .wait_for("document.body.dataset.ready", Duration::from_secs(20))
        .await
        .unwrap();
    browser
}

const IMPORT: &str = "const C = await import('/assets/crypto.js'); await C.loadWasm();";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_crypto_matches_the_formats_and_interoperates_with_rust() {
    if let Some(reason) = unavailable() {
        println!("SKIPPED: {reason}");
        return;
    }
    let stack = stack().await;
    let browser = open_page(&stack).await;

    // Sealed-stream vectors: WebCrypto sealing and the wasm reference both byte-exact; the
    // invalid ones refused.
    let stream = vectors("sealed-stream.json");
    let out = browser
        .run(
            &format!(
                "{IMPORT} const r = [];
                 for (const v of args.valid) {{
                   const parts = [];
                   await C.sealBlob(new Blob([C.unhex(v.plaintext)]), C.unhex(v.key), C.unhex(v.nonce_prefix), async (c) => parts.push(c), v.segment_size);
                   r.push({{name: v.name, webcrypto: C.hex(C.concat(...parts)).slice(2), wasm: C.hex(C.sealBytesInWasm(C.unhex(v.key), C.unhex(v.nonce_prefix), v.segment_size, C.unhex(v.plaintext))).slice(2),
                           opened: C.hex(C.openStream(C.unhex(v.key), C.unhex(v.sealed))).slice(2)}});
                 }}
                 const refused = [];
                 for (const v of args.invalid) {{ try {{ C.openStream(C.unhex(v.key), C.unhex(v.sealed)); }} catch (e) {{ refused.push(v.name); }} }}
                 return {{r, refused}};"
            ),
            stream.clone(),
        )
        .await
        .unwrap();
    let valid = stream["valid"].as_array().unwrap();
    assert!(!valid.is_empty());
    for (v, got) in valid.iter().zip(out["r"].as_array().unwrap()) {
        assert_eq!(
            got["webcrypto"], v["sealed"],
            "WebCrypto sealing of vector {}",
            v["name"]
        );
        assert_eq!(
            got["wasm"], v["sealed"],
            "wasm sealing of vector {}",
            v["name"]
        );
        assert_eq!(
            got["opened"], v["plaintext"],
            "opening vector {}",
            v["name"]
        );
    }
    assert_eq!(
        out["refused"].as_array().unwrap().len(),
        stream["invalid"].as_array().unwrap().len(),
        "every invalid vector is refused"
    );

    // Envelope vector (owner → orchestrator, the one the page makes).
    let env = vectors("envelope.json");
    let v = env["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["kind"] == 1)
        .unwrap()
        .clone();
    let got = browser
        .run(
            &format!(
                "{IMPORT} return C.hex(C.sealDatasetEnvelope(C.unhex(args.pk), C.unhex(args.v.dataset_root), C.unhex(args.key), C.unhex(args.v.ephemeral_ikm))).slice(2);"
            ),
            json!({"pk": env["recipient_public_key"], "key": env["stream_key"], "v": v}),
        )
        .await
        .unwrap();
    assert_eq!(got, v["envelope"], "kind-01 envelope vector");

    // Sealed result vector opens in the page with the researcher key derived from its seed.
    let result = vectors("sealed-result.json");
    let (secret, _) = licen_crypto::keypair_from_seed(
        &hex::decode(result["researcher_seed"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap(),
    );
    let got = browser
        .run(
            &format!("{IMPORT} return C.hex(C.openResult(C.unhex(args.sk), C.unhex(args.r.job_id), C.unhex(args.r.dataset_root), C.unhex(args.r.sealed_result))).slice(2);"),
            json!({"sk": hex::encode(secret.to_bytes().as_slice()), "r": result}),
        )
        .await
        .unwrap();
    assert_eq!(
        got, result["plaintext"],
        "sealed-result vector opens in the page"
    );

    // Result key from a wallet signature: the same pair as the CLI derives.
    let signature: Vec<u8> = (0..65u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect();
    let (_, public) = licen_crypto::envelope::result_keypair_from_signature(&signature);
    let got = browser
        .run(
            &format!(
                "{IMPORT} return C.hex(C.resultKeypair(C.unhex(args.sig)).publicKey).slice(2);"
            ),
            json!({"sig": hex::encode(&signature)}),
        )
        .await
        .unwrap();
    assert_eq!(got, hex::encode(public.to_bytes()));

    // 0G roots: known values and the Rust implementation across the padding boundaries.
    let sizes = [
        0usize, 1, 255, 256, 257, 1536, 1792, 262_143, 262_144, 262_145, 1_000_000, 3_000_000,
    ];
    let got = browser
        .run(
            &format!(
                "{IMPORT} return args.sizes.map((n) => {{ const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = (i * 31 + 7) & 255; return [C.hex(C.rootOf(b)), C.hex(C.rootOf(new Uint8Array(n)))]; }});"
            ),
            json!({"sizes": sizes}),
        )
        .await
        .unwrap();
    for (n, pair) in sizes.iter().zip(got.as_array().unwrap()) {
        let data: Vec<u8> = (0..*n).map(|i| ((i * 31 + 7) & 255) as u8).collect();
        assert_eq!(
            pair[0],
            merkle::root(&data).to_string(),
            "root of {n} patterned bytes"
        );
        assert_eq!(
            pair[1],
            merkle::root(&vec![0; *n]).to_string(),
            "root of {n} zero bytes"
        );
    }
    // The worker-pool root (4 MiB pieces hashed on other threads, joined with the tail) agrees.
    let size = 9 * (4 << 20) / 4 + 12_345;
    let parallel = browser
        .run(
            &format!(
                "{IMPORT} const n = args.size; const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = (i * 31 + 7) & 255;
                 const r = new C.ParallelRoot(n); let at = 0;
                 for (; at + (4 << 20) < n; at += 4 << 20) await r.add(b.slice(at, at + (4 << 20)));
                 const {{ root, segmentRoots }} = await r.finish(b.subarray(at)); return [C.hex(root), C.hex(segmentRoots)];"
            ),
            json!({"size": size}),
        )
        .await
        .unwrap();
    let data: Vec<u8> = (0..size).map(|i| ((i * 31 + 7) & 255) as u8).collect();
    let tree = merkle::FileTree::from_bytes(&data);
    assert_eq!(
        parallel[0],
        tree.root().to_string(),
        "worker-pool root of {size} bytes"
    );
    let segment_roots: String = tree
        .data_segment_roots()
        .iter()
        .map(|r| hex::encode(r.0))
        .collect();
    assert_eq!(
        parallel[1].as_str().unwrap().trim_start_matches("0x"),
        segment_roots,
        "the worker pool's segment roots of {size} bytes"
    );
    let known = got.as_array().unwrap();
    assert_eq!(
        known[5][1],
        "0x567c47a879794dd489a210dec17d31cc5919bc427d138d716a8107e025e2dbcb"
    );
    assert_eq!(
        known[6][1],
        "0x294253ab31cbf90dbbbef755a75ff1601da790e35c365f530e7c1a1ca904dcf8"
    );
    assert_eq!(
        known[0][1],
        "0xd397b3b043d87fcd6fad1291ff0bfd16401c274896d8c63a923727f077b8e0b5"
    );

    // Interop: page-sealed (WebCrypto, several segments, default size) opens in Rust; Rust-sealed
    // opens in the page.
    let key = [0x42u8; 32];
    let plain: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let sealed_in_page = browser
        .run(
            &format!(
                "{IMPORT} const pt = new Uint8Array(200000); for (let i = 0; i < pt.length; i++) pt[i] = i % 251;
                 const parts = []; await C.sealBlob(new Blob([pt]), C.unhex(args.key), C.randomBytes(7), async (c) => parts.push(c));
                 return C.hex(C.concat(...parts)).slice(2);"
            ),
            json!({"key": hex::encode(key)}),
        )
        .await
        .unwrap();
    let sealed_in_page = hex::decode(sealed_in_page.as_str().unwrap()).unwrap();
    assert_eq!(
        licen_crypto::stream::open(&StreamKey::from_bytes(key), &sealed_in_page).unwrap(),
        plain,
        "a file sealed in the page opens in Rust"
    );
    let sealed_in_rust = licen_crypto::stream::seal(
        &StreamKey::from_bytes(key),
        &NoncePrefix::from_bytes([9; 7]),
        &plain,
    )
    .unwrap();
    let opened = browser
        .run(
            &format!("{IMPORT} return C.hex(C.openStream(C.unhex(args.key), C.unhex(args.sealed))).slice(2);"),
            json!({"key": hex::encode(key), "sealed": hex::encode(&sealed_in_rust)}),
        )
        .await
        .unwrap();
    assert_eq!(
        opened,
        hex::encode(&plain),
        "a file sealed in Rust opens in the page"
    );

    // A lora result archive (a ustar, as the compute node packs it) is read by the page as its
    // files, byte for byte; one holding a path, or with a damaged header, is refused by name.
    let archive = |entries: &[(&str, &[u8])]| {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut header = tar::Header::new_ustar();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            builder.append_data(&mut header, name, *data).unwrap();
        }
        builder.into_inner().unwrap()
    };
    let weights: Vec<u8> = (0..70_000u32).map(|i| (i % 253) as u8).collect();
    let good = archive(&[
        ("adapter_config.json", b"{\"r\":8}"),
        ("adapter_model.safetensors", &weights),
    ]);
    let mut damaged = good.clone();
    damaged[0] ^= 1;
    let with_path = archive(&[("adapter/config.json", b"{}")]);
    let twice = archive(&[("a.json", b"{}"), ("a.json", b"[]")]);
    let disguised = archive(&[("report\u{202E}nosj.exe", b"{}")]);
    let cut = good[..512 + 512 + 512 + 1000].to_vec();
    let read = browser
        .run(
            &format!(
                "{IMPORT} const read = (h) => {{ const b = C.unhex(h); if (!C.isArchive(b)) return 'not an archive';
                   try {{ return C.archiveFiles(b).map((f) => [f.name, C.hex(f.bytes).slice(2)]); }} catch (e) {{ return e.message; }} }};
                 return args.map(read);"
            ),
            json!([hex::encode(&good), hex::encode(&damaged), hex::encode(&with_path), hex::encode(b"{\"simulated\":true}"), hex::encode(&twice), hex::encode(&disguised), hex::encode(&cut)]),
        )
        .await
        .unwrap();
    assert_eq!(
        read[0],
        json!([
            ["adapter_config.json", hex::encode(b"{\"r\":8}")],
            ["adapter_model.safetensors", hex::encode(&weights)]
        ]),
        "the page reads the archive's files"
    );
    let refusal = |i: usize| read[i].as_str().unwrap_or_default().to_owned();
    assert!(
        refusal(1).contains("the result archive is damaged"),
        "{}",
        read[1]
    );
    assert!(
        refusal(2).contains("\"adapter/config.json\", which is not a plain file name"),
        "{}",
        read[2]
    );
    assert!(refusal(4).contains("\"a.json\" twice"), "{}", read[4]);
    assert!(
        refusal(5).contains("which is not a plain file name"),
        "a name with a right-to-left override is refused: {}",
        read[5]
    );
    assert!(refusal(6).contains("cut short"), "{}", read[6]);
    assert_eq!(read[3], "not an archive");
    browser.screenshot("crypto-selftest").await.unwrap();
    drop(browser);
    stack.web.stop().await;
    stack.storage.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_uploads_ciphertext_only_through_the_server() {
    if let Some(reason) = unavailable() {
        println!("SKIPPED: {reason}");
        return;
    }
    let stack = stack().await;
    let browser = open_page(&stack).await;
    let (orchestrator_secret, orchestrator_public) = licen_crypto::keypair_from_seed(&[0x0c; 32]);
    let key = [0x5eu8; 32];
    const MARKER: &str = "PLAINTEXT-MARKER-must-never-leave-the-page";
    // ~5.6 MB of JSONL: more than one 4 MiB piece (hashed by the worker pool), many segments.
    let got = browser
        .run(
            &format!(
                "{IMPORT} const lines = []; for (let i = 0; i < 80000; i++) lines.push(JSON.stringify({{text: `${{args.marker}} row ${{i}}`}}));
                 const file = new File([lines.join('\\n') + '\\n'], 'data.jsonl');
                 const summary = await C.scanJsonl(file);
                 const r = await C.sealAndUpload(file, C.unhex(args.pk), null, {{key: C.unhex(args.key)}});
                 return {{root: C.hex(r.datasetRoot), envelope: C.hex(r.envelopeRoot), size: r.sealedBytes, rows: summary.rows, schema: summary.schema, bytes: summary.bytes, fileSize: file.size}};"
            ),
            json!({"pk": hex::encode(orchestrator_public.to_bytes()), "key": hex::encode(key), "marker": MARKER}),
        )
        .await
        .unwrap();
    assert_eq!(got["rows"], 80000);
    assert_eq!(got["schema"], "text");
    assert_eq!(got["bytes"], got["fileSize"]);

    // The storage node holds the ciphertext under the page's root; it opens with the key from
    // the envelope (opened by the orchestrator's secret key), and is the plaintext.
    let client = licen_storage::StorageClient::new(&stack.storage.url()).unwrap();
    let root: merkle::Hash = got["root"].as_str().unwrap().parse().unwrap();
    let envelope_root: merkle::Hash = got["envelope"].as_str().unwrap().parse().unwrap();
    let sealed = client
        .download_to_vec(root, Default::default())
        .await
        .unwrap();
    assert_eq!(sealed.len() as u64, got["size"].as_u64().unwrap());
    assert_eq!(merkle::root(&sealed), root);
    let envelope = client
        .download_to_vec(envelope_root, Default::default())
        .await
        .unwrap();
    let opened_key = licen_crypto::open_key(
        &orchestrator_secret,
        &envelope,
        &licen_crypto::EnvelopeContext::OwnerToOrchestrator {
            dataset_root: root.0,
        },
    )
    .unwrap();
    assert_eq!(opened_key.as_bytes(), &key);
    let plain = licen_crypto::stream::open(&opened_key, &sealed).unwrap();
    let text = String::from_utf8(plain).unwrap();
    assert_eq!(text.lines().count(), 80000);
    assert!(text.starts_with(&format!("{{\"text\":\"{MARKER} row 0\"}}")));

    // What the server received: sealed bytes staged under /api/uploads (raw binary pieces of the
    // sealed stream, then the page's root), no plaintext, no key.
    let seen = stack.seen.lock().unwrap().clone();
    let staged: usize = seen
        .iter()
        .filter(|(p, _)| p.starts_with("/api/uploads/") && !p.ends_with("/commit"))
        .map(|(_, body)| body.len())
        .sum();
    assert!(
        staged as u64 >= got["size"].as_u64().unwrap(),
        "the page streamed the sealed dataset to the staging area ({staged} bytes)"
    );
    let key_forms = [
        key.to_vec(),
        hex::encode(key).into_bytes(),
        base64::engine::general_purpose::STANDARD
            .encode(key)
            .into_bytes(),
    ];
    for (path, body) in &seen {
        let mut received = body.clone();
        // Segment data travels base64-encoded: decode every string field and look inside too.
        if let Ok(v) = serde_json::from_slice::<Value>(body) {
            collect_decoded(&v, &mut received);
        }
        assert!(
            !contains(&received, MARKER.as_bytes()),
            "the server received plaintext at {path}"
        );
        for form in &key_forms {
            assert!(
                !contains(&received, form),
                "the server received the dataset key at {path}"
            );
        }
    }

    // Read back in the page, segment by segment: the ~5.6 MB file (many segments, a short last
    // one) and one of exactly two segments verify against their roots and download byte for byte.
    let two_segments: Vec<u8> = (0..2 * 256 * 1024u32).map(|i| (i % 241) as u8).collect();
    let even = client.upload_bytes(&two_segments, None).await.unwrap().root;
    for (root, bytes) in [(root, &sealed), (even, &two_segments)] {
        let read = browser
            .run(
                &format!(
                    "{IMPORT} const root = C.unhex(args.root); const v = await C.verifyStored(root); const d = await C.downloadFile(root);
                     return {{matches: v.matches, size: v.size, length: d.length, head: C.hex(d.subarray(0, 64)), tail: C.hex(d.subarray(d.length - 64))}};"
                ),
                json!({"root": root.to_string()}),
            )
            .await
            .unwrap();
        let hexed = |b: &[u8]| format!("0x{}", hex::encode(b));
        assert_eq!(read["matches"], true, "{root}: {read}");
        assert_eq!(read["size"], bytes.len(), "{root}: {read}");
        assert_eq!(read["length"], bytes.len(), "{root}: {read}");
        assert_eq!(read["head"], hexed(&bytes[..64]), "{root}");
        assert_eq!(read["tail"], hexed(&bytes[bytes.len() - 64..]), "{root}");
    }
    drop(browser);
    stack.web.stop().await;
    stack.storage.shutdown().await.unwrap();
}

fn collect_decoded(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::String(s) => {
            if let Ok(b) = base64::engine::general_purpose::STANDARD.decode(s) {
                out.extend_from_slice(&b);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_decoded(x, out)),
        Value::Object(o) => o.values().for_each(|x| collect_decoded(x, out)),
        _ => {}
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_the_page_gives_up_is_deleted_on_the_server() {
    if let Some(reason) = unavailable() {
        println!("SKIPPED: {reason}");
        return;
    }
    let stack = stack().await;
    let browser = open_page(&stack).await;
    // Another file picked while this one uploads: the page stops and cancels the upload.
    let outcome = browser
        .run(
            &format!(
                "{IMPORT} const piece = new Uint8Array(4 << 20); for (let i = 0; i < piece.length; i += 65536) crypto.getRandomValues(piece.subarray(i, i + 65536));
                 const file = new Blob(Array(16).fill(piece));
                 const stop = new AbortController();
                 try {{
                   await C.sealAndUploadData(file, (label, done) => {{ if (done > (8 << 20)) stop.abort(); }}, {{ signal: stop.signal }});
                   return 'finished';
                 }} catch (e) {{ return e.name; }}"
            ),
            json!({}),
        )
        .await
        .unwrap();
    assert_eq!(outcome, "AbortError");
    let id = stack
        .seen
        .lock()
        .unwrap()
        .iter()
        .find_map(|(path, _)| {
            path.strip_prefix("/api/uploads/")?
                .strip_suffix("/socket")
                .map(str::to_owned)
        })
        .expect("the upload's socket carried pieces");
    // The cancellation is sent without waiting for it: give it a moment.
    let report = format!("{}/api/uploads/{id}", stack.web.url());
    let mut status = 0;
    for _ in 0..50 {
        status = reqwest::get(&report).await.unwrap().status().as_u16();
        if status == 404 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 404, "the server dropped the cancelled upload");
    drop(browser);
    stack.web.stop().await;
    stack.storage.shutdown().await.unwrap();
}
