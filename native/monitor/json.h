/* Just enough JSON for the monitor protocol: reading members of one flat
 * object (nested values are validated and skipped) and building output. */
#ifndef SKIFF_JSON_H
#define SKIFF_JSON_H
#include <stddef.h>

/* Each getter returns 1 when the member exists with the right type, 0 when it
 * is absent (or has another type), -1 when the text is not one JSON object. */
int json_get_string(const char *js, size_t len, const char *key, char *out, size_t outsz);
int json_get_int(const char *js, size_t len, const char *key, long long *out);
int json_get_bool(const char *js, size_t len, const char *key, int *out);

/* Growable output buffer; after an allocation failure `failed` stays set and
 * further appends are ignored. */
struct sbuf {
    char *data;
    size_t len, cap;
    int failed;
};
void sb_init(struct sbuf *b);
void sb_free(struct sbuf *b);
void sb_putn(struct sbuf *b, const char *s, size_t n);
void sb_puts(struct sbuf *b, const char *s);
void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a quoted JSON string. */
void sb_json_string(struct sbuf *b, const char *s, size_t n);

#endif
