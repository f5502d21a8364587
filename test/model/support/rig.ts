/**
 * The real side of the model-based tests: a wirestate WebSocket (the system under test) with a
 * scripted raw peer on the other end of a loopback TCP connection, and the translation of each
 * machine event into its real-world cause.
 *
 * Roles:
 * - server: a WebSocketServer on 127.0.0.1:0 (one per guard configuration, reused by its paths)
 *   with an asynchronous verifyClient that holds every connection in `connecting` until the path
 *   says how its handshake ends; the peer is a raw TCP client that writes the upgrade request.
 * - client: a wirestate client connecting to a raw TCP server (one for all paths) that reads the
 *   upgrade request and answers only when the path says so.
 *
 * Events → causes (the peer does nothing else: no automatic pong, close echo, or TCP close):
 *   HANDSHAKE_SUCCEEDED  server: verifyClient accepts / client: the peer writes a correct 101
 *   HANDSHAKE_FAILED     server: verifyClient rejects (401) / client: a 101 with a wrong Sec-WebSocket-Accept
 *   CLOSE_REQUESTED      ws.close(1000, 'model')          TERMINATE_REQUESTED  ws.terminate()
 *   PAUSE_REQUESTED      ws.pause()                       RESUME_REQUESTED     ws.resume()
 *   CLOSE_RECEIVED       the peer writes a close frame (1000)
 *   PROTOCOL_ERROR       the peer writes a frame with the reserved opcode 0x3 (RFC 6455 section 5.2)
 *   PONG_RECEIVED        the peer writes a pong
 *   SOCKET_ENDED         the peer half-closes (socket.end(): a FIN)
 *   SOCKET_CLOSED        the peer resets the connection (resetAndDestroy(): an RST). A plain
 *                        destroy() sends a FIN, which the runtime reads as SOCKET_ENDED first.
 *   after <delay>        the ModelClock fires the timer armed with that delay; when the path says
 *                        the peer was active since the timer was armed and the runtime has seen
 *                        nothing yet, the peer first writes a binary data frame (which costs no
 *                        machine transition) and the runtime's guard is polled until it holds.
 *
 * Consequences of the runtime's own actions: endSocket puts a FIN on the wire and destroySocket a
 * FIN or RST; the peer's sockets are half-open capable and it never reacts, so the only events the
 * runtime sees are the ones the path causes. The runtime's FIN does not come back as SOCKET_ENDED
 * (that would need the peer's FIN), and when the runtime destroys its socket, its own 'close' arrives
 * in a final state, where the machine ignores it.
 *
 * After each step the runtime must reach the step's state value (polled 1 ms apart, bounded), the
 * lifecycle step it emits must name the path's event (KNOWN_MAPPINGS lists the accepted
 * exceptions), and the peer must have received exactly the wire effects of the step's actions.
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { isDeepStrictEqual } from 'node:util';
import type { StateValue } from 'xstate';
import { WebSocket, WebSocketServer } from '../../../runtime/index.js';
import { ModelClock } from './clock.js';
import { DELAYS, PEER_BYTES, configName, delayOf, isTimerEvent, type GuardConfig, type ModelEvent, type ModelPath, type ModelStep, type Role, type WireEffect } from './model.js';
import { RawPeer, closeBody, connectRaw, newKey, switchingProtocols, upgradeRequest } from './wire.js';

type LifecycleStep = { from: string; to: string; event: string; state: StateValue };

/** One connection under test. */
export interface Connection {
  readonly role: Role;
  readonly ws: WebSocket;
  readonly peer: RawPeer;
  readonly clock: ModelClock;
  /** The lifecycle events the runtime emitted. */
  readonly trace: LifecycleStep[];
  /** Server role: how verifyClient answers. */
  verdict?: (accept: boolean) => void;
  /** Client role: the key of the upgrade request. */
  key?: string;
}

function settingsOf(config: GuardConfig): Record<string, unknown> {
  return {
    keepalive: config.keepalive,
    keepaliveInterval: DELAYS.keepaliveInterval,
    keepaliveGracePeriod: DELAYS.keepaliveGracePeriod,
    dropConnectionOnKeepaliveTimeout: config.drop,
    idleTimeout: config.idle ? DELAYS.idleTimeout : 0,
    closeTimeout: DELAYS.closeTimeout,
    handshakeTimeout: DELAYS.handshakeTimeout,
  };
}

function watch(ws: WebSocket, trace: LifecycleStep[]): void {
  ws.on('lifecycle', (step: LifecycleStep) => trace.push(step));
  // Errors are expected on many paths (failed handshakes, protocol errors): recorded by the state.
  ws.on('error', () => {});
}

