/*
 * Generates the word-count benchmark's input: N lines of words drawn from a Zipf-like distribution over a fixed
 * vocabulary of synthetic lowercase words, deterministic for a seed.
 *
 *   gen_words OUTPUT [LINES=1000000] [VOCABULARY=50000] [SEED=42]
 *
 * With the defaults: ~104 MB, ~16 words per line on average, ~50 k distinct words.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t state;
static uint64_t next(void) {               /* splitmix64 */
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double uniform(void) { return (double)(next() >> 11) / 9007199254740992.0; }

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s OUTPUT [LINES] [VOCABULARY] [SEED]\n", argv[0]); return 2; }
    long lines = argc > 2 ? atol(argv[2]) : 1000000;
    long vocabulary = argc > 3 ? atol(argv[3]) : 50000;
    state = argc > 4 ? (uint64_t)atoll(argv[4]) : 42;
    if (lines <= 0 || vocabulary <= 0) { fprintf(stderr, "LINES and VOCABULARY must be positive\n"); return 2; }

    /* The vocabulary: word i spelled in base 26 with a length of 2..9 letters, so words are distinct. */
    char (*words)[16] = malloc((size_t)vocabulary * 16);
    unsigned char *lengths = malloc((size_t)vocabulary);
    for (long i = 0; i < vocabulary; i++) {
        long v = i;
        int n = 0;
        do { words[i][n++] = (char)('a' + v % 26); v /= 26; } while (v > 0);
        int target = 1 + (int)(next() % 8);
        while (n < target) words[i][n++] = (char)('a' + next() % 26);
        words[i][n++] = (char)('a' + i % 7);  /* keeps padded spellings distinct from shorter ones */
        lengths[i] = (unsigned char)n;
    }
    /* Zipf-like: rank = floor(V^u) - 1 gives a heavy head and a long tail. */
    FILE *out = fopen(argv[1], "w");
    if (!out) { perror(argv[1]); return 1; }
    static char buffer[1 << 20];
    setvbuf(out, buffer, _IOFBF, sizeof buffer);
    double logV = log((double)vocabulary + 1);
    for (long line = 0; line < lines; line++) {
        int count = 6 + (int)(next() % 21);   /* 6..26 words, mean 16 */
        for (int w = 0; w < count; w++) {
            long rank = (long)exp(uniform() * logV) - 1;
            if (rank >= vocabulary) rank = vocabulary - 1;
            if (w) fputc(' ', out);
            fwrite(words[rank], 1, lengths[rank], out);
        }
        fputc('\n', out);
    }
    if (fclose(out) != 0) { perror(argv[1]); return 1; }
    free(words);
    free(lengths);
    return 0;
}
