/*
 * skiff-exec: runs one `<runtime> exec` process in a running container, relays its stdio and
 * reports its exact wait status. The daemon starts one per `exec` request (src/daemon/exec/).
 *
 * Usage: skiff-exec [--console-socket PATH] --pid-file PATH -- <runtime> [args...]
 *
 *   The runtime arguments are the daemon's: `--root R exec -d --pid-file PATH
 *   [--tty --console-socket PATH] --process FILE ID`. The same two paths are passed to
 *   skiff-exec: it listens on the console socket (tty) and reads the pid file.
 *
 * Descriptors from the daemon (Node `stdio: "pipe"` each, Unix stream sockets):
 *   0  stdin of the process (tty: written to the pty master; EOF writes one ^D)
 *   1  stdout of the process (tty: everything the pty master reads)
 *   2  stderr of the process (tty: the runtime's own stderr only)
 *   3  control, both ways, one ASCII line per message:
 *        skiff-exec -> daemon   "started PID"         the runtime exited 0; PID is the host pid
 *                               "failed TEXT"         the runtime failed; TEXT is its stderr (one line)
 *                               "exited CODE"         the process exited (after its output was relayed)
 *                               "signalled SIGNAL"    the process was killed by SIGNAL
 *        daemon -> skiff-exec   "signal N"            kill(PID, N)
 *                               "resize ROWS COLS"    TIOCSWINSZ on the pty master (kept until it exists)
 *      EOF on 3 (the daemon closed it, or died): before "started" the runtime is killed; after it
 *      the process gets SIGKILL. skiff-exec then exits.
 *
 * Why a helper, and why this way (the exact status):
 * `<runtime> exec` without -d reports the process's end as its own exit code, 128+N for signal N,
 * so "exit 137" and "killed by SIGKILL" cannot be told apart. With -d the runtime starts the
 * process and exits; the process's parents (runc's nsexec stages, then the runtime) have all
 * exited by then, and the kernel reparents it to the nearest ancestor that is a child subreaper
 * in the host pid namespace: this helper (PR_SET_CHILD_SUBREAPER). So the helper waitpid()s the
 * process itself and gets the real wait status, and the pid it kills cannot be reused before the
 * helper reaps it. Processes the exec'd process forks are in the container's pid namespace:
 * when they are orphaned they go to the container's init, never here. Node cannot receive a
 * pty master over SCM_RIGHTS (runc's --console-socket); the helper does, and relays it.
 *
 * Phases: STARTING (runtime running; its stderr collected as the error text, tty: the console
 * socket accepted) -> RUNNING (pid known; stdio relayed; control applied) -> DRAINING (process
 * reaped; output relayed until every output reached EOF, or a poll of DRAIN_MS found none, or
 * DRAIN_MAX_MS after the exit: a grandchild that keeps the pipe open cannot hold the status
 * back; what waits in the pipes then is still read, up to FINAL_DRAIN) -> status line written,
 * exit 0. A failed start writes "failed" and exits 1.
 *
 * INVARIANTS: all fds are non-blocking and every wait is one poll(); one buffer per channel, read
 * only when empty, so a daemon that stops reading stops the process's output (back-pressure),
 * never the control channel. SIGCHLD is taken through a signalfd. Before the pid file is read
 * only the runtime is reaped (by pid), so a process that exits at once keeps its zombie and
 * its status for us; after it, any child is reaped and all but the process ignored.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE 65536
#define ERR_MAX 4096   /* runtime error text kept for "failed" */
#define DRAIN_MS 100   /* after the exit: no output this long ends the drain */
#define DRAIN_MAX_MS 2000
#define FINAL_DRAIN (1024 * 1024)
#define CTRL_MAX 256

enum phase { PH_STARTING, PH_RUNNING, PH_DRAINING };

/* One direction of relay: src -> buf -> dst. */
struct channel {
    int src, dst;
    unsigned char buf[BUF_SIZE];
    size_t len, off;
    int eof; /* src reached EOF (or failed) */
};

enum { CH_IN, CH_OUT, CH_ERR, N_CH };

static struct {
    enum phase phase;
    int tty;
    const char *console_path, *pid_path;
    pid_t runtime_pid, pid;
    int listen_fd, master, sfd;
    int ctrl_open;
    char ctrl_buf[CTRL_MAX];
    size_t ctrl_len;
    struct winsize size;
    int size_pending;
    int sent_eot;
    int status;
    int64_t exited_at;
    struct channel ch[N_CH];
    char err[ERR_MAX];
    size_t err_len;
} s;

