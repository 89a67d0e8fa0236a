// The CRI endpoint as the daemon starts it: the image store under the data directory, the
// runtime handlers and the image policy, then the gRPC server. Imported lazily by runtime.ts, only
// when `[cri] socket` is configured.
import { join } from "node:path";
import type { Logger } from "pino";
import type { CgroupLayout } from "../daemon/cgroups/layout.js";
import type { DaemonConfig } from "../daemon/config/schema.js";
import { RuntimeHandlers } from "./handlers.js";
import { ImageStore } from "./image-store.js";
import { ImagePolicy } from "./policy.js";
import { startCriServer, type CriServer, type CriServerOptions } from "./server.js";

export interface StartCriOptions {
  socket: string;
  /** `[cri]`: the runtime handlers and the allowed registries. */
  cri: DaemonConfig["cri"];
  /** `[runtime]`: its path is the default binary of the handler of its kind. */
  runtime: DaemonConfig["runtime"];
  layout: CgroupLayout;
  /** The daemon's data directory; images go to `<dataDir>/cri/images`. */
  dataDir: string;
  runtimeHealth: CriServerOptions["runtimeHealth"];
  log: Logger;
}

export async function startCri(options: StartCriOptions): Promise<CriServer> {
  const images = await ImageStore.open(join(options.dataDir, "cri"), options.log);
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
  return startCriServer({
    socket: options.socket,
    images,
    handlers,
    policy: new ImagePolicy(options.cri.allowedRegistries),
    runtimeHealth: options.runtimeHealth,
    log: options.log,
  });
}
