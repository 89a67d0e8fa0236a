/*
 * skiff-init: PID 1 inside a Skiff container.
 *
 * Usage: /dev/.skiff/init -- <app> [args...]
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
 * Console descriptor (Northstar's NORTHSTAR_CONSOLE): when SKIFF_CONSOLE names
 * the container's console socket, the forked app process connects to it before
 * exec and finds the connected descriptor's number in NORTHSTAR_CONSOLE, as
 * Northstar's Client::from_env() expects. Only the app holds that descriptor
 * (init never does), so the connection ends with the app. Without a console,
 * or if connecting fails (logged), NORTHSTAR_CONSOLE is unset.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define STATUS_FD 3
#define STATUS_MAGIC 0x534b5753u
#define RECORD_READY 1u
#define RECORD_EXIT 2u

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

static pid_t spawn_app(char **argv, const sigset_t *orig_mask) {
    pid_t pid = fork();
    if (pid != 0) return pid;
    /* The status pipe is close-on-exec (set in main): it is init's alone. */
    sigprocmask(SIG_SETMASK, orig_mask, NULL);
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

int main(int argc, char **argv) {
    if (argc < 3 || strcmp(argv[1], "--") != 0) {
        dprintf(2, "usage: %s -- <program> [args...]\n", argc > 0 ? argv[0] : "skiff-init");
        return 2;
    }
    if (status_fd_open()) fcntl(STATUS_FD, F_SETFD, FD_CLOEXEC);

    sigset_t all, orig;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &orig);

    pid_t app = spawn_app(&argv[2], &orig);
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
                return exit_code_of(st);
            }
        }
    }
}
