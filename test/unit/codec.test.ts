/**
 * The frame codec: test vectors (test/vectors/frames.json) replayed at every chunk size and at
 * random splits, serialize ⇄ parse round trips, size limits checked from the header, masking,
 * UTF-8 validation, close payloads.
 */
import { expect } from 'chai';
import { isUtf8 as nativeIsUtf8 } from 'node:buffer';
import { readFileSync } from 'node:fs';
import {
  FrameParser,
  Utf8Validator,
  applyMask,
  closePayload,
  fragmentPayload,
  frameHeader,
  isValidUtf8,
  isValidUtf8Dfa,
  serializeFrame,
  setNativeMask,
  unmask,
  unmaskRange,
  type OutgoingFrame,
  type ParserOptions,
  type ParserSink,
} from '../../runtime/codec/index.js';
import { Opcode, protocolErrors, type ProtocolErrorId } from '../../generated/protocol.generated.js';
import { WebSocketProtocolError } from '../../runtime/errors.js';

// ------------------------------------------------------------------------------------------------
// Vectors

type Expected =
  | { message: { text?: string; textHex?: string; binaryHex?: string; compressed?: boolean } }
  | { frame: { fin: boolean; opcode: number; rsv1: boolean; hex: string } }
  | { ping: string }
  | { pong: string }
  | { close: { code: number | null; reason?: string } }
  | { error: { id?: ProtocolErrorId; code: string; closeCode: number } };

interface Vector {
  name: string;
  rfc: string;
  role: 'server' | 'client';
  options?: Partial<ParserOptions>;
  hex: string;
  expect: Expected[];
}

interface VectorFile {
  groups: { section: string; title: string; vectors: Vector[] }[];
}

const vectorFile = JSON.parse(
  readFileSync(new URL('../../../test/vectors/frames.json', import.meta.url), 'utf8'),
) as VectorFile;
const allVectors = vectorFile.groups.flatMap((g) => g.vectors);

/** What the parser reported, normalized for comparison (payloads stay Buffers: some are 64 KiB). */
type Event =
  | { kind: 'message'; binary: boolean; compressed: boolean; data: Buffer }
  | { kind: 'frame'; fin: boolean; opcode: number; rsv1: boolean; data: Buffer }
  | { kind: 'ping' | 'pong'; data: Buffer }
  | { kind: 'close'; code: number | null; reason: string; raw?: Buffer }
  | { kind: 'error'; id?: string; code: string; closeCode: number };

function expectedEvents(list: Expected[]): Event[] {
  return list.map((e): Event => {
    if ('message' in e) {
      const m = e.message;
      const compressed = m.compressed === true;
      if (m.text !== undefined) return { kind: 'message', binary: false, compressed, data: Buffer.from(m.text, 'utf8') };
      if (m.textHex !== undefined) return { kind: 'message', binary: false, compressed, data: Buffer.from(m.textHex, 'hex') };
      return { kind: 'message', binary: true, compressed, data: Buffer.from(m.binaryHex!, 'hex') };
    }
    if ('frame' in e) return { kind: 'frame', fin: e.frame.fin, opcode: e.frame.opcode, rsv1: e.frame.rsv1, data: Buffer.from(e.frame.hex, 'hex') };
    if ('ping' in e) return { kind: 'ping', data: Buffer.from(e.ping, 'hex') };
    if ('pong' in e) return { kind: 'pong', data: Buffer.from(e.pong, 'hex') };
    if ('close' in e) return { kind: 'close', code: e.close.code, reason: e.close.reason ?? '' };
    return { kind: 'error', id: e.error.id, code: e.error.code, closeCode: e.error.closeCode };
  });
}

function describeEvent(e: Event | undefined): string {
  if (e === undefined) return '(none)';
  const shown = { ...e } as Record<string, unknown>;
  for (const key of ['data', 'raw']) {
    const b = shown[key];
    if (Buffer.isBuffer(b)) shown[key] = b.length > 40 ? `${b.subarray(0, 40).toString('hex')}…(${b.length} bytes)` : b.toString('hex');
  }
  return JSON.stringify(shown);
}

function sameEvent(a: Event, b: Event): boolean {
  if (a.kind !== b.kind) return false;
  switch (a.kind) {
    case 'message': {
      const o = b as typeof a;
      return a.binary === o.binary && a.compressed === o.compressed && a.data.equals(o.data);
    }
    case 'frame': {
      const o = b as typeof a;
      return a.fin === o.fin && a.opcode === o.opcode && a.rsv1 === o.rsv1 && a.data.equals(o.data);
    }
    case 'ping':
    case 'pong':
      return a.data.equals((b as typeof a).data);
    case 'close': {
      const o = b as typeof a;
      return a.code === o.code && a.reason === o.reason;
    }
    case 'error': {
      const o = b as typeof a;
      return a.code === o.code && a.closeCode === o.closeCode && (a.id === undefined || o.id === undefined || a.id === o.id);
    }
  }
}

/** Null when equal, else where they first differ. */
function compareEvents(actual: Event[], wanted: Event[]): string | null {
  const n = Math.max(actual.length, wanted.length);
  for (let i = 0; i < n; i++) {
    const a = actual[i];
    const w = wanted[i];
    if (a === undefined || w === undefined || !sameEvent(a, w)) {
      return `event ${i}: got ${describeEvent(a)}, wanted ${describeEvent(w)}`;
    }
  }
  return null;
}

function parserOptions(role: 'server' | 'client', overrides: Partial<ParserOptions> = {}): ParserOptions {
  return {
    role,
    maxPayload: 0,
    maxFrameSize: 0,
    maxFragments: 0,
    skipUtf8Validation: false,
    rsv1Allowed: false,
    assembleFragments: true,
    ...overrides,
  };
}

