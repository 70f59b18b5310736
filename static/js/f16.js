/**
 * Tensor payloads from the API: base64 little-endian float16 ("f16"), float32 ("f32"), one
 * byte per value for drawing ("u8": offset + code × scale) or nested lists, decoded into a
 * Float32Array with its shape, plus the slicing the charts need.
 */

let HALF_TABLE = null;

/** All 65,536 float16 bit patterns as float32 bit patterns (sign, exponent, mantissa moved). */
function halfTable() {
  if (HALF_TABLE) return HALF_TABLE;
  const bits = new Uint32Array(65536);
  for (let h = 0; h < 65536; h += 1) {
    const sign = (h & 0x8000) << 16;
    let exp = (h >> 10) & 0x1f;
    let mant = h & 0x3ff;
    if (exp === 0x1f) {
      bits[h] = sign | 0x7f800000 | (mant << 13); // inf or NaN
    } else if (exp !== 0) {
      bits[h] = sign | ((exp + 112) << 23) | (mant << 13); // rebias 15 -> 127
    } else if (mant === 0) {
      bits[h] = sign; // ±0
    } else {
      exp = 1; // subnormal: shift the mantissa until its leading 1 is the implicit bit
      while ((mant & 0x400) === 0) {
        mant <<= 1;
        exp -= 1;
      }
      bits[h] = sign | ((exp + 112) << 23) | ((mant & 0x3ff) << 13);
    }
  }
  HALF_TABLE = new Float32Array(bits.buffer);
  return HALF_TABLE;
}

/** One float16 bit pattern (0..65535) as a number. */
export function halfToFloat(h) {
  return halfTable()[h & 0xffff];
}

function base64Bytes(text) {
  const bin = atob(text);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i += 1) bytes[i] = bin.charCodeAt(i);
  return bytes;
}

const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function decodeF16(text) {
  const bytes = base64Bytes(text);
  const n = bytes.length >> 1;
  const table = halfTable();
  const out = new Float32Array(n);
  if (LITTLE) {
    const halves = new Uint16Array(bytes.buffer, 0, n);
    for (let i = 0; i < n; i += 1) out[i] = table[halves[i]];
  } else {
    for (let i = 0; i < n; i += 1) out[i] = table[bytes[2 * i] | (bytes[2 * i + 1] << 8)];
  }
  return out;
}

function decodeF32(text) {
  const bytes = base64Bytes(text);
  const view = new DataView(bytes.buffer);
  const out = new Float32Array(bytes.length >> 2);
  for (let i = 0; i < out.length; i += 1) out[i] = view.getFloat32(4 * i, true);
  return out;
}

/**
 * u8 codes -> offset + code × scale, each within scale / 2 of the exact value; the codes and
 * the 256 levels are kept too (map_canvas.js paints a colour per code).
 */
function decodeU8(text, scale, offset) {
  const codes = base64Bytes(text);
  const levels = new Float32Array(256);
  for (let c = 0; c < 256; c += 1) levels[c] = offset + c * scale;
  const values = new Float32Array(codes.length);
  for (let i = 0; i < codes.length; i += 1) values[i] = levels[codes[i]];
  return { values, codes, levels };
}

let CRC_TABLE = null;

/** CRC-32 of bytes, as zlib.crc32 computes it (the u8 payload's exact_crc32). */
export function crc32(bytes) {
  if (!CRC_TABLE) {
    CRC_TABLE = new Uint32Array(256);
    for (let n = 0; n < 256; n += 1) {
      let c = n;
      for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      CRC_TABLE[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i += 1)
    crc = CRC_TABLE[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** Whether an f32 payload holds the very values a u8 payload was made from. */
export function sameValues(f32Payload, u8Payload) {
  return (
    f32Payload.encoding === "f32" &&
    crc32(base64Bytes(f32Payload.data)) === u8Payload.exact_crc32
  );
}

/**
 * A payload {shape, dtype, encoding, data, true_shape?} -> {shape, dtype, values, trueShape,
 * approx}. values is a Float32Array in C order; approx is true for u8 (values to draw, not
 * to read: the exact ones are a request away, see exact.js), whose decoded tensor also
 * holds its codes (Uint8Array) and the value of each code (levels, Float32Array(256)).
 */
export function decodePayload(payload) {
  let values;
  let u8 = null;
  if (payload.encoding === "f16") values = decodeF16(payload.data);
  else if (payload.encoding === "f32") values = decodeF32(payload.data);
  else if (payload.encoding === "u8") {
    u8 = decodeU8(payload.data, payload.scale, payload.offset);
    values = u8.values;
  } else values = Float32Array.from([payload.data].flat(Infinity), Number);
  return {
    shape: payload.shape,
    dtype: payload.dtype,
    values,
    trueShape: payload.true_shape || null,
    approx: payload.encoding === "u8",
    ...(u8 ? { codes: u8.codes, levels: u8.levels } : {}),
  };
}

/** The shape without its size-1 dimensions, and where each kept dimension came from. */
export function squeezed(shape) {
  const dims = [];
  const axes = [];
  shape.forEach((d, i) => {
    if (d !== 1) {
      dims.push(d);
      axes.push(i);
    }
  });
  return { dims, axes };
}

/** Rows of a (rows × cols) block starting at `offset`, as plain arrays for Plotly's z. */
export function matrix(values, offset, rows, cols) {
  const z = new Array(rows);
  for (let r = 0; r < rows; r += 1) {
    z[r] = Array.from(values.subarray(offset + r * cols, offset + (r + 1) * cols));
  }
  return z;
}

/** Nested lists of the given shape (for JSON downloads and the share checks). */
export function nested(values, shape) {
  if (!shape.length) return values[0];
  const walk = (offset, dim) => {
    const size = shape[dim];
    if (dim === shape.length - 1) return Array.from(values.subarray(offset, offset + size));
    const stride = shape.slice(dim + 1).reduce((a, b) => a * b, 1);
    return Array.from({ length: size }, (_, i) => walk(offset + i * stride, dim + 1));
  };
  return walk(0, 0);
}
