import assert from "node:assert/strict";
import { closeSync, openSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createTestEnv, type TestEnv } from "./env.js";

async function outputOf(env: TestEnv, name: string, script: string, extraFds?: number[]): Promise<string[]> {
  const conn = await env.launch(name, ["sh", "-c", script], extraFds ? { extraFds } : {});
  const lines: string[] = [];
  conn.on("log", (_stream, line) => lines.push(line));
  await conn.start();
  assert.deepEqual((await conn.exited()).status, { code: 0 });
  return lines;
}

// `ls -l /proc/$$/fd` runs in a child, so it lists the app shell's fds, not its
// own; no pipeline, so the shell holds no pipe fds while ls looks.
const LIST_APP_FDS = "ls -l /proc/$$/fd";

function fdsIn(lines: string[]): string[] {
  return lines.flatMap((l) => {
    const m = / (\d+) -> (.*)$/.exec(l);
    return m ? [`fd=${m[1]} ${m[2]}`] : [];
  });
}

describe("monitor: the container's processes", () => {
  let env: TestEnv;
  before(() => {
    env = createTestEnv();
  });
  after(() => env.cleanup());

  it("gives the app only stdio (the status pipe stays with skiff-init)", async () => {
    const lines = fdsIn(await outputOf(env, "fds", LIST_APP_FDS));
    assert.deepEqual(
      lines.map((l) => l.split(" ")[0]),
      ["fd=0", "fd=1", "fd=2"],
      lines.join("\n"),
    );
  });

  it("passes extra fds to the app from fd 4 on", async () => {
    const file = join(env.dir, "extra-fd-target");
    const fd = openSync(file, "w");
    try {
      const lines = fdsIn(await outputOf(env, "extrafds", LIST_APP_FDS, [fd]));
      assert.deepEqual(
        lines.map((l) => l.split(" ")[0]),
        ["fd=0", "fd=1", "fd=2", "fd=4"],
        lines.join("\n"),
      );
      assert.match(lines[3]!, /extra-fd-target/);
    } finally {
      closeSync(fd);
    }
  });

  it("runs the app as a child of skiff-init in init's session", async () => {
    const script =
      "read -r a b c d e sid rest < /proc/$$/stat; echo app ppid=$PPID sid=$sid; " +
      "read -r a b c d e sid rest < /proc/1/stat; echo init pid=$a sid=$sid";
    const lines = await outputOf(env, "session", script);
    assert.deepEqual(lines, ["app ppid=1 sid=1", "init pid=1 sid=1"]);
  });
});
