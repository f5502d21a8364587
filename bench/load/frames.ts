/**
 * The load generator's bytes: client frames built and masked once, ahead of time (RFC 6455 section
 * 5.3: "A client MUST mask all frames that it sends to the server"), the upgrade request written by
 * hand, and a counter that parses frame headers only and skips payloads by their length.
 */
import { randomBytes } from 'node:crypto';
import zlib from 'node:zlib';

export const OP_CONTINUATION = 0x0;
export const OP_TEXT = 0x1;
export const OP_BINARY = 0x2;
export const OP_CLOSE = 0x8;

export interface FrameSpec {
  opcode: number;
  payload: Buffer;
  fin?: boolean;
  rsv1?: boolean;
}

/** One masked client frame (a fresh random masking key, applied once). */
export function maskedFrame({ opcode, payload, fin = true, rsv1 = false }: FrameSpec): Buffer {
  const length = payload.length;
  const extended = length < 126 ? 0 : length < 65536 ? 2 : 8;
  const head = 2 + extended + 4;
  const frame = Buffer.allocUnsafe(head + length);
  frame[0] = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode;
  if (extended === 0) frame[1] = 0x80 | length;
  else if (extended === 2) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    frame.writeUInt32BE(length >>> 0, 6);
  }
  const key = randomBytes(4);
  key.copy(frame, head - 4);
  for (let i = 0; i < length; i++) frame[head + i] = payload[i]! ^ key[i & 3]!;
  return frame;
}

/** `count` copies of a message's frames, back to back in one buffer: one write sends a whole block. */
export function block(frames: Buffer[], count: number): Buffer {
  const one = Buffer.concat(frames);
  return Buffer.concat(Array.from({ length: count }, () => one));
}

/** A message split into `pieces` frames: the first carries the opcode, the rest are continuations. */
export function fragmented(opcode: number, payload: Buffer, pieces: number): Buffer[] {
  const size = Math.ceil(payload.length / pieces);
  const frames: Buffer[] = [];
  for (let i = 0; i < pieces; i++) {
    frames.push(maskedFrame({ opcode: i === 0 ? opcode : OP_CONTINUATION, payload: payload.subarray(i * size, (i + 1) * size), fin: i === pieces - 1 }));
  }
  return frames;
}

/** A close frame with code 1000 (normal closure). */
export function closeFrame(): Buffer {
  const payload = Buffer.alloc(2);
  payload.writeUInt16BE(1000, 0);
  return maskedFrame({ opcode: OP_CLOSE, payload });
}

/** A deterministic text of the given size made of words (ASCII, so valid UTF-8; compressible like real text). */
export function textPayload(size: number, seed = 1): Buffer {
  const words = ['state', 'frame', 'socket', 'open', 'close', 'ping', 'pong', 'message', 'buffer', 'machine', 'event', 'value', '{"id":', '42,', '"ok":true}', 'wire'];
  const out = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  let i = 0;
  while (i < size) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const word = words[(x >>> 16) % words.length]!;
    for (let j = 0; j < word.length && i < size; j++) out[i++] = word.charCodeAt(j);
    if (i < size) out[i++] = 0x20;
  }
  return out;
}

/**
 * A permessage-deflate message payload (RFC 7692 section 7.2.1): DEFLATE with a sync flush and the
 * trailing 00 00 ff ff removed. Each message is compressed on its own (no context taken over), which
 * any peer can inflate, so the same masked frame can be sent again and again.
 */
export function deflatePayload(payload: Buffer): Buffer {
  const out = zlib.deflateRawSync(payload, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  return out.subarray(0, out.length - 4);
}

export const HANDSHAKE_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

export function upgradeRequest(port: number, deflate: boolean): Buffer {
  const lines = [
    'GET / HTTP/1.1',
    `Host: 127.0.0.1:${port}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${HANDSHAKE_KEY}`,
    'Sec-WebSocket-Version: 13',
  ];
  if (deflate) lines.push('Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits');
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
}

/**
 * Counts what a peer sends by reading frame headers only: payloads are skipped by their announced
 * length, never copied or inspected. Works across any chunking. Masked frames are parsed too (the
 * plain TCP echo sends our own masked frames back).
 */
export class FrameCounter {
  /** Complete data messages: data frames (text, binary, continuation) with FIN set. */
  messages = 0;
  frames = 0;
  payloadBytes = 0;
  closes = 0;
  /** Frames with RSV1 set (compressed, under permessage-deflate). */
  compressed = 0;
  onClose: (() => void) | null = null;
  private skip = 0;
  private opcode = 0;
  private fin = false;
  private partial: Buffer | null = null;

  push(input: Buffer): void {
    let chunk = input;
    if (this.partial) {
      chunk = Buffer.concat([this.partial, input]);
      this.partial = null;
    }
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      if (this.skip > 0) {
        const take = Math.min(this.skip, n - i);
        this.skip -= take;
        i += take;
        if (this.skip === 0) this.frameEnd();
        continue;
      }
      if (n - i < 2) break;
      const b0 = chunk[i]!;
      const b1 = chunk[i + 1]!;
      const len7 = b1 & 0x7f;
      const extended = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
      const head = 2 + extended + (b1 & 0x80 ? 4 : 0);
      if (n - i < head) break;
      let length = len7;
      if (extended === 2) length = chunk.readUInt16BE(i + 2);
      else if (extended === 8) length = chunk.readUInt32BE(i + 2) * 2 ** 32 + chunk.readUInt32BE(i + 6);
      this.fin = (b0 & 0x80) !== 0;
      this.opcode = b0 & 0x0f;
      if (b0 & 0x40) this.compressed++;
      this.payloadBytes += length;
      i += head;
      if (length === 0) this.frameEnd();
      else this.skip = length;
    }
    if (i < n) this.partial = Buffer.from(chunk.subarray(i));
  }

  private frameEnd(): void {
    this.frames++;
    if (this.opcode < 8) {
      if (this.fin) this.messages++;
    } else if (this.opcode === OP_CLOSE) {
      this.closes++;
      this.onClose?.();
    }
  }
}
