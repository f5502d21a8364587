/**
 * The bounded product the checker explores: a client and a server running the same connection
 * machine, and two FIFO channels between them. Every step is one endpoint taking one event — from
 * its application, from a timer, or from the head of its incoming channel — and performing what the
 * machine's transition asks for. What goes on the wire is read from the returned actions and the
 * `wire` each action declares (close / ping / pong / end / destroy); a close frame carries the code
 * the action's parameters give (`sendCloseWith`), else the code of the triggering event (`code` of
 * CLOSE_REQUESTED / CLOSE_RECEIVED: sendClose and echoClose), else the close code of the
 * event's error (`errorId` of PROTOCOL_ERROR / HANDSHAKE_FAILED, from spec/errors.yaml), else none.
 *
 * Buffering assumptions (also in spec/properties.yaml and printed by `wirestate check`):
 *   - a channel holds at most `channelCapacity` items: frames (data, ping, pong, close+code), the
 *     101 response, FIN (an `end` action) and the teardown (a `destroy` action); a step that would
 *     overflow its outgoing channel is not taken (counted as "pruned by the bound");
 *   - at most one data message, one ping and one pong are in flight per direction;
 *   - after FIN an endpoint transmits nothing but its teardown; after the teardown nothing; items
 *     sent to an endpoint that is final or torn down are lost, and it reads nothing more;
 *   - the teardown reaches the peer after what was in flight, as SOCKET_CLOSED; the endpoint that
 *     tore down also sees SOCKET_CLOSED (a step of its own) if its machine is not final yet;
 *   - a paused endpoint reads nothing, not even FIN; one that stopped reading discards frames but
 *     still sees FIN and the teardown;
 *   - a ping read while OPEN is answered by the runtime's automatic pong (section 5.5.2);
 *   - the server's HANDSHAKE_SUCCEEDED writes the 101 response, which the client reads as
 *     HANDSHAKE_SUCCEEDED, or as HANDSHAKE_FAILED when it rejects it; the server's
 *     HANDSHAKE_FAILED writes nothing the client reads as a frame;
 *   - timers, when enabled, fire at any moment while armed.
 *
 * Each (endpoint, configuration, trigger) is turned into "moves" once — the machine's branches with
 * their outputs, frames and effects worked out — and the exploration only applies them. promela.ts
 * encodes the same moves and the same rules for SPIN; a test checks that the two verdicts agree.
 */
import type { EventObject as XEventObject } from 'xstate';

/** An event with its payload fields. */
export type EventObject = XEventObject & Record<string, unknown>;
import type { MachineUnderCheck, SpecUnderCheck } from './inputs.js';
import type { ModelSpecT } from './properties.js';
import { describeTimer, Stepper, type Branch } from './stepper.js';

export const ROLES = ['client', 'server'] as const;
export type Role = (typeof ROLES)[number];

/** A channel item: `accept` (101), `data`, `ping`, `pong`, `close` / `close:<code>`, `fin`, `rst` (teardown). */
export type Item = string;

export interface Side {
  cfg: string;
  paused: boolean;
  discarding: boolean;
  closeSent: boolean;
  ended: boolean;
  destroyed: boolean;
  selfClose: boolean;
}

export interface ProductState {
  sides: [Side, Side];
  /** Channel contents, one character per item (see ProductModel.item): ch[0] client → server, ch[1] server → client. */
  ch: [string, string];
}

export type StepSource = 'application' | 'timer' | 'channel' | 'socket';

export interface Trigger {
  key: string;
  label: string;
  source: StepSource;
  /** A step the termination property may rely on: a delivery, a socket close, a paused endpoint resuming. */
  progress: boolean;
  /** Takes the head of the incoming channel. */
  consume: boolean;
  clearSelfClose: boolean;
  /** Items written before the machine's (the 101 response, a data message, the automatic pong). */
  pre: Item[];
  /** The machine event, or undefined when the machine is not involved. */
  event: EventObject | undefined;
}

export type Op = { item: Item } | { effect: 'pause' | 'resume' | 'discard' };

export interface Move {
  trigger: Trigger;
  branch: Branch;
  next: string;
  nextFinal: boolean;
  ops: Op[];
  /** The items written, encoded. */
  items: string;
  limited: { data: number; ping: number; pong: number };
  frames: Item[];
  frameKinds: string[];
  /** Frame kinds written after a close frame within this move. */
  afterCloseWithin: string[];
  sendsClose: boolean;
  badCodes: number[];
  /** Nothing happens at all (same configuration, nothing written, no effect, nothing consumed). */
  trivial: boolean;
}

