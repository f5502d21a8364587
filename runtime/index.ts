/**
 * wirestate's main entry point: a drop-in for `ws` (`import { WebSocketServer, WebSocket } from
 * 'wirestate'`), plus what the spec makes visible: the lifecycle of every connection, typed options
 * and the protocol tables.
 */
export { WebSocket, type LifecycleStep, type BinaryType, type SendOptions } from './websocket.js';
export { WebSocketServer, type VerifyClientInfo } from './server.js';
export { WebSocketProtocolError } from './errors.js';
export { OptionsError, normalizeOptions } from './options.js';
export { CloseCode, Opcode, protocolErrors, isSendableCloseCode, isValidReceivedCloseCode } from '../generated/protocol.generated.js';
export { connectionMachine } from '../generated/connection.machine.generated.js';
export { serverMachine } from '../generated/server.machine.generated.js';
export { settingsTable } from '../generated/options.generated.js';
export { createWebSocketStream } from './stream.js';
export { recordLifecycle, type LineSink, type RecordOptions } from './viz/record.js';
import { WebSocket } from './websocket.js';
import { WebSocketServer } from './server.js';
export default WebSocket;
/** ws's aliases: `WebSocket.Server`, `WebSocket.WebSocketServer`. */
Object.assign(WebSocket, { Server: WebSocketServer, WebSocketServer, WebSocket });
