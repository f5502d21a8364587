/**
 * A remote-controlled Python `websockets` peer (Debian's python3-websockets 10.4) for tests that
 * run against it: commands go to the script's stdin as JSON lines, and what it saw comes back on
 * stdout as JSON lines (see test/interop/python/peer.py for the protocol).
 *
 * `/usr/bin/python3` is used explicitly: the `python3` first on PATH may be another installation
 * without the module (the Makefile installs the Debian package).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { once, type Resources } from './sockets.js';

export const PYTHON = '/usr/bin/python3';
export const PYTHON_SCRIPTS = fileURLToPath(new URL('../../../test/interop/python/', import.meta.url));

export interface PyEvent {
  event: string;
  [key: string]: unknown;
}

export class PythonPeer {
  readonly events: PyEvent[] = [];
  private readonly waiters: (() => void)[] = [];
  private stderr = '';
  exited = false;

  constructor(readonly child: ChildProcessWithoutNullStreams) {
    let buffer = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      buffer += chunk;
      let newline: number;
      while ((newline = buffer.indexOf('\n')) !== -1) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        if (line.trim()) this.events.push(JSON.parse(line) as PyEvent);
      }
      this.wake();
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => (this.stderr += chunk));
    child.on('exit', () => {
      this.exited = true;
      this.wake();
    });
  }

  private wake(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }

  command(command: Record<string, unknown>): void {
    this.child.stdin.write(`${JSON.stringify(command)}\n`);
  }

  /** The next not yet taken event named `name` (optionally matching `test`), waiting for it if needed. */
  async next(name: string, test: (e: PyEvent) => boolean = () => true, ms = 5000): Promise<PyEvent> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.events.find((e) => e.event === name && test(e) && !(e as { _taken?: boolean })._taken);
      if (found) {
        (found as { _taken?: boolean })._taken = true;
        return found;
      }
      if (this.exited) throw new Error(`python exited before '${name}'; stderr:\n${this.stderr}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for python '${name}'; events: ${JSON.stringify(this.events)}; stderr:\n${this.stderr}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  get errors(): string {
    return this.stderr;
  }
}

/** Starts `script args…` under /usr/bin/python3; the process is killed when `res` is cleaned up. */
export function spawnPython(res: Resources, script: string, args: string[]): PythonPeer {
  const child = spawn(PYTHON, [`${PYTHON_SCRIPTS}${script}`, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const peer = new PythonPeer(child);
  res.add(peer, (p) => {
    if (p.exited) return;
    const gone = once(p.child, 'exit', 2000).catch(() => undefined);
    p.child.kill('SIGKILL');
    return gone;
  });
  return peer;
}
