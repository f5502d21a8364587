/**
 * permessage-deflate (RFC 7692): negotiation for both roles, and a per-connection compressor whose
 * memory stays bounded — the message-size limit applies to the INFLATED size and is enforced while
 * inflating, so a small frame that would inflate to gigabytes is stopped at the limit (1009); and
 * zlib work is limited process-wide (concurrencyLimit), so thousands of connections compressing at
 * once queue instead of fragmenting memory. No I/O: the connection hands bytes in and gets bytes
 * back through callbacks.
 */
import zlib from 'node:zlib';
import type { ExtensionOffer } from '../handshake/headers.js';
import { protocolError, type WebSocketProtocolError } from '../errors.js';

export const EXTENSION_NAME = 'permessage-deflate';

/** The permessage-deflate setting (spec/settings.yaml perMessageDeflate / clientPerMessageDeflate). */
export interface DeflateConfig {
  serverNoContextTakeover?: boolean;
  clientNoContextTakeover?: boolean;
  serverMaxWindowBits?: number;
  clientMaxWindowBits?: number;
  memLevel?: number;
  level?: number;
  threshold?: number;
  concurrencyLimit?: number;
  /** ws's zlibDeflateOptions: level, memLevel, strategy, chunkSize (windowBits is negotiated). */
  zlibDeflateOptions?: Record<string, unknown>;
  /** ws's zlibInflateOptions: chunkSize (windowBits is negotiated). */
  zlibInflateOptions?: Record<string, unknown>;
}

/** The zlib options taken from ws-style option objects: numbers only, and never windowBits (negotiated). */
function zlibOptions(from: Record<string, unknown> | undefined, keys: readonly string[]): zlib.ZlibOptions {
  const out: Record<string, number> = {};
  if (from && typeof from === 'object') for (const key of keys) if (typeof from[key] === 'number') out[key] = from[key] as number;
  return out;
}

/** What both ends agreed (RFC 7692 section 7.1). */
export interface NegotiatedDeflate {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number;
  clientMaxWindowBits: number;
}

const MAX_BITS = 15;
/** RFC 7692 section 7.2.1: the sender removes the 4-octet 0x00 0x00 0xff 0xff tail; the receiver appends it back. */
const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff]);

type Params = Map<string, Array<string | true>>;

/**
 * Reads one offer's (or response's) parameters, or explains why it is invalid (RFC 7692 section 7:
 * unknown parameter, invalid value, or the same parameter twice).
 */
function readParams(params: Params, side: 'offer' | 'response'): { ok: true; values: Partial<Record<string, number | true>> } | { ok: false; reason: string } {
  const values: Partial<Record<string, number | true>> = {};
  for (const [name, list] of params) {
    if (list.length > 1) return { ok: false, reason: `parameter ${name} appears more than once` };
    const value = list[0]!;
    switch (name) {
      case 'server_no_context_takeover':
      case 'client_no_context_takeover':
        if (value !== true) return { ok: false, reason: `${name} takes no value` };
        values[name] = true;
        break;
      case 'server_max_window_bits':
      case 'client_max_window_bits': {
        // client_max_window_bits may be offered without a value: "the client supports it" (7.1.2.2).
        if (value === true) {
          if (name === 'client_max_window_bits' && side === 'offer') {
            values[name] = true;
            break;
          }
          return { ok: false, reason: `${name} needs a value` };
        }
        // RFC 7692 7.1.2.1 / 7.1.2.2: "a decimal integer value without leading zeroes between 8 to
        // 15, inclusive" — so "09", "+9" or "9.0" are invalid, not 9.
        if (!/^(?:[89]|1[0-5])$/.test(value)) return { ok: false, reason: `invalid ${name} value ${JSON.stringify(value)} (8 to 15, no leading zeroes)` };
        const bits = Number(value);
        values[name] = bits;
        break;
      }
      default:
        return { ok: false, reason: `unknown parameter ${name}` };
    }
  }
  return { ok: true, values };
}

