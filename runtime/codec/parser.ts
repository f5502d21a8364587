/**
 * The sans-I/O RFC 6455 frame parser: bytes in, events out, no sockets, no timers, no promises.
 *
 * A resumable switch loop over a byte cursor (the states of ws `lib/receiver.js`: GET_INFO,
 * GET_PAYLOAD_LENGTH_16, GET_PAYLOAD_LENGTH_64, GET_MASK, GET_DATA) that gives the same events for
 * any split of the same bytes into chunks. Every rule of RFC 6455 section 5 is enforced here, at
 * the earliest byte that decides it, and every violation is reported once through `onError` as a
 * `WebSocketProtocolError` made by `protocolError()` from spec/errors.yaml; after that, or after a
 * close frame, no byte is interpreted again.
 *
 * Hot-path notes (this runs for every frame):
 * - a frame whose payload is wholly inside the current chunk is delivered as a `subarray` view of
 *   the chunk, and a single-frame message is handed over without any copy;
 * - masked payloads are unmasked IN PLACE in the caller's chunk. That mutates the chunk: acceptable
 *   because the socket owns its read buffers and hands each one to the parser only, and the views
 *   we deliver (and the fragments we keep until a message is complete) point into it. A caller that
 *   reuses its buffers must copy before `push()`;
 * - a payload that spans chunks is kept as views of each large piece (≥ 2 KiB) and small pieces are
 *   copied together into 16 KiB blocks (so a peer trickling one byte per segment cannot make us hold
 *   one Buffer object per byte); the pieces are joined once, when the message is complete (one copy,
 *   never one per frame). Nothing is allocated from the announced length, so a peer announcing
 *   2^53 bytes costs nothing until it actually sends them;
 * - control payloads (≤ 125 bytes) that span chunks are copied into one small buffer;
 * - no closures, one switch per state, header bytes read straight from the chunk when they are all
 *   there and through an 8-byte scratch buffer when a chunk boundary cuts them.
 */
import {
  Opcode,
  isControlOpcode,
  isReservedOpcode,
  isValidReceivedCloseCode,
  type ProtocolErrorId,
} from '../../generated/protocol.generated.js';
import { protocolError, type WebSocketProtocolError } from '../errors.js';
import { unmask, unmaskRange } from './mask.js';
import { Utf8Validator, isValidUtf8 } from './utf8.js';

export interface ParserOptions {
  /** A server requires masked frames, a client requires unmasked ones (RFC 6455 section 5.1). */
  role: 'server' | 'client';
  /**
   * Largest message, in bytes, summed over its fragments; 0 = no limit. Checked from each frame
   * header, before any payload byte is buffered (RFC 6455 section 10.4) → messageTooBig (1009).
   * For a compressed message (RSV1) it bounds the compressed bytes with deflate's worst-case
   * expansion added, so no message that inflates to at most maxPayload is refused here; the exact
   * check on the inflated size belongs to the inflater.
   */
  maxPayload: number;
  /** Largest payload of a single frame; 0 = no limit → frameTooBig (1009). */
  maxFrameSize: number;
  /** Most frames in one message; 0 = no limit → tooManyFragments (1009). */
  maxFragments: number;
  /**
   * Most separate pieces of payload held for the message being received (views of the peer's
   * chunks and the blocks small pieces are copied into); 0 or absent = no limit →
   * tooManyBufferedChunks (1009). The per-piece overhead is what maxPayload does not count.
   */
  maxBufferedChunks?: number;
  /** Deliver text messages and close reasons without checking their UTF-8 (as ws `skipUTF8Validation`). */
  skipUtf8Validation: boolean;
  /**
   * permessage-deflate was negotiated: RSV1 is allowed on the first frame of a data message only
   * (RFC 7692 section 6.1); on control frames and continuations it is still unexpectedRsv1.
   */
  rsv1Allowed: boolean;
  /**
   * true: deliver whole messages through onMessage. false: deliver every data frame through
   * onFrame and never onMessage (WebSocket-Node `assembleFragments: false`); text is still
   * validated incrementally, and maxPayload / maxFragments still apply to the whole message.
   */
  assembleFragments: boolean;
}

