/**
 * Option normalization (CONVENTIONS 11): each dialect's options become wirestate's canonical
 * options — Default → Convert → Check, scaled and inverted per the spec — and every problem is
 * reported at once under the name the user wrote. Expected defaults come from spec/settings.yaml
 * and, where the dialect is a real library installed here (ws, WebSocket-Node), from that library.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { WebSocketServer } from 'ws';
import { normalizeOptions, OptionsError } from '../../runtime/options.js';
import { dialectBindings, settingsTable, type DialectBinding, type SettingInfo } from '../../generated/options.generated.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- parsed YAML and untyped library internals */
type Doc = any;

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const spec: Doc = parse(readFileSync(join(repoRoot, 'spec/settings.yaml'), 'utf8'));
const specSetting = (name: string): Doc => spec.settings.find((s: Doc) => s.name === name);

type Dialect = 'ws' | 'websocket' | 'ipworks';
type AnyDialect = Dialect | 'canonical';
type Role = 'server' | 'client';
const DIALECTS: Dialect[] = ['ws', 'websocket', 'ipworks'];
const ROLES: Role[] = ['server', 'client'];
const settings = Object.values(settingsTable) as SettingInfo[];

const normalize = (dialect: AnyDialect, role: Role, input: unknown) => normalizeOptions(dialect, role, input) as Record<string, unknown>;

/** Runs normalizeOptions expecting it to throw; returns the OptionsError. */
function rejects(dialect: AnyDialect, role: Role, input: unknown): OptionsError {
  try {
    normalizeOptions(dialect, role, input);
  } catch (error) {
    expect(error).to.be.instanceOf(OptionsError);
    return error as OptionsError;
  }
  throw new Error(`${dialect} ${role} accepted ${JSON.stringify(input)}`);
}

function binding(dialect: Dialect, role: Role, setting: string): DialectBinding | undefined {
  const table = dialectBindings[dialect][role] ?? {};
  return Object.values(table).find((b) => b.setting === setting);
}

/** A canonical value as the dialect writes it: scaled down and inverted back. */
function toDialect(value: number | boolean, b: Pick<DialectBinding, 'scale' | 'invert'>): number | boolean {
  if (typeof value === 'number') return value / b.scale;
  return b.invert ? !value : value;
}

/** The canonical value a dialect's default means, from the spec (not from the generated code). */
function expectedDefault(s: Doc, dialect: AnyDialect): unknown {
  const b = dialect === 'canonical' ? undefined : s.dialects[dialect];
  if (b?.default === undefined) return s.default ?? undefined;
  let value = b.default;
  if (typeof value === 'number' && b.scale) value *= b.scale;
  if (typeof value === 'boolean' && b.invert) value = !value;
  return value;
}

