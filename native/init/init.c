/*
 * skiff-init: PID 1 inside a Skiff container.
 *
 * Usage: /dev/.skiff/init [--unmount-proc] [--drop-cap N]... [--sched POLICY]
 *                         [--passcred FD]... -- <app> [args...]
 *
 * Options (written by the daemon from the manifest, src/daemon/oci/spec.ts; an
 * option init does not know is a usage error, exit 2):
 *   --unmount-proc   detach /proc (umount2 MNT_DETACH, with everything runc
 *                    mounted below it) before anything else: the manifest has
 *                    no `proc` mount at /proc, and Northstar then mounts none.
 *                    runc 1.1.5 needs /proc in the container until it execs
 *                    init, so only init can take it away. runc grants init
 *                    CAP_SYS_ADMIN (and CAP_SETPCAP) for this when the
 *                    manifest does not: the daemon then passes --drop-cap for
 *                    each, and init drops them from every set (bounding,
 *                    ambient, inheritable, permitted, effective) right after
 *                    the unmount, before any app code runs. Any failure here
 *                    is exit 126 without running the app: never run the app
 *                    with /proc or a capability it was not given.
 *   --drop-cap N     capability number N (0..63) to drop, see above.
 *   --sched POLICY   the manifest's `sched`, applied to the app only (in the
 *                    child, after fork, before exec; init keeps the default
 *                    policy, as in Northstar). POLICY is one of
 *                      other:NICE  batch:NICE   (NICE -20..19, applied with
 *                                                nice(2) after the policy)
 *                      fifo:PRIO   rr:PRIO      (PRIO 1..99)
 *                      idle        deadline
 *                    `deadline` is passed to sched_setscheduler(2) as Northstar
 *                    does; the kernel refuses it there (it needs
 *                    sched_setattr(2) parameters no manifest carries).
 *                    runc 1.1 ignores the OCI `scheduler` field, hence this.
 *                    If the kernel refuses the policy (no CAP_SYS_NICE, no
 *                    RLIMIT_RTPRIO) the app is not run: exit code 126 and a
 *                    line on stderr.
 *   --passcred FD    set SO_PASSCRED on the manifest socket at FD (one of the
 *                    fds 4.. runc passes) before the app starts: the socket is
 *                    shared with the app, so one setsockopt covers both.
 *                    Node cannot set socket options; the daemon creates the
 *                    socket and init sets the option.
 *
 * Why it exists: PID 1 of a PID namespace ignores every signal it has no
 * handler for and nobody else reaps orphans. This init forwards every
 * catchable signal to the app, reaps all children, and hands the app's exact
 * wait status to the monitor through fd 3 (the status pipe), because an exit
 * code alone cannot tell "exit(130)" from "killed by SIGINT".
 *
 * Records written to fd 3 (12 bytes each, host byte order: the monitor runs
 * on the same machine):
 *   uint32 magic = 0x534b5753 ("SKWS")
 *   uint32 kind:  1 = READY (signals are now forwarded), 2 = EXIT
 *   int32  value: READY: the app's pid (in the container's namespace);
 *                 EXIT: the app's wait status exactly as waitpid(2) gave it
 *
 * Exit code of init: the app's exit code, or 128+n when the app died by
 * signal n. When the kernel asks the namespace to reboot or power off
 * (reboot(2) inside the namespace sends SIGHUP or SIGINT with SI_KERNEL),
 * init kills every process in the namespace and exits without writing a
 * record: the kernel then reports init itself as killed by that signal.
 *
 * Debug hold (`skiff start --debug-hold`, docs/containers.md): when init's
 * environment has SKIFF_DEBUG_HOLD=1 (the start request's env; init removes it
 * before the app starts), an app that exits, whatever its status, or cannot be
 * executed, does not end the container: init writes the app's EXIT record,
 * logs one line on stderr and stays, reaping children, so the container's
 * root, mounts, env and cgroup can be inspected (`skiff exec`, nsenter -t PID).
 * SIGTERM, SIGINT, SIGQUIT or SIGHUP then end init with the app's exit code
 * (`skiff stop`); a namespace reboot and SIGKILL end it as usual.
 *
 * Console descriptor (Northstar's NORTHSTAR_CONSOLE): when SKIFF_CONSOLE names
 * the container's console socket, the forked app process connects to it before
 * exec and finds the connected descriptor's number in NORTHSTAR_CONSOLE, as
 * Northstar's Client::from_env() expects. Only the app holds that descriptor
 * (init never does), so the connection ends with the app. Without a console,
 * or if connecting fails (logged), NORTHSTAR_CONSOLE is unset.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define STATUS_FD 3
#define STATUS_MAGIC 0x534b5753u
#define RECORD_READY 1u
#define RECORD_EXIT 2u
#define MAX_PASSCRED_FDS 64
#define MAX_DROP_CAPS 64
/* Not in every libc's headers. */
#ifndef SCHED_DEADLINE
#define SCHED_DEADLINE 6
#endif

