/**
 * The scripted raw peer of the model-based tests: a plain TCP socket on which the opening
 * handshake is done by hand and frames are built by hand (masked when the peer is the client),
 * written apart from runtime/codec so that a shared mistake cannot make the test pass.
 *
 * The peer does only what it is told: it never answers a ping, never echoes a close frame and
 * never closes TCP on its own. Its sockets are half-open capable (allowHalfOpen), because Node's
 * default would answer the runtime's FIN with one of its own — a SOCKET_ENDED the path did not ask for.
 */
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { readFrame } from '../../helpers/sockets.js';

export const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export function acceptFor(key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64');
}

/** One frame, any bits; masked with a random key when `mask` is set (RFC 6455 section 5.3). */
export function buildFrame(opcode: number, payload: Buffer, mask: boolean, fin = true): Buffer {
  if (payload.length > 125) throw new RangeError('the model peer only writes short frames');
  const header = Buffer.from([(fin ? 0x80 : 0) | opcode, (mask ? 0x80 : 0) | payload.length]);
  if (!mask) return Buffer.concat([header, payload]);
  const key = randomBytes(4);
  const body = Buffer.alloc(payload.length);
  for (let i = 0; i < payload.length; i++) body[i] = payload[i]! ^ key[i & 3]!;
  return Buffer.concat([header, key, body]);
}

/** A close frame's body: status code and reason (RFC 6455 section 5.5.1). */
export function closeBody(code: number, reason: string): Buffer {
  const body = Buffer.alloc(2 + Buffer.byteLength(reason));
  body.writeUInt16BE(code, 0);
  body.write(reason, 2);
  return body;
}

export interface ReadFrame {
  opcode: number;
  payload: Buffer;
}

/**
 * Reads what the runtime writes: an HTTP head first (the 101 or the rejection when the peer is the
 * client, the upgrade request when it is the server), then frames. Remembers whether the runtime
 * half-closed (FIN) or the socket went away.
 */
export class RawPeer {
  head: string | null = null;
  /** False after an HTTP answer other than 101: what follows is its body, not frames. */
  private framing = true;
  readonly frames: ReadFrame[] = [];
  gotFin = false;
  closed = false;
  private buffer = Buffer.alloc(0);
  private readonly waiters = new Set<() => void>();

  constructor(
    readonly socket: net.Socket,
    /** Whether this peer is the client of the connection (its frames are then masked). */
    readonly isClient: boolean,
  ) {
    socket.on('data', (chunk: Buffer) => this.push(chunk));
    socket.on('end', () => {
      this.gotFin = true;
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  private push(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    if (this.head === null) {
      const end = this.buffer.indexOf('\r\n\r\n');
      if (end === -1) return;
      this.head = this.buffer.subarray(0, end).toString('latin1');
      this.buffer = this.buffer.subarray(end + 4);
      this.framing = !this.head.startsWith('HTTP/') || / 101 /.test(this.head.split('\r\n')[0]!);
    }
    if (!this.framing) {
      this.buffer = Buffer.alloc(0);
      this.wake();
      return;
    }
    for (let frame = readFrame(this.buffer); frame; frame = readFrame(this.buffer)) {
      this.frames.push({ opcode: frame.opcode, payload: frame.payload });
      this.buffer = frame.rest;
    }
    this.wake();
  }

  private wake(): void {
    for (const wake of [...this.waiters]) wake();
  }

  /** Resolves once `test` holds; rejects after `ms`. */
  until(test: () => boolean, what: string, ms = 1000): Promise<void> {
    if (test()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!test()) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`the raw peer timed out after ${ms} ms waiting for ${what}`));
      }, ms);
      this.waiters.add(check);
    });
  }

  /** The value of a header of the head read so far (lower-case name). */
  header(name: string): string | undefined {
    for (const line of (this.head ?? '').split('\r\n').slice(1)) {
      const colon = line.indexOf(':');
      if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === name) return line.slice(colon + 1).trim();
    }
    return undefined;
  }

  write(bytes: Buffer | string): void {
    this.socket.write(bytes);
  }

  sendFrame(opcode: number, payload: Buffer = Buffer.alloc(0)): void {
    this.socket.write(buildFrame(opcode, payload, this.isClient));
  }

  /** Half-closes: the runtime reads a FIN (its socket's 'end'). */
  end(): void {
    this.socket.end();
  }

  /**
   * Tears the connection down with a TCP RST. A plain destroy() would send a FIN, which a
   * runtime socket reads as 'end' (SOCKET_ENDED) before its 'close'; a reset is what makes the
   * runtime see the connection gone without a FIN first: 'error' (ECONNRESET), then 'close'.
   */
  reset(): void {
    this.socket.resetAndDestroy();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** A well-formed upgrade request (RFC 6455 section 4.1) with the given key. */
export function upgradeRequest(key: string, path = '/'): string {
  return [
    `GET ${path} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${key}`,
    'Sec-WebSocket-Version: 13',
    '',
    '',
  ].join('\r\n');
}

/** A 101 answer to a request with `key`; `accept` overrides the Sec-WebSocket-Accept value. */
export function switchingProtocols(key: string, accept = acceptFor(key)): string {
  return ['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${accept}`, '', ''].join('\r\n');
}

export function connectRaw(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    socket.once('connect', () => {
      socket.removeListener('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

export function newKey(): string {
  return randomBytes(16).toString('base64');
}
