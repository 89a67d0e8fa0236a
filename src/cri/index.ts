// The CRI endpoint as the daemon starts it: the image store and the pod store under the data
// directory, the containers in pods, then the gRPC server. Imported lazily by runtime.ts, only
// when `[cri] socket` is configured.
import { join } from "node:path";
import type { Logger } from "pino";
import type { CgroupLayout } from "../daemon/cgroups/layout.js";
import { ImageStore } from "./image-store.js";
import { parseImageLookup } from "./image-names.js";
import { CriContainers, type CriContainersOptions, type CriDaemon } from "./containers/index.js";
import type { CriContainerRecord } from "./containers/records.js";
import { parseCidr, PodStore } from "./pods/index.js";
import { startCriServer, type CriServer, type CriServerOptions } from "./server.js";

export interface StartCriOptions {
  socket: string;
  /** The daemon's data directory; images go to `<dataDir>/cri/images`, pods to `<dataDir>/cri/pods`. */
  dataDir: string;
  runtimeHealth: CriServerOptions["runtimeHealth"];
  /** The host's cgroup layout and Skiff's cgroup root name: pods get `/<root>/cri/<id>`. */
  layout: CgroupLayout;
  cgroupRoot: string;
  /** `[cri] pod_cidr`, `pod_bridge`, `sandbox_pool` (validated by the config schema). */
  podCidr: string;
  podBridge: string;
  sandboxPool: number;
  /** The CRI containers read at daemon start (already in the state), and the daemon they run in. */
  containers: {
    loaded: CriContainerRecord[];
    daemon: CriDaemon;
    runtimeFor?: CriContainersOptions["runtimeFor"];
  };
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
  const cidr = parseCidr(options.podCidr);
  if (typeof cidr === "string") throw new Error(`cri.pod_cidr: ${cidr}`);
  const pods = await PodStore.open({
    criDir,
    layout: options.layout,
    cgroupRoot: options.cgroupRoot,
    network: { bridge: options.podBridge, cidr },
    poolSize: options.sandboxPool,
    log: options.log.child({ part: "pods" }),
  });
  const containers = new CriContainers(
    {
      criDir,
      daemon: options.containers.daemon,
      pods,
      ...(options.containers.runtimeFor ? { runtimeFor: options.containers.runtimeFor } : {}),
      image: (reference) => {
        let record;
        try {
          record = images.find(parseImageLookup(reference));
        } catch {
          return undefined;
        }
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
  try {
    const server = await startCriServer({
      socket: options.socket,
      images,
      pods,
      containers,
      runtimeHealth: options.runtimeHealth,
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
    await pods.close();
    throw e;
  }
}
