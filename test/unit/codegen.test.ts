/**
 * The generator (CONVENTIONS 9, 6, 7, 8): a broken spec fails with the file, the path inside it and
 * the reason, all problems at once, and nothing is written; a valid spec gives the same bytes every
 * run, equal to what is committed under generated/ and docs/, and the generated tables say what
 * spec/settings.yaml says.
 *
 * Every broken spec starts from a copy of the real spec/, so a case fails only for its own mutation
 * (the unmutated copy is checked to be valid first).
 */
import { expect } from 'chai';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { formatPath, formatProblem, loadSpecFolder, SpecError, type SpecProblem } from '../../codegen/load.js';
import { validateSpec, type ValidatedSpec } from '../../codegen/validate.js';
import { generate, main } from '../../codegen/main.js';
import { dialectBindings, dialectSchemas, settingsTable } from '../../generated/options.generated.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- mutations edit parsed YAML of any shape */
type Doc = any;

// Compiled tests run from dist/test/unit/: three levels up is the repository root.
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const specRoot = join(repoRoot, 'spec');

const CONNECTION = 'machines/connection.yaml';
const SERVER = 'machines/server.yaml';
const SETTINGS = 'settings.yaml';
const PROTOCOL = 'protocol.yaml';
const ERRORS = 'errors.yaml';

const readSpec = (file: string): Doc => parse(readFileSync(join(specRoot, file), 'utf8'));
const original = {
  settings: readSpec(SETTINGS),
  protocol: readSpec(PROTOCOL),
  errors: readSpec(ERRORS),
  connection: readSpec(CONNECTION),
  server: readSpec(SERVER),
};

const temps: string[] = [];
after(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `wirestate-${prefix}-`));
  temps.push(dir);
  return dir;
}

/** A fresh copy of the real spec/ folder. */
function copySpec(): string {
  const dir = tempDir('spec');
  cpSync(specRoot, dir, { recursive: true });
  return dir;
}

interface Mutation {
  /** Path of the YAML file inside spec/. */
  file: string;
  /** Edits the parsed file in place (it is written back with yaml.stringify)… */
  edit?: (doc: Doc) => void;
  /** …or rewrites its text, for syntax errors. */
  text?: (source: string) => string;
}

function applyMutation(dir: string, mutation: Mutation): void {
  const path = join(dir, mutation.file);
  const source = readFileSync(path, 'utf8');
  if (mutation.text) {
    const changed = mutation.text(source);
    if (changed === source) throw new Error(`the text mutation of ${mutation.file} changed nothing`);
    writeFileSync(path, changed);
  } else {
    const doc = parse(source);
    mutation.edit!(doc);
    writeFileSync(path, stringify(doc));
  }
}

/** Runs the loader and the validator; returns the SpecError's problems ([] when the spec is valid). */
function problemsOf(dir: string): SpecProblem[] {
  try {
    validateSpec(loadSpecFolder(dir));
    return [];
  } catch (error) {
    if (error instanceof SpecError) return error.problems;
    throw error;
  }
}

/** Copies spec/, applies the mutations, validates; returns the folder and the problems found. */
function brokenSpec(...mutations: Mutation[]): { dir: string; problems: SpecProblem[] } {
  const dir = copySpec();
  for (const m of mutations) applyMutation(dir, m);
  return { dir, problems: problemsOf(dir) };
}

// ---------------------------------------------------------------- helpers for the table

function byName(doc: Doc, name: string): Doc {
  const found = doc.settings.find((s: Doc) => s.name === name);
  if (!found) throw new Error(`no setting ${name} in the spec`);
  return found;
}
function settingIndex(name: string): number {
  const index = original.settings.settings.findIndex((s: Doc) => s.name === name);
  if (index < 0) throw new Error(`no setting ${name} in spec/settings.yaml`);
  return index;
}
function opcodeIndex(value: number): number {
  const index = original.protocol.opcodes.findIndex((o: Doc) => o.value === value);
  if (index < 0) throw new Error(`no opcode ${value}`);
  return index;
}
function closeCodeIndex(code: number): number {
  const index = original.protocol.closeCodes.findIndex((c: Doc) => c.code === code);
  if (index < 0) throw new Error(`no close code ${code}`);
  return index;
}
function firstErrorOfStage(stage: string): number {
  const index = original.errors.errors.findIndex((e: Doc) => e.stage === stage);
  if (index < 0) throw new Error(`no ${stage} error`);
  return index;
}
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const allEvents = (doc: Doc): string[] => Object.keys(doc.events);

interface BrokenCase {
  name: string;
  file: string;
  edit?: (doc: Doc) => void;
  text?: (source: string) => string;
  expect: {
    /** The problem's file ends with this. */
    file: string;
    /** formatPath() of the problem's path, exactly. */
    path: string;
    reason: RegExp;
    /** The reported line of the mutated file contains this text. */
    lineHas?: string;
  };
}

const frameError = firstErrorOfStage('frame');
const idleClose = (doc: Doc) => doc.states.open.states.idle.states.watching.after.idleTimeout[1];
const IDLE_CLOSE_PATH = 'states.open.states.idle.states.watching.after.idleTimeout[1].actions[1]';
const withIdleClose = (params: Record<string, unknown>) => (doc: Doc) => {
  const transition = idleClose(doc);
  const index = transition.actions.findIndex((a: Doc) => typeof a === 'object' && 'sendCloseWith' in a);
  if (index !== 1) throw new Error('the idle timeout no longer sends its close as actions[1]');
  transition.actions[1] = { sendCloseWith: params };
};

