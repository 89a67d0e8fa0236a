/**
 * Wake locks that end by themselves: one with `timeout_ms` expires, and one taken through the
 * container's own console goes when that connection closes, while a host client's lock stays
 * after its connection closes (docs/power.md, "Wake locks"). Real daemon, real container console.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connect, RuntimeError } from "../../../src/client/index.js";
import { ContainerHarness } from "../../helpers/containers.js";
import { waitFor } from "../../helpers/wait.js";

describe("wake locks that end by themselves", () => {
  let h: ContainerHarness;
  let id: string;
  before(async () => {
    h = await ContainerHarness.create();
    id = await h.add(h.name("locker"), "/bin/sleep", ["1000"], "console:\n  permissions: full\n");
    await h.startDaemon();
    await h.client.start(id);
  });
  after(() => h.close());

  const lockNames = async (): Promise<string[]> => (await h.client.power(id)).locks.map((l) => l.name);

  it("a lock with timeout_ms expires: it is listed, then gone, and a suspend is no longer refused", async () => {
    await h.client.acquireWakeLock(id, "brief", { timeoutMs: 300 });
    const listed = (await h.client.power(id)).locks.find((l) => l.name === "brief");
    assert.ok(listed?.expires_at_ms !== undefined, "listed with its expiry");
    await assert.rejects(
      (await h.newClient()).suspend(id),
      (e: unknown) => e instanceof RuntimeError && e.variant === "wake_locks_exist",
    );
    await waitFor(async () => !(await lockNames()).includes("brief"), {
      timeoutMs: 30_000,
      what: "the lock with timeout_ms to expire",
      detail: async () => JSON.stringify((await h.client.power(id)).locks),
    });
    // No lock and no wake source: the suspend is answered at once.
    assert.equal((await (await h.newClient()).suspend(id)).resumeReason, "no_wake_sources");
  });

  it("a lock taken on the container's own console is released when that connection closes; a host's stays", async () => {
    const own = await connect(`unix://${join(h.dir, "state", "run", "consoles", `${id}.sock`)}`);
    await own.acquireWakeLock(id, "mine");
    const host = await h.newClient();
    await host.acquireWakeLock(id, "host");
    const locks = (await h.client.power(id)).locks;
    assert.deepEqual(locks.map((l) => l.name).sort(), ["host", "mine"]);
    assert.notEqual(locks.find((l) => l.name === "mine")?.holder, "host");
    assert.equal(locks.find((l) => l.name === "host")?.holder, "host");

    own.close();
    await waitFor(async () => !(await lockNames()).includes("mine"), {
      timeoutMs: 30_000,
      what: "the container console's lock to be released with its connection",
      detail: async () => JSON.stringify((await h.client.power(id)).locks),
    });
    host.close();
    // The host's lock outlives its connection: a round trip on another connection still lists it.
    assert.deepEqual(await lockNames(), ["host"]);
    await h.client.releaseWakeLock(id, "host");
    assert.deepEqual(await lockNames(), []);
  });
});
