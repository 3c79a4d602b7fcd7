/*
 * ann/cagra.h - CAGRA: a graph index built from a kNN graph by rank-based
 * pruning and reverse-edge merging, searched by a beam search over a
 * sorted internal top-k list (Ootomo et al., "CAGRA: Highly Parallel
 * Graph Construction and Approximate Nearest Neighbor Search for GPUs",
 * ICDE 2024; seeds/cagra.md; notes/algorithms.md sections 6-8 and 13).
 *
 * Build (ann_index_build with ANN_ALGO_CAGRA, or ann_cagra_build to start
 * from a graph file):
 *  1. an initial kNN graph of intermediate_graph_degree neighbours per
 *     row (NN-Descent, exact brute force, or the caller's graph; build_algo
 *     iterative instead grows the final graph by CAGRA search, see
 *     ann_cagra_build_algo);
 *  2. every row re-sorted by the exact distance to its row (ties by id),
 *     duplicates and the row itself dropped;
 *  3. ann_cagra_optimize(): 2-hop detour counting prune, reverse graph,
 *     merge (notes 6.3 (a)-(c)), and with guarantee_connectivity a
 *     spanning tree leading every row (6.3 (d)).
 * The index holds the graph (rows x graph_degree uint32 row numbers) and,
 * unless attach_dataset_on_build is false, a copy of the vectors (and
 * their norms for the L2 family and cosine).  An index imported from a
 * cuVS file with source indices also holds a row -> id map (int64 x
 * rows): its searches return source_indices[row], as cuVS does, and its
 * filters are over those ids (ann/index.h); the graph stays in rows.
 *
 * Search on the CPU: one thread per query (OpenMP over queries), with
 * the single-CTA semantics of notes 7.4: a sorted list of itopk_size
 * candidates with "parent" flags, search_width unexpanded entries expanded
 * per iteration, termination when no unexpanded entry is left or after
 * max_iterations, seeds from xorshift64(gid ^ rand_xor_mask) mod rows.
 * Parameters that only shape the GPU kernels (algo, team_size,
 * thread_block_size, hashmap_*, max_queries) are accepted and ignored on
 * the CPU, which uses an exact visited set instead of a hash table.
 *
 * Returned distances follow DESIGN.md: sqeuclidean squared L2, euclidean
 * L2, inner_product +dot (best first = largest), cosine 1 - cos, l1;
 * integer data are compared in float on their original values and
 * distances are in original units.
 */
#ifndef ANN_CAGRA_H_a41f0c
#define ANN_CAGRA_H_a41f0c

#include "ann/core.h"
#include "ann/graph.h"
#include "ann/index.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * How the initial kNN graph is made (cuVS graph_build_params; notes 6.1
 * and 6.4).
 *
 * AUTO (notes 6.1, "from what fits in memory"): brute_force when
 * rows^2 x dim <= ANN_CAGRA_AUTO_BF_WORK; else nn_descent when the host
 * peak of the memory model of a CAGRA build with builder nn_descent
 * (ann/memory.h: input + annkit's CPU NN-Descent terms, cpu_build_peak,
 * or with ann_exec.device CUDA the reference's rows x (13 x
 * intermediate_graph_degree + 912) bytes; headroom 0.30) fits ann_exec.max_host_memory (the dataset
 * counted), or, when that is 0, the host memory available now
 * (ann_mem_host_available(); the dataset, already read, not counted again;
 * unknown memory counts as fitting); else ivf_pq.  Device memory is not
 * part of the choice.  The choice and its reason are logged at level 1
 * (annbuild -v): "cagra: build_algo auto: nn_descent (estimated peak host
 * memory ...)".
 *
 * ITERATIVE (notes 6.4, cuVS iterative_search_params): no other kNN
 * builder; the graph grows by doubling from a deterministic ring-like
 * graph on the first n0 rows (ceil(rows / 2) halved until <= 64 x
 * graph_degree), each round searching the first min(2 x cur, rows) rows
 * as queries on the current graph with CAGRA search (itopk = next degree
 * + 32, k = next degree + 1, batches of 8192, the query itself dropped)
 * and optimising the result with ann_cagra_optimize() to
 * max(graph_degree / 2, min(graph_degree, 24)) neighbours while the graph
 * is partial, graph_degree once it is full; then a final round with
 * k = intermediate_graph_degree + 1, itopk = k + 32, the only one with
 * guarantee_connectivity.  The search runs on the backend that
 * ann_exec.device selects for CAGRA search (--device cuda fails with
 * ANN_ERR_BACKEND_UNAVAILABLE where CUDA has no CAGRA search).  The graph
 * does not depend on the thread count.  Cosine (which cuVS refuses)
 * searches and prunes by cosine in every round.  With inner_product
 * every round but the last searches and prunes by squared L2 and the
 * last searches by inner product (an inner-product kNN graph is
 * hub-bound and searches poorly while it grows: recall@10 0.84 against
 * 0.99 on 20000 rows of Fashion-MNIST with inner-product rounds; see
 * cagra_build.c).  On the CPU (Fashion-MNIST, graph_degree 32 from 64, two threads) it took
 * about 0.7x the CPU time and half the memory of nn_descent for the
 * same recall (numbers in cagra_build.c).
 */
