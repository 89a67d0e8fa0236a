/** Builds small real NPKs for tests with `skiff pack`'s library, signed with the example key. */
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseManifest } from "../../src/npk/manifest/index.js";
import { encodeMeta } from "../../src/npk/meta.js";
import { buildFsImage } from "../../src/npk/mkfs.js";
import { FS_IMG_ALIGNMENT, FS_IMG_NAME, MANIFEST_NAME, SIGNATURE_NAME } from "../../src/npk/npk.js";
import { pack } from "../../src/npk/pack.js";
import { readPrivateKey, signHashes } from "../../src/npk/signature.js";
import { appendVerity } from "../../src/npk/verity.js";
import { writeZip } from "../../src/npk/zip.js";
import { PACKAGE_ROOT } from "./daemon.js";

export const EXAMPLE_KEY = join(PACKAGE_ROOT, "examples/keys/skiff-example.key");
export const EXAMPLE_PUB = join(PACKAGE_ROOT, "examples/keys/skiff-example.pub");

export interface PackedTestPackage {
  path: string;
  id: string;
}

export class TestPackages {
  private constructor(readonly dir: string) {}

  static async create(): Promise<TestPackages> {
    return new TestPackages(await mkdtemp(join(tmpdir(), "skiff-npk-")));
  }

  /** A resource-style package (no init) holding `padding` bytes of random-ish data. */
  async build(
    name: string,
    version = "1.0.0",
    options: { signed?: boolean; padding?: number } = {},
  ): Promise<PackedTestPackage> {
    const work = join(this.dir, `${name}-${version}-src`);
    await mkdir(join(work, "root"), { recursive: true });
    await writeFile(
      join(work, "manifest.yaml"),
      `name: ${name}\nversion: ${version}\nuid: 1000\ngid: 1000\n`,
    );
    const data = Buffer.alloc(options.padding ?? 64);
    for (let i = 0; i < data.length; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i);
    await writeFile(join(work, "root", "data.bin"), data);
    const out = join(this.dir, `${name}-${version}${options.signed === false ? "-unsigned" : ""}.npk`);
    await pack({
      manifestPath: join(work, "manifest.yaml"),
      rootDir: join(work, "root"),
      keyPath: options.signed === false ? undefined : EXAMPLE_KEY,
      out,
      compression: "none",
    });
    return { path: out, id: `${name}:${version}` };
  }

  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * Packs an NPK whose manifest.yaml is `manifestYaml` verbatim, signed with the example key: unlike
 * `pack`, no manifest rule is applied, so tests can hand the daemon hostile packages (a name of
 * `..`, a resource `dir` of `/../../..`). The file system image is built from `rootDir` for
 * `imageManifestYaml`, a valid manifest with the same uid, gid and mount points.
 */
export async function packUnchecked(o: {
  manifestYaml: string;
  imageManifestYaml: string;
  rootDir: string;
  out: string;
}): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), "skiff-unchecked-"));
  try {
    const image = join(work, FS_IMG_NAME);
    await mkdir(join(work, "scratch"));
    await buildFsImage(parseManifest(o.imageManifestYaml), o.rootDir, image, join(work, "scratch"), {
      fs: "squashfs",
      compression: "none",
    });
    const verity = await appendVerity(image);
    const meta = encodeMeta();
    const sha256 = (data: Buffer | string) => createHash("sha256").update(data).digest("hex");
    const hashes = {
      metaHash: sha256(meta),
      manifestHash: sha256(o.manifestYaml),
      verityHash: verity.rootHash.toString("hex"),
      verityOffset: verity.verityOffset,
    };
    await writeZip(
      o.out,
      [
        { name: MANIFEST_NAME, data: Buffer.from(o.manifestYaml, "utf8") },
        {
          name: SIGNATURE_NAME,
          data: Buffer.from(signHashes(hashes, await readPrivateKey(EXAMPLE_KEY)), "utf8"),
        },
        { name: FS_IMG_NAME, data: { path: image }, align: FS_IMG_ALIGNMENT },
      ],
      { comment: meta },
    );
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
