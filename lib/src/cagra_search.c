/*
 * cagra_search.c - CAGRA search on the CPU.
 *
 * Sources: Ootomo et al., "CAGRA: Highly Parallel Graph Construction and
 * Approximate Nearest Neighbor Search for GPUs", ICDE 2024, section V;
 * notes/algorithms.md 7.2 (plan: itopk rounding, auto max_iterations),
 * 7.3 (seeds), 7.4 (the single-CTA loop) and 13 (CPU simplifications).
 *
 * One query per thread (OpenMP over queries).  Per query:
 *  - the internal top-k list holds at most itopk entries sorted by
 *    (key, id), where key is "smaller is better" (squared L2, -dot,
 *    -cos, L1); each entry is one uint64: the order-preserving bits of
 *    the float key, the id and a "parent" flag in the lowest bit, so one
 *    integer comparison orders by (key, id) and insertion is a memmove;
 *  - seeds: the itopk + search_width x graph_degree slots of the GPU
 *    buffer, slot i trial j at xorshift64((i + slots x j) ^ rand_xor_mask)
 *    mod rows, the best trial kept, a node seen by an earlier slot dropped
 *    (the same ids for every query, as single-CTA has them);
 *  - each iteration takes the first search_width entries without the
 *    parent flag (flagging them), gathers their unvisited neighbours, and
 *    computes each distance, inserting those that beat the list's worst;
 *    a parent that fails the filter leaves the list after its expansion;
 *    the loop ends when no unexpanded entry is left or after
 *    max_iterations - 1 expansions (the GPU loop checks iter + 1 ==
 *    max_iterations before expanding);
 *  - the first k entries that pass the filter are returned.
 * What is simpler than on the GPU (notes 13): an exact visited set (a
 * bitmap of rows bits per thread, 7.5 KB for 60000 rows, so it stays in
 * L1; the words a query set are recorded and cleared after it) instead of
 * the small/forgettable hash tables, so a node is never evaluated twice.
 *
 * Speed: distances are computed directly on the stored dtype with AVX-512
 * or AVX2 kernels (picked at run time); the whole row of the next
 * candidate is prefetched while the current one is computed (the search
 * is bound by memory: rows are read at random); the index hands the CPU a
 * lossless u8/i8/f16 copy of f32 vectors whose values allow it (index.c,
 * cagra_narrow), which reads 4x (2x) fewer bytes for identical results.
 */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define ANN_X86 1
#else
#define ANN_X86 0
#endif

#include "cagra_internal.h"
#include "internal.h"

/* ------------------------- parameter table ------------------------- */

void ann_cagra_search_params_init(ann_cagra_search_params *p)
{
    memset(p, 0, sizeof *p);
    p->itopk_size = 64;
    p->search_width = 1;
    p->max_iterations = 0;
    p->min_iterations = 0;
    p->num_random_samplings = 1;
    p->rand_xor_mask = 0x128394;
    p->algo = ANN_CAGRA_SEARCH_AUTO;
    p->team_size = 0;
    p->thread_block_size = 0;
    p->max_queries = 0;
    p->hashmap_mode = ANN_CAGRA_HASHMAP_AUTO;
    p->hashmap_min_bitlen = 0;
    p->hashmap_max_fill_rate = 0.5f;
}

