/*
 * bench_gpu.c - GPU-side benchmark of the CUDA backend (not a test; run by
 * tests/gpu/run-on-device.sh on a machine with a GPU).
 *
 * Synthetic clustered f32 data (1M x 128 by default), 10000 queries, k = 10:
 *  - brute force on CUDA: QPS and the effective GEMM rate
 *    (2 x queries x rows x dim flops over the whole search time; DESIGN.md
 *    asks for >= 80 % of the cuBLAS SGEMM rate), and CPU QPS on a subset of
 *    the queries for the speedup;
 *  - IVF-Flat (1024 lists), built once with GPU k-means (the CPU build is
 *    timed too), searched on CUDA and on the CPU at n_probes 8, 32, 128:
 *    QPS, recall@10 against the brute-force results, speedup;
 *  - NN-Descent graphs (ann_graph_build, intermediate degree = 2 x degree,
 *    other parameters default) at degree 32 and 64: seconds on CUDA for
 *    all rows, graph recall on 1000 sample rows (ann_graph_eval, exact
 *    neighbours by brute force on CUDA), and CUDA and CPU seconds and
 *    recall on the first 100k rows for the speed ratio at equal size
 *    (plus the CPU time scaled linearly to all rows against the CUDA
 *    time, an estimate).
 *  - CAGRA (graph degree 32, intermediate 64): built with --device cuda
 *    (NN-Descent on CUDA; exact re-sort and optimize on the CPU, all
 *    cores), build seconds reported; exact neighbours by brute force on
 *    CUDA; a sweep of (itopk_size, search_width) searched on CUDA (all
 *    queries in one call, so batch = queries = 10000 by default,
 *    algorithm auto) and on the CPU (all cores): QPS and recall@10 per
 *    setting, then for recall 0.90, 0.95 and 0.99 the QPS of each device
 *    on its recall/QPS frontier (linear interpolation between the frontier
 *    points around the target; "not reached" when no setting gets there)
 *    and the CUDA/CPU ratio.
 * Output: one line per figure, "bench NAME VALUE UNIT".  Exits 77 when the
 * CUDA backend cannot run.
 *
 * Environment: ANNKIT_BENCH_ROWS, ANNKIT_BENCH_QUERIES override the sizes;
 * ANNKIT_BENCH_SKIP_CPU_BUILD=1 skips the CPU IVF build;
 * ANNKIT_BENCH_NND_CPU_ROWS (default 100000) sizes the NN-Descent subset
 * (0 skips it); ANNKIT_BENCH_ONLY=search, =nnd or =cagra runs only the
 * search, the NN-Descent or the CAGRA figures.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ann/ann.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng = 88172645463325252ull;
static inline uint64_t next_u64(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static inline float urand(void)
{
    return (float)(next_u64() >> 40) * (1.0f / 16777216.0f);
}

/* Rows near one of `clusters` centers; centers from a fixed stream so queries share them. */
static float *make_data(int64_t n, int64_t d, int clusters, uint64_t seed)
{
    float *x = malloc((size_t)n * d * sizeof(float));
    float *c = malloc((size_t)clusters * d * sizeof(float));
    if (!x || !c) {
        fprintf(stderr, "bench_gpu: out of memory for %lld x %lld\n", (long long)n, (long long)d);
        exit(1);
    }
    rng = 12345;
    for (int64_t i = 0; i < (int64_t)clusters * d; i++)
        c[i] = 2 * urand() - 1;
    rng = seed * 0x9e3779b97f4a7c15ull + 7;
    for (int64_t i = 0; i < n; i++) {
        const float *ci = c + (int64_t)(next_u64() % (uint64_t)clusters) * d;
        for (int64_t j = 0; j < d; j++)
            x[i * d + j] = ci[j] + 0.6f * (urand() + urand() + urand() - 1.5f);
    }
    free(c);
    return x;
}

static int64_t env_int(const char *name, int64_t def)
{
    const char *v = getenv(name);
    return v && *v ? atoll(v) : def;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_gpu: %s: %s\n", what, ann_last_error());
    exit(1);
}