/* The parsed --sched option. */
enum sched_kind { SCHED_KIND_NONE, SCHED_KIND_NICE, SCHED_KIND_PRIORITY, SCHED_KIND_PLAIN };

struct sched_option {
    enum sched_kind kind;
    int policy; /* SCHED_OTHER, SCHED_BATCH, SCHED_FIFO, SCHED_RR, SCHED_IDLE, SCHED_DEADLINE */
    int value;  /* NICE: the nice increment; PRIORITY: the static priority */
};

struct options {
    int unmount_proc;
    int drop_caps[MAX_DROP_CAPS];
    int n_drop_caps;
    struct sched_option sched;
    int passcred[MAX_PASSCRED_FDS];
    int n_passcred;
    char **app; /* argv of the app: what follows "--" */
};

static int status_fd_open(void) { return fcntl(STATUS_FD, F_GETFD) != -1; }

static void write_status_record(uint32_t kind, int32_t value) {
    uint32_t rec[3] = {STATUS_MAGIC, kind, 0};
    memcpy(&rec[2], &value, sizeof(value));
    const char *p = (const char *)rec;
    size_t left = sizeof(rec);
    while (left > 0) {
        ssize_t n = write(STATUS_FD, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return; /* monitor gone: nothing more we can do */
        p += n;
        left -= (size_t)n;
    }
}

static int exit_code_of(int wait_status) {
    if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
    if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
    return 255;
}

/* Parses a decimal int in [min, max]; returns 0 on success. */
static int parse_int(const char *text, int min, int max, int *out) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max) return -1;
    *out = (int)v;
    return 0;
}

static int parse_sched(const char *text, struct sched_option *out) {
    static const struct {
        const char *name;
        int policy;
        enum sched_kind kind;
        int min, max;
    } table[] = {
        {"other", SCHED_OTHER, SCHED_KIND_NICE, -20, 19},  {"batch", SCHED_BATCH, SCHED_KIND_NICE, -20, 19},
        {"fifo", SCHED_FIFO, SCHED_KIND_PRIORITY, 1, 99},  {"rr", SCHED_RR, SCHED_KIND_PRIORITY, 1, 99},
        {"idle", SCHED_IDLE, SCHED_KIND_PLAIN, 0, 0},      {"deadline", SCHED_DEADLINE, SCHED_KIND_PLAIN, 0, 0},
    };
    const char *colon = strchr(text, ':');
    size_t name_len = colon ? (size_t)(colon - text) : strlen(text);
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (strlen(table[i].name) != name_len || strncmp(table[i].name, text, name_len) != 0) continue;
        out->policy = table[i].policy;
        out->kind = table[i].kind;
        out->value = 0;
        if (table[i].kind == SCHED_KIND_PLAIN) return colon ? -1 : 0;
        return colon ? parse_int(colon + 1, table[i].min, table[i].max, &out->value) : -1;
    }
    return -1;
}

