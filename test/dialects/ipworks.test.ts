/**
 * wirestate/ipworks, in the IPWorks WebSocketServer's own vocabulary, over real loopback sockets.
 * Clients are wirestate's own WebSocket (runtime/websocket.ts); a raw peer stands in where a client
 * must misbehave, and plain tls.connect where only the TLS handshake matters.
 */
import { expect } from 'chai';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import type { IncomingMessage } from 'node:http';
import { dialectBindings } from '../../generated/options.generated.js';
import {
  CertStoreTypes,
  DataFormats,
  IPWorksError,
  WSServer,
  WebSocketServer,
  type ConnectedEvent,
  type ConnectionRequestEvent,
  type DataInEvent,
  type DisconnectedEvent,
  type ErrorEvent,
  type LogEvent,
  type SSLClientAuthenticationEvent,
  type SSLConnectionRequestEvent,
  type SSLStatusEvent,
  type WebSocketConnection,
  type WebSocketOpenRequestEvent,
} from '../../runtime/dialects/ipworks.js';
import { tlsServerOptions } from '../../runtime/dialects/ipworks-tls.js';
import { WebSocket } from '../../runtime/index.js';
import { OptionsError } from '../../runtime/options.js';
import { RawPeer, delay, once, quiet, until } from './helpers.js';

const fixtures = fileURLToPath(new URL('../../../test/dialects/fixtures/', import.meta.url));
const fixture = (name: string) => path.join(fixtures, name);
const CA = readFileSync(fixture('ca.pem'), 'utf8');
const CLIENT_CERT = readFileSync(fixture('client.crt'), 'utf8');
const CLIENT_KEY = readFileSync(fixture('client.key'), 'utf8');
const STRANGER_CERT = readFileSync(fixture('stranger.crt'), 'utf8');
const STRANGER_KEY = readFileSync(fixture('stranger.key'), 'utf8');
const SERVER_PEM = readFileSync(fixture('server.pem'), 'utf8');

/** The configuration settings named in the two references (IPWorks WebSockets 2020 and IP*Works! WS V9). */
const REFERENCE_2020 = [
  'BufferMessage', 'DisconnectStatusCode', 'DisconnectStatusDescription', 'MaxFrameSize', 'MessageLength', 'WaitForCloseResponse',
  'AllowedClients', 'BindExclusively', 'DefaultConnectionTimeout', 'InBufferSize', 'KeepAliveInterval', 'KeepAliveRetryCount',
  'KeepAliveTime', 'MaxConnections', 'OutBufferSize', 'TcpNoDelay', 'UseIPv6', 'LogSSLPackets', 'OpenSSLCADir', 'OpenSSLCAFile',
  'OpenSSLCipherList', 'OpenSSLPrngSeedData', 'ReuseSSLSession', 'SSLCACertFilePaths', 'SSLCACerts', 'SSLCheckCRL', 'SSLCipherStrength',
  'SSLEnabledCipherSuites', 'SSLEnabledProtocols', 'SSLEnableRenegotiation', 'SSLIncludeCertChain', 'SSLProvider', 'SSLSecurityFlags',
  'TLS12SignatureAlgorithms', 'TLS12SupportedGroups', 'TLS13KeyShareGroups', 'TLS13SignatureAlgorithms', 'TLS13SupportedGroups',
];
const REFERENCE_V9 = [
  'WaitForCloseResponse', 'BufferMessage', 'DisconnectStatusCode', 'DisconnectStatusDescription', 'MaxFrameSize', 'BindExclusively',
  'InBufferSize', 'MaxConnections', 'OutBufferSize', 'KeepAliveTime', 'KeepAliveInterval', 'TcpNoDelay', 'ReuseSSLSession',
  'SSLCipherStrength', 'SSLEnabledProtocols', 'SSLProvider', 'SSLSecurityFlags', 'OpenSSLCADir', 'OpenSSLCAFile', 'OpenSSLCipherList',
  'OpenSSLPrngSeedData', 'SSLAlgorithmList', 'CodePage',
];

/** A value for each setting, as an IPWorks user writes it in config("Name=Value"). */
const SAMPLES: Record<string, string> = {
  BufferMessage: 'false',
  DisconnectStatusCode: '4000',
  DisconnectStatusDescription: 'going down',
  MaxFrameSize: '1024',
  WaitForCloseResponse: 'false',
  AllowedClients: '127.0.0.1,10.*',
  DefaultConnectionTimeout: '5',
  KeepAliveTime: '1000',
  MaxConnections: '10',
  TcpNoDelay: 'false',
  UseIPv6: '0',
  OpenSSLCADir: '/etc/ssl/certs',
  OpenSSLCAFile: '/etc/ssl/ca.pem',
  OpenSSLCipherList: 'HIGH:!aNULL',
  ReuseSSLSession: 'false',
  SSLCACertFilePaths: '/a.pem,/b.pem',
  SSLCACerts: CA.trim(),
  SSLEnabledCipherSuites: 'TLS_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256',
  SSLEnabledProtocols: '12288',
  SSLEnableRenegotiation: 'true',
  SSLIncludeCertChain: 'true',
  SSLSecurityFlags: '16',
  TLS12SignatureAlgorithms: 'rsa_pss_rsae_sha256',
  TLS12SupportedGroups: 'P-256',
  TLS13SignatureAlgorithms: 'rsa_pss_rsae_sha384',
  TLS13SupportedGroups: 'X25519',
  // Settings Node cannot honour.
  BindExclusively: 'true',
  InBufferSize: '65536',
  OutBufferSize: '65536',
  KeepAliveInterval: '1000',
  KeepAliveRetryCount: '5',
  LogSSLPackets: 'true',
  OpenSSLPrngSeedData: 'seed',
  SSLCheckCRL: '1',
  SSLCipherStrength: '128',
  SSLProvider: 'OpenSSL',
  TLS13KeyShareGroups: 'X25519',
  SSLAlgorithmList: 'CALG_AES_256',
  CodePage: '65001',
};
const UNSUPPORTED = new Set(['BindExclusively', 'InBufferSize', 'OutBufferSize', 'KeepAliveInterval', 'KeepAliveRetryCount', 'LogSSLPackets', 'OpenSSLPrngSeedData', 'SSLCheckCRL', 'SSLCipherStrength', 'SSLProvider', 'TLS13KeyShareGroups', 'SSLAlgorithmList', 'CodePage']);

