/*
 * libFuzzer target for the monitor's wire input: the frame decoder (frame.c)
 * and the JSON member reader (json.c) that parse every byte skiffd sends.
 * Built by `make fuzz` with clang's -fsanitize=fuzzer,address,undefined; a
 * memory error, undefined behaviour, leak, hang or crash is a finding.
 *
 * Input layout:
 *   byte 0      chunking seed: the rest is fed to the reader in chunks of
 *               1..64 bytes whose sizes follow from it (as a socket would
 *               split the stream)
 *   bytes 1..   the byte stream: 4-byte big-endian lengths and payloads
 *
 * Every payload the reader returns is copied into a buffer of exactly its
 * size before the JSON reader sees it, so reading one byte past the payload
 * is an ASan finding (inside the reader's own buffer it would go unseen).
 * The whole stream is also handed to the JSON reader as one document.
 *
 * Run: build/frame-fuzz -max_total_time=20 build/fuzz-corpus fuzz/corpus
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "json.h"

static const char *const keys[] = {"type", "version", "signal", "all", "line", "nested", "x", "oom_kill", "oom", ""};

/* Looks every key up with every accessor, on exactly `n` heap bytes. */
static void exercise_json(const char *data, size_t n) {
    char *p = malloc(n ? n : 1);
    if (p == NULL) return;
    memcpy(p, data, n);
    char s[16];
    long long v;
    int b;
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        json_get_string(p, n, keys[k], s, sizeof(s));
        json_get_int(p, n, keys[k], &v);
        json_get_bool(p, n, keys[k], &b);
    }
    free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static struct frame_reader rd; /* 64 KiB: static, as in the monitor */
    if (size < 1) return 0;
    uint32_t chunking = data[0] * 2654435761u + 1;
    const uint8_t *stream = data + 1;
    size_t len = size - 1;
    exercise_json((const char *)stream, len);

    frame_reader_init(&rd);
    size_t off = 0;
    while (off < len) {
        size_t room;
        unsigned char *space = frame_reader_space(&rd, &room);
        chunking ^= chunking << 13;
        chunking ^= chunking >> 17;
        chunking ^= chunking << 5;
        size_t chunk = 1 + chunking % 64;
        if (chunk > len - off) chunk = len - off;
        if (chunk > room) chunk = room;
        memcpy(space, stream + off, chunk);
        frame_reader_commit(&rd, chunk);
        off += chunk;
        const char *payload;
        size_t n;
        enum frame_status st;
        while ((st = frame_reader_next(&rd, &payload, &n)) == FRAME_READY) exercise_json(payload, n);
        if (st == FRAME_INVALID || room == 0) return 0; /* the monitor closes such a connection */
    }
    return 0;
}
