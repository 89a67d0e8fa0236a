// NPK benchmarks, wired into `npm run bench` by bench/run.ts:
// - userspace dm-verity check (verifyVerity) vs `veritysetup verify` on the same fs.img;
// - mount latency of squashfs through a loop device vs erofs mounted from the file;
// - parse of the largest accepted manifests vs JSON.parse of the same bytes, and what a parse in
//   the worker thread costs the event loop.
// Needs root, mksquashfs, mkfs.erofs and veritysetup. Everything lives in one temp directory.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseManifest } from "../src/npk/manifest/index.js";
import { MANIFEST_LIMITS } from "../src/npk/manifest/reader.js";
import { parseManifestOffLoop } from "../src/npk/manifest/worker.js";
import { promisify } from "node:util";
import { mountImage, umount } from "../src/daemon/mount/index.js";
import { genKey } from "../src/npk/signature.js";
import { openNpk } from "../src/npk/npk.js";
import { pack } from "../src/npk/pack.js";
import { verifyVerity } from "../src/npk/verity.js";
import { timed } from "./stats.js";

const run = promisify(execFile);
const IMAGE_MIB = 32;
const VERITY_RUNS = 3;
const MOUNT_RUNS = 10;
const PARSE_RUNS = 20;

function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
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

/**
 * The two worst cases the limits accept, written as JSON (which is YAML too) so both parsers
 * read the same bytes: as many values as allowed, and as many bytes as allowed in long strings.
 */
function largestManifests(): [string, string][] {
  const head = { name: "bench", version: "1.0.0", init: "/bin/true", uid: 1000, gid: 1000 };
  const custom: Record<string, string> = {};
  for (let i = 0; 2 * i + 16 < MANIFEST_LIMITS.maxValues; i++) custom[`k${i}`] = "v";
  const values = JSON.stringify({ ...head, custom });
  const long: Record<string, string> = {};
  const room = () => MANIFEST_LIMITS.maxBytes - JSON.stringify({ ...head, custom: long }).length;
  for (let i = 0; room() > 1100; i++) long[`k${i}`] = "v".repeat(1000);
  return [
    ["values", values],
    ["bytes", JSON.stringify({ ...head, custom: long })],
  ];
}

async function benchManifestParse(): Promise<string[]> {
  const lines: string[] = [];
  for (const [label, text] of largestManifests()) {
    for (let i = 0; i < 3; i++) parseManifest(text); // warm up
    const ours = await samples(PARSE_RUNS, async () => {
      const start = performance.now();
      parseManifest(text);
      return Promise.resolve(performance.now() - start);
    });
    const json = await samples(PARSE_RUNS, async () => {
      const start = performance.now();
      JSON.parse(text);
      return Promise.resolve(performance.now() - start);
    });
    await parseManifestOffLoop(text);
    const before = performance.eventLoopUtilization();
    const offLoop = await samples(PARSE_RUNS, () => timed(() => parseManifestOffLoop(text)));
    const busy = performance.eventLoopUtilization(before);
    const [a, b] = [median(ours), median(json)];
    lines.push(
      `manifest parse, largest accepted (${label}, ${(text.length / 1024).toFixed(0)} KiB): ${a.toFixed(2)} ms, ` +
        `JSON.parse ${b.toFixed(3)} ms, ratio ${(a / b).toFixed(0)}x; in the worker ${median(offLoop).toFixed(2)} ms ` +
        `round trip, ${(busy.active / PARSE_RUNS).toFixed(2)} ms of event loop each`,
    );
  }
  return lines;
}

/** Runs the NPK benchmarks and returns the lines to print. */
export async function benchNpk(): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), "skiff-bench-npk-"));
  try {
    const lines = await benchManifestParse();
    const packages = await buildPackages(dir);
    lines.push(await benchVerity(dir, packages.squashfs));
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
