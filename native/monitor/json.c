#include "json.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "fmt.h"

#define MAX_DEPTH 32

struct scan {
    const char *p, *end;
};

static void skip_ws(struct scan *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) s->p++;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static void put_utf8(char *out, size_t outsz, size_t *n, unsigned cp) {
    char tmp[4];
    size_t k;
    if (cp < 0x80) {
        tmp[0] = (char)cp;
        k = 1;
    } else if (cp < 0x800) {
        tmp[0] = (char)(0xc0 | (cp >> 6));
        tmp[1] = (char)(0x80 | (cp & 0x3f));
        k = 2;
    } else {
        tmp[0] = (char)(0xe0 | (cp >> 12));
        tmp[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        tmp[2] = (char)(0x80 | (cp & 0x3f));
        k = 3;
    }
    for (size_t i = 0; i < k; i++) {
        if (out && *n + 1 < outsz) out[*n] = tmp[i];
        (*n)++;
    }
}

/* Parses a string at s->p (which must be '"'). Decoded bytes go to out when
 * given (truncated to outsz-1, NUL-terminated); *decoded gets the full length. */
static int parse_string(struct scan *s, char *out, size_t outsz, size_t *decoded) {
    size_t n = 0;
    if (s->p >= s->end || *s->p != '"') return -1;
    s->p++;
    while (s->p < s->end) {
        char c = *s->p++;
        if (c == '"') {
            if (out && outsz > 0) out[n < outsz ? n : outsz - 1] = '\0';
            if (decoded) *decoded = n;
            return 0;
        }
        if ((unsigned char)c < 0x20) return -1;
        if (c == '\\') {
            if (s->p >= s->end) return -1;
            char e = *s->p++;
            unsigned cp;
            switch (e) {
            case '"': case '\\': case '/': cp = (unsigned char)e; break;
            case 'b': cp = '\b'; break;
            case 'f': cp = '\f'; break;
            case 'n': cp = '\n'; break;
            case 'r': cp = '\r'; break;
            case 't': cp = '\t'; break;
            case 'u':
                if (s->end - s->p < 4) return -1;
                cp = 0;
                for (int i = 0; i < 4; i++) {
                    int v = hexval(s->p[i]);
                    if (v < 0) return -1;
                    cp = cp * 16 + (unsigned)v;
                }
                s->p += 4;
                break;
            default: return -1;
            }
            put_utf8(out, outsz, &n, cp);
            continue;
        }
        if (out && n + 1 < outsz) out[n] = c;
        n++;
    }
    return -1;
}

static int parse_number(struct scan *s, long long *out, int *is_integer) {
    const char *start = s->p;
    int integer = 1;
    if (s->p < s->end && *s->p == '-') s->p++;
    if (s->p >= s->end || *s->p < '0' || *s->p > '9') return -1;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9') s->p++;
    if (s->p < s->end && *s->p == '.') {
        integer = 0;
        s->p++;
        if (s->p >= s->end || *s->p < '0' || *s->p > '9') return -1;
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9') s->p++;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        integer = 0;
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-')) s->p++;
        if (s->p >= s->end || *s->p < '0' || *s->p > '9') return -1;
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9') s->p++;
    }
    if (out) {
        char tmp[32];
        size_t n = (size_t)(s->p - start);
        if (!integer || n >= sizeof(tmp)) {
            integer = 0;
        } else {
            memcpy(tmp, start, n);
            tmp[n] = '\0';
            *out = strtoll(tmp, NULL, 10);
        }
    }
    if (is_integer) *is_integer = integer;
    return 0;
}

static int match_word(struct scan *s, const char *w) {
    size_t n = strlen(w);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0) return -1;
    s->p += n;
    return 0;
}

static int skip_value(struct scan *s, int depth);

static int skip_container(struct scan *s, int depth, char close, int keyed) {
    if (depth > MAX_DEPTH) return -1;
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        return 0;
    }
    for (;;) {
        if (keyed) {
            skip_ws(s);
            if (parse_string(s, NULL, 0, NULL) < 0) return -1;
            skip_ws(s);
            if (s->p >= s->end || *s->p++ != ':') return -1;
        }
        if (skip_value(s, depth + 1) < 0) return -1;
        skip_ws(s);
        if (s->p >= s->end) return -1;
        char c = *s->p++;
        if (c == close) return 0;
        if (c != ',') return -1;
    }
}

