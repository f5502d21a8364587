/**
 * Checks of meaning for spec/protocol.yaml and spec/errors.yaml, beyond their shape: every opcode
 * once, close codes unique and not overlapping the ranges, RFC 6455's fixed rules kept (control
 * frames carry at most 125 bytes, 1005/1006/1015 never sent), and every error's close code sendable
 * when it goes on the wire.
 */
import type { ErrorsFileT, ProtocolFileT } from './spec-schema.js';
import type { SpecFile, SpecProblem } from './load.js';

export function validateProtocol(protocol: SpecFile<ProtocolFileT>, problems: SpecProblem[]): void {
  const { opcodes, closeCodes, closeCodeRanges } = protocol.value;
  const values = new Map<number, number>();
  const names = new Map<string, number>();
  opcodes.forEach((op, index) => {
    if (values.has(op.value)) problems.push(protocol.problem(['opcodes', index, 'value'], `opcode 0x${op.value.toString(16)} is declared twice (first at opcodes[${values.get(op.value)}])`));
    values.set(op.value, index);
    if (names.has(op.name)) problems.push(protocol.problem(['opcodes', index, 'name'], `opcode name "${op.name}" is used twice`));
    names.set(op.name, index);
    // RFC 6455 section 5.2: opcodes 0x8-0xF are control frames, 0x0-0x7 data frames.
    const expectedKind = op.value >= 0x8 ? 'control' : 'data';
    if (op.kind !== expectedKind) problems.push(protocol.problem(['opcodes', index, 'kind'], `opcode 0x${op.value.toString(16)} is a ${expectedKind} opcode (RFC 6455 section 5.2)`));
    // Section 5.5: "All control frames MUST have a payload length of 125 bytes or less and MUST NOT be fragmented."
    if (op.kind === 'control' && (op.maxPayload === null || op.maxPayload > 125)) problems.push(protocol.problem(['opcodes', index, 'maxPayload'], 'a control frame carries at most 125 bytes (RFC 6455 section 5.5)'));
    if (op.kind === 'control' && op.fragmentable) problems.push(protocol.problem(['opcodes', index, 'fragmentable'], 'control frames must not be fragmented (RFC 6455 section 5.5)'));
    if (op.reserved && op.fragmentable) problems.push(protocol.problem(['opcodes', index, 'fragmentable'], 'a reserved opcode cannot be fragmentable'));
  });
  for (let value = 0; value < 16; value++) {
    if (!values.has(value)) problems.push(protocol.problem(['opcodes'], `opcode 0x${value.toString(16)} is missing`));
  }

  const codes = new Map<number, number>();
  const codeNames = new Set<string>();
  closeCodes.forEach((entry, index) => {
    if (codes.has(entry.code)) problems.push(protocol.problem(['closeCodes', index, 'code'], `close code ${entry.code} is declared twice`));
    codes.set(entry.code, index);
    if (codeNames.has(entry.name)) problems.push(protocol.problem(['closeCodes', index, 'name'], `close code name "${entry.name}" is used twice`));
    codeNames.add(entry.name);
    // Section 7.4.1: 1005, 1006 and 1015 are designated for local reporting and MUST NOT be sent.
    if ([1005, 1006, 1015].includes(entry.code) && entry.sendable) problems.push(protocol.problem(['closeCodes', index, 'sendable'], `${entry.code} MUST NOT be set as a status code in a close frame (RFC 6455 section 7.4.1)`));
    if (entry.sendable && !entry.validReceived) problems.push(protocol.problem(['closeCodes', index, 'validReceived'], `${entry.code} may be sent, so a peer must accept it`));
    for (const [rangeIndex, range] of closeCodeRanges.entries()) {
      if (entry.code >= range.from && entry.code <= range.to) problems.push(protocol.problem(['closeCodes', index, 'code'], `${entry.code} falls inside range closeCodeRanges[${rangeIndex}] (${range.from}-${range.to})`));
    }
  });
  for (let code = 1000; code <= 1015; code++) {
    if (!codes.has(code)) problems.push(protocol.problem(['closeCodes'], `close code ${code} is missing`));
  }
  const ranges = [...closeCodeRanges.entries()].sort(([, a], [, b]) => a.from - b.from);
  ranges.forEach(([index, range], position) => {
    if (range.from > range.to) problems.push(protocol.problem(['closeCodeRanges', index], `range starts at ${range.from} after it ends at ${range.to}`));
    const previous = ranges[position - 1];
    if (previous && previous[1].to >= range.from) problems.push(protocol.problem(['closeCodeRanges', index], `range ${range.from}-${range.to} overlaps closeCodeRanges[${previous[0]}]`));
  });
}

export function isSendable(protocol: ProtocolFileT, code: number): boolean {
  const entry = protocol.closeCodes.find((c) => c.code === code);
  if (entry) return entry.sendable;
  return protocol.closeCodeRanges.some((r) => code >= r.from && code <= r.to && r.sendable);
}

export function isKnownCloseCode(protocol: ProtocolFileT, code: number): boolean {
  return protocol.closeCodes.some((c) => c.code === code) || protocol.closeCodeRanges.some((r) => code >= r.from && code <= r.to);
}

export function validateErrors(errors: SpecFile<ErrorsFileT>, protocol: ProtocolFileT, problems: SpecProblem[]): void {
  const ids = new Set<string>();
  errors.value.errors.forEach((error, index) => {
    if (ids.has(error.id)) problems.push(errors.problem(['errors', index, 'id'], `error id "${error.id}" is used twice`));
    ids.add(error.id);
    if (!isKnownCloseCode(protocol, error.closeCode)) problems.push(errors.problem(['errors', index, 'closeCode'], `close code ${error.closeCode} is not declared in protocol.yaml`));
    else if (error.stage !== 'handshake' && !isSendable(protocol, error.closeCode)) problems.push(errors.problem(['errors', index, 'closeCode'], `close code ${error.closeCode} goes on the wire for a ${error.stage} error but may not be sent`));
    if (error.stage !== 'handshake' && error.status !== undefined) problems.push(errors.problem(['errors', index, 'status'], 'only handshake errors have an HTTP status'));
  });
}
