/*
 * graph.c - kNN graph handle: parameters, build (NN-Descent, brute force,
 * IVF-PQ), evaluation, save/load in the annkit container (man/ann-graph.5):
 * header kind = graph, dtype = u32, rows, dim = degree; sections
 * meta (key=value text), ids (rows x degree u32), distances (optional,
 * rows x degree f32).
 */
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ann/backend.h"
#include "ann/brute_force.h"
#include "ann/graph.h"
#include "ann/index.h"
#include "ann/ivf_pq.h"
#include "internal.h"
#include "ivf_pq_internal.h"
#include "matrix_owner.h"
#include "backend_ops.h"
#include "nnd_cpu.h"

/* ------------------------- parameter tables ------------------------- */

void ann_nn_descent_params_init(ann_nn_descent_params *p)
{
    memset(p, 0, sizeof *p);
    p->metric = ANN_METRIC_SQEUCLIDEAN;
    p->graph_degree = 64;
    p->intermediate_graph_degree = 128;
    p->max_iterations = 20;
    p->termination_threshold = 0.0001f;
    p->return_distances = true;
    p->dist_comp_dtype = ANN_DIST_COMP_AUTO;
}

void ann_knn_graph_params_init(ann_knn_graph_params *p)
{
    memset(p, 0, sizeof *p);
    p->metric = ANN_METRIC_SQEUCLIDEAN;
    p->graph_degree = 64;
    p->return_distances = true;
}

static const ann_param_desc nnd_table[] = {
    {"graph_degree", ANN_PARAM_INT32, offsetof(ann_nn_descent_params, graph_degree), 1, 1024, NULL,
     "neighbours per row in the output graph"},
    {"intermediate_graph_degree", ANN_PARAM_INT32, offsetof(ann_nn_descent_params, intermediate_graph_degree), 1,
     1024, NULL, "neighbours per row kept while refining (usually >= 1.5 x graph_degree)"},
    {"max_iterations", ANN_PARAM_INT32, offsetof(ann_nn_descent_params, max_iterations), 0, 1000, NULL,
     "most NN-Descent iterations"},
    {"termination_threshold", ANN_PARAM_FLOAT, offsetof(ann_nn_descent_params, termination_threshold), 0, 1,
     NULL, "stop when an iteration's insertions < threshold x rows x intermediate_graph_degree"},
    {"return_distances", ANN_PARAM_BOOL, offsetof(ann_nn_descent_params, return_distances), 0, 1, NULL,
     "store the distances in the graph file"},
    {"dist_comp_dtype", ANN_PARAM_ENUM, offsetof(ann_nn_descent_params, dist_comp_dtype), 0, 2, "auto|fp32|fp16",
     "distance arithmetic: fp16 rounds vectors to binary16 first"},
};

static const ann_param_desc knn_table[] = {
    {"graph_degree", ANN_PARAM_INT32, offsetof(ann_knn_graph_params, graph_degree), 1, 1024, NULL,
     "neighbours per row in the output graph"},
    {"return_distances", ANN_PARAM_BOOL, offsetof(ann_knn_graph_params, return_distances), 0, 1, NULL,
     "store the distances in the graph file"},
};

const ann_param_desc *ann_nn_descent_param_table(size_t *n)
{
    *n = sizeof nnd_table / sizeof nnd_table[0];
    return nnd_table;
}

const ann_param_desc *ann_knn_graph_param_table(size_t *n)
{
    *n = sizeof knn_table / sizeof knn_table[0];
    return knn_table;
}

/* ------------------------------ handle ------------------------------ */

typedef struct graph_owner {
    ann_container *file; /* non-NULL: arrays are in the mapping */
} graph_owner;

void ann_graph_free(ann_graph *g)
{
    if (!g)
        return;
    graph_owner *o = g->owner_;
    if (o && o->file) {
        ann_container_close(o->file);
    } else {
        free(g->ids);
        free(g->distances);
    }
    free(o);
    free(g);
}

