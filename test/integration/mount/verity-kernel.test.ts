// Kernel dm-verity for keyed repositories (docs/npk.md, "Image protection"). Needs
// device-mapper and the dm_verity target: runs in the VM lane's guest
// (`scripts/vm/run node --test --test-concurrency=1 dist/test/integration/mount/verity-kernel.test.js`)
// and skips, saying why, on hosts without them.
import assert from "node:assert/strict";
import { mkdir, open, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  closeVerityDevice,
  findMount,
  listDmDevices,
  mountImage,
  probeKernelVerity,
  umount,
  verityDeviceName,
  verityNamePrefix,
} from "../../../src/daemon/mount/index.js";
import { openNpk } from "../../../src/npk/npk.js";
import { pack } from "../../../src/npk/pack.js";
import type { ExitStatus, Notification } from "../../../src/protocol/messages.js";
import { readPublicKey } from "../../../src/npk/signature.js";
import { ContainerHarness } from "../../helpers/containers.js";
import { EXAMPLE_KEY, EXAMPLE_PUB } from "../../helpers/npk.js";
import { createFixture, loopDevicesFor, type Fixture } from "../npk/fixtures.js";

/** Waits in the guest: TCG on a loaded machine is many times slower than the host. */
const SLOW_MS = 60_000;

const probe = await probeKernelVerity();
const skip = probe.available ? false : probe.reason;

/** One line repeated to 64 KiB: a file whose data blocks can be found in the NPK. */
const MARK = "skiff-verity-test-payload-0123456789abcdef\n";
const PAYLOAD = MARK.repeat(Math.ceil(65536 / MARK.length));

/** Flips one byte in the middle of the payload's data inside the NPK file (uncompressed image). */
async function tamper(npkPath: string): Promise<void> {
  const bytes = await readFile(npkPath);
  const at = bytes.indexOf(PAYLOAD.slice(0, 4 * MARK.length));
  assert.ok(at > 0, "the payload is stored uncompressed in the package");
  const file = await open(npkPath, "r+");
  try {
    const where = at + 8192;
    await file.write(Buffer.from([bytes[where]! ^ 0x01]), 0, 1, where);
    await file.sync();
  } finally {
    await file.close();
  }
}

void describe("kernel dm-verity mounts", { skip }, () => {
  let fx: Fixture;
  before(async () => {
    fx = await createFixture("verity-kernel");
    await writeFile(join(fx.root, "payload.txt"), PAYLOAD);
  });
  after(async () => {
    await fx?.cleanup();
  });

  void it("mounts a signed image from a verity device, and removes device and loop at umount", async () => {
    const npkPath = join(fx.dir, "ok.npk");
    await pack({
      manifestPath: fx.manifest,
      rootDir: fx.root,
      out: npkPath,
      keyPath: fx.secretKey,
      compression: "none",
    });
    const npk = await openNpk(npkPath, { key: await readPublicKey(fx.publicKey) });
    const name = verityDeviceName(verityNamePrefix(fx.dir), "test", "hello:0.0.2");
    const target = join(fx.dir, "mnt-ok");
    await mkdir(target);
    const handle = await mountImage(npk, target, { method: "dm-verity", verityName: name });
    try {
      assert.equal(handle.method, "dm-verity");
      assert.equal(handle.verity, "kernel");
      assert.equal(handle.verityDevice, name);
      const device = (await listDmDevices()).find((d) => d.name === name);
      assert.ok(device, "the verity device exists");
      assert.equal((await findMount(target))?.source, device.device);
      assert.equal(await readFile(join(target, "payload.txt"), "utf8"), PAYLOAD);
      assert.equal((await loopDevicesFor(npkPath)).length, 1, "one loop device under the verity device");
    } finally {
      await umount(handle);
    }
    assert.equal(await findMount(target), undefined);
    assert.equal(
      (await listDmDevices()).find((d) => d.name === name),
      undefined,
    );
    assert.deepEqual(await loopDevicesFor(npkPath), [], "the loop device went with the verity device");
  });

  void it("a block changed after the check reads as EIO, and nothing is left after umount", async () => {
    const npkPath = join(fx.dir, "bad.npk");
    await pack({
      manifestPath: fx.manifest,
      rootDir: fx.root,
      out: npkPath,
      keyPath: fx.secretKey,
      compression: "none",
    });
    const npk = await openNpk(npkPath, { key: await readPublicKey(fx.publicKey) });
    await tamper(npkPath);
    const name = verityDeviceName(verityNamePrefix(fx.dir), "test", "bad:0.0.2");
    const target = join(fx.dir, "mnt-bad");
    await mkdir(target);
    const handle = await mountImage(npk, target, { method: "dm-verity", verityName: name });
    try {
      await assert.rejects(readFile(join(target, "payload.txt")), { code: "EIO" });
      // Other files of the image still read: only the changed block fails.
      assert.equal(await readFile(join(target, "greeting.txt"), "utf8"), "Hello from the image\n");
    } finally {
      await umount(handle);
    }
    assert.equal(
      (await listDmDevices()).find((d) => d.name === name),
      undefined,
    );
    assert.deepEqual(await loopDevicesFor(npkPath), []);
  });
});

