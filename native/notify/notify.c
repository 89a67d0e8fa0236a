/*
 * skiff-notify: carries skiffd's sd_notify messages to systemd.
 *
 * Node has no Unix datagram sockets, and a `systemd-notify` process per message
 * races: systemd may look the sender up after it has exited and no longer
 * attribute the message to the service. So skiffd spawns this helper once, as
 * a long-lived child, and feeds it over a pipe (its stdin).
 *
 * Wire format (stdin): one message per line, '\n'-terminated, at most
 * MAX_MESSAGE bytes without the newline; each line is sent as one datagram
 * (without the newline), e.g. "READY=1", "WATCHDOG=1", "STOPPING=1",
 * "STATUS=...". A longer line is dropped whole and reported on stderr. EOF on
 * stdin: the helper exits 0. Nothing is written to stdout.
 *
 * Destination: $NOTIFY_SOCKET, a filesystem path or, starting with '@', an
 * abstract socket name (as sd_notify(3)). The datagram carries SCM_CREDENTIALS
 * naming the helper's parent (skiffd, the service's main process) as sender,
 * as sd_pid_notify(3) does, so the unit's default NotifyAccess=main accepts
 * it; only root may name another pid, so when the kernel refuses (EPERM) the
 * helper sends without credentials (the unit then needs NotifyAccess=all).
 *
 * $SKIFF_NOTIFY_PARENT, when set, is the pid skiffd expects to be the
 * helper's parent: if the parent is already another process (skiffd died
 * before the helper ran), the helper exits at once.
 *
 * The helper ends when its parent does (PR_SET_PDEATHSIG): it never outlives
 * skiffd. Exit status: 0 at EOF, 2 on bad usage or a bad $NOTIFY_SOCKET.
 */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_MESSAGE 4096

/* Reading stdin: a line is being collected (READING) or, after it grew past
 * MAX_MESSAGE, skipped up to its newline (SKIPPING). */
enum phase { READING, SKIPPING };

static int open_target(struct sockaddr_un *addr, socklen_t *len) {
    const char *path = getenv("NOTIFY_SOCKET");
    size_t n = path ? strlen(path) : 0;
    if (n == 0 || n >= sizeof(addr->sun_path) || (path[0] != '/' && path[0] != '@')) {
        fprintf(stderr, "skiff-notify: NOTIFY_SOCKET must be an absolute path or @name\n");
        return -1;
    }
    memset(addr, 0, sizeof(*addr));
    addr->sun_family = AF_UNIX;
    memcpy(addr->sun_path, path, n);
    if (path[0] == '@') addr->sun_path[0] = '\0';
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '@' ? 0 : 1));
    return socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
}

/* One datagram with the parent's credentials; without them if the kernel refuses those. */
static void send_message(int fd, const struct sockaddr_un *addr, socklen_t len, const char *msg, size_t n,
                         int *with_creds) {
    struct iovec iov = {.iov_base = (void *)msg, .iov_len = n};
    union {
        char buf[CMSG_SPACE(sizeof(struct ucred))];
        struct cmsghdr align;
    } control;
    struct msghdr mh = {.msg_name = (void *)addr, .msg_namelen = len, .msg_iov = &iov, .msg_iovlen = 1};
    if (*with_creds) {
        memset(&control, 0, sizeof(control));
        mh.msg_control = control.buf;
        mh.msg_controllen = sizeof(control.buf);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_CREDENTIALS;
        c->cmsg_len = CMSG_LEN(sizeof(struct ucred));
        struct ucred cred = {.pid = getppid(), .uid = getuid(), .gid = getgid()};
        memcpy(CMSG_DATA(c), &cred, sizeof(cred));
    }
    for (;;) {
        if (sendmsg(fd, &mh, MSG_NOSIGNAL) >= 0) return;
        if (errno == EINTR) continue;
        if (errno == EPERM && *with_creds) {
            *with_creds = 0;
            mh.msg_control = NULL;
            mh.msg_controllen = 0;
            continue;
        }
        fprintf(stderr, "skiff-notify: sending %.*s: %s\n", (int)n, msg, strerror(errno));
        return;
    }
}

int main(int argc, char **argv) {
    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: skiff-notify < MESSAGES (one per line; NOTIFY_SOCKET set)\n");
        return 2;
    }
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    const char *parent = getenv("SKIFF_NOTIFY_PARENT");
    if (parent != NULL && strtol(parent, NULL, 10) != (long)getppid()) return 0; /* skiffd is already gone */
    struct sockaddr_un addr;
    socklen_t len;
    int fd = open_target(&addr, &len);
    if (fd < 0) return 2;
    int with_creds = 1;
    char line[MAX_MESSAGE];
    size_t used = 0;
    enum phase phase = READING;
    char buf[8192];
    for (;;) {
        ssize_t got = read(0, buf, sizeof(buf));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return 0;
        for (ssize_t i = 0; i < got; i++) {
            char ch = buf[i];
            switch (phase) {
            case READING:
                if (ch == '\n') {
                    if (used > 0) send_message(fd, &addr, len, line, used, &with_creds);
                    used = 0;
                } else if (used == sizeof(line)) {
                    fprintf(stderr, "skiff-notify: a message longer than %d bytes was dropped\n", MAX_MESSAGE);
                    phase = SKIPPING;
                } else {
                    line[used++] = ch;
                }
                break;
            case SKIPPING:
                if (ch == '\n') {
                    used = 0;
                    phase = READING;
                }
                break;
            }
        }
    }
}
