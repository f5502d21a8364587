/**
 * `wirestate/websocket`: the WebSocket-Node API (`require('websocket').server`) as a thin facade over
 * wirestate's runtime. Its users keep their code — `new WebSocketServer({ httpServer })`, the
 * `request` event with `accept()` / `reject()`, connections with `sendUTF`, `sendBytes`, `close`,
 * `drop` and `{ type: 'utf8', utf8Data }` messages — while the protocol underneath is wirestate's:
 * the generated machines decide every lifecycle step, and the configuration is normalized through
 * the generated `websocket` dialect schema, so option names, defaults and error messages are
 * WebSocket-Node's own (`maxReceivedMessageSize`, 1 MiB; `closeTimeout`, 5000 ms; …).
 *
 * What the facade does itself is what only this API has: the request object (parsed cookies and
 * extensions, X-Forwarded-For, accept with an origin and cookies), WebSocket-Node's close reason
 * bookkeeping (closeReasonCode / closeDescription), `drop()`, ping cancellation and frame events.
 *
 * Behaviours the runtime performs from the canonical settings (nothing re-implemented here):
 * keepalive / keepaliveInterval / keepaliveGracePeriod / dropConnectionOnKeepaliveTimeout (the
 * connection machine's keepalive region), closeTimeout (its closing timer), fragmentOutgoingMessages
 * / fragmentationThreshold (autoFragment), maxReceivedFrameSize / maxReceivedMessageSize (the frame
 * parser's limits, 1009 on excess), assembleFragments (the parser delivers frames instead of
 * messages) and disableNagleAlgorithm (noDelay).
 */
import { EventEmitter } from 'node:events';
import type http from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { parse as parseUrl, type UrlWithParsedQuery } from 'node:url';
import { Opcode, isSendableCloseCode } from '../../generated/protocol.generated.js';
import { dialectSchemas } from '../../generated/options.generated.js';
import type { ParsedFrame } from '../codec/parser.js';
import type { WebSocketProtocolError } from '../errors.js';
import { normalizeOptions } from '../options.js';
import type { WebSocket as RuntimeWebSocket, LifecycleStep } from '../websocket.js';
import { CLOSE_DESCRIPTIONS, Engine, sanitizeHeaderValue, truncateUtf8, type CanonicalServerSettings } from './engine.js';

type HttpServer = http.Server;
type VerifyCallback = (result: boolean, code?: number, message?: string, headers?: Record<string, string>) => void;

/** WebSocket-Node's server configuration, as its users write it (every option of the reference). */
export interface WebSocketServerConfig {
  /** The http.Server / https.Server instance(s) to attach to (required). */
  httpServer?: HttpServer | HttpServer[];
  /** Largest frame accepted, in bytes (64 KiB). */
  maxReceivedFrameSize?: number;
  /** Largest message accepted, summed over its fragments, in bytes (1 MiB). */
  maxReceivedMessageSize?: number;
  /** Split outgoing messages larger than fragmentationThreshold (true). */
  fragmentOutgoingMessages?: boolean;
  /** Largest outgoing frame payload when fragmenting (16 KiB). */
  fragmentationThreshold?: number;
  /** Ping every connection that has been quiet for keepaliveInterval (true). */
  keepalive?: boolean;
  /** ms (20000). */
  keepaliveInterval?: number;
  /** Drop a connection that stays silent for keepaliveGracePeriod after a keepalive ping (true). */
  dropConnectionOnKeepaliveTimeout?: boolean;
  /** ms (10000). */
  keepaliveGracePeriod?: number;
  /** Use TCP keep-alive probes instead of WebSocket pings (false). */
  useNativeKeepalive?: boolean;
  /** Deliver whole messages (true) or a `frame` event per frame (false). */
  assembleFragments?: boolean;
  /** Accept every request without a `request` event, with the first requested subprotocol (false). */
  autoAcceptConnections?: boolean;
  /** ms to wait for the peer's close frame after sending ours (5000). */
  closeTimeout?: number;
  /** Disable Nagle's algorithm (true). */
  disableNagleAlgorithm?: boolean;
  /** Ignore X-Forwarded-For when reporting remoteAddress (false: honour it). */
  ignoreXForwardedFor?: boolean;
  /** Parse Sec-WebSocket-Extensions into request.requestedExtensions (true). */
  parseExtensions?: boolean;
  /** Parse Cookie into request.cookies (true). */
  parseCookies?: boolean;
  /** wirestate extension: the clock the connection timers run on (tests pass a simulated one). */
  clock?: unknown;
  /** wirestate extension: the live lifecycle inspector. */
  inspect?: unknown;
}

