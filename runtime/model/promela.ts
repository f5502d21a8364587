/**
 * `wirestate check --spin`: the same bounded product, exported to Promela and checked by SPIN.
 *
 * The encoding follows product.ts rule for rule, from the same moves (so the machines are stepped
 * by XState once, for both checkers):
 *   - one process per endpoint (`client`, `server`), a state machine over the machine's flattened
 *     configurations: a label per configuration, one guarded atomic alternative per move;
 *   - the channels are Promela chans `c2s`, `s2c` of the same capacity, of { kind, close code };
 *   - the flags of each endpoint (paused, discarding, closeSent, ended, destroyed, selfClose, fin)
 *     are global arrays indexed 0 (client) and 1 (server);
 *   - triggers that differ only by the close code they carry share one alternative, the code in a
 *     variable; an endpoint reads only items its peer can write (computed to a fixpoint);
 *   - every machine that is not in the product is a process of its own (`m_<id>`) over every event
 *     it declares, in a separate small model (for reachability only).
 *
 * The properties:
 *   - nothingSentAfterClose, onlySendableCloseCodes, everyStateReachable: each alternative writes a
 *     marker (`hit = N`, a hidden variable: no extra states) when it is taken, and when it sends a
 *     frame after a close; SPIN's report of unreached statements (spin -o3 keeps each statement
 *     apart) says which markers were never executed in the full state space;
 *   - noDeadlock: SPIN's invalid end states (a final configuration ends its process; anything else
 *     blocked is a deadlock; a move that would change nothing is not enabled, as in the explorer);
 *   - closingHandshakeTerminates: once a close frame was sent, either process may set `quiet`, after
 *     which only progress steps (deliveries, socket closes, resumes) are enabled, and
 *     `ltl terminates { [] (quiet -> <> (fin[0] && fin[1])) }` is checked for acceptance cycles
 *     (a blocked run stutters, so getting stuck short of final is a violation too);
 *   - closedReachableFromEverywhere (AG EF final) is a branching-time property that LTL cannot
 *     state: SPIN does not check it, and says so.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { selectProperties, type Status } from './check.js';
import type { LoneExploration } from './explore.js';
import type { SpecUnderCheck } from './inputs.js';
import { itemCode, itemKind, ProductModel, type Item, type Move, type Trigger } from './product.js';
import type { PropertySpec } from './properties.js';

const run = promisify(execFile);

type Marker =
  | { type: 'move'; process: string; machine: string; entered: string[]; badCodes: number[]; afterClose: string[] }
  | { type: 'afterClose'; process: string; kinds: string[] };

export interface PromelaModel {
  text: string;
  markers: Map<number, Marker>;
  /** Every state path active in an initial configuration, per machine. */
  initialPaths: Map<string, Set<string>>;
  processes: string[];
}

const KIND_MTYPE: Record<string, string> = { accept: 'ACCEPT', data: 'DATA', ping: 'PING', pong: 'PONG', close: 'CLOSE', fin: 'FIN', rst: 'RST' };
const FRAME_OR_ACCEPT = new Set(['accept', 'data', 'ping', 'pong', 'close']);
const mtypeOf = (item: Item) => `${KIND_MTYPE[itemKind(item)]},${itemCode(item) ?? 0}`;
const comment = (text: string) => `/* ${text.replace(/\*\//g, '* /')} */`;

const closeItem = (code: number): Item => (code === 0 ? 'close' : `close:${code}`);

/** The family of triggers a trigger belongs to when they differ only by a close code. */
function familyOf(trigger: Trigger, when: string, item: Item | undefined): string | undefined {
  if (when === 'receive') return itemKind(item!) === 'close' ? 'read close' : undefined;
  if (when !== 'always' || !trigger.event) return undefined;
  if (trigger.event.type === 'CLOSE_REQUESTED' || trigger.event.type === 'PROTOCOL_ERROR') return trigger.event.type;
  return undefined;
}

/** The close code a trigger carries: of the item read, of the event, or of the event's error (0: none). */
function codeCarriedBy(model: ProductModel, trigger: Trigger, item: Item | undefined): number {
  if (item !== undefined) return itemCode(item) ?? 0;
  const event = trigger.event as { code?: number; errorId?: string };
  if (typeof event.code === 'number') return event.code;
  if (typeof event.errorId === 'string') return model.errorCodes.get(event.errorId) ?? 0;
  return 0;
}

