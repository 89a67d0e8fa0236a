/* The daemon connection: handshake, requests, and delivering EXIT.
 * INVARIANTS: at most one daemon is connected; a newer connection replaces
 * the older one. EXIT is the last frame on a connection: after it the
 * monitor half-closes and exits once the daemon sends ACK or EOF. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fmt.h"
#include "monitor.h"

#define FINISH_TIMEOUT_MS 5000

/* The protocol's states: restoring is reported as creating (no init pid yet). */
static const char *const phase_names[] = {"creating", "creating", "created", "running", "running", "running", "exited"};

static void send_frame(struct monitor *m, struct sbuf *b, int droppable) {
    conn_send(&m->conn, b, droppable);
    sb_free(b);
}

void send_simple(struct monitor *m, const char *type, const char *extra_json) {
    struct sbuf b;
    if (m->conn.fd < 0 || m->conn.finishing) return;
    sb_init(&b);
    sb_printf(&b, "{\"type\":\"%s\"%s%s}", type, extra_json ? "," : "", extra_json ? extra_json : "");
    send_frame(m, &b, 0);
    conn_flush(&m->conn);
}

void send_log(struct monitor *m, const char *stream, const char *line, size_t len) {
    struct sbuf b;
    if (m->conn.fd < 0 || m->conn.finishing) return;
    sb_init(&b);
    sb_printf(&b, "{\"type\":\"log\",\"stream\":\"%s\",\"line\":", stream);
    sb_json_string(&b, line, len);
    sb_putn(&b, "}", 1);
    send_frame(m, &b, 1);
}

/* MEMORY carries the counts since the previous MEMORY; while no daemon is
 * connected they accumulate for the next one. */
void send_memory_if_changed(struct monitor *m) {
    struct mem_counters delta;
    struct sbuf b;
    if (m->conn.fd < 0 || m->conn.finishing || !memwatch_unreported(&m->mem, &delta)) return;
    sb_init(&b);
    sb_puts(&b, "{\"type\":\"memory\"");
    for (int f = 0; f < MEM_FIELDS; f++) sb_printf(&b, ",\"%s\":%llu", mem_field_names[f], delta.v[f]);
    sb_putn(&b, "}", 1);
    send_frame(m, &b, 0);
    conn_flush(&m->conn);
    memwatch_mark_reported(&m->mem);
}

void send_exit(struct monitor *m) {
    struct sbuf b;
    sb_init(&b);
    sb_puts(&b, "{\"type\":\"exit\",");
    sb_putn(&b, m->exit_body.data, m->exit_body.len);
    sb_putn(&b, "}", 1);
    send_frame(m, &b, 0);
    m->conn.finishing = 1;
    m->linger_deadline = 0;
    m->finish_deadline = now_ms() + FINISH_TIMEOUT_MS;
    on_client_writable(m);
}

static void send_state(struct monitor *m) {
    char extra[64];
    long pid = m->init_pid > 0 ? m->init_pid : -m->init_pid;
    if (pid > 0 && m->phase != PH_EXITED)
        fmt_snprintf(extra, sizeof(extra), "\"state\":\"%s\",\"pid\":%ld", phase_names[m->phase], pid);
    else
        fmt_snprintf(extra, sizeof(extra), "\"state\":\"%s\"", phase_names[m->phase]);
    send_simple(m, "state", extra);
}

/* The daemon went away (possibly while EXIT was still queued): an exited
 * container waits for the next one, up to --linger-ms. */
static void drop_client(struct monitor *m) {
    conn_close(&m->conn);
    m->finish_deadline = 0;
    if (m->phase == PH_EXITED && m->opt.linger_ms > 0) m->linger_deadline = now_ms() + m->opt.linger_ms;
}

void on_accept(struct monitor *m) {
    int fd = accept4(m->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != geteuid()) {
        close(fd);
        return;
    }
    if (m->conn.fd >= 0) {
        /* A finishing connection already got EXIT: the newcomer gets it too. */
        conn_close(&m->conn);
        m->finish_deadline = 0;
    }
    conn_attach(&m->conn, fd);
    char hello[128];
    fmt_snprintf(hello, sizeof(hello), "\"version\":%d,\"pid\":%ld", PROTOCOL_VERSION, (long)getpid());
    send_simple(m, "hello", hello);
    send_state(m);
    send_memory_if_changed(m);
    if (m->phase == PH_EXITED) send_exit(m);
}

void send_error(struct monitor *m, const char *op, const char *message) {
    struct sbuf b;
    sb_init(&b);
    sb_puts(&b, "\"op\":");
    sb_json_string(&b, op, strlen(op));
    sb_puts(&b, ",\"message\":");
    sb_json_string(&b, message, strlen(message));
    send_simple(m, "error", b.failed ? "\"message\":\"out of memory\"" : b.data);
    sb_free(&b);
}

