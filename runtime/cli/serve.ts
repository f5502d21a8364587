/**
 * `wirestate serve` (what `make run` starts): an HTTP server on 127.0.0.1 that serves a page at `/`
 * from which a person can connect, send and watch messages, and a WebSocket endpoint at `/ws` that
 * echoes every message to its sender and broadcasts it to every other client. The inspector
 * (runtime/inspect) runs beside it, on the next port, showing every connection's lifecycle live;
 * `/inspect` on the demo server redirects there.
 */
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { WebSocketServer } from '../server.js';
import type { WebSocket } from '../websocket.js';
import { attachInspector, type Inspector, type InspectorOptions } from '../inspect/index.js';

export const usage = `usage: wirestate serve [--port N] [--host ADDR] [--inspect-port N] [--inspect-host ADDR] [--no-inspect] [--record FILE]

Starts the demo server (default 127.0.0.1:8080; the PORT environment variable also sets the port).
  /         a page to connect, send messages and see them
  /ws       the WebSocket endpoint: echoes to the sender, broadcasts to the others
  /inspect  redirects to the inspector: each connection's lifecycle, live

  --inspect-port N     port of the inspector (default: the demo's port + 1; 0 picks a free one)
  --inspect-host ADDR  address the inspector binds to (default 127.0.0.1)
  --no-inspect         do not start the inspector
  --record FILE        write every lifecycle step to FILE as JSON lines, for
                       \`wirestate viz --trace FILE --serve\``;

const pageUrl = new URL('../../../runtime/demo/index.html', import.meta.url);

export interface DemoServer {
  server: http.Server;
  wss: WebSocketServer;
  url: string;
  /** The inspector watching the demo's connections (null with `inspect: false`). */
  inspector: Inspector | null;
  /** The inspector page's URL. */
  inspectorUrl: string | null;
  close(): Promise<void>;
}

export interface DemoOptions {
  /** The inspector's options, or false for none. Default: on, on 127.0.0.1, port = the demo's port + 1 (0 when the demo's is 0). */
  inspect?: InspectorOptions | false;
}

export async function startDemoServer(port: number, host: string, options: DemoOptions = {}): Promise<DemoServer> {
  const page = readFileSync(pageUrl);
  let inspectorUrl: string | null = null;
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && (req.url === '/' || req.url === '/index.html')) {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': page.length, 'Cache-Control': 'no-store' });
      res.end(page);
      return;
    }
    if (req.method === 'GET' && req.url === '/inspect') {
      if (inspectorUrl) res.writeHead(302, { Location: inspectorUrl, 'Content-Length': 0 }).end();
      else res.writeHead(404, { 'Content-Type': 'text/plain' }).end('the inspector is off (wirestate serve --no-inspect)');
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
  const actualPort = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.removeListener('error', reject);
      resolve((server.address() as { port: number }).port);
    });
  });
  const url = `http://${host}:${actualPort}/`;
  let inspector: Inspector | null = null;
  if (options.inspect !== false) {
    inspector = attachInspector(wss, { port: port === 0 ? 0 : port + 1, ...options.inspect });
    try {
      inspectorUrl = await inspector.ready;
    } catch (error) {
      await inspector.close();
      await new Promise<void>((done) => wss.close(() => server.close(() => done())));
      throw new Error(`the inspector could not listen on port ${inspector.options.port}: ${(error as Error).message} (use --inspect-port or --no-inspect)`);
    }
  }
  return {
    server,
    wss,
    url,
    inspector,
    inspectorUrl,
    close: async () => {
      await new Promise<void>((done) => wss.close(() => server.close(() => done())));
      await inspector?.close();
    },
  };
}

export async function run(args: string[]): Promise<number> {
  let port = Number(process.env.PORT ?? 8080);
  let host = '127.0.0.1';
  let inspectPort: number | undefined;
  let inspectHost: string | undefined;
  let inspect = true;
  let record: string | undefined;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--port') port = Number(args[++i]);
    else if (args[i] === '--host') host = String(args[++i]);
    else if (args[i] === '--inspect-port') inspectPort = Number(args[++i]);
    else if (args[i] === '--inspect-host') inspectHost = String(args[++i]);
    else if (args[i] === '--no-inspect') inspect = false;
    else if (args[i] === '--record' && args[i + 1] !== undefined) record = String(args[++i]);
    else {
      console.error(`wirestate serve: unknown argument ${args[i]}\n${usage}`);
      return 2;
    }
  }
  for (const [name, value] of [['port', port], ['inspect-port', inspectPort ?? (port === 0 ? 0 : port + 1)]] as const) {
    if (!Number.isInteger(value) || value < 0 || value > 65535) {
      console.error(`wirestate serve: invalid ${name} ${value}`);
      return 2;
    }
  }
  if (record && !inspect) {
    console.error('wirestate serve: --record needs the inspector (drop --no-inspect)');
    return 2;
  }
  const inspectOptions: InspectorOptions = { ...(inspectPort !== undefined && { port: inspectPort }), ...(inspectHost && { host: inspectHost }), ...(record && { record }) };
  const demo = await startDemoServer(port, host, { inspect: inspect ? inspectOptions : false });
  console.log(`wirestate demo listening on ${demo.url} (WebSocket endpoint ${demo.url.replace('http', 'ws')}ws); Ctrl-C stops it`);
  if (demo.inspectorUrl) console.log(`inspector (every connection's lifecycle, live) on ${demo.inspectorUrl}`);
  if (record) console.log(`recording lifecycle steps to ${record}; replay: wirestate viz --trace ${record} --serve`);
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
