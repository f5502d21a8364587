/**
 * Header-field scanners for the opening handshake (RFC 6455 section 4, section 9.1; RFC 7230
 * section 3.2.6 for `token`, `quoted-string` and the `#rule` lists).
 *
 * Everything here reads attacker-controlled bytes, so every parser is a single forward pass over
 * the string with a cursor that only moves right: no regular expressions, no backtracking, no
 * re-scanning. The cost is O(length of the value) whatever the input looks like (ReDoS-safe).
 */
import type { IncomingHttpHeaders } from 'node:http';

/** One element of a `Sec-WebSocket-Extensions` list: an extension name and its parameters. */
export interface ExtensionOffer {
  /** The extension token, e.g. `permessage-deflate`. */
  name: string;
  /**
   * Parameters in order of first appearance. A parameter given without a value maps to `true`;
   * a parameter given more than once keeps every value, in order (the extension decides whether
   * a repeated parameter is an error, as RFC 7692 section 7 does for permessage-deflate).
   * Quoted-string values are unescaped.
   */
  params: Map<string, Array<string | true>>;
}

/** What {@link formatExtensions} accepts: an {@link ExtensionOffer}, with numeric values allowed. */
export interface ExtensionOfferInput {
  name: string;
  params?: ReadonlyMap<string, ReadonlyArray<string | number | true>>;
}

const TAB = 0x09;
const SPACE = 0x20;
const DQUOTE = 0x22;
const COMMA = 0x2c;
const SEMICOLON = 0x3b;
const EQUALS = 0x3d;
const BACKSLASH = 0x5c;

/**
 * `tchar` of RFC 7230 section 3.2.6:
 * "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
 */
const TOKEN_CHARS: Uint8Array = (() => {
  const table = new Uint8Array(128);
  const chars = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  for (let i = 0; i < chars.length; i++) table[chars.charCodeAt(i)] = 1;
  return table;
})();

/** True when `code` (a UTF-16 code unit) is an RFC 7230 `tchar`. */
export function isTokenChar(code: number): boolean {
  return code < 128 && TOKEN_CHARS[code] === 1;
}

/** True when `value` is a non-empty RFC 7230 `token`. */
export function isToken(value: string): boolean {
  if (value.length === 0) return false;
  for (let i = 0; i < value.length; i++) {
    if (!isTokenChar(value.charCodeAt(i))) return false;
  }
  return true;
}

function isOws(code: number): boolean {
  return code === SPACE || code === TAB;
}

/** Index of the first non-OWS code unit at or after `i`. */
function skipOws(value: string, i: number): number {
  const n = value.length;
  while (i < n && isOws(value.charCodeAt(i))) i++;
  return i;
}

/** Index just past the run of `tchar`s starting at `i` (equal to `i` when there is none). */
function scanToken(value: string, i: number): number {
  const n = value.length;
  while (i < n && isTokenChar(value.charCodeAt(i))) i++;
  return i;
}

/**
 * Parses a comma-separated list of tokens with optional whitespace around each element, as
 * `Sec-WebSocket-Protocol` carries (RFC 6455 section 4.1: "The elements that comprise this value
 * MUST be non-empty strings with characters in the range U+0021 to U+007E not including separator
 * characters as defined in [RFC2616] and MUST all be unique strings").
 *
 * Returns the tokens in order, or `undefined` when the value is malformed: an empty element
 * (including an empty value or a trailing comma), a character that is not a `tchar`, or a
 * duplicated element.
 */
export function parseTokenList(value: string): string[] | undefined {
  const tokens: string[] = [];
  const seen = new Set<string>();
  const n = value.length;
  let i = 0;
  for (;;) {
    i = skipOws(value, i);
    const start = i;
    i = scanToken(value, i);
    if (i === start) return undefined;
    const token = value.slice(start, i);
    if (seen.has(token)) return undefined;
    seen.add(token);
    tokens.push(token);
    i = skipOws(value, i);
    if (i === n) return tokens;
    if (value.charCodeAt(i) !== COMMA) return undefined;
    i++;
  }
}

/**
 * Reads a quoted-string parameter value starting at the opening quote at `i`. RFC 6455 section
 * 9.1: "When using the quoted-string syntax variant, the value after quoted-string unescaping MUST
 * conform to the 'token' ABNF." So every character inside the quotes, escaped or not, must be a
 * `tchar`, and the value must not be empty. Returns the unescaped value and the index past the
 * closing quote, or `undefined`.
 */
function scanQuotedToken(value: string, i: number): { value: string; end: number } | undefined {
  const n = value.length;
  const start = i + 1; // past the opening quote
  let escapes = 0;
  // First pass: validate and find the closing quote, building nothing (an unterminated value
  // costs no allocation).
  for (i = start; i < n; i++) {
    const code = value.charCodeAt(i);
    if (code === BACKSLASH) {
      if (i + 1 >= n || !isTokenChar(value.charCodeAt(i + 1))) return undefined;
      escapes++;
      i++;
    } else if (code === DQUOTE) {
      break;
    } else if (!isTokenChar(code)) {
      return undefined;
    }
  }
  if (i >= n) return undefined; // unterminated
  const end = i; // index of the closing quote
  if (end === start) return undefined; // "" is not a token
  if (escapes === 0) return { value: value.slice(start, end), end: end + 1 };
  // Second pass: unescape. Every character is an ASCII tchar, so one byte each.
  const out = Buffer.allocUnsafe(end - start - escapes);
  let k = 0;
  for (let j = start; j < end; j++) {
    let code = value.charCodeAt(j);
    if (code === BACKSLASH) code = value.charCodeAt(++j);
    out[k++] = code;
  }
  return { value: out.toString('latin1'), end: end + 1 };
}

