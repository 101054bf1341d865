// In-page crypto (docs/FORMATS.md). What this module owns: loading licen-wasm (licen-crypto and
// the 0G root compiled to WebAssembly), sealing data with the sealed-stream format (AES-256-GCM
// per segment through WebCrypto, byte-identical to the Rust writer), the dataset pipeline
// (check → one pass that seals, roots and streams the ciphertext to the server's staging area
// → commit with the page's root, which the server compares with its own before it stores the
// file) and opening results.
// It must never send plaintext or a key anywhere: only sealed bytes and roots leave this module.

const MAGIC = [0x4c, 0x49, 0x43, 0x45, 0x4e, 0x53, 0x53, 0x00];
export const HEADER_LEN = 36;
export const TAG_LEN = 16;
export const DEFAULT_SEGMENT_SIZE = 65536;
// Plaintext bytes per sealed segment of a file sealed in the page: 256 KiB rather than the
// format's 64 KiB default, since each segment costs one WebCrypto call (a promise and a fresh
// output buffer); a quarter of the calls made the in-page upload of 256 MiB about 8 % faster
// (session 21, interleaved runs). The header carries the size, so it opens everywhere.
export const PAGE_SEGMENT_SIZE = 256 << 10;
const PIECE = 4 << 20; // bytes of ciphertext per piece handed to a hashing worker
const SOCKET_MESSAGE = 1 << 20; // bytes of ciphertext per WebSocket message to the staging area
const SOCKET_WINDOW = 16 << 20; // bytes sent that the server has not yet staged, at most

let wasm = null;
let wasmModule = null;
let loading = null;

export function loadWasm() {
  loading ||= (async () => {
    const response = await fetch('/assets/licen_wasm.wasm');
    wasmModule = await WebAssembly.compile(await response.arrayBuffer());
    wasm = (await WebAssembly.instantiate(wasmModule, {})).exports;
    return wasm;
  })();
  return loading;
}

// Calls a licen-wasm operation: input bytes in, output bytes out, errors as sentences.
function call(name, input, ...args) {
  const bytes = input || new Uint8Array(0);
  const ptr = wasm.licen_input(bytes.length);
  new Uint8Array(wasm.memory.buffer, ptr, bytes.length).set(bytes);
  const status = wasm[name](...args);
  const out = new Uint8Array(wasm.memory.buffer, wasm.licen_output_ptr(), wasm.licen_output_len()).slice();
  if (status !== 0) throw new Error(new TextDecoder().decode(out));
  return out;
}

function wipeWasm() { wasm.licen_clear(); }

export function concat(...parts) {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

export const hex = (bytes) => '0x' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
export function unhex(text) {
  const s = text.startsWith('0x') ? text.slice(2) : text;
  if (s.length % 2 || /[^0-9a-fA-F]/.test(s)) throw new Error(`not hex: ${text.slice(0, 20)}…`);
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.substr(i * 2, 2), 16);
  return out;
}

export function keccak256(bytes) { return call('licen_keccak256', bytes); }
export function randomBytes(n) { return crypto.getRandomValues(new Uint8Array(n)); }

// ---- 0G root -----------------------------------------------------------------------------

export class RootBuilder {
  constructor() { wasm.licen_root_begin(); }
  update(bytes) {
    // Feed in 4 MiB pieces so the wasm input buffer stays small whatever the caller passes.
    for (let at = 0; at < bytes.length; at += 4 << 20) call('licen_root_update', bytes.subarray(at, at + (4 << 20)));
  }
  finish() { return call('licen_root_finish'); }
}

export function rootOf(bytes) { const r = new RootBuilder(); r.update(bytes); return r.finish(); }

