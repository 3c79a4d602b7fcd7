/*
 * test_ivf_pq.c - IVF-PQ on the CPU: codebooks and encoding reproduce
 * vectors made of codebook entries, the LUT scores equal the distances
 * to the reconstructed vectors (every metric, 4-bit and wider codes,
 * identity and random rotations, an odd pq_dim), the SIMD scan kernels
 * equal the scalar one, kNN-graph recall floors for every metric and
 * dtype, graph soundness, repeatability across thread counts, the
 * graph-build preset, the self-included-ratio warning, progress,
 * interruption and the parameter errors.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ann/ann.h"
#include "ivf_pq_internal.h"
#include "testutil.h"

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

/*
 * n x d rows near `clusters` random 4-dimensional patches: center + A z
 * with z uniform in [-1, 1]^4 and A's entries uniform in +-scale/2, plus
 * uniform noise of +-noise, rounded and clamped to [0, 255].  Neighbours
 * are meaningful on such data (low intrinsic dimension), as on real data;
 * on isotropic noise they are not, and no quantizer ranks them well.
 */
static void manifold(float *x, int64_t n, int64_t d, int clusters, double scale, double noise)
{
    float *c = malloc((size_t)clusters * d * sizeof(float)), *A = malloc((size_t)clusters * d * 4 * sizeof(float));
    for (int64_t i = 0; i < clusters * d; i++)
        c[i] = (float)(60 + 130 * urand());
    for (int64_t i = 0; i < clusters * d * 4; i++)
        A[i] = (float)(scale * (urand() - 0.5));
    for (int64_t i = 0; i < n; i++) {
        const int64_t k = (int64_t)(urand() * clusters);
        double z[4];
        for (int t = 0; t < 4; t++)
            z[t] = 2 * urand() - 1;
        for (int64_t j = 0; j < d; j++) {
            double v = c[k * d + j] + noise * (2 * urand() - 1);
            for (int t = 0; t < 4; t++)
                v += A[(k * d + j) * 4 + t] * z[t];
            x[i * d + j] = (float)fmin(255, fmax(0, nearbyint(v)));
        }
    }
    free(c);
    free(A);
}

/* R q (rot_dim floats) of the index. */
static void rotate(const ann_ivf_pq_cpu_index *ix, const float *q, float *out)
{
    for (int32_t r = 0; r < ix->rot_dim; r++) {
        double s = 0;
        if (!ix->rotation)
            s = r < ix->dim ? q[r] : 0;
        else
            for (int64_t c = 0; c < ix->dim; c++)
                s += (double)ix->rotation[(int64_t)r * ix->dim + c] * q[c];
        out[r] = (float)s;
    }
}

/*
 * Vectors made of codebook entries: subspace j of row i is point
 * (i * mul_j + j) mod book of a fixed set of `book` well separated
 * points, so every point appears equally often.  With one list and no
 * rotation, k-means must find these points and encoding is exact.
 */
