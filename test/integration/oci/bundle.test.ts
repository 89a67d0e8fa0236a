import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmdirSync,
  rmSync,
  statSync,
} from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { pino } from "pino";
import { detectLayout } from "../../../src/daemon/cgroups/layout.js";
import { nativeBinary } from "../../../src/daemon/monitor/native.js";
import { removeBundle, writeBundle, type BundleInput } from "../../../src/daemon/oci/bundle.js";
import { readHostFacts } from "../../../src/daemon/oci/host.js";
import { detectOciRuntime } from "../../../src/daemon/oci/runtime.js";
import { parseManifest } from "../../../src/npk/manifest/index.js";
import { waitFor as waitForCondition, within } from "../../helpers/wait.js";

const tag = randomBytes(4).toString("hex");
// Short: socket paths must fit in 107 bytes.
const runDir = `/run/skiff-bt-${tag}`;
const layout = { runDir };
const rootfs = join(runDir, "image");
const dataDir = join(runDir, "data");
const cgroupPrefix = `/skiff-test-bundle-${tag}`;
const SKIFF_INIT = nativeBinary("skiff-init");

const MANIFEST = `name: sockets
version: 0.0.1
init: /bin/busybox
args:
  - sh
  - -c
  - echo fd4=$(/bin/busybox readlink /proc/self/fd/4) env=$SKIFF_SOCKET_api ls=$(/bin/busybox ls /sockets); exec /bin/busybox sleep 1000
uid: 1000
gid: 1000
mounts:
  /proc:
    type: proc
  /data:
    type: persist
  /sockets:
    type: sockets
sockets:
  api:
    type: stream
    mode: 0o660
    uid: 1000
    gid: 1000
`;

const opened: number[] = [];
const ids: string[] = [];
const runcRoot = join(runDir, "runc");

/** `runc --root <runcRoot> ARGS` (the daemon runs runc only through skiff-monitor). */
function runc(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync("runc", ["--root", runcRoot, ...args], { encoding: "utf8", timeout: 10_000 });
}

/** The container's `runc state`, or undefined when runc does not know it. */
function runcState(id: string): { status: string; pid: number; bundle: string } | undefined {
  const result = runc("state", id);
  if (result.status !== 0) {
    assert.match(result.stderr, /does not exist/, `runc state ${id}`);
    return undefined;
  }
  return JSON.parse(result.stdout) as { status: string; pid: number; bundle: string };
}

async function bundleInput(containerId: string): Promise<BundleInput> {
  return {
    log: pino({ level: "silent" }),
    layout,
    manifest: parseManifest(MANIFEST),
    containerId,
    rootfsPath: rootfs,
    dataDir,
    cgroupsPath: `${cgroupPrefix}-${ids.length}`,
    initHostPath: SKIFF_INIT,
    host: await readHostFacts(),
  };
}

/** `runc run -d` with fd 3 (skiff-init's status records go to /dev/null) and the socket as fd 4. */
async function runDetached(id: string, bundleDir: string, socketFd: number, out: number) {
  ids.push(id);
  const status = openSync("/dev/null", "w");
  opened.push(status);
  const child = spawn(
    "runc",
    ["--root", runcRoot, "run", "-d", "--preserve-fds", "2", "--bundle", bundleDir, id],
    { stdio: ["ignore", out, out, status, socketFd] },
  );
  const code = await within(new Promise<number | null>((resolve) => child.once("exit", resolve)), {
    timeoutMs: 60_000,
    what: `runc run -d ${id} to return`,
  });
  assert.equal(code, 0, `runc run -d ${id}`);
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  return waitForCondition(probe, { timeoutMs: 20_000, what, intervalMs: 10 });
}

function removeCgroups(): void {
  for (const controller of readdirSync("/sys/fs/cgroup")) {
    for (let i = 0; i < ids.length + 1; i++) {
      const path = join("/sys/fs/cgroup", controller, `${cgroupPrefix}-${i}`);
      if (existsSync(path)) rmdirSync(path);
    }
  }
}

