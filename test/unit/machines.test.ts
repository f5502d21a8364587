/**
 * The generated machines on their own: each role's handshake, closing from either side and from
 * both at once, the close, handshake, keep-alive and idle timers on XState's SimulatedClock (no
 * test sleeps), protocol failure, pause/resume, and the readyState derived in every state.
 */
import { expect } from 'chai';
import { createActor, SimulatedClock, type AnyActorRef } from 'xstate';
import { getShortestPaths } from 'xstate/graph';
import {
  connectionDelays,
  connectionMachine,
  connectionReadyStateOf,
  connectionStates,
  type ConnectionEvent,
  type ConnectionGuardName,
  type ConnectionActionName,
  type ConnectionRole,
} from '../../generated/connection.machine.generated.js';
import { serverMachine, serverActions } from '../../generated/server.machine.generated.js';

interface Harness {
  actor: AnyActorRef;
  clock: SimulatedClock;
  log: string[];
  /** How many times emitClose ran: exactly once per connection that reached a final state. */
  closes: () => number;
  flags: Record<string, boolean>;
  send(event: ConnectionEvent): void;
  state(): string;
  readyState(): number;
}

const ACTIONS: ConnectionActionName[] = [
  'abortHandshake', 'destroySocket', 'echoClose', 'emitOpen', 'endSocket', 'pauseSocket', 'rearmIdleCheck',
  'rearmKeepaliveCheck', 'reportCloseTimeout', 'reportHandshakeTimeout', 'reportIdleTimeout', 'reportKeepaliveTimeout',
  'resumeSocket', 'sendClose', 'sendCloseWith', 'sendPing', 'stopReading', 'emitClose',
];

/** Flattens a snapshot value to its atomic state paths, sorted: `open.keepalive.waiting` … */
function leafPaths(value: unknown, prefix = ''): string[] {
  if (typeof value === 'string') return [prefix ? `${prefix}.${value}` : value];
  return Object.entries(value as Record<string, unknown>)
    .flatMap(([key, child]) => leafPaths(child, prefix ? `${prefix}.${key}` : key))
    .sort();
}

const delays = {
  handshakeTimeout: 1000,
  closeTimeout: 3000,
  keepaliveInterval: 5000,
  keepaliveGracePeriod: 2000,
  idleTimeout: 60000,
};

function harness(role: ConnectionRole, flags: Partial<Record<ConnectionGuardName, boolean>> = {}): Harness {
  const log: string[] = [];
  let closes = 0;
  const guardFlags: Record<string, boolean> = {
    keepaliveEnabled: false,
    idleTimeoutEnabled: false,
    dropOnKeepaliveTimeout: true,
    peerActiveSinceKeepaliveCheck: false,
    peerActiveSinceIdleCheck: false,
    ...flags,
  };
  const record = (name: string) => ({ event, ...rest }: { event: ConnectionEvent }, params?: unknown) => {
    void rest;
    if (name === 'emitClose') {
      closes++;
      return;
    }
    const sendsClose = name === 'sendClose' || name === 'echoClose';
    const detail = params ? `(${Object.values(params as object).join(',')})` : sendsClose && 'code' in event && event.code !== undefined ? `(${event.code})` : '';
    log.push(`${name}${detail}`);
  };
  const machine = connectionMachine.provide({
    actions: Object.fromEntries(ACTIONS.map((name) => [name, record(name)])) as never,
    guards: {
      keepaliveEnabled: () => guardFlags.keepaliveEnabled!,
      idleTimeoutEnabled: () => guardFlags.idleTimeoutEnabled!,
      dropOnKeepaliveTimeout: () => guardFlags.dropOnKeepaliveTimeout!,
      peerActiveSinceKeepaliveCheck: () => guardFlags.peerActiveSinceKeepaliveCheck!,
      peerActiveSinceIdleCheck: () => guardFlags.peerActiveSinceIdleCheck!,
    },
    delays,
  });
  const clock = new SimulatedClock();
  const actor = createActor(machine, { clock, input: { role, host: undefined } });
  actor.start();
  return {
    actor,
    clock,
    log,
    closes: () => closes,
    flags: guardFlags,
    send: (event) => actor.send(event),
    state: () => leafPaths(actor.getSnapshot().value).join(' '),
    readyState: () => connectionReadyStateOf(actor.getSnapshot().value),
  };
}

function opened(role: ConnectionRole, flags: Partial<Record<ConnectionGuardName, boolean>> = {}): Harness {
  const h = harness(role, flags);
  h.send({ type: 'HANDSHAKE_SUCCEEDED' });
  h.log.length = 0;
  return h;
}

