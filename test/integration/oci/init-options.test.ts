// skiff-init's manifest options for real: `sched` applied to the app inside a runc container, and
// SO_PASSCRED set on a passed socket (checked by the kernel's own getsockopt).
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, it } from "node:test";
import { promisify } from "node:util";
import { buildOciSpec, serializeOciSpec } from "../../../src/daemon/oci/spec.js";
import { parseManifest } from "../../../src/npk/manifest/index.js";

const run = promisify(execFile);
const tag = randomBytes(4).toString("hex");
const dir = join(tmpdir(), `skiff-init-options-${tag}`);
const runcRoot = join("/run", `skiff-init-options-${tag}`);
const cgroupPath = `/skiff-test-init-options-${tag}`;
const SKIFF_INIT = fileURLToPath(new URL("../../../../native/build/skiff-init", import.meta.url));
let runs = 0;

/** Runs `manifest` (init /bin/busybox) under runc with the real skiff-init; returns stdout and exit code. */
async function runContainer(manifest: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const bundle = join(dir, `bundle-${runs}`);
  const id = `skiff-init-options-${tag}-${runs++}`;
  const rootfs = join(bundle, "rootfs");
  for (const sub of ["bin", "dev", "proc"]) mkdirSync(join(rootfs, sub), { recursive: true });
  copyFileSync("/bin/busybox", join(rootfs, "bin/busybox"));
  const { spec } = buildOciSpec({
    manifest: parseManifest(manifest),
    containerId: "sched:0.0.1",
    rootfsPath: rootfs,
    dataDir: join(bundle, "data"),
    cgroupsPath: cgroupPath,
    initHostPath: SKIFF_INIT,
  });
  writeFileSync(join(bundle, "config.json"), serializeOciSpec(spec));
  try {
    const { stdout, stderr } = await run("runc", ["--root", runcRoot, "run", "--bundle", bundle, id], {
      signal: AbortSignal.timeout(60_000),
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: unknown; stdout?: string; stderr?: string };
    if (typeof failed.code !== "number") throw error;
    return { code: failed.code, stdout: failed.stdout ?? "", stderr: failed.stderr ?? "" };
  } finally {
    await run("runc", ["--root", runcRoot, "delete", "--force", id]).catch(() => undefined);
  }
}

const schedManifest = (policy: string): string => `name: sched
version: 0.0.1
init: /bin/busybox
args: [awk, "{ print \\"nice=\\" $19 \\" policy=\\" $41 }", /proc/self/stat]
uid: 1000
gid: 1000
mounts:
  /proc:
    type: proc
sched:
  policy: ${policy}
`;

void describe("skiff-init applies the manifest's options", () => {
  after(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(runcRoot, { recursive: true, force: true });
    for (const controller of readdirSync("/sys/fs/cgroup")) {
      const path = join("/sys/fs/cgroup", controller, cgroupPath);
      if (existsSync(path)) rmdirSync(path);
    }
  });

  void it(
    "runs the app under the manifest's scheduling policy (runc 1.1.5 alone would not)",
    { skip: (!existsSync("/bin/busybox") || !existsSync(SKIFF_INIT)) && "needs busybox and skiff-init" },
    async () => {
      // Policy numbers of sched(7): SCHED_BATCH 3, SCHED_IDLE 5.
      const batch = await runContainer(schedManifest("!batch { nice: 7 }"));
      assert.equal(batch.code, 0, batch.stderr);
      assert.equal(batch.stdout.trim(), "nice=7 policy=3");
      const idle = await runContainer(schedManifest("idle"));
      assert.equal(idle.code, 0, idle.stderr);
      assert.equal(idle.stdout.trim(), "nice=0 policy=5");
      // An unprivileged container may not take a realtime policy: the app is not run, 126 (as Northstar fails).
      const fifo = await runContainer(schedManifest("!fifo { priority: 10 }"));
      assert.equal(fifo.code, 126);
      assert.match(fifo.stderr, /skiff-init: sched: Operation not permitted/);
    },
  );

  void it(
    "sets SO_PASSCRED on a passed socket with --passcred and leaves it unset otherwise",
    { skip: (!existsSync("/usr/bin/python3") || !existsSync(SKIFF_INIT)) && "needs python3 and skiff-init" },
    async () => {
      mkdirSync(dir, { recursive: true });
      const server = await listen(join(dir, `passcred-${tag}.sock`));
      try {
        const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
        const probe =
          "import socket; s = socket.socket(fileno=4); " +
          "print(s.getsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED)); s.detach()";
        const withOption = await runInit(["--passcred", "4", "--", "python3", "-c", probe], fd);
        assert.deepEqual(withOption, { code: 0, stdout: "1\n" });
        // A socket init was not asked about keeps the kernel's default.
        const other = await listen(join(dir, `plain-${tag}.sock`));
        try {
          const otherFd = (other as unknown as { _handle: { fd: number } })._handle.fd;
          assert.deepEqual(await runInit(["--", "python3", "-c", probe], otherFd), {
            code: 0,
            stdout: "0\n",
          });
        } finally {
          other.close();
        }
        assert.equal((await runInit(["--passcred", "x", "--", "true"], fd)).code, 2);
      } finally {
        server.close();
      }
    },
  );
});

