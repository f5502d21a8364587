/**
 * The load generator's connections and drivers. Raw `net` sockets only; every loop is bounded in
 * count and in time and ends by itself; every socket it opens it also destroys.
 */
import net from 'node:net';
import { closeFrame, FrameCounter, upgradeRequest } from './frames.js';

export interface ConnectOptions {
  port: number;
  deflate?: boolean;
  /** Plain TCP echo: the "response" is our own request echoed back; no status to check. */
  raw?: boolean;
  timeoutMs?: number;
}

export interface Conn {
  socket: net.Socket;
  counter: FrameCounter;
  /** The Sec-WebSocket-Extensions the server answered with ('' when none). */
  extensions: string;
}

const HEADER_END = Buffer.from('\r\n\r\n');

/** Opens a TCP connection and performs the opening handshake by hand. Rejects on any failure or after timeoutMs. */
export function connect({ port, deflate = false, raw = false, timeoutMs = 10_000 }: ConnectOptions): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
    const counter = new FrameCounter();
    let head: Buffer = Buffer.alloc(0);
    let done = false;
    const timer = setTimeout(() => fail(new Error(`handshake timed out after ${timeoutMs} ms`)), timeoutMs);
    const fail = (error: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed during the handshake')));
    socket.on('connect', () => socket.write(upgradeRequest(port, deflate)));
    const onHead = (chunk: Buffer) => {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      const end = head.indexOf(HEADER_END);
      if (end === -1) {
        if (head.length > 16384) fail(new Error('response head too long'));
        return;
      }
      const text = head.subarray(0, end).toString('latin1');
      if (!raw && !/^HTTP\/1\.1 101/.test(text)) return fail(new Error(`upgrade refused: ${text.split('\r\n')[0]}`));
      const extensions = /^sec-websocket-extensions:\s*(.*)$/im.exec(text)?.[1]?.trim() ?? '';
      done = true;
      clearTimeout(timer);
      socket.removeListener('data', onHead);
      socket.removeAllListeners('close');
      socket.removeAllListeners('error');
      socket.on('error', () => socket.destroy());
      const rest = head.subarray(end + 4);
      if (rest.length > 0) counter.push(rest);
      resolve({ socket, counter, extensions });
    };
    socket.on('data', onHead);
  });
}

