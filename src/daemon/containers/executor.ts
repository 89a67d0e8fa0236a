/**
 * Executes container steps: start (mount, bundle, monitor, exec fifo), kill, stop with
 * escalation, cleanup after an exit, restart timers, logs. Each start runs as a job whose end is
 * reported as a `job` event; exits come from the monitors as `container` events.
 *
 * INVARIANTS:
 * - At most one Instance per container name; it lives from the start step to the cleanup step.
 * - Exactly one exit event per instance: its `ExitReport` guards the monitor's EXIT, a monitor
 *   that vanished, and a start that failed after the monitor existed. It carries the instance's
 *   identity (instance.json), so an exit a crashed daemon repeats is recognisably the same.
 * - No exit is lost across daemon restarts: the exit record (exit.json, or instance.json for a
 *   monitor that died) is retired only after the exit notification was handed to the hub, which
 *   at start-up holds notifications until the first subscriber (`notificationsDelivered`). A
 *   crash before the hand-off leaves the record, and the next daemon reports it (the same
 *   instance id); a crash after it, before the retirement, repeats it (the same instance id).
 * - An adopted instance's exit event is posted after the `adopted` job, which gives the state
 *   its process record: an exit seen before that would find no instance to end.
 * - No phase is kept here: the state's lifecycle (state/lifecycle.ts) decides, and the steps
 *   say what to do (a start step says whether it uses or replaces the prepared instance). An
 *   Instance holds handles only: the monitor connection, timers, the start's promise, and
 *   where the report of its exit stands (`ExitReport`), which makes it reported exactly once.
 * - Steps for an instance that is still starting (kill, stop) wait for the start to settle
 *   (the kill rule in state/lifecycle.ts: the signal reaches the init the runtime created).
 * - No promise is left without a handler: work nobody awaits goes through `background`, and
 *   `started` and the `cleanups` never reject (`settled`). A monitor's answer may be a rejection
 *   at any moment (its container exited, its connection ended), so a request to it is awaited,
 *   or joined with `Promise.all`, at once, never after another await.
 * - A start waits for the cleanup of the container's previous instance, which shares its
 *   bundle, state directory and cgroup paths; the cleanup waits for the previous monitor to be
 *   gone, since its exit removes the socket path the next monitor binds.
 */
import { createHash } from "node:crypto";
import { mkdir, readdir } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import type { Manifest } from "../../npk/manifest/index.js";
import { nameOf, type ContainerId } from "../../protocol/container.js";
import type { ExitStatus } from "../../protocol/messages.js";
import { toMemoryNotification, type CgroupSupervisor, type ProcessStatistics } from "../cgroups/index.js";
import type { ContainerConsoles } from "../console/container-console.js";
import type { ContainerJob, InstanceEvent, Reply } from "../events/types.js";
import type { MountHandle } from "../mount/index.js";
import {
  readExitRecord,
  spawnMonitor,
  MonitorLauncher,
  type MonitorConnection,
  type MonitorIo,
  type MonitorStreamsIo,
} from "../monitor/client.js";
import type { ExitRecord } from "../monitor/protocol.js";
import type { PackageExecutor } from "../repository/executor.js";
import type { AdoptedInstance, CriContainerPart, CriResources, InstalledPackage } from "../events/data.js";
import { mountCriRoot, prepareCriLog, unmountCriRoot, writeCriExit } from "./cri-root.js";
import type { ContainerStep } from "../events/steps.js";
import { ToolchainDegradedError, type ToolchainHealth } from "../toolchain/health.js";
import { deleteLostRuntimeState, type FoundInstance } from "./adopt.js";
import { newInstanceId, removeInstanceFiles, writeInstanceRecord } from "./instance.js";
import { readLogSince, readLogTail } from "./logs.js";
import type { BundleWriter } from "./bundle.js";
import type { DebugCommands } from "./debug-commands.js";
import { MAX_UNIX_SOCKET_PATH } from "../../common/unix-socket.js";
import { resolveWithin } from "../../common/paths.js";
import {
  checkpointDir,
  hasCheckpointImage,
  removeCheckpointImage,
  runCheckpoint,
  statusPipeOf,
  type CheckpointSupport,
} from "./checkpoint.js";
import { bestEffort, bestEffortValue, DaemonError, messageOf, toWireError } from "../errors.js";
import { ifExists, settled } from "../../common/errors.js";
import { containerError, containerResponse, inspectResponse, logsResponse } from "../responses.js";

export interface ContainerExecutorOptions {
  runDir: string;
  /** Holds one directory per container: the monitor's state and the container's logs. */
  containersDir: string;
  runtime: { path: string; root: string; kind?: "runc" | "crun" };
  logRotation: { maxBytes: number; files: number };
  cgroups: CgroupSupervisor;
  packages: PackageExecutor;
  consoles: ContainerConsoles;
  bundles: BundleWriter;
  /** The toolchain's health: starts fail fast while the runtime, monitor or init is broken. */
  health: ToolchainHealth;
  report: (result: ContainerJob) => Promise<void>;
  emit: (container: ContainerId, event: InstanceEvent) => Promise<void>;
  /**
   * Resolves once the notifications of the steps carried out so far have been handed to the
   * notification hub (at start-up they are held until a client subscribes; runtime.ts).
   */
  notificationsDelivered: () => Promise<void>;
  log: Logger;
  /** Checkpoint/restore: CRIU probed once at daemon start (containers/checkpoint.ts). */
  checkpointSupport?: Promise<CheckpointSupport>;
  /** `[debug] commands`: spawned with init's pid between create and start (debug-commands.ts). */
  debugCommands?: Pick<DebugCommands, "configured" | "start">;
}

