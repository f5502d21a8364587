/**
 * permessage-deflate (RFC 7692) on its own: the negotiation matrix for both roles, round trips with
 * and without context takeover, a deflate bomb stopped at the limit, corrupt input, and the
 * process-wide zlib concurrency limit.
 */
import { expect } from 'chai';
import zlib from 'node:zlib';
import { parseExtensionOffers } from '../../runtime/handshake/headers.js';
import {
  acceptOffer,
  acceptResponse,
  buildOffer,
  PerMessageDeflate,
  zlibLimiter,
  type NegotiatedDeflate,
} from '../../runtime/extensions/permessage-deflate.js';

const offers = (header: string) => parseExtensionOffers(header)!;

function pair(params: NegotiatedDeflate, maxPayload = 0) {
  return {
    server: new PerMessageDeflate(params, 'server', {}, maxPayload),
    client: new PerMessageDeflate(params, 'client', {}, maxPayload),
  };
}

const compress = (d: PerMessageDeflate, data: Buffer) =>
  new Promise<Buffer>((resolve, reject) => d.compress(data, (e, out) => (e ? reject(e) : resolve(out!))));
const decompress = (d: PerMessageDeflate, data: Buffer) =>
  new Promise<Buffer>((resolve, reject) => d.decompress(data, (e, out) => (e ? reject(e) : resolve(out!))));

const DEFAULTS: NegotiatedDeflate = { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 };

