/**
 * `make bench`: wirestate against ws (pure JavaScript and with its native helpers), websocket
 * (WebSocket-Node) and a plain TCP echo (the ceiling), each a separate server process on 127.0.0.1,
 * all driven by one load generator (bench/load). Every round runs every scenario against every
 * implementation, alternating implementations scenario by scenario (the order rotates each round),
 * so that noise from the other work on a shared machine falls on all of them alike. The report gives
 * the median of each figure over the rounds and its ratio to pure-JS ws (the median of the per-round
 * ratios: each round's figures were taken seconds apart, which cancels slow drifts of the machine).
 *
 * Environment: ROUNDS (default 5), QUICK=1 (small loads, 1 round: a smoke run), BENCH_IMPLS
 * (comma-separated ids), BENCH_SCENARIOS (comma-separated ids), BENCH_OUT (output directory).
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ServerProcess } from './load/servers.js';
import { renderMarkdown } from './report.js';
import { implementations, ROOT, scenarios, warmUp, type Group, type Implementation, type Sample, type Scenario, type Size } from './scenarios.js';

export interface BenchOptions {
  rounds?: number;
  quick?: boolean;
  implementations?: string[];
  scenarios?: string[];
  /** Directory for <name>.json and <name>.md. */
  outDir?: string;
  /** Base name of the output files: `latest` for full runs, `quick` for smoke runs by default. */
  name?: string;
  log?: (line: string) => void;
}

export interface CellResult {
  status: 'ok' | 'n/a' | 'error' | 'unavailable';
  note?: string;
  roundsOk: number;
  median: Record<string, number>;
  /** Median over rounds of (this implementation's figure / pure-JS ws's figure in the same round). */
  ratio: Record<string, number | null>;
  samples: Sample[];
}

export interface BenchResult {
  schema: 'wirestate-bench/1';
  generatedAt: string;
  command: string;
  quick: boolean;
  rounds: number;
  durationSeconds: number;
  machine: { node: string; platform: string; cpus: number; cpuModel: string; loadavgStart: number[]; loadavgEnd: number[]; openFilesLimit: number };
  /** The wirestate build measured: the commit, and whether runtime/ or generated/ differed from it. */
  build: { commit: string; dirty: boolean };
  baseline: 'ws';
  implementations: { id: string; label: string; available: boolean; note?: string; info?: Record<string, unknown> }[];
  scenarios: { id: string; title: string; group: Group; figures: Scenario['figures']; target?: Scenario['target'] }[];
  results: Record<string, Record<string, CellResult>>;
}

export const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

function openFilesLimit(): number {
  try {
    return Number(execFileSync('bash', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim()) || 1024;
  } catch {
    return 1024;
  }
}

function gitState(): { commit: string; dirty: boolean } {
  const git = (...args: string[]) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    return { commit: git('rev-parse', '--short', 'HEAD'), dirty: git('status', '--porcelain', '--', 'runtime', 'generated').length > 0 };
  } catch {
    return { commit: 'unknown', dirty: true };
  }
}

/**
 * Copies the compiled runtime and servers into bench/.run-<pid>/ so that every server of the run
 * loads the same build, even if dist/ is rebuilt meanwhile (others build in the same tree).
 * node_modules still resolves by walking up to the repository root.
 */
export function freezeBuild(): { serversDir: string; cleanup: () => void } {
  const dir = path.join(ROOT, 'bench', `.run-${process.pid}`);
  for (const sub of ['runtime', 'generated', 'bench/servers']) cpSync(path.join(ROOT, 'dist', sub), path.join(dir, sub), { recursive: true });
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  process.once('exit', cleanup);
  return { serversDir: path.join(dir, 'bench/servers'), cleanup };
}

const rotate = <T>(list: T[], by: number): T[] => list.map((_, i) => list[(i + by) % list.length]!);

