/*
 * A transform that lets the runner tests see and control what happens inside a call: it hands its input back, and
 *   - {"delay_ms": N} sleeps N ms in every call (a batch in flight the test can signal, a slow graceful stop);
 *   - {"fail": "MESSAGE"} makes every call fail with SLUICE_ERR and MESSAGE as last_error;
 *   - every call logs "call K began, M at once" at info level, M being the calls of this instance running at that
 *     moment (counted atomically on entry and exit), so a test sees whether the host overlapped calls.
 * Built with -DPROBE_CONCURRENT it sets SLUICE_FLAG_CONCURRENT (the host may then overlap calls on one instance).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "sluice.h"
#include "sluice_config.h"

typedef struct {
    const sluice_host_api *host;
    int64_t delay_ms;
    char fail[256];
    int active;  /* calls running now (atomic) */
    int calls;   /* calls begun (atomic) */
    char error[SLUICE_CONFIG_ERROR_SIZE];
} instance_t;

/* The output owns nothing (it points into the input), but a batch with records needs a release. */
static void release_nothing(sluice_batch *batch) { batch->release = NULL; }

static int32_t create(const sluice_plugin_v1 *self, const sluice_host_api *host, const char *json, size_t len,
                      void **instance) {
    (void)self;
    instance_t *me = calloc(1, sizeof *me);
    if (!me) return SLUICE_ERR;
    *instance = me;
    me->host = host;
    sluice_config config;
    const char *fail = "";
    if (sluice_config_parse(&config, json, len) != 0 || sluice_config_get_int64(&config, "delay_ms", &me->delay_ms) < 0
        || sluice_config_get_string(&config, "fail", &fail, NULL) < 0 || sluice_config_check_unused(&config) != 0) {
        memcpy(me->error, config.error, sizeof me->error);
        sluice_config_free(&config);
        return SLUICE_ERR_CONFIG;
    }
    snprintf(me->fail, sizeof me->fail, "%s", fail);
    sluice_config_free(&config);
    return SLUICE_OK;
}

static void destroy(void *instance) { free(instance); }
static const char *last_error(void *instance) {
    instance_t *me = instance;
    return me->error[0] ? me->error : NULL;
}

static int32_t transform(void *instance, const sluice_batch *in, sluice_batch *out) {
    instance_t *me = instance;
    int at_once = __atomic_add_fetch(&me->active, 1, __ATOMIC_SEQ_CST);
    int call = __atomic_add_fetch(&me->calls, 1, __ATOMIC_SEQ_CST);
    char line[96];
    int n = snprintf(line, sizeof line, "call %d began, %d at once", call, at_once);
    me->host->log(me->host->host_ctx, SLUICE_LOG_INFO, line, (size_t)n);
    if (me->delay_ms > 0) {
        struct timespec wait = {(time_t)(me->delay_ms / 1000), (long)(me->delay_ms % 1000) * 1000000L};
        while (nanosleep(&wait, &wait) != 0) {}
    }
    int32_t status;
    if (me->fail[0]) {
        /* Concurrent failing calls write the same text, so whichever the host reads is right. */
        snprintf(me->error, sizeof me->error, "%s", me->fail);
        status = SLUICE_ERR;
    } else {
        /* The output points into the input's buffers, which the host keeps alive until it is done with it. */
        *out = *in;
        out->release = release_nothing;
        out->private_data = NULL;
        status = SLUICE_OK;
    }
    __atomic_sub_fetch(&me->active, 1, __ATOMIC_SEQ_CST);
    return status;
}

static const sluice_plugin_v1 descriptor = {
    .struct_size = sizeof(sluice_plugin_v1),
    .abi_version = SLUICE_ABI_VERSION,
    .kind = SLUICE_KIND_TRANSFORM,
#ifdef PROBE_CONCURRENT
    .flags = SLUICE_FLAG_CONCURRENT,
#endif
    .name = "c-probe",
    .version = "1.0.0",
    .description = "Passes records on; can sleep or fail in each call and logs overlapping calls (a C test plugin)",
    .build_info = SLUICE_BUILD_INFO_C,
    .config_schema = "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"
                     "\"delay_ms\":{\"type\":\"integer\",\"default\":0},"
                     "\"fail\":{\"type\":\"string\",\"default\":\"\"}}}",
    .create = create,
    .destroy = destroy,
    .last_error = last_error,
    .transform = transform,
};

SLUICE_EXPORT const sluice_plugin_v1 *sluice_plugin_entry_v1(uint32_t host_abi_version) {
    return (host_abi_version >> 16) == (SLUICE_ABI_VERSION >> 16) ? &descriptor : NULL;
}
