/* A transform that answers every batch with one record: the configuration JSON its create() received, byte for
 * byte. The schema gives defaults of each JSON type, so the tests can see which ones the host filled in. create()
 * also logs the state_directory it was given, so the tests can see that it is absolute. */
#include <stdlib.h>
#include <string.h>
#include "sluice.h"

typedef struct { char *json; uint32_t offsets[2]; } instance_t;

static int32_t create(const sluice_plugin_v1 *self, const sluice_host_api *host, const char *json, size_t len,
                      void **instance) {
    (void)self;
    if (SLUICE_HAS_FIELD(host, sluice_host_api, state_directory) && host->state_directory) {
        host->log(host->host_ctx, SLUICE_LOG_INFO, host->state_directory, strlen(host->state_directory));
    }
    instance_t *me = calloc(1, sizeof *me);
    if (!me || !(me->json = malloc(len + 1))) { free(me); return SLUICE_ERR; }
    memcpy(me->json, json, len);
    me->offsets[1] = (uint32_t)len;
    *instance = me;
    return SLUICE_OK;
}
static void destroy(void *instance) {
    instance_t *me = instance;
    free(me->json);
    free(me);
}
static const char *last_error(void *instance) { (void)instance; return NULL; }
static void release_nothing(sluice_batch *batch) { batch->release = NULL; }  /* the text belongs to the instance */

static int32_t transform(void *instance, const sluice_batch *in, sluice_batch *out) {
    (void)in;
    instance_t *me = instance;
    out->value_type = SLUICE_VALUE_BYTES;
    out->count = 1;
    out->value_offsets = me->offsets;
    out->value_data = (const uint8_t *)me->json;
    out->value_data_len = me->offsets[1];
    out->release = release_nothing;
    return SLUICE_OK;
}

static const sluice_plugin_v1 descriptor = {
    .struct_size = sizeof(sluice_plugin_v1),
    .abi_version = SLUICE_ABI_VERSION,
    .kind = SLUICE_KIND_TRANSFORM,
    .name = "c-config-echo",
    .version = "1.0.0",
    .description = "Echoes its configuration (a C test plugin)",
    .build_info = SLUICE_BUILD_INFO_C,
    .config_schema = "{\"type\":\"object\",\"properties\":{"
                     "\"greeting\":{\"type\":\"string\",\"default\":\"hello \\\"you\\\"\"},"
                     "\"times\":{\"type\":\"integer\",\"default\":3},"
                     "\"ratio\":{\"type\":\"number\",\"default\":0.5},"
                     "\"loud\":{\"type\":\"boolean\",\"default\":false},"
                     "\"target\":{\"type\":\"string\"}}}",
    .create = create,
    .destroy = destroy,
    .last_error = last_error,
    .transform = transform,
};

SLUICE_EXPORT const sluice_plugin_v1 *sluice_plugin_entry_v1(uint32_t host_abi_version) {
    return (host_abi_version >> 16) == (SLUICE_ABI_VERSION >> 16) ? &descriptor : NULL;
}
