/**
 * `wirestate viz`: every machine's diagram in every format, and a real connection — a wirestate
 * client against a wirestate server over loopback, its lifecycle recorded with recordLifecycle —
 * drawn over the connection diagram as SVG, HTML and text.
 */
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket, WebSocketServer, recordLifecycle as exported } from '../../runtime/index.js';
import { recordLifecycle } from '../../runtime/viz/record.js';
import { defaultDiagramsDir, listMachines } from '../../runtime/viz/diagrams.js';
import { parseDot } from '../../runtime/viz/dot.js';
import { buildConnectionView, triggerOf, formatOffset } from '../../runtime/viz/trace-view.js';
import { parseTrace, type TraceLine } from '../../runtime/inspect/trace.js';

const here = dirname(fileURLToPath(import.meta.url));
const cli = join(here, '..', '..', 'runtime', 'cli', 'main.js');
const diagrams = defaultDiagramsDir();

function wirestate(args: string[]): { status: number; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/** The state names a machine's Mermaid diagram declares (`state "open" as open`). */
function statesOf(machine: string): string[] {
  const mermaid = readFileSync(join(diagrams, `${machine}.mmd`), 'utf8');
  return [...mermaid.matchAll(/^\s*state "([^"]+)" as /gm)].map((m) => m[1]!);
}

/** Asserts that the needles occur in the text in this order, and returns their positions. */
function inOrder(text: string, needles: string[]): number[] {
  const positions: number[] = [];
  let from = 0;
  for (const needle of needles) {
    const at = text.indexOf(needle, from);
    expect(at, `"${needle}" after position ${from}`).to.be.greaterThan(-1);
    positions.push(at);
    from = at + needle.length;
  }
  return positions;
}

/** The text of the SVG's timeline group (the part after the diagram). */
function timelineOf(svg: string): string {
  const start = svg.indexOf('<g class="timeline"');
  expect(start).to.be.greaterThan(-1);
  return svg.slice(start).replace(/<[^>]+>/g, ' ').replace(/&quot;/g, '"').replace(/\s+/g, ' ');
}

describe('wirestate viz', function () {
  this.timeout(60_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'wirestate-viz-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe('machine diagrams', () => {
    it('finds the connection and server machines in docs/diagrams', () => {
      expect(listMachines(diagrams)).to.include.members(['connection', 'server']);
    });

    for (const machine of ['connection', 'server']) {
      it(`prints the ${machine} machine as Mermaid, DOT and SVG`, () => {
        const states = statesOf(machine);
        expect(states.length).to.be.greaterThan(3);

        const mermaid = wirestate(['viz', '--machine', machine, '--format', 'mermaid']);
        expect(mermaid.status, mermaid.stderr).to.equal(0);
        expect(mermaid.stdout).to.equal(readFileSync(join(diagrams, `${machine}.mmd`), 'utf8'));
        expect(mermaid.stdout).to.contain('stateDiagram-v2');

        const dot = wirestate(['viz', '--machine', machine, '--format', 'dot']);
        expect(dot.status, dot.stderr).to.equal(0);
        expect(dot.stdout).to.match(new RegExp(`^digraph ${machine} \\{$`, 'm'));
        expect(parseDot(dot.stdout).nodes.size).to.be.greaterThan(3);

        const svg = wirestate(['viz', '--machine', machine, '--format', 'svg']);
        expect(svg.status, svg.stderr).to.equal(0);
        expect(svg.stdout).to.match(/<svg[\s\S]*<\/svg>\s*$/);
        for (const state of states) expect(svg.stdout, state).to.contain(`>${state}`);
      });
    }

    it('prints the connection machine as Mermaid by default, and chooses the format from --out', () => {
      const plain = wirestate(['viz']);
      expect(plain.status).to.equal(0);
      expect(plain.stdout).to.equal(readFileSync(join(diagrams, 'connection.mmd'), 'utf8'));
      for (const [file, marker] of [
        ['server.svg', '<svg'],
        ['server.dot', 'digraph server {'],
        ['server.mmd', 'stateDiagram-v2'],
      ] as const) {
        const out = join(dir, file);
        const result = wirestate(['viz', '--machine', 'server', '--out', out]);
        expect(result.status, result.stderr).to.equal(0);
        expect(result.stdout).to.equal('');
        expect(readFileSync(out, 'utf8')).to.contain(marker);
      }
    });

    it('renders the SVG with dot -Tsvg when docs/diagrams has none, and says so', () => {
      const only = join(dir, 'no-svg');
      spawnSync('mkdir', ['-p', only]);
      for (const file of ['connection.dot', 'connection.mmd']) copyFileSync(join(diagrams, file), join(only, file));
      const result = wirestate(['viz', '--format', 'svg', '--diagrams', only]);
      expect(result.status, result.stderr).to.equal(0);
      expect(result.stderr).to.contain('dot -Tsvg');
      expect(result.stdout).to.contain('<svg');
      expect(result.stdout).to.contain('>closedByUs<');
      expect(existsSync(join(only, 'connection.svg')), 'docs/ is not written to').to.equal(false);
    });
  });

  describe('a recorded connection', () => {
    let traceFile: string;
    let lines: TraceLine[];

    before(async () => {
      const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
      await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
      wss.on('connection', (ws: WebSocket) => ws.on('message', (data: Buffer) => ws.send(data)));
      traceFile = join(dir, 'connection.jsonl');
      const sink = createWriteStream(traceFile);
      const ws = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`);
      recordLifecycle(ws, sink);
      const closed = new Promise<[number, string]>((resolve) => ws.once('close', (code: number, reason: Buffer) => resolve([code, String(reason)])));
      ws.once('open', () => ws.send('hello'));
      ws.once('message', () => ws.close(4001, 'done here'));
      expect(await closed).to.deep.equal([4001, 'done here']);
      await new Promise<void>((resolve) => sink.end(() => resolve()));
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      lines = parseTrace(readFileSync(traceFile, 'utf8'), traceFile);
    });

    it('recordLifecycle writes every step and a close line with the code', () => {
      expect(exported, "wirestate's main entry point exports it").to.equal(recordLifecycle);
      expect(lines.map((l) => `${l.from} -> ${l.to} (${l.event})`).slice(0, 3)).to.deep.equal([
        'connecting -> open (HANDSHAKE_SUCCEEDED)',
        'open -> closing.closedByUs (CLOSE_REQUESTED)',
        'closing.closedByUs -> closing.acknowledged (CLOSE_RECEIVED)',
      ]);
      expect(lines.at(-2)!.to).to.equal('closed');
      const close = lines.at(-1)!;
      expect(close).to.include({ event: 'close', code: 4001, reason: 'done here', from: 'closed', to: 'closed' });
      expect(close.stats).to.include({ messagesIn: 1, messagesOut: 1 });
      expect(lines[0]).to.include({ connection: 1, remoteAddress: '127.0.0.1', protocol: '' });
      expect(lines[0]!.createdAt).to.be.a('number');
      expect(new Set(lines.map((l) => l.connection))).to.deep.equal(new Set([1]));
    });

    it('every step lands on a transition of the diagram', () => {
      const graph = parseDot(readFileSync(join(diagrams, 'connection.dot'), 'utf8'));
      const view = buildConnectionView(lines, graph);
      expect(view.warnings).to.deep.equal([]);
      expect(view.steps.map((s) => s.to)).to.deep.equal(['connecting', 'open', 'closing.closedByUs', 'closing.acknowledged', 'closed']);
      for (const step of view.steps.slice(1)) expect(step.edges, `step ${step.n} ${step.trigger}`).to.not.be.empty;
      expect(view.steps[1]!.entered).to.include('open_reading_flowing');
      expect(view.finalNode).to.equal('closed');
      expect(view.close).to.include({ code: 4001, reason: 'done here' });
    });

    it('draws it as SVG: the states numbered in visit order over the diagram, the sequence, the close code', () => {
      const out = join(dir, 'connection.svg');
      const result = wirestate(['viz', '--trace', traceFile, '--out', out]);
      expect(result.status, result.stderr).to.equal(0);
      const svg = readFileSync(out, 'utf8');
      expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).to.equal(true);
      // The diagram: visited states carry their step numbers, in the order the ids appear.
      for (const [id, n] of [['connecting', 1], ['open_reading_flowing', 2], ['closing_closedByUs', 3], ['closing_acknowledged', 4], ['closed', 5]] as const) {
        const at = svg.indexOf(`id="c1-state-${id}"`);
        expect(at, id).to.be.greaterThan(-1);
        const node = svg.slice(at, svg.indexOf('</g>', at));
        expect(node, id).to.match(new RegExp(`>${n}</text>`));
      }
      expect(svg).to.match(/id="c1-state-closing_closedByPeer"[\s\S]*?stroke="#b8bcc2"/);
      // The sequence below it, in order, ending with the close code.
      const timeline = timelineOf(svg);
      inOrder(timeline, ['start', '→ connecting', 'HANDSHAKE_SUCCEEDED', '→ open', 'CLOSE_REQUESTED', '→ closing.closedByUs', 'CLOSE_RECEIVED', '→ closing.acknowledged', '→ closed', 'close', 'code 4001 (private)', '"done here"']);
      expect(svg).to.contain('Connection 1: closed, code 4001 (private) &quot;done here&quot;');
    });

    it('draws it as a self-contained HTML page', () => {
      const out = join(dir, 'page.html');
      const result = wirestate(['viz', '--trace', traceFile, '--out', out]);
      expect(result.status, result.stderr).to.equal(0);
      const html = readFileSync(out, 'utf8');
      expect(html.startsWith('<!doctype html>')).to.equal(true);
      expect(html).not.to.match(/<(script|link|img)[^>]+(src|href)=/);
      expect(html).to.contain('<svg class="machine"');
      const table = html.slice(html.indexOf('<table class="timeline">'));
      inOrder(table, ['→ connecting', 'HANDSHAKE_SUCCEEDED', '→ open', '→ closing.closedByUs', '→ closing.acknowledged', '→ closed', 'code 4001 (private)', 'done here']);
      expect(html).to.match(/data-targets="[^"]*c1-state-closing_closedByUs[^"]*"/);
    });

    it('writes trace.html beside the trace by default, and prints the sequence', () => {
      const copy = join(dir, 'default.jsonl');
      copyFileSync(traceFile, copy);
      const result = wirestate(['viz', '--trace', copy]);
      expect(result.status, result.stderr).to.equal(0);
      expect(readFileSync(join(dir, 'default.html'), 'utf8')).to.contain('<!doctype html>');
      inOrder(result.stdout, ['connection 1 from 127.0.0.1: closed, code 4001 (private) "done here"', '(start)', '→ connecting', '→ open', '→ closing.closedByUs', '→ closing.acknowledged', '→ closed', 'close', 'code 4001']);
      expect(result.stderr).to.contain('wrote ');
    });

    it('prints text or SVG to standard output with --out -', () => {
      const text = wirestate(['viz', '--trace', traceFile, '--format', 'text']);
      expect(text.status).to.equal(0);
      expect(text.stdout.split('\n')[0]).to.equal('connection 1 from 127.0.0.1: closed, code 4001 (private) "done here"');
      const svg = wirestate(['viz', '--trace', traceFile, '--format', 'svg', '--out', '-']);
      expect(svg.status).to.equal(0);
      expect(svg.stdout).to.match(/^<svg[\s\S]*<\/svg>\n$/);
    });

    it('--serve replays the trace in the inspector page until stopped', async () => {
      const child = spawn(process.execPath, [cli, 'viz', '--trace', traceFile, '--serve', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
      const exited = new Promise<string>((resolve) => child.once('exit', (code, signal) => resolve(`${code ?? signal}`)));
      try {
        const url = await new Promise<string>((resolve, reject) => {
          let out = '';
          child.stdout.on('data', (chunk: Buffer) => {
            out += chunk;
            const match = out.match(/http:\/\/127\.0\.0\.1:\d+\/\S*/);
            if (match) resolve(match[0]);
          });
          child.once('exit', (code) => reject(new Error(`exited ${code} before printing a URL: ${out}${stderr}`)));
        });
        const page = await new Promise<{ status: number; body: string }>((resolve, reject) => {
          http.get(url, { agent: false }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => (body += chunk));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          }).on('error', reject);
        });
        expect(page.status).to.equal(200);
        expect(page.body).to.match(/<html/i);
      } finally {
        child.kill('SIGTERM');
        expect(await exited, stderr).to.equal('0');
      }
    });
  });

  describe('traces of several connections, and unusual ones', () => {
    it('recordLifecycle numbers the connections recorded to one sink', () => {
      const written: string[] = [];
      const sink = { write: (chunk: string) => written.push(chunk) };
      const a = new WebSocket('ws://127.0.0.1:9/');
      const b = new WebSocket('ws://127.0.0.1:9/');
      a.on('error', () => {});
      b.on('error', () => {});
      const stopA = recordLifecycle(a, sink);
      recordLifecycle(b, sink);
      expect(() => recordLifecycle(a, sink, { connection: 0 })).to.throw(RangeError);
      stopA();
      a.terminate();
      b.terminate();
      const recorded = written.map((line) => JSON.parse(line) as TraceLine);
      expect(recorded.length).to.be.greaterThan(0);
      expect(recorded.map((line) => line.connection)).to.deep.equal(recorded.map(() => 2));
      expect(recorded[0]).to.include({ from: 'connecting', to: 'terminated', event: 'TERMINATE_REQUESTED' });
    });

    it('draws every connection of a trace in HTML and picks one with --connection', () => {
      const file = join(dir, 'two.jsonl');
      const t = 1_700_000_000_000;
      const rows: TraceLine[] = [
        { connection: 7, event: 'HANDSHAKE_SUCCEEDED', from: 'connecting', to: 'open', state: { open: { reading: 'flowing', keepalive: 'waiting', idle: 'disabled' } }, at: t + 5, createdAt: t },
        { connection: 8, event: 'HANDSHAKE_FAILED', from: 'connecting', to: 'terminated', state: 'terminated', at: t + 6 },
        { connection: 7, event: 'xstate.after.keepaliveInterval.connection.open.keepalive.waiting', from: 'open', to: 'open', state: { open: { reading: 'flowing', keepalive: 'awaitingPong', idle: 'disabled' } }, at: t + 20_005 },
        { connection: 7, event: 'xstate.after.keepaliveGracePeriod.connection.open.keepalive.awaitingPong', from: 'open', to: 'terminated', state: 'terminated', at: t + 30_005 },
        { connection: 7, event: 'close', from: 'terminated', to: 'terminated', state: 'terminated', at: t + 30_006, code: 1006, reason: '' },
        { connection: 8, event: 'close', from: 'terminated', to: 'terminated', state: 'terminated', at: t + 7, code: 1006, reason: '' },
      ];
      writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
      const html = wirestate(['viz', '--trace', file, '--out', join(dir, 'two.html')]);
      expect(html.status, html.stderr).to.equal(0);
      const page = readFileSync(join(dir, 'two.html'), 'utf8');
      inOrder(page, ['id="c7"', 'after keepaliveInterval', 'after keepaliveGracePeriod', 'code 1006 (abnormalClosure)', 'id="c8"', 'HANDSHAKE_FAILED']);
      expect(page).to.contain('+30.006 s');
      const graph = parseDot(readFileSync(join(diagrams, 'connection.dot'), 'utf8'));
      expect(buildConnectionView(rows.filter((r) => r.connection === 7), graph).warnings).to.deep.equal([]);

      const one = wirestate(['viz', '--trace', file, '--connection', '8', '--format', 'text']);
      expect(one.status).to.equal(0);
      expect(one.stdout).to.contain('connection 8: terminated, code 1006 (abnormalClosure)');
      expect(one.stdout).not.to.contain('connection 7');

      const svg = wirestate(['viz', '--trace', file, '--out', join(dir, 'two.svg')]);
      expect(svg.status).to.equal(0);
      expect(svg.stderr).to.contain('the trace has 2 connections (7, 8); drawing connection 7');
    });

    it('warns about a step the diagram has no transition for', () => {
      const graph = parseDot(readFileSync(join(diagrams, 'connection.dot'), 'utf8'));
      const view = buildConnectionView(
        [{ connection: 1, event: 'TELEPORT', from: 'connecting', to: 'closed', state: 'closed', at: 1 }],
        graph,
      );
      expect(view.warnings).to.deep.equal(['step 2: no transition on TELEPORT from connecting to closed in the diagram']);
    });

    it('names delayed events and offsets for people', () => {
      expect(triggerOf('xstate.after.closeTimeout.connection.closing')).to.equal('after closeTimeout');
      expect(triggerOf('CLOSE_RECEIVED')).to.equal('CLOSE_RECEIVED');
      expect([0, 850, 1204, 123_400].map(formatOffset)).to.deep.equal(['+0 ms', '+850 ms', '+1.204 s', '+2 min 03.4 s']);
    });
  });

  describe('exit codes and usage', () => {
    it('--help shows the usage and exits 0; wirestate --help lists viz', () => {
      const help = wirestate(['viz', '--help']);
      expect(help.status).to.equal(0);
      expect(help.stdout).to.contain('usage: wirestate viz [--machine NAME]');
      expect(help.stdout).to.contain('--trace FILE');
      expect(wirestate(['--help']).stdout).to.match(/^ {2}viz\s+lifecycle diagrams/m);
    });

    it('exits 2 on bad usage', () => {
      for (const args of [
        ['--bogus'],
        ['--machine', 'toaster'],
        ['--format', 'png'],
        ['--trace', 'x.jsonl', '--format', 'mermaid'],
        ['--trace', 'x.jsonl', '--machine', 'server'],
        ['--connection', '1'],
        ['--serve'],
        ['--trace', 'x.jsonl', '--connection', 'first'],
        ['--trace', 'x.jsonl', '--port', '80'],
        ['--trace', 'x.jsonl', '--serve', '--port', '99999'],
        ['extra'],
      ]) {
        const result = wirestate(['viz', ...args]);
        expect(result.status, args.join(' ')).to.equal(2);
        expect(result.stderr, args.join(' ')).to.contain('usage: wirestate viz');
      }
    });

    it('exits 1 when the trace is missing, malformed, or lacks the connection asked for', () => {
      const missing = wirestate(['viz', '--trace', join(dir, 'nope.jsonl')]);
      expect(missing.status).to.equal(1);
      expect(missing.stderr).to.contain('no such file');
      const bad = join(dir, 'bad.jsonl');
      writeFileSync(bad, '{"connection":1,"event":"X","from":"a","to":"b","state":"b","at":1}\n{"connection":"one"}\n');
      const malformed = wirestate(['viz', '--trace', bad]);
      expect(malformed.status).to.equal(1);
      expect(malformed.stderr).to.contain('bad.jsonl:2: "connection" must be a positive integer');
      const empty = join(dir, 'empty.jsonl');
      writeFileSync(empty, '\n');
      expect(wirestate(['viz', '--trace', empty]).status).to.equal(1);
      const good = join(dir, 'good.jsonl');
      writeFileSync(good, '{"connection":1,"event":"HANDSHAKE_FAILED","from":"connecting","to":"terminated","state":"terminated","at":1}\n');
      const absent = wirestate(['viz', '--trace', good, '--connection', '3', '--format', 'text']);
      expect(absent.status).to.equal(1);
      expect(absent.stderr).to.contain('connection 3 is not in the trace');
      expect(readdirSync(dir)).not.to.include('bad.html');
    });
  });
});
