/**
 * The model side of the model-based tests: which paths of the generated connection machine to
 * replay against the runtime, and what they cover.
 *
 * - Paths come from `xstate/graph` (getShortestPaths to every state, extended by every edge of
 *   getAdjacencyMap out of it, and every getSimplePaths path), for both roles and for each
 *   configuration of the guards that are fixed per connection (keepalive on/off, idle timeout
 *   on/off, drop on keep-alive timeout on/off). createTestModel is not usable here: it refuses
 *   machines with delayed transitions.
 * - Delayed transitions are explicit events: `xstate.after.<delay>.<state id>` (the event type XState
 *   itself gives them), offered whenever the state that arms the timer is active. The two guards
 *   that read what happened since a timer was armed (peerActiveSinceKeepaliveCheck,
 *   peerActiveSinceIdleCheck) read a `peerActive` flag carried by the timer event, so a path says
 *   "the interval elapsed and the peer had sent something" or "… and the peer was silent".
 * - Every candidate path is run on a shadow actor of the same machine whose stub actions track what
 *   the runtime's two activity flags will be (a ping we send counts as traffic for the idle check;
 *   a rearm forgets it). A path that asks for "silent" when the runtime's flag is necessarily set
 *   cannot happen in the real world and is dropped; "active" is realized by the peer sending a data
 *   frame just before the timer fires.
 * - Pausing stops reading the socket, so no frame the peer writes (a close, an invalid frame, a
 *   pong, data) is seen by the runtime until it resumes: those events are not offered while
 *   `open.reading` is `paused`. The end of TCP still is: a FIN with nothing unread before it ends
 *   the stream at once (net.Socket reads EOF with read(0)), and a reset surfaces as a socket error.
 * - The shadow also records what each step's actions put on the wire (from the spec's `wire` of each
 *   action: close frames with their codes, pings, the end of TCP), which the replay checks.
 * - Events a state declares it ignores (`meta.ignores`) are kept in a path where a real-world cause
 *   exists (ignoreIsRealizable): the runtime must then stay where it is.
 * - Coverage is computed from the machine's own definition (every state node, and every transition
 *   definition — source, event, guard branch, target — including `always` and `after` ones),
 *   per role: a branch guarded by the other role's guard, or shadowed by an earlier branch whose
 *   guard always holds in this role, is not expected in that role.
 */
import { createActor, type AnyStateMachine, type AnyMachineSnapshot, type StateValue } from 'xstate';
import { getAdjacencyMap, getShortestPaths, getSimplePaths } from 'xstate/graph';
import { protocolErrors } from '../../../generated/protocol.generated.js';
import {
  connectionActions,
  connectionEventTypes,
  connectionGuards,
  connectionMachine,
  connectionStates,
  type ConnectionActionName,
  type ConnectionDelayName,
  type ConnectionEvent,
  type ConnectionGuardName,
  type ConnectionRole,
} from '../../../generated/connection.machine.generated.js';

export type Role = ConnectionRole;
export const ROLES: readonly Role[] = ['server', 'client'];

/** The guards that are settings, fixed for a connection's life. */
export interface GuardConfig {
  readonly keepalive: boolean;
  readonly idle: boolean;
  readonly drop: boolean;
}

/** keepalive off makes drop irrelevant: 2 + 4 configurations. */
export const CONFIGS: readonly GuardConfig[] = [
  { keepalive: false, idle: false, drop: true },
  { keepalive: false, idle: true, drop: true },
  { keepalive: true, idle: false, drop: true },
  { keepalive: true, idle: false, drop: false },
  { keepalive: true, idle: true, drop: true },
  { keepalive: true, idle: true, drop: false },
];

export function configName(config: GuardConfig): string {
  return `keepalive ${config.keepalive ? 'on' : 'off'}, idle ${config.idle ? 'on' : 'off'}${config.keepalive ? `, drop ${config.drop ? 'on' : 'off'}` : ''}`;
}

/**
 * The delay of each timer, in ms of the model clock. Distinct, so that a pending timer's delay says
 * which one it is; large, so that the real-time twin of handshakeTimeout on the HTTP server
 * (headersTimeout) never fires during a test.
 */
