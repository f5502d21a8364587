/**
 * Checks the meaning of a loaded spec (CONVENTIONS 9): every state reachable, every (state, event)
 * pair handled or explicitly ignored, every referenced action, guard, delay, close code, error and
 * setting declared, dialect names unique. All problems are collected; nothing is emitted if any.
 */
import { SpecError, type LoadedSpec, type SpecFile, type SpecProblem } from './load.js';
import {
  ancestors,
  buildMachineModel,
  entrySet,
  isAtomic,
  isTransient,
  type MachineModel,
  type StateNode,
} from './machine-model.js';
import type { MachineFileT, SettingPropertySpecT, SettingSpecT, SettingsFileT } from './spec-schema.js';
import { DialectNames } from './spec-schema.js';
import { isSendable, validateErrors, validateProtocol } from './validate-protocol.js';

export interface ValidatedSpec extends LoadedSpec {
  models: MachineModel[];
}

export function validateSpec(spec: LoadedSpec): ValidatedSpec {
  const problems: SpecProblem[] = [];
  validateProtocol(spec.protocol, problems);
  validateErrors(spec.errors, spec.protocol.value, problems);
  validateSettings(spec.settings, problems);
  const settingsByName = new Map(spec.settings.value.settings.map((s) => [s.name, s]));
  const models: MachineModel[] = [];
  const ids = new Set<string>();
  for (const machine of spec.machines) {
    if (ids.has(machine.value.id)) problems.push(machine.problem(['id'], `machine id "${machine.value.id}" is used by another machine file`));
    ids.add(machine.value.id);
    const model = buildMachineModel(machine.value);
    validateMachine(machine, model, settingsByName, spec, problems);
    models.push(model);
  }
  if (problems.length > 0) throw new SpecError(problems);
  return { ...spec, models };
}

