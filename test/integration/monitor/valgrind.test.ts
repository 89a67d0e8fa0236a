import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { createTestEnv, type TestEnv } from "./env.js";

describe("monitor under valgrind", () => {
  let env: TestEnv;
  before(() => {
    env = createTestEnv();
  });
  after(() => env.cleanup());

  it("leaks no memory and no fds over one container lifecycle", async () => {
    const logPrefix = join(env.dir, "valgrind");
    const conn = await env.launch("vg", ["sh", "-c", "echo out; echo err >&2; exit 3"], {
      wrapper: [
        "valgrind",
        "--leak-check=full",
        "--show-leak-kinds=all",
        "--errors-for-leak-kinds=all",
        "--track-fds=yes",
        "--error-exitcode=99",
        `--log-file=${logPrefix}.%p`,
      ],
    });
    const { monitorPid } = conn;
    await conn.start();
    assert.deepEqual((await conn.exited()).status, { code: 3 });
    const logFile = `${logPrefix}.${monitorPid}`;
    // valgrind writes its summary as the monitor exits, after EXIT was acknowledged.
    let report = "";
    for (let i = 0; i < 1000 && !report.includes("ERROR SUMMARY"); i++) {
      await sleep(10);
      report = readFileSync(logFile, "utf8");
    }
    assert.match(report, /ERROR SUMMARY: 0 errors/, report);
    assert.match(report, /All heap blocks were freed -- no leaks are possible/, report);
    assert.match(report, /FILE DESCRIPTORS: 3 open \(3 std\) at exit/, report);
    assert.ok(
      readdirSync(env.dir).some((f) => f === `valgrind.${monitorPid}`),
      "valgrind log of the monitor itself",
    );
  });
});
