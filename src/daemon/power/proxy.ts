// Proxy wake channels (starnix's ProxyWakeChannel): the daemon listens outside the container and forwards
// every connection (or UDP peer) to a target inside it. Each inbound message is counted (onMessages) before
// it is forwarded, and forwarding waits for beforeForward(), where the caller thaws a frozen container.
//
// INVARIANTS:
// - Bytes from a client reach the target in the order they arrived; replies flow back unchanged.
// - onMessages(n) for a chunk is called before any byte of that chunk is handed to the target, and every
//   hand-over is preceded by a resolved beforeForward() (once per batch of queued chunks).
// - Inbound bytes queued for the target stay below HIGH_WATER_BYTES plus one chunk: the client is paused
//   above it. UDP cannot be paused, so datagrams beyond the bound (or from too many peers) are dropped
//   uncounted.
// - Messages counted but never handed to the target (connection failed or closed first) are reported once
//   through onDropped, so the caller's counter does not stay above zero for them.
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from "node:dgram";
import { constants, open as openCallback, close as closeCallback } from "node:fs";
import { once } from "node:events";
import { createConnection, createServer, isIP, type Socket } from "node:net";
import { basename, dirname } from "node:path";
import { promisify } from "node:util";
import type { Logger } from "pino";
import type { ProxyFraming } from "../../protocol/messages.js";
import { checkProxyFraming, createFrameCounter, parseProxyListen, parseProxyTarget } from "./framing.js";
import type { ProxyEndpoint, ProxyTarget } from "./framing.js";
import { listenUnixSocket } from "./wake-sources.js";
import { MAX_UNIX_SOCKET_PATH } from "../../common/unix-socket.js";
import { listen as listenOn } from "../../common/listen.js";

export { formatProxyEndpoint, parseProxyListen, parseProxyTarget } from "./framing.js";
export type { ProxyEndpoint, ProxyTarget } from "./framing.js";

export interface ProxyChannelOptions {
  /** For logs and errors. */
  name: string;
  /** `unix:///path`, `tcp://127.0.0.1:PORT` or `udp://127.0.0.1:PORT` (loopback only; port 0 picks one). */
  listen: string;
  /** The target as requested (`unix:///path/in/container`, `tcp://…`, `udp://…`); checked against framing. */
  target: string;
  framing: ProxyFraming;
  /** Where to forward one new connection or UDP peer, e.g. `/proc/<init pid>/root/<path>`. */
  resolveTarget: () => Promise<ProxyTarget>;
  /** Awaited before each batch of queued bytes is forwarded (the caller thaws the container here). */
  beforeForward: () => Promise<void>;
  /** `count` complete inbound messages arrived; called before they are forwarded. */
  onMessages: (count: number) => void;
  /** `count` messages that onMessages reported will never reach the target. */
  onDropped?: (count: number) => void;
  log: Pick<Logger, "debug" | "warn">;
}

export interface ProxyChannel {
  readonly name: string;
  /** The bound address (with the port chosen when 0 was asked). */
  readonly address: ProxyEndpoint;
  /** Closes the listener and every connection; idempotent. */
  close(): Promise<void>;
}

const HIGH_WATER_BYTES = 256 * 1024;
/** A UDP peer's forwarding socket is closed after this long without a datagram either way. */
const DATAGRAM_IDLE_MS = 60_000;
/** Each UDP peer holds a socket; more peers than this at once get their datagrams dropped uncounted. */
const MAX_DATAGRAM_PEERS = 256;

const openFd = promisify(openCallback);
const closeFd = promisify(closeCallback);

export async function openProxyChannel(options: ProxyChannelOptions): Promise<ProxyChannel> {
  let listen: ProxyEndpoint;
  try {
    listen = parseProxyListen(options.listen);
    const mismatch = checkProxyFraming(options.framing, listen, parseProxyTarget(options.target));
    if (mismatch !== undefined) throw new Error(mismatch);
  } catch (error) {
    throw new Error(`proxy channel ${JSON.stringify(options.name)}: ${(error as Error).message}`);
  }
  return listen.kind === "udp" ? openDatagramChannel(options, listen) : openStreamChannel(options, listen);
}

// ---------------------------------------------------------------------------------------------
// Streams (Unix or TCP), newline or length framing.

