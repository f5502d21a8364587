/**
 * WebSocketServer, as ws names it: binds a port (or attaches to existing http/https servers, or
 * runs with noServer and handleUpgrade), validates upgrade requests (runtime/handshake), runs the
 * application's verifyClient / handleProtocols, and completes the opening handshake of each
 * connection. Its own lifecycle (idle → listening → shuttingDown → stopped) is the generated
 * server machine; each connection's is the connection machine.
 */
import { EventEmitter } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { createActor, type Actor } from 'xstate';
import { serverMachine } from '../generated/server.machine.generated.js';
import { protocolError, type WebSocketProtocolError } from './errors.js';
import { buildAcceptHeaders, buildRejectResponse, checkHeaderLimits, selectSubprotocol, serializeResponseHead, validateUpgradeRequest } from './handshake/server.js';
import { normalizeOptions, type ServerOptions } from './options.js';
import { WebSocket, type LifecycleObserver } from './websocket.js';
import { acceptOffer, PerMessageDeflate, type DeflateConfig } from './extensions/permessage-deflate.js';
import { maybeInspect } from './inspect/index.js';

export interface VerifyClientInfo {
  origin: string | undefined;
  req: http.IncomingMessage;
  secure: boolean;
  /** Set this to attach data to the connection: it becomes `ws.data` (a wirestate extension). */
  data?: unknown;
}

type VerifyClientCallback = (result: boolean, code?: number, message?: string, headers?: Record<string, string>) => void;
type ServerHostAction = 'bindListener' | 'emitListening' | 'emitServerError' | 'stopAccepting' | 'closeAllConnections' | 'emitClose';

const drivenServerMachine = serverMachine.provide({
  actions: Object.fromEntries(
    (['bindListener', 'emitListening', 'emitServerError', 'stopAccepting', 'closeAllConnections', 'emitClose'] as ServerHostAction[]).map((name) => [
      name,
      ({ context }: { context: { host: unknown } }) => (context.host as WebSocketServer)[`_${name}`](),
    ]),
  ) as never,
  guards: {
    noConnectionsLeft: ({ context }) => (context.host as WebSocketServer)._connections.size === 0,
  },
});

export class WebSocketServer extends EventEmitter {
  /** The canonical options this server runs with (after normalization of the ws-style input). */
  readonly options: Required<ServerOptions>;
  /** The connected clients, when clientTracking is on (ws: undefined otherwise). */
  readonly clients: Set<WebSocket>;
  /** Every connection still open or closing: what a graceful shutdown waits for. */
  readonly _connections = new Set<WebSocket>();
  private readonly _actor: Actor<typeof drivenServerMachine>;
  private readonly _servers: (http.Server | https.Server)[] = [];
  private readonly _ownsServer: boolean;
  /** What this server added to each http server it listens through, removed again when it stops accepting. */
  private readonly _detach = new Map<http.Server | https.Server, () => void>();
  private _accepting = true;
  private _bindError: Error | null = null;
  private _closeCallbacks: ((error?: Error) => void)[] = [];
  _lifecycleObserver: LifecycleObserver | null = null;

  constructor(options: Record<string, unknown>, callback?: () => void) {
    super();
    this.options = normalizeOptions('ws', 'server', options);
    const o = this.options;
    const modes = [o.port !== undefined && o.port !== null, o.server !== undefined && o.server !== null, o.noServer === true].filter(Boolean).length;
    if (modes !== 1) throw new TypeError('One and only one of the "port", "server", or "noServer" options must be specified');
    this.clients = new Set();
    if (o.clientTracking === false) (this as { clients: Set<WebSocket> | undefined }).clients = undefined;
    this._actor = createActor(drivenServerMachine, { input: { role: 'server', host: this } }) as Actor<typeof drivenServerMachine>;
    this._actor.start();
    // The live view (the inspect setting): off by default, and then nothing is recorded.
    maybeInspect(this);

    if (o.port !== undefined && o.port !== null) {
      const server = this._createServer();
      this._servers.push(server);
      this._ownsServer = true;
      if (callback) this.once('listening', callback);
      this._attach(server);
      this._actor.send({ type: 'LISTEN_REQUESTED' });
    } else {
      this._ownsServer = false;
      if (o.server) {
        const servers = Array.isArray(o.server) ? o.server : [o.server];
        for (const server of servers as (http.Server | https.Server)[]) {
          this._servers.push(server);
          this._attach(server, true);
        }
      }
      this._actor.send({ type: 'ATTACHED' });
    }
  }

