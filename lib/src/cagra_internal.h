/*
 * cagra_internal.h - INTERNAL: the pieces of CAGRA that the index handle
 * (index.c), the backends (backend.c) and the cuVS file reader/writer
 * (cagra_file.c) share.
 */
#ifndef ANN_CAGRA_INTERNAL_H
#define ANN_CAGRA_INTERNAL_H

#include "ann/cagra.h"
#include "backend_ops.h"

/**
 * Make the final graph of a CAGRA build (cagra_build.c): the initial kNN
 * graph (@p knn, or the builder of p->build_algo), rows re-sorted by
 * exact distance, then ann_cagra_optimize().  @p p is checked; the
 * degrees are clamped as ann_cagra_build() documents.  On success
 * *graph is a new rows x *degree array (ann_cagra_alloc; free()).
 */
ann_status ann_cagra_build_graph(const ann_cagra_params *p, const ann_matrix *data, const ann_graph *knn,
                                 ann_exec *ex, uint32_t **graph, int32_t *degree);

/**
 * Link the last @p n_new rows of @p base into its graph (cagra_extend.c;
 * cuVS cagra::extend, notes/algorithms.md 6.5): @p graph is
 * base->rows x base->graph_degree uint32, whose first base->rows - n_new
 * rows hold the current graph (rows < that count only) and whose last
 * n_new rows are written; base->data/norms cover all base->rows rows
 * (base->graph and base->filter are not used).  Existing rows gain
 * reverse edges to the new ones in their tail half.  Searches run on the
 * backend ex selects for ANN_OP_CAGRA_SEARCH.
 * Errors: ANN_ERR_INVALID_ARG (the current graph has no more rows than
 * its degree), ANN_ERR_NOMEM, ANN_ERR_INTERRUPTED, the search's errors.
 * Threads: ex->n_threads; the result does not depend on them.
 */
ann_status ann_cagra_extend_graph(const ann_cagra_view *base, int64_t n_new, ann_exec *ex, uint32_t *graph);

/** The CPU search behind ann_cpu_ops()->cagra_search (cagra_search.c). */
ann_status ann_cpu_cagra_search(const ann_cagra_view *ix, const ann_cagra_search_params *p, const ann_matrix *q,
                                int64_t k, int n_threads, int64_t *ids, float *dist);

/**
 * A large 64-byte aligned block (at least 1 byte) for vectors and graphs:
 * 2 MiB aligned and advised for transparent huge pages when it is large,
 * so random accesses during search hit the TLB.  Not zeroed.  free() it.
 */
void *ann_cagra_alloc(size_t bytes);

/** Everything a CAGRA index is made of (index.c <-> cagra_file.c). */
typedef struct ann_cagra_parts {
    ann_metric metric;
    ann_dtype dtype;
    int64_t rows, dim;
    int32_t graph_degree;
    const uint32_t *graph;   /* rows x graph_degree */
    const void *data;        /* rows x dim of dtype, contiguous; NULL: no vectors */
} ann_cagra_parts;

/** The parts of CAGRA index @p ix.  Errors: ANN_ERR_INVALID_ARG (not CAGRA). */
ann_status ann_index_cagra_parts(const ann_index *ix, ann_cagra_parts *out);

/**
 * A CAGRA index that takes ownership of @p graph (ann_cagra_alloc'd,
 * rows x degree, every id < rows) and, when not NULL, of @p data
 * (ann_cagra_alloc'd rows x dim of dtype); norms are computed.  On
 * failure both are freed.  @p params records the build parameters (NULL:
 * defaults with the given metric and degree).
 */
ann_status ann_index_cagra_adopt(const ann_cagra_params *params, ann_metric metric, ann_dtype dtype, int64_t rows,
                                 int64_t dim, int32_t degree, uint32_t *graph, void *data, int n_threads,
                                 ann_index **out);

#endif
