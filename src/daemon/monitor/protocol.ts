// Wire format between the daemon and skiff-monitor (docs/monitor.md): each
// frame is a 4-byte big-endian payload length followed by one UTF-8 JSON
// object with a string member "type". Pure code: no I/O.

import { messageOf } from "../../common/errors.js";

export const PROTOCOL_VERSION = 1;
export const MAX_FRAME_PAYLOAD = 65536;
const HEADER = 4;

export class MonitorProtocolError extends Error {
  override name = "MonitorProtocolError";
}

export type ExitStatus = { code: number } | { signal: number };
export type ExitReason = "shutdown" | "reboot" | "error";
/**
 * The monitor's phase as its STATE frame reports it: a projection of the C monitor's
 * `enum phase` (native/monitor/session.c, `phase_names`), mapped onto the daemon's lifecycle in
 * state/lifecycle.ts's header. Not a phase of the daemon's own.
 */
export type MonitorPhase = "creating" | "created" | "running" | "exited";
export type LogStream = "stdout" | "stderr";

export interface ExitRecord {
  id: string;
  status: ExitStatus;
  reason: ExitReason;
  /** Absent when the runtime never created the container (reason "error"). */
  initPid?: number;
  /** RFC 3339 UTC time the monitor classified the exit. */
  time: string;
  /** The runtime's error output, for reason "error". */
  error?: string;
  /** True when the OOM killer killed a task of the container (only with a memory cgroup; absent otherwise). */
  oom?: boolean;
}

/** The fields of a memory event: Northstar's MemoryEvent, the cgroup's memory.events keys. */
const MEMORY_FIELDS = ["low", "high", "max", "oom", "oom_kill", "oom_group_kill"] as const;

/** Memory events since the previous `memory` message (0: did not happen). */
export type MemoryCounts = Record<(typeof MEMORY_FIELDS)[number], number>;

export type MonitorMessage =
  | { type: "hello"; version: number; pid: number }
  | { type: "state"; state: MonitorPhase; pid?: number }
  | { type: "init"; pid: number }
  | { type: "started" }
  | { type: "killed"; signal: number }
  /** The answer to `reopen_log`: the log file was opened again at its path. */
  | { type: "log_reopened" }
  | { type: "error"; op: string; message: string }
  | { type: "log"; stream: LogStream; line: string }
  | ({ type: "memory" } & MemoryCounts)
  | ({ type: "exit" } & ExitRecord);

export type DaemonMessage =
  | { type: "hello"; version: number }
  | { type: "start" }
  | { type: "kill"; signal: number; all?: boolean }
  /** Close the log and open it again at its path (CRI's ReopenContainerLog, after a rename). */
  | { type: "reopen_log" }
  | { type: "ack" };

export function encodeFrame(message: DaemonMessage | MonitorMessage): Buffer {
  const payload = Buffer.from(JSON.stringify(message), "utf8");
  if (payload.length > MAX_FRAME_PAYLOAD) {
    throw new MonitorProtocolError(`frame payload of ${payload.length} bytes exceeds ${MAX_FRAME_PAYLOAD}`);
  }
  const frame = Buffer.allocUnsafe(HEADER + payload.length);
  frame.writeUInt32BE(payload.length, 0);
  payload.copy(frame, HEADER);
  return frame;
}

/** Incremental decoder: push() socket chunks, get back complete JSON payloads. */
export class FrameDecoder {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): unknown[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const out: unknown[] = [];
    let offset = 0;
    while (this.pending.length - offset >= HEADER) {
      const length = this.pending.readUInt32BE(offset);
      if (length === 0 || length > MAX_FRAME_PAYLOAD) {
        throw new MonitorProtocolError(`invalid frame length ${length} (allowed 1..${MAX_FRAME_PAYLOAD})`);
      }
      if (this.pending.length - offset - HEADER < length) break;
      const text = this.pending.toString("utf8", offset + HEADER, offset + HEADER + length);
      offset += HEADER + length;
      try {
        out.push(JSON.parse(text));
      } catch (err) {
        throw new MonitorProtocolError(`frame is not JSON: ${messageOf(err)}`);
      }
    }
    this.pending = this.pending.subarray(offset);
    return out;
  }

  /** Bytes of an incomplete frame still buffered (non-zero at EOF means truncation). */
  get buffered(): number {
    return this.pending.length;
  }
}

