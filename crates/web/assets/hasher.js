// A Web Worker computing 0G segment roots with licen-wasm, so that hashing a large file uses
// every core while the page seals and sends. Owns nothing but its wasm instance; it only ever
// sees ciphertext (pieces of the sealed stream), and sends back roots.
// Messages in: {module} once (the compiled licen-wasm), then {id, bytes} (whole 256 KiB
// segments, transferred). Out: {id, roots, bytes} (the piece's buffer handed back for reuse) or
// {id, error}.

// Set by the first message, before any piece arrives (messages are handled in order, but a
// piece's handler may run while the instantiation is still under way, so it awaits this).
let ready = null;

onmessage = async (event) => {
  const { module, id, bytes } = event.data;
  if (module) {
    ready = WebAssembly.instantiate(module, {}).then((instance) => instance.exports);
    return;
  }
  try {
    const wasm = await ready;
    const input = new Uint8Array(bytes);
    const ptr = wasm.licen_input(input.length);
    new Uint8Array(wasm.memory.buffer, ptr, input.length).set(input);
    const status = wasm.licen_segment_roots();
    const out = new Uint8Array(wasm.memory.buffer, wasm.licen_output_ptr(), wasm.licen_output_len()).slice();
    if (status !== 0) throw new Error(new TextDecoder().decode(out));
    postMessage({ id, roots: out, bytes }, [out.buffer, bytes]);
  } catch (e) {
    postMessage({ id, error: String(e && e.message || e) });
  }
};
