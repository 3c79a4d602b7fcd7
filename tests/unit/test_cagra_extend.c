/*
 * test_cagra_extend.c - adding rows to a CAGRA index (ann_index_extend,
 * lib/src/cagra_extend.c): the graph stays valid (every id below the
 * rows, no row holds itself or a duplicate), the new rows are found, the
 * recall matches a graph built over all the rows, the result does not
 * depend on the thread count, and the errors.
 */
#include <string.h>

#include "ann/ann.h"
#include "testutil.h"

enum { N = 3000, N0 = 1000, D = 16, NQ = 200, K = 10, DEG = 16 };

static ann_index *build(const float *x, int64_t rows, ann_metric m, bool with_data)
{
    ann_cagra_params p;
    ann_cagra_params_init(&p);
    p.metric = m;
    p.graph_degree = DEG;
    p.intermediate_graph_degree = 2 * DEG;
    p.build_algo = ANN_CAGRA_BUILD_BRUTE_FORCE;
    p.attach_dataset_on_build = with_data;
    ann_matrix data = ann_matrix_view((void *)x, rows, D, ANN_DTYPE_F32);
    ann_exec ex;
    ann_exec_init(&ex);
    ex.device = ANN_DEVICE_CPU;
    ann_index *ix = NULL;
    ann_status st = ann_index_build(ANN_ALGO_CAGRA, &p, &data, &ex, &ix);
    CHECK(st == ANN_OK, "build %s: %s", ann_metric_name(m), ann_last_error());
    return ix;
}

static void check_graph(const ann_index *ix, int64_t rows, const char *what)
{
    const uint32_t *g;
    int32_t deg;
    CHECK(ann_cagra_graph(ix, &g, &deg) == ANN_OK && deg == DEG, "%s: graph", what);
    int64_t bad = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int32_t j = 0; j < deg; j++) {
            bool b = g[r * deg + j] >= rows || g[r * deg + j] == (uint32_t)r;
            for (int32_t t = 0; t < j && !b; t++)
                b = g[r * deg + t] == g[r * deg + j];
            bad += b;
        }
    CHECK(bad == 0, "%s: %lld bad graph entries (self, duplicate or out of range)", what, (long long)bad);
}

/* recall@K of ix against brute force over the same rows */
static double recall(const ann_index *ix, const float *x, int64_t rows, const float *q, ann_metric m,
                     int32_t itopk)
{
    ann_exec ex;
    ann_exec_init(&ex);
    ex.device = ANN_DEVICE_CPU;
    ann_brute_force_params bp;
    ann_brute_force_params_init(&bp);
    bp.metric = m;
    ann_matrix data = ann_matrix_view((void *)x, rows, D, ANN_DTYPE_F32);
    ann_matrix qm = ann_matrix_view((void *)q, NQ, D, ANN_DTYPE_F32);
    ann_index *bf = NULL;
    CHECK(ann_index_build(ANN_ALGO_BRUTE_FORCE, &bp, &data, &ex, &bf) == ANN_OK, "bf: %s", ann_last_error());
    static int64_t want[NQ * K], got[NQ * K];
    static float dw[NQ * K], dg[NQ * K];
    ann_cagra_search_params sp;
    ann_cagra_search_params_init(&sp);
    sp.itopk_size = itopk;
    CHECK(ann_index_search(bf, NULL, &qm, K, &ex, want, dw) == ANN_OK, "bf search: %s", ann_last_error());
    CHECK(ann_index_search(ix, &sp, &qm, K, &ex, got, dg) == ANN_OK, "cagra search: %s", ann_last_error());
    ann_index_free(bf);
    int64_t hit = 0;
    for (int64_t i = 0; i < NQ; i++)
        for (int a = 0; a < K; a++)
            for (int b = 0; b < K; b++)
                if (got[i * K + a] == want[i * K + b]) {
                    hit++;
                    break;
                }
    return (double)hit / (NQ * K);
}