/**
 * The report of an instance's exit, not a phase of the instance (that is the state's,
 * state/lifecycle.ts): it makes the exit reported exactly once and moves forward only.
 * - `owed`: nothing decided yet; the monitor's EXIT (or its loss) will be reported;
 * - `decided`: the one exit event is decided: it is being reported, or it never will be (the
 *   instance was discarded, checkpointed or detached);
 * - `posted`: the exit event was posted; the cleanup retires the exit record once it was
 *   delivered (`notificationsDelivered`).
 */
type ExitReport = "owed" | "decided" | "posted";

interface Instance {
  /** The instance's identity (instance.json), carried on its exit notification. */
  id: string;
  container: ContainerId;
  stateDir: string;
  /** Absolute cgroup path; absent until the start has chosen it. */
  cgroupPath?: string;
  monitor?: MonitorConnection;
  /** Memory events become `c_group` notifications (manifest `oom_monitor`, or `oom_monitor_all`). */
  reportMemory: boolean;
  /** A CRI container's part (its overlay root, CRI log, exit.json): cri-root.ts. */
  cri?: CriContainerPart;
  /** Settles when the start step has finished, successfully or not. */
  started: Promise<void>;
  /** Where its one exit event stands (`ExitReport`); moves forward only. */
  exitReport: ExitReport;
  stopTimer?: NodeJS.Timeout;
  /** A checkpoint is dumping it: the exit that ends the dump is held here, not reported. */
  checkpointing?: { exit?: Pick<ExitRecord, "status" | "reason" | "oom"> };
}

/** The monitor's exit record in the console's terms. */
function exitStatusOf(record: Pick<ExitRecord, "status" | "reason">, oom = false): ExitStatus {
  const extra = { reason: record.reason, ...(oom ? { oom: true } : {}) };
  return "code" in record.status
    ? { type: "exit", code: record.status.code, ...extra }
    : { type: "signalled", signal: record.status.signal, ...extra };
}

/** Epoch ms of an exit record's `time` (the monitor's), or now when it has none. */
function finishedAt(record: { time?: string }): number {
  const ms = record.time === undefined ? Number.NaN : Date.parse(record.time);
  return Number.isFinite(ms) ? ms : Date.now();
}

/**
 * The monitor's io per stream, as the manifest says. Without an `io` section both streams go to
 * the container's log (Northstar would discard them; a log is what a device integrator wants).
 */
function monitorIo(io: { stdout: MonitorIo; stderr: MonitorIo } | undefined): MonitorStreamsIo {
  return io ? { stdout: io.stdout, stderr: io.stderr } : { stdout: "pipe", stderr: "pipe" };
}

/**
 * How long a start (or the runtime's create of a prepared instance) may take before it counts as
 * failed and the instance is ended: a runtime that hangs must not leave a request unanswered.
 */
const START_DEADLINE_MS = 30_000;

function withDeadline<V>(promise: Promise<V>, ms: number, what: string): Promise<V> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not complete within ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/**
 * A container's directory: `<dir>/<name>`, or, when the monitor's socket path in it would be too
 * long for a Unix socket (names may have 1024 characters), a shortened name with a hash of the
 * full one. instance.json inside names the container, so nothing depends on the directory name.
 */
export function containerDir(dir: string, name: string): string {
  if (join(dir, name, "monitor.sock").length <= MAX_UNIX_SOCKET_PATH) return resolveWithin(dir, name);
  const hash = createHash("sha256").update(name).digest("hex").slice(0, 16);
  const room = Math.max(8, MAX_UNIX_SOCKET_PATH - join(dir, "", "monitor.sock").length - hash.length - 2);
  return resolveWithin(dir, `${name.slice(0, room)}-${hash}`);
}

/**
 * How long a monitor whose container exited while no daemon was connected waits for one before
 * it exits (`--linger-ms`). Its exit.json is what the next daemon reports either way, so this
 * only spares the file read: a monitor of an ended instance must not outstay it by minutes
 * (its default) after a kill -9 of the daemon.
 */
const EXIT_LINGER_MS = 2000;

/**
 * How long a cleanup waits for an ended instance's monitor to go (it exits once its EXIT was
 * acknowledged, which the connection does on receipt).
 */
const MONITOR_GONE_MS = 5000;

/**
 * Waits until the monitor has closed its end, then drops ours. A monitor removes its socket
 * file before it closes the connection: once it is gone, the next instance's monitor can bind
 * the same path without the old one unlinking it.
 */
/**
 * SIGKILLs every process of an instance as a cleanup: a failure is logged, and a monitor that
 * has already ended (or gone) had nothing left to kill.
 */
function killAll(log: Logger, container: ContainerId, monitor: MonitorConnection | undefined): Promise<void> {
  const ended = (): boolean => monitor?.exitRecord !== undefined || monitor?.connection === "closed";
  return bestEffort(log, `SIGKILL of ${container}`, monitor?.kill("SIGKILL", { all: true }), ended);
}

