/*
 * ann/recall.h - recall@k of search results against ground truth.
 *
 * Two definitions (notes/formats-and-anchors.md 3.3, ann-benchmarks#176):
 *  - id intersection: |returned ids among the first k  AND  true top-k ids| / k;
 *  - the ann-benchmarks "k-nn" rule: a returned id counts when its true
 *    distance to the query, recomputed from the vectors, is at most the
 *    k-th true distance + 1e-3, so ties at the k-th distance are credited.
 */
#ifndef ANN_RECALL_H_2f61b8
#define ANN_RECALL_H_2f61b8

#include "ann/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Mean id-intersection recall over @p n queries.  @p found is n x k
 * (int64, row stride k); @p truth is an n x truth_k matrix of ids (I32 or
 * I64, truth_k >= k; only its first k columns are used).  -1 ids never match.
 * Errors: ANN_ERR_MISMATCH when truth has fewer rows than n or fewer than k columns.
 */
ann_status ann_recall_ids(const int64_t *found, int64_t n, int64_t k, const ann_matrix *truth, double *recall);

/**
 * Mean ann-benchmarks recall: distance threshold t_i = d_i(k) + 1e-3 where
 * d_i(k) is the k-th true distance, computed from the vectors in the
 * ann-benchmarks convention of @p metric (euclidean for the L2 family,
 * 1 - cos for cosine and inner_product-as-angular) between @p queries row
 * i and @p data row truth[i][k-1]; each returned id of row i counts when
 * its own distance so computed is <= t_i.  Runs on OpenMP threads.
 * Errors: ANN_ERR_MISMATCH (rows, dims), ANN_ERR_INVALID_ARG (ids out of range).
 */
ann_status ann_recall_threshold(const int64_t *found, int64_t n, int64_t k, const ann_matrix *truth,
                                const ann_matrix *data, const ann_matrix *queries, ann_metric metric,
                                double *recall);

#ifdef __cplusplus
}
#endif
#endif
