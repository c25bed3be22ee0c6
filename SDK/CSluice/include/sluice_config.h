/*
 * sluice_config.h — reads the configuration a C plugin's create() receives.
 *
 * The host passes create() a JSON object with every option of the plugin's schema that has a default filled in
 * (docs/abi.md §4). This header turns it into typed values so that a C plugin does not hand-roll a JSON parser. It
 * reads a flat object whose values are strings, numbers, booleans or null; a nested object or array is an error.
 *
 *     sluice_config config;
 *     const char *prefix = ""; size_t prefix_len = 0; int64_t limit = 10;
 *     if (sluice_config_parse(&config, json, json_len) != 0
 *         || sluice_config_get_string(&config, "prefix", &prefix, &prefix_len) < 0
 *         || sluice_config_get_int64(&config, "limit", &limit) < 0
 *         || sluice_config_check_unused(&config) != 0) {
 *         copy config.error to your last_error text; sluice_config_free(&config); return SLUICE_ERR_CONFIG;
 *     }
 *     ... copy what you keep (strings point into `config`) ..., then sluice_config_free(&config);
 *
 * Getters return 1 when the key is present (the value is stored), 0 when it is absent or null (the value is left
 * as it was, so initialise it with the default), and -1 when the value has another type (config.error names the
 * key). Strings are decoded (\" \\ \/ \b \f \n \r \t and \uXXXX, surrogate pairs included) to UTF-8 and
 * NUL-terminated; their length is given too, since "\u0000" may occur inside. Every function is static inline, so
 * this header needs no library: include it in the one file that parses the configuration.
 *
 * Compiles with: gcc -std=c11 -Wall -Wextra -Werror -pedantic
 */
#ifndef SLUICE_CONFIG_H
#define SLUICE_CONFIG_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SLUICE_CONFIG_ERROR_SIZE 256

typedef enum sluice_config_type {
    SLUICE_CONFIG_NULL = 0,
    SLUICE_CONFIG_BOOL = 1,
    SLUICE_CONFIG_NUMBER = 2,
    SLUICE_CONFIG_STRING = 3
} sluice_config_type;

/* One key of the object. */
typedef struct sluice_config_entry {
    char *key;               /* decoded, NUL-terminated */
    size_t key_len;
    sluice_config_type type;
    char *string;            /* SLUICE_CONFIG_STRING: decoded UTF-8, NUL-terminated */
    size_t string_len;
    double number;           /* SLUICE_CONFIG_NUMBER */
    int64_t integer;         /* SLUICE_CONFIG_NUMBER with is_integer */
    bool is_integer;         /* the number is a whole number that fits int64_t */
    bool boolean;            /* SLUICE_CONFIG_BOOL */
    bool used;               /* a getter asked for it (see sluice_config_check_unused) */
} sluice_config_entry;

/* A parsed configuration. Owns its entries until sluice_config_free. */
typedef struct sluice_config {
    sluice_config_entry *entries;
    size_t count;
    char error[SLUICE_CONFIG_ERROR_SIZE]; /* why the last call failed; "" when nothing failed */
} sluice_config;

/* ---- Internals (the parser) ------------------------------------------------------------------------------------ */

typedef struct sluice_config_cursor_ {
    const char *start;
    const char *p;
    const char *end;
    sluice_config *config;
} sluice_config_cursor_;

static inline int sluice_config_syntax_(sluice_config_cursor_ *c, const char *what) {
    snprintf(c->config->error, sizeof c->config->error, "configuration is not valid JSON: %s at byte %zu", what,
             (size_t)(c->p - c->start));
    return -1;
}

static inline void sluice_config_skip_space_(sluice_config_cursor_ *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static inline int sluice_config_hex4_(sluice_config_cursor_ *c, uint32_t *value) {
    if (c->end - c->p < 4) return sluice_config_syntax_(c, "a \\u escape needs four hex digits");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char h = c->p[i];
        v <<= 4;
        if (h >= '0' && h <= '9') v |= (uint32_t)(h - '0');
        else if (h >= 'a' && h <= 'f') v |= (uint32_t)(h - 'a' + 10);
        else if (h >= 'A' && h <= 'F') v |= (uint32_t)(h - 'A' + 10);
        else return sluice_config_syntax_(c, "a \\u escape needs four hex digits");
    }
    c->p += 4;
    *value = v;
    return 0;
}

