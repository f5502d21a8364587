/**
 * `make bench-profile`: the wirestate server under `node --cpu-prof` for the 64-byte echo (1 and 32
 * connections) and for handshakes, and pure-JS ws the same way for contrast. Each profile is reduced
 * to its top self-time functions and its self time per source file, written to
 * bench/results/profile.md; the raw .cpuprofile files stay in bench/results/profiles/ (not committed;
 * open them in Chrome DevTools or VS Code).
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { connectMany, destroyAll, runEcho, runHandshakes } from './load/client.js';
import { block, fragmented, maskedFrame, OP_BINARY, OP_TEXT, textPayload } from './load/frames.js';
import { ServerProcess } from './load/servers.js';
import { freezeBuild } from './run.js';
import { implementations, ROOT } from './scenarios.js';

let serversDir: string | undefined;

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number; children?: number[] }[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileRow {
  name: string;
  where: string;
  selfMs: number;
  share: number;
}

function shorten(url: string): string {
  if (!url) return '';
  return url
    .replace(/^file:\/\//, '')
    .replace(`${ROOT}/`, '')
    .replace(/^bench\/\.run-\d+\//, '')
    .replace(/^.*node_modules\//, '');
}

/** Self time per function and per file, from the samples (idle excluded from the shares). */
export function analyse(profile: CpuProfile, top = 25): { functions: ProfileRow[]; files: ProfileRow[]; inclusive: ProfileRow[]; busyMs: number } {
  const byNode = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const keyOf = (id: number) => {
    const { functionName, url, lineNumber } = byNode.get(id)!.callFrame;
    return { key: `${functionName}@${url}:${lineNumber}`, name: functionName || '(anonymous)', where: url ? `${shorten(url)}:${lineNumber + 1}` : '', ours: /dist\/runtime\/|dist\/generated\/|xstate\//.test(url) };
  };
  const total = new Map<string, { name: string; where: string; us: number }>();
  const self = new Map<string, { name: string; where: string; us: number }>();
  const files = new Map<string, number>();
  let busy = 0;
  profile.samples.forEach((id, i) => {
    const node = byNode.get(id)!;
    const dt = profile.timeDeltas[i + 1] ?? profile.timeDeltas[i] ?? 0;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') return;
    busy += dt;
    const where = url ? `${shorten(url)}:${lineNumber + 1}` : '';
    const key = `${functionName}@${where}`;
    const entry = self.get(key) ?? { name: functionName || '(anonymous)', where, us: 0 };
    entry.us += dt;
    self.set(key, entry);
    const file = url ? shorten(url) : functionName;
    files.set(file, (files.get(file) ?? 0) + dt);
    // Inclusive time of wirestate's (and XState's) functions: each function once per sample.
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const k = keyOf(at);
      if (!k.ours || seen.has(k.key)) continue;
      seen.add(k.key);
      const e = total.get(k.key) ?? { name: k.name, where: k.where, us: 0 };
      e.us += dt;
      total.set(k.key, e);
    }
  });
  const rows = [...self.values()].sort((a, b) => b.us - a.us).slice(0, top);
  return {
    busyMs: busy / 1000,
    functions: rows.map((r) => ({ name: r.name, where: r.where, selfMs: r.us / 1000, share: r.us / busy })),
    files: [...files.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 15)
      .map(([file, us]) => ({ name: file, where: '', selfMs: us / 1000, share: us / busy })),
    inclusive: [...total.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, 20)
      .map((r) => ({ name: r.name, where: r.where, selfMs: r.us / 1000, share: r.us / busy })),
  };
}

type Workload = 'echo64' | 'echo1m' | 'frag64k' | 'handshake';
const UNIT: Record<Workload, string> = { echo64: 'message', echo1m: 'MiB', frag64k: '64 KiB message', handshake: 'handshake' };
const TITLE: Record<Workload, string> = {
  echo64: '64-byte text echo (1 connection, then 32)',
  echo1m: '1 MiB binary echo',
  frag64k: '64 KiB binary messages in 16 fragments',
  handshake: 'handshakes, 16 concurrent',
};

