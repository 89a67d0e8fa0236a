import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rename, rm } from "node:fs/promises";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import { waitFor } from "../../helpers/wait.js";
import type { ProxyFraming } from "../../../src/protocol/messages.js";
import { openProxyChannel, type ProxyChannel, type ProxyTarget } from "../../../src/daemon/power/proxy.js";

const log = pino({ level: "silent" });

/** A target that echoes what it gets and records it, with the message count seen when each chunk came. */
interface EchoTarget {
  server: Server;
  received: Buffer[];
  countsAtReceipt: number[];
  close(): Promise<void>;
}

async function echoTarget(
  listen: { path: string } | { host: string; port: number },
  counted: () => number,
): Promise<EchoTarget> {
  const received: Buffer[] = [];
  const countsAtReceipt: number[] = [];
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    socket.on("data", (chunk: Buffer) => {
      received.push(chunk);
      countsAtReceipt.push(counted());
    });
    socket.on("error", () => socket.destroy());
    socket.pipe(socket); // echo; ends its side when the proxy ends the other
  });
  server.listen(listen);
  await once(server, "listening");
  return {
    server,
    received,
    countsAtReceipt,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Options for a channel whose messages are counted in `state`, and whose first forward waits `freezeMs`. */
function channelOptions(
  name: string,
  listen: string,
  target: string,
  framing: ProxyFraming,
  resolved: ProxyTarget,
  freezeMs = 0,
) {
  const state = { messages: 0, dropped: 0, forwards: 0 };
  let frozen = freezeMs > 0 ? sleep(freezeMs) : undefined;
  const options = {
    name,
    listen,
    target,
    framing,
    log,
    resolveTarget: () => Promise.resolve(resolved),
    beforeForward: async () => {
      state.forwards += 1;
      await frozen;
      frozen = undefined;
    },
    onMessages: (count: number) => (state.messages += count),
    onDropped: (count: number) => (state.dropped += count),
  };
  return { options, state };
}

function connect(options: { path: string } | { host: string; port: number }): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ ...options, allowHalfOpen: true }, () => resolve(socket));
    socket.once("error", reject);
  });
}

/** Everything the socket receives until the other side ends it (the socket stays open for writing). */
async function readAll(socket: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on("data", (chunk: Buffer) => chunks.push(chunk));
  await once(socket, "end");
  return Buffer.concat(chunks);
}

function lengthFrame(payload: string): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt32BE(Buffer.byteLength(payload));
  return Buffer.concat([header, Buffer.from(payload)]);
}

function tcpAddress(channel: ProxyChannel): { host: string; port: number } {
  assert.equal(channel.address.kind, "tcp");
  if (channel.address.kind !== "tcp") throw new Error("unreachable");
  assert.notEqual(channel.address.port, 0);
  return { host: channel.address.host, port: channel.address.port };
}

let dir: string;
before(async () => (dir = await mkdtemp(join(tmpdir(), "skiff-proxy-"))));
after(() => rm(dir, { recursive: true, force: true }));

