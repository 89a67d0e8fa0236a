/**
 * Containers in pods (docs/cri.md, "Containers"): the CRI side of Kubernetes containers. A CRI
 * container is a Skiff container: its record, with a synthetic package (`pkg.cri`, repository
 * `cri`), joins the daemon's state, and start, stop, exits, OOM kills and adoption go through
 * the state owner, the container executor, the monitor and skiff-init like every other
 * container. This module keeps what CRI knows beyond that (metadata, labels, annotations, the
 * requested image and log path, creation and start times) in records under
 * `<data_dir>/cri/containers/<id>/`, and answers the CRI methods from them and from the state.
 *
 * INVARIANTS:
 * - One owner per fact: the state owns whether a container runs (its process record); the
 *   container executor owns how an instance ended (exit.json in the container's directory,
 *   written before the monitor's exit record is retired); this module owns the CRI record.
 * - A record is written before its container joins the state, and its directory is removed only
 *   after the container left the state and its cleanup ended: a crash in between leaves a record
 *   that is put back at the next start (or a directory without one, removed at the next start).
 * - Calls about one container are serialized (`serial`): CreateContainer/StartContainer/
 *   RemoveContainer of the same id never interleave their file and state changes.
 * - A pod's container name and attempt is one container: CreateContainer checks the records and
 *   the names being created (`creating`) and reserves its own in the same turn of the event
 *   loop (no await between the check and the reservation).
 */
import { randomBytes } from "node:crypto";
import { lstat, readdir, stat } from "node:fs/promises";
import type { Logger } from "pino";
import { resolveWithin } from "../../common/paths.js";
import { messageOf } from "../../common/errors.js";
import type { ContainerId } from "../../protocol/container.js";
import type { ExitStatus, Request, Response, WireError } from "../../protocol/messages.js";
import type { CriContainerPart, CriResources, InstalledPackage } from "../../daemon/events/data.js";
import type { PodSandboxLookup } from "../sandbox.js";
import {
  CriConfigError,
  needsAccounts,
  translateConfig,
  updatedResources,
  type ContainerInput,
} from "./config.js";
import { readImageAccounts } from "./accounts.js";
import { filterOf, matches, type CriContainerState } from "./filters.js";
import {
  containerDirOf,
  readRecords,
  removeRecordDir,
  skiffIdOf,
  syntheticPackage,
  writeRecord,
  type CriContainerRecord,
} from "./records.js";

/** What the containers need of the daemon (runtime.ts provides it). */
export interface CriDaemon {
  /** Adds the container's record to the state (a job through the event loop); an `install` response. */
  add(container: ContainerId, pkg: InstalledPackage): Promise<Response>;
  /** Removes a container that does not run from the state; an `uninstall` response. */
  remove(container: ContainerId): Promise<Response>;
  /** The container's one start (a `start` response); a console `start` of a CRI container is refused. */
  start(container: ContainerId): Promise<Response>;
  /** A console request through the state owner (`stop`), as the peer `cri`. */
  request(request: Request): Promise<Response>;
  /** The state's process record of the container, if it has one now (read only). */
  process(container: ContainerId): { phase: string; pid?: number; startedAt?: number } | undefined;
  /** Statistics of a running container's cgroup. */
  statistics(container: ContainerId): { memory?: MemoryFigures; cpu?: { usage_ns: number } } | undefined;
  reopenLog(container: ContainerId): Promise<void>;
  updateResources(container: ContainerId, resources: CriResources): Promise<void>;
  /** Settles once the container cleanups in flight have ended. */
  cleanupsSettled(): Promise<void>;
  /** How the container's last instance ended (exit.json), if it ended. */
  exitOf(cri: CriContainerPart): Promise<{ status: ExitStatus; finishedAt: number } | undefined>;
  /** Unmounts the container's overlay root if a crash left it mounted. */
  unmountRoot(cri: CriContainerPart): Promise<void>;
}

interface MemoryFigures {
  usage: number;
  stat?: Record<string, number>;
}

/** A refusal with its gRPC status name (server.ts maps it). */
export class CriContainerError extends Error {
  constructor(
    readonly code:
      | "NOT_FOUND"
      | "FAILED_PRECONDITION"
      | "INVALID_ARGUMENT"
      | "INTERNAL"
      | "RESOURCE_EXHAUSTED",
    message: string,
  ) {
    super(message);
  }
}

