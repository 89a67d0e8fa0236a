/**
 * Northstar 0.9.2's `northstar.toml`, read unchanged: a translation of the parsed TOML document
 * onto Skiff's own keys, run before validation (schema.ts), so that every value is then checked
 * by the one schema with the same rules and limits as Skiff's own keys. docs/northstar.md lists
 * each key and what it becomes.
 *
 * Only shapes that Skiff's own configuration cannot have are rewritten, so a Skiff file passes
 * through untouched:
 * - `[console.global]` with `bind` (a Skiff listener has `url`) becomes the listener `global`;
 *   its `options` are translated like `[console.options]`'s.
 * - `[console.options]` without `url` (Northstar's options of container console connections)
 *   becomes `[container_console]`.
 * - console options: `max_npk_install_size` is Skiff's `max_install_size`; `token_validity` and
 *   `npk_stream_timeout` are daemon-wide in Skiff and move to the top level.
 * - `[repositories.X] type = { fs = { dir = "..." } }` becomes `type = "fs"` plus `dir`.
 * - `loop_device_timeout` is checked and dropped (mount(8) sets up Skiff's loop devices).
 * - A file with Northstar's four required keys (`run_dir`, `data_dir`, `socket_dir`, `cgroup`)
 *   and without Skiff's `state_dir` is Northstar's: relative paths are taken from the working
 *   directory as Northstar does, and the state directory (lock file, logs) defaults to the
 *   parent of `run_dir` instead of /var/lib/skiff.
 *
 * What has no exact counterpart is said in `notes`, which skiffd logs once at start. Skiff's key
 * names come from the one declaration in schema.ts (`CONFIG_KEYS`, ...).
 */
import { dirname, resolve } from "node:path";
import { DecodeError } from "../../common/schema.js";
import { CONFIG_KEYS, CONSOLE_OPTION_KEYS, REPOSITORY_KEYS, duration } from "./schema.js";

export interface Translated {
  doc: Record<string, unknown>;
  notes: string[];
}

type Table = Record<string, unknown>;

const isTable = (v: unknown): v is Table => typeof v === "object" && v !== null && !Array.isArray(v);

/** Keys Northstar's configuration cannot do without. */
const NORTHSTAR_REQUIRED = [
  CONFIG_KEYS.runDir,
  CONFIG_KEYS.dataDir,
  CONFIG_KEYS.socketDir,
  CONFIG_KEYS.cgroup,
].map((k) => k.toml);

/** The daemon-wide keys that Northstar sets per console. */
const HOISTED = [CONFIG_KEYS.tokenValidityMs.toml, CONFIG_KEYS.npkStreamTimeoutMs.toml];
/** Northstar's name of `max_install_size`. */
const INSTALL_SIZE = CONSOLE_OPTION_KEYS.maxInstallSize.toml;