export interface ServerAcceptance {
  params: NegotiatedDeflate;
  /** The Sec-WebSocket-Extensions response element. */
  response: string;
}

/**
 * Server side: accepts the first acceptable permessage-deflate offer. An invalid offer is declined
 * (RFC 7692 section 7.1: "A server MUST decline an extension negotiation offer ... [that] has an
 * extension parameter with an invalid value ... [or] multiple extension parameters with the same
 * name"), and the next one is considered; none acceptable means no compression.
 */
export function acceptOffer(offers: readonly ExtensionOffer[], config: DeflateConfig): ServerAcceptance | undefined {
  for (const offer of offers) {
    if (offer.name !== EXTENSION_NAME) continue;
    const read = readParams(offer.params, 'offer');
    if (!read.ok) continue;
    const v = read.values;
    const configServerBits = config.serverMaxWindowBits ?? MAX_BITS;
    const configClientBits = config.clientMaxWindowBits ?? MAX_BITS;
    // The client asked us to use at most N bits: we honour it (and may use fewer).
    const serverBits = typeof v.server_max_window_bits === 'number' ? Math.min(v.server_max_window_bits, configServerBits) : configServerBits;
    // 7.1.2.2: without client_max_window_bits in the offer, the response MUST NOT limit the client;
    // so an offer without it is declined when we need the client to use a smaller window.
    if (v.client_max_window_bits === undefined && configClientBits < MAX_BITS) continue;
    const clientBits = typeof v.client_max_window_bits === 'number' ? Math.min(v.client_max_window_bits, configClientBits) : configClientBits;
    const params: NegotiatedDeflate = {
      serverNoContextTakeover: v.server_no_context_takeover === true || config.serverNoContextTakeover === true,
      clientNoContextTakeover: v.client_no_context_takeover === true || config.clientNoContextTakeover === true,
      serverMaxWindowBits: serverBits,
      clientMaxWindowBits: clientBits,
    };
    const parts = [EXTENSION_NAME];
    if (params.serverNoContextTakeover) parts.push('server_no_context_takeover');
    if (params.clientNoContextTakeover) parts.push('client_no_context_takeover');
    if (typeof v.server_max_window_bits === 'number' || serverBits < MAX_BITS) parts.push(`server_max_window_bits=${serverBits}`);
    if (v.client_max_window_bits !== undefined && (typeof v.client_max_window_bits === 'number' || clientBits < MAX_BITS)) parts.push(`client_max_window_bits=${clientBits}`);
    return { params, response: parts.join('; ') };
  }
  return undefined;
}

/** Client side: the offer to send, from the client's setting. */
export function buildOffer(config: DeflateConfig): string {
  const parts = [EXTENSION_NAME];
  if (config.serverNoContextTakeover) parts.push('server_no_context_takeover');
  if (config.clientNoContextTakeover) parts.push('client_no_context_takeover');
  if (config.serverMaxWindowBits !== undefined && config.serverMaxWindowBits < MAX_BITS) parts.push(`server_max_window_bits=${config.serverMaxWindowBits}`);
  // Announce that we can honour a client window limit; a configured limit is sent as its value.
  parts.push(config.clientMaxWindowBits !== undefined && config.clientMaxWindowBits < MAX_BITS ? `client_max_window_bits=${config.clientMaxWindowBits}` : 'client_max_window_bits');
  return parts.join('; ');
}

/**
 * Client side: checks the server's response against what was offered (RFC 7692 section 7.1: the
 * client MUST _Fail the WebSocket Connection_ on a response it cannot accept).
 */