/* Best wall time of `reps` searches. */
static double time_search(const ann_index *ix, const void *sp, const ann_matrix *q, int64_t k, ann_device dev,
                          int reps, int64_t *ids, float *dist)
{
    double best = INFINITY;
    for (int r = 0; r < reps; r++) {
        ann_exec ex;
        ann_exec_init(&ex);
        ex.device = dev;
        double t0 = now();
        if (ann_index_search(ix, sp, q, k, &ex, ids, dist) != ANN_OK)
            die("search");
        double t = now() - t0;
        if (ex.used != dev) {
            fprintf(stderr, "bench_gpu: asked for %s, ran on %s\n", ann_device_name(dev), ann_device_name(ex.used));
            exit(1);
        }
        best = t < best ? t : best;
    }
    return best;
}

static double recall_vs(const int64_t *found, const int64_t *truth, int64_t nq, int64_t k)
{
    ann_matrix t = ann_matrix_view((void *)truth, nq, k, ANN_DTYPE_I64);
    double r = -1;
    if (ann_recall_ids(found, nq, k, &t, &r) != ANN_OK)
        die("recall");
    return r;
}

/* Brute force and IVF-Flat on CUDA and the CPU (the figures listed at the top). */
static void bench_search(const ann_matrix *data_, const ann_matrix *q_, int64_t k)
{
    const ann_matrix data = *data_, q = *q_;
    const int64_t n = data.rows, d = data.cols, nq = q.rows;
    int64_t *truth = malloc((size_t)nq * k * 8), *ids = malloc((size_t)nq * k * 8);
    float *dist = malloc((size_t)nq * k * 4);
    double t0;

    /* ---------------- brute force ---------------- */
    ann_exec ex;
    ann_exec_init(&ex);
    ex.device = ANN_DEVICE_CPU;
    ann_index *bf = NULL;
    ann_brute_force_params bp;
    ann_brute_force_params_init(&bp);
    if (ann_index_build(ANN_ALGO_BRUTE_FORCE, &bp, &data, &ex, &bf) != ANN_OK)
        die("brute-force build");
    ann_matrix q100 = q;
    q100.rows = nq < 100 ? nq : 100;
    t0 = now();
    time_search(bf, NULL, &q100, k, ANN_DEVICE_CUDA, 1, ids, dist); /* uploads the base set */
    printf("bench bf_cuda_first_call %.3f s\n", now() - t0);
    double t = time_search(bf, NULL, &q, k, ANN_DEVICE_CUDA, 3, truth, dist);
    printf("bench bf_cuda_qps %.0f qps\n", (double)nq / t);
    printf("bench bf_cuda_time %.2f ms\n", 1e3 * t);
    printf("bench bf_cuda_gemm_rate %.2f TFLOP/s\n", 2.0 * (double)nq * (double)n * (double)d / t / 1e12);
    fflush(stdout);
    {
        ann_matrix qs = q;
        qs.rows = nq < 500 ? nq : 500;
        double tc = time_search(bf, NULL, &qs, k, ANN_DEVICE_CPU, 1, ids, dist);
        printf("bench bf_cpu_qps %.1f qps\n", (double)qs.rows / tc);
        printf("bench bf_speedup %.1f x\n", ((double)nq / t) / ((double)qs.rows / tc));
        fflush(stdout);
    }
    ann_index_free(bf);

    /* ---------------- IVF-Flat ---------------- */
    ann_ivf_flat_params ip;
    ann_ivf_flat_params_init(&ip);
    ip.n_lists = 1024;
    ann_index *ivf = NULL;
    ann_exec_init(&ex);
    ex.device = ANN_DEVICE_CUDA;
    t0 = now();
    if (ann_index_build(ANN_ALGO_IVF_FLAT, &ip, &data, &ex, &ivf) != ANN_OK)
        die("ivf_flat build on CUDA");
    const double tb_gpu = now() - t0;
    printf("bench ivf_build_cuda %.2f s\n", tb_gpu);
    fflush(stdout);
    if (!env_int("ANNKIT_BENCH_SKIP_CPU_BUILD", 0)) {
        ann_index *ivc = NULL;
        ann_exec_init(&ex);
        ex.device = ANN_DEVICE_CPU;
        t0 = now();
        if (ann_index_build(ANN_ALGO_IVF_FLAT, &ip, &data, &ex, &ivc) != ANN_OK)
            die("ivf_flat build on the CPU");
        const double tb_cpu = now() - t0;
        printf("bench ivf_build_cpu %.2f s\n", tb_cpu);
        printf("bench ivf_build_speedup %.1f x\n", tb_cpu / tb_gpu);
        fflush(stdout);
        ann_index_free(ivc);
    }
    static const int32_t probes[] = {8, 32, 128};
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        ann_ivf_flat_search_params sp;
        ann_ivf_flat_search_params_init(&sp);
        sp.n_probes = probes[i];
        time_search(ivf, &sp, &q100, k, ANN_DEVICE_CUDA, 1, ids, dist); /* device cache */
        double tg = time_search(ivf, &sp, &q, k, ANN_DEVICE_CUDA, 3, ids, dist);
        double rg = recall_vs(ids, truth, nq, k);
        double tc = time_search(ivf, &sp, &q, k, ANN_DEVICE_CPU, 1, ids, dist);
        double rc = recall_vs(ids, truth, nq, k);
        printf("bench ivf_np%d_cuda_qps %.0f qps\n", (int)probes[i], (double)nq / tg);
        printf("bench ivf_np%d_cpu_qps %.0f qps\n", (int)probes[i], (double)nq / tc);
        printf("bench ivf_np%d_speedup %.1f x\n", (int)probes[i], tc / tg);
        printf("bench ivf_np%d_recall_cuda %.4f recall@10\n", (int)probes[i], rg);
        printf("bench ivf_np%d_recall_cpu %.4f recall@10\n", (int)probes[i], rc);
        fflush(stdout);
    }
    ann_index_free(ivf);
    free(truth);
    free(ids);
    free(dist);
}