static ann_status graph_alloc(int64_t rows, int32_t degree, bool with_dist, ann_graph **out)
{
    ann_graph *g = calloc(1, sizeof *g);
    graph_owner *o = calloc(1, sizeof *o);
    if (g) {
        g->owner_ = o;
        g->rows = rows;
        g->degree = degree;
        g->ids = ann_aligned_calloc((size_t)rows * degree * sizeof(uint32_t));
        g->distances = with_dist ? ann_aligned_calloc((size_t)rows * degree * sizeof(float)) : NULL;
    }
    if (!g || !o || !g->ids || (with_dist && !g->distances)) {
        if (g && !o) {
            free(g->ids);
            free(g->distances);
            free(g);
        } else {
            ann_graph_free(g);
        }
        return ann_set_error(ANN_ERR_NOMEM, "out of memory for a %lld x %d graph", (long long)rows, (int)degree);
    }
    *out = g;
    return ANN_OK;
}

/* Every id < rows, never the row itself, no duplicate in a row (stamp array: O(rows x degree)). */
static ann_status check_rows(const ann_graph *g, const char *where)
{
    uint32_t *stamp = calloc((size_t)g->rows, sizeof(uint32_t));
    if (!stamp)
        return ann_set_error(ANN_ERR_NOMEM, "out of memory");
    ann_status st = ANN_OK;
    for (int64_t i = 0; i < g->rows && st == ANN_OK; i++) {
        const uint32_t *r = g->ids + i * g->degree;
        for (int32_t j = 0; j < g->degree; j++) {
            const char *what = r[j] >= (uint64_t)g->rows ? "is not below the row count"
                             : r[j] == (uint64_t)i       ? "is the row itself"
                             : stamp[r[j]] == (uint32_t)i + 1 ? "appears twice" : NULL;
            if (what) {
                st = ann_set_error(ANN_ERR_FORMAT, "%s: row %lld, column %d: id %u %s", where, (long long)i, (int)j,
                                   r[j], what);
                break;
            }
            stamp[r[j]] = (uint32_t)i + 1;
        }
    }
    free(stamp);
    return st;
}

static bool vector_dtype(ann_dtype t)
{
    return t == ANN_DTYPE_F32 || t == ANN_DTYPE_F16 || t == ANN_DTYPE_I8 || t == ANN_DTYPE_U8;
}

/* Exact graph: brute-force search of every row with k = degree + 1, without the row itself. */
static ann_status exact_rows(const ann_matrix *data, ann_metric metric, const int64_t *rows, int64_t n_rows,
                             int32_t degree, ann_exec *ex, uint32_t *out_ids, float *out_dist)
{
    ann_brute_force_params bp;
    ann_brute_force_params_init(&bp);
    bp.metric = metric;
    ann_index *ix = NULL;
    ann_status st = ann_index_build(ANN_ALGO_BRUTE_FORCE, &bp, data, ex, &ix);
    if (st != ANN_OK)
        return st;
    const int64_t kk = degree + 1, batch = 4096, d = data->cols;
    const size_t es = ann_dtype_size(data->dtype);
    int64_t *ids = malloc((size_t)batch * kk * sizeof(int64_t));
    float *dist = malloc((size_t)batch * kk * sizeof(float));
    ann_matrix q;
    ann_matrix_alloc(&q, batch, d, data->dtype);
    if (!ids || !dist || !q.data) {
        st = ann_set_error(ANN_ERR_NOMEM, "out of memory for the exact graph");
        goto cleanup;
    }
    for (int64_t b0 = 0; b0 < n_rows && st == ANN_OK; b0 += batch) {
        int64_t m = n_rows - b0 < batch ? n_rows - b0 : batch;
        for (int64_t r = 0; r < m; r++)
            memcpy(ann_matrix_row(&q, r), ann_matrix_row(data, rows ? rows[b0 + r] : b0 + r), (size_t)d * es);
        q.rows = m;
        st = ann_index_search(ix, NULL, &q, kk, ex, ids, dist);
        for (int64_t r = 0; r < m && st == ANN_OK; r++) {
            const int64_t self = rows ? rows[b0 + r] : b0 + r;
            int c = 0;
            for (int64_t j = 0; j < kk && c < degree; j++) {
                if (ids[r * kk + j] == self || ids[r * kk + j] < 0)
                    continue;
                out_ids[(b0 + r) * degree + c] = (uint32_t)ids[r * kk + j];
                if (out_dist)
                    out_dist[(b0 + r) * degree + c] = dist[r * kk + j];
                c++;
            }
        }
        if (ann_interrupted(ex))
            st = ann_set_error(ANN_ERR_INTERRUPTED, "interrupted");
    }
cleanup:
    free(ids);
    free(dist);
    ann_matrix_release(&q);
    ann_index_free(ix);
    return st;
}

