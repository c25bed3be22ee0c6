/* The overload benchmark's slow stage: a map function that busy-waits a fixed time per value, so a pipeline's
 * capacity is known and the same with and without backpressure. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <time.h>

#define EXPORT __attribute__((visibility("default")))

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Returns x after spinning SLOW_NS nanoseconds (set at compile time). */
EXPORT int64_t slow(int64_t x) {
    int64_t until = now_ns() + SLOW_NS;
    while (now_ns() < until) {
    }
    return x;
}