/* Parses the options before "--"; returns 0 on success. */
static int parse_options(int argc, char **argv, struct options *o) {
    memset(o, 0, sizeof(*o));
    int i = 1;
    for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--unmount-proc") == 0) {
            o->unmount_proc = 1;
            continue;
        }
        if (i + 1 >= argc) return -1;
        if (strcmp(argv[i], "--drop-cap") == 0) {
            if (o->n_drop_caps == MAX_DROP_CAPS) return -1;
            if (parse_int(argv[++i], 0, 63, &o->drop_caps[o->n_drop_caps++]) != 0) return -1;
        } else if (strcmp(argv[i], "--sched") == 0) {
            if (parse_sched(argv[++i], &o->sched) != 0) return -1;
        } else if (strcmp(argv[i], "--passcred") == 0) {
            if (o->n_passcred == MAX_PASSCRED_FDS) return -1;
            if (parse_int(argv[++i], STATUS_FD + 1, INT_MAX, &o->passcred[o->n_passcred++]) != 0) return -1;
        } else {
            return -1;
        }
    }
    if (i + 1 >= argc) return -1; /* no "--" or no app after it */
    o->app = &argv[i + 1];
    return 0;
}

/* Drops `caps` from every set. Bounding first (that needs CAP_SETPCAP, so
 * CAP_SETPCAP itself goes last), then ambient, inheritable, permitted and
 * effective in one capset. Returns 0 or -1 with errno set. */
static int drop_caps(const int *caps, int n) {
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < n; i++) {
            if ((caps[i] == CAP_SETPCAP) != (pass == 1)) continue;
            if (prctl(PR_CAPBSET_DROP, caps[i], 0, 0, 0) != 0 && errno != EINVAL) return -1;
        }
    }
    for (int i = 0; i < n; i++) prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_LOWER, caps[i], 0, 0);
    struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &header, data) != 0) return -1;
    for (int i = 0; i < n; i++) {
        uint32_t bit = 1u << (caps[i] % 32);
        data[caps[i] / 32].effective &= ~bit;
        data[caps[i] / 32].permitted &= ~bit;
        data[caps[i] / 32].inheritable &= ~bit;
    }
    return syscall(SYS_capset, &header, data) == 0 ? 0 : -1;
}

/* In the app's process, before exec: the manifest's scheduling policy. */
static int apply_sched(const struct sched_option *s) {
    if (s->kind == SCHED_KIND_NONE) return 0;
    struct sched_param param = {.sched_priority = s->kind == SCHED_KIND_PRIORITY ? s->value : 0};
    /* The system call itself: musl's sched_setscheduler() always fails with ENOSYS (the call acts on
     * one thread, not the process POSIX means), and this process is single-threaded anyway. */
    if (syscall(SYS_sched_setscheduler, 0, s->policy, &param) != 0) return -1;
    if (s->kind == SCHED_KIND_NICE && s->value != 0) {
        /* nice(2) returns the new value, which may be -1: errno tells failure apart. */
        errno = 0;
        if (nice(s->value) == -1 && errno != 0) return -1;
    }
    return 0;
}

/* In the app's process, before exec: NORTHSTAR_CONSOLE = a connected console fd. */
static void connect_console(void) {
    const char *path = getenv("SKIFF_CONSOLE");
    unsetenv("NORTHSTAR_CONSOLE");
    if (path == NULL || path[0] == '\0') return;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(addr.sun_path)) {
        dprintf(2, "skiff-init: console path too long: %s\n", path);
        return;
    }
    strcpy(addr.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0); /* inherited by exec, on purpose */
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        dprintf(2, "skiff-init: console %s: %s\n", path, strerror(errno));
        if (fd >= 0) close(fd);
        return;
    }
    char number[16];
    snprintf(number, sizeof(number), "%d", fd);
    setenv("NORTHSTAR_CONSOLE", number, 1);
}

static pid_t spawn_app(const struct options *o, const sigset_t *orig_mask) {
    char **argv = o->app;
    pid_t pid = fork();
    if (pid != 0) return pid;
    /* The status pipe is close-on-exec (set in main): it is init's alone. */
    sigprocmask(SIG_SETMASK, orig_mask, NULL);
    if (apply_sched(&o->sched) != 0) {
        dprintf(2, "skiff-init: sched: %s\n", strerror(errno));
        _exit(126);
    }
    connect_console();
    execvp(argv[0], argv);
    int code = errno == ENOENT ? 127 : 126;
    dprintf(2, "skiff-init: exec %s: %s\n", argv[0], strerror(errno));
    _exit(code);
}

