/**
 * One WebSocket connection, server side or client side: the connection driver. It owns one socket,
 * one actor of the generated connection machine and one frame parser; it turns socket and codec
 * events into machine events and performs the actions the machine asks for (runtime/machine-host.ts).
 * It decides no lifecycle on its own: readyState and `lifecycle` are read from the machine's state.
 *
 * Data frames in the open state cost no machine transition: the parser hands messages straight to
 * the application, and the keep-alive and idle timers learn about traffic from two flags that their
 * guards read when they fire.
 *
 * The public surface follows ws 8 (`import { WebSocket } from 'ws'`): events open / message(data,
 * isBinary) / close(code, reason Buffer) / error / ping / pong / upgrade / unexpected-response,
 * EventTarget methods, send / ping / pong / close / terminate / pause / resume, readyState, etc.
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { createActor, type Actor, type StateValue } from 'xstate';

type AnySnapshot = { readonly value: unknown; readonly status: string };
import {
  connectionReadyStateOf,
  type ConnectionEvent,
} from '../generated/connection.machine.generated.js';
import { Opcode, isSendableCloseCode, protocolErrors } from '../generated/protocol.generated.js';
import { FrameParser, type ParserSink } from './codec/parser.js';
import { closePayload, fragmentPayload, serializeFrame } from './codec/serializer.js';
import { protocolError, type WebSocketProtocolError } from './errors.js';
import { drivenConnectionMachine, type ConnectionHost } from './machine-host.js';
import { PerMessageDeflate } from './extensions/permessage-deflate.js';
import { isValidUtf8 } from './codec/utf8.js';
import { normalizeOptions, type ClientOptions, type ServerOptions } from './options.js';
import {
  addEventListener,
  getOnProperty,
  removeEventListener,
  setOnProperty,
  type EventListenerLike,
} from './event-target.js';

export type BinaryType = 'nodebuffer' | 'arraybuffer' | 'fragments';
export type Role = 'server' | 'client';
export type Settings = Required<ServerOptions> | Required<ClientOptions>;

/** One step of a connection's lifecycle: which event moved it from which state to which. */
export interface LifecycleStep {
  from: string;
  to: string;
  event: string;
  /** The full machine state after the step (parallel regions included). */
  state: StateValue;
  at: number;
}

export type LifecycleObserver = (ws: WebSocket, step: LifecycleStep) => void;

const READY_STATE_NAMES = ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'] as const;
const EMPTY = Buffer.alloc(0);
/** 0 means "no timeout": the longest delay Node's timers accept (about 24.8 days). */
const NO_TIMEOUT = 2 ** 31 - 1;

/** The machine's timer settings, shared by every connection made with the same settings. */
export interface TimerSettings {
  handshakeTimeout: number;
  closeTimeout: number;
  keepaliveInterval: number;
  keepaliveGracePeriod: number;
  idleTimeout: number;
}

const timerCache = new WeakMap<object, TimerSettings>();

export function timersOf(settings: Settings): TimerSettings {
  let timers = timerCache.get(settings);
  if (!timers) {
    const ms = (value: number | undefined) => (value === undefined || value <= 0 ? NO_TIMEOUT : Math.min(value, NO_TIMEOUT));
    timers = {
      handshakeTimeout: ms(settings.handshakeTimeout),
      closeTimeout: ms(settings.closeTimeout),
      keepaliveInterval: ms(settings.keepaliveInterval),
      keepaliveGracePeriod: ms(settings.keepaliveGracePeriod),
      idleTimeout: ms(settings.idleTimeout),
    };
    timerCache.set(settings, timers);
  }
  return timers;
}

/** A name for a state value: `open`, `closing.closedByUs`, `closed` … (open's parallel regions are left out). */
export function lifecycleName(value: StateValue): string {
  if (typeof value === 'string') return value;
  const top = Object.keys(value)[0]!;
  const child = (value as Record<string, StateValue>)[top];
  if (top === 'open' || child === undefined) return top;
  return `${top}.${lifecycleName(child)}`;
}

export interface SendOptions {
  binary?: boolean;
  fin?: boolean;
  mask?: boolean;
  compress?: boolean;
}

type Callback = (error?: Error | null) => void;

/** Turns anything ws accepts as data into a Buffer (without copying where a view will do). */
export function toBuffer(data: unknown): { buffer: Buffer; isText: boolean } {
  if (typeof data === 'string') return { buffer: Buffer.from(data), isText: true };
  if (Buffer.isBuffer(data)) return { buffer: data, isText: false };
  if (data instanceof ArrayBuffer) return { buffer: Buffer.from(data), isText: false };
  if (ArrayBuffer.isView(data)) return { buffer: Buffer.from(data.buffer, data.byteOffset, data.byteLength), isText: false };
  if (data === undefined || data === null) return { buffer: EMPTY, isText: false };
  return { buffer: Buffer.from(String(data)), isText: true };
}

export class WebSocket extends EventEmitter implements ConnectionHost {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSING = 2;
  static readonly CLOSED = 3;
  declare readonly CONNECTING: 0;
  declare readonly OPEN: 1;
  declare readonly CLOSING: 2;
  declare readonly CLOSED: 3;

