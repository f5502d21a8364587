/**
 * A bounded load test: 2,000 connections open, exchange messages and close in churn on loopback,
 * at most 200 at a time, half of them compressed, ending every way a connection can end (closed by
 * the client or by the server, terminated by either, failed on a protocol error). Afterwards
 * nothing is left behind: the process's active handles and timers are back to what they were
 * (process.getActiveResourcesInfo()), the server's connection set is empty, no listener was added
 * to the HTTP server for good, no zlib context is open — and once the server is closed, not even its
 * own listening socket remains.
 */
import { expect } from 'chai';
import type http from 'node:http';
import { WebSocket, type WebSocketServer } from '../../runtime/index.js';
import { liveZlibContexts } from '../../runtime/extensions/permessage-deflate.js';
import { Resources, closed, nextMessage, once, startServer } from '../helpers/sockets.js';

const res = new Resources();
afterEach(() => res.closeAll());

const TOTAL = 2000;
const CONCURRENCY = 200;

/** Active resources by type (TCPSocketWrap, TCPServerWrap, Timeout, …), counted. */
function resources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo()) counts[type] = (counts[type] ?? 0) + 1;
  return counts;
}

function listenerCounts(emitter: NodeJS.EventEmitter): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const name of emitter.eventNames()) counts[String(name)] = emitter.listenerCount(name);
  return counts;
}

/**
 * Polls until `test` holds (the last TCP closes and timer clean-ups land a few ticks after 'close').
 * Its own timers are unref'd so that they do not count among the resources it compares.
 */
async function settle(test: () => boolean, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (test()) return true;
    if (Date.now() > deadline) return false;
    await new Promise<void>((resolve) => setTimeout(resolve, 10).unref());
  }
}

describe('churn: 2,000 connections on loopback, nothing left behind', function () {
  this.timeout(60_000);

  it(`opens, uses and closes ${TOTAL} connections, ${CONCURRENCY} at a time; handles, timers and listeners return to the baseline`, async () => {
    // Mocha arms this test's own timeout once the test function has returned its promise: count from then.
    await new Promise((resolve) => setImmediate(resolve));
    const before = resources();
    const zlibBefore = liveZlibContexts();
    const { wss, url } = await startServer(res, { perMessageDeflate: { threshold: 0 }, closeTimeout: 2000 });
    const httpServer = (wss as unknown as { _servers: http.Server[] })._servers[0]!;
    const serverListeners = listenerCounts(httpServer);
    const baseline = resources();
    const wssListeners = listenerCounts(wss);

    let serverSideClosed = 0;
    const serverCloseCodes = new Map<number, number>();
    wss.on('connection', (ws: WebSocket) => {
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        const text = data.toString();
        if (text === 'server: close') ws.close(4000, 'asked to');
        else if (text === 'server: terminate') ws.terminate();
        else ws.send(data, { binary: isBinary });
      });
      ws.on('close', (code: number) => {
        serverSideClosed++;
        serverCloseCodes.set(code, (serverCloseCodes.get(code) ?? 0) + 1);
      });
    });

    const clientCloseCodes = new Map<number, number>();
    const one = async (i: number) => {
      const ws = res.client(new WebSocket(url, { perMessageDeflate: i % 2 === 0 ? { threshold: 0 } : false }));
      await once(ws, 'open', 20000);
      for (let k = 0; k < 3; k++) {
        ws.send(k === 1 ? Buffer.from([i & 0xff, k]) : `message ${k} of connection ${i}`);
        await nextMessage(ws, 20000);
      }
      const ended = closed(ws, 20000);
      switch (i % 5) {
        case 0:
          ws.close(1000, 'done');
          break;
        case 1:
          ws.send('server: close');
          break;
        case 2:
          ws.terminate();
          break;
        case 3:
          ws.send('server: terminate');
          break;
        case 4:
          // An unmasked frame from a client: the server fails the connection (1002).
          ws.send('unmasked', { mask: false });
          break;
      }
      const { code } = await ended;
      clientCloseCodes.set(code, (clientCloseCodes.get(code) ?? 0) + 1);
    };

    const started = Date.now();
    let next = 0;
    let peak = 0;
    const worker = async () => {
      while (next < TOTAL) {
        const i = next++;
        await one(i);
        peak = Math.max(peak, wss._connections.size);
      }
    };
    await Promise.all([...Array(CONCURRENCY).keys()].map(worker));
    const elapsed = Date.now() - started;

    expect(await settle(() => serverSideClosed === TOTAL), 'every server-side connection closed').to.equal(true);
    expect(elapsed, 'churn duration (ms)').to.be.lessThan(50_000);
    expect(peak).to.be.at.most(CONCURRENCY + 5);
    // The client of a failed connection hears the server's 1002; the server, having failed it, reports 1006.
    expect(Object.fromEntries(clientCloseCodes)).to.deep.equal({ 1000: TOTAL / 5, 4000: TOTAL / 5, 1002: TOTAL / 5, 1006: (2 * TOTAL) / 5 });
    expect(Object.fromEntries(serverCloseCodes)).to.deep.equal({ 1000: TOTAL / 5, 4000: TOTAL / 5, 1006: (3 * TOTAL) / 5 });

    // Nothing left: the connection set, the clients set, zlib contexts, listeners, handles, timers.
    expect(wss._connections.size).to.equal(0);
    expect(wss.clients.size).to.equal(0);
    await settle(() => liveZlibContexts() === zlibBefore);
    expect(liveZlibContexts(), 'zlib contexts').to.equal(zlibBefore);
    expect(listenerCounts(httpServer)).to.deep.equal(serverListeners);
    expect(listenerCounts(wss)).to.deep.equal({ ...wssListeners, connection: (wssListeners.connection ?? 0) + 1 });
    const connections = await new Promise<number>((resolve, reject) => httpServer.getConnections((error, count) => (error ? reject(error) : resolve(count))));
    expect(connections).to.equal(0);
    await settle(() => JSON.stringify(resources()) === JSON.stringify(baseline));
    expect(resources(), 'active resources with the server still listening').to.deep.equal(baseline);

    // And once the server is closed, not even its listening socket is left.
    await new Promise<void>((resolve) => (wss as WebSocketServer).close(() => resolve()));
    await settle(() => JSON.stringify(resources()) === JSON.stringify(before));
    expect(resources(), 'active resources once the server is closed').to.deep.equal(before);
  });
});
