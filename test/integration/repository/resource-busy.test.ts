import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { RuntimeError } from "../../../src/client/index.js";
import { ContainerHarness } from "../../helpers/containers.js";
import { RawPeer } from "../../helpers/raw.js";
import { TestPackages } from "../../helpers/npk.js";

describe("resources in use, and an install larger than it announced", () => {
  let h: ContainerHarness;
  let packages: TestPackages;
  before(async () => {
    h = await ContainerHarness.create();
    packages = await TestPackages.create();
    await h.startDaemon();
  });
  after(async () => {
    await h.close();
    await packages.remove();
  });

  it("umount of a resource used by a running container is refused; the highest matching version is used", async () => {
    const older = await packages.build(h.name("res"), "1.0.0", { signed: false });
    const newer = await packages.build(h.name("res"), "1.2.0", { signed: false });
    for (const p of [older, newer]) {
      const data = await readFile(p.path);
      await h.client.install("default", data.length, data);
    }
    const user = await h.add(
      h.name("user"),
      "/bin/sh",
      ["-c", "ls /res; sleep 1000"],
      "",
      `  /res:\n    type: resource\n    name: ${h.name("res")}\n    version: ">=1.0.0"\n    dir: /\n`,
    );
    const data = await readFile(`${h.dir}/repo/${h.name("user")}-1.0.0.npk`);
    await h.client.install("default", data.length, data);
    await h.client.start(user);
    await h.waitForLog(user, "stdout data.bin");
    assert.equal((await h.client.inspect(newer.id)).mounted, true, "the highest matching version");
    const [result] = await h.client.umount([newer.id]);
    assert.deepEqual(result, {
      type: "error",
      container: newer.id,
      error: { type: "umount_busy", container: newer.id },
    });
    await assert.rejects(
      h.client.uninstall(newer.id),
      (e: unknown) => e instanceof RuntimeError && e.variant === "umount_busy",
    );
    await h.client.stop(user);
    assert.deepEqual(await h.client.umount([newer.id]), [{ type: "ok", container: newer.id }]);
  });

  it("an install that sends more bytes than it announced is refused and the daemon keeps serving", async () => {
    const pkg = await packages.build(h.name("big"), "1.0.0", { signed: false, padding: 64 * 1024 });
    const data = await readFile(pkg.path);
    const raw = await RawPeer.open(h.url);
    await raw.handshake();
    raw.send(`{"request":{"install":{"repository":"default","size":${data.length - 4096}}}}`);
    raw.socket.write(data);
    const answer = JSON.stringify(await raw.next());
    assert.match(answer, /"install":\{"error":\{"error":\{"invalid_arguments":\{"cause":"invalid package/);
    raw.close();
    assert.ok(!(await h.client.list()).includes(pkg.id));
  });
});
