/**
 * Small helpers for the dialect tests: events with deadlines (a missing event fails the test
 * instead of hanging it), servers on free loopback ports, and a raw peer — a hand-made upgrade and
 * hand-built frames — for behaving as no real client library would (never answering a ping or a
 * close frame). The frame code here is written apart from runtime/codec/ on purpose.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** Resolves with the event's arguments, or rejects after `ms`. */
export function once<T extends unknown[] = unknown[]>(emitter: EventEmitter, event: string, ms = 3000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.removeListener(event, listener);
      reject(new Error(`no '${event}' event within ${ms} ms`));
    }, ms);
    const listener = (...args: unknown[]) => {
      clearTimeout(timer);
      resolve(args as T);
    };
    emitter.once(event, listener);
  });
}

/** Resolves true if the event does NOT happen within `ms`. */
export function quiet(emitter: EventEmitter, event: string, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const listener = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      emitter.removeListener(event, listener);
      resolve(true);
    }, ms);
    emitter.once(event, listener);
  });
}

export const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `check` every 10 ms until it is true, or fails after `ms`. */
export async function until(check: () => boolean, ms = 3000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await delay(10);
  }
}

/** A plain HTTP server on a free loopback port. */
export async function httpServer(): Promise<{ server: http.Server; port: number; close: () => Promise<void> }> {
  const server = http.createServer((_req, res) => {
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface RawFrame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

/** Builds one masked client frame. */
export function clientFrame(opcode: number, payload: Buffer | string = Buffer.alloc(0), fin = true): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const mask = randomBytes(4);
  let header: Buffer;
  if (data.length < 126) {
    header = Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | data.length]);
  } else if (data.length < 65536) {
    header = Buffer.alloc(4);
    header[0] = (fin ? 0x80 : 0) | opcode;
    header[1] = 0x80 | 126;
    header.writeUInt16BE(data.length, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = (fin ? 0x80 : 0) | opcode;
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(data.length), 2);
  }
  const masked = Buffer.alloc(data.length);
  for (let i = 0; i < data.length; i++) masked[i] = data[i]! ^ mask[i % 4]!;
  return Buffer.concat([header, mask, masked]);
}

/**
 * A raw WebSocket peer over TCP: does the opening handshake by hand, then collects the server's
 * (unmasked) frames and answers nothing unless told to.
 */
export class RawPeer {
  readonly frames: RawFrame[] = [];
  status = 0;
  responseHead = '';
  closed = false;
  private buffer = Buffer.alloc(0);
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: net.Socket) {}

  static async connect(port: number, path = '/', headers: Record<string, string> = {}, host = '127.0.0.1'): Promise<RawPeer> {
    const socket = net.connect(port, host);
    const peer = new RawPeer(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const key = randomBytes(16).toString('base64');
    const lines = [
      `GET ${path} HTTP/1.1`,
      `Host: ${host}:${port}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Key: ${key}`,
      'Sec-WebSocket-Version: 13',
      ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    ];
    socket.write(lines.join('\r\n') + '\r\n\r\n');
    let head = Buffer.alloc(0);
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end === -1) return;
        socket.removeListener('data', onData);
        peer.responseHead = head.subarray(0, end).toString('latin1');
        peer.status = Number(peer.responseHead.split(' ')[1]);
        if (peer.status === 101) {
          const accept = /sec-websocket-accept: *(\S+)/i.exec(peer.responseHead)?.[1];
          const expected = createHash('sha1').update(key + GUID).digest('base64');
          if (accept !== expected) return reject(new Error('bad Sec-WebSocket-Accept'));
        }
        peer.push(head.subarray(end + 4));
        socket.on('data', (data: Buffer) => peer.push(data));
        resolve();
      };
      socket.on('data', onData);
      socket.once('error', reject);
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      peer.closed = true;
      peer.wake();
    });
    return peer;
  }

  private push(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    for (;;) {
      if (this.buffer.length < 2) break;
      const b0 = this.buffer[0]!;
      const b1 = this.buffer[1]!;
      let length = b1 & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (this.buffer.length < 4) break;
        length = this.buffer.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (this.buffer.length < 10) break;
        length = Number(this.buffer.readBigUInt64BE(2));
        offset = 10;
      }
      if (this.buffer.length < offset + length) break;
      this.frames.push({ fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, payload: this.buffer.subarray(offset, offset + length) });
      this.buffer = this.buffer.subarray(offset + length);
    }
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Waits for a frame with this opcode (not yet consumed by an earlier call), or fails after `ms`. */
  async nextFrame(opcode: number, ms = 3000): Promise<RawFrame> {
    const end = Date.now() + ms;
    for (;;) {
      const index = this.frames.findIndex((f) => f.opcode === opcode);
      if (index !== -1) return this.frames.splice(index, 1)[0]!;
      if (this.closed) throw new Error(`connection closed before a frame with opcode ${opcode}`);
      const left = end - Date.now();
      if (left <= 0) throw new Error(`no frame with opcode ${opcode} within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Waits for the TCP connection to close, or fails after `ms`. */
  async waitClosed(ms = 3000): Promise<void> {
    await until(() => this.closed, ms, 'the TCP connection to close');
  }

  send(opcode: number, payload: Buffer | string = Buffer.alloc(0), fin = true): void {
    this.socket.write(clientFrame(opcode, payload, fin));
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Sends a raw HTTP request and returns the status line and headers the server answered with. */
export async function rawRequest(port: number, lines: string[]): Promise<{ status: number; head: string }> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  socket.write(lines.join('\r\n') + '\r\n\r\n');
  let data = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no answer'));
    }, 3000);
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString('latin1');
      const end = data.indexOf('\r\n\r\n');
      if (end !== -1) {
        clearTimeout(timer);
        socket.destroy();
        resolve({ status: Number(data.split(' ')[1]), head: data.slice(0, end) });
      }
    });
    socket.on('close', () => {
      clearTimeout(timer);
      if (!data.includes('\r\n\r\n')) resolve({ status: 0, head: data });
    });
  });
}
