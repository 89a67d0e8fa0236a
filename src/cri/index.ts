// The CRI endpoint as the daemon starts it: the image store and the pod store under the data
// directory, the runtime handlers and the image policy, then the gRPC server. Imported lazily by
// runtime.ts, only when `[cri] socket` is configured.
import { join } from "node:path";
import type { Logger } from "pino";
import type { CgroupLayout } from "../daemon/cgroups/layout.js";
import type { DaemonConfig } from "../daemon/config/schema.js";
import { RuntimeHandlers } from "./handlers.js";
import { ImageStore } from "./image-store.js";
import { parseCidr, PodStore } from "./pods/index.js";
import { ImagePolicy } from "./policy.js";
import { startCriServer, type CriServer, type CriServerOptions } from "./server.js";

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
  log: Logger;
}

/** The running endpoint and the pod store behind it (the containers side looks pods up there). */
export interface CriEndpoint extends CriServer {
  readonly pods: PodStore;
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
  try {
    const server = await startCriServer({
      socket: options.socket,
      images,
      pods,
      handlers,
      policy: new ImagePolicy(options.cri.allowedRegistries),
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
