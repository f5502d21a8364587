/**
 * The inspector: a live view of a WebSocketServer's connection lifecycles, in the browser.
 *
 * `attachInspector(wss, options)` hooks the server's lifecycle observer (chaining any existing one)
 * and keeps, per connection, its id, remote address, subprotocol, current state (and the machine's
 * full state value), traffic counters (read from `ws.stats` when asked, never counted here) and a
 * ring buffer of its last `history` steps; connections that closed are kept with their close code
 * and reason, at most `retainClosed` of them, the oldest dropped first. Memory is therefore bounded
 * by (live connections + retainClosed) × history steps.
 *
 * It serves, on its own HTTP server (loopback by default), a page (runtime/inspect/page/) showing
 * the connection machine's diagram generated from the spec with each connection's state lit, the
 * list of connections, the selected connection's timeline and the server machine's state; the page
 * is fed over a WebSocket (runtime/inspect/http.ts) with a snapshot and then one message per step.
 * Steps can also be recorded as JSON lines (runtime/inspect/trace.ts) and replayed in the same page
 * (runtime/inspect/replay.ts).
 *
 * Nothing here runs unless asked for: a server with `inspect` off never calls `maybeInspect`'s
 * attachInspector, so it has no observer and records nothing.
 */
import { EventEmitter } from 'node:events';
import { ServerOptionsSchema } from '../../generated/options.generated.js';
import type { WebSocketServer } from '../server.js';
import type { LifecycleObserver, LifecycleStep, WebSocket } from '../websocket.js';
import { PageServer } from './http.js';
import { RingBuffer } from './ring.js';
import { CLOSE_EVENT, TraceWriter, type ConnectionStats, type StateValueJson, type TraceLine } from './trace.js';

export { RingBuffer } from './ring.js';
export { parseTrace, TraceFormatError, TraceWriter, CLOSE_EVENT, type TraceLine, type ConnectionStats, type StateValueJson } from './trace.js';

/** The settings of spec/settings.yaml `inspect`, plus two that only the API and the CLI take. */
export interface InspectorOptions {
  /** Port of the inspector's HTTP server; 0 picks a free one. */
  port?: number;
  /** Address it binds to (loopback by default). */
  host?: string;
  /** Lifecycle steps kept per connection (a ring buffer). */
  history?: number;
  /** Closed connections kept in the view, the oldest dropped first. */
  retainClosed?: number;
  /** Also write every lifecycle step to this file as JSON lines (see trace.ts); truncated at start. */
  record?: string;
  /** Milliseconds between updates of traffic counters and the server's state sent to watching pages. */
  interval?: number;
  /** Whether to serve the page at all (false: record only). Default true. */
  serve?: boolean;
}

export type ResolvedInspectorOptions = Required<Omit<InspectorOptions, 'record'>> & { record: string | null };

/** One step as the inspector keeps it. */
export interface StepRecord {
  event: string;
  from: string;
  to: string;
  state: StateValueJson;
  at: number;
}

export interface CloseRecord {
  code: number;
  reason: string;
  at: number;
}

/** A connection as the page sees it (and as `Inspector#connections()` returns it). */
export interface ConnectionView {
  id: number;
  remoteAddress: string;
  protocol: string;
  createdAt: number;
  state: string;
  value: StateValueJson;
  stats: ConnectionStats;
  steps: StepRecord[];
  /** Steps that fell out of the ring buffer. */
  dropped: number;
  endedAt: number | null;
  close: CloseRecord | null;
}

/** Messages from the inspector to the page (JSON over the WebSocket at /ws). */
export type InspectorMessage =
  | { type: 'hello'; mode: 'live'; history: number; retainClosed: number }
  | { type: 'snapshot'; now: number; server: string; connections: ConnectionView[] }
  | { type: 'line'; line: TraceLine; stats: ConnectionStats }
  | { type: 'drop'; connection: number }
  | { type: 'tick'; now: number; server: string; stats: [number, ConnectionStats][] };

const FINAL_STATES = new Set(['closed', 'terminated']);
const ZERO_STATS: ConnectionStats = { messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0 };

