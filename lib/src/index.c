/*
 * index.c - the ann_index handle: build, extend, search, save and load
 * for brute_force and ivf_flat, routed through the backend tables.
 *
 * An index's arrays are either heap-owned (after build or extend) or point
 * into the memory mapping of a loaded file (raw sections are used in
 * place).  Container sections (man/ann-index.5):
 *   both      meta (key=value text), data (rows x dim, dtype), norms (f32)
 *   brute_force  ids (i64 rows; only when ids are not 0..rows-1)
 *   ivf_flat  centers (n_lists x dim f32), center_norms (f32 n_lists),
 *             list_offsets (i64 n_lists+1), list_ids (i64 rows);
 *             data and norms are packed by list.
 *   cagra     graph (rows x graph_degree u32); data and norms only when
 *             the index holds its vectors; ids (i64 rows) only when the
 *             index maps rows to ids (cuVS source indices).  CAGRA
 *             arrays are always heap copies (huge-page advised,
 *             ann_cagra_alloc), never the mapping: graph search reads
 *             rows at random.
 *
 * Row -> id maps (brute_force and cagra `ids`) share one set of helpers
 * (ids_*): a search runs over rows and maps its results afterwards, a
 * filter over ids becomes a filter over rows first, and extend continues
 * after the largest id.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>

#include "ann/brute_force.h"
#include "ann/cagra.h"
#include "ann/index.h"
#include "ann/ivf_flat.h"
#include "backend_ops.h"
#include "cagra_internal.h"
#include "index_internal.h"
#include "internal.h"
#include "matrix_owner.h"

struct ann_index {
    ann_algo algo;
    ann_metric metric;
    ann_dtype dtype;
    int64_t rows, dim;
    int64_t row_offset;       /* first dataset row of a shard (annbuild --rows A:B); 0 otherwise */
    ann_container *file;      /* non-NULL when arrays point into a mapping */
    void *data;               /* rows x dim (ivf_flat: packed by list) */
    float *norms;             /* rows, or NULL (inner product, l1) */
    int64_t *ids;             /* brute_force, cagra: row -> id, NULL = identity; ivf_flat: list_ids */
    /* ivf_flat */
    ann_ivf_flat_params ivf;
    float *centers;
    float *center_norms;
    int64_t *list_offsets;
    /* cagra: data may be NULL (no vectors) */
    ann_cagra_params cagra;
    int32_t graph_degree;
    uint32_t *graph;
    void *narrow;             /* f32 vectors that are exactly u8, i8 or f16: that copy (CPU search) */
    ann_dtype narrow_dtype;
    /* device copies made by a backend */
    void *device_cache;
    const ann_backend_ops *cache_ops;
};

/* ------------------------- parameter tables ------------------------- */

void ann_brute_force_params_init(ann_brute_force_params *p)
{
    memset(p, 0, sizeof *p);
    p->metric = ANN_METRIC_SQEUCLIDEAN;
}

void ann_brute_force_search_params_init(ann_brute_force_search_params *p)
{
    memset(p, 0, sizeof *p);
}

const ann_param_desc *ann_brute_force_param_table(size_t *n)
{
    *n = 0;
    return NULL;
}

const ann_param_desc *ann_brute_force_search_param_table(size_t *n)
{
    *n = 0;
    return NULL;
}

void ann_ivf_flat_params_init(ann_ivf_flat_params *p)
{
    memset(p, 0, sizeof *p);
    p->metric = ANN_METRIC_SQEUCLIDEAN;
    p->n_lists = 1024;
    p->kmeans_n_iters = 20;
    p->kmeans_trainset_fraction = 0.5f;
    p->max_train_points_per_cluster = 256;
    p->adaptive_centers = false;
}

void ann_ivf_flat_search_params_init(ann_ivf_flat_search_params *p)
{
    memset(p, 0, sizeof *p);
    p->n_probes = 20;
    p->max_codes = 0;
    p->search_mode = ANN_IVF_SEARCH_AUTO;
}

static const ann_param_desc ivf_flat_build_table[] = {
    {"n_lists", ANN_PARAM_INT32, offsetof(ann_ivf_flat_params, n_lists), 1, 1 << 24, NULL,
     "number of inverted lists (k-means clusters); needs rows >= n_lists"},
    {"kmeans_n_iters", ANN_PARAM_INT32, offsetof(ann_ivf_flat_params, kmeans_n_iters), 1, 1000, NULL,
     "balanced k-means iterations"},
    {"kmeans_trainset_fraction", ANN_PARAM_FLOAT, offsetof(ann_ivf_flat_params, kmeans_trainset_fraction), 1e-6,
     1, NULL, "fraction of the rows (strided) used to train k-means"},
    {"max_train_points_per_cluster", ANN_PARAM_INT32,
     offsetof(ann_ivf_flat_params, max_train_points_per_cluster), 0, 1 << 30, NULL,
     "cap on training rows per list (0 = no cap)"},
    {"adaptive_centers", ANN_PARAM_BOOL, offsetof(ann_ivf_flat_params, adaptive_centers), 0, 1, NULL,
     "let centers follow the mean of their lists when vectors are added"},
};

static const ann_param_desc ivf_flat_search_table[] = {
    {"n_probes", ANN_PARAM_INT32, offsetof(ann_ivf_flat_search_params, n_probes), 1, 1 << 24, NULL,
     "lists scanned per query (clamped to n_lists)"},
    {"max_codes", ANN_PARAM_INT64, offsetof(ann_ivf_flat_search_params, max_codes), 0, 9.0e18, NULL,
     "stop after scanning this many vectors per query, nearest lists first (0 = no cap)"},
    {"search_mode", ANN_PARAM_ENUM, offsetof(ann_ivf_flat_search_params, search_mode), 0, 2,
     "matrix|csr|auto", "matrix: per-query scan; csr: per-list GEMM; auto: csr for large batches"},
};

const ann_param_desc *ann_ivf_flat_param_table(size_t *n)
{
    *n = sizeof ivf_flat_build_table / sizeof ivf_flat_build_table[0];
    return ivf_flat_build_table;
}

const ann_param_desc *ann_ivf_flat_search_param_table(size_t *n)
{
    *n = sizeof ivf_flat_search_table / sizeof ivf_flat_search_table[0];
    return ivf_flat_search_table;
}

static void bf_init_v(void *p) { ann_brute_force_params_init(p); }
static void bf_sinit_v(void *p) { ann_brute_force_search_params_init(p); }
static void ivf_init_v(void *p) { ann_ivf_flat_params_init(p); }
static void ivf_sinit_v(void *p) { ann_ivf_flat_search_params_init(p); }
static void cagra_init_v(void *p) { ann_cagra_params_init(p); }
static void cagra_sinit_v(void *p) { ann_cagra_search_params_init(p); }

static const ann_algo_desc algo_descs[] = {
    {ANN_ALGO_BRUTE_FORCE, "brute_force", sizeof(ann_brute_force_params),
     sizeof(ann_brute_force_search_params), bf_init_v, bf_sinit_v, ann_brute_force_param_table,
     ann_brute_force_search_param_table, offsetof(ann_brute_force_params, metric)},
    {ANN_ALGO_IVF_FLAT, "ivf_flat", sizeof(ann_ivf_flat_params), sizeof(ann_ivf_flat_search_params), ivf_init_v,
     ivf_sinit_v, ann_ivf_flat_param_table, ann_ivf_flat_search_param_table,
     offsetof(ann_ivf_flat_params, metric)},
    {ANN_ALGO_CAGRA, "cagra", sizeof(ann_cagra_params), sizeof(ann_cagra_search_params), cagra_init_v,
     cagra_sinit_v, ann_cagra_param_table, ann_cagra_search_param_table, offsetof(ann_cagra_params, metric)},
};

const ann_algo_desc *ann_algo_describe(ann_algo algo)
{
    for (size_t i = 0; i < sizeof algo_descs / sizeof algo_descs[0]; i++)
        if (algo_descs[i].algo == algo)
            return &algo_descs[i];
    return NULL;
}

/* ------------------------------ helpers ----------------------------- */

static bool metric_has_norms(ann_metric m)
{
    return m == ANN_METRIC_SQEUCLIDEAN || m == ANN_METRIC_EUCLIDEAN || m == ANN_METRIC_COSINE;
}

static bool vector_dtype(ann_dtype t)
{
    return t == ANN_DTYPE_F32 || t == ANN_DTYPE_F16 || t == ANN_DTYPE_I8 || t == ANN_DTYPE_U8;
}

static ann_status check_metric(ann_metric m)
{
    switch (m) {
    case ANN_METRIC_SQEUCLIDEAN:
    case ANN_METRIC_EUCLIDEAN:
    case ANN_METRIC_INNER_PRODUCT:
    case ANN_METRIC_COSINE:
    case ANN_METRIC_L1:
        return ANN_OK;
    case ANN_METRIC_HAMMING:
        return ann_set_error(ANN_ERR_UNSUPPORTED, "metric hamming is available for brute_force on u8/i8 data only");
    }
    return ann_set_error(ANN_ERR_INVALID_ARG, "unknown metric %d", (int)m);
}

static void drop_cache(ann_index *ix)
{
    if (ix->device_cache && ix->cache_ops && ix->cache_ops->cache_free)
        ix->cache_ops->cache_free(ix->device_cache);
    ix->device_cache = NULL;
    ix->cache_ops = NULL;
}

static void free_arrays(ann_index *ix)
{
    if (!ix->file) {
        free(ix->data);
        free(ix->norms);
        free(ix->ids);
        free(ix->centers);
        free(ix->center_norms);
        free(ix->list_offsets);
        free(ix->graph);
    }
    free(ix->narrow);
    ix->narrow = NULL;
    ann_container_close(ix->file);
    ix->file = NULL;
    ix->graph = NULL;
    ix->data = ix->norms = NULL;
    ix->ids = ix->list_offsets = NULL;
    ix->centers = ix->center_norms = NULL;
}

void ann_index_free(ann_index *ix)
{
    if (!ix)
        return;
    drop_cache(ix);
    free_arrays(ix);
    free(ix);
}

