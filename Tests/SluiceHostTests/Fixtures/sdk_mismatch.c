/* A plugin the loader must refuse: built with another SDK major */
#include <stdlib.h>
#include "sluice.h"

static int32_t create(const sluice_plugin_v1 *self, const sluice_host_api *host, const char *cfg, size_t len,
                      void **instance) {
    (void)self; (void)host; (void)cfg; (void)len;
    *instance = NULL;
    return SLUICE_ERR;
}
static void destroy(void *instance) { (void)instance; }
static const char *last_error(void *instance) { (void)instance; return "test plugin"; }
static int32_t transform(void *instance, const sluice_batch *in, sluice_batch *out) {
    (void)instance; (void)in; (void)out;
    return SLUICE_ERR;
}

static const sluice_plugin_v1 descriptor = {
    .struct_size = sizeof(sluice_plugin_v1),
    .abi_version = SLUICE_ABI_VERSION,
    .kind = SLUICE_KIND_TRANSFORM,
    .name = "future-sdk",
    .version = "1.0.0",
    .description = "built with another SDK major",
    .build_info = "toolchain=c;sdk=9.0.0",
    .config_schema = "{}",
    .create = create,
    .destroy = destroy,
    .last_error = last_error,
    .transform = transform,
};

SLUICE_EXPORT const sluice_plugin_v1 *sluice_plugin_entry_v1(uint32_t host_abi_version) {
    (void)host_abi_version;
    return &descriptor;
}
