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

// struct loop_config (linux/loop.h): fd, block_size, struct loop_info64 (lo_device, lo_inode,
// lo_rdevice, lo_offset, lo_sizelimit, lo_number, lo_encrypt_type, lo_encrypt_key_size,
// lo_flags, lo_file_name[64], lo_crypt_name[64], lo_encrypt_key[32], lo_init[2]), reserved[8]:
// 304 bytes. Flags: LO_FLAGS_READ_ONLY (1) | LO_FLAGS_AUTOCLEAR (4). A device another process
// configured between GET_FREE and CONFIGURE answers EBUSY: the next free one is asked for.
// Kernels before 5.8 have no LOOP_CONFIGURE (EINVAL/ENOTTY): LOOP_SET_FD + LOOP_SET_STATUS64.
// Prints the device path on success.
const PERL_LOOP_MOUNT = `
use strict; use Fcntl;
my ($nr, $file, $offset, $size, $target, $type, $flags, $data) = @ARGV;
sysopen(my $img, $file, O_RDONLY) or die "open $file: $!\\n";
sysopen(my $ctl, "/dev/loop-control", O_RDWR) or die "open /dev/loop-control: $!\\n";
my ($dev, $path);
for my $try (1 .. 32) {
  my $n = ioctl($ctl, 0x4C82, 0);
  defined $n or die "LOOP_CTL_GET_FREE: $!\\n";
  $path = "/dev/loop" . ($n + 0);
  sysopen($dev, $path, O_RDONLY) or die "open $path: $!\\n";
  my $info = pack("QQQQQLLLLa64a64a32QQ", 0, 0, 0, $offset, $size, 0, 0, 0, 5, substr($file, 0, 63), "", "", 0, 0);
  my $ok = ioctl($dev, 0x4C0A, pack("LL", fileno($img), 0) . $info . ("\\0" x 64));
  if (!$ok && ($!{EINVAL} || $!{ENOTTY})) {
    $ok = ioctl($dev, 0x4C00, fileno($img) + 0);
    if ($ok && !ioctl($dev, 0x4C04, $info)) { my $e = $!; ioctl($dev, 0x4C01, 0); $! = $e; $ok = 0; }
  }
  last if $ok;
  die "configuring $path: $!\\n" unless $!{EBUSY};
  close($dev); undef $dev;
}
defined $dev or die "no free loop device\\n";
syscall($nr + 0, $path, $target, $type, $flags + 0, $data) == 0 or die "mount($path, $target, $type, $data): $!\\n";
print "$path\\n";
`;

/**
 * Mounts `size` bytes of `file` from `offset` on `target` through a new read-only, autoclear
 * loop device; returns the device. Throws NpkError("tool") on failure (nothing is left attached).
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
  const number = await lookUpMountSyscall(signal);
  const { stdout } = await runTool(
    "perl",
    [
      "-e",
      PERL_LOOP_MOUNT,
      number,
      file,
      String(range.offset),
      String(range.size),
      target,
      fsType,
      String(flags),
      data,
    ],
    { signal },
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
  const number = await lookUpMountSyscall(signal);
  await runTool("perl", ["-e", PERL_MOUNT, number, source, target, fsType, String(flags), data], { signal });
}
