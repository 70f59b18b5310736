/** A safetensors file (a checkpoint's weights) read in the browser: float32 tensors only. */

export function readSafetensors(buffer) {
  const view = new DataView(buffer);
  const n = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 8, n)));
  const out = {};
  for (const [name, meta] of Object.entries(header)) {
    if (name === "__metadata__" || meta.dtype !== "F32") continue;
    const [a, b] = meta.data_offsets;
    const bytes = buffer.slice(8 + n + a, 8 + n + b); // copied: aligned for Float32Array
    out[name] = { shape: meta.shape, values: new Float32Array(bytes) };
  }
  return out;
}
