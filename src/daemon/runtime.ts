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
import type { ProcessStatistics } from "./cgroups/process-statistics.js";
import { setImmediate as nextTurn } from "node:timers/promises";
import type { DaemonConfig } from "./config/schema.js";
import { NotificationHub } from "./console/hub.js";
import { ConsoleServer } from "./console/server.js";
import type { RequestIo } from "./console/session.js";
import { EventLoop, EventLoopClosedError } from "./events/loop.js";
import type { DaemonEvent, JobResult, Peer } from "./events/types.js";
import { CgroupSupervisor, detectLayout, type CgroupLayout } from "./cgroups/index.js";
import { ContainerConsoles } from "./console/container-console.js";
import { BundleWriter } from "./containers/bundle.js";
import { findInstances } from "./containers/adopt.js";
import { ContainerExecutor } from "./containers/executor.js";
import { detectOciRuntime } from "./oci/runtime.js";
import { readHostFacts, type HostFacts } from "./oci/host.js";
import { DaemonCounters, type MetricsServer, type MetricsSnapshot } from "./metrics/index.js";
import { ToolchainHealth } from "./toolchain/health.js";
import type { CriEndpoint } from "../cri/index.js";
import type { CriDaemon } from "../cri/containers/index.js";
import { readCriExit, unmountCriRoot } from "./containers/cri-root.js";
import { join } from "node:path";
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
import type { Step } from "./events/steps.js";
import { newTokenKey } from "./tokens.js";
import { DebugCommands } from "./containers/debug-commands.js";
import { ExecExecutor } from "./exec/executor.js";
import { bestEffort, describeShutdown, shutdownExitCode, type ShutdownReason } from "./errors.js";
import type { ContainerId } from "../protocol/container.js";

/** The longest the `statistics` request holds the loop between two turns. */
const STATISTICS_SLICE_MS = 2;

/**
 * How long after the console listens notifications stay held for a first subscriber (exits
 * found or seen at start-up among them) before they go to whoever is subscribed.
 */
