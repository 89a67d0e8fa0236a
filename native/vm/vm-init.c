/*
 * skiff-vm-init: PID 1 of the VM test lane's guest (docs/testing.md).
 *
 * The initramfs (scripts/vm/initramfs-init) builds the guest's root and
 * switch_root's to this program, copied by the runner (scripts/vm/run) into
 * the command share. It runs one command and powers the guest off.
 *
 * The command share, mounted read-write at SHARE (9p, cache=none):
 *   argv    in:  the command, each argument NUL-terminated; at least one
 *   env     in:  the environment, each NAME=VALUE NUL-terminated (may be empty)
 *   cwd     in:  the working directory, no terminator
 *   status  out: "exit N\n" (the command exited with N) or "signal N\n" (it
 *                was killed by signal N), written and fsync'ed before power
 *                off. Absent when the guest failed before or while running it.
 * Each input file is at most REQUEST_MAX bytes and argv/env hold at most
 * ARGS_MAX entries: a larger request is refused before anything runs.
 *
 * Phases, in order: REQUEST (read the share) -> RUN (fork the command into its
 * own session, stdin /dev/null, stdout and stderr the console) -> REAP (reap
 * every child, orphans included, until the command exits) -> DRAIN (SIGTERM
 * to every remaining process, then SIGKILL after DRAIN_TERM_MS, reaped for at
 * most DRAIN_KILL_MS) -> REPORT (write status, sync) -> POWEROFF. A failure in
 * REQUEST or RUN reports "exit 125" (or 126/127 from exec) so the host always
 * learns something; only a failure to write status leaves it absent.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/klog.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define SHARE "/run/skiff-vm"
#define REQUEST_MAX (1024 * 1024)
#define ARGS_MAX 4096
#define DRAIN_TERM_MS 2000
#define DRAIN_KILL_MS 3000
#define EXIT_REQUEST_FAILED 125

enum phase { PHASE_REQUEST, PHASE_RUN, PHASE_REAP, PHASE_DRAIN, PHASE_REPORT, PHASE_POWEROFF };

static const char *phase_name(enum phase p) {
    switch (p) {
    case PHASE_REQUEST: return "request";
    case PHASE_RUN: return "run";
    case PHASE_REAP: return "reap";
    case PHASE_DRAIN: return "drain";
    case PHASE_REPORT: return "report";
    case PHASE_POWEROFF: return "poweroff";
    }
    return "?";
}

static void say(enum phase p, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    dprintf(2, "skiff-vm-init (%s): ", phase_name(p));
    vdprintf(2, fmt, ap);
    dprintf(2, "\n");
    va_end(ap);
}

/* A request file read whole; data is NUL-terminated one past len. */
struct blob {
    char *data;
    size_t len;
};

static int read_blob(const char *name, struct blob *out) {
    char path[256];
    snprintf(path, sizeof(path), SHARE "/%s", name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size > REQUEST_MAX) {
        close(fd);
        errno = EFBIG;
        return -1;
    }
    out->data = malloc((size_t)st.st_size + 1);
    if (out->data == NULL) {
        close(fd);
        return -1;
    }
    size_t len = 0;
    while (len < (size_t)st.st_size) {
        ssize_t n = read(fd, out->data + len, (size_t)st.st_size - len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        len += (size_t)n;
    }
    close(fd);
    out->data[len] = '\0';
    out->len = len;
    return 0;
}

/* Splits NUL-terminated entries into a NULL-terminated vector; -1 when over ARGS_MAX or unterminated. */
static char **split_entries(struct blob *b, size_t *count) {
    if (b->len > 0 && b->data[b->len - 1] != '\0') return NULL;
    size_t n = 0;
    for (size_t i = 0; i < b->len; i++) n += b->data[i] == '\0';
    if (n > ARGS_MAX) return NULL;
    char **v = calloc(n + 1, sizeof(char *));
    if (v == NULL) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < b->len; i += strlen(b->data + i) + 1) v[k++] = b->data + i;
    *count = n;
    return v;
}

static long elapsed_ms(const struct timespec *since) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - since->tv_sec) * 1000 + (now.tv_nsec - since->tv_nsec) / 1000000;
}

/* Reaps what has exited; returns 1 when no child is left. */
static int reap_nohang(void) {
    for (;;) {
        pid_t pid = waitpid(-1, NULL, WNOHANG);
        if (pid > 0) continue;
        return pid < 0 && errno == ECHILD;
    }
}

