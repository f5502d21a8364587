/**
 * End to end: a wirestate server and a wirestate client over real loopback sockets (RFC 6455),
 * with a raw TCP peer where an endpoint must face behaviour a wirestate endpoint never shows
 * (a peer that never answers a ping or a close, a server that never answers the upgrade).
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { SimulatedClock } from 'xstate';
import { WebSocket, WebSocketServer, createWebSocketStream, type LifecycleStep } from '../../runtime/index.js';
import type { WsEvent, CloseEvent, MessageEvent } from '../../runtime/event-target.js';
import {
  Resources,
  closeBody,
  closed,
  connect,
  connectPair,
  delay,
  frame,
  nextConnection,
  nextMessage,
  once,
  rawClient,
  rawRequest,
  rawServer,
  startEchoServer,
  startServer,
  within,
} from '../helpers/sockets.js';

const res = new Resources();
afterEach(() => res.closeAll());

/** Collects the lifecycle steps of a connection as `from -> to (event)`. */
function recordLifecycle(ws: WebSocket): string[] {
  const steps: string[] = [];
  ws.on('lifecycle', (step: LifecycleStep) => steps.push(`${step.from} -> ${step.to} (${step.event})`));
  return steps;
}

/** Resolves with the 'unexpected-response' status and headers of a client refused by the server. */
async function refusedWith(ws: WebSocket): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  res.client(ws);
  const [, response] = (await once(ws, 'unexpected-response')) as [http.ClientRequest, http.IncomingMessage];
  let body = '';
  response.setEncoding('utf8');
  response.on('data', (chunk: string) => (body += chunk));
  await once(response, 'end');
  return { status: response.statusCode!, headers: response.headers, body };
}

