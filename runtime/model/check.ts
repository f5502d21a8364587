/**
 * Decides each property of spec/properties.yaml on the explored graphs and explains the verdict:
 * holds, or violated with a shortest counterexample (a breadth-first path from the initial state
 * to the first bad state or step), or unknown when the exploration hit its state limit.
 */
import { exploreAlone, exploreProduct, pathTo, stepBetween, traceStep, type FoundStep, type Graph, type LoneExploration, type TraceStep } from './explore.js';
import type { SpecUnderCheck } from './inputs.js';
import type { PropertySpec } from './properties.js';
import { representativeErrors } from './product.js';

export type Status = 'holds' | 'violated' | 'unknown';

export interface Verdict {
  name: string;
  kind: PropertySpec['kind'];
  description: string;
  rfc: string | undefined;
  timers: boolean;
  status: Status;
  summary: string;
  /** Shortest path from the initial state to the violation. */
  trace?: TraceStep[];
  /** For liveness: what happens next, without timers or the application, until it gets stuck or loops. */
  continuation?: TraceStep[];
  ending?: string;
  unreachable?: { machine: string; states: string[] }[];
}

export interface ExplorationStats {
  what: string;
  timers: boolean;
  states: number;
  transitions: number;
  pruned: number;
  depth: number;
  truncated: boolean;
}

export interface CheckReport {
  source: string;
  assumptions: string[];
  explorations: ExplorationStats[];
  verdicts: Verdict[];
  graphs: Map<boolean, Graph>;
  lone: Map<string, LoneExploration>;
}

export function assumptions(spec: SpecUnderCheck): string[] {
  const m = spec.properties.model;
  const errors = (stages: readonly string[]) => representativeErrors(spec, stages).map((e) => `${e.id} (${e.closeCode})`).join(', ') || 'none';
  return [
    `a client and a server run the "${m.machine}" machine; two FIFO channels, client→server and server→client, of ${m.channelCapacity} item${m.channelCapacity === 1 ? '' : 's'} each`,
    'items: frames (data, ping, pong, close with its code), the 101 response, FIN (end) and the TCP teardown (destroy: the peer sees SOCKET_CLOSED after what was in flight)',
    'at most one data message, one ping and one pong in flight per direction; a step that would overflow a channel is not taken',
    'after FIN an endpoint transmits only its teardown; items sent to a final or torn-down endpoint are lost',
    `a paused endpoint reads nothing until it resumes (${m.reading.pause}/${m.reading.resume}); after ${m.reading.discard} frames are discarded, FIN and teardown still seen`,
    'a ping read while OPEN is answered by the automatic pong; free guards are nondeterministic choices; role guards decide as generated',
    `the application closes with ${m.applicationCloseCodes.map((c) => (c === 'none' ? 'no code' : c)).join(', ')}, terminates, pauses, resumes and sends data while OPEN`,
    `protocol errors explored: ${errors(m.protocolErrorStages)}; handshake failures: ${errors(m.handshakeErrorStages)}`,
    'timers fire at any moment while armed (or never, for properties checked without timers)',
  ];
}

/** Decides every property of the spec (or only those named in `only`), exploring what they need. */
export function runCheck(spec: SpecUnderCheck, options: { maxStates: number; only?: readonly string[]; lone?: Map<string, LoneExploration> }): CheckReport {
  const graphs = new Map<boolean, Graph>();
  const graph = (timers: boolean) => {
    let g = graphs.get(timers);
    if (!g) graphs.set(timers, (g = exploreProduct(spec, { timers, maxStates: options.maxStates })));
    return g;
  };
  const lone = options.lone ?? new Map<string, LoneExploration>();
  const alone = (id: string) => aloneIn(spec, lone, id);
  const selected = selectProperties(spec, options.only);
  const verdicts = selected.map((property) => decide(spec, property, graph(property.timers ?? true), alone));
  const explorations: ExplorationStats[] = [...graphs.values()].map((g) => ({
    what: `client × server × channels, timers ${g.timers ? 'on' : 'off'}`,
    timers: g.timers,
    states: g.states.length,
    transitions: g.transitions,
    pruned: g.model.pruned,
    depth: Math.max(0, ...g.depth),
    truncated: g.truncated,
  }));
  for (const l of lone.values()) {
    explorations.push({ what: `${l.machine.id} machine alone, every event`, timers: true, states: l.configs.length, transitions: l.steps.length, pruned: 0, depth: 0, truncated: false });
  }
  return { source: spec.source, assumptions: assumptions(spec), explorations, verdicts, graphs, lone };
}

/** A machine explored on its own, once per spec (memoised in `lone`). */
export function aloneIn(spec: SpecUnderCheck, lone: Map<string, LoneExploration>, id: string): LoneExploration {
  let l = lone.get(id);
  if (!l) lone.set(id, (l = exploreAlone(spec, spec.machines.find((m) => m.id === id)!, { timers: true })));
  return l;
}

