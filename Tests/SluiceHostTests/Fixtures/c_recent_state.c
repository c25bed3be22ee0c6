/* A state-updater plugin in C (ABI 1.3), written from docs/abi.md §9b: updateStateByKey with a state that is not a
 * reduce. A key's state is text, "IDLE;S1,S2,S3": the sums of its values in its last (up to) three batches with
 * records, oldest first (an integer value adds itself, a text value counts 1), and how many calls in a row came
 * without records. The second call without records removes the key.
 *
 * Test variants: -DSLUICE_TEST_BAD_ACTION answers an unknown action, -DSLUICE_TEST_BAD_LENGTH a state of a garbage
 * length, -DSLUICE_TEST_OLD_DESCRIPTOR claims a 1.2-sized descriptor; a host must refuse each. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sluice.h"

typedef struct {
    char error[256];
    /* The answer's bytes: plugin-owned, valid until the next call on the instance (the plugin is not concurrent). */
    char state[96];
} instance_t;

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
        snprintf(instance->error, sizeof instance->error, "c-recent takes no options; got %.*s", (int)(end - start), cfg + start);
        return SLUICE_ERR_CONFIG;
    }
    return SLUICE_OK;
}
static void destroy(void *instance) { free(instance); }
static const char *last_error(void *instance) {
    instance_t *i = instance;
    return i && i->error[0] ? i->error : NULL;
}

/* Parses "IDLE;S1,S2,S3" (up to three sums). Returns the number of sums, or -1 when the text is not such a state. */
static int parse_state(const uint8_t *bytes, uint64_t len, int64_t *idle, int64_t sums[3]) {
    char text[96];
    if (len >= sizeof text) return -1;
    memcpy(text, bytes, (size_t)len);
    text[len] = 0;
    char *rest;
    *idle = strtoll(text, &rest, 10);
    if (rest == text || *rest != ';') return -1;
    rest++;
    int n = 0;
    while (*rest) {
        if (n == 3) return -1;
        char *after;
        sums[n++] = strtoll(rest, &after, 10);
        if (after == rest || (*after != ',' && *after != 0)) return -1;
        rest = *after == ',' ? after + 1 : after;
    }
    return n;
}

static int32_t update_state(void *instance, const sluice_state_update *update, sluice_state_result *result) {
    instance_t *self = instance;
    int64_t idle = 0, sums[4];
    int n = 0;
    if (update->flags & SLUICE_STATE_PRESENT) {
        n = parse_state(update->state, update->state_len, &idle, sums);
        if (n < 0) {
            snprintf(self->error, sizeof self->error, "key '%.*s' has a state that is not IDLE;SUMS", (int)update->key_len,
                     (const char *)update->key);
            return SLUICE_ERR;
        }
    }
    const sluice_batch *values = update->values;
    if (values->count == 0) {
        if (!(update->flags & SLUICE_STATE_PRESENT)) return SLUICE_OK; /* nothing to keep: result->action is KEEP */
        if (idle >= 1) {
            result->action = SLUICE_STATE_REMOVE;
            return SLUICE_OK;
        }
        idle++;
    } else {
        int64_t sum = 0;
        for (uint64_t i = 0; i < values->count; i++) {
            if (values->value_type == SLUICE_VALUE_INT64) {
                int64_t v;
                memcpy(&v, values->value_data + 8 * i, sizeof v);
                sum += v;
            } else {
                sum += 1;
            }
        }
        sums[n++] = sum;
        if (n == 4) { memmove(sums, sums + 1, 3 * sizeof sums[0]); n = 3; }
        idle = 0;
    }
    int used = snprintf(self->state, sizeof self->state, "%" PRId64 ";", idle);
    for (int i = 0; i < n; i++) {
        used += snprintf(self->state + used, sizeof self->state - (size_t)used, i ? ",%" PRId64 : "%" PRId64, sums[i]);
    }
#if defined(SLUICE_TEST_BAD_ACTION)
    result->action = 7;
#else
    result->action = SLUICE_STATE_SET;
#endif
    result->state = (const uint8_t *)self->state;
#if defined(SLUICE_TEST_BAD_LENGTH)
    result->state_len = (uint64_t)1 << 40;
#else
    result->state_len = (uint64_t)used;
#endif
    return SLUICE_OK;
}

SLUICE_EXPORT const sluice_plugin_v1 *sluice_plugin_entry_v1(uint32_t host) {
    static const sluice_plugin_v1 descriptor = {
#ifdef SLUICE_TEST_OLD_DESCRIPTOR
        .struct_size = SLUICE_PLUGIN_V1_SIZE_1_1,
#else
        .struct_size = sizeof(sluice_plugin_v1),
#endif
        .abi_version = SLUICE_ABI_VERSION,
        .kind = SLUICE_KIND_STATE_UPDATER,
        .flags = 0,
        .name = "c-recent",
        .version = "1.0.0",
        .description = "Per key: the sums of its last three batches; dropped after two idle batches (a C test plugin)",
        .build_info = SLUICE_BUILD_INFO_C,
        .config_schema = "{\"type\":\"object\",\"properties\":{},\"additionalProperties\":false}",
        .create = create,
        .destroy = destroy,
        .last_error = last_error,
        .update_state = update_state,
    };
    /* A host older than 1.3 does not know this kind: refusing it gives that host a clear message. */
    if ((host >> 16) != SLUICE_ABI_MAJOR || (host & 0xFFFFu) < 3u) return NULL;
    return &descriptor;
}