static void *dup_bytes(const void *src, size_t n)
{
    void *p = ann_aligned_calloc(n);
    if (p && n)
        memcpy(p, src, n);
    return p;
}

/* Give a loaded (mapped) index heap copies of its arrays, so it can change. */
static ann_status materialize(ann_index *ix)
{
    if (!ix->file)
        return ANN_OK;
    const size_t rb = (size_t)ix->dim * ann_dtype_size(ix->dtype);
    void *data = dup_bytes(ix->data, rb * ix->rows);
    float *norms = ix->norms ? dup_bytes(ix->norms, 4 * (size_t)ix->rows) : NULL;
    int64_t *ids = ix->ids ? dup_bytes(ix->ids, 8 * (size_t)ix->rows) : NULL;
    float *centers = NULL, *cn = NULL;
    int64_t *lo = NULL;
    if (ix->algo == ANN_ALGO_IVF_FLAT) {
        centers = dup_bytes(ix->centers, 4 * (size_t)ix->ivf.n_lists * ix->dim);
        cn = dup_bytes(ix->center_norms, 4 * (size_t)ix->ivf.n_lists);
        lo = dup_bytes(ix->list_offsets, 8 * ((size_t)ix->ivf.n_lists + 1));
    }
    if (!data || (ix->norms && !norms) || (ix->ids && !ids) ||
        (ix->algo == ANN_ALGO_IVF_FLAT && (!centers || !cn || !lo))) {
        free(data);
        free(norms);
        free(ids);
        free(centers);
        free(cn);
        free(lo);
        return ann_set_error(ANN_ERR_NOMEM, "out of memory copying the index");
    }
    ann_container_close(ix->file);
    ix->file = NULL;
    ix->data = data;
    ix->norms = norms;
    ix->ids = ids;
    ix->centers = centers;
    ix->center_norms = cn;
    ix->list_offsets = lo;
    return ANN_OK;
}

static void progress(ann_exec *ex, const char *phase, int64_t done, int64_t total)
{
    if (ex && ex->progress)
        ex->progress(ex->progress_user, phase, done, total);
}

/* Norms in the convention of ann_bf_view.norms (squared, or plain for cosine). */
static ann_status compute_norms(const void *data, ann_dtype t, int64_t rows, int64_t dim, ann_metric m, int nt,
                                float **out)
{
    *out = NULL;
    if (!metric_has_norms(m))
        return ANN_OK;
    float *n = ann_aligned_calloc(4 * (size_t)rows);
    if (!n)
        return ann_set_error(ANN_ERR_NOMEM, "out of memory for %lld norms", (long long)rows);
    ann_row_norms(data, t, rows, dim, dim * (int64_t)ann_dtype_size(t), m == ANN_METRIC_COSINE, n, nt);
    *out = n;
    return ANN_OK;
}

/* Copy a possibly strided matrix into a new contiguous block. */
static void *copy_rows(const ann_matrix *m)
{
    const size_t rb = (size_t)m->cols * ann_dtype_size(m->dtype);
    char *p = ann_aligned_calloc(rb * (size_t)m->rows);
    if (!p)
        return NULL;
    for (int64_t i = 0; i < m->rows; i++)
        memcpy(p + i * rb, ann_matrix_row(m, i), rb);
    return p;
}

/* ------------------------- row -> id maps --------------------------- */

/*
 * One past the largest id of @p ix: the first id extend gives to new rows
 * without ids of their own (rows when ids are the row numbers).  Reads
 * the whole map; single thread.
 */
static int64_t ids_next(const ann_index *ix)
{
    if (!ix->ids)
        return ix->rows;
    int64_t next = 0;
    for (int64_t i = 0; i < ix->rows; i++)
        if (ix->ids[i] + 1 > next)
            next = ix->ids[i] + 1;
    return next;
}

/*
 * Replace each row number ids[i] >= 0 (i < n; -1 marks an empty slot) by
 * row_ids[ids[i]]: what a search over rows returns for an index with a
 * row -> id map.  Single thread (n is queries x k).
 */
static void ids_map(const int64_t *row_ids, int64_t n, int64_t *ids)
{
    for (int64_t i = 0; i < n; i++)
        if (ids[i] >= 0)
            ids[i] = row_ids[ids[i]];
}

/* qsort order of (id, row) int64 pairs: by id, then by row. */
static int cmp_id_row(const void *a, const void *b)
{
    const int64_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : (x[1] > y[1]) - (x[1] < y[1]);
}

ann_status ann_ids_check(const int64_t *ids, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0)
            return ann_set_error(ANN_ERR_INVALID_ARG, "row %lld has the negative id %lld (-1 marks empty result "
                                                      "slots)",
                                 (long long)i, (long long)ids[i]);
    if (n < 2)
        return ANN_OK;
    /* (id, row) pairs sorted: a duplicate id sits next to its twin, lowest rows first */
    int64_t *pairs = malloc((size_t)n * 2 * sizeof(int64_t));
    if (!pairs)
        return ann_set_error(ANN_ERR_NOMEM, "out of memory checking %lld ids", (long long)n);
    for (int64_t i = 0; i < n; i++) {
        pairs[2 * i] = ids[i];
        pairs[2 * i + 1] = i;
    }
    qsort(pairs, (size_t)n, 2 * sizeof(int64_t), cmp_id_row);
    ann_status st = ANN_OK;
    for (int64_t i = 1; i < n; i++)
        if (pairs[2 * i] == pairs[2 * i - 2]) {
            st = ann_set_error(ANN_ERR_INVALID_ARG, "rows %lld and %lld have the same id %lld",
                               (long long)pairs[2 * i - 1], (long long)pairs[2 * i + 1], (long long)pairs[2 * i]);
            break;
        }
    free(pairs);
    return st;
}

/*
 * A filter over ids (@p bits, @p nbits; DESIGN.md "Filters") as a filter
 * over the @p rows rows of a row -> id map: bit r is bit row_ids[r] of
 * @p bits (0 when that id is not below nbits).  Returns ceil(rows / 32)
 * words (free()), or NULL when out of memory.  Threads: the caller's
 * OpenMP default, up to @p n_threads.
 */
static uint32_t *ids_row_bitset(const int64_t *row_ids, int64_t rows, const uint32_t *bits, int64_t nbits,
                                int n_threads)
{
    const int64_t words = (rows + 31) / 32;
    uint32_t *out = malloc((size_t)(words > 0 ? words : 1) * sizeof(uint32_t));
    if (!out)
        return NULL;
#pragma omp parallel for num_threads(ann_threads(n_threads)) schedule(static)
    for (int64_t w = 0; w < words; w++) {
        uint32_t word = 0;
        const int64_t end = (w + 1) * 32 < rows ? (w + 1) * 32 : rows;
        for (int64_t r = w * 32; r < end; r++) {
            const int64_t v = row_ids[r];
            if (v >= 0 && v < nbits && ((bits[v >> 5] >> (v & 31)) & 1u))
                word |= 1u << (r & 31);
        }
        out[w] = word;
    }
    return out;
}

/*
 * The optional `ids` section of container @p c (i64 x rows) into *ids:
 * NULL when the section is absent; a pointer into the mapping, or with
 * @p copy a heap copy checked by ann_ids_check() (CAGRA indexes copy
 * every array out of the file).  Errors: those of
 * ann_container_get_sized() (wrong size, checksum), ANN_ERR_FORMAT
 * (negative or repeated id, naming @p path), ANN_ERR_NOMEM.
 */
static ann_status ids_load(ann_container *c, const char *path, uint64_t rows, bool copy, int64_t **ids)
{
    *ids = NULL;
    if (!ann_container_has(c, "ids"))
        return ANN_OK;
    const void *p;
    ann_status st = ann_container_get_sized(c, "ids", 8 * rows, &p);
    if (st != ANN_OK || !copy) {
        *ids = st == ANN_OK ? (int64_t *)p : NULL;
        return st;
    }
    int64_t *v = dup_bytes(p, 8 * rows);
    if (!v)
        return ann_set_error(ANN_ERR_NOMEM, "'%s': out of memory for the ids", path);
    if ((st = ann_ids_check(v, (int64_t)rows)) != ANN_OK) {
        char why[200];
        snprintf(why, sizeof why, "%s", ann_last_error());
        free(v);
        return ann_set_error(ANN_ERR_FORMAT, "'%s': section 'ids': %s", path, why);
    }
    *ids = v;
    return ANN_OK;
}

ann_status ann_index_set_ids(ann_index *ix, const int64_t *ids)
{
    if (ix->algo != ANN_ALGO_BRUTE_FORCE && ix->algo != ANN_ALGO_CAGRA)
        return ann_set_error(ANN_ERR_INVALID_ARG, "only brute_force and cagra indexes take a row -> id map (this is "
                                                  "%s)",
                             ann_algo_name(ix->algo));
    int64_t *copy = NULL;
    if (ids) {
        ann_status st = ann_ids_check(ids, ix->rows);
        if (st != ANN_OK)
            return st;
        if (!(copy = dup_bytes(ids, 8 * (size_t)ix->rows)))
            return ann_set_error(ANN_ERR_NOMEM, "out of memory for %lld ids", (long long)ix->rows);
    }
    ann_status st = materialize(ix);
    if (st != ANN_OK) {
        free(copy);
        return st;
    }
    free(ix->ids);
    ix->ids = copy;
    return ANN_OK;
}

const int64_t *ann_index_row_ids(const ann_index *ix)
{
    return ix->algo == ANN_ALGO_BRUTE_FORCE || ix->algo == ANN_ALGO_CAGRA ? ix->ids : NULL;
}

/* ------------------------------ IVF-Flat ---------------------------- */

/*
 * Put all rows (old packed rows + new rows with their labels and ids) into
 * a fresh packed layout: a counting sort by list, stable in row order.
 */
