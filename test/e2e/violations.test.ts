/**
 * Protocol violations sent by a scripted raw peer over real sockets (RFC 6455 sections 5, 7.1.7,
 * 7.4, 8.1, 10.4): to a wirestate server (the peer upgrades by hand, then writes hand-built
 * frames) and to a wirestate client (a raw TCP server completes the handshake by hand). Each case
 * checks the close frame the peer receives (1002 / 1007 / 1009), the 'error' event's err.code,
 * that the connection goes away, and that nothing the peer sends afterwards is interpreted.
 */
import { expect } from 'chai';
import type net from 'node:net';
import { WebSocket, type WebSocketServer } from '../../runtime/index.js';
import type { WebSocketProtocolError } from '../../runtime/errors.js';
import {
  FrameReader,
  Resources,
  closeBody,
  closed,
  connect,
  frame,
  nextConnection,
  nextMessage,
  once,
  rawClient,
  rawServer,
  startEchoServer,
} from '../helpers/sockets.js';

const res = new Resources();
afterEach(() => res.closeAll());

interface Violation {
  name: string;
  /** The bytes the peer writes; `masked` is true for a client peer, false for a server peer. */
  bytes: (masked: boolean) => Buffer;
  closeCode: 1002 | 1007 | 1009;
  errorCode: string;
  /** Only against a server, or only against a client (masking rules are role-specific). */
  only?: 'server' | 'client';
}

const text = (payload: Buffer | string, masked: boolean, options: Parameters<typeof frame>[2] = {}) => frame(0x1, payload, { mask: masked, ...options });
const closeWith = (code: number, masked: boolean, reason = '') => frame(0x8, closeBody(code, reason), { mask: masked });