export interface ParsedFrame {
  fin: boolean;
  /** The frame's own opcode: 0 for a continuation. */
  opcode: number;
  rsv1: boolean;
  payload: Buffer;
}

export interface ParserSink {
  /**
   * A complete data message. `compressed` is true when RSV1 was set on its first frame: `data` is
   * then the raw compressed payload and its UTF-8 has NOT been checked (the inflater does that).
   */
  onMessage(data: Buffer, isBinary: boolean, compressed: boolean): void;
  /** Every data frame, when `assembleFragments` is false. */
  onFrame?(frame: ParsedFrame): void;
  onPing(payload: Buffer): void;
  onPong(payload: Buffer): void;
  /**
   * A valid close frame; the parser is stopped when this is called. `code` is undefined when the
   * payload was empty (reported to the application as 1005).
   */
  onClose(code: number | undefined, reason: string, payload: Buffer): void;
  /** The first protocol violation; the parser is stopped when this is called. */
  onError(error: WebSocketProtocolError): void;
}

const GET_INFO = 0;
const GET_PAYLOAD_LENGTH_16 = 1;
const GET_PAYLOAD_LENGTH_64 = 2;
const GET_MASK = 3;
const GET_DATA = 4;

const EMPTY: Buffer = Buffer.alloc(0);
/** Pieces at least this long are kept as views of the chunk; shorter ones are copied into a block. */
const COALESCE_BELOW = 2048;
/** Size of the blocks small pieces are copied into (never more than the frame still needs). */
const BLOCK_SIZE = 16 * 1024;
const TWO_POW_32 = 4294967296;

/**
 * The most bytes a deflate stream for `n` input bytes can take: zlib's conservative deflateBound
 * (valid for every window and memLevel), plus the 4 bytes of the empty stored block that RFC 7692
 * section 7.2.1 removes — an upper bound whatever the peer's settings.
 */
function deflateBound(n: number): number {
  return n + Math.ceil(n / 8) + Math.ceil(n / 64) + 5 + 4;
}

function checkLimit(name: string, value: number): number {
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0) {
    throw new RangeError(`ParserOptions.${name} must be a number ≥ 0 (0 = no limit), got ${String(value)}`);
  }
  return value;
}

export class FrameParser {
  private readonly _sink: ParserSink;
  private readonly _isServer: boolean;
  private readonly _maxPayload: number;
  private readonly _maxCompressed: number;
  private readonly _maxFrameSize: number;
  private readonly _maxFragments: number;
  private readonly _maxChunks: number;
  private readonly _skipUtf8: boolean;
  private readonly _assemble: boolean;
  private _rsv1Allowed: boolean;

  private _state = GET_INFO;
  private _stopped = false;

  /** Header bytes cut by a chunk boundary. */
  private readonly _hdr: Buffer = Buffer.alloc(8);
  private _hdrLen = 0;

  // The frame being read.
  private _fin = false;
  private _rsv1 = false;
  private _opcode = 0;
  private _masked = false;
  private readonly _mask: Buffer = Buffer.alloc(4);
  private _payloadLength = 0;
  /** Payload bytes of the current frame received so far, when it spans chunks. */
  private _frameReceived = 0;
  /** A control payload that spans chunks (at most 125 bytes). */
  private _ctrl: Buffer | null = null;

  // The data message being read (a fragmented one stays open across frames and control frames).
  private _inMessage = false;
  private _msgBinary = false;
  private _msgCompressed = false;
  /** Payload bytes announced so far for the message, including the current frame. */
  private _msgLength = 0;
  private _fragCount = 0;
  /** Text to validate: not compressed, not skipped. */
  private _validate = false;
  private readonly _utf8 = new Utf8Validator();
  /** Received payload pieces not yet delivered (of the message, or of the frame with onFrame). */
  private _fragments: Buffer[] = [];
  /** Payload bytes held: in `_fragments` plus the unsealed part of `_block`. */
  private _fragBytes = 0;
  /** Block that small pieces are copied into; [_blockStart, _blockEnd) is not yet in `_fragments`. */
  private _block: Buffer | null = null;
  private _blockStart = 0;
  private _blockEnd = 0;

  /** Chunks pushed by a sink callback while we were parsing; handled in order afterwards. */
  private _queue: Buffer[] | null = null;
  private _busy = false;

