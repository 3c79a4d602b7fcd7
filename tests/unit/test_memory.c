/*
 * test_memory - the memory model (ann/memory.h).
 *
 *  1. Every worked example of seeds/cagra.md and seeds/nn-descent.md
 *     ("Memory footprint") reproduces from its formula, in bytes and to
 *     the printed precision in MiB; where an example disagrees with its
 *     own formula the formula is asserted and the gap is checked to be
 *     exactly the term the example leaves out.
 *  2. N_max of every model equals a direct search over N (the largest N
 *     such that every n <= N fits), including ivf_flat's saw-tooth k-means
 *     term; the linear form gives the same N_max where the peak is linear.
 *  3. Capacity variables (M_usable, H, H_measured), the ACE partition
 *     rule, ann_mem_check() messages, parsing, and annkit's own index
 *     sizes against ann_index_get_info() of real indexes.
 *
 * Exit status 0 when every check passes, 1 otherwise.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ann/ann.h"
#include "ann/graph.h"
#include "ann/memory.h"

static int failures;
static int checks;

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        checks++;                                                              \
        if (!(cond)) {                                                         \
            failures++;                                                        \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);               \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
        }                                                                      \
    } while (0)

/* The term @p name of @p e (aborts the test when absent: a model bug). */
static const ann_mem_term *term(const ann_mem_estimate *e, const char *name)
{
    const ann_mem_term *t = ann_mem_term_find(e, name);
    if (!t) {
        fprintf(stderr, "FAIL: term '%s' missing\n", name);
        exit(1);
    }
    return t;
}

static double count_of(const ann_mem_estimate *e, const char *name)
{
    for (size_t i = 0; i < e->n_counts; i++)
        if (strcmp(e->counts[i].name, name) == 0)
            return e->counts[i].value;
    fprintf(stderr, "FAIL: count '%s' missing\n", name);
    exit(1);
}

/* Term @p name is @p bytes and prints as @p mib with @p fmt ("%.2f"). */
static void expect(const ann_mem_estimate *e, const char *name, uint64_t bytes, const char *fmt, const char *mib)
{
    const ann_mem_term *t = term(e, name);
    char buf[64];
    snprintf(buf, sizeof buf, fmt, (double)t->bytes / 1048576.0);
    CHECK(t->bytes == bytes, "%s = %llu B, expected %llu B", name, (unsigned long long)t->bytes,
          (unsigned long long)bytes);
    CHECK(strcmp(buf, mib) == 0, "%s = %s MiB, the doc prints %s", name, buf, mib);
}

static void estimate(const ann_mem_inputs *in, ann_mem_estimate *e)
{
    ann_status st = ann_mem_estimate_compute(in, e);
    if (st != ANN_OK) {
        fprintf(stderr, "FAIL: estimate of %s: %s\n", ann_mem_model_name(in->algo), ann_last_error());
        exit(1);
    }
}

/* ------------------------------------------------------------------ */
/* 1. The docs' worked examples                                        */
/* ------------------------------------------------------------------ */

static void test_cagra_examples(void)
{
    ann_mem_inputs in;
    ann_mem_estimate e;

    /* Baseline: 1,000,000 vectors, dim 1024, fp32, graph_degree 64, IdxT int32; a cuVS (GPU) build. */
    ann_mem_inputs_init(&in, ANN_ALGO_CAGRA);
    in.device = true;
    in.rows = 1000000;
    in.dim = 1024;
    in.dtype = ANN_DTYPE_F32;
    in.graph_degree = 64;
    in.idx_bytes = 4;
    /* IVF-PQ build: C = 1024, R = 10; search: Q = 1024, I = 128. */
    in.n_lists = 1024;
    in.train_set_ratio = 10;
    in.batch = 1024;
    in.intermediate_graph_degree = 128;
    estimate(&in, &e);
    expect(&e, "dataset_size", 4096000000ULL, "%.2f", "3906.25");
    expect(&e, "graph_size", 256000000ULL, "%.2f", "244.14");
    expect(&e, "IVFPQ_build_peak", 100000ULL * 1024 * 4 + 1024ULL * 1024 * 4 + 100000ULL * 4, "%.2f", "395.01");
    expect(&e, "IVFPQ_search_peak", 5242880ULL, "%.2f", "5.00");
    expect(&e, "optimize_peak", 644000000ULL, "%.2f", "614.17");
    /* 3906.25 + max(395.01, 5.00, 614.17) = 4520.42 */
    expect(&e, "build_peak_ivf_pq", 4740000000ULL, "%.2f", "4520.42");
    CHECK(e.device.used && strcmp(e.device.peak_name, "build_peak_ivf_pq") == 0, "device peak is %s",
          e.device.peak_name);
    CHECK(fabs(e.headroom - 0.20) < 1e-12, "IVF-PQ headroom %g", e.headroom);

    /* Search: D = 1024, Q = 100, K = 10, IdxT int32 (dataset and graph as above). */
    in.batch = 100;
    in.k = 10;
    in.phase = ANN_MEM_PHASE_SEARCH;
    estimate(&in, &e);
    expect(&e, "query_size", 409600ULL, "%.2f", "0.39");
    expect(&e, "result_size", 8000ULL, "%.4f", "0.0076");
    expect(&e, "workspace_size", 417600ULL, "%.2f", "0.40");
    expect(&e, "search_memory", 4096000000ULL + 256000000ULL + 417600ULL, "%.2f", "4150.79");
    CHECK(strcmp(e.device.peak_name, "search_memory") == 0, "search peak is %s", e.device.peak_name);
    CHECK(!e.host.used, "cagra search has no host peak");
}

