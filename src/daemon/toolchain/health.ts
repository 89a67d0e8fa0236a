/**
 * The toolchain's health: a loud signal that containers cannot start. The toolchain is the three
 * binaries every container start needs: the OCI runtime, skiff-monitor and skiff-init. When one
 * of them is gone or broken every start fails, and a device should say so once, clearly, instead
 * of failing each start with a different error. On the wire this state keeps its original name,
 * `executor_degraded` (the error) and `health` (request and notification). The daemon answers
 * the `health` request from here, broadcasts the `health` notification from `onChange`, and
 * calls `ensureHealthy()` before each start and prepare.
 *
 * Problems come from two places:
 * - Binary problems, from `check()`: the runtime is missing, or `--version` does not exit 0
 *   with a line naming a version within `probeTimeoutMs`; the monitor or init is missing, not a
 *   regular file or not executable. They hold until the next `check()` finds the binaries fine.
 * - Monitor deaths, from `recordMonitorDeath()`: a monitor died without reporting its
 *   container's end. A death is cleared once (1) a `check()` that started after the death found
 *   no binary problem and (2) a container start succeeded after that check
 *   (`recordStartSucceeded()`). Both are needed: the check shows the binaries are back, the
 *   start shows the whole path (runtime, monitor, init) works again.
 *
 * `ensureHealthy()` re-checks whenever the status is degraded (or nothing was checked yet), so a
 * binary put back makes the next start work without a daemon restart. It throws
 * `ToolchainDegradedError` only for binary problems: outstanding monitor deaths alone let the
 * start go ahead, since only a successful start can clear them. While the status is ok it does
 * not probe (starts stay cheap), so the daemon calls `check()` after a start fails in the
 * container executor: a binary that went away meanwhile is then reported, and later starts
 * refused fast.
 *
 * **Skiff**: the answer also says how keyed images are protected on this host (`verity`), a
 * fact probed once at daemon start (docs/npk.md, "Image protection").
 */
import { execFile } from "node:child_process";
import { stat } from "node:fs/promises";
import type { Logger } from "pino";
import type { ContainerId } from "../../protocol/container.js";
import type { HealthInfo, VerityProtection } from "../../protocol/messages.js";
import { messageOf } from "../../common/errors.js";

/** `--version` of a healthy runtime answers in milliseconds; a hung one must not hold a start. */
const DEFAULT_PROBE_TIMEOUT_MS = 500;
/** Enough of the runtime's output to tell the problem, short enough for a notification. */
const MAX_OUTPUT_IN_PROBLEM = 200;

export interface ToolchainHealthOptions {
  /** Absolute path of the OCI runtime binary (runc or crun). */
  runtimePath: string;
  /** Absolute path of skiff-monitor. */
  monitorPath: string;
  /** Absolute path of skiff-init. */
  initPath: string;
  /** Reported as `verity`: how keyed repositories' images are protected (`none`: none is keyed). */
  verity?: VerityProtection;
  log: Logger;
  /** How long `<runtime> --version` may take before the runtime counts as broken (default 500 ms). */
  probeTimeoutMs?: number;
}

/**
 * A start or prepare refused because the toolchain is broken; `problems` says what is wrong.
 * Answered on the wire as `executor_degraded`, whose name the message keeps.
 */
export class ToolchainDegradedError extends Error {
  override name = "ToolchainDegradedError";
  constructor(readonly problems: string[]) {
    super(`executor degraded: ${problems.join("; ")}`);
  }
}

interface MonitorDeath {
  problem: string;
  /** The event tick at which it was recorded. */
  tick: number;
}

export class ToolchainHealth {
  private readonly runtimePath: string;
  private readonly monitorPath: string;
  private readonly initPath: string;
  private readonly verity: VerityProtection | undefined;
  private readonly log: Logger;
  private readonly probeTimeoutMs: number;

  // INVARIANTS: `tick` increases with every check started, death recorded and start recorded,
  // so "after" below is a comparison of ticks. `binaryProblems` is the result of the check that
  // finished last; `cleanCheckTick` is the start tick of the last check, when that check found
  // no binary problem, else -1. A check that begins while another runs shares its result (one
  // probe at a time); its result is at most one probe old.
  private tick = 0;
  private checked = false;
  private binaryProblems: string[] = [];
  private cleanCheckTick = -1;
  private readonly deaths = new Map<ContainerId, MonitorDeath>();
  private inflight: Promise<HealthInfo> | undefined;
  private readonly listeners = new Set<(health: HealthInfo) => void>();
  private status: HealthInfo["status"] = "ok";

  constructor(options: ToolchainHealthOptions) {
    this.runtimePath = options.runtimePath;
    this.monitorPath = options.monitorPath;
    this.initPath = options.initPath;
    this.verity = options.verity;
    this.log = options.log;
    this.probeTimeoutMs = options.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
  }

  /** The status now: binary problems of the last check first, then monitor deaths. */
  get current(): HealthInfo {
    const problems = [...this.binaryProblems, ...[...this.deaths.values()].map((d) => d.problem)];
    const status = problems.length === 0 ? "ok" : "degraded";
    return this.verity === undefined ? { status, problems } : { status, problems, verity: this.verity };
  }

