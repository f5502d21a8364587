/**
 * `wirestate serve` (what `make run` starts): an HTTP server on 127.0.0.1 that serves a page at `/`
 * from which a person can connect, send and watch messages, and a WebSocket endpoint at `/ws` that
 * echoes every message to its sender and broadcasts it to every other client.
 */
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { WebSocketServer } from '../server.js';
import type { WebSocket } from '../websocket.js';

export const usage = `usage: wirestate serve [--port N] [--host ADDR]

Starts the demo server (default 127.0.0.1:8080; the PORT environment variable also sets the port).
  /     a page to connect, send messages and see them
  /ws   the WebSocket endpoint: echoes to the sender, broadcasts to the others`;

const pageUrl = new URL('../../../runtime/demo/index.html', import.meta.url);

export interface DemoServer {
  server: http.Server;
  wss: WebSocketServer;
  url: string;
  close(): Promise<void>;
}

export function startDemoServer(port: number, host: string): Promise<DemoServer> {
  const page = readFileSync(pageUrl);
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && (req.url === '/' || req.url === '/index.html')) {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': page.length, 'Cache-Control': 'no-store' });
      res.end(page);
      return;
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('not found');
  });
  const wss = new WebSocketServer({ server, path: '/ws', keepalive: true });
  let nextId = 1;
  wss.on('connection', (ws: WebSocket, req) => {
    const id = nextId++;
    const address = req.socket.remoteAddress;
    console.log(`[${id}] open from ${address}${ws.protocol ? ` (subprotocol ${ws.protocol})` : ''}`);
    ws.on('lifecycle', (step) => console.log(`[${id}] ${step.from} -> ${step.to} (${step.event})`));
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      ws.send(data, { binary: isBinary });
      for (const client of wss.clients) {
        if (client !== ws && client.readyState === client.OPEN) client.send(data, { binary: isBinary });
      }
    });
    ws.on('close', (code: number, reason: Buffer) => console.log(`[${id}] closed ${code}${reason.length ? ` ${reason}` : ''}`));
    ws.on('error', (error: Error) => console.log(`[${id}] error: ${error.message}`));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const address = server.address() as { port: number };
      const url = `http://${host}:${address.port}/`;
      resolve({
        server,
        wss,
        url,
        close: () => new Promise<void>((done) => wss.close(() => server.close(() => done()))),
      });
    });
  });
}

export async function run(args: string[]): Promise<number> {
  let port = Number(process.env.PORT ?? 8080);
  let host = '127.0.0.1';
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--port') port = Number(args[++i]);
    else if (args[i] === '--host') host = String(args[++i]);
    else {
      console.error(`wirestate serve: unknown argument ${args[i]}\n${usage}`);
      return 2;
    }
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`wirestate serve: invalid port ${port}`);
    return 2;
  }
  const demo = await startDemoServer(port, host);
  console.log(`wirestate demo listening on ${demo.url} (WebSocket endpoint ${demo.url.replace('http', 'ws')}ws); Ctrl-C stops it`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      console.log('shutting down: closing every connection with 1001');
      demo.close().then(resolve);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}