export const DELAYS: { readonly [Name in ConnectionDelayName]: number } = {
  handshakeTimeout: 600_000,
  closeTimeout: 700_000,
  keepaliveInterval: 800_000,
  keepaliveGracePeriod: 900_000,
  idleTimeout: 1_000_000,
};

/** A delayed transition as an event, with what the peer did since the timer was armed. */
export interface TimerEvent {
  readonly type: `xstate.after.${string}`;
  readonly peerActive?: boolean;
}
export type ModelEvent = ConnectionEvent | TimerEvent;

export function isTimerEvent(event: ModelEvent): event is TimerEvent {
  return event.type.startsWith('xstate.after.');
}

/** `xstate.after.keepaliveInterval.connection.open.keepalive.waiting` → `keepaliveInterval`. */
export function delayOf(event: TimerEvent): ConnectionDelayName {
  return event.type.split('.')[2] as ConnectionDelayName;
}

/** The activity flag a timer's guards read, if any. */
export type ActivityFlag = 'keepalive' | 'idle';
const ACTIVITY_GUARDS: Partial<Record<ConnectionGuardName, ActivityFlag>> = {
  peerActiveSinceKeepaliveCheck: 'keepalive',
  peerActiveSinceIdleCheck: 'idle',
};

/**
 * The events that put bytes from the peer through the runtime's reader: they count as activity,
 * and they cannot happen while the connection is connecting (the bytes wait for the handshake) or
 * while reading is paused (they wait for resume).
 */
export const PEER_BYTES: ReadonlySet<string> = new Set<string>(['CLOSE_RECEIVED', 'PROTOCOL_ERROR', 'PONG_RECEIVED']);
/** The actions that write a frame (the runtime counts what it sends as traffic for the idle check). */
const WRITES = new Set<ConnectionActionName>(['sendPing', 'sendClose', 'echoClose', 'sendCloseWith']);

const BASE_EVENTS: Record<(typeof connectionEventTypes)[number], ConnectionEvent> = {
  CLOSE_RECEIVED: { type: 'CLOSE_RECEIVED', code: 1000, reason: 'peer' },
  CLOSE_REQUESTED: { type: 'CLOSE_REQUESTED', code: 1000, reason: 'model' },
  HANDSHAKE_FAILED: { type: 'HANDSHAKE_FAILED', errorId: 'clientRejected' },
  HANDSHAKE_SUCCEEDED: { type: 'HANDSHAKE_SUCCEEDED' },
  PAUSE_REQUESTED: { type: 'PAUSE_REQUESTED' },
  PONG_RECEIVED: { type: 'PONG_RECEIVED' },
  PROTOCOL_ERROR: { type: 'PROTOCOL_ERROR', errorId: 'reservedOpcode' },
  RESUME_REQUESTED: { type: 'RESUME_REQUESTED' },
  SOCKET_CLOSED: { type: 'SOCKET_CLOSED' },
  SOCKET_ENDED: { type: 'SOCKET_ENDED' },
  TERMINATE_REQUESTED: { type: 'TERMINATE_REQUESTED' },
};

// ------------------------------------------------------------------ the machine's definition

type AnyNode = AnyStateMachine['root'];
type AnyTransition = { source: AnyNode; target?: readonly AnyNode[] | undefined; eventType: string; guard?: unknown };

function nodesOf(node: AnyNode): AnyNode[] {
  return [node, ...Object.values(node.states as Record<string, AnyNode>).flatMap(nodesOf)];
}

function stripId(id: string): string {
  return id.replace(/^connection\.?/, '');
}

function guardName(t: AnyTransition): string | undefined {
  if (t.guard === undefined) return undefined;
  if (typeof t.guard === 'string') return t.guard;
  return (t.guard as { type?: string }).type ?? 'inline';
}

function eventLabel(eventType: string): string {
  if (eventType === '') return 'always';
  if (eventType.startsWith('xstate.after.')) return `after ${eventType.split('.')[2]}`;
  return eventType;
}