/** A move with the carried code abstracted, to see whether two codes' moves are the same. */
function normalize(move: Move, code: number): unknown {
  const placeholder = closeItem(code);
  return {
    next: move.next,
    choices: move.branch.choices,
    entered: move.branch.entered,
    ops: move.ops.map((op) => ('item' in op ? (op.item === placeholder ? 'close:$' : op.item) : op.effect)),
  };
}

/** The Promela text of the product (liveness: the termination check's encoding, without timers). */
export function toPromela(spec: SpecUnderCheck, model: ProductModel, options: { liveness: boolean }): PromelaModel {
  const markers = new Map<number, Marker>();
  const lines: string[] = [];
  const push = (line: string) => lines.push(line);
  const m = spec.properties.model;
  push(`/* The bounded product of spec/properties.yaml (machine "${m.machine}"), generated by wirestate check --spin from ${spec.source}. */`);
  push(`/* ${options.liveness ? 'Termination check: timers never fire; after `quiet`, only deliveries, socket closes and resumes.' : 'Safety checks: timers fire at any moment while armed.'} */`);
  push(`#define CAP ${model.capacity}`);
  push('mtype = { ACCEPT, DATA, PING, PONG, CLOSE, FIN, RST };');
  push('chan c2s = [CAP] of { mtype, short };');
  push('chan s2c = [CAP] of { mtype, short };');
  push('bool paused[2], discarding[2], closeSent[2], ended[2], destroyed[2], selfClose[2], fin[2];');
  if (options.liveness) push('bool quiet;');
  push('hidden int hit;');
  push('#define gone(p) (destroyed[p] || fin[p])');
  push('');

  const initialPaths = new Map<string, Set<string>>();
  const addInitial = (machine: string, paths: string[]) => {
    const set = initialPaths.get(machine) ?? new Set<string>();
    for (const p of paths) set.add(p);
    initialPaths.set(machine, set);
  };

  // Each endpoint's table: the configurations it can be in whatever its peer does, and the moves of
  // every trigger there. Then three static facts keep the encoding small without changing what it
  // can do: an endpoint only reads items its peer can write; it sees its own socket close only if
  // some move tears down without reaching a final configuration; it discards only in
  // configurations that follow a move that stopped reading.
  const codeCarried = (trigger: Trigger, item: Item | undefined) => codeCarriedBy(model, trigger, item);
  const table = (e: 0 | 1, receivable: Set<Item>) => {
    const configs = [...model.initialConfigs[e]];
    const index = new Map(configs.map((c, i) => [c, i]));
    const triggers = new Map<string, ReturnType<ProductModel['triggersOf']>>();
    const writes = new Set<Item>();
    let selfClose = false;
    const discardAfter: string[] = [];
    for (let i = 0; i < configs.length; i++) {
      const cfg = configs[i]!;
      if (model.isFinalConfig(e, cfg)) continue;
      const list = model.triggersOf(e, cfg).filter(({ when, item }) => when !== 'receive' || receivable.has(item!));
      triggers.set(cfg, list);
      for (const { trigger } of list) {
        for (const move of model.moves(e, cfg, trigger)) {
          if (move.trivial) continue;
          for (const op of move.ops) {
            if ('item' in op) writes.add(op.item);
            else if (op.effect === 'discard') discardAfter.push(move.next);
          }
          if (!move.nextFinal && move.ops.some((op) => 'item' in op && op.item === 'rst')) selfClose = true;
          if (!index.has(move.next)) {
            index.set(move.next, configs.length);
            configs.push(move.next);
          }
        }
      }
    }
    // Configurations reachable from one entered by stopping to read: only there can it be discarding.
    const discarding = new Set<string>(discardAfter);
    const queue = [...discarding];
    while (queue.length > 0) {
      const cfg = queue.pop()!;
      for (const { trigger } of triggers.get(cfg) ?? []) {
        for (const move of model.moves(e, cfg, trigger)) {
          if (!discarding.has(move.next)) {
            discarding.add(move.next);
            queue.push(move.next);
          }
        }
      }
    }
    return { configs, index, triggers, writes, selfClose, discarding };
  };
  // What each endpoint can write depends on what it can read from the other: grow both to a fixpoint.
  let tables = [table(0, new Set()), table(1, new Set())];
  for (;;) {
    const next = [table(0, tables[1]!.writes), table(1, tables[0]!.writes)];
    const same = next.every((t, e) => t.writes.size === tables[e]!.writes.size);
    tables = next;
    if (same) break;
  }

  for (const e of [0, 1] as const) {
    const proc = e === 0 ? 'client' : 'server';
    const p = 1 - e;
    const O = e === 0 ? 'c2s' : 's2c';
    const I = e === 0 ? 's2c' : 'c2s';
    const { configs, index, triggers: triggersOf, selfClose, discarding } = tables[e]!;
    const peerWrites = tables[p]!.writes;
    const needed = (cfg: string, when: string, item: Item | undefined) =>
      when === 'receive' ? peerWrites.has(item!) : when === 'selfClose' ? selfClose : when === 'discard' ? discarding.has(cfg) : true;
    for (const cfg of model.initialConfigs[e]) addInitial(model.machine.id, model.steppers[e].active(cfg));
    const label = (cfg: string) => `${proc}_${index.get(cfg)}`;

    push(`active proctype ${proc}() {`);
    push('  short rc; /* the close code a generic alternative carries; 0 between steps */');
    const starts = [...model.initialConfigs[e]];
    push(starts.length === 1 ? `  goto ${label(starts[0]!)};` : `  if ${starts.map((c) => `:: goto ${label(c)}`).join(' ')} fi;`);
    for (const cfg of configs) {
      push(`${label(cfg)}: ${comment(cfg)}`);
      if (model.isFinalConfig(e, cfg)) {
        push(`  goto ${proc}_end;`);
        continue;
      }
      const alternatives: string[] = [];
      // Triggers that differ only by the close code they carry (CLOSE_REQUESTED with each code,
      // PROTOCOL_ERROR with each error, a close frame read with each code) are written once, with
      // the code in a variable, wherever their moves are the same but for that code.
      const families = new Map<string, { trigger: Trigger; when: string; item?: Item; code: number }[]>();
      for (const entry of triggersOf.get(cfg)!) {
        if (!needed(cfg, entry.when, entry.item)) continue;
        const family = familyOf(entry.trigger, entry.when, entry.item);
        if (family) {
          const list = families.get(family) ?? [];
          list.push({ ...entry, code: codeCarried(entry.trigger, entry.item) });
          families.set(family, list);
          continue;
        }
        for (const move of model.moves(e, cfg, entry.trigger)) {
          const alt = alternative(cfg, move, entry.trigger, entry.when, entry.item);
          if (alt) alternatives.push(alt);
        }
      }
      for (const variants of families.values()) {
        const normalized = variants.map((v) => JSON.stringify(model.moves(e, cfg, v.trigger).map((move) => normalize(move, v.code))));
        if (variants.length > 1 && normalized.every((n) => n === normalized[0])) {
          const first = variants[0]!;
          for (const move of model.moves(e, cfg, first.trigger)) {
            const alt = alternative(cfg, move, first.trigger, first.when, first.item, { codes: variants.map((v) => v.code), placeholder: closeItem(first.code) });
            if (alt) alternatives.push(alt);
          }
        } else {
          for (const v of variants) {
            for (const move of model.moves(e, cfg, v.trigger)) {
              const alt = alternative(cfg, move, v.trigger, v.when, v.item);
              if (alt) alternatives.push(alt);
            }
          }
        }
      }
      if (options.liveness) alternatives.push(`:: atomic { !quiet && (closeSent[0] || closeSent[1]) -> quiet = true; goto ${label(cfg)} }`);
      push('  if');
      for (const a of alternatives) push(`  ${a}`);
      if (alternatives.length === 0) push('  :: false');
      push('  fi;');
    }
    push(`${proc}_end: skip`);
    push('}');
    push('');

    /**
     * One guarded atomic alternative for a move. With `generic`, the move stands for the same move
     * of every code in `codes`: the code is chosen (or read) into `rc`, and the items equal to
     * `placeholder` carry `rc`.
     */
    function alternative(cfg: string, move: Move, trigger: Trigger, when: string, item: Item | undefined, generic?: { codes: number[]; placeholder: Item; unused?: boolean }): string | undefined {
      if (move.trivial) return undefined;
      const n = move.items.length;
      const { data, ping, pong } = move.limited;
      if (n > model.capacity || data > 1 || ping > 1 || pong > 1) return undefined; // always pruned by the bound
      const guard: string[] = [];
      const quietable = options.liveness && !trigger.progress;
      if (when === 'always') {
        if (quietable) guard.push('!quiet');
      } else if (when === 'data') {
        guard.push(`!destroyed[${e}] && !ended[${e}] && !gone(${p}) && !(${O}??[DATA,0])`);
        if (quietable) guard.push('!quiet');
      } else if (when === 'receive') {
        guard.push(`!paused[${e}] && !destroyed[${e}]`);
        if (FRAME_OR_ACCEPT.has(itemKind(item!))) guard.push(`!discarding[${e}]`);
        if (generic) guard.push(`(${generic.codes.map((c) => `${I}?[CLOSE,${c}]`).join(' || ')})`);
        else guard.push(`${I}?[${mtypeOf(item!)}]`);
      } else if (when === 'discard') {
        guard.push(`!paused[${e}] && !destroyed[${e}] && discarding[${e}] && nempty(${I}) && !(${I}?[FIN,0]) && !(${I}?[RST,0])`);
      } else if (when === 'selfClose') {
        guard.push(`selfClose[${e}]`);
      }
      if (n > 0) guard.push(`len(${O}) + ${n} <= CAP`);
      // A move that may leave everything as it was is enabled only when it changes something (as
      // the explorer drops steps that change nothing).
      if (move.next === cfg && !trigger.consume && !trigger.clearSelfClose) guard.push(changes(move));
      if (data) guard.push(`!(${O}??[DATA,0])`);
      if (ping) guard.push(`!(${O}??[PING,0])`);
      if (pong) guard.push(`!(${O}??[PONG,0])`);

      // Markers first (statements of their own, for the unreached-code report), then the effect
      // of the move as one d_step: one transition in pan, whatever its length.
      const markersOf: string[] = [];
      // A generic move that writes no item carrying the code does not need the code at all.
      if (generic && !move.ops.some((op) => 'item' in op && op.item === generic!.placeholder)) {
        generic = { ...generic, unused: true };
      }
      const carries = (i: Item) => generic !== undefined && !generic.unused && i === generic.placeholder;
      if (generic && when === 'receive') markersOf.push(generic.unused ? `${I}?CLOSE,_` : `${I}?CLOSE,rc`);
      else if (generic && !generic.unused) markersOf.push(`if ${generic.codes.map((c) => `:: rc = ${c}`).join(' ')} fi`);
      const id = markers.size + 1;
      const staticBad = generic ? move.frames.filter((f) => !carries(f)).map(itemCode).filter((c): c is number => c !== undefined && !spec.protocol.isSendable(c)) : move.badCodes;
      markers.set(id, { type: 'move', process: proc, machine: model.machine.id, entered: move.branch.entered, badCodes: staticBad, afterClose: move.afterCloseWithin });
      markersOf.push(`hit = ${id}`);
      if (generic && !generic.unused && move.frames.some(carries)) {
        const bad = generic.codes.filter((c) => c !== 0 && !spec.protocol.isSendable(c));
        const options = bad.map((c) => {
          const marker = markers.size + 1;
          markers.set(marker, { type: 'move', process: proc, machine: model.machine.id, entered: [], badCodes: [c], afterClose: [] });
          return `:: rc == ${c} -> hit = ${marker}`;
        });
        if (options.length > 0) markersOf.push(`if ${options.join(' ')} :: else -> skip fi`);
      }
      if (move.frameKinds.length > 0) {
        const after = markers.size + 1;
        markers.set(after, { type: 'afterClose', process: proc, kinds: move.frameKinds });
        markersOf.push(`if :: closeSent[${e}] -> hit = ${after} :: else -> skip fi`);
      }
      const body: string[] = [];
      if (when === 'receive' && !generic) body.push(`${I}?${mtypeOf(item!)}`);
      else if (when === 'discard') body.push(`${I}?_,_`);
      if (move.sendsClose) body.push(`closeSent[${e}] = true`);
      if (trigger.clearSelfClose) body.push(`selfClose[${e}] = false`);
      let tornDown = false;
      for (const op of move.ops) {
        if ('item' in op) {
          const rst = op.item === 'rst';
          const sent = carries(op.item) ? 'CLOSE,rc' : mtypeOf(op.item);
          body.push(`if :: !destroyed[${e}] && !gone(${p})${rst ? '' : ` && !ended[${e}]`} -> ${O}!${sent} :: else -> skip fi`);
          if (op.item === 'fin') body.push(`ended[${e}] = true`);
          if (rst) {
            tornDown = true;
            body.push(`destroyed[${e}] = true`, clearIn());
          }
        } else if (op.effect === 'pause') body.push(`paused[${e}] = true`);
        else if (op.effect === 'resume') body.push(`paused[${e}] = false`);
        else body.push(`discarding[${e}] = true`);
      }
      let target: string;
      if (move.nextFinal) {
        body.push(clearIn(), `paused[${e}] = false; discarding[${e}] = false; ended[${e}] = false; destroyed[${e}] = false; selfClose[${e}] = false`, `fin[${e}] = true`);
        target = `${proc}_end`;
      } else {
        if (tornDown) body.push(`selfClose[${e}] = true`);
        target = label(move.next);
      }
      if (generic && !generic.unused) body.push('rc = 0');
      const effect = body.length > 0 ? `d_step { ${body.join('; ')} }; ` : '';
      const what = generic ? `${trigger.label.replace(/-?\d{4}|\(no code\)|\w+ \(\d{4}\)/, 'rc')} for rc in ${generic.codes.join(', ')}` : trigger.label;
      return `:: atomic { ${guard.join(' && ') || 'true'} -> ${markersOf.join('; ')}; ${effect}goto ${target} } ${comment(`${what}${move.branch.choices.length ? ` [${move.branch.choices.join(' ')}]` : ''} → ${move.next}`)}`;
    }
    /** When does a move that keeps the configuration change the state? */
    function changes(move: Move): string {
      const any: string[] = [];
      if (move.sendsClose) any.push(`!closeSent[${e}]`);
      let paused: boolean | undefined;
      for (const op of move.ops) {
        if ('item' in op) {
          const rst = op.item === 'rst';
          any.push(`(!destroyed[${e}] && !gone(${p})${rst ? '' : ` && !ended[${e}]`})`);
          if (op.item === 'fin') any.push(`!ended[${e}]`);
          if (rst) any.push(`!destroyed[${e}]`);
        } else if (op.effect === 'pause') paused = true;
        else if (op.effect === 'resume') paused = false;
        else any.push(`!discarding[${e}]`);
      }
      if (paused !== undefined) any.push(paused ? `!paused[${e}]` : `paused[${e}]`);
      return any.length > 0 ? `(${[...new Set(any)].join(' || ')})` : 'false';
    }
    function clearIn(): string {
      return `do :: nempty(${I}) -> ${I}?_,_ :: empty(${I}) -> break od`;
    }
  }

  if (options.liveness) push('ltl terminates { [] (quiet -> <> (fin[0] && fin[1])) }');
  return { text: lines.join('\n') + '\n', markers, initialPaths, processes: ['client', 'server'] };
}


