/**
 * Exhaustive breadth-first exploration of the product (product.ts). Every state is kept, with the
 * step that first reached it (so a path back to the initial state is a shortest one), and every
 * transition as a pair of state numbers (so properties can be decided on the whole graph); the
 * first step sending a frame after a close, and the first carrying a close code that may not be
 * sent, are noted as they are found. Also explores a machine on its own (every event it declares,
 * every timer), for the reachability of the machines that are not in the product.
 */
import type { EventObject } from 'xstate';
import type { MachineUnderCheck, SpecUnderCheck } from './inputs.js';
import { ProductModel, ROLES, type Move, type ProductState, type Successor } from './product.js';
import { describeTimer, Stepper, type Branch } from './stepper.js';

class IntList {
  data = new Int32Array(1024);
  length = 0;
  push(value: number): void {
    if (this.length === this.data.length) {
      const bigger = new Int32Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = value;
  }
  get(i: number): number {
    return this.data[i]!;
  }
}

export interface FoundStep {
  from: number;
  to: number;
  actor: 0 | 1;
  move: Move;
}

export interface Graph {
  model: ProductModel;
  timers: boolean;
  states: ProductState[];
  depth: number[];
  /** How each state was first reached (undefined for initial states). */
  parent: (FoundStep | undefined)[];
  edgeFrom: IntList;
  edgeTo: IntList;
  /** 1 when the edge is a progress step (a delivery, a socket close, a resume). */
  edgeProgress: Uint8Array;
  /** Edges of state s are edgeStart[s] .. edgeStart[s+1]-1. */
  edgeStart: number[];
  /** The first step (in breadth-first order) sending each frame kind after a close frame. */
  firstSentAfterClose: Map<string, FoundStep>;
  /** The first step putting a close code that may not be sent on the wire. */
  firstBadCode: FoundStep | undefined;
  /** Every state entered by a step (for reachability), per endpoint. */
  entered: Set<string>;
  truncated: boolean;
  /** States whose steps were computed (all of them unless truncated). */
  expanded: number;
  transitions: number;
}

export function exploreProduct(spec: SpecUnderCheck, options: { timers: boolean; maxStates: number }): Graph {
  const model = new ProductModel(spec, { timers: options.timers });
  const graph: Graph = {
    model,
    timers: options.timers,
    states: [],
    depth: [],
    parent: [],
    edgeFrom: new IntList(),
    edgeTo: new IntList(),
    edgeProgress: new Uint8Array(0),
    edgeStart: [],
    firstSentAfterClose: new Map(),
    firstBadCode: undefined,
    entered: new Set(),
    truncated: false,
    expanded: 0,
    transitions: 0,
  };
  const ids = new Map<string, number>();
  const progress: number[] = [];
  const movesUsed = new Set<Move>();
  for (const state of model.initial()) {
    const key = model.key(state);
    if (ids.has(key)) continue;
    ids.set(key, graph.states.length);
    graph.states.push(state);
    graph.depth.push(0);
    graph.parent.push(undefined);
  }
  const successors: Successor[] = [];
  const seen = new Set<number>();
  const labels = new Map<string, number>();
  for (let current = 0; current < graph.states.length; current++) {
    if (graph.states.length >= options.maxStates) {
      graph.truncated = true;
      break;
    }
    graph.expanded = current + 1;
    graph.edgeStart.push(graph.edgeFrom.length);
    const state = graph.states[current]!;
    successors.length = 0;
    model.successors(state, successors);
    seen.clear();
    const currentKey = model.key(state);
    for (const { actor, move, to: next } of successors) {
      const key = model.key(next);
      // A step that changes nothing (resuming a flowing socket, writing to a gone peer) did not happen.
      if (key === currentKey) continue;
      let to = ids.get(key);
      if (to === undefined) {
        to = graph.states.length;
        ids.set(key, to);
        graph.states.push(next);
        graph.depth.push(graph.depth[current]! + 1);
        graph.parent.push({ from: current, to, actor, move });
      }
      // Guard answers that lead to the same state by the same step are one transition.
      let label = labels.get(move.trigger.key);
      if (label === undefined) labels.set(move.trigger.key, (label = labels.size));
      movesUsed.add(move);
      const found = { from: current, to, actor, move };
      for (const kind of model.sentAfterClose(state.sides[actor], move)) if (!graph.firstSentAfterClose.has(kind)) graph.firstSentAfterClose.set(kind, found);
      if (move.badCodes.length > 0 && !graph.firstBadCode) graph.firstBadCode = found;
      const dedupe = (to * 8192 + label) * 2 + actor;
      if (seen.has(dedupe)) continue;
      seen.add(dedupe);
      graph.edgeFrom.push(current);
      graph.edgeTo.push(to);
      progress.push(move.trigger.progress ? 1 : 0);
    }
  }
  graph.edgeStart.push(graph.edgeFrom.length);
  graph.edgeProgress = Uint8Array.from(progress);
  graph.transitions = graph.edgeFrom.length;
  for (const e of [0, 1] as const) for (const cfg of model.initialConfigs[e]) for (const p of model.steppers[e].active(cfg)) graph.entered.add(p);
  for (const move of movesUsed) for (const p of move.branch.entered) graph.entered.add(p);
  for (const state of graph.states) for (const e of [0, 1] as const) for (const p of model.steppers[e].active(state.sides[e].cfg)) graph.entered.add(p);
  return graph;
}

export interface TraceStep {
  actor: string;
  event: string;
  choices: string[];
  frames: string[];
  state: string;
}

export function traceStep(graph: Graph, step: FoundStep): TraceStep {
  return {
    actor: ROLES[step.actor],
    event: step.move.trigger.label,
    choices: step.move.branch.choices,
    frames: step.move.frames,
    state: graph.model.describe(graph.states[step.to]!),
  };
}

/** The shortest path from an initial state to `state`. */
export function pathTo(graph: Graph, state: number): TraceStep[] {
  const steps: FoundStep[] = [];
  for (let p = graph.parent[state]; p; p = graph.parent[p.from]) steps.push(p);
  return steps.reverse().map((s) => traceStep(graph, s));
}

/** The step from `from` to `to` (recomputed: transitions are stored as pairs of states only). */
export function stepBetween(graph: Graph, from: number, to: number, progressOnly: boolean): FoundStep | undefined {
  const key = graph.model.key(graph.states[to]!);
  for (const s of graph.model.successors(graph.states[from]!)) {
    if ((!progressOnly || s.move.trigger.progress) && graph.model.key(s.to) === key) return { from, to, actor: s.actor, move: s.move };
  }
  return undefined;
}

// ---------------------------------------------------------------- a machine on its own

export interface LoneExploration {
  machine: MachineUnderCheck;
  stepper: Stepper;
  configs: string[];
  initial: string[];
  /** Every step: configuration, event label, the event, the branch taken. */
  steps: { from: string; label: string; event: EventObject; branch: Branch }[];
  active: Set<string>;
}

/** A representative event of each type the machine declares (payload fields filled with a sample value). */
export function sampleEvents(machine: MachineUnderCheck, errorIds: string[]): EventObject[] {
  const sample: Record<string, unknown> = { number: 0, string: '', boolean: false, closeCode: 1000, errorId: errorIds[0] ?? 'unknown' };
  return Object.entries(machine.events)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([type, payload]) => ({ type, ...Object.fromEntries(Object.entries(payload).map(([field, t]) => [field, sample[t]])) }));
}

