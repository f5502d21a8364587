/**
 * Typed option bindings for other languages, generated with quicktype-core from the JSON Schemas
 * that `make generate` writes (generated/schemas/<dialect>-<role>.schema.json).
 *
 * quicktype carries a property's `description` into the doc comment of its field, but not its
 * `default`, `minimum`, `maximum` or unit; so before the schema is handed over, each description is
 * completed with them — "… (default 104857600; 0..9007199254740991 bytes)" — and with the canonical
 * setting's name where a dialect spells it differently, and the reason wirestate cannot honour a
 * setting where it cannot. The schemas list no `required` property: every setting has a default or
 * means "unset", so every generated field is optional (a pointer in Go, `Optional` in Python, `?`
 * in TypeScript, `Option` in Rust).
 */
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const LANGUAGES = ['python', 'go', 'rust', 'csharp', 'java', 'typescript'] as const;
export type Language = (typeof LANGUAGES)[number];
export const DIALECTS = ['canonical', 'ws', 'websocket', 'ipworks'] as const;
export type Dialect = (typeof DIALECTS)[number];
export const ROLES = ['server', 'client'] as const;
export type Role = (typeof ROLES)[number];

/** A JSON Schema, loosely: the generator's schemas use a small subset (draft-07). */
export interface JsonSchema {
  [keyword: string]: unknown;
  type?: string | string[];
  title?: string;
  description?: string;
  default?: unknown;
  minimum?: number;
  maximum?: number;
  enum?: unknown[];
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  'x-unit'?: string;
  'x-unsupported'?: string;
  'x-wirestate-setting'?: string;
}

/** generated/schemas of the checkout or package this module belongs to. */
export function defaultSchemasDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'generated', 'schemas');
    if (existsSync(candidate) && statSync(candidate).isDirectory()) return candidate;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'generated', 'schemas');
}

export function schemaFile(dialect: Dialect, role: Role, dir = defaultSchemasDir()): string {
  return join(dir, `${dialect}-${role}.schema.json`);
}

function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : JSON.stringify(value) ?? String(value);
}

/**
 * The facts a doc comment should carry beside the prose: `default 104857600; 0..9007199254740991
 * bytes`, `default "auto"; one of "auto", "pemKeyFile"`, `>= 1 ms`. Empty when there are none.
 */
export function facts(schema: JsonSchema): string {
  const parts: string[] = [];
  if (schema.default !== undefined) parts.push(`default ${show(schema.default)}`);
  const unit = schema['x-unit'];
  let range = '';
  if (schema.minimum !== undefined && schema.maximum !== undefined) range = `${schema.minimum}..${schema.maximum}`;
  else if (schema.minimum !== undefined) range = `>= ${schema.minimum}`;
  else if (schema.maximum !== undefined) range = `<= ${schema.maximum}`;
  if (range && unit) parts.push(`${range} ${unit}`);
  else if (range) parts.push(range);
  else if (unit) parts.push(`in ${unit}`);
  if (Array.isArray(schema.enum)) parts.push(`one of ${schema.enum.map(show).join(', ')}`);
  return parts.join('; ');
}

/** A property's description completed with its facts, its canonical name and any note. */
export function describeProperty(name: string, schema: JsonSchema): string {
  let text = (schema.description ?? '').trim();
  const sentence = (more: string) => {
    text = text ? `${text}${/[.!?]$/.test(text) ? '' : '.'} ${more}` : more;
  };
  const canonical = schema['x-wirestate-setting'];
  if (canonical && canonical !== name) sentence(`The wirestate setting ${canonical}.`);
  const unsupported = schema['x-unsupported'];
  if (unsupported) sentence(`Accepted but not honoured by wirestate: ${unsupported.trim()}`);
  const known = facts(schema);
  if (known) text = text ? `${text} (${known})` : `(${known})`;
  return text;
}

function pascal(name: string): string {
  return name.replace(/(^|[^A-Za-z0-9]+)([A-Za-z0-9])/g, (_, __, c: string) => c.toUpperCase());
}

/** A deep copy of a property's schema, ready for quicktype (see the module comment). */
function prepareProperty(name: string, schema: JsonSchema): JsonSchema {
  const copy: JsonSchema = { ...schema, description: describeProperty(name, schema) };
  // `enum: [8, 13]` with no type reads as "any number" to quicktype (a float/int union in Go).
  if (copy.type === undefined && Array.isArray(copy.enum) && copy.enum.every((v) => Number.isInteger(v))) copy.type = 'integer';
  if (copy.properties) copy.properties = prepareProperties(copy.properties);
  if (copy.items) copy.items = prepareMember(name, copy.items);
  for (const key of ['anyOf', 'oneOf'] as const) {
    const members = copy[key];
    if (Array.isArray(members)) copy[key] = members.map((member) => prepareMember(name, member));
  }
  for (const key of Object.keys(copy)) if (key.startsWith('x-')) delete copy[key];
  return copy;
}