function validateMachine(
  file: SpecFile<MachineFileT>,
  model: MachineModel,
  settings: Map<string, SettingSpecT>,
  spec: LoadedSpec,
  problems: SpecProblem[],
): void {
  const machine = file.value;
  const events = new Set(Object.keys(machine.events));
  const report = (path: (string | number)[], reason: string) => problems.push(file.problem(path, reason));

  // Declarations.
  for (const [name, guard] of Object.entries(machine.guards)) {
    if (guard.role && !Object.values(machine.context).some((field) => field.type === 'role')) report(['guards', name, 'role'], 'a role guard needs a context field of type role');
  }
  for (const [name, delay] of Object.entries(machine.delays)) {
    const setting = settings.get(delay.setting);
    if (!setting) report(['delays', name, 'setting'], `unknown setting "${delay.setting}" (not in settings.yaml)`);
    else if (setting.type !== 'integer' || setting.unit !== 'ms') report(['delays', name, 'setting'], `setting "${delay.setting}" must be an integer in ms to be a delay`);
  }
  for (const [name, event] of Object.entries(machine.events)) {
    for (const field of event.optional ?? []) {
      if (!event.payload || !(field in event.payload)) report(['events', name, 'optional'], `"${field}" is not a payload field of ${name}`);
    }
  }

  // Structure of every state.
  const topLevelReadyStates = Object.values(machine.states).filter((s) => s.readyState !== undefined).length;
  if (topLevelReadyStates > 0 && topLevelReadyStates < Object.keys(machine.states).length) {
    for (const [key, state] of Object.entries(machine.states)) if (!state.readyState) report(['states', key], 'every top-level state needs a readyState once one has it');
  }
  if (!machine.states[machine.initial]) report(['initial'], `unknown initial state "${machine.initial}"`);
  for (const state of model.states) {
    const s = state.spec;
    if (state.depth > 1 && s.readyState) report([...state.specPath, 'readyState'], 'readyState is declared on top-level states only (nested states inherit it)');
    if (s.type === 'final' && (s.on || s.after || s.always || s.states || s.exit)) report(state.specPath, 'a final state has no transitions, children or exit actions (entry actions report the end)');
    if (state.children.length > 0 && s.type !== 'parallel') {
      if (!s.initial) report(state.specPath, 'a compound state needs an initial state');
      else if (!s.states?.[s.initial]) report([...state.specPath, 'initial'], `unknown initial state "${s.initial}"`);
    }
    if (s.type === 'parallel' && s.initial) report([...state.specPath, 'initial'], 'a parallel state enters all its regions and has no initial state');
    if (s.type === 'parallel' && state.children.some((c) => c.children.length === 0)) report(state.specPath, 'each region of a parallel state must be a compound state');
    if (state.children.length === 0 && s.initial) report([...state.specPath, 'initial'], 'an atomic state has no initial state');
    for (const event of [...Object.keys(s.on ?? {}), ...(s.ignore ?? [])]) {
      if (!events.has(event)) report([...state.specPath, s.on && event in s.on ? 'on' : 'ignore', event], `unknown event "${event}" (declare it under events)`);
    }
    for (const event of s.ignore ?? []) {
      if (s.on && event in s.on) report([...state.specPath, 'ignore'], `event ${event} is both handled and ignored`);
      const handler = ancestors(state).slice(1).find((a) => a.spec.on && event in a.spec.on);
      if (handler) report([...state.specPath, 'ignore'], `event ${event} is ignored here but handled by the enclosing state "${handler.path}", which would take it`);
    }
    if (new Set(s.ignore ?? []).size !== (s.ignore ?? []).length) report([...state.specPath, 'ignore'], 'an event is listed twice');
    for (const delay of Object.keys(s.after ?? {})) {
      if (!(delay in machine.delays)) report([...state.specPath, 'after', delay], `unknown delay "${delay}" (declare it under delays)`);
    }
    for (const [index, ref] of [...(s.entry ?? []).entries()]) checkAction(ref, [...state.specPath, 'entry', index]);
    for (const [index, ref] of [...(s.exit ?? []).entries()]) checkAction(ref, [...state.specPath, 'exit', index]);
  }

  function checkAction(ref: string | Record<string, Record<string, string | number | boolean>>, path: (string | number)[]) {
    const [name, params] = typeof ref === 'string' ? [ref, undefined] : Object.entries(ref)[0]!;
    const action = machine.actions[name];
    if (!action) {
      report(path, `unknown action "${name}" (declare it under actions)`);
      return;
    }
    const declared = action.params ?? {};
    for (const key of Object.keys(declared)) {
      if (!params || !(key in params)) report(path, `action ${name} needs the parameter "${key}"`);
    }
    for (const [key, value] of Object.entries(params ?? {})) {
      const type = declared[key];
      if (!type) report(path, `action ${name} has no parameter "${key}"`);
      else if (type === 'errorId' && !spec.errors.value.errors.some((e) => e.id === value)) report(path, `unknown error id "${String(value)}" (not in errors.yaml)`);
      else if (type !== 'errorId' && typeof value !== type) report(path, `parameter ${key} of ${name} must be a ${type}`);
      // A literal close code in a close-sending action must be one that may go on the wire (section 7.4.1).
      if (key === 'code' && action.wire === 'close' && typeof value === 'number' && !isSendable(spec.protocol.value, value)) {
        report(path, `close code ${value} may not be sent on the wire (RFC 6455 section 7.4.1)`);
      }
    }
  }

  // Transitions.
  for (const { transition, reason } of model.unresolved) report([...transition.specPath, 'target'], reason);
  for (const t of model.transitions) {
    if (t.guard !== undefined && !(t.guard in machine.guards)) report([...t.specPath, 'guard'], `unknown guard "${t.guard}" (declare it under guards)`);
    t.actions.forEach((a, index) => checkAction(a.params ? { [a.name]: a.params } : a.name, [...t.specPath, 'actions', index]));
    if (t.trigger.kind === 'always' && t.target === undefined) report(t.specPath, 'an eventless transition needs a target, or it would loop');
    if (t.reenter && t.target === undefined) report([...t.specPath, 'reenter'], 'reenter needs a target');
  }
  for (const state of model.states) {
    const groups = new Map<string, typeof state.transitions>();
    for (const t of state.transitions) {
      const key = t.trigger.kind === 'on' ? `on.${t.trigger.event}` : t.trigger.kind === 'after' ? `after.${t.trigger.delay}` : 'always';
      groups.set(key, [...(groups.get(key) ?? []), t]);
    }
    for (const list of groups.values()) {
      list.slice(0, -1).forEach((t) => {
        if (t.guard === undefined) report(t.specPath, 'an unguarded transition before others makes them unreachable');
      });
    }
  }

  // Reachability: every state entered by some path from the initial state.
  const reached = new Set<StateNode>();
  const queue: StateNode[] = [];
  const enter = (node: StateNode) => {
    const chain = [...ancestors(node)].reverse();
    for (const n of [...chain, ...entrySet(node)]) {
      if (!reached.has(n)) {
        reached.add(n);
        queue.push(n);
      }
    }
  };
  const initial = model.root.children.find((c) => c.key === machine.initial);
  if (initial) enter(initial);
  while (queue.length > 0) {
    const node = queue.shift()!;
    for (const t of node.transitions) if (t.target) enter(t.target);
  }
  for (const state of model.states) {
    if (!reached.has(state)) report(state.specPath, `state "${state.path}" is unreachable from the initial state`);
  }

  // Coverage: in every atomic state that can receive events, every event is handled or ignored by it or an ancestor.
  for (const state of model.states) {
    if (!isAtomic(state) || state.spec.type === 'final' || isTransient(state)) continue;
    const chain = ancestors(state);
    for (const event of events) {
      const covered = chain.some((n) => (n.spec.on && event in n.spec.on) || (n.spec.ignore ?? []).includes(event));
      if (!covered) report(state.specPath, `event ${event} is neither handled nor ignored in state "${state.path}" (add it to on or ignore)`);
    }
  }

  // From every state some path leads to a final state: nothing can get stuck short of closing.
  const finals = model.states.filter((s) => s.spec.type === 'final');
  if (finals.length === 0) report(['states'], 'the machine has no final state');
  const canFinish = new Set<StateNode>(finals);
  for (let changed = true; changed; ) {
    changed = false;
    for (const state of model.states) {
      if (canFinish.has(state) || !isAtomic(state)) continue;
      const exits = ancestors(state).flatMap((n) => n.transitions).filter((t) => t.target !== undefined);
      if (exits.some((t) => entrySet(t.target!).some((entered) => canFinish.has(entered)))) {
        canFinish.add(state);
        changed = true;
      }
    }
  }
  for (const state of model.states) {
    if (isAtomic(state) && reached.has(state) && !canFinish.has(state)) report(state.specPath, `no path leads from state "${state.path}" to a final state`);
  }
}

