/**
 * `wirestate/ipworks`: the IPWorks WebSocketServer component (IPWorks WebSockets 2020; `WSServer` in
 * IP*Works! WS V9) as a thin facade over wirestate's runtime. Its users keep their vocabulary —
 * LocalPort, Listening, WebSocketOpenRequest with a StatusCode to reject, DataIn with EOM, Send /
 * SendText / SendFile, Config("BufferMessage=false") — in JavaScript casing: properties are
 * lower-camel (`server.localPort`), events keep the reference's names (`server.on('DataIn', e => …)`)
 * with lower-camel parameters (`e.connectionId`, `e.statusCode`), as IPWorks's own JavaScript
 * edition does.
 *
 * Every property and configuration setting goes through the generated `ipworks` dialect schema
 * (normalizeOptions('ipworks', 'server', …)): names, defaults, units (IPWorks timeouts are seconds)
 * and errors are IPWorks's, and a setting that Node cannot honour is refused with the reason the
 * spec gives. IPWorks's numeric vocabularies (DataFormat 0/1/2/9/10, SSLCertStoreType, the
 * SSLEnabledProtocols bit mask, UseIPv6 0/1/2) are translated to the spec's names on the way in.
 *
 * The facade owns the listening socket (so that ConnectionRequest / AllowedClients act on the TCP
 * connection, and TLS is set up per connection for SSLConnectionRequest / SSLClientAuthentication /
 * SSLStatus); HTTP parsing, the opening handshake and every connection are the runtime's (the
 * Engine of runtime/dialects/engine.ts), which applies BufferMessage (assembleFragments),
 * MaxFrameSize (fragmentationThreshold), MaxConnections, TcpNoDelay and the connection machine's
 * timers itself.
 */
import { EventEmitter } from 'node:events';
import { createReadStream } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import tls from 'node:tls';
import { Opcode, isSendableCloseCode } from '../../generated/protocol.generated.js';
import { dialectBindings, dialectSchemas, settingsTable, type SettingName } from '../../generated/options.generated.js';
import type { ParsedFrame } from '../codec/parser.js';
import type { WebSocketProtocolError } from '../errors.js';
import { OptionsError, normalizeOptions } from '../options.js';
import type { LifecycleStep, WebSocket as RuntimeWebSocket } from '../websocket.js';
import { CLOSE_DESCRIPTIONS, Engine, rawHeaderLines, type CanonicalServerSettings } from './engine.js';
import {
  CertStoreTypes,
  TlsSettingError,
  cipherSuitesToOpenSsl,
  formatName,
  parseClientHello,
  protocolsFromIpworks,
  protocolsToIpworks,
  storeTypeName,
  storeTypeNumber,
  tlsServerOptions,
  toPem,
  toleratedBy,
  versionRange,
} from './ipworks-tls.js';

export { CertStoreTypes };

// ------------------------------------------------------------------ vocabulary

/** WebSocketConnectionDataFormat / DataIn's DataFormat: IPWorks's numbers. */
export const DataFormats = { dfAutomatic: 0, dfText: 1, dfBinary: 2, dfPing: 9, dfPong: 10 } as const;
type DataFormatName = 'automatic' | 'text' | 'binary' | 'ping' | 'pong';
const FORMAT_NAME: Record<number, DataFormatName> = { 0: 'automatic', 1: 'text', 2: 'binary', 9: 'ping', 10: 'pong' };
const FORMAT_NUMBER: Record<DataFormatName, number> = { automatic: 0, text: 1, binary: 2, ping: 9, pong: 10 };

/**
 * Errors of the facade's methods. The codes are wirestate's (the references do not list IPWorks's
 * numeric error codes), except 301, IPWorks's timeout.
 */
export class IPWorksError extends Error {
  static readonly UNKNOWN_CONNECTION = 100;
  static readonly NOT_CONNECTED = 101;
  static readonly BUSY = 102;
  static readonly INTERRUPTED = 103;
  static readonly FILE = 104;
  static readonly INVALID_DATA = 105;
  static readonly TLS = 106;
  static readonly TIMEOUT = 301;
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'IPWorksError';
  }
}

// ------------------------------------------------------------------ event parameters

export interface ConnectedEvent {
  connectionId: string;
  /** 0: the WebSocket opened. */
  statusCode: number;
  description: string;
}
export interface ConnectionRequestEvent {
  readonly address: string;
  readonly port: number;
  /** Set false to refuse the TCP connection. Starts false when AllowedClients does not list the address. */
  accept: boolean;
}
export interface DataInEvent {
  readonly connectionId: string;
  /** 1 text (UTF-8), 2 binary, 10 pong. */
  readonly dataFormat: number;
  /** The data as a string (UTF-8 decoded for text, one character per byte for binary). */
  readonly text: string;
  /** The data's bytes. */
  readonly textB: Buffer;
  /** End of message: true on the last (or only) piece of a message. */
  readonly EOM: boolean;
  readonly eom: boolean;
}
export interface DisconnectedEvent {
  readonly connectionId: string;
  readonly statusCode: number;
  readonly description: string;
}
export interface ErrorEvent {
  readonly connectionId: string;
  readonly errorCode: number;
  readonly description: string;
}
export interface LogEvent {
  readonly connectionId: string;
  /** 1 information, 2 verbose (every lifecycle step of the connection machine), 3 debug. */
  readonly logLevel: number;
  readonly message: string;
  /** 'Info', 'Lifecycle', 'SSL'. */
  readonly logType: string;
}
export interface ReadyToSendEvent {
  readonly connectionId: string;
}
export interface SSLClientAuthenticationEvent {
  readonly connectionId: string;
  /** The client's certificate, PEM (its whole chain when SSLIncludeCertChain is on). */
  readonly certEncoded: string;
  readonly certEncodedB: Buffer;
  readonly certSubject: string;
  readonly certIssuer: string;
  /** "OK", or why verification failed. */
  readonly status: string;
  /** The recommendation (verified, or tolerated by SSLSecurityFlags); set false to refuse, true to accept anyway. */
  accept: boolean;
}
export interface SSLConnectionRequestEvent {
  readonly connectionId: string;
  /** The cipher suites the client offers (IANA names), comma-separated. */
  readonly supportedCipherSuites: string;
  /** The signature algorithms the client offers, comma-separated. */
  readonly supportedSignatureAlgs: string;
  /** Set these to choose the certificate for this connection. */
  certStoreType: number;
  certStore: string;
  certPassword: string;
  certSubject: string;
}
export interface SSLStatusEvent {
  readonly connectionId: string;
  readonly message: string;
}
export interface WebSocketOpenRequestEvent {
  readonly connectionId: string;
  readonly requestURI: string;
  readonly hostHeader: string;
  readonly originHeader: string;
  /** The offered subprotocols, comma-separated; set it to the one to accept ('' for none). */
  subProtocols: string;
  readonly extensions: string;
  readonly requestHeaders: string;
  /** 101 accepts; set an HTTP error status (e.g. 401) to refuse. */
  statusCode: number;
  /** Extra response headers, "Name: value" lines. */
  responseHeaders: string;
}

