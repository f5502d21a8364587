/**
 * Property-based fuzzing of the sans-I/O codec with fast-check: random and mutated frame streams
 * under random chunking, for both roles, with and without permessage-deflate.
 *
 * The streams start valid — messages of random text and binary payloads, fragmented at random
 * points, with pings and pongs between fragments, maybe a close frame — encoded here by a small
 * encoder of our own (never the codec under test), with random masking keys. Mutations then flip
 * and overwrite bytes, target frame headers (FIN, RSV bits, opcodes, the MASK bit, lengths), insert
 * long length fields, delete, duplicate and truncate. The properties:
 *
 * - the parser never throws out of push(), whatever the bytes and however they are cut;
 * - it never holds more than the limits: parser.bufferedBytes ≤ the message limit (maxPayload, or
 *   its deflate bound for a compressed message) + one control payload + header bytes, after every chunk;
 * - the outcome (events, and the error if any) is the same for every chunking of the same bytes;
 * - an error is reported at most once, nothing follows it or a close frame, and its close code is
 *   the one of its row of spec/errors.yaml: 1002, 1007 or 1009;
 * - a valid stream yields exactly its messages, pings, pongs and close, and no error;
 * - with compression, compressed messages are inflated by a PerMessageDeflate with a small
 *   maxPayload: a valid stream round-trips, a bomb ends in 1009, corrupt data in 1007, and no
 *   inflated message is ever larger than maxPayload; every zlib context is released.
 *
 * Seeded (FUZZ_SEED, default fixed) so CI runs the same cases every time; FUZZ_RUNS scales the
 * number of cases (`make fuzz` runs many more).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import zlib from 'node:zlib';
import { FrameParser, isValidUtf8, type ParsedFrame, type ParserOptions } from '../../runtime/codec/index.js';
import { PerMessageDeflate, liveZlibContexts } from '../../runtime/extensions/permessage-deflate.js';
import { WebSocketProtocolError, protocolError } from '../../runtime/errors.js';
import { protocolErrors } from '../../generated/protocol.generated.js';

const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : 0x5eed;
/** Cases per synchronous property; the compression properties run a tenth of that. */
const RUNS = Number(process.env.FUZZ_RUNS ?? 3000);
const LIMIT = 4096;
/** The parser's bound for a compressed message (its deflate worst case), as in runtime/codec/parser.ts. */
const COMPRESSED_LIMIT = LIMIT + Math.ceil(LIMIT / 8) + Math.ceil(LIMIT / 64) + 9;
/** Header scratch (≤ 8) and one control payload (≤ 125) may be held on top of a message. */
const SLACK = 8 + 125;

type Role = 'server' | 'client';

// ------------------------------------------------------------------ an encoder of our own

interface FrameSpec {
  fin: boolean;
  rsv: number;
  opcode: number;
  payload: Buffer;
  maskKey: Buffer;
}

/** Encodes frames, masked when `masked` (a client's frames), recording where each header starts. */
function encode(frames: FrameSpec[], masked: boolean): { bytes: Buffer; headers: number[] } {
  const parts: Buffer[] = [];
  const headers: number[] = [];
  let offset = 0;
  for (const f of frames) {
    const n = f.payload.length;
    const header = Buffer.alloc(2 + (n < 126 ? 0 : n < 65536 ? 2 : 8) + (masked ? 4 : 0));
    header[0] = (f.fin ? 0x80 : 0) | (f.rsv << 4) | f.opcode;
    let at = 2;
    if (n < 126) header[1] = n;
    else if (n < 65536) {
      header[1] = 126;
      header.writeUInt16BE(n, 2);
      at = 4;
    } else {
      header[1] = 127;
      header.writeBigUInt64BE(BigInt(n), 2);
      at = 10;
    }
    let payload = f.payload;
    if (masked) {
      header[1]! |= 0x80;
      f.maskKey.copy(header, at);
      payload = Buffer.from(f.payload.map((b, i) => b ^ f.maskKey[i & 3]!));
    }
    headers.push(offset);
    parts.push(header, payload);
    offset += header.length + payload.length;
  }
  return { bytes: Buffer.concat(parts), headers };
}

