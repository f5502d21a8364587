/**
 * Reading and restyling the Graphviz DOT that codegen/emit/diagrams.ts writes to docs/diagrams/,
 * and running Graphviz on it.
 *
 * The reader understands the shape the generator emits (one statement per line: `"id" [attrs];`
 * nodes, `"a" -> "b" [attrs];` edges, `subgraph "cluster_x" {` … `}` clusters) — it is not a DOT
 * parser for arbitrary files. Restyling never rewrites a statement: it appends attributes at the end
 * of a node's or an edge's list (in DOT the last value of an attribute wins), and adds lines after a
 * cluster's opening brace, so the highlighted diagram keeps the generator's layout and labels.
 */
import { spawn } from 'node:child_process';

export interface DotNode {
  id: string;
  /** The label as it appears in the file, DOT escapes included (`connecting\nCONNECTING`). */
  rawLabel: string;
  /** Enclosing clusters, outermost first (`cluster_open`, `cluster_open_reading`). */
  clusters: string[];
  line: number;
}

export interface DotEdge {
  /** Position among the file's edges, from 0. */
  index: number;
  tail: string;
  head: string;
  rawLabel: string;
  /** The edge is drawn from this cluster (DOT `ltail`): the transition leaves the whole compound state. */
  ltail?: string;
  /** The edge is drawn into this cluster (DOT `lhead`): the transition enters the compound state. */
  lhead?: string;
  line: number;
}

export interface DotCluster {
  id: string;
  rawLabel: string;
  parent: string | null;
  line: number;
}

export interface DotGraph {
  name: string;
  lines: string[];
  nodes: Map<string, DotNode>;
  edges: DotEdge[];
  clusters: Map<string, DotCluster>;
}

const QUOTED = String.raw`"((?:[^"\\]|\\.)*)"`;
const NODE_LINE = new RegExp(String.raw`^\s*${QUOTED}\s*\[(.*)\];\s*$`);
const EDGE_LINE = new RegExp(String.raw`^\s*(?:${QUOTED}|([A-Za-z_][\w]*))\s*->\s*(?:${QUOTED}|([A-Za-z_][\w]*))\s*(?:\[(.*)\])?;\s*$`);
const SUBGRAPH_LINE = new RegExp(String.raw`^\s*subgraph\s+(?:${QUOTED}|([A-Za-z_][\w]*))\s*\{\s*$`);
const GRAPH_LINE = /^\s*(?:strict\s+)?digraph\s+(?:"((?:[^"\\]|\\.)*)"|([A-Za-z_]\w*))\s*\{\s*$/;
const ATTRIBUTE = new RegExp(String.raw`([A-Za-z_]\w*)\s*=\s*(?:${QUOTED}|([^,\s\]]+))`, 'g');
const CLUSTER_LABEL = new RegExp(String.raw`^\s*label\s*=\s*${QUOTED}\s*;\s*$`);

/** Attributes of a `[a=b, c="d"]` list, values unquoted but still DOT-escaped. */
export function parseAttributes(list: string): Record<string, string> {
  const attributes: Record<string, string> = {};
  for (const match of list.matchAll(ATTRIBUTE)) attributes[match[1]!] = match[2] ?? match[3] ?? '';
  return attributes;
}