static inline size_t sluice_config_utf8_(uint32_t code, char *out) {
    if (code < 0x80) { out[0] = (char)code; return 1; }
    if (code < 0x800) {
        out[0] = (char)(0xC0 | (code >> 6));
        out[1] = (char)(0x80 | (code & 0x3F));
        return 2;
    }
    if (code < 0x10000) {
        out[0] = (char)(0xE0 | (code >> 12));
        out[1] = (char)(0x80 | ((code >> 6) & 0x3F));
        out[2] = (char)(0x80 | (code & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (code >> 18));
    out[1] = (char)(0x80 | ((code >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((code >> 6) & 0x3F));
    out[3] = (char)(0x80 | (code & 0x3F));
    return 4;
}

/* Parses the string at c->p (an opening quote) into a malloc'd, NUL-terminated buffer. Decoding never makes a
 * string longer than its JSON text, so the buffer is sized by the text up to the closing quote. */
static inline int sluice_config_string_(sluice_config_cursor_ *c, char **out, size_t *out_len) {
    if (c->p >= c->end || *c->p != '"') return sluice_config_syntax_(c, "expected a string");
    c->p++;
    const char *scan = c->p;
    while (scan < c->end && *scan != '"') scan += (*scan == '\\' && scan + 1 < c->end) ? 2 : 1;
    if (scan >= c->end) return sluice_config_syntax_(c, "unterminated string");
    char *buffer = malloc((size_t)(scan - c->p) + 1);
    if (!buffer) {
        snprintf(c->config->error, sizeof c->config->error, "out of memory reading the configuration");
        return -1;
    }
    size_t n = 0;
    while (*c->p != '"') {
        unsigned char ch = (unsigned char)*c->p;
        if (ch < 0x20) { free(buffer); return sluice_config_syntax_(c, "control character in a string"); }
        c->p++;
        if (ch != '\\') { buffer[n++] = (char)ch; continue; }
        char e = *c->p++;
        switch (e) {
        case '"': case '\\': case '/': buffer[n++] = e; break;
        case 'b': buffer[n++] = '\b'; break;
        case 'f': buffer[n++] = '\f'; break;
        case 'n': buffer[n++] = '\n'; break;
        case 'r': buffer[n++] = '\r'; break;
        case 't': buffer[n++] = '\t'; break;
        case 'u': {
            uint32_t code;
            if (sluice_config_hex4_(c, &code) != 0) { free(buffer); return -1; }
            if (code >= 0xDC00 && code <= 0xDFFF) {
                free(buffer);
                return sluice_config_syntax_(c, "a low surrogate without a high one");
            }
            if (code >= 0xD800 && code <= 0xDBFF) {
                uint32_t low;
                if (c->end - c->p < 2 || c->p[0] != '\\' || c->p[1] != 'u') {
                    free(buffer);
                    return sluice_config_syntax_(c, "a high surrogate without a low one");
                }
                c->p += 2;
                if (sluice_config_hex4_(c, &low) != 0) { free(buffer); return -1; }
                if (low < 0xDC00 || low > 0xDFFF) {
                    free(buffer);
                    return sluice_config_syntax_(c, "a high surrogate without a low one");
                }
                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
            }
            n += sluice_config_utf8_(code, buffer + n);
            break;
        }
        default: free(buffer); return sluice_config_syntax_(c, "unknown escape in a string");
        }
    }
    c->p++;
    buffer[n] = '\0';
    *out = buffer;
    *out_len = n;
    return 0;
}

static inline int sluice_config_digits_(sluice_config_cursor_ *c) {
    const char *from = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++;
    return c->p > from ? 0 : sluice_config_syntax_(c, "expected a digit");
}

/* A number in JSON's grammar, kept as a double and, when it is written as a whole number that fits, an int64_t. */
static inline int sluice_config_number_(sluice_config_cursor_ *c, sluice_config_entry *entry) {
    const char *from = c->p;
    bool whole = true;
    if (c->p < c->end && *c->p == '-') c->p++;
    if (c->p < c->end && *c->p == '0') c->p++;
    else if (sluice_config_digits_(c) != 0) return -1;
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        whole = false;
        if (sluice_config_digits_(c) != 0) return -1;
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        whole = false;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-')) c->p++;
        if (sluice_config_digits_(c) != 0) return -1;
    }
    char text[64];
    size_t length = (size_t)(c->p - from);
    if (length >= sizeof text) return sluice_config_syntax_(c, "number too long");
    memcpy(text, from, length);
    text[length] = '\0';
    entry->type = SLUICE_CONFIG_NUMBER;
    entry->number = strtod(text, NULL);
    if (whole) {
        errno = 0;
        long long value = strtoll(text, NULL, 10);
        entry->is_integer = errno == 0;
        entry->integer = (int64_t)value;
    } else if (entry->number >= -9007199254740992.0 && entry->number <= 9007199254740992.0 &&
               entry->number == (double)(int64_t)entry->number) {
        entry->is_integer = true;   /* 1e3, 2.0: whole numbers written another way */
        entry->integer = (int64_t)entry->number;
    }
    return 0;
}

static inline int sluice_config_literal_(sluice_config_cursor_ *c, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0) return sluice_config_syntax_(c, "unexpected value");
    c->p += n;
    return 0;
}

static inline int sluice_config_value_(sluice_config_cursor_ *c, sluice_config_entry *entry) {
    if (c->p >= c->end) return sluice_config_syntax_(c, "expected a value");
    switch (*c->p) {
    case '"':
        entry->type = SLUICE_CONFIG_STRING;
        return sluice_config_string_(c, &entry->string, &entry->string_len);
    case 't': entry->type = SLUICE_CONFIG_BOOL; entry->boolean = true; return sluice_config_literal_(c, "true");
    case 'f': entry->type = SLUICE_CONFIG_BOOL; entry->boolean = false; return sluice_config_literal_(c, "false");
    case 'n': entry->type = SLUICE_CONFIG_NULL; return sluice_config_literal_(c, "null");
    case '{': case '[':
        snprintf(c->config->error, sizeof c->config->error,
                 "configuration key '%s': nested objects and arrays are not supported by sluice_config.h", entry->key);
        return -1;
    default:
        if (*c->p == '-' || (*c->p >= '0' && *c->p <= '9')) return sluice_config_number_(c, entry);
        return sluice_config_syntax_(c, "unexpected value");
    }
}

static inline sluice_config_entry *sluice_config_find_(sluice_config *config, const char *key) {
    for (size_t i = 0; i < config->count; i++) {
        if (strcmp(config->entries[i].key, key) == 0) return &config->entries[i];
    }
    return NULL;
}

static inline const char *sluice_config_type_name_(sluice_config_type type) {
    switch (type) {
    case SLUICE_CONFIG_BOOL: return "a boolean";
    case SLUICE_CONFIG_NUMBER: return "a number";
    case SLUICE_CONFIG_STRING: return "a string";
    default: return "null";
    }
}

/* The entry for `key` when it holds `type`; NULL with *status 0 (absent or null) or -1 (another type). */
static inline sluice_config_entry *sluice_config_lookup_(sluice_config *config, const char *key,
                                                         sluice_config_type type, const char *expected, int *status) {
    sluice_config_entry *entry = sluice_config_find_(config, key);
    *status = 0;
    if (!entry) return NULL;
    entry->used = true;
    if (entry->type == SLUICE_CONFIG_NULL) return NULL;
    if (entry->type != type) {
        snprintf(config->error, sizeof config->error, "configuration key '%s': expected %s, got %s", key, expected,
                 sluice_config_type_name_(entry->type));
        *status = -1;
        return NULL;
    }
    return entry;
}

/* ---- The API -------------------------------------------------------------------------------------------------- */

/* Frees what sluice_config_parse allocated. Safe on a config whose parse failed, and to call twice. */
static inline void sluice_config_free(sluice_config *config) {
    for (size_t i = 0; i < config->count; i++) {
        free(config->entries[i].key);
        free(config->entries[i].string);
    }
    free(config->entries);
    config->entries = NULL;
    config->count = 0;
}

/* Parses `len` bytes of JSON (not necessarily NUL-terminated). Empty text counts as {}. Returns 0, or -1 with
 * config->error saying what is wrong and where. A key given twice is an error. */
static inline int sluice_config_parse(sluice_config *config, const char *json, size_t len) {
    memset(config, 0, sizeof *config);
    if (!json) { json = ""; len = 0; }
    sluice_config_cursor_ cursor = {json, json, json + len, config};
    sluice_config_cursor_ *c = &cursor;
    size_t capacity = 0;
    sluice_config_skip_space_(c);
    if (c->p == c->end) return 0;
    if (*c->p != '{') { sluice_config_syntax_(c, "the configuration must be an object"); goto fail; }
    c->p++;
    sluice_config_skip_space_(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
    } else {
        for (;;) {
            if (config->count == capacity) {
                size_t grown = capacity ? capacity * 2 : 8;
                sluice_config_entry *entries = realloc(config->entries, grown * sizeof *entries);
                if (!entries) { snprintf(config->error, sizeof config->error, "out of memory"); goto fail; }
                config->entries = entries;
                capacity = grown;
            }
            sluice_config_entry *entry = &config->entries[config->count];
            memset(entry, 0, sizeof *entry);
            sluice_config_skip_space_(c);
            if (sluice_config_string_(c, &entry->key, &entry->key_len) != 0) goto fail;
            config->count++;  /* from here on sluice_config_free frees the entry */
            if (sluice_config_find_(config, entry->key) != entry) {
                snprintf(config->error, sizeof config->error, "configuration key '%s' is given twice", entry->key);
                goto fail;
            }
            sluice_config_skip_space_(c);
            if (c->p >= c->end || *c->p != ':') { sluice_config_syntax_(c, "expected ':' after a key"); goto fail; }
            c->p++;
            sluice_config_skip_space_(c);
            if (sluice_config_value_(c, entry) != 0) goto fail;
            sluice_config_skip_space_(c);
            if (c->p < c->end && *c->p == ',') { c->p++; continue; }
            if (c->p < c->end && *c->p == '}') { c->p++; break; }
            sluice_config_syntax_(c, "expected ',' or '}'");
            goto fail;
        }
    }
    sluice_config_skip_space_(c);
    if (c->p != c->end) { sluice_config_syntax_(c, "unexpected text after the object"); goto fail; }
    return 0;
fail:
    sluice_config_free(config);
    return -1;
}

/* A string option. *value points into `config` (valid until sluice_config_free); *len may be NULL. */
static inline int sluice_config_get_string(sluice_config *config, const char *key, const char **value, size_t *len) {
    int status;
    sluice_config_entry *entry = sluice_config_lookup_(config, key, SLUICE_CONFIG_STRING, "a string", &status);
    if (!entry) return status;
    *value = entry->string;
    if (len) *len = entry->string_len;
    return 1;
}

/* An integer option: a whole number that fits int64_t (1.5 and 1e30 are errors). */
static inline int sluice_config_get_int64(sluice_config *config, const char *key, int64_t *value) {
    int status;
    sluice_config_entry *entry = sluice_config_lookup_(config, key, SLUICE_CONFIG_NUMBER, "an integer", &status);
    if (!entry) return status;
    if (!entry->is_integer) {
        snprintf(config->error, sizeof config->error, "configuration key '%s': expected an integer, got %g", key,
                 entry->number);
        return -1;
    }
    *value = entry->integer;
    return 1;
}

/* A number option. */
static inline int sluice_config_get_double(sluice_config *config, const char *key, double *value) {
    int status;
    sluice_config_entry *entry = sluice_config_lookup_(config, key, SLUICE_CONFIG_NUMBER, "a number", &status);
    if (!entry) return status;
    *value = entry->number;
    return 1;
}

/* A boolean option. */
static inline int sluice_config_get_bool(sluice_config *config, const char *key, bool *value) {
    int status;
    sluice_config_entry *entry = sluice_config_lookup_(config, key, SLUICE_CONFIG_BOOL, "a boolean", &status);
    if (!entry) return status;
    *value = entry->boolean;
    return 1;
}

/* After the getters: 0 when every key was asked for, else -1 with config->error naming the first unknown key (the
 * message create() should return with SLUICE_ERR_CONFIG for a schema with "additionalProperties": false). */
static inline int sluice_config_check_unused(sluice_config *config) {
    for (size_t i = 0; i < config->count; i++) {
        if (!config->entries[i].used) {
            snprintf(config->error, sizeof config->error, "unknown configuration key '%s'", config->entries[i].key);
            return -1;
        }
    }
    return 0;
}

#ifdef __cplusplus
}
#endif

#endif /* SLUICE_CONFIG_H */