/** At most this many CRI containers exist at once (created, running or exited, not removed). */
export const MAX_CONTAINERS = 1024;
/** The writable layer walk of ContainerStats stops after this many entries (a figure, not a bound on the disk). */
const MAX_LAYER_WALK = 100_000;

export interface CriContainersOptions {
  /** `<data_dir>/cri`. */
  criDir: string;
  daemon: CriDaemon;
  pods: PodSandboxLookup;
  /**
   * The OCI runtime of a runtime handler (RuntimeClass) a pod names; absent or undefined for a
   * handler: containers of pods naming it are refused. Pods naming none run on the daemon's.
   */
  runtimeFor?: (handler: string) => { path: string; kind: "runc" | "crun" } | undefined;
  /** The image's unpacked root and user by reference or ID (the image store). */
  image(reference: string): ContainerInput["image"] | undefined;
  log: Logger;
}

const nowNs = (): string => String(BigInt(Date.now()) * 1_000_000n);
const msToNs = (ms: number): string => String(BigInt(Math.round(ms)) * 1_000_000n);

function exitCodeOf(status: ExitStatus): number {
  return status.type === "exit" ? status.code : 128 + status.signal;
}

function reasonOf(status: ExitStatus): string {
  if (status.oom === true) return "OOMKilled";
  return status.type === "exit" && status.code === 0 ? "Completed" : "Error";
}

function wireText(error: WireError): string {
  return JSON.stringify(error);
}

/** Records read at daemon start: the synthetic packages the initial state holds. */
export async function loadCriContainers(criDir: string, log: Logger): Promise<CriContainerRecord[]> {
  return readRecords(criDir, log);
}

export class CriContainers {
  private readonly records = new Map<string, CriContainerRecord>();
  private readonly serial = new Map<string, Promise<unknown>>();
  /** `<pod>/<attempt>/<name>` of CreateContainer calls writing their record now. */
  private readonly creating = new Set<string>();
  /** Ends read from exit.json, by container id (final: a CRI container starts once). */
  private readonly exits = new Map<string, { status: ExitStatus; finishedAt: number }>();

  constructor(
    private readonly o: CriContainersOptions,
    loaded: CriContainerRecord[],
  ) {
    for (const r of loaded) this.records.set(r.id, r);
  }

  /**
   * The full id of the container `id` names: itself, or the one container whose id starts with it
   * (crictl passes the short ids it prints, as containerd and the pod store accept them). Unknown
   * or ambiguous: `id` unchanged, for the method to answer as for an unknown id. The methods below
   * take full ids: a container's calls are serialized by its full id.
   */
  fullId(id: string): string {
    if (this.records.has(id) || id.length === 0 || id.length >= 64) return id;
    const matches = [...this.records.keys()].filter((k) => k.startsWith(id));
    return matches.length === 1 ? matches[0]! : id;
  }

  /** For the streaming server and runtime handlers: a CRI container's Skiff id and its pod. */
  lookup(id: string): { skiffId: ContainerId; podSandboxId: string; cri: CriContainerPart } | undefined {
    const r = this.records.get(id);
    return r ? { skiffId: r.skiffId, podSandboxId: r.podSandboxId, cri: r.cri } : undefined;
  }

  /** A container (not removed) whose root is the image's, if any: the image must not go. */
  usingImage(imageId: string): string | undefined {
    return [...this.records.values()].find((r) => r.imageRef === imageId)?.id;
  }

  /**
   * For the streaming server (exec, attach, port-forward): what a CRI container is to Skiff now:
   * its Skiff container id (the console's `exec` takes it), its init's pid while it runs, the
   * pod's network namespace file (port-forward; absent: the host's) and its log file (its output:
   * a CRI container has no stdin). Undefined for an unknown id.
   */
  target(
    id: string,
  ): { skiffId: ContainerId; running: boolean; pid?: number; netns?: string; logPath?: string } | undefined {
    const r = this.records.get(id);
    if (!r) return undefined;
    const process = this.o.daemon.process(r.skiffId);
    return {
      skiffId: r.skiffId,
      running: process !== undefined && process.phase !== "preparing" && process.phase !== "prepared",
      ...(process?.pid === undefined ? {} : { pid: process.pid }),
      ...(r.cri.namespaces.network === undefined ? {} : { netns: r.cri.namespaces.network }),
      ...(r.cri.logPath === undefined ? {} : { logPath: r.cri.logPath }),
    };
  }

