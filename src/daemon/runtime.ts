/**
 * The daemon's runtime: the event loop, the state owner, the console and the executors that
 * carry out the owner's steps. `Runtime.start` brings them up; `stopped` resolves after an
 * orderly shutdown (listeners closed, `shutdown` notified, images unmounted).
 *
 * Request path: console session -> `console_request` event -> StateOwner transition -> steps ->
 * executors -> (jobs report `job` events -> transitions) -> replies and notifications.
 */
import type { Logger } from "pino";
import type { Notification, Request, Response } from "../protocol/messages.js";
import type { ProcessStatistics } from "./cgroups/statistics.js";
import { setImmediate as nextTurn } from "node:timers/promises";
import type { DaemonConfig } from "./config/schema.js";
import { NotificationHub } from "./console/hub.js";
import { ConsoleServer } from "./console/server.js";
import type { RequestIo } from "./console/session.js";
import { EventLoop } from "./events/loop.js";
import type { DaemonEvent, JobResult, Peer } from "./events/types.js";
import { CgroupSupervisor, detectLayout, type CgroupLayout } from "./cgroups/index.js";
import { ContainerConsoles } from "./console/container-console.js";
import { BundleWriter } from "./containers/bundle.js";
import { findInstances } from "./containers/adopt.js";
import { ContainerExecutor } from "./containers/executor.js";
import { detectRuntime } from "./oci/runtime.js";
import { readHostFacts, type HostFacts } from "./oci/host.js";
import { startMetricsServer, type MetricsServer, type MetricsSnapshot } from "./metrics/index.js";
import { ExecutorHealth } from "./executor/health.js";
import { probeCheckpointSupport, type CheckpointSupport } from "./containers/checkpoint.js";
import { nativeBinary } from "./monitor/client.js";
import { probeKernelVerity, type KernelVerityProbe } from "./mount/index.js";
import { PowerExecutor } from "./power/executor.js";
import { PackageExecutor } from "./repository/executor.js";
import { Repository } from "./repository/repository.js";
import { receiveInstall } from "./repository/install.js";
import { initialState, repositoryUsage, visibleContainers, type ContainerRecord } from "./state/model.js";
import { StateOwner } from "./state/owner.js";
import { containerIdOf } from "./state/packages.js";
import type { Step } from "./state/steps.js";
import { newTokenKey } from "./tokens.js";
import { DebugCommands } from "./containers/debug-commands.js";
import type { ContainerId } from "../protocol/container.js";

/** The longest the `statistics` request holds the loop between two turns. */
const STATISTICS_SLICE_MS = 2;

/**
 * How long after the console listens notifications stay held for a first subscriber (exits
 * found or seen at start-up among them) before they go to whoever is subscribed.
 */
export const STARTUP_EXIT_GRACE_MS = 2000;

export interface RuntimeOptions {
  /** Leave containers running under their monitors at shutdown (an upgrade restart re-adopts them). */
  keepContainers?: boolean;
}

/** Host facts discovered once at startup. */
interface HostSetup {
  layout: CgroupLayout;
  cgroups: CgroupSupervisor;
  facts: HostFacts;
  runtimePath: string;
  /** Whether keyed images are mounted through kernel dm-verity (docs/npk.md). */
  verity: KernelVerityProbe;
  /** Checkpoint/restore: probed once at start, in the background (containers/checkpoint.ts). */
  checkpoint: Promise<CheckpointSupport>;
}

export class Runtime {
  readonly loop: EventLoop<DaemonEvent>;
  readonly hub = new NotificationHub();
  readonly console: ConsoleServer;
  readonly owner: StateOwner;
  readonly packages: PackageExecutor;
  readonly containerConsoles: ContainerConsoles;
  private readonly containers: ContainerExecutor;
  private readonly power: PowerExecutor;
  private readonly health: ExecutorHealth;
  private readonly debugCommands: DebugCommands;
  private loopDone: Promise<void> = Promise.resolve();
  /**
   * Notifications held from construction until the first subscriber (or the grace after the
   * console listens): a re-adopted container that exits during start-up, or one that ended
   * while no daemon ran, is reported to the client that reconnects, not to nobody. `undefined`
   * once released.
   */
  private held: Notification[] | undefined = [];
  private releaseHeld!: () => void;
  /** Resolves once the held notifications have been handed to the hub. */
  private readonly heldReleased = new Promise<void>((resolve) => (this.releaseHeld = resolve));
  private shutdownStarted = false;
  /** skiffd's exit code: 1 when a critical container brought the daemon down. */
  exitCode = 0;
  private keepContainers = false;
  private metrics: MetricsServer | undefined;
  private resolveStopped!: () => void;
  /** Resolves once the runtime has shut down completely. */
  readonly stopped = new Promise<void>((resolve) => (this.resolveStopped = resolve));

