/*
 * skiff-launcher: skiffd's resident spawner of skiff-monitor (src/daemon/monitor/launcher.ts).
 *
 * Usage: skiff-launcher DAEMON_PID
 *
 * Why: Node's child_process.spawn forks the whole daemon (tens of MiB of page tables) for every
 * monitor, ~3 ms of CPU on the start path. This process is a few pages; it is started once and
 * posix_spawn()s (vfork + exec) each monitor with exactly what Node's spawn gave it: its own
 * session (detached: it outlives skiffd and this launcher), signal dispositions at default and
 * no signal blocked, the launcher's environment (skiffd's, inherited at launch), skiffd's
 * cgroup (inherited at launch: neither moves), fd 0 /dev/null, fd 1 a pipe whose "ready\n" is
 * reported, fd 2 monitor.log opened for append, fds 3.. the daemon's descriptors, nothing else.
 *
 * Descriptors from the daemon (Node `stdio: "pipe"`): 0 requests, 1 replies, 2 diagnostics.
 *
 * Request (daemon -> launcher), native byte order, every field a u32 unless said:
 *   length   bytes after this field, at most MAX_REQUEST
 *   id       the daemon's number for the request, echoed in the replies
 *   mode     0 MONITOR: fd 1 the ready pipe, fd 2 the log (below);
 *            1 RUN: a short-lived tool (skiff-mount): fds 1 and 2 are pipes read by the launcher,
 *            whose first RUN_CAPTURE bytes each come back in "ran" when it has been reaped
 *   argc     1..MAX_ARGS
 *   nfds     0..MAX_FDS
 *   fds      nfds x i32: descriptor numbers in the daemon (DAEMON_PID), placed at 3, 4, ... in
 *            the monitor; -1 leaves that place closed. Taken with pidfd_getfd(2) (Linux >= 5.6)
 *            while the request is read: the daemon keeps them open until it has the reply.
 *   strings  argc + 1 NUL-terminated strings: argv (argv[0] searched in PATH) and the path of
 *            the log opened for append (0600, created) as the monitor's fd 2 (RUN: ignored)
 * Replies (launcher -> daemon), one ASCII line each:
 *   up PID               first, once: the launcher runs and reads requests
 *   spawned ID PID       the monitor runs (its "ready" or its exit follows)
 *   failed ID ERRNO      nothing was started (bad request, an fd not taken, exec failed)
 *   ready ID             the monitor wrote "ready\n" on its fd 1 (before its exit, if any)
 *   exit PID CODE SIGNAL a monitor was reaped (CODE -1 if killed by SIGNAL, SIGNAL 0 otherwise)
 *   ran ID CODE SIGNAL OUT ERR  a RUN was reaped; OUT and ERR its fd 1 and fd 2 output in hex,
 *                        "-" when empty
 *
 * Phases of one child here: SPAWNED (a monitor: ready pipe watched) -> the pipe closed at the
 * first of "ready\n", EOF, or the reap, then FREE; RUNNING (a tool: both pipes read into the
 * slot) -> "ran" at the reap, then FREE.
 *
 * INVARIANTS: every child is reaped by this process (SIGCHLD through a signalfd, waitpid(-1)
 * until none is left), as Node reaped them before; a reaped pid's ready pipe is drained first,
 * so "ready" always precedes "exit" for the same monitor. All the launcher's own descriptors are
 * close-on-exec and above MIN_OWN_FD, so none is inherited and none sits where a monitor's fd
 * goes. The launcher ends at EOF or an error on fd 0 (skiffd is gone or dropped it): its
 * monitors, in their own sessions, are reparented and keep running.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

#define MAX_REQUEST 65536
#define MAX_ARGS 256
#define MAX_FDS 32
#define MAX_PENDING 128 /* monitors whose "ready" is awaited at once */
#define MIN_OWN_FD 64   /* above 3 + MAX_FDS */
#define RUN_CAPTURE 4096 /* bytes of a tool's fd 1 and of its fd 2 that are kept */

enum mode { MODE_MONITOR = 0, MODE_RUN = 1 };

extern char **environ;

enum phase { PH_FREE, PH_SPAWNED, PH_RUNNING };

struct capture {
    int fd; /* -1 once at EOF */
    size_t len;
    char buf[RUN_CAPTURE];
};