const cases: BrokenCase[] = [
  // ---------------------------------------------------------------- YAML and the meta-schema
  {
    name: 'a YAML syntax error, with its line',
    file: CONNECTION,
    text: (s) => s.replace('\ninitial: connecting\n', '\ninitial: connecting\nbroken: x: y\n'),
    expect: { file: CONNECTION, path: '(root)', reason: /^YAML syntax: /, lineHas: 'broken: x: y' },
  },
  {
    name: 'a key given twice in one mapping',
    file: SERVER,
    text: (s) => s.replace('\nid: server\n', '\nid: server\nid: other\n'),
    expect: { file: SERVER, path: '(root)', reason: /^YAML syntax: .*unique/, lineHas: 'id: other' },
  },
  {
    name: 'a missing required field',
    file: ERRORS,
    edit: (d) => delete d.errors[0].message,
    expect: { file: ERRORS, path: 'errors[0].message', reason: /required property/, lineHas: `id: ${original.errors.errors[0].id}` },
  },
  {
    name: 'a wrong type',
    file: PROTOCOL,
    edit: (d) => (d.opcodes[opcodeIndex(0)].fragmentable = 'yes'),
    expect: { file: PROTOCOL, path: `opcodes[${opcodeIndex(0)}].fragmentable`, reason: /Expected boolean.*"yes"/, lineHas: 'fragmentable: yes' },
  },
  {
    name: 'an unknown field',
    file: SETTINGS,
    edit: (d) => (byName(d, 'maxPayload').colour = 'red'),
    expect: { file: SETTINGS, path: `settings[${settingIndex('maxPayload')}].colour`, reason: /[Uu]nexpected property/, lineHas: 'colour: red' },
  },
  {
    name: 'a setting of an unknown type',
    file: SETTINGS,
    edit: (d) => (byName(d, 'maxPayload').type = 'int'),
    expect: { file: SETTINGS, path: `settings[${settingIndex('maxPayload')}].type`, reason: /"int"/, lineHas: 'type: int' },
  },
  {
    name: 'an error code that does not match WS_ERR_*',
    file: ERRORS,
    edit: (d) => (d.errors[0].code = 'ERR_RSV1'),
    expect: { file: ERRORS, path: 'errors[0].code', reason: /match.*"ERR_RSV1"/, lineHas: 'code: ERR_RSV1' },
  },

  // ---------------------------------------------------------------- machines: references
  {
    name: 'an unknown target state',
    file: CONNECTION,
    edit: (d) => (d.states.open.on.SOCKET_CLOSED.target = 'terminatd'),
    expect: { file: CONNECTION, path: 'states.open.on.SOCKET_CLOSED.target', reason: /no state "terminatd" under the machine root/, lineHas: 'terminatd' },
  },
  {
    name: 'an unknown state under a #id path',
    file: CONNECTION,
    edit: (d) => (d.states.closing.states.closedByPeer.on.SOCKET_CLOSED = '#connection.closd'),
    expect: { file: CONNECTION, path: 'states.closing.states.closedByPeer.on.SOCKET_CLOSED.target', reason: /no state "closd" under the machine root/, lineHas: '#connection.closd' },
  },
  {
    name: 'an unknown state id (#foo.x)',
    file: CONNECTION,
    edit: (d) => (d.states.closing.states.failed.on.SOCKET_CLOSED = '#foo.terminated'),
    expect: { file: CONNECTION, path: 'states.closing.states.failed.on.SOCKET_CLOSED.target', reason: /unknown state id "#foo" \(only "#connection" is defined\)/, lineHas: '#foo.terminated' },
  },
  {
    name: 'an unknown guard',
    file: CONNECTION,
    edit: (d) => (d.states.open.on.CLOSE_RECEIVED[0].guard = 'isSever'),
    expect: { file: CONNECTION, path: 'states.open.on.CLOSE_RECEIVED[0].guard', reason: /unknown guard "isSever"/, lineHas: 'isSever' },
  },
  {
    name: 'an unknown action in a transition',
    file: CONNECTION,
    edit: (d) => (d.states.connecting.on.HANDSHAKE_SUCCEEDED.actions = ['emitOpne']),
    expect: { file: CONNECTION, path: 'states.connecting.on.HANDSHAKE_SUCCEEDED.actions[0]', reason: /unknown action "emitOpne"/, lineHas: 'emitOpne' },
  },
  {
    name: 'an unknown entry action',
    file: CONNECTION,
    edit: (d) => (d.states.closed.entry = ['emitClosed']),
    expect: { file: CONNECTION, path: 'states.closed.entry[0]', reason: /unknown action "emitClosed"/, lineHas: 'emitClosed' },
  },
  {
    name: 'an action missing a parameter',
    file: CONNECTION,
    edit: withIdleClose({ code: 1001 }),
    expect: { file: CONNECTION, path: IDLE_CLOSE_PATH, reason: /action sendCloseWith needs the parameter "reason"/ },
  },
  {
    name: 'an action given a parameter it does not declare',
    file: CONNECTION,
    edit: withIdleClose({ code: 1001, reason: 'idle', urgent: true }),
    expect: { file: CONNECTION, path: IDLE_CLOSE_PATH, reason: /action sendCloseWith has no parameter "urgent"/ },
  },
  {
    name: 'an action parameter of the wrong type',
    file: CONNECTION,
    edit: withIdleClose({ code: '1001', reason: 'idle' }),
    expect: { file: CONNECTION, path: IDLE_CLOSE_PATH, reason: /parameter code of sendCloseWith must be a number/ },
  },
  {
    name: 'a literal close code in sendCloseWith that may not be sent (1006)',
    file: CONNECTION,
    edit: withIdleClose({ code: 1006, reason: 'idle' }),
    expect: { file: CONNECTION, path: IDLE_CLOSE_PATH, reason: /close code 1006 may not be sent on the wire \(RFC 6455 section 7\.4\.1\)/ },
  },
  {
    name: 'an unknown delay',
    file: CONNECTION,
    edit: (d) => {
      d.states.connecting.after = { handshakeTimeot: d.states.connecting.after.handshakeTimeout };
    },
    expect: { file: CONNECTION, path: 'states.connecting.after.handshakeTimeot', reason: /unknown delay "handshakeTimeot"/, lineHas: 'handshakeTimeot' },
  },
  {
    name: 'a delay pointing at an unknown setting',
    file: CONNECTION,
    edit: (d) => (d.delays.closeTimeout.setting = 'closeTimout'),
    expect: { file: CONNECTION, path: 'delays.closeTimeout.setting', reason: /unknown setting "closeTimout" \(not in settings\.yaml\)/, lineHas: 'closeTimout' },
  },
  {
    name: 'a delay pointing at a setting that is not in ms',
    file: CONNECTION,
    edit: (d) => (d.delays.closeTimeout.setting = 'maxPayload'),
    expect: { file: CONNECTION, path: 'delays.closeTimeout.setting', reason: /setting "maxPayload" must be an integer in ms/, lineHas: 'maxPayload' },
  },

  // ---------------------------------------------------------------- machines: events
  {
    name: 'an unknown event in on',
    file: CONNECTION,
    edit: (d) => (d.states.closing.on.BOGUS_EVENT = 'terminated'),
    expect: { file: CONNECTION, path: 'states.closing.on.BOGUS_EVENT', reason: /unknown event "BOGUS_EVENT" \(declare it under events\)/ },
  },
  {
    name: 'an unknown event in ignore',
    file: SERVER,
    edit: (d) => d.states.idle.ignore.push('LISTENED'),
    expect: { file: SERVER, path: 'states.idle.ignore.LISTENED', reason: /unknown event "LISTENED"/ },
  },
  {
    name: 'an event both handled and ignored',
    file: CONNECTION,
    edit: (d) => d.states.connecting.ignore.push('HANDSHAKE_FAILED'),
    expect: { file: CONNECTION, path: 'states.connecting.ignore', reason: /event HANDSHAKE_FAILED is both handled and ignored/ },
  },
  {
    name: 'an event ignored in a child but handled by an ancestor',
    file: CONNECTION,
    edit: (d) => d.states.closing.states.closedByPeer.ignore.push('TERMINATE_REQUESTED'),
    expect: {
      file: CONNECTION,
      path: 'states.closing.states.closedByPeer.ignore',
      reason: /event TERMINATE_REQUESTED is ignored here but handled by the enclosing state "closing"/,
    },
  },
  {
    name: 'an event listed twice in ignore',
    file: SERVER,
    edit: (d) => d.states.listening.ignore.push(d.states.listening.ignore[0]),
    expect: { file: SERVER, path: 'states.listening.ignore', reason: /an event is listed twice/ },
  },
  {
    name: 'a (state, event) pair neither handled nor ignored',
    file: CONNECTION,
    edit: (d) => {
      const before = d.states.connecting.ignore.length;
      d.states.connecting.ignore = d.states.connecting.ignore.filter((e: string) => e !== 'PONG_RECEIVED');
      if (d.states.connecting.ignore.length !== before - 1) throw new Error('connecting no longer ignores PONG_RECEIVED');
    },
    expect: { file: CONNECTION, path: 'states.connecting', reason: /event PONG_RECEIVED is neither handled nor ignored in state "connecting"/, lineHas: 'connecting:' },
  },
  {
    name: 'a nested (state, event) pair neither handled nor ignored',
    file: CONNECTION,
    edit: (d) => {
      const paused = d.states.open.states.reading.states.paused;
      paused.ignore = paused.ignore.filter((e: string) => e !== 'PONG_RECEIVED');
    },
    expect: {
      file: CONNECTION,
      path: 'states.open.states.reading.states.paused',
      reason: /event PONG_RECEIVED is neither handled nor ignored in state "open\.reading\.paused"/,
    },
  },

  // ---------------------------------------------------------------- machines: structure
  {
    name: 'an unreachable state',
    file: SERVER,
    edit: (d) => (d.states.orphan = { description: 'Nothing leads here.', type: 'final' }),
    expect: { file: SERVER, path: 'states.orphan', reason: /state "orphan" is unreachable from the initial state/, lineHas: 'orphan:' },
  },
  {
    name: 'a compound state without initial',
    file: CONNECTION,
    edit: (d) => delete d.states.closing.initial,
    expect: { file: CONNECTION, path: 'states.closing', reason: /a compound state needs an initial state/ },
  },
  {
    name: 'a bad initial of a compound state',
    file: CONNECTION,
    edit: (d) => (d.states.open.states.reading.initial = 'flowin'),
    expect: { file: CONNECTION, path: 'states.open.states.reading.initial', reason: /unknown initial state "flowin"/, lineHas: 'initial: flowin' },
  },
  {
    name: 'a bad initial of the machine',
    file: SERVER,
    edit: (d) => (d.initial = 'idel'),
    expect: { file: SERVER, path: 'initial', reason: /unknown initial state "idel"/, lineHas: 'initial: idel' },
  },
  {
    name: 'a reachable state from which no final state is reachable',
    file: SERVER,
    edit: (d) => {
      d.states.idle.ignore = d.states.idle.ignore.filter((e: string) => e !== 'LISTENING');
      d.states.idle.on.LISTENING = 'limbo';
      const others = allEvents(d).filter((e) => e !== 'CLOSE_REQUESTED');
      d.states.limbo = { description: 'Loops on itself for ever.', on: { CLOSE_REQUESTED: 'limbo' }, ignore: others };
    },
    expect: { file: SERVER, path: 'states.limbo', reason: /no path leads from state "limbo" to a final state/, lineHas: 'limbo:' },
  },
  {
    name: 'an unguarded transition before a guarded one',
    file: CONNECTION,
    edit: (d) => d.states.open.on.CLOSE_RECEIVED.reverse(),
    expect: { file: CONNECTION, path: 'states.open.on.CLOSE_RECEIVED[0]', reason: /an unguarded transition before others makes them unreachable/ },
  },
  {
    name: 'a final state with transitions',
    file: CONNECTION,
    edit: (d) => (d.states.closed.on = { SOCKET_CLOSED: 'terminated' }),
    expect: { file: CONNECTION, path: 'states.closed', reason: /a final state has no transitions/ },
  },
  {
    name: 'an eventless transition without a target',
    file: SERVER,
    edit: (d) => (d.states.shuttingDown.always = { guard: 'noConnectionsLeft', actions: ['emitClose'] }),
    expect: { file: SERVER, path: 'states.shuttingDown.always', reason: /an eventless transition needs a target/ },
  },
  {
    name: 'two machine files with the same id',
    file: SERVER,
    edit: (d) => (d.id = original.connection.id),
    expect: { file: SERVER, path: 'id', reason: new RegExp(`machine id "${original.connection.id}" is used by another machine file`) },
  },

  // ---------------------------------------------------------------- protocol.yaml
  {
    name: 'a duplicate opcode',
    file: PROTOCOL,
    edit: (d) => (d.opcodes[opcodeIndex(3)].value = 2),
    expect: { file: PROTOCOL, path: `opcodes[${opcodeIndex(3)}].value`, reason: new RegExp(`opcode 0x2 is declared twice \\(first at opcodes\\[${opcodeIndex(2)}\\]\\)`) },
  },
  {
    name: 'a missing opcode',
    file: PROTOCOL,
    edit: (d) => (d.opcodes[opcodeIndex(5)].value = 6),
    expect: { file: PROTOCOL, path: 'opcodes', reason: /opcode 0x5 is missing/ },
  },
  {
    name: 'a control opcode with maxPayload 200',
    file: PROTOCOL,
    edit: (d) => (d.opcodes[opcodeIndex(8)].maxPayload = 200),
    expect: { file: PROTOCOL, path: `opcodes[${opcodeIndex(8)}].maxPayload`, reason: /a control frame carries at most 125 bytes \(RFC 6455 section 5\.5\)/, lineHas: 'maxPayload: 200' },
  },
  {
    name: 'a fragmentable control opcode',
    file: PROTOCOL,
    edit: (d) => (d.opcodes[opcodeIndex(9)].fragmentable = true),
    expect: { file: PROTOCOL, path: `opcodes[${opcodeIndex(9)}].fragmentable`, reason: /control frames must not be fragmented/ },
  },
  {
    name: 'a data opcode declared as control',
    file: PROTOCOL,
    edit: (d) => (d.opcodes[opcodeIndex(1)].kind = 'control'),
    expect: { file: PROTOCOL, path: `opcodes[${opcodeIndex(1)}].kind`, reason: /opcode 0x1 is a data opcode \(RFC 6455 section 5\.2\)/ },
  },
  {
    name: 'close code 1006 marked sendable',
    file: PROTOCOL,
    edit: (d) => (d.closeCodes[closeCodeIndex(1006)].sendable = true),
    expect: { file: PROTOCOL, path: `closeCodes[${closeCodeIndex(1006)}].sendable`, reason: /1006 MUST NOT be set as a status code/ },
  },
  {
    name: 'a missing close code',
    file: PROTOCOL,
    edit: (d) => d.closeCodes.splice(closeCodeIndex(1012), 1),
    expect: { file: PROTOCOL, path: 'closeCodes', reason: /close code 1012 is missing/ },
  },
  {
    name: 'a close code inside a declared range',
    file: PROTOCOL,
    edit: (d) => d.closeCodes.push({ ...d.closeCodes[closeCodeIndex(1000)], code: 1500, name: 'inRange' }),
    expect: { file: PROTOCOL, path: `closeCodes[${original.protocol.closeCodes.length}].code`, reason: /1500 falls inside range closeCodeRanges\[\d+\] \(1016-2999\)/ },
  },
  {
    name: 'overlapping close code ranges',
    file: PROTOCOL,
    edit: (d) => (d.closeCodeRanges.find((r: Doc) => r.from === 3000).to = 4500),
    expect: { file: PROTOCOL, path: `closeCodeRanges[${original.protocol.closeCodeRanges.findIndex((r: Doc) => r.from === 4000)}]`, reason: /range 4000-4999 overlaps closeCodeRanges\[\d+\]/ },
  },

  // ---------------------------------------------------------------- errors.yaml
  {
    name: 'an error row whose closeCode may not be sent, for a frame error',
    file: ERRORS,
    edit: (d) => (d.errors[frameError].closeCode = 1006),
    expect: { file: ERRORS, path: `errors[${frameError}].closeCode`, reason: /close code 1006 goes on the wire for a frame error but may not be sent/, lineHas: 'closeCode: 1006' },
  },
  {
    name: 'an error row with an undeclared close code',
    file: ERRORS,
    edit: (d) => (d.errors[frameError].closeCode = 5000),
    expect: { file: ERRORS, path: `errors[${frameError}].closeCode`, reason: /close code 5000 is not declared in protocol\.yaml/ },
  },
  {
    name: 'a duplicate error id',
    file: ERRORS,
    edit: (d) => (d.errors[1].id = d.errors[0].id),
    expect: { file: ERRORS, path: 'errors[1].id', reason: new RegExp(`error id "${original.errors.errors[0].id}" is used twice`) },
  },
  {
    name: 'an HTTP status on a frame error',
    file: ERRORS,
    edit: (d) => (d.errors[frameError].status = 400),
    expect: { file: ERRORS, path: `errors[${frameError}].status`, reason: /only handshake errors have an HTTP status/ },
  },

  // ---------------------------------------------------------------- settings.yaml
  {
    name: 'a duplicate setting name',
    file: SETTINGS,
    edit: (d) => (d.settings[1].name = d.settings[0].name),
    expect: { file: SETTINGS, path: 'settings[1].name', reason: new RegExp(`setting "${original.settings.settings[0].name}" is declared twice`) },
  },
  {
    name: 'a duplicate dialect name within a dialect and role',
    file: SETTINGS,
    edit: (d) => (byName(d, 'followRedirects').dialects.ws.name = 'agent'),
    expect: {
      file: SETTINGS,
      path: `settings[${settingIndex('followRedirects')}].dialects.ws.name`,
      reason: new RegExp(escape(`ws name "agent" (client) is already used by settings[${settingIndex('agent')}] (agent)`)),
    },
  },
  {
    name: 'an unsupported setting without unsupportedReason',
    file: SETTINGS,
    edit: (d) => delete byName(d, 'codePage').unsupportedReason,
    expect: { file: SETTINGS, path: `settings[${settingIndex('codePage')}].unsupportedReason`, reason: /an unsupported setting must say why/ },
  },
  {
    name: 'a supported setting with an unsupportedReason',
    file: SETTINGS,
    edit: (d) => (byName(d, 'maxPayload').unsupportedReason = 'no reason'),
    expect: { file: SETTINGS, path: `settings[${settingIndex('maxPayload')}].unsupportedReason`, reason: /a supported setting has no unsupportedReason/ },
  },
  {
    name: 'a default out of range',
    file: SETTINGS,
    edit: (d) => (byName(d, 'maxPayload').default = -1),
    expect: { file: SETTINGS, path: `settings[${settingIndex('maxPayload')}].default`, reason: /-1 is below the minimum 0/, lineHas: 'default: -1' },
  },
  {
    name: 'a default of the wrong type',
    file: SETTINGS,
    edit: (d) => (byName(d, 'keepalive').default = 'yes'),
    expect: { file: SETTINGS, path: `settings[${settingIndex('keepalive')}].default`, reason: /must be a boolean, found "yes"/ },
  },
  {
    name: 'a dialect default out of range once scaled into the canonical unit',
    file: SETTINGS,
    edit: (d) => (byName(d, 'sendTimeout').dialects.ipworks.default = -1),
    expect: {
      file: SETTINGS,
      path: `settings[${settingIndex('sendTimeout')}].dialects.ipworks.default`,
      reason: new RegExp(`the ipworks default, in wirestate's unit, ${-1 * original.settings.settings[settingIndex('sendTimeout')].dialects.ipworks.scale} is below the minimum 0`),
    },
  },
  {
    name: 'an ipworks binding without kind',
    file: SETTINGS,
    edit: (d) => delete byName(d, 'acceptData').dialects.ipworks.kind,
    expect: { file: SETTINGS, path: `settings[${settingIndex('acceptData')}].dialects.ipworks.kind`, reason: /an ipworks name is a property or a config setting/ },
  },
  {
    name: 'kind on a non-ipworks binding',
    file: SETTINGS,
    edit: (d) => (byName(d, 'maxPayload').dialects.ws.kind = 'property'),
    expect: { file: SETTINGS, path: `settings[${settingIndex('maxPayload')}].dialects.ws`, reason: /kind and editions apply to the ipworks dialect only/ },
  },
  {
    name: 'an enum setting without values',
    file: SETTINGS,
    edit: (d) => delete byName(d, 'dataFormat').values,
    expect: { file: SETTINGS, path: `settings[${settingIndex('dataFormat')}].values`, reason: /an enum setting lists its values/ },
  },
  {
    name: 'invert on a non-boolean setting',
    file: SETTINGS,
    edit: (d) => (byName(d, 'maxPayload').dialects.websocket.invert = true),
    expect: { file: SETTINGS, path: `settings[${settingIndex('maxPayload')}].dialects.websocket.invert`, reason: /invert applies to boolean settings only/ },
  },
  {
    name: 'scale on a non-integer setting',
    file: SETTINGS,
    edit: (d) => (byName(d, 'keepalive').dialects.websocket.scale = 1000),
    expect: { file: SETTINGS, path: `settings[${settingIndex('keepalive')}].dialects.websocket.scale`, reason: /scale applies to integer settings only/ },
  },
  {
    name: 'a minimum above the maximum',
    file: SETTINGS,
    edit: (d) => Object.assign(byName(d, 'backlog'), { minimum: 600, maximum: 500, default: 550 }),
    expect: { file: SETTINGS, path: `settings[${settingIndex('backlog')}].minimum`, reason: /minimum is above maximum/ },
  },
];