/* Signals init must not forward: child bookkeeping and synchronous faults. */
static int is_forwardable(int sig) {
    return sig != SIGCHLD && sig != SIGSEGV && sig != SIGBUS && sig != SIGFPE &&
           sig != SIGILL && sig != SIGABRT && sig != SIGTRAP && sig != SIGSYS;
}

static int is_namespace_reboot(const siginfo_t *si) {
    return (si->si_signo == SIGHUP || si->si_signo == SIGINT) && si->si_code == SI_KERNEL;
}

/* The debug hold after the app ended with `app_status`: see the header. */
static int hold(const sigset_t *all, const char *app, int app_status) {
    if (WIFSIGNALED(app_status))
        dprintf(2, "skiff-init: debug hold: %s was killed by signal %d; the container stays for inspection until it is stopped\n",
                app, WTERMSIG(app_status));
    else
        dprintf(2, "skiff-init: debug hold: %s exited with code %d; the container stays for inspection until it is stopped\n",
                app, exit_code_of(app_status));
    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(all, &si);
        if (sig < 0) continue; /* EINTR */
        if (is_namespace_reboot(&si)) {
            kill(-1, SIGKILL);
            _exit(0);
        }
        if (sig == SIGTERM || sig == SIGINT || sig == SIGQUIT || sig == SIGHUP) return exit_code_of(app_status);
        if (sig == SIGCHLD)
            while (waitpid(-1, NULL, WNOHANG) > 0) {
            }
    }
}

int main(int argc, char **argv) {
    struct options opt;
    if (parse_options(argc, argv, &opt) != 0) {
        dprintf(2, "usage: %s [--unmount-proc] [--drop-cap N]... [--sched POLICY] [--passcred FD]... -- <program> [args...]\n",
                argc > 0 ? argv[0] : "skiff-init");
        return 2;
    }
    if (status_fd_open()) fcntl(STATUS_FD, F_SETFD, FD_CLOEXEC);
    if (opt.unmount_proc && umount2("/proc", MNT_DETACH) != 0) {
        dprintf(2, "skiff-init: unmount /proc: %s\n", strerror(errno));
        return 126;
    }
    if (opt.n_drop_caps > 0 && drop_caps(opt.drop_caps, opt.n_drop_caps) != 0) {
        dprintf(2, "skiff-init: dropping capabilities: %s\n", strerror(errno));
        return 126;
    }
    for (int i = 0; i < opt.n_passcred; i++) {
        int on = 1;
        if (setsockopt(opt.passcred[i], SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) != 0) {
            dprintf(2, "skiff-init: SO_PASSCRED on fd %d: %s\n", opt.passcred[i], strerror(errno));
            return 126;
        }
    }

    const char *hold_env = getenv("SKIFF_DEBUG_HOLD");
    int debug_hold = hold_env != NULL && strcmp(hold_env, "1") == 0;
    unsetenv("SKIFF_DEBUG_HOLD");

    sigset_t all, orig;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &orig);

    pid_t app = spawn_app(&opt, &orig);
    if (app < 0) {
        dprintf(2, "skiff-init: fork: %s\n", strerror(errno));
        return 126;
    }
    /* Until now a signal from the host could be lost (PID 1 drops signals it
     * has no handler for): the monitor holds back START's reply until this. */
    if (status_fd_open()) write_status_record(RECORD_READY, app);

    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(&all, &si);
        if (sig < 0) continue; /* EINTR */
        if (is_namespace_reboot(&si)) {
            kill(-1, SIGKILL);
            _exit(0);
        }
        if (sig != SIGCHLD) {
            if (is_forwardable(sig)) kill(app, sig);
            continue;
        }
        /* Reap every exited child; only the app's status matters. */
        for (;;) {
            int st;
            pid_t pid = waitpid(-1, &st, WNOHANG);
            if (pid <= 0) break;
            if (pid == app) {
                if (status_fd_open()) write_status_record(RECORD_EXIT, st);
                if (!debug_hold) return exit_code_of(st);
                return hold(&all, opt.app[0], st);
            }
        }
    }
}