static void test_cagra_other_terms(void)
{
    ann_mem_inputs in;
    ann_mem_estimate e;
    ann_mem_inputs_init(&in, ANN_ALGO_CAGRA);
    in.rows = 1000;
    in.dim = 100;
    in.dtype = ANN_DTYPE_F16; /* 200 B rows pad to 208 B: D_align = 104 */
    in.build_algo = ANN_MEM_BUILD_ITERATIVE;
    in.input_on_device = true;
    in.input_on_host = false;
    estimate(&in, &e);
    CHECK(count_of(&e, "D_align") == 104, "D_align f16 = %g", count_of(&e, "D_align"));
    CHECK(count_of(&e, "Q_iter") == 1000, "Q_iter = min(N, 8192)");
    CHECK(count_of(&e, "K_iter") == 129, "K_iter = I + 1");
    CHECK(term(&e, "D_iter")->bytes == 1000ULL * 104 * 2, "D_iter");
    CHECK(term(&e, "G_tmp")->bytes == 1000ULL * 64 * 4, "G_tmp");
    CHECK(term(&e, "Q_tile")->bytes == 1000ULL * 104 * 2, "Q_tile");
    CHECK(term(&e, "R_tile")->bytes == 1000ULL * 129 * 8, "R_tile");
    /* 1000 * 129 * 4 = 516000 B rounds up to one 2 MiB block */
    CHECK(term(&e, "H_iter")->bytes == 2097152ULL, "H_iter = %llu", (unsigned long long)term(&e, "H_iter")->bytes);
    uint64_t w = 1000ULL * 64 * 4 + 1000ULL * 104 * 2 + 1000ULL * 129 * 8;
    CHECK(term(&e, "W_iter")->bytes == w, "W_iter");
    uint64_t opt = 1000ULL * (4 + 5 * 128);
    CHECK(term(&e, "iterative_device_peak")->bytes == 1000ULL * 104 * 2 + (w > opt ? w : opt), "iterative_device_peak");
    CHECK(term(&e, "iterative_host_peak")->bytes == 2097152ULL + 1000ULL * 64 * 4, "iterative_host_peak");
    CHECK(strcmp(e.device.peak_name, "iterative_device_peak") == 0 && strcmp(e.host.peak_name, "iterative_host_peak") == 0,
          "iterative peaks");
    CHECK(fabs(e.headroom - 0.30) < 1e-12, "iterative headroom");

    in.dtype = ANN_DTYPE_U8; /* 100 B rows pad to 112 */
    in.rows = 20000;
    estimate(&in, &e);
    CHECK(count_of(&e, "D_align") == 112, "D_align u8 = %g", count_of(&e, "D_align"));
    CHECK(term(&e, "Q_tile")->bytes == 8192ULL * 112, "Q_tile with Q_iter = 8192");

    /* NN-Descent builder: NND_device_peak (with the 4 B of L2 norms), NND_host_peak, dataset_size*. */
    in.dtype = ANN_DTYPE_F32;
    in.rows = 1000000;
    in.dim = 128;
    in.build_algo = ANN_MEM_BUILD_NN_DESCENT;
    in.input_on_device = false;
    in.input_on_host = true;
    in.device = true; /* a CUDA build: the docs' host terms */
    estimate(&in, &e);
    CHECK(term(&e, "NND_device_peak")->bytes == 1000000ULL * (128 * 2 + 276 + 4), "NND_device_peak");
    CHECK(term(&e, "NND_host_peak")->bytes == 1000000ULL * (13 * 128 + 912), "NND_host_peak");
    CHECK(term(&e, "build_peak_nn_descent")->bytes == 1000000ULL * (4 + 5 * 128), "host input: no dataset_size*");
    CHECK(strcmp(e.host.peak_name, "host_build_peak") == 0 &&
              e.host.peak == 1000000ULL * 128 * 4 + 1000000ULL * (13 * 128 + 912),
          "host peak = input_size + NND_host_peak");
    in.input_on_device = true;
    in.input_on_host = false;
    in.metric = ANN_METRIC_INNER_PRODUCT;
    estimate(&in, &e);
    CHECK(term(&e, "NND_device_peak")->bytes == 1000000ULL * (128 * 2 + 276), "no norms for inner product");
    CHECK(term(&e, "build_peak_nn_descent")->bytes == 1000000ULL * 128 * 4 + 1000000ULL * (4 + 5 * 128),
          "device input: dataset_size* + max(NND_device_peak, optimize_peak)");
    CHECK(strcmp(e.host.peak_name, "NND_host_peak") == 0, "host peak is NND_host_peak with device input");
    in.input_on_host = true; /* both: annkit's tools hold the dataset on the host too */
    estimate(&in, &e);
    CHECK(term(&e, "build_peak_nn_descent")->bytes == 1000000ULL * 128 * 4 + 1000000ULL * (4 + 5 * 128) &&
              e.host.peak == 1000000ULL * 128 * 4 + 1000000ULL * (13 * 128 + 912),
          "input in both spaces");
}

static void test_nn_descent_examples(void)
{
    ann_mem_inputs in;
    ann_mem_estimate e;

    /* Index: N = 1e6, graph_degree = 64, return_distances = true. */
    ann_mem_inputs_init(&in, ANN_ALGO_NN_DESCENT);
    in.rows = 1000000;
    in.dim = 128;
    in.graph_degree = 64;
    in.return_distances = true;
    estimate(&in, &e);
    expect(&e, "graph_size", 256000000ULL, "%.2f", "244.14");
    expect(&e, "distances_size", 256000000ULL, "%.2f", "244.14");
    expect(&e, "index_size", 512000000ULL, "%.2f", "488.28");

    /* Build: N = 1e6, D = 128, fp32 input, fp16 compute, G = 64, I = 128, return_distances,
     * input in device memory (the example counts N*D*B_in), L2 (M_l2 = 1). */
    in.intermediate_graph_degree = 128;
    in.dtype = ANN_DTYPE_F32;
    in.dist_comp_bytes = 2;
    in.input_on_device = true;
    in.input_on_host = false;
    in.metric = ANN_METRIC_SQEUCLIDEAN;
    estimate(&in, &e);
    expect(&e, "compute_dataset_size", 256000000ULL, "%.2f", "244.14");
    expect(&e, "device_workspace_size", 276000000ULL, "%.2f", "263.21");
    expect(&e, "distances_size", 256000000ULL, "%.2f", "244.14");
    expect(&e, "l2_norms_size", 4000000ULL, "%.2f", "3.81");
    expect(&e, "device_build_peak", 1304000000ULL, "%.2f", "1243.59");
    CHECK(count_of(&e, "E_G") == 96, "E_G = %g", count_of(&e, "E_G"));
    CHECK(count_of(&e, "E_I") == 192, "E_I = %g", count_of(&e, "E_I"));

    /* host_workspace_size: the example prints 2320000000 B = 2212.52 MiB, which leaves out the
     * R*N*G*4 term of its own formula.  The formula wins: 2576000000 B = 2456.67 MiB. */
    expect(&e, "host_workspace_size", 2576000000ULL, "%.2f", "2456.67");
    CHECK(term(&e, "host_workspace_size")->bytes - 1000000ULL * 64 * 4 == 2320000000ULL,
          "the doc's 2212.52 MiB is the formula without R*N*G*4");
    CHECK(e.host.peak == 2576000000ULL && strcmp(e.host.peak_name, "host_workspace_size") == 0,
          "device input: host peak is host_workspace_size");

    /* Host input: the N*D*B_in term leaves the device and counts on the host (a CUDA build). */
    in.input_on_device = false;
    in.input_on_host = true;
    in.device = true;
    estimate(&in, &e);
    CHECK(term(&e, "device_build_peak")->bytes == 1304000000ULL - 512000000ULL, "host input device peak");
    CHECK(e.host.peak == 2576000000ULL + 512000000ULL, "host input host peak");

    /* AUTO compute dtype: fp16 for D > 16, fp32 for small fp32 data and for L1. */
    in.dist_comp_bytes = 0;
    estimate(&in, &e);
    CHECK(count_of(&e, "B_comp") == 2, "auto B_comp D = 128");
    in.dim = 16;
    estimate(&in, &e);
    CHECK(count_of(&e, "B_comp") == 4, "auto B_comp D = 16");
    in.dim = 128;
    in.metric = ANN_METRIC_L1;
    estimate(&in, &e);
    CHECK(count_of(&e, "B_comp") == 4 && count_of(&e, "M_l2") == 0, "L1: fp32, no norms");

    /* Expanded degrees: roundUp32 rules; clipping to the dataset size. */
    in.metric = ANN_METRIC_SQEUCLIDEAN;
    in.graph_degree = 32;
    in.intermediate_graph_degree = 33;
    estimate(&in, &e);
    CHECK(count_of(&e, "E_G") == 32 && count_of(&e, "E_I") == 64, "E_G(32) = 32, E_I(33) = 64: %g %g",
          count_of(&e, "E_G"), count_of(&e, "E_I"));
    in.graph_degree = 64;
    in.intermediate_graph_degree = 128;
    in.rows = 50;
    estimate(&in, &e);
    CHECK(count_of(&e, "I") == 49 && count_of(&e, "G") == 49 && count_of(&e, "E_G") == 64,
          "clipped: I = %g, G = %g, E_G = %g", count_of(&e, "I"), count_of(&e, "G"), count_of(&e, "E_G"));
    /* return_distances = false: R = 0 */
    in.rows = 1000;
    in.return_distances = false;
    estimate(&in, &e);
    CHECK(term(&e, "distances_size")->bytes == 0, "R = 0");
}

