/*
 * Unit tests for the monitor's pure parts: JSON member lookup and output,
 * frame decoding, line splitting, log rotation and memory counters. `make check` builds this
 * with ASan+UBSan and runs it; exit 0 means every check passed.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fmt.h"
#include "frame.h"
#include "json.h"
#include "logfile.h"
#include "memcounters.h"

static int failures;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                          \
        }                                                                        \
    } while (0)

static void test_json_lookup(void) {
    const char *js = "{ \"type\" : \"kill\", \"nested\": {\"signal\": 1, \"a\": [1, {\"b\": \"}\"}]},"
                     " \"signal\": 15, \"all\": true, \"esc\": \"a\\\"b\\u00e9\\n\" }";
    size_t n = strlen(js);
    char s[32];
    long long v = 0;
    int b = 0;
    CHECK(json_get_string(js, n, "type", s, sizeof(s)) == 1 && strcmp(s, "kill") == 0);
    CHECK(json_get_int(js, n, "signal", &v) == 1 && v == 15); /* top level, not the nested one */
    CHECK(json_get_bool(js, n, "all", &b) == 1 && b == 1);
    CHECK(json_get_string(js, n, "esc", s, sizeof(s)) == 1 && strcmp(s, "a\"b\xc3\xa9\n") == 0);
    CHECK(json_get_int(js, n, "missing", &v) == 0);
    CHECK(json_get_int(js, n, "type", &v) == 0); /* wrong type counts as absent */
    CHECK(json_get_string(js, n, "type", s, 3) == 1 && strcmp(s, "ki") == 0); /* truncated, terminated */

    long long f;
    CHECK(json_get_int("{\"x\":1.5}", 9, "x", &f) == 0);
    const char *bad[] = {"", "[]", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{\"a\":1} x", "{\"a\":tru}",
                         "{\"a\":\"\\x\"}", "{\"a\":\"\x01\"}", "{\"a\":-}", "{\"a\":1e}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) CHECK(json_get_int(bad[i], strlen(bad[i]), "a", &v) == -1);
    char deep[200];
    memset(deep, '[', sizeof(deep));
    memcpy(deep, "{\"a\":", 5);
    CHECK(json_get_int(deep, sizeof(deep), "a", &v) == -1); /* depth bound, no stack blowup */
}

static void test_json_output(void) {
    struct sbuf b;
    sb_init(&b);
    sb_json_string(&b, "q\"\\\n\x01z", 6);
    CHECK(strcmp(b.data, "\"q\\\"\\\\\\u000a\\u0001z\"") == 0);
    sb_free(&b);
}

static void test_frames(void) {
    static struct frame_reader r;
    unsigned char hdr[4];
    const char *p;
    size_t n, room;
    frame_reader_init(&r);
    frame_header(hdr, 3);
    unsigned char *space = frame_reader_space(&r, &room);
    memcpy(space, hdr, 4);
    memcpy(space + 4, "abc", 3);
    frame_reader_commit(&r, 5); /* header + 1 byte: incomplete */
    CHECK(frame_reader_next(&r, &p, &n) == FRAME_NEED_MORE);
    frame_reader_commit(&r, 2);
    CHECK(frame_reader_next(&r, &p, &n) == FRAME_READY && n == 3 && memcmp(p, "abc", 3) == 0);
    CHECK(frame_reader_next(&r, &p, &n) == FRAME_NEED_MORE);
    space = frame_reader_space(&r, &room);
    CHECK(room == sizeof(r.buf)); /* consumed frames are compacted away */
    frame_header(space, FRAME_MAX_PAYLOAD + 1);
    frame_reader_commit(&r, 4);
    CHECK(frame_reader_next(&r, &p, &n) == FRAME_INVALID);
    frame_reader_init(&r);
    space = frame_reader_space(&r, &room);
    memset(space, 0, 4);
    frame_reader_commit(&r, 4);
    CHECK(frame_reader_next(&r, &p, &n) == FRAME_INVALID);
}

static char lines[8][LINE_MAX_BYTES + 1];
static int partials[8];
static int n_lines;

static void collect(void *ctx, const char *line, size_t len, int partial) {
    (void)ctx;
    if (n_lines < 8) {
        memcpy(lines[n_lines], line, len);
        lines[n_lines][len] = '\0';
        partials[n_lines] = partial;
    }
    n_lines++;
}

static void test_splitter(void) {
    static struct line_splitter s;
    static char big[LINE_MAX_BYTES + 10];
    splitter_feed(&s, "a\nbc", 4, collect, NULL);
    splitter_feed(&s, "d\n\nend", 6, collect, NULL);
    splitter_flush(&s, collect, NULL);
    CHECK(n_lines == 4 && strcmp(lines[0], "a") == 0 && strcmp(lines[1], "bcd") == 0 && lines[2][0] == '\0' &&
          strcmp(lines[3], "end") == 0);
    CHECK(!partials[0] && !partials[1] && !partials[2] && !partials[3]);
    n_lines = 0;
    memset(big, 'x', sizeof(big));
    splitter_feed(&s, big, sizeof(big), collect, NULL);
    splitter_flush(&s, collect, NULL);
    CHECK(n_lines == 2 && strlen(lines[0]) == LINE_MAX_BYTES && strlen(lines[1]) == 10);
    CHECK(partials[0] == 1 && partials[1] == 0); /* a piece, then the line's end */
}

static long file_size(const char *dir, const char *name) {
    char path[512];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void test_rotation(void) {
    char dir[] = "/tmp/skiff-logfile-test-XXXXXX";
    struct logfile lf;
    CHECK(mkdtemp(dir) != NULL);
    char path[512];
    snprintf(path, sizeof(path), "%s/container.log", dir);
    CHECK(logfile_open(&lf, path, LOG_SKIFF, 100, 2) == 0);
    for (int i = 0; i < 20; i++) logfile_append(&lf, "stdout", "0123456789", 10, 0); /* 43 bytes a line */
    logfile_close(&lf);
    CHECK(file_size(dir, "container.log") == 86);
    CHECK(file_size(dir, "container.log.1") == 86);
    CHECK(file_size(dir, "container.log.2") == 86);
    CHECK(file_size(dir, "container.log.3") == -1);

    CHECK(logfile_open(&lf, path, LOG_SKIFF, 100, 0) == 0); /* no rotated files: truncate in place */
    for (int i = 0; i < 5; i++) logfile_append(&lf, "stderr", "x", 1, 0);
    logfile_close(&lf);
    CHECK(file_size(dir, "container.log") == 34); /* lines 5 (after truncating at line 3) */

    char ts[32];
    rfc3339_now(ts);
    CHECK(strlen(ts) == 24 && ts[10] == 'T' && ts[19] == '.' && ts[23] == 'Z');

    const char *names[] = {"container.log", "container.log.1", "container.log.2"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        unlink(path);
    }
    CHECK(rmdir(dir) == 0);
}

/* CRI format: "<RFC3339 ns> <stream> <F|P> <text>", never rotated, reopened at its path. */
static void test_cri_log(void) {
    char dir[] = "/tmp/skiff-crilog-test-XXXXXX";
    char path[512], moved[600], buf[256];
    struct logfile lf;
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/0.log", dir);
    CHECK(logfile_open(&lf, path, LOG_CRI, 10, 1) == 0); /* max_bytes ignored: no rotation */
    logfile_append(&lf, "stdout", "piece", 5, 1);
    logfile_append(&lf, "stderr", "end", 3, 0);
    snprintf(moved, sizeof(moved), "%s.1", path);
    CHECK(rename(path, moved) == 0);
    CHECK(logfile_reopen(&lf) == 0);
    logfile_append(&lf, "stdout", "after", 5, 0);
    logfile_close(&lf);
    FILE *f = fopen(moved, "r");
    CHECK(f != NULL);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* 2026-12-07T03:45:09.123456789Z = 30 characters */
    CHECK(n == 2 * 31 + strlen("stdout P piece\n") + strlen("stderr F end\n"));
    CHECK(buf[10] == 'T' && buf[19] == '.' && buf[29] == 'Z' && strncmp(buf + 30, " stdout P piece\n", 16) == 0);
    CHECK(strstr(buf, "Z stderr F end\n") != NULL);
    CHECK(file_size(dir, "0.log") == 31 + (long)strlen("stdout F after\n"));
    unlink(path);
    unlink(moved);
    CHECK(rmdir(dir) == 0);
}

static void test_memory_counters(void) {
    struct mem_counters prev, next, delta;
    unsigned long long v = 0;
    CHECK(flat_keyed_get("oom 1\noom_kill 2\n", "oom", &v) == 1 && v == 1); /* not the prefix of oom_kill */
    CHECK(flat_keyed_get("oom_kill 2\noom 3", "oom", &v) == 1 && v == 3);   /* last line without newline */
    CHECK(flat_keyed_get("oom_kill 2\n", "oom", &v) == 0);
    CHECK(flat_keyed_get("oom x\n", "oom", &v) == 0);

    mem_counters_v2("low 1\nhigh 2\nmax 3\noom 4\noom_kill 5\noom_group_kill 6\n", &next);
    for (int f = 0; f < MEM_FIELDS; f++) CHECK(next.v[f] == (unsigned long long)f + 1);
    mem_counters_v2("max 7\n", &next); /* older kernels lack some fields */
    CHECK(next.v[MEM_MAX] == 7 && next.v[MEM_OOM_GROUP_KILL] == 0);

    mem_counters_v1("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n", "10\n", "5\n", &next);
    CHECK(next.v[MEM_MAX] == 15 && next.v[MEM_OOM] == 2 && next.v[MEM_OOM_KILL] == 2 && next.v[MEM_LOW] == 0);
    mem_counters_v1("oom_kill_disable 0\nunder_oom 0\n", "10\n", NULL, &next); /* kernel < 4.13, no swap accounting */
    CHECK(next.v[MEM_MAX] == 10 && next.v[MEM_OOM_KILL] == 0);

    mem_counters_v2("max 3\noom_kill 1\n", &prev);
    CHECK(mem_delta(&prev, &prev, &delta) == 0);
    mem_counters_v2("max 5\noom_kill 1\n", &next);
    CHECK(mem_delta(&prev, &next, &delta) == 1 && delta.v[MEM_MAX] == 2 && delta.v[MEM_OOM_KILL] == 0);
    mem_counters_v2("max 1\noom_kill 1\n", &next); /* failcnt was reset: counts from zero */
    CHECK(mem_delta(&prev, &next, &delta) == 1 && delta.v[MEM_MAX] == 1);
    CHECK(strcmp(mem_field_names[MEM_OOM_GROUP_KILL], "oom_group_kill") == 0);
}

/* The formatter against the C library's snprintf for every conversion the monitor uses. */
static void test_formatter(void) {
    char ours[64], libc[64];
#define SAME(...)                                                                                                \
    do {                                                                                                       \
        int a = fmt_snprintf(ours, sizeof(ours), __VA_ARGS__), b = snprintf(libc, sizeof(libc), __VA_ARGS__); \
        CHECK(a == b && strcmp(ours, libc) == 0);                                                              \
    } while (0)
    SAME("%s=%d", "x", -42);
    SAME("%ld %lld %llu %u", -1L, (long long)-9223372036854775807LL - 1, 18446744073709551615ULL, 7u);
    SAME("\\u%04x|%03ld|%02u|%x|%%|%c", 0x1f, 5L, 9u, 255u, 'z');
    SAME("[%.*s]", 3, "abcdef");
#undef SAME
    CHECK(fmt_snprintf(ours, 4, "%d", 123456) == 6 && strcmp(ours, "123") == 0);
    CHECK(fmt_snprintf(NULL, 0, "%s", "abc") == 3);
    const char *long_text = "a string longer than the sixty-four byte buffer, so the output is cut here";
    CHECK(fmt_snprintf(ours, sizeof(ours), "%s", long_text) == (int)strlen(long_text));
    CHECK(strlen(ours) == sizeof(ours) - 1 && strncmp(ours, long_text, sizeof(ours) - 1) == 0);
}

int main(void) {
    test_formatter();
    test_json_lookup();
    test_json_output();
    test_frames();
    test_splitter();
    test_rotation();
    test_cri_log();
    test_memory_counters();
    if (failures) {
        fprintf(stderr, "unit_test: %d check(s) failed\n", failures);
        return 1;
    }
    printf("unit_test: all checks passed\n");
    return 0;
}