export interface IPWorksEvents {
  Connected: [ConnectedEvent];
  ConnectionRequest: [ConnectionRequestEvent];
  DataIn: [DataInEvent];
  Disconnected: [DisconnectedEvent];
  Error: [ErrorEvent];
  Log: [LogEvent];
  ReadyToSend: [ReadyToSendEvent];
  SSLClientAuthentication: [SSLClientAuthenticationEvent];
  SSLConnectionRequest: [SSLConnectionRequestEvent];
  SSLStatus: [SSLStatusEvent];
  WebSocketOpenRequest: [WebSocketOpenRequestEvent];
}

// ------------------------------------------------------------------ settings plumbing

const SERVER_BINDINGS = dialectBindings.ipworks.server!;
const SCHEMA_PROPERTIES = dialectSchemas.ipworks.server.properties as Record<string, { default?: unknown }>;
const EMPTY = Buffer.alloc(0);
const noop = () => {};

/** A dialect name regardless of case (IPWorks treats setting names case-insensitively). */
function canonicalName(name: string): string | undefined {
  const lower = name.trim().toLowerCase();
  return Object.keys(SERVER_BINDINGS).find((n) => n.toLowerCase() === lower);
}

function settingOf(name: string): SettingName {
  return SERVER_BINDINGS[name]!.setting;
}

function parseBoolean(raw: string): boolean | string {
  if (/^(true|1|yes|on)$/i.test(raw.trim())) return true;
  if (/^(false|0|no|off)$/i.test(raw.trim())) return false;
  return raw;
}

/** A config() value string → the value the schema checks (IPWorks numbers → the spec's names). */
function fromConfigString(name: string, raw: string): unknown {
  if (raw.trim() === '') return undefined;
  if (name === 'UseIPv6') {
    const value = raw.trim().toLowerCase();
    return ({ '0': 'ipv4', false: 'ipv4', '1': 'ipv6', true: 'ipv6', '2': 'both' } as Record<string, string>)[value] ?? value;
  }
  if (name === 'SSLEnabledProtocols') return protocolsFromIpworks(raw);
  const type = settingsTable[settingOf(name)].type;
  if (type === 'boolean') return parseBoolean(raw);
  if (type === 'stringList') return raw.split(raw.includes('\n') ? /\r?\n/ : /,/).map((s) => s.trim()).filter(Boolean);
  return raw;
}

/** A value in the dialect's units → the string config() answers with. */
function toConfigString(name: string, value: unknown): string {
  if (value === undefined || value === null) return '';
  if (name === 'UseIPv6') return String({ ipv4: 0, ipv6: 1, both: 2 }[value as string] ?? value);
  if (name === 'SSLEnabledProtocols') return String(protocolsToIpworks(value as string[]));
  if (Array.isArray(value)) return value.map(String).join(',');
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** Reports a facade-level problem with a setting in the same shape as the schema's. */
function settingError(option: string, message: string): OptionsError {
  return new OptionsError('ipworks', 'server', [{ option, message }]);
}

function plainAddress(address: string | undefined): string {
  if (!address) return '';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

/** AllowedClients: addresses or host names, `*` wildcards (e.g. 192.168.*); empty admits everyone. */
function isAllowed(address: string, allowed: readonly string[] | undefined): boolean {
  if (!allowed || allowed.length === 0) return true;
  return allowed.some((entry) => {
    const pattern = entry.trim();
    if (pattern === '*' || pattern === address) return true;
    if (pattern.toLowerCase() === 'localhost') return address === '127.0.0.1' || address === '::1';
    if (!pattern.includes('*')) return false;
    const regex = new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
    return regex.test(address);
  });
}

/** "Name: value" lines → a header record. */
function parseHeaderLines(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) out[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
  }
  return out;
}

function toBytes(data: unknown): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  throw new IPWorksError(IPWorksError.INVALID_DATA, 'data must be a string, a Buffer or a Uint8Array');
}

// ------------------------------------------------------------------ one connection

interface StreamingSend {
  cancel(error: IPWorksError): void;
}

/**
 * One connected client (a WebSocketConnection record of IPWorks 2020; an item of V9's Connections
 * collection), reached through `server.connections.get(connectionId)`.
 */
export class WebSocketConnection {
  private _acceptData: boolean;
  private _dataFormat: DataFormatName;
  private _timeoutMs: number;
  private _bytesSent = 0;
  private _messageLength: number | undefined = undefined;
  private _messageSent = 0;
  private _streaming: StreamingSend | null = null;
  _localClose: { code: number; reason: string } | null = null;
  private _gone: (() => void)[] = [];
  private _decoder: StringDecoder | null = null;
  private _frameOpcode = 0;

  /** @internal made by the server when a WebSocket opens */
  constructor(
    private readonly _server: WebSocketServer,
    /** The identifier the server gave this connection (unique while the server runs). */
    readonly connectionId: string,
    /** wirestate: the runtime connection underneath (lifecycle, stats, …). */
    readonly wirestate: RuntimeWebSocket,
    private readonly _req: http.IncomingMessage,
    settings: CanonicalServerSettings,
  ) {
    this._acceptData = settings.acceptData !== false;
    this._dataFormat = (settings.dataFormat as DataFormatName | undefined) ?? 'automatic';
    this._timeoutMs = (settings.sendTimeout as number | undefined) ?? 0;
    if (!this._acceptData) wirestate.pause();
  }

  /** False stops reading from this client (no DataIn; TCP flow control slows it down); true resumes. */
  get acceptData(): boolean {
    return this._acceptData;
  }
  set acceptData(value: boolean) {
    const checked = this._server._checkConnectionProperty('AcceptData', value) as boolean;
    this._acceptData = checked;
    if (checked) this.wirestate.resume();
    else this.wirestate.pause();
  }

  /** Bytes of the last dataToSend assignment handed to the socket so far. */
  get bytesSent(): number {
    return this._bytesSent;
  }

  /** Whether the WebSocket is open; set false to disconnect the client. */
  get connected(): boolean {
    return this.wirestate.readyState === 1;
  }
  set connected(value: boolean) {
    if (!value) this._server.disconnect(this.connectionId);
  }

