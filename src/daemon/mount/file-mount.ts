// File-backed mounts: erofs (Linux >= 6.12) mounts a regular file directly, and with
// `fsoffset=` (Linux >= 6.16) at an offset inside it, so an erofs fs.img mounts straight from
// the NPK with no loop device. util-linux mount always puts a loop device under a regular
// file, and Node has no mount(2) binding, so the syscall is made through perl's syscall()
// with the kernel headers' syscall number (perl-base is essential on Debian, syscall.ph
// comes with libperl). Callers fall back to a loop device when this fails.
import { NpkError } from "../../npk/errors.js";
import { runTool } from "../../npk/exec.js";

export const MS_RDONLY = 0x1;
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;

// Loading syscall.ph is most of perl's run time, so the number is looked up once per process.
// INVARIANTS: concurrent callers share one lookup promise; a failed lookup is forgotten so the
// next call retries.
let mountSyscallNumber: Promise<string> | undefined;

async function queryMountSyscall(signal?: AbortSignal): Promise<string> {
  const { stdout } = await runTool("perl", ["-e", 'require "syscall.ph"; print &SYS_mount;'], { signal });
  if (!/^\d+$/.test(stdout.trim()))
    throw new NpkError("tool", `perl reported SYS_mount as ${JSON.stringify(stdout)}`);
  return stdout.trim();
}

function lookUpMountSyscall(signal?: AbortSignal): Promise<string> {
  mountSyscallNumber ??= queryMountSyscall(signal).catch((e: unknown) => {
    mountSyscallNumber = undefined;
    throw e;
  });
  return mountSyscallNumber;
}

const PERL_MOUNT = [
  "syscall($ARGV[0] + 0, $ARGV[1], $ARGV[2], $ARGV[3], $ARGV[4] + 0, $ARGV[5]) == 0",
  'or die "mount($ARGV[1], $ARGV[2], $ARGV[3], $ARGV[5]): $!\\n";',
].join(" ");

/** mount(2) of a regular file `source` on `target`; throws NpkError("tool") on failure. */
export async function mountFile(
  source: string,
  target: string,
  fsType: string,
  flags: number,
  data: string,
  signal?: AbortSignal,
): Promise<void> {
  const number = await lookUpMountSyscall(signal);
  await runTool("perl", ["-e", PERL_MOUNT, number, source, target, fsType, String(flags), data], { signal });
}
