/**
 * Repositories hold installed NPKs. An `fs` repository keeps them as files in its directory
 * and finds them again at startup; a `mem` repository keeps them under the run directory and
 * forgets them when the daemon starts again (nothing persisted). A keyed repository accepts
 * only packages signed with its key, and checks the file system image (verity) before a
 * package becomes visible; after that, kernel dm-verity checks every block read, or where the
 * kernel has none the image is checked again before each mount (docs/npk.md).
 */
import type { KeyObject } from "node:crypto";
import { mkdir, readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import { resolveWithin } from "../../common/paths.js";
import { NpkError } from "../../npk/errors.js";
import { openNpk, verifyFsImage, NPK_EXTENSION } from "../../npk/npk.js";
import { readPublicKey } from "../../npk/signature.js";
import type { RepositoryConfig } from "../config/schema.js";
import type { InstalledPackage } from "../events/data.js";

/** Declared in the daemon's vocabulary (events/data.ts), which the state speaks. */
export type { InstalledPackage } from "../events/data.js";

export class Repository {
  private constructor(
    readonly config: RepositoryConfig,
    /** Where this repository's NPK files live. */
    readonly dir: string,
    readonly key: KeyObject | undefined,
  ) {}

  get id(): string {
    return this.config.id;
  }

  static async open(config: RepositoryConfig, runDir: string): Promise<Repository> {
    const key = config.key === undefined ? undefined : await readPublicKey(config.key);
    const dir = config.type === "fs" ? config.dir! : resolveWithin(runDir, "repositories", config.id);
    if (config.type === "mem") await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return new Repository(config, dir, key);
  }

  /** Directory for uploads in progress: on the same file system, so the final rename is atomic. */
  get uploadDir(): string {
    return join(this.dir, ".uploads");
  }

  /**
   * The file an installed package gets. Throws PathEscapeError when the name cannot be one file
   * name (longer than NAME_MAX with its version): checked at upload, before the install commits.
   */
  packagePath(name: string, version: string): string {
    return resolveWithin(this.dir, `${name}-${version}${NPK_EXTENSION}`);
  }

  /** Opens and, for keyed repositories, fully verifies one NPK file. */
  async load(path: string, signal?: AbortSignal): Promise<InstalledPackage> {
    const npk = await openNpk(path, this.key ? { key: this.key } : {});
    if (this.key) await verifyFsImage(npk, signal);
    const { size } = await stat(path);
    return { repository: this.id, npk, size };
  }

  /**
   * Finds the installed packages, checking them in parallel. A bad file (a broken or unsigned
   * package, or one whose manifest breaks a rule such as the name rule: a package named `..`
   * installed by an older Skiff) is refused: logged as an error naming the file, left in place
   * untouched, and not served. The daemon goes on with the others (see docs/npk.md).
   */
  async scan(log: Logger, signal?: AbortSignal): Promise<InstalledPackage[]> {
    await rm(this.uploadDir, { recursive: true, force: true });
    if (this.config.type === "mem") return [];
    const names = (await readdir(this.dir)).filter((n) => n.endsWith(NPK_EXTENSION));
    const results = await Promise.allSettled(names.map((n) => this.load(join(this.dir, n), signal)));
    const found: InstalledPackage[] = [];
    results.forEach((r, i) => {
      if (r.status === "fulfilled") found.push(r.value);
      else {
        const reason =
          r.reason instanceof NpkError ? `${r.reason.kind}: ${r.reason.message}` : String(r.reason);
        const file = join(this.dir, names[i]!);
        log.error(
          { repository: this.id, file },
          `refusing package file ${file}: ${reason} (the file is left in place and not served)`,
        );
      }
    });
    return found;
  }
}