describe('permessage-deflate', () => {
  describe('server negotiation (RFC 7692 section 7.1)', () => {
    const cases: { offer: string; config?: object; response: string | undefined; params?: Partial<NegotiatedDeflate> }[] = [
      { offer: 'permessage-deflate', response: 'permessage-deflate' },
      { offer: 'permessage-deflate; client_max_window_bits', response: 'permessage-deflate' },
      { offer: 'permessage-deflate; client_max_window_bits', config: { clientMaxWindowBits: 10 }, response: 'permessage-deflate; client_max_window_bits=10', params: { clientMaxWindowBits: 10 } },
      { offer: 'permessage-deflate; server_no_context_takeover', response: 'permessage-deflate; server_no_context_takeover', params: { serverNoContextTakeover: true } },
      { offer: 'permessage-deflate; client_no_context_takeover', response: 'permessage-deflate; client_no_context_takeover', params: { clientNoContextTakeover: true } },
      { offer: 'permessage-deflate', config: { serverNoContextTakeover: true }, response: 'permessage-deflate; server_no_context_takeover' },
      { offer: 'permessage-deflate; server_max_window_bits=10', response: 'permessage-deflate; server_max_window_bits=10', params: { serverMaxWindowBits: 10 } },
      { offer: 'permessage-deflate; server_max_window_bits=12', config: { serverMaxWindowBits: 9 }, response: 'permessage-deflate; server_max_window_bits=9' },
      { offer: 'permessage-deflate; client_max_window_bits=11', config: { clientMaxWindowBits: 13 }, response: 'permessage-deflate; client_max_window_bits=11' },
      // Declined: a window limit for the client that the client did not say it supports (7.1.2.2).
      { offer: 'permessage-deflate', config: { clientMaxWindowBits: 10 }, response: undefined },
      // Declined: invalid values, unknown parameters, duplicates.
      { offer: 'permessage-deflate; server_max_window_bits=7', response: undefined },
      { offer: 'permessage-deflate; server_max_window_bits=16', response: undefined },
      { offer: 'permessage-deflate; server_max_window_bits', response: undefined },
      { offer: 'permessage-deflate; server_max_window_bits=010', response: undefined },
      { offer: 'permessage-deflate; server_no_context_takeover=1', response: undefined },
      { offer: 'permessage-deflate; foo', response: undefined },
      { offer: 'permessage-deflate; server_no_context_takeover; server_no_context_takeover', response: undefined },
      { offer: 'permessage-deflate; client_max_window_bits=9; client_max_window_bits=10', response: undefined },
      // The first acceptable offer wins.
      { offer: 'permessage-deflate; foo, permessage-deflate; client_no_context_takeover', response: 'permessage-deflate; client_no_context_takeover' },
      { offer: 'x-webkit-deflate-frame, permessage-deflate', response: 'permessage-deflate' },
      { offer: 'x-webkit-deflate-frame', response: undefined },
    ];
    for (const c of cases) {
      it(`${c.offer}${c.config ? ` with ${JSON.stringify(c.config)}` : ''} → ${c.response ?? 'declined'}`, () => {
        const accepted = acceptOffer(offers(c.offer), c.config ?? {});
        expect(accepted?.response).to.equal(c.response);
        if (c.params) expect(accepted!.params).to.include(c.params);
      });
    }
  });

  describe('client negotiation', () => {
    it('offers client_max_window_bits and the configured parameters', () => {
      expect(buildOffer({})).to.equal('permessage-deflate; client_max_window_bits');
      expect(buildOffer({ serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 12 })).to.equal(
        'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=12',
      );
    });

    it('accepts a valid response and reads its parameters', () => {
      const result = acceptResponse(offers('permessage-deflate; server_no_context_takeover; client_max_window_bits=10'), {});
      expect(result.ok).to.equal(true);
      if (result.ok) expect(result.params).to.deep.include({ serverNoContextTakeover: true, clientMaxWindowBits: 10 });
    });

    it('no permessage-deflate in the response means no compression', () => {
      const result = acceptResponse([], {});
      expect(result).to.deep.equal({ ok: true, params: undefined });
    });

    for (const [response, config] of [
      ['permessage-deflate; foo', {}],
      ['permessage-deflate; server_max_window_bits', {}],
      ['permessage-deflate; server_max_window_bits=12', { serverMaxWindowBits: 10 }],
      ['permessage-deflate; client_max_window_bits=12', { clientMaxWindowBits: 10 }],
      ['permessage-deflate, permessage-deflate', {}],
      ['permessage-deflate', { serverNoContextTakeover: true }],
      ['permessage-deflate; client_no_context_takeover; client_no_context_takeover', {}],
    ] as const) {
      it(`fails the connection on "${response}"${Object.keys(config).length ? ` after offering ${JSON.stringify(config)}` : ''}`, () => {
        const result = acceptResponse(offers(response), config);
        expect(result.ok).to.equal(false);
        if (!result.ok) expect(result.error.code).to.equal('WS_ERR_INVALID_EXTENSION');
      });
    }
  });

  describe('compression', () => {
    it('round-trips messages both ways, with context takeover', async () => {
      const { server, client } = pair(DEFAULTS);
      const message = Buffer.from('hello hello hello hello hello hello '.repeat(20));
      const first = await compress(server, message);
      const second = await compress(server, message);
      expect(second.length, 'the second message reuses the window').to.be.lessThan(first.length);
      expect(await decompress(client, first)).to.deep.equal(message);
      expect(await decompress(client, second)).to.deep.equal(message);
      const back = await compress(client, message);
      expect(await decompress(server, back)).to.deep.equal(message);
      server.cleanup();
      client.cleanup();
    });

    it('without context takeover every message stands alone', async () => {
      const params = { ...DEFAULTS, serverNoContextTakeover: true };
      const { server, client } = pair(params);
      const message = Buffer.from('abcabcabcabc'.repeat(50));
      const first = await compress(server, message);
      const second = await compress(server, message);
      expect(second).to.deep.equal(first);
      // Each one inflates on a fresh inflater too.
      const fresh = new PerMessageDeflate(params, 'client', {}, 0);
      expect(await decompress(fresh, second)).to.deep.equal(message);
      server.cleanup();
      client.cleanup();
      fresh.cleanup();
    });

    it('strips the 00 00 ff ff tail on send and restores it on receive (RFC 7692 7.2.1)', async () => {
      const { server } = pair(DEFAULTS);
      const out = await compress(server, Buffer.from('Hello'));
      expect(out.subarray(-4).equals(Buffer.from([0, 0, 0xff, 0xff]))).to.equal(false);
      // The RFC's own example: "Hello" compressed is 0xf2 0x48 0xcd 0xc9 0xc9 0x07 0x00.
      const client = new PerMessageDeflate(DEFAULTS, 'client', {}, 0);
      expect((await decompress(client, Buffer.from([0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]))).toString()).to.equal('Hello');
      server.cleanup();
      client.cleanup();
    });

    it('stops a deflate bomb at the limit with 1009, before inflating it all', async () => {
      const bomb = zlib.deflateRawSync(Buffer.alloc(64 * 1024 * 1024), { level: 9 });
      expect(bomb.length).to.be.lessThan(128 * 1024);
      const receiver = new PerMessageDeflate(DEFAULTS, 'server', {}, 1024 * 1024);
      const before = process.memoryUsage().rss;
      const error = await decompress(receiver, bomb).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).to.have.property('code', 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH');
      expect(error).to.have.property('closeCode', 1009);
      expect(process.memoryUsage().rss - before, 'memory grew by less than the inflated size').to.be.lessThan(48 * 1024 * 1024);
      receiver.cleanup();
    });

    it('a corrupt stream fails with 1007', async () => {
      const receiver = new PerMessageDeflate(DEFAULTS, 'server', {}, 0);
      const error = await decompress(receiver, Buffer.from([0xff, 0xff, 0xff, 0x00, 0x12])).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).to.have.property('closeCode', 1007);
      receiver.cleanup();
    });

    it('runs at most concurrencyLimit zlib jobs at once and queues the rest', async () => {
      const limit = 3;
      const senders = Array.from({ length: 12 }, () => new PerMessageDeflate(DEFAULTS, 'server', { concurrencyLimit: limit }, 0));
      let peakPending = 0;
      const data = Buffer.alloc(256 * 1024, 7);
      const jobs = senders.map((s) => {
        const job = compress(s, data);
        peakPending = Math.max(peakPending, zlibLimiter.pending);
        return job;
      });
      await Promise.all(jobs);
      expect(peakPending, 'jobs beyond the limit waited in the queue').to.equal(12 - limit);
      expect(zlibLimiter.pending).to.equal(0);
      for (const s of senders) s.cleanup();
      zlibLimiter.limit = 10;
    });

    it('refuses work after cleanup (contexts released on close)', async () => {
      const { server } = pair(DEFAULTS);
      server.cleanup();
      const error = await compress(server, Buffer.from('x')).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(String(error)).to.match(/closed/);
    });
  });
});