  /** How data sent through this connection is framed: 0 automatic, 1 text, 2 binary, 9 ping, 10 pong. */
  get dataFormat(): number {
    return FORMAT_NUMBER[this._dataFormat];
  }
  set dataFormat(value: number | DataFormatName) {
    const name = typeof value === 'number' || /^\d+$/.test(String(value)) ? (FORMAT_NAME[Number(value)] ?? value) : value;
    this._dataFormat = this._server._checkConnectionProperty('DataFormat', name) as DataFormatName;
  }

  /** Write-only: assigning data sends it (framed by dataFormat); bytesSent follows its progress. */
  get dataToSend(): string {
    return '';
  }
  set dataToSend(data: string | Buffer | Uint8Array) {
    this._bytesSent = 0;
    const bytes = toBytes(data);
    void this._sendMessage(bytes, this._kindFor(typeof data === 'string'), () => (this._bytesSent = bytes.length));
  }

  /** The Host header the client sent. */
  get host(): string {
    return String(this._req.headers.host ?? '');
  }

  /** The local address of the connection. */
  get localAddress(): string {
    return plainAddress(this._req.socket.localAddress);
  }

  /** The Origin header the client sent. */
  get origin(): string {
    return String(this._req.headers.origin ?? '');
  }

  /** True when data can be sent without queueing behind earlier data. */
  get readyToSend(): boolean {
    const highWaterMark = (this.wirestate._settings.sendHighWaterMark as number | undefined) ?? 0;
    return this.connected && this._streaming === null && (highWaterMark <= 0 || this.wirestate.bufferedAmount < highWaterMark);
  }

  get remoteHost(): string {
    return plainAddress(this._req.socket.remoteAddress);
  }

  get remotePort(): number {
    return this._req.socket.remotePort ?? 0;
  }

  /** The HTTP headers of the opening handshake request, "Name: value" lines. */
  get requestHeaders(): string {
    return rawHeaderLines(this._req);
  }

  get requestURI(): string {
    return this._req.url ?? '/';
  }

  /** The subprotocols the client offered, comma-separated. */
  get subProtocols(): string {
    return String(this._req.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean)
      .join(',');
  }

  /** The subprotocol accepted for this connection ('' when none). */
  get protocol(): string {
    return this.wirestate.protocol;
  }

  /** Seconds a send may take before it fails (0: no limit); starts at the server's defaultTimeout. */
  get timeout(): number {
    return this._timeoutMs / 1000;
  }
  set timeout(seconds: number) {
    this._timeoutMs = this._server._checkConnectionProperty('Timeout', seconds) as number;
  }

  // ---------------------------------------------------------------- sending

  _kindFor(isString: boolean): DataFormatName {
    if (this._dataFormat === 'automatic') return isString ? 'text' : 'binary';
    return this._dataFormat;
  }

  _setMessageLength(length: number | undefined): void {
    if (this._messageLength !== undefined && this._messageSent > 0 && length !== undefined) {
      throw new IPWorksError(IPWorksError.BUSY, `a message of MessageLength ${this._messageLength} bytes is being sent on connection ${this.connectionId}`);
    }
    this._messageLength = length === 0 ? undefined : length;
    this._messageSent = 0;
  }

  get _pendingMessageLength(): number | undefined {
    return this._messageLength;
  }

  private _assertCanSend(): void {
    if (!this.connected) throw new IPWorksError(IPWorksError.NOT_CONNECTED, `connection ${this.connectionId} is not connected`);
    if (this._streaming) throw new IPWorksError(IPWorksError.BUSY, `a file is being sent on connection ${this.connectionId}; wait for sendFile() or call interrupt()`);
  }

  /** Sends one message (or, with MessageLength set, one piece of it); resolves once written to the socket. */
  _sendMessage(bytes: Buffer, kind: DataFormatName, onWritten?: () => void): Promise<void> {
    this._assertCanSend();
    const ws = this.wirestate;
    if (kind === 'ping' || kind === 'pong') {
      if (bytes.length > 125) throw new IPWorksError(IPWorksError.INVALID_DATA, 'a ping or pong carries at most 125 bytes (RFC 6455 section 5.5)');
      return this._track((cb) => (kind === 'ping' ? ws.ping(bytes, cb) : ws.pong(bytes, cb)), onWritten);
    }
    let fin = true;
    if (this._messageLength !== undefined) {
      const total = this._messageSent + bytes.length;
      if (total > this._messageLength) {
        throw new IPWorksError(IPWorksError.INVALID_DATA, `${total} bytes exceed MessageLength ${this._messageLength} on connection ${this.connectionId}`);
      }
      this._messageSent = total;
      fin = total === this._messageLength;
      if (fin) this._setMessageLength(undefined);
    }
    return this._track((cb) => ws.send(bytes, { binary: kind === 'binary', fin }, cb), onWritten);
  }

