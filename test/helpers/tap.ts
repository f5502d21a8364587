/**
 * A wiretap: a TCP proxy between a WebSocket client and server that forwards every byte unchanged
 * and decodes what passes in each direction — the HTTP heads of the opening handshake, then the
 * frames, grouped into messages — so that tests can check what was really on the wire (RSV1, frame
 * counts, compressed sizes) between any two implementations.
 *
 * The decoder is written apart from runtime/codec/ (as in sockets.ts): a test must not check the
 * codec with the codec.
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Resources } from './sockets.js';

export interface TapFrame {
  fin: boolean;
  /** RSV1..RSV3 as bits 4, 2, 1. */
  rsv: number;
  opcode: number;
  masked: boolean;
  /** Payload length on the wire. */
  length: number;
  /** The unmasked payload. */
  payload: Buffer;
}

export interface TapMessage {
  /** The first frame's opcode (1 text, 2 binary). */
  opcode: number;
  /** RSV bits of each frame, in order. */
  rsv: number[];
  /** Payload bytes of all its frames: the compressed size for a compressed message. */
  wireBytes: number;
  frames: TapFrame[];
}

/** One direction of the connection. */
export class TapStream {
  head = '';
  readonly frames: TapFrame[] = [];
  readonly messages: TapMessage[] = [];
  private buffer: Buffer = Buffer.alloc(0);
  private inHead = true;
  private open: TapMessage | null = null;

  push(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    if (this.inHead) {
      const end = this.buffer.indexOf('\r\n\r\n');
      if (end === -1) return;
      this.head = this.buffer.subarray(0, end).toString('latin1');
      this.buffer = this.buffer.subarray(end + 4);
      this.inHead = false;
    }
    for (;;) {
      const b = this.buffer;
      if (b.length < 2) return;
      let length = b[1]! & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (b.length < 4) return;
        length = b.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (b.length < 10) return;
        length = Number(b.readBigUInt64BE(2));
        offset = 10;
      }
      const masked = (b[1]! & 0x80) !== 0;
      const keyAt = offset;
      if (masked) offset += 4;
      if (b.length < offset + length) return;
      const payload = Buffer.from(b.subarray(offset, offset + length));
      if (masked) for (let i = 0; i < payload.length; i++) payload[i]! ^= b[keyAt + (i & 3)]!;
      const frame: TapFrame = { fin: (b[0]! & 0x80) !== 0, rsv: (b[0]! >> 4) & 7, opcode: b[0]! & 0x0f, masked, length, payload };
      this.frames.push(frame);
      this.buffer = b.subarray(offset + length);
      if (frame.opcode < 8) {
        if (frame.opcode !== 0 || this.open === null) {
          this.open = { opcode: frame.opcode, rsv: [], wireBytes: 0, frames: [] };
        }
        this.open.rsv.push(frame.rsv);
        this.open.wireBytes += frame.length;
        this.open.frames.push(frame);
        if (frame.fin) {
          this.messages.push(this.open);
          this.open = null;
        }
      }
    }
  }

  /** A header of the HTTP head, by name (case-insensitive); undefined when absent. */
  header(name: string): string | undefined {
    const wanted = name.toLowerCase();
    for (const line of this.head.split('\r\n').slice(1)) {
      const colon = line.indexOf(':');
      if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === wanted) return line.slice(colon + 1).trim();
    }
    return undefined;
  }
}

export interface Tap {
  /** Where the client should connect. */
  port: number;
  url: string;
  /** Client → server (the request head, then the client's frames). */
  toServer: TapStream;
  /** Server → client (the response head, then the server's frames). */
  toClient: TapStream;
}

/** Starts a wiretap on 127.0.0.1 forwarding the first connection it accepts to `targetPort`. */
export async function tapProxy(res: Resources, targetPort: number): Promise<Tap> {
  const toServer = new TapStream();
  const toClient = new TapStream();
  const server = res.netServer(
    net.createServer((client) => {
      const upstream = res.socket(net.connect(targetPort, '127.0.0.1'));
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
      client.on('data', (chunk: Buffer) => {
        toServer.push(chunk);
        if (!upstream.write(chunk)) client.pause();
      });
      upstream.on('drain', () => client.resume());
      upstream.on('data', (chunk: Buffer) => {
        toClient.push(chunk);
        if (!client.write(chunk)) upstream.pause();
      });
      client.on('drain', () => upstream.resume());
      client.on('end', () => upstream.end());
      upstream.on('end', () => client.end());
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return { port, url: `ws://127.0.0.1:${port}`, toServer, toClient };
}

/** Parses `permessage-deflate; a; b=10` into { a: true, b: '10' } (the first permessage-deflate element). */
export function deflateParams(header: string | undefined): Record<string, string | true> | undefined {
  if (header === undefined) return undefined;
  const element = header.split(',').map((e) => e.trim()).find((e) => e.split(';')[0]!.trim() === 'permessage-deflate');
  if (element === undefined) return undefined;
  const out: Record<string, string | true> = {};
  for (const part of element.split(';').slice(1)) {
    const [name, value] = part.split('=').map((x) => x.trim());
    out[name!] = value === undefined ? true : value.replace(/^"|"$/g, '');
  }
  return out;
}
