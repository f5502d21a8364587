/**
 * The server's reading of the opening handshake over real sockets (RFC 6455 section 4.2.1): a raw
 * TCP client sends malformed upgrade requests; each one gets the right status line and the server
 * closes the connection; afterwards the server still accepts a good client.
 */
import { expect } from 'chai';
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from '../../runtime/index.js';
import type { WebSocketProtocolError } from '../../runtime/errors.js';
import type net from 'node:net';
import { FrameReader, Resources, acceptFor, connect, frame, nextMessage, once, rawRequest, startEchoServer, tcpConnect, upgradeRequest } from '../helpers/sockets.js';

const res = new Resources();
afterEach(() => res.closeAll());

/** Runs `send`, reads the response head, and hands the rest of the stream to a frame reader. */
async function afterHead(socket: net.Socket, send: () => unknown): Promise<{ status: number; reader: FrameReader }> {
  let data = Buffer.alloc(0);
  const head = new Promise<{ status: number; rest: Buffer }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no response head')), 2000);
    const onData = (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      const end = data.indexOf('\r\n\r\n');
      if (end === -1) return;
      clearTimeout(timer);
      socket.removeListener('data', onData);
      resolve({ status: Number(data.subarray(0, end).toString('latin1').split(' ')[1]), rest: data.subarray(end + 4) });
    };
    socket.on('data', onData);
  });
  await send();
  const { status, rest } = await head;
  return { status, reader: new FrameReader(socket, rest) };
}

interface Case {
  name: string;
  request: string;
  status: number;
  /** The err.code of the 'wsClientError' event, for requests that reach the WebSocket server. */
  code?: string;
  /** Response headers that must be present. */
  headers?: Record<string, string>;
}

