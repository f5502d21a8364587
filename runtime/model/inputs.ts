/**
 * What the model checker checks: the machines (XState machines plus the tables that say what each
 * action puts on the wire and which guards are role guards), the protocol tables (which close codes
 * may be sent, which error has which close code) and the properties. By default the machines are
 * the GENERATED ones (generated/*.machine.generated.ts); with a spec folder they are built from
 * that folder's YAML by from-spec.ts, so a spec can be checked before (or without) generating it.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AnyStateMachine } from 'xstate';
import { loadSpecFolder } from '../../codegen/load.js';
import { validateSpec } from '../../codegen/validate.js';
import { isSendable } from '../../codegen/validate-protocol.js';
import { connectionActions, connectionGuards, connectionMachine, connectionReadyStates, connectionStates } from '../../generated/connection.machine.generated.js';
import { serverActions, serverGuards, serverMachine, serverStates } from '../../generated/server.machine.generated.js';
import { isSendableCloseCode, protocolErrors } from '../../generated/protocol.generated.js';
import { machineFromSpec } from './from-spec.js';
import { loadProperties, type PropertiesSpec } from './properties.js';

export type Wire = 'close' | 'ping' | 'pong' | 'end' | 'destroy';

export interface MachineUnderCheck {
  id: string;
  machine: AnyStateMachine;
  /** What each action puts on the wire (`connectionActions[name].wire`). */
  actions: Record<string, { wire: Wire | null }>;
  /** Role guards are decided by the machine's own implementation; every other guard is a free choice. */
  guards: Record<string, { role: 'server' | 'client' | null }>;
  states: readonly { path: string; final: boolean; atomic: boolean }[];
  /** readyState (0-3) of each top-level state, when the machine declares them. */
  readyStates: Record<string, number> | undefined;
  /** Payload field types of each event, from the spec (to build events for a machine explored alone). */
  events: Record<string, Record<string, string>>;
  /** Name of the context field holding the role, if any. */
  roleField: string | undefined;
}

export interface ProtocolUnderCheck {
  isSendable(code: number): boolean;
  errors: readonly { id: string; stage: string; closeCode: number }[];
}

export interface SpecUnderCheck {
  /** `generated` or the spec folder the machines were built from. */
  source: string;
  specDir: string;
  machines: MachineUnderCheck[];
  protocol: ProtocolUnderCheck;
  properties: PropertiesSpec;
  /** Generated machines that no longer match their YAML (only when checking generated/). */
  stale: string[];
}

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export interface LoadOptions {
  /** Build the machines from this spec folder instead of using the generated ones. */
  specDir?: string;
  /** The properties file; defaults to properties.yaml in the spec folder. */
  propertiesFile?: string;
}

export function loadSpecUnderCheck(options: LoadOptions = {}): SpecUnderCheck {
  const specDir = options.specDir ?? join(repoRoot, 'spec');
  const spec = validateSpec(loadSpecFolder(specDir));
  const settings = new Map(spec.settings.value.settings.map((s) => [s.name, s]));
  const eventsOf = (id: string) => {
    const file = spec.machines.find((m) => m.value.id === id)!.value;
    return Object.fromEntries(Object.entries(file.events).map(([name, e]) => [name, { ...(e.payload ?? {}) }]));
  };
  const roleFieldOf = (id: string) => Object.entries(spec.machines.find((m) => m.value.id === id)!.value.context).find(([, f]) => f.type === 'role')?.[0];

  let machines: MachineUnderCheck[];
  let protocol: ProtocolUnderCheck;
  const stale: string[] = [];
  if (options.specDir === undefined) {
    const generated = [
      { id: 'connection', machine: connectionMachine, actions: connectionActions, guards: connectionGuards, states: connectionStates, readyStates: connectionReadyStates as Record<string, number> },
      { id: 'server', machine: serverMachine, actions: serverActions, guards: serverGuards, states: serverStates, readyStates: undefined },
    ];
    const specIds = spec.models.map((m) => m.id).sort();
    const generatedIds = generated.map((g) => g.id).sort();
    if (specIds.join() !== generatedIds.join()) {
      throw new Error(`generated/ has machines ${generatedIds.join(', ')} but spec/ declares ${specIds.join(', ')}: run \`make generate\`, or check the spec with --spec`);
    }
    machines = generated.map((g) => ({
      id: g.id,
      machine: g.machine as unknown as AnyStateMachine,
      actions: g.actions as Record<string, { wire: Wire | null }>,
      guards: g.guards as Record<string, { role: 'server' | 'client' | null }>,
      states: g.states,
      readyStates: g.readyStates,
      events: eventsOf(g.id),
      roleField: roleFieldOf(g.id),
    }));
    protocol = { isSendable: isSendableCloseCode, errors: Object.values(protocolErrors) };
    // The machines the YAML describes, to say so when generated/ is behind it.
    for (const model of spec.models) {
      const built = machineFromSpec(model, settings).machine;
      const generatedMachine = machines.find((m) => m.id === model.id)!.machine;
      if (JSON.stringify(built.definition) !== JSON.stringify(generatedMachine.definition)) stale.push(model.id);
    }
  } else {
    machines = spec.models.map((model) => ({ id: model.id, ...machineFromSpec(model, settings), events: eventsOf(model.id), roleField: roleFieldOf(model.id) }));
    const table = spec.protocol.value;
    protocol = { isSendable: (code) => isSendable(table, code), errors: spec.errors.value.errors };
  }
  const propertiesFile = options.propertiesFile ?? join(specDir, 'properties.yaml');
  const properties = loadProperties(propertiesFile, displayPath(propertiesFile), {
    machines: machines.map((m) => m.id),
    actions: (id) => {
      const m = machines.find((x) => x.id === id);
      return m ? Object.keys(m.actions) : undefined;
    },
  });
  return { source: options.specDir === undefined ? 'generated' : specDir, specDir, machines, protocol, properties, stale };
}

function displayPath(path: string): string {
  const cwd = process.cwd();
  return path.startsWith(cwd + '/') ? path.slice(cwd.length + 1) : path;
}
