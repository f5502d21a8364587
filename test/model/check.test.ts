/**
 * `wirestate check`: the model checker on the real spec (every property holds, SPIN agrees), and
 * each property shown to fail on a deliberately broken copy of the spec, with the counterexample
 * it should have; SPIN's verdict on each broken copy agrees with the explorer's. Also: the machine
 * built from the YAML (for --spec) is the generated machine, and the CLI's exit codes.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { SpecError } from '../../codegen/load.js';
import { check } from '../../runtime/cli/check.js';
import type { Verdict } from '../../runtime/model/check.js';
import { loadSpecUnderCheck, repoRoot, type SpecUnderCheck } from '../../runtime/model/inputs.js';
import { ProductModel } from '../../runtime/model/product.js';
import { spinAvailable, type SpinReport } from '../../runtime/model/promela.js';
import { loadProperties } from '../../runtime/model/properties.js';

const here = dirname(fileURLToPath(import.meta.url));
const cli = join(here, '..', '..', 'runtime', 'cli', 'main.js');
const specDir = join(repoRoot, 'spec');

function wirestate(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status: status ?? -1, stdout, stderr }));
  });
}

// ---------------------------------------------------------------- broken copies of the spec

type MachineYaml = {
  states: Record<string, { on?: Record<string, unknown>; ignore?: string[]; after?: unknown; states?: Record<string, { on?: Record<string, unknown>; ignore?: string[] }> }>;
};

const tempDirs: string[] = [];

/** Copies spec/ to a temporary folder and changes its connection machine. */
function brokenSpec(mutate: (machine: MachineYaml) => void): string {
  const dir = mkdtempSync(join(tmpdir(), 'wirestate-broken-spec-'));
  tempDirs.push(dir);
  cpSync(specDir, dir, { recursive: true });
  const file = join(dir, 'machines', 'connection.yaml');
  const machine = parse(readFileSync(file, 'utf8')) as MachineYaml;
  mutate(machine);
  writeFileSync(file, stringify(machine));
  return dir;
}

/** Moves an event of a state from its parent's `ignore` list to its siblings', so the state can handle it. */
function handleInChild(parent: NonNullable<MachineYaml['states'][string]>, child: string, event: string, handler: unknown): void {
  parent.ignore = (parent.ignore ?? []).filter((e) => e !== event);
  for (const [name, state] of Object.entries(parent.states!)) {
    if (name === child) state.on = { ...(state.on ?? {}), [event]: handler };
    else state.ignore = [...(state.ignore ?? []), event];
  }
}

interface Broken {
  property: string;
  why: string;
  mutate: (machine: MachineYaml) => void;
  /** SPIN checks these on the same broken copy (the broken property, or others when SPIN cannot state it). */
  spin: string[];
  expect: (verdict: Verdict) => void;
}

const last = <T>(list: readonly T[] | undefined): T => list![list!.length - 1]!;

