/**
 * The ceiling: a plain TCP echo server. It writes back every chunk it reads, with no framing at all,
 * so its CPU time per message is what this machine's kernel and Node's net layer cost by themselves.
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { runServer } from './common.js';

await runServer('tcp', async () => {
  let open = 0;
  const server = net.createServer((socket) => {
    open++;
    socket.setNoDelay(true);
    socket.on('data', (chunk) => socket.write(chunk));
    socket.on('end', () => socket.end());
    socket.on('error', () => socket.destroy());
    socket.on('close', () => open--);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return { port: (server.address() as AddressInfo).port, connections: () => open, info: { version: process.version } };
});
