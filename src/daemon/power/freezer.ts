// Freezes and thaws container cgroups. One implementation per host, chosen once from the layout:
// - the v1 freezer controller (freezer.state) whenever it is mounted, which includes hybrid hosts;
// - cgroup2's cgroup.freeze / cgroup.events otherwise.
// On a hybrid host runc 1.1 also puts containers into the unified hierarchy, so both would work, but
// `runc pause`/`runc state` use the v1 freezer there; using the same one keeps Skiff and runc agreeing on
// whether a container is paused, and it also covers processes that are only in the v1 cgroups.
//
// The pause answer waits for the freezer's confirmation and nothing else: the request and the reads of
// the state are synchronous (a cgroupfs access is a few microseconds of kernel work; through the libuv
// thread pool each open/write/close is a round trip of its own), and a freeze still completing right
// after the request is re-checked on the next turns of the event loop rather than after a timer's
// 1 ms floor.
import { readFileSync, watch, writeFileSync, type FSWatcher } from "node:fs";
import type { CgroupLayout } from "../cgroups/layout.js";
import { controllerDir, unifiedDir } from "../cgroups/paths.js";
import { CgroupFileError, errnoCode, parseFlatKeyed } from "../cgroups/fsio.js";

export type FreezerState = "thawed" | "freezing" | "frozen";
export type FreezerKind = "v1" | "v2";

export interface FreezeOptions {
  /** The freeze must be seen complete within this time, else the cgroup is thawed and freeze() fails. */
  timeoutMs: number;
  signal?: AbortSignal;
  /** Called (and awaited) once the freeze was requested and before its completion is checked: the moment a
   *  caller (e.g. the power manager taking a lock) acts "while the freeze is in progress". If it throws, the
   *  cgroup is thawed and freeze() fails with that error. */
  onIntermediate?: () => void | Promise<void>;
}

export class FreezeError extends Error {
  constructor(
    readonly cgroupPath: string,
    message: string,
  ) {
    super(`freezing ${cgroupPath}: ${message}`);
    this.name = "FreezeError";
  }
}

export function freezerKind(layout: CgroupLayout): FreezerKind {
  if (layout.controllers.get("freezer")?.version === 1) return "v1";
  if (layout.unified !== undefined) return "v2";
  throw new Error("this host has neither a v1 freezer controller nor cgroup2");
}

// libvirt's schedule for a v1 freezer that lingers in FREEZING: re-request and check after 1, 10, 100 and
// 1000 ms, then give up.
const RETRY_MS = [1, 10, 100, 1000];
// cgroup2 reports completion through cgroup.events (watched); the poll only guards against a missed event.
const V2_POLL_MS = 50;
// A sleeping task reaches the refrigerator tens of microseconds after the request, so the first read
// often says "freezing". For this long the state is re-read on every turn of the event loop (each
// turn serves whatever else is pending first) before the schedules above take over.
const PROMPT_CHECK_MS = 2;

function readControl(file: string): string {
  try {
    return readFileSync(file, "utf8").trim();
  } catch (error) {
    const code = errnoCode(error);
    throw new CgroupFileError(`cannot read ${file}: ${code ?? String(error)}`, file, code);
  }
}