interface ServerEntry {
  wss: WebSocketServer;
  port: number;
  clock: ModelClock;
  pending: ((ws: WebSocket, verdict: (accept: boolean) => void) => void) | null;
}

/** Server role: the SUT is the server side of the connection. */
export class ServerRig {
  private readonly servers = new Map<string, ServerEntry>();

  private async server(config: GuardConfig): Promise<ServerEntry> {
    const name = configName(config);
    const existing = this.servers.get(name);
    if (existing) return existing;
    const clock = new ModelClock();
    const entry: ServerEntry = { wss: null as unknown as WebSocketServer, port: 0, clock, pending: null };
    const wss = new WebSocketServer({
      port: 0,
      host: '127.0.0.1',
      ...settingsOf(config),
      clock,
      // Asynchronous: the connection stays in `connecting` until the path decides.
      verifyClient: (_info: unknown, callback: (result: boolean, code?: number) => void) => {
        const ws = [...wss._connections].at(-1)!;
        const pending = entry.pending;
        entry.pending = null;
        if (!pending) return callback(false, 503);
        pending(ws, (accept) => (accept ? callback(true) : callback(false, 401)));
      },
    });
    await new Promise<void>((resolve, reject) => {
      wss.once('listening', resolve);
      wss.once('error', reject);
    });
    entry.wss = wss;
    entry.port = (wss.address() as AddressInfo).port;
    this.servers.set(name, entry);
    return entry;
  }

  async connect(config: GuardConfig): Promise<Connection> {
    const entry = await this.server(config);
    assertNoTimers(entry.clock, 'before the connection');
    const accepted = new Promise<{ ws: WebSocket; verdict: (accept: boolean) => void }>((resolve) => {
      entry.pending = (ws, verdict) => resolve({ ws, verdict });
    });
    const socket = await connectRaw(entry.port);
    const peer = new RawPeer(socket, true);
    peer.write(upgradeRequest(newKey()));
    const { ws, verdict } = await within(accepted, 2000, 'the server to call verifyClient');
    const trace: LifecycleStep[] = [];
    watch(ws, trace);
    return { role: 'server', ws, peer, clock: entry.clock, trace, verdict };
  }

  async close(): Promise<void> {
    for (const { wss } of this.servers.values()) {
      for (const ws of [...wss._connections]) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    }
    this.servers.clear();
  }
}

/** Client role: the SUT is a wirestate client; the peer is a raw TCP server. */
export class ClientRig {
  private server: net.Server | null = null;
  private port = 0;
  private pending: ((peer: RawPeer) => void) | null = null;