  /** Data an accept hook (verifyClient's `info.data`) attached to this connection. */
  data: unknown = undefined;

  readonly _role: Role;
  readonly _settings: Settings;
  readonly timers: TimerSettings;
  private readonly _actor: Actor<typeof drivenConnectionMachine>;
  private _snapshot: AnySnapshot;
  private _lifecycle = 'connecting';
  private _pendingEmits: (() => void)[] = [];
  private _socket: Duplex | null = null;
  private _parser: FrameParser | null = null;
  private _discardInput = false;
  private _binaryType: BinaryType = 'nodebuffer';
  private _url = '';
  private _protocol = '';
  private _extensions: Record<string, unknown> = {};
  private _closeFrameReceived = false;
  private _closeFrameSent = false;
  private _receivedCode: number | undefined = undefined;
  private _receivedReason = '';
  private _closeEmitted = false;
  private _activeForKeepalive = false;
  private _activeForIdle = false;
  private _bytesReceived = 0;
  private _messagesReceived = 0;
  private _messagesSent = 0;
  private _bytesSent = 0;
  private _fragmentedSend: number | null = null;
  private _corked = false;
  private _deflate: PerMessageDeflate | null = null;
  /** Frame writes waiting behind a compression in progress, in send order. */
  private _outbound: { ready: boolean; bytes: number; run: () => void }[] = [];
  private _flushing = false;
  private _queuedBytes = 0;
  private _stateDetail: string | null = null;
  /** Called by the server on open (instead of emitting 'open', which ws does not do on server sockets). */
  _onServerOpen: ((ws: WebSocket) => void) | null = null;
  /** Called once when the connection reaches a final state. */
  _onFinal: ((ws: WebSocket) => void) | null = null;
  private _observerFn: LifecycleObserver | null = null;
  /** The client's in-flight handshake request, aborted when the application closes while connecting. */
  _abortHandshakeRequest: ((reason: Error) => void) | null = null;
  _upgradeReq: IncomingMessage | undefined = undefined;
  readonly createdAt = Date.now();

  /**
   * `new WebSocket(address, protocols?, options?)` opens a client connection (ws's signature).
   * Server-side sockets are made by WebSocketServer through WebSocket._serverSide().
   */
  constructor(address: string | URL | null, protocols?: string | string[] | ClientOptionsInput, options?: ClientOptionsInput, internal?: { role: Role; settings: Settings }) {
    super();
    if (internal) {
      this._role = internal.role;
      this._settings = internal.settings;
    } else {
      if (protocols !== undefined && typeof protocols === 'object' && !Array.isArray(protocols)) {
        options = protocols;
        protocols = undefined;
      }
      this._role = 'client';
      this._settings = normalizeOptions('ws', 'client', stripClientOnly(options));
    }
    this.timers = timersOf(this._settings);
    const clock = (this._settings.clock as MachineClock | undefined) ?? realClock;
    this._actor = createActor(drivenConnectionMachine, { input: { role: this._role, host: this }, clock }) as Actor<typeof drivenConnectionMachine>;
    this._snapshot = this._actor.getSnapshot() as unknown as AnySnapshot;
    // Observers run after each step, with the new state current (actions run before it is).
    this._actor.subscribe((snapshot) => this._onSnapshot(snapshot as unknown as AnySnapshot));
    this._actor.start();
    if (!internal) {
      this._url = String(address);
      startClient(this, address!, (protocols as string | string[] | undefined) ?? [], options ?? {});
    }
  }

  /** A server-side connection in the connecting state; the server completes or fails its handshake. */
  static _serverSide(settings: Required<ServerOptions>, socket: Duplex, req: IncomingMessage): WebSocket {
    // `this`: the server may be configured with a subclass (ws's `WebSocket` option).
    const ws = new this(null, undefined, undefined, { role: 'server', settings });
    ws._upgradeReq = req;
    ws._setSocket(socket);
    return ws;
  }

  // ------------------------------------------------------------------ machine plumbing

  /** Sends an event to the machine. Every lifecycle change goes through here or through a timer. */
  _dispatch(event: ConnectionEvent): void {
    // A connection in a final state has no machine left to decide anything: later calls are no-ops.
    if (this._snapshot.status === 'done') return;
    this._actor.send(event);
  }

  private _onSnapshot(snapshot: AnySnapshot): void {
    if (snapshot === this._snapshot) return;
    this._snapshot = snapshot;
    const to = lifecycleName(snapshot.value as StateValue);
    const from = this._lifecycle;
    this._lifecycle = to;
    if (this._watching) {
      const observer = this._lifecycleObserver;
      if (from !== to || this._regionsChanged(snapshot)) {
        const step: LifecycleStep = { from, to, event: this._lastEventType, state: snapshot.value as StateValue, at: Date.now() };
        if (observer) observer(this, step);
        if (this.listenerCount('lifecycle') > 0) this.emit('lifecycle', step);
      }
    }
    // User-visible events queued by actions run now that readyState reflects the new state — or,
    // when the step was caused by an application call (close(), terminate()), on the next tick, so
    // that listeners added right after the call still hear them (ws emits these asynchronously too).
    if (this._pendingEmits.length > 0) {
      const pending = this._pendingEmits;
      this._pendingEmits = [];
      if (this._insideApiCall > 0) process.nextTick(runAll, pending);
      else runAll(pending);
    }
  }

