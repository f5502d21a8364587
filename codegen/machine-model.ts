/**
 * A machine spec turned into a tree of state nodes with resolved transitions. The validator, the
 * machine emitter and the diagram emitters all read this one model, so they cannot disagree about
 * what a target or an action reference means.
 */
import type { ActionRefT, MachineFileT, StateSpecT, TransitionSpecT, TransitionsSpecT } from './spec-schema.js';
import type { PathSegment } from './load.js';

export interface ActionUse {
  name: string;
  params: Record<string, string | number | boolean> | undefined;
}

export interface TransitionModel {
  /** The source state. */
  source: StateNode;
  /** `on` (with the event name), `after` (with the delay name) or `always`. */
  trigger: { kind: 'on'; event: string } | { kind: 'after'; delay: string } | { kind: 'always' };
  /** The target as written in the spec, or undefined for a targetless transition. */
  targetText: string | undefined;
  /** The resolved target, once resolution succeeded. */
  target: StateNode | undefined;
  guard: string | undefined;
  actions: ActionUse[];
  reenter: boolean;
  description: string | undefined;
  rfc: string | undefined;
  /** Where it is written, for problem reports. */
  specPath: PathSegment[];
}

export interface StateNode {
  key: string;
  /** Dotted path from the machine root, e.g. `closing.closedByUs`. */
  path: string;
  parent: StateNode | undefined;
  spec: StateSpecT;
  children: StateNode[];
  transitions: TransitionModel[];
  specPath: PathSegment[];
  depth: number;
}

export interface MachineModel {
  id: string;
  spec: MachineFileT;
  root: StateNode;
  /** Every state node except the root, in document order. */
  states: StateNode[];
  transitions: TransitionModel[];
  /** Targets that could not be resolved, with the reason. */
  unresolved: { transition: TransitionModel; reason: string }[];
}

export function actionUse(ref: ActionRefT): ActionUse {
  if (typeof ref === 'string') return { name: ref, params: undefined };
  const [name, params] = Object.entries(ref)[0]!;
  return { name, params };
}

function transitionList(value: TransitionsSpecT): TransitionSpecT[] {
  if (typeof value === 'string') return [{ target: value }];
  return Array.isArray(value) ? value : [value];
}

export function buildMachineModel(spec: MachineFileT): MachineModel {
  const rootSpec: StateSpecT = { initial: spec.initial, states: spec.states };
  const root: StateNode = { key: spec.id, path: '', parent: undefined, spec: rootSpec, children: [], transitions: [], specPath: [], depth: 0 };
  const states: StateNode[] = [];
  const build = (node: StateNode, statesPath: PathSegment[]) => {
    for (const [key, childSpec] of Object.entries(node.spec.states ?? {})) {
      const child: StateNode = {
        key,
        path: node.path === '' ? key : `${node.path}.${key}`,
        parent: node,
        spec: childSpec,
        children: [],
        transitions: [],
        specPath: [...statesPath, key],
        depth: node.depth + 1,
      };
      node.children.push(child);
      states.push(child);
      build(child, [...child.specPath, 'states']);
    }
  };
  build(root, ['states']);

  const transitions: TransitionModel[] = [];
  const unresolved: MachineModel['unresolved'] = [];
  for (const state of states) {
    const add = (trigger: TransitionModel['trigger'], value: TransitionsSpecT, basePath: PathSegment[]) => {
      const list = transitionList(value);
      list.forEach((t, index) => {
        const specPath = typeof value === 'string' || !Array.isArray(value) ? basePath : [...basePath, index];
        const model: TransitionModel = {
          source: state,
          trigger,
          targetText: t.target,
          target: undefined,
          guard: t.guard,
          actions: (t.actions ?? []).map(actionUse),
          reenter: t.reenter ?? false,
          description: t.description,
          rfc: t.rfc,
          specPath,
        };
        if (t.target !== undefined) {
          const resolved = resolveTarget(root, state, t.target, spec.id);
          if (typeof resolved === 'string') unresolved.push({ transition: model, reason: resolved });
          else model.target = resolved;
        }
        state.transitions.push(model);
        transitions.push(model);
      });
    };
    for (const [event, value] of Object.entries(state.spec.on ?? {})) add({ kind: 'on', event }, value, [...state.specPath, 'on', event]);
    for (const [delay, value] of Object.entries(state.spec.after ?? {})) add({ kind: 'after', delay }, value, [...state.specPath, 'after', delay]);
    if (state.spec.always !== undefined) add({ kind: 'always' }, state.spec.always, [...state.specPath, 'always']);
  }
  return { id: spec.id, spec, root, states, transitions, unresolved };
}

function descend(from: StateNode, path: string[]): StateNode | string {
  let node = from;
  for (const key of path) {
    const next = node.children.find((c) => c.key === key);
    if (!next) return `no state "${key}" under ${node.path === '' ? 'the machine root' : `"${node.path}"`}`;
    node = next;
  }
  return node;
}

