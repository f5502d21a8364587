/**
 * Drawing trace views (trace-view.ts) for people: one SVG per connection (the highlighted machine
 * diagram above the numbered sequence of steps), or one self-contained HTML page with every
 * connection of a trace, where pointing at a step highlights its states and transitions.
 */
import { basename } from 'node:path';
import { highlightDot, PALETTE, renderSvg, type DotGraph } from './dot.js';
import {
  buildConnectionView,
  describeCode,
  duration,
  formatOffset,
  groupByConnection,
  highlightOf,
  outcome,
  stepTime,
  type ConnectionView,
  type ViewStep,
} from './trace-view.js';
import type { TraceLine } from '../inspect/trace.js';

export interface RenderedConnection {
  view: ConnectionView;
  /** The diagram with the trace on it, as Graphviz rendered it. */
  diagramSvg: string;
}

/** Builds the view of each selected connection and renders its highlighted diagram. */
export async function renderConnections(lines: TraceLine[], graph: DotGraph, connections?: number[]): Promise<RenderedConnection[]> {
  const groups = groupByConnection(lines);
  const ids = connections ?? [...groups.keys()];
  const rendered: RenderedConnection[] = [];
  for (const id of ids) {
    const group = groups.get(id);
    if (!group) throw new Error(`connection ${id} is not in the trace (it has ${[...groups.keys()].join(', ') || 'none'})`);
    const view = buildConnectionView(group, graph);
    const svg = await renderSvg(highlightDot(graph, highlightOf(view)));
    // Graphviz writes every '-' as '&#45;' (for the sake of its comments, which are dropped here).
    rendered.push({ view, diagramSvg: svg.replace(/<!--[\s\S]*?-->\n?/g, '').replace(/&#45;/g, '-') });
  }
  return rendered;
}

export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

interface SvgParts {
  width: number;
  height: number;
  viewBox: string;
  inner: string;
}

/** The root element's size and contents of an SVG document (prolog, doctype and comments dropped). */
export function svgParts(svg: string): SvgParts {
  const open = svg.match(/<svg\b([^>]*)>/);
  const end = svg.lastIndexOf('</svg>');
  if (!open || open.index === undefined || end < 0) throw new Error('not an SVG document');
  const attrs = open[1]!;
  const viewBox = attrs.match(/viewBox="([^"]+)"/)?.[1];
  const numbers = viewBox?.split(/[\s,]+/).map(Number);
  const size = (name: string) => Number.parseFloat(attrs.match(new RegExp(`\\b${name}="([\\d.]+)`))?.[1] ?? '0');
  const width = numbers?.[2] ?? size('width');
  const height = numbers?.[3] ?? size('height');
  return { width, height, viewBox: viewBox ?? `0 0 ${width} ${height}`, inner: svg.slice(open.index + open[0].length, end) };
}

/** The Graphviz SVG cleaned for inlining in HTML: no prolog, doctype or comments. */
function inlineSvg(svg: string, cls: string): string {
  const start = svg.indexOf('<svg');
  return svg
    .slice(start)
    .replace(/<!--[\s\S]*?-->\n?/g, '')
    .replace(/^<svg\b/, `<svg class="${cls}"`)
    .trim();
}

function stepEventLabel(step: ViewStep): string {
  return step.event === null ? 'start' : step.trigger;
}

function stepStateLabel(step: ViewStep): string {
  return step.to;
}

function metaLine(view: ConnectionView, file?: string): string {
  const parts: string[] = [];
  if (file) parts.push(basename(file));
  if (view.remoteAddress) parts.push(`peer ${view.remoteAddress}`);
  if (view.protocol !== undefined) parts.push(view.protocol ? `subprotocol ${view.protocol}` : 'no subprotocol');
  parts.push(`${view.steps.length - 1} step${view.steps.length === 2 ? '' : 's'} in ${formatOffset(duration(view)).slice(1)}`);
  if (view.close?.stats) {
    const s = view.close.stats;
    parts.push(`${s.messagesIn} message${s.messagesIn === 1 ? '' : 's'} in, ${s.messagesOut} out`);
  }
  if (view.createdAt !== undefined) parts.push(`created ${new Date(view.createdAt).toISOString()}`);
  return parts.join(' · ');
}

// ------------------------------------------------------------------ SVG

const MONO = 'ui-monospace, SFMono-Regular, Menlo, Consolas, &quot;DejaVu Sans Mono&quot;, monospace';
const SANS = 'Helvetica, Arial, &quot;DejaVu Sans&quot;, sans-serif';
/** Advance of one character of the 12px monospace font, with a little slack. */
const CHAR = 7.4;

/**
 * One connection as a standalone SVG: a title saying how it ended, the machine diagram with the
 * visited states numbered, and the numbered sequence of `event → state` steps with relative times,
 * ending with the close code.
 */
export function renderTraceSvg(rendered: RenderedConnection, file?: string): string {
  const { view } = rendered;
  const diagram = svgParts(rendered.diagramSvg);
  const margin = 24;
  const rowHeight = 22;
  const rows = view.steps.map((step) => ({
    n: String(step.n),
    time: stepTime(view, step),
    event: stepEventLabel(step),
    state: stepStateLabel(step),
    detail: step.regions.join(' · '),
    detailSvg: step.regions
      .map((r) => (step.changedRegions.includes(r) ? `<tspan font-weight="bold" fill="#1f2328">${escapeXml(r)}</tspan>` : escapeXml(r)))
      .join(' · '),
  }));
  const closeRow = view.close
    ? { n: '', time: formatOffset(view.close.at - view.start), event: 'close', state: `code ${describeCode(view.close.code)}`, detail: view.close.reason ? `"${view.close.reason}"` : '', detailSvg: view.close.reason ? escapeXml(`"${view.close.reason}"`) : '' }
    : null;
  const all = closeRow ? [...rows, closeRow] : rows;
  const timeWidth = Math.max(...all.map((r) => r.time.length), 4) * CHAR + 16;
  const eventWidth = Math.max(...all.map((r) => r.event.length), 5) * CHAR + 16;
  const stateWidth = Math.max(...all.map((r) => r.state.length + 2), 5) * CHAR + 16;
  const detailWidth = Math.max(...all.map((r) => r.detail.length), 0) * CHAR;
  const x0 = margin + 30;
  const timelineWidth = 30 + timeWidth + eventWidth + stateWidth + detailWidth;

  const title = `Connection ${view.connection}: ${outcome(view)}`;
  const width = Math.ceil(Math.max(diagram.width, timelineWidth, title.length * 10) + 2 * margin);
  const diagramTop = 76;
  const timelineTop = diagramTop + diagram.height + 36;
  const warningsTop = timelineTop + 30 + all.length * rowHeight + 10;
  const height = Math.ceil(warningsTop + view.warnings.length * 18 + margin);

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${margin}" y="34" font-family="${SANS}" font-size="19" font-weight="bold" fill="#1f2328">${escapeXml(title)}</text>`,
    `<text x="${margin}" y="56" font-family="${SANS}" font-size="12" fill="#59636e">${escapeXml(metaLine(view, file))}</text>`,
    `<svg x="${margin}" y="${diagramTop}" width="${diagram.width}" height="${diagram.height}" viewBox="${diagram.viewBox}">`,
    diagram.inner.replace(/<!--[\s\S]*?-->\n?/g, '').trim(),
    `</svg>`,
    `<g class="timeline" font-family="${MONO}" font-size="12" fill="#1f2328">`,
    `<text x="${margin}" y="${timelineTop}" font-family="${SANS}" font-size="14" font-weight="bold">Sequence</text>`,
  );
  const head = timelineTop + 22;
  const cols = { time: x0 + timeWidth - 16, event: x0 + timeWidth, state: x0 + timeWidth + eventWidth, detail: x0 + timeWidth + eventWidth + stateWidth };
  out.push(
    `<text x="${cols.time}" y="${head}" text-anchor="end" fill="#59636e">time</text>`,
    `<text x="${cols.event}" y="${head}" fill="#59636e">event</text>`,
    `<text x="${cols.state}" y="${head}" fill="#59636e">→ state</text>`,
  );
  all.forEach((row, i) => {
    const y = head + (i + 1) * rowHeight;
    const isClose = row === closeRow;
    const stepIds = isClose ? '' : ` data-step="${i + 1}"`;
    out.push(`<g${stepIds}>`);
    if (!isClose) {
      out.push(
        `<circle cx="${margin + 10}" cy="${y - 4}" r="9" fill="${PALETTE.accent}"/>`,
        `<text x="${margin + 10}" y="${y}" text-anchor="middle" font-family="${SANS}" font-size="11" font-weight="bold" fill="#ffffff">${escapeXml(row.n)}</text>`,
      );
    } else {
      out.push(`<rect x="${margin + 1}" y="${y - 13}" width="18" height="18" rx="3" fill="#1f2328"/>`);
    }
    out.push(
      `<text x="${cols.time}" y="${y}" text-anchor="end" fill="#59636e">${escapeXml(row.time)}</text>`,
      `<text x="${cols.event}" y="${y}"${isClose ? ' font-weight="bold"' : ''}>${escapeXml(row.event)}</text>`,
      `<text x="${cols.state}" y="${y}" font-weight="bold"${isClose ? ` fill="${PALETTE.accent}"` : ''}>${escapeXml(isClose ? row.state : `→ ${row.state}`)}</text>`,
      row.detail ? `<text x="${cols.detail}" y="${y}" fill="#59636e">${row.detailSvg}</text>` : '',
      `</g>`,
    );
  });
  out.push(`</g>`);
  view.warnings.forEach((warning, i) => {
    out.push(`<text x="${margin}" y="${warningsTop + i * 18}" font-family="${SANS}" font-size="12" fill="#9a6700">warning: ${escapeXml(warning)}</text>`);
  });
  out.push(`</svg>`);
  return out.filter((line) => line !== '').join('\n') + '\n';
}

// ------------------------------------------------------------------ HTML

const STYLE = `
:root { color-scheme: light; --accent: ${PALETTE.accent}; --muted: #59636e; --line: #d8dee4; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1f2328; background: #f6f8fa; }
header.page { padding: 16px 24px 8px; }
header.page h1 { margin: 0; font-size: 20px; }
header.page p { margin: 4px 0 0; color: var(--muted); }
nav { padding: 0 24px 8px; }
nav a { margin-right: 12px; color: var(--accent); }
section.connection { margin: 12px 24px 24px; padding: 16px 20px; background: #fff; border: 1px solid var(--line); border-radius: 8px; }
section.connection h2 { margin: 0; font-size: 18px; }
section.connection h2 .outcome { font-weight: normal; }
p.meta { margin: 4px 0 12px; color: var(--muted); }
.layout { display: block; }
.diagram { overflow: auto; border: 1px solid var(--line); border-radius: 6px; padding: 8px; background: #fff; }
.diagram svg { display: block; width: 100%; min-width: 960px; height: auto; }
.sequence { margin-top: 16px; }
.sequence h3 { margin: 0 0 6px; font-size: 14px; }
table.timeline { border-collapse: collapse; font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace; }
table.timeline th { text-align: left; font-weight: normal; color: var(--muted); padding: 2px 8px; border-bottom: 1px solid var(--line); }
table.timeline td { padding: 3px 8px; vertical-align: top; border-bottom: 1px solid #eef1f4; }
table.timeline td.time { text-align: right; color: var(--muted); white-space: nowrap; }
table.timeline td.state { font-weight: bold; white-space: nowrap; }
table.timeline td.regions { color: var(--muted); white-space: nowrap; }
table.timeline td.regions b { color: #1f2328; }
table.timeline tr.step { cursor: default; }
table.timeline tr.step:hover, table.timeline tr.step.focus { background: #fff4c2; }
table.timeline tr.close td { border-top: 2px solid #1f2328; font-weight: bold; }
table.timeline tr.close td.code { color: var(--accent); }
.badge { display: inline-block; min-width: 20px; padding: 0 5px; border-radius: 10px; background: var(--accent); color: #fff; font: bold 11px/18px Helvetica, Arial, sans-serif; text-align: center; }
.badge.end { background: #1f2328; border-radius: 3px; }
.legend { margin: 10px 0 0; color: var(--muted); font-size: 12px; }
.legend span.swatch { display: inline-block; width: 12px; height: 12px; vertical-align: -2px; border: 1.5px solid var(--accent); border-radius: 3px; margin: 0 4px 0 10px; }
ul.warnings { color: #9a6700; }
svg .focus polygon, svg .focus path, svg .focus ellipse { stroke: #0969da !important; stroke-width: 4px !important; }
svg .focus text { fill: #0969da; }
`;

const SCRIPT = `
for (const row of document.querySelectorAll('tr.step')) {
  const ids = (row.dataset.targets || '').split(' ').filter(Boolean);
  const set = (on) => { row.classList.toggle('focus', on); for (const id of ids) document.getElementById(id)?.classList.toggle('focus', on); };
  row.addEventListener('mouseenter', () => set(true));
  row.addEventListener('mouseleave', () => set(false));
}
`;

function timelineTable(view: ConnectionView): string {
  const prefix = `c${view.connection}-`;
  const rows = view.steps.map((step) => {
    const targets = [...step.entered.map((id) => `${prefix}state-${id}`), ...step.edges.map((i) => `${prefix}edge-${i}`)].join(' ');
    const title = step.event && step.event !== step.trigger ? ` title="${escapeXml(step.event)}"` : '';
    return (
      `<tr class="step" data-targets="${escapeXml(targets)}"><td><span class="badge">${step.n}</span></td>` +
      `<td class="time">${escapeXml(stepTime(view, step))}</td>` +
      `<td class="event"${title}>${escapeXml(stepEventLabel(step))}</td>` +
      `<td class="state">→ ${escapeXml(stepStateLabel(step))}</td>` +
      `<td class="regions">${step.regions.map((r) => (step.changedRegions.includes(r) ? `<b>${escapeXml(r)}</b>` : escapeXml(r))).join(' · ')}</td></tr>`
    );
  });
  if (view.close) {
    rows.push(
      `<tr class="close"><td><span class="badge end">■</span></td><td class="time">${escapeXml(formatOffset(view.close.at - view.start))}</td>` +
        `<td class="event">close</td><td class="code">code ${escapeXml(describeCode(view.close.code))}</td>` +
        `<td class="regions">${view.close.reason ? escapeXml(`"${view.close.reason}"`) : ''}</td></tr>`,
    );
  }
  return (
    `<table class="timeline"><thead><tr><th>#</th><th>time</th><th>event</th><th>→ state</th><th>regions</th></tr></thead>` +
    `<tbody>\n${rows.join('\n')}\n</tbody></table>`
  );
}

/**
 * A self-contained page (no external resources) with every rendered connection: the diagram with
 * the trace on it beside its sequence of steps.
 */
export function renderTraceHtml(rendered: RenderedConnection[], file?: string, omitted = 0): string {
  const name = file ? basename(file) : 'trace';
  const sections = rendered.map(({ view, diagramSvg }) => {
    const warnings = view.warnings.length
      ? `<ul class="warnings">${view.warnings.map((w) => `<li>${escapeXml(w)}</li>`).join('')}</ul>`
      : '';
    return `<section class="connection" id="c${view.connection}">
<h2>Connection ${view.connection} <span class="outcome">— ${escapeXml(outcome(view))}</span></h2>
<p class="meta">${escapeXml(metaLine(view))}</p>
<div class="layout">
<div class="diagram">
${inlineSvg(diagramSvg, 'machine')}
</div>
<div class="sequence">
<h3>Sequence</h3>
${timelineTable(view)}
<p class="legend">Numbers are steps, in order: a state carries the steps that entered it, a transition the steps that took it.<span class="swatch" style="background:${PALETTE.visitedFill}"></span>visited<span class="swatch" style="background:${PALETTE.finalFill}"></span>where it ended</p>
</div>
</div>
${warnings}
</section>`;
  });
  const nav =
    rendered.length > 1
      ? `<nav>${rendered.map(({ view }) => `<a href="#c${view.connection}">connection ${view.connection}</a>`).join('')}</nav>`
      : '';
  const more = omitted > 0 ? `; ${omitted} more not shown (choose with --connection N)` : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeXml(name)} — wirestate lifecycle trace</title>
<style>${STYLE}</style>
</head>
<body>
<header class="page">
<h1>Lifecycle trace: ${escapeXml(name)}</h1>
<p>${rendered.length} connection${rendered.length === 1 ? '' : 's'} drawn over the connection machine (docs/diagrams/connection.dot)${escapeXml(more)}. Point at a step to find it in the diagram.</p>
</header>
${nav}
${sections.join('\n')}
<script>${SCRIPT}</script>
</body>
</html>
`;
}