  /** How deep we are inside an application call whose consequences must not be emitted synchronously. */
  private _insideApiCall = 0;

  /** Sends an event on behalf of an application call: what it makes visible is emitted on the next tick. */
  private _dispatchFromApi(event: ConnectionEvent): void {
    this._insideApiCall++;
    try {
      this._dispatch(event);
    } finally {
      this._insideApiCall--;
    }
  }

  /**
   * Lifecycle steps are reported only once someone watches (a 'lifecycle' listener, or the
   * server's inspector): naming the event of each step needs XState's inspection, which costs as
   * much as the rest of the actor, so a connection nobody watches does not pay for it.
   */
  private _watching = false;
  private _lastEventType = 'xstate.init';

  _watchLifecycle(): void {
    if (this._watching) return;
    this._watching = true;
    this._lastRegions = JSON.stringify(this._snapshot.value);
    // Each connection's actor system holds only its own actor, so every event it relays is ours.
    this._actor.system.inspect({
      next: (event: { type: string; event?: { type: string } }) => {
        if (event.type === '@xstate.event' && event.event) this._lastEventType = event.event.type;
      },
    });
  }

  /** Called on every lifecycle step (the server's inspector listens here); setting one starts watching. */
  get _lifecycleObserver(): LifecycleObserver | null {
    return this._observerFn;
  }