  constructor(options: ParserOptions, sink: ParserSink) {
    if (options.role !== 'server' && options.role !== 'client') {
      throw new TypeError(`ParserOptions.role must be 'server' or 'client', got ${String(options.role)}`);
    }
    this._sink = sink;
    this._isServer = options.role === 'server';
    this._maxPayload = checkLimit('maxPayload', options.maxPayload);
    this._maxCompressed = this._maxPayload > 0 ? deflateBound(this._maxPayload) : 0;
    this._maxFrameSize = checkLimit('maxFrameSize', options.maxFrameSize);
    this._maxFragments = checkLimit('maxFragments', options.maxFragments);
    this._maxChunks = checkLimit('maxBufferedChunks', options.maxBufferedChunks ?? 0);
    this._skipUtf8 = options.skipUtf8Validation === true;
    this._rsv1Allowed = options.rsv1Allowed === true;
    this._assemble = options.assembleFragments !== false;
  }

  /** True after a close frame or an error: push() then ignores its input (RFC 6455 5.5.1, 7.1.7). */
  get stopped(): boolean {
    return this._stopped;
  }

  /**
   * Bytes received and held but not yet delivered (header scratch, partial frames, the open
   * message, chunks queued by a re-entrant push). Allocation overhead on top is bounded: small
   * pieces share blocks of at most 16 KiB, never sized from an announced length.
   */
  get bufferedBytes(): number {
    let n = this._hdrLen + this._fragBytes;
    if (this._ctrl !== null) n += this._frameReceived;
    if (this._queue !== null) for (const chunk of this._queue) n += chunk.length;
    return n;
  }

  /** Turned on once permessage-deflate is negotiated (or off again). */
  setRsv1Allowed(v: boolean): void {
    this._rsv1Allowed = v;
  }

  /**
   * Feeds the next bytes from the peer. Never throws for any input: a violation is reported to
   * `onError` exactly once and stops the parser. Callbacks may call push() again; those bytes are
   * parsed after the current ones, in order. If a callback throws, the parser stops (its place in
   * the byte stream is lost, so nothing after could be read correctly) and the exception
   * propagates to the caller of push().
   */
  push(chunk: Buffer): void {
    if (this._stopped || chunk.length === 0) return;
    if (this._busy) {
      (this._queue ??= []).push(chunk);
      return;
    }
    this._busy = true;
    try {
      this._parse(chunk);
      // Bytes pushed from inside a callback.
      while (this._queue !== null && !this._stopped) {
        const next = this._queue.shift()!;
        if (this._queue.length === 0) this._queue = null;
        this._parse(next);
      }
    } catch (error) {
      this._stop();
      throw error;
    } finally {
      this._busy = false;
    }
  }

