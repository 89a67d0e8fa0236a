// The CRI endpoint as the daemon starts it: the image store and the pod store under the data
// directory, then the gRPC server. Imported lazily by runtime.ts, only when `[cri] socket` is
// configured.
import { join } from "node:path";
import type { Logger } from "pino";
import type { CgroupLayout } from "../daemon/cgroups/layout.js";
import { ImageStore } from "./image-store.js";
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
  log: Logger;
}

/** The running endpoint and the pod store behind it (the containers side looks pods up there). */
export interface CriEndpoint extends CriServer {
  readonly pods: PodStore;
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
  try {
    const server = await startCriServer({
      socket: options.socket,
      images,
      pods,
      runtimeHealth: options.runtimeHealth,
      log: options.log,
    });
    return {
      socket: server.socket,
      pods,
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