const cases: Case[] = [
  { name: 'method POST', request: upgradeRequest({ method: 'POST' }), status: 405, code: 'WS_ERR_HANDSHAKE_METHOD' },
  { name: 'method PUT', request: upgradeRequest({ method: 'PUT' }), status: 405, code: 'WS_ERR_HANDSHAKE_METHOD' },
  { name: 'HTTP/1.0', request: upgradeRequest({ version: '1.0' }), status: 505, code: 'WS_ERR_HANDSHAKE_HTTP_VERSION' },
  // Node's HTTP parser answers a request without Host itself (RFC 7230 section 5.4), before any upgrade.
  { name: 'no Host header', request: upgradeRequest({ headers: { Host: null } }), status: 400 },
  { name: 'Upgrade: h2c', request: upgradeRequest({ headers: { Upgrade: 'h2c' } }), status: 400, code: 'WS_ERR_HANDSHAKE_UPGRADE' },
  { name: 'Upgrade: websockets', request: upgradeRequest({ headers: { Upgrade: 'websockets' } }), status: 400, code: 'WS_ERR_HANDSHAKE_UPGRADE' },
  // Without the upgrade token Node does not treat the request as an upgrade: the plain-HTTP answer, 426.
  { name: 'Connection: keep-alive (no upgrade token)', request: upgradeRequest({ headers: { Connection: 'keep-alive' } }), status: 426, headers: { upgrade: 'websocket' } },
  { name: 'no Upgrade and no Connection header', request: upgradeRequest({ headers: { Upgrade: null, Connection: null } }), status: 426 },
  { name: 'no Sec-WebSocket-Key', request: upgradeRequest({ headers: { 'Sec-WebSocket-Key': null } }), status: 400, code: 'WS_ERR_HANDSHAKE_KEY' },
  { name: 'Sec-WebSocket-Key of 15 bytes', request: upgradeRequest({ headers: { 'Sec-WebSocket-Key': Buffer.alloc(15, 1).toString('base64') } }), status: 400, code: 'WS_ERR_HANDSHAKE_KEY' },
  { name: 'Sec-WebSocket-Key not base64', request: upgradeRequest({ headers: { 'Sec-WebSocket-Key': '!!!!!!!!!!!!!!!!!!!!!!==' } }), status: 400, code: 'WS_ERR_HANDSHAKE_KEY' },
  { name: 'Sec-WebSocket-Version: 8', request: upgradeRequest({ headers: { 'Sec-WebSocket-Version': '8' } }), status: 426, code: 'WS_ERR_HANDSHAKE_VERSION', headers: { 'sec-websocket-version': '13' } },
  { name: 'no Sec-WebSocket-Version', request: upgradeRequest({ headers: { 'Sec-WebSocket-Version': null } }), status: 426, code: 'WS_ERR_HANDSHAKE_VERSION', headers: { 'sec-websocket-version': '13' } },
  { name: 'Sec-WebSocket-Protocol with an empty element', request: upgradeRequest({ headers: { 'Sec-WebSocket-Protocol': 'chat,,superchat' } }), status: 400, code: 'WS_ERR_HANDSHAKE_PROTOCOL' },
  { name: 'Sec-WebSocket-Protocol with a separator', request: upgradeRequest({ headers: { 'Sec-WebSocket-Protocol': 'chat/1' } }), status: 400, code: 'WS_ERR_HANDSHAKE_PROTOCOL' },
  { name: 'Sec-WebSocket-Protocol repeated', request: upgradeRequest({ headers: { 'Sec-WebSocket-Protocol': 'chat, chat' } }), status: 400, code: 'WS_ERR_HANDSHAKE_PROTOCOL' },
  { name: 'Sec-WebSocket-Extensions malformed', request: upgradeRequest({ headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate; =x' } }), status: 400, code: 'WS_ERR_HANDSHAKE_EXTENSIONS' },
  { name: 'wrong path', request: upgradeRequest({ path: '/elsewhere' }), status: 400, code: 'WS_ERR_HANDSHAKE_PATH' },
  // Not HTTP at all: Node's parser answers 400 and closes.
  { name: 'garbage instead of a request', request: 'HELLO THERE\r\n\r\n', status: 400 },
];

describe('opening handshake over raw TCP (e2e)', function () {
  this.timeout(10000);

  let server: WebSocketServer;
  let url: string;
  let port: number;
  const clientErrors: string[] = [];

  beforeEach(async () => {
    ({ wss: server, url, port } = await startEchoServer(res, { path: '/ws' }));
    clientErrors.length = 0;
    server.on('wsClientError', (error: WebSocketProtocolError) => clientErrors.push(error.code));
  });

  for (const c of cases) {
    it(`${c.name} → ${c.status}, and the server closes the connection`, async () => {
      const request = c.name === 'wrong path' ? c.request : c.request.replace(/^(\S+) \/ /, '$1 /ws ');
      const response = await rawRequest(res, port, request);
      expect(response.status, response.statusLine).to.equal(c.status);
      expect(response.statusLine).to.match(new RegExp(`^HTTP/1\\.1 ${c.status} `));
      expect(response.ended).to.equal(true);
      for (const [name, value] of Object.entries(c.headers ?? {})) expect(response.headers[name], name).to.equal(value);
      if (c.code) expect(clientErrors).to.deep.equal([c.code]);
      expect(server._connections.size).to.equal(0);
    });
  }

  it('survives all of them at once, and still accepts a good client', async () => {
    await Promise.all(cases.map((c) => rawRequest(res, port, c.request.replace(/^(\S+) \/ /, '$1 /ws '))));
    const ws = await connect(res, `${url}/ws`);
    ws.send('still here');
    expect((await nextMessage(ws)).data.toString()).to.equal('still here');
  });

  it('a request split into one-byte writes is understood', async () => {
    const socket = await tcpConnect(res, port);
    const { reader } = await afterHead(socket, async () => {
      for (const byte of Buffer.from(upgradeRequest({ path: '/ws' }))) socket.write(Buffer.from([byte]));
    });
    socket.write(frame(0x1, 'slow'));
    await reader.until(() => reader.frames.length > 0, 'the echo');
    expect(reader.frames[0]!.payload.toString()).to.equal('slow');
  });

  it('a frame sent in the same write as the request is delivered (bytes after the head are kept)', async () => {
    const socket = await tcpConnect(res, port);
    const { status, reader } = await afterHead(socket, () => {
      socket.write(Buffer.concat([Buffer.from(upgradeRequest({ path: '/ws' })), frame(0x1, 'early bird')]));
    });
    expect(status).to.equal(101);
    await reader.until(() => reader.frames.length > 0, 'the echo');
    expect([reader.frames[0]!.opcode, reader.frames[0]!.payload.toString()]).to.deep.equal([0x1, 'early bird']);
  });
});

describe('opening handshake: noServer and handleUpgrade (e2e)', function () {
  this.timeout(10000);

  it('handleUpgrade refuses a bad request on a socket it was given, and closes it', async () => {
    const { createServer } = await import('node:http');
    const wss = res.server(new WebSocketServer({ noServer: true }));
    const http1 = res.netServer(createServer());
    http1.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => wss.handleUpgrade(req, socket, head, () => {}));
    const port = await new Promise<number>((resolve) => http1.listen(0, '127.0.0.1', () => resolve((http1.address() as { port: number }).port)));
    const response = await rawRequest(res, port, upgradeRequest({ headers: { 'Sec-WebSocket-Version': '7' } }));
    expect(response.status).to.equal(426);
    expect(response.headers['sec-websocket-version']).to.equal('13');
    expect(response.ended).to.equal(true);
    const ws = res.client(new WebSocket(`ws://127.0.0.1:${port}`));
    await new Promise((resolve) => ws.once('open', resolve));
  });
});

describe("opening handshake: the client's reading of the server's response (e2e)", function () {
  this.timeout(10000);

  /** A raw TCP server answering every upgrade request with `answer(key)` (bytes after the head are kept open). */
  async function answering(answer: (key: string) => string | null): Promise<string> {
    const { rawServer: raw } = await import('../helpers/sockets.js');
    const { url } = await raw(
      res,
      (socket) => {
        let head = '';
        socket.on('data', (chunk: Buffer) => {
          head += chunk.toString('latin1');
          if (!head.includes('\r\n\r\n')) return;
          const key = /sec-websocket-key:\s*(\S+)/i.exec(head)?.[1] ?? '';
          const response = answer(key);
          if (response === null) socket.destroy();
          else socket.write(response);
        });
      },
      { answer: false },
    );
    return url;
  }

  const accept = (key: string) => acceptFor(key);
  const switching = (lines: string[]) => `HTTP/1.1 101 Switching Protocols\r\n${lines.join('\r\n')}\r\n\r\n`;

  const cases: { name: string; answer: (key: string) => string | null; protocols?: string[]; options?: Record<string, unknown>; code?: string; message?: RegExp }[] = [
    { name: 'a wrong Sec-WebSocket-Accept', answer: () => switching(['Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Accept: d3Jvbmcgd3Jvbmcgd3Jvbmcgdw==']), code: 'WS_ERR_INVALID_ACCEPT' },
    { name: 'no Sec-WebSocket-Accept', answer: () => switching(['Upgrade: websocket', 'Connection: Upgrade']), code: 'WS_ERR_INVALID_ACCEPT' },
    { name: 'Upgrade: h2c in the 101', answer: (key) => switching(['Upgrade: h2c', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${accept(key)}`]), code: 'WS_ERR_INVALID_RESPONSE_UPGRADE' },
    { name: 'a subprotocol that was not requested', answer: (key) => switching(['Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${accept(key)}`, 'Sec-WebSocket-Protocol: chat']), code: 'WS_ERR_INVALID_SUBPROTOCOL' },
    { name: 'a subprotocol other than the ones requested', protocols: ['a', 'b'], answer: (key) => switching(['Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${accept(key)}`, 'Sec-WebSocket-Protocol: c']), code: 'WS_ERR_INVALID_SUBPROTOCOL' },
    { name: 'no subprotocol when one was requested', protocols: ['a'], answer: (key) => switching(['Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${accept(key)}`]), code: 'WS_ERR_MISSING_SUBPROTOCOL' },
    { name: 'an extension that was not requested', answer: (key) => switching(['Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${accept(key)}`, 'Sec-WebSocket-Extensions: x-unrequested']), code: 'WS_ERR_INVALID_EXTENSION' },
    { name: 'permessage-deflate when the client did not offer it', options: { perMessageDeflate: false }, answer: (key) => switching(['Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${accept(key)}`, 'Sec-WebSocket-Extensions: permessage-deflate']), code: 'WS_ERR_INVALID_EXTENSION' },
    { name: 'permessage-deflate with a parameter the client cannot accept', answer: (key) => switching(['Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${accept(key)}`, 'Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=20']), code: 'WS_ERR_INVALID_EXTENSION' },
    { name: 'a 200 instead of a 101', answer: () => 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok', code: 'WS_ERR_UNEXPECTED_RESPONSE', message: /^Unexpected server response: 200$/ },
    { name: 'the connection closed without an answer', answer: () => null, message: /socket hang up|ECONNRESET/ },
  ];

  for (const c of cases) {
    it(`${c.name} → error${c.code ? ` ${c.code}` : ''}, close 1006, never open`, async () => {
      const url = await answering(c.answer);
      const ws = res.client(new WebSocket(url, c.protocols ?? [], c.options ?? {}));
      let opened = false;
      ws.on('open', () => (opened = true));
      const errorEvent = once(ws, 'error');
      const closeEvent = once(ws, 'close');
      const [error] = (await errorEvent) as [Error & { code?: string }];
      if (c.code) expect(error.code).to.equal(c.code);
      if (c.message) expect(error.message).to.match(c.message);
      expect((await closeEvent)[0]).to.equal(1006);
      expect(opened).to.equal(false);
      expect(ws.lifecycle).to.equal('terminated');
    });
  }

  it('a correct 101 with the chosen subprotocol opens the connection', async () => {
    const url = await answering((key) => switching(['Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${accept(key)}`, 'Sec-WebSocket-Protocol: b']));
    const ws = res.client(new WebSocket(url, ['a', 'b']));
    await once(ws, 'open');
    expect(ws.protocol).to.equal('b');
  });
});
