/*
 * skiff-nsconnect: connects to a TCP port on the loopback of another network namespace and
 * relays the connection over its stdin/stdout. The CRI streaming server starts one per
 * forwarded connection of a `PortForward` session (src/cri/streaming/portforward.ts).
 *
 * Usage: skiff-nsconnect NETNS_FILE PORT
 *
 *   NETNS_FILE  a file that holds a network namespace open: /proc/PID/ns/net, or a bind mount
 *               of one (what `unshare --net=FILE` and Skiff's pod sandboxes leave)
 *   PORT        1-65535; the connection goes to 127.0.0.1:PORT, or to [::1]:PORT when IPv4
 *               refuses (a server that listens on ::1 only)
 *
 * Descriptors from the daemon (Node `stdio: "pipe"`, Unix stream sockets):
 *   0  bytes for the target; EOF half-closes the TCP connection (shutdown SHUT_WR)
 *   1  bytes from the target; closed when the target half-closes or the connection ends
 *   2  on failure, one line of text: what failed and errno's message
 *
 * Exit status: 0 the relay ended normally (both directions reached EOF); 2 usage; 3 the
 * namespace could not be entered (open/setns); 4 the connection was refused or failed;
 * 5 an I/O error while relaying (a reset by the target, a write to a closed pipe).
 *
 * Why a helper: a network namespace is a property of a thread, and Node can neither setns()
 * nor create a socket inside another namespace (no SO_NETNS, no fork). setns(CLONE_NEWNET)
 * here moves this whole single-threaded process into the pod's namespace before the socket
 * is created, so the socket lives there for good; the daemon keeps its own namespace. It needs
 * CAP_SYS_ADMIN (skiffd runs as root). Static against musl like skiff-monitor: a few pages per
 * forwarded connection, no ld.so.
 *
 * Phases: ENTER (open + setns) -> CONNECT (127.0.0.1, then ::1 on ECONNREFUSED) -> RELAY
 * (poll both directions; each ends independently at EOF) -> exit 0 when both ended.
 *
 * INVARIANTS: every wait is one poll() without a timeout (the daemon ends us with SIGKILL when
 * its session ends); one buffer per direction, read only when empty, so a side that stops
 * reading stops the other side (back-pressure through both sockets); SIGPIPE is ignored so a
 * closed pipe is an EPIPE, i.e. exit 5, never a silent death.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE 65536

enum exit_code { EXIT_OK = 0, EXIT_USAGE = 2, EXIT_NETNS = 3, EXIT_CONNECT = 4, EXIT_IO = 5 };

/* One direction of the relay: src -> buf -> dst. */
struct pipe_dir {
    int src, dst;
    char buf[BUF_SIZE];
    size_t len, off;
    int eof;  /* src reached EOF; dst was shut down once buf drained */
    int done; /* EOF seen and everything written */
};

static void fail(int code, const char *what) {
    fprintf(stderr, "%s: %s\n", what, strerror(errno));
    exit(code);
}

static int parse_port(const char *text) {
    char *end;
    long port = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || port < 1 || port > 65535) return -1;
    return (int)port;
}

static int connect_loopback(int port) {
    struct sockaddr_in v4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    v4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) fail(EXIT_CONNECT, "socket");
    if (connect(fd, (struct sockaddr *)&v4, sizeof v4) == 0) return fd;
    int err = errno;
    close(fd);
    if (err == ECONNREFUSED) {
        struct sockaddr_in6 v6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
        v6.sin6_addr = in6addr_loopback;
        fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&v6, sizeof v6) == 0) return fd;
        if (fd >= 0) close(fd);
    }
    errno = err;
    char what[64];
    snprintf(what, sizeof what, "connect to 127.0.0.1:%d", port);
    fail(EXIT_CONNECT, what);
    return -1;
}

/* Half-closes the destination of a finished direction: a socket is shut down, a pipe closed. */
static void end_dst(struct pipe_dir *d, int sock) {
    if (d->dst == sock) shutdown(sock, SHUT_WR);
    else close(d->dst);
    d->done = 1;
}

/* One step of a direction whose poll said ready. */
static void step(struct pipe_dir *d, short revents_src, short revents_dst, int sock) {
    if (d->len == 0 && !d->eof && (revents_src & (POLLIN | POLLHUP | POLLERR))) {
        ssize_t n = read(d->src, d->buf, sizeof d->buf);
        if (n < 0 && errno != EAGAIN && errno != EINTR) fail(EXIT_IO, "read");
        if (n == 0) d->eof = 1;
        if (n > 0) {
            d->len = (size_t)n;
            d->off = 0;
        }
    }
    if (d->len > 0 && (revents_dst & (POLLOUT | POLLERR | POLLHUP))) {
        ssize_t n = write(d->dst, d->buf + d->off, d->len);
        if (n < 0 && errno != EAGAIN && errno != EINTR) fail(EXIT_IO, "write");
        if (n > 0) {
            d->off += (size_t)n;
            d->len -= (size_t)n;
        }
    }
    if (d->eof && d->len == 0 && !d->done) end_dst(d, sock);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: skiff-nsconnect NETNS_FILE PORT\n");
        return EXIT_USAGE;
    }
    int port = parse_port(argv[2]);
    if (port < 0) {
        fprintf(stderr, "skiff-nsconnect: invalid port %s\n", argv[2]);
        return EXIT_USAGE;
    }
    signal(SIGPIPE, SIG_IGN);

    /* ENTER */
    int ns = open(argv[1], O_RDONLY | O_CLOEXEC);
    if (ns < 0) fail(EXIT_NETNS, "open the network namespace");
    if (setns(ns, CLONE_NEWNET) != 0) fail(EXIT_NETNS, "enter the network namespace");
    close(ns);

    /* CONNECT */
    int sock = connect_loopback(port);
    int one = 1;
    setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    /* RELAY */
    static struct pipe_dir up, down; /* up: stdin -> sock; down: sock -> stdout */
    up.src = 0;
    up.dst = sock;
    down.src = sock;
    down.dst = 1;
    while (!(up.done && down.done)) {
        /* fds: 0 stdin, 1 sock (read), 2 sock (write), 3 stdout */
        struct pollfd p[4] = {
            {.fd = (!up.done && !up.eof && up.len == 0) ? 0 : -1, .events = POLLIN},
            {.fd = (!down.done && !down.eof && down.len == 0) ? sock : -1, .events = POLLIN},
            {.fd = up.len > 0 ? sock : -1, .events = POLLOUT},
            {.fd = down.len > 0 ? 1 : -1, .events = POLLOUT},
        };
        /* A direction that reached EOF with nothing buffered finishes without waiting. */
        int finishing = (up.eof && up.len == 0 && !up.done) || (down.eof && down.len == 0 && !down.done);
        if (!finishing) {
            if (poll(p, 4, -1) < 0) {
                if (errno == EINTR) continue;
                fail(EXIT_IO, "poll");
            }
        }
        if (!up.done) step(&up, p[0].revents, p[2].revents, sock);
        if (!down.done) step(&down, p[1].revents, p[3].revents, sock);
    }
    close(sock);
    return EXIT_OK;
}