function deflate(data: Buffer): Buffer {
  const out = zlib.deflateRawSync(data, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  return out.subarray(0, out.length - 4);
}

// ------------------------------------------------------------------ valid streams

interface MessageSpec {
  binary: boolean;
  payload: Buffer;
  compressed: boolean;
  /** Where the (possibly compressed) payload is cut into frames. */
  cuts: number[];
  /** Control frames inserted after the frame of the same index. */
  controls: { opcode: 0x9 | 0xa; payload: Buffer; after: number }[];
}

interface StreamSpec {
  messages: MessageSpec[];
  close: { code: number; reason: string } | null;
  /** Bytes after the close frame (ignored by the receiver). */
  trailing: Buffer;
  masks: Buffer[];
}

const validCloseCodes = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999];

const controlArb = fc.record({
  opcode: fc.constantFrom(0x9 as const, 0xa as const),
  payload: fc.uint8Array({ maxLength: 125 }).map((a) => Buffer.from(a)),
  after: fc.nat({ max: 6 }),
});

function messageArb(compression: boolean): fc.Arbitrary<MessageSpec> {
  return fc.record({
    binary: fc.boolean(),
    text: fc.string({ unit: 'binary', maxLength: 400 }),
    bytes: fc.uint8Array({ maxLength: 1200 }),
    // Compressible payloads too, so that compressed messages span several frames or come near the limit.
    repeat: fc.oneof(fc.constant(1), fc.integer({ min: 2, max: 8 })),
    compressed: compression ? fc.boolean() : fc.constant(false),
    cuts: fc.array(fc.nat({ max: 2000 }), { maxLength: 5 }),
    controls: fc.array(controlArb, { maxLength: 3 }),
  }).map(({ binary, text, bytes, repeat, compressed, cuts, controls }) => {
    let payload: Buffer;
    if (binary) payload = Buffer.concat(Array(repeat).fill(Buffer.from(bytes))).subarray(0, LIMIT);
    else {
      // Valid UTF-8 of at most LIMIT bytes (a lone surrogate is encoded as U+FFFD: still valid).
      let s = text.repeat(repeat);
      while (Buffer.byteLength(s) > LIMIT) s = s.slice(0, Math.floor(s.length * 0.9));
      payload = Buffer.from(s);
    }
    return { binary, payload, compressed, cuts, controls };
  });
}

function streamArb(compression: boolean): fc.Arbitrary<StreamSpec> {
  return fc.record({
    messages: fc.array(messageArb(compression), { maxLength: 6 }),
    close: fc.option(fc.record({ code: fc.constantFrom(...validCloseCodes), reason: fc.string({ maxLength: 30 }) }), { nil: null }),
    trailing: fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
    masks: fc.array(fc.uint8Array({ minLength: 4, maxLength: 4 }).map((a) => Buffer.from(a)), { minLength: 1, maxLength: 8 }),
  });
}

/** Turns a stream spec into frames (in order) and the events a receiver must report. */
function framesOf(spec: StreamSpec): { frames: FrameSpec[]; expected: Ev[] } {
  const frames: FrameSpec[] = [];
  const expected: Ev[] = [];
  let maskIndex = 0;
  const mask = () => spec.masks[maskIndex++ % spec.masks.length]!;
  for (const m of spec.messages) {
    const wire = m.compressed ? deflate(m.payload) : m.payload;
    const cuts = [...new Set(m.cuts.map((c) => c % (wire.length + 1)))].sort((a, b) => a - b);
    const pieces: Buffer[] = [];
    let from = 0;
    for (const cut of cuts) {
      pieces.push(wire.subarray(from, cut));
      from = cut;
    }
    pieces.push(wire.subarray(from));
    pieces.forEach((piece, i) => {
      frames.push({ fin: i === pieces.length - 1, rsv: i === 0 && m.compressed ? 4 : 0, opcode: i === 0 ? (m.binary ? 2 : 1) : 0, payload: piece, maskKey: mask() });
      for (const c of m.controls) {
        // Control frames may come between the fragments of a message (RFC 6455 5.4), not after its last.
        if (c.after === i && i < pieces.length - 1) {
          frames.push({ fin: true, rsv: 0, opcode: c.opcode, payload: c.payload, maskKey: mask() });
          expected.push({ type: c.opcode === 0x9 ? 'ping' : 'pong', data: c.payload.toString('hex') });
        }
      }
    });
    expected.push({ type: 'message', binary: m.binary, data: m.payload.toString('hex') });
  }
  if (spec.close) {
    // At most 30 code points: at most 120 bytes of reason, within a control frame's 125.
    const body = Buffer.alloc(2);
    body.writeUInt16BE(spec.close.code);
    const payload = Buffer.concat([body, Buffer.from(spec.close.reason)]);
    frames.push({ fin: true, rsv: 0, opcode: 0x8, payload, maskKey: mask() });
    expected.push({ type: 'close', code: spec.close.code, data: payload.subarray(2).toString('hex') });
  }
  return { frames, expected };
}

