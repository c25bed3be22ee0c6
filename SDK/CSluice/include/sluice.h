/*
 * sluice.h — the Sluice plugin ABI, version 1.3.
 *
 * This header is the single source of truth for the boundary between the Sluice host and its plugins.
 * docs/abi.md is the normative prose; where the two disagree, fix one of them in the same commit.
 *
 * Rules that hold everywhere:
 *   - Only C types cross the boundary. No Swift (or C++) object is ever passed across.
 *   - Every struct that may grow starts with `struct_size`; fields are only ever appended. A reader uses a field
 *     only if `struct_size` covers it (see SLUICE_HAS_FIELD).
 *   - A plugin exports exactly one symbol: sluice_plugin_entry_v1.
 *   - Version numbers are plain literals so that Swift imports them as typed constants.
 *
 * Compiles with: gcc -std=c11 -Wall -Wextra -Werror -pedantic
 */
#ifndef SLUICE_H
#define SLUICE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Versions ------------------------------------------------------------------------------------------------ */

/* (major << 16) | minor. A host refuses a plugin whose major differs from its own. Minor versions only append. */
#define SLUICE_ABI_VERSION 0x00010003u
#define SLUICE_ABI_MAJOR 1u
#define SLUICE_ABI_MINOR 3u

/* The version of the Sluice SDK this header belongs to. build_info names it: "sdk=" SLUICE_SDK_VERSION. A host
 * refuses a plugin whose SDK major differs from its own. The Swift SDK reads its version from here too. */
#define SLUICE_SDK_VERSION "0.1.0"

/* The build_info of a plugin that does not link the Swift runtime (docs/abi.md §3.1). */
#define SLUICE_BUILD_INFO_C "toolchain=c;sdk=" SLUICE_SDK_VERSION

/* The sizes of the ABI 1.0 structs: the least struct_size a host accepts for a descriptor and for a batch. */
#define SLUICE_PLUGIN_V1_SIZE_1_0 152u
/* The descriptor sizes of later minors (x86_64 and aarch64): 1.1 and 1.2 end after reduce_invert, 1.3 after
 * update_state. A reducer needs at least the 1.1 size, a state updater the 1.3 size. */
#define SLUICE_PLUGIN_V1_SIZE_1_1 176u
#define SLUICE_PLUGIN_V1_SIZE_1_3 184u
#define SLUICE_BATCH_SIZE_1_0 96u

/* The one symbol a plugin exports. Its type is sluice_entry_fn. */
#define SLUICE_ENTRY_SYMBOL "sluice_plugin_entry_v1"

#if defined(__GNUC__) || defined(__clang__)
#define SLUICE_EXPORT __attribute__((visibility("default")))
#else
#define SLUICE_EXPORT
#endif

/* True when a struct whose first field is `uint32_t struct_size` is large enough to contain FIELD. */
#define SLUICE_HAS_FIELD(ptr, type, field) \
    ((ptr)->struct_size >= offsetof(type, field) + sizeof(((type *)0)->field))

/* ---- Status codes (int32_t) ---------------------------------------------------------------------------------- */

#define SLUICE_OK 0           /* success */
#define SLUICE_ERR 1          /* failure; last_error() says why */
#define SLUICE_ERR_CONFIG 2   /* create(): the configuration is invalid; last_error() names the key */
#define SLUICE_RETRY 3        /* sink: transient failure; the host retries the whole batch with the same id */
#define SLUICE_FATAL 4        /* sink: permanent failure; the host stops the pipeline without committing */
#define SLUICE_UNSUPPORTED 5  /* the function is not implemented by this plugin */

/* ---- Plugin kinds -------------------------------------------------------------------------------------------- */

#define SLUICE_KIND_SOURCE 1u
#define SLUICE_KIND_TRANSFORM 2u
#define SLUICE_KIND_SINK 3u
#define SLUICE_KIND_REDUCER 4u  /* ABI 1.1: a reduce function for keyed operations */
#define SLUICE_KIND_STATE_UPDATER 5u  /* ABI 1.3: the update function of updateStateByKey, over per-key state bytes */

/* ---- Reducer value types (ABI 1.1) ---------------------------------------------------------------------------- */

#define SLUICE_REDUCE_INT64 1u   /* values are int64_t */
#define SLUICE_REDUCE_DOUBLE 2u  /* values are IEEE-754 double */

/* ---- Update-state calls (ABI 1.3) --------------------------------------------------------------------------- */