static const ann_param_desc cagra_search_table[] = {
    {"itopk_size", ANN_PARAM_INT32, offsetof(ann_cagra_search_params, itopk_size), 1, 65536, NULL,
     "candidates kept per query (rounded up to a multiple of 32; at least k)"},
    {"search_width", ANN_PARAM_INT32, offsetof(ann_cagra_search_params, search_width), 1, 1024, NULL,
     "nodes expanded per iteration"},
    {"max_iterations", ANN_PARAM_INT32, offsetof(ann_cagra_search_params, max_iterations), 0, 1 << 30, NULL,
     "most iterations (0 = auto: itopk_size / search_width + log of rows)"},
    {"min_iterations", ANN_PARAM_INT32, offsetof(ann_cagra_search_params, min_iterations), 0, 1 << 30, NULL,
     "fewest iterations"},
    {"num_random_samplings", ANN_PARAM_INT32, offsetof(ann_cagra_search_params, num_random_samplings), 1, 1024,
     NULL, "random trials per initial candidate (the best is kept)"},
    {"rand_xor_mask", ANN_PARAM_INT64, offsetof(ann_cagra_search_params, rand_xor_mask), 0, 9.0e18, NULL,
     "mask of the seed generator (accepts 0x hex)"},
    {"search_algo", ANN_PARAM_ENUM, offsetof(ann_cagra_search_params, algo), 0, 3,
     "auto|single_cta|multi_cta|multi_kernel", "CUDA kernel, cuVS's algo (ignored on the CPU)"},
    {"team_size", ANN_PARAM_INT32, offsetof(ann_cagra_search_params, team_size), 0, 32, NULL,
     "CUDA threads per distance: 0, 4, 8, 16, 32 (ignored on the CPU)"},
    {"thread_block_size", ANN_PARAM_INT32, offsetof(ann_cagra_search_params, thread_block_size), 0, 1024, NULL,
     "CUDA block size: 0, 64, 128, 256, 512, 1024 (ignored on the CPU)"},
    {"max_queries", ANN_PARAM_INT32, offsetof(ann_cagra_search_params, max_queries), 0, 1 << 30, NULL,
     "CUDA queries per launch, 0 = all (ignored on the CPU)"},
    {"hashmap_mode", ANN_PARAM_ENUM, offsetof(ann_cagra_search_params, hashmap_mode), 0, 2, "auto|hash|small",
     "CUDA visited table (ignored on the CPU: exact visited set)"},
    {"hashmap_min_bitlen", ANN_PARAM_INT32, offsetof(ann_cagra_search_params, hashmap_min_bitlen), 0, 20, NULL,
     "CUDA visited table size, log2 (ignored on the CPU)"},
    {"hashmap_max_fill_rate", ANN_PARAM_FLOAT, offsetof(ann_cagra_search_params, hashmap_max_fill_rate), 0.1, 0.9,
     NULL, "CUDA visited table fill limit (ignored on the CPU)"},
};

const ann_param_desc *ann_cagra_search_param_table(size_t *n)
{
    *n = sizeof cagra_search_table / sizeof cagra_search_table[0];
    return cagra_search_table;
}

/* ------------------------- distance kernels ------------------------- */

/*
 * kernel(q, x, d): q is d floats padded with zeros to a multiple of 64, x
 * one stored row; squared L2, q . x or L1.  Every dtype's kernel converts
 * each element to float and runs the same float operations in the same
 * order, so a row stored as u8 gives the bit-identical result of the same
 * row stored as f32.  (Stopping early once a partial sum exceeds the
 * list's worst key was measured: no gain once the whole row is prefetched.)
 */
typedef float (*dist_fn)(const float *q, const void *x, int64_t d);

static inline float f16_to_f32_scalar(uint16_t h)
{
    return ann_f16_to_f32(h);
}

#define SCALAR_KERNELS(NAME, T, CONV)                                                                              \
    static float l2_##NAME##_sc(const float *q, const void *xv, int64_t d)                           \
    {                                                                                                              \
        const T *x = xv;                                                                                           \
        float s = 0;                                                                                               \
        int64_t j = 0;                                                                                             \
        for (; j < d; j++) {                                                                                       \
            float t = q[j] - CONV(x[j]);                                                                           \
            s += t * t;                                                                                            \
        }                                                                                                          \
        return s;                                                                                                  \
    }                                                                                                              \
    static float dot_##NAME##_sc(const float *q, const void *xv, int64_t d)                          \
    {                                                                                                              \
        const T *x = xv;                                                                                           \
        float s = 0;                                                                                               \
        for (int64_t j = 0; j < d; j++)                                                                            \
            s += q[j] * CONV(x[j]);                                                                                \
        return s;                                                                                                  \
    }                                                                                                              \
    static float l1_##NAME##_sc(const float *q, const void *xv, int64_t d)                           \
    {                                                                                                              \
        const T *x = xv;                                                                                           \
        float s = 0;                                                                                               \
        for (int64_t j = 0; j < d; j++) {                                                                          \
            s += fabsf(q[j] - CONV(x[j]));                                                                         \
        }                                                                                                          \
        return s;                                                                                                  \
    }

#define CONV_ID(v) (v)
#define CONV_F(v) ((float)(v))
SCALAR_KERNELS(f32, float, CONV_ID)
SCALAR_KERNELS(f16, uint16_t, f16_to_f32_scalar)
SCALAR_KERNELS(i8, int8_t, CONV_F)
SCALAR_KERNELS(u8, uint8_t, CONV_F)

#if ANN_X86
#define TGT512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))
#define TGT256 __attribute__((target("avx2,fma,f16c")))