static void test_extend(ann_metric m, const float *x, const float *q)
{
    const char *mn = ann_metric_name(m);
    ann_index *ix = build(x, N0, m, true), *full = build(x, N, m, true), *ix1 = build(x, N0, m, true);
    if (!ix || !full || !ix1)
        goto out;
    ann_matrix more = ann_matrix_view((void *)(x + (size_t)N0 * D), N - N0, D, ANN_DTYPE_F32);
    ann_exec ex;
    ann_exec_init(&ex);
    ex.device = ANN_DEVICE_CPU;
    ex.n_threads = 2;
    ann_status st = ann_index_extend(ix, &more, NULL, &ex);
    CHECK(st == ANN_OK, "extend %s: %s", mn, ann_last_error());
    if (st != ANN_OK)
        goto out;
    ann_index_info info;
    ann_index_get_info(ix, &info);
    CHECK(info.rows == N, "%s: %lld rows after extend", mn, (long long)info.rows);
    check_graph(ix, N, mn);
    /* the recall of a graph built over every row, within 0.02 */
    double re = recall(ix, x, N, q, m, 64), rf = recall(full, x, N, q, m, 64);
    CHECK(re >= rf - 0.02 && re >= 0.9, "%s: recall@10 %.4f after extend, %.4f built whole", mn, re, rf);
    /* the new rows are reachable: each finds itself (L2) */
    if (m == ANN_METRIC_SQEUCLIDEAN) {
        static int64_t ids[(N - N0)];
        static float dd[(N - N0)];
        ann_cagra_search_params sp;
        ann_cagra_search_params_init(&sp);
        CHECK(ann_index_search(ix, &sp, &more, 1, &ex, ids, dd) == ANN_OK, "self search: %s", ann_last_error());
        int64_t self = 0;
        for (int64_t i = 0; i < N - N0; i++)
            self += ids[i] == N0 + i || dd[i] == 0.0f; /* a duplicate row may come first */
        CHECK(self >= (N - N0) * 99 / 100, "%s: %lld of %d new rows find themselves", mn, (long long)self, N - N0);
    }
    /* one thread: the same graph */
    ex.n_threads = 1;
    CHECK(ann_index_extend(ix1, &more, NULL, &ex) == ANN_OK, "extend 1 thread: %s", ann_last_error());
    const uint32_t *g2, *g1;
    int32_t d2, d1;
    ann_cagra_graph(ix, &g2, &d2);
    ann_cagra_graph(ix1, &g1, &d1);
    CHECK(memcmp(g1, g2, (size_t)N * DEG * sizeof(uint32_t)) == 0, "%s: the graph depends on the thread count", mn);
out:
    ann_index_free(ix);
    ann_index_free(ix1);
    ann_index_free(full);
}

static void test_errors(const float *x)
{
    ann_index *ix = build(x, N0, ANN_METRIC_SQEUCLIDEAN, true);
    ann_index *nod = build(x, N0, ANN_METRIC_SQEUCLIDEAN, false);
    if (!ix || !nod)
        goto out;
    ann_exec ex;
    ann_exec_init(&ex);
    ex.device = ANN_DEVICE_CPU;
    ann_matrix more = ann_matrix_view((void *)(x + (size_t)N0 * D), 10, D, ANN_DTYPE_F32);
    int64_t ids[10];
    for (int i = 0; i < 10; i++)
        ids[i] = N0 + i;
    ids[9] = 5; /* not the next row number */
    CHECK(ann_index_extend(ix, &more, ids, &ex) == ANN_ERR_UNSUPPORTED, "ids that are not row numbers");
    ids[9] = N0 + 9;
    CHECK(ann_index_extend(ix, &more, ids, &ex) == ANN_OK, "consecutive ids: %s", ann_last_error());
    ann_matrix narrow = ann_matrix_view((void *)x, 10, D - 1, ANN_DTYPE_F32);
    CHECK(ann_index_extend(ix, &narrow, NULL, &ex) == ANN_ERR_MISMATCH, "dimension");
    ann_status st = ann_index_extend(nod, &more, NULL, &ex);
    CHECK(st == ANN_ERR_INVALID_ARG && strstr(ann_last_error(), "no vectors"), "no dataset: %d %s", (int)st,
          ann_last_error());
    ann_index_info info;
    ann_index_get_info(nod, &info);
    CHECK(info.rows == N0, "a failed extend changed the index");
out:
    ann_index_free(ix);
    ann_index_free(nod);
}

int main(void)
{
    test_rng = 4242;
    /* rows and queries from the same clusters */
    float *x = malloc((size_t)(N + NQ) * D * sizeof(float)), *q = x + (size_t)N * D;
    test_clustered(x, N + NQ, D, 30, 0, 200, 12, 4);
    test_extend(ANN_METRIC_SQEUCLIDEAN, x, q);
    test_extend(ANN_METRIC_INNER_PRODUCT, x, q);
    test_extend(ANN_METRIC_COSINE, x, q);
    test_errors(x);
    free(x);
    return test_finish("test_cagra_extend");
}