static ann_status ivf_repack(ann_index *ix, const ann_matrix *add, const int32_t *add_labels,
                             const int64_t *add_ids, int nt)
{
    const int32_t L = ix->ivf.n_lists;
    const int64_t old = ix->rows, nadd = add ? add->rows : 0, total = old + nadd;
    const size_t rb = (size_t)ix->dim * ann_dtype_size(ix->dtype);
    int64_t *lo = ann_aligned_calloc(8 * ((size_t)L + 1));
    int64_t *pos = ann_aligned_calloc(8 * (size_t)L);
    char *data = ann_aligned_calloc(rb * (size_t)total);
    int64_t *ids = ann_aligned_calloc(8 * (size_t)total);
    if (!lo || !pos || !data || !ids) {
        free(lo);
        free(pos);
        free(data);
        free(ids);
        return ann_set_error(ANN_ERR_NOMEM, "ivf_flat: out of memory packing %lld rows", (long long)total);
    }
    for (int32_t l = 0; l < L; l++) {
        int64_t old_sz = ix->list_offsets ? ix->list_offsets[l + 1] - ix->list_offsets[l] : 0;
        lo[l + 1] = old_sz;
    }
    for (int64_t i = 0; i < nadd; i++)
        lo[add_labels[i] + 1]++;
    for (int32_t l = 0; l < L; l++)
        lo[l + 1] += lo[l];
    for (int32_t l = 0; l < L; l++) {
        int64_t o0 = ix->list_offsets ? ix->list_offsets[l] : 0;
        int64_t sz = ix->list_offsets ? ix->list_offsets[l + 1] - o0 : 0;
        if (sz) {
            memcpy(data + lo[l] * rb, (char *)ix->data + o0 * rb, (size_t)sz * rb);
            memcpy(ids + lo[l], ix->ids + o0, (size_t)sz * 8);
        }
        pos[l] = lo[l] + sz;
    }
    for (int64_t i = 0; i < nadd; i++) {
        int64_t p = pos[add_labels[i]]++;
        memcpy(data + p * rb, ann_matrix_row(add, i), rb);
        ids[p] = add_ids[i];
    }
    free(pos);
    float *norms = NULL;
    ann_status st = compute_norms(data, ix->dtype, total, ix->dim, ix->metric, nt, &norms);
    if (st != ANN_OK) {
        free(lo);
        free(data);
        free(ids);
        return st;
    }
    free(ix->data);
    free(ix->ids);
    free(ix->norms);
    free(ix->list_offsets);
    ix->data = data;
    ix->ids = ids;
    ix->norms = norms;
    ix->list_offsets = lo;
    ix->rows = total;
    return ANN_OK;
}

static ann_status center_norms_update(ann_index *ix)
{
    const int32_t L = ix->ivf.n_lists;
    if (!ix->center_norms) {
        ix->center_norms = ann_aligned_calloc(4 * (size_t)L);
        if (!ix->center_norms)
            return ann_set_error(ANN_ERR_NOMEM, "out of memory");
    }
    for (int32_t l = 0; l < L; l++)
        ix->center_norms[l] = ann_dot_f32(ix->centers + (int64_t)l * ix->dim, ix->centers + (int64_t)l * ix->dim,
                                          ix->dim);
    return ANN_OK;
}

static ann_status ivf_add(ann_index *ix, const ann_matrix *data, const int64_t *ids, ann_exec *ex)
{
    const int nt = ex->n_threads;
    const ann_backend_ops *ops;
    ann_status st = ann_backend_select(ex, ANN_OP_KMEANS_PREDICT, data->dtype, ix->metric, &ops);
    if (st != ANN_OK)
        return st;
    int32_t *labels = malloc((size_t)data->rows * sizeof(int32_t) + 1);
    if (!labels)
        return ann_set_error(ANN_ERR_NOMEM, "out of memory for %lld labels", (long long)data->rows);
    progress(ex, "assign", 0, data->rows);
    st = ops->kmeans_predict(ix->metric, ix->centers, ix->ivf.n_lists, data, nt, labels);
    progress(ex, "assign", data->rows, data->rows);
    if (st == ANN_OK && ix->ivf.adaptive_centers) {
        /* running means: c <- (c * old_size + sum new) / (old_size + new_count) */
        const int32_t L = ix->ivf.n_lists;
        const int64_t d = ix->dim;
        double *acc = calloc((size_t)L * d, sizeof(double));
        int64_t *cnt = calloc((size_t)L, sizeof(int64_t));
        float *row = malloc((size_t)d * sizeof(float));
        if (!acc || !cnt || !row) {
            st = ann_set_error(ANN_ERR_NOMEM, "out of memory");
        } else {
            for (int64_t i = 0; i < data->rows; i++) {
                ann_row_to_f32(ann_matrix_row(data, i), data->dtype, d, row);
                for (int64_t j = 0; j < d; j++)
                    acc[(int64_t)labels[i] * d + j] += row[j];
                cnt[labels[i]]++;
            }
            for (int32_t l = 0; l < L; l++) {
                if (!cnt[l])
                    continue;
                int64_t old = ix->list_offsets ? ix->list_offsets[l + 1] - ix->list_offsets[l] : 0;
                float *cl = &ix->centers[(int64_t)l * d];
                for (int64_t j = 0; j < d; j++)
                    cl[j] = (float)(((double)cl[j] * old + acc[(int64_t)l * d + j]) / (double)(old + cnt[l]));
                if (ix->metric == ANN_METRIC_INNER_PRODUCT || ix->metric == ANN_METRIC_COSINE) {
                    /* k-means keeps these centers unit length; so do the running means */
                    ann_matrix one = ann_matrix_view(cl, 1, d, ANN_DTYPE_F32);
                    ann_matrix_normalize_rows(&one);
                }
            }
            st = center_norms_update(ix);
        }
        free(acc);
        free(cnt);
        free(row);
    }
    if (st == ANN_OK)
        st = ivf_repack(ix, data, labels, ids, nt);
    free(labels);
    return st;
}

static ann_status ivf_build(ann_index *ix, const ann_ivf_flat_params *p, const ann_matrix *data, ann_exec *ex)
{
    const int64_t n = data->rows;
    if (n < p->n_lists)
        return ann_set_error(ANN_ERR_INVALID_ARG, "ivf_flat: %lld rows are fewer than n_lists = %d",
                             (long long)n, (int)p->n_lists);
    if (p->metric == ANN_METRIC_COSINE && data->cols < 2)
        return ann_set_error(ANN_ERR_INVALID_ARG, "ivf_flat: cosine needs dim > 1");
    /* strided training subset (notes/algorithms.md 2.2) */
    int64_t n_train = (int64_t)((double)p->kmeans_trainset_fraction * (double)n);
    if (p->max_train_points_per_cluster > 0 && n_train > (int64_t)p->n_lists * p->max_train_points_per_cluster)
        n_train = (int64_t)p->n_lists * p->max_train_points_per_cluster;
    if (n_train < p->n_lists)
        n_train = p->n_lists;
    int64_t ratio = n / n_train > 1 ? n / n_train : 1;
    ann_matrix train = *data;
    train.owner = NULL;
    train.rows = n / ratio;
    train.stride = data->stride * ratio;

    ix->centers = ann_aligned_calloc(4 * (size_t)p->n_lists * data->cols);
    if (!ix->centers)
        return ann_set_error(ANN_ERR_NOMEM, "out of memory for %d centers", (int)p->n_lists);
    const ann_backend_ops *ops;
    ann_status st = ann_backend_select(ex, ANN_OP_KMEANS_FIT, data->dtype, p->metric, &ops);
    if (st != ANN_OK)
        return st;
    ann_kmeans_params kp = {p->metric, p->n_lists, p->kmeans_n_iters, ex->seed};
    progress(ex, "kmeans", 0, 1);
    st = ops->kmeans_fit(&kp, &train, ex->n_threads, ix->centers);
    progress(ex, "kmeans", 1, 1);
    if (st == ANN_OK)
        st = center_norms_update(ix);
    if (st != ANN_OK)
        return st;
    if (ann_interrupted(ex))
        return ann_set_error(ANN_ERR_INTERRUPTED, "interrupted");
    int64_t *ids = malloc((size_t)n * sizeof(int64_t) + 1);
    if (!ids)
        return ann_set_error(ANN_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < n; i++)
        ids[i] = i;
    /* the stored flag must not move centers during the initial fill */
    bool adaptive = ix->ivf.adaptive_centers;
    ix->ivf.adaptive_centers = false;
    st = ivf_add(ix, data, ids, ex);
    ix->ivf.adaptive_centers = adaptive;
    free(ids);
    return st;
}

/* ------------------------------- CAGRA ------------------------------ */

/* Copy @p data (rows x dim, any stride) into a contiguous huge-page block. */
static void *cagra_copy_rows(const ann_matrix *m)
{
    const size_t rb = (size_t)m->cols * ann_dtype_size(m->dtype);
    char *p = ann_cagra_alloc(rb * (size_t)m->rows);
    if (!p)
        return NULL;
    if ((size_t)m->stride == rb) {
        memcpy(p, m->data, rb * (size_t)m->rows);
    } else {
        for (int64_t i = 0; i < m->rows; i++)
            memcpy(p + i * rb, ann_matrix_row(m, i), rb);
    }
    return p;
}

/*
 * Lossless compact copy for the CPU search: when every value of the f32
 * vectors is an integer in [0, 255] (or [-128, 127]), or else exactly an
 * IEEE binary16 value, the CPU search reads that u8 (i8, f16) copy.  Its
 * kernels convert each element back to the same float and run the same
 * arithmetic in the same order, so keys and results are bit-identical to
 * the f32 search, while a graph search, which reads rows at random, moves
 * 4x (2x) fewer bytes (Fashion-MNIST and SIFT are such data).  Failing
 * to allocate only skips the copy.  ANNKIT_CAGRA_NARROW=0 turns it off.
 */
