/* The one daemon connection: framed output queue and input decoder. */
#ifndef SKIFF_CONN_H
#define SKIFF_CONN_H
#include "frame.h"
#include "json.h"

/* LOG frames are dropped (and counted) while more than this is queued, so a
 * stalled daemon cannot make the monitor grow without bound. */
#define CONN_LOG_BACKLOG (1u << 20)

struct conn {
    int fd; /* -1: no daemon connected */
    struct frame_reader rd;
    struct sbuf out;
    size_t out_off;   /* bytes of out already written */
    int finishing;    /* EXIT queued: half-close once flushed, then await ACK/EOF */
    int write_closed; /* shutdown(SHUT_WR) done */
    unsigned long dropped_logs;
};

void conn_reset(struct conn *c);
void conn_attach(struct conn *c, int fd);
void conn_close(struct conn *c);
/* Queues one frame with the given JSON payload. Returns -1 if it is too
 * large, or (droppable only) if the backlog is full. */
int conn_send(struct conn *c, const struct sbuf *payload, int droppable);
int conn_pending(const struct conn *c);
/* Writes as much as the socket takes. Returns -1 when the peer is gone. */
int conn_flush(struct conn *c);

#endif