export interface Successor {
  actor: 0 | 1;
  move: Move;
  to: ProductState;
}

export const FRAME_KINDS = new Set(['data', 'ping', 'pong', 'close']);
export const itemKind = (item: Item): string => (item.startsWith('close') ? 'close' : item);
export const itemCode = (item: Item): number | undefined => (item.startsWith('close:') ? Number(item.slice(6)) : undefined);

export interface ProductOptions {
  timers: boolean;
}

export function closeCodeOf(action: { params: Record<string, unknown> | undefined }, event: EventObject | undefined, errors: Map<string, number>): number | undefined {
  if (action.params && typeof action.params.code === 'number') return action.params.code;
  const e = (event ?? {}) as { code?: unknown; errorId?: unknown };
  if (typeof e.code === 'number') return e.code;
  if (typeof e.errorId === 'string') return errors.get(e.errorId);
  return undefined;
}

/** One error per distinct close code among the errors of the given stages (the first by id, so generated and YAML tables agree). */
export function representativeErrors(spec: SpecUnderCheck, stages: readonly string[]): { id: string; closeCode: number }[] {
  const seen = new Set<number>();
  const out: { id: string; closeCode: number }[] = [];
  const byId = [...spec.protocol.errors].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const error of byId) {
    if (!stages.includes(error.stage) || seen.has(error.closeCode)) continue;
    seen.add(error.closeCode);
    out.push({ id: error.id, closeCode: error.closeCode });
  }
  return out;
}

export const REQUIRED_EVENTS = [
  'HANDSHAKE_SUCCEEDED', 'HANDSHAKE_FAILED', 'CLOSE_REQUESTED', 'TERMINATE_REQUESTED', 'PAUSE_REQUESTED', 'RESUME_REQUESTED',
  'CLOSE_RECEIVED', 'PROTOCOL_ERROR', 'PONG_RECEIVED', 'SOCKET_ENDED', 'SOCKET_CLOSED',
];

const sharedSteppers = new WeakMap<SpecUnderCheck, [Stepper, Stepper]>();

const FIXED_CHARS: Record<string, string> = { accept: 'A', data: 'd', ping: 'p', pong: 'q', fin: 'f', rst: 'r', close: 'c' };
const CODE_CHARS = '0123456789BCDEFGHIJKLMNOPQRSTUVWXYZ';

export class ProductModel {
  readonly machine: MachineUnderCheck;
  readonly steppers: [Stepper, Stepper];
  readonly model: ModelSpecT;
  readonly capacity: number;
  readonly errorCodes: Map<string, number>;
  readonly effects: { pause: string; resume: string; discard: string };
  readonly effectNames: Set<string>;
  readonly applicationTriggers: Trigger[];
  readonly handshakeTriggers: Trigger[];
  readonly dataTrigger: Trigger;
  readonly selfCloseTrigger: Trigger;
  readonly initialConfigs: [Set<string>, Set<string>];
  /** Steps not taken because they would overflow a channel, or exceed one data/ping/pong in flight. */
  pruned = 0;
  private readonly moveCache: [Map<Trigger, Map<string, Move[]>>, Map<Trigger, Map<string, Move[]>>] = [new Map(), new Map()];
  private readonly timerTriggers = new Map<string, Trigger>();
  private readonly receiveTriggers = new Map<string, Trigger[]>();
  private readonly discardTrigger: Trigger;
  private readonly toChar = new Map<Item, string>(Object.entries(FIXED_CHARS));
  private readonly fromChar = new Map<string, Item>(Object.entries(FIXED_CHARS).map(([k, v]) => [v, k]));
  private readonly cfgIds: [Map<string, number>, Map<string, number>] = [new Map(), new Map()];
  private readonly finalCache: [Map<string, boolean>, Map<string, boolean>] = [new Map(), new Map()];
  private readonly openCache: [Map<string, boolean>, Map<string, boolean>] = [new Map(), new Map()];

