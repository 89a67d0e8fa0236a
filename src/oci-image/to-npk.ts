// OCI image → signed NPK: unpack the image into a temporary root, map its config to a manifest,
// merge the user's manifest fragment over it, and hand both to the ordinary pack path. The
// temporary directory is removed whatever happens; pack writes its output under a temporary
// name and renames it, so a failure leaves no partial NPK either.
import { constants } from "node:fs";
import { lstat, mkdir, mkdtemp, open, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { pack, type PackOptions } from "../npk/pack.js";
import {
  chooseName,
  chooseVersion,
  mapProcess,
  parseGroup,
  parsePasswd,
  resolveUser,
} from "./config-mapping.js";
import { OciImageError, asOciImageError } from "./errors.js";
import { unpackImage, type UnpackOptions } from "./image.js";
import type { ImageSourceRef } from "./reference.js";
import type { ResolvedImage } from "./resolve.js";
import { ifExists, messageOf } from "../common/errors.js";

const MAX_FRAGMENT_BYTES = 1024 * 1024;
const MAX_ACCOUNT_FILE_BYTES = 1024 * 1024;

/** Mounts every generated manifest has; the fragment adds to or replaces them by mount point. */
const DEFAULT_MOUNTS = { "/dev": { type: "dev" }, "/proc": { type: "proc" } };

export interface PackOciOptions
  extends UnpackOptions,
    Pick<PackOptions, "keyPath" | "compression" | "blockSize" | "fs"> {
  source: ImageSourceRef;
  /** Output file or existing directory, as for pack. */
  out: string;
  name?: string;
  version?: string;
  /** `UID[:GID]` or names from the image, instead of the config's User. */
  user?: string;
  /** A YAML/JSON manifest fragment merged over the generated fields. */
  fragmentPath?: string;
}

export interface PackOciResult {
  written: string[];
  /** The manifest as generated and merged, before pack normalizes it. */
  manifest: Record<string, unknown>;
}

async function readFragment(path: string): Promise<Record<string, unknown>> {
  const text = await readFile(path, "utf8").catch((e: unknown) => {
    throw asOciImageError("usage", `cannot read manifest fragment ${path}`, e);
  });
  if (text.length > MAX_FRAGMENT_BYTES)
    throw new OciImageError("usage", `${path}: larger than ${MAX_FRAGMENT_BYTES} bytes`);
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new OciImageError("usage", `${path}: not YAML: ${messageOf(e)}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== "object" || Array.isArray(doc))
    throw new OciImageError("usage", `${path}: must be a mapping of manifest fields`);
  return doc as Record<string, unknown>;
}

/**
 * Reads `etc/<name>` of the unpacked root when it is a regular file reached without symlinks
 * (a symlinked /etc/passwd would be read from the host); otherwise "".
 */
async function readAccountFile(root: string, name: string, warn: (m: string) => void): Promise<string> {
  const etc = await ifExists(lstat(join(root, "etc")));
  if (etc === undefined) return "";
  if (!etc.isDirectory()) {
    warn(`/etc is not a directory in the image; /etc/${name} not read`);
    return "";
  }
  let handle;
  try {
    handle = await open(join(root, "etc", name), constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return "";
    if (code === "ELOOP") warn(`/etc/${name} is a symlink in the image; not read`);
    else warn(`/etc/${name} not read: ${messageOf(e)}`);
    return "";
  }
  try {
    const s = await handle.stat();
    if (!s.isFile() || s.size > MAX_ACCOUNT_FILE_BYTES) {
      warn(`/etc/${name} is not a regular file of at most ${MAX_ACCOUNT_FILE_BYTES} bytes; not read`);
      return "";
    }
    return await handle.readFile("utf8");
  } finally {
    await handle.close();
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Packs an OCI image as an NPK; see the file comment. */
export async function packOciImage(opts: PackOciOptions): Promise<PackOciResult> {
  const warn = opts.onWarning ?? (() => undefined);
  const fragment = opts.fragmentPath === undefined ? {} : await readFragment(opts.fragmentPath);
  const work = await mkdtemp(join(tmpdir(), "skiff-oci-"));
  try {
    const root = join(work, "root");
    await mkdir(root, 0o755);
    const fields: Record<string, unknown> = {};
    const userFromImage = opts.user !== undefined || fragment.uid === undefined || fragment.gid === undefined;
    // Everything that needs only the config is decided before the layers are read.
    const beforeLayers = (resolved: ResolvedImage) => {
      fields.name = chooseName(
        opts.name ?? (fragment.name as string | undefined),
        resolved.annotations,
        resolved.repository,
      );
      fields.version = chooseVersion(
        opts.version ?? (fragment.version as string | undefined),
        resolved.annotations,
        resolved.tag,
      );
      const command = mapProcess(resolved.config.config, warn);
      if (fragment.init === undefined) {
        if (command.init === undefined) {
          throw new OciImageError(
            "config",
            "the image has neither Entrypoint nor Cmd: set init (and args) in --manifest",
          );
        }
        Object.assign(fields, command);
      } else {
        fields.env = command.env; // the fragment's init replaces the image's command line, args included
      }
      const spec = opts.user ?? resolved.config.config.User ?? "";
      const user = spec.split(":")[0];
      if (userFromImage && (user === "" || user === "root" || user === "0")) resolveUser(spec, [], []); // throws
    };
    const image = await unpackImage(opts.source, root, work, { ...opts, beforeLayers });
    await rm(join(work, "staging"), { recursive: true, force: true }); // archives: free the space before mkfs
    if (userFromImage) {
      const passwd = parsePasswd(await readAccountFile(root, "passwd", warn));
      const groups = parseGroup(await readAccountFile(root, "group", warn));
      Object.assign(fields, resolveUser(opts.user ?? image.config.config.User ?? "", passwd, groups));
    }
    fields.mounts = DEFAULT_MOUNTS;
    const manifest: Record<string, unknown> = { ...fields, ...fragment };
    for (const key of ["env", "mounts"] as const) {
      if (isRecord(fields[key]) && isRecord(fragment[key]))
        manifest[key] = { ...fields[key], ...fragment[key] };
    }
    if (opts.name !== undefined) manifest.name = opts.name;
    if (opts.version !== undefined) manifest.version = opts.version;
    if (opts.user !== undefined) {
      manifest.uid = fields.uid;
      manifest.gid = fields.gid;
    }
    const manifestPath = join(work, "manifest.yaml");
    await writeFile(manifestPath, stringifyYaml(manifest));
    const written = await pack({
      manifestPath,
      rootDir: root,
      out: opts.out,
      ...(opts.keyPath === undefined ? {} : { keyPath: opts.keyPath }),
      ...(opts.compression === undefined ? {} : { compression: opts.compression }),
      ...(opts.blockSize === undefined ? {} : { blockSize: opts.blockSize }),
      ...(opts.fs === undefined ? {} : { fs: opts.fs }),
      ...(opts.signal === undefined ? {} : { signal: opts.signal }),
    });
    return { written, manifest };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
