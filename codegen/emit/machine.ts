/**
 * Emits generated/<id>.machine.generated.ts: an XState v5 machine built with
 * `setup({...}).createMachine({...})`, typed context, input and events, and tables the runtime,
 * the model checker and the diagrams read (readyState per state, what each action puts on the
 * wire, which setting each delay comes from).
 *
 * Guards declared with `role:` are derived from the context here. Every other guard, every action
 * and every delay is implemented by the runtime through `machine.provide(...)`; until then the
 * generated placeholder throws an error naming it, so a missing implementation is never silent.
 */
import { VariableDeclarationKind, type Project } from 'ts-morph';
import { statesConfig, type MachineModel } from '../machine-model.js';
import type { SettingSpecT } from '../spec-schema.js';
import { code, finish, literal, newSourceFile, quote, sortedObject, type Code, type EmittedFile } from './source.js';

const GENERATOR = 'emit/machine.ts';

export function pascal(name: string): string {
  return name.charAt(0).toUpperCase() + name.slice(1);
}

export function machineOutputPath(model: MachineModel): string {
  return `generated/${model.id}.machine.generated.ts`;
}

const payloadTypes: Record<string, string> = {
  number: 'number',
  string: 'string',
  boolean: 'boolean',
  closeCode: 'number',
  errorId: 'ProtocolErrorId',
};