/** A union member or array item: objects get a title (so a class name) and described properties. */
function prepareMember(owner: string, schema: JsonSchema): JsonSchema {
  const copy: JsonSchema = { ...schema };
  if (copy.type === 'object' && copy.properties) {
    copy.title ??= `${pascal(owner)}Options`;
    copy.properties = prepareProperties(copy.properties);
  }
  return copy;
}

function prepareProperties(properties: Record<string, JsonSchema>): Record<string, JsonSchema> {
  const out: Record<string, JsonSchema> = {};
  for (const name of Object.keys(properties).sort()) out[name] = prepareProperty(name, properties[name]!);
  return out;
}

const DIALECT_WORDS: Record<Dialect, string> = {
  canonical: "wirestate's own (canonical) option names",
  ws: 'the option names of ws, for which wirestate is a drop-in',
  websocket: 'the option names of WebSocket-Node (the websocket package)',
  ipworks: "the property names of /n software's IPWorks WebSocket components",
};

/** The schema quicktype gets: descriptions completed, `x-` keywords and `$id` dropped, `required` never added. */
export function prepareSchema(schema: JsonSchema, dialect: Dialect, role: Role): JsonSchema {
  const { $id: _id, ...rest } = schema;
  void _id;
  return {
    ...rest,
    description: `Options of a wirestate ${role}, with ${DIALECT_WORDS[dialect]}. Every field is optional: one left unset takes the default its comment gives.`,
    properties: prepareProperties(schema.properties ?? {}),
  };
}

/** The dialect and role asked for have no JSON Schema. */
export class NoSchemaError extends Error {
  override name = 'NoSchemaError';
}

export interface BindingsOptions {
  lang: Language;
  dialect?: Dialect;
  role?: Role;
  /** Go package, Java package, C# namespace. */
  packageName?: string;
  /** Where the JSON Schemas are (default: generated/schemas). */
  schemasDir?: string;
}

export interface GeneratedFile {
  /** A file name for the code (`ws_server_options.py`, `WsServerOptions.java` …). */
  name: string;
  text: string;
}

export interface Bindings {
  lang: Language;
  dialect: Dialect;
  role: Role;
  /** The top-level type: `WsServerOptions`. */
  typeName: string;
  /** The schema it was generated from. */
  schemaFile: string;
  /** One file for every language but Java, which gets one file per class. */
  files: GeneratedFile[];
}

const DEFAULT_PACKAGE: Partial<Record<Language, string>> = { go: 'wirestate', java: 'dev.wirestate.options', csharp: 'Wirestate.Options' };

function rendererOptions(lang: Language, packageName: string | undefined): Record<string, string> {
  const pkg = packageName ?? DEFAULT_PACKAGE[lang];
  switch (lang) {
    case 'python':
      // Dataclasses with from_dict / to_dict that check types both ways; 3.7 is the first with dataclasses.
      return { 'python-version': '3.7', 'nice-property-names': 'true' };
    case 'go':
      // Pointers for every optional field, `json:",omitempty"` so unset fields stay out of the JSON.
      return { package: pkg!, 'omit-empty': 'true' };
    case 'typescript':
      // Interfaces plus a Convert class that checks parsed JSON against them at run time.
      return { 'prefer-unions': 'true', 'prefer-unknown': 'true' };
    case 'rust':
      return { 'derive-debug': 'true', 'derive-clone': 'true', 'skip-serializing-none': 'true', visibility: 'public' };
    case 'csharp':
      return { namespace: pkg!, framework: 'SystemTextJson' };
    case 'java':
      return { package: pkg! };
  }
}

function snake(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
}

function fileName(lang: Language, typeName: string): string {
  switch (lang) {
    case 'python':
      return `${snake(typeName)}.py`;
    case 'go':
      return `${snake(typeName)}.go`;
    case 'rust':
      return `${snake(typeName)}.rs`;
    case 'csharp':
      return `${typeName}.cs`;
    case 'java':
      return `${typeName}.java`;
    case 'typescript':
      return `${typeName.charAt(0).toLowerCase()}${typeName.slice(1)}.ts`;
  }
}

/**
 * gofmt's layout for the struct fields quicktype writes: quicktype pads every field to the widest
 * line of the file, comments included. gofmt aligns the columns of consecutive field lines only (a
 * comment line ends a run), so a field under its own doc comment gets single spaces.
 */
