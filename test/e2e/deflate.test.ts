/**
 * permessage-deflate (RFC 7692) end to end, over real sockets.
 *
 * - The negotiation matrix: each of server_no_context_takeover, client_no_context_takeover,
 *   server_max_window_bits and client_max_window_bits, asked for by the client or imposed by the
 *   server, with a wirestate server against `ws` and Python `websockets` clients and a wirestate
 *   client against `ws` and Python `websockets` servers. Every case runs through a wiretap
 *   (test/helpers/tap.ts) that decodes the frames on the wire, so each case checks what was
 *   agreed (the 101's Sec-WebSocket-Extensions), that messages of every shape round-trip both
 *   ways, and that what was agreed is what each sender did: a repeated message shrinks on the wire
 *   with context takeover and does not without it, and a repeat farther back than a 2^10-byte
 *   window is not found when the window was limited to 10 bits.
 * - Invalid and duplicate parameters: declined by the server, failing the client.
 * - Hostile peers (raw sockets): a deflate bomb (a small frame inflating to far more than
 *   maxPayload → 1009, memory bounded), RSV1 without negotiation (1002), corrupt data (1007).
 * - The wire format of what wirestate sends: compress: false, control frames, RSV1 on the first
 *   frame of a compressed fragmented message only.
 * - zlib contexts are released when connections close, however they close.
 */
import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import zlib from 'node:zlib';
import { WebSocketServer as WsServer, WebSocket as WsClient } from 'ws';
import { WebSocket } from '../../runtime/index.js';
import type { WebSocketProtocolError } from '../../runtime/errors.js';
import { liveZlibContexts } from '../../runtime/extensions/permessage-deflate.js';
import { PYTHON, spawnPython, type PythonPeer } from '../helpers/python.js';
import {
  FrameReader,
  Resources,
  acceptFor,
  closed,
  connectPair,
  frame,
  nextConnection,
  nextMessage,
  once,
  rawClient,
  startEchoServer,
  startServer,
  within,
} from '../helpers/sockets.js';
import { deflateParams, tapProxy, type Tap, type TapStream } from '../helpers/tap.js';

const res = new Resources();
afterEach(() => res.closeAll());

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');
/** Text that deflate cannot shrink much (random base64): only repeats make it smaller. */
const noise = (length: number) => randomBytes(Math.ceil((length * 3) / 4)).toString('base64').slice(0, length);
/** Highly compressible binary data (byte i is i mod 251). */
function pattern(size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i++) out[i] = i % 251;
  return out;
}