/* 16 elements of a row from element j as floats; masked: only the lanes of m (others 0). */
TGT512 static inline __m512 ld512_f32(const void *x, int64_t j) { return _mm512_loadu_ps((const float *)x + j); }
TGT512 static inline __m512 mld512_f32(const void *x, int64_t j, __mmask16 m)
{
    return _mm512_maskz_loadu_ps(m, (const float *)x + j);
}
TGT512 static inline __m512 ld512_f16(const void *x, int64_t j)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)x + j)));
}
TGT512 static inline __m512 mld512_f16(const void *x, int64_t j, __mmask16 m)
{
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)x + j));
}
TGT512 static inline __m512 ld512_u8(const void *x, int64_t j)
{
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)((const uint8_t *)x + j))));
}
TGT512 static inline __m512 mld512_u8(const void *x, int64_t j, __mmask16 m)
{
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, (const uint8_t *)x + j)));
}
TGT512 static inline __m512 ld512_i8(const void *x, int64_t j)
{
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)((const int8_t *)x + j))));
}
TGT512 static inline __m512 mld512_i8(const void *x, int64_t j, __mmask16 m)
{
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, (const int8_t *)x + j)));
}

TGT512 static inline __m512 abs512(__m512 v)
{
    return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(0x7fffffff)));
}