  private _parse(chunk: Buffer): void {
    const len = chunk.length;
    let pos = 0;
    while (pos < len && !this._stopped) {
      switch (this._state) {
        case GET_INFO: {
          if (this._hdrLen === 0 && len - pos >= 2) {
            this._getInfo(chunk[pos]!, chunk[pos + 1]!);
            pos += 2;
          } else {
            pos = this._gather(chunk, pos, 2);
            if (this._hdrLen < 2) return;
            this._hdrLen = 0;
            this._getInfo(this._hdr[0]!, this._hdr[1]!);
          }
          break;
        }
        case GET_PAYLOAD_LENGTH_16: {
          let length: number;
          if (this._hdrLen === 0 && len - pos >= 2) {
            length = (chunk[pos]! << 8) | chunk[pos + 1]!;
            pos += 2;
          } else {
            pos = this._gather(chunk, pos, 2);
            if (this._hdrLen < 2) return;
            this._hdrLen = 0;
            length = (this._hdr[0]! << 8) | this._hdr[1]!;
          }
          // RFC 6455 5.2: "the minimal number of bytes MUST be used to encode the length, for
          // example, the length of a 124-byte-long string can't be encoded as the sequence 126, 0, 124."
          if (length < 126) {
            this._fail('nonMinimalPayloadLength', `${length} bytes encoded in 16 bits`);
            return;
          }
          this._haveLength(length);
          break;
        }
        case GET_PAYLOAD_LENGTH_64: {
          let high: number;
          let low: number;
          if (this._hdrLen === 0 && len - pos >= 8) {
            high = chunk.readUInt32BE(pos);
            low = chunk.readUInt32BE(pos + 4);
            pos += 8;
          } else {
            pos = this._gather(chunk, pos, 8);
            if (this._hdrLen < 8) return;
            this._hdrLen = 0;
            high = this._hdr.readUInt32BE(0);
            low = this._hdr.readUInt32BE(4);
          }
          // RFC 6455 5.2: "If 127, the following 8 bytes interpreted as a 64-bit unsigned integer
          // (the most significant bit MUST be 0) are the payload length."
          if (high >= 0x80000000) {
            this._fail('payloadLengthMsbSet');
            return;
          }
          // RFC 6455 10.4: implementations "MUST protect themselves against exceeding those
          // limits"; a JavaScript number counts bytes exactly only up to 2^53 - 1.
          if (high > 0x1fffff) {
            this._fail('payloadLengthUnsupported', `${high} * 2^32 + ${low} bytes`);
            return;
          }
          const length = high * TWO_POW_32 + low;
          // RFC 6455 5.2: "the minimal number of bytes MUST be used to encode the length".
          if (length < 65536) {
            this._fail('nonMinimalPayloadLength', `${length} bytes encoded in 64 bits`);
            return;
          }
          this._haveLength(length);
          break;
        }
        case GET_MASK: {
          const mask = this._mask;
          if (this._hdrLen === 0 && len - pos >= 4) {
            mask[0] = chunk[pos]!;
            mask[1] = chunk[pos + 1]!;
            mask[2] = chunk[pos + 2]!;
            mask[3] = chunk[pos + 3]!;
            pos += 4;
          } else {
            pos = this._gather(chunk, pos, 4);
            if (this._hdrLen < 4) return;
            this._hdrLen = 0;
            this._hdr.copy(mask, 0, 0, 4);
          }
          this._startPayload();
          break;
        }
        case GET_DATA: {
          const received = this._frameReceived;
          const remaining = this._payloadLength - received;
          const available = len - pos;
          if (received === 0 && available >= remaining) {
            // Fast path: the whole payload is in this chunk. A view, unmasked in place (see the
            // file comment: this mutates the caller's chunk, which the socket owns).
            const payload = chunk.subarray(pos, pos + remaining);
            pos += remaining;
            if (this._masked) unmask(payload, this._mask);
            this._state = GET_INFO;
            this._frameComplete(payload, true);
            break;
          }
          const take = available < remaining ? available : remaining;
          this._payloadPiece(chunk, pos, take);
          pos += take;
          if (this._stopped) return;
          this._frameReceived = received + take;
          if (this._frameReceived === this._payloadLength) {
            this._state = GET_INFO;
            this._frameReceived = 0;
            if (this._opcode >= 0x8) {
              const payload = this._ctrl!;
              this._ctrl = null;
              if (this._masked) unmask(payload, this._mask);
              this._frameComplete(payload, false);
            } else {
              this._frameComplete(EMPTY, false);
            }
          }
          break;
        }
      }
    }
  }

  /** Copies header bytes into the scratch buffer until it holds `n`; returns the new cursor. */
  private _gather(chunk: Buffer, pos: number, n: number): number {
    const hdr = this._hdr;
    let have = this._hdrLen;
    const end = chunk.length;
    while (have < n && pos < end) hdr[have++] = chunk[pos++]!;
    this._hdrLen = have;
    return pos;
  }