struct pending {
    enum phase phase;
    uint32_t id;
    pid_t pid;
    int ready_r;
    char buf[8];
    size_t len;
    struct capture out, err; /* PH_RUNNING */
};

static struct pending pending[MAX_PENDING];
static int daemon_pidfd = -1;
static int out_fd = 1;

static int own_fd(int fd) {
    if (fd < 0 || fd >= MIN_OWN_FD) return fd;
    int high = fcntl(fd, F_DUPFD_CLOEXEC, MIN_OWN_FD);
    int saved = errno;
    close(fd);
    errno = saved;
    return high;
}

static void reply(const char *fmt, long a, long b, long c) {
    char line[96];
    int n = snprintf(line, sizeof(line), fmt, a, b, c);
    for (int off = 0; off < n;) {
        ssize_t w = write(out_fd, line + off, (size_t)(n - off));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) _exit(0); /* the daemon is gone */
        off += (int)w;
    }
}

static uint32_t u32_at(const unsigned char *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Reads what the monitor wrote on its fd 1; returns 1 once the entry is finished (closed). */
static int drain_ready(struct pending *p) {
    for (;;) {
        char c[16];
        ssize_t n = read(p->ready_r, c, sizeof(c));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return 0;
        if (n > 0) {
            for (ssize_t i = 0; i < n && p->len < sizeof(p->buf); i++) p->buf[p->len++] = c[i];
            if (p->len >= 6 && memcmp(p->buf, "ready\n", 6) == 0) {
                reply("ready %ld\n", (long)p->id, 0, 0);
            } else if (p->len < 6) {
                continue;
            }
        }
        /* ready, EOF, an error, or something else than "ready\n": this entry is done. */
        close(p->ready_r);
        p->phase = PH_FREE;
        return 1;
    }
}

/* Reads what a tool wrote so far; closes the pipe at EOF (or an error). */
static void drain_capture(struct capture *c) {
    while (c->fd >= 0) {
        char chunk[1024];
        ssize_t n = read(c->fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        if (n <= 0) {
            close(c->fd);
            c->fd = -1;
            return;
        }
        for (ssize_t i = 0; i < n && c->len < RUN_CAPTURE; i++) c->buf[c->len++] = chunk[i];
    }
}

static char *hex(char *at, const struct capture *c) {
    static const char digits[] = "0123456789abcdef";
    if (c->len == 0) *at++ = '-';
    for (size_t i = 0; i < c->len; i++) {
        *at++ = digits[(unsigned char)c->buf[i] >> 4];
        *at++ = digits[(unsigned char)c->buf[i] & 15];
    }
    return at;
}

/* The reaped tool's reply; what is still in its pipes (a child of it may hold them) is read first. */
static void reply_ran(struct pending *p, int status) {
    static char line[64 + 4 * RUN_CAPTURE];
    drain_capture(&p->out);
    drain_capture(&p->err);
    if (p->out.fd >= 0) close(p->out.fd);
    if (p->err.fd >= 0) close(p->err.fd);
    int n = snprintf(line, 64, "ran %u %d %d ", p->id, WIFSIGNALED(status) ? -1 : WEXITSTATUS(status),
                     WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    char *at = hex(line + n, &p->out);
    *at++ = ' ';
    at = hex(at, &p->err);
    *at++ = '\n';
    for (char *from = line; from < at;) {
        ssize_t w = write(out_fd, from, (size_t)(at - from));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) _exit(0); /* the daemon is gone */
        from += w;
    }
    p->phase = PH_FREE;
}

static void reap(void) {
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0) return;
        int was_run = 0;
        for (int i = 0; i < MAX_PENDING; i++)
            if (pending[i].phase == PH_RUNNING && pending[i].pid == pid) {
                reply_ran(&pending[i], status);
                was_run = 1;
            }
        if (was_run) continue;
        for (int i = 0; i < MAX_PENDING; i++)
            if (pending[i].phase == PH_SPAWNED && pending[i].pid == pid) {
                drain_ready(&pending[i]);
                if (pending[i].phase != PH_FREE) {
                    close(pending[i].ready_r);
                    pending[i].phase = PH_FREE;
                }
            }
        if (WIFSIGNALED(status))
            reply("exit %ld %ld %ld\n", (long)pid, -1, (long)WTERMSIG(status));
        else
            reply("exit %ld %ld %ld\n", (long)pid, (long)WEXITSTATUS(status), 0);
    }
}