  private async listen(): Promise<void> {
    if (this.server) return;
    const server = net.createServer({ allowHalfOpen: true }, (socket) => {
      const peer = new RawPeer(socket, false);
      const pending = this.pending;
      this.pending = null;
      if (pending) pending(peer);
      else socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  async connect(config: GuardConfig): Promise<Connection> {
    await this.listen();
    const clock = new ModelClock();
    const arrived = new Promise<RawPeer>((resolve) => {
      this.pending = resolve;
    });
    const ws = new WebSocket(`ws://127.0.0.1:${this.port}/`, { ...settingsOf(config), clock });
    const trace: LifecycleStep[] = [];
    watch(ws, trace);
    const peer = await within(arrived, 2000, 'the client to connect');
    await peer.until(() => peer.head !== null, 'the upgrade request');
    const key = peer.header('sec-websocket-key');
    if (!key) throw new Error(`the client's upgrade request has no Sec-WebSocket-Key:\n${peer.head}`);
    return { role: 'client', ws, peer, clock, trace, key };
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

// ------------------------------------------------------------------ replay

/** The runtime did not do what the model says. */
export class Divergence extends Error {
  override name = 'Divergence';
}

function show(value: StateValue): string {
  return JSON.stringify(value);
}

function assertNoTimers(clock: ModelClock, when: string): void {
  const left = clock.timers();
  if (left.length > 0) throw new Divergence(`timers still armed ${when}: ${left.map((t) => `${t.delay} ms`).join(', ')}`);
}

export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 1));

/** Polls (1 ms apart) until `test` holds or `ms` pass; returns whether it held. */
async function poll(test: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!test()) {
    if (Date.now() >= deadline) return false;
    await tick();
  }
  return true;
}

/** How long a step may take to show on the runtime. Loopback delivery takes well under a millisecond; this bounds a stuck step. */
const SETTLE_MS = 500;
/** How long the final state must stay put. */
const STABLE_MS = 5;

/** Turns one machine event into its real-world cause. */
async function cause(conn: Connection, step: ModelStep): Promise<void> {
  const { ws, peer } = conn;
  const event = step.event as ModelEvent;
  if (isTimerEvent(event)) {
    const activity = step.activity;
    if (activity) {
      const guard = () => (activity.flag === 'keepalive' ? ws.peerActiveSinceKeepaliveCheck() : ws.peerActiveSinceIdleCheck());
      if (activity.inject) {
        // Anything the peer sends is activity; a binary message costs no machine transition.
        peer.sendFrame(0x2, Buffer.from('activity'));
        if (!(await poll(guard, SETTLE_MS))) throw new Divergence(`the runtime did not register the peer's data frame (peerActiveSince… still false)`);
      }
      if (guard() !== activity.expected) {
        throw new Divergence(`before ${event.type}: the runtime's ${activity.flag} activity guard is ${guard()}, the path needs ${activity.expected}`);
      }
    }
    conn.clock.elapse(DELAYS[delayOf(event)]);
    return;
  }
  switch (event.type) {
    case 'HANDSHAKE_SUCCEEDED':
      if (conn.role === 'server') conn.verdict!(true);
      else peer.write(switchingProtocols(conn.key!));
      return;
    case 'HANDSHAKE_FAILED':
      if (conn.role === 'server') conn.verdict!(false);
      else peer.write(switchingProtocols(conn.key!, 'd3Jvbmcgd3Jvbmcgd3Jvbmcgdw=='));
      return;
    case 'CLOSE_REQUESTED':
      ws.close(1000, 'model');
      return;
    case 'TERMINATE_REQUESTED':
      ws.terminate();
      return;
    case 'PAUSE_REQUESTED':
      ws.pause();
      return;
    case 'RESUME_REQUESTED':
      ws.resume();
      return;
    case 'CLOSE_RECEIVED':
      peer.sendFrame(0x8, closeBody(1000, 'peer'));
      return;
    case 'PROTOCOL_ERROR':
      peer.sendFrame(0x3);
      return;
    case 'PONG_RECEIVED':
      peer.sendFrame(0xa);
      return;
    case 'SOCKET_ENDED':
      peer.end();
      return;
    case 'SOCKET_CLOSED':
      peer.reset();
      return;
  }
}

const OPCODE_NAMES: Record<number, string> = { 0: 'continuation', 1: 'text', 2: 'binary', 8: 'close', 9: 'ping', 10: 'pong' };

function describeFrames(frames: readonly { opcode: number; payload: Buffer }[]): string {
  return (
    frames
      .map((f) => (f.opcode === 8 ? `close ${f.payload.length >= 2 ? f.payload.readUInt16BE(0) : '(no code)'}` : (OPCODE_NAMES[f.opcode] ?? `opcode ${f.opcode}`)))
      .join(', ') || 'none'
  );
}

function describeEffects(effects: readonly WireEffect[]): string {
  return effects.map((e) => (e.kind === 'close' ? `close ${e.code ?? '(no code)'}` : e.kind === 'ping' ? 'ping' : 'TCP close')).join(', ') || 'nothing';
}

/**
 * What the peer must have received so far: the frames the machine's actions wrote (close frames
 * with their codes, pings) in order and nothing else — no pong, no data, nothing after a close —
 * and the end of the TCP connection exactly when an action ended or destroyed it. Returns a
 * description of the difference, or null.
 */
function wireMismatch(conn: Connection, effects: readonly WireEffect[]): string | null {
  const { peer } = conn;
  const frames = effects.filter((e) => e.kind !== 'tcp');
  const tcp = effects.some((e) => e.kind === 'tcp');
  const got = peer.frames;
  const same =
    got.length === frames.length &&
    frames.every((e, i) => {
      const f = got[i]!;
      if (e.kind === 'ping') return f.opcode === 9;
      if (f.opcode !== 8) return false;
      const code = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : undefined;
      return code === (e as { code: number | undefined }).code;
    });
  const ended = peer.gotFin || peer.closed;
  if (same && ended === tcp) return null;
  return `the peer expected ${describeEffects(effects)}; it received ${describeFrames(got)}${ended ? ' and the TCP close' : ''}`;
}

/**
 * Steps where the runtime reaches the model's state through another event than the model's, each
 * with the reason it is accepted. Any other difference between the event the runtime's lifecycle
 * step names and the path's event is a divergence.
 */
export const KNOWN_MAPPINGS: readonly { role: Role; from: string; model: string; runtime: string; why: string }[] = [
  {
    role: 'client',
    from: 'connecting',
    model: 'SOCKET_ENDED',
    runtime: 'SOCKET_CLOSED',
    why:
      'before the 101 the socket belongs to http.ClientRequest, which reports a FIN that comes before any response as an error ' +
      '("socket hang up"); runtime/client.ts turns every request error into SOCKET_CLOSED. Same target (terminated); the ' +
      "destroySocket of the SOCKET_ENDED transition has nothing to do there, the request has already destroyed its socket",
  },
];

/** The known mappings some replayed step relied on (for the report). */
export const mappingsSeen = new Set<(typeof KNOWN_MAPPINGS)[number]>();

function topOf(value: StateValue): string {
  return typeof value === 'string' ? value : Object.keys(value)[0]!;
}

/**
 * Replays a path: each step's cause, then the runtime must reach the step's state value (full
 * value, open's regions included) and still be there when the next step starts; the last state
 * must stay put. Throws a Divergence naming the step, the expected and the actual state.
 */
export async function replay(conn: Connection, path: ModelPath): Promise<void> {
  const { ws } = conn;
  const at = (i: number) => `step ${i + 1} of ${path.description}`;
  if (!isDeepStrictEqual(ws.lifecycleState, path.initial)) {
    throw new Divergence(`initially: expected ${show(path.initial)}, the runtime is in ${show(ws.lifecycleState)}`);
  }
  let expected = path.initial;
  const effects: WireEffect[] = [];
  /** Once the peer has reset the connection it can observe nothing more. */
  let peerGone = false;
  const checkWire = async (what: string) => {
    if (peerGone) return;
    await poll(() => wireMismatch(conn, effects) === null, SETTLE_MS);
    const mismatch = wireMismatch(conn, effects);
    if (mismatch) throw new Divergence(`${what}: ${mismatch}`);
  };
  for (const [i, step] of path.steps.entries()) {
    if (!isDeepStrictEqual(ws.lifecycleState, expected)) {
      throw new Divergence(`${at(i)}: before ${step.event.type}, the runtime left ${show(expected)} on its own for ${show(ws.lifecycleState)}`);
    }
    const traced = conn.trace.length;
    const received = ws.bytesReceived;
    try {
      await cause(conn, step);
    } catch (error) {
      if (error instanceof Divergence) throw new Divergence(`${at(i)}: ${error.message}`);
      throw error;
    }
    if (step.ignored && PEER_BYTES.has(step.event.type)) {
      // The runtime parses what it reads synchronously: once the bytes are counted, their consequences have happened.
      if (!(await poll(() => ws.bytesReceived > received, SETTLE_MS))) throw new Divergence(`${at(i)} (${step.event.type}): the runtime did not read the peer's frame`);
    }
    expected = step.value;
    const reached = await poll(() => isDeepStrictEqual(ws.lifecycleState, step.value), SETTLE_MS);
    if (!reached) {
      const steps = conn.trace.slice(traced).map((s) => `${s.event}: ${show(s.state)}`).join('; ') || 'none';
      throw new Divergence(`${at(i)} (${step.event.type}): expected ${show(step.value)}, the runtime is in ${show(ws.lifecycleState)} (its lifecycle steps: ${steps})`);
    }
    // The lifecycle step of the change (none when the state value stays the same) names the event the runtime took.
    const changed = conn.trace.slice(traced);
    const taken = changed.length > 0 ? changed[changed.length - 1]!.event : null;
    if (taken !== null && taken !== step.event.type) {
      const from = topOf(path.steps[i - 1]?.value ?? path.initial);
      const known = KNOWN_MAPPINGS.find((m) => m.role === conn.role && m.from === from && m.model === step.event.type && m.runtime === taken);
      if (!known) throw new Divergence(`${at(i)}: the runtime reached ${show(step.value)} on ${taken}, the model on ${step.event.type}`);
      mappingsSeen.add(known);
    }
    if (step.event.type === 'SOCKET_CLOSED') peerGone = true;
    effects.push(...step.effects);
    await checkWire(`${at(i)} (${step.event.type})`);
  }
  await new Promise((resolve) => setTimeout(resolve, STABLE_MS));
  if (!isDeepStrictEqual(ws.lifecycleState, expected)) {
    throw new Divergence(`after the last step of ${path.description}: the runtime left ${show(expected)} on its own for ${show(ws.lifecycleState)}`);
  }
  await checkWire(`after the last step of ${path.description}`);
}

/** Ends a connection whatever its state, then checks that no timer of the machine was left armed. */
export async function teardown(conn: Connection): Promise<void> {
  const { ws, peer } = conn;
  if (ws.readyState !== WebSocket.CLOSED) ws.terminate();
  peer.destroy();
  await poll(() => ws.readyState === WebSocket.CLOSED, SETTLE_MS);
  assertNoTimers(conn.clock, `after ${ws.lifecycle}`);
}
