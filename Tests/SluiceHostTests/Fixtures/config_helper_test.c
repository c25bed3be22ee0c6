/* Unit tests of SDK/CSluice/include/sluice_config.h. Prints one line per failed expectation and exits 1 if any
 * failed; ConfigHelperTests compiles it with -pedantic -Werror and runs it. */
#include <stdio.h>
#include <string.h>
#include "sluice_config.h"

static int failures = 0;

#define EXPECT(cond)                                                                   \
    do {                                                                               \
        if (!(cond)) { printf("FAIL line %d: %s\n", __LINE__, #cond); failures++; }    \
    } while (0)

static int parse(sluice_config *config, const char *json) { return sluice_config_parse(config, json, strlen(json)); }

/* Parses `json`, expects it to fail with an error containing `needle`. */
static void expect_parse_error(const char *json, const char *needle) {
    sluice_config config;
    int status = parse(&config, json);
    if (status != -1 || !strstr(config.error, needle)) {
        printf("FAIL: parsing %s gave %d, error '%s', expected one containing '%s'\n", json, status, config.error, needle);
        failures++;
    }
    sluice_config_free(&config);
}

int main(void) {
    sluice_config config;

    /* Every type, with escapes and surrogate pairs. */
    EXPECT(parse(&config, " {\"s\": \"a\\\"b\\\\c\\/d\\n\\t\\u00e9\\u20ac\\ud83d\\ude00\", \"i\": -42, \"big\": 9007199254740993,"
                          " \"d\": 2.5e1, \"whole\": 1e3, \"t\": true, \"f\": false, \"n\": null, \"z\": \"\\u0000x\"} ") == 0);
    const char *s = NULL;
    size_t len = 0;
    EXPECT(sluice_config_get_string(&config, "s", &s, &len) == 1);
    EXPECT(s && strcmp(s, "a\"b\\c/d\n\t\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80") == 0);
    EXPECT(len == strlen("a\"b\\c/d\n\t\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
    EXPECT(sluice_config_get_string(&config, "z", &s, &len) == 1 && len == 2 && s[0] == '\0' && s[1] == 'x');
    int64_t i = 0;
    EXPECT(sluice_config_get_int64(&config, "i", &i) == 1 && i == -42);
    EXPECT(sluice_config_get_int64(&config, "big", &i) == 1 && i == 9007199254740993LL);
    EXPECT(sluice_config_get_int64(&config, "whole", &i) == 1 && i == 1000);
    double d = 0;
    EXPECT(sluice_config_get_double(&config, "d", &d) == 1 && d == 25.0);
    EXPECT(sluice_config_get_double(&config, "i", &d) == 1 && d == -42.0);
    bool b = false;
    EXPECT(sluice_config_get_bool(&config, "t", &b) == 1 && b);
    EXPECT(sluice_config_get_bool(&config, "f", &b) == 1 && !b);
    /* Absent and null leave the value alone. */
    i = 7;
    EXPECT(sluice_config_get_int64(&config, "missing", &i) == 0 && i == 7);
    EXPECT(sluice_config_get_int64(&config, "n", &i) == 0 && i == 7);
    /* A wrong type names the key. */
    EXPECT(sluice_config_get_bool(&config, "s", &b) == -1);
    EXPECT(strcmp(config.error, "configuration key 's': expected a boolean, got a string") == 0);
    EXPECT(sluice_config_get_int64(&config, "d", &i) == 1 && i == 25);
    EXPECT(sluice_config_check_unused(&config) == 0);
    sluice_config_free(&config);

    EXPECT(parse(&config, "{\"x\": 1.5, \"y\": 1}") == 0);
    EXPECT(sluice_config_get_int64(&config, "x", &i) == -1 && strstr(config.error, "'x': expected an integer"));
    EXPECT(sluice_config_check_unused(&config) == -1 && strcmp(config.error, "unknown configuration key 'y'") == 0);
    sluice_config_free(&config);
    sluice_config_free(&config); /* twice is safe */

    /* Empty text and {} are empty configurations. */
    EXPECT(sluice_config_parse(&config, NULL, 0) == 0 && config.count == 0);
    EXPECT(parse(&config, "  { } ") == 0 && config.count == 0);
    sluice_config_free(&config);
    /* Not NUL-terminated: only len bytes are read. */
    EXPECT(sluice_config_parse(&config, "{\"a\":true}garbage", 10) == 0 && config.count == 1);
    sluice_config_free(&config);

    /* Malformed JSON and unsupported shapes. */
    expect_parse_error("[1]", "must be an object");
    expect_parse_error("{\"a\" 1}", "expected ':'");
    expect_parse_error("{\"a\": 1,}", "expected a string");
    expect_parse_error("{\"a\": 1", "expected ',' or '}'");
    expect_parse_error("{\"a\": 01}", "expected ',' or '}'");
    expect_parse_error("{\"a\": -}", "expected a digit");
    expect_parse_error("{\"a\": 1.}", "expected a digit");
    expect_parse_error("{\"a\": tru}", "unexpected value");
    expect_parse_error("{\"a\": \"x}", "unterminated string");
    expect_parse_error("{\"a\": \"\\q\"}", "unknown escape");
    expect_parse_error("{\"a\": \"\\u12g4\"}", "four hex digits");
    expect_parse_error("{\"a\": \"\\ud83d\"}", "high surrogate without a low one");
    expect_parse_error("{\"a\": \"\\ude00\"}", "low surrogate without a high one");
    expect_parse_error("{\"a\": \"tab\there\"}", "control character");
    expect_parse_error("{\"a\": {\"b\": 1}}", "'a': nested objects and arrays are not supported");
    expect_parse_error("{\"a\": [1]}", "'a': nested objects and arrays");
    expect_parse_error("{\"a\": 1, \"a\": 2}", "'a' is given twice");
    expect_parse_error("{} x", "unexpected text after the object");

    if (failures) printf("%d failure(s)\n", failures);
    else printf("all passed\n");
    return failures ? 1 : 0;
}
