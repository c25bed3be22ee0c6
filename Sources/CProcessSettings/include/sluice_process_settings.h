#ifndef SLUICE_PROCESS_SETTINGS_H
#define SLUICE_PROCESS_SETTINGS_H

#if defined(__GLIBC__) || defined(__linux__)
#include <malloc.h>
#endif

/* One malloc arena for the whole process, for the sluice executable to choose before it starts any thread.
 * glibc's <malloc.h> is not part of Swift's Glibc module, so this is C. Elsewhere it does nothing. */
static inline void sluice_use_one_malloc_arena(void) {
#if defined(M_ARENA_MAX)
    (void)mallopt(M_ARENA_MAX, 1);
#endif
}

#endif