/** The dialect's documented defaults, read from the generated schema (the spec is the one source). */
function dialectDefaults(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(dialectSchemas.websocket.server.properties as Record<string, { default?: unknown }>)) {
    if (schema.default !== undefined) out[name] = schema.default;
  }
  return out;
}

// ------------------------------------------------------------------ frames

/** A received frame, shaped like WebSocket-Node's WebSocketFrame (the `frame` event's argument). */
export class WebSocketFrame {
  static readonly CONTINUATION = 0x00;
  static readonly TEXT_FRAME = 0x01;
  static readonly BINARY_FRAME = 0x02;
  static readonly CONNECTION_CLOSE = 0x08;
  static readonly PING = 0x09;
  static readonly PONG = 0x0a;
  readonly rsv2 = false;
  readonly rsv3 = false;
  /** Frames a server receives are always masked (RFC 6455 section 5.1). */
  readonly mask = true;
  constructor(
    readonly fin: boolean,
    readonly opcode: number,
    readonly binaryPayload: Buffer,
    readonly rsv1 = false,
  ) {}
  get length(): number {
    return this.binaryPayload.length;
  }
  toString(): string {
    return `Opcode: ${this.opcode}, fin: ${this.fin}, length: ${this.length}, hasPayload: ${this.length > 0}, masked: ${this.mask}`;
  }
}

// ------------------------------------------------------------------ connection

export type ConnectionState = 'open' | 'peer_requested_close' | 'ending' | 'closed';

export interface WebSocketMessage {
  type: 'utf8' | 'binary';
  utf8Data?: string;
  binaryData?: Buffer;
}

/**
 * One accepted connection, as WebSocket-Node's WebSocketConnection: events `message`, `frame`
 * (assembleFragments false), `ping` (cancel, data), `pong`, `close` (reasonCode, description),
 * `error`, `drain`, `pause`, `resume`.
 */
export class WebSocketConnection extends EventEmitter {
  static readonly CLOSE_REASON_NORMAL = 1000;
  static readonly CLOSE_REASON_GOING_AWAY = 1001;
  static readonly CLOSE_REASON_PROTOCOL_ERROR = 1002;
  static readonly CLOSE_REASON_UNPROCESSABLE_INPUT = 1003;
  static readonly CLOSE_REASON_RESERVED = 1004;
  static readonly CLOSE_REASON_NOT_PROVIDED = 1005;
  static readonly CLOSE_REASON_ABNORMAL = 1006;
  static readonly CLOSE_REASON_INVALID_DATA = 1007;
  static readonly CLOSE_REASON_POLICY_VIOLATION = 1008;
  static readonly CLOSE_REASON_MESSAGE_TOO_BIG = 1009;
  static readonly CLOSE_REASON_EXTENSION_REQUIRED = 1010;
  static readonly CLOSE_REASON_INTERNAL_SERVER_ERROR = 1011;
  static readonly CLOSE_REASON_TLS_HANDSHAKE_FAILED = 1015;
  static readonly CLOSE_DESCRIPTIONS = CLOSE_DESCRIPTIONS;

  /** The TCP (or TLS) socket. */
  readonly socket: Socket;
  /** The accepted subprotocol, as passed to accept() (undefined when none). */
  readonly protocol: string | undefined;
  /** Negotiated extensions (WebSocket-Node negotiates none). */
  readonly extensions: unknown[] = [];
  /** The client's address (the first X-Forwarded-For entry unless ignoreXForwardedFor). */
  remoteAddress: string | undefined;
  remoteAddresses: string[];
  webSocketVersion: number;
  readonly config: Readonly<WebSocketServerConfig>;
  readonly maskOutgoingPackets = false;
  /** -1 until the connection closes (or close()/drop() is called); then the close code. */
  closeReasonCode = -1;
  closeDescription: string | null = null;
  closeEventEmitted = false;
  /** True while messages can be sent: false once either side started closing. */
  connected = true;
  state: ConnectionState = 'open';
  /** wirestate: the runtime connection underneath (its lifecycle, stats, …). */
  readonly wirestate: RuntimeWebSocket | null;
  private _closedByUs = false;
  private _protocolError: WebSocketProtocolError | null = null;
  private _fragmentOpcode = 0;

