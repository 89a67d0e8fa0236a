/**
 * Checkpoint and restore through the OCI runtime and CRIU (docs/containers.md, "Checkpoint and
 * restore"). Where `criu check` fails (hybrid hosts, crun built without CRIU) the daemon answers
 * `unsupported`, which is tested there; the restore itself runs where CRIU works (the VM lane).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { RuntimeError } from "../../../src/client/index.js";
import type { HealthInfo } from "../../../src/protocol/messages.js";
import { ContainerHarness } from "../../helpers/containers.js";

/** Counts to LAST in memory, one line per step, then exits 7. */
const LAST = 300;
const COUNTER = `i=0; while [ $i -lt ${LAST} ]; do i=$((i+1)); echo "count $i"; sleep 0.05; done; exit 7`;
/** Dumps and restores take seconds under QEMU TCG. */
const SLOW_MS = 120_000;

function counts(lines: string[]): number[] {
  return lines.flatMap((l) => {
    const m = /^stdout count (\d+)$/.exec(l);
    return m ? [Number(m[1])] : [];
  });
}

describe("checkpoint and restore", () => {
  let h: ContainerHarness;
  let counter: string;
  let sleeper: string;
  let support: NonNullable<HealthInfo["checkpoint"]>;
  before(async () => {
    h = await ContainerHarness.create();
    counter = await h.add(h.name("counter"), "/bin/sh", ["-c", COUNTER]);
    sleeper = await h.add(h.name("sleeper"), "/bin/sleep", ["1000"]);
    await h.startDaemon();
    const health = await h.client.health();
    assert.ok(health.checkpoint, "health reports whether checkpoints work");
    support = health.checkpoint;
  });
  after(() => h.close());

  it("where CRIU does not work: checkpoint is `unsupported` with the reason, and the container runs on", async (t) => {
    if (support.supported) return t.skip("CRIU works on this host: the restore tests below run instead");
    assert.match(support.reason ?? "", /criu|crun/);
    await h.client.start(sleeper);
    await assert.rejects(h.client.checkpoint(sleeper), (e: unknown) => {
      assert.ok(e instanceof RuntimeError);
      assert.equal(e.error.type, "unsupported");
      assert.match((e.error as { request: string }).request, /^checkpoint: /);
      return true;
    });
    const inspected = await h.client.inspect(sleeper);
    assert.equal(inspected.state, "running");
    await h.client.kill(sleeper, 9);
    await h.waitForExit(sleeper);
  });

  it("refuses a checkpoint of a container that is not running, and a restore without a checkpoint", async () => {
    await assert.rejects(h.client.checkpoint(sleeper), (e: unknown) => {
      assert.ok(e instanceof RuntimeError);
      assert.equal(e.error.type, "stop_container_not_started");
      return true;
    });
    await assert.rejects(h.client.restore(sleeper), (e: unknown) => {
      assert.ok(e instanceof RuntimeError);
      assert.equal(e.error.type, "invalid_arguments");
      return true;
    });
  });

  it("a container counting in memory continues from where it was, supervised: its exit code is exact", async (t) => {
    if (!support.supported) return t.skip(`CRIU does not work here: ${support.reason ?? "?"}`);
    await h.client.start(counter);
    await h.waitForLog(counter, "count 3", SLOW_MS);
    const from = h.notifications.length;
    await h.client.checkpoint(counter);
    const inspected = await h.client.inspect(counter);
    assert.equal(inspected.process, null, "stopped after the checkpoint");
    const before = counts(await h.logLines(counter));
    const last = before[before.length - 1]!;
    assert.ok(last < LAST, `checkpointed before the end (at ${last})`);
    // The process lives on in the image: no exit.
    assert.deepEqual(h.exitsOf(counter), []);

    await h.client.restore(counter);
    await h.waitFor((n) => n.type === "started" && n.container === counter, SLOW_MS, from);
    const exit = await h.waitFor((n) => n.type === "exit" && n.container === counter, SLOW_MS, from);
    assert.ok(exit.type === "exit");
    // The restored instance is the checkpointed one: its exit is exact (the instance id is Skiff's).
    assert.deepEqual(exit.status, { type: "exit", code: 7, reason: "shutdown" });
    // One count after the other, from 1 to the end: nothing started over, nothing was lost.
    const all = counts(await h.logLines(counter));
    assert.deepEqual(
      all,
      Array.from({ length: LAST }, (_, i) => i + 1),
    );
    // The image was used up.
    await assert.rejects(h.client.restore(counter), /no checkpoint/);
  });

  it("a restored container killed by a signal reports the signal, not a code", async (t) => {
    if (!support.supported) return t.skip(`CRIU does not work here: ${support.reason ?? "?"}`);
    const from = h.notifications.length;
    await h.client.start(sleeper);
    await h.client.checkpoint(sleeper);
    await h.client.restore(sleeper);
    const inspected = await h.client.inspect(sleeper);
    assert.equal(inspected.state, "running");
    assert.equal(inspected.process?.started_by, "restore");
    await h.client.kill(sleeper, 15);
    assert.deepEqual(await h.waitForExit(sleeper, from), {
      type: "signalled",
      signal: 15,
      reason: "shutdown",
    });
  });
});