  /** The first two header bytes: FIN, RSV1-3, opcode, MASK, 7-bit length. */
  private _getInfo(b0: number, b1: number): void {
    const opcode = b0 & 0x0f;
    const fin = (b0 & 0x80) !== 0;
    const rsv1 = (b0 & 0x40) !== 0;
    const masked = (b1 & 0x80) !== 0;
    const length7 = b1 & 0x7f;

    // RFC 6455 5.2 (RSV1, RSV2, RSV3): "MUST be 0 unless an extension is negotiated that defines
    // meanings for non-zero values. If a nonzero value is received and none of the negotiated
    // extensions defines the meaning of such a nonzero value, the receiving endpoint MUST _Fail
    // the WebSocket Connection_." No extension we negotiate defines RSV2 or RSV3.
    if ((b0 & 0x30) !== 0) return this._fail('unexpectedRsv23');

    // RFC 6455 5.2 (Opcode): "If an unknown opcode is received, the receiving endpoint MUST _Fail
    // the WebSocket Connection_." (0x3-0x7 and 0xB-0xF are reserved.)
    if (isReservedOpcode(opcode)) return this._fail('reservedOpcode', `opcode 0x${opcode.toString(16)}`);

    if (isControlOpcode(opcode)) {
      // RFC 7692 6.1: "An endpoint MUST NOT set the "Per-Message Compressed" bit of control
      // frames"; RFC 6455 5.2 for RSV1 when nothing was negotiated.
      if (rsv1) return this._fail('unexpectedRsv1', 'on a control frame');
      // RFC 6455 5.5: "All control frames MUST have a payload length of 125 bytes or less and
      // MUST NOT be fragmented." (5.4: "Control frames themselves MUST NOT be fragmented.")
      if (!fin) return this._fail('fragmentedControlFrame');
      if (length7 > 125) return this._fail('controlFrameTooLong');
    } else if (opcode === Opcode.continuation) {
      // RFC 6455 5.4: a fragmented message is "a single frame with the FIN bit clear and an
      // opcode other than 0, followed by zero or more frames with the FIN bit clear and the opcode
      // set to 0, and terminated by a single frame with the FIN bit set and an opcode of 0" — a
      // continuation with no such message open is a protocol error.
      if (!this._inMessage) return this._fail('unexpectedContinuation');
      // RFC 7692 6.1: "An endpoint MUST NOT set the "Per-Message Compressed" bit of ... non-first
      // fragments of a data message."
      if (rsv1) return this._fail('unexpectedRsv1', 'on a continuation frame');
      this._fragCount++;
      // RFC 6455 10.4: against "a long stream of small frames that are a part of a fragmented
      // message", implementations "MUST protect themselves against exceeding those limits".
      if (this._maxFragments > 0 && this._fragCount > this._maxFragments) {
        return this._fail('tooManyFragments', `more than ${this._maxFragments}`);
      }
    } else {
      // RFC 6455 5.4: "The fragments of one message MUST NOT be interleaved between the fragments
      // of another message unless an extension has been negotiated that can interpret the
      // interleaving."
      if (this._inMessage) return this._fail('expectedContinuation', `opcode 0x${opcode.toString(16)}`);
      // RFC 6455 5.2: RSV1 "MUST be 0 unless an extension is negotiated that defines meanings for
      // non-zero values" (permessage-deflate does, on the first frame of a message: RFC 7692 6).
      if (rsv1 && !this._rsv1Allowed) return this._fail('unexpectedRsv1');
      this._inMessage = true;
      this._msgBinary = opcode === Opcode.binary;
      this._msgCompressed = rsv1;
      this._msgLength = 0;
      this._fragCount = 1;
      this._validate = opcode === Opcode.text && !rsv1 && !this._skipUtf8;
      if (this._validate) this._utf8.reset();
    }

    // RFC 6455 5.1: "The server MUST close the connection upon receiving a frame that is not
    // masked." ... "A client MUST close a connection if it detects a masked frame."
    if (this._isServer) {
      if (!masked) return this._fail('expectedMask');
    } else if (masked) {
      return this._fail('unexpectedMask');
    }

    this._fin = fin;
    this._rsv1 = rsv1;
    this._opcode = opcode;
    this._masked = masked;

    if (length7 === 126) this._state = GET_PAYLOAD_LENGTH_16;
    else if (length7 === 127) this._state = GET_PAYLOAD_LENGTH_64;
    else this._haveLength(length7);
  }

  /** The payload length is known: apply the size limits before a single payload byte is kept. */
  private _haveLength(length: number): void {
    this._payloadLength = length;
    if (this._opcode < 0x8) {
      // RFC 6455 10.4: "Implementations that have implementation- and/or platform-specific
      // limitations regarding the frame size or total message size after reassembly from multiple
      // frames MUST protect themselves against exceeding those limits." Checked here, from the
      // header, so a peer announcing a huge frame is refused before we buffer any of it.
      if (this._maxFrameSize > 0 && length > this._maxFrameSize) {
        return this._fail('frameTooBig', `${length} > ${this._maxFrameSize} bytes`);
      }
      const total = this._msgLength + length;
      if (this._maxPayload > 0) {
        const max = this._msgCompressed ? this._maxCompressed : this._maxPayload;
        if (total > max) return this._fail('messageTooBig', `${total} > ${max} bytes`);
      }
      this._msgLength = total;
    }
    if (this._masked) this._state = GET_MASK;
    else this._startPayload();
  }

