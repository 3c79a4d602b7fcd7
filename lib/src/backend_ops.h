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

#include "ann/core.h"
#include "ann/graph.h"
#include "ann/ivf_flat.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ANN_BACKEND_ABI 1

/** Operations a backend may support. */
typedef enum ann_op {
    ANN_OP_BF_SEARCH = 0,
    ANN_OP_IVF_FLAT_SEARCH = 1,
    ANN_OP_KMEANS_FIT = 2,
    ANN_OP_KMEANS_PREDICT = 3,
    ANN_OP_NN_DESCENT = 4,
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
 * packed row (same convention).
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
} ann_ivf_flat_view;

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