static void cagra_narrow(ann_index *ix, int n_threads)
{
    free(ix->narrow);
    ix->narrow = NULL;
    const char *env = getenv("ANNKIT_CAGRA_NARROW");
    if (!ix->data || ix->dtype != ANN_DTYPE_F32 || (env && !strcmp(env, "0")))
        return;
    const float *x = ix->data;
    const int64_t total = ix->rows * ix->dim;
    int not_u8 = 0, not_i8 = 0, not_f16 = 0;
    /* integers in [-128, 255] first (one vectorisable pass), binary16 only when that fails */
#pragma omp parallel for num_threads(ann_threads(n_threads)) schedule(static) reduction(| : not_u8, not_i8)
    for (int64_t i = 0; i < total; i++) {
        const float v = x[i];
        const float c = v >= -128.0f && v <= 255.0f ? v : 0.5f; /* NaN and far values fail below */
        const int integral = (float)(int32_t)c == c;
        not_u8 |= !(integral && c >= 0.0f);
        not_i8 |= !(integral && c <= 127.0f);
    }
    if (not_u8 && not_i8) {
        const int64_t chunk = 1 << 16;
#pragma omp parallel for num_threads(ann_threads(n_threads)) schedule(dynamic, 1) reduction(| : not_f16)
        for (int64_t c0 = 0; c0 < total; c0 += chunk) {
            int bad = 0;
            for (int64_t i = c0; i < c0 + chunk && i < total && !bad; i++)
                bad = ann_f16_to_f32(ann_f32_to_f16(x[i])) != x[i];
            not_f16 |= bad;
        }
    }
    ann_dtype t = !not_u8 ? ANN_DTYPE_U8 : !not_i8 ? ANN_DTYPE_I8 : !not_f16 ? ANN_DTYPE_F16 : ANN_DTYPE_F32;
    if (t == ANN_DTYPE_F32)
        return;
    void *p = ann_cagra_alloc((size_t)total * ann_dtype_size(t));
    if (!p)
        return;
#pragma omp parallel for num_threads(ann_threads(n_threads)) schedule(static)
    for (int64_t i = 0; i < total; i++) {
        if (t == ANN_DTYPE_U8)
            ((uint8_t *)p)[i] = (uint8_t)x[i];
        else if (t == ANN_DTYPE_I8)
            ((int8_t *)p)[i] = (int8_t)x[i];
        else
            ((uint16_t *)p)[i] = ann_f32_to_f16(x[i]);
    }
    ix->narrow = p;
    ix->narrow_dtype = t;
}

ann_status ann_cagra_build(const ann_cagra_params *params, const ann_matrix *data, const ann_graph *knn,
                           ann_exec *ex, ann_index **out)
{
    *out = NULL;
    ann_exec dflt;
    if (!ex) {
        ann_exec_init(&dflt);
        ex = &dflt;
    }
    ann_cagra_params p;
    if (params)
        p = *params;
    else
        ann_cagra_params_init(&p);
    if (data->loc != ANN_LOC_HOST || !vector_dtype(data->dtype))
        return ann_set_error(ANN_ERR_UNSUPPORTED, "dataset of dtype %s cannot be indexed (f32, f16, i8, u8)",
                             ann_dtype_name(data->dtype));
    if (data->rows < 1 || data->cols < 1)
        return ann_set_error(ANN_ERR_INVALID_ARG, "dataset is empty (%lld x %lld)", (long long)data->rows,
                             (long long)data->cols);
    size_t nt;
    const ann_param_desc *table = ann_cagra_param_table(&nt);
    ann_status st = ann_params_check(table, nt, &p);
    if (st != ANN_OK)
        return st;
    if (p.metric == ANN_METRIC_HAMMING)
        return ann_set_error(ANN_ERR_UNSUPPORTED, "cagra: metric hamming is not available on the CPU");
    if ((st = check_metric(p.metric)) != ANN_OK)
        return st;
    ann_index *ix = calloc(1, sizeof *ix);
    if (!ix)
        return ann_set_error(ANN_ERR_NOMEM, "out of memory");
    ix->algo = ANN_ALGO_CAGRA;
    ix->metric = p.metric;
    ix->dtype = data->dtype;
    ix->rows = data->rows;
    ix->dim = data->cols;
    ix->cagra = p;
    st = ann_cagra_build_graph(&p, data, knn, ex, &ix->graph, &ix->graph_degree);
    if (st == ANN_OK) {
        ix->cagra.graph_degree = ix->graph_degree;
        if (ix->cagra.intermediate_graph_degree < ix->graph_degree)
            ix->cagra.intermediate_graph_degree = ix->graph_degree;
        if (p.attach_dataset_on_build)
            st = ann_index_attach_dataset(ix, data, ex->n_threads);
    }
    if (st != ANN_OK) {
        ann_index_free(ix);
        return st;
    }
    *out = ix;
    return ANN_OK;
}

ann_status ann_index_attach_dataset(ann_index *ix, const ann_matrix *data, int n_threads)
{
    if (ix->algo != ANN_ALGO_CAGRA)
        return ann_set_error(ANN_ERR_INVALID_ARG, "only CAGRA indexes take a dataset afterwards (this is %s)",
                             ann_algo_name(ix->algo));
    if (data->rows != ix->rows)
        return ann_set_error(ANN_ERR_MISMATCH, "the dataset has %lld rows, the index %lld", (long long)data->rows,
                             (long long)ix->rows);
    if (data->cols != ix->dim)
        return ann_set_error(ANN_ERR_MISMATCH, "dimension %lld does not match index dimension %lld",
                             (long long)data->cols, (long long)ix->dim);
    if (data->dtype != ix->dtype)
        return ann_set_error(ANN_ERR_MISMATCH, "dtype %s does not match index dtype %s", ann_dtype_name(data->dtype),
                             ann_dtype_name(ix->dtype));
    if (data->loc != ANN_LOC_HOST)
        return ann_set_error(ANN_ERR_UNSUPPORTED, "the dataset must be in host memory");
    void *copy = cagra_copy_rows(data);
    if (!copy)
        return ann_set_error(ANN_ERR_NOMEM, "out of memory copying %lld rows", (long long)data->rows);
    float *norms = NULL;
    ann_status st = compute_norms(copy, ix->dtype, ix->rows, ix->dim, ix->metric, n_threads, &norms);
    if (st != ANN_OK) {
        free(copy);
        return st;
    }
    drop_cache(ix);
    free(ix->data);
    free(ix->norms);
    ix->data = copy;
    ix->norms = norms;
    cagra_narrow(ix, n_threads);
    return ANN_OK;
}

ann_status ann_cagra_graph(const ann_index *ix, const uint32_t **graph, int32_t *degree)
{
    if (ix->algo != ANN_ALGO_CAGRA)
        return ann_set_error(ANN_ERR_INVALID_ARG, "not a CAGRA index (%s)", ann_algo_name(ix->algo));
    *graph = ix->graph;
    *degree = ix->graph_degree;
    return ANN_OK;
}

bool ann_cagra_has_dataset(const ann_index *ix)
{
    return ix && ix->algo == ANN_ALGO_CAGRA && ix->data != NULL;
}

ann_status ann_index_cagra_parts(const ann_index *ix, ann_cagra_parts *o)
{
    if (ix->algo != ANN_ALGO_CAGRA)
        return ann_set_error(ANN_ERR_INVALID_ARG, "not a CAGRA index (%s)", ann_algo_name(ix->algo));
    memset(o, 0, sizeof *o);
    o->metric = ix->metric;
    o->dtype = ix->dtype;
    o->rows = ix->rows;
    o->dim = ix->dim;
    o->graph_degree = ix->graph_degree;
    o->graph = ix->graph;
    o->data = ix->data;
    return ANN_OK;
}

ann_status ann_index_cagra_adopt(const ann_cagra_params *params, ann_metric metric, ann_dtype dtype, int64_t rows,
                                 int64_t dim, int32_t degree, uint32_t *graph, void *data, int n_threads,
                                 ann_index **out)
{
    *out = NULL;
    ann_index *ix = calloc(1, sizeof *ix);
    if (!ix) {
        free(graph);
        free(data);
        return ann_set_error(ANN_ERR_NOMEM, "out of memory");
    }
    ix->algo = ANN_ALGO_CAGRA;
    ix->metric = metric;
    ix->dtype = dtype;
    ix->rows = rows;
    ix->dim = dim;
    ix->graph = graph;
    ix->graph_degree = degree;
    ix->data = data;
    if (params) {
        ix->cagra = *params;
    } else {
        ann_cagra_params_init(&ix->cagra);
        ix->cagra.graph_degree = degree;
        if (ix->cagra.intermediate_graph_degree < degree)
            ix->cagra.intermediate_graph_degree = degree;
    }
    ix->cagra.metric = metric;
    ix->cagra.attach_dataset_on_build = data != NULL;
    ann_status st = data ? compute_norms(data, dtype, rows, dim, metric, n_threads, &ix->norms) : ANN_OK;
    if (st != ANN_OK) {
        ann_index_free(ix);
        return st;
    }
    cagra_narrow(ix, n_threads);
    *out = ix;
    return ANN_OK;
}

/* ------------------------------ public ------------------------------ */

