import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createTestEnv, withMemoryLimit, type TestEnv } from "./env.js";
import { waitFor as waitForCondition } from "../../helpers/wait.js";

describe("monitor under valgrind", () => {
  let env: TestEnv;
  before(() => {
    env = createTestEnv();
  });
  after(() => env.cleanup());

  it("leaks no memory and no fds over one container lifecycle, memory events included", async () => {
    const logPrefix = join(env.dir, "valgrind");
    // The subshell is OOM-killed: the eventfd, the follow-up reads and MEMORY all run under valgrind.
    const script = `echo out; echo err >&2; (s=x; while true; do s="$s$s"; done); exit 3`;
    const conn = await env.launch(
      "vg",
      ["sh", "-c", script],
      {
        memoryCgroup: env.memoryCgroup("vg"),
        wrapper: [
          "valgrind",
          "--leak-check=full",
          "--show-leak-kinds=all",
          "--errors-for-leak-kinds=all",
          "--track-fds=yes",
          "--error-exitcode=99",
          `--log-file=${logPrefix}.%p`,
        ],
      },
      withMemoryLimit(32 << 20),
    );
    const { monitorPid } = conn;
    let kills = 0;
    conn.on("memory", (counts) => (kills += counts.oom_kill));
    await conn.start();
    const record = await conn.exited();
    assert.deepEqual(record.status, { code: 3 });
    assert.equal(record.oom, true);
    assert.ok(kills >= 1);
    const logFile = `${logPrefix}.${monitorPid}`;
    // valgrind writes its summary as the monitor exits, after EXIT was acknowledged.
    let report = "";
    await waitForCondition(() => (report = readFileSync(logFile, "utf8")).includes("ERROR SUMMARY"), {
      timeoutMs: 60_000,
      what: "valgrind's summary",
    });
    assert.match(report, /ERROR SUMMARY: 0 errors/, report);
    assert.match(report, /All heap blocks were freed -- no leaks are possible/, report);
    assert.match(report, /FILE DESCRIPTORS: 3 open \(3 std\) at exit/, report);
    assert.ok(
      readdirSync(env.dir).some((f) => f === `valgrind.${monitorPid}`),
      "valgrind log of the monitor itself",
    );
  });
});
