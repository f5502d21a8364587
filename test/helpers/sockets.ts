/**
 * Helpers for tests over real loopback sockets: a registry that closes everything a test opened,
 * promises for events (with a deadline, so a missing event fails the test instead of hanging it),
 * and a scripted raw peer — an upgrade done by hand, hand-built frames, and an independent frame
 * reader — for sending what a well-behaved endpoint never would.
 *
 * The frame builder and reader here are deliberately written apart from runtime/codec/: a test
 * that used the codec to check the codec would pass on a shared mistake.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from '../../runtime/index.js';

export const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

// ------------------------------------------------------------------ cleanup

type Closable = () => unknown;

/** Everything a test opened, closed (forcefully) in afterEach. */
export class Resources {
  private items: Closable[] = [];

  add<T>(item: T, close: (item: T) => unknown): T {
    this.items.push(() => close(item));
    return item;
  }

  server(wss: WebSocketServer): WebSocketServer {
    return this.add(wss, (s) => closeServer(s));
  }

  client(ws: WebSocket): WebSocket {
    return this.add(ws, (c) => c.terminate());
  }

  socket<T extends net.Socket>(socket: T): T {
    return this.add(socket, (s) => s.destroy());
  }

  netServer<T extends net.Server>(server: T): T {
    return this.add(server, (s) => closeNetServer(s));
  }

  async closeAll(): Promise<void> {
    const items = this.items.reverse();
    this.items = [];
    for (const close of items) {
      try {
        // Never let one stuck resource hang the suite: give each a bounded time to close.
        await within(Promise.resolve(close()), 1000, 'closing a test resource');
      } catch {
        // already closed
      }
    }
  }
}

function closeServer(wss: WebSocketServer): Promise<void> {
  return new Promise((resolve) => {
    // Terminate what is left so that shutdown does not wait for a closing handshake.
    for (const ws of [...wss._connections]) ws.terminate();
    if (wss.lifecycle === 'stopped') return resolve();
    wss.close(() => resolve());
  });
}

function closeNetServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    (server as net.Server & { closeAllConnections?: () => void }).closeAllConnections?.();
    if (!server.listening) return resolve();
    server.close(() => resolve());
  });
}

// ------------------------------------------------------------------ events with deadlines

/** Resolves with the arguments of the next `event`; rejects after `ms` (default 2 s) or on 'error' when `rejectOnError`. */
export function once(emitter: EventEmitter, event: string, ms = 2000): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.removeListener(event, listener);
      reject(new Error(`timed out after ${ms} ms waiting for '${event}'`));
    }, ms);
    const listener = (...args: unknown[]) => {
      clearTimeout(timer);
      resolve(args);
    };
    emitter.once(event, listener);
  });
}

/** Resolves with the next message as `{ data, isBinary }`. */
export async function nextMessage(ws: WebSocket, ms = 2000): Promise<{ data: Buffer; isBinary: boolean }> {
  const [data, isBinary] = await once(ws, 'message', ms);
  return { data: data as Buffer, isBinary: isBinary as boolean };
}

/** Resolves with the close event's code and reason (as a string). */
export async function closed(ws: WebSocket, ms = 2000): Promise<{ code: number; reason: string }> {
  if (ws.readyState === WebSocket.CLOSED) throw new Error('already closed: listen before closing');
  const [code, reason] = await once(ws, 'close', ms);
  return { code: code as number, reason: (reason as Buffer).toString() };
}

/** Resolves when the promise settles, or rejects after `ms`. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ------------------------------------------------------------------ wirestate endpoints

/** A wirestate server listening on 127.0.0.1, an ephemeral port. */
export async function startServer(res: Resources, options: Record<string, unknown> = {}): Promise<{ wss: WebSocketServer; port: number; url: string }> {
  const wss = res.server(new WebSocketServer({ port: 0, host: '127.0.0.1', ...options }));
  await once(wss, 'listening');
  const port = (wss.address() as AddressInfo).port;
  return { wss, port, url: `ws://127.0.0.1:${port}` };
}

/** A wirestate server whose every connection echoes what it receives (text as text, binary as binary). */
export async function startEchoServer(res: Resources, options: Record<string, unknown> = {}): Promise<{ wss: WebSocketServer; port: number; url: string }> {
  const started = await startServer(res, options);
  started.wss.on('connection', (ws: WebSocket) => {
    ws.on('message', (data: unknown, isBinary: boolean) => ws.send(data as Buffer, { binary: isBinary }));
  });
  return started;
}

/** A wirestate client, open. */
export async function connect(res: Resources, url: string, protocols?: string | string[], options?: Record<string, unknown>): Promise<WebSocket> {
  const ws = res.client(protocols === undefined && options === undefined ? new WebSocket(url) : new WebSocket(url, protocols ?? [], options ?? {}));
  await once(ws, 'open');
  return ws;
}

