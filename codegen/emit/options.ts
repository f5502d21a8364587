/**
 * Emits generated/options.generated.ts from spec/settings.yaml: the settings table, TypeBox schemas
 * for the canonical options and for each dialect and role (with each dialect's own defaults),
 * their Static types, and the binding of each dialect name to its canonical setting. The
 * normalizer that applies them lives in runtime/options.ts.
 */
import { VariableDeclarationKind, type Project } from 'ts-morph';
import type { ValidatedSpec } from '../validate.js';
import { DialectNames, type DialectName, type SettingPropertySpecT, type SettingSpecT } from '../spec-schema.js';
import { code, finish, literal, newSourceFile, quote, sortedObject, type Code, type EmittedFile } from './source.js';
import { pascal } from './machine.js';

const GENERATOR = 'emit/options.ts';
const OUTPUT = 'generated/options.generated.ts';
export const ROLES = ['server', 'client'] as const;
export type Role = (typeof ROLES)[number];

/** The settings a dialect exposes for a role, sorted by the dialect's name for them. */
export function dialectSettings(settings: readonly SettingSpecT[], dialect: DialectName, role: Role) {
  return settings
    .filter((s) => s.roles.includes(role) && s.dialects[dialect])
    .map((s) => ({ setting: s, binding: s.dialects[dialect]! }))
    .sort((a, b) => (a.binding.name < b.binding.name ? -1 : a.binding.name > b.binding.name ? 1 : 0));
}