function candidatesOf(t: AnyTransition): readonly AnyTransition[] {
  const source = t.source as AnyNode & { always?: AnyTransition[]; transitions: Map<string, AnyTransition[]> };
  return t.eventType === '' ? (source.always ?? []) : (source.transitions.get(t.eventType) ?? []);
}

/** `open.keepalive.waiting —after keepaliveInterval [peerActiveSinceKeepaliveCheck]→ open.keepalive.waiting (#0)` */
export function transitionKey(t: AnyTransition): string {
  const index = candidatesOf(t).indexOf(t);
  const guard = guardName(t);
  const targets = (t.target ?? []).map((n) => stripId(n.id)).join(', ') || '(no target)';
  return `${stripId(t.source.id)} —${eventLabel(t.eventType)}${guard ? ` [${guard}]` : ''}→ ${targets} (#${index})`;
}

export interface Inventory {
  /** Every state path (connectionStates), per role. */
  readonly states: ReadonlyMap<Role, readonly string[]>;
  /** Every transition definition that can be taken in that role. */
  readonly transitions: ReadonlyMap<Role, readonly string[]>;
  /** Transition definitions that cannot be taken in a role (the other role's branch), for the report. */
  readonly roleExcluded: ReadonlyMap<Role, readonly string[]>;
}

/** Everything there is to cover, read from the generated machine itself. */
export function inventory(machine: AnyStateMachine = connectionMachine): Inventory {
  const nodes = nodesOf(machine.root);
  const statePaths = connectionStates.map((s) => s.path);
  // Cross-check the generated list against the machine's own nodes.
  const nodePaths = nodes.filter((n) => n !== machine.root).map((n) => stripId(n.id));
  if (JSON.stringify([...nodePaths].sort()) !== JSON.stringify([...statePaths].sort())) {
    throw new Error(`connectionStates and the machine's nodes differ: ${nodePaths.join(', ')} vs ${statePaths.join(', ')}`);
  }
  const transitions = new Map<Role, string[]>();
  const excluded = new Map<Role, string[]>();
  const states = new Map<Role, string[]>();
  for (const role of ROLES) {
    transitions.set(role, []);
    excluded.set(role, []);
    states.set(role, statePaths);
  }
  for (const node of nodes) {
    const lists: AnyTransition[][] = [...(node.transitions as Map<string, AnyTransition[]>).values()];
    const always = (node as { always?: AnyTransition[] }).always;
    if (always && always.length > 0) lists.push(always);
    for (const list of lists) {
      for (const role of ROLES) {
        let shadowed = false;
        for (const t of list) {
          const guard = guardName(t);
          const guardRole = guard ? (connectionGuards as Record<string, { role: Role | null }>)[guard]?.role ?? null : null;
          const possible = !shadowed && (guardRole === null || guardRole === role);
          (possible ? transitions : excluded).get(role)!.push(transitionKey(t));
          if (guard === undefined || guardRole === role) shadowed = true;
        }
      }
    }
  }
  return { states, transitions, roleExcluded: excluded };
}

// ------------------------------------------------------------------ the machine for one configuration

/** What the stub actions record while a shadow actor runs a path. */
interface Shadow {
  /** Something arrived from the peer since the last rearmKeepaliveCheck (the runtime's guard). */
  keepalive: boolean;
  /** Something arrived or was sent since the last rearmIdleCheck. */
  idle: boolean;
  actions: string[];
  /** What the actions of the current step put on the wire. */
  effects: WireEffect[];
}

/**
 * What an action does on the wire, read from the spec (`connectionActions[name].wire`): a close
 * frame (with the code the runtime must use), a ping, or the end of the TCP connection (a FIN from
 * endSocket, a FIN or RST from destroySocket: the peer sees either as its socket ending).
 */
export type WireEffect = { readonly kind: 'close'; readonly code: number | undefined } | { readonly kind: 'ping' } | { readonly kind: 'tcp' };

type ActionArgs = { context: { host: unknown }; event: ModelEvent };

/** The code a close frame written by `action` carries (runtime/websocket.ts: sendClose, echoClose, sendCloseWith). */
function closeCodeOf(action: ConnectionActionName, event: ModelEvent, params: { code?: number } | undefined): number | undefined {
  if (action === 'sendCloseWith') return params?.code;
  if (event.type === 'PROTOCOL_ERROR') return protocolErrors[event.errorId].closeCode;
  if (event.type === 'CLOSE_REQUESTED' || event.type === 'CLOSE_RECEIVED') return event.code;
  return undefined;
}