  set _lifecycleObserver(observer: LifecycleObserver | null) {
    this._observerFn = observer;
    if (observer) this._watchLifecycle();
  }

  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    if (event === 'lifecycle') this._watchLifecycle();
    return super.on(event, listener);
  }

  override addListener(event: string | symbol, listener: (...args: any[]) => void): this {
    return this.on(event, listener);
  }

  override once(event: string | symbol, listener: (...args: any[]) => void): this {
    if (event === 'lifecycle') this._watchLifecycle();
    return super.once(event, listener);
  }

  override prependListener(event: string | symbol, listener: (...args: any[]) => void): this {
    if (event === 'lifecycle') this._watchLifecycle();
    return super.prependListener(event, listener);
  }

  private _lastRegions = '';
  private _regionsChanged(snapshot: AnySnapshot): boolean {
    const regions = JSON.stringify(snapshot.value);
    const changed = regions !== this._lastRegions;
    this._lastRegions = regions;
    return changed;
  }

  private _later(emit: () => void): void {
    this._pendingEmits.push(emit);
  }

  // ------------------------------------------------------------------ socket plumbing

  _setSocket(socket: Duplex): void {
    this._socket = socket;
    // Listeners are shared functions that find their WebSocket on the socket: no closures per connection.
    (socket as SocketWithOwner)[kOwner] = this;
    socket.on('close', socketOnClose);
    socket.on('end', socketOnEnd);
    // Errors on the socket end it: 'close' follows and reports 1006, as ws does.
    socket.on('error', socketOnError);
    const net = socket as Duplex & { setNoDelay?: (on: boolean) => void; setTimeout?: (ms: number) => void };
    net.setNoDelay?.(this._settings.noDelay !== false);
    net.setTimeout?.(0);
    socket.on('drain', socketOnDrain);
  }

  /** The handshake succeeded: start framing over the socket, replaying bytes that came with the upgrade. */
  _open(protocol: string, extensions: Record<string, unknown>, head: Buffer, deflate: PerMessageDeflate | null = null): void {
    const socket = this._socket!;
    this._protocol = protocol;
    this._extensions = extensions;
    this._deflate = deflate;
    const settings = this._settings;
    this._parser = new FrameParser(
      {
        role: this._role,
        maxPayload: settings.maxPayload ?? 0,
        maxFrameSize: settings.maxReceivedFrameSize ?? 0,
        maxFragments: settings.maxFragments ?? 0,
        maxBufferedChunks: settings.maxBufferedChunks ?? 0,
        skipUtf8Validation: settings.skipUTF8Validation === true,
        // RFC 7692 section 6.1: RSV1 marks a compressed message once permessage-deflate is negotiated.
        rsv1Allowed: deflate !== null,
        assembleFragments: settings.assembleFragments !== false,
      },
      this._parserSink(),
    );
    this._dispatch({ type: 'HANDSHAKE_SUCCEEDED' });
    if (head.length > 0) socket.unshift(head);
    socket.on('data', socketOnData);
  }

  _onData(chunk: Buffer): void {
    this._bytesReceived += chunk.length;
    this._activeForKeepalive = true;
    this._activeForIdle = true;
    if (this._discardInput) return;
    this._parser!.push(chunk);
  }

  private _parserSink(): ParserSink {
    return {
      onMessage: (data, isBinary, compressed) => {
        if (compressed) this._inflate(data, isBinary);
        else this._inOrder(() => this._emitMessage(data, isBinary));
      },
      onFrame: (frame) => {
        this._inOrder(() => this.emit('frame', frame));
      },
      onPing: (payload) => {
        this._inOrder(() => {
          // RFC 6455 section 5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a Pong frame in
          // response ... as soon as is practical", unless it already received a Close frame.
          if (this._settings.autoPong !== false && this.readyState === WebSocket.OPEN) this._autoPong(payload);
          this.emit('ping', payload);
        });
      },
      onPong: (payload) => {
        this._inOrder(() => {
          this._dispatch({ type: 'PONG_RECEIVED' });
          this.emit('pong', payload);
        });
      },
      onClose: (code, reason) => {
        this._inOrder(() => {
          this._closeFrameReceived = true;
          this._receivedCode = code;
          this._receivedReason = reason;
          this._dispatch(code === undefined ? { type: 'CLOSE_RECEIVED', reason } : { type: 'CLOSE_RECEIVED', code, reason });
        });
      },
      onError: (error) => this._inOrder(() => this._failWith(error)),
    };
  }

  /**
   * Answers a ping, unless answers are piling up unsent: a peer that floods pings and does not read
   * would otherwise grow our send queue without bound. While maxPendingAutoPongs answers are still
   * unwritten, or the send queue is above sendHighWaterMark, a ping is not answered at once: only the
   * latest such ping is remembered, and answered as soon as the queue moves again. RFC 6455 section
   * 5.5.3 allows exactly that: "If an endpoint receives a Ping frame and has not yet sent Pong
   * frame(s) in response to previous Ping frame(s), the endpoint MAY elect to send a Pong frame for
   * only the most recently processed Ping frame." Memory: at most maxPendingAutoPongs + 1 pongs.
   */
  private _autoPong(payload: Buffer): void {
    if (this._autoPongsBlocked()) {
      // A copy (≤ 125 bytes): a view would pin the peer's whole chunk.
      this._deferredPong = Buffer.from(payload);
      this._skippedAutoPongs++;
      return;
    }
    this._pendingAutoPongs++;
    this._sendFrame(Opcode.pong, payload, true, this._autoPongWritten);
  }

  private _autoPongsBlocked(): boolean {
    const maxPending = this._settings.maxPendingAutoPongs ?? 0;
    const highWaterMark = this._settings.sendHighWaterMark ?? 0;
    return (maxPending > 0 && this._pendingAutoPongs >= maxPending) || (highWaterMark > 0 && this.bufferedAmount >= highWaterMark);
  }

  /** The answer to the latest ping that could not be answered at once. */
  private _sendDeferredPong(): void {
    const payload = this._deferredPong;
    if (payload === null || this.readyState !== WebSocket.OPEN || this._autoPongsBlocked()) return;
    this._deferredPong = null;
    this._pendingAutoPongs++;
    this._sendFrame(Opcode.pong, payload, true, this._autoPongWritten);
  }

  private _pendingAutoPongs = 0;
  private _skippedAutoPongs = 0;
  private _deferredPong: Buffer | null = null;
  private readonly _autoPongWritten = () => {
    this._pendingAutoPongs--;
    if (this._deferredPong !== null) this._sendDeferredPong();
  };

  private _emitMessage(data: Buffer, isBinary: boolean): void {
    this._messagesReceived++;
    this.emit('message', this._deliver(data, isBinary), isBinary);
  }

  /**
   * What the parser reported, in the order it reported it. Inflating is asynchronous, so while a
   * compressed message inflates, everything after it (messages, pings, the peer's close) waits
   * behind it; the queue is bounded by pausing the socket when it grows.
   */
  private _ordered: { ready: boolean; run: () => void }[] = [];
  private _backpressured = false;
  private _readingPaused = false;

  private _inOrder(run: () => void): void {
    if (this._ordered.length === 0) run();
    else this._ordered.push({ ready: true, run });
  }

  private _inflate(data: Buffer, isBinary: boolean): void {
    const item = { ready: false, run: () => {} };
    this._ordered.push(item);
    if (this._ordered.length > 32 && !this._backpressured) {
      this._backpressured = true;
      this._socket?.pause();
    }
    this._deflate!.decompress(data, (error, inflated) => {
      item.run = () => {
        if (error) return this._failWith(error as WebSocketProtocolError);
        // RFC 6455 section 8.1: a text message's payload, once inflated, MUST be valid UTF-8.
        if (!isBinary && this._settings.skipUTF8Validation !== true && !isValidUtf8(inflated!)) return this._failWith(protocolError('invalidUtf8'));
        this._emitMessage(inflated!, isBinary);
      };
      item.ready = true;
      this._drainOrdered();
    });
  }

  private _drainOrdered(): void {
    while (this._ordered.length > 0 && this._ordered[0]!.ready) {
      const item = this._ordered.shift()!;
      // RFC 6455 section 7.1.7: nothing more is processed once the connection failed.
      if (!this._discardInput) item.run();
    }
    if (this._ordered.length === 0 && this._backpressured) {
      this._backpressured = false;
      if (!this._readingPaused) this._socket?.resume();
    }
  }

  private _failWith(error: WebSocketProtocolError): void {
    this._stateDetail = error.message;
    this._receivedCode = undefined;
    this._protocolError = error;
    // RFC 6455 section 7.1.7: fail the connection first (the machine sends the close frame and
    // stops reading), then tell the application — which, as with ws, finds it already CLOSING.
    this._dispatch({ type: 'PROTOCOL_ERROR', errorId: error.id });
    this._emitError(error);
  }

  private _protocolError: WebSocketProtocolError | null = null;

  private _deliver(data: Buffer, isBinary: boolean): unknown {
    if (!isBinary) return data;
    switch (this._binaryType) {
      case 'arraybuffer':
        return data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data.buffer : data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
      case 'fragments':
        return [data];
      default:
        return data;
    }
  }

  /**
   * Writes a frame; frames produced in the same tick leave in one write (cork until the next tick).
   * While a message is being compressed, later frames wait behind it, so the peer receives
   * everything in the order it was sent — the close frame last.
   */
  private _sendFrame(opcode: number, payload: Buffer, fin: boolean, cb: Callback | undefined, maskOverride?: boolean, rsv1 = false): boolean {
    if (this._outbound.length > 0 && !this._flushing) {
      this._outbound.push({ ready: true, bytes: payload.length, run: () => this._sendFrame(opcode, payload, fin, cb, maskOverride, rsv1) });
      this._queuedBytes += payload.length;
      return false;
    }
    const socket = this._socket!;
    const chunks = serializeFrame({ opcode, payload, fin, rsv1, mask: maskOverride ?? this._role === 'client' });
    this._bytesSent += payload.length;
    this._activeForIdle = true;
    if (!this._corked) {
      this._corked = true;
      socket.cork();
      process.nextTick(uncork, this);
    }
    for (let i = 0; i < chunks.length - 1; i++) socket.write(chunks[i]);
    return socket.write(chunks[chunks.length - 1], cb);
  }

  _uncork(): void {
    this._corked = false;
    this._socket?.uncork();
  }

  // ------------------------------------------------------------------ ConnectionHost: actions

  emitOpen(): void {
    this._later(() => {
      if (this._onServerOpen) this._onServerOpen(this);
      else this.emit('open');
    });
  }

  emitClose(): void {
    if (this._closeEmitted) return;
    this._closeEmitted = true;
    this._parser = null;
    // Inflations still running finish into nothing: no message (or error) after 'close'.
    this._discardInput = true;
    this._ordered = [];
    // Release the zlib contexts as soon as the connection is over (RFC 7692 keeps none past it).
    this._deflate?.cleanup();
    this._later(() => {
      const [code, reason] = this._closeResult();
      this._onFinal?.(this);
      this.emit('close', code, Buffer.from(reason));
    });
  }

  private _closeResult(): [number, string] {
    if (this._closeFrameReceived) return [this._receivedCode ?? 1005, this._receivedReason];
    return [1006, ''];
  }

  abortHandshake(event: ConnectionEvent): void {
    if (this._role === 'client') {
      const error = new Error('WebSocket was closed before the connection was established');
      this._abortHandshakeRequest?.(error);
      if (event.type === 'CLOSE_REQUESTED' || event.type === 'TERMINATE_REQUESTED') this._later(() => this._emitError(error));
    }
  }

  reportHandshakeTimeout(): void {
    this._stateDetail = 'opening handshake timed out';
    const error = protocolError('handshakeTimeout');
    this._abortHandshakeRequest?.(error);
    if (this._role === 'client') this._later(() => this._emitError(error));
  }

  reportKeepaliveTimeout(): void {
    this._stateDetail = 'no answer to a keep-alive ping within the grace period';
  }

  reportIdleTimeout(): void {
    this._stateDetail = 'idle timeout';
  }

  reportCloseTimeout(): void {
    this._stateDetail = 'closing handshake timed out';
  }

  sendClose(event: ConnectionEvent): void {
    let code: number | undefined;
    let reason = '';
    if (event.type === 'PROTOCOL_ERROR') {
      code = protocolErrors[event.errorId].closeCode;
      reason = this._protocolError?.message ?? protocolErrors[event.errorId].message;
    } else if (event.type === 'CLOSE_REQUESTED') {
      code = event.code;
      reason = event.reason;
    }
    this._writeClose(code, reason);
  }

  echoClose(event: ConnectionEvent): void {
    // RFC 6455 section 5.5.1: "When sending a Close frame in response, the endpoint typically echos
    // the status code it received." ws echoes the reason too; an empty close is answered with an empty close.
    if (event.type !== 'CLOSE_RECEIVED') return this._writeClose(undefined, '');
    this._writeClose(event.code, event.code === undefined ? '' : event.reason);
  }

  sendCloseWith(code: number, reason: string): void {
    this._writeClose(code, reason);
  }

  private _writeClose(code: number | undefined, reason: string): void {
    if (this._closeFrameSent || !this._socket || this._socket.destroyed) return;
    this._closeFrameSent = true;
    let payload: Buffer;
    try {
      payload = closePayload(code, truncateUtf8(reason, 123));
    } catch {
      payload = closePayload(1011, '');
    }
    if (this._fragmentedSend !== null) this._fragmentedSend = null;
    this._sendFrame(Opcode.close, payload, true, undefined);
  }

  sendPing(): void {
    if (this._socket && !this._socket.destroyed) this._sendFrame(Opcode.ping, EMPTY, true, undefined);
  }

  endSocket(): void {
    if (this._outbound.length > 0 && !this._flushing) {
      this._outbound.push({ ready: true, bytes: 0, run: () => this.endSocket() });
      return;
    }
    const socket = this._socket;
    if (socket && !socket.destroyed) {
      if (this._corked) this._uncork();
      socket.end();
    }
  }

  destroySocket(): void {
    this._socket?.destroy();
  }

  stopReading(): void {
    // RFC 6455 section 7.1.7: after failing the connection, no further data is processed.
    this._discardInput = true;
  }

  pauseSocket(): void {
    this._readingPaused = true;
    this._socket?.pause();
  }

  resumeSocket(): void {
    this._readingPaused = false;
    if (!this._backpressured) this._socket?.resume();
  }

  rearmKeepaliveCheck(): void {
    this._activeForKeepalive = false;
  }

  rearmIdleCheck(): void {
    this._activeForIdle = false;
  }

  // ------------------------------------------------------------------ ConnectionHost: guards

  keepaliveEnabled(): boolean {
    return this._settings.keepalive === true && (this._settings.keepaliveInterval ?? 0) > 0;
  }

  idleTimeoutEnabled(): boolean {
    return (this._settings.idleTimeout ?? 0) > 0;
  }

  dropOnKeepaliveTimeout(): boolean {
    return this._settings.dropConnectionOnKeepaliveTimeout !== false;
  }

  peerActiveSinceKeepaliveCheck(): boolean {
    return this._activeForKeepalive;
  }

  peerActiveSinceIdleCheck(): boolean {
    return this._activeForIdle;
  }

  // ------------------------------------------------------------------ public API (ws 8)

  get readyState(): 0 | 1 | 2 | 3 {
    return connectionReadyStateOf(this._snapshot.value as StateValue);
  }

  /** The current lifecycle state, finer than readyState: `connecting`, `open`, `closing.closedByUs`, `closing.closedByPeer`, `closing.acknowledged`, `closing.failed`, `closed`, `terminated`. */
  get lifecycle(): string {
    return this._lifecycle;
  }

  /** The machine's full state value, parallel regions of `open` included. */
  get lifecycleState(): StateValue {
    return this._snapshot.value as StateValue;
  }

  /** Why the connection is in its current state when a timer or an error put it there. */
  get lifecycleDetail(): string | null {
    return this._stateDetail;
  }

  get url(): string {
    return this._url;
  }

  get protocol(): string {
    return this._protocol;
  }

  get extensions(): string {
    return Object.keys(this._extensions).join(', ');
  }

  get binaryType(): BinaryType {
    return this._binaryType;
  }

  set binaryType(type: BinaryType) {
    if (type === 'nodebuffer' || type === 'arraybuffer' || type === 'fragments') this._binaryType = type;
  }

  get bufferedAmount(): number {
    const socket = this._socket as (Duplex & { writableLength?: number }) | null;
    return (socket?.writableLength ?? 0) + this._queuedBytes;
  }

  get bytesReceived(): number {
    return this._bytesReceived;
  }

  get isPaused(): boolean {
    return this._socket?.isPaused() ?? false;
  }

  /** Counters for monitoring (and the live view): messages and payload bytes each way. */
  get stats(): { messagesIn: number; messagesOut: number; bytesIn: number; bytesOut: number } {
    return { messagesIn: this._messagesReceived, messagesOut: this._messagesSent, bytesIn: this._bytesReceived, bytesOut: this._bytesSent };
  }

  get remoteAddress(): string | undefined {
    return (this._socket as { remoteAddress?: string } | null)?.remoteAddress;
  }

  get remotePort(): number | undefined {
    return (this._socket as { remotePort?: number } | null)?.remotePort;
  }

  get upgradeReq(): IncomingMessage | undefined {
    return this._upgradeReq;
  }

  wasClean(): boolean {
    return this._lifecycle === 'closed';
  }

  /**
   * Sends a message. Returns false when the socket's write buffer is above sendHighWaterMark, so the
   * caller can wait for 'drain' (ws returns nothing; a boolean is compatible with that).
   */
  send(data: unknown, options?: SendOptions | Callback, cb?: Callback): boolean {
    if (typeof options === 'function') {
      cb = options;
      options = {};
    }
    const state = this.readyState;
    if (state === WebSocket.CONNECTING) throw new Error('WebSocket is not open: readyState 0 (CONNECTING)');
    const { buffer, isText } = toBuffer(data);
    if (state !== WebSocket.OPEN) {
      notOpen(this, cb);
      return false;
    }
    const opts = options ?? {};
    const binary = opts.binary ?? !isText;
    const fin = opts.fin ?? true;
    const mask = opts.mask;
    let opcode: number = binary ? Opcode.binary : Opcode.text;
    if (this._fragmentedSend !== null) opcode = Opcode.continuation;
    else if (!fin) this._fragmentedSend = opcode;
    if (fin) {
      this._fragmentedSend = null;
      this._messagesSent++;
    }
    // Compress whole messages at or above the threshold (RFC 7692 section 6); messages the
    // application fragments itself (fin: false) go uncompressed, which the RFC allows per message.
    const deflate = this._deflate;
    if (deflate && opts.compress !== false && fin && opcode !== Opcode.continuation && buffer.length >= deflate.threshold) {
      this._compressAndSend(deflate, opcode, buffer, cb, mask);
      return this._afterWrite(false);
    }
    return this._afterWrite(this._writeMessage(opcode, buffer, fin, cb, mask, false));
  }

  /** Writes one message (or one application fragment), split at fragmentationThreshold when asked. */
  private _writeMessage(opcode: number, buffer: Buffer, fin: boolean, cb: Callback | undefined, mask: boolean | undefined, rsv1: boolean): boolean {
    const threshold = this._settings.autoFragment !== false ? (this._settings.fragmentationThreshold ?? 0) : 0;
    if (threshold > 0 && buffer.length > threshold) {
      const pieces = fragmentPayload(buffer, threshold);
      // RFC 7692 section 6.1: RSV1 is set on the first frame of a compressed message only.
      for (let i = 0; i < pieces.length - 1; i++) this._sendFrame(i === 0 ? opcode : Opcode.continuation, pieces[i]!, false, undefined, mask, rsv1 && i === 0);
      return this._sendFrame(pieces.length === 1 ? opcode : Opcode.continuation, pieces[pieces.length - 1]!, fin, cb, mask, rsv1 && pieces.length === 1);
    }
    return this._sendFrame(opcode, buffer, fin, cb, mask, rsv1);
  }

  private _compressAndSend(deflate: PerMessageDeflate, opcode: number, buffer: Buffer, cb: Callback | undefined, mask: boolean | undefined): void {
    const item = { ready: false, bytes: buffer.length, run: () => {} };
    this._outbound.push(item);
    this._queuedBytes += buffer.length;
    deflate.compress(buffer, (error, compressed) => {
      item.run = () => {
        if (error) {
          if (cb) process.nextTick(cb, error);
          return;
        }
        this._writeMessage(opcode, compressed!, true, cb, mask, true);
      };
      item.ready = true;
      this._flushOutbound();
    });
  }

  /** Writes the queued frames in order, up to the first compression still running. */
  private _flushOutbound(): void {
    this._flushing = true;
    try {
      while (this._outbound.length > 0 && this._outbound[0]!.ready) {
        const item = this._outbound.shift()!;
        this._queuedBytes -= item.bytes;
        item.run();
      }
    } finally {
      this._flushing = false;
    }
    if (this._needDrain && this._outbound.length === 0) this._emitDrain();
  }

  /** send() returned false: 'drain' is owed once the queue is back below sendHighWaterMark. */
  private _needDrain = false;

  /** 'drain': the socket flushed its buffer, or the compression queue emptied below the mark. */
  _emitDrain(): void {
    if (this._deferredPong !== null) this._sendDeferredPong();
    const socket = this._socket as (Duplex & { writableNeedDrain?: boolean }) | null;
    if (socket?.writableNeedDrain) return; // the socket's own 'drain' comes later
    const highWaterMark = this._settings.sendHighWaterMark ?? 0;
    if (highWaterMark > 0 && this.bufferedAmount >= highWaterMark) return;
    this._needDrain = false;
    if (this.listenerCount('drain') > 0) this.emit('drain');
  }

  private _afterWrite(written: boolean): boolean {
    const highWaterMark = this._settings.sendHighWaterMark ?? 0;
    if (highWaterMark <= 0) {
      if (!written) this._needDrain = true;
      return written;
    }
    const below = this.bufferedAmount < highWaterMark;
    if (!below) this._needDrain = true;
    if (!below && this._settings.closeOnSendOverflow === true && this.readyState === WebSocket.OPEN) {
      // The application chose to close a connection whose peer does not read (policy violation, 1008).
      this._stateDetail = 'send buffer above sendHighWaterMark';
      this._dispatch({ type: 'CLOSE_REQUESTED', code: 1008, reason: 'send buffer overflow' });
    }
    return below;
  }

  ping(data?: unknown, mask?: boolean | Callback, cb?: Callback): void {
    this._control(Opcode.ping, data, mask, cb);
  }

  pong(data?: unknown, mask?: boolean | Callback, cb?: Callback): void {
    this._control(Opcode.pong, data, mask, cb);
  }

  private _control(opcode: number, data: unknown, mask: boolean | Callback | undefined, cb: Callback | undefined): void {
    if (typeof data === 'function') {
      cb = data as Callback;
      data = undefined;
      mask = undefined;
    } else if (typeof mask === 'function') {
      cb = mask;
      mask = undefined;
    }
    if (this.readyState === WebSocket.CONNECTING) throw new Error('WebSocket is not open: readyState 0 (CONNECTING)');
    const { buffer } = toBuffer(typeof data === 'number' ? String(data) : data);
    // RFC 6455 section 5.5: "All control frames MUST have a payload length of 125 bytes or less."
    if (buffer.length > 125) throw new RangeError('The data size must not be greater than 125 bytes');
    if (this.readyState !== WebSocket.OPEN) {
      notOpen(this, cb);
      return;
    }
    this._sendFrame(opcode, buffer, true, cb, mask as boolean | undefined);
  }

  /** Starts the closing handshake (RFC 6455 section 7.1.2). */
  close(code?: number, reason?: string | Buffer): void {
    if (code !== undefined && (typeof code !== 'number' || !isSendableCloseCode(code))) {
      throw new TypeError('First argument must be a valid error code number');
    }
    const text = reason === undefined ? '' : Buffer.isBuffer(reason) ? reason.toString() : String(reason);
    // RFC 6455 section 5.5: the close payload (2-byte code + reason) is at most 125 bytes.
    if (Buffer.byteLength(text) > 123) throw new SyntaxError('The message must not be greater than 123 bytes');
    if (code === undefined && text.length > 0) throw new TypeError('A close reason needs a close code');
    this._dispatchFromApi(code === undefined ? { type: 'CLOSE_REQUESTED', reason: text } : { type: 'CLOSE_REQUESTED', code, reason: text });
  }

  /** Destroys the connection at once, without a closing handshake. */
  terminate(): void {
    this._dispatchFromApi({ type: 'TERMINATE_REQUESTED' });
  }

  /** Stops reading (the machine ignores it while connecting or closing, as ws does). */
  pause(): void {
    this._dispatch({ type: 'PAUSE_REQUESTED' });
  }

  resume(): void {
    this._dispatch({ type: 'RESUME_REQUESTED' });
  }

  _emitError(error: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', error);
  }

  // EventTarget (ws's lib/event-target.js)
  addEventListener(type: string, listener: EventListenerLike, options?: { once?: boolean }): void {
    addEventListener(this, type, listener, options);
  }

  removeEventListener(type: string, listener: EventListenerLike): void {
    removeEventListener(this, type, listener);
  }

  get onopen() {
    return getOnProperty(this, 'open');
  }
  set onopen(handler) {
    setOnProperty(this, 'open', handler);
  }
  get onmessage() {
    return getOnProperty(this, 'message');
  }
  set onmessage(handler) {
    setOnProperty(this, 'message', handler);
  }
  get onclose() {
    return getOnProperty(this, 'close');
  }
  set onclose(handler) {
    setOnProperty(this, 'close', handler);
  }
  get onerror() {
    return getOnProperty(this, 'error');
  }
  set onerror(handler) {
    setOnProperty(this, 'error', handler);
  }
}

