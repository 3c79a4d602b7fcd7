/*
 * ivf_pq_internal.h - INTERNAL: the CPU IVF-PQ index (ivf_pq_cpu.c) as
 * the graph builder uses it, and as a later annbuild/annsearch index and
 * its file format will: build, search, reconstruction, the kNN graph.
 *
 * List storage (notes 0.7, packed like IVF-Flat): the rows of list l are
 * packed rows [list_offsets[l], list_offsets[l+1]), sorted by source id,
 * with their source ids in list_ids.  Their codes are stored by groups
 * of ANN_IVF_PQ_GROUP rows: list l owns groups [group_offsets[l],
 * group_offsets[l+1]) (ceil(size / 16) of them; the unused rows of the
 * last group have code 0 and are never returned).  A group is `chunks`
 * chunks of 16 bytes, one byte per row:
 *   pq_bits 4:    chunk p holds subspaces 2p (low nibble) and 2p+1 (high
 *                 nibble); chunks = ceil(pq_dim / 2), an odd pq_dim has a
 *                 padding subspace whose code is 0;
 *   pq_bits 5..8: chunk j holds subspace j; chunks = pq_dim.
 * The byte of row r (0..15) of a group for chunk p is at
 * codes[(group * chunks + p) * 16 + r].  This "16 rows per chunk" layout
 * lets one 512-bit register look up 16 rows at once (vpermps for 4-bit
 * codes, a gather otherwise); cuVS's file layout (groups of 32 rows x
 * 16-byte chunks, notes 4.2) is a conversion at save time.
 */
#ifndef ANN_IVF_PQ_INTERNAL_H
#define ANN_IVF_PQ_INTERNAL_H

#include "ann/graph.h"
#include "ann/ivf_pq.h"
#include "backend_ops.h"

enum { ANN_IVF_PQ_GROUP = 16 };

/** A built CPU IVF-PQ index (all arrays owned; free with ann_ivf_pq_cpu_free). */
typedef struct ann_ivf_pq_cpu_index {
    ann_metric metric;        /* the index metric */
    ann_metric coarse_metric; /* k-means / assignment: sqeuclidean (L2 family, inner_product) or cosine */
    int64_t rows, dim;
    int32_t n_lists;
    int32_t pq_dim, pq_bits, pq_len, rot_dim;
    int32_t book;             /* 1 << pq_bits */
    int32_t chunks;           /* 16-byte chunks per group (see above) */
    float *centers;           /* n_lists x dim (unit length for cosine) */
    float *center_norms;      /* n_lists: squared L2 norms of the centers */
    float *centers_rot;       /* n_lists x rot_dim: R c */
    float *rotation;          /* rot_dim x dim, row-major; NULL = identity (rot_dim == dim) */
    float *pq_centers;        /* pq_dim x pq_len x book: entry c of subspace j, component t at
                                 [(j * pq_len + t) * book + c] (the cuVS layout) */
    int64_t *list_offsets;    /* n_lists + 1 */
    int64_t *group_offsets;   /* n_lists + 1 */
    int64_t *list_ids;        /* rows: source id of each packed row */
    uint8_t *codes;           /* group_offsets[n_lists] x chunks x 16 bytes */
} ann_ivf_pq_cpu_index;

/**
 * Build an index of @p data (rows x dim, f32/f16/i8/u8, host) with @p p
 * (checked here against ann_ivf_pq_param_table; pq_dim 0 = auto): train
 * on a subsample drawn with ex->seed, encode every row.  Threads:
 * ex->n_threads.  Progress: ("ivf_pq_build", rows encoded, rows).
 * Errors: ANN_ERR_INVALID_ARG, ANN_ERR_UNSUPPORTED (metric, per_cluster),
 * ANN_ERR_NOMEM, ANN_ERR_INTERRUPTED.
 */
ann_status ann_ivf_pq_cpu_build(const ann_ivf_pq_params *p, const ann_matrix *data, ann_exec *ex,
                                ann_ivf_pq_cpu_index **out);

/** Free an index (NULL allowed). */
void ann_ivf_pq_cpu_free(ann_ivf_pq_cpu_index *ix);

/**
 * Search @p q (n x dim, any vector dtype) for the k best rows by PQ
 * distance, n_probes lists per query (more when those lists hold fewer
 * than k rows): n x k source ids (-1 for empty slots) and approximate
 * distances in the metric's returned convention (squared L2, L2, +dot;
 * cosine: half the squared L2 distance of the unit query to the
 * reconstruction, = 1 - cos for a unit reconstruction; the worst value
 * for empty slots), best first, ties by id.  Threads: ex->n_threads
 * (ex may be NULL).  Errors: ANN_ERR_INVALID_ARG (dimension, k),
 * ANN_ERR_NOMEM.
 */