#define K512(NAME)                                                                                                 \
    TGT512 static float l2_##NAME##_512(const float *q, const void *x, int64_t d)                    \
    {                                                                                                              \
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(),                      \
               a3 = _mm512_setzero_ps();                                                                           \
        int64_t j = 0;                                                                                             \
        for (; j + 64 <= d; j += 64) {                                                                             \
            __m512 t0 = _mm512_sub_ps(_mm512_load_ps(q + j), ld512_##NAME(x, j));                                  \
            __m512 t1 = _mm512_sub_ps(_mm512_load_ps(q + j + 16), ld512_##NAME(x, j + 16));                        \
            __m512 t2 = _mm512_sub_ps(_mm512_load_ps(q + j + 32), ld512_##NAME(x, j + 32));                        \
            __m512 t3 = _mm512_sub_ps(_mm512_load_ps(q + j + 48), ld512_##NAME(x, j + 48));                        \
            a0 = _mm512_fmadd_ps(t0, t0, a0);                                                                      \
            a1 = _mm512_fmadd_ps(t1, t1, a1);                                                                      \
            a2 = _mm512_fmadd_ps(t2, t2, a2);                                                                      \
            a3 = _mm512_fmadd_ps(t3, t3, a3);                                                                      \
        }                                                                                                          \
        for (; j + 16 <= d; j += 16) {                                                                             \
            __m512 t = _mm512_sub_ps(_mm512_load_ps(q + j), ld512_##NAME(x, j));                                   \
            a0 = _mm512_fmadd_ps(t, t, a0);                                                                        \
        }                                                                                                          \
        if (j < d) {                                                                                               \
            __m512 t = _mm512_sub_ps(_mm512_load_ps(q + j), mld512_##NAME(x, j, (__mmask16)((1u << (d - j)) - 1))); \
            a0 = _mm512_fmadd_ps(t, t, a0);                                                                        \
        }                                                                                                          \
        return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));                 \
    }                                                                                                              \
    TGT512 static float dot_##NAME##_512(const float *q, const void *x, int64_t d)                   \
    {                                                                                                              \
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(),                      \
               a3 = _mm512_setzero_ps();                                                                           \
        int64_t j = 0;                                                                                             \
        for (; j + 64 <= d; j += 64) {                                                                             \
            a0 = _mm512_fmadd_ps(_mm512_load_ps(q + j), ld512_##NAME(x, j), a0);                                   \
            a1 = _mm512_fmadd_ps(_mm512_load_ps(q + j + 16), ld512_##NAME(x, j + 16), a1);                         \
            a2 = _mm512_fmadd_ps(_mm512_load_ps(q + j + 32), ld512_##NAME(x, j + 32), a2);                         \
            a3 = _mm512_fmadd_ps(_mm512_load_ps(q + j + 48), ld512_##NAME(x, j + 48), a3);                         \
        }                                                                                                          \
        for (; j + 16 <= d; j += 16)                                                                               \
            a0 = _mm512_fmadd_ps(_mm512_load_ps(q + j), ld512_##NAME(x, j), a0);                                   \
        if (j < d)                                                                                                 \
            a0 = _mm512_fmadd_ps(_mm512_load_ps(q + j), mld512_##NAME(x, j, (__mmask16)((1u << (d - j)) - 1)), a0); \
        return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));                 \
    }                                                                                                              \
    TGT512 static float l1_##NAME##_512(const float *q, const void *x, int64_t d)                    \
    {                                                                                                              \
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();                                                 \
        int64_t j = 0;                                                                                             \
        for (; j + 32 <= d; j += 32) {                                                                             \
            a0 = _mm512_add_ps(a0, abs512(_mm512_sub_ps(_mm512_load_ps(q + j), ld512_##NAME(x, j))));              \
            a1 = _mm512_add_ps(a1, abs512(_mm512_sub_ps(_mm512_load_ps(q + j + 16), ld512_##NAME(x, j + 16))));    \
        }                                                                                                          \
        for (; j + 16 <= d; j += 16)                                                                               \
            a0 = _mm512_add_ps(a0, abs512(_mm512_sub_ps(_mm512_load_ps(q + j), ld512_##NAME(x, j))));              \
        if (j < d)                                                                                                 \
            a0 = _mm512_add_ps(                                                                                    \
                a0, abs512(_mm512_sub_ps(_mm512_load_ps(q + j),                                                    \
                                         mld512_##NAME(x, j, (__mmask16)((1u << (d - j)) - 1)))));                 \
        return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));                                                        \
    }

K512(f32)
K512(f16)
K512(u8)
K512(i8)

/* AVX2: 8 elements at a time, scalar tail. */
TGT256 static inline __m256 ld256_f32(const void *x, int64_t j) { return _mm256_loadu_ps((const float *)x + j); }
TGT256 static inline __m256 ld256_f16(const void *x, int64_t j)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)x + j)));
}
TGT256 static inline __m256 ld256_u8(const void *x, int64_t j)
{
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)((const uint8_t *)x + j))));
}
TGT256 static inline __m256 ld256_i8(const void *x, int64_t j)
{
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)((const int8_t *)x + j))));
}
TGT256 static inline float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
TGT256 static inline __m256 abs256(__m256 v)
{
    return _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)));
}

#define K256(NAME, T, CONV)                                                                                        \
    TGT256 static float l2_##NAME##_256(const float *q, const void *x, int64_t d)                    \
    {                                                                                                              \
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),                      \
               a3 = _mm256_setzero_ps();                                                                           \
        int64_t j = 0;                                                                                             \
        for (; j + 32 <= d; j += 32) {                                                                             \
            __m256 t0 = _mm256_sub_ps(_mm256_load_ps(q + j), ld256_##NAME(x, j));                                  \
            __m256 t1 = _mm256_sub_ps(_mm256_load_ps(q + j + 8), ld256_##NAME(x, j + 8));                          \
            __m256 t2 = _mm256_sub_ps(_mm256_load_ps(q + j + 16), ld256_##NAME(x, j + 16));                        \
            __m256 t3 = _mm256_sub_ps(_mm256_load_ps(q + j + 24), ld256_##NAME(x, j + 24));                        \
            a0 = _mm256_fmadd_ps(t0, t0, a0);                                                                      \
            a1 = _mm256_fmadd_ps(t1, t1, a1);                                                                      \
            a2 = _mm256_fmadd_ps(t2, t2, a2);                                                                      \
            a3 = _mm256_fmadd_ps(t3, t3, a3);                                                                      \
        }                                                                                                          \
        for (; j + 8 <= d; j += 8) {                                                                               \
            __m256 t = _mm256_sub_ps(_mm256_load_ps(q + j), ld256_##NAME(x, j));                                   \
            a0 = _mm256_fmadd_ps(t, t, a0);                                                                        \
        }                                                                                                          \
        float s = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));                            \
        for (; j < d; j++) {                                                                                       \
            float t = q[j] - CONV(((const T *)x)[j]);                                                              \
            s += t * t;                                                                                            \
        }                                                                                                          \
        return s;                                                                                                  \
    }                                                                                                              \
    TGT256 static float dot_##NAME##_256(const float *q, const void *x, int64_t d)                   \
    {                                                                                                              \
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),                      \
               a3 = _mm256_setzero_ps();                                                                           \
        int64_t j = 0;                                                                                             \
        for (; j + 32 <= d; j += 32) {                                                                             \
            a0 = _mm256_fmadd_ps(_mm256_load_ps(q + j), ld256_##NAME(x, j), a0);                                   \
            a1 = _mm256_fmadd_ps(_mm256_load_ps(q + j + 8), ld256_##NAME(x, j + 8), a1);                           \
            a2 = _mm256_fmadd_ps(_mm256_load_ps(q + j + 16), ld256_##NAME(x, j + 16), a2);                         \
            a3 = _mm256_fmadd_ps(_mm256_load_ps(q + j + 24), ld256_##NAME(x, j + 24), a3);                         \
        }                                                                                                          \
        for (; j + 8 <= d; j += 8)                                                                                 \
            a0 = _mm256_fmadd_ps(_mm256_load_ps(q + j), ld256_##NAME(x, j), a0);                                   \
        float s = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));                            \
        for (; j < d; j++)                                                                                         \
            s += q[j] * CONV(((const T *)x)[j]);                                                                   \
        return s;                                                                                                  \
    }                                                                                                              \
    TGT256 static float l1_##NAME##_256(const float *q, const void *x, int64_t d)                    \
    {                                                                                                              \
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();                                                 \
        int64_t j = 0;                                                                                             \
        for (; j + 16 <= d; j += 16) {                                                                             \
            a0 = _mm256_add_ps(a0, abs256(_mm256_sub_ps(_mm256_load_ps(q + j), ld256_##NAME(x, j))));              \
            a1 = _mm256_add_ps(a1, abs256(_mm256_sub_ps(_mm256_load_ps(q + j + 8), ld256_##NAME(x, j + 8))));      \
        }                                                                                                          \
        float s = hsum256(_mm256_add_ps(a0, a1));                                                                  \
        for (; j < d; j++)                                                                                         \
            s += fabsf(q[j] - CONV(((const T *)x)[j]));                                                            \
        return s;                                                                                                  \
    }

K256(f32, float, CONV_ID)
K256(f16, uint16_t, f16_to_f32_scalar)
K256(u8, uint8_t, CONV_F)
K256(i8, int8_t, CONV_F)
#endif /* ANN_X86 */

/* The kernel family of a metric: 0 = L2, 1 = dot, 2 = L1. */
static int family(ann_metric m)
{
    switch (m) {
    case ANN_METRIC_INNER_PRODUCT:
    case ANN_METRIC_COSINE: return 1;
    case ANN_METRIC_L1: return 2;
    default: return 0;
    }
}

static dist_fn pick_kernel(ann_dtype t, int fam)
{
    static const dist_fn sc[4][3] = {
        {l2_f32_sc, dot_f32_sc, l1_f32_sc},
        {l2_f16_sc, dot_f16_sc, l1_f16_sc},
        {l2_i8_sc, dot_i8_sc, l1_i8_sc},
        {l2_u8_sc, dot_u8_sc, l1_u8_sc},
    };
    const int ti = t == ANN_DTYPE_F32 ? 0 : t == ANN_DTYPE_F16 ? 1 : t == ANN_DTYPE_I8 ? 2 : 3;
#if ANN_X86
    static const dist_fn k512[4][3] = {
        {l2_f32_512, dot_f32_512, l1_f32_512},
        {l2_f16_512, dot_f16_512, l1_f16_512},
        {l2_i8_512, dot_i8_512, l1_i8_512},
        {l2_u8_512, dot_u8_512, l1_u8_512},
    };
    static const dist_fn k256[4][3] = {
        {l2_f32_256, dot_f32_256, l1_f32_256},
        {l2_f16_256, dot_f16_256, l1_f16_256},
        {l2_i8_256, dot_i8_256, l1_i8_256},
        {l2_u8_256, dot_u8_256, l1_u8_256},
    };
    /* ANNKIT_SIMD=avx2|scalar caps the instruction set (tests of every kernel on one machine) */
    const char *cap = getenv("ANNKIT_SIMD");
    const int level = cap && !strcmp(cap, "scalar") ? 0 : cap && !strcmp(cap, "avx2") ? 1 : 2;
    __builtin_cpu_init();
    if (level >= 2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma"))
        return k512[ti][fam];
    if (level >= 1 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        __builtin_cpu_supports("f16c"))
        return k256[ti][fam];
#endif
    return sc[ti][fam];
}

/* ------------------------------ the list ---------------------------- */

/* Order-preserving bits of a float: a < b  <=>  ord(a) < ord(b) (NaN: after +inf). */
static inline uint32_t ord_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

static inline float ord_float(uint32_t o)
{
    uint32_t u = (o & 0x80000000u) ? (o & 0x7fffffffu) : ~o;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* An entry: key bits (high 32), id (bits 1..31), parent flag (bit 0). */
static inline uint64_t entry(float key, uint32_t id)
{
    /* + 0.0f turns -0 into +0, which must tie with +0 and break by id */
    return (uint64_t)ord_bits(key + 0.0f) << 32 | (uint64_t)id << 1;
}

static inline uint32_t entry_id(uint64_t e) { return (uint32_t)(e >> 1) & 0x7fffffffu; }
static inline float entry_key(uint64_t e) { return ord_float((uint32_t)(e >> 32)); }

/* Insert e into the sorted list top[0..n) of capacity cap; returns its position or -1 when it does not fit. */
static inline int list_insert(uint64_t *top, int *n, int cap, uint64_t e)
{
    int m = *n;
    if (m == cap) {
        if (e >= top[cap - 1])
            return -1;
        m--; /* the worst falls off */
    }
    int pos = m;
    while (pos > 0 && top[pos - 1] > e)
        pos--;
    memmove(top + pos + 1, top + pos, (size_t)(m - pos) * sizeof(uint64_t));
    top[pos] = e;
    *n = m + 1;
    return pos;
}

/* ------------------------------- search ----------------------------- */

typedef struct search_ctx {
    const ann_cagra_view *ix;
    ann_cagra_plan plan;
    dist_fn dist;
    int fam;
    int64_t dimp;          /* dim padded to 64 floats */
    int64_t row_lines;     /* cache lines of a stored row */
    int32_t n_slots;       /* seed slots */
    const uint32_t *seeds; /* n_slots x num_random_samplings candidate ids */
    int pf_ahead;          /* candidates prefetched ahead of the one computed */
} search_ctx;

typedef struct thread_ws {
    float *q;            /* dimp floats, 64-byte aligned */
    uint64_t *visited;   /* bitmap of rows bits */
    uint32_t *touched;   /* words of visited set by this query */
    int64_t n_touched, cap_touched;
    uint64_t *top;       /* itopk entries */
    uint32_t *cand;      /* search_width x degree */
    uint32_t *parents;   /* search_width */
} thread_ws;

static inline const void *row_ptr(const ann_cagra_view *ix, uint32_t id)
{
    return (const char *)ix->data + (int64_t)id * ix->stride;
}

static inline void prefetch_row(const search_ctx *c, uint32_t id)
{
    const char *p = row_ptr(c->ix, id);
    for (int64_t l = 0; l < c->row_lines; l++)
        __builtin_prefetch(p + l * 64, 0, 3);
}

/* Smaller-is-better key of row id for the prepared query. */
static inline float node_key(const search_ctx *c, const float *q, uint32_t id)
{
    float v = c->dist(q, row_ptr(c->ix, id), c->ix->dim);
    if (c->fam == 1) {
        if (c->ix->metric == ANN_METRIC_COSINE) {
            float nx = c->ix->norms ? c->ix->norms[id] : 0;
            return nx > 0 ? -v / nx : 0.0f;
        }
        return -v;
    }
    return v;
}

/* Mark v visited; false when it already was. */
static inline bool visit(thread_ws *w, uint32_t v)
{
    uint64_t *word = w->visited + (v >> 6);
    const uint64_t bit = 1ull << (v & 63);
    if (*word & bit)
        return false;
    if (*word == 0 && w->n_touched < w->cap_touched)
        w->touched[w->n_touched++] = v >> 6;
    *word |= bit;
    return true;
}

/* Empty the visited set for the next query. */
static void clear_visited(thread_ws *w, int64_t rows)
{
    if (w->n_touched < w->cap_touched) {
        for (int64_t i = 0; i < w->n_touched; i++)
            w->visited[w->touched[i]] = 0;
    } else {
        memset(w->visited, 0, (size_t)(rows + 63) / 64 * sizeof(uint64_t));
    }
    w->n_touched = 0;
}

static void search_one(const search_ctx *c, thread_ws *w, const void *qrow, ann_dtype qt, int64_t k, int64_t *ids,
                       float *dist)
{
    const ann_cagra_view *ix = c->ix;
    const int64_t d = ix->dim, rows = ix->rows;
    const int32_t deg = ix->graph_degree;
    const int cap = c->plan.itopk;
    float qnorm = 0;

    /* the query as floats (cosine: unit length), zero-padded */
    ann_row_to_f32(qrow, qt, d, w->q);
    if (ix->metric == ANN_METRIC_COSINE) {
        double s = 0;
        for (int64_t j = 0; j < d; j++)
            s += (double)w->q[j] * w->q[j];
        qnorm = (float)sqrt(s);
        if (qnorm > 0)
            for (int64_t j = 0; j < d; j++)
                w->q[j] /= qnorm;
    }
    const float *q = w->q;
    clear_visited(w, rows);
    uint64_t *top = w->top;
    int n = 0;

    /* seeds (notes 7.3) */
    const int nrs = c->plan.num_random_samplings;
    for (int32_t s = 0; s < c->n_slots; s++) {
        const uint32_t *tr = c->seeds + (int64_t)s * nrs;
        if (s + 1 < c->n_slots)
            prefetch_row(c, c->seeds[(int64_t)(s + 1) * nrs]);
        uint32_t best = tr[0];
        float bk = node_key(c, q, best);
        for (int j = 1; j < nrs; j++) {
            float kj = node_key(c, q, tr[j]);
            if (kj < bk) {
                bk = kj;
                best = tr[j];
            }
        }
        if (!visit(w, best))
            continue;
        list_insert(top, &n, cap, entry(bk, best));
    }

    /* iterations (notes 7.4) */
    int cursor = 0; /* no unexpanded entry before it */
    const int sw = c->plan.search_width;
    for (int32_t iter = 0; iter + 1 < c->plan.max_iterations; iter++) {
        uint32_t *parents = w->parents;
        int np = 0;
        int32_t m = 0;
        for (int i = cursor; i < n && np < sw; i++) {
            if (top[i] & 1)
                continue;
            top[i] |= 1;
            cursor = i + 1;
            const uint32_t p = entry_id(top[i]);
            parents[np++] = p;
            const uint32_t *nb = ix->graph + (int64_t)p * deg;
            for (int32_t j = 0; j < deg; j++) {
                uint32_t v = nb[j];
                if (visit(w, v))
                    w->cand[m++] = v;
            }
        }
        if (np == 0)
            break;
        const int ahead = c->pf_ahead;
        for (int32_t i = 0; i < m && i < ahead; i++)
            prefetch_row(c, w->cand[i]);
        for (int32_t i = 0; i < m; i++) {
            if (i + ahead < m)
                prefetch_row(c, w->cand[i + ahead]);
            const uint32_t v = w->cand[i];
            float key = node_key(c, q, v);
            int pos = list_insert(top, &n, cap, entry(key, v));
            if (pos >= 0 && pos <= cursor) {
                /* likely the next parent: fetch its neighbour list now */
                __builtin_prefetch(ix->graph + (int64_t)v * deg, 0, 3);
                if (pos < cursor)
                    cursor = pos;
            }
        }
        /* a parent that fails the filter leaves the list (notes 7.4 step 8) */
        if (ix->filter)
            for (int t = 0; t < np; t++) {
                if (ann_cagra_keep(ix, parents[t]))
                    continue;
                for (int i = 0; i < n; i++)
                    if (entry_id(top[i]) == parents[t]) {
                        memmove(top + i, top + i + 1, (size_t)(n - i - 1) * sizeof(uint64_t));
                        n--;
                        if (i < cursor)
                            cursor--;
                        break;
                    }
            }
    }

    /* the first k entries that pass the filter */
    const float worst = ann_metric_worst(ix->metric);
    int64_t out = 0;
    for (int i = 0; i < n && out < k; i++) {
        const uint32_t v = entry_id(top[i]);
        if (!ann_cagra_keep(ix, v))
            continue;
        const float key = entry_key(top[i]);
        float r;
        switch (ix->metric) {
        case ANN_METRIC_EUCLIDEAN: r = sqrtf(key > 0 ? key : 0); break;
        case ANN_METRIC_INNER_PRODUCT: r = -key; break;
        case ANN_METRIC_COSINE: r = qnorm > 0 ? 1.0f + key : 1.0f; break;
        default: r = key; break;
        }
        ids[out] = v;
        dist[out] = r;
        out++;
    }
    for (; out < k; out++) {
        ids[out] = -1;
        dist[out] = worst;
    }
}

ann_status ann_cpu_cagra_search(const ann_cagra_view *ix, const ann_cagra_search_params *p, const ann_matrix *q,
                                int64_t k, int n_threads, int64_t *ids, float *dist)
{
    if (!ix->data)
        return ann_set_error(ANN_ERR_INVALID_ARG, "cagra: the index has no vectors");
    if (ix->rows >= ((int64_t)1 << 31))
        return ann_set_error(ANN_ERR_UNSUPPORTED, "cagra: CPU search handles fewer than 2^31 rows (%lld)",
                             (long long)ix->rows);
    if (ix->metric == ANN_METRIC_COSINE && !ix->norms)
        return ann_set_error(ANN_ERR_INTERNAL, "cagra: cosine index without norms");
    search_ctx c;
    memset(&c, 0, sizeof c);
    c.ix = ix;
    const double rate = ix->filter && ix->rows > 0 ? 1.0 - (double)ix->filter_kept / (double)ix->rows : 0.0;
    c.plan = ann_cagra_plan_resolve(p, ix->rows, ix->graph_degree, k, rate);
    c.fam = family(ix->metric);
    c.dist = pick_kernel(ix->dtype, c.fam);
    c.dimp = (ix->dim + 63) / 64 * 64;
    c.row_lines = (ix->dim * (int64_t)ann_dtype_size(ix->dtype) + 63) / 64;
    if (c.row_lines > 64)
        c.row_lines = 64; /* beyond 4 KiB the hardware prefetcher follows on its own */
    /* about 96 lines in flight: 1 row ahead for 784 f32 (49 lines), 7 for 784 u8, 8 at most
       (measured on Fashion-MNIST: u8 rows 47k -> 62k queries/s per core from 1 to 6 ahead; f32 flat) */
    c.pf_ahead = (int)(96 / (c.row_lines > 0 ? c.row_lines : 1));
    c.pf_ahead = c.pf_ahead < 1 ? 1 : c.pf_ahead > 8 ? 8 : c.pf_ahead;
    const int sw = c.plan.search_width;
    const int64_t slots64 = (int64_t)c.plan.itopk + (int64_t)sw * ix->graph_degree;
    if (slots64 > (1 << 24))
        return ann_set_error(ANN_ERR_INVALID_ARG, "cagra: itopk_size + search_width x graph_degree = %lld is too large",
                             (long long)slots64);
    c.n_slots = (int32_t)slots64;
    const int nrs = c.plan.num_random_samplings;
    uint32_t *seeds = malloc((size_t)c.n_slots * nrs * sizeof(uint32_t));
    if (!seeds)
        return ann_set_error(ANN_ERR_NOMEM, "cagra: out of memory for seeds");
    for (int32_t s = 0; s < c.n_slots; s++)
        for (int j = 0; j < nrs; j++) {
            uint64_t gid = (uint64_t)s + (uint64_t)c.n_slots * (uint64_t)j;
            seeds[(int64_t)s * nrs + j] =
                (uint32_t)(ann_cagra_xorshift64(gid ^ c.plan.rand_xor_mask) % (uint64_t)ix->rows);
        }
    c.seeds = seeds;

    const int nt = ann_threads(n_threads);
    const int64_t nq = q->rows;
    int failed = 0;
#pragma omp parallel num_threads(nt)
    {
        thread_ws w;
        memset(&w, 0, sizeof w);
        w.q = aligned_alloc(64, (size_t)c.dimp * sizeof(float));
        w.visited = calloc((size_t)(ix->rows + 63) / 64, sizeof(uint64_t));
        w.cap_touched = 4096;
        w.touched = malloc((size_t)w.cap_touched * sizeof(uint32_t));
        w.top = malloc((size_t)c.plan.itopk * sizeof(uint64_t));
        w.cand = malloc((size_t)sw * ix->graph_degree * sizeof(uint32_t) + 4);
        w.parents = malloc((size_t)sw * sizeof(uint32_t));
        const bool ok = w.q && w.visited && w.touched && w.top && w.cand && w.parents;
        if (!ok) {
#pragma omp atomic write
            failed = 1;
        } else {
            memset(w.q, 0, (size_t)c.dimp * sizeof(float));
        }
#pragma omp for schedule(dynamic, 8)
        for (int64_t i = 0; i < nq; i++) {
            if (!ok)
                continue;
            search_one(&c, &w, ann_matrix_row(q, i), q->dtype, k, ids + i * k, dist + i * k);
        }
        free(w.q);
        free(w.visited);
        free(w.touched);
        free(w.top);
        free(w.cand);
        free(w.parents);
    }
    free(seeds);
    if (failed)
        return ann_set_error(ANN_ERR_NOMEM, "cagra: out of memory for per-thread search state");
    return ANN_OK;
}