// The 0G root of a large file fed as consecutive 4 MiB pieces (whole segments), hashed by a pool
// of Web Workers (one per core) while the page goes on sealing; at most two pieces wait per
// worker, so memory does not grow with the file. `finish(tail)` takes the file's remaining bytes
// (its last data segment among them) and joins everything into the root.
let hashers = null;
const HASHER_QUEUE = 2;
// Piece buffers the workers handed back once hashed, for the next pieces (see `pieces`).
const spareBuffers = [];
export function pieceBuffer(length) {
  const spare = spareBuffers.pop();
  return spare && spare.byteLength === length ? new Uint8Array(spare) : new Uint8Array(length);
}
export class ParallelRoot {
  constructor(size) {
    if (!hashers) {
      const n = Math.max(1, Math.min(4, navigator.hardwareConcurrency || 2));
      hashers = Array.from({ length: n }, () => {
        const w = new Worker('/assets/hasher.js');
        w.postMessage({ module: wasmModule });
        w.waiting = new Map();
        w.onmessage = (e) => {
          // The answers are kept until the root is joined: they must not hold the buffers.
          const { bytes, ...answer } = e.data;
          if (bytes && spareBuffers.length < 2 * n + 2) spareBuffers.push(bytes);
          const p = w.waiting.get(answer.id); w.waiting.delete(answer.id); p(answer);
        };
        return w;
      });
    }
    Object.assign(this, { size, jobs: [], next: 0, segments: 0 });
  }
  // `piece`: whole segments, in file order, not holding the last data segment. Its buffer is
  // handed to a worker (detached here).
  async add(piece) {
    if (piece.length % (256 * 1024)) throw new Error('a hashed piece must be whole 256 KiB segments');
    const worker = hashers[this.next++ % hashers.length];
    while (worker.waiting.size >= HASHER_QUEUE) await Promise.race(worker.waiting.values().map((p) => p.done));
    const id = `${this.next}-${Math.random()}`;
    let resolve;
    const done = new Promise((r) => { resolve = r; });
    const settle = (answer) => resolve(answer);
    settle.done = done;
    worker.waiting.set(id, settle);
    this.segments += piece.length / (256 * 1024);
    worker.postMessage({ id, bytes: piece.buffer }, [piece.buffer]);
    this.jobs.push(done);
  }
  // The file's root and the roots of its data segments (32 bytes each, concatenated).
  async finish(tail, flow = false) {
    const answers = await Promise.all(this.jobs);
    const failed = answers.find((a) => a.error);
    if (failed) throw new Error(`hashing in a worker failed: ${failed.error}`);
    return joinSegmentRoots(this.size, answers.map((a) => a.roots), this.segments, tail, flow);
  }
}

// The root of a file of `size` bytes from the roots of its first `count` segments (`roots`,
// 32-byte chunks in order) and its remaining bytes `tail` (the last data segment among them):
// { root, segmentRoots } (the roots of all its data segments).
// With `flow`, also `flowNodes`: the file's 0G Flow submission node list (`flowNodes`).
function joinSegmentRoots(size, roots, count, tail, flow = false) {
  const head = new Uint8Array(12);
  const view = new DataView(head.buffer);
  view.setBigUint64(0, BigInt(size));
  view.setUint32(8, count);
  const input = concat(head, ...roots, tail);
  const out = call('licen_root_from_segments', input);
  const joined = { root: out.subarray(0, 32), segmentRoots: out.subarray(32) };
  if (flow) joined.flowNodes = call('licen_flow_nodes', input);
  return joined;
}

// ---- paying 0G storage (the Flow contract) ----------------------------------------------------

// The 256-byte sectors a Flow node list pays for: Σ 2^height.
export function flowSectors(flowNodes) {
  let sectors = 0n;
  const view = new DataView(flowNodes.buffer, flowNodes.byteOffset, flowNodes.byteLength);
  for (let at = 0; at < flowNodes.length; at += 36) sectors += 1n << BigInt(view.getUint32(at + 32));
  return sectors;
}