/* ------------------------------------------------------------------ */
/* 2. N_max against a direct search                                    */
/* ------------------------------------------------------------------ */

static uint64_t peak_of(const ann_mem_inputs *in, int64_t n, ann_mem_space sp)
{
    ann_mem_inputs x = *in;
    ann_mem_estimate e;
    x.rows = n;
    estimate(&x, &e);
    return sp == ANN_MEM_DEVICE ? e.device.peak : e.host.peak;
}

/* Count @p name of model @p in at N = n. */
static double count_of_at(const ann_mem_inputs *in, int64_t n, const char *name)
{
    ann_mem_inputs x = *in;
    ann_mem_estimate e;
    x.rows = n;
    estimate(&x, &e);
    return count_of(&e, name);
}

/* The first n that does not fit, minus one, by scanning every n. */
static int64_t direct_n_max(const ann_mem_inputs *in, ann_mem_space sp, uint64_t m, int64_t limit)
{
    for (int64_t n = 1; n <= limit; n++)
        if (peak_of(in, n, sp) > m)
            return n - 1;
    return -1;
}

/* Budget whose M_usable is the peak at n0 plus @p slack bytes, with H = 0.1 and M_other. */
static void check_n_max(const char *what, const ann_mem_inputs *in_given, ann_mem_space sp, int64_t n0,
                        uint64_t slack, bool linear)
{
    /* the inputs' N is n0: the solver starts from the linear form there */
    ann_mem_inputs copy = *in_given;
    copy.rows = n0;
    const ann_mem_inputs *in = &copy;
    ann_mem_budget b;
    ann_mem_budget_init(&b);
    b.headroom = 0.10;
    b.other = 12345;
    uint64_t want = peak_of(in, n0, sp) + slack;
    b.free = (uint64_t)ceil((double)want / 0.9) + b.other;
    ann_mem_capacity c;
    ann_status st = ann_mem_capacity_compute(in, sp, &b, &c);
    CHECK(st == ANN_OK && c.known, "%s: capacity: %s", what, ann_last_error());
    CHECK(c.m_usable == (uint64_t)floor((double)(b.free - b.other) * 0.9), "%s: M_usable", what);
    int64_t direct = direct_n_max(in, sp, c.m_usable, 4 * n0 + 1000);
    CHECK(c.n_max == direct, "%s: N_max = %lld, direct search %lld", what, (long long)c.n_max, (long long)direct);
    if (linear)
        CHECK(c.n_max_linear == c.n_max, "%s: linear form N_max = %lld, exact %lld (B_per_vector %g, B_fixed %g)",
              what, (long long)c.n_max_linear, (long long)c.n_max, c.b_per_vector, c.b_fixed);
}