/** What a raw peer sends for a compressed message: deflate, then drop the 0x00 0x00 0xff 0xff tail (RFC 7692 7.2.1). */
function deflateMessage(data: Buffer | string): Buffer {
  const out = zlib.deflateRawSync(typeof data === 'string' ? Buffer.from(data) : data, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  return out.subarray(0, out.length - 4);
}

/** What a raw peer does with a compressed message it receives (RFC 7692 7.2.2: append the tail, inflate). */
function inflateMessage(payload: Buffer): Buffer {
  return zlib.inflateRawSync(Buffer.concat([payload, Buffer.from([0, 0, 0xff, 0xff])]), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
}

/** A raw server that answers the upgrade with `extensions` as its Sec-WebSocket-Extensions. */
async function rawDeflateServer(extensions: string | null, onSocket: (socket: net.Socket, reader: FrameReader) => void = () => {}) {
  const server = res.netServer(
    net.createServer((socket) => {
      socket.on('error', () => {});
      let data = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        data = Buffer.concat([data, chunk]);
        const end = data.indexOf('\r\n\r\n');
        if (end === -1) return;
        socket.removeListener('data', onData);
        const key = /sec-websocket-key:\s*(\S+)/i.exec(data.subarray(0, end).toString('latin1'))?.[1] ?? '';
        const ext = extensions === null ? '' : `Sec-WebSocket-Extensions: ${extensions}\r\n`;
        socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor(key)}\r\n${ext}\r\n`);
        onSocket(socket, new FrameReader(socket, data.subarray(end + 4)));
      };
      socket.on('data', onData);
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
}


// ------------------------------------------------------------------ the negotiation matrix

/** The four negotiation parameters, in the camelCase that ws and wirestate both use. */
interface DeflateParams {
  serverNoContextTakeover?: boolean;
  clientNoContextTakeover?: boolean;
  serverMaxWindowBits?: number;
  clientMaxWindowBits?: number;
}

type PeerKind = 'ws client' | 'Python client' | 'ws server' | 'Python server';

interface Received {
  length: number;
  sha256: string;
  type: 'text' | 'binary';
}

/** A wirestate endpoint and a peer from elsewhere, connected through a wiretap. */
interface Pair {
  /** The wirestate end. */
  w: WebSocket;
  tap: Tap;
  /** Frames wirestate sent, and frames the peer sent. */
  fromW: TapStream;
  fromPeer: TapStream;
  peerSend(data: string | Buffer): void;
  peerSendFragments(parts: string[]): void;
  /** The next message the peer received. */
  peerNext(): Promise<Received>;
  /** The next message wirestate received. */
  wNext(): Promise<{ data: Buffer; isBinary: boolean }>;
}

/** Collects messages as they come, so that none is missed between awaits. */
function messageQueue<T>(subscribe: (push: (item: T) => void) => void): () => Promise<T> {
  const items: T[] = [];
  const takers: ((item: T) => void)[] = [];
  subscribe((item) => {
    const taker = takers.shift();
    if (taker) taker(item);
    else items.push(item);
  });
  return () => {
    const ready = items.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    return within(new Promise<T>((resolve) => takers.push(resolve)), 5000, 'a message');
  };
}

const describeMessage = (data: Buffer, isBinary: boolean): Received => ({ length: data.length, sha256: sha256(data), type: isBinary ? 'binary' : 'text' });

/** Python's factory arguments for a configuration (null = its own default). */
function pythonConfig(params: DeflateParams): Record<string, unknown> {
  return {
    server_no_context_takeover: params.serverNoContextTakeover ?? null,
    client_no_context_takeover: params.clientNoContextTakeover ?? null,
    server_max_window_bits: params.serverMaxWindowBits ?? null,
    client_max_window_bits: params.clientMaxWindowBits ?? null,
  };
}

/** wirestate's own sending settings in every matrix case: compress everything, fragment above 16 KiB. */
const W_SEND = { fragmentOutgoingMessages: true, fragmentationThreshold: 16 * 1024 };

function pythonPair(peer: PythonPeer): Pick<Pair, 'peerSend' | 'peerSendFragments' | 'peerNext'> {
  return {
    peerSend: (data) => peer.command(typeof data === 'string' ? { op: 'send', text: data } : { op: 'send', hex: data.toString('hex') }),
    peerSendFragments: (parts) => peer.command({ op: 'send_fragments', parts }),
    peerNext: async () => {
      const e = await peer.next('message');
      return { length: e.length as number, sha256: e.sha256 as string, type: e.type as 'text' | 'binary' };
    },
  };
}

function wsPair(peer: WsClient): Pick<Pair, 'peerSend' | 'peerSendFragments' | 'peerNext'> {
  const next = messageQueue<Received>((push) => peer.on('message', (data: Buffer, isBinary: boolean) => push(describeMessage(data, isBinary))));
  return {
    peerSend: (data) => peer.send(data, { compress: true }),
    peerSendFragments: (parts) => parts.forEach((part, i) => peer.send(part, { compress: true, fin: i === parts.length - 1 })),
    peerNext: next,
  };
}

function wQueue(w: WebSocket): () => Promise<{ data: Buffer; isBinary: boolean }> {
  return messageQueue((push) => w.on('message', (data: Buffer, isBinary: boolean) => push({ data, isBinary })));
}

async function pair(kind: PeerKind, clientParams: DeflateParams, serverParams: DeflateParams): Promise<Pair> {
  if (kind === 'ws client' || kind === 'Python client') {
    const { wss, port } = await startServer(res, { perMessageDeflate: { ...serverParams, threshold: 0 }, ...W_SEND });
    const tap = await tapProxy(res, port);
    const connection = nextConnection(wss, 10000);
    let peerSide: Pick<Pair, 'peerSend' | 'peerSendFragments' | 'peerNext'>;
    if (kind === 'ws client') {
      const peer = res.add(new WsClient(tap.url, { perMessageDeflate: { ...clientParams, threshold: 0 } }), (c) => c.terminate());
      peerSide = wsPair(peer);
      await once(peer, 'open');
    } else {
      const peer = spawnPython(res, 'deflate_peer.py', ['client', tap.url, JSON.stringify(pythonConfig(clientParams))]);
      peerSide = pythonPair(peer);
      await peer.next('open', undefined, 10000);
    }
    const { ws: w } = await connection;
    return { w, tap, fromW: tap.toClient, fromPeer: tap.toServer, wNext: wQueue(w), ...peerSide };
  }
  let port: number;
  let peerSide: Pick<Pair, 'peerSend' | 'peerSendFragments' | 'peerNext'>;
  let peerOpen: Promise<unknown>;
  if (kind === 'ws server') {
    const server = new WsServer({ port: 0, host: '127.0.0.1', perMessageDeflate: { ...serverParams, threshold: 0 } });
    res.add(server, (s) => new Promise<void>((resolve) => {
      for (const client of s.clients) client.terminate();
      s.close(() => resolve());
    }));
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
    let sides!: (value: Pick<Pair, 'peerSend' | 'peerSendFragments' | 'peerNext'>) => void;
    const ready = new Promise<Pick<Pair, 'peerSend' | 'peerSendFragments' | 'peerNext'>>((resolve) => (sides = resolve));
    server.once('connection', (peer: WsClient) => sides(wsPair(peer)));
    peerOpen = ready.then((side) => (peerSide = side));
  } else {
    const peer = spawnPython(res, 'deflate_peer.py', ['server', '0', JSON.stringify(pythonConfig(serverParams))]);
    port = (await peer.next('ready', undefined, 10000)).port as number;
    peerSide = pythonPair(peer);
    peerOpen = peer.next('open', undefined, 10000);
  }
  const tap = await tapProxy(res, port);
  const w = res.client(new WebSocket(tap.url, { perMessageDeflate: { ...clientParams, threshold: 0 }, ...W_SEND }));
  const wNext = wQueue(w);
  await once(w, 'open', 10000);
  await peerOpen;
  return { w, tap, fromW: tap.toServer, fromPeer: tap.toClient, wNext, ...peerSide! };
}

interface MatrixCase {
  name: string;
  /** Who asks for the parameter: the client in its offer, or the server in its configuration. */
  askedBy: 'client' | 'server' | 'nobody';
  params: DeflateParams;
}

const matrix: MatrixCase[] = [{ name: 'defaults', askedBy: 'nobody', params: {} }];
for (const askedBy of ['client', 'server'] as const) {
  matrix.push(
    { name: `server_no_context_takeover asked by the ${askedBy}`, askedBy, params: { serverNoContextTakeover: true } },
    { name: `client_no_context_takeover asked by the ${askedBy}`, askedBy, params: { clientNoContextTakeover: true } },
    { name: `server_max_window_bits=10 asked by the ${askedBy}`, askedBy, params: { serverMaxWindowBits: 10 } },
    { name: `client_max_window_bits=10 asked by the ${askedBy}`, askedBy, params: { clientMaxWindowBits: 10 } },
  );
}

/** The wire size of the next message a sender puts on the wire after `before` messages. */
async function wireSizeOf(stream: TapStream, index: number): Promise<number> {
  await within(
    new Promise<void>((resolve) => {
      const check = () => (stream.messages.length > index ? resolve() : setTimeout(check, 2));
      check();
    }),
    5000,
    `message ${index} on the wire`,
  );
  return stream.messages[index]!.wireBytes;
}

describe('permessage-deflate (e2e)', function () {
  this.timeout(30000);

  before(function () {
    expect(existsSync(PYTHON), `${PYTHON} is missing`).to.equal(true);
  });

  describe('negotiation matrix, both directions, against ws and Python websockets', () => {
    for (const kind of ['ws client', 'Python client', 'ws server', 'Python server'] as const) {
      const wRole = kind.endsWith('client') ? 'server' : 'client';
      describe(`wirestate ${wRole} ↔ ${kind}`, () => {
        for (const c of matrix) {
          it(c.name, async () => {
            const clientParams = c.askedBy === 'client' ? c.params : {};
            const serverParams = c.askedBy === 'server' ? c.params : {};
            const p = await pair(kind, clientParams, serverParams);

            // What was agreed (RFC 7692 section 7): the response of the 101.
            const agreed = deflateParams(p.tap.toClient.header('sec-websocket-extensions'));
            expect(agreed, 'permessage-deflate accepted').to.not.equal(undefined);
            expect(p.w.extensions).to.equal('permessage-deflate');
            const serverNoContext = c.params.serverNoContextTakeover === true;
            const clientNoContext = c.params.clientNoContextTakeover === true;
            const serverBits = c.params.serverMaxWindowBits ?? 15;
            const clientBits = c.params.clientMaxWindowBits ?? 15;
            // 7.1.1.1: a server accepting server_no_context_takeover MUST say so; one that imposes it says so too.
            expect(agreed!.server_no_context_takeover === true, 'server_no_context_takeover in the response').to.equal(serverNoContext);
            if (c.askedBy === 'server' && clientNoContext) expect(agreed!.client_no_context_takeover).to.equal(true);
            if (serverBits < 15) expect(Number(agreed!.server_max_window_bits)).to.be.at.most(serverBits);
            else expect(agreed!.server_max_window_bits).to.equal(undefined);
            if (c.askedBy === 'server' && clientBits < 15) expect(Number(agreed!.client_max_window_bits)).to.be.at.most(clientBits);

            // Round trips, wirestate → peer: small text, a large binary message, a message large
            // enough to leave in several compressed frames.
            const small = 'héllo, deflate ✓';
            const large = pattern(300 * 1024);
            const fragmented = noise(64 * 1024);
            for (const data of [small, large, fragmented]) {
              p.w.send(data);
              expect(await p.peerNext()).to.deep.equal(describeMessage(Buffer.from(data), typeof data !== 'string'));
            }
            // On the wire: all three compressed; the last one in several frames, RSV1 on the first only (7692 6.1).
            expect(p.fromW.messages.slice(0, 3).map((m) => m.rsv[0])).to.deep.equal([4, 4, 4]);
            expect(p.fromW.messages[1]!.wireBytes).to.be.lessThan(large.length / 20);
            const last = p.fromW.messages[2]!;
            expect(last.frames.length).to.be.greaterThan(1);
            expect(last.rsv).to.deep.equal([4, ...last.rsv.slice(1).map(() => 0)]);

            // Round trips, peer → wirestate: the same shapes, the fragmented one sent as such by the peer.
            p.peerSend(small);
            expect((await p.wNext()).data.toString()).to.equal(small);
            p.peerSend(large);
            const gotLarge = await p.wNext();
            expect([gotLarge.data.equals(large), gotLarge.isBinary]).to.deep.equal([true, true]);
            p.peerSendFragments(['frag', 'men', 'ted ✓']);
            expect((await p.wNext()).data.toString()).to.equal('fragmented ✓');
            // (ws sends the three parts as three frames; Python ends with an empty final frame.)
            const peerFragmented = p.fromPeer.messages[2]!;
            expect(peerFragmented.frames.length).to.be.at.least(3);
            expect(peerFragmented.rsv).to.deep.equal([4, ...peerFragmented.rsv.slice(1).map(() => 0)]);

            // Context takeover, each direction: the same 600 bytes twice. With takeover the second
            // copy is a back-reference of a few bytes; without it, it costs what the first did.
            const repeated = noise(600);
            const window = noise(1500);
            const twice = noise(1500);
            const twiceTwice = twice + twice;
            for (const direction of ['wirestate', 'peer'] as const) {
              const stream = direction === 'wirestate' ? p.fromW : p.fromPeer;
              const send = direction === 'wirestate' ? (d: string) => p.w.send(d) : (d: string) => p.peerSend(d);
              const receive = direction === 'wirestate' ? () => p.peerNext() : async () => describeMessage((await p.wNext()).data, false);
              const senderIsServer = (direction === 'wirestate') === (wRole === 'server');
              const noContext = senderIsServer ? serverNoContext : clientNoContext;
              const bits = senderIsServer ? serverBits : clientBits;
              const start = stream.messages.length;
              for (const data of [repeated, repeated, window, twiceTwice]) {
                send(data);
                expect(await receive(), `${direction} → ${data.length} bytes`).to.deep.include({ length: data.length, sha256: sha256(data) });
              }
              const [first, second, single, doubled] = await Promise.all([0, 1, 2, 3].map((i) => wireSizeOf(stream, start + i)));
              const who = `${direction} as ${senderIsServer ? 'server' : 'client'}`;
              if (noContext) expect(Math.abs(second! - first!), `${who}: no context takeover, the repeat costs the same`).to.be.at.most(2);
              else expect(second!, `${who}: context takeover, the repeat is a back-reference`).to.be.lessThan(first! / 4);
              // The window: a repeat 1500 bytes back is found with a 2^15 window, not with 2^10.
              if (bits <= 10) expect(doubled! / single!, `${who}: window of ${bits} bits`).to.be.greaterThan(1.6);
              else expect(doubled! / single!, `${who}: window of ${bits} bits`).to.be.lessThan(1.3);
            }

            // No control frame is ever compressed (RFC 7692 6.1).
            const wClosed = closed(p.w, 5000);
            p.w.close(1000, 'done');
            expect((await wClosed).code).to.equal(1000);
            for (const f of [...p.fromW.frames, ...p.fromPeer.frames]) if (f.opcode >= 8) expect(f.rsv).to.equal(0);
          });
        }
      });
    }
  });

  describe('invalid and duplicate parameters', () => {
    const declined = [
      'permessage-deflate; server_max_window_bits=7',
      'permessage-deflate; server_max_window_bits=16',
      'permessage-deflate; server_max_window_bits=09',
      'permessage-deflate; server_max_window_bits=abc',
      'permessage-deflate; server_max_window_bits',
      'permessage-deflate; client_max_window_bits=20',
      'permessage-deflate; server_no_context_takeover=1',
      'permessage-deflate; client_no_context_takeover="x"',
      'permessage-deflate; server_no_context_takeover; server_no_context_takeover',
      'permessage-deflate; client_max_window_bits=10; client_max_window_bits=11',
      'permessage-deflate; client_max_window_bits; client_max_window_bits',
      'permessage-deflate; unknown_parameter',
    ];
    for (const offer of declined) {
      it(`a server declines "${offer}" (RFC 7692 7.1) and the connection runs uncompressed`, async () => {
        const { wss, port } = await startEchoServer(res, { perMessageDeflate: { threshold: 0 } });
        const connection = nextConnection(wss);
        const { socket, reader } = await rawClient(res, port, '/', { 'Sec-WebSocket-Extensions': offer });
        const { ws } = await connection;
        expect(ws.extensions).to.equal('');
        socket.write(frame(0x1, 'plain'));
        await reader.until(() => reader.frames.length > 0, 'the echo');
        expect(reader.frames[0]).to.deep.include({ rsv: 0, opcode: 1 });
        expect(reader.frames[0]!.payload.toString()).to.equal('plain');
      });
    }

    it('an invalid offer is skipped and the next acceptable one is accepted; a quoted value is read', async () => {
      const { wss, port } = await startServer(res, { perMessageDeflate: { threshold: 0 } });
      const connection = nextConnection(wss);
      const tap = await tapProxy(res, port);
      const { socket, reader } = await rawClient(res, tap.port, '/', {
        'Sec-WebSocket-Extensions': 'permessage-deflate; server_max_window_bits=99, permessage-deflate; server_max_window_bits="10"; client_max_window_bits',
      });
      const { ws } = await connection;
      expect(ws.extensions).to.equal('permessage-deflate');
      expect(deflateParams(tap.toClient.header('sec-websocket-extensions'))).to.deep.equal({ server_max_window_bits: '10' });
      ws.send('compressed');
      await reader.until(() => reader.frames.length > 0, 'a message');
      expect(reader.frames[0]!.rsv).to.equal(4);
      expect(inflateMessage(reader.frames[0]!.payload).toString()).to.equal('compressed');
      socket.destroy();
    });

    const failing: { response: string; offer?: DeflateParams }[] = [
      { response: 'permessage-deflate; server_max_window_bits=16' },
      { response: 'permessage-deflate; server_max_window_bits=7' },
      { response: 'permessage-deflate; client_max_window_bits' },
      { response: 'permessage-deflate; unknown_parameter' },
      { response: 'permessage-deflate; server_no_context_takeover; server_no_context_takeover' },
      { response: 'permessage-deflate; client_max_window_bits=10; client_max_window_bits=10' },
      { response: 'permessage-deflate, permessage-deflate' },
      { response: 'permessage-deflate; server_max_window_bits=12', offer: { serverMaxWindowBits: 10 } },
      { response: 'permessage-deflate; client_max_window_bits=12', offer: { clientMaxWindowBits: 10 } },
      { response: 'permessage-deflate', offer: { serverNoContextTakeover: true } },
      { response: 'x-unknown-extension' },
    ];
    for (const { response, offer } of failing) {
      it(`a client fails on the response "${response}"${offer ? ` to ${JSON.stringify(offer)}` : ''} (RFC 7692 7.1, 1006)`, async () => {
        const url = await rawDeflateServer(response);
        const ws = res.client(new WebSocket(url, { perMessageDeflate: { ...offer } }));
        const errors: WebSocketProtocolError[] = [];
        ws.on('error', (error: WebSocketProtocolError) => errors.push(error));
        const { code } = await closed(ws);
        expect(code).to.equal(1006);
        expect(errors.map((e) => e.code)).to.deep.equal(['WS_ERR_INVALID_EXTENSION']);
        expect(ws.lifecycle).to.equal('terminated');
      });
    }

    it('a client that did not offer permessage-deflate fails when the server accepts it anyway', async () => {
      const url = await rawDeflateServer('permessage-deflate');
      const ws = res.client(new WebSocket(url, { perMessageDeflate: false }));
      const error = once(ws, 'error');
      expect((await closed(ws)).code).to.equal(1006);
      expect(((await error)[0] as WebSocketProtocolError).code).to.equal('WS_ERR_INVALID_EXTENSION');
    });
  });

  describe('hostile peers', () => {
    /** Peak growth of Buffer memory while `run` runs, sampled every millisecond. */
    async function peakBufferGrowth(run: () => Promise<void>): Promise<number> {
      (globalThis as { gc?: () => void }).gc?.();
      const base = process.memoryUsage().arrayBuffers;
      let peak = base;
      const sampler = setInterval(() => {
        peak = Math.max(peak, process.memoryUsage().arrayBuffers);
      }, 1);
      try {
        await run();
      } finally {
        clearInterval(sampler);
      }
      return Math.max(peak, process.memoryUsage().arrayBuffers) - base;
    }

    const LIMIT = 1024 * 1024;
    // 64 MiB of zeros: about 64 KiB once deflated, 64 times maxPayload once inflated.
    let bomb: Buffer;
    before(() => {
      bomb = deflateMessage(Buffer.alloc(64 * 1024 * 1024));
    });

    it('a deflate bomb from a client: 1009 at maxPayload, inflating stops there (memory bounded)', async () => {
      expect(bomb.length).to.be.lessThan(128 * 1024);
      const { wss, port, url } = await startEchoServer(res, { perMessageDeflate: true, maxPayload: LIMIT });
      const connection = nextConnection(wss);
      const { socket, reader } = await rawClient(res, port, '/', { 'Sec-WebSocket-Extensions': 'permessage-deflate' });
      const { ws } = await connection;
      expect(ws.extensions).to.equal('permessage-deflate');
      const errors: WebSocketProtocolError[] = [];
      ws.on('error', (error: WebSocketProtocolError) => errors.push(error));
      const messages: Buffer[] = [];
      ws.on('message', (data: Buffer) => messages.push(data));
      const wsClosed = closed(ws, 5000);
      const growth = await peakBufferGrowth(async () => {
        socket.write(frame(0x2, bomb, { rsv: 4 }));
        const close = await reader.closeFrame(5000);
        expect(close.code).to.equal(1009);
      });
      expect(errors.map((e) => [e.id, e.code, e.closeCode])).to.deep.equal([['inflatedTooBig', 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH', 1009]]);
      expect(messages).to.deep.equal([]);
      expect(growth, `Buffer memory grew by ${growth} bytes`).to.be.lessThan(16 * LIMIT);
      socket.end();
      expect((await wsClosed).code).to.equal(1006);
      // The server still serves.
      const next = res.client(new WebSocket(url));
      await once(next, 'open');
    });

    it('a deflate bomb from a server: the client closes with 1009, memory bounded', async () => {
      let peer: { socket: net.Socket; reader: FrameReader } | undefined;
      const url = await rawDeflateServer('permessage-deflate', (socket, reader) => (peer = { socket, reader }));
      const ws = res.client(new WebSocket(url, { perMessageDeflate: true, maxPayload: LIMIT }));
      await once(ws, 'open');
      const wsClosed = closed(ws, 5000);
      const growth = await peakBufferGrowth(async () => {
        peer!.socket.write(frame(0x2, bomb, { rsv: 4, mask: false }));
        expect((await peer!.reader.closeFrame(5000)).code).to.equal(1009);
      });
      expect(growth, `Buffer memory grew by ${growth} bytes`).to.be.lessThan(16 * LIMIT);
      peer!.socket.end();
      expect((await wsClosed).code).to.equal(1006);
    });

    it('a compressed message that inflates to exactly maxPayload is accepted; one byte more is 1009', async () => {
      const { wss, port } = await startServer(res, { perMessageDeflate: true, maxPayload: 4096 });
      const connection = nextConnection(wss);
      const { socket, reader } = await rawClient(res, port, '/', { 'Sec-WebSocket-Extensions': 'permessage-deflate' });
      const { ws } = await connection;
      const received = nextMessage(ws);
      socket.write(frame(0x2, deflateMessage(Buffer.alloc(4096, 7)), { rsv: 4 }));
      expect((await received).data.equals(Buffer.alloc(4096, 7))).to.equal(true);
      socket.write(frame(0x2, deflateMessage(Buffer.alloc(4097, 7)), { rsv: 4 }));
      expect((await reader.closeFrame()).code).to.equal(1009);
    });

    it('corrupt compressed data is 1007 (WS_ERR_INFLATE_FAILED); invalid UTF-8 once inflated is 1007', async () => {
      for (const [payload, code] of [
        [Buffer.from([0xff, 0xff, 0xff, 0xff, 0x00]), 'WS_ERR_INFLATE_FAILED'],
        [deflateMessage(Buffer.from([0x61, 0xff, 0x62])), 'WS_ERR_INVALID_UTF8'],
      ] as const) {
        const { wss, port } = await startServer(res, { perMessageDeflate: true });
        const connection = nextConnection(wss);
        const { socket, reader } = await rawClient(res, port, '/', { 'Sec-WebSocket-Extensions': 'permessage-deflate' });
        const { ws } = await connection;
        const error = once(ws, 'error');
        socket.write(frame(0x1, payload, { rsv: 4 }));
        expect((await reader.closeFrame()).code).to.equal(1007);
        expect(((await error)[0] as WebSocketProtocolError).code).to.equal(code);
      }
    });

    it('RSV1 from a client that did not negotiate permessage-deflate is 1002, even on a server that would have', async () => {
      const { wss, port } = await startServer(res, { perMessageDeflate: true });
      const connection = nextConnection(wss);
      const { socket, reader } = await rawClient(res, port);
      const { ws } = await connection;
      expect(ws.extensions).to.equal('');
      const error = once(ws, 'error');
      socket.write(frame(0x1, deflateMessage('hello'), { rsv: 4 }));
      expect((await reader.closeFrame()).code).to.equal(1002);
      expect(((await error)[0] as WebSocketProtocolError).code).to.equal('WS_ERR_UNEXPECTED_RSV_1');
    });

    it('RSV1 from a server that did not accept the offer is 1002 at the client', async () => {
      let peer: { socket: net.Socket; reader: FrameReader } | undefined;
      const url = await rawDeflateServer(null, (socket, reader) => (peer = { socket, reader }));
      const ws = res.client(new WebSocket(url, { perMessageDeflate: true }));
      await once(ws, 'open');
      expect(ws.extensions).to.equal('');
      const error = once(ws, 'error');
      peer!.socket.write(frame(0x1, deflateMessage('hello'), { rsv: 4, mask: false }));
      expect((await peer!.reader.closeFrame()).code).to.equal(1002);
      expect(((await error)[0] as WebSocketProtocolError).code).to.equal('WS_ERR_UNEXPECTED_RSV_1');
    });

    it('RSV1 on a continuation or a control frame is 1002 even when negotiated', async () => {
      for (const bytes of [
        Buffer.concat([frame(0x1, deflateMessage('ab'), { rsv: 4, fin: false }), frame(0x0, Buffer.alloc(0), { rsv: 4 })]),
        frame(0x9, 'ping', { rsv: 4 }),
      ]) {
        const { wss, port } = await startServer(res, { perMessageDeflate: true });
        const connection = nextConnection(wss);
        const { socket, reader } = await rawClient(res, port, '/', { 'Sec-WebSocket-Extensions': 'permessage-deflate' });
        await connection;
        socket.write(bytes);
        expect((await reader.closeFrame()).code).to.equal(1002);
      }
    });
  });

  describe('what wirestate puts on the wire', () => {
    async function negotiated(options: Record<string, unknown> = {}) {
      const { wss, port } = await startServer(res, { perMessageDeflate: { threshold: 0 }, ...options });
      const connection = nextConnection(wss);
      const { socket, reader } = await rawClient(res, port, '/', { 'Sec-WebSocket-Extensions': 'permessage-deflate' });
      const { ws } = await connection;
      return { ws, socket, reader };
    }

    it('send(data, { compress: false }) sends an uncompressed frame (no RSV1); the default compresses', async () => {
      const { ws, reader } = await negotiated();
      ws.send('x'.repeat(2000), { compress: false });
      ws.send('x'.repeat(2000));
      await reader.until(() => reader.frames.length === 2, 'two frames');
      expect(reader.frames.map((f) => f.rsv)).to.deep.equal([0, 4]);
      expect(reader.frames[0]!.payload.toString()).to.equal('x'.repeat(2000));
      expect(inflateMessage(reader.frames[1]!.payload).toString()).to.equal('x'.repeat(2000));
      expect(reader.frames[1]!.payload.length).to.be.lessThan(100);
    });

    it("ws's zlibDeflateOptions / zlibInflateOptions are honoured: level 0 stores, level 9 compresses", async () => {
      const text = 'abc'.repeat(2000);
      for (const [level, check] of [
        [0, (size: number) => expect(size).to.be.greaterThan(text.length)],
        [9, (size: number) => expect(size).to.be.lessThan(100)],
      ] as const) {
        const { ws, socket, reader } = await negotiated({ perMessageDeflate: { threshold: 0, zlibDeflateOptions: { level, memLevel: 9 }, zlibInflateOptions: { chunkSize: 1024 } } });
        ws.send(text);
        await reader.until(() => reader.frames.length === 1, 'a frame');
        expect(reader.frames[0]!.rsv).to.equal(4);
        check(reader.frames[0]!.payload.length);
        expect(inflateMessage(reader.frames[0]!.payload).toString()).to.equal(text);
        // And the inflater (chunks of 1 KiB) reads a message of 6 KB.
        const received = nextMessage(ws);
        socket.write(frame(0x1, deflateMessage(text), { rsv: 4 }));
        expect((await received).data.toString()).to.equal(text);
      }
    });

    it('messages under the threshold go uncompressed', async () => {
      const { ws, reader } = await negotiated({ perMessageDeflate: { threshold: 100 } });
      ws.send('y'.repeat(99));
      ws.send('y'.repeat(100));
      await reader.until(() => reader.frames.length === 2, 'two frames');
      expect(reader.frames.map((f) => f.rsv)).to.deep.equal([0, 4]);
    });

    it('control frames are never compressed: ping, pong, the automatic pong, close with a reason', async () => {
      const { ws, socket, reader } = await negotiated();
      ws.ping('p'.repeat(100));
      ws.pong('q'.repeat(100));
      socket.write(frame(0x9, 'ping from the peer'));
      await reader.until(() => reader.frames.length === 3, 'three control frames');
      ws.close(4000, 'r'.repeat(100));
      await reader.closeFrame();
      expect(reader.frames.map((f) => [f.opcode, f.rsv])).to.deep.equal([
        [0x9, 0],
        [0xa, 0],
        [0xa, 0],
        [0x8, 0],
      ]);
      expect(reader.frames[2]!.payload.toString()).to.equal('ping from the peer');
    });

    it('a compressed message fragmented at fragmentationThreshold: RSV1 on its first frame only, continuations clear', async () => {
      const { ws, reader } = await negotiated({ fragmentOutgoingMessages: true, fragmentationThreshold: 64 });
      const text = noise(2000);
      ws.send(text);
      await reader.until(() => reader.frames.some((f) => f.fin), 'the last frame');
      const frames = reader.frames;
      expect(frames.length).to.be.greaterThan(10);
      expect(frames.map((f) => f.rsv)).to.deep.equal([4, ...frames.slice(1).map(() => 0)]);
      expect(frames.map((f) => f.opcode)).to.deep.equal([0x1, ...frames.slice(1).map(() => 0x0)]);
      for (const f of frames) expect(f.payload.length).to.be.at.most(64);
      expect(inflateMessage(Buffer.concat(frames.map((f) => f.payload))).toString()).to.equal(text);
    });

    it('an application-fragmented message (fin: false) is sent uncompressed, and control frames can come between', async () => {
      const { ws, reader } = await negotiated();
      ws.send('part one ', { fin: false });
      ws.ping();
      ws.send('part two', { fin: true });
      await reader.until(() => reader.frames.length === 3, 'three frames');
      expect(reader.frames.map((f) => [f.opcode, f.rsv, f.fin])).to.deep.equal([
        [0x1, 0, false],
        [0x9, 0, true],
        [0x0, 0, true],
      ]);
    });

    it('thousands of compressed sends, in order, none lost (sends wait behind compression)', async () => {
      const { wss, url } = await startServer(res, { perMessageDeflate: { threshold: 0 } });
      const { client, server } = await connectPair(res, wss, url, [], { perMessageDeflate: { threshold: 0 } });
      const got: string[] = [];
      const all = new Promise<void>((resolve) => server.on('message', (data: Buffer) => got.push(data.toString()) === 3000 && resolve()));
      for (let i = 0; i < 3000; i++) client.send(i % 3 === 0 ? `#${i}` : `#${i} ${'z'.repeat(i % 500)}`, { compress: i % 7 !== 0 });
      await within(all, 10000, '3000 messages');
      expect(got.map((m) => Number(m.split(' ')[0]!.slice(1)))).to.deep.equal([...Array(3000).keys()]);
    });
  });

  describe('zlib contexts', () => {
    it('are released when connections close — by close(), terminate(), a protocol error, or the peer going away', async () => {
      const before = liveZlibContexts();
      const { wss, url, port } = await startEchoServer(res, { perMessageDeflate: { threshold: 0 } });
      // One at a time: connectPair takes the server's next connection.
      const pairs: { client: WebSocket; server: WebSocket }[] = [];
      for (let i = 0; i < 8; i++) {
        const { client, server } = await connectPair(res, wss, url, [], { perMessageDeflate: { threshold: 0 } });
        client.send('warm up both directions');
        await nextMessage(client);
        pairs.push({ client, server });
      }
      // Each end of each connection has inflated and deflated once: four contexts per connection.
      expect(liveZlibContexts() - before).to.equal(8 * 4);
      // And a raw peer, which the server fails on corrupt data.
      const connection = nextConnection(wss);
      const { socket, reader } = await rawClient(res, port, '/', { 'Sec-WebSocket-Extensions': 'permessage-deflate' });
      const { ws: failed } = await connection;
      failed.send('to create a deflater');
      await reader.until(() => reader.frames.length === 1, 'a message');
      socket.write(frame(0x2, Buffer.from([0xff, 0xff]), { rsv: 4 }));
      expect((await reader.closeFrame()).code).to.equal(1007);
      const ends = pairs.flatMap(({ client, server }) => [closed(client, 5000), closed(server, 5000)]);
      pairs[0]!.client.close();
      pairs[1]!.server.close(1001);
      pairs[2]!.client.terminate();
      pairs[3]!.server.terminate();
      // The peer's socket goes away without a closing handshake.
      (pairs[4]!.client as unknown as { _socket: net.Socket })._socket.destroy();
      (pairs[5]!.server as unknown as { _socket: net.Socket })._socket.destroy();
      // A server shutdown closes the rest.
      const stopped = new Promise<void>((resolve) => wss.close(() => resolve()));
      socket.end();
      await within(Promise.all(ends), 5000, 'every connection to close');
      await within(stopped, 5000, 'the server to stop');
      expect(liveZlibContexts()).to.equal(before);
    });

    it('messages still being compressed or inflated when the connection is terminated: nothing after close, contexts released', async () => {
      const before = liveZlibContexts();
      const { wss, url } = await startServer(res, { perMessageDeflate: { threshold: 0 } });
      const { client, server } = await connectPair(res, wss, url, [], { perMessageDeflate: { threshold: 0 } });
      const events: string[] = [];
      client.on('error', () => events.push('error'));
      client.on('message', () => events.push('message'));
      client.on('close', () => events.push('close'));
      const callbacks: (Error | null | undefined)[] = [];
      for (let i = 0; i < 20; i++) server.send(noise(100_000));
      await new Promise((resolve) => setTimeout(resolve, 5));
      for (let i = 0; i < 5; i++) client.send(noise(200_000), (error) => callbacks.push(error));
      client.terminate();
      await once(client, 'close');
      await new Promise((resolve) => setTimeout(resolve, 100));
      // Whatever was delivered came before 'close'; no error, and nothing after.
      expect(events[events.length - 1]).to.equal('close');
      expect(events.filter((e) => e !== 'message')).to.deep.equal(['close']);
      // Sends that never left got their callbacks, with an error.
      expect(callbacks.length).to.equal(5);
      if (server.readyState !== WebSocket.CLOSED) await once(server, 'close', 5000);
      expect(liveZlibContexts()).to.equal(before);
    });
  });
});
