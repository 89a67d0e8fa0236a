/* The container's log, one record per output line, in one of two formats:
 * - SKIFF (container.log in the state directory): "<RFC3339 ms> <stream> <text>",
 *   rotated by size into container.log.1 .. container.log.N;
 * - CRI (the path the kubelet chose, --log-format cri): "<RFC3339 ns> <stream> <F|P> <text>",
 *   P for a piece of a line longer than LINE_MAX_BYTES (the rest follows), F for a line's end.
 *   Never rotated here: the kubelet renames the file and asks for a reopen (REOPEN_LOG). */
#ifndef SKIFF_LOGFILE_H
#define SKIFF_LOGFILE_H
#include <limits.h>
#include <stddef.h>

/* Longer output lines are split into pieces of this size. */
#define LINE_MAX_BYTES 8192

enum log_format { LOG_SKIFF, LOG_CRI };

struct logfile {
    char path[PATH_MAX];
    enum log_format format;
    int fd; /* -1 when logging is disabled or the file could not be opened */
    long long size;
    long long max_bytes; /* 0: never rotate */
    int files;           /* rotated files kept; 0: truncate in place */
};

/* Writes the current UTC time as "YYYY-MM-DDTHH:MM:SS.mmmZ" (25 bytes + NUL). */
void rfc3339_now(char out[32]);

/* Writes the current UTC time as "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ" (30 bytes + NUL). */
void rfc3339_nano_now(char out[40]);

int logfile_open(struct logfile *lf, const char *path, enum log_format format, long long max_bytes, int files);
/* `partial`: the line goes on in the next record (CRI's P tag). */
void logfile_append(struct logfile *lf, const char *stream, const char *line, size_t len, int partial);
/* Closes the file and opens (creates) it again at its path: after the kubelet renamed it away. */
int logfile_reopen(struct logfile *lf);
void logfile_close(struct logfile *lf);

/* `partial`: a piece of a line longer than the buffer; the line goes on. */
typedef void (*line_fn)(void *ctx, const char *line, size_t len, int partial);

/* Splits a byte stream into lines (without the newline). */
struct line_splitter {
    char buf[LINE_MAX_BYTES];
    size_t len;
};
void splitter_feed(struct line_splitter *s, const char *data, size_t n, line_fn fn, void *ctx);
/* Emits a trailing partial line, if any (at end of stream). */
void splitter_flush(struct line_splitter *s, line_fn fn, void *ctx);

#endif
