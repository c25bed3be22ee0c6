/* The target's functions are static inline in include/sluice_prefetch.h; SwiftPM needs one source file to build a
 * C target. */
#include "sluice_prefetch.h"
