/* Child processes, container output and the exit sequence. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fmt.h"
#include "monitor.h"

#define DRAIN_MS 1000       /* bound on reading output after init exited */
#define READY_MS 2000       /* bound on waiting for skiff-init's READY after START */
#define STATUS_MAGIC 0x534b5753u /* records from native/init/init.c */
#define RECORD_READY 1u
#define RECORD_EXIT 2u
#define RUNTIME_TIMEOUT_MS 10000

/* Children reaped before we knew their pid (init could die before `create`
 * is reaped and its pid file read). Small ring: only init matters. */
static struct {
    pid_t pid;
    int status;
} unclaimed[16];
static unsigned unclaimed_next;

/* Init can now be signalled safely: answer START, deliver held-back KILLs. */
static void apply_deferred_kills(struct monitor *m) {
    for (int i = 0; i < m->n_kills; i++) apply_kill(m, m->kills[i].signal, m->kills[i].all);
    m->n_kills = 0;
}

static void reply_to_starts(struct monitor *m, const char *error) {
    for (; m->start_replies > 0; m->start_replies--) {
        if (error) send_error(m, "start", error);
        else send_simple(m, "started", NULL);
    }
}

static void enter_running(struct monitor *m) {
    m->phase = PH_RUNNING;
    m->start_deadline = 0;
    reply_to_starts(m, NULL);
    apply_deferred_kills(m);
}

static void on_init_ready(struct monitor *m) {
    if (m->phase == PH_STARTING) enter_running(m);
}

static void enter_exiting(struct monitor *m) {
    /* It did start if it got that far; kills held back have nothing to hit. */
    reply_to_starts(m, m->phase == PH_CREATING    ? "the runtime could not create the container"
                       : m->phase == PH_RESTORING ? "the runtime could not restore the container"
                                                  : NULL);
    for (; m->n_kills > 0; m->n_kills--) send_error(m, "kill", "the container exited");
    m->start_deadline = 0;
    m->phase = PH_EXITING;
    m->drain_deadline = now_ms() + DRAIN_MS;
    maybe_finish_exit(m);
}

/* The runtime's pid file: decimal digits, maybe a newline. -1 when missing or not a pid. */
static pid_t read_pid_file(struct monitor *m) {
    char text[24];
    int fd = open(state_path(m, "init.pid"), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n <= 0) return -1;
    long pid = 0;
    for (ssize_t i = 0; i < n && text[i] != '\n'; i++) {
        if (text[i] < '0' || text[i] > '9' || pid > 99999999) return -1;
        pid = pid * 10 + (text[i] - '0');
    }
    return pid > 0 ? (pid_t)pid : -1;
}

static void start_container(struct monitor *m) {
    char err[512];
    if (runtime_start_via_fifo(&m->rt, 2000, err, sizeof(err)) < 0) {
        reply_to_starts(m, err);
        return;
    }
    m->phase = PH_STARTING;
    m->start_deadline = now_ms() + READY_MS;
    on_status(m); /* READY may already be there */
}

/* START handling lives here because it depends on the phase machine. */
void request_start(struct monitor *m) {
    switch (m->phase) {
    case PH_CREATING: /* done once `create` succeeds */
    case PH_RESTORING: m->start_replies++; break; /* answered once restored */
    case PH_CREATED:
        m->start_replies++;
        start_container(m);
        break;
    case PH_STARTING: m->start_replies++; break;
    case PH_RUNNING: send_simple(m, "started", NULL); break;
    default: send_simple(m, "error", "\"op\":\"start\",\"message\":\"the container has exited\""); break;
    }
}

