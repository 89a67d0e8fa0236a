/**
 * The typed client: one method per console request. Methods resolve with the useful part of
 * the response and throw RuntimeError (with the wire variant) or PermissionDeniedError.
 */
import type { ContainerId } from "../protocol/container.js";
import type {
  ContainerStatistics,
  ContainerData,
  ContainerResult,
  ExitStatus,
  HealthInfo,
  Notification,
  PowerInfo,
  ProxyFraming,
  Request,
  Response,
  ResponseType,
  WakeSource,
} from "../protocol/messages.js";
import { openConnection, type Connection, type ConnectOptions } from "./connection.js";
import { PermissionDeniedError, RuntimeError, SkiffError } from "./errors.js";

type ResponseOf<T extends ResponseType> = Extract<Response, { type: T }>;

export class Client {
  private latest: Response | undefined;

  private constructor(readonly connection: Connection) {}

  /**
   * The response to the latest request that was answered with its own variant (its result may
   * still be an error): what `skiff --json` prints, as the daemon sent it.
   */
  get lastResponse(): Response | undefined {
    return this.latest;
  }

  static async connect(url: string, options?: ConnectOptions): Promise<Client> {
    return new Client(await openConnection(url, options));
  }

  /** Sends a request and checks the response has the expected variant. */
  async call<T extends ResponseType>(
    request: Request,
    expect: T,
    payload?: AsyncIterable<Buffer> | Buffer,
    options: { timeoutMs?: number } = {},
  ): Promise<ResponseOf<T>> {
    const response = await this.connection.request(request, payload, options);
    if (response.type === expect) {
      this.latest = response;
      return response as ResponseOf<T>;
    }
    if (response.type === "permission_denied") throw new PermissionDeniedError(response.request);
    if (response.type === "error") throw new RuntimeError(response.error);
    throw new SkiffError(`expected a ${expect} response to ${request.type}, got ${response.type}`);
  }

  /** The connection's identity: a container id, or "extern:0.0.0" for host clients. */
  async ident(): Promise<ContainerId> {
    return (await this.call({ type: "ident" }, "ident")).container;
  }

  async list(): Promise<ContainerId[]> {
    return (await this.call({ type: "list" }, "list")).containers;
  }

  async repositories(): Promise<string[]> {
    return (await this.call({ type: "repositories" }, "repositories")).repositories;
  }

  async inspect(container: ContainerId): Promise<ContainerData> {
    const { result } = await this.call({ type: "inspect", container }, "inspect");
    if (result.type === "error") throw new RuntimeError(result.error);
    return result.data;
  }

  /** Asks the daemon to shut down; resolves once it has acknowledged. */
  async shutdown(): Promise<void> {
    await this.call({ type: "shutdown" }, "shutdown");
  }

  async start(
    container: ContainerId,
    overrides: { init?: string; arguments?: string[]; environment?: Record<string, string> } = {},
  ): Promise<void> {
    const request: Request = {
      type: "start",
      container,
      init: overrides.init ?? null,
      arguments: overrides.arguments ?? [],
      environment: overrides.environment ?? {},
    };
    unwrap((await this.call(request, "start")).result);
  }

  async kill(container: ContainerId, signal: number): Promise<void> {
    unwrap((await this.call({ type: "kill", container, signal }, "kill")).result);
  }

  /**
   * Skiff: SIGTERM, then SIGKILL after `timeoutSeconds` (default: the manifest's `stop_timeout`,
   * else 5); resolves with how the container ended.
   */
  async stop(container: ContainerId, timeoutSeconds?: number): Promise<ExitStatus> {
    const request: Request =
      timeoutSeconds === undefined
        ? { type: "stop", container }
        : { type: "stop", container, timeout: timeoutSeconds };
    const { result } = await this.call(request, "stop");
    if (result.type === "error") throw new RuntimeError(result.error);
    return result.status;
  }

  /**
   * Skiff: the container's log. Without `offset`, the last `lines` lines (daemon default 100);
   * with the `offset` of an earlier answer, the lines written since. Lines are
   * `<time> <stdout|stderr> <text>`.
   */
  async logs(
    container: ContainerId,
    options: { lines?: number; offset?: number } = {},
  ): Promise<{ lines: string[]; offset: number }> {
    const request: Request = {
      type: "logs",
      container,
      ...(options.lines === undefined ? {} : { lines: options.lines }),
      ...(options.offset === undefined ? {} : { offset: options.offset }),
    };
    const { result } = await this.call(request, "logs");
    if (result.type === "error") throw new RuntimeError(result.error);
    return { lines: result.lines, offset: result.offset };
  }

  /** Mounts several containers; one result per container, in request order. */
  async mount(containers: ContainerId[]): Promise<ContainerResult[]> {
    return (await this.call({ type: "mount", containers }, "mount")).results;
  }

  async umount(containers: ContainerId[]): Promise<ContainerResult[]> {
    return (await this.call({ type: "umount", containers }, "umount")).results;
  }

  async uninstall(container: ContainerId, wipe = false): Promise<void> {
    unwrap((await this.call({ type: "uninstall", container, wipe }, "uninstall")).result);
  }

  /** Streams `size` bytes of an NPK into `repository`; resolves with the installed container. */
  async install(repository: string, size: number, npk: AsyncIterable<Buffer> | Buffer): Promise<ContainerId> {
    // An upload takes as long as the bytes take.
    const { result } = await this.call({ type: "install", repository, size }, "install", npk, {
      timeoutMs: 0,
    });
    if (result.type === "error") throw new RuntimeError(result.error);
    return result.container;
  }