  /** The ids of a pod's containers (the pod store's stop and remove hooks use them). */
  containersOf(podSandboxId: string): string[] {
    return [...this.records.values()].filter((r) => r.podSandboxId === podSandboxId).map((r) => r.id);
  }

  /** The pod store's stop hook: its containers end now (SIGKILL; the kubelet stops them gracefully first). */
  async stopPod(podSandboxId: string): Promise<void> {
    const stopOne = (id: string): Promise<void> =>
      this.stop(id, 0).catch((e: unknown) => {
        // Removed meanwhile: nothing left to stop.
        if (!(e instanceof CriContainerError && e.code === "NOT_FOUND")) throw e;
      });
    await Promise.all(this.containersOf(podSandboxId).map(stopOne));
  }

  /** The pod store's remove hook: its containers are removed. */
  async removePod(podSandboxId: string): Promise<void> {
    await Promise.all(this.containersOf(podSandboxId).map((id) => this.remove(id)));
  }

  private record(id: string): CriContainerRecord {
    const r = this.records.get(id);
    if (!r) throw new CriContainerError("NOT_FOUND", `container ${id.slice(0, 80)} not found`);
    return r;
  }

  /** Runs `work` after the previous call about the same container. */
  private one<T>(id: string, work: () => Promise<T>): Promise<T> {
    const previous = this.serial.get(id) ?? Promise.resolve();
    const next = previous.then(work, work);
    const settled = next.catch(() => undefined);
    this.serial.set(id, settled);
    void settled.then(() => {
      if (this.serial.get(id) === settled) this.serial.delete(id);
    });
    return next;
  }

  async create(podSandboxId: string, config: Record<string, unknown> | null): Promise<string> {
    const pod = this.o.pods.sandbox(podSandboxId);
    if (!pod) throw new CriContainerError("NOT_FOUND", `pod sandbox ${podSandboxId.slice(0, 80)} not found`);
    if (!pod.ready) throw new CriContainerError("FAILED_PRECONDITION", `pod sandbox ${pod.id} is not ready`);
    const imageSpec = config?.image as Record<string, unknown> | null | undefined;
    const reference = typeof imageSpec?.image === "string" ? imageSpec.image : "";
    const image = reference === "" ? undefined : this.o.image(reference);
    if (!image)
      throw new CriContainerError(
        "NOT_FOUND",
        `image ${JSON.stringify(reference.slice(0, 200))} is not pulled`,
      );
    const id = this.newId();
    const dir = containerDirOf(this.o.criDir, id);
    const accounts = needsAccounts(config, image.user) ? await readImageAccounts(image.rootfs) : undefined;
    let translated;
    try {
      translated = translateConfig(config, { id, pod, dir, image, ...(accounts ? { accounts } : {}) });
    } catch (e) {
      if (e instanceof CriConfigError) throw new CriContainerError("INVALID_ARGUMENT", e.message);
      throw e;
    }
    await this.checkMounts(translated.cri);
    if (pod.runtimeHandler !== "") {
      const runtime = this.o.runtimeFor?.(pod.runtimeHandler);
      if (!runtime)
        throw new CriContainerError(
          "FAILED_PRECONDITION",
          `runtime handler ${JSON.stringify(pod.runtimeHandler.slice(0, 100))} of pod ${pod.id} is not available`,
        );
      translated.cri.runtime = runtime;
    }
    const sameName = [...this.records.values()].find(
      (r) =>
        r.podSandboxId === pod.id &&
        r.metadata.name === translated.metadata.name &&
        r.metadata.attempt === translated.metadata.attempt,
    );
    // Checked and reserved in one turn of the event loop: a second call for the same name and
    // attempt while this one writes its record is refused too, as are calls past the bound.
    const key = `${pod.id}/${translated.metadata.attempt}/${translated.metadata.name}`;
    if (sameName || this.creating.has(key))
      throw new CriContainerError(
        "FAILED_PRECONDITION",
        `container ${translated.metadata.name} attempt ${translated.metadata.attempt} exists in the pod`,
      );
    if (this.records.size + this.creating.size >= MAX_CONTAINERS)
      throw new CriContainerError(
        "RESOURCE_EXHAUSTED",
        `at most ${MAX_CONTAINERS} CRI containers exist at once`,
      );
    this.creating.add(key);
    const record: CriContainerRecord = {
      id,
      podSandboxId: pod.id,
      skiffId: skiffIdOf(translated.manifest),
      metadata: translated.metadata,
      image: reference,
      imageRef: image.id,
      labels: translated.labels,
      annotations: translated.annotations,
      logPathRequested: translated.logPathRequested,
      manifest: translated.manifest,
      cri: translated.cri,
      createdAt: nowNs(),
    };
    return this.one(id, async () => {
      try {
        return await this.add(record);
      } finally {
        this.creating.delete(key);
      }
    });
  }