/** A sink that records events and checks the invariants every event must satisfy. */
function recorder(): { sink: ParserSink; events: Event[]; problems: string[] } {
  const events: Event[] = [];
  const problems: string[] = [];
  let ended = false;
  const record = (e: Event): void => {
    if (ended) problems.push(`event after the error or close: ${describeEvent(e)}`);
    events.push(e);
  };
  const sink: ParserSink = {
    onMessage(data, isBinary, compressed) {
      if (!Buffer.isBuffer(data)) problems.push('message data is not a Buffer');
      record({ kind: 'message', binary: isBinary, compressed, data });
    },
    onFrame(frame) {
      record({ kind: 'frame', fin: frame.fin, opcode: frame.opcode, rsv1: frame.rsv1, data: frame.payload });
    },
    onPing(payload) {
      record({ kind: 'ping', data: payload });
    },
    onPong(payload) {
      record({ kind: 'pong', data: payload });
    },
    onClose(code, reason, payload) {
      if (code === undefined ? payload.length !== 0 : payload.length < 2 || payload.readUInt16BE(0) !== code) {
        problems.push(`close payload ${payload.toString('hex')} does not match code ${String(code)}`);
      }
      record({ kind: 'close', code: code ?? null, reason, raw: payload });
      ended = true;
    },
    onError(error) {
      if (!(error instanceof WebSocketProtocolError)) problems.push('error is not a WebSocketProtocolError');
      const row = protocolErrors[error.id];
      if (row === undefined || row.code !== error.code || row.closeCode !== error.closeCode || row.rfc !== error.rfc) {
        problems.push(`error ${error.id} does not match its spec/errors.yaml row`);
      }
      record({ kind: 'error', id: error.id, code: error.code, closeCode: error.closeCode });
      ended = true;
    },
  };
  return { sink, events, problems };
}

/** Feeds `input` (copied: the parser unmasks in place) cut at `cuts`; returns what happened. */
function replay(
  options: ParserOptions,
  input: Buffer,
  cuts: (length: number) => number[],
  scratch?: Buffer,
): { events: Event[]; problems: string[]; parser: FrameParser } {
  // A scratch buffer may be reused between replays once their events have been checked.
  const bytes = scratch !== undefined ? scratch.subarray(0, input.length) : Buffer.allocUnsafe(input.length);
  input.copy(bytes);
  const { sink, events, problems } = recorder();
  const parser = new FrameParser(options, sink);
  let start = 0;
  for (const end of [...cuts(bytes.length), bytes.length]) {
    if (end > start) parser.push(bytes.subarray(start, end));
    start = Math.max(start, end);
  }
  const last = events[events.length - 1];
  const ended = last !== undefined && (last.kind === 'error' || last.kind === 'close');
  if (parser.stopped !== ended) problems.push(`stopped is ${parser.stopped} after ${describeEvent(last)}`);
  if (parser.bufferedBytes > bytes.length) problems.push(`bufferedBytes ${parser.bufferedBytes} > input ${bytes.length}`);
  return { events, problems, parser };
}

const everyN = (n: number) => (length: number): number[] => {
  const cuts: number[] = [];
  for (let i = n; i < length; i += n) cuts.push(i);
  return cuts;
};

/** Deterministic PRNG (mulberry32), so a failure can be reproduced. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const randomCuts = (rand: () => number) => (length: number): number[] => {
  const cuts: number[] = [];
  for (let i = 1; i < length; i++) if (rand() < 0.3) cuts.push(i);
  return cuts;
};

/** Reads one frame's extent from a header, independently of the parser. */
function frameExtent(buf: Buffer): { end: number; maskKey: Buffer | null } | null {
  if (buf.length < 2) return null;
  let length = buf[1]! & 0x7f;
  let offset = 2;
  if (length === 126) {
    if (buf.length < 4) return null;
    length = buf.readUInt16BE(2);
    offset = 4;
  } else if (length === 127) {
    if (buf.length < 10) return null;
    length = Number(buf.readBigUInt64BE(2));
    offset = 10;
  }
  let maskKey: Buffer | null = null;
  if ((buf[1]! & 0x80) !== 0) {
    maskKey = Buffer.from(buf.subarray(offset, offset + 4));
    offset += 4;
  }
  return { end: offset + length, maskKey };
}

/** The frames a peer would send to produce `events` (the opposite role masks). */
function framesFor(events: Event[], role: 'server' | 'client', fragmentAt: number): OutgoingFrame[] {
  const mask = role === 'server';
  const frames: OutgoingFrame[] = [];
  for (const e of events) {
    switch (e.kind) {
      case 'message': {
        const parts = fragmentPayload(e.data, fragmentAt);
        parts.forEach((payload, i) => {
          frames.push({
            opcode: i === 0 ? (e.binary ? Opcode.binary : Opcode.text) : Opcode.continuation,
            payload,
            fin: i === parts.length - 1,
            rsv1: i === 0 && e.compressed,
            mask,
          });
        });
        break;
      }
      case 'frame':
        frames.push({ opcode: e.opcode, payload: e.data, fin: e.fin, rsv1: e.rsv1, mask });
        break;
      case 'ping':
        frames.push({ opcode: Opcode.ping, payload: e.data, mask });
        break;
      case 'pong':
        frames.push({ opcode: Opcode.pong, payload: e.data, mask });
        break;
      case 'close':
        frames.push({ opcode: Opcode.close, payload: closePayload(e.code ?? undefined, e.reason), mask });
        break;
      case 'error':
        throw new Error('no frames for an error');
    }
  }
  return frames;
}

