/**
 * The client side of the opening handshake (RFC 6455 section 4.1), without I/O: parse the target
 * URL, build the request headers, and verify the server's response. The client adapter sends and
 * receives; these functions decide.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { protocolError, type WebSocketProtocolError } from '../errors.js';
import { connectionHasUpgrade, headerValue, isToken, parseExtensionOffers, type ExtensionOffer } from './headers.js';
import { acceptKeyFor, WEBSOCKET_VERSION } from './server.js';

/** Protocol versions a client may announce, as in `ws` (8 is the hybi-08 draft). */
export const SUPPORTED_CLIENT_VERSIONS: readonly number[] = [8, 13];

/**
 * RFC 6455 4.1 item 7: "The request MUST include a header field with the name
 * |Sec-WebSocket-Key|. The value of this header field MUST be a nonce consisting of a randomly
 * selected 16-byte value that has been base64-encoded [...]. The nonce MUST be selected randomly
 * for each connection."
 */
export function generateKey(): string {
  return randomBytes(16).toString('base64');
}

export interface ClientRequestPlan {
  headers: Record<string, string>;
  key: string;
}

export interface ClientRequestOptions {
  key: string;
  /** Already validated with {@link validateProtocols}. */
  protocols: string[];
  /** A formatted `Sec-WebSocket-Extensions` value (see `formatExtensions`). */
  extensions?: string;
  origin?: string;
  /** User headers; a header the handshake sets itself wins over one of the same name in any case. */
  headers?: Record<string, string>;
  /** 13 (default) or 8. */
  protocolVersion?: number;
}

/**
 * The handshake headers of the upgrade request (RFC 6455 4.1 items 5–11). `Host` is left to the
 * HTTP client, which derives it from the URL (item 4).
 *
 * Headers this function sets replace user headers of the same name in any letter case, so that
 * e.g. a user `connection: keep-alive` cannot end up on the wire next to `Connection: Upgrade`.
 * Unsupported `protocolVersion` values throw a `RangeError` with `ws`'s message.
 */
export function buildClientRequestHeaders(opts: ClientRequestOptions): Record<string, string> {
  const version = opts.protocolVersion ?? WEBSOCKET_VERSION;
  if (!SUPPORTED_CLIENT_VERSIONS.includes(version)) {
    throw new RangeError(
      `Unsupported protocol version: ${version} (supported versions: ${SUPPORTED_CLIENT_VERSIONS.join(', ')})`,
    );
  }
  const ours: Record<string, string> = {
    // 4.1 item 5: "The request MUST contain an |Upgrade| header field whose value MUST include the
    // "websocket" keyword."
    Upgrade: 'websocket',
    // 4.1 item 6: "The request MUST contain a |Connection| header field whose value MUST include
    // the "Upgrade" token."
    Connection: 'Upgrade',
    // 4.1 item 7 (see generateKey).
    'Sec-WebSocket-Key': opts.key,
    // 4.1 item 9: "The request MUST include a header field with the name |Sec-WebSocket-Version|.
    // The value of this header field MUST be 13."
    'Sec-WebSocket-Version': String(version),
  };
  if (opts.protocols.length > 0) {
    // 4.1 item 10: "The request MAY include a header field with the name |Sec-WebSocket-Protocol|."
    ours['Sec-WebSocket-Protocol'] = opts.protocols.join(',');
  }
  if (opts.extensions !== undefined && opts.extensions !== '') {
    // 4.1 item 11: "The request MAY include a header field with the name |Sec-WebSocket-Extensions|."
    ours['Sec-WebSocket-Extensions'] = opts.extensions;
  }
  if (opts.origin !== undefined && opts.origin !== '') {
    // 4.1 item 8 (browsers MUST send it; other clients MAY). hybi-08 named it Sec-WebSocket-Origin.
    ours[version < 13 ? 'Sec-WebSocket-Origin' : 'Origin'] = opts.origin;
  }
  const managed = new Set(Object.keys(ours).map((name) => name.toLowerCase()));
  const result: Record<string, string> = {};
  if (opts.headers) {
    for (const [name, value] of Object.entries(opts.headers)) {
      if (!managed.has(name.toLowerCase())) result[name] = value;
    }
  }
  return Object.assign(result, ours);
}