// One transaction paying the Flow for `files` ([{ size, flowNodes }]) at `price` wei per sector,
// from `submitter`: { value (wei, BigInt), data (hex calldata) }; `abi` is 'current' or 'legacy'
// (a legacy Flow takes one file per transaction).
export function flowCall(abi, submitter, price, files) {
  const head = new Uint8Array(53);
  head[0] = abi === 'legacy' ? 1 : 0;
  head.set(unhex(submitter), 1);
  head.set(unhex(price.toString(16).padStart(64, '0')), 21);
  const parts = files.map((f) => {
    const h = new Uint8Array(12);
    const v = new DataView(h.buffer);
    v.setBigUint64(0, BigInt(f.size));
    v.setUint32(8, f.flowNodes.length / 36);
    return concat(h, f.flowNodes);
  });
  const out = call('licen_flow_call', concat(head, ...parts));
  return { value: BigInt(hex(out.subarray(0, 32))), data: hex(out.subarray(32)) };
}

// ---- sealed stream (§1), segments sealed by WebCrypto ------------------------------------

function nonce(prefix, counter, flag) {
  const n = new Uint8Array(12);
  n.set(prefix, 0);
  new DataView(n.buffer).setUint32(7, counter);
  n[11] = flag;
  return n;
}

export class StreamSealer {
  static async create(keyBytes, prefix, segmentSize = DEFAULT_SEGMENT_SIZE) {
    const s = new StreamSealer();
    s.key = await crypto.subtle.importKey('raw', keyBytes, 'AES-GCM', false, ['encrypt']);
    s.prefix = prefix;
    s.segmentSize = segmentSize;
    const core = new Uint8Array(20);
    core.set(MAGIC, 0);
    core[8] = 1;
    new DataView(core.buffer).setUint32(9, segmentSize);
    core.set(prefix, 13);
    const tag = new Uint8Array(await crypto.subtle.encrypt(
      { name: 'AES-GCM', iv: nonce(prefix, 0xffffffff, 2), additionalData: core }, s.key, new Uint8Array(0)));
    s.header = concat(core, tag);
    return s;
  }
  async segment(index, plaintext, last) {
    return new Uint8Array(await crypto.subtle.encrypt(
      { name: 'AES-GCM', iv: nonce(this.prefix, index, last ? 1 : 0), additionalData: this.header }, this.key, plaintext));
  }
}

// Reads a Blob/File in pieces of exactly `size` bytes (the last may be shorter; an empty blob
// gives one empty piece). Through `blob.stream()` with a BYOB reader: Chromium pumps the bytes
// through one data pipe straight into the piece's buffer (several times faster than one
// `slice().arrayBuffer()` round trip per piece, and no fresh chunk buffer per read).
// The pieces share one buffer: a consumer must be done with a piece (or have copied it, as
// WebCrypto does when called) before it asks for the next.
async function* pieces(blob, size) {
  if (blob.size === 0) { yield new Uint8Array(0); return; }
  const reader = blob.stream().getReader({ mode: 'byob' });
  let left = blob.size;
  let buffer = new ArrayBuffer(Math.min(size, left));
  try {
    while (left > 0) {
      const want = Math.min(size, left);
      let filled = 0;
      while (filled < want) {
        // Each read hands the buffer to the stream and back (the old views are detached).
        const { done, value } = await reader.read(new Uint8Array(buffer, filled, want - filled));
        if (value) buffer = value.buffer;
        if (done) throw new Error(`the file ended after ${blob.size - left + filled} of ${blob.size} bytes while it was read: pick it again`);
        filled += value.length;
      }
      left -= want;
      yield new Uint8Array(buffer, 0, want);
    }
    const { done, value } = await reader.read(new Uint8Array(buffer, 0, 1));
    if (!done || value?.length) throw new Error(`the file grew past ${blob.size} bytes while it was read: pick it again`);
  } finally {
    reader.releaseLock();
  }
}

