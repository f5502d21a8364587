/**
 * Builds an XState machine at run time from a machine spec (YAML), the way codegen/emit/machine.ts
 * writes it as source: the same state configuration (codegen's `statesConfig`, which the emitter uses),
 * role guards derived from the context, every other guard, action and delay a placeholder that
 * throws until provided. `wirestate check --spec DIR` uses it to check a spec that has not been
 * generated (a broken copy, a proposed change); a test checks that for spec/ it behaves exactly as
 * the generated machine, so the two cannot drift apart.
 */
import { setup, type AnyStateMachine } from 'xstate';
import { statesConfig, type MachineModel } from '../../codegen/machine-model.js';
import type { SettingSpecT } from '../../codegen/spec-schema.js';
import type { Wire } from './inputs.js';

function sortedObject<T>(entries: [string, T][]): Record<string, T> {
  return Object.fromEntries([...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export interface BuiltMachine {
  machine: AnyStateMachine;
  actions: Record<string, { wire: Wire | null }>;
  guards: Record<string, { role: 'server' | 'client' | null }>;
  states: { path: string; final: boolean; atomic: boolean }[];
  readyStates: Record<string, number> | undefined;
}

const READY: Record<string, number> = { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 };

/** The machine a spec describes, with the tables the generated file exports beside it. */
export function machineFromSpec(model: MachineModel, settings: Map<string, SettingSpecT>): BuiltMachine {
  const spec = model.spec;
  const roleField = Object.entries(spec.context).find(([, f]) => f.type === 'role')?.[0];
  const notProvided = (kind: string, name: string) => () => {
    throw new Error(`${model.id} machine: the ${kind} "${name}" must be provided with machine.provide()`);
  };
  const guards = sortedObject(
    Object.entries(spec.guards).map(([name, g]) => [
      name,
      g.role && roleField ? ({ context }: { context: Record<string, unknown> }) => context[roleField] === g.role : notProvided('guard', name),
    ]),
  );
  const actions = sortedObject(Object.entries(spec.actions).map(([name]) => [name, notProvided('action', name)]));
  const delays = sortedObject(Object.entries(spec.delays).map(([name, d]) => [name, Number(settings.get(d.setting)?.default ?? 0)]));
  const fields = Object.keys(spec.context);
  const config = {
    id: model.id,
    description: spec.description,
    context: ({ input }: { input: Record<string, unknown> }) => Object.fromEntries(fields.map((f) => [f, input[f]])),
    initial: spec.initial,
    states: statesConfig(model.root.children),
  };
  // The config is data read from YAML: its types are checked by codegen's validator, not by tsc.
  const machine = (setup as (impl: unknown) => { createMachine(config: unknown): AnyStateMachine })({ guards, actions, delays }).createMachine(config);
  const top = model.root.children;
  return {
    machine,
    actions: Object.fromEntries(Object.entries(spec.actions).map(([name, a]) => [name, { wire: (a.wire ?? null) as Wire | null }])),
    guards: Object.fromEntries(Object.entries(spec.guards).map(([name, g]) => [name, { role: (g.role ?? null) as 'server' | 'client' | null }])),
    states: model.states.map((s) => ({ path: s.path, final: s.spec.type === 'final', atomic: s.children.length === 0 })),
    readyStates: top.some((s) => s.spec.readyState) ? Object.fromEntries(top.map((s) => [s.key, READY[s.spec.readyState ?? 'CLOSED']!])) : undefined,
  };
}
