/**
 * Reads spec/ into typed values. Structural problems are found here against the TypeBox
 * meta-schema; problems of meaning are found by validate.ts. Either way a problem is a SpecProblem
 * naming the file, the path inside it (and its line when known) and the reason.
 */
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { LineCounter, parseDocument, isMap, isScalar, type Document } from 'yaml';
import {
  ErrorsFile,
  MachineFile,
  ProtocolFile,
  SettingsFile,
  type ErrorsFileT,
  type MachineFileT,
  type ProtocolFileT,
  type SettingsFileT,
} from './spec-schema.js';

export type PathSegment = string | number;

export interface SpecProblem {
  file: string;
  path: PathSegment[];
  reason: string;
  line?: number;
}

/** Formats a path the way a person would write it: `states.open.on.CLOSE[0].target`. */
export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out === '' ? segment : `.${segment}`;
  }
  return out === '' ? '(root)' : out;
}

export function formatProblem(problem: SpecProblem): string {
  const where = problem.line === undefined ? problem.file : `${problem.file}:${problem.line}`;
  return `${where}: ${formatPath(problem.path)}: ${problem.reason}`;
}

/** Thrown when the spec has problems; carries all of them, so one run reports everything. */
export class SpecError extends Error {
  constructor(readonly problems: SpecProblem[]) {
    super(`the spec has ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n` + problems.map((p) => '  ' + formatProblem(p)).join('\n'));
    this.name = 'SpecError';
  }
}

/** One parsed YAML file, keeping its document so that problems found later can be given a line. */
export class SpecFile<T> {
  constructor(
    readonly file: string,
    readonly value: T,
    private readonly document: Document | undefined,
    private readonly lines: LineCounter | undefined,
  ) {}

  problem(path: PathSegment[], reason: string): SpecProblem {
    return { file: this.file, path, reason, line: this.lineOf(path) };
  }

  lineOf(path: PathSegment[]): number | undefined {
    if (!this.document || !this.lines) return undefined;
    // Walk up the path until a node with a known position is found.
    for (let length = path.length; length >= 0; length--) {
      // A mapping entry is reported at its key: a block value (a nested mapping or list) starts on
      // the line after it, and the key is what the path names.
      const key = path[length - 1];
      const parent = length > 0 && typeof key === 'string' ? this.document.getIn(path.slice(0, length - 1), true) : undefined;
      const pair = isMap(parent) ? parent.items.find((item) => isScalar(item.key) && item.key.value === key) : undefined;
      if (pair && isScalar(pair.key) && pair.key.range) return this.lines.linePos(pair.key.range[0]).line;
      const node = this.document.getIn(path.slice(0, length), true);
      const range = node && typeof node === 'object' && 'range' in node ? (node as { range?: [number, number, number] }).range : undefined;
      if (range) return this.lines.linePos(range[0]).line;
      if (isScalar(node) && node.range) return this.lines.linePos(node.range[0]).line;
    }
    return undefined;
  }
}

function pointerToPath(pointer: string): PathSegment[] {
  if (pointer === '') return [];
  return pointer
    .split('/')
    .slice(1)
    .map((raw) => raw.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((segment) => (/^\d+$/.test(segment) ? Number(segment) : segment));
}

/** Parses one YAML file and checks it against its meta-schema; returns problems instead of throwing. */
export function loadYaml<T>(absolutePath: string, displayName: string, schema: TSchema, problems: SpecProblem[]): SpecFile<T> | undefined {
  let text: string;
  try {
    text = readFileSync(absolutePath, 'utf8');
  } catch (error) {
    problems.push({ file: displayName, path: [], reason: `cannot read the file: ${(error as Error).message}` });
    return undefined;
  }
  const lines = new LineCounter();
  const document = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (document.errors.length > 0) {
    for (const error of document.errors) {
      const line = error.pos ? lines.linePos(error.pos[0]).line : undefined;
      problems.push({ file: displayName, path: [], reason: `YAML syntax: ${error.message.split('\n')[0]}`, line });
    }
    return undefined;
  }
  const value: unknown = document.toJS({ maxAliasCount: 100 });
  const file = new SpecFile<T>(displayName, value as T, document, lines);
  const seen = new Set<string>();
  for (const error of Value.Errors(schema, value)) {
    const path = pointerToPath(error.path);
    const key = `${error.path}\u0000${error.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    problems.push(file.problem(path, describeSchemaError(error.message, error.value)));
    if (seen.size >= 50) break;
  }
  return seen.size === 0 ? file : undefined;
}

function describeSchemaError(message: string, value: unknown): string {
  const shown = value === undefined ? 'nothing' : JSON.stringify(value);
  return `${message} (found ${shown && shown.length > 60 ? shown.slice(0, 57) + '...' : shown})`;
}

export interface LoadedSpec {
  root: string;
  protocol: SpecFile<ProtocolFileT>;
  errors: SpecFile<ErrorsFileT>;
  machines: SpecFile<MachineFileT>[];
  settings: SpecFile<SettingsFileT>;
}

/**
 * Reads every file of a spec folder. Throws SpecError listing every structural problem found in
 * every file, so a broken spec is reported in one run.
 */
export function loadSpecFolder(specDir: string, displayRoot = specDir): LoadedSpec {
  const problems: SpecProblem[] = [];
  const display = (name: string) => join(relative(process.cwd(), displayRoot) || displayRoot, name).replace(/\\/g, '/');
  const protocol = loadYaml<ProtocolFileT>(join(specDir, 'protocol.yaml'), display('protocol.yaml'), ProtocolFile, problems);
  const errors = loadYaml<ErrorsFileT>(join(specDir, 'errors.yaml'), display('errors.yaml'), ErrorsFile, problems);
  const settings = loadYaml<SettingsFileT>(join(specDir, 'settings.yaml'), display('settings.yaml'), SettingsFile, problems);
  const machineDir = join(specDir, 'machines');
  const machines: SpecFile<MachineFileT>[] = [];
  if (!existsSync(machineDir)) {
    problems.push({ file: display('machines'), path: [], reason: 'the machines folder is missing' });
  } else {
    for (const name of readdirSync(machineDir).filter((n) => n.endsWith('.yaml')).sort()) {
      const machine = loadYaml<MachineFileT>(join(machineDir, name), display(`machines/${name}`), MachineFile, problems);
      if (machine) machines.push(machine);
    }
  }
  if (problems.length > 0 || !protocol || !errors || !settings) throw new SpecError(problems);
  return { root: specDir, protocol, errors, machines, settings };
}
