/**
 * Package-file commands that work without a daemon: pack, unpack, gen-key, and inspect of an
 * NPK file. `inspectNpkCommand` is not in `packageCommands` because `skiff inspect` is also
 * the console request: `inspect` (query.ts) dispatches to it when `isNpkArgument` says the argument is a file.
 */
import { basename } from "node:path";
import { byteProgress, showsProgress, type ByteProgress } from "../progress.js";
import { EXIT_OK, EXIT_RUNTIME_ERROR, UsageError, type Command, type CommandContext } from "../command.js";
import { NpkError } from "../../npk/errors.js";
import { COMPRESSIONS, type Compression } from "../../npk/mkfs.js";
import { pack, type PackProgress } from "../../npk/pack.js";
import { genKey } from "../../npk/signature.js";
import { inspectFull, inspectShort, unpack } from "../../npk/unpack.js";
import { parseByteSize } from "../../common/units.js";
import { printValue } from "../output.js";
import {
  DEFAULT_MAX_IMAGE_SIZE,
  OciImageError,
  packOciImage,
  parseImageSource,
  parsePlatform,
  type RegistryCredentials,
} from "../../oci-image/index.js";
import { messageOf } from "../../common/errors.js";

/** NpkErrors are runtime errors of the command, reported in one line. */
async function reportingNpkErrors(
  ctx: CommandContext,
  name: string,
  body: () => Promise<number>,
): Promise<number> {
  try {
    return await body();
  } catch (e) {
    if (e instanceof NpkError || e instanceof OciImageError) {
      if (e.kind === "usage") throw new UsageError(e.message);
      ctx.err(`skiff ${name}: ${e.message}`);
      return EXIT_RUNTIME_ERROR;
    }
    throw e;
  }
}

