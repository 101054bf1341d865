//! `licen-wasm`: the byte formats of `licen-crypto` and the 0G Merkle root of `licen-storage`,
//! exported to the web page as a plain WebAssembly module (no generated glue, no extra tool:
//! `crates/web/assets/crypto.js` is the JavaScript side).
//!
//! Owns: the export surface the page calls. Data moves through two crate-owned buffers: the page
//! asks for an input buffer of a size ([`licen_input`]), writes into it, calls an operation, and
//! reads the operation's output buffer ([`licen_output_ptr`], [`licen_output_len`]). Every
//! operation returns `0` on success, or `1` with a UTF-8 error sentence in the output buffer.
//!
//! Randomness comes from the page (`crypto.getRandomValues`) as explicit input bytes, so the
//! module needs no host imports at all.
//!
//! Must never: keep a key or plaintext longer than the call that uses it (buffers are cleared
//! before the next operation overwrites them), reimplement a format (it only calls
//! `licen-crypto`, `licen-storage` and the `tar` crate), or do I/O.

use std::cell::RefCell;

use licen_crypto::envelope::{EnvelopeContext, RESULT_KEY_MESSAGE, result_keypair_from_signature};
use licen_crypto::rand_core::{Infallible, TryCryptoRng, TryRng};
use licen_crypto::{PublicKey, SecretKey, StreamKey, seal_key};
use licen_storage::merkle::{
    FileLayout, FileTree, Hash, RootBuilder, SEGMENT_CHUNKS, SEGMENT_SIZE, segment_root,
};

thread_local! {
    static INPUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static OUTPUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static ROOT: RefCell<Option<RootBuilder>> = const { RefCell::new(None) };
}

/// Status codes returned to the page.
const OK: u32 = 0;
const FAILED: u32 = 1;

/// Makes the input buffer exactly `len` bytes (zeroed) and returns where the page writes them.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub extern "C" fn licen_input(len: usize) -> *mut u8 {
    INPUT.with_borrow_mut(|input| {
        input.iter_mut().for_each(|b| *b = 0);
        input.clear();
        input.resize(len, 0);
        input.as_mut_ptr()
    })
}

/// Where the last operation's output starts.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub extern "C" fn licen_output_ptr() -> *const u8 {
    OUTPUT.with_borrow(|output| output.as_ptr())
}

/// Length of the last operation's output.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub extern "C" fn licen_output_len() -> usize {
    OUTPUT.with_borrow(|output| output.len())
}

/// Clears both buffers (the page calls this after reading a secret output).
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub extern "C" fn licen_clear() {
    INPUT.with_borrow_mut(wipe);
    OUTPUT.with_borrow_mut(wipe);
}

fn wipe(buffer: &mut Vec<u8>) {
    buffer.iter_mut().for_each(|b| *b = 0);
    buffer.clear();
}

/// Runs `op` on the input and stores its output (or its error sentence).
fn run(op: impl FnOnce(&[u8]) -> Result<Vec<u8>, String>) -> u32 {
    let result = INPUT.with_borrow(|input| op(input));
    INPUT.with_borrow_mut(wipe);
    OUTPUT.with_borrow_mut(|output| {
        wipe(output);
        match result {
            Ok(bytes) => {
                *output = bytes;
                OK
            }
            Err(message) => {
                *output = message.into_bytes();
                FAILED
            }
        }
    })
}

fn array<const N: usize>(bytes: &[u8], what: &str) -> Result<[u8; N], String> {
    bytes
        .try_into()
        .map_err(|_| format!("{what} must be {N} bytes, got {}", bytes.len()))
}

/// `keccak256(input)` → 32 bytes.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub extern "C" fn licen_keccak256() -> u32 {
    run(|input| Ok(licen_storage::merkle::keccak256(input).to_vec()))
}

