// ToolchainHealth against a real runc: a temp COPY of the host's runc is renamed away, broken
// and put back (the host's own binary is never touched), with the real skiff-monitor and
// skiff-init.
import assert from "node:assert/strict";
import { copyFile, mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import { ToolchainDegradedError, ToolchainHealth } from "../../../src/daemon/toolchain/health.js";
import { nativeBinary } from "../../../src/daemon/monitor/native.js";
import type { HealthInfo } from "../../../src/protocol/messages.js";

const HOST_RUNC = "/usr/sbin/runc";

describe("toolchain health with a copy of runc", () => {
  let dir: string;
  let runc: string;
  let health: ToolchainHealth;
  const seen: HealthInfo[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "skiff-health-it-"));
    runc = join(dir, "runc");
    await copyFile(HOST_RUNC, runc);
    health = new ToolchainHealth({
      runtimePath: runc,
      monitorPath: nativeBinary("skiff-monitor"),
      initPath: nativeBinary("skiff-init"),
      log: pino({ level: "silent" }),
      // Nothing here hangs: a generous bound keeps a slow exec (QEMU TCG, a loaded host) from
      // counting as a broken runtime.
      probeTimeoutMs: 5000,
    });
    health.onChange((h) => seen.push(h));
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("is ok with the copy, the monitor and the init in place", async () => {
    assert.deepEqual(await health.check(), { status: "ok", problems: [] });
    await health.ensureHealthy();
  });

  it("is degraded with a clear problem while the copy is renamed away, ok once it is back", async () => {
    await rename(runc, `${runc}.away`);
    try {
      const degraded = await health.check();
      assert.deepEqual(degraded, { status: "degraded", problems: [`OCI runtime ${runc}: not found`] });
      await assert.rejects(health.ensureHealthy(), ToolchainDegradedError);
    } finally {
      await rename(`${runc}.away`, runc);
    }
    // A start after the fix re-checks by itself: no daemon restart needed.
    await health.ensureHealthy();
    assert.deepEqual(health.current, { status: "ok", problems: [] });
    assert.deepEqual(
      seen.slice(-2).map((h) => h.status),
      ["degraded", "ok"],
    );
  });

  it("is degraded while the copy is truncated to a broken executable", async () => {
    const whole = await readFile(runc);
    await writeFile(runc, whole.subarray(0, 64));
    try {
      const { status, problems } = await health.check();
      assert.equal(status, "degraded");
      assert.equal(problems.length, 1);
      assert.match(problems[0]!, new RegExp(`^OCI runtime ${runc}: `));
    } finally {
      await writeFile(runc, whole);
    }
    assert.equal((await health.check()).status, "ok");
  });
});
