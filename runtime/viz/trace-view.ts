/**
 * A recorded connection drawn over the connection machine's diagram: which states it entered, in
 * which order, by which transitions, when, and how it closed.
 *
 * The trace (JSON lines, runtime/inspect/trace.ts) names lifecycle states and machine events; the
 * diagram (docs/diagrams/connection.dot) names states by their path (`open_reading_flowing`) and
 * transitions by their event. A step is placed on the diagram by its states — the leaves of the
 * machine's state value before and after — and the transition whose event, source and target fit;
 * eventless (`always`) transitions taken on the way are found the same way. Nothing here knows the
 * connection machine's particular states: a spec change shows up in the drawing, not as code to edit.
 */
import { edgeTrigger, type DotEdge, type DotGraph, type Highlight } from './dot.js';
import { CLOSE_EVENT, type ConnectionStats, type StateValueJson, type TraceLine } from '../inspect/trace.js';
import { describeCloseCode } from '../../generated/protocol.generated.js';

export interface ViewStep {
  /** 1 is where the trace starts; every later step is one trace line. */
  n: number;
  /** ms since the epoch; null when the trace does not say (a start without `createdAt`). */
  at: number | null;
  /** The machine event as recorded; null for the start. */
  event: string | null;
  /** The event as the diagram names it: `HANDSHAKE_SUCCEEDED`, `after closeTimeout`, `start`. */
  trigger: string;
  from: string;
  to: string;
  state: StateValueJson | null;
  /** Diagram states entered at this step (eventless transitions' transient sources included). */
  entered: string[];
  /** Diagram transitions (edge indices) taken at this step. */
  edges: number[];
  /** The parallel regions' states after the step, when the lifecycle name does not say them. */
  regions: string[];
  /** Which of `regions` this step changed (or entered). */
  changedRegions: string[];
}

export interface CloseInfo {
  code: number | null;
  reason: string;
  at: number;
  stats?: ConnectionStats;
}

export interface ConnectionView {
  connection: number;
  remoteAddress?: string;
  protocol?: string;
  createdAt?: number;
  /** Time 0 of the relative timestamps: the connection's creation, else its first step. */
  start: number;
  steps: ViewStep[];
  close: CloseInfo | null;
  /** The lifecycle state the trace ends in. */
  finalState: string;
  /** The diagram node the trace ends in (null when it ends in a compound state). */
  finalNode: string | null;
  /** Steps the diagram cannot place (a trace from another version of the spec, a foreign event…). */
  warnings: string[];
}

/** Splits a trace into its connections, in the order they first appear. */
export function groupByConnection(lines: TraceLine[]): Map<number, TraceLine[]> {
  const groups = new Map<number, TraceLine[]>();
  for (const line of lines) {
    let group = groups.get(line.connection);
    if (!group) groups.set(line.connection, (group = []));
    group.push(line);
  }
  return groups;
}

/** `xstate.after.closeTimeout.connection.closing` → `after closeTimeout`; other events unchanged. */
export function triggerOf(event: string): string {
  const match = event.match(/^xstate\.after\.([^.]+)\./);
  return match ? `after ${match[1]}` : event;
}

/** Leaf paths of a state value: `{open: {reading: 'flowing'}}` → [['open', 'reading', 'flowing']]. */
function leafPaths(value: StateValueJson, prefix: string[] = []): string[][] {
  if (typeof value === 'string') return [[...prefix, value]];
  const paths: string[][] = [];
  for (const [key, child] of Object.entries(value)) paths.push(...leafPaths(child, [...prefix, key]));
  if (paths.length === 0 && prefix.length > 0) paths.push(prefix);
  return paths;
}

interface Configuration {
  leaves: Set<string>;
  clusters: Set<string>;
}

class Placer {
  readonly warnings: string[] = [];
  constructor(private readonly graph: DotGraph) {}

  /** The diagram configuration of a state value, or of a lifecycle name when that is all there is. */
  configuration(value: StateValueJson | null, name: string, n: number): Configuration {
    const leaves = new Set<string>();
    const clusters = new Set<string>();
    const paths = value === null ? [name.split('.')] : leafPaths(value);
    for (const path of paths) {
      const id = path.join('_');
      const node = this.graph.nodes.get(id);
      if (node) {
        leaves.add(id);
        for (const cluster of node.clusters) clusters.add(cluster);
      } else if (this.graph.clusters.has(`cluster_${id}`)) {
        // A compound state whose children the trace does not give (a trace that starts in `open`).
        let cluster: string | null = `cluster_${id}`;
        while (cluster) {
          clusters.add(cluster);
          cluster = this.graph.clusters.get(cluster)?.parent ?? null;
        }
      } else {
        this.warnings.push(`step ${n}: state "${path.join('.')}" is not in the diagram`);
      }
    }
    return { leaves, clusters };
  }

