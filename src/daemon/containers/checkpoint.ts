/**
 * Checkpoint and restore effects (decisions: state/checkpoint.ts). The OCI runtime does the work
 * with CRIU: `<runtime> checkpoint --image-path DIR --work-path DIR <id>` dumps the container and
 * ends it (runc's default; its monitor then sees init die of SIGKILL), and skiff-monitor's
 * `--restore DIR` runs `<runtime> restore --detach` from the same image and supervises the
 * restored init as it would a created one (docs/monitor.md).
 *
 * The image lives in the container's state directory (`<log_dir>/containers/<name>/checkpoint`),
 * beside its logs, and goes when it is restored from or the container is uninstalled.
 *
 * Whether checkpoints work is probed once at daemon start: `criu check` must pass, and crun must
 * have been built with CRIU (Debian's crun 1.8.1 answers "unknown command checkpoint").
 */
import { execFile } from "node:child_process";
import { access, mkdir, readFile, readlink, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

/** `criu check` under QEMU TCG takes seconds; a healthy host answers far below this. */
const PROBE_TIMEOUT_MS = 60_000;
/** A dump of a small container takes ~1 s natively and ~10-20 s under TCG. */
const CHECKPOINT_TIMEOUT_MS = 120_000;
/** How much of CRIU's log goes into an error message. */
const MAX_LOG_LINES = 5;

export interface CheckpointSupport {
  supported: boolean;
  /** Why not, when unsupported. */
  reason?: string;
}

/** The checkpoint image directory inside a container's state directory. */
export function checkpointDir(stateDir: string): string {
  return join(stateDir, "checkpoint");
}

/** Whether a restore can find an image (CRIU writes inventory.img last-but-not-least; it must exist). */
export async function hasCheckpointImage(stateDir: string): Promise<boolean> {
  return access(join(checkpointDir(stateDir), "inventory.img")).then(
    () => true,
    () => false,
  );
}

export async function removeCheckpointImage(stateDir: string): Promise<void> {
  await rm(checkpointDir(stateDir), { recursive: true, force: true });
}

/** Probes once: the runtime's checkpoint command and `criu check` (what both runtimes call). */
export async function probeCheckpointSupport(runtime: {
  kind: "runc" | "crun";
  path: string;
}): Promise<CheckpointSupport> {
  if (runtime.kind === "crun") {
    try {
      await execFileAsync(runtime.path, ["checkpoint", "--help"], {
        timeout: PROBE_TIMEOUT_MS,
        encoding: "utf8",
      });
    } catch (e) {
      return {
        supported: false,
        reason: `crun ${runtime.path} has no checkpoint command (built without CRIU): ${firstLine(e)}`,
      };
    }
  }
  try {
    await execFileAsync("criu", ["check"], {
      timeout: PROBE_TIMEOUT_MS,
      encoding: "utf8",
      killSignal: "SIGKILL",
    });
    return { supported: true };
  } catch (e) {
    const error = e as NodeJS.ErrnoException & { stderr?: string; killed?: boolean };
    if (error.code === "ENOENT") return { supported: false, reason: "criu is not installed" };
    if (error.killed === true)
      return { supported: false, reason: `criu check did not answer within ${PROBE_TIMEOUT_MS / 1000} s` };
    const errors = (error.stderr ?? "").split("\n").filter((l) => /Error/.test(l));
    return {
      supported: false,
      reason: `criu check failed: ${errors.slice(-2).join("; ").trim() || firstLine(e)}`,
    };
  }
}

/**
 * skiff-init's status pipe (its fd 3, docs/monitor.md) as CRIU names it: `pipe:[<inode>]`. Read
 * before the dump, while init runs.
 */
export async function statusPipeOf(initPid: number): Promise<string> {
  const link = await readlink(`/proc/${initPid}/fd/3`);
  if (!/^pipe:\[\d+\]$/.test(link)) throw new Error(`init ${initPid}'s fd 3 is ${link}, not the status pipe`);
  return link;
}

/**
 * Lists init's status pipe in the image's `descriptors.json`, runc's list of the container's
 * stdio at create time, so that the restore reconnects it. runc's restore hands CRIU an
 * inherit-fd for every `pipe:` entry, mapped to its own fd of the same index; CRIU then gives
 * every fd of the restored tree that was that pipe the restore command's fd instead of a fresh,
 * readerless pipe (skiff-init's EXIT record would be lost and the exit status inexact). Entry 0
 * is the container's stdin, which Skiff always makes /dev/null: CRIU reopens that by path, so
 * the entry is free, and skiff-monitor's restore mode passes the new status pipe as stdin.
 */
async function listStatusPipe(dir: string, statusPipe: string): Promise<void> {
  const file = join(dir, "descriptors.json");
  const descriptors = JSON.parse(await readFile(file, "utf8")) as unknown;
  if (!Array.isArray(descriptors) || descriptors.length < 1 || descriptors[0] !== "/dev/null")
    throw new Error(`unexpected ${file}: ${JSON.stringify(descriptors)} (stdin is not /dev/null)`);
  descriptors[0] = statusPipe;
  await writeFile(`${file}.tmp`, JSON.stringify(descriptors), { mode: 0o600 });
  await rename(`${file}.tmp`, file);
}

/**
 * Dumps the container into a fresh image directory. The runtime ends the container afterwards;
 * on failure it leaves it running, and the error names CRIU's own complaint from its log.
 */
export async function runCheckpoint(
  runtime: { kind?: "runc" | "crun"; path: string; root: string },
  id: string,
  stateDir: string,
  statusPipe: string,
  timeoutMs = CHECKPOINT_TIMEOUT_MS,
): Promise<void> {
  const dir = checkpointDir(stateDir);
  await removeCheckpointImage(stateDir);
  await mkdir(dir, { mode: 0o700 });
  const args = ["--root", runtime.root, "checkpoint", "--image-path", dir, "--work-path", dir, id];
  try {
    await execFileAsync(runtime.path, args, { timeout: timeoutMs, killSignal: "SIGKILL", encoding: "utf8" });
  } catch (e) {
    const error = e as { stderr?: string; killed?: boolean; message: string };
    const log = await readFile(join(dir, "dump.log"), "utf8").catch(() => "");
    const criu = log
      .split("\n")
      .filter((l) => /Error \(/.test(l))
      .slice(-MAX_LOG_LINES)
      .map((l) => l.replace(/^\([\d.]+\)\s*/, "").trim());
    await removeCheckpointImage(stateDir);
    const what =
      error.killed === true
        ? `did not finish within ${timeoutMs / 1000} s`
        : runtimeMessage(error.stderr ?? "") || error.message;
    throw new Error(
      `${runtime.kind ?? "runtime"} checkpoint: ${what}${criu.length ? ` (criu: ${criu.join("; ")})` : ""}`,
    );
  }
  // The container is gone now: an image whose restore could not be supervised exactly is no image.
  try {
    await listStatusPipe(dir, statusPipe);
  } catch (e) {
    await removeCheckpointImage(stateDir);
    throw e;
  }
}

/** runc logs `level=error msg="..."`; crun prints the message as is. */
function runtimeMessage(stderr: string): string {
  const messages = [...stderr.matchAll(/msg="((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!.replace(/\\n.*$/s, ""));
  return (messages.length > 0 ? messages.join("; ") : stderr).trim();
}

function firstLine(e: unknown): string {
  const error = e as { stderr?: string; message?: string };
  return ((error.stderr ?? "").trim() || error.message || String(e)).split("\n", 1)[0]!.trim();
}
