// Hostile manifests in authentic (signed) packages, installed over the console into a real
// skiffd: each is refused by a limit with a clear error, while the daemon keeps answering other
// clients and its memory stays bounded.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connect, RuntimeError, type Client } from "../../../src/client/index.js";
import { startDaemonProcess, type DaemonProcess } from "../../helpers/daemon.js";
import { EXAMPLE_PUB, TestPackages } from "../../helpers/npk.js";
import { aliasBombManifest, envManifest, withManifest } from "./hostile-package.js";

const unique = `t${randomBytes(3).toString("hex")}`;
/** Far above what a refused manifest may cost; before the limits an alias bomb took 880 MB. */
const MAX_DAEMON_PEAK_RSS_KB = 400 * 1024;

async function peakRssKb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(status);
  assert.ok(match, "no VmHWM in /proc/PID/status");
  return Number(match[1]);
}

describe("hostile manifests in signed packages", { timeout: 120_000 }, () => {
  let d: DaemonProcess;
  let packages: TestPackages;
  let installer: Client;
  let other: Client;
  let base: string;

  before(async () => {
    packages = await TestPackages.create();
    base = (await packages.build(`${unique}-base`)).path;
    d = await startDaemonProcess(
      (dir) => `
[console.main.options]
max_install_size = "32M"
max_request_size = "1M"
[repositories.signed]
type = "fs"
dir = "${dir}/signed"
key = "${EXAMPLE_PUB}"
`,
    );
    installer = await connect(d.url);
    other = await connect(d.url);
  });
  after(async () => {
    installer?.close();
    other?.close();
    await d?.stop();
    await packages?.remove();
  });

  /** Installs `manifest` in a signed package; asserts the refusal and that `other` is served meanwhile. */
  async function expectRefused(label: string, manifest: Buffer, reason: RegExp): Promise<void> {
    const path = join(packages.dir, `${label}.npk`);
    await withManifest(base, manifest, path);
    const data = await readFile(path);
    const install = installer.install("signed", data.length, data);
    // Another client is answered while the install is in flight (and after it).
    assert.ok(Array.isArray(await other.list()));
    await assert.rejects(install, (e: unknown) => {
      assert.ok(e instanceof RuntimeError, String(e));
      assert.match(e.message, /invalid package/);
      assert.match(e.message, reason);
      return true;
    });
    assert.ok(Array.isArray(await other.list()));
    assert.ok(!(await other.list()).some((id) => id.startsWith(`${unique}-`) && !id.includes("base")));
  }

  it("refuses an env of 16k variables by the manifest size limit", async () => {
    await expectRefused("env16k", envManifest(`${unique}-env16k`, 16_000), /manifest\.yaml.*more than 65536/);
  });

  it("refuses an env of a million variables (a 12 MB package) before reading it", async () => {
    await expectRefused(
      "env1m",
      envManifest(`${unique}-env1m`, 1_000_000),
      /manifest\.yaml.*more than 65536/,
    );
  });

  it("refuses an env of 100 variables by the variable count, before decoding them", async () => {
    await expectRefused("env100", envManifest(`${unique}-env100`, 100), /env: at most 64 entries/);
  });

  it("refuses a small alias bomb by the value budget", async () => {
    // 10^9 values once expanded, in under 1 KiB.
    await expectRefused("bomb", aliasBombManifest(`${unique}-bomb`, 9, 10), /more than 2048 values/);
  });

  it("refuses a 1 MB alias bomb by the manifest size limit", async () => {
    const bomb = aliasBombManifest(`${unique}-bigbomb`, 12, 10, 1024 * 1024);
    await expectRefused("bigbomb", bomb, /more than 65536/);
  });

  it("refuses a deeply nested manifest before the YAML parser recurses", async () => {
    const deep = Buffer.from(
      `name: ${unique}-deep\nversion: 1.0.0\ncustom: ${"[".repeat(5000)}${"]".repeat(5000)}\n`,
    );
    await expectRefused("deep", deep, /nested deeper than 32 levels/);
  });

  it("kept its memory bounded and still installs a good package", async () => {
    assert.ok(d.child.pid !== undefined);
    const peak = await peakRssKb(d.child.pid);
    assert.ok(peak < MAX_DAEMON_PEAK_RSS_KB, `daemon peak RSS ${peak} kB`);
    const good = await packages.build(`${unique}-good`);
    const data = await readFile(good.path);
    assert.equal(await installer.install("signed", data.length, data), good.id);
  });
});