ann_status ann_graph_build(ann_algo algo, const void *params, const ann_matrix *data, ann_exec *ex,
                           ann_graph **out)
{
    *out = NULL;
    ann_exec dflt;
    if (!ex) {
        ann_exec_init(&dflt);
        ex = &dflt;
    }
    if (data->loc != ANN_LOC_HOST || !vector_dtype(data->dtype))
        return ann_set_error(ANN_ERR_UNSUPPORTED, "dataset of dtype %s cannot be used for a graph (f32, f16, i8, u8)",
                             ann_dtype_name(data->dtype));
    /* each builder's params, checked and clamped; then one allocation and the run */
    union {
        ann_nn_descent_params nnd;
        ann_knn_graph_params bf;
        ann_ivf_pq_graph_params pq;
    } p;
    int32_t degree;
    bool with_dist;
    ann_metric metric;
    ann_status st;
    const ann_backend_ops *ops = NULL;
    if (algo == ANN_ALGO_NN_DESCENT) {
        if (params)
            p.nnd = *(const ann_nn_descent_params *)params;
        else
            ann_nn_descent_params_init(&p.nnd);
        size_t nt;
        const ann_param_desc *t = ann_nn_descent_param_table(&nt);
        if ((st = ann_params_check(t, nt, &p.nnd)) != ANN_OK)
            return st;
        degree = p.nnd.graph_degree;
        with_dist = p.nnd.return_distances;
        metric = p.nnd.metric;
    } else if (algo == ANN_ALGO_BRUTE_FORCE) {
        if (params)
            p.bf = *(const ann_knn_graph_params *)params;
        else
            ann_knn_graph_params_init(&p.bf);
        size_t nt;
        const ann_param_desc *t = ann_knn_graph_param_table(&nt);
        if ((st = ann_params_check(t, nt, &p.bf)) != ANN_OK)
            return st;
        degree = p.bf.graph_degree;
        with_dist = p.bf.return_distances;
        metric = p.bf.metric;
    } else if (algo == ANN_ALGO_IVF_PQ) {
        if (params)
            p.pq = *(const ann_ivf_pq_graph_params *)params;
        else
            ann_ivf_pq_graph_params_init(&p.pq);
        if ((st = ann_ivf_pq_graph_params_check(&p.pq)) != ANN_OK)
            return st;
        degree = p.pq.graph_degree;
        with_dist = p.pq.return_distances;
        metric = p.pq.index.metric;
    } else {
        return ann_set_error(ANN_ERR_UNSUPPORTED, "graphs cannot be built with %s in this build", ann_algo_name(algo));
    }
    if (data->rows <= degree)
        return ann_set_error(ANN_ERR_INVALID_ARG,
                             "the dataset has %lld rows: a graph of degree %d needs at least %d rows",
                             (long long)data->rows, (int)degree, (int)degree + 1);
    if (algo == ANN_ALGO_NN_DESCENT) {
        if (data->rows > INT32_MAX)
            return ann_set_error(ANN_ERR_INVALID_ARG, "nn_descent: %lld rows exceed 2^31 - 1",
                                 (long long)data->rows);
        if (metric == ANN_METRIC_HAMMING && data->dtype != ANN_DTYPE_U8 && data->dtype != ANN_DTYPE_I8)
            return ann_set_error(ANN_ERR_UNSUPPORTED, "nn_descent: hamming needs u8 or i8 data (got %s)",
                                 ann_dtype_name(data->dtype));
        if (p.nnd.intermediate_graph_degree < degree)
            p.nnd.intermediate_graph_degree = degree;
        if (p.nnd.intermediate_graph_degree > data->rows - 1)
            p.nnd.intermediate_graph_degree = (int32_t)(data->rows - 1);
        if ((st = ann_backend_select(ex, ANN_OP_NN_DESCENT, data->dtype, metric, &ops)) != ANN_OK)
            return st;
    } else if (algo == ANN_ALGO_IVF_PQ) {
        if (data->rows > (int64_t)UINT32_MAX)
            return ann_set_error(ANN_ERR_INVALID_ARG, "ivf_pq: %lld rows exceed the 2^32 - 1 ids of a graph",
                                 (long long)data->rows);
        /* the backend of the candidate search is chosen (ex->used set) by ann_ivf_pq_cpu_knn_graph */
    }
    ann_graph *g;
    if ((st = graph_alloc(data->rows, degree, with_dist, &g)) != ANN_OK)
        return st;
    g->algo = algo;
    g->metric = metric;
    if (algo == ANN_ALGO_NN_DESCENT && ops == ann_cpu_ops())
        st = ann_cpu_nn_descent(&p.nnd, data, ex, g->ids, g->distances); /* progress, interrupt */
    else if (algo == ANN_ALGO_NN_DESCENT)
        st = ops->nn_descent(&p.nnd, data, ex->n_threads, ex->seed, g->ids, g->distances);
    else if (algo == ANN_ALGO_BRUTE_FORCE)
        st = exact_rows(data, metric, NULL, data->rows, degree, ex, g->ids, g->distances);
    else
        st = ann_ivf_pq_cpu_knn_graph(&p.pq, data, ex, g->ids, g->distances); /* progress, interrupt */
    if (st != ANN_OK) {
        ann_graph_free(g);
        return st;
    }
    *out = g;
    return ANN_OK;
}