  /** @internal made by WebSocketRequest.accept() */
  constructor(ws: RuntimeWebSocket | null, request: WebSocketRequest, protocol: string | undefined, config: Readonly<WebSocketServerConfig>) {
    super();
    this.wirestate = ws;
    this.socket = request.socket;
    this.protocol = protocol;
    this.remoteAddress = request.remoteAddress;
    this.remoteAddresses = request.remoteAddresses;
    this.webSocketVersion = request.webSocketVersion;
    this.config = config;
    if (!ws) {
      // WebSocket-Node returns a connection even when the client hung up before accept() completed.
      this.connected = false;
      this.state = 'closed';
      process.nextTick(() => this.drop(1006, 'TCP connection lost before handshake completed.', true));
      return;
    }
    if (config.keepalive && config.useNativeKeepalive) {
      this.socket.setKeepAlive?.(true, config.keepaliveInterval ?? 20000);
    }
    this.socket.on('error', (error: Error) => {
      if (this.listenerCount('error') > 0) this.emit('error', error);
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.emit('message', isBinary ? { type: 'binary', binaryData: data } : { type: 'utf8', utf8Data: data.toString('utf8') });
    });
    ws.on('frame', (frame: ParsedFrame) => {
      if (frame.opcode !== Opcode.continuation) this._fragmentOpcode = frame.opcode;
      this.emit('frame', new WebSocketFrame(frame.fin, frame.opcode, frame.payload, frame.rsv1));
    });
    ws.on('ping', (data: Buffer) => {
      if (config.assembleFragments === false) this.emit('frame', new WebSocketFrame(true, Opcode.ping, data));
      // The engine runs with autoPong off so that a 'ping' listener may cancel the answer, as in
      // WebSocket-Node; RFC 6455 section 5.5.2 otherwise requires the pong, sent here.
      let cancelled = false;
      if (this.listenerCount('ping') > 0) this.emit('ping', () => (cancelled = true), data);
      if (!cancelled) this.pong(data);
    });
    ws.on('pong', (data: Buffer) => {
      if (config.assembleFragments === false) this.emit('frame', new WebSocketFrame(true, Opcode.pong, data));
      this.emit('pong', data);
    });
    ws.on('error', (error: WebSocketProtocolError) => {
      // WebSocket-Node drops the connection with the violation's close code rather than emitting 'error'.
      this._protocolError = error;
    });
    ws.on('drain', () => this.emit('drain'));
    ws.on('lifecycle', (step: LifecycleStep) => this._onLifecycle(step.to));
    ws.on('close', (code: number, reason: Buffer) => this._onClose(code, reason.toString('utf8')));
  }

  /** The state WebSocket-Node reports, derived from the connection machine's state. */
  private _onLifecycle(to: string): void {
    if (this.state === 'closed') return;
    if (to === 'closing.closedByPeer') {
      this.state = 'peer_requested_close';
      this.connected = false;
    } else if (to === 'closing.closedByUs') {
      this.state = 'ending';
      this.connected = false;
    } else if (to.startsWith('closing.') || to === 'closed' || to === 'terminated') {
      this.state = 'closed';
      this.connected = false;
    }
  }

  private _onClose(code: number, reason: string): void {
    this.connected = false;
    this.state = 'closed';
    if (this.closeEventEmitted) return;
    if (!this._closedByUs) {
      if (this._protocolError) {
        this.closeReasonCode = this._protocolError.closeCode;
        this.closeDescription = this._protocolError.message;
      } else if (code === 1006) {
        this.closeReasonCode = 1006;
        this.closeDescription = this.wirestate?.lifecycleDetail ?? 'Connection dropped by remote peer.';
      } else {
        this.closeReasonCode = code;
        this.closeDescription = reason !== '' ? reason : (CLOSE_DESCRIPTIONS[code] ?? '');
      }
    }
    this._emitClose();
  }

  private _emitClose(): void {
    if (this.closeEventEmitted) return;
    this.closeEventEmitted = true;
    this.emit('close', this.closeReasonCode, this.closeDescription);
  }

  /** Sends a Buffer as a binary message, anything else (through toString) as a text message. */
  send(data: unknown, cb?: (error?: Error) => void): void {
    if (Buffer.isBuffer(data)) this.sendBytes(data, cb);
    else if (data !== null && data !== undefined && typeof (data as { toString?: unknown }).toString === 'function') this.sendUTF(data, cb);
    else throw new Error('Data provided must either be a Node Buffer or implement toString()');
  }

