/**
 * The sans-I/O frame serializer: frames in, chunks to write out (RFC 6455 section 5.2). It never
 * mutates the caller's payload: masked payloads are always copied into a new buffer; small
 * unmasked payloads are copied next to their header so one write carries the frame; large
 * unmasked payloads are returned as [header, payload] without copying.
 */
import { randomFillSync } from 'node:crypto';
import { Opcode, isControlOpcode, isSendableCloseCode } from '../../generated/protocol.generated.js';
import { applyMask } from './mask.js';

export interface OutgoingFrame {
  opcode: number;
  payload: Buffer;
  /** Default true. */
  fin?: boolean;
  /** Default false. Set on the first frame of a compressed message (RFC 7692 section 6). */
  rsv1?: boolean;
  /** Mask the payload (a client MUST, RFC 6455 section 5.3). Default: true iff `maskKey` is given. */
  mask?: boolean;
  /** A 4-byte masking key; when `mask` is true and this is absent, a random one is drawn. */
  maskKey?: Buffer;
}

/** Payloads shorter than this are copied next to the header (one write instead of two). */
const COPY_THRESHOLD = 16 * 1024;

/** Random masking keys are drawn 4 bytes at a time from a pool refilled by the CSPRNG. */
const MASK_POOL_SIZE = 8 * 1024;
let maskPool: Buffer | null = null;
let maskPoolOffset = MASK_POOL_SIZE;

/**
 * RFC 6455 5.3: "The masking key is a 32-bit value chosen at random by the client. When sending a
 * client-to-server frame, the client MUST pick a fresh masking key from the set of allowed 32-bit
 * values. The masking key needs to be unpredictable; thus, the masking key MUST be derived from a
 * strong source of entropy". The returned view is only read before the pool is next refilled.
 */
function randomMaskKey(): Buffer {
  if (maskPoolOffset === MASK_POOL_SIZE) {
    maskPool ??= Buffer.allocUnsafe(MASK_POOL_SIZE);
    randomFillSync(maskPool);
    maskPoolOffset = 0;
  }
  const key = maskPool!.subarray(maskPoolOffset, maskPoolOffset + 4);
  maskPoolOffset += 4;
  return key;
}

function headerLength(length: number, masked: boolean): number {
  return (length < 126 ? 2 : length < 65536 ? 4 : 10) + (masked ? 4 : 0);
}

function checkHeaderArgs(opcode: number, length: number, maskKey: Buffer | null): void {
  if (!Number.isInteger(opcode) || opcode < 0 || opcode > 0xf) {
    throw new RangeError(`opcode must be an integer 0x0-0xF, got ${String(opcode)}`);
  }
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new RangeError(`payload length must be an integer 0 to 2^53 - 1, got ${String(length)}`);
  }
  if (maskKey !== null && maskKey.length !== 4) {
    throw new RangeError(`a masking key is 4 bytes, got ${maskKey.length}`);
  }
}

/** Writes a header at `target[0…]`; returns its length. Arguments already checked. */
function writeHeader(target: Buffer, opcode: number, length: number, fin: boolean, rsv1: boolean, maskKey: Buffer | null): number {
  target[0] = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode;
  const maskBit = maskKey !== null ? 0x80 : 0;
  let offset: number;
  // RFC 6455 5.2: "the minimal number of bytes MUST be used to encode the length".
  if (length < 126) {
    target[1] = maskBit | length;
    offset = 2;
  } else if (length < 65536) {
    target[1] = maskBit | 126;
    target[2] = length >>> 8;
    target[3] = length & 0xff;
    offset = 4;
  } else {
    // "(the most significant bit MUST be 0)": a safe integer is below 2^53.
    target[1] = maskBit | 127;
    target.writeUInt32BE(Math.floor(length / 4294967296), 2);
    target.writeUInt32BE(length >>> 0, 6);
    offset = 10;
  }
  if (maskKey !== null) {
    target[offset] = maskKey[0]!;
    target[offset + 1] = maskKey[1]!;
    target[offset + 2] = maskKey[2]!;
    target[offset + 3] = maskKey[3]!;
    offset += 4;
  }
  return offset;
}

/** A frame header (2 to 14 bytes) for a payload of `length` bytes. */
export function frameHeader(opcode: number, length: number, fin: boolean, rsv1: boolean, maskKey: Buffer | null): Buffer {
  checkHeaderArgs(opcode, length, maskKey);
  const header = Buffer.allocUnsafe(headerLength(length, maskKey !== null));
  writeHeader(header, opcode, length, fin, rsv1, maskKey);
  return header;
}

