/* Invoking the OCI runtime (runc, crun) for one container. */
#ifndef SKIFF_RUNTIME_H
#define SKIFF_RUNTIME_H
#include <stddef.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

/* close_range(2) (Linux 5.9) through syscall(2): musl 1.2.3 has no wrapper. */
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
static inline int close_fd_range(unsigned first, unsigned last) {
    return (int)syscall(SYS_close_range, first, last, 0u);
}

/* Which side of the exec fifo the runtime's init holds while it waits for its
 * start. runc: init opens `<root>/<id>/exec.fifo` for writing and blocks until
 * `runc start` reads the byte. crun (1.8.1): the same path, reversed: init
 * reads, and `crun start` opens it for writing and writes one byte. */
enum runtime_kind { RUNTIME_RUNC, RUNTIME_CRUN };

struct runtime {
    enum runtime_kind kind;
    const char *path; /* runtime binary */
    const char *root; /* runtime state root (--root) */
    const char *id;   /* container id */
};

/* Child fds for `create`: fd 3 is the status pipe, extra[i] becomes 4+i. */
struct create_fds {
    int in, out, err, status;
    const int *extra;
    int n_extra;
};

/* Spawns `<runtime> --root R create --bundle B --pid-file P --preserve-fds N <id>`. */
pid_t runtime_create(const struct runtime *rt, const char *bundle, const char *pid_file, const struct create_fds *fds);

/* Spawns `<runtime> --root R restore --detach --image-path I --work-path I
 * --bundle B --pid-file P <id>`. The runtime has no --preserve-fds for restore:
 * CRIU reconnects only the pipes the image's descriptors.json lists, each to the
 * restore command's fd of the same index. The daemon lists init's status pipe
 * there as entry 0 (the container's stdin was /dev/null, which CRIU reopens by
 * path), so the status pipe's write end is the command's stdin here, and the
 * restored init's fd 3 becomes it. fds->in is unused. */
pid_t runtime_restore(const struct runtime *rt, const char *image_dir, const char *bundle, const char *pid_file,
                      const struct create_fds *fds);

/* Runs `<runtime> --root R <args...> <id> [tail]` with stdio on /dev/null and
 * waits at most timeout_ms (then SIGKILLs it). Returns its wait status or -1. */
int runtime_run(const struct runtime *rt, const char *const *args, const char *tail, int timeout_ms);

/* Starts a created container the way the runtime's own `start` does. runc:
 * open the exec fifo for reading, read its byte, unlink it. crun: open it for
 * writing (init holds the read end), unlink it, write one byte. On failure
 * writes a message to err. */
int runtime_start_via_fifo(const struct runtime *rt, int timeout_ms, char *err, size_t errsz);

#endif
