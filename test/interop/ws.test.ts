/**
 * Interoperability with `ws` from npm, in both directions: a wirestate client against a ws
 * server, and a ws client against a wirestate server. Both libraries share one API, so the same
 * cases run on every pairing: echo of text / binary / empty / large / fragmented messages,
 * ping/pong with payloads, closing from either side with a code and a reason, subprotocols, and
 * a limit breached across implementations.
 */
import { expect } from 'chai';
import type { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocketServer as WsServer, WebSocket as WsClient } from 'ws';
import { WebSocket, WebSocketServer } from '../../runtime/index.js';
import { Resources, once, within } from '../helpers/sockets.js';

const res = new Resources();
afterEach(() => res.closeAll());

/** What the tests use of a connection; ws and wirestate both have it, with the same shapes. */
interface Conn extends EventEmitter {
  readonly readyState: number;
  readonly protocol: string;
  send(data: unknown, options?: { binary?: boolean; fin?: boolean }, cb?: (error?: Error | null) => void): unknown;
  ping(data?: unknown): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
}

interface Pairing {
  name: string;
  /** Starts a server with `options` (both libraries take the same names) and returns its URL and a connection queue. */
  server(options?: Record<string, unknown>): Promise<{ url: string; nextConnection(): Promise<Conn> }>;
  client(url: string, protocols?: string[], options?: Record<string, unknown>): Conn;
}

async function wsServer(options: Record<string, unknown> = {}) {
  const server = new WsServer({ port: 0, host: '127.0.0.1', ...options });
  res.add(server, (s) => new Promise<void>((resolve) => {
    for (const client of s.clients) client.terminate();
    s.close(() => resolve());
  }));
  await once(server, 'listening');
  return server;
}

async function wirestateServer(options: Record<string, unknown> = {}) {
  const server = res.server(new WebSocketServer({ port: 0, host: '127.0.0.1', ...options }));
  await once(server, 'listening');
  return server;
}

function queueOf(server: EventEmitter): () => Promise<Conn> {
  const waiting: Conn[] = [];
  const takers: ((conn: Conn) => void)[] = [];
  server.on('connection', (conn: Conn) => {
    const taker = takers.shift();
    if (taker) taker(conn);
    else waiting.push(conn);
  });
  return () => {
    const ready = waiting.shift();
    if (ready) return Promise.resolve(ready);
    return within(new Promise<Conn>((resolve) => takers.push(resolve)), 2000, 'a connection');
  };
}

const pairings: Pairing[] = [
  {
    name: 'wirestate client → ws server',
    async server(options) {
      const server = await wsServer(options);
      return { url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}`, nextConnection: queueOf(server) };
    },
    client: (url, protocols, options) => res.client(new WebSocket(url, protocols ?? [], options ?? {})) as unknown as Conn,
  },
  {
    name: 'ws client → wirestate server',
    async server(options) {
      const server = await wirestateServer(options);
      return { url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}`, nextConnection: queueOf(server) };
    },
    client: (url, protocols, options) => res.add(new WsClient(url, protocols ?? [], options ?? {}), (c) => c.terminate()) as unknown as Conn,
  },
];

async function message(conn: Conn, ms = 3000): Promise<{ data: Buffer; isBinary: boolean }> {
  const [data, isBinary] = await once(conn, 'message', ms);
  return { data: data as Buffer, isBinary: isBinary as boolean };
}

async function closeOf(conn: Conn, ms = 3000): Promise<[number, string]> {
  const [code, reason] = await once(conn, 'close', ms);
  return [code as number, (reason as Buffer).toString()];
}

/** An open client and the server side of its connection, with the server echoing every message. */
async function echoPair(p: Pairing, serverOptions?: Record<string, unknown>, protocols?: string[]) {
  const { url, nextConnection } = await p.server(serverOptions);
  const client = p.client(url, protocols);
  const [server] = await Promise.all([nextConnection(), once(client, 'open')]);
  server.on('message', (data: Buffer, isBinary: boolean) => server.send(data, { binary: isBinary }));
  // ws throws an 'error' nobody listens to (wirestate does not); the tests look at close codes.
  server.on('error', () => {});
  client.on('error', () => {});
  return { client, server };
}

