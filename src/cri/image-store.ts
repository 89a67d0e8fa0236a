/**
 * The CRI image store: images pulled from registries, content-addressed on disk and unpacked
 * once, under `<data_dir>/cri/images`. This module is the one owner of the image records: the
 * daemon's state (containers, packages) does not know about CRI images until CRI containers
 * exist, so images need no event-loop transition yet; when containers come, "in use by a
 * container" will be asked of the state before a removal.
 *
 * On disk:
 *   images/<hex>/image.json   the record (names, sizes, user), written atomically (tmp + rename)
 *   images/<hex>/rootfs/      the unpacked layers, never written again after the pull
 *   tmp/                      pulls in progress and removals in progress; emptied at open
 * where <hex> is the sha256 of the image's config (its ID). A directory name is only ever built
 * from a digest that passed `isDigest` (64 lowercase hex digits), never from request text.
 *
 * INVARIANTS: `records` holds exactly the images whose `image.json` is in place; records and
 * the files change only inside `exclusive()` (one change at a time), so a tag names at most one
 * image and two pulls of one image commit once. Downloads and unpacking run outside it, in
 * their own directory under tmp/, so a slow pull holds nothing that another request needs.
 */
import { randomBytes } from "node:crypto";
import { lstat, mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import { digestHex, isDigest, type Digest } from "../oci-image/digest.js";
import { OciImageError } from "../oci-image/errors.js";
import { DEFAULT_MAX_IMAGE_SIZE, unpackImage } from "../oci-image/image.js";
import type { RegistryCredentials } from "../oci-image/registry.js";
import type { ResolvedImage } from "../oci-image/resolve.js";
import type { RegistryRef } from "../oci-image/reference.js";
import { namesOf, parsePullReference, type ImageLookup } from "./image-names.js";
import { resolveWithin } from "../common/paths.js";

/** Our own files, but read as input all the same. */
const MAX_RECORD_BYTES = 1024 * 1024;
const RECORD_VERSION = 1;
/**
 * Pulls that download at once; later ones wait their turn (a kubelet pulls one at a time by
 * default, a few with maxParallelImagePulls). Bounds the sockets, memory and disk bandwidth that
 * any number of PullImage calls can take.
 */
export const MAX_CONCURRENT_PULLS = 3;

/** One image as CRI describes it (`runtime.v1.Image`, in our names). */
export interface ImageRecord {
  id: Digest;
  /** Canonical `repo:tag` names; a tag moves to the image pulled last under it. */
  repoTags: string[];
  /** Canonical `repo@sha256:…` names. */
  repoDigests: string[];
  /** Compressed bytes of config and layers (what the registry served). */
  size: number;
  /** Bytes and inodes of the unpacked root (for ImageFsInfo). */
  unpackedBytes: number;
  inodes: number;
  /** The config's `User`, as written in the image (`app`, `1000:1000`, empty for root). */
  user: string;
  annotations: Record<string, string>;
  /**
   * The config's Entrypoint, Cmd, Env (`NAME=VALUE`) and WorkingDir: what a CRI container runs
   * when its config names no command (containers in pods, src/cri/containers/config.ts).
   */
  process: { entrypoint: string[]; cmd: string[]; env: string[]; workingDir: string };
}

export interface PullOptions {
  credentials?: RegistryCredentials;
  signal?: AbortSignal;
}

/** Thrown by `beforeLayers` when the image is already stored: no layer is read again. */
class AlreadyStored extends Error {
  constructor(readonly image: ResolvedImage) {
    super("already stored");
  }
}

export class ImageStore {
  private readonly records = new Map<Digest, ImageRecord>();
  private chain: Promise<unknown> = Promise.resolve();
  private pulling = 0;
  /** Pulls waiting for a slot, first come first served. */
  private readonly queue: (() => void)[] = [];

  private constructor(
    private readonly dir: string,
    private readonly log: Logger,
    private readonly maxImageSize: number,
  ) {}

  /** Opens (creating) the store in `dir`, reading every record and emptying tmp/. */
  static async open(dir: string, log: Logger, maxImageSize = DEFAULT_MAX_IMAGE_SIZE): Promise<ImageStore> {
    const store = new ImageStore(dir, log, maxImageSize);
    await rm(store.tmpDir, { recursive: true, force: true });
    await mkdir(store.tmpDir, { recursive: true });
    await mkdir(store.imagesDir, { recursive: true });
    for (const name of await readdir(store.imagesDir)) {
      const id = `sha256:${name}`;
      const record = isDigest(id) ? await store.readRecord(id) : undefined;
      if (record === undefined) {
        // A directory without a readable record is not an image (a crash between rename and
        // record cannot happen: the record is written before the directory is renamed in).
        log.warn({ entry: name }, "CRI image store: removing an entry that is not an image");
        await store.discard(resolveWithin(store.imagesDir, name));
        continue;
      }
      store.records.set(record.id, record);
    }
    return store;
  }

  /** The store's directory (ImageFsInfo's mount point). */
  get directory(): string {
    return this.dir;
  }

  private get imagesDir(): string {
    return join(this.dir, "images");
  }

  private get tmpDir(): string {
    return join(this.dir, "tmp");
  }

  private imageDir(id: Digest): string {
    return resolveWithin(this.imagesDir, digestHex(id));
  }

  /** The root file system of a stored image (read-only by convention: shared by its users). */
  rootfsOf(id: Digest): string {
    return join(this.imageDir(id), "rootfs");
  }

  list(): ImageRecord[] {
    return [...this.records.values()];
  }

  /** The image `lookup` names, if stored. */
  find(lookup: ImageLookup): ImageRecord | undefined {
    switch (lookup.kind) {
      case "id":
        return this.records.get(lookup.id);
      case "tag":
        return this.list().find((r) => r.repoTags.includes(lookup.name));
      case "digest":
        return this.list().find((r) => r.repoDigests.includes(lookup.name));
    }
  }

  /**
   * Pulls `reference` from its registry unless the image (by config digest) is stored already,
   * then records its names. Refuses what oci-image refuses (digest, size, platform, layer
   * checks) with its OciImageError; an ImageNameError for a reference that cannot be read.
   */
  async pull(reference: string, options: PullOptions = {}): Promise<ImageRecord> {
    const ref = parsePullReference(reference);
    await this.pullSlot(options.signal);
    try {
      return await this.pullNow(reference, ref, options);
    } finally {
      this.pulling -= 1;
      this.queue.shift()?.();
    }
  }

  /** Waits for one of MAX_CONCURRENT_PULLS slots (taken on return); rejects when `signal` aborts first. */
  private async pullSlot(signal: AbortSignal | undefined): Promise<void> {
    signal?.throwIfAborted();
    if (this.pulling < MAX_CONCURRENT_PULLS) {
      this.pulling += 1;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const turn = (): void => {
        signal?.removeEventListener("abort", abandon);
        this.pulling += 1;
        resolve();
      };
      const abandon = (): void => {
        this.queue.splice(this.queue.indexOf(turn), 1);
        reject(signal!.reason as Error);
      };
      this.queue.push(turn);
      signal?.addEventListener("abort", abandon, { once: true });
    });
  }

  private async pullNow(reference: string, ref: RegistryRef, options: PullOptions): Promise<ImageRecord> {
    const work = join(this.tmpDir, `pull-${randomBytes(8).toString("hex")}`);
    const root = join(work, "rootfs");
    await mkdir(root, { recursive: true });
    try {
      let image: ResolvedImage;
      let fresh = true;
      try {
        image = await unpackImage({ kind: "registry", ref }, root, work, {
          maxImageSize: this.maxImageSize,
          ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
          ...(options.signal === undefined ? {} : { signal: options.signal }),
          onWarning: (message) => this.log.warn({ image: reference }, message),
          beforeLayers: (resolved) => {
            if (this.records.has(resolved.configDigest)) throw new AlreadyStored(resolved);
          },
        });
      } catch (e) {
        if (!(e instanceof AlreadyStored)) throw e;
        image = e.image;
        fresh = false;
      }
      const names = namesOf(ref, image.rootDigest);
      const usage = fresh ? await diskUsage(root) : { bytes: 0, inodes: 0 };
      return await this.exclusive(async () => {
        let record = this.records.get(image.configDigest);
        if (record === undefined) {
          if (!fresh) throw new OciImageError("source", `${reference}: image removed while it was pulled`);
          record = {
            id: image.configDigest,
            repoTags: [],
            repoDigests: [],
            size: image.blobBytes,
            unpackedBytes: usage.bytes,
            inodes: usage.inodes,
            user: image.config.config.User ?? "",
            annotations: image.annotations,
            process: {
              entrypoint: image.config.config.Entrypoint ?? [],
              cmd: image.config.config.Cmd ?? [],
              env: image.config.config.Env ?? [],
              workingDir: image.config.config.WorkingDir ?? "",
            },
          };
          await this.writeRecord(join(work, "image.json"), record);
          await rm(join(work, "staging"), { recursive: true, force: true });
          await rename(work, this.imageDir(record.id));
        }
        return await this.name(record, names);
      });
    } finally {
      await this.discard(work);
    }
  }

  /** Removes the image `lookup` names; false when none is stored (not an error in CRI). */
  async remove(lookup: ImageLookup): Promise<boolean> {
    return this.exclusive(async () => {
      const record = this.find(lookup);
      if (record === undefined) return false;
      // Renamed out first, so a crash leaves either the whole image or garbage in tmp/.
      const doomed = resolveWithin(
        this.tmpDir,
        `remove-${digestHex(record.id)}-${randomBytes(4).toString("hex")}`,
      );
      await rename(this.imageDir(record.id), doomed);
      this.records.delete(record.id);
      await this.discard(doomed);
      return true;
    });
  }

  /** Adds `names` to `record`, taking its tag from any other image first; inside exclusive(). */
  private async name(record: ImageRecord, names: { tag?: string; digest?: string }): Promise<ImageRecord> {
    const { tag, digest } = names;
    if (tag !== undefined) {
      for (const other of this.records.values()) {
        if (other.id !== record.id && other.repoTags.includes(tag)) {
          await this.commit({ ...other, repoTags: other.repoTags.filter((t) => t !== tag) });
        }
      }
    }
    const updated: ImageRecord = {
      ...record,
      repoTags:
        tag === undefined || record.repoTags.includes(tag) ? record.repoTags : [...record.repoTags, tag],
      repoDigests:
        digest === undefined || record.repoDigests.includes(digest)
          ? record.repoDigests
          : [...record.repoDigests, digest],
    };
    await this.commit(updated);
    return updated;
  }

  /** Writes a stored image's record and then takes it as the truth. */
  private async commit(record: ImageRecord): Promise<void> {
    await this.writeRecord(join(this.imageDir(record.id), "image.json"), record);
    this.records.set(record.id, record);
  }

  private async writeRecord(path: string, record: ImageRecord): Promise<void> {
    const tmp = `${path}.tmp`;
    await writeFile(tmp, JSON.stringify({ version: RECORD_VERSION, ...record }));
    await rename(tmp, path);
  }

  private async readRecord(id: Digest): Promise<ImageRecord | undefined> {
    const path = join(this.imageDir(id), "image.json");
    try {
      const st = await lstat(path);
      if (!st.isFile() || st.size > MAX_RECORD_BYTES) return undefined;
      const doc = JSON.parse(await readFile(path, "utf8")) as Partial<ImageRecord> & { version?: unknown };
      if (doc.version !== RECORD_VERSION || doc.id !== id) return undefined;
      const strings = (v: unknown): string[] =>
        Array.isArray(v) && v.every((s) => typeof s === "string") ? v : [];
      const count = (v: unknown): number =>
        typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : 0;
      return {
        id,
        repoTags: strings(doc.repoTags),
        repoDigests: strings(doc.repoDigests),
        size: count(doc.size),
        unpackedBytes: count(doc.unpackedBytes),
        inodes: count(doc.inodes),
        user: typeof doc.user === "string" ? doc.user : "",
        process: {
          entrypoint: strings(doc.process?.entrypoint),
          cmd: strings(doc.process?.cmd),
          env: strings(doc.process?.env),
          workingDir: typeof doc.process?.workingDir === "string" ? doc.process.workingDir : "",
        },
        annotations:
          typeof doc.annotations === "object" && doc.annotations !== null
            ? Object.fromEntries(
                Object.entries(doc.annotations).filter(
                  (e): e is [string, string] => typeof e[1] === "string",
                ),
              )
            : {},
      };
    } catch (e) {
      this.log.warn({ err: e, image: id }, "CRI image store: unreadable image record");
      return undefined;
    }
  }

  /** Removes a directory of ours; a failure is logged (tmp/ is emptied at the next open). */
  private async discard(path: string): Promise<void> {
    await rm(path, { recursive: true, force: true }).catch((e: unknown) =>
      this.log.warn({ err: e, path }, "CRI image store: cannot remove"),
    );
  }

  /** Runs `change` after every change before it (records and files change one at a time). */
  private exclusive<T>(change: () => Promise<T>): Promise<T> {
    const result = this.chain.then(change);
    this.chain = result.catch(() => undefined);
    return result;
  }
}

/** Bytes (of regular files and symlinks) and inodes below `root`, walked without following links. */
async function diskUsage(root: string): Promise<{ bytes: number; inodes: number }> {
  let bytes = 0;
  let inodes = 0;
  const seen = new Set<string>(); // hard links count once
  const pending = [root];
  for (let dir = pending.pop(); dir !== undefined; dir = pending.pop()) {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      const st = await lstat(path, { bigint: false });
      const key = `${st.dev}:${st.ino}`;
      if (seen.has(key)) continue;
      seen.add(key);
      inodes += 1;
      if (st.isDirectory()) pending.push(path);
      else bytes += st.size;
    }
  }
  return { bytes, inodes: inodes + 1 };
}