// ------------------------------------------------------------------ mutations

type Mutation =
  | { kind: 'flip'; at: number; xor: number }
  | { kind: 'header'; frame: number; byte: 0 | 1; xor: number }
  | { kind: 'length'; frame: number; form: 126 | 127; value: bigint }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; count: number }
  | { kind: 'duplicate'; at: number; count: number }
  | { kind: 'truncate'; at: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant('header' as const), frame: fc.nat(), byte: fc.constantFrom(0 as const, 1 as const), xor: fc.integer({ min: 1, max: 255 }) }),
  fc.record({
    kind: fc.constant('length' as const),
    frame: fc.nat(),
    form: fc.constantFrom(126 as const, 127 as const),
    value: fc.oneof(fc.bigInt({ min: 0n, max: 70000n }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.constantFrom(2n ** 63n, 2n ** 53n, 2n ** 32n, 65535n, 125n)),
  }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
);

function mutate(bytes: Buffer, headers: number[], mutations: Mutation[]): Buffer {
  let out = Buffer.from(bytes);
  for (const m of mutations) {
    if (out.length === 0) break;
    const header = headers.length > 0 ? Math.min(headers[('frame' in m ? m.frame : 0) % headers.length]!, out.length - 1) : 0;
    switch (m.kind) {
      case 'flip':
        out[m.at % out.length]! ^= m.xor;
        break;
      case 'header':
        if (header + m.byte < out.length) out[header + m.byte]! ^= m.xor;
        break;
      case 'length': {
        if (header + 1 >= out.length) break;
        const field = Buffer.alloc(m.form === 126 ? 2 : 8);
        if (m.form === 126) field.writeUInt16BE(Number(m.value % 65536n));
        else field.writeBigUInt64BE(m.value);
        const b1 = (out[header + 1]! & 0x80) | m.form;
        out = Buffer.concat([out.subarray(0, header + 1), Buffer.from([b1]), field, out.subarray(header + 2)]);
        break;
      }
      case 'insert': {
        const at = m.at % (out.length + 1);
        out = Buffer.concat([out.subarray(0, at), Buffer.from(m.bytes), out.subarray(at)]);
        break;
      }
      case 'delete': {
        const at = m.at % out.length;
        out = Buffer.concat([out.subarray(0, at), out.subarray(at + m.count)]);
        break;
      }
      case 'duplicate': {
        const at = m.at % out.length;
        out = Buffer.concat([out.subarray(0, at + m.count), out.subarray(at)]);
        break;
      }
      case 'truncate':
        out = out.subarray(0, m.at % out.length);
        break;
    }
  }
  return out;
}

/** Cuts `bytes` into chunks of the given sizes, cycling; no sizes: one chunk. Every chunk is a fresh copy (the parser unmasks in place). */
function chunk(bytes: Buffer, sizes: number[]): Buffer[] {
  if (sizes.length === 0) return [Buffer.from(bytes)];
  const out: Buffer[] = [];
  let at = 0;
  let i = 0;
  while (at < bytes.length) {
    const size = sizes[i++ % sizes.length]!;
    out.push(Buffer.from(bytes.subarray(at, at + size)));
    at += size;
  }
  return out;
}

const chunkingArb = fc.oneof(
  fc.constant([] as number[]),
  fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 8 }),
  fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 8 }),
);