describe('options: defaults', () => {
  it('ws server with {} gives maxPayload 104857600 and closeTimeout 30000 (ws\'s own default)', () => {
    const options = normalize('ws', 'server', {});
    expect(options.maxPayload).to.equal(104857600);
    expect(options.closeTimeout).to.equal(30000);
    // The canonical closeTimeout differs, so the 30000 really is the ws dialect's default.
    expect(settingsTable.closeTimeout.default).to.not.equal(30000);
  });

  it('websocket server with {} gives maxPayload 1048576 (maxReceivedMessageSize), closeTimeout 5000 and keepalive true', () => {
    const options = normalize('websocket', 'server', {});
    expect(options.maxPayload).to.equal(1048576);
    expect(options.closeTimeout).to.equal(5000);
    expect(options.keepalive).to.equal(true);
    expect(settingsTable.maxPayload.default).to.not.equal(1048576);
  });

  it('canonical with {} gives every setting of the role, each with its default from settingsTable', () => {
    for (const role of ROLES) {
      const options = normalize('canonical', role, {});
      const inRole = settings.filter((s) => s.roles.includes(role));
      expect(Object.keys(options).sort(), role).to.deep.equal(inRole.map((s) => s.name).sort());
      for (const s of inRole) expect(options[s.name], `${role} ${s.name}`).to.deep.equal(s.default ?? undefined);
    }
  });

  it('every dialect with {} gives each setting the dialect\'s default (converted to canonical), and the canonical default for the rest', () => {
    let checked = 0;
    for (const dialect of DIALECTS) {
      for (const role of ROLES) {
        if (!dialectBindings[dialect][role]) continue;
        const options = normalize(dialect, role, {});
        for (const s of spec.settings.filter((x: Doc) => x.roles.includes(role))) {
          const exposed = binding(dialect, role, s.name) !== undefined;
          expect(options[s.name], `${dialect} ${role} ${s.name}`).to.deep.equal(expectedDefault(s, exposed ? dialect : 'canonical'));
          checked++;
        }
      }
    }
    expect(checked).to.be.greaterThan(100);
  });

  it('defaults are fresh copies: changing one result does not change the next', () => {
    const first = normalize('ws', 'server', {});
    (first.allowedClients as string[]).push('10.0.0.1');
    expect(normalize('ws', 'server', {}).allowedClients).to.deep.equal([]);
  });

  it('undefined and null options, and options set to undefined, take the defaults', () => {
    const base = normalize('ws', 'server', {});
    expect(normalize('ws', 'server', undefined)).to.deep.equal(base);
    expect(normalize('ws', 'server', null)).to.deep.equal(base);
    expect(normalize('ws', 'server', { maxPayload: undefined })).to.deep.equal(base);
  });

  describe('agree with the real libraries', () => {
    const primitive = (v: unknown) => typeof v === 'number' || typeof v === 'boolean' || typeof v === 'string';

    it("ws: every option ws's WebSocketServer gives a default agrees with the ws dialect", () => {
      const wsDefaults = (new WebSocketServer({ noServer: true }) as unknown as { options: Record<string, unknown> }).options;
      const ours = normalize('ws', 'server', {});
      let compared = 0;
      for (const [name, b] of Object.entries(dialectBindings.ws.server!)) {
        const theirs = wsDefaults[name];
        if (b.extension || !primitive(theirs)) continue;
        if (name === 'noServer') continue; // set by this very call
        expect(toDialect(ours[b.setting] as number | boolean, b), `ws ${name}`).to.equal(theirs);
        compared++;
      }
      expect(compared).to.be.at.least(5);
    });

    it("websocket: every option WebSocket-Node's WebSocketServer gives a default agrees with the websocket dialect", () => {
      const require = createRequire(import.meta.url);
      const Server = require('websocket').server as new () => { mount(config: object): void; config: Record<string, unknown> };
      const server = new Server();
      // mount() fills in its defaults and only then complains that no httpServer was given.
      expect(() => server.mount({})).to.throw(/httpServer/);
      const ours = normalize('websocket', 'server', {});
      let compared = 0;
      for (const [name, b] of Object.entries(dialectBindings.websocket.server!)) {
        const theirs = server.config[name];
        if (b.extension || !primitive(theirs)) continue;
        expect(toDialect(ours[b.setting] as number | boolean, b), `websocket ${name}`).to.equal(theirs);
        compared++;
      }
      expect(compared).to.be.at.least(10);
    });
  });
});

