/* Memory event counters of a cgroup (Northstar's MemoryEvent fields) and
 * their deltas. Pure code: parsing and arithmetic only. */
#ifndef SKIFF_MEMCOUNTERS_H
#define SKIFF_MEMCOUNTERS_H

enum mem_field { MEM_LOW, MEM_HIGH, MEM_MAX, MEM_OOM, MEM_OOM_KILL, MEM_OOM_GROUP_KILL, MEM_FIELDS };

/* The protocol's member names, indexed by enum mem_field. */
extern const char *const mem_field_names[MEM_FIELDS];

struct mem_counters {
    unsigned long long v[MEM_FIELDS];
};

/* Value of `key` in a flat keyed file ("key value" lines). 1: found, 0: absent. */
int flat_keyed_get(const char *text, const char *key, unsigned long long *out);

/* cgroup v2: memory.events has every field. */
void mem_counters_v2(const char *events_text, struct mem_counters *c);

/* cgroup v1 has no low/high/group events and no OOM counter: max is
 * memory.failcnt plus memory.memsw.failcnt (times a charge hit the memory or
 * the memory+swap limit; one failed charge counts in one of them; memsw_text
 * may be NULL without swap accounting), oom and oom_kill are
 * memory.oom_control's oom_kill (a v1 OOM ends in a kill unless
 * oom_kill_disable is set). */
void mem_counters_v1(const char *oom_control_text, const char *failcnt_text, const char *memsw_failcnt_text,
                     struct mem_counters *c);

/* delta = next - prev per field; a counter that went down was reset (v1
 * failcnt can be written to) and counts from zero. Returns 1 if any field
 * of delta is non-zero. */
int mem_delta(const struct mem_counters *prev, const struct mem_counters *next, struct mem_counters *delta);

#endif
