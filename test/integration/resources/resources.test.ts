import assert from "node:assert/strict";
import { access, readFile, writeFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { RuntimeError } from "../../../src/client/index.js";
import type { Notification } from "../../../src/protocol/messages.js";
import { sharesToWeight } from "../../../src/daemon/cgroups/limits.js";
import {
  cgroupDir,
  controllerVersion,
  hostLayout,
  readControl,
  readMemoryLimit,
} from "../../helpers/cgroupfs.js";
import { ContainerHarness } from "../../helpers/containers.js";
import { waitFor as waitForCondition } from "../../helpers/wait.js";

const EATER = ["-c", 's=x; while true; do s="$s$s"; done'];
const MiB = 1024 * 1024;

const exists = (path: string): Promise<boolean> =>
  access(path).then(
    () => true,
    () => false,
  );

describe("resources: cgroups, memory events, groups and limits", () => {
  const running = async (): Promise<string[]> => {
    const ids = await h.client.list();
    const out: string[] = [];
    for (const id of ids) if ((await h.client.inspect(id)).process) out.push(id);
    return out;
  };
  let h: ContainerHarness;
  let eater: string;
  let groupEater: string;
  let limited: string;
  let groupA: string;
  let groupB: string;
  let busy: string[];
  before(async () => {
    h = await ContainerHarness.create();
    eater = await h.add(
      h.name("eater"),
      "/bin/sh",
      EATER,
      `cgroups:\n  memory:\n    oom_monitor: true\n    memory_hard_limit: ${32 * MiB}\n    swappiness: 0\n`,
    );
    // Eats only on SIGUSR1, so the test can set memory.oom.group first.
    groupEater = await h.add(
      h.name("geater"),
      "/bin/sh",
      ["-c", `trap '${EATER[1]!}' USR1; echo ready; while true; do sleep 1; done`],
      `cgroups:\n  memory:\n    oom_monitor: true\n    memory_hard_limit: ${32 * MiB}\n`,
    );
    limited = await h.add(
      h.name("limited"),
      "/bin/sleep",
      ["1000"],
      `cgroups:\n  memory:\n    oom_monitor: false\n    memory_hard_limit: ${48 * MiB}\n  cpu:\n    shares: 512\n    quota: 50000\n    period: 100000\n  pids:\n    max: 42\n`,
    );
    // Each eater alone stays under 40 MiB; together they exceed the group's 64 MiB.
    const half = `s=x; while [ \${#s} -lt 20000000 ]; do s="$s$s"; done; sleep 1000`;
    groupA = await h.add(h.name("ga"), "/bin/sh", ["-c", half], "group: shared\n");
    groupB = await h.add(h.name("gb"), "/bin/sh", ["-c", half], "group: shared\n");
    busy = [];
    for (let i = 0; i < 3; i++)
      busy.push(await h.add(h.name(`busy${i}`), "/bin/sleep", ["1000"], "group: small\n"));
    await h.startDaemon(`max_containers = 4
[groups.shared]
memory = "64M"
[groups.small]
max_containers = 2
[metrics]
url = "tcp://127.0.0.1:0"
`);
  });
  after(() => h.close());

  it("an OOM kill gives a c_group notification and an exit by signal 9 with oom: true", async () => {
    const from = h.notifications.length;
    await h.client.start(eater);
    // Earlier events may count only `max` (the limit was hit); one counts the kill.
    const cgroup = (await h.waitFor(
      (n) => n.type === "c_group" && n.container === eater && (n.memory.oom_kill ?? 0) >= 1,
      10_000,
      from,
    )) as Extract<Notification, { type: "c_group" }>;
    assert.ok((cgroup.memory.oom_kill ?? 0) >= 1, JSON.stringify(cgroup.memory));
    // Reaching the limit counts `max` (v1: memory.failcnt; v2: memory.events), and on v2 the kernel's OOM
    // handler also counts `oom` in memory.events, each in this or an earlier notification.
    const events = h.notifications
      .slice(from)
      .filter((n) => n.type === "c_group" && n.container === eater) as Extract<
      Notification,
      { type: "c_group" }
    >[];
    const total = (field: "max" | "oom"): number =>
      events.reduce((sum, n) => sum + (n.memory[field] ?? 0), 0);
    assert.ok(total("max") >= 1, JSON.stringify(events.map((n) => n.memory)));
    if ((await controllerVersion("memory")) === 2) {
      assert.ok(total("oom") >= 1, JSON.stringify(events.map((n) => n.memory)));
    }
    const status = await h.waitForExit(eater, from);
    assert.deepEqual(status, { type: "signalled", signal: 9, reason: "shutdown", oom: true });
  });

  it("on cgroup v2, an OOM kill of the whole group (memory.oom.group) counts oom_group_kill", async (t) => {
    if ((await controllerVersion("memory")) !== 2) {
      t.skip("memory.oom.group is cgroup v2's");
      return;
    }
    const from = h.notifications.length;
    await h.client.start(groupEater);
    await h.waitForLog(groupEater, "stdout ready", 60_000);
    const name = groupEater.slice(0, groupEater.indexOf(":"));
    await writeFile(`${await cgroupDir("memory", `/${h.cgroup}/${name}`)}/memory.oom.group`, "1");
    await h.client.kill(groupEater, 10); // SIGUSR1: start eating
    const cgroup = (await h.waitFor(
      (n) => n.type === "c_group" && n.container === groupEater && (n.memory.oom_group_kill ?? 0) >= 1,
      20_000,
      from,
    )) as Extract<Notification, { type: "c_group" }>;
    assert.ok((cgroup.memory.oom_group_kill ?? 0) >= 1, JSON.stringify(cgroup.memory));
    // The group kill took the container's init too.
    const status = await h.waitForExit(groupEater, from);
    assert.deepEqual(status, { type: "signalled", signal: 9, reason: "shutdown", oom: true });
  });

  it("limits land in the cgroup files; statistics are numbers that move", async () => {
    await h.client.start(limited);
    try {
      const name = limited.slice(0, limited.indexOf(":"));
      const cgroup = `/${h.cgroup}/${name}`;
      assert.equal(await readMemoryLimit(cgroup), 48 * MiB);
      if ((await controllerVersion("cpu")) === 1) {
        assert.equal(await readControl("cpu", cgroup, "cpu.shares"), "512");
        assert.equal(await readControl("cpu", cgroup, "cpu.cfs_quota_us"), "50000");
      } else {
        assert.equal(await readControl("cpu", cgroup, "cpu.weight"), String(sharesToWeight(512)));
        assert.match(await readControl("cpu", cgroup, "cpu.max"), /^50000 \d+$/);
      }
      assert.equal(await readControl("pids", cgroup, "pids.max"), "42");
      const stats = (await h.client.inspect(limited)).process!.statistics as {
        memory: { usage: number; limit: number };
        pids: { current: number; limit: number };
      };
      assert.equal(stats.memory.limit, 48 * MiB);
      assert.ok(stats.memory.usage > 0);
      assert.equal(stats.pids.limit, 42);
      assert.ok(stats.pids.current >= 1);
      // The Prometheus endpoint exports the same figures.
      const port = /metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(h.log)![1];
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      assert.match(text, /skiff_events_processed_total \d+/);
      assert.match(text, new RegExp(`container="${limited.replace(".", "\\.")}"`));
      // ... read from the files of this host's layout (v2: memory.max, pids.max, cpu.stat).
      const figure = (family: string): number | undefined => {
        const line = text
          .split("\n")
          .find((l) => l.startsWith(`skiff_container_${family}{`) && l.includes(`container="${limited}"`));
        return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
      };
      assert.equal(figure("memory_limit_bytes"), 48 * MiB);
      assert.equal(figure("pids_limit"), 42);
      assert.ok((figure("memory_usage_bytes") ?? 0) > 0, "memory usage exported");
      assert.equal(typeof figure("cpu_usage_seconds_total"), "number");
    } finally {
      await h.client.stop(limited);
    }
  });

  it("statistics grow while a container allocates", async () => {
    // tmpfs pages are charged to the writer's memory cgroup.
    const grower = await h.add(
      h.name("grower"),
      "/bin/sh",
      [
        "-c",
        "sleep 0.3; dd if=/dev/zero of=/tmp/fill bs=1048576 count=24 2>/dev/null; echo grown; sleep 1000",
      ],
      "",
      "  /tmp:\n    type: tmpfs\n    size: 64M\n",
    );
    const data = await readFile(`${h.dir}/repo/${grower.replace(":1.0.0", "")}-1.0.0.npk`);
    await h.client.install("default", data.length, data).catch(() => undefined);
    await h.client.start(grower);
    try {
      const before = ((await h.client.inspect(grower)).process!.statistics as { memory: { usage: number } })
        .memory.usage;
      await h.waitForLog(grower, "stdout grown");
      const after = ((await h.client.inspect(grower)).process!.statistics as { memory: { usage: number } })
        .memory.usage;
      assert.ok(after > before + 8 * MiB, `usage grew from ${before} to ${after}`);
    } finally {
      await h.client.stop(grower);
    }
  });

  it("two containers in a group with a 64 MiB limit cannot exceed it together", async () => {
    const from = h.notifications.length;
    try {
      await h.client.start(groupA);
      await h.client.start(groupB);
      const killed = await h.waitFor(
        (n) =>
          n.type === "exit" &&
          (n.container === groupA || n.container === groupB) &&
          n.status.type === "signalled" &&
          n.status.signal === 9,
        15_000,
        from,
      );
      assert.ok(killed.type === "exit" && killed.status.oom === true, JSON.stringify(killed));
      assert.equal(await readMemoryLimit(`/${h.cgroup}/shared`), 64 * MiB);
    } finally {
      for (const id of [groupA, groupB]) await h.client.stop(id).catch(() => undefined);
    }
  });

  it("max_containers of a group and of the daemon give limit_reached", async () => {
    assert.deepEqual(await running(), [], "nothing left running by earlier tests");
    await h.client.start(busy[0]!);
    await h.client.start(busy[1]!);
    await assert.rejects(h.client.start(busy[2]!), (e: unknown) => {
      assert.ok(e instanceof RuntimeError && e.variant === "limit_reached", String(e));
      assert.match(e.message, /groups\.small\.max_containers/);
      return true;
    });
    // Two running, the daemon allows four: two more fit, the fifth does not.
    await h.client.start(limited);
    const other = await h.add(h.name("other"), "/bin/sleep", ["1000"]);
    const data = await readFile(`${h.dir}/repo/${other.replace(":1.0.0", "")}-1.0.0.npk`);
    await h.client.install("default", data.length, data).catch(() => undefined);
    await h.client.start(other);
    await assert.rejects(
      h.client.start(eater),
      (e: unknown) =>
        e instanceof RuntimeError && e.variant === "limit_reached" && /max_containers/.test(e.message),
    );
    for (const id of [busy[0]!, busy[1]!, limited, other]) await h.client.stop(id);
  });

  it("after everything stopped and a shutdown, Skiff's subtree is gone", async () => {
    await h.client.start(limited);
    const name = limited.slice(0, limited.indexOf(":"));
    await h.client.kill(limited, 9);
    await h.waitForExit(limited, h.notifications.length - 1).catch(() => undefined);
    const layout = await hostLayout();
    // The exit notification may precede the removal of the cgroup by a moment: wait for it, bounded.
    for (const mount of layout.hierarchies) {
      await waitForCondition(async () => !(await exists(`${mount}/${h.cgroup}/${name}`)), {
        timeoutMs: 20_000,
        what: `the container's cgroup in ${mount} to be removed`,
      });
    }
    assert.ok(
      !/processes outlived the container's init/.test(h.log),
      "cgroup.procs was empty before removal",
    );
    assert.equal(await h.stopDaemon(), 0);
    // Every hierarchy of the host's layout: the v1 controllers and cgroup2 on a hybrid host, the one
    // cgroup2 on a pure v2 host.
    assert.ok(layout.hierarchies.length > 0);
    for (const mount of layout.hierarchies) {
      assert.equal(await exists(`${mount}/${h.cgroup}`), false, `subtree removed from ${mount}`);
    }
  });
});