/** A wirestate client and the server side of its connection, both open. */
export async function connectPair(res: Resources, wss: WebSocketServer, url: string, protocols?: string | string[], options?: Record<string, unknown>): Promise<{ client: WebSocket; server: WebSocket; req: import('node:http').IncomingMessage }> {
  // The server has its side before the client sees the 101: listen first.
  const connection = nextConnection(wss);
  const client = await connect(res, url, protocols, options);
  const { ws: server, req } = await connection;
  return { client, server, req };
}

/** The server side of the next connection. */
export async function nextConnection(wss: WebSocketServer, ms = 2000): Promise<{ ws: WebSocket; req: import('node:http').IncomingMessage }> {
  const [ws, req] = await once(wss, 'connection', ms);
  return { ws: ws as WebSocket, req: req as import('node:http').IncomingMessage };
}

// ------------------------------------------------------------------ raw TCP

export function tcpConnect(res: Resources, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = res.socket(net.connect(port, '127.0.0.1'));
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

export interface RawResponse {
  statusLine: string;
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The server closed the connection (its FIN or a reset arrived). */
  ended: boolean;
}

/** Sends raw bytes and reads everything until the server closes the connection (within `ms`). */
export async function rawRequest(res: Resources, port: number, request: string | Buffer, ms = 2000): Promise<RawResponse> {
  const socket = await tcpConnect(res, port);
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', () => {});
  socket.write(request);
  await within(new Promise<void>((resolve) => socket.once('close', () => resolve())), ms, 'the server to close the connection');
  return parseHead(Buffer.concat(chunks), true);
}

function parseHead(data: Buffer, ended: boolean): RawResponse {
  const text = data.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  const head = end === -1 ? text : text.slice(0, end);
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const status = Number(statusLine.split(' ')[1]);
  return { statusLine, status, headers, body: end === -1 ? '' : text.slice(end + 4), ended };
}

/** The lines of a well-formed upgrade request, to break one at a time. */
export function upgradeRequest(overrides: { method?: string; path?: string; version?: string; headers?: Record<string, string | null> } = {}): string {
  const headers: Record<string, string | null> = {
    Host: '127.0.0.1',
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
    'Sec-WebSocket-Version': '13',
    ...overrides.headers,
  };
  const lines = [`${overrides.method ?? 'GET'} ${overrides.path ?? '/'} HTTP/${overrides.version ?? '1.1'}`];
  for (const [name, value] of Object.entries(headers)) if (value !== null) lines.push(`${name}: ${value}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

export function acceptFor(key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64');
}

// ------------------------------------------------------------------ frames by hand

export interface RawFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

/** Builds one frame, any bits the test asks for (reserved opcodes, RSV bits, unmasked client frames …). */
export function frame(
  opcode: number,
  payload: Buffer | string = Buffer.alloc(0),
  options: { fin?: boolean; rsv?: number; mask?: boolean; length?: number | bigint; lengthForm?: 7 | 16 | 64 } = {},
): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const fin = options.fin ?? true;
  const mask = options.mask ?? true;
  const length = options.length ?? data.length;
  // The length encoding: minimal unless the test asks for another form (RFC 6455 section 5.2).
  const form = options.lengthForm ?? (length < 126 ? 7 : length < 65536 ? 16 : 64);
  let header: Buffer;
  if (form === 7) {
    header = Buffer.alloc(2);
    header[1] = Number(length);
  } else if (form === 16) {
    header = Buffer.alloc(4);
    header[1] = 126;
    header.writeUInt16BE(Number(length), 2);
  } else {
    header = Buffer.alloc(10);
    header[1] = 127;
    header.writeBigUInt64BE(BigInt(length), 2);
  }
  header[0] = (fin ? 0x80 : 0) | ((options.rsv ?? 0) << 4) | opcode;
  if (!mask) return Buffer.concat([header, data]);
  header[1]! |= 0x80;
  const key = randomBytes(4);
  const masked = Buffer.alloc(data.length);
  for (let i = 0; i < data.length; i++) masked[i] = data[i]! ^ key[i & 3]!;
  return Buffer.concat([header, key, masked]);
}

/** A close frame's payload: the code (2 bytes) and the reason; `code` undefined → empty. */
export function closeBody(code?: number, reason = ''): Buffer {
  if (code === undefined) return Buffer.alloc(0);
  const body = Buffer.alloc(2 + Buffer.byteLength(reason));
  body.writeUInt16BE(code, 0);
  body.write(reason, 2);
  return body;
}

/** Decodes the frames a peer wrote, whatever the chunking; remembers whether the socket ended. */
export class FrameReader {
  readonly frames: RawFrame[] = [];
  ended = false;
  private buffer = Buffer.alloc(0);
  private waiters: (() => void)[] = [];

  constructor(readonly socket: net.Socket, initial: Buffer = Buffer.alloc(0)) {
    socket.on('data', (chunk: Buffer) => this.push(chunk));
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', () => {});
    if (initial.length > 0) this.push(initial);
  }

  private push(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    for (let frame = readFrame(this.buffer); frame; frame = readFrame(this.buffer)) {
      this.frames.push({ fin: frame.fin, rsv: frame.rsv, opcode: frame.opcode, masked: frame.masked, payload: frame.payload });
      this.buffer = frame.rest;
    }
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /** Waits until `test` holds over what was read so far (or the deadline passes). */
  async until(test: () => boolean, what: string, ms = 2000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!test()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The first close frame, decoded. */
  async closeFrame(ms = 2000): Promise<{ code: number | undefined; reason: string; frame: RawFrame }> {
    await this.until(() => this.frames.some((f) => f.opcode === 8), 'a close frame', ms);
    const f = this.frames.find((x) => x.opcode === 8)!;
    return { code: f.payload.length >= 2 ? f.payload.readUInt16BE(0) : undefined, reason: f.payload.subarray(2).toString(), frame: f };
  }

  /** Waits for the peer to close the TCP connection. */
  async end(ms = 2000): Promise<void> {
    await this.until(() => this.ended, 'the TCP connection to close', ms);
  }
}

/**
 * A raw client: does the opening handshake by hand against `port`, then lets the test write any
 * bytes and read the server's frames.
 */
export async function rawClient(res: Resources, port: number, path = '/', extraHeaders: Record<string, string> = {}): Promise<{ socket: net.Socket; reader: FrameReader }> {
  const socket = await tcpConnect(res, port);
  const key = randomBytes(16).toString('base64');
  socket.write(upgradeRequest({ path, headers: { 'Sec-WebSocket-Key': key, ...extraHeaders } }));
  const rest = await new Promise<Buffer>((resolve, reject) => {
    let data = Buffer.alloc(0);
    const timer = setTimeout(() => reject(new Error('no 101 response')), 2000);
    const onData = (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      const end = data.indexOf('\r\n\r\n');
      if (end === -1) return;
      clearTimeout(timer);
      socket.removeListener('data', onData);
      const head = parseHead(data.subarray(0, end + 4), false);
      if (head.status !== 101) return reject(new Error(`expected 101, got ${head.statusLine}`));
      if (head.headers['sec-websocket-accept'] !== acceptFor(key)) return reject(new Error('bad Sec-WebSocket-Accept'));
      resolve(data.subarray(end + 4));
    };
    socket.on('data', onData);
  });
  return { socket, reader: new FrameReader(socket, rest) };
}

/**
 * A raw server: a TCP server that completes the opening handshake by hand for every request and
 * hands the socket to `onSocket` — for sending a wirestate client what a server never should.
 * `headers` are added to the 101 (e.g. a Sec-WebSocket-Extensions the client must then honour).
 */
export async function rawServer(
  res: Resources,
  onSocket: (socket: net.Socket, reader: FrameReader) => void,
  options: { answer?: boolean; headers?: Record<string, string> } = {},
): Promise<{ server: net.Server; port: number; url: string }> {
  const server = res.netServer(
    net.createServer((socket) => {
      socket.on('error', () => {});
      if (options.answer === false) {
        onSocket(socket, new FrameReader(socket));
        return;
      }
      let data = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        data = Buffer.concat([data, chunk]);
        const end = data.indexOf('\r\n\r\n');
        if (end === -1) return;
        socket.removeListener('data', onData);
        const head = data.subarray(0, end).toString('latin1');
        const key = /sec-websocket-key:\s*(\S+)/i.exec(head)?.[1] ?? '';
        const extra = Object.entries(options.headers ?? {}).map(([name, value]) => `${name}: ${value}\r\n`).join('');
        socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor(key)}\r\n${extra}\r\n`);
        onSocket(socket, new FrameReader(socket, data.subarray(end + 4)));
      };
      socket.on('data', onData);
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return { server, port, url: `ws://127.0.0.1:${port}` };
}

