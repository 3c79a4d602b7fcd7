/*
 * ann/index.h - the index handle: build, extend, search, save, load.
 *
 * One opaque ann_index covers every algorithm; the algorithm-specific
 * parameters are passed as a pointer to that algorithm's params struct
 * (ann/brute_force.h, ann/ivf_flat.h, ann/cagra.h).  Operations run on the backend
 * chosen by ann_exec.device (ann/backend.h).
 *
 * Threading: searches on one index may run concurrently from several
 * threads; build, extend, save and free may not overlap other calls on
 * the same index.  Each call uses up to ann_exec.n_threads OpenMP threads.
 */
#ifndef ANN_INDEX_H_5d8e20
#define ANN_INDEX_H_5d8e20

#include "ann/container.h"
#include "ann/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ann_index ann_index;

/**
 * Build an index of @p algo over @p data (rows x dim, f32/f16/i8/u8, host).
 * @p params points to the algorithm's build params struct (NULL = its
 * defaults).  The index keeps its own copy of what it needs; @p data may
 * be released afterwards.
 * Errors: ANN_ERR_INVALID_ARG (params out of range, rows < n_lists, ...),
 * ANN_ERR_UNSUPPORTED (algorithm, dtype or metric not available),
 * ANN_ERR_BACKEND_UNAVAILABLE (device CUDA cannot run), ANN_ERR_NOMEM,
 * ANN_ERR_INTERRUPTED.
 */
ann_status ann_index_build(ann_algo algo, const void *params, const ann_matrix *data,
                           ann_exec *ex, ann_index **out);

/**
 * Add @p data (same dim and dtype as the index) with ids
 * @p ids (NULL = consecutive ids after the largest present).
 *  - brute_force: rows appended (any ids);
 *  - ivf_flat: rows assigned to their nearest lists (notes 2.2);
 *  - cagra: the rows are linked into the graph as cuVS cagra::extend
 *    does (notes 6.5; lib/src/cagra_extend.c), searching on the backend
 *    of @p ex.  Without a row -> id map (the usual case) ids are row
 *    numbers, so @p ids must be NULL or continue them; an index with one
 *    (imported with cuVS source indices) takes any ids that are >= 0 and
 *    not present yet, and NULL continues after its largest id.  An index
 *    without its vectors is ANN_ERR_INVALID_ARG.
 * A failed cagra extend leaves the index unchanged.
 * Errors: ANN_ERR_MISMATCH (dim/dtype), ANN_ERR_INVALID_ARG (also a
 * negative or repeated cagra id), ANN_ERR_UNSUPPORTED (cagra ids that are
 * not row numbers, for an index without a map), ANN_ERR_NOMEM,
 * ANN_ERR_INTERRUPTED.
 * Threads: ex->n_threads; results do not depend on them.
 */
ann_status ann_index_extend(ann_index *ix, const ann_matrix *data, const int64_t *ids, ann_exec *ex);

/**
 * Search @p queries (n x dim, any vector dtype; converted to the index's
 * arithmetic) for the @p k nearest rows.  @p search_params points to the
 * algorithm's search params struct (NULL = defaults).  Writes n x k ids
 * (int64, -1 for empty slots) and n x k distances (float32, the metric's
 * returned convention, worst value for empty slots), each row ordered
 * best first, ties broken by (distance, id).
 * Errors: ANN_ERR_MISMATCH (dim), ANN_ERR_INVALID_ARG (k < 1, params),
 * ANN_ERR_BACKEND_UNAVAILABLE, ANN_ERR_CUDA, ANN_ERR_NOMEM, ANN_ERR_INTERRUPTED.
 */
ann_status ann_index_search(const ann_index *ix, const void *search_params, const ann_matrix *queries,
                            int64_t k, ann_exec *ex, int64_t *ids, float *distances);