// ---------------------------------------------------------------- settings

function checkValue(
  value: unknown,
  spec: Pick<SettingSpecT | SettingPropertySpecT, 'type' | 'minimum' | 'maximum' | 'values'>,
): string | undefined {
  if (value === undefined || value === null) return undefined;
  switch (spec.type) {
    case 'integer':
      if (typeof value !== 'number' || !Number.isInteger(value)) return `must be an integer, found ${JSON.stringify(value)}`;
      if (spec.minimum !== undefined && value < spec.minimum) return `${value} is below the minimum ${spec.minimum}`;
      if (spec.maximum !== undefined && value > spec.maximum) return `${value} is above the maximum ${spec.maximum}`;
      return undefined;
    case 'boolean':
      return typeof value === 'boolean' ? undefined : `must be a boolean, found ${JSON.stringify(value)}`;
    case 'string':
    case 'binary':
      return typeof value === 'string' ? undefined : `must be a string, found ${JSON.stringify(value)}`;
    case 'enum':
      return spec.values?.includes(value as string | number) ? undefined : `${JSON.stringify(value)} is not one of ${JSON.stringify(spec.values)}`;
    case 'stringList':
      return Array.isArray(value) ? undefined : `must be a list of strings, found ${JSON.stringify(value)}`;
    case 'stringMap':
      return typeof value === 'object' && !Array.isArray(value) ? undefined : `must be a map of strings, found ${JSON.stringify(value)}`;
    case 'object':
      return typeof value === 'boolean' ? undefined : `an object setting's default is given per property, or as a boolean`;
    default:
      return undefined;
  }
}

