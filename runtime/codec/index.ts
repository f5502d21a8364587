/** The sans-I/O RFC 6455 frame codec: parser, serializer, masking and UTF-8 validation. */
export { FrameParser, type ParsedFrame, type ParserOptions, type ParserSink } from './parser.js';
export { closePayload, fragmentPayload, frameHeader, serializeFrame, type OutgoingFrame } from './serializer.js';
export { applyMask, setNativeMask, unmask, unmaskRange } from './mask.js';
export { Utf8Validator, isValidUtf8, isValidUtf8Dfa } from './utf8.js';
