// NPK benchmarks, wired into `npm run bench` by bench/run.ts:
// - userspace dm-verity check (verifyVerity) vs `veritysetup verify` on the same fs.img;
// - mount latency of squashfs through a loop device vs erofs mounted from the file.
// Needs root, mksquashfs, mkfs.erofs and veritysetup. Everything lives in one temp directory.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { promisify } from "node:util";
import { mountImage, umount } from "../src/daemon/mount/index.js";
import { genKey } from "../src/npk/signature.js";
import { openNpk } from "../src/npk/npk.js";
import { pack } from "../src/npk/pack.js";
import { verifyVerity } from "../src/npk/verity.js";

const run = promisify(execFile);
const IMAGE_MIB = 32;
const VERITY_RUNS = 3;
const MOUNT_RUNS = 10;

function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

async function timed(body: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await body();
  return performance.now() - start;
}

async function samples(runs: number, body: () => Promise<number>): Promise<number[]> {
  const result: number[] = [];
  for (let i = 0; i < runs; i++) result.push(await body());
  return result;
}

async function buildPackages(dir: string): Promise<{ squashfs: string; erofs: string }> {
  const root = join(dir, "root");
  await mkdir(root);
  // Incompressible content so the image really is IMAGE_MIB large.
  for (let i = 0; i < IMAGE_MIB; i++) await writeFile(join(root, `blob-${i}`), randomBytes(1024 * 1024));
  const manifest = join(dir, "manifest.yaml");
  await writeFile(manifest, "name: bench\nversion: 1.0.0\ninit: /blob-0\nuid: 1000\ngid: 1000\n");
  const { secretPath } = await genKey(dir, "bench");
  const squashfs = join(dir, "bench-squashfs.npk");
  const erofs = join(dir, "bench-erofs.npk");
  const common = { manifestPath: manifest, rootDir: root, keyPath: secretPath };
  await pack({ ...common, out: squashfs, fs: "squashfs", compression: "none" });
  await pack({ ...common, out: erofs, fs: "erofs", compression: "none" });
  return { squashfs, erofs };
}

async function benchVerity(dir: string, npkPath: string): Promise<string> {
  const npk = await openNpk(npkPath);
  if (npk.verity === undefined) throw new Error("benchmark package is not signed");
  // veritysetup has no data offset, so both sides verify the same extracted fs.img.
  const image = join(dir, "fs.img");
  const bytes = await readFile(npkPath);
  await writeFile(image, bytes.subarray(npk.fsImage.offset, npk.fsImage.offset + npk.fsImage.size));
  const offset = npk.verity.offset;
  const root = Buffer.from(npk.verity.rootHash, "hex");
  const ours = await samples(VERITY_RUNS, () =>
    timed(() => verifyVerity({ path: image, offset: 0, size: offset }, offset, root)),
  );
  const theirs = await samples(VERITY_RUNS, () =>
    timed(() =>
      run("veritysetup", ["verify", `--hash-offset=${offset}`, image, image, npk.verity!.rootHash]),
    ),
  );
  const [a, b] = [median(ours), median(theirs)];
  const mib = (offset / 1024 / 1024).toFixed(1);
  return `npk verity check (${mib} MiB): userspace ${a.toFixed(1)} ms, veritysetup ${b.toFixed(1)} ms, ratio ${(a / b).toFixed(2)}x`;
}

async function benchMount(dir: string, npkPath: string): Promise<{ ms: number; method: string }> {
  const npk = await openNpk(npkPath);
  const target = join(dir, `mnt-${npk.fsImage.type}`);
  await mkdir(target);
  let method = "";
  const latencies = await samples(MOUNT_RUNS, async () => {
    const start = performance.now();
    const handle = await mountImage(npk, target);
    const ms = performance.now() - start;
    method = handle.method;
    await umount(handle);
    return ms;
  });
  return { ms: median(latencies), method };
}

/** Runs the NPK benchmarks and returns the lines to print. */
export async function benchNpk(): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), "skiff-bench-npk-"));
  try {
    const packages = await buildPackages(dir);
    const lines = [await benchVerity(dir, packages.squashfs)];
    const squashfs = await benchMount(dir, packages.squashfs);
    const erofs = await benchMount(dir, packages.erofs);
    lines.push(
      `npk mount latency (median of ${MOUNT_RUNS}): squashfs via ${squashfs.method} ${squashfs.ms.toFixed(1)} ms, ` +
        `erofs via ${erofs.method} ${erofs.ms.toFixed(1)} ms, ratio ${(squashfs.ms / erofs.ms).toFixed(2)}x`,
    );
    return lines;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