async function monitorGone(monitor: MonitorConnection): Promise<void> {
  if (monitor.connection !== "closed") {
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      timer = setTimeout(resolve, MONITOR_GONE_MS);
      monitor.once("close", () => resolve());
    });
    clearTimeout(timer);
  }
  monitor.close();
}

/** The container's init pid, once the runtime has created it. */
function initPidOf(monitor: MonitorConnection): Promise<number> {
  if (monitor.initPid !== undefined) return Promise.resolve(monitor.initPid);
  return new Promise((resolve, reject) => {
    monitor.once("init", resolve);
    monitor.once("exit", () => reject(new Error("the container ended before it was created")));
    monitor.once("close", () => reject(new Error("the monitor went away before the container was created")));
  });
}

export class ContainerExecutor {
  private readonly instances = new Map<ContainerId, Instance>();
  private readonly restartTimers = new Map<ContainerId, NodeJS.Timeout>();
  /** Cleanups in progress: a new instance of the same container starts after its predecessor's. */
  private readonly cleanups = new Map<ContainerId, Promise<void>>();

  /**
   * Spawns the monitors (native/launcher): started at the first start, replaced at the next
   * start after it died; its loss is logged as an error. Closed at shutdown.
   */
  private readonly launcher: MonitorLauncher;

  constructor(private readonly o: ContainerExecutorOptions) {
    this.launcher = new MonitorLauncher((reason) =>
      this.o.log.error(`${reason}; the next start starts a new one (its monitors keep running)`),
    );
  }

  stateDir(container: ContainerId): string {
    return containerDir(this.o.containersDir, nameOf(container));
  }

  get running(): ContainerId[] {
    return [...this.instances.keys()];
  }

  execute(step: ContainerStep): void {
    switch (step.type) {
      case "start_container":
        this.start(step);
        return;
      case "kill_container":
        this.background(
          step.container,
          "kill",
          this.kill(step.container, step.signal).then(
            () => step.reply?.(containerResponse("kill", step.container)),
            (e: unknown) => step.reply?.(containerResponse("kill", step.container, toWireError(e))),
          ),
        );
        return;
      case "stop_container":
        this.background(step.container, "stop", this.stop(step.container, step.graceMs));
        return;
      case "cleanup_container":
        this.background(step.container, "cleanup", this.cleanup(step.container));
        return;
      case "schedule_restart": {
        clearTimeout(this.restartTimers.get(step.container));
        const timer = setTimeout(() => {
          this.restartTimers.delete(step.container);
          this.background(step.container, "restart", this.o.emit(step.container, { type: "restart_due" }));
        }, step.delayMs);
        this.restartTimers.set(step.container, timer);
        return;
      }
      case "read_logs":
        this.background(step.container, "logs", this.readLogs(step));
        return;
      case "reply_inspect":
        step.reply(inspectResponse(step.view, this.statistics(step.container)));
        return;
      case "log":
        this.o.log[step.level]({ container: step.container }, step.message);
        return;
      case "checkpoint_container":
        void this.checkpoint(step.container, step.reply);
        return;
      case "discard_prepared":
        void bestEffort(this.o.log, "discarding prepared instances", this.discardPrepared(step));
        return;
      case "discard_checkpoint":
        void removeCheckpointImage(this.stateDir(step.container)).catch((e: unknown) =>
          this.o.log.warn({ container: step.container, err: e }, "removing the checkpoint image failed"),
        );
        return;
      default: {
        const unrouted: never = step;
        throw new Error(`unrouted container step ${JSON.stringify(unrouted)}`);
      }
    }
  }

  private start(step: Extract<ContainerStep, { type: "start_container" }>): void {
    const container = step.container;
    // The state knows whether the container has a prepared instance (its lifecycle phase); an
    // ended one waiting for its cleanup is no longer in the state, so no step names it.
    const existing = step.prepared ? this.instances.get(container) : undefined;
    if (existing && step.prepared === "replace") {
      // Overrides (or a restore) cannot use the prepared process: discard it, then start cold.
      this.o.log.info(
        { container },
        "start with overrides: discarding the prepared instance for a cold start",
      );
      this.cleanups.set(container, this.settled(container, "discard", this.discard(existing)));
      this.startNew(step);
      return;
    }
    if (existing) {
      existing.started = this.settled(container, "start", this.startPrepared(existing));
      return;
    }
    this.startNew(step);
  }

  /** Starting a prepared instance: the monitor opens the exec fifo, nothing else. */
  private async startPrepared(instance: Instance): Promise<void> {
    const { container } = instance;
    try {
      await instance.started;
      if (!instance.monitor) throw new Error("the prepared instance has no monitor");
      await withDeadline(instance.monitor.start(), START_DEADLINE_MS, "the start");
      this.o.health.recordStartSucceeded(container);
      this.o.log.info({ container }, "started from a prepared instance");
      await this.o.report({
        type: "container_started",
        container,
        pid: instance.monitor.initPid ?? 0,
        startedAt: Date.now(),
        cgroupPath: instance.cgroupPath ?? "",
      });
    } catch (e) {
      this.o.log.error({ container }, `start of the prepared instance failed: ${messageOf(e)}`);
      await killAll(this.o.log, container, instance.monitor);
    }
  }

  /**
   * Effect work nobody awaits: its failure is logged. A rejection left unhandled would end the
   * daemon, and with it the supervision of every other container.
   */
  private background(container: ContainerId, what: string, work: Promise<unknown>): void {
    void this.settled(container, what, work);
  }

