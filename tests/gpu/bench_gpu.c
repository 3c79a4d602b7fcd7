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
 *    QPS, recall@10 against the brute-force results, speedup.
 * Output: one line per figure, "bench NAME VALUE UNIT".  Exits 77 when the
 * CUDA backend cannot run.
 *
 * Environment: ANNKIT_BENCH_ROWS, ANNKIT_BENCH_QUERIES override the sizes;
 * ANNKIT_BENCH_SKIP_CPU_BUILD=1 skips the CPU IVF build.
 */
#include <math.h>
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
    int64_t *truth = malloc((size_t)nq * k * 8), *ids = malloc((size_t)nq * k * 8);
    float *dist = malloc((size_t)nq * k * 4);

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
    free(x);
    free(qv);
    return 0;
}