static void test_capacity(void)
{
    ann_mem_inputs in;

    ann_mem_inputs_init(&in, ANN_ALGO_CAGRA);
    in.rows = 1000;
    in.dim = 96;
    check_n_max("cagra ivf_pq device", &in, ANN_MEM_DEVICE, 30000, 777, false);
    check_n_max("cagra ivf_pq device (small N: IVFPQ_search_peak dominates)", &in, ANN_MEM_DEVICE, 300, 5, false);
    in.device = true; /* the docs' host terms (a CUDA build) */
    check_n_max("cagra ivf_pq host", &in, ANN_MEM_HOST, 30000, 3, true);
    in.build_algo = ANN_MEM_BUILD_NN_DESCENT;
    check_n_max("cagra nn_descent device", &in, ANN_MEM_DEVICE, 25000, 100, true);
    check_n_max("cagra nn_descent host", &in, ANN_MEM_HOST, 25000, 100, true);
    in.device = false; /* annkit's CPU build */
    in.n_threads = 2;
    check_n_max("cagra nn_descent host, CPU", &in, ANN_MEM_HOST, 25000, 100, false);
    in.build_algo = ANN_MEM_BUILD_IVF_PQ;
    check_n_max("cagra ivf_pq host, CPU", &in, ANN_MEM_HOST, 25000, 100, false);
    in.n_threads = 0;
    in.build_algo = ANN_MEM_BUILD_NN_DESCENT;
    in.build_algo = ANN_MEM_BUILD_ITERATIVE;
    check_n_max("cagra iterative device (N < 8192)", &in, ANN_MEM_DEVICE, 5000, 100, false);
    check_n_max("cagra iterative device (N > 8192)", &in, ANN_MEM_DEVICE, 20000, 100, false);
    check_n_max("cagra iterative host (2 MiB steps)", &in, ANN_MEM_HOST, 20000, 100, false);
    in.phase = ANN_MEM_PHASE_SEARCH;
    check_n_max("cagra search", &in, ANN_MEM_DEVICE, 20000, 9, true);

    ann_mem_inputs_init(&in, ANN_ALGO_NN_DESCENT);
    in.rows = 1000;
    in.dim = 128;
    check_n_max("nn_descent device", &in, ANN_MEM_DEVICE, 20000, 11, false);
    check_n_max("nn_descent host", &in, ANN_MEM_HOST, 20000, 11, false);
    check_n_max("nn_descent host (N < I: clipped degrees)", &in, ANN_MEM_HOST, 90, 11, false);
    in.device = true;
    check_n_max("nn_descent host, CUDA build", &in, ANN_MEM_HOST, 20000, 11, false);

    /* ivf_pq: auto preset; then u8 data, where the training copies dominate and fall where the
     * sampling ratio steps up (N = 16 with n_lists 8 and fraction 0.5; near N = 400000 with the
     * auto fraction 1/sqrt(N x 1e-5)) */
    ann_mem_inputs_init(&in, ANN_ALGO_IVF_PQ);
    in.rows = 1000;
    in.dim = 16;
    in.n_threads = 2;
    check_n_max("ivf_pq auto", &in, ANN_MEM_HOST, 30000, 5, false);
    in.dtype = ANN_DTYPE_U8;
    in.dim = 256;
    in.graph_degree = 4;
    in.n_lists = 200;
    in.n_threads = 1;
    in.kmeans_trainset_fraction = 0.5;
    CHECK(peak_of(&in, 399, ANN_MEM_HOST) > peak_of(&in, 400, ANN_MEM_HOST), "ivf_pq u8: the peak drops at N = 400");
    check_n_max("ivf_pq u8 at the drop", &in, ANN_MEM_HOST, 399, 0, false);
    check_n_max("ivf_pq u8 before the drop", &in, ANN_MEM_HOST, 390, 7, false);
    in.n_threads = 2;
    in.n_lists = 0;
    in.kmeans_trainset_fraction = 0;
    in.dim = 64;
    in.graph_degree = 8;
    int64_t drop = 0;
    for (int64_t n = 399000; n < 401000 && !drop; n++)
        if (peak_of(&in, n, ANN_MEM_HOST) < peak_of(&in, n - 1, ANN_MEM_HOST) &&
            count_of_at(&in, n, "n_train") < count_of_at(&in, n - 1, "n_train"))
            drop = n;
    CHECK(drop > 0, "ivf_pq u8 auto: a drop near N = 400000");
    if (drop > 0)
        check_n_max("ivf_pq u8 auto, before the drop", &in, ANN_MEM_HOST, drop - 1, 0, false);

    ann_mem_inputs_init(&in, ANN_ALGO_BRUTE_FORCE);
    in.rows = 1000;
    in.dim = 64;
    in.n_threads = 4;
    check_n_max("brute_force build", &in, ANN_MEM_HOST, 40000, 5, true);
    in.phase = ANN_MEM_PHASE_SEARCH;
    in.batch = 1000;
    check_n_max("brute_force search", &in, ANN_MEM_HOST, 30000, 5, false);
    in.device = true;
    check_n_max("brute_force search device", &in, ANN_MEM_DEVICE, 30000, 5, true);

    ann_mem_inputs_init(&in, ANN_ALGO_IVF_FLAT);
    in.rows = 1000;
    in.dim = 32;
    in.n_lists = 64;
    in.n_threads = 2;
    check_n_max("ivf_flat f32", &in, ANN_MEM_HOST, 30000, 5, false);
    /* u8 data, capped training rows: the k-means phase dominates and saw-tooths with N. */
    in.dtype = ANN_DTYPE_U8;
    in.dim = 128;
    in.n_lists = 16;
    in.max_train_points_per_cluster = 64; /* n_t caps at 1024 */
    for (int64_t n0 = 2000; n0 <= 9000; n0 += 613)
        check_n_max("ivf_flat u8 saw-tooth", &in, ANN_MEM_HOST, n0, 0, false);
    /* Hierarchical k-means keeps two f32 training copies: with u8 data and n_t capped at
     * 300 * 200 = 60000, the k-means phase dominates while the ratio is 2 and the peak drops
     * where it becomes 3 (N = 180000): a larger N can need less memory. */
    in.n_lists = 300;
    in.max_train_points_per_cluster = 200;
    in.dim = 16;
    CHECK(peak_of(&in, 179999, ANN_MEM_HOST) > peak_of(&in, 180000, ANN_MEM_HOST),
          "ivf_flat u8: the peak drops where the training ratio steps up");
    for (int64_t n0 = 180500; n0 <= 186000; n0 += 500)
        check_n_max("ivf_flat u8 after the drop", &in, ANN_MEM_HOST, n0, 0, false);
    check_n_max("ivf_flat u8 at the drop", &in, ANN_MEM_HOST, 180000, 0, false);
    check_n_max("ivf_flat u8 before the drop", &in, ANN_MEM_HOST, 170000, 0, false);
    /* hierarchical k-means (n_lists >= 257) */
    in.n_lists = 300;
    in.max_train_points_per_cluster = 8;
    in.dim = 64;
    check_n_max("ivf_flat u8 hierarchical", &in, ANN_MEM_HOST, 12000, 3, false);
    in.dtype = ANN_DTYPE_F16;
    in.kmeans_trainset_fraction = 0.3;
    check_n_max("ivf_flat f16 fraction 0.3", &in, ANN_MEM_HOST, 9000, 3, false);

    ann_mem_inputs_init(&in, ANN_ALGO_HNSW);
    in.rows = 1000;
    in.dim = 32;
    in.npartitions = 7;
    check_n_max("ace device", &in, ANN_MEM_DEVICE, 30000, 0, false);
    check_n_max("ace host", &in, ANN_MEM_HOST, 30000, 0, false);

    /* The docs' linear form on a large, purely linear case: cagra NN-Descent device peak. */
    ann_mem_inputs_init(&in, ANN_ALGO_CAGRA);
    in.rows = 1000000;
    in.dim = 1024;
    in.build_algo = ANN_MEM_BUILD_NN_DESCENT;
    ann_mem_budget b;
    ann_mem_budget_init(&b);
    b.free = 80ULL << 30;
    b.other = 4ULL << 30;
    ann_mem_capacity c;
    CHECK(ann_mem_capacity_compute(&in, ANN_MEM_DEVICE, &b, &c) == ANN_OK, "capacity");
    double usable = floor((double)(76ULL << 30) * 0.7);
    double per = 1024 * 2 + 276 + 4; /* NND_device_peak dominates optimize_peak (644 B) */
    CHECK(fabs(c.h - 0.30) < 1e-12 && c.m_usable == (uint64_t)usable, "H = %g, M_usable = %llu", c.h,
          (unsigned long long)c.m_usable);
    CHECK(c.b_per_vector == per && c.b_fixed == 0, "B_per_vector %g B_fixed %g", c.b_per_vector, c.b_fixed);
    CHECK(c.n_max == (int64_t)floor(usable / per) && c.n_max_linear == c.n_max, "N_max %lld", (long long)c.n_max);

    /* H_measured = (observed - formula) / formula, used as H when no --headroom. */
    ann_mem_budget_init(&b);
    b.free = 1ULL << 40;
    b.observed_rows = 100000;
    b.observed_peak = (uint64_t)(1.25 * (double)(100000ULL * (1024 * 2 + 276 + 4)));
    CHECK(ann_mem_capacity_compute(&in, ANN_MEM_DEVICE, &b, &c) == ANN_OK, "capacity observed");
    CHECK(fabs(c.h_measured - 0.25) < 1e-9 && fabs(c.h - 0.25) < 1e-9, "H_measured %g H %g", c.h_measured, c.h);
    b.headroom = 0.5;
    CHECK(ann_mem_capacity_compute(&in, ANN_MEM_DEVICE, &b, &c) == ANN_OK && c.h == 0.5 && fabs(c.h_measured - 0.25) < 1e-9,
          "--headroom wins over H_measured");
    /* No M_free: no capacity, but H is still reported */
    ann_mem_budget_init(&b);
    CHECK(ann_mem_capacity_compute(&in, ANN_MEM_DEVICE, &b, &c) == ANN_OK && !c.known && c.n_max == -1,
          "unknown free memory");
    /* Not even one vector fits */
    b.free = 1000;
    CHECK(ann_mem_capacity_compute(&in, ANN_MEM_DEVICE, &b, &c) == ANN_OK && c.n_max == 0 && !c.fits, "nothing fits");
}

/* ------------------------------------------------------------------ */
/* 3. ACE, checks, parsing, annkit's own sizes                         */
/* ------------------------------------------------------------------ */

static void test_ace(void)
{
    ann_mem_inputs in;
    ann_mem_estimate e;
    ann_mem_inputs_init(&in, ANN_ALGO_HNSW);
    in.rows = 1000000;
    in.dim = 128;
    in.npartitions = 4;
    estimate(&in, &e);
    /* 2 * (1e6 / 4) * 128 * 4 = 256000000; imbalance 3 */
    CHECK(term(&e, "partition_size")->bytes == 256000000ULL, "partition_size");
    CHECK(term(&e, "partition_size_max")->bytes == 768000000ULL, "partition_size_max");
    CHECK(e.device.peak == 768000000ULL && e.host.peak == 512000000ULL + 768000000ULL, "ACE peaks");
    in.rows = 1000001; /* ceil(N/P) */
    estimate(&in, &e);
    CHECK(term(&e, "partition_size")->bytes == 2ULL * 250001 * 512, "partition_size ceil");

    int64_t P = 0;
    in.rows = 1000000;
    in.npartitions = 0;
    CHECK(ann_mem_ace_partitions(&in, 0, 200000000ULL, &P) == ANN_OK, "ace partitions");
    /* 3 * 2 * ceil(1e6/P) * 512 <= 2e8  <=>  ceil(1e6/P) <= 65104  <=>  P >= 16 */
    CHECK(P == 16, "smallest P = %lld", (long long)P);
    in.npartitions = P;
    estimate(&in, &e);
    CHECK(e.device.peak <= 200000000ULL, "P fits");
    in.npartitions = P - 1;
    estimate(&in, &e);
    CHECK(e.device.peak > 200000000ULL, "P - 1 does not fit");
    in.npartitions = 0;
    CHECK(ann_mem_ace_partitions(&in, 1000, 0, &P) == ANN_ERR_INVALID_ARG, "host too small for any P");
    in.input_on_host = false;
    CHECK(ann_mem_estimate_compute(&in, &e) == ANN_ERR_INVALID_ARG, "ACE needs host input");
}