  /** Skiff (power): freezes the container; pausing a paused container succeeds. */
  async pause(container: ContainerId): Promise<void> {
    unwrap((await this.call({ type: "pause", container }, "pause")).result);
  }

  /** Skiff (power): thaws a paused container; resuming a running one is an error. */
  async resume(container: ContainerId): Promise<void> {
    unwrap((await this.call({ type: "resume", container }, "resume")).result);
  }

  /**
   * Skiff (power): suspends the container until a wake source fires (or `maxSleepMs` passes);
   * resolves with the nanoseconds it was frozen and the names of the sources that woke it
   * (`max_sleep` after a timeout). Throws `wake_locks_exist` when wake locks are held.
   */
  async suspend(
    container: ContainerId,
    options: { maxSleepMs?: number } = {},
  ): Promise<{ suspendTime: number; resumeReason: string }> {
    const request: Request = {
      type: "suspend",
      container,
      ...(options.maxSleepMs === undefined ? {} : { max_sleep_ms: options.maxSleepMs }),
    };
    // A suspend answers when the container wakes: no deadline. It holds this connection's
    // queue meanwhile, so use another connection for requests that must not wait for it.
    const { result } = await this.call(request, "suspend", undefined, { timeoutMs: 0 });
    if (result.type === "error") throw new RuntimeError(result.error);
    return { suspendTime: result.suspend_time, resumeReason: result.resume_reason };
  }

  /** Skiff (power): holds wake lock `name` (released after `timeoutMs` when given). */
  async acquireWakeLock(
    container: ContainerId,
    name: string,
    options: { timeoutMs?: number } = {},
  ): Promise<void> {
    const request: Request = {
      type: "wake_lock_acquire",
      container,
      name,
      ...(options.timeoutMs === undefined ? {} : { timeout_ms: options.timeoutMs }),
    };
    unwrap((await this.call(request, "wake_lock")).result);
  }

  async releaseWakeLock(container: ContainerId, name: string): Promise<void> {
    unwrap((await this.call({ type: "wake_lock_release", container, name }, "wake_lock")).result);
  }

  /** Skiff (power): registers what wakes the container from a suspend, under `name`. */
  async addWakeSource(container: ContainerId, name: string, source: WakeSource): Promise<void> {
    unwrap((await this.call({ type: "add_wake_source", container, name, source }, "wake_source")).result);
  }

  async removeWakeSource(container: ContainerId, name: string): Promise<void> {
    unwrap((await this.call({ type: "remove_wake_source", container, name }, "wake_source")).result);
  }

  /** Skiff (power): the daemon listens on `listen` and forwards to `target` in the container. */
  async proxyWakeChannel(
    container: ContainerId,
    name: string,
    listen: string,
    target: string,
    framing?: ProxyFraming,
  ): Promise<void> {
    const request: Request = {
      type: "proxy_wake_channel",
      container,
      name,
      listen,
      target,
      ...(framing === undefined ? {} : { framing }),
    };
    unwrap((await this.call(request, "proxy")).result);
  }

  /** Skiff (power): the container handled `count` (daemon default 1) messages of channel `name`. */
  async proxyHandled(container: ContainerId, name: string, count?: number): Promise<void> {
    const request: Request = {
      type: "proxy_handled",
      container,
      name,
      ...(count === undefined ? {} : { count }),
    };
    unwrap((await this.call(request, "proxy")).result);
  }

  /** Skiff (power): state, locks, sources, counters and the last suspend (wire field names). */
  async power(container: ContainerId): Promise<PowerInfo> {
    const { result } = await this.call({ type: "power", container }, "power");
    if (result.type === "error") throw new RuntimeError(result.error);
    return result.power;
  }

  /** Skiff (executor): mounts, writes the bundle and creates the container so a start is quick. */
  async prepare(container: ContainerId): Promise<void> {
    unwrap((await this.call({ type: "prepare", container }, "prepare")).result);
  }

  /**
   * Skiff: checkpoints a running container with CRIU; it is stopped afterwards. No client
   * timeout: a dump takes as long as the container's memory needs, and the daemon bounds it.
   */
  async checkpoint(container: ContainerId): Promise<void> {
    unwrap(
      (await this.call({ type: "checkpoint", container }, "checkpoint", undefined, { timeoutMs: 0 })).result,
    );
  }

  /** Skiff: starts a checkpointed container from its image (no client timeout, as checkpoint). */
  async restore(container: ContainerId): Promise<void> {
    unwrap((await this.call({ type: "restore", container }, "restore", undefined, { timeoutMs: 0 })).result);
  }

  /** Skiff (executor): whether the OCI runtime and the monitor work, and what is wrong if not. */
  async health(): Promise<HealthInfo> {
    return (await this.call({ type: "health" }, "health")).health;
  }

  /**
   * Skiff: the cgroup statistics of the running containers among `containers` (default: all
   * running ones) in one request.
   */
  async statistics(containers?: ContainerId[]): Promise<ContainerStatistics[]> {
    const request = containers === undefined ? {} : { containers };
    return (await this.call({ type: "statistics", ...request }, "statistics")).containers;
  }

  /** Notifications as they arrive (connect with `notifications: true`). */
  notifications(): AsyncGenerator<Notification, void, undefined> {
    return this.connection.notifications();
  }

  close(): void {
    this.connection.close();
  }
}

function unwrap(result: ContainerResult): void {
  if (result.type === "error") throw new RuntimeError(result.error);
}

/** Connects to a Skiff (or Northstar 0.9) console and performs the handshake. */
export function connect(url: string, options?: ConnectOptions): Promise<Client> {
  return Client.connect(url, options);
}
