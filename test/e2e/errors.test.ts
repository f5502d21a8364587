/**
 * Every error row of spec/errors.yaml that a peer can trigger, triggered by a raw peer against a
 * wirestate server and a wirestate client that have NO 'error' (or 'wsClientError') listener: the
 * process survives (an unhandled 'error' event would throw out of the socket's callback and fail
 * the run), the peer gets the row's close code (or HTTP status), and the connection ends with the
 * close code the row says.
 *
 * The tables below are checked for completeness against the generated error table: a row added to
 * the spec without a way to trigger it here fails the first test.
 */
import { expect } from 'chai';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import zlib from 'node:zlib';
import { protocolErrors, type ProtocolErrorId } from '../../generated/protocol.generated.js';
import { WebSocket, WebSocketServer } from '../../runtime/index.js';
import type { WebSocketProtocolError } from '../../runtime/errors.js';
import {
  FrameReader,
  Resources,
  acceptFor,
  closeBody,
  closed,
  connect,
  frame,
  nextConnection,
  once,
  rawClient,
  rawRequest,
  rawServer,
  startServer,
  upgradeRequest,
  within,
} from '../helpers/sockets.js';

const res = new Resources();
afterEach(() => res.closeAll());

function deflated(data: Buffer): Buffer {
  const out = zlib.deflateRawSync(data, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  return out.subarray(0, out.length - 4);
}

// ------------------------------------------------------------------ frame and message rows

interface FrameTrigger {
  /** Settings of the wirestate endpoint (a limit the bytes break). */
  options?: Record<string, unknown>;
  /** permessage-deflate is negotiated first. */
  deflate?: boolean;
  /** What the peer writes; `masked` is true for a client peer. */
  bytes: (masked: boolean) => Buffer;
  only?: 'server' | 'client';
}

const text = (payload: Buffer | string, m: boolean, o: Parameters<typeof frame>[2] = {}) => frame(0x1, payload, { mask: m, ...o });

const frameTriggers: Partial<Record<ProtocolErrorId, FrameTrigger>> = {
  unexpectedRsv1: { bytes: (m) => text('x', m, { rsv: 4 }) },
  unexpectedRsv23: { bytes: (m) => text('x', m, { rsv: 2 }) },
  reservedOpcode: { bytes: (m) => frame(0xb, '', { mask: m }) },
  fragmentedControlFrame: { bytes: (m) => frame(0x9, 'x', { mask: m, fin: false }) },
  controlFrameTooLong: { bytes: (m) => frame(0x9, Buffer.alloc(126), { mask: m }) },
  unexpectedContinuation: { bytes: (m) => frame(0x0, 'x', { mask: m }) },
  expectedContinuation: { bytes: (m) => Buffer.concat([text('a', m, { fin: false }), text('b', m)]) },
  expectedMask: { bytes: () => text('x', false), only: 'server' },
  unexpectedMask: { bytes: () => text('x', true), only: 'client' },
  payloadLengthMsbSet: { bytes: (m) => text(Buffer.alloc(0), m, { length: 2n ** 63n, lengthForm: 64 }) },
  nonMinimalPayloadLength: { bytes: (m) => text('hello', m, { lengthForm: 64 }) },
  payloadLengthUnsupported: { options: { maxPayload: 0 }, bytes: (m) => frame(0x2, Buffer.alloc(0), { mask: m, length: 2n ** 60n }) },
  messageTooBig: { options: { maxPayload: 1000 }, bytes: (m) => frame(0x2, Buffer.alloc(1001), { mask: m }) },
  frameTooBig: { options: { maxReceivedFrameSize: 100 }, bytes: (m) => frame(0x2, Buffer.alloc(101), { mask: m }) },
  tooManyFragments: { options: { maxFragments: 2 }, bytes: (m) => Buffer.concat([text('a', m, { fin: false }), frame(0x0, 'b', { mask: m, fin: false }), frame(0x0, 'c', { mask: m })]) },
  tooManyBufferedChunks: { options: { maxBufferedChunks: 1 }, bytes: (m) => Buffer.concat([frame(0x2, Buffer.alloc(4096), { mask: m, fin: false }), frame(0x0, Buffer.alloc(4096), { mask: m, fin: false })]) },
  closePayloadOneByte: { bytes: (m) => frame(0x8, Buffer.from([0x03]), { mask: m }) },
  invalidCloseCode: { bytes: (m) => frame(0x8, closeBody(1005), { mask: m }) },
  invalidUtf8: { bytes: (m) => text(Buffer.from([0xc3, 0x28]), m) },
  inflateFailed: { deflate: true, bytes: (m) => frame(0x2, Buffer.from([0xff, 0xff, 0xff]), { mask: m, rsv: 4 }) },
  inflatedTooBig: { deflate: true, options: { maxPayload: 1000 }, bytes: (m) => frame(0x2, deflated(Buffer.alloc(100_000)), { mask: m, rsv: 4 }) },
};

// ------------------------------------------------------------------ server handshake rows

interface ServerHandshakeTrigger {
  options?: Record<string, unknown>;
  request: () => string;
  /** Something to do before the request (e.g. fill the server up). */
  before?: (url: string) => Promise<void>;
  /** The HTTP status the peer gets; 0: the socket is closed without an answer. */
  status: number;
  /** The body, when it is not the row's message (a verifyClient refusal carries its own). */
  body?: string;
}

const serverHandshakeTriggers: Partial<Record<ProtocolErrorId, ServerHandshakeTrigger>> = {
  invalidMethod: { request: () => upgradeRequest({ method: 'POST' }), status: 405 },
  invalidHttpVersion: { request: () => upgradeRequest({ version: '1.0' }), status: 505 },
  missingHost: { request: () => upgradeRequest({ headers: { Host: null } }), status: 400 },
  invalidUpgradeHeader: { request: () => upgradeRequest({ headers: { Upgrade: 'h2c' } }), status: 400 },
  invalidKey: { request: () => upgradeRequest({ headers: { 'Sec-WebSocket-Key': 'too-short' } }), status: 400 },
  unsupportedVersion: { request: () => upgradeRequest({ headers: { 'Sec-WebSocket-Version': '8' } }), status: 426 },
  invalidProtocolHeader: { request: () => upgradeRequest({ headers: { 'Sec-WebSocket-Protocol': 'a,,b' } }), status: 400 },
  invalidExtensionsHeader: { request: () => upgradeRequest({ headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate;;' } }), status: 400 },
  invalidHeaderValue: { request: () => upgradeRequest({ headers: { 'X-Trace': 'a\x01b' } }), status: 400 },
  headersTooLarge: { options: { maxHeaderCount: 8 }, request: () => upgradeRequest({ headers: { A: '1', B: '2', C: '3', D: '4' } }), status: 431 },
  pathNotHandled: { options: { path: '/ws' }, request: () => upgradeRequest({ path: '/elsewhere' }), status: 400 },
  clientRejected: { options: { verifyClient: () => false }, request: () => upgradeRequest(), status: 401, body: 'Unauthorized' },
  clientNotAllowed: { options: { allowedClients: ['10.*'] }, request: () => upgradeRequest(), status: 403 },
  tooManyConnections: {
    options: { maxConnections: 1 },
    before: async (url) => void (await connect(res, url)),
    request: () => upgradeRequest(),
    status: 503,
  },
  // An application verifyClient that never answers: the handshake deadline destroys the socket.
  handshakeTimeout: { options: { handshakeTimeout: 100, verifyClient: (_info: unknown, _cb: unknown) => undefined }, request: () => upgradeRequest(), status: 0 },
};

// ------------------------------------------------------------------ client handshake rows

interface ClientHandshakeTrigger {
  /** The raw server's answer to the upgrade request (null: no answer at all). */
  answer: (requestHead: string, port: number) => string | null;
  protocols?: string[];
  options?: Record<string, unknown>;
}

const keyOf = (head: string) => /sec-websocket-key:\s*(\S+)/i.exec(head)?.[1] ?? '';
const switching = (head: string, extra = '') => `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor(keyOf(head))}\r\n${extra}\r\n`;

const clientHandshakeTriggers: Partial<Record<ProtocolErrorId, ClientHandshakeTrigger>> = {
  unexpectedResponse: { answer: () => 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok' },
  invalidAccept: { answer: () => `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor('wrong')}\r\n\r\n` },
  invalidResponseUpgrade: { answer: (head) => switching(head).replace('Upgrade: websocket', 'Upgrade: h2c') },
  unexpectedSubprotocol: { answer: (head) => switching(head, 'Sec-WebSocket-Protocol: never-asked\r\n') },
  missingSubprotocol: { protocols: ['chat'], answer: (head) => switching(head) },
  unexpectedExtension: { options: { perMessageDeflate: false }, answer: (head) => switching(head, 'Sec-WebSocket-Extensions: x-unknown\r\n') },
  responseHeadersTooLarge: { options: { maxHeaderCount: 20 }, answer: (head) => switching(head, [...Array(30).keys()].map((i) => `X-Field-${i}: v\r\n`).join('')) },
  tooManyRedirects: { options: { followRedirects: true, maxRedirects: 2 }, answer: (_head, port) => `HTTP/1.1 302 Found\r\nLocation: ws://127.0.0.1:${port}/again\r\nContent-Length: 0\r\n\r\n` },
  handshakeTimeout: { options: { handshakeTimeout: 100 }, answer: () => null },
};

/** Rows a peer cannot trigger through Node's HTTP server, with the reason; still exercised below another way. */
const notFromAPeer: Partial<Record<ProtocolErrorId, string>> = {
  invalidConnectionHeader: "Node emits 'upgrade' only when Connection lists upgrade; reached when an application hands a plain request to handleUpgrade",
};

describe('every error a peer can cause, without an error listener (e2e)', function () {
  this.timeout(10000);

  it('every row of spec/errors.yaml has a trigger here', () => {
    const covered = new Set([...Object.keys(frameTriggers), ...Object.keys(serverHandshakeTriggers), ...Object.keys(clientHandshakeTriggers), ...Object.keys(notFromAPeer)]);
    const missing = Object.keys(protocolErrors).filter((id) => !covered.has(id));
    expect(missing, 'rows without a trigger').to.deep.equal([]);
    // Frame and message rows close with 1002, 1007 or 1009; handshake rows are reported as 1006.
    for (const [id, row] of Object.entries(protocolErrors)) {
      expect(row.closeCode, id).to.be.oneOf(row.stage === 'handshake' ? [1006] : [1002, 1007, 1009]);
    }
  });

  for (const role of ['server', 'client'] as const) {
    describe(`frame and message errors on a wirestate ${role}`, () => {
      for (const [id, trigger] of Object.entries(frameTriggers) as [ProtocolErrorId, FrameTrigger][]) {
        if (trigger.only && trigger.only !== role) continue;
        const row = protocolErrors[id];
        it(`${id} → close ${row.closeCode} to the peer, 1006 locally, the process lives on`, async () => {
          const options = { ...trigger.options, ...(trigger.deflate ? { perMessageDeflate: true } : {}) };
          let ws: WebSocket;
          let socket: net.Socket;
          let reader: FrameReader;
          let serverUrl: string | undefined;
          if (role === 'server') {
            const { wss, port, url } = await startServer(res, options);
            serverUrl = url;
            const connection = nextConnection(wss);
            ({ socket, reader } = await rawClient(res, port, '/', trigger.deflate ? { 'Sec-WebSocket-Extensions': 'permessage-deflate' } : {}));
            ({ ws } = await connection);
            expect(wss.listenerCount('error') + wss.listenerCount('wsClientError')).to.equal(0);
          } else {
            let peer: { socket: net.Socket; reader: FrameReader } | undefined;
            const { url } = await rawServer(res, (s, r) => (peer = { socket: s, reader: r }), { headers: trigger.deflate ? { 'Sec-WebSocket-Extensions': 'permessage-deflate' } : {} });
            ws = res.client(new WebSocket(url, [], options));
            await once(ws, 'open');
            ({ socket, reader } = peer!);
          }
          expect(ws.listenerCount('error')).to.equal(0);
          expect(ws.extensions).to.equal(trigger.deflate ? 'permessage-deflate' : '');
          const wsClosed = closed(ws);
          socket.write(trigger.bytes(role === 'server'));
          const close = await reader.closeFrame();
          expect(close.code).to.equal(row.closeCode);
          // The close reason is the row's message (so the peer learns which rule it broke).
          expect(row.message.startsWith(close.reason.slice(0, 40)) || close.reason.startsWith(row.message), close.reason).to.equal(true);
          socket.end();
          expect((await wsClosed).code).to.equal(1006);
          expect(ws.lifecycle).to.equal('terminated');
          if (serverUrl) await connect(res, serverUrl);
        });
      }
    });
  }

  describe('handshake errors on a wirestate server (attached to an HTTP server that lets everything through)', () => {
    for (const [id, trigger] of Object.entries(serverHandshakeTriggers) as [ProtocolErrorId, ServerHandshakeTrigger][]) {
      const row = protocolErrors[id];
      it(`${id} → ${trigger.status || 'the socket closed'}, the server keeps serving`, async () => {
        // Node's own checks (Host required, strict parsing) off, so that each rule is wirestate's to enforce.
        const httpServer = res.add(http.createServer({ requireHostHeader: false, insecureHTTPParser: true }), (s) => new Promise<void>((resolve) => {
          s.closeAllConnections();
          s.close(() => resolve());
        }));
        const wss = res.server(new WebSocketServer({ server: httpServer, ...trigger.options }));
        wss.on('connection', () => {});
        await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', () => resolve()));
        const port = (httpServer.address() as AddressInfo).port;
        const url = `ws://127.0.0.1:${port}${trigger.options?.path ?? ''}`;
        if (trigger.before) await trigger.before(url);
        const answer = await rawRequest(res, port, trigger.request());
        expect(answer.ended).to.equal(true);
        if (trigger.status === 0) expect(answer.statusLine).to.equal('');
        else {
          expect(answer.status).to.equal(trigger.status);
          if (trigger.body !== undefined) expect(answer.body).to.equal(trigger.body);
          else expect(answer.body.startsWith(row.message), answer.body).to.equal(true);
        }
        expect(wss.lifecycle).to.equal('listening');
        if (id !== 'tooManyConnections' && id !== 'clientRejected' && id !== 'clientNotAllowed' && id !== 'handshakeTimeout') await connect(res, url);
      });
    }

    it('invalidConnectionHeader (a plain request handed to handleUpgrade by the application) → 400', async () => {
      const wss = res.server(new WebSocketServer({ noServer: true }));
      const httpServer = res.add(
        http.createServer((req) => wss.handleUpgrade(req, req.socket, Buffer.alloc(0), () => {})),
        (s) => new Promise<void>((resolve) => {
          s.closeAllConnections();
          s.close(() => resolve());
        }),
      );
      await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', () => resolve()));
      const answer = await rawRequest(res, (httpServer.address() as AddressInfo).port, upgradeRequest({ headers: { Connection: 'keep-alive' } }));
      expect([answer.status, answer.ended]).to.deep.equal([400, true]);
      expect(answer.body.startsWith(protocolErrors.invalidConnectionHeader.message)).to.equal(true);
    });
  });

  describe('handshake errors on a wirestate client', () => {
    for (const [id, trigger] of Object.entries(clientHandshakeTriggers) as [ProtocolErrorId, ClientHandshakeTrigger][]) {
      const row = protocolErrors[id];
      it(`${id} → close ${row.closeCode}, without a listener and (the same again) with one reporting ${row.code}`, async () => {
        const server = res.netServer(
          net.createServer((socket) => {
            socket.on('error', () => {});
            let head = '';
            socket.on('data', (chunk: Buffer) => {
              if (head.includes('\r\n\r\n')) return;
              head += chunk.toString('latin1');
              if (!head.includes('\r\n\r\n')) return;
              const answer = trigger.answer(head, (server.address() as AddressInfo).port);
              if (answer !== null) socket.write(answer);
            });
          }),
        );
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
        const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/`;
        for (const listen of [false, true]) {
          const ws = res.client(new WebSocket(url, trigger.protocols ?? [], { ...trigger.options }));
          const errors: WebSocketProtocolError[] = [];
          if (listen) ws.on('error', (error: WebSocketProtocolError) => errors.push(error));
          const { code } = await closed(ws, 3000);
          expect(code).to.equal(row.closeCode);
          expect(ws.lifecycle).to.equal('terminated');
          if (listen) expect(errors.map((e) => e.code)).to.deep.equal([row.code]);
        }
      });
    }
  });

  it('a server without any listener survives a burst of every kind of bad input at once', async () => {
    const { wss, port, url } = await startServer(res, { maxPayload: 1000, perMessageDeflate: true, handshakeTimeout: 200 });
    const sockets: Promise<unknown>[] = [];
    for (const trigger of Object.values(frameTriggers)) {
      // The ones that break this server's settings (maxPayload 1000), all at once.
      if (trigger.only === 'client' || Object.keys(trigger.options ?? {}).some((name) => name !== 'maxPayload')) continue;
      sockets.push(
        rawClient(res, port, '/', trigger.deflate ? { 'Sec-WebSocket-Extensions': 'permessage-deflate' } : {}).then(({ socket, reader }) => {
          socket.write(trigger.bytes(true));
          return reader.end(3000);
        }),
      );
    }
    for (const trigger of Object.values(serverHandshakeTriggers)) if (!trigger.options && !trigger.before) sockets.push(rawRequest(res, port, trigger.request()));
    await within(Promise.all(sockets), 8000, 'every bad peer to be sent away');
    expect(wss.listenerCount('error')).to.equal(0);
    await connect(res, url);
  });
});