/// Starts a new 0G root computation (dropping any earlier one).
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub extern "C" fn licen_root_begin() {
    ROOT.with_borrow_mut(|root| *root = Some(RootBuilder::sequential()));
}

/// Feeds the input bytes (the next part of the file) into the root computation.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub extern "C" fn licen_root_update() -> u32 {
    run(|input| {
        ROOT.with_borrow_mut(|root| match root {
            Some(builder) => {
                builder.update(input);
                Ok(Vec::new())
            }
            None => Err("no root computation started (call licen_root_begin first)".into()),
        })
    })
}

/// Finishes the root computation → the 32-byte 0G root.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub extern "C" fn licen_root_finish() -> u32 {
    run(|_| {
        let builder = ROOT
            .with_borrow_mut(Option::take)
            .ok_or("no root computation started (call licen_root_begin first)")?;
        Ok(builder.finish().root().to_vec())
    })
}

/// Input: whole 256 KiB segments of a file, none of them its last data segment → their
/// segment roots (32 bytes each, in order). Web Workers call this on different parts of one
/// file at the same time; [`licen_root_from_segments`] joins their answers.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub extern "C" fn licen_segment_roots() -> u32 {
    run(|input| {
        if input.is_empty() || !input.len().is_multiple_of(SEGMENT_SIZE) {
            return Err(format!(
                "expected whole segments of {SEGMENT_SIZE} bytes, got {} bytes",
                input.len()
            ));
        }
        Ok(input
            .chunks(SEGMENT_SIZE)
            .flat_map(|segment| segment_root(segment, SEGMENT_CHUNKS).0)
            .collect())
    })
}

/// Input: file size (BE64) ‖ n (BE32) ‖ the roots of the file's first n segments (from
/// [`licen_segment_roots`]) ‖ the file's bytes after those segments → the 32-byte 0G root ‖
/// the roots of all its data segments (32 bytes each; what the page commits to the server,
/// which forwards them to the storage node as proofs).
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub extern "C" fn licen_root_from_segments() -> u32 {
    run(|input| {
        let (tree, _) = tree_from_segments(input)?;
        let mut out = tree.root().to_vec();
        out.extend(tree.data_segment_roots().iter().flat_map(|r| r.0));
        Ok(out)
    })
}

/// Input: as [`licen_root_from_segments`] → the file's 0G Flow submission node list: per node
/// its root (32 bytes) ‖ height (BE32), in the Flow's order (what [`licen_flow_call`] encodes
/// when the file is paid for on a 0G network).
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub extern "C" fn licen_flow_nodes() -> u32 {
    run(|input| {
        let (tree, last_segment) = tree_from_segments(input)?;
        let nodes = tree
            .with_tail_data(last_segment)
            .submission_nodes()
            .map_err(|e| e.to_string())?;
        Ok(nodes
            .iter()
            .flat_map(|n| n.root.0.into_iter().chain(n.height.to_be_bytes()))
            .collect())
    })
}

