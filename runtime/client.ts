/**
 * The client's opening handshake over http/https (the one client file that imports them): builds
 * the upgrade request (RFC 6455 section 4.1), follows redirects when asked, verifies the server's
 * response, and hands the socket to the WebSocket — whose machine decides what each outcome means.
 */
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { buildClientRequestHeaders, generateKey, parseWebSocketUrl, validateProtocols, verifyServerResponse } from './handshake/client.js';
import { protocolError } from './errors.js';
import { acceptResponse, buildOffer, PerMessageDeflate, EXTENSION_NAME, type DeflateConfig } from './extensions/permessage-deflate.js';
import type { ClientOptionsInput, WebSocket } from './websocket.js';

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

export function startClient(ws: WebSocket, address: string | URL, protocols: string | string[], options: ClientOptionsInput): void {
  const settings = ws._settings as Record<string, unknown>;
  const fromOption = settings.subprotocols as string[] | undefined;
  const requested = validateProtocols(protocols && (typeof protocols === 'string' ? protocols.length > 0 : protocols.length > 0) ? protocols : fromOption);
  // Throws SyntaxError for a bad URL, synchronously, as ws does in its constructor.
  const target = parseWebSocketUrl(address);
  let redirects = 0;
  let settled = false;
  let currentRequest: http.ClientRequest | null = null;

  ws._abortHandshakeRequest = () => {
    settled = true;
    currentRequest?.destroy();
  };

  const fail = (error: Error, errorId: Parameters<typeof protocolError>[0] | null) => {
    if (settled) return;
    settled = true;
    ws._emitError(error);
    if (errorId) ws._dispatch({ type: 'HANDSHAKE_FAILED', errorId });
    else ws._dispatch({ type: 'SOCKET_CLOSED' });
  };

  // ws's client option perMessageDeflate (canonical clientPerMessageDeflate): offered when enabled.
  const deflateSetting = settings.clientPerMessageDeflate as boolean | DeflateConfig | undefined;
  const deflateConfig: DeflateConfig | undefined = deflateSetting ? (deflateSetting === true ? {} : deflateSetting) : undefined;

  const request = (url: ReturnType<typeof parseWebSocketUrl>) => {
    const key = generateKey();
    const headers = buildClientRequestHeaders({
      key,
      extensions: deflateConfig ? buildOffer(deflateConfig) : undefined,
      protocols: requested,
      origin: settings.origin as string | undefined,
      headers: settings.headers as Record<string, string> | undefined,
      protocolVersion: settings.protocolVersion as number | undefined,
    });
    if (settings.hostHeader) headers['Host'] = String(settings.hostHeader);
    const hostname = url.host.startsWith('[') ? url.host.slice(1, -1) : url.host;
    const requestOptions: https.RequestOptions = {
      ...pickRequestOptions(options),
      method: 'GET',
      host: hostname,
      port: url.port,
      path: url.path,
      headers,
      agent: settings.agent as http.Agent | undefined,
      localAddress: settings.localAddress as string | undefined,
      // The server's response head is bounded like a request head on the server (maxHeaderSize).
      maxHeaderSize: Number(settings.maxHeaderSize ?? 16384),
    };
    if (url.secure) {
      const tlsOptions: Record<string, unknown> = {
        ca: settings.tlsCa,
        cert: settings.tlsCert,
        key: settings.tlsKey,
        pfx: settings.tlsPfx,
        passphrase: settings.tlsPassphrase,
        ciphers: settings.tlsCipherList,
        rejectUnauthorized: settings.tlsRejectUnauthorized !== false,
        checkServerIdentity: settings.checkServerIdentity,
        servername: (options.servername as string | undefined) ?? (isIP(hostname) ? '' : hostname),
      };
      // An option given as undefined would replace tls.connect's own default (checkServerIdentity
      // undefined trips an assertion inside Node): pass only what is set.
      for (const [name, value] of Object.entries(tlsOptions)) if (value !== undefined && value !== null) (requestOptions as Record<string, unknown>)[name] = value;
    }
    const req = (url.secure ? https : http).request(requestOptions);
    currentRequest = req;
    // Node drops response fields past maxHeadersCount silently: let one more through, so that a
    // response with too many fields is seen and refused (maxHeaderCount).
    const maxHeaderCount = Number(settings.maxHeaderCount ?? 0);
    req.maxHeadersCount = maxHeaderCount > 0 ? maxHeaderCount + 1 : 0;

    req.on('error', (error) => {
      if (req !== currentRequest) return;
      fail(error, null);
    });

    req.on('response', (res) => {
      if (req !== currentRequest || settled) return;
      const location = res.headers.location;
      if (settings.followRedirects === true && location && REDIRECT_STATUSES.has(res.statusCode ?? 0)) {
        res.resume();
        req.destroy();
        if (++redirects > Number(settings.maxRedirects ?? 10)) {
          fail(protocolError('tooManyRedirects'), 'tooManyRedirects');
          return;
        }
        let next: ReturnType<typeof parseWebSocketUrl>;
        try {
          next = parseWebSocketUrl(new URL(location, url.url));
        } catch (error) {
          fail(error as Error, 'unexpectedResponse');
          return;
        }
        ws.emit('redirect', next.url.href, req);
        request(next);
        return;
      }
      if (ws.listenerCount('unexpected-response') > 0) {
        settled = true;
        ws.emit('unexpected-response', req, res);
        ws._dispatch({ type: 'HANDSHAKE_FAILED', errorId: 'unexpectedResponse' });
      } else {
        res.resume();
        req.destroy();
        fail(protocolError('unexpectedResponse', String(res.statusCode)), 'unexpectedResponse');
      }
    });

    req.on('upgrade', (res: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      if (req !== currentRequest || settled) {
        socket.destroy();
        return;
      }
      ws.emit('upgrade', res);
      if (maxHeaderCount > 0 && res.rawHeaders.length / 2 > maxHeaderCount) {
        socket.destroy();
        fail(protocolError('responseHeadersTooLarge', `more than ${maxHeaderCount}`), 'responseHeadersTooLarge');
        return;
      }
      const verdict = verifyServerResponse(res, { key, protocols: requested, extensionsOffered: deflateConfig ? [EXTENSION_NAME] : [] });
      if (!verdict.ok) {
        socket.destroy();
        fail(verdict.error, verdict.error.id);
        return;
      }
      // RFC 7692 section 7.1: a response the client cannot accept fails the connection.
      const negotiated = deflateConfig ? acceptResponse(verdict.extensions, deflateConfig) : { ok: true as const, params: undefined };
      if (!negotiated.ok) {
        socket.destroy();
        fail(negotiated.error, negotiated.error.id);
        return;
      }
      settled = true;
      ws._setSocket(socket);
      const deflate = negotiated.params ? new PerMessageDeflate(negotiated.params, 'client', deflateConfig!, Number(settings.maxPayload ?? 0)) : null;
      ws._open(verdict.protocol, deflate ? deflate.describe() : {}, head, deflate);
    });

    req.end();
  };

  request(target);
}

/** Options of http.request that ws passes through to the request as they are. */
function pickRequestOptions(options: ClientOptionsInput): Partial<https.RequestOptions> {
  const out: Record<string, unknown> = {};
  for (const key of ['timeout', 'lookup', 'family', 'signal', 'socketPath', 'auth', 'createConnection', 'setHost']) {
    if (options[key] !== undefined) out[key] = options[key];
  }
  return out;
}
