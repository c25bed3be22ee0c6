/* The plugins the loader must refuse, one per build: each -D below changes one thing a host checks.
 *   -DNAME=\"x\"   -DNO_NAME   -DBUILD_INFO=\"...\"   -DABI=0x00020000u   -DSTRUCT_SIZE=16   -DSCHEMA=\"...\"
 *   -DREFUSE_HOST (the entry returns NULL for every real host)   -DKIND=99   -DNO_TRANSFORM */
#include <stdlib.h>
#include "sluice.h"

#ifndef NAME
#define NAME "refused"
#endif
#ifndef BUILD_INFO
#define BUILD_INFO "toolchain=c;sdk=0.1.0"
#endif
#ifndef ABI
#define ABI SLUICE_ABI_VERSION
#endif
#ifndef STRUCT_SIZE
#define STRUCT_SIZE sizeof(sluice_plugin_v1)
#endif
#ifndef SCHEMA
#define SCHEMA "{}"
#endif
#ifndef KIND
#define KIND SLUICE_KIND_TRANSFORM
#endif

static int32_t create(const sluice_plugin_v1 *self, const sluice_host_api *host, const char *cfg, size_t len,
                      void **instance) {
    (void)self; (void)host; (void)cfg; (void)len;
    *instance = NULL;
    return SLUICE_ERR;
}
static void destroy(void *instance) { (void)instance; }
static const char *last_error(void *instance) { (void)instance; return "test plugin"; }
#ifndef NO_TRANSFORM
static int32_t transform(void *instance, const sluice_batch *in, sluice_batch *out) {
    (void)instance; (void)in; (void)out;
    return SLUICE_ERR;
}
#endif

static const sluice_plugin_v1 descriptor = {
    .struct_size = STRUCT_SIZE,
    .abi_version = ABI,
    .kind = KIND,
#ifdef NO_NAME
    .name = NULL,
#else
    .name = NAME,
#endif
    .version = "1.0.0",
    .description = "a plugin the loader must refuse",
    .build_info = BUILD_INFO,
    .config_schema = SCHEMA,
    .create = create,
    .destroy = destroy,
    .last_error = last_error,
#ifndef NO_TRANSFORM
    .transform = transform,
#endif
};

SLUICE_EXPORT const sluice_plugin_v1 *sluice_plugin_entry_v1(uint32_t host_abi_version) {
#ifdef REFUSE_HOST
    return host_abi_version == 0 ? &descriptor : NULL;
#else
    (void)host_abi_version;
    return &descriptor;
#endif
}
