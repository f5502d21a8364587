/**
 * One machine, stepped with XState's pure functions (`initialTransition`, `transition`): they
 * return the next snapshot and the actions to perform without performing them, so nothing here
 * touches a socket. Guards that the spec derives from the role keep the machine's own
 * implementation; every other guard (a setting, or what the peer did since a timer started) is a
 * free choice: each step is computed once per combination of answers the machine asks for, and each
 * combination is a branch the explorer follows.
 *
 * Configurations (snapshot values) are named by a canonical string, e.g.
 * `open{reading.flowing,keepalive.waiting,idle.disabled}` or `closing.closedByUs`; steps are
 * memoised per (configuration, event), so the product exploration asks XState once per pair.
 */
import { getInitialMicrosteps, getMicrosteps, getNextTransitions, initialTransition, transition, type AnyMachineSnapshot, type AnyStateMachine, type EventObject, type StateValue } from 'xstate';
import type { MachineUnderCheck, Wire } from './inputs.js';

export interface ActionTaken {
  type: string;
  params: Record<string, unknown> | undefined;
}

export interface Branch {
  /** The configuration after the step. */
  next: string;
  /** The spec's actions the step asks for, in order (XState's own raise/cancel left out). */
  actions: ActionTaken[];
  /** The free guards asked, with the answer this branch took: `keepaliveEnabled=true`. */
  choices: string[];
  /** Every state entered on the way, transient ones (left at once by an eventless transition) included. */
  entered: string[];
}

/** Canonical name of a snapshot value: `closing.closedByUs`, `open{reading.flowing,keepalive.waiting,idle.disabled}`. */
export function configName(value: StateValue): string {
  if (typeof value === 'string') return value;
  const part = (key: string, child: StateValue | undefined): string =>
    child === undefined ? key : typeof child === 'string' ? `${key}.${child}` : key + children(child);
  const children = (object: Record<string, StateValue | undefined>): string => {
    const parts = Object.entries(object).map(([k, c]) => part(k, c));
    return parts.length === 1 ? `.${parts[0]}` : `{${parts.join(',')}}`;
  };
  const parts = Object.entries(value).map(([k, c]) => part(k, c as StateValue | undefined));
  return parts.length === 1 ? parts[0]! : `{${parts.join(',')}}`;
}

/** Every state path active in a snapshot value: `open`, `open.reading`, `open.reading.flowing`, … */
export function activePaths(value: StateValue, prefix = ''): string[] {
  if (typeof value === 'string') return [prefix ? `${prefix}.${value}` : value];
  const out: string[] = [];
  for (const [key, child] of Object.entries(value)) {
    const path = prefix ? `${prefix}.${key}` : key;
    out.push(path);
    if (child !== undefined) out.push(...activePaths(child as StateValue, path));
  }
  return out;
}

export class Stepper {
  readonly machine: AnyStateMachine;
  private readonly snapshots = new Map<string, AnyMachineSnapshot>();
  private readonly memo = new Map<string, Branch[]>();
  private readonly timerMemo = new Map<string, string[]>();
  private answers: boolean[] = [];
  private asked: string[] = [];
  private readonly wires: Map<string, Wire | null>;
  /** Transitions computed with XState (not from the memo). */
  computed = 0;

  constructor(
    readonly spec: MachineUnderCheck,
    private readonly input: Record<string, unknown>,
  ) {
    const free = Object.entries(spec.guards).filter(([, g]) => g.role === null || !spec.roleField);
    const guards = Object.fromEntries(free.map(([name]) => [name, () => this.ask(name)]));
    this.machine = spec.machine.provide({ guards } as never) as AnyStateMachine;
    this.wires = new Map(Object.entries(spec.actions).map(([name, a]) => [name, a.wire]));
  }

  private ask(name: string): boolean {
    const index = this.asked.length;
    const answer = index < this.answers.length ? this.answers[index]! : false;
    this.asked.push(`${name}=${answer}`);
    return answer;
  }

