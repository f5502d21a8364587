/**
 * Unit tests of the pure opening-handshake functions (RFC 6455 section 4, section 9.1; RFC 7692
 * extension headers).
 */
import { expect } from 'chai';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { IncomingHttpHeaders } from 'node:http';
import { WebSocketProtocolError } from '../../runtime/errors.js';
import {
  acceptKeyFor,
  buildAcceptHeaders,
  buildClientRequestHeaders,
  buildRejectResponse,
  connectionHasUpgrade,
  formatExtensions,
  generateKey,
  headerValue,
  isValidKey,
  parseExtensionOffers,
  parseTokenList,
  parseWebSocketUrl,
  selectSubprotocol,
  serializeResponseHead,
  validateProtocols,
  validateUpgradeRequest,
  verifyServerResponse,
  type ExtensionOffer,
  type UpgradeRequestLike,
} from '../../runtime/handshake/index.js';

// ws's own extension parser, for differential checks (ws is a devDependency).
const require = createRequire(import.meta.url);
const wsExtension = require(join(dirname(require.resolve('ws')), 'lib', 'extension.js')) as {
  parse(header: string): Record<string, Array<Record<string, Array<string | true>>>>;
};

const SAMPLE_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
// RFC 6455 section 1.3: "This value is then base64-encoded [...], to give the value
// "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="". (Not "s3pPLMBiTxaMmRzo9XtY3+6WMJU=", which is not the RFC's.)
const SAMPLE_ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

/** A valid RFC 6455 upgrade request; `overrides.headers` entries set to undefined are removed. */
function request(
  overrides: Partial<Omit<UpgradeRequestLike, 'headers'>> & { headers?: Record<string, string | string[] | undefined> } = {},
): UpgradeRequestLike {
  const headers: IncomingHttpHeaders = {
    host: 'server.example.com',
    upgrade: 'websocket',
    connection: 'Upgrade',
    'sec-websocket-key': SAMPLE_KEY,
    'sec-websocket-version': '13',
  };
  for (const [name, value] of Object.entries(overrides.headers ?? {})) {
    if (value === undefined) delete headers[name];
    else headers[name] = value;
  }
  const { headers: _ignored, ...rest } = overrides;
  return { method: 'GET', httpVersion: '1.1', url: '/chat', ...rest, headers };
}

/** ExtensionOffer[] in ws's shape, for comparing with ws's parser. */
function toWsShape(offers: ExtensionOffer[]): Record<string, Array<Record<string, Array<string | true>>>> {
  const out: Record<string, Array<Record<string, Array<string | true>>>> = {};
  for (const offer of offers) {
    (out[offer.name] ??= []).push(Object.fromEntries(offer.params));
  }
  return out;
}

function plain(offers: ExtensionOffer[] | undefined): unknown {
  return offers?.map((o) => ({ name: o.name, params: [...o.params] }));
}

