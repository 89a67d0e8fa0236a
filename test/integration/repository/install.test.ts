import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connect, RuntimeError, type Client } from "../../../src/client/index.js";
import type { Notification } from "../../../src/protocol/messages.js";
import { startInProcessDaemon, type TestDaemon } from "../../helpers/daemon.js";
import { EXAMPLE_PUB, TestPackages, type PackedTestPackage } from "../../helpers/npk.js";
import { RawPeer } from "../../helpers/raw.js";
import { waitFor, within } from "../../helpers/wait.js";

const unique = `t${randomBytes(3).toString("hex")}`;

describe("install, uninstall, mount over the console", () => {
  let d: TestDaemon;
  let packages: TestPackages;
  let client: Client;
  let small: PackedTestPackage;
  before(async () => {
    packages = await TestPackages.create();
    small = await packages.build(`${unique}-small`);
    d = await startInProcessDaemon(
      (dir) => `
[console.main.options]
max_install_size = "2M"
[repositories.signed]
type = "fs"
dir = "${dir}/signed"
key = "${EXAMPLE_PUB}"
[repositories.plain]
type = "fs"
dir = "${dir}/plain"
capacity_num = 2
[repositories.mem]
type = "mem"
capacity_size = "300K"
[repositories.factory]
type = "fs"
dir = "${dir}/factory"
read_only = true
`,
    );
    client = await connect(d.url, { notifications: true });
  });
  after(async () => {
    client.close();
    await d.stop();
    await packages.remove();
  });

  async function install(repo: string, pkg: PackedTestPackage): Promise<string> {
    const data = await readFile(pkg.path);
    return client.install(repo, data.length, data);
  }

  async function expectInstallError(
    repo: string,
    pkg: PackedTestPackage | Buffer,
    pattern: RegExp,
  ): Promise<void> {
    const data = Buffer.isBuffer(pkg) ? pkg : await readFile(pkg.path);
    await assert.rejects(client.install(repo, data.length, data), (e: unknown) => {
      assert.ok(e instanceof RuntimeError, String(e));
      assert.match(e.message, pattern);
      return true;
    });
  }

  async function nextNotifications(count: number): Promise<Notification[]> {
    const out: Notification[] = [];
    for await (const n of client.notifications()) {
      out.push(n);
      if (out.length === count) break;
    }
    return out;
  }

  it("installs and uninstalls 10 times with notifications", async () => {
    for (let round = 0; round < 10; round++) {
      assert.equal(await install("signed", small), small.id);
      assert.deepEqual(await client.list(), [small.id]);
      await client.uninstall(small.id);
      assert.deepEqual(await client.list(), []);
    }
    const seen = await nextNotifications(20);
    for (let round = 0; round < 10; round++) {
      assert.deepEqual(seen[round * 2], { type: "install", container: small.id });
      assert.deepEqual(seen[round * 2 + 1], { type: "uninstall", container: small.id });
    }
    assert.deepEqual(
      (await readdir(join(d.dir, "signed"))).filter((n) => n.endsWith(".npk")),
      [],
    );
  });

  it("rejects a duplicate name:version in any repository", async () => {
    await install("signed", small);
    await expectInstallError("plain", small, /install duplicate/);
    await expectInstallError("signed", small, /install duplicate/);
    await client.uninstall(small.id);
    await nextNotifications(2);
  });

  it("a keyed repository refuses unsigned packages; unknown and read-only repositories are refused", async () => {
    const unsigned = await packages.build(`${unique}-unsigned`, "1.0.0", { signed: false });
    await expectInstallError("signed", unsigned, /invalid package: signature/);
    await expectInstallError("nowhere", small, /invalid repository/);
    await expectInstallError("factory", small, /invalid repository/);
    // The connection is still in step after each refusal.
    assert.deepEqual(await client.list(), []);
  });

  it("enforces capacity_num of an fs repository and capacity_size of a mem repository", async () => {
    const a = await packages.build(`${unique}-a`);
    const b = await packages.build(`${unique}-b`);
    const c = await packages.build(`${unique}-c`);
    await install("plain", a);
    await install("plain", b);
    await expectInstallError("plain", c, /repository plain is full: it holds 2 of 2/);
    const big = await packages.build(`${unique}-big`, "1.0.0", { padding: 200 * 1024 });
    const big2 = await packages.build(`${unique}-big2`, "1.0.0", { padding: 200 * 1024 });
    await install("mem", big);
    await expectInstallError("mem", big2, /capacity/);
    for (const id of [a.id, b.id, big.id]) await client.uninstall(id);
    await nextNotifications(6);
  });

  it("bad packages get a clear error and leave nothing behind", async () => {
    const good = await readFile(small.path);
    await expectInstallError("signed", good.subarray(0, good.length - 100), /invalid package: zip/);
    const flipped = Buffer.from(good);
    flipped[8192 + 100] = flipped[8192 + 100]! ^ 0xff; // inside fs.img
    await expectInstallError("signed", flipped, /invalid package: (verity|hash)/);
    await expectInstallError("signed", randomBytes(5000), /invalid package/);
    assert.deepEqual(
      (await readdir(join(d.dir, "signed"))).filter((n) => n !== ".uploads"),
      [],
    );
    assert.deepEqual(await readdir(join(d.dir, "signed", ".uploads")).catch(() => []), []);
  });

  it("an install over max_install_size is refused and only that connection closes", async () => {
    const raw = await RawPeer.open(d.url);
    await raw.handshake();
    raw.send(`{"request":{"install":{"repository":"signed","size":${10 * 1024 * 1024}}}}`);
    const answer = (await raw.next()) as {
      response: { install: { error: { error: { configuration: { context: string } } } } };
    };
    assert.match(answer.response.install.error.error.configuration.context, /exceeds the install limit/);
    assert.equal(await raw.next(), null);
    assert.deepEqual(await client.list(), []);
  });

  it("a client that disconnects mid-upload leaves nothing behind", async () => {
    const raw = await RawPeer.open(d.url);
    await raw.handshake();
    const data = await readFile(small.path);
    raw.send(`{"request":{"install":{"repository":"signed","size":${data.length}}}}`);
    raw.socket.write(data.subarray(0, 4096));
    const uploads = join(d.dir, "signed", ".uploads");
    // The upload must have started (its partial file exists), or this test proves nothing.
    await waitFor(async () => (await readdir(uploads).catch(() => [])).length > 0, {
      timeoutMs: 20_000,
      what: "the partial upload to appear in .uploads",
    });
    raw.close();
    await within(raw.closed, { timeoutMs: 20_000, what: "the connection to close" });
    // The daemon still serves, and the partial upload is gone once the session noticed.
    await waitFor(async () => (await readdir(uploads)).length === 0, {
      timeoutMs: 20_000,
      what: "the partial upload to be removed",
      detail: async () => (await readdir(uploads)).join(", "),
    });
    assert.deepEqual(await client.list(), []);
  });

  it("mounts and unmounts known and unknown containers with per-entry results", async () => {
    await install("signed", small);
    const results = await client.mount([small.id, `${unique}-nope:1.0.0`]);
    assert.deepEqual(results, [
      { type: "ok", container: small.id },
      {
        type: "error",
        container: `${unique}-nope:1.0.0`,
        error: { type: "invalid_container", container: `${unique}-nope:1.0.0` },
      },
    ]);
    const data = await client.inspect(small.id);
    assert.equal(data.mounted, true);
    const mountinfo = await readFile("/proc/self/mountinfo", "utf8");
    assert.ok(mountinfo.includes(`${small.id.replace(":", "-")}`));
    assert.deepEqual(await client.mount([small.id]), [{ type: "ok", container: small.id }]);
    assert.deepEqual(await client.umount([small.id, `${unique}-nope:1.0.0`]), [
      { type: "ok", container: small.id },
      {
        type: "error",
        container: `${unique}-nope:1.0.0`,
        error: { type: "invalid_container", container: `${unique}-nope:1.0.0` },
      },
    ]);
    assert.equal((await client.inspect(small.id)).mounted, false);
    // Uninstalling a mounted container unmounts it first.
    await client.mount([small.id]);
    await client.uninstall(small.id);
    assert.ok(!(await readFile("/proc/self/mountinfo", "utf8")).includes(`${small.id.replace(":", "-")}`));
    await nextNotifications(2);
  });

  it("a restarted daemon finds fs packages again and skips a bad file", async () => {
    await install("signed", small);
    await writeFile(join(d.dir, "signed", "garbage.npk"), "not a package");
    const again = await startInProcessDaemon(
      (dir) => `
[repositories.signed]
type = "fs"
dir = "${d.dir}/signed"
key = "${EXAMPLE_PUB}"
[repositories.other]
type = "fs"
dir = "${dir}/other"
`,
    );
    try {
      const c2 = await connect(again.url);
      assert.deepEqual(await c2.list(), [small.id]);
      c2.close();
    } finally {
      await again.stop();
    }
    assert.ok((await stat(join(d.dir, "signed", "garbage.npk"))).isFile());
    await client.uninstall(small.id);
    await nextNotifications(2);
  });
});