async function profileRun(implId: string, workload: Workload, dir: string, seconds: number): Promise<{ file: string; units: number }> {
  const impl = implementations().find((i) => i.id === implId)!;
  const name = `${implId}-${workload}.cpuprofile`;
  const server = await ServerProcess.start({ script: impl.script, serversDir, env: impl.env, nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${name}`] });
  let units = 0;
  const echo = async (connections: number, message: Buffer[], perBlock: number, windowBlocks: number, ms: number) => {
    const conns = await connectMany(connections, { port: server.port, concurrency: 16 });
    try {
      units += (await runEcho(conns, { block: block(message, perBlock), messagesPerBlock: perBlock, windowBlocks, maxMessages: 10_000_000, timeLimitMs: ms })).messages;
    } finally {
      destroyAll(conns);
    }
  };
  try {
    if (workload === 'echo64') {
      const frame = maskedFrame({ opcode: OP_TEXT, payload: textPayload(64, 7) });
      await echo(1, [frame], 32, 4, (seconds * 1000) / 2);
      await echo(32, [frame], 32, 2, (seconds * 1000) / 2);
    } else if (workload === 'echo1m') {
      await echo(1, [maskedFrame({ opcode: OP_BINARY, payload: textPayload(1024 * 1024, 11) })], 1, 2, seconds * 1000);
    } else if (workload === 'frag64k') {
      await echo(1, fragmented(OP_BINARY, textPayload(64 * 1024, 13), 16), 1, 8, seconds * 1000);
    } else {
      units = (await runHandshakes({ port: server.port, concurrency: 16, maxHandshakes: 1_000_000, timeLimitMs: seconds * 1000 })).handshakes;
    }
  } finally {
    await server.stop(15_000);
  }
  return { file: path.join(dir, name), units };
}

function table(rows: ProfileRow[], withWhere: boolean, units: number, unit: string, label = 'self'): string {
  const per = (ms: number) => (units > 0 ? ((ms * 1000) / units).toFixed(unit === 'message' ? 3 : 1) : '-');
  const head = withWhere
    ? `| ${label} ms | share | ${label} µs/${unit} | function | where |\n| ---: | ---: | ---: | --- | --- |`
    : `| ${label} ms | share | ${label} µs/${unit} | file |\n| ---: | ---: | ---: | --- |`;
  return [
    head,
    ...rows.map((r) =>
      withWhere
        ? `| ${r.selfMs.toFixed(0)} | ${(r.share * 100).toFixed(1)} % | ${per(r.selfMs)} | \`${r.name}\` | ${r.where} |`
        : `| ${r.selfMs.toFixed(0)} | ${(r.share * 100).toFixed(1)} % | ${per(r.selfMs)} | ${r.name} |`,
    ),
  ].join('\n');
}

interface HeapSnapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
  nodes: number[];
  strings: string[];
}

/** Self size and count per kind of heap object: constructor names for objects, the V8 type otherwise. */
function heapByKind(file: string): Map<string, { count: number; bytes: number }> {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as HeapSnapshot;
  const fields = snap.snapshot.meta.node_fields;
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const types = snap.snapshot.meta.node_types[0];
  const out = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + typeAt]!]!;
    const name = snap.strings[snap.nodes[i + nameAt]!]!;
    const key = type === 'object' || type === 'native' ? name : type === 'closure' ? `closure ${name || '(anonymous)'}` : `(${type})`;
    const entry = out.get(key) ?? { count: 0, bytes: 0 };
    entry.count++;
    entry.bytes += snap.nodes[i + sizeAt]!;
    out.set(key, entry);
  }
  return out;
}