describe('wirestate/ipworks (IPWorks WebSocketServer API)', function () {
  this.timeout(10000);
  let cleanups: (() => unknown)[] = [];

  afterEach(async () => {
    const list = cleanups.reverse();
    cleanups = [];
    for (const cleanup of list) await cleanup();
  });

  async function start(init: Record<string, unknown> = {}): Promise<WebSocketServer> {
    const server = new WebSocketServer({ localHost: '127.0.0.1', localPort: 0, ...init });
    await server.startListening();
    cleanups.push(async () => {
      await server.stopListening();
      for (const record of server.connections.values()) record.wirestate.terminate();
    });
    return server;
  }

  function tlsInit(extra: Record<string, unknown> = {}): Record<string, unknown> {
    return { useSSL: true, sslCertStore: fixture('server.pem'), sslCertStoreType: CertStoreTypes.cstPEMKeyFile, ...extra };
  }

  /** Opens a wirestate client; resolves once open, rejects on error. */
  async function connect(server: WebSocketServer, options: { path?: string; protocols?: string[]; secure?: boolean; client?: Record<string, unknown> } = {}): Promise<WebSocket> {
    const scheme = options.secure ? 'wss' : 'ws';
    const ws = new WebSocket(`${scheme}://127.0.0.1:${server.localPort}${options.path ?? '/'}`, options.protocols ?? [], {
      ...(options.secure ? { ca: CA } : {}),
      ...options.client,
    });
    cleanups.push(() => ws.terminate());
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    return ws;
  }

  /** Connects and resolves with the client and the server's record of it. */
  async function pair(server: WebSocketServer, options: Parameters<typeof connect>[1] = {}): Promise<{ client: WebSocket; record: WebSocketConnection; id: string }> {
    const connected = once<[ConnectedEvent]>(server, 'Connected');
    const client = await connect(server, options);
    const [event] = await connected;
    return { client, record: server.connections.get(event.connectionId)!, id: event.connectionId };
  }

  /** Expects the opening handshake to be answered with an HTTP status; resolves with it (0: connection closed). */
  async function refusedWith(server: WebSocketServer, options: { protocols?: string[]; secure?: boolean; client?: Record<string, unknown> } = {}): Promise<number> {
    const scheme = options.secure ? 'wss' : 'ws';
    const ws = new WebSocket(`${scheme}://127.0.0.1:${server.localPort}/`, options.protocols ?? [], { ...(options.secure ? { ca: CA } : {}), ...options.client });
    cleanups.push(() => ws.terminate());
    return new Promise<number>((resolve, reject) => {
      ws.once('unexpected-response', (_req: unknown, res: IncomingMessage) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      ws.once('error', () => resolve(0));
      ws.once('open', () => reject(new Error('opened, but should have been refused')));
    });
  }

  function collect<T>(server: WebSocketServer, event: string): T[] {
    const list: T[] = [];
    server.on(event as 'DataIn', (e: unknown) => list.push(e as T));
    return list;
  }

  // ------------------------------------------------------------------ the component

  describe('the component and its properties', () => {
    it('WSServer (IP*Works! WS V9) is the same component', () => {
      const server = new WSServer();
      expect(server).to.be.instanceOf(WebSocketServer);
      expect(server.listening).to.equal(false);
    });

    it('has IPWorks defaults: localPort 0, connectionBacklog 5, defaultTimeout 0, useSSL false, MaxConnections 1000', () => {
      const server = new WebSocketServer();
      expect(server.localPort).to.equal(0);
      expect(server.localHost).to.equal('');
      expect(server.connectionBacklog).to.equal(5);
      expect(server.defaultTimeout).to.equal(0);
      expect(server.useSSL).to.equal(false);
      expect(server.sslAuthenticateClients).to.equal(false);
      expect(server.sslCertStoreType).to.equal(CertStoreTypes.cstAuto);
      expect(server.config('MaxConnections')).to.equal('1000');
      expect(server.config('WaitForCloseResponse')).to.equal('true');
      expect(server.settings.backlog).to.equal(5);
    });

    it('listening = true starts on localHost:localPort; localPort then tells the bound port; false stops accepting', async () => {
      const server = new WebSocketServer();
      server.localHost = '127.0.0.1';
      server.localPort = 0;
      server.listening = true;
      expect(server.listening).to.equal(true);
      cleanups.push(() => server.shutdown());
      await until(() => server.localPort !== 0);
      const { client, record } = await pair(server);
      server.listening = false;
      expect(server.listening).to.equal(false);
      const refused = new WebSocket(`ws://127.0.0.1:${server.localPort}/`);
      const [error] = await once<[Error]>(refused, 'error');
      expect((error as NodeJS.ErrnoException).code).to.equal('ECONNREFUSED');
      // The connection made before still works.
      const data = once<[DataInEvent]>(server, 'DataIn');
      client.send('still here');
      expect((await data)[0].text).to.equal('still here');
      expect(record.connected).to.equal(true);
    });

    it('a bind failure is reported through the Error event', async () => {
      const first = await start();
      const second = new WebSocketServer({ localHost: '127.0.0.1', localPort: first.localPort });
      const error = once<[ErrorEvent]>(second, 'Error');
      second.listening = true;
      const [event] = await error;
      expect(event.description).to.match(/EADDRINUSE/);
      expect(second.listening).to.equal(false);
    });

    it('connectionBacklog is passed to listen()', async () => {
      const original = net.Server.prototype.listen;
      const seen: unknown[] = [];
      net.Server.prototype.listen = function (this: net.Server, ...args: unknown[]) {
        seen.push(args[0]);
        return (original as (...a: unknown[]) => net.Server).apply(this, args);
      } as typeof original;
      try {
        await start({ connectionBacklog: 17 });
      } finally {
        net.Server.prototype.listen = original;
      }
      expect(seen[0]).to.include({ backlog: 17 });
    });

    it('properties are checked through the ipworks schema, errors in IPWorks names', () => {
      const server = new WebSocketServer();
      expect(() => (server.localPort = 70000)).to.throw(OptionsError, /LocalPort/);
      expect(() => (server.connectionBacklog = -1)).to.throw(OptionsError, /ConnectionBacklog/);
      expect(() => (server.sslCertStoreType = CertStoreTypes.cstUser)).to.throw(OptionsError, /SSLCertStoreType: cstUser \(0\) cannot be honoured on Node/);
      expect(() => (server.sslCertStoreType = CertStoreTypes.cstJKSFile)).to.throw(OptionsError, /cstJKSFile/);
      server.sslCertStoreType = CertStoreTypes.cstPFXFile;
      expect(server.sslCertStoreType).to.equal(2);
      expect(server.settings.tlsCertStoreType).to.equal('pfxFile');
    });

    it('webSocketConnectionCount counts connected clients', async () => {
      const server = await start();
      expect(server.webSocketConnectionCount).to.equal(0);
      const a = await pair(server);
      await pair(server);
      expect(server.webSocketConnectionCount).to.equal(2);
      const gone = once(server, 'Disconnected');
      server.disconnect(a.id);
      await gone;
      expect(server.webSocketConnectionCount).to.equal(1);
    });

    it('defaultTimeout (seconds) becomes each new connection\'s timeout; a send that cannot finish in time fails with 301', async function () {
      this.timeout(15000);
      const server = await start({ defaultTimeout: 1 });
      const { client, record, id } = await pair(server);
      expect(record.timeout).to.equal(1);
      client.pause(); // the client stops reading: the send cannot drain
      const errors = collect<ErrorEvent>(server, 'Error');
      const started = Date.now();
      let failure: unknown;
      try {
        await server.send(id, Buffer.alloc(64 * 1024 * 1024));
      } catch (error) {
        failure = error;
      }
      expect(failure).to.be.instanceOf(IPWorksError);
      expect((failure as IPWorksError).code).to.equal(IPWorksError.TIMEOUT);
      expect(Date.now() - started).to.be.within(900, 5000);
      expect(errors.map((e) => e.errorCode)).to.include(301);
    });
  });

  // ------------------------------------------------------------------ connection records

  describe('connection records', () => {
    it('describe the client: connectionId, host, localAddress, origin, remoteHost, remotePort, requestHeaders, requestURI, subProtocols', async () => {
      const server = await start();
      const { record, id } = await pair(server, { path: '/feed?x=1', protocols: ['chat', 'superchat'], client: { origin: 'https://app.example', headers: { 'X-Token': 'abc' } } });
      expect(record.connectionId).to.equal(id);
      expect(record.host).to.equal(`127.0.0.1:${server.localPort}`);
      expect(record.localAddress).to.equal('127.0.0.1');
      expect(record.origin).to.equal('https://app.example');
      expect(record.remoteHost).to.equal('127.0.0.1');
      expect(record.remotePort).to.be.greaterThan(0);
      expect(record.requestHeaders).to.match(/^X-Token: abc$/m);
      expect(record.requestHeaders).to.match(/^Upgrade: websocket$/im);
      expect(record.requestURI).to.equal('/feed?x=1');
      expect(record.subProtocols).to.equal('chat,superchat');
      expect(record.protocol).to.equal('chat');
      expect(record.connected).to.equal(true);
      expect(record.readyToSend).to.equal(true);
    });

    it('dataToSend sends (text for strings, binary for bytes); bytesSent reports what was written', async () => {
      const server = await start();
      const { client, record } = await pair(server);
      const messages: [Buffer, boolean][] = [];
      client.on('message', (data: Buffer, isBinary: boolean) => messages.push([data, isBinary]));
      record.dataToSend = 'hello';
      await until(() => record.bytesSent === 5);
      record.dataToSend = Buffer.from([1, 2, 3]);
      await until(() => messages.length === 2);
      expect(messages[0]![0].toString()).to.equal('hello');
      expect(messages[0]![1]).to.equal(false);
      expect([...messages[1]![0]]).to.deep.equal([1, 2, 3]);
      expect(messages[1]![1]).to.equal(true);
      expect(record.bytesSent).to.equal(3);
      expect(record.dataToSend).to.equal('');
    });

    it('dataFormat frames what is sent: 0 automatic, 1 text, 2 binary, 9 ping, 10 pong', async () => {
      const server = await start();
      const { client, record, id } = await pair(server);
      expect(record.dataFormat).to.equal(DataFormats.dfAutomatic);
      const messages: boolean[] = [];
      client.on('message', (_data: Buffer, isBinary: boolean) => messages.push(isBinary));
      record.dataFormat = DataFormats.dfBinary;
      record.dataToSend = 'as binary';
      record.dataFormat = DataFormats.dfText;
      await server.send(id, Buffer.from('as text'));
      await until(() => messages.length === 2);
      expect(messages).to.deep.equal([true, false]);
      const ping = once<[Buffer]>(client, 'ping');
      record.dataFormat = DataFormats.dfPing;
      record.dataToSend = 'are you there';
      expect((await ping)[0].toString()).to.equal('are you there');
      const pong = once<[Buffer]>(client, 'pong');
      record.dataFormat = DataFormats.dfPong;
      await server.send(id, 'unsolicited');
      expect((await pong)[0].toString()).to.equal('unsolicited');
      expect(() => (record.dataFormat = 5)).to.throw(OptionsError, /DataFormat/);
    });

    it('acceptData = false stops DataIn (reading pauses); true resumes it', async () => {
      const server = await start();
      const { client, record } = await pair(server);
      record.acceptData = false;
      const received = collect<DataInEvent>(server, 'DataIn');
      client.send('held back');
      await delay(150);
      expect(received).to.have.length(0);
      record.acceptData = true;
      await until(() => received.length === 1);
      expect(received[0]!.text).to.equal('held back');
    });

    it('connected = false disconnects the client', async () => {
      const server = await start();
      const { client, record } = await pair(server);
      const closed = once<[number, Buffer]>(client, 'close');
      record.connected = false;
      expect((await closed)[0]).to.equal(1000);
      expect(record.connected).to.equal(false);
    });

    it('timeout is per connection, in seconds, checked through the schema', async () => {
      const server = await start({ defaultTimeout: 3 });
      const { record } = await pair(server);
      expect(record.timeout).to.equal(3);
      record.timeout = 7;
      expect(record.timeout).to.equal(7);
      expect(() => (record.timeout = -1)).to.throw(OptionsError, /Timeout/);
    });
  });

  // ------------------------------------------------------------------ methods

  describe('methods', () => {
    it('send(id, bytes), send(id, text), sendText(id, text) resolve once written', async () => {
      const server = await start();
      const { client, id } = await pair(server);
      const messages: [string, boolean][] = [];
      client.on('message', (data: Buffer, isBinary: boolean) => messages.push([data.toString(), isBinary]));
      await server.send(id, Buffer.from('bytes'));
      await server.send(id, 'string');
      await server.sendText(id, 'text');
      await until(() => messages.length === 3);
      expect(messages).to.deep.equal([
        ['bytes', true],
        ['string', false],
        ['text', false],
      ]);
      expect(() => server.send('999', 'x')).to.throw(IPWorksError, /no connection with id 999/);
    });

    it('sendFile(id, path) sends the file as one binary message, in MaxFrameSize frames', async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'wirestate-'));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      const file = path.join(dir, 'data.bin');
      const content = Buffer.alloc(100_000);
      for (let i = 0; i < content.length; i++) content[i] = i % 251;
      writeFileSync(file, content);
      const server = await start();
      server.config('MaxFrameSize=30000');
      const connected = once<[ConnectedEvent]>(server, 'Connected');
      const peer = await RawPeer.connect(server.localPort);
      cleanups.push(() => peer.destroy());
      const [{ connectionId }] = await connected;
      await server.sendFile(connectionId, file);
      const frames = [await peer.nextFrame(0x2)];
      while (!frames[frames.length - 1]!.fin) frames.push(await peer.nextFrame(0x0));
      expect(frames.map((f) => f.payload.length)).to.deep.equal([30000, 30000, 30000, 10000]);
      expect(Buffer.concat(frames.map((f) => f.payload)).equals(content)).to.equal(true);
      let missing: unknown;
      try {
        await server.sendFile(connectionId, path.join(dir, 'missing.bin'));
      } catch (error) {
        missing = error;
      }
      expect((missing as IPWorksError).code).to.equal(IPWorksError.FILE);
    });

    it('interrupt(id) stops a sendFile in progress; the message is ended and the connection stays usable', async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'wirestate-'));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      const file = path.join(dir, 'big.bin');
      writeFileSync(file, Buffer.alloc(16 * 1024 * 1024, 1));
      const server = await start();
      const { client, id, record } = await pair(server);
      client.pause(); // so the file cannot be written at once
      const sending = server.sendFile(id, file);
      await delay(50);
      expect(record.readyToSend).to.equal(false);
      expect(() => server.sendText(id, 'meanwhile')).to.throw(IPWorksError, /sendFile/);
      server.interrupt(id);
      let failure: unknown;
      try {
        await sending;
      } catch (error) {
        failure = error;
      }
      expect((failure as IPWorksError).code).to.equal(IPWorksError.INTERRUPTED);
      const messages: Buffer[] = [];
      client.on('message', (data: Buffer) => messages.push(data));
      // Resolves once written to the socket, which needs the client to read what is queued before it.
      const after = server.sendText(id, 'after');
      client.resume();
      await after;
      // Generous: on a loaded machine the client may take a while to read what was queued.
      await until(() => messages.length === 2, 20000);
      expect(messages[0]!.length).to.be.lessThan(16 * 1024 * 1024);
      expect(messages[1]!.toString()).to.equal('after');
    });

    it('disconnect(id) closes with DisconnectStatusCode / DisconnectStatusDescription', async () => {
      const server = await start();
      server.config('DisconnectStatusCode=4001');
      server.config('DisconnectStatusDescription=see you');
      const { client, id } = await pair(server);
      const closed = once<[number, Buffer]>(client, 'close');
      const disconnected = once<[DisconnectedEvent]>(server, 'Disconnected');
      server.disconnect(id);
      const [code, reason] = await closed;
      expect([code, reason.toString()]).to.deep.equal([4001, 'see you']);
      const [event] = await disconnected;
      expect(event).to.deep.equal({ connectionId: id, statusCode: 4001, description: 'see you' });
      expect(server.connections.has(id)).to.equal(false);
    });

    it('WaitForCloseResponse=false closes the TCP connection right after the close frame', async () => {
      const server = await start();
      server.config('WaitForCloseResponse=false');
      const connected = once<[ConnectedEvent]>(server, 'Connected');
      const peer = await RawPeer.connect(server.localPort);
      cleanups.push(() => peer.destroy());
      const [{ connectionId }] = await connected;
      const disconnected = once<[DisconnectedEvent]>(server, 'Disconnected', 1000);
      server.disconnect(connectionId);
      const frame = await peer.nextFrame(0x8);
      expect(frame.payload.readUInt16BE(0)).to.equal(1000);
      await peer.waitClosed(1000); // the peer never answered, and did not have to
      expect((await disconnected)[0].statusCode).to.equal(1000);
    });

    it('doEvents() yields to the event loop, so IPWorks-style loops keep working', async () => {
      const server = await start();
      const { client } = await pair(server);
      let got = '';
      server.on('DataIn', (e) => (got = e.text));
      client.send('pumped');
      const deadline = Date.now() + 3000;
      while (!got && Date.now() < deadline) await server.doEvents();
      expect(got).to.equal('pumped');
    });

    it('shutdown() stops listening and disconnects every client', async () => {
      const server = await start();
      const a = await pair(server);
      const b = await pair(server);
      const closes = [once<[number]>(a.client, 'close'), once<[number]>(b.client, 'close')];
      await server.shutdown();
      expect(server.listening).to.equal(false);
      expect(server.webSocketConnectionCount).to.equal(0);
      for (const [code] of await Promise.all(closes)) expect(code).to.equal(1000);
    });
  });

  // ------------------------------------------------------------------ config()

  describe('config()', () => {
    it('covers every configuration setting of both references', () => {
      const bindings = dialectBindings.ipworks.server!;
      for (const name of new Set([...REFERENCE_2020, ...REFERENCE_V9])) {
        expect(bindings[name], name).to.not.equal(undefined);
        expect(bindings[name]!.kind, name).to.equal('config');
        expect(SAMPLES[name] !== undefined || name === 'MessageLength', `a sample for ${name}`).to.equal(true);
      }
    });

    for (const name of Object.keys(SAMPLES)) {
      if (UNSUPPORTED.has(name)) {
        it(`${name}: refused with the reason Node cannot honour it`, () => {
          const server = new WebSocketServer();
          expect(() => server.config(name)).not.to.throw();
          expect(() => server.config(`${name}=${SAMPLES[name]}`)).to.throw(OptionsError, new RegExp(`${name}: cannot be honoured on Node: .{20,}`));
        });
      } else {
        it(`${name}: set with config("${name}=…") and read back with config("${name}")`, () => {
          const server = new WebSocketServer();
          server.config(`${name}=${SAMPLES[name]}`);
          expect(server.config(name)).to.equal(SAMPLES[name]);
          // names are case-insensitive, as in IPWorks
          expect(server.config(name.toUpperCase())).to.equal(SAMPLES[name]);
        });
      }
    }

    it('reports unknown names and bad values in IPWorks terms', () => {
      const server = new WebSocketServer();
      expect(() => server.config('BufferMesage=true')).to.throw(OptionsError, /BufferMesage: unknown option; did you mean "BufferMessage"/);
      expect(() => server.config('maxPayload=10')).to.throw(OptionsError, /unknown option/);
      expect(() => server.config('MaxFrameSize=big')).to.throw(OptionsError, /MaxFrameSize/);
      expect(() => server.config('DisconnectStatusCode=1006')).to.throw(OptionsError, /DisconnectStatusCode/);
      expect(() => server.config('LocalPort=80')).to.throw(OptionsError, /LocalPort: is a property, not a configuration setting: set server.localPort/);
      expect(() => server.config('SSLEnabledCipherSuites=TLS_NOT_A_SUITE')).to.throw(OptionsError, /SSLEnabledCipherSuites: unknown cipher suite/);
      expect(() => server.config('SSLEnabledProtocols=48')).to.throw(OptionsError, /SSLv3 cannot be enabled/);
      // a value given as empty resets the setting to its default
      server.config('MaxConnections=5');
      server.config('MaxConnections=');
      expect(server.config('MaxConnections')).to.equal('1000');
    });

    it('UseIPv6 and SSLEnabledProtocols take IPWorks\'s numbers', () => {
      const server = new WebSocketServer();
      server.config('UseIPv6=1');
      expect(server.settings.ipFamily).to.equal('ipv6');
      server.config('UseIPv6=2');
      expect(server.settings.ipFamily).to.equal('both');
      server.config('SSLEnabledProtocols=15360'); // TLS 1.2 (3072) | TLS 1.3 (12288)
      expect(server.settings.tlsProtocols).to.deep.equal(['TLSv1.2', 'TLSv1.3']);
      expect(server.config('SSLEnabledProtocols')).to.equal('15360');
    });

    it('BufferMessage=true delivers whole messages; false one DataIn per frame, EOM on the last', async () => {
      const buffered = await start({ BufferMessage: true });
      const a = await pair(buffered);
      const whole = collect<DataInEvent>(buffered, 'DataIn');
      a.client.send('abc', { fin: false });
      a.client.send('def', { fin: true });
      await until(() => whole.length === 1);
      expect(whole[0]).to.include({ text: 'abcdef', dataFormat: 1, EOM: true });

      const pieces = await start({ BufferMessage: false });
      const b = await pair(pieces);
      const frames = collect<DataInEvent>(pieces, 'DataIn');
      b.client.send(Buffer.from('ab'), { fin: false });
      b.client.send(Buffer.from('cd'), { fin: false });
      b.client.send(Buffer.from('e'), { fin: true });
      await until(() => frames.length === 3);
      expect(frames.map((f) => [f.text, f.dataFormat, f.EOM])).to.deep.equal([
        ['ab', 2, false],
        ['cd', 2, false],
        ['e', 2, true],
      ]);
    });

    it('BufferMessage=false decodes text split inside a UTF-8 character correctly', async () => {
      const server = await start({ BufferMessage: false });
      const connected = once<[ConnectedEvent]>(server, 'Connected');
      const peer = await RawPeer.connect(server.localPort);
      cleanups.push(() => peer.destroy());
      await connected;
      const frames = collect<DataInEvent>(server, 'DataIn');
      const euro = Buffer.from('€'); // 3 bytes
      peer.send(0x1, euro.subarray(0, 2), false);
      peer.send(0x0, euro.subarray(2), true);
      await until(() => frames.length === 2);
      expect(frames.map((f) => f.text).join('')).to.equal('€');
      expect(frames.map((f) => f.EOM)).to.deep.equal([false, true]);
    });

    it('MaxFrameSize splits outgoing messages into frames of at most that size', async () => {
      const server = await start({ MaxFrameSize: 30 });
      const connected = once<[ConnectedEvent]>(server, 'Connected');
      const peer = await RawPeer.connect(server.localPort);
      cleanups.push(() => peer.destroy());
      const [{ connectionId }] = await connected;
      await server.send(connectionId, Buffer.alloc(100));
      const frames = [await peer.nextFrame(0x2)];
      while (!frames[frames.length - 1]!.fin) frames.push(await peer.nextFrame(0x0));
      expect(frames.map((f) => f.payload.length)).to.deep.equal([30, 30, 30, 10]);
    });

    it('MessageLength[ConnectionId] makes the following sends pieces of one message of that length', async () => {
      const server = await start();
      const { client, id } = await pair(server);
      const messages: string[] = [];
      client.on('message', (data: Buffer) => messages.push(data.toString()));
      server.config(`MessageLength[${id}]=10`);
      expect(server.config(`MessageLength[${id}]`)).to.equal('10');
      await server.sendText(id, 'hello');
      await server.sendText(id, 'world');
      await server.sendText(id, 'next');
      await until(() => messages.length === 2);
      expect(messages).to.deep.equal(['helloworld', 'next']);
      expect(server.config(`MessageLength[${id}]`)).to.equal('');
    });

    it('AllowedClients: an address not listed starts ConnectionRequest with accept false', async () => {
      const server = await start({ AllowedClients: '10.*' });
      const requests = collect<ConnectionRequestEvent>(server, 'ConnectionRequest');
      expect(await refusedWith(server)).to.equal(0);
      expect(requests[0]).to.include({ address: '127.0.0.1', accept: false });
      server.config('AllowedClients=127.0.0.*');
      await pair(server);
      expect(requests[1]!.accept).to.equal(true);
    });

    it('MaxConnections refuses connections beyond the limit (503)', async () => {
      const server = await start({ MaxConnections: 1 });
      await pair(server);
      expect(await refusedWith(server)).to.equal(503);
    });

    it('TcpNoDelay and KeepAliveTime set the socket options of each connection', async () => {
      const noDelay = net.Socket.prototype.setNoDelay;
      const keepAlive = net.Socket.prototype.setKeepAlive;
      const calls: string[] = [];
      net.Socket.prototype.setNoDelay = function (this: net.Socket, value?: boolean) {
        if (this.localPort === server.localPort) calls.push(`noDelay ${value}`);
        return noDelay.call(this, value);
      };
      net.Socket.prototype.setKeepAlive = function (this: net.Socket, enable?: boolean, delayMs?: number) {
        if (this.localPort === server.localPort) calls.push(`keepAlive ${enable} ${delayMs}`);
        return keepAlive.call(this, enable, delayMs);
      };
      const server = await start({ TcpNoDelay: false, KeepAliveTime: 1234 });
      try {
        await pair(server);
      } finally {
        net.Socket.prototype.setNoDelay = noDelay;
        net.Socket.prototype.setKeepAlive = keepAlive;
      }
      expect(calls).to.include('noDelay false');
      expect(calls).to.include('keepAlive true 1234');
    });

    it('UseIPv6=0 listens on IPv4 only when no LocalHost is given', async () => {
      const server = await start({ localHost: '', UseIPv6: 0 });
      await pair(server);
      expect(server.settings.ipFamily).to.equal('ipv4');
    });
  });

  // ------------------------------------------------------------------ events

  describe('events', () => {
    it('ConnectionRequest gives the address and port; accept = false refuses the TCP connection', async () => {
      const server = await start();
      let refuse = true;
      const requests: ConnectionRequestEvent[] = [];
      server.on('ConnectionRequest', (e) => {
        requests.push({ ...e });
        if (refuse) e.accept = false;
      });
      expect(await refusedWith(server)).to.equal(0);
      refuse = false;
      await pair(server);
      expect(requests).to.have.length(2);
      expect(requests[0]!.address).to.equal('127.0.0.1');
      expect(requests[0]!.port).to.be.greaterThan(0);
      expect(requests[0]!.accept).to.equal(true);
    });

    it('WebSocketOpenRequest describes the request; a statusCode other than 101 refuses it', async () => {
      const server = await start();
      const requests: WebSocketOpenRequestEvent[] = [];
      server.on('WebSocketOpenRequest', (e) => {
        requests.push({ ...e });
        if (e.requestURI === '/private') e.statusCode = 401;
      });
      const ws = new WebSocket(`ws://127.0.0.1:${server.localPort}/private`, [], { origin: 'https://evil.example', perMessageDeflate: false, headers: { 'Sec-WebSocket-Extensions': 'x-test' } });
      cleanups.push(() => ws.terminate());
      const [, res] = await once<[unknown, IncomingMessage]>(ws, 'unexpected-response');
      res.resume();
      expect(res.statusCode).to.equal(401);
      expect(requests[0]).to.include({ requestURI: '/private', hostHeader: `127.0.0.1:${server.localPort}`, originHeader: 'https://evil.example', extensions: 'x-test', statusCode: 101 });
      expect(requests[0]!.requestHeaders).to.match(/^Sec-WebSocket-Version: 13$/m);
      expect(requests[0]!.connectionId).to.match(/^\d+$/);
    });

    it('an exception in a WebSocketOpenRequest handler refuses the request (500) and fires Error', async () => {
      const server = await start();
      server.on('WebSocketOpenRequest', () => {
        throw new Error('handler bug');
      });
      const errors = collect<ErrorEvent>(server, 'Error');
      expect(await refusedWith(server)).to.equal(500);
      expect(errors[0]!.description).to.match(/handler bug/);
    });

    it('WebSocketOpenRequest chooses the subprotocol and adds response headers', async () => {
      const server = await start();
      server.on('WebSocketOpenRequest', (e) => {
        expect(e.subProtocols).to.equal('v1.chat,v2.chat');
        e.subProtocols = 'v2.chat';
        e.responseHeaders = 'X-Server: wirestate\r\nX-Room: 7';
      });
      const ws = new WebSocket(`ws://127.0.0.1:${server.localPort}/`, ['v1.chat', 'v2.chat']);
      cleanups.push(() => ws.terminate());
      const upgraded = once<[IncomingMessage]>(ws, 'upgrade');
      const opened = once(ws, 'open');
      const [res] = await upgraded;
      await opened;
      expect(ws.protocol).to.equal('v2.chat');
      expect(res.headers['x-server']).to.equal('wirestate');
      expect(res.headers['x-room']).to.equal('7');
    });

    it('Connected (statusCode 0) and ReadyToSend fire for each new connection, with its connectionId', async () => {
      const server = await start();
      const ready = once<[{ connectionId: string }]>(server, 'ReadyToSend');
      const { id } = await pair(server);
      expect((await ready)[0].connectionId).to.equal(id);
      const connected = once<[ConnectedEvent]>(server, 'Connected');
      await connect(server);
      const [event] = await connected;
      expect(event.statusCode).to.equal(0);
      expect(event.description).to.equal('OK');
    });

    it('DataIn carries connectionId, dataFormat (1 text, 2 binary, 10 pong), text, textB and EOM', async () => {
      const server = await start();
      const { client, id } = await pair(server);
      const events = collect<DataInEvent>(server, 'DataIn');
      client.send('héllo');
      client.send(Buffer.from([0xff, 0x00]));
      client.pong(Buffer.from('pong data'));
      await until(() => events.length === 3);
      expect(events[0]).to.include({ connectionId: id, dataFormat: 1, text: 'héllo', EOM: true, eom: true });
      expect(events[0]!.textB.equals(Buffer.from('héllo'))).to.equal(true);
      expect(events[1]!.dataFormat).to.equal(2);
      expect([...events[1]!.textB]).to.deep.equal([0xff, 0x00]);
      expect(events[2]).to.include({ dataFormat: 10, text: 'pong data' });
    });

    it('Disconnected carries the client\'s status code and description', async () => {
      const server = await start();
      const { client, id } = await pair(server);
      const disconnected = once<[DisconnectedEvent]>(server, 'Disconnected');
      client.close(4002, 'client done');
      expect((await disconnected)[0]).to.deep.equal({ connectionId: id, statusCode: 4002, description: 'client done' });
    });

    it('Disconnected reports an abnormal closure as 1006', async () => {
      const server = await start();
      const { client, id } = await pair(server);
      const disconnected = once<[DisconnectedEvent]>(server, 'Disconnected');
      client.terminate();
      const [event] = await disconnected;
      expect(event.connectionId).to.equal(id);
      expect(event.statusCode).to.equal(1006);
    });

    it('Error reports a protocol violation with its close code', async () => {
      const server = await start();
      const connected = once<[ConnectedEvent]>(server, 'Connected');
      const peer = await RawPeer.connect(server.localPort);
      cleanups.push(() => peer.destroy());
      const [{ connectionId }] = await connected;
      const error = once<[ErrorEvent]>(server, 'Error');
      peer.send(0x1, Buffer.from([0xff, 0xfe])); // not UTF-8
      const [event] = await error;
      expect(event.connectionId).to.equal(connectionId);
      expect(event.errorCode).to.equal(1007);
      const close = await peer.nextFrame(0x8);
      expect(close.payload.readUInt16BE(0)).to.equal(1007);
    });

    it('Log reports connections and every lifecycle step of the connection machine', async () => {
      const server = await start();
      const logs = collect<LogEvent>(server, 'Log');
      const { client, id } = await pair(server);
      const disconnected = once(server, 'Disconnected');
      client.close(1000);
      await disconnected;
      const mine = logs.filter((l) => l.connectionId === id);
      expect(mine.some((l) => l.logType === 'Info' && /accepted/.test(l.message))).to.equal(true);
      expect(mine.some((l) => l.logType === 'Lifecycle' && /open -> closing\.closedByPeer/.test(l.message))).to.equal(true);
      expect(mine.some((l) => l.logType === 'Info' && /Disconnected \(1000/.test(l.message))).to.equal(true);
    });
  });

  // ------------------------------------------------------------------ TLS

  describe('TLS (useSSL and the SSL properties, settings and events)', () => {
    it('useSSL with a PEM store (sslCertStore, cstPEMKeyFile): wss works; SSLStatus reports the handshake', async () => {
      const server = await start(tlsInit());
      const status = collect<SSLStatusEvent>(server, 'SSLStatus');
      const { client, id } = await pair(server, { secure: true });
      const data = once<[DataInEvent]>(server, 'DataIn');
      client.send('over tls');
      expect((await data)[0].text).to.equal('over tls');
      expect(status.filter((s) => s.connectionId === id).map((s) => s.message)).to.satisfy((messages: string[]) =>
        messages.some((m) => /started/.test(m)) && messages.some((m) => /complete: TLSv1\.3/.test(m)),
      );
    });

    it('a PFX store (cstPFXFile) opened with sslCertStorePassword', async () => {
      const server = await start({ useSSL: true, sslCertStore: fixture('server.pfx'), sslCertStoreType: CertStoreTypes.cstPFXFile, sslCertStorePassword: 'secret' });
      await pair(server, { secure: true });
    });

    it('a store given as data (cstPEMKeyBlob) holding only the key, with the certificate in sslCertEncoded', async () => {
      const key = SERVER_PEM.slice(SERVER_PEM.indexOf('-----BEGIN PRIVATE KEY-----'));
      const certificate = SERVER_PEM.slice(0, SERVER_PEM.indexOf('-----BEGIN PRIVATE KEY-----'));
      const server = await start({ useSSL: true, sslCertStore: key, sslCertStoreType: CertStoreTypes.cstPEMKeyBlob, sslCertEncoded: certificate });
      await pair(server, { secure: true });
    });

    it('sslCertSubject picks one certificate of a store holding several', async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'wirestate-'));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      const store = path.join(dir, 'both.pem');
      writeFileSync(store, SERVER_PEM + readFileSync(fixture('alt.pem'), 'utf8'));
      const server = await start(tlsInit({ sslCertStore: store, sslCertSubject: 'CN=alt.localhost' }));
      const ws = new WebSocket(`wss://127.0.0.1:${server.localPort}/`, [], { ca: CA });
      cleanups.push(() => ws.terminate());
      const [res] = await once<[IncomingMessage]>(ws, 'upgrade');
      expect((res.socket as tls.TLSSocket).getPeerCertificate().subject.CN).to.equal('alt.localhost');
      expect(() => (server.sslCertSubject = 'CN=nobody')).not.to.throw(); // checked when listening starts
      await server.stopListening();
      let failure: unknown;
      try {
        await server.startListening();
      } catch (error) {
        failure = error;
      }
      expect((failure as Error).message).to.match(/SSLCertSubject: no certificate in the store matches "CN=nobody"/);
    });

    it('sslCert (V9) sets store, type, password and subject at once', async () => {
      const server = await start({ useSSL: true, sslCert: { store: fixture('server.pfx'), storeType: CertStoreTypes.cstPFXFile, storePassword: 'secret' } });
      expect(server.settings.tlsCertSelection).to.include({ storeType: 'pfxFile' });
      await pair(server, { secure: true });
    });

    it('useSSL without a certificate refuses to listen, naming the setting', () => {
      const server = new WebSocketServer({ useSSL: true });
      expect(() => (server.listening = true)).to.throw(OptionsError, /SSLCertStore/);
    });

    it('sslAuthenticateClients: SSLClientAuthentication reports a trusted client certificate (SSLCACerts)', async () => {
      const server = await start(tlsInit({ sslAuthenticateClients: true, SSLCACerts: CA }));
      const auth = collect<SSLClientAuthenticationEvent>(server, 'SSLClientAuthentication');
      await pair(server, { secure: true, client: { cert: CLIENT_CERT, key: CLIENT_KEY } });
      expect(auth[0]).to.include({ status: 'OK', accept: true, certSubject: 'CN=test client, O=wirestate' });
      expect(auth[0]!.certIssuer).to.match(/CN=wirestate test CA/);
      expect(auth[0]!.certEncoded).to.match(/^-----BEGIN CERTIFICATE-----/);
      expect(auth[0]!.certEncodedB.toString()).to.equal(auth[0]!.certEncoded);
    });

    for (const [name, value] of [
      ['OpenSSLCAFile', fixture('ca.pem')],
      ['SSLCACertFilePaths', fixture('ca.pem')],
      ['OpenSSLCADir', fixtures.replace(/\/$/, '')],
    ] as const) {
      it(`${name} supplies the authorities client certificates are verified against`, async () => {
        const server = await start(tlsInit({ sslAuthenticateClients: true }));
        server.config(`${name}=${value}`);
        await server.stopListening();
        await server.startListening();
        const auth = collect<SSLClientAuthenticationEvent>(server, 'SSLClientAuthentication');
        await pair(server, { secure: true, client: { cert: CLIENT_CERT, key: CLIENT_KEY } });
        expect(auth[0]).to.include({ status: 'OK', accept: true });
      });
    }

    it('an untrusted client certificate is refused unless the event (or SSLSecurityFlags) accepts it', async () => {
      const server = await start(tlsInit({ sslAuthenticateClients: true, SSLCACerts: CA }));
      const auth = collect<SSLClientAuthenticationEvent>(server, 'SSLClientAuthentication');
      expect(await refusedWith(server, { secure: true, client: { cert: STRANGER_CERT, key: STRANGER_KEY } })).to.equal(0);
      expect(auth[0]).to.include({ accept: false, certSubject: 'CN=stranger' });
      expect(auth[0]!.status).to.match(/SELF_SIGNED|UNABLE/);
      // The application may overrule the recommendation.
      server.once('SSLClientAuthentication', (e) => (e.accept = true));
      await pair(server, { secure: true, client: { cert: STRANGER_CERT, key: STRANGER_KEY } });
      // SSLSecurityFlags 0x10 tolerates an unknown authority.
      server.config('SSLSecurityFlags=16');
      await server.stopListening();
      await server.startListening();
      await pair(server, { secure: true, client: { cert: STRANGER_CERT, key: STRANGER_KEY } });
      expect(auth[auth.length - 1]!.accept).to.equal(true);
    });

    it('SSLIncludeCertChain puts the whole chain in certEncoded', async () => {
      const count = (pem: string) => pem.split('-----BEGIN CERTIFICATE-----').length - 1;
      const server = await start(tlsInit({ sslAuthenticateClients: true, SSLCACerts: CA, SSLIncludeCertChain: true }));
      const auth = collect<SSLClientAuthenticationEvent>(server, 'SSLClientAuthentication');
      await pair(server, { secure: true, client: { cert: CLIENT_CERT, key: CLIENT_KEY } });
      expect(count(auth[0]!.certEncoded)).to.equal(2);
      server.config('SSLIncludeCertChain=false');
      await server.stopListening();
      await server.startListening();
      await pair(server, { secure: true, client: { cert: CLIENT_CERT, key: CLIENT_KEY } });
      expect(count(auth[1]!.certEncoded)).to.equal(1);
    });

    it('SSLConnectionRequest reports what the client offers and may choose another certificate', async () => {
      const server = await start(tlsInit());
      const requests: SSLConnectionRequestEvent[] = [];
      server.on('SSLConnectionRequest', (e) => {
        requests.push({ ...e });
        e.certStore = fixture('alt.pem');
      });
      const ws = new WebSocket(`wss://127.0.0.1:${server.localPort}/`, [], { ca: CA });
      cleanups.push(() => ws.terminate());
      const [res] = await once<[IncomingMessage]>(ws, 'upgrade');
      expect((res.socket as tls.TLSSocket).getPeerCertificate().subject.CN).to.equal('alt.localhost');
      expect(requests[0]!.supportedCipherSuites.split(',')).to.include('TLS_AES_128_GCM_SHA256');
      expect(requests[0]!.supportedSignatureAlgs.split(',')).to.include('rsa_pss_rsae_sha256');
      expect(requests[0]).to.include({ certStoreType: CertStoreTypes.cstPEMKeyFile, certStore: fixture('server.pem') });
    });

    /** A bare TLS handshake with the server; resolves with the client socket (or the error). */
    async function handshake(server: WebSocketServer, options: tls.ConnectionOptions = {}): Promise<tls.TLSSocket | Error> {
      return new Promise((resolve) => {
        const socket = tls.connect({ port: server.localPort, host: '127.0.0.1', ca: CA, servername: 'localhost', ...options }, () => resolve(socket));
        cleanups.push(() => socket.destroy());
        socket.once('error', resolve);
      });
    }

    it('SSLEnabledProtocols limits the TLS versions (IPWorks bit mask)', async () => {
      const server = await start(tlsInit({ SSLEnabledProtocols: 12288 }));
      const old = await handshake(server, { maxVersion: 'TLSv1.2' });
      expect(old).to.be.instanceOf(Error);
      const current = (await handshake(server)) as tls.TLSSocket;
      expect(current.getProtocol()).to.equal('TLSv1.3');
    });

    it('SSLEnabledCipherSuites (IANA names) and OpenSSLCipherList restrict the cipher suites', async () => {
      const tls13 = await start(tlsInit({ SSLEnabledCipherSuites: 'TLS_AES_256_GCM_SHA384' }));
      expect(((await handshake(tls13)) as tls.TLSSocket).getCipher().standardName).to.equal('TLS_AES_256_GCM_SHA384');
      const tls12 = await start(tlsInit({ SSLEnabledProtocols: 3072, SSLEnabledCipherSuites: 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256' }));
      expect(((await handshake(tls12)) as tls.TLSSocket).getCipher().standardName).to.equal('TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256');
      const openssl = await start(tlsInit({ SSLEnabledProtocols: 3072, OpenSSLCipherList: 'ECDHE-RSA-AES256-GCM-SHA384' }));
      expect(((await handshake(openssl)) as tls.TLSSocket).getCipher().name).to.equal('ECDHE-RSA-AES256-GCM-SHA384');
    });

    it('TLS13SupportedGroups / TLS12SupportedGroups choose the key exchange groups', async () => {
      const server = await start(tlsInit({ TLS13SupportedGroups: 'P-384' }));
      const socket = (await handshake(server)) as tls.TLSSocket;
      expect(socket.getEphemeralKeyInfo()).to.include({ type: 'ECDH', size: 384 });
      const tls12 = await start(tlsInit({ SSLEnabledProtocols: 3072, TLS12SupportedGroups: 'P-521' }));
      expect(((await handshake(tls12)) as tls.TLSSocket).getEphemeralKeyInfo()).to.include({ size: 521 });
    });

    it('TLS12SignatureAlgorithms / TLS13SignatureAlgorithms limit the signature algorithms (one Node list)', async () => {
      const server = await start(tlsInit({ TLS13SignatureAlgorithms: 'rsa_pss_rsae_sha512' }));
      const refused = await handshake(server, { sigalgs: 'rsa_pss_rsae_sha256' });
      expect(refused).to.be.instanceOf(Error);
      const accepted = await handshake(server, { sigalgs: 'rsa_pss_rsae_sha512:rsa_pss_rsae_sha256' });
      expect(accepted).not.to.be.instanceOf(Error);
      const both = new WebSocketServer(tlsInit({ TLS12SignatureAlgorithms: 'rsa_pkcs1_sha256', TLS13SignatureAlgorithms: 'rsa_pss_rsae_sha256' }));
      expect(tlsServerOptions(both.settings as never).sigalgs).to.equal('rsa_pkcs1_sha256:rsa_pss_rsae_sha256');
    });

    it('ReuseSSLSession=false disables session resumption', async () => {
      const resumed = async (server: WebSocketServer): Promise<boolean> => {
        const first = (await handshake(server)) as tls.TLSSocket;
        const [session] = await once<[Buffer]>(first, 'session', 2000);
        first.destroy();
        const second = (await handshake(server, { session })) as tls.TLSSocket;
        return second.isSessionReused();
      };
      expect(await resumed(await start(tlsInit()))).to.equal(true);
      expect(await resumed(await start(tlsInit({ ReuseSSLSession: false })))).to.equal(false);
    });

    it('SSLEnableRenegotiation: TLS 1.2 renegotiation is refused unless enabled', async () => {
      const renegotiate = async (server: WebSocketServer): Promise<Error | null> => {
        const socket = (await handshake(server, { maxVersion: 'TLSv1.2' })) as tls.TLSSocket;
        return new Promise((resolve) => {
          socket.once('error', (error) => resolve(error));
          socket.renegotiate({ rejectUnauthorized: false }, (error) => {
            if (error) resolve(error);
            else {
              // A refusal may only show as the server closing the connection.
              socket.write('x');
              setTimeout(() => resolve(socket.destroyed ? new Error('closed') : null), 200);
            }
          });
        });
      };
      expect(await renegotiate(await start(tlsInit()))).to.be.instanceOf(Error);
      expect(await renegotiate(await start(tlsInit({ SSLEnableRenegotiation: true })))).to.equal(null);
    });

    it('DefaultConnectionTimeout (seconds) drops a TLS handshake that does not finish', async function () {
      this.timeout(8000);
      const server = await start(tlsInit({ DefaultConnectionTimeout: 1 }));
      const socket = net.connect(server.localPort, '127.0.0.1');
      cleanups.push(() => socket.destroy());
      await once(socket, 'connect');
      const started = Date.now();
      await once(socket, 'close', 4000);
      expect(Date.now() - started).to.be.within(800, 3000);
    });

    it('SSLStatus and Error report a failed handshake', async () => {
      const server = await start(tlsInit());
      const status = collect<SSLStatusEvent>(server, 'SSLStatus');
      const errors = collect<ErrorEvent>(server, 'Error');
      const failed = await handshake(server, { maxVersion: 'TLSv1.1', minVersion: 'TLSv1' });
      expect(failed).to.be.instanceOf(Error);
      await until(() => errors.length > 0);
      expect(status.some((s) => /failed/.test(s.message))).to.equal(true);
      expect(errors[0]!.errorCode).to.equal(IPWorksError.TLS);
    });
  });

  describe('quiet paths', () => {
    it('no DataIn is lost or duplicated across many messages', async () => {
      const server = await start();
      const { client } = await pair(server);
      const events = collect<DataInEvent>(server, 'DataIn');
      for (let i = 0; i < 200; i++) client.send(`m${i}`);
      await until(() => events.length === 200);
      expect(events.map((e) => e.text)).to.deep.equal(Array.from({ length: 200 }, (_, i) => `m${i}`));
      expect(await quiet(server, 'DataIn', 50)).to.equal(true);
    });
  });
});
