/**
 * The websocket (WebSocket-Node) echo server of the benchmark. Its defaults are kept (it fragments
 * outgoing messages over 16 KiB, and it always loads bufferutil and utf-8-validate, which are hard
 * dependencies of that package), except the receive limits: 64 KiB frames and 1 MiB messages by
 * default would refuse the 1 MiB scenario, so they are raised to ws's 100 MiB.
 */
import http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { packageVersion, runServer } from './common.js';

const require = createRequire(import.meta.url);

interface Message {
  type: 'utf8' | 'binary';
  utf8Data?: string;
  binaryData?: Buffer;
}
interface Connection {
  on(event: 'message', listener: (message: Message) => void): void;
  on(event: 'error' | 'close', listener: () => void): void;
  sendUTF(data: string): void;
  sendBytes(data: Buffer): void;
}
interface Request {
  origin: string | undefined;
  accept(protocol: string | null, origin: string | undefined): Connection;
}

await runServer('websocket', async () => {
  const { server: WebSocketServer } = require('websocket') as { server: new (options: object) => { on(event: 'request', l: (r: Request) => void): void; connections: unknown[] } };
  const httpServer = http.createServer((_req, res) => {
    res.writeHead(404);
    res.end();
  });
  const limit = 100 * 1024 * 1024;
  const wss = new WebSocketServer({ httpServer, autoAcceptConnections: false, maxReceivedFrameSize: limit, maxReceivedMessageSize: limit });
  wss.on('request', (request) => {
    const connection = request.accept(null, request.origin);
    connection.on('message', (message) => {
      if (message.type === 'utf8') connection.sendUTF(message.utf8Data!);
      else connection.sendBytes(message.binaryData!);
    });
    connection.on('error', () => {});
  });
  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (httpServer.address() as AddressInfo).port,
    connections: () => wss.connections.length,
    info: { version: packageVersion('websocket'), permessageDeflate: 'not supported by this library' },
  };
});