const STARTUP_EXIT_GRACE_MS = 2000;

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
  private readonly health: ToolchainHealth;
  private readonly debugCommands: DebugCommands;
  readonly exec: ExecExecutor;
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
  private cri: CriEndpoint | undefined;
  /** OOM kills, suspends, wakes and start latency for the Prometheus endpoint. */
  private readonly counters = new DaemonCounters();
  private resolveStopped!: () => void;
  /** Resolves once the runtime has shut down completely. */
  readonly stopped = new Promise<void>((resolve) => (this.resolveStopped = resolve));
  private resolveStopping!: () => void;
  /** Resolves when the shutdown begins (systemd's STOPPING=1). */
  readonly stopping = new Promise<void>((resolve) => (this.resolveStopping = resolve));

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
      initialState(infos, installed, config, config.mountCacheSize),
      (step, event) => this.execute(step, event),
      { key: newTokenKey(Date.now()), validityMs: config.tokenValidityMs },
    );
    this.packages = new PackageExecutor({
      runDir: config.runDir,
      dataDir: config.dataDir,
      repositories,
      report: (result) => this.report(result),
      // The container executor is built below; a release runs long after both exist.
      cleanupsSettled: () => this.containers.cleanupsSettled(),
      kernelVerity: host.verity.available,
      log: log.child({ room: "repository" }),
    });
    this.debugCommands = new DebugCommands(config.debug.commands, log.child({ room: "debug" }));
    this.health = new ToolchainHealth({
      runtimePath: host.runtimePath,
      monitorPath: nativeBinary("skiff-monitor"),
      initPath: nativeBinary("skiff-init"),
      verity: infos.some((r) => r.keyed) ? (host.verity.available ? "kernel" : "userspace") : "none",
      probeTimeoutMs: config.runtime.probeTimeoutMs,
      log: log.child({ room: "toolchain" }),
    });
    // A loud signal: every client hears when the toolchain breaks or recovers.
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
        void this.post({
          kind: "container",
          container,
          event: { type: "console_closed", holder: `session:${session}` },
        }),
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
        log,
        runDir: config.runDir,
        dataDir: config.dataDir,
        host: host.facts,
        socketDir: config.socketDir,
      }),
      health: this.health,
      report: (result) => this.report(result),
      emit: (container, event) => this.post({ kind: "container", container, event }),
      notificationsDelivered: () => this.heldReleased,
      log: log.child({ room: "containers" }),
      checkpointSupport: host.checkpoint,
      debugCommands: this.debugCommands,
    });
    this.power = new PowerExecutor({
      layout: host.layout,
      emit: (container, event) => this.post({ kind: "container", container, event }),
      freezeTimeoutMs: config.freezeTimeoutMs,
      freezeHoldMs: config.debug.freezeHoldMs,
      freezeFail: config.debug.freezeFail,
      log: log.child({ room: "power" }),
    });
    this.exec = new ExecExecutor({
      runDir: config.runDir,
      runtime: { path: host.runtimePath, root: `${config.runDir}/runc` },
      helper: nativeBinary("skiff-exec"),
      target: (id) => {
        const record = this.owner.state.containers.get(id);
        return (
          record && { process: record.process, capabilities: record.pkg.npk.manifest.capabilities ?? [] }
        );
      },
      log: log.child({ room: "exec" }),
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
    const runtimePath = (await detectOciRuntime(config.runtime, layout)).path;
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
    // CRI containers are in the initial state, so the adoption below re-attaches running ones.
    const criLoaded =
      config.cri.socket === undefined
        ? []
        : await (await import("../cri/containers/records.js")).readRecords(join(config.dataDir, "cri"), log);
    if (criLoaded.length > 0) {
      const { skiffIdOf, syntheticPackage } = await import("../cri/containers/records.js");
      const taken = new Set(installed.map((r) => r.id));
      for (const record of criLoaded) {
        const id = skiffIdOf(record.manifest);
        if (taken.has(id)) log.error({ container: id }, "CRI container ignored: a package has its id");
        else installed.push({ id, pkg: syntheticPackage(record) });
      }
    }
    const runtime = new Runtime(config, log, repositories, installed, host);
    runtime.keepContainers = options.keepContainers ?? config.keepContainers;
    for (const record of installed)
      if (!record.pkg.cri) record.mount = await runtime.packages.adoptMount(record.id, record.pkg);
    await runtime.packages.removeStaleDevices(installed.flatMap((r) => (r.mount ? [r.mount] : [])));
    runtime.packages.watchCorruption();
    await runtime.mountOnStart(installed.filter((r) => !r.mount));
    runtime.loop.subscribe("state", ["console_request", "shutdown", "container", "job"], (e, at) =>
      runtime.owner.handle(e, at),
    );
    runtime.loopDone = runtime.loop.run();
    // Exits found or seen from here on are held (`held`) until a client subscribes.
    await runtime.containers.adopt(
      await findInstances(`${config.logDir}/containers`, log),
      (id) => runtime.owner.state.containers.get(id)?.pkg,
    );
    const health = await runtime.health.check();
    if (health.status !== "ok") log.error({ problems: health.problems }, "toolchain degraded at startup");
    await runtime.console.listen();
    if (config.metrics) {
      const { startMetricsServer } = await import("./metrics/server.js"); // node:http only when configured
      runtime.metrics = await startMetricsServer({
        ...config.metrics,
        collect: () => runtime.metricsSnapshot(),
        log: log.child({ room: "metrics" }),
      });
      log.info(`metrics on http://${config.metrics.host}:${runtime.metrics.address.port}/metrics`);
    }
    if (config.cri.socket !== undefined) {
      // gRPC and the proto are loaded only when the endpoint is configured.
      const { startCri } = await import("../cri/index.js");
      const cri = await startCri({
        socket: config.cri.socket,
        cri: config.cri,
        runtime: config.runtime,
        layout: host.layout,
        dataDir: config.dataDir,
        runtimeHealth: () => runtime.health.check(),
        cgroupRoot: config.cgroup,
        containers: { loaded: criLoaded, daemon: runtime.criDaemon() },
        streaming: { address: config.cri.streamingAddress, exec: runtime.exec },
        log: log.child({ room: "cri" }),
      });
      runtime.cri = cri;
      log.info(`CRI on unix://${config.cri.socket}`);
    }
    void runtime.hub.waitForSubscriber(STARTUP_EXIT_GRACE_MS).then(() => runtime.releaseNotifications());
    await runtime.autostart(installed);
    return runtime;
  }

  /**
   * What the CRI containers need of the daemon (src/cri/containers/): their records join and
   * leave the state through the loop, starts and stops are console requests of the peer `cri`,
   * and the rest reads the state or asks the container executor for a handle's work.
   */
  criDaemon(): CriDaemon {
    const job = (make: (reply: (r: Response) => void) => JobResult): Promise<Response> =>
      new Promise((resolve, reject) => {
        this.loop
          .enqueue({ kind: "job", result: make(resolve) })
          .catch(() => reject(new Error("daemon is shutting down")));
      });
    return {
      add: (container, pkg) => job((reply) => ({ type: "cri_container_added", container, pkg, reply })),
      remove: (container) => job((reply) => ({ type: "cri_container_removed", container, reply })),
      start: (container) => job((reply) => ({ type: "cri_start_requested", container, reply })),
      request: (request) =>
        new Promise<Response>((resolve, reject) => {
          this.loop
            .enqueue({
              kind: "console_request",
              peer: { kind: "extern", address: "cri" },
              request,
              reply: resolve,
            })
            .catch(() => reject(new Error("daemon is shutting down")));
        }),
      process: (container) => {
        const p = this.owner.state.containers.get(container)?.process;
        return p ? { phase: p.phase, pid: p.pid, startedAt: p.startedAt } : undefined;
      },
      statistics: (container) => this.containers.statistics(container),
      reopenLog: (container) => this.containers.reopenLog(container),
      updateResources: (container, resources) => this.containers.updateResources(container, resources),
      cleanupsSettled: () => this.containers.cleanupsSettled(),
      exitOf: (cri) => readCriExit(cri.dir),
      unmountRoot: (cri) => unmountCriRoot(cri),
    };
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
      counters: this.counters.read(),
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
    if (result.type === "container_started")
      this.counters.startSucceeded(result.container, performance.now());
    else if (result.type === "container_start_failed") this.counters.startFailed(result.container);
    return this.loop.enqueue({ kind: "job", result }).catch((e: unknown) => {
      this.log.warn({ err: e, job: result.type }, "job finished after the event loop closed");
    });
  }

  /** Hands a request to the state owner through the loop and waits for its response. */
  private async dispatch(peer: Peer, request: Request, io: RequestIo): Promise<Response> {
    if (request.type === "install") return this.install(request, io);
    // exec reads the state and streams on the session's connection (exec/executor.ts).
    if (request.type === "exec") return this.exec.serve(request, io);
    // Health is the toolchain's, not the state's: a fresh check answers it.

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

  /** The daemon event loop's queue and progress, for systemd's watchdog (systemd/watchdog.ts). */
  loopProgress(): { queued: number; processed: number } {
    return { queued: this.loop.length, processed: this.loop.eventsProcessed };
  }

  /** Asks for an orderly shutdown (signals, critical failures). Safe to call repeatedly. */
  requestShutdown(reason: ShutdownReason): void {
    void this.post({ kind: "shutdown", reason });
  }

  /**
   * Posts an event from outside the loop (an executor, a session, a signal). Once the loop has
   * closed the daemon is stopping and nobody is left to tell: that is logged, not thrown.
   */
  private post(event: DaemonEvent): Promise<void> {
    const closed = (e: unknown): boolean => e instanceof EventLoopClosedError;
    return bestEffort(this.log, `posting ${event.kind} event`, this.loop.enqueue(event), closed);
  }

  /**
   * The executor map: each step type has exactly one executor. The switch names every step (the
   * lint and the `never` below make a step nobody routes a compile error).
   */
  private execute(step: Step, event: DaemonEvent): void {
    switch (step.type) {
      case "reply":
        if (event.kind === "console_request") event.reply(step.response);
        return;
      case "reply_to":
        step.reply(step.response);
        return;
      case "notify":
        this.counters.observeNotification(
          step.notification,
          (container) => this.owner.state.containers.get(container)?.process?.power.lastSuspend,
        );
        if (this.held) this.held.push(step.notification);
        else this.hub.broadcast(step.notification);
        return;
      case "shutdown":
        // Whatever is held goes out before `shutdown` (the shutdown closes the console).
        this.releaseNotifications();
        void this.shutdown(step.reason);
        return;
      case "commit_install":
      case "discard_upload":
      case "mount_images":
      case "uninstall_package":
      case "release_images":
        this.packages.execute(step);
        return;
      case "attach_power":
      case "release_power":
      case "thaw_killed":
      case "freeze":
      case "thaw":
      case "power_timer":
      case "cancel_power_timer":
      case "watch_wake_source":
      case "unwatch_wake_source":
      case "open_proxy":
        this.power.execute(step);
        return;
      case "start_container":
      case "discard_prepared":
      case "checkpoint_container":
      case "discard_checkpoint":
      case "kill_container":
      case "stop_container":
      case "cleanup_container":
      case "schedule_restart":
      case "reply_inspect":
      case "read_logs":
      case "log":
        if (step.type === "start_container" && !step.prepareOnly)
          this.counters.startRequested(step.container, performance.now());
        this.containers.execute(step);
        return;
      default: {
        const unrouted: never = step;
        throw new Error(`unrouted step ${JSON.stringify(unrouted)}`);
      }
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

  private async shutdown(reason: ShutdownReason): Promise<void> {
    if (this.shutdownStarted) return;
    this.shutdownStarted = true;
    this.resolveStopping();
    this.exitCode = shutdownExitCode(reason);
    if (this.exitCode !== 0) this.log.error(`shutting down: ${describeShutdown(reason)}`);
    else this.log.info(`shutting down: ${describeShutdown(reason)}`);
    // Let the reply to a `shutdown` request reach its session before the sessions close.
    await new Promise((resolve) => setImmediate(resolve));
    this.hub.broadcast({ type: "shutdown" });
    await this.metrics?.close();
    await this.cri?.close();
    await this.console.close();
    if (this.keepContainers) this.containers.detachAll();
    else await this.stopContainers();
    await this.containerConsoles.closeAll();
    this.debugCommands.stopAll();
    this.loop.close();
    await this.loopDone;
    // INVARIANTS: an exit handled just before the shutdown has its cleanup (monitor, bundle,
    // instance files, cgroup) still in flight; the daemon must not end before it does, or the
    // next daemon finds the instance's exit record again. No new cleanup starts once the loop
    // is done, so this wait is final.
    await this.containers.cleanupsSettled();
    this.containers.closeLauncher();
    // Releases of the mount cache end before the rest is unmounted (their reports are not needed).
    await this.packages.releasesSettled();
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