function lineCount(text: string): number {
  return text.split('\n').length;
}

describe('codegen: validation of a broken spec', function () {
  this.timeout(60_000);

  it('the helper starts from a valid copy: the real spec, copied and round-tripped through yaml.stringify, has no problem', () => {
    const dir = copySpec();
    expect(problemsOf(dir)).to.deep.equal([]);
    for (const file of [SETTINGS, PROTOCOL, ERRORS, CONNECTION, SERVER]) applyMutation(dir, { file, edit: () => {} });
    expect(problemsOf(dir).map(formatProblem)).to.deep.equal([]);
  });

  it(`covers at least 25 kinds of broken spec (has ${cases.length})`, () => {
    expect(cases.length).to.be.at.least(25);
    expect(new Set(cases.map((c) => c.name)).size).to.equal(cases.length);
  });

  for (const c of cases) {
    it(`reports ${c.name}: ${c.expect.file}: ${c.expect.path}`, () => {
      const { dir, problems } = brokenSpec({ file: c.file, edit: c.edit, text: c.text });
      const shown = problems.map(formatProblem).join('\n');
      expect(problems, 'the mutated spec must fail').to.not.be.empty;
      const match = problems.find((p) => p.file.endsWith(c.expect.file) && formatPath(p.path) === c.expect.path && c.expect.reason.test(p.reason));
      expect(match, `no problem at ${c.expect.file}: ${c.expect.path} matching ${c.expect.reason} among:\n${shown}`).to.not.equal(undefined);
      // Only the mutated file was changed, so no other file may be blamed.
      for (const p of problems) expect(p.file, shown).to.match(new RegExp(`(^|/)${escape(c.file)}$`));
      // The problem carries a line inside the mutated file, and formatProblem shows file:line: path: reason.
      const text = readFileSync(join(dir, c.file), 'utf8');
      expect(match!.line, `no line for ${formatProblem(match!)}`).to.be.a('number');
      expect(match!.line).to.be.within(1, lineCount(text));
      expect(formatProblem(match!)).to.equal(`${match!.file}:${match!.line}: ${c.expect.path}: ${match!.reason}`);
      if (c.expect.lineHas !== undefined) {
        const line = text.split('\n')[match!.line! - 1]!;
        expect(line, `line ${match!.line} of the mutated ${c.file}`).to.contain(c.expect.lineHas);
      }
    });
  }

  it('reports every semantic problem of five files in one SpecError', () => {
    const picks = [
      'an unknown guard',
      'an unreachable state',
      'a control opcode with maxPayload 200',
      'a duplicate error id',
      'an unsupported setting without unsupportedReason',
    ].map((name) => cases.find((c) => c.name === name)!);
    const { problems } = brokenSpec(...picks.map((c) => ({ file: c.file, edit: c.edit, text: c.text })));
    for (const c of picks) {
      expect(
        problems.some((p) => p.file.endsWith(c.expect.file) && formatPath(p.path) === c.expect.path && c.expect.reason.test(p.reason)),
        `${c.name} missing from:\n${problems.map(formatProblem).join('\n')}`,
      ).to.equal(true);
    }
    expect(new Set(problems.map((p) => p.file.replace(/^.*?((machines\/)?[^/]+\.yaml)$/, '$1')))).to.have.lengthOf(5);
  });

  it('reports several problems of one file together', () => {
    const picks = ['a default out of range', 'an ipworks binding without kind', 'an enum setting without values', 'a duplicate setting name'].map(
      (name) => cases.find((c) => c.name === name)!,
    );
    const { problems } = brokenSpec(...picks.map((c) => ({ file: c.file, edit: c.edit })));
    for (const c of picks) {
      expect(problems.some((p) => formatPath(p.path) === c.expect.path && c.expect.reason.test(p.reason)), c.name).to.equal(true);
    }
  });

  it('reports structural problems of several files (a syntax error, a wrong type, an unknown field) in one SpecError', () => {
    const picks = ['a YAML syntax error, with its line', 'a wrong type', 'an unknown field'].map((name) => cases.find((c) => c.name === name)!);
    const dir = copySpec();
    for (const c of picks) applyMutation(dir, { file: c.file, edit: c.edit, text: c.text });
    let error: unknown;
    try {
      loadSpecFolder(dir);
    } catch (e) {
      error = e;
    }
    expect(error).to.be.instanceOf(SpecError);
    const problems = (error as SpecError).problems;
    for (const c of picks) {
      expect(problems.some((p) => p.file.endsWith(c.expect.file) && formatPath(p.path) === c.expect.path && c.expect.reason.test(p.reason)), c.name).to.equal(true);
    }
    // The message lists them all, one per line.
    for (const p of problems) expect((error as SpecError).message).to.contain(formatProblem(p));
    expect((error as SpecError).message).to.match(new RegExp(`^the spec has ${problems.length} problems:`));
  });

  it('reports a missing machines folder', () => {
    const dir = copySpec();
    rmSync(join(dir, 'machines'), { recursive: true });
    const problems = problemsOf(dir);
    expect(problems.map(formatProblem).join('\n')).to.match(/machines: \(root\): the machines folder is missing/);
  });
});

