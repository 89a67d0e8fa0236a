/*
 * skiff-monitor: supervises one container for the Skiff daemon.
 * Protocol and files: docs/monitor.md. Options: usage() below.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "fmt.h"
#include "monitor.h"

static struct monitor M;

int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *state_path(struct monitor *m, const char *name) {
    fmt_snprintf(m->path_buf, sizeof(m->path_buf), "%s/%s", m->opt.state_dir, name);
    return m->path_buf;
}

int open_log(struct monitor *m) {
    const char *path = m->opt.log_path ? m->opt.log_path : state_path(m, "container.log");
    return logfile_open(&m->log, path, m->opt.log_format, m->opt.log_max_bytes, m->opt.log_files);
}

static void usage(void) {
    fmt_err("usage: skiff-monitor --id ID --bundle DIR --state-dir DIR --runtime PATH --runtime-root DIR\n"
            "       [--io-stdout inherit|pipe|discard] [--io-stderr inherit|pipe|discard]\n"
            "       [--log-max-bytes N] [--log-files N] [--log-path FILE] [--log-format skiff|cri]\n"
            "       [--extra-fds N] [--ready-fd FD] [--linger-ms N]\n"
            "       [--memory-cgroup DIR [--memory-group-dir DIR]]\n"
            "       [--runtime-kind runc|crun] [--restore IMAGE_DIR]\n");
    exit(2);
}

static long long parse_num(const char *name, const char *s, long long min, long long max) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s || v < min || v > max) {
        fmt_err("skiff-monitor: --%s: expected an integer in [%lld, %lld], got '%s'\n", name, min, max, s);
        exit(2);
    }
    return v;
}

static enum io_mode parse_io(const char *s) {
    if (strcmp(s, "inherit") == 0) return IO_INHERIT;
    if (strcmp(s, "pipe") == 0) return IO_PIPE;
    if (strcmp(s, "discard") == 0) return IO_DISCARD;
    usage();
    return IO_DISCARD;
}

/* Every option takes a value: `--name value` or `--name=value`, full names only. A parser of
 * our own rather than getopt_long, whose diagnostics would link stdio into the static binary. */
struct long_option {
    const char *name;
    char code;
};

/* The option code for argv[*i], its value in *value; advances *i past both. 0: unknown or no value. */
static char next_option(int argc, char **argv, int *i, const struct long_option *longs, const char **value) {
    const char *arg = argv[*i];
    if (strncmp(arg, "--", 2) != 0) return 0;
    arg += 2;
    size_t name_len = strcspn(arg, "=");
    for (const struct long_option *l = longs; l->name; l++) {
        if (strlen(l->name) != name_len || strncmp(l->name, arg, name_len) != 0) continue;
        if (arg[name_len] == '=') {
            *value = arg + name_len + 1;
        } else if (*i + 1 < argc) {
            *value = argv[++*i];
        } else {
            return 0;
        }
        ++*i;
        return l->code;
    }
    return 0;
}

static void parse_options(struct options *o, int argc, char **argv) {
    static const struct long_option longs[] = {
        {"id", 'i'},           {"bundle", 'b'},        {"state-dir", 's'},     {"runtime", 'r'},
        {"runtime-root", 'R'}, {"log-max-bytes", 'm'}, {"log-files", 'f'},     {"extra-fds", 'x'},
        {"ready-fd", 'y'},     {"linger-ms", 'l'},     {"memory-cgroup", 'M'}, {"memory-group-dir", 'G'},
        {"io-stdout", 'O'},    {"io-stderr", 'E'},     {"runtime-kind", 'K'},  {"restore", 'C'},
        {"log-path", 'P'},     {"log-format", 'T'},    {0, 0}};
    *o = (struct options){.io_out = IO_INHERIT,
                          .io_err = IO_INHERIT,
                          .log_max_bytes = 1 << 20,
                          .log_files = 3,
                          .ready_fd = -1,
                          .linger_ms = 300000};
    for (int i = 1; i < argc;) {
        const char *value = NULL;
        switch (next_option(argc, argv, &i, longs, &value)) {
        case 'i': o->id = value; break;
        case 'b': o->bundle = value; break;
        case 's': o->state_dir = value; break;
        case 'r': o->runtime = value; break;
        case 'R': o->runtime_root = value; break;
        case 'O': o->io_out = parse_io(value); break;
        case 'E': o->io_err = parse_io(value); break;
        case 'm': o->log_max_bytes = parse_num("log-max-bytes", value, 0, 1LL << 40); break;
        case 'f': o->log_files = (int)parse_num("log-files", value, 0, 100); break;
        case 'x': o->extra_fds = (int)parse_num("extra-fds", value, 0, MAX_EXTRA_FDS); break;
        case 'y': o->ready_fd = (int)parse_num("ready-fd", value, 0, 1 << 20); break;
        case 'l': o->linger_ms = parse_num("linger-ms", value, 0, 1LL << 40); break;
        case 'M': o->memory_cgroup = value; break;
        case 'G': o->memory_group_dir = value; break;
        case 'K':
            if (strcmp(value, "runc") == 0) o->runtime_kind = RUNTIME_RUNC;
            else if (strcmp(value, "crun") == 0) o->runtime_kind = RUNTIME_CRUN;
            else usage();
            break;
        case 'C': o->restore_dir = value; break;
        case 'P': o->log_path = value; break;
        case 'T':
            if (strcmp(value, "skiff") == 0) o->log_format = LOG_SKIFF;
            else if (strcmp(value, "cri") == 0) o->log_format = LOG_CRI;
            else usage();
            break;
        default: usage();
        }
    }
    if (!o->id || !o->bundle || !o->state_dir || !o->runtime || !o->runtime_root) usage();
    if (o->log_path && o->log_path[0] != '/') {
        fmt_err("skiff-monitor: --log-path needs an absolute path\n");
        exit(2);
    }
    if (o->restore_dir && (o->restore_dir[0] != '/' || o->extra_fds > 0)) {
        fmt_err("skiff-monitor: --restore needs an absolute image directory and no --extra-fds\n");
        exit(2);
    }
    if ((o->memory_group_dir && !o->memory_cgroup) || (o->memory_cgroup && o->memory_cgroup[0] != '/') ||
        (o->memory_group_dir && o->memory_group_dir[0] != '/')) {
        fmt_err("skiff-monitor: --memory-cgroup (absolute) is required with --memory-group-dir (absolute)\n");
        exit(2);
    }
}

