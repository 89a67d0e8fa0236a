export * from "./version.js";
export * from "./container.js";
export * from "./permissions.js";
export * from "./messages.js";
export { encodeMessage, decodeMessage, DecodeError } from "./codec.js";
export { LineReader, LineTooLongError } from "./framing.js";
export * from "./url.js";
export { SKIFF_DIALECT, encodeFor, northstarMessage } from "./dialect.js";