export function acceptResponse(extensions: readonly ExtensionOffer[], config: DeflateConfig): { ok: true; params: NegotiatedDeflate | undefined } | { ok: false; error: WebSocketProtocolError } {
  const ours = extensions.filter((e) => e.name === EXTENSION_NAME);
  if (ours.length === 0) return { ok: true, params: undefined };
  if (ours.length > 1) return { ok: false, error: protocolError('unexpectedExtension', 'permessage-deflate accepted more than once') };
  const read = readParams(ours[0]!.params, 'response');
  if (!read.ok) return { ok: false, error: protocolError('unexpectedExtension', read.reason) };
  const v = read.values;
  const offeredServerBits = config.serverMaxWindowBits ?? MAX_BITS;
  if (typeof v.server_max_window_bits === 'number' && v.server_max_window_bits > offeredServerBits) {
    return { ok: false, error: protocolError('unexpectedExtension', 'server_max_window_bits larger than offered') };
  }
  if (config.serverNoContextTakeover && v.server_no_context_takeover !== true) {
    return { ok: false, error: protocolError('unexpectedExtension', 'server_no_context_takeover was requested but not accepted') };
  }
  const offeredClientBits = config.clientMaxWindowBits ?? MAX_BITS;
  if (typeof v.client_max_window_bits === 'number' && v.client_max_window_bits > offeredClientBits) {
    return { ok: false, error: protocolError('unexpectedExtension', 'client_max_window_bits larger than offered') };
  }
  return {
    ok: true,
    params: {
      serverNoContextTakeover: v.server_no_context_takeover === true,
      clientNoContextTakeover: v.client_no_context_takeover === true || config.clientNoContextTakeover === true,
      serverMaxWindowBits: typeof v.server_max_window_bits === 'number' ? v.server_max_window_bits : MAX_BITS,
      clientMaxWindowBits: typeof v.client_max_window_bits === 'number' ? v.client_max_window_bits : offeredClientBits,
    },
  };
}

// ------------------------------------------------------------------ zlib work, bounded

/** A FIFO of zlib jobs, at most `limit` running at once across the whole process. */
class ZlibLimiter {
  private running = 0;
  private readonly queue: (() => void)[] = [];
  limit = 10;

  run(job: (done: () => void) => void): void {
    const start = () => {
      this.running++;
      let finished = false;
      job(() => {
        if (finished) return;
        finished = true;
        this.running--;
        const next = this.queue.shift();
        if (next) next();
      });
    };
    if (this.running < this.limit) start();
    else this.queue.push(start);
  }

  get pending(): number {
    return this.queue.length;
  }
}

export const zlibLimiter = new ZlibLimiter();

/** Runs jobs one after another, each starting when the previous one calls next(). */
class SerialQueue {
  private busy = false;
  private readonly waiting: ((next: () => void) => void)[] = [];

  run(job: (next: () => void) => void): void {
    if (this.busy) {
      this.waiting.push(job);
      return;
    }
    this.busy = true;
    const next = () => {
      const following = this.waiting.shift();
      if (following) following(next);
      else this.busy = false;
    };
    job(next);
  }
}

type Done = (error: Error | null, data?: Buffer) => void;

/** zlib streams of every connection, created and not yet closed (each holds its window and state). */
let liveContexts = 0;

/** How many zlib contexts (inflaters and deflaters) are open in this process: 0 once every compressed connection is closed. */
export function liveZlibContexts(): number {
  return liveContexts;
}

function opened<T extends zlib.InflateRaw | zlib.DeflateRaw>(stream: T): T {
  liveContexts++;
  return stream;
}

/** Closes a zlib stream (freeing its native memory once any write in progress returns). */
function release(stream: zlib.InflateRaw | zlib.DeflateRaw | null): void {
  if (stream === null || (stream as { _wirestateReleased?: boolean })._wirestateReleased) return;
  (stream as { _wirestateReleased?: boolean })._wirestateReleased = true;
  liveContexts--;
  stream.close();
}

function closedError(): Error {
  return new Error('the connection is closed');
}

/**
 * Compression state of one connection. Deflates outgoing messages and inflates incoming ones,
 * keeping (or resetting, without context takeover) each direction's LZ77 window as negotiated.
 */
