/**
 * The server side of the opening handshake (RFC 6455 section 4.2), without I/O: validate an
 * upgrade request, choose a subprotocol, and build the bytes of a 101 or an error response. The
 * server adapter writes what these functions return.
 */
import { createHash } from 'node:crypto';
import { STATUS_CODES, type IncomingHttpHeaders } from 'node:http';
import { protocolError, type WebSocketProtocolError } from '../errors.js';
import {
  connectionHasUpgrade,
  headerValue,
  isToken,
  parseExtensionOffers,
  parseTokenList,
  type ExtensionOffer,
} from './headers.js';

/** RFC 6455 section 1.3: the GUID concatenated to the key before hashing. */
export const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** The only protocol version this server speaks (RFC 6455 section 4.1 item 9). */
export const WEBSOCKET_VERSION = 13;

/** The parts of `http.IncomingMessage` the validation reads (so tests can pass plain objects). */
export interface UpgradeRequestLike {
  method?: string;
  httpVersion?: string;
  url?: string;
  headers: IncomingHttpHeaders;
  /** Names and values as received, alternating (Node's `rawHeaders`); used for the value check when present. */
  rawHeaders?: string[];
}

/** The handshake limits of a server (spec/settings.yaml maxHeaderSize / maxHeaderCount); 0 = no limit. */
export interface HeaderLimits {
  maxHeaderSize: number;
  maxHeaderCount: number;
}

/**
 * Checks the size of a request head against the server's limits: more than `maxHeaderCount` fields
 * or a head (request line and fields) longer than `maxHeaderSize` bytes is `headersTooLarge`, to be
 * answered 431 (RFC 6585 section 5). Node's HTTP parser already applies its own maxHeaderSize
 * while reading; this check is what applies when the request came through an HTTP server whose
 * limits the application chose. Linear in the number of fields.
 */
export function checkHeaderLimits(req: UpgradeRequestLike, limits: HeaderLimits): WebSocketProtocolError | undefined {
  const raw = req.rawHeaders ?? Object.entries(req.headers).flatMap(([name, value]) => (Array.isArray(value) ? value.flatMap((v) => [name, v]) : [name, String(value)]));
  const count = raw.length / 2;
  if (limits.maxHeaderCount > 0 && count > limits.maxHeaderCount) {
    return protocolError('headersTooLarge', `more than ${limits.maxHeaderCount} header fields`);
  }
  if (limits.maxHeaderSize > 0) {
    // "GET /path HTTP/1.1\r\n", then "name: value\r\n" per field, then "\r\n".
    let size = (req.method?.length ?? 0) + (req.url?.length ?? 0) + (req.httpVersion?.length ?? 0) + 13;
    for (let i = 0; i < raw.length; i += 2) size += raw[i]!.length + raw[i + 1]!.length + 4;
    size += 2;
    if (size > limits.maxHeaderSize) return protocolError('headersTooLarge', `head larger than ${limits.maxHeaderSize} bytes`);
  }
  return undefined;
}

/**
 * RFC 7230 section 3.2: `field-value = *( field-content / obs-fold )`, whose characters are
 * VCHAR, SP, HTAB and obs-text: any other control character (NUL, CR, LF, DEL …) is invalid.
 */
function isValidFieldValue(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return false;
  }
  return true;
}

/** A request that passed {@link validateUpgradeRequest}, with its handshake fields parsed. */
export interface ValidatedUpgrade {
  /** `Sec-WebSocket-Key`, as sent (24 base64 characters). */
  key: string;
  /** `Sec-WebSocket-Version` (always 13). */
  version: number;
  /** `Sec-WebSocket-Protocol` elements in the client's order of preference; empty when absent. */
  protocols: string[];
  /** `Sec-WebSocket-Extensions` offers in order; empty when absent. */
  extensions: ExtensionOffer[];
  /** `Origin`, when the client (typically a browser) sent one. */
  origin: string | undefined;
  /** The path of the request-target, without query or fragment ("/" when absent). */
  path: string;
  /** The `Host` header value. */
  host: string;
}

export type UpgradeValidation =
  | { ok: true; upgrade: ValidatedUpgrade }
  | { ok: false; error: WebSocketProtocolError };

function fail(id: Parameters<typeof protocolError>[0], detail?: string): UpgradeValidation {
  return { ok: false, error: protocolError(id, detail) };
}

/** Parses an `http.IncomingMessage#httpVersion` ("1.1", "2.0") into [major, minor]. */
function parseHttpVersion(version: string): [number, number] | undefined {
  const dot = version.indexOf('.');
  if (dot <= 0 || dot === version.length - 1 || dot > 4 || version.length - dot > 5) return undefined;
  for (let i = 0; i < version.length; i++) {
    const c = version.charCodeAt(i);
    if (i !== dot && (c < 0x30 || c > 0x39)) return undefined;
  }
  return [Number(version.slice(0, dot)), Number(version.slice(dot + 1))];
}

