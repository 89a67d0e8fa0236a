/**
 * The pod store: the one owner of CRI pod sandboxes (docs/cri.md, "Pod sandboxes"), as the image
 * store owns images. A pod is a directory `<data_dir>/cri/pods/<id>/` holding
 *
 *   pod.json         the record, written via tmp + fsync + rename (its presence is the pod's existence)
 *   ns/net ns/ipc ns/uts   bind-mounted namespace files (only the kinds the pod holds)
 *   etc/hosts etc/resolv.conf etc/hostname   bind-mounted into each container by the containers side
 *
 * plus a cgroup `/<root>/cri/<id>` with the pod's limits, a veth on the pod bridge with the pod's
 * address, and a TCP proxy per port mapping. `<id>` is 64 hex digits chosen here; no path is
 * built from request text.
 *
 * INVARIANTS:
 * - `records` holds exactly the pods whose pod.json is in place, each as last written.
 * - Changes to one pod (stop, remove, update) run one at a time (`exclusive(id)`); a new pod is
 *   invisible until its pod.json is written, so nothing else can reach it before.
 * - No two pods, existing or starting, have the same metadata (`starting` covers the window
 *   between the check and the record).
 * - An address is in `addresses` from its allocation until its veth is deleted: no two pods or
 *   prepared sandboxes of this daemon share one.
 * - A directory under pods/ without a readable pod.json (a crash during RunPodSandbox, a prepared
 *   sandbox of a previous run, a broken record) is garbage: `open` removes its cgroup, unmounts
 *   its namespace files, deletes its veth (named from its id) and removes it.
 * - Removal unlinks pod.json after the pod's containers and cgroup are gone and before the
 *   namespaces are released, so a crash in between leaves garbage for `open`, never a half pod.
 */
import { randomBytes } from "node:crypto";
import { hostname as hostHostname } from "node:os";
import {
  mkdir,
  open as openFile,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  unlink,
  writeFile,
} from "node:fs/promises";
import { status as GrpcStatus } from "@grpc/grpc-js";
import type { Logger } from "pino";
import { ifExists, messageOf } from "../../common/errors.js";
import { resolveWithin } from "../../common/paths.js";
import type { CgroupLayout } from "../../daemon/cgroups/layout.js";
import type { CgroupStats } from "../../daemon/cgroups/cgroup-stats.js";
import type { PodSandboxLookup, PodSandboxRef } from "../sandbox.js";
import { allocateAddress, formatIpv4, type Ipv4Cidr } from "../../common/ipv4.js";
import { PodCgroups } from "./cgroup.js";
import { notFound, PodError, precondition } from "./errors.js";
import { renderHostname, renderHosts, renderResolvConf } from "./etc-files.js";
import { matchesFilter, type PodFilter } from "./filter.js";
import {
  createNamespaces,
  ensurePrivateMount,
  mountPoints,
  releaseNamespaces,
  setHostname,
  type NamespaceKind,
} from "./namespaces.js";
import {
  attachPod,
  bridgeUp,
  detachPod,
  ensureBridge,
  podInterfaceCounters,
  reattachPod,
  vethName,
  type PodInterfaceCounters,
  type PodNetworkConfig,
} from "./network.js";
import { openPortProxies, type PortProxies } from "./ports.js";
import type { PodResources, PodSpec } from "./spec.js";
import { MAX_RECORD_BYTES, parseRecord, serializeRecord, type PodRecord } from "./record.js";
import { SandboxPool, type PreparedSandbox } from "./pool.js";
import { Slots } from "./slots.js";

/** The host's resolv.conf / hosts copied for pods without their own. */
const MAX_HOST_FILE_BYTES = 64 * 1024;
const ID = /^[0-9a-f]{64}$/;
/** Pods made at once: a burst of RunPodSandbox calls spawns a bounded number of processes. */
const MAX_RUNS_AT_ONCE = 4;

export type { PodRecord } from "./record.js";

/** Called with a pod's id when it stops or is removed: the containers side stops/removes its containers. */
export type PodHook = (podId: string) => Promise<void>;