// Seals a Blob into sealed-stream bytes, handing each ciphertext piece to `sink` in order.
// Segments of one 4 MiB read are sealed in parallel (WebCrypto runs off the main thread), and the
// next read is sealed while `sink` consumes the previous one; memory stays at two reads whatever
// the size.
export async function sealBlob(blob, keyBytes, prefix, sink, segmentSize = DEFAULT_SEGMENT_SIZE) {
  const sealer = await StreamSealer.create(keyBytes, prefix, segmentSize);
  await sink(sealer.header);
  const count = Math.max(1, Math.ceil(blob.size / segmentSize));
  const readSize = segmentSize * Math.max(1, Math.floor((4 << 20) / segmentSize));
  let index = 0;
  const sealRead = (piece) => {
    const jobs = [];
    for (let at = 0; at < piece.length || (piece.length === 0 && jobs.length === 0); at += segmentSize) {
      const i = index++;
      jobs.push(sealer.segment(i, piece.subarray(at, at + segmentSize), i === count - 1));
      if (piece.length === 0) break;
    }
    return Promise.all(jobs);
  };
  const reads = pieces(blob, readSize);
  const next = async () => { const r = await reads.next(); return r.done ? null : sealRead(r.value); };
  let pending = next();
  for (;;) {
    const sealed = await pending;
    if (!sealed) break;
    pending = next();
    for (const segment of sealed) await sink(segment);
  }
}

export function sealedLength(plainLength, segmentSize = DEFAULT_SEGMENT_SIZE) {
  return HEADER_LEN + plainLength + TAG_LEN * Math.max(1, Math.ceil(plainLength / segmentSize));
}

// Rust reference writer (licen-wasm), for comparisons and small data.
export function sealBytesInWasm(keyBytes, prefix, segmentSize, plaintext) {
  const s = new Uint8Array(4);
  new DataView(s.buffer).setUint32(0, segmentSize);
  try { return call('licen_seal_stream', concat(keyBytes, prefix, s, plaintext)); } finally { wipeWasm(); }
}

export function openStream(keyBytes, sealed) {
  try { return call('licen_open_stream', concat(keyBytes, sealed)); } finally { wipeWasm(); }
}

// ---- envelopes and result keys (§2, §3) -----------------------------------------------------

export function sealDatasetEnvelope(orchestratorKey, datasetRoot, keyBytes, randomness = randomBytes(32)) {
  try { return call('licen_seal_dataset_envelope', concat(orchestratorKey, datasetRoot, keyBytes, randomness)); } finally { wipeWasm(); }
}

export function resultKeyMessage() { return new TextDecoder().decode(call('licen_result_key_message')); }

export function resultKeypair(signature) {
  try {
    const out = call('licen_result_keypair', signature);
    return { publicKey: out.slice(0, 32), secretKey: out.slice(32) };
  } finally { wipeWasm(); }
}

export function openResult(secretKey, jobId32, datasetRoot, sealed) {
  try { return call('licen_open_result', concat(secretKey, jobId32, datasetRoot, sealed)); } finally { wipeWasm(); }
}

// The files of an opened lora result (a ustar archive, read by the `tar` crate in licen-wasm):
// [{ name, bytes }], each a view into `archive`. Throws a sentence for anything `licen download`
// would not unpack (folders, links, paths, a damaged or cut archive).
export const isArchive = (bytes) => bytes.length >= 512 && new TextDecoder().decode(bytes.subarray(257, 262)) === 'ustar';
export function archiveFiles(archive) {
  let index;
  try { index = call('licen_archive_files', archive); } finally { wipeWasm(); }
  const view = new DataView(index.buffer);
  const files = [];
  for (let at = 0; at < index.length;) {
    const nameLength = view.getUint32(at, true);
    const name = new TextDecoder().decode(index.subarray(at + 4, at + 4 + nameLength));
    at += 4 + nameLength;
    const offset = Number(view.getBigUint64(at, true));
    const length = Number(view.getBigUint64(at + 8, true));
    at += 16;
    files.push({ name, bytes: archive.subarray(offset, offset + length) });
  }
  return files;
}

// ---- storage through the relay --------------------------------------------------------------