export function parseDot(text: string): DotGraph {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  const graph: DotGraph = { name: '', lines, nodes: new Map(), edges: [], clusters: new Map() };
  const stack: string[] = [];
  let depth = 0;
  lines.forEach((line, i) => {
    let match: RegExpMatchArray | null;
    if ((match = line.match(GRAPH_LINE))) {
      graph.name = match[1] ?? match[2] ?? '';
      depth = 1;
    } else if ((match = line.match(SUBGRAPH_LINE))) {
      const id = match[1] ?? match[2]!;
      graph.clusters.set(id, { id, rawLabel: '', parent: stack.at(-1) ?? null, line: i });
      stack.push(id);
      depth++;
    } else if (/^\s*\}\s*$/.test(line)) {
      if (depth > 1) stack.pop();
      depth--;
    } else if ((match = line.match(EDGE_LINE))) {
      const attributes = parseAttributes(match[5] ?? '');
      graph.edges.push({
        index: graph.edges.length,
        tail: match[1] ?? match[2]!,
        head: match[3] ?? match[4]!,
        rawLabel: attributes.label ?? '',
        ...(attributes.ltail ? { ltail: attributes.ltail } : {}),
        ...(attributes.lhead ? { lhead: attributes.lhead } : {}),
        line: i,
      });
    } else if ((match = line.match(NODE_LINE))) {
      const attributes = parseAttributes(match[2]!);
      graph.nodes.set(match[1]!, { id: match[1]!, rawLabel: attributes.label ?? match[1]!, clusters: [...stack], line: i });
    } else if ((match = line.match(CLUSTER_LABEL)) && stack.length > 0) {
      const cluster = graph.clusters.get(stack.at(-1)!)!;
      if (cluster.rawLabel === '') cluster.rawLabel = match[1]!;
    }
  });
  if (!graph.name) throw new Error('not a digraph: no "digraph NAME {" line');
  return graph;
}

/** The text a DOT-escaped label shows (`\n`, `\l`, `\r` become newlines). */
export function unescapeDot(raw: string): string {
  return raw.replace(/\\(.)/g, (_, c: string) => (c === 'n' || c === 'l' || c === 'r' ? '\n' : c));
}

