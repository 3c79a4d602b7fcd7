/*
 * ann/ivf_flat.h - IVF-Flat: inverted lists of uncompressed vectors.
 *
 * Build: balanced k-means (notes/algorithms.md 0.6) on a strided training
 * subset gives n_lists centers; every vector goes to the list of its
 * nearest center, and lists are packed contiguously (the torch-ivf
 * layout, seeds/torch-ivf.md: packed data, list_offsets, list_ids).
 * Search: the n_probes nearest centers per query by GEMM, then either
 *  - matrix: per query, scan its probed lists with SIMD distances, or
 *  - csr: group (query, list) pairs by list and compute each list's block
 *    of distances with one GEMM (Q_list x X_list^T), merging local top-k
 *    into each query's top-k;
 *  - auto: csr when the average number of queries per probed list is at
 *    least 8 x n_lists / 512 (the torch-ivf rule), else matrix.
 * max_codes > 0 stops scanning a query's lists (nearest first) once that
 * many vectors were scanned.
 */
#ifndef ANN_IVF_FLAT_H_93ad10
#define ANN_IVF_FLAT_H_93ad10

#include "ann/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Build parameters (cuVS ivf_flat::index_params names and defaults). */
typedef struct ann_ivf_flat_params {
    ann_metric metric;                   /**< default sqeuclidean */
    int32_t n_lists;                     /**< default 1024; needs rows >= n_lists */
    int32_t kmeans_n_iters;              /**< default 20 */
    float kmeans_trainset_fraction;      /**< default 0.5 */
    int32_t max_train_points_per_cluster;/**< cap on training rows per list; default 256 (FAISS); 0 = no cap */
    bool adaptive_centers;               /**< centers follow the mean of their lists on extend; default false */
} ann_ivf_flat_params;

/** Search modes. */
typedef enum ann_ivf_search_mode {
    ANN_IVF_SEARCH_MATRIX = 0,
    ANN_IVF_SEARCH_CSR = 1,
    ANN_IVF_SEARCH_AUTO = 2,
} ann_ivf_search_mode;

/** Search parameters. */
typedef struct ann_ivf_flat_search_params {
    int32_t n_probes;        /**< default 20, clamped to n_lists */
    int64_t max_codes;       /**< 0 (default) = no cap on scanned vectors per query */
    int32_t search_mode;     /**< ann_ivf_search_mode, default AUTO */
} ann_ivf_flat_search_params;

void ann_ivf_flat_params_init(ann_ivf_flat_params *p);
void ann_ivf_flat_search_params_init(ann_ivf_flat_search_params *p);
const ann_param_desc *ann_ivf_flat_param_table(size_t *n);
const ann_param_desc *ann_ivf_flat_search_param_table(size_t *n);

#ifdef __cplusplus
}
#endif
#endif
