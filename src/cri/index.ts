// The CRI endpoint as the daemon starts it: the image store and the pod store under the data
// directory, the runtime handlers and the image policy, the containers in pods, the streaming
// server when the daemon hands it its lookups, then the gRPC server. Imported lazily by
// runtime.ts, only when `[cri] socket` is configured.
import { join } from "node:path";
import type { Logger } from "pino";
import type { CgroupLayout } from "../daemon/cgroups/layout.js";
import type { DaemonConfig } from "../daemon/config/schema.js";
import type { ExecExecutor } from "../daemon/exec/executor.js";
import { nativeBinary } from "../daemon/monitor/native.js";
import { RuntimeHandlers } from "./handlers.js";
import { ImageStore } from "./image-store.js";
import { parseImageLookup } from "./image-names.js";
import { CriContainers, type CriDaemon } from "./containers/index.js";
import type { CriContainerRecord } from "./containers/records.js";
import { parseCidr, PodStore } from "./pods/index.js";
import { ImagePolicy } from "./policy.js";
import { startCriServer, type CriServer, type CriServerOptions } from "./server.js";
import type { StreamingLookup } from "./streaming/backend.js";
import { execStarterOf } from "./streaming/daemon-exec.js";
import { StreamingServer } from "./streaming/server.js";

export interface StartCriOptions {
  socket: string;
  /** `[cri]`: the runtime handlers, the allowed registries, the pod network and pool. */
  cri: DaemonConfig["cri"];
  /** `[runtime]`: its path is the default binary of the handler of its kind. */
  runtime: DaemonConfig["runtime"];
  /** The host's cgroup layout and Skiff's cgroup root name: pods get `/<root>/cri/<id>`. */
  layout: CgroupLayout;
  cgroupRoot: string;
  /** The daemon's data directory; images go to `<dataDir>/cri/images`, pods to `<dataDir>/cri/pods`. */
  dataDir: string;
  runtimeHealth: CriServerOptions["runtimeHealth"];
  /**
   * ExecSync, Exec and PortForward: the streaming server's address (`[cri] streaming_address`),
   * the CRI lookups and the daemon's exec machinery. Absent: those methods answer UNIMPLEMENTED.
   */
  streaming?: {
    address: { host: string; port: number };
    exec: ExecExecutor;
    /** Which Skiff container and pod network a CRI id names; absent: the CRI containers' and pods'. */
    lookup?: StreamingLookup;
  };
  /** The CRI containers read at daemon start (already in the state), and the daemon they run in. */
  containers: { loaded: CriContainerRecord[]; daemon: CriDaemon };
  log: Logger;
}

/** The running endpoint, the pod store and the containers behind it. */
export interface CriEndpoint extends CriServer {
  readonly pods: PodStore;
  /** For the streaming server and runtime handlers: `containers.lookup(id)`. */
  readonly containers: CriContainers;
}

export async function startCri(options: StartCriOptions): Promise<CriEndpoint> {
  const criDir = join(options.dataDir, "cri");
  const images = await ImageStore.open(criDir, options.log);
  const handlers = await RuntimeHandlers.detect({
    configured: options.cri.runtimeHandlers.map((h) => ({
      name: h.name,
      kind: h.kind!, // schema.ts's checkRuntimeHandler sets it
      ...(h.path === undefined ? {} : { path: h.path }),
    })),
    daemonRuntime: options.runtime,
    layout: options.layout,
    ...(options.runtime.probeTimeoutMs === undefined
      ? {}
      : { probeTimeoutMs: options.runtime.probeTimeoutMs }),
    log: options.log,
  });
  const cidr = parseCidr(options.cri.podCidr);
  if (typeof cidr === "string") throw new Error(`cri.pod_cidr: ${cidr}`);
  const pods = await PodStore.open({
    criDir,
    layout: options.layout,
    cgroupRoot: options.cgroupRoot,
    network: { bridge: options.cri.podBridge, cidr },
    poolSize: options.cri.sandboxPool,
    log: options.log.child({ part: "pods" }),
  });
  const policy = new ImagePolicy(options.cri.allowedRegistries);
  const containers = new CriContainers(
    {
      criDir,
      daemon: options.containers.daemon,
      pods,
      // The pod's runtime handler (picked by the pod store; "" never reaches here with handlers).
      runtimeFor: (handler) => {
        const runtime = handlers.runtimeOf(handler);
        return runtime ? { path: runtime.path, kind: runtime.kind } : undefined;
      },
      image: (reference) => {
        let record;
        try {
          record = images.find(parseImageLookup(reference));
        } catch {
          return undefined;
        }
        // An image stored before the policy named its registry is refused here (PERMISSION_DENIED).
        if (record) policy.checkStored(record);
        return record
          ? { id: record.id, rootfs: images.rootfsOf(record.id), user: record.user, process: record.process }
          : undefined;
      },
      log: options.log.child({ part: "containers" }),
    },
    options.containers.loaded,
  );
  // A pod's containers end before its network, cgroup and namespaces go (the pod store awaits these).
  pods.onStop((id) => containers.stopPod(id));
  pods.onRemove((id) => containers.removePod(id));
  let streaming: CriServerOptions["streaming"];
  try {
    if (options.streaming !== undefined) {
      const exec = execStarterOf(options.streaming.exec);
      const server = await StreamingServer.start({
        ...options.streaming.address,
        exec,
        nsconnect: nativeBinary("skiff-nsconnect"),
        log: options.log.child({ part: "streaming" }),
      });
      options.log.info(`CRI streaming on ${server.baseUrl}`);
      streaming = { lookup: options.streaming.lookup ?? criLookup(containers, pods), exec, server };
    }
    const server = await startCriServer({
      socket: options.socket,
      images,
      pods,
      containers,
      handlers,
      policy,
      runtimeHealth: options.runtimeHealth,
      ...(streaming === undefined ? {} : { streaming }),
      log: options.log,
    });
    return {
      socket: server.socket,
      pods,
      containers,
      async close() {
        await server.close();
        await pods.close();
      },
    };
  } catch (e) {
    await streaming?.server.close();
    await pods.close();
    throw e;
  }
}

/**
 * The streaming server's lookups over the CRI containers and pods: exec and attach by CRI id,
 * port-forward by pod; each id in full or a unique prefix (crictl's short ids).
 */
function criLookup(containers: CriContainers, pods: PodStore): StreamingLookup {
  return {
    container(id) {
      const target = containers.target(containers.fullId(id));
      if (target === undefined) return undefined;
      return {
        skiffId: target.skiffId,
        running: target.running,
        ...(target.logPath === undefined ? {} : { log: { path: target.logPath, format: "cri" } }),
      };
    },
    podNetns: (id) => pods.sandbox(id)?.namespaces.network,
  };
}
