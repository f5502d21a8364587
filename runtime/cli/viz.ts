/**
 * `wirestate viz`: the lifecycle diagrams that `make generate` draws from the spec, and recorded
 * connections drawn over them.
 */
import { writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parseArgs } from 'node:util';
import { DIAGRAM_FORMATS, defaultDiagramsDir, listMachines, loadDiagram, type DiagramFormat } from '../viz/diagrams.js';
import { parseDot } from '../viz/dot.js';
import { renderConnections, renderTraceHtml, renderTraceSvg } from '../viz/render-trace.js';
import { buildConnectionView, groupByConnection, renderTraceText } from '../viz/trace-view.js';
import { parseTrace } from '../inspect/trace.js';

export const usage = `usage: wirestate viz [--machine NAME] [--format mermaid|dot|svg] [--out FILE]
       wirestate viz --trace FILE [--connection N] [--format html|svg|text] [--out FILE|-]
       wirestate viz --trace FILE --serve [--port N] [--host ADDR]

Diagrams of the machines in the spec, as \`make generate\` writes them to docs/diagrams/:
  --machine NAME    connection (the default) or server
  --format FORMAT   mermaid (the default), dot, or svg; with --out, the file's
                    extension (.mmd, .dot, .svg) chooses when --format is not given.
                    A missing SVG is rendered from the DOT with Graphviz \`dot -Tsvg\`.
  --out FILE        write to FILE instead of standard output

A recorded connection drawn over the connection diagram: the states it entered,
highlighted and numbered in visit order, and the sequence of event → state steps
with times relative to its start, ending with the close code.
  --trace FILE      lifecycle steps as JSON lines, one object a line:
                    {connection, event, from, to, state, at, code?, reason?}
                    (recordLifecycle(ws, stream) in runtime/viz/record.ts writes
                    them, and so does \`wirestate serve --record FILE\`)
  --connection N    only connection N of the trace (default: every connection
                    for html and text; the first for svg)
  --format FORMAT   html (a self-contained page), svg, or text; with --out the
                    extension chooses (.html, .svg, .txt); default html
  --out FILE|-      where to write it; - is standard output. Default: the trace's
                    name with .html (trace.jsonl → trace.html), with the sequence
                    also printed as text
  --serve           open the trace in the inspector page, in replay mode, on
                    http://127.0.0.1:PORT/ (prints the URL; Ctrl-C stops it)
  --port N          port for --serve (default 0: any free port)
  --host ADDR       address for --serve (default 127.0.0.1)

  --diagrams DIR    where the generated diagrams are (default: docs/diagrams)

Exit status: 0 done, 1 failed (missing file, bad trace, Graphviz missing), 2 bad usage.`;

class UsageError extends Error {}

const TRACE_FORMATS = ['html', 'svg', 'text'] as const;
type TraceFormat = (typeof TRACE_FORMATS)[number];

const BY_EXTENSION: Record<string, DiagramFormat | TraceFormat> = {
  '.mmd': 'mermaid',
  '.mermaid': 'mermaid',
  '.dot': 'dot',
  '.gv': 'dot',
  '.svg': 'svg',
  '.html': 'html',
  '.htm': 'html',
  '.txt': 'text',
};

function formatFromOut(out: string | undefined): string | undefined {
  if (!out || out === '-') return undefined;
  return BY_EXTENSION[extname(out).toLowerCase()];
}