// ---------------------------------------------------------------- main()

/** Runs main() with console output captured, so a test's output stays readable. */
function runMain(argv: string[]): { code: number; out: string; err: string } {
  const { log, error } = console;
  let out = '';
  let err = '';
  console.log = (...args: unknown[]) => void (out += args.join(' ') + '\n');
  console.error = (...args: unknown[]) => void (err += args.join(' ') + '\n');
  try {
    return { code: main(argv), out, err };
  } finally {
    console.log = log;
    console.error = error;
  }
}

function listFiles(root: string): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(root.length + 1).replace(/\\/g, '/'))
    .sort();
}

describe('codegen: main()', function () {
  this.timeout(120_000);

  it('a broken spec emits nothing: main returns 1, names the problem, and the out dir stays empty', () => {
    const c = cases.find((x) => x.name === 'an unknown guard')!;
    const { dir } = brokenSpec({ file: c.file, edit: c.edit });
    const out = tempDir('out');
    const result = runMain(['--spec', dir, '--out', out]);
    expect(result.code).to.equal(1);
    expect(result.err).to.match(/machines\/connection\.yaml:\d+: states\.open\.on\.CLOSE_RECEIVED\[0\]\.guard: unknown guard "isSever"/);
    expect(listFiles(out)).to.deep.equal([]);
  });

  it('a broken spec leaves an existing output untouched, stale files included', () => {
    const c = cases.find((x) => x.name === 'a control opcode with maxPayload 200')!;
    const { dir } = brokenSpec({ file: c.file, edit: c.edit });
    const out = tempDir('out');
    mkdirSync(join(out, 'generated'), { recursive: true });
    writeFileSync(join(out, 'generated', 'stale.generated.ts'), 'stale\n');
    expect(runMain(['--spec', dir, '--out', out]).code).to.equal(1);
    expect(listFiles(out)).to.deep.equal(['generated/stale.generated.ts']);
    expect(readFileSync(join(out, 'generated', 'stale.generated.ts'), 'utf8')).to.equal('stale\n');
  });

  it('--validate-only accepts the real spec and writes nothing', () => {
    const out = tempDir('out');
    const result = runMain(['--spec', specRoot, '--out', out, '--validate-only']);
    expect(result.code, result.err).to.equal(0);
    expect(result.out).to.match(/spec is valid/);
    expect(listFiles(out)).to.deep.equal([]);
  });

  it('--validate-only still fails a broken spec', () => {
    const c = cases.find((x) => x.name === 'an unreachable state')!;
    const { dir } = brokenSpec({ file: c.file, edit: c.edit });
    expect(runMain(['--spec', dir, '--validate-only']).code).to.equal(1);
  });

  it('writes exactly what generate() produces, removes stale generated files, keeps others, and a second run writes nothing', () => {
    const out = tempDir('out');
    mkdirSync(join(out, 'generated'), { recursive: true });
    mkdirSync(join(out, 'docs'), { recursive: true });
    writeFileSync(join(out, 'generated', 'stale.generated.ts'), 'stale\n');
    writeFileSync(join(out, 'docs', 'handwritten.md'), 'mine\n');
    const first = runMain(['--spec', specRoot, '--out', out]);
    expect(first.code, first.err).to.equal(0);
    const files = generate(validateSpec(loadSpecFolder(specRoot)));
    expect(listFiles(out)).to.deep.equal([...files.map((f) => f.path), 'docs/handwritten.md'].sort());
    for (const f of files) expect(readFileSync(join(out, f.path), 'utf8'), f.path).to.equal(f.contents);
    expect(first.out).to.contain('removed stale generated/stale.generated.ts');
    const second = runMain(['--spec', specRoot, '--out', out]);
    expect(second.code).to.equal(0);
    expect(second.out).to.match(new RegExp(`generate: ${files.length} files \\(0 written, ${files.length} unchanged, 0 removed\\)`));
  });

  it('rejects an unknown argument with 2', () => {
    expect(runMain(['--sepc', specRoot]).code).to.equal(2);
  });
});

