/*
 * test_consistency.c - the CPU-vs-CUDA consistency suite (DESIGN.md
 * "Backends": ids equal except at near-ties, distances within tolerance,
 * recall equal within 0.005).
 *
 * On seeded synthetic clustered data (20000 x 96 base rows, 2000 queries)
 * in f32, f16, u8 and i8, for sqeuclidean, euclidean, inner_product and
 * cosine, it checks:
 *  - brute force, k = 1, 10, 100: CPU and CUDA return the same ids, except
 *    where the two distances at that rank differ by < 1e-5 relative (a
 *    near-tie); distances of equal ids within 1e-4 relative; a second CUDA
 *    search (device cache reused) returns identical results;
 *  - k > rows: ids -1 and the worst distance in the padding, on both;
 *  - IVF-Flat on one index built on the CPU, n_probes 1, 8, 32 (and 32
 *    with max_codes): recall against the exact results equal within 0.005;
 *  - an IVF-Flat index built on CUDA (GPU k-means) against one built on
 *    the CPU: recall at n_probes 32 within 0.01 (plus one hierarchical
 *    k-means case, 512 lists);
 *  - kmeans_predict on CPU and CUDA agree on >= 99.9 % of the rows;
 *  - NN-Descent graphs (ann_graph_build, default degrees 64 / 128) of the
 *    same seeded 20000 x 64 clustered rows built on the CPU and on CUDA,
 *    for sqeuclidean, inner_product, cosine (f32, u8), L1 (f32) and
 *    bitwise hamming (u8 rows of 1000 clustered 512-bit codes, 10 % of
 *    the bits flipped): graph recall against the exact graph on 1000
 *    sample rows (ann_graph_eval; hamming: computed here, a neighbour
 *    counting when its distance is within the exact 64th, since bit
 *    counts tie a lot) equal within 0.01, and the CUDA graph well formed:
 *    ids < rows, never the row itself, no duplicates, rows sorted by
 *    distance (+dot: descending), distances equal to exact ones (1e-3
 *    relative) on the sample rows.  Smaller shapes exercise the random
 *    initial graph and rows with fewer than 32 entries (50 rows,
 *    intermediate degree clamped to 49), a degree that is not a multiple
 *    of 32 with fp32 arithmetic and euclidean distances (1000 rows,
 *    16 / 40), and fp16 arithmetic on 12 dims (5000 rows).  One graph is
 *    built twice on CUDA and whether the two are identical is printed
 *    (information only: the CUDA build is deterministic in practice, not
 *    by contract).
 *  - CAGRA search (ann/cagra.h, cuda/cagra_cuda.cu): indexes built on the
 *    CPU (graph degree 32, intermediate 64) from seeded clustered data:
 *    20000 x 64 f32 for sqeuclidean, inner_product and cosine, 5000 x 64
 *    for f32 euclidean and L1, u8 (sqeuclidean, inner_product, cosine),
 *    i8 and f16, and a 50-row set searched with k = 64 (padding).  Each
 *    setting runs on the CPU and on CUDA with equal parameters: single_cta,
 *    multi_cta and multi_kernel, itopk 32..256, search_width 1..4,
 *    team_size 4..32, small and hash visited tables, several random
 *    trials, batches (max_queries), an explicit block size, k = 100, auto,
 *    and a filter that keeps about 70 % of the rows.  Checked: recall@k
 *    against the exact (filtered) neighbours within 0.005 of the CPU's
 *    (multi_cta and auto, whose traversal differs: at most 0.005 below);
 *    every id in range and unique per query, no filtered row, empty slots
 *    -1 with the worst distance, results in order, distances equal to
 *    exact recomputed ones (1e-4 x max(1, |d|)); single_cta and
 *    multi_kernel on integer data with L2 or inner product (keys
 *    bit-identical on both backends, same seeds and traversal) return
 *    exactly the CPU's ids and distances for every query (elsewhere the
 *    share of identical queries is printed); a repeated single_cta search
 *    (device cache reused) returns the same bytes.
 *  - IVF-PQ kNN graphs (ann_graph_build with ANN_ALGO_IVF_PQ, CAGRA's
 *    graph-build preset, degree 64; training, encoding and the exact
 *    refine on the CPU, the candidate search on the backend asked for) of
 *    the same seeded 20000 x 64 clustered f32 rows, sqeuclidean, cosine
 *    and inner_product (plus u8 sqeuclidean and an f32 index with 8-bit
 *    codes after a forced random rotation when not quick): graph recall
 *    against the exact graph on 1000 sample rows within 0.01 of each
 *    other (and at least a floor on both), the CUDA graph well formed (as
 *    for NN-Descent); the share of rows identical on both backends and
 *    whether a second CUDA build is identical are printed (information).
 * Prints one line per check; exits 77 (skipped) when the CUDA backend
 * cannot run here (no plugin, no driver or no GPU), 1 on any failure.
 *
 * Environment: ANNKIT_CUDA_PLUGIN names the plugin (meson sets it);
 * ANNKIT_GPU_TEST_QUICK=1 runs f32 and u8 only; ANNKIT_GPU_TEST_SELF=1
 * runs the "CUDA" side on the CPU too (checks the harness itself on a
 * machine without a GPU); ANNKIT_GPU_TEST_ONLY=search, =nnd, =cagra or
 * =ivf_pq runs only the search / k-means checks, only the NN-Descent
 * ones, only the CAGRA ones (quick mode: the main CAGRA set and the u8
 * one) or only the IVF-PQ graphs.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ann/ann.h"
#include "backend_ops.h"

static int failures;
static int checks;
static ann_device other = ANN_DEVICE_CUDA; /* the backend compared with the CPU */

static const int64_t N = 20000, D = 96, NQ = 2000;

/* ------------------------------ data -------------------------------- */

