/* Shared state of skiff-monitor (one container per monitor process). */
#ifndef SKIFF_MONITOR_H
#define SKIFF_MONITOR_H
#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include "conn.h"
#include "logfile.h"
#include "memwatch.h"
#include "runtime.h"

#define PROTOCOL_VERSION 1
#define MAX_EXTRA_FDS 32

/* Per output stream. PIPE: lines go to container.log. INHERIT: also to the
 * daemon as LOG. DISCARD: dropped (stdout is /dev/null; stderr stays a pipe
 * for the runtime's own error text, drained and dropped). */
enum io_mode { IO_INHERIT, IO_PIPE, IO_DISCARD };

struct options {
    const char *id, *bundle, *state_dir, *runtime, *runtime_root;
    enum io_mode io_out, io_err;
    long long log_max_bytes;
    int log_files;
    const char *log_path;       /* NULL: container.log in the state directory */
    enum log_format log_format; /* LOG_CRI: CRI's format, never rotated (logfile.h) */
    int extra_fds;
    int ready_fd;       /* -1: none */
    long long linger_ms; /* how long an unreported exit waits for a daemon; 0: forever */
    const char *memory_cgroup, *memory_group_dir; /* NULL: no memory events, no oom in the record */
    enum runtime_kind runtime_kind;
    const char *restore_dir; /* --restore: `runtime restore` from this checkpoint image instead of `create` */
};

/* creating -> created (init pid known, waiting for START) -> starting (exec
 * fifo read, waiting for skiff-init's READY) -> running -> exiting (init
 * reaped, draining output) -> exited (record written).
 * With --restore: restoring (`runtime restore --detach` from a checkpoint
 * image) -> running once it exits 0 and its pid file names init. There is no
 * created or starting: the restored skiff-init sent READY before the
 * checkpoint and never again, and its records (EXIT) arrive on the new status
 * pipe (runtime_restore says how CRIU reconnects it). A START while restoring is answered once running, like one while
 * creating; a failed restore goes to exiting like a failed create. */
enum phase { PH_CREATING, PH_RESTORING, PH_CREATED, PH_STARTING, PH_RUNNING, PH_EXITING, PH_EXITED };

/* `create` or `restore` still running: no init pid yet, the runtime's error text is collected. */
static inline int phase_before_init(enum phase p) { return p == PH_CREATING || p == PH_RESTORING; }

struct deferred_kill {
    int signal, all;
};
#define MAX_DEFERRED_KILLS 4

struct monitor {
    struct options opt;
    struct runtime rt;
    enum phase phase;
    pid_t create_pid, init_pid;
    int create_status, init_status;
    int start_replies; /* START requests not yet answered */
    struct deferred_kill kills[MAX_DEFERRED_KILLS]; /* KILLs received while creating or starting */
    int n_kills;
    unsigned char status_buf[12]; /* partial record from skiff-init */
    size_t status_len;
    int app_status; /* from skiff-init's EXIT record, -1: none */
    int sfd, listen_fd, status_r, out_r, err_r;
    dev_t sock_dev; /* monitor.sock as bound: at exit it is unlinked only while it is still ours */
    ino_t sock_ino;
    int extra[MAX_EXTRA_FDS];
    struct conn conn;
    struct logfile log;
    struct line_splitter out_lines, err_lines;
    char create_err[4096]; /* runtime stderr while creating: the error text */
    size_t create_err_len;
    struct memwatch mem;
    int oom_killed;        /* set before `runtime delete`, for the exit record */
    struct sbuf exit_body; /* exit record members, shared by exit.json and EXIT */
    int64_t start_deadline, drain_deadline, linger_deadline, finish_deadline; /* ms, 0: unset */
    int done;
    char path_buf[PATH_MAX];
};

int64_t now_ms(void);
const char *state_path(struct monitor *m, const char *name);
/* Opens the container's log as the options say (--log-path, --log-format); -1 with errno on failure. */
int open_log(struct monitor *m);

/* events.c */
void on_signal(struct monitor *m);
void on_output(struct monitor *m, int is_err);
void on_timer(struct monitor *m);
void on_status(struct monitor *m);
void on_memory_event(struct monitor *m);
void maybe_finish_exit(struct monitor *m);

/* session.c */
void on_accept(struct monitor *m);
void on_client_readable(struct monitor *m);
void on_client_writable(struct monitor *m);
void send_simple(struct monitor *m, const char *type, const char *extra_json);
void send_exit(struct monitor *m);
void send_error(struct monitor *m, const char *op, const char *message);
void apply_kill(struct monitor *m, int sig, int all);
void send_log(struct monitor *m, const char *stream, const char *line, size_t len);
void send_memory_if_changed(struct monitor *m);

void request_start(struct monitor *m);

/* exitrec.c */
/* The wait status the record reports: the app's from skiff-init's EXIT, or
 * init's own if init died of a signal or sent none. */
int reported_status(const struct monitor *m);
void build_exit_body(struct monitor *m);
int write_exit_record(struct monitor *m);

#endif
