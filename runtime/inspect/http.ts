/**
 * The inspector's transport adapter: one HTTP server (the only file of runtime/inspect that imports
 * `http`) serving the page's static files and the diagrams generated from the spec, and a WebSocket
 * endpoint at `/ws`, served by wirestate's own WebSocketServer (noServer + handleUpgrade), over
 * which the page receives JSON messages. The live inspector (index.ts) and the trace replay
 * (replay.ts) both serve the same page through it; they differ only in what they send.
 *
 * The inspector exposes connection details, so besides binding to loopback by default it refuses
 * requests whose Host header names another host while bound to loopback (DNS rebinding) and
 * WebSocket upgrades from pages of another origin (cross-site WebSocket hijacking).
 */
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from '../server.js';
import type { WebSocket } from '../websocket.js';

/** The page's files (served as they are: no build step) and the diagrams, by URL path. */
const pageDir = new URL('../../../runtime/inspect/page/', import.meta.url);
const diagramDir = new URL('../../../docs/diagrams/', import.meta.url);
const FILES: Record<string, { url: URL; type: string }> = {
  '/': { url: new URL('index.html', pageDir), type: 'text/html; charset=utf-8' },
  '/index.html': { url: new URL('index.html', pageDir), type: 'text/html; charset=utf-8' },
  '/inspector.js': { url: new URL('inspector.js', pageDir), type: 'text/javascript; charset=utf-8' },
  '/inspector.css': { url: new URL('inspector.css', pageDir), type: 'text/css; charset=utf-8' },
  '/diagrams/connection.svg': { url: new URL('connection.svg', diagramDir), type: 'image/svg+xml' },
  '/diagrams/server.svg': { url: new URL('server.svg', diagramDir), type: 'image/svg+xml' },
};

/** A page that stops reading is disconnected (it reconnects and gets a fresh snapshot) rather than buffered for without bound. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

export interface PageServerOptions {
  port: number;
  host: string;
  /** Called for each page that connects to `/ws`, to send it what it needs first. */
  onClient: (client: WebSocket) => void;
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

function isLoopback(host: string): boolean {
  return LOOPBACK_HOSTS.has(host) || host.startsWith('127.');
}

/** The host name of a Host header or an origin's host (`[::1]:80` → `[::1]`, `a:1` → `a`). */
function hostnameOf(hostHeader: string): string {
  if (hostHeader.startsWith('[')) return hostHeader.slice(0, hostHeader.indexOf(']') + 1);
  const colon = hostHeader.lastIndexOf(':');
  return colon === -1 ? hostHeader : hostHeader.slice(0, colon);
}

export class PageServer {
  readonly http: http.Server;
  readonly clients = new Set<WebSocket>();
  private readonly _wss: WebSocketServer;
  private readonly _options: PageServerOptions;
  private _url: string | null = null;
  private _closed = false;

  constructor(options: PageServerOptions) {
    this._options = options;
    this._wss = new WebSocketServer({ noServer: true, maxPayload: 4096 });
    this.http = http.createServer((req, res) => this._serve(req, res));
    this.http.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this._upgrade(req, socket, head));
  }

  /** `http://host:port/` once listening. */
  get url(): string | null {
    return this._url;
  }

  listen(): Promise<string> {
    return new Promise((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(this._options.port, this._options.host, () => {
        this.http.removeListener('error', reject);
        // Closed while the listener was being bound: stop now rather than keep the process alive.
        if (this._closed) {
          this.http.close();
          reject(new Error('the inspector was closed before it listened'));
          return;
        }
        const { port } = this.http.address() as AddressInfo;
        const host = this._options.host.includes(':') ? `[${this._options.host}]` : this._options.host;
        this._url = `http://${host}:${port}/`;
        resolve(this._url);
      });
    });
  }

  /** Sends one message to every connected page (serialized once). */
  broadcast(message: object): void {
    if (this.clients.size === 0) return;
    const data = JSON.stringify(message);
    for (const client of this.clients) this.sendTo(client, data);
  }

  sendTo(client: WebSocket, message: object | string): void {
    if (client.readyState !== client.OPEN) return;
    if (client.bufferedAmount > MAX_BUFFERED_BYTES) {
      client.close(1013, 'inspector page too slow: reconnect');
      return;
    }
    client.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** Closes every page's WebSocket (1001) and the HTTP server. */
  close(): Promise<void> {
    this._closed = true;
    return new Promise((resolve) => {
      for (const client of this.clients) client.close(1001, 'inspector stopped');
      this._wss.close(() => undefined);
      if (!this.http.listening) return resolve();
      this.http.close(() => resolve());
      this.http.closeIdleConnections();
      // Pages that do not answer the close promptly are cut off, so that stopping never hangs.
      setTimeout(() => {
        for (const client of this.clients) client.terminate();
        this.http.closeAllConnections();
      }, 1000).unref();
    });
  }

  private _hostAllowed(req: http.IncomingMessage): boolean {
    if (!isLoopback(this._options.host)) return true;
    const host = req.headers.host;
    return host !== undefined && isLoopback(hostnameOf(host));
  }

  private async _serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (!this._hostAllowed(req)) return this._reply(res, 403, 'text/plain', 'forbidden host');
    if (req.method !== 'GET' && req.method !== 'HEAD') return this._reply(res, 405, 'text/plain', 'method not allowed');
    const path = (req.url ?? '/').split('?')[0]!;
    const file = FILES[path];
    if (!file) return this._reply(res, 404, 'text/plain', 'not found');
    try {
      const body = await readFile(file.url);
      this._reply(res, 200, file.type, req.method === 'HEAD' ? null : body, body.length);
    } catch {
      const hint = path.startsWith('/diagrams/') ? `${path.slice(10)} has not been generated: run \`make generate\` (needs Graphviz)` : 'not found';
      this._reply(res, 404, 'text/plain', hint);
    }
  }

  private _reply(res: http.ServerResponse, status: number, type: string, body: Buffer | string | null, length?: number): void {
    res.writeHead(status, {
      'Content-Type': type,
      'Content-Length': length ?? Buffer.byteLength(body ?? ''),
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
    });
    res.end(body ?? undefined);
  }

  private _upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = (req.url ?? '/').split('?')[0];
    const origin = req.headers.origin;
    let refusal: string | null = null;
    if (path !== '/ws') refusal = '404 Not Found';
    else if (!this._hostAllowed(req)) refusal = '403 Forbidden';
    else if (origin !== undefined) {
      // Browsers always send Origin; only a page served by this inspector may read the stream ("null" included: sandboxed frames).
      let originHost: string | null = null;
      try {
        originHost = new URL(origin).host;
      } catch {
        originHost = null;
      }
      if (originHost !== req.headers.host) refusal = '403 Forbidden';
    }
    if (refusal) {
      socket.on('error', () => socket.destroy());
      socket.end(`HTTP/1.1 ${refusal}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    this._wss.handleUpgrade(req, socket, head, (client) => {
      this.clients.add(client);
      client.on('close', () => this.clients.delete(client));
      client.on('error', () => undefined);
      this._options.onClient(client);
    });
  }
}
