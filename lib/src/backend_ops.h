/*
 * backend_ops.h - INTERNAL contract between the library and its backends.
 *
 * Every algorithm has a CPU implementation (lib/src/X_cpu.c) and a CUDA
 * implementation (cuda/X.cu) with the same signature, collected in one
 * ann_backend_ops table per backend.  The CUDA table lives in the plugin
 * annkit-cuda.so, which exports one C symbol:
 *
 *     const ann_backend_ops *annkit_cuda_ops(const ann_host_api *host);
 *
 * The plugin links nothing of the library: it reports errors through
 * host->set_error (which is ann_set_error) and sees indexes only as the
 * plain views below.  All matrices passed to an op are on the host; a
 * backend copies to its device as needed and may keep device copies of an
 * index in *view->device_cache (released with cache_free).
 */
#ifndef ANN_BACKEND_OPS_H
#define ANN_BACKEND_OPS_H

#include <math.h>

#include "ann/cagra.h"
#include "ann/core.h"
#include "ann/graph.h"
#include "ann/ivf_flat.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ANN_BACKEND_ABI 4  /* 2: cagra_search slot; 3: ivf_flat_view filter; 4: ivf_pq_search slot */

/** Operations a backend may support. */
typedef enum ann_op {
    ANN_OP_BF_SEARCH = 0,
    ANN_OP_IVF_FLAT_SEARCH = 1,
    ANN_OP_KMEANS_FIT = 2,
    ANN_OP_KMEANS_PREDICT = 3,
    ANN_OP_NN_DESCENT = 4,
    ANN_OP_CAGRA_SEARCH = 5,
    ANN_OP_IVF_PQ_SEARCH = 6,
} ann_op;

/** What the host gives a plugin. */
typedef struct ann_host_api {
    int abi;  /* ANN_BACKEND_ABI */
    ann_status (*set_error)(ann_status s, const char *fmt, ...);
} ann_host_api;

/**
 * A brute-force index as backends see it: rows x dim vectors of dtype
 * (f32/f16/i8/u8) at data (row stride `stride` bytes) and, for the L2
 * family, their squared L2 norms; for cosine their L2 norms; NULL for
 * inner_product and l1.
 */
typedef struct ann_bf_view {
    ann_metric metric;
    ann_dtype dtype;
    int64_t rows, dim;
    const void *data;
    int64_t stride;
    const float *norms;
    void **device_cache;
} ann_bf_view;

/**
 * An IVF-Flat index: centers (n_lists x dim f32) with center_norms (their
 * squared L2 norms, for every metric; only the L2 family's coarse search
 * uses them); vectors packed by list: list l holds
 * packed rows [list_offsets[l], list_offsets[l+1]) of data (row stride
 * dim x elem size) whose source ids are list_ids[row]; data_norms per
 * packed row (same convention).  Rows whose source id fails `filter`
 * are skipped by the scan: never returned, fewer than k results when too
 * few kept rows lie in the probed lists.
 */
typedef struct ann_ivf_flat_view {
    ann_metric metric;
    ann_dtype dtype;
    int64_t rows, dim;
    int32_t n_lists;
    const float *centers;
    const float *center_norms;
    const int64_t *list_offsets;
    const int64_t *list_ids;
    const void *data;
    const float *data_norms;
    void **device_cache;
    const uint32_t *filter;  /* NULL, or a bitset over source ids (list_ids): bit i of word i / 32 set = id i
                                may be returned; ids >= filter_bits are filtered out (ABI >= 3) */
    int64_t filter_bits;
} ann_ivf_flat_view;

/** True when source id @p id passes the filter of IVF view @p v (always without one). */
static inline bool ann_ivf_keep(const ann_ivf_flat_view *v, int64_t id)
{
    return !v->filter || (id >= 0 && id < v->filter_bits && ((v->filter[id >> 5] >> (id & 31)) & 1u));
}