  /**
   * Runs a write and returns a promise settled when it is handed to the socket, or rejected after the
   * connection's timeout (IPWorks's synchronous mode). The promise is marked handled, so callers that
   * do not wait for it ("asynchronous mode") never see an unhandled rejection; failures are also
   * reported through the Error event.
   */
  private _track(write: (cb: (error?: Error | null) => void) => void, onWritten?: () => void): Promise<void> {
    const timeoutMs = this._timeoutMs;
    const promise = new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      if (timeoutMs > 0) {
        timer = setTimeout(() => {
          const error = new IPWorksError(IPWorksError.TIMEOUT, `Timeout: the send did not complete within ${timeoutMs / 1000} s`);
          this._server._error(this.connectionId, error);
          reject(error);
        }, timeoutMs);
      }
      write((error) => {
        if (timer) clearTimeout(timer);
        if (error) {
          const failure = new IPWorksError(IPWorksError.NOT_CONNECTED, error.message);
          this._server._error(this.connectionId, failure);
          reject(failure);
        } else {
          onWritten?.();
          resolve();
        }
      });
    });
    promise.catch(noop);
    return promise;
  }

  /** Streams a file as one binary message, in frames of MaxFrameSize bytes, honouring backpressure. */
  _sendFile(path: string): Promise<void> {
    this._assertCanSend();
    if (this._messageLength !== undefined) throw new IPWorksError(IPWorksError.BUSY, `a message of MessageLength bytes is being sent on connection ${this.connectionId}`);
    const ws = this.wirestate;
    const pieceSize = Math.max(1, (ws._settings.fragmentationThreshold as number | undefined) ?? 16384);
    const promise = new Promise<void>((resolve, reject) => {
      const stream = createReadStream(path, { highWaterMark: pieceSize });
      let previous: Buffer | null = null;
      let started = false;
      let settled = false;
      const finish = (error?: IPWorksError) => {
        if (settled) return;
        settled = true;
        this._streaming = null;
        ws.removeListener('drain', onDrain);
        if (error) {
          stream.destroy();
          // Keep the framing valid: a message that was started is ended with an empty final frame.
          if (started && ws.readyState === 1) ws.send(EMPTY, { fin: true });
          this._server._error(this.connectionId, error);
          reject(error);
        } else resolve();
      };
      const onDrain = () => stream.resume();
      ws.on('drain', onDrain);
      this._streaming = { cancel: finish };
      stream.on('data', (chunk: string | Buffer) => {
        const piece = chunk as Buffer;
        if (previous && ws.readyState === 1) {
          started = true;
          if (!ws.send(previous, { binary: true, fin: false })) stream.pause();
        }
        previous = piece;
      });
      stream.on('end', () => {
        if (settled) return;
        if (ws.readyState !== 1) return finish(new IPWorksError(IPWorksError.NOT_CONNECTED, `connection ${this.connectionId} closed during sendFile`));
        ws.send(previous ?? EMPTY, { binary: true, fin: true }, (error) => {
          if (error) finish(new IPWorksError(IPWorksError.NOT_CONNECTED, error.message));
          else finish();
        });
        this._streaming = null;
      });
      stream.on('error', (error) => finish(new IPWorksError(IPWorksError.FILE, `cannot read "${path}": ${error.message}`)));
    });
    promise.catch(noop);
    return promise;
  }

  /** Stops a sendFile (or a MessageLength message) in progress; its promise rejects with INTERRUPTED. */
  _interrupt(): void {
    const interrupted = new IPWorksError(IPWorksError.INTERRUPTED, `the send on connection ${this.connectionId} was interrupted`);
    if (this._streaming) this._streaming.cancel(interrupted);
    if (this._messageLength !== undefined && this._messageSent > 0 && this.connected) this.wirestate.send(EMPTY, { fin: true });
    this._messageLength = undefined;
    this._messageSent = 0;
  }

  // ---------------------------------------------------------------- receiving

  /** A data frame, when BufferMessage is off: one DataIn per frame, EOM on the last. */
  _onFrame(frame: ParsedFrame): DataInEvent {
    if (frame.opcode !== Opcode.continuation) {
      this._frameOpcode = frame.opcode;
      this._decoder = frame.opcode === Opcode.text ? new StringDecoder('utf8') : null;
    }
    const isText = this._frameOpcode === Opcode.text;
    let text: string;
    if (isText && this._decoder) text = this._decoder.write(frame.payload) + (frame.fin ? this._decoder.end() : '');
    else text = frame.payload.toString('latin1');
    return dataIn(this.connectionId, isText ? 1 : 2, text, frame.payload, frame.fin);
  }

  _whenGone(callback: () => void): void {
    if (this.wirestate.readyState === 3) callback();
    else this._gone.push(callback);
  }

  _goneNow(): void {
    if (this._streaming) this._streaming.cancel(new IPWorksError(IPWorksError.NOT_CONNECTED, `connection ${this.connectionId} closed during sendFile`));
    const callbacks = this._gone;
    this._gone = [];
    for (const callback of callbacks) callback();
  }
}

function dataIn(connectionId: string, dataFormat: number, text: string, textB: Buffer, EOM: boolean): DataInEvent {
  return { connectionId, dataFormat, text, textB, EOM, eom: EOM };
}

// ------------------------------------------------------------------ the server

/** Property names (lower camel) and the IPWorks names they stand for. */
const PROPERTIES = {
  connectionBacklog: 'ConnectionBacklog',
  defaultTimeout: 'DefaultTimeout',
  localHost: 'LocalHost',
  localPort: 'LocalPort',
  sslAuthenticateClients: 'SSLAuthenticateClients',
  sslCert: 'SSLCert',
  sslCertEncoded: 'SSLCertEncoded',
  sslCertStore: 'SSLCertStore',
  sslCertStorePassword: 'SSLCertStorePassword',
  sslCertStoreType: 'SSLCertStoreType',
  sslCertSubject: 'SSLCertSubject',
  useSSL: 'UseSSL',
} as const;

/**
 * IPWorks's WebSocketServer. Set properties (`localPort`, `useSSL`, …) and configuration settings
 * (`config('Name=Value')`), listen with `listening = true` (or `await startListening()`), and handle
 * events by their IPWorks names: Connected, ConnectionRequest, DataIn, Disconnected, Error, Log,
 * ReadyToSend, SSLClientAuthentication, SSLConnectionRequest, SSLStatus, WebSocketOpenRequest.
 */
export class WebSocketServer extends EventEmitter<IPWorksEvents> {
  /** Connected clients by connection id (IPWorks 2020's WebSocketConnection records, V9's Connections). */
  readonly connections = new Map<string, WebSocketConnection>();
  private _given: Record<string, unknown> = {};
  private _settings: CanonicalServerSettings;
  private readonly _engine: Engine;
  private readonly _http: http.Server;
  private _listener: net.Server | null = null;
  private _bound: Promise<void> | null = null;
  private _tlsHub: tls.Server | null = null;
  private _nextId = 0;
  private readonly _ids = new WeakMap<object, string>();
  private readonly _pending = new WeakMap<http.IncomingMessage, { protocol: string | undefined; headers: string[] }>();

