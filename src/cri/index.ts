// The CRI endpoint as the daemon starts it: the image store under the data directory, the
// containers in pods, then the gRPC server. Imported lazily by runtime.ts, only when `[cri]
// socket` is configured.
import { join } from "node:path";
import type { Logger } from "pino";
import { ImageStore } from "./image-store.js";
import { parseImageLookup } from "./image-names.js";
import { CriContainers, type CriContainersOptions, type CriDaemon } from "./containers/index.js";
import type { CriContainerRecord } from "./containers/records.js";
import type { PodSandboxLookup } from "./sandbox.js";
import { startCriServer, type CriServer, type CriServerOptions } from "./server.js";

export interface StartCriOptions {
  socket: string;
  /** The daemon's data directory; images go to `<dataDir>/cri/images`. */
  dataDir: string;
  runtimeHealth: CriServerOptions["runtimeHealth"];
  /** The CRI containers read at daemon start (already in the state), and the daemon they run in. */
  containers: {
    loaded: CriContainerRecord[];
    daemon: CriDaemon;
    pods: PodSandboxLookup;
    runtimeFor?: CriContainersOptions["runtimeFor"];
  };
  log: Logger;
}

export interface StartedCri {
  server: CriServer;
  containers: CriContainers;
}

export async function startCri(options: StartCriOptions): Promise<StartedCri> {
  const criDir = join(options.dataDir, "cri");
  const images = await ImageStore.open(criDir, options.log);
  const containers = new CriContainers(
    {
      criDir,
      daemon: options.containers.daemon,
      pods: options.containers.pods,
      ...(options.containers.runtimeFor ? { runtimeFor: options.containers.runtimeFor } : {}),
      image: (reference) => {
        let record;
        try {
          record = images.find(parseImageLookup(reference));
        } catch {
          return undefined;
        }
        return record ? { id: record.id, rootfs: images.rootfsOf(record.id), user: record.user } : undefined;
      },
      log: options.log,
    },
    options.containers.loaded,
  );
  const server = await startCriServer({
    socket: options.socket,
    images,
    containers,
    runtimeHealth: options.runtimeHealth,
    log: options.log,
  });
  return { server, containers };
}
