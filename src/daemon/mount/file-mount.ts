// File-backed mounts: erofs (Linux >= 6.12) mounts a regular file directly, and with
// `fsoffset=` (Linux >= 6.16) at an offset inside it, so an erofs fs.img mounts straight from
// the NPK with no loop device. util-linux mount always puts a loop device under a regular
// file, and Node has no mount(2) binding, so the calls are made by skiff-mount
// (native/mount/mount.c: LOOP_CTL_GET_FREE, LOOP_CONFIGURE, mount(2); one small static process
// per mount, it replaced a perl process), started by a skiff-launcher (../monitor/launcher.ts)
// so that a mount does not fork the daemon. Callers fall back to a loop device when this fails.
import { messageOf } from "../../common/errors.js";
import { NpkError } from "../../npk/errors.js";
import { runTool } from "../../npk/exec.js";
import { LauncherUnavailableError, MonitorLauncher, type RunResult } from "../monitor/launcher.js";
import { nativeBinary } from "../monitor/native.js";

// This process's launcher of skiff-mount, started at the first mount. A launcher that dies fails
// the mount in flight with the reason (which its caller reports); the next mount starts another.
const mountLauncher = new MonitorLauncher(() => undefined);

/**
 * skiff-mount `args`; resolves with its stdout. Throws NpkError("tool") with its stderr when it
 * fails (the cause's `code` is ENOENT when it cannot be found), or the abort reason.
 */
async function runMountHelper(args: string[], signal?: AbortSignal): Promise<string> {
  const command = nativeBinary("skiff-mount");
  let result: RunResult;
  try {
    result = await mountLauncher.run([command, ...args], signal);
  } catch (e) {
    // No launcher could be started: Node's spawn, which forks the daemon.
    if (e instanceof LauncherUnavailableError) return (await runTool(command, args, { signal })).stdout;
    if (signal?.aborted === true) throw e;
    throw new NpkError("tool", `cannot run ${command}: ${messageOf(e)}`, { cause: e });
  }
  if (result.code === 0) return result.stdout;
  const detail = (result.stderr.trim() || result.stdout.trim()).split("\n").slice(-5).join(" | ");
  const status = result.code === null ? `signal ${result.signal}` : `exit code ${result.code}`;
  throw new NpkError("tool", `${command} ${args.join(" ")} failed (${status}): ${detail}`);
}

export const MS_RDONLY = 0x1;
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;

/**
 * Mounts `size` bytes of `file` from `offset` on `target` through a new read-only, autoclear
 * loop device; returns the device. Throws NpkError("tool") on failure (nothing is left attached;
 * skiff-mount refuses a `file` that is not a regular file and a range outside it).
 */
export async function mountLoop(
  file: string,
  range: { offset: number; size: number },
  target: string,
  fsType: string,
  flags: number,
  data: string,
  signal?: AbortSignal,
): Promise<string> {
  const stdout = await runMountHelper(
    ["loop", file, String(range.offset), String(range.size), target, fsType, String(flags), data],
    signal,
  );
  const device = stdout.trim();
  if (!/^\/dev\/loop[0-9]+$/.test(device))
    throw new NpkError("tool", `loop mount printed ${JSON.stringify(stdout)}`);
  return device;
}

/** mount(2) of a regular file `source` on `target`; throws NpkError("tool") on failure. */
export async function mountFile(
  source: string,
  target: string,
  fsType: string,
  flags: number,
  data: string,
  signal?: AbortSignal,
): Promise<void> {
  await runMountHelper(["file", source, target, fsType, String(flags), data], signal);
}
