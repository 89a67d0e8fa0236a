/**
 * Connections made exactly as Northstar 0.9.2's client makes them get only lines its model
 * decodes. Every such connection is a StrictNorthstarPeer: a line it cannot decode fails the test.
 */
import assert from "node:assert/strict";
import { copyFile, chmod, readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { ContainerHarness } from "../../helpers/containers.js";
import { PACKAGE_ROOT, startInProcessDaemon } from "../../helpers/daemon.js";
import { StrictNorthstarPeer } from "../../helpers/northstar-strict.js";
import { waitFor } from "../../helpers/wait.js";

type Line = Record<string, unknown>;

/** A Northstar subscriber that reads every notification in the background. */
class Subscriber {
  readonly notifications: Line[] = [];
  ended = false;
  error: Error | undefined;
  private constructor(readonly peer: StrictNorthstarPeer) {}

  static async open(url: string): Promise<Subscriber> {
    const peer = await StrictNorthstarPeer.open(url);
    assert.deepEqual(await peer.connect(true), { connect_ack: null });
    const s = new Subscriber(peer);
    void s.run();
    return s;
  }

  private async run(): Promise<void> {
    try {
      for (;;) {
        const m = await this.peer.next();
        if (m === null) break;
        this.notifications.push(m.notification as Line);
      }
    } catch (e) {
      this.error = e as Error;
    }
    this.ended = true;
  }

  async waitFor(match: (n: Line) => boolean, what: string, timeoutMs = 20_000): Promise<Line> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.error) throw this.error;
      const found = this.notifications.find(match);
      if (found) return found;
      if (this.ended || Date.now() > deadline) {
        throw new Error(`no ${what}; got ${JSON.stringify(this.notifications)}`);
      }
      await sleep(20);
    }
  }
}

const key = (n: Line | string): string => (typeof n === "string" ? n : Object.keys(n)[0]!);
const exitOf =
  (container: string) =>
  (n: Line): boolean =>
    key(n) === "exit" && (n.exit as unknown[])[0] === container;