  /** `work` as a promise that never rejects: a failure is logged instead of passed on. */
  private settled(container: ContainerId, what: string, work: Promise<unknown>): Promise<void> {
    return work.then(
      () => undefined,
      (e: unknown) => void this.o.log.error({ container, err: e }, `${what} failed: ${messageOf(e)}`),
    );
  }

  /**
   * Discards prepared instances before an umount of their images (the state asks only for
   * containers whose instance is prepared, and their `umount` busy mark keeps starts away),
   * then hands the umount back to the state (`prepared_discarded`).
   */
  private async discardPrepared(step: Extract<ContainerStep, { type: "discard_prepared" }>): Promise<void> {
    const results = await Promise.all(
      step.containers.map(async (container) => {
        const instance = this.instances.get(container);
        try {
          if (instance) await this.discard(instance);
          return { container };
        } catch (e) {
          this.o.log.warn({ container, err: e }, "umount failed");
          return { container, error: toWireError(e, container) };
        }
      }),
    );
    await this.o.report({ type: "prepared_discarded", results, umount: step.umount });
  }

  /** Ends a prepared instance without reporting an exit, and cleans it up. */
  private async discard(instance: Instance): Promise<void> {
    instance.exitReport = "decided";
    this.instances.delete(instance.container);
    await settled(instance.started);
    if (instance.monitor) {
      const ended = settled(instance.monitor.exited());
      await killAll(this.o.log, instance.container, instance.monitor);
      await ended;
    }
    await this.cleanupNow(instance.container, instance);
  }

  private startNew(step: Extract<ContainerStep, { type: "start_container" }>): void {
    const container = step.container;
    const instance: Instance = {
      id: newInstanceId(),
      container,
      stateDir: this.stateDir(container),
      started: Promise.resolve(),
      exitReport: "owed",
      reportMemory: false,
    };
    this.instances.set(container, instance);
    instance.started = this.settled(container, "start", this.startInstance(instance, step));
  }

  private async startInstance(
    instance: Instance,
    step: Extract<ContainerStep, { type: "start_container" }>,
  ): Promise<void> {
    const { container, pkg } = step;
    const mounted: { container: ContainerId; handle: MountHandle }[] = [];
    const manifest = pkg.npk.manifest;
    const cri = pkg.cri;
    instance.cri = cri;
    await this.cleanups.get(container);
    try {
      await this.o.health.ensureHealthy();
      // A CRI container's cgroup is beneath its pod's (the pod's limits apply to it).
      const cgroupPath = cri
        ? this.o.cgroups.criContainerPath(cri.cgroupParent, manifest.name)
        : this.o.cgroups.containerPath(manifest);
      instance.cgroupPath = cgroupPath;
      instance.reportMemory = this.o.cgroups.monitorsMemory(manifest);
      const attrWarnings: string[] = [];
      const attrs = this.o.cgroups.attrFiles(manifest, attrWarnings);
      // The mount step: a CRI container's overlay (cri-root.ts), or the package's image.
      const root = cri
        ? { target: await mountCriRoot(cri) }
        : (step.mount ?? (await this.mountFor(container, pkg, mounted)));
      if (cri?.logPath !== undefined) await prepareCriLog(cri.logPath);
      const resourceRoots: Record<string, string> = {};
      for (const r of step.resources) {
        const handle = r.mount ?? (await this.mountFor(r.container, r.pkg, mounted));
        resourceRoots[r.pkg.npk.manifest.name] = handle.target;
      }
      if (mounted.length > 0) await this.o.report({ type: "images_mounted", mounted });
      await mkdir(instance.stateDir, { recursive: true, mode: 0o700 });
      // The instance record (written and fsync'd) and the bundle do not read each other: they are
      // written at the same time, and both are complete before a monitor exists (a failure of
      // either removes the instance's files below, as no monitor runs).
      const recorded = this.recordInstance(instance, step, cgroupPath);
      const written = (async () => {
        const consoleSocket = manifest.console
          ? (
              await this.o.consoles.open(container, manifest.console.permissions, {
                uid: manifest.uid,
                gid: manifest.gid,
              })
            ).socketPath
          : undefined;
        return this.o.bundles.write({
          container,
          manifest,
          rootfsPath: root.target,
          resourceRoots,
          cgroupsPath: cgroupPath,
          consoleSocketHostPath: consoleSocket,
          overrides: step.overrides,
          ...(cri ? { cri } : {}),
        });
      })();
      const [recordResult, bundleResult] = await Promise.allSettled([recorded, written]);
      if (bundleResult.status === "rejected") throw bundleResult.reason;
      const bundle = bundleResult.value;
      for (const warning of [...bundle.warnings, ...attrWarnings]) this.o.log.warn({ container }, warning);
      let monitor: MonitorConnection;
      try {
        if (recordResult.status === "rejected") throw recordResult.reason;
        if (step.restore) await this.checkRestorable(instance.stateDir, bundle);
        monitor = await spawnMonitor({
          id: nameOf(container),
          bundleDir: bundle.bundleDir,
          stateDir: instance.stateDir,
          runtime: cri?.runtime?.path ?? this.o.runtime.path,
          runtimeRoot: this.o.runtime.root,
          runtimeKind: cri?.runtime?.kind ?? this.o.runtime.kind,
          ...(step.restore ? { restore: checkpointDir(instance.stateDir) } : {}),
          io: monitorIo(manifest.io),
          ...(cri?.logPath !== undefined ? { criLogPath: cri.logPath } : {}),
          log: this.o.logRotation,
          lingerMs: EXIT_LINGER_MS,
          extraFds: bundle.socketFds,
          launcher: this.launcher,
          ...(bundle.monitorWrapper.length > 0 ? { wrapper: bundle.monitorWrapper } : {}),
          ...this.o.cgroups.monitorMemoryDirs(cgroupPath),
        });
      } finally {
        // The listening sockets' fds are released whatever happened since the bundle was
        // written: the monitor holds its own copies, and a start that failed before it (or a
        // monitor that never came) leaves none to hold.
        bundle.closeFds();
      }
      this.attach(instance, monitor);
      // Manifest attrs go into the cgroup runc made, once `create` is done and before the app runs.
      if (attrs.length > 0) {
        await withDeadline(initPidOf(monitor), START_DEADLINE_MS, "the runtime's create");
        await this.o.cgroups.writeAttrs(cgroupPath, attrs);
      }
      // `[debug] commands` get init's pid before the app runs (a restored app already runs).
      const debug = this.o.debugCommands;
      if (debug?.configured && !step.restore) {
        const pid = await withDeadline(initPidOf(monitor), START_DEADLINE_MS, "the runtime's create");
        await debug.start(container, pid);
      }
      if (step.prepareOnly) {
        const pid = await withDeadline(initPidOf(monitor), START_DEADLINE_MS, "the runtime's create");
        await this.o.report({ type: "container_prepared", container, pid });
        return;
      }
      await withDeadline(monitor.start(), START_DEADLINE_MS, "the start");
      const pid = monitor.initPid;
      if (pid === undefined) throw new Error("the monitor reported no init pid");
      if (debug?.configured && step.restore) await debug.start(container, pid);
      this.o.health.recordStartSucceeded(container);
      await this.o.report({ type: "container_started", container, pid, startedAt: Date.now(), cgroupPath });
    } catch (e) {
      const error = messageOf(e);
      // Once a monitor exists its exit (or disappearance) ends the instance; otherwise we do.
      if (instance.monitor) {
        this.o.log.error({ container }, `start failed, ending the instance: ${error}`);
        await killAll(this.o.log, container, instance.monitor);
        return;
      }
      this.instances.delete(container);
      // No monitor runs for it (spawnMonitor ends one it could not reach): no later daemon may
      // take its record for an instance that was lost.
      await bestEffort(this.o.log, `removing ${instance.stateDir}`, removeInstanceFiles(instance.stateDir));
      if (cri) await bestEffort(this.o.log, `unmounting the root of ${container}`, unmountCriRoot(cri));
      const problems = e instanceof ToolchainDegradedError ? e.problems : undefined;
      // A start that failed for another reason may have met a binary that just vanished.
      if (!problems) this.background(container, "health check", this.o.health.check());
      await this.o.report({
        type: "container_start_failed",
        container,
        error,
        ...(problems ? { problems } : {}),
      });
    }
  }