export async function runBench(options: BenchOptions = {}): Promise<BenchResult> {
  const started = Date.now();
  const quick = options.quick ?? false;
  const rounds = Math.max(1, options.rounds ?? (quick ? 1 : 5));
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const loadavgStart = os.loadavg();
  const fileLimit = openFilesLimit();
  const wantedIdle = quick ? 300 : 10_000;
  const idleConnections = Math.max(10, Math.min(wantedIdle, fileLimit - 512));
  if (idleConnections < wantedIdle) log(`open-files limit is ${fileLimit}: measuring memory with ${idleConnections} idle connections instead of ${wantedIdle}`);
  const size: Size = { quick, idleConnections };
  const build = gitState();
  const frozen = freezeBuild();

  const impls = implementations().filter((i) => !options.implementations || options.implementations.includes(i.id));
  const scens = scenarios().filter((s) => !options.scenarios || options.scenarios.includes(s.id));
  const runnable = impls.filter((i) => !i.unavailable);
  const infos = new Map<string, Record<string, unknown>>();
  const failures = new Map<string, string>();
  const samples = new Map<string, Sample[]>(); // `${scenario}/${impl}` → one sample per round
  const record = (s: Scenario, i: Implementation, sample: Sample) => {
    const key = `${s.id}/${i.id}`;
    if (!samples.has(key)) samples.set(key, []);
    samples.get(key)!.push(sample);
    const f = s.figures.map((fig) => (sample.figures[fig.id] === undefined ? '-' : (sample.figures[fig.id]! / (fig.scale ?? 1)).toPrecision(3))).join(' / ');
    log(`  ${s.id.padEnd(15)} ${i.id.padEnd(10)} ${sample.status === 'ok' ? f : `${sample.status}: ${sample.note ?? ''}`}`);
  };
  const guarded = async (s: Scenario, server: ServerProcess, i: Implementation): Promise<Sample> => {
    // A hard bound on each measurement, whatever happens inside it.
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<Sample>((resolve) => {
      timer = setTimeout(() => resolve({ status: 'error', note: 'measurement exceeded 120 s', figures: {}, detail: {} }), 120_000);
    });
    try {
      return await Promise.race([s.run(server, i, size).catch((error: Error) => ({ status: 'error' as const, note: error.message, figures: {}, detail: {} })), limit]);
    } finally {
      clearTimeout(timer);
    }
  };
  const startServer = async (i: Implementation, deflate: boolean, raiseFileLimit = false): Promise<ServerProcess | null> => {
    try {
      const server = await ServerProcess.start({ script: i.script, serversDir: frozen.serversDir, env: i.env, deflate, raiseFileLimit });
      if (!infos.has(i.id)) infos.set(i.id, server.info);
      return server;
    } catch (error) {
      failures.set(`${i.id}/${deflate}`, (error as Error).message);
      log(`  ${i.id}: ${(error as Error).message}`);
      return null;
    }
  };

  const groups: Group[] = ['plain', 'memory', 'deflate'];
  for (let round = 0; round < rounds; round++) {
    const order = rotate(runnable, round);
    log(`round ${round + 1}/${rounds} (order: ${order.map((i) => i.id).join(', ')})`);
    for (const group of groups) {
      const groupScenarios = scens.filter((s) => s.group === group);
      if (groupScenarios.length === 0) continue;
      if (group === 'memory') {
        // A fresh process per implementation: the figure is what idle connections add to a clean server.
        for (const s of groupScenarios) {
          for (const impl of order) {
            const server = await startServer(impl, false, true);
            if (!server) {
              record(s, impl, { status: 'error', note: failures.get(`${impl.id}/false`), figures: {}, detail: {} });
              continue;
            }
            try {
              record(s, impl, await guarded(s, server, impl));
            } finally {
              await server.stop();
            }
          }
        }
        continue;
      }
      const deflate = group === 'deflate';
      const servers = new Map<string, ServerProcess>();
      try {
        for (const impl of order) {
          if (deflate && !impl.supportsDeflate) continue;
          const server = await startServer(impl, deflate);
          if (!server) continue;
          servers.set(impl.id, server);
          try {
            await warmUp(server, impl, deflate, quick);
          } catch (error) {
            log(`  warm-up of ${impl.id} failed: ${(error as Error).message}`);
          }
        }
        for (const s of groupScenarios) {
          for (const impl of order) {
            const server = servers.get(impl.id);
            if (server) record(s, impl, await guarded(s, server, impl));
            else if (deflate && !impl.supportsDeflate) record(s, impl, { status: 'n/a', note: impl.raw ? 'plain TCP' : 'not supported by the library', figures: {}, detail: {} });
            else record(s, impl, { status: 'error', note: failures.get(`${impl.id}/${deflate}`) ?? 'server did not start', figures: {}, detail: {} });
          }
        }
      } finally {
        await Promise.all([...servers.values()].map((server) => server.stop()));
      }
    }
  }

  frozen.cleanup();

  const results: Record<string, Record<string, CellResult>> = {};
  for (const s of scens) {
    results[s.id] = {};
    const baseline = samples.get(`${s.id}/ws`) ?? [];
    for (const impl of impls) {
      if (impl.unavailable) {
        results[s.id]![impl.id] = { status: 'unavailable', note: impl.unavailable, roundsOk: 0, median: {}, ratio: {}, samples: [] };
        continue;
      }
      const list = samples.get(`${s.id}/${impl.id}`) ?? [];
      const ok = list.filter((x) => x.status === 'ok');
      const med: Record<string, number> = {};
      const ratio: Record<string, number | null> = {};
      for (const fig of s.figures) {
        if (ok.length > 0) med[fig.id] = median(ok.map((x) => x.figures[fig.id]!));
        const paired = list
          .map((x, r) => (x.status === 'ok' && baseline[r]?.status === 'ok' && baseline[r]!.figures[fig.id]! > 0 ? x.figures[fig.id]! / baseline[r]!.figures[fig.id]! : null))
          .filter((x): x is number => x !== null && Number.isFinite(x));
        ratio[fig.id] = paired.length > 0 ? median(paired) : null;
      }
      let status: CellResult['status'];
      let note: string | undefined;
      if (ok.length > 0) {
        status = 'ok';
        const bad = list.filter((x) => x.status !== 'ok');
        const notes = [...new Set(ok.map((x) => x.note).filter(Boolean))];
        if (bad.length > 0) {
          const what = bad[0]!.status === 'n/a' ? `n/a (${bad[0]!.note ?? ''})` : `failed (${bad[0]!.note ?? bad[0]!.status})`;
          notes.unshift(`${bad.length} of ${list.length} rounds ${what}; the median is over the other rounds`);
        }
        note = notes.length > 0 ? notes.join('; ') : undefined;
      } else if (list.length > 0 && list.every((x) => x.status === 'n/a')) {
        status = 'n/a';
        note = list[0]!.note;
      } else {
        status = 'error';
        note = list[0]?.note ?? 'not measured';
      }
      results[s.id]![impl.id] = { status, note, roundsOk: ok.length, median: med, ratio, samples: list };
    }
  }

  const result: BenchResult = {
    schema: 'wirestate-bench/1',
    generatedAt: new Date().toISOString(),
    command: quick ? 'make bench QUICK=1' : `make bench${options.rounds && options.rounds !== 5 ? ` ROUNDS=${options.rounds}` : ''}`,
    quick,
    rounds,
    durationSeconds: Math.round((Date.now() - started) / 1000),
    machine: {
      node: process.version,
      platform: `${os.platform()} ${os.release()}`,
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      loadavgStart: loadavgStart.map((x) => Math.round(x * 100) / 100),
      loadavgEnd: os.loadavg().map((x) => Math.round(x * 100) / 100),
      openFilesLimit: fileLimit,
    },
    build,
    baseline: 'ws',
    implementations: impls.map((i) => ({ id: i.id, label: i.label, available: !i.unavailable, note: i.unavailable ?? nativeNote(i, infos.get(i.id)), info: infos.get(i.id) })),
    scenarios: scens.map((s) => ({ id: s.id, title: s.title, group: s.group, figures: s.figures, target: s.target })),
    results,
  };

  if (options.outDir) {
    mkdirSync(options.outDir, { recursive: true });
    const name = options.name ?? (quick ? 'quick' : 'latest');
    writeFileSync(path.join(options.outDir, `${name}.json`), `${JSON.stringify(result, null, 2)}\n`);
    writeFileSync(path.join(options.outDir, `${name}.md`), renderMarkdown(result));
  }
  return result;
}

/** Says plainly when a variant did not run as labelled (native helpers missing, or loaded where they must not be). */
function nativeNote(impl: Implementation, info: Record<string, unknown> | undefined): string | undefined {
  if (!info) return undefined;
  if (impl.id === 'ws-native' && info.bufferutilLoaded !== true) return 'bufferutil did NOT load: this column is pure JavaScript';
  if (impl.id === 'ws' && (info.bufferutilLoaded === true || info.utf8ValidateLoaded === true)) return 'native helpers loaded although disabled';
  return undefined;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const env = process.env;
  const list = (value: string | undefined) => (value ? value.split(',').map((x) => x.trim()).filter(Boolean) : undefined);
  const quick = env.QUICK === '1' || env.QUICK === 'true';
  const result = await runBench({
    quick,
    rounds: env.ROUNDS ? Number(env.ROUNDS) : undefined,
    implementations: list(env.BENCH_IMPLS),
    scenarios: list(env.BENCH_SCENARIOS),
    outDir: env.BENCH_OUT ?? path.join(ROOT, 'bench/results'),
  });
  process.stdout.write(`\n${renderMarkdown(result)}\n`);
  process.exit(0);
}