ann_status ann_index_build(ann_algo algo, const void *params, const ann_matrix *data, ann_exec *ex,
                           ann_index **out)
{
    *out = NULL;
    ann_exec dflt;
    if (!ex) {
        ann_exec_init(&dflt);
        ex = &dflt;
    }
    const ann_algo_desc *desc = ann_algo_describe(algo);
    if (!desc)
        return ann_set_error(ANN_ERR_UNSUPPORTED, "algorithm %s is not available in this build",
                             ann_algo_name(algo));
    if (data->loc != ANN_LOC_HOST || !vector_dtype(data->dtype))
        return ann_set_error(ANN_ERR_UNSUPPORTED, "dataset of dtype %s cannot be indexed (f32, f16, i8, u8)",
                             ann_dtype_name(data->dtype));
    if (data->rows < 1 || data->cols < 1)
        return ann_set_error(ANN_ERR_INVALID_ARG, "dataset is empty (%lld x %lld)", (long long)data->rows,
                             (long long)data->cols);
    if (algo == ANN_ALGO_CAGRA)
        return ann_cagra_build(params, data, NULL, ex, out);
    union {
        ann_brute_force_params bf;
        ann_ivf_flat_params ivf;
    } dp;
    if (!params) {
        desc->build_params_init(&dp);
        params = &dp;
    }
    size_t nt;
    const ann_param_desc *table = desc->build_table(&nt);
    ann_status st = ann_params_check(table, nt, params);
    if (st != ANN_OK)
        return st;
    ann_metric metric = *(const ann_metric *)((const char *)params + desc->metric_offset);
    if (metric == ANN_METRIC_HAMMING && algo == ANN_ALGO_BRUTE_FORCE) {
        if (data->dtype != ANN_DTYPE_U8 && data->dtype != ANN_DTYPE_I8)
            return ann_set_error(ANN_ERR_UNSUPPORTED, "metric hamming needs u8 or i8 data (got %s)",
                                 ann_dtype_name(data->dtype));
    } else if ((st = check_metric(metric)) != ANN_OK) {
        return st;
    }

    ann_index *ix = calloc(1, sizeof *ix);
    if (!ix)
        return ann_set_error(ANN_ERR_NOMEM, "out of memory");
    ix->algo = algo;
    ix->metric = metric;
    ix->dtype = data->dtype;
    ix->dim = data->cols;
    if (algo == ANN_ALGO_BRUTE_FORCE) {
        ix->rows = data->rows;
        ix->data = copy_rows(data);
        if (!ix->data)
            st = ann_set_error(ANN_ERR_NOMEM, "out of memory copying %lld rows", (long long)data->rows);
        else
            st = compute_norms(ix->data, ix->dtype, ix->rows, ix->dim, metric, ex->n_threads, &ix->norms);
    } else {
        ix->ivf = *(const ann_ivf_flat_params *)params;
        st = ivf_build(ix, &ix->ivf, data, ex);
    }
    if (st != ANN_OK) {
        ann_index_free(ix);
        return st;
    }
    *out = ix;
    return ANN_OK;
}

/*
 * CAGRA extend: rows appended, norms and the compact copy recomputed, the
 * new rows linked by ann_cagra_extend_graph().  Without a row -> id map
 * ids are row numbers, so @p ids must be NULL or continue them; with one
 * (source indices) the new rows get @p ids (checked with the old ones by
 * ann_ids_check) or, for NULL, the ids after the largest present, as
 * brute_force does.  The index is unchanged on failure.
 */
static ann_status cagra_add(ann_index *ix, const ann_matrix *data, const int64_t *ids, ann_exec *ex)
{
    if (!ix->data)
        return ann_set_error(ANN_ERR_INVALID_ARG,
                             "cagra: the index holds no vectors (built with --no-dataset): attach its dataset "
                             "before adding rows");
    for (int64_t i = 0; ids && !ix->ids && i < data->rows; i++)
        if (ids[i] != ix->rows + i)
            return ann_set_error(ANN_ERR_UNSUPPORTED,
                                 "cagra: ids are row numbers: row %lld of the new rows must have id %lld, not %lld",
                                 (long long)i, (long long)(ix->rows + i), (long long)ids[i]);
    const int64_t total = ix->rows + data->rows;
    if (total >= (int64_t)UINT32_MAX)
        return ann_set_error(ANN_ERR_INVALID_ARG, "cagra: %lld rows do not fit uint32 graph ids", (long long)total);
    if (data->rows == 0)
        return ANN_OK;
    const size_t rb = (size_t)ix->dim * ann_dtype_size(ix->dtype);
    const int32_t deg = ix->graph_degree;
    char *nd = NULL;
    uint32_t *ng = NULL;
    float *norms = NULL;
    int64_t *nid = NULL;
    ann_status st = ANN_OK;
    if (ix->ids) {
        nid = ann_aligned_calloc(8 * (size_t)total);
        if (!nid) {
            st = ann_set_error(ANN_ERR_NOMEM, "cagra: out of memory for %lld ids", (long long)total);
            goto fail;
        }
        memcpy(nid, ix->ids, 8 * (size_t)ix->rows);
        const int64_t next = ids_next(ix);
        for (int64_t i = 0; i < data->rows; i++)
            nid[ix->rows + i] = ids ? ids[i] : next + i;
        if (ids && (st = ann_ids_check(nid, total)) != ANN_OK) {
            char why[200];
            snprintf(why, sizeof why, "%s", ann_last_error());
            st = ann_set_error(ANN_ERR_INVALID_ARG, "cagra: the new ids: %s", why);
            goto fail;
        }
    }
    nd = ann_cagra_alloc(rb * (size_t)total);
    ng = ann_cagra_alloc((size_t)total * deg * sizeof(uint32_t));
    if (!nd || !ng) {
        st = ann_set_error(ANN_ERR_NOMEM, "cagra: out of memory for %lld rows", (long long)total);
        goto fail;
    }
    memcpy(nd, ix->data, rb * (size_t)ix->rows);
    for (int64_t i = 0; i < data->rows; i++)
        memcpy(nd + (size_t)(ix->rows + i) * rb, ann_matrix_row(data, i), rb);
    memcpy(ng, ix->graph, (size_t)ix->rows * deg * sizeof(uint32_t));
    if (metric_has_norms(ix->metric) &&
        (st = compute_norms(nd, ix->dtype, total, ix->dim, ix->metric, ex->n_threads, &norms)) != ANN_OK)
        goto fail;
    ann_cagra_view v = {ix->metric, ix->dtype, total, ix->dim, nd, (int64_t)rb, norms, deg, NULL,
                        NULL, 0, total, NULL};
    if ((st = ann_cagra_extend_graph(&v, data->rows, ex, ng)) != ANN_OK)
        goto fail;
    drop_cache(ix);
    free(ix->data);
    free(ix->graph);
    free(ix->norms);
    ix->data = nd;
    ix->graph = ng;
    ix->norms = norms;
    if (nid) {
        free(ix->ids);
        ix->ids = nid;
    }
    ix->rows = total;
    cagra_narrow(ix, ex->n_threads);
    return ANN_OK;
fail:
    free(nd);
    free(ng);
    free(norms);
    free(nid);
    return st;
}

ann_status ann_index_extend(ann_index *ix, const ann_matrix *data, const int64_t *ids, ann_exec *ex)
{
    ann_exec dflt;
    if (!ex) {
        ann_exec_init(&dflt);
        ex = &dflt;
    }
    if (data->cols != ix->dim)
        return ann_set_error(ANN_ERR_MISMATCH, "dimension %lld does not match index dimension %lld",
                             (long long)data->cols, (long long)ix->dim);
    if (data->dtype != ix->dtype)
        return ann_set_error(ANN_ERR_MISMATCH, "dtype %s does not match index dtype %s",
                             ann_dtype_name(data->dtype), ann_dtype_name(ix->dtype));
    if (ix->algo == ANN_ALGO_CAGRA)
        return cagra_add(ix, data, ids, ex);
    ann_status st = materialize(ix);
    if (st != ANN_OK)
        return st;
    drop_cache(ix);
    const int64_t next = ids_next(ix);
    int64_t *new_ids = malloc((size_t)data->rows * sizeof(int64_t) + 1);
    if (!new_ids)
        return ann_set_error(ANN_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < data->rows; i++) {
        new_ids[i] = ids ? ids[i] : next + i;
        if (new_ids[i] < 0) {
            free(new_ids);
            return ann_set_error(ANN_ERR_INVALID_ARG, "id %lld of row %lld is negative (-1 marks empty result slots)",
                                 (long long)ids[i], (long long)i);
        }
    }
    if (ix->algo == ANN_ALGO_IVF_FLAT) {
        st = ivf_add(ix, data, new_ids, ex);
        free(new_ids);
        return st;
    }
    /* brute force: append rows (and an id map when ids are not the row numbers) */
    const size_t rb = (size_t)ix->dim * ann_dtype_size(ix->dtype);
    const int64_t total = ix->rows + data->rows;
    bool identity = !ix->ids;
    for (int64_t i = 0; i < data->rows && identity; i++)
        identity = new_ids[i] == ix->rows + i;
    char *nd = ann_aligned_calloc(rb * (size_t)total);
    int64_t *nid = identity ? NULL : ann_aligned_calloc(8 * (size_t)total);
    if (!nd || (!identity && !nid)) {
        free(nd);
        free(nid);
        free(new_ids);
        return ann_set_error(ANN_ERR_NOMEM, "out of memory for %lld rows", (long long)total);
    }
    memcpy(nd, ix->data, rb * (size_t)ix->rows);
    for (int64_t i = 0; i < data->rows; i++)
        memcpy(nd + (ix->rows + i) * rb, ann_matrix_row(data, i), rb);
    if (nid) {
        for (int64_t i = 0; i < ix->rows; i++)
            nid[i] = ix->ids ? ix->ids[i] : i;
        memcpy(nid + ix->rows, new_ids, (size_t)data->rows * 8);
    }
    free(new_ids);
    float *norms = NULL;
    st = compute_norms(nd, ix->dtype, total, ix->dim, ix->metric, ex->n_threads, &norms);
    if (st != ANN_OK) {
        free(nd);
        free(nid);
        return st;
    }
    free(ix->data);
    free(ix->norms);
    free(ix->ids);
    ix->data = nd;
    ix->norms = norms;
    ix->ids = nid;
    ix->rows = total;
    return ANN_OK;
}

/* Number of rows r < rows (id row_ids[r], or r) whose bit is set. */
static int64_t count_kept(int64_t rows, const int64_t *row_ids, const uint32_t *bits, int64_t nbits)
{
    int64_t kept = 0;
    if (!row_ids) {
        const int64_t lim = rows < nbits ? rows : nbits;
        const int64_t full = lim / 32;
        for (int64_t w = 0; w < full; w++)
            kept += __builtin_popcount(bits[w]);
        for (int64_t i = full * 32; i < lim; i++)
            kept += (bits[i >> 5] >> (i & 31)) & 1u;
        return kept;
    }
    for (int64_t r = 0; r < rows; r++) {
        int64_t v = row_ids[r];
        kept += v >= 0 && v < nbits && ((bits[v >> 5] >> (v & 31)) & 1u);
    }
    return kept;
}

/*
 * Exact search among the rows that pass the filter: the kept rows are
 * gathered into a contiguous block and searched by the backend's brute
 * force; ids map back to row_ids[r] (or r).
 */
