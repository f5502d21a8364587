/**
 * The meta-schema of spec/: what each YAML file must look like before its meaning is checked.
 * Written with TypeBox so the same definitions give both the validator and the static types the
 * emitters work with.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';

const Rfc = Type.String({ minLength: 1, description: 'RFC 6455 section, or "7692 <section>" for RFC 7692' });
const Identifier = Type.String({ pattern: '^[a-z][A-Za-z0-9]*$' });
const EventName = Type.String({ pattern: '^[A-Z][A-Z0-9_]*$' });
const Strict = <T extends Record<string, TSchema>>(properties: T) =>
  Type.Object(properties, { additionalProperties: false });

// ---------------------------------------------------------------- protocol.yaml

export const OpcodeSpec = Strict({
  value: Type.Integer({ minimum: 0, maximum: 15 }),
  name: Identifier,
  kind: Type.Union([Type.Literal('data'), Type.Literal('control')]),
  fragmentable: Type.Boolean(),
  maxPayload: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
  reserved: Type.Boolean(),
  rfc: Rfc,
  description: Type.String({ minLength: 1 }),
});

export const CloseCodeSpec = Strict({
  code: Type.Integer({ minimum: 1000, maximum: 1999 }),
  name: Identifier,
  sendable: Type.Boolean(),
  validReceived: Type.Boolean(),
  rfc: Rfc,
  meaning: Type.String({ minLength: 1 }),
});

export const CloseCodeRangeSpec = Strict({
  from: Type.Integer({ minimum: 0, maximum: 65535 }),
  to: Type.Integer({ minimum: 0, maximum: 65535 }),
  name: Identifier,
  sendable: Type.Boolean(),
  validReceived: Type.Boolean(),
  rfc: Rfc,
  meaning: Type.String({ minLength: 1 }),
});

export const ProtocolFile = Strict({
  opcodes: Type.Array(OpcodeSpec, { minItems: 16, maxItems: 16 }),
  closeCodes: Type.Array(CloseCodeSpec, { minItems: 1 }),
  closeCodeRanges: Type.Array(CloseCodeRangeSpec),
});

// ---------------------------------------------------------------- errors.yaml

export const ErrorSpec = Strict({
  id: Identifier,
  code: Type.String({ pattern: '^WS_ERR_[A-Z0-9_]+$' }),
  stage: Type.Union([Type.Literal('frame'), Type.Literal('message'), Type.Literal('handshake')]),
  closeCode: Type.Integer(),
  status: Type.Optional(Type.Integer({ minimum: 400, maximum: 599 })),
  rfc: Rfc,
  message: Type.String({ minLength: 1 }),
});

export const ErrorsFile = Strict({ errors: Type.Array(ErrorSpec, { minItems: 1 }) });

// ---------------------------------------------------------------- machines/*.yaml

/** An action reference: a name, or `{ name: { param: literal } }` with literal parameters. */
export const ActionRef = Type.Union([
  Identifier,
  Type.Record(Identifier, Type.Record(Identifier, Type.Union([Type.String(), Type.Number(), Type.Boolean()])), {
    minProperties: 1,
    maxProperties: 1,
  }),
]);

export const TransitionSpec = Strict({
  target: Type.Optional(Type.String({ minLength: 1 })),
  guard: Type.Optional(Identifier),
  actions: Type.Optional(Type.Array(ActionRef)),
  reenter: Type.Optional(Type.Boolean()),
  description: Type.Optional(Type.String()),
  rfc: Type.Optional(Rfc),
});

/** One transition, or several tried in order (the first whose guard passes is taken). */
export const TransitionsSpec = Type.Union([Type.String({ minLength: 1 }), TransitionSpec, Type.Array(TransitionSpec, { minItems: 1 })]);