async function openStreamChannel(o: ProxyChannelOptions, listen: ProxyEndpoint): Promise<ProxyChannel> {
  const forwards = new Set<StreamForward>();
  const server = createServer({ allowHalfOpen: true }, (client) => {
    const forward = new StreamForward(client, o, () => forwards.delete(forward));
    forwards.add(forward);
  });
  let removeSocket = (): Promise<void> => Promise.resolve();
  if (listen.kind === "unix") removeSocket = await listenUnixSocket(server, listen.path);
  else await listenOn(server, { host: listen.host, port: listen.port });
  server.on("error", (error) => o.log.warn({ channel: o.name, err: error }, "proxy listener error"));
  const bound = server.address();
  const address: ProxyEndpoint =
    listen.kind === "unix" || bound === null || typeof bound === "string"
      ? listen
      : { ...listen, port: bound.port };
  let closing: Promise<void> | undefined;
  return {
    name: o.name,
    address,
    close: () =>
      (closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const forward of forwards) forward.destroy();
        await closed;
        await removeSocket();
      })()),
  };
}

/** One client connection and its connection to the target. */
class StreamForward {
  private readonly queue: { chunk: Buffer; frames: number }[] = [];
  private queuedBytes = 0;
  private pumping = false;
  private clientEnded = false;
  private destroyed = false;
  private target: Socket | undefined;
  private readonly targetReady: Promise<Socket>;

  constructor(
    private readonly client: Socket,
    private readonly o: ProxyChannelOptions,
    private readonly onDone: () => void,
  ) {
    const counter = createFrameCounter(o.framing === "length" ? "length" : "newline");
    client.on("data", (chunk: Buffer) => {
      const frames = counter.push(chunk);
      if (frames > 0) o.onMessages(frames);
      this.queue.push({ chunk, frames });
      this.queuedBytes += chunk.length;
      if (this.queuedBytes >= HIGH_WATER_BYTES) client.pause();
      this.pump();
    });
    client.on("end", () => {
      this.clientEnded = true;
      if (counter.partial > 0)
        o.log.debug({ channel: o.name, bytes: counter.partial }, "client ended inside a message");
      this.pump();
    });
    client.on("error", (error) => this.fail("client", error));
    client.on("close", () => this.closed());
    this.targetReady = this.connectTarget();
    this.targetReady.catch((error: Error) => this.fail("target", error));
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    const dropped = this.queue.reduce((sum, entry) => sum + entry.frames, 0);
    this.queue.length = 0;
    if (dropped > 0) this.o.onDropped?.(dropped);
    this.client.destroy();
    this.target?.destroy();
    this.onDone();
  }

  private async connectTarget(): Promise<Socket> {
    const resolved = await this.o.resolveTarget();
    if (resolved.kind === "udp") throw new Error("a stream channel cannot forward to a udp target");
    const { kind: _kind, ...address } = resolved;
    const target = await connectStream(address);
    if (this.destroyed) {
      target.destroy();
      throw new Error("connection closed while the target was connecting");
    }
    this.target = target;
    target.on("error", (error) => this.fail("target", error));
    target.on("close", () => this.closed());
    // Replies, and the target's end of stream as a half-close towards the client.
    target.pipe(this.client);
    return target;
  }

  private pump(): void {
    if (this.pumping || this.destroyed) return;
    this.pumping = true;
    this.forward()
      .catch((error: Error) => this.fail("forward", error))
      .finally(() => (this.pumping = false));
  }

  private async forward(): Promise<void> {
    const target = await this.targetReady;
    while (this.queue.length > 0 && !this.destroyed) {
      await this.o.beforeForward();
      if (this.destroyed) return;
      const batch = this.queue.splice(0);
      this.queuedBytes = 0;
      for (const entry of batch) target.write(entry.chunk);
      this.client.resume();
      if (target.writableNeedDrain) await drained(target);
    }
    if (this.clientEnded && this.queue.length === 0 && !this.destroyed && !target.writableEnded) target.end();
  }

  private fail(side: string, error: Error): void {
    if (this.destroyed) return;
    this.o.log.debug({ channel: this.o.name, side, err: error }, "proxy connection failed");
    this.destroy();
  }

  /** Both sockets closed: done. One closed with the other still open: ends at the other's close. */
  private closed(): void {
    if (this.client.closed && (this.target === undefined || this.target.closed)) this.destroy();
  }
}

/** Waits until `socket` takes more data, or has closed (then the caller finds itself destroyed). */
function drained(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      socket.off("drain", done);
      socket.off("close", done);
      resolve();
    };
    socket.on("drain", done);
    socket.on("close", done);
  });
}

/** Connects to a stream target; a Unix path longer than sun_path is reached as /proc/self/fd/<dir fd>/<name>. */
async function connectStream(target: { path: string } | { host: string; port: number }): Promise<Socket> {
  if ("path" in target && Buffer.byteLength(target.path) > MAX_UNIX_SOCKET_PATH) {
    const directory = await openFd(dirname(target.path), constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      return await connectStream({ path: `/proc/self/fd/${directory}/${basename(target.path)}` });
    } finally {
      await closeFd(directory);
    }
  }
  const socket = createConnection({ ...target, allowHalfOpen: true });
  await once(socket, "connect");
  return socket;
}