/**
 * Normalizes the `protocols` argument of the WebSocket constructor into a list, checking
 * RFC 6455 4.1 item 10: the elements "MUST be non-empty strings with characters in the range
 * U+0021 to U+007E not including separator characters as defined in [RFC2616] and MUST all be
 * unique strings." Throws `ws`'s `SyntaxError` otherwise.
 */
export function validateProtocols(protocols: string | string[] | undefined): string[] {
  if (protocols === undefined) return [];
  const list = Array.isArray(protocols) ? protocols : [protocols];
  const seen = new Set<string>();
  for (const protocol of list) {
    if (typeof protocol !== 'string' || !isToken(protocol) || seen.has(protocol)) {
      throw new SyntaxError('An invalid or duplicated subprotocol was specified');
    }
    seen.add(protocol);
  }
  return [...list];
}

export interface ServerResponseLike {
  statusCode?: number;
  headers: IncomingHttpHeaders;
}

export interface ExpectedHandshake {
  /** The `Sec-WebSocket-Key` the request carried. */
  key: string;
  /** The subprotocols the request offered (possibly none). */
  protocols: string[];
  /** The names of the extensions the request offered (possibly none). */
  extensionsOffered: string[];
}

export type ResponseVerification =
  | { ok: true; protocol: string; extensions: ExtensionOffer[] }
  | { ok: false; error: WebSocketProtocolError };

function reject(id: Parameters<typeof protocolError>[0], detail?: string): ResponseVerification {
  return { ok: false, error: protocolError(id, detail) };
}

/** A server-supplied value, quoted and bounded, for an error message. */
function shown(value: string): string {
  return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value);
}

/**
 * Verifies the server's handshake response, rule by rule in the order of RFC 6455 4.1 ("the
 * client MUST validate the server's response as follows"). On success, `protocol` is the agreed
 * subprotocol (`''` when none, as `ws`'s `protocol` property) and `extensions` the extensions the
 * server accepted, with their parameters, for the extension modules to check.
 */