void apply_kill(struct monitor *m, int sig, int all) {
    char msg[160];
    if (m->init_pid <= 0 || (m->phase != PH_CREATED && m->phase != PH_RUNNING)) {
        send_error(m, "kill", "the container is not created or running");
        return;
    }
    if (all) {
        char signame[8];
        fmt_snprintf(signame, sizeof(signame), "%d", sig);
        static const char *const args[] = {"kill", "--all", NULL};
        int st = runtime_run(&m->rt, args, signame, 10000);
        if (st != 0) {
            fmt_snprintf(msg, sizeof(msg), "runtime kill --all failed (wait status %d)", st);
            send_error(m, "kill", msg);
            return;
        }
    } else if (kill(m->init_pid, sig) < 0) {
        /* Safe from pid reuse: init is our child and not yet reaped. */
        fmt_snprintf(msg, sizeof(msg), "kill(%ld, %d): %s", (long)m->init_pid, sig, strerror(errno));
        send_error(m, "kill", msg);
        return;
    }
    fmt_snprintf(msg, sizeof(msg), "\"signal\":%d", sig);
    send_simple(m, "killed", msg);
}

static void handle_kill(struct monitor *m, const char *js, size_t len) {
    long long sig = 0;
    int all = 0;
    if (json_get_int(js, len, "signal", &sig) != 1 || sig < 1 || sig > 64) {
        send_error(m, "kill", "kill needs an integer signal between 1 and 64");
        return;
    }
    if (json_get_bool(js, len, "all", &all) < 0) all = 0;
    if (phase_before_init(m->phase) || m->phase == PH_STARTING) {
        /* No pid yet, or skiff-init could still drop the signal: deliver once
         * `create` succeeded or init is READY. */
        if (m->n_kills == MAX_DEFERRED_KILLS) {
            send_error(m, "kill", "too many kill requests while the container is being created or started");
            return;
        }
        m->kills[m->n_kills++] = (struct deferred_kill){(int)sig, all};
        return;
    }
    apply_kill(m, (int)sig, all);
}

static void handle_frame(struct monitor *m, const char *js, size_t len) {
    char type[32];
    int r = json_get_string(js, len, "type", type, sizeof(type));
    if (r != 1) {
        send_error(m, "", r < 0 ? "frame is not a JSON object" : "frame has no string member \"type\"");
        return;
    }
    if (strcmp(type, "hello") == 0) {
        long long version = 0;
        if (json_get_int(js, len, "version", &version) != 1 || version != PROTOCOL_VERSION)
            send_error(m, "hello", "unsupported protocol version (the monitor speaks 1)");
    } else if (strcmp(type, "start") == 0) {
        request_start(m);
    } else if (strcmp(type, "kill") == 0) {
        handle_kill(m, js, len);
    } else if (strcmp(type, "reopen_log") == 0) {
        /* REOPEN_LOG -> LOG_REOPENED | ERROR: the kubelet renamed the log away (CRI ReopenContainerLog). */
        if (m->log.fd < 0 && m->log.path[0] == '\0') send_error(m, "reopen_log", "the container has no log");
        else if (logfile_reopen(&m->log) < 0) send_error(m, "reopen_log", strerror(errno));
        else send_simple(m, "log_reopened", NULL);
    } else if (strcmp(type, "ack") == 0) {
        if (m->conn.finishing) m->done = 1;
    } else {
        send_error(m, type, "unknown message type");
    }
}

void on_client_readable(struct monitor *m) {
    size_t room;
    unsigned char *space = frame_reader_space(&m->conn.rd, &room);
    ssize_t n = recv(m->conn.fd, space, room, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
        if (m->conn.finishing && !conn_pending(&m->conn)) m->done = 1; /* EXIT delivered */
        else drop_client(m);
        return;
    }
    frame_reader_commit(&m->conn.rd, (size_t)n);
    const char *payload;
    size_t len;
    enum frame_status st;
    while (m->conn.fd >= 0 && !m->done && (st = frame_reader_next(&m->conn.rd, &payload, &len)) != FRAME_NEED_MORE) {
        if (st == FRAME_INVALID) {
            fmt_err("skiff-monitor: invalid frame length from daemon; closing its connection\n");
            drop_client(m);
            return;
        }
        handle_frame(m, payload, len);
    }
}

void on_client_writable(struct monitor *m) {
    if (conn_flush(&m->conn) < 0) {
        drop_client(m);
        return;
    }
    if (m->conn.finishing && !conn_pending(&m->conn) && !m->conn.write_closed) {
        shutdown(m->conn.fd, SHUT_WR);
        m->conn.write_closed = 1;
    }
}
