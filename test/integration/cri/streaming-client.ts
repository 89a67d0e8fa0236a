/**
 * The tests' client of the CRI streaming server: the HTTP upgrade to SPDY/3.1 by hand, then the
 * client side of Skiff's own session (src/cri/streaming/session.ts), speaking remotecommand and
 * portforward as client-go does (error stream first, then stdin/stdout/stderr/resize; the
 * port-forward error stream half-closed at once).
 */
import { connect, type Socket } from "node:net";
import { SpdySession, type SpdyStream } from "../../../src/cri/streaming/session.js";
import type { Headers } from "../../../src/cri/streaming/spdy.js";
import { within } from "../../helpers/wait.js";

const WAIT_MS = 30_000;

export type Upgraded =
  | { status: 101; protocol: string; socket: Socket; session: SpdySession }
  | { status: number; body: string };

/** POSTs an upgrade to `url` offering `protocols`; the session on 101, the answer otherwise. */
export async function upgrade(
  url: string,
  protocols: string[],
  o: { headers?: string } = {},
): Promise<Upgraded> {
  const u = new URL(url);
  const socket = connect(Number(u.port), u.hostname);
  await within(new Promise((resolve, reject) => socket.once("connect", resolve).once("error", reject)), {
    timeoutMs: WAIT_MS,
    what: "the streaming server to accept",
  });
  const offer = protocols.map((p) => `X-Stream-Protocol-Version: ${p}\r\n`).join("");
  socket.write(
    `POST ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\n${o.headers ?? "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"}${offer}Content-Length: 0\r\n\r\n`,
  );
  const { head, rest } = await within(
    new Promise<{ head: string; rest: Buffer }>((resolve, reject) => {
      let got = Buffer.alloc(0);
      const onData = (chunk: Buffer): void => {
        got = Buffer.concat([got, chunk]);
        const end = got.indexOf("\r\n\r\n");
        if (end < 0) return;
        socket.off("data", onData);
        socket.pause();
        resolve({ head: got.subarray(0, end).toString(), rest: got.subarray(end + 4) });
      };
      socket.on("data", onData);
      socket.once("error", reject);
      socket.once("end", () => resolve({ head: got.toString(), rest: Buffer.alloc(0) }));
    }),
    { timeoutMs: WAIT_MS, what: "the upgrade answer" },
  );
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
  if (status !== 101) {
    socket.destroy();
    return { status, body: rest.toString() };
  }
  const protocol = /^x-stream-protocol-version: *(.*)$/im.exec(head)?.[1]?.trim() ?? "";
  if (rest.length > 0) socket.unshift(rest);
  const session = new SpdySession(socket, { role: "client", maxStreams: 64, idleMs: 60_000 });
  socket.resume();
  return { status: 101, protocol, socket, session };
}

export function headers(entries: Record<string, string>): Headers {
  return new Map(Object.entries(entries).map(([k, v]) => [k, [v]]));
}

/** All of `stream`'s incoming data, until its FIN. */
export function readAll(stream: SpdyStream): Promise<Buffer> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    stream.readable.on("data", (d: Buffer) => parts.push(d));
    stream.readable.on("end", () => resolve(Buffer.concat(parts)));
    stream.readable.on("error", () => resolve(Buffer.concat(parts)));
  });
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** The error stream's text (v4: the Status JSON). */
  error: string;
}

/** Runs an exec session on `url` to its end. */
export async function execSession(
  url: string,
  o: {
    protocol?: string;
    stdin?: string;
    stdout?: boolean;
    stderr?: boolean;
    tty?: boolean;
    resize?: { Width: number; Height: number };
  } = {},
): Promise<ExecResult> {
  const up = await upgrade(url, [o.protocol ?? "v4.channel.k8s.io"]);
  if (up.status !== 101) throw new Error(`upgrade refused: ${up.status} ${"body" in up ? up.body : ""}`);
  const { session } = up as Extract<Upgraded, { status: 101 }>;
  const open = (type: string): SpdyStream => session.openStream(headers({ streamtype: type }));
  const error = open("error");
  const errorText = readAll(error);
  error.writable.end();
  const stdin = o.stdin !== undefined ? open("stdin") : undefined;
  const stdout = o.stdout !== false ? open("stdout") : undefined;
  const stderr = o.stderr === true && o.tty !== true ? open("stderr") : undefined;
  const resize = o.tty === true && o.resize !== undefined ? open("resize") : undefined;
  const out = stdout ? readAll(stdout) : Promise.resolve(Buffer.alloc(0));
  const err = stderr ? readAll(stderr) : Promise.resolve(Buffer.alloc(0));
  if (stdin !== undefined) {
    await within(stdin.replied, { timeoutMs: WAIT_MS, what: "the stdin stream's reply" });
    stdin.writable.end(Buffer.from(o.stdin!));
  }
  if (resize !== undefined) resize.writable.write(Buffer.from(`${JSON.stringify(o.resize)}\n`));
  const [a, b, c] = await within(Promise.all([out, err, errorText]), {
    timeoutMs: WAIT_MS,
    what: "the exec session to end",
  });
  session.close();
  return { stdout: a.toString(), stderr: b.toString(), error: c.toString() };
}
