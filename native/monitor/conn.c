#include "conn.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void conn_reset(struct conn *c) {
    c->fd = -1;
    frame_reader_init(&c->rd);
    sb_free(&c->out);
    c->out_off = 0;
    c->finishing = 0;
    c->write_closed = 0;
}

void conn_attach(struct conn *c, int fd) {
    conn_reset(c);
    c->fd = fd;
}

void conn_close(struct conn *c) {
    if (c->fd >= 0) close(c->fd);
    conn_reset(c);
}

int conn_send(struct conn *c, const struct sbuf *payload, int droppable) {
    unsigned char hdr[FRAME_HEADER];
    if (c->fd < 0 || payload->failed || payload->len == 0 || payload->len > FRAME_MAX_PAYLOAD) return -1;
    if (droppable && c->out.len - c->out_off > CONN_LOG_BACKLOG) {
        c->dropped_logs++;
        return -1;
    }
    if (c->out_off > 0 && c->out_off == c->out.len) {
        c->out.len = 0;
        c->out_off = 0;
    }
    frame_header(hdr, payload->len);
    sb_putn(&c->out, (const char *)hdr, sizeof(hdr));
    sb_putn(&c->out, payload->data, payload->len);
    return c->out.failed ? -1 : 0;
}

int conn_pending(const struct conn *c) { return c->fd >= 0 && c->out_off < c->out.len; }

int conn_flush(struct conn *c) {
    while (conn_pending(c)) {
        ssize_t n = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        if (n < 0) return -1;
        c->out_off += (size_t)n;
    }
    return 0;
}
