/**
 * `wirestate bindings`: the option bindings it generates are checked with each language's own
 * tools — Python imports them and round-trips a settings object, TypeScript type-checks them (and
 * rejects a wrong type), Go compiles and round-trips JSON with the standard library only — and the
 * doc comments keep each setting's default, range and unit.
 */
import { expect } from 'chai';
import { execFile, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { alignGoStructs, describeProperty, facts, generateBindings, joinFiles, prepareSchema, type JsonSchema } from '../../runtime/bindings/index.js';

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..', '..');
const cli = join(here, '..', '..', 'runtime', 'cli', 'main.js');
const tsc = join(root, 'node_modules', '.bin', 'tsc');

/** What the comments of maxPayload must say (spec/settings.yaml: 100 MiB, 0..2^53-1 bytes). */
const MAX_PAYLOAD_FACTS = '(default 104857600; 0..9007199254740991 bytes)';

/** Runs the CLI; resolves with its exit code and output, never rejects. */
function wirestate(args: string[]): { status: number; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/** The comment lines just above (Go, TS, Rust…) or just below (Python docstring) a field. */
function commentNear(text: string, field: RegExp, lines = 6): string {
  const all = text.split('\n');
  const at = all.findIndex((line) => field.test(line));
  expect(at, `no line matching ${field}`).to.be.greaterThan(-1);
  return all.slice(Math.max(0, at - lines), at + lines).join('\n').replace(/\s*\n\s*(#|\/\/\/?|\*)?\s*/g, ' ');
}

describe('wirestate bindings', function () {
  this.timeout(180_000);
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'wirestate-bindings-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe('the schema given to quicktype', () => {
    it('completes each description with default, range and unit', () => {
      const schema: JsonSchema = { type: 'integer', description: 'Largest message.', default: 104857600, minimum: 0, maximum: 9007199254740991, 'x-unit': 'bytes' };
      expect(facts(schema)).to.equal('default 104857600; 0..9007199254740991 bytes');
      expect(describeProperty('maxPayload', schema)).to.equal(`Largest message. ${MAX_PAYLOAD_FACTS}`);
      expect(facts({ type: 'integer', minimum: 1, 'x-unit': 'ms' })).to.equal('>= 1 ms');
      expect(facts({ enum: ['auto', 'pem'], default: 'auto' })).to.equal('default "auto"; one of "auto", "pem"');
      expect(facts({ type: 'boolean' })).to.equal('');
    });

    it("names the canonical setting where a dialect spells it differently, and says when wirestate cannot honour one", () => {
      const text = describeProperty('ca', { type: 'string', description: 'PEM certificates', 'x-wirestate-setting': 'tlsCa', 'x-unsupported': 'no way in Node' });
      expect(text).to.equal('PEM certificates. The wirestate setting tlsCa. Accepted but not honoured by wirestate: no way in Node');
      expect(describeProperty('tlsCa', { type: 'string', description: 'PEM.', 'x-wirestate-setting': 'tlsCa' })).to.equal('PEM.');
    });

    it('adds no `required`, types integer enums, and drops $id and x- keywords', () => {
      const schema = JSON.parse(readFileSync(join(root, 'generated', 'schemas', 'ws-client.schema.json'), 'utf8')) as JsonSchema;
      const prepared = prepareSchema(schema, 'ws', 'client');
      const text = JSON.stringify(prepared);
      expect(text).not.to.match(/"required"|"x-[a-z-]+"|"\$id"/);
      expect(prepared.properties!.protocolVersion!.type).to.equal('integer');
      expect(Object.keys(prepared.properties!)).to.deep.equal(Object.keys(schema.properties!).sort());
    });
  });

  describe('Python', () => {
    it('imports, and a settings object round-trips through from_dict / to_dict', async () => {
      const bindings = await generateBindings({ lang: 'python', dialect: 'ws', role: 'server' });
      expect(bindings.files).to.have.length(1);
      expect(bindings.typeName).to.equal('WsServerOptions');
      const module = join(dir, 'python');
      mkdirSync(module, { recursive: true });
      writeFileSync(join(module, 'ws_server_options.py'), bindings.files[0]!.text);
      const settings = {
        maxPayload: 1048576,
        path: '/ws',
        clientTracking: false,
        allowedClients: ['127.0.0.1', '*.example.org'],
        perMessageDeflate: { threshold: 2048, serverNoContextTakeover: true, serverMaxWindowBits: 10 },
      };
      const script = `
import json, sys
sys.path.insert(0, ${JSON.stringify(module)})
from ws_server_options import WsServerOptions
from dataclasses import is_dataclass, fields
settings = json.loads(sys.argv[1])
options = WsServerOptions.from_dict(settings)
assert is_dataclass(options)
assert options.max_payload == 1048576, options.max_payload
assert options.per_message_deflate.threshold == 2048
assert options.to_dict() == settings, options.to_dict()
# every field is optional: nothing given, nothing written back
assert WsServerOptions().to_dict() == {}
assert all(f.default is None for f in fields(WsServerOptions))
# and the types are checked
try:
    WsServerOptions.from_dict({"maxPayload": "a lot"})
    raise SystemExit("a string was accepted for maxPayload")
except AssertionError:
    pass
print(json.dumps(options.to_dict(), sort_keys=True))
`;
      const { stdout } = await run('python3', ['-c', script, JSON.stringify(settings)]);
      expect(JSON.parse(stdout)).to.deep.equal(settings);
    });

    it('keeps the default and range of a setting in its docstring', async () => {
      const text = joinFiles(await generateBindings({ lang: 'python', dialect: 'canonical', role: 'server' }));
      expect(commentNear(text, /^\s+max_payload: Optional\[int\] = None$/)).to.contain(MAX_PAYLOAD_FACTS);
    });
  });

  describe('TypeScript', () => {
    it('type-checks with tsc --strict, and a wrongly typed option does not', async () => {
      const bindings = await generateBindings({ lang: 'typescript', dialect: 'websocket', role: 'server' });
      const file = bindings.files[0]!;
      const project = join(dir, 'typescript');
      mkdirSync(project, { recursive: true });
      writeFileSync(join(project, file.name), file.text);
      expect(file.text).to.match(/export interface WebsocketServerOptions \{/);
      expect(file.text).to.match(/^\s+maxReceivedMessageSize\?: number;$/m);
      const module = `./${file.name.replace(/\.ts$/, '')}`;
      writeFileSync(
        join(project, 'use.ts'),
        `import { Convert, type WebsocketServerOptions } from '${module}';\n` +
          `const options: WebsocketServerOptions = { maxReceivedMessageSize: 65536, keepalive: true };\n` +
          `const parsed: WebsocketServerOptions = Convert.toWebsocketServerOptions(Convert.websocketServerOptionsToJson(options));\n` +
          `export const size: number | undefined = parsed.maxReceivedMessageSize;\n`,
      );
      writeFileSync(join(project, 'wrong.ts'), `import type { WebsocketServerOptions } from '${module}';\nexport const options: WebsocketServerOptions = { maxReceivedMessageSize: 'big' };\n`);
      const flags = ['--noEmit', '--strict', '--target', 'ES2022', '--module', 'ESNext', '--moduleResolution', 'bundler'];
      // One tsc run for both (it takes seconds): the only errors must be wrong.ts's.
      const result = spawnSync(tsc, [...flags, join(project, 'use.ts'), join(project, 'wrong.ts')], { cwd: project, encoding: 'utf8' });
      const errors = result.stdout.split('\n').filter((line) => /error TS\d+/.test(line));
      expect(errors.length, result.stdout + result.stderr).to.be.greaterThan(0);
      for (const error of errors) expect(error).to.match(/^(.*[\\/])?wrong\.ts\(2,/);
      expect(result.stdout).to.contain("Type 'string' is not assignable to type 'number'");
      expect(commentNear(file.text, /^\s+maxReceivedMessageSize\?: number;$/)).to.contain('(default 1048576;');
    });
  });

  describe('Go', () => {
    it('compiles with the standard library only and round-trips JSON', async () => {
      const go = spawnSync('go', ['version'], { encoding: 'utf8' });
      expect(go.error, 'Go is not installed: `apt-get install golang-go` (make system-deps installs it)').to.equal(undefined);
      const bindings = await generateBindings({ lang: 'go', dialect: 'ws', role: 'client', packageName: 'main' });
      const text = bindings.files[0]!.text;
      const imports = [...text.matchAll(/^import "([^"]+)"$/gm)].map((m) => m[1]);
      expect(imports.length).to.be.greaterThan(0);
      for (const path of imports) expect(path, 'a standard library package').not.to.contain('.');
      expect(text).to.match(/^\tMaxPayload \*int64 `json:"maxPayload,omitempty"`$/m);
      expect(commentNear(text, /^\tMaxPayload /)).to.contain(MAX_PAYLOAD_FACTS);

      const module = join(dir, 'go');
      mkdirSync(module, { recursive: true });
      writeFileSync(join(module, 'go.mod'), 'module example.com/wirestateoptions\n\ngo 1.19\n');
      writeFileSync(join(module, 'options.go'), text);
      writeFileSync(
        join(module, 'main.go'),
        `package main

import (
	"fmt"
	"os"
)

func main() {
	options, err := UnmarshalWsClientOptions([]byte(os.Args[1]))
	if err != nil {
		panic(err)
	}
	if options.MaxPayload == nil || *options.MaxPayload != 4096 {
		panic("maxPayload was not read")
	}
	out, err := options.Marshal()
	if err != nil {
		panic(err)
	}
	fmt.Print(string(out))
}
`,
      );
      const env = {
        ...process.env,
        GOFLAGS: '-mod=mod',
        GOCACHE: join(dir, 'gocache'),
        GOPATH: join(dir, 'gopath'),
        GOPROXY: 'off',
        GOTOOLCHAIN: 'local',
        CGO_ENABLED: '0',
        GO111MODULE: 'on',
      };
      await run('go', ['vet', '.'], { cwd: module, env });
      const settings = { handshakeTimeout: 10000, maxPayload: 4096, perMessageDeflate: { clientMaxWindowBits: 12 }, protocolVersion: 13 };
      await run('go', ['build', '-o', join(module, 'roundtrip'), '.'], { cwd: module, env });
      const { stdout } = await run(join(module, 'roundtrip'), [JSON.stringify(settings)]);
      expect(JSON.parse(stdout)).to.deep.equal(settings);
      const fmt = spawnSync('gofmt', ['-l', module], { encoding: 'utf8' });
      if (!fmt.error) expect(fmt.stdout.trim(), 'gofmt -l').to.equal('');
    });

    it('lines struct fields up as gofmt does', () => {
      const input = 'type A struct {\n\t// doc\n\tX      *int   `json:"x"`  \n\tLonger *bool `json:"longer"`\n}\n';
      expect(alignGoStructs(input)).to.equal('type A struct {\n\t// doc\n\tX      *int  `json:"x"`\n\tLonger *bool `json:"longer"`\n}\n');
    });
  });

  describe('Rust, C#, Java', () => {
    const cases = [
      { lang: 'rust', field: /pub max_payload: Option<i64>/ },
      { lang: 'csharp', field: /public long\? MaxPayload \{ get; set; \}/ },
      { lang: 'java', field: /private Long maxPayload;/ },
    ] as const;
    for (const { lang, field } of cases) {
      it(`${lang}: non-empty, with the maxPayload field and its default in a comment`, async () => {
        const bindings = await generateBindings({ lang, dialect: 'ws', role: 'server' });
        const text = joinFiles(bindings);
        expect(text.length).to.be.greaterThan(1000);
        expect(text).to.match(field);
        expect(text.replace(/\s*\n\s*(\/\/\/?|\*)\s*/g, ' ')).to.contain(MAX_PAYLOAD_FACTS);
        if (lang === 'java') expect(bindings.files.map((f) => f.name)).to.include('WsServerOptions.java');
      });
    }
  });

  describe('the command', () => {
    it('writes a file with --out, and prints to standard output without', () => {
      const out = join(dir, 'cli', 'options.py');
      mkdirSync(dirname(out), { recursive: true });
      const written = wirestate(['bindings', '--lang', 'python', '--dialect', 'ws', '--role', 'client', '--out', out]);
      expect(written.status, written.stderr).to.equal(0);
      expect(readFileSync(out, 'utf8')).to.contain('class WsClientOptions:');
      const printed = wirestate(['bindings', '--lang', 'go']);
      expect(printed.status, printed.stderr).to.equal(0);
      expect(printed.stdout).to.contain('type ServerOptions struct {');
    });

    it('writes Java as one file per class into the --out directory', () => {
      const out = join(dir, 'cli', 'java');
      const result = wirestate(['bindings', '--lang', 'java', '--dialect', 'ipworks', '--out', out, '--package', 'org.example.ws']);
      expect(result.status, result.stderr).to.equal(0);
      const files = readdirSync(out);
      expect(files).to.include('IpworksServerOptions.java');
      expect(readFileSync(join(out, 'IpworksServerOptions.java'), 'utf8')).to.contain('package org.example.ws;');
    });

    it('shows its usage with --help and exits 2 on bad usage', () => {
      const help = wirestate(['bindings', '--help']);
      expect(help.status).to.equal(0);
      expect(help.stdout).to.contain('usage: wirestate bindings --lang LANG');
      for (const args of [[], ['--lang', 'cobol'], ['--lang', 'go', '--dialect', 'socketio'], ['--lang', 'go', '--role', 'peer'], ['--lang', 'go', '--bogus'], ['--lang', 'python', '--package', 'x']]) {
        const result = wirestate(['bindings', ...args]);
        expect(result.status, args.join(' ')).to.equal(2);
        expect(result.stderr).to.contain('wirestate bindings:');
      }
    });

    it('says which role a dialect offers when asked for one it has no schema for', () => {
      // WebSocket-Node and IPWorks are servers only (spec/settings.yaml); a schemas folder with one
      // file keeps this test independent of which dialects the spec gives both roles.
      const schemas = join(dir, 'schemas');
      mkdirSync(schemas, { recursive: true });
      writeFileSync(join(schemas, 'websocket-server.schema.json'), readFileSync(join(root, 'generated', 'schemas', 'websocket-server.schema.json')));
      const result = wirestate(['bindings', '--lang', 'go', '--dialect', 'websocket', '--role', 'client', '--schemas', schemas]);
      expect(result.status).to.equal(2);
      expect(result.stderr).to.contain('the websocket dialect has no client options');
      expect(result.stderr).to.contain('--role server');
      const missing = wirestate(['bindings', '--lang', 'go', '--dialect', 'ws', '--schemas', schemas]);
      expect(missing.status).to.equal(2);
      expect(missing.stderr).to.contain('ws-server.schema.json is missing');
    });

    it('is listed by wirestate --help', () => {
      expect(wirestate(['--help']).stdout).to.match(/^ {2}bindings\s+typed option bindings/m);
    });
  });
});
