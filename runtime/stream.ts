/**
 * createWebSocketStream(ws): a Duplex over a WebSocket, as ws offers it — what is written is sent as
 * messages, messages received are read as data; ending the stream closes the connection.
 */
import { Duplex } from 'node:stream';
import type { WebSocket } from './websocket.js';

export function createWebSocketStream(ws: WebSocket, options: { objectMode?: boolean; readableObjectMode?: boolean; writableObjectMode?: boolean } = {}): Duplex {
  let resumeOnReceiverDrain = true;
  const stream = new Duplex({
    ...options,
    autoDestroy: false,
    emitClose: false,
    read() {
      if (ws.isPaused && resumeOnReceiverDrain) ws.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      if (ws.readyState === ws.CONNECTING) {
        ws.once('open', () => stream._write(chunk, _encoding, callback));
        return;
      }
      ws.send(chunk, callback);
    },
    final(callback) {
      if (ws.readyState === ws.CLOSED) return callback();
      ws.once('close', () => callback());
      if (ws.readyState === ws.CONNECTING) ws.once('open', () => ws.close());
      else ws.close();
    },
    destroy(error, callback) {
      if (ws.readyState !== ws.CLOSED) ws.terminate();
      callback(error);
    },
  });
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    const chunk = !isBinary && stream.readableObjectMode ? data.toString() : data;
    if (!stream.push(chunk)) {
      resumeOnReceiverDrain = true;
      ws.pause();
    }
  });
  ws.once('error', (error: Error) => stream.destroy(error));
  ws.once('close', () => stream.push(null));
  return stream;
}
