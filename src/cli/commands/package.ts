/**
 * Package-file commands that work without a daemon: pack, unpack, gen-key, and inspect of an
 * NPK file. `inspectNpkCommand` is not in `packageCommands` because `skiff inspect` is also
 * the console request: main dispatches to it when `isNpkArgument` says the argument is a file.
 */
import { stat } from "node:fs/promises";
import { EXIT_OK, EXIT_RUNTIME_ERROR, UsageError, type Command, type CommandContext } from "../command.js";
import { NpkError } from "../../npk/errors.js";
import { COMPRESSIONS, type Compression } from "../../npk/mkfs.js";
import { pack, type PackProgress } from "../../npk/pack.js";
import { genKey } from "../../npk/signature.js";
import { inspectFull, inspectShort, unpack } from "../../npk/unpack.js";

const MIB = 1024 * 1024;
// Only packages with at least this much fs.img get byte progress lines.
const PROGRESS_THRESHOLD = 8 * MIB;

/** NpkErrors are runtime errors of the command, reported in one line. */
async function reportingNpkErrors(
  ctx: CommandContext,
  name: string,
  body: () => Promise<number>,
): Promise<number> {
  try {
    return await body();
  } catch (e) {
    if (e instanceof NpkError) {
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

function progressPrinter(ctx: CommandContext): (p: PackProgress) => void {
  let lastTenth = -1;
  return (p) => {
    if (p.phase !== "write") {
      ctx.err(p.phase === "mkfs" ? "building file system image" : "computing dm-verity hash tree");
      return;
    }
    if (p.total === undefined || p.done === undefined || p.total < PROGRESS_THRESHOLD) return;
    const tenth = Math.floor((p.done / p.total) * 10);
    if (tenth !== lastTenth) {
      lastTenth = tenth;
      ctx.err(`writing ${p.file ?? ""}: ${tenth * 10}% of ${(p.total / MIB).toFixed(1)} MiB`);
    }
  };
}

const packCommand: Command = {
  name: "pack",
  summary: "Pack a manifest and root directory into an NPK (no daemon needed)",
  usage:
    "skiff pack -m MANIFEST -r ROOT [-k KEY] [-o OUT] [-c none|gzip|lzo|xz|zstd|lz4|lz4hc] [-b BLOCKSIZE] [--fs squashfs|erofs] [--clones N]",
  options: {
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
    const manifestPath = optionalString(values.manifest);
    const rootDir = optionalString(values.root);
    if (manifestPath === undefined || rootDir === undefined)
      throw new UsageError("-m MANIFEST and -r ROOT are required");
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`);
    const compression = optionalString(values.compression);
    if (compression !== undefined && !COMPRESSIONS.includes(compression as Compression)) {
      throw new UsageError(`-c takes one of ${COMPRESSIONS.join(", ")}`);
    }
    const fs = optionalString(values.fs) ?? "squashfs";
    if (fs !== "squashfs" && fs !== "erofs") throw new UsageError("--fs takes squashfs or erofs");
    const clones = positiveInteger(values.clones, "--clones");
    const blockSize = positiveInteger(values["block-size"], "-b");
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
        onProgress: ctx.global.json ? undefined : progressPrinter(ctx),
        signal: ctx.signal,
      });
      if (ctx.global.json) ctx.out(JSON.stringify({ written }));
      else for (const path of written) ctx.out(path);
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
      if (ctx.global.json) ctx.out(JSON.stringify(paths));
      else ctx.out(`${paths.secretPath}\n${paths.publicPath}`);
      return EXIT_OK;
    });
  },
};

/** True when `arg` names an NPK file (ends in .npk, or is an existing regular file). */
export async function isNpkArgument(arg: string): Promise<boolean> {
  if (arg.endsWith(".npk")) return true;
  return (await stat(arg).catch(() => undefined))?.isFile() ?? false;
}

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
        ctx.out(
          ctx.global.json
            ? JSON.stringify(s)
            : `name: ${s.name}, version: ${s.version}, NPK version: ${s.npkVersion}, resource container: ${s.resourceContainer ? "yes" : "no"}`,
        );
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