for (const [index, name] of READY_STATE_NAMES.entries()) {
  Object.defineProperty(WebSocket.prototype, name, { value: index, enumerable: true });
}

function runAll(emits: (() => void)[]): void {
  for (const emit of emits) emit();
}

function uncork(ws: WebSocket): void {
  ws._uncork();
}

const kOwner = Symbol('wirestate.websocket');
type SocketWithOwner = Duplex & { [kOwner]: WebSocket };
const SOCKET_CLOSED = { type: 'SOCKET_CLOSED' } as const;
const SOCKET_ENDED = { type: 'SOCKET_ENDED' } as const;

function socketOnClose(this: Duplex): void {
  (this as SocketWithOwner)[kOwner]._dispatch(SOCKET_CLOSED);
}

function socketOnEnd(this: Duplex): void {
  (this as SocketWithOwner)[kOwner]._dispatch(SOCKET_ENDED);
}

function socketOnError(this: Duplex): void {
  this.destroy();
}

function socketOnDrain(this: Duplex): void {
  (this as SocketWithOwner)[kOwner]._emitDrain();
}

function socketOnData(this: Duplex, chunk: Buffer): void {
  (this as SocketWithOwner)[kOwner]._onData(chunk);
}

/** The clock the machine's timers run on: a {setTimeout, clearTimeout} pair (XState's SimulatedClock fits). */
export interface MachineClock {
  setTimeout(fn: (...args: any[]) => void, ms: number): unknown;
  clearTimeout(id: any): void;
}

