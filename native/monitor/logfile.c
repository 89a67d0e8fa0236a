#include "logfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h> /* rename(2) only: the monitor writes through write(2), no FILE streams */
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fmt.h"

/* Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's civil_from_days), so the
 * timestamp needs neither gmtime nor strftime (which would pull locale and stdio code in). */
static void civil_from_days(long long days, long long *y, unsigned *m, unsigned *d) {
    days += 719468;
    long long era = (days >= 0 ? days : days - 146096) / 146097;
    unsigned doe = (unsigned)(days - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (long long)yoe + era * 400 + (*m <= 2);
}

static void utc_now(struct timespec *ts, long long *year, unsigned *month, unsigned *day, long long *in_day) {
    clock_gettime(CLOCK_REALTIME, ts);
    long long secs = ts->tv_sec, days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
    *in_day = secs - days * 86400;
    civil_from_days(days, year, month, day);
}

void rfc3339_nano_now(char out[40]) {
    struct timespec ts;
    long long year, in_day;
    unsigned month, day;
    utc_now(&ts, &year, &month, &day, &in_day);
    fmt_snprintf(out, 40, "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%09ldZ", year, month, day, in_day / 3600,
                 in_day / 60 % 60, in_day % 60, ts.tv_nsec);
}

void rfc3339_now(char out[32]) {
    struct timespec ts;
    long long year, in_day;
    unsigned month, day;
    utc_now(&ts, &year, &month, &day, &in_day);
    fmt_snprintf(out, 32, "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%03ldZ", year, month, day, in_day / 3600,
                 in_day / 60 % 60, in_day % 60, ts.tv_nsec / 1000000);
}

static int open_current(struct logfile *lf, int truncate) {
    lf->fd = open(lf->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0600);
    if (lf->fd < 0) return -1;
    struct stat st;
    lf->size = fstat(lf->fd, &st) == 0 ? st.st_size : 0;
    return 0;
}

int logfile_open(struct logfile *lf, const char *path, enum log_format format, long long max_bytes, int files) {
    lf->format = format;
    lf->max_bytes = format == LOG_CRI ? 0 : max_bytes;
    lf->files = files;
    lf->size = 0;
    lf->fd = -1;
    if ((size_t)fmt_snprintf(lf->path, sizeof(lf->path), "%s", path) >= sizeof(lf->path)) {
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
            fmt_snprintf(from, sizeof(from), "%s.%d", lf->path, i);
            fmt_snprintf(to, sizeof(to), "%s.%d", lf->path, i + 1);
            rename(from, to); /* ENOENT for files not yet rotated: fine */
        }
        fmt_snprintf(to, sizeof(to), "%s.1", lf->path);
        rename(lf->path, to);
    }
    if (open_current(lf, 1) < 0) fmt_err("skiff-monitor: reopen %s: %s\n", lf->path, strerror(errno));
}

int logfile_reopen(struct logfile *lf) {
    logfile_close(lf);
    return open_current(lf, 0);
}

void logfile_append(struct logfile *lf, const char *stream, const char *line, size_t len, int partial) {
    char rec[LINE_MAX_BYTES + 64];
    char ts[40];
    int head;
    if (lf->fd < 0) return;
    if (len > LINE_MAX_BYTES) len = LINE_MAX_BYTES;
    if (lf->format == LOG_CRI) {
        rfc3339_nano_now(ts);
        head = fmt_snprintf(rec, sizeof(rec), "%s %s %s ", ts, stream, partial ? "P" : "F");
    } else {
        rfc3339_now(ts);
        head = fmt_snprintf(rec, sizeof(rec), "%s %s ", ts, stream);
    }
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
            fn(ctx, s->buf, s->len, 0);
            s->len = 0;
            continue;
        }
        if (s->len == sizeof(s->buf)) {
            fn(ctx, s->buf, s->len, 1);
            s->len = 0;
        }
        s->buf[s->len++] = data[i];
    }
}

void splitter_flush(struct line_splitter *s, line_fn fn, void *ctx) {
    if (s->len > 0) fn(ctx, s->buf, s->len, 0);
    s->len = 0;
}
