/* A function library for the libffi tests: plain C functions, no Sluice header. */
#include <stdbool.h>
#include <stdint.h>

#define EXPORT __attribute__((visibility("default")))

EXPORT double c_to_f(double c) { return c * 9.0 / 5.0 + 32.0; }

EXPORT void c_to_f_batch(const double *in, double *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = in[i] * 9.0 / 5.0 + 32.0;
}

/* Returns C bool: one byte, so the host must declare a one-byte return to libffi. */
EXPORT bool is_hot(double c) { return c > 30.0; }

EXPORT void is_hot_batch(const double *in, uint8_t *keep, int64_t n) {
    for (int64_t i = 0; i < n; i++) keep[i] = in[i] > 30.0;
}

EXPORT int32_t is_even(int64_t v) { return v % 2 == 0; }

EXPORT int64_t square(int64_t v) { return v * v; }

EXPORT int64_t add(int64_t a, int64_t b) { return a + b; }

EXPORT void add_batch(const int64_t *a, const int64_t *b, int64_t *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}
