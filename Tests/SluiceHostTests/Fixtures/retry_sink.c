/* A sink whose sink_commit answers SLUICE_RETRY for its first {"failures": N} calls (default 2), then succeeds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sluice.h"
#include "sluice_config.h"

typedef struct {
    int64_t failures;
    char error[SLUICE_CONFIG_ERROR_SIZE];
} instance_t;

static int32_t create(const sluice_plugin_v1 *self, const sluice_host_api *host, const char *json, size_t len,
                      void **instance) {
    (void)self; (void)host;
    instance_t *me = calloc(1, sizeof *me);
    if (!me) return SLUICE_ERR;
    *instance = me;
    sluice_config config;
    if (sluice_config_parse(&config, json, len) != 0 || sluice_config_get_int64(&config, "failures", &me->failures) < 0
        || sluice_config_check_unused(&config) != 0) {
        memcpy(me->error, config.error, sizeof me->error);
        sluice_config_free(&config);
        return SLUICE_ERR_CONFIG;
    }
    sluice_config_free(&config);
    return SLUICE_OK;
}
static void destroy(void *instance) { free(instance); }
static const char *last_error(void *instance) {
    instance_t *me = instance;
    return me->error[0] ? me->error : NULL;
}
static int32_t begin(void *instance, const sluice_batch_info *info) { (void)instance; (void)info; return SLUICE_OK; }
static int32_t write_chunk(void *instance, const sluice_batch *chunk) { (void)instance; (void)chunk; return SLUICE_OK; }
static int32_t commit(void *instance, const sluice_batch_info *info) {
    (void)info;
    instance_t *me = instance;
    if (me->failures <= 0) return SLUICE_OK;
    snprintf(me->error, sizeof me->error, "disk busy (%lld more)", (long long)--me->failures);
    return SLUICE_RETRY;
}

static const sluice_plugin_v1 descriptor = {
    .struct_size = sizeof(sluice_plugin_v1),
    .abi_version = SLUICE_ABI_VERSION,
    .kind = SLUICE_KIND_SINK,
    .name = "c-retry-sink",
    .version = "1.0.0",
    .description = "Asks for retries, then commits (a C test plugin)",
    .build_info = SLUICE_BUILD_INFO_C,
    .config_schema = "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"
                     "\"failures\":{\"type\":\"integer\",\"default\":2}}}",
    .create = create,
    .destroy = destroy,
    .last_error = last_error,
    .sink_begin = begin,
    .sink_write = write_chunk,
    .sink_commit = commit,
};

SLUICE_EXPORT const sluice_plugin_v1 *sluice_plugin_entry_v1(uint32_t host_abi_version) {
    return (host_abi_version >> 16) == (SLUICE_ABI_VERSION >> 16) ? &descriptor : NULL;
}
