/**
 * The browser-style EventTarget face of a WebSocket, as ws offers it: addEventListener /
 * removeEventListener and the onopen / onmessage / onclose / onerror properties, delivering
 * Event, MessageEvent, CloseEvent and ErrorEvent objects built from the EventEmitter events.
 */
import type { EventEmitter } from 'node:events';

export class WsEvent {
  readonly type: string;
  target: unknown;
  constructor(type: string, target: unknown) {
    this.type = type;
    this.target = target;
  }
}

export class MessageEvent extends WsEvent {
  readonly data: unknown;
  constructor(target: unknown, data: unknown) {
    super('message', target);
    this.data = data;
  }
}

export class CloseEvent extends WsEvent {
  readonly code: number;
  readonly reason: string;
  readonly wasClean: boolean;
  constructor(target: unknown, code: number, reason: string, wasClean: boolean) {
    super('close', target);
    this.code = code;
    this.reason = reason;
    this.wasClean = wasClean;
  }
}

export class ErrorEvent extends WsEvent {
  readonly error: unknown;
  readonly message: string;
  constructor(target: unknown, error: unknown) {
    super('error', target);
    this.error = error;
    this.message = error instanceof Error ? error.message : String(error);
  }
}

export type EventListenerLike = ((event: WsEvent) => void) | { handleEvent(event: WsEvent): void };

const kListener = Symbol('wirestate.listener');
const kForOnProperty = Symbol('wirestate.onProperty');

type Wrapped = ((...args: unknown[]) => void) & { [kListener]?: EventListenerLike; [kForOnProperty]?: boolean };

export interface EventTargetHost extends EventEmitter {
  wasClean(): boolean;
}

function wrap(target: EventTargetHost, type: string, listener: EventListenerLike): Wrapped {
  const call = (event: WsEvent) => (typeof listener === 'function' ? listener.call(target, event) : listener.handleEvent(event));
  let wrapped: Wrapped;
  switch (type) {
    case 'message':
      wrapped = (data: unknown, isBinary: unknown) => call(new MessageEvent(target, isBinary ? data : Buffer.isBuffer(data) ? data.toString() : data));
      break;
    case 'close':
      wrapped = (code: unknown, reason: unknown) => call(new CloseEvent(target, code as number, Buffer.isBuffer(reason) ? reason.toString() : String(reason ?? ''), target.wasClean()));
      break;
    case 'error':
      wrapped = (error: unknown) => call(new ErrorEvent(target, error));
      break;
    default:
      wrapped = () => call(new WsEvent(type, target));
  }
  wrapped[kListener] = listener;
  return wrapped;
}

export function addEventListener(target: EventTargetHost, type: string, listener: EventListenerLike, options: { once?: boolean } = {}): void {
  for (const existing of target.listeners(type) as Wrapped[]) {
    if (existing[kListener] === listener && !existing[kForOnProperty]) return;
  }
  const wrapped = wrap(target, type, listener);
  if (options.once) target.once(type, wrapped);
  else target.on(type, wrapped);
}

export function removeEventListener(target: EventTargetHost, type: string, listener: EventListenerLike): void {
  for (const existing of target.listeners(type) as Wrapped[]) {
    if (existing[kListener] === listener && !existing[kForOnProperty]) {
      target.removeListener(type, existing);
      return;
    }
  }
}

export function getOnProperty(target: EventTargetHost, type: string): EventListenerLike | null {
  for (const existing of target.listeners(type) as Wrapped[]) {
    if (existing[kForOnProperty]) return existing[kListener] ?? null;
  }
  return null;
}

export function setOnProperty(target: EventTargetHost, type: string, handler: unknown): void {
  for (const existing of target.listeners(type) as Wrapped[]) {
    if (existing[kForOnProperty]) target.removeListener(type, existing);
  }
  if (typeof handler !== 'function') return;
  const wrapped = wrap(target, type, handler as EventListenerLike);
  wrapped[kForOnProperty] = true;
  target.on(type, wrapped);
}