/** Opens `count` connections, at most `concurrency` handshakes in flight. Any failure closes them all. */
export async function connectMany(count: number, options: ConnectOptions & { concurrency?: number; deadline?: number }): Promise<Conn[]> {
  const conns: Conn[] = [];
  const concurrency = Math.max(1, Math.min(options.concurrency ?? 64, count));
  let next = 0;
  let failure: Error | null = null;
  const worker = async () => {
    while (next < count && failure === null) {
      if (options.deadline !== undefined && Date.now() > options.deadline) {
        failure = new Error(`only ${conns.length} of ${count} connections opened before the deadline`);
        break;
      }
      next++;
      try {
        conns.push(await connect(options));
      } catch (error) {
        failure = error as Error;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  if (failure) {
    destroyAll(conns);
    throw Object.assign(failure as Error, { opened: conns.length });
  }
  return conns;
}

export function destroyAll(conns: Conn[]): void {
  for (const { socket } of conns) {
    // A reset leaves no TIME_WAIT behind: thousands of idle connections close without using up ports.
    if (typeof socket.resetAndDestroy === 'function' && !socket.destroyed && socket.readyState === 'open') socket.resetAndDestroy();
    else socket.destroy();
  }
}

export interface EchoPattern {
  /** The bytes one write sends: `messagesPerBlock` complete messages, masked already. */
  block: Buffer;
  messagesPerBlock: number;
  /** Blocks in flight per connection (the pipelining window). */
  windowBlocks: number;
  /** Stop sending after this many messages in total (all connections together)… */
  maxMessages: number;
  /** …or after this long, whichever comes first; then wait for what is in flight. */
  timeLimitMs: number;
  /** Give up waiting for replies after this long past the time limit. */
  drainLimitMs?: number;
}

export interface EchoResult {
  messages: number;
  payloadBytes: number;
  compressedFrames: number;
  wallMs: number;
  complete: boolean;
}

/**
 * Pipelined echo over already open connections: each connection keeps `windowBlocks` blocks in
 * flight and sends the next block each time a block's worth of replies has come back.
 */
export function runEcho(conns: Conn[], pattern: EchoPattern): Promise<EchoResult> {
  return new Promise((resolve) => {
    const { block, messagesPerBlock, windowBlocks, maxMessages, timeLimitMs } = pattern;
    const drainLimitMs = pattern.drainLimitMs ?? 10_000;
    const start = process.hrtime.bigint();
    let sent = 0;
    let stopping = false;
    let finished = false;
    let lastReply = start;
    const state = conns.map(() => ({ blocksSent: 0, blocksAcked: 0, base: 0, bytesBase: 0, compressedBase: 0 }));
    const canSend = () => !stopping && sent + messagesPerBlock <= maxMessages;
    const send = (i: number) => {
      state[i]!.blocksSent++;
      sent += messagesPerBlock;
      conns[i]!.socket.write(block);
    };
    const outstanding = () => state.some((s) => s.blocksAcked < s.blocksSent);
    const finish = (complete: boolean) => {
      if (finished) return;
      finished = true;
      clearTimeout(stopTimer);
      clearTimeout(drainTimer);
      conns.forEach((c) => c.socket.removeListener('data', listeners[conns.indexOf(c)]!));
      let messages = 0;
      let payloadBytes = 0;
      let compressedFrames = 0;
      conns.forEach((c, i) => {
        messages += c.counter.messages - state[i]!.base;
        payloadBytes += c.counter.payloadBytes - state[i]!.bytesBase;
        compressedFrames += c.counter.compressed - state[i]!.compressedBase;
      });
      resolve({ messages, payloadBytes, compressedFrames, wallMs: Number(lastReply - start) / 1e6, complete });
    };
    const maybeDone = () => {
      if ((stopping || !canSend()) && !outstanding()) finish(true);
    };
    const listeners = conns.map((conn, i) => {
      const s = state[i]!;
      s.base = conn.counter.messages;
      s.bytesBase = conn.counter.payloadBytes;
      s.compressedBase = conn.counter.compressed;
      const listener = (chunk: Buffer) => {
        conn.counter.push(chunk);
        lastReply = process.hrtime.bigint();
        const received = conn.counter.messages - s.base;
        while (received >= (s.blocksAcked + 1) * messagesPerBlock) {
          s.blocksAcked++;
          if (canSend()) send(i);
        }
        if (!canSend()) maybeDone();
      };
      conn.socket.on('data', listener);
      return listener;
    });
    let drainTimer: NodeJS.Timeout | undefined;
    const stopTimer = setTimeout(() => {
      stopping = true;
      maybeDone();
      drainTimer = setTimeout(() => finish(false), drainLimitMs);
    }, timeLimitMs);
    for (let w = 0; w < windowBlocks; w++) for (let i = 0; i < conns.length; i++) if (canSend()) send(i);
    if (!canSend()) {
      // Everything fits in the first window: the stop timer still bounds the wait.
      drainTimer = setTimeout(() => finish(false), timeLimitMs + drainLimitMs);
    }
  });
}

export interface HandshakeResult {
  handshakes: number;
  failures: number;
  wallMs: number;
  firstError?: string;
}

/**
 * Handshakes with concurrency: each one opens TCP, upgrades, sends a close frame (1000), waits for
 * the server's close frame, ends its side and waits for the TCP close. Bounded by count and time.
 */
export async function runHandshakes(options: { port: number; raw?: boolean; concurrency: number; maxHandshakes: number; timeLimitMs: number }): Promise<HandshakeResult> {
  const close = closeFrame();
  const start = process.hrtime.bigint();
  const deadline = Date.now() + options.timeLimitMs;
  let started = 0;
  let handshakes = 0;
  let failures = 0;
  let firstError: string | undefined;
  const one = async () => {
    const conn = await connect({ port: options.port, raw: options.raw, timeoutMs: 5000 });
    await new Promise<void>((resolve, reject) => {
      const { socket, counter } = conn;
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error('closing handshake timed out'));
      }, 5000);
      socket.on('close', () => {
        clearTimeout(timer);
        if (counter.closes > 0) resolve();
        else reject(new Error('TCP closed before the close frame'));
      });
      socket.on('data', (chunk: Buffer) => counter.push(chunk));
      counter.onClose = () => socket.end();
      if (counter.closes > 0) socket.end();
      else socket.write(close);
    });
  };
  const worker = async () => {
    while (started < options.maxHandshakes && Date.now() < deadline && failures < 50) {
      started++;
      try {
        await one();
        handshakes++;
      } catch (error) {
        failures++;
        firstError ??= String((error as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  return { handshakes, failures, wallMs: Number(process.hrtime.bigint() - start) / 1e6, firstError };
}
