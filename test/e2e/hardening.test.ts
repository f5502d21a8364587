/**
 * Hostile and broken peers over real sockets: every hostile input gets a clear error, a correct
 * close, and costs bounded memory.
 *
 * - The opening handshake: header size and count limits (431), slowloris (cut at handshakeTimeout),
 *   garbage before and after the request, HTTP pipelining after the upgrade request, control
 *   characters in header values, lists of 100,000 subprotocols or extensions (linear time), a path
 *   the server does not serve.
 * - Frames: the message, frame, fragment and buffered-piece limits, for both roles; a ping flood
 *   from a peer that does not read (answers capped by maxPendingAutoPongs and sendHighWaterMark); a
 *   pong flood; data after a close frame; half-open connections reaped by keep-alive or the idle
 *   timeout.
 * - Slow readers: send()'s boolean and 'drain' keep a well-behaved producer within
 *   sendHighWaterMark; closeOnSendOverflow closes with 1008 and stops queueing.
 */
import { expect } from 'chai';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import v8 from 'node:v8';
import vm from 'node:vm';
import { SimulatedClock } from 'xstate';
import { WebSocket, WebSocketServer } from '../../runtime/index.js';
import type { WebSocketProtocolError } from '../../runtime/errors.js';
import {
  FrameReader,
  Resources,
  closeBody,
  closed,
  connect,
  connectPair,
  frame,
  nextConnection,
  nextMessage,
  once,
  rawClient,
  rawRequest,
  rawServer,
  startEchoServer,
  startServer,
  tcpConnect,
  upgradeRequest,
  within,
} from '../helpers/sockets.js';
import { TapStream } from '../helpers/tap.js';

const res = new Resources();
afterEach(() => res.closeAll());

// A garbage collection on demand, to measure what a flood leaves retained rather than what it left as garbage.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
function retainedHeap(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/** Waits (polling every few ms) until `test` holds. */
async function until(test: () => boolean, what: string, ms = 5000): Promise<void> {
  await within(
    new Promise<void>((resolve) => {
      const check = () => (test() ? resolve() : setTimeout(check, 2));
      check();
    }),
    ms,
    what,
  );
}

/** Writes `request` on a raw connection and decodes everything the server sends until it closes: the head, then frames. */
async function exchange(port: number, request: string | Buffer, ms = 3000): Promise<{ stream: TapStream; raw: string; status: number }> {
  const socket = await tcpConnect(res, port);
  const stream = new TapStream();
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    stream.push(chunk);
  });
  socket.on('error', () => {});
  socket.write(request);
  await within(new Promise<void>((resolve) => socket.once('close', () => resolve())), ms, 'the server to close the connection');
  const raw = Buffer.concat(chunks).toString('latin1');
  return { stream, raw, status: Number(raw.split(' ')[1]) };
}

/** Sends a request and resolves with the status line's code as soon as the response head is in, and how long it took. */
async function timedStatus(port: number, request: string): Promise<{ status: number; ms: number }> {
  const socket = await tcpConnect(res, port);
  socket.on('error', () => {});
  const start = process.hrtime.bigint();
  let head = '';
  const done = new Promise<number>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (head.includes('\r\n\r\n')) resolve(Number(head.split(' ')[1]));
    });
    socket.on('close', () => resolve(Number(head.split(' ')[1]) || 0));
  });
  socket.write(request);
  const status = await within(done, 20000, 'a response');
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  socket.destroy();
  return { status, ms };
}

function manyHeaders(n: number): Record<string, string> {
  const headers: Record<string, string> = {};
  for (let i = 0; i < n; i++) headers[`X-Field-${i}`] = 'v';
  return headers;
}