  constructor(
    readonly spec: SpecUnderCheck,
    readonly options: ProductOptions,
  ) {
    this.model = spec.properties.model;
    const machine = spec.machines.find((m) => m.id === this.model.machine);
    if (!machine) throw new Error(`no machine "${this.model.machine}" in the spec`);
    this.machine = machine;
    const missing = REQUIRED_EVENTS.filter((e) => !(e in machine.events));
    if (missing.length > 0) throw new Error(`machine ${machine.id} must declare the events the model drives it with; missing: ${missing.join(', ')}`);
    this.capacity = this.model.channelCapacity;
    this.errorCodes = new Map(spec.protocol.errors.map((e) => [e.id, e.closeCode]));
    this.effects = this.model.reading;
    this.effectNames = new Set(Object.values(this.effects));
    const input = (role: Role) => ({ [machine.roleField ?? 'role']: role, host: null });
    // Steppers are shared by every model of the same spec: XState is asked once per (configuration, event).
    let steppers = sharedSteppers.get(spec);
    if (!steppers) sharedSteppers.set(spec, (steppers = [new Stepper(machine, input('client')), new Stepper(machine, input('server'))]));
    this.steppers = steppers;
    this.initialConfigs = [new Set(this.steppers[0].initial().map((b) => b.next)), new Set(this.steppers[1].initial().map((b) => b.next))];

    const trigger = (t: Partial<Trigger> & Pick<Trigger, 'key' | 'label' | 'source'>): Trigger => ({
      progress: false,
      consume: false,
      clearSelfClose: false,
      pre: [],
      event: undefined,
      ...t,
    });
    const application = (event: EventObject, label: string) => trigger({ key: `app ${label}`, label, source: 'application', event, progress: event.type === 'RESUME_REQUESTED' });
    const closes = this.model.applicationCloseCodes.map((code) =>
      code === 'none' ? application({ type: 'CLOSE_REQUESTED', reason: '' }, 'CLOSE_REQUESTED (no code)') : application({ type: 'CLOSE_REQUESTED', code, reason: '' }, `CLOSE_REQUESTED ${code}`),
    );
    const protocolErrors = representativeErrors(spec, this.model.protocolErrorStages).map((e) =>
      application({ type: 'PROTOCOL_ERROR', errorId: e.id }, `PROTOCOL_ERROR ${e.id} (${e.closeCode})`),
    );
    this.applicationTriggers = [
      ...closes,
      application({ type: 'TERMINATE_REQUESTED' }, 'TERMINATE_REQUESTED'),
      application({ type: 'PAUSE_REQUESTED' }, 'PAUSE_REQUESTED'),
      application({ type: 'RESUME_REQUESTED' }, 'RESUME_REQUESTED'),
      ...protocolErrors,
    ];
    const handshakeErrors = representativeErrors(spec, this.model.handshakeErrorStages);
    this.handshakeTriggers = [
      trigger({ key: 'handshake ok', label: 'HANDSHAKE_SUCCEEDED (writes the 101 response)', source: 'application', event: { type: 'HANDSHAKE_SUCCEEDED' }, pre: ['accept'] }),
      ...handshakeErrors.map((e) => application({ type: 'HANDSHAKE_FAILED', errorId: e.id }, `HANDSHAKE_FAILED ${e.id} (${e.closeCode})`)),
    ];
    this.dataTrigger = trigger({ key: 'send data', label: 'send a data message', source: 'application', pre: ['data'] });
    this.selfCloseTrigger = trigger({ key: 'self close', label: 'own socket closed → SOCKET_CLOSED', source: 'socket', progress: true, clearSelfClose: true, event: { type: 'SOCKET_CLOSED' } });
    this.discardTrigger = trigger({ key: 'discard', label: 'discard what arrives', source: 'channel', progress: true, consume: true });
    const receive = (item: Item, label: string, event: EventObject | undefined, pre: Item[] = []) =>
      trigger({ key: `receive ${item} ${label}`, label, source: 'channel', progress: true, consume: true, event, pre });
    this.receiveTriggers.set('accept', [
      receive('accept', 'read the 101 response → HANDSHAKE_SUCCEEDED', { type: 'HANDSHAKE_SUCCEEDED' }),
      ...handshakeErrors.map((e) => receive('accept', `reject the 101 response → HANDSHAKE_FAILED ${e.id} (${e.closeCode})`, { type: 'HANDSHAKE_FAILED', errorId: e.id })),
    ]);
    this.receiveTriggers.set('data', [receive('data', 'read a data message', undefined)]);
    this.receiveTriggers.set('ping', [receive('ping', 'read a ping', undefined)]);
    this.receiveTriggers.set('ping+pong', [receive('ping', 'read a ping, answer pong', undefined, ['pong'])]);
    this.receiveTriggers.set('pong', [receive('pong', 'read a pong → PONG_RECEIVED', { type: 'PONG_RECEIVED' })]);
    this.receiveTriggers.set('fin', [receive('fin', 'read FIN → SOCKET_ENDED', { type: 'SOCKET_ENDED' })]);
    this.receiveTriggers.set('rst', [receive('rst', 'peer tore down TCP → SOCKET_CLOSED', { type: 'SOCKET_CLOSED' })]);
    for (const code of [undefined, ...this.closeCodes()]) {
      const item = code === undefined ? 'close' : `close:${code}`;
      const event = code === undefined ? { type: 'CLOSE_RECEIVED', reason: '' } : { type: 'CLOSE_RECEIVED', code, reason: '' };
      this.receiveTriggers.set(item, [receive(item, `read close ${code ?? '(no code)'} → CLOSE_RECEIVED`, event)]);
    }
  }

