import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import { ToolchainDegradedError, ToolchainHealth } from "../../../src/daemon/toolchain/health.js";
import type { HealthInfo } from "../../../src/protocol/messages.js";

const log = pino({ level: "silent" });

describe("ToolchainHealth", () => {
  let dir: string;
  let runtime: string;
  let monitor: string;
  let init: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "skiff-health-unit-"));
    runtime = join(dir, "runtime");
    monitor = join(dir, "skiff-monitor");
    init = join(dir, "skiff-init");
    await writeScript(runtime, 'echo "runc version 1.1.5"');
    await writeScript(monitor, "exit 0");
    await writeScript(init, "exit 0");
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function healthOf(paths: { runtimePath?: string; initPath?: string } = {}): ToolchainHealth {
    return new ToolchainHealth({
      runtimePath: paths.runtimePath ?? runtime,
      monitorPath: monitor,
      initPath: paths.initPath ?? init,
      log,
      probeTimeoutMs: 300,
    });
  }

  function watch(health: ToolchainHealth): HealthInfo[] {
    const seen: HealthInfo[] = [];
    health.onChange((h) => seen.push(h));
    return seen;
  }

  it("is ok when the runtime answers and monitor and init are executable files", async () => {
    assert.deepEqual(await healthOf().check(), { status: "ok", problems: [] });
  });

  it("turns degraded when the runtime is renamed away and ok when it is back, telling listeners", async () => {
    const health = healthOf();
    const seen = watch(health);
    await health.check();
    await rename(runtime, `${runtime}.away`);
    try {
      const degraded = await health.check();
      assert.equal(degraded.status, "degraded");
      assert.deepEqual(degraded.problems, [`OCI runtime ${runtime}: not found`]);
      assert.deepEqual(health.current, degraded);
    } finally {
      await rename(`${runtime}.away`, runtime);
    }
    assert.deepEqual(await health.check(), { status: "ok", problems: [] });
    assert.deepEqual(
      seen.map((h) => h.status),
      ["degraded", "ok"],
    );
  });

  it("names a monitor without execute permission, with its mode", async () => {
    const health = healthOf();
    await chmod(monitor, 0o644);
    try {
      assert.deepEqual((await health.check()).problems, [
        `skiff-monitor ${monitor}: not executable (mode 0644)`,
      ]);
    } finally {
      await chmod(monitor, 0o755);
    }
    assert.equal((await health.check()).status, "ok");
  });

  it("names an init that is not a regular file and a runtime that cannot be executed", async () => {
    const notFile = join(dir, "init-dir");
    const notExecutable = join(dir, "runtime-0644");
    await mkdir(notFile);
    await writeFile(notExecutable, "#!/bin/sh\n", { mode: 0o644 });
    const health = healthOf({ initPath: notFile, runtimePath: notExecutable });
    assert.deepEqual((await health.check()).problems, [
      `OCI runtime ${notExecutable}: not executable`,
      `skiff-init ${notFile}: not a regular file`,
    ]);
  });

  it("reports a runtime whose --version fails, with its stderr", async () => {
    const failing = join(dir, "runtime-failing");
    await writeScript(failing, "echo 'libc mismatch' >&2; exit 3");
    const { problems } = await healthOf({ runtimePath: failing }).check();
    assert.deepEqual(problems, [
      `OCI runtime ${failing}: "--version" failed with exit code 3: libc mismatch`,
    ]);
  });

  it("reports a runtime that exits 0 without naming a version (an empty file does)", async () => {
    const empty = join(dir, "runtime-empty");
    await writeFile(empty, "", { mode: 0o755 });
    const { problems } = await healthOf({ runtimePath: empty }).check();
    assert.deepEqual(problems, [`OCI runtime ${empty}: "--version" printed no version ("")`]);
  });

  it("reports a runtime that does not answer within the probe timeout", async () => {
    const hanging = join(dir, "runtime-hanging");
    await writeScript(hanging, "exec sleep 30");
    const { problems } = await healthOf({ runtimePath: hanging }).check();
    assert.deepEqual(problems, [`OCI runtime ${hanging}: no answer to --version within 300 ms`]);
  });

  it("ensureHealthy throws ToolchainDegradedError while broken and passes once the binary is back", async () => {
    const health = healthOf();
    await health.ensureHealthy();
    await rename(runtime, `${runtime}.away`);
    try {
      // Degraded is only noticed by a check; the daemon runs one at start and on `health`.
      await health.check();
      await assert.rejects(health.ensureHealthy(), (e: unknown) => {
        assert.ok(e instanceof ToolchainDegradedError);
        assert.deepEqual(e.problems, [`OCI runtime ${runtime}: not found`]);
        return true;
      });
    } finally {
      await rename(`${runtime}.away`, runtime);
    }
    await health.ensureHealthy();
    assert.equal(health.current.status, "ok");
  });

  it("keeps a monitor death until a clean check and a later successful start", async () => {
    const health = healthOf();
    const seen = watch(health);
    await health.check();
    health.recordMonitorDeath("web:1.0.0", "exit code 1");
    assert.deepEqual(health.current, {
      status: "degraded",
      problems: ["monitor of web:1.0.0 died unexpectedly (exit code 1)"],
    });
    health.recordStartSucceeded("other:1.0.0"); // no check since the death: not enough
    assert.equal(health.current.status, "degraded");
    await health.ensureHealthy(); // re-checks; binaries fine, so the start may go ahead
    assert.equal(health.current.status, "degraded");
    health.recordStartSucceeded("web:1.0.0");
    assert.deepEqual(health.current, { status: "ok", problems: [] });
    assert.deepEqual(
      seen.map((h) => h.status),
      ["degraded", "ok"],
    );
  });

  it("clears only the deaths recorded before the clean check", async () => {
    const health = healthOf();
    health.recordMonitorDeath("a:1.0.0");
    await health.check();
    health.recordMonitorDeath("b:1.0.0");
    health.recordStartSucceeded("c:1.0.0");
    assert.deepEqual(health.current.problems, ["monitor of b:1.0.0 died unexpectedly"]);
  });

  it("refuses starts when a monitor died and a binary is broken", async () => {
    const health = healthOf();
    await chmod(init, 0o600);
    try {
      health.recordMonitorDeath("web:1.0.0");
      await assert.rejects(health.ensureHealthy(), (e: unknown) => {
        assert.ok(e instanceof ToolchainDegradedError);
        assert.deepEqual(e.problems, [
          `skiff-init ${init}: not executable (mode 0600)`,
          "monitor of web:1.0.0 died unexpectedly",
        ]);
        return true;
      });
    } finally {
      await chmod(init, 0o755);
    }
  });
});

async function writeScript(path: string, body: string): Promise<void> {
  await writeFile(path, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
}
