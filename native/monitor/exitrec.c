/* Classifying the container's end and persisting it as exit.json. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h> /* rename(2) only: the monitor writes through write(2), no FILE streams */
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fmt.h"
#include "monitor.h"

static void put_status(struct sbuf *b, int st) {
    if (WIFSIGNALED(st)) sb_printf(b, "\"status\":{\"signal\":%d}", WTERMSIG(st));
    else sb_printf(b, "\"status\":{\"code\":%d}", WEXITSTATUS(st));
}

static void trim_trailing_space(char *s, size_t *len) {
    while (*len > 0 && (s[*len - 1] == '\n' || s[*len - 1] == ' ' || s[*len - 1] == '\r')) (*len)--;
}

int reported_status(const struct monitor *m) {
    return WIFSIGNALED(m->init_status) || m->app_status < 0 ? m->init_status : m->app_status;
}

void build_exit_body(struct monitor *m) {
    struct sbuf *b = &m->exit_body;
    char ts[32];
    sb_free(b);
    sb_puts(b, "\"id\":");
    sb_json_string(b, m->opt.id, strlen(m->opt.id));
    sb_putn(b, ",", 1);
    if (m->init_pid == 0) {
        /* `create` failed: no container ever existed. */
        put_status(b, m->create_status);
        size_t len = m->create_err_len;
        trim_trailing_space(m->create_err, &len);
        sb_puts(b, ",\"reason\":\"error\",\"error\":");
        if (len > 0) sb_json_string(b, m->create_err, len);
        else sb_puts(b, "\"the runtime's create command failed without output\"");
    } else {
        int init_st = m->init_status;
        put_status(b, reported_status(m));
        /* Only the kernel's namespace reboot makes init die of SIGHUP/SIGINT:
         * init forwards those signals when anyone else sends them. */
        int reboot = WIFSIGNALED(init_st) && WTERMSIG(init_st) == SIGHUP;
        sb_printf(b, ",\"reason\":\"%s\",\"initPid\":%ld", reboot ? "reboot" : "shutdown", (long)-m->init_pid);
        if (m->oom_killed) sb_puts(b, ",\"oom\":true");
    }
    rfc3339_now(ts);
    sb_printf(b, ",\"time\":\"%s\"", ts);
}

static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* tmp + fsync + rename + fsync(dir): after a crash the record is either the
 * old one or the complete new one. */
int write_exit_record(struct monitor *m) {
    char tmp[PATH_MAX], final[PATH_MAX];
    fmt_snprintf(tmp, sizeof(tmp), "%s", state_path(m, "exit.json.tmp"));
    fmt_snprintf(final, sizeof(final), "%s", state_path(m, "exit.json"));
    if (m->exit_body.failed) {
        errno = ENOMEM;
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    int ok = write_all(fd, "{\"version\":1,", 13) == 0 && write_all(fd, m->exit_body.data, m->exit_body.len) == 0 &&
             write_all(fd, "}\n", 2) == 0 && fsync(fd) == 0;
    int saved = errno;
    close(fd);
    if (!ok || rename(tmp, final) < 0) {
        if (!ok) errno = saved;
        unlink(tmp);
        return -1;
    }
    int dfd = open(m->opt.state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}