// ------------------------------------------------------------------ running the parser

type Ev =
  | { type: 'message'; binary: boolean; data: string; compressed?: boolean }
  | { type: 'frame'; fin: boolean; opcode: number; rsv1: boolean; data: string }
  | { type: 'ping' | 'pong'; data: string }
  | { type: 'close'; code: number | undefined; data: string }
  | { type: 'error'; id: string };

interface Outcome {
  events: Ev[];
  error: WebSocketProtocolError | null;
  maxBuffered: number;
  /** Raw compressed payloads, in event order (for the inflating stage). */
  compressed: Buffer[];
}

function run(options: ParserOptions, chunks: Buffer[]): Outcome {
  const events: Ev[] = [];
  const compressed: Buffer[] = [];
  let error: WebSocketProtocolError | null = null;
  let ended = false;
  const after = (what: string) => {
    if (ended) throw new Error(`${what} after ${error ? 'an error' : 'a close frame'}`);
  };
  const parser = new FrameParser(options, {
    onMessage(data, isBinary, isCompressed) {
      after('a message');
      events.push({ type: 'message', binary: isBinary, data: isCompressed ? '' : data.toString('hex'), compressed: isCompressed });
      if (isCompressed) compressed.push(Buffer.from(data));
    },
    onFrame(frame: ParsedFrame) {
      after('a frame');
      events.push({ type: 'frame', fin: frame.fin, opcode: frame.opcode, rsv1: frame.rsv1, data: frame.payload.toString('hex') });
    },
    onPing(payload) {
      after('a ping');
      events.push({ type: 'ping', data: payload.toString('hex') });
    },
    onPong(payload) {
      after('a pong');
      events.push({ type: 'pong', data: payload.toString('hex') });
    },
    onClose(code, _reason, payload) {
      after('a close');
      ended = true;
      events.push({ type: 'close', code, data: payload.subarray(2).toString('hex') });
    },
    onError(e) {
      after('an error');
      ended = true;
      error = e;
      events.push({ type: 'error', id: e.id });
    },
  });
  let maxBuffered = 0;
  for (const c of chunks) {
    // Never throws out of its API: an exception here fails the property.
    parser.push(c);
    maxBuffered = Math.max(maxBuffered, parser.bufferedBytes);
  }
  return { events, error, maxBuffered, compressed };
}

/** How often each outcome was seen (printed with FUZZ_STATS=1): the properties must not pass on trivial cases. */
const seen = new Map<string, number>();
const count = (what: string) => seen.set(what, (seen.get(what) ?? 0) + 1);

function checkError(error: WebSocketProtocolError | null): void {
  count(error === null ? 'no error' : error.id);
  if (error === null) return;
  expect(error).to.be.instanceOf(WebSocketProtocolError);
  const row = protocolErrors[error.id];
  expect(row, `row ${error.id}`).to.not.equal(undefined);
  expect(error.closeCode).to.equal(row.closeCode);
  expect(error.code).to.equal(row.code);
  expect(row.closeCode).to.be.oneOf([1002, 1007, 1009]);
  expect(row.stage).to.be.oneOf(['frame', 'message']);
}

const limitsArb = fc.record({
  maxFrameSize: fc.constantFrom(0, 0, 64, 1000),
  maxFragments: fc.constantFrom(0, 16384, 3, 50),
  maxBufferedChunks: fc.constantFrom(0, 262144, 2, 16),
  assembleFragments: fc.boolean(),
  skipUtf8Validation: fc.constantFrom(false, false, true),
});

function parserOptions(role: Role, rsv1Allowed: boolean, limits: Partial<ParserOptions> = {}): ParserOptions {
  return { role, maxPayload: LIMIT, maxFrameSize: 0, maxFragments: 0, maxBufferedChunks: 0, skipUtf8Validation: false, rsv1Allowed, assembleFragments: true, ...limits };
}

function settings(runs: number): { seed: number; numRuns: number; endOnFailure: boolean } {
  return { seed: SEED, numRuns: Math.max(1, Math.round(runs)), endOnFailure: true };
}