export function exploreAlone(spec: SpecUnderCheck, machine: MachineUnderCheck, options: { timers: boolean }): LoneExploration {
  const stepper = new Stepper(machine, { [machine.roleField ?? 'role']: 'server', host: null });
  const events = sampleEvents(machine, spec.protocol.errors.map((e) => e.id));
  const initialBranches = stepper.initial();
  const initial = [...new Set(initialBranches.map((b) => b.next))];
  const configs: string[] = [];
  const seen = new Set<string>(initial);
  const queue = [...initial];
  const steps: LoneExploration['steps'] = [];
  const active = new Set(initialBranches.flatMap((b) => b.entered));
  while (queue.length > 0) {
    const from = queue.shift()!;
    configs.push(from);
    for (const p of stepper.active(from)) active.add(p);
    if (stepper.isFinal(from)) continue;
    const triggers: [EventObject, string][] = events.map((e) => [e, e.type]);
    if (options.timers) for (const t of stepper.timers(from)) triggers.push([{ type: t }, describeTimer(t, machine.id)]);
    for (const [event, label] of triggers) {
      for (const branch of stepper.step(from, event)) {
        if (stepper.trivial(from, branch, new Set())) continue;
        steps.push({ from, label, event, branch });
        for (const p of branch.entered) active.add(p);
        if (!seen.has(branch.next)) {
          seen.add(branch.next);
          queue.push(branch.next);
        }
      }
    }
  }
  return { machine, stepper, configs, initial, steps, active };
}