static int64_t now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void die(const char *what) {
    dprintf(2, "skiff-exec: %s: %s\n", what, strerror(errno));
    exit(2);
}

static void set_nonblock(int fd) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) die("fcntl");
}

/* A whole control line, blocking until written (a few bytes; the daemon always reads 3). */
static void ctrl_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void ctrl_send(const char *fmt, ...) {
    char line[ERR_MAX + 32];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n > sizeof line - 2) n = sizeof line - 2;
    line[n++] = '\n';
    for (int off = 0; off < n;) {
        ssize_t w = write(3, line + off, (size_t)(n - off));
        if (w > 0) {
            off += (int)w;
        } else if (w < 0 && errno == EAGAIN) {
            struct pollfd p = {.fd = 3, .events = POLLOUT};
            poll(&p, 1, 1000);
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else {
            return; /* the daemon is gone */
        }
    }
}

static void apply_size(void) {
    if (s.size_pending && s.master >= 0) {
        ioctl(s.master, TIOCSWINSZ, &s.size);
        s.size_pending = 0;
    }
}

static void kill_process(int sig) {
    if (s.phase == PH_STARTING) {
        if (s.runtime_pid > 0) kill(s.runtime_pid, SIGKILL);
    } else if (s.phase == PH_RUNNING) {
        kill(s.pid, sig); /* our unreaped child: the pid cannot have been reused */
    }
}

static void ctrl_line(char *line) {
    int a, b;
    if (sscanf(line, "signal %d", &a) == 1) {
        if (a > 0 && a < 65) kill_process(a);
    } else if (sscanf(line, "resize %d %d", &a, &b) == 2) {
        if (a > 0 && a <= 65535 && b > 0 && b <= 65535) {
            s.size.ws_row = (unsigned short)a;
            s.size.ws_col = (unsigned short)b;
            s.size_pending = 1;
            apply_size();
        }
    }
    /* Anything else is ignored: the daemon is the only writer and sends only these. */
}

static void ctrl_read(void) {
    ssize_t n = read(3, s.ctrl_buf + s.ctrl_len, sizeof s.ctrl_buf - s.ctrl_len);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
        s.ctrl_open = 0;
        kill_process(SIGKILL);
        return;
    }
    s.ctrl_len += (size_t)n;
    for (;;) {
        char *nl = memchr(s.ctrl_buf, '\n', s.ctrl_len);
        if (!nl) break;
        *nl = 0;
        ctrl_line(s.ctrl_buf);
        size_t used = (size_t)(nl - s.ctrl_buf) + 1;
        memmove(s.ctrl_buf, s.ctrl_buf + used, s.ctrl_len - used);
        s.ctrl_len -= used;
    }
    if (s.ctrl_len == sizeof s.ctrl_buf) s.ctrl_len = 0; /* an over-long line: dropped */
}

/* tty: receive the pty master the runtime sends over the console socket. */
static void accept_console(void) {
    int conn = accept4(s.listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (conn < 0) return;
    char byte[256];
    char control[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {.iov_base = byte, .iov_len = sizeof byte};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
    struct pollfd p = {.fd = conn, .events = POLLIN};
    if (poll(&p, 1, 5000) == 1 && recvmsg(conn, &msg, MSG_CMSG_CLOEXEC) >= 0) {
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && s.master < 0) {
                memcpy(&s.master, CMSG_DATA(c), sizeof(int));
            }
        }
    }
    close(conn);
    if (s.master < 0) return;
    set_nonblock(s.master);
    close(s.listen_fd);
    s.listen_fd = -1;
    unlink(s.console_path);
    s.ch[CH_IN].dst = s.master;
    s.ch[CH_OUT].src = s.master;
    apply_size();
}

/* The parent pid of `pid` from /proc (0 if it cannot be read). A zombie child of ours still
 * names us, so a process that already exited passes. */
static pid_t parent_of(pid_t pid) {
    char path[64], stat[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, stat, sizeof stat - 1);
    close(fd);
    if (n <= 0) return 0;
    stat[n] = 0;
    char *end = strrchr(stat, ')'); /* the command name may hold spaces and parentheses */
    char state;
    int ppid;
    if (!end || sscanf(end + 1, " %c %d", &state, &ppid) != 2) return 0;
    return (pid_t)ppid;
}

