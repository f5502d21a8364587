/**
 * The engine both dialect facades (`wirestate/websocket`, `wirestate/ipworks`) run on: wirestate's
 * own WebSocketServer (runtime/server.ts) in noServer mode, built from settings that are already
 * canonical. The facades normalize their users' options through their own dialect's schema
 * (normalizeOptions('websocket' | 'ipworks', 'server', …)), so names, defaults and errors are that
 * dialect's; runtime/server.ts would normalize them again as ws options, which they are not.
 *
 * The engine keeps every behaviour of the runtime: the opening handshake checks, the generated
 * server and connection machines, keep-alive, close timeout, fragmentation and size limits. The
 * facade hands it upgrade requests (handleUpgrade) from whatever HTTP servers it listens on and
 * decides acceptance through the canonical verifyClient / handleProtocols hooks.
 */
import type { IncomingMessage } from 'node:http';
import type { ServerOptions } from '../options.js';
import { WebSocketServer } from '../server.js';

export type CanonicalServerSettings = Required<ServerOptions>;

/** Settings that only describe how the runtime would bind its own server; the engine never binds. */
const BINDING_SETTINGS = { port: undefined, server: undefined, noServer: true } as const;

export class Engine extends WebSocketServer {
  /**
   * `settings` are canonical (the output of normalizeOptions for any dialect). Binding settings
   * (port, server) are dropped: the facade owns the listening sockets.
   */
  constructor(settings: CanonicalServerSettings) {
    super({ noServer: true });
    this.reconfigure(settings);
    // The runtime emits 'error' for exceptions thrown by verifyClient; a facade reports them itself.
    this.on('error', () => {});
  }

  /**
   * Replaces the settings used for connections accepted from now on. Connections already open keep
   * the settings they were accepted with (each holds its own reference), as in every dialect.
   */
  reconfigure(settings: CanonicalServerSettings): void {
    (this as { options: CanonicalServerSettings }).options = { ...settings, ...BINDING_SETTINGS } as unknown as CanonicalServerSettings;
  }
}

/** The close codes' usual descriptions (as WebSocket-Node and IPWorks word them in spirit). */
export const CLOSE_DESCRIPTIONS: Readonly<Record<number, string>> = {
  1000: 'Normal connection closure',
  1001: 'Remote peer is going away',
  1002: 'Remote peer terminated connection due to protocol error',
  1003: 'Remote peer terminated connection due to unacceptable data type',
  1004: 'Reserved',
  1005: 'No status received',
  1006: 'Abnormal connection closure',
  1007: 'Remote peer terminated connection due to invalid data',
  1008: 'Remote peer terminated connection due to policy violation',
  1009: 'Remote peer terminated connection due to message too big',
  1010: 'Remote peer terminated connection due to missing extension',
  1011: 'Remote peer terminated connection due to server error',
  1012: 'Service restart',
  1013: 'Try again later',
  1014: 'Bad gateway',
  1015: 'TLS handshake failed',
};

/** Cuts a string to at most `limit` UTF-8 bytes without splitting a character (close reasons: 123). */
export { truncateUtf8 } from '../websocket.js';

/** The request's raw headers as HTTP lines ("Name: value", CRLF-separated), as a client sent them. */
export function rawHeaderLines(req: IncomingMessage): string {
  const lines: string[] = [];
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
  return lines.join('\r\n');
}

/** Removes CR and LF so an application-supplied value cannot inject header lines. */
export function sanitizeHeaderValue(value: string): string {
  return value.replace(/[\r\n]/g, '');
}
