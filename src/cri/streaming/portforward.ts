/**
 * Kubernetes' port-forward protocol over SPDY (`portforward.k8s.io`, the kubelet's
 * `cri/streaming/portforward`): for each forwarded connection the client opens an `error` and a
 * `data` stream with the same `port` and `requestid` headers (older clients send no request id:
 * the pair is then error stream N and data stream N+2, as the kubelet guesses too). Once both
 * are there, the data stream is connected to 127.0.0.1:<port> inside the pod's network
 * namespace through `skiff-nsconnect` (native/nsconnect/nsconnect.c: Node cannot setns); its
 * stdin/stdout are the connection. A failure is written as text on the error stream. The data
 * stream's FIN half-closes the TCP connection; the target's EOF is the data stream's FIN, and
 * the error stream's end follows within a second (client-go closes its local connection then).
 *
 * Limits: the session's streams; a pair must be complete within `streamTimeoutMs`; when the CRI
 * request listed ports, only those may be forwarded.
 */
import { spawn } from "node:child_process";
import type { Logger } from "pino";
import type { SpdySession, SpdyStream } from "./session.js";
import { RstStatus, headerValue } from "./spdy.js";

export const PORTFORWARD_PROTOCOLS = ["portforward.k8s.io"] as const;

const MAX_ERROR_TEXT = 4096;
/**
 * How long a forwarded connection's client side may go on after the target's EOF before the
 * error stream ends (containerd's grace, 1 s): client-go (kubectl, crictl) tears a connection
 * down, closing its local end, only once the error stream ends.
 */
const TARGET_EOF_GRACE_MS = 1000;

interface Pair {
  error?: SpdyStream;
  data?: SpdyStream;
  timer: NodeJS.Timeout;
}

export interface PortForwardTarget {
  podSandboxId: string;
  netns: string;
  /** Ports the CRI request allowed; empty: any. */
  ports: number[];
}

/** Serves one port-forward session until the connection ends. */
export async function servePortForward(o: {
  session: SpdySession;
  target: PortForwardTarget;
  nsconnect: string;
  streamTimeoutMs: number;
  log: Logger;
}): Promise<void> {
  const { session, target, log } = o;
  const pairs = new Map<string, Pair>();
  session.on("stream", (stream: SpdyStream) => {
    const type = headerValue(stream.headers, "streamtype");
    const portText = headerValue(stream.headers, "port");
    const port = /^\d{1,5}$/.test(portText) ? Number(portText) : 0;
    if ((type !== "error" && type !== "data") || port < 1 || port > 65535) {
      stream.reset(RstStatus.PROTOCOL_ERROR);
      return;
    }
    stream.reply();
    let id = headerValue(stream.headers, "requestid");
    if (id === "") id = String(type === "error" ? stream.id : stream.id - 2);
    let pair = pairs.get(id);
    if (pair === undefined) {
      const timer = setTimeout(() => {
        pairs.delete(id);
        fail(pair!, `timed out waiting for the streams of request ${id}`);
      }, o.streamTimeoutMs);
      pair = { timer };
      pairs.set(id, pair);
    }
    if (pair[type] !== undefined) {
      stream.reset(RstStatus.PROTOCOL_ERROR);
      return;
    }
    pair[type] = stream;
    if (pair.error === undefined || pair.data === undefined) return;
    clearTimeout(pair.timer);
    pairs.delete(id);
    const { error, data } = pair;
    if (target.ports.length > 0 && !target.ports.includes(port)) {
      fail(pair, `port ${port} was not in the PortForward request`);
      return;
    }
    if (headerValue(data.headers, "port") !== portText) {
      fail(pair, "the data and error streams name different ports");
      return;
    }
    forward(error, data, port);
  });

  function fail(pair: Pair, message: string): void {
    if (pair.error !== undefined) pair.error.writable.end(Buffer.from(message));
    pair.data?.writable.end();
  }

  function forward(error: SpdyStream, data: SpdyStream, port: number): void {
    const child = spawn(o.nsconnect, [target.netns, String(port)], { stdio: ["pipe", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (d: string) => {
      if (stderr.length < MAX_ERROR_TEXT) stderr += d;
    });
    child.stdin.on("error", () => undefined);
    data.readable.pipe(child.stdin);
    data.readable.on("error", () => child.kill("SIGKILL"));
    child.stdout.pipe(data.writable);
    // The target's EOF (its half-close, or the connection's end): the forward is over, as in
    // containerd, once the other direction ends too or after the grace. A helper that exits
    // within it (a refused connection closes stdout as it exits) still reports its failure.
    let afterTargetEof: NodeJS.Timeout | undefined;
    child.stdout.once("end", () => {
      afterTargetEof = setTimeout(() => {
        if (!error.writable.writableEnded) error.writable.end();
      }, TARGET_EOF_GRACE_MS);
    });
    const killer = (): void => {
      child.kill("SIGKILL");
    };
    session.once("end", killer);
    child.once("error", (e) => {
      stderr += e.message;
    });
    child.once("close", (code) => {
      session.off("end", killer);
      clearTimeout(afterTargetEof);
      // What the client still sends has nowhere to go: read and drop it.
      data.readable.unpipe(child.stdin);
      data.readable.resume();
      if (code !== 0) {
        const why = stderr.trim() || `skiff-nsconnect exited with ${code}`;
        const message = `error forwarding port ${port} to pod ${target.podSandboxId}: ${why}`;
        log.info({ port }, message);
        if (!error.writable.writableEnded) error.writable.end(Buffer.from(message));
      } else if (!error.writable.writableEnded) error.writable.end();
      if (!data.writable.writableEnded) data.writable.end();
    });
  }

  await new Promise<void>((resolve) => session.once("end", () => resolve()));
  for (const pair of pairs.values()) clearTimeout(pair.timer);
}