  /** Every close code that can appear on the wire in this model. */
  closeCodes(): number[] {
    const codes = new Set<number>();
    for (const c of this.model.applicationCloseCodes) if (c !== 'none') codes.add(c);
    for (const stages of [this.model.protocolErrorStages, this.model.handshakeErrorStages]) for (const e of representativeErrors(this.spec, stages)) codes.add(e.closeCode);
    // Literal codes of close-sending actions with parameters, anywhere in the machine's config.
    JSON.stringify(this.machine.machine.config, (_key, value: unknown) => {
      if (value && typeof value === 'object' && 'type' in value && 'params' in value) {
        const { type, params } = value as { type: string; params: Record<string, unknown> | undefined };
        if (typeof params?.code === 'number' && this.machine.actions[type]?.wire === 'close') codes.add(params.code);
      }
      return value;
    });
    return [...codes].sort((a, b) => a - b);
  }

  /** The one-character encoding of a channel item. */
  char(item: Item): string {
    let c = this.toChar.get(item);
    if (c === undefined) {
      c = CODE_CHARS[this.toChar.size - Object.keys(FIXED_CHARS).length];
      if (c === undefined) throw new Error('too many distinct close codes in the model');
      this.toChar.set(item, c);
      this.fromChar.set(c, item);
    }
    return c;
  }

  item(char: string): Item {
    return this.fromChar.get(char)!;
  }

  isFinalConfig(e: 0 | 1, cfg: string): boolean {
    let f = this.finalCache[e].get(cfg);
    if (f === undefined) this.finalCache[e].set(cfg, (f = this.steppers[e].isFinal(cfg)));
    return f;
  }

  isOpenConfig(e: 0 | 1, cfg: string): boolean {
    let f = this.openCache[e].get(cfg);
    if (f === undefined) this.openCache[e].set(cfg, (f = this.steppers[e].readyState(cfg) === 1));
    return f;
  }

  bothFinal(state: ProductState): boolean {
    return this.isFinalConfig(0, state.sides[0].cfg) && this.isFinalConfig(1, state.sides[1].cfg);
  }

  initial(): ProductState[] {
    const out: ProductState[] = [];
    const side = (cfg: string): Side => ({ cfg, paused: false, discarding: false, closeSent: false, ended: false, destroyed: false, selfClose: false });
    for (const c of this.initialConfigs[0]) for (const s of this.initialConfigs[1]) out.push({ sides: [side(c), side(s)], ch: ['', ''] });
    return out;
  }

  private cfgId(e: 0 | 1, cfg: string): number {
    let id = this.cfgIds[e].get(cfg);
    if (id === undefined) this.cfgIds[e].set(cfg, (id = this.cfgIds[e].size));
    return id;
  }

  key(state: ProductState): string {
    const side = (e: 0 | 1) => {
      const s = state.sides[e];
      const flags = +s.paused | (+s.discarding << 1) | (+s.closeSent << 2) | (+s.ended << 3) | (+s.destroyed << 4) | (+s.selfClose << 5);
      return this.cfgId(e, s.cfg) * 64 + flags;
    };
    return `${side(0)},${side(1)},${state.ch[0]},${state.ch[1]}`;
  }

  describe(state: ProductState): string {
    const side = (e: 0 | 1) => {
      const s = state.sides[e];
      const flags = [s.paused && 'paused', s.discarding && 'discarding', s.closeSent && 'close sent', s.ended && 'FIN sent', s.destroyed && 'torn down', s.selfClose && 'socket closing']
        .filter(Boolean)
        .join(', ');
      return `${ROLES[e]} ${s.cfg}${flags ? ` (${flags})` : ''}`;
    };
    const channel = (items: string) => `[${[...items].map((c) => this.item(c)).join(' ')}]`;
    return `${side(0)}; ${side(1)}; c→s ${channel(state.ch[0])}; s→c ${channel(state.ch[1])}`;
  }