export function selectProperties(spec: SpecUnderCheck, only: readonly string[] | undefined): PropertySpec[] {
  if (!only || only.length === 0) return spec.properties.properties;
  const unknown = only.filter((name) => !spec.properties.properties.some((p) => p.name === name));
  if (unknown.length > 0) throw new Error(`no property ${unknown.join(', ')} in ${spec.properties.file} (properties: ${spec.properties.properties.map((p) => p.name).join(', ')})`);
  return spec.properties.properties.filter((p) => only.includes(p.name));
}

function decide(spec: SpecUnderCheck, property: PropertySpec, g: Graph, alone: (id: string) => LoneExploration): Verdict {
  const base = { name: property.name, kind: property.kind, description: property.description, rfc: property.rfc, timers: g.timers };
  const undecided = (what: string): Verdict => ({ ...base, status: 'unknown', summary: `${what} in the first ${g.states.length} states, but the exploration stopped at --max-states` });
  const violatedAt = (step: FoundStep, summary: string): Verdict => ({
    ...base,
    status: 'violated',
    summary,
    trace: [...pathTo(g, step.from), traceStep(g, step)],
  });
  const out = (s: number) => g.edgeStart[s + 1]! - g.edgeStart[s]!;
  const isExpanded = (s: number) => s < g.expanded;

  switch (property.kind) {
    case 'never-after': {
      const found = property.never
        .map((kind) => g.firstSentAfterClose.get(kind))
        .filter((f): f is FoundStep => f !== undefined)
        .sort((a, b) => a.from - b.from)[0];
      if (found) {
        const bad = g.model.sentAfterClose(g.states[found.from]!.sides[found.actor], found.move).filter((k) => (property.never as string[]).includes(k));
        return violatedAt(found, `the ${['client', 'server'][found.actor]} sends ${bad.join(' and ')} after its close frame`);
      }
      return g.truncated ? undecided('no violation') : { ...base, status: 'holds', summary: `no endpoint sends ${property.never.join('/')} after its close frame` };
    }
    case 'invariant': {
      const found = g.firstBadCode;
      if (found) return violatedAt(found, `the ${['client', 'server'][found.actor]} puts close code ${found.move.badCodes.join(', ')} on the wire, which may not be sent`);
      return g.truncated ? undecided('no violation') : { ...base, status: 'holds', summary: 'every close frame on the wire has no code or a sendable one' };
    }
    case 'no-deadlock': {
      for (let s = 0; s < g.states.length; s++) {
        if (!isExpanded(s)) break;
        if (out(s) === 0 && !g.model.bothFinal(g.states[s]!)) {
          return { ...base, status: 'violated', summary: 'a state where a connection is not final has no step', trace: pathTo(g, s), ending: `stuck in: ${g.model.describe(g.states[s]!)}` };
        }
      }
      return g.truncated ? undecided('no deadlock') : { ...base, status: 'holds', summary: `all ${g.states.length} states have a step or are final on both sides` };
    }
    case 'final-reachable': {
      if (g.truncated) return undecided('not decided');
      const reaches = backwardFrom(g, (s) => g.model.bothFinal(g.states[s]!), () => true);
      for (let s = 0; s < g.states.length; s++) {
        if (!reaches[s]) {
          const forward = forwardSet(g, s, () => true);
          return {
            ...base,
            status: 'violated',
            summary: 'a state from which no path leads to both connections final',
            trace: pathTo(g, s),
            ending: `from here ${forward.size} state(s) are reachable, none with both connections final`,
          };
        }
      }
      return { ...base, status: 'holds', summary: `both connections can become final from every one of the ${g.states.length} states` };
    }
    case 'eventually-final': {
      if (g.truncated) return undecided('not decided');
      const progress = (edge: number) => g.edgeProgress[edge] === 1;
      const good = mustReach(g, (s) => g.model.bothFinal(g.states[s]!), progress);
      const trigger = (s: number) => g.states[s]!.sides.some((side) => side.closeSent);
      for (let s = 0; s < g.states.length; s++) {
        if (!trigger(s) || good[s]) continue;
        const { steps, ending } = badContinuation(g, s, good, progress);
        return {
          ...base,
          status: 'violated',
          summary: 'after a close frame was sent, the connections can get stuck short of final without a timer',
          trace: pathTo(g, s),
          continuation: steps,
          ending,
        };
      }
      const triggered = g.states.filter((_, s) => trigger(s)).length;
      return { ...base, status: 'holds', summary: `from all ${triggered} states with a close frame sent, every path of deliveries reaches both final (timers ${g.timers ? 'on' : 'off'})` };
    }
    case 'all-states-reachable': {
      const ids = property.machines === 'all' ? spec.machines.map((m) => m.id) : property.machines;
      const unreachable: { machine: string; states: string[] }[] = [];
      for (const id of ids) {
        const machine = spec.machines.find((m) => m.id === id)!;
        let active: Set<string>;
        if (id === g.model.machine.id) active = g.entered;
        else active = alone(id).active;
        const missing = machine.states.map((s) => s.path).filter((p) => !active.has(p));
        if (missing.length > 0) unreachable.push({ machine: id, states: missing });
      }
      if (unreachable.length > 0 && g.truncated) return undecided(`${unreachable.map((u) => `${u.machine}: ${u.states.join(', ')}`).join('; ')} not entered yet`);
      if (unreachable.length > 0) {
        return { ...base, status: 'violated', summary: unreachable.map((u) => `${u.machine}: ${u.states.join(', ')} never entered`).join('; '), unreachable };
      }
      if (g.truncated) return undecided('every state entered');
      return { ...base, status: 'holds', summary: `every state of ${ids.join(', ')} is entered` };
    }
  }
}

