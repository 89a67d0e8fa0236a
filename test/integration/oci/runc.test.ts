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

function buildBundle(): void {
  const rootfs = join(dir, "rootfs");
  for (const sub of ["bin", "dev", "proc", "data", "tmp"]) mkdirSync(join(rootfs, sub), { recursive: true });
  copyFileSync("/bin/busybox", join(rootfs, "bin/busybox"));
  // runc gives a tmpfs the mode of its mount point, so /tmp in the image decides who may write.
  chmodSync(join(rootfs, "tmp"), 0o1777);
  const dataDir = join(dir, "data");
  mkdirSync(join(dataDir, "hello"), { recursive: true });
  chownSync(join(dataDir, "hello"), 1000, 1000);
  const { spec } = buildOciSpec({
    manifest: parseManifest(MANIFEST),
    containerId: "hello:0.0.1",
    rootfsPath: rootfs,
    dataDir,
    cgroupsPath: cgroupPath,
    hostname: "skiff-oci-test",
    // skiff-init is built by the native team; busybox stands in for the bound file and runs directly.
    initHostPath: "/bin/busybox",
  });
  spec.process.args = ["/bin/busybox", "sh", "-c", SCRIPT];
  writeFileSync(join(dir, "config.json"), serializeOciSpec(spec));
}

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
    buildBundle();
    const { stdout } = await run("runc", ["--root", runcRoot, "run", "--bundle", dir, containerId], {
      signal: AbortSignal.timeout(60_000),
    });
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
});