/* Build an NN-Descent graph of x on dev; returns seconds (exits on error). */
static double time_graph(const ann_nn_descent_params *p, const ann_matrix *x, ann_device dev, ann_graph **g)
{
    ann_exec ex;
    ann_exec_init(&ex);
    ex.device = dev;
    double t0 = now();
    if (ann_graph_build(ANN_ALGO_NN_DESCENT, p, x, &ex, g) != ANN_OK)
        die("nn_descent build");
    double t = now() - t0;
    if (ex.used != dev) {
        fprintf(stderr, "bench_gpu: asked for %s, ran on %s\n", ann_device_name(dev), ann_device_name(ex.used));
        exit(1);
    }
    return t;
}

/* Graph recall on 1000 sample rows, exact neighbours by brute force on CUDA. */
static double graph_recall(const ann_graph *g, const ann_matrix *x)
{
    ann_exec ex;
    ann_exec_init(&ex);
    ex.device = ANN_DEVICE_CUDA;
    double r = -1;
    if (ann_graph_eval(g, x, 1000, 7, &ex, &r) != ANN_OK)
        die("ann_graph_eval");
    return r;
}

static void bench_nnd(const ann_matrix *data)
{
    const int64_t sub_rows = env_int("ANNKIT_BENCH_NND_CPU_ROWS", 100000);
    static const int32_t degrees[] = {32, 64};
    {
        /* warm-up (CUDA context, cuBLAS handle) outside the timings */
        ann_nn_descent_params p;
        ann_nn_descent_params_init(&p);
        ann_matrix w = *data;
        w.owner = NULL;
        w.rows = data->rows < 2000 ? data->rows : 2000;
        ann_graph *g = NULL;
        time_graph(&p, &w, ANN_DEVICE_CUDA, &g);
        ann_graph_free(g);
    }
    for (size_t i = 0; i < sizeof degrees / sizeof degrees[0]; i++) {
        const int deg = degrees[i];
        ann_nn_descent_params p;
        ann_nn_descent_params_init(&p);
        p.graph_degree = deg;
        p.intermediate_graph_degree = 2 * deg;
        ann_graph *g = NULL;
        const double tg = time_graph(&p, data, ANN_DEVICE_CUDA, &g);
        printf("bench nnd_deg%d_cuda_time %.2f s (%lld rows, intermediate %d)\n", deg, tg, (long long)data->rows,
               2 * deg);
        printf("bench nnd_deg%d_cuda_recall %.4f graph recall\n", deg, graph_recall(g, data));
        fflush(stdout);
        ann_graph_free(g);
        if (sub_rows <= 0 || sub_rows > data->rows)
            continue;
        ann_matrix sub = *data;
        sub.owner = NULL;
        sub.rows = sub_rows;
        const double tgs = time_graph(&p, &sub, ANN_DEVICE_CUDA, &g);
        const double rgs = graph_recall(g, &sub);
        ann_graph_free(g);
        const double tcs = time_graph(&p, &sub, ANN_DEVICE_CPU, &g);
        const double rcs = graph_recall(g, &sub);
        ann_graph_free(g);
        printf("bench nnd_deg%d_sub_cuda_time %.2f s (%lld rows)\n", deg, tgs, (long long)sub_rows);
        printf("bench nnd_deg%d_sub_cuda_recall %.4f graph recall\n", deg, rgs);
        printf("bench nnd_deg%d_sub_cpu_time %.2f s (%lld rows)\n", deg, tcs, (long long)sub_rows);
        printf("bench nnd_deg%d_sub_cpu_recall %.4f graph recall\n", deg, rcs);
        printf("bench nnd_deg%d_sub_speedup %.1f x (equal size)\n", deg, tcs / tgs);
        printf("bench nnd_deg%d_est_speedup %.1f x (cpu time scaled linearly to %lld rows / cuda time)\n", deg,
               tcs * (double)data->rows / (double)sub_rows / tg, (long long)data->rows);
        fflush(stdout);
    }
}