/// Input: ABI generation (1 byte: 0 current, 1 legacy) ‖ submitter address (20) ‖ price per
/// sector (BE 32 bytes, wei) ‖ then per file: size (BE64) ‖ node count (BE32) ‖ its nodes from
/// [`licen_flow_nodes`] → the fee (BE 32 bytes, wei) ‖ the calldata of one Flow transaction
/// paying for all the files (`submit` for one, `batchSubmit` for several; a legacy Flow takes
/// one file per transaction).
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub extern "C" fn licen_flow_call() -> u32 {
    use licen_storage::merkle::SubmissionNode;
    use licen_storage::zerog::{FlowAbi, FlowSubmission};
    run(|input| {
        if input.len() < 53 {
            return Err("expected ABI generation ‖ submitter ‖ price ‖ files".into());
        }
        let abi = match input[0] {
            0 => FlowAbi::Current,
            1 => FlowAbi::Legacy,
            other => {
                return Err(format!(
                    "ABI generation {other} is neither 0 (current) nor 1 (legacy)"
                ));
            }
        };
        let submitter = alloy_primitives::Address::from_slice(&input[1..21]);
        let price = alloy_primitives::U256::from_be_slice(&input[21..53]);
        let mut rest = &input[53..];
        let mut files = Vec::new();
        while !rest.is_empty() {
            if rest.len() < 12 {
                return Err(format!(
                    "file {} is cut short: expected size ‖ node count",
                    files.len() + 1
                ));
            }
            let length = u64::from_be_bytes(array::<8>(&rest[..8], "file size")?);
            let count = u32::from_be_bytes(array::<4>(&rest[8..12], "node count")?) as usize;
            let end = 12 + 36 * count;
            if rest.len() < end {
                return Err(format!(
                    "file {} announces {count} nodes but has fewer",
                    files.len() + 1
                ));
            }
            let nodes = rest[12..end]
                .chunks(36)
                .map(|n| SubmissionNode {
                    root: Hash::from_slice(&n[..32]),
                    height: u32::from_be_bytes([n[32], n[33], n[34], n[35]]),
                })
                .collect();
            files.push(FlowSubmission {
                length,
                tags: Vec::new(),
                nodes,
            });
            rest = &rest[end..];
        }
        let call =
            FlowSubmission::batch_call(&files, abi, submitter, price).map_err(|e| e.to_string())?;
        let mut out = call.value.to_be_bytes::<32>().to_vec();
        out.extend_from_slice(&call.data);
        Ok(out)
    })
}

/// Parses size ‖ n ‖ n segment roots ‖ remaining bytes into the file's tree and the bytes of
/// its last data segment.
fn tree_from_segments(input: &[u8]) -> Result<(FileTree, &[u8]), String> {
    if input.len() < 12 {
        return Err("expected size ‖ segment count ‖ segment roots ‖ remaining bytes".into());
    }
    let size = u64::from_be_bytes(array::<8>(&input[..8], "file size")?);
    let known = u32::from_be_bytes(array::<4>(&input[8..12], "segment count")?) as usize;
    let roots_end = 12 + 32 * known;
    if input.len() < roots_end {
        return Err(format!(
            "{known} segment roots need {} bytes, got {}",
            32 * known,
            input.len() - 12
        ));
    }
    let tail = &input[roots_end..];
    let covered = (known * SEGMENT_SIZE + tail.len()) as u64;
    if covered != size || (tail.is_empty() && size > 0) {
        return Err(format!(
            "{known} segments and {} remaining bytes do not make a file of {size} bytes (the last data segment must be among the remaining bytes)",
            tail.len()
        ));
    }
    let layout = FileLayout::new(size);
    let mut roots: Vec<Hash> = input[12..roots_end]
        .chunks(32)
        .map(Hash::from_slice)
        .collect();
    for (i, segment) in tail.chunks(SEGMENT_SIZE).enumerate() {
        roots.push(segment_root(
            segment,
            layout.segment_tree_chunks((known + i) as u64),
        ));
    }
    let tree = FileTree::from_segment_roots(layout, roots).map_err(|e| e.to_string())?;
    Ok((tree, tail.chunks(SEGMENT_SIZE).last().unwrap_or_default()))
}

/// Yields the page's random bytes, in order; running out is an error, never a silent repeat.
struct PageRandomness<'a> {
    bytes: &'a [u8],
}

impl TryRng for PageRandomness<'_> {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        // The callers below hand over exactly what one X25519 key generation draws (32 bytes);
        // a longer draw would be a change in hpke that must fail loudly, not reuse bytes.
        assert!(dst.len() <= self.bytes.len(), "page randomness exhausted");
        let (now, rest) = self.bytes.split_at(dst.len());
        dst.copy_from_slice(now);
        self.bytes = rest;
        Ok(())
    }
}

// The bytes come from the browser's CSPRNG (`crypto.getRandomValues`), or from a test vector.
impl TryCryptoRng for PageRandomness<'_> {}