static void on_create_reaped(struct monitor *m, int status) {
    m->create_status = status;
    m->create_pid = 0;
    pid_t pid = WIFEXITED(status) && WEXITSTATUS(status) == 0 ? read_pid_file(m) : -1;
    if (pid <= 0) {
        enter_exiting(m);
        return;
    }
    m->init_pid = pid;
    int restored = m->phase == PH_RESTORING;
    m->phase = PH_CREATED;
    char err[PATH_MAX + 128];
    if (memwatch_register(&m->mem, err, sizeof(err)) < 0)
        fmt_err("skiff-monitor: no memory events: %s; counters are still read at exit\n", err);
    char pidjson[32];
    fmt_snprintf(pidjson, sizeof(pidjson), "\"pid\":%ld", (long)pid);
    send_simple(m, "init", pidjson);
    for (unsigned i = 0; i < sizeof(unclaimed) / sizeof(unclaimed[0]); i++) {
        if (unclaimed[i].pid == pid) {
            m->init_status = unclaimed[i].status;
            m->init_pid = -pid; /* reaped: never signal it again */
            enter_exiting(m);
            return;
        }
    }
    if (restored) {
        enter_running(m); /* no READY comes: init sent it before the checkpoint */
        return;
    }
    apply_deferred_kills(m);
    if (m->start_replies > 0 && m->phase == PH_CREATED) start_container(m);
}

static void reap_children(struct monitor *m) {
    for (;;) {
        int st;
        pid_t pid = waitpid(-1, &st, WNOHANG);
        if (pid <= 0) return;
        if (pid == m->create_pid) {
            on_create_reaped(m, st);
        } else if (pid == m->init_pid) {
            m->init_status = st;
            m->init_pid = -pid;
            enter_exiting(m);
        } else {
            unclaimed[unclaimed_next % 16].pid = pid;
            unclaimed[unclaimed_next % 16].status = st;
            unclaimed_next++;
        }
    }
}

void on_signal(struct monitor *m) {
    struct signalfd_siginfo si;
    while (read(m->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGCHLD: reap_children(m); break;
        case SIGTERM:
        case SIGINT:
        case SIGHUP:
        case SIGQUIT:
            /* Asked to stop: take the container down and report as usual. */
            if (m->init_pid > 0) kill(m->init_pid, SIGKILL);
            if (m->create_pid > 0) kill(m->create_pid, SIGKILL);
            break;
        default: break; /* SIGPIPE: the failed write reports it */
        }
    }
}

/* Called for streams that are not discarded, and for the runtime's stderr while creating. */
static void log_line(struct monitor *m, enum io_mode mode, const char *stream, const char *line, size_t len,
                     int partial) {
    logfile_append(&m->log, stream, line, len, partial);
    if (mode == IO_INHERIT) send_log(m, stream, line, len);
}

static void out_line(void *ctx, const char *line, size_t len, int partial) {
    struct monitor *m = ctx;
    log_line(m, m->opt.io_out, "stdout", line, len, partial);
}

static void err_line(void *ctx, const char *line, size_t len, int partial) {
    struct monitor *m = ctx;
    log_line(m, m->opt.io_err, "stderr", line, len, partial);
}

void on_output(struct monitor *m, int is_err) {
    /* Two pages: every stack page this touches stays resident for the container's life, and a
     * chatty container only costs more reads (poll reports the pipe readable again). */
    char buf[8192];
    int *fd = is_err ? &m->err_r : &m->out_r;
    struct line_splitter *sp = is_err ? &m->err_lines : &m->out_lines;
    /* Before init exists stderr carries only the runtime's own text (its error
     * when create fails): logged even when the container's stderr is discarded. */
    int keep = (is_err ? m->opt.io_err : m->opt.io_out) != IO_DISCARD || (is_err && phase_before_init(m->phase));
    ssize_t n = read(*fd, buf, sizeof(buf));
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
        if (keep) splitter_flush(sp, is_err ? err_line : out_line, m);
        close(*fd);
        *fd = -1;
        maybe_finish_exit(m);
        return;
    }
    if (is_err && phase_before_init(m->phase)) {
        /* Both streams discarded: container.log is opened for the runtime's text alone. */
        if (m->log.fd < 0) open_log(m);
        size_t room = sizeof(m->create_err) - 1 - m->create_err_len;
        size_t k = (size_t)n < room ? (size_t)n : room;
        memcpy(m->create_err + m->create_err_len, buf, k);
        m->create_err_len += k;
    }
    if (keep) splitter_feed(sp, buf, (size_t)n, is_err ? err_line : out_line, m);
}

