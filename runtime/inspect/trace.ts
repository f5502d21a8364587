/**
 * Lifecycle traces: the steps of a server's connections written as JSON lines, for replay in the
 * inspector page (`wirestate viz --trace FILE --serve`, runtime/inspect/replay.ts) and for static
 * rendering (`wirestate viz --trace FILE`).
 *
 * ## Format (version 1)
 *
 * UTF-8 text, one JSON object per line (`\n` separated; a trailing newline, blank lines and a
 * trailing `\r` are tolerated), in the order the steps happened. Each object is one of:
 *
 * - **a lifecycle step** of connection `connection`: the machine event `event` moved it from the
 *   lifecycle state `from` to `to` (lifecycle names as `WebSocket#lifecycle` gives them:
 *   `connecting`, `open`, `closing.closedByUs`, `closing.closedByPeer`, `closing.acknowledged`,
 *   `closing.failed`, `closed`, `terminated`); `state` is the machine's full state value after the
 *   step (the regions of the parallel `open` state included, e.g.
 *   `{"open":{"reading":"flowing","keepalive":"waiting","idle":"disabled"}}`, or `"closed"`), and
 *   `at` the time in milliseconds since the Unix epoch. `from` equals `to` when only a region of
 *   `open` changed. Delayed transitions have XState's event names
 *   (`xstate.after.<delay>.<state id>`).
 *
 *   ```json
 *   {"connection":1,"event":"HANDSHAKE_SUCCEEDED","from":"connecting","to":"open","state":{"open":{"reading":"flowing","keepalive":"disabled","idle":"disabled"}},"at":1718000000000,"remoteAddress":"::ffff:127.0.0.1","protocol":"chat","createdAt":1717999999990}
 *   {"connection":1,"event":"CLOSE_RECEIVED","from":"open","to":"closing.closedByPeer","state":{"closing":"closedByPeer"},"at":1718000001000}
 *   {"connection":1,"event":"SOCKET_ENDED","from":"closing.closedByPeer","to":"closed","state":"closed","at":1718000001020}
 *   {"connection":1,"event":"close","from":"closed","to":"closed","state":"closed","at":1718000001020,"code":4001,"reason":"bye","stats":{"messagesIn":1,"messagesOut":1,"bytesIn":5,"bytesOut":5}}
 *   ```
 *
 * - **the close of connection `connection`**: `event` is `"close"` (the WebSocket's `close` event,
 *   not a machine event), `from` = `to` = the final lifecycle state, and `code` / `reason` are
 *   what the `close` event reported (1005 when the peer's close frame had no code, 1006 when no
 *   close frame arrived). It is the last line of that connection.
 *
 * Required fields: `connection` (a positive integer, unique within the file), `event`, `from`,
 * `to` (strings), `state` (a string or an object), `at` (a number). Optional fields: `code`
 * (integer) and `reason` (string) on the close line; `remoteAddress`, `protocol` (the negotiated
 * subprotocol, `""` when none) and `createdAt` (ms since the epoch) on a connection's first line;
 * `stats` (`{messagesIn, messagesOut, bytesIn, bytesOut}`) on the close line. Readers ignore fields
 * they do not know, so later versions may add some. The server machine's own state is not traced.
 */
import { createWriteStream, type WriteStream } from 'node:fs';

export interface ConnectionStats {
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
}

/** A machine state value as XState gives it: a state name or an object of region values. */
export type StateValueJson = string | { [region: string]: StateValueJson };

export interface TraceLine {
  connection: number;
  event: string;
  from: string;
  to: string;
  state: StateValueJson;
  at: number;
  code?: number;
  reason?: string;
  remoteAddress?: string;
  protocol?: string;
  createdAt?: number;
  stats?: ConnectionStats;
}

/** The `event` of the line that carries a connection's close code and reason. */
export const CLOSE_EVENT = 'close';

export class TraceFormatError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly problem: string,
  ) {
    super(`${file}:${line}: ${problem}`);
    this.name = 'TraceFormatError';
  }
}

function isStateValue(value: unknown): value is StateValueJson {
  if (typeof value === 'string') return true;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  return Object.values(value).every(isStateValue);
}

/** Checks one parsed line; returns the problem, or null when the line is a valid TraceLine. */
export function traceLineProblem(value: unknown): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object';
  const line = value as Record<string, unknown>;
  if (!Number.isInteger(line.connection) || (line.connection as number) < 1) return '"connection" must be a positive integer';
  for (const key of ['event', 'from', 'to'] as const) if (typeof line[key] !== 'string') return `"${key}" must be a string`;
  if (!isStateValue(line.state)) return '"state" must be a state name or an object of region states';
  if (typeof line.at !== 'number' || !Number.isFinite(line.at)) return '"at" must be a number (ms since the epoch)';
  if (line.code !== undefined && !Number.isInteger(line.code)) return '"code" must be an integer';
  if (line.reason !== undefined && typeof line.reason !== 'string') return '"reason" must be a string';
  return null;
}

/** Parses a trace; throws a TraceFormatError naming the file and line of the first bad line. */
export function parseTrace(text: string, file = '<trace>'): TraceLine[] {
  const lines: TraceLine[] = [];
  const rows = text.split('\n');
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!.trim();
    if (row === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(row);
    } catch (error) {
      throw new TraceFormatError(file, i + 1, `not JSON (${(error as Error).message})`);
    }
    const problem = traceLineProblem(value);
    if (problem) throw new TraceFormatError(file, i + 1, problem);
    lines.push(value as TraceLine);
  }
  return lines;
}

/**
 * Appends trace lines to a file (created or truncated when the writer is made). Writes are
 * buffered by a WriteStream, so recording does not block the event loop on every step.
 */
export class TraceWriter {
  private readonly _stream: WriteStream;
  private _error: Error | null = null;

  /** `onError` hears of the first write error (recording stops then). */
  constructor(
    readonly path: string,
    onError?: (error: Error) => void,
  ) {
    this._stream = createWriteStream(path, { flags: 'w', encoding: 'utf8' });
    this._stream.on('error', (error) => {
      if (this._error) return;
      this._error = error;
      onError?.(error);
    });
  }

  /** The write error, if the file could not be written (recording stops then). */
  get error(): Error | null {
    return this._error;
  }

  write(line: TraceLine): void {
    if (this._error) return;
    this._stream.write(JSON.stringify(line) + '\n');
  }

  /** Flushes and closes the file. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this._stream.closed || this._stream.destroyed) return resolve();
      this._stream.end(() => resolve());
      this._stream.once('error', () => resolve());
    });
  }
}