static void test_check(void)
{
    ann_mem_estimate e;
    ann_ivf_flat_params ip;
    ann_ivf_flat_params_init(&ip);
    ip.n_lists = 256;
    ann_status st = ann_mem_check_build(ANN_ALGO_IVF_FLAT, &ip, 1000000, 1024, ANN_DTYPE_F32, 1ULL << 30, 0, false, &e);
    CHECK(st == ANN_ERR_NOMEM, "1e6 x 1024 f32 does not fit 1 GiB: %d", (int)st);
    const char *msg = ann_last_error();
    CHECK(strstr(msg, "estimated peak host memory") && strstr(msg, "--max-host-memory 1.0 GiB") &&
              strstr(msg, "exceeds 0.9 GiB") && strstr(msg, "rows fit") && strstr(msg, "ivf_flat build"),
          "message: %s", msg);
    CHECK(e.host.used && e.host.peak > (1ULL << 30), "estimate filled");
    st = ann_mem_check_build(ANN_ALGO_IVF_FLAT, &ip, 10000, 16, ANN_DTYPE_F32, 1ULL << 30, 0, false, NULL);
    CHECK(st == ANN_OK, "small build fits: %s", ann_last_error());
    /* default host limit: MemAvailable */
    st = ann_mem_check_build(ANN_ALGO_BRUTE_FORCE, NULL, (int64_t)1 << 40, 1024, ANN_DTYPE_F32, 0, 0, false, NULL);
    CHECK(st == ANN_ERR_NOMEM && strstr(ann_last_error(), "MemAvailable"), "MemAvailable default: %s",
          ann_last_error());
    /* device limit */
    st = ann_mem_check_build(ANN_ALGO_CAGRA, NULL, 10000000, 1024, ANN_DTYPE_F32, 1ULL << 50, 8ULL << 30, true, &e);
    CHECK(st == ANN_ERR_NOMEM && strstr(ann_last_error(), "--max-gpu-memory 8.0 GiB") &&
              strstr(ann_last_error(), "device memory"),
          "device check: %s", ann_last_error());
    st = ann_mem_check_build(ANN_ALGO_CAGRA, NULL, 10000000, 1024, ANN_DTYPE_F32, 1ULL << 50, 0, true, &e);
    CHECK(st == ANN_OK, "no device limit: no device check");
    ann_nn_descent_params np;
    ann_nn_descent_params_init(&np);
    np.graph_degree = 32;
    np.intermediate_graph_degree = 48;
    np.return_distances = false;
    np.dist_comp_dtype = ANN_DIST_COMP_FP32;
    st = ann_mem_check_build(ANN_ALGO_NN_DESCENT, &np, 100000, 128, ANN_DTYPE_F32, 1ULL << 50, 0, false, &e);
    CHECK(st == ANN_OK && count_of(&e, "G") == 32 && count_of(&e, "I") == 48 && count_of(&e, "R") == 0 &&
              count_of(&e, "B_comp") == 4 && count_of(&e, "E_I") == 64,
          "nn_descent params read: %s", ann_last_error());
    /* CAGRA params: degrees (clamped as the build clamps them) and the builder */
    ann_cagra_params cp;
    ann_cagra_params_init(&cp);
    cp.graph_degree = 32;
    cp.intermediate_graph_degree = 48;
    cp.build_algo = ANN_CAGRA_BUILD_NN_DESCENT;
    st = ann_mem_check_build(ANN_ALGO_CAGRA, &cp, 100000, 128, ANN_DTYPE_F32, 1ULL << 50, 0, false, &e);
    CHECK(st == ANN_OK && e.in.graph_degree == 32 && e.in.intermediate_graph_degree == 48 &&
              e.in.build_algo == ANN_MEM_BUILD_NN_DESCENT && term(&e, "graph_size")->bytes == 100000ULL * 32 * 4,
          "cagra params read: %s", ann_last_error());
    cp.build_algo = ANN_CAGRA_BUILD_AUTO; /* modelled as ivf_pq, the smallest builder */
    st = ann_mem_check_build(ANN_ALGO_CAGRA, &cp, 100000, 128, ANN_DTYPE_F32, 1ULL << 50, 0, false, &e);
    CHECK(st == ANN_OK && e.in.build_algo == ANN_MEM_BUILD_IVF_PQ, "cagra auto models ivf_pq: %s", ann_last_error());
    cp.build_algo = ANN_CAGRA_BUILD_ITERATIVE;
    st = ann_mem_check_build(ANN_ALGO_CAGRA, &cp, 100000, 128, ANN_DTYPE_F32, 1ULL << 50, 0, false, &e);
    CHECK(st == ANN_OK && e.in.build_algo == ANN_MEM_BUILD_ITERATIVE, "cagra iterative: %s", ann_last_error());
    cp.intermediate_graph_degree = 5000; /* clamped to rows - 1, graph_degree to that */
    st = ann_mem_check_build(ANN_ALGO_CAGRA, &cp, 20, 16, ANN_DTYPE_F32, 1ULL << 50, 0, false, &e);
    CHECK(st == ANN_OK && e.in.intermediate_graph_degree == 19 && e.in.graph_degree == 19,
          "cagra degrees clamped: %s", ann_last_error());
    st = ann_mem_check_build(ANN_ALGO_HNSW, &ip, 1000, 16, ANN_DTYPE_F32, 0, 0, false, NULL);
    CHECK(st == ANN_ERR_INVALID_ARG, "unknown params struct refused");
    /* ivf_pq graph params: every field that changes memory is read */
    ann_ivf_pq_graph_params gp;
    ann_ivf_pq_graph_params_init(&gp);
    gp.graph_degree = 24;
    gp.index.n_lists = 7;
    gp.index.pq_dim = 8;
    gp.index.pq_bits = 6;
    gp.refine_ratio = 3.0f;
    gp.return_distances = false;
    st = ann_mem_check_build(ANN_ALGO_IVF_PQ, &gp, 10000, 16, ANN_DTYPE_F32, 1ULL << 50, 0, false, &e);
    CHECK(st == ANN_OK && count_of(&e, "n_lists") == 7 && count_of(&e, "pq_dim") == 8 && count_of(&e, "pq_bits") == 6 &&
              count_of(&e, "candidates") == 72 && term(&e, "distances_size")->bytes == 0 &&
              term(&e, "graph_size")->bytes == 10000ULL * 24 * 4,
          "ivf_pq params read: %s", ann_last_error());
    st = ann_mem_check_build(ANN_ALGO_IVF_PQ, NULL, 100000, 128, ANN_DTYPE_F32, 1ULL << 20, 0, false, &e);
    CHECK(st == ANN_ERR_NOMEM && strstr(ann_last_error(), "ivf_pq build, 100000 x 128 f32: build_peak") &&
              strstr(ann_last_error(), "--max-host-memory 0.0 GiB") && strstr(ann_last_error(), "headroom 0.20"),
          "ivf_pq refused: %s", ann_last_error());
    gp.index.metric = ANN_METRIC_L1;
    st = ann_mem_check_build(ANN_ALGO_IVF_PQ, &gp, 10000, 16, ANN_DTYPE_F32, 1ULL << 50, 0, false, NULL);
    CHECK(st == ANN_ERR_UNSUPPORTED, "ivf_pq l1: %d", (int)st);
    st = ann_mem_check_build((ann_algo)(ANN_ALGO_IVF_FLAT + 100), NULL, 1000, 16, ANN_DTYPE_F32, 0, 0, false, NULL);
    CHECK(st == ANN_ERR_UNSUPPORTED, "no model for an unknown algorithm");
    CHECK(ann_mem_host_available() > 0, "MemAvailable readable");

    ann_mem_inputs in;
    ann_mem_inputs_init(&in, ANN_ALGO_NN_DESCENT);
    in.rows = 10;
    in.dim = 4;
    in.phase = ANN_MEM_PHASE_SEARCH;
    CHECK(ann_mem_estimate_compute(&in, &e) == ANN_ERR_UNSUPPORTED, "nn_descent has no search");
    in.phase = ANN_MEM_PHASE_BUILD;
    in.rows = 0;
    CHECK(ann_mem_estimate_compute(&in, &e) == ANN_ERR_INVALID_ARG, "rows 0");
}