  /**
   * `init` may set properties (by their lower-camel names: `{ localPort: 0, useSSL: true }`) and
   * configuration settings (by their IPWorks names: `{ BufferMessage: false }`) at once.
   */
  constructor(init: Record<string, unknown> = {}) {
    super();
    this._settings = normalizeOptions('ipworks', 'server', {});
    this._engine = new Engine(this._engineSettings(this._settings));
    this._engine.on('headers', (headers: string[], req: http.IncomingMessage) => {
      const pending = this._pending.get(req);
      if (pending) headers.push(...pending.headers);
    });
    this._engine.on('wsClientError', (error: WebSocketProtocolError, _socket: unknown, req: http.IncomingMessage) => {
      this._log(this._ids.get(req.socket) ?? '', 1, `WebSocket handshake refused (${error.status ?? 400}): ${error.message}`, 'Info');
    });
    this._http = http.createServer((_req, res) => {
      // A plain HTTP request to a WebSocket server: 426 names the upgrade it needs (RFC 6455 section 4.2.2).
      res.writeHead(426, { Upgrade: 'websocket', 'Content-Type': 'text/plain' });
      res.end('Upgrade Required');
    });
    this._http.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      this._engine.handleUpgrade(req, socket, head, (ws, r) => this._opened(ws, r));
    });
    this._http.on('clientError', (_error, socket: net.Socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      else socket.destroy();
    });
    for (const [key, value] of Object.entries(init)) {
      if (key in PROPERTIES) (this as unknown as Record<string, unknown>)[key] = value;
      else if (key === 'listening') continue;
      else this._setConfig(key, value);
    }
    if (init.listening === true) this.listening = true;
  }

  // ---------------------------------------------------------------- settings

  /** The canonical settings the properties and configuration settings normalize to. */
  get settings(): Readonly<CanonicalServerSettings> {
    return this._settings;
  }

  private _engineSettings(settings: CanonicalServerSettings): CanonicalServerSettings {
    return {
      ...settings,
      // AllowedClients acts on the TCP connection, before TLS (see ConnectionRequest), not at the upgrade.
      allowedClients: [],
      verifyClient: (info: { req: http.IncomingMessage }, cb: (ok: boolean, code?: number, message?: string, headers?: Record<string, string>) => void) =>
        this._onOpenRequest(info.req, cb),
      handleProtocols: (_offered: Set<string>, req: http.IncomingMessage) => this._pending.get(req)?.protocol ?? false,
    } as CanonicalServerSettings;
  }

  /** Sets one property or configuration setting (IPWorks name); every problem is an OptionsError. */
  private _set(name: string, value: unknown): void {
    const next = { ...this._given };
    if (value === undefined) delete next[name];
    else next[name] = value;
    const settings = normalizeOptions('ipworks', 'server', next);
    // RFC 6455 section 7.4.1: 1004, 1005, 1006 and 1015 (and unassigned 1xxx codes) are never sent.
    if (!isSendableCloseCode(settings.defaultCloseCode as number)) {
      throw settingError('DisconnectStatusCode', `${settings.defaultCloseCode} may not be sent in a close frame (RFC 6455 section 7.4.1)`);
    }
    try {
      cipherSuitesToOpenSsl((settings.tlsCipherSuites as string[] | undefined) ?? []);
      versionRange((settings.tlsProtocols as string[] | undefined) ?? ['TLSv1.2', 'TLSv1.3']);
    } catch (error) {
      if (error instanceof TlsSettingError) throw settingError(error.setting, error.message.slice(error.setting.length + 2));
      throw error;
    }
    this._given = next;
    this._settings = settings;
    this._engine.reconfigure(this._engineSettings(settings));
  }

  /** A property or setting in the dialect's units: what was set, or the dialect's default. */
  private _get(name: string): unknown {
    return name in this._given ? this._given[name] : SCHEMA_PROPERTIES[name]?.default;
  }

  /** Checks a per-connection property's value through the schema; returns it in canonical units. */
  _checkConnectionProperty(name: 'AcceptData' | 'DataFormat' | 'Timeout', value: unknown): unknown {
    const settings = normalizeOptions('ipworks', 'server', { [name]: value });
    return settings[settingOf(name) as keyof CanonicalServerSettings];
  }

  private _setConfig(name: string, value: unknown): void {
    const match = /^MessageLength\s*\[\s*([^\]]+)\s*\]$/i.exec(name.trim());
    if (match) {
      const record = this._record(match[1]!);
      const length = value === undefined || value === '' ? undefined : (normalizeOptions('ipworks', 'server', { MessageLength: value }).messageLength as number);
      record._setMessageLength(length);
      return;
    }
    const known = canonicalName(name);
    if (known && SERVER_BINDINGS[known]!.kind === 'property') {
      const property = Object.entries(PROPERTIES).find(([, n]) => n === known)?.[0];
      throw settingError(known, `is a property, not a configuration setting${property ? `: set server.${property}` : ' of each connection record'}`);
    }
    const settingName = known ?? name.trim();
    // IPWorks's numeric vocabularies are translated whether given as text or as numbers.
    const numeric = known === 'UseIPv6' || known === 'SSLEnabledProtocols';
    const converted = known && (typeof value === 'string' || (numeric && (typeof value === 'number' || typeof value === 'boolean'))) ? fromConfigString(known, String(value)) : value;
    this._set(settingName, converted);
  }

  /**
   * IPWorks Config: `config('Name=Value')` sets a configuration setting, `config('Name')` returns its
   * current value as a string. Names are those of the references (case-insensitive); values are
   * checked through the ipworks schema, and a setting Node cannot honour is refused with the reason.
   */
  config(configurationString: string): string {
    const eq = configurationString.indexOf('=');
    if (eq !== -1) {
      this._setConfig(configurationString.slice(0, eq), configurationString.slice(eq + 1));
      return '';
    }
    const name = configurationString.trim();
    const match = /^MessageLength\s*\[\s*([^\]]+)\s*\]$/i.exec(name);
    if (match) return toConfigString('MessageLength', this._record(match[1]!)._pendingMessageLength);
    const known = canonicalName(name);
    if (!known) {
      // Let the schema explain the name (a typo, or another dialect's name).
      normalizeOptions('ipworks', 'server', { [name]: '' });
      return '';
    }
    return toConfigString(known, this._get(known));
  }

  // ---------------------------------------------------------------- properties

  /** The kernel's queue of connections not yet accepted (IPWorks default 5). */
  get connectionBacklog(): number {
    return this._get('ConnectionBacklog') as number;
  }
  set connectionBacklog(value: number) {
    this._set('ConnectionBacklog', value);
  }

  /** Seconds a send may take before it fails, for connections accepted from now on (0: no limit). */
  get defaultTimeout(): number {
    return this._get('DefaultTimeout') as number;
  }
  set defaultTimeout(value: number) {
    this._set('DefaultTimeout', value);
  }

  /** The interface to listen on ('' for all). */
  get localHost(): string {
    return (this._get('LocalHost') as string | undefined) ?? '';
  }
  set localHost(value: string) {
    this._set('LocalHost', value);
  }

  /** The port to listen on (0: any free port); while listening, the port actually bound. */
  get localPort(): number {
    const address = this._listener?.address();
    if (address && typeof address === 'object') return address.port;
    return this._get('LocalPort') as number;
  }
  set localPort(value: number) {
    this._set('LocalPort', value);
  }

  /** Ask clients for a certificate during the TLS handshake (see SSLClientAuthentication). */
  get sslAuthenticateClients(): boolean {
    return this._get('SSLAuthenticateClients') === true;
  }
  set sslAuthenticateClients(value: boolean) {
    this._set('SSLAuthenticateClients', value);
  }

  /** V9's certificate object: `{ store, storeType, storePassword, subject, encoded }`. */
  get sslCert(): unknown {
    return this._get('SSLCert');
  }
  set sslCert(value: unknown) {
    if (value && typeof value === 'object' && 'storeType' in value) {
      value = { ...(value as object), storeType: this._storeType((value as { storeType: unknown }).storeType) };
    }
    this._set('SSLCert', value);
  }

  /** The certificate (PEM or base64), with its key from sslCertStore. */
  get sslCertEncoded(): string | Buffer | undefined {
    return this._get('SSLCertEncoded') as string | Buffer | undefined;
  }
  set sslCertEncoded(value: string | Buffer | undefined) {
    this._set('SSLCertEncoded', value);
  }

  /** Where the certificate and key come from: a PEM or PFX file path, or the PEM / PFX data itself. */
  get sslCertStore(): string {
    return (this._get('SSLCertStore') as string | undefined) ?? '';
  }
  set sslCertStore(value: string) {
    this._set('SSLCertStore', value === '' ? undefined : value);
  }

  get sslCertStorePassword(): string {
    return (this._get('SSLCertStorePassword') as string | undefined) ?? '';
  }
  set sslCertStorePassword(value: string) {
    this._set('SSLCertStorePassword', value === '' ? undefined : value);
  }

  /** IPWorks's store type number (CertStoreTypes): 2 PFX file, 3 PFX blob, 6 PEM file, 7 PEM blob, 99 auto. */
  get sslCertStoreType(): number {
    return storeTypeNumber(this._get('SSLCertStoreType') as string | undefined);
  }
  set sslCertStoreType(value: number | string) {
    this._set('SSLCertStoreType', this._storeType(value));
  }

  private _storeType(value: unknown): unknown {
    try {
      return storeTypeName(value);
    } catch (error) {
      if (error instanceof TlsSettingError) throw settingError(error.setting, error.message.slice(error.setting.length + 2));
      throw error;
    }
  }

  /** Which certificate of a PEM store to use ("CN=name"; "*" or '' for the first). */
  get sslCertSubject(): string {
    return (this._get('SSLCertSubject') as string | undefined) ?? '';
  }
  set sslCertSubject(value: string) {
    this._set('SSLCertSubject', value === '' ? undefined : value);
  }

  /** Negotiate TLS (wss) with every incoming connection. */
  get useSSL(): boolean {
    return this._get('UseSSL') === true;
  }
  set useSSL(value: boolean) {
    this._set('UseSSL', value);
  }

  /** The number of connected clients. */
  get webSocketConnectionCount(): number {
    return this.connections.size;
  }

  /**
   * Whether the server accepts connections. Setting true starts listening on localHost:localPort
   * (settings problems throw at once; a bind failure fires Error); false stops accepting new
   * connections and leaves the connected ones alone.
   */
  get listening(): boolean {
    return this._listener !== null;
  }
  set listening(value: boolean) {
    if (value) {
      const bound = this._listen();
      bound.catch((error: Error) => this._error('', new IPWorksError(IPWorksError.NOT_CONNECTED, `cannot listen: ${error.message}`)));
    } else void this.stopListening();
  }

  /** Starts listening; resolves once the port is bound (localPort then tells which). */
  startListening(): Promise<void> {
    return this._listen();
  }

  /** Stops accepting connections; connected clients stay. */
  stopListening(): Promise<void> {
    const listener = this._listener;
    this._listener = null;
    this._bound = null;
    this._tlsHub = null;
    if (listener) {
      listener.close();
      this._log('', 1, 'Stopped listening', 'Info');
    }
    return Promise.resolve();
  }

  private _listen(): Promise<void> {
    if (this._bound) return this._bound;
    const settings = this._settings;
    let hub: tls.Server | null = null;
    if (settings.useTls === true) {
      try {
        hub = this._createTlsHub(tlsServerOptions(settings));
      } catch (error) {
        if (error instanceof TlsSettingError) throw settingError(error.setting, error.message.slice(error.setting.length + 2));
        throw new IPWorksError(IPWorksError.TLS, `cannot set up TLS: ${(error as Error).message}`);
      }
    }
    const listener = net.createServer((socket) => this._onTcpConnection(socket));
    this._listener = listener;
    this._tlsHub = hub;
    const host = (settings.host as string | undefined) || ({ ipv4: '0.0.0.0', ipv6: '::', both: undefined } as Record<string, string | undefined>)[String(settings.ipFamily)];
    this._bound = new Promise<void>((resolve, reject) => {
      listener.once('error', (error) => {
        if (this._listener === listener) {
          this._listener = null;
          this._bound = null;
        }
        reject(error);
      });
      listener.listen({ port: settings.port ?? 0, host, backlog: settings.backlog, ipv6Only: settings.ipFamily === 'ipv6' }, () => {
        listener.on('error', (error) => this._error('', new IPWorksError(IPWorksError.NOT_CONNECTED, error.message)));
        this._log('', 1, `Listening on ${host ?? '*'}:${this.localPort}`, 'Info');
        resolve();
      });
    });
    this._bound.catch(noop);
    return this._bound;
  }

  // ---------------------------------------------------------------- methods

  private _record(connectionId: string | number): WebSocketConnection {
    const record = this.connections.get(String(connectionId).trim());
    if (!record) throw new IPWorksError(IPWorksError.UNKNOWN_CONNECTION, `no connection with id ${connectionId}`);
    return record;
  }

  /**
   * Closes a client's connection with DisconnectStatusCode / DisconnectStatusDescription. With
   * WaitForCloseResponse (the default) the client's close frame is awaited (up to the close timeout);
   * without, the TCP connection is closed right after the close frame.
   */
  disconnect(connectionId: string | number): void {
    const record = this._record(connectionId);
    const ws = record.wirestate;
    if (ws.readyState !== 1) return;
    const code = (this._settings.defaultCloseCode as number | undefined) ?? 1000;
    const reason = (this._settings.defaultCloseReason as string | undefined) ?? '';
    record._localClose = { code, reason };
    ws.close(code, reason);
    if (this._settings.waitForCloseResponse === false) {
      // Hand the close frame to the socket now, then close it without waiting for the answer.
      ws._uncork();
      ws.terminate();
    }
  }

  /**
   * IPWorks asks applications to call DoEvents in a loop so its message queue is processed. Node's
   * event loop already dispatches every socket and timer event, so there is nothing to pump: this
   * only yields once to the event loop (resolving after pending I/O callbacks ran), which keeps
   * loops written for IPWorks (`while (run) await server.doEvents()`) working without spinning.
   */
  doEvents(): Promise<void> {
    return new Promise((resolve) => setImmediate(resolve));
  }

  /** Stops a sendFile (or a MessageLength message) in progress on the connection. */
  interrupt(connectionId: string | number): void {
    this._record(connectionId)._interrupt();
  }

  /** Sends data framed by the connection's dataFormat (automatic: strings as text, bytes as binary). */
  send(connectionId: string | number, data: string | Buffer | Uint8Array): Promise<void> {
    const record = this._record(connectionId);
    return record._sendMessage(toBytes(data), record._kindFor(typeof data === 'string'));
  }

  /** Sends a text message. */
  sendText(connectionId: string | number, text: string): Promise<void> {
    return this._record(connectionId)._sendMessage(Buffer.from(String(text), 'utf8'), 'text');
  }

  /** Sends a file's content as one binary message, streamed in MaxFrameSize frames. */
  sendFile(connectionId: string | number, fileName: string): Promise<void> {
    return this._record(connectionId)._sendFile(fileName);
  }

  /** Stops listening and disconnects every client; resolves when all are disconnected. */
  async shutdown(): Promise<void> {
    await this.stopListening();
    const records = [...this.connections.values()];
    const gone = records.map((record) => new Promise<void>((resolve) => record._whenGone(resolve)));
    for (const record of records) this.disconnect(record.connectionId);
    await Promise.all(gone);
  }

  // ---------------------------------------------------------------- events from the sockets

  _log(connectionId: string, logLevel: number, message: string, logType: string): void {
    if (this.listenerCount('Log') > 0) this.emit('Log', { connectionId, logLevel, message, logType });
  }

  _error(connectionId: string, error: IPWorksError): void {
    if (this.listenerCount('Error') > 0) this.emit('Error', { connectionId, errorCode: error.code, description: error.message });
  }

  private _sslStatus(connectionId: string, message: string): void {
    this._log(connectionId, 2, message, 'SSL');
    if (this.listenerCount('SSLStatus') > 0) this.emit('SSLStatus', { connectionId, message });
  }

  private _onTcpConnection(socket: net.Socket): void {
    socket.on('error', noop);
    const id = String(++this._nextId);
    const settings = this._settings;
    const address = plainAddress(socket.remoteAddress);
    const request: ConnectionRequestEvent = { address, port: socket.remotePort ?? 0, accept: isAllowed(address, settings.allowedClients as string[] | undefined) };
    this.emit('ConnectionRequest', request);
    if (!request.accept) {
      this._log(id, 1, `Connection from ${address}:${request.port} refused`, 'Info');
      socket.destroy();
      return;
    }
    this._ids.set(socket, id);
    this._log(id, 1, `Connection from ${address}:${request.port} accepted`, 'Info');
    const keepAlive = (settings.tcpKeepAliveTime as number | undefined) ?? 0;
    if (keepAlive > 0) socket.setKeepAlive(true, keepAlive);
    if (this._tlsHub) this._startTls(socket, id, this._tlsHub);
    else this._toHttp(socket);
  }

  /**
   * Hands a connection to the HTTP parser. The opening handshake must complete within
   * handshakeTimeout (RFC 6455 section 4.1; slowloris): the internal http.Server never listens, so
   * its own header timeouts do not run, and the socket's idle timeout stands in until the runtime
   * takes the socket over at the upgrade (which clears it).
   */
  private _toHttp(socket: net.Socket): void {
    const limit = (this._settings.handshakeTimeout as number | undefined) ?? 0;
    if (limit > 0) socket.setTimeout(limit, () => socket.destroy());
    this._http.emit('connection', socket);
  }

  private _createTlsHub(options: tls.TlsOptions): tls.Server {
    // A tls.Server that never listens: the facade hands it each TCP connection, and it runs the handshake.
    const hub = tls.createServer(options);
    hub.on('secureConnection', (tlsSocket: tls.TLSSocket) => this._onSecure(tlsSocket));
    hub.on('tlsClientError', (error: Error, tlsSocket: tls.TLSSocket) => {
      const id = this._idOfTls(tlsSocket);
      this._sslStatus(id, `TLS handshake failed: ${error.message}`);
      this._error(id, new IPWorksError(IPWorksError.TLS, `TLS handshake failed: ${error.message}`));
      tlsSocket.destroy();
    });
    return hub;
  }

  private _idOfTls(tlsSocket: tls.TLSSocket): string {
    const parent = (tlsSocket as tls.TLSSocket & { _parent?: net.Socket })._parent;
    return this._ids.get(tlsSocket) ?? (parent ? this._ids.get(parent) : undefined) ?? '';
  }

  private _startTls(socket: net.Socket, id: string, defaultHub: tls.Server): void {
    const settings = this._settings;
    this._sslStatus(id, 'TLS handshake started');
    const handshakeTimeout = (settings.tlsHandshakeTimeout as number | undefined) ?? 0;
    if (handshakeTimeout > 0) socket.setTimeout(handshakeTimeout, () => socket.destroy());
    socket.once('data', (chunk: Buffer) => {
      // Read the ClientHello for SSLConnectionRequest, then give it back to the TLS layer.
      socket.pause();
      socket.unshift(chunk);
      socket.setTimeout(0);
      let hub = defaultHub;
      if (this.listenerCount('SSLConnectionRequest') > 0) {
        const hello = parseClientHello(chunk);
        const selection = (typeof settings.tlsCertSelection === 'object' && settings.tlsCertSelection) || {};
        const current = {
          certStoreType: storeTypeNumber(((selection as { storeType?: string }).storeType ?? settings.tlsCertStoreType) as string | undefined),
          certStore: String((selection as { store?: string }).store ?? settings.tlsCertStore ?? ''),
          certPassword: String((selection as { storePassword?: string }).storePassword ?? settings.tlsPassphrase ?? ''),
          certSubject: String((selection as { subject?: string }).subject ?? settings.tlsCertSubject ?? ''),
        };
        const event: SSLConnectionRequestEvent = {
          connectionId: id,
          supportedCipherSuites: hello.cipherSuites.join(','),
          supportedSignatureAlgs: hello.signatureAlgorithms.join(','),
          ...current,
        };
        this.emit('SSLConnectionRequest', event);
        if (event.certStoreType !== current.certStoreType || event.certStore !== current.certStore || event.certPassword !== current.certPassword || event.certSubject !== current.certSubject) {
          try {
            hub = this._createTlsHub(
              tlsServerOptions(settings, {
                store: event.certStore || undefined,
                storeType: storeTypeName(event.certStoreType) as string,
                password: event.certPassword || undefined,
                subject: event.certSubject || undefined,
              }),
            );
          } catch (error) {
            this._error(id, new IPWorksError(IPWorksError.TLS, `the certificate chosen in SSLConnectionRequest cannot be used: ${(error as Error).message}`));
            socket.destroy();
            return;
          }
        }
      }
      hub.emit('connection', socket);
    });
  }

  private _onSecure(tlsSocket: tls.TLSSocket): void {
    const id = this._idOfTls(tlsSocket);
    this._ids.set(tlsSocket, id);
    tlsSocket.on('error', noop);
    const cipher = tlsSocket.getCipher();
    this._sslStatus(id, `TLS handshake complete: ${tlsSocket.getProtocol()}, ${cipher.standardName ?? cipher.name}`);
    const settings = this._settings;
    if (settings.tlsRequestClientCert === true) {
      const includeChain = settings.tlsIncludeCertChain === true;
      const certificate = tlsSocket.getPeerCertificate(includeChain) as tls.DetailedPeerCertificate;
      const present = certificate !== null && typeof certificate === 'object' && Object.keys(certificate).length > 0 && certificate.raw !== undefined;
      const failure = tlsSocket.authorized ? undefined : String(tlsSocket.authorizationError ?? 'no client certificate');
      let pem = '';
      if (present) {
        pem = toPem(certificate.raw);
        if (includeChain) {
          let next = certificate.issuerCertificate;
          let previous: tls.DetailedPeerCertificate = certificate;
          while (next && next !== previous && next.raw && !next.raw.equals(previous.raw)) {
            pem += toPem(next.raw);
            previous = next;
            next = next.issuerCertificate;
          }
        }
      }
      const event: SSLClientAuthenticationEvent = {
        connectionId: id,
        certEncoded: pem,
        certEncodedB: Buffer.from(pem),
        certSubject: present ? formatName(certificate.subject as unknown as Record<string, string>) : '',
        certIssuer: present ? formatName(certificate.issuer as unknown as Record<string, string>) : '',
        status: present ? (failure ?? 'OK') : 'no client certificate',
        accept: present && (failure === undefined || toleratedBy((settings.tlsSecurityFlags as number | undefined) ?? 0, failure)),
      };
      this.emit('SSLClientAuthentication', event);
      if (!event.accept) {
        this._sslStatus(id, `client certificate refused: ${event.status}`);
        tlsSocket.destroy();
        return;
      }
    }
    this._toHttp(tlsSocket);
  }

  /** The engine's verifyClient hook: WebSocketOpenRequest decides, by its statusCode. */
  private _onOpenRequest(req: http.IncomingMessage, decide: (ok: boolean, code?: number, message?: string, headers?: Record<string, string>) => void): void {
    const id = this._ids.get(req.socket) ?? String(++this._nextId);
    this._ids.set(req.socket, id);
    const offered = String(req.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean);
    const event: WebSocketOpenRequestEvent = {
      connectionId: id,
      requestURI: req.url ?? '/',
      hostHeader: String(req.headers.host ?? ''),
      originHeader: String(req.headers.origin ?? ''),
      subProtocols: offered.join(','),
      extensions: String(req.headers['sec-websocket-extensions'] ?? ''),
      requestHeaders: rawHeaderLines(req),
      statusCode: 101,
      responseHeaders: '',
    };
    const before = event.subProtocols;
    try {
      this.emit('WebSocketOpenRequest', event);
    } catch (error) {
      // An exception in the application's handler refuses the request (500) and is reported, not lost.
      this._error(id, new IPWorksError(IPWorksError.INVALID_DATA, `the WebSocketOpenRequest handler threw: ${(error as Error)?.message ?? error}`));
      decide(false, 500);
      return;
    }
    const headers = parseHeaderLines(event.responseHeaders);
    if (event.statusCode !== 101) {
      this._log(id, 1, `WebSocket open request refused with ${event.statusCode}`, 'Info');
      decide(false, event.statusCode, undefined, headers);
      return;
    }
    // Unchanged, the client's first choice is accepted; '' accepts none.
    const chosen = event.subProtocols === before ? offered[0] : event.subProtocols.trim() || undefined;
    if (chosen !== undefined && !offered.includes(chosen)) {
      this._error(id, new IPWorksError(IPWorksError.INVALID_DATA, `subprotocol "${chosen}" was not offered by the client (${before || 'none offered'})`));
      decide(false, 500);
      return;
    }
    this._pending.set(req, { protocol: chosen, headers: Object.entries(headers).map(([k, v]) => `${k}: ${v}`) });
    decide(true);
  }

  /** The engine opened a WebSocket: a connection record, Connected and ReadyToSend. */
  private _opened(ws: RuntimeWebSocket, req: http.IncomingMessage): void {
    const id = this._ids.get(req.socket) ?? String(++this._nextId);
    const record = new WebSocketConnection(this, id, ws, req, this._settings);
    this.connections.set(id, record);
    if (ws._settings.assembleFragments !== false) {
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        this.emit('DataIn', dataIn(id, isBinary ? 2 : 1, isBinary ? data.toString('latin1') : data.toString('utf8'), data, true));
      });
    } else {
      ws.on('frame', (frame: ParsedFrame) => this.emit('DataIn', record._onFrame(frame)));
    }
    ws.on('pong', (data: Buffer) => this.emit('DataIn', dataIn(id, 10, data.toString('latin1'), data, true)));
    ws.on('error', (error: WebSocketProtocolError) => this._error(id, new IPWorksError(error.closeCode, error.message)));
    ws.on('drain', () => {
      if (record.readyToSend) this.emit('ReadyToSend', { connectionId: id });
    });
    if (this.listenerCount('Log') > 0) {
      ws.on('lifecycle', (step: LifecycleStep) => this._log(id, 2, `${step.from} -> ${step.to} (${step.event})`, 'Lifecycle'));
    }
    ws.on('close', (code: number, reason: Buffer) => {
      let statusCode = code;
      let description = reason.toString('utf8');
      const local = record._localClose;
      if (local && (code === 1005 || code === 1006)) {
        statusCode = local.code;
        description = local.reason;
      }
      if (description === '') description = (statusCode === 1006 ? ws.lifecycleDetail : null) ?? CLOSE_DESCRIPTIONS[statusCode] ?? '';
      this._log(id, 1, `Disconnected (${statusCode} ${description})`, 'Info');
      this.emit('Disconnected', { connectionId: id, statusCode, description });
      this.connections.delete(id);
      record._goneNow();
    });
    this._log(id, 1, `WebSocket opened${ws.protocol ? ` (subprotocol ${ws.protocol})` : ''}`, 'Info');
    this.emit('Connected', { connectionId: id, statusCode: 0, description: 'OK' });
    if (record.readyToSend) this.emit('ReadyToSend', { connectionId: id });
  }
}

/** IP*Works! WS V9's name for the same component. */
export class WSServer extends WebSocketServer {}

export default WebSocketServer;
