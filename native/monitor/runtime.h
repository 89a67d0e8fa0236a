/* Invoking the OCI runtime (runc, crun) for one container. */
#ifndef SKIFF_RUNTIME_H
#define SKIFF_RUNTIME_H
#include <stddef.h>
#include <sys/types.h>

struct runtime {
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

/* Runs `<runtime> --root R <args...> <id> [tail]` with stdio on /dev/null and
 * waits at most timeout_ms (then SIGKILLs it). Returns its wait status or -1. */
int runtime_run(const struct runtime *rt, const char *const *args, const char *tail, int timeout_ms);

/* Starts a created container the way `runc start` does: open the exec fifo
 * for reading, read its byte, unlink it. On failure writes a message to err. */
int runtime_start_via_fifo(const struct runtime *rt, int timeout_ms, char *err, size_t errsz);

#endif