// ---------------------------------------------------------------- determinism and freshness

describe('codegen: deterministic output, equal to the committed files', function () {
  this.timeout(120_000);
  let spec: ValidatedSpec;
  let files: ReturnType<typeof generate>;

  before(() => {
    spec = validateSpec(loadSpecFolder(specRoot));
    files = generate(spec);
  });

  it('generate() run twice gives byte-identical files', () => {
    const again = generate(validateSpec(loadSpecFolder(specRoot)));
    expect(again.map((f) => f.path)).to.deep.equal(files.map((f) => f.path));
    again.forEach((f, i) => expect(f.contents === files[i]!.contents, `${f.path} differs between runs`).to.equal(true));
  });

  it('does not depend on where the spec is read from, nor on the order of settings.yaml', () => {
    const dir = copySpec();
    applyMutation(dir, { file: SETTINGS, edit: (d) => d.settings.reverse() });
    const shuffled = generate(validateSpec(loadSpecFolder(dir)));
    expect(shuffled.map((f) => f.path)).to.deep.equal(files.map((f) => f.path));
    shuffled.forEach((f, i) => expect(f.contents === files[i]!.contents, `${f.path} depends on the order of the settings`).to.equal(true));
  });

  it('returns paths sorted and unique', () => {
    const paths = files.map((f) => f.path);
    expect(paths).to.deep.equal([...new Set(paths)].sort());
  });

  it('every file is LF-only and ends with exactly one newline', () => {
    for (const f of files) {
      expect(f.contents.includes('\r'), `${f.path} has CR`).to.equal(false);
      expect(f.contents.endsWith('\n'), `${f.path} lacks the final newline`).to.equal(true);
      expect(f.contents.endsWith('\n\n'), `${f.path} ends with a blank line`).to.equal(false);
    }
  });

  it('every generated .ts file starts with the DO NOT EDIT header naming its generator and source', () => {
    const ts = files.filter((f) => f.path.endsWith('.ts'));
    expect(ts.length).to.be.at.least(3);
    for (const f of ts) {
      const first = f.contents.split('\n')[0]!;
      expect(first, f.path).to.match(/^\/\/ DO NOT EDIT — generated by codegen\/\S+\.ts from spec\/\S+\.yaml.*; run `make generate`\.$/);
      expect(f.path).to.match(/^generated\/.*\.generated\.ts$/);
    }
    // The other files name their generator or source too, each in its own comment syntax.
    for (const f of files.filter((x) => !x.path.endsWith('.ts'))) expect(f.contents.slice(0, 400), f.path).to.match(/generated (by codegen\/|from spec\/)/);
  });

  it('the files generate() produces equal the committed files under generated/ and docs/ (freshness)', () => {
    const stale = files.filter((f) => !existsSync(join(repoRoot, f.path)) || readFileSync(join(repoRoot, f.path), 'utf8') !== f.contents).map((f) => f.path);
    expect(stale, 'stale or missing: run `make generate`').to.deep.equal([]);
  });

  it('every file in the generated folders is one that generate() produces (nothing stale is left)', () => {
    const produced = new Set(files.map((f) => f.path));
    // docs/diagrams/*.svg are rendered from the .dot files by Graphviz in `make generate`, not by codegen.
    const present = [
      ...listFiles(join(repoRoot, 'generated')).map((p) => `generated/${p}`),
      ...listFiles(join(repoRoot, 'docs/diagrams')).filter((p) => !p.endsWith('.svg')).map((p) => `docs/diagrams/${p}`),
    ];
    expect(present.filter((p) => !produced.has(p))).to.deep.equal([]);
  });
});