  /** Writes the record, then has the daemon add the container (the record first: INVARIANTS). */
  private async add(record: CriContainerRecord): Promise<string> {
    const { id } = record;
    await writeRecord(this.o.criDir, record);
    const response = await this.o.daemon.add(record.skiffId, syntheticPackage(record));
    if (response.type !== "install" || response.result.type !== "ok") {
      await removeRecordDir(this.o.criDir, id);
      throw new CriContainerError(
        "INTERNAL",
        `the daemon refused the container: ${JSON.stringify(response)}`,
      );
    }
    this.records.set(id, record);
    this.o.log.info({ container: record.skiffId, id }, "CRI container created");
    return id;
  }

  private newId(): string {
    for (;;) {
      const id = randomBytes(32).toString("hex");
      const prefix = id.slice(0, 12);
      if (![...this.records.keys()].some((k) => k.startsWith(prefix))) return id;
    }
  }

  /** CRI mounts' host paths must exist (a missing one would be created by runc as root, on the host). */
  private async checkMounts(cri: CriContainerPart): Promise<void> {
    for (const m of cri.mounts) {
      try {
        await stat(m.hostPath);
      } catch (e) {
        throw new CriContainerError(
          "INVALID_ARGUMENT",
          `mount ${m.containerPath}: host path ${m.hostPath}: ${messageOf(e)}`,
        );
      }
    }
  }

  async start(id: string): Promise<void> {
    const record = this.record(id);
    await this.one(id, async () => {
      if (record.startedAt !== undefined || (await this.o.daemon.exitOf(record.cri)))
        throw new CriContainerError("FAILED_PRECONDITION", `container ${id} was started before`);
      const pod = this.o.pods.sandbox(record.podSandboxId);
      if (!pod?.ready)
        throw new CriContainerError("FAILED_PRECONDITION", `pod sandbox ${record.podSandboxId} is not ready`);
      const response = await this.o.daemon.start(record.skiffId);
      if (response.type !== "start" || response.result.type !== "ok")
        throw new CriContainerError(
          "FAILED_PRECONDITION",
          `start of ${id} failed: ${response.type === "start" && response.result.type === "error" ? wireText(response.result.error) : JSON.stringify(response)}`,
        );
      const startedAt = this.o.daemon.process(record.skiffId)?.startedAt ?? Date.now();
      record.startedAt = msToNs(startedAt);
      await writeRecord(this.o.criDir, record);
    });
  }

  /** SIGTERM, then SIGKILL after `timeoutS` seconds; answers once the container has ended. */
  async stop(id: string, timeoutS: number): Promise<void> {
    const record = this.record(id);
    if (this.o.daemon.process(record.skiffId) === undefined) return;
    const response = await this.o.daemon.request({
      type: "stop",
      container: record.skiffId,
      timeout: Math.max(0, Math.min(timeoutS, 24 * 3600)),
    });
    if (response.type === "stop" && response.result.type === "error") {
      const error = response.result.error;
      // Ended meanwhile: CRI's stop of a stopped container succeeds.
      if (error.type === "stop_container_not_started") return;
      throw new CriContainerError("INTERNAL", `stop of ${id} failed: ${wireText(error)}`);
    }
  }

