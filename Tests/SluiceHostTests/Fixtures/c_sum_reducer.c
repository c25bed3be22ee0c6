/* A reducer plugin in C (ABI 1.1): integer sum, with its inverse, over many keys per call.
 * Compiled with -DSLUICE_TEST_OLD_DESCRIPTOR it claims a 1.0-sized descriptor, which a host must refuse; with
 * -DSLUICE_TEST_AS_1_2 it is a reducer as built against the 1.2 header, which a later host must still load. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sluice.h"

typedef struct { char error[256]; } instance_t;

/* The reducer takes no options: any key in the configuration object is refused, by name. */
static int32_t create(const sluice_plugin_v1 *self, const sluice_host_api *host, const char *cfg, size_t len,
                      void **out) {
    (void)self; (void)host;
    instance_t *instance = calloc(1, sizeof *instance);
    if (!instance) return SLUICE_ERR;
    *out = instance;
    size_t start = 0, end = len;
    while (start < end && (cfg[start] == ' ' || cfg[start] == '{')) start++;
    while (end > start && (cfg[end - 1] == ' ' || cfg[end - 1] == '}')) end--;
    if (end > start) {
        snprintf(instance->error, sizeof instance->error, "c-sum takes no options; got %.*s", (int)(end - start), cfg + start);
        return SLUICE_ERR_CONFIG;
    }
    return SLUICE_OK;
}
static void destroy(void *instance) { free(instance); }
static const char *last_error(void *instance) {
    instance_t *i = instance;
    return i && i->error[0] ? i->error : NULL;
}

static int32_t combine(void *instance, const void *a, const void *b, void *out, uint64_t n) {
    (void)instance;
    const int64_t *x = a, *y = b;
    int64_t *o = out;
    for (uint64_t i = 0; i < n; i++) o[i] = x[i] + y[i];
    return SLUICE_OK;
}

static int32_t invert(void *instance, const void *a, const void *b, void *out, uint64_t n) {
    (void)instance;
    const int64_t *x = a, *y = b;
    int64_t *o = out;
    for (uint64_t i = 0; i < n; i++) o[i] = x[i] - y[i];
    return SLUICE_OK;
}

SLUICE_EXPORT const sluice_plugin_v1 *sluice_plugin_entry_v1(uint32_t host) {
    static const sluice_plugin_v1 descriptor = {
#if defined(SLUICE_TEST_OLD_DESCRIPTOR)
        .struct_size = offsetof(sluice_plugin_v1, reduce_value_type),
        .abi_version = SLUICE_ABI_VERSION,
#elif defined(SLUICE_TEST_AS_1_2)
        /* As built against the 1.2 header: the descriptor ends after reduce_invert. */
        .struct_size = SLUICE_PLUGIN_V1_SIZE_1_1,
        .abi_version = 0x00010002u,
#else
        .struct_size = sizeof(sluice_plugin_v1),
        .abi_version = SLUICE_ABI_VERSION,
#endif
        .kind = SLUICE_KIND_REDUCER,
        .flags = SLUICE_FLAG_CONCURRENT,
        .name = "c-sum",
        .version = "1.0.0",
        .description = "Sums integers, with an inverse (a C reducer test plugin)",
        .build_info = "toolchain=c;sdk=0.1.0",
        .config_schema = "{\"type\":\"object\",\"properties\":{},\"additionalProperties\":false}",
        .create = create,
        .destroy = destroy,
        .last_error = last_error,
        .reduce_value_type = SLUICE_REDUCE_INT64,
        .reduce_combine = combine,
        .reduce_invert = invert,
    };
    return (host >> 16) == SLUICE_ABI_MAJOR ? &descriptor : NULL;
}
