// Image protection for keyed packages, wired into `npm run bench` by bench/run.ts
// (`npm run bench -- verity`; in the VM lane: `scripts/vm/run node dist/bench/run.js verity`).
// Where kernel dm-verity exists: a keyed mount through a verity device vs a plain loop mount of
// the same image (mount latency, and reading every file once after a fresh mount, where the
// kernel checks each block). Without it, the suite says so and prints what keyed mounts cost
// instead: the userspace check of the whole image plus the loop mount, vs the loop mount.
// Needs root and mksquashfs. Everything lives in one temp directory.
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import {
  mountImage,
  probeKernelVerity,
  umount,
  verityDeviceName,
  verityNamePrefix,
  type MountHandle,
  type MountImageOptions,
} from "../src/daemon/mount/index.js";
import { genKey, readPublicKey } from "../src/npk/signature.js";
import { openNpk, verifyFsImage, type Npk } from "../src/npk/npk.js";
import { pack } from "../src/npk/pack.js";

const IMAGE_MIB = 50;
const RUNS = 5;

function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

async function buildPackage(dir: string): Promise<Npk> {
  const root = join(dir, "root");
  await mkdir(root);
  // Incompressible content so the image really is IMAGE_MIB large.
  for (let i = 0; i < IMAGE_MIB; i++) await writeFile(join(root, `blob-${i}`), randomBytes(1024 * 1024));
  const manifest = join(dir, "manifest.yaml");
  await writeFile(manifest, "name: bench\nversion: 1.0.0\ninit: /blob-0\nuid: 1000\ngid: 1000\n");
  const { secretPath, publicPath } = await genKey(dir, "bench");
  const out = join(dir, "bench.npk");
  await pack({ manifestPath: manifest, rootDir: root, keyPath: secretPath, out, compression: "none" });
  return openNpk(out, { key: await readPublicKey(publicPath) });
}

/** Reads the image's blobs (the files at its root). */
async function readAll(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isFile()) await readFile(join(dir, entry.name));
  }
}

interface Figures {
  mountMs: number;
  readMs: number;
}

/** Mounts RUNS times: `prepare` + mount timed, then (fresh mount, cold caches) reading every file. */
async function measure(
  npk: Npk,
  target: string,
  opts: MountImageOptions,
  prepare: () => Promise<void> = () => Promise.resolve(),
): Promise<Figures> {
  const mounts: number[] = [];
  const reads: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const start = performance.now();
    await prepare();
    const handle: MountHandle = await mountImage(npk, target, opts);
    mounts.push(performance.now() - start);
    try {
      const readStart = performance.now();
      await readAll(target);
      reads.push(performance.now() - readStart);
    } finally {
      await umount(handle);
    }
  }
  return { mountMs: median(mounts), readMs: median(reads) };
}

function ratio(a: number, b: number): string {
  return `${(a / b).toFixed(2)}x`;
}

/** Runs the verity benchmark and returns the lines to print. */
export async function benchVerity(): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), "skiff-bench-verity-"));
  try {
    const npk = await buildPackage(dir);
    const target = join(dir, "mnt");
    await mkdir(target);
    const mib = `${IMAGE_MIB} MiB squashfs, median of ${RUNS}`;
    const plain = await measure(npk, target, { method: "loop" });
    const probe = await probeKernelVerity();
    if (!probe.available) {
      const userspace = await measure(npk, target, { method: "loop" }, () => verifyFsImage(npk));
      return [
        `kernel dm-verity: unavailable (${probe.reason}); keyed mounts use the userspace check`,
        `keyed mount, userspace check + loop (${mib}): ${userspace.mountMs.toFixed(1)} ms vs plain loop ` +
          `${plain.mountMs.toFixed(1)} ms, ratio ${ratio(userspace.mountMs, plain.mountMs)}`,
      ];
    }
    const verityName = verityDeviceName(verityNamePrefix(dir), "bench", "bench:1.0.0");
    const kernel = await measure(npk, target, { method: "dm-verity", verityName });
    return [
      `keyed mount, kernel dm-verity (${mib}): ${kernel.mountMs.toFixed(1)} ms vs plain loop ` +
        `${plain.mountMs.toFixed(1)} ms, ratio ${ratio(kernel.mountMs, plain.mountMs)} (target: within 2x)`,
      `reading every file after a fresh mount: dm-verity ${kernel.readMs.toFixed(1)} ms vs plain loop ` +
        `${plain.readMs.toFixed(1)} ms, ratio ${ratio(kernel.readMs, plain.readMs)}`,
    ];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