/** The machines outside the product, each a process of its own over every event it declares (for reachability). */
export function lonePromela(spec: SpecUnderCheck, machines: LoneExploration[]): PromelaModel {
  const markers = new Map<number, Marker>();
  const lines: string[] = [];
  const push = (line: string) => lines.push(line);
  const initialPaths = new Map<string, Set<string>>();
  push(`/* The machines of ${spec.source} outside the product, each on its own, generated by wirestate check --spin. */`);
  push('hidden int hit;');
  push('');
  for (const alone of machines) {
    const proc = `m_${alone.machine.id}`;
    const index = new Map(alone.configs.map((c, i) => [c, i]));
    const label = (cfg: string) => `${proc}_${index.get(cfg)}`;
    initialPaths.set(alone.machine.id, new Set(alone.initial.flatMap((cfg) => alone.stepper.active(cfg))));
    push(`active proctype ${proc}() {`);
    push(alone.initial.length === 1 ? `  goto ${label(alone.initial[0]!)};` : `  if ${alone.initial.map((c) => `:: goto ${label(c)}`).join(' ')} fi;`);
    for (const cfg of alone.configs) {
      push(`${label(cfg)}: ${comment(cfg)}`);
      if (alone.stepper.isFinal(cfg)) {
        push(`  goto ${proc}_end;`);
        continue;
      }
      push('  if');
      for (const step of alone.steps.filter((s) => s.from === cfg)) {
        const id = markers.size + 1;
        markers.set(id, { type: 'move', process: proc, machine: alone.machine.id, entered: step.branch.entered, badCodes: [], afterClose: [] });
        push(`  :: atomic { skip -> hit = ${id}; goto ${label(step.branch.next)} } ${comment(`${step.label}${step.branch.choices.length ? ` [${step.branch.choices.join(' ')}]` : ''} → ${step.branch.next}`)}`);
      }
      if (!alone.steps.some((s) => s.from === cfg)) push('  :: false');
      push('  fi;');
    }
    push(`${proc}_end: skip`);
    push('}');
    push('');
  }
  return { text: lines.join('\n') + '\n', markers, initialPaths, processes: machines.map((a) => `m_${a.machine.id}`) };
}