describe('generated connection machine', () => {
  describe('opening handshake', () => {
    for (const role of ['server', 'client'] as const) {
      it(`${role}: succeeds into open with every region started`, () => {
        const h = harness(role);
        expect(h.state()).to.equal('connecting');
        expect(h.readyState()).to.equal(0);
        h.send({ type: 'HANDSHAKE_SUCCEEDED' });
        expect(h.state()).to.equal('open.idle.disabled open.keepalive.disabled open.reading.flowing');
        expect(h.readyState()).to.equal(1);
        expect(h.log).to.deep.equal(['emitOpen']);
      });

      it(`${role}: a failed handshake terminates and destroys the socket`, () => {
        const h = harness(role);
        h.send({ type: 'HANDSHAKE_FAILED', errorId: 'invalidKey' });
        expect(h.state()).to.equal('terminated');
        expect(h.log).to.deep.equal(['destroySocket']);
        expect(h.actor.getSnapshot().status).to.equal('done');
        expect(h.closes()).to.equal(1);
      });

      it(`${role}: the handshake timeout fires on the clock and terminates`, () => {
        const h = harness(role);
        h.clock.increment(delays.handshakeTimeout - 1);
        expect(h.state()).to.equal('connecting');
        h.clock.increment(1);
        expect(h.state()).to.equal('terminated');
        expect(h.log).to.deep.equal(['reportHandshakeTimeout', 'destroySocket']);
      });

      it(`${role}: close() while connecting aborts the handshake`, () => {
        const h = harness(role);
        h.send({ type: 'CLOSE_REQUESTED', code: 1000, reason: '' });
        expect(h.state()).to.equal('terminated');
        expect(h.log).to.deep.equal(['abortHandshake', 'destroySocket']);
      });
    }
  });

  describe('closing handshake (RFC 6455 section 7)', () => {
    it('server initiates: close sent, answer received, server half-closes TCP first, then closed', () => {
      const h = opened('server');
      h.send({ type: 'CLOSE_REQUESTED', code: 1000, reason: 'bye' });
      expect(h.state()).to.equal('closing.closedByUs');
      expect(h.readyState()).to.equal(2);
      h.send({ type: 'CLOSE_RECEIVED', code: 1000, reason: 'bye' });
      expect(h.state()).to.equal('closing.acknowledged');
      h.send({ type: 'SOCKET_CLOSED' });
      expect(h.state()).to.equal('closed');
      expect(h.readyState()).to.equal(3);
      expect(h.closes()).to.equal(1);
      expect(h.log).to.deep.equal(['sendClose(1000)', 'resumeSocket', 'endSocket']);
    });

    it('client initiates: waits for the server to close TCP, then destroys its side', () => {
      const h = opened('client');
      h.send({ type: 'CLOSE_REQUESTED', code: 4000, reason: '' });
      h.send({ type: 'CLOSE_RECEIVED', code: 4000, reason: '' });
      expect(h.state()).to.equal('closing.acknowledged');
      expect(h.log).to.deep.equal(['sendClose(4000)', 'resumeSocket']);
      h.send({ type: 'SOCKET_ENDED' });
      expect(h.state()).to.equal('closed');
      expect(h.log.at(-1)).to.equal('destroySocket');
    });

    it('peer initiates at a server: echo the close and half-close TCP', () => {
      const h = opened('server');
      h.send({ type: 'CLOSE_RECEIVED', code: 1001, reason: '' });
      expect(h.state()).to.equal('closing.closedByPeer');
      expect(h.log).to.deep.equal(['echoClose(1001)', 'endSocket', 'resumeSocket']);
      h.send({ type: 'SOCKET_CLOSED' });
      expect(h.state()).to.equal('closed');
    });

    it('peer initiates at a client: echo the close and wait for the server to close TCP', () => {
      const h = opened('client');
      h.send({ type: 'CLOSE_RECEIVED', reason: '' });
      expect(h.state()).to.equal('closing.closedByPeer');
      expect(h.log).to.deep.equal(['echoClose', 'resumeSocket']);
      h.send({ type: 'SOCKET_CLOSED' });
      expect(h.state()).to.equal('closed');
    });

    for (const role of ['server', 'client'] as const) {
      it(`${role}: both sides close at once and the handshake still completes`, () => {
        const h = opened(role);
        h.send({ type: 'CLOSE_REQUESTED', code: 1000, reason: '' });
        h.send({ type: 'CLOSE_RECEIVED', code: 1000, reason: '' });
        expect(h.state()).to.equal('closing.acknowledged');
        expect(h.log.filter((entry) => entry.startsWith('sendClose') || entry.startsWith('echoClose'))).to.have.length(1);
      });

      it(`${role}: the close timeout terminates a peer that never answers`, () => {
        const h = opened(role);
        h.send({ type: 'CLOSE_REQUESTED', code: 1000, reason: '' });
        h.clock.increment(delays.closeTimeout - 1);
        expect(h.state()).to.equal('closing.closedByUs');
        h.clock.increment(1);
        expect(h.state()).to.equal('terminated');
        expect(h.log.slice(-2)).to.deep.equal(['reportCloseTimeout', 'destroySocket']);
      });

      it(`${role}: the close timeout covers the wait for the TCP close after both close frames`, () => {
        const h = opened(role);
        h.send({ type: 'CLOSE_REQUESTED', code: 1000, reason: '' });
        h.clock.increment(delays.closeTimeout / 2);
        h.send({ type: 'CLOSE_RECEIVED', code: 1000, reason: '' });
        h.clock.increment(delays.closeTimeout / 2);
        expect(h.state()).to.equal('terminated');
      });

      it(`${role}: a TCP close without a close frame terminates (1006)`, () => {
        const h = opened(role);
        h.send({ type: 'SOCKET_CLOSED' });
        expect(h.state()).to.equal('terminated');
      });

      it(`${role}: terminate() destroys at once from open and from closing`, () => {
        const a = opened(role);
        a.send({ type: 'TERMINATE_REQUESTED' });
        expect(a.state()).to.equal('terminated');
        expect(a.log).to.deep.equal(['destroySocket']);
        const b = opened(role);
        b.send({ type: 'CLOSE_REQUESTED', code: 1000, reason: '' });
        b.send({ type: 'TERMINATE_REQUESTED' });
        expect(b.state()).to.equal('terminated');
      });
    }

    it('a second close() while closing is ignored: one close frame only', () => {
      const h = opened('server');
      h.send({ type: 'CLOSE_REQUESTED', code: 1000, reason: '' });
      h.send({ type: 'CLOSE_REQUESTED', code: 1001, reason: '' });
      expect(h.log.filter((entry) => entry.startsWith('sendClose'))).to.deep.equal(['sendClose(1000)']);
    });
  });

  describe('failing the connection (RFC 6455 section 7.1.7)', () => {
    for (const role of ['server', 'client'] as const) {
      it(`${role}: a protocol error stops reading, sends its close code and half-closes`, () => {
        const h = opened(role);
        h.send({ type: 'PROTOCOL_ERROR', errorId: 'reservedOpcode' });
        expect(h.state()).to.equal('closing.failed');
        expect(h.log).to.deep.equal(['stopReading', 'sendClose', 'endSocket', 'resumeSocket']);
        h.send({ type: 'CLOSE_RECEIVED', code: 1000, reason: '' });
        expect(h.state(), 'a close after failing is not processed').to.equal('closing.failed');
        h.send({ type: 'SOCKET_CLOSED' });
        expect(h.state()).to.equal('terminated');
      });
    }
  });

  describe('keep-alive on the simulated clock', () => {
    it('pings a silent peer, and terminates it after the grace period', () => {
      const h = opened('server', { keepaliveEnabled: true });
      expect(h.state()).to.contain('open.keepalive.waiting');
      h.clock.increment(delays.keepaliveInterval);
      expect(h.state()).to.contain('open.keepalive.awaitingPong');
      expect(h.log).to.deep.equal(['rearmKeepaliveCheck', 'sendPing']);
      h.clock.increment(delays.keepaliveGracePeriod);
      expect(h.state()).to.equal('terminated');
      expect(h.log.slice(-2)).to.deep.equal(['reportKeepaliveTimeout', 'destroySocket']);
    });

    it('a pong within the grace period keeps the connection open', () => {
      const h = opened('client', { keepaliveEnabled: true });
      h.clock.increment(delays.keepaliveInterval);
      h.send({ type: 'PONG_RECEIVED' });
      expect(h.state()).to.contain('open.keepalive.waiting');
      h.clock.increment(delays.keepaliveGracePeriod);
      expect(h.readyState()).to.equal(1);
    });

    it('a peer that was active is not pinged: the timer re-arms', () => {
      const h = opened('server', { keepaliveEnabled: true, peerActiveSinceKeepaliveCheck: true });
      // SimulatedClock fires one round of timers per increment, so advance one interval at a time.
      for (let i = 0; i < 3; i++) h.clock.increment(delays.keepaliveInterval);
      expect(h.log).to.deep.equal(['rearmKeepaliveCheck', 'rearmKeepaliveCheck', 'rearmKeepaliveCheck']);
      expect(h.state()).to.contain('open.keepalive.waiting');
    });

    it('without dropConnectionOnKeepaliveTimeout a silent peer is pinged again, not dropped', () => {
      const h = opened('server', { keepaliveEnabled: true, dropOnKeepaliveTimeout: false });
      h.clock.increment(delays.keepaliveInterval);
      h.clock.increment(delays.keepaliveGracePeriod);
      expect(h.readyState()).to.equal(1);
      h.clock.increment(delays.keepaliveInterval);
      expect(h.log.filter((e) => e === 'sendPing')).to.have.length(2);
    });

    it('is suspended while reading is paused (a pong cannot be read), and resumes with a fresh interval', () => {
      const h = opened('server', { keepaliveEnabled: true });
      h.clock.increment(delays.keepaliveInterval);
      expect(h.state()).to.contain('open.keepalive.awaitingPong');
      h.send({ type: 'PAUSE_REQUESTED' });
      expect(h.state()).to.contain('open.keepalive.suspended');
      h.clock.increment(delays.keepaliveGracePeriod);
      h.clock.increment(delays.keepaliveInterval);
      expect(h.readyState(), 'a paused connection is not dropped for silence').to.equal(1);
      h.send({ type: 'RESUME_REQUESTED' });
      expect(h.state()).to.contain('open.keepalive.waiting');
      h.clock.increment(delays.keepaliveInterval);
      expect(h.state()).to.contain('open.keepalive.awaitingPong');
    });

    it('disabled keep-alive never pings', () => {
      const h = opened('server');
      h.clock.increment(delays.keepaliveInterval * 10);
      expect(h.log).to.deep.equal([]);
    });
  });

  describe('idle timeout', () => {
    it('closes an idle connection with 1001', () => {
      const h = opened('server', { idleTimeoutEnabled: true });
      h.clock.increment(delays.idleTimeout);
      expect(h.state()).to.equal('closing.closedByUs');
      expect(h.log).to.deep.equal(['reportIdleTimeout', 'sendCloseWith(1001,idle timeout)', 'resumeSocket']);
    });

    it('traffic re-arms the idle timer', () => {
      const h = opened('server', { idleTimeoutEnabled: true, peerActiveSinceIdleCheck: true });
      h.clock.increment(delays.idleTimeout);
      h.clock.increment(delays.idleTimeout);
      expect(h.readyState()).to.equal(1);
      h.flags.peerActiveSinceIdleCheck = false;
      h.clock.increment(delays.idleTimeout);
      expect(h.state()).to.equal('closing.closedByUs');
    });
  });

  describe('pause and resume', () => {
    it('pauses and resumes reading, and resumes reading when closing', () => {
      const h = opened('client');
      h.send({ type: 'PAUSE_REQUESTED' });
      expect(h.state()).to.contain('open.reading.paused');
      h.send({ type: 'RESUME_REQUESTED' });
      expect(h.state()).to.contain('open.reading.flowing');
      h.send({ type: 'PAUSE_REQUESTED' });
      h.send({ type: 'CLOSE_REQUESTED', code: 1000, reason: '' });
      expect(h.log).to.deep.equal(['pauseSocket', 'resumeSocket', 'pauseSocket', 'sendClose(1000)', 'resumeSocket']);
    });
  });

  describe('readyState in every state', () => {
    // The RFC's four readyStates, by top-level lifecycle state (WebSocket API / RFC 6455 section 4-7).
    const expected: Record<string, number> = { connecting: 0, open: 1, closing: 2, closed: 3, terminated: 3 };

    it('every state of the machine is reachable and derives the right readyState', () => {
      const seen = new Set<string>();
      for (const timersOn of [true, false])
      for (const role of ['server', 'client'] as const) {
        const machine = connectionMachine.provide({
          actions: Object.fromEntries(ACTIONS.map((name) => [name, () => {}])) as never,
          guards: {
            keepaliveEnabled: () => timersOn,
            idleTimeoutEnabled: () => timersOn,
            dropOnKeepaliveTimeout: () => true,
            peerActiveSinceKeepaliveCheck: () => false,
            peerActiveSinceIdleCheck: () => false,
          },
        });
        const paths = getShortestPaths(machine, {
          input: { role, host: undefined },
          events: [
            { type: 'HANDSHAKE_SUCCEEDED' },
            { type: 'HANDSHAKE_FAILED', errorId: 'invalidKey' },
            { type: 'CLOSE_REQUESTED', code: 1000, reason: '' },
            { type: 'CLOSE_RECEIVED', code: 1000, reason: '' },
            { type: 'PROTOCOL_ERROR', errorId: 'invalidUtf8' },
            { type: 'PAUSE_REQUESTED' },
            { type: 'RESUME_REQUESTED' },
            { type: 'PONG_RECEIVED' },
            { type: 'SOCKET_ENDED' },
            { type: 'SOCKET_CLOSED' },
            { type: 'TERMINATE_REQUESTED' },
            { type: 'xstate.after.keepaliveInterval.connection.open.keepalive.waiting' } as never,
          ],
        });
        for (const path of paths) {
          const value = path.state.value;
          const top = typeof value === 'string' ? value : Object.keys(value)[0]!;
          expect(connectionReadyStateOf(value), `readyState of ${JSON.stringify(value)}`).to.equal(expected[top]);
          for (const leaf of leafPaths(value)) {
            seen.add(leaf);
            leaf.split('.').forEach((_, i, parts) => seen.add(parts.slice(0, i + 1).join('.')));
          }
        }
      }
      const nonTransient = connectionStates.filter((s) => !s.path.endsWith('.starting'));
      const missing = nonTransient.map((s) => s.path).filter((p) => !seen.has(p));
      expect(missing, 'states not reached by any path').to.deep.equal([]);
    });

    it('delays default to the settings named in the spec', () => {
      expect(connectionDelays.closeTimeout.setting).to.equal('closeTimeout');
      expect(connectionDelays.handshakeTimeout.defaultMs).to.be.greaterThan(0);
    });
  });

  it('an action that is not provided fails loudly, naming it', () => {
    const actor = createActor(connectionMachine, { input: { role: 'server', host: undefined } });
    const errors: unknown[] = [];
    actor.subscribe({ error: (error) => errors.push(error) });
    actor.start();
    actor.send({ type: 'HANDSHAKE_SUCCEEDED' });
    expect(String(errors[0])).to.match(/action "emitOpen" must be provided/);
  });
});