export interface PodStoreOptions {
  /** `<data_dir>/cri`; pods go to `pods/` below it. */
  criDir: string;
  layout: CgroupLayout;
  /** Skiff's cgroup root name (`cgroup` in the daemon's config). */
  cgroupRoot: string;
  network: { bridge: string; cidr: Ipv4Cidr };
  /** Prepared sandboxes kept ready (0: none). */
  poolSize: number;
  log: Logger;
}

/** Whether the pod network works (Status' NetworkReady). */
export interface NetworkCondition {
  ready: boolean;
  reason: string;
  message: string;
}

/** Where a `RunPodSandbox`'s namespaces came from (for the bench and the tests). */
export type SandboxSource = "pool" | "cold";

export class PodStore implements PodSandboxLookup {
  private readonly records = new Map<string, PodRecord>();
  private readonly proxies = new Map<string, PortProxies>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly addresses = new Set<string>();
  /** RunPodSandbox calls at work at once (each spawns a few processes); the others wait. */
  private readonly making = new Slots(MAX_RUNS_AT_ONCE);
  /** The metadata (as JSON) of the pods whose RunPodSandbox is under way. */
  private readonly starting = new Set<string>();
  private readonly stopHooks: PodHook[] = [];
  private readonly removeHooks: PodHook[] = [];
  private readonly cgroups: PodCgroups;
  private readonly net: PodNetworkConfig;
  private networkCondition: NetworkCondition = { ready: false, reason: "NetworkNotSetUp", message: "" };
  private pool: SandboxPool | undefined;
  /** The last pod CIDR the kubelet sent. */
  private kubeletCidr = "";
  /** A bridge setup under way (one at a time). */
  private networkSetup: Promise<void> | undefined;
  /** How the last RunPodSandbox got its namespaces (bench, tests). */
  lastSource: SandboxSource | undefined;

  private constructor(
    readonly directory: string,
    private readonly options: PodStoreOptions,
  ) {
    this.cgroups = new PodCgroups(options.layout, options.cgroupRoot);
    this.net = { bridge: options.network.bridge, cidr: options.network.cidr };
  }

  /**
   * Opens the store: the pods directory (a private mount), the records of the pods that survived
   * the last daemon (a pod whose namespaces are gone, after a reboot, becomes not ready), garbage
   * removed, the port proxies of ready pods, the bridge (the pods' veths put back on it if it had
   * to be made again), and the pool filling in the background.
   */
  static async open(options: PodStoreOptions): Promise<PodStore> {
    const directory = resolveWithin(options.criDir, "pods");
    await mkdir(directory, { recursive: true });
    await ensurePrivateMount(directory);
    const store = new PodStore(directory, options);
    await store.load();
    await store.setUpNetwork();
    store.pool = new SandboxPool(
      options.poolSize,
      () => store.prepare(),
      (s) => store.discard(s),
      options.log,
    );
    store.pool.refill();
    return store;
  }

  // --- hooks and lookups -----------------------------------------------------------------

  /** Registers what must happen to a pod's containers when it stops (before its network goes). */
  onStop(hook: PodHook): void {
    this.stopHooks.push(hook);
  }

  /** Registers what must happen to a pod's containers when it is removed (before its cgroup goes). */
  onRemove(hook: PodHook): void {
    this.removeHooks.push(hook);
  }

  /** The pod `id` names (its full id or a unique prefix, as `find`), for the containers side. */
  sandbox(id: string): PodSandboxRef | undefined {
    const record = this.find(id);
    return record === undefined ? undefined : this.refOf(record);
  }

  /** The record of the pod `id` names: its full id or a unique prefix (crictl's short ids). */
  find(id: string): PodRecord | undefined {
    const exact = this.records.get(id);
    if (exact !== undefined || id.length === 0 || id.length >= 64) return exact;
    const matches = [...this.records.values()].filter((r) => r.id.startsWith(id));
    return matches.length === 1 ? matches[0] : undefined;
  }

  list(filter: PodFilter): PodRecord[] {
    return [...this.records.values()]
      .filter((record) => matchesFilter(record, filter))
      .sort((a, b) => (BigInt(a.createdAt) < BigInt(b.createdAt) ? -1 : 1));
  }