ann_status ann_ivf_pq_cpu_search(const ann_ivf_pq_cpu_index *ix, const ann_ivf_pq_search_params *p,
                                 const ann_matrix *q, int64_t k, ann_exec *ex, int64_t *ids, float *dist);

/**
 * The reconstruction of packed row @p row in the rotated space: R c_l +
 * the concatenated codebook entries of its codes (rot_dim floats).  The
 * PQ score of a query q (unit length for cosine) for that row is
 * ||R q - out||^2 (L2 family, cosine), or -(R q).out (inner_product).
 */
void ann_ivf_pq_cpu_reconstruct(const ann_ivf_pq_cpu_index *ix, int64_t row, float *out);

/**
 * The backend view of @p ix (backend_ops.h ann_ivf_pq_view): its arrays,
 * not copies, and @p device_cache (may be NULL) as the device cache slot.
 */
void ann_ivf_pq_cpu_view(const ann_ivf_pq_cpu_index *ix, void **device_cache, ann_ivf_pq_view *out);

/**
 * The CPU table's ivf_pq_search (backend_ops.h; notes/algorithms.md 4):
 * the candidate search of the kNN graph on a view.  @p q: n x dim f32 on
 * the host (unit length for cosine).  Writes n x n_cand source ids
 * (int64, -1 for empty slots) and PQ scores (smaller is better: squared
 * rotated L2, or -dot for inner_product; +inf for empty slots), best
 * first, ties by id, n_probes lists per query (clamped to n_lists; more
 * while they hold fewer than n_cand rows).  OpenMP over blocks of
 * queries (n_threads, 0 = default).  Errors: ANN_ERR_INVALID_ARG,
 * ANN_ERR_NOMEM.
 */
ann_status ann_ivf_pq_cpu_candidates(const ann_ivf_pq_view *ix, const ann_matrix *q, int32_t n_probes, int64_t n_cand,
                                     int n_threads, int64_t *ids, float *scores);

/**
 * The kNN graph of @p data with @p p (resolved here with
 * ann_ivf_pq_graph_params_resolve): rows x graph_degree ids (best first,
 * ties by id, never the row itself, no duplicates) and, when @p dist is
 * not NULL, exact distances in the returned convention.  Logs the
 * parameters, timings and the self-included ratio through ex->log
 * (level 1), and a warning (level 0) when the ratio is below 5 %.
 * Progress: ("ivf_pq", rows searched, rows).  Deterministic for a given
 * seed (and any thread count).
 * Where it runs: training and encoding on the CPU; the candidate search
 * on the backend ann_backend_select(ex, ANN_OP_IVF_PQ_SEARCH) picks
 * (CUDA under --device auto when a GPU is present, never with --device
 * cpu; sets ex->used, logged at level 1); the exact refine on the CPU.
 * Errors: those of ann_ivf_pq_cpu_build, ANN_ERR_BACKEND_UNAVAILABLE
 * (--device cuda without a usable GPU), ANN_ERR_CUDA, ANN_ERR_INTERRUPTED.
 */
ann_status ann_ivf_pq_cpu_knn_graph(const ann_ivf_pq_graph_params *p, const ann_matrix *data, ann_exec *ex,
                                    uint32_t *ids, float *dist);

/**
 * A LUT scan kernel: scores of n_groups groups of 16 rows (codes in the
 * layout above, `chunks` chunks per group) into out[n_groups x 16]:
 * pq_bits 4: the sum over even subspaces plus the sum over odd ones;
 * else the sum over j = 0.. of lut[j x book + code_j].  lut holds
 * 2 x chunks (4-bit) or chunks (else) tables of `book` floats.
 */
typedef void (*ann_ivf_pq_scan_fn)(const uint8_t *codes, int64_t n_groups, int32_t chunks, int32_t book,
                                   const float *lut, float *out);

/**
 * The scan kernels for pq_bits 4 (@p four) or 5..8, in order scalar,
 * AVX2, AVX-512 (NULL where the CPU or the build lacks one; 5..8 bits
 * have the scalar one only), for the unit tests.  Returns 3, the number
 * of slots written.
 */
int ann_ivf_pq_scan_kernels(bool four, ann_ivf_pq_scan_fn out[3]);

#endif