  private constructor(
    readonly config: DaemonConfig,
    private readonly log: Logger,
    private readonly repositories: ReadonlyMap<string, Repository>,
    installed: ContainerRecord[],
    private readonly host: HostSetup,
  ) {
    this.loop = new EventLoop<DaemonEvent>({
      capacity: config.eventBufferSize,
      onHandlerError: (subscriber, event, error) =>
        log.error({ err: error, subscriber, event: (event as DaemonEvent).kind }, "event handler failed"),
    });
    const infos = [...repositories.values()].map((r) => ({
      id: r.id,
      keyed: r.key !== undefined,
      capacityNum: r.config.capacityNum,
      capacitySize: r.config.capacitySize,
    }));
    this.owner = new StateOwner(
      initialState(infos, installed, config),
      (step, event) => this.execute(step, event),
      { key: newTokenKey(Date.now()), validityMs: config.tokenValidityMs },
    );
    this.packages = new PackageExecutor({
      runDir: config.runDir,
      dataDir: config.dataDir,
      repositories,
      report: (result) => this.report(result),
      discardPrepared: (container) => this.containers.discardPrepared(container),
      kernelVerity: host.verity.available,
      log: log.child({ room: "repository" }),
    });
    this.debugCommands = new DebugCommands(config.debug.commands, log.child({ room: "debug" }));
    this.health = new ExecutorHealth({
      runtimePath: host.runtimePath,
      monitorPath: nativeBinary("skiff-monitor"),
      initPath: nativeBinary("skiff-init"),
      verity: infos.some((r) => r.keyed) ? (host.verity.available ? "kernel" : "userspace") : "none",
      probeTimeoutMs: config.runtime.probeTimeoutMs,
      log: log.child({ room: "executor" }),
    });
    // A loud signal: every client hears when the executor breaks or recovers.
    this.health.onChange((health) => this.hub.broadcast({ type: "health", health }));
    this.containerConsoles = new ContainerConsoles({
      runDir: config.runDir,
      options: config.containerConsoleOptions,
      notificationBufferSize: config.notificationBufferSize,
      hub: this.hub,
      // The session id goes with the peer: wake locks taken on a connection end with it.
      dispatch: (peer, request, io, session) =>
        this.dispatch(peer.kind === "container" ? { ...peer, session } : peer, request, io),
      onSessionClosed: (container, session) =>
        void this.loop
          .enqueue({
            kind: "container",
            container,
            event: { type: "console_closed", holder: `session:${session}` },
          })
          .catch(() => undefined),
      log: log.child({ room: "console" }),
    });
    this.containers = new ContainerExecutor({
      runDir: config.runDir,
      containersDir: `${config.logDir}/containers`,
      runtime: { path: host.runtimePath, root: `${config.runDir}/runc`, kind: config.runtime.kind },
      logRotation: config.containerLogs,
      cgroups: host.cgroups,
      packages: this.packages,
      consoles: this.containerConsoles,
      bundles: new BundleWriter({
        runDir: config.runDir,
        dataDir: config.dataDir,
        host: host.facts,
        socketDir: config.socketDir,
      }),
      health: this.health,
      power: {
        thawAfterKill: (container) => this.power.thawAfterKill(container),
        release: (container) => this.power.release(container),
      },
      report: (result) => this.report(result),
      emit: (container, event) =>
        this.loop.enqueue({ kind: "container", container, event }).catch(() => undefined),
      notificationsDelivered: () => this.heldReleased,
      log: log.child({ room: "containers" }),
      checkpointSupport: host.checkpoint,
    });
    this.power = new PowerExecutor({
      layout: host.layout,
      instance: (container) => this.containers.instanceInfo(container),
      emit: (container, event) =>
        this.loop.enqueue({ kind: "container", container, event }).catch(() => undefined),
      freezeTimeoutMs: config.freezeTimeoutMs,
      freezeHoldMs: config.debug.freezeHoldMs,
      freezeFail: config.debug.freezeFail,
      log: log.child({ room: "power" }),
    });
    this.console = new ConsoleServer({
      listeners: config.listeners,
      notificationBufferSize: config.notificationBufferSize,
      bufferBudget: config.consoleBufferBudget,
      hub: this.hub,
      dispatch: (peer, request, io) => this.dispatch(peer, request, io),
      log: log.child({ room: "console" }),
    });
  }