export class PerMessageDeflate {
  private inflater: zlib.InflateRaw | null = null;
  private deflater: zlib.DeflateRaw | null = null;
  /**
   * Each direction is one zlib stream, so its messages must go through it one at a time, in order:
   * two messages on the same stream at once would interleave their output.
   */
  private readonly inflateQueue = new SerialQueue();
  private readonly deflateQueue = new SerialQueue();
  private closed = false;
  private readonly ownNoContextTakeover: boolean;
  private readonly peerNoContextTakeover: boolean;
  private readonly ownWindowBits: number;
  private readonly peerWindowBits: number;

  constructor(
    readonly params: NegotiatedDeflate,
    readonly role: 'server' | 'client',
    private readonly config: DeflateConfig,
    /** Largest inflated message, in bytes; 0 = no limit. */
    private readonly maxPayload: number,
  ) {
    const server = role === 'server';
    this.ownNoContextTakeover = server ? params.serverNoContextTakeover : params.clientNoContextTakeover;
    this.peerNoContextTakeover = server ? params.clientNoContextTakeover : params.serverNoContextTakeover;
    this.ownWindowBits = server ? params.serverMaxWindowBits : params.clientMaxWindowBits;
    this.peerWindowBits = server ? params.clientMaxWindowBits : params.serverMaxWindowBits;
    if (config.concurrencyLimit) zlibLimiter.limit = Math.max(1, config.concurrencyLimit);
  }

  /** Messages shorter than the threshold are sent uncompressed. */
  get threshold(): number {
    return this.config.threshold ?? 1024;
  }

  /** The value of Sec-WebSocket-Extensions describing this negotiation (for `ws.extensions`). */
  describe(): Record<string, unknown> {
    return { [EXTENSION_NAME]: { ...this.params } };
  }

  /**
   * Inflates one compressed message (all its frames' payloads, in order). Fails with
   * inflatedTooBig (1009) as soon as the output passes maxPayload — before it is all produced —
   * and with inflateFailed (1007) on a corrupt stream.
   */
  decompress(data: Buffer, done: Done): void {
    this.runJob(this.inflateQueue, done, (finishJob) => this.inflate(data, finishJob));
  }

  /**
   * Runs one zlib job of one direction: after the previous message of that direction (one zlib
   * stream takes one message at a time), within the process-wide concurrency limit, and never
   * after the connection closed. `finish` releases both and reports, once.
   */
  private runJob(queue: SerialQueue, done: Done, job: (finish: Done) => void): void {
    queue.run((next) =>
      zlibLimiter.run((free) => {
        let finished = false;
        const finish: Done = (error, out) => {
          if (finished) return;
          finished = true;
          free();
          next();
          done(error, out);
        };
        if (this.closed) return finish(closedError());
        job(finish);
      }),
    );
  }