/* ------------------------------------------------------------------ */
/* annkit's CPU builds: the ivf_pq graph, NN-Descent, cagra            */
/* ------------------------------------------------------------------ */

/* 5000 x 40 f32, G = 16, 2 threads, every preset field auto: each term by hand from ivf_pq_cpu.c. */
static void test_ivf_pq_terms(void)
{
    ann_mem_inputs in;
    ann_mem_estimate e;
    ann_mem_inputs_init(&in, ANN_ALGO_IVF_PQ);
    in.rows = 5000;
    in.dim = 40;
    in.graph_degree = 16;
    in.n_threads = 2;
    estimate(&in, &e);
    /* preset: n_lists = 5000/2000 = 2; D = 40: pq_bits 4, pq_dim 32, pq_len 2, rot_dim 64;
     * n_probes round(sqrt(2)/20 + 4) = 4, clamped to n_lists = 2;
     * fraction clamps to 1: n_train = 5000, trained in place (f32, sqeuclidean) */
    CHECK(count_of(&e, "n_lists") == 2 && count_of(&e, "pq_dim") == 32 && count_of(&e, "pq_bits") == 4 &&
              count_of(&e, "pq_len") == 2 && count_of(&e, "rot_dim") == 64 && count_of(&e, "chunks") == 16,
          "ivf_pq preset");
    CHECK(count_of(&e, "n_train") == 5000 && count_of(&e, "n_pq") == 4096 && count_of(&e, "n_probes") == 2 &&
              count_of(&e, "candidates") == 32,
          "ivf_pq counts: n_train %g n_pq %g n_probes %g candidates %g", count_of(&e, "n_train"),
          count_of(&e, "n_pq"), count_of(&e, "n_probes"), count_of(&e, "candidates"));
    /* the preset is the library's own */
    ann_ivf_pq_graph_params gp, r;
    ann_ivf_pq_graph_params_init(&gp);
    gp.graph_degree = 16;
    CHECK(ann_ivf_pq_graph_params_resolve(&gp, 5000, 40, &r) == ANN_OK && r.index.n_lists == 2 &&
              r.index.pq_dim == 32 && r.index.pq_bits == 4 && r.search.n_probes == 2,
          "resolve agrees");
    CHECK(term(&e, "input_size")->bytes == 5000ULL * 40 * 4, "input_size");
    CHECK(term(&e, "graph_size")->bytes == 5000ULL * 16 * 4 && term(&e, "distances_size")->bytes == 5000ULL * 16 * 4,
          "graph and distances");
    CHECK(term(&e, "centers_size")->bytes == 2ULL * (40 + 1 + 64) * 4, "centers_size %llu",
          (unsigned long long)term(&e, "centers_size")->bytes);
    CHECK(term(&e, "rotation_size")->bytes == 64ULL * 40 * 4, "rotation_size");
    CHECK(term(&e, "pq_centers_size")->bytes == 32ULL * 2 * 16 * 4, "pq_centers_size");
    CHECK(term(&e, "list_offsets_size")->bytes == 2ULL * 3 * 8, "list_offsets_size");
    CHECK(term(&e, "list_ids_size")->bytes == 5000ULL * 8, "list_ids_size");
    CHECK(term(&e, "codes_size")->bytes == (5000ULL / 16 + 2) * 16 * 16 + 1, "codes_size %llu",
          (unsigned long long)term(&e, "codes_size")->bytes);
    CHECK(term(&e, "train_size")->bytes == 5000ULL * 4, "train_size: labels only");
    /* k-means of 5000 x 40 into 2 lists: copy + labels, offsets, max(assign, update) */
    const uint64_t km = 5000ULL * (160 + 4) + 8 * 3 + (8ULL * 5000 + 8 * 3 + 8 * 2 + 2 * 40 * 8);
    CHECK(term(&e, "kmeans_fit_size")->bytes == km, "kmeans_fit_size %llu, by hand %llu",
          (unsigned long long)term(&e, "kmeans_fit_size")->bytes, (unsigned long long)km);
    CHECK(term(&e, "rotation_scratch_size")->bytes == 40ULL * 64 * 8, "rotation_scratch_size");
    /* residuals of 4096 rows (40 + 64 floats) beside the labels: larger than the codebook k-means */
    const uint64_t cb = 64ULL * 40 * 4 + 5000ULL * 4 + 4096ULL * (40 + 64) * 4;
    CHECK(term(&e, "codebook_train_size")->bytes == cb, "codebook_train_size %llu, by hand %llu",
          (unsigned long long)term(&e, "codebook_train_size")->bytes, (unsigned long long)cb);
    const uint64_t enc = 5000ULL * 4 + 5000ULL * 12 + 64ULL * 40 * 4 + ((5000ULL / 16 + 2) * 256 + 1) +
                         2ULL * (64 * (40 + 64) * 4 + 32 + 1);
    CHECK(term(&e, "encode_size")->bytes == enc, "encode_size %llu, by hand %llu",
          (unsigned long long)term(&e, "encode_size")->bytes, (unsigned long long)enc);
    /* per thread: queries, candidates (32), coarse, rotated queries, LUT, largest list (<= N), probes */
    const uint64_t per = 16 * 40 * 4 + 40 * 4 + 16 * 32 * 12 + 32 * 16 + 16 * 2 * 4 + 16 * 64 * 4 + 64 * 4 +
                         32 * 16 * 4 + 313 * 16 * 4 + 2 * 16 + 65 * 12;
    CHECK(term(&e, "search_scratch_size")->bytes == 2 * per, "search_scratch_size %llu, by hand %llu",
          (unsigned long long)term(&e, "search_scratch_size")->bytes, (unsigned long long)(2 * per));
    const uint64_t base = 800000ULL + 320000 + 320000 + 840 + 4096 + 48 + 40000;
    CHECK(e.host.used && !e.device.used && strcmp(e.host.peak_name, "build_peak") == 0 &&
              e.host.peak == base + cb,
          "ivf_pq peak %llu, by hand %llu (the codebook phase)", (unsigned long long)e.host.peak,
          (unsigned long long)(base + cb));
    CHECK(fabs(e.headroom - 0.20) < 1e-12, "ivf_pq headroom %g", e.headroom);

    /* u8 data: a training copy and sample ids; cosine: a label buffer; no distances */
    in.dtype = ANN_DTYPE_U8;
    in.kmeans_trainset_fraction = 0.5;
    in.return_distances = false;
    estimate(&in, &e);
    CHECK(count_of(&e, "n_train") == 2500 && term(&e, "train_size")->bytes == 2500ULL * (40 * 4 + 8 + 4) &&
              term(&e, "distances_size")->bytes == 0,
          "u8 training copy: %llu", (unsigned long long)term(&e, "train_size")->bytes);
    /* errors of the resolve function, and no search model */
    in.pq_bits = 3;
    CHECK(ann_mem_estimate_compute(&in, &e) == ANN_ERR_INVALID_ARG && strstr(ann_last_error(), "pq_bits"),
          "pq_bits 3: %s", ann_last_error());
    in.pq_bits = 0;
    in.metric = ANN_METRIC_HAMMING;
    CHECK(ann_mem_estimate_compute(&in, &e) == ANN_ERR_UNSUPPORTED, "hamming");
    in.metric = ANN_METRIC_SQEUCLIDEAN;
    in.phase = ANN_MEM_PHASE_SEARCH;
    CHECK(ann_mem_estimate_compute(&in, &e) == ANN_ERR_UNSUPPORTED, "no ivf_pq search model");
    /* below the smallest dataset the build takes, the model still answers (capacity search) */
    in.phase = ANN_MEM_PHASE_BUILD;
    in.rows = 3;
    CHECK(ann_mem_estimate_compute(&in, &e) == ANN_OK && e.host.peak > 0, "N = 3 < G: %s", ann_last_error());
}

