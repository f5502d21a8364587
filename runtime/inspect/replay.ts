/**
 * Replay of a recorded trace (JSON lines, format in trace.ts) in the inspector page:
 * `serveTrace(file, { port, host })` serves the same page as the live inspector, in replay mode,
 * with controls to play, pause, step and seek through the trace. It is what
 * `wirestate viz --trace FILE --serve` starts.
 *
 * The file is read and checked when the server starts (a bad line fails with its file and line
 * number) and read again each time a page connects, so reloading the page picks up a trace that is
 * still being recorded.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { PageServer } from './http.js';
import { parseTrace, type TraceLine } from './trace.js';

export interface ServeTraceOptions {
  /** Port to listen on; 0 (the default) picks a free one. */
  port?: number;
  /** Address to bind; loopback by default. */
  host?: string;
}

export interface TraceServer {
  /** The page's URL, `http://host:port/`. */
  url: string;
  /** The lines as read at start. */
  lines: TraceLine[];
  close(): Promise<void>;
}

/** Messages from the replay server to the page. */
export type ReplayMessage =
  | { type: 'hello'; mode: 'replay'; file: string }
  | { type: 'trace'; lines: TraceLine[] }
  | { type: 'error'; message: string };

export async function serveTrace(file: string, options: ServeTraceOptions = {}): Promise<TraceServer> {
  const path = resolve(file);
  const lines = parseTrace(await readFile(path, 'utf8'), file);
  const page = new PageServer({
    port: options.port ?? 0,
    host: options.host || '127.0.0.1',
    onClient: (client) => {
      page.sendTo(client, { type: 'hello', mode: 'replay', file } satisfies ReplayMessage);
      readFile(path, 'utf8').then(
        (text) => {
          let message: ReplayMessage;
          try {
            message = { type: 'trace', lines: parseTrace(text, file) };
          } catch (error) {
            message = { type: 'error', message: (error as Error).message };
          }
          page.sendTo(client, message);
        },
        (error: Error) => page.sendTo(client, { type: 'error', message: `cannot read ${file}: ${error.message}` } satisfies ReplayMessage),
      );
    },
  });
  const url = await page.listen();
  return { url, lines, close: () => page.close() };
}