  /** The instance's record, instance.json, in place of whatever a predecessor left. */
  private async recordInstance(
    instance: Instance,
    step: Extract<ContainerStep, { type: "start_container" }>,
    cgroupPath: string,
  ): Promise<void> {
    // What a crash in the middle of the predecessor's cleanup left must not pass for ours.
    await removeInstanceFiles(instance.stateDir);
    await writeInstanceRecord(instance.stateDir, {
      instance: instance.id,
      container: instance.container,
      startedBy: step.startedBy,
      overrides: step.overrides,
      resources: step.resources.map((r) => r.container),
      cgroupPath,
      createdAt: Date.now(),
      ...(step.prepareOnly ? { prepared: true } : {}),
    });
  }

  private async mountFor(
    container: ContainerId,
    pkg: Parameters<PackageExecutor["mount"]>[1],
    mounted: { container: ContainerId; handle: MountHandle }[],
  ): Promise<MountHandle> {
    const handle = await this.o.packages.mount(container, pkg);
    mounted.push({ container, handle });
    return handle;
  }

  /** Routes a monitor's EXIT (or its disappearance) to exactly one exit event. */
  attach(instance: Instance, monitor: MonitorConnection): void {
    instance.monitor = monitor;
    const { container } = instance;
    monitor.on("exit", (record) =>
      this.background(container, "exit report", this.reportExit(instance, record)),
    );
    monitor.on("memory", (counts) => {
      if (!instance.reportMemory) return;
      const memory = toMemoryNotification(counts);
      this.background(container, "memory report", this.o.emit(container, { type: "cgroup_memory", memory }));
    });
    monitor.on("log", (stream, line) => this.o.log.info({ container, stream }, line));
    monitor.on("close", () => this.background(container, "exit report", this.monitorClosed(instance)));
    // An adopted monitor's connection was made earlier: what it said meanwhile counts too.
    if (monitor.exitRecord)
      this.background(container, "exit report", this.reportExit(instance, monitor.exitRecord));
    else if (monitor.connection === "closed")
      this.background(container, "exit report", this.monitorClosed(instance));
  }

