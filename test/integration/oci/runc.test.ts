import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, it } from "node:test";
import { promisify } from "node:util";
import { buildOciSpec, serializeOciSpec } from "../../../src/daemon/oci/spec.js";
import { parseManifest } from "../../../src/npk/manifest/index.js";

const run = promisify(execFile);
const tag = randomBytes(4).toString("hex");
const dir = join(tmpdir(), `skiff-oci-test-${tag}`);
const runcRoot = join("/run", `skiff-oci-test-${tag}`);
const cgroupPath = `/skiff-test-oci-${tag}`;
const containerId = `skiff-oci-${tag}`;

const MANIFEST = `name: hello
version: 0.0.1
init: /bin/busybox
uid: 1000
gid: 1000
capabilities: []
rlimits:
  nofile:
    soft: 100
    hard: 200
mounts:
  /proc:
    type: proc
  /data:
    type: persist
  /tmp:
    type: tmpfs
    size: 1MB
seccomp:
  profile: default
cgroups:
  memory:
    memory_hard_limit: 67108864
  pids:
    max: 32
`;

// Prints one key=value line per property the spec should have produced.
const SCRIPT = `b=/bin/busybox
echo uid=$($b id -u) gid=$($b id -g)
echo host=$($b hostname)
echo name=$NORTHSTAR_NAME container=$SKIFF_CONTAINER
$b touch /rootfile 2>/dev/null && echo root=rw || echo root=ro
$b touch /data/f && echo data=rw
$b touch /tmp/f && echo tmp=rw
echo nofile=$(ulimit -n)
echo capeff=$($b awk '/^CapEff/ {print $2}' /proc/self/status)
echo nnp=$($b awk '/^NoNewPrivs/ {print $2}' /proc/self/status)
$b test -c /dev/null && echo devnull=char
($b chroot / $b true); echo chroot=$?
`;

const SKIFF_INIT = fileURLToPath(new URL("../../../../native/build/skiff-init", import.meta.url));
let runs = 0;

/** Writes a bundle for `manifest` under a fresh directory and runs it; `args` replaces process.args. */
async function runContainer(manifest: string, args?: string[]): Promise<{ code: number; stdout: string }> {
  const bundle = join(dir, `bundle-${runs++}`);
  const rootfs = join(bundle, "rootfs");
  for (const sub of ["bin", "dev", "proc", "data", "tmp"]) mkdirSync(join(rootfs, sub), { recursive: true });
  copyFileSync("/bin/busybox", join(rootfs, "bin/busybox"));
  // runc gives a tmpfs the mode of its mount point, so /tmp in the image decides who may write.
  chmodSync(join(rootfs, "tmp"), 0o1777);
  const dataDir = join(bundle, "data");
  mkdirSync(join(dataDir, "hello"), { recursive: true });
  chownSync(join(dataDir, "hello"), 1000, 1000);
  const { spec } = buildOciSpec({
    manifest: parseManifest(manifest),
    containerId: "hello:0.0.1",
    rootfsPath: rootfs,
    dataDir,
    cgroupsPath: cgroupPath,
    hostname: "skiff-oci-test",
    // Without args the real skiff-init runs; otherwise busybox stands in for the bound file.
    initHostPath: args === undefined ? SKIFF_INIT : "/bin/busybox",
  });
  if (args !== undefined) spec.process.args = args;
  writeFileSync(join(bundle, "config.json"), serializeOciSpec(spec));
  try {
    const { stdout } = await run("runc", ["--root", runcRoot, "run", "--bundle", bundle, containerId], {
      signal: AbortSignal.timeout(60_000),
    });
    return { code: 0, stdout };
  } catch (error) {
    const failed = error as { code?: unknown; stdout?: string };
    if (typeof failed.code !== "number") throw error;
    return { code: failed.code, stdout: failed.stdout ?? "" };
  }
}

const STRICT = `name: hello
version: 0.0.1
init: /bin/busybox
args: [true]
uid: 1000
gid: 1000
seccomp:
  allow:
    getuid: any
`;

function removeCgroups(): void {
  for (const controller of readdirSync("/sys/fs/cgroup")) {
    const path = join("/sys/fs/cgroup", controller, cgroupPath);
    if (existsSync(path)) rmdirSync(path);
  }
}

void describe("generated config.json under real runc", { skip: !existsSync("/bin/busybox") }, () => {
  after(async () => {
    await run("runc", ["--root", runcRoot, "delete", "--force", containerId]).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    rmSync(runcRoot, { recursive: true, force: true });
    removeCgroups();
  });

  void it("runs a busybox container with the manifest's user, mounts, limits and seccomp", async () => {
    const { code, stdout } = await runContainer(MANIFEST, ["/bin/busybox", "sh", "-c", SCRIPT]);
    assert.equal(code, 0);
    const lines = Object.fromEntries(
      stdout
        .trim()
        .split(/\s+/)
        .map((kv) => kv.split("=") as [string, string]),
    );
    assert.deepEqual(lines, {
      uid: "1000",
      gid: "1000",
      host: "skiff-oci-test",
      name: "hello",
      container: "hello:0.0.1",
      root: "ro",
      data: "rw",
      tmp: "rw",
      nofile: "100",
      capeff: "0000000000000000",
      nnp: "1",
      devnull: "char",
      chroot: "159", // killed by SIGSYS (128 + 31): chroot is outside the default profile
    });
  });

  void it(
    "lets skiff-init start the app under a strict allow list and kills the app on other syscalls",
    {
      skip: !existsSync(SKIFF_INIT) && "native/build/skiff-init is not built",
    },
    async () => {
      // busybox true also needs these; without them it dies by SIGSYS and init reports 128 + 31.
      assert.equal((await runContainer(STRICT)).code, 159);
      const allowed =
        STRICT +
        ["getgid", "setgid", "setuid", "geteuid", "getegid", "prctl"].map((n) => `    ${n}: any\n`).join("");
      assert.equal((await runContainer(allowed)).code, 0);
    },
  );
});