export function alignGoStructs(text: string): string {
  const lines = text.split('\n').map((line) => line.replace(/[ \t]+$/, ''));
  const field = /^\t(\S+)\s+(\S+)\s+(`.*`)$/;
  let inStruct = false;
  let run: { index: number; parts: RegExpMatchArray }[] = [];
  const flush = () => {
    const nameWidth = Math.max(0, ...run.map((f) => f.parts[1]!.length));
    const typeWidth = Math.max(0, ...run.map((f) => f.parts[2]!.length));
    for (const { index, parts } of run) lines[index] = `\t${parts[1]!.padEnd(nameWidth)} ${parts[2]!.padEnd(typeWidth)} ${parts[3]}`;
    run = [];
  };
  lines.forEach((line, index) => {
    if (/^type \S+ struct \{$/.test(line)) {
      inStruct = true;
      return;
    }
    if (!inStruct) return;
    const parts = line.match(field);
    if (parts) {
      run.push({ index, parts });
      return;
    }
    flush();
    if (line === '}') inStruct = false;
  });
  flush();
  // quicktype's union helpers (unmarshalUnion, marshalUnion) come from a template indented with
  // 1, 3, 5, 7 tabs for levels 1 to 4.
  const helpers = lines.findIndex((line) => line.startsWith('func unmarshalUnion('));
  if (helpers >= 0) {
    for (let i = helpers; i < lines.length; i++) {
      const tabs = lines[i]!.match(/^\t*/)![0].length;
      if (tabs > 1 && tabs % 2 === 1) lines[i] = '\t'.repeat((tabs + 1) / 2) + lines[i]!.slice(tabs);
    }
  }
  return lines.join('\n');
}

function header(lang: Language, dialect: Dialect, role: Role, typeName: string, schema: string): string[] {
  const words = [
    `${typeName}: options of a wirestate ${role} in the ${dialect} dialect.`,
    `Generated by \`wirestate bindings --lang ${lang} --dialect ${dialect} --role ${role}\``,
    `from ${schema} (generated from spec/settings.yaml);`,
    'regenerate rather than edit. Every field is optional: its comment gives the',
    'default it takes when unset, and its range and unit.',
  ];
  const prefix = lang === 'python' ? '# ' : '// ';
  return [...words.map((line) => prefix + line), ''];
}

async function loadQuicktype(): Promise<typeof import('quicktype-core')> {
  try {
    return await import('quicktype-core');
  } catch (error) {
    throw new Error(`wirestate bindings needs quicktype-core (npm install quicktype-core@26.0.0): ${(error as Error).message}`);
  }
}

/** Generates the bindings of one schema for one language. */
export async function generateBindings(options: BindingsOptions): Promise<Bindings> {
  const { lang } = options;
  const dialect = options.dialect ?? 'canonical';
  const role = options.role ?? 'server';
  if (!LANGUAGES.includes(lang)) throw new Error(`unknown language "${lang}" (one of ${LANGUAGES.join(', ')})`);
  if (!DIALECTS.includes(dialect)) throw new Error(`unknown dialect "${dialect}" (one of ${DIALECTS.join(', ')})`);
  if (!ROLES.includes(role)) throw new Error(`unknown role "${role}" (one of ${ROLES.join(', ')})`);

  const file = schemaFile(dialect, role, options.schemasDir);
  if (!existsSync(file)) {
    const dir = options.schemasDir ?? defaultSchemasDir();
    const others = ROLES.filter((r) => r !== role && existsSync(schemaFile(dialect, r, dir)));
    if (others.length > 0) {
      throw new NoSchemaError(`the ${dialect} dialect has no ${role} options: its API is offered for ${others.join(' and ')} only (--role ${others[0]})`);
    }
    throw new NoSchemaError(`${file} is missing: run \`make generate\``);
  }
  let schema: JsonSchema;
  try {
    schema = JSON.parse(await readFile(file, 'utf8')) as JsonSchema;
  } catch (error) {
    throw new Error(`cannot read the JSON Schema ${file} (run \`make generate\`): ${(error as Error).message}`);
  }
  const typeName = schema.title ?? `${pascal(dialect)}${pascal(role)}Options`;
  const prepared = prepareSchema(schema, dialect, role);

  const { quicktypeMultiFile, InputData, JSONSchemaInput, FetchingJSONSchemaStore } = await loadQuicktype();
  const input = new JSONSchemaInput(new FetchingJSONSchemaStore());
  await input.addSource({ name: typeName, schema: JSON.stringify(prepared) });
  const inputData = new InputData();
  inputData.addInput(input);
  const outputFilename = fileName(lang, typeName);
  const results = await quicktypeMultiFile({
    inputData,
    lang,
    outputFilename,
    rendererOptions: rendererOptions(lang, options.packageName),
    // No `required`, and quicktype must not decide otherwise: an unset setting takes its default.
    allPropertiesOptional: true,
  });
  const shownSchema = `generated/schemas/${dialect}-${role}.schema.json`;
  const files: GeneratedFile[] = [];
  for (const [name, result] of results) {
    let text = result.lines.join('\n');
    if (lang === 'go') text = alignGoStructs(text);
    text = text.replace(/[ \t]+$/gm, '').replace(/\n*$/, '\n');
    files.push({ name, text: `${header(lang, dialect, role, typeName, shownSchema).join('\n')}\n${text}` });
  }
  return { lang, dialect, role, typeName, schemaFile: file, files };
}

/** All files of a binding as one text, each after a `// Name.java` line when there are several. */
export function joinFiles(bindings: Bindings): string {
  if (bindings.files.length === 1) return bindings.files[0]!.text;
  const mark = bindings.lang === 'python' ? '#' : '//';
  return bindings.files.map((file) => `${mark} ${file.name}\n${file.text}`).join('\n');
}