static void test_exact_codes(int pq_bits, int64_t dim, int32_t pq_dim)
{
    const int32_t book = 1 << pq_bits, len = (int32_t)(dim / pq_dim);
    const int64_t n = (int64_t)book * 24;
    float *pts = malloc((size_t)pq_dim * book * len * sizeof(float));
    float *x = malloc((size_t)n * dim * sizeof(float));
    float *rec = malloc((size_t)dim * sizeof(float));
    for (int32_t j = 0; j < pq_dim; j++)
        for (int32_t c = 0; c < book; c++)
            for (int32_t t = 0; t < len; t++) /* a grid with a random jitter: spacing >= 10 */
                pts[((int64_t)j * book + c) * len + t] =
                    (float)(t == 0 ? 20.0 * c : 0.0) + (float)(3.0 * urand()) + 5.0f * (float)j;
    for (int64_t i = 0; i < n; i++)
        for (int32_t j = 0; j < pq_dim; j++) {
            const int64_t c = (i * (2 * j + 1) + j) % book;
            memcpy(x + i * dim + (int64_t)j * len, pts + ((int64_t)j * book + c) * len, (size_t)len * sizeof(float));
        }
    ann_ivf_pq_params p;
    ann_ivf_pq_params_init(&p);
    p.n_lists = 1;
    p.pq_bits = pq_bits;
    p.pq_dim = pq_dim;
    p.kmeans_trainset_fraction = 1.0f;
    ann_matrix m = ann_matrix_view(x, n, dim, ANN_DTYPE_F32);
    ann_ivf_pq_cpu_index *ix = NULL;
    ann_status st = ann_ivf_pq_cpu_build(&p, &m, NULL, &ix);
    CHECK(st == ANN_OK && ix, "exact codes, %d bits: build: %s", pq_bits, ann_last_error());
    if (ix) {
        CHECK(!ix->rotation && ix->rot_dim == dim && ix->pq_len == len, "no rotation when pq_dim divides dim");
        double worst = 0;
        for (int64_t pr = 0; pr < n; pr++) {
            ann_ivf_pq_cpu_reconstruct(ix, pr, rec);
            const float *xi = x + ix->list_ids[pr] * dim;
            for (int64_t t = 0; t < dim; t++)
                worst = fmax(worst, fabs((double)rec[t] - xi[t]));
        }
        CHECK(worst < 1e-3, "exact codes, %d bits: a row is reconstructed %.3g away", pq_bits, worst);
    }
    ann_ivf_pq_cpu_free(ix);
    free(pts);
    free(x);
    free(rec);
}

/*
 * The scores of a full search (every list, k = rows) against the
 * distances to the reconstructed rows in the rotated space.
 */
static void test_lut_scores(ann_metric metric, int pq_bits, int32_t pq_dim, bool force_rotation)
{
    const int64_t n = 500, d = 12;
    float *x = malloc((size_t)n * d * sizeof(float));
    test_clustered(x, n, d, 6, 40, 150, 30, 2);
    ann_ivf_pq_params p;
    ann_ivf_pq_params_init(&p);
    p.metric = metric;
    p.n_lists = 5;
    p.pq_bits = pq_bits;
    p.pq_dim = pq_dim;
    p.force_random_rotation = force_rotation;
    p.kmeans_n_iters = 10;
    ann_matrix m = ann_matrix_view(x, n, d, ANN_DTYPE_F32);
    ann_ivf_pq_cpu_index *ix = NULL;
    ann_status st = ann_ivf_pq_cpu_build(&p, &m, NULL, &ix);
    CHECK(st == ANN_OK && ix, "lut %s/%d bits: build: %s", ann_metric_name(metric), pq_bits, ann_last_error());
    if (!ix) {
        free(x);
        return;
    }
    CHECK((ix->rotation != NULL) == (force_rotation || ix->rot_dim != d), "rotation only when asked or needed");
    const int64_t nq = 3;
    int64_t *ids = malloc((size_t)nq * n * sizeof(int64_t));
    float *dist = malloc((size_t)nq * n * sizeof(float));
    float *rq = malloc((size_t)ix->rot_dim * sizeof(float)), *rec = malloc((size_t)ix->rot_dim * sizeof(float));
    double *want = malloc((size_t)n * sizeof(double));
    float q[3 * 12];
    for (int64_t i = 0; i < nq * d; i++)
        q[i] = (float)(40 + 150 * urand());
    ann_ivf_pq_search_params sp = {ix->n_lists};
    ann_matrix qm = ann_matrix_view(q, nq, d, ANN_DTYPE_F32);
    st = ann_ivf_pq_cpu_search(ix, &sp, &qm, n, NULL, ids, dist);
    CHECK(st == ANN_OK, "lut search: %s", ann_last_error());
    int bad = 0;
    for (int64_t a = 0; a < nq && st == ANN_OK; a++) {
        float qa[12];
        memcpy(qa, q + a * d, sizeof qa);
        if (metric == ANN_METRIC_COSINE) {
            double s = 0;
            for (int64_t t = 0; t < d; t++)
                s += (double)qa[t] * qa[t];
            for (int64_t t = 0; t < d; t++)
                qa[t] = (float)(qa[t] / sqrt(s));
        }
        rotate(ix, qa, rq);
        for (int64_t pr = 0; pr < n; pr++) {
            ann_ivf_pq_cpu_reconstruct(ix, pr, rec);
            double s = 0;
            for (int32_t t = 0; t < ix->rot_dim; t++)
                s += metric != ANN_METRIC_INNER_PRODUCT ? ((double)rq[t] - rec[t]) * ((double)rq[t] - rec[t])
                                                        : (double)rq[t] * rec[t];
            want[ix->list_ids[pr]] = metric == ANN_METRIC_EUCLIDEAN ? sqrt(s) : metric == ANN_METRIC_COSINE ? s / 2 : s;
        }
        for (int64_t j = 0; j < n && !bad; j++) {
            const int64_t id = ids[a * n + j];
            const float v = dist[a * n + j];
            if (id < 0 || id >= n) {
                CHECK(0, "lut %s: slot %lld holds id %lld", ann_metric_name(metric), (long long)j, (long long)id);
                bad = 1;
                break;
            }
            double scale = metric == ANN_METRIC_INNER_PRODUCT ? 1e4 : 1.0 + fabs(want[id]);
            if (fabs(v - want[id]) > 2e-4 * scale) {
                CHECK(0, "lut %s/%d bits/pq_dim %d: query %lld row %lld: score %.6g, reconstruction gives %.6g",
                      ann_metric_name(metric), pq_bits, (int)pq_dim, (long long)a, (long long)id, (double)v, want[id]);
                bad = 1;
            }
            if (j > 0 && (metric == ANN_METRIC_INNER_PRODUCT ? v > dist[a * n + j - 1] : v < dist[a * n + j - 1])) {
                CHECK(0, "lut %s: results not sorted at %lld", ann_metric_name(metric), (long long)j);
                bad = 1;
            }
        }
    }
    ann_ivf_pq_cpu_free(ix);
    free(ids);
    free(dist);
    free(rq);
    free(rec);
    free(want);
    free(x);
}