const broken: Broken[] = [
  {
    property: 'closingHandshakeTerminates',
    // Moving CLOSE_RECEIVED of closedByUs to `ignore` altogether is rejected by the generator (acknowledged
    // would be unreachable); the server's closedByUs ignoring the peer's close is the same bug for one role.
    why: "the server's closedByUs ignores the peer's close frame (only the client's takes it)",
    mutate: (m) => {
      m.states.closing!.states!.closedByUs!.on!.CLOSE_RECEIVED = [{ guard: 'isClient', target: 'acknowledged' }];
    },
    spin: ['closingHandshakeTerminates'],
    expect: (v) => {
      expect(v.trace!.map((s) => `${s.actor} ${s.event}`)).to.include('server CLOSE_REQUESTED (no code)');
      const steps = v.continuation!.map((s) => `${s.actor} ${s.event}`);
      expect(steps.slice(-2)).to.deep.equal(['client read close (no code) → CLOSE_RECEIVED', 'server read close (no code) → CLOSE_RECEIVED']);
      expect(last(v.continuation).state).to.match(/^client closing\.closedByPeer .*; server closing\.closedByUs .*c→s \[\]; s→c \[\]$/);
      expect(v.ending).to.match(/^stuck/);
    },
  },
  {
    property: 'nothingSentAfterClose',
    why: "the server's closedByUs pings when the peer's close arrives",
    mutate: (m) => {
      const onClose = m.states.closing!.states!.closedByUs!.on!.CLOSE_RECEIVED as { actions?: string[] }[];
      onClose[0]!.actions = ['sendPing', ...(onClose[0]!.actions ?? [])];
    },
    spin: ['nothingSentAfterClose'],
    expect: (v) => {
      const step = last(v.trace);
      expect(step.actor).to.equal('server');
      expect(step.event).to.equal('read close (no code) → CLOSE_RECEIVED');
      expect(step.frames).to.deep.equal(['ping']);
      expect(step.state).to.match(/server closing\.acknowledged \(close sent, FIN sent\)/);
      expect(v.trace!.map((s) => s.event)).to.include('CLOSE_REQUESTED (no code)');
    },
  },
  {
    property: 'onlySendableCloseCodes',
    // A literal unsendable code (sendCloseWith 1006) is rejected by the generator, and a frame or
    // message error with an unsendable closeCode too; what slips through is sendClose on an event
    // whose error is a handshake error: its closeCode 1006 is for local reporting only (7.4.1).
    why: 'a failed opening handshake answers with sendClose, whose code is the handshake error\'s 1006',
    mutate: (m) => {
      (m.states.connecting!.on!.HANDSHAKE_FAILED as { actions: string[] }).actions = ['sendClose', 'destroySocket'];
    },
    spin: ['onlySendableCloseCodes'],
    expect: (v) => {
      expect(v.trace).to.have.length(1);
      const step = last(v.trace);
      expect(step.actor).to.equal('server');
      expect(step.event).to.match(/^HANDSHAKE_FAILED \w+ \(1006\)$/);
      expect(step.frames).to.deep.equal(['close:1006']);
      expect(v.summary).to.contain('1006');
    },
  },
  {
    property: 'noDeadlock',
    why: 'acknowledged waits for a TCP close it ignores, with no close timeout and no way to terminate',
    mutate: (m) => {
      const closing = m.states.closing!;
      delete closing.after;
      delete closing.on!.TERMINATE_REQUESTED;
      closing.ignore!.push('TERMINATE_REQUESTED');
      const acknowledged = closing.states!.acknowledged!;
      acknowledged.on = {};
      acknowledged.ignore!.push('SOCKET_ENDED', 'SOCKET_CLOSED');
      // The generator wants a path from every state to a final one: give it one that never happens.
      handleInChild(closing, 'acknowledged', 'HANDSHAKE_SUCCEEDED', '#connection.closed');
    },
    spin: ['noDeadlock'],
    expect: (v) => {
      const step = last(v.trace);
      expect(`${step.actor} ${step.event}`).to.equal('client read FIN → SOCKET_ENDED');
      expect(v.ending).to.match(/^stuck in: client closing\.acknowledged .*; server closing\.closedByPeer .*c→s \[\]; s→c \[\]$/);
    },
  },
  {
    property: 'everyStateReachable',
    why: 'closedByUs goes to closedByPeer on the peer\'s close; acknowledged is left reachable only on an event that never comes',
    mutate: (m) => {
      const closing = m.states.closing!;
      const closedByUs = closing.states!.closedByUs!;
      closedByUs.on!.CLOSE_RECEIVED = (closedByUs.on!.CLOSE_RECEIVED as object[]).map((t) => ({ ...t, target: 'closedByPeer' }));
      handleInChild(closing, 'closedByUs', 'HANDSHAKE_SUCCEEDED', 'acknowledged');
    },
    spin: ['everyStateReachable'],
    expect: (v) => {
      expect(v.unreachable).to.deep.equal([{ machine: 'connection', states: ['closing.acknowledged'] }]);
    },
  },
  {
    property: 'closedReachableFromEverywhere',
    why: 'connecting ignores the TCP close and the application, and only pauses and resumes: after a failed handshake the client loops there',
    mutate: (m) => {
      const connecting = m.states.connecting!;
      delete connecting.after;
      for (const event of ['SOCKET_CLOSED', 'SOCKET_ENDED', 'CLOSE_REQUESTED', 'TERMINATE_REQUESTED']) delete connecting.on![event];
      connecting.ignore = [...connecting.ignore!.filter((e) => e !== 'PAUSE_REQUESTED' && e !== 'RESUME_REQUESTED'), 'SOCKET_CLOSED', 'SOCKET_ENDED', 'CLOSE_REQUESTED', 'TERMINATE_REQUESTED'];
      connecting.on!.PAUSE_REQUESTED = { actions: ['pauseSocket'] };
      connecting.on!.RESUME_REQUESTED = { actions: ['resumeSocket'] };
      (connecting.on!.HANDSHAKE_SUCCEEDED as { actions: string[] }).actions.push('resumeSocket');
    },
    // AG EF is not LTL: SPIN cannot check this one; it agrees that the livelock is no deadlock.
    spin: ['noDeadlock'],
    expect: (v) => {
      expect(v.trace!.map((s) => `${s.actor} ${s.event}`)).to.deep.equal(['server HANDSHAKE_FAILED clientNotAllowed (1006)']);
      expect(last(v.trace).state).to.equal('client connecting; server terminated; c→s []; s→c [rst]');
      expect(v.ending).to.match(/none with both connections final/);
    },
  },
];