describe("stream proxy wake channels", () => {
  it("count a burst sent while frozen, forward it in order after the thaw, and echo it back (newline, unix)", async () => {
    const targetPath = join(dir, "echo.sock");
    const listenPath = join(dir, "listen.sock");
    const { options, state } = channelOptions(
      "burst",
      `unix://${listenPath}`,
      "unix:///echo.sock",
      "newline",
      { kind: "unix", path: targetPath },
      100,
    );
    const target = await echoTarget({ path: targetPath }, () => state.messages);
    const channel = await openProxyChannel(options);
    try {
      assert.deepEqual(channel.address, { kind: "unix", path: listenPath });
      const client = await connect({ path: listenPath });
      const reply = readAll(client);
      for (const line of ["first\n", "second\n", "thi", "rd\n"]) client.write(line);
      client.end();
      assert.equal((await reply).toString(), "first\nsecond\nthird\n");
      assert.equal(Buffer.concat(target.received).toString(), "first\nsecond\nthird\n");
      assert.equal(state.messages, 3);
      assert.ok(state.forwards >= 1);
      assert.equal(state.dropped, 0);
      // Every chunk the target got had been counted before it was forwarded.
      let lines = 0;
      target.received.forEach((chunk, i) => {
        lines += chunk.toString().split("\n").length - 1;
        assert.ok(target.countsAtReceipt[i]! >= lines);
      });
    } finally {
      await channel.close();
      await target.close();
    }
    assert.equal(existsSync(listenPath), false);
  });

  it("count length-prefixed frames split anywhere, and keep 2 MiB sent while frozen intact (tcp, port 0)", async () => {
    const { options, state } = channelOptions(
      "length",
      "tcp://127.0.0.1:0",
      "tcp://127.0.0.1:1",
      "length",
      { kind: "tcp", host: "127.0.0.1", port: 0 },
      100,
    );
    const target = await echoTarget({ host: "127.0.0.1", port: 0 }, () => state.messages);
    const port = (target.server.address() as { port: number }).port;
    options.resolveTarget = () => Promise.resolve({ kind: "tcp", host: "127.0.0.1", port });
    const channel = await openProxyChannel(options);
    try {
      const big = "x".repeat(2 * 1024 * 1024);
      const stream = Buffer.concat([lengthFrame("a"), lengthFrame(""), lengthFrame(big)]);
      const client = await connect(tcpAddress(channel));
      const reply = readAll(client);
      // Cut inside the first header, between frames, inside the third header and inside its payload.
      const cuts = [0, 2, 5, 9, 1000, stream.length];
      for (let i = 1; i < cuts.length; i++) client.write(stream.subarray(cuts[i - 1], cuts[i]));
      client.end();
      assert.ok((await reply).equals(stream));
      assert.equal(state.messages, 3);
    } finally {
      await channel.close();
      await target.close();
    }
  });

  it("propagate half-close both ways: the target's end reaches the client, which can still send", async () => {
    const targetPath = join(dir, "greeter.sock");
    const got: string[] = [];
    // The target answers at once and ends its side, then still reads what comes.
    const server = createServer({ allowHalfOpen: true }, (socket) => {
      socket.end("hello\n");
      socket.on("data", (chunk: Buffer) => got.push(chunk.toString()));
      socket.on("end", () => got.push("<end>"));
    });
    server.listen(targetPath);
    await once(server, "listening");
    const { options, state } = channelOptions(
      "half",
      "tcp://127.0.0.1:0",
      "unix:///greeter.sock",
      "newline",
      { kind: "unix", path: targetPath },
    );
    const channel = await openProxyChannel(options);
    try {
      const client = await connect(tcpAddress(channel));
      assert.equal((await readAll(client)).toString(), "hello\n");
      client.end("late\n");
      await once(client, "close");
      await waitFor(() => got.includes("<end>"), {
        timeoutMs: 20_000,
        what: "the target to see the end of the stream",
      });
      assert.deepEqual(got, ["late\n", "<end>"]);
      assert.equal(state.messages, 1);
    } finally {
      await channel.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("reach a Unix socket target whose path is longer than sun_path", async () => {
    const deep = join(dir, "d".repeat(60), "e".repeat(60));
    await mkdir(deep, { recursive: true });
    const targetPath = join(deep, "target.sock");
    assert.ok(Buffer.byteLength(targetPath) > 107);
    const server = createServer((socket) => socket.pipe(socket));
    // bind() has the same length limit: listen on a short path and move the socket file to the long one.
    const { options } = channelOptions("long", "tcp://127.0.0.1:0", "unix:///target.sock", "newline", {
      kind: "unix",
      path: targetPath,
    });
    const short = join(dir, "short.sock");
    server.listen(short);
    await once(server, "listening");
    await rename(short, targetPath);
    const channel = await openProxyChannel(options);
    try {
      const client = await connect(tcpAddress(channel));
      const reply = readAll(client);
      client.end("through a long path\n");
      assert.equal((await reply).toString(), "through a long path\n");
    } finally {
      await channel.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("reach a Unix socket in another mount namespace through /proc/<pid>/root", async () => {
    const hidden = join(dir, "namespaced");
    await mkdir(hidden);
    // A process in its own mount namespace listens on a socket in a tmpfs only that namespace sees.
    const script = `
      require("node:child_process").execFileSync("mount", ["-t", "tmpfs", "skiff-proxy-test", ${JSON.stringify(hidden)}]);
      require("node:net").createServer((s) => s.pipe(s)).listen(${JSON.stringify(join(hidden, "app.sock"))}, () => console.log("ready"));`;
    const child = spawn("unshare", ["--mount", "--propagation", "private", process.execPath, "-e", script], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    try {
      const exited = once(child, "exit").then(([code]) =>
        Promise.reject(new Error(`namespace child exited (${code})`)),
      );
      exited.catch(() => undefined); // the kill at the end rejects it too
      await Promise.race([once(child.stdout, "data"), exited]);
      assert.equal(existsSync(join(hidden, "app.sock")), false);
      const path = `/proc/${child.pid}/root${hidden}/app.sock`;
      const { options, state } = channelOptions("ns", "tcp://127.0.0.1:0", "unix:///app.sock", "newline", {
        kind: "unix",
        path,
      });
      const channel = await openProxyChannel(options);
      try {
        const client = await connect(tcpAddress(channel));
        const reply = readAll(client);
        client.end("inside\n");
        assert.equal((await reply).toString(), "inside\n");
        assert.equal(state.messages, 1);
      } finally {
        await channel.close();
      }
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        const exit = once(child, "exit");
        child.kill("SIGKILL");
        await exit;
      }
    }
  });

  it("report counted messages as dropped when the target cannot be reached, and close the client", async () => {
    let counted!: () => void;
    const countedOnce = new Promise<void>((resolve) => (counted = resolve));
    const { options, state } = channelOptions(
      "dropped",
      "tcp://127.0.0.1:0",
      "unix:///missing.sock",
      "newline",
      { kind: "unix", path: join(dir, "missing.sock") },
    );
    const onMessages = options.onMessages;
    options.onMessages = (count) => (counted(), onMessages(count));
    options.resolveTarget = () => countedOnce.then(() => ({ kind: "unix", path: join(dir, "missing.sock") }));
    const channel = await openProxyChannel(options);
    try {
      const client = await connect(tcpAddress(channel));
      client.on("error", () => undefined);
      client.write("one\ntwo\n");
      await once(client, "end");
      client.destroy();
      assert.equal(state.messages, 2);
      assert.equal(state.dropped, 2);
    } finally {
      await channel.close();
    }
  });

  it("close every connection when the channel closes", async () => {
    const targetPath = join(dir, "idle.sock");
    const target = await echoTarget({ path: targetPath }, () => 0);
    const { options } = channelOptions("closing", "tcp://127.0.0.1:0", "unix:///idle.sock", "newline", {
      kind: "unix",
      path: targetPath,
    });
    const channel = await openProxyChannel(options);
    const address = tcpAddress(channel);
    const client = await connect(address);
    client.on("error", () => undefined);
    const ended = once(client, "end");
    await channel.close();
    await channel.close(); // idempotent
    await ended;
    client.destroy();
    await assert.rejects(connect(address), { code: "ECONNREFUSED" });
    await target.close();
  });

  it("refuse listen addresses off loopback and framings the addresses cannot carry", async () => {
    const target: ProxyTarget = { kind: "tcp", host: "127.0.0.1", port: 1 };
    const refuse = (listen: string, targetText: string, framing: ProxyFraming, pattern: RegExp) =>
      assert.rejects(
        openProxyChannel(channelOptions("refused", listen, targetText, framing, target).options),
        pattern,
      );
    await refuse(
      "tcp://0.0.0.0:0",
      "tcp://127.0.0.1:80",
      "newline",
      /"refused": listen: .* not a loopback address/,
    );
    await refuse("udp://192.168.0.1:0", "udp://127.0.0.1:53", "datagram", /not a loopback address/);
    await refuse(
      "tcp://127.0.0.1:0",
      "udp://127.0.0.1:53",
      "newline",
      /newline framing needs a unix:\/\/ or tcp:\/\/ target/,
    );
    await refuse(
      "unix:///tmp/x.sock",
      "udp://127.0.0.1:53",
      "datagram",
      /datagram framing needs a udp:\/\/ listen/,
    );
    await refuse(
      "tcp://127.0.0.1:0",
      "unix://relative",
      "length",
      /target: unix:\/\/ addresses need an absolute path/,
    );
  });
});

describe("datagram proxy wake channels", () => {
  it("count each datagram, forward them after the thaw and return the replies to the sender", async () => {
    const echo = createSocket("udp4");
    echo.on("message", (message, from) => echo.send(message, from.port, from.address));
    await new Promise<void>((resolve) => echo.bind(0, "127.0.0.1", resolve));
    const resolved: ProxyTarget = { kind: "udp", host: "127.0.0.1", port: echo.address().port };
    const { options, state } = channelOptions(
      "udp",
      "udp://127.0.0.1:0",
      "udp://127.0.0.1:9",
      "datagram",
      resolved,
      100,
    );
    const channel = await openProxyChannel(options);
    let client: UdpSocket | undefined;
    try {
      assert.equal(channel.address.kind, "udp");
      const port = channel.address.kind === "udp" ? channel.address.port : 0;
      assert.notEqual(port, 0);
      client = createSocket("udp4");
      const replies: string[] = [];
      client.on("message", (message) => replies.push(message.toString()));
      for (const text of ["one", "two", "three"]) client.send(text, port, "127.0.0.1");
      await waitFor(() => replies.length >= 3, {
        timeoutMs: 20_000,
        what: "three UDP replies",
        detail: () => JSON.stringify(replies),
      });
      assert.deepEqual(replies, ["one", "two", "three"]);
      assert.equal(state.messages, 3);
      assert.ok(state.forwards >= 1);
    } finally {
      client?.close();
      await channel.close();
      echo.close();
    }
  });
});
