// The C ABI target has no code; this file pins the layout of the ABI structs.
#include "sluice.h"
_Static_assert(sizeof(sluice_batch) == 96, "sluice_batch layout changed: ABI break");
_Static_assert(offsetof(sluice_plugin_v1, create) == 64, "sluice_plugin_v1 prefix layout changed: ABI break");
_Static_assert(sizeof(sluice_batch_info) == 24, "sluice_batch_info layout changed");