function writeControl(file: string, value: string): void {
  try {
    writeFileSync(file, value);
  } catch (error) {
    const code = errnoCode(error);
    throw new CgroupFileError(`cannot write "${value}" to ${file}: ${code ?? String(error)}`, file, code);
  }
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class Freezer {
  readonly kind: FreezerKind;

  constructor(private readonly layout: CgroupLayout) {
    this.kind = freezerKind(layout);
  }

  /** Freezes every task of the cgroup at absolute path `cgroupPath`. On failure the cgroup is left thawed. */
  async freeze(cgroupPath: string, options: FreezeOptions): Promise<void> {
    const deadline = Date.now() + options.timeoutMs;
    this.request(cgroupPath, true);
    try {
      await options.onIntermediate?.();
      if (!(await this.awaitFrozen(cgroupPath, deadline, options.signal))) {
        throw new FreezeError(
          cgroupPath,
          `not frozen within ${options.timeoutMs} ms (state now: ${this.currentState(cgroupPath)})`,
        );
      }
    } catch (error) {
      await this.thaw(cgroupPath);
      throw error;
    }
  }

  // Still asynchronous for the callers (a failure is a rejection, as with every other cgroup operation).
  // eslint-disable-next-line @typescript-eslint/require-await
  async thaw(cgroupPath: string): Promise<void> {
    this.request(cgroupPath, false);
  }

  // eslint-disable-next-line @typescript-eslint/require-await
  async state(cgroupPath: string): Promise<FreezerState> {
    return this.currentState(cgroupPath);
  }

  private currentState(cgroupPath: string): FreezerState {
    if (this.kind === "v1") {
      const state = readControl(`${this.v1Dir(cgroupPath)}/freezer.state`);
      if (state === "FROZEN") return "frozen";
      return state === "FREEZING" ? "freezing" : "thawed";
    }
    const dir = this.v2Dir(cgroupPath);
    if (parseFlatKeyed(readControl(`${dir}/cgroup.events`)).get("frozen") === 1) return "frozen";
    return readControl(`${dir}/cgroup.freeze`) === "1" ? "freezing" : "thawed";
  }

  private request(cgroupPath: string, frozen: boolean): void {
    if (this.kind === "v1") {
      writeControl(`${this.v1Dir(cgroupPath)}/freezer.state`, frozen ? "FROZEN" : "THAWED");
    } else {
      writeControl(`${this.v2Dir(cgroupPath)}/cgroup.freeze`, frozen ? "1" : "0");
    }
  }

  // Resolves true once the state reads "frozen" before the deadline, false when the deadline (or, on v1, the
  // retry schedule) runs out. A completion seen only after the deadline counts as a failure.
  private async awaitFrozen(
    cgroupPath: string,
    deadline: number,
    signal: AbortSignal | undefined,
  ): Promise<boolean> {
    const promptUntil = performance.now() + PROMPT_CHECK_MS;
    for (;;) {
      signal?.throwIfAborted();
      if (this.currentState(cgroupPath) === "frozen") return Date.now() <= deadline;
      if (performance.now() >= promptUntil) break;
      await nextTurn();
    }
    let wakeUp: (() => void) | undefined;
    let changed: FSWatcher | undefined;
    if (this.kind === "v2") {
      // cgroup.events is modified (inotify) when "frozen" flips; that ends the current wait early.
      changed = watch(`${this.v2Dir(cgroupPath)}/cgroup.events`, () => wakeUp?.());
      changed.on("error", () => changed?.close());
    }
    try {
      for (let attempt = 0; ; attempt++) {
        signal?.throwIfAborted();
        if (this.currentState(cgroupPath) === "frozen") return Date.now() <= deadline;
        const remaining = deadline - Date.now();
        const wait = this.kind === "v1" ? RETRY_MS[attempt] : V2_POLL_MS;
        if (remaining <= 0 || wait === undefined) return false;
        if (this.kind === "v1") this.request(cgroupPath, true); // re-request: retries the busy tasks
        await new Promise<void>((resolve, reject) => {
          const finish = (): void => {
            clearTimeout(timer);
            signal?.removeEventListener("abort", abort);
            wakeUp = undefined;
          };
          const abort = (): void => {
            finish();
            reject(signal?.reason as Error);
          };
          const timer = setTimeout(
            () => {
              finish();
              resolve();
            },
            Math.min(wait, remaining),
          );
          wakeUp = () => {
            finish();
            resolve();
          };
          signal?.addEventListener("abort", abort, { once: true });
        });
      }
    } finally {
      changed?.close();
    }
  }

  private v1Dir(cgroupPath: string): string {
    const dir = controllerDir(this.layout, "freezer", cgroupPath);
    if (dir === undefined) throw new Error("no v1 freezer controller");
    return dir;
  }

  private v2Dir(cgroupPath: string): string {
    const dir = unifiedDir(this.layout, cgroupPath);
    if (dir === undefined) throw new Error("no cgroup2 hierarchy");
    return dir;
  }
}
