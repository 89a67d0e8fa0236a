/**
 * Uninstall and install failure paths over the console, with real packages, mounts and
 * containers: unknown and running containers are refused and lose nothing, `wipe` removes the
 * persist directory and only with it, a removal that fails on the file system is reported and the
 * container stays usable, and a failed install leaves nothing behind.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { access, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { promisify } from "node:util";
import { RuntimeError } from "../../../src/client/index.js";
import { ContainerHarness } from "../../helpers/containers.js";

const run = promisify(execFile);

const exists = (path: string): Promise<boolean> =>
  access(path).then(
    () => true,
    () => false,
  );

/** Rejects with a RuntimeError whose wire error has `variant` (and whose text matches `text`). */
async function refused(promise: Promise<unknown>, variant: string, text?: RegExp): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof RuntimeError, String(e));
    assert.equal(e.variant, variant, e.message);
    if (text) assert.match(e.message, text);
    return true;
  });
}

describe("uninstall and install failure paths", () => {
  const harnesses: ContainerHarness[] = [];
  after(async () => {
    for (const h of harnesses) await h.close();
  });

  it("uninstall of an unknown container is invalid_container; of a running one umount_busy, and it keeps running", async () => {
    const h = await ContainerHarness.create();
    harnesses.push(h);
    const id = await h.add(h.name("busy"), "/bin/sleep", ["1000"]);
    await h.startDaemon();
    await refused(h.client.uninstall(`${h.name("nope")}:1.0.0`), "invalid_container");
    await h.client.start(id);
    const pid = (await h.client.inspect(id)).process!.pid;
    await refused(h.client.uninstall(id), "umount_busy");
    await refused(h.client.uninstall(id, true), "umount_busy");
    assert.equal((await h.client.inspect(id)).process?.pid, pid);
    assert.ok(await exists(join(h.dir, "repo", `${h.name("busy")}-1.0.0.npk`)));
    await h.client.stop(id);
    await h.client.uninstall(id);
    assert.deepEqual(await h.client.list(), []);
    assert.ok(!(await exists(join(h.dir, "repo", `${h.name("busy")}-1.0.0.npk`))));
  });

  it("uninstall keeps the persist directory; uninstall --wipe removes it", async () => {
    const h = await ContainerHarness.create();
    harnesses.push(h);
    const name = h.name("keeper");
    const persist = `  /data:\n    type: persist\n`;
    const id = await h.add(name, "/bin/sh", ["-c", "echo kept > /data/file"], "", persist);
    const npk = await readFile(join(h.dir, "repo", `${name}-1.0.0.npk`));
    await h.startDaemon();
    const dataDir = join(h.dir, "state", "data", name);
    await h.client.start(id);
    assert.deepEqual(await h.waitForExit(id), { type: "exit", code: 0, reason: "shutdown" });
    assert.equal(await readFile(join(dataDir, "file"), "utf8"), "kept\n");

    await h.client.uninstall(id);
    assert.equal(await readFile(join(dataDir, "file"), "utf8"), "kept\n", "without wipe the data stays");
    await h.client.install("default", npk.length, npk);
    await h.client.uninstall(id, true);
    assert.ok(!(await exists(dataDir)), "wipe removes the persist directory");
    assert.deepEqual(await h.client.list(), []);
  });

  it("an uninstall the file system refuses is reported; the container stays installed and usable", async () => {
    const h = await ContainerHarness.create();
    harnesses.push(h);
    const name = h.name("stuck");
    const id = await h.add(name, "/bin/sh", ["-c", "echo alive"]);
    await h.startDaemon();
    // Started once, so its image is mounted when the uninstall unmounts it and then fails.
    await h.client.start(id);
    await h.waitForExit(id);
    assert.equal((await h.client.inspect(id)).mounted, true);
    const from = h.notifications.length;
    const repo = join(h.dir, "repo");
    // A read-only bind mount of the repository over itself: unlink fails with EROFS. The harness
    // removes the mount if the test fails before it does.
    await run("mount", ["--bind", repo, repo]);
    try {
      await run("mount", ["-o", "remount,bind,ro", repo]);
      await refused(h.client.uninstall(id), "unexpected", /read-only file system|EROFS/i);
    } finally {
      await run("umount", [repo]);
    }
    assert.deepEqual(await h.client.list(), [id]);
    await h.client.start(id);
    assert.deepEqual(await h.waitForExit(id, from), { type: "exit", code: 0, reason: "shutdown" });
    await h.client.uninstall(id);
    assert.deepEqual(await h.client.list(), []);
  });

  it("a failed install leaves nothing behind and the next install of the same package works", async () => {
    const h = await ContainerHarness.create();
    harnesses.push(h);
    const name = h.name("later");
    const id = await h.add(name, "/bin/sh", ["-c", "echo installed"]);
    await h.startDaemon();
    const file = join(h.dir, "repo", `${name}-1.0.0.npk`);
    const npk = await readFile(file);
    await h.client.uninstall(id);
    const repoFiles = async (): Promise<string[]> =>
      (await readdir(join(h.dir, "repo"))).filter((f) => f !== ".uploads");
    const before = await repoFiles();
    await refused(
      h.client.install("default", npk.length - 1, npk.subarray(0, npk.length - 1)),
      "invalid_arguments",
    );
    await refused(h.client.install("nowhere", npk.length, npk), "invalid_repository");
    assert.deepEqual(await repoFiles(), before);
    assert.deepEqual(await readdir(join(h.dir, "repo", ".uploads")).catch(() => []), []);
    assert.deepEqual(await h.client.list(), []);
    assert.equal(await h.client.install("default", npk.length, npk), id);
    await h.client.start(id);
    assert.deepEqual(await h.waitForExit(id), { type: "exit", code: 0, reason: "shutdown" });
  });
});