describe('handshake', () => {
  describe('acceptKeyFor / isValidKey (RFC 6455 1.3, 4.1, 4.2.2)', () => {
    it('computes the accept value of the RFC 6455 section 1.3 sample', () => {
      expect(acceptKeyFor(SAMPLE_KEY)).to.equal(SAMPLE_ACCEPT);
      // The SHA-1 bytes RFC 6455 1.3 lists before base64-encoding them.
      expect(Buffer.from(acceptKeyFor(SAMPLE_KEY), 'base64').toString('hex')).to.equal(
        'b37a4f2cc0624f1690f64606cf385945b2bec4ea',
      );
    });

    it('hashes the key as a string, not base64-decoded', () => {
      expect(acceptKeyFor('x3JJHMbDL1EzLkh9GBhXDw==')).to.equal('HSmrc0sMlYUkAGmm5OPpG2HaGWk=');
      expect(acceptKeyFor(SAMPLE_KEY.replace('Q==', 'R=='))).to.not.equal(SAMPLE_ACCEPT);
    });

    it('accepts base64 of exactly 16 bytes', () => {
      expect(isValidKey(SAMPLE_KEY)).to.equal(true);
      expect(isValidKey('AAAAAAAAAAAAAAAAAAAAAA==')).to.equal(true);
      expect(isValidKey('+/+/+/+/+/+/+/+/+/+/+w==')).to.equal(true);
      for (let i = 0; i < 20; i++) expect(isValidKey(generateKey())).to.equal(true);
    });

    for (const [label, key] of [
      ['empty', ''],
      ['15 bytes', Buffer.alloc(15, 1).toString('base64')],
      ['17 bytes', Buffer.alloc(17, 1).toString('base64')],
      ['no padding', 'dGhlIHNhbXBsZSBub25jZQ'],
      ['one padding char', 'dGhlIHNhbXBsZSBub25jZQA='],
      ['a non-base64 character', 'dGhlIHNhbXBsZSBub25jZ-=='],
      ['url-safe alphabet', 'dGhlIHNhbXBsZSBub25j_Q=='],
      ['surrounding space', ' dGhlIHNhbXBsZSBub25jZQ=='],
      ['two keys joined', `${SAMPLE_KEY}, ${SAMPLE_KEY}`],
    ] as const) {
      it(`rejects a key with ${label}`, () => {
        expect(isValidKey(key)).to.equal(false);
      });
    }
  });

  describe('validateUpgradeRequest (RFC 6455 4.2.1)', () => {
    it('accepts the RFC 6455 section 1.3 request and reports its fields', () => {
      const result = validateUpgradeRequest(
        request({
          url: '/chat?room=1#x',
          headers: {
            origin: 'http://example.com',
            'sec-websocket-protocol': 'chat, superchat',
            'sec-websocket-extensions': 'permessage-deflate; client_max_window_bits, x-foo',
          },
        }),
      );
      if (!result.ok) throw result.error;
      expect(result.upgrade.key).to.equal(SAMPLE_KEY);
      expect(result.upgrade.version).to.equal(13);
      expect(result.upgrade.protocols).to.deep.equal(['chat', 'superchat']);
      expect(plain(result.upgrade.extensions)).to.deep.equal([
        { name: 'permessage-deflate', params: [['client_max_window_bits', [true]]] },
        { name: 'x-foo', params: [] },
      ]);
      expect(result.upgrade.origin).to.equal('http://example.com');
      expect(result.upgrade.path).to.equal('/chat');
      expect(result.upgrade.host).to.equal('server.example.com');
    });

    it('defaults optional fields', () => {
      const result = validateUpgradeRequest(request({ url: undefined }));
      if (!result.ok) throw result.error;
      expect(result.upgrade.protocols).to.deep.equal([]);
      expect(result.upgrade.extensions).to.deep.equal([]);
      expect(result.upgrade.origin).to.equal(undefined);
      expect(result.upgrade.path).to.equal('/');
    });

    it('takes the path of an absolute-form request-target', () => {
      const result = validateUpgradeRequest(request({ url: 'http://server.example.com/a/b?c' }));
      if (!result.ok) throw result.error;
      expect(result.upgrade.path).to.equal('/a/b');
    });

    for (const [label, req] of [
      ['an upper-case Upgrade value', request({ headers: { upgrade: 'WebSocket' } })],
      ['Connection among other tokens', request({ headers: { connection: 'keep-alive, Upgrade' } })],
      ['Connection in upper case without spaces', request({ headers: { connection: 'keep-alive,UPGRADE' } })],
      ['HTTP/2.0', request({ httpVersion: '2.0' })],
      ['HTTP/1.2', request({ httpVersion: '1.2' })],
      ['repeated Sec-WebSocket-Protocol fields', request({ headers: { 'sec-websocket-protocol': ['a', 'b'] } })],
      ['a quoted extension value', request({ headers: { 'sec-websocket-extensions': 'foo; bar="baz"' } })],
    ] as const) {
      it(`accepts ${label}`, () => {
        const result = validateUpgradeRequest(req);
        if (!result.ok) throw result.error;
      });
    }

    const malformed: Array<[string, UpgradeRequestLike, string, number]> = [
      ['POST', request({ method: 'POST' }), 'invalidMethod', 405],
      ['lower-case get', request({ method: 'get' }), 'invalidMethod', 405],
      ['no method', request({ method: undefined }), 'invalidMethod', 405],
      ['HTTP/1.0', request({ httpVersion: '1.0' }), 'invalidHttpVersion', 505],
      ['HTTP/0.9', request({ httpVersion: '0.9' }), 'invalidHttpVersion', 505],
      ['a garbage HTTP version', request({ httpVersion: '1.x' }), 'invalidHttpVersion', 505],
      ['no HTTP version', request({ httpVersion: undefined }), 'invalidHttpVersion', 505],
      ['no Host', request({ headers: { host: undefined } }), 'missingHost', 400],
      ['an empty Host', request({ headers: { host: '' } }), 'missingHost', 400],
      ['two Host fields', request({ headers: { host: ['a.example', 'b.example'] } }), 'missingHost', 400],
      ['no Upgrade', request({ headers: { upgrade: undefined } }), 'invalidUpgradeHeader', 400],
      ['Upgrade: h2c', request({ headers: { upgrade: 'h2c' } }), 'invalidUpgradeHeader', 400],
      ['Upgrade: websocket, h2c', request({ headers: { upgrade: 'websocket, h2c' } }), 'invalidUpgradeHeader', 400],
      ['Upgrade: websockets', request({ headers: { upgrade: 'websockets' } }), 'invalidUpgradeHeader', 400],
      ['no Connection', request({ headers: { connection: undefined } }), 'invalidConnectionHeader', 400],
      ['Connection: keep-alive', request({ headers: { connection: 'keep-alive' } }), 'invalidConnectionHeader', 400],
      ['Connection: upgrades', request({ headers: { connection: 'upgrades' } }), 'invalidConnectionHeader', 400],
      ['Connection: up grade', request({ headers: { connection: 'up grade' } }), 'invalidConnectionHeader', 400],
      ['no Sec-WebSocket-Key', request({ headers: { 'sec-websocket-key': undefined } }), 'invalidKey', 400],
      ['a short key', request({ headers: { 'sec-websocket-key': 'AAAA' } }), 'invalidKey', 400],
      ['a 17-byte key', request({ headers: { 'sec-websocket-key': Buffer.alloc(17).toString('base64') } }), 'invalidKey', 400],
      ['two keys', request({ headers: { 'sec-websocket-key': [SAMPLE_KEY, SAMPLE_KEY] } }), 'invalidKey', 400],
      ['no Sec-WebSocket-Version', request({ headers: { 'sec-websocket-version': undefined } }), 'unsupportedVersion', 426],
      ['version 8', request({ headers: { 'sec-websocket-version': '8' } }), 'unsupportedVersion', 426],
      ['version 14', request({ headers: { 'sec-websocket-version': '14' } }), 'unsupportedVersion', 426],
      ['version 013', request({ headers: { 'sec-websocket-version': '013' } }), 'unsupportedVersion', 426],
      ['version list', request({ headers: { 'sec-websocket-version': '13, 8' } }), 'unsupportedVersion', 426],
      ['an empty Sec-WebSocket-Protocol', request({ headers: { 'sec-websocket-protocol': '' } }), 'invalidProtocolHeader', 400],
      ['an empty protocol element', request({ headers: { 'sec-websocket-protocol': 'a,,b' } }), 'invalidProtocolHeader', 400],
      ['a trailing comma', request({ headers: { 'sec-websocket-protocol': 'chat,' } }), 'invalidProtocolHeader', 400],
      ['a space inside a protocol', request({ headers: { 'sec-websocket-protocol': 'a b' } }), 'invalidProtocolHeader', 400],
      ['a separator in a protocol', request({ headers: { 'sec-websocket-protocol': 'chat/1' } }), 'invalidProtocolHeader', 400],
      ['a duplicated protocol', request({ headers: { 'sec-websocket-protocol': 'chat, chat' } }), 'invalidProtocolHeader', 400],
      ['a protocol duplicated across fields', request({ headers: { 'sec-websocket-protocol': ['chat', 'chat'] } }), 'invalidProtocolHeader', 400],
      ['an empty Sec-WebSocket-Extensions', request({ headers: { 'sec-websocket-extensions': '' } }), 'invalidExtensionsHeader', 400],
      ['a dangling ";"', request({ headers: { 'sec-websocket-extensions': 'foo;' } }), 'invalidExtensionsHeader', 400],
      ['a missing value', request({ headers: { 'sec-websocket-extensions': 'foo; a=' } }), 'invalidExtensionsHeader', 400],
      ['an unterminated quote', request({ headers: { 'sec-websocket-extensions': 'foo; a="b' } }), 'invalidExtensionsHeader', 400],
      ['a quoted non-token', request({ headers: { 'sec-websocket-extensions': 'foo; a="b c"' } }), 'invalidExtensionsHeader', 400],
      ['an empty extension', request({ headers: { 'sec-websocket-extensions': 'foo, , bar' } }), 'invalidExtensionsHeader', 400],
    ];
    for (const [label, req, id, status] of malformed) {
      it(`rejects ${label} with ${id} (${status})`, () => {
        const result = validateUpgradeRequest(req);
        expect(result.ok).to.equal(false);
        if (result.ok) return;
        expect(result.error).to.be.instanceOf(WebSocketProtocolError);
        expect(result.error.id).to.equal(id);
        expect(result.error.status).to.equal(status);
        expect(result.error.code).to.match(/^WS_ERR_HANDSHAKE_/);
      });
    }

    it('reports the first broken rule in RFC order', () => {
      const bad = { upgrade: 'h2c', 'sec-websocket-key': 'x', 'sec-websocket-version': '8', 'sec-websocket-protocol': ',' };
      const check = (req: UpgradeRequestLike, id: string): void => {
        const result = validateUpgradeRequest(req);
        expect(result.ok ? 'ok' : result.error.id).to.equal(id);
      };
      check(request({ method: 'PUT', httpVersion: '1.0', headers: { host: undefined, ...bad } }), 'invalidMethod');
      check(request({ httpVersion: '1.0', headers: { host: undefined, ...bad } }), 'invalidHttpVersion');
      check(request({ headers: { host: undefined, ...bad } }), 'missingHost');
      check(request({ headers: bad }), 'invalidUpgradeHeader');
      check(request({ headers: { ...bad, upgrade: 'websocket', connection: 'close' } }), 'invalidConnectionHeader');
      check(request({ headers: { ...bad, upgrade: 'websocket' } }), 'invalidKey');
      check(request({ headers: { ...bad, upgrade: 'websocket', 'sec-websocket-key': SAMPLE_KEY } }), 'unsupportedVersion');
      check(
        request({ headers: { 'sec-websocket-protocol': ',', 'sec-websocket-extensions': ';' } }),
        'invalidProtocolHeader',
      );
    });

    it('does not echo a huge header value into the error message', () => {
      const result = validateUpgradeRequest(request({ headers: { upgrade: 'x'.repeat(100_000) } }));
      expect(result.ok).to.equal(false);
      if (!result.ok) expect(result.error.message.length).to.be.lessThan(200);
    });
  });

  describe('server responses', () => {
    it('builds the 101 response of RFC 6455 section 1.3', () => {
      const lines = buildAcceptHeaders(SAMPLE_KEY, 'chat', 'permessage-deflate');
      expect(lines).to.deep.equal([
        'HTTP/1.1 101 Switching Protocols',
        'Upgrade: websocket',
        'Connection: Upgrade',
        `Sec-WebSocket-Accept: ${SAMPLE_ACCEPT}`,
        'Sec-WebSocket-Protocol: chat',
        'Sec-WebSocket-Extensions: permessage-deflate',
      ]);
      expect(serializeResponseHead(lines.slice(0, 2))).to.equal(
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n',
      );
    });

    it('omits Sec-WebSocket-Protocol and Sec-WebSocket-Extensions when none was chosen', () => {
      const lines = buildAcceptHeaders(SAMPLE_KEY, undefined, undefined);
      expect(lines).to.have.length(4);
      expect(lines.join('\n')).to.not.match(/Sec-WebSocket-(Protocol|Extensions)/);
    });

    it('refuses to write CR/LF or a non-token into the response head', () => {
      expect(() => buildAcceptHeaders(SAMPLE_KEY, 'chat\r\nX-Evil: 1', undefined)).to.throw(TypeError);
      expect(() => buildAcceptHeaders(SAMPLE_KEY, undefined, 'a\r\nX-Evil: 1')).to.throw(TypeError);
      expect(() => buildRejectResponse(400, 'no', { 'X-A': 'b\nc' })).to.throw(TypeError);
      expect(() => buildRejectResponse(400, 'no', { 'X A': 'b' })).to.throw(TypeError);
    });

    it('builds a complete reject response', () => {
      const response = buildRejectResponse(400, 'Missing or invalid Sec-WebSocket-Key header');
      const [head, body] = response.split('\r\n\r\n');
      const lines = head!.split('\r\n');
      expect(lines[0]).to.equal('HTTP/1.1 400 Bad Request');
      expect(lines).to.include('Connection: close');
      expect(lines).to.include('Content-Type: text/plain');
      expect(lines).to.include(`Content-Length: ${body!.length}`);
      expect(body).to.equal('Missing or invalid Sec-WebSocket-Key header');
      expect(lines.join('\n')).to.not.include('Sec-WebSocket-Version');
    });

    it('uses the reason phrase as the default body and counts bytes, not characters', () => {
      expect(buildRejectResponse(405)).to.match(/^HTTP\/1\.1 405 Method Not Allowed\r\n[^]*\r\n\r\nMethod Not Allowed$/);
      const response = buildRejectResponse(403, 'refusé');
      expect(response).to.include('Content-Length: 7\r\n');
      expect(response.endsWith('\r\n\r\nrefusé')).to.equal(true);
    });

    it('answers an unsupported version with 426 and Sec-WebSocket-Version: 13 (RFC 6455 4.4)', () => {
      const result = validateUpgradeRequest(request({ headers: { 'sec-websocket-version': '8' } }));
      if (result.ok) throw new Error('expected a failure');
      const response = buildRejectResponse(result.error.status!, result.error.message);
      expect(response.startsWith('HTTP/1.1 426 Upgrade Required\r\n')).to.equal(true);
      expect(response.split('\r\n\r\n')[0]!.split('\r\n')).to.include('Sec-WebSocket-Version: 13');
    });

    it('lets extra headers replace defaults, case-insensitively, but never Content-Length', () => {
      const response = buildRejectResponse(401, 'nope', { 'content-type': 'text/html', 'Content-Length': '999', 'WWW-Authenticate': 'Basic' });
      const lines = response.split('\r\n\r\n')[0]!.split('\r\n');
      expect(lines).to.include('content-type: text/html');
      expect(lines).to.not.include('Content-Type: text/plain');
      expect(lines).to.include('Content-Length: 4');
      expect(lines).to.include('WWW-Authenticate: Basic');
    });

    it('rejects an impossible status code', () => {
      expect(() => buildRejectResponse(42)).to.throw(RangeError);
    });
  });

  describe('selectSubprotocol', () => {
    it('selects nothing when nothing is offered, without calling the handler', () => {
      let called = false;
      expect(selectSubprotocol([], () => ((called = true), 'x'))).to.equal(undefined);
      expect(called).to.equal(false);
    });

    it('selects the first offered protocol by default (ws)', () => {
      expect(selectSubprotocol(['b', 'a'])).to.equal('b');
    });

    it("passes the offers and the request to handleProtocols and returns its choice", () => {
      const req = { url: '/' };
      let seen: [Set<string>, unknown] | undefined;
      const chosen = selectSubprotocol(['a', 'b'], (protocols, r) => {
        seen = [protocols, r];
        return 'b';
      }, req);
      expect(chosen).to.equal('b');
      expect([...seen![0]]).to.deep.equal(['a', 'b']);
      expect(seen![1]).to.equal(req);
    });

    it('returns false when the handler rejects', () => {
      expect(selectSubprotocol(['a'], () => false)).to.equal(false);
    });

    it('refuses a choice the client did not offer (RFC 6455 4.2.2)', () => {
      expect(() => selectSubprotocol(['a'], () => 'c')).to.throw(TypeError, /did not offer/);
    });
  });

  describe('parseTokenList', () => {
    for (const [input, expected] of [
      ['chat', ['chat']],
      ['chat, superchat', ['chat', 'superchat']],
      ['a,b,c', ['a', 'b', 'c']],
      ['  a \t,\tb  ', ['a', 'b']],
      ["!#$%&'*+-.^_`|~09AZaz", ["!#$%&'*+-.^_`|~09AZaz"]],
      ['Chat, chat', ['Chat', 'chat']],
    ] as const) {
      it(`parses ${JSON.stringify(input)}`, () => {
        expect(parseTokenList(input)).to.deep.equal(expected);
      });
    }

    for (const input of ['', ' ', ',', 'a,', ',a', 'a,,b', 'a b', 'a;b', '"a"', 'a/b', 'a,a', 'a, b, a', 'é', 'a\u0000', 'a\r\nb']) {
      it(`rejects ${JSON.stringify(input)}`, () => {
        expect(parseTokenList(input)).to.equal(undefined);
      });
    }
  });

  describe('parseExtensionOffers / formatExtensions (RFC 6455 9.1, RFC 7692)', () => {
    it('parses names, parameters without values, token values and repeated offers', () => {
      const offers = parseExtensionOffers(
        'permessage-deflate; client_max_window_bits; server_max_window_bits=10, permessage-deflate',
      );
      expect(plain(offers)).to.deep.equal([
        {
          name: 'permessage-deflate',
          params: [
            ['client_max_window_bits', [true]],
            ['server_max_window_bits', ['10']],
          ],
        },
        { name: 'permessage-deflate', params: [] },
      ]);
    });

    it('unescapes quoted-string values', () => {
      expect(plain(parseExtensionOffers('foo; bar="baz"; qux="a\\bc"; n="1\\0"'))).to.deep.equal([
        { name: 'foo', params: [['bar', ['baz']], ['qux', ['abc']], ['n', ['10']]] },
      ]);
    });

    it('keeps every value of a repeated parameter, in order', () => {
      expect(plain(parseExtensionOffers('foo; a=1; b; a=2; a'))).to.deep.equal([
        { name: 'foo', params: [['a', ['1', '2', true]], ['b', [true]]] },
      ]);
    });

    it('accepts optional whitespace around separators and "="', () => {
      expect(plain(parseExtensionOffers(' foo ;\ta = 1 ; b ,bar ; c="d" '))).to.deep.equal([
        { name: 'foo', params: [['a', ['1']], ['b', [true]]] },
        { name: 'bar', params: [['c', ['d']]] },
      ]);
    });

    it('is safe with prototype-like parameter names', () => {
      const offers = parseExtensionOffers('foo; __proto__=1; constructor');
      expect(offers![0]!.params.get('__proto__')).to.deep.equal(['1']);
      expect(offers![0]!.params.get('constructor')).to.deep.equal([true]);
    });

    for (const input of [
      '',
      '   ',
      ',',
      'foo,',
      ',foo',
      'foo,,bar',
      'foo;',
      'foo;;a',
      ';a',
      'foo; =1',
      'foo; a=',
      'foo; a==1',
      'foo; a=1=2',
      'foo; a="',
      'foo; a="b',
      'foo; a=""',
      'foo; a="b c"',
      'foo; a="b,c"',
      'foo; a="b\\ c"',
      'foo; a="b\\"',
      'foo; a="b"c',
      'foo; a=b"c"',
      'foo bar',
      'foo; a b',
      'foo; a=b c',
      'fo"o"',
      'foo; a=é',
      'foo\r\n; a',
      'foo; a="b";',
    ]) {
      it(`rejects ${JSON.stringify(input)}`, () => {
        expect(parseExtensionOffers(input)).to.equal(undefined);
      });
    }

    it('agrees with ws lib/extension.js on valid and invalid inputs', () => {
      const corpus = [
        'foo',
        'foo, bar, baz',
        'foo; bar; baz=1; bar=2',
        'foo; bar=1, foo; bar=2, baz',
        'permessage-deflate; client_no_context_takeover; server_max_window_bits=15',
        'foo; bar="baz"',
        'foo; bar="b\\az"',
        'foo;bar=1,baz',
        'foo ; bar = 1',
        'foo; bar=""',
        'foo; bar="a b"',
        'foo;',
        'foo,',
        ',foo',
        'foo; bar="',
        'foo bar',
        'foo; bar=baz qux',
        'foo; bar="baz"qux',
      ];
      for (const input of corpus) {
        let theirs: unknown;
        try {
          theirs = wsExtension.parse(input);
        } catch {
          theirs = undefined;
        }
        const ours = parseExtensionOffers(input);
        // The one documented difference: we accept whitespace around "=" (RFC 7230 BWS).
        if (input === 'foo ; bar = 1') {
          expect(theirs, input).to.equal(undefined);
          expect(plain(ours), input).to.deep.equal([{ name: 'foo', params: [['bar', ['1']]] }]);
          continue;
        }
        if (theirs === undefined) expect(ours, input).to.equal(undefined);
        else expect(toWsShape(ours!), input).to.deep.equal({ ...(theirs as object) });
      }
    });

    it('formats offers and round-trips through the parser', () => {
      const text = 'permessage-deflate; client_max_window_bits; server_max_window_bits=10, x-foo, x-bar; a=1; a=2';
      const offers = parseExtensionOffers(text)!;
      expect(formatExtensions(offers)).to.equal(text);
      expect(plain(parseExtensionOffers(formatExtensions(offers)))).to.deep.equal(plain(offers));
    });

    it('formats numeric values and offers without params', () => {
      expect(
        formatExtensions([
          { name: 'permessage-deflate', params: new Map<string, Array<string | number | true>>([['server_max_window_bits', [15]], ['client_no_context_takeover', [true]]]) },
          { name: 'x' },
        ]),
      ).to.equal('permessage-deflate; server_max_window_bits=15; client_no_context_takeover, x');
      expect(formatExtensions([])).to.equal('');
    });

    it('refuses to format names or values that are not tokens', () => {
      expect(() => formatExtensions([{ name: 'a b' }])).to.throw(TypeError);
      expect(() => formatExtensions([{ name: 'a', params: new Map([['b\r\n', [true as const]]]) }])).to.throw(TypeError);
      expect(() => formatExtensions([{ name: 'a', params: new Map([['b', ['x y']]]) }])).to.throw(TypeError);
      expect(() => formatExtensions([{ name: 'a', params: new Map([['b', ['']]]) }])).to.throw(TypeError);
    });
  });

  describe('headerValue / connectionHasUpgrade', () => {
    it('reads a header case-insensitively and joins repeated fields', () => {
      const headers: IncomingHttpHeaders = { 'x-multi': ['a', 'b'], host: 'h' };
      expect(headerValue(headers, 'X-Multi')).to.equal('a, b');
      expect(headerValue(headers, 'HOST')).to.equal('h');
      expect(headerValue(headers, 'origin')).to.equal(undefined);
    });

    for (const [value, expected] of [
      ['Upgrade', true],
      ['upgrade', true],
      ['UPGRADE', true],
      ['keep-alive, Upgrade', true],
      ['Upgrade,keep-alive', true],
      [' , upgrade ,', true],
      ['keep-alive', false],
      ['upgrades', false],
      ['upgrade-insecure', false],
      ['up grade', false],
      ['"upgrade"', false],
      ['', false],
      [undefined, false],
    ] as const) {
      it(`${expected ? 'finds' : 'does not find'} upgrade in ${JSON.stringify(value)}`, () => {
        expect(connectionHasUpgrade(value)).to.equal(expected);
      });
    }
  });

  describe('linear time on hostile input (ReDoS)', function () {
    this.timeout(60_000);

    /**
     * A string stand-in that counts the characters a scanner reads: every `charCodeAt` and every
     * character copied by `slice`. The parsers are hand-written scanners over exactly these three
     * members, so the count is their work, deterministically (timings on a shared machine are
     * not). Using the value opaquely (a regular expression, a native search) throws, so a
     * regex-based rewrite fails here instead of going unmeasured.
     */
    class CountingString {
      reads = 0;
      constructor(private readonly text: string) {}
      get length(): number {
        return this.text.length;
      }
      charCodeAt(index: number): number {
        this.reads++;
        return this.text.charCodeAt(index);
      }
      slice(start?: number, end?: number): string {
        const out = this.text.slice(start, end);
        this.reads += out.length;
        return out;
      }
      toString(): string {
        throw new Error('the scanner used the value opaquely; its work cannot be counted');
      }
      [Symbol.toPrimitive](): string {
        return this.toString();
      }
    }

    /** Characters read by `run` on `text`. */
    function work(run: (s: string) => unknown, text: string): number {
      const counted = new CountingString(text);
      run(counted as unknown as string);
      return counted.reads;
    }

    const MB = 1 << 20;

    it('the work measure tells a quadratic scanner from a linear one', () => {
      // A deliberately quadratic scan that re-reads the prefix at every position, as a
      // backtracking matcher does: the measure must expose it, or the checks below prove nothing.
      const quadratic = (s: string): number => {
        let count = 0;
        for (let i = 0; i < s.length; i++) {
          for (let j = 0; j <= i; j++) if (s.charCodeAt(j) === 0x20) count++;
        }
        return count;
      };
      const ratio = work(quadratic, ' '.repeat(2000)) / work(quadratic, ' '.repeat(1000));
      expect(ratio).to.be.greaterThan(3.5);
      expect(() => work((s) => /a+$/.test(s), 'aaa')).to.throw(/opaquely/);
    });

    // [label, input of about n characters, parser, check of the 1 MB result, time budget for 1 MB].
    // The budget is wall-clock on a possibly busy shared machine, so it is generous: 200 ms, or
    // 500 ms where the parser must build 100,000+ strings in a Set (duplicate detection). A
    // backtracking parser would take seconds to hours; linearity itself is checked by `work`.
    const cases: Array<[string, (n: number) => string, (s: string) => unknown, (result: unknown) => void, number?]> = [
      [
        'a valid protocol list',
        (n) => Array.from({ length: Math.ceil(n / 8) }, (_, i) => `p${i}`).join(', '),
        parseTokenList,
        (r) => expect(r).to.be.an('array').that.is.not.empty,
        500,
      ],
      ['whitespace then a bad character (protocols)', (n) => `a${' '.repeat(n)}@`, parseTokenList, (r) => expect(r).to.equal(undefined)],
      [
        'a long list ending in an empty element',
        (n) => `${Array.from({ length: Math.ceil(n / 7) }, (_, i) => `p${i}`).join(',')},`,
        parseTokenList,
        (r) => expect(r).to.equal(undefined),
        500,
      ],
      [
        'a valid extension list',
        (n) => Array(Math.ceil(n / 44)).fill('permessage-deflate; client_max_window_bits=15').join(', '),
        parseExtensionOffers,
        (r) => expect(r).to.be.an('array').that.is.not.empty,
      ],
      [
        'whitespace runs around ";" and "="',
        (n) => `foo${' ; a = b'.repeat(Math.ceil(n / 16))}${' '.repeat(n / 2)}!`,
        parseExtensionOffers,
        (r) => expect(r).to.equal(undefined),
      ],
      [
        'an unterminated quoted string full of escapes',
        (n) => `foo; a="${'\\a'.repeat(n / 2)}`,
        parseExtensionOffers,
        (r) => expect(r).to.equal(undefined),
      ],
      [
        'a terminated quoted string full of escapes',
        (n) => `foo; a="${'\\a'.repeat(n / 2)}"`,
        parseExtensionOffers,
        (r) => expect((r as ExtensionOffer[])[0]!.params.get('a')![0]).to.have.length(MB / 2),
      ],
      [
        'many parameters, then a dangling ";"',
        (n) => `foo${'; a=1'.repeat(Math.ceil(n / 5))};`,
        parseExtensionOffers,
        (r) => expect(r).to.equal(undefined),
      ],
      [
        'a long Connection list without upgrade',
        (n) => 'keep-alive, '.repeat(Math.ceil(n / 12)),
        connectionHasUpgrade,
        (r) => expect(r).to.equal(false),
      ],
      [
        'Connection whitespace runs',
        (n) => `x${' '.repeat(n / 2)},${' '.repeat(n / 2)}upgrade`,
        connectionHasUpgrade,
        (r) => expect(r).to.equal(true),
      ],
    ];

    for (const [label, make, run, check] of cases) {
      it(`${label}: doubling the input doubles the work; 1 MB reads each character a bounded number of times`, () => {
        // Growth first, on small inputs, so that a super-linear regression fails fast instead of
        // running for minutes on the megabyte.
        const small = make(16 * 1024);
        const double = make(32 * 1024);
        const ratio = (work(run, double) / work(run, small)) * (small.length / double.length);
        // Normalized so that exactly linear growth is 1 (a quadratic scanner gives 2).
        expect(ratio, `${label}: work(2n) / work(n), normalized`).to.be.within(0.9, 1.2);

        const input = make(MB);
        expect(input.length).to.be.within(MB * 0.9, MB * 1.2);
        const reads = work(run, input);
        expect(reads, `${label}: characters read`).to.be.at.most(3 * input.length);
        // Linearity is proved by counting reads, not by timing (speed is measured in bench/, never
        // asserted by a timed test): the result of the 1 MB input is only checked for correctness.
        check(run(input));
      });
    }

    /** Elements `0 … count-1` as `proto-i` (protocols) or `xi; a=i` (extension offers). */
    const protocolList = (count: number, sep = ', '): string =>
      Array.from({ length: count }, (_, i) => `proto-${i}`).join(sep);
    const offerList = (count: number): string => Array.from({ length: count }, (_, i) => `x${i}; a=${i}`).join(', ');

    /** Fails fast (on 1,000 vs 2,000 elements) when work grows faster than the input. */
    function expectLinear(run: (s: string) => unknown, make: (count: number) => string): void {
      const a = make(1000);
      const b = make(2000);
      expect((work(run, b) / work(run, a)) * (a.length / b.length)).to.be.within(0.9, 1.2);
    }

    it('parses a 100,000-element protocol list and a 100,000-offer extension list', () => {
      expectLinear(parseTokenList, protocolList);
      expectLinear(parseExtensionOffers, offerList);
      const protocols = Array.from({ length: 100_000 }, (_, i) => `proto-${i}`);
      const protocolHeader = protocolList(100_000);
      const offerHeader = offerList(100_000);
      const parsedProtocols = parseTokenList(protocolHeader);
      const offers = parseExtensionOffers(offerHeader);
      expect(parsedProtocols).to.deep.equal(protocols);
      expect(offers).to.have.length(100_000);
      expect(offers![99_999]!.name).to.equal('x99999');
      expect(offers![99_999]!.params.get('a')).to.deep.equal(['99999']);
    });

    it('rejects a 100,000-element protocol list with one duplicate at the end, in linear work', () => {
      const withDuplicate = (count: number): string => `${protocolList(count, ',')},proto-0`;
      expectLinear(parseTokenList, withDuplicate);
      expect(parseTokenList(withDuplicate(100_000))).to.equal(undefined);
    });
  });

  describe('client: request', () => {
    it('generates random 16-byte keys', () => {
      const a = generateKey();
      const b = generateKey();
      expect(Buffer.from(a, 'base64')).to.have.length(16);
      expect(a).to.not.equal(b);
    });

    it('builds the handshake headers', () => {
      expect(
        buildClientRequestHeaders({
          key: SAMPLE_KEY,
          protocols: ['chat', 'superchat'],
          extensions: 'permessage-deflate; client_max_window_bits',
          origin: 'http://example.com',
          headers: { 'X-Custom': '1' },
        }),
      ).to.deep.equal({
        'X-Custom': '1',
        Upgrade: 'websocket',
        Connection: 'Upgrade',
        'Sec-WebSocket-Key': SAMPLE_KEY,
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Protocol': 'chat,superchat',
        'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits',
        Origin: 'http://example.com',
      });
    });

    it('omits optional headers and keeps handshake headers over user headers in any case', () => {
      const headers = buildClientRequestHeaders({
        key: SAMPLE_KEY,
        protocols: [],
        headers: { connection: 'keep-alive', 'SEC-WEBSOCKET-KEY': 'x', Authorization: 'Bearer t', origin: 'http://user' },
      });
      expect(headers).to.deep.equal({
        Authorization: 'Bearer t',
        origin: 'http://user',
        Upgrade: 'websocket',
        Connection: 'Upgrade',
        'Sec-WebSocket-Key': SAMPLE_KEY,
        'Sec-WebSocket-Version': '13',
      });
    });

    it('supports protocol version 8 like ws, and nothing else', () => {
      const headers = buildClientRequestHeaders({ key: SAMPLE_KEY, protocols: [], origin: 'http://o', protocolVersion: 8 });
      expect(headers['Sec-WebSocket-Version']).to.equal('8');
      expect(headers['Sec-WebSocket-Origin']).to.equal('http://o');
      expect(headers.Origin).to.equal(undefined);
      expect(() => buildClientRequestHeaders({ key: SAMPLE_KEY, protocols: [], protocolVersion: 12 })).to.throw(
        RangeError,
        'Unsupported protocol version: 12 (supported versions: 8, 13)',
      );
    });

    it('validates subprotocols like ws', () => {
      expect(validateProtocols(undefined)).to.deep.equal([]);
      expect(validateProtocols([])).to.deep.equal([]);
      expect(validateProtocols('chat')).to.deep.equal(['chat']);
      expect(validateProtocols(['chat', 'Chat'])).to.deep.equal(['chat', 'Chat']);
      for (const bad of [[''], ['a b'], ['a,b'], ['chat', 'chat'], ['é'], [1 as unknown as string], 'a;b']) {
        expect(() => validateProtocols(bad), JSON.stringify(bad)).to.throw(
          SyntaxError,
          'An invalid or duplicated subprotocol was specified',
        );
      }
    });
  });

  describe('client: verifyServerResponse (RFC 6455 4.1)', () => {
    const expected = { key: SAMPLE_KEY, protocols: ['chat', 'superchat'], extensionsOffered: ['permessage-deflate'] };

    function response(headers: Record<string, string | string[] | undefined> = {}, statusCode = 101) {
      const all: IncomingHttpHeaders = {
        upgrade: 'websocket',
        connection: 'Upgrade',
        'sec-websocket-accept': SAMPLE_ACCEPT,
        'sec-websocket-protocol': 'chat',
      };
      for (const [name, value] of Object.entries(headers)) {
        if (value === undefined) delete all[name];
        else all[name] = value;
      }
      return { statusCode, headers: all };
    }

    it('accepts a valid response and reports the protocol and extensions', () => {
      const result = verifyServerResponse(
        response({ 'sec-websocket-protocol': 'superchat', 'sec-websocket-extensions': 'permessage-deflate; server_no_context_takeover' }),
        expected,
      );
      if (!result.ok) throw result.error;
      expect(result.protocol).to.equal('superchat');
      expect(plain(result.extensions)).to.deep.equal([
        { name: 'permessage-deflate', params: [['server_no_context_takeover', [true]]] },
      ]);
    });

    it('reports "" as the protocol when none was requested nor sent', () => {
      const result = verifyServerResponse(response({ 'sec-websocket-protocol': undefined }), { ...expected, protocols: [] });
      if (!result.ok) throw result.error;
      expect(result.protocol).to.equal('');
      expect(result.extensions).to.deep.equal([]);
    });

    it('accepts case variations of Upgrade and Connection, and whitespace around the accept value', () => {
      const result = verifyServerResponse(
        response({ upgrade: 'WebSocket', connection: 'keep-alive, upgrade', 'sec-websocket-accept': ` ${SAMPLE_ACCEPT} ` }),
        expected,
      );
      if (!result.ok) throw result.error;
    });

    const failures: Array<[string, ReturnType<typeof response>, string, typeof expected?]> = [
      ['a 200', response({}, 200), 'unexpectedResponse'],
      ['a 401', response({}, 401), 'unexpectedResponse'],
      ['a 426', response({}, 426), 'unexpectedResponse'],
      ['no Upgrade', response({ upgrade: undefined }), 'invalidResponseUpgrade'],
      ['Upgrade: h2c', response({ upgrade: 'h2c' }), 'invalidResponseUpgrade'],
      ['no Connection', response({ connection: undefined }), 'invalidConnectionHeader'],
      ['Connection: close', response({ connection: 'close' }), 'invalidConnectionHeader'],
      ['no Sec-WebSocket-Accept', response({ 'sec-websocket-accept': undefined }), 'invalidAccept'],
      ['a wrong Sec-WebSocket-Accept', response({ 'sec-websocket-accept': acceptKeyFor(generateKey()) }), 'invalidAccept'],
      ['the key echoed as accept', response({ 'sec-websocket-accept': SAMPLE_KEY }), 'invalidAccept'],
      ['two accept values', response({ 'sec-websocket-accept': [SAMPLE_ACCEPT, SAMPLE_ACCEPT] }), 'invalidAccept'],
      ['a subprotocol not requested', response({ 'sec-websocket-protocol': 'other' }), 'unexpectedSubprotocol'],
      ['a protocol list instead of one', response({ 'sec-websocket-protocol': 'chat, superchat' }), 'unexpectedSubprotocol'],
      ['a subprotocol when none was requested', response(), 'unexpectedSubprotocol', { ...expected, protocols: [] }],
      ['no subprotocol when one was requested', response({ 'sec-websocket-protocol': undefined }), 'missingSubprotocol'],
      ['an extension not offered', response({ 'sec-websocket-extensions': 'x-foo' }), 'unexpectedExtension'],
      ['an offered and a non-offered extension', response({ 'sec-websocket-extensions': 'permessage-deflate, x-foo' }), 'unexpectedExtension'],
      ['an extension twice', response({ 'sec-websocket-extensions': 'permessage-deflate, permessage-deflate' }), 'unexpectedExtension'],
      ['extensions when none were offered', response({ 'sec-websocket-extensions': 'permessage-deflate' }), 'unexpectedExtension', { ...expected, extensionsOffered: [] }],
      ['a malformed Sec-WebSocket-Extensions', response({ 'sec-websocket-extensions': 'permessage-deflate;' }), 'invalidExtensionsHeader'],
    ];
    for (const [label, res, id, exp] of failures) {
      it(`fails on ${label} with ${id}`, () => {
        const result = verifyServerResponse(res, exp ?? expected);
        expect(result.ok ? 'ok' : result.error.id).to.equal(id);
        if (!result.ok) expect(result.error).to.be.instanceOf(WebSocketProtocolError);
      });
    }

    it('puts the status code in the unexpectedResponse message, like ws', () => {
      const result = verifyServerResponse(response({}, 404), expected);
      expect(result.ok).to.equal(false);
      if (!result.ok) {
        expect(result.error.message).to.equal('Unexpected server response: 404');
        expect(result.error.code).to.equal('WS_ERR_UNEXPECTED_RESPONSE');
      }
    });

    it('round-trips with the server side', () => {
      const key = generateKey();
      const lines = buildAcceptHeaders(key, 'superchat', 'permessage-deflate; client_max_window_bits=15');
      const headers: IncomingHttpHeaders = {};
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      const result = verifyServerResponse({ statusCode: 101, headers }, { ...expected, key });
      if (!result.ok) throw result.error;
      expect(result.protocol).to.equal('superchat');
      expect(result.extensions[0]!.params.get('client_max_window_bits')).to.deep.equal(['15']);
    });
  });

  describe('client: parseWebSocketUrl', () => {
    for (const [input, secure, host, port, path, href] of [
      ['ws://example.com', false, 'example.com', 80, '/', 'ws://example.com/'],
      ['wss://example.com', true, 'example.com', 443, '/', 'wss://example.com/'],
      ['ws://example.com:8080/chat?x=1&y', false, 'example.com', 8080, '/chat?x=1&y', 'ws://example.com:8080/chat?x=1&y'],
      ['wss://example.com:443/', true, 'example.com', 443, '/', 'wss://example.com/'],
      ['http://example.com/a', false, 'example.com', 80, '/a', 'ws://example.com/a'],
      ['https://example.com:8443/a', true, 'example.com', 8443, '/a', 'wss://example.com:8443/a'],
      ['ws://[::1]:9000/', false, '::1', 9000, '/', 'ws://[::1]:9000/'],
      ['WS://EXAMPLE.com', false, 'example.com', 80, '/', 'ws://example.com/'],
      ['ws://user:pw@example.com/', false, 'example.com', 80, '/', 'ws://user:pw@example.com/'],
      ['ws://example.com/#', false, 'example.com', 80, '/', 'ws://example.com/#'],
    ] as const) {
      it(`parses ${input}`, () => {
        const parsed = parseWebSocketUrl(input);
        expect(parsed.secure).to.equal(secure);
        expect(parsed.host).to.equal(host);
        expect(parsed.port).to.equal(port);
        expect(parsed.path).to.equal(path);
        expect(parsed.url.href).to.equal(href);
      });
    }

    it('accepts a URL object without mutating it', () => {
      const url = new URL('https://example.com/x');
      const parsed = parseWebSocketUrl(url);
      expect(parsed.url.protocol).to.equal('wss:');
      expect(url.protocol).to.equal('https:');
    });

    for (const [input, message] of [
      ['not a url', 'Invalid URL: not a url'],
      ['ws://', 'Invalid URL: ws://'],
      ['ftp://example.com', 'The URL\'s protocol must be one of "ws:", "wss:", "http:", or "https:"'],
      ['file:///tmp/x', 'The URL\'s protocol must be one of "ws:", "wss:", "http:", or "https:"'],
      ['ws+unix:/tmp/sock', 'The URL\'s protocol must be one of "ws:", "wss:", "http:", or "https:"'],
      ['ws://example.com/#frag', 'The URL contains a fragment identifier'],
      ['https://example.com/#frag', 'The URL contains a fragment identifier'],
    ] as const) {
      it(`rejects ${input}`, () => {
        expect(() => parseWebSocketUrl(input)).to.throw(SyntaxError, message);
      });
    }
  });
});
