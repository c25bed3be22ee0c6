/* The function-library benchmark's functions: the same arithmetic, one value per call and a batch per call. */
#include <stdint.h>

#define EXPORT __attribute__((visibility("default")))

EXPORT double scale(double x) { return x * 1.8 + 32.0; }

EXPORT void scale_batch(const double *in, double *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = in[i] * 1.8 + 32.0;
}