  private async monitorClosed(instance: Instance): Promise<void> {
    if (instance.exitReport !== "owed") return;
    const record = await bestEffortValue(
      this.o.log,
      `${instance.container}: reading the exit record`,
      readExitRecord(instance.stateDir),
    );
    if (record) return this.reportExit(instance, record);
    this.o.log.error(
      { container: instance.container },
      "monitor died without an exit record: killing what is left",
    );
    this.o.health.recordMonitorDeath(instance.container);
    if (instance.cgroupPath)
      await bestEffort(
        this.o.log,
        `removing cgroup ${instance.cgroupPath}`,
        this.o.cgroups.cleanup(instance.cgroupPath),
      );
    await this.reportExit(instance, { status: { signal: 9 }, reason: "error" });
  }

  /**
   * CRI's ReopenContainerLog: the monitor opens the container's CRI log again at its path (the
   * kubelet renamed it away). Reads no state: the instance's monitor is a handle.
   */
  async reopenLog(container: ContainerId): Promise<void> {
    const instance = this.instances.get(container);
    if (!instance?.cri) throw new Error(`${container} is not a running CRI container`);
    await instance.started;
    if (!instance.monitor) throw new Error(`${container} did not start`);
    await instance.monitor.reopenLog();
  }

  /** CRI's UpdateContainerResources on a running instance: its cgroup's CPU and memory files. */
  async updateResources(container: ContainerId, resources: CriResources): Promise<void> {
    const instance = this.instances.get(container);
    if (!instance?.cri || !instance.cgroupPath)
      throw new Error(`${container} is not a running CRI container`);
    await instance.started;
    await this.o.cgroups.writeLimits(instance.cgroupPath, {
      memory: resources.memoryLimitBytes === undefined ? undefined : { limit: resources.memoryLimitBytes },
      cpu: {
        shares: resources.cpuShares,
        quota: resources.cpuQuota,
        period: resources.cpuPeriod,
        cpus: resources.cpusetCpus,
        mems: resources.cpusetMems,
      },
    });
  }

  /** The cgroup of a running instance (absolute, below Skiff's root), for statistics of its own. */
  cgroupOf(container: ContainerId): string | undefined {
    return this.instances.get(container)?.cgroupPath;
  }

  /** Statistics of a running instance's cgroup (synchronous reads; cheap for 100 containers). */
  statistics(container: ContainerId): ProcessStatistics | undefined {
    const instance = this.instances.get(container);
    if (!instance?.cgroupPath) return undefined;
    try {
      return this.o.cgroups.stats(instance.cgroupPath);
    } catch {
      return undefined;
    }
  }

  private async reportExit(
    instance: Instance,
    record: Pick<ExitRecord, "status" | "reason" | "oom" | "error"> & { time?: string },
  ): Promise<void> {
    if (instance.exitReport !== "owed") return;
    if (instance.checkpointing) {
      instance.checkpointing.exit ??= record;
      return;
    }
    instance.exitReport = "decided";
    // The start's own report (started, or failed) goes first, so the state sees them in order.
    await instance.started;
    clearTimeout(instance.stopTimer);
    // The monitor read the OOM kill counters before the runtime removed the cgroup.
    await this.postExit(
      instance,
      exitStatusOf(record, record.oom === true),
      record.error,
      finishedAt(record),
    );
  }

  /** `finishedAt`: epoch ms of the end, as the monitor's exit record says (a repeated report keeps it). */
  private async postExit(
    instance: Instance,
    status: ExitStatus,
    runtimeError?: string,
    finishedAtMs = Date.now(),
  ): Promise<void> {
    instance.exitReport = "posted";
    // A CRI container's end outlives the instance (ContainerStatus until RemoveContainer): it is
    // written before the monitor's exit record can be retired (after this event's delivery).
    if (instance.cri)
      await bestEffort(
        this.o.log,
        `recording the exit of ${instance.container}`,
        writeCriExit(instance.cri, { status, finishedAt: finishedAtMs }),
      );
    return this.o.emit(instance.container, {
      type: "exit",
      status,
      instance: instance.id,
      ...(runtimeError === undefined ? {} : { runtimeError }),
    });
  }

  /**
   * Signals the instance once its start settled (the kill rule, state/lifecycle.ts). A frozen
   * container is thawed beside the signal by the power executor (`thaw_killed`, same transition).
   */
  private async kill(container: ContainerId, signal: number): Promise<void> {
    const instance = this.instances.get(container);
    if (!instance) throw new Error(`${container} is not running`);
    await instance.started;
    if (!instance.monitor) throw new Error(`${container} did not start`);
    return instance.monitor.kill(signal, { all: true });
  }

  // --- Checkpoint and restore (containers/checkpoint.ts, state/checkpoint.ts) ---------------