/// Input: recipient public key (32) ‖ datasetRoot (32) ‖ dataset key (32) ‖ randomness (32)
/// → the 82-byte kind-01 envelope (owner → orchestrator, AAD = datasetRoot).
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub extern "C" fn licen_seal_dataset_envelope() -> u32 {
    run(|input| {
        if input.len() != 128 {
            return Err(format!(
                "expected public key ‖ dataset root ‖ key ‖ randomness (128 bytes), got {}",
                input.len()
            ));
        }
        let recipient = PublicKey::from_slice(&input[..32]).map_err(|e| e.to_string())?;
        let root = array::<32>(&input[32..64], "dataset root")?;
        let key = StreamKey::from_slice(&input[64..96]).map_err(|e| e.to_string())?;
        let mut rng = PageRandomness {
            bytes: &input[96..],
        };
        let envelope = seal_key(
            &recipient,
            &key,
            &EnvelopeContext::OwnerToOrchestrator { dataset_root: root },
            &mut rng,
        )
        .map_err(|e| e.to_string())?;
        Ok(envelope.to_vec())
    })
}

/// The message a wallet signs (EIP-191) to derive the result key pair.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub extern "C" fn licen_result_key_message() -> u32 {
    run(|_| Ok(RESULT_KEY_MESSAGE.as_bytes().to_vec()))
}

/// Input: the 65-byte wallet signature of the result-key message → public key (32) ‖ secret
/// key (32).
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub extern "C" fn licen_result_keypair() -> u32 {
    run(|input| {
        if input.len() != 65 {
            return Err(format!(
                "a wallet signature is 65 bytes (r ‖ s ‖ v), got {}",
                input.len()
            ));
        }
        let (secret, public) = result_keypair_from_signature(input);
        let mut out = public.to_bytes().to_vec();
        out.extend_from_slice(secret.to_bytes().as_slice());
        Ok(out)
    })
}

/// Input: result secret key (32) ‖ jobId (32) ‖ datasetRoot (32) ‖ sealed result object →
/// the plaintext result.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub extern "C" fn licen_open_result() -> u32 {
    run(|input| {
        if input.len() < 96 {
            return Err("expected secret key ‖ job id ‖ dataset root ‖ sealed result".into());
        }
        let secret = SecretKey::from_slice(&input[..32]).map_err(|e| e.to_string())?;
        let job = array::<32>(&input[32..64], "job id")?;
        let root = array::<32>(&input[64..96], "dataset root")?;
        licen_crypto::result::open_result(&secret, job, root, &input[96..])
            .map_err(|e| e.to_string())
    })
}

/// Input: an opened lora result (a ustar archive) → where each of its files lies in it: per
/// file, LE32 name length ‖ UTF-8 name ‖ LE64 offset ‖ LE64 size. Accepts what `licen download`
/// unpacks: regular files with bare names (no folders, links or paths), each once, each wholly
/// inside the input; names with control or bidirectional-formatting characters (which would
/// disguise a file name where the page shows it) are refused too. Anything else is refused with
/// a sentence naming the entry.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub extern "C" fn licen_archive_files() -> u32 {
    run(|input| {
        let unreadable = |e: std::io::Error| format!("the result archive is damaged: {e}");
        let mut archive = tar::Archive::new(input);
        let mut out = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for entry in archive.entries().map_err(unreadable)? {
            let entry = entry.map_err(unreadable)?;
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let bare =
                !name.is_empty() && !name.contains(['/', '\\']) && name != "." && name != "..";
            // Control characters, and the bidirectional formatting characters (U+202A–U+202E,
            // U+2066–U+2069) that can make `exe.json` read as `json.exe`.
            let disguised = name.chars().any(|c| {
                c.is_control()
                    || ('\u{202A}'..='\u{202E}').contains(&c)
                    || ('\u{2066}'..='\u{2069}').contains(&c)
            });
            if entry.header().entry_type() != tar::EntryType::Regular || !bare || disguised {
                return Err(format!(
                    "the result archive holds {name:?}, which is not a plain file name: it is offered only as the whole archive"
                ));
            }
            if !seen.insert(name.clone()) {
                return Err(format!(
                    "the result archive holds {name:?} twice: it is offered only as the whole archive"
                ));
            }
            let (offset, size) = (entry.raw_file_position(), entry.size());
            if offset
                .checked_add(size)
                .is_none_or(|end| end > input.len() as u64)
            {
                return Err(format!(
                    "the result archive is cut short: {name:?} needs {size} bytes at {offset}, the archive is {} bytes",
                    input.len()
                ));
            }
            out.extend_from_slice(&(name.len() as u32).to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            out.extend_from_slice(&size.to_le_bytes());
        }
        Ok(out)
    })
}