  timerTrigger(type: string): Trigger {
    let t = this.timerTriggers.get(type);
    if (!t) {
      const label = describeTimer(type, this.machine.id);
      t = { key: `timer ${type}`, label, source: 'timer', progress: false, consume: false, clearSelfClose: false, pre: [], event: { type } };
      this.timerTriggers.set(type, t);
    }
    return t;
  }

  /** What an endpoint in `cfg` does with `item` at the head of its channel (when it is reading and not discarding). */
  receiveTriggersFor(e: 0 | 1, cfg: string, item: Item): Trigger[] {
    if (item === 'ping') return this.receiveTriggers.get(this.isOpenConfig(e, cfg) ? 'ping+pong' : 'ping')!;
    const t = this.receiveTriggers.get(item);
    if (!t) throw new Error(`no trigger for the channel item ${item}`);
    return t;
  }

  /** Every trigger that can apply to an endpoint in `cfg`, whatever the rest of the state (for the Promela encoding). */
  triggersOf(e: 0 | 1, cfg: string): { trigger: Trigger; when: 'always' | 'data' | 'receive' | 'discard' | 'selfClose'; item?: Item }[] {
    const out: { trigger: Trigger; when: 'always' | 'data' | 'receive' | 'discard' | 'selfClose'; item?: Item }[] = [];
    for (const t of this.applicationTriggers) out.push({ trigger: t, when: 'always' });
    if (e === 1 && this.initialConfigs[e].has(cfg)) for (const t of this.handshakeTriggers) out.push({ trigger: t, when: 'always' });
    if (this.isOpenConfig(e, cfg)) out.push({ trigger: this.dataTrigger, when: 'data' });
    if (this.options.timers) for (const type of this.steppers[e].timers(cfg)) out.push({ trigger: this.timerTrigger(type), when: 'always' });
    for (const item of this.allItems()) for (const t of this.receiveTriggersFor(e, cfg, item)) out.push({ trigger: t, when: 'receive', item });
    out.push({ trigger: this.discardTrigger, when: 'discard' });
    out.push({ trigger: this.selfCloseTrigger, when: 'selfClose' });
    return out;
  }

  allItems(): Item[] {
    return ['accept', 'data', 'ping', 'pong', 'close', ...this.closeCodes().map((c) => `close:${c}`), 'fin', 'rst'];
  }

  /** The moves of a trigger in a configuration (one per branch of the machine's free guards). */
  moves(e: 0 | 1, cfg: string, trigger: Trigger): Move[] {
    let byCfg = this.moveCache[e].get(trigger);
    if (!byCfg) this.moveCache[e].set(trigger, (byCfg = new Map()));
    let moves = byCfg.get(cfg);
    if (!moves) {
      const branches = trigger.event ? this.steppers[e].step(cfg, trigger.event, trigger.key) : [{ next: cfg, actions: [], choices: [], entered: [] }];
      moves = branches.map((branch) => this.makeMove(e, cfg, trigger, branch));
      byCfg.set(cfg, moves);
    }
    return moves;
  }

  private makeMove(e: 0 | 1, cfg: string, trigger: Trigger, branch: Branch): Move {
    const ops: Op[] = trigger.pre.map((item) => ({ item }));
    for (const action of branch.actions) {
      const wire = this.machine.actions[action.type]?.wire ?? null;
      if (wire === 'close') {
        const code = closeCodeOf(action, trigger.event, this.errorCodes);
        ops.push({ item: code === undefined ? 'close' : `close:${code}` });
      } else if (wire === 'ping' || wire === 'pong') ops.push({ item: wire });
      else if (wire === 'end') ops.push({ item: 'fin' });
      else if (wire === 'destroy') ops.push({ item: 'rst' });
      if (action.type === this.effects.pause) ops.push({ effect: 'pause' });
      else if (action.type === this.effects.resume) ops.push({ effect: 'resume' });
      else if (action.type === this.effects.discard) ops.push({ effect: 'discard' });
    }
    const items = ops.flatMap((o) => ('item' in o ? [o.item] : []));
    const frames = items.filter((i) => FRAME_KINDS.has(itemKind(i)));
    const afterCloseWithin: string[] = [];
    let closed = false;
    const badCodes: number[] = [];
    for (const f of frames) {
      if (closed) afterCloseWithin.push(itemKind(f));
      if (itemKind(f) === 'close') {
        closed = true;
        const code = itemCode(f);
        if (code !== undefined && !this.spec.protocol.isSendable(code)) badCodes.push(code);
      }
    }
    const count = (k: string) => items.filter((i) => i === k).length;
    return {
      trigger,
      branch,
      next: branch.next,
      nextFinal: this.isFinalConfig(e, branch.next),
      ops,
      items: items.map((i) => this.char(i)).join(''),
      limited: { data: count('data'), ping: count('ping'), pong: count('pong') },
      frames,
      frameKinds: frames.map(itemKind),
      afterCloseWithin,
      sendsClose: closed,
      badCodes,
      trivial: !trigger.consume && !trigger.clearSelfClose && ops.length === 0 && branch.next === cfg,
    };
  }

