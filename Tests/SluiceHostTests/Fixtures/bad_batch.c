/*
 * A transform (or, with -DAS_SOURCE, a source without commit) that returns a batch with one chosen defect, for the
 * host's batch validation tests. The configuration {"defect": "..."} names the defect; "none" is a valid 3-record
 * batch and "untouched" returns without writing *out at all (valid only because the host zero-fills it and sets
 * struct_size). Every batch it returns with a release counts the release in bad_batch_releases, which the tests read
 * with dlsym to see that the host releases a batch it refuses.
 */
#include <stdlib.h>
#include <string.h>
#include "sluice.h"
#include "sluice_config.h"

#ifdef AS_SOURCE
#define PLUGIN_NAME "c-bad-source"
#else
#define PLUGIN_NAME "c-bad-batch"
#endif

SLUICE_EXPORT int bad_batch_releases = 0;

typedef struct {
    char defect[64];
    char error[SLUICE_CONFIG_ERROR_SIZE];
} instance_t;

static void release(sluice_batch *batch) {
    __atomic_add_fetch(&bad_batch_releases, 1, __ATOMIC_SEQ_CST);
    batch->release = NULL;
}

static int32_t create(const sluice_plugin_v1 *self, const sluice_host_api *host, const char *json, size_t len,
                      void **instance) {
    (void)self; (void)host;
    instance_t *me = calloc(1, sizeof *me);
    if (!me) return SLUICE_ERR;
    *instance = me;
    sluice_config config;
    const char *defect = "none";
    if (sluice_config_parse(&config, json, len) != 0 || sluice_config_get_string(&config, "defect", &defect, NULL) < 0
        || sluice_config_check_unused(&config) != 0) {
        memcpy(me->error, config.error, sizeof me->error);
        sluice_config_free(&config);
        return SLUICE_ERR_CONFIG;
    }
    strncpy(me->defect, defect, sizeof me->defect - 1);
    sluice_config_free(&config);
    return SLUICE_OK;
}

static void destroy(void *instance) { free(instance); }
static const char *last_error(void *instance) {
    instance_t *me = instance;
    return me->error[0] ? me->error : NULL;
}

/* Buffers that live for the process: the batches borrow them, so release only counts. */
static const uint8_t text[15] = "onetwothreeXXXX";
static const uint32_t good_offsets[4] = {0, 3, 6, 11};
static const uint32_t decreasing_offsets[4] = {0, 5, 12, 10};
static const uint32_t long_offsets[4] = {0, 3, 6, 20};
static _Alignas(8) const int64_t numbers[4] = {1, 2, 3, 4};

static int32_t fill(instance_t *me, sluice_batch *out) {
    const char *d = me->defect;
    if (strcmp(d, "untouched") == 0) return SLUICE_OK;
    uint32_t preset = out->struct_size;
    memset(out, 0, sizeof *out);
    out->struct_size = preset;
    out->value_type = SLUICE_VALUE_BYTES;
    out->count = 3;
    out->value_offsets = good_offsets;
    out->value_data = text;
    out->value_data_len = sizeof text;
    out->release = release;
    if (strcmp(d, "none") == 0) return SLUICE_OK;
    if (strcmp(d, "struct_size") == 0) out->struct_size = 0;
    else if (strcmp(d, "count") == 0) out->count = 2;
    else if (strcmp(d, "value_type") == 0) out->value_type = 7;
    else if (strcmp(d, "value_offsets_null") == 0) out->value_offsets = NULL;
    else if (strcmp(d, "value_offsets_decrease") == 0) out->value_offsets = decreasing_offsets;
    else if (strcmp(d, "value_offsets_past_end") == 0) out->value_offsets = long_offsets;
    else if (strcmp(d, "value_data_null") == 0) out->value_data = NULL;
    else if (strcmp(d, "key_offsets_decrease") == 0) {
        out->key_offsets = decreasing_offsets; out->key_data = text; out->key_data_len = sizeof text;
    } else if (strcmp(d, "key_offsets_past_end") == 0) {
        out->key_offsets = long_offsets; out->key_data = text; out->key_data_len = sizeof text;
    } else if (strcmp(d, "key_data_null") == 0) {
        out->key_offsets = good_offsets; out->key_data = NULL; out->key_data_len = sizeof text;
    } else if (strcmp(d, "release_null") == 0) out->release = NULL;
    else if (strncmp(d, "int64", 5) == 0) {
        out->value_type = SLUICE_VALUE_INT64;
        out->value_offsets = NULL;
        out->value_data = (const uint8_t *)numbers;
        out->value_data_len = 3 * sizeof(int64_t);
        if (strcmp(d, "int64_short") == 0) out->value_data_len = 16;
        else if (strcmp(d, "int64_misaligned") == 0) out->value_data = (const uint8_t *)numbers + 1;
        else if (strcmp(d, "int64_offsets") == 0) out->value_offsets = good_offsets;
    } else {
        strcpy(me->error, "unknown defect");
        return SLUICE_ERR;
    }
    return SLUICE_OK;
}

#ifdef AS_SOURCE
static int32_t partitions(void *instance, uint32_t *count) { (void)instance; *count = 1; return SLUICE_OK; }
static int32_t available(void *instance, uint32_t partition, uint64_t *start, uint64_t *end) {
    (void)instance; (void)partition;
    *start = 0;
    *end = 3;
    return SLUICE_OK;
}
static int32_t read_range(void *instance, uint32_t partition, uint64_t from, uint64_t to, sluice_batch *out) {
    (void)partition; (void)from; (void)to;
    return fill(instance, out);
}
#else
static int32_t transform(void *instance, const sluice_batch *in, sluice_batch *out) {
    (void)in;
    return fill(instance, out);
}
#endif

static const sluice_plugin_v1 descriptor = {
    .struct_size = sizeof(sluice_plugin_v1),
    .abi_version = SLUICE_ABI_VERSION,
#ifdef AS_SOURCE
    .kind = SLUICE_KIND_SOURCE,
#else
    .kind = SLUICE_KIND_TRANSFORM,
#endif
    .name = PLUGIN_NAME,
    .version = "1.0.0",
    .description = "Returns a batch with a chosen defect (a C test plugin)",
    .build_info = SLUICE_BUILD_INFO_C,
    .config_schema = "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"
                     "\"defect\":{\"type\":\"string\",\"default\":\"none\"}}}",
    .create = create,
    .destroy = destroy,
    .last_error = last_error,
#ifdef AS_SOURCE
    .partitions = partitions,
    .available = available,
    .read = read_range,
    /* no commit: it is optional */
#else
    .transform = transform,
#endif
};

SLUICE_EXPORT const sluice_plugin_v1 *sluice_plugin_entry_v1(uint32_t host_abi_version) {
    return (host_abi_version >> 16) == (SLUICE_ABI_VERSION >> 16) ? &descriptor : NULL;
}
