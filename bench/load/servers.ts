/**
 * Starts and stops the benchmark's server processes. Every child's PID is tracked, and only those
 * are ever signalled: on a normal stop, on the bench's exit, and on SIGINT/SIGTERM. Children also
 * exit by themselves when their stdin closes (bench/servers/common.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
/** dist/bench/servers: the compiled server scripts. */
export const SERVERS_DIR = path.resolve(here, '../servers');

export interface ServerStats {
  cpu: { user: number; system: number };
  mem: { rss: number; heapUsed: number; heapTotal: number; external: number; arrayBuffers: number };
  connections: number;
}

export interface SpawnOptions {
  script: string;
  /** Where the compiled server scripts are (default: dist/bench/servers; the bench passes its frozen copy). */
  serversDir?: string;
  env?: Record<string, string>;
  deflate?: boolean;
  nodeFlags?: string[];
  /** Raise the open-files limit of the child to its hard limit (for 10,000 connections). */
  raiseFileLimit?: boolean;
  readyTimeoutMs?: number;
}

const live = new Set<ServerProcess>();
let handlersInstalled = false;

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', () => {
    for (const server of live) server.kill('SIGKILL');
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      for (const server of live) server.kill('SIGKILL');
      process.exit(130);
    });
  }
}

export class ServerProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  port = 0;
  info: Record<string, unknown> = {};
  private lines: string[] = [];
  private waiters: ((line: string) => void)[] = [];
  private buffer = '';
  private exited = false;
  readonly stderr: string[] = [];
  private readonly exitPromise: Promise<void>;

  private constructor(options: SpawnOptions) {
    installExitHandlers();
    const flags = ['--expose-gc', ...(options.nodeFlags ?? [])];
    const script = path.join(options.serversDir ?? SERVERS_DIR, options.script);
    const env = { ...process.env, ...(options.env ?? {}), ...(options.deflate ? { BENCH_DEFLATE: '1' } : {}) };
    // With `exec`, the shell becomes node: the PID we track is the server's own.
    this.child = options.raiseFileLimit
      ? spawn('bash', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"', process.execPath, ...flags, script], { env, stdio: ['pipe', 'pipe', 'pipe'] })
      : spawn(process.execPath, [...flags, script], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    if (this.child.pid === undefined) throw new Error(`could not start ${options.script}`);
    this.pid = this.child.pid;
    live.add(this);
    this.child.stdout!.setEncoding('utf8');
    this.child.stdout!.on('data', (text: string) => {
      this.buffer += text;
      let newline: number;
      while ((newline = this.buffer.indexOf('\n')) !== -1) {
        const line = this.buffer.slice(0, newline);
        this.buffer = this.buffer.slice(newline + 1);
        const waiter = this.waiters.shift();
        if (waiter) waiter(line);
        else this.lines.push(line);
      }
    });
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (text: string) => {
      if (this.stderr.join('').length < 8192) this.stderr.push(text);
    });
    this.child.stdin!.on('error', () => {});
    this.exitPromise = new Promise((resolve) => {
      this.child.once('exit', () => {
        this.exited = true;
        live.delete(this);
        for (const waiter of this.waiters.splice(0)) waiter('EXITED');
        resolve();
      });
    });
  }

  static async start(options: SpawnOptions): Promise<ServerProcess> {
    const server = new ServerProcess(options);
    const line = await server.nextLine(options.readyTimeoutMs ?? 15_000);
    const match = /^READY (\d+) (.*)$/.exec(line);
    if (!match) {
      await server.stop();
      const detail = line.startsWith('FAILED ') ? (JSON.parse(line.slice(7)) as { error: string }).error : `${line} ${server.stderr.join('').slice(0, 500)}`;
      throw new Error(`${options.script} did not start: ${detail.trim()}`);
    }
    server.port = Number(match[1]);
    server.info = JSON.parse(match[2]!) as Record<string, unknown>;
    return server;
  }

  private nextLine(timeoutMs: number): Promise<string> {
    const queued = this.lines.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.exited) return Promise.resolve('EXITED');
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const index = this.waiters.indexOf(waiter);
        if (index !== -1) this.waiters.splice(index, 1);
        resolve('TIMEOUT');
      }, timeoutMs);
      const waiter = (line: string) => {
        clearTimeout(timer);
        resolve(line);
      };
      this.waiters.push(waiter);
    });
  }

  private async command(command: string): Promise<ServerStats> {
    if (this.exited) throw new Error(`server ${this.info.name ?? this.pid} has exited`);
    this.child.stdin!.write(`${command}\n`);
    const line = await this.nextLine(15_000);
    if (!line.startsWith('STATS ')) throw new Error(`server ${this.info.name ?? this.pid} answered ${JSON.stringify(line)} to ${command}`);
    return JSON.parse(line.slice(6)) as ServerStats;
  }

  stats(): Promise<ServerStats> {
    return this.command('stats');
  }

  /** A full garbage collection in the server, then its stats. */
  gc(): Promise<ServerStats> {
    return this.command('gc');
  }

  /** A V8 heap snapshot of the server, written to `file` (after a full GC). */
  snapshot(file: string): Promise<ServerStats> {
    return this.command(`snapshot ${file}`);
  }

  kill(signal: NodeJS.Signals): void {
    if (!this.exited) {
      try {
        process.kill(this.pid, signal);
      } catch {
        /* already gone */
      }
    }
  }

  /** Asks the server to exit (a CPU profile is written then), and makes sure it does within a bound. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.exited) return;
    this.child.stdin!.write('exit\n');
    this.child.stdin!.end();
    const timer = setTimeout(() => this.kill('SIGTERM'), graceMs);
    const hard = setTimeout(() => this.kill('SIGKILL'), graceMs + 2000);
    await this.exitPromise;
    clearTimeout(timer);
    clearTimeout(hard);
  }
}

export function cpuMicros(before: ServerStats, after: ServerStats): number {
  return after.cpu.user + after.cpu.system - (before.cpu.user + before.cpu.system);
}
