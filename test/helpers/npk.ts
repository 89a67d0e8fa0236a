/** Builds small real NPKs for tests with `skiff pack`'s library, signed with the example key. */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pack } from "../../src/npk/pack.js";
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