/** The path of a request-target: origin-form up to "?" or "#", or the pathname of absolute-form. */
function requestPath(url: string | undefined): string {
  if (url === undefined || url === '') return '/';
  if (url.charCodeAt(0) === 0x2f /* "/" */) {
    let end = url.length;
    const q = url.indexOf('?');
    if (q !== -1) end = q;
    const h = url.indexOf('#');
    if (h !== -1 && h < end) end = h;
    return url.slice(0, end);
  }
  try {
    return new URL(url).pathname || '/';
  } catch {
    return url;
  }
}

/**
 * Checks an upgrade request against RFC 6455 section 4.2.1, in the order the rules are listed
 * there, and reports the first one broken as a handshake error whose `.status` is the HTTP status
 * to answer with (answer it with {@link buildRejectResponse}, which adds the
 * `Sec-WebSocket-Version: 13` header a 426 needs).
 *
 * What this does not decide: whether the path is served (`pathNotHandled`), whether the origin or
 * client is accepted (`clientRejected`, `clientNotAllowed`), capacity, or which extension
 * parameters are acceptable — those are server policy, applied after this succeeds.
 *
 * Error messages never echo client-supplied values: they may become the body of the response.
 */
export function validateUpgradeRequest(req: UpgradeRequestLike): UpgradeValidation {
  const { headers } = req;
  // RFC 6455 4.2.1: any "violations of the ABNF grammar specified for the components of the
  // handshake" are refused (below). Control characters in a field value break RFC 7230 section
  // 3.2 for every field; Node's parser refuses most of them, but not when the application's HTTP
  // server runs with insecureHTTPParser — so they are checked here too, in one linear pass.
  const raw = req.rawHeaders;
  if (raw !== undefined) {
    for (let i = 1; i < raw.length; i += 2) if (!isValidFieldValue(raw[i]!)) return fail('invalidHeaderValue');
  } else {
    for (const value of Object.values(headers)) {
      if (value === undefined) continue;
      for (const v of Array.isArray(value) ? value : [value]) if (!isValidFieldValue(v)) return fail('invalidHeaderValue');
    }
  }
  // RFC 6455 4.2.1: "If the server, while reading the handshake, finds that the client did not
  // send a handshake that matches the description below [...], including but not limited to any
  // violations of the ABNF grammar specified for the components of the handshake, the server MUST
  // stop processing the client's handshake and return an HTTP response with an appropriate error
  // code (such as 400 Bad Request)."

  // RFC 6455 4.2.1 item 1: "An HTTP/1.1 or higher GET request, including a "Request-URI"".
  if (req.method !== 'GET') {
    return fail('invalidMethod');
  }
  const version = req.httpVersion === undefined ? undefined : parseHttpVersion(req.httpVersion);
  if (version === undefined || version[0] < 1 || (version[0] === 1 && version[1] < 1)) {
    return fail('invalidHttpVersion');
  }

  // RFC 6455 4.2.1 item 2: "A |Host| header field containing the server's authority."
  // RFC 7230 5.4: "A server MUST respond with a 400 (Bad Request) status code to any HTTP/1.1
  // request message that lacks a Host header field and to any request message that contains more
  // than one Host header field or a Host header field with an invalid field-value."
  const rawHost = headers.host;
  if (Array.isArray(rawHost) && rawHost.length !== 1) return fail('missingHost', 'more than one Host header');
  const host = headerValue(headers, 'host');
  if (host === undefined || host === '') return fail('missingHost');

  // RFC 6455 4.2.1 item 3: "An |Upgrade| header field containing the value "websocket", treated
  // as an ASCII case-insensitive value."
  const upgrade = headerValue(headers, 'upgrade');
  if (upgrade === undefined || upgrade.length !== 9 || upgrade.toLowerCase() !== 'websocket') {
    return fail('invalidUpgradeHeader', upgrade === undefined ? 'missing' : undefined);
  }

  // RFC 6455 4.2.1 item 4: "A |Connection| header field that includes the token "Upgrade",
  // treated as an ASCII case-insensitive value."
  const connection = headerValue(headers, 'connection');
  if (!connectionHasUpgrade(connection)) {
    return fail('invalidConnectionHeader', connection === undefined ? 'missing' : undefined);
  }

  // RFC 6455 4.2.1 item 5: "A |Sec-WebSocket-Key| header field with a base64-encoded value that,
  // when decoded, is 16 bytes in length."
  const key = headerValue(headers, 'sec-websocket-key');
  if (key === undefined || !isValidKey(key)) {
    return fail('invalidKey', key === undefined ? 'missing' : undefined);
  }

  // RFC 6455 4.2.1 item 6: "A |Sec-WebSocket-Version| header field, with a value of 13."
  // RFC 6455 4.4: "If this version does not match a version understood by the server, the server
  // MUST abort the WebSocket handshake described in this section and instead send an appropriate
  // HTTP error code (such as 426 Upgrade Required) and a |Sec-WebSocket-Version| header field
  // indicating the version(s) the server is capable of understanding." (buildRejectResponse adds it.)
  const wsVersion = headerValue(headers, 'sec-websocket-version');
  if (wsVersion !== '13') {
    return fail('unsupportedVersion', wsVersion === undefined ? 'missing' : undefined);
  }

  // RFC 6455 4.2.1 item 8 (optional field): "A |Sec-WebSocket-Protocol| header field, with a list
  // of values indicating which protocols the client would like to speak", whose elements (4.1)
  // "MUST be non-empty strings with characters in the range U+0021 to U+007E not including
  // separator characters as defined in [RFC2616] and MUST all be unique strings."
  let protocols: string[] = [];
  const protocolHeader = headerValue(headers, 'sec-websocket-protocol');
  if (protocolHeader !== undefined) {
    const parsed = parseTokenList(protocolHeader);
    if (parsed === undefined) return fail('invalidProtocolHeader');
    protocols = parsed;
  }

  // RFC 6455 4.2.1 item 9 (optional field): "A |Sec-WebSocket-Extensions| header field, with a
  // list of values indicating which extensions the client would like to speak. The interpretation
  // of this header field is discussed in Section 9.1." (grammar and quoted-string rule: 9.1)
  let extensions: ExtensionOffer[] = [];
  const extensionsHeader = headerValue(headers, 'sec-websocket-extensions');
  if (extensionsHeader !== undefined) {
    const parsed = parseExtensionOffers(extensionsHeader);
    if (parsed === undefined) return fail('invalidExtensionsHeader');
    extensions = parsed;
  }

  return {
    ok: true,
    upgrade: {
      key,
      version: WEBSOCKET_VERSION,
      protocols,
      extensions,
      origin: headerValue(headers, 'origin'),
      path: requestPath(req.url),
      host,
    },
  };
}

