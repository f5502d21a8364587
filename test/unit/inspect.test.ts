/**
 * The inspector without a browser: its memory bounds (ring buffer of steps per connection, a cap on
 * closed connections kept), that nothing is hooked when the `inspect` option is off, the observer
 * chaining, the trace format and recording, and what its HTTP server serves and refuses.
 * (test/browser/inspect.test.ts drives the page itself in Chromium.)
 */
import { expect } from 'chai';
import { EventEmitter } from 'node:events';
import http from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket, WebSocketServer } from '../../runtime/index.js';
import type { LifecycleStep } from '../../runtime/websocket.js';
import { attachInspector, inspectorOf, maybeInspect, parseTrace, RingBuffer, TraceFormatError, type Inspector } from '../../runtime/inspect/index.js';

/** Just what the inspector reads of a WebSocket, so that steps can be pushed by the thousand. */
class FakeSocket extends EventEmitter {
  lifecycle = 'connecting';
  lifecycleState: unknown = 'connecting';
  protocol = 'chat';
  remoteAddress = '127.0.0.9';
  createdAt = Date.now();
  stats = { messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0 };
  _lifecycleObserver: unknown = null;
}

function step(wss: WebSocketServer, ws: FakeSocket, to: string, event = 'TEST', state: unknown = to): void {
  const s: LifecycleStep = { from: ws.lifecycle, to, event, state: state as LifecycleStep['state'], at: Date.now() };
  ws.lifecycle = to;
  ws.lifecycleState = state;
  wss._lifecycleObserver!(ws as unknown as WebSocket, s);
}

const OPEN = { open: { reading: 'flowing', keepalive: 'waiting', idle: 'disabled' } };

function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), body }));
      })
      .on('error', reject);
  });
}

function closeServer(wss: WebSocketServer): Promise<void> {
  return new Promise((resolve) => wss.close(() => resolve()));
}

