/**
 * Debugging a start that fails (issue 15): the runtime's own error in the start's error and in
 * `skiff logs`, even with discarded output; `skiff start --debug-hold` keeping a failed app's
 * container up for inspection; `[debug] commands` spawned with init's pid before the app runs.
 */
import { execFile } from "node:child_process";
import { chmod, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { ContainerHarness } from "../../helpers/containers.js";
import { SKIFF } from "../../helpers/daemon.js";

const exec = promisify(execFile);
const WAIT_MS = 20_000;

/** A file bound onto a directory: the runtime's create fails while mounting, with its own words. */
const BAD_MOUNT = `  /tmp:\n    type: bind\n    host: /dev/null\n`;
const RUNTIME_TEXT = /\/dev\/null.*not a directory/;

async function waitUntil<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe("debugging a failing start", () => {
  let h: ContainerHarness;
  let recorded: string;
  const ids: Record<string, string> = {};
  before(async () => {
    h = await ContainerHarness.create();
    recorded = join(h.dir, "recorded");
    // The debug command: records init's command line at the moment it runs.
    const script = join(h.dir, "record.sh");
    await writeFile(
      script,
      `#!/bin/sh\ntr '\\0' ' ' < /proc/$1/cmdline > "${recorded}-$2.tmp"\nmv "${recorded}-$2.tmp" "${recorded}-$2"\n`,
    );
    await chmod(script, 0o755);
    for (const io of ["pipe", "discard"] as const) {
      ids[io] = await h.add(
        h.name(`badmount-${io}`),
        "/bin/true",
        [],
        `io:\n  stdout: ${io}\n  stderr: ${io}\n`,
        BAD_MOUNT,
      );
    }
    ids.failing = await h.add(
      h.name("failing"),
      "/bin/sh",
      ["-c", "echo about to fail; exit 3"],
      "env:\n  GREETING: hello\n",
    );
    ids.traced = await h.add(h.name("traced"), "/bin/echo", ["traced app ran"]);
    // Packages are found when the daemon scans its repository at start.
    await h.startDaemon(`[debug]\ncommands = ["${script} <PID> <CONTAINER>"]\n`);
  });
  after(async () => {
    await h.close();
  });

  for (const io of ["pipe", "discard"] as const) {
    it(`a failing runtime create: its own error in the start error and in the log (stderr ${io})`, async () => {
      const id = ids[io]!;
      await assert.rejects(h.client.start(id), (e: Error) => {
        assert.match(e.message, /the runtime could not create the container: .*not a directory/);
        return true;
      });
      const lines = await h.logLines(id);
      assert.ok(
        lines.some((l) => l.startsWith("stderr ") && RUNTIME_TEXT.test(l)),
        `log: ${JSON.stringify(lines)}`,
      );
      // The CLI shows the same line.
      const { stdout } = await exec(process.execPath, [SKIFF, "-u", h.url, "logs", id]);
      assert.match(stdout, RUNTIME_TEXT);
    });
  }

  it("skiff start --debug-hold keeps a container whose app fails, with its env, until it is stopped", async () => {
    const id = ids.failing!;
    const { stdout } = await exec(process.execPath, [SKIFF, "-u", h.url, "start", "--debug-hold", id]);
    assert.match(stdout, /started/);
    await h.waitForLog(
      id,
      "skiff-init: debug hold: /bin/sh exited with code 3; the container stays for inspection until it is stopped",
    );
    const data = await h.client.inspect(id);
    const pid = data.process?.pid;
    assert.ok(pid !== undefined && pid > 0, `still running: ${JSON.stringify(data.process)}`);
    // Its root and env are there to look at.
    await readFile(`/proc/${pid}/root/bin/busybox`).then((b) => assert.ok(b.length > 0));
    const environ = (await readFile(`/proc/${pid}/environ`, "utf8")).split("\0");
    assert.ok(environ.includes("GREETING=hello"), environ.join(" "));
    assert.deepEqual(h.exitsOf(id), []);
    // Stopping ends it with the app's own status.
    assert.deepEqual(await h.client.stop(id), { type: "exit", code: 3, reason: "shutdown" });
  });

  it("[debug] commands get init's pid before the app runs (a prepared instance has not started it)", async () => {
    const id = ids.traced!;
    await h.client.prepare(id);
    const file = await waitUntil("the debug command's record", async () =>
      (await readdir(h.dir)).find((name) => name === `recorded-${id}`),
    );
    const cmdline = await readFile(join(h.dir, file), "utf8");
    // skiff-init (/dev/.skiff/init) has not been executed yet: the pid is still the runtime's.
    assert.doesNotMatch(cmdline, /\.skiff\/init/, cmdline);
    assert.match(cmdline, /init/, cmdline);
    const from = h.notifications.length;
    await h.client.start(id);
    assert.deepEqual(await h.waitForExit(id, from), { type: "exit", code: 0, reason: "shutdown" });
    await h.waitForLog(id, "traced app ran");
  });
});
