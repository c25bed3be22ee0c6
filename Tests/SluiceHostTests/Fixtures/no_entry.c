/* A shared object without the entry symbol: not a Sluice plugin. */
#include "sluice.h"

SLUICE_EXPORT int not_a_plugin(void) { return 42; }