function optionalString(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

function positiveInteger(value: unknown, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} takes a positive whole number`);
  return n;
}

/**
 * Pack's progress on a terminal (cli/progress.ts): a line per phase and a bar per package file
 * written; nothing when stderr is not a TTY or with `--json` (then the callback is not passed).
 */
function progressPrinter(ctx: CommandContext): { onProgress: (p: PackProgress) => void; stop: () => void } {
  let bar: ByteProgress | undefined;
  let file: string | undefined;
  const stop = (): void => {
    bar?.stop();
    bar = undefined;
  };
  return {
    stop,
    onProgress: (p) => {
      if (p.phase !== "write") {
        stop();
        ctx.err(p.phase === "mkfs" ? "building file system image" : "computing dm-verity hash tree");
        return;
      }
      if (p.total === undefined || p.done === undefined) return;
      if (bar === undefined || p.file !== file) {
        stop();
        file = p.file;
        bar = byteProgress(`writing ${basename(p.file ?? "")}`, p.total, { json: ctx.global.json });
      }
      bar.update(p.done);
    },
  };
}

/** Flags only `--from-oci` takes. */
const OCI_FLAGS = ["name", "version", "user", "platform", "max-image-size", "creds"] as const;

function parseCredentials(value: string | undefined): RegistryCredentials | undefined {
  if (value === undefined) return undefined;
  const colon = value.indexOf(":");
  if (colon <= 0) throw new UsageError("--creds takes USER:PASSWORD");
  return { username: value.slice(0, colon), password: value.slice(colon + 1) };
}

/** `skiff pack --from-oci SOURCE`: the image's root and config instead of -r and a whole manifest. */
async function packFromOci(
  ctx: CommandContext,
  values: Record<string, unknown>,
  common: { compression?: Compression; blockSize?: number; fs: "squashfs" | "erofs" },
): Promise<number> {
  if (values.root !== undefined) throw new UsageError("--from-oci replaces -r ROOT: the image is the root");
  if (values.clones !== undefined) throw new UsageError("--clones does not combine with --from-oci");
  const source = parseImageSource(optionalString(values["from-oci"]) ?? "");
  const maxText = optionalString(values["max-image-size"]);
  let maxImageSize = DEFAULT_MAX_IMAGE_SIZE;
  if (maxText !== undefined) {
    try {
      maxImageSize = parseByteSize(maxText, "binary");
    } catch (e) {
      throw new UsageError(`--max-image-size: ${messageOf(e)}`);
    }
  }
  const platformText = optionalString(values.platform);
  const credentials = parseCredentials(optionalString(values.creds));
  const optional = <K extends string>(key: K, value: string | undefined) =>
    value === undefined ? {} : { [key]: value };
  const result = await packOciImage({
    source,
    out: optionalString(values.out) ?? ".",
    maxImageSize,
    fs: common.fs,
    ...(common.compression === undefined ? {} : { compression: common.compression }),
    ...(common.blockSize === undefined ? {} : { blockSize: common.blockSize }),
    ...(platformText === undefined ? {} : { platform: parsePlatform(platformText) }),
    ...(credentials === undefined ? {} : { credentials }),
    ...optional("keyPath", optionalString(values.key)),
    ...optional("fragmentPath", optionalString(values.manifest)),
    ...optional("name", optionalString(values.name)),
    ...optional("version", optionalString(values.version)),
    ...optional("user", optionalString(values.user)),
    onWarning: (message) => ctx.err(`warning: ${message}`),
    ...(showsProgress({ json: ctx.global.json })
      ? { onProgress: (message: string) => ctx.err(message) }
      : {}),
    signal: ctx.signal,
  });
  printValue(ctx, { written: result.written }, result.written);
  return EXIT_OK;
}

const packCommand: Command = {
  name: "pack",
  summary: "Pack a manifest and root directory, or an OCI image, into an NPK (no daemon needed)",
  usage:
    "skiff pack -m MANIFEST -r ROOT [-k KEY] [-o OUT] [-c none|gzip|lzo|xz|zstd|lz4|lz4hc] [-b BLOCKSIZE] [--fs squashfs|erofs] [--clones N]\n" +
    "       skiff pack --from-oci oci:DIR[:TAG]|oci-archive:FILE[:TAG]|docker-archive:FILE[:TAG]|docker://HOST/NAME[:TAG] [-m FRAGMENT] [--name NAME] [--version VERSION] [--user UID[:GID]] [--platform OS/ARCH] [--max-image-size SIZE] [--creds USER:PASSWORD] [-k KEY] [-o OUT] [-c ...] [--fs ...]",
  options: {
    "from-oci": { type: "string" },
    name: { type: "string" },
    version: { type: "string" },
    user: { type: "string" },
    platform: { type: "string" },
    "max-image-size": { type: "string" },
    creds: { type: "string" },
    manifest: { type: "string", short: "m" },
    root: { type: "string", short: "r" },
    key: { type: "string", short: "k" },
    out: { type: "string", short: "o" },
    compression: { type: "string", short: "c" },
    "block-size": { type: "string", short: "b" },
    fs: { type: "string" },
    clones: { type: "string" },
  },
  async run(ctx, { values, positionals }) {
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`);
    const compression = optionalString(values.compression);
    if (compression !== undefined && !COMPRESSIONS.includes(compression as Compression)) {
      throw new UsageError(`-c takes one of ${COMPRESSIONS.join(", ")}`);
    }
    const fs = optionalString(values.fs) ?? "squashfs";
    if (fs !== "squashfs" && fs !== "erofs") throw new UsageError("--fs takes squashfs or erofs");
    const clones = positiveInteger(values.clones, "--clones");
    const blockSize = positiveInteger(values["block-size"], "-b");
    if (values["from-oci"] !== undefined) {
      return reportingNpkErrors(ctx, "pack", () =>
        packFromOci(ctx, values, {
          fs,
          ...(compression === undefined ? {} : { compression: compression as Compression }),
          ...(blockSize === undefined ? {} : { blockSize }),
        }),
      );
    }
    const ociFlag = OCI_FLAGS.find((flag) => values[flag] !== undefined);
    if (ociFlag !== undefined) throw new UsageError(`--${ociFlag} only goes with --from-oci`);
    const manifestPath = optionalString(values.manifest);
    const rootDir = optionalString(values.root);
    if (manifestPath === undefined || rootDir === undefined)
      throw new UsageError("-m MANIFEST and -r ROOT are required");
    const progress = showsProgress({ json: ctx.global.json }) ? progressPrinter(ctx) : undefined;
    return reportingNpkErrors(ctx, "pack", async () => {
      const written = await pack({
        manifestPath,
        rootDir,
        out: optionalString(values.out) ?? ".",
        fs,
        ...(optionalString(values.key) === undefined ? {} : { keyPath: optionalString(values.key) }),
        ...(compression === undefined ? {} : { compression: compression as Compression }),
        ...(blockSize === undefined ? {} : { blockSize }),
        ...(clones === undefined ? {} : { clones }),
        onProgress: progress?.onProgress,
        signal: ctx.signal,
      }).finally(() => progress?.stop());
      printValue(ctx, { written }, written);
      return EXIT_OK;
    });
  },
};