// ---------------------------------------------------------------- running SPIN

export interface PanRun {
  what: string;
  states: number;
  transitions: number;
  depth: number;
  errors: number;
  /** The first error pan reported (`invalid end state`, `acceptance cycle`…). */
  error: string | undefined;
  seconds: number;
}

export interface SpinVerdict {
  name: string;
  status: Status | 'not-checked';
  summary: string;
}

export interface SpinReport {
  version: string;
  runs: PanRun[];
  verdicts: SpinVerdict[];
  /** The generated Promela, by build. */
  models: { what: string; text: string }[];
}

export async function spinAvailable(): Promise<string | undefined> {
  try {
    const { stdout } = await run('spin', ['-V']);
    return stdout.trim();
  } catch {
    return undefined;
  }
}

function parsePan(what: string, output: string, seconds: number): PanRun {
  const num = (re: RegExp) => Number(re.exec(output)?.[1] ?? NaN);
  const error = /pan:\d+: (.*?)(?: \(at depth \d+\))?$/m.exec(output)?.[1] ?? (/error: (.*)$/m.exec(output)?.[1]);
  if (/error: max search depth too small/.test(output)) throw new Error(`${what}: SPIN's search depth limit was reached`);
  return {
    what,
    states: num(/(\d+) states, stored/),
    transitions: num(/(\d+) transitions \(= /),
    depth: num(/depth reached (\d+)/),
    errors: num(/errors: (\d+)/),
    error,
    seconds,
  };
}

/**
 * One build and its pan runs, as a single shell pipeline in a folder of its own (pan.c has a fixed
 * name): it starts at once and runs to the end without this process, so builds run side by side
 * and beside the explorer. `runs` are pan's arguments, run in order; a run marked `ifErrors` runs
 * only when the previous one reported errors.
 */
function spinJob(root: string, name: string, text: string, liveness: boolean, runs: { args: string[]; what: string; ifErrors?: boolean }[]): Promise<{ run: PanRun; output: string }[]> {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'model.pml'), text);
  // -o3: keep every statement apart, so that the unreached-code report names each marker.
  const flags = ['-O0', '-w', '-DNOREDUCE', '-DMEMLIM=4096', ...(liveness ? [] : ['-DSAFETY'])].join(' ');
  const script = [
    'spin -o3 -a model.pml > spin.log 2>&1 || { cat spin.log >&2; exit 1; }',
    `gcc ${flags} -o pan pan.c > gcc.log 2>&1 || { cat gcc.log >&2; exit 1; }`,
    ...runs.map((r, i) => {
      const command = `{ s=$(date +%s%N); ./pan -m10000000 -w22 ${r.args.join(' ')} > run${i}.txt 2>&1; echo $(( ($(date +%s%N) - s) / 1000000 )) > run${i}.ms; }`;
      return r.ifErrors ? `if ! grep -q 'errors: 0' run${i - 1}.txt; then ${command}; fi` : command;
    }),
  ].join('\n');
  return run('sh', ['-c', script], { cwd: dir, maxBuffer: 64 << 20 }).then(
    () =>
      runs.flatMap((r, i) => {
        let output: string;
        try {
          output = readFileSync(join(dir, `run${i}.txt`), 'utf8');
        } catch {
          return []; // a conditional run that was not needed
        }
        const ms = Number(readFileSync(join(dir, `run${i}.ms`), 'utf8'));
        return [{ run: parsePan(r.what, output, ms / 1000), output }];
      }),
    (error: { stderr?: string; message: string }) => {
      throw new Error(`SPIN could not check ${name}: ${error.stderr?.trim() || error.message}`);
    },
  );
}