/**
 * A CAGRA index (notes/algorithms.md 6-7): rows x dim vectors of dtype at
 * data (row stride `stride` bytes; NULL when the index has no vectors:
 * the library never calls a search then), norms as in ann_bf_view
 * (squared L2 for the L2 family, L2 for cosine, NULL otherwise), the
 * graph (rows x graph_degree uint32 row numbers, every id < rows), and an
 * optional filter: a bitset of ceil(filter_bits / 32) uint32 words, bit i
 * of word i / 32 set = row i may be returned; rows >= filter_bits are
 * filtered out; NULL = no filter.  Filtered rows are traversed (they can
 * be parents) but never returned (notes 7.4 steps 8 and 3).
 */
typedef struct ann_cagra_view {
    ann_metric metric;
    ann_dtype dtype;
    int64_t rows, dim;
    const void *data;
    int64_t stride;
    const float *norms;
    int32_t graph_degree;
    const uint32_t *graph;
    const uint32_t *filter;
    int64_t filter_bits;
    int64_t filter_kept;     /* rows that pass the filter (rows without one) */
    void **device_cache;
} ann_cagra_view;

/** True when row @p i passes the filter of @p v (always without one). */
static inline bool ann_cagra_keep(const ann_cagra_view *v, uint64_t i)
{
    return !v->filter || (i < (uint64_t)v->filter_bits && ((v->filter[i >> 5] >> (i & 31)) & 1u));
}

/** The search plan both backends derive from the params (notes 7.2). */
typedef struct ann_cagra_plan {
    int32_t itopk;          /* itopk_size raised to k, rounded up to a multiple of 32 */
    int32_t search_width;
    int32_t max_iterations; /* resolved: never 0 */
    int32_t min_iterations;
    int32_t num_random_samplings;
    uint64_t rand_xor_mask;
} ann_cagra_plan;

/**
 * Resolve @p p for an index of @p rows rows and degree @p deg, @p k
 * results per query and a filter that rejects the share @p filter_rate of
 * the rows (0 without a filter), by the rules of notes 7.2: itopk raised
 * to k; with 0 < filter_rate < 1 the filtered itopk boost
 * k / (1 - rate) + (itopk - k) / sqrt(1 - rate) when larger (cuVS applies
 * it to multi-CTA; annkit to every filtered search); rounded up to 32.
 * max_iterations 0 = itopk / search_width + the number of times
 * r *= max(2, deg/2) runs from r = 1 until r >= rows; a user value below
 * min_iterations becomes min_iterations.
 */
static inline ann_cagra_plan ann_cagra_plan_resolve(const ann_cagra_search_params *p, int64_t rows, int32_t deg,
                                                    int64_t k, double filter_rate)
{
    ann_cagra_plan pl;
    int64_t it = p->itopk_size < k ? k : p->itopk_size;
    if (filter_rate > 0 && filter_rate < 1) {
        double boost = (double)k / (1.0 - filter_rate) + (double)(it - k) / sqrt(1.0 - filter_rate);
        if (boost > (double)it)
            it = boost > 1e6 ? 1000000 : (int64_t)ceil(boost);
    }
    pl.itopk = (int32_t)((it + 31) / 32 * 32);
    pl.search_width = p->search_width < 1 ? 1 : p->search_width;
    int64_t base = pl.itopk / pl.search_width;
    const int64_t step = deg / 2 > 2 ? deg / 2 : 2;
    for (int64_t r = 1; r < rows; r *= step)
        base++;
    int64_t t = p->max_iterations == 0 ? base : p->max_iterations;
    if (p->max_iterations < p->min_iterations)
        t = p->min_iterations;
    if (t < p->max_iterations)
        t = p->max_iterations;
    if (t < 1)
        t = 1;
    pl.max_iterations = (int32_t)(t > INT32_MAX ? INT32_MAX : t);
    pl.min_iterations = p->min_iterations;
    pl.num_random_samplings = p->num_random_samplings < 1 ? 1 : p->num_random_samplings;
    pl.rand_xor_mask = (uint64_t)p->rand_xor_mask;
    return pl;
}