/* Every scan kernel the CPU has returns the scalar kernel's scores, bit for bit. */
static void test_kernels(void)
{
    for (int four = 0; four < 2; four++) {
        const int32_t book = four ? 16 : 256, chunks = 37;
        const int64_t ng = 9, tables = four ? 2 * chunks : chunks;
        uint8_t *codes = malloc((size_t)ng * chunks * 16);
        float *lut = malloc((size_t)tables * book * sizeof(float));
        float *ref = malloc((size_t)ng * 16 * sizeof(float)), *got = malloc((size_t)ng * 16 * sizeof(float));
        for (int64_t i = 0; i < ng * chunks * 16; i++)
            codes[i] = (uint8_t)(urand() * 256);
        for (int64_t i = 0; i < tables * book; i++)
            lut[i] = (float)(urand() * 100 - 20);
        ann_ivf_pq_scan_fn k[3];
        CHECK(ann_ivf_pq_scan_kernels(four, k) == 3 && k[0], "kernel table");
        k[0](codes, ng, chunks, book, lut, ref);
        int tested = 0;
        for (int v = 1; v < 3; v++) {
            if (!k[v])
                continue;
            tested++;
            k[v](codes, ng, chunks, book, lut, got);
            CHECK(memcmp(ref, got, (size_t)ng * 16 * sizeof(float)) == 0, "%s kernel %d differs from the scalar one",
                  four ? "4-bit" : "8-bit", v);
        }
        if (four)
            printf("test_ivf_pq: %d SIMD 4-bit scan kernel(s) compared with the scalar one\n", tested);
        free(codes);
        free(lut);
        free(ref);
        free(got);
    }
}

/* Data of dtype t from integer-valued floats in [0, 255] (i8: shifted by -128). */
static ann_matrix as_dtype(float *x, int64_t n, int64_t d, ann_dtype t, float *shifted)
{
    ann_matrix f = ann_matrix_view(x, n, d, ANN_DTYPE_F32), out;
    if (t == ANN_DTYPE_F32)
        return f;
    if (t == ANN_DTYPE_I8) {
        for (int64_t i = 0; i < n * d; i++)
            shifted[i] = x[i] - 128.0f;
        f.data = shifted;
    }
    ann_matrix_convert(&f, t, &out);
    return out;
}