describe('codec: frame vectors (test/vectors/frames.json)', () => {
  it('has vectors for every rule, grouped by RFC section', () => {
    expect(allVectors.length).to.be.at.least(45);
    const ids = new Set(allVectors.flatMap((v) => v.expect.flatMap((e) => ('error' in e && e.error.id ? [e.error.id] : []))));
    const frameRules: ProtocolErrorId[] = [
      'unexpectedRsv1', 'unexpectedRsv23', 'reservedOpcode', 'fragmentedControlFrame', 'controlFrameTooLong',
      'unexpectedContinuation', 'expectedContinuation', 'expectedMask', 'unexpectedMask', 'payloadLengthMsbSet',
      'nonMinimalPayloadLength', 'payloadLengthUnsupported', 'messageTooBig', 'frameTooBig', 'tooManyFragments',
      'closePayloadOneByte', 'invalidCloseCode', 'invalidUtf8',
    ];
    for (const id of frameRules) expect(ids.has(id), `a vector for ${id}`).to.equal(true);
    for (const v of allVectors) {
      for (const e of v.expect) {
        if ('error' in e) {
          const row = protocolErrors[e.error.id!];
          expect(row, `${v.name}: error id`).to.not.equal(undefined);
          expect([row.code, row.closeCode], v.name).to.deep.equal([e.error.code, e.error.closeCode]);
        }
      }
    }
  });

  for (const group of vectorFile.groups) {
    describe(`${group.section} — ${group.title}`, () => {
      for (const vector of group.vectors) {
        it(vector.name, () => {
          const input = Buffer.from(vector.hex, 'hex');
          const options = parserOptions(vector.role, vector.options);
          const wanted = expectedEvents(vector.expect);
          const scratch = Buffer.alloc(input.length);
          // Every chunk size from 1 to the whole input.
          for (let size = 1; size <= Math.max(1, input.length); size++) {
            const { events, problems } = replay(options, input, everyN(size), scratch);
            expect(problems, `chunk size ${size}`).to.deep.equal([]);
            const diff = compareEvents(events, wanted);
            if (diff !== null) expect.fail(`chunk size ${size}: ${diff}`);
          }
          // And irregular splits.
          const rand = prng(input.length * 7919 + vector.name.length);
          for (let round = 0; round < 10; round++) {
            const { events, problems } = replay(options, input, randomCuts(rand));
            expect(problems, `random split ${round}`).to.deep.equal([]);
            const diff = compareEvents(events, wanted);
            if (diff !== null) expect.fail(`random split ${round}: ${diff}`);
          }
        });
      }
    });
  }
});

describe('codec: serialize ⇄ parse round trips', () => {
  const valid = allVectors.filter((v) => !v.expect.some((e) => 'error' in e) && v.expect.length > 0);

  it('serializing the expected events re-parses to the same events (whole and fragmented)', () => {
    expect(valid.length).to.be.at.least(40);
    for (const vector of valid) {
      const wanted = expectedEvents(vector.expect);
      const hasFrames = wanted.some((e) => e.kind === 'frame');
      for (const fragmentAt of hasFrames ? [0] : [0, 1, 3, 100]) {
        // Re-framing changes frame sizes and counts, so only the message-size limit is kept.
        const options = parserOptions(vector.role, { ...vector.options, maxFragments: 0, maxFrameSize: 0 });
        const bytes = Buffer.concat(framesFor(wanted, vector.role, fragmentAt).flatMap(serializeFrame));
        for (const size of [1, 2, 7, bytes.length]) {
          const { events, problems } = replay(options, bytes, everyN(size));
          expect(problems, vector.name).to.deep.equal([]);
          const diff = compareEvents(events, wanted);
          if (diff !== null) expect.fail(`${vector.name} (fragments of ${fragmentAt}, chunks of ${size}): ${diff}`);
        }
      }
    }
  });

  it('serializing a parsed single frame with its mask key reproduces the vector bytes', () => {
    let checked = 0;
    for (const vector of valid) {
      const input = Buffer.from(vector.hex, 'hex');
      const extent = frameExtent(input);
      if (extent === null || extent.end !== input.length) continue; // not exactly one frame
      const { events } = replay(parserOptions(vector.role, { ...vector.options, assembleFragments: false }), input, () => []);
      expect(events, vector.name).to.have.length(1);
      const e = events[0]!;
      let frame: OutgoingFrame;
      if (e.kind === 'frame') frame = { opcode: e.opcode, fin: e.fin, rsv1: e.rsv1, payload: e.data };
      else if (e.kind === 'ping') frame = { opcode: Opcode.ping, payload: e.data };
      else if (e.kind === 'pong') frame = { opcode: Opcode.pong, payload: e.data };
      else if (e.kind === 'close') frame = { opcode: Opcode.close, payload: e.raw! };
      else throw new Error(`${vector.name}: unexpected ${e.kind}`);
      if (extent.maskKey !== null) {
        frame.mask = true;
        frame.maskKey = extent.maskKey;
      }
      const out = Buffer.concat(serializeFrame(frame));
      expect(out.toString('hex'), vector.name).to.equal(vector.hex);
      checked++;
    }
    expect(checked).to.be.at.least(40);
  });

  it('round-trips random frames of every length class, masked and not, at random chunkings', () => {
    const rand = prng(42);
    for (let i = 0; i < 300; i++) {
      // Half with the native masking addon (when installed), half with the JavaScript loops.
      setNativeMask(i % 3 !== 0);
      const length = [0, 1, 125, 126, 127, 65535, 65536, 70000][i % 8]!;
      const payload = Buffer.alloc(length);
      for (let j = 0; j < length; j++) payload[j] = Math.floor(rand() * 256);
      const role: 'server' | 'client' = i % 2 === 0 ? 'server' : 'client';
      const bytes = Buffer.concat(serializeFrame({ opcode: Opcode.binary, payload, mask: role === 'server' }));
      const original = Buffer.from(payload);
      const { events } = replay(parserOptions(role), bytes, length > 1000 ? everyN(1 + Math.floor(rand() * 5000)) : randomCuts(rand));
      expect(payload.equals(original), 'serializeFrame left the payload alone').to.equal(true);
      expect(compareEvents(events, [{ kind: 'message', binary: true, compressed: false, data: payload }])).to.equal(null);
    }
    setNativeMask(true);
  });
});

