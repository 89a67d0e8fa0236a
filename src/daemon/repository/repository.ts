/**
 * Repositories hold installed NPKs. An `fs` repository keeps them as files in its directory
 * and finds them again at startup; a `mem` repository keeps them under the run directory and
 * forgets them when the daemon starts again (nothing persisted). A keyed repository accepts
 * only packages signed with its key. The file system image (verity) is checked when a package
 * is installed and before anything from it is used: kernel dm-verity checks every block read,
 * or where the kernel has none the whole image is checked before each mount (docs/npk.md). The
 * start-up scan checks signature and hashes only (the image check of every installed package
 * cost start-up time in proportion to all their sizes, and a mount does it anyway).
 *
 * Start-up cost per installed package (docs/npk.md, "Many packages"): the scan opens a few files
 * at a time (bounded transient memory) and takes known manifests from a cache of parsed
 * manifests, `<run_dir>/manifest-cache/<repository>.json`, rewritten after each scan with the
 * entries of the packages found.
 */
import type { KeyObject } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Logger } from "pino";
import { resolveWithin } from "../../common/paths.js";
import { NpkError } from "../../npk/errors.js";
import type { ManifestCache } from "../../npk/npk.js";
import { NPK_EXTENSION } from "../../npk/names.js";
import type { RepositoryConfig } from "../config/schema.js";
import type { InstalledPackage } from "../events/data.js";

/** Declared in the daemon's vocabulary (events/data.ts), which the state speaks. */
export type { InstalledPackage } from "../events/data.js";

/** Packages opened at once by the start-up scan: bounds the transient buffers (RSS). */
const SCAN_CONCURRENCY = 8;
/** A manifest cache file larger than this is ignored (4 KiB per entry, 1000s of packages). */
const MAX_MANIFEST_CACHE_BYTES = 16 * 2 ** 20;

export class Repository {
  private constructor(
    readonly config: RepositoryConfig,
    /** Where this repository's NPK files live. */
    readonly dir: string,
    readonly key: KeyObject | undefined,
    /** The parsed-manifest cache of this repository (see above). */
    private readonly manifestCacheFile: string,
  ) {}

  get id(): string {
    return this.config.id;
  }

  static async open(config: RepositoryConfig, runDir: string): Promise<Repository> {
    // The NPK reader (zip, YAML, signatures) loads when a repository has a key or a package, not
    // in a daemon that serves none (docs/footprint.md); the checks are the same whenever it loads.
    const key =
      config.key === undefined
        ? undefined
        : await (await import("../../npk/signature.js")).readPublicKey(config.key);
    const dir = config.type === "fs" ? config.dir! : resolveWithin(runDir, "repositories", config.id);
    if (config.type === "mem") await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return new Repository(config, dir, key, resolveWithin(runDir, "manifest-cache", `${config.id}.json`));
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

  /**
   * Opens one NPK file (signature and hashes checked for keyed repositories) and, with
   * `verifyImage` in a keyed repository, checks its whole file system image too.
   */
  async load(
    path: string,
    opts: { verifyImage: boolean; manifestCache?: ManifestCache; signal?: AbortSignal },
  ): Promise<InstalledPackage> {
    const { openNpk, verifyFsImage } = await import("../../npk/npk.js");
    const npk = await openNpk(path, {
      ...(this.key ? { key: this.key } : {}),
      ...(opts.manifestCache ? { manifestCache: opts.manifestCache } : {}),
    });
    if (this.key && opts.verifyImage) await verifyFsImage(npk, opts.signal);
    const { size } = await stat(path);
    return { repository: this.id, npk, size };
  }

  /** The cache file's entries; a missing, oversized or damaged file is an empty cache. */
  private async readManifestCache(): Promise<Map<string, string>> {
    const size = await stat(this.manifestCacheFile).then(
      (s) => s.size,
      () => 0,
    );
    if (size === 0 || size > MAX_MANIFEST_CACHE_BYTES) return new Map();
    try {
      const doc: unknown = JSON.parse(await readFile(this.manifestCacheFile, "utf8"));
      if (typeof doc !== "object" || doc === null || Array.isArray(doc)) return new Map();
      return new Map(
        Object.entries(doc).filter(
          (e): e is [string, string] => /^[0-9a-f]{64}$/.test(e[0]) && typeof e[1] === "string",
        ),
      );
    } catch {
      return new Map();
    }
  }

  private async writeManifestCache(entries: ReadonlyMap<string, string>): Promise<void> {
    await mkdir(dirname(this.manifestCacheFile), { recursive: true, mode: 0o700 });
    const temp = `${this.manifestCacheFile}.tmp`;
    await writeFile(temp, JSON.stringify(Object.fromEntries(entries)), { mode: 0o600 });
    await rename(temp, this.manifestCacheFile);
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
    const known = await this.readManifestCache();
    const used = new Map<string, string>();
    const manifestCache: ManifestCache = {
      get: (digest) => {
        const json = known.get(digest);
        if (json !== undefined) used.set(digest, json);
        return json;
      },
      set: (digest, json) => void used.set(digest, json),
    };
    const results = new Array<PromiseSettledResult<InstalledPackage>>(names.length);
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(SCAN_CONCURRENCY, names.length) }, async () => {
        for (let i = next++; i < names.length; i = next++) {
          results[i] = await this.load(join(this.dir, names[i]!), {
            verifyImage: false,
            manifestCache,
            signal,
          }).then(
            (value) => ({ status: "fulfilled", value }) as const,
            (reason: unknown) => ({ status: "rejected", reason }) as const,
          );
        }
      }),
    );
    const changed = used.size !== known.size || [...used.keys()].some((k) => !known.has(k));
    if (changed) {
      await this.writeManifestCache(used).catch((e: unknown) =>
        log.warn({ repository: this.id, err: e }, "cannot write the manifest cache"),
      );
    }
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
