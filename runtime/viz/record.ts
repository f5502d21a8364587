/**
 * Recording one WebSocket's lifecycle as a trace — JSON lines in the format of
 * runtime/inspect/trace.ts, which `wirestate viz --trace FILE` draws over the connection diagram.
 *
 * ```ts
 * const ws = new WebSocket('ws://127.0.0.1:8080/');
 * recordLifecycle(ws, createWriteStream('trace.jsonl'));
 * ```
 *
 * Start recording right after creating a client, so the trace begins in `connecting`; a server
 * side WebSocket is already open when the server hands it over (the server's `inspect: { record }`
 * option traces its connections from the start).
 */
import type { WebSocket, LifecycleStep } from '../websocket.js';
import { CLOSE_EVENT, type StateValueJson, type TraceLine } from '../inspect/trace.js';

/** Anything with a `write(string)`: a file stream, process.stdout, a PassThrough… */
export interface LineSink {
  write(chunk: string): unknown;
}

export interface RecordOptions {
  /**
   * The trace's `connection` number for this WebSocket. Default: 1 for the first WebSocket
   * recorded to a sink, 2 for the next, and so on, so several connections can share one file.
   */
  connection?: number;
}

const nextConnection = new WeakMap<object, number>();

/**
 * Writes every lifecycle step of `ws` to `sink` as one JSON line, then a last `close` line with the
 * close code and reason when the WebSocket emits `close`. The first line also carries the
 * connection's remote address, subprotocol and creation time. Returns a function that stops
 * recording (the sink is never ended: its owner closes it).
 */
export function recordLifecycle(ws: WebSocket, sink: LineSink, options: RecordOptions = {}): () => void {
  let connection = options.connection;
  if (connection === undefined) {
    connection = nextConnection.get(sink) ?? 1;
    nextConnection.set(sink, connection + 1);
  } else if (!Number.isInteger(connection) || connection < 1) {
    throw new RangeError(`connection must be a positive integer, not ${connection}`);
  }
  const id = connection;
  let first = true;
  let last: { to: string; state: StateValueJson } = { to: ws.lifecycle, state: ws.lifecycleState as StateValueJson };

  const write = (line: TraceLine) => {
    if (first) {
      first = false;
      line.remoteAddress = ws.remoteAddress ?? '';
      line.protocol = ws.protocol;
      line.createdAt = ws.createdAt;
    }
    sink.write(JSON.stringify(line) + '\n');
  };
  const onStep = (step: LifecycleStep) => {
    const state = step.state as StateValueJson;
    last = { to: step.to, state };
    write({ connection: id, event: step.event, from: step.from, to: step.to, state, at: step.at });
  };
  const onClose = (code: number, reason: Buffer | string) => {
    stop();
    write({ connection: id, event: CLOSE_EVENT, from: last.to, to: last.to, state: last.state, at: Date.now(), code, reason: String(reason), stats: ws.stats });
  };
  const stop = () => {
    ws.off('lifecycle', onStep);
    ws.off('close', onClose);
  };
  ws.on('lifecycle', onStep);
  ws.on('close', onClose);
  return stop;
}