  private regionOf(id: string): string | null {
    return this.graph.nodes.get(id)?.clusters.at(-1) ?? null;
  }

  private leaves(edge: DotEdge, before: Configuration): boolean {
    return edge.ltail ? before.clusters.has(edge.ltail) : before.leaves.has(edge.tail);
  }

  private enters(edge: DotEdge, after: Configuration): boolean {
    return edge.lhead ? after.clusters.has(edge.lhead) : after.leaves.has(edge.head);
  }

  /** The transitions a step took, and the states eventless transitions passed through. */
  place(trigger: string, before: Configuration, after: Configuration): { edges: DotEdge[]; transient: string[] } {
    const byEvent = this.graph.edges.filter((edge) => {
      const on = edgeTrigger(edge);
      const fits = on === trigger || (trigger.startsWith('after ') && on.startsWith(`${trigger} `));
      return fits && this.leaves(edge, before) && this.enters(edge, after);
    });
    const always: DotEdge[] = [];
    const transient: string[] = [];
    for (const edge of this.graph.edges) {
      if (edgeTrigger(edge) !== 'always' || !after.leaves.has(edge.head) || before.leaves.has(edge.head)) continue;
      const region = this.regionOf(edge.head);
      if (region !== this.regionOf(edge.tail)) continue;
      const regionEntered = region !== null && ![...before.leaves].some((leaf) => this.regionOf(leaf) === region);
      if (regionEntered ? !before.leaves.has(edge.tail) : before.leaves.has(edge.tail) && !byEvent.some((e) => e.head === edge.head)) {
        always.push(edge);
        if (regionEntered && !after.leaves.has(edge.tail)) transient.push(edge.tail);
      }
    }
    return { edges: [...byEvent, ...always], transient };
  }
}

/** Where a region's state is not in the lifecycle name: `reading: flowing`, `keepalive: waiting`. */
function regionsOf(value: StateValueJson, lifecycle: string): string[] {
  const named = lifecycle.split('.');
  const regions: string[] = [];
  for (const path of leafPaths(value)) {
    let i = 0;
    while (i < named.length && path[i] === named[i]) i++;
    const rest = path.slice(i);
    if (rest.length >= 2) regions.push(`${rest.slice(0, -1).join('.')}: ${rest.at(-1)}`);
  }
  return regions;
}

/** Places one connection's trace lines on the diagram. */
export function buildConnectionView(lines: TraceLine[], graph: DotGraph): ConnectionView {
  if (lines.length === 0) throw new Error('a connection with no trace lines');
  const placer = new Placer(graph);
  const first = lines[0]!;
  const steps: ViewStep[] = [];
  let close: CloseInfo | null = null;

  let before = placer.configuration(null, first.from, 1);
  steps.push({
    n: 1,
    at: first.createdAt ?? null,
    event: null,
    trigger: 'start',
    from: '',
    to: first.from,
    state: null,
    entered: [...before.leaves],
    edges: [],
    regions: [],
    changedRegions: [],
  });
  let previousRegions: string[] = [];
  let finalState = first.from;
  for (const line of lines) {
    if (line.event === CLOSE_EVENT) {
      close = { code: line.code ?? null, reason: line.reason ?? '', at: line.at, ...(line.stats ? { stats: line.stats } : {}) };
      finalState = line.to;
      continue;
    }
    const n = steps.length + 1;
    const trigger = triggerOf(line.event);
    const after = placer.configuration(line.state, line.to, n);
    const { edges, transient } = placer.place(trigger, before, after);
    if (edges.length === 0) {
      placer.warnings.push(`step ${n}: no transition on ${trigger} from ${line.from} to ${line.to} in the diagram`);
    }
    const entered = [...transient, ...[...after.leaves].filter((leaf) => !before.leaves.has(leaf))];
    const regions = regionsOf(line.state, line.to);
    const changedRegions = regions.filter((region) => !previousRegions.includes(region));
    previousRegions = regions;
    steps.push({
      n,
      at: line.at,
      event: line.event,
      trigger,
      from: line.from,
      to: line.to,
      state: line.state,
      entered,
      edges: edges.map((edge) => edge.index),
      regions,
      changedRegions,
    });
    before = after;
    finalState = line.to;
  }
  const finalLeaves = [...before.leaves];
  return {
    connection: first.connection,
    ...(first.remoteAddress !== undefined ? { remoteAddress: first.remoteAddress } : {}),
    ...(first.protocol !== undefined ? { protocol: first.protocol } : {}),
    ...(first.createdAt !== undefined ? { createdAt: first.createdAt } : {}),
    start: first.createdAt ?? first.at,
    steps,
    close,
    finalState,
    finalNode: finalLeaves.length === 1 ? finalLeaves[0]! : null,
    warnings: placer.warnings,
  };
}