// ---------------------------------------------------------------- the generated tables agree with the spec

const DIALECTS = ['ws', 'websocket', 'ipworks'] as const;
const ROLES = ['server', 'client'] as const;
const specSettings: Doc[] = original.settings.settings;
const hasJsonForm = (s: Doc) => s.type !== 'function' && s.type !== 'any';
/** Does the spec offer this dialect's API in this role? (settings.yaml `dialects`) */
const offered = (dialect: string, role: string): boolean => original.settings.dialects[dialect].roles.includes(role);

/** The default a dialect documents, in its own unit and sense, from the spec: undefined for none. */
function expectedDialectDefault(s: Doc, dialect: string): unknown {
  const b = s.dialects[dialect];
  if (b.default !== undefined) return b.default;
  if (s.default === undefined || s.default === null) return undefined;
  if (typeof s.default === 'number' && b.scale) return s.default / b.scale;
  if (typeof s.default === 'boolean' && b.invert) return !s.default;
  return s.default;
}

function hasKeyDeep(value: unknown, key: string): boolean {
  if (Array.isArray(value)) return value.some((v) => hasKeyDeep(v, key));
  if (value && typeof value === 'object') return Object.entries(value).some(([k, v]) => k === key || hasKeyDeep(v, key));
  return false;
}