let rpcId = 1;
export async function storageCall(method, params) {
  const response = await fetch('/api/storage', {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: rpcId++, method, params }),
  });
  return rpcAnswer(response, method);
}

async function rpcAnswer(response, method) {
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `storage relay answered ${response.status} for ${method}`);
  if (body.error) throw new Error(`storage node refused ${method}: ${body.error.message}`);
  return body.result;
}

const ENCODER = new TextEncoder();

async function jsonAnswer(response, what) {
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `the server answered ${response.status} to ${what}`);
  return body;
}

// A staged upload: sealed bytes stream to the server as binary messages over one WebSocket
// (Chromium sends those at a fraction of the CPU a `fetch` body costs), at most SOCKET_WINDOW
// bytes ahead of what the server has staged; `commit` sends the page's root with the segment
// roots it was joined from (the server checks they hash to it; the storage node checks each
// segment's bytes against them), or the root alone (the server hashes the bytes and compares);
// `commit` resolves once the node holds the file.
export class StagedUpload {
  // With `hashed`, the 0G root of the bytes is computed by worker threads as they are sent
  // (`root()` once every byte was written).
  static async begin(size, hashed = false) {
    const { id } = await jsonAnswer(await fetch('/api/uploads', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ size }),
    }), 'starting the upload');
    const u = new StagedUpload();
    Object.assign(u, { id, size, offset: 0, buffer: pieceBuffer(Math.min(PIECE, size)), filled: 0, sent: 0, staged: 0, failure: null, wake: null });
    if (hashed) { await loadWasm(); u.hasher = new ParallelRoot(size); }
    await u.connect();
    return u;
  }
  async connect() {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const socket = new WebSocket(`${scheme}://${location.host}/api/uploads/${this.id}/socket`);
    socket.binaryType = 'arraybuffer';
    const changed = () => { const w = this.wake; this.wake = null; w?.(); };
    socket.onmessage = (e) => {
      const answer = JSON.parse(e.data);
      if (answer.error) this.failure = new Error(answer.error); else this.staged = answer.received;
      changed();
    };
    socket.onclose = () => {
      if (this.staged < this.size && !this.failure) {
        this.failure = new Error(`the connection to the server closed after ${this.staged} of ${this.size} bytes were staged: upload again`);
      }
      changed();
    };
    await new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = () => reject(new Error('the server did not accept the upload connection: check that it is running and upload again'));
    });
    socket.onerror = null;
    this.socket = socket;
  }
  // Waits until `ready()`; a refusal from the server or a lost connection ends the upload.
  async until(ready) {
    while (!this.failure && !ready()) await new Promise((r) => { this.wake = r; });
    if (this.failure) { this.socket.close(); throw this.failure; }
  }
  async root(flow = false) {
    if (this.offset !== this.size) throw new Error(`the upload has ${this.offset + this.filled} of ${this.size} bytes: write them all before asking for the root`);
    return this.hasher.finish(this.tail, flow);
  }
  async write(bytes) {
    let at = 0;
    while (at < bytes.length) {
      const n = Math.min(this.buffer.length - this.filled, bytes.length - at);
      this.buffer.set(bytes.subarray(at, at + n), this.filled);
      this.filled += n; at += n;
      if (this.filled === this.buffer.length) await this.send();
    }
  }
  async send() {
    if (!this.filled) return;
    const piece = this.filled === this.buffer.length ? this.buffer : this.buffer.slice(0, this.filled);
    this.offset += this.filled;
    this.buffer = pieceBuffer(Math.min(PIECE, Math.max(1, this.size - this.offset)));
    this.filled = 0;
    for (let at = 0; at < piece.length; at += SOCKET_MESSAGE) {
      await this.until(() => this.sent - this.staged <= SOCKET_WINDOW);
      // send() copies the bytes when called, so the piece's buffer can go to a hashing worker.
      const message = piece.subarray(at, at + SOCKET_MESSAGE);
      this.socket.send(message);
      this.sent += message.length;
    }
    if (this.hasher) {
      if (this.offset === this.size) this.tail = piece; else await this.hasher.add(piece);
    }
  }
  // Gives the upload up: the connection closes and the server deletes what it staged (best
  // effort: a server that cannot be reached drops the session when it has been idle long enough).
  cancel() {
    clearInterval(this.keepAlive);
    this.socket?.close();
    fetch(`/api/uploads/${this.id}`, { method: 'DELETE' }).catch(() => {});
  }
  async commit(root, onProgress, segmentRoots = null) {
    await this.send();
    await this.until(() => this.staged >= this.size);
    this.socket.close();
    let report = await jsonAnswer(await fetch(`/api/uploads/${this.id}/commit`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify(segmentRoots ? { root: hex(root), segment_roots: hex(segmentRoots) } : { root: hex(root) }),
    }), 'committing the upload');
    // On a 0G network the node takes the file once it is paid for: the caller pays, then
    // calls `whenStored`. Until then the page asks about it now and then, which keeps the
    // server from dropping it as abandoned while the person fills in the form.
    if (report.state !== 'awaiting_payment') return this.settle(report, onProgress);
    // `alive` (the page still wants it): once it says no, the upload is given up.
    this.keepAlive = setInterval(() => {
      if (this.alive && !this.alive() && !this.paid) { this.cancel(); return; }
      fetch(`/api/uploads/${this.id}`).catch(() => {});
    }, 60_000);
    return report;
  }
  // Whether the server still holds this upload (committed, stored or being stored).
  // Only a server that says so (404, or a failed upload) makes this false; an unreachable
  // server is an error.
  async stillStaged() {
    if (this.stored) return true;
    const response = await fetch(`/api/uploads/${this.id}`);
    if (response.status === 404) return false;
    const report = await jsonAnswer(response, 'checking the upload');
    return ['awaiting_payment', 'storing', 'stored'].includes(report.state);
  }
  // Resolves once the node holds the file (after its Flow payment, on a 0G network).
  async whenStored(onProgress) {
    if (this.stored) return this.stored;
    return this.settle(await jsonAnswer(await fetch(`/api/uploads/${this.id}`), 'checking the upload'), onProgress);
  }
  async settle(report, onProgress) {
    // Each check answers as soon as the node holds the file, or after 200 ms with the progress.
    while (report.state === 'storing' || report.state === 'awaiting_payment') {
      onProgress?.(report.stored, report.size);
      report = await jsonAnswer(await fetch(`/api/uploads/${this.id}?wait_ms=200`), 'checking the upload');
    }
    // Ended, stored or failed: nothing left to keep alive (a lost connection above keeps it).
    clearInterval(this.keepAlive);
    if (report.state !== 'stored') throw new Error(report.error || `the upload ended ${report.state}`);
    onProgress?.(report.size, report.size);
    this.stored = report;
    return report;
  }
}