static ann_status filtered_exact(ann_exec *ex, ann_metric metric, ann_dtype dtype, int64_t rows, int64_t dim,
                                 const void *data, const float *norms, const int64_t *row_ids, const uint32_t *bits,
                                 int64_t nbits, const ann_matrix *q, int64_t k, int64_t *ids, float *dist)
{
    const ann_backend_ops *ops;
    ann_status st = ann_backend_select(ex, ANN_OP_BF_SEARCH, dtype, metric, &ops);
    if (st != ANN_OK)
        return st;
    const int64_t kept = count_kept(rows, row_ids, bits, nbits);
    const float worst = ann_metric_worst(metric);
    if (kept == 0) {
        for (int64_t i = 0; i < q->rows * k; i++) {
            ids[i] = -1;
            dist[i] = worst;
        }
        return ANN_OK;
    }
    const size_t rb = (size_t)dim * ann_dtype_size(dtype);
    char *sub = ann_aligned_calloc(rb * (size_t)kept);
    float *sub_norms = norms ? ann_aligned_calloc(4 * (size_t)kept) : NULL;
    int64_t *map = malloc((size_t)kept * sizeof(int64_t));
    void *cache = NULL;
    if (!sub || (norms && !sub_norms) || !map) {
        st = ann_set_error(ANN_ERR_NOMEM, "out of memory gathering %lld filtered rows", (long long)kept);
        goto cleanup;
    }
    int64_t m = 0;
    for (int64_t r = 0; r < rows; r++) {
        int64_t v = row_ids ? row_ids[r] : r;
        if (v < 0 || v >= nbits || !((bits[v >> 5] >> (v & 31)) & 1u))
            continue;
        memcpy(sub + (size_t)m * rb, (const char *)data + (size_t)r * rb, rb);
        if (norms)
            sub_norms[m] = norms[r];
        map[m++] = v;
    }
    ann_bf_view v = {metric, dtype, kept, dim, sub, (int64_t)rb, sub_norms, &cache};
    st = ops->bf_search(&v, q, k, ex->n_threads, ids, dist);
    if (st == ANN_OK)
        for (int64_t i = 0; i < q->rows * k; i++)
            if (ids[i] >= 0)
                ids[i] = map[ids[i]];
cleanup:
    if (cache && ops->cache_free)
        ops->cache_free(cache);
    free(sub);
    free(sub_norms);
    free(map);
    return st;
}

/* Extra checks of CAGRA search params beyond the table's ranges. */
static ann_status cagra_check_search(const ann_cagra_search_params *p)
{
    const int ts = p->team_size, bs = p->thread_block_size;
    if (ts != 0 && ts != 4 && ts != 8 && ts != 16 && ts != 32)
        return ann_set_error(ANN_ERR_INVALID_ARG, "team_size = %d: expected 0 (auto), 4, 8, 16 or 32", ts);
    if (bs != 0 && bs != 64 && bs != 128 && bs != 256 && bs != 512 && bs != 1024)
        return ann_set_error(ANN_ERR_INVALID_ARG,
                             "thread_block_size = %d: expected 0 (auto), 64, 128, 256, 512 or 1024", bs);
    return ANN_OK;
}

static void log_msg(ann_exec *ex, int level, const char *msg)
{
    if (ex->log)
        ex->log(ex->log_user, level, msg);
}

/* Share of rows above which a filtered CAGRA or IVF-Flat search becomes a filtered brute force (notes 12). */
#define FILTER_BF_RATE 0.9

static ann_status search_impl(const ann_index *cix, const void *search_params, const ann_matrix *queries, int64_t k,
                              const uint32_t *bits, int64_t nbits, ann_exec *ex, int64_t *ids, float *distances)
{
    ann_index *ix = (ann_index *)cix; /* only the device cache changes */
    ann_exec dflt;
    if (!ex) {
        ann_exec_init(&dflt);
        ex = &dflt;
    }
    if (k < 1)
        return ann_set_error(ANN_ERR_INVALID_ARG, "k = %lld: k must be at least 1", (long long)k);
    if (queries->cols != ix->dim)
        return ann_set_error(ANN_ERR_MISMATCH, "dimension %lld does not match index dimension %lld",
                             (long long)queries->cols, (long long)ix->dim);
    if (!vector_dtype(queries->dtype))
        return ann_set_error(ANN_ERR_UNSUPPORTED, "queries of dtype %s cannot be searched",
                             ann_dtype_name(queries->dtype));
    if (bits && nbits < 0)
        return ann_set_error(ANN_ERR_INVALID_ARG, "filter of %lld bits", (long long)nbits);
    if (ix->algo == ANN_ALGO_CAGRA && !ix->data)
        return ann_set_error(ANN_ERR_INVALID_ARG,
                             "the cagra index holds no vectors (built with --no-dataset): attach the dataset it was "
                             "built from (annsearch --data DATASET, ann_index_attach_dataset)");
    if (queries->rows == 0)
        return ANN_OK;
    const ann_algo_desc *desc = ann_algo_describe(ix->algo);
    union {
        ann_brute_force_search_params bf;
        ann_ivf_flat_search_params ivf;
        ann_cagra_search_params cagra;
    } sp;
    if (!search_params) {
        desc->search_params_init(&sp);
        search_params = &sp;
    }
    size_t nt;
    const ann_param_desc *table = desc->search_table(&nt);
    ann_status st = ann_params_check(table, nt, search_params);
    if (st == ANN_OK && ix->algo == ANN_ALGO_CAGRA)
        st = cagra_check_search(search_params);
    if (st != ANN_OK)
        return st;

    /* CAGRA with a row -> id map: the filter over ids becomes one over rows; results are mapped at the end */
    const bool cagra_map = ix->algo == ANN_ALGO_CAGRA && ix->ids;
    uint32_t *row_bits = NULL;
    if (bits && ix->algo == ANN_ALGO_BRUTE_FORCE) {
        st = filtered_exact(ex, ix->metric, ix->dtype, ix->rows, ix->dim, ix->data, ix->norms, ix->ids, bits, nbits,
                            queries, k, ids, distances);
        goto done;
    }
    if (bits && cagra_map) {
        if (!(row_bits = ids_row_bitset(ix->ids, ix->rows, bits, nbits, ex->n_threads)))
            return ann_set_error(ANN_ERR_NOMEM, "out of memory for a filter of %lld rows", (long long)ix->rows);
        bits = row_bits;
        nbits = ix->rows;
    }
    int64_t kept = ix->rows;
    if (bits) { /* cagra or ivf_flat */
        const bool cagra = ix->algo == ANN_ALGO_CAGRA;
        kept = count_kept(ix->rows, cagra ? NULL : ix->ids, bits, nbits);
        const double rate = ix->rows ? 1.0 - (double)kept / (double)ix->rows : 0;
        if (rate > FILTER_BF_RATE) {
            char msg[160];
            snprintf(msg, sizeof msg,
                     "%s: %.1f%% of the rows are filtered out (more than %.0f%%): filtered brute force instead of "
                     "the %s search",
                     ann_algo_name(ix->algo), 100.0 * rate, 100.0 * FILTER_BF_RATE, cagra ? "graph" : "list");
            log_msg(ex, 1, msg);
            st = filtered_exact(ex, ix->metric, ix->dtype, ix->rows, ix->dim, ix->data, ix->norms,
                                cagra ? NULL : ix->ids, bits, nbits, queries, k, ids, distances);
            goto done;
        }
    }
    const ann_op op = ix->algo == ANN_ALGO_BRUTE_FORCE ? ANN_OP_BF_SEARCH
                    : ix->algo == ANN_ALGO_CAGRA       ? ANN_OP_CAGRA_SEARCH
                                                       : ANN_OP_IVF_FLAT_SEARCH;
    const ann_backend_ops *ops;
    if ((st = ann_backend_select(ex, op, ix->dtype, ix->metric, &ops)) != ANN_OK)
        goto done;
    if (ix->cache_ops && ix->cache_ops != ops)
        drop_cache(ix);
    ix->cache_ops = ops;
    if (ix->algo == ANN_ALGO_BRUTE_FORCE) {
        ann_bf_view v = {ix->metric, ix->dtype, ix->rows, ix->dim, ix->data,
                         ix->dim * (int64_t)ann_dtype_size(ix->dtype), ix->norms, &ix->device_cache};
        st = ops->bf_search(&v, queries, k, ex->n_threads, ids, distances);
        if (st == ANN_OK && ix->ids)
            ids_map(ix->ids, queries->rows * k, ids);
    } else if (ix->algo == ANN_ALGO_CAGRA) {
        /* the CPU reads the lossless compact copy when there is one (bit-identical results) */
        const bool narrow = ix->narrow && ops == ann_cpu_ops();
        const ann_dtype vt = narrow ? ix->narrow_dtype : ix->dtype;
        ann_cagra_view v = {ix->metric, vt, ix->rows, ix->dim, narrow ? ix->narrow : ix->data,
                            ix->dim * (int64_t)ann_dtype_size(vt), ix->norms, ix->graph_degree, ix->graph,
                            bits, bits ? nbits : 0, kept, &ix->device_cache};
        st = ops->cagra_search(&v, search_params, queries, k, ex->n_threads, ids, distances);
    } else {
        ann_ivf_flat_view v = {ix->metric, ix->dtype, ix->rows, ix->dim, ix->ivf.n_lists, ix->centers,
                               ix->center_norms, ix->list_offsets, ix->ids, ix->data, ix->norms,
                               &ix->device_cache, bits, bits ? nbits : 0};
        st = ops->ivf_flat_search(&v, search_params, queries, k, ex->n_threads, ids, distances);
    }
done:
    free(row_bits);
    if (st == ANN_OK && cagra_map) /* graph search and filtered brute force alike returned rows */
        ids_map(ix->ids, queries->rows * k, ids);
    if (st == ANN_OK && ann_interrupted(ex))
        st = ann_set_error(ANN_ERR_INTERRUPTED, "interrupted");
    return st;
}

ann_status ann_index_search(const ann_index *ix, const void *search_params, const ann_matrix *queries, int64_t k,
                            ann_exec *ex, int64_t *ids, float *distances)
{
    return search_impl(ix, search_params, queries, k, NULL, 0, ex, ids, distances);
}