const unpackCommand: Command = {
  name: "unpack",
  summary: "Extract an NPK's files and root file system into a directory (no daemon needed)",
  usage: "skiff unpack NPK DIR",
  async run(ctx, { positionals }) {
    const [npk, dir] = positionals;
    if (npk === undefined || dir === undefined || positionals.length !== 2) {
      throw new UsageError("unpack takes an NPK and an output directory");
    }
    return reportingNpkErrors(ctx, "unpack", async () => {
      await unpack(npk, dir, { signal: ctx.signal });
      return EXIT_OK;
    });
  },
};

const genKeyCommand: Command = {
  name: "gen-key",
  summary: "Generate an Ed25519 key pair NAME.key / NAME.pub for signing NPKs",
  usage: "skiff gen-key NAME [DIR]",
  async run(ctx, { positionals }) {
    const [name, dir] = positionals;
    if (name === undefined || positionals.length > 2)
      throw new UsageError("gen-key takes a name and a directory");
    return reportingNpkErrors(ctx, "gen-key", async () => {
      const paths = await genKey(dir ?? ".", name);
      printValue(ctx, paths, `${paths.secretPath}\n${paths.publicPath}`);
      return EXIT_OK;
    });
  },
};

export const inspectNpkCommand: Command = {
  name: "inspect",
  summary: "Show an NPK file's manifest, signature, file system image and listing",
  usage: "skiff inspect NPK [--short]",
  options: { short: { type: "boolean", short: "s" } },
  async run(ctx, { values, positionals }) {
    const [path] = positionals;
    if (path === undefined || positionals.length !== 1) throw new UsageError("inspect takes one NPK file");
    return reportingNpkErrors(ctx, "inspect", async () => {
      if (values.short === true) {
        const s = await inspectShort(path);
        const yes = s.resourceContainer ? "yes" : "no";
        const human = `name: ${s.name}, version: ${s.version}, NPK version: ${s.npkVersion}, resource container: ${yes}`;
        printValue(ctx, s, human);
        return EXIT_OK;
      }
      const full = await inspectFull(path, ctx.signal);
      if (ctx.global.json) {
        ctx.out(JSON.stringify(full));
        return EXIT_OK;
      }
      const fsLine = `${full.fsImage.type} at offset ${full.fsImage.offset}, ${full.fsImage.size} bytes`;
      const verityLine =
        full.verity === undefined
          ? "unsigned: no verity data"
          : `verity: data ${full.verity.offset} bytes, root hash ${full.verity.rootHash}, salt ${full.verity.salt}`;
      ctx.out(
        [
          `# inspection of '${path}'`,
          `## NPK content (format ${full.npkVersion})`,
          ...full.entries,
          "",
          "## manifest.yaml",
          full.manifest.trimEnd(),
          "",
          ...(full.signature === undefined
            ? ["No signature found"]
            : ["## signature.yaml", full.signature.trimEnd()]),
          "",
          `## fs.img: ${fsLine}`,
          verityLine,
          full.listing.trimEnd(),
        ].join("\n"),
      );
      return EXIT_OK;
    });
  },
};

export const packageCommands: Command[] = [packCommand, unpackCommand, genKeyCommand];
