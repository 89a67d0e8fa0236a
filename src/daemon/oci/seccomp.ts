import type { Capability, Seccomp, SyscallArgRule } from "../../npk/manifest/index.js";
import type { OciSeccomp, OciSyscallRule } from "./types.js";

// Northstar's "default" profile (similar to Docker's): the syscall names it allows unconditionally,
// the extra syscalls each capability unlocks, and two argument-filtered rules.
const BASE_SYSCALLS = `accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32
clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64 clock_nanosleep
clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2 dup3 epoll_create epoll_create1
epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit
exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchown
fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64
fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futex_time64 futimesat getcpu getcwd getdents
getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid
getpgrp getpid getppid getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit get_robust_list
getrusage getsid getsockname getsockopt get_thread_area gettid gettimeofday getuid getuid32 getxattr
inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents
io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit io_uring_enter io_uring_register
io_uring_setup ipc kill lchown lchown32 lgetxattr link linkat listen listxattr llistxattr _llseek lremovexattr
lseek lsetxattr lstat lstat64 madvise membarrier memfd_create mincore mkdir mkdirat mknod mknodat mlock mlock2
mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend
mq_timedsend_time64 mq_unlink mremap msgctl msgget msgrcv msgsnd msync munlock munlockall munmap nanosleep
newfstatat _newselect open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 poll ppoll ppoll_time64
prctl pread64 preadv preadv2 prlimit64 pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read readahead readlink
readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages removexattr rename renameat
renameat2 restart_syscall rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn
rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr
sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler sched_rr_get_interval
sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield seccomp
select semctl semget semop semtimedop semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto setfsgid
setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid setpriority setregid
setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit set_robust_list setsid
setsockopt set_thread_area set_tid_address setuid setuid32 setxattr shmat shmctl shmdt shmget shutdown sigaltstack
signalfd signalfd4 sigprocmask sigreturn socket socketcall socketpair splice stat stat64 statfs statfs64 statx
symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete timer_getoverrun
timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64
timerfd_settime timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat utime
utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev process_vm_readv
process_vm_writev ptrace`.split(/\s+/);

const ARCH_SYSCALLS: Record<string, string[]> = {
  x64: ["arch_prctl", "modify_ldt"],
  arm64: [
    "arm_fadvise64_64",
    "arm_sync_file_range",
    "sync_file_range2",
    "breakpoint",
    "cacheflush",
    "set_tls",
  ],
};

const CAPABILITY_SYSCALLS: Partial<Record<Capability, string[]>> = {
  CAP_DAC_READ_SEARCH: ["open_by_handle_at"],
  CAP_SYS_ADMIN: [
    "bpf",
    "clone",
    "fanotify_init",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "lookup_dcookie",
    "mount",
    "move_mount",
    "name_to_handle_at",
    "open_tree",
    "perf_event_open",
    "quotactl",
    "setdomainname",
    "sethostname",
    "setns",
    "syslog",
    "umount",
    "umount2",
    "unshare",
  ],
  CAP_SYS_BOOT: ["reboot"],
  CAP_SYS_CHROOT: ["chroot"],
  CAP_SYS_MODULE: ["delete_module", "init_module", "finit_module"],
  CAP_SYS_PACCT: ["acct"],
  CAP_SYS_PTRACE: [
    "kcmp",
    "pidfd_getfd",
    "process_madvise",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
  ],
  CAP_SYS_RAWIO: ["iopl", "ioperm"],
  CAP_SYS_TIME: ["settimeofday", "stime", "clock_settime"],
  CAP_SYS_TTY_CONFIG: ["vhangup"],
  CAP_SYS_NICE: ["get_mempolicy", "mbind", "set_mempolicy"],
  CAP_SYSLOG: ["syslog"],
};

/**
 * An argument rule: the syscall is allowed when argument `index` equals one of `values`, or when none of
 * the `forbiddenBits` is set (a manifest `mask` lists the allowed bits; these are its complement).
 */
interface ArgRule {
  index: number;
  values: bigint[];
  forbiddenBits?: bigint;
}

const U64_MASK = (1n << 64n) - 1n;

/** personality(2) is allowed only for these personas. */
const PERSONALITY_RULE: ArgRule = { index: 0, values: [0x0n, 0x8n, 0x20000n, 0x20008n, 0xffffffffn] };
/** Without CAP_SYS_ADMIN, clone(2) may not create namespaces (CLONE_NEW* flags). */
const CLONE_WITHOUT_NAMESPACES_RULE: ArgRule = { index: 0, values: [], forbiddenBits: 0x7e020000n };

function fromManifestRule(rule: SyscallArgRule): ArgRule {
  const values = (rule.values ?? []).map((value) => BigInt(value));
  return rule.mask === undefined
    ? { index: rule.index, values }
    : { index: rule.index, values, forbiddenBits: ~BigInt(rule.mask) & U64_MASK };
}

/**
 * runc loads the filter in its own init (Go) and then still opens the exec FIFO, closes fds and
 * execs; those syscalls (seen in the kernel audit log under runc 1.1.5) plus what the Go runtime may
 * call at any time must pass, or runc dies before the app starts.
 */