  sendUTF(data: unknown, cb?: (error?: Error) => void): void {
    this._send(Buffer.from(String(data), 'utf8'), false, cb);
  }

  sendBytes(data: Buffer, cb?: (error?: Error) => void): void {
    if (!Buffer.isBuffer(data)) throw new Error('You must pass a Node Buffer object to WebSocketConnection.prototype.sendBytes()');
    this._send(data, true, cb);
  }

  private _send(payload: Buffer, binary: boolean, cb: ((error?: Error) => void) | undefined): void {
    const ws = this.wirestate;
    if (!ws) {
      if (cb) process.nextTick(cb, new Error('Connection is not open'));
      return;
    }
    ws.send(payload, { binary }, (error) => cb?.(error ?? undefined));
  }

  /** Sends a ping; data over 125 bytes is truncated, as WebSocket-Node does. */
  ping(data?: unknown): void {
    if (!this.wirestate || this.wirestate.readyState !== 1) return;
    let payload = data === undefined || data === null ? Buffer.alloc(0) : Buffer.isBuffer(data) ? data : Buffer.from(String(data), 'utf8');
    if (payload.length > 125) payload = payload.subarray(0, 125);
    this.wirestate.ping(payload);
  }

  pong(binaryPayload?: Buffer): void {
    if (!this.wirestate || this.wirestate.readyState !== 1) return;
    let payload = Buffer.isBuffer(binaryPayload) ? binaryPayload : Buffer.alloc(0);
    if (payload.length > 125) payload = payload.subarray(0, 125);
    this.wirestate.pong(payload);
  }

  /** Starts the closing handshake (default 1000); the socket is closed after the peer answers or closeTimeout. */
  close(reasonCode?: number, description?: string): void {
    if (!this.connected) return;
    const code = typeof reasonCode === 'number' ? reasonCode : WebSocketConnection.CLOSE_REASON_NORMAL;
    if (!isSendableCloseCode(code)) throw new Error(`Close code ${code} is not valid.`);
    const text = typeof description === 'string' ? description : (CLOSE_DESCRIPTIONS[code] ?? '');
    this.closeReasonCode = code;
    this.closeDescription = text;
    this._closedByUs = true;
    this.state = 'ending';
    this.connected = false;
    this.wirestate!.close(code, truncateUtf8(text, 123));
  }

  /**
   * Closes at once: sends a close frame (unless skipCloseFrame) and destroys the socket without
   * waiting for the answer; `close` is emitted before drop() returns. Default code 1002.
   */
  drop(reasonCode?: number, description?: string, skipCloseFrame?: boolean): void {
    const code = typeof reasonCode === 'number' ? reasonCode : WebSocketConnection.CLOSE_REASON_PROTOCOL_ERROR;
    const text = typeof description === 'string' ? description : (CLOSE_DESCRIPTIONS[code] ?? '');
    this.closeReasonCode = code;
    this.closeDescription = text;
    this._closedByUs = true;
    this.connected = false;
    this.state = 'closed';
    const ws = this.wirestate;
    if (ws && ws.readyState !== 3) {
      if (!skipCloseFrame && ws.readyState === 1 && isSendableCloseCode(code)) {
        ws.close(code, truncateUtf8(text, 123));
        // Hand the close frame to the socket now; terminate() destroys it in the same tick.
        ws._uncork();
      }
      ws.terminate();
    }
    this._emitClose();
  }

  pause(): void {
    this.wirestate?.pause();
    this.emit('pause');
  }

  resume(): void {
    this.wirestate?.resume();
    this.emit('resume');
  }
}

// ------------------------------------------------------------------ request

export interface RequestedExtension {
  name: string;
  params: { name: string; value: string | undefined }[];
}

export interface RequestCookie {
  name: string;
  value: string | null;
}

/** A cookie to set with accept(): name and value are required. */
export interface AcceptCookie {
  name: string;
  value: string;
  path?: string;
  domain?: string;
  expires?: Date;
  maxage?: number | string;
  secure?: boolean;
  httponly?: boolean;
}

const PROTOCOL_SEPARATORS = new Set(['(', ')', '<', '>', '@', ',', ';', ':', '\\', '"', '/', '[', ']', '?', '=', '{', '}', ' ', '\t']);
const COOKIE_NAME_INVALID = /([\x00-\x20\x22\x28\x29\x2c\x2f\x3a-\x3f\x40\x5b-\x5e\x7b\x7d\x7f])/;
const COOKIE_VALUE_INVALID = /[^\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]/;
const COOKIE_VALUE_DQUOTED = /^"[^"]*"$/;
const CONTROL_OR_SEMICOLON = /[\x00-\x20\x3b]/g;

