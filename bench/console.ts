/**
 * Console benchmarks: `list` round trips (one connection, 50 concurrent clients), notification
 * fan-out to 1/10/100 subscribers, idle daemon RSS. Baselines, measured in the same run: a bare
 * NDJSON echo over a Unix socket (the floor for any request/response), raw line writes to the
 * same number of sockets, and the RSS of an idle bare `node` process.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, connect as netConnect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { connect } from "../src/client/index.js";
import { LineReader } from "../src/protocol/framing.js";
import { startDaemonProcess, startInProcessDaemon } from "../test/helpers/daemon.js";
import { ms, percentile, versus, versusTarget } from "./stats.js";

/** docs/footprint.md: an idle daemon within 1.25x of an idle bare node. */
const IDLE_RSS_TARGET = 1.25;

const ROUNDS = 2000;

async function echoBaseline(dir: string, clients: number): Promise<number[]> {
  const path = join(dir, "echo.sock");
  const server = createServer((s) => s.pipe(s));
  server.listen(path);
  await once(server, "listening");
  const samples = await Promise.all(
    Array.from({ length: clients }, async () => {
      const socket = netConnect({ path });
      await once(socket, "connect");
      const reader = new LineReader(socket, 1 << 20);
      const out: number[] = [];
      for (let i = 0; i < ROUNDS / Math.min(clients, 10); i++) {
        const t = performance.now();
        socket.write(`{"request":"list"}\n`);
        await reader.nextLine();
        out.push(performance.now() - t);
      }
      socket.destroy();
      return out;
    }),
  );
  server.close();
  return samples.flat();
}

async function listRoundTrips(url: string, clients: number): Promise<number[]> {
  const samples = await Promise.all(
    Array.from({ length: clients }, async () => {
      const c = await connect(url);
      const out: number[] = [];
      for (let i = 0; i < ROUNDS / Math.min(clients, 10); i++) {
        const t = performance.now();
        await c.list();
        out.push(performance.now() - t);
      }
      c.close();
      return out;
    }),
  );
  return samples.flat();
}

async function fanOut(subscribers: number, total: number): Promise<{ skiff: number; raw: number }> {
  const d = await startInProcessDaemon(`notification_buffer_size = ${total}`);
  try {
    const clients = await Promise.all(
      Array.from({ length: subscribers }, () => connect(d.url, { notifications: true })),
    );
    while (d.runtime.hub.size < subscribers) await sleep(1);
    const start = performance.now();
    const done = clients.map(async (c) => {
      let n = 0;
      for await (const _ of c.notifications()) if (++n === total) return;
    });
    for (let i = 0; i < total; i++) {
      d.runtime.hub.broadcast({ type: "started", container: "bench:1.0.0" });
      if (i % 256 === 0) await new Promise((r) => setImmediate(r));
    }
    await Promise.all(done);
    const skiff = (total * subscribers) / ((performance.now() - start) / 1000);
    clients.forEach((c) => c.close());

    // Baseline: the same lines written straight to the same number of Unix sockets.
    const path = join(d.dir, "raw.sock");
    const sockets: Socket[] = [];
    const server = createServer((s) => sockets.push(s));
    server.listen(path);
    await once(server, "listening");
    const readers = await Promise.all(
      Array.from({ length: subscribers }, async () => {
        const s = netConnect({ path });
        await once(s, "connect");
        return s;
      }),
    );
    while (sockets.length < subscribers) await sleep(1);
    const line = `{"notification":{"started":"bench:1.0.0"}}\n`;
    const rawStart = performance.now();
    const rawDone = readers.map(async (s) => {
      const r = new LineReader(s, 1 << 20);
      for (let n = 0; n < total; n++) await r.nextLine();
    });
    for (let i = 0; i < total; i++) {
      for (const s of sockets) s.write(line);
      if (i % 256 === 0) await new Promise((r) => setImmediate(r));
    }
    await Promise.all(rawDone);
    const raw = (total * subscribers) / ((performance.now() - rawStart) / 1000);
    readers.forEach((s) => s.destroy());
    sockets.forEach((s) => s.destroy());
    server.close();
    return { skiff, raw };
  } finally {
    await d.stop();
  }
}

async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) * 1024;
}

export async function benchConsole(): Promise<string[]> {
  const lines: string[] = [];
  const dir = await mkdtemp(join(tmpdir(), "skiff-bench-"));
  // The rate limit is lifted so the figure is the console's own cost, not the limiter's.
  const d = await startDaemonProcess(`[console.main.options]\nmax_requests_per_sec = 1000000`);
  try {
    for (const clients of [1, 50]) {
      const skiff = await listRoundTrips(d.url, clients);
      const echo = await echoBaseline(dir, clients);
      for (const p of [50, 99]) {
        lines.push(
          versus(
            `console list round trip, ${clients} client${clients > 1 ? "s" : ""}, p${p}`,
            ms(percentile(skiff, p)),
            `unix socket echo ${ms(percentile(echo, p))}`,
            percentile(skiff, p) / percentile(echo, p),
          ),
        );
      }
    }
    await sleep(500);
    const bare = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
    await sleep(500);
    const daemonRss = await rssOf(d.child.pid!);
    const bareRss = await rssOf(bare.pid!);
    bare.kill();
    lines.push(
      versusTarget(
        `idle daemon RSS (after the load above; node ${process.version})`,
        `${(daemonRss / 2 ** 20).toFixed(1)} MiB`,
        `bare node ${(bareRss / 2 ** 20).toFixed(1)} MiB`,
        daemonRss / bareRss,
        { text: `<= ${IDLE_RSS_TARGET}x`, met: daemonRss / bareRss <= IDLE_RSS_TARGET },
      ),
    );
  } finally {
    await d.stop();
    await rm(dir, { recursive: true, force: true });
  }
  for (const subscribers of [1, 10, 100]) {
    const { skiff, raw } = await fanOut(subscribers, subscribers === 100 ? 2000 : 20000);
    lines.push(
      versus(
        `notification fan-out to ${subscribers} subscriber${subscribers > 1 ? "s" : ""}`,
        `${Math.round(skiff)} notifications/s delivered`,
        `raw socket writes ${Math.round(raw)}/s`,
        skiff / raw,
      ),
    );
  }
  return lines;
}
