/**
 * The benchmark's scenarios and implementations: what is measured, on which server, with which
 * load, and how one round of one scenario against one server is measured.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectMany, destroyAll, runEcho, runHandshakes, type Conn } from './load/client.js';
import { block, deflatePayload, fragmented, maskedFrame, OP_BINARY, OP_TEXT, textPayload } from './load/frames.js';
import { cpuMicros, type ServerProcess } from './load/servers.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The repository root (this file runs from dist/bench/). */
export const ROOT = path.resolve(here, '../..');
export const NATIVE_WS = path.join(ROOT, 'bench/.native/node_modules/ws');

export interface Implementation {
  id: string;
  label: string;
  script: string;
  env?: Record<string, string>;
  /** The plain TCP echo: no WebSocket handshake, our own frames come back. */
  raw?: boolean;
  supportsDeflate: boolean;
  /** Why it cannot run here, if it cannot. */
  unavailable?: string;
}

export function implementations(): Implementation[] {
  return [
    // wirestate would load bufferutil when it can (runtime/codec/mask.ts); the targets are without any native addon.
    { id: 'wirestate', label: 'wirestate', script: 'wirestate.js', env: { WIRESTATE_NO_BUFFER_UTIL: '1' }, supportsDeflate: true },
    // The same server with the live view on (issue 8): beside the default (off) it shows what
    // watching costs, and that a server nobody inspects does not pay it.
    { id: 'wirestate-inspect', label: 'wirestate, inspect on', script: 'wirestate.js', env: { WIRESTATE_NO_BUFFER_UTIL: '1', BENCH_WIRESTATE_INSPECT: '1' }, supportsDeflate: true },
    { id: 'ws', label: 'ws (pure JS)', script: 'ws.js', env: { WS_NO_BUFFER_UTIL: '1', WS_NO_UTF_8_VALIDATE: '1' }, supportsDeflate: true },
    {
      id: 'ws-native',
      label: 'ws + native helpers',
      script: 'ws.js',
      env: { BENCH_WS_PATH: NATIVE_WS },
      supportsDeflate: true,
      unavailable: existsSync(path.join(NATIVE_WS, 'package.json')) ? undefined : 'bench/.native is not installed (`make bench` installs bufferutil, utf-8-validate and ws there)',
    },
    { id: 'websocket', label: 'websocket', script: 'websocket.js', supportsDeflate: false },
    { id: 'tcp', label: 'TCP echo (ceiling)', script: 'tcp.js', raw: true, supportsDeflate: false },
  ];
}

export interface Figure {
  id: string;
  label: string;
  unit: string;
  better: 'lower' | 'higher';
  /** Display scale: value / scale, in `unit`. */
  scale?: number;
}

export type Group = 'plain' | 'memory' | 'deflate';

export interface Scenario {
  id: string;
  title: string;
  group: Group;
  figures: Figure[];
  /** The target for wirestate, on the primary figure (ratio to pure-JS ws, lower is better). */
  target?: { figure: string; ratio: number };
  run(server: ServerProcess, impl: Implementation, size: Size): Promise<Sample>;
}

export interface Sample {
  status: 'ok' | 'n/a' | 'error';
  note?: string;
  figures: Record<string, number>;
  detail: Record<string, unknown>;
}

/** Load sizes: full runs and QUICK smoke runs. */
export interface Size {
  quick: boolean;
  idleConnections: number;
}

const KiB = 1024;
const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface EchoSpec {
  connections: number;
  /** The frames of one message (masked). */
  message: Buffer[];
  messagesPerBlock: number;
  windowBlocks: number;
  maxMessages: [full: number, quick: number];
  timeLimitMs: [full: number, quick: number];
  deflate?: boolean;
  /** Payload bytes one echoed message carries (checked when not compressed). */
  payloadSize: number;
}

