/*
 * test_graph.c - kNN graphs on the CPU: the brute-force graph against a
 * slow oracle, NN-Descent recall floors for every metric (hamming on u8
 * bytes too), structural soundness (no self, no duplicates, ids in range)
 * for awkward sizes (N a multiple of the degree, N = degree + 1,
 * duplicate vectors), repeatability, save/load and the error paths.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ann/ann.h"
#include "internal.h"
#include "testutil.h"



static void clustered(float *x, int64_t n, int64_t d, int clusters)
{
    test_clustered(x, n, d, clusters, 60, 140, 20, 2);
}

/* No self, no duplicates, ids in range, distances ascending (descending for inner product). */
static int sound(const ann_graph *g)
{
    for (int64_t i = 0; i < g->rows; i++) {
        const uint32_t *r = g->ids + i * g->degree;
        for (int a = 0; a < g->degree; a++) {
            if (r[a] >= g->rows || r[a] == i)
                return 0;
            for (int b = 0; b < a; b++)
                if (r[a] == r[b])
                    return 0;
            if (g->distances && a > 0) {
                float p = g->distances[i * g->degree + a - 1], q = g->distances[i * g->degree + a];
                if (g->metric == ANN_METRIC_INNER_PRODUCT ? q > p : q < p)
                    return 0;
            }
        }
    }
    return 1;
}

static void exact_row(const float *x, int64_t n, int64_t d, int64_t i, int deg, uint32_t *out)
{
    /* selection of the deg nearest other rows by (squared L2, id) */
    double *best = malloc((size_t)deg * sizeof(double));
    for (int a = 0; a < deg; a++)
        best[a] = INFINITY;
    for (int64_t j = 0; j < n; j++) {
        if (j == i)
            continue;
        double s = 0;
        for (int64_t t = 0; t < d; t++)
            s += ((double)x[i * d + t] - x[j * d + t]) * ((double)x[i * d + t] - x[j * d + t]);
        if (s >= best[deg - 1])
            continue;
        int a = deg - 1;
        while (a > 0 && best[a - 1] > s) {
            best[a] = best[a - 1];
            out[a] = out[a - 1];
            a--;
        }
        best[a] = s;
        out[a] = (uint32_t)j;
    }
    free(best);
}

static void test_brute_force_graph(void)
{
    const int64_t n = 400, d = 12;
    const int deg = 10;
    float *x = malloc((size_t)n * d * sizeof(float));
    clustered(x, n, d, 5);
    memcpy(x + 7 * d, x + 3 * d, (size_t)d * sizeof(float)); /* a duplicate vector */
    ann_matrix m = ann_matrix_view(x, n, d, ANN_DTYPE_F32);
    ann_knn_graph_params p;
    ann_knn_graph_params_init(&p);
    p.graph_degree = deg;
    ann_graph *g = NULL;
    ann_status st = ann_graph_build(ANN_ALGO_BRUTE_FORCE, &p, &m, NULL, &g);
    CHECK(st == ANN_OK && g && sound(g), "brute-force graph: %s", ann_last_error());
    if (g) {
        uint32_t want[16];
        int bad = 0;
        for (int64_t i = 0; i < n && !bad; i++) {
            exact_row(x, n, d, i, deg, want);
            if (memcmp(want, g->ids + i * deg, (size_t)deg * 4) != 0) {
                CHECK(0, "brute-force graph row %lld differs from the oracle", (long long)i);
                bad = 1;
            }
        }
        CHECK(g->ids[3 * deg] == 7 && g->ids[7 * deg] == 3 && g->distances[3 * deg] == 0.0f,
              "duplicate rows are each other's first neighbour");
        double r = 0;
        CHECK(ann_graph_eval(g, &m, 0, 1, NULL, &r) == ANN_OK && r == 1.0, "exact graph evaluates to %.4f", r);
    }
    ann_graph_free(g);
    free(x);
}