// ------------------------------------------------------------------------------------------------
// Parser behaviour beyond the vectors

describe('codec: FrameParser limits and memory', () => {
  const GiB = 1024 * 1024 * 1024;
  const MiB = 1024 * 1024;
  // Header of a masked binary frame announcing 1 GiB: 82 FF <64-bit length> <mask>.
  const hugeHeader = Buffer.from('82ff0000000040000000a1b2c3d4', 'hex');

  it('refuses a frame announcing 1 GiB with maxPayload 1 MiB from its header alone', () => {
    const { sink, events } = recorder();
    const parser = new FrameParser(parserOptions('server', { maxPayload: MiB }), sink);
    parser.push(hugeHeader.subarray(0, 10)); // not even the mask yet
    expect(events).to.have.length(1);
    expect(events[0]).to.include({ kind: 'error', code: 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH', closeCode: 1009 });
    expect(parser.stopped).to.equal(true);
    expect(parser.bufferedBytes).to.equal(0);
    parser.push(Buffer.alloc(MiB));
    expect(events).to.have.length(1);
    expect(parser.bufferedBytes).to.equal(0);
  });

  it('refuses a frame over maxFrameSize from its header, before its payload', () => {
    const { sink, events } = recorder();
    const parser = new FrameParser(parserOptions('server', { maxFrameSize: MiB }), sink);
    for (const byte of hugeHeader.subarray(0, 10)) parser.push(Buffer.from([byte]));
    expect(events.map((e) => e.kind === 'error' && e.code)).to.deep.equal(['WS_ERR_FRAME_TOO_BIG']);
    expect(parser.bufferedBytes).to.equal(0);
  });

  it('without limits, a 1 GiB announcement allocates nothing up front: only received bytes are held', () => {
    const { sink, events } = recorder();
    const parser = new FrameParser(parserOptions('server'), sink);
    const before = process.memoryUsage().arrayBuffers;
    parser.push(Buffer.from(hugeHeader));
    parser.push(Buffer.alloc(1000));
    expect(events).to.deep.equal([]);
    expect(parser.bufferedBytes).to.equal(1000);
    expect(process.memoryUsage().arrayBuffers - before).to.be.below(GiB / 8);
  });

  it('accounts buffered bytes: header pieces, partial frames, open messages, and releases them', () => {
    const { sink, events } = recorder();
    const parser = new FrameParser(parserOptions('client'), sink);
    parser.push(Buffer.from([0x01])); // half a header
    expect(parser.bufferedBytes).to.equal(1);
    parser.push(Buffer.from([0x05, 0x61, 0x62])); // text, FIN clear, 5 bytes: 2 received
    expect(parser.bufferedBytes).to.equal(2);
    parser.push(Buffer.from('cde')); // first fragment complete
    expect(parser.bufferedBytes).to.equal(5);
    parser.push(Buffer.from([0x89, 0x03, 0x70])); // a ping in the middle, 1 of 3 bytes
    expect(parser.bufferedBytes).to.equal(6);
    parser.push(Buffer.from('qr'));
    expect(parser.bufferedBytes).to.equal(5);
    parser.push(Buffer.from([0x80, 0x01, 0x66]));
    expect(parser.bufferedBytes).to.equal(0);
    expect(compareEvents(events, [
      { kind: 'ping', data: Buffer.from('pqr') },
      { kind: 'message', binary: false, compressed: false, data: Buffer.from('abcdef') },
    ])).to.equal(null);
  });

  it('delivers a single-frame message as a view of the chunk (no copy), unmasked in place', () => {
    const chunk = Buffer.from('818537fa213d7f9f4d5158', 'hex');
    let got: Buffer | undefined;
    const parser = new FrameParser(parserOptions('server'), { ...recorder().sink, onMessage: (data) => (got = data) });
    parser.push(chunk);
    expect(got!.toString()).to.equal('Hello');
    expect(got!.buffer).to.equal(chunk.buffer);
    expect(got!.byteOffset).to.equal(chunk.byteOffset + 6);
  });

  it('ignores everything after a close frame, in the same chunk and later ones', () => {
    const { sink, events } = recorder();
    const parser = new FrameParser(parserOptions('client'), sink);
    parser.push(Buffer.from('880203e8' + '810161' + 'ff', 'hex'));
    parser.push(Buffer.from('810162', 'hex'));
    expect(events.map((e) => e.kind)).to.deep.equal(['close']);
    expect(parser.stopped).to.equal(true);
    expect(parser.bufferedBytes).to.equal(0);
  });

  it('reports an error once and then stays silent, whatever follows', () => {
    const { sink, events } = recorder();
    const parser = new FrameParser(parserOptions('client'), sink);
    parser.push(Buffer.from('f0', 'hex'));
    parser.push(Buffer.from('00', 'hex')); // RSV2|RSV3 set: error here
    parser.push(Buffer.from('830000c0af', 'hex'));
    expect(events.map((e) => e.kind === 'error' && e.id)).to.deep.equal(['unexpectedRsv23']);
  });

  it('fails on bad UTF-8 in the first fragment before the rest arrives, even mid-frame', () => {
    const { sink, events } = recorder();
    const parser = new FrameParser(parserOptions('client'), sink);
    // Text, FIN clear, 100 bytes announced; only the first 10 arrive, with 0xFF at byte 5.
    parser.push(Buffer.concat([Buffer.from([0x01, 100]), Buffer.from('abcde'), Buffer.from([0xff]), Buffer.from('ghij')]));
    expect(events.map((e) => e.kind === 'error' && e.code)).to.deep.equal(['WS_ERR_INVALID_UTF8']);
  });

  it('setRsv1Allowed turns permessage-deflate framing on and off', () => {
    const { sink, events } = recorder();
    const parser = new FrameParser(parserOptions('client'), sink);
    parser.setRsv1Allowed(true);
    parser.push(Buffer.from('c103010203', 'hex'));
    expect(compareEvents(events, [{ kind: 'message', binary: false, compressed: true, data: Buffer.from('010203', 'hex') }])).to.equal(null);
    parser.setRsv1Allowed(false);
    parser.push(Buffer.from('c10101', 'hex'));
    expect(events[1]).to.include({ kind: 'error', id: 'unexpectedRsv1' });
  });

  it('accepts push() from inside a callback and keeps the byte order', () => {
    const order: string[] = [];
    let parser: FrameParser;
    const sink: ParserSink = {
      ...recorder().sink,
      onMessage(data) {
        order.push(data.toString());
        if (data.toString() === 'a') parser.push(Buffer.from('810163', 'hex')); // "c", after "b"
      },
      onPing(payload) {
        order.push(`ping:${payload.toString()}`);
      },
    };
    parser = new FrameParser(parserOptions('client'), sink);
    parser.push(Buffer.from('810161' + '890170' + '810162', 'hex'));
    expect(order).to.deep.equal(['a', 'ping:p', 'b', 'c']);
  });

  it('stops and rethrows when a sink callback throws, instead of losing its place', () => {
    const seen: string[] = [];
    const parser = new FrameParser(parserOptions('client'), {
      ...recorder().sink,
      onMessage(data) {
        seen.push(data.toString());
        if (data.toString() === 'boom') throw new Error('sink failure');
      },
    });
    expect(() => parser.push(Buffer.from('810161' + '8104626f6f6d' + '810162', 'hex'))).to.throw('sink failure');
    expect(parser.stopped).to.equal(true);
    parser.push(Buffer.from('810163', 'hex'));
    expect(seen).to.deep.equal(['a', 'boom']);
  });

  it('rejects invalid options', () => {
    const sink = recorder().sink;
    expect(() => new FrameParser(parserOptions('server', { maxPayload: -1 }), sink)).to.throw(RangeError);
    expect(() => new FrameParser(parserOptions('server', { maxFragments: Number.NaN }), sink)).to.throw(RangeError);
    expect(() => new FrameParser({ ...parserOptions('server'), role: 'peer' as 'server' }, sink)).to.throw(TypeError);
  });

  it('never throws and reports at most one error for random byte streams at random chunkings', () => {
    const rand = prng(2024);
    for (let i = 0; i < 3000; i++) {
      const length = 1 + Math.floor(rand() * 200);
      const bytes = Buffer.alloc(length);
      for (let j = 0; j < length; j++) bytes[j] = Math.floor(rand() * 256);
      // Bias the first header towards plausible frames so deeper states are reached.
      if (i % 2 === 0) {
        bytes[0] = (rand() < 0.5 ? 0x80 : 0) | [0, 1, 2, 8, 9, 10][Math.floor(rand() * 6)]!;
        bytes[1] = (i % 4 === 0 ? 0x80 : 0) | Math.floor(rand() * 128);
      }
      const options = parserOptions(i % 4 === 0 ? 'server' : 'client', {
        maxPayload: i % 3 === 0 ? 50 : 0,
        rsv1Allowed: i % 5 === 0,
        assembleFragments: i % 7 !== 0,
      });
      const { events, problems } = replay(options, bytes, randomCuts(rand));
      expect(problems).to.deep.equal([]);
      expect(events.filter((e) => e.kind === 'error').length).to.be.at.most(1);
    }
  });
});

// ------------------------------------------------------------------------------------------------
// Serializer

describe('codec: serializer', () => {
  it('encodes 7-, 16- and 64-bit lengths minimally', () => {
    expect(frameHeader(Opcode.text, 0, true, false, null).toString('hex')).to.equal('8100');
    expect(frameHeader(Opcode.binary, 125, true, false, null).toString('hex')).to.equal('827d');
    expect(frameHeader(Opcode.binary, 126, true, false, null).toString('hex')).to.equal('827e007e');
    expect(frameHeader(Opcode.binary, 65535, false, false, null).toString('hex')).to.equal('027effff');
    expect(frameHeader(Opcode.binary, 65536, true, true, null).toString('hex')).to.equal('c27f0000000000010000');
    expect(frameHeader(Opcode.continuation, 2 ** 53 - 1, true, false, null).toString('hex')).to.equal('807f001fffffffffffff');
    expect(frameHeader(Opcode.ping, 5, true, false, Buffer.from('37fa213d', 'hex')).toString('hex')).to.equal('898537fa213d');
    expect(frameHeader(Opcode.binary, 300, true, false, Buffer.from('01020304', 'hex')).toString('hex')).to.equal('82fe012c01020304');
  });

  it('rejects headers that cannot be encoded', () => {
    expect(() => frameHeader(16, 0, true, false, null)).to.throw(RangeError);
    expect(() => frameHeader(1, -1, true, false, null)).to.throw(RangeError);
    expect(() => frameHeader(1, 2 ** 53, true, false, null)).to.throw(RangeError);
    expect(() => frameHeader(1, 1, true, false, Buffer.alloc(3))).to.throw(RangeError);
  });

  it('reproduces the RFC 6455 5.7 examples', () => {
    const hello = Buffer.from('Hello');
    expect(Buffer.concat(serializeFrame({ opcode: Opcode.text, payload: hello })).toString('hex')).to.equal('810548656c6c6f');
    expect(Buffer.concat(serializeFrame({ opcode: Opcode.text, payload: hello, maskKey: Buffer.from('37fa213d', 'hex') })).toString('hex'))
      .to.equal('818537fa213d7f9f4d5158');
    expect(Buffer.concat(serializeFrame({ opcode: Opcode.text, payload: Buffer.from('Hel'), fin: false })).toString('hex')).to.equal('010348656c');
    expect(Buffer.concat(serializeFrame({ opcode: Opcode.continuation, payload: Buffer.from('lo') })).toString('hex')).to.equal('80026c6f');
    expect(Buffer.concat(serializeFrame({ opcode: Opcode.pong, payload: hello, mask: true, maskKey: Buffer.from('37fa213d', 'hex') })).toString('hex'))
      .to.equal('8a8537fa213d7f9f4d5158');
  });

  it('copies small payloads next to the header, returns large unmasked ones without copying', () => {
    const small = Buffer.alloc(16 * 1024 - 1, 1);
    const smallOut = serializeFrame({ opcode: Opcode.binary, payload: small });
    expect(smallOut).to.have.length(1);
    expect(smallOut[0]!.length).to.equal(4 + small.length);
    const large = Buffer.alloc(16 * 1024, 2);
    const largeOut = serializeFrame({ opcode: Opcode.binary, payload: large });
    expect(largeOut).to.have.length(2);
    expect(largeOut[1]).to.equal(large);
    expect(largeOut[0]!.toString('hex')).to.equal('827e4000');
  });

  it('never mutates the caller payload when masking, at any alignment', () => {
    for (const length of [1, 3, 31, 32, 33, 100, 16 * 1024, 70000]) {
      for (const shift of [0, 1, 2, 3]) {
        const backing = Buffer.alloc(length + shift);
        for (let i = 0; i < backing.length; i++) backing[i] = (i * 13) & 0xff;
        const payload = backing.subarray(shift);
        const copy = Buffer.from(payload);
        const key = Buffer.from([0x12, 0x34, 0x56, 0x78]);
        const out = Buffer.concat(serializeFrame({ opcode: Opcode.binary, payload, maskKey: key }));
        expect(payload.equals(copy)).to.equal(true);
        const extent = frameExtent(out)!;
        expect(extent.end).to.equal(out.length);
        expect(extent.maskKey!.equals(key)).to.equal(true);
        const body = Buffer.from(out.subarray(out.length - length));
        for (let i = 0; i < length; i++) body[i]! ^= key[i & 3]!;
        expect(body.equals(copy), `length ${length}, shift ${shift}`).to.equal(true);
      }
    }
  });

  it('draws a fresh random masking key for each masked frame when none is given', () => {
    const keys = new Set<string>();
    const payload = Buffer.from('abcd');
    for (let i = 0; i < 5000; i++) {
      const out = serializeFrame({ opcode: Opcode.text, payload, mask: true })[0]!;
      expect(out[1]! & 0x80).to.equal(0x80);
      const key = out.subarray(2, 6);
      keys.add(key.toString('hex'));
      const body = Buffer.from(out.subarray(6));
      unmask(body, key);
      expect(body.toString()).to.equal('abcd');
    }
    // 5000 draws from 2^32 values: a handful of collisions at most, never a repeating pool.
    expect(keys.size).to.be.at.least(4990);
  });

  it('refuses frames RFC 6455 forbids sending', () => {
    expect(() => serializeFrame({ opcode: Opcode.ping, payload: Buffer.alloc(126) })).to.throw(RangeError);
    expect(() => serializeFrame({ opcode: Opcode.close, payload: Buffer.alloc(2), fin: false })).to.throw(RangeError);
    expect(() => serializeFrame({ opcode: Opcode.pong, payload: Buffer.alloc(0), rsv1: true })).to.throw(RangeError);
    expect(() => serializeFrame({ opcode: Opcode.continuation, payload: Buffer.alloc(1), rsv1: true })).to.throw(RangeError);
    expect(() => serializeFrame({ opcode: Opcode.text, payload: Buffer.alloc(1), maskKey: Buffer.alloc(5) })).to.throw(RangeError);
    expect(serializeFrame({ opcode: Opcode.ping, payload: Buffer.alloc(125) })[0]!.length).to.equal(127);
  });

  it('closePayload encodes code and reason and enforces RFC 6455 5.5 / 7.4', () => {
    expect(closePayload(undefined, '').length).to.equal(0);
    expect(closePayload(1000, '').toString('hex')).to.equal('03e8');
    expect(closePayload(4999, 'bye').toString('hex')).to.equal('1387627965');
    expect(closePayload(1001, 'é').toString('hex')).to.equal('03e9c3a9');
    expect(closePayload(1000, 'r'.repeat(123)).length).to.equal(125);
    expect(() => closePayload(1000, 'r'.repeat(124))).to.throw(TypeError);
    expect(closePayload(1000, 'é'.repeat(61) + 'x').length).to.equal(125);
    expect(() => closePayload(1000, 'é'.repeat(62))).to.throw(TypeError);
    for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65536, 1000.5, Number.NaN]) {
      expect(() => closePayload(code, ''), `code ${code}`).to.throw(TypeError);
    }
    for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000]) {
      expect(closePayload(code, 'x').readUInt16BE(0)).to.equal(code);
    }
    expect(() => closePayload(undefined, 'no code')).to.throw(TypeError);
  });

  it('fragmentPayload splits into views of at most threshold bytes', () => {
    const payload = Buffer.from('abcdefghij');
    expect(fragmentPayload(payload, 0)).to.deep.equal([payload]);
    expect(fragmentPayload(payload, 10)).to.deep.equal([payload]);
    const parts = fragmentPayload(payload, 3);
    expect(parts.map((p) => p.toString())).to.deep.equal(['abc', 'def', 'ghi', 'j']);
    for (const p of parts) expect(p.buffer).to.equal(payload.buffer);
    expect(fragmentPayload(Buffer.alloc(0), 4).map((p) => p.length)).to.deep.equal([0]);
    expect(() => fragmentPayload(payload, -1)).to.throw(RangeError);
    expect(() => fragmentPayload(payload, 1.5)).to.throw(RangeError);
  });
});