static void runtime_exited(int status) {
    s.runtime_pid = 0;
    if (s.tty && s.master < 0 && s.listen_fd >= 0) accept_console(); /* queued before the exit */
    FILE *f = WIFEXITED(status) && WEXITSTATUS(status) == 0 ? fopen(s.pid_path, "r") : NULL;
    long pid = 0;
    if (f) {
        if (fscanf(f, "%ld", &pid) != 1) pid = 0;
        fclose(f);
    }
    if (pid <= 0 || (s.tty && s.master < 0)) {
        /* The error text is the runtime's stderr, collected while it ran (drain what is left). */
        for (;;) {
            ssize_t n = read(s.ch[CH_ERR].src, s.err + s.err_len, sizeof s.err - 1 - s.err_len);
            if (n <= 0) break;
            s.err_len += (size_t)n;
        }
        s.err[s.err_len] = 0;
        for (size_t i = 0; i < s.err_len; i++)
            if (s.err[i] == '\n' || s.err[i] == '\r') s.err[i] = ' ';
        if (s.err_len == 0) {
            if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                snprintf(s.err, sizeof s.err, s.tty ? "runtime sent no console" : "runtime wrote no pid file");
            else if (WIFEXITED(status))
                snprintf(s.err, sizeof s.err, "runtime exited with code %d", WEXITSTATUS(status));
            else
                snprintf(s.err, sizeof s.err, "runtime killed by signal %d", WTERMSIG(status));
        }
        ctrl_send("failed %s", s.err);
        if (s.listen_fd >= 0) unlink(s.console_path);
        exit(1);
    }
    /* Supervision rests on the process being our child (reparented to us, the subreaper): a
     * runtime that keeps another process as its parent would leave us waiting forever. */
    if (parent_of((pid_t)pid) != getpid()) {
        kill((pid_t)pid, SIGKILL);
        ctrl_send("failed process %ld is not a child of skiff-exec: the runtime kept it elsewhere", pid);
        exit(1);
    }
    s.pid = (pid_t)pid;
    s.phase = PH_RUNNING;
    /* Whatever the runtime wrote to stderr on success (warnings) goes out as stderr. */
    memcpy(s.ch[CH_ERR].buf, s.err, s.err_len);
    s.ch[CH_ERR].len = s.err_len;
    s.ch[CH_ERR].off = 0;
    ctrl_send("started %ld", pid);
    if (!s.ctrl_open) kill(s.pid, SIGKILL); /* the daemon left while the runtime ran */
}

static void reap(void) {
    struct signalfd_siginfo info;
    while (read(s.sfd, &info, sizeof info) == sizeof info) {
    }
    int status;
    /* STARTING: only the runtime is reaped. The process may already have exited (a zombie
     * child of ours: its intermediate parents are gone); its pid is not known before the pid
     * file is read, so it must stay unreaped until then, or its status would be lost. */
    if (s.phase == PH_STARTING) {
        if (waitpid(s.runtime_pid, &status, WNOHANG) == s.runtime_pid) runtime_exited(status);
        if (s.phase == PH_STARTING) return;
    }
    for (;;) {
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0) return;
        if (s.phase == PH_RUNNING && pid == s.pid) {
            s.status = status;
            s.phase = PH_DRAINING;
            s.exited_at = now_ms();
        }
        /* Others (none expected) are orphans of the runtime: reaped and ignored. */
    }
}

/* Moves data of one channel; returns 1 when bytes moved. */
static int pump(struct channel *c, short revents_src, short revents_dst, int is_output) {
    int moved = 0;
    if (c->len == 0 && !c->eof && (revents_src & (POLLIN | POLLHUP | POLLERR))) {
        ssize_t n = read(c->src, c->buf, sizeof c->buf);
        if (n > 0) {
            c->len = (size_t)n;
            c->off = 0;
            moved = 1;
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            c->eof = 1; /* EOF, or EIO of a pty master whose slave is closed everywhere */
        }
    }
    if (c->len > 0 && (revents_dst & POLLOUT)) {
        ssize_t n = write(c->dst, c->buf + c->off, c->len);
        if (n > 0) {
            c->off += (size_t)n;
            c->len -= (size_t)n;
            moved = 1;
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            c->len = 0; /* the daemon's end is gone: drop the output */
            if (!is_output) c->eof = 1;
        }
    }
    return moved;
}

