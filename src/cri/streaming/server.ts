/**
 * The CRI streaming server (docs/cri.md, "Streaming"): the kubelet's "redirect" protocol.
 * `Exec` and `PortForward` store their request under a one-time token and answer
 * `http://<address>/<kind>/<token>`; the client upgrades that URL to SPDY/3.1 and speaks the
 * remote command (remotecommand.ts) or port-forward (portforward.ts) protocol on it.
 *
 * Limits: tokens expire after `tokenTtlMs` and are taken once, at most `maxTokens` outstanding;
 * at most `maxSessions` upgraded connections at once (more answer 503 and keep their token);
 * streams, frames and header blocks per session as in session.ts; HTTP request heads as Node's
 * server bounds them (16 KiB, `headersTimeout`).
 *
 * INVARIANTS: a token is taken only after the request passed every check that does not need it
 * (path, method, upgrade headers, protocol, session count), so a refused request can be retried
 * with the same URL until it expires; an upgraded socket is counted until it closes.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { Logger } from "pino";
import { SpdySession } from "./session.js";
import { TokenCache } from "./tokens.js";
import {
  REMOTECOMMAND_PROTOCOLS,
  serveExec,
  type RemoteCommandTarget,
  type RemoteCommandProtocol,
} from "./remotecommand.js";
import { PORTFORWARD_PROTOCOLS, servePortForward, type PortForwardTarget } from "./portforward.js";
import type { ExecStarter } from "./backend.js";
import { serveAttach, type AttachTarget } from "./attach.js";

export interface StreamingLimits {
  tokenTtlMs: number;
  maxTokens: number;
  maxSessions: number;
  maxStreams: number;
  /** How long a client has to open its streams (kubelet: 30 s). */
  streamTimeoutMs: number;
  /** A session without traffic this long is closed (kubelet: 4 h). */
  idleMs: number;
}

export const DEFAULT_STREAMING_LIMITS: StreamingLimits = {
  tokenTtlMs: 30_000,
  maxTokens: 256,
  maxSessions: 32,
  maxStreams: 64,
  streamTimeoutMs: 30_000,
  idleMs: 4 * 3600_000,
};

export interface StreamingServerOptions {
  host: string;
  /** 0: an ephemeral port. */
  port: number;
  exec: ExecStarter;
  /** skiff-nsconnect's path. */
  nsconnect: string;
  log: Logger;
  limits?: Partial<StreamingLimits>;
}

type Pending =
  | { kind: "exec"; target: RemoteCommandTarget }
  | { kind: "attach"; target: AttachTarget }
  | { kind: "portforward"; target: PortForwardTarget };

export class StreamingServer {
  readonly limits: StreamingLimits;
  private readonly tokens: TokenCache<Pending>;
  private readonly sockets = new Set<Socket>();
  private sessions = 0;

  private constructor(
    private readonly http: Server,
    readonly baseUrl: string,
    private readonly o: StreamingServerOptions,
    limits: StreamingLimits,
  ) {
    this.limits = limits;
    this.tokens = new TokenCache({ ttlMs: limits.tokenTtlMs, max: limits.maxTokens });
  }