function modelMachine(config: GuardConfig): AnyStateMachine {
  const act = (name: ConnectionActionName) => (args: ActionArgs, params?: { code?: number }) => {
    const shadow = args.context.host as Shadow | null;
    if (!shadow) return;
    shadow.actions.push(name);
    const wire = connectionActions[name].wire;
    if (wire === 'close') shadow.effects.push({ kind: 'close', code: closeCodeOf(name, args.event, params) });
    else if (wire === 'ping') shadow.effects.push({ kind: 'ping' });
    else if (wire === 'end' || wire === 'destroy') shadow.effects.push({ kind: 'tcp' });
    if (name === 'rearmKeepaliveCheck') shadow.keepalive = false;
    if (name === 'rearmIdleCheck') shadow.idle = false;
    if (WRITES.has(name)) shadow.idle = true;
  };
  const names: ConnectionActionName[] = [
    'abortHandshake', 'destroySocket', 'echoClose', 'emitClose', 'emitOpen', 'endSocket', 'pauseSocket', 'rearmIdleCheck',
    'rearmKeepaliveCheck', 'reportCloseTimeout', 'reportHandshakeTimeout', 'reportIdleTimeout', 'reportKeepaliveTimeout',
    'resumeSocket', 'sendClose', 'sendCloseWith', 'sendPing', 'stopReading',
  ];
  const peerActive = ({ event }: { event: { peerActive?: boolean } }) => event.peerActive === true;
  return connectionMachine.provide({
    actions: Object.fromEntries(names.map((name) => [name, act(name)])) as never,
    guards: {
      keepaliveEnabled: () => config.keepalive,
      idleTimeoutEnabled: () => config.idle,
      dropOnKeepaliveTimeout: () => config.drop,
      peerActiveSinceKeepaliveCheck: peerActive as never,
      peerActiveSinceIdleCheck: peerActive as never,
    },
    delays: DELAYS,
  }) as unknown as AnyStateMachine;
}

/** The ids of the state nodes active in a snapshot value: `connection`, `connection.open`, `connection.open.reading`, … */
export function activePaths(value: StateValue, prefix = ''): string[] {
  if (typeof value === 'string') return [prefix ? `${prefix}.${value}` : value];
  return Object.entries(value).flatMap(([key, child]) => {
    const path = prefix ? `${prefix}.${key}` : key;
    return [path, ...(child === undefined ? [] : activePaths(child as StateValue, path))];
  });
}

/** The timer events a snapshot can take: one per active `after`, with the peer activity variants its guards read. */
function timerEvents(machine: AnyStateMachine, snapshot: AnyMachineSnapshot): TimerEvent[] {
  const active = new Set(activePaths(snapshot.value).map((p) => `connection.${p}`));
  const events: TimerEvent[] = [];
  for (const node of nodesOf(machine.root)) {
    if (!active.has(node.id)) continue;
    const seen = new Set<string>();
    for (const after of node.after as AnyTransition[]) {
      if (seen.has(after.eventType)) continue;
      seen.add(after.eventType);
      const reads = candidatesOf(after)
        .map((t) => ACTIVITY_GUARDS[guardName(t) as ConnectionGuardName])
        .filter((flag) => flag !== undefined);
      const type = after.eventType as TimerEvent['type'];
      if (reads.length === 0) events.push({ type });
      else events.push({ type, peerActive: true }, { type, peerActive: false });
    }
  }
  return events;
}

export function activityFlagOf(machine: AnyStateMachine, event: TimerEvent): ActivityFlag | undefined {
  for (const node of nodesOf(machine.root)) {
    const list = (node.transitions as Map<string, AnyTransition[]>).get(event.type);
    if (!list) continue;
    for (const t of list) {
      const flag = ACTIVITY_GUARDS[guardName(t) as ConnectionGuardName];
      if (flag) return flag;
    }
  }
  return undefined;
}

