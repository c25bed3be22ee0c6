/*
 * uppercase — a Sluice transform plugin written in plain C.
 *
 * Upper-cases the ASCII letters of every record's value and puts an optional prefix in front of it. Keys and
 * timestamps pass through unchanged. It shows everything a C plugin needs: the one exported entry symbol, a
 * descriptor with a configuration schema, reading the configuration with sluice_config.h, per-instance state with a
 * last-error message, and an output batch the plugin owns and frees in its release callback.
 *
 * Build:  gcc -std=c11 -Wall -Wextra -Werror -pedantic -O2 -shared -fPIC -fvisibility=hidden \
 *             -I ../../CSluice/include -o libuppercase.so uppercase.c
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice.h"
#include "sluice_config.h"   /* reads the configuration JSON; header-only */

/* ---- Configuration: {"prefix": "..."} ---------------------------------------------------------------------- */

typedef struct {
    char *prefix;          /* owned */
    size_t prefix_len;
    char error[256];       /* last_error() text */
} instance_t;

/* The host fills in the schema's defaults, so "prefix" is always present; the helper still copes without it. */
static int parse_config(instance_t *self, const char *json, size_t len) {
    sluice_config config;
    const char *prefix = "";
    size_t prefix_len = 0;
    if (sluice_config_parse(&config, json, len) != 0
        || sluice_config_get_string(&config, "prefix", &prefix, &prefix_len) < 0
        || sluice_config_check_unused(&config) != 0) {
        snprintf(self->error, sizeof self->error, "%s", config.error);
        sluice_config_free(&config);
        return -1;
    }
    /* The string belongs to `config`: keep a copy. */
    self->prefix = malloc(prefix_len + 1);
    if (!self->prefix) {
        sluice_config_free(&config);
        snprintf(self->error, sizeof self->error, "out of memory");
        return -1;
    }
    memcpy(self->prefix, prefix, prefix_len + 1);
    self->prefix_len = prefix_len;
    sluice_config_free(&config);
    return 0;
}

/* ---- Lifecycle ------------------------------------------------------------------------------------------------ */

static int32_t create(const sluice_plugin_v1 *descriptor, const sluice_host_api *host, const char *config,
                      size_t config_len, void **instance) {
    (void)descriptor;
    instance_t *self = calloc(1, sizeof *self);
    if (!self) return SLUICE_ERR;
    *instance = self;                      /* stored even on failure, so that last_error() can explain */
    if (parse_config(self, config, config_len) != 0) return SLUICE_ERR_CONFIG;
    if (host && SLUICE_HAS_FIELD(host, sluice_host_api, log) && host->log) {
        char message[128];
        int n = snprintf(message, sizeof message, "prefix is %zu bytes", self->prefix_len);
        host->log(host->host_ctx, SLUICE_LOG_DEBUG, message, (size_t)n);
    }
    return SLUICE_OK;
}

static void destroy(void *instance) {
    instance_t *self = instance;
    if (!self) return;
    free(self->prefix);
    free(self);
}

static const char *last_error(void *instance) {
    instance_t *self = instance;
    return self && self->error[0] ? self->error : NULL;
}

/* ---- The transform -------------------------------------------------------------------------------------------- */

/* Everything an output batch owns, freed by release(). */
typedef struct {
    uint32_t *offsets;
    uint8_t *data;
} output_t;

static void release(sluice_batch *batch) {
    output_t *owned = batch->private_data;
    if (owned) {
        free(owned->offsets);
        free(owned->data);
        free(owned);
    }
    batch->private_data = NULL;
    batch->release = NULL;
}

static int32_t transform(void *instance, const sluice_batch *in, sluice_batch *out) {
    instance_t *self = instance;
    if (in->value_type != SLUICE_VALUE_BYTES) {
        snprintf(self->error, sizeof self->error, "uppercase needs text values");
        return SLUICE_ERR;
    }
    uint64_t n = in->count;
    uint64_t first = n ? in->value_offsets[0] : 0;
    uint64_t input_bytes = n ? in->value_offsets[n] - first : 0;
    uint64_t total = input_bytes + n * self->prefix_len;
    if (total > UINT32_MAX) {
        snprintf(self->error, sizeof self->error, "batch too large: %llu bytes", (unsigned long long)total);
        return SLUICE_ERR;
    }
    output_t *owned = calloc(1, sizeof *owned);
    if (!owned) return SLUICE_ERR;
    owned->offsets = malloc((n + 1) * sizeof(uint32_t));
    owned->data = malloc(total ? total : 1);
    if (!owned->offsets || !owned->data) {
        free(owned->offsets);
        free(owned->data);
        free(owned);
        snprintf(self->error, sizeof self->error, "out of memory");
        return SLUICE_ERR;
    }
    uint32_t position = 0;
    owned->offsets[0] = 0;
    for (uint64_t i = 0; i < n; i++) {
        memcpy(owned->data + position, self->prefix ? self->prefix : "", self->prefix_len);
        position += (uint32_t)self->prefix_len;
        const uint8_t *value = in->value_data + in->value_offsets[i];
        uint32_t length = in->value_offsets[i + 1] - in->value_offsets[i];
        for (uint32_t j = 0; j < length; j++) {
            uint8_t c = value[j];
            owned->data[position + j] = (c >= 'a' && c <= 'z') ? (uint8_t)(c - 32) : c;
        }
        position += length;
        owned->offsets[i + 1] = position;
    }
    memset(out, 0, sizeof *out);
    out->struct_size = sizeof *out;
    out->value_type = SLUICE_VALUE_BYTES;
    out->count = n;
    out->value_offsets = owned->offsets;
    out->value_data = owned->data;
    out->value_data_len = position;
    /* Keys and timestamps are borrowed from the input: the host keeps the input alive until it releases `out`. */
    out->key_offsets = in->key_offsets;
    out->key_data = in->key_data;
    out->key_data_len = in->key_data_len;
    out->key_validity = in->key_validity;
    out->timestamps = in->timestamps;
    out->release = release;
    out->private_data = owned;
    return SLUICE_OK;
}

/* ---- The descriptor and the entry symbol ------------------------------------------------------------------------ */

static const sluice_plugin_v1 descriptor = {
    .struct_size = sizeof(sluice_plugin_v1),
    .abi_version = SLUICE_ABI_VERSION,
    .kind = SLUICE_KIND_TRANSFORM,
    .flags = SLUICE_FLAG_CONCURRENT,   /* no shared mutable state except the error text */
    .name = "uppercase",
    .version = "1.0.0",
    .description = "Upper-cases ASCII letters and adds an optional prefix (a plugin written in C)",
    .build_info = SLUICE_BUILD_INFO_C,   /* "toolchain=c;sdk=" SLUICE_SDK_VERSION */
    .config_schema = "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"
                     "\"prefix\":{\"type\":\"string\",\"default\":\"\","
                     "\"description\":\"Put in front of every value\"}},\"required\":[]}",
    .create = create,
    .destroy = destroy,
    .last_error = last_error,
    .transform = transform,
};

SLUICE_EXPORT const sluice_plugin_v1 *sluice_plugin_entry_v1(uint32_t host_abi_version) {
    if ((host_abi_version >> 16) != SLUICE_ABI_MAJOR) return NULL;   /* another major: refuse */
    return &descriptor;
}
