/**
 * Receiving an NPK over the console: Northstar's `install` request line is followed by exactly
 * `size` raw bytes. They are streamed to a temporary file in the repository, checked against
 * the install size limit before a byte is read, then opened and verified. Runs as a job outside
 * the event loop; its result becomes an event. A failed or interrupted upload leaves nothing.
 */
import { randomBytes } from "node:crypto";
import { mkdir, open, rm } from "node:fs/promises";
import { join } from "node:path";
import type { LineReader } from "../../protocol/framing.js";
import type { InstalledPackage, Repository } from "./repository.js";

export class UploadRejected extends Error {
  override name = "UploadRejected";
  constructor(
    message: string,
    /** The payload was not read, so the stream is out of step: the connection must close. */
    readonly closeConnection: boolean,
  ) {
    super(message);
  }
}

export interface UploadOptions {
  repository: Repository;
  size: number;
  /** The listener's `max_install_size`. */
  maxInstallSize: number;
  /** Bytes still free under the repository's `capacity_size` (Infinity without one). */
  capacityLeft: number;
  reader: LineReader;
  signal: AbortSignal;
}

export interface ReceivedUpload {
  tempPath: string;
  pkg: InstalledPackage;
}

export async function receiveUpload(o: UploadOptions): Promise<ReceivedUpload> {
  if (o.size > o.maxInstallSize) {
    throw new UploadRejected(
      `package of ${o.size} bytes exceeds the install limit of ${o.maxInstallSize} bytes`,
      true,
    );
  }
  if (o.size > o.capacityLeft) {
    await o.reader.skipBytes(o.size, o.signal);
    throw new UploadRejected(
      `repository ${o.repository.id} has ${o.capacityLeft} bytes left of its capacity, the package needs ${o.size}`,
      false,
    );
  }
  await mkdir(o.repository.uploadDir, { recursive: true, mode: 0o700 });
  const tempPath = join(o.repository.uploadDir, `upload-${randomBytes(8).toString("hex")}.npk`);
  try {
    const file = await open(tempPath, "wx", 0o600);
    try {
      await o.reader.readBytes(o.size, async (chunk) => void (await file.write(chunk)), o.signal);
      await file.sync();
    } finally {
      await file.close();
    }
    const pkg = await o.repository.load(tempPath, o.signal);
    // The package's file name (and so every path derived from its name and version) must be
    // one safe file name: refused here, before the install is committed (PathEscapeError).
    o.repository.packagePath(pkg.npk.manifest.name, pkg.npk.manifest.version);
    return { tempPath, pkg };
  } catch (e) {
    await rm(tempPath, { force: true });
    throw e;
  }
}