// ------------------------------------------------------------------------------------------------
// Masking

const nativeMaskAvailable = setNativeMask(true);

for (const backend of nativeMaskAvailable ? ['bufferutil', 'js'] : ['js']) describe(`codec: mask (${backend})`, () => {
  before(() => {
    expect(setNativeMask(backend === 'bufferutil')).to.equal(backend === 'bufferutil');
  });
  after(() => {
    setNativeMask(true);
  });
  const key = Buffer.from([0xa1, 0xb2, 0xc3, 0xd4]);
  const reference = (data: Uint8Array, offset = 0): Buffer => Buffer.from(data.map((b, i) => b ^ key[(i + offset) & 3]!));

  it('applyMask matches the per-byte definition for every length and alignment', () => {
    const rand = prng(7);
    for (const length of [0, 1, 2, 3, 4, 5, 31, 32, 33, 63, 64, 65, 1000, 4099]) {
      for (let srcShift = 0; srcShift < 4; srcShift++) {
        for (let outShift = 0; outShift < 4; outShift++) {
          const srcBacking = Buffer.alloc(length + srcShift);
          for (let i = 0; i < srcBacking.length; i++) srcBacking[i] = Math.floor(rand() * 256);
          const source = srcBacking.subarray(srcShift);
          const before = Buffer.from(source);
          const output = Buffer.alloc(length + outShift + 8, 0xee);
          applyMask(source, key, output, outShift + 3, length);
          expect(source.equals(before)).to.equal(true);
          expect(output.subarray(outShift + 3, outShift + 3 + length).equals(reference(before)), `len ${length} ${srcShift}/${outShift}`).to.equal(true);
          expect(output.subarray(0, outShift + 3).every((b) => b === 0xee)).to.equal(true);
          expect(output.subarray(outShift + 3 + length).every((b) => b === 0xee)).to.equal(true);
        }
      }
    }
  });

  it('unmask is in place and its own inverse; unmaskRange continues the mask at an offset', () => {
    const rand = prng(8);
    for (const length of [0, 1, 7, 32, 33, 63, 64, 100, 5000]) {
      for (let shift = 0; shift < 4; shift++) {
        const backing = Buffer.alloc(length + shift);
        for (let i = 0; i < backing.length; i++) backing[i] = Math.floor(rand() * 256);
        const data = backing.subarray(shift);
        const original = Buffer.from(data);
        unmask(data, key);
        expect(data.equals(reference(original))).to.equal(true);
        unmask(data, key);
        expect(data.equals(original)).to.equal(true);
        for (const offset of [1, 2, 3, 6]) {
          const copy = Buffer.from(original);
          unmaskRange(copy, key, 0, length, offset);
          expect(copy.equals(reference(original, offset)), `len ${length} offset ${offset}`).to.equal(true);
        }
        // Piece by piece at random cuts equals all at once, and bytes outside a range are untouched.
        const pieces = Buffer.from(original);
        let start = 0;
        while (start < length) {
          const end = Math.min(length, start + 1 + Math.floor(rand() * 70));
          const outside = Buffer.concat([pieces.subarray(0, start), pieces.subarray(end)]);
          unmaskRange(pieces, key, start, end, start);
          expect(Buffer.concat([pieces.subarray(0, start), pieces.subarray(end)]).equals(outside)).to.equal(true);
          start = end;
        }
        expect(pieces.equals(reference(original))).to.equal(true);
      }
    }
  });
});

