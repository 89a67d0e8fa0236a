// Install and mount benchmarks over the console, against a real `skiffd` process:
// - `install` of a 50 MiB NPK (incompressible data, squashfs without compression), streamed by
//   the client library as `skiff install` does, vs `cp` + fsync of the same file interleaved round
//   by round (install also fsyncs; target >= 0.5x, docs/footprint.md);
// - `mount` of that package through the console vs mount(8) of its file system image through a
//   loop device (the same offset and size).
// Both run for a keyed repository (signature and verity of fs.img checked, as on a device) and
// an unkeyed one. Needs root, mksquashfs and util-linux mount. Everything lives in temp dirs.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { connect, type Client } from "../src/client/index.js";
import { openNpk } from "../src/npk/npk.js";
import { pack } from "../src/npk/pack.js";
import { startDaemonProcess } from "../test/helpers/daemon.js";
import { EXAMPLE_KEY, EXAMPLE_PUB } from "../test/helpers/npk.js";
import { timed, versus, versusTarget } from "./stats.js";

const run = promisify(execFile);
const DATA_BYTES = 50 * 2 ** 20;
const RUNS = 5;
/** What `skiff install` reads the package file in. */
const CLIENT_READ_BYTES = 256 * 1024;
const NAME = `bench-install-${randomBytes(3).toString("hex")}`;
const CONTAINER = `${NAME}:1.0.0`;

function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

const mbPerSec = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000);

/** A signed 50 MiB package: one file of random bytes, squashfs without compression. */
async function buildPackage(dir: string): Promise<string> {
  const root = join(dir, "root");
  await mkdir(root);
  await writeFile(join(root, "data.bin"), randomBytes(DATA_BYTES));
  const manifest = join(dir, "manifest.yaml");
  await writeFile(manifest, `name: ${NAME}\nversion: 1.0.0\nuid: 1000\ngid: 1000\n`);
  const out = join(dir, `${NAME}.npk`);
  await pack({
    manifestPath: manifest,
    rootDir: root,
    keyPath: EXAMPLE_KEY,
    out,
    compression: "none",
    fs: "squashfs",
  });
  await rm(root, { recursive: true });
  return out;
}

/**
 * Median install time (ms) into `repository` and median `cp` + fsync time (ms) of the same file,
 * interleaved round by round so that both meet the same load; each install is uninstalled again.
 * The client reads the file as `skiff install` does (src/cli/commands/repository.ts).
 */
async function installRuns(
  client: Client,
  repository: string,
  npk: string,
  size: number,
  copyDir: string,
): Promise<{ install: number; cp: number }> {
  const installs: number[] = [];
  const copies: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    installs.push(
      await timed(() =>
        client.install(repository, size, createReadStream(npk, { highWaterMark: CLIENT_READ_BYTES })),
      ),
    );
    await client.uninstall(CONTAINER);
    copies.push(await cpOnce(npk, copyDir, i));
  }
  return { install: median(installs), cp: median(copies) };
}

/** Median console mount time (ms) of the installed package; each run is unmounted again. */
async function mountRuns(client: Client): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    let result;
    times.push(await timed(async () => ([result] = await client.mount([CONTAINER]))));
    if (result!.type === "error") throw new Error(`mount failed: ${JSON.stringify(result)}`);
    await client.umount([CONTAINER]);
  }
  return median(times);
}

async function cpOnce(npk: string, dir: string, i: number): Promise<number> {
  const copy = join(dir, `copy-${i}.npk`);
  const time = await timed(() => run("sh", ["-c", 'cp "$0" "$1" && sync "$1"', npk, copy]));
  await rm(copy);
  return time;
}

/**
 * mount(8) of the package's file system image (without the verity hash area) through a loop
 * device, as Skiff's loop mount does it (autoclear on umount).
 */
async function loopMountRuns(npk: string, dir: string): Promise<number> {
  const opened = await openNpk(npk);
  const target = join(dir, "loop-mnt");
  await mkdir(target);
  const size = opened.verity?.offset ?? opened.fsImage.size;
  const options = `ro,nosuid,nodev,loop,offset=${opened.fsImage.offset},sizelimit=${size}`;
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    times.push(await timed(() => run("mount", ["-t", "squashfs", "-o", options, npk, target])));
    await run("umount", [target]);
  }
  return median(times);
}

export async function benchInstall(): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), "skiff-bench-install-"));
  const d = await startDaemonProcess(
    (daemonDir) => `
[repositories.keyed]
type = "fs"
dir = "${daemonDir}/keyed"
key = "${EXAMPLE_PUB}"
[repositories.plain]
type = "fs"
dir = "${daemonDir}/plain"
`,
  );
  const client = await connect(d.url, { timeout: 120_000 });
  try {
    const npk = await buildPackage(dir);
    const { size } = await stat(npk);
    const mib = (size / 2 ** 20).toFixed(1);
    const loopMount = await loopMountRuns(npk, dir);
    const lines: string[] = [];
    for (const repository of ["keyed", "plain"]) {
      const what = repository === "keyed" ? "keyed repository, verified" : "unkeyed repository";
      // The copies go to the daemon's directory: the same file system as the repositories.
      const { install, cp } = await installRuns(client, repository, npk, size, d.dir);
      const ratio = cp / install;
      lines.push(
        versusTarget(
          `install ${mib} MiB NPK over the console (${what}, median of ${RUNS}, interleaved with cp)`,
          `${mbPerSec(size, install).toFixed(0)} MB/s`,
          `cp + fsync ${mbPerSec(size, cp).toFixed(0)} MB/s`,
          ratio,
          { text: ">= 0.5x", met: ratio >= 0.5 },
        ),
      );
      await client.install(repository, size, createReadStream(npk));
      const mount = await mountRuns(client);
      await client.uninstall(CONTAINER);
      lines.push(
        versus(
          `mount ${mib} MiB squashfs NPK over the console (${what}, median of ${RUNS})`,
          `${mount.toFixed(1)} ms`,
          `mount -o loop ${loopMount.toFixed(1)} ms`,
          mount / loopMount,
        ),
      );
    }
    return lines;
  } finally {
    client.close();
    await d.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
