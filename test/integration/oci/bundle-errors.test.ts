import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { pino } from "pino";
import { promisify } from "node:util";
import { writeBundle, type BundleInput } from "../../../src/daemon/oci/bundle.js";
import { readHostFacts, resolveNetwork } from "../../../src/daemon/oci/host.js";
import { parseManifest } from "../../../src/npk/manifest/index.js";

const run = promisify(execFile);
const tag = randomBytes(4).toString("hex");
const runDir = `/run/skiff-be-${tag}`;
const netns = `skiff-test-${tag}`;

const BASE = "name: broken\nversion: 0.0.1\ninit: /bin/true\nuid: 1000\ngid: 1000\n";

async function input(manifest: string): Promise<BundleInput> {
  return {
    log: pino({ level: "silent" }),
    layout: { runDir },
    manifest: parseManifest(manifest),
    containerId: "broken:0.0.1",
    rootfsPath: join(runDir, "image"),
    dataDir: join(runDir, "data"),
    cgroupsPath: `/skiff-test-be-${tag}`,
    initHostPath: "/bin/true",
    host: await readHostFacts(),
  };
}

void describe("writeBundle failures leave nothing behind", () => {
  after(async () => {
    rmSync(runDir, { recursive: true, force: true });
    await run("ip", ["netns", "del", netns]).catch(() => undefined);
  });

  void it("closes and removes the sockets made before one it cannot make (no skiff-mksock given)", async () => {
    mkdirSync(join(runDir, "image"), { recursive: true });
    const manifest = `${BASE}sockets:\n  a:\n    type: stream\n    mode: 0o600\n  b:\n    type: datagram\n    mode: 0o600\n`;
    await assert.rejects(
      writeBundle(await input(manifest)),
      /sockets\.b: datagram sockets need skiff-mksock/,
    );
    assert.deepEqual(readdirSync(join(runDir, "sockets")), []);
    assert.equal(existsSync(join(runDir, "bundles", "broken:0.0.1")), false);
  });

  void it("refuses a missing named network namespace before writing anything", async () => {
    const manifest = `${BASE}network:\n  namespace: ${netns}\n`;
    await assert.rejects(
      writeBundle(await input(manifest)),
      new RegExp(`/run/netns/${netns} does not exist`),
    );
    assert.equal(existsSync(join(runDir, "bundles", "broken:0.0.1")), false);
  });

  void it(
    "joins a named network namespace that exists",
    { skip: !existsSync("/usr/sbin/ip") && "no ip" },
    async () => {
      await run("ip", ["netns", "add", netns]);
      const manifest = parseManifest(`${BASE}network:\n  namespace: ${netns}\n`);
      assert.deepEqual(await resolveNetwork(manifest, "/run/netns"), {
        kind: "path",
        path: `/run/netns/${netns}`,
      });
      const bundle = await writeBundle(await input(`${BASE}network:\n  namespace: ${netns}\n`));
      assert.equal(bundle.socketFds.length, 0);
    },
  );

  void it("clamps rlimits above the daemon's hard limit, with a warning", async (t) => {
    const host = await readHostFacts();
    const hard = host.rlimitHard.memlock!;
    if (hard > BigInt(Number.MAX_SAFE_INTEGER)) return t.skip("memlock is not limited on this host");
    const manifest = `${BASE}rlimits:\n  memlock:\n    soft: 1024\n    hard: ${hard + 1n}\n`;
    const bundle = await writeBundle({ ...(await input(manifest)), host });
    const config = readFileSync(join(bundle.bundleDir, "config.json"), "utf8");
    assert.match(config, new RegExp(`"type": "RLIMIT_MEMLOCK",\\s+"hard": ${hard},\\s+"soft": 1024`));
    assert.ok(bundle.warnings.some((w) => w.startsWith("rlimits.memlock: hard limit")));
  });
});
