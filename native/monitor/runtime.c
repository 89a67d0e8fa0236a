#include "runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fmt.h"

#define MAX_ARGS 32

/* Child side after fork: undo the monitor's signal setup, which exec would
 * otherwise hand down to the runtime and through it to the container. */
static void reset_signals(void) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Child side: places src[i] at fd i (i < n), closes everything above. Sources
 * are first copied above every target so no dup2 clobbers a later source. */
static void place_fds(const int *src, int n) {
    int tmp[MAX_ARGS + 8];
    for (int i = 0; i < n; i++) {
        tmp[i] = fcntl(src[i], F_DUPFD, 100);
        if (tmp[i] < 0) _exit(121);
    }
    for (int i = 0; i < n; i++)
        if (dup2(tmp[i], i) < 0) _exit(121);
    close_fd_range((unsigned)n, ~0u);
}

static void exec_runtime(const struct runtime *rt, char **argv) {
    execv(rt->path, argv);
    fmt_err("skiff-monitor: exec %s: %s\n", rt->path, strerror(errno));
    _exit(127);
}

pid_t runtime_create(const struct runtime *rt, const char *bundle, const char *pid_file, const struct create_fds *fds) {
    char preserve[16];
    if (fds->n_extra < 0 || fds->n_extra > MAX_ARGS) {
        errno = EINVAL;
        return -1;
    }
    fmt_snprintf(preserve, sizeof(preserve), "%d", 1 + fds->n_extra);
    char *argv[] = {(char *)rt->path, "--root",   (char *)rt->root, "create",  "--bundle", (char *)bundle,
                    "--pid-file",     (char *)pid_file, "--preserve-fds", preserve, (char *)rt->id, NULL};
    pid_t pid = fork();
    if (pid != 0) return pid;
    reset_signals();
    int src[4 + MAX_ARGS] = {fds->in, fds->out, fds->err, fds->status};
    for (int i = 0; i < fds->n_extra; i++) src[4 + i] = fds->extra[i];
    place_fds(src, 4 + fds->n_extra);
    exec_runtime(rt, argv);
    return -1;
}

pid_t runtime_restore(const struct runtime *rt, const char *image_dir, const char *bundle, const char *pid_file,
                      const struct create_fds *fds) {
    char *argv[] = {(char *)rt->path, "--root",   (char *)rt->root,  "restore",    "--detach",
                    "--image-path",   (char *)image_dir, "--work-path", (char *)image_dir, "--bundle",
                    (char *)bundle,   "--pid-file", (char *)pid_file, (char *)rt->id, NULL};
    pid_t pid = fork();
    if (pid != 0) return pid;
    reset_signals();
    int src[3] = {fds->status, fds->out, fds->err};
    place_fds(src, 3);
    exec_runtime(rt, argv);
    return -1;
}

static int pidfd_open_(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

int runtime_run(const struct runtime *rt, const char *const *args, const char *tail, int timeout_ms) {
    char *argv[MAX_ARGS + 6];
    int n = 0;
    argv[n++] = (char *)rt->path;
    argv[n++] = "--root";
    argv[n++] = (char *)rt->root;
    for (int i = 0; args[i] && n < MAX_ARGS; i++) argv[n++] = (char *)args[i];
    argv[n++] = (char *)rt->id;
    if (tail) argv[n++] = (char *)tail;
    argv[n] = NULL;

    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        reset_signals();
        int devnull = open("/dev/null", O_RDWR);
        if (devnull < 0) _exit(121);
        int src[3] = {devnull, devnull, devnull};
        place_fds(src, 3);
        exec_runtime(rt, argv);
    }
    int pfd = pidfd_open_(pid);
    if (pfd >= 0) {
        struct pollfd p = {.fd = pfd, .events = POLLIN};
        int r;
        do r = poll(&p, 1, timeout_ms);
        while (r < 0 && errno == EINTR);
        if (r == 0) kill(pid, SIGKILL);
        close(pfd);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) return -1;
    }
    return st;
}

/* runc: init blocks writing the fifo until the byte is read. */
static int start_runc(const char *path, int timeout_ms, char *err, size_t errsz) {
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        fmt_snprintf(err, errsz, "open %s: %s", path, strerror(errno));
        return -1;
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r;
    do r = poll(&p, 1, timeout_ms);
    while (r < 0 && errno == EINTR);
    char byte;
    ssize_t got = r > 0 ? read(fd, &byte, 1) : -1;
    close(fd);
    if (got != 1) {
        fmt_snprintf(err, errsz, "%s: the container's init did not signal readiness", path);
        return -1;
    }
    unlink(path);
    return 0;
}

/* crun: init already holds the read end (opened during create), so a
 * non-blocking open for writing succeeds at once, and ENXIO means no init
 * waits on it. The byte fits in the empty pipe: the write cannot block. */
static int start_crun(const char *path, char *err, size_t errsz) {
    int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        fmt_snprintf(err, errsz, "open %s for writing: %s%s", path, strerror(errno),
                     errno == ENXIO ? " (no init waits on it)" : "");
        return -1;
    }
    unlink(path);
    ssize_t put;
    do put = write(fd, "0", 1);
    while (put < 0 && errno == EINTR);
    int saved = errno;
    close(fd);
    if (put != 1) {
        fmt_snprintf(err, errsz, "write %s: %s", path, strerror(saved));
        return -1;
    }
    return 0;
}

int runtime_start_via_fifo(const struct runtime *rt, int timeout_ms, char *err, size_t errsz) {
    char path[PATH_MAX];
    fmt_snprintf(path, sizeof(path), "%s/%s/exec.fifo", rt->root, rt->id);
    switch (rt->kind) {
    case RUNTIME_RUNC: return start_runc(path, timeout_ms, err, errsz);
    case RUNTIME_CRUN: return start_crun(path, err, errsz);
    }
    fmt_snprintf(err, errsz, "unknown runtime kind %d", (int)rt->kind);
    return -1;
}
