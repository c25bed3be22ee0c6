/* The target's function is static inline in include/sluice_process_settings.h; SwiftPM needs one source file to
 * build a C target. */
#include "sluice_process_settings.h"
