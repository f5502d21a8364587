/** The wirestate echo server of the benchmark: the drop-in ws API, default options. */
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from '../../runtime/index.js';
import { deflateRequested, runServer } from './common.js';

await runServer('wirestate', async () => {
  const wss = new WebSocketServer({
    port: 0,
    host: '127.0.0.1',
    ...(deflateRequested ? { perMessageDeflate: true } : {}),
    // The live view, on its own loopback port, when the bench asks for the inspect-on variant.
    ...(process.env.BENCH_WIRESTATE_INSPECT === '1' ? { inspect: { port: 0 } } : {}),
  });
  wss.on('connection', (ws) => {
    ws.on('message', (data: unknown, isBinary: boolean) => ws.send(data, { binary: isBinary }));
    ws.on('error', () => {});
  });
  wss.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', reject);
  });
  return {
    port: (wss.address() as AddressInfo).port,
    connections: () => wss._connections.size,
    
  };
});