static void die(const char *what) {
    fmt_err("skiff-monitor: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int listen_socket(struct monitor *m) {
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    const char *path = state_path(m, "monitor.sock");
    if (strlen(path) >= sizeof(addr.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(addr.sun_path, path);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    mode_t old = umask(077); /* owner-only from the moment it exists */
    int r = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
    umask(old);
    struct stat st;
    if (r < 0 || listen(fd, 4) < 0 || stat(path, &st) < 0) {
        close(fd);
        return -1;
    }
    m->sock_dev = st.st_dev;
    m->sock_ino = st.st_ino;
    return fd;
}

/* Output pipes: read end non-blocking in the monitor, write end for the runtime. */
static void make_pipe(int *r, int *w) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) die("pipe");
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    *r = p[0];
    *w = p[1];
}

static void setup_and_create(struct monitor *m) {
    /* A long-lived monitor must not pin whatever else its parent leaked. */
    unsigned first_free = 3u + (unsigned)m->opt.extra_fds;
    int ready = m->opt.ready_fd;
    if (ready >= (int)first_free) {
        if (ready > (int)first_free) close_fd_range(first_free, (unsigned)ready - 1);
        close_fd_range((unsigned)ready + 1, ~0u);
    } else {
        close_fd_range(first_free, ~0u);
    }
    sigset_t mask;
    sigemptyset(&mask);
    int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) sigaddset(&mask, sigs[i]);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    m->sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (m->sfd < 0) die("signalfd");
    /* The container's init is reparented to us when `create` exits. */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) die("PR_SET_CHILD_SUBREAPER");

    for (int i = 0; i < m->opt.extra_fds; i++) {
        m->extra[i] = fcntl(3 + i, F_DUPFD_CLOEXEC, 3 + MAX_EXTRA_FDS);
        if (m->extra[i] < 0) die("extra fd");
        if (3 + i != m->opt.ready_fd) close(3 + i);
    }
    int logs = m->opt.io_out != IO_DISCARD || m->opt.io_err != IO_DISCARD;
    if (logs && open_log(m) < 0) die("open the container's log");
    if (!logs) m->log.fd = -1; /* opened only if the runtime's create fails (events.c, on_output) */

    m->listen_fd = listen_socket(m);
    if (m->listen_fd < 0) die("listen on monitor.sock");

    int out_w, err_w, status_w;
    make_pipe(&m->out_r, &out_w);
    make_pipe(&m->err_r, &err_w);
    make_pipe(&m->status_r, &status_w);
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0) die("open /dev/null");
    if (m->opt.io_out == IO_DISCARD) {
        /* A discarded stderr stays piped: the runtime's own error text is still needed. */
        close(m->out_r);
        m->out_r = -1;
        close(out_w);
        out_w = devnull;
    }
    struct create_fds fds = {devnull, out_w, err_w, status_w, m->extra, m->opt.extra_fds};
    char pid_file[PATH_MAX];
    fmt_snprintf(pid_file, sizeof(pid_file), "%s", state_path(m, "init.pid"));
    unlink(pid_file);
    m->create_pid = m->opt.restore_dir ? runtime_restore(&m->rt, m->opt.restore_dir, m->opt.bundle, pid_file, &fds)
                                       : runtime_create(&m->rt, m->opt.bundle, pid_file, &fds);
    if (m->create_pid < 0) die("fork");
    if (out_w != devnull) close(out_w);
    close(err_w);
    close(status_w);
    for (int i = 0; i < m->opt.extra_fds; i++) close(m->extra[i]);

    if (m->opt.ready_fd >= 0) {
        /* The daemon may connect now; stdout then becomes /dev/null. */
        (void)!write(m->opt.ready_fd, "ready\n", 6);
        if (m->opt.ready_fd <= 2) dup2(devnull, m->opt.ready_fd);
        else close(m->opt.ready_fd);
    }
    close(devnull);
}

