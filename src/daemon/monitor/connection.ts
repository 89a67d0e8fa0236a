import { EventEmitter } from "node:events";
import { createConnection, type Socket } from "node:net";
import { constants as osConstants } from "node:os";
import { join } from "node:path";
import {
  encodeFrame,
  FrameDecoder,
  parseMonitorMessage,
  PROTOCOL_VERSION,
  type DaemonMessage,
  type ExitRecord,
  type LogStream,
  type MemoryCounts,
  type MonitorMessage,
  type MonitorPhase,
} from "./protocol.js";

export interface MonitorConnectionEvents {
  state: [phase: MonitorPhase, pid: number | undefined];
  init: [pid: number];
  started: [];
  log: [stream: LogStream, line: string];
  /** Memory events since the previous `memory` event; all of them arrive before `exit`. */
  memory: [counts: MemoryCounts];
  exit: [record: ExitRecord];
  /** The connection ended; error is set for protocol or socket failures. */
  close: [error: Error | undefined];
}

/**
 * The connection's state, about the socket only: `connecting` until the HELLO/STATE handshake
 * is done, `connected`, then `closed` (the monitor, and the container, may live on).
 */
export type ConnectionState = "connecting" | "connected" | "closed";

interface PendingRequest {
  op: "start" | "kill" | "reopen_log";
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * One daemon-side connection to a skiff-monitor. Messages arriving together
 * with the handshake are delivered on a later macrotask, so listeners added
 * right after `await connectMonitor()` see every event. Closing the
 * connection never stops the monitor or the container.
 */
// INVARIANTS: the monitor answers each request (start -> started|error,
// kill -> killed|error) in order per op, so replies resolve the oldest
// pending request of the same op. EXIT is the monitor's last frame.
export class MonitorConnection extends EventEmitter<MonitorConnectionEvents> {
  monitorPid = 0;
  /**
   * What the monitor last reported of its phase (STATE, INIT, STARTED, EXIT): its own view,
   * read at adoption (containers/adopt.ts); the daemon's phase of the instance is the state's.
   */
  monitorPhase: MonitorPhase = "creating";
  initPid: number | undefined;
  exitRecord: ExitRecord | undefined;
  private readonly decoder = new FrameDecoder();
  private readonly queue: (MonitorMessage | { type: "closed"; error: Error | undefined })[] = [];
  private readonly pending: PendingRequest[] = [];
  private exitWaiters: { resolve: (r: ExitRecord) => void; reject: (e: Error) => void }[] = [];
  private handshake: "hello" | "state" | "done" = "hello";
  private delivering = false;
  private closed: Error | undefined;
  private onReady: ((err?: Error) => void) | undefined;

  private constructor(
    private readonly socket: Socket,
    readonly stateDir: string,
  ) {
    super();
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", (err) => this.enqueueClose(err));
    socket.on("close", () => this.enqueueClose(undefined));
  }

  /** Connects to `<stateDir>/monitor.sock` and completes the HELLO/STATE handshake. */
  static open(stateDir: string, signal?: AbortSignal): Promise<MonitorConnection> {
    signal?.throwIfAborted();
    const socket = createConnection(join(stateDir, "monitor.sock"));
    const conn = new MonitorConnection(socket, stateDir);
    return new Promise((resolve, reject) => {
      const onAbort = (): void => conn.onReady?.(signal?.reason as Error);
      signal?.addEventListener("abort", onAbort, { once: true });
      conn.onReady = (err) => {
        conn.onReady = undefined;
        signal?.removeEventListener("abort", onAbort);
        if (err) {
          socket.destroy();
          reject(err);
          return;
        }
        resolve(conn);
        setImmediate(() => {
          conn.delivering = true;
          conn.pump();
        });
      };
      socket.once("connect", () => conn.send({ type: "hello", version: PROTOCOL_VERSION }));
    });
  }

  /** Starts a created container (the monitor reads the runtime's exec fifo). */
  start(): Promise<void> {
    return this.request("start", { type: "start" });
  }

  /** Signals the container's init (which forwards to the app), or every process with `all`. */
  kill(signal: NodeJS.Signals | number, options: { all?: boolean } = {}): Promise<void> {
    const number = typeof signal === "number" ? signal : osConstants.signals[signal];
    if (!Number.isInteger(number)) return Promise.reject(new Error(`unknown signal ${String(signal)}`));
    return this.request("kill", { type: "kill", signal: number, all: options.all === true });
  }

  /** Has the monitor open its log file again at its path (after the kubelet renamed it away). */
  reopenLog(): Promise<void> {
    return this.request("reopen_log", { type: "reopen_log" });
  }