ann_status ann_graph_from_ids(const ann_matrix *ids, const ann_matrix *distances, ann_metric metric,
                              ann_graph **out)
{
    *out = NULL;
    if (ids->dtype != ANN_DTYPE_I32 && ids->dtype != ANN_DTYPE_U32 && ids->dtype != ANN_DTYPE_I64)
        return ann_set_error(ANN_ERR_FORMAT, "graph ids must be integers (got %s)", ann_dtype_name(ids->dtype));
    if (ids->cols < 1 || ids->cols > 1024 || ids->rows < 2)
        return ann_set_error(ANN_ERR_FORMAT, "a graph of %lld rows x %lld neighbours is not valid",
                             (long long)ids->rows, (long long)ids->cols);
    if (distances && distances->dtype != ANN_DTYPE_F32 && distances->dtype != ANN_DTYPE_F64)
        return ann_set_error(ANN_ERR_FORMAT, "graph distances must be f32 or f64 (got %s)",
                             ann_dtype_name(distances->dtype));
    if (distances && (distances->rows != ids->rows || distances->cols != ids->cols))
        return ann_set_error(ANN_ERR_MISMATCH, "distances are %lld x %lld, ids %lld x %lld",
                             (long long)distances->rows, (long long)distances->cols, (long long)ids->rows,
                             (long long)ids->cols);
    ann_graph *g;
    ann_status st = graph_alloc(ids->rows, (int32_t)ids->cols, distances != NULL, &g);
    if (st != ANN_OK)
        return st;
    g->algo = ANN_ALGO_NONE;
    g->metric = metric;
    for (int64_t i = 0; i < ids->rows; i++) {
        const void *r = ann_matrix_row(ids, i);
        for (int64_t j = 0; j < ids->cols; j++) {
            int64_t v = ids->dtype == ANN_DTYPE_I32   ? ((const int32_t *)r)[j]
                      : ids->dtype == ANN_DTYPE_U32   ? ((const uint32_t *)r)[j]
                                                      : ((const int64_t *)r)[j];
            if (v < 0 || v >= ids->rows) {
                ann_graph_free(g);
                return ann_set_error(ANN_ERR_FORMAT, "row %lld, column %lld: id %lld is not in [0, %lld)",
                                     (long long)i, (long long)j, (long long)v, (long long)ids->rows);
            }
            g->ids[i * ids->cols + j] = (uint32_t)v;
        }
        if (distances) {
            ann_matrix dm = *distances;
            if (dm.dtype == ANN_DTYPE_F32)
                memcpy(g->distances + i * ids->cols, ann_matrix_row(&dm, i), (size_t)ids->cols * 4);
            else
                for (int64_t j = 0; j < ids->cols; j++)
                    g->distances[i * ids->cols + j] =
                        dm.dtype == ANN_DTYPE_F64 ? (float)((const double *)ann_matrix_row(&dm, i))[j] : 0.0f;
        }
    }
    if ((st = check_rows(g, "graph ids")) != ANN_OK) {
        ann_graph_free(g);
        return st;
    }
    *out = g;
    return ANN_OK;
}