/**
 * An upgrade request waiting for the application's decision (WebSocket-Node's WebSocketRequest).
 * Events: `requestAccepted` (connection), `requestRejected`, `requestResolved`.
 */
export class WebSocketRequest extends EventEmitter {
  readonly httpRequest: http.IncomingMessage;
  readonly socket: Socket;
  /** The request-target, e.g. `/chat?room=1`. */
  readonly resource: string;
  readonly resourceURL: UrlWithParsedQuery;
  readonly host: string | undefined;
  readonly key: string;
  readonly webSocketVersion: number;
  /** The Origin header (Sec-WebSocket-Origin for version 8), or undefined. */
  readonly origin: string | undefined;
  /** Requested subprotocols, lower-cased, in the client's order. */
  requestedProtocols: string[];
  protocolFullCaseMap: Record<string, string>;
  /** Parsed Sec-WebSocket-Extensions (empty unless parseExtensions). */
  readonly requestedExtensions: RequestedExtension[];
  /** Parsed Cookie header (empty unless parseCookies). */
  readonly cookies: RequestCookie[];
  /** The client address: the first X-Forwarded-For entry unless ignoreXForwardedFor. */
  readonly remoteAddress: string | undefined;
  readonly remoteAddresses: string[];
  readonly serverConfig: Readonly<WebSocketServerConfig>;
  private _resolved = false;
  /** What accept() decided, read by the engine's hooks while the 101 is written. */
  _acceptedProtocol: string | undefined = undefined;
  _extraHeaders: string[] = [];
  _connection: WebSocketConnection | null = null;

  /** @internal made by WebSocketServer for each upgrade request that passed the protocol checks */
  constructor(
    httpRequest: http.IncomingMessage,
    serverConfig: Readonly<WebSocketServerConfig>,
    private readonly _decide: VerifyCallback,
  ) {
    super();
    this.httpRequest = httpRequest;
    this.socket = httpRequest.socket;
    this.serverConfig = serverConfig;
    this.resource = httpRequest.url ?? '/';
    this.resourceURL = parseUrl(this.resource, true);
    const headers = httpRequest.headers;
    this.host = headers.host;
    this.key = String(headers['sec-websocket-key'] ?? '');
    this.webSocketVersion = parseInt(String(headers['sec-websocket-version'] ?? ''), 10);
    this.origin = this.webSocketVersion === 8 ? headerString(headers['sec-websocket-origin']) : headerString(headers.origin);
    this.requestedProtocols = [];
    this.protocolFullCaseMap = {};
    const protocols = headerString(headers['sec-websocket-protocol']);
    if (protocols) {
      for (const protocol of protocols.split(/,\s*/)) {
        const lower = protocol.toLocaleLowerCase();
        this.requestedProtocols.push(lower);
        this.protocolFullCaseMap[lower] = protocol;
      }
    }
    const peer = this.socket.remoteAddress;
    const forwarded = headerString(headers['x-forwarded-for']);
    if (!serverConfig.ignoreXForwardedFor && forwarded) {
      this.remoteAddresses = [...forwarded.split(/,\s*/), ...(peer ? [peer] : [])];
      this.remoteAddress = this.remoteAddresses[0];
    } else {
      this.remoteAddress = peer;
      this.remoteAddresses = peer ? [peer] : [];
    }
    this.requestedExtensions = serverConfig.parseExtensions ? parseExtensions(headerString(headers['sec-websocket-extensions'])) : [];
    this.cookies = serverConfig.parseCookies ? parseCookies(headerString(headers.cookie)) : [];
  }