/**
 * The real clock, except that a delay meaning "no timeout" (a setting of 0) schedules nothing: the
 * machine still names the timer, but no Node timer is created for a connection that will never use it.
 */
const realClock: MachineClock = {
  setTimeout: (fn, ms) => (ms >= NO_TIMEOUT ? undefined : setTimeout(fn, ms)),
  clearTimeout: (id) => {
    if (id !== undefined) clearTimeout(id);
  },
};

function notOpen(ws: WebSocket, cb: Callback | undefined): void {
  if (!cb) return;
  const error = new Error(`WebSocket is not open: readyState ${ws.readyState} (${READY_STATE_NAMES[ws.readyState]})`);
  process.nextTick(cb, error);
}

/** Cuts a string to at most `limit` UTF-8 bytes without splitting a character. */
export function truncateUtf8(text: string, limit: number): string {
  if (Buffer.byteLength(text) <= limit) return text;
  let out = '';
  let size = 0;
  for (const char of text) {
    const bytes = Buffer.byteLength(char);
    if (size + bytes > limit) break;
    out += char;
    size += bytes;
  }
  return out;
}

/** Options of `new WebSocket()`: ws's client options, plus the connection-level settings of the client role. */
export type ClientOptionsInput = Record<string, unknown>;

/** Options that shape the HTTP request rather than the connection: checked by the client, not the schema. */
const REQUEST_ONLY = new Set(['timeout', 'servername', 'lookup', 'family', 'signal', 'socketPath', 'auth', 'createConnection', 'setHost']);

function stripClientOnly(options: ClientOptionsInput | undefined): ClientOptionsInput {
  if (!options) return {};
  const out: ClientOptionsInput = {};
  for (const [key, value] of Object.entries(options)) if (!REQUEST_ONLY.has(key)) out[key] = value;
  return out;
}

// The client handshake lives in client.ts (the one file of the client side that imports http/https).
import { startClient } from './client.js';