  /** Runs `compute` once per combination of answers to the free guards it asks, depth first. */
  private branches(
    compute: () => [AnyMachineSnapshot, readonly { type: string; params?: unknown }[]],
    microsteps: () => readonly (readonly [AnyMachineSnapshot, unknown])[],
  ): Branch[] {
    const out: Branch[] = [];
    const seen = new Map<string, Branch>();
    const pending: boolean[][] = [[]];
    while (pending.length > 0) {
      const prefix = pending.pop()!;
      this.answers = prefix;
      this.asked = [];
      const [snapshot, actions] = compute();
      this.computed++;
      const asked = this.asked;
      for (let j = asked.length - 1; j >= prefix.length; j--) {
        pending.push([...asked.slice(0, j).map((a) => a.endsWith('=true')), true]);
      }
      // The same answers again, to see the states passed through within the macrostep.
      this.answers = asked.map((a) => a.endsWith('=true'));
      this.asked = [];
      const entered = [...new Set(microsteps().flatMap(([m]) => activePaths(m.value)))].sort();
      const next = this.remember(snapshot);
      const taken = actions
        .filter((a) => this.wires.has(a.type))
        .map((a) => ({ type: a.type, params: (a.params ?? undefined) as Record<string, unknown> | undefined }));
      const key = `${next}\u0000${JSON.stringify(taken)}`;
      const same = seen.get(key);
      if (same) {
        same.entered = [...new Set([...same.entered, ...entered])].sort();
        continue;
      }
      const branch = { next, actions: taken, choices: asked, entered };
      seen.set(key, branch);
      out.push(branch);
    }
    this.answers = [];
    this.asked = [];
    return out;
  }

  private remember(snapshot: AnyMachineSnapshot): string {
    const name = configName(snapshot.value);
    if (!this.snapshots.has(name)) this.snapshots.set(name, snapshot);
    return name;
  }

  /** The configurations the machine can start in (more than one if an eventless transition is guarded). */
  initial(): Branch[] {
    return this.branches(
      () => initialTransition(this.machine, this.input) as never,
      () => getInitialMicrosteps(this.machine, this.input) as never,
    );
  }

  /** The branches of one event in one configuration; `eventKey` names the event (default: its JSON). */
  step(config: string, event: EventObject, eventKey = JSON.stringify(event)): Branch[] {
    const key = `${config}\u0000${eventKey}`;
    let result = this.memo.get(key);
    if (!result) {
      const snapshot = this.snapshots.get(config);
      if (!snapshot) throw new Error(`unknown configuration ${config}`);
      result = this.branches(
        () => transition(this.machine, snapshot, event as never) as never,
        () => getMicrosteps(this.machine, snapshot, event as never) as never,
      );
      this.memo.set(key, result);
    }
    return result;
  }

  /** The delayed events (`xstate.after.<delay>.<state id>`) armed in a configuration. */
  timers(config: string): string[] {
    let result = this.timerMemo.get(config);
    if (!result) {
      const snapshot = this.snapshots.get(config)!;
      result = [...new Set(getNextTransitions(snapshot).map((t) => t.eventType).filter((t) => t.startsWith('xstate.after.')))].sort();
      this.timerMemo.set(config, result);
    }
    return result;
  }

  isFinal(config: string): boolean {
    return this.snapshots.get(config)!.status === 'done';
  }

  active(config: string): string[] {
    return activePaths(this.snapshots.get(config)!.value);
  }

  /** readyState of a configuration (from the top-level state), or undefined when the machine declares none. */
  readyState(config: string): number | undefined {
    const value = this.snapshots.get(config)!.value;
    const top = typeof value === 'string' ? value : Object.keys(value)[0]!;
    return this.spec.readyStates?.[top];
  }

  wire(action: string): Wire | null {
    return this.wires.get(action) ?? null;
  }

  /** Is this branch nothing at all: same configuration, no action with an effect the model sees? */
  trivial(config: string, branch: Branch, effects: ReadonlySet<string>): boolean {
    return branch.next === config && branch.actions.every((a) => this.wire(a.type) === null && !effects.has(a.type));
  }

  configurations(): string[] {
    return [...this.snapshots.keys()];
  }
}

/** `xstate.after.closeTimeout.connection.closing` → `after closeTimeout (closing)`. */
export function describeTimer(eventType: string, machineId: string): string {
  const rest = eventType.slice('xstate.after.'.length);
  const dot = rest.indexOf('.');
  const delay = rest.slice(0, dot);
  const state = rest.slice(dot + 1).replace(new RegExp(`^${machineId}\\.?`), '');
  return `after ${delay} (${state || machineId})`;
}