function isPaused(value: StateValue): boolean {
  return activePaths(value).includes('open.reading.paused');
}

function eventsFor(machine: AnyStateMachine) {
  return (snapshot: AnyMachineSnapshot): ModelEvent[] => {
    if (snapshot.status !== 'active') return [];
    let events: ModelEvent[] = [...Object.values(BASE_EVENTS), ...timerEvents(machine, snapshot)];
    if (isPaused(snapshot.value)) {
      // Pausing stops reading: what the peer writes stays in the socket until resume.
      events = events.filter((e) => !PEER_BYTES.has(e.type) && !(isTimerEvent(e) && e.peerActive === true));
    }
    return events;
  };
}

// ------------------------------------------------------------------ paths

export interface ModelStep {
  readonly event: ModelEvent;
  /** The machine's state value after the event (what the runtime must show). */
  readonly value: StateValue;
  /** For a timer whose guards read peer activity: whether the peer must have been active (a data frame is sent first if the runtime has seen nothing yet). */
  readonly activity?: { readonly flag: ActivityFlag; readonly expected: boolean; readonly inject: boolean };
  /** What the step's actions put on the wire, in order. */
  readonly effects: readonly WireEffect[];
  /** The machine takes no transition: the runtime must stay where it is once the cause has been processed. */
  readonly ignored?: boolean;
}

export interface ModelPath {
  readonly role: Role;
  readonly config: GuardConfig;
  readonly steps: readonly ModelStep[];
  readonly initial: StateValue;
  /** Coverage items: `state:<path>` and `transition:<key>`. */
  readonly covers: ReadonlySet<string>;
  readonly description: string;
}

function describeEvent(event: ModelEvent): string {
  if (!isTimerEvent(event)) return event.type;
  const delay = delayOf(event);
  if (event.peerActive === undefined) return `after ${delay}`;
  return `after ${delay} (peer ${event.peerActive ? 'active' : 'silent'})`;
}

export function describePath(role: Role, config: GuardConfig, events: readonly ModelEvent[]): string {
  return `${role} [${configName(config)}]: ${events.map(describeEvent).join(' → ') || '(initial)'}`;
}

/** The events a state node declares it ignores (the spec's `ignore:`, carried in the generated `meta.ignores`). */
function ignoresOf(machine: AnyStateMachine, path: string): readonly string[] {
  const node = nodesOf(machine.root).find((n) => stripId(n.id) === path);
  return ((node?.meta as { ignores?: string[] } | undefined)?.ignores ?? []);
}

/**
 * Whether an event the machine ignores in a state can be caused there in the real world without
 * causing another event. Not: a handshake outcome after the handshake (verifyClient answering
 * twice is a no-op of the server, and a second 101 would be read as frame bytes); bytes from the
 * peer while connecting (they wait in the socket until the handshake completes) or while reading
 * is paused (they wait until resume).
 */
function ignoreIsRealizable(event: ModelEvent, before: StateValue): boolean {
  if (event.type === 'HANDSHAKE_SUCCEEDED' || event.type === 'HANDSHAKE_FAILED') return false;
  if (PEER_BYTES.has(event.type)) return !activePaths(before).includes('connecting') && !isPaused(before);
  return true;
}

/** Every (state, ignored event) pair of the machine, and those that no real-world cause can produce (see ignoreIsRealizable). */
export function ignoredPairs(machine: AnyStateMachine = connectionMachine): { all: string[]; unrealizable: string[] } {
  const all: string[] = [];
  const unrealizable: string[] = [];
  for (const node of nodesOf(machine.root)) {
    const path = stripId(node.id);
    for (const type of ((node.meta as { ignores?: string[] } | undefined)?.ignores ?? [])) {
      const item = `${path}:${type}`;
      all.push(item);
      const handshake = type === 'HANDSHAKE_SUCCEEDED' || type === 'HANDSHAKE_FAILED';
      // open.keepalive.suspended is only ever active together with open.reading.paused.
      const peerWhileNotReading = PEER_BYTES.has(type) && (path === 'connecting' || path === 'open.reading.paused' || path === 'open.keepalive.suspended');
      if (handshake || peerWhileNotReading) unrealizable.push(item);
    }
  }
  return { all, unrealizable };
}

