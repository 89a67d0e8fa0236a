import { destination, pino, type Logger } from "pino";
import type { LogLevel } from "./config/schema.js";

/** Structured JSON logs on stderr, written synchronously so nothing is lost on a crash. */
export function createLogger(level: LogLevel): Logger {
  return pino({ level, base: { pid: process.pid } }, destination({ fd: 2, sync: true }));
}