/** The defaults of the `inspect` setting's properties, read from the schema generated from the spec. */
function specDefaults(): { port: number; host: string; history: number; retainClosed: number } {
  const union = ServerOptionsSchema.properties.inspect as unknown as { anyOf: { properties?: Record<string, { default?: unknown }> }[] };
  const props = union.anyOf.find((member) => member.properties)?.properties ?? {};
  return {
    port: Number(props.port?.default ?? 0),
    host: String(props.host?.default ?? '127.0.0.1'),
    history: Number(props.history?.default ?? 200),
    retainClosed: Number(props.retainClosed?.default ?? 100),
  };
}

export function resolveInspectorOptions(options: InspectorOptions | boolean | undefined): ResolvedInspectorOptions {
  const given = typeof options === 'object' && options !== null ? options : {};
  const defaults = specDefaults();
  const resolved: ResolvedInspectorOptions = {
    port: given.port ?? defaults.port,
    host: given.host || defaults.host,
    history: given.history ?? defaults.history,
    retainClosed: given.retainClosed ?? defaults.retainClosed,
    record: given.record ?? null,
    interval: given.interval ?? 1000,
    serve: given.serve ?? true,
  };
  if (!Number.isInteger(resolved.port) || resolved.port < 0 || resolved.port > 65535) throw new RangeError(`inspect.port must be an integer in 0 – 65535, got ${resolved.port}`);
  if (!Number.isInteger(resolved.history) || resolved.history < 1) throw new RangeError(`inspect.history must be a positive integer, got ${resolved.history}`);
  if (!Number.isInteger(resolved.retainClosed) || resolved.retainClosed < 0) throw new RangeError(`inspect.retainClosed must be a non-negative integer, got ${resolved.retainClosed}`);
  if (!(resolved.interval > 0)) throw new RangeError(`inspect.interval must be a positive number of milliseconds, got ${resolved.interval}`);
  return resolved;
}

/** What the inspector keeps of one connection. */
class ConnectionRecord {
  /** The live socket, released when the connection closes so that it can be collected. */
  ws: WebSocket | null;
  state: string;
  value: StateValueJson;
  endedAt: number | null = null;
  close: CloseRecord | null = null;
  private _finalStats: ConnectionStats | null = null;
  /** Whether the trace already has this connection's first line (which carries its metadata). */
  traced = false;

  constructor(
    readonly id: number,
    ws: WebSocket,
    readonly remoteAddress: string,
    readonly protocol: string,
    readonly createdAt: number,
    readonly steps: RingBuffer<StepRecord>,
  ) {
    this.ws = ws;
    this.state = ws.lifecycle;
    this.value = ws.lifecycleState as StateValueJson;
  }

  get stats(): ConnectionStats {
    return this.ws ? this.ws.stats : (this._finalStats ?? ZERO_STATS);
  }

  /** Keeps the final counters and lets go of the socket. */
  release(): void {
    if (!this.ws) return;
    this._finalStats = this.ws.stats;
    this.ws = null;
  }

  view(): ConnectionView {
    return {
      id: this.id,
      remoteAddress: this.remoteAddress,
      protocol: this.protocol,
      createdAt: this.createdAt,
      state: this.state,
      value: this.value,
      stats: this.stats,
      steps: this.steps.toArray(),
      dropped: this.steps.dropped,
      endedAt: this.endedAt,
      close: this.close,
    };
  }
}

const inspectors = new WeakMap<WebSocketServer, Inspector>();

/** The inspector attached to a server, if any. */
export function inspectorOf(wss: WebSocketServer): Inspector | null {
  return inspectors.get(wss) ?? null;
}

