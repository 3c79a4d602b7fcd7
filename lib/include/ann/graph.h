/*
 * ann/graph.h - all-neighbours kNN graphs: build (NN-Descent, brute
 * force, IVF-PQ), evaluate, save and load (man/ann-graph.5).
 *
 * A graph holds, for each of `rows` vectors, the ids of its `degree`
 * nearest other vectors (uint32, best first; never the row itself, never
 * a duplicate) and optionally their distances (float32, the metric's
 * returned convention: squared L2, L2, +dot, 1 - cos, L1, bit count).
 */
#ifndef ANN_GRAPH_H_4c7e19
#define ANN_GRAPH_H_4c7e19

#include "ann/container.h"
#include "ann/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Distance arithmetic of NN-Descent (seeds/nn-descent.md "dist_comp_dtype"). */
typedef enum ann_dist_comp_dtype {
    ANN_DIST_COMP_AUTO = 0, /**< fp32 on the CPU; the CUDA backend may use fp16 for dim > 16 */
    ANN_DIST_COMP_FP32 = 1,
    ANN_DIST_COMP_FP16 = 2, /**< vectors rounded to binary16 before distances (less memory on GPU) */
} ann_dist_comp_dtype;

/**
 * NN-Descent parameters: names and defaults of seeds/nn-descent.md
 * "Build parameters".  intermediate_graph_degree is raised to graph_degree
 * when smaller, and lowered to rows - 1 when larger.
 */
typedef struct ann_nn_descent_params {
    ann_metric metric;                  /**< default sqeuclidean; hamming needs u8/i8 data */
    int32_t graph_degree;               /**< default 64 */
    int32_t intermediate_graph_degree;  /**< default 128 */
    int32_t max_iterations;             /**< default 20 */
    float termination_threshold;        /**< default 0.0001: stop when an iteration's updates fall below
                                             termination_threshold x rows x intermediate_graph_degree */
    bool return_distances;              /**< default true */
    int32_t dist_comp_dtype;            /**< ann_dist_comp_dtype, default AUTO */
} ann_nn_descent_params;

/** Exact graph parameters (brute force). */
typedef struct ann_knn_graph_params {
    ann_metric metric;      /**< default sqeuclidean */
    int32_t graph_degree;   /**< default 64 */
    bool return_distances;  /**< default true */
} ann_knn_graph_params;

void ann_nn_descent_params_init(ann_nn_descent_params *p);
void ann_knn_graph_params_init(ann_knn_graph_params *p);
const ann_param_desc *ann_nn_descent_param_table(size_t *n);
const ann_param_desc *ann_knn_graph_param_table(size_t *n);

/** A kNN graph.  Arrays are owned by the graph (or mapped from its file). */
typedef struct ann_graph {
    ann_algo algo;          /**< ANN_ALGO_NN_DESCENT, ANN_ALGO_BRUTE_FORCE, ANN_ALGO_IVF_PQ (NONE: imported) */
    ann_metric metric;
    int64_t rows;
    int32_t degree;
    uint32_t *ids;          /**< rows x degree */
    float *distances;       /**< rows x degree, or NULL */
    void *owner_;           /**< internal */
} ann_graph;

/**
 * Build a graph of @p data (rows x dim, f32/f16/i8/u8, host) with @p algo
 * (ANN_ALGO_NN_DESCENT with ann_nn_descent_params, ANN_ALGO_BRUTE_FORCE
 * with ann_knn_graph_params, ANN_ALGO_IVF_PQ with ann_ivf_pq_graph_params
 * of ann/ivf_pq.h; NULL params = defaults).
 *
 * NN-Descent (Dong, Moses, Li, WWW 2011; GNND, Wang et al., CIKM 2021;
 * notes/algorithms.md section 5): the initial graph is each row's nearest
 * rows among the rows of its nearest balanced k-means clusters (the role
 * of pynndescent's random-projection forest), then every iteration
 * samples about sqrt(2 x intermediate_graph_degree) (8 to 32) "new" and
 * "old" neighbours per row plus reverse neighbours, and the local join compares new x new and new x old pairs
 * (one small GEMM per row), inserting closer pairs into both rows.
 * --seed makes a build repeatable for a given thread count.
 *
 * IVF-PQ (Jegou, Douze, Schmid, TPAMI 2011; notes/algorithms.md 4.3,
 * CAGRA's build_knn_graph): every row is searched in an IVF-PQ index of
 * the dataset for ceil(graph_degree x refine_ratio) candidates (at
 * least graph_degree + 1), which are re-ranked with exact distances; the
 * row itself is dropped.  Training (k-means, codebooks, rotation),
 * encoding and the exact re-rank run on the CPU; the candidate search
 * runs where ex->device says: on CUDA for ANN_DEVICE_CUDA (an error,
 * ANN_ERR_BACKEND_UNAVAILABLE, without a usable GPU), and for
 * ANN_DEVICE_AUTO when the CUDA plugin loads and a device is present;
 * on the CPU otherwise (ex->used says which).  Both searches pick the
 * same candidates up to near-ties of the coarse scores.  Deterministic
 * for a seed, whatever the thread count.  ex->log gets the parameters,
 * the device of the search and the self-included ratio (level 1), and a
 * warning (level 0) when the ratio is below 5 %.
 *
 * Errors: ANN_ERR_INVALID_ARG (rows < 2, degree out of range: the message
 * says the degree and the rows; ivf_pq: pq_bits 1 to 3, n_lists > rows),
 * ANN_ERR_UNSUPPORTED (metric/dtype; ivf_pq: l1, hamming, per_cluster
 * codebooks), ANN_ERR_BACKEND_UNAVAILABLE, ANN_ERR_NOMEM,
 * ANN_ERR_INTERRUPTED.
 * Progress: ex->progress gets ("nn_descent", iteration, max_iterations);
 * ivf_pq: ("ivf_pq_build", rows encoded, rows), then ("ivf_pq", rows
 * searched, rows).  Threads: ex->n_threads.
 */
ann_status ann_graph_build(ann_algo algo, const void *params, const ann_matrix *data, ann_exec *ex,
                           ann_graph **out);

/**
 * Wrap caller arrays (copied) as a graph, e.g. one imported from npy/ivecs.
 * Checks every id < rows.  Errors: ANN_ERR_FORMAT naming the first bad
 * row, ANN_ERR_NOMEM.
 */
ann_status ann_graph_from_ids(const ann_matrix *ids, const ann_matrix *distances, ann_metric metric,
                              ann_graph **out);

/** Save in the annkit container (kind graph; sections meta, ids, distances). Errors: ANN_ERR_IO. */
ann_status ann_graph_save(const ann_graph *g, const char *path, bool compress, int n_threads);

/**
 * Load a graph file.  Errors: those of ann_container_open(), ANN_ERR_FORMAT
 * for an index file, missing sections or ids >= rows.
 */
ann_status ann_graph_load(const char *path, ann_graph **out);

/**
 * Graph recall: for @p sample rows drawn with @p seed (all rows when
 * sample <= 0 or >= rows), the fraction of the exact degree nearest
 * other rows (brute force, ties by id) present in the graph row, and the
 * mean over the sample.  Errors: ANN_ERR_MISMATCH (rows differ).
 */
ann_status ann_graph_eval(const ann_graph *g, const ann_matrix *data, int64_t sample, uint64_t seed,
                          ann_exec *ex, double *recall);

/** Free (NULL allowed). */
void ann_graph_free(ann_graph *g);

#ifdef __cplusplus
}
#endif
#endif
