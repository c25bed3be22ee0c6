/* A plugin that says, through the host's log, when it is destroyed: built as a source (-DAS_SOURCE), a sink
 * (-DAS_SINK) or a transform, so a test can see in which order the host destroys a pipeline's instances. The
 * source has no records; the transform hands back an empty batch; the sink accepts everything. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sluice.h"

typedef struct {
    const sluice_host_api *host;
} instance_t;

static int32_t create(const sluice_plugin_v1 *self, const sluice_host_api *host, const char *json, size_t len,
                      void **instance) {
    (void)self; (void)json; (void)len;
    instance_t *me = calloc(1, sizeof *me);
    if (!me) return SLUICE_ERR;
    me->host = host;
    *instance = me;
    return SLUICE_OK;
}
/* The host API stays valid until destroy returns: the last message is allowed here. */
static void destroy(void *instance) {
    instance_t *me = instance;
    char message[256];
    int length = snprintf(message, sizeof message, "destroyed %s", me->host->instance_name);
    me->host->log(me->host->host_ctx, SLUICE_LOG_INFO, message, (size_t)length);
    free(me);
}
static const char *last_error(void *instance) { (void)instance; return NULL; }

#if defined(AS_SOURCE)
static int32_t partitions(void *instance, uint32_t *count) { (void)instance; *count = 1; return SLUICE_OK; }
static int32_t available(void *instance, uint32_t partition, uint64_t *start, uint64_t *end) {
    (void)instance; (void)partition; *start = 0; *end = 0; return SLUICE_OK;
}
static int32_t read_range(void *instance, uint32_t partition, uint64_t from, uint64_t to, sluice_batch *out) {
    (void)instance; (void)partition; (void)from; (void)to; (void)out; return SLUICE_OK;
}
#elif defined(AS_SINK)
static int32_t begin(void *instance, const sluice_batch_info *info) { (void)instance; (void)info; return SLUICE_OK; }
static int32_t write_chunk(void *instance, const sluice_batch *chunk) { (void)instance; (void)chunk; return SLUICE_OK; }
static int32_t commit(void *instance, const sluice_batch_info *info) { (void)instance; (void)info; return SLUICE_OK; }
#else
static int32_t transform(void *instance, const sluice_batch *in, sluice_batch *out) {
    (void)instance; (void)in; (void)out; return SLUICE_OK;
}
#endif

static const sluice_plugin_v1 descriptor = {
    .struct_size = sizeof(sluice_plugin_v1),
    .abi_version = SLUICE_ABI_VERSION,
#if defined(AS_SOURCE)
    .kind = SLUICE_KIND_SOURCE,
    .name = "c-lifecycle-source",
#elif defined(AS_SINK)
    .kind = SLUICE_KIND_SINK,
    .name = "c-lifecycle-sink",
#else
    .kind = SLUICE_KIND_TRANSFORM,
    .name = "c-lifecycle-transform",
#endif
    .version = "1.0.0",
    .description = "Logs when it is destroyed (a C test plugin)",
    .build_info = SLUICE_BUILD_INFO_C,
    .config_schema = "{}",
    .create = create,
    .destroy = destroy,
    .last_error = last_error,
#if defined(AS_SOURCE)
    .partitions = partitions,
    .available = available,
    .read = read_range,
#elif defined(AS_SINK)
    .sink_begin = begin,
    .sink_write = write_chunk,
    .sink_commit = commit,
#else
    .transform = transform,
#endif
};

SLUICE_EXPORT const sluice_plugin_v1 *sluice_plugin_entry_v1(uint32_t host_abi_version) {
    return (host_abi_version >> 16) == (SLUICE_ABI_VERSION >> 16) ? &descriptor : NULL;
}