void describe(
  "bundles under real runc",
  { skip: !existsSync(SKIFF_INIT) && "native/build/skiff-init is not built" },
  () => {
    after(() => {
      for (const id of ids) runc("delete", "--force", id);
      for (const fd of opened) closeSync(fd);
      rmSync(runDir, { recursive: true, force: true });
      removeCgroups();
    });

    void it("writes config.json, the persist dir and a listening socket the container receives as fd 4", async () => {
      for (const dir of ["bin", "dev", "proc", "data", "sockets"])
        mkdirSync(join(rootfs, dir), { recursive: true });
      copyFileSync("/bin/busybox", join(rootfs, "bin/busybox"));
      const id = `sockets-${tag}-a`;
      const bundle = await writeBundle(await bundleInput(id));
      assert.equal(bundle.preserveFds, 2);
      assert.equal(bundle.socketFds.length, 1);
      assert.equal(statSync(bundle.bundleDir).mode & 0o777, 0o700);
      assert.equal(statSync(join(bundle.bundleDir, "config.json")).mode & 0o777, 0o600);
      const persist = statSync(join(dataDir, "sockets"));
      assert.deepEqual([persist.uid, persist.gid], [1000, 1000]);
      const socketPath = join(runDir, "sockets", `${id}:api`);
      const socket = statSync(socketPath);
      assert.ok(socket.isSocket());
      assert.deepEqual([socket.mode & 0o7777, socket.uid, socket.gid], [0o660, 1000, 1000]);

      const hostSide = readlinkSync(`/proc/self/fd/${bundle.socketFds[0] as number}`);
      const outPath = join(runDir, "out");
      const out = openSync(outPath, "w");
      opened.push(out);
      await runDetached(id, bundle.bundleDir, bundle.socketFds[0] as number, out);
      await bundle.releaseSocketFds();
      const line = await waitFor(
        "the container's output",
        () => readFileSync(outPath, "utf8").trim() || undefined,
      );
      assert.equal(line, `fd4=${hostSide} env=4 ls=${id}:api`);

      // The daemon's copy is closed: a connection now reaches the container's listening socket.
      await new Promise<void>((resolve, reject) => {
        const client = connect(socketPath, () => {
          client.destroy();
          resolve();
        });
        client.once("error", reject);
      });

      const state = runcState(id);
      assert.equal(state?.status, "running");
      assert.ok(state.pid > 0);
      assert.equal(state.bundle, bundle.bundleDir);

      assert.equal(runc("kill", "--all", id, "KILL").status, 0);
      await waitFor("stopped", () => (runcState(id)?.status === "stopped" ? true : undefined));
      assert.equal(runc("delete", id).status, 0);
      assert.equal(runcState(id), undefined);

      await removeBundle(layout, id);
      assert.equal(existsSync(bundle.bundleDir), false);
      assert.equal(existsSync(socketPath), false);
    });
  },
);

void describe("detectOciRuntime on this host", () => {
  void it("accepts runc", async () => {
    const info = await detectOciRuntime({ kind: "runc" }, await detectLayout());
    assert.equal(info.kind, "runc");
    assert.match(info.version, /^\d+\.\d+\.\d+/);
  });

  void it("refuses crun on a hybrid cgroup host, saying why", async (t) => {
    const layout = await detectLayout();
    if (layout.kind !== "hybrid") return t.skip("not a hybrid cgroup host");
    if (!existsSync("/usr/bin/crun")) return t.skip("crun is not installed");
    await assert.rejects(
      detectOciRuntime({ kind: "crun" }, layout),
      /crun 1\.\S+ refuses hybrid cgroup hosts/,
    );
  });

  void it("names a missing or wrong binary", async () => {
    const layout = await detectLayout();
    await assert.rejects(
      detectOciRuntime({ kind: "runc", path: `/nonexistent-${tag}` }, layout),
      /not found/,
    );
    await assert.rejects(detectOciRuntime({ kind: "runc", path: "/bin/true" }, layout), /is not runc/);
  });
});