export function emitMachine(project: Project, model: MachineModel, source: string, settings: Map<string, SettingSpecT>): EmittedFile {
  const spec = model.spec;
  const Name = pascal(model.id);
  const path = machineOutputPath(model);
  const file = newSourceFile(project, path, GENERATOR, [source, 'spec/settings.yaml']);
  const usesErrorIds = Object.values(spec.events).some((e) => Object.values(e.payload ?? {}).includes('errorId'));

  file.addImportDeclaration({ moduleSpecifier: 'xstate', namedImports: ['setup', { name: 'StateValue', isTypeOnly: true }] });
  if (usesErrorIds) file.addImportDeclaration({ moduleSpecifier: './protocol.generated.js', namedImports: [{ name: 'ProtocolErrorId', isTypeOnly: true }], isTypeOnly: false });

  // ------------------------------------------------------------------ types
  const roleField = Object.entries(spec.context).find(([, f]) => f.type === 'role');
  file.addTypeAlias({ isExported: true, name: `${Name}Role`, type: "'server' | 'client'" });
  file.addInterface({
    isExported: true,
    name: `${Name}Context`,
    docs: [spec.description],
    properties: Object.entries(spec.context).map(([name, field]) => ({
      name,
      type: field.type === 'role' ? `${Name}Role` : 'unknown',
      isReadonly: true,
      docs: [field.description],
    })),
  });
  file.addTypeAlias({ isExported: true, name: `${Name}Input`, type: `${Name}Context` });

  const eventNames = Object.keys(spec.events).sort();
  file.addTypeAlias({
    isExported: true,
    name: `${Name}Event`,
    docs: [`Every event the ${model.id} machine accepts.`],
    type: (writer) => {
      eventNames.forEach((name) => {
        const event = spec.events[name]!;
        const optional = new Set(event.optional ?? []);
        const fields = Object.entries(event.payload ?? {}).map(([field, type]) => `readonly ${field}${optional.has(field) ? '?' : ''}: ${payloadTypes[type]}`);
        writer.newLine().write(`| { readonly type: ${quote(name)}${fields.map((f) => `; ${f}`).join('')} }`);
      });
    },
  });
  file.addTypeAlias({ isExported: true, name: `${Name}EventType`, type: `${Name}Event['type']` });

  const actionNames = Object.keys(spec.actions).sort();
  const guardNames = Object.keys(spec.guards).sort();
  const delayNames = Object.keys(spec.delays).sort();
  file.addVariableStatements([
    {
      isExported: true,
      declarationKind: VariableDeclarationKind.Const,
      docs: [`The event types of the ${model.id} machine, sorted.`],
      declarations: [{ name: `${model.id}EventTypes`, initializer: (w) => { literal(eventNames)(w); w.write(' as const'); } }],
    },
  ]);
  file.addTypeAlias({ isExported: true, name: `${Name}ActionName`, type: actionNames.length ? actionNames.map(quote).join(' | ') : 'never' });
  file.addTypeAlias({ isExported: true, name: `${Name}GuardName`, type: guardNames.length ? guardNames.map(quote).join(' | ') : 'never' });
  file.addTypeAlias({ isExported: true, name: `${Name}DelayName`, type: delayNames.length ? delayNames.map(quote).join(' | ') : 'never' });

  // ------------------------------------------------------------------ tables
  file.addVariableStatements([
    {
      isExported: true,
      declarationKind: VariableDeclarationKind.Const,
      docs: ['What each action does, and what it puts on the wire (read by the model checker).'],
      declarations: [
        {
          name: `${model.id}Actions`,
          type: `{ readonly [Name in ${Name}ActionName]: { readonly description: string; readonly wire: 'close' | 'ping' | 'pong' | 'end' | 'destroy' | null; readonly rfc: string | null } }`,
          initializer: literal(sortedObject(Object.entries(spec.actions).map(([name, a]) => [name, { description: a.description, wire: a.wire ?? null, rfc: a.rfc ?? null }]))),
        },
      ],
    },
    {
      isExported: true,
      declarationKind: VariableDeclarationKind.Const,
      docs: ['Guards: derived from the role, or provided by the runtime.'],
      declarations: [
        {
          name: `${model.id}Guards`,
          type: `{ readonly [Name in ${Name}GuardName]: { readonly description: string; readonly role: ${Name}Role | null } }`,
          initializer: literal(sortedObject(Object.entries(spec.guards).map(([name, g]) => [name, { description: g.description, role: g.role ?? null }]))),
        },
      ],
    },
    {
      isExported: true,
      declarationKind: VariableDeclarationKind.Const,
      docs: ['The setting each delay is read from, and its canonical default in ms.'],
      declarations: [
        {
          name: `${model.id}Delays`,
          type: `{ readonly [Name in ${Name}DelayName]: { readonly setting: string; readonly defaultMs: number; readonly description: string } }`,
          initializer: literal(
            sortedObject(
              Object.entries(spec.delays).map(([name, d]) => [name, { setting: d.setting, defaultMs: Number(settings.get(d.setting)?.default ?? 0), description: d.description }]),
            ),
          ),
        },
      ],
    },
  ]);

  const topStates = model.root.children;
  const hasReadyState = topStates.some((s) => s.spec.readyState !== undefined);
  const readyValues: Record<string, number> = { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 };
  if (hasReadyState) {
    file.addVariableStatement({
      isExported: true,
      declarationKind: VariableDeclarationKind.Const,
      docs: ['The WebSocket readyState (0 CONNECTING, 1 OPEN, 2 CLOSING, 3 CLOSED) of each top-level state.'],
      declarations: [
        {
          name: `${model.id}ReadyStates`,
          initializer: (w) => {
            literal(Object.fromEntries(topStates.map((s) => [s.key, readyValues[s.spec.readyState!]!])))(w);
            w.write(' as const');
          },
        },
      ],
    });
    file.addFunction({
      isExported: true,
      name: `${model.id}ReadyStateOf`,
      docs: ['Derives the readyState from a snapshot value of this machine.'],
      parameters: [{ name: 'value', type: 'StateValue' }],
      returnType: '0 | 1 | 2 | 3',
      statements: [
        `const top = (typeof value === 'string' ? value : Object.keys(value)[0]) as keyof typeof ${model.id}ReadyStates;`,
        `return ${model.id}ReadyStates[top];`,
      ],
    });
  }
  file.addVariableStatement({
    isExported: true,
    declarationKind: VariableDeclarationKind.Const,
    docs: ['Every state path, in document order; final states are marked.'],
    declarations: [
      {
        name: `${model.id}States`,
        type: 'readonly { readonly path: string; readonly final: boolean; readonly atomic: boolean; readonly description: string | null }[]',
        initializer: literal(
          model.states.map((s) => ({ path: s.path, final: s.spec.type === 'final', atomic: s.children.length === 0, description: s.spec.description ?? null })),
        ),
      },
    ],
  });

  // ------------------------------------------------------------------ the machine
  const notProvided = (kind: string, name: string) =>
    code(`() => {\n  throw new Error(${quote(`${model.id} machine: the ${kind} "${name}" must be provided with machine.provide()`)});\n}`);
  const actionImpls = sortedObject(
    Object.entries(spec.actions).map(([name, action]) => {
      const params = action.params ? `{ ${Object.entries(action.params).map(([p, t]) => `readonly ${p}: ${payloadTypes[t]}`).join('; ')} }` : undefined;
      const impl: Code = params
        ? code(`(_: unknown, _params: ${params}): void => {\n  throw new Error(${quote(`${model.id} machine: the action "${name}" must be provided with machine.provide()`)});\n}`)
        : notProvided('action', name);
      return [name, impl] as [string, Code];
    }),
  );
  const guardImpls = sortedObject(
    Object.entries(spec.guards).map(([name, guard]) => {
      const impl: Code = guard.role && roleField
        ? code(`({ context }: { context: ${Name}Context }) => context.${roleField[0]} === ${quote(guard.role)}`)
        : code(`(): boolean => {\n  throw new Error(${quote(`${model.id} machine: the guard "${name}" must be provided with machine.provide()`)});\n}`);
      return [name, impl] as [string, Code];
    }),
  );
  const delayImpls = sortedObject(Object.entries(spec.delays).map(([name, d]) => [name, Number(settings.get(d.setting)?.default ?? 0)]));

  file.addVariableStatement({
    isExported: true,
    declarationKind: VariableDeclarationKind.Const,
    docs: [`${spec.description}${spec.rfc ? ` (RFC 6455 section ${spec.rfc})` : ''}`],
    declarations: [
      {
        name: `${model.id}Machine`,
        initializer: (writer) => {
          writer.write('setup(');
          literal({
            types: code(`{} as { context: ${Name}Context; events: ${Name}Event; input: ${Name}Input }`),
            guards: guardImpls,
            actions: actionImpls,
            delays: delayImpls,
          })(writer);
          writer.write(').createMachine(');
          literal({
            id: model.id,
            description: spec.description,
            context: code(`({ input }: { input: ${Name}Input }) => ({ ${Object.keys(spec.context).map((f) => `${f}: input.${f}`).join(', ')} })`),
            initial: spec.initial,
            states: statesConfig(model.root.children),
          })(writer);
          writer.write(')');
        },
      },
    ],
  });
  file.addTypeAlias({ isExported: true, name: `${Name}Machine`, type: `typeof ${model.id}Machine` });
  return finish(file, path);
}