ann_status ann_graph_save(const ann_graph *g, const char *path, bool compress, int n_threads)
{
    char meta[512];
    int len = snprintf(meta, sizeof meta, "annkit_version=%s\nkind=graph\nalgo=%s\nmetric=%s\nrows=%lld\n"
                       "graph_degree=%d\nhas_distances=%d\n",
                       ann_version(), ann_algo_name(g->algo), ann_metric_name(g->metric), (long long)g->rows,
                       (int)g->degree, g->distances != NULL);
    ann_container_writer *w = NULL;
    ann_status st = ann_container_writer_create(ANN_KIND_GRAPH, g->algo, g->metric, ANN_DTYPE_U32, g->rows,
                                                g->degree, &w);
    if (st != ANN_OK)
        return st;
    const uint64_t bytes = (uint64_t)g->rows * g->degree * 4;
    const ann_codec codec = compress ? ANN_CODEC_ZSTD : ANN_CODEC_NONE;
    st = ann_container_add(w, "meta", meta, (uint64_t)len, ANN_CODEC_NONE);
    if (st == ANN_OK)
        st = ann_container_add(w, "ids", g->ids, bytes, codec);
    if (st == ANN_OK && g->distances)
        st = ann_container_add(w, "distances", g->distances, bytes, codec);
    if (st == ANN_OK)
        st = ann_container_write(w, path, n_threads);
    ann_container_writer_free(w);
    return st;
}