export function quoteDot(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

function escapeHtmlLabel(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** The event an edge's label names: `HANDSHAKE_SUCCEEDED`, `after closeTimeout`, `always`. */
export function edgeTrigger(edge: DotEdge): string {
  const label = unescapeDot(edge.rawLabel);
  const cut = label.search(/ \[| \//);
  return (cut < 0 ? label : label.slice(0, cut)).trim();
}

// ------------------------------------------------------------------ restyling

export interface Palette {
  visitedFill: string;
  finalFill: string;
  accent: string;
  muted: string;
  mutedText: string;
}

export const PALETTE: Palette = {
  visitedFill: '#fff4c2',
  finalFill: '#ffd9cc',
  accent: '#c0392b',
  muted: '#b8bcc2',
  mutedText: '#8a9099',
};

export interface Highlight {
  /** Step numbers at which each node was entered, in order. */
  nodes: Map<string, number[]>;
  /** Step numbers at which each edge (by index) was taken. */
  edges: Map<number, number[]>;
  /** The node the trace ended in, drawn in a stronger colour. */
  final?: string | undefined;
  /** Prefix for SVG element ids (`c1-` gives `c1-state-open_reading_flowing`, `c1-edge-3`). */
  idPrefix?: string;
  /** Most step numbers shown on one node or edge; the rest are counted (`+12`). */
  maxBadges?: number;
  /** Keep the labels of transitions not taken (default: only their tooltip). */
  labelAll?: boolean;
}

/** Step-number badges and the label's text, as a Graphviz HTML-like label. */
function badgedLabel(numbers: number[], raw: string, max: number, color: string, fontColor?: string): string {
  const shown = numbers.slice(0, max);
  const badges = shown.map((n) => `<td bgcolor="${color}" cellpadding="2"><font color="#ffffff" point-size="10"><b>${n}</b></font></td>`);
  if (numbers.length > shown.length) badges.push(`<td><font color="${color}"><b>+${numbers.length - shown.length}</b></font></td>`);
  const text = unescapeDot(raw).split('\n').map(escapeHtmlLabel).join('<br/>');
  const body = fontColor ? `<font color="${fontColor}">${text}</font>` : text;
  return `<<table border="0" cellborder="0" cellspacing="2" cellpadding="1"><tr>${badges.join('')}<td>${body}</td></tr></table>>`;
}

function appendAttributes(line: string, attributes: string): string {
  const close = line.lastIndexOf(']');
  if (close >= 0) return `${line.slice(0, close)}, ${attributes}${line.slice(close)}`;
  const semicolon = line.lastIndexOf(';');
  return `${line.slice(0, semicolon)} [${attributes}]${line.slice(semicolon)}`;
}

/**
 * The diagram with a trace drawn on it: entered states filled and badged with the numbers of the
 * steps that entered them, taken transitions drawn thick in the accent colour with their step
 * numbers, everything else greyed, and SVG ids on every state and transition.
 */
export function highlightDot(graph: DotGraph, highlight: Highlight, palette: Palette = PALETTE): string {
  const prefix = highlight.idPrefix ?? '';
  const max = highlight.maxBadges ?? 4;
  const lines = [...graph.lines];
  const visitedClusters = new Set<string>();
  for (const id of highlight.nodes.keys()) for (const cluster of graph.nodes.get(id)?.clusters ?? []) visitedClusters.add(cluster);

  for (const node of graph.nodes.values()) {
    const numbers = highlight.nodes.get(node.id);
    const id = `id=${quoteDot(`${prefix}state-${node.id}`)}`;
    if (numbers && numbers.length > 0) {
      const fill = node.id === highlight.final ? palette.finalFill : palette.visitedFill;
      lines[node.line] = appendAttributes(
        lines[node.line]!,
        `${id}, label=${badgedLabel(numbers, node.rawLabel, max, palette.accent)}, style="rounded,filled,bold", fillcolor="${fill}", color="${palette.accent}", penwidth=1.6, tooltip=${quoteDot(`${node.id}: steps ${numbers.join(', ')}`)}`,
      );
    } else {
      lines[node.line] = appendAttributes(lines[node.line]!, `${id}, color="${palette.muted}", fontcolor="${palette.mutedText}", tooltip=${quoteDot(`${node.id}: not visited`)}`);
    }
  }
  for (const edge of graph.edges) {
    const numbers = highlight.edges.get(edge.index);
    const id = `id=${quoteDot(`${prefix}edge-${edge.index}`)}`;
    if (numbers && numbers.length > 0) {
      const label = edge.rawLabel ? `label=${badgedLabel(numbers, edge.rawLabel, max, palette.accent, palette.accent)}, ` : '';
      lines[edge.line] = appendAttributes(lines[edge.line]!, `${id}, ${label}color="${palette.accent}", fontcolor="${palette.accent}", penwidth=2.4`);
    } else if (edge.tail !== '__start') {
      // Transitions not taken keep their line but lose their label (it stays as the tooltip), so
      // the taken path is what the eye finds and the layout stays compact.
      const label = highlight.labelAll || !edge.rawLabel ? '' : `label="", tooltip=${quoteDot(unescapeDot(edge.rawLabel))}, `;
      lines[edge.line] = appendAttributes(lines[edge.line]!, `${id}, ${label}color="${palette.muted}", fontcolor="${palette.mutedText}"`);
    }
  }
  // Clusters a step entered get the accent border; the insertions go bottom-up so line numbers hold.
  const clusters = [...graph.clusters.values()].sort((a, b) => b.line - a.line);
  for (const cluster of clusters) {
    const indent = (lines[cluster.line]!.match(/^\s*/)?.[0] ?? '') + '  ';
    const style = visitedClusters.has(cluster.id)
      ? `${indent}color="${palette.accent}"; penwidth=1.4; fontname="Helvetica"; id=${quoteDot(`${prefix}${cluster.id}`)};`
      : `${indent}color="${palette.muted}"; fontcolor="${palette.mutedText}"; fontname="Helvetica"; id=${quoteDot(`${prefix}${cluster.id}`)};`;
    lines.splice(cluster.line + 1, 0, style);
  }
  return lines.join('\n');
}

// ------------------------------------------------------------------ Graphviz

export class GraphvizMissingError extends Error {
  constructor() {
    super('Graphviz is not installed: `dot` was not found on PATH (install it with `apt-get install graphviz`, or run `make system-deps`)');
    this.name = 'GraphvizMissingError';
  }
}

/** Runs `dot -Tsvg` on DOT text and resolves with the SVG. */
export function renderSvg(dot: string, command = 'dot'): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, ['-Tsvg'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', (error: NodeJS.ErrnoException) => reject(error.code === 'ENOENT' ? new GraphvizMissingError() : error));
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out).toString('utf8'));
      else reject(new Error(`dot -Tsvg failed (exit ${code}): ${Buffer.concat(err).toString('utf8').trim()}`));
    });
    child.stdin.on('error', () => {
      // reported through 'error' / 'close'
    });
    child.stdin.end(dot);
  });
}