export class Inspector extends EventEmitter {
  readonly options: ResolvedInspectorOptions;
  readonly wss: WebSocketServer;
  /** Resolves to the page's URL once the HTTP server listens (to null when serve is false or it was closed first). */
  readonly ready: Promise<string | null>;
  private readonly _records = new Map<number, ConnectionRecord>();
  private readonly _bySocket = new WeakMap<WebSocket, ConnectionRecord>();
  /** Ids of closed connections still kept, oldest first (a Set keeps insertion order). */
  private readonly _closed = new Set<number>();
  private readonly _page: PageServer | null;
  private readonly _writer: TraceWriter | null;
  private readonly _previousObserver: LifecycleObserver | null;
  private readonly _observer: LifecycleObserver;
  private readonly _timer: NodeJS.Timeout;
  private _nextId = 1;
  private _serverState: string;
  private _stopped = false;

  constructor(wss: WebSocketServer, options: InspectorOptions = {}) {
    super();
    this.wss = wss;
    this.options = resolveInspectorOptions(options);
    this._serverState = wss.lifecycle;
    this._writer = this.options.record ? new TraceWriter(this.options.record, (error) => this._error(error)) : null;

    const previous = wss._lifecycleObserver;
    this._previousObserver = previous;
    const observe: LifecycleObserver = (ws, step) => this._onStep(ws, step);
    this._observer = previous
      ? (ws, step) => {
          previous(ws, step);
          observe(ws, step);
        }
      : observe;
    wss._lifecycleObserver = this._observer;
    // Connections made before the inspector was attached: adopted as they are, without history.
    for (const ws of wss._connections) {
      const own = ws._lifecycleObserver;
      ws._lifecycleObserver = own && own !== this._observer ? (socket, step) => (own(socket, step), observe(socket, step)) : observe;
      this._recordOf(ws);
    }

    this._page = this.options.serve ? new PageServer({ host: this.options.host, port: this.options.port, onClient: (client) => this._greet(client) }) : null;
    this.ready = this._page
      ? this._page.listen().then(
          (url) => {
            this.emit('listening', url);
            return url;
          },
          (error: Error) => {
            if (this._stopped) return null; // closed before it listened
            this._error(error);
            throw error;
          },
        )
      : Promise.resolve(null);
    // Unhandled when nobody awaits it and an 'error' listener got it: not a crash of the application.
    this.ready.catch(() => undefined);

    this._timer = setInterval(() => this._tick(), this.options.interval);
    this._timer.unref();
    inspectors.set(wss, this);
  }

  /** The page's URL, once listening. */
  get url(): string | null {
    return this._page?.url ?? null;
  }

  /** The server machine's state as last seen. */
  get serverState(): string {
    return this._serverState;
  }

  /** Every connection kept (live ones first in the order they came, then closed ones). */
  connections(): ConnectionView[] {
    return [...this._records.values()].map((record) => record.view());
  }

  connection(id: number): ConnectionView | null {
    return this._records.get(id)?.view() ?? null;
  }

  /** Detaches from the server, closes the page's server and flushes the trace file. */
  async close(): Promise<void> {
    if (this._stopped) return;
    this._tick(true);
    this._stopped = true;
    clearInterval(this._timer);
    if (this.wss._lifecycleObserver === this._observer) this.wss._lifecycleObserver = this._previousObserver;
    if (inspectors.get(this.wss) === this) inspectors.delete(this.wss);
    await Promise.all([this._page?.close(), this._writer?.close()]);
    this.emit('close');
  }

  // ------------------------------------------------------------------ recording

  private _recordOf(ws: WebSocket): ConnectionRecord {
    let record = this._bySocket.get(ws);
    if (!record) {
      record = new ConnectionRecord(this._nextId++, ws, ws.remoteAddress ?? '', ws.protocol, ws.createdAt, new RingBuffer(this.options.history));
      this._bySocket.set(ws, record);
      this._records.set(record.id, record);
      const created = record;
      ws.once('close', (code: number, reason: Buffer) => this._onClose(created, code, String(reason)));
    }
    return record;
  }

  private _onStep(ws: WebSocket, step: LifecycleStep): void {
    if (this._stopped) return;
    const record = this._recordOf(ws);
    const state = step.state as StateValueJson;
    record.steps.push({ event: step.event, from: step.from, to: step.to, state, at: step.at });
    record.state = step.to;
    record.value = state;
    if (FINAL_STATES.has(step.to) && record.endedAt === null) record.endedAt = step.at;
    this._emitLine(record, { connection: record.id, event: step.event, from: step.from, to: step.to, state, at: step.at });
    this._checkServerState();
  }

