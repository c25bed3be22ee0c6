// The C ABI target has no code; this file pins the layout of the ABI structs.
#include "sluice.h"
/* Included so that every build (and CI's -pedantic check of this file) compiles the configuration helper too. */
#include "sluice_config.h"
_Static_assert(sizeof(sluice_batch) == 96, "sluice_batch layout changed: ABI break");
_Static_assert(sizeof(sluice_batch) == SLUICE_BATCH_SIZE_1_0, "sluice_batch grew: update SLUICE_BATCH_SIZE_1_0's use");
_Static_assert(offsetof(sluice_plugin_v1, reduce_value_type) == SLUICE_PLUGIN_V1_SIZE_1_0,
               "the ABI 1.0 descriptor ends where ABI 1.1's fields begin");
_Static_assert(offsetof(sluice_plugin_v1, create) == 64, "sluice_plugin_v1 prefix layout changed: ABI break");
_Static_assert(sizeof(sluice_batch_info) == 24, "sluice_batch_info layout changed");
_Static_assert(offsetof(sluice_plugin_v1, update_state) == SLUICE_PLUGIN_V1_SIZE_1_1, "the 1.1 descriptor fields changed");
_Static_assert(sizeof(sluice_plugin_v1) == SLUICE_PLUGIN_V1_SIZE_1_3, "sluice_plugin_v1 grew: add a SLUICE_PLUGIN_V1_SIZE_1_x");
_Static_assert(sizeof(sluice_state_update) == 48, "sluice_state_update layout changed");
_Static_assert(sizeof(sluice_state_result) == 24, "sluice_state_result layout changed");