// ------------------------------------------------------------------------------------------------
// UTF-8

describe('codec: UTF-8 validation', () => {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const strict = (bytes: Uint8Array): boolean => {
    try {
      decoder.decode(bytes);
      return true;
    } catch {
      return false;
    }
  };
  const byBytes = (bytes: Uint8Array): boolean => {
    const v = new Utf8Validator();
    for (let i = 0; i < bytes.length; i++) if (!v.push(bytes, i, i + 1)) return false;
    return v.finish();
  };

  it('agrees with a strict decoder on every 1- and 2-byte sequence', () => {
    const buf = new Uint8Array(2);
    for (let a = 0; a < 256; a++) {
      expect(isValidUtf8Dfa(buf.subarray(0, 1).fill(a)), `${a}`).to.equal(strict(new Uint8Array([a])));
      for (let b = 0; b < 256; b++) {
        buf[0] = a;
        buf[1] = b;
        const want = strict(buf);
        if (isValidUtf8Dfa(buf) !== want || byBytes(buf) !== want) expect.fail(`bytes ${a.toString(16)} ${b.toString(16)}: want ${want}`);
      }
    }
  });

  it('agrees with Node\'s native validator on every 3-byte sequence after the tricky lead bytes', () => {
    // TextDecoder throws on each invalid input, far too slow for 720 000 of them; buffer.isUtf8
    // (simdutf) is an independent strict implementation.
    const strict = nativeIsUtf8;
    const buf = new Uint8Array(3);
    for (const a of [0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf4, 0xf5]) {
      for (let b = 0; b < 256; b++) {
        for (let c = 0; c < 256; c++) {
          buf[0] = a;
          buf[1] = b;
          buf[2] = c;
          const want = strict(buf);
          if (isValidUtf8Dfa(buf) !== want) expect.fail(`bytes ${a.toString(16)} ${b.toString(16)} ${c.toString(16)}: want ${want}`);
        }
      }
    }
  });

  it('agrees with a strict decoder on 4-byte sequences around U+10000 and U+10FFFF', () => {
    const buf = new Uint8Array(4);
    for (const a of [0xf0, 0xf1, 0xf3, 0xf4, 0xf5]) {
      for (let b = 0x70; b < 0xd0; b++) {
        for (const c of [0x00, 0x7f, 0x80, 0xbf, 0xc0]) {
          for (const d of [0x41, 0x80, 0x9f, 0xbf, 0xc0]) {
            buf.set([a, b, c, d]);
            const want = strict(buf);
            if (isValidUtf8Dfa(buf) !== want || byBytes(buf) !== want) {
              expect.fail(`bytes ${[a, b, c, d].map((x) => x.toString(16)).join(' ')}: want ${want}`);
            }
          }
        }
      }
    }
  });

  it('agrees with a strict decoder on random near-UTF-8 text, whole and pushed in random pieces', () => {
    const rand = prng(99);
    const encoder = new TextEncoder();
    for (let i = 0; i < 3000; i++) {
      let text = '';
      const chars = Math.floor(rand() * 120);
      for (let j = 0; j < chars; j++) {
        const r = rand();
        const cp = r < 0.5 ? Math.floor(rand() * 0x80) : r < 0.7 ? 0x80 + Math.floor(rand() * 0x780) : r < 0.9 ? 0x800 + Math.floor(rand() * 0xd000) : 0x10000 + Math.floor(rand() * 0x100000);
        text += String.fromCodePoint(cp >= 0xd800 && cp <= 0xdfff ? 0x41 : cp);
      }
      const bytes = Buffer.from(encoder.encode(text));
      // Corrupt about half of them: flip a byte, truncate, or insert a surrogate / overlong.
      if (i % 2 === 1 && bytes.length > 0) {
        const at = Math.floor(rand() * bytes.length);
        const how = i % 6;
        if (how === 1) bytes[at] = Math.floor(rand() * 256);
        else if (how === 3) bytes[at] = [0xc0, 0xed, 0xf4, 0xf8, 0x80][Math.floor(rand() * 5)]!;
        else bytes[at] = 0xff;
      }
      const input = i % 10 === 9 ? bytes.subarray(0, Math.floor(bytes.length / 2)) : bytes;
      const want = strict(input);
      expect(isValidUtf8(input), `whole #${i}`).to.equal(want);
      expect(isValidUtf8Dfa(input), `dfa #${i}`).to.equal(want);
      const v = new Utf8Validator();
      let ok = true;
      let start = 0;
      while (start < input.length && ok) {
        const end = Math.min(input.length, start + 1 + Math.floor(rand() * (rand() < 0.5 ? 8 : 200)));
        ok = v.push(input, start, end);
        start = end;
      }
      expect(ok && v.finish(), `pieces #${i}`).to.equal(want);
    }
  });

  it('push answers false at the first byte that makes the input invalid', () => {
    const cases: [string, number][] = [
      ['61c0', 1], // C0 can never start a sequence
      ['61f5', 1],
      ['6180', 1], // stray continuation
      ['e080', 1], // overlong 3-byte
      ['eda0', 1], // surrogate
      ['f490', 1], // above U+10FFFF
      ['e28241', 2], // truncated by ASCII
      ['cebae1bdb9cf83cebcceb5eda080656469746564', 12], // Autobahn 6.3.1: κόσμε then U+D800
    ];
    for (const [hex, at] of cases) {
      const bytes = Buffer.from(hex, 'hex');
      const v = new Utf8Validator();
      for (let i = 0; i < bytes.length; i++) {
        const ok = v.push(bytes, i, i + 1);
        expect(ok, `${hex}: byte ${i}`).to.equal(i < at);
        if (!ok) break;
      }
      expect(v.push(Buffer.from('a')), `${hex}: stays failed`).to.equal(false);
      v.reset();
      expect(v.push(Buffer.from('a')) && v.finish(), `${hex}: reset`).to.equal(true);
    }
  });

  it('treats a sequence cut by the end of a piece as pending, not invalid, until finish()', () => {
    const v = new Utf8Validator();
    const euro = Buffer.from('e282ac', 'hex');
    expect(v.push(euro, 0, 2)).to.equal(true);
    expect(v.finish()).to.equal(false);
    expect(v.push(euro, 2, 3)).to.equal(true);
    expect(v.finish()).to.equal(true);
    // Same through the long (native) path: 100 ASCII bytes then half a 4-byte sequence.
    const long = Buffer.concat([Buffer.alloc(100, 0x61), Buffer.from('f09f', 'hex')]);
    const w = new Utf8Validator();
    expect(w.push(long)).to.equal(true);
    expect(w.finish()).to.equal(false);
    expect(w.push(Buffer.from('9880', 'hex'))).to.equal(true);
    expect(w.finish()).to.equal(true);
    // And an invalid byte deep inside a long piece is caught by that path.
    const bad = Buffer.concat([Buffer.alloc(100, 0x61), Buffer.from('c0af', 'hex'), Buffer.alloc(100, 0x62)]);
    expect(new Utf8Validator().push(bad)).to.equal(false);
    // Four trailing continuation bytes can never be valid, whatever follows.
    const tail = Buffer.concat([Buffer.alloc(100, 0x61), Buffer.from('80808080', 'hex')]);
    expect(new Utf8Validator().push(tail)).to.equal(false);
  });

  it('validates the Autobahn section 6 classics', () => {
    const valid = ['cebae1bdb9cf83cebcceb5', 'f48fbfbf', 'efbfbf', 'ed9fbf', 'ee8080', '00', ''];
    const invalid = ['cebae1bdb9cf83cebcceb5eda080656469746564', 'f4908080', 'c0af', 'e080af', 'f08080af', 'eda080edb080', 'fe', 'ff', 'f8888080af', 'fc84808080af', 'cebae1bdb9cf83cebcceb5f4908080656469746564'];
    for (const hex of valid) expect(isValidUtf8(Buffer.from(hex, 'hex')), hex).to.equal(true);
    for (const hex of invalid) expect(isValidUtf8(Buffer.from(hex, 'hex')), hex).to.equal(false);
  });
});
