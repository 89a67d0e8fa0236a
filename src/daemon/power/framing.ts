// The pure parts of proxy wake channels: their address strings and how messages are counted in a byte
// stream. No I/O here, so the state machine can validate a `proxy_wake_channel` request before anything is
// opened, and the counting rules are unit-tested on their own.
import { isIP } from "node:net";

/** Where a proxy listens or forwards to. `unix` paths are absolute; `tcp`/`udp` hosts are IP literals. */
export type ProxyEndpoint =
  | { kind: "unix"; path: string }
  | { kind: "tcp"; host: string; port: number }
  | { kind: "udp"; host: string; port: number };

/** A target as the caller resolved it for one connection (e.g. `/proc/<init pid>/root/<path>`). */
export type ProxyTarget = ProxyEndpoint;

/** Counts complete messages in a byte stream fed chunk by chunk. Nothing is buffered: only positions. */
export interface FrameCounter {
  /** Returns how many messages ended inside `chunk`. */
  push(chunk: Uint8Array): number;
  /** Bytes of a message begun but not complete yet (0 at a message boundary). */
  readonly partial: number;
}

const NEWLINE = 0x0a;
const LENGTH_HEADER_BYTES = 4;

/** Newline framing: every `\n` ends a message. */
class NewlineCounter implements FrameCounter {
  partial = 0;

  push(chunk: Uint8Array): number {
    let count = 0;
    let last = -1;
    for (let at = chunk.indexOf(NEWLINE); at !== -1; at = chunk.indexOf(NEWLINE, at + 1)) {
      count += 1;
      last = at;
    }
    this.partial = last === -1 ? this.partial + chunk.length : chunk.length - last - 1;
    return count;
  }
}

/** Length framing: a 4-byte big-endian payload length, then the payload (an empty payload is a message). */
class LengthCounter implements FrameCounter {
  private header = 0;
  private headerBytes = 0;
  private payloadLeft = 0;
  partial = 0;

  push(chunk: Uint8Array): number {
    let count = 0;
    let at = 0;
    while (at < chunk.length) {
      if (this.headerBytes < LENGTH_HEADER_BYTES) {
        // `* 256` rather than `<< 8`: lengths of 2 GiB and more stay positive.
        this.header = this.header * 256 + chunk[at]!;
        this.headerBytes += 1;
        at += 1;
        if (this.headerBytes === LENGTH_HEADER_BYTES) {
          this.payloadLeft = this.header;
          if (this.payloadLeft === 0) count += this.complete();
        }
        continue;
      }
      const take = Math.min(this.payloadLeft, chunk.length - at);
      this.payloadLeft -= take;
      at += take;
      if (this.payloadLeft === 0) count += this.complete();
    }
    const header = this.headerBytes < LENGTH_HEADER_BYTES;
    this.partial = header ? this.headerBytes : LENGTH_HEADER_BYTES + this.header - this.payloadLeft;
    return count;
  }

  private complete(): number {
    this.header = 0;
    this.headerBytes = 0;
    this.payloadLeft = 0;
    return 1;
  }
}

/** A counter for a stream framing; datagrams are counted one per datagram and need none. */
export function createFrameCounter(framing: "newline" | "length"): FrameCounter {
  return framing === "newline" ? new NewlineCounter() : new LengthCounter();
}

/** Parses `unix:///abs/path`, `tcp://HOST:PORT` or `udp://HOST:PORT` (HOST an IP literal, IPv6 in
 *  brackets). Returns the reason as a string when `text` is not one. */
function parseEndpoint(text: string): ProxyEndpoint | string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `invalid address ${JSON.stringify(text)} (expected unix:///path, tcp://host:port or udp://host:port)`;
  }
  const scheme = url.protocol.slice(0, -1);
  if (scheme === "unix") {
    const path = decodeURIComponent(url.host + url.pathname);
    if (!path.startsWith("/"))
      return `unix:// addresses need an absolute path (unix:///run/app.sock), got ${JSON.stringify(text)}`;
    if (url.search || url.hash)
      return `unix:// addresses take no query or fragment, got ${JSON.stringify(text)}`;
    return { kind: "unix", path };
  }
  if (scheme === "tcp" || scheme === "udp") {
    const host = url.hostname.replace(/^\[|\]$/g, "");
    const port = Number(url.port);
    if (url.port === "" || !Number.isInteger(port) || port < 0 || port > 65535) {
      return `${scheme}:// addresses need a port (${scheme}://127.0.0.1:8080), got ${JSON.stringify(text)}`;
    }
    if (isIP(host) === 0)
      return `${scheme}:// addresses need an IP address as host, got ${JSON.stringify(url.hostname)}`;
    if (url.pathname !== "" && url.pathname !== "/")
      return `${scheme}:// addresses take no path, got ${JSON.stringify(text)}`;
    return { kind: scheme, host, port };
  }
  return `expected a unix://, tcp:// or udp:// address, got ${JSON.stringify(text)}`;
}

/** Parses a `target` of `proxy_wake_channel`: the path (in the container's mount namespace) or the port
 *  the daemon forwards to. Port 0 is refused: a target is a fixed place. Throws with the reason. */
export function parseProxyTarget(text: string): ProxyTarget {
  const target = parseEndpoint(text);
  if (typeof target === "string") throw new Error(`target: ${target}`);
  if (target.kind !== "unix" && target.port === 0)
    throw new Error(`target: ${JSON.stringify(text)} needs a non-zero port`);
  return target;
}

/** Parses a `listen` address of `proxy_wake_channel`: a Unix socket path, or a loopback TCP/UDP address
 *  (port 0 picks a free port). Any other host is refused: the daemon does not open ports to the network.
 *  Throws with the reason. */
export function parseProxyListen(text: string): ProxyEndpoint {
  const listen = parseEndpoint(text);
  if (typeof listen === "string") throw new Error(`listen: ${listen}`);
  if (listen.kind !== "unix" && !isLoopback(listen.host)) {
    throw new Error(
      `listen: ${JSON.stringify(text)} is not a loopback address: use 127.0.0.1 (or 127.x.y.z) or [::1]`,
    );
  }
  return listen;
}

/** Checks that a framing can run between a listen address and a target: datagrams over UDP only (Node has
 *  no Unix datagram sockets), stream framings over Unix or TCP. Returns the reason when not. */
export function checkProxyFraming(
  framing: "newline" | "length" | "datagram",
  listen: ProxyEndpoint,
  target: ProxyTarget,
): string | undefined {
  const datagram = framing === "datagram";
  for (const [role, endpoint] of [
    ["listen", listen],
    ["target", target],
  ] as const) {
    if (datagram && endpoint.kind !== "udp")
      return `datagram framing needs a udp:// ${role} address (Unix datagram sockets are not supported)`;
    if (!datagram && endpoint.kind === "udp")
      return `${framing} framing needs a unix:// or tcp:// ${role} address; udp:// carries datagram framing`;
  }
  return undefined;
}

export function formatProxyEndpoint(endpoint: ProxyEndpoint): string {
  if (endpoint.kind === "unix") return `unix://${endpoint.path}`;
  const host = endpoint.host.includes(":") ? `[${endpoint.host}]` : endpoint.host;
  return `${endpoint.kind}://${host}:${endpoint.port}`;
}

function isLoopback(host: string): boolean {
  if (isIP(host) === 4) return host.startsWith("127.");
  return host === "::1" || host === "0:0:0:0:0:0:0:1";
}