static void test_nn_descent(ann_metric metric, int64_t n, int deg, int ideg, double floor_recall)
{
    const int64_t d = 16;
    float *x = malloc((size_t)n * d * sizeof(float));
    clustered(x, n, d, 20);
    for (int64_t i = 0; i < 30 && i + 40 < n; i++) /* duplicates */
        memcpy(x + (i + 40) * d, x + i * d, (size_t)d * sizeof(float));
    ann_matrix f = ann_matrix_view(x, n, d, ANN_DTYPE_F32), u8;
    ann_matrix_convert(&f, ANN_DTYPE_U8, &u8);
    ann_matrix *m = metric == ANN_METRIC_HAMMING ? &u8 : &f;
    ann_nn_descent_params p;
    ann_nn_descent_params_init(&p);
    p.metric = metric;
    p.graph_degree = deg;
    p.intermediate_graph_degree = ideg;
    ann_exec ex;
    ann_exec_init(&ex);
    ex.seed = 7;
    ann_graph *g = NULL;
    ann_status st = ann_graph_build(ANN_ALGO_NN_DESCENT, &p, m, &ex, &g);
    CHECK(st == ANN_OK && g, "nn_descent %s n=%lld: %s", ann_metric_name(metric), (long long)n, ann_last_error());
    if (!g)
        goto out;
    CHECK(sound(g), "nn_descent %s n=%lld deg=%d: a row holds itself, a duplicate or a bad id",
          ann_metric_name(metric), (long long)n, deg);
    if (metric != ANN_METRIC_HAMMING) {
        double r = 0;
        st = ann_graph_eval(g, m, 300, 3, &ex, &r);
        CHECK(st == ANN_OK && r >= floor_recall, "nn_descent %s n=%lld deg=%d: recall %.4f < %.2f",
              ann_metric_name(metric), (long long)n, deg, r, floor_recall);
    }
    /* same seed, same threads: the same graph */
    ann_graph *g2 = NULL;
    st = ann_graph_build(ANN_ALGO_NN_DESCENT, &p, m, &ex, &g2);
    CHECK(st == ANN_OK && g2 && memcmp(g->ids, g2->ids, (size_t)n * deg * 4) == 0,
          "nn_descent %s: the same seed gave a different graph", ann_metric_name(metric));
    ann_graph_free(g2);
    ann_graph_free(g);
out:
    ann_matrix_release(&u8);
    free(x);
}

static void test_files_and_errors(void)
{
    const int64_t n = 300, d = 8;
    float *x = malloc((size_t)n * d * sizeof(float));
    clustered(x, n, d, 4);
    ann_matrix m = ann_matrix_view(x, n, d, ANN_DTYPE_F32);
    ann_graph *g = NULL;
    ann_nn_descent_params p;
    ann_nn_descent_params_init(&p);
    p.graph_degree = 8;
    p.intermediate_graph_degree = 16;
    CHECK(ann_graph_build(ANN_ALGO_NN_DESCENT, &p, &m, NULL, &g) == ANN_OK, "build: %s", ann_last_error());
    char path[] = "/tmp/annkit-graph-XXXXXX";
    close(mkstemp(path));
    CHECK(ann_graph_save(g, path, true, 1) == ANN_OK, "save: %s", ann_last_error());
    ann_graph *h = NULL;
    CHECK(ann_graph_load(path, &h) == ANN_OK && h && h->rows == n && h->degree == 8 && h->distances &&
              memcmp(h->ids, g->ids, (size_t)n * 8 * 4) == 0 &&
              memcmp(h->distances, g->distances, (size_t)n * 8 * 4) == 0,
          "graph round trip: %s", ann_last_error());
    ann_graph_free(h);
    /* an index is not a graph */
    ann_index *ix = NULL;
    ann_index_build(ANN_ALGO_BRUTE_FORCE, NULL, &m, NULL, &ix);
    ann_index_save(ix, path, false, 1);
    h = NULL;
    CHECK(ann_graph_load(path, &h) == ANN_ERR_FORMAT && !h && strstr(ann_last_error(), "not a graph"),
          "index loaded as a graph: %s", ann_last_error());
    ann_index_free(ix);
    unlink(path);
    /* imported ids are checked */
    int32_t ids[4 * 2] = {1, 2, 0, 2, 3, 3, 0, 1};
    ann_matrix im = ann_matrix_view(ids, 4, 2, ANN_DTYPE_I32);
    CHECK(ann_graph_from_ids(&im, NULL, ANN_METRIC_SQEUCLIDEAN, &h) == ANN_ERR_FORMAT &&
              strstr(ann_last_error(), "row 2"),
          "duplicate id accepted: %s", ann_last_error());
    ids[4] = 2;
    ids[5] = 2;
    CHECK(ann_graph_from_ids(&im, NULL, ANN_METRIC_SQEUCLIDEAN, &h) == ANN_ERR_FORMAT &&
              strstr(ann_last_error(), "row itself"),
          "self loop accepted: %s", ann_last_error());
    ids[4] = 0;
    ids[5] = 1;
    ids[7] = 9;
    CHECK(ann_graph_from_ids(&im, NULL, ANN_METRIC_SQEUCLIDEAN, &h) == ANN_ERR_FORMAT, "id out of range accepted");
    ids[7] = 2;
    CHECK(ann_graph_from_ids(&im, NULL, ANN_METRIC_SQEUCLIDEAN, &h) == ANN_OK && h, "good ids refused: %s",
          ann_last_error());
    ann_graph_free(h);
    /* too few rows for the degree */
    ann_matrix small = ann_matrix_view(x, 8, d, ANN_DTYPE_F32);
    ann_graph *s = NULL;
    CHECK(ann_graph_build(ANN_ALGO_NN_DESCENT, &p, &small, NULL, &s) == ANN_ERR_INVALID_ARG && !s &&
              strstr(ann_last_error(), "at least 9 rows"),
          "8 rows for degree 8: %s", ann_last_error());
    /* hamming needs bytes */
    p.metric = ANN_METRIC_HAMMING;
    CHECK(ann_graph_build(ANN_ALGO_NN_DESCENT, &p, &m, NULL, &s) == ANN_ERR_UNSUPPORTED, "hamming on f32");
    ann_graph_free(g);
    free(x);
}