typedef enum ann_cagra_build_algo {
    ANN_CAGRA_BUILD_AUTO = 0,        /**< brute_force, nn_descent or ivf_pq, as above */
    ANN_CAGRA_BUILD_NN_DESCENT = 1,  /**< NN-Descent (ann/graph.h) */
    ANN_CAGRA_BUILD_BRUTE_FORCE = 2, /**< exact kNN graph */
    ANN_CAGRA_BUILD_IVF_PQ = 3,      /**< IVF-PQ kNN graph (ann/ivf_pq.h, CAGRA preset): trained on the
                                          CPU, candidates searched on ex->device's backend (ann/graph.h) */
    ANN_CAGRA_BUILD_ITERATIVE = 4,   /**< the graph grown by CAGRA search, as above */
} ann_cagra_build_algo;

/**
 * build_algo auto makes the exact kNN graph while rows x rows x dim is at
 * most this (about a second of GEMM on two cores: 7000 rows of 784
 * dimensions, 17000 of 128), where it is cheaper than NN-Descent.
 */
#define ANN_CAGRA_AUTO_BF_WORK 4e10

/** Build parameters: cuVS cagra::index_params names and defaults (notes 6.1). */
typedef struct ann_cagra_params {
    ann_metric metric;                 /**< default sqeuclidean; also euclidean, inner_product, cosine, l1 */
    int32_t intermediate_graph_degree; /**< default 128: neighbours per row of the initial kNN graph */
    int32_t graph_degree;              /**< default 64: neighbours per row of the final graph */
    int32_t build_algo;                /**< ann_cagra_build_algo, default AUTO (ignored with a caller's graph) */
    int32_t nn_descent_niter;          /**< default 20: NN-Descent iterations (cuVS C API name) */
    bool guarantee_connectivity;       /**< default false; true: spanning-tree edges lead every row
                                            (ann_cagra_optimize (d)); needs graph_degree >= 2 */
    bool attach_dataset_on_build;      /**< default true; false keeps only the graph (CLI --no-dataset) */
} ann_cagra_params;

/** CUDA kernel choice (accepted, ignored on the CPU). */
typedef enum ann_cagra_search_algo {
    ANN_CAGRA_SEARCH_AUTO = 0,
    ANN_CAGRA_SEARCH_SINGLE_CTA = 1,
    ANN_CAGRA_SEARCH_MULTI_CTA = 2,
    ANN_CAGRA_SEARCH_MULTI_KERNEL = 3,
} ann_cagra_search_algo;

/** CUDA visited-set kind (accepted, ignored on the CPU). */
typedef enum ann_cagra_hashmap_mode {
    ANN_CAGRA_HASHMAP_AUTO = 0,
    ANN_CAGRA_HASHMAP_HASH = 1,
    ANN_CAGRA_HASHMAP_SMALL = 2,
} ann_cagra_hashmap_mode;