export function validateSettings(file: SpecFile<SettingsFileT>, problems: SpecProblem[]): void {
  const names = new Set<string>();
  const dialectNames = new Map<string, number>();
  file.value.settings.forEach((setting, index) => {
    const at = (...rest: (string | number)[]) => ['settings', index, ...rest];
    const report = (path: (string | number)[], reason: string) => problems.push(file.problem(path, reason));
    if (names.has(setting.name)) report(at('name'), `setting "${setting.name}" is declared twice`);
    names.add(setting.name);
    if (!setting.supported && !setting.unsupportedReason) report(at('unsupportedReason'), 'an unsupported setting must say why');
    if (setting.supported && setting.unsupportedReason) report(at('unsupportedReason'), 'a supported setting has no unsupportedReason');
    if ((setting.minimum !== undefined || setting.maximum !== undefined) && setting.type !== 'integer') report(at('minimum'), 'minimum and maximum apply to integer settings only');
    if (setting.values && setting.type !== 'enum') report(at('values'), 'values apply to enum settings only');
    if (setting.type === 'enum' && !setting.values) report(at('values'), 'an enum setting lists its values');
    if (setting.properties && setting.type !== 'object') report(at('properties'), 'properties apply to object settings only');
    if (setting.minimum !== undefined && setting.maximum !== undefined && setting.minimum > setting.maximum) report(at('minimum'), 'minimum is above maximum');
    const problem = checkValue(setting.default, setting);
    if (problem) report(at('default'), problem);
    for (const [key, property] of Object.entries(setting.properties ?? {})) {
      const p = checkValue(property.default, property);
      if (p) report(at('properties', key, 'default'), p);
    }
    if (new Set(setting.roles).size !== setting.roles.length) report(at('roles'), 'a role is listed twice');
    for (const dialect of DialectNames) {
      const binding = setting.dialects[dialect];
      if (!binding) continue;
      const dialectRoles = file.value.dialects[dialect].roles;
      if (!setting.roles.some((role) => dialectRoles.includes(role))) report(at('dialects', dialect), `the ${dialect} API is offered for ${dialectRoles.join(' and ')} only, and this setting applies to ${setting.roles.join(' and ')}`);
      for (const role of setting.roles.filter((r) => dialectRoles.includes(r))) {
        const key = `${dialect}\u0000${role}\u0000${binding.name}`;
        const first = dialectNames.get(key);
        if (first !== undefined) report(at('dialects', dialect, 'name'), `${dialect} name "${binding.name}" (${role}) is already used by settings[${first}] (${file.value.settings[first]!.name})`);
        else dialectNames.set(key, index);
      }
      if (binding.scale !== undefined && setting.type !== 'integer') report(at('dialects', dialect, 'scale'), 'scale applies to integer settings only');
      if (binding.invert && setting.type !== 'boolean') report(at('dialects', dialect, 'invert'), 'invert applies to boolean settings only');
      if ((binding.kind || binding.editions) && dialect !== 'ipworks') report(at('dialects', dialect), 'kind and editions apply to the ipworks dialect only');
      if (dialect === 'ipworks' && !binding.kind) report(at('dialects', dialect, 'kind'), 'an ipworks name is a property or a config setting');
      if (binding.default !== undefined && setting.type !== 'object') {
        let canonical: unknown = binding.default;
        if (typeof canonical === 'number' && binding.scale) canonical = canonical * binding.scale;
        if (typeof canonical === 'boolean' && binding.invert) canonical = !canonical;
        const p = checkValue(canonical, setting);
        if (p) report(at('dialects', dialect, 'default'), `the ${dialect} default, in wirestate's unit, ${p}`);
      }
    }
  });
}

export function assertValid(spec: LoadedSpec): ValidatedSpec {
  return validateSpec(spec);
}