// Uploads small bytes (envelope, manifest) and returns their root.
export async function uploadBytes(bytes) {
  const staged = await stageBytes(bytes);
  await staged.upload.whenStored();
  return staged.root;
}

// Stages and commits small bytes: { root, size, upload, flowNodes }. On a 0G network the node
// stores them once they are paid for (`upload.whenStored()` follows); elsewhere they are stored.
// `alive`: see `StagedUpload.commit`.
export async function stageBytes(bytes, alive = null) {
  await loadWasm();
  const { root, flowNodes } = joinSegmentRoots(bytes.length, [], 0, bytes, true);
  const upload = await StagedUpload.begin(bytes.length);
  upload.alive = alive;
  await upload.write(bytes);
  await upload.commit(root);
  return { root, size: bytes.length, upload, flowNodes };
}

// A stored file's 256 KiB segments in order, from the storage node through the relay, with its
// 0G root computed as they arrive (segment by segment, without the module's one running root, so
// other pages' hashing cannot interleave). `onSegment(bytes, offset, size)` sees each segment; the
// answer is { size, computedRoot }.
async function readStored(root, onSegment, onProgress) {
  const info = await storageCall('zgs_getFileInfo', [hex(root), true]);
  if (!info) throw new Error(`the storage node has no file ${hex(root)}`);
  if (!info.finalized) throw new Error(`file ${hex(root)} is not completely uploaded yet`);
  const size = info.tx.size;
  const chunks = Math.ceil(size / 256);
  const roots = [];
  let pending = null; // the latest segment: hashed once a later one shows it is not the last
  for (let start = 0; start < chunks; start += 1024) {
    const end = Math.min(chunks, start + 1024);
    const b64 = await storageCall('zgs_downloadSegment', [hex(root), start, end]);
    const bin = atob(b64);
    const segment = new Uint8Array(Math.min(bin.length, size - start * 256));
    for (let i = 0; i < segment.length; i++) segment[i] = bin.charCodeAt(i);
    onSegment?.(segment, start * 256, size);
    if (pending) roots.push(call('licen_segment_roots', pending));
    pending = segment;
    onProgress?.(Math.min(size, end * 256), size);
  }
  const { root: computedRoot } = joinSegmentRoots(size, roots, roots.length, pending || new Uint8Array(0));
  return { size, computedRoot };
}

