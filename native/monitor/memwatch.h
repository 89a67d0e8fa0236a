/* Watching a container's memory cgroup for events, from outside the
 * container: v1 through an eventfd registered in cgroup.event_control on
 * memory.oom_control, v2 through poll(POLLPRI) on memory.events. The
 * counters are read on every notification and once more at exit, before
 * the runtime removes the cgroup. */
#ifndef SKIFF_MEMWATCH_H
#define SKIFF_MEMWATCH_H
#include <stddef.h>
#include <stdint.h>

#include "memcounters.h"

struct memwatch {
    const char *dir;       /* the container's memory cgroup; NULL: not watched */
    const char *group_dir; /* the parent group's memory cgroup; NULL: none */
    int version;           /* 1 or 2 once registered, 0 before */
    int fd;                /* v1 eventfd or v2 memory.events; -1 when not watching */
    struct mem_counters current;  /* last read (zero: a fresh cgroup) */
    struct mem_counters reported; /* what MEMORY messages have covered */
    int64_t recheck_at; /* v1: ms (now_ms clock) of the next follow-up read, 0: none */
    int recheck_step;
    int group_baseline_known;
    unsigned long long group_baseline; /* the group's oom_kill at the container's start */
};

/* Records the paths and reads the group's baseline (call at the container's start). */
void memwatch_init(struct memwatch *w, const char *dir, const char *group_dir);

/* Starts watching (call once the runtime has created the cgroup). On failure
 * writes a message to err and returns -1; counters can still be read. */
int memwatch_register(struct memwatch *w, char *err, size_t errsz);

/* What to poll w->fd for. */
short memwatch_poll_events(const struct memwatch *w);

/* Consumes a notification and re-reads the counters. If the cgroup is gone,
 * stops watching (the last counters stay). v1 notifies when the cgroup goes
 * under OOM, before the OOM killer has picked and counted its victim: so
 * follow-up reads are scheduled (memwatch_on_timer). `now` is in ms. */
void memwatch_on_ready(struct memwatch *w, int64_t now);

/* Runs a due follow-up read; returns 1 if it ran. */
int memwatch_on_timer(struct memwatch *w, int64_t now);

/* Re-reads the counters into current. Returns -1 if the cgroup cannot be read. */
int memwatch_read(struct memwatch *w);

/* Counts since the last report; returns 1 if any is non-zero. The caller
 * calls memwatch_mark_reported() once it has sent them. */
int memwatch_unreported(const struct memwatch *w, struct mem_counters *delta);
void memwatch_mark_reported(struct memwatch *w);

/* Whether the OOM killer killed a task of the container: its own oom_kill
 * count (as last read) is above zero, or, when `group_too`, the group's
 * (read now) moved past its baseline. Call before the runtime's delete. */
int memwatch_oom_killed(const struct memwatch *w, int group_too);

void memwatch_close(struct memwatch *w);

#endif