/** Search parameters: cuVS cagra::search_params names and defaults (notes 7.1). */
typedef struct ann_cagra_search_params {
    int32_t itopk_size;            /**< default 64; rounded up to a multiple of 32, and to k when smaller */
    int32_t search_width;          /**< default 1: parents expanded per iteration */
    int32_t max_iterations;        /**< default 0 = auto: itopk/search_width + ceil(log_{max(2,deg/2)} rows) */
    int32_t min_iterations;        /**< default 0 */
    int32_t num_random_samplings;  /**< default 1: random trials per seed slot, best kept */
    int64_t rand_xor_mask;         /**< default 0x128394 */
    /* GPU kernel shape: accepted and checked, ignored on the CPU */
    int32_t algo;                  /**< ann_cagra_search_algo, default AUTO; table name "search_algo"
                                        (--algo names the index algorithm, and "algo" is the
                                        algorithm key of annsearch --json) */
    int32_t team_size;             /**< default 0 (auto); 0, 4, 8, 16 or 32 */
    int32_t thread_block_size;     /**< default 0 (auto); 0, 64, 128, 256, 512 or 1024 */
    int32_t max_queries;           /**< default 0 (all queries in one launch) */
    int32_t hashmap_mode;          /**< ann_cagra_hashmap_mode, default AUTO */
    int32_t hashmap_min_bitlen;    /**< default 0, at most 20 */
    float hashmap_max_fill_rate;   /**< default 0.5, in [0.1, 0.9] */
} ann_cagra_search_params;

/** The defaults (the one place they live). */
void ann_cagra_params_init(ann_cagra_params *p);
void ann_cagra_search_params_init(ann_cagra_search_params *p);

/** Parameter tables (valid ranges; the metric is handled by --metric, not by the table). */
const ann_param_desc *ann_cagra_param_table(size_t *n);
const ann_param_desc *ann_cagra_search_param_table(size_t *n);

/**
 * Build a CAGRA index of @p data (rows x dim, f32/f16/i8/u8, host) with
 * @p params (NULL = defaults).  When @p knn is not NULL it is the initial
 * kNN graph (e.g. ann_graph_load() of an anngraph file) and build_algo is
 * not used: it must have data->rows rows; when its degree is below
 * intermediate_graph_degree, its degree is used instead (and graph_degree
 * is lowered to it when larger).  Its rows are re-sorted by exact
 * distance under params->metric, so any graph of the right shape works;
 * a graph made under another metric (sqeuclidean and euclidean count as
 * one) is ANN_ERR_MISMATCH.
 *
 * Degree rules (notes 6.1): intermediate_graph_degree >= rows becomes
 * rows - 1; graph_degree > intermediate_graph_degree becomes
 * intermediate_graph_degree (both reported through ex->log at level 1).
 *
 * Errors: ANN_ERR_INVALID_ARG (params out of range; fewer than 2 rows:
 * "the dataset has R rows: a CAGRA graph needs at least 2"),
 * ANN_ERR_MISMATCH (knn rows or metric), ANN_ERR_UNSUPPORTED (build_algo
 * ivf_pq with metric l1; metric hamming; dtype), ANN_ERR_BACKEND_UNAVAILABLE (ex->device CUDA without a
 * usable GPU, e.g. for the candidate search of build_algo ivf_pq, or
 * iterative with no CUDA CAGRA search), ANN_ERR_CUDA, ANN_ERR_NOMEM,
 * ANN_ERR_INTERRUPTED.
 * Threads: ex->n_threads OpenMP threads.  Progress: ex->progress gets
 * ("nn_descent", ...), ("sort", rows done, rows), ("optimize", ...), or
 * with build_algo iterative ("iterative", rounds done, rounds).
 * ex->max_host_memory is read by build_algo auto.
 */
ann_status ann_cagra_build(const ann_cagra_params *params, const ann_matrix *data, const ann_graph *knn,
                           ann_exec *ex, ann_index **out);

/**
 * CAGRA's graph optimisation (notes/algorithms.md 6.3; Ootomo et al.
 * section IV-B):
 *  (a) prune: for each row A of @p knn (rows x ideg uint32, every row
 *      sorted best first, no duplicates, never the row itself; ids >= rows
 *      mark empty slots), detour[kAB] counts the ranks kAD < kAB whose
 *      row A[kAD] contains A[kAB]; the @p deg entries of smallest
 *      (detour, rank) are kept, in that order;
 *  (b) reverse graph of the pruned graph: for column c = 0 .. deg-1, for
 *      row s = 0 .. rows-1 in order, s is appended to the reverse list of
 *      pruned[s][c] while it holds fewer than deg entries;
 *  (d) with @p guarantee_connectivity: a spanning tree of the kNN graph
 *      with at most max(2, deg/2) tree edges per node (Kruskal over the
 *      kNN edges by rank, leftover components joined to the largest one
 *      through nodes i + 97t mod rows; annkit's CPU form of cuVS's
 *      approximate MST); every node's tree neighbours lead its row, so the
 *      graph is connected in both directions;
 *  (c) merge: the first max(tree neighbours, deg/2) entries stay (tree
 *      neighbours, then pruned entries); then the reverse entries (in
 *      reverse-list order, skipping those already in that prefix), then
 *      the remaining pruned entries, up to deg, without duplicates.
 * Writes @p out (rows x deg uint32): no row holds a duplicate or itself.
 * Requires 1 <= deg <= ideg < rows (deg >= 2 with guarantee_connectivity).
 * Errors: ANN_ERR_INVALID_ARG (degrees; a row with fewer than deg usable
 * entries: "row R of the initial kNN graph has only U distinct neighbours,
 * graph_degree is D"), ANN_ERR_NOMEM.
 * Threads: n_threads OpenMP threads (0 = default), one row at a time; the
 * spanning tree is sequential.  The result does not depend on the thread
 * count.
 */