static int poll_timeout(struct monitor *m) {
    int64_t next = 0;
    int64_t deadlines[] = {m->start_deadline, m->drain_deadline, m->linger_deadline, m->finish_deadline,
                           m->mem.recheck_at};
    for (size_t i = 0; i < sizeof(deadlines) / sizeof(deadlines[0]); i++)
        if (deadlines[i] && (!next || deadlines[i] < next)) next = deadlines[i];
    if (!next) return -1;
    int64_t left = next - now_ms();
    return left < 0 ? 0 : (int)(left > 60000 ? 60000 : left);
}

static void run_loop(struct monitor *m) {
    while (!m->done) {
        struct pollfd p[7];
        int n = 0, i_sig, i_listen, i_conn = -1, i_out = -1, i_err = -1, i_status = -1, i_mem = -1;
        p[i_sig = n++] = (struct pollfd){.fd = m->sfd, .events = POLLIN};
        p[i_listen = n++] = (struct pollfd){.fd = m->listen_fd, .events = POLLIN};
        if (m->conn.fd >= 0)
            p[i_conn = n++] =
                (struct pollfd){.fd = m->conn.fd, .events = POLLIN | (conn_pending(&m->conn) ? POLLOUT : 0)};
        if (m->out_r >= 0) p[i_out = n++] = (struct pollfd){.fd = m->out_r, .events = POLLIN};
        if (m->err_r >= 0) p[i_err = n++] = (struct pollfd){.fd = m->err_r, .events = POLLIN};
        /* Only after START: before, the runtime's own init holds the pipe. */
        if (m->status_r >= 0 && m->phase >= PH_STARTING)
            p[i_status = n++] = (struct pollfd){.fd = m->status_r, .events = POLLIN};
        if (m->mem.fd >= 0) p[i_mem = n++] = (struct pollfd){.fd = m->mem.fd, .events = memwatch_poll_events(&m->mem)};
        int r = poll(p, (nfds_t)n, poll_timeout(m));
        if (r < 0 && errno != EINTR) die("poll");
        if (r > 0) {
            /* Output before signals: lines written before init exited are logged first. */
            if (i_out >= 0 && p[i_out].revents) on_output(m, 0);
            if (i_err >= 0 && p[i_err].revents) on_output(m, 1);
            if (i_status >= 0 && p[i_status].revents) on_status(m);
            if (i_mem >= 0 && m->mem.fd == p[i_mem].fd && p[i_mem].revents) on_memory_event(m);
            if (p[i_sig].revents) on_signal(m);
            if (i_conn >= 0 && m->conn.fd == p[i_conn].fd) {
                if (p[i_conn].revents & POLLOUT) on_client_writable(m);
                if (m->conn.fd >= 0 && (p[i_conn].revents & (POLLIN | POLLHUP | POLLERR))) on_client_readable(m);
            }
            if (p[i_listen].revents) on_accept(m);
        }
        on_timer(m);
    }
}

int main(int argc, char **argv) {
    struct monitor *m = &M;
    parse_options(&m->opt, argc, argv);
    m->rt = (struct runtime){m->opt.runtime_kind, m->opt.runtime, m->opt.runtime_root, m->opt.id};
    m->phase = m->opt.restore_dir ? PH_RESTORING : PH_CREATING;
    m->sfd = m->listen_fd = m->status_r = m->out_r = m->err_r = -1;
    m->log.fd = -1;
    m->app_status = -1;
    conn_reset(&m->conn);
    sb_init(&m->exit_body);
    memwatch_init(&m->mem, m->opt.memory_cgroup, m->opt.memory_group_dir);
    setup_and_create(m);
    run_loop(m);

    /* The socket file goes before the connection: a daemon that sees the connection end may
     * start the next instance, whose monitor binds the same path, at once. A daemon that gave up
     * waiting for us may already have started it: its socket (another inode) stays. */
    struct stat st;
    const char *sock = state_path(m, "monitor.sock");
    if (stat(sock, &st) == 0 && st.st_dev == m->sock_dev && st.st_ino == m->sock_ino) unlink(sock);
    conn_close(&m->conn);
    close(m->listen_fd);
    close(m->sfd);
    if (m->status_r >= 0) close(m->status_r);
    memwatch_close(&m->mem);
    logfile_close(&m->log);
    sb_free(&m->exit_body);
    return 0;
}
