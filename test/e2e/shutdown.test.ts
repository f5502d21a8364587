/**
 * Graceful shutdown loses nothing (RFC 6455 section 7.1.2: the close frame is the last frame an
 * endpoint sends; everything queued before it goes first):
 *
 * - thousands of messages queued with send() just before close() all reach the peer before the
 *   close frame, with and without compression, from either side;
 * - server.close() completes the closing handshake with every client within closeTimeout: a client
 *   that never answers the close is terminated at closeTimeout, and the server still stops.
 */
import { expect } from 'chai';
import zlib from 'node:zlib';
import { WebSocket } from '../../runtime/index.js';
import { Resources, closed, connectPair, nextConnection, rawClient, startServer, within } from '../helpers/sockets.js';

const res = new Resources();
afterEach(() => res.closeAll());

const COUNT = 5000;
const message = (i: number) => `message ${i} ${'.'.repeat(i % 97)}`;

/** Inflates the payloads of successive compressed messages through one context (RFC 7692 context takeover). */
async function inflateAll(payloads: Buffer[]): Promise<string[]> {
  const inflater = zlib.createInflateRaw();
  const out: string[] = [];
  for (const payload of payloads) {
    const chunks: Buffer[] = [];
    const onData = (chunk: Buffer) => chunks.push(chunk);
    inflater.on('data', onData);
    inflater.write(payload);
    inflater.write(Buffer.from([0, 0, 0xff, 0xff]));
    await new Promise<void>((resolve) => inflater.flush(() => resolve()));
    inflater.removeListener('data', onData);
    out.push(Buffer.concat(chunks).toString());
  }
  inflater.close();
  return out;
}

describe('graceful shutdown (e2e)', function () {
  this.timeout(20000);

  for (const compression of [false, true]) {
    const deflate = compression ? { perMessageDeflate: { threshold: 0 } } : {};
    describe(compression ? 'with permessage-deflate' : 'without compression', () => {
      it(`${COUNT} messages sent just before close() reach the peer, in order, before the close frame (server → raw client, on the wire)`, async () => {
        const { wss, port } = await startServer(res, deflate);
        const connection = nextConnection(wss);
        const { socket, reader } = await rawClient(res, port, '/', compression ? { 'Sec-WebSocket-Extensions': 'permessage-deflate' } : {});
        const { ws } = await connection;
        expect(ws.extensions).to.equal(compression ? 'permessage-deflate' : '');
        for (let i = 0; i < COUNT; i++) ws.send(message(i));
        ws.close(1000, 'all sent');
        const close = await reader.closeFrame(10000);
        expect([close.code, close.reason]).to.deep.equal([1000, 'all sent']);
        const frames = reader.frames;
        // Every message, then the close frame — last.
        expect(frames).to.have.length(COUNT + 1);
        expect(frames[COUNT]!.opcode).to.equal(0x8);
        const texts = compression ? await inflateAll(frames.slice(0, COUNT).map((f) => f.payload)) : frames.slice(0, COUNT).map((f) => f.payload.toString());
        expect(frames.slice(0, COUNT).every((f) => f.rsv === (compression ? 4 : 0))).to.equal(true);
        const wrong = texts.findIndex((t, i) => t !== message(i));
        expect(wrong, `message ${wrong}`).to.equal(-1);
        socket.end();
      });

      it(`${COUNT} messages sent just before close() all arrive before 'close' (wirestate client → wirestate server)`, async () => {
        const { wss, url } = await startServer(res, deflate);
        const { client, server } = await connectPair(res, wss, url, [], compression ? { perMessageDeflate: { threshold: 0 } } : {});
        const got: string[] = [];
        server.on('message', (data: Buffer) => got.push(data.toString()));
        const atClose = new Promise<number>((resolve) => server.once('close', () => resolve(got.length)));
        const clientClosed = closed(client, 10000);
        for (let i = 0; i < COUNT; i++) client.send(message(i));
        client.close(1000, 'done');
        expect(await within(atClose, 10000, "the server's close")).to.equal(COUNT);
        expect((await clientClosed).code).to.equal(1000);
        const wrong = got.findIndex((t, i) => t !== message(i));
        expect(wrong, `message ${wrong}`).to.equal(-1);
      });

      it('server.close(): what each client was sent arrives before 1001; every closing handshake completes within closeTimeout', async () => {
        const { wss, url } = await startServer(res, { ...deflate, closeTimeout: 2000 });
        // One at a time: connectPair takes the server's next connection.
        const pairs: Awaited<ReturnType<typeof connectPair>>[] = [];
        for (let i = 0; i < 20; i++) pairs.push(await connectPair(res, wss, url, [], compression ? { perMessageDeflate: true } : {}));
        const received = pairs.map(() => [] as string[]);
        const closes = pairs.map(({ client }, n) => {
          client.on('message', (data: Buffer) => received[n]!.push(data.toString()));
          return new Promise<{ code: number; count: number }>((resolve) => client.once('close', (code: number) => resolve({ code, count: received[n]!.length })));
        });
        for (const { server } of pairs) for (let i = 0; i < 250; i++) server.send(message(i));
        const started = Date.now();
        const stopped = new Promise<void>((resolve) => wss.close(() => resolve()));
        const results = await within(Promise.all(closes), 5000, 'every client to close');
        await within(stopped, 5000, 'the server to stop');
        expect(Date.now() - started).to.be.lessThan(2000);
        expect(results.filter((r) => r.code !== 1001 || r.count !== 250)).to.deep.equal([]);
        expect(pairs.every(({ server, client }) => server.lifecycle === 'closed' && client.lifecycle === 'closed')).to.equal(true);
        expect(wss._connections.size).to.equal(0);
        expect(wss.lifecycle).to.equal('stopped');
      });
    });
  }

  it('server.close() with a client that never answers the close: terminated at closeTimeout, the others close cleanly, the server stops', async () => {
    const CLOSE_TIMEOUT = 300;
    const { wss, url, port } = await startServer(res, { closeTimeout: CLOSE_TIMEOUT });
    const pairs: Awaited<ReturnType<typeof connectPair>>[] = [];
    for (let i = 0; i < 5; i++) pairs.push(await connectPair(res, wss, url));
    const connection = nextConnection(wss);
    // A raw client that reads but never answers a close frame and never closes TCP.
    const { reader } = await rawClient(res, port);
    const { ws: silent } = await connection;
    const silentClosed = closed(silent, 3000);
    const clientsClosed = pairs.map(({ client }) => closed(client, 3000));
    const started = Date.now();
    const stopped = new Promise<void>((resolve) => wss.close(() => resolve()));
    expect((await reader.closeFrame()).code).to.equal(1001);
    for (const c of await Promise.all(clientsClosed)) expect(c.code).to.equal(1001);
    expect((await silentClosed).code).to.equal(1006);
    await within(stopped, 3000, 'the server to stop');
    const elapsed = Date.now() - started;
    expect(elapsed).to.be.within(CLOSE_TIMEOUT - 20, CLOSE_TIMEOUT + 700);
    expect([silent.lifecycle, silent.lifecycleDetail]).to.deep.equal(['terminated', 'closing handshake timed out']);
    expect(pairs.every(({ server }) => server.lifecycle === 'closed')).to.equal(true);
    await reader.end();
    expect(wss._connections.size).to.equal(0);
    expect(silent.readyState).to.equal(WebSocket.CLOSED);
  });
});