ann_status ann_graph_load(const char *path, ann_graph **out)
{
    *out = NULL;
    ann_container *c = NULL;
    ann_status st = ann_container_open(path, &c);
    if (st != ANN_OK)
        return st;
    const ann_container_info *h = ann_container_header(c);
    if (h->kind != ANN_KIND_GRAPH) {
        ann_container_close(c);
        return ann_set_error(ANN_ERR_FORMAT, "'%s': is an index file, not a graph", path);
    }
    if (h->dtype != ANN_DTYPE_U32 || h->rows < 2 || h->dim < 1 || h->dim > 1024 || h->dim >= h->rows ||
        !strcmp(ann_metric_name(h->metric), "?") || !strcmp(ann_algo_name(h->algo), "?")) {
        ann_container_close(c);
        return ann_set_error(ANN_ERR_FORMAT,
                             "'%s': invalid graph header (dtype %d, rows %lld, degree %lld, metric %d, algo %d)", path,
                             (int)h->dtype, (long long)h->rows, (long long)h->dim, (int)h->metric, (int)h->algo);
    }
    ann_graph *g = calloc(1, sizeof *g);
    graph_owner *o = calloc(1, sizeof *o);
    if (!g || !o) {
        free(g);
        free(o);
        ann_container_close(c);
        return ann_set_error(ANN_ERR_NOMEM, "out of memory");
    }
    o->file = c;
    g->owner_ = o;
    g->algo = h->algo;
    g->metric = h->metric;
    g->rows = h->rows;
    g->degree = (int32_t)h->dim;
    const uint64_t bytes = (uint64_t)g->rows * g->degree * 4;
    const void *p;
    uint64_t meta_len;
    st = ann_container_get(c, "meta", &p, &meta_len);
    if (st == ANN_OK)
        st = ann_container_get_sized(c, "ids", bytes, &p);
    if (st == ANN_OK) {
        g->ids = (uint32_t *)p;
        char where[PATH_MAX + 32];
        snprintf(where, sizeof where, "'%s': section 'ids'", path);
        st = check_rows(g, where);
    }
    if (st == ANN_OK && ann_container_has(c, "distances")) {
        st = ann_container_get_sized(c, "distances", bytes, &p);
        g->distances = (float *)p;
    }
    if (st != ANN_OK) {
        ann_graph_free(g);
        return st;
    }
    *out = g;
    return ANN_OK;
}

ann_status ann_graph_eval(const ann_graph *g, const ann_matrix *data, int64_t sample, uint64_t seed, ann_exec *ex,
                          double *recall)
{
    ann_exec dflt;
    if (!ex) {
        ann_exec_init(&dflt);
        ex = &dflt;
    }
    if (data->rows != g->rows)
        return ann_set_error(ANN_ERR_MISMATCH, "the graph has %lld rows, the dataset %lld", (long long)g->rows,
                             (long long)data->rows);
    const int64_t n = g->rows, deg = g->degree;
    if (sample <= 0 || sample > n)
        sample = n;
    int64_t *rows = malloc((size_t)sample * sizeof(int64_t) + 1);
    uint32_t *exact = malloc((size_t)sample * deg * sizeof(uint32_t) + 1);
    if (!rows || !exact) {
        free(rows);
        free(exact);
        return ann_set_error(ANN_ERR_NOMEM, "out of memory");
    }
    if (sample == n) {
        for (int64_t i = 0; i < n; i++)
            rows[i] = i;
    } else { /* sorted sample without replacement (selection sampling) */
        uint64_t s = seed ^ 0x2545f4914f6cdd1dull;
        int64_t need = sample, m = 0;
        for (int64_t i = 0; i < n && m < sample; i++) {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            if ((double)(s >> 11) / 9007199254740992.0 * (double)(n - i) < (double)need) {
                rows[m++] = i;
                need--;
            }
        }
        sample = m;
    }
    ann_status st = exact_rows(data, g->metric, rows, sample, (int32_t)deg, ex, exact, NULL);
    if (st == ANN_OK) {
        int64_t hits = 0;
#pragma omp parallel for reduction(+ : hits) schedule(static)
        for (int64_t r = 0; r < sample; r++) {
            const uint32_t *gr = g->ids + rows[r] * deg, *er = exact + r * deg;
            for (int64_t a = 0; a < deg; a++)
                for (int64_t b = 0; b < deg; b++)
                    if (gr[a] == er[b]) {
                        hits++;
                        break;
                    }
        }
        *recall = (double)hits / ((double)sample * deg);
    }
    free(rows);
    free(exact);
    return st;
}
