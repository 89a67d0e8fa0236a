// The Prometheus endpoint: GET /metrics renders a fresh snapshot; every other request is 404.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import { listen } from "../../common/listen.js";
import { LoopDelayMonitor } from "./loop-delay.js";
import { METRICS_CONTENT_TYPE, renderMetrics, type MetricsSnapshot } from "./render.js";

export interface MetricsServerOptions {
  host: string;
  /** 0 picks a free port (see MetricsServer.address). */
  port: number;
  /** Called once per scrape; its failure answers 500 and is logged. */
  collect: () => Promise<MetricsSnapshot>;
  log: Logger;
}

export interface MetricsServer {
  /** Where the server actually listens. */
  readonly address: { host: string; port: number };
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

/**
 * Listens on host:port; rejects with a message naming the address if that fails. While it
 * listens it measures the delay of the event loop it runs on (the daemon's), for every scrape.
 */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const loopDelay = new LoopDelayMonitor();
  const server = createServer((request, response) => void handle(options, loopDelay, request, response));
  try {
    await listen(server, { port: options.port, host: options.host });
  } catch (e) {
    loopDelay.stop();
    const error = e as NodeJS.ErrnoException;
    throw new Error(
      `metrics: cannot listen on tcp://${options.host}:${options.port}: ${error.code ?? error.message}`,
    );
  }
  server.on("error", (error) => options.log.error({ err: error }, "metrics server error"));
  const { address, port } = server.address() as AddressInfo;
  return {
    address: { host: address, port },
    close: () => {
      loopDelay.stop();
      return close(server);
    },
  };
}

async function handle(
  options: MetricsServerOptions,
  loopDelay: LoopDelayMonitor,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  const path = new URL(request.url ?? "/", "http://metrics").pathname;
  if (request.method !== "GET" || path !== "/metrics") {
    response.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("not found\n");
    return;
  }
  let body: string;
  try {
    body = renderMetrics({ ...(await options.collect()), eventLoopDelay: loopDelay.read() });
  } catch (error) {
    options.log.error({ err: error }, "metrics: collecting a snapshot failed");
    response
      .writeHead(500, { "content-type": "text/plain; charset=utf-8" })
      .end("collecting metrics failed\n");
    return;
  }
  response.writeHead(200, { "content-type": METRICS_CONTENT_TYPE }).end(body);
}

function close(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()));
    server.closeAllConnections(); // keep-alive connections would hold close() open
  });
}