  /**
   * The pod network's condition, checked afresh (sysfs reads): a bridge that went away or down
   * since is set up again, and reported not ready with the reason when that fails.
   */
  async network(): Promise<NetworkCondition> {
    if (!(await bridgeUp(this.net.bridge))) {
      this.networkSetup ??= this.setUpNetwork().finally(() => (this.networkSetup = undefined));
      await this.networkSetup;
    }
    return this.networkCondition;
  }

  /**
   * The pod CIDR the kubelet sent (UpdateRuntimeConfig), logged once per change when it is not
   * `[cri] pod_cidr`: pods keep getting addresses from Skiff's own.
   */
  noteKubeletCidr(cidr: string): void {
    if (cidr === "" || cidr === this.kubeletCidr) return;
    this.kubeletCidr = cidr;
    const own = `${formatIpv4(this.net.cidr.network)}/${this.net.cidr.prefix}`;
    if (cidr !== own) {
      this.options.log.warn(
        { kubelet: cidr, skiff: own },
        "the kubelet's pod CIDR is not [cri] pod_cidr; pods get addresses from [cri] pod_cidr",
      );
    }
  }

  /** Prepared sandboxes ready now (tests, bench). */
  pooled(): number {
    return this.pool?.size() ?? 0;
  }

  /** Resolves once the pool holds its configured size (or its last refill failed). Tests, bench. */
  poolFilled(): Promise<void> {
    return this.pool?.filled() ?? Promise.resolve();
  }

  stats(id: string): CgroupStats | undefined {
    return this.records.has(id) ? this.cgroups.stats(id) : undefined;
  }

  /** The counters of the pod's `eth0`, while its network is attached. */
  async interfaceCounters(id: string): Promise<PodInterfaceCounters | undefined> {
    return this.records.get(id)?.ip === undefined ? undefined : podInterfaceCounters(vethName(id));
  }

  /** How many ready pods run under the runtime handler `handler` (the spread's load). */
  readyPodsOf(handler: string): number {
    let count = 0;
    for (const r of this.records.values()) if (r.state === "ready" && r.runtimeHandler === handler) count++;
    return count;
  }

  // --- the CRI operations -------------------------------------------------------------

  async run(spec: PodSpec): Promise<PodRecord> {
    // CRI: one pod per (name, namespace, uid, attempt); the kubelet raises the attempt to retry.
    const name = JSON.stringify(spec.metadata);
    const taken = [...this.records.values()].some((r) => JSON.stringify(r.metadata) === name);
    if (taken || this.starting.has(name)) {
      throw new PodError(GrpcStatus.ALREADY_EXISTS, `a pod sandbox with metadata ${name} exists already`);
    }
    this.starting.add(name);
    try {
      return await this.making.run(() => this.runPod(spec));
    } finally {
      this.starting.delete(name);
      // After the answer is ready: the refill must not slow down the request it replenishes for.
      setImmediate(() => this.pool?.refill());
    }
  }

  private async runPod(spec: PodSpec): Promise<PodRecord> {
    if (spec.portMappings.length > 0 && !this.networkCondition.ready) {
      throw precondition(
        `port mappings need a pod address, and the pod network is not ready: ${this.networkCondition.message}`,
      );
    }
    const all = spec.holds.network && spec.holds.ipc && spec.holds.uts;
    const prepared = all ? this.pool?.take() : undefined;
    this.lastSource = prepared === undefined ? "cold" : "pool";
    const sandbox = prepared ?? (await this.createSandbox(spec.holds));
    if (prepared !== undefined && prepared.ip === undefined) {
      // Prepared while the network was not ready: attach it now if it is.
      await this.attachNetwork(prepared).catch(async (e: unknown) => {
        await this.discard(prepared).catch((u: unknown) => this.warn(prepared.id, "sandbox", u));
        throw e;
      });
    }
    const record: PodRecord = {
      id: sandbox.id,
      metadata: spec.metadata,
      createdAt: String(BigInt(Date.now()) * 1_000_000n),
      state: "ready",
      labels: spec.labels,
      annotations: spec.annotations,
      runtimeHandler: spec.runtimeHandler,
      hostname: spec.hostname,
      logDirectory: spec.logDirectory,
      dns: spec.dns,
      portMappings: spec.portMappings,
      holds: spec.holds,
      modes: spec.modes,
      resources: spec.resources,
      ip: sandbox.ip,
    };
    const dir = this.podDir(record.id);
    try {
      // Independent of each other: side by side (all settle before a failure is undone).
      const steps = await Promise.allSettled([
        record.holds.uts ? setHostname(this.nsFile(record.id, "uts"), record.hostname) : undefined,
        this.writeEtcFiles(record),
        this.cgroups.create(record.id, record.resources),
      ]);
      const failed = steps.find((step) => step.status === "rejected");
      if (failed !== undefined) throw failed.reason;
      if (record.portMappings.length > 0) {
        if (record.ip === undefined) {
          throw precondition(
            `port mappings need a pod address, and the pod network is not ready: ${this.networkCondition.message}`,
          );
        }
        this.proxies.set(record.id, await openPortProxies(record.portMappings, record.ip));
      }
      await this.writeRecord(record);
    } catch (e) {
      await this.proxies.get(record.id)?.close();
      this.proxies.delete(record.id);
      await this.cgroups.remove(record.id).catch((u: unknown) => this.warn(record.id, "cgroup", u));
      await this.discard(sandbox).catch((u: unknown) => this.warn(record.id, "sandbox", u));
      throw e;
    }
    this.records.set(record.id, record);
    this.options.log.info({ pod: record.id, name: record.metadata.name, dir }, "pod sandbox ready");
    return record;
  }