static int drain_until(long deadline_ms, const struct timespec *since) {
    while (elapsed_ms(since) < deadline_ms) {
        if (reap_nohang()) return 1;
        struct timespec tick = {0, 20 * 1000 * 1000};
        nanosleep(&tick, NULL);
    }
    return reap_nohang();
}

static void write_status(const char *text) {
    int fd = open(SHARE "/status", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        say(PHASE_REPORT, "open status: %s", strerror(errno));
        return;
    }
    size_t len = strlen(text);
    if (write(fd, text, len) != (ssize_t)len) say(PHASE_REPORT, "write status: %s", strerror(errno));
    if (fsync(fd) != 0) say(PHASE_REPORT, "fsync status: %s", strerror(errno));
    close(fd);
}

__attribute__((noreturn)) static void report_and_power_off(const char *status) {
    write_status(status);
    sync();
    /* The kernel's "reboot: Power down" would land in the command's output. */
    klogctl(6 /* SYSLOG_ACTION_CONSOLE_OFF */, NULL, 0);
    reboot(RB_POWER_OFF);
    /* Unreachable unless reboot failed; PID 1 must not exit (that panics the kernel, which also ends QEMU). */
    say(PHASE_POWEROFF, "reboot: %s", strerror(errno));
    for (;;) pause();
}

static pid_t spawn(char **argv, char **envp, const char *cwd) {
    pid_t pid = fork();
    if (pid != 0) return pid;
    setsid();
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) {
        dup2(devnull, 0);
        if (devnull != 0) close(devnull);
    }
    if (chdir(cwd) != 0) {
        dprintf(2, "skiff-vm-init: chdir %s: %s\n", cwd, strerror(errno));
        _exit(EXIT_REQUEST_FAILED);
    }
    /* execvpe searches the PATH of the new environment, as a shell would. */
    execvpe(argv[0], argv, envp);
    int code = errno == ENOENT ? 127 : 126;
    dprintf(2, "skiff-vm-init: exec %s: %s\n", argv[0], strerror(errno));
    _exit(code);
}

int main(void) {
    enum phase phase = PHASE_REQUEST;
    /* The console is a serial line: no "\n" -> "\r\n" translation, so the host sees the bytes written. */
    struct termios tio;
    if (tcgetattr(1, &tio) == 0) {
        tio.c_oflag &= ~(tcflag_t)OPOST;
        tcsetattr(1, TCSANOW, &tio);
    }
    sethostname("skiff-vm", 8);

    struct blob argv_blob = {0}, env_blob = {0}, cwd_blob = {0};
    size_t argc = 0, envc = 0;
    char **argv = NULL, **envp = NULL;
    if (read_blob("argv", &argv_blob) != 0 || read_blob("env", &env_blob) != 0 ||
        read_blob("cwd", &cwd_blob) != 0) {
        say(phase, "reading " SHARE ": %s", strerror(errno));
        report_and_power_off("exit 125\n");
    }
    argv = split_entries(&argv_blob, &argc);
    envp = split_entries(&env_blob, &envc);
    if (argv == NULL || argc == 0 || envp == NULL || cwd_blob.len == 0 || strlen(cwd_blob.data) != cwd_blob.len) {
        say(phase, "malformed request in " SHARE);
        report_and_power_off("exit 125\n");
    }

    phase = PHASE_RUN;
    pid_t command = spawn(argv, envp, cwd_blob.data);
    if (command < 0) {
        say(phase, "fork: %s", strerror(errno));
        report_and_power_off("exit 125\n");
    }

    phase = PHASE_REAP;
    int command_status = 0;
    for (;;) {
        int st;
        pid_t pid = waitpid(-1, &st, 0);
        if (pid == command) {
            command_status = st;
            break;
        }
        if (pid < 0 && errno != EINTR) {
            say(phase, "waitpid: %s", strerror(errno));
            report_and_power_off("exit 125\n");
        }
    }

    phase = PHASE_DRAIN;
    struct timespec since;
    clock_gettime(CLOCK_MONOTONIC, &since);
    kill(-1, SIGTERM);
    if (!drain_until(DRAIN_TERM_MS, &since)) {
        kill(-1, SIGKILL);
        if (!drain_until(DRAIN_TERM_MS + DRAIN_KILL_MS, &since)) say(phase, "some processes did not exit");
    }

    phase = PHASE_REPORT;
    char status[32];
    if (WIFSIGNALED(command_status))
        snprintf(status, sizeof(status), "signal %d\n", WTERMSIG(command_status));
    else
        snprintf(status, sizeof(status), "exit %d\n", WEXITSTATUS(command_status));
    report_and_power_off(status);
}