async function echoSample(server: ServerProcess, impl: Implementation, size: Size, spec: EchoSpec): Promise<Sample> {
  if (spec.deflate && !impl.supportsDeflate) {
    return { status: 'n/a', note: impl.raw ? 'plain TCP' : 'not supported by the library', figures: {}, detail: {} };
  }
  let conns: Conn[] = [];
  try {
    conns = await connectMany(spec.connections, { port: server.port, deflate: spec.deflate, raw: impl.raw, concurrency: 16 });
    if (spec.deflate && !conns.every((c) => /permessage-deflate/.test(c.extensions))) {
      return { status: 'n/a', note: 'not negotiated', figures: {}, detail: { extensions: conns[0]?.extensions ?? '' } };
    }
    const pattern = {
      block: block(spec.message, spec.messagesPerBlock),
      messagesPerBlock: spec.messagesPerBlock,
      windowBlocks: spec.windowBlocks,
      maxMessages: spec.maxMessages[size.quick ? 1 : 0],
      timeLimitMs: spec.timeLimitMs[size.quick ? 1 : 0],
    };
    const before = await server.gc();
    const clientBefore = process.cpuUsage();
    const result = await runEcho(conns, pattern);
    const client = process.cpuUsage(clientBefore);
    await sleep(20);
    const after = await server.stats();
    const cpu = cpuMicros(before, after);
    if (result.messages === 0) return { status: 'error', note: 'no message echoed', figures: {}, detail: { ...result } };
    const expectedBytes = result.messages * spec.payloadSize;
    return {
      status: result.complete ? 'ok' : 'error',
      note: result.complete ? undefined : 'replies still missing when the drain limit ran out',
      figures: { cpu: cpu / result.messages, rate: result.messages / (result.wallMs / 1000) },
      detail: {
        messages: result.messages,
        serverCpuMs: cpu / 1000,
        wallMs: Math.round(result.wallMs),
        loadgenCpuPerMessageUs: (client.user + client.system) / result.messages,
        payloadBytesOk: spec.deflate ? undefined : result.payloadBytes === expectedBytes,
        compressedReplies: spec.deflate ? result.compressedFrames : undefined,
      },
    };
  } finally {
    destroyAll(conns);
  }
}

const text64 = textPayload(64, 7);
const binary1M = textPayload(MiB, 11);
const binary64K = textPayload(64 * KiB, 13);

const echoFigures = (unit: string): Figure[] => [
  { id: 'cpu', label: `server CPU µs/${unit}`, unit: `µs/${unit}`, better: 'lower' },
  { id: 'rate', label: `${unit}/s`, unit: `${unit}/s`, better: 'higher' },
];

export function scenarios(): Scenario[] {
  const small = [maskedFrame({ opcode: OP_TEXT, payload: text64 })];
  const large = [maskedFrame({ opcode: OP_BINARY, payload: binary1M })];
  const pieces = fragmented(OP_BINARY, binary64K, 16);
  const smallDeflated = [maskedFrame({ opcode: OP_TEXT, payload: deflatePayload(text64), rsv1: true })];
  const largeDeflated = [maskedFrame({ opcode: OP_BINARY, payload: deflatePayload(binary1M), rsv1: true })];
  return [
    {
      id: 'echo64-1',
      title: '64 B text echo, 1 connection, 128 in flight',
      group: 'plain',
      figures: echoFigures('msg'),
      target: { figure: 'cpu', ratio: 0.35 },
      run: (s, i, z) => echoSample(s, i, z, { connections: 1, message: small, messagesPerBlock: 32, windowBlocks: 4, maxMessages: [100_000, 10_000], timeLimitMs: [1500, 600], payloadSize: 64 }),
    },
    {
      id: 'echo64-32',
      title: '64 B text echo, 32 connections, 64 in flight each',
      group: 'plain',
      figures: echoFigures('msg'),
      target: { figure: 'cpu', ratio: 0.35 },
      run: (s, i, z) => echoSample(s, i, z, { connections: 32, message: small, messagesPerBlock: 32, windowBlocks: 2, maxMessages: [150_000, 15_000], timeLimitMs: [1500, 600], payloadSize: 64 }),
    },
    {
      id: 'echo1m',
      title: '1 MiB binary echo, 1 connection, 2 in flight',
      group: 'plain',
      figures: echoFigures('MiB'),
      target: { figure: 'cpu', ratio: 0.4 },
      run: (s, i, z) => echoSample(s, i, z, { connections: 1, message: large, messagesPerBlock: 1, windowBlocks: 2, maxMessages: [200, 20], timeLimitMs: [1500, 600], payloadSize: MiB }),
    },
    {
      id: 'frag64k',
      title: '64 KiB binary messages sent as 16 fragments, 1 connection, 8 in flight',
      group: 'plain',
      figures: echoFigures('msg'),
      target: { figure: 'cpu', ratio: 0.4 },
      run: (s, i, z) => echoSample(s, i, z, { connections: 1, message: pieces, messagesPerBlock: 1, windowBlocks: 8, maxMessages: [5000, 500], timeLimitMs: [1500, 600], payloadSize: 64 * KiB }),
    },
    {
      id: 'handshake',
      title: 'handshakes (upgrade, close handshake, TCP close), 16 concurrent',
      group: 'plain',
      figures: [
        { id: 'cpu', label: 'server CPU µs/handshake', unit: 'µs/handshake', better: 'lower' },
        { id: 'rate', label: 'handshakes/s', unit: 'handshakes/s', better: 'higher' },
      ],
      target: { figure: 'cpu', ratio: 0.9 },
      run: async (server, impl, size): Promise<Sample> => {
        const before = await server.gc();
        const result = await runHandshakes({ port: server.port, raw: impl.raw, concurrency: 16, maxHandshakes: size.quick ? 300 : 4000, timeLimitMs: size.quick ? 600 : 1500 });
        await sleep(100);
        const after = await server.stats();
        const cpu = cpuMicros(before, after);
        if (result.handshakes === 0) return { status: 'error', note: result.firstError ?? 'no handshake completed', figures: {}, detail: { ...result } };
        return {
          status: 'ok',
          note: result.failures > 0 ? `${result.failures} failed: ${result.firstError}` : undefined,
          figures: { cpu: cpu / result.handshakes, rate: result.handshakes / (result.wallMs / 1000) },
          detail: { handshakes: result.handshakes, failures: result.failures, serverCpuMs: cpu / 1000, wallMs: Math.round(result.wallMs) },
        };
      },
    },
    {
      id: 'idle-memory',
      title: 'memory per idle connection',
      group: 'memory',
      figures: [
        { id: 'rss', label: 'server RSS KiB/conn', unit: 'KiB/conn', better: 'lower', scale: 1024 },
        { id: 'heap', label: 'server heap KiB/conn', unit: 'KiB/conn', better: 'lower', scale: 1024 },
      ],
      target: { figure: 'rss', ratio: 1.0 },
      run: async (server, impl, size): Promise<Sample> => {
        const count = size.idleConnections;
        // Warm up the handshake path, so that compiled code is in the baseline rather than in the per-connection figure.
        destroyAll(await connectMany(Math.min(200, count), { port: server.port, raw: impl.raw, concurrency: 32 }));
        await sleep(200);
        const before = await server.gc();
        let conns: Conn[] = [];
        try {
          conns = await connectMany(count, { port: server.port, raw: impl.raw, concurrency: 64, deadline: Date.now() + 60_000 });
          await sleep(300);
          const after = await server.gc();
          const held = after.connections;
          return {
            status: 'ok',
            note: held < count ? `server reports ${held} of ${count} connections` : undefined,
            figures: { rss: (after.mem.rss - before.mem.rss) / count, heap: (after.mem.heapUsed - before.mem.heapUsed) / count },
            detail: {
              connections: count,
              serverConnections: held,
              rssBeforeMiB: before.mem.rss / MiB,
              rssAfterMiB: after.mem.rss / MiB,
              heapBeforeMiB: before.mem.heapUsed / MiB,
              heapAfterMiB: after.mem.heapUsed / MiB,
              externalPerConn: (after.mem.external - before.mem.external) / count,
            },
          };
        } finally {
          destroyAll(conns);
        }
      },
    },
    {
      id: 'deflate-echo64',
      title: 'permessage-deflate: 64 B text echo, 1 connection, 128 in flight',
      group: 'deflate',
      figures: echoFigures('msg'),
      run: (s, i, z) => echoSample(s, i, z, { connections: 1, message: smallDeflated, messagesPerBlock: 32, windowBlocks: 4, maxMessages: [40_000, 4_000], timeLimitMs: [1500, 600], payloadSize: 64, deflate: true }),
    },
    {
      id: 'deflate-echo1m',
      title: 'permessage-deflate: 1 MiB echo (text-like data), 1 connection, 2 in flight',
      group: 'deflate',
      figures: echoFigures('MiB'),
      run: (s, i, z) => echoSample(s, i, z, { connections: 1, message: largeDeflated, messagesPerBlock: 1, windowBlocks: 2, maxMessages: [100, 10], timeLimitMs: [1500, 600], payloadSize: MiB, deflate: true }),
    },
  ];
}