/**
 * Parses a `Sec-WebSocket-Extensions` value (RFC 6455 section 9.1):
 *
 * ```
 * extension-list  = 1#extension
 * extension       = extension-token *( ";" extension-param )
 * extension-param = token [ "=" (token | quoted-string) ]
 * ```
 *
 * with optional whitespace around `,`, `;` and `=` (RFC 7230 OWS / BWS). The same extension may
 * be listed more than once (a client offering alternatives, RFC 7692 section 5); each listing is
 * its own {@link ExtensionOffer}, in order. Returns `undefined` when the value is malformed.
 *
 * Semantics follow `ws` lib/extension.js `parse`, with two relaxations that RFC 7230 asks of
 * recipients: whitespace around `=` is accepted, and leading/trailing whitespace of the whole
 * value is ignored.
 */
export function parseExtensionOffers(value: string): ExtensionOffer[] | undefined {
  const offers: ExtensionOffer[] = [];
  const n = value.length;
  let i = skipOws(value, 0);
  for (;;) {
    const nameStart = i;
    i = scanToken(value, i);
    if (i === nameStart) return undefined;
    const offer: ExtensionOffer = { name: value.slice(nameStart, i), params: new Map() };
    i = skipOws(value, i);
    while (i < n && value.charCodeAt(i) === SEMICOLON) {
      i = skipOws(value, i + 1);
      const paramStart = i;
      i = scanToken(value, i);
      if (i === paramStart) return undefined;
      const param = value.slice(paramStart, i);
      let paramValue: string | true = true;
      i = skipOws(value, i);
      if (i < n && value.charCodeAt(i) === EQUALS) {
        i = skipOws(value, i + 1);
        if (i < n && value.charCodeAt(i) === DQUOTE) {
          const quoted = scanQuotedToken(value, i);
          if (quoted === undefined) return undefined;
          paramValue = quoted.value;
          i = quoted.end;
        } else {
          const valueStart = i;
          i = scanToken(value, i);
          if (i === valueStart) return undefined;
          paramValue = value.slice(valueStart, i);
        }
        i = skipOws(value, i);
      }
      const values = offer.params.get(param);
      if (values === undefined) offer.params.set(param, [paramValue]);
      else values.push(paramValue);
    }
    offers.push(offer);
    if (i === n) return offers;
    if (value.charCodeAt(i) !== COMMA) return undefined;
    i = skipOws(value, i + 1);
  }
}

/**
 * Writes extension offers (or a server's accepted extensions) back as a `Sec-WebSocket-Extensions`
 * value: `name; param; param=value, name2`. Every name and value must be a token (RFC 6455
 * section 9.1 allows nothing else, even quoted), so values are never quoted; a name or value that
 * is not a token throws a `TypeError`, which also keeps CR/LF out of the response head.
 */
export function formatExtensions(offers: ReadonlyArray<ExtensionOfferInput>): string {
  const parts: string[] = [];
  for (const offer of offers) {
    if (!isToken(offer.name)) {
      throw new TypeError(`Invalid extension name: ${JSON.stringify(offer.name)}`);
    }
    let text = offer.name;
    if (offer.params) {
      for (const [param, values] of offer.params) {
        if (!isToken(param)) {
          throw new TypeError(`Invalid parameter name for extension ${offer.name}: ${JSON.stringify(param)}`);
        }
        for (const v of values) {
          if (v === true) {
            text += `; ${param}`;
            continue;
          }
          const s = typeof v === 'number' ? String(v) : v;
          if (!isToken(s)) {
            throw new TypeError(`Invalid value for ${offer.name}; ${param}: ${JSON.stringify(s)}`);
          }
          text += `; ${param}=${s}`;
        }
      }
    }
    parts.push(text);
  }
  return parts.join(', ');
}

/**
 * The value of header `name` (any case) in Node's lower-cased header object; a field received
 * more than once (an array) is joined with ", ", which is how RFC 7230 section 3.2.2 combines
 * repeated list-valued fields.
 */
export function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.join(', ') : value;
}

/**
 * True when a `Connection` value (a comma-separated list of tokens) contains the token
 * `upgrade`, compared ASCII case-insensitively (RFC 6455 section 4.2.1 item 4). Empty list
 * elements are skipped, as RFC 7230 section 7 asks of recipients.
 */
export function connectionHasUpgrade(value: string | undefined): boolean {
  if (value === undefined) return false;
  const n = value.length;
  let i = 0;
  while (i < n) {
    i = skipOws(value, i);
    const start = i;
    while (i < n && value.charCodeAt(i) !== COMMA) i++;
    let end = i;
    while (end > start && isOws(value.charCodeAt(end - 1))) end--;
    // Only a 7-character element can match, so each element is lower-cased at most once and
    // only when short: the whole scan stays linear.
    if (end - start === 7 && value.slice(start, end).toLowerCase() === 'upgrade') return true;
    i++; // past the comma (or past the end)
  }
  return false;
}