describe('options: conversions', () => {
  it('numeric strings become integers and "true"/"false" booleans', () => {
    const options = normalize('ws', 'server', { maxPayload: '1024', port: '8080', clientTracking: 'false', skipUTF8Validation: 'true' });
    expect(options.maxPayload).to.equal(1024);
    expect(options.port).to.equal(8080);
    expect(options.clientTracking).to.equal(false);
    expect(options.skipUTF8Validation).to.equal(true);
  });

  it('ipworks DefaultTimeout (seconds) is scaled ×1000 into sendTimeout (ms), from a number or a string', () => {
    const b = dialectBindings.ipworks.server!.DefaultTimeout!;
    expect(b.setting).to.equal('sendTimeout');
    expect(b.scale).to.equal(1000);
    expect(normalize('ipworks', 'server', { DefaultTimeout: 3 }).sendTimeout).to.equal(3000);
    expect(normalize('ipworks', 'server', { DefaultTimeout: '7' }).sendTimeout).to.equal(7000);
    expect(normalize('ipworks', 'server', { Timeout: 2 }).connectionSendTimeout).to.equal(2000);
  });

  it('websocket ignoreXForwardedFor maps onto trustXForwardedFor with the opposite sense', () => {
    expect(normalize('websocket', 'server', { ignoreXForwardedFor: true }).trustXForwardedFor).to.equal(false);
    expect(normalize('websocket', 'server', { ignoreXForwardedFor: false }).trustXForwardedFor).to.equal(true);
    expect(normalize('websocket', 'server', { ignoreXForwardedFor: 'true' }).trustXForwardedFor).to.equal(false);
  });

  it('a perMessageDeflate object is filled with its properties\' defaults; true and false stay as given', () => {
    const properties = specSetting('perMessageDeflate').properties as Record<string, { default: unknown }>;
    // Properties without a default (the zlib option objects) stay absent.
    const filled = Object.fromEntries(Object.entries(properties).filter(([, p]) => p.default !== undefined).map(([k, p]) => [k, p.default]));
    expect(Object.keys(filled)).to.include('threshold');
    expect(normalize('ws', 'server', { perMessageDeflate: { threshold: 5 } }).perMessageDeflate).to.deep.equal({ ...filled, threshold: 5 });
    expect(normalize('ws', 'server', { perMessageDeflate: {} }).perMessageDeflate).to.deep.equal(filled);
    expect(normalize('ws', 'server', { perMessageDeflate: true }).perMessageDeflate).to.equal(true);
    expect(normalize('ws', 'server', { perMessageDeflate: false }).perMessageDeflate).to.equal(false);
  });

  it('the caller\'s object is not changed', () => {
    const input = { perMessageDeflate: { threshold: 5 }, maxPayload: '10' };
    normalize('ws', 'server', input);
    expect(input).to.deep.equal({ perMessageDeflate: { threshold: 5 }, maxPayload: '10' });
  });

  it('a number is never silently changed: fractions, booleans and non-decimal strings for an integer are errors', () => {
    for (const bad of [2.5, true, '1e6', '12.7', '12abc', '']) {
      const error = rejects('ws', 'server', { maxPayload: bad });
      expect(error.problems.map((p) => p.option), JSON.stringify(bad)).to.deep.equal(['maxPayload']);
      expect(error.problems[0]!.message, JSON.stringify(bad)).to.match(/integer/);
    }
    const error = rejects('ipworks', 'server', { DefaultTimeout: 1.5 });
    expect(error.problems.map((p) => p.option)).to.deep.equal(['DefaultTimeout']);
    expect(() => normalize('ws', 'server', { perMessageDeflate: { threshold: 2.5 } })).to.throw(OptionsError);
  });
});

