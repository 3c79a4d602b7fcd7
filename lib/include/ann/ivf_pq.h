/*
 * ann/ivf_pq.h - IVF-PQ: inverted lists of product-quantized residuals,
 * and the all-neighbours kNN graph built from IVF-PQ searches.
 *
 * Product quantization (Jegou, Douze, Schmid, "Product Quantization for
 * Nearest Neighbor Search", IEEE TPAMI 33(1), 2011) with the cuVS
 * variant of notes/algorithms.md section 4:
 *
 * Build: balanced k-means (notes 0.6) on a seeded random subsample of
 *   the rows gives n_lists coarse centers.  Every vector's residual
 *   x - c (its nearest center) is rotated by R (rot_dim x dim, rot_dim =
 *   pq_dim x pq_len, pq_len = ceil(dim / pq_dim)): the identity (padded)
 *   when rot_dim == dim and force_random_rotation is false, else a seeded
 *   random matrix with orthonormal columns.  The rotated residual is cut
 *   into pq_dim sub-vectors of pq_len values; each sub-vector is replaced
 *   by the number (pq_bits bits) of its nearest entry in that subspace's
 *   codebook of 2^pq_bits entries, trained by k-means on the rotated
 *   residuals of at most max_train_points_per_pq_code x 2^pq_bits rows.
 * Search: the n_probes nearest centers per query (one GEMM), then per
 *   (query, list) a float32 look-up table LUT[j][c] (pq_dim x 2^pq_bits)
 *   and per row the sum of LUT[j][code_j] over the subspaces: the
 *   asymmetric distance of the paper, in the rotated space.
 *
 * Metrics: sqeuclidean, euclidean, inner_product and cosine.  For
 * inner_product the coarse k-means is L2 and the score is -q.(c + r)
 * (notes 4.2, 4.3).  For cosine the rows and queries are L2-normalised
 * first, the coarse k-means is cosine, and the score is the squared L2
 * distance between the unit vectors (cuVS uses -q.(c + r) there; L2
 * ranks the same and suffers far less from the quantization error, see
 * lib/src/ivf_pq_cpu.c).  Element types f32,
 * f16, i8 and u8 are used as floats of their original values (no
 * rescaling, notes 0.2).
 *
 * In this version IVF-PQ builds kNN graphs (ann_graph_build() with
 * ANN_ALGO_IVF_PQ and ann_ivf_pq_graph_params; `anngraph --algo ivf_pq`);
 * annbuild/annsearch indexes are not available yet.  Training and
 * encoding run on the CPU; the search of every row's candidates runs on
 * CUDA when the exec's device selects it (--device cuda, or auto with a
 * GPU present), else on the CPU; the exact re-rank on the CPU.
 */
#ifndef ANN_IVF_PQ_H_5d2b07
#define ANN_IVF_PQ_H_5d2b07

#include "ann/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/** How the PQ codebooks are shared (cuVS codebook_gen). */
typedef enum ann_ivf_pq_codebook_kind {
    ANN_IVF_PQ_CODEBOOK_PER_SUBSPACE = 0, /**< one codebook per subspace, shared by all lists */
    ANN_IVF_PQ_CODEBOOK_PER_CLUSTER = 1,  /**< one codebook per list: ANN_ERR_UNSUPPORTED in this version */
} ann_ivf_pq_codebook_kind;

/**
 * Index parameters: names and defaults of cuVS ivf_pq::index_params
 * (notes/algorithms.md 4.1).  The library needs rows >= n_lists.
 */
typedef struct ann_ivf_pq_params {
    ann_metric metric;                    /**< default sqeuclidean; also euclidean, inner_product, cosine */
    int32_t n_lists;                      /**< coarse clusters, default 1024 */
    int32_t kmeans_n_iters;               /**< balanced k-means iterations (coarse and codebooks), default 20 */
    float kmeans_trainset_fraction;       /**< share of the rows (random, seeded) that train k-means, default 0.5 */
    int32_t pq_bits;                      /**< bits per code, 4 to 8, default 8 */
    int32_t pq_dim;                       /**< subspaces; default 0 = auto: dim / 2 when dim >= 128, rounded
                                               down to a multiple of 32 (else the largest power of two <= dim) */
    int32_t codebook_kind;                /**< ann_ivf_pq_codebook_kind, default PER_SUBSPACE */
    bool force_random_rotation;           /**< rotate even when rot_dim == dim, default false */
    int32_t max_train_points_per_pq_code; /**< codebook training rows per code, default 256 */
} ann_ivf_pq_params;

/** Search parameters (cuVS ivf_pq::search_params; the LUT and distances are always float32 here). */
typedef struct ann_ivf_pq_search_params {
    int32_t n_probes; /**< lists scanned per query, default 20, clamped to n_lists */
} ann_ivf_pq_search_params;

