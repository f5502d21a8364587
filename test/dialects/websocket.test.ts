/**
 * wirestate/websocket, in WebSocket-Node's own vocabulary, over real loopback sockets. The client is
 * the `websocket` npm package itself (WebSocket-Node 1.0.35), so each test also shows that code
 * written for that library talks to wirestate; a raw peer stands in where a client must misbehave
 * (never answering a ping or a close frame).
 */
import { expect } from 'chai';
import type http from 'node:http';
import type { Socket } from 'node:net';
import websocketPkg from 'websocket';
import websocketDialect, {
  WebSocketConnection,
  WebSocketFrame,
  WebSocketRequest,
  WebSocketServer,
  type WebSocketServerConfig,
} from '../../runtime/dialects/websocket.js';
import { OptionsError } from '../../runtime/options.js';
import { RawPeer, delay, httpServer, once, quiet, rawRequest, until } from './helpers.js';

const { client: WebSocketClient } = websocketPkg;

/* eslint-disable @typescript-eslint/no-explicit-any */
type ClientConnection = any;

interface Mounted {
  wss: WebSocketServer;
  port: number;
  http: http.Server;
}

describe('wirestate/websocket (WebSocket-Node API)', function () {
  this.timeout(10000);
  let cleanups: (() => unknown)[] = [];

  afterEach(async () => {
    const list = cleanups.reverse();
    cleanups = [];
    for (const cleanup of list) await cleanup();
  });

  async function mount(config: Omit<WebSocketServerConfig, 'httpServer'> = {}, onRequest?: (request: WebSocketRequest) => void): Promise<Mounted> {
    const h = await httpServer();
    const wss = new WebSocketServer({ httpServer: h.server, ...config });
    if (onRequest) wss.on('request', onRequest);
    cleanups.push(async () => {
      for (const connection of [...wss.connections]) connection.drop(1001, 'test over', true);
      wss.shutDown();
      await h.close();
    });
    return { wss, port: h.port, http: h.server };
  }

  /** Connects a WebSocket-Node client; resolves with its connection (and the client, for its response). */
  async function connect(
    port: number,
    options: { path?: string; protocols?: string[]; origin?: string; headers?: Record<string, string>; config?: Record<string, unknown> } = {},
  ): Promise<{ client: any; connection: ClientConnection }> {
    const client = new WebSocketClient(options.config ?? {});
    const connected = new Promise<ClientConnection>((resolve, reject) => {
      client.once('connect', resolve);
      client.once('connectFailed', reject);
    });
    client.connect(`ws://127.0.0.1:${port}${options.path ?? '/'}`, options.protocols ?? null, options.origin, options.headers);
    const connection = await connected;
    cleanups.push(() => connection.socket.destroy());
    return { client, connection };
  }

  /** Connects and expects the handshake to fail; resolves with the client's error. */
  async function connectFails(port: number, options: { protocols?: string[]; headers?: Record<string, string> } = {}): Promise<Error> {
    const client = new WebSocketClient();
    const failed = new Promise<Error>((resolve, reject) => {
      client.once('connect', (connection: ClientConnection) => {
        connection.socket.destroy();
        reject(new Error('connected, but the handshake should have failed'));
      });
      client.once('connectFailed', resolve);
    });
    client.connect(`ws://127.0.0.1:${port}/`, options.protocols ?? null, undefined, options.headers);
    return failed;
  }

  /** Accepts every request (with the first requested protocol) and resolves with the next connection. */
  function acceptAll(wss: WebSocketServer): void {
    wss.on('request', (request: WebSocketRequest) => request.accept(request.requestedProtocols[0], request.origin));
  }

  // ------------------------------------------------------------------ module and config

  describe('module and configuration', () => {
    it('has the shape of require("websocket"): server, request, connection, frame', () => {
      expect(websocketDialect.server).to.equal(WebSocketServer);
      expect(websocketDialect.request).to.equal(WebSocketRequest);
      expect(websocketDialect.connection).to.equal(WebSocketConnection);
      expect(websocketDialect.frame).to.equal(WebSocketFrame);
    });

    it('fills in every option of the reference with its WebSocket-Node default', async () => {
      const { wss } = await mount();
      expect(wss.config).to.include({
        maxReceivedFrameSize: 0x10000,
        maxReceivedMessageSize: 0x100000,
        fragmentOutgoingMessages: true,
        fragmentationThreshold: 0x4000,
        keepalive: true,
        keepaliveInterval: 20000,
        dropConnectionOnKeepaliveTimeout: true,
        keepaliveGracePeriod: 10000,
        assembleFragments: true,
        autoAcceptConnections: false,
        closeTimeout: 5000,
        disableNagleAlgorithm: true,
        ignoreXForwardedFor: false,
        parseExtensions: true,
        parseCookies: true,
      });
      // ...normalized onto wirestate's canonical settings.
      expect(wss.settings).to.include({ maxPayload: 0x100000, maxReceivedFrameSize: 0x10000, autoFragment: true, trustXForwardedFor: true, noDelay: true });
    });

    it('reports every invalid option at once, in WebSocket-Node names', async () => {
      const h = await httpServer();
      cleanups.push(() => h.close());
      let error: unknown;
      try {
        new WebSocketServer({ httpServer: h.server, maxReceivedFrameSize: -1, closeTimeout: 'soon', maxPayload: 10 } as unknown as WebSocketServerConfig);
      } catch (e) {
        error = e;
      }
      expect(error).to.be.instanceOf(OptionsError);
      const problems = (error as OptionsError).problems.map((p) => p.option).sort();
      expect(problems).to.deep.equal(['closeTimeout', 'maxPayload', 'maxReceivedFrameSize']);
      expect((error as Error).message).to.match(/"maxPayload" is the ws name of what this API calls "maxReceivedMessageSize"/);
    });

    it('requires an httpServer', () => {
      expect(() => new WebSocketServer({ keepalive: false })).to.throw(/You must specify an httpServer/);
    });

    it('mount(config) attaches later; unmount() stops new connections and leaves open ones alone', async () => {
      const h = await httpServer();
      cleanups.push(() => h.close());
      const wss = new WebSocketServer();
      cleanups.push(() => wss.shutDown());
      acceptAll(wss);
      await connectFails(h.port); // not mounted: nobody answers the upgrade
      wss.mount({ httpServer: h.server, keepalive: false });
      const { connection } = await connect(h.port);
      wss.unmount();
      await connectFails(h.port);
      // The connection made before unmount() still works both ways.
      const echoed = once<[any]>(connection, 'message');
      wss.connections[0]!.on('message', (m: any) => wss.connections[0]!.sendUTF(`echo ${m.utf8Data}`));
      connection.sendUTF('still here');
      const [message] = await echoed;
      expect(message.utf8Data).to.equal('echo still here');
    });

    it('httpServer may be an array: one WebSocketServer answers on several HTTP servers', async () => {
      const a = await httpServer();
      const b = await httpServer();
      cleanups.push(() => a.close(), () => b.close());
      const wss = new WebSocketServer({ httpServer: [a.server, b.server], keepalive: false });
      cleanups.push(() => wss.shutDown());
      acceptAll(wss);
      await connect(a.port);
      await connect(b.port);
      expect(wss.connections).to.have.length(2);
    });
  });

  // ------------------------------------------------------------------ the request event

  describe('the request event', () => {
    it('describes the request: origin, requestedProtocols, resource, httpRequest, key, host, version', async () => {
      const { wss, port } = await mount({ keepalive: false });
      const requested = once<[WebSocketRequest]>(wss, 'request');
      const connecting = connect(port, { path: '/chat?room=7', protocols: ['Chat.V2', 'echo'], origin: 'https://app.example' });
      const [request] = await requested;
      expect(request.origin).to.equal('https://app.example');
      expect(request.requestedProtocols).to.deep.equal(['chat.v2', 'echo']);
      expect(request.resource).to.equal('/chat?room=7');
      expect(request.resourceURL.query).to.deep.equal({ room: '7' });
      expect(request.httpRequest.headers.upgrade).to.match(/websocket/i);
      expect(request.key).to.have.length(24);
      expect(request.host).to.equal(`127.0.0.1:${port}`);
      expect(request.webSocketVersion).to.equal(13);
      const connection = request.accept('chat.v2', request.origin);
      expect(connection).to.be.instanceOf(WebSocketConnection);
      expect(connection.protocol).to.equal('Chat.V2');
      const { connection: client } = await connecting;
      expect(client.protocol).to.equal('Chat.V2');
    });

    it('accept(protocol, origin, cookies) answers with the subprotocol, Origin and Set-Cookie headers', async () => {
      const { port } = await mount({ keepalive: false }, (request) => {
        request.accept('echo', 'https://allowed.example', [
          { name: 'session', value: 'abc123', path: '/', httponly: true, maxage: 60 },
          { name: 'theme', value: 'dark', secure: true },
        ]);
      });
      const { client, connection } = await connect(port, { protocols: ['echo'] });
      expect(connection.protocol).to.equal('echo');
      expect(client.response.headers.origin).to.equal('https://allowed.example');
      expect(client.response.headers['set-cookie']).to.deep.equal(['session=abc123;Path=/;Max-Age=60;HttpOnly', 'theme=dark;Secure']);
    });

    it('accept() refuses a subprotocol the client did not request (500) and invalid cookies', async () => {
      const errors: string[] = [];
      const { port } = await mount({ keepalive: false }, (request) => {
        try {
          request.accept(request.requestedProtocols.length ? 'other' : null, null, request.requestedProtocols.length ? null : [{ name: 'bad(name', value: 'x' }]);
        } catch (error) {
          errors.push((error as Error).message);
        }
      });
      const protocolError = await connectFails(port, { protocols: ['echo'] });
      expect(protocolError.message).to.match(/500/);
      const cookieError = await connectFails(port);
      expect(cookieError.message).to.match(/500/);
      expect(errors).to.deep.equal(['Specified protocol was not requested by the client.', 'Illegal character ( in cookie name']);
    });

    it('reject(status, reason, extraHeaders) answers with that status, X-WebSocket-Reject-Reason and the headers', async () => {
      const { port } = await mount({ keepalive: false }, (request) => request.reject(401, 'token expired', { 'WWW-Authenticate': 'Bearer' }));
      const error = await connectFails(port);
      expect(error.message).to.match(/non-101 status: 401/);
      expect(error.message).to.match(/x-websocket-reject-reason: token expired/i);
      expect(error.message).to.match(/www-authenticate: Bearer/i);
    });

    it('reject() defaults to 403; a request is resolved only once', async () => {
      let second: unknown;
      const { port } = await mount({ keepalive: false }, (request) => {
        request.reject();
        try {
          request.accept();
        } catch (error) {
          second = error;
        }
      });
      const error = await connectFails(port);
      expect(error.message).to.match(/non-101 status: 403/);
      expect((second as Error).message).to.match(/may only be accepted or rejected one time/);
    });

    it('accept() may come later, after asynchronous checks', async () => {
      const { port } = await mount({ keepalive: false }, (request) => {
        setTimeout(() => request.accept(), 50);
      });
      const { connection } = await connect(port);
      expect(connection.connected).to.equal(true);
    });

    it('without a request listener (and autoAcceptConnections off) requests are rejected with 404', async () => {
      const { port } = await mount({ keepalive: false });
      const error = await connectFails(port);
      expect(error.message).to.match(/non-101 status: 404/);
    });

    it('remoteAddress honours X-Forwarded-For unless ignoreXForwardedFor', async () => {
      const seen: WebSocketRequest[] = [];
      const trusting = await mount({ keepalive: false }, (request) => {
        seen.push(request);
        request.accept();
      });
      await connect(trusting.port, { headers: { 'X-Forwarded-For': '203.0.113.7, 10.0.0.2' } });
      expect(seen[0]!.remoteAddress).to.equal('203.0.113.7');
      expect(seen[0]!.remoteAddresses).to.deep.equal(['203.0.113.7', '10.0.0.2', '127.0.0.1']);
      expect(trusting.wss.connections[0]!.remoteAddress).to.equal('203.0.113.7');

      const ignoring = await mount({ keepalive: false, ignoreXForwardedFor: true }, (request) => {
        seen.push(request);
        request.accept();
      });
      await connect(ignoring.port, { headers: { 'X-Forwarded-For': '203.0.113.7' } });
      expect(seen[1]!.remoteAddress).to.equal('127.0.0.1');
      expect(ignoring.wss.connections[0]!.remoteAddress).to.equal('127.0.0.1');
    });

    it('parseExtensions: requestedExtensions lists the offered extensions and their parameters', async () => {
      const seen: WebSocketRequest[] = [];
      const record = (request: WebSocketRequest) => {
        seen.push(request);
        request.accept();
      };
      const headers = { 'Sec-WebSocket-Extensions': 'x-webkit-deflate-frame; no_context_takeover, foo; bar=1' };
      const parsing = await mount({ keepalive: false }, record);
      await connect(parsing.port, { headers });
      expect(seen[0]!.requestedExtensions).to.deep.equal([
        { name: 'x-webkit-deflate-frame', params: [{ name: 'no_context_takeover', value: undefined }] },
        { name: 'foo', params: [{ name: 'bar', value: '1' }] },
      ]);
      const notParsing = await mount({ keepalive: false, parseExtensions: false }, record);
      await connect(notParsing.port, { headers });
      expect(seen[1]!.requestedExtensions).to.deep.equal([]);
    });

    it('parseCookies: cookies lists the Cookie header, values decoded', async () => {
      const seen: WebSocketRequest[] = [];
      const record = (request: WebSocketRequest) => {
        seen.push(request);
        request.accept();
      };
      const headers = { Cookie: 'session=abc%20123; theme="dark"; flag' };
      const parsing = await mount({ keepalive: false }, record);
      await connect(parsing.port, { headers });
      expect(seen[0]!.cookies).to.deep.equal([
        { name: 'session', value: 'abc 123' },
        { name: 'theme', value: 'dark' },
        { name: 'flag', value: null },
      ]);
      const notParsing = await mount({ keepalive: false, parseCookies: false }, record);
      await connect(notParsing.port, { headers });
      expect(seen[1]!.cookies).to.deep.equal([]);
    });

    it('autoAcceptConnections accepts without a request event, with the first requested subprotocol', async () => {
      const { wss, port } = await mount({ keepalive: false, autoAcceptConnections: true });
      let requests = 0;
      wss.on('request', () => requests++);
      const connected = once<[WebSocketConnection]>(wss, 'connect');
      const { connection } = await connect(port, { protocols: ['first', 'second'] });
      const [server] = await connected;
      expect(requests).to.equal(0);
      expect(server.protocol).to.equal('first');
      expect(connection.protocol).to.equal('first');
    });

    it('a hybi-08 (version 8) request is answered 426 with Sec-WebSocket-Version: 13 (wirestate speaks RFC 6455 only)', async () => {
      const { wss, port } = await mount({ keepalive: false, autoAcceptConnections: true });
      const upgradeError = once<[Error]>(wss, 'upgradeError');
      const answer = await rawRequest(port, [
        'GET / HTTP/1.1',
        `Host: 127.0.0.1:${port}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
        'Sec-WebSocket-Version: 8',
      ]);
      expect(answer.status).to.equal(426);
      expect(answer.head).to.match(/Sec-WebSocket-Version: 13/i);
      await upgradeError;
    });

    it('upgradeError reports a malformed upgrade request, which is answered 400', async () => {
      const { wss, port } = await mount({ keepalive: false, autoAcceptConnections: true });
      const upgradeError = once<[Error]>(wss, 'upgradeError');
      const answer = await rawRequest(port, ['GET / HTTP/1.1', `Host: 127.0.0.1:${port}`, 'Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Version: 13']);
      const [error] = await upgradeError;
      expect(answer.status).to.equal(400);
      expect(error.message).to.match(/Sec-WebSocket-Key/i);
    });
  });

  // ------------------------------------------------------------------ server events

  describe('server events', () => {
    it('connect and close (connection, reasonCode, description)', async () => {
      const { wss, port } = await mount({ keepalive: false, autoAcceptConnections: true });
      const connected = once<[WebSocketConnection]>(wss, 'connect');
      const { connection } = await connect(port);
      const [server] = await connected;
      expect(wss.connections).to.deep.equal([server]);
      const closed = once<[WebSocketConnection, number, string]>(wss, 'close');
      connection.close(4001, 'client leaving');
      const [which, code, description] = await closed;
      expect(which).to.equal(server);
      expect(code).to.equal(4001);
      expect(description).to.equal('client leaving');
      expect(wss.connections).to.deep.equal([]);
    });

    it('closeAllConnections() closes every connection with 1000 and refuses pending requests with 503', async () => {
      const { wss, port } = await mount({ keepalive: false });
      let pending: WebSocketRequest | undefined;
      wss.on('request', (request: WebSocketRequest) => {
        if (wss.connections.length < 2) request.accept();
        else pending = request;
      });
      const a = await connect(port);
      const b = await connect(port);
      const refused = connectFails(port);
      await until(() => pending !== undefined);
      const closes = [once<[number, string]>(a.connection, 'close'), once<[number, string]>(b.connection, 'close')];
      wss.closeAllConnections();
      for (const [code] of await Promise.all(closes)) expect(code).to.equal(1000);
      expect((await refused).message).to.match(/non-101 status: 503/);
    });

    it('shutDown() unmounts and closes every connection', async () => {
      const { wss, port } = await mount({ keepalive: false, autoAcceptConnections: true });
      const { connection } = await connect(port);
      const closed = once<[number]>(connection, 'close');
      wss.shutDown();
      const [code] = await closed;
      expect(code).to.equal(1000);
      await connectFails(port);
    });
  });

  // ------------------------------------------------------------------ the connection

  describe('the connection', () => {
    async function pair(config: Omit<WebSocketServerConfig, 'httpServer'> = {}, clientConfig: Record<string, unknown> = {}) {
      const mounted = await mount({ keepalive: false, autoAcceptConnections: true, ...config });
      const connected = once<[WebSocketConnection]>(mounted.wss, 'connect');
      const { connection: client } = await connect(mounted.port, { config: clientConfig });
      const [server] = await connected;
      return { ...mounted, server, client };
    }

    it('sendUTF, sendBytes and send arrive as utf8 / binary messages; callbacks are called', async () => {
      const { server, client } = await pair();
      const received: any[] = [];
      client.on('message', (m: any) => received.push(m));
      const sent: (Error | undefined)[] = [];
      server.sendUTF('héllo', (e) => sent.push(e));
      server.sendBytes(Buffer.from([1, 2, 3]), (e) => sent.push(e));
      server.send('text via send');
      server.send(Buffer.from([9]));
      await until(() => received.length === 4);
      expect(received[0]).to.deep.equal({ type: 'utf8', utf8Data: 'héllo' });
      expect(received[1].type).to.equal('binary');
      expect([...received[1].binaryData]).to.deep.equal([1, 2, 3]);
      expect(received[2]).to.deep.equal({ type: 'utf8', utf8Data: 'text via send' });
      expect([...received[3].binaryData]).to.deep.equal([9]);
      await until(() => sent.length === 2);
      expect(sent).to.deep.equal([undefined, undefined]);
      expect(() => server.sendBytes('not a buffer' as unknown as Buffer)).to.throw(/must pass a Node Buffer/);
    });

    it('message events are shaped { type: "utf8", utf8Data } and { type: "binary", binaryData }', async () => {
      const { server, client } = await pair();
      const received: any[] = [];
      server.on('message', (m) => received.push(m));
      client.sendUTF('from client');
      client.sendBytes(Buffer.from('bytes'));
      await until(() => received.length === 2);
      expect(received[0]).to.deep.equal({ type: 'utf8', utf8Data: 'from client' });
      expect(received[1].type).to.equal('binary');
      expect(received[1].binaryData.toString()).to.equal('bytes');
    });

    it('connected, remoteAddress, protocol and state describe the connection', async () => {
      const { server } = await pair();
      expect(server.connected).to.equal(true);
      expect(server.state).to.equal('open');
      expect(server.remoteAddress).to.equal('127.0.0.1');
      expect(server.protocol).to.equal(undefined);
      expect(server.closeReasonCode).to.equal(-1);
      expect(server.closeDescription).to.equal(null);
      expect(server.webSocketVersion).to.equal(13);
    });

    it('ping(data) reaches the client, which answers; pong(data) sends an unsolicited pong', async () => {
      const { server, client } = await pair();
      const clientPing = once<[() => void, Buffer]>(client, 'ping');
      const serverPong = once<[Buffer]>(server, 'pong');
      server.ping('are you there');
      const [, data] = await clientPing;
      expect(data.toString()).to.equal('are you there');
      const [echo] = await serverPong;
      expect(echo.toString()).to.equal('are you there');
      const clientPong = once<[Buffer]>(client, 'pong');
      server.pong(Buffer.from('heartbeat'));
      const [pong] = await clientPong;
      expect(pong.toString()).to.equal('heartbeat');
    });

    it('a ping listener receives (cancel, data); cancel() suppresses the automatic pong', async () => {
      const { server, client } = await pair();
      const pings: string[] = [];
      server.on('ping', (cancel: () => void, data: Buffer) => {
        pings.push(data.toString());
        if (data.toString() === 'cancel me') cancel();
      });
      const answered = once<[Buffer]>(client, 'pong');
      client.ping('answer me');
      expect((await answered)[0].toString()).to.equal('answer me');
      client.ping('cancel me');
      expect(await quiet(client, 'pong', 200)).to.equal(true);
      expect(pings).to.deep.equal(['answer me', 'cancel me']);
    });

    it('close(reasonCode, description): the client sees them; the server records them and its state', async () => {
      const { wss, server, client } = await pair();
      const clientClosed = once<[number, string]>(client, 'close');
      const serverClosed = once<[WebSocketConnection, number, string]>(wss, 'close');
      server.close(4000, 'maintenance');
      expect(server.connected).to.equal(false);
      expect(server.state).to.equal('ending');
      const [code, description] = await clientClosed;
      expect(code).to.equal(4000);
      expect(description).to.equal('maintenance');
      const [, serverCode, serverDescription] = await serverClosed;
      expect([serverCode, serverDescription]).to.deep.equal([4000, 'maintenance']);
      expect(server.closeReasonCode).to.equal(4000);
      expect(server.closeDescription).to.equal('maintenance');
      expect(server.state).to.equal('closed');
      expect(() => server.close(1005)).not.to.throw(); // no longer connected: ignored
    });

    it('close() defaults to 1000 with its usual description; invalid codes throw', async () => {
      const { server, client } = await pair();
      expect(() => server.close(1006)).to.throw(/Close code 1006 is not valid/);
      const closed = once<[number, string]>(client, 'close');
      server.close();
      const [code] = await closed;
      expect(code).to.equal(1000);
      expect(server.closeDescription).to.equal('Normal connection closure');
    });

    it('a close started by the peer is reported with its code and description', async () => {
      const { server, client } = await pair();
      const closed = once<[number, string]>(server, 'close');
      client.close(1001, 'tab closed');
      const [code, description] = await closed;
      expect([code, description]).to.deep.equal([1001, 'tab closed']);
      expect(server.connected).to.equal(false);
    });

    it('drop(reasonCode, description): close event at once, socket destroyed without waiting', async () => {
      const { wss, server, client } = await pair();
      const clientClosed = once<[number, string]>(client, 'close');
      const events: unknown[][] = [];
      server.on('close', (...args: unknown[]) => events.push(args));
      wss.on('close', () => events.push(['server']));
      server.drop(4002, 'kicked');
      // Both close events fired before drop() returned (the server's listener was attached first).
      expect(events).to.deep.equal([['server'], [4002, 'kicked']]);
      expect(server.state).to.equal('closed');
      const [code, description] = await clientClosed;
      expect([code, description]).to.deep.equal([4002, 'kicked']);
    });

    it('drop() defaults to 1002 (protocol error)', async () => {
      const { server, client } = await pair();
      const clientClosed = once<[number]>(client, 'close');
      server.drop();
      expect(server.closeReasonCode).to.equal(1002);
      expect((await clientClosed)[0]).to.equal(1002);
    });
  });

  // ------------------------------------------------------------------ options with an effect on the wire

  describe('options', () => {
    async function pair(config: Omit<WebSocketServerConfig, 'httpServer'> = {}, clientConfig: Record<string, unknown> = {}) {
      const mounted = await mount({ keepalive: false, autoAcceptConnections: true, ...config });
      const connected = once<[WebSocketConnection]>(mounted.wss, 'connect');
      const { connection: client } = await connect(mounted.port, { config: clientConfig });
      const [server] = await connected;
      return { ...mounted, server, client };
    }

    it('maxReceivedFrameSize: a larger frame closes the connection with 1009', async () => {
      const { server, client } = await pair({ maxReceivedFrameSize: 1000 }, { fragmentOutgoingMessages: false });
      const closed = once<[number]>(client, 'close');
      const serverClosed = once<[number]>(server, 'close');
      client.sendBytes(Buffer.alloc(1001));
      expect((await closed)[0]).to.equal(1009);
      expect((await serverClosed)[0]).to.equal(1009);
    });

    it('maxReceivedMessageSize: a larger message, even in small frames, closes the connection with 1009', async () => {
      const { server, client } = await pair({ maxReceivedMessageSize: 2000 }, { fragmentationThreshold: 500 });
      let messages = 0;
      server.on('message', () => messages++);
      const closed = once<[number]>(client, 'close');
      client.sendBytes(Buffer.alloc(1500)); // within the limit
      client.sendBytes(Buffer.alloc(2500));
      expect((await closed)[0]).to.equal(1009);
      expect(messages).to.equal(1);
    });

    it('fragmentOutgoingMessages / fragmentationThreshold: messages go out in frames of at most the threshold', async () => {
      const fragmenting = await pair({ fragmentationThreshold: 30 }, { assembleFragments: false });
      const frames: any[] = [];
      fragmenting.client.on('frame', (f: any) => frames.push(f));
      fragmenting.server.sendBytes(Buffer.alloc(100, 7));
      await until(() => frames.some((f) => f.fin));
      expect(frames.map((f) => f.binaryPayload.length)).to.deep.equal([30, 30, 30, 10]);

      const whole = await pair({ fragmentOutgoingMessages: false, fragmentationThreshold: 30 }, { assembleFragments: false });
      const single: any[] = [];
      whole.client.on('frame', (f: any) => single.push(f));
      whole.server.sendBytes(Buffer.alloc(100, 7));
      await until(() => single.length === 1);
      expect(single[0].fin).to.equal(true);
      expect(single[0].binaryPayload.length).to.equal(100);
    });

    it('assembleFragments false: a frame event per frame, no message event', async () => {
      const { server, client } = await pair({ assembleFragments: false }, { fragmentationThreshold: 10 });
      const frames: WebSocketFrame[] = [];
      let messages = 0;
      server.on('frame', (f: WebSocketFrame) => frames.push(f));
      server.on('message', () => messages++);
      client.sendUTF('abcdefghij0123456789xyz');
      await until(() => frames.some((f) => f.fin));
      expect(frames.map((f) => [f.opcode, f.fin, f.binaryPayload.toString()])).to.deep.equal([
        [WebSocketFrame.TEXT_FRAME, false, 'abcdefghij'],
        [WebSocketFrame.CONTINUATION, false, '0123456789'],
        [WebSocketFrame.CONTINUATION, true, 'xyz'],
      ]);
      expect(frames[0]!.length).to.equal(10);
      await delay(20);
      expect(messages).to.equal(0);
    });

    it('keepalive / keepaliveInterval: a quiet connection is pinged every interval', async () => {
      const { client } = await pair({ keepalive: true, keepaliveInterval: 60 });
      const pinged = once(client, 'ping', 1000);
      await pinged;
      const quietOne = await pair({ keepalive: false, keepaliveInterval: 60 });
      expect(await quiet(quietOne.client, 'ping', 300)).to.equal(true);
    });

    it('dropConnectionOnKeepaliveTimeout / keepaliveGracePeriod: a peer that never answers is dropped after the grace period', async () => {
      const { wss, port } = await mount({ autoAcceptConnections: true, keepaliveInterval: 50, keepaliveGracePeriod: 100 });
      const connected = once<[WebSocketConnection]>(wss, 'connect');
      const peer = await RawPeer.connect(port);
      cleanups.push(() => peer.destroy());
      const [server] = await connected;
      const closed = once<[number, string]>(server, 'close', 2000);
      const started = Date.now();
      await peer.nextFrame(0x9); // the keepalive ping, never answered
      const [code, description] = await closed;
      expect(code).to.equal(1006);
      expect(description).to.match(/keep-alive|grace/i);
      expect(Date.now() - started).to.be.within(60, 1500);
      await peer.waitClosed();
    });

    it('dropConnectionOnKeepaliveTimeout false: an unanswering peer keeps being pinged and stays connected', async () => {
      const { wss, port } = await mount({ autoAcceptConnections: true, keepaliveInterval: 40, keepaliveGracePeriod: 40, dropConnectionOnKeepaliveTimeout: false });
      const connected = once<[WebSocketConnection]>(wss, 'connect');
      const peer = await RawPeer.connect(port);
      cleanups.push(() => peer.destroy());
      const [server] = await connected;
      await peer.nextFrame(0x9, 1000);
      await peer.nextFrame(0x9, 1000);
      expect(server.connected).to.equal(true);
      expect(peer.closed).to.equal(false);
    });

    it('useNativeKeepalive: TCP keep-alive probes instead of WebSocket pings', async () => {
      const { wss, port, http: server } = await mount({ autoAcceptConnections: true, keepaliveInterval: 40, useNativeKeepalive: true });
      const calls: unknown[][] = [];
      server.prependListener('upgrade', (_req: http.IncomingMessage, socket: Socket) => {
        const original = socket.setKeepAlive.bind(socket);
        socket.setKeepAlive = (...args: Parameters<Socket['setKeepAlive']>) => {
          calls.push(args);
          return original(...args);
        };
      });
      const connected = once<[WebSocketConnection]>(wss, 'connect');
      const { connection: client } = await connect(port);
      await connected;
      expect(calls).to.deep.include([true, 40]);
      expect(await quiet(client, 'ping', 250)).to.equal(true);
    });

    it('closeTimeout: when the peer never answers our close frame, the socket is closed after closeTimeout', async () => {
      const { wss, port } = await mount({ keepalive: false, autoAcceptConnections: true, closeTimeout: 150 });
      const connected = once<[WebSocketConnection]>(wss, 'connect');
      const peer = await RawPeer.connect(port);
      cleanups.push(() => peer.destroy());
      const [server] = await connected;
      const closed = once<[number, string]>(server, 'close', 2000);
      const started = Date.now();
      server.close(1000, 'bye');
      const closeFrame = await peer.nextFrame(0x8);
      expect(closeFrame.payload.readUInt16BE(0)).to.equal(1000);
      const [code] = await closed;
      const elapsed = Date.now() - started;
      expect(code).to.equal(1000); // our own code, as WebSocket-Node reports it
      expect(elapsed).to.be.within(120, 1500);
      await peer.waitClosed();
    });

    it('disableNagleAlgorithm sets TCP_NODELAY on each connection (true by default)', async () => {
      const recorded: boolean[] = [];
      const spy = (server: http.Server) =>
        server.prependListener('upgrade', (_req: http.IncomingMessage, socket: Socket) => {
          const original = socket.setNoDelay.bind(socket);
          socket.setNoDelay = (noDelay?: boolean) => {
            recorded.push(noDelay ?? true);
            return original(noDelay);
          };
        });
      const nagleOff = await mount({ keepalive: false, autoAcceptConnections: true });
      spy(nagleOff.http);
      await connect(nagleOff.port);
      const nagleOn = await mount({ keepalive: false, autoAcceptConnections: true, disableNagleAlgorithm: false });
      spy(nagleOn.http);
      await connect(nagleOn.port);
      expect(recorded).to.deep.equal([true, false]);
    });
  });
});