/** Statements of `hit = N` that pan reports as never executed. */
function unreachedMarkers(output: string): Set<number> {
  const out = new Set<number>();
  for (const match of output.matchAll(/"hit = (\d+)"/g)) out.add(Number(match[1]));
  return out;
}

/**
 * Checks the properties with SPIN and returns its verdicts. Every build the properties need is
 * generated and started before the first await, so that SPIN and gcc work while the caller explores.
 */
export async function checkWithSpin(
  spec: SpecUnderCheck,
  alone: (id: string) => LoneExploration,
  options: { keep?: string; only?: readonly string[]; version: string },
): Promise<SpinReport> {
  const { version } = options;
  const dir = options.keep ?? mkdtempSync(join(tmpdir(), 'wirestate-spin-'));
  const runs: PanRun[] = [];
  const models: { what: string; text: string }[] = [];
  const properties = selectProperties(spec, options.only);
  const executedOf = (model: PromelaModel, output: string) => {
    const unreached = unreachedMarkers(output);
    return new Set([...model.markers.keys()].filter((id) => !unreached.has(id)));
  };
  type Markers = { model: PromelaModel; executed: Set<number> };
  const safetyJobs = new Map<boolean, Promise<Markers & { deadlock: PanRun }>>();
  // One full search finds invalid end states and, when there is none, which markers ran.
  const safety = (timers: boolean) => {
    let job = safetyJobs.get(timers);
    if (!job) {
      const model = toPromela(spec, new ProductModel(spec, { timers }), { liveness: false });
      const name = `safety_timers_${timers ? 'on' : 'off'}`;
      models.push({ what: name, text: model.text });
      job = spinJob(dir, name, model.text, false, [
        { args: [], what: `${name}: product, invalid end states and markers` },
        { args: ['-E'], what: `${name}: product, markers (invalid end states ignored)`, ifErrors: true },
      ]).then((done) => {
        runs.push(...done.map((d) => d.run));
        return { model, executed: executedOf(model, done[done.length - 1]!.output), deadlock: done[0]!.run };
      });
      safetyJobs.set(timers, job);
    }
    return job;
  };
  let loneJob: Promise<Markers> | undefined;
  const lone = () => {
    if (!loneJob) {
      const machines = spec.machines.filter((m) => m.id !== spec.properties.model.machine).map((m) => alone(m.id));
      const model = lonePromela(spec, machines);
      if (machines.length === 0) loneJob = Promise.resolve({ model, executed: new Set<number>() });
      else {
        models.push({ what: 'machines_alone', text: model.text });
        loneJob = spinJob(dir, 'machines_alone', model.text, false, [{ args: ['-E'], what: `machines alone (${machines.map((m) => m.machine.id).join(', ')}): markers` }]).then(
          (done) => {
            runs.push(done[0]!.run);
            return { model, executed: executedOf(model, done[0]!.output) };
          },
        );
      }
    }
    return loneJob;
  };
  const livenessJob = (name: string, timers: boolean) => {
    const model = toPromela(spec, new ProductModel(spec, { timers }), { liveness: true });
    const buildName = `liveness_${name}`;
    models.push({ what: buildName, text: model.text });
    return spinJob(dir, buildName, model.text, true, [{ args: ['-a'], what: `${buildName}: acceptance cycles` }]).then((done) => {
      runs.push(done[0]!.run);
      return done[0]!.run;
    });
  };
  // Start every build now (synchronously), then wait.
  const started = new Map<string, Promise<PanRun>>();
  for (const property of properties) {
    const timers = property.timers ?? true;
    if (property.kind === 'eventually-final') started.set(property.name, livenessJob(property.name, timers));
    else if (property.kind === 'all-states-reachable') {
      const ids = property.machines === 'all' ? spec.machines.map((m) => m.id) : property.machines;
      if (ids.includes(spec.properties.model.machine)) void safety(timers);
      if (ids.some((id) => id !== spec.properties.model.machine)) void lone();
    } else if (property.kind !== 'final-reachable') void safety(timers);
  }
  const verdicts: SpinVerdict[] = [];
  try {
    verdicts.push(...(await Promise.all(properties.map((property) => decide(property)))));
    runs.sort((a, b) => (a.what < b.what ? -1 : 1));
    models.sort((a, b) => (a.what < b.what ? -1 : 1));
    async function decide(property: PropertySpec): Promise<SpinVerdict> {
      const timers = property.timers ?? true;
      const name = property.name;
      switch (property.kind) {
        case 'never-after': {
          const { model, executed } = await safety(timers);
          const never = new Set<string>(property.never);
          for (const id of executed) {
            const marker = model.markers.get(id)!;
            const kinds = marker.type === 'afterClose' ? marker.kinds : marker.afterClose;
            const bad = kinds.filter((k) => never.has(k));
            if (bad.length > 0) return { name, status: 'violated', summary: `${marker.process} sends ${bad.join(' and ')} after its close frame` };
          }
          return { name, status: 'holds', summary: 'no frame-after-close marker is reachable' };
        }
        case 'invariant': {
          const { model, executed } = await safety(timers);
          for (const id of executed) {
            const marker = model.markers.get(id)!;
            if (marker.type === 'move' && marker.badCodes.length > 0) return { name, status: 'violated', summary: `${marker.process} puts close code ${marker.badCodes.join(', ')} on the wire` };
          }
          return { name, status: 'holds', summary: 'no unsendable-code marker is reachable' };
        }
        case 'no-deadlock': {
          const { deadlock } = await safety(timers);
          return deadlock.errors > 0
            ? { name, status: 'violated', summary: `pan: ${deadlock.error ?? 'error'}` }
            : { name, status: 'holds', summary: 'no invalid end state' };
        }
        case 'all-states-reachable': {
          const ids = property.machines === 'all' ? spec.machines.map((m) => m.id) : property.machines;
          const entered = new Map<string, Set<string>>();
          const collect = ({ model, executed }: { model: PromelaModel; executed: Set<number> }) => {
            for (const [machine, paths] of model.initialPaths) for (const p of paths) entered.set(machine, (entered.get(machine) ?? new Set()).add(p));
            for (const id of executed) {
              const marker = model.markers.get(id)!;
              if (marker.type !== 'move') continue;
              const set = entered.get(marker.machine) ?? new Set<string>();
              for (const p of marker.entered) set.add(p);
              entered.set(marker.machine, set);
            }
          };
          if (ids.includes(spec.properties.model.machine)) collect(await safety(timers));
          if (ids.some((id) => id !== spec.properties.model.machine)) collect(await lone());
          const missing = ids.flatMap((id) => {
            const states = spec.machines.find((m) => m.id === id)!.states.map((s) => s.path).filter((s) => !entered.get(id)?.has(s));
            return states.length > 0 ? [`${id}: ${states.join(', ')} never entered`] : [];
          });
          return missing.length > 0 ? { name, status: 'violated', summary: missing.join('; ') } : { name, status: 'holds', summary: 'every state is entered' };
        }
        case 'eventually-final': {
          const result = await started.get(name)!;
          return result.errors > 0
            ? { name, status: 'violated', summary: `pan: ${result.error ?? 'acceptance cycle'} (ltl terminates)` }
            : { name, status: 'holds', summary: 'ltl terminates: no acceptance cycle' };
        }
        case 'final-reachable':
          return { name, status: 'not-checked', summary: 'AG EF (from every state some path) is branching-time: LTL cannot state it, so SPIN does not check it' };
      }
    }
  } finally {
    // Wait for every build (one may still run after another failed) before removing the folder.
    await Promise.allSettled([...safetyJobs.values(), ...(loneJob ? [loneJob] : []), ...started.values()]);
    if (!options.keep) rmSync(dir, { recursive: true, force: true });
  }
  return { version, runs, verdicts, models };
}
