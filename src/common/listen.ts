/**
 * The one promise-wrapped `listen()`: every server the daemon opens (console listeners, container
 * consoles, metrics, proxies, wake sources, manifest sockets) binds through it.
 */
import type { ListenOptions, Server } from "node:net";

/**
 * Binds `server` as `options` say. Resolves once it listens; rejects with the bind error
 * (EADDRINUSE, EACCES, ENOENT...) as Node reports it. Either way no listener of its own stays
 * on the server: a caller that keeps the server must add its own "error" listener, or a later
 * error (EMFILE on accept) is thrown as an uncaught exception.
 */
export function listen(server: Server, options: ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const failed = (error: Error): void => reject(error);
    server.once("error", failed);
    server.listen(options, () => {
      server.off("error", failed);
      resolve();
    });
  });
}