  /** CRI: stopping a pod that is not there (or stopped already) succeeds. */
  async stop(id: string): Promise<void> {
    const known = this.find(id);
    if (known === undefined) return;
    await this.exclusive(known.id, async () => {
      const record = this.records.get(known.id);
      if (record !== undefined) await this.stopLocked(record);
    });
  }

  async remove(id: string): Promise<void> {
    const known = this.find(id);
    if (known === undefined) return;
    await this.exclusive(known.id, async () => {
      const record = this.records.get(known.id);
      if (record === undefined) return;
      await this.stopLocked(record);
      for (const hook of this.removeHooks) await hook(record.id);
      await this.cgroups.remove(record.id);
      await unlink(this.recordPath(record.id));
      this.records.delete(record.id);
      // The pod is gone from here; what cannot be released now is garbage the next start removes.
      await this.removeSandboxFiles(record.id).catch((e: unknown) => this.warn(record.id, "namespaces", e));
      this.options.log.info({ pod: record.id }, "pod sandbox removed");
    });
  }

  async update(id: string, resources: PodResources): Promise<void> {
    const known = this.find(id);
    if (known === undefined) throw notFound(`pod sandbox ${id} not found`);
    await this.exclusive(known.id, async () => {
      const record = this.records.get(known.id);
      if (record === undefined) throw notFound(`pod sandbox ${id} not found`);
      await this.cgroups.update(record.id, resources);
      const next = { ...record, resources };
      await this.writeRecord(next);
      this.records.set(record.id, next);
    });
  }

  /** Daemon shutdown: the pool's sandboxes go, the port proxies close; pods stay (a restart re-adopts them). */
  async close(): Promise<void> {
    await this.pool?.close();
    await Promise.all([...this.proxies.values()].map((p) => p.close()));
    this.proxies.clear();
  }

  // --- internals ----------------------------------------------------------------------

  private async stopLocked(record: PodRecord): Promise<void> {
    if (record.state === "ready") {
      // Not ready first (and on disk): from here no container may be created or started in it.
      const stopping = { ...record, state: "notready" as const };
      await this.writeRecord(stopping);
      this.records.set(record.id, stopping);
    }
    for (const hook of this.stopHooks) await hook(record.id);
    await this.proxies.get(record.id)?.close();
    this.proxies.delete(record.id);
    const current = this.records.get(record.id) ?? record;
    if (!current.holds.network) return;
    await detachPod(vethName(record.id));
    if (current.ip === undefined) return;
    this.addresses.delete(current.ip);
    const released = { ...current, ip: undefined };
    await this.writeRecord(released);
    this.records.set(record.id, released);
  }

  private async exclusive<T>(id: string, work: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(id) ?? Promise.resolve();
    const next = previous.then(work, work);
    const tail = next.catch(() => undefined);
    this.locks.set(id, tail);
    try {
      return await next;
    } finally {
      if (this.locks.get(id) === tail) this.locks.delete(id);
    }
  }

