/*
 * ann/brute_force.h - exact k-nearest-neighbour search.
 *
 * Algorithm: blocked distances by GEMM (OpenBLAS on the CPU, cuBLAS on
 * CUDA; ||q||^2 + ||x||^2 - 2 q.x for the L2 family) with a fused per-query
 * top-k, then the k + 16 best candidates are re-ranked with exact direct
 * distances in double precision, so integer-valued data ranks exactly and
 * ties break by (distance, id) (notes/algorithms.md section 1).
 */
#ifndef ANN_BRUTE_FORCE_H_0b1c55
#define ANN_BRUTE_FORCE_H_0b1c55

#include "ann/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Build parameters of a brute-force index. */
typedef struct ann_brute_force_params {
    ann_metric metric;   /**< sqeuclidean (default), euclidean, inner_product, cosine, l1 (CPU) */
} ann_brute_force_params;

/** Search parameters of a brute-force index (none besides k; kept for symmetry). */
typedef struct ann_brute_force_search_params {
    int32_t reserved;
} ann_brute_force_search_params;

/** The one place the defaults live. */
void ann_brute_force_params_init(ann_brute_force_params *p);
void ann_brute_force_search_params_init(ann_brute_force_search_params *p);

/** Parameter tables (valid ranges; metric is handled by --metric, not by the table). */
const ann_param_desc *ann_brute_force_param_table(size_t *n);
const ann_param_desc *ann_brute_force_search_param_table(size_t *n);

#ifdef __cplusplus
}
#endif
#endif