/* annkit's CPU NN-Descent and CAGRA: the cpu_ terms and the host peak by device. */
static void test_cpu_terms(void)
{
    ann_mem_inputs in;
    ann_mem_estimate e;
    ann_mem_inputs_init(&in, ANN_ALGO_NN_DESCENT);
    in.rows = 20000;
    in.dim = 100;
    in.graph_degree = 32;
    in.intermediate_graph_degree = 64;
    in.n_threads = 2;
    estimate(&in, &e);
    /* K = 64, S = round(sqrt(128)) = 11, ld = 112 */
    CHECK(count_of(&e, "cpu_K") == 64 && count_of(&e, "cpu_S") == 11 && count_of(&e, "cpu_ld") == 112, "cpu counts");
    CHECK(term(&e, "cpu_rows_size")->bytes == 20000ULL * 112 * 4, "cpu_rows_size");
    CHECK(term(&e, "cpu_norms_size")->bytes == 20000ULL * 4, "cpu_norms_size");
    CHECK(term(&e, "cpu_knn_size")->bytes == 20000ULL * 64 * 9, "cpu_knn_size");
    CHECK(term(&e, "cpu_graph_out_size")->bytes == 20000ULL * 32 * 8, "cpu_graph_out_size");
    CHECK(term(&e, "cpu_samples_size")->bytes == 20000ULL * (16 * 11 + 16 + 8 + 4 + 4) + 8, "cpu_samples_size");
    /* the initial graph: 156 lists, k-means of 5000 rows (not hierarchical) */
    const uint64_t nl = 156, P = (32 * 65 + 127) / 128, NC = 48 > 2 * P ? 48 : 2 * P;
    const uint64_t lists = nl * (400 + 4 + 8 + NC * 4 + 4) + 8 + 20000ULL * 8;
    const uint64_t km = 5000ULL * 404 + 8 * (nl + 1) + 8ULL * 5000 + 8 * (nl + 1) + 8 * nl + 2 * 100 * 8;
    const uint64_t ksc = 4 * nl + 2ULL * 256 * nl * 4; /* assign scratch: is it the larger? */
    const uint64_t kfit = 5000ULL * 404 + 8 * (nl + 1) + (ksc > km - 5000ULL * 404 - 8 * (nl + 1)
                                                             ? ksc
                                                             : km - 5000ULL * 404 - 8 * (nl + 1));
    CHECK(term(&e, "cpu_init_size")->bytes >= lists + kfit, "cpu_init_size %llu >= lists + k-means %llu",
          (unsigned long long)term(&e, "cpu_init_size")->bytes, (unsigned long long)(lists + kfit));
    const ann_mem_term *ws = term(&e, "cpu_workspace_size");
    uint64_t sum = term(&e, "cpu_graph_out_size")->bytes + term(&e, "cpu_rows_size")->bytes +
                   term(&e, "cpu_norms_size")->bytes + term(&e, "cpu_knn_size")->bytes +
                   term(&e, "cpu_samples_size")->bytes;
    uint64_t ph = term(&e, "cpu_init_size")->bytes > term(&e, "cpu_iteration_size")->bytes
                      ? term(&e, "cpu_init_size")->bytes
                      : term(&e, "cpu_iteration_size")->bytes;
    CHECK(ws->bytes == sum + ph, "cpu_workspace_size = sum + max(phases)");
    CHECK(strcmp(e.host.peak_name, "cpu_build_peak") == 0 && e.host.peak == 20000ULL * 400 + ws->bytes,
          "CPU host peak: %s", e.host.peak_name);
    /* the docs' host terms are still there, and selected for a CUDA build */
    CHECK(term(&e, "host_workspace_size")->bytes > 0 && strcmp(e.device.peak_name, "device_build_peak") == 0,
          "docs' terms kept");
    in.device = true;
    estimate(&in, &e);
    CHECK(strcmp(e.host.peak_name, "host_build_peak") == 0 && ann_mem_term_find(&e, "cpu_rows_size") == NULL,
          "CUDA build: %s", e.host.peak_name);
    /* graph.c raises I to G; hamming reads the dataset (no f32 rows, no norms) */
    in.device = false;
    in.graph_degree = 80;
    in.metric = ANN_METRIC_HAMMING;
    in.dtype = ANN_DTYPE_U8;
    estimate(&in, &e);
    CHECK(count_of(&e, "cpu_K") == 80 && term(&e, "cpu_rows_size")->bytes == 0 &&
              term(&e, "cpu_norms_size")->bytes == 0 && term(&e, "cpu_init_size")->bytes == 0,
          "hamming: K %g rows %llu", count_of(&e, "cpu_K"), (unsigned long long)term(&e, "cpu_rows_size")->bytes);

    /* cagra on the CPU: the initial graph builder's workspace, then optimize */
    ann_mem_inputs_init(&in, ANN_ALGO_CAGRA);
    in.rows = 20000;
    in.dim = 100;
    in.graph_degree = 32;
    in.intermediate_graph_degree = 64;
    in.n_threads = 2;
    in.build_algo = ANN_MEM_BUILD_NN_DESCENT;
    estimate(&in, &e);
    ann_mem_inputs nd;
    ann_mem_estimate ne;
    ann_mem_inputs_init(&nd, ANN_ALGO_NN_DESCENT);
    nd.rows = 20000;
    nd.dim = 100;
    nd.graph_degree = 64;
    nd.intermediate_graph_degree = 64;
    nd.return_distances = false;
    nd.n_threads = 2;
    estimate(&nd, &ne);
    CHECK(term(&e, "cpu_initial_graph_size")->bytes == term(&ne, "cpu_workspace_size")->bytes,
          "cagra nn_descent builder = nn_descent at G = I without distances");
    CHECK(term(&e, "cpu_knn_size")->bytes == 20000ULL * 64 * 4, "cagra cpu_knn_size");
    CHECK(term(&e, "cpu_optimize_size")->bytes == 20000ULL * 32 * 4 + 20000ULL * (8 * 32 + 24), "cagra optimize");
    CHECK(term(&e, "cpu_index_size")->bytes == 20000ULL * (32 * 4 + 400 + 4 + 200) + (2ULL << 20),
          "cagra cpu_index_size");
    CHECK(strcmp(e.host.peak_name, "cpu_build_peak") == 0 &&
              e.host.peak == 20000ULL * 400 + 20000ULL * 256 + term(&ne, "cpu_workspace_size")->bytes,
          "cagra CPU host peak %s", e.host.peak_name);
    CHECK(fabs(e.headroom - 0.30) < 1e-12, "cagra nn_descent headroom");
    in.build_algo = ANN_MEM_BUILD_IVF_PQ;
    estimate(&in, &e);
    ann_mem_inputs_init(&nd, ANN_ALGO_IVF_PQ);
    nd.rows = 20000;
    nd.dim = 100;
    nd.graph_degree = 64;
    nd.return_distances = false;
    nd.n_threads = 2;
    estimate(&nd, &ne);
    CHECK(term(&e, "cpu_initial_graph_size")->bytes == ne.host.peak - term(&ne, "input_size")->bytes,
          "cagra ivf_pq builder = ivf_pq at G = I, refine 2, without distances");
    CHECK(strcmp(e.host.peak_name, "cpu_build_peak") == 0 && fabs(e.headroom - 0.20) < 1e-12,
          "cagra ivf_pq on the CPU: %s, H %g", e.host.peak_name, e.headroom);
    in.device = true;
    estimate(&in, &e);
    CHECK(strcmp(e.host.peak_name, "host_build_peak") == 0 && fabs(e.headroom - 0.20) < 1e-12,
          "cagra ivf_pq on CUDA: %s, H %g", e.host.peak_name, e.headroom);
}