describe("the Northstar dialect on a real daemon", () => {
  let h: ContainerHarness;
  let sub: Subscriber;
  let req: StrictNorthstarPeer;
  let quick: string;
  let sleeper: string;
  let rebooter: string;
  let extended: string;
  const peers: StrictNorthstarPeer[] = [];

  before(async () => {
    h = await ContainerHarness.create();
    quick = await h.add(h.name("quick"), "/bin/sh", ["-c", "exit 3"]);
    sleeper = await h.add(h.name("sleeper"), "/bin/sleep", ["1000"]);
    // reboot(2) in a PID namespace needs CAP_SYS_BOOT; it reboots after every start.
    rebooter = await h.add(
      h.name("rebooter"),
      "/bin/sh",
      ["-c", "sleep 0.2; reboot -f"],
      "capabilities: [CAP_SYS_BOOT]\n",
    );
    extended = await h.add(
      h.name("extended"),
      "/bin/sleep",
      ["1000"],
      `restart:\n  policy: "no"\nstop_timeout: 2s\nprepare: false\ngroup: grp\nconsole:\n  permissions: [ident, inspect, health, wake_lock]\ncgroups:\n  memory:\n    oom_monitor: false\n  pids:\n    max: 20\n`,
    );
    // The health flip needs a runtime binary the test may rename away.
    const runtime = join(h.dir, "runc");
    await copyFile("/usr/sbin/runc", runtime);
    await chmod(runtime, 0o755);
    await h.startDaemon(`[runtime]\nkind = "runc"\npath = "${runtime}"\n[groups.grp]\nmax_containers = 10\n`);
    sub = await Subscriber.open(h.url);
    peers.push(sub.peer);
    req = await StrictNorthstarPeer.open(h.url);
    peers.push(req);
    assert.deepEqual(await req.connect(false), { connect_ack: null });
  });

  after(async () => {
    for (const p of peers) {
      p.close();
      assert.deepEqual(p.violations, [], "every line decodes as Northstar 0.9.2's model");
    }
    await h.close();
  });

  it("install (a signed example package) and its notification", async () => {
    const npk = await readFile(join(PACKAGE_ROOT, "examples/build/memeater-0.0.1.npk"));
    req.send({ request: { install: { repository: "default", size: npk.length } } });
    req.socket.write(npk);
    const m = await req.next();
    assert.deepEqual(m, { response: { install: { ok: { container: "memeater:0.0.1" } } } });
    await sub.waitFor((n) => key(n) === "install" && n.install === "memeater:0.0.1", "install");
  });

  it("start, exit by code and by signal", async () => {
    assert.deepEqual(
      await req.request({ start: { container: quick, init: null, arguments: [], environment: {} } }),
      {
        start: { ok: { container: quick } },
      },
    );
    await sub.waitFor((n) => key(n) === "started" && n.started === quick, "started");
    const exit = await sub.waitFor(exitOf(quick), "exit by code");
    assert.deepEqual(exit, { exit: [quick, { exit: { code: 3 } }] });

    await req.request({ start: { container: sleeper, init: null, arguments: [], environment: {} } });
    await sub.waitFor((n) => key(n) === "started" && n.started === sleeper, "started");
    assert.deepEqual(await req.request({ kill: { container: sleeper, signal: 15 } }), {
      kill: { ok: { container: sleeper } },
    });
    const killed = await sub.waitFor(exitOf(sleeper), "exit by signal");
    assert.deepEqual(killed, { exit: [sleeper, { signalled: { signal: 15 } }] });
  });

  it("OOM: c_group without Skiff's oom_group_kill, exit by signal 9 without oom", async () => {
    const eater = "memeater:0.0.1";
    await req.request({ start: { container: eater, init: null, arguments: [], environment: {} } });
    const cgroup = await sub.waitFor(
      (n) => key(n) === "c_group" && (n.c_group as unknown[])[0] === eater,
      "c_group",
    );
    assert.ok(cgroup);
    assert.deepEqual(await sub.waitFor(exitOf(eater), "OOM exit"), {
      exit: [eater, { signalled: { signal: 9 } }],
    });
  });

  it("a self-reboot reads exit then started", async () => {
    await req.request({ start: { container: rebooter, init: null, arguments: [], environment: {} } });
    await sub.waitFor(exitOf(rebooter), "reboot exit");
    const index = sub.notifications.findIndex(exitOf(rebooter));
    await sub.waitFor(
      (n) => key(n) === "started" && n.started === rebooter && sub.notifications.indexOf(n) > index,
      "started after the reboot",
    );
    // Stop the loop: it reboots again after each start.
    await req.request({ kill: { container: rebooter, signal: 9 } });
  });

  it("inspect of a package with Skiff extensions: Northstar's manifest, Northstar's statistics", async () => {
    await req.request({ start: { container: extended, init: null, arguments: [], environment: {} } });
    const r = (await req.request({ inspect: { container: extended } })) as {
      inspect: { ok: { data: { manifest: Line; process: { statistics: Line } } } };
    };
    const { manifest, process } = r.inspect.ok.data;
    for (const k of ["restart", "stop_timeout", "prepare", "group", "power"])
      assert.equal(manifest[k], undefined);
    assert.deepEqual(manifest.console, { permissions: ["ident", "inspect"] });
    for (const k of Object.keys(process.statistics)) assert.ok(["blkio", "cpu", "memory"].includes(k), k);
    await req.request({ kill: { container: extended, signal: 9 } });
    await sub.waitFor(exitOf(extended), "exit");
  });

  it("tokens: create and verify", async () => {
    // A host client's identity is `extern`: a token it makes for `extern` verifies on its own
    // connection as made by `extern` (docs/northstar.md, Tokens).
    const shared = Buffer.from("hello").toString("base64");
    const t = (await req.request({ token_create: { target: "extern", shared } })) as { token: string };
    assert.deepEqual(await req.request({ token_verify: { token: t.token, user: "extern", shared } }), {
      token_verification: "Ok",
    });
    assert.deepEqual(await req.request({ token_verify: { token: t.token, user: "other", shared } }), {
      token_verification: "Invalid",
    });
  });

  it("a health flip: no health notification, a refused start is Northstar's error", async () => {
    const runtime = join(h.dir, "runc");
    await rename(runtime, `${runtime}.away`);
    try {
      const first = (await req.request({
        start: { container: quick, init: null, arguments: [], environment: {} },
      })) as { start: Line };
      assert.ok("error" in first.start);
      // Skiff's client asks for health (which probes the runtime); the executor is degraded
      // from then on, and the Northstar subscriber must not see Skiff's `health` notification.
      assert.equal((await h.client.health()).status, "degraded");
      const refused = JSON.stringify(
        await req.request({ start: { container: quick, init: null, arguments: [], environment: {} } }),
      );
      assert.match(refused, /"unexpected":\{"error":"executor degraded: /);
    } finally {
      await rename(`${runtime}.away`, runtime);
    }
    assert.equal((await h.client.health()).status, "ok");
    // Once healthy again a start works and the subscriber still reads (no `health` line).
    const from = sub.notifications.length;
    await req.request({ start: { container: quick, init: null, arguments: [], environment: {} } });
    await sub.waitFor((n) => exitOf(quick)(n) && sub.notifications.indexOf(n) >= from, "exit after the flip");
  });

  it("a malformed line closes the connection without an error envelope", async () => {
    const p = await StrictNorthstarPeer.open(h.url);
    peers.push(p);
    await p.connect(false);
    p.send("this is not json");
    assert.equal(await p.next(), null);
    const q = await StrictNorthstarPeer.open(h.url);
    peers.push(q);
    await q.connect(false);
    q.send({ request: "health" });
    assert.equal(await q.next(), null, "a Skiff request closes a Northstar connection");
  });

  it("shutdown: response and notification", async () => {
    assert.deepEqual(await req.request("shutdown"), "shutdown");
    await sub.waitFor((n) => (n as unknown) === "shutdown", "shutdown notification");
    await h.daemonExited();
  });
});

describe("the Northstar dialect: Skiff-only notifications and lag", () => {
  it("skips Skiff-only notifications, turns restarted into started, and disconnects a lagging subscriber", async () => {
    const d = await startInProcessDaemon(`notification_buffer_size = 16`);
    const peers: StrictNorthstarPeer[] = [];
    try {
      const reader = await StrictNorthstarPeer.open(d.url);
      const slow = await StrictNorthstarPeer.open(d.url);
      peers.push(reader, slow);
      assert.deepEqual(await reader.connect(true), { connect_ack: null });
      assert.deepEqual(await slow.connect(true), { connect_ack: null });
      await waitFor(() => d.runtime.hub.size >= 2, { timeoutMs: 20_000, what: "both subscriptions" });
      const hub = d.runtime.hub;
      hub.broadcast({ type: "health", health: { status: "degraded", problems: ["x"] } });
      hub.broadcast({ type: "power", container: "a:1.0.0", state: "asleep", sequence: 1, time_ms: 1 });
      hub.broadcast({ type: "lagged", missed: 1 });
      hub.broadcast({ type: "restarted", container: "a:1.0.0" });
      assert.deepEqual(await reader.next(), { notification: { started: "a:1.0.0" } });

      slow.socket.pause();
      // The reader keeps up meanwhile and is never cut.
      const readerDone = (async () => {
        for (;;) {
          const m = await reader.next();
          assert.ok(m !== null, "the reader was not cut");
          if (JSON.stringify(m).includes("n19999:1.0.0")) return;
        }
      })();
      for (let i = 0; i < 20_000; i++) {
        hub.broadcast({ type: "install", container: `n${i}:1.0.0` });
        if (i % 100 === 0) await new Promise((r) => setImmediate(r));
      }
      await readerDone;
      slow.socket.resume();
      // It reads what was sent before the cut (every line decodable), then the end, never `lagged`.
      const got: unknown[] = [];
      for (let m = await slow.next(); m !== null; m = await slow.next()) got.push(m);
      assert.deepEqual(got[0], { notification: { started: "a:1.0.0" } });
      const installs = got.slice(1);
      assert.ok(
        installs.length > 0 && installs.length < 20_000,
        `the lagging subscriber was cut (${installs.length})`,
      );
      installs.forEach((m, i) => assert.deepEqual(m, { notification: { install: `n${i}:1.0.0` } }));
    } finally {
      for (const p of peers) {
        p.close();
        assert.deepEqual(p.violations, []);
      }
      await d.stop();
    }
  });
});