  /**
   * INVARIANTS: while `checkpointing` is set the instance's exit is held, not reported. After a
   * successful dump the held (or awaited) exit is the dump's end and is never reported: the
   * instance ends with `container_checkpointed`. After a failed dump a held exit is reported as
   * usual, after `container_checkpoint_failed`, so the state sees the failure first.
   */
  private async checkpoint(container: ContainerId, reply: Reply): Promise<void> {
    const failed = (e: unknown): Promise<void> =>
      this.o.report({ type: "container_checkpoint_failed", container, error: toWireError(e), reply });
    const instance = this.instances.get(container);
    if (!instance) return failed(new DaemonError({ kind: "not_running", container }));
    await instance.started;
    const support = (await this.o.checkpointSupport) ?? { supported: false, reason: "not probed" };
    if (!support.supported)
      return failed(
        new DaemonError({
          kind: "unsupported",
          what: `checkpoint: ${support.reason ?? "CRIU does not work here"}`,
        }),
      );
    const monitor = instance.monitor;
    if (!monitor || instance.exitReport !== "owed")
      return failed(new DaemonError({ kind: "ended", container }));
    let statusPipe: string;
    try {
      statusPipe = await statusPipeOf(monitor.initPid ?? 0);
    } catch (e) {
      return failed(e);
    }
    const hold: NonNullable<Instance["checkpointing"]> = {};
    instance.checkpointing = hold;
    const ended = settled(monitor.exited());
    try {
      await runCheckpoint(this.o.runtime, nameOf(container), instance.stateDir, statusPipe);
    } catch (e) {
      instance.checkpointing = undefined;
      this.o.log.error({ container, err: e }, messageOf(e));
      await failed(e);
      if (hold.exit) await this.reportExit(instance, hold.exit);
      return;
    }
    // The runtime ended the dumped tree: the monitor reaps init and reports that exit.
    await withDeadline(ended, START_DEADLINE_MS, "the checkpointed container's end").catch((e: unknown) =>
      this.o.log.warn({ container }, messageOf(e)),
    );
    instance.exitReport = "decided";
    instance.checkpointing = undefined;
    this.o.log.info({ container, image: checkpointDir(instance.stateDir) }, "checkpoint written");
    await this.o.report({ type: "container_checkpointed", container, reply });
  }

  /** A restore needs the image, and the runtime's restore passes no extra fds (manifest sockets). */
  private async checkRestorable(stateDir: string, bundle: { socketFds: readonly unknown[] }): Promise<void> {
    if (!(await hasCheckpointImage(stateDir)))
      throw new Error(`no checkpoint image in ${checkpointDir(stateDir)}`);
    if (bundle.socketFds.length > 0)
      throw new Error(
        "a container with manifest sockets cannot be restored (the runtime passes no extra fds)",
      );
  }

  private async stop(container: ContainerId, graceMs: number): Promise<void> {
    const instance = this.instances.get(container);
    if (!instance) return;
    await instance.started;
    if (!instance.monitor || instance.exitReport !== "owed") return;
    instance.stopTimer = setTimeout(() => {
      this.o.log.warn({ container }, `did not stop within ${graceMs} ms: SIGKILL`);
      void killAll(this.o.log, container, instance.monitor);
    }, graceMs);
    await instance.monitor
      .kill("SIGTERM")
      .catch((e: unknown) => this.o.log.warn({ container, err: e }, "SIGTERM failed"));
  }

  /** Settles once the cleanups in flight now have ended (they never reject): the mount cache's wait. */
  async cleanupsSettled(): Promise<void> {
    await Promise.all(this.cleanups.values());
  }

  private cleanup(container: ContainerId): Promise<void> {
    // Taken now: by the time the cleanup runs, a new instance may already be registered.
    const instance = this.instances.get(container);
    const previous = this.cleanups.get(container) ?? Promise.resolve();
    const done = this.settled(
      container,
      "cleanup",
      previous.then(() => this.cleanupNow(container, instance)),
    );
    this.cleanups.set(container, done);
    void done.finally(() => {
      if (this.cleanups.get(container) === done) this.cleanups.delete(container);
    });
    return done;
  }

  private async cleanupNow(container: ContainerId, instance: Instance | undefined): Promise<void> {
    const stateDir = instance?.stateDir ?? this.stateDir(container);
    const cgroupPath = instance?.cgroupPath;
    if (instance) {
      clearTimeout(instance.stopTimer);
      if (instance.monitor) await monitorGone(instance.monitor);
    }
    await bestEffort(this.o.log, `closing the console of ${container}`, this.o.consoles.close(container));
    if (cgroupPath) {
      const report = await this.o.cgroups
        .cleanup(cgroupPath, { keepParents: instance?.cri !== undefined })
        .catch((e: unknown) => void this.o.log.warn({ container, err: e }, "cgroup removal failed"));
      if (report && !report.wasEmpty) {
        this.o.log.warn(
          { container, pids: report.killed },
          "processes outlived the container's init: killed",
        );
      }
    }
    await bestEffort(this.o.log, `removing the bundle of ${container}`, this.o.bundles.remove(container));
    if (instance?.cri)
      await bestEffort(this.o.log, `unmounting the root of ${container}`, unmountCriRoot(instance.cri));
    // The exit record goes once the exit notification is out (the INVARIANTS above).
    if (instance?.exitReport === "posted") await this.o.notificationsDelivered();
    await removeInstanceFiles(stateDir);
    if (this.instances.get(container) === instance) this.instances.delete(container);
  }

  private async readLogs(step: Extract<ContainerStep, { type: "read_logs" }>): Promise<void> {
    const { container } = step;
    const dir = this.stateDir(container);
    try {
      const result =
        step.offset !== undefined
          ? await readLogSince(dir, step.offset)
          : await readLogTail(dir, step.lines ?? 100);
      step.reply(logsResponse(container, result.lines, result.offset));
    } catch (e) {
      step.reply(containerError("logs", container, toWireError(e)));
    }
  }

