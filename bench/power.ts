/**
 * Power benchmarks against a real `skiffd` (test/helpers/containers.ts), each beside a baseline measured
 * in the same run:
 * - freeze and thaw: `pause` / `resume` request round trips, vs `runc pause` / `runc resume` of the
 *   same container under plain runc (bundle written from the daemon's own, bench/runc-baseline.ts), and
 *   the pause vs a raw write of the container's freezer.state (`npm run bench -- freeze`: these alone).
 * - wake: an echo server (`nc -ll -e cat`, `network: host`) suspended behind a proxy wake channel; first
 *   byte written to the channel (right after its TCP connect completed) -> reply at the client, vs the same
 *   request sent straight to the server's port while it runs. Also the same request through the proxy of
 *   the awake container, which separates the proxy's cost from the thaw's.
 * - CPU used by a suspended busy loop over 10 s (cpuacct.usage delta of its cgroup), vs the same loop
 *   running for 2 s, scaled to 10 s.
 */
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { connect as tcpConnect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { connect, type Client } from "../src/client/index.js";
import type { Notification } from "../src/protocol/messages.js";
import { ContainerHarness } from "../test/helpers/containers.js";
import { RuncBaseline } from "./runc-baseline.js";
import { ms, percentile, versus, versusTarget } from "./stats.js";

const execFileAsync = promisify(execFile);
const FREEZE_ROUNDS = 40;
const WAKE_ROUNDS = 30;
const SUSPENDED_MS = 10_000;
const RUNNING_MS = 2_000;

export const p50p99 = (samples: number[]): string =>
  `p50 ${ms(percentile(samples, 50))} p99 ${ms(percentile(samples, 99))}`;

export const ratio50 = (figure: number[], baseline: number[]): number =>
  percentile(figure, 50) / percentile(baseline, 50);

export async function timed(body: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await body();
  return performance.now() - start;
}

/**
 * A client of its own, subscribed to notifications, that stamps each with performance.now() as it
 * arrives (the harness's list has no arrival times).
 */
export class NotificationClock {
  readonly seen: { n: Notification; at: number }[] = [];
  private waiters: (() => void)[] = [];

  private constructor(private readonly client: Client) {
    void (async () => {
      try {
        for await (const n of client.notifications()) {
          this.seen.push({ n, at: performance.now() });
          for (const wake of this.waiters.splice(0)) wake();
        }
      } catch {
        // The daemon went away.
      }
    })();
  }

  static async open(url: string): Promise<NotificationClock> {
    return new NotificationClock(await connect(url, { notifications: true, timeout: 0 }));
  }

  get mark(): number {
    return this.seen.length;
  }

  /** The first notification from index `from` on that matches, with its arrival time. */
  async next(
    match: (n: Notification) => boolean,
    from: number,
    timeoutMs = 20_000,
  ): Promise<{ n: Notification; at: number }> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const found = this.seen.slice(from).find((s) => match(s.n));
      if (found) return found;
      if (performance.now() > deadline) throw new Error("bench: an expected notification did not arrive");
      await Promise.race([
        new Promise<void>((r) => this.waiters.push(r)),
        sleep(100, undefined, { ref: false }),
      ]);
    }
  }

  close(): void {
    this.client.close();
  }
}

/** The bundle directory the daemon gave a running container's monitor (the parent of its init). */
export async function bundleOf(client: Client, container: string): Promise<string> {
  const init = (await client.inspect(container)).process!.pid;
  const monitor = Number(/^PPid:\s+(\d+)/m.exec(await readFile(`/proc/${init}/status`, "utf8"))?.[1]);
  const args = (await readFile(`/proc/${monitor}/cmdline`, "utf8")).split("\0");
  const bundle = args[args.indexOf("--bundle") + 1];
  if (!args[0]!.endsWith("skiff-monitor") || bundle === undefined)
    throw new Error(`bench: the parent of ${container}'s init is not a skiff-monitor`);
  return bundle;
}

/** A free loopback TCP port (the kernel's choice, released again). */
async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, "close");
  return port;
}

/** Connects, writes one line as soon as the connection is up, resolves with write -> echoed line (ms). */
async function echoRoundTrip(port: number, line = "ping\n"): Promise<number> {
  const socket = tcpConnect(port, "127.0.0.1");
  try {
    await once(socket, "connect");
    const t0 = performance.now();
    socket.write(line);
    let got = "";
    for await (const chunk of socket as AsyncIterable<Buffer>) {
      got += chunk.toString();
      if (got.includes("\n")) return performance.now() - t0;
    }
    throw new Error(`bench: the echo server closed after ${JSON.stringify(got)}`);
  } finally {
    socket.destroy();
  }
}

