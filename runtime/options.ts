/**
 * Options through the schema (CONVENTIONS 11): a dialect's options object is normalized
 * Default → Convert → Check against the generated schema of that dialect, mapped onto the
 * canonical settings (scale, inverted sense), and every problem is reported at once, named as the
 * user wrote it. An unknown option is an error, never silently dropped; a setting Node cannot
 * honour is an error that says why.
 */
import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import {
  canonicalSchemas,
  dialectBindings,
  dialectSchemas,
  settingsTable,
  type ClientOptions,
  type DialectBinding,
  type DialectName,
  type OptionsRole,
  type ServerOptions,
  type SettingName,
} from '../generated/options.generated.js';

export type { ClientOptions, ServerOptions, DialectName, OptionsRole };

export interface OptionProblem {
  /** The option as the user named it. */
  option: string;
  message: string;
}

export class OptionsError extends TypeError {
  readonly code = 'WS_ERR_INVALID_OPTIONS';
  constructor(
    readonly dialect: DialectName | 'canonical',
    readonly role: OptionsRole,
    readonly problems: OptionProblem[],
  ) {
    super(
      `Invalid ${dialect === 'canonical' ? '' : `${dialect} `}${role} options (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` +
        problems.map((p) => `  ${p.option}: ${p.message}`).join('\n'),
    );
    this.name = 'OptionsError';
  }
}

type RoleOptions<R extends OptionsRole> = R extends 'server' ? ServerOptions : ClientOptions;

interface Field {
  name: string;
  setting: SettingName;
  schema: TSchema;
  binding: Pick<DialectBinding, 'scale' | 'invert'>;
}

const fieldCache = new Map<string, Field[]>();

function fieldsOf(dialect: DialectName | 'canonical', role: OptionsRole): Field[] {
  const key = `${dialect}/${role}`;
  const cached = fieldCache.get(key);
  if (cached) return cached;
  let fields: Field[];
  if (dialect === 'canonical') {
    const schema = canonicalSchemas[role];
    fields = Object.entries(schema.properties as Record<string, TSchema>).map(([name, property]) => ({
      name,
      setting: name as SettingName,
      schema: property,
      binding: { scale: 1, invert: false },
    }));
  } else {
    const schema = (dialectSchemas as Record<string, Record<string, { properties: Record<string, TSchema> } | undefined>>)[dialect]?.[role];
    const bindings = dialectBindings[dialect][role] ?? {};
    fields = schema
      ? Object.entries(schema.properties).map(([name, property]) => ({ name, setting: bindings[name]!.setting, schema: property, binding: bindings[name]! }))
      : [];
  }
  fieldCache.set(key, fields);
  return fields;
}

/** The closest known name, for "did you mean" hints (Levenshtein distance, small inputs only). */
function closest(name: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1;
  const lower = name.toLowerCase();
  for (const candidate of candidates) {
    if (candidate.toLowerCase() === lower) return candidate;
    const d = distance(lower, candidate.toLowerCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = candidate;
    }
  }
  return best;
}

function distance(a: string, b: string): number {
  if (a.length > 64 || b.length > 64) return Math.abs(a.length - b.length) + 64;
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}

/** Explains an unknown option: a typo, or a name that belongs to another dialect. */
function unknownOptionMessage(name: string, dialect: DialectName | 'canonical', role: OptionsRole, known: string[]): string {
  for (const other of ['ws', 'websocket', 'ipworks'] as const) {
    if (other === dialect) continue;
    const binding = dialectBindings[other][role]?.[name];
    if (binding) {
      const ours = fieldsOf(dialect, role).find((f) => f.setting === binding.setting);
      return ours ? `unknown option; "${name}" is the ${other} name of what this API calls "${ours.name}"` : `unknown option; "${name}" is a ${other} option this API does not have`;
    }
  }
  const suggestion = closest(name, known);
  return suggestion ? `unknown option; did you mean "${suggestion}"?` : 'unknown option';
}

function describeValue(value: unknown): string {
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? value.slice(0, 37) + '...' : value);
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'an array' : 'an object';
}

/** An object literal (or a null-prototype object): live objects such as an http.Server are not records to rebuild. */
function isPlainRecord(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const prototype = Object.getPrototypeOf(value) as unknown;
  return prototype === Object.prototype || prototype === null;
}