/** Resolves with the error a client reports. */
async function clientError(ws: WebSocket): Promise<Error & { code?: string }> {
  res.client(ws);
  const [error] = await once(ws, 'error');
  return error as Error & { code?: string };
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

describe('wirestate server ↔ wirestate client (e2e)', function () {
  this.timeout(10000);

  describe('messages', () => {
    it('echoes text as text and binary as binary', async () => {
      const { url } = await startEchoServer(res);
      const ws = await connect(res, url);
      ws.send('héllo wörld ✓');
      const text = await nextMessage(ws);
      expect(text.isBinary).to.equal(false);
      expect((text.data as Buffer).toString()).to.equal('héllo wörld ✓');
      ws.send(Buffer.from([0, 1, 2, 255]));
      const binary = await nextMessage(ws);
      expect(binary.isBinary).to.equal(true);
      expect(binary.data).to.deep.equal(Buffer.from([0, 1, 2, 255]));
    });

    it('sends strings, Buffers, ArrayBuffers and typed arrays', async () => {
      const { url } = await startEchoServer(res);
      const ws = await connect(res, url);
      const bytes = new Uint8Array([9, 8, 7, 6, 5]);
      const inputs: unknown[] = [bytes.buffer, bytes.subarray(1, 4), new Uint16Array([0x0102]), new DataView(bytes.buffer, 2, 2)];
      const expected = [Buffer.from([9, 8, 7, 6, 5]), Buffer.from([8, 7, 6]), Buffer.from(new Uint16Array([0x0102]).buffer), Buffer.from([7, 6])];
      for (let i = 0; i < inputs.length; i++) {
        ws.send(inputs[i]);
        const { data, isBinary } = await nextMessage(ws);
        expect(isBinary).to.equal(true);
        expect(data).to.deep.equal(expected[i]);
      }
    });

    it('echoes empty text and empty binary messages', async () => {
      const { url } = await startEchoServer(res);
      const ws = await connect(res, url);
      ws.send('');
      const text = await nextMessage(ws);
      expect(text.isBinary).to.equal(false);
      expect((text.data as Buffer).length).to.equal(0);
      ws.send(Buffer.alloc(0));
      const binary = await nextMessage(ws);
      expect(binary.isBinary).to.equal(true);
      expect((binary.data as Buffer).length).to.equal(0);
    });

    it('echoes a 5 MiB message intact', async () => {
      const { url } = await startEchoServer(res);
      const ws = await connect(res, url);
      const big = Buffer.alloc(5 * 1024 * 1024);
      for (let i = 0; i < big.length; i += 4096) big.writeUInt32BE(i, i);
      ws.send(big);
      const { data, isBinary } = await nextMessage(ws, 5000);
      expect(isBinary).to.equal(true);
      expect((data as Buffer).equals(big)).to.equal(true);
    });

    it('assembles a message sent in fragments with fin:false … fin:true, in order', async () => {
      const { wss, url } = await startServer(res);
      const { client: ws, server } = await connectPair(res, wss, url);
      const received = nextMessage(server);
      ws.send('frag', { fin: false });
      ws.send('men', { fin: false });
      ws.send('ted ✓', { fin: true });
      const { data, isBinary } = await received;
      expect(isBinary).to.equal(false);
      expect((data as Buffer).toString()).to.equal('fragmented ✓');
      const binary = nextMessage(server);
      ws.send(Buffer.from([1, 2]), { fin: false });
      ws.send(Buffer.from([3]), { fin: true });
      expect((await binary).data).to.deep.equal(Buffer.from([1, 2, 3]));
    });

    it('a ping between fragments is answered without breaking the message', async () => {
      const { wss, url } = await startServer(res);
      const { client: ws, server } = await connectPair(res, wss, url);
      const received = nextMessage(server);
      const pong = once(ws, 'pong');
      ws.send('a', { fin: false });
      ws.ping('mid');
      ws.send('b', { fin: true });
      expect((await received).data.toString()).to.equal('ab');
      expect((await pong)[0]).to.deep.equal(Buffer.from('mid'));
    });

    it('fragments outgoing messages above fragmentationThreshold (frames seen on the wire)', async () => {
      const { port } = await startEchoServer(res, { fragmentOutgoingMessages: true, fragmentationThreshold: 100 });
      const { socket, reader } = await rawClient(res, port);
      const payload = Buffer.alloc(250, 0x61);
      socket.write(frame(0x1, payload));
      await reader.until(() => reader.frames.length >= 3, 'three frames');
      expect(reader.frames.map((f) => [f.opcode, f.fin, f.payload.length])).to.deep.equal([
        [0x1, false, 100],
        [0x0, false, 100],
        [0x0, true, 50],
      ]);
      expect(reader.frames.every((f) => !f.masked)).to.equal(true);
    });

    it('a fragmented message round-trips between two endpoints that both fragment', async () => {
      const { url } = await startEchoServer(res, { fragmentOutgoingMessages: true, fragmentationThreshold: 1000 });
      const ws = await connect(res, url, [], { fragmentOutgoingMessages: true, fragmentationThreshold: 333 });
      const payload = Buffer.alloc(10_000);
      for (let i = 0; i < payload.length; i++) payload[i] = i & 0xff;
      ws.send(payload);
      expect((await nextMessage(ws)).data).to.deep.equal(payload);
      const text = 'ü'.repeat(3000); // 6000 bytes: frames split inside characters, still valid UTF-8 as a whole
      ws.send(text);
      expect((await nextMessage(ws)).data.toString()).to.equal(text);
    });
  });

  describe('binaryType', () => {
    it('nodebuffer (default) delivers a Buffer', async () => {
      const { url } = await startEchoServer(res);
      const ws = await connect(res, url);
      expect(ws.binaryType).to.equal('nodebuffer');
      ws.send(Buffer.from([1, 2, 3]));
      const { data } = await nextMessage(ws);
      expect(Buffer.isBuffer(data)).to.equal(true);
      expect(data).to.deep.equal(Buffer.from([1, 2, 3]));
    });

    it('arraybuffer delivers an ArrayBuffer of exactly the message', async () => {
      const { url } = await startEchoServer(res);
      const ws = await connect(res, url);
      ws.binaryType = 'arraybuffer';
      ws.send(Buffer.from([4, 5, 6]));
      const { data } = await nextMessage(ws);
      expect(data).to.be.instanceOf(ArrayBuffer);
      expect([...new Uint8Array(data as unknown as ArrayBuffer)]).to.deep.equal([4, 5, 6]);
      // Text is still delivered as a Buffer (ws does the same), binaryType only shapes binary messages.
      ws.send('x');
      expect(Buffer.isBuffer((await nextMessage(ws)).data)).to.equal(true);
    });

    it('fragments delivers an array of Buffers whose concatenation is the message', async () => {
      const { url } = await startEchoServer(res, { fragmentOutgoingMessages: true, fragmentationThreshold: 2 });
      const ws = await connect(res, url);
      ws.binaryType = 'fragments';
      ws.send(Buffer.from([7, 8, 9, 10, 11]));
      const { data } = await nextMessage(ws);
      expect(Array.isArray(data)).to.equal(true);
      expect((data as unknown as Buffer[]).every((b) => Buffer.isBuffer(b))).to.equal(true);
      expect(Buffer.concat(data as unknown as Buffer[])).to.deep.equal(Buffer.from([7, 8, 9, 10, 11]));
    });

    it('ignores an unknown binaryType', async () => {
      const { url } = await startEchoServer(res);
      const ws = await connect(res, url);
      ws.binaryType = 'blob' as never;
      expect(ws.binaryType).to.equal('nodebuffer');
    });
  });

  describe('ping / pong', () => {
    it('a ping with a payload is answered automatically with a pong carrying it (client → server)', async () => {
      const { wss, url } = await startServer(res);
      const { client: ws, server } = await connectPair(res, wss, url);
      const serverPing = once(server, 'ping');
      const pong = once(ws, 'pong');
      ws.ping('are you there');
      expect((await serverPing)[0]).to.deep.equal(Buffer.from('are you there'));
      expect((await pong)[0]).to.deep.equal(Buffer.from('are you there'));
    });

    it('a ping from the server is answered by the client, and pong() sends an unsolicited pong', async () => {
      const { wss, url } = await startServer(res);
      const { client: ws, server } = await connectPair(res, wss, url);
      const clientPing = once(ws, 'ping');
      const pong = once(server, 'pong');
      server.ping(Buffer.from([1, 2, 3]));
      expect((await clientPing)[0]).to.deep.equal(Buffer.from([1, 2, 3]));
      expect((await pong)[0]).to.deep.equal(Buffer.from([1, 2, 3]));
      const unsolicited = once(server, 'pong');
      ws.pong('unsolicited');
      expect((await unsolicited)[0]).to.deep.equal(Buffer.from('unsolicited'));
    });

    it('autoPong: false leaves the answer to the application', async () => {
      const { wss, url } = await startServer(res, { autoPong: false });
      const { client: ws, server } = await connectPair(res, wss, url);
      let pongs = 0;
      ws.on('pong', () => pongs++);
      const serverPing = once(server, 'ping');
      ws.ping('1');
      await serverPing;
      // A second round trip proves the first ping's pong would have arrived by now.
      ws.send('sync');
      server.on('message', () => server.send('back'));
      await nextMessage(ws);
      expect(pongs).to.equal(0);
    });

    it('refuses a ping payload over 125 bytes', async () => {
      const { url } = await startEchoServer(res);
      const ws = await connect(res, url);
      expect(() => ws.ping(Buffer.alloc(126))).to.throw(RangeError);
      expect(() => ws.ping(Buffer.alloc(125))).to.not.throw();
    });
  });

  describe('closing', () => {
    it('close from the client: both ends see code and reason; states step through closedByUs / closedByPeer', async () => {
      const { wss, url } = await startServer(res);
      const { client: ws, server } = await connectPair(res, wss, url);
      const clientSteps = recordLifecycle(ws);
      const serverSteps = recordLifecycle(server);
      const serverClosed = closed(server);
      const clientClosed = closed(ws);
      let serverStateOnPeerClose: [number, string] | undefined;
      server.once('lifecycle', () => (serverStateOnPeerClose = [server.readyState, server.lifecycle]));
      ws.close(4001, 'done here ✓');
      expect(ws.readyState).to.equal(WebSocket.CLOSING);
      expect(ws.lifecycle).to.equal('closing.closedByUs');
      expect(await serverClosed).to.deep.equal({ code: 4001, reason: 'done here ✓' });
      expect(await clientClosed).to.deep.equal({ code: 4001, reason: 'done here ✓' });
      expect(serverStateOnPeerClose).to.deep.equal([WebSocket.CLOSING, 'closing.closedByPeer']);
      expect([ws.readyState, ws.lifecycle, server.readyState, server.lifecycle]).to.deep.equal([WebSocket.CLOSED, 'closed', WebSocket.CLOSED, 'closed']);
      expect(clientSteps.slice(0, 2)).to.deep.equal(['open -> closing.closedByUs (CLOSE_REQUESTED)', 'closing.closedByUs -> closing.acknowledged (CLOSE_RECEIVED)']);
      expect(clientSteps[2]).to.match(/^closing\.acknowledged -> closed \(SOCKET_(ENDED|CLOSED)\)$/);
      expect(serverSteps[0]).to.equal('open -> closing.closedByPeer (CLOSE_RECEIVED)');
      expect(serverSteps[1]).to.match(/^closing\.closedByPeer -> closed \(SOCKET_(ENDED|CLOSED)\)$/);
    });

    it('close from the server: both ends see code and reason; the server ends TCP first', async () => {
      const { wss, url } = await startServer(res);
      const { client: ws, server } = await connectPair(res, wss, url);
      const serverSteps = recordLifecycle(server);
      const clientSteps = recordLifecycle(ws);
      const serverClosed = closed(server);
      const clientClosed = closed(ws);
      server.close(1000, 'bye');
      expect(server.lifecycle).to.equal('closing.closedByUs');
      expect(await clientClosed).to.deep.equal({ code: 1000, reason: 'bye' });
      expect(await serverClosed).to.deep.equal({ code: 1000, reason: 'bye' });
      expect(serverSteps.slice(0, 2)).to.deep.equal(['open -> closing.closedByUs (CLOSE_REQUESTED)', 'closing.closedByUs -> closing.acknowledged (CLOSE_RECEIVED)']);
      expect(serverSteps[2]).to.match(/^closing\.acknowledged -> closed/);
      expect(clientSteps[0]).to.equal('open -> closing.closedByPeer (CLOSE_RECEIVED)');
      expect(clientSteps[1]).to.match(/^closing\.closedByPeer -> closed/);
      expect(ws.wasClean()).to.equal(true);
    });

    it('close() without a code: both ends report 1005 and an empty reason', async () => {
      const { wss, url } = await startServer(res);
      const { client: ws, server } = await connectPair(res, wss, url);
      const serverClosed = closed(server);
      const clientClosed = closed(ws);
      ws.close();
      expect(await serverClosed).to.deep.equal({ code: 1005, reason: '' });
      expect(await clientClosed).to.deep.equal({ code: 1005, reason: '' });
    });

    it('terminate() destroys the connection: 1006 on both ends, lifecycle terminated', async () => {
      const { wss, url } = await startServer(res);
      const { client: ws, server } = await connectPair(res, wss, url);
      const serverClosed = closed(server);
      const clientClosed = closed(ws);
      ws.terminate();
      expect(ws.readyState).to.equal(WebSocket.CLOSED);
      expect(await clientClosed).to.deep.equal({ code: 1006, reason: '' });
      expect(await serverClosed).to.deep.equal({ code: 1006, reason: '' });
      expect(ws.lifecycle).to.equal('terminated');
      expect(server.lifecycle).to.equal('terminated');
      expect(ws.wasClean()).to.equal(false);
    });

    it('close() while CONNECTING aborts the handshake with an error and close 1006', async () => {
      const { url } = await startServer(res);
      const ws = res.client(new WebSocket(url));
      const error = once(ws, 'error');
      const clientClosed = closed(ws);
      let opened = false;
      ws.on('open', () => (opened = true));
      ws.close();
      expect(((await error)[0] as Error).message).to.equal('WebSocket was closed before the connection was established');
      expect(await clientClosed).to.deep.equal({ code: 1006, reason: '' });
      expect(opened).to.equal(false);
      expect(ws.readyState).to.equal(WebSocket.CLOSED);
    });

    it('terminate() while CONNECTING aborts the handshake the same way', async () => {
      const { url } = await startServer(res);
      const ws = res.client(new WebSocket(url));
      const error = once(ws, 'error');
      const clientClosed = closed(ws);
      ws.terminate();
      expect(((await error)[0] as Error).message).to.equal('WebSocket was closed before the connection was established');
      expect((await clientClosed).code).to.equal(1006);
    });

    it('events of close() while CONNECTING come on a later tick: listeners added after the call still get them', async () => {
      const { url } = await startServer(res);
      const ws = res.client(new WebSocket(url));
      ws.close();
      const error = once(ws, 'error');
      const clientClosed = once(ws, 'close');
      expect(((await error)[0] as Error).message).to.equal('WebSocket was closed before the connection was established');
      expect((await clientClosed)[0]).to.equal(1006);
    });

    it("terminate() on an open connection: 'close' comes on a later tick, as in ws", async () => {
      const { url } = await startEchoServer(res);
      const ws = await connect(res, url);
      ws.terminate();
      expect(ws.readyState).to.equal(WebSocket.CLOSED);
      const [code] = await once(ws, 'close');
      expect(code).to.equal(1006);
    });

    it('close() validates its arguments: an invalid code is a TypeError, a reason over 123 bytes a SyntaxError', async () => {
      const { url } = await startEchoServer(res);
      const ws = await connect(res, url);
      for (const code of [999, 1004, 1005, 1006, 1015, 2999, 5000, 1000.5]) {
        expect(() => ws.close(code), String(code)).to.throw(TypeError, 'First argument must be a valid error code number');
      }
      expect(() => ws.close(1000, 'x'.repeat(124))).to.throw(SyntaxError, 'The message must not be greater than 123 bytes');
      expect(() => ws.close(1000, 'é'.repeat(62))).to.throw(SyntaxError); // 124 bytes of UTF-8
      expect(ws.readyState).to.equal(WebSocket.OPEN);
      const clientClosed = closed(ws);
      ws.close(1000, 'x'.repeat(123));
      expect(await clientClosed).to.deep.equal({ code: 1000, reason: 'x'.repeat(123) });
    });

    it('a second close() while closing changes nothing', async () => {
      const { wss, url } = await startServer(res);
      const { client: ws, server } = await connectPair(res, wss, url);
      const serverClosed = closed(server);
      ws.close(4000, 'first');
      ws.close(4001, 'second');
      expect((await serverClosed).code).to.equal(4000);
    });
  });

  describe('send()', () => {
    it('throws before the connection is open', async () => {
      const { url } = await startServer(res);
      const ws = res.client(new WebSocket(url));
      expect(() => ws.send('too early')).to.throw(Error, 'WebSocket is not open: readyState 0 (CONNECTING)');
      expect(() => ws.ping()).to.throw(Error, /readyState 0/);
      await once(ws, 'open');
    });

    it('after close, calls back with an error instead of sending', async () => {
      const { wss, url } = await startServer(res);
      const { client: ws, server } = await connectPair(res, wss, url);
      let received = 0;
      server.on('message', () => received++);
      ws.close();
      const closing = await new Promise<Error | null | undefined>((resolve) => ws.send('late', (error) => resolve(error)));
      expect(closing).to.be.instanceOf(Error);
      expect(closing!.message).to.equal('WebSocket is not open: readyState 2 (CLOSING)');
      await once(ws, 'close');
      const afterClose = await new Promise<Error | null | undefined>((resolve) => ws.send('later', (error) => resolve(error)));
      expect(afterClose!.message).to.equal('WebSocket is not open: readyState 3 (CLOSED)');
      expect(received).to.equal(0);
    });

    it('honours {binary} for strings, and {mask: false} really sends an unmasked frame (which the server refuses)', async () => {
      const { wss, url } = await startServer(res);
      const { client, server } = await connectPair(res, wss, url);
      const asBinary = nextMessage(server);
      client.send('abc', { binary: true });
      expect(await asBinary).to.deep.equal({ data: Buffer.from('abc'), isBinary: true });
      const serverError = once(server, 'error');
      const clientClosed = closed(client);
      client.send('unmasked', { mask: false });
      expect(((await serverError)[0] as { code: string }).code).to.equal('WS_ERR_EXPECTED_MASK');
      expect((await clientClosed).code).to.equal(1002);
    });

    it('calls back with no error once the data is written', async () => {
      const { url } = await startEchoServer(res);
      const ws = await connect(res, url);
      const error = await new Promise<Error | null | undefined>((resolve) => ws.send('ok', resolve));
      expect(error ?? null).to.equal(null);
    });
  });

  describe('EventTarget', () => {
    it('addEventListener / onmessage / onclose deliver MessageEvent and CloseEvent', async () => {
      const { wss, url } = await startServer(res);
      const ws = res.client(new WebSocket(url));
      const seen: string[] = [];
      const opened = new Promise<WsEvent>((resolve) => ws.addEventListener('open', (event) => resolve(event)));
      ws.onopen = () => seen.push('onopen');
      const { ws: server } = await nextConnection(wss);
      const openEvent = await opened;
      expect(openEvent.type).to.equal('open');
      expect(openEvent.target).to.equal(ws);

      const message = new Promise<MessageEvent>((resolve) => (ws.onmessage = (event) => resolve(event as MessageEvent)));
      server.send('text');
      const textEvent = await message;
      expect(textEvent.type).to.equal('message');
      expect(textEvent.data).to.equal('text'); // text arrives as a string through the EventTarget face, as in ws
      expect(ws.onmessage).to.be.a('function');

      const binary = new Promise<MessageEvent>((resolve) => ws.addEventListener('message', (event) => resolve(event as MessageEvent), { once: true }));
      server.send(Buffer.from([1]));
      expect((await binary).data).to.deep.equal(Buffer.from([1]));

      // A listener object with handleEvent, added twice, is called once.
      let handled = 0;
      const listener = { handleEvent: () => handled++ };
      ws.addEventListener('message', listener);
      ws.addEventListener('message', listener);
      server.send('again');
      await nextMessage(ws);
      expect(handled).to.equal(1);
      ws.removeEventListener('message', listener);

      const closeEvent = new Promise<CloseEvent>((resolve) => (ws.onclose = (event) => resolve(event as CloseEvent)));
      server.close(4100, 'evt');
      const event = await closeEvent;
      expect(event.type).to.equal('close');
      expect([event.code, event.reason, event.wasClean]).to.deep.equal([4100, 'evt', true]);
      expect(seen).to.deep.equal(['onopen']);
    });

    it('CloseEvent.wasClean is false when the connection was dropped; onerror gets an ErrorEvent', async () => {
      const { server: tcp, url } = await rawServer(res, (socket) => socket.destroy(), { answer: false });
      void tcp;
      const ws = res.client(new WebSocket(url));
      const errorEvent = new Promise<WsEvent & { message: string }>((resolve) => (ws.onerror = (event) => resolve(event as WsEvent & { message: string })));
      const closeEvent = new Promise<CloseEvent>((resolve) => ws.addEventListener('close', (event) => resolve(event as CloseEvent)));
      expect((await errorEvent).type).to.equal('error');
      const event = await closeEvent;
      expect([event.code, event.wasClean]).to.deep.equal([1006, false]);
    });
  });

  describe('lifecycle', () => {
    it('emits {from, to, event} for every step of a full connection', async () => {
      const { url } = await startEchoServer(res);
      const ws = res.client(new WebSocket(url));
      const steps: LifecycleStep[] = [];
      ws.on('lifecycle', (step: LifecycleStep) => steps.push(step));
      expect(ws.lifecycle).to.equal('connecting');
      expect(ws.readyState).to.equal(WebSocket.CONNECTING);
      await once(ws, 'open');
      expect(ws.lifecycle).to.equal('open');
      ws.pause();
      ws.resume();
      const done = closed(ws);
      ws.close(1000);
      await done;
      const simple = steps.map((s) => [s.from, s.to, s.event]);
      expect(simple[0]).to.deep.equal(['connecting', 'open', 'HANDSHAKE_SUCCEEDED']);
      // pause/resume change a region of `open`, not the state name: still reported, as open -> open.
      expect(simple[1]).to.deep.equal(['open', 'open', 'PAUSE_REQUESTED']);
      expect(simple[2]).to.deep.equal(['open', 'open', 'RESUME_REQUESTED']);
      expect(simple[3]).to.deep.equal(['open', 'closing.closedByUs', 'CLOSE_REQUESTED']);
      expect(simple[4]).to.deep.equal(['closing.closedByUs', 'closing.acknowledged', 'CLOSE_RECEIVED']);
      expect(simple[5]![1]).to.equal('closed');
      expect(simple).to.have.length(6);
      expect(steps[1]!.state).to.deep.include({ open: { reading: 'paused', keepalive: 'disabled', idle: 'disabled' } });
      for (const step of steps) expect(step.at).to.be.a('number');
    });
  });

  describe('backpressure', () => {
    it('send() returns false above sendHighWaterMark, bufferedAmount grows, drain follows once the peer reads', async () => {
      const { wss, url } = await startServer(res);
      const { client: ws, server } = await connectPair(res, wss, url, [], { sendHighWaterMark: 64 * 1024 });
      server.pause();
      let received = 0;
      server.on('message', () => received++);
      const chunk = Buffer.alloc(256 * 1024);
      const results: boolean[] = [];
      // 32 MiB: more than loopback's socket buffers can absorb while the server does not read.
      for (let i = 0; i < 128; i++) results.push(ws.send(chunk));
      expect(results[0]).to.equal(false); // already above the mark: the caller should wait for 'drain'
      await delay(30);
      expect(ws.bufferedAmount).to.be.greaterThan(64 * 1024);
      expect(received).to.equal(0);
      const drained = once(ws, 'drain', 8000);
      server.resume();
      await drained;
      expect(ws.bufferedAmount).to.be.lessThan(64 * 1024);
      await within(
        new Promise<void>((resolve) => {
          const check = () => (received === 128 ? resolve() : setTimeout(check, 10));
          check();
        }),
        8000,
        'all 128 messages',
      );
      expect(ws.send('small')).to.equal(true);
    });
  });

  describe('pause() / resume()', () => {
    it('withholds messages while paused and delivers them in order on resume', async () => {
      const { wss, url } = await startServer(res);
      const { client: ws, server } = await connectPair(res, wss, url);
      const got: string[] = [];
      ws.on('message', (data: Buffer) => got.push(data.toString()));
      ws.pause();
      expect(ws.isPaused).to.equal(true);
      server.send('1');
      server.send('2');
      server.send('3');
      await delay(50);
      expect(got).to.deep.equal([]);
      ws.resume();
      expect(ws.isPaused).to.equal(false);
      await within(
        new Promise<void>((resolve) => {
          const check = () => (got.length === 3 ? resolve() : setTimeout(check, 5));
          check();
        }),
        2000,
        'three messages',
      );
      expect(got).to.deep.equal(['1', '2', '3']);
    });

    it('a close starts reading again: a paused connection still completes the closing handshake', async () => {
      const { wss, url } = await startServer(res);
      const { client: ws, server } = await connectPair(res, wss, url);
      ws.pause();
      const clientClosed = closed(ws);
      const serverClosed = closed(server);
      ws.close(1000, 'paused');
      expect(await serverClosed).to.deep.equal({ code: 1000, reason: 'paused' });
      expect(await clientClosed).to.deep.equal({ code: 1000, reason: 'paused' });
    });
  });

  describe('timers', () => {
    it('keep-alive: a peer that never answers pings is terminated (1006) after the grace period', async () => {
      const clock = new SimulatedClock();
      const { wss, port } = await startServer(res, { keepalive: true, keepaliveInterval: 1000, keepaliveGracePeriod: 500, clock });
      const connection = nextConnection(wss);
      const { reader } = await rawClient(res, port);
      const { ws: server } = await connection;
      const serverClosed = closed(server);
      clock.increment(1000);
      await reader.until(() => reader.frames.some((f) => f.opcode === 0x9), 'a keep-alive ping');
      expect(server.readyState).to.equal(WebSocket.OPEN);
      clock.increment(499);
      expect(server.readyState).to.equal(WebSocket.OPEN);
      clock.increment(1);
      expect(await serverClosed).to.deep.equal({ code: 1006, reason: '' });
      expect(server.lifecycle).to.equal('terminated');
      expect(server.lifecycleDetail).to.match(/keep-alive/);
      await reader.end();
    });

    it('keep-alive: a peer that answers is never dropped', async () => {
      const clock = new SimulatedClock();
      const { wss, url } = await startServer(res, { keepalive: true, keepaliveInterval: 1000, keepaliveGracePeriod: 500, clock });
      const { client: ws, server } = await connectPair(res, wss, url);
      let pings = 0;
      ws.on('ping', () => pings++);
      for (let round = 0; round < 4; round++) {
        const pong = once(server, 'pong');
        clock.increment(1000);
        await pong;
        clock.increment(600);
        expect(server.readyState, `round ${round}`).to.equal(WebSocket.OPEN);
      }
      expect(pings).to.equal(4);
      expect(ws.readyState).to.equal(WebSocket.OPEN);
    });

    it('keep-alive on real timers (interval 20 ms, grace 20 ms): the silent raw peer is dropped, the wirestate client is not', async () => {
      const { wss, port, url } = await startServer(res, { keepalive: true, keepaliveInterval: 20, keepaliveGracePeriod: 20 });
      const silentConnection = nextConnection(wss);
      const { reader } = await rawClient(res, port);
      const { ws: silent } = await silentConnection;
      const { client, server: answering } = await connectPair(res, wss, url);
      let pongs = 0;
      answering.on('pong', () => pongs++);
      expect(await closed(silent)).to.deep.equal({ code: 1006, reason: '' });
      expect(reader.frames.filter((f) => f.opcode === 0x9).length).to.be.greaterThan(0);
      await delay(80);
      expect(pongs).to.be.greaterThan(1);
      expect([client.readyState, answering.readyState]).to.deep.equal([WebSocket.OPEN, WebSocket.OPEN]);
    });

    it('keep-alive: traffic from the peer counts as a sign of life (no ping sent)', async () => {
      const clock = new SimulatedClock();
      const { wss, url } = await startServer(res, { keepalive: true, keepaliveInterval: 1000, keepaliveGracePeriod: 500, clock });
      const { client: ws, server } = await connectPair(res, wss, url);
      let pings = 0;
      ws.on('ping', () => pings++);
      const message = once(server, 'message');
      ws.send('alive');
      await message;
      clock.increment(1000);
      // The next round trip would carry a ping sent at that tick.
      server.send('sync');
      await nextMessage(ws);
      expect(pings).to.equal(0);
    });

    it('idle timeout: a connection without traffic is closed with 1001', async () => {
      const { wss, url } = await startServer(res, { idleTimeout: 50 });
      const { client: ws, server } = await connectPair(res, wss, url);
      const clientClosed = closed(ws);
      const serverClosed = closed(server);
      expect(await clientClosed).to.deep.equal({ code: 1001, reason: 'idle timeout' });
      expect((await serverClosed).code).to.equal(1001);
      expect(server.lifecycleDetail).to.equal('idle timeout');
    });

    it('idle timeout on the simulated clock: traffic postpones it', async () => {
      const clock = new SimulatedClock();
      const { wss, url } = await startServer(res, { idleTimeout: 1000, clock });
      const { client: ws, server } = await connectPair(res, wss, url);
      const message = once(server, 'message');
      ws.send('traffic');
      await message;
      clock.increment(1000); // there was traffic in this period: rearmed
      expect(server.readyState).to.equal(WebSocket.OPEN);
      const clientClosed = closed(ws);
      clock.increment(1000); // none in this one
      expect(server.readyState).to.equal(WebSocket.CLOSING);
      expect((await clientClosed).code).to.equal(1001);
    });

    it('close timeout: a peer that never answers our close frame is terminated', async () => {
      const { wss, port } = await startServer(res, { closeTimeout: 50 });
      const connection = nextConnection(wss);
      const { reader } = await rawClient(res, port);
      const { ws: server } = await connection;
      const steps = recordLifecycle(server);
      const serverClosed = closed(server);
      server.close(1000, 'please answer');
      const { code, reason } = await reader.closeFrame();
      expect([code, reason]).to.deep.equal([1000, 'please answer']);
      expect(await serverClosed).to.deep.equal({ code: 1006, reason: '' });
      expect(steps[0]).to.equal('open -> closing.closedByUs (CLOSE_REQUESTED)');
      expect(steps[1]).to.match(/^closing\.closedByUs -> terminated \(xstate\.after\.closeTimeout\b/);
      expect(steps).to.have.length(2);
      expect(server.lifecycleDetail).to.equal('closing handshake timed out');
      await reader.end();
    });

    it('close timeout on the simulated clock (client side)', async () => {
      const clock = new SimulatedClock();
      const { url } = await rawServer(res, () => {});
      const ws = await connect(res, url, [], { clock, closeTimeout: 3000 });
      const clientClosed = closed(ws);
      ws.close(1000);
      clock.increment(2999);
      expect(ws.readyState).to.equal(WebSocket.CLOSING);
      clock.increment(1);
      expect(ws.readyState).to.equal(WebSocket.CLOSED);
      expect(await clientClosed).to.deep.equal({ code: 1006, reason: '' });
    });

    it('server handshake timeout: a verifyClient that never answers → the socket is destroyed', async () => {
      const { url } = await startServer(res, { handshakeTimeout: 50, verifyClient: (_info: unknown, _cb: unknown) => {} });
      const ws = res.client(new WebSocket(url));
      const error = once(ws, 'error');
      const clientClosed = closed(ws);
      await error;
      expect((await clientClosed).code).to.equal(1006);
    });

    it('server handshake timeout: a client that never finishes its request gets 408 and is closed', async () => {
      const { port } = await startServer(res, { handshakeTimeout: 60 });
      const started = Date.now();
      const response = await rawRequest(res, port, 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n', 2000);
      expect(response.status).to.equal(408);
      expect(response.ended).to.equal(true);
      expect(Date.now() - started).to.be.lessThan(1000);
    });

    it('handshakeTimeout ends with the handshake: an open connection outlives it', async () => {
      const { url } = await startEchoServer(res, { handshakeTimeout: 30 });
      const ws = await connect(res, url);
      await delay(100); // more than three times the timeout, and several of Node's connection checks
      ws.send('still open');
      expect((await nextMessage(ws)).data.toString()).to.equal('still open');
    });

    it('client handshake timeout: a server that accepts TCP but never answers → WS_ERR_HANDSHAKE_TIMEOUT and 1006', async () => {
      const { url } = await rawServer(res, () => {}, { answer: false });
      const clock = new SimulatedClock();
      const ws = res.client(new WebSocket(url, { handshakeTimeout: 5000, clock }));
      const error = once(ws, 'error');
      const clientClosed = closed(ws);
      await delay(20); // the request is on its way
      clock.increment(5000);
      const [err] = (await error) as [Error & { code: string }];
      expect(err.code).to.equal('WS_ERR_HANDSHAKE_TIMEOUT');
      expect(err.message).to.equal('Opening handshake has timed out');
      expect(await clientClosed).to.deep.equal({ code: 1006, reason: '' });
      expect(ws.lifecycle).to.equal('terminated');
    });
  });

  describe('server features', () => {
    it('port / host / backlog', async () => {
      const { wss, url } = await startEchoServer(res, { backlog: 5 });
      const address = wss.address() as AddressInfo;
      expect(address.address).to.equal('127.0.0.1');
      expect(wss.lifecycle).to.equal('listening');
      const ws = await connect(res, url);
      ws.send('hi');
      expect((await nextMessage(ws)).data.toString()).to.equal('hi');
    });

    it('refuses a combination of port, server and noServer', () => {
      expect(() => new WebSocketServer({ port: 0, noServer: true })).to.throw(TypeError);
      expect(() => new WebSocketServer({})).to.throw(TypeError);
    });

    it('reports a port already in use through the error event', async () => {
      const { port } = await startServer(res);
      const wss = res.server(new WebSocketServer({ port, host: '127.0.0.1' }));
      const [error] = (await once(wss, 'error')) as [Error & { code: string }];
      expect(error.code).to.equal('EADDRINUSE');
    });

    it('shares an existing http server with ordinary requests', async () => {
      const server = res.netServer(http.createServer((_req, response) => response.end('plain http')));
      const port = await listen(server);
      const wss = res.server(new WebSocketServer({ server }));
      wss.on('connection', (ws: WebSocket) => ws.send('from ws'));
      // The greeting may travel with the 101: listen for it before the connection opens.
      const ws = res.client(new WebSocket(`ws://127.0.0.1:${port}/`));
      expect((await nextMessage(ws)).data.toString()).to.equal('from ws');
      const body = await new Promise<string>((resolve) => http.get(`http://127.0.0.1:${port}/`, (r) => r.on('data', (d: Buffer) => resolve(d.toString()))));
      expect(body).to.equal('plain http');
    });

    it('attaches to two http servers at once (server: [a, b])', async () => {
      const a = res.netServer(http.createServer());
      const b = res.netServer(http.createServer());
      const [portA, portB] = [await listen(a), await listen(b)];
      const wss = res.server(new WebSocketServer({ server: [a, b] }));
      wss.on('connection', (ws: WebSocket, req: http.IncomingMessage) => ws.send(String(req.socket.localPort)));
      const wsA = res.client(new WebSocket(`ws://127.0.0.1:${portA}`));
      expect((await nextMessage(wsA)).data.toString()).to.equal(String(portA));
      const wsB = res.client(new WebSocket(`ws://127.0.0.1:${portB}`));
      expect((await nextMessage(wsB)).data.toString()).to.equal(String(portB));
      expect(wss.clients!.size).to.equal(2);
    });

    it('noServer + handleUpgrade, routed from two http servers by path', async () => {
      const wss = res.server(new WebSocketServer({ noServer: true }));
      expect(() => wss.address()).to.throw(Error, 'noServer');
      const servers = [res.netServer(http.createServer()), res.netServer(http.createServer())];
      const ports: number[] = [];
      for (const server of servers) {
        ports.push(await listen(server));
        server.on('upgrade', (req, socket, head) => {
          if (req.url !== '/chat') {
            socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
            return;
          }
          wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
        });
      }
      wss.on('connection', (ws: WebSocket) => ws.on('message', (data: Buffer) => ws.send(`echo:${data.toString()}`)));
      for (const port of ports) {
        const ws = await connect(res, `ws://127.0.0.1:${port}/chat`);
        ws.send(String(port));
        expect((await nextMessage(ws)).data.toString()).to.equal(`echo:${port}`);
      }
      const refused = await refusedWith(new WebSocket(`ws://127.0.0.1:${ports[0]}/other`));
      expect(refused.status).to.equal(404);
    });

    it('path: only the configured path is upgraded, others get 400', async () => {
      const { url } = await startEchoServer(res, { path: '/ws' });
      await connect(res, `${url}/ws?token=1`);
      const refused = await refusedWith(new WebSocket(`${url}/other`));
      expect(refused.status).to.equal(400);
    });

    it('verifyClient (sync): true accepts, false refuses with 401', async () => {
      let allow = true;
      const { url } = await startEchoServer(res, { verifyClient: () => allow });
      await connect(res, url);
      allow = false;
      expect((await refusedWith(new WebSocket(url))).status).to.equal(401);
    });

    it('verifyClient (async): cb(false, 403, "Forbidden", headers) reaches the client as unexpected-response', async () => {
      const { url } = await startEchoServer(res, {
        verifyClient: (_info: unknown, cb: (ok: boolean, code?: number, message?: string, headers?: Record<string, string>) => void) => {
          setTimeout(() => cb(false, 403, 'Forbidden', { 'X-Reason': 'x' }), 5);
        },
      });
      const refused = await refusedWith(new WebSocket(url));
      expect(refused.status).to.equal(403);
      expect(refused.headers['x-reason']).to.equal('x');
      expect(refused.body).to.equal('Forbidden');
    });

    it('verifyClient (async) refusing, without an unexpected-response listener: error "Unexpected server response: 403" and 1006', async () => {
      const { url } = await startEchoServer(res, { verifyClient: (_info: unknown, cb: (ok: boolean, code?: number) => void) => cb(false, 403) });
      const ws = new WebSocket(url);
      const clientClosed = (async () => {
        res.client(ws);
        return closed(ws);
      })();
      const error = await clientError(ws);
      expect(error.message).to.equal('Unexpected server response: 403');
      expect(error.code).to.equal('WS_ERR_UNEXPECTED_RESPONSE');
      expect((await clientClosed).code).to.equal(1006);
    });

    it('verifyClient can attach data to the connection through info.data', async () => {
      const { wss, url } = await startServer(res, {
        verifyClient: (info: { req: http.IncomingMessage; data?: unknown; origin?: string; secure: boolean }, cb: (ok: boolean) => void) => {
          info.data = { user: info.req.headers['x-user'], origin: info.origin, secure: info.secure };
          cb(true);
        },
      });
      const connection = nextConnection(wss);
      await connect(res, url, [], { headers: { 'X-User': 'ada' }, origin: 'https://example.test' });
      const { ws } = await connection;
      expect(ws.data).to.deep.equal({ user: 'ada', origin: 'https://example.test', secure: false });
    });

    it('handleProtocols chooses the subprotocol; both ends agree on it', async () => {
      const { wss, url } = await startServer(res, { handleProtocols: (protocols: Set<string>) => (protocols.has('v2') ? 'v2' : false) });
      const connection = nextConnection(wss);
      const ws = await connect(res, url, ['v1', 'v2']);
      const { ws: server } = await connection;
      expect(ws.protocol).to.equal('v2');
      expect(server.protocol).to.equal('v2');
    });

    it('without handleProtocols the first offered subprotocol is chosen', async () => {
      const { url } = await startServer(res);
      const ws = await connect(res, url, ['chat', 'superchat']);
      expect(ws.protocol).to.equal('chat');
    });

    it("'headers' lets the application add response headers, seen by the client's 'upgrade' event", async () => {
      const { wss, url } = await startServer(res);
      wss.on('headers', (headers: string[], req: http.IncomingMessage) => {
        expect(req.url).to.equal('/');
        headers.push('X-Custom: 42');
      });
      const ws = res.client(new WebSocket(url));
      const upgrade = once(ws, 'upgrade');
      await once(ws, 'open');
      const [response] = (await upgrade) as [http.IncomingMessage];
      expect(response.headers['x-custom']).to.equal('42');
      expect(response.statusCode).to.equal(101);
    });

    it('clientTracking: clients holds open connections (and forgets closed ones); off, clients is undefined', async () => {
      const { wss, url } = await startServer(res);
      const connection = nextConnection(wss);
      const ws = await connect(res, url);
      const { ws: server } = await connection;
      expect([...wss.clients!]).to.deep.equal([server]);
      const serverClosed = closed(server);
      ws.close();
      await serverClosed;
      expect(wss.clients!.size).to.equal(0);

      const untracked = await startServer(res, { clientTracking: false });
      await connect(res, untracked.url);
      expect(untracked.wss.clients).to.equal(undefined);
    });

    it('maxPayload: a bigger message closes the connection with 1009 and WS_ERR_UNSUPPORTED_MESSAGE_LENGTH', async () => {
      const { wss, url } = await startServer(res, { maxPayload: 100 });
      const connection = nextConnection(wss);
      const ws = await connect(res, url);
      const { ws: server } = await connection;
      const serverError = once(server, 'error');
      const clientClosed = closed(ws);
      let delivered = 0;
      server.on('message', () => delivered++);
      ws.send(Buffer.alloc(100)); // at the limit: fine
      ws.send(Buffer.alloc(101));
      const [error] = (await serverError) as [Error & { code: string; closeCode: number }];
      expect(error.code).to.equal('WS_ERR_UNSUPPORTED_MESSAGE_LENGTH');
      expect(error.closeCode).to.equal(1009);
      expect((await clientClosed).code).to.equal(1009);
      expect(delivered).to.equal(1);
    });

    it('maxConnections: the connection over the limit is refused with 503', async () => {
      const { wss, url } = await startEchoServer(res, { maxConnections: 1 });
      const { client: first, server: firstOnServer } = await connectPair(res, wss, url);
      expect((await refusedWith(new WebSocket(url))).status).to.equal(503);
      // Once the first one is gone (on the server's side too) there is room again.
      const gone = closed(firstOnServer);
      first.close();
      await gone;
      await connect(res, url);
    });

    it('allowedClients: 127.0.0.1 is refused by ["10.*"] (403) and accepted by ["127.0.0.1"]', async () => {
      const refusing = await startEchoServer(res, { allowedClients: ['10.*'] });
      expect((await refusedWith(new WebSocket(refusing.url))).status).to.equal(403);
      const accepting = await startEchoServer(res, { allowedClients: ['127.0.0.1'] });
      await connect(res, accepting.url);
      const wildcard = await startEchoServer(res, { allowedClients: ['127.*'] });
      await connect(res, wildcard.url);
    });

    it('close() closes every client with 1001, then emits close and calls back; a second close() errs', async () => {
      const { wss, url } = await startEchoServer(res);
      const a = await connect(res, url);
      const b = await connect(res, url);
      const closes = [closed(a), closed(b)];
      const events: string[] = [];
      a.on('close', () => events.push('client a'));
      b.on('close', () => events.push('client b'));
      wss.on('close', () => events.push('server close event'));
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      events.push('callback');
      for (const c of await Promise.all(closes)) expect(c.code).to.equal(1001);
      expect(events.slice(-2)).to.deep.equal(['server close event', 'callback']);
      expect(events.slice(0, 2).sort()).to.deep.equal(['client a', 'client b']);
      expect(wss.lifecycle).to.equal('stopped');
      const error = await new Promise<Error | undefined>((resolve) => wss.close(resolve));
      expect(error).to.be.instanceOf(Error);
      expect(error!.message).to.equal('The server is not running');
      // The port is free again.
      const refused = await clientError(new WebSocket(url));
      expect(refused.code).to.equal('ECONNREFUSED');
    });

    it('close() on a server attached to an http server leaves the http server running', async () => {
      const server = res.netServer(http.createServer((_req, response) => response.end('still here')));
      const port = await listen(server);
      const wss = new WebSocketServer({ server });
      await connect(res, `ws://127.0.0.1:${port}`);
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      expect(server.listening).to.equal(true);
      const body = await new Promise<string>((resolve) => http.get(`http://127.0.0.1:${port}/`, (r) => r.on('data', (d: Buffer) => resolve(d.toString()))));
      expect(body).to.equal('still here');
    });

    it('the WebSocket option makes every server-side connection an instance of the given subclass', async () => {
      class Tagged extends WebSocket {
        tag(): string {
          return `tagged:${this.protocol || 'none'}`;
        }
      }
      const { wss, url } = await startServer(res, { WebSocket: Tagged });
      const { server } = await connectPair(res, wss, url);
      expect(server).to.be.instanceOf(Tagged);
      expect((server as Tagged).tag()).to.equal('tagged:none');
      server.send('from a subclass');
    });

    it('close() detaches from an existing http server: no listener of ours is left on it', async () => {
      const server = res.netServer(http.createServer());
      await listen(server);
      const before = ['upgrade', 'listening', 'error'].map((event) => server.listenerCount(event));
      const wss = new WebSocketServer({ server });
      expect(server.listenerCount('upgrade')).to.equal(before[0]! + 1);
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      expect(['upgrade', 'listening', 'error'].map((event) => server.listenerCount(event))).to.deep.equal(before);
    });

    it('a plain HTTP request to the port gets 426 Upgrade Required', async () => {
      const { port } = await startServer(res);
      const status = await new Promise<number>((resolve) => http.get(`http://127.0.0.1:${port}/`, (r) => (r.resume(), resolve(r.statusCode!))));
      expect(status).to.equal(426);
    });
  });

  describe('TLS (wss)', () => {
    let dir: string;
    let pki: { caCert: Buffer; serverKey: Buffer; serverCert: Buffer; clientKey: Buffer; clientCert: Buffer; strangerKey: Buffer; strangerCert: Buffer };

    before(function () {
      this.timeout(30000);
      dir = mkdtempSync(join(tmpdir(), 'wirestate-tls-'));
      const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
      // The server's certificate: self-signed, for localhost and 127.0.0.1.
      openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', 'server.key', '-out', 'server.crt');
      // A test CA and a client certificate signed by it; a stranger's certificate signed by no one we trust.
      openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=wirestate test CA', '-keyout', 'ca.key', '-out', 'ca.crt');
      openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=test client', '-keyout', 'client.key', '-out', 'client.csr');
      openssl('x509', '-req', '-in', 'client.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-out', 'client.crt');
      openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=stranger', '-keyout', 'stranger.key', '-out', 'stranger.crt');
      const read = (name: string) => readFileSync(join(dir, name));
      pki = {
        caCert: read('ca.crt'),
        serverKey: read('server.key'),
        serverCert: read('server.crt'),
        clientKey: read('client.key'),
        clientCert: read('client.crt'),
        strangerKey: read('stranger.key'),
        strangerCert: read('stranger.crt'),
      };
    });

    after(() => rmSync(dir, { recursive: true, force: true }));

    it('a server with key/cert speaks wss; a client trusting the certificate connects and echoes', async () => {
      const { wss, port } = await startEchoServer(res, { key: pki.serverKey, cert: pki.serverCert });
      const connection = nextConnection(wss);
      const ws = await connect(res, `wss://localhost:${port}`, [], { ca: pki.serverCert });
      const { ws: server } = await connection;
      expect((server as unknown as { _upgradeReq: http.IncomingMessage })._upgradeReq!.socket).to.have.property('encrypted', true);
      server.on('message', () => {});
      ws.send('secret');
      expect((await nextMessage(ws)).data.toString()).to.equal('secret');
      const clientClosed = closed(ws);
      ws.close(1000, 'tls bye');
      expect(await clientClosed).to.deep.equal({ code: 1000, reason: 'tls bye' });
    });

    it('a client that does not trust the certificate fails; rejectUnauthorized: false connects anyway', async () => {
      const { port } = await startEchoServer(res, { key: pki.serverKey, cert: pki.serverCert });
      const error = await clientError(new WebSocket(`wss://localhost:${port}`));
      expect(error.code).to.equal('DEPTH_ZERO_SELF_SIGNED_CERT');
      await connect(res, `wss://127.0.0.1:${port}`, [], { rejectUnauthorized: false });
    });

    it('client-certificate authentication: a certificate signed by the CA connects, none or a stranger fails', async () => {
      const server = res.netServer(https.createServer({ key: pki.serverKey, cert: pki.serverCert, ca: pki.caCert, requestCert: true, rejectUnauthorized: true }));
      const port = await listen(server);
      const wss = res.server(
        new WebSocketServer({
          server,
          verifyClient: (info: { req: http.IncomingMessage; secure: boolean; data?: unknown }) => {
            const socket = info.req.socket as TLSSocket;
            info.data = socket.getPeerCertificate().subject?.CN;
            return info.secure && socket.authorized;
          },
        }),
      );
      const connection = nextConnection(wss);
      const url = `wss://localhost:${port}`;
      await connect(res, url, [], { ca: pki.serverCert, key: pki.clientKey, cert: pki.clientCert });
      expect((await connection).ws.data).to.equal('test client');

      const anonymous = await clientError(new WebSocket(url, { ca: pki.serverCert }));
      expect(anonymous.code ?? anonymous.message).to.match(/ECONNRESET|ERR_SSL|certificate|socket hang up/i);
      const stranger = await clientError(new WebSocket(url, { ca: pki.serverCert, key: pki.strangerKey, cert: pki.strangerCert }));
      expect(stranger.code ?? stranger.message).to.match(/ECONNRESET|ERR_SSL|certificate|socket hang up/i);
      expect(wss.clients!.size).to.equal(1);
    });
  });

  describe('client features', () => {
    it('url, protocol and extensions', async () => {
      const { url } = await startServer(res);
      const ws = res.client(new WebSocket(`${url}/path?q=1`, 'proto'));
      expect(ws.url).to.equal(`${url}/path?q=1`);
      expect(ws.protocol).to.equal('');
      await once(ws, 'open');
      expect(ws.protocol).to.equal('proto');
      expect(ws.extensions).to.equal('');
      expect([WebSocket.CONNECTING, WebSocket.OPEN, WebSocket.CLOSING, WebSocket.CLOSED]).to.deep.equal([0, 1, 2, 3]);
      expect([ws.CONNECTING, ws.OPEN, ws.CLOSING, ws.CLOSED]).to.deep.equal([0, 1, 2, 3]);
    });

    it('rejects an invalid URL and invalid subprotocols synchronously', () => {
      expect(() => new WebSocket('ftp://127.0.0.1')).to.throw(SyntaxError);
      expect(() => new WebSocket('ws://127.0.0.1/#frag')).to.throw(SyntaxError);
      expect(() => new WebSocket('ws://127.0.0.1', ['a', 'a'])).to.throw(SyntaxError);
      expect(() => new WebSocket('ws://127.0.0.1', 'bad proto')).to.throw(SyntaxError);
    });

    it('headers and origin reach the server', async () => {
      const { wss, url } = await startServer(res);
      const connection = nextConnection(wss);
      await connect(res, url, [], { headers: { 'X-Api-Key': 'k1', Cookie: 'a=b' }, origin: 'https://app.example' });
      const { req } = await connection;
      expect(req.headers['x-api-key']).to.equal('k1');
      expect(req.headers.cookie).to.equal('a=b');
      expect(req.headers.origin).to.equal('https://app.example');
    });

    it("'upgrade' carries the 101 response; 'unexpected-response' a refusal", async () => {
      const { url } = await startServer(res, { path: '/only' });
      const ws = res.client(new WebSocket(`${url}/only`));
      const upgrade = once(ws, 'upgrade');
      await once(ws, 'open');
      const [response] = (await upgrade) as [http.IncomingMessage];
      expect(response.headers.upgrade).to.equal('websocket');
      const refused = await refusedWith(new WebSocket(`${url}/elsewhere`));
      expect(refused.status).to.equal(400);
    });

    describe('redirects', () => {
      async function redirector(target: (req: http.IncomingMessage) => string): Promise<number> {
        const server = res.netServer(
          http.createServer((req, response) => {
            response.writeHead(302, { Location: target(req) });
            response.end();
          }),
        );
        // A ws client's request is an upgrade request: Node routes it to 'upgrade', answered here by hand.
        server.on('upgrade', (req, socket) => {
          socket.end(`HTTP/1.1 302 Found\r\nLocation: ${target(req)}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
        });
        return listen(server);
      }

      it('followRedirects: a 302 to the WebSocket server is followed', async () => {
        const { url } = await startEchoServer(res);
        const port = await redirector(() => `${url}/landed`);
        const ws = res.client(new WebSocket(`ws://127.0.0.1:${port}/start`, { followRedirects: true }));
        const redirected = once(ws, 'redirect');
        await once(ws, 'open');
        expect((await redirected)[0]).to.equal(`${url}/landed`);
        ws.send('after redirect');
        expect((await nextMessage(ws)).data.toString()).to.equal('after redirect');
      });

      it('maxRedirects: a redirect loop ends with WS_ERR_TOO_MANY_REDIRECTS', async () => {
        let hops = 0;
        let port = 0;
        port = await redirector(() => {
          hops++;
          return `ws://127.0.0.1:${port}/again`;
        });
        const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { followRedirects: true, maxRedirects: 3 });
        const error = await clientError(ws);
        expect(error.code).to.equal('WS_ERR_TOO_MANY_REDIRECTS');
        expect(error.message).to.equal('Maximum redirects exceeded');
        expect(hops).to.equal(4);
      });

      it('without followRedirects, a 302 is an unexpected response', async () => {
        const { url } = await startEchoServer(res);
        const port = await redirector(() => url);
        const refused = await refusedWith(new WebSocket(`ws://127.0.0.1:${port}/`));
        expect(refused.status).to.equal(302);
      });
    });
  });

  describe('createWebSocketStream', () => {
    it('a Duplex over a connection: what is written is sent, messages are read, end() closes', async () => {
      const { wss, url } = await startServer(res);
      wss.on('connection', (ws: WebSocket) => {
        const duplex = createWebSocketStream(ws);
        duplex.pipe(duplex); // echo through the stream API
      });
      const ws = res.client(new WebSocket(url));
      const duplex = createWebSocketStream(ws, { encoding: 'utf8' } as never);
      duplex.write('written before open');
      const [chunk] = await once(duplex, 'data');
      expect(chunk).to.equal('written before open');
      const clientClosed = closed(ws);
      duplex.end();
      expect((await clientClosed).code).to.equal(1005);
    });
  });

  describe('robustness', () => {
    it('a server without error listeners survives a client that breaks the protocol', async () => {
      const { wss, port, url } = await startEchoServer(res);
      const connection = nextConnection(wss);
      const { socket, reader } = await rawClient(res, port);
      await connection;
      socket.write(frame(0x3, 'reserved opcode'));
      expect((await reader.closeFrame()).code).to.equal(1002);
      const ws = await connect(res, url);
      ws.send('alive');
      expect((await nextMessage(ws)).data.toString()).to.equal('alive');
    });

    it('data written after a close frame is not delivered', async () => {
      const { wss, port } = await startServer(res);
      const connection = nextConnection(wss);
      const { socket, reader } = await rawClient(res, port);
      const { ws: server } = await connection;
      const got: string[] = [];
      server.on('message', (data: Buffer) => got.push(data.toString()));
      const serverClosed = closed(server);
      socket.write(Buffer.concat([frame(0x1, 'before'), frame(0x8, closeBody(1000, 'end')), frame(0x1, 'after')]));
      expect((await reader.closeFrame()).code).to.equal(1000);
      socket.end();
      expect(await serverClosed).to.deep.equal({ code: 1000, reason: 'end' });
      expect(got).to.deep.equal(['before']);
    });
  });
});