async function waitForEcho(port: number): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      await echoRoundTrip(port);
      return;
    } catch (e) {
      if (i > 200) throw e;
      await sleep(25);
    }
  }
}

/** docs/footprint.md: a pause answered within 1 ms (p50). */
const PAUSE_TARGET_MS = 1;

/**
 * The least any freeze can cost from a Node process: write FROZEN to the container's freezer.state and
 * read it until it says FROZEN (synchronous accesses, re-reading on the next event loop turn), then thaw
 * the same way.
 */
async function rawFreeze(stateFile: string, value: "FROZEN" | "THAWED"): Promise<void> {
  writeFileSync(stateFile, value);
  for (let i = 0; readFileSync(stateFile, "utf8").trim() !== value; i++) {
    if (i > 100_000) throw new Error(`bench: ${stateFile} never became ${value}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/**
 * Pause and resume round trips beside `runc pause`/`runc resume` of a container of a private root, and
 * beside a raw freezer write to the paused container's own cgroup.
 */
async function freezeLines(h: ContainerHarness, sleeper: string, runc: RuncBaseline): Promise<string[]> {
  const stateFile = `/sys/fs/cgroup/freezer/${h.cgroup}/${sleeper.slice(0, sleeper.indexOf(":"))}/freezer.state`;
  const root = await mkdtemp(join(tmpdir(), "skiff-bench-power-runc-"));
  const id = `pause-${h.id}`;
  const runcCli = (...args: string[]) => execFileAsync("runc", ["--root", root, ...args]);
  try {
    const bundle = await runc.bundle("pause", ["/bin/sleep", "1000"]);
    // Not execFile: the detached container inherits runc's stdio, so pipes would never reach EOF.
    const starter = spawn("runc", ["--root", root, "run", "-d", "--bundle", bundle, id], { stdio: "ignore" });
    const [code] = (await once(starter, "exit")) as [number | null];
    if (code !== 0) throw new Error(`bench: runc run -d exited with ${code}`);
    const [pauses, resumes, runcPauses, runcResumes, rawFreezes]: [
      number[],
      number[],
      number[],
      number[],
      number[],
    ] = [[], [], [], [], []];
    // Interleaved, so that load from elsewhere hits both alike; round 0 warms up.
    for (let round = 0; round <= FREEZE_ROUNDS; round++) {
      const pause = await timed(() => h.client.pause(sleeper));
      const resume = await timed(() => h.client.resume(sleeper));
      const runcPause = await timed(() => runcCli("pause", id));
      const runcResume = await timed(() => runcCli("resume", id));
      const raw = await timed(() => rawFreeze(stateFile, "FROZEN"));
      await rawFreeze(stateFile, "THAWED");
      if (round === 0) continue;
      rawFreezes.push(raw);
      pauses.push(pause);
      resumes.push(resume);
      runcPauses.push(runcPause);
      runcResumes.push(runcResume);
    }
    return [
      versus(
        `freeze: pause request -> answer (${FREEZE_ROUNDS} runs)`,
        p50p99(pauses),
        `runc pause ${p50p99(runcPauses)}`,
        ratio50(pauses, runcPauses),
      ),
      versusTarget(
        "freeze: pause request -> answer",
        p50p99(pauses),
        `raw freezer write + read until FROZEN ${p50p99(rawFreezes)}`,
        ratio50(pauses, rawFreezes),
        { text: `p50 <= ${PAUSE_TARGET_MS} ms`, met: percentile(pauses, 50) <= PAUSE_TARGET_MS },
      ),
      versus(
        `thaw: resume request -> answer (${FREEZE_ROUNDS} runs)`,
        p50p99(resumes),
        `runc resume ${p50p99(runcResumes)}`,
        ratio50(resumes, runcResumes),
      ),
    ];
  } finally {
    await runcCli("delete", "--force", id).catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  }
}

async function wakeLines(
  h: ContainerHarness,
  clock: NotificationClock,
  echo: string,
  port: number,
): Promise<string[]> {
  const proxyPort = await freePort();
  await h.client.proxyWakeChannel(echo, "echo", `tcp://127.0.0.1:${proxyPort}`, `tcp://127.0.0.1:${port}`);
  const suspender = await h.newClient();
  const [asleep, awake, direct, toAwake]: [number[], number[], number[], number[]] = [[], [], [], []];
  for (let round = 0; round <= WAKE_ROUNDS; round++) {
    const from = clock.mark;
    const suspended = suspender.suspend(echo);
    await clock.next((n) => n.type === "power" && n.container === echo && n.state === "asleep", from);
    const t0 = performance.now();
    const wake = echoRoundTrip(proxyPort);
    const thawed = clock.next((n) => n.type === "power" && n.container === echo && n.state === "awake", from);
    const replied = await wake;
    const thawedAt = (await thawed).at - t0;
    const { resumeReason } = await suspended;
    if (resumeReason !== "echo") throw new Error(`bench: woken by ${resumeReason}, not by the proxy`);
    await h.client.proxyHandled(echo, "echo");

    const straight = await echoRoundTrip(port);
    const throughProxy = await echoRoundTrip(proxyPort);
    await h.client.proxyHandled(echo, "echo");
    if (round === 0) continue; // warm-up
    asleep.push(replied);
    awake.push(thawedAt);
    direct.push(straight);
    toAwake.push(throughProxy);
  }
  const baseline = `straight to the running server's port ${p50p99(direct)}`;
  return [
    versus(
      `wake: first byte to the proxy of a suspended echo server -> reply (${WAKE_ROUNDS} runs)`,
      p50p99(asleep),
      baseline,
      ratio50(asleep, direct),
    ),
    `  of which first byte -> awake notification at the client: ${p50p99(awake)}`,
    versus(
      `same request through the proxy of the awake server (${WAKE_ROUNDS} runs)`,
      p50p99(toAwake),
      baseline,
      ratio50(toAwake, direct),
    ),
  ];
}

async function cpuLines(
  h: ContainerHarness,
  clock: NotificationClock,
  spin: string,
  group: string,
): Promise<string[]> {
  const usage = async () => Number(await readFile(`${group}/cpuacct.usage`, "utf8"));
  await h.client.start(spin);
  try {
    await sleep(200); // past the exec of the shell
    const running0 = await usage();
    await sleep(RUNNING_MS);
    const running = ((await usage()) - running0) * (SUSPENDED_MS / RUNNING_MS);

    const suspender = await h.newClient();
    const from = clock.mark;
    const suspended = suspender.suspend(spin, { maxSleepMs: SUSPENDED_MS + 500 });
    await clock.next((n) => n.type === "power" && n.container === spin && n.state === "asleep", from);
    const asleep0 = await usage();
    await sleep(SUSPENDED_MS);
    const asleep = (await usage()) - asleep0;
    const { resumeReason } = await suspended;
    if (resumeReason !== "max_sleep") throw new Error(`bench: the busy loop woke early: ${resumeReason}`);
    const cpu = (ns: number) => `${(ns / 1e6).toFixed(3)} ms CPU`;
    return [
      versus(
        `CPU of a suspended busy loop over ${SUSPENDED_MS / 1000} s (cpuacct.usage)`,
        cpu(asleep),
        `running ${RUNNING_MS / 1000} s, scaled x${SUSPENDED_MS / RUNNING_MS} ${cpu(running)}`,
        asleep / running,
      ),
    ];
  } finally {
    await h.client.stop(spin, 1);
  }
}

/** The freeze and thaw figures alone (`npm run bench -- freeze`): one sleeping container. */
export async function benchFreeze(): Promise<string[]> {
  const h = await ContainerHarness.create();
  let runc: RuncBaseline | undefined;
  try {
    const sleeper = await h.add(h.name("sleeper"), "/bin/sleep", ["1000"]);
    await h.startDaemon();
    await h.client.start(sleeper);
    runc = await RuncBaseline.fromBundle(await bundleOf(h.client, sleeper));
    const lines = await freezeLines(h, sleeper, runc);
    await h.client.stop(sleeper, 1);
    return lines;
  } finally {
    await runc?.cleanup();
    await h.close();
  }
}

export async function benchPower(): Promise<string[]> {
  const h = await ContainerHarness.create();
  let runc: RuncBaseline | undefined;
  let clock: NotificationClock | undefined;
  try {
    const port = await freePort();
    const sleeper = await h.add(h.name("sleeper"), "/bin/sleep", ["1000"]);
    const echo = await h.add(
      h.name("echo"),
      "/bin/nc",
      ["-ll", "-p", String(port), "-e", "/bin/cat"],
      "network: host\n",
    );
    const spin = await h.add(h.name("spin"), "/bin/sh", ["-c", "while :; do :; done"]);
    await h.startDaemon();
    clock = await NotificationClock.open(h.url);

    await h.client.start(sleeper);
    runc = await RuncBaseline.fromBundle(await bundleOf(h.client, sleeper));
    const lines = await freezeLines(h, sleeper, runc);
    await h.client.stop(sleeper, 1);

    await h.client.start(echo);
    await waitForEcho(port);
    lines.push(...(await wakeLines(h, clock, echo, port)));
    await h.client.stop(echo, 1);

    const group = `/sys/fs/cgroup/cpuacct/${h.cgroup}/${spin.slice(0, spin.indexOf(":"))}`;
    lines.push(...(await cpuLines(h, clock, spin, group)));
    return lines;
  } finally {
    clock?.close();
    await runc?.cleanup();
    await h.close();
  }
}
