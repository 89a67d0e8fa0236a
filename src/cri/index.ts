// The CRI endpoint as the daemon starts it: the image store and the pod store under the data
// directory, the runtime handlers and the image policy, the streaming server when the daemon
// hands it its lookups, then the gRPC server. Imported lazily by runtime.ts, only when
// `[cri] socket` is configured.
import { join } from "node:path";
import type { Logger } from "pino";
import type { CgroupLayout } from "../daemon/cgroups/layout.js";
import type { DaemonConfig } from "../daemon/config/schema.js";
import type { ExecExecutor } from "../daemon/exec/executor.js";
import { nativeBinary } from "../daemon/monitor/native.js";
import { RuntimeHandlers } from "./handlers.js";
import { ImageStore } from "./image-store.js";
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
    lookup: StreamingLookup;
    exec: ExecExecutor;
  };
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
      streaming = { lookup: options.streaming.lookup, exec, server };
    }
    const server = await startCriServer({
      socket: options.socket,
      images,
      pods,
      handlers,
      policy: new ImagePolicy(options.cri.allowedRegistries),
      runtimeHealth: options.runtimeHealth,
      ...(streaming === undefined ? {} : { streaming }),
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
    await streaming?.server.close();
    await pods.close();
    throw e;
  }
}