// Downloads a whole file by root through the relay and checks it hashes to that root.
export async function downloadFile(root, onProgress) {
  let out = null;
  const { computedRoot } = await readStored(root, (segment, offset, size) => {
    out ??= new Uint8Array(size);
    out.set(segment, offset);
  }, onProgress);
  if (hex(computedRoot) !== hex(root)) throw new Error(`downloaded bytes do not hash to ${hex(root)}: the storage node sent something else`);
  return out ?? new Uint8Array(0);
}

// Checks in the page that the bytes the storage node holds under `root` hash to it, in constant
// memory (they are not kept): { size, matches, computedRoot }.
export async function verifyStored(root, onProgress) {
  const { size, computedRoot } = await readStored(root, null, onProgress);
  return { size, matches: hex(computedRoot) === hex(root), computedRoot: hex(computedRoot) };
}

// ---- the owner's dataset pipeline -----------------------------------------------------------

// Checks a JSONL file the way `licen publish` does (docs: crates/cli/src/manifest.rs): every
// non-blank line one training example of one schema. Errors name the line, never its content.
export async function scanJsonl(blob, onProgress) {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let schema = null, rows = 0, bytes = 0, lineNo = 0, carry = '';
  const classify = (v) => {
    if (!v || typeof v !== 'object' || Array.isArray(v)) return null;
    const isStr = (k) => typeof v[k] === 'string';
    if (isStr('text')) return 'text';
    if (isStr('prompt') && isStr('completion')) return 'prompt_completion';
    if (Array.isArray(v.messages) && v.messages.length > 0 &&
      v.messages.every((m) => m && typeof m.role === 'string' && typeof m.content === 'string')) return 'messages';
    return null;
  };
  const line = (text) => {
    lineNo++;
    bytes += ENCODER.encode(text).length + 1;
    if (!text.trim()) return;
    let value;
    try { value = JSON.parse(text); } catch { throw new Error(`Line ${lineNo} is not valid JSON: each line must be one JSON object. Fix line ${lineNo} and choose the file again.`); }
    const found = classify(value);
    if (!found) throw new Error(`Line ${lineNo} is not a training example: expected {"text": string}, {"prompt": string, "completion": string} or {"messages": [{"role", "content"}, …]}. Fix line ${lineNo} and choose the file again.`);
    if (schema && schema !== found) throw new Error(`Line ${lineNo} is a ${found} example but earlier lines are ${schema}: a dataset uses one schema. Fix line ${lineNo} and choose the file again.`);
    schema = found; rows++;
  };
  let done = 0;
  for await (const piece of pieces(blob, 4 << 20)) {
    let text;
    try { text = carry + decoder.decode(piece, { stream: true }); } catch { throw new Error(`The file is not UTF-8 text (near byte ${done}): JSONL must be UTF-8. Save it as UTF-8 and choose it again.`); }
    const lines = text.split('\n');
    carry = lines.pop();
    lines.forEach(line);
    done += piece.length;
    onProgress?.(done, blob.size);
  }
  if (carry.length) line(carry);
  if (!schema) throw new Error('The file has no examples: expected at least one JSON line. Choose a file with training examples.');
  return { schema, rows, bytes };
}