/**
 * The chunks to write for one frame. Throws RangeError for a frame RFC 6455 forbids sending: a
 * control frame that is fragmented or longer than 125 bytes (5.5), or RSV1 on a control frame or a
 * continuation (RFC 7692 6.1). Frames that break other rules (reserved opcodes, for instance) can
 * still be built with `frameHeader`, e.g. by conformance tests.
 */
export function serializeFrame(frame: OutgoingFrame): Buffer[] {
  const { opcode, payload } = frame;
  const fin = frame.fin ?? true;
  const rsv1 = frame.rsv1 ?? false;
  const mask = frame.mask ?? frame.maskKey !== undefined;
  const length = payload.length;
  const key = mask ? (frame.maskKey ?? randomMaskKey()) : null;
  checkHeaderArgs(opcode, length, key);
  if (isControlOpcode(opcode)) {
    // RFC 6455 5.5: "All control frames MUST have a payload length of 125 bytes or less and MUST
    // NOT be fragmented."
    if (!fin) throw new RangeError('a control frame must not be fragmented (RFC 6455 5.5)');
    if (length > 125) throw new RangeError(`a control frame payload is at most 125 bytes, got ${length} (RFC 6455 5.5)`);
  }
  // RFC 7692 6.1: "An endpoint MUST NOT set the "Per-Message Compressed" bit of control frames and
  // non-first fragments of a data message."
  if (rsv1 && (isControlOpcode(opcode) || opcode === Opcode.continuation)) {
    throw new RangeError('RSV1 is only allowed on the first frame of a data message (RFC 7692 6.1)');
  }

  const hlen = headerLength(length, key !== null);
  if (key !== null || length < COPY_THRESHOLD) {
    const out = Buffer.allocUnsafe(hlen + length);
    writeHeader(out, opcode, length, fin, rsv1, key);
    if (key !== null) applyMask(payload, key, out, hlen, length);
    else payload.copy(out, hlen);
    return [out];
  }
  const header = Buffer.allocUnsafe(hlen);
  writeHeader(header, opcode, length, fin, rsv1, null);
  return [header, payload];
}

/**
 * The payload of a close frame: empty when `code` is undefined, else the code in network byte
 * order followed by the UTF-8 reason. Throws TypeError for a code that may not be sent (RFC 6455
 * 7.4.1: 1004-1006 and 1015 "MUST NOT be set as a status code in a Close control frame"; 7.4.2
 * for the ranges), for a reason without a code, or for a reason longer than 123 bytes (5.5: "All
 * control frames MUST have a payload length of 125 bytes or less").
 */
export function closePayload(code: number | undefined, reason: string): Buffer {
  if (typeof reason !== 'string') throw new TypeError('the close reason must be a string');
  if (code === undefined) {
    if (reason !== '') throw new TypeError('a close reason needs a status code (RFC 6455 5.5.1)');
    return Buffer.alloc(0);
  }
  if (!Number.isInteger(code) || !isSendableCloseCode(code)) {
    throw new TypeError(`close code ${String(code)} may not be sent (RFC 6455 7.4)`);
  }
  const reasonLength = Buffer.byteLength(reason, 'utf8');
  if (reasonLength > 123) {
    throw new TypeError(`the close reason is ${reasonLength} bytes of UTF-8; at most 123 fit in a control frame (RFC 6455 5.5)`);
  }
  const payload = Buffer.allocUnsafe(2 + reasonLength);
  payload.writeUInt16BE(code, 0);
  payload.write(reason, 2, 'utf8');
  return payload;
}

/**
 * Splits a message payload into frame payloads of at most `threshold` bytes (views, no copy);
 * 0 = no split. An empty payload is one empty frame.
 */
export function fragmentPayload(payload: Buffer, threshold: number): Buffer[] {
  if (!Number.isSafeInteger(threshold) || threshold < 0) {
    throw new RangeError(`the fragmentation threshold must be an integer ≥ 0, got ${String(threshold)}`);
  }
  const length = payload.length;
  if (threshold === 0 || length <= threshold) return [payload];
  const frames: Buffer[] = [];
  for (let offset = 0; offset < length; offset += threshold) {
    frames.push(payload.subarray(offset, Math.min(offset + threshold, length)));
  }
  return frames;
}
