/*
 * Deterministic random-input driver for the monitor's frame decoder and JSON
 * reader (built with ASan+UBSan by `make fuzz`). Feeds mutated frames in
 * random chunk sizes and looks every member up, for the given number of
 * seconds (default 3) from the given seed (default 1). Any memory error
 * aborts the process; exit 0 means no finding.
 *
 * usage: frame-fuzz [seconds] [seed]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frame.h"
#include "json.h"

static uint64_t rng_state;

static uint64_t next_random(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static const char *const seeds[] = {
    "{\"type\":\"hello\",\"version\":1}",
    "{\"type\":\"start\"}",
    "{\"type\":\"kill\",\"signal\":15,\"all\":true}",
    "{\"type\":\"ack\",\"nested\":{\"a\":[1,2,{\"b\":null}],\"c\":\"\\u00e9\\n\"},\"x\":-1.5e3}",
    "{\"type\":\"log\",\"line\":\"\\\"quoted\\\" \\\\ back\"}",
    "{\"type\":\"memory\",\"low\":0,\"high\":0,\"max\":12,\"oom\":1,\"oom_kill\":1,\"oom_group_kill\":0}",
    "{\"type\":\"exit\",\"id\":\"c\",\"status\":{\"signal\":9},\"reason\":\"shutdown\",\"oom\":true}",
};

static const char alphabet[] = "{}[]\":,\\ -0123456789.eEtrufalsn\x01\xff";

static size_t make_payload(char *out, size_t cap) {
    const char *seed = seeds[next_random() % (sizeof(seeds) / sizeof(seeds[0]))];
    size_t len = strlen(seed);
    if (len > cap) len = cap;
    memcpy(out, seed, len);
    int edits = (int)(next_random() % 6);
    for (int i = 0; i < edits && len > 0; i++) {
        size_t pos = next_random() % len;
        switch (next_random() % 3) {
        case 0: out[pos] = alphabet[next_random() % (sizeof(alphabet) - 1)]; break;
        case 1: len = pos; break; /* truncate */
        default:
            if (len < cap) {
                memmove(out + pos + 1, out + pos, len - pos);
                out[pos] = alphabet[next_random() % (sizeof(alphabet) - 1)];
                len++;
            }
        }
    }
    return len;
}

static void exercise_json(const char *p, size_t n) {
    char s[16];
    long long v;
    int b;
    static const char *const keys[] = {"type", "version", "signal", "all", "line", "nested", "x", "oom_kill", "oom"};
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        json_get_string(p, n, keys[k], s, sizeof(s));
        json_get_int(p, n, keys[k], &v);
        json_get_bool(p, n, keys[k], &b);
    }
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 3;
    rng_state = argc > 2 ? strtoull(argv[2], NULL, 10) | 1 : 1;
    static struct frame_reader rd;
    static unsigned char stream[4 * (FRAME_HEADER + 256)];
    time_t start = time(NULL);
    unsigned long iterations = 0, frames = 0;
    frame_reader_init(&rd);
    while (difftime(time(NULL), start) < seconds) {
        /* A few frames, some with corrupted length headers. */
        size_t len = 0;
        for (int f = 0; f < 4; f++) {
            char payload[256];
            size_t n = make_payload(payload, sizeof(payload));
            frame_header(stream + len, n);
            if (next_random() % 16 == 0) stream[len + (next_random() % 4)] = (unsigned char)next_random();
            memcpy(stream + len + FRAME_HEADER, payload, n);
            len += FRAME_HEADER + n;
        }
        size_t off = 0;
        while (off < len) {
            size_t room;
            unsigned char *space = frame_reader_space(&rd, &room);
            size_t chunk = 1 + next_random() % 64;
            if (chunk > len - off) chunk = len - off;
            if (chunk > room) chunk = room;
            memcpy(space, stream + off, chunk);
            frame_reader_commit(&rd, chunk);
            off += chunk;
            const char *p;
            size_t n;
            enum frame_status st;
            while ((st = frame_reader_next(&rd, &p, &n)) == FRAME_READY) {
                exercise_json(p, n);
                frames++;
            }
            if (st == FRAME_INVALID || room == 0) frame_reader_init(&rd); /* a real peer gets disconnected */
        }
        iterations++;
    }
    printf("frame-fuzz: %lu iterations, %lu frames, no findings\n", iterations, frames);
    return 0;
}
