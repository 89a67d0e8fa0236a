/* The monitor's one formatter: a printf subset with no stdio and no heap,
 * so a static musl build links neither FILE streams nor their buffers.
 *
 * Conversions: %s %c %d %i %u %x with no length modifier or with l / ll,
 * %% and %.*s. Flags: '0' and a decimal width (as in %03ld, %04x). Anything
 * else is a programming error; -Wformat checks the call sites and an unknown
 * conversion is copied through verbatim.
 *
 * fmt_snprintf has C99 snprintf's contract: it writes at most size bytes
 * including the terminating NUL (size 0: nothing) and returns the length the
 * whole output would have, so `>= size` means truncated. */
#ifndef SKIFF_FMT_H
#define SKIFF_FMT_H
#include <stdarg.h>
#include <stddef.h>

int fmt_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));
int fmt_snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Formats into a 1 KiB stack buffer and writes it to fd 2 with write(2)
 * (truncated beyond that; diagnostics are short). */
void fmt_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