describe('codegen: the generated tables agree with spec/settings.yaml', () => {
  it('settingsTable has exactly the settings of the spec, each as declared', () => {
    expect(Object.keys(settingsTable).sort()).to.deep.equal(specSettings.map((s) => s.name).sort());
    for (const s of specSettings) {
      const row = (settingsTable as Record<string, Doc>)[s.name];
      expect(row.name).to.equal(s.name);
      expect(row.type, s.name).to.equal(s.type);
      expect(row.unit, s.name).to.equal(s.unit);
      expect(row.group, s.name).to.equal(s.group);
      expect([...row.roles], s.name).to.deep.equal(s.roles);
      expect(row.supported, s.name).to.equal(s.supported);
      expect(row.unsupportedReason, s.name).to.equal(s.unsupportedReason ?? null);
      expect(row.minimum, s.name).to.equal(s.minimum ?? null);
      expect(row.maximum, s.name).to.equal(s.maximum ?? null);
      expect(row.default, `${s.name}.default`).to.deep.equal(s.default ?? null);
      expect(row.description, s.name).to.equal(s.description);
      expect(Object.keys(row.dialects).sort(), s.name).to.deep.equal(Object.keys(s.dialects).sort());
      for (const [dialect, b] of Object.entries<Doc>(s.dialects)) {
        const got = row.dialects[dialect];
        expect(got.name, `${s.name}.${dialect}`).to.equal(b.name);
        expect(got.setting).to.equal(s.name);
        expect(got.scale, `${s.name}.${dialect}.scale`).to.equal(b.scale ?? 1);
        expect(got.invert, `${s.name}.${dialect}.invert`).to.equal(b.invert ?? false);
        expect(got.kind, `${s.name}.${dialect}.kind`).to.equal(b.kind ?? null);
        expect(got.extension, `${s.name}.${dialect}.extension`).to.equal(b.extension ?? false);
      }
    }
  });

  it('dialectBindings and dialectSchemas name every dialect option of every role, and nothing else', () => {
    for (const dialect of DIALECTS) {
      for (const role of ROLES) {
        const exposed = specSettings.filter((s) => offered(dialect, role) && s.roles.includes(role) && s.dialects[dialect]);
        const bindings = (dialectBindings as Doc)[dialect][role] ?? {};
        expect(Object.keys(bindings).sort(), `${dialect} ${role}`).to.deep.equal(exposed.map((s) => s.dialects[dialect].name).sort());
        for (const s of exposed) expect(bindings[s.dialects[dialect].name].setting, `${dialect} ${role} ${s.name}`).to.equal(s.name);
        const schema = (dialectSchemas as Doc)[dialect]?.[role];
        if (exposed.length === 0) continue;
        expect(Object.keys(schema.properties).sort(), `${dialect} ${role} schema`).to.deep.equal(Object.keys(bindings).sort());
      }
    }
  });

  it('docs/settings.md lists every setting with each of its dialect names, in the right column', () => {
    const doc = readFileSync(join(repoRoot, 'docs/settings.md'), 'utf8');
    const rows = new Map<string, string[]>();
    for (const line of doc.split('\n')) {
      const m = /^\| `([A-Za-z0-9]+)` \|/.exec(line);
      if (m) rows.set(m[1]!, line.split(/(?<!\\)\|/).slice(1, -1).map((cell) => cell.trim()));
    }
    expect([...rows.keys()].sort()).to.deep.equal(specSettings.map((s) => s.name).sort());
    for (const s of specSettings) {
      const cells = rows.get(s.name)!;
      DIALECTS.forEach((dialect, column) => {
        const cell = cells[1 + column]!;
        const b = s.dialects[dialect];
        if (b) expect(cell.startsWith(`\`${b.name}\``), `${s.name} ${dialect}: ${cell}`).to.equal(true);
        else expect(cell, `${s.name} ${dialect}`).to.equal('—');
      });
      expect(cells[4], `${s.name} type`).to.equal(s.type);
      expect(cells[9], `${s.name} supported`).to.equal(s.supported ? 'yes' : 'no');
      if (!s.supported) expect(doc).to.contain(`**Not supported on Node:** ${s.unsupportedReason}`);
    }
    const unsupported = specSettings.filter((s) => !s.supported).length;
    expect(doc).to.contain(`${specSettings.length} settings; ${unsupported} cannot be honoured on Node`);
  });

  describe('the JSON Schema files', () => {
    const schemaDir = join(repoRoot, 'generated/schemas');
    const expectedFiles = ROLES.flatMap((role) => [
      `canonical-${role}.schema.json`,
      ...DIALECTS.filter((d) => offered(d, role) && specSettings.some((s) => s.roles.includes(role) && s.dialects[d])).map((d) => `${d}-${role}.schema.json`),
    ]).sort();
    const load = (name: string): Doc => JSON.parse(readFileSync(join(schemaDir, name), 'utf8'));

    it('are one per dialect and role that has options, plus the canonical ones, each valid JSON', () => {
      expect(readdirSync(schemaDir).sort()).to.deep.equal(expectedFiles);
      for (const name of expectedFiles) {
        const schema = load(name);
        expect(schema.$schema, name).to.equal('http://json-schema.org/draft-07/schema#');
        expect(schema.type, name).to.equal('object');
        expect(schema.additionalProperties, name).to.equal(false);
        expect(schema.properties, name).to.be.an('object');
      }
    });

    it('have no required array anywhere: every option may be left out', () => {
      for (const name of expectedFiles) expect(hasKeyDeep(load(name), 'required'), name).to.equal(false);
    });

    it('canonical: every setting with a JSON form, its default where the spec has one (and none where it has none), its range', () => {
      for (const role of ROLES) {
        const schema = load(`canonical-${role}.schema.json`);
        const settings = specSettings.filter((s) => s.roles.includes(role) && hasJsonForm(s));
        expect(Object.keys(schema.properties).sort(), role).to.deep.equal(settings.map((s) => s.name).sort());
        for (const s of settings) {
          const p = schema.properties[s.name];
          const where = `canonical-${role} ${s.name}`;
          if (s.default === undefined || s.default === null) expect(p, where).to.not.have.property('default');
          else expect(p.default, where).to.deep.equal(s.default);
          expect(p.description, where).to.equal(s.description);
          if (s.type === 'integer') {
            expect(p.type, where).to.equal('integer');
            expect(p.minimum, where).to.equal(s.minimum);
            expect(p.maximum, where).to.equal(s.maximum);
          }
          if (s.type === 'enum') expect(p.enum, where).to.deep.equal(s.values);
          if (!s.supported) expect(p['x-unsupported'], where).to.equal(s.unsupportedReason);
          if (s.type === 'object') {
            const fields = p.anyOf.find((x: Doc) => x.type === 'object').properties;
            // Properties without a JSON form (the zlib option objects, type any) are left out, as settings are.
            const withForm = Object.entries<Doc>(s.properties ?? {}).filter(([, field]) => hasJsonForm(field));
            expect(Object.keys(fields).sort(), where).to.deep.equal(withForm.map(([key]) => key).sort());
            for (const [key, field] of withForm) expect(fields[key].default, `${where}.${key}`).to.deep.equal(field.default);
          }
        }
      }
    });

    it("dialects: every option under the dialect's name, with the dialect's default in its own unit, and its range scaled", () => {
      for (const dialect of DIALECTS) {
        for (const role of ROLES) {
          const settings = specSettings.filter((s) => offered(dialect, role) && s.roles.includes(role) && s.dialects[dialect] && hasJsonForm(s));
          if (!expectedFiles.includes(`${dialect}-${role}.schema.json`)) continue;
          const schema = load(`${dialect}-${role}.schema.json`);
          expect(Object.keys(schema.properties).sort(), `${dialect}-${role}`).to.deep.equal(settings.map((s) => s.dialects[dialect].name).sort());
          for (const s of settings) {
            const b = s.dialects[dialect];
            const p = schema.properties[b.name];
            const where = `${dialect}-${role} ${b.name}`;
            expect(p['x-wirestate-setting'], where).to.equal(s.name);
            const expected = expectedDialectDefault(s, dialect);
            if (expected === undefined) expect(p, where).to.not.have.property('default');
            else expect(p.default, where).to.deep.equal(expected);
            // Scaled into the dialect's unit and kept whole: the range of an integer option is integers.
            if (s.type === 'integer' && s.minimum !== undefined) expect(p.minimum, where).to.equal(Math.ceil(s.minimum / (b.scale ?? 1)));
            if (s.type === 'integer' && s.maximum !== undefined) expect(p.maximum, where).to.equal(Math.floor(s.maximum / (b.scale ?? 1)));
          }
        }
      }
    });

    it('exclude function- and any-typed settings (they have no JSON form)', () => {
      const noJson = specSettings.filter((s) => !hasJsonForm(s));
      expect(noJson.length, 'the spec has callbacks and live objects').to.be.greaterThan(0);
      const bySetting = new Map(specSettings.map((s) => [s.name, s]));
      for (const name of expectedFiles) {
        const schema = load(name);
        const [dialect, role] = name.replace('.schema.json', '').split('-') as [string, string];
        for (const [key, p] of Object.entries<Doc>(schema.properties)) {
          const setting = bySetting.get(dialect === 'canonical' ? key : p['x-wirestate-setting'])!;
          expect(setting, `${name} ${key}`).to.not.equal(undefined);
          expect(hasJsonForm(setting), `${name} has ${key}, a ${setting.type} setting`).to.equal(true);
        }
        for (const s of noJson.filter((x) => x.roles.includes(role))) {
          const key = dialect === 'canonical' ? s.name : s.dialects[dialect]?.name;
          if (key !== undefined) expect(schema.properties, `${name} must leave out ${s.name} (${s.type})`).to.not.have.property(key);
        }
      }
    });
  });
});