export interface StateSpecT {
  description?: string;
  rfc?: string;
  readyState?: 'CONNECTING' | 'OPEN' | 'CLOSING' | 'CLOSED';
  type?: 'parallel' | 'final';
  initial?: string;
  entry?: Static<typeof ActionRef>[];
  exit?: Static<typeof ActionRef>[];
  always?: Static<typeof TransitionsSpec>;
  after?: Record<string, Static<typeof TransitionsSpec>>;
  on?: Record<string, Static<typeof TransitionsSpec>>;
  ignore?: string[];
  states?: Record<string, StateSpecT>;
}

export const StateSpec = Type.Recursive(
  (Self) =>
    Strict({
      description: Type.Optional(Type.String()),
      rfc: Type.Optional(Rfc),
      readyState: Type.Optional(
        Type.Union([Type.Literal('CONNECTING'), Type.Literal('OPEN'), Type.Literal('CLOSING'), Type.Literal('CLOSED')]),
      ),
      type: Type.Optional(Type.Union([Type.Literal('parallel'), Type.Literal('final')])),
      initial: Type.Optional(Identifier),
      entry: Type.Optional(Type.Array(ActionRef)),
      exit: Type.Optional(Type.Array(ActionRef)),
      always: Type.Optional(TransitionsSpec),
      after: Type.Optional(Type.Record(Identifier, TransitionsSpec)),
      on: Type.Optional(Type.Record(EventName, TransitionsSpec)),
      ignore: Type.Optional(Type.Array(EventName)),
      states: Type.Optional(Type.Record(Identifier, Self)),
    }),
  { $id: 'StateSpec' },
);

const PayloadType = Type.Union([
  Type.Literal('number'),
  Type.Literal('string'),
  Type.Literal('boolean'),
  Type.Literal('closeCode'),
  Type.Literal('errorId'),
]);

export const MachineFile = Strict({
  id: Identifier,
  description: Type.String({ minLength: 1 }),
  rfc: Type.Optional(Rfc),
  context: Type.Record(
    Identifier,
    Strict({
      type: Type.Union([Type.Literal('role'), Type.Literal('opaque')]),
      description: Type.String({ minLength: 1 }),
    }),
  ),
  events: Type.Record(
    EventName,
    Strict({
      description: Type.String({ minLength: 1 }),
      payload: Type.Optional(Type.Record(Identifier, PayloadType)),
      optional: Type.Optional(Type.Array(Identifier)),
    }),
  ),
  guards: Type.Record(
    Identifier,
    Strict({
      description: Type.String({ minLength: 1 }),
      /** A guard that only reads the role is derived here; every other guard is provided by the runtime. */
      role: Type.Optional(Type.Union([Type.Literal('server'), Type.Literal('client')])),
    }),
  ),
  actions: Type.Record(
    Identifier,
    Strict({
      description: Type.String({ minLength: 1 }),
      /** What the action puts on the wire, for model checking: a frame, a TCP half-close, or a teardown. */
      wire: Type.Optional(
        Type.Union([
          Type.Literal('close'),
          Type.Literal('ping'),
          Type.Literal('pong'),
          Type.Literal('end'),
          Type.Literal('destroy'),
        ]),
      ),
      params: Type.Optional(Type.Record(Identifier, Type.Union([Type.Literal('number'), Type.Literal('string'), Type.Literal('errorId')]))),
      rfc: Type.Optional(Rfc),
    }),
  ),
  delays: Type.Record(
    Identifier,
    Strict({
      description: Type.String({ minLength: 1 }),
      setting: Identifier,
    }),
  ),
  initial: Identifier,
  states: Type.Record(Identifier, StateSpec),
});

// ---------------------------------------------------------------- settings.yaml

const SettingType = Type.Union([
  Type.Literal('integer'),
  Type.Literal('boolean'),
  Type.Literal('string'),
  Type.Literal('enum'),
  Type.Literal('stringList'),
  Type.Literal('stringMap'),
  Type.Literal('binary'),
  Type.Literal('function'),
  Type.Literal('object'),
  Type.Literal('any'),
]);
const Unit = Type.Union(
  ['bytes', 'ms', 'seconds', 'count', 'bits', 'none'].map((unit) => Type.Literal(unit)),
);
const Scalar = Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null(), Type.Array(Type.String())]);