/**
 * Resolves a target as XState v5 does: `#<machine id>.a.b` from the root, `.a` among the source's
 * children, anything else among the source's siblings.
 */
export function resolveTarget(root: StateNode, source: StateNode, target: string, machineId: string): StateNode | string {
  if (target.startsWith('#')) {
    const [id, ...rest] = target.slice(1).split('.');
    if (id !== machineId) return `unknown state id "#${id}" (only "#${machineId}" is defined)`;
    return descend(root, rest);
  }
  if (target.startsWith('.')) return descend(source, target.slice(1).split('.'));
  return descend(source.parent ?? root, target.split('.'));
}

export function ancestors(node: StateNode): StateNode[] {
  const out: StateNode[] = [];
  for (let n: StateNode | undefined = node; n && n.path !== ''; n = n.parent) out.push(n);
  return out;
}

export function isAtomic(node: StateNode): boolean {
  return node.children.length === 0;
}

/** A state left at once by an unguarded eventless transition: events cannot be delivered to it. */
export function isTransient(node: StateNode): boolean {
  const always = node.transitions.filter((t) => t.trigger.kind === 'always');
  return always.length > 0 && always[always.length - 1]!.guard === undefined;
}

/** The states entered when `node` is entered: its initial child (or all children if parallel), recursively. */
export function entrySet(node: StateNode): StateNode[] {
  const out: StateNode[] = [node];
  if (node.children.length === 0) return out;
  if (node.spec.type === 'parallel') for (const child of node.children) out.push(...entrySet(child));
  else {
    const initial = node.children.find((c) => c.key === node.spec.initial);
    if (initial) out.push(...entrySet(initial));
  }
  return out;
}

/** The top-level state a node belongs to (its ancestor at depth 1). */
export function topLevel(node: StateNode): StateNode {
  let n = node;
  while (n.parent && n.parent.path !== '') n = n.parent;
  return n;
}

// ---------------------------------------------------------------- the XState config, as data

function sortedEntries<T>(entries: [string, T][]): Record<string, T> {
  return Object.fromEntries([...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Drops undefined fields: the config holds only what the spec says. */
function defined(record: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).filter(([, v]) => v !== undefined));
}

function transitionConfig(t: TransitionModel): Record<string, unknown> {
  const actions = t.actions.map((a) => (a.params ? { type: a.name, params: sortedEntries(Object.entries(a.params)) } : a.name));
  return defined({
    target: t.targetText,
    guard: t.guard,
    actions: actions.length > 0 ? actions : undefined,
    reenter: t.reenter ? true : undefined,
    description: t.description,
    meta: t.rfc ? { rfc: t.rfc } : undefined,
  });
}

function groupTransitions(list: TransitionModel[]): unknown {
  return list.length === 1 ? transitionConfig(list[0]!) : list.map(transitionConfig);
}

const actionRefConfig = (r: ActionRefT) => (typeof r === 'string' ? r : { type: Object.keys(r)[0]!, params: Object.values(r)[0]! });

/**
 * The `states` of the XState machine config, as plain data: what codegen/emit/machine.ts writes into
 * the generated machine and what the model checker builds from a spec at run time (one builder, so
 * the two cannot drift apart).
 */
export function statesConfig(nodes: StateNode[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const node of nodes) {
    const s = node.spec;
    const on = new Map<string, TransitionModel[]>();
    const after = new Map<string, TransitionModel[]>();
    const always: TransitionModel[] = [];
    for (const t of node.transitions) {
      if (t.trigger.kind === 'on') on.set(t.trigger.event, [...(on.get(t.trigger.event) ?? []), t]);
      else if (t.trigger.kind === 'after') after.set(t.trigger.delay, [...(after.get(t.trigger.delay) ?? []), t]);
      else always.push(t);
    }
    const meta: Record<string, unknown> = {};
    if (s.readyState) meta.readyState = s.readyState;
    if (s.rfc) meta.rfc = s.rfc;
    if (s.ignore && s.ignore.length > 0) meta.ignores = [...s.ignore].sort();
    out[node.key] = defined({
      description: s.description,
      type: s.type,
      initial: s.initial,
      meta: Object.keys(meta).length > 0 ? meta : undefined,
      entry: s.entry && s.entry.length > 0 ? s.entry.map(actionRefConfig) : undefined,
      exit: s.exit && s.exit.length > 0 ? s.exit.map(actionRefConfig) : undefined,
      always: always.length > 0 ? groupTransitions(always) : undefined,
      after: after.size > 0 ? Object.fromEntries([...after].map(([k, v]) => [k, groupTransitions(v)])) : undefined,
      on: on.size > 0 ? Object.fromEntries([...on].map(([k, v]) => [k, groupTransitions(v)])) : undefined,
      states: node.children.length > 0 ? statesConfig(node.children) : undefined,
    });
  }
  return out;
}