void describe("kernel dm-verity in the daemon", { skip }, () => {
  let h: ContainerHarness;
  let container: string;
  let npkPath: string;
  before(async () => {
    h = await ContainerHarness.create();
    await writeFile(join(h.dir, "busybox", "payload.txt"), PAYLOAD);
    const name = h.name("verity");
    await writeFile(
      join(h.dir, `${name}.yaml`),
      `name: ${name}\nversion: 1.0.0\ninit: /bin/sh\nargs: ["-c", "cat /payload.txt 2>&1 >/dev/null && echo read-ok"]\nuid: 1000\ngid: 1000\n` +
        `mounts:\n  /dev:\n    type: dev\n  /proc:\n    type: proc\n`,
    );
    npkPath = join(h.dir, "repo", `${name}-1.0.0.npk`);
    await pack({
      manifestPath: join(h.dir, `${name}.yaml`),
      rootDir: join(h.dir, "busybox"),
      out: npkPath,
      keyPath: EXAMPLE_KEY,
      compression: "none",
    });
    container = `${name}:1.0.0`;
    await h.startDaemon(`repositories.default.key = "${EXAMPLE_PUB}"`);
  });
  after(async () => {
    await h?.close();
  });

  async function exitOf(id: string, from: number): Promise<ExitStatus> {
    const n = await h.waitFor((x) => x.type === "exit" && x.container === id, SLOW_MS, from);
    return (n as Extract<Notification, { type: "exit" }>).status;
  }

  function verityName(): string {
    return verityDeviceName(verityNamePrefix(join(h.dir, "state", "run")), "default", container);
  }

  void it("health says kernel; a container reads its image through the verity device", async () => {
    assert.equal((await h.client.health()).verity, "kernel");
    const from = h.notifications.length;
    await h.client.start(container);
    const status = await exitOf(container, from);
    assert.ok(status.type === "exit" && status.code === 0, JSON.stringify(status));
    const data = await h.client.inspect(container);
    assert.equal(data.mounted, true);
    assert.equal(data.verity, "kernel");
    assert.ok((await listDmDevices()).some((d) => d.name === verityName()));
    await h.waitForLog(container, "read-ok", SLOW_MS);
  });

  void it("a kill -9 of the daemon: the next one re-uses the mount; a stale device of its own is removed, another daemon's is not", async () => {
    // Another daemon's device (another run_dir), over a copy of the same package.
    const foreignNpk = join(h.dir, "foreign.npk");
    await writeFile(foreignNpk, await readFile(npkPath));
    const npk = await openNpk(foreignNpk, { key: await readPublicKey(EXAMPLE_PUB) });
    const foreign = verityDeviceName(verityNamePrefix(join(h.dir, "elsewhere")), "default", container);
    const foreignTarget = join(h.dir, "foreign-mnt");
    await mkdir(foreignTarget);
    const foreignHandle = await mountImage(npk, foreignTarget, { method: "dm-verity", verityName: foreign });
    try {
      await h.killDaemon();
      await h.startDaemon(`repositories.default.key = "${EXAMPLE_PUB}"`);
      const data = await h.client.inspect(container);
      assert.equal(data.mounted, true, "the mount was adopted");
      assert.equal(data.verity, "kernel");
      assert.ok(
        (await listDmDevices()).some((d) => d.name === verityName()),
        "and its device kept",
      );

      // A crash after which the package is gone: its device is a leftover.
      await h.killDaemon();
      const moved = join(h.dir, "moved.npk");
      await writeFile(moved, await readFile(npkPath));
      await rm(npkPath);
      await h.startDaemon(`repositories.default.key = "${EXAMPLE_PUB}"`);
      assert.equal(
        (await listDmDevices()).find((d) => d.name === verityName()),
        undefined,
      );
      assert.ok(
        (await listDmDevices()).some((d) => d.name === foreign),
        "another daemon's device stays",
      );
      await h.waitForDaemonLog(/removed stale verity devices/, SLOW_MS);

      await h.stopDaemon();
      await writeFile(npkPath, await readFile(moved));
      await h.startDaemon(`repositories.default.key = "${EXAMPLE_PUB}"`);
    } finally {
      await umount(foreignHandle).catch(() => closeVerityDevice(foreign));
    }
  });

  void it("a block changed after install fails the container's read with EIO, logged and reported", async () => {
    await h.client.umount([container]);
    assert.equal(
      (await listDmDevices()).find((d) => d.name === verityName()),
      undefined,
      "umount removed it",
    );
    await tamper(npkPath);
    const from = h.notifications.length;
    await h.client.start(container);
    const status = await exitOf(container, from);
    assert.ok(status.type === "exit" && status.code !== 0, JSON.stringify(status));
    // cat's stderr goes to the container's log: `cat: read error: Input/output error`.
    const lines = await h.logLines(container);
    assert.ok(
      lines.some((l) => l.includes("Input/output error")),
      `the read failed with EIO; the log ends: ${JSON.stringify(lines.slice(-5))}`,
    );
    await h.waitForDaemonLog(/dm-verity: .*corrupted/, SLOW_MS);
    assert.equal((await h.client.inspect(container)).verity, "kernel");
  });

  void it("shutdown removes the verity device", async () => {
    assert.ok((await listDmDevices()).some((d) => d.name === verityName()));
    await h.stopDaemon();
    assert.equal(
      (await listDmDevices()).find((d) => d.name === verityName()),
      undefined,
    );
  });
});