/// Input: stream key (32) ‖ sealed stream → its plaintext (every segment verified).
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub extern "C" fn licen_open_stream() -> u32 {
    run(|input| {
        if input.len() < 32 {
            return Err("expected key ‖ sealed stream".into());
        }
        let key = StreamKey::from_slice(&input[..32]).map_err(|e| e.to_string())?;
        licen_crypto::stream::open(&key, &input[32..]).map_err(|e| e.to_string())
    })
}

/// Input: stream key (32) ‖ nonce prefix (7) ‖ BE32 segment size ‖ plaintext → the sealed
/// stream written by the Rust writer (the page seals bulk data with WebCrypto; this is the
/// reference it is compared with).
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub extern "C" fn licen_seal_stream() -> u32 {
    run(|input| {
        if input.len() < 43 {
            return Err("expected key ‖ nonce prefix ‖ segment size ‖ plaintext".into());
        }
        let key = StreamKey::from_slice(&input[..32]).map_err(|e| e.to_string())?;
        let prefix = licen_crypto::NoncePrefix::from_bytes(array::<7>(&input[32..39], "prefix")?);
        let segment_size = u32::from_be_bytes(array::<4>(&input[39..43], "segment size")?);
        licen_crypto::stream::seal_with_segment_size(&key, &prefix, segment_size, &input[43..])
            .map_err(|e| e.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output() -> Vec<u8> {
        OUTPUT.with_borrow(Clone::clone)
    }

    fn call(input: &[u8], op: impl FnOnce() -> u32) -> (u32, Vec<u8>) {
        let _ = licen_input(input.len());
        INPUT.with_borrow_mut(|b| b.copy_from_slice(input));
        let status = op();
        (status, output())
    }

    #[test]
    fn root_matches_the_storage_crate() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7) as u8).collect();
        licen_root_begin();
        for part in data.chunks(70_001) {
            assert_eq!(call(part, || licen_root_update()).0, OK);
        }
        let (status, root) = call(&[], || licen_root_finish());
        assert_eq!(status, OK);
        assert_eq!(root, licen_storage::merkle::root(&data).to_vec());
        // Finishing twice is an error sentence, not a panic.
        assert_eq!(call(&[], || licen_root_finish()).0, FAILED);
    }

    #[test]
    fn segment_roots_joined_match_the_storage_crate() {
        for size in [
            300_000usize,
            SEGMENT_SIZE + 1,
            2 * SEGMENT_SIZE,
            5 * SEGMENT_SIZE + 4097,
        ] {
            let data: Vec<u8> = (0..size).map(|i| (i * 31 + 7) as u8).collect();
            for known in 0..=(size - 1) / SEGMENT_SIZE {
                let mut roots = Vec::new();
                if known > 0 {
                    let (status, out) =
                        call(&data[..known * SEGMENT_SIZE], || licen_segment_roots());
                    assert_eq!(status, OK);
                    roots = out;
                }
                let mut input = (size as u64).to_be_bytes().to_vec();
                input.extend_from_slice(&(known as u32).to_be_bytes());
                input.extend_from_slice(&roots);
                input.extend_from_slice(&data[known * SEGMENT_SIZE..]);
                let (status, out) = call(&input, || licen_root_from_segments());
                assert_eq!(status, OK, "{}", String::from_utf8_lossy(&out));
                let tree = licen_storage::merkle::FileTree::from_bytes(&data);
                assert_eq!(
                    out[..32],
                    tree.root().0,
                    "size {size}, {known} segments known"
                );
                let expected: Vec<u8> =
                    tree.data_segment_roots().iter().flat_map(|r| r.0).collect();
                assert_eq!(out[32..], expected, "segment roots of {size} bytes");
            }
        }
        assert_eq!(call(&[1; 100], || licen_segment_roots()).0, FAILED);
    }

    #[test]
    fn flow_nodes_and_call_match_the_storage_crate() {
        use licen_storage::zerog::{FlowAbi, FlowSubmission};
        let submitter = alloy_primitives::Address::repeat_byte(0x44);
        let price = alloy_primitives::U256::from(1_000_000_007u64);
        let mut files = Vec::new();
        let mut call_input = vec![0u8];
        call_input.extend_from_slice(submitter.as_slice());
        call_input.extend_from_slice(&price.to_be_bytes::<32>());
        for size in [700usize, 3 * SEGMENT_SIZE + 4097] {
            let data: Vec<u8> = (0..size).map(|i| (i * 13 + 1) as u8).collect();
            let known = (size - 1) / SEGMENT_SIZE;
            let (_, roots) = if known > 0 {
                call(&data[..known * SEGMENT_SIZE], || licen_segment_roots())
            } else {
                (OK, Vec::new())
            };
            let mut input = (size as u64).to_be_bytes().to_vec();
            input.extend_from_slice(&(known as u32).to_be_bytes());
            input.extend_from_slice(&roots);
            input.extend_from_slice(&data[known * SEGMENT_SIZE..]);
            let (status, nodes) = call(&input, || licen_flow_nodes());
            assert_eq!(status, OK, "{}", String::from_utf8_lossy(&nodes));
            let expected = FlowSubmission::from_tree(&FileTree::from_bytes(&data), vec![]).unwrap();
            let got: Vec<(Hash, u32)> = nodes
                .chunks(36)
                .map(|n| {
                    (
                        Hash::from_slice(&n[..32]),
                        u32::from_be_bytes(n[32..].try_into().unwrap()),
                    )
                })
                .collect();
            let want: Vec<(Hash, u32)> =
                expected.nodes.iter().map(|n| (n.root, n.height)).collect();
            assert_eq!(got, want, "{size} bytes");
            call_input.extend_from_slice(&(size as u64).to_be_bytes());
            call_input.extend_from_slice(&((nodes.len() / 36) as u32).to_be_bytes());
            call_input.extend_from_slice(&nodes);
            files.push(expected);
        }
        let (status, out) = call(&call_input, || licen_flow_call());
        assert_eq!(status, OK, "{}", String::from_utf8_lossy(&out));
        let expected =
            FlowSubmission::batch_call(&files, FlowAbi::Current, submitter, price).unwrap();
        assert_eq!(out[..32], expected.value.to_be_bytes::<32>());
        assert_eq!(out[32..], expected.data[..]);
        // A legacy Flow takes one file per transaction: said, not encoded.
        call_input[0] = 1;
        let (status, said) = call(&call_input, || licen_flow_call());
        assert_eq!(status, FAILED);
        assert!(String::from_utf8(said).unwrap().contains("one at a time"));
    }

    #[test]
    fn errors_are_sentences() {
        let (status, message) = call(&[0; 10], || licen_result_keypair());
        assert_eq!(status, FAILED);
        assert!(String::from_utf8(message).unwrap().contains("65 bytes"));
    }
}