const violations: Violation[] = [
  // RFC 6455 5.2: "RSV1, RSV2, RSV3: 1 bit each. MUST be 0 unless an extension is negotiated"
  { name: 'RSV1 set without an extension', bytes: (m) => text('x', m, { rsv: 4 }), closeCode: 1002, errorCode: 'WS_ERR_UNEXPECTED_RSV_1' },
  { name: 'RSV2 set', bytes: (m) => text('x', m, { rsv: 2 }), closeCode: 1002, errorCode: 'WS_ERR_UNEXPECTED_RSV_2_3' },
  { name: 'RSV3 set', bytes: (m) => text('x', m, { rsv: 1 }), closeCode: 1002, errorCode: 'WS_ERR_UNEXPECTED_RSV_2_3' },
  // 5.2: "If an unknown opcode is received, the receiving endpoint MUST _Fail the WebSocket Connection_."
  { name: 'reserved data opcode 0x3', bytes: (m) => frame(0x3, 'x', { mask: m }), closeCode: 1002, errorCode: 'WS_ERR_INVALID_OPCODE' },
  { name: 'reserved data opcode 0x7', bytes: (m) => frame(0x7, '', { mask: m }), closeCode: 1002, errorCode: 'WS_ERR_INVALID_OPCODE' },
  { name: 'reserved control opcode 0xB', bytes: (m) => frame(0xb, '', { mask: m }), closeCode: 1002, errorCode: 'WS_ERR_INVALID_OPCODE' },
  { name: 'reserved control opcode 0xF', bytes: (m) => frame(0xf, 'x', { mask: m }), closeCode: 1002, errorCode: 'WS_ERR_INVALID_OPCODE' },
  // 5.5: "All control frames MUST have a payload length of 125 bytes or less and MUST NOT be fragmented."
  { name: 'fragmented ping', bytes: (m) => frame(0x9, 'x', { mask: m, fin: false }), closeCode: 1002, errorCode: 'WS_ERR_EXPECTED_FIN' },
  { name: 'fragmented close', bytes: (m) => frame(0x8, closeBody(1000), { mask: m, fin: false }), closeCode: 1002, errorCode: 'WS_ERR_EXPECTED_FIN' },
  { name: 'ping of 126 bytes', bytes: (m) => frame(0x9, Buffer.alloc(126), { mask: m }), closeCode: 1002, errorCode: 'WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH' },
  { name: 'pong of 200 bytes', bytes: (m) => frame(0xa, Buffer.alloc(200), { mask: m }), closeCode: 1002, errorCode: 'WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH' },
  // 5.4: fragments of one message are continuations of its first frame.
  { name: 'continuation without a message to continue', bytes: (m) => frame(0x0, 'x', { mask: m }), closeCode: 1002, errorCode: 'WS_ERR_INVALID_OPCODE' },
  { name: 'new text frame inside a fragmented message', bytes: (m) => Buffer.concat([text('a', m, { fin: false }), text('b', m)]), closeCode: 1002, errorCode: 'WS_ERR_INVALID_OPCODE' },
  { name: 'new binary frame inside a fragmented message', bytes: (m) => Buffer.concat([frame(0x2, 'a', { mask: m, fin: false }), frame(0x2, 'b', { mask: m })]), closeCode: 1002, errorCode: 'WS_ERR_INVALID_OPCODE' },
  // 5.1: "a server MUST close the connection upon receiving a frame that is not masked" / "A client
  // MUST close a connection if it detects a masked frame."
  { name: 'unmasked frame from a client', bytes: () => text('x', false), closeCode: 1002, errorCode: 'WS_ERR_EXPECTED_MASK', only: 'server' },
  { name: 'masked frame from a server', bytes: () => text('x', true), closeCode: 1002, errorCode: 'WS_ERR_UNEXPECTED_MASK', only: 'client' },
  // 5.2: "the most significant bit MUST be 0"; "the minimal number of bytes MUST be used to encode the length"
  { name: '64-bit length with its most significant bit set', bytes: (m) => text(Buffer.alloc(0), m, { length: 2n ** 63n + 1n, lengthForm: 64 }), closeCode: 1002, errorCode: 'WS_ERR_INVALID_PAYLOAD_LENGTH' },
  { name: 'length 5 encoded in 16 bits', bytes: (m) => text('hello', m, { lengthForm: 16 }), closeCode: 1002, errorCode: 'WS_ERR_INVALID_PAYLOAD_LENGTH' },
  // 8.1: "When an endpoint is to interpret a byte stream as UTF-8 but finds that the byte stream is
  // not, in fact, a valid UTF-8 stream, that endpoint MUST _Fail the WebSocket Connection_."
  { name: 'invalid UTF-8 in a text message', bytes: (m) => text(Buffer.from([0x68, 0xff, 0x69]), m), closeCode: 1007, errorCode: 'WS_ERR_INVALID_UTF8' },
  { name: 'invalid UTF-8 in the first fragment (message not finished)', bytes: (m) => text(Buffer.from([0xc0, 0x80]), m, { fin: false }), closeCode: 1007, errorCode: 'WS_ERR_INVALID_UTF8' },
  { name: 'a UTF-16 surrogate in a continuation', bytes: (m) => Buffer.concat([text('ok', m, { fin: false }), frame(0x0, Buffer.from([0xed, 0xa0, 0x80]), { mask: m, fin: false })]), closeCode: 1007, errorCode: 'WS_ERR_INVALID_UTF8' },
  { name: 'a message ending inside a UTF-8 sequence', bytes: (m) => text(Buffer.from([0xe2, 0x82]), m), closeCode: 1007, errorCode: 'WS_ERR_INVALID_UTF8' },
  { name: 'invalid UTF-8 in a close reason', bytes: (m) => frame(0x8, Buffer.concat([closeBody(1000), Buffer.from([0xff])]), { mask: m }), closeCode: 1007, errorCode: 'WS_ERR_INVALID_UTF8' },
  // 5.5.1: a close body, if any, starts with a 2-byte status code.
  { name: 'close payload of 1 byte', bytes: (m) => frame(0x8, Buffer.from([0x03]), { mask: m }), closeCode: 1002, errorCode: 'WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH' },
  // 7.4: codes that MUST NOT be sent, and codes outside the defined ranges.
  ...[999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535].map(
    (code): Violation => ({ name: `close code ${code}`, bytes: (m) => closeWith(code, m), closeCode: 1002, errorCode: 'WS_ERR_INVALID_CLOSE_CODE' }),
  ),
  // 10.4: limits (maxPayload is 1000 in these tests), checked from the header before the payload arrives.
  { name: 'a message over maxPayload', bytes: (m) => frame(0x2, Buffer.alloc(1001), { mask: m }), closeCode: 1009, errorCode: 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' },
  { name: 'a frame announcing 1 TiB (no payload sent)', bytes: (m) => frame(0x2, Buffer.alloc(0), { mask: m, length: 2n ** 40n }), closeCode: 1009, errorCode: 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' },
  { name: 'fragments adding up to more than maxPayload', bytes: (m) => Buffer.concat([frame(0x2, Buffer.alloc(600), { mask: m, fin: false }), frame(0x0, Buffer.alloc(600), { mask: m })]), closeCode: 1009, errorCode: 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' },
];

/** Valid codes a peer may send, which must be accepted and reported as they are. */
const validCloseCodes = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999];

const LIMIT = 1000;

/** A wirestate server and a raw client peer connected to it (the peer's frames are masked). */
async function serverUnderTest(options: Record<string, unknown> = {}, listenForErrors = true) {
  const { wss, port, url } = await startEchoServer(res, { maxPayload: LIMIT, ...options });
  const connection = nextConnection(wss);
  const { socket, reader } = await rawClient(res, port);
  const { ws } = await connection;
  const errors: WebSocketProtocolError[] = [];
  const readyStatesOnError: number[] = [];
  if (listenForErrors) {
    ws.on('error', (error: WebSocketProtocolError) => {
      errors.push(error);
      readyStatesOnError.push(ws.readyState);
    });
  }
  const messages: Buffer[] = [];
  ws.on('message', (data: Buffer) => messages.push(data));
  return { wss, url, ws, socket, reader, errors, readyStatesOnError, messages, masked: true };
}

/** A wirestate client and a raw server peer that completed its handshake (the peer's frames are unmasked). */
async function clientUnderTest(options: Record<string, unknown> = {}) {
  let peer: { socket: net.Socket; reader: FrameReader } | undefined;
  const { url } = await rawServer(res, (socket, reader) => (peer = { socket, reader }));
  const ws = await connect(res, url, [], { maxPayload: LIMIT, ...options });
  const errors: WebSocketProtocolError[] = [];
  const readyStatesOnError: number[] = [];
  ws.on('error', (error: WebSocketProtocolError) => {
    errors.push(error);
    readyStatesOnError.push(ws.readyState);
  });
  const messages: Buffer[] = [];
  ws.on('message', (data: Buffer) => messages.push(data));
  return { ws, socket: peer!.socket, reader: peer!.reader, errors, readyStatesOnError, messages, masked: false };
}

describe('protocol violations from a raw peer (e2e)', function () {
  this.timeout(10000);

  for (const role of ['server', 'client'] as const) {
    describe(`against a wirestate ${role}`, () => {
      for (const v of violations) {
        if (v.only && v.only !== role) continue;
        it(`${v.name} → close ${v.closeCode}, ${v.errorCode}`, async () => {
          const endpoint = role === 'server' ? await serverUnderTest() : await clientUnderTest();
          const { ws, socket, reader, errors, readyStatesOnError, messages, masked } = endpoint;
          const wsClosed = closed(ws);
          socket.write(v.bytes(masked));
          const close = await reader.closeFrame();
          expect(close.code, 'close code on the wire').to.equal(v.closeCode);
          // A client masks its frames, a server does not (RFC 6455 5.1) — the close frame too.
          expect(close.frame.masked).to.equal(role === 'client');
          expect(errors.map((e) => e.code)).to.deep.equal([v.errorCode]);
          expect(errors[0]!.closeCode).to.equal(v.closeCode);
          // As in ws, the error is reported once the connection is already closing.
          expect(readyStatesOnError).to.deep.equal([WebSocket.CLOSING]);
          expect(ws.readyState).to.be.oneOf([WebSocket.CLOSING, WebSocket.CLOSED]);
          // 7.1.7: after failing the connection nothing more is processed — not data, not a close.
          socket.write(Buffer.concat([text('after the failure', masked), closeWith(1000, masked, 'late')]));
          // The failing endpoint closes TCP (the server at once, the client after its close frame is flushed).
          await reader.end();
          const { code } = await wsClosed;
          // The peer's close frame never counted: the connection was failed, as ws reports it (1006).
          expect(code).to.equal(1006);
          expect(ws.lifecycle).to.equal('terminated');
          expect(messages).to.deep.equal([]);
          expect(reader.frames.filter((f) => f.opcode === 0x8)).to.have.length(1);
        });
      }

      for (const code of validCloseCodes) {
        it(`close code ${code} from the peer is accepted, echoed and reported`, async () => {
          const { ws, socket, reader, errors, masked } = role === 'server' ? await serverUnderTest() : await clientUnderTest();
          const wsClosed = closed(ws);
          socket.write(closeWith(code, masked, 'why'));
          const echoed = await reader.closeFrame();
          expect([echoed.code, echoed.reason]).to.deep.equal([code, 'why']);
          socket.end();
          expect(await wsClosed).to.deep.equal({ code, reason: 'why' });
          expect(errors).to.deep.equal([]);
        });
      }

      it('an empty close frame is answered with an empty close frame and reported as 1005', async () => {
        const { ws, socket, reader, masked } = role === 'server' ? await serverUnderTest() : await clientUnderTest();
        const wsClosed = closed(ws);
        socket.write(frame(0x8, Buffer.alloc(0), { mask: masked }));
        const echoed = await reader.closeFrame();
        expect(echoed.frame.payload.length).to.equal(0);
        socket.end();
        expect(await wsClosed).to.deep.equal({ code: 1005, reason: '' });
      });

      it('data sent after a valid close frame is ignored', async () => {
        const { ws, socket, reader, messages, errors, masked } = role === 'server' ? await serverUnderTest() : await clientUnderTest();
        const wsClosed = closed(ws);
        socket.write(Buffer.concat([text('before', masked), closeWith(1000, masked, 'bye'), text('after', masked), frame(0x3, 'even a violation', { mask: masked })]));
        await reader.closeFrame();
        socket.end();
        expect(await wsClosed).to.deep.equal({ code: 1000, reason: 'bye' });
        expect(messages.map((m) => m.toString())).to.deep.equal(['before']);
        expect(errors).to.deep.equal([]);
      });

      it('control frames interleaved in a fragmented message are handled, the message still assembles', async () => {
        const { ws, socket, reader, masked } = role === 'server' ? await serverUnderTest() : await clientUnderTest();
        const message = nextMessage(ws);
        const ping = once(ws, 'ping');
        socket.write(Buffer.concat([text('frag', masked, { fin: false }), frame(0x9, 'in between', { mask: masked }), frame(0x0, 'ment', { mask: masked })]));
        expect((await message).data.toString()).to.equal('fragment');
        expect(((await ping)[0] as Buffer).toString()).to.equal('in between');
        await reader.until(() => reader.frames.some((f) => f.opcode === 0xa), 'the pong');
        expect(reader.frames.find((f) => f.opcode === 0xa)!.payload.toString()).to.equal('in between');
      });

      it('a message exactly at maxPayload, fragmented, is accepted; valid UTF-8 split across fragments is accepted', async () => {
        const { ws, socket, messages, errors, masked } = role === 'server' ? await serverUnderTest() : await clientUnderTest();
        const euro = Buffer.from('€'); // 3 bytes, split 1 + 2 across frames
        socket.write(Buffer.concat([frame(0x2, Buffer.alloc(500), { mask: masked, fin: false }), frame(0x0, Buffer.alloc(500), { mask: masked })]));
        socket.write(Buffer.concat([text(euro.subarray(0, 1), masked, { fin: false }), frame(0x0, euro.subarray(1), { mask: masked })]));
        await new Promise<void>((resolve) => {
          const check = () => (messages.length === 2 ? resolve() : setTimeout(check, 5));
          check();
        });
        expect(messages[0]!.length).to.equal(1000);
        expect(messages[1]!.toString()).to.equal('€');
        expect(errors).to.deep.equal([]);
        expect(ws.readyState).to.equal(WebSocket.OPEN);
      });
    });
  }

  describe('without an error listener', () => {
    it('the process survives a violation on a server connection nobody listens to, and the server keeps working', async () => {
      const { wss, url, ws, socket, reader, masked } = await serverUnderTest({}, false);
      expect(ws.listenerCount('error')).to.equal(0);
      socket.write(frame(0x3, 'bad', { mask: masked }));
      expect((await reader.closeFrame()).code).to.equal(1002);
      await reader.end();
      const next = await connect(res, url);
      next.send('still serving');
      expect((await nextMessage(next)).data.toString()).to.equal('still serving');
      expect((wss as WebSocketServer).lifecycle).to.equal('listening');
    });

    it('the process survives a violation on a client connection nobody listens to', async () => {
      let peer: { socket: net.Socket; reader: FrameReader } | undefined;
      const { url } = await rawServer(res, (socket, reader) => (peer = { socket, reader }));
      const ws = await connect(res, url);
      const wsClosed = closed(ws);
      peer!.socket.write(frame(0x1, Buffer.from([0xff]), { mask: false }));
      expect((await peer!.reader.closeFrame()).code).to.equal(1007);
      expect((await wsClosed).code).to.equal(1006);
    });
  });

  it('a violation on one connection does not disturb another one', async () => {
    const { wss, url, socket, reader, masked } = await serverUnderTest();
    const connection = nextConnection(wss);
    const other = await connect(res, url);
    await connection;
    socket.write(frame(0x0, 'orphan continuation', { mask: masked }));
    await reader.closeFrame();
    other.send('unaffected');
    expect((await nextMessage(other)).data.toString()).to.equal('unaffected');
    expect(other.readyState).to.equal(WebSocket.OPEN);
  });
});