  async remove(id: string): Promise<void> {
    const record = this.records.get(id);
    if (!record) return; // CRI: removing a container that is not there succeeds
    await this.one(id, async () => {
      if (!this.records.has(id)) return; // a removal just before this one
      // After a StartContainer in flight (serialized before this), so its instance is stopped too.
      await this.stop(id, 0);
      const response = await this.o.daemon.remove(record.skiffId);
      if (response.type === "uninstall" && response.result.type === "error") {
        const error = response.result.error;
        if (error.type !== "invalid_container")
          throw new CriContainerError("FAILED_PRECONDITION", `remove of ${id}: ${wireText(error)}`);
      }
      this.records.delete(id);
      this.exits.delete(id);
      await this.o.daemon.cleanupsSettled();
      await this.o.daemon.unmountRoot(record.cri);
      await removeRecordDir(this.o.criDir, id);
      this.o.log.info({ container: record.skiffId, id }, "CRI container removed");
    });
  }

  private async stateOf(record: CriContainerRecord): Promise<{
    state: CriContainerState;
    exit?: { status: ExitStatus; finishedAt: number };
    pid?: number;
  }> {
    const process = this.o.daemon.process(record.skiffId);
    if (process) {
      const created =
        process.phase === "preparing" || process.phase === "prepared" || process.phase === "starting";
      return { state: created ? "CONTAINER_CREATED" : "CONTAINER_RUNNING", pid: process.pid };
    }
    // A CRI container ends once (it is never restarted): its end, once read, is kept here, so the
    // kubelet's relist every second reads no file for an exited container.
    const exit = this.exits.get(record.id) ?? (await this.o.daemon.exitOf(record.cri));
    if (exit) {
      if (this.records.has(record.id)) this.exits.set(record.id, exit);
      return { state: "CONTAINER_EXITED", exit };
    }
    // Started, its process gone and its end not yet written: the exit is on its way.
    return { state: record.startedAt === undefined ? "CONTAINER_CREATED" : "CONTAINER_UNKNOWN" };
  }

  async list(filterMessage: Record<string, unknown> | null): Promise<Record<string, unknown>[]> {
    const filter = filterOf(filterMessage);
    const out: Record<string, unknown>[] = [];
    for (const r of this.records.values()) {
      const { state } = await this.stateOf(r);
      if (!matches(filter, { id: r.id, podSandboxId: r.podSandboxId, state, labels: r.labels })) continue;
      out.push({
        id: r.id,
        pod_sandbox_id: r.podSandboxId,
        metadata: r.metadata,
        image: { image: r.image },
        image_ref: r.imageRef,
        state,
        created_at: r.createdAt,
        labels: r.labels,
        annotations: r.annotations,
      });
    }
    return out;
  }

  async status(id: string, verbose: boolean): Promise<Record<string, unknown>> {
    const r = this.record(id);
    const { state, exit, pid } = await this.stateOf(r);
    const finishedAt = exit ? msToNs(exit.finishedAt) : "0";
    // The start is stamped when the daemon saw skiff-init ready, the end by the monitor: an app
    // that ends at once can end "before" its stamp. A start is never reported after its end.
    const startedAt =
      exit && r.startedAt !== undefined && BigInt(finishedAt) < BigInt(r.startedAt)
        ? finishedAt
        : (r.startedAt ?? "0");
    const status = {
      id: r.id,
      metadata: r.metadata,
      state,
      created_at: r.createdAt,
      started_at: startedAt,
      finished_at: finishedAt,
      exit_code: exit ? exitCodeOf(exit.status) : 0,
      image: { image: r.image },
      image_ref: r.imageRef,
      reason: exit ? reasonOf(exit.status) : "",
      message: "",
      labels: r.labels,
      annotations: r.annotations,
      mounts: r.cri.mounts.map((m) => ({
        container_path: m.containerPath,
        host_path: m.hostPath,
        readonly: m.readonly,
        propagation: "PROPAGATION_PRIVATE",
      })),
      log_path: r.cri.logPath ?? "",
      resources: { linux: linuxResources(r.cri.resources) },
    };
    const info = verbose
      ? {
          info: JSON.stringify({
            skiffContainer: r.skiffId,
            pid: pid ?? 0,
            podSandboxId: r.podSandboxId,
            ...(exit ? { exitStatus: exit.status } : {}),
          }),
        }
      : {};
    return { status, info };
  }