  static async start(config: DaemonConfig, log: Logger, options: RuntimeOptions = {}): Promise<Runtime> {
    const layout = await detectLayout();
    log.info({ layout: layout.kind, unified: layout.unified }, `cgroup layout: ${layout.kind}`);
    const cgroups = new CgroupSupervisor(layout, config, log.child({ room: "cgroups" }));
    await cgroups.start();
    const runtimePath = (await detectRuntime(config.runtime, layout)).path;
    const checkpoint = probeCheckpointSupport({ kind: config.runtime.kind, path: runtimePath });
    void checkpoint.then((c) =>
      log.info(
        c,
        c.supported ? "checkpoint/restore: supported" : `checkpoint/restore unsupported: ${c.reason}`,
      ),
    );
    const host: HostSetup = {
      layout,
      cgroups,
      facts: await readHostFacts(),
      runtimePath,
      verity: await probeKernelVerity(),
      checkpoint,
    };
    if (host.verity.available) log.info("keyed images: kernel dm-verity (every block checked when read)");
    else log.info(`keyed images: userspace check at mount (${host.verity.reason})`);
    const repositories = new Map<string, Repository>();
    for (const rc of config.repositories) repositories.set(rc.id, await Repository.open(rc, config.runDir));
    const installed = await scanRepositories(repositories, log);
    const runtime = new Runtime(config, log, repositories, installed, host);
    runtime.keepContainers = options.keepContainers ?? config.keepContainers;
    for (const record of installed) record.mount = await runtime.packages.adoptMount(record.id, record.pkg);
    await runtime.packages.removeStaleDevices(installed.flatMap((r) => (r.mount ? [r.mount] : [])));
    runtime.packages.watchCorruption();
    await runtime.mountOnStart(installed.filter((r) => !r.mount));
    runtime.loop.subscribe("state", ["console_request", "shutdown", "container", "job"], (e) =>
      runtime.owner.handle(e),
    );
    runtime.loopDone = runtime.loop.run();
    // Exits found or seen from here on are held (`held`) until a client subscribes.
    await runtime.containers.adopt(
      await findInstances(`${config.logDir}/containers`),
      (id) => runtime.owner.state.containers.get(id)?.pkg.npk.manifest,
    );
    const health = await runtime.health.check();
    if (health.status !== "ok") log.error({ problems: health.problems }, "executor degraded at startup");
    await runtime.console.listen();
    if (config.metrics) {
      runtime.metrics = await startMetricsServer({
        ...config.metrics,
        collect: () => runtime.metricsSnapshot(),
        log: log.child({ room: "metrics" }),
      });
      log.info(`metrics on http://${config.metrics.host}:${runtime.metrics.address.port}/metrics`);
    }
    void runtime.hub.waitForSubscriber(STARTUP_EXIT_GRACE_MS).then(() => runtime.releaseNotifications());
    await runtime.autostart(installed);
    return runtime;
  }

  /** Hands the notifications held since start-up to the hub, in order; later ones go directly. */
  private releaseNotifications(): void {
    const held = this.held;
    if (!held) return;
    this.held = undefined;
    for (const notification of held) this.hub.broadcast(notification);
    this.releaseHeld();
  }

  /** The figures of the Prometheus endpoint, read from the state and the running containers' cgroups. */
  async metricsSnapshot(): Promise<MetricsSnapshot> {
    const containersByState: Record<string, number> = {};
    for (const record of visibleContainers(this.owner.state)) {
      const state = record.process?.phase ?? (record.mount ? "mounted" : "installed");
      containersByState[state] = (containersByState[state] ?? 0) + 1;
    }
    const containers = (await this.runningStatistics()).map(({ record, statistics }) => {
      const { name, version } = record.pkg.npk.manifest;
      return { container: record.id, name, version, statistics };
    });
    return {
      containers,
      containersByState,
      eventsProcessed: this.loop.eventsProcessed,
      consoleConnections: this.console.connections,
    };
  }