/**
 * RFC 6455 4.2.2 item 5.4: the |Sec-WebSocket-Accept| value is "the base64-encoded SHA-1 of the
 * concatenation of the |Sec-WebSocket-Key| (as a string, not base64-decoded) with the string
 * "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"".
 */
export function acceptKeyFor(key: string): string {
  return createHash('sha1').update(key + WEBSOCKET_GUID).digest('base64');
}

function isBase64Char(code: number): boolean {
  return (
    (code >= 0x41 && code <= 0x5a) || // A-Z
    (code >= 0x61 && code <= 0x7a) || // a-z
    (code >= 0x30 && code <= 0x39) || // 0-9
    code === 0x2b || // +
    code === 0x2f // /
  );
}

/**
 * RFC 6455 4.1 item 7: the key "MUST be a nonce consisting of a randomly selected 16-byte value
 * that has been base64-encoded". Sixteen bytes encode to exactly 22 base64 characters and "==".
 * As in `ws`, the unused low bits of the last character are not required to be zero: such a key
 * still decodes to 16 bytes.
 */
export function isValidKey(key: string): boolean {
  if (key.length !== 24 || key.charCodeAt(22) !== 0x3d || key.charCodeAt(23) !== 0x3d) return false;
  for (let i = 0; i < 22; i++) {
    if (!isBase64Char(key.charCodeAt(i))) return false;
  }
  return true;
}

/** True when `value` may be written as a header field value (no CR, LF or NUL: no injection). */
function isSafeFieldValue(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x0d || c === 0x0a || c === 0x00) return false;
  }
  return true;
}

/**
 * The lines of a 101 response (RFC 6455 4.2.2 item 5), first the status line; serialize with
 * {@link serializeResponseHead}. `protocol` must be one the client offered ("the value MUST be one
 * of the values the client sent"; see {@link selectSubprotocol}); `extensions` is a formatted
 * `Sec-WebSocket-Extensions` value (see `formatExtensions`). A protocol that is not a token or an
 * extensions value containing CR/LF throws a `TypeError` rather than corrupt the response head.
 */
