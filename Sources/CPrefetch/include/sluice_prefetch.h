#ifndef SLUICE_PREFETCH_H
#define SLUICE_PREFETCH_H

/* A hint that `address` will be read soon: the hash tables fetch the slots and entries of keys a few records ahead,
 * so that their cache misses overlap instead of following one another. Swift has no prefetch of its own; a static
 * inline function is compiled into the Swift caller. A prefetch never faults, whatever the address. */
static inline void sluice_prefetch(const void *address) {
    __builtin_prefetch(address, 0, 3);
}

#endif