ann_status ann_index_search_filtered(const ann_index *ix, const void *search_params, const ann_matrix *queries,
                                     int64_t k, const uint32_t *bitset, int64_t n_bits, ann_exec *ex, int64_t *ids,
                                     float *distances)
{
    if (!bitset)
        return ann_set_error(ANN_ERR_INVALID_ARG, "filtered search without a bitset");
    return search_impl(ix, search_params, queries, k, bitset, n_bits, ex, ids, distances);
}

void ann_index_get_info(const ann_index *ix, ann_index_info *info)
{
    memset(info, 0, sizeof *info);
    info->algo = ix->algo;
    info->metric = ix->metric;
    info->dtype = ix->dtype;
    info->rows = ix->rows;
    info->dim = ix->dim;
    info->row_offset = ix->row_offset;
    info->has_dataset = ix->algo != ANN_ALGO_CAGRA || ix->data != NULL;
    info->graph_degree = ix->algo == ANN_ALGO_CAGRA ? ix->graph_degree : 0;
    info->has_ids = ix->algo != ANN_ALGO_IVF_FLAT && ix->ids != NULL;
    info->id_bound = ids_next(ix); /* ivf_flat: its list_ids */
    uint64_t bytes = (uint64_t)ix->rows * ix->dim * ann_dtype_size(ix->dtype);
    if (ix->norms)
        bytes += 4 * (uint64_t)ix->rows;
    if (ix->ids)
        bytes += 8 * (uint64_t)ix->rows;
    if (ix->algo == ANN_ALGO_IVF_FLAT) {
        info->n_lists = ix->ivf.n_lists;
        bytes += (uint64_t)ix->ivf.n_lists * (4 * (uint64_t)ix->dim + 4 + 8) + 8;
    }
    if (ix->algo == ANN_ALGO_CAGRA) {
        if (!ix->data)
            bytes -= (uint64_t)ix->rows * ix->dim * ann_dtype_size(ix->dtype);
        bytes += (uint64_t)ix->rows * (uint64_t)ix->graph_degree * 4;
    }
    info->memory_bytes = bytes;
}

/* ---------------------------- save / load --------------------------- */

ann_status ann_index_set_row_offset(ann_index *ix, int64_t row_offset)
{
    if (row_offset < 0 || row_offset > INT64_MAX - ix->rows)
        return ann_set_error(ANN_ERR_INVALID_ARG, "row offset %lld is out of range", (long long)row_offset);
    ix->row_offset = row_offset;
    return ANN_OK;
}

/* The optional meta key row_offset (absent: 0).  Errors: ANN_ERR_FORMAT when present and invalid. */
static ann_status read_row_offset(const void *meta, uint64_t meta_len, const char *path, ann_index *ix)
{
    char buf[64];
    if (!ann_meta_get(meta, meta_len, "row_offset", buf, sizeof buf))
        return ANN_OK;
    int64_t v;
    ann_status st = ann_meta_get_i64(meta, meta_len, "row_offset", path, &v);
    if (st == ANN_OK && (v < 0 || v > INT64_MAX - ix->rows))
        st = ann_set_error(ANN_ERR_FORMAT, "'%s': meta row_offset = %lld is out of range", path, (long long)v);
    if (st == ANN_OK)
        ix->row_offset = v;
    return st;
}

ann_status ann_index_save(const ann_index *ix, const char *path, bool compress, int n_threads)
{
    char meta[1024];
    int len = snprintf(meta, sizeof meta, "annkit_version=%s\nalgo=%s\nmetric=%s\ndtype=%s\nrows=%lld\ndim=%lld\n",
                       ann_version(), ann_algo_name(ix->algo), ann_metric_name(ix->metric),
                       ann_dtype_name(ix->dtype), (long long)ix->rows, (long long)ix->dim);
    if (ix->row_offset != 0)
        len += snprintf(meta + len, sizeof meta - (size_t)len, "row_offset=%lld\n", (long long)ix->row_offset);
    if (ix->algo == ANN_ALGO_IVF_FLAT)
        len += snprintf(meta + len, sizeof meta - (size_t)len,
                        "n_lists=%d\nkmeans_n_iters=%d\nkmeans_trainset_fraction=%g\n"
                        "max_train_points_per_cluster=%d\nadaptive_centers=%d\n",
                        (int)ix->ivf.n_lists, (int)ix->ivf.kmeans_n_iters,
                        (double)ix->ivf.kmeans_trainset_fraction, (int)ix->ivf.max_train_points_per_cluster,
                        (int)ix->ivf.adaptive_centers);
    if (ix->algo == ANN_ALGO_CAGRA) {
        static const char *const build_algos[] = {"auto", "nn_descent", "brute_force", "ivf_pq", "iterative"};
        const int ba = ix->cagra.build_algo >= 0 && ix->cagra.build_algo < 5 ? ix->cagra.build_algo : 0;
        len += snprintf(meta + len, sizeof meta - (size_t)len,
                        "graph_degree=%d\nintermediate_graph_degree=%d\nbuild_algo=%s\nnn_descent_niter=%d\n"
                        "guarantee_connectivity=%d\nhas_dataset=%d\n",
                        (int)ix->graph_degree, (int)ix->cagra.intermediate_graph_degree, build_algos[ba],
                        (int)ix->cagra.nn_descent_niter, (int)ix->cagra.guarantee_connectivity, ix->data != NULL);
    }
    ann_container_writer *w = NULL;
    ann_status st = ann_container_writer_create(ANN_KIND_INDEX, ix->algo, ix->metric, ix->dtype, ix->rows,
                                                ix->dim, &w);
    if (st != ANN_OK)
        return st;
    const ann_codec codec = compress ? ANN_CODEC_ZSTD : ANN_CODEC_NONE;
    const uint64_t rb = (uint64_t)ix->dim * ann_dtype_size(ix->dtype);
    st = ann_container_add(w, "meta", meta, (uint64_t)len, ANN_CODEC_NONE);
    if (st == ANN_OK && ix->algo == ANN_ALGO_CAGRA)
        st = ann_container_add(w, "graph", ix->graph, 4 * (uint64_t)ix->rows * (uint64_t)ix->graph_degree, codec);
    if (st == ANN_OK && ix->data)
        st = ann_container_add(w, "data", ix->data, rb * (uint64_t)ix->rows, codec);
    if (st == ANN_OK && ix->norms)
        st = ann_container_add(w, "norms", ix->norms, 4 * (uint64_t)ix->rows, codec);
    if (st == ANN_OK && (ix->algo == ANN_ALGO_BRUTE_FORCE || ix->algo == ANN_ALGO_CAGRA) && ix->ids)
        st = ann_container_add(w, "ids", ix->ids, 8 * (uint64_t)ix->rows, codec);
    if (st == ANN_OK && ix->algo == ANN_ALGO_IVF_FLAT) {
        const uint64_t L = (uint64_t)ix->ivf.n_lists;
        st = ann_container_add(w, "centers", ix->centers, 4 * L * (uint64_t)ix->dim, codec);
        if (st == ANN_OK)
            st = ann_container_add(w, "center_norms", ix->center_norms, 4 * L, codec);
        if (st == ANN_OK)
            st = ann_container_add(w, "list_offsets", ix->list_offsets, 8 * (L + 1), codec);
        if (st == ANN_OK)
            st = ann_container_add(w, "list_ids", ix->ids, 8 * (uint64_t)ix->rows, codec);
    }
    if (st == ANN_OK)
        st = ann_container_write(w, path, n_threads);
    ann_container_writer_free(w);
    return st;
}

/* Parse a build_algo name of the meta text (unknown: auto). */
static int32_t cagra_build_algo_parse(const char *v)
{
    static const char *const names[] = {"auto", "nn_descent", "brute_force", "ivf_pq", "iterative"};
    for (int32_t i = 0; i < 5; i++)
        if (!strcmp(v, names[i]))
            return i;
    return ANN_CAGRA_BUILD_AUTO;
}

/*
 * Load a CAGRA container (formats/container.md 7.5): copies the graph,
 * the vectors, the norms and the optional ids out of the mapping into
 * heap (huge-page) memory (a graph search reads rows at random) and
 * closes the file.
 */