  private gone(state: ProductState, e: 0 | 1): boolean {
    return state.sides[e].destroyed || this.isFinalConfig(e, state.sides[e].cfg);
  }

  /** Frame kinds a move sends after the endpoint's close frame (before it, or earlier in the move). */
  sentAfterClose(side: Side, move: Move): string[] {
    return side.closeSent ? move.frameKinds : move.afterCloseWithin;
  }

  /** Every step from a state; steps that change nothing at all are left out. */
  successors(state: ProductState, out: Successor[] = []): Successor[] {
    for (const e of [0, 1] as const) {
      const side = state.sides[e];
      const cfg = side.cfg;
      if (this.isFinalConfig(e, cfg)) continue;
      const p = (1 - e) as 0 | 1;
      const take = (trigger: Trigger) => {
        for (const move of this.moves(e, cfg, trigger)) if (!move.trivial) this.apply(state, e, move, out);
      };
      for (const t of this.applicationTriggers) take(t);
      if (e === 1 && this.initialConfigs[e].has(cfg)) for (const t of this.handshakeTriggers) take(t);
      if (this.isOpenConfig(e, cfg) && !side.destroyed && !side.ended && !this.gone(state, p) && !state.ch[e].includes('d')) take(this.dataTrigger);
      if (this.options.timers) for (const type of this.steppers[e].timers(cfg)) take(this.timerTrigger(type));
      const incoming = state.ch[p];
      if (incoming.length > 0 && !side.paused && !side.destroyed) {
        const head = this.item(incoming[0]!);
        const kind = itemKind(head);
        if (side.discarding && (FRAME_KINDS.has(kind) || kind === 'accept')) take(this.discardTrigger);
        else for (const t of this.receiveTriggersFor(e, cfg, head)) take(t);
      }
      if (side.selfClose) take(this.selfCloseTrigger);
    }
    return out;
  }

  private apply(state: ProductState, e: 0 | 1, move: Move, out: Successor[]): void {
    const p = (1 - e) as 0 | 1;
    const outgoing = state.ch[e];
    if (outgoing.length + move.items.length > this.capacity) {
      this.pruned++;
      return;
    }
    const { data, ping, pong } = move.limited;
    if (data > 1 || ping > 1 || pong > 1 || (data && outgoing.includes('d')) || (ping && outgoing.includes('p')) || (pong && outgoing.includes('q'))) {
      this.pruned++;
      return;
    }
    const side = state.sides[e];
    const ns: Side = { ...side, cfg: move.next };
    let nextOut = outgoing;
    let nextIn = move.trigger.consume ? state.ch[p].slice(1) : state.ch[p];
    if (move.sendsClose) ns.closeSent = true;
    if (move.trigger.clearSelfClose) ns.selfClose = false;
    const peerGone = this.gone(state, p);
    let tornDown = false;
    for (const op of move.ops) {
      if ('item' in op) {
        if (!ns.destroyed && !peerGone && (op.item === 'rst' || !ns.ended)) nextOut += this.char(op.item);
        if (op.item === 'fin') ns.ended = true;
        else if (op.item === 'rst') {
          ns.destroyed = true;
          tornDown = true;
          nextIn = '';
        }
      } else if (op.effect === 'pause') ns.paused = true;
      else if (op.effect === 'resume') ns.paused = false;
      else ns.discarding = true;
    }
    if (move.nextFinal) {
      // A final endpoint reads and does nothing more: what it had not read is lost.
      nextIn = '';
      ns.paused = ns.discarding = ns.ended = ns.destroyed = ns.selfClose = false;
    } else if (tornDown) ns.selfClose = true;
    out.push({
      actor: e,
      move,
      to: { sides: e === 0 ? [ns, state.sides[1]] : [state.sides[0], ns], ch: e === 0 ? [nextOut, nextIn] : [nextIn, nextOut] },
    });
  }
}