/** The seed generator of notes 7.3 (xorshift64*). */
static inline uint64_t ann_cagra_xorshift64(uint64_t u)
{
    u ^= u >> 12;
    u ^= u << 25;
    u ^= u >> 27;
    return u * 0x2545F4914F6CDD1DULL;
}

/**
 * An IVF-PQ index as backends see it (notes/algorithms.md 4): exactly the
 * arrays of ann_ivf_pq_cpu_index (lib/src/ivf_pq_internal.h, whose top
 * comment has the code layout), read-only.  metric: the index metric
 * (sqeuclidean, euclidean, inner_product, cosine); coarse_metric: that of
 * its k-means.  rows x dim source vectors in n_lists lists; pq_dim
 * subspaces of pq_len rotated dims (rot_dim = pq_dim x pq_len), codes of
 * pq_bits bits (book = 2^pq_bits entries), `chunks` 16-byte chunks per
 * group of 16 rows.
 *   centers       n_lists x dim f32 (unit length for cosine)
 *   center_norms  n_lists f32: their squared L2 norms
 *   centers_rot   n_lists x rot_dim f32: R c
 *   rotation      rot_dim x dim f32 row-major, or NULL = identity (rot_dim == dim)
 *   pq_centers    pq_dim x pq_len x book f32: entry c of subspace j,
 *                 component t at [(j x pq_len + t) x book + c]
 *   list_offsets  n_lists + 1 int64: packed rows of list l
 *   group_offsets n_lists + 1 int64: code groups of list l
 *   list_ids      rows int64: source id of each packed row
 *   codes         group_offsets[n_lists] x chunks x 16 bytes
 * A backend may keep device copies in *device_cache (NULL = none kept).
 */
typedef struct ann_ivf_pq_view {
    ann_metric metric;
    ann_metric coarse_metric;
    int64_t rows, dim;
    int32_t n_lists;
    int32_t pq_dim, pq_bits, pq_len, rot_dim;
    int32_t book, chunks;
    const float *centers;
    const float *center_norms;
    const float *centers_rot;
    const float *rotation;
    const float *pq_centers;
    const int64_t *list_offsets;
    const int64_t *group_offsets;
    const int64_t *list_ids;
    const uint8_t *codes;
    void **device_cache;
} ann_ivf_pq_view;

/** Balanced k-means settings (notes/algorithms.md 0.6). */
typedef struct ann_kmeans_params {
    ann_metric metric;     /* sqeuclidean/euclidean: L2; inner_product, cosine: centers normalised */
    int32_t n_clusters;
    int32_t n_iters;
    uint64_t seed;
} ann_kmeans_params;