/* The in-place dot-product tiles against a double-precision sum, on ragged shapes. */
static void test_dot_kernels(void)
{
    const int64_t dims[] = {1, 3, 16, 17, 100, 401};
    const int shapes[][2] = {{1, 2}, {3, 5}, {4, 4}, {5, 9}, {16, 32}, {13, 70}};
    for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++) {
        const int64_t d = dims[di];
        float *x = malloc((size_t)80 * d * sizeof(float));
        for (int64_t i = 0; i < 80 * d; i++)
            x[i] = (float)(urand() * 2 - 1);
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            const int m1 = shapes[si][0], m = shapes[si][1];
            const float *rows[80];
            for (int i = 0; i < m; i++) /* scattered rows, one repeated */
                rows[i] = x + ((i * 37 + 11) % 80) * d;
            if (m > 2)
                rows[m - 1] = rows[0];
            float *g = malloc((size_t)m1 * m * sizeof(float)), *c = malloc((size_t)m1 * m * sizeof(float));
            for (int i = 0; i < m1 * m; i++)
                g[i] = c[i] = NAN;
            ann_dot_pairs_f32(rows, m1, m, d, g);
            /* block form: rows m1.. of x against the first m rows, strided */
            ann_dot_block_f32(x, d, m1, x + 2 * d, 2 * d, m < 39 ? m : 39, d, c, m);
            double worst = 0, worstb = 0;
            for (int a = 0; a < m1; a++)
                for (int b = 0; b < m; b++) {
                    double e = 0, eb = 0, mag = 0;
                    for (int64_t j = 0; j < d; j++) {
                        e += (double)rows[a][j] * rows[b][j];
                        mag += fabs((double)rows[a][j] * rows[b][j]);
                    }
                    if (b > a) {
                        double err = fabs(g[a * m + b] - e) / (mag + 1e-30);
                        worst = err > worst || g[a * m + b] != g[a * m + b] ? (err == err ? err : 1) : worst;
                    }
                    if (b < 39) {
                        mag = 0;
                        for (int64_t j = 0; j < d; j++) {
                            eb += (double)x[a * d + j] * x[(2 + 2 * b) * d + j];
                            mag += fabs((double)x[a * d + j] * x[(2 + 2 * b) * d + j]);
                        }
                        double err = fabs(c[a * m + b] - eb) / (mag + 1e-30);
                        worstb = err > worstb || c[a * m + b] != c[a * m + b] ? (err == err ? err : 1) : worstb;
                    }
                }
            CHECK(worst < 1e-5, "ann_dot_pairs_f32 %dx%d d=%lld: relative error %g", m1, m, (long long)d, worst);
            CHECK(worstb < 1e-5, "ann_dot_block_f32 %dx%d d=%lld: relative error %g", m1, m, (long long)d, worstb);
            free(g);
            free(c);
        }
        free(x);
    }
}

/*
 * The initial graph alone (max_iterations = 0: the IVF self-join, or the
 * IVF-Flat search for L1) on near-uniform data, on the GEMM path (d = 16)
 * and the in-place tile path (d = 400): a recall floor, no self or
 * duplicate, and the same graph on 1 and 3 threads.
 */