  /** The server machine's state: `idle`, `binding`, `listening`, `shuttingDown`, `stopped`. */
  get lifecycle(): string {
    return String(this._actor.getSnapshot().value);
  }

  address(): AddressInfo | string | null {
    if (this.options.noServer) throw new Error('The server is operating in "noServer" mode');
    return this._servers[0]?.address() ?? null;
  }

  private _createServer(): http.Server | https.Server {
    const o = this.options;
    const tls = o.useTls === true || ((o.tlsKey && o.tlsCert) || o.tlsPfx) ? true : false;
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
      // A plain HTTP request to a WebSocket-only server (RFC 6455 section 4.2.2: 426 names the
      // upgrade). Like every refused handshake, the connection is closed after the answer: a
      // server that speaks nothing but WebSocket has no reason to keep an HTTP connection alive.
      const body = http.STATUS_CODES[426]!;
      res.writeHead(426, { 'Content-Length': Buffer.byteLength(body), 'Content-Type': 'text/plain', Upgrade: 'websocket', Connection: 'close' });
      res.end(body);
    };
    // The opening handshake's request must arrive within handshakeTimeout (slowloris), RFC 6455
    // section 4.1: Node answers a request still incomplete after headersTimeout with 408 and closes
    // it, but only checks every connectionsCheckingInterval (30 s by default) — so check at least
    // twice per timeout.
    const timeouts: http.ServerOptions =
      o.handshakeTimeout > 0
        ? { headersTimeout: o.handshakeTimeout, requestTimeout: o.handshakeTimeout, connectionsCheckingInterval: Math.max(10, Math.min(30_000, Math.floor(o.handshakeTimeout / 2))) }
        : {};
    // maxHeaderSize is Node's parser limit here: a larger head is answered 431 and closed by Node
    // itself, before an 'upgrade' event (handleUpgrade checks again for servers it does not own).
    if (o.maxHeaderSize) timeouts.maxHeaderSize = o.maxHeaderSize;
    const server = tls
      ? https.createServer(
          {
            ...timeouts,
            key: o.tlsKey as string | Buffer | undefined,
            cert: o.tlsCert as string | Buffer | undefined,
            pfx: o.tlsPfx as string | Buffer | undefined,
            ca: o.tlsCa as string | Buffer | undefined,
            passphrase: o.tlsPassphrase,
            ciphers: o.tlsCipherList,
            requestCert: o.tlsRequestClientCert === true,
            rejectUnauthorized: o.tlsRequestClientCert === true,
          },
          handler,
        )
      : http.createServer(timeouts, handler);
    // Node keeps at most maxHeadersCount fields and drops the rest without a word: keep one more
    // than maxHeaderCount so that handleUpgrade sees the excess and answers 431.
    server.maxHeadersCount = o.maxHeaderCount > 0 ? o.maxHeaderCount + 1 : 0;
    return server;
  }

  /** Listens for upgrade requests on `server` (and, for a server the application owns, forwards its listening and error events). */
  private _attach(server: http.Server | https.Server, forwardEvents = false): void {
    const onUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      this.handleUpgrade(req, socket, head, (ws) => this.emit('connection', ws, req));
    };
    const onListening = () => this.emit('listening');
    const onError = (error: Error) => this.emit('error', error);
    server.on('upgrade', onUpgrade);
    if (forwardEvents) {
      server.on('listening', onListening);
      server.on('error', onError);
    }
    this._detach.set(server, () => {
      server.removeListener('upgrade', onUpgrade);
      server.removeListener('listening', onListening);
      server.removeListener('error', onError);
    });
  }

  /** ws: does this server handle the request's path? Override for custom routing. */
  shouldHandle(req: http.IncomingMessage): boolean {
    const path = this.options.path;
    if (!path) return true;
    const index = req.url?.indexOf('?') ?? -1;
    const pathname = index !== -1 ? req.url!.slice(0, index) : req.url;
    return pathname === path;
  }

  /** Completes (or rejects) the opening handshake of an upgrade request; `callback(ws, req)` on success. */
  handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, callback: (ws: WebSocket, req: http.IncomingMessage) => void): void {
    socket.on('error', swallowSocketError);
    if (!this._accepting) return this._refuse(socket, req, protocolError('tooManyConnections', 'the server is shutting down'));
    // Too many or too large header fields: 431 (RFC 6585 section 5), before reading any of them.
    const tooLarge = checkHeaderLimits(req, { maxHeaderSize: this.options.maxHeaderSize ?? 0, maxHeaderCount: this.options.maxHeaderCount ?? 0 });
    if (tooLarge) return this._refuse(socket, req, tooLarge);
    const validated = validateUpgradeRequest(req);
    if (!validated.ok) return this._refuse(socket, req, validated.error);
    if (!this.shouldHandle(req)) return this._refuse(socket, req, protocolError('pathNotHandled', req.url));
    // Reading remoteAddress is a system call (getpeername): only when an allow-list needs it.
    const allowed = this.options.allowedClients;
    if (allowed && allowed.length > 0) {
      const remote = req.socket.remoteAddress ?? '';
      if (!isAllowed(remote, allowed)) return this._refuse(socket, req, protocolError('clientNotAllowed', remote));
    }
    if (this.options.maxConnections > 0 && this._connections.size >= this.options.maxConnections) return this._refuse(socket, req, protocolError('tooManyConnections'));

    // ws's `WebSocket` option: the class of server-side connections, a subclass of ours.
    const Class = (this.options.webSocketClass as unknown as typeof WebSocket | undefined) ?? WebSocket;
    const ws = Class._serverSide(this.options, socket, req);
    ws._lifecycleObserver = this._lifecycleObserver;
    this._connections.add(ws);
    ws._onFinal = () => {
      this._connections.delete(ws);
      this.clients?.delete(ws);
      this._actor.send({ type: 'CONNECTION_CLOSED' });
    };
    const { key, protocols, origin } = validated.upgrade;

    const complete = (data: unknown) => {
      if (ws.readyState !== WebSocket.CONNECTING) return; // timed out or closed meanwhile
      if (!socket.readable || !socket.writable) {
        socket.destroy();
        return;
      }
      let protocol: string | undefined;
      if (protocols.length > 0) {
        const handleProtocols = this.options.handleProtocols as ((set: Set<string>, req: http.IncomingMessage) => string | false) | undefined;
        const chosen = selectSubprotocol(protocols, handleProtocols as never, req);
        protocol = chosen === false ? undefined : chosen;
      }
      // RFC 7692 section 5: accept the first acceptable permessage-deflate offer when enabled.
      const deflateSetting = this.options.perMessageDeflate as boolean | DeflateConfig | undefined;
      const accepted = deflateSetting ? acceptOffer(validated.upgrade.extensions, deflateSetting === true ? {} : deflateSetting) : undefined;
      const headers = buildAcceptHeaders(key, protocol, accepted?.response);
      this.emit('headers', headers, req);
      socket.write(serializeResponseHead(headers));
      ws.data = data;
      ws._onServerOpen = (opened) => {
        this.clients?.add(opened);
        callback(opened, req);
      };
      const deflate = accepted ? new PerMessageDeflate(accepted.params, 'server', deflateSetting === true ? {} : (deflateSetting as DeflateConfig), this.options.maxPayload) : null;
      ws._open(protocol ?? '', deflate ? deflate.describe() : {}, head, deflate);
    };
    const reject = (code: number, message: string | undefined, headers: Record<string, string> | undefined) => {
      if (ws.readyState !== WebSocket.CONNECTING) return;
      const error = protocolError('clientRejected', message);
      socket.end(buildRejectResponse(code, message, headers));
      socket.once('finish', () => ws._dispatch({ type: 'HANDSHAKE_FAILED', errorId: error.id }));
      this._emitClientError(error, socket, req);
    };

    const verifyClient = this.options.verifyClient as ((info: VerifyClientInfo, cb?: VerifyClientCallback) => boolean | void) | undefined;
    if (!verifyClient) return complete(undefined);
    const info: VerifyClientInfo = {
      origin,
      req,
      secure: Boolean((req.socket as TLSSocket).authorized || (req.socket as TLSSocket).encrypted),
    };
    try {
      if (verifyClient.length >= 2) {
        verifyClient(info, (result, code = 401, message, headers) => (result ? complete(info.data) : reject(code, message, headers)));
      } else if (verifyClient(info)) complete(info.data);
      else reject(401, undefined, undefined);
    } catch (error) {
      reject(500, undefined, undefined);
      this.emit('error', error);
    }
  }

  private _emitClientError(error: WebSocketProtocolError, socket: Duplex, req: http.IncomingMessage): void {
    if (this.listenerCount('wsClientError') > 0) this.emit('wsClientError', error, socket, req);
  }

  /** Answers a request that never becomes a connection with its HTTP status, then closes the socket. */
  private _refuse(socket: Duplex, req: http.IncomingMessage, error: WebSocketProtocolError): void {
    this._emitClientError(error, socket, req);
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const extra: Record<string, string> = error.id === 'unsupportedVersion' ? { 'Sec-WebSocket-Version': '13' } : {};
    socket.once('finish', () => socket.destroy());
    socket.end(buildRejectResponse(error.status ?? 400, error.message, extra));
  }

  /** Shuts down: no new connections, every open one closed with 1001, then 'close' and the callback. */
  close(callback?: (error?: Error) => void): void {
    if (this.lifecycle === 'stopped') {
      if (callback) process.nextTick(callback, new Error('The server is not running'));
      return;
    }
    if (callback) this._closeCallbacks.push(callback);
    this._actor.send({ type: 'CLOSE_REQUESTED' });
  }

  // ------------------------------------------------------------------ server machine actions

  _bindListener(): void {
    const server = this._servers[0]!;
    const onError = (error: Error) => {
      this._bindError = error;
      this._actor.send({ type: 'LISTEN_FAILED' });
    };
    server.once('error', onError);
    server.listen(this.options.port, this.options.host, this.options.backlog, () => {
      server.removeListener('error', onError);
      server.on('error', (error) => this.emit('error', error));
      this._actor.send({ type: 'LISTENING' });
    });
  }

  _emitListening(): void {
    queueMicrotask(() => this.emit('listening'));
  }

  _emitServerError(): void {
    const error = this._bindError;
    queueMicrotask(() => this.emit('error', error));
  }

  _stopAccepting(): void {
    this._accepting = false;
    for (const detach of this._detach.values()) detach();
    this._detach.clear();
    if (this._ownsServer) for (const server of this._servers) if (server.listening) server.close();
  }

  _closeAllConnections(): void {
    // Every connection's machine decides what a close means in its state: a closing handshake when
    // open, an aborted handshake when still connecting, nothing more when already closing.
    for (const ws of [...this._connections]) ws.close(1001, 'server shutting down');
  }

  _emitClose(): void {
    queueMicrotask(() => {
      const callbacks = this._closeCallbacks;
      this._closeCallbacks = [];
      const finish = () => {
        this.emit('close');
        for (const cb of callbacks) cb();
      };
      // Wait for an owned listener to finish closing so that its port is free when 'close' fires.
      const owned = this._ownsServer ? this._servers.filter((s) => s.listening) : [];
      if (owned.length === 0) finish();
      else {
        let left = owned.length;
        for (const s of owned) s.close(() => --left === 0 && finish());
      }
    });
  }
}

function swallowSocketError(this: Duplex): void {
  this.destroy();
}

/** IPWorks AllowedClients: exact addresses or host names, with `*` wildcards (e.g. `192.168.*`). */
function isAllowed(remote: string, allowed: string[] | undefined): boolean {
  if (!allowed || allowed.length === 0) return true;
  const address = remote.startsWith('::ffff:') ? remote.slice(7) : remote;
  return allowed.some((pattern) => {
    const p = pattern.trim();
    if (p === '*' || p === address || p === remote) return true;
    if (!p.includes('*')) return (p === 'localhost' && (address === '127.0.0.1' || address === '::1'));
    const prefix = p.slice(0, p.indexOf('*'));
    return address.startsWith(prefix);
  });
}
