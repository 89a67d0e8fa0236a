/* container.log: one line per output line, "<RFC3339 ms> <stream> <text>",
 * rotated by size into container.log.1 .. container.log.N. */
#ifndef SKIFF_LOGFILE_H
#define SKIFF_LOGFILE_H
#include <limits.h>
#include <stddef.h>

/* Longer output lines are split into pieces of this size. */
#define LINE_MAX_BYTES 8192

struct logfile {
    char path[PATH_MAX];
    int fd; /* -1 when logging is disabled or the file could not be opened */
    long long size;
    long long max_bytes; /* 0: never rotate */
    int files;           /* rotated files kept; 0: truncate in place */
};

/* Writes the current UTC time as "YYYY-MM-DDTHH:MM:SS.mmmZ" (25 bytes + NUL). */
void rfc3339_now(char out[32]);

int logfile_open(struct logfile *lf, const char *dir, long long max_bytes, int files);
void logfile_append(struct logfile *lf, const char *stream, const char *line, size_t len);
void logfile_close(struct logfile *lf);

typedef void (*line_fn)(void *ctx, const char *line, size_t len);

/* Splits a byte stream into lines (without the newline). */
struct line_splitter {
    char buf[LINE_MAX_BYTES];
    size_t len;
};
void splitter_feed(struct line_splitter *s, const char *data, size_t n, line_fn fn, void *ctx);
/* Emits a trailing partial line, if any (at end of stream). */
void splitter_flush(struct line_splitter *s, line_fn fn, void *ctx);

#endif