  private _startPayload(): void {
    this._frameReceived = 0;
    if (this._payloadLength === 0) {
      this._state = GET_INFO;
      this._frameComplete(EMPTY, true);
    } else {
      this._state = GET_DATA;
    }
  }

  /** Part of a payload that spans chunks: `chunk[pos, pos + take)`. */
  private _payloadPiece(chunk: Buffer, pos: number, take: number): void {
    if (this._opcode >= 0x8) {
      // Control payloads are tiny (≤ 125): copy, unmask once complete.
      if (this._ctrl === null) this._ctrl = Buffer.allocUnsafe(this._payloadLength);
      chunk.copy(this._ctrl, this._frameReceived, pos, pos + take);
      return;
    }
    const end = pos + take;
    // In place, in the caller's chunk (see the file comment).
    if (this._masked) unmaskRange(chunk, this._mask, pos, end, this._frameReceived);
    // RFC 6455 8.1: "When an endpoint is to interpret a byte stream as UTF-8 but finds that the
    // byte stream is not, in fact, a valid UTF-8 stream, that endpoint MUST _Fail the WebSocket
    // Connection_." Checked as the bytes arrive, so a bad sequence fails at once.
    if (this._validate && !this._utf8.push(chunk, pos, end)) return this._fail('invalidUtf8');
    this._keep(chunk, pos, end, this._payloadLength - this._frameReceived);
  }

  /**
   * Holds `src[start, end)` until the message is complete: a view when it is large, else a copy
   * into the current block (a new block holds at most `blockHint` bytes, never more than 16 KiB).
   * Fails with tooManyBufferedChunks when more pieces than maxBufferedChunks are held.
   */
  private _keep(src: Buffer, start: number, end: number, blockHint: number): void {
    const take = end - start;
    if (take >= COALESCE_BELOW) {
      this._addFragment(src.subarray(start, end));
    } else {
      let block = this._block;
      if (block === null || this._blockEnd + take > block.length) {
        this._sealBlock();
        const size = blockHint < take ? take : blockHint < BLOCK_SIZE ? blockHint : BLOCK_SIZE;
        block = this._block = Buffer.allocUnsafe(size);
        this._blockStart = this._blockEnd = 0;
      }
      src.copy(block, this._blockEnd, start, end);
      this._blockEnd += take;
    }
    this._fragBytes += take;
    // RFC 6455 10.4: protect against "a long stream of small frames" held until reassembly.
    if (this._maxChunks > 0 && this._heldPieces() > this._maxChunks) this._fail('tooManyBufferedChunks', `more than ${this._maxChunks}`);
  }

  /** Separate payload pieces held: the list, plus the block's unsealed part. */
  private _heldPieces(): number {
    return this._fragments.length + (this._blockEnd > this._blockStart ? 1 : 0);
  }

  /** Moves the filled, unsealed part of the block into `_fragments` (keeping byte order). */
  private _sealBlock(): void {
    if (this._blockEnd > this._blockStart) {
      this._fragments.push(this._block!.subarray(this._blockStart, this._blockEnd));
      this._blockStart = this._blockEnd;
    }
  }

  private _addFragment(piece: Buffer): void {
    this._sealBlock();
    this._fragments.push(piece);
  }