/**
 * Keeps a converted number only when it is exactly what the user wrote. TypeBox's Convert truncates
 * (2.5 → 2, "1e6" → 1, "0x10" → 0) and turns true into 1; such a value is left as given, so the
 * check that follows reports it instead of a different number being used in silence.
 */
function exactNumbers(raw: unknown, converted: unknown): unknown {
  if (typeof converted === 'number') {
    if (typeof raw === 'string') return raw.trim() !== '' && Number(raw) === converted ? converted : raw;
    return Object.is(raw, converted) ? converted : raw;
  }
  if (Array.isArray(raw) && Array.isArray(converted) && raw.length === converted.length) return converted.map((item, i) => exactNumbers(raw[i], item));
  if (isPlainRecord(raw) && isPlainRecord(converted)) return Object.fromEntries(Object.entries(converted).map(([k, item]) => [k, exactNumbers(raw[k], item)]));
  return converted;
}

/**
 * Normalizes one dialect's options for a role into wirestate's canonical options, with every
 * canonical setting present (its default where neither the user nor the dialect set it). Throws
 * an OptionsError listing every problem.
 */
export function normalizeOptions<R extends OptionsRole>(dialect: DialectName | 'canonical', role: R, input: unknown): Required<RoleOptions<R>> {
  const problems: OptionProblem[] = [];
  if (input !== undefined && input !== null && (typeof input !== 'object' || Array.isArray(input))) {
    throw new OptionsError(dialect, role, [{ option: '(options)', message: `must be an object, found ${describeValue(input)}` }]);
  }
  const given = (input ?? {}) as Record<string, unknown>;
  const fields = fieldsOf(dialect, role);
  const byName = new Map(fields.map((f) => [f.name, f]));
  for (const name of Object.keys(given)) {
    if (!byName.has(name) && given[name] !== undefined) problems.push({ option: name, message: unknownOptionMessage(name, dialect, role, [...byName.keys()]) });
  }

  const canonical: Record<string, unknown> = {};
  // Canonical defaults first, so a setting this dialect does not expose still has wirestate's value.
  for (const f of fieldsOf('canonical', role)) {
    const value = (f.schema as { default?: unknown }).default;
    canonical[f.setting] = typeof value === 'object' && value !== null ? Value.Clone(value) : value;
  }
  for (const field of fields) {
    const raw = given[field.name];
    let value: unknown = raw;
    if (value === undefined) {
      const fallback = (field.schema as { default?: unknown }).default;
      value = typeof fallback === 'object' && fallback !== null ? Value.Clone(fallback) : fallback;
    } else {
      const info = settingsTable[field.setting];
      if (!info.supported) {
        problems.push({ option: field.name, message: `cannot be honoured on Node: ${info.unsupportedReason}` });
        continue;
      }
      // Convert only JSON-like values: live objects (servers, agents, callbacks) are checked as given.
      if (typeof value !== 'function' && !(value instanceof Uint8Array)) value = exactNumbers(value, Value.Convert(field.schema, value));
      const first = Value.Errors(field.schema, value).First();
      if (first) {
        const where = first.path && first.path !== '/' ? ` (at ${first.path})` : '';
        problems.push({ option: field.name, message: `${first.message}${where}, found ${describeValue(raw)}` });
        continue;
      }
      if (typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array) && field.schema.anyOf) {
        // An object setting given as an object: fill in its properties' defaults.
        value = Value.Default(field.schema, { ...(value as object) });
      }
    }
    if (value === undefined) continue;
    if (typeof value === 'number' && field.binding.scale !== 1) value = value * field.binding.scale;
    if (typeof value === 'boolean' && field.binding.invert) value = !value;
    canonical[field.setting] = value;
  }
  if (problems.length > 0) throw new OptionsError(dialect, role, problems);
  return canonical as Required<RoleOptions<R>>;
}

export function normalizeWsServerOptions(input: unknown): Required<ServerOptions> {
  return normalizeOptions('ws', 'server', input);
}

export function normalizeWsClientOptions(input: unknown): Required<ClientOptions> {
  return normalizeOptions('ws', 'client', input);
}

export function normalizeWebsocketServerOptions(input: unknown): Required<ServerOptions> {
  return normalizeOptions('websocket', 'server', input);
}

export function normalizeIpworksServerOptions(input: unknown): Required<ServerOptions> {
  return normalizeOptions('ipworks', 'server', input);
}
