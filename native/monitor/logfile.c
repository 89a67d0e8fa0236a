#include "logfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void rfc3339_now(char out[32]) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

static int open_current(struct logfile *lf, int truncate) {
    lf->fd = open(lf->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0600);
    if (lf->fd < 0) return -1;
    struct stat st;
    lf->size = fstat(lf->fd, &st) == 0 ? st.st_size : 0;
    return 0;
}

int logfile_open(struct logfile *lf, const char *dir, long long max_bytes, int files) {
    lf->max_bytes = max_bytes;
    lf->files = files;
    lf->size = 0;
    lf->fd = -1;
    if ((size_t)snprintf(lf->path, sizeof(lf->path), "%s/container.log", dir) >= sizeof(lf->path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return open_current(lf, 0);
}

static void rotate(struct logfile *lf) {
    char from[PATH_MAX + 16], to[PATH_MAX + 16];
    close(lf->fd);
    lf->fd = -1;
    if (lf->files > 0) {
        for (int i = lf->files - 1; i >= 1; i--) {
            snprintf(from, sizeof(from), "%s.%d", lf->path, i);
            snprintf(to, sizeof(to), "%s.%d", lf->path, i + 1);
            rename(from, to); /* ENOENT for files not yet rotated: fine */
        }
        snprintf(to, sizeof(to), "%s.1", lf->path);
        rename(lf->path, to);
    }
    if (open_current(lf, 1) < 0) fprintf(stderr, "skiff-monitor: reopen %s: %s\n", lf->path, strerror(errno));
}

void logfile_append(struct logfile *lf, const char *stream, const char *line, size_t len) {
    char rec[LINE_MAX_BYTES + 64];
    char ts[32];
    if (lf->fd < 0) return;
    if (len > LINE_MAX_BYTES) len = LINE_MAX_BYTES;
    rfc3339_now(ts);
    int head = snprintf(rec, sizeof(rec), "%s %s ", ts, stream);
    memcpy(rec + head, line, len);
    size_t total = (size_t)head + len;
    rec[total++] = '\n';
    if (lf->max_bytes > 0 && lf->size > 0 && lf->size + (long long)total > lf->max_bytes) {
        rotate(lf);
        if (lf->fd < 0) return;
    }
    size_t off = 0;
    while (off < total) {
        ssize_t n = write(lf->fd, rec + off, total - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return; /* disk full: keep the container running, lose the line */
        off += (size_t)n;
    }
    lf->size += (long long)total;
}

void logfile_close(struct logfile *lf) {
    if (lf->fd >= 0) close(lf->fd);
    lf->fd = -1;
}

void splitter_feed(struct line_splitter *s, const char *data, size_t n, line_fn fn, void *ctx) {
    for (size_t i = 0; i < n; i++) {
        if (data[i] == '\n') {
            fn(ctx, s->buf, s->len);
            s->len = 0;
            continue;
        }
        if (s->len == sizeof(s->buf)) {
            fn(ctx, s->buf, s->len);
            s->len = 0;
        }
        s->buf[s->len++] = data[i];
    }
}

void splitter_flush(struct line_splitter *s, line_fn fn, void *ctx) {
    if (s->len > 0) fn(ctx, s->buf, s->len);
    s->len = 0;
}