export function buildAcceptHeaders(
  key: string,
  protocol: string | undefined,
  extensions: string | undefined,
): string[] {
  const lines = [
    'HTTP/1.1 101 Switching Protocols',
    // 4.2.2 item 5.2: "An |Upgrade| header field with value "websocket""
    'Upgrade: websocket',
    // 4.2.2 item 5.3: "A |Connection| header field with value "Upgrade""
    'Connection: Upgrade',
    `Sec-WebSocket-Accept: ${acceptKeyFor(key)}`,
  ];
  if (protocol !== undefined) {
    if (!isToken(protocol)) throw new TypeError(`Invalid subprotocol: ${JSON.stringify(protocol)}`);
    lines.push(`Sec-WebSocket-Protocol: ${protocol}`);
  }
  if (extensions !== undefined && extensions !== '') {
    if (!isSafeFieldValue(extensions)) {
      throw new TypeError('Sec-WebSocket-Extensions value contains CR, LF or NUL');
    }
    lines.push(`Sec-WebSocket-Extensions: ${extensions}`);
  }
  return lines;
}

/** Joins response lines with CRLF and ends the head with the empty line (CRLF CRLF). */
export function serializeResponseHead(lines: string[]): string {
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/**
 * A complete HTTP/1.1 error response ending the connection: `Connection: close`,
 * `Content-Type: text/plain`, `Content-Length`, and a body that is `message` or the reason
 * phrase. A 426 carries `Sec-WebSocket-Version: 13` (RFC 6455 4.4, quoted in
 * {@link validateUpgradeRequest}). `extraHeaders` are added last and replace a default of the
 * same name (compared case-insensitively); a name that is not a token or a value with CR/LF throws
 * a `TypeError`.
 */
export function buildRejectResponse(
  status: number,
  message?: string,
  extraHeaders?: Record<string, string>,
): string {
  if (!Number.isInteger(status) || status < 100 || status > 999) {
    throw new RangeError(`Invalid HTTP status code: ${status}`);
  }
  const reason = STATUS_CODES[status] ?? 'Unknown';
  const body = message ?? reason;
  const headers = new Map<string, [string, string]>();
  const set = (name: string, value: string): void => {
    headers.set(name.toLowerCase(), [name, value]);
  };
  set('Connection', 'close');
  set('Content-Type', 'text/plain');
  set('Content-Length', String(Buffer.byteLength(body)));
  if (status === 426) set('Sec-WebSocket-Version', String(WEBSOCKET_VERSION));
  if (extraHeaders) {
    for (const [name, value] of Object.entries(extraHeaders)) {
      if (!isToken(name)) throw new TypeError(`Invalid header name: ${JSON.stringify(name)}`);
      if (name.toLowerCase() === 'content-length') continue; // derived from the body, never overridden
      const v = String(value);
      if (!isSafeFieldValue(v)) throw new TypeError(`Invalid value for header ${name}`);
      set(name, v);
    }
  }
  const lines = [`HTTP/1.1 ${status} ${reason}`];
  for (const [name, value] of headers.values()) lines.push(`${name}: ${value}`);
  return serializeResponseHead(lines) + body;
}

/**
 * Chooses the subprotocol of the 101 response, following `ws`:
 *
 * - nothing offered: `undefined` (no `Sec-WebSocket-Protocol` in the response; `handleProtocols`
 *   is not called);
 * - no `handleProtocols`: the first protocol offered;
 * - `handleProtocols` returns a protocol: that protocol, which RFC 6455 4.2.2 item 5.5 requires
 *   to be one the client offered ("the value MUST be one of the values the client sent") — any
 *   other value throws a `TypeError`, since every conforming client would fail the connection;
 * - `handleProtocols` returns `false`: `false`, meaning the server rejects the handshake
 *   (`ws` 8 instead completes the handshake without a subprotocol on `false`; the caller can do
 *   that by treating `false` like `undefined`);
 * - `handleProtocols` returns `undefined`, `null` or `""` (untyped JS callers): `undefined`.
 */
export function selectSubprotocol(
  offered: string[],
  handleProtocols?: (protocols: Set<string>, req: unknown) => string | false,
  req?: unknown,
): string | undefined | false {
  if (offered.length === 0) return undefined;
  if (handleProtocols === undefined) return offered[0];
  const chosen = handleProtocols(new Set(offered), req);
  if (chosen === false) return false;
  // Untyped callers (plain JS, as with ws) may return nothing: no subprotocol, like ws's `if (protocol)`.
  if ((chosen as unknown) === undefined || (chosen as unknown) === null || chosen === '') return undefined;
  if (!offered.includes(chosen)) {
    throw new TypeError(
      `handleProtocols returned ${JSON.stringify(chosen)}, which the client did not offer (RFC 6455 4.2.2)`,
    );
  }
  return chosen;
}

