/* Length-prefixed frames: 4-byte big-endian payload length, then payload. */
#ifndef SKIFF_FRAME_H
#define SKIFF_FRAME_H
#include <stddef.h>

#define FRAME_MAX_PAYLOAD 65536u
#define FRAME_HEADER 4u

enum frame_status { FRAME_NEED_MORE = 0, FRAME_READY = 1, FRAME_INVALID = -1 };

/* Incremental decoder. Callers write received bytes at frame_reader_space()
 * and report them with frame_reader_commit(); frame_reader_next() returns one
 * complete payload at a time, valid until the next call on the reader. */
struct frame_reader {
    unsigned char buf[FRAME_HEADER + FRAME_MAX_PAYLOAD];
    size_t len;      /* bytes held in buf */
    size_t consumed; /* bytes of buf belonging to frames already returned */
};

void frame_reader_init(struct frame_reader *r);
unsigned char *frame_reader_space(struct frame_reader *r, size_t *room);
void frame_reader_commit(struct frame_reader *r, size_t n);
/* FRAME_READY: payload and len set. FRAME_INVALID: zero or oversized length;
 * the stream cannot be resynchronised and must be closed. */
enum frame_status frame_reader_next(struct frame_reader *r, const char **payload, size_t *len);

/* Writes the 4-byte header for a payload of len bytes (len <= FRAME_MAX_PAYLOAD). */
void frame_header(unsigned char out[FRAME_HEADER], size_t len);

#endif