  private async setUpNetwork(): Promise<void> {
    try {
      await ensureBridge(this.net);
      // A bridge deleted and made again has lost its ports: the veths of pods and prepared
      // sandboxes go back on it (a veth that is gone is skipped; one on it already stays).
      const ids = [
        ...[...this.records.values()].filter((r) => r.ip !== undefined).map((r) => r.id),
        ...(this.pool?.prepared() ?? []).filter((p) => p.ip !== undefined).map((p) => p.id),
      ];
      for (const id of ids) await reattachPod(this.net, vethName(id));
      this.networkCondition = { ready: true, reason: "", message: "" };
    } catch (e) {
      this.networkCondition = {
        ready: false,
        reason: "BridgeSetupFailed",
        message: `pod bridge ${this.net.bridge}: ${messageOf(e)}`,
      };
      this.options.log.error({ err: e }, "pod network not ready");
    }
  }

  /** Namespaces (and with a network namespace, loopback up and a veth with an address) for a new pod. */
  private async createSandbox(holds: PodSpec["holds"]): Promise<PreparedSandbox> {
    const id = randomBytes(32).toString("hex");
    const dir = this.podDir(id);
    await mkdir(resolveWithin(dir, "ns"), { recursive: true });
    await mkdir(resolveWithin(dir, "etc"), { recursive: true });
    const sandbox: PreparedSandbox = { id, ip: undefined };
    try {
      const files: Partial<Record<NamespaceKind, string>> = {};
      if (holds.network) files.net = this.nsFile(id, "net");
      if (holds.ipc) files.ipc = this.nsFile(id, "ipc");
      if (holds.uts) files.uts = this.nsFile(id, "uts");
      await createNamespaces(files);
      if (holds.network) await this.attachNetwork(sandbox);
    } catch (e) {
      await this.discard(sandbox).catch((u: unknown) => this.warn(id, "sandbox", u));
      throw e;
    }
    return sandbox;
  }

  /** When the pod network is ready: an address and the veth for the sandbox's network namespace. */
  private async attachNetwork(sandbox: PreparedSandbox): Promise<void> {
    if (!this.networkCondition.ready) return;
    const ip = allocateAddress(this.net.cidr, this.addresses);
    if (ip === undefined) {
      throw new PodError(GrpcStatus.RESOURCE_EXHAUSTED, "every address of the pod CIDR is in use");
    }
    this.addresses.add(ip);
    sandbox.ip = ip;
    await attachPod(this.net, this.nsFile(sandbox.id, "net"), vethName(sandbox.id), ip);
  }

  /** A pool entry: all three namespaces, and the network when it works. */
  private prepare(): Promise<PreparedSandbox> {
    return this.createSandbox({ network: true, ipc: true, uts: true });
  }

  /** Undoes createSandbox: veth, address, namespaces, directory. */
  private async discard(sandbox: PreparedSandbox): Promise<void> {
    await detachPod(vethName(sandbox.id));
    if (sandbox.ip !== undefined) this.addresses.delete(sandbox.ip);
    await this.removeSandboxFiles(sandbox.id);
  }

  private async removeSandboxFiles(id: string): Promise<void> {
    await releaseNamespaces((["net", "ipc", "uts"] as const).map((kind) => this.nsFile(id, kind)));
    await rm(this.podDir(id), { recursive: true, force: true });
  }

  private async writeEtcFiles(record: PodRecord): Promise<void> {
    const hostname = record.holds.uts ? record.hostname : hostHostname();
    const hosts = record.holds.network
      ? renderHosts(record.hostname, record.ip)
      : await readHostFile("/etc/hosts");
    const resolv =
      record.dns !== undefined ? renderResolvConf(record.dns) : await readHostFile("/etc/resolv.conf");
    const etc = this.etcFiles(record.id);
    await Promise.all([
      writeFile(etc.hostname, renderHostname(hostname)),
      writeFile(etc.hosts, hosts),
      writeFile(etc.resolvConf, resolv),
    ]);
  }

  private async writeRecord(record: PodRecord): Promise<void> {
    const path = this.recordPath(record.id);
    const tmp = `${path}.tmp`;
    const file = await openFile(tmp, "w");
    try {
      await file.writeFile(serializeRecord(record));
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, path);
  }