static void test_graph(ann_metric metric, ann_dtype dtype, int64_t n, int64_t d, int deg, int32_t n_lists,
                       int32_t n_probes, float rate, double floor_recall)
{
    float *x = malloc((size_t)n * d * sizeof(float)), *sh = malloc((size_t)n * d * sizeof(float));
    manifold(x, n, d, 8, 80, 2);
    for (int64_t i = 0; i < 20; i++) /* duplicate vectors */
        memcpy(x + (i + 100) * d, x + i * d, (size_t)d * sizeof(float));
    ann_matrix m = as_dtype(x, n, d, dtype, sh);
    ann_ivf_pq_graph_params p;
    ann_ivf_pq_graph_params_init(&p);
    p.index.metric = metric;
    p.index.n_lists = n_lists;
    p.search.n_probes = n_probes;
    p.refine_ratio = rate;
    p.graph_degree = deg;
    ann_exec ex;
    ann_exec_init(&ex);
    ex.seed = 11;
    ex.n_threads = 2;
    ann_graph *g = NULL;
    ann_status st = ann_graph_build(ANN_ALGO_IVF_PQ, &p, &m, &ex, &g);
    CHECK(st == ANN_OK && g, "ivf_pq %s %s: %s", ann_metric_name(metric), ann_dtype_name(dtype), ann_last_error());
    if (g) {
        CHECK(g->algo == ANN_ALGO_IVF_PQ && g->metric == metric && g->degree == deg && g->distances,
              "graph header");
        CHECK(ex.used == ANN_DEVICE_CPU, "ran on the CPU");
        CHECK(sound(g), "ivf_pq %s %s: a row holds itself, a duplicate, a bad id, or is out of order",
              ann_metric_name(metric), ann_dtype_name(dtype));
        double r = 0;
        st = ann_graph_eval(g, &m, 300, 3, &ex, &r);
        CHECK(st == ANN_OK && r >= floor_recall, "ivf_pq %s %s n=%lld d=%lld: recall %.4f < %.2f",
              ann_metric_name(metric), ann_dtype_name(dtype), (long long)n, (long long)d, r, floor_recall);
        printf("test_ivf_pq: %-13s %-3s %5lld x %-3lld degree %2d: recall %.4f\n", ann_metric_name(metric),
               ann_dtype_name(dtype), (long long)n, (long long)d, deg, r);
        /* the distances are exact: the first neighbour of a duplicated row is its twin at distance 0 */
        if (metric == ANN_METRIC_SQEUCLIDEAN)
            CHECK(g->distances[5 * deg] == 0.0f && g->ids[5 * deg] == 105, "row 5's twin is row 105 at 0 (%u, %g)",
                  g->ids[5 * deg], (double)g->distances[5 * deg]);
    }
    ann_graph_free(g);
    ann_matrix_release(&m);
    free(x);
    free(sh);
}

/* Same seed: the same graph, on 1 thread and on 3; another seed: another graph. */
static void test_determinism(void)
{
    const int64_t n = 1500, d = 40;
    float *x = malloc((size_t)n * d * sizeof(float));
    test_clustered(x, n, d, 10, 30, 190, 40, 2);
    ann_matrix m = ann_matrix_view(x, n, d, ANN_DTYPE_F32);
    ann_ivf_pq_graph_params p;
    ann_ivf_pq_graph_params_init(&p);
    p.graph_degree = 12;
    p.index.n_lists = 6;
    p.search.n_probes = 2;
    ann_exec ex;
    ann_exec_init(&ex);
    ex.seed = 5;
    ann_graph *g[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3; i++) {
        ex.n_threads = i == 0 ? 1 : 3;
        ex.seed = i == 2 ? 6 : 5;
        CHECK(ann_graph_build(ANN_ALGO_IVF_PQ, &p, &m, &ex, &g[i]) == ANN_OK, "determinism build %d: %s", i,
              ann_last_error());
    }
    if (g[0] && g[1] && g[2]) {
        CHECK(memcmp(g[0]->ids, g[1]->ids, (size_t)n * 12 * 4) == 0 &&
                  memcmp(g[0]->distances, g[1]->distances, (size_t)n * 12 * 4) == 0,
              "1 and 3 threads gave different graphs");
        /* another seed trains other centers and codebooks; the exact re-rank may still agree on every row */
        ann_ivf_pq_cpu_index *a = NULL, *b = NULL;
        ann_ivf_pq_graph_params r;
        ann_ivf_pq_graph_params_resolve(&p, n, d, &r);
        ann_exec e5, e6;
        ann_exec_init(&e5);
        ann_exec_init(&e6);
        e5.seed = 5;
        e6.seed = 6;
        ann_ivf_pq_cpu_build(&r.index, &m, &e5, &a);
        ann_ivf_pq_cpu_build(&r.index, &m, &e6, &b);
        CHECK(a && b && memcmp(a->pq_centers, b->pq_centers, (size_t)a->pq_dim * a->pq_len * a->book * 4) != 0,
              "the seed does not change the codebooks");
        ann_ivf_pq_cpu_free(a);
        ann_ivf_pq_cpu_free(b);
    }
    for (int i = 0; i < 3; i++)
        ann_graph_free(g[i]);
    free(x);
}

