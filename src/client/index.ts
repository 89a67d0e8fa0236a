/**
 * Skiff's client library: `connect(url, {notifications, signal, timeout})` returns a Client
 * with one typed method per console request; notifications arrive through an async iterator.
 */
export { Client, connect } from "./client.js";
export type { Connection, ConnectOptions } from "./connection.js";
export { SeenExits } from "./seen-exits.js";
export { exec, type ExecOptions, type ExecSession } from "./exec.js";
export * from "./errors.js";
export * from "../protocol/index.js";
