// The Skiff `statistics` request: one answer with the cgroup statistics of many running
// containers (what `inspect` shows per container), for `skiff stats` and the metrics endpoint.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { ContainerHarness } from "../../helpers/containers.js";

void describe("statistics request", () => {
  let h: ContainerHarness;
  let a: string;
  let b: string;
  let idle: string;
  before(async () => {
    h = await ContainerHarness.create();
    a = await h.add(h.name("stats-a"), "/bin/sleep", ["1000"]);
    b = await h.add(h.name("stats-b"), "/bin/sleep", ["1000"]);
    idle = await h.add(h.name("stats-idle"), "/bin/sleep", ["1000"]);
    await h.startDaemon();
    await h.client.start(a);
    await h.client.start(b);
  });
  after(() => h.close());

  void it("answers for every running container, and only those", async () => {
    const all = await h.client.statistics();
    assert.deepEqual(all.map((s) => s.container).sort(), [a, b].sort());
    for (const s of all) {
      const pids = s.statistics.pids as { current: number } | undefined;
      assert.ok(pids !== undefined && pids.current >= 1, JSON.stringify(s.statistics));
    }
  });

  void it("answers for the running ones among the named containers", async () => {
    const some = await h.client.statistics([b, idle, "missing:1.0.0"]);
    assert.deepEqual(
      some.map((s) => s.container),
      [b],
    );
  });

  void it("shows what inspect shows for one container", async () => {
    const [viaStatistics] = await h.client.statistics([a]);
    const viaInspect = (await h.client.inspect(a)).process!.statistics;
    assert.deepEqual(Object.keys(viaStatistics!.statistics).sort(), Object.keys(viaInspect).sort());
  });
});