describe('options: errors, named as the dialect names them', () => {
  it('out-of-range values (port -1, maxPayload -5) are errors naming the option and the minimum', () => {
    const error = rejects('ws', 'server', { port: -1, maxPayload: -5 });
    expect(error.problems.map((p) => p.option).sort()).to.deep.equal(['maxPayload', 'port']);
    for (const p of error.problems) expect(p.message).to.match(/greater or equal to 0.*found -(1|5)/);
  });

  it('the ipworks dialect reports its own name (LocalPort), not the canonical one, and its own unit', () => {
    const error = rejects('ipworks', 'server', { LocalPort: -1, DefaultTimeout: -1 });
    expect(error.problems.map((p) => p.option).sort()).to.deep.equal(['DefaultTimeout', 'LocalPort']);
    expect(error.dialect).to.equal('ipworks');
    expect(error.message).to.match(/^Invalid ipworks server options/);
  });

  it('a wrong type (verifyClient: 3) is an error', () => {
    const error = rejects('ws', 'server', { verifyClient: 3 });
    expect(error.problems).to.have.lengthOf(1);
    expect(error.problems[0]!.option).to.equal('verifyClient');
    expect(error.problems[0]!.message).to.match(/function.*found 3/i);
    expect(normalize('ws', 'server', { verifyClient: () => true }).verifyClient).to.be.a('function');
  });

  it('an unknown option gets a did-you-mean', () => {
    const error = rejects('ws', 'server', { maxPayloadd: 10 });
    expect(error.problems).to.deep.equal([{ option: 'maxPayloadd', message: 'unknown option; did you mean "maxPayload"?' }]);
  });

  it('an unknown option far from every name is just unknown', () => {
    const error = rejects('ws', 'server', { zzzzzzzzzzzz: 1 });
    expect(error.problems).to.deep.equal([{ option: 'zzzzzzzzzzzz', message: 'unknown option' }]);
  });

  it("another dialect's name is recognised: maxReceivedMessageSize in ws is websocket's name for maxPayload", () => {
    const error = rejects('ws', 'server', { maxReceivedMessageSize: 10 });
    expect(error.problems).to.have.lengthOf(1);
    expect(error.problems[0]!.option).to.equal('maxReceivedMessageSize');
    expect(error.problems[0]!.message).to.match(/websocket name .*"maxPayload"/);
    // A name of another dialect that this API has no counterpart for says so.
    expect(settingsTable.useNativeKeepalive.dialects.ws).to.equal(undefined);
    const missing = rejects('ws', 'server', { useNativeKeepalive: true });
    expect(missing.problems).to.deep.equal([{ option: 'useNativeKeepalive', message: 'unknown option; "useNativeKeepalive" is a websocket option this API does not have' }]);
  });

  it('an unsupported setting (ipworks CodePage) is an error naming its reason', () => {
    const reason = settingsTable.codePage.unsupportedReason!;
    expect(settingsTable.codePage.supported).to.equal(false);
    expect(reason).to.be.a('string').and.not.empty;
    const error = rejects('ipworks', 'server', { CodePage: 65001 });
    expect(error.problems).to.have.lengthOf(1);
    expect(error.problems[0]!.option).to.equal('CodePage');
    expect(error.problems[0]!.message).to.contain(reason);
  });

  it('every unsupported setting, in every dialect that names it, is refused with its reason', () => {
    let checked = 0;
    for (const s of settings.filter((x) => !x.supported)) {
      for (const [dialect, b] of Object.entries(s.dialects) as [Dialect, DialectBinding][]) {
        for (const role of s.roles) {
          const value = s.type === 'integer' ? (s.minimum ?? 0) : s.type === 'boolean' ? true : s.type === 'stringList' ? ['x'] : 'x';
          const error = rejects(dialect, role, { [b.name]: value });
          expect(error.problems.map((p) => p.option), `${dialect} ${b.name}`).to.deep.equal([b.name]);
          expect(error.problems[0]!.message).to.contain(s.unsupportedReason!);
          checked++;
        }
      }
    }
    expect(checked).to.be.greaterThan(0);
  });

  it('ALL errors come in one OptionsError, each listed in its message', () => {
    const bad = { port: -1, maxPayload: -5, verifyClient: 3, maxPayloadd: 1, maxReceivedMessageSize: 1, clientTracking: 'sometimes' };
    const error = rejects('ws', 'server', { ...bad, backlog: 10, path: '/ok' });
    expect(error.problems).to.have.lengthOf(Object.keys(bad).length);
    expect(error.problems.map((p) => p.option).sort()).to.deep.equal(Object.keys(bad).sort());
    expect(error.code).to.equal('WS_ERR_INVALID_OPTIONS');
    expect(error.dialect).to.equal('ws');
    expect(error.name).to.equal('OptionsError');
    expect(error).to.be.instanceOf(TypeError);
    expect(error.message).to.match(new RegExp(`^Invalid ws server options \\(${Object.keys(bad).length} problems\\):`));
    for (const p of error.problems) expect(error.message).to.contain(`  ${p.option}: ${p.message}`);
  });

  it('non-object input (a number, an array, a string, a function) is a clear OptionsError', () => {
    for (const [input, shown] of [
      [42, '42'],
      [[1, 2], 'an array'],
      ['port=80', '"port=80"'],
      [() => ({}), 'a function'],
    ] as [unknown, string][]) {
      const error = rejects('ws', 'server', input);
      expect(error.problems).to.deep.equal([{ option: '(options)', message: `must be an object, found ${shown}` }]);
      expect(error.code).to.equal('WS_ERR_INVALID_OPTIONS');
    }
  });
});