/**
 * Like ann_index_search(), returning only rows allowed by a filter
 * (DESIGN.md "Filters"; cuVS bitset_filter, notes/algorithms.md 0.4):
 * @p bitset holds ceil(@p n_bits / 32) uint32 words, and id i may be
 * returned when bit (i mod 32) of word i / 32 is 1; ids >= n_bits are
 * filtered out.  Ids are the ids a search returns (row numbers unless
 * brute_force rows were added with ids of the caller's choosing, or a
 * cagra index maps rows to ids: cuVS source indices).  A
 * file of bytes with bit i of byte i / 8 for id i (little-endian bit
 * order) has the same layout on little-endian hosts.
 *  - brute_force: exact search among the allowed rows (they are gathered
 *    and searched by the backend's brute force);
 *  - cagra: filtered rows are traversed but never returned (notes 7.4),
 *    and itopk_size grows by cuVS's filtered-search rule (notes 7.2,
 *    ann_cagra_plan_resolve); when more than 90 % of the rows are
 *    filtered out the search is a filtered brute force instead (notes 12),
 *    reported through ex->log at level 1.  With a row -> id map the
 *    bitset over ids is first turned into one over rows (row r kept when
 *    its id is), and both paths return mapped ids;
 *  - ivf_flat: the probed lists are scanned as usual and rows whose id
 *    is filtered out are skipped (cuVS ivf_flat::search with a filter),
 *    so a query gets fewer than k results when its probed lists hold
 *    fewer allowed rows; above 90 % filtered out, filtered brute force
 *    as for cagra.
 * Slots beyond the allowed rows get id -1 and the worst distance.
 * Errors: those of ann_index_search(); ANN_ERR_INVALID_ARG (bitset NULL,
 * n_bits < 0).
 */
ann_status ann_index_search_filtered(const ann_index *ix, const void *search_params, const ann_matrix *queries,
                                     int64_t k, const uint32_t *bitset, int64_t n_bits, ann_exec *ex, int64_t *ids,
                                     float *distances);

/** Summary of an index. */
typedef struct ann_index_info {
    ann_algo algo;
    ann_metric metric;
    ann_dtype dtype;
    int64_t rows, dim;
    int64_t row_offset;    /**< the index holds dataset rows [row_offset, row_offset + rows) (a shard); 0 normally */
    int64_t n_lists;       /**< IVF: number of lists; else 0 */
    int64_t graph_degree;  /**< CAGRA: neighbours per row of the graph; else 0 */
    bool has_dataset;      /**< false only for a CAGRA index without its vectors */
    bool has_ids;          /**< brute_force, cagra: the index maps rows to ids (saved as section `ids`; for cagra,
                                cuVS source indices), so a search returns those ids, not row numbers */
    int64_t id_bound;      /**< one past the largest id a search can return (rows when ids are row numbers):
                                the n_bits of a filter that can name every id */
    uint64_t memory_bytes; /**< host bytes the index holds (data, lists, centers) */
} ann_index_info;

/** Fill @p info (reads the whole id map for has_ids/id_bound: O(rows)). */
void ann_index_get_info(const ann_index *ix, ann_index_info *info);

/**
 * Record that @p ix was built from dataset rows starting at @p row_offset
 * (a shard: DESIGN.md "Scale-out"; annbuild --rows A:B records A).  It is
 * saved (meta key row_offset) and reported by ann_index_get_info(); the
 * search itself is unchanged and returns ids from 0: callers that merge
 * shards (annsearch INDEX...) add the offset.
 * Errors: ANN_ERR_INVALID_ARG (negative, or row_offset + rows overflows).
 */
ann_status ann_index_set_row_offset(ann_index *ix, int64_t row_offset);

/**
 * Save to @p path in the annkit container (written in place; tools write a
 * temporary file and rename it).  @p compress stores sections with zstd.
 * Errors: ANN_ERR_IO, ANN_ERR_NOMEM.
 */
ann_status ann_index_save(const ann_index *ix, const char *path, bool compress, int n_threads);

/**
 * Load an index file.  Raw sections are used in place from the memory
 * mapping (no copy).  Errors: those of ann_container_open(),
 * ANN_ERR_FORMAT when the file is a graph or an inconsistent index (the
 * message names the file and the section), ANN_ERR_UNSUPPORTED for an
 * algorithm this build cannot load.
 */
ann_status ann_index_load(const char *path, ann_index **out);

/** Free an index (NULL allowed), including any device copies. */
void ann_index_free(ann_index *ix);

/**
 * The parameter tables of @p algo's build and search params, the size of
 * the params structs, and their init functions, so that tools can drive
 * any algorithm generically.  Returns NULL for an unknown algorithm.
 */
typedef struct ann_algo_desc {
    ann_algo algo;
    const char *name;
    size_t build_params_size;
    size_t search_params_size;
    void (*build_params_init)(void *p);
    void (*search_params_init)(void *p);
    const ann_param_desc *(*build_table)(size_t *n);
    const ann_param_desc *(*search_table)(size_t *n);
    size_t metric_offset;   /**< offsetof the ann_metric field in the build params */
} ann_algo_desc;

const ann_algo_desc *ann_algo_describe(ann_algo algo);

#ifdef __cplusplus
}
#endif
#endif