/* One CAGRA sweep point. */
typedef struct cagra_point {
    int itopk, sw;
    double recall, qps;
} cagra_point;

/*
 * QPS at @p target recall on the recall/QPS frontier of pts[0 .. n): the
 * best QPS among points with recall >= target, raised by linear
 * interpolation (in recall) towards the fastest point below the target
 * when that one is faster.  Returns -1 when no point reaches the target.
 */
static double qps_at(const cagra_point *pts, int n, double target)
{
    double best_hi = -1, r_hi = 0, best_lo = -1, r_lo = 0;
    for (int i = 0; i < n; i++) {
        if (pts[i].recall >= target) {
            if (pts[i].qps > best_hi) {
                best_hi = pts[i].qps;
                r_hi = pts[i].recall;
            }
        } else if (pts[i].qps > best_lo) {
            best_lo = pts[i].qps;
            r_lo = pts[i].recall;
        }
    }
    if (best_hi < 0)
        return -1;
    if (best_lo > best_hi && r_hi > r_lo)
        return best_hi + (best_lo - best_hi) * (r_hi - target) / (r_hi - r_lo);
    return best_hi;
}

/* CAGRA on CUDA and the CPU (the figures listed at the top). */
static void bench_cagra(const ann_matrix *data_, const ann_matrix *q_, int64_t k)
{
    static const int sweep[][2] = {{32, 1}, {64, 1}, {96, 1}, {128, 1}, {192, 1}, {256, 1}, {384, 1}, {512, 1},
                                   {64, 2}, {128, 2}, {128, 4}, {256, 4}};
    enum { NS = sizeof sweep / sizeof sweep[0] };
    static const double targets[] = {0.90, 0.95, 0.99};
    const ann_matrix data = *data_, q = *q_;
    const int64_t nq = q.rows;
    int64_t *truth = malloc((size_t)nq * k * 8), *ids = malloc((size_t)nq * k * 8);
    float *dist = malloc((size_t)nq * k * 4);
    cagra_point gpu[NS], cpu[NS];
    ann_exec ex;

    /* exact neighbours */
    ann_brute_force_params bp;
    ann_brute_force_params_init(&bp);
    ann_index *bf = NULL;
    ann_exec_init(&ex);
    ex.device = ANN_DEVICE_CPU;
    if (ann_index_build(ANN_ALGO_BRUTE_FORCE, &bp, &data, &ex, &bf) != ANN_OK)
        die("brute-force build");
    time_search(bf, NULL, &q, k, ANN_DEVICE_CUDA, 1, truth, dist);
    ann_index_free(bf);

    /* build: NN-Descent on CUDA, re-sort and optimize on the CPU */
    ann_cagra_params cp;
    ann_cagra_params_init(&cp);
    cp.graph_degree = 32;
    cp.intermediate_graph_degree = 64;
    cp.build_algo = ANN_CAGRA_BUILD_NN_DESCENT;
    ann_index *ix = NULL;
    ann_exec_init(&ex);
    ex.device = ANN_DEVICE_CUDA;
    double t0 = now();
    if (ann_index_build(ANN_ALGO_CAGRA, &cp, &data, &ex, &ix) != ANN_OK)
        die("cagra build (NN-Descent on CUDA)");
    printf("bench cagra_build_time %.2f s (NN-Descent on CUDA, optimize on the CPU; degree 32, intermediate 64)\n",
           now() - t0);
    fflush(stdout);

    ann_matrix q100 = q;
    q100.rows = nq < 100 ? nq : 100;
    ann_cagra_search_params sp;
    ann_cagra_search_params_init(&sp);
    t0 = now();
    time_search(ix, &sp, &q100, k, ANN_DEVICE_CUDA, 1, ids, dist); /* uploads the index */
    printf("bench cagra_cuda_first_call %.3f s (index upload)\n", now() - t0);
    for (int i = 0; i < NS; i++) {
        ann_cagra_search_params_init(&sp);
        sp.itopk_size = sweep[i][0];
        sp.search_width = sweep[i][1];
        const double tg = time_search(ix, &sp, &q, k, ANN_DEVICE_CUDA, 3, ids, dist);
        gpu[i] = (cagra_point){sweep[i][0], sweep[i][1], recall_vs(ids, truth, nq, k), (double)nq / tg};
        const double tc = time_search(ix, &sp, &q, k, ANN_DEVICE_CPU, 1, ids, dist);
        cpu[i] = (cagra_point){sweep[i][0], sweep[i][1], recall_vs(ids, truth, nq, k), (double)nq / tc};
        printf("bench cagra_itopk%d_sw%d_cuda_qps %.0f qps (recall@10 %.4f)\n", sweep[i][0], sweep[i][1], gpu[i].qps,
               gpu[i].recall);
        printf("bench cagra_itopk%d_sw%d_cpu_qps %.0f qps (recall@10 %.4f)\n", sweep[i][0], sweep[i][1], cpu[i].qps,
               cpu[i].recall);
        fflush(stdout);
    }
    for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
        const double g = qps_at(gpu, NS, targets[t]), c = qps_at(cpu, NS, targets[t]);
        if (g > 0)
            printf("bench cagra_cuda_qps_at_%.2f %.0f qps\n", targets[t], g);
        else
            printf("bench cagra_cuda_qps_at_%.2f not reached\n", targets[t]);
        if (c > 0)
            printf("bench cagra_cpu_qps_at_%.2f %.0f qps\n", targets[t], c);
        else
            printf("bench cagra_cpu_qps_at_%.2f not reached\n", targets[t]);
        if (g > 0 && c > 0)
            printf("bench cagra_speedup_at_%.2f %.1f x (cuda / cpu)\n", targets[t], g / c);
    }
    fflush(stdout);
    ann_index_free(ix);
    free(truth);
    free(ids);
    free(dist);
}