static void test_preset(void)
{
    ann_ivf_pq_graph_params p, r;
    ann_ivf_pq_graph_params_init(&p);
    CHECK(p.graph_degree == 64 && p.refine_ratio == 2.0f && p.return_distances && p.index.n_lists == 0 &&
              p.index.pq_dim == 0 && p.index.pq_bits == 0 && p.search.n_probes == 0 &&
              p.index.max_train_points_per_pq_code == 256,
          "graph defaults");
    CHECK(ann_ivf_pq_graph_params_resolve(&p, 60000, 784, &r) == ANN_OK && r.index.n_lists == 30 &&
              r.index.pq_dim == 512 && r.index.pq_bits == 4 && r.index.kmeans_n_iters == 10 &&
              r.index.kmeans_trainset_fraction == 1.0f && r.search.n_probes == 4,
          "preset for 60000 x 784: n_lists %d pq_dim %d pq_bits %d iters %d fraction %g n_probes %d",
          r.index.n_lists, r.index.pq_dim, r.index.pq_bits, r.index.kmeans_n_iters,
          (double)r.index.kmeans_trainset_fraction, r.search.n_probes);
    CHECK(ann_ivf_pq_graph_params_resolve(&p, 1000000, 128, &r) == ANN_OK && r.index.n_lists == 500 &&
              r.index.pq_dim == 64 && r.index.pq_bits == 4 &&
              fabs(r.index.kmeans_trainset_fraction - 1.0 / sqrt(10.0)) < 1e-6 && r.search.n_probes == 5,
          "preset for 1e6 x 128: n_lists %d pq_dim %d fraction %g n_probes %d", r.index.n_lists, r.index.pq_dim,
          (double)r.index.kmeans_trainset_fraction, r.search.n_probes);
    CHECK(ann_ivf_pq_graph_params_resolve(&p, 1000, 8, &r) == ANN_OK && r.index.n_lists == 1 &&
              r.index.pq_dim == 16 && r.index.pq_bits == 8 && r.search.n_probes == 1,
          "preset for 1000 x 8");
    CHECK(ann_ivf_pq_graph_params_resolve(&p, 10000000, 50, &r) == ANN_OK && r.index.n_lists == 5000 &&
              r.index.pq_dim == 32 && fabs(r.index.kmeans_trainset_fraction - 0.1) < 1e-6,
          "preset for 1e7 x 50");
    CHECK(ann_ivf_pq_graph_params_resolve(&p, 100000, 300, &r) == ANN_OK && r.index.pq_dim == 256 &&
              r.index.n_lists == 50 && r.search.n_probes == 4,
          "preset for 1e5 x 300: pq_dim %d", r.index.pq_dim);
    p.index.pq_dim = 24;
    p.search.n_probes = 100;
    CHECK(ann_ivf_pq_graph_params_resolve(&p, 60000, 784, &r) == ANN_OK && r.index.pq_dim == 24 &&
              r.search.n_probes == 30 && r.index.pq_bits == 4,
          "a given value is kept, n_probes clamped to n_lists");
    /* index defaults: cuVS ivf_pq::index_params */
    ann_ivf_pq_params ip;
    ann_ivf_pq_params_init(&ip);
    ann_ivf_pq_search_params sp;
    ann_ivf_pq_search_params_init(&sp);
    CHECK(ip.n_lists == 1024 && ip.kmeans_n_iters == 20 && ip.kmeans_trainset_fraction == 0.5f &&
              ip.pq_bits == 8 && ip.pq_dim == 0 && ip.codebook_kind == ANN_IVF_PQ_CODEBOOK_PER_SUBSPACE &&
              !ip.force_random_rotation && sp.n_probes == 20,
          "index defaults");
    size_t nt;
    const ann_param_desc *t = ann_ivf_pq_param_table(&nt);
    CHECK(ann_params_check(t, nt, &ip) == ANN_OK, "index defaults pass the index table");
    t = ann_ivf_pq_graph_param_table(&nt);
    ann_ivf_pq_graph_params_init(&p);
    CHECK(ann_params_check(t, nt, &p) == ANN_OK, "graph defaults pass the graph table");
    CHECK(ann_params_set(t, nt, &p, "pq_dim", "96") == ANN_OK && p.index.pq_dim == 96 &&
              ann_params_set(t, nt, &p, "n_probes", "7") == ANN_OK && p.search.n_probes == 7 &&
              ann_params_set(t, nt, &p, "codebook_kind", "per_cluster") == ANN_OK &&
              p.index.codebook_kind == ANN_IVF_PQ_CODEBOOK_PER_CLUSTER,
          "the graph table writes the nested fields");
}