async function emit(text: string, out: string | undefined): Promise<void> {
  if (out && out !== '-') await writeFile(out, text);
  else process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** trace.jsonl → trace.html; a name without a known extension gets `.html` appended. */
export function defaultHtmlPath(trace: string): string {
  const ext = extname(trace);
  return ['.jsonl', '.json', '.ndjson', '.log', '.trace', '.txt'].includes(ext.toLowerCase()) ? `${trace.slice(0, -ext.length)}.html` : `${trace}.html`;
}

function parsePort(value: string | undefined): number {
  if (value === undefined) return 0;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port must be 0..65535, not "${value}"`);
  return port;
}

export async function run(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      allowPositionals: false,
      options: {
        machine: { type: 'string' },
        format: { type: 'string' },
        out: { type: 'string', short: 'o' },
        trace: { type: 'string' },
        connection: { type: 'string' },
        serve: { type: 'boolean' },
        port: { type: 'string' },
        host: { type: 'string' },
        diagrams: { type: 'string' },
      },
    }));
  } catch (error) {
    console.error(`wirestate viz: ${(error as Error).message}\n\n${usage}`);
    return 2;
  }
  try {
    const dir = values.diagrams ?? defaultDiagramsDir();
    if (values.trace === undefined) {
      for (const option of ['connection', 'serve', 'port', 'host'] as const) {
        if (values[option] !== undefined) throw new UsageError(`--${option} goes with --trace FILE`);
      }
      return await diagram(dir, values.machine ?? 'connection', values.format, values.out);
    }
    if (values.machine !== undefined && values.machine !== 'connection') {
      throw new UsageError('a trace is drawn over the connection machine; --machine cannot be used with --trace');
    }
    if (values.serve) {
      if (values.out !== undefined || values.format !== undefined) throw new UsageError('--serve shows the trace in a page; --out and --format do not apply');
      return await serve(values.trace, parsePort(values.port), values.host ?? '127.0.0.1');
    }
    if (values.port !== undefined || values.host !== undefined) throw new UsageError('--port and --host go with --serve');
    let connections: number[] | undefined;
    if (values.connection !== undefined) {
      const n = Number(values.connection);
      if (!Number.isInteger(n) || n < 1) throw new UsageError(`--connection must be a positive integer, not "${values.connection}"`);
      connections = [n];
    }
    return await trace(values.trace, dir, values.format, values.out, connections);
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`wirestate viz: ${error.message}\n\n${usage}`);
      return 2;
    }
    console.error(`wirestate viz: ${(error as Error).message}`);
    return 1;
  }
}

async function diagram(dir: string, machine: string, format: string | undefined, out: string | undefined): Promise<number> {
  const chosen = format ?? formatFromOut(out) ?? 'mermaid';
  if (!DIAGRAM_FORMATS.includes(chosen as DiagramFormat)) {
    throw new UsageError(`--format must be one of ${DIAGRAM_FORMATS.join(', ')} for a diagram, not "${chosen}"`);
  }
  const machines = listMachines(dir);
  if (machines.length > 0 && !machines.includes(machine)) {
    throw new UsageError(`--machine must be one of ${machines.join(', ')}, not "${machine}"`);
  }
  const result = await loadDiagram(machine, chosen as DiagramFormat, dir);
  if (result.note) console.error(`wirestate viz: ${result.note}`);
  await emit(result.text, out);
  if (out && out !== '-') console.error(`wrote ${out} (${machine} machine, ${chosen})`);
  return 0;
}

function readTrace(file: string) {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}`);
  }
  const lines = parseTrace(text, file);
  if (lines.length === 0) throw new Error(`${file} has no trace lines`);
  return lines;
}

async function trace(file: string, dir: string, format: string | undefined, out: string | undefined, connections: number[] | undefined): Promise<number> {
  const chosen = format ?? formatFromOut(out) ?? 'html';
  if (!TRACE_FORMATS.includes(chosen as TraceFormat)) {
    throw new UsageError(`--format must be one of ${TRACE_FORMATS.join(', ')} for a trace, not "${chosen}"`);
  }
  const lines = readTrace(file);
  const all = [...groupByConnection(lines).keys()];
  const graph = parseDot((await loadDiagram('connection', 'dot', dir)).text);

  if (chosen === 'text') {
    const groups = groupByConnection(lines);
    const ids = connections ?? all;
    const texts = ids.map((id) => {
      const group = groups.get(id);
      if (!group) throw new Error(`connection ${id} is not in the trace (it has ${all.join(', ')})`);
      return renderTraceText(buildConnectionView(group, graph));
    });
    await emit(texts.join('\n\n') + '\n', out);
    return 0;
  }

  if (chosen === 'svg') {
    const ids = connections ?? all.slice(0, 1);
    if (!connections && all.length > 1) {
      console.error(`wirestate viz: the trace has ${all.length} connections (${all.join(', ')}); drawing connection ${ids[0]} (choose with --connection N, or use --format html for all)`);
    }
    const [rendered] = await renderConnections(lines, graph, ids);
    await emit(renderTraceSvg(rendered!, file), out);
    if (out && out !== '-') console.error(`wrote ${out}`);
    return 0;
  }

  const LIMIT = 50;
  const ids = connections ?? all.slice(0, LIMIT);
  const rendered = await renderConnections(lines, graph, ids);
  const html = renderTraceHtml(rendered, file, connections ? 0 : Math.max(0, all.length - LIMIT));
  const target = out ?? defaultHtmlPath(file);
  await emit(html, target);
  if (target !== '-') {
    if (out === undefined) console.log(rendered.map(({ view }) => renderTraceText(view)).join('\n\n'));
    console.error(`wrote ${target}: open it in a browser to see the trace over the diagram`);
  }
  return 0;
}

async function serve(file: string, port: number, host: string): Promise<number> {
  readTrace(file); // fail now, with the file and line, rather than in the page
  const { serveTrace } = await import('../inspect/replay.js');
  const server = await serveTrace(file, { port, host });
  console.log(`replaying ${file} (${server.lines.length} lines) on ${server.url}`);
  console.log('Ctrl-C stops it');
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await server.close();
  return 0;
}