// ---------------------------------------------------------------------------------------------
// Datagrams (UDP): every datagram is a message; each client address gets its own forwarding socket so the
// target's replies go back to the right peer.

async function openDatagramChannel(
  o: ProxyChannelOptions,
  listen: Extract<ProxyEndpoint, { kind: "udp" }>,
): Promise<ProxyChannel> {
  const socket = createSocket(isIP(listen.host) === 6 ? "udp6" : "udp4");
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(listen.port, listen.host, () => {
      socket.off("error", reject);
      resolve();
    });
  });
  const peers = new Map<string, DatagramPeer>();
  socket.on("error", (error) => o.log.warn({ channel: o.name, err: error }, "proxy listener error"));
  socket.on("message", (message, from) => {
    const key = `${from.address}:${from.port}`;
    let peer = peers.get(key);
    if (peer === undefined && peers.size >= MAX_DATAGRAM_PEERS) {
      o.log.debug({ channel: o.name, peer: key }, "datagram dropped: too many peers");
      return;
    }
    if (peer === undefined) {
      peer = new DatagramPeer(socket, from, o, () => peers.delete(key));
      peers.set(key, peer);
    }
    peer.receive(message);
  });
  let closing: Promise<void> | undefined;
  return {
    name: o.name,
    address: { ...listen, port: socket.address().port },
    close: () =>
      (closing ??= (async () => {
        for (const peer of [...peers.values()]) peer.close();
        await new Promise<void>((resolve) => socket.close(() => resolve()));
      })()),
  };
}

class DatagramPeer {
  private readonly queue: Buffer[] = [];
  private queuedBytes = 0;
  private pumping = false;
  private closed = false;
  private outbound: UdpSocket | undefined;
  private readonly ready: Promise<UdpSocket>;
  private idle: NodeJS.Timeout;

  constructor(
    private readonly listener: UdpSocket,
    private readonly peer: RemoteInfo,
    private readonly o: ProxyChannelOptions,
    private readonly onDone: () => void,
  ) {
    this.idle = setTimeout(() => this.close(), DATAGRAM_IDLE_MS).unref();
    this.ready = this.open();
    this.ready.catch((error: Error) => this.fail(error));
  }

  receive(message: Buffer): void {
    if (this.queuedBytes + message.length > HIGH_WATER_BYTES) {
      this.o.log.debug({ channel: this.o.name, peer: this.peer.address }, "datagram dropped: queue full");
      return;
    }
    this.o.onMessages(1);
    this.queue.push(message);
    this.queuedBytes += message.length;
    this.idle.refresh();
    if (this.pumping) return;
    this.pumping = true;
    this.forward()
      .catch((error: Error) => this.fail(error))
      .finally(() => (this.pumping = false));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.idle);
    if (this.queue.length > 0) this.o.onDropped?.(this.queue.length);
    this.queue.length = 0;
    this.outbound?.close();
    this.onDone();
  }

  private async open(): Promise<UdpSocket> {
    const target = await this.o.resolveTarget();
    if (target.kind !== "udp")
      throw new Error(`a datagram channel cannot forward to a ${target.kind} target`);
    const outbound = createSocket(isIP(target.host) === 6 ? "udp6" : "udp4");
    outbound.on("message", (reply) => {
      this.idle.refresh();
      this.listener.send(reply, this.peer.port, this.peer.address);
    });
    await new Promise<void>((resolve, reject) => {
      const failed = (error: Error): void => {
        outbound.close();
        reject(error);
      };
      outbound.once("error", failed);
      outbound.connect(target.port, target.host, () => {
        outbound.off("error", failed);
        resolve();
      });
    });
    // A connected UDP socket reports an unreachable port as an error; the datagram is lost, as UDP is.
    outbound.on("error", (error) =>
      this.o.log.debug({ channel: this.o.name, err: error }, "datagram not delivered"),
    );
    if (this.closed) outbound.close();
    else this.outbound = outbound;
    return outbound;
  }

  private async forward(): Promise<void> {
    const outbound = await this.ready;
    while (this.queue.length > 0 && !this.closed) {
      await this.o.beforeForward();
      if (this.closed) return;
      const batch = this.queue.splice(0);
      this.queuedBytes = 0;
      for (const message of batch) outbound.send(message);
    }
  }

  private fail(error: Error): void {
    if (this.closed) return;
    this.o.log.warn(
      { channel: this.o.name, peer: this.peer.address, err: error },
      "proxy datagram forwarding failed",
    );
    this.close();
  }
}