describe('interop with ws (npm)', function () {
  this.timeout(15000);

  for (const p of pairings) {
    describe(p.name, () => {
      it('echoes text', async () => {
        const { client } = await echoPair(p);
        client.send('héllo, ws ✓');
        const { data, isBinary } = await message(client);
        expect([data.toString(), isBinary]).to.deep.equal(['héllo, ws ✓', false]);
      });

      it('echoes binary', async () => {
        const { client } = await echoPair(p);
        const bytes = Buffer.from([0, 1, 2, 3, 254, 255]);
        client.send(bytes);
        const { data, isBinary } = await message(client);
        expect(isBinary).to.equal(true);
        expect(Buffer.from(data)).to.deep.equal(bytes);
      });

      it('echoes empty text and empty binary', async () => {
        const { client } = await echoPair(p);
        client.send('');
        const first = await message(client);
        expect([first.data.length, first.isBinary]).to.deep.equal([0, false]);
        client.send(Buffer.alloc(0));
        const second = await message(client);
        expect([second.data.length, second.isBinary]).to.deep.equal([0, true]);
      });

      it('echoes a 5 MiB message', async () => {
        const { client } = await echoPair(p);
        const big = Buffer.alloc(5 * 1024 * 1024);
        for (let i = 0; i < big.length; i += 1024) big.writeUInt32BE(i, i);
        client.send(big);
        const { data } = await message(client, 8000);
        expect(Buffer.from(data).equals(big)).to.equal(true);
      });

      it('a fragmented message (fin:false … fin:true) arrives whole, both ways', async () => {
        const { client, server } = await echoPair(p);
        client.send('one ', { fin: false });
        client.send('two ', { fin: false });
        client.send('three', { fin: true });
        expect((await message(client)).data.toString()).to.equal('one two three');
        // And the server fragments towards the client.
        const received = message(client);
        server.send(Buffer.from([1, 2]), { fin: false, binary: true });
        server.send(Buffer.from([3, 4]), { fin: true, binary: true });
        expect(Buffer.from((await received).data)).to.deep.equal(Buffer.from([1, 2, 3, 4]));
      });

      it('many messages keep their order', async () => {
        const { client } = await echoPair(p);
        const got: string[] = [];
        const all = new Promise<void>((resolve) =>
          client.on('message', (data: Buffer) => {
            got.push(data.toString());
            if (got.length === 200) resolve();
          }),
        );
        for (let i = 0; i < 200; i++) client.send(String(i));
        await within(all, 5000, '200 messages');
        expect(got).to.deep.equal(Array.from({ length: 200 }, (_, i) => String(i)));
      });

      it('ping with a payload from the client is answered by the server with the same payload', async () => {
        const { client, server } = await echoPair(p);
        const serverPing = once(server, 'ping');
        const pong = once(client, 'pong');
        client.ping('client ping');
        expect(((await serverPing)[0] as Buffer).toString()).to.equal('client ping');
        expect(((await pong)[0] as Buffer).toString()).to.equal('client ping');
      });

      it('ping with a payload from the server is answered by the client with the same payload', async () => {
        const { client, server } = await echoPair(p);
        const clientPing = once(client, 'ping');
        const pong = once(server, 'pong');
        server.ping(Buffer.from([0xde, 0xad]));
        expect(Buffer.from((await clientPing)[0] as Buffer)).to.deep.equal(Buffer.from([0xde, 0xad]));
        expect(Buffer.from((await pong)[0] as Buffer)).to.deep.equal(Buffer.from([0xde, 0xad]));
      });

      it('close from the client with a code and reason: both ends see them', async () => {
        const { client, server } = await echoPair(p);
        const serverClosed = closeOf(server);
        const clientClosed = closeOf(client);
        client.close(4321, 'client says bye ✓');
        expect(await serverClosed).to.deep.equal([4321, 'client says bye ✓']);
        expect(await clientClosed).to.deep.equal([4321, 'client says bye ✓']);
        expect([client.readyState, server.readyState]).to.deep.equal([3, 3]);
      });

      it('close from the server with a code and reason: both ends see them', async () => {
        const { client, server } = await echoPair(p);
        const serverClosed = closeOf(server);
        const clientClosed = closeOf(client);
        server.close(1001, 'server going away');
        expect(await clientClosed).to.deep.equal([1001, 'server going away']);
        expect(await serverClosed).to.deep.equal([1001, 'server going away']);
      });

      it('close without a code: both ends report 1005', async () => {
        const { client, server } = await echoPair(p);
        const serverClosed = closeOf(server);
        const clientClosed = closeOf(client);
        client.close();
        expect(await serverClosed).to.deep.equal([1005, '']);
        expect(await clientClosed).to.deep.equal([1005, '']);
      });

      it('terminate() on the client: the server reports 1006', async () => {
        const { client, server } = await echoPair(p);
        const serverClosed = closeOf(server);
        client.terminate();
        expect((await serverClosed)[0]).to.equal(1006);
      });

      it('the subprotocol chosen by the server is the one both ends report', async () => {
        const { client, server } = await echoPair(p, { handleProtocols: (offered: Set<string>) => (offered.has('v2.chat') ? 'v2.chat' : false) }, ['v1.chat', 'v2.chat']);
        expect(client.protocol).to.equal('v2.chat');
        expect(server.protocol).to.equal('v2.chat');
      });

      it('a message over the server’s maxPayload closes the connection with 1009', async () => {
        const { client } = await echoPair(p, { maxPayload: 1024 });
        const clientClosed = closeOf(client);
        client.send(Buffer.alloc(2048));
        expect((await clientClosed)[0]).to.equal(1009);
      });
    });
  }

  it('a ws client offering permessage-deflate (its default) is served without the extension', async () => {
    const server = await wirestateServer();
    const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const client = res.add(new WsClient(url), (c) => c.terminate());
    const upgrade = once(client, 'upgrade');
    await once(client, 'open');
    const [response] = (await upgrade) as [import('node:http').IncomingMessage];
    expect(response.headers['sec-websocket-extensions']).to.equal(undefined);
    expect(client.extensions).to.equal('');
  });
});