describe('hardening against hostile peers (e2e)', function () {
  this.timeout(20000);

  describe('the opening handshake', () => {
    it('a request head over maxHeaderSize (Node default 16 KiB) is answered 431 and closed', async () => {
      const { port } = await startServer(res);
      const big = await rawRequest(res, port, upgradeRequest({ headers: { 'X-Big': 'a'.repeat(20 * 1024) } }));
      expect([big.status, big.ended]).to.deep.equal([431, true]);
      const { port: small } = await startServer(res, { maxHeaderSize: 4096 });
      const over = await rawRequest(res, small, upgradeRequest({ headers: { 'X-Big': 'a'.repeat(5000) } }));
      expect([over.status, over.ended]).to.deep.equal([431, true]);
      const under = await timedStatus(small, upgradeRequest({ headers: { 'X-Big': 'a'.repeat(3000) } }));
      expect(under.status).to.equal(101);
    });

    it('more header fields than maxHeaderCount (default 256) is answered 431 and closed; at the limit it is accepted', async () => {
      const { port, wss } = await startServer(res);
      const errors: string[] = [];
      wss.on('wsClientError', (error: WebSocketProtocolError) => errors.push(error.code));
      // upgradeRequest() sends 5 fields of its own.
      const over = await rawRequest(res, port, upgradeRequest({ headers: manyHeaders(252) }));
      expect([over.status, over.ended]).to.deep.equal([431, true]);
      expect(errors).to.deep.equal(['WS_ERR_HANDSHAKE_HEADERS_TOO_LARGE']);
      expect((await timedStatus(port, upgradeRequest({ headers: manyHeaders(251) }))).status).to.equal(101);
      const { port: strict } = await startServer(res, { maxHeaderCount: 10 });
      expect((await rawRequest(res, strict, upgradeRequest({ headers: manyHeaders(6) }))).status).to.equal(431);
      expect((await timedStatus(strict, upgradeRequest({ headers: manyHeaders(5) }))).status).to.equal(101);
    });

    it('on an HTTP server the application owns, the limits are checked again after Node’s own (its maxHeaderSize applies first)', async () => {
      // The application's server lets 64 KiB heads through; wirestate's limit is 8 KiB.
      const httpServer = res.add(http.createServer({ maxHeaderSize: 64 * 1024 }), (s) => new Promise<void>((resolve) => s.close(() => resolve())));
      res.server(new WebSocketServer({ server: httpServer, maxHeaderSize: 8192, maxHeaderCount: 50 }));
      await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', () => resolve()));
      const port = (httpServer.address() as AddressInfo).port;
      const tooBig = await rawRequest(res, port, upgradeRequest({ headers: { 'X-Big': 'a'.repeat(10 * 1024) } }));
      expect([tooBig.status, tooBig.ended]).to.deep.equal([431, true]);
      expect(tooBig.body).to.match(/too large/i);
      // Node's maxHeadersCount (2000) would keep these; wirestate's limit refuses them.
      expect((await rawRequest(res, port, upgradeRequest({ headers: manyHeaders(100) }))).status).to.equal(431);
      // Over Node's own limit on that server: Node answers 431 before wirestate sees anything.
      expect((await rawRequest(res, port, upgradeRequest({ headers: { 'X-Big': 'a'.repeat(70 * 1024) } }))).status).to.equal(431);
      expect((await timedStatus(port, upgradeRequest())).status).to.equal(101);
    });

    it('slowloris: a client sending one header byte per 100 ms is cut at handshakeTimeout (408, closed)', async () => {
      const { port, url } = await startServer(res, { handshakeTimeout: 500 });
      const socket = await tcpConnect(res, port);
      const request = upgradeRequest({ headers: { 'X-Padding': 'p'.repeat(200) } });
      let sent = 0;
      let answer = '';
      socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
      socket.on('error', () => {});
      const started = Date.now();
      const trickle = setInterval(() => {
        if (!socket.destroyed && sent < request.length) socket.write(request[sent++]!);
      }, 100);
      res.add(trickle, clearInterval);
      await within(new Promise<void>((resolve) => socket.once('close', () => resolve())), 3000, 'the server to cut the connection');
      clearInterval(trickle);
      const elapsed = Date.now() - started;
      expect(answer.split('\r\n')[0]).to.equal('HTTP/1.1 408 Request Timeout');
      expect(elapsed).to.be.within(450, 1500);
      expect(sent).to.be.lessThan(20);
      // Others are served meanwhile and afterwards.
      await connect(res, url);
    });

    it('garbage before the request line is answered 400 and closed; the server keeps serving', async () => {
      const { port, url } = await startServer(res);
      for (const garbage of ['\x00\x01\x02garbage\r\n', 'HELLO\r\n\r\n', '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03']) {
        const answer = await rawRequest(res, port, garbage + upgradeRequest());
        expect([answer.status, answer.ended], JSON.stringify(garbage)).to.deep.equal([400, true]);
      }
      await connect(res, url);
    });

    it('bytes after the request head are read as frames: garbage there is a protocol error (1002) after the 101', async () => {
      const { port } = await startEchoServer(res);
      for (const garbage of ['hello', '\x81\x05hello' /* an unmasked frame from a client */]) {
        const { stream, status } = await exchange(port, upgradeRequest() + garbage);
        expect(status).to.equal(101);
        expect(stream.frames.map((f) => [f.opcode, f.payload.readUInt16BE(0)])).to.deep.equal([[0x8, 1002]]);
      }
    });

    it('HTTP pipelining after the upgrade request: the second request is not HTTP to us, it fails the connection (1002)', async () => {
      for (const options of [{}, { perMessageDeflate: true }]) {
        const { port, wss } = await startEchoServer(res, options);
        const errors: string[] = [];
        // The bytes after the head are read as soon as the connection opens: listen from the start.
        wss.once('connection', (ws: WebSocket) => ws.on('error', (error: WebSocketProtocolError) => errors.push(error.code)));
        const second = 'GET /second HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';
        const headers: Record<string, string> = 'perMessageDeflate' in options ? { 'Sec-WebSocket-Extensions': 'permessage-deflate' } : {};
        const { stream, raw } = await exchange(port, upgradeRequest({ headers }) + second);
        // One response head (the 101), then one close frame, nothing else.
        expect(raw.match(/HTTP\/1\.1/g)).to.have.length(1);
        expect(stream.head.split('\r\n')[0]).to.equal('HTTP/1.1 101 Switching Protocols');
        expect(stream.frames.map((f) => [f.opcode, f.payload.readUInt16BE(0)])).to.deep.equal([[0x8, 1002]]);
        // 'G' is 0x47: RSV1 and opcode 7, a reserved opcode (whether or not RSV1 is allowed).
        expect(errors).to.deep.equal(['WS_ERR_INVALID_OPCODE']);
      }
    });

    it('control characters in header values: 400 from Node’s parser, and from wirestate when the HTTP server’s parser lets them through', async () => {
      const { port } = await startServer(res);
      const strict = await rawRequest(res, port, upgradeRequest({ headers: { 'X-Note': 'a\x01b' } }));
      expect([strict.status, strict.ended]).to.deep.equal([400, true]);
      // An application server with insecureHTTPParser passes them on; wirestate refuses them itself.
      const httpServer = res.add(http.createServer({ insecureHTTPParser: true }), (s) => new Promise<void>((resolve) => s.close(() => resolve())));
      const wss = res.server(new WebSocketServer({ server: httpServer }));
      const errors: string[] = [];
      wss.on('wsClientError', (error: WebSocketProtocolError) => errors.push(error.code));
      await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', () => resolve()));
      const lenientPort = (httpServer.address() as AddressInfo).port;
      for (const bad of ['a\x00b', 'a\x01b', 'a\x1fb', 'a\x7fb', 'a\x0bb']) {
        const answer = await rawRequest(res, lenientPort, upgradeRequest({ headers: { 'X-Note': bad } }));
        expect([answer.status, answer.ended], JSON.stringify(bad)).to.deep.equal([400, true]);
      }
      expect(errors).to.deep.equal(Array(5).fill('WS_ERR_HANDSHAKE_HEADER_VALUE'));
      // Tabs and obs-text are valid field content.
      expect((await timedStatus(lenientPort, upgradeRequest({ headers: { 'X-Note': 'a\tb\xe9' } }))).status).to.equal(101);
    });

    it('subprotocol and extension lists of 100,000 elements parse in linear time over a real socket', async () => {
      const { port } = await startServer(res, { maxHeaderSize: 8 * 1024 * 1024, perMessageDeflate: true, handleProtocols: (offered: Set<string>) => (offered.has('last') ? 'last' : false) });
      const lists = {
        protocols: (n: number) => ({ 'Sec-WebSocket-Protocol': [...Array(n).keys()].map((i) => `p${i}`).join(', ') + ', last' }),
        extensions: (n: number) => ({ 'Sec-WebSocket-Extensions': [...Array(n).keys()].map((i) => `x${i}; a=${i}; b`).join(', ') + ', permessage-deflate' }),
        // Invalid offers of the extension we do negotiate: every one is read and declined.
        deflateOffers: (n: number) => ({ 'Sec-WebSocket-Extensions': Array(n).fill('permessage-deflate; server_max_window_bits=99').join(',') + ', permessage-deflate' }),
        // One element with 100,000 parameters, all the same (duplicates: declined).
        parameters: (n: number) => ({ 'Sec-WebSocket-Extensions': 'permessage-deflate' + '; client_max_window_bits'.repeat(n) }),
      };
      for (const [name, make] of Object.entries(lists)) {
        const best = async (n: number) => {
          const request = upgradeRequest({ headers: make(n) });
          let fastest = Infinity;
          for (let i = 0; i < 3; i++) {
            const { status, ms } = await timedStatus(port, request);
            expect(status, `${name} × ${n}`).to.equal(101);
            fastest = Math.min(fastest, ms);
          }
          return fastest;
        };
        const small = await best(10_000);
        const large = await best(100_000);
        // Ten times the input may cost about ten times the time — more with garbage collection of
        // the 100,000 strings and maps, but a quadratic parser would be ~100× (and take seconds).
        const measured = `${name}: 10,000 in ${small.toFixed(1)} ms, 100,000 in ${large.toFixed(1)} ms`;
        expect(large, measured).to.be.lessThan(40 * small + 100);
        expect(large, measured).to.be.lessThan(3000);
      }
    });

    it('an upgrade on a path the server does not serve is answered 400 and closed', async () => {
      const { port, wss, url } = await startServer(res, { path: '/ws' });
      const errors: string[] = [];
      wss.on('wsClientError', (error: WebSocketProtocolError) => errors.push(error.code));
      for (const path of ['/', '/ws/', '/wss', '/other?x=/ws']) {
        const answer = await rawRequest(res, port, upgradeRequest({ path }));
        expect([answer.status, answer.ended], path).to.deep.equal([400, true]);
      }
      expect(errors).to.deep.equal(Array(4).fill('WS_ERR_HANDSHAKE_PATH'));
      await connect(res, `${url}/ws?query=1`);
    });
  });

  describe('frame limits', () => {
    /** A wirestate endpoint of `role` and a raw peer connected to it. */
    async function endpoint(role: 'server' | 'client', options: Record<string, unknown>) {
      if (role === 'server') {
        const { wss, port } = await startEchoServer(res, options);
        const connection = nextConnection(wss);
        const { socket, reader } = await rawClient(res, port);
        const { ws } = await connection;
        return { ws, socket, reader, masked: true };
      }
      let peer: { socket: net.Socket; reader: FrameReader } | undefined;
      const { url } = await rawServer(res, (socket, reader) => (peer = { socket, reader }));
      const ws = await connect(res, url, [], options);
      return { ws, socket: peer!.socket, reader: peer!.reader, masked: false };
    }

    const kib = (n: number) => Buffer.alloc(n * 1024, 0x61);
    const cases: { name: string; options: Record<string, unknown>; frames: (m: boolean) => Buffer[]; code?: string; closeCode?: number; message?: number }[] = [
      {
        name: 'maxPayload: fragments adding up to one byte more',
        options: { maxPayload: 1000 },
        frames: (m) => [frame(0x2, Buffer.alloc(500), { mask: m, fin: false }), frame(0x0, Buffer.alloc(501), { mask: m })],
        code: 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH',
      },
      {
        name: 'maxPayload: a frame announcing 2^52 bytes is refused from its header, before any payload',
        options: { maxPayload: 1000 },
        frames: (m) => [frame(0x2, Buffer.alloc(0), { mask: m, length: 2n ** 52n })],
        code: 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH',
      },
      {
        name: 'maxReceivedFrameSize: one frame of 101 bytes over a limit of 100',
        options: { maxReceivedFrameSize: 100 },
        frames: (m) => [frame(0x2, Buffer.alloc(101), { mask: m })],
        code: 'WS_ERR_FRAME_TOO_BIG',
      },
      {
        name: 'maxReceivedFrameSize: ten frames of 100 bytes are one accepted message of 1000',
        options: { maxReceivedFrameSize: 100 },
        frames: (m) => [...Array(10).keys()].map((i) => frame(i === 0 ? 0x2 : 0x0, Buffer.alloc(100), { mask: m, fin: i === 9 })),
        message: 1000,
      },
      {
        name: 'maxFragments: 11 frames over a limit of 10',
        options: { maxFragments: 10 },
        frames: (m) => [...Array(11).keys()].map((i) => frame(i === 0 ? 0x1 : 0x0, 'x', { mask: m, fin: i === 10 })),
        code: 'WS_ERR_TOO_MANY_FRAGMENTS',
      },
      {
        name: 'maxFragments: exactly 10 frames are accepted',
        options: { maxFragments: 10 },
        frames: (m) => [...Array(10).keys()].map((i) => frame(i === 0 ? 0x1 : 0x0, 'x', { mask: m, fin: i === 9 })),
        message: 10,
      },
      {
        name: 'maxBufferedChunks: five large pieces held over a limit of 4',
        options: { maxBufferedChunks: 4 },
        frames: (m) => [...Array(5).keys()].map((i) => frame(i === 0 ? 0x2 : 0x0, kib(3), { mask: m, fin: false })),
        code: 'WS_ERR_TOO_MANY_BUFFERED_PARTS',
      },
      {
        name: 'maxBufferedChunks: 500 small fragments are copied together and stay under a limit of 4',
        options: { maxBufferedChunks: 4, maxFragments: 0 },
        frames: (m) => [...Array(500).keys()].map((i) => frame(i === 0 ? 0x2 : 0x0, Buffer.alloc(10), { mask: m, fin: i === 499 })),
        message: 5000,
      },
    ];
    for (const role of ['server', 'client'] as const) {
      describe(`on a wirestate ${role}`, () => {
        for (const c of cases) {
          it(`${c.name} → ${c.code ? `1009, ${c.code}` : 'delivered'}`, async () => {
            const { ws, socket, reader, masked } = await endpoint(role, c.options);
            const errors: WebSocketProtocolError[] = [];
            ws.on('error', (error: WebSocketProtocolError) => errors.push(error));
            const messages: Buffer[] = [];
            ws.on('message', (data: Buffer) => messages.push(data));
            // Frames written one by one: each may arrive in its own read.
            for (const bytes of c.frames(masked)) socket.write(bytes);
            if (c.code) {
              expect((await reader.closeFrame()).code).to.equal(1009);
              expect(errors.map((e) => [e.code, e.closeCode])).to.deep.equal([[c.code, 1009]]);
              expect(messages).to.deep.equal([]);
            } else {
              await until(() => messages.length === 1, 'the message');
              expect(messages[0]!.length).to.equal(c.message);
              expect(errors).to.deep.equal([]);
            }
          });
        }
      });
    }

    it('a flood of 100,000 empty continuation frames (no fragment limit) holds no memory and still assembles', async () => {
      const { ws, socket } = await endpoint('server', { maxFragments: 0 });
      const parser = (ws as unknown as { _parser: { bufferedBytes: number } })._parser;
      const received = nextMessage(ws, 10000);
      socket.write(frame(0x1, 'start ', { fin: false }));
      const empty = frame(0x0, Buffer.alloc(0), { fin: false });
      const flood = Buffer.concat(Array(100_000).fill(empty));
      const heap = retainedHeap();
      socket.write(flood);
      let maxHeld = 0;
      const sampler = setInterval(() => (maxHeld = Math.max(maxHeld, parser.bufferedBytes)), 1);
      socket.write(frame(0x0, 'end'));
      const { data } = await received;
      clearInterval(sampler);
      expect(data.toString()).to.equal('start end');
      // 'start ' and at most the part of 'end' that arrived: never anything for the empty frames.
      expect(maxHeld).to.be.at.most(9);
      // Nothing per frame is kept (100,000 frames: 20 bytes each would be 2 MB).
      expect(retainedHeap() - heap).to.be.lessThan(1024 * 1024);
    });

    it('data after a close frame is ignored, however much of it comes: no message, no error, a clean 1000', async () => {
      for (const role of ['server', 'client'] as const) {
        const { ws, socket, reader, masked } = await endpoint(role, {});
        const events: string[] = [];
        ws.on('message', () => events.push('message'));
        ws.on('error', () => events.push('error'));
        const wsClosed = closed(ws);
        socket.write(Buffer.concat([frame(0x8, closeBody(1000, 'bye'), { mask: masked }), frame(0x1, 'after', { mask: masked }), randomBytes(256 * 1024)]));
        await reader.closeFrame();
        socket.end();
        expect(await wsClosed).to.deep.equal({ code: 1000, reason: 'bye' });
        expect(events).to.deep.equal([]);
      }
    });
  });

  describe('floods', () => {
    /** Fills the kernel's buffers towards a raw peer that stopped reading, until data waits in Node (bufferedAmount > 0). */
    async function fillTowards(ws: WebSocket): Promise<number> {
      const chunk = Buffer.alloc(512 * 1024);
      let sent = 0;
      while (ws.bufferedAmount === 0) {
        ws.send(chunk);
        sent++;
        await new Promise((resolve) => setTimeout(resolve, 5));
        if (sent > 200) throw new Error('the socket never filled up');
      }
      return sent;
    }

    /** A server connection whose raw peer does not read; pings from the peer, then what came back once it reads again. */
    async function pingFlood(options: Record<string, unknown>, pings: number) {
      const { wss, port } = await startServer(res, options);
      const connection = nextConnection(wss);
      const { socket, reader } = await rawClient(res, port);
      const { ws } = await connection;
      socket.pause();
      const fills = await fillTowards(ws);
      let heard = 0;
      ws.on('ping', () => heard++);
      const before = ws.bufferedAmount;
      const flood = Buffer.concat([...Array(pings).keys()].map((i) => frame(0x9, `p${i}`)));
      socket.write(flood);
      await until(() => heard === pings, `${pings} pings heard`);
      const growth = ws.bufferedAmount - before;
      // Read again; a last ping's pong marks the end of what was queued.
      socket.resume();
      await until(() => reader.frames.filter((f) => f.opcode === 0x2).length === fills, 'the data', 10000);
      await until(() => ws.bufferedAmount === 0, 'the queue to drain');
      socket.write(frame(0x9, 'last'));
      await reader.until(() => reader.frames.some((f) => f.opcode === 0xa && f.payload.toString() === 'last'), 'the last pong');
      const pongs = reader.frames.filter((f) => f.opcode === 0xa && f.payload.toString() !== 'last');
      return { growth, pongs };
    }

    it('a ping flood from a peer that does not read: maxPendingAutoPongs answers wait, then only the latest ping is answered', async () => {
      const { growth, pongs } = await pingFlood({ maxPendingAutoPongs: 5, sendHighWaterMark: 0 }, 5000);
      expect(pongs.map((f) => f.payload.toString())).to.deep.equal(['p0', 'p1', 'p2', 'p3', 'p4', 'p4999']);
      expect(growth).to.be.at.most(5 * 12);
    });

    it('a ping flood while the send queue is above sendHighWaterMark: nothing is queued; the latest ping is answered once it drains', async () => {
      const { growth, pongs } = await pingFlood({ sendHighWaterMark: 64 * 1024 }, 5000);
      expect(growth).to.equal(0);
      expect(pongs.map((f) => f.payload.toString())).to.deep.equal(['p4999']);
    });

    it('pings from a peer that reads are all answered, in order; a burst beyond maxPendingAutoPongs ends with the latest', async () => {
      const { wss, port } = await startServer(res);
      const connection = nextConnection(wss);
      const { socket, reader } = await rawClient(res, port);
      await connection;
      for (let i = 0; i < 200; i++) {
        socket.write(frame(0x9, `p${i}`));
        if (i % 20 === 0) await reader.until(() => reader.frames.length === i + 1, `pong ${i}`);
      }
      await reader.until(() => reader.frames.length === 200, '200 pongs');
      expect(reader.frames.every((f, i) => f.opcode === 0xa && f.payload.toString() === `p${i}`)).to.equal(true);
      // 5000 in one write are parsed in one go, before any answer is written (maxPendingAutoPongs 60).
      socket.write(Buffer.concat([...Array(5000).keys()].map((i) => frame(0x9, `q${i}`))));
      await reader.until(() => reader.frames.some((f) => f.payload.toString() === 'q4999'), 'the answer to the latest');
      const burst = reader.frames.slice(200).map((f) => f.payload.toString());
      expect(burst).to.deep.equal([...[...Array(60).keys()].map((i) => `q${i}`), 'q4999']);
    });

    it('a flood of 50,000 pongs costs no memory and the connection keeps working', async () => {
      const { wss, port } = await startEchoServer(res, { keepalive: true, keepaliveInterval: 60_000 });
      const connection = nextConnection(wss);
      const { socket, reader } = await rawClient(res, port);
      const { ws } = await connection;
      let pongs = 0;
      ws.on('pong', () => pongs++);
      const heap = retainedHeap();
      const one = frame(0xa, 'pong!');
      socket.write(Buffer.concat(Array(50_000).fill(one)));
      await until(() => pongs === 50_000, '50,000 pongs', 15000);
      // Nothing per pong is kept (50,000 pongs: 20 bytes each would be 1 MB).
      expect(retainedHeap() - heap).to.be.lessThan(512 * 1024);
      socket.write(frame(0x1, 'still here'));
      await reader.until(() => reader.frames.some((f) => f.opcode === 0x1), 'the echo');
      expect(reader.frames.find((f) => f.opcode === 0x1)!.payload.toString()).to.equal('still here');
    });
  });

  describe('half-open connections', () => {
    it('keep-alive reaps a peer that went silent (server and client), on the simulated clock', async () => {
      for (const role of ['server', 'client'] as const) {
        const clock = new SimulatedClock();
        const options = { keepalive: true, keepaliveInterval: 1000, keepaliveGracePeriod: 500, clock };
        let ws: WebSocket;
        let reader: FrameReader;
        if (role === 'server') {
          const { wss, port } = await startServer(res, options);
          const connection = nextConnection(wss);
          ({ reader } = await rawClient(res, port));
          ({ ws } = await connection);
        } else {
          let peer: { reader: FrameReader } | undefined;
          const { url } = await rawServer(res, (_socket, r) => (peer = { reader: r }));
          ws = await connect(res, url, [], options);
          reader = peer!.reader;
        }
        const wsClosed = closed(ws);
        clock.increment(1000);
        await reader.until(() => reader.frames.some((f) => f.opcode === 0x9), 'a keep-alive ping');
        clock.increment(499);
        expect(ws.readyState).to.equal(WebSocket.OPEN);
        clock.increment(1);
        expect((await wsClosed).code).to.equal(1006);
        expect([ws.lifecycle, ws.lifecycleDetail]).to.deep.equal(['terminated', 'no answer to a keep-alive ping within the grace period']);
        await reader.end();
      }
    });

    it('the idle timeout closes (1001) a connection nobody uses; a peer that never answers is terminated at closeTimeout', async () => {
      const clock = new SimulatedClock();
      const { wss, port } = await startServer(res, { idleTimeout: 1000, closeTimeout: 300, clock });
      const connection = nextConnection(wss);
      const { reader } = await rawClient(res, port);
      const { ws } = await connection;
      const wsClosed = closed(ws);
      clock.increment(1000);
      const close = await reader.closeFrame();
      expect([close.code, close.reason]).to.deep.equal([1001, 'idle timeout']);
      expect(ws.lifecycle).to.equal('closing.closedByUs');
      clock.increment(300);
      expect((await wsClosed).code).to.equal(1006);
      expect([ws.lifecycle, ws.lifecycleDetail]).to.deep.equal(['terminated', 'closing handshake timed out']);
      await reader.end();
      expect(wss._connections.size).to.equal(0);
    });
  });

  describe('slow readers', () => {
    it('a producer that honours send()’s boolean and waits for drain keeps bufferedAmount within sendHighWaterMark + one message', async () => {
      const HWM = 256 * 1024;
      const { wss, url } = await startServer(res, { sendHighWaterMark: HWM });
      const { client, server } = await connectPair(res, wss, url);
      let received = 0;
      client.on('message', (data: Buffer) => (received += data.length));
      // The reader stops for a while, then reads again.
      client.pause();
      setTimeout(() => client.resume(), 150);
      const chunk = Buffer.alloc(64 * 1024);
      const total = 512;
      let peak = 0;
      let waits = 0;
      for (let i = 0; i < total; i++) {
        const below = server.send(chunk);
        peak = Math.max(peak, server.bufferedAmount);
        if (!below) {
          waits++;
          await once(server, 'drain', 10000);
        }
      }
      await until(() => received === total * chunk.length, 'everything', 10000);
      expect(waits).to.be.greaterThan(0);
      expect(peak).to.be.at.most(HWM + chunk.length);
    });

    it('with compression, messages waiting to be compressed count: send() returns false and drain follows', async () => {
      const { wss, url } = await startServer(res, { perMessageDeflate: { threshold: 0 }, sendHighWaterMark: 64 * 1024 });
      const { client, server } = await connectPair(res, wss, url, [], { perMessageDeflate: true });
      let got = 0;
      client.on('message', () => got++);
      const results: boolean[] = [];
      for (let i = 0; i < 4; i++) results.push(server.send(randomBytes(100 * 1024)));
      expect(results).to.deep.equal([false, false, false, false]);
      expect(server.bufferedAmount).to.be.at.least(400 * 1024);
      await once(server, 'drain', 5000);
      expect(server.bufferedAmount).to.be.lessThan(64 * 1024);
      await until(() => got === 4, 'the four messages');
    });

    it('closeOnSendOverflow: a peer that stops reading is closed with 1008, nothing more is queued, terminated at closeTimeout', async () => {
      const HWM = 256 * 1024;
      const { wss, port } = await startServer(res, { sendHighWaterMark: HWM, closeOnSendOverflow: true, closeTimeout: 300 });
      const connection = nextConnection(wss);
      const { socket, reader } = await rawClient(res, port);
      const { ws } = await connection;
      socket.pause();
      const wsClosed = closed(ws, 5000);
      const chunk = Buffer.alloc(256 * 1024);
      const refused: (Error | null | undefined)[] = [];
      let sends = 0;
      while (ws.readyState === WebSocket.OPEN && sends < 400) {
        ws.send(chunk);
        sends++;
        if (sends % 8 === 0) await new Promise((resolve) => setTimeout(resolve, 2));
      }
      expect(ws.readyState).to.equal(WebSocket.CLOSING);
      expect(ws.lifecycleDetail).to.equal('send buffer above sendHighWaterMark');
      const queued = ws.bufferedAmount;
      expect(queued).to.be.at.most(HWM + 2 * chunk.length);
      // Once closing, sends are refused (with an error to their callback), never queued.
      for (let i = 0; i < 10; i++) ws.send(chunk, (error) => refused.push(error));
      expect(ws.bufferedAmount).to.equal(queued);
      await until(() => refused.length === 10, 'the refusals');
      expect(refused.every((e) => e instanceof Error)).to.equal(true);
      // The peer never reads: the closing handshake cannot complete, closeTimeout ends it.
      expect((await wsClosed).code).to.equal(1006);
      expect(ws.lifecycle).to.equal('terminated');
      void reader;
    });

    it('closeOnSendOverflow: a peer that reads again receives what was queued, then the 1008 close frame', async () => {
      const HWM = 256 * 1024;
      const { wss, port } = await startServer(res, { sendHighWaterMark: HWM, closeOnSendOverflow: true, closeTimeout: 5000 });
      const connection = nextConnection(wss);
      const { socket, reader } = await rawClient(res, port);
      const { ws } = await connection;
      socket.pause();
      const chunk = Buffer.alloc(256 * 1024);
      let sends = 0;
      while (ws.readyState === WebSocket.OPEN && sends < 400) {
        ws.send(chunk);
        sends++;
        if (sends % 8 === 0) await new Promise((resolve) => setTimeout(resolve, 2));
      }
      const wsClosed = closed(ws, 5000);
      socket.resume();
      const close = await reader.closeFrame(10000);
      expect([close.code, close.reason]).to.deep.equal([1008, 'send buffer overflow']);
      const data = reader.frames.filter((f) => f.opcode === 0x2);
      expect(data).to.have.length(sends);
      expect(reader.frames[reader.frames.length - 1]!.opcode).to.equal(0x8);
      socket.write(frame(0x8, closeBody(1008)));
      expect((await wsClosed).code).to.equal(1008);
    });
  });
});