  /**
   * Where the connection (the socket, not the instance) stands. `closed`: its `close` event was
   * emitted; a listener attached late checks this and `exitRecord`, so an exit or a close that
   * happened before it is not missed.
   */
  get connection(): ConnectionState {
    if (this.closed !== undefined) return "closed";
    return this.handshake === "done" ? "connected" : "connecting";
  }

  /** Resolves with the exit record; rejects if the connection ends without one. */
  exited(): Promise<ExitRecord> {
    if (this.exitRecord) return Promise.resolve(this.exitRecord);
    if (this.closed) return Promise.reject(this.closedError());
    return new Promise((resolve, reject) => this.exitWaiters.push({ resolve, reject }));
  }

  /** Drops this connection; the monitor keeps supervising the container. */
  close(): void {
    this.socket.destroy();
  }

  private request(op: PendingRequest["op"], message: DaemonMessage): Promise<void> {
    if (this.closed) return Promise.reject(this.closedError());
    if (this.exitRecord) return Promise.reject(new Error(`container ${this.exitRecord.id} has exited`));
    return new Promise((resolve, reject) => {
      this.pending.push({ op, resolve, reject });
      this.send(message);
    });
  }

  private send(message: DaemonMessage): void {
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(encodeFrame(message));
  }

  private onData(chunk: Buffer): void {
    try {
      for (const value of this.decoder.push(chunk)) this.queue.push(parseMonitorMessage(value));
    } catch (err) {
      this.socket.destroy(err as Error);
      return;
    }
    this.pump();
  }

  private enqueueClose(error: Error | undefined): void {
    if (this.queue.some((m) => m.type === "closed")) return;
    this.queue.push({ type: "closed", error });
    this.pump();
  }

  private pump(): void {
    while (this.queue.length > 0 && (this.delivering || this.handshake !== "done")) {
      const message = this.queue.shift()!;
      if (message.type === "closed") this.finish(message.error);
      else if (this.handshake !== "done") this.handshakeStep(message);
      else this.dispatch(message);
    }
  }

  private handshakeStep(message: MonitorMessage): void {
    if (this.handshake === "hello" && message.type === "hello") {
      if (message.version !== PROTOCOL_VERSION) {
        this.onReady?.(new Error(`monitor speaks protocol ${message.version}, daemon ${PROTOCOL_VERSION}`));
        return;
      }
      this.monitorPid = message.pid;
      this.handshake = "state";
    } else if (this.handshake === "state" && message.type === "state") {
      this.applyState(message.state, message.pid);
      this.handshake = "done";
      this.onReady?.();
    } else {
      this.onReady?.(new Error(`monitor handshake: unexpected ${message.type} message`));
    }
  }

  private applyState(phase: MonitorPhase, pid: number | undefined): void {
    this.monitorPhase = phase;
    if (pid !== undefined) this.initPid = pid;
  }

  private dispatch(message: MonitorMessage): void {
    switch (message.type) {
      case "state":
        this.applyState(message.state, message.pid);
        this.emit("state", message.state, message.pid);
        break;
      case "init":
        this.applyState("created", message.pid);
        this.emit("init", message.pid);
        break;
      case "started":
        this.monitorPhase = "running";
        this.settle("start");
        this.emit("started");
        break;
      case "killed":
        this.settle("kill");
        break;
      case "log_reopened":
        this.settle("reopen_log");
        break;
      case "error":
        this.settle(message.op, new Error(`monitor ${message.op || "request"} failed: ${message.message}`));
        break;
      case "log":
        this.emit("log", message.stream, message.line);
        break;
      case "memory": {
        const { type: _type, ...counts } = message;
        this.emit("memory", counts);
        break;
      }
      case "exit": {
        const { type: _type, ...record } = message;
        this.exitRecord = record;
        this.monitorPhase = "exited";
        this.send({ type: "ack" });
        this.socket.end();
        for (const w of this.exitWaiters.splice(0)) w.resolve(record);
        this.emit("exit", record);
        break;
      }
      case "hello":
        break;
    }
  }

  private settle(op: string, error?: Error): void {
    const index = this.pending.findIndex((p) => p.op === op);
    if (index < 0) return;
    const [request] = this.pending.splice(index, 1);
    if (error) request!.reject(error);
    else request!.resolve();
  }

  private closedError(): Error {
    return new Error(`connection to monitor in ${this.stateDir} closed`, { cause: this.closed });
  }

  private finish(error: Error | undefined): void {
    if (this.closed) return;
    this.closed = error ?? new Error("closed");
    this.onReady?.(
      error ?? new Error(`monitor in ${this.stateDir} closed the connection during the handshake`),
    );
    const err = this.closedError();
    for (const p of this.pending.splice(0)) p.reject(this.exitRecord ? new Error("container exited") : err);
    for (const w of this.exitWaiters.splice(0)) w.reject(err);
    this.emit("close", error);
  }
}
