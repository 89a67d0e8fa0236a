import assert from "node:assert/strict";
import { randomInt } from "node:crypto";
import { readFile } from "node:fs/promises";
import { connect as netConnect, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { RuntimeError } from "../../../src/client/index.js";
import type { Notification } from "../../../src/protocol/messages.js";
import { readCpuUsageUs, readFreezerState } from "../../helpers/cgroupfs.js";
import { ContainerHarness } from "../../helpers/containers.js";
import { waitFor } from "../../helpers/wait.js";

type PowerNote = Extract<Notification, { type: "power" }>;

/** A line client of a proxy: sends lines, reads the echoed lines. */
async function lineClient(
  port: number,
): Promise<{ socket: Socket; lines: string[]; waitLines(n: number): Promise<void> }> {
  const socket = netConnect({ host: "127.0.0.1", port });
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  const lines: string[] = [];
  let buffer = "";
  socket.on("data", (d: Buffer) => {
    buffer += d.toString();
    let nl;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      lines.push(buffer.slice(0, nl));
      buffer = buffer.slice(nl + 1);
    }
  });
  return {
    socket,
    lines,
    async waitLines(n) {
      await waitFor(() => lines.length >= n, {
        timeoutMs: 20_000,
        what: `${n} echoed lines`,
        detail: () => `got ${JSON.stringify(lines)}`,
      });
    },
  };
}

/** Waits until something accepts TCP connections on the port (the echo server is up). */
async function waitForPort(port: number): Promise<void> {
  await waitFor(
    () =>
      new Promise<boolean>((resolve) => {
        const s = netConnect({ host: "127.0.0.1", port });
        s.once("connect", () => (s.destroy(), resolve(true)));
        s.once("error", () => resolve(false));
      }),
    { timeoutMs: 30_000, what: `something to listen on port ${port}` },
  );
}

