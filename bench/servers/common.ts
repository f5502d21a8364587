/**
 * What every benchmark server shares: it echoes on 127.0.0.1 (port 0: the kernel picks), prints
 * `READY <port> <json>` once listening, and answers one-line commands on stdin with one line on stdout:
 *
 *   stats  → `STATS {"cpu":{"user":µs,"system":µs},"mem":{rss,heapUsed,…},"connections":n}`
 *   gc     → runs a full garbage collection (the server runs with --expose-gc), then answers like stats
 *   snapshot <file> → full GC, then a V8 heap snapshot written to <file>; answers like stats
 *   exit   → exits normally (so that --cpu-prof writes its profile)
 *
 * When stdin closes (the bench went away, however it died) the server exits: no orphan survives it.
 */
import { createRequire } from 'node:module';
import v8 from 'node:v8';

export interface ServerHandle {
  port: number;
  /** How many connections the server holds open right now. */
  connections(): number;
  /** Anything worth reporting about the implementation (version, native helpers loaded, options). */
  info?: Record<string, unknown>;
}

const require = createRequire(import.meta.url);

/** Native addons (.node files) loaded into this process: the proof that ws's helpers are (or are not) in use. */
export function loadedNativeAddons(): string[] {
  return Object.keys(require.cache)
    .filter((path) => path.endsWith('.node'))
    .map((path) => path.replace(/^.*node_modules\//, ''));
}

export function packageVersion(modulePath: string): string | undefined {
  try {
    const pkgPath = require.resolve(modulePath.endsWith('package.json') ? modulePath : `${modulePath}/package.json`);
    return (require(pkgPath) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

/** True when the bench asked this server for permessage-deflate (BENCH_DEFLATE=1). */
export const deflateRequested = process.env.BENCH_DEFLATE === '1';

export async function runServer(name: string, start: () => Promise<ServerHandle>): Promise<void> {
  let handle: ServerHandle;
  try {
    handle = await start();
  } catch (error) {
    process.stdout.write(`FAILED ${JSON.stringify({ name, error: String((error as Error)?.message ?? error) })}\n`);
    process.exit(2);
  }
  const stats = () => {
    const cpu = process.cpuUsage();
    const mem = process.memoryUsage();
    return {
      cpu: { user: cpu.user, system: cpu.system },
      mem: { rss: mem.rss, heapUsed: mem.heapUsed, heapTotal: mem.heapTotal, external: mem.external, arrayBuffers: mem.arrayBuffers },
      connections: handle.connections(),
    };
  };
  const gc = (globalThis as { gc?: () => void }).gc;
  let pending = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (text: string) => {
    pending += text;
    let newline: number;
    while ((newline = pending.indexOf('\n')) !== -1) {
      const command = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      if (command === 'stats') process.stdout.write(`STATS ${JSON.stringify(stats())}\n`);
      else if (command === 'gc') {
        if (gc) {
          gc();
          gc();
        }
        process.stdout.write(`STATS ${JSON.stringify(stats())}\n`);
      } else if (command.startsWith('snapshot ')) {
        gc?.();
        v8.writeHeapSnapshot(command.slice('snapshot '.length));
        process.stdout.write(`STATS ${JSON.stringify(stats())}\n`);
      } else if (command === 'exit') process.exit(0);
    }
  });
  process.stdin.on('end', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
  const info = { name, node: process.version, nativeAddons: loadedNativeAddons(), deflate: deflateRequested, ...handle.info };
  process.stdout.write(`READY ${handle.port} ${JSON.stringify(info)}\n`);
}