  async updateResources(id: string, linux: Record<string, unknown> | null): Promise<void> {
    const record = this.record(id);
    let resources: CriResources;
    try {
      resources = updatedResources(linux);
    } catch (e) {
      if (e instanceof CriConfigError) throw new CriContainerError("INVALID_ARGUMENT", e.message);
      throw e;
    }
    await this.one(id, async () => {
      if (this.o.daemon.process(record.skiffId) !== undefined)
        await this.o.daemon.updateResources(record.skiffId, resources);
      record.cri = { ...record.cri, resources };
      await writeRecord(this.o.criDir, record);
    });
  }

  async reopenLog(id: string): Promise<void> {
    const record = this.record(id);
    if (this.o.daemon.process(record.skiffId) === undefined)
      throw new CriContainerError("FAILED_PRECONDITION", `container ${id} is not running`);
    if (record.cri.logPath === undefined)
      throw new CriContainerError("FAILED_PRECONDITION", `container ${id} has no log path`);
    await this.o.daemon.reopenLog(record.skiffId);
  }

  async stats(id: string): Promise<Record<string, unknown>> {
    return this.statsOf(this.record(id));
  }

  async listStats(filterMessage: Record<string, unknown> | null): Promise<Record<string, unknown>[]> {
    const filter = filterOf(filterMessage);
    const out: Record<string, unknown>[] = [];
    for (const r of this.records.values()) {
      const { state } = await this.stateOf(r);
      if (
        !matches(
          { ...filter, state: undefined },
          { id: r.id, podSandboxId: r.podSandboxId, state, labels: r.labels },
        )
      )
        continue;
      out.push(await this.statsOf(r));
    }
    return out;
  }

  private async statsOf(r: CriContainerRecord): Promise<Record<string, unknown>> {
    const timestamp = nowNs();
    const figures = this.o.daemon.statistics(r.skiffId);
    const layer = await layerUsage(resolveWithin(r.cri.dir, "upper"));
    const memory = figures?.memory;
    const inactive = memory?.stat?.total_inactive_file ?? memory?.stat?.inactive_file ?? 0;
    return {
      attributes: { id: r.id, metadata: r.metadata, labels: r.labels, annotations: r.annotations },
      cpu: figures?.cpu
        ? { timestamp, usage_core_nano_seconds: { value: String(figures.cpu.usage_ns) } }
        : null,
      memory: memory
        ? {
            timestamp,
            working_set_bytes: { value: String(Math.max(0, memory.usage - inactive)) },
            usage_bytes: { value: String(memory.usage) },
          }
        : null,
      writable_layer: {
        timestamp,
        fs_id: { mountpoint: r.cri.dir },
        used_bytes: { value: String(layer.bytes) },
        inodes_used: { value: String(layer.inodes) },
      },
    };
  }
}

/** CRI's LinuxContainerResources of the container's current limits. */
function linuxResources(r: CriResources): Record<string, unknown> {
  return {
    cpu_period: String(r.cpuPeriod ?? 0),
    cpu_quota: String(r.cpuQuota ?? 0),
    cpu_shares: String(r.cpuShares ?? 0),
    memory_limit_in_bytes: String(r.memoryLimitBytes ?? 0),
    cpuset_cpus: r.cpusetCpus ?? "",
    cpuset_mems: r.cpusetMems ?? "",
  };
}

/** Bytes and inodes of the writable layer (async, at most MAX_LAYER_WALK entries). */
async function layerUsage(dir: string): Promise<{ bytes: number; inodes: number }> {
  let bytes = 0;
  let inodes = 0;
  const pending = [dir];
  for (let d = pending.pop(); d !== undefined && inodes < MAX_LAYER_WALK; d = pending.pop()) {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) {
      inodes++;
      const path = `${d}/${e.name}`;
      if (e.isDirectory()) pending.push(path);
      else if (e.isFile()) bytes += (await lstat(path).catch(() => undefined))?.size ?? 0;
    }
  }
  return { bytes, inodes };
}