describe('generated server machine', () => {
  function server(connections: { count: number }) {
    const log: string[] = [];
    const machine = serverMachine.provide({
      actions: Object.fromEntries(Object.keys(serverActions).map((name) => [name, () => log.push(name)])) as never,
      guards: { noConnectionsLeft: () => connections.count === 0 },
    });
    const actor = createActor(machine, { input: { role: 'server', host: undefined } });
    actor.start();
    return { actor, log, state: () => String(actor.getSnapshot().value) };
  }

  it('binds, listens, and shuts down once every connection has closed', () => {
    const connections = { count: 2 };
    const s = server(connections);
    expect(s.state()).to.equal('idle');
    s.actor.send({ type: 'LISTEN_REQUESTED' });
    expect(s.state()).to.equal('binding');
    s.actor.send({ type: 'LISTENING' });
    expect(s.state()).to.equal('listening');
    s.actor.send({ type: 'CLOSE_REQUESTED' });
    expect(s.state()).to.equal('shuttingDown');
    connections.count = 1;
    s.actor.send({ type: 'CONNECTION_CLOSED' });
    expect(s.state()).to.equal('shuttingDown');
    connections.count = 0;
    s.actor.send({ type: 'CONNECTION_CLOSED' });
    expect(s.state()).to.equal('stopped');
    expect(s.log).to.deep.equal(['bindListener', 'emitListening', 'stopAccepting', 'closeAllConnections', 'emitClose']);
  });

  it('stops at once when closed with no connections', () => {
    const s = server({ count: 0 });
    s.actor.send({ type: 'ATTACHED' });
    s.actor.send({ type: 'CLOSE_REQUESTED' });
    expect(s.state()).to.equal('stopped');
  });

  it('a failed bind stops the server and reports the error', () => {
    const s = server({ count: 0 });
    s.actor.send({ type: 'LISTEN_REQUESTED' });
    s.actor.send({ type: 'LISTEN_FAILED' });
    expect(s.state()).to.equal('stopped');
    expect(s.log).to.deep.equal(['bindListener', 'emitServerError', 'emitClose']);
  });
});