static uint64_t rng;
static double urand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static double nrand(void)
{
    double u = urand(), v = urand();
    if (u < 1e-300)
        u = 1e-300;
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

/*
 * Clustered rows.  Integer dtypes: values 0..255 (i8: minus 128), exact
 * in the dtype.  Float dtypes: centers in [-1, 1], gaussian noise 0.5.
 */
static void make_rows(float *x, int64_t n, int64_t d, int clusters, ann_dtype dt, uint64_t seed)
{
    rng = seed * 0x9e3779b97f4a7c15ull + 1;
    const bool integer = dt == ANN_DTYPE_U8 || dt == ANN_DTYPE_I8;
    float *c = malloc((size_t)clusters * d * sizeof(float));
    uint64_t save = rng;
    rng = 777; /* the same cluster centers for base and queries */
    for (int64_t i = 0; i < clusters * d; i++)
        c[i] = integer ? (float)(40 + 170 * urand()) : (float)(2 * urand() - 1);
    rng = save;
    for (int64_t i = 0; i < n; i++) {
        int64_t cl = (int64_t)(urand() * clusters);
        for (int64_t j = 0; j < d; j++) {
            if (integer) {
                double v = c[cl * d + j] + 30 * nrand();
                v = fmin(255, fmax(0, nearbyint(v)));
                x[i * d + j] = (float)(dt == ANN_DTYPE_I8 ? v - 128 : v);
            } else {
                x[i * d + j] = (float)(c[cl * d + j] + 0.5 * nrand());
            }
        }
    }
    free(c);
}

/* rows x d in dtype dt (owned; release with ann_matrix_release). */
static ann_matrix make_matrix(int64_t n, int64_t d, ann_dtype dt, uint64_t seed)
{
    float *x = malloc((size_t)n * d * sizeof(float));
    make_rows(x, n, d, 1000, dt, seed);
    ann_matrix f = ann_matrix_view(x, n, d, ANN_DTYPE_F32), out;
    memset(&out, 0, sizeof out);
    if (ann_matrix_convert(&f, dt, &out) != ANN_OK) {
        fprintf(stderr, "convert to %s: %s\n", ann_dtype_name(dt), ann_last_error());
        exit(1);
    }
    free(x);
    return out;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void report(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(bool ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s ", ok ? "PASS" : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
    checks++;
    if (!ok)
        failures++;
}

static double rel_diff(double a, double b)
{
    if (a == b)
        return 0; /* also equal infinities */
    double s = fmax(1e-6, fmax(fabs(a), fabs(b)));
    return fabs(a - b) / s;
}

/* -------------------------- brute force ------------------------------ */

typedef struct cmp_stats {
    int64_t mismatches; /* differing ids not explained by a near-tie */
    int64_t near_ties;  /* differing ids at equal (< 1e-5 relative) distances */
    double max_rel;     /* largest relative distance difference at equal ids */
} cmp_stats;

static cmp_stats compare_results(const int64_t *ia, const float *da, const int64_t *ib, const float *db,
                                 int64_t nq, int64_t k, const char *what)
{
    cmp_stats s = {0, 0, 0};
    int shown = 0;
    for (int64_t i = 0; i < nq * k; i++) {
        double r = rel_diff(da[i], db[i]);
        if (ia[i] == ib[i]) {
            if (r > s.max_rel)
                s.max_rel = r;
            if (r > 1e-4 && shown++ < 3)
                fprintf(stderr, "  %s: query %lld rank %lld id %lld: cpu %.9g cuda %.9g\n", what,
                        (long long)(i / k), (long long)(i % k), (long long)ia[i], da[i], db[i]);
        } else if (r < 1e-5) {
            s.near_ties++;
        } else {
            s.mismatches++;
            if (shown++ < 3)
                fprintf(stderr, "  %s: query %lld rank %lld: cpu id %lld dist %.9g, cuda id %lld dist %.9g\n", what,
                        (long long)(i / k), (long long)(i % k), (long long)ia[i], da[i], (long long)ib[i], db[i]);
        }
    }
    return s;
}

static ann_exec exec_on(ann_device dev)
{
    ann_exec ex;
    ann_exec_init(&ex);
    ex.device = dev;
    ex.seed = 42;
    return ex;
}

/* Search ix on dev; returns false (and reports) on error. */
static bool search(const ann_index *ix, const void *sp, const ann_matrix *q, int64_t k, ann_device dev,
                   int64_t *ids, float *dist, double *secs, const char *what)
{
    ann_exec ex = exec_on(dev);
    double t0 = now();
    ann_status st = ann_index_search(ix, sp, q, k, &ex, ids, dist);
    if (secs)
        *secs = now() - t0;
    if (st != ANN_OK) {
        report(false, "%s: search on %s failed: %s", what, ann_device_name(dev), ann_last_error());
        return false;
    }
    if (ex.used != dev) {
        report(false, "%s: asked for %s, ran on %s", what, ann_device_name(dev), ann_device_name(ex.used));
        return false;
    }
    return true;
}

static void check_bf(ann_dtype dt, ann_metric m, const ann_matrix *data, const ann_matrix *q)
{
    static const int64_t ks[] = {1, 10, 100};
    char what[96];
    ann_brute_force_params bp;
    ann_brute_force_params_init(&bp);
    bp.metric = m;
    ann_exec ex = exec_on(ANN_DEVICE_CPU);
    ann_index *ix = NULL;
    if (ann_index_build(ANN_ALGO_BRUTE_FORCE, &bp, data, &ex, &ix) != ANN_OK) {
        report(false, "bf %s %s: build failed: %s", ann_dtype_name(dt), ann_metric_name(m), ann_last_error());
        return;
    }
    const int64_t kmax = 100;
    int64_t *ic = malloc((size_t)NQ * kmax * 8), *ig = malloc((size_t)NQ * kmax * 8), *ig2 = malloc((size_t)NQ * kmax * 8);
    float *dc = malloc((size_t)NQ * kmax * 4), *dg = malloc((size_t)NQ * kmax * 4), *dg2 = malloc((size_t)NQ * kmax * 4);
    for (size_t t = 0; t < sizeof ks / sizeof ks[0]; t++) {
        const int64_t k = ks[t];
        double tc = 0, tg = 0, tg2 = 0;
        snprintf(what, sizeof what, "bf %s %s k=%lld", ann_dtype_name(dt), ann_metric_name(m), (long long)k);
        if (!search(ix, NULL, q, k, ANN_DEVICE_CPU, ic, dc, &tc, what) ||
            !search(ix, NULL, q, k, other, ig, dg, &tg, what) ||
            !search(ix, NULL, q, k, other, ig2, dg2, &tg2, what))
            continue;
        cmp_stats s = compare_results(ic, dc, ig, dg, NQ, k, what);
        bool same_again = memcmp(ig, ig2, (size_t)NQ * k * 8) == 0 && memcmp(dg, dg2, (size_t)NQ * k * 4) == 0;
        report(s.mismatches == 0 && s.max_rel <= 1e-4 && same_again,
               "%s: %lld queries, %lld id mismatches, %lld near-ties, max rel dist diff %.2g, repeat %s "
               "(cpu %.3f s, cuda %.3f s, cuda cached %.3f s)",
               what, (long long)NQ, (long long)s.mismatches, (long long)s.near_ties, s.max_rel,
               same_again ? "identical" : "DIFFERS", tc, tg, tg2);
    }
    free(ic);
    free(ig);
    free(ig2);
    free(dc);
    free(dg);
    free(dg2);
    ann_index_free(ix);
}

/* k > rows: a 50-row index searched with k = 64 pads with -1 / worst on both backends. */
static void check_padding(ann_dtype dt, ann_metric m, const ann_matrix *data, const ann_matrix *q)
{
    const int64_t rows = 50, k = 64, nq = 20;
    ann_matrix small = *data, qs = *q;
    small.rows = rows;
    small.owner = NULL;
    qs.rows = nq;
    qs.owner = NULL;
    ann_brute_force_params bp;
    ann_brute_force_params_init(&bp);
    bp.metric = m;
    ann_exec ex = exec_on(ANN_DEVICE_CPU);
    ann_index *ix = NULL;
    char what[96];
    snprintf(what, sizeof what, "bf padding %s %s k=%lld > rows=%lld", ann_dtype_name(dt), ann_metric_name(m),
             (long long)k, (long long)rows);
    if (ann_index_build(ANN_ALGO_BRUTE_FORCE, &bp, &small, &ex, &ix) != ANN_OK) {
        report(false, "%s: build failed: %s", what, ann_last_error());
        return;
    }
    int64_t ic[20 * 64], ig[20 * 64];
    float dc[20 * 64], dg[20 * 64];
    if (search(ix, NULL, &qs, k, ANN_DEVICE_CPU, ic, dc, NULL, what) &&
        search(ix, NULL, &qs, k, other, ig, dg, NULL, what)) {
        int bad = 0;
        const float worst = ann_metric_worst(m);
        for (int64_t i = 0; i < nq; i++)
            for (int64_t j = rows; j < k; j++)
                if (ig[i * k + j] != -1 || dg[i * k + j] != worst || ic[i * k + j] != -1 || dc[i * k + j] != worst)
                    bad++;
        cmp_stats s = compare_results(ic, dc, ig, dg, nq, k, what);
        report(bad == 0 && s.mismatches == 0, "%s: %d bad padding slots, %lld id mismatches", what, bad,
               (long long)s.mismatches);
    }
    ann_index_free(ix);
}

/* ----------------------------- IVF-Flat ------------------------------ */

static double recall(const int64_t *found, const int64_t *truth, int64_t nq, int64_t k)
{
    ann_matrix t = ann_matrix_view((void *)truth, nq, k, ANN_DTYPE_I64);
    double r = -1;
    if (ann_recall_ids(found, nq, k, &t, &r) != ANN_OK)
        return -1;
    return r;
}

static ann_index *build_ivf(const ann_matrix *data, ann_metric m, int32_t n_lists, ann_device dev, double *secs)
{
    ann_ivf_flat_params p;
    ann_ivf_flat_params_init(&p);
    p.metric = m;
    p.n_lists = n_lists;
    ann_exec ex = exec_on(dev);
    ann_index *ix = NULL;
    double t0 = now();
    ann_status st = ann_index_build(ANN_ALGO_IVF_FLAT, &p, data, &ex, &ix);
    *secs = now() - t0;
    if (st != ANN_OK) {
        report(false, "ivf_flat build (%s, %s, %d lists) on %s failed: %s", ann_dtype_name(data->dtype),
               ann_metric_name(m), (int)n_lists, ann_device_name(dev), ann_last_error());
        return NULL;
    }
    return ix;
}

static void check_ivf(ann_dtype dt, ann_metric m, const ann_matrix *data, const ann_matrix *q, bool hierarchical)
{
    const int64_t k = 10;
    const int32_t n_lists = hierarchical ? 512 : 128;
    char what[128];
    int64_t *truth = malloc((size_t)NQ * k * 8), *ic = malloc((size_t)NQ * k * 8), *ig = malloc((size_t)NQ * k * 8);
    float *dd = malloc((size_t)NQ * k * 4);
    ann_index *bf = NULL, *ivc = NULL, *ivg = NULL;
    double tb_cpu = 0, tb_gpu = 0;

    /* exact results */
    ann_brute_force_params bp;
    ann_brute_force_params_init(&bp);
    bp.metric = m;
    ann_exec ex = exec_on(ANN_DEVICE_CPU);
    if (ann_index_build(ANN_ALGO_BRUTE_FORCE, &bp, data, &ex, &bf) != ANN_OK ||
        !search(bf, NULL, q, k, ANN_DEVICE_CPU, truth, dd, NULL, "ivf truth"))
        goto out;

    ivc = build_ivf(data, m, n_lists, ANN_DEVICE_CPU, &tb_cpu);
    if (!ivc)
        goto out;
    if (!hierarchical) {
        /* the same index searched by both backends */
        static const int32_t probes[] = {1, 8, 32, 32};
        static const int64_t codes[] = {0, 0, 0, 2000};
        for (size_t t = 0; t < sizeof probes / sizeof probes[0]; t++) {
            ann_ivf_flat_search_params sp;
            ann_ivf_flat_search_params_init(&sp);
            sp.n_probes = probes[t];
            sp.max_codes = codes[t];
            double tc = 0, tg = 0;
            snprintf(what, sizeof what, "ivf_flat %s %s n_probes=%d max_codes=%lld", ann_dtype_name(dt),
                     ann_metric_name(m), (int)probes[t], (long long)codes[t]);
            if (!search(ivc, &sp, q, k, ANN_DEVICE_CPU, ic, dd, &tc, what) ||
                !search(ivc, &sp, q, k, other, ig, dd, &tg, what))
                continue;
            double rc = recall(ic, truth, NQ, k), rg = recall(ig, truth, NQ, k);
            int64_t same = 0;
            for (int64_t i = 0; i < NQ * k; i++)
                same += ic[i] == ig[i];
            report(fabs(rc - rg) <= 0.005, "%s: recall cpu %.4f cuda %.4f (ids equal %.4f; cpu %.3f s, cuda %.3f s)",
                   what, rc, rg, (double)same / (double)(NQ * k), tc, tg);
        }
    }
    /* an index built with GPU k-means against the CPU-built one */
    ivg = build_ivf(data, m, n_lists, other, &tb_gpu);
    if (ivg) {
        ann_ivf_flat_search_params sp;
        ann_ivf_flat_search_params_init(&sp);
        sp.n_probes = 32;
        snprintf(what, sizeof what, "ivf_flat build %s %s n_lists=%d n_probes=32", ann_dtype_name(dt),
                 ann_metric_name(m), (int)n_lists);
        if (search(ivc, &sp, q, k, ANN_DEVICE_CPU, ic, dd, NULL, what) &&
            search(ivg, &sp, q, k, ANN_DEVICE_CPU, ig, dd, NULL, what)) {
            double rc = recall(ic, truth, NQ, k), rg = recall(ig, truth, NQ, k);
            report(fabs(rc - rg) <= 0.01, "%s: recall cpu-built %.4f cuda-built %.4f (build cpu %.2f s, cuda %.2f s)",
                   what, rc, rg, tb_cpu, tb_gpu);
        }
    }
out:
    ann_index_free(bf);
    ann_index_free(ivc);
    ann_index_free(ivg);
    free(truth);
    free(ic);
    free(ig);
    free(dd);
}

/* ------------------------------ k-means ------------------------------ */

static void check_predict(ann_dtype dt, ann_metric m, const ann_matrix *data)
{
    const ann_backend_ops *cpu = ann_cpu_ops(), *gpu = NULL;
    ann_exec ex = exec_on(other);
    const int32_t c = 256;
    char what[96];
    snprintf(what, sizeof what, "kmeans_predict %s %s %d clusters", ann_dtype_name(dt), ann_metric_name(m), (int)c);
    if (ann_backend_select(&ex, ANN_OP_KMEANS_PREDICT, dt, m, &gpu) != ANN_OK || ex.used != other) {
        report(false, "%s: no CUDA table: %s", what, ann_last_error());
        return;
    }
    float *centers = malloc((size_t)c * D * sizeof(float));
    int32_t *lc = malloc((size_t)data->rows * 4), *lg = malloc((size_t)data->rows * 4);
    ann_kmeans_params kp = {m, c, 10, 42};
    ann_status st = cpu->kmeans_fit(&kp, data, 0, centers);
    if (st == ANN_OK)
        st = cpu->kmeans_predict(m, centers, c, data, 0, lc);
    if (st != ANN_OK) {
        report(false, "%s: CPU fit/predict failed: %s", what, ann_last_error());
        goto out;
    }
    st = gpu->kmeans_predict(m, centers, c, data, 0, lg);
    if (st != ANN_OK) {
        report(false, "%s: CUDA predict failed: %s", what, ann_last_error());
        goto out;
    }
    {
        int64_t same = 0;
        for (int64_t i = 0; i < data->rows; i++)
            same += lc[i] == lg[i];
        double agree = (double)same / (double)data->rows;
        report(agree >= 0.999, "%s: labels agree on %.5f of %lld rows", what, agree, (long long)data->rows);
    }
out:
    free(centers);
    free(lc);
    free(lg);
}

/* ----------------------------- NN-Descent ----------------------------- */

static const int64_t NG = 20000, DG = 64;

/*
 * Bit-clustered u8 rows for hamming: `clusters` random codes of d bytes,
 * each row a code with every bit flipped with probability 0.1.
 */
static ann_matrix make_bits(int64_t n, int64_t d, int clusters, uint64_t seed)
{
    ann_matrix m;
    if (ann_matrix_alloc(&m, n, d, ANN_DTYPE_U8) != ANN_OK) {
        fprintf(stderr, "alloc: %s\n", ann_last_error());
        exit(1);
    }
    uint8_t *c = malloc((size_t)clusters * d);
    rng = seed * 0x9e3779b97f4a7c15ull + 3;
    for (int64_t i = 0; i < (int64_t)clusters * d; i++)
        c[i] = (uint8_t)(urand() * 256);
    for (int64_t i = 0; i < n; i++) {
        const int64_t cl = (int64_t)(urand() * clusters);
        uint8_t *row = ann_matrix_row(&m, i);
        for (int64_t j = 0; j < d; j++) {
            uint8_t v = c[cl * d + j];
            for (int b = 0; b < 8; b++)
                if (urand() < 0.1)
                    v ^= (uint8_t)(1u << b);
            row[j] = v;
        }
    }
    free(c);
    return m;
}

/* Element j of row i as a double (f32, f16, i8, u8). */
static double elem(const ann_matrix *x, int64_t i, int64_t j)
{
    const void *r = ann_matrix_row(x, i);
    switch (x->dtype) {
    case ANN_DTYPE_F32: return ((const float *)r)[j];
    case ANN_DTYPE_F16: return ann_f16_to_f32(((const uint16_t *)r)[j]);
    case ANN_DTYPE_I8: return ((const int8_t *)r)[j];
    default: return ((const uint8_t *)r)[j];
    }
}

/* Exact distance of data row b to query row a of q (same dtype and dim) in the returned convention of m. */
static double exact_dist_q(const ann_matrix *x, const ann_matrix *q, ann_metric m, int64_t b, int64_t a)
{
    const int64_t d = x->cols;
    double s = 0, aa = 0, bb = 0;
    for (int64_t j = 0; j < d; j++) {
        const double u = elem(q, a, j), v = elem(x, b, j);
        switch (m) {
        case ANN_METRIC_L1: s += fabs(u - v); break;
        case ANN_METRIC_INNER_PRODUCT: s += u * v; break;
        case ANN_METRIC_COSINE:
            s += u * v;
            aa += u * u;
            bb += v * v;
            break;
        default: s += (u - v) * (u - v); break;
        }
    }
    if (m == ANN_METRIC_EUCLIDEAN)
        return sqrt(s);
    if (m == ANN_METRIC_COSINE)
        return aa > 0 && bb > 0 ? 1 - s / (sqrt(aa) * sqrt(bb)) : 1;
    return s;
}

/* Exact distance of rows a and b in the returned convention of m (double). */
static double exact_dist(const ann_matrix *x, ann_metric m, int64_t a, int64_t b)
{
    if (m == ANN_METRIC_HAMMING) {
        const uint8_t *p = ann_matrix_row(x, a), *q = ann_matrix_row(x, b);
        int c = 0;
        for (int64_t j = 0; j < x->cols; j++)
            c += __builtin_popcount((unsigned)(p[j] ^ q[j]));
        return c;
    }
    return exact_dist_q(x, x, m, b, a);
}

/* The sample rows of a check: every (rows / count)-th row. */
static int64_t sample_row(int64_t rows, int64_t count, int64_t k)
{
    return count >= rows ? k : k * (rows / count);
}

/*
 * Hamming graph recall on `count` sample rows: the fraction of the graph's
 * entries whose distance is within the exact degree-th smallest distance
 * to another row (ties counted as hits, at most degree per row).
 */
static double hamming_recall(const ann_graph *g, const ann_matrix *x, int64_t count)
{
    const int64_t n = g->rows, deg = g->degree, maxd = 8 * x->cols;
    int64_t *hist = calloc((size_t)maxd + 1, sizeof(int64_t));
    int64_t hits = 0;
    if (count > n)
        count = n;
    for (int64_t k = 0; k < count; k++) {
        const int64_t i = sample_row(n, count, k);
        memset(hist, 0, ((size_t)maxd + 1) * sizeof(int64_t));
        for (int64_t j = 0; j < n; j++)
            if (j != i)
                hist[(int64_t)exact_dist(x, ANN_METRIC_HAMMING, i, j)]++;
        int64_t kth = 0, acc = 0;
        while (kth < maxd && acc + hist[kth] < deg)
            acc += hist[kth++];
        int64_t h = 0;
        for (int64_t a = 0; a < deg; a++)
            h += exact_dist(x, ANN_METRIC_HAMMING, i, g->ids[i * deg + a]) <= (double)kth;
        hits += h < deg ? h : deg;
    }
    free(hist);
    return (double)hits / ((double)count * (double)deg);
}

/* Graph recall: ann_graph_eval on 1000 sample rows, hamming_recall for hamming (-1 on error). */
static double graph_recall(const ann_graph *g, const ann_matrix *x)
{
    if (g->metric == ANN_METRIC_HAMMING)
        return hamming_recall(g, x, 1000);
    ann_exec ex = exec_on(ANN_DEVICE_CPU);
    double r = -1;
    if (ann_graph_eval(g, x, 1000, 7, &ex, &r) != ANN_OK) {
        fprintf(stderr, "  ann_graph_eval: %s\n", ann_last_error());
        return -1;
    }
    return r;
}

/*
 * Structural defects of a graph (0 = well formed): ids >= rows, the row
 * itself, duplicates in a row, rows out of order by distance (ascending;
 * descending +dot for inner product), and, on `count` sample rows,
 * distances that differ from exact ones by more than 1e-3 relative.
 * The first few are described on stderr.
 */
static int64_t graph_defects(const ann_graph *g, const ann_matrix *x, int64_t count, const char *what)
{
    const int64_t n = g->rows, deg = g->degree;
    const bool desc = g->metric == ANN_METRIC_INNER_PRODUCT;
    int64_t bad = 0;
    uint32_t *seen = calloc((size_t)n, sizeof(uint32_t));
    for (int64_t i = 0; i < n; i++) {
        const uint32_t *r = g->ids + i * deg;
        const float *dr = g->distances ? g->distances + i * deg : NULL;
        for (int64_t a = 0; a < deg; a++) {
            const char *why = NULL;
            if (r[a] >= (uint64_t)n)
                why = "id out of range";
            else if (r[a] == (uint64_t)i)
                why = "the row itself";
            else if (seen[r[a]] == (uint32_t)i + 1)
                why = "duplicate";
            else if (dr && !isfinite(dr[a]))
                why = "distance not finite";
            else if (dr && a > 0 && (desc ? dr[a] > dr[a - 1] : dr[a] < dr[a - 1]))
                why = "out of order";
            if (r[a] < (uint64_t)n)
                seen[r[a]] = (uint32_t)i + 1;
            if (why && bad++ < 3)
                fprintf(stderr, "  %s: row %lld, rank %lld: id %u: %s\n", what, (long long)i, (long long)a, r[a],
                        why);
        }
    }
    free(seen);
    if (!g->distances)
        return bad;
    if (count > n)
        count = n;
    for (int64_t k = 0; k < count; k++) {
        const int64_t i = sample_row(n, count, k);
        for (int64_t a = 0; a < deg; a++) {
            if (g->ids[i * deg + a] >= (uint64_t)n)
                continue;
            const double e = exact_dist(x, g->metric, i, g->ids[i * deg + a]);
            const double v = g->distances[i * deg + a];
            if (fabs(v - e) > 1e-3 * fmax(1.0, fabs(e)) && bad++ < 3)
                fprintf(stderr, "  %s: row %lld, rank %lld: id %u: distance %.9g, exact %.9g\n", what, (long long)i,
                        (long long)a, g->ids[i * deg + a], v, e);
        }
    }
    return bad;
}

static ann_graph *build_graph(const ann_nn_descent_params *p, const ann_matrix *x, ann_device dev, double *secs,
                              const char *what)
{
    ann_exec ex = exec_on(dev);
    ann_graph *g = NULL;
    const double t0 = now();
    const ann_status st = ann_graph_build(ANN_ALGO_NN_DESCENT, p, x, &ex, &g);
    *secs = now() - t0;
    if (st != ANN_OK) {
        report(false, "%s: build on %s failed: %s", what, ann_device_name(dev), ann_last_error());
        return NULL;
    }
    if (ex.used != dev) {
        report(false, "%s: asked for %s, ran on %s", what, ann_device_name(dev), ann_device_name(ex.used));
        ann_graph_free(g);
        return NULL;
    }
    return g;
}

/*
 * One NN-Descent consistency check: graphs of x built on the CPU and on
 * `other` with p, recall within 0.01 of each other (and at least
 * min_recall on both), the other one well formed.  With repeat, a second
 * build on `other` is compared with the first (printed only).
 */
static void check_nnd(const char *label, const ann_matrix *x, const ann_nn_descent_params *p, double min_recall,
                      bool repeat)
{
    char what[160];
    snprintf(what, sizeof what, "nn_descent %s %s %lldx%lld degree %d/%d%s", ann_dtype_name(x->dtype),
             ann_metric_name(p->metric), (long long)x->rows, (long long)x->cols, (int)p->graph_degree,
             (int)p->intermediate_graph_degree,
             p->dist_comp_dtype == ANN_DIST_COMP_FP16 ? " fp16" : p->dist_comp_dtype == ANN_DIST_COMP_FP32 ? " fp32" : "");
    if (label && *label) {
        const size_t l = strlen(what);
        snprintf(what + l, sizeof what - l, " (%s)", label);
    }
    double tc = 0, tg = 0, tg2 = 0;
    ann_graph *gc = build_graph(p, x, ANN_DEVICE_CPU, &tc, what);
    ann_graph *gg = gc ? build_graph(p, x, other, &tg, what) : NULL;
    if (gc && gg) {
        const double rc = graph_recall(gc, x), rg = graph_recall(gg, x);
        const int64_t bad = graph_defects(gg, x, 200, what);
        char again[64] = "";
        if (repeat) {
            ann_graph *g2 = build_graph(p, x, other, &tg2, what);
            if (g2) {
                const size_t b = (size_t)gg->rows * gg->degree;
                const bool same = memcmp(gg->ids, g2->ids, b * 4) == 0 &&
                                  (!gg->distances || memcmp(gg->distances, g2->distances, b * 4) == 0);
                snprintf(again, sizeof again, ", repeat %s (%.2f s)", same ? "identical" : "differs", tg2);
            }
            ann_graph_free(g2);
        }
        report(rc >= 0 && rg >= 0 && fabs(rc - rg) <= 0.01 && rc >= min_recall && rg >= min_recall && bad == 0,
               "%s: graph recall cpu %.4f cuda %.4f, %lld defects (cpu %.2f s, cuda %.2f s%s)", what, rc, rg,
               (long long)bad, tc, tg, again);
    }
    ann_graph_free(gc);
    ann_graph_free(gg);
}

static void check_nnd_all(bool all)
{
    ann_nn_descent_params p;
    /* the main set: default degrees on 20000 x 64 */
    const ann_dtype dts[] = {ANN_DTYPE_F32, ANN_DTYPE_U8};
    const ann_metric ms[] = {ANN_METRIC_SQEUCLIDEAN, ANN_METRIC_INNER_PRODUCT, ANN_METRIC_COSINE};
    for (size_t a = 0; a < 2; a++) {
        ann_matrix x = make_matrix(NG, DG, dts[a], 11 + a);
        for (size_t b = 0; b < 3; b++) {
            ann_nn_descent_params_init(&p);
            p.metric = ms[b];
            check_nnd("", &x, &p, 0.9, a == 0 && b == 0);
        }
        if (dts[a] == ANN_DTYPE_F32 && all) {
            ann_nn_descent_params_init(&p);
            p.metric = ANN_METRIC_L1;
            check_nnd("", &x, &p, 0.9, false);
        }
        ann_matrix_release(&x);
    }
    {
        ann_matrix x = make_bits(NG, DG, 1000, 13);
        ann_nn_descent_params_init(&p);
        p.metric = ANN_METRIC_HAMMING;
        check_nnd("bit codes", &x, &p, 0.9, false);
        ann_matrix_release(&x);
    }
    /* shapes: random initial graph with empty slots, odd degree in fp32, fp16 on few dims */
    {
        ann_matrix x = make_matrix(50, DG, ANN_DTYPE_U8, 21);
        ann_nn_descent_params_init(&p);
        p.metric = ANN_METRIC_COSINE;
        p.graph_degree = 20;
        check_nnd("random init, 49 of 64 slots", &x, &p, 0.98, false);
        ann_matrix_release(&x);
    }
    {
        ann_matrix x = make_matrix(1000, DG, ANN_DTYPE_F32, 22);
        ann_nn_descent_params_init(&p);
        p.metric = ANN_METRIC_EUCLIDEAN;
        p.graph_degree = 16;
        p.intermediate_graph_degree = 40;
        p.dist_comp_dtype = ANN_DIST_COMP_FP32;
        check_nnd("", &x, &p, 0.9, false);
        ann_matrix_release(&x);
    }
    {
        ann_matrix x = make_matrix(5000, 12, ANN_DTYPE_F32, 23);
        ann_nn_descent_params_init(&p);
        p.graph_degree = 32;
        p.intermediate_graph_degree = 64;
        p.dist_comp_dtype = ANN_DIST_COMP_FP16;
        check_nnd("", &x, &p, 0.9, false);
        ann_matrix_release(&x);
    }
}

/* ------------------------------- CAGRA -------------------------------- */

/* One CAGRA search setting (ann_cagra_search_params fields; 0 = default). */
typedef struct cagra_case {
    const char *label;
    int32_t algo;         /* ann_cagra_search_algo */
    int32_t itopk, sw, team, hashmap, max_queries, nrs, block;
    bool filtered;        /* search with the set's filter */
    int64_t k;
} cagra_case;

/* A CAGRA index and what its checks share. */
typedef struct cagra_set {
    const char *name;
    ann_metric metric;
    const ann_matrix *data, *q;
    ann_index *ix, *bf;   /* CAGRA (built on the CPU) and brute force for the truth */
    uint32_t *bits;       /* filter: about 70 % of the rows kept */
    int64_t n_bits;
    bool exact_keys;      /* integer data with L2 or inner product: keys bit-identical on both backends */
} cagra_set;

static const char *cagra_algo_name(int32_t a)
{
    return a == ANN_CAGRA_SEARCH_SINGLE_CTA ? "single_cta"
         : a == ANN_CAGRA_SEARCH_MULTI_CTA  ? "multi_cta"
         : a == ANN_CAGRA_SEARCH_MULTI_KERNEL ? "multi_kernel"
                                              : "auto";
}

/* Search (filtered when bits) on dev; false (reported) on error or when another backend ran. */
static bool search_filtered(const ann_index *ix, const void *sp, const ann_matrix *q, int64_t k, const uint32_t *bits,
                            int64_t n_bits, ann_device dev, int64_t *ids, float *dist, double *secs, const char *what)
{
    if (!bits)
        return search(ix, sp, q, k, dev, ids, dist, secs, what);
    ann_exec ex = exec_on(dev);
    const double t0 = now();
    const ann_status st = ann_index_search_filtered(ix, sp, q, k, bits, n_bits, &ex, ids, dist);
    if (secs)
        *secs = now() - t0;
    if (st != ANN_OK) {
        report(false, "%s: filtered search on %s failed: %s", what, ann_device_name(dev), ann_last_error());
        return false;
    }
    if (ex.used != dev) {
        report(false, "%s: asked for %s, ran on %s", what, ann_device_name(dev), ann_device_name(ex.used));
        return false;
    }
    return true;
}

static bool bit_kept(const uint32_t *bits, int64_t n_bits, int64_t i)
{
    return !bits || (i >= 0 && i < n_bits && ((bits[i >> 5] >> (i & 31)) & 1u));
}

/*
 * Defects of CAGRA results (0 = none): ids outside [-1, rows), -1 without
 * the worst distance, a row twice in one query, a filtered row, results
 * out of order, distances that differ from the exact ones (recomputed in
 * double) by more than 1e-4 x max(1, |exact|).  The first few go to stderr.
 */
static int64_t cagra_defects(const cagra_set *s, const int64_t *ids, const float *dist, int64_t nq, int64_t k,
                             const uint32_t *bits, const char *what)
{
    const int64_t rows = s->data->rows;
    const float worst = ann_metric_worst(s->metric);
    const bool desc = s->metric == ANN_METRIC_INNER_PRODUCT;
    int64_t bad = 0;
    for (int64_t i = 0; i < nq; i++) {
        for (int64_t j = 0; j < k; j++) {
            const int64_t id = ids[i * k + j];
            const float d = dist[i * k + j];
            const char *why = NULL;
            double e = 0;
            if (id < -1 || id >= rows)
                why = "id out of range";
            else if (id == -1 && d != worst)
                why = "empty slot without the worst distance";
            else if (id >= 0 && !bit_kept(bits, s->n_bits, id))
                why = "filtered row returned";
            if (!why && id >= 0) {
                for (int64_t t = 0; t < j; t++)
                    if (ids[i * k + t] == id)
                        why = "duplicate";
                if (!why && j > 0 && ids[i * k + j - 1] >= 0 &&
                    (desc ? d > dist[i * k + j - 1] : d < dist[i * k + j - 1]))
                    why = "out of order";
                if (!why) {
                    e = exact_dist_q(s->data, s->q, s->metric, id, i);
                    if (fabs(d - e) > 1e-4 * fmax(1.0, fabs(e)))
                        why = "distance differs from the exact one";
                }
            }
            if (why && bad++ < 3)
                fprintf(stderr, "  %s: query %lld rank %lld id %lld distance %.9g (exact %.9g): %s\n", what,
                        (long long)i, (long long)j, (long long)id, d, e, why);
        }
    }
    return bad;
}

/*
 * One setting on one set: CPU and CUDA with equal parameters; recall@k
 * against the exact (filtered) neighbours within 0.005 (multi_cta, and
 * auto, which may pick it: at most 0.005 below the CPU's, since its
 * traversal differs), no defects, and for single_cta / multi_kernel on
 * integer data (bit-identical keys) the CPU's exact ids and distances for
 * every query; elsewhere the share of identical queries is printed.
 */
static void check_cagra_case(const cagra_set *s, const cagra_case *c)
{
    char what[200];
    const int64_t nq = s->q->rows, k = c->k;
    ann_cagra_search_params sp;
    ann_cagra_search_params_init(&sp);
    sp.algo = c->algo;
    if (c->itopk)
        sp.itopk_size = c->itopk;
    if (c->sw)
        sp.search_width = c->sw;
    sp.team_size = c->team;
    sp.hashmap_mode = c->hashmap;
    sp.max_queries = c->max_queries;
    sp.thread_block_size = c->block;
    if (c->nrs)
        sp.num_random_samplings = c->nrs;
    snprintf(what, sizeof what, "cagra %s %s %s%s itopk=%d sw=%d team=%d k=%lld%s%s", s->name,
             ann_metric_name(s->metric), cagra_algo_name(c->algo), c->filtered ? " filtered" : "",
             (int)sp.itopk_size, (int)sp.search_width, (int)sp.team_size, (long long)k, c->label ? " " : "",
             c->label ? c->label : "");
    const uint32_t *bits = c->filtered ? s->bits : NULL;
    int64_t *truth = malloc((size_t)nq * k * 8), *ic = malloc((size_t)nq * k * 8), *ig = malloc((size_t)nq * k * 8);
    float *dd = malloc((size_t)nq * k * 4), *dc = malloc((size_t)nq * k * 4), *dg = malloc((size_t)nq * k * 4);
    double tc = 0, tg = 0;
    if (search_filtered(s->bf, NULL, s->q, k, bits, s->n_bits, ANN_DEVICE_CPU, truth, dd, NULL, what) &&
        search_filtered(s->ix, &sp, s->q, k, bits, s->n_bits, ANN_DEVICE_CPU, ic, dc, &tc, what) &&
        search_filtered(s->ix, &sp, s->q, k, bits, s->n_bits, other, ig, dg, &tg, what)) {
        const double rc = recall(ic, truth, nq, k), rg = recall(ig, truth, nq, k);
        const int64_t bad = cagra_defects(s, ig, dg, nq, k, bits, what);
        int64_t same = 0;
        const bool must_match = s->exact_keys && c->algo != ANN_CAGRA_SEARCH_MULTI_CTA && c->algo != ANN_CAGRA_SEARCH_AUTO;
        for (int64_t i = 0; i < nq; i++)
            same += memcmp(ic + i * k, ig + i * k, (size_t)k * 8) == 0 &&
                    (!must_match || memcmp(dc + i * k, dg + i * k, (size_t)k * 4) == 0);
        const bool one_sided = c->algo == ANN_CAGRA_SEARCH_MULTI_CTA || c->algo == ANN_CAGRA_SEARCH_AUTO;
        const bool recall_ok = rc >= 0 && rg >= 0 && (one_sided ? rg >= rc - 0.005 : fabs(rg - rc) <= 0.005);
        report(recall_ok && bad == 0 && (!must_match || same == nq),
               "%s: recall cpu %.4f cuda %.4f, %s %lld/%lld%s, %lld defects (cpu %.3f s, cuda %.3f s)", what, rc,
               rg, must_match ? "identical queries" : "queries with the same ids", (long long)same, (long long)nq,
               must_match ? " (required)" : "", (long long)bad, tc, tg);
    }
    free(truth);
    free(ic);
    free(ig);
    free(dd);
    free(dc);
    free(dg);
}

/*
 * A CAGRA set: n x d rows of dtype dt (seeded clustered data), nq queries,
 * the index built on the CPU (graph degree 32, intermediate 64), then each
 * of the n_cases settings checked.
 */
static void check_cagra_set(const char *name, ann_dtype dt, ann_metric m, int64_t n, int64_t d, int64_t nq,
                            uint64_t seed, const cagra_case *cases, size_t n_cases)
{
    ann_matrix data = make_matrix(n, d, dt, seed), q = make_matrix(nq, d, dt, seed + 50);
    cagra_set s;
    memset(&s, 0, sizeof s);
    s.name = name;
    s.metric = m;
    s.data = &data;
    s.q = &q;
    s.exact_keys = (dt == ANN_DTYPE_U8 || dt == ANN_DTYPE_I8) &&
                   (m == ANN_METRIC_SQEUCLIDEAN || m == ANN_METRIC_EUCLIDEAN || m == ANN_METRIC_INNER_PRODUCT);
    ann_cagra_params cp;
    ann_cagra_params_init(&cp);
    cp.metric = m;
    cp.graph_degree = 32;
    cp.intermediate_graph_degree = 64;
    ann_brute_force_params bp;
    ann_brute_force_params_init(&bp);
    bp.metric = m;
    ann_exec ex = exec_on(ANN_DEVICE_CPU);
    const double t0 = now();
    if (ann_index_build(ANN_ALGO_CAGRA, &cp, &data, &ex, &s.ix) != ANN_OK ||
        ann_index_build(ANN_ALGO_BRUTE_FORCE, &bp, &data, &ex, &s.bf) != ANN_OK) {
        report(false, "cagra %s %s: build failed: %s", name, ann_metric_name(m), ann_last_error());
        goto out;
    }
    printf("cagra %s %s: %lld x %lld %s, %lld queries, index built on the CPU in %.2f s\n", name,
           ann_metric_name(m), (long long)n, (long long)d, ann_dtype_name(dt), (long long)nq, now() - t0);
    s.n_bits = n;
    s.bits = calloc((size_t)(n + 31) / 32, sizeof(uint32_t));
    rng = seed * 31 + 5;
    for (int64_t i = 0; i < n; i++)
        if (urand() < 0.7)
            s.bits[i >> 5] |= 1u << (i & 31);
    for (size_t i = 0; i < n_cases; i++)
        check_cagra_case(&s, &cases[i]);
out:
    ann_index_free(s.ix);
    ann_index_free(s.bf);
    free(s.bits);
    ann_matrix_release(&data);
    ann_matrix_release(&q);
}

/* A second single-CTA search (device cache reused) returns the same bytes. */
static void check_cagra_repeat(void)
{
    ann_matrix data = make_matrix(20000, 64, ANN_DTYPE_F32, 61), q = make_matrix(1000, 64, ANN_DTYPE_F32, 62);
    ann_cagra_params cp;
    ann_cagra_params_init(&cp);
    cp.graph_degree = 32;
    cp.intermediate_graph_degree = 64;
    ann_exec ex = exec_on(ANN_DEVICE_CPU);
    ann_index *ix = NULL;
    const int64_t k = 10, nq = q.rows;
    int64_t *a = malloc((size_t)nq * k * 8), *b = malloc((size_t)nq * k * 8);
    float *da = malloc((size_t)nq * k * 4), *db = malloc((size_t)nq * k * 4);
    ann_cagra_search_params sp;
    ann_cagra_search_params_init(&sp);
    sp.algo = ANN_CAGRA_SEARCH_SINGLE_CTA;
    double t1 = 0, t2 = 0;
    if (ann_index_build(ANN_ALGO_CAGRA, &cp, &data, &ex, &ix) != ANN_OK) {
        report(false, "cagra repeat: build failed: %s", ann_last_error());
    } else if (search(ix, &sp, &q, k, other, a, da, &t1, "cagra repeat") &&
               search(ix, &sp, &q, k, other, b, db, &t2, "cagra repeat")) {
        const bool same = memcmp(a, b, (size_t)nq * k * 8) == 0 && memcmp(da, db, (size_t)nq * k * 4) == 0;
        report(same, "cagra repeat f32 sqeuclidean single_cta: second search %s (first %.3f s with the upload, "
                     "second %.3f s)", same ? "identical" : "DIFFERS", t1, t2);
    }
    ann_index_free(ix);
    free(a);
    free(b);
    free(da);
    free(db);
    ann_matrix_release(&data);
    ann_matrix_release(&q);
}

static void check_cagra_all(bool all)
{
    enum { S = ANN_CAGRA_SEARCH_SINGLE_CTA, M = ANN_CAGRA_SEARCH_MULTI_CTA, K = ANN_CAGRA_SEARCH_MULTI_KERNEL,
           A = ANN_CAGRA_SEARCH_AUTO, HASH = ANN_CAGRA_HASHMAP_HASH, SMALL = ANN_CAGRA_HASHMAP_SMALL };
    /* the main set: every algorithm and shape knob */
    static const cagra_case main_cases[] = {
        {NULL, S, 0, 0, 0, 0, 0, 0, 0, false, 10},
        {"small table", S, 128, 2, 8, SMALL, 0, 0, 0, false, 10},
        {"hash table", S, 256, 4, 16, HASH, 0, 0, 0, false, 10},
        {"4 trials, batches of 100, block 256", S, 32, 1, 4, 0, 100, 4, 256, false, 10},
        {NULL, S, 0, 0, 32, 0, 0, 0, 0, false, 100},
        {NULL, S, 0, 0, 0, 0, 0, 0, 0, true, 10},
        {NULL, M, 0, 0, 0, 0, 0, 0, 0, false, 10},
        {NULL, M, 256, 1, 32, 0, 0, 0, 0, false, 10},
        {"search_width 4", M, 128, 4, 8, 0, 0, 0, 0, false, 10},
        {NULL, M, 0, 0, 0, 0, 0, 0, 0, true, 10},
        {NULL, M, 256, 0, 0, 0, 0, 0, 0, false, 100}, /* k near n_cta x 32 would starve multi_cta */
        {NULL, K, 0, 0, 0, 0, 0, 0, 0, false, 10},
        {"small table", K, 128, 4, 16, SMALL, 0, 0, 0, false, 10},
        {NULL, K, 0, 2, 0, 0, 0, 0, 0, true, 10},
        {"batch 1000 (single_cta)", A, 0, 0, 0, 0, 0, 0, 0, false, 10},
        {"batches of 64 (multi_cta)", A, 0, 0, 0, 0, 64, 0, 0, false, 10},
    };
    /* other metrics and dtypes: each algorithm, and a filtered single_cta / multi_kernel */
    static const cagra_case few[] = {
        {NULL, S, 0, 0, 0, 0, 0, 0, 0, false, 10},
        {NULL, M, 0, 0, 0, 0, 0, 0, 0, false, 10},
        {NULL, K, 0, 0, 0, 0, 0, 0, 0, false, 10},
        {NULL, S, 0, 0, 0, 0, 0, 0, 0, true, 10},
        {NULL, K, 96, 2, 0, SMALL, 0, 0, 0, true, 10},
    };
    /* fewer rows than the list: padding with -1 / worst */
    static const cagra_case tiny[] = {
        {NULL, S, 0, 0, 0, 0, 0, 0, 0, false, 64},
        {NULL, M, 0, 0, 0, 0, 0, 0, 0, false, 64},
        {NULL, K, 0, 0, 0, 0, 0, 0, 0, false, 64},
    };
    const size_t nf = sizeof few / sizeof few[0];
    check_cagra_set("main", ANN_DTYPE_F32, ANN_METRIC_SQEUCLIDEAN, 20000, 64, 1000, 71, main_cases,
                    sizeof main_cases / sizeof main_cases[0]);
    check_cagra_set("u8", ANN_DTYPE_U8, ANN_METRIC_SQEUCLIDEAN, 5000, 64, 500, 72, few, nf);
    check_cagra_repeat();
    if (!all)
        return;
    check_cagra_set("f32", ANN_DTYPE_F32, ANN_METRIC_INNER_PRODUCT, 20000, 64, 1000, 73, few, nf);
    check_cagra_set("f32", ANN_DTYPE_F32, ANN_METRIC_COSINE, 20000, 64, 1000, 74, few, nf);
    check_cagra_set("f32", ANN_DTYPE_F32, ANN_METRIC_EUCLIDEAN, 5000, 64, 500, 75, few, 3);
    check_cagra_set("f32", ANN_DTYPE_F32, ANN_METRIC_L1, 5000, 64, 500, 76, few, 3);
    check_cagra_set("u8", ANN_DTYPE_U8, ANN_METRIC_INNER_PRODUCT, 5000, 64, 500, 77, few, nf);
    check_cagra_set("u8", ANN_DTYPE_U8, ANN_METRIC_COSINE, 5000, 64, 500, 78, few, 3);
    check_cagra_set("i8", ANN_DTYPE_I8, ANN_METRIC_SQEUCLIDEAN, 5000, 64, 500, 79, few, nf);
    check_cagra_set("f16", ANN_DTYPE_F16, ANN_METRIC_SQEUCLIDEAN, 5000, 64, 500, 80, few, nf);
    check_cagra_set("f16", ANN_DTYPE_F16, ANN_METRIC_INNER_PRODUCT, 5000, 64, 500, 81, few, 3);
    check_cagra_set("tiny", ANN_DTYPE_U8, ANN_METRIC_SQEUCLIDEAN, 50, 64, 50, 82, tiny,
                    sizeof tiny / sizeof tiny[0]);
}

/* ------------------------------- IVF-PQ ------------------------------- */

/* An IVF-PQ graph of x built with p on dev (NULL, reported, on error or when another backend ran). */
static ann_graph *build_pq_graph(const ann_ivf_pq_graph_params *p, const ann_matrix *x, ann_device dev,
                                 double *secs, const char *what)
{
    ann_exec ex = exec_on(dev);
    ann_graph *g = NULL;
    const double t0 = now();
    const ann_status st = ann_graph_build(ANN_ALGO_IVF_PQ, p, x, &ex, &g);
    *secs = now() - t0;
    if (st != ANN_OK) {
        report(false, "%s: build on %s failed: %s", what, ann_device_name(dev), ann_last_error());
        return NULL;
    }
    if (ex.used != dev) {
        report(false, "%s: asked for %s, ran on %s", what, ann_device_name(dev), ann_device_name(ex.used));
        ann_graph_free(g);
        return NULL;
    }
    return g;
}

/*
 * One IVF-PQ consistency check: graphs of x built with p on the CPU and
 * on `other` (the candidate search there), recall within 0.01 of each
 * other and at least min_recall on both, the other one well formed.
 * Printed too: the share of rows with identical ids, and whether a second
 * build on `other` (a fresh device cache) is identical.
 */
static void check_ivf_pq(const char *label, const ann_matrix *x, const ann_ivf_pq_graph_params *p,
                         double min_recall)
{
    char what[160];
    snprintf(what, sizeof what, "ivf_pq %s %s %lldx%lld degree %d%s%s", ann_dtype_name(x->dtype),
             ann_metric_name(p->index.metric), (long long)x->rows, (long long)x->cols, (int)p->graph_degree,
             label && *label ? ", " : "", label ? label : "");
    double tc = 0, tg = 0, tg2 = 0;
    ann_graph *gc = build_pq_graph(p, x, ANN_DEVICE_CPU, &tc, what);
    ann_graph *gg = gc ? build_pq_graph(p, x, other, &tg, what) : NULL;
    if (gc && gg) {
        const double rc = graph_recall(gc, x), rg = graph_recall(gg, x);
        const int64_t bad = graph_defects(gg, x, 200, what);
        const int64_t n = gc->rows, deg = gc->degree;
        int64_t same = 0;
        for (int64_t i = 0; i < n; i++)
            same += memcmp(gc->ids + i * deg, gg->ids + i * deg, (size_t)deg * sizeof(uint32_t)) == 0;
        char again[64] = "";
        ann_graph *g2 = build_pq_graph(p, x, other, &tg2, what);
        if (g2) {
            const bool ident = memcmp(gg->ids, g2->ids, (size_t)n * deg * sizeof(uint32_t)) == 0;
            snprintf(again, sizeof again, ", repeat %s (%.2f s)", ident ? "identical" : "differs", tg2);
        }
        ann_graph_free(g2);
        report(rc >= 0 && rg >= 0 && fabs(rc - rg) <= 0.01 && rc >= min_recall && rg >= min_recall && bad == 0,
               "%s: graph recall cpu %.4f cuda %.4f, rows identical %.2f %%, %lld defects (cpu %.2f s, cuda %.2f s%s)",
               what, rc, rg, 100.0 * (double)same / (double)n, (long long)bad, tc, tg, again);
    }
    ann_graph_free(gc);
    ann_graph_free(gg);
}

static void check_ivf_pq_all(bool all)
{
    ann_ivf_pq_graph_params p;
    const ann_metric ms[] = {ANN_METRIC_SQEUCLIDEAN, ANN_METRIC_COSINE, ANN_METRIC_INNER_PRODUCT};
    /* the preset reaches about 0.63 to 0.72 on these 1000-cluster rows (CPU); the floor catches garbage */
    ann_matrix x = make_matrix(NG, DG, ANN_DTYPE_F32, 31);
    for (size_t b = 0; b < 3; b++) {
        ann_ivf_pq_graph_params_init(&p);
        p.index.metric = ms[b];
        check_ivf_pq("", &x, &p, 0.5);
    }
    if (all) { /* 8-bit codes (a LUT of 256 entries per subspace) after a forced random rotation */
        ann_ivf_pq_graph_params_init(&p);
        p.index.pq_bits = 8;
        p.index.pq_dim = 16;
        p.index.force_random_rotation = true;
        check_ivf_pq("pq_bits 8, pq_dim 16, random rotation", &x, &p, 0.5);
    }
    ann_matrix_release(&x);
    if (all) {
        ann_matrix u = make_matrix(NG, DG, ANN_DTYPE_U8, 32);
        ann_ivf_pq_graph_params_init(&p);
        check_ivf_pq("", &u, &p, 0.5);
        ann_matrix_release(&u);
    }
}

/* -------------------------------- main -------------------------------- */

int main(void)
{
    ann_device got;
    const char *self = getenv("ANNKIT_GPU_TEST_SELF");
    if (self && *self && strcmp(self, "0") != 0) {
        other = ANN_DEVICE_CPU;
        printf("self-test: comparing the CPU with itself (ANNKIT_GPU_TEST_SELF)\n");
    } else if (ann_backend_resolve(ANN_DEVICE_CUDA, &got) != ANN_OK) {
        printf("SKIP: CUDA backend unavailable: %s\n", ann_last_error());
        return 77;
    }
    ann_backend_report br;
    ann_backend_probe(true, &br);
    printf("cuda: %s\n", br.cuda_detail);
    printf("cpu:  %s\n", br.cpu_detail);

    const char *quick = getenv("ANNKIT_GPU_TEST_QUICK");
    const bool all = !(quick && *quick && strcmp(quick, "0") != 0);
    const char *only = getenv("ANNKIT_GPU_TEST_ONLY");
    const bool do_search = !(only && *only) || strcmp(only, "search") == 0;
    const bool do_nnd = !(only && *only) || strcmp(only, "nnd") == 0;
    const bool do_cagra = !(only && *only) || strcmp(only, "cagra") == 0;
    const bool do_ivf_pq = !(only && *only) || strcmp(only, "ivf_pq") == 0;
    const ann_dtype dtypes[] = {ANN_DTYPE_F32, ANN_DTYPE_U8, ANN_DTYPE_F16, ANN_DTYPE_I8};
    const ann_metric metrics[] = {ANN_METRIC_SQEUCLIDEAN, ANN_METRIC_EUCLIDEAN, ANN_METRIC_INNER_PRODUCT,
                                  ANN_METRIC_COSINE};
    const double t0 = now();
    for (size_t a = 0; do_search && a < (all ? 4u : 2u); a++) {
        const ann_dtype dt = dtypes[a];
        ann_matrix data = make_matrix(N, D, dt, 1 + a);
        ann_matrix q = make_matrix(NQ, D, dt, 100 + a);
        for (size_t b = 0; b < 4; b++) {
            const ann_metric m = metrics[b];
            check_bf(dt, m, &data, &q);
            check_padding(dt, m, &data, &q);
            check_ivf(dt, m, &data, &q, false);
            check_predict(dt, m, &data);
        }
        if (dt == ANN_DTYPE_F32) {
            check_ivf(dt, ANN_METRIC_SQEUCLIDEAN, &data, &q, true);
            check_ivf(dt, ANN_METRIC_COSINE, &data, &q, true);
        }
        ann_matrix_release(&data);
        ann_matrix_release(&q);
    }
    if (do_nnd)
        check_nnd_all(all);
    if (do_cagra)
        check_cagra_all(all);
    if (do_ivf_pq)
        check_ivf_pq_all(all);
    printf("%d checks, %d failed (%.1f s)\n", checks, failures, now() - t0);
    return failures ? 1 : 0;
}