static void run_runtime(char **argv, int in_r, int out_w, int err_w) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (dup2(in_r, 0) < 0 || dup2(out_w, 1) < 0 || dup2(err_w, 2) < 0) _exit(127);
    for (int fd = 3; fd < 1024; fd++) close(fd);
    execv(argv[0], argv);
    dprintf(2, "cannot execute %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

int main(int argc, char **argv) {
    int i = 1;
    s.listen_fd = s.master = -1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--console-socket") == 0 && i + 1 < argc) s.console_path = argv[++i];
        else if (strcmp(argv[i], "--pid-file") == 0 && i + 1 < argc) s.pid_path = argv[++i];
        else if (strcmp(argv[i], "--") == 0) break;
        else break;
    }
    if (i >= argc || strcmp(argv[i], "--") != 0 || i + 1 >= argc || !s.pid_path || argv[i + 1][0] != '/') {
        dprintf(2, "usage: skiff-exec [--console-socket PATH] --pid-file PATH -- /RUNTIME [args...]\n");
        return 2;
    }
    char **runtime_argv = argv + i + 1;
    s.tty = s.console_path != NULL;
    s.ctrl_open = 1;
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) die("PR_SET_CHILD_SUBREAPER");
    signal(SIGPIPE, SIG_IGN);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &chld, NULL) < 0) die("sigprocmask");
    s.sfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
    if (s.sfd < 0) die("signalfd");

    if (s.tty) {
        struct sockaddr_un addr = {.sun_family = AF_UNIX};
        if (strlen(s.console_path) >= sizeof addr.sun_path) {
            errno = ENAMETOOLONG;
            die(s.console_path);
        }
        strcpy(addr.sun_path, s.console_path);
        s.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (s.listen_fd < 0) die("socket");
        unlink(s.console_path);
        if (bind(s.listen_fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind console socket");
        if (listen(s.listen_fd, 1) < 0) die("listen");
    }

    /* The process's stdio. tty: the runtime's stdin and stdout are /dev/null, its stderr a pipe. */
    int in[2], out[2], err[2];
    if (pipe2(err, O_CLOEXEC) < 0) die("pipe");
    if (s.tty) {
        in[0] = out[1] = open("/dev/null", O_RDWR | O_CLOEXEC);
        in[1] = out[0] = -1;
        if (in[0] < 0) die("/dev/null");
    } else if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
        die("pipe");
    }
    s.runtime_pid = fork();
    if (s.runtime_pid < 0) die("fork");
    if (s.runtime_pid == 0) run_runtime(runtime_argv, in[0], out[1], err[1]);
    close(in[0]);
    if (!s.tty) close(out[1]);
    close(err[1]);

    for (int fd = 0; fd <= 3; fd++) set_nonblock(fd);
    s.ch[CH_IN] = (struct channel){.src = 0, .dst = s.tty ? -1 : in[1]};
    s.ch[CH_OUT] = (struct channel){.src = s.tty ? -1 : out[0], .dst = 1};
    s.ch[CH_ERR] = (struct channel){.src = err[0], .dst = 2};
    if (!s.tty) {
        set_nonblock(in[1]);
        set_nonblock(out[0]);
    }
    set_nonblock(err[0]);

    for (;;) {
        struct pollfd p[10];
        int n = 0, i_sfd, i_ctrl = -1, i_listen = -1, i_src[N_CH], i_dst[N_CH];
        i_sfd = n;
        p[n++] = (struct pollfd){.fd = s.sfd, .events = POLLIN};
        if (s.ctrl_open) {
            i_ctrl = n;
            p[n++] = (struct pollfd){.fd = 3, .events = POLLIN};
        }
        if (s.listen_fd >= 0) {
            i_listen = n;
            p[n++] = (struct pollfd){.fd = s.listen_fd, .events = POLLIN};
        }
        for (int c = 0; c < N_CH; c++) {
            struct channel *ch = &s.ch[c];
            i_src[c] = i_dst[c] = -1;
            /* STARTING: only the runtime's stderr is read (into the error text, below). */
            int relaying = s.phase != PH_STARTING && !(c == CH_IN && s.phase == PH_DRAINING);
            if (relaying && ch->src >= 0 && ch->dst >= 0 && ch->len == 0 && !ch->eof) {
                i_src[c] = n;
                p[n++] = (struct pollfd){.fd = ch->src, .events = POLLIN};
            }
            if (ch->len > 0 && ch->dst >= 0) {
                i_dst[c] = n;
                p[n++] = (struct pollfd){.fd = ch->dst, .events = POLLOUT};
            }
        }
        int i_err = -1;
        if (s.phase == PH_STARTING && s.err_len < sizeof s.err - 1) {
            i_err = n;
            p[n++] = (struct pollfd){.fd = s.ch[CH_ERR].src, .events = POLLIN};
        }
        int timeout = -1;
        if (s.phase == PH_DRAINING) {
            int64_t elapsed = now_ms() - s.exited_at;
            int out_done = s.ch[CH_OUT].eof && s.ch[CH_OUT].len == 0 && s.ch[CH_ERR].eof && s.ch[CH_ERR].len == 0;
            if (out_done || elapsed >= DRAIN_MAX_MS) break;
            timeout = elapsed + DRAIN_MS < DRAIN_MAX_MS ? DRAIN_MS : (int)(DRAIN_MAX_MS - elapsed);
        }
        int ready = poll(p, (nfds_t)n, timeout);
        if (ready < 0) {
            if (errno == EINTR) continue;
            die("poll");
        }
        /* Quiet means a whole poll found nothing to read, not wall time: a helper that was not
         * scheduled for a while still reads what is waiting in the pipes. */
        if (ready == 0 && s.phase == PH_DRAINING && s.ch[CH_OUT].len == 0 && s.ch[CH_ERR].len == 0) break;
        if (p[i_sfd].revents) reap();
        if (i_ctrl >= 0 && p[i_ctrl].revents) ctrl_read();
        if (i_listen >= 0 && p[i_listen].revents && s.listen_fd >= 0) accept_console();
        if (i_err >= 0 && p[i_err].revents && s.phase == PH_STARTING) {
            ssize_t r = read(s.ch[CH_ERR].src, s.err + s.err_len, sizeof s.err - 1 - s.err_len);
            if (r > 0) s.err_len += (size_t)r;
        }
        for (int c = 0; c < N_CH; c++) {
            short rs = i_src[c] >= 0 ? p[i_src[c]].revents : 0;
            short rd = i_dst[c] >= 0 ? p[i_dst[c]].revents : 0;
            pump(&s.ch[c], rs, rd, c != CH_IN);
        }
        /* stdin: EOF from the daemon closes the process's stdin (tty: one ^D instead). */
        struct channel *in_ch = &s.ch[CH_IN];
        if (in_ch->eof && in_ch->len == 0 && in_ch->dst >= 0 && s.phase == PH_RUNNING) {
            if (s.tty) {
                if (!s.sent_eot) {
                    s.sent_eot = 1;
                    char eot = 4;
                    if (write(s.master, &eot, 1) < 0) { /* the shell is gone: nothing to tell */
                    }
                }
            } else {
                close(in_ch->dst);
                in_ch->dst = -1;
            }
        }
    }
    /* Flush what is buffered and what waits in the pipes now (blocking writes: the daemon reads
     * until our end closes; at most FINAL_DRAIN bytes per channel, as a writer may not stop). */
    for (int c = CH_OUT; c < N_CH; c++) {
        struct channel *ch = &s.ch[c];
        int flags = fcntl(ch->dst, F_GETFL);
        fcntl(ch->dst, F_SETFL, flags & ~O_NONBLOCK);
        for (size_t drained = 0;;) {
            while (ch->len > 0) {
                ssize_t w = write(ch->dst, ch->buf + ch->off, ch->len);
                if (w <= 0) {
                    ch->len = 0;
                    ch->eof = 1; /* the daemon's end is gone */
                    break;
                }
                ch->off += (size_t)w;
                ch->len -= (size_t)w;
            }
            if (ch->eof || ch->src < 0 || drained >= FINAL_DRAIN) break;
            ssize_t r = read(ch->src, ch->buf, sizeof ch->buf);
            if (r <= 0) break; /* EOF, EAGAIN (empty now) or EIO (pty closed) */
            ch->len = (size_t)r;
            ch->off = 0;
            drained += (size_t)r;
        }
    }
    if (WIFSIGNALED(s.status)) ctrl_send("signalled %d", WTERMSIG(s.status));
    else ctrl_send("exited %d", WEXITSTATUS(s.status));
    return 0;
}