/**
 * Parameters of a kNN graph built with IVF-PQ (CAGRA's
 * graph_build_params::ivf_pq_params plus the graph's own settings).
 *
 * After ann_ivf_pq_graph_params_init() the fields n_lists, pq_dim,
 * pq_bits, kmeans_n_iters, kmeans_trainset_fraction and n_probes are 0 =
 * auto: CAGRA's graph-build preset (notes 4.1), computed from the rows N
 * and the dimension D of the dataset by ann_ivf_pq_graph_params_resolve():
 *  - pq_bits = 8 and pq_dim = 16 when D <= 32, else pq_bits = 4 and
 *    pq_dim = 32 (D <= 64), 64 (D <= 128), 96 (D <= 192), else D/2
 *    rounded up to a multiple of 128;
 *  - n_lists = max(1, N / 2000), kmeans_n_iters = 10,
 *    kmeans_trainset_fraction = clamp(1 / sqrt(N x 1e-5),
 *    min(1, 32 x n_lists / N), 1);
 *  - n_probes = round(sqrt(n_lists) / 20 + 4).
 * Each auto field is resolved on its own: a value given is kept.
 *
 * Every row is searched as a query for
 * candidates = min(N, max(graph_degree + 1, ceil(graph_degree x refine_ratio)))
 * rows by PQ distance; the candidates are then re-ranked with exact
 * distances, the row itself is dropped and the best graph_degree kept.
 * refine_ratio is cuVS's refinement_rate of CAGRA's IVF-PQ graph
 * builder, named as DESIGN.md's --refine-ratio.  Its cuVS default is 1, where the lists
 * stay ordered by approximate (fp16) PQ distances; here the candidates
 * are always refined, and the default 2 was chosen by measuring graph
 * recall against build time on Fashion-MNIST (man/anngraph.1).
 */
typedef struct ann_ivf_pq_graph_params {
    ann_ivf_pq_params index;          /**< metric, n_lists, pq_dim, ... (0 = auto as above) */
    ann_ivf_pq_search_params search;  /**< n_probes (0 = auto) */
    int32_t graph_degree;             /**< neighbours per row, default 64 */
    float refine_ratio;               /**< candidates per row / graph_degree, >= 1, default 2 */
    bool return_distances;            /**< keep the exact distances in the graph, default true */
} ann_ivf_pq_graph_params;

/** Defaults of cuVS ivf_pq::index_params (see the struct). */
void ann_ivf_pq_params_init(ann_ivf_pq_params *p);
/** Defaults of cuVS ivf_pq::search_params: n_probes 20. */
void ann_ivf_pq_search_params_init(ann_ivf_pq_search_params *p);
/**
 * Graph defaults: metric sqeuclidean, graph_degree 64, refine_ratio 2,
 * return_distances true, the preset fields 0 (auto), codebook_kind
 * PER_SUBSPACE, force_random_rotation false, max_train_points_per_pq_code 256.
 */
void ann_ivf_pq_graph_params_init(ann_ivf_pq_graph_params *p);

/** Table of ann_ivf_pq_params (ranges of a stand-alone index; no auto values but pq_dim). */
const ann_param_desc *ann_ivf_pq_param_table(size_t *n);
/** Table of ann_ivf_pq_search_params. */
const ann_param_desc *ann_ivf_pq_search_param_table(size_t *n);
/**
 * Table of ann_ivf_pq_graph_params: the fields of .index, .search and
 * the graph's own, with their flat names (n_lists, pq_dim, ..., n_probes,
 * graph_degree, refine_ratio, return_distances; "metric" is not in it)
 * and 0 allowed for the auto fields.  Used by anngraph for its options.
 */
const ann_param_desc *ann_ivf_pq_graph_param_table(size_t *n);

/**
 * Check @p p without a dataset: the table ranges, pq_bits 0 (auto) or
 * 4 to 8, the metric, the codebook kind.
 * Errors: ANN_ERR_INVALID_ARG naming the field; ANN_ERR_UNSUPPORTED for
 * metrics l1 and hamming and for codebook_kind PER_CLUSTER.
 * Thread-safe.
 */
ann_status ann_ivf_pq_graph_params_check(const ann_ivf_pq_graph_params *p);

/**
 * The parameters a graph build of a @p rows x @p dim dataset uses: @p p
 * with every auto (0) field replaced by the preset of
 * ann_ivf_pq_graph_params, n_probes clamped to n_lists.  @p out may be
 * @p p.  Checks as ann_ivf_pq_graph_params_check(), plus
 * rows > graph_degree and n_lists <= rows.
 * Errors: ANN_ERR_INVALID_ARG, ANN_ERR_UNSUPPORTED.  Thread-safe.
 */
ann_status ann_ivf_pq_graph_params_resolve(const ann_ivf_pq_graph_params *p, int64_t rows, int64_t dim,
                                           ann_ivf_pq_graph_params *out);

#ifdef __cplusplus
}
#endif
#endif