export function canonicalSettings(settings: readonly SettingSpecT[], role: Role): SettingSpecT[] {
  return settings.filter((s) => s.roles.includes(role)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The default a dialect gives a setting, in the dialect's own unit and sense. */
export function dialectDefault(setting: SettingSpecT, dialect: DialectName): unknown {
  const binding = setting.dialects[dialect];
  if (binding?.default !== undefined) return binding.default;
  let value: unknown = setting.default;
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number' && binding?.scale) value = value / binding.scale;
  if (typeof value === 'boolean' && binding?.invert) value = !value;
  return value;
}

function annotations(spec: { description: string; minimum?: number; maximum?: number }, defaultValue: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ...extra,
    minimum: spec.minimum,
    maximum: spec.maximum,
    default: defaultValue === null ? undefined : defaultValue,
    description: spec.description,
  };
}

function propertySchema(property: SettingPropertySpecT): Code {
  return typeSchema(property, property.default ?? undefined, {});
}

/** The TypeBox expression for one setting or object property, as code. */
function typeSchema(spec: SettingSpecT | SettingPropertySpecT, defaultValue: unknown, extra: Record<string, unknown>, scale = 1): Code {
  const scaled = { ...spec, minimum: spec.minimum === undefined ? undefined : Math.ceil(spec.minimum / scale), maximum: spec.maximum === undefined ? undefined : Math.floor(spec.maximum / scale) };
  const opts = (d: unknown) => literalCode(annotations(scaled, d, extra));
  switch (spec.type) {
    case 'integer':
      return code(`Type.Integer(${opts(defaultValue)})`);
    case 'boolean':
      return code(`Type.Boolean(${opts(defaultValue)})`);
    case 'string':
      return code(`Type.String(${opts(defaultValue)})`);
    case 'enum':
      return code(`Type.Union([${spec.values!.map((v) => `Type.Literal(${typeof v === 'string' ? quote(v) : v})`).join(', ')}], ${opts(defaultValue)})`);
    case 'stringList':
      return code(`Type.Array(Type.String(), ${opts(defaultValue)})`);
    case 'stringMap':
      return code(`Type.Record(Type.String(), Type.String(), ${opts(defaultValue)})`);
    case 'binary':
      return code(`Type.Union([Type.String(), Type.Uint8Array(), Type.Array(Type.Union([Type.String(), Type.Uint8Array()]))], ${opts(defaultValue)})`);
    case 'function':
      return code(`Type.Unsafe<(...args: any[]) => any>(Type.Function([], Type.Any(), ${opts(undefined)}))`);
    case 'any':
      return code(`Type.Any(${opts(undefined)})`);
    case 'object': {
      const properties = 'properties' in spec && spec.properties ? spec.properties : {};
      const fields = sortedObject(Object.entries(properties).map(([k, p]) => [k, code(`Type.Optional(${propertySchema(p).code})`)]));
      return code(`Type.Union([Type.Boolean(), Type.Object(${literalCode(fields)}, { additionalProperties: false })], ${opts(defaultValue)})`);
    }
  }
}

/** Renders a value with literal() into a string, for nesting inside a code expression. */
function literalCode(value: unknown): string {
  let out = '';
  const writer = {
    write(text: string) {
      out += text;
      return writer;
    },
    newLine() {
      out += '\n';
      return writer;
    },
    indent(fn: () => void) {
      fn();
      return writer;
    },
  };
  literal(value)(writer as never);
  return out;
}

export function schemaName(dialect: DialectName | 'canonical', role: Role): string {
  return `${dialect === 'canonical' ? '' : pascal(dialect)}${pascal(role)}OptionsSchema`;
}

export function emitOptions(project: Project, spec: ValidatedSpec): EmittedFile[] {
  const settings = [...spec.settings.value.settings].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const file = newSourceFile(project, OUTPUT, GENERATOR, ['spec/settings.yaml']);
  file.addImportDeclaration({ moduleSpecifier: '@sinclair/typebox', namedImports: ['Type', { name: 'Static', isTypeOnly: true }] });

  file.addTypeAlias({ isExported: true, name: 'SettingName', type: settings.map((s) => quote(s.name)).join(' | ') });
  file.addTypeAlias({ isExported: true, name: 'DialectName', type: DialectNames.map(quote).join(' | ') });
  file.addTypeAlias({ isExported: true, name: 'OptionsRole', type: ROLES.map(quote).join(' | ') });
  file.addInterface({
    isExported: true,
    name: 'DialectBinding',
    docs: ['How one dialect spells one setting.'],
    properties: [
      { name: 'name', type: 'string', isReadonly: true, docs: ["The dialect's own name."] },
      { name: 'setting', type: 'SettingName', isReadonly: true, docs: ['The canonical setting it maps onto.'] },
      { name: 'scale', type: 'number', isReadonly: true, docs: ['Multiplies a dialect value into the canonical unit.'] },
      { name: 'invert', type: 'boolean', isReadonly: true, docs: ['The boolean has the opposite sense.'] },
      { name: 'kind', type: "'property' | 'config' | null", isReadonly: true, docs: ['IPWorks: a class property or a config() setting.'] },
      { name: 'extension', type: 'boolean', isReadonly: true, docs: ["wirestate adds it; the dialect's library has no such option."] },
      { name: 'editions', type: 'readonly (number | string)[] | null', isReadonly: true, docs: ['IPWorks: the references naming it.'] },
    ],
  });
  file.addInterface({
    isExported: true,
    name: 'SettingInfo',
    docs: ['One row of spec/settings.yaml.'],
    properties: [
      { name: 'name', type: 'SettingName', isReadonly: true },
      { name: 'group', type: 'string', isReadonly: true },
      { name: 'roles', type: 'readonly OptionsRole[]', isReadonly: true },
      { name: 'type', type: 'string', isReadonly: true },
      { name: 'default', type: 'unknown', isReadonly: true },
      { name: 'minimum', type: 'number | null', isReadonly: true },
      { name: 'maximum', type: 'number | null', isReadonly: true },
      { name: 'unit', type: 'string', isReadonly: true },
      { name: 'description', type: 'string', isReadonly: true },
      { name: 'rfc', type: 'string | null', isReadonly: true },
      { name: 'supported', type: 'boolean', isReadonly: true },
      { name: 'unsupportedReason', type: 'string | null', isReadonly: true },
      { name: 'dialects', type: '{ readonly [D in DialectName]?: DialectBinding }', isReadonly: true },
    ],
  });
  const binding = (s: SettingSpecT, dialect: DialectName) => {
    const b = s.dialects[dialect];
    if (!b) return undefined;
    return {
      name: b.name,
      setting: s.name,
      scale: b.scale ?? 1,
      invert: b.invert ?? false,
      kind: b.kind ?? null,
      extension: b.extension ?? false,
      editions: b.editions ?? null,
    };
  };
  file.addVariableStatement({
    isExported: true,
    declarationKind: VariableDeclarationKind.Const,
    docs: ['Every setting, sorted by canonical name.'],
    declarations: [
      {
        name: 'settingsTable',
        type: '{ readonly [Name in SettingName]: SettingInfo }',
        initializer: literal(
          sortedObject(
            settings.map((s) => [
              s.name,
              {
                name: s.name,
                group: s.group,
                roles: s.roles,
                type: s.type,
                default: s.type === 'object' ? (objectDefault(s) ?? null) : (s.default ?? null),
                minimum: s.minimum ?? null,
                maximum: s.maximum ?? null,
                unit: s.unit,
                description: s.description,
                rfc: s.rfc ?? null,
                supported: s.supported,
                unsupportedReason: s.unsupportedReason ?? null,
                dialects: Object.fromEntries(DialectNames.map((d) => [d, binding(s, d)]).filter(([, b]) => b !== undefined)),
              },
            ]),
          ),
        ),
      },
    ],
  });

  // Canonical schemas, one per role.
  for (const role of ROLES) {
    const name = schemaName('canonical', role);
    const fields = sortedObject(
      canonicalSettings(settings, role).map((s) => [s.name, code(`Type.Optional(${typeSchema(s, s.type === 'object' ? objectDefaultValue(s) : s.default, {}).code})`)]),
    );
    file.addVariableStatement({
      isExported: true,
      declarationKind: VariableDeclarationKind.Const,
      docs: [`wirestate's canonical ${role} options, with wirestate's defaults.`],
      declarations: [{ name, initializer: (w) => w.write(`Type.Object(${literalCode(fields)}, { additionalProperties: false, $id: ${quote(`wirestate/${role}-options`)} })`) }],
    });
    file.addTypeAlias({ isExported: true, name: `${pascal(role)}Options`, type: `Static<typeof ${name}>` });
  }

  // Dialect schemas, one per dialect and role that has any setting.
  const dialectSchemaIndex: Record<string, Record<string, Code>> = {};
  const bindingIndex: Record<string, Record<string, Record<string, unknown>>> = {};
  for (const dialect of DialectNames) {
    for (const role of ROLES) {
      if (!spec.settings.value.dialects[dialect].roles.includes(role)) continue;
      const exposed = dialectSettings(settings, dialect, role);
      if (exposed.length === 0) continue;
      const name = schemaName(dialect, role);
      const fields = sortedObject(
        exposed.map(({ setting, binding: b }) => [
          b.name,
          code(
            `Type.Optional(${
              typeSchema(setting, dialectDefault(setting, dialect), { 'x-wirestate-setting': setting.name }, b.scale ?? 1).code
            })`,
          ),
        ]),
      );
      file.addVariableStatement({
        isExported: true,
        declarationKind: VariableDeclarationKind.Const,
        docs: [`The ${role} options as the ${dialect} API names them, with ${dialect}'s defaults.`],
        declarations: [{ name, initializer: (w) => w.write(`Type.Object(${literalCode(fields)}, { additionalProperties: false, $id: ${quote(`wirestate/${dialect}-${role}-options`)} })`) }],
      });
      file.addTypeAlias({ isExported: true, name: `${pascal(dialect)}${pascal(role)}Options`, type: `Static<typeof ${name}>` });
      (dialectSchemaIndex[dialect] ??= {})[role] = code(name);
      (bindingIndex[dialect] ??= {})[role] = sortedObject(exposed.map(({ setting, binding: b }) => [b.name, code(`settingsTable.${setting.name}.dialects.${dialect}!`)]));
    }
  }
  file.addVariableStatements([
    {
      isExported: true,
      declarationKind: VariableDeclarationKind.Const,
      docs: ['The schema of each dialect, by role.'],
      declarations: [{ name: 'dialectSchemas', initializer: literal(dialectSchemaIndex) }],
    },
    {
      isExported: true,
      declarationKind: VariableDeclarationKind.Const,
      docs: ["Each dialect's names for a role, mapped to their bindings."],
      declarations: [
        {
          name: 'dialectBindings',
          type: '{ readonly [D in DialectName]: { readonly [R in OptionsRole]?: { readonly [name: string]: DialectBinding } } }',
          initializer: literal(bindingIndex),
        },
      ],
    },
    {
      isExported: true,
      declarationKind: VariableDeclarationKind.Const,
      docs: ['The canonical schema of each role.'],
      declarations: [{ name: 'canonicalSchemas', initializer: literal({ server: code(schemaName('canonical', 'server')), client: code(schemaName('canonical', 'client')) }) }],
    },
  ]);
  return [finish(file, OUTPUT)];
}

/**
 * An object setting's default: the boolean given, or undefined when the spec gives none — the option
 * is then unset (spec/README.md), exactly as the TypeBox schemas and the normalizer treat it. Its
 * properties' defaults fill in an object the user gives; they are not a default of their own.
 */
export function objectDefault(setting: SettingSpecT): unknown {
  return setting.default ?? undefined;
}

function objectDefaultValue(setting: SettingSpecT): unknown {
  return typeof setting.default === 'boolean' ? setting.default : undefined;
}