  /** Everything held, as one buffer (a view when there is a single piece); empties the list. */
  private _takeFragments(): Buffer {
    this._sealBlock();
    const pieces = this._fragments;
    const data = pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, this._fragBytes);
    pieces.length = 0;
    this._fragBytes = 0;
    return data;
  }

  /**
   * A frame's payload is complete. `whole`: `payload` is all of it (otherwise, for data frames,
   * the pieces are already in `_fragments` and were validated as they arrived).
   */
  private _frameComplete(payload: Buffer, whole: boolean): void {
    if (this._opcode >= 0x8) return this._controlFrame(payload);

    const fin = this._fin;
    if (this._validate) {
      // RFC 6455 8.1 (see _payloadPiece). A single-frame message goes to the native validator in
      // one call; fragments go through the incremental one, which fails on the first bad fragment.
      let valid: boolean;
      if (!whole) valid = !fin || this._utf8.finish();
      else if (fin && this._fragCount === 1) valid = isValidUtf8(payload);
      else valid = this._utf8.push(payload) && (!fin || this._utf8.finish());
      if (!valid) return this._fail('invalidUtf8');
    }

    if (fin) this._inMessage = false;

    if (!this._assemble) {
      const framePayload = whole ? payload : this._takeFragments();
      this._sink.onFrame?.({ fin, opcode: this._opcode, rsv1: this._rsv1, payload: framePayload });
      return;
    }

    if (whole) {
      if (fin && this._fragBytes === 0 && this._fragments.length === 0) {
        // A single-frame message: hand the view over, no copy.
        this._sink.onMessage(payload, this._msgBinary, this._msgCompressed);
        return;
      }
      // Small payloads are copied together (a view would pin the peer's whole chunk); an empty
      // frame adds nothing, so a flood of empty continuations costs no memory.
      if (payload.length > 0) {
        const room = this._maxPayload > 0 ? this._maxPayload - this._fragBytes : BLOCK_SIZE;
        this._keep(payload, 0, payload.length, room > payload.length ? room : payload.length);
        if (this._stopped) return;
      }
    }
    if (!fin) return;
    const data = this._takeFragments();
    this._sink.onMessage(data, this._msgBinary, this._msgCompressed);
  }

  private _controlFrame(payload: Buffer): void {
    switch (this._opcode) {
      case Opcode.ping:
        this._sink.onPing(payload);
        return;
      case Opcode.pong:
        this._sink.onPong(payload);
        return;
      case Opcode.close:
        this._closeFrame(payload);
        return;
    }
  }

  private _closeFrame(payload: Buffer): void {
    const length = payload.length;
    if (length === 0) {
      this._stop();
      this._sink.onClose(undefined, '', payload);
      return;
    }
    // RFC 6455 5.5.1: "If there is a body, the first two bytes of the body MUST be a 2-byte
    // unsigned integer (in network byte order) representing a status code".
    if (length === 1) return this._fail('closePayloadOneByte');
    const code = (payload[0]! << 8) | payload[1]!;
    // RFC 6455 7.4.1 / 7.4.2: 1004, 1005, 1006 and 1015 "MUST NOT be set as a status code in a
    // Close control frame by an endpoint"; 0-999 "are not used"; 1016-2999 are reserved for the
    // protocol. Receiving one is a protocol error (Autobahn 7.9.x).
    if (!isValidReceivedCloseCode(code)) return this._fail('invalidCloseCode', String(code));
    const reason = payload.subarray(2);
    // RFC 6455 5.5.1: the reason is "UTF-8-encoded data"; 8.1: an endpoint that finds a byte
    // stream is not valid UTF-8 "MUST _Fail the WebSocket Connection_". (ws's skipUTF8Validation
    // covers close reasons too.)
    if (!this._skipUtf8 && !isValidUtf8(reason)) return this._fail('invalidUtf8', 'in the close reason');
    this._stop();
    this._sink.onClose(code, reason.toString('utf8'), payload);
  }

  /**
   * RFC 6455 1.4: "after receiving a control frame indicating the connection should be closed, a
   * peer discards any further data received"; 7.1.7: an endpoint "MUST NOT continue to attempt to
   * process data (including a responding Close frame) from the remote endpoint after being
   * instructed to _Fail the WebSocket Connection_."
   */
  private _stop(): void {
    this._stopped = true;
    this._state = GET_INFO;
    this._hdrLen = 0;
    this._ctrl = null;
    this._fragments = [];
    this._fragBytes = 0;
    this._block = null;
    this._blockStart = this._blockEnd = 0;
    this._queue = null;
    this._inMessage = false;
  }

  private _fail(id: ProtocolErrorId, detail?: string): void {
    if (this._stopped) return;
    this._stop();
    this._sink.onError(protocolError(id, detail));
  }
}