  static async start(o: StreamingServerOptions): Promise<StreamingServer> {
    const limits = { ...DEFAULT_STREAMING_LIMITS, ...o.limits };
    const http = createServer({ maxHeaderSize: 16 * 1024, headersTimeout: 10_000, requestTimeout: 10_000 });
    await new Promise<void>((resolve, reject) => {
      http.once("error", reject);
      http.listen(o.port, o.host, () => {
        http.off("error", reject);
        resolve();
      });
    });
    const address = http.address() as AddressInfo;
    const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
    const server = new StreamingServer(http, `http://${host}:${address.port}`, o, limits);
    http.on("request", (req, res) => {
      // Only the SPDY upgrade is served (no WebSocket variant yet).
      res.writeHead(400, { "content-type": "text/plain" }).end("expected an upgrade to SPDY/3.1\n");
      req.resume();
    });
    http.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) =>
      server.upgrade(req, socket, head),
    );
    http.on("clientError", (_e, socket: Socket) => socket.destroy());
    return server;
  }

  /** The URL of a new exec session, or undefined when too many tokens are outstanding. */
  execUrl(target: RemoteCommandTarget): string | undefined {
    const token = this.tokens.insert({ kind: "exec", target });
    return token === undefined ? undefined : `${this.baseUrl}/exec/${token}`;
  }

  attachUrl(target: AttachTarget): string | undefined {
    const token = this.tokens.insert({ kind: "attach", target });
    return token === undefined ? undefined : `${this.baseUrl}/attach/${token}`;
  }

  portForwardUrl(target: PortForwardTarget): string | undefined {
    const token = this.tokens.insert({ kind: "portforward", target });
    return token === undefined ? undefined : `${this.baseUrl}/portforward/${token}`;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.http.close(() => resolve());
      this.http.closeAllConnections();
      for (const socket of this.sockets) socket.destroy();
    });
  }

  private serve(pending: Pending, session: SpdySession, protocol: string, log: Logger): Promise<void> {
    const streamTimeoutMs = this.limits.streamTimeoutMs;
    switch (pending.kind) {
      case "exec":
        return serveExec({
          session,
          protocol: protocol as RemoteCommandProtocol,
          target: pending.target,
          start: this.o.exec,
          streamTimeoutMs,
          log,
        });
      case "attach":
        return serveAttach({
          session,
          protocol: protocol as RemoteCommandProtocol,
          target: pending.target,
          streamTimeoutMs,
          log,
        });
      case "portforward":
        return servePortForward({
          session,
          target: pending.target,
          nsconnect: this.o.nsconnect,
          streamTimeoutMs,
          log,
        });
    }
  }

  private upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const refuse = (code: number, reason: string, text: string): void => {
      socket.end(
        `HTTP/1.1 ${code} ${reason}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(text) + 1}\r\nConnection: close\r\n\r\n${text}\n`,
      );
      socket.destroySoon();
    };
    const match = /^\/(exec|attach|portforward)\/([A-Za-z0-9_-]{1,64})(?:\?.*)?$/.exec(req.url ?? "");
    if (match === null) return refuse(404, "Not Found", "unknown streaming URL");
    if (req.method !== "POST" && req.method !== "GET")
      return refuse(405, "Method Not Allowed", "POST or GET");
    const upgrade = (req.headers.upgrade ?? "").toLowerCase();
    const connection = (req.headers.connection ?? "").toLowerCase();
    if (upgrade !== "spdy/3.1" || !connection.split(",").some((t) => t.trim() === "upgrade"))
      return refuse(400, "Bad Request", "unable to upgrade: missing upgrade headers in request");
    const kind = match[1] as Pending["kind"];
    const offered = protocolsOf(req);
    const supported: readonly string[] =
      kind === "portforward" ? PORTFORWARD_PROTOCOLS : REMOTECOMMAND_PROTOCOLS;
    const protocol = offered.find((p) => supported.includes(p));
    if (protocol === undefined)
      return refuse(
        403,
        "Forbidden",
        `unable to upgrade: unable to negotiate protocol: client supports [${offered.join(" ")}], server accepts [${supported.join(" ")}]`,
      );
    if (this.sessions >= this.limits.maxSessions)
      return refuse(503, "Service Unavailable", `${this.limits.maxSessions} streaming sessions run already`);
    const pending = this.tokens.take(match[2]!);
    if (pending === undefined || pending.kind !== kind)
      return refuse(404, "Not Found", "unknown, used or expired streaming token");

    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: ${protocol}\r\n\r\n`,
    );
    this.sessions++;
    this.sockets.add(socket);
    if (head.length > 0) socket.unshift(head);
    const session = new SpdySession(socket, {
      role: "server",
      maxStreams: this.limits.maxStreams,
      idleMs: this.limits.idleMs,
    });
    const log = this.o.log.child({ streaming: kind });
    session.on("protocol-error", (e: Error) => log.warn(`streaming session closed: ${e.message}`));
    socket.once("close", () => {
      this.sessions--;
      this.sockets.delete(socket);
    });
    const served = this.serve(pending, session, protocol, log);
    served.catch((e: unknown) => {
      log.error({ err: e }, "streaming session failed");
      socket.destroy();
    });
  }
}

/** X-Stream-Protocol-Version values, in the client's order (several headers or a list). */
function protocolsOf(req: IncomingMessage): string[] {
  const out: string[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i]!.toLowerCase() !== "x-stream-protocol-version") continue;
    for (const p of req.rawHeaders[i + 1]!.split(",")) if (p.trim() !== "") out.push(p.trim());
  }
  return out;
}