/** Unmeasured traffic that brings a fresh server's hot paths through the JIT before the first measurement. */
export async function warmUp(server: ServerProcess, impl: Implementation, deflate: boolean, quick: boolean): Promise<void> {
  const conns = await connectMany(2, { port: server.port, raw: impl.raw, deflate, concurrency: 2 });
  try {
    if (deflate && !conns.every((c) => /permessage-deflate/.test(c.extensions))) return;
    const small = maskedFrame({ opcode: OP_TEXT, payload: deflate ? deflatePayload(text64) : text64, rsv1: deflate });
    await runEcho(conns, { block: block([small], 32), messagesPerBlock: 32, windowBlocks: 2, maxMessages: quick ? 2000 : 10_000, timeLimitMs: quick ? 200 : 600 });
    const large = maskedFrame({ opcode: OP_BINARY, payload: deflate ? deflatePayload(binary1M) : binary1M, rsv1: deflate });
    await runEcho(conns.slice(0, 1), { block: large, messagesPerBlock: 1, windowBlocks: 1, maxMessages: quick ? 2 : 6, timeLimitMs: 500 });
    if (!deflate) {
      await runEcho(conns.slice(0, 1), { block: block(fragmented(OP_BINARY, binary64K, 16), 1), messagesPerBlock: 1, windowBlocks: 4, maxMessages: quick ? 50 : 300, timeLimitMs: 300 });
      await runHandshakes({ port: server.port, raw: impl.raw, concurrency: 8, maxHandshakes: quick ? 50 : 300, timeLimitMs: 400 });
    }
  } finally {
    destroyAll(conns);
  }
}
