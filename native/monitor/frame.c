#include "frame.h"

#include <string.h>

void frame_reader_init(struct frame_reader *r) {
    r->len = 0;
    r->consumed = 0;
}

/* Drops frames already handed out so the free room is contiguous. */
static void compact(struct frame_reader *r) {
    if (r->consumed == 0) return;
    memmove(r->buf, r->buf + r->consumed, r->len - r->consumed);
    r->len -= r->consumed;
    r->consumed = 0;
}

unsigned char *frame_reader_space(struct frame_reader *r, size_t *room) {
    compact(r);
    *room = sizeof(r->buf) - r->len;
    return r->buf + r->len;
}

void frame_reader_commit(struct frame_reader *r, size_t n) {
    size_t room = sizeof(r->buf) - r->len;
    r->len += n > room ? room : n;
}

enum frame_status frame_reader_next(struct frame_reader *r, const char **payload, size_t *len) {
    size_t avail = r->len - r->consumed;
    if (avail < FRAME_HEADER) return FRAME_NEED_MORE;
    const unsigned char *h = r->buf + r->consumed;
    size_t n = ((size_t)h[0] << 24) | ((size_t)h[1] << 16) | ((size_t)h[2] << 8) | (size_t)h[3];
    if (n == 0 || n > FRAME_MAX_PAYLOAD) return FRAME_INVALID;
    if (avail - FRAME_HEADER < n) return FRAME_NEED_MORE;
    *payload = (const char *)h + FRAME_HEADER;
    *len = n;
    r->consumed += FRAME_HEADER + n;
    return FRAME_READY;
}

void frame_header(unsigned char out[FRAME_HEADER], size_t len) {
    out[0] = (unsigned char)(len >> 24);
    out[1] = (unsigned char)(len >> 16);
    out[2] = (unsigned char)(len >> 8);
    out[3] = (unsigned char)len;
}