typedef struct ann_backend_ops {
    int abi;
    const char *name;
    /** Devices usable now (0 = none; then msg says why).  CPU returns 1. */
    int (*device_count)(char *msg, size_t len);
    /** Device name and memory for --version, into buf. */
    void (*describe)(char *buf, size_t len);
    /** Whether op runs for this dtype and metric. */
    bool (*supports)(ann_op op, ann_dtype dtype, ann_metric metric);

    /**
     * Exact kNN: n queries (q, any vector dtype) against ix; writes n x k
     * ids (int64; -1 for empty) and distances (returned convention of the
     * metric), best first, ties by (distance, id).  The final k are
     * re-ranked from k+16 GEMM candidates with exact double distances.
     */
    ann_status (*bf_search)(const ann_bf_view *ix, const ann_matrix *q, int64_t k, int n_threads,
                            int64_t *ids, float *dist);

    /** IVF-Flat search with the given params (n_probes clamped to n_lists). */
    ann_status (*ivf_flat_search)(const ann_ivf_flat_view *ix, const ann_ivf_flat_search_params *p,
                                  const ann_matrix *q, int64_t k, int n_threads, int64_t *ids,
                                  float *dist);

    /** Balanced k-means: train (n x dim, any vector dtype) -> centers (n_clusters x dim f32). */
    ann_status (*kmeans_fit)(const ann_kmeans_params *p, const ann_matrix *train, int n_threads,
                             float *centers);

    /** Nearest center of every row of x under metric: labels (x.rows int32). */
    ann_status (*kmeans_predict)(ann_metric metric, const float *centers, int32_t n_clusters,
                                 const ann_matrix *x, int n_threads, int32_t *labels);

    /** Free a device cache created by a search (NULL allowed). */
    void (*cache_free)(void *cache);

    /**
     * NN-Descent all-neighbours graph of data (n x dim, any vector dtype;
     * hamming: u8/i8) with p already checked and clamped (1 <= graph_degree
     * <= intermediate_graph_degree <= n - 1): n x graph_degree ids (never
     * the row itself, no duplicates, best first) and, when dist is not
     * NULL, distances in the returned convention.  seed drives every
     * random choice.  Semantics: ann/graph.h and lib/src/nnd_cpu.c.
     */
    ann_status (*nn_descent)(const ann_nn_descent_params *p, const ann_matrix *data, int n_threads,
                             uint64_t seed, uint32_t *ids, float *dist);

    /**
     * CAGRA search (notes/algorithms.md 7; semantics: ann/cagra.h and
     * lib/src/cagra_search.c): n queries (q, any vector dtype) against ix
     * (ix->data never NULL) with p already checked against the table;
     * plan from ann_cagra_plan_resolve(p, ix->rows, ix->graph_degree, k,
     * 1 - filter_kept / rows when filtered, else 0).
     * Writes n x k ids (int64 row numbers, -1 for empty slots) and
     * distances (the metric's returned convention, worst for empty slots),
     * best first, ties by (distance, id).  Rows failing ix->filter are
     * never returned.  NULL in a table = not supported (ABI >= 2).
     */
    ann_status (*cagra_search)(const ann_cagra_view *ix, const ann_cagra_search_params *p, const ann_matrix *q,
                               int64_t k, int n_threads, int64_t *ids, float *dist);

    /**
     * IVF-PQ candidate search (notes/algorithms.md 4.2-4.3; semantics:
     * search_block() and select_probes() in lib/src/ivf_pq_cpu.c): n
     * queries q (n x dim f32 on the host, any row stride; already unit
     * length for cosine) against ix, n_probes lists each (clamped to
     * n_lists; more, in coarse order, while the probed lists hold fewer
     * than n_cand rows).  Writes n x n_cand source ids (int64, -1 for
     * empty slots) and their PQ scores ("smaller is better": squared L2
     * distance in the rotated space for the L2 family and cosine, -dot
     * for inner_product; +inf for empty slots), best first, ties by id.
     * Errors: ANN_ERR_INVALID_ARG (dimension, n_cand < 1), ANN_ERR_NOMEM,
     * ANN_ERR_CUDA.  NULL in a table = not supported (ABI >= 4).
     */
    ann_status (*ivf_pq_search)(const ann_ivf_pq_view *ix, const ann_matrix *q, int32_t n_probes, int64_t n_cand,
                                int n_threads, int64_t *ids, float *scores);
} ann_backend_ops;

/** The CPU table (always present). */
const ann_backend_ops *ann_cpu_ops(void);

/**
 * The table for @p device (CPU or CUDA) able to run @p op on dtype/metric,
 * resolving AUTO.  Errors: ANN_ERR_BACKEND_UNAVAILABLE with the reason.
 * Sets ex->used.
 */
ann_status ann_backend_select(ann_exec *ex, ann_op op, ann_dtype dtype, ann_metric metric,
                              const ann_backend_ops **ops);

/** Signature of the plugin's entry point. */
typedef const ann_backend_ops *(*ann_cuda_ops_fn)(const ann_host_api *host);

#ifdef __cplusplus
}
#endif
#endif