export const RUNC_EXEC_SYSCALLS: readonly string[] = [
  "openat",
  "fstatfs",
  "getdents64",
  "epoll_ctl",
  "epoll_pwait",
  "newfstatat",
  "fstat",
  "futex",
  "nanosleep",
  "sched_yield",
  "tgkill",
  "gettid",
  "sigaltstack",
  "madvise",
  // The clocks: on most hosts the vDSO answers these without entering the kernel, so a filter never
  // sees them, but where the vDSO's clock source is unusable (a VM without a stable TSC, some ARM
  // boards) they are real syscalls and the Go runtime calls them constantly; without them runc's
  // init dies of SIGSYS before the app starts. None of them changes any state.
  "clock_gettime",
  "clock_getres",
  "clock_nanosleep",
  "gettimeofday",
  "time",
];

/**
 * Skiff's own init then runs under the same filter as the app, so what a static init needs to start,
 * fork the app, forward signals and reap is always allowed too. clone is allowed only without
 * namespace flags unless the manifest grants more (see compileSeccomp).
 */
export const SKIFF_INIT_SYSCALLS: readonly string[] = [
  "execve",
  "brk",
  "mmap",
  "munmap",
  "mprotect",
  "arch_prctl",
  "set_tid_address",
  "set_robust_list",
  "rseq",
  "prlimit64",
  "uname",
  "readlink",
  "getrandom",
  "fcntl",
  "read",
  "write",
  "close",
  "fork",
  "vfork",
  "rt_sigprocmask",
  "rt_sigaction",
  "rt_sigtimedwait",
  "rt_sigreturn",
  "kill",
  "wait4",
  "waitid",
  "getpid",
  "exit",
  "exit_group",
];

const ENOSYS = 38;

const SCMP_ARCH: Record<string, string> = { x64: "SCMP_ARCH_X86_64", arm64: "SCMP_ARCH_AARCH64" };

/** Per syscall: undefined = allowed unconditionally, otherwise the argument rules (any one allows). */
type AllowMap = Map<string, ArgRule[] | undefined>;

function allow(map: AllowMap, name: string, rule?: ArgRule): void {
  if (map.has(name) && map.get(name) === undefined) return;
  if (rule === undefined) map.set(name, undefined);
  else map.set(name, [...(map.get(name) ?? []), rule]);
}

/**
 * Compiles the manifest's seccomp section to OCI `linux.seccomp`. Anything not allowed kills the process
 * (SIGSYS), as Northstar's filter does. Returns undefined when the manifest has no seccomp section.
 * `arch` is a Node.js architecture name (x64, arm64).
 */
export function compileSeccomp(
  seccomp: Seccomp | undefined,
  capabilities: readonly Capability[],
  arch: string,
  /** What skiff-init's options need beyond SKIFF_INIT_SYSCALLS (spec.ts, initSyscalls). */
  initSyscalls: readonly string[] = [],
): OciSeccomp | undefined {
  if (seccomp === undefined) return undefined;
  const architecture = SCMP_ARCH[arch];
  if (architecture === undefined)
    throw new Error(`seccomp: unsupported architecture ${arch} (x64 and arm64 only)`);
  const map: AllowMap = new Map();
  if (seccomp.profile === "default") {
    for (const name of [...BASE_SYSCALLS, ...ARCH_SYSCALLS[arch]!])
      if (name !== "personality") allow(map, name);
    allow(map, "personality", PERSONALITY_RULE);
    for (const cap of capabilities) for (const name of CAPABILITY_SYSCALLS[cap] ?? []) allow(map, name);
  }
  for (const [name, rule] of Object.entries(seccomp.allow ?? {}))
    allow(map, name, rule === "any" ? undefined : fromManifestRule(rule.args));
  for (const name of [...RUNC_EXEC_SYSCALLS, ...SKIFF_INIT_SYSCALLS, ...initSyscalls]) allow(map, name);
  // Northstar adds this only when some capability is granted, which leaves fork() via clone unusable
  // without capabilities; Skiff always adds it (a no-op when clone is already allowed).
  if (!capabilities.includes("CAP_SYS_ADMIN")) allow(map, "clone", CLONE_WITHOUT_NAMESPACES_RULE);

  const unconditional = [...map].filter(([, rules]) => rules === undefined).map(([name]) => name);
  const syscalls: OciSyscallRule[] = [{ names: unconditional.sort(), action: "SCMP_ACT_ALLOW" }];
  for (const [name, rules] of map) {
    for (const rule of rules ?? []) syscalls.push(...argumentRules(name, rule));
  }
  // glibc tries clone3 first and falls back to clone on ENOSYS; clone3 flags live in memory and cannot be
  // filtered, so answer ENOSYS instead of killing the process.
  if (!map.has("clone3")) syscalls.push({ names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: ENOSYS });
  return { defaultAction: "SCMP_ACT_KILL_PROCESS", architectures: [architecture], syscalls };
}

/** One OCI rule per allowed value (OCI rules for one syscall are alternatives), plus one for the mask. */
function argumentRules(name: string, rule: ArgRule): OciSyscallRule[] {
  const rules: OciSyscallRule[] = rule.values.map((value) => ({
    names: [name],
    action: "SCMP_ACT_ALLOW",
    args: [{ index: rule.index, value, op: "SCMP_CMP_EQ" }],
  }));
  if (rule.forbiddenBits !== undefined) {
    // SCMP_CMP_MASKED_EQ: (arg & value) == valueTwo
    rules.push({
      names: [name],
      action: "SCMP_ACT_ALLOW",
      args: [{ index: rule.index, value: rule.forbiddenBits, valueTwo: 0n, op: "SCMP_CMP_MASKED_EQ" }],
    });
  }
  return rules;
}
