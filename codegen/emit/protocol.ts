/**
 * Emits generated/protocol.generated.ts: opcodes, close codes and protocol errors as typed
 * constants, lookup tables and predicates, with the RFC section of each carried into JSDoc.
 */
import { StructureKind, VariableDeclarationKind, type Project } from 'ts-morph';
import type { LoadedSpec } from '../load.js';
import { code, finish, literal, newSourceFile, quote, type EmittedFile } from './source.js';

const GENERATOR = 'emit/protocol.ts';
const OUTPUT = 'generated/protocol.generated.ts';

export function emitProtocol(project: Project, spec: LoadedSpec): EmittedFile {
  const { opcodes, closeCodes, closeCodeRanges } = spec.protocol.value;
  const errors = spec.errors.value.errors;
  const file = newSourceFile(project, OUTPUT, GENERATOR, ['spec/protocol.yaml', 'spec/errors.yaml']);
  const byValue = [...opcodes].sort((a, b) => a.value - b.value);

  // ------------------------------------------------------------------ opcodes
  file.addStatements([
    {
      kind: StructureKind.VariableStatement,
      isExported: true,
      declarationKind: VariableDeclarationKind.Const,
      docs: ['Frame opcodes by name (RFC 6455 section 5.2).'],
      declarations: [
        {
          name: 'Opcode',
          initializer: (writer) => {
            writer.write('{').newLine();
            writer.indent(() => {
              for (const op of byValue) {
                writer.writeLine(`/** 0x${op.value.toString(16).toUpperCase()}: ${op.description} RFC 6455 section ${op.rfc}. */`);
                writer.writeLine(`${op.name}: 0x${op.value.toString(16).toUpperCase()},`);
              }
            });
            writer.write('} as const');
          },
        },
      ],
    },
    {
      kind: StructureKind.TypeAlias,
      isExported: true,
      name: 'OpcodeName',
      type: 'keyof typeof Opcode',
    },
    {
      kind: StructureKind.Interface,
      isExported: true,
      name: 'OpcodeInfo',
      docs: ['What RFC 6455 says about one opcode.'],
      properties: [
        { name: 'value', type: 'number', isReadonly: true },
        { name: 'name', type: 'OpcodeName', isReadonly: true },
        { name: 'kind', type: "'data' | 'control'", isReadonly: true },
        { name: 'fragmentable', type: 'boolean', isReadonly: true, docs: ['May be split over several frames (section 5.4).'] },
        { name: 'maxPayload', type: 'number | null', isReadonly: true, docs: ['Largest payload in one frame, or null when only the endpoint limits it.'] },
        { name: 'reserved', type: 'boolean', isReadonly: true, docs: ['Receiving it without a negotiated extension fails the connection with 1002.'] },
        { name: 'rfc', type: 'string', isReadonly: true },
        { name: 'description', type: 'string', isReadonly: true },
      ],
    },
    {
      kind: StructureKind.VariableStatement,
      isExported: true,
      declarationKind: VariableDeclarationKind.Const,
      docs: ['Every opcode 0x0–0xF, indexed by its value.'],
      declarations: [
        {
          name: 'opcodeTable',
          type: 'readonly OpcodeInfo[]',
          initializer: literal(byValue.map((op) => ({ ...op }))),
        },
      ],
    },
  ]);

  const predicate = (name: string, doc: string, flags: boolean[]) => {
    const table = `${name}Table`;
    file.addVariableStatement({
      declarationKind: VariableDeclarationKind.Const,
      declarations: [{ name: table, type: 'readonly boolean[]', initializer: literal(flags) }],
    });
    file.addFunction({
      isExported: true,
      name,
      docs: [doc],
      parameters: [{ name: 'opcode', type: 'number' }],
      returnType: 'boolean',
      statements: [`return ${table}[opcode] === true;`],
    });
  };
  predicate('isControlOpcode', 'A control frame (section 5.5): never fragmented, payload at most 125 bytes.', byValue.map((op) => op.kind === 'control'));
  predicate('isDataOpcode', 'A data frame (section 5.6), including continuation.', byValue.map((op) => op.kind === 'data'));
  predicate('isReservedOpcode', 'Reserved (section 5.2): receiving one without an extension defining it is a protocol error.', byValue.map((op) => op.reserved));
  predicate('isFragmentableOpcode', 'May appear in a fragmented message (section 5.4).', byValue.map((op) => op.fragmentable));

  // ------------------------------------------------------------------ close codes
  const sortedCodes = [...closeCodes].sort((a, b) => a.code - b.code);
  const sortedRanges = [...closeCodeRanges].sort((a, b) => a.from - b.from);
  file.addVariableStatement({
    isExported: true,
    declarationKind: VariableDeclarationKind.Const,
    docs: ['Close status codes by name (RFC 6455 section 7.4.1 and the IANA registry, section 11.7).'],
    declarations: [
      {
        name: 'CloseCode',
        initializer: (writer) => {
          writer.write('{').newLine();
          writer.indent(() => {
            for (const c of sortedCodes) {
              writer.writeLine(`/** ${c.code}: ${c.meaning}${c.sendable ? '' : ' Never sent on the wire.'} RFC 6455 section ${c.rfc}. */`);
              writer.writeLine(`${c.name}: ${c.code},`);
            }
          });
          writer.write('} as const');
        },
      },
    ],
  });
  file.addTypeAlias({ isExported: true, name: 'CloseCodeName', type: 'keyof typeof CloseCode' });
  file.addInterface({
    isExported: true,
    name: 'CloseCodeInfo',
    properties: [
      { name: 'code', type: 'number', isReadonly: true },
      { name: 'name', type: 'string', isReadonly: true },
      { name: 'sendable', type: 'boolean', isReadonly: true, docs: ['May be put in a close frame.'] },
      { name: 'validReceived', type: 'boolean', isReadonly: true, docs: ['Accepted in a close frame from the peer; anything else is answered with 1002.'] },
      { name: 'rfc', type: 'string', isReadonly: true },
      { name: 'meaning', type: 'string', isReadonly: true },
    ],
  });
  file.addInterface({
    isExported: true,
    name: 'CloseCodeRangeInfo',
    properties: [
      { name: 'from', type: 'number', isReadonly: true },
      { name: 'to', type: 'number', isReadonly: true },
      { name: 'name', type: 'string', isReadonly: true },
      { name: 'sendable', type: 'boolean', isReadonly: true },
      { name: 'validReceived', type: 'boolean', isReadonly: true },
      { name: 'rfc', type: 'string', isReadonly: true },
      { name: 'meaning', type: 'string', isReadonly: true },
    ],
  });
  file.addVariableStatements([
    {
      isExported: true,
      declarationKind: VariableDeclarationKind.Const,
      docs: ['Every individually defined close code, in ascending order.'],
      declarations: [{ name: 'closeCodeTable', type: 'readonly CloseCodeInfo[]', initializer: literal(sortedCodes.map((c) => ({ ...c }))) }],
    },
    {
      isExported: true,
      declarationKind: VariableDeclarationKind.Const,
      docs: ['The ranges of section 7.4.2, in ascending order.'],
      declarations: [{ name: 'closeCodeRanges', type: 'readonly CloseCodeRangeInfo[]', initializer: literal(sortedRanges.map((r) => ({ ...r }))) }],
    },
  ]);
  file.addFunction({
    isExported: true,
    name: 'describeCloseCode',
    docs: ['What the spec says about a close code: its own entry, else its range, else undefined.'],
    parameters: [{ name: 'code', type: 'number' }],
    returnType: 'CloseCodeInfo | CloseCodeRangeInfo | undefined',
    statements: [
      'if (!Number.isInteger(code)) return undefined;',
      'for (const entry of closeCodeTable) if (entry.code === code) return entry;',
      'for (const range of closeCodeRanges) if (code >= range.from && code <= range.to) return range;',
      'return undefined;',
    ],
  });
  const codeSwitch = (field: 'sendable' | 'validReceived') => {
    const lines: string[] = [];
    const yes = sortedCodes.filter((c) => c[field]).map((c) => c.code);
    const ranges = sortedRanges.filter((r) => r[field]);
    lines.push(`switch (code) {`);
    for (const value of yes) lines.push(`case ${value}:`);
    lines.push('return true;', '}');
    if (ranges.length > 0) lines.push(`return ${ranges.map((r) => `(code >= ${r.from} && code <= ${r.to})`).join(' || ')};`);
    else lines.push('return false;');
    return lines;
  };
  file.addFunction({
    isExported: true,
    name: 'isSendableCloseCode',
    docs: ['May an endpoint put this code in a close frame? (RFC 6455 section 7.4: 1004, 1005, 1006 and 1015 never.)'],
    parameters: [{ name: 'code', type: 'number' }],
    returnType: 'boolean',
    statements: codeSwitch('sendable'),
  });
  file.addFunction({
    isExported: true,
    name: 'isValidReceivedCloseCode',
    docs: ['Is this code acceptable in a close frame from the peer? Anything else fails the connection with 1002 (section 7.4.1).'],
    parameters: [{ name: 'code', type: 'number' }],
    returnType: 'boolean',
    statements: codeSwitch('validReceived'),
  });

  // ------------------------------------------------------------------ errors
  const sortedErrors = [...errors].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  file.addTypeAlias({
    isExported: true,
    name: 'ProtocolErrorId',
    docs: ['Every way a peer can break the protocol (spec/errors.yaml).'],
    type: sortedErrors.map((e) => quote(e.id)).join(' | '),
  });
  file.addTypeAlias({
    isExported: true,
    name: 'ProtocolErrorCode',
    docs: ['The `err.code` values users see; ws\'s names where ws has one.'],
    type: [...new Set(sortedErrors.map((e) => e.code))].sort().map(quote).join(' | '),
  });
  file.addInterface({
    isExported: true,
    name: 'ProtocolErrorInfo',
    properties: [
      { name: 'id', type: 'ProtocolErrorId', isReadonly: true },
      { name: 'code', type: 'ProtocolErrorCode', isReadonly: true },
      { name: 'stage', type: "'frame' | 'message' | 'handshake'", isReadonly: true },
      { name: 'closeCode', type: 'number', isReadonly: true, docs: ['Sent in the close frame (frame and message stages) or reported locally (handshake).'] },
      { name: 'status', type: 'number | undefined', isReadonly: true, docs: ['The HTTP status a server answers a bad upgrade request with.'] },
      { name: 'rfc', type: 'string', isReadonly: true },
      { name: 'message', type: 'string', isReadonly: true },
    ],
  });
  file.addVariableStatement({
    isExported: true,
    declarationKind: VariableDeclarationKind.Const,
    docs: ['The protocol error table: the one place an error becomes a close code or an HTTP status.'],
    declarations: [
      {
        name: 'protocolErrors',
        type: '{ readonly [Id in ProtocolErrorId]: ProtocolErrorInfo }',
        initializer: (writer) => {
          writer.write('{').newLine();
          writer.indent(() => {
            for (const e of sortedErrors) {
              writer.writeLine(`/** ${e.message} — RFC ${e.rfc.startsWith('7692') ? e.rfc : `6455 section ${e.rfc}`}. */`);
              writer.write(`${e.id}: `);
              literal({ id: e.id, code: e.code, stage: e.stage, closeCode: e.closeCode, status: e.status ?? code('undefined'), rfc: e.rfc, message: e.message })(writer);
              writer.write(',').newLine();
            }
          });
          writer.write('}');
        },
      },
    ],
  });

  return finish(file, OUTPUT);
}