  /** The `statistics` request: one answer for many containers instead of an `inspect` each. */
  private async statistics(wanted: readonly ContainerId[] | undefined): Promise<Response> {
    const found = await this.runningStatistics(wanted === undefined ? undefined : new Set(wanted));
    return {
      type: "statistics",
      containers: found.map(({ record, statistics }) => ({
        container: record.id,
        statistics: statistics as unknown as Record<string, unknown>,
      })),
    };
  }

  /**
   * The cgroup statistics of the running containers (among `only`), for the `statistics`
   * request and the metrics endpoint. The reads are synchronous (a few small files per
   * container); the loop gets a turn every STATISTICS_SLICE_MS, so a thousand containers never
   * hold it for more than that at once.
   */
  private async runningStatistics(
    only?: ReadonlySet<ContainerId>,
  ): Promise<{ record: ContainerRecord; statistics: ProcessStatistics }[]> {
    const running = visibleContainers(this.owner.state).filter(
      (r) => r.process !== undefined && (only === undefined || only.has(r.id)),
    );
    const found: { record: ContainerRecord; statistics: ProcessStatistics }[] = [];
    let slice = performance.now();
    for (const record of running) {
      const statistics = this.containers.statistics(record.id);
      if (statistics) found.push({ record, statistics });
      if (performance.now() - slice > STATISTICS_SLICE_MS) {
        await nextTurn();
        slice = performance.now();
      }
    }
    return found;
  }

  /** Starts the autostart containers; a critical one that fails stops the daemon (state/containers.ts). */
  private async autostart(installed: ContainerRecord[]): Promise<void> {
    // Prepared first: `prepare: true` containers, and autostart ones with `prepare_autostart`.
    for (const record of installed) {
      const manifest = record.pkg.npk.manifest;
      const wanted =
        manifest.prepare === true || (this.config.prepareAutostart && manifest.autostart !== undefined);
      if (wanted)
        await this.loop.enqueue({ kind: "job", result: { type: "prepare_due", container: record.id } });
    }
    for (const record of installed) {
      if (record.pkg.npk.manifest.autostart === undefined) continue;
      await this.loop.enqueue({ kind: "job", result: { type: "autostart", container: record.id } });
    }
  }

  /** Mounts the packages of `mount_on_start` repositories before the console opens. */
  private async mountOnStart(installed: ContainerRecord[]): Promise<void> {
    await Promise.all(
      installed
        .filter((r) => this.repositories.get(r.pkg.repository)?.config.mountOnStart)
        .map(async (record) => {
          try {
            record.mount = await this.packages.mount(record.id, record.pkg);
          } catch (e) {
            this.log.error({ container: record.id, err: e }, "mount on start failed");
          }
        }),
    );
  }

  private report(result: JobResult): Promise<void> {
    // `[debug] commands` (Northstar's strace/perf hooks) need the init pid of a started container.
    if (result.type === "container_started" && result.pid > 0) {
      this.debugCommands.start(result.container, result.pid);
    }
    return this.loop.enqueue({ kind: "job", result }).catch((e: unknown) => {
      this.log.warn({ err: e, job: result.type }, "job finished after the event loop closed");
    });
  }

  /** Hands a request to the state owner through the loop and waits for its response. */
  private async dispatch(peer: Peer, request: Request, io: RequestIo): Promise<Response> {
    if (request.type === "install") return this.install(request, io);
    // Health is the executor's, not the state's: a fresh check answers it.
    if (request.type === "health") {
      const health = await this.health.check();
      return { type: "health", health: { ...health, checkpoint: await this.host.checkpoint } };
    }
    // Statistics are the running instances' cgroups, read here like the metrics endpoint's.
    if (request.type === "statistics") return this.statistics(request.containers);
    return new Promise<Response>((resolve, reject) => {
      this.loop
        .enqueue({ kind: "console_request", peer, request, reply: resolve })
        .catch(() => reject(new Error("daemon is shutting down")));
    });
  }

  /**
   * `install`: the payload is received and verified by a job in the session's context (the loop
   * keeps serving everyone else), then the owner decides on the verified package.
   */
  private install(request: Extract<Request, { type: "install" }>, io: RequestIo): Promise<Response> {
    return receiveInstall(request, io, {
      repositories: this.repositories,
      usedBytes: (repository) => repositoryUsage(this.owner.state, repository).bytes,
      streamTimeoutMs: this.config.npkStreamTimeoutMs,
      report: (result) => this.report(result),
      log: this.log,
    });
  }

