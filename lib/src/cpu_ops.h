/*
 * cpu_ops.h - INTERNAL: the CPU implementations behind ann_cpu_ops().
 * Semantics of each are those of the matching slot in backend_ops.h.
 */
#ifndef ANN_CPU_OPS_H
#define ANN_CPU_OPS_H

#include "backend_ops.h"

ann_status ann_cpu_bf_search(const ann_bf_view *ix, const ann_matrix *q, int64_t k, int n_threads,
                             int64_t *ids, float *dist);
ann_status ann_cpu_ivf_flat_search(const ann_ivf_flat_view *ix, const ann_ivf_flat_search_params *p,
                                   const ann_matrix *q, int64_t k, int n_threads, int64_t *ids, float *dist);
/* As ann_cpu_ivf_flat_search; rerank = false returns the scan's own (GEMM) distances, without
   the exact re-rank of the survivors (for builders that only need neighbours). */
ann_status ann_cpu_ivf_flat_search_ex(const ann_ivf_flat_view *ix, const ann_ivf_flat_search_params *p,
                                      const ann_matrix *q, int64_t k, int n_threads, bool rerank, int64_t *ids,
                                      float *dist);
ann_status ann_cpu_kmeans_fit(const ann_kmeans_params *p, const ann_matrix *train, int n_threads,
                              float *centers);
ann_status ann_cpu_kmeans_predict(ann_metric metric, const float *centers, int32_t n_clusters,
                                  const ann_matrix *x, int n_threads, int32_t *labels);

#endif