type Obj = Record<string, unknown>;

function isObject(value: unknown): value is Obj {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function int(obj: Obj, key: string, where: string): number {
  const value = obj[key];
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new MonitorProtocolError(`${where}.${key}: expected an integer, got ${JSON.stringify(value)}`);
  }
  return value;
}

function count(obj: Obj, key: string, where: string): number {
  const value = int(obj, key, where);
  if (value < 0) throw new MonitorProtocolError(`${where}.${key}: expected a count, got ${value}`);
  return value;
}

function str(obj: Obj, key: string, where: string): string {
  const value = obj[key];
  if (typeof value !== "string") {
    throw new MonitorProtocolError(`${where}.${key}: expected a string, got ${JSON.stringify(value)}`);
  }
  return value;
}

function oneOf<T extends string>(obj: Obj, key: string, allowed: readonly T[], where: string): T {
  const value = str(obj, key, where);
  if (!(allowed as readonly string[]).includes(value)) {
    throw new MonitorProtocolError(`${where}.${key}: expected one of ${allowed.join(", ")}, got "${value}"`);
  }
  return value as T;
}

/** Validates an exit record as found in exit.json or an EXIT message. */
export function parseExitRecord(value: unknown, where = "exit"): ExitRecord {
  if (!isObject(value)) throw new MonitorProtocolError(`${where}: expected an object`);
  const status = value.status;
  if (!isObject(status)) throw new MonitorProtocolError(`${where}.status: expected an object`);
  let parsedStatus: ExitStatus;
  if ("signal" in status) parsedStatus = { signal: int(status, "signal", `${where}.status`) };
  else parsedStatus = { code: int(status, "code", `${where}.status`) };
  const record: ExitRecord = {
    id: str(value, "id", where),
    status: parsedStatus,
    reason: oneOf(value, "reason", ["shutdown", "reboot", "error"] as const, where),
    time: str(value, "time", where),
  };
  if (value.initPid !== undefined) record.initPid = int(value, "initPid", where);
  if (value.error !== undefined) record.error = str(value, "error", where);
  if (value.oom !== undefined) {
    if (typeof value.oom !== "boolean") {
      throw new MonitorProtocolError(`${where}.oom: expected a boolean, got ${JSON.stringify(value.oom)}`);
    }
    record.oom = value.oom;
  }
  return record;
}

/** Validates one decoded frame from the monitor. */
export function parseMonitorMessage(value: unknown): MonitorMessage {
  if (!isObject(value)) throw new MonitorProtocolError("message: expected a JSON object");
  const type = str(value, "type", "message");
  const where = `${type} message`;
  switch (type) {
    case "hello":
      return { type, version: int(value, "version", where), pid: int(value, "pid", where) };
    case "state": {
      const state = oneOf(value, "state", ["creating", "created", "running", "exited"] as const, where);
      return value.pid === undefined ? { type, state } : { type, state, pid: int(value, "pid", where) };
    }
    case "init":
      return { type, pid: int(value, "pid", where) };
    case "started":
      return { type };
    case "killed":
      return { type, signal: int(value, "signal", where) };
    case "log_reopened":
      return { type };
    case "error":
      return {
        type,
        op: typeof value.op === "string" ? value.op : "",
        message: str(value, "message", where),
      };
    case "log":
      return {
        type,
        stream: oneOf(value, "stream", ["stdout", "stderr"] as const, where),
        line: str(value, "line", where),
      };
    case "memory": {
      const counts = {} as MemoryCounts;
      for (const field of MEMORY_FIELDS) counts[field] = count(value, field, where);
      return { type, ...counts };
    }
    case "exit":
      return { type, ...parseExitRecord(value, where) };
    default:
      throw new MonitorProtocolError(`message.type: unknown type "${type}"`);
  }
}
