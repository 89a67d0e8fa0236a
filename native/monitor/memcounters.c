#include "memcounters.h"

#include <stdlib.h>
#include <string.h>

const char *const mem_field_names[MEM_FIELDS] = {"low", "high", "max", "oom", "oom_kill", "oom_group_kill"};

int flat_keyed_get(const char *text, const char *key, unsigned long long *out) {
    size_t key_len = strlen(key);
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        if (!end) end = line + strlen(line);
        if ((size_t)(end - line) > key_len && strncmp(line, key, key_len) == 0 && line[key_len] == ' ') {
            char *stop;
            unsigned long long v = strtoull(line + key_len + 1, &stop, 10);
            if (stop != line + key_len + 1) {
                *out = v;
                return 1;
            }
        }
        line = *end ? end + 1 : end;
    }
    return 0;
}

void mem_counters_v2(const char *events_text, struct mem_counters *c) {
    memset(c, 0, sizeof(*c));
    for (int f = 0; f < MEM_FIELDS; f++) flat_keyed_get(events_text, mem_field_names[f], &c->v[f]);
}

void mem_counters_v1(const char *oom_control_text, const char *failcnt_text, const char *memsw_failcnt_text,
                     struct mem_counters *c) {
    unsigned long long kills = 0;
    memset(c, 0, sizeof(*c));
    flat_keyed_get(oom_control_text, "oom_kill", &kills);
    c->v[MEM_MAX] = strtoull(failcnt_text, NULL, 10) + (memsw_failcnt_text ? strtoull(memsw_failcnt_text, NULL, 10) : 0);
    c->v[MEM_OOM] = kills;
    c->v[MEM_OOM_KILL] = kills;
}

int mem_delta(const struct mem_counters *prev, const struct mem_counters *next, struct mem_counters *delta) {
    int changed = 0;
    for (int f = 0; f < MEM_FIELDS; f++) {
        delta->v[f] = next->v[f] >= prev->v[f] ? next->v[f] - prev->v[f] : next->v[f];
        if (delta->v[f]) changed = 1;
    }
    return changed;
}