  /**
   * Accepts the request: writes the 101 answer with the chosen subprotocol (one the client
   * requested), the allowed origin and Set-Cookie headers, and returns the open connection.
   */
  accept(acceptedProtocol?: string | null, allowedOrigin?: string | null, cookies?: AcceptCookie[] | null): WebSocketConnection {
    this._verifyResolution();
    let protocolFullCase: string | undefined;
    if (acceptedProtocol) {
      protocolFullCase = this.protocolFullCaseMap[acceptedProtocol.toLocaleLowerCase()] ?? acceptedProtocol;
      for (const char of protocolFullCase) {
        const code = char.charCodeAt(0);
        if (code < 0x21 || code > 0x7e || PROTOCOL_SEPARATORS.has(char)) {
          this.reject(500);
          throw new Error(`Illegal character "${char}" in subprotocol.`);
        }
      }
      if (!this.requestedProtocols.includes(acceptedProtocol.toLocaleLowerCase())) {
        this.reject(500);
        throw new Error('Specified protocol was not requested by the client.');
      }
    }
    const extra: string[] = [];
    if (allowedOrigin) {
      const origin = sanitizeHeaderValue(allowedOrigin);
      if (this.webSocketVersion === 8) extra.push(`Sec-WebSocket-Origin: ${origin}`);
      else extra.push(`Origin: ${origin}`);
    }
    if (cookies) {
      if (!Array.isArray(cookies)) {
        this.reject(500);
        throw new Error('Value supplied for "cookies" argument must be an array.');
      }
      const problem = setCookieLines(cookies, extra);
      if (problem) {
        this.reject(500);
        throw new Error(problem);
      }
    }
    this._resolved = true;
    this.emit('requestResolved', this);
    this._acceptedProtocol = protocolFullCase;
    this._extraHeaders = extra;
    // The engine completes the handshake synchronously and opens the connection (WebSocketServer._opened
    // sets _connection); when the client hung up meanwhile, there is none and a closed one is returned.
    this._decide(true);
    const connection = this._connection ?? new WebSocketConnection(null, this, protocolFullCase, this.serverConfig);
    this.requestedProtocols = [];
    this.emit('requestAccepted', connection);
    return connection;
  }

  /** Refuses the request with an HTTP status (default 403), an X-WebSocket-Reject-Reason and extra headers. */
  reject(status?: number, reason?: string, extraHeaders?: Record<string, unknown>): void {
    this._verifyResolution();
    this._resolved = true;
    this.emit('requestResolved', this);
    const code = typeof status === 'number' ? status : 403;
    const headers: Record<string, string> = {};
    if (reason) headers['X-WebSocket-Reject-Reason'] = sanitizeHeaderValue(reason);
    if (extraHeaders) for (const [name, value] of Object.entries(extraHeaders)) headers[sanitizeHeaderValue(name)] = sanitizeHeaderValue(String(value));
    this._decide(false, code, reason ? sanitizeHeaderValue(reason) : undefined, headers);
    this.emit('requestRejected', this);
  }

  private _verifyResolution(): void {
    if (this._resolved) throw new Error('WebSocketRequest may only be accepted or rejected one time.');
  }

  get resolved(): boolean {
    return this._resolved;
  }
}