/**
 * Runs a path on a shadow actor: the state after each step, the transitions and states it goes
 * through (microsteps included, so `always` transitions and transient states count), and whether
 * the real world can produce it. Returns null for a path the runtime cannot be driven along.
 */
function shadowRun(machine: AnyStateMachine, role: Role, config: GuardConfig, events: readonly ModelEvent[]): ModelPath | null {
  const shadow: Shadow = { keepalive: false, idle: false, actions: [], effects: [] };
  const covers = new Set<string>();
  let transitions: AnyTransition[] = [];
  const actor = createActor(machine, {
    input: { role, host: shadow },
    // The shadow's own timers are never run: a timer is an event of the path.
    clock: { setTimeout: () => 0, clearTimeout: () => {} },
    inspect: (inspection) => {
      if (inspection.type !== '@xstate.microstep') return;
      const micro = inspection as unknown as { snapshot: AnyMachineSnapshot; _transitions: AnyTransition[] };
      transitions.push(...micro._transitions);
      for (const path of activePaths(micro.snapshot.value)) covers.add(`state:${path}`);
    },
  });
  actor.start();
  const initial = actor.getSnapshot().value as StateValue;
  for (const path of activePaths(initial)) covers.add(`state:${path}`);
  const steps: ModelStep[] = [];
  for (const event of events) {
    const before = actor.getSnapshot() as AnyMachineSnapshot;
    if (before.status !== 'active') return null;
    const paused = isPaused(before.value);
    let activity: ModelStep['activity'];
    if (PEER_BYTES.has(event.type)) {
      if (paused) return null;
      shadow.keepalive = true;
      shadow.idle = true;
    }
    if (isTimerEvent(event) && event.peerActive !== undefined) {
      const flag = activityFlagOf(machine, event)!;
      const current = shadow[flag];
      if (event.peerActive && !current) {
        if (paused) return null;
        // The peer sends a data frame first: both flags are set by anything read.
        shadow.keepalive = true;
        shadow.idle = true;
        activity = { flag, expected: true, inject: true };
      } else if (!event.peerActive && current) {
        return null; // the runtime has necessarily seen (or made) traffic since the timer was armed
      } else {
        activity = { flag, expected: event.peerActive, inject: false };
      }
    }
    transitions = [];
    shadow.effects = [];
    actor.send(event as never);
    const after = actor.getSnapshot() as AnyMachineSnapshot;
    const ignored = transitions.length === 0;
    if (ignored) {
      if (!ignoreIsRealizable(event, before.value)) return null;
      for (const path of activePaths(before.value)) if (ignoresOf(machine, path).includes(event.type)) covers.add(`ignore:${path}:${event.type}`);
    }
    for (const t of transitions) covers.add(`transition:${transitionKey(t)}`);
    steps.push({ event, value: after.value as StateValue, effects: shadow.effects, ...(activity ? { activity } : {}), ...(ignored ? { ignored } : {}) });
  }
  actor.stop();
  return { role, config, steps, initial, covers, description: describePath(role, config, events) };
}

export interface Plan {
  /** The fewest paths that cover every state and transition (greedy set cover). */
  readonly covering: readonly ModelPath[];
  /** Every other realizable path that is not a prefix of one already replayed: each simple path, and each edge of each configuration's state graph. */
  readonly exhaustive: readonly ModelPath[];
  /** How many distinct event sequences were generated, and how many of them cannot happen in the real world or end on an ignored event. */
  readonly candidates: number;
  readonly dropped: number;
}

/**
 * The paths to replay. Candidates, for every role and guard configuration: getShortestPaths to
 * every state, that path extended by every edge of getAdjacencyMap out of the state (so every
 * transition of the state graph, self-loops such as a timer re-arming included), and every
 * getSimplePaths path (so histories that the state value forgets, such as pausing before closing,
 * are replayed too). Each is run on the shadow actor; the realizable ones are split into
 *
 * - `covering`: a greedy set cover of the coverage items (most new items first, then the shortest),
 *   the paths whose replay is required for 100%;
 * - `exhaustive`: the rest, minus any path that is a prefix of another (replaying the longer one
 *   checks every state of the shorter).
 */