typedef struct seen {
    int progress_calls;
    int64_t last_done, last_total;
    int warnings, infos;
    int ratio_logged;
    volatile int *flag;
} seen;

static void on_progress(void *user, const char *phase, int64_t done, int64_t total)
{
    seen *s = user;
    if (s->flag) /* raise the interrupt flag at the first report (encoding) */
        *s->flag = 1;
    if (strcmp(phase, "ivf_pq") == 0) {
        s->progress_calls++;
        s->last_done = done;
        s->last_total = total;
    }
}

static void on_log(void *user, int level, const char *msg)
{
    seen *s = user;
    if (getenv("TEST_VERBOSE"))
        fprintf(stderr, "log %d: %s\n", level, msg);
    if (level <= 0)
        s->warnings += strstr(msg, "self-included") != NULL;
    else
        s->infos++;
    s->ratio_logged += strstr(msg, "self-included ratio") != NULL;
}

static void test_errors_and_callbacks(void)
{
    const int64_t n = 600, d = 10;
    float *x = malloc((size_t)n * d * sizeof(float));
    test_clustered(x, n, d, 5, 30, 190, 40, 2);
    ann_matrix m = ann_matrix_view(x, n, d, ANN_DTYPE_F32);
    ann_ivf_pq_graph_params p;
    ann_graph *g = NULL;
    ann_exec ex;
    ann_exec_init(&ex);
#define EXPECT(st_want, what, ...)                                                                              \
    do {                                                                                                       \
        ann_ivf_pq_graph_params_init(&p);                                                                      \
        p.graph_degree = 8;                                                                                    \
        __VA_ARGS__;                                                                                           \
        ann_status st_ = ann_graph_build(ANN_ALGO_IVF_PQ, &p, &m, &ex, &g);                                    \
        CHECK(st_ == (st_want) && !g, "%s: status %d (%s)", what, (int)st_, ann_last_error());                \
        ann_graph_free(g);                                                                                     \
        g = NULL;                                                                                              \
    } while (0)
    EXPECT(ANN_ERR_INVALID_ARG, "pq_bits 3", p.index.pq_bits = 3);
    CHECK(strstr(ann_last_error(), "pq_bits = 3"), "message names pq_bits: %s", ann_last_error());
    EXPECT(ANN_ERR_INVALID_ARG, "pq_bits 9", p.index.pq_bits = 9);
    EXPECT(ANN_ERR_INVALID_ARG, "refine_ratio 0.5", p.refine_ratio = 0.5f);
    EXPECT(ANN_ERR_INVALID_ARG, "graph_degree 0", p.graph_degree = 0);
    EXPECT(ANN_ERR_INVALID_ARG, "n_lists > rows", p.index.n_lists = 601);
    CHECK(strstr(ann_last_error(), "n_lists = 601") && strstr(ann_last_error(), "600 rows"), "message: %s",
          ann_last_error());
    EXPECT(ANN_ERR_INVALID_ARG, "kmeans_trainset_fraction 2", p.index.kmeans_trainset_fraction = 2.0f);
    EXPECT(ANN_ERR_UNSUPPORTED, "per_cluster codebooks", p.index.codebook_kind = ANN_IVF_PQ_CODEBOOK_PER_CLUSTER);
    EXPECT(ANN_ERR_UNSUPPORTED, "metric l1", p.index.metric = ANN_METRIC_L1);
    EXPECT(ANN_ERR_UNSUPPORTED, "metric hamming", p.index.metric = ANN_METRIC_HAMMING);
    {
        ann_matrix small = ann_matrix_view(x, 8, d, ANN_DTYPE_F32);
        ann_ivf_pq_graph_params_init(&p);
        p.graph_degree = 8;
        CHECK(ann_graph_build(ANN_ALGO_IVF_PQ, &p, &small, &ex, &g) == ANN_ERR_INVALID_ARG && !g &&
                  strstr(ann_last_error(), "at least 9 rows"),
              "8 rows for degree 8: %s", ann_last_error());
    }
    ex.device = ANN_DEVICE_CUDA;
    EXPECT(ANN_ERR_BACKEND_UNAVAILABLE, "--device cuda", (void)0);
    ex.device = ANN_DEVICE_AUTO;
    ann_ivf_pq_params ip;
    ann_ivf_pq_params_init(&ip);
    ip.n_lists = 4;
    ip.pq_bits = 3;
    ann_ivf_pq_cpu_index *ix = NULL;
    CHECK(ann_ivf_pq_cpu_build(&ip, &m, &ex, &ix) == ANN_ERR_INVALID_ARG && !ix, "index pq_bits 3");

    /* NULL params = defaults (degree 64 < 600 rows); progress to the end, the ratio at level 1 */
    seen s;
    memset(&s, 0, sizeof s);
    ex.progress = on_progress;
    ex.progress_user = &s;
    ex.log = on_log;
    ex.log_user = &s;
    CHECK(ann_graph_build(ANN_ALGO_IVF_PQ, NULL, &m, &ex, &g) == ANN_OK && g && g->degree == 64 && sound(g),
          "defaults: %s", ann_last_error());
    CHECK(s.progress_calls >= 1 && s.last_done == n && s.last_total == n, "progress %d calls, last %lld/%lld",
          s.progress_calls, (long long)s.last_done, (long long)s.last_total);
    CHECK(s.ratio_logged == 1 && s.warnings == 0, "self-included ratio logged once (%d), no warning (%d)",
          s.ratio_logged, s.warnings);
    ann_graph_free(g);
    g = NULL;

    /* the interrupt flag stops the build */
    volatile int flag = 0;
    memset(&s, 0, sizeof s);
    s.flag = &flag;
    ex.interrupt = &flag;
    float *big = malloc((size_t)6000 * d * sizeof(float));
    test_clustered(big, 6000, d, 5, 30, 190, 40, 2);
    ann_matrix bm = ann_matrix_view(big, 6000, d, ANN_DTYPE_F32);
    ann_ivf_pq_graph_params_init(&p);
    p.graph_degree = 8;
    CHECK(ann_graph_build(ANN_ALGO_IVF_PQ, &p, &bm, &ex, &g) == ANN_ERR_INTERRUPTED && !g && s.progress_calls == 0,
          "interrupt: %s", ann_last_error());
    ex.interrupt = NULL;
    free(big);

    /*
     * inner product on rows of very different norms: positive vectors,
     * 487 of length 1 and 13 of length 100; the best candidates of a
     * short row by dot product are long rows, so only the long rows are
     * their own candidates: the warning of notes 12 (a "self-included
     * ratio" below 5 %).
     */
    float *y = malloc((size_t)500 * 8 * sizeof(float));
    for (int64_t i = 0; i < 500; i++) {
        double s2 = 0;
        for (int t = 0; t < 8; t++) {
            y[i * 8 + t] = (float)urand();
            s2 += (double)y[i * 8 + t] * y[i * 8 + t];
        }
        for (int t = 0; t < 8; t++)
            y[i * 8 + t] *= (float)((i % 40 == 0 ? 100.0 : 1.0) / sqrt(s2));
    }
    ann_matrix ym = ann_matrix_view(y, 500, 8, ANN_DTYPE_F32);
    ann_ivf_pq_graph_params_init(&p);
    p.index.metric = ANN_METRIC_INNER_PRODUCT;
    p.graph_degree = 4;
    p.refine_ratio = 1.0f;
    memset(&s, 0, sizeof s);
    ex.progress = NULL;
    CHECK(ann_graph_build(ANN_ALGO_IVF_PQ, &p, &ym, &ex, &g) == ANN_OK && g && sound(g), "ip: %s",
          ann_last_error());
    CHECK(s.warnings == 1, "no warning for a self-included ratio below 5 %% (%d)", s.warnings);
    ann_graph_free(g);
    free(y);
    free(x);
#undef EXPECT
}

