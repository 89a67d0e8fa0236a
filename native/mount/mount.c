/*
 * skiff-mount: the mount(2) calls of src/daemon/mount/file-mount.ts, which Node cannot make.
 *
 * Usage:
 *   skiff-mount loop FILE OFFSET SIZE TARGET FSTYPE FLAGS DATA
 *       SIZE bytes of the regular file FILE from OFFSET on a new loop device (read-only,
 *       autoclear), mounted on TARGET; prints the device ("/dev/loopN\n").
 *   skiff-mount file SOURCE TARGET FSTYPE FLAGS DATA
 *       mount(SOURCE, TARGET, FSTYPE, FLAGS, DATA) of a regular file (erofs, Linux >= 6.12).
 * OFFSET, SIZE and FLAGS are decimal; SIZE > 0 and OFFSET + SIZE within the file.
 *
 * Exit status: 0 done; 2 usage or a refused argument (not a regular file, a bad number, a range
 * outside the file); 1 a failed call. On failure, one line on stderr: the call and errno's text.
 *
 * Why a helper: it replaced one perl process per mount (perl's syscall() and ioctl()); this is
 * static against musl and does the same three steps. Phases of `loop`: OPEN (the file, checked
 * regular, the range checked against its size) -> ATTACH (LOOP_CTL_GET_FREE, then LOOP_CONFIGURE
 * with LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR; a device another process configured in between
 * answers EBUSY and the next free one is asked for, up to MAX_TRIES (the same device offered
 * again is still being released: asked again after a pause that grows to 50 ms, ~4 s in all);
 * kernels before 5.8 answer EINVAL/ENOTTY and get LOOP_SET_FD + LOOP_SET_STATUS64) -> MOUNT.
 *
 * INVARIANTS: with AUTOCLEAR the device detaches when its last user goes: if the mount fails,
 * closing our descriptor releases it, so a failure leaves nothing attached; on success the mount
 * holds it until unmounted.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef LOOP_CONFIGURE
#define LOOP_CONFIGURE 0x4C0A
struct loop_config {
    __u32 fd;
    __u32 block_size;
    struct loop_info64 info;
    __u64 __reserved[8];
};
#endif

#define MAX_TRIES 100

enum exit_code { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

static int fail(int code, const char *what, const char *arg) {
    if (arg)
        fprintf(stderr, "%s %s: %s\n", what, arg, strerror(errno));
    else
        fprintf(stderr, "%s: %s\n", what, strerror(errno));
    return code;
}

static int refuse(const char *fmt, const char *arg) {
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    return EXIT_USAGE;
}

/* A decimal in [0, 2^63); -1 if it is not one. */
static long long decimal(const char *s) {
    if (*s < '0' || *s > '9') return -1;
    long long v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (0x7fffffffffffffffLL - 9) / 10) return -1;
        v = v * 10 + (*s - '0');
    }
    return v;
}

static int do_mount(const char *source, const char *target, const char *type, const char *flags_s,
                    const char *data) {
    long long flags = decimal(flags_s);
    if (flags < 0 || flags > 0xffffffffLL) return refuse("bad mount flags %s", flags_s);
    if (mount(source, target, type, (unsigned long)flags, data) < 0) {
        fprintf(stderr, "mount(%s, %s, %s, %s): %s\n", source, target, type, data, strerror(errno));
        return EXIT_FAILED;
    }
    return EXIT_OK;
}

static int loop_mount(char **a) {
    const char *file = a[0], *target = a[3], *type = a[4], *flags = a[5], *data = a[6];
    long long offset = decimal(a[1]), size = decimal(a[2]);
    if (offset < 0) return refuse("bad offset %s", a[1]);
    if (size <= 0) return refuse("bad size %s", a[2]);
    int img = open(file, O_RDONLY | O_CLOEXEC);
    if (img < 0) return fail(EXIT_FAILED, "open", file);
    struct stat st;
    if (fstat(img, &st) < 0) return fail(EXIT_FAILED, "stat", file);
    if (!S_ISREG(st.st_mode)) return refuse("%s: not a regular file", file);
    if (offset > st.st_size || size > st.st_size - offset) return refuse("%s: range outside the file", file);
    int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
    if (ctl < 0) return fail(EXIT_FAILED, "open", "/dev/loop-control");

    struct loop_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.fd = (__u32)img;
    cfg.info.lo_offset = (__u64)offset;
    cfg.info.lo_sizelimit = (__u64)size;
    cfg.info.lo_flags = LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR;
    strncpy((char *)cfg.info.lo_file_name, file, LO_NAME_SIZE - 1);

    char path[32];
    int dev = -1;
    int last = -1;
    for (int try = 0; try < MAX_TRIES && dev < 0; try++) {
        int n = ioctl(ctl, LOOP_CTL_GET_FREE);
        if (n < 0) return fail(EXIT_FAILED, "LOOP_CTL_GET_FREE", NULL);
        snprintf(path, sizeof(path), "/dev/loop%d", n);
        dev = open(path, O_RDONLY | O_CLOEXEC);
        if (dev < 0) return fail(EXIT_FAILED, "open", path);
        int ok = ioctl(dev, LOOP_CONFIGURE, &cfg) == 0;
        if (!ok && (errno == EINVAL || errno == ENOTTY)) {
            ok = ioctl(dev, LOOP_SET_FD, img) == 0;
            if (ok && ioctl(dev, LOOP_SET_STATUS64, &cfg.info) < 0) {
                int e = errno;
                ioctl(dev, LOOP_CLR_FD, 0);
                errno = e;
                ok = 0;
            }
        }
        if (ok) break;
        if (errno != EBUSY) return fail(EXIT_FAILED, "configuring", path);
        close(dev);
        dev = -1;
        /* The same device offered again: it is still claimed (a mount or an autoclear of the
         * image released just before is finishing), so give it a moment, growing, before asking
         * again; a different one was taken by another process, and is asked again at once. */
        if (n == last) {
            struct timespec pause = {0, 1000000L * (try < 50 ? try : 50)};
            nanosleep(&pause, NULL);
        }
        last = n;
    }
    if (dev < 0) {
        fprintf(stderr, "no free loop device\n");
        return EXIT_FAILED;
    }
    int code = do_mount(path, target, type, flags, data);
    if (code == EXIT_OK) printf("%s\n", path);
    return code;
}

int main(int argc, char **argv) {
    if (argc == 9 && strcmp(argv[1], "loop") == 0) return loop_mount(argv + 2);
    if (argc == 7 && strcmp(argv[1], "file") == 0) {
        struct stat st;
        if (stat(argv[2], &st) < 0) return fail(EXIT_FAILED, "stat", argv[2]);
        if (!S_ISREG(st.st_mode)) return refuse("%s: not a regular file", argv[2]);
        return do_mount(argv[2], argv[3], argv[4], argv[5], argv[6]);
    }
    fprintf(stderr, "usage: skiff-mount loop FILE OFFSET SIZE TARGET FSTYPE FLAGS DATA\n"
                    "       skiff-mount file SOURCE TARGET FSTYPE FLAGS DATA\n");
    return EXIT_USAGE;
}