  /** Asks for an orderly shutdown (signals, critical failures). Safe to call repeatedly. */
  requestShutdown(reason: string): void {
    this.loop.enqueue({ kind: "shutdown", reason }).catch(() => undefined);
  }

  // The executor map: each step type has exactly one executor.
  private execute(step: Step, event: DaemonEvent): void {
    switch (step.type) {
      case "reply":
        if (event.kind === "console_request") event.reply(step.response);
        return;
      case "reply_to":
        step.reply(step.response);
        return;
      case "notify":
        if (this.held) this.held.push(step.notification);
        else this.hub.broadcast(step.notification);
        return;
      case "shutdown":
        // Whatever is held goes out before `shutdown` (the shutdown closes the console).
        this.releaseNotifications();
        void this.shutdown(step.reason);
        return;
      case "commit_install":
        void this.packages.commitInstall(step);
        return;
      case "discard_upload":
        void this.packages.discardUpload(step.tempPath);
        return;
      case "mount_images":
        void this.packages.mountImages(step);
        return;
      case "uninstall_package":
        void this.packages.uninstall(step);
        return;
      case "freeze":
      case "thaw":
      case "power_timer":
      case "cancel_power_timer":
      case "watch_wake_source":
      case "unwatch_wake_source":
      case "open_proxy":
        this.power.execute(step);
        return;
      default:
        this.containers.execute(step);
    }
  }

  /**
   * Stops every running container (SIGTERM, grace, SIGKILL) through the loop, so their exits are
   * reported as usual, and waits until none is left.
   */
  private async stopContainers(): Promise<void> {
    this.containers.cancelRestarts();
    const running = [...this.owner.state.containers.values()].filter((c) => c.process);
    await Promise.all(
      running.map(
        (c) =>
          new Promise<void>((resolve) => {
            this.loop
              .enqueue({
                kind: "console_request",
                peer: { kind: "extern", address: "skiffd" },
                request: { type: "stop", container: c.id },
                reply: () => resolve(),
              })
              .catch(() => resolve());
          }),
      ),
    );
  }

  private async shutdown(reason: string): Promise<void> {
    if (this.shutdownStarted) return;
    this.shutdownStarted = true;
    if (reason.startsWith("critical container")) {
      this.exitCode = 1;
      this.log.error(`shutting down: ${reason}`);
    } else this.log.info(`shutting down: ${reason}`);
    // Let the reply to a `shutdown` request reach its session before the sessions close.
    await new Promise((resolve) => setImmediate(resolve));
    this.hub.broadcast({ type: "shutdown" });
    await this.metrics?.close();
    await this.console.close();
    if (this.keepContainers) this.containers.detachAll();
    else await this.stopContainers();
    await this.containerConsoles.closeAll();
    this.debugCommands.stopAll();
    this.loop.close();
    await this.loopDone;
    const inUse = new Set(
      [...this.owner.state.containers.values()].flatMap((c) =>
        c.process ? [c.id, ...c.process.resources] : [],
      ),
    );
    await Promise.all(
      [...this.owner.state.containers.values()].map(async (c) => {
        // Kept containers keep their images (and their resources') mounted.
        if (!c.mount || inUse.has(c.id)) return;
        await this.packages
          .unmount(c.mount)
          .catch((e: unknown) => this.log.error({ container: c.id, err: e }, "umount failed"));
      }),
    );
    this.packages.close();
    // Removes the groups and the root when empty; kept containers keep theirs.
    await this.host.cgroups.stop().catch((e: unknown) => this.log.warn({ err: e }, "cgroups not removed"));
    this.log.info("shutdown complete");
    this.resolveStopped();
  }
}

/** Scans all repositories in parallel; a container found twice keeps its first copy. */
async function scanRepositories(
  repositories: ReadonlyMap<string, Repository>,
  log: Logger,
): Promise<ContainerRecord[]> {
  const found = await Promise.all([...repositories.values()].map((r) => r.scan(log)));
  const records = new Map<string, ContainerRecord>();
  for (const pkg of found.flat()) {
    const id = containerIdOf(pkg);
    const first = records.get(id);
    if (first) {
      log.error(
        { container: id },
        `duplicate package in ${pkg.repository} ignored: already in ${first.pkg.repository}`,
      );
      continue;
    }
    records.set(id, { id, pkg });
  }
  log.info({ containers: records.size, repositories: repositories.size }, "repositories scanned");
  return [...records.values()];
}