static int skip_value(struct scan *s, int depth) {
    skip_ws(s);
    if (s->p >= s->end) return -1;
    switch (*s->p) {
    case '"': return parse_string(s, NULL, 0, NULL);
    case '{': return skip_container(s, depth, '}', 1);
    case '[': return skip_container(s, depth, ']', 0);
    case 't': return match_word(s, "true");
    case 'f': return match_word(s, "false");
    case 'n': return match_word(s, "null");
    default: return parse_number(s, NULL, NULL);
    }
}

enum want { WANT_STRING, WANT_INT, WANT_BOOL };

/* Walks the whole object (so malformed text is always rejected) and decodes
 * the member named key, if present, as the wanted type. */
static int lookup(const char *js, size_t len, const char *key, enum want want, char *sout, size_t soutsz,
                  long long *iout) {
    struct scan s = {js, js + len};
    int found = 0;
    skip_ws(&s);
    if (s.p >= s.end || *s.p != '{') return -1;
    s.p++;
    skip_ws(&s);
    if (s.p < s.end && *s.p == '}') {
        s.p++;
        goto tail;
    }
    for (;;) {
        char name[64];
        size_t name_len;
        skip_ws(&s);
        if (parse_string(&s, name, sizeof(name), &name_len) < 0) return -1;
        skip_ws(&s);
        if (s.p >= s.end || *s.p++ != ':') return -1;
        skip_ws(&s);
        int is_key = name_len == strlen(key) && name_len < sizeof(name) && strcmp(name, key) == 0;
        if (is_key && !found && want == WANT_STRING && s.p < s.end && *s.p == '"') {
            if (parse_string(&s, sout, soutsz, NULL) < 0) return -1;
            found = 1;
        } else if (is_key && !found && want == WANT_INT && s.p < s.end && (*s.p == '-' || (*s.p >= '0' && *s.p <= '9'))) {
            int integer;
            if (parse_number(&s, iout, &integer) < 0) return -1;
            found = integer;
        } else if (is_key && !found && want == WANT_BOOL && s.p < s.end && (*s.p == 't' || *s.p == 'f')) {
            int t = *s.p == 't';
            if (match_word(&s, t ? "true" : "false") < 0) return -1;
            *iout = t;
            found = 1;
        } else if (skip_value(&s, 1) < 0) {
            return -1;
        }
        skip_ws(&s);
        if (s.p >= s.end) return -1;
        char c = *s.p++;
        if (c == '}') break;
        if (c != ',') return -1;
    }
tail:
    skip_ws(&s);
    return s.p == s.end ? found : -1;
}

int json_get_string(const char *js, size_t len, const char *key, char *out, size_t outsz) {
    return lookup(js, len, key, WANT_STRING, out, outsz, NULL);
}

int json_get_int(const char *js, size_t len, const char *key, long long *out) {
    return lookup(js, len, key, WANT_INT, NULL, 0, out);
}

int json_get_bool(const char *js, size_t len, const char *key, int *out) {
    long long v = 0;
    int r = lookup(js, len, key, WANT_BOOL, NULL, 0, &v);
    if (r == 1) *out = (int)v;
    return r;
}

void sb_init(struct sbuf *b) { memset(b, 0, sizeof(*b)); }

void sb_free(struct sbuf *b) {
    free(b->data);
    sb_init(b);
}

static int sb_reserve(struct sbuf *b, size_t extra) {
    if (b->failed) return -1;
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) {
        b->failed = 1;
        return -1;
    }
    b->data = d;
    b->cap = cap;
    return 0;
}

void sb_putn(struct sbuf *b, const char *s, size_t n) {
    if (sb_reserve(b, n) < 0) return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void sb_puts(struct sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }

void sb_printf(struct sbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = fmt_vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || sb_reserve(b, (size_t)n) < 0) return;
    va_start(ap, fmt);
    fmt_vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void sb_json_string(struct sbuf *b, const char *s, size_t n) {
    sb_putn(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            sb_putn(b, esc, 2);
        } else if (c < 0x20 || c == 0x7f) {
            sb_printf(b, "\\u%04x", c);
        } else {
            sb_putn(b, (const char *)&c, 1);
        }
    }
    sb_putn(b, "\"", 1);
}