// Canonical manifest JSON: keys sorted, no whitespace (same bytes as the CLI's).
export function manifestBytes(m) {
  const sorted = {};
  for (const k of Object.keys(m).sort()) sorted[k] = m[k];
  return ENCODER.encode(JSON.stringify(sorted));
}

// One pass: seal (WebCrypto) → 0G root (licen-wasm in worker threads) and stream the ciphertext
// to the server's staging area → commit with the root and its segment roots → the server stores the file on the
// storage node, which checks every segment against them. Memory stays at a few 4 MiB pieces whatever the file size.
export async function sealAndUpload(file, orchestratorKey, onProgress, opts = {}) {
  const data = await sealAndUploadData(file, onProgress, opts);
  const envelopeRoot = await uploadEnvelope(orchestratorKey, data.datasetRoot, data.key);
  const seconds = (performance.now() - data.started) / 1000;
  return { datasetRoot: data.datasetRoot, envelopeRoot, sealedBytes: data.sealedBytes, seconds, marks: data.marks };
}

// The data half of `sealAndUpload`: returns the root and the dataset key, which the caller must
// hand to `uploadEnvelope` (it wipes it) or wipe itself. `opts.signal` (an AbortSignal) stops
// the upload between pieces; nothing is stored then.
export async function sealAndUploadData(file, onProgress, opts = {}) {
  await loadWasm();
  const key = opts.key || randomBytes(32);
  const prefix = opts.prefix || randomBytes(7);
  const total = sealedLength(file.size, PAGE_SEGMENT_SIZE);
  const started = performance.now();
  const marks = {};
  const upload = await StagedUpload.begin(total, true);
  upload.alive = opts.alive || null;
  try {
    let sealed = 0;
    await sealBlob(file, key, prefix, async (c) => {
      opts.signal?.throwIfAborted();
      await upload.write(c);
      sealed += c.length;
      onProgress?.('sealing, hashing and sending', sealed, total * 2, started);
    }, PAGE_SEGMENT_SIZE);
    const { root: datasetRoot, segmentRoots, flowNodes } = await upload.root(opts.flow);
    marks.sealed = performance.now() - started;
    opts.signal?.throwIfAborted();
    const storing = (stored) => onProgress?.('storing on the storage node', total + stored, total * 2, started);
    const report = await upload.commit(datasetRoot, storing, segmentRoots);
    // On a 0G network the file waits for its payment, made when the person publishes.
    const awaitingPayment = report.state === 'awaiting_payment';
    if (!awaitingPayment) marks.stored = performance.now() - started;
    return { datasetRoot, key, sealedBytes: total, started, marks, upload, flowNodes, awaitingPayment, whenStored: () => upload.whenStored(storing) };
  } catch (e) {
    upload.cancel();
    if (!opts.key) key.fill(0);
    throw e;
  }
}

// Seals the dataset key to the orchestrator (§2) for `datasetRoot`, wipes the key, uploads the
// envelope and returns its root.
export async function uploadEnvelope(orchestratorKey, datasetRoot, key) {
  const staged = await stageEnvelope(orchestratorKey, datasetRoot, key);
  await staged.upload.whenStored();
  return staged.root;
}

// The same, staged only: { root, size, upload, flowNodes } (see `stageBytes`).
export async function stageEnvelope(orchestratorKey, datasetRoot, key, alive = null) {
  let envelope;
  try { envelope = sealDatasetEnvelope(orchestratorKey, datasetRoot, key); } finally { key.fill(0); }
  return stageBytes(envelope, alive);
}