export function planPaths(): Plan {
  const candidates: ModelPath[] = [];
  let dropped = 0;
  let total = 0;
  const seen = new Set<string>();
  for (const role of ROLES) {
    for (const config of CONFIGS) {
      const machine = modelMachine(config);
      const options = {
        input: { role, host: null },
        events: eventsFor(machine),
        serializeState: (snapshot: AnyMachineSnapshot) => JSON.stringify(snapshot.value),
        serializeEvent: (event: ModelEvent) => JSON.stringify(event),
      };
      type GraphPath = { state: AnyMachineSnapshot; steps: { event: ModelEvent }[] };
      // Every path of xstate/graph starts with the initial step (`xstate.init`): not an event to replay.
      const eventsOf = (path: GraphPath) => path.steps.map((s) => s.event).filter((e) => (e.type as string) !== 'xstate.init');
      const shortest = getShortestPaths(machine, options as never) as unknown as GraphPath[];
      const simple = getSimplePaths(machine, options as never) as unknown as GraphPath[];
      const adjacency = getAdjacencyMap(machine, options as never) as unknown as Record<string, { transitions: Record<string, { event: ModelEvent }> }>;
      const sequences: ModelEvent[][] = [];
      for (const path of shortest) {
        const prefix = eventsOf(path);
        sequences.push(prefix);
        for (const edge of Object.values(adjacency[JSON.stringify(path.state.value)]?.transitions ?? {})) sequences.push([...prefix, edge.event]);
      }
      for (const path of simple) sequences.push(eventsOf(path));
      for (const events of sequences) {
        // The guard configuration only matters once the connection is open: a path that never opens is replayed once.
        const opens = events.some((e) => e.type === 'HANDSHAKE_SUCCEEDED');
        const key = `${role}|${opens ? JSON.stringify(config) : 'any'}|${JSON.stringify(events)}`;
        if (seen.has(key)) continue;
        seen.add(key);
        total++;
        const run = shadowRun(machine, role, config, events);
        if (run) candidates.push(run);
        else dropped++;
      }
    }
  }
  // Greedy set cover, per role (an item is covered for the role of the path that covers it).
  const covering: ModelPath[] = [];
  const covered = new Set<string>();
  const itemsOf = (path: ModelPath) => [...path.covers].map((item) => `${path.role}|${item}`);
  let pool = candidates.slice();
  for (;;) {
    let best: ModelPath | null = null;
    let bestGain = 0;
    for (const path of pool) {
      const gain = itemsOf(path).filter((item) => !covered.has(item)).length;
      if (gain > bestGain || (gain === bestGain && gain > 0 && best !== null && path.steps.length < best.steps.length)) {
        best = path;
        bestGain = gain;
      }
    }
    if (!best) break;
    covering.push(best);
    for (const item of itemsOf(best)) covered.add(item);
    pool = pool.filter((p) => p !== best);
  }
  // The rest, without the paths that are prefixes of another (of the same role and configuration).
  const keyOf = (path: ModelPath, length = path.steps.length) =>
    `${path.role}|${JSON.stringify(path.config)}|${JSON.stringify(path.steps.slice(0, length).map((s) => s.event))}`;
  const prefixes = new Set<string>();
  for (const path of candidates) for (let n = 0; n < path.steps.length; n++) prefixes.add(keyOf(path, n));
  const chosen = new Set(covering.map((path) => keyOf(path)));
  const exhaustive = pool.filter((path) => !prefixes.has(keyOf(path)) && !chosen.has(keyOf(path)));
  const order = (a: ModelPath, b: ModelPath) =>
    ROLES.indexOf(a.role) - ROLES.indexOf(b.role) || CONFIGS.indexOf(a.config) - CONFIGS.indexOf(b.config) || a.steps.length - b.steps.length;
  return { covering: covering.sort(order), exhaustive: exhaustive.sort(order), candidates: total, dropped };
}

/** The machine a path was planned on (to read which flag a timer's guards use). */
export function machineFor(config: GuardConfig): AnyStateMachine {
  return modelMachine(config);
}
