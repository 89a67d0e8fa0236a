// The files of an OCI layout or a docker-archive, wherever they are: a directory (only names this
// module builds itself: `index.json`, `blobs/sha256/<hex>`), or a tar archive staged into a
// temporary directory under numbered names, so no name from the archive ever reaches the file
// system. Archive members are found by their normalized names; symlink members (docker save
// shares identical layers that way) are followed inside the archive only.
import { createReadStream } from "node:fs";
import { open, stat } from "node:fs/promises";
import { join, posix } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import * as tar from "tar-stream";
import { OciImageError, asOciImageError } from "./errors.js";
import { ifExists } from "../common/errors.js";

const MAX_ARCHIVE_MEMBERS = 100_000;
const MAX_MEMBER_NAME_BYTES = 4096;
const MAX_LINK_HOPS = 8;

export interface FileSet {
  /** For messages: the directory or archive. */
  readonly what: string;
  /** Length of a member, or undefined when there is none. */
  size(name: string): Promise<number | undefined>;
  /** A member's content; throws OciImageError("source") when missing. */
  open(name: string): Promise<Readable>;
}

/** Reads a whole member of at most `max` bytes (checked before reading). */
export async function readMember(files: FileSet, name: string, max: number): Promise<Buffer> {
  const size = await files.size(name);
  if (size === undefined) throw new OciImageError("source", `${files.what}: no ${name}`);
  if (size > max)
    throw new OciImageError("size", `${files.what}: ${name} is ${size} bytes, more than ${max}`);
  const chunks: Buffer[] = [];
  for await (const chunk of await files.open(name)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** An OCI layout directory. Names are built by this module, never taken from the image. */
export class DirectoryFiles implements FileSet {
  constructor(
    readonly what: string,
    private readonly dir: string,
  ) {}

  async size(name: string): Promise<number | undefined> {
    const s = await ifExists(stat(join(this.dir, name)));
    return s?.isFile() === true ? s.size : undefined;
  }

  async open(name: string): Promise<Readable> {
    const handle = await open(join(this.dir, name), "r").catch((e: unknown) => {
      throw asOciImageError("source", `${this.what}: cannot open ${name}`, e);
    });
    return handle.createReadStream();
  }
}

type Member = { kind: "file"; path: string; size: number } | { kind: "symlink"; target: string };

/** A tar archive staged into `stagingDir` (which the caller creates and removes). */
export class StagedArchive implements FileSet {
  private constructor(
    readonly what: string,
    private readonly members: Map<string, Member>,
  ) {}

  /**
   * Copies every regular member of `file` into `stagingDir` as `m<N>`. `maxBytes` bounds the
   * sum of member sizes, checked from each header before its content is written.
   */
  static async stage(
    file: string,
    stagingDir: string,
    maxBytes: number,
    signal?: AbortSignal,
  ): Promise<StagedArchive> {
    const what = file;
    const fileStat = await stat(file).catch((e: unknown) => {
      throw asOciImageError("source", `cannot read ${file}`, e);
    });
    if (!fileStat.isFile()) throw new OciImageError("source", `${file} is not a file`);
    const members = new Map<string, Member>();
    let total = 0;
    const extract = tar.extract();
    // Never rejects (see LayerApplier.apply): settles with the pipeline's error or undefined.
    const fed: Promise<unknown> = pipeline(
      createReadStream(file),
      extract,
      signal === undefined ? {} : { signal },
    ).then(
      () => undefined,
      (e: unknown) => e ?? new Error("archive stream failed"),
    );
    let loopError: unknown;
    try {
      for await (const entry of extract) {
        if (members.size >= MAX_ARCHIVE_MEMBERS)
          throw new OciImageError("size", `${what}: more than ${MAX_ARCHIVE_MEMBERS} members`);
        const name = normalizeMemberName(entry.header.name);
        const type = entry.header.type ?? "file";
        if (name === undefined || (type !== "file" && type !== "symlink" && type !== "contiguous-file")) {
          for await (const _ of entry as AsyncIterable<Buffer>) {
            // directories and anything unnamed are not needed
          }
          continue;
        }
        if (type === "symlink") {
          for await (const _ of entry as AsyncIterable<Buffer>) {
            // no data
          }
          members.set(name, {
            kind: "symlink",
            target: posix.join(posix.dirname(name), entry.header.linkname ?? ""),
          });
          continue;
        }
        const size = entry.header.size ?? 0;
        total += size;
        if (total > maxBytes) {
          throw new OciImageError(
            "size",
            `${what}: the archive holds more than ${maxBytes} bytes (--max-image-size); refused`,
          );
        }
        const path = join(stagingDir, `m${members.size}`);
        const out = await open(path, "wx", 0o600);
        try {
          for await (const chunk of entry as AsyncIterable<Buffer>) await out.write(chunk);
        } finally {
          await out.close();
        }
        members.set(name, { kind: "file", path, size });
      }
    } catch (e) {
      loopError = e ?? new Error("archive entry failed");
      extract.destroy();
    }
    const fedError = await fed;
    if (loopError instanceof OciImageError) throw loopError;
    if (loopError !== undefined || fedError !== undefined) {
      if (fedError instanceof Error && fedError.name === "AbortError") throw fedError;
      throw asOciImageError("source", `${what}: not a readable tar archive`, fedError ?? loopError);
    }
    return new StagedArchive(what, members);
  }

  private lookup(name: string): { path: string; size: number } | undefined {
    let current = normalizeMemberName(name);
    for (let hop = 0; hop <= MAX_LINK_HOPS && current !== undefined; hop++) {
      const member = this.members.get(current);
      if (member === undefined) return undefined;
      if (member.kind === "file") return member;
      current = normalizeMemberName(member.target);
    }
    return undefined;
  }

  async size(name: string): Promise<number | undefined> {
    return Promise.resolve(this.lookup(name)?.size);
  }

  async open(name: string): Promise<Readable> {
    const member = this.lookup(name);
    if (member === undefined) throw new OciImageError("source", `${this.what}: no ${name}`);
    const handle = await open(member.path, "r");
    return handle.createReadStream();
  }
}

/** `./a//b` → `a/b`; undefined for names that leave the archive (`..`, absolute) or are too long. */
export function normalizeMemberName(name: string): string | undefined {
  if (name.includes("\0") || Buffer.byteLength(name) > MAX_MEMBER_NAME_BYTES || name.startsWith("/"))
    return undefined;
  const normalized = posix.normalize(name).replace(/\/+$/, "");
  if (normalized === "." || normalized === "" || normalized === ".." || normalized.startsWith("../"))
    return undefined;
  return normalized.startsWith("./") ? normalized.slice(2) : normalized;
}