static void test_parse(void)
{
    ann_algo a;
    CHECK(ann_mem_model_parse("cagra", &a) == ANN_OK && a == ANN_ALGO_CAGRA, "cagra");
    CHECK(ann_mem_model_parse("nn-descent", &a) == ANN_OK && a == ANN_ALGO_NN_DESCENT, "nn-descent");
    CHECK(ann_mem_model_parse("ace", &a) == ANN_OK && a == ANN_ALGO_HNSW, "ace");
    CHECK(ann_mem_model_parse("IVF_FLAT", &a) == ANN_OK && a == ANN_ALGO_IVF_FLAT, "ivf_flat");
    CHECK(ann_mem_model_parse("ivf-pq", &a) == ANN_OK && a == ANN_ALGO_IVF_PQ && !strcmp(ann_mem_model_name(a), "ivf_pq"),
          "ivf_pq");
    CHECK(ann_mem_model_parse("ivf_sq", &a) == ANN_ERR_INVALID_ARG, "ivf_sq has no model");
    ann_mem_builder b;
    CHECK(ann_mem_builder_parse("iterative_cagra_search", &b) == ANN_OK && b == ANN_MEM_BUILD_ITERATIVE, "iterative");
    CHECK(ann_mem_builder_parse("nn-descent", &b) == ANN_OK && b == ANN_MEM_BUILD_NN_DESCENT, "nn-descent builder");
    CHECK(ann_mem_builder_parse("auto", &b) == ANN_ERR_INVALID_ARG, "auto builder");
    CHECK(strcmp(ann_mem_space_name(ANN_MEM_DEVICE), "device") == 0, "space name");

    /* Every model stays within ANN_MEM_MAX_TERMS with every option on. */
    ann_algo models[] = {ANN_ALGO_CAGRA, ANN_ALGO_NN_DESCENT, ANN_ALGO_BRUTE_FORCE, ANN_ALGO_IVF_FLAT, ANN_ALGO_HNSW,
                         ANN_ALGO_IVF_PQ};
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        for (int phase = 0; phase < 4; phase++) { /* 2, 3: builds on the CPU */
            ann_mem_inputs in;
            ann_mem_estimate e;
            ann_mem_inputs_init(&in, models[i]);
            in.rows = 5000;
            in.dim = 300;
            in.dtype = ANN_DTYPE_U8;
            in.n_lists = 400;
            in.compress = true;
            in.device = phase < 2;
            in.phase = (ann_mem_phase)(phase % 2);
            in.build_algo = phase == 3 ? ANN_MEM_BUILD_NN_DESCENT : ANN_MEM_BUILD_IVF_PQ;
            if (ann_mem_estimate_compute(&in, &e) != ANN_OK)
                continue;
            CHECK(e.n_terms < ANN_MEM_MAX_TERMS && e.n_counts < ANN_MEM_MAX_COUNTS, "%s: %zu terms",
                  ann_mem_model_name(models[i]), e.n_terms);
            CHECK(e.host.used || e.device.used, "%s has a peak", ann_mem_model_name(models[i]));
        }
    }
}

/* index_size of the model equals what a real index holds (ann_index_get_info). */
static void test_own_sizes(void)
{
    const int64_t n = 3000, d = 24;
    float *x = malloc((size_t)(n * d) * sizeof(float));
    uint64_t s = 12345;
    for (int64_t i = 0; i < n * d; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = (float)((s >> 40) & 0xffff) / 65536.0f;
    }
    ann_matrix m = ann_matrix_view(x, n, d, ANN_DTYPE_F32);
    ann_exec ex;
    ann_exec_init(&ex);
    ex.device = ANN_DEVICE_CPU;
    ex.n_threads = 2;

    ann_ivf_flat_params ip;
    ann_ivf_flat_params_init(&ip);
    ip.n_lists = 32;
    ann_index *ix = NULL;
    ann_status st = ann_index_build(ANN_ALGO_IVF_FLAT, &ip, &m, &ex, &ix);
    CHECK(st == ANN_OK, "ivf_flat build: %s", ann_last_error());
    if (st == ANN_OK) {
        ann_index_info info;
        ann_index_get_info(ix, &info);
        ann_mem_inputs in;
        ann_mem_estimate e;
        ann_mem_inputs_init(&in, ANN_ALGO_IVF_FLAT);
        in.rows = n;
        in.dim = d;
        in.n_lists = 32;
        estimate(&in, &e);
        CHECK(term(&e, "index_size")->bytes == info.memory_bytes, "ivf_flat index_size %llu, index holds %llu",
              (unsigned long long)term(&e, "index_size")->bytes, (unsigned long long)info.memory_bytes);
        /* 3000 rows, fraction 0.5 -> n_t = 1500, ratio 2 -> 1500 training rows */
        CHECK(count_of(&e, "n_train") == 1500, "n_train %g", count_of(&e, "n_train"));
        ann_index_free(ix);
    }
    ann_brute_force_params bp;
    ann_brute_force_params_init(&bp);
    bp.metric = ANN_METRIC_COSINE;
    st = ann_index_build(ANN_ALGO_BRUTE_FORCE, &bp, &m, &ex, &ix);
    CHECK(st == ANN_OK, "brute_force build: %s", ann_last_error());
    if (st == ANN_OK) {
        ann_index_info info;
        ann_index_get_info(ix, &info);
        ann_mem_inputs in;
        ann_mem_estimate e;
        ann_mem_inputs_init(&in, ANN_ALGO_BRUTE_FORCE);
        in.rows = n;
        in.dim = d;
        in.metric = ANN_METRIC_COSINE;
        estimate(&in, &e);
        CHECK(term(&e, "index_size")->bytes == info.memory_bytes, "brute_force index_size");
        ann_index_free(ix);
    }
    free(x);
}

int main(void)
{
    test_cagra_examples();
    test_cagra_other_terms();
    test_nn_descent_examples();
    test_capacity();
    test_ace();
    test_check();
    test_ivf_pq_terms();
    test_cpu_terms();
    test_parse();
    test_own_sizes();
    printf("test_memory: %d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