describe('inspector', () => {
  describe('RingBuffer', () => {
    it('keeps the last `capacity` items, oldest first, and counts the ones it dropped', () => {
      const ring = new RingBuffer<number>(50);
      for (let i = 0; i < 10_000; i++) ring.push(i);
      expect(ring.size).to.equal(50);
      expect(ring.dropped).to.equal(9_950);
      expect(ring.toArray()).to.deep.equal(Array.from({ length: 50 }, (_, i) => 9_950 + i));
      expect(ring.last()).to.equal(9_999);
      // The backing array never grows past the capacity: that is the memory bound.
      expect((ring as unknown as { _items: unknown[] })._items.length).to.equal(50);
    });

    it('holds fewer items than its capacity without wrapping', () => {
      const ring = new RingBuffer<string>(3);
      expect(ring.toArray()).to.deep.equal([]);
      expect(ring.last()).to.equal(undefined);
      ring.push('a');
      ring.push('b');
      expect(ring.toArray()).to.deep.equal(['a', 'b']);
      expect(ring.dropped).to.equal(0);
    });

    it('refuses a capacity that is not a positive integer', () => {
      expect(() => new RingBuffer(0)).to.throw(RangeError);
      expect(() => new RingBuffer(1.5)).to.throw(RangeError);
    });
  });

  describe('recording', () => {
    let wss: WebSocketServer;
    let inspector: Inspector;
    afterEach(async () => {
      await inspector?.close();
      await closeServer(wss);
    });

    it('keeps `history` steps of a connection that steps 10,000 times (history 50 → 50 kept)', () => {
      wss = new WebSocketServer({ noServer: true });
      inspector = attachInspector(wss, { history: 50, serve: false });
      const ws = new FakeSocket();
      step(wss, ws, 'open', 'HANDSHAKE_SUCCEEDED', OPEN);
      for (let i = 1; i < 10_000; i++) step(wss, ws, 'open', `PING_${i}`, OPEN);
      const [view] = inspector.connections();
      expect(view!.steps).to.have.length(50);
      expect(view!.dropped).to.equal(9_950);
      expect(view!.steps[0]!.event).to.equal('PING_9950');
      expect(view!.steps[49]!.event).to.equal('PING_9999');
      expect(view!.state).to.equal('open');
      expect(view!.value).to.deep.equal(OPEN);
    });

    it('keeps at most `retainClosed` closed connections, dropping the oldest, with their close code and reason', () => {
      wss = new WebSocketServer({ noServer: true });
      inspector = attachInspector(wss, { retainClosed: 2, serve: false });
      const sockets = Array.from({ length: 5 }, () => new FakeSocket());
      const live = new FakeSocket();
      step(wss, live, 'open', 'HANDSHAKE_SUCCEEDED', OPEN);
      sockets.forEach((ws, i) => {
        step(wss, ws, 'open', 'HANDSHAKE_SUCCEEDED', OPEN);
        step(wss, ws, 'closing.closedByPeer', 'CLOSE_RECEIVED', { closing: 'closedByPeer' });
        step(wss, ws, 'closed', 'SOCKET_ENDED');
        ws.emit('close', 4000 + i, Buffer.from(`bye ${i}`));
      });
      const views = inspector.connections();
      expect(views.map((v) => v.id)).to.deep.equal([1, 5, 6]);
      expect(views[0]!.endedAt).to.equal(null);
      expect(views[2]!.close).to.include({ code: 4004, reason: 'bye 4' });
      expect(views[2]!.endedAt).to.be.a('number');
      expect(views[2]!.steps.map((s) => s.to)).to.deep.equal(['open', 'closing.closedByPeer', 'closed']);
    });

    it('chains the observer that was there before, and puts it back when closed', async () => {
      wss = new WebSocketServer({ noServer: true });
      const seen: string[] = [];
      const previous = (_ws: WebSocket, s: LifecycleStep) => void seen.push(s.to);
      wss._lifecycleObserver = previous;
      inspector = attachInspector(wss, { serve: false });
      step(wss, new FakeSocket(), 'open', 'HANDSHAKE_SUCCEEDED', OPEN);
      expect(seen).to.deep.equal(['open']);
      expect(inspector.connections()).to.have.length(1);
      expect(inspectorOf(wss)).to.equal(inspector);
      await inspector.close();
      expect(wss._lifecycleObserver).to.equal(previous);
      expect(inspectorOf(wss)).to.equal(null);
    });

    it('writes every step and the close as JSON lines that parseTrace reads back', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'wirestate-trace-'));
      try {
        const file = join(dir, 'trace.jsonl');
        wss = new WebSocketServer({ noServer: true });
        inspector = attachInspector(wss, { serve: false, record: file });
        const ws = new FakeSocket();
        step(wss, ws, 'open', 'HANDSHAKE_SUCCEEDED', OPEN);
        step(wss, ws, 'closing.closedByPeer', 'CLOSE_RECEIVED', { closing: 'closedByPeer' });
        step(wss, ws, 'closed', 'SOCKET_ENDED');
        ws.stats = { messagesIn: 1, messagesOut: 1, bytesIn: 5, bytesOut: 5 };
        ws.emit('close', 4001, Buffer.from('bye'));
        await inspector.close();
        const lines = parseTrace(readFileSync(file, 'utf8'), file);
        expect(lines.map((l) => `${l.event} ${l.from}->${l.to}`)).to.deep.equal([
          'HANDSHAKE_SUCCEEDED connecting->open',
          'CLOSE_RECEIVED open->closing.closedByPeer',
          'SOCKET_ENDED closing.closedByPeer->closed',
          'close closed->closed',
        ]);
        expect(lines[0]).to.include({ connection: 1, remoteAddress: '127.0.0.9', protocol: 'chat' });
        expect(lines[0]!.state).to.deep.equal(OPEN);
        expect(lines[1]).to.not.have.property('remoteAddress');
        expect(lines[3]).to.include({ code: 4001, reason: 'bye' });
        expect(lines[3]!.stats).to.deep.equal({ messagesIn: 1, messagesOut: 1, bytesIn: 5, bytesOut: 5 });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('parseTrace', () => {
    it('names the file and line of a bad line', () => {
      const good = JSON.stringify({ connection: 1, event: 'E', from: 'a', to: 'b', state: 'b', at: 1 });
      expect(parseTrace(`${good}\n\n${good}\r\n`)).to.have.length(2);
      const cases: [string, RegExp][] = [
        ['{not json', /t\.jsonl:2: not JSON/],
        ['[1]', /t\.jsonl:2: not a JSON object/],
        [JSON.stringify({ connection: 0, event: 'E', from: 'a', to: 'b', state: 'b', at: 1 }), /"connection" must be a positive integer/],
        [JSON.stringify({ connection: 1, event: 'E', from: 'a', to: 'b', state: ['b'], at: 1 }), /"state"/],
        [JSON.stringify({ connection: 1, event: 'E', from: 'a', to: 'b', state: 'b', at: 'x' }), /"at"/],
        [JSON.stringify({ connection: 1, event: 'close', from: 'a', to: 'b', state: 'b', at: 1, code: 'x' }), /"code"/],
      ];
      for (const [bad, message] of cases) {
        expect(() => parseTrace(`${good}\n${bad}\n`, 't.jsonl')).to.throw(TraceFormatError, message);
      }
    });
  });

  describe('the inspect option', () => {
    it('hooks nothing and records nothing when off', async () => {
      const wss = new WebSocketServer({ noServer: true });
      expect(maybeInspect(wss)).to.equal(null);
      expect(wss._lifecycleObserver).to.equal(null);
      expect(inspectorOf(wss)).to.equal(null);
      await closeServer(wss);
    });

    it('attaches an inspector with the spec defaults when on, which stops with the server', async () => {
      const wss = new WebSocketServer({ noServer: true, inspect: true });
      // Whether or not the constructor already calls maybeInspect, the server ends with one inspector.
      const inspector = inspectorOf(wss) ?? maybeInspect(wss)!;
      expect(inspector.options).to.include({ host: '127.0.0.1', port: 0, history: 200, retainClosed: 100 });
      expect(wss._lifecycleObserver).to.be.a('function');
      const url = await inspector.ready;
      expect(url).to.match(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      const closed = new Promise((resolve) => inspector.once('close', resolve));
      await closeServer(wss);
      await closed;
      expect(wss._lifecycleObserver).to.equal(null);
    });
  });

  it('closed before its HTTP server listens, it does not keep listening', async () => {
    const wss = new WebSocketServer({ noServer: true });
    const inspector = attachInspector(wss, { port: 0 });
    await inspector.close();
    expect(await inspector.ready).to.equal(null);
    expect(inspector.url).to.equal(null);
    await closeServer(wss);
  });

  describe('HTTP server', () => {
    let wss: WebSocketServer;
    let inspector: Inspector;
    let url: string;
    before(async () => {
      wss = new WebSocketServer({ noServer: true });
      inspector = attachInspector(wss, { port: 0 });
      url = (await inspector.ready)!;
    });
    after(async () => {
      await inspector.close();
      await closeServer(wss);
    });

    it('serves the page, its script and style, and the diagrams generated from the spec', async () => {
      const page = await get(url);
      expect(page.status).to.equal(200);
      expect(page.type).to.match(/^text\/html/);
      expect(page.body).to.contain('inspector.js');
      expect(page.body).to.not.match(/https?:\/\//, 'no external resource: the page works offline');
      expect((await get(url + 'inspector.js')).type).to.match(/^text\/javascript/);
      expect((await get(url + 'inspector.css')).type).to.match(/^text\/css/);
      const svg = await get(url + 'diagrams/connection.svg');
      expect(svg.type).to.equal('image/svg+xml');
      for (const id of ['connecting', 'open_reading_flowing', 'closing_closedByPeer', 'closed', 'terminated', 'cluster_open']) expect(svg.body).to.contain(`<title>${id}</title>`);
      expect((await get(url + 'diagrams/server.svg')).body).to.contain('<title>listening</title>');
      expect((await get(url + '../package.json')).status).to.equal(404);
      expect((await get(url + 'nothing')).status).to.equal(404);
    });

    it('refuses another Host while bound to loopback (DNS rebinding)', async () => {
      expect((await get(url, { Host: 'attacker.example:80' })).status).to.equal(403);
    });

    it('streams a hello and a snapshot, and refuses WebSocket upgrades from another origin', async () => {
      const wsUrl = url.replace('http', 'ws') + 'ws';
      const client = new WebSocket(wsUrl);
      const messages: { type: string }[] = [];
      await new Promise<void>((resolve, reject) => {
        client.on('message', (data: Buffer) => {
          messages.push(JSON.parse(String(data)));
          if (messages.length === 2) resolve();
        });
        client.on('error', reject);
      });
      expect(messages.map((m) => m.type)).to.deep.equal(['hello', 'snapshot']);
      expect(messages[0]).to.include({ mode: 'live', history: 200, retainClosed: 100 });
      client.close();

      const foreign = new WebSocket(wsUrl, { origin: 'http://attacker.example' });
      const status = await new Promise<number>((resolve) => {
        foreign.on('unexpected-response', (_req: unknown, res: http.IncomingMessage) => resolve(res.statusCode!));
        foreign.on('error', () => resolve(-1));
      });
      expect(status).to.equal(403);
    });
  });
});
