/**
 * The ws echo server of the benchmark, in two variants chosen by the bench:
 * - pure JavaScript: the project's dev dependency, started with WS_NO_BUFFER_UTIL=1 and
 *   WS_NO_UTF_8_VALIDATE=1 so that ws never loads its optional native helpers;
 * - native: ws loaded from bench/.native (BENCH_WS_PATH), where bufferutil and utf-8-validate sit
 *   beside it. The READY line lists the native addons actually loaded, so a variant that silently
 *   fell back to JavaScript shows up in the results.
 */
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import type { WebSocket as WsSocket, WebSocketServer as WsServer } from 'ws';
import { deflateRequested, loadedNativeAddons, packageVersion, runServer } from './common.js';

const require = createRequire(import.meta.url);
const modulePath = process.env.BENCH_WS_PATH || 'ws';

await runServer(process.env.BENCH_WS_PATH ? 'ws-native' : 'ws', async () => {
  const ws = require(modulePath) as { WebSocketServer: typeof WsServer };
  const wss = new ws.WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: deflateRequested });
  wss.on('connection', (socket: WsSocket) => {
    socket.on('message', (data: Buffer, isBinary: boolean) => socket.send(data as Buffer, { binary: isBinary }));
    socket.on('error', () => {});
  });
  wss.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', reject);
  });
  return {
    port: (wss.address() as AddressInfo).port,
    connections: () => wss.clients.size,
    info: {
      version: packageVersion(modulePath),
      module: require.resolve(modulePath),
      WS_NO_BUFFER_UTIL: process.env.WS_NO_BUFFER_UTIL ?? null,
      WS_NO_UTF_8_VALIDATE: process.env.WS_NO_UTF_8_VALIDATE ?? null,
      bufferutilLoaded: loadedNativeAddons().some((p) => p.includes('bufferutil')),
      utf8ValidateLoaded: loadedNativeAddons().some((p) => p.includes('utf-8-validate')),
    },
  };
});