/**
 * Reads one frame from the front of `b` with the tests' own reader (independent of the codec under
 * test): its header fields, its unmasked payload and the bytes after it; undefined while incomplete.
 */
export function readFrame(b: Buffer): { fin: boolean; rsv: number; opcode: number; masked: boolean; payload: Buffer; rest: Buffer<ArrayBuffer> } | undefined {
  if (b.length < 2) return undefined;
  let length = b[1]! & 0x7f;
  let offset = 2;
  if (length === 126) {
    if (b.length < 4) return undefined;
    length = b.readUInt16BE(2);
    offset = 4;
  } else if (length === 127) {
    if (b.length < 10) return undefined;
    length = Number(b.readBigUInt64BE(2));
    offset = 10;
  }
  const masked = (b[1]! & 0x80) !== 0;
  const keyOffset = offset;
  if (masked) offset += 4;
  if (b.length < offset + length) return undefined;
  const payload = Buffer.from(b.subarray(offset, offset + length));
  if (masked) for (let i = 0; i < payload.length; i++) payload[i]! ^= b[keyOffset + (i & 3)]!;
  return { fin: (b[0]! & 0x80) !== 0, rsv: (b[0]! >> 4) & 7, opcode: b[0]! & 0x0f, masked, payload, rest: b.subarray(offset + length) as Buffer<ArrayBuffer> };
}