describe("suspend, wake locks, wake sources and proxy channels (real freezer, real sockets)", () => {
  let h: ContainerHarness;
  let echo: string;
  let busy: string;
  const echoPort = randomInt(20000, 30000);
  const proxyPort = echoPort + 1;
  before(async () => {
    h = await ContainerHarness.create();
    // A persistent echo server on the host network: each connection runs cat.
    echo = await h.add(
      h.name("echo"),
      "/bin/nc",
      ["-ll", "-p", String(echoPort), "-e", "/bin/cat"],
      "network: host\n",
    );
    busy = await h.add(h.name("busy"), "/bin/sh", ["-c", "while true; do :; done"]);
    await h.startDaemon();
    await h.client.start(echo);
    await waitForPort(echoPort);
    await h.client.proxyWakeChannel(
      echo,
      "rpc",
      `tcp://127.0.0.1:${proxyPort}`,
      `tcp://127.0.0.1:${echoPort}`,
      "newline",
    );
  });
  after(() => h.close());

  const powerNotes = (from: number): PowerNote[] =>
    h.notifications.slice(from).filter((n): n is PowerNote => n.type === "power" && n.container === echo);

  it("suspend, then one message on the proxy: woken by the proxy, the reply arrives, the counter is 1 until handled", async () => {
    const from = h.notifications.length;
    const suspended = (await h.newClient()).suspend(echo);
    await h.waitFor((n) => n.type === "power" && n.container === echo && n.state === "asleep", 5000, from);
    const peer = await lineClient(proxyPort);
    peer.socket.write("hello\n");
    const { suspendTime, resumeReason } = await suspended;
    assert.equal(resumeReason, "rpc");
    assert.ok(suspendTime > 0);
    await peer.waitLines(1);
    assert.deepEqual(peer.lines, ["hello"]);
    assert.equal((await h.client.power(echo)).counters.rpc, 1);
    await h.client.proxyHandled(echo, "rpc");
    assert.equal((await h.client.power(echo)).counters.rpc, 0);
    assert.deepEqual(
      powerNotes(from).map((n) => n.state),
      ["asleep", "awake"],
    );
    peer.socket.destroy();
  });

  it("a held wake lock: wake_locks_exist, the container keeps running, watchers see no asleep", async () => {
    const from = h.notifications.length;
    await h.client.acquireWakeLock(echo, "busy");
    assert.deepEqual(
      (await h.client.inspect(echo)).power?.locks,
      [{ name: "busy", holder: "host" }],
      "listed in inspect",
    );
    await assert.rejects(
      (await h.newClient()).suspend(echo),
      (e: unknown) => e instanceof RuntimeError && e.variant === "wake_locks_exist",
    );
    assert.equal((await h.client.power(echo)).state, "awake");
    assert.deepEqual(powerNotes(from), []);
    await h.client.releaseWakeLock(echo, "busy");
  });

  it("a counter already at 1: ok at once naming the proxy; watchers see asleep then awake", async () => {
    const peer = await lineClient(proxyPort);
    peer.socket.write("pending\n");
    await peer.waitLines(1);
    const from = h.notifications.length;
    const { resumeReason } = await (await h.newClient()).suspend(echo);
    assert.equal(resumeReason, "rpc");
    await waitFor(() => powerNotes(from).length >= 2, {
      timeoutMs: 20_000,
      what: "the asleep and awake notifications",
    });
    assert.deepEqual(
      powerNotes(from).map((n) => n.state),
      ["asleep", "awake"],
    );
    const [a, b] = powerNotes(from);
    assert.ok(b!.sequence > a!.sequence);
    await h.client.proxyHandled(echo, "rpc");
    peer.socket.destroy();
  });

  it("three messages in a burst while frozen: all delivered in order, counter 3, one wake", async () => {
    const from = h.notifications.length;
    const peer = await lineClient(proxyPort);
    const suspended = (await h.newClient()).suspend(echo);
    await h.waitFor((n) => n.type === "power" && n.container === echo && n.state === "asleep", 5000, from);
    peer.socket.write("one\ntwo\nthree\n");
    assert.equal((await suspended).resumeReason, "rpc");
    await peer.waitLines(3);
    assert.deepEqual(peer.lines, ["one", "two", "three"]);
    assert.equal((await h.client.power(echo)).counters.rpc, 3);
    assert.deepEqual(
      powerNotes(from).map((n) => n.state),
      ["asleep", "awake"],
    );
    await h.client.proxyHandled(echo, "rpc", 3);
    peer.socket.destroy();
  });

  // The time slept is not asserted (no durations in tests): the reason says max_sleep ended it.
  it("no wake sources returns at once; a maximum sleep ends with the timeout reason", async () => {
    const quiet = await h.add(h.name("quiet"), "/bin/sleep", ["1000"]);
    const data = await readFile(`${h.dir}/repo/${quiet.replace(":1.0.0", "")}-1.0.0.npk`);
    await h.client.install("default", data.length, data).catch(() => undefined);
    await h.client.start(quiet);
    try {
      assert.equal((await (await h.newClient()).suspend(quiet)).resumeReason, "no_wake_sources");
      const r = await (await h.newClient()).suspend(quiet, { maxSleepMs: 300 });
      assert.equal(r.resumeReason, "max_sleep");
      assert.ok(r.suspendTime > 0);
    } finally {
      await h.client.stop(quiet);
    }
  });

  it("a removed source does not wake the container", async () => {
    // The timer would fire at 800 ms; removed as soon as the container sleeps, it must not wake
    // it: the sleep ends by max_sleep, not by "alarm".
    await h.client.addWakeSource(echo, "alarm", { type: "timer", after_ms: 800 });
    const from = h.notifications.length;
    const suspended = (await h.newClient()).suspend(echo, { maxSleepMs: 1600 });
    await h.waitFor((n) => n.type === "power" && n.container === echo && n.state === "asleep", 5000, from);
    await h.client.removeWakeSource(echo, "alarm");
    const r = await suspended;
    assert.equal(r.resumeReason, "max_sleep");
  });

  it("two concurrent suspends are served in order with separate answers", async () => {
    const [c1, c2] = [await h.newClient(), await h.newClient()];
    const [a, b] = await Promise.all([
      c1.suspend(echo, { maxSleepMs: 200 }),
      c2.suspend(echo, { maxSleepMs: 200 }),
    ]);
    assert.equal(a.resumeReason, "max_sleep");
    assert.equal(b.resumeReason, "max_sleep");
  });

  it("pause twice is a no-op, resume of a running container is an error, a paused container is frozen", async () => {
    await h.client.start(busy);
    try {
      await h.client.pause(busy);
      await h.client.pause(busy);
      const cgroup = `/${h.cgroup}/${busy.slice(0, busy.indexOf(":"))}`;
      // The kernel's word (freezer.state on v1, cgroup.events on v2) rather than a CPU window.
      assert.equal(await readFreezerState(cgroup), "frozen");
      // cpuacct.usage on v1, cpu.stat usage_usec on v2.
      const usage = (): Promise<number> => readCpuUsageUs(cgroup);
      const before = await usage();
      await h.client.resume(busy);
      assert.equal(await readFreezerState(cgroup), "thawed");
      await waitFor(async () => (await usage()) > before, {
        timeoutMs: 20_000,
        what: "the resumed busy loop to use CPU again",
      });
      await assert.rejects(h.client.resume(busy), (e: unknown) => e instanceof RuntimeError);
    } finally {
      await h.client.stop(busy);
    }
  });

  it("kill while suspended: every process dies, the pending suspend ends with an error", async () => {
    const from = h.notifications.length;
    const suspended = (await h.newClient()).suspend(echo).then(
      () => "ok",
      (e: unknown) => (e instanceof RuntimeError ? e.variant : String(e)),
    );
    await h.waitFor((n) => n.type === "power" && n.container === echo && n.state === "asleep", 5000, from);
    await h.client.kill(echo, 9);
    const status = await h.waitForExit(echo, from);
    assert.equal(status.type, "signalled");
    assert.equal(await suspended, "suspend_failure");
  });
});