/* One request (the bytes after `length`); replies spawned or failed. */
static void launch(const unsigned char *req, uint32_t len) {
    if (len < 16) {
        reply("failed %ld %ld\n", 0, EINVAL, 0);
        return;
    }
    uint32_t id = u32_at(req), mode = u32_at(req + 4), argc = u32_at(req + 8), nfds = u32_at(req + 12);
    size_t off = 16;
    int err = 0;
    int fds[MAX_FDS];
    int taken = 0;
    char *argv[MAX_ARGS + 1];
    const char *log_path = NULL;
    struct pending *slot = NULL;
    int ready[2] = {-1, -1}, log_fd = -1, devnull = -1, out[2] = {-1, -1}, err_pipe[2] = {-1, -1};

    if ((mode != MODE_MONITOR && mode != MODE_RUN) || argc < 1 || argc > MAX_ARGS || nfds > MAX_FDS || len - off < (size_t)nfds * 4) {
        err = EINVAL;
        goto done;
    }
    for (uint32_t i = 0; i < nfds; i++, off += 4) {
        int32_t fd;
        memcpy(&fd, req + off, 4);
        fds[i] = -1;
        taken = (int)i + 1;
        if (fd < 0) continue;
        fds[i] = own_fd((int)syscall(SYS_pidfd_getfd, daemon_pidfd, fd, 0));
        if (fds[i] < 0) {
            err = errno;
            goto done;
        }
    }
    /* argc + 1 strings, each ending inside the request. */
    for (uint32_t i = 0; i <= argc; i++) {
        const void *end = off < len ? memchr(req + off, 0, len - off) : NULL;
        if (end == NULL) {
            err = EINVAL;
            goto done;
        }
        if (i < argc)
            argv[i] = (char *)(req + off);
        else
            log_path = (const char *)(req + off);
        off = (size_t)((const unsigned char *)end - req) + 1;
    }
    argv[argc] = NULL;
    for (int i = 0; i < MAX_PENDING && slot == NULL; i++)
        if (pending[i].phase == PH_FREE) slot = &pending[i];
    if (slot == NULL) {
        err = EAGAIN;
        goto done;
    }
    if ((devnull = own_fd(open("/dev/null", O_RDWR | O_CLOEXEC))) < 0) {
        err = errno;
        goto done;
    }
    if (mode == MODE_MONITOR &&
        (pipe2(ready, O_CLOEXEC) < 0 || (ready[0] = own_fd(ready[0])) < 0 || (ready[1] = own_fd(ready[1])) < 0 ||
         (log_fd = own_fd(open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600))) < 0)) {
        err = errno;
        goto done;
    }
    if (mode == MODE_RUN &&
        (pipe2(out, O_CLOEXEC) < 0 || (out[0] = own_fd(out[0])) < 0 || (out[1] = own_fd(out[1])) < 0 ||
         pipe2(err_pipe, O_CLOEXEC) < 0 || (err_pipe[0] = own_fd(err_pipe[0])) < 0 ||
         (err_pipe[1] = own_fd(err_pipe[1])) < 0)) {
        err = errno;
        goto done;
    }

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawn_file_actions_adddup2(&fa, devnull, 0);
    posix_spawn_file_actions_adddup2(&fa, mode == MODE_RUN ? out[1] : ready[1], 1);
    posix_spawn_file_actions_adddup2(&fa, mode == MODE_RUN ? err_pipe[1] : log_fd, 2);
    for (int i = 0; i < taken; i++)
        if (fds[i] >= 0) posix_spawn_file_actions_adddup2(&fa, fds[i], 3 + i);
    pid_t pid;
    err = posix_spawnp(&pid, argv[0], &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (err == 0 && mode == MODE_MONITOR) {
        slot->phase = PH_SPAWNED;
        slot->id = id;
        slot->pid = pid;
        slot->ready_r = ready[0];
        slot->len = 0;
        fcntl(ready[0], F_SETFL, O_NONBLOCK);
        ready[0] = -1;
    } else if (err == 0) {
        slot->phase = PH_RUNNING;
        slot->id = id;
        slot->pid = pid;
        slot->out = (struct capture){.fd = out[0], .len = 0};
        slot->err = (struct capture){.fd = err_pipe[0], .len = 0};
        fcntl(out[0], F_SETFL, O_NONBLOCK);
        fcntl(err_pipe[0], F_SETFL, O_NONBLOCK);
        out[0] = err_pipe[0] = -1;
    }

done:
    for (int i = 0; i < taken; i++)
        if (fds[i] >= 0) close(fds[i]);
    if (ready[0] >= 0) close(ready[0]);
    if (ready[1] >= 0) close(ready[1]);
    for (int i = 0; i < 2; i++) {
        if (out[i] >= 0) close(out[i]);
        if (err_pipe[i] >= 0) close(err_pipe[i]);
    }
    if (log_fd >= 0) close(log_fd);
    if (devnull >= 0) close(devnull);
    if (err == 0)
        reply("spawned %ld %ld\n", (long)id, (long)slot->pid, 0);
    else
        reply("failed %ld %ld\n", (long)id, (long)err, 0);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: skiff-launcher DAEMON_PID\n");
        return 2;
    }
    pid_t daemon_pid = (pid_t)strtol(argv[1], NULL, 10);
    if (daemon_pid <= 0 || getppid() != daemon_pid) {
        fprintf(stderr, "skiff-launcher: %s is not the parent\n", argv[1]);
        return 2;
    }
    daemon_pidfd = own_fd((int)syscall(SYS_pidfd_open, daemon_pid, 0));
    if (daemon_pidfd < 0) {
        perror("skiff-launcher: pidfd_open");
        return 1;
    }
    int in_fd = own_fd(fcntl(0, F_DUPFD_CLOEXEC, MIN_OWN_FD));
    out_fd = fcntl(1, F_DUPFD_CLOEXEC, MIN_OWN_FD);
    if (in_fd < 0 || out_fd < 0) {
        perror("skiff-launcher: fds");
        return 1;
    }
    /* 0 and 1 stay open (on /dev/null) so no later descriptor lands there. */
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 0);
    dup2(devnull, 1);
    if (devnull > 2) close(devnull);

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGPIPE);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    int sfd = own_fd(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
    if (sfd < 0) {
        perror("skiff-launcher: signalfd");
        return 1;
    }

    reply("up %ld\n", (long)getpid(), 0, 0);
    static unsigned char buf[4 + MAX_REQUEST];
    size_t have = 0;
    for (;;) {
        struct pollfd pfd[2 + 2 * MAX_PENDING];
        struct pending *who[2 + 2 * MAX_PENDING];
        struct capture *cap[2 + 2 * MAX_PENDING];
        nfds_t n = 0;
        for (int i = 0; i < MAX_PENDING; i++) {
            struct pending *p = &pending[i];
            if (p->phase == PH_SPAWNED) {
                pfd[n] = (struct pollfd){.fd = p->ready_r, .events = POLLIN};
                cap[n] = NULL;
                who[n++] = p;
            } else if (p->phase == PH_RUNNING) {
                struct capture *c[2] = {&p->out, &p->err};
                for (int k = 0; k < 2; k++)
                    if (c[k]->fd >= 0) {
                        pfd[n] = (struct pollfd){.fd = c[k]->fd, .events = POLLIN};
                        cap[n] = c[k];
                        who[n++] = p;
                    }
            }
        }
        nfds_t first_own = n;
        pfd[n++] = (struct pollfd){.fd = in_fd, .events = POLLIN};
        pfd[n++] = (struct pollfd){.fd = sfd, .events = POLLIN};
        if (poll(pfd, n, -1) < 0) {
            if (errno == EINTR) continue;
            perror("skiff-launcher: poll");
            return 1;
        }
        /* Ready pipes first, then reaps: "ready" precedes "exit". */
        for (nfds_t i = 0; i < first_own; i++)
            if (pfd[i].revents && cap[i] != NULL)
                drain_capture(cap[i]);
            else if (pfd[i].revents)
                drain_ready(who[i]);
        if (pfd[first_own + 1].revents) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
            }
            reap();
        }
        if (pfd[first_own].revents) {
            ssize_t r = read(in_fd, buf + have, sizeof(buf) - have);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) return 0; /* the daemon is gone */
            have += (size_t)r;
            while (have >= 4) {
                uint32_t len = u32_at(buf);
                if (len > MAX_REQUEST) {
                    fprintf(stderr, "skiff-launcher: request of %u bytes\n", len);
                    return 1;
                }
                if (have < 4 + (size_t)len) break;
                launch(buf + 4, len);
                memmove(buf, buf + 4 + len, have - 4 - len);
                have -= 4 + len;
            }
        }
    }
}
