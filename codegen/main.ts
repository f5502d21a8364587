/**
 * `make generate`: reads spec/, validates it, and writes generated/ and docs/. Nothing is written
 * unless the whole spec is valid and every emitter succeeded; files in generated/ that the spec no
 * longer produces are removed, so the folder is exactly the spec's image.
 *
 *   node dist/codegen/main.js [--spec DIR] [--out DIR] [--validate-only]
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSpecFolder, SpecError } from './load.js';
import { validateSpec, type ValidatedSpec } from './validate.js';
import { createProject, type EmittedFile } from './emit/source.js';
import { emitProtocol } from './emit/protocol.js';
import { emitMachine } from './emit/machine.js';
import { emitOptions } from './emit/options.js';
import { emitJsonSchemas } from './emit/json-schema.js';
import { emitDiagrams } from './emit/diagrams.js';
import { emitSettingsDoc } from './emit/settings-doc.js';

/** Every file the spec produces, keyed by path relative to the output root. */
export function generate(spec: ValidatedSpec): EmittedFile[] {
  const project = createProject();
  const settings = new Map(spec.settings.value.settings.map((s) => [s.name, s]));
  const files: EmittedFile[] = [emitProtocol(project, spec)];
  spec.models.forEach((model, index) => {
    const source = spec.machines[index]!.file;
    files.push(emitMachine(project, model, specRelative(source), settings));
  });
  files.push(...emitOptions(project, spec));
  files.push(...emitJsonSchemas(spec));
  files.push(...emitDiagrams(spec));
  files.push(emitSettingsDoc(spec));
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Names a spec file as it stands in the repository (`spec/machines/x.yaml`), wherever the spec was read from. */
function specRelative(display: string): string {
  const index = display.lastIndexOf('machines/');
  return `spec/${index >= 0 ? display.slice(index) : display}`;
}

/**
 * Folders whose files of the kinds generate() writes are all generated: such a file that
 * generate() did not produce is stale. (docs/diagrams/*.svg are rendered from the .dot files by
 * Graphviz in the Makefile's generate step, so they are not codegen's to remove.)
 */
const OWNED_FOLDERS: { folder: string; extensions: string[] }[] = [
  { folder: 'generated', extensions: ['.ts', '.json'] },
  { folder: 'docs/diagrams', extensions: ['.mmd', '.dot'] },
];

export function writeOutputs(files: EmittedFile[], outRoot: string): { written: string[]; removed: string[]; unchanged: number } {
  const written: string[] = [];
  const removed: string[] = [];
  let unchanged = 0;
  const produced = new Set(files.map((f) => f.path));
  for (const f of files) {
    const target = join(outRoot, f.path);
    if (existsSync(target) && readFileSync(target, 'utf8') === f.contents) {
      unchanged++;
      continue;
    }
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, f.contents);
    written.push(f.path);
  }
  for (const { folder, extensions } of OWNED_FOLDERS) {
    const absolute = join(outRoot, folder);
    if (!existsSync(absolute)) continue;
    for (const entry of readdirSync(absolute, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile() || !extensions.some((ext) => entry.name.endsWith(ext))) continue;
      const path = relative(outRoot, join(entry.parentPath, entry.name)).replace(/\\/g, '/');
      if (!produced.has(path)) {
        rmSync(join(outRoot, path));
        removed.push(path);
      }
    }
  }
  return { written, removed, unchanged };
}

export function main(argv: string[]): number {
  const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  let specDir = join(repoRoot, 'spec');
  let outRoot = repoRoot;
  let validateOnly = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--spec') specDir = argv[++i] ?? specDir;
    else if (arg === '--out') outRoot = argv[++i] ?? outRoot;
    else if (arg === '--validate-only') validateOnly = true;
    else if (arg === '--help' || arg === '-h') {
      console.log('usage: generate [--spec DIR] [--out DIR] [--validate-only]');
      return 0;
    } else {
      console.error(`generate: unknown argument ${arg}`);
      return 2;
    }
  }
  try {
    const spec = validateSpec(loadSpecFolder(specDir));
    if (validateOnly) {
      console.log(`spec is valid: ${spec.models.length} machines, ${spec.settings.value.settings.length} settings`);
      return 0;
    }
    const files = generate(spec);
    const { written, removed, unchanged } = writeOutputs(files, outRoot);
    for (const path of written) console.log(`wrote ${path}`);
    for (const path of removed) console.log(`removed stale ${path}`);
    console.log(`generate: ${files.length} files (${written.length} written, ${unchanged} unchanged, ${removed.length} removed)`);
    return 0;
  } catch (error) {
    if (error instanceof SpecError) {
      console.error(error.message);
      return 1;
    }
    throw error;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = main(process.argv.slice(2));
}