/** States from which some path (over edges accepted by `use`) reaches a target. */
function backwardFrom(g: Graph, target: (s: number) => boolean, use: (edge: number) => boolean): boolean[] {
  const reverse: number[][] = g.states.map(() => []);
  for (let edge = 0; edge < g.transitions; edge++) if (use(edge)) reverse[g.edgeTo.get(edge)]!.push(g.edgeFrom.get(edge));
  const marked = g.states.map((_, s) => target(s));
  const queue = marked.flatMap((m, s) => (m ? [s] : []));
  while (queue.length > 0) {
    const s = queue.pop()!;
    for (const from of reverse[s]!) {
      if (!marked[from]) {
        marked[from] = true;
        queue.push(from);
      }
    }
  }
  return marked;
}

function forwardSet(g: Graph, start: number, use: (edge: number) => boolean): Set<number> {
  const seen = new Set([start]);
  const queue = [start];
  while (queue.length > 0) {
    const s = queue.pop()!;
    for (let edge = g.edgeStart[s]!; edge < g.edgeStart[s + 1]!; edge++) {
      if (!use(edge)) continue;
      const to = g.edgeTo.get(edge);
      if (!seen.has(to)) {
        seen.add(to);
        queue.push(to);
      }
    }
  }
  return seen;
}

/**
 * States from which EVERY maximal path over `use` edges reaches a target (AF target): the least
 * fixpoint of "target, or has a `use` step and all of them lead to such states". A state with no
 * such step, or on a cycle of them that avoids the target, is not in it.
 */
function mustReach(g: Graph, target: (s: number) => boolean, use: (edge: number) => boolean): boolean[] {
  const reverse: number[][] = g.states.map(() => []);
  const pending = g.states.map(() => 0);
  for (let edge = 0; edge < g.transitions; edge++) {
    if (!use(edge)) continue;
    pending[g.edgeFrom.get(edge)]!++;
    reverse[g.edgeTo.get(edge)]!.push(g.edgeFrom.get(edge));
  }
  const good = g.states.map((_, s) => target(s));
  const queue = good.flatMap((m, s) => (m ? [s] : []));
  while (queue.length > 0) {
    const s = queue.pop()!;
    for (const from of reverse[s]!) {
      if (good[from]) continue;
      if (--pending[from]! === 0) {
        good[from] = true;
        queue.push(from);
      }
    }
  }
  return good;
}

/** From a bad state, a path of `use` steps through bad states until it gets stuck or loops. */
function badContinuation(g: Graph, start: number, good: boolean[], use: (edge: number) => boolean): { steps: TraceStep[]; ending: string } {
  const steps: TraceStep[] = [];
  const before = pathTo(g, start).length;
  const visited = new Map<number, number>([[start, before]]);
  let s = start;
  for (;;) {
    const edges: number[] = [];
    for (let edge = g.edgeStart[s]!; edge < g.edgeStart[s + 1]!; edge++) if (use(edge)) edges.push(edge);
    if (edges.length === 0) return { steps, ending: `stuck: no delivery, socket close or resume can happen in ${g.model.describe(g.states[s]!)}` };
    const options = edges.filter((edge) => !good[g.edgeTo.get(edge)]);
    const fresh = options.find((edge) => !visited.has(g.edgeTo.get(edge))) ?? options[0]!;
    const to = g.edgeTo.get(fresh);
    const step = stepBetween(g, s, to, true);
    if (step) steps.push(traceStep(g, step));
    s = to;
    if (visited.has(s)) return { steps, ending: `back in the state after step ${visited.get(s)}: this loop can go on forever` };
    visited.set(s, before + steps.length);
  }
}
