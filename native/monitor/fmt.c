#include "fmt.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

struct out {
    char *buf;
    size_t size, len; /* len counts every byte produced, also past size */
};

static void put(struct out *o, char c) {
    if (o->len + 1 < o->size) o->buf[o->len] = c;
    o->len++;
}

static void put_str(struct out *o, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) put(o, s[i]);
}

static void put_num(struct out *o, unsigned long long v, int negative, unsigned base, int width, char pad) {
    char digits[24]; /* 2^64 has 20 decimal digits */
    int n = 0;
    do {
        digits[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v > 0);
    int len = n + negative;
    if (negative && pad == '0') put(o, '-');
    for (; width > len; width--) put(o, pad);
    if (negative && pad != '0') put(o, '-');
    while (n > 0) put(o, digits[--n]);
}

int fmt_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap) {
    struct out o = {buf, size, 0};
    for (const char *p = fmt; *p; p++) {
        if (*p != '%') {
            put(&o, *p);
            continue;
        }
        const char *spec = p++;
        char pad = ' ';
        int width = 0, precision = -1, longs = 0;
        if (*p == '0') {
            pad = '0';
            p++;
        }
        while (*p >= '0' && *p <= '9') width = width * 10 + (*p++ - '0');
        if (p[0] == '.' && p[1] == '*') {
            precision = va_arg(ap, int);
            p += 2;
        }
        while (*p == 'l' && longs < 2) {
            longs++;
            p++;
        }
        switch (*p) {
        case '%': put(&o, '%'); break;
        case 'c': put(&o, (char)va_arg(ap, int)); break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (!s) s = "(null)";
            size_t n = precision >= 0 ? strnlen(s, (size_t)precision) : strlen(s);
            for (; width > (int)n; width--) put(&o, ' ');
            put_str(&o, s, n);
            break;
        }
        case 'd':
        case 'i': {
            long long v = longs == 2 ? va_arg(ap, long long) : longs == 1 ? va_arg(ap, long) : va_arg(ap, int);
            unsigned long long mag = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
            put_num(&o, mag, v < 0, 10, width, pad);
            break;
        }
        case 'u':
        case 'x': {
            unsigned long long v = longs == 2   ? va_arg(ap, unsigned long long)
                                   : longs == 1 ? va_arg(ap, unsigned long)
                                                : va_arg(ap, unsigned);
            put_num(&o, v, 0, *p == 'x' ? 16 : 10, width, pad);
            break;
        }
        default: /* not supported: copy the conversion through so the mistake is visible */
            if (!*p) p--;
            put_str(&o, spec, (size_t)(p - spec + 1));
        }
    }
    if (size > 0) buf[o.len < size ? o.len : size - 1] = '\0';
    return (int)o.len;
}

int fmt_snprintf(char *buf, size_t size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = fmt_vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

void fmt_err(const char *fmt, ...) {
    char line[1024];
    int saved = errno;
    va_list ap;
    va_start(ap, fmt);
    int n = fmt_vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n >= sizeof(line) ? sizeof(line) - 1 : (size_t)n;
    for (size_t off = 0; off < len;) {
        ssize_t w = write(2, line + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        off += (size_t)w;
    }
    errno = saved;
}
