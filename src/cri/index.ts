// The CRI endpoint as the daemon starts it: the image store under the data directory, the
// streaming server when the daemon hands it its lookups, then the gRPC server. Imported lazily
// by runtime.ts, only when `[cri] socket` is configured.
import { join } from "node:path";
import type { Logger } from "pino";
import type { ExecExecutor } from "../daemon/exec/executor.js";
import { nativeBinary } from "../daemon/monitor/native.js";
import { ImageStore } from "./image-store.js";
import { startCriServer, type CriServer, type CriServerOptions } from "./server.js";
import type { StreamingLookup } from "./streaming/backend.js";
import { execStarterOf } from "./streaming/daemon-exec.js";
import { StreamingServer } from "./streaming/server.js";

export interface StartCriOptions {
  socket: string;
  /** The daemon's data directory; images go to `<dataDir>/cri/images`. */
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

export async function startCri(options: StartCriOptions): Promise<CriServer> {
  const images = await ImageStore.open(join(options.dataDir, "cri"), options.log);
  let streaming: CriServerOptions["streaming"];
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
  try {
    return await startCriServer({
      socket: options.socket,
      images,
      runtimeHealth: options.runtimeHealth,
      ...(streaming === undefined ? {} : { streaming }),
      log: options.log,
    });
  } catch (e) {
    await streaming?.server.close();
    throw e;
  }
}
