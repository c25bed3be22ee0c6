/* A minimal, valid C transform: copies its input's values into a new batch. */
#include <stdlib.h>
#include <string.h>
#include "sluice.h"

typedef struct { uint32_t *offsets; uint8_t *data; } owned;

static void release(sluice_batch *batch) {
    owned *o = batch->private_data;
    if (o) { free(o->offsets); free(o->data); free(o); }
    batch->private_data = NULL;
    batch->release = NULL;
}

static int32_t create(const sluice_plugin_v1 *self, const sluice_host_api *host, const char *cfg, size_t len,
                      void **instance) {
    (void)self; (void)host; (void)cfg; (void)len;
    *instance = malloc(1);
    return *instance ? SLUICE_OK : SLUICE_ERR;
}
static void destroy(void *instance) { free(instance); }
static const char *last_error(void *instance) { (void)instance; return NULL; }

static int32_t transform(void *instance, const sluice_batch *in, sluice_batch *out) {
    (void)instance;
    owned *o = calloc(1, sizeof *o);
    uint64_t base = in->count ? in->value_offsets[0] : 0;
    uint64_t bytes = in->count ? in->value_offsets[in->count] - base : 0;
    o->offsets = malloc((in->count + 1) * sizeof(uint32_t));
    o->data = malloc(bytes ? bytes : 1);
    if (!o->offsets || !o->data) { free(o->offsets); free(o->data); free(o); return SLUICE_ERR; }
    for (uint64_t i = 0; i <= in->count; i++) o->offsets[i] = (uint32_t)(in->count ? in->value_offsets[i] - base : 0);
    if (bytes) memcpy(o->data, in->value_data + base, bytes);
    memset(out, 0, sizeof *out);
    out->struct_size = sizeof *out;
    out->value_type = SLUICE_VALUE_BYTES;
    out->count = in->count;
    out->value_offsets = o->offsets;
    out->value_data = o->data;
    out->value_data_len = bytes;
    out->release = release;
    out->private_data = o;
    return SLUICE_OK;
}

static const sluice_plugin_v1 descriptor = {
#ifdef SLUICE_TEST_AS_1_0
    /* As a plugin built against the 1.0 header: a shorter descriptor, an older minor. */
    .struct_size = offsetof(sluice_plugin_v1, reduce_value_type),
    .abi_version = 0x00010000u,
#else
    .struct_size = sizeof(sluice_plugin_v1),
    .abi_version = SLUICE_ABI_VERSION,
#endif
    .kind = SLUICE_KIND_TRANSFORM,
    .flags = SLUICE_FLAG_CONCURRENT,
    .name = "c-identity",
    .version = "1.0.0",
    .description = "Copies records unchanged (a C test plugin)",
    .build_info = "toolchain=c;sdk=0.1.0",
    .config_schema = "{\"type\":\"object\",\"properties\":{},\"additionalProperties\":false}",
    .create = create,
    .destroy = destroy,
    .last_error = last_error,
    .transform = transform,
};

SLUICE_EXPORT const sluice_plugin_v1 *sluice_plugin_entry_v1(uint32_t host_abi_version) {
    return (host_abi_version >> 16) == (SLUICE_ABI_VERSION >> 16) ? &descriptor : NULL;
}
