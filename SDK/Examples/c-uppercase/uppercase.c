/*
 * uppercase — a Sluice transform plugin written in plain C.
 *
 * Upper-cases the ASCII letters of every record's value and puts an optional prefix in front of it. Keys and
 * timestamps pass through unchanged. It shows everything a C plugin needs: the one exported entry symbol, a
 * descriptor with a configuration schema, per-instance state with a last-error message, and an output batch the
 * plugin owns and frees in its release callback.
 *
 * Build:  gcc -std=c11 -Wall -Wextra -Werror -O2 -shared -fPIC -fvisibility=hidden \
 *             -I ../../CSluice/include -o libuppercase.so uppercase.c
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice.h"

/* ---- Configuration: {"prefix": "..."} ---------------------------------------------------------------------- */

typedef struct {
    char *prefix;          /* owned */
    size_t prefix_len;
    char error[256];       /* last_error() text */
} instance_t;

static const char *skip_space(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

/* Parses a JSON string at *pp (which points at the opening quote) into a malloc'd buffer. ASCII \u escapes only. */
static int parse_string(const char **pp, const char *end, char **out, size_t *out_len) {
    const char *p = *pp + 1;
    char *buffer = malloc((size_t)(end - p) + 1);
    size_t n = 0;
    if (!buffer) return -1;
    while (p < end && *p != '"') {
        char c = *p++;
        if (c == '\\' && p < end) {
            char e = *p++;
            switch (e) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case '"': case '\\': case '/': c = e; break;
            case 'u': {
                unsigned value = 0;
                if (end - p < 4 || sscanf(p, "%4x", &value) != 1 || value > 0x7f) { free(buffer); return -1; }
                c = (char)value;
                p += 4;
                break;
            }
            default: free(buffer); return -1;
            }
        }
        buffer[n++] = c;
    }
    if (p >= end) { free(buffer); return -1; }
    buffer[n] = '\0';
    *pp = p + 1;
    *out = buffer;
    *out_len = n;
    return 0;
}

static int parse_config(instance_t *self, const char *json, size_t len) {
    const char *p = json, *end = json + len;
    p = skip_space(p, end);
    if (p == end) return 0;                                   /* no configuration at all */
    if (*p++ != '{') { snprintf(self->error, sizeof self->error, "configuration must be a JSON object"); return -1; }
    for (;;) {
        p = skip_space(p, end);
        if (p < end && *p == '}') return 0;
        if (p >= end || *p != '"') break;
        char *key = NULL;
        size_t key_len = 0;
        if (parse_string(&p, end, &key, &key_len) != 0) break;
        p = skip_space(p, end);
        if (p >= end || *p++ != ':') { free(key); break; }
        p = skip_space(p, end);
        if (strcmp(key, "prefix") != 0) {
            snprintf(self->error, sizeof self->error, "unknown configuration key '%s' (the only option is 'prefix')", key);
            free(key);
            return -1;
        }
        free(key);
        if (p >= end || *p != '"') {
            snprintf(self->error, sizeof self->error, "configuration key 'prefix': expected a string");
            return -1;
        }
        free(self->prefix);
        if (parse_string(&p, end, &self->prefix, &self->prefix_len) != 0) {
            snprintf(self->error, sizeof self->error, "configuration key 'prefix': invalid string");
            return -1;
        }
        p = skip_space(p, end);
        if (p < end && *p == ',') { p++; continue; }
        if (p < end && *p == '}') return 0;
        break;
    }
    snprintf(self->error, sizeof self->error, "configuration is not valid JSON");
    return -1;
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
    .build_info = "toolchain=c;sdk=0.1.0",
    .config_schema = "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"
                     "\"prefix\":{\"type\":\"string\",\"default\":\"\","
                     "\"description\":\"Put in front of every value\"}},\"required\":[]}",
    .create = create,
    .destroy = destroy,
    .last_error = last_error,
    .transform = transform,
};

SLUICE_EXPORT const sluice_plugin_v1 *sluice_plugin_entry_v1(uint32_t host_abi_version) {
    if ((host_abi_version >> 16) != (SLUICE_ABI_VERSION >> 16)) return NULL;   /* another major: refuse */
    return &descriptor;
}
