/*
 * internal.h - INTERNAL helpers shared by the CPU algorithms: distance
 * kernels, row conversion, bounded top-k heaps, OpenMP thread control.
 */
#ifndef ANN_INTERNAL_H
#define ANN_INTERNAL_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "ann/core.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* Number of OpenMP threads for a call: n > 0 as given, else the default. */
static inline int ann_threads(int n)
{
#ifdef _OPENMP
    return n > 0 ? n : omp_get_max_threads();
#else
    (void)n;
    return 1;
#endif
}

/* ------------------------- distance kernels ------------------------- */

/* a . b over d floats (SIMD, multiversioned for AVX-512 / AVX2). */
float ann_dot_f32(const float *a, const float *b, int64_t d);
/* sum (a - b)^2 over d floats. */
float ann_l2sq_f32(const float *a, const float *b, int64_t d);
/* sum |a - b| over d floats. */
float ann_l1_f32(const float *a, const float *b, int64_t d);

/*
 * Dot products of one query q (d floats) with n rows of x (row stride
 * `ld` floats): out[i] = q . x_i.
 */
void ann_dot_rows_f32(const float *q, const float *x, int64_t n, int64_t d, int64_t ld, float *out);

/*
 * Dot products of an m x d block a (row stride lda floats) with an n x d
 * block b (stride ldb): c[i * ldc + j] = a_i . b_j, in 4 x 4 register
 * tiles read in place (no packing).  Measured on one Zen 4 core against
 * OpenBLAS sgemm: faster from about d = 256 up (178 against 127 GFLOPS
 * at d = 784) and for small blocks at any d >= 96 (16 x 32 at d = 128:
 * 107 against 80); slower for large blocks of short rows.  d % 16 != 0
 * costs a zero-padded tail.  The sums' order is fixed: a pair gives the
 * same bits from any buffer, alignment or tile.  Single-threaded.
 */
void ann_dot_block_f32(const float *a, int64_t lda, int64_t m, const float *b, int64_t ldb, int64_t n, int64_t d,
                       float *c, int64_t ldc);

/*
 * Dot products among m float rows (rows[i], d floats each; m <=
 * ANN_DOT_PAIRS_MAX): g[a * m + b] = rows[a] . rows[b] for every a < m1
 * and b > a (other entries of the m1 x m block g are left unspecified).
 * The small all-pairs block of an NN-Descent local join, computed from
 * the rows in place (no gather, no packing) in 4 x 4 register tiles
 * (as ann_dot_block_f32), skipping tiles below the diagonal.
 * Single-threaded.
 */
enum { ANN_DOT_PAIRS_MAX = 256 };
void ann_dot_pairs_f32(const float *const *rows, int m1, int m, int64_t d, float *g);

/* Convert d elements of a row of dtype t to float. */
void ann_row_to_f32(const void *src, ann_dtype t, int64_t d, float *dst);

/*
 * Exact distance in the metric's RETURNED convention (squared L2, L2,
 * +dot, 1 - cos, L1), computed in double on the original values: q is a
 * float query (exact for converted integer/f16 queries), x a row of dtype t.
 */
double ann_exact_dist(ann_metric m, const float *q, const void *x, ann_dtype t, int64_t d);

/* Map a returned-convention distance to "smaller is better" (negates inner product). */
static inline float ann_key(ann_metric m, float returned)
{
    return m == ANN_METRIC_INNER_PRODUCT ? -returned : returned;
}

/* Squared L2 norm of each row (norm_sqrt: the L2 norm itself), in float. */
void ann_row_norms(const void *data, ann_dtype t, int64_t rows, int64_t d, int64_t stride, bool norm_sqrt,
                   float *out, int n_threads);

/*
 * Row-major C (m x n) = A (m x kd) . B^T where B is n x kd: the GEMM every
 * distance block uses (OpenBLAS cblas_sgemm, single-threaded inside an
 * OpenMP region).  lda/ldb/ldc in floats.
 */
void ann_gemm_abt(int64_t m, int64_t n, int64_t kd, const float *a, int64_t lda, const float *b, int64_t ldb,
                  float *c, int64_t ldc);

/* ----------------------------- top-k -------------------------------- */

/*
 * A bounded max-heap of the best `cap` (key, id) pairs, smaller key better,
 * ties broken by smaller id.  heap[0] is the current worst.
 */
typedef struct ann_topk {
    float *key;
    int64_t *id;
    int64_t *aux;   /* optional payload moved with each entry (NULL = none) */
    int cap;
    int n;
} ann_topk;

static inline bool ann_pair_worse(float ka, int64_t ia, float kb, int64_t ib)
{
    return ka > kb || (ka == kb && ia > ib);
}

/* Reset to empty over caller storage of cap entries. */
static inline void ann_topk_init(ann_topk *t, float *key, int64_t *id, int cap)
{
    t->key = key;
    t->id = id;
    t->aux = NULL;
    t->cap = cap;
    t->n = 0;
}

/* The key a candidate must beat to enter (INFINITY while not full). */
static inline float ann_topk_bound(const ann_topk *t)
{
    return t->n < t->cap ? INFINITY : t->key[0];
}

/* Offer (key, id); kept when the heap is not full or the pair beats the worst. */
void ann_topk_push(ann_topk *t, float key, int64_t id);

/* Like ann_topk_push() for a heap with an aux array: the entry carries @p aux. */
void ann_topk_push_aux(ann_topk *t, float key, int64_t id, int64_t aux);

/* Sort the heap's content best first (in place; the heap is destroyed). */
void ann_topk_sort(ann_topk *t);

/* Sort n (key, id) pairs best first by (key, id). */
void ann_pairs_sort(float *key, int64_t *id, int64_t n);

/* True when the interrupt flag of ex is raised. */
static inline bool ann_interrupted(const ann_exec *ex)
{
    return ex && ex->interrupt && *ex->interrupt;
}

/**
 * A result under exact re-ranking: key smaller is better (the metric's
 * ranking key in double), id the row or source id.  ann_ranked_cmp orders
 * by (key, id) for qsort(), the tie rule of every search (DESIGN.md).
 */
typedef struct ann_ranked {
    double key;
    int64_t id;
} ann_ranked;

static inline int ann_ranked_cmp(const void *a, const void *b)
{
    const ann_ranked *x = a, *y = b;
    if (x->key < y->key)
        return -1;
    if (x->key > y->key)
        return 1;
    return (x->id > y->id) - (x->id < y->id);
}

#endif