  /** Reads the records, removes garbage, re-attaches what a restart lost. */
  private async load(): Promise<void> {
    const mounted = await mountPoints();
    for (const name of await readdir(this.directory)) {
      if (!ID.test(name)) {
        this.options.log.warn({ name }, "pods directory: ignoring an entry that is not a pod");
        continue;
      }
      const record = await this.readRecord(name);
      if (record === undefined) {
        // A RunPodSandbox cut short may have made the cgroup too (empty: nothing ran in it).
        await this.cgroups.remove(name).catch((e: unknown) => this.warn(name, "garbage cgroup", e));
        await this.discard({ id: name, ip: undefined }).catch((e: unknown) => this.warn(name, "garbage", e));
        continue;
      }
      this.records.set(record.id, record);
      if (record.ip !== undefined) this.addresses.add(record.ip);
      const held = (["net", "ipc", "uts"] as const).filter((kind) =>
        kind === "net" ? record.holds.network : kind === "ipc" ? record.holds.ipc : record.holds.uts,
      );
      if (record.state === "ready" && !held.every((kind) => mounted.has(this.nsFile(record.id, kind)))) {
        // After a reboot: the namespaces are gone; the pod cannot be ready again.
        this.options.log.warn({ pod: record.id }, "pod namespaces are gone (reboot?): the pod is not ready");
        await this.stopLocked(record).catch((e: unknown) => this.warn(record.id, "stop", e));
        continue;
      }
      if (record.state === "ready" && record.ip !== undefined && record.portMappings.length > 0) {
        await openPortProxies(record.portMappings, record.ip).then(
          (proxies) => this.proxies.set(record.id, proxies),
          (e: unknown) => this.warn(record.id, "port proxies", e),
        );
      }
    }
  }

  private async readRecord(id: string): Promise<PodRecord | undefined> {
    const path = this.recordPath(id);
    const size = (await ifExists(stat(path)))?.size;
    if (size === undefined) return undefined;
    const parsed =
      size > MAX_RECORD_BYTES
        ? `larger than ${MAX_RECORD_BYTES} bytes`
        : parseRecord(await readFile(path, "utf8"), id);
    if (typeof parsed === "string") {
      this.options.log.error(
        { pod: id, problem: parsed },
        "unreadable pod record: the pod's leftovers are removed",
      );
      return undefined;
    }
    return parsed;
  }

  private refOf(record: PodRecord): PodSandboxRef {
    const namespaces: PodSandboxRef["namespaces"] = {};
    if (record.holds.network) namespaces.network = this.nsFile(record.id, "net");
    if (record.holds.ipc) namespaces.ipc = this.nsFile(record.id, "ipc");
    if (record.holds.uts) namespaces.uts = this.nsFile(record.id, "uts");
    return {
      id: record.id,
      metadata: { ...record.metadata },
      namespaces,
      cgroupParent: this.cgroups.parentOf(record.id),
      hostname: record.holds.uts ? record.hostname : hostHostname(),
      etcFiles: this.etcFiles(record.id),
      logDirectory: record.logDirectory,
      runtimeHandler: record.runtimeHandler,
      ready: record.state === "ready",
    };
  }

  private podDir(id: string): string {
    return resolveWithin(this.directory, id);
  }

  private recordPath(id: string): string {
    return resolveWithin(this.directory, id, "pod.json");
  }

  private nsFile(id: string, kind: NamespaceKind): string {
    return resolveWithin(this.directory, id, "ns", kind);
  }

  private etcFiles(id: string): PodSandboxRef["etcFiles"] {
    return {
      hosts: resolveWithin(this.directory, id, "etc", "hosts"),
      resolvConf: resolveWithin(this.directory, id, "etc", "resolv.conf"),
      hostname: resolveWithin(this.directory, id, "etc", "hostname"),
    };
  }

  private warn(pod: string, what: string, e: unknown): void {
    this.options.log.warn({ pod, err: e }, `pod sandbox: cleaning up ${what} failed`);
  }
}

async function readHostFile(path: string): Promise<string> {
  const text = (await ifExists(readFile(path, "utf8"))) ?? "";
  return text.length > MAX_HOST_FILE_BYTES ? text.slice(0, MAX_HOST_FILE_BYTES) : text;
}
