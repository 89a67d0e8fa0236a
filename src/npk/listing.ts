// File listings of fs.img for `inspect`. squashfs: `unsquashfs -lls -o OFFSET NPK` reads the
// image in place. erofs: dump.erofs can neither read at an offset nor recurse, so fs.img is
// extracted (fsck.erofs --extract, ownership preserved) to a scratch directory and walked.
import { createReadStream, createWriteStream } from "node:fs";
import { lstat, mkdtemp, readdir, readlink, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { runTool } from "./exec.js";
import { FS_IMG_NAME } from "./npk.js";
import type { Npk } from "./npk.js";

const TYPE_CHARS: [number, string][] = [
  [0o040000, "d"],
  [0o120000, "l"],
  [0o020000, "c"],
  [0o060000, "b"],
  [0o010000, "p"],
  [0o140000, "s"],
];

export function modeString(mode: number): string {
  const type = TYPE_CHARS.find(([bits]) => (mode & 0o170000) === bits)?.[1] ?? "-";
  const rwx = [0o400, 0o200, 0o100, 0o40, 0o20, 0o10, 0o4, 0o2, 0o1]
    .map((bit, i) => (mode & bit ? "rwx"[i % 3] : "-"))
    .join("");
  return type + rwx;
}

/** `MODE UID/GID SIZE /PATH[ -> TARGET]`, one line per file below `root`, depth first, sorted. */
async function walk(root: string, relative = ""): Promise<string[]> {
  const lines: string[] = [];
  for (const name of (await readdir(join(root, relative))).sort()) {
    const path = join(relative, name);
    const st = await lstat(join(root, path));
    const link = st.isSymbolicLink() ? ` -> ${await readlink(join(root, path))}` : "";
    lines.push(`${modeString(st.mode)} ${st.uid}/${st.gid} ${String(st.size).padStart(10)} /${path}${link}`);
    if (st.isDirectory()) lines.push(...(await walk(root, path)));
  }
  return lines;
}

export async function listFsImage(npk: Npk, signal?: AbortSignal): Promise<string> {
  if (npk.fsImage.type === "squashfs") {
    return (await runTool("unsquashfs", ["-lls", "-o", String(npk.fsImage.offset), npk.path], { signal }))
      .stdout;
  }
  const work = await mkdtemp(join(tmpdir(), "skiff-inspect-"));
  try {
    const image = join(work, FS_IMG_NAME);
    const { offset, size } = npk.fsImage;
    await pipeline(
      createReadStream(npk.path, { start: offset, end: offset + size - 1 }),
      createWriteStream(image),
      {
        signal,
      },
    );
    const root = join(work, "root");
    await runTool("fsck.erofs", ["--preserve", `--extract=${root}`, image], { signal });
    return (await walk(root)).join("\n") + "\n";
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
