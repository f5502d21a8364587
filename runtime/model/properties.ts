/**
 * spec/properties.yaml: the protocol properties `wirestate check` proves, and the bounds of the
 * model they are proved on. Read with codegen's loadYaml against the TypeBox schema below, so a bad
 * file is reported like a bad spec: `spec/properties.yaml:12: properties[1].after: … (found …)`.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { loadYaml, SpecError, type SpecFile, type SpecProblem } from '../../codegen/load.js';

const Strict = <T extends Record<string, TSchema>>(properties: T) => Type.Object(properties, { additionalProperties: false });
const Name = Type.String({ pattern: '^[a-z][A-Za-z0-9]*$' });

/** What an endpoint can put on the wire, as the model sees it. */
export const FrameKinds = ['data', 'ping', 'pong', 'close'] as const;
export type FrameKind = (typeof FrameKinds)[number];
const FrameKind = Type.Union(FrameKinds.map((k) => Type.Literal(k)));

export const PropertyKinds = ['eventually-final', 'never-after', 'invariant', 'no-deadlock', 'all-states-reachable', 'final-reachable'] as const;
export type PropertyKind = (typeof PropertyKinds)[number];

const Common = {
  name: Name,
  description: Type.String({ minLength: 1 }),
  rfc: Type.Optional(Type.String({ minLength: 1 })),
  /** Explore with the machines' timers firing (default) or never firing. */
  timers: Type.Optional(Type.Boolean()),
};

/** Each kind with its parameters; the checker implements exactly these. */
export const KindSchemas = {
  /** From every reachable state matching `from`, every fair path reaches both connections final. */
  'eventually-final': Strict({ ...Common, kind: Type.Literal('eventually-final'), from: Type.Literal('close-sent') }),
  /** Once an endpoint put `after` on the wire, it never puts any of `never` on it. */
  'never-after': Strict({ ...Common, kind: Type.Literal('never-after'), after: Type.Literal('close'), never: Type.Array(FrameKind, { minItems: 1, uniqueItems: true }) }),
  /** A condition on every frame put on the wire. */
  invariant: Strict({ ...Common, kind: Type.Literal('invariant'), check: Type.Literal('close-codes-sendable') }),
  /** Every reachable state where a connection is not final has a step. */
  'no-deadlock': Strict({ ...Common, kind: Type.Literal('no-deadlock') }),
  /** Every state of the named machines (or `all`) is entered. */
  'all-states-reachable': Strict({
    ...Common,
    kind: Type.Literal('all-states-reachable'),
    machines: Type.Union([Type.Literal('all'), Type.Array(Name, { minItems: 1, uniqueItems: true })]),
  }),
  /** From every reachable state some path reaches both connections final. */
  'final-reachable': Strict({ ...Common, kind: Type.Literal('final-reachable') }),
} satisfies Record<PropertyKind, TSchema>;

export type PropertySpec = { [K in PropertyKind]: Static<(typeof KindSchemas)[K]> }[PropertyKind];

export const ModelSpec = Strict({
  /** The machine both endpoints run. */
  machine: Name,
  channelCapacity: Type.Integer({ minimum: 1, maximum: 8 }),
  applicationCloseCodes: Type.Array(Type.Union([Type.Literal('none'), Type.Integer({ minimum: 0, maximum: 65535 })]), { minItems: 1, uniqueItems: true }),
  protocolErrorStages: Type.Array(Type.Union([Type.Literal('frame'), Type.Literal('message'), Type.Literal('handshake')]), { uniqueItems: true }),
  handshakeErrorStages: Type.Array(Type.Union([Type.Literal('frame'), Type.Literal('message'), Type.Literal('handshake')]), { uniqueItems: true }),
  reading: Strict({ pause: Name, resume: Name, discard: Name }),
});
export type ModelSpecT = Static<typeof ModelSpec>;

/** The file's shape; each property is then checked against the schema of its kind. */
export const PropertiesFile = Strict({
  model: ModelSpec,
  properties: Type.Array(
    Type.Object({ name: Name, kind: Type.Union(PropertyKinds.map((k) => Type.Literal(k))) }, { additionalProperties: true }),
    { minItems: 1 },
  ),
});

export interface PropertiesSpec {
  file: string;
  model: ModelSpecT;
  properties: PropertySpec[];
}

/**
 * Reads and validates a properties file. `machines` and `actions` (of the model machine) let it
 * check the names it refers to. Throws SpecError naming file, path and reason for every problem.
 */
export function loadProperties(
  path: string,
  displayName: string,
  known: { machines: string[]; actions: (machine: string) => string[] | undefined },
): PropertiesSpec {
  const problems: SpecProblem[] = [];
  const file = loadYaml<Static<typeof PropertiesFile>>(path, displayName, PropertiesFile, problems);
  if (!file) throw new SpecError(problems);
  const properties = checkProperties(file, known, problems);
  if (problems.length > 0) throw new SpecError(problems);
  return { file: displayName, model: file.value.model, properties };
}

function checkProperties(
  file: SpecFile<Static<typeof PropertiesFile>>,
  known: { machines: string[]; actions: (machine: string) => string[] | undefined },
  problems: SpecProblem[],
): PropertySpec[] {
  const { model, properties } = file.value;
  const actions = known.actions(model.machine);
  if (!actions) problems.push(file.problem(['model', 'machine'], `unknown machine "${model.machine}" (machines: ${known.machines.join(', ')})`));
  else {
    for (const [role, name] of Object.entries(model.reading)) {
      if (!actions.includes(name)) problems.push(file.problem(['model', 'reading', role], `unknown action "${name}" of machine ${model.machine}`));
    }
  }
  const names = new Set<string>();
  const out: PropertySpec[] = [];
  properties.forEach((property, index) => {
    if (names.has(property.name)) problems.push(file.problem(['properties', index, 'name'], `property "${property.name}" is declared twice`));
    names.add(property.name);
    const schema = KindSchemas[property.kind];
    let ok = true;
    const seen = new Set<string>();
    for (const error of Value.Errors(schema, property)) {
      const key = `${error.path}\u0000${error.message}`;
      if (seen.has(key)) continue;
      seen.add(key);
      ok = false;
      const path = error.path === '' ? [] : error.path.split('/').slice(1).map((s) => (/^\d+$/.test(s) ? Number(s) : s));
      const shown = error.value === undefined ? 'nothing' : JSON.stringify(error.value);
      problems.push(file.problem(['properties', index, ...path], `${error.message} for a ${property.kind} property (found ${shown})`));
    }
    if (!ok) return;
    const typed = property as unknown as PropertySpec;
    if (typed.kind === 'all-states-reachable' && typed.machines !== 'all') {
      typed.machines.forEach((m, i) => {
        if (!known.machines.includes(m)) problems.push(file.problem(['properties', index, 'machines', i], `unknown machine "${m}" (machines: ${known.machines.join(', ')})`));
      });
    }
    out.push(typed);
  });
  return out;
}
