/**
 * What the streaming server needs from the rest of Skiff: the lookups CRI fills in (which Skiff
 * container a CRI container is, which network namespace a pod has) and a way to start a process
 * in a running container (the console's `exec` machinery, src/daemon/exec/).
 */
import type { Readable, Writable } from "node:stream";
import type { ContainerId } from "../../protocol/container.js";
import type { ExecRequest, ExitStatus } from "../../protocol/messages.js";
import type { LogFormat } from "./attach.js";

/** The lookups the CRI containers and pod store provide (wired by the daemon). */
export interface StreamingLookup {
  /**
   * A CRI container id: its Skiff container, whether it runs now, and the log file its output
   * goes to (for Attach: the monitor's `container.log`, or a log in CRI's format); undefined:
   * unknown id.
   */
  container(
    criContainerId: string,
  ): { skiffId: ContainerId; running: boolean; log?: { path: string; format: LogFormat } } | undefined;
  /**
   * A pod sandbox id: the file that holds its network namespace open (a bind mount of
   * /proc/PID/ns/net, as `unshare --net=FILE` makes); undefined: unknown pod, or no network
   * namespace of its own.
   */
  podNetns(podSandboxId: string): string | undefined;
}

/** A process started in a container; it belongs to whoever holds it until `close()`. */
export interface StartedExec {
  pid: number;
  stdin: Writable;
  stdout: Readable;
  stderr: Readable;
  /** Settles once the process ended and all its output was read. */
  ended: Promise<ExitStatus>;
  resize(rows: number, cols: number): void;
  signal(signal: number): void;
  /** Ends supervision: a process still running is killed (SIGKILL); frees its exec slot. */
  close(): void;
}

/** Refusals of an exec that never started; the message says why. */
export class ExecRefusedError extends Error {
  override name = "ExecRefusedError";
  constructor(
    message: string,
    /** not_found: no such container; not_running; exhausted: too many execs; failed: the runtime. */
    readonly reason: "not_found" | "not_running" | "exhausted" | "invalid" | "failed",
  ) {
    super(message);
  }
}

/** Starts a process in a running Skiff container, or rejects with ExecRefusedError. */
export type ExecStarter = (request: ExecRequest) => Promise<StartedExec>;
