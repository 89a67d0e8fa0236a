// The CRI endpoint as the daemon starts it: the image store under the data directory, then the
// gRPC server. Imported lazily by runtime.ts, only when `[cri] socket` is configured.
import { join } from "node:path";
import type { Logger } from "pino";
import { ImageStore } from "./image-store.js";
import { startCriServer, type CriServer, type CriServerOptions } from "./server.js";

export interface StartCriOptions {
  socket: string;
  /** The daemon's data directory; images go to `<dataDir>/cri/images`. */
  dataDir: string;
  runtimeHealth: CriServerOptions["runtimeHealth"];
  log: Logger;
}

export async function startCri(options: StartCriOptions): Promise<CriServer> {
  const images = await ImageStore.open(join(options.dataDir, "cri"), options.log);
  return startCriServer({
    socket: options.socket,
    images,
    runtimeHealth: options.runtimeHealth,
    log: options.log,
  });
}