static ann_status cagra_load(ann_container *c, const char *path, ann_index **out)
{
    const ann_container_info *h = ann_container_header(c);
    ann_status st = ANN_OK;
    ann_index *ix = NULL;
    uint32_t *graph = NULL;
    void *data = NULL;
    float *norms = NULL;
    int64_t *ids = NULL;
    if (!vector_dtype(h->dtype) || h->rows < 1 || h->dim < 1 || check_metric(h->metric) != ANN_OK ||
        h->rows >= (int64_t)UINT32_MAX) {
        ann_clear_error();
        st = ann_set_error(ANN_ERR_FORMAT, "'%s': invalid header (dtype %d, rows %lld, dim %lld, metric %d)", path,
                           (int)h->dtype, (long long)h->rows, (long long)h->dim, (int)h->metric);
        goto cleanup;
    }
    const uint64_t rows = (uint64_t)h->rows;
    const void *meta, *p;
    uint64_t meta_len;
    int64_t deg = 0;
    ann_cagra_params cp;
    ann_cagra_params_init(&cp);
    cp.metric = h->metric;
    if ((st = ann_container_get(c, "meta", &meta, &meta_len)) != ANN_OK)
        goto cleanup;
    if ((st = ann_meta_get_i64(meta, meta_len, "graph_degree", path, &deg)) != ANN_OK)
        goto cleanup;
    if (deg < 1 || deg > 65536) {
        st = ann_set_error(ANN_ERR_FORMAT, "'%s': meta graph_degree = %lld is out of range [1, 65536]", path,
                           (long long)deg);
        goto cleanup;
    }
    {
        int64_t v;
        char buf[64];
        if (ann_meta_get_i64(meta, meta_len, "intermediate_graph_degree", path, &v) == ANN_OK && v >= 1 && v <= 1024)
            cp.intermediate_graph_degree = (int32_t)v;
        if (ann_meta_get_i64(meta, meta_len, "nn_descent_niter", path, &v) == ANN_OK && v >= 1 && v <= 1000)
            cp.nn_descent_niter = (int32_t)v;
        if (ann_meta_get(meta, meta_len, "build_algo", buf, sizeof buf))
            cp.build_algo = cagra_build_algo_parse(buf);
        ann_clear_error();
        cp.graph_degree = deg > 1024 ? 1024 : (int32_t)deg;
    }
    const uint64_t gbytes = 4 * rows * (uint64_t)deg;
    if ((st = ann_container_get_sized(c, "graph", gbytes, &p)) != ANN_OK)
        goto cleanup;
    graph = ann_cagra_alloc(gbytes);
    if (!graph) {
        st = ann_set_error(ANN_ERR_NOMEM, "'%s': out of memory for the graph", path);
        goto cleanup;
    }
    memcpy(graph, p, gbytes);
    {
        int64_t bad = -1;
        const uint64_t total = rows * (uint64_t)deg;
#pragma omp parallel for schedule(static) reduction(max : bad)
        for (int64_t i = 0; i < (int64_t)total; i++)
            if (graph[i] >= rows && i > bad)
                bad = i;
        if (bad >= 0) {
            st = ann_set_error(ANN_ERR_FORMAT, "'%s': section 'graph': row %lld holds id %u, not below %lld rows",
                               path, (long long)(bad / deg), graph[bad], (long long)rows);
            goto cleanup;
        }
    }
    if (ann_container_has(c, "data")) {
        const uint64_t dbytes = rows * (uint64_t)h->dim * ann_dtype_size(h->dtype);
        if ((st = ann_container_get_sized(c, "data", dbytes, &p)) != ANN_OK)
            goto cleanup;
        data = ann_cagra_alloc(dbytes);
        if (!data) {
            st = ann_set_error(ANN_ERR_NOMEM, "'%s': out of memory for the vectors", path);
            goto cleanup;
        }
        memcpy(data, p, dbytes);
        if (metric_has_norms(h->metric)) {
            if ((st = ann_container_get_sized(c, "norms", 4 * rows, &p)) != ANN_OK)
                goto cleanup;
            norms = ann_aligned_calloc(4 * rows);
            if (!norms) {
                st = ann_set_error(ANN_ERR_NOMEM, "'%s': out of memory for the norms", path);
                goto cleanup;
            }
            memcpy(norms, p, 4 * rows);
        }
    }
    if ((st = ids_load(c, path, rows, true, &ids)) != ANN_OK)
        goto cleanup;
    ix = calloc(1, sizeof *ix);
    if (!ix) {
        st = ann_set_error(ANN_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    ix->algo = ANN_ALGO_CAGRA;
    ix->metric = h->metric;
    ix->dtype = h->dtype;
    ix->rows = h->rows;
    ix->dim = h->dim;
    ix->cagra = cp;
    ix->cagra.attach_dataset_on_build = data != NULL;
    ix->graph_degree = (int32_t)deg;
    ix->graph = graph;
    ix->data = data;
    ix->norms = norms;
    ix->ids = ids;
    graph = NULL;
    data = NULL;
    norms = NULL;
    ids = NULL;
    cagra_narrow(ix, 0);
    if ((st = read_row_offset(meta, meta_len, path, ix)) != ANN_OK)
        goto cleanup;
    *out = ix;
    ix = NULL;
cleanup:
    ann_index_free(ix);
    free(graph);
    free(data);
    free(norms);
    free(ids);
    ann_container_close(c);
    return st;
}

ann_status ann_index_load(const char *path, ann_index **out)
{
    *out = NULL;
    ann_container *c = NULL;
    ann_status st = ann_container_open(path, &c);
    if (st != ANN_OK)
        return st;
    const ann_container_info *h = ann_container_header(c);
    if (h->kind != ANN_KIND_INDEX) {
        ann_container_close(c);
        if (h->kind == ANN_KIND_GRAPH)
            return ann_set_error(ANN_ERR_FORMAT, "'%s': is a graph file, not an index", path);
        return ann_set_error(ANN_ERR_FORMAT, "'%s': header field 'kind' = %d is not an index", path, (int)h->kind);
    }
    if (h->algo == ANN_ALGO_CAGRA)
        return cagra_load(c, path, out);
    if (h->algo != ANN_ALGO_BRUTE_FORCE && h->algo != ANN_ALGO_IVF_FLAT) {
        ann_container_close(c);
        return ann_set_error(ANN_ERR_UNSUPPORTED, "'%s': %s indexes cannot be loaded by this build", path,
                             ann_algo_name(h->algo));
    }
    bool metric_ok = check_metric(h->metric) == ANN_OK ||
                     (h->metric == ANN_METRIC_HAMMING && h->algo == ANN_ALGO_BRUTE_FORCE &&
                      (h->dtype == ANN_DTYPE_U8 || h->dtype == ANN_DTYPE_I8));
    ann_clear_error();
    if (!vector_dtype(h->dtype) || h->rows < 0 || h->dim < 1 || !metric_ok) {
        ann_container_close(c);
        return ann_set_error(ANN_ERR_FORMAT, "'%s': invalid header (dtype %d, rows %lld, dim %lld, metric %d)",
                             path, (int)h->dtype, (long long)h->rows, (long long)h->dim, (int)h->metric);
    }
    ann_index *ix = calloc(1, sizeof *ix);
    if (!ix) {
        ann_container_close(c);
        return ann_set_error(ANN_ERR_NOMEM, "out of memory");
    }
    ix->file = c;
    ix->algo = h->algo;
    ix->metric = h->metric;
    ix->dtype = h->dtype;
    ix->rows = h->rows;
    ix->dim = h->dim;
    const uint64_t rows = (uint64_t)h->rows;
    const void *p;
    const void *meta;
    uint64_t meta_len;
    st = ann_container_get(c, "meta", &meta, &meta_len);
    if (st == ANN_OK)
        st = ann_container_get_sized(c, "data", rows * (uint64_t)h->dim * ann_dtype_size(h->dtype), &p);
    if (st == ANN_OK)
        ix->data = (void *)p;
    if (st == ANN_OK && metric_has_norms(h->metric)) {
        st = ann_container_get_sized(c, "norms", 4 * rows, &p);
        ix->norms = (float *)p;
    }
    if (st == ANN_OK && ix->algo == ANN_ALGO_BRUTE_FORCE)
        st = ids_load(c, path, rows, false, &ix->ids);
    if (st == ANN_OK)
        st = read_row_offset(meta, meta_len, path, ix);
    if (st == ANN_OK && ix->algo == ANN_ALGO_IVF_FLAT) {
        ann_ivf_flat_params_init(&ix->ivf);
        ix->ivf.metric = h->metric;
        int64_t v;
        st = ann_meta_get_i64(meta, meta_len, "n_lists", path, &v);
        if (st == ANN_OK && (v < 1 || v > (1 << 24)))
            st = ann_set_error(ANN_ERR_FORMAT, "'%s': meta n_lists = %lld is out of range", path, (long long)v);
        if (st == ANN_OK) {
            ix->ivf.n_lists = (int32_t)v;
            if (ann_meta_get_i64(meta, meta_len, "kmeans_n_iters", path, &v) == ANN_OK)
                ix->ivf.kmeans_n_iters = (int32_t)v;
            if (ann_meta_get_i64(meta, meta_len, "adaptive_centers", path, &v) == ANN_OK)
                ix->ivf.adaptive_centers = v != 0;
            if (ann_meta_get_i64(meta, meta_len, "max_train_points_per_cluster", path, &v) == ANN_OK)
                ix->ivf.max_train_points_per_cluster = (int32_t)v;
            char buf[64];
            if (ann_meta_get(meta, meta_len, "kmeans_trainset_fraction", buf, sizeof buf))
                ix->ivf.kmeans_trainset_fraction = strtof(buf, NULL);
            ann_clear_error();
            size_t nt;
            const ann_param_desc *t = ann_ivf_flat_param_table(&nt);
            if (ann_params_check(t, nt, &ix->ivf) != ANN_OK)
                st = ann_set_error(ANN_ERR_FORMAT, "'%s': section 'meta': %s", path, ann_last_error());
        }
        const uint64_t L = (uint64_t)ix->ivf.n_lists;
        if (st == ANN_OK) {
            st = ann_container_get_sized(c, "centers", 4 * L * (uint64_t)h->dim, &p);
            ix->centers = (float *)p;
        }
        if (st == ANN_OK) {
            st = ann_container_get_sized(c, "center_norms", 4 * L, &p);
            ix->center_norms = (float *)p;
        }
        if (st == ANN_OK) {
            st = ann_container_get_sized(c, "list_offsets", 8 * (L + 1), &p);
            ix->list_offsets = (int64_t *)p;
        }
        if (st == ANN_OK) {
            st = ann_container_get_sized(c, "list_ids", 8 * rows, &p);
            ix->ids = (int64_t *)p;
        }
        /* offsets must be monotone from 0 to rows, or scans would read outside the data */
        if (st == ANN_OK) {
            bool ok = ix->list_offsets[0] == 0 && ix->list_offsets[L] == (int64_t)rows;
            for (uint64_t l = 0; l < L && ok; l++)
                ok = ix->list_offsets[l] <= ix->list_offsets[l + 1];
            if (!ok)
                st = ann_set_error(ANN_ERR_FORMAT, "'%s': section 'list_offsets' is not monotone from 0 to %lld",
                                   path, (long long)rows);
        }
    }
    if (st != ANN_OK) {
        ann_index_free(ix);
        return st;
    }
    *out = ix;
    return ANN_OK;
}

ann_status ann_index_ivf_view(const ann_index *cix, ann_ivf_flat_view *v)
{
    ann_index *ix = (ann_index *)cix;
    if (ix->algo != ANN_ALGO_IVF_FLAT)
        return ann_set_error(ANN_ERR_INVALID_ARG, "not an ivf_flat index");
    ann_ivf_flat_view t = {ix->metric, ix->dtype, ix->rows, ix->dim, ix->ivf.n_lists, ix->centers,
                           ix->center_norms, ix->list_offsets, ix->ids, ix->data, ix->norms, &ix->device_cache,
                           NULL, 0};
    *v = t;
    return ANN_OK;
}
