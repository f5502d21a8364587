/**
 * Interoperability with Python's `websockets` (Debian's python3-websockets, 10.4), in both
 * directions: a wirestate client against a Python echo server, and a Python client against a
 * wirestate echo server. The Python side (test/interop/python/) is remote-controlled: commands go
 * to its stdin, and what it saw comes back on stdout as JSON lines.
 *
 * `/usr/bin/python3` is used explicitly: the `python3` first on PATH may be another installation
 * without the module (the Makefile installs the Debian package).
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { WebSocket } from '../../runtime/index.js';
import { Resources, closed, nextMessage, once, startEchoServer, startServer, within } from '../helpers/sockets.js';
import { PYTHON, spawnPython, type PythonPeer } from '../helpers/python.js';


const res = new Resources();
afterEach(() => res.closeAll());

/** The bytes peer.py sends for send_large: byte i is i mod 251. */
function pattern(size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i++) out[i] = i % 251;
  return out;
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe('interop with Python websockets (python3-websockets)', function () {
  this.timeout(20000);

  before(function () {
    expect(existsSync(PYTHON), `${PYTHON} is missing`).to.equal(true);
  });

  describe('wirestate client → Python echo server', () => {
    async function pythonServer(maxSize?: number): Promise<{ peer: PythonPeer; url: string }> {
      const peer = spawnPython(res, 'echo_server.py', ['0', ...(maxSize ? [String(maxSize)] : [])]);
      const ready = await peer.next('ready', undefined, 10000);
      return { peer, url: `ws://127.0.0.1:${ready.port as number}` };
    }

    async function open() {
      const { peer, url } = await pythonServer();
      const ws = res.client(new WebSocket(url));
      await once(ws, 'open', 5000);
      await peer.next('open');
      return { peer, ws };
    }

    it('echoes text, binary, empty text and empty binary', async () => {
      const { peer, ws } = await open();
      ws.send('héllo from node ✓');
      const text = await nextMessage(ws);
      expect([text.data.toString(), text.isBinary]).to.deep.equal(['héllo from node ✓', false]);
      expect(await peer.next('message')).to.deep.include({ type: 'text', text: 'héllo from node ✓' });
      ws.send(Buffer.from([0, 255, 1]));
      const binary = await nextMessage(ws);
      expect([binary.data, binary.isBinary]).to.deep.equal([Buffer.from([0, 255, 1]), true]);
      ws.send('');
      const emptyText = await nextMessage(ws);
      expect([emptyText.data.length, emptyText.isBinary]).to.deep.equal([0, false]);
      ws.send(Buffer.alloc(0));
      const emptyBinary = await nextMessage(ws);
      expect([emptyBinary.data.length, emptyBinary.isBinary]).to.deep.equal([0, true]);
    });

    it('echoes a 5 MiB message', async () => {
      const { peer, ws } = await open();
      const big = pattern(5 * 1024 * 1024);
      ws.send(big);
      const { data } = await nextMessage(ws, 10000);
      expect(data.equals(big)).to.equal(true);
      expect(await peer.next('message')).to.deep.include({ type: 'binary', length: big.length, sha256: sha256(big) });
    });

    it('a message wirestate sends in fragments arrives whole; Python’s fragmented message arrives whole', async () => {
      const { peer, ws } = await open();
      ws.send('frag', { fin: false });
      ws.send('men', { fin: false });
      ws.send('ted ✓', { fin: true });
      expect(await peer.next('message')).to.deep.include({ type: 'text', text: 'fragmented ✓' });
      expect((await nextMessage(ws)).data.toString()).to.equal('fragmented ✓');
      const fromPython = nextMessage(ws);
      peer.command({ op: 'send_fragments', parts: ['01', '0203', '04'], binary: true });
      const { data, isBinary } = await fromPython;
      expect([data, isBinary]).to.deep.equal([Buffer.from([1, 2, 3, 4]), true]);
    });

    it('automatic fragmentation (fragmentOutgoingMessages) is reassembled by Python', async () => {
      const { peer, url } = await pythonServer();
      const ws = res.client(new WebSocket(url, { fragmentOutgoingMessages: true, fragmentationThreshold: 1000 }));
      await once(ws, 'open', 5000);
      const payload = pattern(10_500);
      ws.send(payload);
      expect(await peer.next('message')).to.deep.include({ length: payload.length, sha256: sha256(payload) });
    });

    it('ping/pong with payloads, both ways', async () => {
      const { peer, ws } = await open();
      const pong = once(ws, 'pong');
      ws.ping('node ping');
      expect(((await pong)[0] as Buffer).toString()).to.equal('node ping');
      const ping = once(ws, 'ping');
      peer.command({ op: 'ping', hex: Buffer.from('python ping').toString('hex') });
      expect(((await ping)[0] as Buffer).toString()).to.equal('python ping');
      expect(await peer.next('pong')).to.deep.include({ hex: Buffer.from('python ping').toString('hex') });
    });

    it('close from wirestate with a code and reason: both ends see them', async () => {
      const { peer, ws } = await open();
      const wsClosed = closed(ws, 5000);
      ws.close(4010, 'node closes ✓');
      expect(await wsClosed).to.deep.equal({ code: 4010, reason: 'node closes ✓' });
      expect(await peer.next('closed')).to.deep.include({ code: 4010, reason: 'node closes ✓' });
      expect(ws.lifecycle).to.equal('closed');
    });

    it('close from Python with a code and reason: both ends see them', async () => {
      const { peer, ws } = await open();
      const wsClosed = closed(ws, 5000);
      peer.command({ op: 'close', code: 1001, reason: 'python leaves' });
      expect(await wsClosed).to.deep.equal({ code: 1001, reason: 'python leaves' });
      expect(await peer.next('closed')).to.deep.include({ code: 1001, reason: 'python leaves' });
    });

    it('a subprotocol chosen by the Python server is reported', async () => {
      const { peer, url } = await pythonServer();
      const ws = res.client(new WebSocket(url, ['unknown.v9', 'chat.v2']));
      await once(ws, 'open', 5000);
      expect(ws.protocol).to.equal('chat.v2');
      expect(await peer.next('open')).to.deep.include({ subprotocol: 'chat.v2' });
    });

    it('a message over Python’s max_size is refused with 1009', async () => {
      const { url } = await pythonServer(1024);
      const ws = res.client(new WebSocket(url));
      await once(ws, 'open', 5000);
      const wsClosed = closed(ws, 5000);
      ws.send(Buffer.alloc(2048));
      expect((await wsClosed).code).to.equal(1009);
    });
  });

  describe('Python client → wirestate echo server', () => {
    async function pythonClient(options: Record<string, unknown> = {}, subprotocols = '') {
      const { wss, url } = await startEchoServer(res, options);
      const connection = once(wss, 'connection', 10000);
      const peer = spawnPython(res, 'client.py', [url, ...(subprotocols ? [subprotocols] : [])]);
      const [server] = (await connection) as [WebSocket];
      const opened = await peer.next('open', undefined, 10000);
      return { peer, server, opened };
    }

    it('echoes text, binary, empty text and empty binary', async () => {
      const { peer } = await pythonClient();
      peer.command({ op: 'send', text: 'héllo from python ✓' });
      expect(await peer.next('message')).to.deep.include({ type: 'text', text: 'héllo from python ✓' });
      peer.command({ op: 'send', hex: '00ff01' });
      expect(await peer.next('message')).to.deep.include({ type: 'binary', hex: '00ff01' });
      peer.command({ op: 'send', text: '' });
      expect(await peer.next('message')).to.deep.include({ type: 'text', length: 0 });
      peer.command({ op: 'send', hex: '' });
      expect(await peer.next('message')).to.deep.include({ type: 'binary', length: 0 });
    });

    it('echoes a 5 MiB message', async () => {
      const { peer, server } = await pythonClient();
      const size = 5 * 1024 * 1024;
      const received = nextMessage(server, 10000);
      peer.command({ op: 'send_large', size });
      expect((await received).data.equals(pattern(size))).to.equal(true);
      expect(await peer.next('message', undefined, 10000)).to.deep.include({ type: 'binary', length: size, sha256: sha256(pattern(size)) });
    });

    it('a fragmented message from Python arrives whole; one the server fragments arrives whole', async () => {
      const { peer, server } = await pythonClient({ fragmentOutgoingMessages: true, fragmentationThreshold: 3 });
      const received = nextMessage(server);
      peer.command({ op: 'send_fragments', parts: ['frag', 'men', 'ted ✓'] });
      expect((await received).data.toString()).to.equal('fragmented ✓');
      // The echo left the server in 3-byte frames, splitting the ✓ across two of them.
      expect(await peer.next('message')).to.deep.include({ type: 'text', text: 'fragmented ✓' });
      server.send('manual', { fin: false });
      server.send(' fragments', { fin: true });
      expect(await peer.next('message')).to.deep.include({ type: 'text', text: 'manual fragments' });
    });

    it('ping/pong with payloads, both ways', async () => {
      const { peer, server } = await pythonClient();
      const ping = once(server, 'ping');
      peer.command({ op: 'ping', hex: Buffer.from('from python').toString('hex') });
      expect(((await ping)[0] as Buffer).toString()).to.equal('from python');
      expect(await peer.next('pong')).to.deep.include({ hex: Buffer.from('from python').toString('hex') });
      const pong = once(server, 'pong');
      server.ping('from node');
      expect(((await pong)[0] as Buffer).toString()).to.equal('from node');
    });

    it('close from Python with a code and reason: both ends see them', async () => {
      const { peer, server } = await pythonClient();
      const serverClosed = closed(server, 5000);
      peer.command({ op: 'close', code: 4001, reason: 'python says bye ✓' });
      expect(await serverClosed).to.deep.equal({ code: 4001, reason: 'python says bye ✓' });
      expect(await peer.next('closed')).to.deep.include({ code: 4001, reason: 'python says bye ✓' });
      expect(server.lifecycle).to.equal('closed');
    });

    it('close from the wirestate server with a code and reason: both ends see them', async () => {
      const { peer, server } = await pythonClient();
      const serverClosed = closed(server, 5000);
      server.close(1000, 'node says bye');
      expect(await peer.next('closed')).to.deep.include({ code: 1000, reason: 'node says bye' });
      expect(await serverClosed).to.deep.equal({ code: 1000, reason: 'node says bye' });
    });

    it('server.close() shuts down with 1001 for the Python client', async () => {
      const { wss, url } = await startServer(res);
      const connection = once(wss, 'connection', 10000);
      const peer = spawnPython(res, 'client.py', [url]);
      await connection;
      await peer.next('open', undefined, 10000);
      const stopped = new Promise<void>((resolve) => wss.close(() => resolve()));
      expect(await peer.next('closed')).to.deep.include({ code: 1001 });
      await within(stopped, 5000, 'the server to stop');
    });

    it('subprotocol negotiation with handleProtocols', async () => {
      const { peer, server } = await pythonClient({ handleProtocols: (offered: Set<string>) => (offered.has('b') ? 'b' : false) }, 'a,b');
      expect(server.protocol).to.equal('b');
      const opened = peer.events.find((e) => e.event === 'open');
      expect(opened).to.deep.include({ subprotocol: 'b' });
    });

    it('a message over the server’s maxPayload: Python sees 1009', async () => {
      const { peer } = await pythonClient({ maxPayload: 1024 });
      peer.command({ op: 'send_large', size: 2048 });
      expect(await peer.next('closed')).to.deep.include({ code: 1009 });
    });
  });
});
