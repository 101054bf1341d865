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
//! `licen-crypto` and `licen-storage`), or do I/O.

use std::cell::RefCell;

use licen_crypto::envelope::{EnvelopeContext, RESULT_KEY_MESSAGE, result_keypair_from_signature};
use licen_crypto::rand_core::{Infallible, TryCryptoRng, TryRng};
use licen_crypto::{PublicKey, SecretKey, StreamKey, seal_key};
use licen_storage::merkle::{FileLayout, FileTree, RootBuilder};
use licen_storage::rpc::SegmentWithProof;

thread_local! {
    static INPUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static OUTPUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static ROOT: RefCell<Option<RootBuilder>> = const { RefCell::new(None) };
    static TREE: RefCell<Option<FileTree>> = const { RefCell::new(None) };
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

/// Starts a new 0G root computation (dropping any earlier one and its tree).
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub extern "C" fn licen_root_begin() {
    ROOT.with_borrow_mut(|root| *root = Some(RootBuilder::sequential()));
    TREE.with_borrow_mut(|tree| *tree = None);
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

/// Finishes the root computation → the 32-byte 0G root; keeps the file's tree for
/// [`licen_segment_json`].
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub extern "C" fn licen_root_finish() -> u32 {
    run(|_| {
        let builder = ROOT
            .with_borrow_mut(Option::take)
            .ok_or("no root computation started (call licen_root_begin first)")?;
        let tree = builder.finish();
        let root = tree.root().to_vec();
        TREE.with_borrow_mut(|t| *t = Some(tree));
        Ok(root)
    })
}

/// Input: the file bytes of segment `index` of the last finished tree → the zgs JSON of that
/// segment with its proof (`SegmentWithProof`, exactly as the Rust client sends it).
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub extern "C" fn licen_segment_json(index: u32) -> u32 {
    run(|input| {
        TREE.with_borrow(|tree| {
            let tree = tree
                .as_ref()
                .ok_or("no finished file tree (compute the root first)")?;
            segment_json(tree, u64::from(index), input)
        })
    })
}

fn segment_json(tree: &FileTree, index: u64, file_bytes: &[u8]) -> Result<Vec<u8>, String> {
    let layout: FileLayout = tree.layout();
    if index >= layout.segments() {
        return Err(format!(
            "segment {index} does not exist: the file has {} segments",
            layout.segments()
        ));
    }
    let expected = layout.segment_file_bytes(index);
    if file_bytes.len() != expected {
        return Err(format!(
            "segment {index} holds {expected} file bytes, got {}",
            file_bytes.len()
        ));
    }
    let mut data = file_bytes.to_vec();
    data.resize(layout.segment_data_len(index), 0);
    let segment = SegmentWithProof {
        root: tree.root(),
        data,
        index,
        proof: tree.proof(index).map_err(|e| e.to_string())?,
        file_size: layout.size(),
    };
    serde_json::to_vec(&segment).map_err(|e| e.to_string())
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
    fn root_and_segments_match_the_storage_crate() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7) as u8).collect();
        licen_root_begin();
        for part in data.chunks(70_001) {
            assert_eq!(call(part, || licen_root_update()).0, OK);
        }
        let (status, root) = call(&[], || licen_root_finish());
        assert_eq!(status, OK);
        let tree = FileTree::from_bytes(&data);
        assert_eq!(root, tree.root().to_vec());
        let _ = licen_input(data.len() - 262_144);
        INPUT.with_borrow_mut(|b| b.copy_from_slice(&data[262_144..]));
        assert_eq!(licen_segment_json(1), OK);
        let segment: SegmentWithProof = serde_json::from_slice(&output()).unwrap();
        assert_eq!(segment.proof, tree.proof(1).unwrap());
        assert_eq!(segment.data.len() % 256, 0);
        // A wrong length is an error sentence, not a panic.
        assert_eq!(call(&[1, 2, 3], || licen_segment_json(1)).0, FAILED);
    }

    #[test]
    fn errors_are_sentences() {
        let (status, message) = call(&[0; 10], || licen_result_keypair());
        assert_eq!(status, FAILED);
        assert!(String::from_utf8(message).unwrap().contains("65 bytes"));
    }
}