/* sluice_state_result.action: what becomes of the key's state. */
#define SLUICE_STATE_KEEP 0u    /* the state stays as it was (a key without state stays without) */
#define SLUICE_STATE_SET 1u     /* the state becomes result->state (state_len bytes; 0 is an empty state, not none) */
#define SLUICE_STATE_REMOVE 2u  /* the key's state is dropped; the host forgets the key */

/* sluice_state_update.flags */
#define SLUICE_STATE_PRESENT 0x1u  /* the key has state: update->state, update->state_len (possibly 0 bytes) */

/* The longest state one key may have. A longer result is an error: nothing a pipeline keeps per key is that big, and
 * a garbage length is caught before the host copies from it. */
#define SLUICE_STATE_MAX_BYTES 16777216u

/* ---- Descriptor flags ---------------------------------------------------------------------------------------- */

/* The host may call read() (sources), transform() (transforms), reduce_combine()/reduce_invert() (reducers) or
 * update_state() (state updaters) on one instance from several threads at once. Without this flag the host
 * serialises those calls per instance. */
#define SLUICE_FLAG_CONCURRENT 0x1u

/* ---- Value types of a batch's value column ------------------------------------------------------------------- */

#define SLUICE_VALUE_BYTES 0u  /* variable-length bytes: value_offsets has count+1 entries (Arrow "binary") */
#define SLUICE_VALUE_INT64 1u  /* value_data holds count little-endian int64_t, 8-byte aligned; no offsets */

/* ---- Log levels for sluice_host_api.log ---------------------------------------------------------------------- */

#define SLUICE_LOG_TRACE 0
#define SLUICE_LOG_DEBUG 1
#define SLUICE_LOG_INFO 2
#define SLUICE_LOG_WARNING 3
#define SLUICE_LOG_ERROR 4

/* ---- Batches ------------------------------------------------------------------------------------------------- */

/*
 * A batch of records in columnar form, laid out like Arrow "binary" arrays so that it can be exposed to Arrow
 * without copying. Record i has:
 *   value:     value_data[value_offsets[i] .. value_offsets[i+1])           (value_type == SLUICE_VALUE_BYTES)
 *              ((const int64_t *)value_data)[i]                               (value_type == SLUICE_VALUE_INT64)
 *   key:       key_data[key_offsets[i] .. key_offsets[i+1]) when key_offsets != NULL; no keys otherwise.
 *              When key_validity != NULL, bit (i % 8) of key_validity[i / 8] set means the key is present.
 *   timestamp: timestamps[i] (milliseconds since the Unix epoch) when timestamps != NULL.
 * Offsets are monotonically non-decreasing; offsets[0] need not be 0.
 *
 * Ownership: whoever fills a batch sets `release`. A consumer that receives a batch with release != NULL calls
 * release(batch) exactly once when done with every buffer; release NULL means the batch is borrowed for the
 * duration of the call that passed it. After release the batch's pointers MUST NOT be used.
 */
typedef struct sluice_batch {
    uint32_t struct_size;      /* sizeof(sluice_batch) of the producer */
    uint32_t value_type;       /* SLUICE_VALUE_* */
    uint64_t count;            /* number of records */

    const uint32_t *value_offsets;  /* count+1 entries for SLUICE_VALUE_BYTES; NULL for fixed-width types */
    const uint8_t *value_data;
    uint64_t value_data_len;        /* bytes in value_data */

    const uint32_t *key_offsets;    /* count+1 entries, or NULL when the records have no keys */
    const uint8_t *key_data;
    uint64_t key_data_len;
    const uint8_t *key_validity;    /* optional validity bitmap for keys; NULL = every key present */

    const int64_t *timestamps;      /* optional; NULL = no timestamps */

    void (*release)(struct sluice_batch *batch);
    void *private_data;             /* for the producer's release; never read by the consumer */
} sluice_batch;

/* Identifies one batch of the pipeline. */
typedef struct sluice_batch_info {
    uint32_t struct_size;
    uint32_t reserved;
    uint64_t batch_id;        /* 0, 1, 2, ... in order; a replay after a crash reuses the id */
    int64_t batch_time_ms;    /* the batch's scheduled time, milliseconds since the Unix epoch */
} sluice_batch_info;