/** Rewrites Northstar's keys in a parsed TOML document. Throws DecodeError naming the key path. */
export function translateNorthstar(input: unknown, cwd: string): Translated {
  if (!isTable(input)) return { doc: {}, notes: [] };
  const doc: Table = { ...input };
  const notes: string[] = [];
  const northstarFile =
    NORTHSTAR_REQUIRED.every((key) => doc[key] !== undefined) && doc[CONFIG_KEYS.stateDir.toml] === undefined;

  if (doc.loop_device_timeout !== undefined) {
    checkDuration(doc.loop_device_timeout, "loop_device_timeout");
    notes.push("loop_device_timeout: accepted; Skiff has mount(8) set up loop devices and sets no timeout");
    delete doc.loop_device_timeout;
  }

  // Console options found per console: where each hoisted value came from, for the notes.
  const hoisted: Partial<Record<string, { value: unknown; path: string }[]>> = {};
  const translateOptions = (options: unknown, path: string): unknown => {
    if (!isTable(options)) return options;
    const out: Table = { ...options };
    if (out.max_npk_install_size !== undefined) {
      if (out[INSTALL_SIZE] !== undefined) {
        throw new DecodeError(`${path}.max_npk_install_size`, `give max_npk_install_size or ${INSTALL_SIZE}`);
      }
      out[INSTALL_SIZE] = out.max_npk_install_size;
      delete out.max_npk_install_size;
    }
    for (const key of HOISTED) {
      if (out[key] === undefined) continue;
      checkDuration(out[key], `${path}.${key}`);
      (hoisted[key] ??= []).push({ value: out[key], path: `${path}.${key}` });
      delete out[key];
    }
    return out;
  };

  if (isTable(doc.console)) {
    const console: Table = { ...doc.console };
    const global = console.global;
    if (isTable(global) && global.bind !== undefined) {
      if (global.url !== undefined)
        throw new DecodeError("console.global.bind", "give bind or url, not both");
      const { bind, options, ...rest } = global;
      console.global = {
        ...rest,
        url: bind,
        ...(options !== undefined ? { options: translateOptions(options, "console.global.options") } : {}),
      };
    }
    const containerOptions = console.options;
    if (isTable(containerOptions) && containerOptions.url === undefined) {
      if (doc.container_console !== undefined) {
        throw new DecodeError("console.options", "give [console.options] or [container_console], not both");
      }
      doc.container_console = translateOptions(containerOptions, "console.options");
      delete console.options;
    }
    doc.console = console;
  }

  for (const key of HOISTED) {
    const found = hoisted[key] ?? [];
    if (found.length === 0) continue;
    if (doc[key] !== undefined) {
      notes.push(`${key}: the top-level value wins over ${found.map((f) => f.path).join(", ")}`);
      continue;
    }
    // Tokens are checked on the verifier's connection, usually a container's: its value first.
    // Installs mostly come over the global console: its stream timeout first.
    const preferred =
      key === CONFIG_KEYS.tokenValidityMs.toml
        ? (found.find((f) => f.path.startsWith("console.options")) ?? found[0]!)
        : (found.find((f) => f.path.startsWith("console.global")) ?? found[0]!);
    doc[key] = preferred.value;
    const others = found.filter((f) => f !== preferred && String(f.value) !== String(preferred.value));
    if (others.length > 0) {
      notes.push(
        `${key} is daemon-wide in Skiff: using ${preferred.path} = ${String(preferred.value)}, ` +
          `not ${others.map((f) => `${f.path} = ${String(f.value)}`).join(", ")}`,
      );
    }
  }

  if (isTable(doc.repositories)) {
    const repositories: Table = {};
    for (const [id, repo] of Object.entries(doc.repositories)) {
      repositories[id] = isTable(repo) ? translateRepository(repo, `repositories.${id}`) : repo;
    }
    doc.repositories = repositories;
  }

  if (northstarFile) {
    resolvePaths(doc, cwd, notes);
    if (typeof doc.run_dir === "string") {
      const stateDir = dirname(doc.run_dir);
      doc.state_dir = stateDir;
      notes.push(`state_dir (lock file, log_dir) defaults to ${stateDir}, the parent of run_dir`);
    }
  }
  return { doc, notes };
}

function translateRepository(repo: Table, path: string): Table {
  const type = repo.type;
  if (!isTable(type)) return repo;
  const variants = Object.keys(type);
  if (variants.length !== 1)
    throw new DecodeError(`${path}.type`, `expected "fs", "mem" or { fs = { dir = ... } }`);
  const variant = variants[0]!;
  const body = type[variant];
  if (variant === "mem") return { ...repo, type: "mem" };
  if (variant !== "fs" || !isTable(body)) {
    throw new DecodeError(`${path}.type`, `expected "fs", "mem" or { fs = { dir = ... } }`);
  }
  if (repo.dir !== undefined)
    throw new DecodeError(`${path}.dir`, "give the directory in type or in dir, not both");
  const extra = Object.keys(body).find((k) => k !== "dir");
  if (extra !== undefined) throw new DecodeError(`${path}.type.fs.${extra}`, "unknown field");
  return { ...repo, type: "fs", dir: body.dir };
}

/** Northstar takes relative paths from the working directory; Skiff's schema wants them absolute. */
function resolvePaths(doc: Table, cwd: string, notes: string[]): void {
  const relative: string[] = [];
  const fix = (table: Table, key: string, path: string): void => {
    const value = table[key];
    if (typeof value !== "string" || value.startsWith("/") || value.length === 0) return;
    table[key] = resolve(cwd, value);
    relative.push(path);
  };
  for (const { toml } of [
    CONFIG_KEYS.runDir,
    CONFIG_KEYS.dataDir,
    CONFIG_KEYS.socketDir,
    CONFIG_KEYS.logDir,
  ]) {
    fix(doc, toml, toml);
  }
  if (isTable(doc.repositories)) {
    for (const [id, repo] of Object.entries(doc.repositories)) {
      if (!isTable(repo)) continue;
      const copy = { ...repo };
      for (const { toml } of [REPOSITORY_KEYS.dir, REPOSITORY_KEYS.key])
        fix(copy, toml, `repositories.${id}.${toml}`);
      doc.repositories[id] = copy;
    }
  }
  if (relative.length > 0) notes.push(`relative paths taken from ${cwd}: ${relative.join(", ")}`);
}

function checkDuration(value: unknown, path: string): void {
  duration.decode(value, path);
}