  /**
   * Takes over the instances a previous daemon left (see adopt.ts): reports them to the state as
   * one `adopted` job, then posts the exits that happened meanwhile. Exits of re-adopted
   * instances are held until the `adopted` job is queued (their `started`).
   */
  async adopt(
    found: FoundInstance[],
    pkgOf: (container: ContainerId) => InstalledPackage | undefined,
  ): Promise<void> {
    const manifestOf = (container: ContainerId): Manifest | undefined => pkgOf(container)?.npk.manifest;
    const adopted: AdoptedInstance[] = [];
    const exits: { instance: Instance; status: ExitStatus; finishedAt?: number }[] = [];
    let recorded!: () => void;
    const adoptionRecorded = new Promise<void>((resolve) => (recorded = resolve));
    for (const f of found) {
      const container = f.record.container;
      const instance: Instance = {
        id: f.record.instance,
        container,
        stateDir: f.stateDir,
        cgroupPath: f.record.cgroupPath,
        started: adoptionRecorded,
        exitReport: "owed",
        reportMemory: false,
        ...(pkgOf(container)?.cri ? { cri: pkgOf(container)?.cri } : {}),
      };
      const entry: AdoptedInstance = {
        container,
        cgroupPath: f.record.cgroupPath,
        startedAt: f.record.createdAt,
        startedBy: f.record.startedBy,
        overrides: f.record.overrides,
        resources: f.record.resources,
      };
      switch (f.kind) {
        case "running":
          this.instances.set(container, instance);
          instance.reportMemory = this.reportsMemory(manifestOf(container));
          this.attach(instance, f.monitor);
          adopted.push({ ...entry, pid: f.pid });
          this.o.log.info({ container, pid: f.pid, instance: instance.id }, "re-adopted running container");
          break;
        case "created":
          if (f.record.prepared) {
            // A prepared instance waits on: re-adopted as prepared, it starts on request.
            instance.reportMemory = this.reportsMemory(manifestOf(container));
            this.instances.set(container, instance);
            this.attach(instance, f.monitor);
            adopted.push({ ...entry, pid: f.monitor.initPid ?? 0, prepared: true });
            this.o.log.info({ container }, "re-adopted prepared container");
            break;
          }
          // Never started: nothing to report. Its monitor ends it and hands over its exit (a
          // monitor left without a daemon would linger for one); cleanup removes the rest.
          {
            const ended = settled(f.monitor.exited());
            await killAll(this.o.log, container, f.monitor);
            await ended;
          }
          f.monitor.close();
          await this.cleanup(container);
          this.o.log.info({ container }, "discarded a container that was created but never started");
          break;
        case "exited":
          // Its monitor (if it lingered) goes once it has handed over the exit: the cleanup
          // waits for that, as the next instance's monitor binds the same socket path.
          if (f.monitor) instance.monitor = f.monitor;
          instance.exitReport = "decided";
          this.instances.set(container, instance);
          adopted.push(entry);
          exits.push({
            instance,
            status: exitStatusOf(f.exit, f.exit.oom === true),
            finishedAt: finishedAt(f.exit),
          });
          this.o.log.info(
            { container, instance: instance.id },
            "found the exit of a container that ended while the daemon was down",
          );
          break;
        case "lost":
          await bestEffort(
            this.o.log,
            `removing cgroup ${f.record.cgroupPath}`,
            this.o.cgroups.cleanup(f.record.cgroupPath),
          );
          await deleteLostRuntimeState(this.o.runtime, nameOf(container)).catch((e: unknown) =>
            this.o.log.warn({ container, err: e }, "the runtime's state of a lost container was not deleted"),
          );
          instance.exitReport = "decided";
          this.instances.set(container, instance);
          adopted.push(entry);
          exits.push({ instance, status: { type: "signalled", signal: 9, reason: "error" } });
          this.o.log.error(
            { container, instance: instance.id },
            "monitor of a container died while the daemon was down",
          );
          break;
      }
    }
    await this.removeOrphanBundles();
    if (adopted.length > 0) await this.o.report({ type: "adopted", instances: adopted });
    recorded();
    // Ended while no daemon was there: reported like a live exit (held by the runtime until a
    // client subscribes), and retired only once handed over.
    for (const { instance, status, finishedAt: at } of exits)
      await this.postExit(instance, status, undefined, at);
  }

  /**
   * Bundles no instance uses: a daemon that died in the middle of a start, before the instance
   * record, left them. Removed at start-up, before anything new starts.
   */
  private async removeOrphanBundles(): Promise<void> {
    for (const container of (await ifExists(readdir(join(this.o.runDir, "bundles")))) ?? []) {
      if (this.instances.has(container)) continue;
      await this.o.bundles
        .remove(container)
        .catch((e: unknown) => this.o.log.warn({ container, err: e }, "orphan bundle not removed"));
    }
  }

  /** Drops every monitor connection and timer; the containers go on under their monitors. */
  detachAll(): void {
    this.cancelRestarts();
    for (const instance of this.instances.values()) {
      clearTimeout(instance.stopTimer);
      instance.exitReport = "decided";
      instance.monitor?.close();
    }
    this.instances.clear();
  }

  private reportsMemory(manifest: Manifest | undefined): boolean {
    return manifest !== undefined && this.o.cgroups.monitorsMemory(manifest);
  }

  /** Ends the monitors' launcher (shutdown); the monitors keep running. */
  closeLauncher(): void {
    this.launcher.close();
  }

  /** Cancels restart timers (shutdown, uninstall). */
  cancelRestarts(): void {
    for (const timer of this.restartTimers.values()) clearTimeout(timer);
    this.restartTimers.clear();
  }
}