export function verifyServerResponse(res: ServerResponseLike, expected: ExpectedHandshake): ResponseVerification {
  // 1. "If the status code received from the server is not 101, the client handles the response
  //    per HTTP [RFC2616] procedures." — for a WebSocket client, the handshake has failed.
  if (res.statusCode !== 101) {
    return reject('unexpectedResponse', res.statusCode === undefined ? undefined : String(res.statusCode));
  }

  // 2. "If the response lacks an |Upgrade| header field or the |Upgrade| header field contains a
  //    value that is not an ASCII case-insensitive match for the value "websocket", the client
  //    MUST _Fail the WebSocket Connection_."
  const upgrade = headerValue(res.headers, 'upgrade');
  if (upgrade === undefined || upgrade.length !== 9 || upgrade.toLowerCase() !== 'websocket') {
    return reject('invalidResponseUpgrade');
  }

  // 3. "If the response lacks a |Connection| header field or the |Connection| header field
  //    doesn't contain a token that is an ASCII case-insensitive match for the value "Upgrade",
  //    the client MUST _Fail the WebSocket Connection_." (Node's HTTP parser already refuses to
  //    treat such a 101 as an upgrade; checked here so the rule holds for any transport.)
  if (!connectionHasUpgrade(headerValue(res.headers, 'connection'))) {
    return reject('invalidConnectionHeader', "in the server's response");
  }

  // 4. "If the response lacks a |Sec-WebSocket-Accept| header field or the
  //    |Sec-WebSocket-Accept| contains a value other than the base64-encoded SHA-1 of the
  //    concatenation of the |Sec-WebSocket-Key| (as a string, not base64-decoded) with the string
  //    "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" but ignoring any leading and trailing whitespace,
  //    the client MUST _Fail the WebSocket Connection_."
  const accept = headerValue(res.headers, 'sec-websocket-accept');
  if (accept === undefined || accept.trim() !== acceptKeyFor(expected.key)) {
    return reject('invalidAccept');
  }

  // 6. (checked before 5, in ws's order) "If the response includes a |Sec-WebSocket-Protocol|
  //    header field and this header field indicates the use of a subprotocol that was not present in the client's handshake (the
  //    server has indicated a subprotocol not requested by the client), the client MUST _Fail the
  //    WebSocket Connection_."
  const protocol = headerValue(res.headers, 'sec-websocket-protocol');
  if (protocol !== undefined) {
    if (!expected.protocols.includes(protocol)) {
      return reject(
        'unexpectedSubprotocol',
        expected.protocols.length === 0 ? 'none was requested' : shown(protocol),
      );
    }
  } else if (expected.protocols.length > 0) {
    // Not an RFC rule but ws 8's ('Server sent no subprotocol'): a client that asked for a
    // subprotocol cannot speak to a server that chose none.
    return reject('missingSubprotocol');
  }

  // 5. "If the response includes a |Sec-WebSocket-Extensions| header field and this header field
  //    indicates the use of an extension that was not present in the client's handshake (the
  //    server has indicated an extension not requested by the client), the client MUST _Fail the
  //    WebSocket Connection_."
  let extensions: ExtensionOffer[] = [];
  const extensionsHeader = headerValue(res.headers, 'sec-websocket-extensions');
  if (extensionsHeader !== undefined) {
    if (expected.extensionsOffered.length === 0) {
      return reject('unexpectedExtension', 'no extension was requested');
    }
    const parsed = parseExtensionOffers(extensionsHeader);
    if (parsed === undefined) return reject('invalidExtensionsHeader');
    const offered = new Set(expected.extensionsOffered);
    const accepted = new Set<string>();
    for (const extension of parsed) {
      if (!offered.has(extension.name)) return reject('unexpectedExtension', shown(extension.name));
      // A server accepts an offered extension once; naming it twice is not a valid answer.
      if (accepted.has(extension.name)) return reject('unexpectedExtension', `${shown(extension.name)} listed twice`);
      accepted.add(extension.name);
    }
    extensions = parsed;
  }

  return { ok: true, protocol: protocol ?? '', extensions };
}

export interface ParsedWebSocketUrl {
  /** The URL, with http:/https: mapped to ws:/wss:. */
  url: URL;
  secure: boolean;
  /** The host to connect to (IPv6 literals without brackets). */
  host: string;
  /** The port to connect to (80 / 443 when the URL has none). */
  port: number;
  /** The request-target: pathname and query. */
  path: string;
}

/**
 * Parses a WebSocket URL (RFC 6455 section 3) the way `ws` 8 does, with its error messages:
 * `http:` and `https:` are accepted and mapped to `ws:` and `wss:`; any other scheme, a fragment
 * ("Fragment identifiers MUST NOT be used on these URIs"), or a missing host throws a
 * `SyntaxError`. Unlike `ws`, `ws+unix:` is not supported, so its message does not list it.
 */
export function parseWebSocketUrl(address: string | URL): ParsedWebSocketUrl {
  let url: URL;
  if (address instanceof URL) {
    url = new URL(address.href);
  } else {
    try {
      url = new URL(address);
    } catch {
      throw new SyntaxError(`Invalid URL: ${address}`);
    }
  }
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';

  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new SyntaxError('The URL\'s protocol must be one of "ws:", "wss:", "http:", or "https:"');
  }
  if (url.hash) throw new SyntaxError('The URL contains a fragment identifier');
  if (!url.hostname) throw new SyntaxError(`Invalid URL: ${url.href}`);

  const secure = url.protocol === 'wss:';
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port ? Number(url.port) : secure ? 443 : 80;
  return { url, secure, host, port, path: `${url.pathname}${url.search}` };
}
