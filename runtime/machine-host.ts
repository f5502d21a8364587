/**
 * Binds the generated connection machine to the runtime, once for the whole process: every action,
 * guard and delay the spec names is implemented here by delegating to the machine's host — the
 * WebSocket that owns the socket (context.host). The machine decides what happens; these only
 * perform it. Providing once (not per connection) keeps the per-connection cost to one actor.
 */
import { connectionMachine, type ConnectionEvent } from '../generated/connection.machine.generated.js';

/** What a WebSocket does when its machine asks. Each method is one action, guard or delay of spec/machines/connection.yaml. */
export interface ConnectionHost {
  // actions
  emitOpen(): void;
  emitClose(): void;
  abortHandshake(event: ConnectionEvent): void;
  reportHandshakeTimeout(): void;
  reportKeepaliveTimeout(): void;
  reportIdleTimeout(): void;
  reportCloseTimeout(): void;
  sendClose(event: ConnectionEvent): void;
  echoClose(event: ConnectionEvent): void;
  sendCloseWith(code: number, reason: string): void;
  sendPing(): void;
  endSocket(): void;
  destroySocket(): void;
  stopReading(): void;
  pauseSocket(): void;
  resumeSocket(): void;
  rearmKeepaliveCheck(): void;
  rearmIdleCheck(): void;
  // guards
  keepaliveEnabled(): boolean;
  idleTimeoutEnabled(): boolean;
  dropOnKeepaliveTimeout(): boolean;
  peerActiveSinceKeepaliveCheck(): boolean;
  peerActiveSinceIdleCheck(): boolean;
  // delays, in ms
  readonly timers: {
    readonly handshakeTimeout: number;
    readonly closeTimeout: number;
    readonly keepaliveInterval: number;
    readonly keepaliveGracePeriod: number;
    readonly idleTimeout: number;
  };
}

type Args = { context: { host: unknown }; event: ConnectionEvent };
const host = (args: Args) => args.context.host as ConnectionHost;

export const drivenConnectionMachine = connectionMachine.provide({
  actions: {
    emitOpen: (args) => host(args).emitOpen(),
    emitClose: (args) => host(args).emitClose(),
    abortHandshake: (args) => host(args).abortHandshake(args.event),
    reportHandshakeTimeout: (args) => host(args).reportHandshakeTimeout(),
    reportKeepaliveTimeout: (args) => host(args).reportKeepaliveTimeout(),
    reportIdleTimeout: (args) => host(args).reportIdleTimeout(),
    reportCloseTimeout: (args) => host(args).reportCloseTimeout(),
    sendClose: (args) => host(args).sendClose(args.event),
    echoClose: (args) => host(args).echoClose(args.event),
    sendCloseWith: (args, params) => host(args).sendCloseWith(params.code, params.reason),
    sendPing: (args) => host(args).sendPing(),
    endSocket: (args) => host(args).endSocket(),
    destroySocket: (args) => host(args).destroySocket(),
    stopReading: (args) => host(args).stopReading(),
    pauseSocket: (args) => host(args).pauseSocket(),
    resumeSocket: (args) => host(args).resumeSocket(),
    rearmKeepaliveCheck: (args) => host(args).rearmKeepaliveCheck(),
    rearmIdleCheck: (args) => host(args).rearmIdleCheck(),
  },
  guards: {
    keepaliveEnabled: (args) => host(args).keepaliveEnabled(),
    idleTimeoutEnabled: (args) => host(args).idleTimeoutEnabled(),
    dropOnKeepaliveTimeout: (args) => host(args).dropOnKeepaliveTimeout(),
    peerActiveSinceKeepaliveCheck: (args) => host(args).peerActiveSinceKeepaliveCheck(),
    peerActiveSinceIdleCheck: (args) => host(args).peerActiveSinceIdleCheck(),
  },
  delays: {
    handshakeTimeout: (args) => host(args).timers.handshakeTimeout,
    closeTimeout: (args) => host(args).timers.closeTimeout,
    keepaliveInterval: (args) => host(args).timers.keepaliveInterval,
    keepaliveGracePeriod: (args) => host(args).timers.keepaliveGracePeriod,
    idleTimeout: (args) => host(args).timers.idleTimeout,
  },
});