void describe("skiff-mksock makes the sockets Node cannot", () => {
  const MKSOCK = fileURLToPath(new URL("../../../../native/build/skiff-mksock", import.meta.url));
  void it(
    "creates datagram and seq_packet sockets at their fds with mode, owner and SO_PASSCRED, then execs",
    { skip: (!existsSync("/usr/bin/python3") || !existsSync(MKSOCK)) && "needs python3 and skiff-mksock" },
    async () => {
      mkdirSync(dir, { recursive: true });
      const dg = join(dir, `mk-${tag}:dg`);
      const sp = join(dir, `mk-${tag}:sp`);
      const probe =
        "import socket, os, stat\n" +
        "for fd in (4, 5):\n" +
        "    s = socket.socket(fileno=fd)\n" +
        "    print(fd, s.type.name, s.getsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED)); s.detach()\n" +
        `st = os.stat("${dg}"); print(oct(stat.S_IMODE(st.st_mode)), st.st_uid, st.st_gid)\n`;
      const args = [
        ...["--socket", "5", "seq_packet", "0", "600", "-1", "-1", sp],
        ...["--socket", "4", "datagram", "1", "640", "1000", "1001", dg],
        ...["--", "/usr/bin/python3", "-c", probe],
      ];
      const { stdout } = await run(MKSOCK, args, { signal: AbortSignal.timeout(30_000) });
      assert.deepEqual(stdout.trim().split("\n"), [
        "4 SOCK_DGRAM 1",
        "5 SOCK_SEQPACKET 0",
        "0o640 1000 1001",
      ]);
      rmSync(dg);
      rmSync(sp);
      // A failure removes what was made and does not exec.
      await assert.rejects(
        run(MKSOCK, [
          "--socket",
          "4",
          "datagram",
          "0",
          "600",
          "-1",
          "-1",
          dg,
          "--socket",
          "5",
          "datagram",
          "0",
          "600",
          "-1",
          "-1",
          join(dir, "missing", "x"),
          "--",
          "/bin/true",
        ]),
        /bind: No such file or directory/,
      );
      assert.equal(existsSync(dg), false);
    },
  );
});

async function listen(path: string): Promise<Server> {
  const server = createServer();
  server.maxConnections = 0;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => resolve());
  });
  return server;
}

/** Runs skiff-init on the host with `fd` as its fd 4 (fd 3 closed: no status pipe). */
function runInit(args: string[], fd: number): Promise<{ code: number | null; stdout: string }> {
  const child = spawn(SKIFF_INIT, args, { stdio: ["ignore", "pipe", "inherit", "ignore", fd] });
  let stdout = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout });
    });
  });
}
