/*
 * The baseline: a hand-written, single-threaded C word count with an open-addressing hash map.
 * Reads each file in 1 MiB chunks, splits on spaces, tabs and newlines, counts every word of all the files together.
 *
 *   wc_baseline [-o COUNTS_OUT] INPUT...
 *
 * Prints "lines words distinct" on stdout; writes word<TAB>count lines to COUNTS_OUT when given. A file's last line
 * counts as a line whether or not it ends with a newline, and no word spans two files (as for a line-based reader).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct { uint64_t hash; uint32_t start, length; int64_t count; } entry;

static entry *entries;
static size_t entry_count, entry_capacity;
static int32_t *slots;
static size_t mask;
static char *arena;
static size_t arena_used, arena_capacity;

static uint64_t hash_bytes(const char *p, size_t n) {     /* FNV-1a, 64 bit */
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}

static void grow_slots(void) {
    size_t size = (mask + 1) * 2;
    free(slots);
    slots = malloc(size * sizeof *slots);
    memset(slots, 0xff, size * sizeof *slots);
    mask = size - 1;
    for (size_t i = 0; i < entry_count; i++) {
        size_t j = entries[i].hash & mask;
        while (slots[j] >= 0) j = (j + 1) & mask;
        slots[j] = (int32_t)i;
    }
}

static void count_word(const char *word, size_t n) {
    uint64_t h = hash_bytes(word, n);
    size_t j = h & mask;
    for (;;) {
        int32_t s = slots[j];
        if (s < 0) break;
        entry *e = &entries[s];
        if (e->hash == h && e->length == n && memcmp(arena + e->start, word, n) == 0) { e->count++; return; }
        j = (j + 1) & mask;
    }
    if (arena_used + n > arena_capacity) { arena_capacity = (arena_capacity + n) * 2; arena = realloc(arena, arena_capacity); }
    memcpy(arena + arena_used, word, n);
    if (entry_count == entry_capacity) { entry_capacity *= 2; entries = realloc(entries, entry_capacity * sizeof *entries); }
    entries[entry_count] = (entry){ h, (uint32_t)arena_used, (uint32_t)n, 1 };
    slots[j] = (int32_t)entry_count++;
    arena_used += n;
    if (entry_count * 2 > mask + 1) grow_slots();
}

/* Counts the words of one file into the table; adds its lines and words to the totals. */
static int count_file(const char *path, char *buffer, size_t chunk, long long *lines, long long *words) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) { perror(path); return 1; }
    size_t carry = 0;                       /* bytes of an unfinished word at the start of buffer */
    for (;;) {
        ssize_t n = read(fd, buffer + carry, chunk);
        if (n < 0) { perror(path); close(fd); return 1; }
        size_t end = carry + (size_t)n;
        size_t start = 0;
        for (size_t i = 0; i < end; i++) {
            char c = buffer[i];
            if (c == ' ' || c == '\t' || c == '\n') {
                if (i > start) { count_word(buffer + start, i - start); (*words)++; }
                if (c == '\n') (*lines)++;
                start = i + 1;
            }
        }
        if (n == 0) {
            if (end > start) { count_word(buffer + start, end - start); (*words)++; (*lines)++; }
            break;
        }
        carry = end - start;
        if (carry > 4096) { fprintf(stderr, "%s: a word longer than 4096 bytes\n", path); close(fd); return 1; }
        memmove(buffer, buffer + start, carry);
    }
    close(fd);
    return 0;
}

int main(int argc, char **argv) {
    const char *counts_out = NULL;
    int first = 1;
    if (argc > 2 && strcmp(argv[1], "-o") == 0) { counts_out = argv[2]; first = 3; }
    if (first >= argc) { fprintf(stderr, "usage: %s [-o COUNTS_OUT] INPUT...\n", argv[0]); return 2; }
    mask = (1 << 16) - 1;
    slots = malloc((mask + 1) * sizeof *slots);
    memset(slots, 0xff, (mask + 1) * sizeof *slots);
    entry_capacity = 1 << 15;
    entries = malloc(entry_capacity * sizeof *entries);
    arena_capacity = 1 << 20;
    arena = malloc(arena_capacity);

    enum { CHUNK = 1 << 20 };
    char *buffer = malloc(CHUNK + 4096);
    long long lines = 0, words = 0;
    for (int i = first; i < argc; i++)
        if (count_file(argv[i], buffer, CHUNK, &lines, &words) != 0) return 1;
    printf("%lld %lld %zu\n", lines, words, entry_count);
    if (counts_out) {
        FILE *out = fopen(counts_out, "w");
        if (!out) { perror(counts_out); return 1; }
        for (size_t i = 0; i < entry_count; i++)
            fprintf(out, "%.*s\t%lld\n", (int)entries[i].length, arena + entries[i].start, (long long)entries[i].count);
        fclose(out);
    }
    return 0;
}