static void test_nn_descent_initial(ann_metric metric, int64_t d, double floor0)
{
    const int64_t n = 12000;
    float *x = malloc((size_t)n * d * sizeof(float));
    /* 3000 centres with wide noise: close to uniform, so that no list holds a whole neighbourhood */
    test_clustered(x, n, d, 3000, 60, 140, 60, 2);
    for (int64_t i = 0; i < 20; i++) /* duplicates */
        memcpy(x + (i + 100) * d, x + i * d, (size_t)d * sizeof(float));
    ann_matrix m = ann_matrix_view(x, n, d, ANN_DTYPE_F32);
    ann_nn_descent_params p;
    ann_nn_descent_params_init(&p);
    p.metric = metric;
    p.graph_degree = 16;
    p.intermediate_graph_degree = 24;
    p.max_iterations = 0;
    ann_exec ex;
    ann_exec_init(&ex);
    ex.seed = 3;
    ex.n_threads = 1;
    ann_graph *g = NULL, *g3 = NULL;
    ann_status st = ann_graph_build(ANN_ALGO_NN_DESCENT, &p, &m, &ex, &g);
    CHECK(st == ANN_OK && g, "initial %s d=%lld: %s", ann_metric_name(metric), (long long)d, ann_last_error());
    ex.n_threads = 3;
    st = ann_graph_build(ANN_ALGO_NN_DESCENT, &p, &m, &ex, &g3);
    CHECK(st == ANN_OK && g3, "initial %s d=%lld: %s", ann_metric_name(metric), (long long)d, ann_last_error());
    if (g && g3) {
        CHECK(sound(g), "initial %s d=%lld: a row holds itself, a duplicate or a bad id", ann_metric_name(metric),
              (long long)d);
        double r = 0;
        st = ann_graph_eval(g, &m, 400, 5, &ex, &r);
        CHECK(st == ANN_OK && r >= floor0, "initial %s d=%lld: recall %.4f < %.2f", ann_metric_name(metric),
              (long long)d, r, floor0);
        if (getenv("TEST_VERBOSE"))
            printf("initial graph %s d=%lld: recall %.4f\n", ann_metric_name(metric), (long long)d, r);
        CHECK(memcmp(g->ids, g3->ids, (size_t)n * 16 * 4) == 0, "initial %s d=%lld: 1 and 3 threads differ",
              ann_metric_name(metric), (long long)d);
    }
    ann_graph_free(g);
    ann_graph_free(g3);
    free(x);
}

int main(void)
{
    test_rng = 88172645463325252ull;
    test_brute_force_graph();
    test_dot_kernels();
    /* near-uniform data: probing 7 of 93 lists at random would give about 0.08 */
    test_nn_descent_initial(ANN_METRIC_SQEUCLIDEAN, 16, 0.6);  /* measured 0.70 */
    test_nn_descent_initial(ANN_METRIC_SQEUCLIDEAN, 400, 0.3); /* 0.38 */
    test_nn_descent_initial(ANN_METRIC_COSINE, 400, 0.3);      /* 0.39 */
    test_nn_descent_initial(ANN_METRIC_INNER_PRODUCT, 16, 0.2); /* 0.25 */
    test_nn_descent_initial(ANN_METRIC_L1, 16, 0.6);           /* 0.71 */
    test_nn_descent(ANN_METRIC_SQEUCLIDEAN, 3000, 16, 32, 0.95);
    test_nn_descent(ANN_METRIC_EUCLIDEAN, 2000, 10, 20, 0.95);
    test_nn_descent(ANN_METRIC_COSINE, 2000, 10, 20, 0.93);
    test_nn_descent(ANN_METRIC_INNER_PRODUCT, 2000, 10, 20, 0.70); /* not a metric: weaker */
    test_nn_descent(ANN_METRIC_L1, 2000, 10, 20, 0.93);
    test_nn_descent(ANN_METRIC_HAMMING, 1500, 10, 20, 0);
    test_nn_descent(ANN_METRIC_SQEUCLIDEAN, 64 * 40, 16, 64, 0.95); /* N a multiple of the degree */
    test_nn_descent(ANN_METRIC_SQEUCLIDEAN, 17, 16, 32, 1.0);      /* N = degree + 1: every other row */
    test_nn_descent(ANN_METRIC_SQEUCLIDEAN, 200, 16, 32, 0.95);    /* one k-means list */
    test_nn_descent(ANN_METRIC_SQEUCLIDEAN, 9000, 16, 300, 0.95);  /* 70 lists, all probed: P > 64 */
    test_files_and_errors();
    return test_finish("test_graph");
}
