/**
 * Port mappings: a small TCP proxy on the host per mapping (as docker-proxy does), which accepts
 * on `host_ip:host_port` and connects each connection to `pod_ip:container_port`. A host port in
 * use refuses the pod (FAILED_PRECONDITION). Proxies live in the daemon: after a restart they are
 * opened again for the pods that are ready.
 */
import { connect, createServer, type Server, type Socket } from "node:net";
import { precondition } from "./errors.js";
import type { PortMappingSpec } from "./spec.js";

/** Connections one mapping carries at once; Node closes further ones as they arrive. */
const MAX_CONNECTIONS_PER_PORT = 1024;

export interface PortProxies {
  close(): Promise<void>;
}

/** Opens one listener per mapping; all or none (a failure closes those already open). */
export async function openPortProxies(mappings: PortMappingSpec[], podIp: string): Promise<PortProxies> {
  const servers: Server[] = [];
  const sockets = new Set<Socket>();
  const close = async (): Promise<void> => {
    for (const socket of sockets) socket.destroy();
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  };
  try {
    for (const mapping of mappings) {
      const server = createServer((client) => {
        const upstream = connect(mapping.containerPort, podIp);
        sockets.add(client).add(upstream);
        const done = (): void => {
          client.destroy();
          upstream.destroy();
          sockets.delete(client);
          sockets.delete(upstream);
        };
        client.on("error", done).on("close", done);
        upstream.on("error", done).on("close", done);
        client.pipe(upstream);
        upstream.pipe(client);
      });
      // Each connection holds two sockets: a flood of clients must not take all of skiffd's descriptors.
      server.maxConnections = MAX_CONNECTIONS_PER_PORT;
      await new Promise<void>((resolve, reject) => {
        server.once("error", (e: NodeJS.ErrnoException) => {
          const where = `${mapping.hostIp || "*"}:${mapping.hostPort}/TCP`;
          reject(
            e.code === "EADDRINUSE"
              ? precondition(`host port ${where} is in use`)
              : precondition(`cannot listen on host port ${where}: ${e.message}`),
          );
        });
        server.listen(
          { port: mapping.hostPort, host: mapping.hostIp || undefined, exclusive: true },
          resolve,
        );
      });
      servers.push(server);
    }
  } catch (e) {
    await close();
    throw e;
  }
  return { close };
}