// ------------------------------------------------------------------ inflating, as the connection does

async function inflateInOrder(role: Role, outcome: Outcome): Promise<{ messages: Ev[]; error: WebSocketProtocolError | null }> {
  const deflater = new PerMessageDeflate(
    { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 },
    role,
    {},
    LIMIT,
  );
  const messages: Ev[] = [];
  let compressedIndex = 0;
  try {
    for (const event of outcome.events) {
      if (event.type === 'error') return { messages, error: outcome.error };
      if (event.type !== 'message') continue;
      if (!event.compressed) {
        messages.push(event);
        continue;
      }
      const data = outcome.compressed[compressedIndex++]!;
      const result = await new Promise<{ error: Error | null; out?: Buffer }>((resolve) => deflater.decompress(data, (error, out) => resolve({ error, out })));
      if (result.error) {
        expect(result.error).to.be.instanceOf(WebSocketProtocolError);
        return { messages, error: result.error as WebSocketProtocolError };
      }
      // RFC 7692 8.1: the limit applies to the inflated size.
      expect(result.out!.length).to.be.at.most(LIMIT);
      count('inflated');
      // RFC 6455 8.1: text is checked once inflated (runtime/websocket.ts does the same).
      if (!event.binary && !isValidUtf8(result.out!)) return { messages, error: protocolError('invalidUtf8') };
      messages.push({ type: 'message', binary: event.binary, data: result.out!.toString('hex') });
    }
    return { messages, error: null };
  } finally {
    deflater.cleanup();
  }
}

// ------------------------------------------------------------------ the properties

