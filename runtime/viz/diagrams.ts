/**
 * The machine diagrams that `make generate` writes to docs/diagrams/ (codegen/emit/diagrams.ts):
 * `<machine>.mmd` (Mermaid), `<machine>.dot` (Graphviz) and, where Graphviz is installed,
 * `<machine>.svg`. This module only reads them; when the SVG is missing it renders one from the DOT
 * with `dot -Tsvg`, and says so.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderSvg } from './dot.js';

export type DiagramFormat = 'mermaid' | 'dot' | 'svg';
export const DIAGRAM_FORMATS: readonly DiagramFormat[] = ['mermaid', 'dot', 'svg'];
const EXTENSION: Record<DiagramFormat, string> = { mermaid: 'mmd', dot: 'dot', svg: 'svg' };

/**
 * docs/diagrams of the wirestate checkout or package this module belongs to: the nearest
 * ancestor of this file holding one (dist/runtime/viz/ in a build, runtime/viz/ in the sources).
 */
export function defaultDiagramsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'docs', 'diagrams');
    if (existsSync(candidate) && statSync(candidate).isDirectory()) return candidate;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'docs', 'diagrams');
}

/** The machines that have a diagram (a `.mmd` or `.dot` file), sorted. */
export function listMachines(dir = defaultDiagramsDir()): string[] {
  if (!existsSync(dir)) return [];
  const names = new Set<string>();
  for (const file of readdirSync(dir)) {
    const match = file.match(/^(.+)\.(mmd|dot)$/);
    if (match) names.add(match[1]!);
  }
  return [...names].sort();
}

export interface Diagram {
  machine: string;
  format: DiagramFormat;
  text: string;
  /** The file it was read from; for an SVG rendered on the spot, the DOT it was rendered from. */
  source: string;
  /** Set when the SVG was rendered with `dot -Tsvg` because docs/diagrams had none. */
  note?: string;
}

export class DiagramError extends Error {
  override name = 'DiagramError';
}

/** Reads the diagram of a machine in a format; an SVG missing from docs/ is rendered from the DOT. */
export async function loadDiagram(machine: string, format: DiagramFormat, dir = defaultDiagramsDir()): Promise<Diagram> {
  const machines = listMachines(dir);
  if (!machines.includes(machine)) {
    throw new DiagramError(
      machines.length === 0
        ? `no diagrams in ${dir}: run \`make generate\``
        : `no machine "${machine}" in ${dir} (machines: ${machines.join(', ')})`,
    );
  }
  const file = join(dir, `${machine}.${EXTENSION[format]}`);
  if (existsSync(file)) return { machine, format, text: await readFile(file, 'utf8'), source: file };
  if (format !== 'svg') throw new DiagramError(`${file} is missing: run \`make generate\``);
  const dotFile = join(dir, `${machine}.dot`);
  if (!existsSync(dotFile)) throw new DiagramError(`neither ${file} nor ${dotFile} exists: run \`make generate\``);
  const svg = await renderSvg(await readFile(dotFile, 'utf8'));
  const shown = relative(process.cwd(), dotFile) || dotFile;
  return {
    machine,
    format,
    text: svg,
    source: dotFile,
    note: `${machine}.svg is not in ${relative(process.cwd(), dir) || dir} (\`make generate\` writes it where Graphviz is installed); rendered it now with \`dot -Tsvg ${shown}\``,
  };
}