int main(void)
{
    test_rng = 0x9e3779b97f4a7c15ull;
    test_kernels();
    test_exact_codes(4, 8, 4);
    test_exact_codes(8, 6, 6);
    test_exact_codes(5, 12, 4);
    test_lut_scores(ANN_METRIC_SQEUCLIDEAN, 4, 4, false);
    test_lut_scores(ANN_METRIC_SQEUCLIDEAN, 4, 5, false); /* odd pq_dim, rot_dim 15 > dim 12 */
    test_lut_scores(ANN_METRIC_EUCLIDEAN, 6, 6, true);
    test_lut_scores(ANN_METRIC_INNER_PRODUCT, 4, 3, true);
    test_lut_scores(ANN_METRIC_INNER_PRODUCT, 8, 12, false);
    test_lut_scores(ANN_METRIC_COSINE, 4, 7, false);
    test_preset();
    test_errors_and_callbacks();
    test_determinism();
    /*
     * graph recall: every metric on f32 (4-bit codes, random rotation,
     * several lists), every dtype (8-bit preset); lists smaller than the
     * candidates (more lists are then scanned than n_probes).
     */
    test_graph(ANN_METRIC_SQEUCLIDEAN, ANN_DTYPE_F32, 2500, 40, 16, 5, 0, 2, 0.95);
    test_graph(ANN_METRIC_EUCLIDEAN, ANN_DTYPE_F32, 2500, 40, 16, 5, 0, 2, 0.95);
    test_graph(ANN_METRIC_COSINE, ANN_DTYPE_F32, 2500, 40, 16, 5, 0, 2, 0.95);
    test_graph(ANN_METRIC_INNER_PRODUCT, ANN_DTYPE_F32, 2500, 40, 16, 5, 0, 2, 0.70);
    test_graph(ANN_METRIC_SQEUCLIDEAN, ANN_DTYPE_F16, 2000, 16, 10, 0, 0, 2, 0.95);
    test_graph(ANN_METRIC_SQEUCLIDEAN, ANN_DTYPE_U8, 2000, 16, 10, 0, 0, 2, 0.95);
    test_graph(ANN_METRIC_SQEUCLIDEAN, ANN_DTYPE_I8, 2000, 16, 10, 0, 0, 2, 0.95);
    test_graph(ANN_METRIC_COSINE, ANN_DTYPE_U8, 2000, 16, 10, 0, 0, 2, 0.95);
    test_graph(ANN_METRIC_INNER_PRODUCT, ANN_DTYPE_I8, 2000, 16, 10, 0, 0, 2, 0.80);
    test_graph(ANN_METRIC_SQEUCLIDEAN, ANN_DTYPE_F32, 2000, 24, 16, 100, 1, 4, 0.80);
    return test_finish("test_ivf_pq");
}
