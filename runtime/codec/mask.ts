/**
 * Client-to-server masking (RFC 6455 section 5.3): "Octet i of the transformed data
 * ("transformed-octet-i") is the XOR of octet i of the original data ("original-octet-i") with
 * octet at index i modulo 4 of the masking key ("masking-key-octet-j")". The same operation masks
 * and unmasks.
 *
 * JavaScript first: long runs are XORed a 32-bit word at a time through a Uint32Array view once the
 * target is 4-byte aligned (a typed-array view needs alignment; the bytes before the boundary are
 * done one by one and the key rotated to match); short runs use a byte loop. Nothing is allocated
 * per byte; the word path creates one view per call.
 *
 * Like ws, when the optional native `bufferutil` package can be loaded (and really is native, not
 * its JavaScript fallback) long runs go through it — about 8× faster than the word loop on large
 * payloads. Set WIRESTATE_NO_BUFFER_UTIL=1 to never load it; `setNativeMask(false)` turns it off at
 * run time (the tests use it to cover both paths).
 */
import { createRequire } from 'node:module';

/** Runs shorter than this are not worth creating a Uint32Array view for. */
const WORD_THRESHOLD = 32;
/** Runs shorter than this are not worth a native call. */
const NATIVE_THRESHOLD = 64;

interface NativeMask {
  mask(source: Buffer, mask: Buffer, output: Buffer, offset: number, length: number): void;
  unmask(buffer: Buffer, mask: Buffer): void;
}

function loadNative(): NativeMask | null {
  if (process.env['WIRESTATE_NO_BUFFER_UTIL']) return null;
  try {
    const m = createRequire(import.meta.url)('bufferutil') as Partial<NativeMask>;
    // bufferutil falls back to a byte-by-byte JavaScript loop when its addon is missing; ours is faster.
    if (typeof m.mask === 'function' && typeof m.unmask === 'function' && String(m.unmask).includes('[native code]')) {
      return m as NativeMask;
    }
  } catch {
    // Not installed: the JavaScript path is used.
  }
  return null;
}

const nativeAvailable = loadNative();
let native: NativeMask | null = nativeAvailable;

/** Uses the native `bufferutil` addon when `enabled` and available; returns whether it is in use. */
export function setNativeMask(enabled: boolean): boolean {
  native = enabled ? nativeAvailable : null;
  return native !== null;
}

/** Scratch for assembling a rotated mask as one 32-bit word in platform byte order. */
const maskBytes = Buffer.alloc(4);
const maskWord = new Uint32Array(maskBytes.buffer, maskBytes.byteOffset, 1);

/** The key as seen from payload byte `rotation` on, in `maskBytes`. */
function rotateMask(mask: Uint8Array, rotation: number): void {
  maskBytes[0] = mask[rotation & 3]!;
  maskBytes[1] = mask[(rotation + 1) & 3]!;
  maskBytes[2] = mask[(rotation + 2) & 3]!;
  maskBytes[3] = mask[(rotation + 3) & 3]!;
}

/**
 * Writes `source[0, length) XOR mask` into `output[outputOffset, outputOffset + length)`.
 * `source` is not modified (unless it overlaps `output`). `mask` is 4 bytes.
 */
export function applyMask(source: Buffer, mask: Buffer, output: Buffer, outputOffset: number, length: number): void {
  if (native !== null && length >= NATIVE_THRESHOLD) {
    native.mask(source, mask, output, outputOffset, length);
    return;
  }
  if (length >= WORD_THRESHOLD) {
    // A memcpy then an aligned in-place XOR beats a byte loop whatever the two alignments.
    source.copy(output, outputOffset, 0, length);
    unmaskRange(output, mask, outputOffset, outputOffset + length, 0);
    return;
  }
  for (let i = 0; i < length; i++) output[outputOffset + i] = source[i]! ^ mask[i & 3]!;
}

/**
 * Unmasks (or masks) `buffer[start, end)` in place, where `buffer[start]` is byte `maskOffset` of
 * the frame payload — so a payload that arrives in several pieces can be unmasked piece by piece
 * (pass the number of payload bytes that came before the piece).
 */
export function unmaskRange(buffer: Buffer, mask: Buffer, start: number, end: number, maskOffset: number): void {
  if (native !== null && end - start >= NATIVE_THRESHOLD) {
    rotateMask(mask, maskOffset);
    native.unmask(buffer.subarray(start, end), maskBytes);
    return;
  }
  let i = start;
  // Payload index p = maskOffset + (i - start); its key byte is mask[p & 3].
  const shift = maskOffset - start;
  if (end - start >= WORD_THRESHOLD) {
    const head = start + ((4 - ((buffer.byteOffset + start) & 3)) & 3);
    for (; i < head; i++) buffer[i] ^= mask[(i + shift) & 3]!;
    const words = (end - i) >>> 2;
    rotateMask(mask, i + shift);
    const m = maskWord[0]!;
    const view = new Uint32Array(buffer.buffer, buffer.byteOffset + i, words);
    for (let w = 0; w < words; w++) view[w] ^= m;
    i += words << 2;
  }
  for (; i < end; i++) buffer[i] ^= mask[(i + shift) & 3]!;
}

/** Unmasks (or masks) `buffer` in place with the 4-byte `mask`. */
export function unmask(buffer: Buffer, mask: Buffer): void {
  if (native !== null && buffer.length >= NATIVE_THRESHOLD) {
    native.unmask(buffer, mask);
    return;
  }
  unmaskRange(buffer, mask, 0, buffer.length, 0);
}