  /** Calls `callback` with the new status whenever it flips between ok and degraded. */
  onChange(callback: (health: HealthInfo) => void): () => void {
    this.listeners.add(callback);
    return () => this.listeners.delete(callback);
  }

  /** Probes the runtime, monitor and init binaries (cheap: no container is involved). */
  check(): Promise<HealthInfo> {
    this.inflight ??= this.probe().finally(() => (this.inflight = undefined));
    return this.inflight;
  }

  /** A monitor died without reporting its container's end. */
  recordMonitorDeath(container: ContainerId, detail?: string): void {
    this.tick++;
    const problem = `monitor of ${container} died unexpectedly${detail ? ` (${detail})` : ""}`;
    this.deaths.set(container, { problem, tick: this.tick });
    this.log.error({ container, detail }, "toolchain: monitor died unexpectedly");
    this.publish();
  }

  /** A container started (its init runs): clears the monitor deaths a clean check followed. */
  recordStartSucceeded(container: ContainerId): void {
    this.tick++;
    if (this.cleanCheckTick < 0) return;
    const cleared = [...this.deaths]
      .filter(([, death]) => death.tick < this.cleanCheckTick)
      .map(([dead]) => dead);
    if (cleared.length === 0) return;
    cleared.forEach((dead) => this.deaths.delete(dead));
    this.log.info(
      { container, cleared },
      "toolchain: a start succeeded after a clean check; monitor deaths cleared",
    );
    this.publish();
  }

  /**
   * Resolves when a start may go ahead; re-checks first when degraded or never checked. Throws
   * ToolchainDegradedError (with every problem) when a binary is still broken; this takes at
   * most one probe, bounded by `probeTimeoutMs`.
   */
  async ensureHealthy(): Promise<void> {
    if (this.checked && this.current.status === "ok") return;
    await this.check();
    if (this.binaryProblems.length > 0) throw new ToolchainDegradedError(this.current.problems);
  }

  private async probe(): Promise<HealthInfo> {
    const startTick = ++this.tick;
    const problems = (
      await Promise.all([
        this.probeRuntime(),
        binaryProblem("skiff-monitor", this.monitorPath),
        binaryProblem("skiff-init", this.initPath),
      ])
    ).filter((p): p is string => p !== undefined);
    this.checked = true;
    this.binaryProblems = problems;
    this.cleanCheckTick = problems.length === 0 ? startTick : -1;
    this.publish();
    return this.current;
  }

  /** Undefined when `<runtime> --version` exits 0 and names a version in time, else the problem. */
  private probeRuntime(): Promise<string | undefined> {
    const path = this.runtimePath;
    return new Promise((resolve) => {
      execFile(
        path,
        ["--version"],
        { timeout: this.probeTimeoutMs, killSignal: "SIGKILL", encoding: "utf8" },
        (error, stdout, stderr) => {
          // An empty or non-ELF file "runs" through execvp's /bin/sh fallback and may exit 0:
          // only an answer naming a version counts.
          if (error === null) {
            if (/\bversion\b/.test(stdout)) return resolve(undefined);
            const first = stdout.trim().split("\n")[0]!.slice(0, MAX_OUTPUT_IN_PROBLEM);
            return resolve(`OCI runtime ${path}: "--version" printed no version ("${first}")`);
          }
          const code = (error as NodeJS.ErrnoException).code;
          const failure = error as { killed?: boolean; signal?: string | null; code?: unknown };
          if (code === "ENOENT") return resolve(`OCI runtime ${path}: not found`);
          if (code === "EACCES") return resolve(`OCI runtime ${path}: not executable`);
          if (typeof code === "string") return resolve(`OCI runtime ${path}: cannot run it (${code})`);
          if (failure.killed === true && failure.signal === "SIGKILL") {
            return resolve(`OCI runtime ${path}: no answer to --version within ${this.probeTimeoutMs} ms`);
          }
          const how = failure.signal ? `signal ${failure.signal}` : `exit code ${String(failure.code)}`;
          const said = stderr.trim().slice(0, MAX_OUTPUT_IN_PROBLEM);
          resolve(`OCI runtime ${path}: "--version" failed with ${how}${said ? `: ${said}` : ""}`);
        },
      );
    });
  }

  /** Tells listeners and the log when the status flipped. */
  private publish(): void {
    const health = this.current;
    if (health.status === this.status) return;
    this.status = health.status;
    if (health.status === "degraded") {
      this.log.error(
        { problems: health.problems },
        "toolchain DEGRADED (executor_degraded): containers cannot start",
      );
    } else {
      this.log.info("toolchain healthy again");
    }
    for (const listener of this.listeners) listener(health);
  }
}

/** Undefined when `path` is an executable regular file (after symlinks), else the problem. */
async function binaryProblem(label: string, path: string): Promise<string | undefined> {
  try {
    const info = await stat(path);
    if (!info.isFile()) return `${label} ${path}: not a regular file`;
    if ((info.mode & 0o111) === 0) {
      return `${label} ${path}: not executable (mode ${(info.mode & 0o7777).toString(8).padStart(4, "0")})`;
    }
    return undefined;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === "ENOENT" ? `${label} ${path}: not found` : `${label} ${path}: ${messageOf(e)}`;
  }
}