  private _onClose(record: ConnectionRecord, code: number, reason: string): void {
    if (this._stopped) return;
    const at = Date.now();
    record.close = { code, reason, at };
    record.endedAt ??= at;
    const stats = record.stats;
    record.release();
    this._emitLine(record, { connection: record.id, event: CLOSE_EVENT, from: record.state, to: record.state, state: record.value, at, code, reason, stats });
    // Retention: the closed connection joins the queue; beyond retainClosed the oldest is forgotten.
    this._closed.add(record.id);
    while (this._closed.size > this.options.retainClosed) {
      const oldest = this._closed.values().next().value as number;
      this._closed.delete(oldest);
      this._records.delete(oldest);
      this._page?.broadcast({ type: 'drop', connection: oldest } satisfies InspectorMessage);
    }
    this._checkServerState();
  }

  private _emitLine(record: ConnectionRecord, line: TraceLine): void {
    if (!record.traced) {
      record.traced = true;
      line.remoteAddress = record.remoteAddress;
      line.protocol = record.protocol;
      line.createdAt = record.createdAt;
    }
    this._writer?.write(line);
    this._page?.broadcast({ type: 'line', line, stats: record.stats } satisfies InspectorMessage);
  }

  /** Reports an error of the inspector itself (an 'error' listener is optional: the server must not crash for it). */
  private _error(error: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', error);
  }

  // ------------------------------------------------------------------ the page

  private _checkServerState(): void {
    const state = this.wss.lifecycle;
    if (state === this._serverState) return;
    this._serverState = state;
    this._tick(true);
  }

  /** Sends the traffic counters of live connections and the server's state to watching pages. */
  private _tick(force = false): void {
    if (!this._page || this._page.clients.size === 0) {
      this._serverState = this.wss.lifecycle;
      return;
    }
    const server = this.wss.lifecycle;
    if (!force && server === this._serverState && this._allClosed()) return;
    this._serverState = server;
    const stats: [number, ConnectionStats][] = [];
    for (const record of this._records.values()) if (record.ws) stats.push([record.id, record.stats]);
    this._page.broadcast({ type: 'tick', now: Date.now(), server, stats } satisfies InspectorMessage);
  }

  private _allClosed(): boolean {
    return this._closed.size === this._records.size;
  }

  private _greet(client: WebSocket): void {
    const { history, retainClosed } = this.options;
    this._page!.sendTo(client, { type: 'hello', mode: 'live', history, retainClosed } satisfies InspectorMessage);
    this._serverState = this.wss.lifecycle;
    this._page!.sendTo(client, { type: 'snapshot', now: Date.now(), server: this._serverState, connections: this.connections() } satisfies InspectorMessage);
  }
}

/** Attaches an inspector to a server: see the module comment. Call `close()` on it to detach. */
export function attachInspector(wss: WebSocketServer, options: InspectorOptions = {}): Inspector {
  const existing = inspectors.get(wss);
  if (existing) throw new Error('this WebSocketServer already has an inspector attached');
  return new Inspector(wss, options);
}

/**
 * Attaches an inspector when the server's `inspect` option is on, and returns it (null otherwise,
 * and then nothing at all is hooked). The inspector stops when the server does. Like `node
 * --inspect`, it prints where it listens on stderr, since a port of 0 is only known then.
 * Meant to be called once from WebSocketServer's constructor.
 */
export function maybeInspect(wss: WebSocketServer): Inspector | null {
  const setting = (wss.options as { inspect?: InspectorOptions | boolean }).inspect;
  if (!setting) return null;
  const inspector = attachInspector(wss, setting === true ? {} : setting);
  inspector.ready.then(
    (url) => url && process.stderr.write(`wirestate inspector listening on ${url}\n`),
    (error: Error) => process.stderr.write(`wirestate inspector could not listen: ${error.message}\n`),
  );
  wss.once('close', () => void inspector.close());
  return inspector;
}