/* One call of update_state (ABI 1.3): one key of one batch. Filled by the host, borrowed for the call. */
typedef struct sluice_state_update {
    uint32_t struct_size;        /* the host's sizeof(sluice_state_update) */
    uint32_t flags;              /* SLUICE_STATE_PRESENT when the key has state; unknown bits are to be ignored */
    const uint8_t *key;          /* the key's bytes, not NUL-terminated; non-NULL even when key_len is 0 */
    uint64_t key_len;
    /* The key's records of this batch, in arrival order, values only (key_offsets NULL): a batch of
     * SLUICE_VALUE_BYTES or SLUICE_VALUE_INT64. count == 0 for a key that has state but no records this batch. */
    const sluice_batch *values;
    const uint8_t *state;        /* with SLUICE_STATE_PRESENT the previous state (non-NULL, even for 0 bytes); else NULL */
    uint64_t state_len;
} sluice_state_update;

/* What update_state answers (ABI 1.3). The host zero-fills it, sets struct_size and action = SLUICE_STATE_KEEP. */
typedef struct sluice_state_result {
    uint32_t struct_size;        /* the host's sizeof(sluice_state_result) */
    uint32_t action;             /* SLUICE_STATE_KEEP, _SET or _REMOVE */
    /* SLUICE_STATE_SET: the new state, state_len bytes (at most SLUICE_STATE_MAX_BYTES; NULL only when 0).
     * Owned by the plugin and valid until the host's next call into the instance (with SLUICE_FLAG_CONCURRENT:
     * its next call into the instance from the same thread) or destroy(); or pointing into update->state or
     * update->values' buffers. The host copies it before then. */
    const uint8_t *state;
    uint64_t state_len;
} sluice_state_result;

/* ---- Host services ------------------------------------------------------------------------------------------- */

/* Services the host offers to a plugin instance. Valid from create() until destroy() returns. */
typedef struct sluice_host_api {
    uint32_t struct_size;
    uint32_t abi_version;     /* the host's SLUICE_ABI_VERSION */
    void *host_ctx;           /* pass back unchanged */
    /* Log one message. msg is UTF-8, len bytes, not necessarily NUL-terminated; borrowed for the call.
     * Thread-safe. */
    void (*log)(void *host_ctx, int32_t level, const char *msg, size_t len);
    const char *instance_name; /* the name of this source, stage or sink in the pipeline; NUL-terminated */
    /* ABI 1.1. A directory that is this instance's alone and survives restarts of the pipeline (inside its
     * checkpoint directory), for what a source must keep to replay exactly (a write-ahead log, the files it has
     * indexed). NULL when the pipeline runs without checkpoints. Check struct_size before reading. */
    const char *state_directory;
    /* ABI 1.2. SLUICE_HOST_* flags for the create() call this struct is passed to. Check struct_size before
     * reading: an older host does not set it. */
    uint32_t flags;
} sluice_host_api;

/* ABI 1.2, in sluice_host_api.flags: create() is called only to check the configuration (`sluice validate`).
 * Validate it as fully as you can without side effects — no connections, no threads, no files written — and return
 * SLUICE_OK or SLUICE_ERR_CONFIG naming the key. The host calls last_error() on failure, then destroy(), and makes
 * no other call on the instance. */
#define SLUICE_HOST_CHECK_ONLY 0x1u

/* ---- The plugin descriptor ----------------------------------------------------------------------------------- */

typedef struct sluice_plugin_v1 sluice_plugin_v1;

struct sluice_plugin_v1 {
    uint32_t struct_size;      /* sizeof(sluice_plugin_v1) of the plugin's header */
    uint32_t abi_version;      /* SLUICE_ABI_VERSION the plugin was built against */
    uint32_t kind;             /* SLUICE_KIND_* */
    uint32_t flags;            /* SLUICE_FLAG_* */

    const char *name;          /* unique plugin name, [a-z0-9-]+, e.g. "file-watch" */
    const char *version;       /* the plugin's own version, e.g. "1.2.0" */
    const char *description;   /* one line for `sluice plugins list` */
    const char *build_info;    /* "toolchain=swift-6.3;sdk=0.1.0", or SLUICE_BUILD_INFO_C for a C plugin */
    const char *config_schema; /* JSON Schema (object) of the configuration; "{}" when there is none */
    void *plugin_data;         /* for the plugin; the host never reads it */