/** Every (configuration, trigger) → moves of one endpoint, whatever its peer does: the machine as the checker sees it. */
function endpointTable(model: ProductModel, e: 0 | 1): Record<string, unknown> {
  const table: Record<string, unknown> = {};
  const configs = [...model.initialConfigs[e]];
  for (let i = 0; i < configs.length; i++) {
    const cfg = configs[i]!;
    if (model.isFinalConfig(e, cfg)) continue;
    for (const { trigger } of model.triggersOf(e, cfg)) {
      table[`${cfg} | ${trigger.key}`] = model.moves(e, cfg, trigger).map((m) => {
        if (!configs.includes(m.next)) configs.push(m.next);
        return { next: m.next, ops: m.ops, choices: m.branch.choices, entered: m.branch.entered };
      });
    }
  }
  return table;
}

describe('wirestate check: model checking', function () {
  this.timeout(120_000);
  let spin: string | undefined;
  let generated: SpecUnderCheck;

  before(async () => {
    spin = await spinAvailable();
    generated = loadSpecUnderCheck();
  });
  after(() => {
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  });

  it('builds from the YAML the same machines as generated/, so --spec checks what make generate would emit', () => {
    const fromYaml = loadSpecUnderCheck({ specDir });
    for (const machine of generated.machines) {
      const built = fromYaml.machines.find((m) => m.id === machine.id)!;
      expect(JSON.stringify(built.machine.definition), machine.id).to.equal(JSON.stringify(machine.machine.definition));
      expect(built.states).to.deep.equal(machine.states.map(({ path, final, atomic }) => ({ path, final, atomic })));
      expect(built.readyStates).to.deep.equal(machine.readyStates);
      expect(Object.fromEntries(Object.entries(built.actions).map(([k, a]) => [k, a.wire]))).to.deep.equal(Object.fromEntries(Object.entries(machine.actions).map(([k, a]) => [k, a.wire])));
      expect(Object.fromEntries(Object.entries(built.guards).map(([k, g]) => [k, g.role]))).to.deep.equal(Object.fromEntries(Object.entries(machine.guards).map(([k, g]) => [k, g.role])));
    }
    // And they step alike: every configuration, every trigger, every guard answer, same moves.
    for (const timers of [true]) {
      const a = new ProductModel(generated, { timers });
      const b = new ProductModel(fromYaml, { timers });
      for (const e of [0, 1] as const) {
        const tableA = endpointTable(a, e);
        expect(Object.keys(tableA).length).to.be.greaterThan(100);
        expect(endpointTable(b, e)).to.deep.equal(tableA);
      }
    }
  });

  it('on the real spec every property holds, SPIN agrees, and `wirestate check --spin` exits 0', async () => {
    const { status, stdout, stderr } = await wirestate(['check', ...(spin ? ['--spin'] : []), '--json']);
    expect(stderr).to.equal('');
    const report = JSON.parse(stdout) as {
      verdicts: Verdict[];
      explorations: { what: string; states: number; transitions: number; truncated: boolean }[];
      assumptions: string[];
      spin: Pick<SpinReport, 'verdicts'>;
      disagreements: string[];
    };
    expect(report.verdicts.map((v) => [v.name, v.status])).to.deep.equal(generated.properties.properties.map((p) => [p.name, 'holds']));
    expect(report.verdicts.map((v) => v.name)).to.include.members([
      'closingHandshakeTerminates', 'nothingSentAfterClose', 'onlySendableCloseCodes', 'noDeadlock', 'everyStateReachable', 'closedReachableFromEverywhere',
    ]);
    for (const e of report.explorations) {
      expect(e.truncated, e.what).to.equal(false);
      expect(e.states, e.what).to.be.greaterThan(0);
    }
    expect(report.explorations.find((e) => e.what.includes('timers on'))!.states).to.be.greaterThan(10_000);
    expect(report.assumptions.join('\n')).to.match(/4 items each/).and.to.match(/one data message, one ping and one pong/);
    expect(report.disagreements).to.deep.equal([]);
    expect(status).to.equal(0);
    if (!spin) return; // `make test` installs spin (Debian package); without it only the explorer runs
    expect(report.spin.verdicts.map((v) => [v.name, v.status])).to.deep.equal([
      ['closingHandshakeTerminates', 'holds'],
      ['nothingSentAfterClose', 'holds'],
      ['onlySendableCloseCodes', 'holds'],
      ['noDeadlock', 'holds'],
      ['everyStateReachable', 'holds'],
      ['closedReachableFromEverywhere', 'not-checked'],
    ]);
  });

  describe('each property fails on a broken copy of the spec, with its counterexample, and SPIN agrees', () => {
    for (const b of broken) {
      it(`${b.property}: ${b.why}`, async function () {
        const spec = loadSpecUnderCheck({ specDir: brokenSpec(b.mutate) });
        const only = [...new Set([b.property, ...b.spin])];
        const outcome = await check(spec, { spin: spin !== undefined, maxStates: 2_000_000, only });
        const verdict = outcome.report.verdicts.find((v) => v.name === b.property)!;
        expect(verdict.status, verdict.summary).to.equal('violated');
        b.expect(verdict);
        expect(outcome.exitCode).to.equal(1);
        if (!spin) return;
        // SPIN on the same broken copy: its verdicts must be the explorer's.
        expect(outcome.disagreements).to.deep.equal([]);
        for (const name of b.spin) {
          const mine = outcome.report.verdicts.find((v) => v.name === name)!;
          const theirs = outcome.spin!.verdicts.find((v) => v.name === name)!;
          expect(theirs.status, `${name}: SPIN says ${theirs.summary}`).to.equal(mine.status);
        }
        if (b.spin.includes(b.property)) expect(outcome.spin!.verdicts.find((v) => v.name === b.property)!.status).to.equal('violated');
      });
    }
  });

  it('the CLI prints the counterexample and exits 1 on a violation, 3 when cut at --max-states, 2 on bad arguments or a bad properties file', async () => {
    const dir = brokenSpec(broken[0]!.mutate);
    const violated = await wirestate(['check', '--spec', dir, '--property', 'closingHandshakeTerminates']);
    expect(violated.status).to.equal(1);
    expect(violated.stdout).to.match(/✗ closingHandshakeTerminates \(RFC 6455 7\.1\.2\): VIOLATED/);
    expect(violated.stdout).to.match(/shortest counterexample \(\d+ steps?, timers off\):/);
    expect(violated.stdout).to.match(/stuck: no delivery, socket close or resume can happen in client closing\.closedByPeer/);
    expect(violated.stdout).to.match(/model \(buffering assumptions\):\n {2}- a client and a server run the "connection" machine/);

    const cut = await wirestate(['check', '--max-states', '1000']);
    expect(cut.status).to.equal(3);
    expect(cut.stdout).to.match(/\? noDeadlock \(RFC 6455 7\): unknown — no deadlock in the first 1000 states, but the exploration stopped at --max-states/);
    expect(cut.stdout).to.match(/STOPPED at --max-states/);

    const usage = await wirestate(['check', '--max-states', 'many']);
    expect(usage.status).to.equal(2);
    expect(usage.stderr).to.contain('--max-states must be a positive integer');
    const unknown = await wirestate(['check', '--property', 'noSuchProperty']);
    expect(unknown.status).to.equal(2);
    expect(unknown.stderr).to.contain('no property noSuchProperty');

    const bad = join(dir, 'bad-properties.yaml');
    const properties = parse(readFileSync(join(specDir, 'properties.yaml'), 'utf8')) as { properties: Record<string, unknown>[] };
    properties.properties[1]!.never = ['data', 'smoke'];
    writeFileSync(bad, stringify(properties));
    const badFile = await wirestate(['check', '--properties', bad]);
    expect(badFile.status).to.equal(2);
    expect(badFile.stderr).to.match(/bad-properties\.yaml:\d+: properties\[1\]\.never\[1\]: .*never-after property \(found "smoke"\)/);
  });

  it('validates properties.yaml like the spec: every problem with its file, path and reason', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wirestate-properties-'));
    tempDirs.push(dir);
    const file = join(dir, 'properties.yaml');
    writeFileSync(
      file,
      [
        'model: { machine: connection, channelCapacity: 0, applicationCloseCodes: [1000], protocolErrorStages: [frame], handshakeErrorStages: [handshake], reading: { pause: pauseSocket, resume: resumeSocket, discard: stopReading } }',
        'properties:',
        '  - { name: a, description: x, kind: no-deadlock }',
      ].join('\n'),
    );
    const known = { machines: ['connection'], actions: () => ['pauseSocket', 'resumeSocket', 'stopReading'] };
    expect(() => loadProperties(file, 'properties.yaml', known)).to.throw(SpecError, /properties\.yaml:1: model\.channelCapacity: .*\(found 0\)/);
    writeFileSync(
      file,
      [
        'model: { machine: connection, channelCapacity: 2, applicationCloseCodes: [1000], protocolErrorStages: [frame], handshakeErrorStages: [handshake], reading: { pause: pauseSocket, resume: resumeSocket, discard: dropIt } }',
        'properties:',
        '  - { name: a, description: x, kind: no-deadlock }',
        '  - { name: a, description: y, kind: all-states-reachable, machines: [nope] }',
        '  - { name: b, description: z, kind: eventually-final, from: close-sent, when: always }',
      ].join('\n'),
    );
    let error: SpecError | undefined;
    try {
      loadProperties(file, 'properties.yaml', known);
    } catch (e) {
      error = e as SpecError;
    }
    expect(error).to.be.instanceOf(SpecError);
    const reasons = error!.problems.map((p) => `${p.line}: ${p.path.join('.')}: ${p.reason}`);
    expect(reasons).to.have.length(4);
    expect(reasons.join('\n')).to.contain('1: model.reading.discard: unknown action "dropIt" of machine connection');
    expect(reasons.join('\n')).to.contain('4: properties.1.name: property "a" is declared twice');
    expect(reasons.join('\n')).to.contain('4: properties.1.machines.0: unknown machine "nope"');
    expect(reasons.join('\n')).to.match(/5: properties\.2\.when: .*eventually-final property/);
  });
});