describe('codec fuzzing (fast-check)', function () {
  this.timeout(600_000);

  after(() => {
    if (process.env.FUZZ_STATS) console.log([...seen.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}: ${v}`).join('\n'));
    // Every kind of outcome the mutations can reach was reached (a generator that only produced
    // valid or only trivially broken streams would not get here).
    for (const id of ['no error', 'inflated', 'reservedOpcode', 'unexpectedRsv1', 'unexpectedRsv23', 'invalidUtf8', 'messageTooBig', 'frameTooBig', 'tooManyFragments', 'nonMinimalPayloadLength', 'payloadLengthMsbSet', 'inflateFailed', 'inflatedTooBig', 'expectedContinuation', 'unexpectedContinuation']) {
      expect(seen.get(id) ?? 0, `outcomes: ${JSON.stringify([...seen])}`).to.be.greaterThan(0);
    }
  });

  for (const role of ['server', 'client'] as const) {
    const masked = role === 'server';
    describe(`parsing as a ${role}`, () => {
      it('a valid stream, however it is chunked, yields exactly its messages, controls and close, and no error', () => {
        fc.assert(
          fc.property(streamArb(false), chunkingArb, (spec, sizes) => {
            const { frames, expected } = framesOf(spec);
            const { bytes } = encode(frames, masked);
            const stream = spec.close ? Buffer.concat([bytes, spec.trailing]) : bytes;
            const outcome = run(parserOptions(role, false), chunk(stream, sizes));
            expect(outcome.error).to.equal(null);
            expect(outcome.events.map((e) => (e.type === 'message' ? { type: e.type, binary: e.binary, data: e.data } : e))).to.deep.equal(expected);
            expect(outcome.maxBuffered).to.be.at.most(LIMIT + SLACK);
          }),
          settings(RUNS),
        );
      });

      it('mutated streams: no throw, bounded buffering, the same outcome under any chunking, the right close code', () => {
        fc.assert(
          fc.property(streamArb(false), fc.array(mutationArb, { minLength: 1, maxLength: 4 }), chunkingArb, limitsArb, fc.boolean(), (spec, mutations, sizes, limits, rsv1Allowed) => {
            const { frames } = framesOf(spec);
            const { bytes, headers } = encode(frames, masked);
            const stream = mutate(Buffer.concat([bytes, spec.trailing]), headers, mutations);
            // maxBufferedChunks counts the pieces the bytes arrive in: it is the one limit whose outcome
            // depends on the chunking, so it is left to the random-bytes property.
            const options = parserOptions(role, rsv1Allowed, { ...limits, maxBufferedChunks: 0 });
            const whole = run(options, chunk(stream, []));
            const cut = run(options, chunk(stream, sizes));
            checkError(cut.error);
            expect(cut.events).to.deep.equal(whole.events);
            expect(cut.maxBuffered).to.be.at.most((rsv1Allowed ? COMPRESSED_LIMIT : LIMIT) + SLACK);
          }),
          settings(RUNS),
        );
      });

      it('random bytes: no throw, bounded buffering, the right close code', () => {
        fc.assert(
          fc.property(fc.uint8Array({ maxLength: 3000 }), chunkingArb, limitsArb, fc.boolean(), (bytes, sizes, limits, rsv1Allowed) => {
            const outcome = run(parserOptions(role, rsv1Allowed, limits), chunk(Buffer.from(bytes), sizes));
            checkError(outcome.error);
            expect(outcome.maxBuffered).to.be.at.most((rsv1Allowed ? COMPRESSED_LIMIT : LIMIT) + SLACK);
          }),
          settings(RUNS),
        );
      });

      describe('with permessage-deflate (compressed messages inflated with maxPayload ' + LIMIT + ')', () => {
        let contexts: number;
        before(() => (contexts = liveZlibContexts()));
        after(() => expect(liveZlibContexts(), 'zlib contexts left open').to.equal(contexts));

        it('a valid stream round-trips: every compressed message inflates to what was sent', async () => {
          await fc.assert(
            fc.asyncProperty(streamArb(true), chunkingArb, async (spec, sizes) => {
              const { frames, expected } = framesOf(spec);
              const { bytes } = encode(frames, masked);
              const outcome = run(parserOptions(role, true), chunk(bytes, sizes));
              expect(outcome.error).to.equal(null);
              expect(outcome.maxBuffered).to.be.at.most(COMPRESSED_LIMIT + SLACK);
              const { messages, error } = await inflateInOrder(role, outcome);
              expect(error).to.equal(null);
              expect(messages.map((m) => (m.type === 'message' ? { type: m.type, binary: m.binary, data: m.data } : m))).to.deep.equal(expected.filter((e) => e.type === 'message'));
            }),
            settings(RUNS / 10),
          );
        });

        it('a compressed message inflating beyond maxPayload (a bomb) ends in 1009, without inflating it all', async () => {
          await fc.assert(
            fc.asyncProperty(fc.integer({ min: LIMIT + 1, max: 64 * LIMIT }), fc.integer({ min: 0, max: 255 }), chunkingArb, async (size, fill, sizes) => {
              const bomb = deflate(Buffer.alloc(size, fill));
              const { bytes } = encode([{ fin: true, rsv: 4, opcode: 2, payload: bomb, maskKey: Buffer.from([1, 2, 3, 4]) }], masked);
              const outcome = run(parserOptions(role, true), chunk(bytes, sizes));
              expect(outcome.error).to.equal(null);
              const { error } = await inflateInOrder(role, outcome);
              checkError(error);
              expect(error?.id).to.equal('inflatedTooBig');
              expect(error?.closeCode).to.equal(1009);
            }),
            settings(RUNS / 20),
          );
        });

        it('mutated compressed streams: the parser or the inflater ends in 1002, 1007 or 1009, never larger than maxPayload', async () => {
          await fc.assert(
            fc.asyncProperty(streamArb(true), fc.array(mutationArb, { minLength: 1, maxLength: 3 }), chunkingArb, async (spec, mutations, sizes) => {
              const { frames } = framesOf(spec);
              const { bytes, headers } = encode(frames, masked);
              const stream = mutate(bytes, headers, mutations);
              const outcome = run(parserOptions(role, true), chunk(stream, sizes));
              checkError(outcome.error);
              expect(outcome.maxBuffered).to.be.at.most(COMPRESSED_LIMIT + SLACK);
              const { error } = await inflateInOrder(role, outcome);
              checkError(error);
            }),
            settings(RUNS / 10),
          );
        });
      });
    });
  }
});