describe('options: every integer limit, in every dialect (generated from settingsTable)', () => {
  interface Probe {
    dialect: AnyDialect;
    role: Role;
    setting: SettingInfo;
    name: string;
    scale: number;
  }
  const probes: Probe[] = [];
  for (const s of settings.filter((x) => x.type === 'integer' && (x.minimum !== null || x.maximum !== null))) {
    for (const role of s.roles) {
      probes.push({ dialect: 'canonical', role, setting: s, name: s.name, scale: 1 });
      for (const dialect of DIALECTS) {
        const b = dialectBindings[dialect][role] ? binding(dialect, role, s.name) : undefined;
        if (b) probes.push({ dialect, role, setting: s, name: b.name, scale: b.scale });
      }
    }
  }

  it('covers every integer setting with a minimum, in the canonical API and every dialect exposing it', () => {
    const withMinimum = settings.filter((s) => s.type === 'integer' && s.minimum !== null);
    expect(withMinimum.length).to.be.greaterThan(20);
    for (const s of withMinimum) expect(probes.some((p) => p.setting === s && p.dialect === 'canonical'), s.name).to.equal(true);
    expect(probes.some((p) => p.scale !== 1), 'a scaled (ipworks seconds) setting is among them').to.equal(true);
  });

  for (const p of probes) {
    const { setting: s } = p;
    if (s.minimum !== null) {
      // The smallest value the dialect can write that is not below the canonical minimum.
      const lowest = Math.ceil(s.minimum / p.scale);
      it(`${p.dialect} ${p.role} ${p.name}: ${lowest - 1} is rejected, ${lowest} accepted (minimum ${s.minimum}${p.scale !== 1 ? ` / ${p.scale}` : ''})`, () => {
        const below = rejects(p.dialect, p.role, { [p.name]: lowest - 1 });
        expect(below.problems.map((x) => x.option)).to.deep.equal([p.name]);
        if (!s.supported) {
          expect(below.problems[0]!.message).to.contain(s.unsupportedReason!);
          expect(rejects(p.dialect, p.role, { [p.name]: lowest }).problems[0]!.message).to.contain(s.unsupportedReason!);
          return;
        }
        expect(below.problems[0]!.message).to.match(/greater or equal/);
        expect(normalize(p.dialect, p.role, { [p.name]: lowest })[s.name]).to.equal(lowest * p.scale);
        // As a string too: conversion happens before the range check.
        expect(rejects(p.dialect, p.role, { [p.name]: String(lowest - 1) }).problems.map((x) => x.option)).to.deep.equal([p.name]);
      });
    }
    if (s.maximum !== null) {
      const highest = Math.floor(s.maximum / p.scale);
      it(`${p.dialect} ${p.role} ${p.name}: ${highest + 1} is rejected, ${highest} accepted (maximum ${s.maximum}${p.scale !== 1 ? ` / ${p.scale}` : ''})`, () => {
        const above = rejects(p.dialect, p.role, { [p.name]: highest + 1 });
        expect(above.problems.map((x) => x.option)).to.deep.equal([p.name]);
        if (!s.supported) return;
        expect(above.problems[0]!.message).to.match(/less or equal/);
        expect(normalize(p.dialect, p.role, { [p.name]: highest })[s.name]).to.equal(highest * p.scale);
      });
    }
  }
});