int main(void)
{
    ann_device got;
    if (ann_backend_resolve(ANN_DEVICE_CUDA, &got) != ANN_OK) {
        printf("SKIP: CUDA backend unavailable: %s\n", ann_last_error());
        return 77;
    }
    ann_backend_report br;
    ann_backend_probe(true, &br);
    printf("# %s\n# %s\n", br.cuda_detail, br.cpu_detail);

    const int64_t n = env_int("ANNKIT_BENCH_ROWS", 1000000), d = 128, nq = env_int("ANNKIT_BENCH_QUERIES", 10000);
    const int64_t k = 10;
    double t0 = now();
    float *x = make_data(n, d, 2000, 1);
    float *qv = make_data(nq, d, 2000, 2);
    printf("# data %lld x %lld, %lld queries, k %lld (generated in %.1f s)\n", (long long)n, (long long)d,
           (long long)nq, (long long)k, now() - t0);
    fflush(stdout);
    ann_matrix data = ann_matrix_view(x, n, d, ANN_DTYPE_F32);
    ann_matrix q = ann_matrix_view(qv, nq, d, ANN_DTYPE_F32);
    const char *only = getenv("ANNKIT_BENCH_ONLY");
    const bool all = !(only && *only);
    if (all || strcmp(only, "search") == 0)
        bench_search(&data, &q, k);
    if (all || strcmp(only, "nnd") == 0)
        bench_nnd(&data);
    if (all || strcmp(only, "cagra") == 0)
        bench_cagra(&data, &q, k);
    free(x);
    free(qv);
    return 0;
}
