#ifndef SLUICE_SEPARATOR_MASK_H
#define SLUICE_SEPARATOR_MASK_H

#include <stdint.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Which of the 64 bytes at `p` are one of the separators `a`, `b`, `c`, `d` (repeat one to test fewer): bit i is set
 * when p[i] is. Reads exactly 64 bytes.
 *
 * `split` looks for separators 64 bytes at a time, then walks the set bits: its loop then branches once per word on
 * a condition that is almost always the same, where a byte-by-byte or word-by-word search ends at an unpredictable
 * place in every word. Swift's SIMD types have no way to gather a comparison into a bit mask (SSE2's movemask), so
 * this is C, compiled inline into the Swift caller. */
static inline uint64_t sluice_separator_mask64(const uint8_t *p, uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
#if defined(__SSE2__)
    const __m128i va = _mm_set1_epi8((char)a), vb = _mm_set1_epi8((char)b);
    const __m128i vc = _mm_set1_epi8((char)c), vd = _mm_set1_epi8((char)d);
    uint64_t mask = 0;
    for (int i = 0; i < 4; i++) {
        const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * i));
        const __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, va), _mm_cmpeq_epi8(v, vb)),
                                         _mm_or_si128(_mm_cmpeq_epi8(v, vc), _mm_cmpeq_epi8(v, vd)));
        mask |= (uint64_t)(uint16_t)_mm_movemask_epi8(hit) << (16 * i);
    }
    return mask;
#else
    uint64_t mask = 0;
    for (int i = 0; i < 64; i++) {
        const uint8_t x = p[i];
        mask |= (uint64_t)((x == a) | (x == b) | (x == c) | (x == d)) << i;
    }
    return mask;
#endif
}

#endif
