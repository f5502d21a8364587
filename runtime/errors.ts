/**
 * The one place a protocol violation becomes an Error with a close code (CONVENTIONS 4). Every
 * error the codec, the handshake or the connection reports is made here from the generated
 * table, so `err.code`, the close code on the wire and the HTTP status all come from
 * spec/errors.yaml.
 */
import { protocolErrors, type ProtocolErrorCode, type ProtocolErrorId } from '../generated/protocol.generated.js';

export class WebSocketProtocolError extends Error {
  /** ws-compatible error code, e.g. `WS_ERR_INVALID_CLOSE_CODE`. */
  readonly code: ProtocolErrorCode;
  /** The row of spec/errors.yaml this error comes from. */
  readonly id: ProtocolErrorId;
  /** The close code sent to the peer (or reported locally, for handshake errors). */
  readonly closeCode: number;
  /** The HTTP status a server answers with, for handshake errors. */
  readonly status: number | undefined;
  /** The RFC section of the rule that was broken. */
  readonly rfc: string;

  constructor(id: ProtocolErrorId, detail?: string) {
    const row = protocolErrors[id];
    super(detail ? `${row.message}: ${detail}` : row.message);
    this.name = row.stage === 'handshake' ? 'WebSocketHandshakeError' : 'WebSocketProtocolError';
    this.id = id;
    this.code = row.code;
    this.closeCode = row.closeCode;
    this.status = row.status;
    this.rfc = row.rfc;
  }
}

export function protocolError(id: ProtocolErrorId, detail?: string): WebSocketProtocolError {
  return new WebSocketProtocolError(id, detail);
}