function headerString(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

/** `foo; a=1, bar` → [{ name: 'foo', params: [{ name: 'a', value: '1' }] }, { name: 'bar', params: [] }] (lower-cased, as WebSocket-Node). */
function parseExtensions(header: string | undefined): RequestedExtension[] {
  if (!header) return [];
  return header
    .toLocaleLowerCase()
    .split(/,\s*/)
    .map((extension) => {
      const [name, ...params] = extension.split(/;\s*/);
      return {
        name: name!,
        params: params.map((param) => {
          const [key, value] = param.split('=');
          return { name: key!, value };
        }),
      };
    });
}

/** `a=1; b="two"` → [{ name: 'a', value: '1' }, { name: 'b', value: 'two' }] (values URI-decoded). */
function parseCookies(header: string | undefined): RequestCookie[] {
  if (!header) return [];
  return header.split(/[;,] */).map((pair) => {
    const eq = pair.indexOf('=');
    if (eq === -1) return { name: pair, value: null };
    const name = pair.slice(0, eq).trim();
    let value = pair.slice(eq + 1).trim();
    if (value.startsWith('"')) value = value.slice(1, -1);
    try {
      value = decodeURIComponent(value);
    } catch {
      // A malformed escape is kept as sent.
    }
    return { name, value };
  });
}

/** Validates cookies (RFC 6265 section 4.1.1) and appends their Set-Cookie lines; returns a problem, if any. */
function setCookieLines(cookies: AcceptCookie[], out: string[]): string | undefined {
  const seen = new Set<string>();
  for (const cookie of cookies) {
    if (!cookie || !cookie.name || !cookie.value) return 'Each cookie to set must at least provide a "name" and "value"';
    const name = cookie.name.replace(CONTROL_OR_SEMICOLON, '');
    const value = cookie.value.replace(CONTROL_OR_SEMICOLON, '');
    if (seen.has(name)) return 'You may not specify the same cookie name twice.';
    seen.add(name);
    let invalid = name.match(COOKIE_NAME_INVALID);
    if (invalid) return `Illegal character ${invalid[0]} in cookie name`;
    invalid = COOKIE_VALUE_DQUOTED.test(value) ? value.slice(1, -1).match(COOKIE_VALUE_INVALID) : value.match(COOKIE_VALUE_INVALID);
    if (invalid) return `Illegal character ${invalid[0]} in cookie value`;
    const parts = [`${name}=${value}`];
    if (cookie.path) {
      invalid = cookie.path.match(CONTROL_OR_SEMICOLON);
      if (invalid) return `Illegal character ${invalid[0]} in cookie path`;
      parts.push(`Path=${cookie.path}`);
    }
    if (cookie.domain) {
      if (typeof cookie.domain !== 'string') return 'Domain must be specified and must be a string.';
      invalid = cookie.domain.match(CONTROL_OR_SEMICOLON);
      if (invalid) return `Illegal character ${invalid[0]} in cookie domain`;
      parts.push(`Domain=${cookie.domain.toLowerCase()}`);
    }
    if (cookie.expires) {
      if (!(cookie.expires instanceof Date)) return 'Value supplied for cookie "expires" must be a vaild date object';
      parts.push(`Expires=${cookie.expires.toUTCString()}`);
    }
    if (cookie.maxage) {
      const maxage = typeof cookie.maxage === 'string' ? parseInt(cookie.maxage, 10) : cookie.maxage;
      if (isNaN(maxage) || maxage <= 0) return 'Value supplied for cookie "maxage" must be a non-zero number';
      parts.push(`Max-Age=${Math.round(maxage)}`);
    }
    if (cookie.secure) {
      if (typeof cookie.secure !== 'boolean') return 'Value supplied for cookie "secure" must be of type boolean';
      parts.push('Secure');
    }
    if (cookie.httponly) {
      if (typeof cookie.httponly !== 'boolean') return 'Value supplied for cookie "httponly" must be of type boolean';
      parts.push('HttpOnly');
    }
    out.push(`Set-Cookie: ${parts.join(';')}`);
  }
  return undefined;
}

// ------------------------------------------------------------------ server

type UpgradeListener = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void;

/**
 * WebSocket-Node's WebSocketServer. Events: `request` (WebSocketRequest), `connect`
 * (WebSocketConnection), `close` (connection, reasonCode, description), `upgradeError` (error).
 */
export class WebSocketServer extends EventEmitter {
  /** The configuration in WebSocket-Node's names, with its defaults filled in. */
  config: WebSocketServerConfig & { httpServer: HttpServer[] } = { ...(dialectDefaults() as WebSocketServerConfig), httpServer: [] };
  /** Open connections. */
  connections: WebSocketConnection[] = [];
  /** Requests waiting for accept() or reject(). */
  pendingRequests: WebSocketRequest[] = [];
  /** wirestate: the canonical settings the configuration normalized to. */
  settings: CanonicalServerSettings | null = null;
  private _engine: Engine | null = null;
  private readonly _requests = new WeakMap<http.IncomingMessage, WebSocketRequest>();
  private readonly _upgradeListeners = new Map<HttpServer, UpgradeListener>();

  constructor(config?: WebSocketServerConfig) {
    super();
    if (config) this.mount(config);
  }

  /**
   * Attaches to `config.httpServer` (one server or several, e.g. http and https at once). Every
   * option is checked against the websocket dialect schema; all problems are reported at once.
   */
  mount(config: WebSocketServerConfig): void {
    const settings = normalizeOptions('websocket', 'server', config);
    if (!config.httpServer) throw new Error('You must specify an httpServer on which to mount the WebSocket server.');
    const servers = Array.isArray(config.httpServer) ? config.httpServer : [config.httpServer];
    this.config = { ...(dialectDefaults() as WebSocketServerConfig), ...stripUndefined(config), httpServer: servers };
    this.settings = settings;
    const engineSettings: CanonicalServerSettings = {
      ...settings,
      // Ping answers go through the connection facade so that a 'ping' listener can cancel them.
      autoPong: false,
      // With useNativeKeepalive the TCP stack probes the peer instead of WebSocket pings.
      keepalive: settings.keepalive === true && settings.useNativeKeepalive !== true,
      verifyClient: (info: { req: http.IncomingMessage }, cb: VerifyCallback) => this._onRequest(info.req, cb),
      handleProtocols: (_offered: Set<string>, req: http.IncomingMessage) => this._requests.get(req)?._acceptedProtocol ?? false,
    };
    if (this._engine) this._engine.reconfigure(engineSettings);
    else {
      this._engine = new Engine(engineSettings);
      this._engine.on('headers', (headers: string[], req: http.IncomingMessage) => {
        const request = this._requests.get(req);
        if (request) headers.push(...request._extraHeaders);
      });
      this._engine.on('wsClientError', (error: WebSocketProtocolError) => {
        // Requests the application rejected are not upgrade errors; malformed ones are (answered 400 by the engine).
        if (error.id !== 'clientRejected') this.emit('upgradeError', error);
      });
    }
    for (const server of servers) {
      if (this._upgradeListeners.has(server)) continue;
      const listener: UpgradeListener = (req, socket, head) => this._engine!.handleUpgrade(req, socket, head, (ws, r) => this._opened(ws, r));
      this._upgradeListeners.set(server, listener);
      server.on('upgrade', listener);
    }
  }

  /** Detaches from the HTTP server(s): open connections stay, new upgrade requests are not handled. */
  unmount(): void {
    for (const [server, listener] of this._upgradeListeners) server.removeListener('upgrade', listener);
    this._upgradeListeners.clear();
  }

  /** Closes every open connection gracefully (1000) and refuses pending requests with 503. */
  closeAllConnections(): void {
    for (const connection of [...this.connections]) connection.close();
    for (const request of [...this.pendingRequests]) {
      process.nextTick(() => {
        if (!request.resolved) request.reject(503);
      });
    }
  }

  /** unmount() and closeAllConnections(). */
  shutDown(): void {
    this.unmount();
    this.closeAllConnections();
  }

  broadcast(data: unknown): void {
    if (Buffer.isBuffer(data)) this.broadcastBytes(data);
    else if (data !== null && data !== undefined && typeof (data as { toString?: unknown }).toString === 'function') this.broadcastUTF(data);
  }

  broadcastUTF(utfData: unknown): void {
    for (const connection of this.connections) connection.sendUTF(utfData);
  }

  broadcastBytes(binaryData: Buffer): void {
    for (const connection of this.connections) connection.sendBytes(binaryData);
  }

  /** The engine's verifyClient hook: an upgrade request that passed the protocol checks. */
  private _onRequest(req: http.IncomingMessage, decide: VerifyCallback): void {
    const request = new WebSocketRequest(req, this.config, decide);
    this._requests.set(req, request);
    this.pendingRequests.push(request);
    const resolved = () => {
      const index = this.pendingRequests.indexOf(request);
      if (index !== -1) this.pendingRequests.splice(index, 1);
    };
    request.once('requestResolved', resolved);
    req.socket.once('close', resolved);
    request.once('requestAccepted', (connection: WebSocketConnection) => this._onAccepted(connection));
    try {
      if (!this.config.autoAcceptConnections && this.listenerCount('request') > 0) this.emit('request', request);
      else if (this.config.autoAcceptConnections) request.accept(request.requestedProtocols[0], request.origin);
      else request.reject(404, 'No handler is configured to accept the connection.');
    } catch (error) {
      // As with WebSocket-Node, an exception thrown by a 'request' listener is the application's: it
      // escapes (as an uncaught exception) instead of being swallowed by the engine; the client gets 500.
      if (!request.resolved) request.reject(500);
      process.nextTick(() => {
        throw error;
      });
    }
  }

  /** The engine opened a connection (synchronously, inside request.accept(), once the 101 is written). */
  private _opened(ws: RuntimeWebSocket, req: http.IncomingMessage): void {
    const request = this._requests.get(req);
    if (request) request._connection = new WebSocketConnection(ws, request, request._acceptedProtocol, this.config);
    else ws.terminate();
  }

  private _onAccepted(connection: WebSocketConnection): void {
    this.connections.push(connection);
    connection.once('close', (reasonCode: number, description: string | null) => {
      const index = this.connections.indexOf(connection);
      if (index !== -1) this.connections.splice(index, 1);
      this.emit('close', connection, reasonCode, description);
    });
    this.emit('connect', connection);
  }
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** `require('websocket')` shape: `.server`, `.request`, `.connection`, `.frame`. */
const websocket = {
  server: WebSocketServer,
  request: WebSocketRequest,
  connection: WebSocketConnection,
  frame: WebSocketFrame,
  version: '1.0.35 (wirestate)',
};
export { WebSocketServer as server, WebSocketRequest as request, WebSocketConnection as connection, WebSocketFrame as frame };
export default websocket;