static void on_record(struct monitor *m, const unsigned char *rec) {
    uint32_t word[3];
    memcpy(word, rec, sizeof(word));
    if (word[0] != STATUS_MAGIC) return;
    if (word[1] == RECORD_READY) on_init_ready(m);
    else if (word[1] == RECORD_EXIT) m->app_status = (int32_t)word[2];
}

void on_status(struct monitor *m) {
    while (m->status_r >= 0) {
        ssize_t n = read(m->status_r, m->status_buf + m->status_len, sizeof(m->status_buf) - m->status_len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        if (n <= 0) {
            close(m->status_r);
            m->status_r = -1;
            return;
        }
        m->status_len += (size_t)n;
        if (m->status_len == sizeof(m->status_buf)) {
            on_record(m, m->status_buf);
            m->status_len = 0;
        }
    }
}

void on_memory_event(struct monitor *m) {
    memwatch_on_ready(&m->mem, now_ms());
    send_memory_if_changed(m);
}

/* The last counters, read while the cgroup still exists: every MEMORY goes
 * out before EXIT, and the record learns whether the OOM killer struck. */
static void final_memory_read(struct monitor *m) {
    if (!m->opt.memory_cgroup || m->init_pid == 0) return;
    if (memwatch_read(&m->mem) < 0)
        fmt_err("skiff-monitor: reading the memory counters at exit: %s\n", strerror(errno));
    memwatch_close(&m->mem);
    send_memory_if_changed(m);
    /* The group counts every member's kills: only a SIGKILLed container can be one of them. */
    int st = reported_status(m);
    m->oom_killed = memwatch_oom_killed(&m->mem, WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

/* Init is gone and output drained (or the drain bound passed): remove the
 * runtime state, persist the record, then tell the daemon. */
void maybe_finish_exit(struct monitor *m) {
    if (m->phase != PH_EXITING) return;
    if ((m->out_r >= 0 || m->err_r >= 0) && now_ms() < m->drain_deadline) return;
    for (int *fd = &m->out_r; fd; fd = fd == &m->out_r ? &m->err_r : NULL) {
        if (*fd >= 0) {
            close(*fd);
            *fd = -1;
        }
    }
    if (m->opt.io_out != IO_DISCARD) splitter_flush(&m->out_lines, out_line, m);
    if (m->opt.io_err != IO_DISCARD) splitter_flush(&m->err_lines, err_line, m);
    on_status(m); /* init wrote its EXIT record before exiting */
    final_memory_read(m);
    static const char *const del[] = {"delete", "--force", NULL};
    runtime_run(&m->rt, del, NULL, RUNTIME_TIMEOUT_MS);
    build_exit_body(m);
    if (write_exit_record(m) < 0) fmt_err("skiff-monitor: writing exit.json: %s\n", strerror(errno));
    m->phase = PH_EXITED;
    m->drain_deadline = 0;
    if (m->conn.fd >= 0) send_exit(m);
    else if (m->opt.linger_ms > 0) m->linger_deadline = now_ms() + m->opt.linger_ms;
}

void on_timer(struct monitor *m) {
    int64_t now = now_ms();
    if (m->start_deadline && now >= m->start_deadline) {
        fmt_err("skiff-monitor: no READY from skiff-init within %d ms; is it the container's process?\n", READY_MS);
        on_init_ready(m);
    }
    if (m->drain_deadline && now >= m->drain_deadline) maybe_finish_exit(m);
    if (m->finish_deadline && now >= m->finish_deadline) m->done = 1; /* daemon never acknowledged */
    if (memwatch_on_timer(&m->mem, now)) send_memory_if_changed(m);
    if (m->linger_deadline && now >= m->linger_deadline && m->conn.fd < 0) m->done = 1;
}