ann_status ann_cagra_optimize(const uint32_t *knn, int64_t rows, int32_t ideg, int32_t deg,
                              bool guarantee_connectivity, int n_threads, uint32_t *out);

/**
 * The graph of a CAGRA index: rows x *degree uint32 row numbers, valid
 * while @p ix lives.  Errors: ANN_ERR_INVALID_ARG (not a CAGRA index).
 */
ann_status ann_cagra_graph(const ann_index *ix, const uint32_t **graph, int32_t *degree);

/**
 * Whether a CAGRA index holds its vectors (false after a build with
 * attach_dataset_on_build = false, or a load of such a file, until
 * ann_index_attach_dataset()).  False for other algorithms.
 */
bool ann_cagra_has_dataset(const ann_index *ix);

/**
 * Give a CAGRA index without vectors its dataset: @p data must be the
 * rows x dim matrix the graph was built from (same rows, dim and dtype);
 * it is copied, and norms are computed as a build would.  Replaces
 * vectors already attached.
 * Errors: ANN_ERR_INVALID_ARG (not CAGRA), ANN_ERR_MISMATCH (rows, dim or
 * dtype; the message says which), ANN_ERR_NOMEM.  Not thread-safe with
 * searches on the same index.
 */
ann_status ann_index_attach_dataset(ann_index *ix, const ann_matrix *data, int n_threads);

/* ------------------- cuVS's own CAGRA file (version 5) ------------------- */

/**
 * True when the first bytes of @p path are those of a cuVS CAGRA file: a
 * 4-byte numpy dtype string ("<f4", "<f2", "|i1", "|u1", NUL-padded)
 * followed by the npy magic "\x93NUMPY" (notes/algorithms.md 8).  False
 * for unreadable or short files.
 */
bool ann_cagra_cuvs_detect(const char *path);

/**
 * Write CAGRA index @p ix as cuVS's serialized index, version 5
 * (notes/algorithms.md 0.5 and 8): dtype string, npy scalars version,
 * rows, dim, graph_degree, metric, the graph, content_map, with
 * @p include_dataset the strided dataset record and the rows x dim
 * vectors, and when the index maps rows to ids the source indices
 * (content_map bit 1, npy uint32 (rows,)).  The file is written in
 * place.  Errors: ANN_ERR_INVALID_ARG (not CAGRA; include_dataset on an
 * index without vectors; rows >= 2^32; an id above 2^32 - 1, the file's
 * uint32 IdxT), ANN_ERR_UNSUPPORTED (metric euclidean, which cuVS CAGRA
 * does not have), ANN_ERR_IO.
 */
ann_status ann_cagra_save_cuvs(const ann_index *ix, const char *path, bool include_dataset);

/**
 * Read a cuVS CAGRA file (version 5) into a CAGRA index.  Every npy
 * header is parsed and checked (dtype, shape, version 5, metric, graph
 * ids < rows, degree <= 65536, sizes against the file size); a file
 * without the dataset gives an index without vectors; source indices
 * (uint32 x rows, each id once) become the index's row -> id map; a
 * VPQ-compressed dataset is ANN_ERR_UNSUPPORTED.  Graph rows that
 * hold their own row or a duplicate are accepted as cuVS writes them.
 * Errors: ANN_ERR_IO, ANN_ERR_FORMAT (the message names the file, the
 * field and the byte offset; also a truncated source index array or an
 * id found twice in it), ANN_ERR_VERSION, ANN_ERR_UNSUPPORTED,
 * ANN_ERR_NOMEM.
 */
ann_status ann_cagra_load_cuvs(const char *path, ann_index **out);

#ifdef __cplusplus
}
#endif
#endif