/** What `count` idle connections add to the heap, per connection and per kind of object (two snapshots, diffed). */
async function memoryBreakdown(implId: string, dir: string, count: number): Promise<string[]> {
  const impl = implementations().find((i) => i.id === implId)!;
  const server = await ServerProcess.start({ script: impl.script, serversDir, env: impl.env, raiseFileLimit: true });
  const before = path.join(dir, `${implId}-before.heapsnapshot`);
  const after = path.join(dir, `${implId}-after.heapsnapshot`);
  let conns: Awaited<ReturnType<typeof connectMany>> = [];
  try {
    destroyAll(await connectMany(100, { port: server.port, concurrency: 32 }));
    await new Promise((resolve) => setTimeout(resolve, 200));
    await server.snapshot(before);
    conns = await connectMany(count, { port: server.port, concurrency: 64 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    await server.snapshot(after);
  } finally {
    destroyAll(conns);
    await server.stop(15_000);
  }
  const a = heapByKind(before);
  const b = heapByKind(after);
  rmSync(before, { force: true });
  rmSync(after, { force: true });
  const rows = [...b.entries()]
    .map(([key, v]) => ({ key, count: (v.count - (a.get(key)?.count ?? 0)) / count, bytes: (v.bytes - (a.get(key)?.bytes ?? 0)) / count }))
    .filter((r) => r.bytes > 8)
    .sort((x, y) => y.bytes - x.bytes);
  const total = rows.reduce((sum, r) => sum + r.bytes, 0);
  return [
    `## ${implId}: heap per idle connection (${count.toLocaleString('en-US')} connections, two heap snapshots diffed)`,
    '',
    `${total.toFixed(0)} bytes of V8 heap per connection (self sizes; ArrayBuffer backing stores are outside the heap).`,
    '',
    '| bytes/conn | objects/conn | kind |',
    '| ---: | ---: | --- |',
    ...rows.slice(0, 25).map((r) => `| ${r.bytes.toFixed(0)} | ${r.count.toFixed(2)} | \`${r.key.replace(/\|/g, '\\|').slice(0, 80)}\` |`),
    '',
  ];
}

async function main(): Promise<void> {
  const dir = path.join(ROOT, 'bench/results/profiles');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const seconds = Number(process.env.PROFILE_SECONDS ?? 6);
  // One build for the whole run, whatever happens to dist/ meanwhile.
  const frozen = freezeBuild();
  serversDir = frozen.serversDir;
  const out: string[] = [
    '# CPU profiles of the benchmark servers',
    '',
    `\`make bench-profile\` — ${new Date().toISOString().slice(0, 10)}, Node ${process.version}; ${seconds} s per workload; the server under \`node --cpu-prof\`,`,
    'driven by the bench load generator. Self time: the samples in which the function itself was running; shares are of',
    'non-idle samples. Figures per unit of work divide by the units the load generator counted.',
    '',
  ];
  const workloads = (process.env.PROFILE_WORKLOADS?.split(',') ?? ['echo64', 'handshake', 'echo1m', 'frag64k']) as Workload[];
  for (const workload of workloads) {
    for (const implId of ['wirestate', 'ws']) {
      process.stdout.write(`profiling ${implId} ${workload}…\n`);
      const { file, units } = await profileRun(implId, workload, dir, seconds);
      const written = readdirSync(dir).includes(path.basename(file));
      if (!written) {
        out.push(`## ${implId}: ${TITLE[workload]}`, '', 'no profile was written', '');
        continue;
      }
      const unit = UNIT[workload];
      const result = analyse(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile);
      out.push(`## ${implId}: ${TITLE[workload]}`, '');
      out.push(`${units.toLocaleString('en-US')} × ${unit} in ${(result.busyMs / 1000).toFixed(2)} s of busy CPU samples: ${units > 0 ? ((result.busyMs * 1000) / units).toFixed(2) : '-'} µs per ${unit} under the profiler.`, '');
      out.push('Top functions by self time:', '', table(result.functions, true, units, unit), '');
      out.push('Self time by file:', '', table(result.files, false, units, unit), '');
      if (implId === 'wirestate') out.push('Inclusive time of wirestate and XState functions (callees included):', '', table(result.inclusive, true, units, unit, 'total'), '');
    }
  }
  if (process.env.PROFILE_MEMORY !== '0') {
    for (const implId of ['wirestate', 'ws']) {
      process.stdout.write(`heap snapshots of ${implId} with idle connections…\n`);
      out.push(...(await memoryBreakdown(implId, dir, Number(process.env.PROFILE_CONNECTIONS ?? 2000))));
    }
  }
  frozen.cleanup();
  writeFileSync(path.join(ROOT, 'bench/results/profile.md'), `${out.join('\n')}\n`);
  process.stdout.write(`wrote bench/results/profile.md (raw profiles in bench/results/profiles/)\n`);
}

await main();
