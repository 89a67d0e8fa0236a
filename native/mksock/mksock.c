/*
 * skiff-mksock: creates the manifest sockets Node cannot (datagram and
 * seq_packet Unix sockets), each at a given fd number, then execs the
 * program after "--" (skiff-monitor), which inherits them as extra fds.
 *
 * Usage: skiff-mksock (--socket FD TYPE PASSCRED MODE UID GID PATH)... -- <program> [args...]
 *
 *   FD        the fd number the socket must have in <program> (>= 3; the
 *             daemon leaves it free: Node passes "ignore" there)
 *   TYPE      stream | datagram | seq_packet
 *   PASSCRED  0 | 1: SO_PASSCRED before bind (Northstar's order)
 *   MODE      octal permission bits of the socket file (<= 07777)
 *   UID, GID  owner of the socket file; -1 keeps root's
 *   PATH      absolute path of the socket file (the daemon built it with
 *             resolveWithin: <socket_dir>/<name>:<version>:<socket>)
 *
 * Phases, per socket: socket -> passcred -> bind to a temporary name in
 * PATH's directory -> listen (stream, seq_packet; as Northstar) -> chmod ->
 * chown -> rename onto PATH -> dup2 to FD. The temporary name means the
 * socket appears at PATH with its final mode and owner already set. On any
 * failure: one line on stderr, every file made so far removed, exit 1 (the
 * daemon sees the monitor exit before it was ready and fails the start).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_SOCKETS 32
#define ARGS_PER_SOCKET 7

enum phase { PH_SOCKET, PH_PASSCRED, PH_BIND, PH_LISTEN, PH_CHMOD, PH_CHOWN, PH_RENAME, PH_DUP };
static const char *const phase_names[] = {"socket", "SO_PASSCRED", "bind", "listen",
                                          "chmod",  "chown",       "rename", "dup2"};

struct spec {
    int fd, type, passcred;
    mode_t mode;
    long uid, gid;
    const char *path;
};

static const char *made[MAX_SOCKETS];
static int n_made;

static void fail(const char *path, enum phase phase, int err) {
    dprintf(2, "skiff-mksock: %s: %s: %s\n", path, phase_names[phase], strerror(err));
    for (int i = 0; i < n_made; i++) unlink(made[i]);
    exit(1);
}

static int parse_long(const char *text, int base, long min, long max, long *out) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, base);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max) return -1;
    *out = v;
    return 0;
}

static int parse_spec(char **a, struct spec *s) {
    long fd, passcred, mode;
    if (parse_long(a[0], 10, 3, INT_MAX, &fd) || parse_long(a[2], 10, 0, 1, &passcred) ||
        parse_long(a[3], 8, 0, 07777, &mode) || parse_long(a[4], 10, -1, UINT_MAX - 1L, &s->uid) ||
        parse_long(a[5], 10, -1, UINT_MAX - 1L, &s->gid) || a[6][0] != '/')
        return -1;
    if (strcmp(a[1], "stream") == 0) s->type = SOCK_STREAM;
    else if (strcmp(a[1], "datagram") == 0) s->type = SOCK_DGRAM;
    else if (strcmp(a[1], "seq_packet") == 0) s->type = SOCK_SEQPACKET;
    else return -1;
    s->fd = (int)fd;
    s->passcred = (int)passcred;
    s->mode = (mode_t)mode;
    s->path = a[6];
    return 0;
}

static void make_socket(const struct spec *s) {
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    char tmp[sizeof(addr.sun_path)];
    const char *slash = strrchr(s->path, '/');
    int n = snprintf(tmp, sizeof(tmp), "%.*s/.new-%ld-%d", (int)(slash - s->path), s->path, (long)getpid(), s->fd);
    if (n < 0 || (size_t)n >= sizeof(tmp) || strlen(s->path) >= sizeof(addr.sun_path)) fail(s->path, PH_BIND, ENAMETOOLONG);
    memcpy(addr.sun_path, tmp, (size_t)n + 1);

    int fd = socket(AF_UNIX, s->type, 0);
    if (fd < 0) fail(s->path, PH_SOCKET, errno);
    int on = 1;
    if (s->passcred && setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) != 0) fail(s->path, PH_PASSCRED, errno);
    unlink(tmp);
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) fail(s->path, PH_BIND, errno);
    made[n_made++] = strdup(tmp);
    if (s->type != SOCK_DGRAM && listen(fd, SOMAXCONN) != 0) fail(s->path, PH_LISTEN, errno);
    if (chmod(tmp, s->mode) != 0) fail(s->path, PH_CHMOD, errno);
    if ((s->uid != -1 || s->gid != -1) && lchown(tmp, (uid_t)s->uid, (gid_t)s->gid) != 0) fail(s->path, PH_CHOWN, errno);
    if (rename(tmp, s->path) != 0) fail(s->path, PH_RENAME, errno);
    made[n_made - 1] = s->path;
    if (fd != s->fd) {
        if (dup2(fd, s->fd) < 0) fail(s->path, PH_DUP, errno);
        close(fd);
    }
}

int main(int argc, char **argv) {
    struct spec specs[MAX_SOCKETS];
    int n = 0, i = 1;
    while (i < argc && strcmp(argv[i], "--socket") == 0) {
        if (n == MAX_SOCKETS || i + ARGS_PER_SOCKET >= argc || parse_spec(&argv[i + 1], &specs[n]) != 0) {
            dprintf(2, "skiff-mksock: bad --socket (FD TYPE PASSCRED MODE UID GID PATH)\n");
            return 2;
        }
        n++;
        i += 1 + ARGS_PER_SOCKET;
    }
    if (i + 1 >= argc || strcmp(argv[i], "--") != 0) {
        dprintf(2, "usage: skiff-mksock (--socket FD TYPE PASSCRED MODE UID GID PATH)... -- <program> [args...]\n");
        return 2;
    }
    /* Every target fd first, so a socket() result can never land on a later target. */
    for (int k = 0; k < n; k++) {
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull < 0 || dup2(devnull, specs[k].fd) < 0) fail(specs[k].path, PH_DUP, errno);
        if (devnull != specs[k].fd) close(devnull);
    }
    for (int k = 0; k < n; k++) make_socket(&specs[k]);
    execv(argv[i + 1], &argv[i + 1]);
    int err = errno;
    dprintf(2, "skiff-mksock: exec %s: %s\n", argv[i + 1], strerror(err));
    for (int k = 0; k < n_made; k++) unlink(made[k]);
    return 1;
}
