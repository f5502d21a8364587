/**
 * UTF-8 validation for text messages and close reasons (RFC 6455 section 8.1: "When an endpoint
 * is to interpret a byte stream as UTF-8 but finds that the byte stream is not, in fact, a valid
 * UTF-8 stream, that endpoint MUST _Fail the WebSocket Connection_").
 *
 * Valid means RFC 3629 section 4: no overlong forms, no surrogates (U+D800–U+DFFF), nothing above
 * U+10FFFF, no stray continuation bytes, no 0xC0, 0xC1 or 0xF5–0xFF anywhere.
 *
 * `Utf8Validator` is incremental so that a text message split across frames and chunks is checked
 * as its bytes arrive and fails on the first bad sequence (Autobahn section 6.4 "fail fast"), not
 * when the message ends. It is Björn Höhrmann's DFA ("Flexible and Economical UTF-8 Decoder"),
 * used for validation only, with a native fast path (`buffer.isUtf8`, simdutf in Node ≥ 18.14)
 * for the bulk of long chunks.
 */
import * as nodeBuffer from 'node:buffer';

type IsUtf8 = (input: ArrayBufferView | ArrayBuffer) => boolean;

/** Node's native validator when the running Node has it (it does from 18.14 / 19.4; Node 20 always). */
const nativeIsUtf8: IsUtf8 | undefined =
  typeof (nodeBuffer as { isUtf8?: unknown }).isUtf8 === 'function' ? (nodeBuffer as { isUtf8: IsUtf8 }).isUtf8 : undefined;

const ACCEPT = 0;
const REJECT = 12;

/**
 * Bytes 0–255 map to a character class (first 256 entries); then the transition table indexed by
 * `256 + state + class`, with states pre-multiplied by 12. State 0 accepts, state 12 rejects; any
 * other state is "inside a sequence".
 */
// prettier-ignore
const DFA = new Uint8Array([
  // 0x00–0x7F: ASCII
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
  // 0x80–0x8F, 0x90–0x9F, 0xA0–0xBF: continuation bytes, split by the ranges leads restrict them to
  1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 9,9,9,9,9,9,9,9,9,9,9,9,9,9,9,9,
  7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7, 7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,
  // 0xC0–0xC1 never valid (overlong), 0xC2–0xDF two-byte leads
  8,8,2,2,2,2,2,2,2,2,2,2,2,2,2,2, 2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,
  // 0xE0 (second byte A0–BF), 0xE1–0xEC, 0xED (second byte 80–9F: no surrogates), 0xEE–0xEF,
  // 0xF0 (second byte 90–BF), 0xF1–0xF3, 0xF4 (second byte 80–8F: ≤ U+10FFFF), 0xF5–0xFF never valid
  10,3,3,3,3,3,3,3,3,3,3,3,3,4,3,3, 11,6,6,6,5,8,8,8,8,8,8,8,8,8,8,8,
  // transitions: 256 + state (0, 12, 24, …, 96) + class (0–11)
  0,12,24,36,60,96,84,12,12,12,48,72, 12,12,12,12,12,12,12,12,12,12,12,12,
  12,0,12,12,12,12,12,0,12,0,12,12, 12,24,12,12,12,12,12,24,12,24,12,12,
  12,12,12,12,12,12,12,24,12,12,12,12, 12,24,12,12,12,12,12,12,12,24,12,12,
  12,12,12,12,12,12,12,36,12,36,12,12, 12,36,12,12,12,12,12,36,12,36,12,12,
  12,36,12,12,12,12,12,12,12,12,12,12,
]);

/** Below this many bytes the DFA is cheaper than creating a view for the native call. */
const NATIVE_THRESHOLD = 64;

/**
 * Incremental UTF-8 validator. Feed it the bytes of one text message in order, in any pieces;
 * `push` answers false as soon as the bytes seen so far can no longer be the start of valid UTF-8
 * (so a bad sequence in the first fragment fails before the last fragment arrives). A sequence cut
 * by the end of a piece is not an error until `finish()`.
 */
export class Utf8Validator {
  private _state = ACCEPT;

  /**
   * Validates `buf[start, end)` as the continuation of what was pushed before. Returns false at
   * the first invalid sequence, and from then on until `reset()`.
   */
  push(buf: Uint8Array, start = 0, end: number = buf.length): boolean {
    let state = this._state;
    if (state === REJECT) return false;
    let i = start;
    if (state === ACCEPT && nativeIsUtf8 !== undefined && end - start >= NATIVE_THRESHOLD) {
      // Split off the last (possibly truncated) sequence: find the last lead or ASCII byte among
      // the final four. Everything before it must be complete, valid UTF-8 on its own — if the part
      // before it ended inside a sequence, the non-continuation byte after it makes that invalid
      // in the whole stream too — so the native validator decides it exactly.
      let cut = end;
      const stop = end - 4;
      for (let k = end - 1; k >= stop; k--) {
        if ((buf[k]! & 0xc0) !== 0x80) {
          cut = k;
          break;
        }
      }
      if (!nativeIsUtf8(buf.subarray(start, cut))) {
        this._state = REJECT;
        return false;
      }
      i = cut;
    }
    for (; i < end; i++) {
      state = DFA[256 + state + DFA[buf[i]!]!]!;
      if (state === REJECT) {
        this._state = REJECT;
        return false;
      }
    }
    this._state = state;
    return true;
  }

  /** True iff everything pushed is valid and no sequence is left incomplete. */
  finish(): boolean {
    return this._state === ACCEPT;
  }

  /** Forgets everything pushed, ready for a new message. */
  reset(): void {
    this._state = ACCEPT;
  }
}

/** Validates a whole buffer with the DFA only (the fallback, and a reference for tests). */
export function isValidUtf8Dfa(buf: Uint8Array): boolean {
  let state = ACCEPT;
  for (let i = 0; i < buf.length; i++) {
    state = DFA[256 + state + DFA[buf[i]!]!]!;
    if (state === REJECT) return false;
  }
  return state === ACCEPT;
}

/** Is the whole buffer valid UTF-8 (RFC 3629)? Native `buffer.isUtf8` where available. */
export function isValidUtf8(buf: Uint8Array): boolean {
  if (nativeIsUtf8 !== undefined && buf.length >= 8) return nativeIsUtf8(buf);
  return isValidUtf8Dfa(buf);
}