/** The view's marks for highlightDot. */
export function highlightOf(view: ConnectionView, idPrefix = `c${view.connection}-`): Highlight {
  const nodes = new Map<string, number[]>();
  const edges = new Map<number, number[]>();
  for (const step of view.steps) {
    for (const id of step.entered) nodes.set(id, [...(nodes.get(id) ?? []), step.n]);
    for (const index of step.edges) edges.set(index, [...(edges.get(index) ?? []), step.n]);
  }
  return { nodes, edges, final: view.finalNode ?? undefined, idPrefix };
}

// ------------------------------------------------------------------ words for people

/** `+0 ms`, `+850 ms`, `+1.204 s`, `+2 min 03.5 s`. */
export function formatOffset(ms: number): string {
  const sign = ms < 0 ? '-' : '+';
  const abs = Math.abs(ms);
  if (abs < 1000) return `${sign}${Math.round(abs)} ms`;
  if (abs < 60_000) return `${sign}${(abs / 1000).toFixed(3)} s`;
  const minutes = Math.floor(abs / 60_000);
  const seconds = ((abs % 60_000) / 1000).toFixed(1).padStart(4, '0');
  return `${sign}${minutes} min ${seconds} s`;
}

/** `4001 (private)`, `1000 (normalClosure)`, `1006 (abnormalClosure)`. */
export function describeCode(code: number | null): string {
  if (code === null) return 'no code';
  const info = describeCloseCode(code);
  return info ? `${code} (${info.name})` : String(code);
}

/** One line saying how the connection ended. */
export function outcome(view: ConnectionView): string {
  if (!view.close) return `ended in ${view.finalState} (no close recorded)`;
  const reason = view.close.reason ? ` "${view.close.reason}"` : '';
  return `${view.finalState}, code ${describeCode(view.close.code)}${reason}`;
}

export function stepTime(view: ConnectionView, step: ViewStep): string {
  return step.at === null ? '' : formatOffset(step.at - view.start);
}

/** How long the trace covers, start to close. */
export function duration(view: ConnectionView): number {
  const last = view.close?.at ?? view.steps.at(-1)?.at ?? view.start;
  return last - view.start;
}

/** The sequence as plain text, one step a line, for a terminal. */
export function renderTraceText(view: ConnectionView): string {
  const rows = view.steps.map((step) => [
    String(step.n),
    stepTime(view, step),
    step.event === null ? '(start)' : step.trigger,
    `→ ${step.to}${step.regions.length ? `  (${step.regions.join(', ')})` : ''}`,
  ]);
  if (view.close) rows.push(['', formatOffset(view.close.at - view.start), 'close', `code ${describeCode(view.close.code)}${view.close.reason ? ` "${view.close.reason}"` : ''}`]);
  const widths = [0, 1, 2].map((c) => Math.max(...rows.map((row) => row[c]!.length)));
  const header = [
    `connection ${view.connection}${view.remoteAddress ? ` from ${view.remoteAddress}` : ''}${view.protocol ? `, subprotocol ${view.protocol}` : ''}: ${outcome(view)}`,
  ];
  const body = rows.map((row) => `  ${row[0]!.padStart(widths[0]!)}  ${row[1]!.padStart(widths[1]!)}  ${row[2]!.padEnd(widths[2]!)}  ${row[3]}`.trimEnd());
  const warnings = view.warnings.map((w) => `  warning: ${w}`);
  return [...header, ...body, ...warnings].join('\n');
}