  private inflate(data: Buffer, done: Done): void {
    // A window at least as large as the peer's (RFC 7692 section 7.1.2.2); 8 is read as 9 by zlib.
    try {
      this.inflater ??= opened(zlib.createInflateRaw({ ...zlibOptions(this.config.zlibInflateOptions, ['chunkSize']), windowBits: Math.max(9, this.peerWindowBits) }));
    } catch (error) {
      // zlib refused the application's options: the message cannot be read.
      return done(protocolError('inflateFailed', (error as Error).message));
    }
    const inflater = this.inflater;
    const chunks: Buffer[] = [];
    let size = 0;
    let finished = false;
    const finish = (error: Error | null, out?: Buffer) => {
      if (finished) return;
      finished = true;
      inflater.removeListener('data', onData);
      inflater.removeListener('error', onError);
      done(error, out);
    };
    const fail = (error: WebSocketProtocolError) => {
      // A stream that failed (or was cut short) cannot continue: the connection closes anyway.
      // Closing it inside 'data' stops zlib at once: nothing more is inflated (a bomb costs at
      // most maxPayload plus one zlib chunk).
      if (this.inflater === inflater) this.inflater = null;
      release(inflater);
      finish(error);
    };
    const onData = (chunk: Buffer) => {
      if (finished) return;
      size += chunk.length;
      // RFC 7692 section 8.1 ("a malicious peer can send a small compressed message that
      // inflates into a huge one"): the limit applies to the inflated size, while inflating.
      if (this.maxPayload > 0 && size > this.maxPayload) {
        fail(protocolError('inflatedTooBig', `more than ${this.maxPayload} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onError = (error: Error) => fail(protocolError('inflateFailed', error.message));
    inflater.on('data', onData);
    inflater.on('error', onError);
    inflater.write(data);
    // RFC 7692 section 7.2.2: "Append 4 octets of 0x00 0x00 0xff 0xff to the tail end of the payload of the message."
    inflater.write(TRAILER);
    inflater.flush((error?: Error | null) => {
      if (finished) return;
      // Closed meanwhile (cleanup on close): what came out is not a whole message.
      if (error || this.closed) return finish(closedError());
      if (this.peerNoContextTakeover) {
        // RFC 7692 section 7.1.1.2: the peer resets its context after each message; so do we.
        this.inflater = null;
        release(inflater);
      }
      finish(null, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
    });
  }

  /** Deflates one message; the result has the 0x00 0x00 0xff 0xff tail removed (RFC 7692 section 7.2.1). */
  compress(data: Buffer, done: Done): void {
    this.runJob(this.deflateQueue, done, (finishJob) => this.deflate(data, finishJob));
  }

  private deflate(data: Buffer, done: Done): void {
    try {
      this.deflater ??= opened(
        zlib.createDeflateRaw({
          memLevel: this.config.memLevel ?? 8,
          level: this.config.level ?? zlib.constants.Z_DEFAULT_COMPRESSION,
          ...zlibOptions(this.config.zlibDeflateOptions, ['level', 'memLevel', 'strategy', 'chunkSize']),
          windowBits: Math.max(9, this.ownWindowBits),
        }),
      );
    } catch (error) {
      // zlib refused the application's options: the send fails (its callback gets the error).
      return done(error as Error);
    }
    const deflater = this.deflater;
    const chunks: Buffer[] = [];
    let size = 0;
    let finished = false;
    const finish = (error: Error | null, out?: Buffer) => {
      if (finished) return;
      finished = true;
      deflater.removeListener('data', onData);
      deflater.removeListener('error', onError);
      done(error, out);
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
    };
    const onError = (error: Error) => {
      if (this.deflater === deflater) this.deflater = null;
      release(deflater);
      finish(error);
    };
    deflater.on('data', onData);
    deflater.on('error', onError);
    deflater.write(data);
    deflater.flush(zlib.constants.Z_SYNC_FLUSH, (error?: Error | null) => {
      if (finished) return;
      if (error || this.closed) return finish(error ?? closedError());
      let out = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
      // RFC 7692 section 7.2.1: "Remove 4 octets (that are 0x00 0x00 0xff 0xff) from the tail end."
      if (out.length >= 4 && out.subarray(out.length - 4).equals(TRAILER)) out = out.subarray(0, out.length - 4);
      if (this.ownNoContextTakeover) {
        // RFC 7692 section 7.1.1.1: without context takeover, each message starts a new context.
        this.deflater = null;
        release(deflater);
      }
      finish(null, out);
    });
  }

  /** Releases the zlib contexts (on close). */
  cleanup(): void {
    this.closed = true;
    release(this.inflater);
    release(this.deflater);
    this.inflater = null;
    this.deflater = null;
  }

  /** zlib contexts this connection holds now (0, 1 or 2): none once cleanup() ran. */
  get contexts(): number {
    return (this.inflater ? 1 : 0) + (this.deflater ? 1 : 0);
  }
}