export const SettingPropertySpec = Strict({
  type: SettingType,
  default: Type.Optional(Scalar),
  minimum: Type.Optional(Type.Number()),
  maximum: Type.Optional(Type.Number()),
  values: Type.Optional(Type.Array(Type.Union([Type.String(), Type.Number()]), { minItems: 1 })),
  description: Type.String({ minLength: 1 }),
});

export const DialectNames = ['ws', 'websocket', 'ipworks'] as const;
export type DialectName = (typeof DialectNames)[number];

export const DialectBindingSpec = Strict({
  name: Type.String({ pattern: '^[A-Za-z][A-Za-z0-9]*$' }),
  default: Type.Optional(Scalar),
  scale: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
  invert: Type.Optional(Type.Boolean()),
  kind: Type.Optional(Type.Union([Type.Literal('property'), Type.Literal('config')])),
  editions: Type.Optional(Type.Array(Type.Union([Type.Literal(2020), Type.Literal('v9')]), { minItems: 1 })),
  extension: Type.Optional(Type.Boolean()),
  note: Type.Optional(Type.String()),
});

export const SettingSpec = Strict({
  name: Identifier,
  group: Type.String({ minLength: 1 }),
  roles: Type.Array(Type.Union([Type.Literal('server'), Type.Literal('client')]), { minItems: 1 }),
  type: SettingType,
  default: Type.Optional(Scalar),
  minimum: Type.Optional(Type.Number()),
  maximum: Type.Optional(Type.Number()),
  values: Type.Optional(Type.Array(Type.Union([Type.String(), Type.Number()]), { minItems: 1 })),
  unit: Unit,
  description: Type.String({ minLength: 1 }),
  rfc: Type.Optional(Rfc),
  supported: Type.Boolean(),
  unsupportedReason: Type.Optional(Type.String({ minLength: 1 })),
  properties: Type.Optional(Type.Record(Identifier, SettingPropertySpec)),
  dialects: Strict({
    ws: Type.Optional(DialectBindingSpec),
    websocket: Type.Optional(DialectBindingSpec),
    ipworks: Type.Optional(DialectBindingSpec),
  }),
});

export const DialectSpec = Strict({
  roles: Type.Array(Type.Union([Type.Literal('server'), Type.Literal('client')]), { minItems: 1 }),
  description: Type.String({ minLength: 1 }),
});

export const SettingsFile = Strict({
  /** The roles each dialect's API is offered in: no schema is generated for another role. */
  dialects: Strict({ ws: DialectSpec, websocket: DialectSpec, ipworks: DialectSpec }),
  settings: Type.Array(SettingSpec, { minItems: 1 }),
});

export type OpcodeSpecT = Static<typeof OpcodeSpec>;
export type CloseCodeSpecT = Static<typeof CloseCodeSpec>;
export type CloseCodeRangeSpecT = Static<typeof CloseCodeRangeSpec>;
export type ProtocolFileT = Static<typeof ProtocolFile>;
export type ErrorSpecT = Static<typeof ErrorSpec>;
export type ErrorsFileT = Static<typeof ErrorsFile>;
export type ActionRefT = Static<typeof ActionRef>;
export type TransitionSpecT = Static<typeof TransitionSpec>;
export type TransitionsSpecT = Static<typeof TransitionsSpec>;
export type MachineFileT = Omit<Static<typeof MachineFile>, 'states'> & { states: Record<string, StateSpecT> };
export type SettingSpecT = Static<typeof SettingSpec>;
export type SettingPropertySpecT = Static<typeof SettingPropertySpec>;
export type DialectBindingSpecT = Static<typeof DialectBindingSpec>;
export type SettingsFileT = Static<typeof SettingsFile>;
