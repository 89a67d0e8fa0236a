/**
 * The instance lock: one skiffd per state_dir, released by the kernel when skiffd dies, also
 * while the dead skiffd is an unreaped zombie.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readFile, readlink, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { connect } from "../../../src/client/index.js";
import { acquireInstanceLock, LockHeldError } from "../../../src/daemon/lock.js";
import { ContainerHarness } from "../../helpers/containers.js";
import { SKIFFD } from "../../helpers/daemon.js";
import { Skiffd, waitUntil } from "./skiffd.js";
import { within } from "../../helpers/wait.js";

/** The state letter of /proc/<pid>/stat (R, S, Z, ...), or undefined once the pid is gone. */
async function processState(pid: number): Promise<string | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => undefined);
  return stat?.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
}

async function holdsFile(pid: number, path: string): Promise<boolean> {
  for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
    if ((await readlink(`/proc/${pid}/fd/${fd}`).catch(() => "")) === path) return true;
  }
  return false;
}

describe("instance lock", () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  it("a second holder is refused with the holder's pid; a release frees it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "skiff-lock-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const lock = await acquireInstanceLock(dir);
    await assert.rejects(
      acquireInstanceLock(dir),
      (e: Error) => e instanceof LockHeldError && e.message.includes(`(pid ${process.pid})`),
    );
    await lock.release();
    const again = await acquireInstanceLock(dir);
    await again.release();
  });

  it("two daemons on one state_dir: the second refuses with a clear error", async () => {
    const h = await ContainerHarness.create();
    const first = new Skiffd(h);
    cleanups.push(async () => {
      await first.forceCleanup();
      await h.close();
    });
    await first.writeConfig();
    await first.start();
    const second = spawn(process.execPath, [SKIFFD, "--config", first.configPath], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let log = "";
    second.stderr.on("data", (d: Buffer) => (log += d.toString()));
    const code = await within(new Promise<number | null>((r) => second.once("exit", (c) => r(c))), {
      timeoutMs: 60_000,
      what: "the second skiffd to exit",
      detail: () => log,
    }).catch((e: unknown) => {
      second.kill("SIGKILL");
      throw e;
    });
    assert.equal(code, 1, log);
    assert.match(log, new RegExp(`another skiffd \\(pid ${first.child!.pid}\\) holds .*skiffd\\.lock`));
    assert.equal(await first.stop(), 0, "the first one served on");
  });

  it("kill -9 of skiffd: a new one starts while the dead one is still an unreaped zombie; monitors never hold the lock", async () => {
    const h = await ContainerHarness.create();
    const id = await h.add(h.name("svc"), "/bin/sleep", ["1000"]);
    const next = new Skiffd(h);
    await next.writeConfig();
    // A parent that never waits: the shell starts skiffd in the background and becomes `sleep`.
    const shell = spawn(
      "/bin/sh",
      [
        "-c",
        `"${process.execPath}" "${SKIFFD}" --config "${next.configPath}" 2>/dev/null & echo $!; exec sleep 600`,
      ],
      { stdio: ["ignore", "pipe", "ignore"] },
    );
    cleanups.push(async () => {
      await next.forceCleanup();
      // Ending the parent lets init reap the zombie.
      shell.kill("SIGKILL");
      await h.close();
    });
    const pid = await new Promise<number>((resolve) =>
      shell.stdout.once("data", (d: Buffer) => resolve(Number(d.toString().trim()))),
    );
    await waitUntil("the first skiffd's console", () =>
      readdir(h.dir).then((names) => names.includes("skiff.sock")),
    );
    const lockPath = join(next.stateDir, "skiffd.lock");
    assert.equal(await holdsFile(pid, lockPath), true, "skiffd holds its lock file open");
    // A container, so there is a monitor that could have inherited the descriptor.
    const client = await connect(h.url);
    await client.start(id);
    client.close();
    const monitors = await next.scanMonitors();
    assert.equal(monitors.length, 1);
    assert.equal(await holdsFile(monitors[0]!, lockPath), false, "the monitor does not hold the lock file");

    process.kill(pid, "SIGKILL");
    await waitUntil("the killed skiffd to become a zombie", async () => (await processState(pid)) === "Z");
    await next.start();
    assert.equal(await processState(pid), "Z", "the old skiffd was still unreaped when the new one started");
    assert.equal((await next.subscriber!.inspect(id)).process?.pid !== undefined, true, "re-adopted");
    await next.subscriber!.stop(id, 1);
    assert.equal(await next.stop(), 0);
  });
});
