#include "memwatch.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "fmt.h"

/* Reads a small cgroup file whole into buf (NUL-terminated). */
static int read_file_at(int fd, char *buf, size_t size) {
    size_t len = 0;
    if (lseek(fd, 0, SEEK_SET) < 0) return -1;
    for (;;) {
        ssize_t n = read(fd, buf + len, size - 1 - len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        len += (size_t)n;
        if (n == 0 || len == size - 1) break;
    }
    buf[len] = '\0';
    return 0;
}

static int read_file(const char *dir, const char *name, char *buf, size_t size) {
    char path[PATH_MAX];
    fmt_snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int r = read_file_at(fd, buf, size);
    int saved = errno;
    close(fd);
    errno = saved;
    return r;
}

static int has_file(const char *dir, const char *name) {
    char path[PATH_MAX];
    fmt_snprintf(path, sizeof(path), "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static int read_counters(const char *dir, struct mem_counters *c) {
    char events[1024], failcnt[64], memsw_failcnt[64];
    if (read_file(dir, "memory.events", events, sizeof(events)) == 0) {
        mem_counters_v2(events, c);
        return 0;
    }
    if (read_file(dir, "memory.oom_control", events, sizeof(events)) < 0 ||
        read_file(dir, "memory.failcnt", failcnt, sizeof(failcnt)) < 0)
        return -1;
    int memsw = read_file(dir, "memory.memsw.failcnt", memsw_failcnt, sizeof(memsw_failcnt)) == 0;
    mem_counters_v1(events, failcnt, memsw ? memsw_failcnt : NULL, c);
    return 0;
}

static int read_oom_kills(const char *dir, unsigned long long *out) {
    struct mem_counters c;
    if (read_counters(dir, &c) < 0) return -1;
    *out = c.v[MEM_OOM_KILL];
    return 0;
}

void memwatch_init(struct memwatch *w, const char *dir, const char *group_dir) {
    memset(w, 0, sizeof(*w));
    w->fd = -1;
    w->dir = dir;
    w->group_dir = group_dir;
    if (group_dir) {
        w->group_baseline_known = read_oom_kills(group_dir, &w->group_baseline) == 0;
        if (!w->group_baseline_known)
            fmt_err("skiff-monitor: cannot read the OOM kill count of %s: %s\n", group_dir, strerror(errno));
    }
}

static int register_v1(struct memwatch *w, char *err, size_t errsz) {
    char path[PATH_MAX], line[64];
    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0) {
        fmt_snprintf(err, errsz, "eventfd: %s", strerror(errno));
        return -1;
    }
    fmt_snprintf(path, sizeof(path), "%s/memory.oom_control", w->dir);
    int ofd = open(path, O_RDONLY | O_CLOEXEC);
    fmt_snprintf(path, sizeof(path), "%s/cgroup.event_control", w->dir);
    int cfd = ofd < 0 ? -1 : open(path, O_WRONLY | O_CLOEXEC);
    int len = fmt_snprintf(line, sizeof(line), "%d %d", efd, ofd);
    int ok = cfd >= 0 && write(cfd, line, (size_t)len) == len;
    if (!ok) fmt_snprintf(err, errsz, "registering for OOM events in %s: %s", w->dir, strerror(errno));
    /* The kernel holds its own references to the eventfd and the cgroup. */
    if (cfd >= 0) close(cfd);
    if (ofd >= 0) close(ofd);
    if (!ok) {
        close(efd);
        return -1;
    }
    w->fd = efd;
    return 0;
}

static int register_v2(struct memwatch *w, char *err, size_t errsz) {
    char path[PATH_MAX], buf[1024];
    fmt_snprintf(path, sizeof(path), "%s/memory.events", w->dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    /* Reading arms it: kernfs reports POLLPRI once the file changes after the last read. */
    if (fd < 0 || read_file_at(fd, buf, sizeof(buf)) < 0) {
        fmt_snprintf(err, errsz, "watching %s: %s", path, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    w->fd = fd;
    return 0;
}

int memwatch_register(struct memwatch *w, char *err, size_t errsz) {
    if (!w->dir || w->fd >= 0) return 0;
    if (has_file(w->dir, "memory.events")) {
        w->version = 2;
        return register_v2(w, err, errsz);
    }
    if (has_file(w->dir, "memory.oom_control")) {
        w->version = 1;
        return register_v1(w, err, errsz);
    }
    fmt_snprintf(err, errsz, "%s has neither memory.events nor memory.oom_control", w->dir);
    return -1;
}

short memwatch_poll_events(const struct memwatch *w) { return w->version == 2 ? POLLPRI : POLLIN; }

int memwatch_read(struct memwatch *w) {
    struct mem_counters c;
    if (!w->dir || read_counters(w->dir, &c) < 0) return -1;
    w->current = c;
    return 0;
}

/* After the notification the kill follows in the same charge path, within
 * milliseconds; later reads cover a busy machine. */
static const int recheck_delays_ms[] = {5, 50, 500};
#define RECHECKS (int)(sizeof(recheck_delays_ms) / sizeof(recheck_delays_ms[0]))

int memwatch_on_timer(struct memwatch *w, int64_t now) {
    if (!w->recheck_at || now < w->recheck_at) return 0;
    w->recheck_step++;
    w->recheck_at = w->recheck_step < RECHECKS ? now + recheck_delays_ms[w->recheck_step] : 0;
    if (memwatch_read(w) < 0) w->recheck_at = 0;
    return 1;
}

void memwatch_on_ready(struct memwatch *w, int64_t now) {
    if (w->fd < 0) return;
    if (w->version == 2) {
        /* Reading the watched fd both re-arms it and gives the counters. */
        char buf[1024];
        if (read_file_at(w->fd, buf, sizeof(buf)) < 0) {
            memwatch_close(w); /* the cgroup is gone: nothing more will come */
            return;
        }
        mem_counters_v2(buf, &w->current);
        return;
    }
    uint64_t count;
    (void)!read(w->fd, &count, sizeof(count)); /* EAGAIN: nothing more to consume */
    if (memwatch_read(w) < 0) {
        memwatch_close(w);
        return;
    }
    w->recheck_step = 0;
    w->recheck_at = now + recheck_delays_ms[0];
}

int memwatch_unreported(const struct memwatch *w, struct mem_counters *delta) {
    return mem_delta(&w->reported, &w->current, delta);
}

void memwatch_mark_reported(struct memwatch *w) { w->reported = w->current; }

int memwatch_oom_killed(const struct memwatch *w, int group_too) {
    unsigned long long group_kills;
    if (w->current.v[MEM_OOM_KILL] > 0) return 1;
    return group_too && w->group_dir && w->group_baseline_known && read_oom_kills(w->group_dir, &group_kills) == 0 &&
           group_kills > w->group_baseline;
}

void memwatch_close(struct memwatch *w) {
    if (w->fd >= 0) close(w->fd);
    w->fd = -1;
    w->recheck_at = 0;
}