    /* Lifecycle. create() receives the configuration as UTF-8 JSON (an object; config_len bytes, borrowed for the
     * call) and stores an opaque instance. On failure it returns SLUICE_ERR or SLUICE_ERR_CONFIG, MAY store an
     * instance so that last_error() can explain, and the host then calls last_error(instance) and destroy(instance)
     * when instance != NULL. */
    int32_t (*create)(const sluice_plugin_v1 *self, const sluice_host_api *host,
                      const char *config_json, size_t config_len, void **instance);
    void (*destroy)(void *instance);
    /* The message of the last failure on this instance: NUL-terminated UTF-8, owned by the plugin, valid until the
     * next call on the instance. NULL when there is none. */
    const char *(*last_error)(void *instance);

    /* TRANSFORM: one batch in, one batch out. `in` is borrowed for the call. The plugin fills *out, which the host
     * releases. `out` MAY point into `in`'s buffers: the host keeps `in` alive until it has released `out`. */
    int32_t (*transform)(void *instance, const sluice_batch *in, sluice_batch *out);

    /* SOURCE, the direct model. Partitions are numbered 0..n-1; each is a sequence of records at offsets 0, 1, 2...
     * partitions(): the current number of partitions (it may grow, never shrink).
     * available(): the range of offsets that can be read now, [*start, *end).
     * read(): fills *out with exactly the records at offsets [from, to) of the partition, which lie inside a
     *         range available() reported. Reading the same range again MUST return the same records.
     * commit(): every record below `offset` in the partition is durably processed; the source may forget them. */
    int32_t (*partitions)(void *instance, uint32_t *count);
    int32_t (*available)(void *instance, uint32_t partition, uint64_t *start, uint64_t *end);
    int32_t (*read)(void *instance, uint32_t partition, uint64_t from, uint64_t to, sluice_batch *out);
    int32_t (*commit)(void *instance, uint32_t partition, uint64_t offset);

    /* SINK: for each batch the host calls begin, then write zero or more times (chunks of the batch, in order,
     * each borrowed for the call), then commit, all from one thread. write and commit return SLUICE_OK,
     * SLUICE_RETRY (the host retries the batch from begin) or SLUICE_FATAL. A begin for a batch id that was begun
     * but not committed discards what was written for it. */
    int32_t (*sink_begin)(void *instance, const sluice_batch_info *info);
    int32_t (*sink_write)(void *instance, const sluice_batch *chunk);
    int32_t (*sink_commit)(void *instance, const sluice_batch_info *info);

    /* ---- ABI 1.1 ---------------------------------------------------------------------------------------------- */

    /* REDUCER: a reduce function that combines the values of many keys in one call, for reduce, reduceByKey, the
     * windowed reductions and updateStateByKey. a, b and out point to n values of reduce_value_type (8 bytes each),
     * borrowed for the call; out may equal a. The function MUST be associative and commutative: the host combines
     * partial results in any grouping. reduce_invert takes b back out of a (out[i] = a[i] - b[i] for a sum), so
     * windows can subtract what leaves them; NULL when there is none. Both may be called from several threads at
     * once on one instance when SLUICE_FLAG_CONCURRENT is set, and return SLUICE_OK or SLUICE_ERR. */
    uint32_t reduce_value_type; /* SLUICE_REDUCE_* */
    uint32_t reserved1;
    int32_t (*reduce_combine)(void *instance, const void *a, const void *b, void *out, uint64_t n);
    int32_t (*reduce_invert)(void *instance, const void *a, const void *b, void *out, uint64_t n);

    /* ---- ABI 1.3 ---------------------------------------------------------------------------------------------- */

    /* STATE_UPDATER: Spark's updateStateByKey function, (this batch's values of a key, its previous state) -> its new
     * state, kept or removed, for `{op: updateStateByKey, function: NAME}`. Called once per key per batch for
     * every key with records or state (values empty for a key with state only), calls for one key in batch order.
     * Calls are serialised per instance unless SLUICE_FLAG_CONCURRENT. The state is the host's (it checkpoints it
     * and hands it back after a restart): the answer MUST depend only on key, values and state. Returns SLUICE_OK
     * with *result filled, or SLUICE_ERR (last_error() says why), which fails the batch. docs/abi.md §9b. */
    int32_t (*update_state)(void *instance, const sluice_state_update *update, sluice_state_result *result);

    /* Minor versions append fields here. */
};

/* The entry point. host_abi_version is the host's SLUICE_ABI_VERSION. The plugin returns a pointer to a descriptor
 * that stays valid for the life of the process, or NULL to refuse the host. */
typedef const sluice_plugin_v1 *(*sluice_entry_fn)(uint32_t host_abi_version);

#ifdef __cplusplus
}
#endif

#endif /* SLUICE_H */
