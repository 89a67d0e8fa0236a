/**
 * Hostile names and paths, init and /tmp, seen over the console of a real skiffd: a package
 * named `..` (whose `uninstall --wipe` used to remove the whole state directory), a resource
 * `dir` of `/../../..`, a repository that already holds such a package, a container with
 * CAP_SYS_ADMIN that tries to rewrite skiff-init, a non-root container writing its tmpfs /tmp,
 * and kill with signals that are not signals.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { access, mkdir, readFile, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { RuntimeError } from "../../../src/client/index.js";
import { nativeBinary } from "../../../src/daemon/monitor/client.js";
import { ContainerHarness } from "../../helpers/containers.js";
import { pack } from "../../../src/npk/pack.js";
import { packUnchecked } from "../../helpers/npk.js";

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

async function fileFacts(
  path: string,
): Promise<{ sha256: string; mode: number; uid: number; mtimeMs: number }> {
  const info = await stat(path);
  const sha256 = createHash("sha256")
    .update(await readFile(path))
    .digest("hex");
  return { sha256, mode: info.mode, uid: info.uid, mtimeMs: info.mtimeMs };
}

async function refusedWith(promise: Promise<unknown>, variant: string, cause?: RegExp): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof RuntimeError, `expected a RuntimeError, got ${String(e)}`);
    assert.equal(e.variant, variant, e.message);
    if (cause) assert.match(e.message, cause);
    return true;
  });
}

describe("hostile names and paths over the console", () => {
  let h: ContainerHarness;
  let dotdot: Buffer;
  let escapingDir: Buffer;
  let longName: Buffer;
  const preinstalled = () => join(h.dir, "repo", "..-1.0.0.npk");

  before(async () => {
    h = await ContainerHarness.create();
    const busybox = join(h.dir, "busybox");
    const resourceImage = "name: placeholder\nversion: 1.0.0\nuid: 1000\ngid: 1000\n";
    // A package named `..`, as an older Skiff would have installed it: already in the repository.
    await packUnchecked({
      manifestYaml: 'name: ".."\nversion: 1.0.0\nuid: 1000\ngid: 1000\n',
      imageManifestYaml: resourceImage,
      rootDir: busybox,
      out: preinstalled(),
    });
    dotdot = await readFile(preinstalled());
    const app = (dir: string) =>
      `name: escape-${h.id}\nversion: 1.0.0\ninit: /bin/sh\nuid: 1000\ngid: 1000\nmounts:\n  /r:\n` +
      `    type: resource\n    name: res-${h.id}\n    version: ">=1.0.0"\n    dir: "${dir}"\n`;
    const escaping = join(h.dir, "escape.npk");
    await packUnchecked({
      manifestYaml: app("/../../.."),
      imageManifestYaml: app("/"),
      rootDir: busybox,
      out: escaping,
    });
    escapingDir = await readFile(escaping);
    // A valid name (up to 1024 characters) whose package file name cannot exist (NAME_MAX 255).
    const long = `long-${"n".repeat(300)}`;
    await packUnchecked({
      manifestYaml: `name: ${long}\nversion: 1.0.0\nuid: 1000\ngid: 1000\n`,
      imageManifestYaml: resourceImage,
      rootDir: busybox,
      out: join(h.dir, "long.npk"),
    });
    longName = await readFile(join(h.dir, "long.npk"));
    // A resource whose image holds a link out of it, and an app that mounts the link.
    const linked = join(h.dir, "linked");
    await mkdir(linked);
    await symlink("/etc", join(linked, "out"));
    await writeFile(
      join(h.dir, "linked.yaml"),
      `name: linked-${h.id}\nversion: 1.0.0\nuid: 1000\ngid: 1000\n`,
    );
    await pack({
      manifestPath: join(h.dir, "linked.yaml"),
      rootDir: linked,
      out: join(h.dir, "repo", `linked-${h.id}-1.0.0.npk`),
      compression: "none",
    });
    await h.add(
      h.name("uses-link"),
      "/bin/cat",
      ["/r/passwd"],
      "",
      `  /r:\n    type: resource\n    name: linked-${h.id}\n    version: ">=1.0.0"\n    dir: /out\n`,
    );
    await h.add(h.name("sleeper"), "/bin/sleep", ["1000"]);
    await h.startDaemon();
  });
  after(async () => {
    await h.close();
  });

  it("a package named .. already in the repository is refused at start, named in the log, and kept", async () => {
    await h.waitForDaemonLog(/refusing package file .*\/\.\.-1\.0\.0\.npk: manifest: .*must not be/);
    assert.ok(await exists(preinstalled()), "the refused file is left in place");
    const listed = (await h.client.list()).map((c) => (typeof c === "string" ? c : JSON.stringify(c)));
    assert.ok(!listed.some((c) => c.startsWith("..:")), `not served: ${listed.join(", ")}`);
    assert.ok(
      listed.some((c) => c.includes(h.name("sleeper"))),
      "the daemon serves the other packages",
    );
  });

  it("installing a package named .. is refused, and the state directory survives", async () => {
    const stateDir = join(h.dir, "state");
    const sentinel = join(stateDir, "sentinel");
    await writeFile(sentinel, "still here\n");
    await refusedWith(h.client.install("default", dotdot.length, dotdot), "invalid_arguments", /must not be/);
    // Even asked for directly, `..` is no container: the request itself is refused.
    await assert.rejects(h.client.uninstall("..:1.0.0", true));
    assert.equal(await readFile(sentinel, "utf8"), "still here\n");
    assert.ok(await exists(join(stateDir, "skiffd.lock")));
    assert.ok(await exists(preinstalled()));
  });

  it("a resource dir of /../../.. is refused at install", async () => {
    await refusedWith(
      h.client.install("default", escapingDir.length, escapingDir),
      "invalid_arguments",
      /dir.*without \. or \.\./,
    );
  });

  it("a package whose file name would be longer than NAME_MAX is refused at install", async () => {
    await refusedWith(
      h.client.install("default", longName.length, longName),
      "invalid_arguments",
      /longer than 255/,
    );
  });

  it("a resource dir that is a link out of the resource's image is refused at start", async () => {
    const id = `${h.name("uses-link")}:1.0.0`;
    await refusedWith(h.client.start(id), "start_container_failed", /resolves to \/etc/);
    assert.equal(h.exitsOf(id).length, 0);
  });

  it("kill with 0, -1 or a number above SIGRTMAX is invalid_arguments, and the container keeps running", async () => {
    const id = `${h.name("sleeper")}:1.0.0`;
    const from = h.notifications.length;
    await h.client.start(id);
    for (const signal of [0, -1, 65, 2 ** 31]) {
      await refusedWith(h.client.kill(id, signal), "invalid_arguments", /invalid signal/);
    }
    assert.equal(h.exitsOf(id).length, 0);
    await h.client.kill(id, 9);
    const status = await h.waitForExit(id, from);
    assert.equal(status.type === "signalled" && status.signal, 9);
    // A container that is not running gets the same answer for a bad signal.
    await refusedWith(h.client.kill(id, 0), "invalid_arguments", /invalid signal/);
  });
});

describe("what containers can do to skiff-init and /tmp", () => {
  let h: ContainerHarness;
  const ids: Record<string, string> = {};
  before(async () => {
    h = await ContainerHarness.create();
    // Root's powers without uid 0 (a manifest's uid is at least 1): the capabilities are ambient.
    const script = [
      "mount -o remount,rw,bind /dev/.skiff/init && echo remounted",
      "echo tampered >> /dev/.skiff/init && echo appended",
      "/bin/busybox chmod 6777 /dev/.skiff/init && echo chmodded",
      "touch /dev/.skiff/init && echo touched",
      "true",
    ].join("; ");
    ids.tamper = await h.add(
      h.name("tamper"),
      "/bin/sh",
      ["-c", script],
      "capabilities: [CAP_SYS_ADMIN, CAP_FOWNER, CAP_DAC_OVERRIDE]\n",
    );
    ids.after = await h.add(h.name("after"), "/bin/sh", ["-c", "echo fine"]);
    ids.tmp = await h.add(
      h.name("tmp"),
      "/bin/sh",
      ["-c", "id -u; for d in /tmp /scratch; do touch $d/mine && echo wrote $d; ls -ld $d; done"],
      "",
      "  /tmp:\n    type: tmpfs\n    size: 1M\n  /scratch:\n    type: tmpfs\n    size: 1M\n",
    );
    await h.startDaemon();
  });
  after(async () => {
    await h.close();
  });

  const run = async (id: string): Promise<{ code: number | undefined; out: string[] }> => {
    const from = h.notifications.length;
    await h.client.start(id);
    const status = await h.waitForExit(id, from);
    const out = (await h.logLines(id)).filter((l) => l.startsWith("stdout ")).map((l) => l.slice(7));
    return { code: status.type === "exit" ? status.code : undefined, out };
  };

  it("a container with CAP_SYS_ADMIN that remounts /dev/.skiff/init read-write cannot change the host's binary", async () => {
    const host = nativeBinary("skiff-init");
    const before = await fileFacts(host);
    const { out } = await run(ids.tamper!);
    // The container did get a writable init: the attack ran, against its own copy.
    assert.ok(out.includes("remounted"), `the remount worked inside: ${out.join(" | ")}`);
    assert.ok(out.includes("chmodded"), `the chmod worked inside: ${out.join(" | ")}`);
    assert.deepEqual(await fileFacts(host), before, "the host's skiff-init is unchanged");
    // And the next container starts from an intact init.
    assert.deepEqual(await run(ids.after!), { code: 0, out: ["fine"] });
  });

  // /tmp exists in the image (mode 1777); /scratch does not: pack creates it with mode 0755 (as
  // Northstar does), and runc 1.1 gives a tmpfs the mode of its mount point directory.
  it("a non-root container can write its tmpfs mounts", async () => {
    const { code, out } = await run(ids.tmp!);
    assert.equal(out[0], "1000");
    for (const dir of ["/tmp", "/scratch"]) {
      assert.ok(
        out.includes(`wrote ${dir}`),
        `the container's user could not write ${dir}: ${out.join(" | ")}`,
      );
    }
    const listing = (dir: string) => out.find((l) => l.startsWith("d") && l.endsWith(` ${dir}`)) ?? "";
    assert.match(listing("/tmp"), /^drwxrwxrwt +\d+ 1000 +1000 /);
    assert.match(listing("/scratch"), /^drwx[-r][-w]x[-r][-w]x +\d+ 1000 +1000 /);
    assert.equal(code, 0);
  });
});
