/*
 * memory.c - the memory model of ann/memory.h.
 *
 * Each model fills a list of named terms.  A term carries its exact value
 * at the inputs' N and its linear form at that N (bytes ~= N x per_vector
 * + fixed): sums add the forms, a max() of sequential phases takes the
 * form of the largest phase.  The selected peak of each space is one of
 * the terms; the capacity solver evaluates the model again at other N.
 *
 * Sources: seeds/cagra.md "Memory footprint" and "Search peak memory
 * usage"; seeds/nn-descent.md "Memory footprint"; seeds/hnsw-ace.md
 * AceParams.npartitions; annkit's own layouts from lib/src/index.c,
 * lib/src/bf_cpu.c, lib/src/kmeans_cpu.c and cuda/bf_cuda.cu.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ann/brute_force.h"
#include "ann/cagra.h"
#include "ann/graph.h"
#include "ann/ivf_flat.h"
#include "ann/memory.h"
#include "internal.h"

#define MIB 1048576.0
#define GIB 1073741824.0

/* Largest N the capacity search considers (exact in a double). */
#define N_SEARCH_MAX ((int64_t)1 << 53)

/* cagra.md, "Initial graph build using iterative CAGRA search": Q_iter = min(N, 8192). */
#define CAGRA_ITER_CHUNK 8192
/* nn-descent.md, "Build peak memory usage": sample width S. */
#define NND_S 32
/* nn-descent.md: S_idx = sizeof(uint32_t). */
#define NND_S_IDX 4

/* annkit's own constants, as in the sources they model. */
enum {
    BF_QB = 64,             /* bf_cpu.c QB: queries per block */
    BF_BB = 512,            /* bf_cpu.c BB: base rows per block */
    BF_RERANK_PAD = 16,     /* bf_cpu.c RERANK_PAD: k + 16 candidates */
    BF_TOPK_BYTES = 32,     /* sizeof(ann_topk) on LP64 */
    BF_CAND_BYTES = 16,     /* bf_cpu.c struct cand {double; int64_t} */
    KM_ROW_BLOCK = 256,     /* kmeans_cpu.c ROW_BLOCK */
    KM_HIER_MIN = 257,      /* kmeans_cpu.c HIER_MIN_CLUSTERS */
    KM_PREDICT_CHUNK = 65536, /* kmeans_cpu.c predict conversion chunk */
};
/* cuda/common.cu cu_workspace_budget(): at most 1 GiB per call besides the cache. */
#define BF_CUDA_WORKSPACE ((uint64_t)1 << 30)

/* ------------------------------------------------------------------ */
/* Saturating arithmetic and linear forms                              */
/* ------------------------------------------------------------------ */

static uint64_t mul_sat(uint64_t x, uint64_t y)
{
    if (x != 0 && y > UINT64_MAX / x)
        return UINT64_MAX;
    return x * y;
}

static uint64_t add_sat(uint64_t x, uint64_t y)
{
    return x > UINT64_MAX - y ? UINT64_MAX : x + y;
}

static uint64_t round_up(uint64_t x, uint64_t to)
{
    uint64_t r = x % to;
    return r ? add_sat(x, to - r) : x;
}

static uint64_t gcd_u64(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* A size at N with its linear form there: v ~= N * a + b. */
typedef struct lin {
    uint64_t v;
    double a, b;
} lin;

static const lin lin_zero = {0, 0.0, 0.0};

/* n rows of `per` bytes each. */
static lin lin_rows(uint64_t n, uint64_t per)
{
    lin r = {mul_sat(n, per), (double)per, 0.0};
    return r;
}

/* A size that does not depend on N. */
static lin lin_fixed(uint64_t v)
{
    lin r = {v, 0.0, (double)v};
    return r;
}

static lin lin_add(lin x, lin y)
{
    lin r = {add_sat(x.v, y.v), x.a + y.a, x.b + y.b};
    return r;
}

/* Sequential phases: the larger one at N (its form is the one in force there). */
static lin lin_max(lin x, lin y)
{
    return y.v > x.v ? y : x;
}

/* ------------------------------------------------------------------ */
/* Names                                                               */
/* ------------------------------------------------------------------ */

static bool name_eq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char ca = *a == '-' ? '_' : *a, cb = *b == '-' ? '_' : *b;
        if (ca >= 'A' && ca <= 'Z')
            ca = (char)(ca - 'A' + 'a');
        if (ca != cb)
            return false;
    }
    return *a == *b;
}

ann_status ann_mem_model_parse(const char *name, ann_algo *out)
{
    static const struct {
        const char *name;
        ann_algo algo;
    } models[] = {
        {"cagra", ANN_ALGO_CAGRA},           {"nn_descent", ANN_ALGO_NN_DESCENT},
        {"brute_force", ANN_ALGO_BRUTE_FORCE}, {"ivf_flat", ANN_ALGO_IVF_FLAT},
        {"ace", ANN_ALGO_HNSW},              {"hnsw", ANN_ALGO_HNSW},
    };
    for (size_t i = 0; name && i < sizeof models / sizeof models[0]; i++) {
        if (name_eq(name, models[i].name)) {
            *out = models[i].algo;
            return ANN_OK;
        }
    }
    return ann_set_error(ANN_ERR_INVALID_ARG,
                         "unknown model '%s' (cagra, nn_descent, brute_force, ivf_flat, ace)",
                         name ? name : "");
}

const char *ann_mem_model_name(ann_algo algo)
{
    switch (algo) {
    case ANN_ALGO_CAGRA: return "cagra";
    case ANN_ALGO_NN_DESCENT: return "nn_descent";
    case ANN_ALGO_BRUTE_FORCE: return "brute_force";
    case ANN_ALGO_IVF_FLAT: return "ivf_flat";
    case ANN_ALGO_HNSW: return "ace";
    default: return "?";
    }
}

ann_status ann_mem_builder_parse(const char *name, ann_mem_builder *out)
{
    if (name && name_eq(name, "ivf_pq"))
        *out = ANN_MEM_BUILD_IVF_PQ;
    else if (name && name_eq(name, "nn_descent"))
        *out = ANN_MEM_BUILD_NN_DESCENT;
    else if (name && (name_eq(name, "iterative") || name_eq(name, "iterative_cagra_search")))
        *out = ANN_MEM_BUILD_ITERATIVE;
    else
        return ann_set_error(ANN_ERR_INVALID_ARG, "unknown CAGRA build algorithm '%s' (ivf_pq, nn_descent, iterative)",
                             name ? name : "");
    return ANN_OK;
}

const char *ann_mem_builder_name(ann_mem_builder b)
{
    switch (b) {
    case ANN_MEM_BUILD_IVF_PQ: return "ivf_pq";
    case ANN_MEM_BUILD_NN_DESCENT: return "nn_descent";
    case ANN_MEM_BUILD_ITERATIVE: return "iterative";
    }
    return "?";
}

const char *ann_mem_space_name(ann_mem_space s)
{
    switch (s) {
    case ANN_MEM_HOST: return "host";
    case ANN_MEM_DEVICE: return "device";
    case ANN_MEM_TOTAL: return "total";
    }
    return "?";
}

/* ------------------------------------------------------------------ */
/* Inputs                                                              */
/* ------------------------------------------------------------------ */

void ann_mem_inputs_init(ann_mem_inputs *in, ann_algo algo)
{
    memset(in, 0, sizeof *in);
    in->algo = algo;
    in->phase = ANN_MEM_PHASE_BUILD;
    in->dtype = ANN_DTYPE_F32;
    in->metric = ANN_METRIC_SQEUCLIDEAN;
    in->graph_degree = 64;
    in->intermediate_graph_degree = 128;
    in->build_algo = ANN_MEM_BUILD_IVF_PQ;
    in->n_lists = 1024;
    in->train_set_ratio = 10.0;
    in->batch = 1024;
    in->k = 10;
    in->idx_bytes = 4;
    in->return_distances = true;
    in->input_on_host = true;
    in->kmeans_trainset_fraction = 0.5;
    in->max_train_points_per_cluster = 256;
    in->imbalance = 3.0;
}

void ann_mem_budget_init(ann_mem_budget *b)
{
    memset(b, 0, sizeof *b);
    b->headroom = -1.0;
}

static bool has_norms(ann_metric m)
{
    return m == ANN_METRIC_SQEUCLIDEAN || m == ANN_METRIC_EUCLIDEAN || m == ANN_METRIC_COSINE;
}

static ann_status check_inputs(const ann_mem_inputs *in)
{
    const char *model = ann_mem_model_name(in->algo);
    if (in->rows < 1 || in->rows > N_SEARCH_MAX)
        return ann_set_error(ANN_ERR_INVALID_ARG, "%s: rows (N) = %lld is out of range [1, 2^53]", model,
                             (long long)in->rows);
    if (in->dim < 1 || in->dim > ((int64_t)1 << 32))
        return ann_set_error(ANN_ERR_INVALID_ARG, "%s: dim (D) = %lld is out of range [1, 2^32]", model,
                             (long long)in->dim);
    if (in->bytes_per_value < 0 || in->bytes_per_value > 64)
        return ann_set_error(ANN_ERR_INVALID_ARG, "%s: bytes per value (B) = %d is out of range [1, 64]", model,
                             (int)in->bytes_per_value);
    if (in->bytes_per_value == 0 && ann_dtype_size(in->dtype) == 0)
        return ann_set_error(ANN_ERR_INVALID_ARG, "%s: unknown dtype %d", model, (int)in->dtype);
    if (in->n_threads < 0)
        return ann_set_error(ANN_ERR_INVALID_ARG, "%s: threads = %d is negative", model, (int)in->n_threads);
    switch (in->algo) {
    case ANN_ALGO_CAGRA:
        if (in->build_algo != ANN_MEM_BUILD_IVF_PQ && in->build_algo != ANN_MEM_BUILD_NN_DESCENT &&
            in->build_algo != ANN_MEM_BUILD_ITERATIVE)
            return ann_set_error(ANN_ERR_INVALID_ARG, "cagra: unknown build algorithm %d", (int)in->build_algo);
        if (in->n_lists < 1)
            return ann_set_error(ANN_ERR_INVALID_ARG, "cagra: n_lists (C) = %lld must be at least 1",
                                 (long long)in->n_lists);
        if (!(in->train_set_ratio >= 1.0) || !isfinite(in->train_set_ratio))
            return ann_set_error(ANN_ERR_INVALID_ARG, "cagra: train_set_ratio (R) = %g must be at least 1",
                                 in->train_set_ratio);
        if (in->idx_bytes < 1 || in->idx_bytes > 8)
            return ann_set_error(ANN_ERR_INVALID_ARG, "cagra: S_idx = %d is out of range [1, 8]",
                                 (int)in->idx_bytes);
        if (in->dim_align != 0 && in->dim_align < in->dim)
            return ann_set_error(ANN_ERR_INVALID_ARG, "cagra: D_align = %lld is smaller than D = %lld",
                                 (long long)in->dim_align, (long long)in->dim);
        /* fall through */
    case ANN_ALGO_NN_DESCENT:
        if (in->graph_degree < 1 || in->graph_degree > (1 << 24))
            return ann_set_error(ANN_ERR_INVALID_ARG, "%s: graph_degree (G) = %lld is out of range [1, 2^24]",
                                 model, (long long)in->graph_degree);
        if (in->intermediate_graph_degree < 1 || in->intermediate_graph_degree > (1 << 24))
            return ann_set_error(ANN_ERR_INVALID_ARG,
                                 "%s: intermediate_graph_degree (I) = %lld is out of range [1, 2^24]", model,
                                 (long long)in->intermediate_graph_degree);
        if (in->dist_comp_bytes != 0 && in->dist_comp_bytes != 2 && in->dist_comp_bytes != 4)
            return ann_set_error(ANN_ERR_INVALID_ARG, "%s: B_comp = %d must be 2 (fp16) or 4 (fp32)", model,
                                 (int)in->dist_comp_bytes);
        break;
    case ANN_ALGO_IVF_FLAT:
        if (in->n_lists < 1 || in->n_lists > (1 << 24))
            return ann_set_error(ANN_ERR_INVALID_ARG, "ivf_flat: n_lists = %lld is out of range [1, 2^24]",
                                 (long long)in->n_lists);
        if (!(in->kmeans_trainset_fraction > 0.0 && in->kmeans_trainset_fraction <= 1.0))
            return ann_set_error(ANN_ERR_INVALID_ARG,
                                 "ivf_flat: kmeans_trainset_fraction = %g is out of range (0, 1]",
                                 in->kmeans_trainset_fraction);
        if (in->max_train_points_per_cluster < 0 || in->max_train_points_per_cluster > (1 << 30))
            return ann_set_error(ANN_ERR_INVALID_ARG,
                                 "ivf_flat: max_train_points_per_cluster = %lld is out of range [0, 2^30]",
                                 (long long)in->max_train_points_per_cluster);
        break;
    case ANN_ALGO_HNSW:
        if (in->npartitions < 0)
            return ann_set_error(ANN_ERR_INVALID_ARG, "ace: npartitions = %lld is negative",
                                 (long long)in->npartitions);
        if (!(in->imbalance >= 1.0) || !isfinite(in->imbalance))
            return ann_set_error(ANN_ERR_INVALID_ARG, "ace: imbalance = %g must be at least 1", in->imbalance);
        if (!in->input_on_host)
            return ann_set_error(ANN_ERR_INVALID_ARG, "ace: the dataset must be in host memory (hnsw-ace.md)");
        break;
    case ANN_ALGO_BRUTE_FORCE:
        break;
    default:
        return ann_set_error(ANN_ERR_UNSUPPORTED, "no memory model for algorithm %s", ann_algo_name(in->algo));
    }
    if (in->phase == ANN_MEM_PHASE_SEARCH) {
        if (in->algo != ANN_ALGO_CAGRA && in->algo != ANN_ALGO_BRUTE_FORCE)
            return ann_set_error(ANN_ERR_UNSUPPORTED, "%s: the search memory is not modelled%s", model,
                                 in->algo == ANN_ALGO_NN_DESCENT ? " (NN-Descent does not search)" : "");
        if (in->batch < 1 || in->k < 1)
            return ann_set_error(ANN_ERR_INVALID_ARG, "%s: batch (Q) = %lld and k (K) = %lld must be at least 1",
                                 model, (long long)in->batch, (long long)in->k);
    } else if (in->phase != ANN_MEM_PHASE_BUILD) {
        return ann_set_error(ANN_ERR_INVALID_ARG, "%s: unknown phase %d", model, (int)in->phase);
    }
    if (in->algo == ANN_ALGO_CAGRA && (in->batch < 1 || in->k < 1))
        return ann_set_error(ANN_ERR_INVALID_ARG, "cagra: batch (Q) = %lld and k (K) = %lld must be at least 1",
                             (long long)in->batch, (long long)in->k);
    return ANN_OK;
}

/* ------------------------------------------------------------------ */
/* Building the list of terms                                          */
/* ------------------------------------------------------------------ */

static int add_term(ann_mem_estimate *e, const char *name, ann_mem_space sp, lin x, const char *formula,
                    const char *source)
{
    if (e->n_terms >= ANN_MEM_MAX_TERMS)
        return -1; /* cannot happen: the models have fewer terms; checked by the tests */
    ann_mem_term *t = &e->terms[e->n_terms];
    t->name = name;
    t->space = sp;
    t->bytes = x.v;
    t->per_vector = x.a;
    t->fixed = x.b;
    t->formula = formula;
    t->source = source;
    t->is_peak = false;
    return (int)e->n_terms++;
}

static lin term_lin(const ann_mem_estimate *e, int i)
{
    lin r = {e->terms[i].bytes, e->terms[i].per_vector, e->terms[i].fixed};
    return r;
}

static void set_peak(ann_mem_estimate *e, int i)
{
    if (i < 0)
        return;
    ann_mem_term *t = &e->terms[i];
    ann_mem_side *s = t->space == ANN_MEM_DEVICE ? &e->device : &e->host;
    t->is_peak = true;
    s->used = true;
    s->peak_name = t->name;
    s->peak = t->bytes;
    s->b_per_vector = t->per_vector;
    s->b_fixed = t->fixed;
}

static void add_count(ann_mem_estimate *e, const char *name, double value, const char *formula)
{
    if (e->n_counts >= ANN_MEM_MAX_COUNTS)
        return;
    ann_mem_count *c = &e->counts[e->n_counts++];
    c->name = name;
    c->value = value;
    c->formula = formula;
}

const ann_mem_term *ann_mem_term_find(const ann_mem_estimate *est, const char *name)
{
    for (size_t i = 0; i < est->n_terms; i++)
        if (strcmp(est->terms[i].name, name) == 0)
            return &est->terms[i];
    return NULL;
}

/* ------------------------------------------------------------------ */
/* CAGRA (seeds/cagra.md)                                              */
/* ------------------------------------------------------------------ */

#define SRC_CAGRA_BASE "cagra.md: Baseline memory after build"
#define SRC_CAGRA_IVFPQ "cagra.md: Initial graph build using IVF-PQ"
#define SRC_CAGRA_NND "cagra.md: Initial graph build using NN-Descent"
#define SRC_CAGRA_ITER "cagra.md: Initial graph build using iterative CAGRA search"
#define SRC_CAGRA_OPT "cagra.md: Optimize phase"
#define SRC_CAGRA_BUILD "cagra.md: Overall build peak memory usage"
#define SRC_CAGRA_SEARCH "cagra.md: Search peak memory usage"
#define SRC_INPUT "annkit: the dataset as the tool holds it"
#define SRC_QUERIES "annkit: the queries and results as annsearch holds them"

static void model_cagra(const ann_mem_inputs *in, ann_mem_estimate *e)
{
    const uint64_t N = (uint64_t)in->rows, D = (uint64_t)in->dim, B = (uint64_t)in->bytes_per_value;
    const uint64_t G = (uint64_t)in->graph_degree, I = (uint64_t)in->intermediate_graph_degree;
    const uint64_t C = (uint64_t)in->n_lists, Q = (uint64_t)in->batch, K = (uint64_t)in->k;
    const uint64_t S = (uint64_t)in->idx_bytes;
    const double R = in->train_set_ratio;
    const uint64_t M_l2 = has_norms(in->metric) ? 1 : 0;

    /* D_align: rows padded so that a row is a multiple of 16 bytes (notes/algorithms.md 6.2). */
    uint64_t D_align = (uint64_t)in->dim_align;
    if (D_align == 0) {
        uint64_t l = 16 / gcd_u64(16, B) * B; /* lcm(16, B) */
        D_align = round_up(D * B, l) / B;
    }
    const uint64_t n_train = (uint64_t)floor((double)N / R);
    const uint64_t Q_iter = N < CAGRA_ITER_CHUNK ? N : CAGRA_ITER_CHUNK;
    const uint64_t K_iter = I + 1;

    add_count(e, "N/R", (double)n_train, "floor(N/R): IVF-PQ training rows");
    add_count(e, "D_align", (double)D_align, "round_up(D*B, lcm(16,B))/B unless given");
    add_count(e, "Q_iter", (double)Q_iter, "min(N, 8192)");
    add_count(e, "K_iter", (double)K_iter, "I+1");
    add_count(e, "G_iter", (double)G, "G");

    /* Baseline */
    int dataset = add_term(e, "dataset_size", ANN_MEM_DEVICE, lin_rows(N, D * B), "N*D*B", SRC_CAGRA_BASE);
    int graph = add_term(e, "graph_size", ANN_MEM_HOST, lin_rows(N, G * S), "N*G*S_idx", SRC_CAGRA_BASE);

    /* IVF-PQ: N/R training vectors (fp32) + C centroids (fp32) + one uint32 per training vector. */
    lin train = {mul_sat(n_train, D * 4 + 4), (double)(D * 4 + 4) / R, 0.0};
    int ivfpq_build = add_term(e, "IVFPQ_build_peak", ANN_MEM_DEVICE, lin_add(train, lin_fixed(C * D * 4)),
                               "(N/R)*D*4 + C*D*4 + (N/R)*4", SRC_CAGRA_IVFPQ);
    int ivfpq_search = add_term(e, "IVFPQ_search_peak", ANN_MEM_DEVICE,
                                lin_fixed(add_sat(add_sat(Q * D * 4, Q * I * 4), Q * I * 4)),
                                "Q*D*4 + Q*I*4 + Q*I*4", SRC_CAGRA_IVFPQ);

    /* NN-Descent: fp16 vectors + 276 B of working graph, locks and counters (+4 B of L2 norms). */
    int nnd_device = add_term(e, "NND_device_peak", ANN_MEM_DEVICE, lin_rows(N, D * 2 + 276 + 4 * M_l2),
                              "N*(D*2 + 276 + 4*M_l2)", SRC_CAGRA_NND);
    int nnd_host = add_term(e, "NND_host_peak", ANN_MEM_HOST, lin_rows(N, 13 * I + 912), "N*(13*I + 912)",
                            SRC_CAGRA_NND);

    /* Iterative CAGRA search. */
    lin d_iter = lin_rows(N, D_align * B);
    lin g_tmp = lin_rows(N, G * S);
    lin q_tile = Q_iter < CAGRA_ITER_CHUNK ? lin_rows(N, D_align * B) : lin_fixed(Q_iter * D_align * B);
    lin r_tile = Q_iter < CAGRA_ITER_CHUNK ? lin_rows(N, K_iter * (S + 4)) : lin_fixed(Q_iter * K_iter * (S + 4));
    lin h_iter = lin_rows(N, K_iter * S);
    h_iter.v = round_up(h_iter.v, (uint64_t)2 << 20);
    add_term(e, "D_iter", ANN_MEM_DEVICE, d_iter, "N*D_align*B", SRC_CAGRA_ITER);
    add_term(e, "G_tmp", ANN_MEM_DEVICE, g_tmp, "N*G_iter*S_idx", SRC_CAGRA_ITER);
    add_term(e, "Q_tile", ANN_MEM_DEVICE, q_tile, "Q_iter*D_align*B", SRC_CAGRA_ITER);
    add_term(e, "R_tile", ANN_MEM_DEVICE, r_tile, "Q_iter*K_iter*(S_idx + 4)", SRC_CAGRA_ITER);
    add_term(e, "H_iter", ANN_MEM_HOST, h_iter, "round_up(N*K_iter*S_idx, 2 MiB)", SRC_CAGRA_ITER);
    lin w_iter = lin_add(lin_add(g_tmp, q_tile), r_tile);
    add_term(e, "W_iter", ANN_MEM_DEVICE, w_iter, "G_tmp + Q_tile + R_tile", SRC_CAGRA_ITER);

    /* Optimize: 4 B of bookkeeping + I candidates of (S_idx ids + 1 B of pruning state). */
    int optimize = add_term(e, "optimize_peak", ANN_MEM_DEVICE, lin_rows(N, 4 + (S + 1) * I),
                            "N*(4 + (S_idx + 1)*I)", SRC_CAGRA_OPT);
    lin opt = term_lin(e, optimize);

    int iter_dev = add_term(e, "iterative_device_peak", ANN_MEM_DEVICE, lin_add(d_iter, lin_max(w_iter, opt)),
                            "D_iter + max(W_iter, optimize_peak)", SRC_CAGRA_ITER);
    int iter_host = add_term(e, "iterative_host_peak", ANN_MEM_HOST, lin_add(h_iter, lin_rows(N, G * S)),
                             "H_iter + N*G*S_idx", SRC_CAGRA_ITER);

    /* Overall build peaks (sequential phases are not added). */
    lin ds = term_lin(e, dataset);
    int bp_ivfpq = add_term(e, "build_peak_ivf_pq", ANN_MEM_DEVICE,
                            lin_add(ds, lin_max(lin_max(term_lin(e, ivfpq_build), term_lin(e, ivfpq_search)), opt)),
                            "dataset_size + max(IVFPQ_build_peak, IVFPQ_search_peak, optimize_peak)",
                            SRC_CAGRA_BUILD);
    int bp_nnd = add_term(e, "build_peak_nn_descent", ANN_MEM_DEVICE,
                          lin_add(in->input_on_device ? ds : lin_zero, lin_max(term_lin(e, nnd_device), opt)),
                          in->input_on_device ? "dataset_size* + max(NND_device_peak, optimize_peak)"
                                              : "max(NND_device_peak, optimize_peak) (dataset_size* = 0: input not on device)",
                          SRC_CAGRA_BUILD);

    /* Search */
    int qs = add_term(e, "query_size", ANN_MEM_DEVICE, lin_fixed(Q * D * 4), "Q*D*sizeof(float)", SRC_CAGRA_SEARCH);
    int rs = add_term(e, "result_size", ANN_MEM_DEVICE, lin_fixed(Q * K * (S + 4)), "Q*K*(S_idx + sizeof(float))",
                      SRC_CAGRA_SEARCH);
    int ws = add_term(e, "workspace_size", ANN_MEM_DEVICE, lin_add(term_lin(e, qs), term_lin(e, rs)),
                      "query_size + result_size", SRC_CAGRA_SEARCH);
    int sm = add_term(e, "search_memory", ANN_MEM_DEVICE,
                      lin_add(lin_add(ds, term_lin(e, graph)), term_lin(e, ws)),
                      "dataset_size + graph_size + workspace_size", SRC_CAGRA_SEARCH);

    if (in->phase == ANN_MEM_PHASE_SEARCH) {
        set_peak(e, sm);
        return;
    }
    int dev_peak, host_peak;
    const char *host_formula;
    switch (in->build_algo) {
    case ANN_MEM_BUILD_NN_DESCENT:
        dev_peak = bp_nnd;
        host_peak = nnd_host;
        host_formula = "input_size + NND_host_peak";
        break;
    case ANN_MEM_BUILD_ITERATIVE:
        dev_peak = iter_dev;
        host_peak = iter_host;
        host_formula = "input_size + iterative_host_peak";
        break;
    default:
        dev_peak = bp_ivfpq;
        host_peak = graph;
        host_formula = "input_size + graph_size";
        break;
    }
    set_peak(e, dev_peak);
    if (in->input_on_host) {
        int inp = add_term(e, "input_size", ANN_MEM_HOST, lin_rows(N, D * B), "N*D*B", SRC_INPUT);
        host_peak = add_term(e, "host_build_peak", ANN_MEM_HOST, lin_add(term_lin(e, inp), term_lin(e, host_peak)),
                             host_formula, SRC_INPUT);
    }
    set_peak(e, host_peak);
}

/* ------------------------------------------------------------------ */
/* NN-Descent (seeds/nn-descent.md)                                    */
/* ------------------------------------------------------------------ */

#define SRC_NND_BASE "nn-descent.md: Baseline memory after build"
#define SRC_NND_BUILD "nn-descent.md: Build peak memory usage"

/* roundUp32(x) when x <= 32, else roundUp32(1.3 * x); 1.3 * x is truncated to an
 * integer first, as the implementation does (notes/algorithms.md 5.2). */
static uint64_t nnd_expand(uint64_t x)
{
    uint64_t w = x <= 32 ? x : x * 13 / 10;
    return round_up(w, 32);
}

static void model_nn_descent(const ann_mem_inputs *in, ann_mem_estimate *e)
{
    const uint64_t N = (uint64_t)in->rows, D = (uint64_t)in->dim, B_in = (uint64_t)in->bytes_per_value;
    /* G and I after clipping to the dataset size (notes/algorithms.md 5.1). */
    uint64_t I = (uint64_t)in->intermediate_graph_degree;
    if (I >= N)
        I = N - 1;
    uint64_t G = (uint64_t)in->graph_degree;
    if (G > I)
        G = I;
    const uint64_t E_G = nnd_expand(G), E_I = nnd_expand(I);
    const uint64_t S = NND_S, S_idx = NND_S_IDX;
    const uint64_t R = in->return_distances ? 1 : 0;
    const uint64_t M_l2 = has_norms(in->metric) ? 1 : 0;
    uint64_t B_comp = (uint64_t)in->dist_comp_bytes;
    if (B_comp == 0) /* AUTO: fp16 unless L1, or fp32 data with D <= 16 (notes/algorithms.md 5.5) */
        B_comp = in->metric == ANN_METRIC_L1 || (in->dtype == ANN_DTYPE_F32 && B_in == 4 && D <= 16) ? 4 : 2;

    add_count(e, "G", (double)G, "min(graph_degree, I)");
    add_count(e, "I", (double)I, "min(intermediate_graph_degree, N-1)");
    add_count(e, "E_G", (double)E_G, "roundUp32(G) if G <= 32 else roundUp32(1.3*G)");
    add_count(e, "E_I", (double)E_I, "roundUp32(I) if I <= 32 else roundUp32(1.3*I)");
    add_count(e, "B_comp", (double)B_comp, "2 fp16, 4 fp32");
    add_count(e, "S", (double)S, "sample width");
    add_count(e, "R", (double)R, "1 when return_distances");
    add_count(e, "M_l2", (double)M_l2, "1 for metrics that store norms");

    int graph = add_term(e, "graph_size", ANN_MEM_HOST, lin_rows(N, G * S_idx), "N*G*S_idx", SRC_NND_BASE);
    int dist = add_term(e, "distances_size", ANN_MEM_DEVICE, lin_rows(N, R * G * 4), "R*N*G*4", SRC_NND_BASE);
    add_term(e, "index_size", ANN_MEM_TOTAL, lin_add(term_lin(e, graph), term_lin(e, dist)),
             "graph_size + distances_size", SRC_NND_BASE);
    int cds = add_term(e, "compute_dataset_size", ANN_MEM_DEVICE, lin_rows(N, D * B_comp), "N*D*B_comp",
                       SRC_NND_BUILD);
    int l2 = add_term(e, "l2_norms_size", ANN_MEM_DEVICE, lin_rows(N, M_l2 * 4), "M_l2*N*4", SRC_NND_BUILD);
    int dws = add_term(e, "device_workspace_size", ANN_MEM_DEVICE, lin_rows(N, S * S_idx + S * 4 + 4 + 2 * 8),
                       "N*S*S_idx + N*S*4 + N*4 + 2*N*8", SRC_NND_BUILD);
    lin dev = lin_add(lin_add(term_lin(e, cds), term_lin(e, l2)), lin_add(term_lin(e, dws), term_lin(e, dist)));
    if (in->input_on_device)
        dev = lin_add(term_lin(e, add_term(e, "device_input_size", ANN_MEM_DEVICE, lin_rows(N, D * B_in), "N*D*B_in",
                                           SRC_NND_BUILD)),
                      dev);
    int dbp = add_term(e, "device_build_peak", ANN_MEM_DEVICE, dev,
                       in->input_on_device
                           ? "device_input_size + compute_dataset_size + l2_norms_size + device_workspace_size + distances_size"
                           : "compute_dataset_size + l2_norms_size + device_workspace_size + distances_size "
                             "(no N*D*B_in: the input is not in device memory)",
                       SRC_NND_BUILD);
    lin hws = term_lin(e, graph);
    hws = lin_add(hws, lin_rows(N, E_G * (S_idx + 4)));
    hws = lin_add(hws, lin_rows(N, E_I * 2));
    hws = lin_add(hws, lin_rows(N, 912));
    hws = lin_add(hws, lin_rows(N, R * G * 4));
    int hw = add_term(e, "host_workspace_size", ANN_MEM_HOST, hws,
                      "graph_size + N*E_G*(S_idx + 4) + N*E_I*2 + N*912 + R*N*G*4", SRC_NND_BUILD);
    set_peak(e, dbp);
    if (in->input_on_host) {
        int inp = add_term(e, "input_size", ANN_MEM_HOST, lin_rows(N, D * B_in), "N*D*B_in", SRC_INPUT);
        hw = add_term(e, "host_build_peak", ANN_MEM_HOST, lin_add(term_lin(e, inp), hws),
                      "input_size + host_workspace_size", SRC_INPUT);
    }
    set_peak(e, hw);
}

/* ------------------------------------------------------------------ */
/* brute_force (annkit: lib/src/index.c, lib/src/bf_cpu.c)             */
/* ------------------------------------------------------------------ */

#define SRC_INDEX "annkit: lib/src/index.c"
#define SRC_BF "annkit: lib/src/bf_cpu.c ann_cpu_bf_search"
#define SRC_BF_CUDA "annkit: cuda/bf_cuda.cu device cache, cuda/common.cu budget"
#define SRC_SAVE "annkit: formats/container.c zstd buffers"

static int threads_of(const ann_mem_inputs *in)
{
    return ann_threads(in->n_threads);
}

static void model_brute_force(const ann_mem_inputs *in, ann_mem_estimate *e)
{
    const uint64_t N = (uint64_t)in->rows, D = (uint64_t)in->dim, B = (uint64_t)in->bytes_per_value;
    const uint64_t M_n = has_norms(in->metric) ? 1 : 0;

    /* a build holds the dataset it read; a search loads (maps) the index instead */
    int inp = in->phase == ANN_MEM_PHASE_BUILD
                  ? add_term(e, "input_size", ANN_MEM_HOST, lin_rows(N, D * B), "N*D*B", SRC_INPUT)
                  : -1;
    int data = add_term(e, "data_size", ANN_MEM_HOST, lin_rows(N, D * B), "N*D*B", SRC_INDEX);
    int norms = add_term(e, "norms_size", ANN_MEM_HOST, lin_rows(N, 4 * M_n), "4*N*M_norms", SRC_INDEX);
    lin index = lin_add(term_lin(e, data), term_lin(e, norms));
    int ix = add_term(e, "index_size", ANN_MEM_HOST, index, "data_size + norms_size", SRC_INDEX);
    add_count(e, "M_norms", (double)M_n, "1 for sqeuclidean, euclidean, cosine");

    if (in->phase == ANN_MEM_PHASE_BUILD) {
        lin peak = lin_add(term_lin(e, inp), index);
        const char *f = "input_size + index_size";
        if (in->compress) {
            peak = lin_add(peak, index);
            f = "input_size + 2*index_size (zstd copies, at most index_size)";
        }
        set_peak(e, add_term(e, "build_peak", ANN_MEM_HOST, peak, f, in->compress ? SRC_SAVE : SRC_INDEX));
        return;
    }

    /* Search of a batch of Q queries (bf_cpu.c). */
    const uint64_t Q = (uint64_t)in->batch, k = (uint64_t)in->k;
    const uint64_t nt = (uint64_t)threads_of(in);
    const uint64_t kk = k + BF_RERANK_PAD < N ? k + BF_RERANK_PAD : N;
    const uint64_t n_qblocks = (Q + BF_QB - 1) / BF_QB;
    uint64_t n_slices = n_qblocks >= 4 * nt ? 1 : nt;
    if (n_slices > (N + BF_BB - 1) / BF_BB)
        n_slices = (N + BF_BB - 1) / BF_BB;
    if (n_slices < 1)
        n_slices = 1;
    add_count(e, "threads", (double)nt, "OpenMP threads");
    add_count(e, "kk", (double)kk, "min(k + 16, N)");
    add_count(e, "n_slices", (double)n_slices, "1 if ceil(Q/64) >= 4*threads else threads, <= ceil(N/512)");

    /* kk and n_slices depend on N only while N is small: their terms count as fixed. */
    int qin = add_term(e, "queries_size", ANN_MEM_HOST, lin_fixed(Q * D * B), "Q*D*B", SRC_QUERIES);
    int res = add_term(e, "results_size", ANN_MEM_HOST, lin_fixed(Q * k * 12), "Q*k*(8 + 4)", SRC_QUERIES);
    int qf = add_term(e, "query_f32_size", ANN_MEM_HOST, lin_fixed(Q * D * 4), "Q*D*4", SRC_BF);
    int cand = add_term(e, "candidates_size", ANN_MEM_HOST,
                        lin_fixed(add_sat(mul_sat(n_slices * Q, kk * 12), n_slices * Q * 4)),
                        "n_slices*Q*kk*(4 + 8) + n_slices*Q*4", SRC_BF);
    uint64_t scan = nt * ((uint64_t)BF_QB * BF_BB * 4 + (in->dtype != ANN_DTYPE_F32 ? (uint64_t)BF_BB * D * 4 : 0) +
                          (uint64_t)BF_QB * BF_TOPK_BYTES);
    uint64_t rerank = nt * (n_slices * kk + 1) * BF_CAND_BYTES;
    int thr = add_term(e, "thread_scratch_size", ANN_MEM_HOST, lin_fixed(scan > rerank ? scan : rerank),
                       "threads*max(64*512*4 + [not f32] 512*D*4 + 64*32, (n_slices*kk + 1)*16)", SRC_BF);
    lin ws = lin_add(lin_add(term_lin(e, qf), term_lin(e, cand)), term_lin(e, thr));
    int wsi = add_term(e, "search_workspace_size", ANN_MEM_HOST, ws,
                       "query_f32_size + candidates_size + thread_scratch_size", SRC_BF);
    lin peak = lin_add(lin_add(term_lin(e, ix), term_lin(e, qin)), lin_add(term_lin(e, res), term_lin(e, wsi)));
    set_peak(e, add_term(e, "search_peak", ANN_MEM_HOST, peak,
                         "index_size + queries_size + results_size + search_workspace_size", SRC_BF));
    if (in->device) {
        int dd = add_term(e, "device_data_size", ANN_MEM_DEVICE, lin_rows(N, D * 4), "N*D*4", SRC_BF_CUDA);
        int dn = add_term(e, "device_norms_size", ANN_MEM_DEVICE, lin_rows(N, 4 * M_n), "4*N*M_norms",
                          SRC_BF_CUDA);
        int dw = add_term(e, "device_workspace_size", ANN_MEM_DEVICE, lin_fixed(BF_CUDA_WORKSPACE),
                          "at most 1 GiB", SRC_BF_CUDA);
        set_peak(e, add_term(e, "device_search_peak", ANN_MEM_DEVICE,
                             lin_add(lin_add(term_lin(e, dd), term_lin(e, dn)), term_lin(e, dw)),
                             "device_data_size + device_norms_size + device_workspace_size", SRC_BF_CUDA));
    }
}

/* ------------------------------------------------------------------ */
/* ivf_flat (annkit: lib/src/index.c ivf_build, lib/src/kmeans_cpu.c)  */
/* ------------------------------------------------------------------ */

#define SRC_KMEANS "annkit: lib/src/kmeans_cpu.c ann_cpu_kmeans_fit"
#define SRC_IVF "annkit: lib/src/index.c ivf_build/ivf_add/ivf_repack"

/* Training rows of ivf_build for n rows: the strided subset n / ratio (ratio to *ratio_out). */
static uint64_t ivf_train_rows(const ann_mem_inputs *in, uint64_t n, uint64_t *ratio_out)
{
    const int64_t L = in->n_lists;
    const float frac = (float)in->kmeans_trainset_fraction; /* the params field is a float */
    int64_t nt = (int64_t)((double)frac * (double)n);
    if (in->max_train_points_per_cluster > 0 && nt > L * in->max_train_points_per_cluster)
        nt = L * in->max_train_points_per_cluster;
    if (nt < L)
        nt = L;
    int64_t ratio = (int64_t)n / nt > 1 ? (int64_t)n / nt : 1;
    *ratio_out = (uint64_t)ratio;
    return (uint64_t)((int64_t)n / ratio);
}

static void model_ivf_flat(const ann_mem_inputs *in, ann_mem_estimate *e)
{
    const uint64_t N = (uint64_t)in->rows, D = (uint64_t)in->dim, B = (uint64_t)in->bytes_per_value;
    const uint64_t L = (uint64_t)in->n_lists;
    const uint64_t M_n = has_norms(in->metric) ? 1 : 0;
    const uint64_t nt = (uint64_t)threads_of(in);
    uint64_t ratio;
    const uint64_t T = ivf_train_rows(in, N, &ratio);
    const bool hier = L >= KM_HIER_MIN;
    const uint64_t n_meso = hier ? (uint64_t)lround(sqrt((double)L)) : 0;
    const uint64_t cap = hier ? (2 * T + n_meso - 1) / n_meso : 0;
    const uint64_t T_sub = hier ? (cap < T ? cap : T) : 0;
    /* Linear forms: T = N / ratio grows by 1/ratio per vector while the ratio holds. */
    const double dT = 1.0 / (double)ratio;
    const double dT_sub = hier ? (cap < T ? 2.0 * dT / (double)n_meso : dT) : 0.0;

    add_count(e, "n_train", (double)T,
              "N/max(1, N/n_t), n_t = clamp(floor(fraction*N), n_lists, n_lists*max_train_points_per_cluster)");
    add_count(e, "hierarchical", hier ? 1.0 : 0.0, "n_lists >= 257");
    if (hier) {
        add_count(e, "n_meso", (double)n_meso, "round(sqrt(n_lists))");
        add_count(e, "n_sub", (double)T_sub, "min(n_train, ceil(2*n_train/n_meso)): rows touched per mesocluster");
    }
    add_count(e, "threads", (double)nt, "OpenMP threads");
    add_count(e, "M_norms", (double)M_n, "1 for sqeuclidean, euclidean, cosine");

    /* The index (what stays, and what the file holds). */
    int inp = add_term(e, "input_size", ANN_MEM_HOST, lin_rows(N, D * B), "N*D*B", SRC_INPUT);
    int data = add_term(e, "data_size", ANN_MEM_HOST, lin_rows(N, D * B), "N*D*B (packed by list)", SRC_IVF);
    int norms = add_term(e, "norms_size", ANN_MEM_HOST, lin_rows(N, 4 * M_n), "4*N*M_norms", SRC_IVF);
    int ids = add_term(e, "list_ids_size", ANN_MEM_HOST, lin_rows(N, 8), "8*N", SRC_IVF);
    int cen = add_term(e, "centers_size", ANN_MEM_HOST, lin_fixed(L * D * 4), "n_lists*D*4", SRC_IVF);
    int cn = add_term(e, "center_norms_size", ANN_MEM_HOST, lin_fixed(4 * L), "4*n_lists", SRC_IVF);
    int lo = add_term(e, "list_offsets_size", ANN_MEM_HOST, lin_fixed(8 * (L + 1)), "8*(n_lists + 1)", SRC_IVF);
    lin index = lin_add(lin_add(lin_add(term_lin(e, data), term_lin(e, norms)), term_lin(e, ids)),
                        lin_add(lin_add(term_lin(e, cen), term_lin(e, cn)), term_lin(e, lo)));
    int ix = add_term(e, "index_size", ANN_MEM_HOST, index,
                      "data_size + norms_size + list_ids_size + centers_size + center_norms_size + list_offsets_size",
                      SRC_IVF);

    /* Phase 1: k-means on the strided training rows, converted to f32. */
    lin base = lin_add(term_lin(e, inp), term_lin(e, cen));
    lin tr = {add_sat(mul_sat(T, D * 4), mul_sat(T_sub, D * 4)), (dT + dT_sub) * (double)(D * 4), 0.0};
    int ktr = add_term(e, "kmeans_train_size", ANN_MEM_HOST, tr, hier ? "(n_train + n_sub)*D*4" : "n_train*D*4",
                       SRC_KMEANS);
    lin lab = {4 * (T + T_sub), (dT + dT_sub) * 4.0, 0.0};
    int klab = add_term(e, "kmeans_labels_size", ANN_MEM_HOST, lab, hier ? "4*(n_train + n_sub)" : "4*n_train",
                        SRC_KMEANS);
    uint64_t aux = 8 * (L + 1) + (hier ? 8 * (L + 1) + n_meso * (D * 4 + 8) : 0);
    int kaux = add_term(e, "kmeans_aux_size", ANN_MEM_HOST, lin_fixed(aux),
                        hier ? "2*8*(n_lists + 1) + n_meso*(D*4 + 8)" : "8*(n_lists + 1)", SRC_KMEANS);
    lin assign = lin_fixed(4 * L + nt * KM_ROW_BLOCK * L * 4);
    lin update = {8 * (L + 1) + 8 * T + 8 * L + nt * D * 8, 8.0 * dT, (double)(8 * (L + 1) + 8 * L + nt * D * 8)};
    int ksc = add_term(e, "kmeans_scratch_size", ANN_MEM_HOST, lin_max(assign, update),
                       "max(4*n_lists + threads*256*n_lists*4, 8*(n_lists + 1) + 8*n_train + 8*n_lists + threads*8*D)",
                       SRC_KMEANS);
    lin kpeak = lin_add(base, lin_add(lin_add(term_lin(e, ktr), term_lin(e, klab)),
                                      lin_add(term_lin(e, kaux), term_lin(e, ksc))));
    int kp = add_term(e, "kmeans_peak", ANN_MEM_HOST, kpeak,
                      "input_size + centers_size + kmeans_train_size + kmeans_labels_size + kmeans_aux_size + "
                      "kmeans_scratch_size",
                      SRC_KMEANS);

    /* Phase 2: assign every row, then repack the lists. */
    uint64_t predict = 4 * L + nt * KM_ROW_BLOCK * L * 4;
    lin pred = lin_fixed(predict);
    if (in->dtype != ANN_DTYPE_F32) /* rows converted to f32 in chunks of 65536 */
        pred = lin_add(pred, N < KM_PREDICT_CHUNK ? lin_rows(N, D * 4) : lin_fixed(KM_PREDICT_CHUNK * D * 4));
    int ap = add_term(e, "assign_scratch_size", ANN_MEM_HOST, pred,
                      in->dtype != ANN_DTYPE_F32 ? "min(N, 65536)*D*4 + 4*n_lists + threads*256*n_lists*4"
                                                 : "4*n_lists + threads*256*n_lists*4",
                      SRC_KMEANS);
    lin repack = lin_add(lin_fixed(8 * (L + 1)), lin_add(term_lin(e, data), term_lin(e, ids)));
    repack = lin_add(repack, lin_max(lin_fixed(8 * L), term_lin(e, norms)));
    int rp = add_term(e, "repack_size", ANN_MEM_HOST, repack,
                      "8*(n_lists + 1) + data_size + list_ids_size + max(8*n_lists, norms_size)", SRC_IVF);
    int bl = add_term(e, "build_labels_size", ANN_MEM_HOST, lin_rows(N, 8 + 4), "8*N ids + 4*N labels", SRC_IVF);
    lin apeak = lin_add(lin_add(base, term_lin(e, cn)),
                        lin_add(term_lin(e, bl), lin_max(term_lin(e, ap), term_lin(e, rp))));
    int adp = add_term(e, "add_peak", ANN_MEM_HOST, apeak,
                       "input_size + centers_size + center_norms_size + build_labels_size + "
                       "max(assign_scratch_size, repack_size)",
                       SRC_IVF);

    lin peak = lin_max(term_lin(e, kp), term_lin(e, adp));
    const char *f = "max(kmeans_peak, add_peak)";
    if (in->compress) {
        int sv = add_term(e, "save_peak", ANN_MEM_HOST,
                          lin_add(term_lin(e, inp), lin_add(term_lin(e, ix), term_lin(e, ix))),
                          "input_size + 2*index_size (zstd copies, at most index_size)", SRC_SAVE);
        peak = lin_max(peak, term_lin(e, sv));
        f = "max(kmeans_peak, add_peak, save_peak)";
    }
    set_peak(e, add_term(e, "build_peak", ANN_MEM_HOST, peak, f, SRC_IVF));
}

/* ------------------------------------------------------------------ */
/* ACE (seeds/hnsw-ace.md, AceParams.npartitions)                      */
/* ------------------------------------------------------------------ */

#define SRC_ACE "hnsw-ace.md: AceParams npartitions"

static uint64_t ceil_div(uint64_t a, uint64_t b)
{
    return a / b + (a % b != 0);
}

/* partition_size_max for P partitions: ceil(imbalance * 2 * ceil(N/P) * D * B). */
static uint64_t ace_partition_max(const ann_mem_inputs *in, uint64_t P)
{
    const uint64_t N = (uint64_t)in->rows, D = (uint64_t)in->dim, B = (uint64_t)in->bytes_per_value;
    uint64_t avg = mul_sat(2 * ceil_div(N, P), D * B);
    double m = ceil(in->imbalance * (double)avg);
    return m >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)m;
}

static void model_ace(const ann_mem_inputs *in, ann_mem_estimate *e)
{
    const uint64_t N = (uint64_t)in->rows, D = (uint64_t)in->dim, B = (uint64_t)in->bytes_per_value;
    const uint64_t P = (uint64_t)(in->npartitions > 0 ? in->npartitions : 2);
    const uint64_t rows_p = 2 * ceil_div(N, P);
    add_count(e, "npartitions", (double)P, in->npartitions > 0 ? "P as given" : "P = 2 (no budget to derive it)");
    add_count(e, "partition_rows", (double)rows_p, "2*ceil(N/P): core + augmented vectors");
    add_count(e, "imbalance", in->imbalance, "largest / average partition (up to 3x)");

    int inp = add_term(e, "input_size", ANN_MEM_HOST, lin_rows(N, D * B), "N*D*B", SRC_INPUT);
    lin avg = {mul_sat(rows_p, D * B), 2.0 * (double)(D * B) / (double)P, 0.0};
    add_term(e, "partition_size", ANN_MEM_DEVICE, avg, "2*ceil(N/P)*D*B", SRC_ACE);
    lin mx = {ace_partition_max(in, P), avg.a * in->imbalance, 0.0};
    int pm = add_term(e, "partition_size_max", ANN_MEM_DEVICE, mx, "ceil(imbalance*partition_size)", SRC_ACE);
    set_peak(e, pm);
    set_peak(e, add_term(e, "host_build_peak", ANN_MEM_HOST, lin_add(term_lin(e, inp), mx),
                         "input_size + partition_size_max", SRC_ACE));
}

/* ------------------------------------------------------------------ */
/* Public entry points                                                 */
/* ------------------------------------------------------------------ */

static double default_headroom(const ann_mem_inputs *in)
{
    switch (in->algo) {
    case ANN_ALGO_CAGRA:
        return in->build_algo == ANN_MEM_BUILD_IVF_PQ ? 0.20 : 0.30;
    case ANN_ALGO_NN_DESCENT:
    case ANN_ALGO_HNSW:
        return 0.30;
    default:
        return 0.10;
    }
}

ann_status ann_mem_estimate_compute(const ann_mem_inputs *in, ann_mem_estimate *est)
{
    memset(est, 0, sizeof *est);
    ann_status st = check_inputs(in);
    if (st != ANN_OK)
        return st;
    est->in = *in;
    if (est->in.bytes_per_value == 0)
        est->in.bytes_per_value = (int32_t)ann_dtype_size(in->dtype);
    est->headroom = default_headroom(in);
    switch (in->algo) {
    case ANN_ALGO_CAGRA:
        model_cagra(&est->in, est);
        break;
    case ANN_ALGO_NN_DESCENT:
        model_nn_descent(&est->in, est);
        break;
    case ANN_ALGO_BRUTE_FORCE:
        model_brute_force(&est->in, est);
        break;
    case ANN_ALGO_IVF_FLAT:
        model_ivf_flat(&est->in, est);
        break;
    default:
        model_ace(&est->in, est);
        if (est->in.npartitions == 0)
            est->in.npartitions = 2;
        break;
    }
    return ANN_OK;
}

/* The selected peak of @p space at N = n (UINT64_MAX on failure, which never fits). */
static uint64_t peak_at(const ann_mem_inputs *in, int64_t n, ann_mem_space space, ann_mem_estimate *tmp)
{
    ann_mem_inputs x = *in;
    x.rows = n;
    if (ann_mem_estimate_compute(&x, tmp) != ANN_OK)
        return UINT64_MAX;
    return space == ANN_MEM_DEVICE ? tmp->device.peak : tmp->host.peak;
}

/*
 * Points where the peak can drop as N grows: only ivf_flat's k-means
 * training rows n / floor(n / n_t) fall back when the ratio steps up, at
 * n = (r + 1) * n_t - 1 where n_t is constant: n_t = n_lists (small N) and
 * n_t = n_lists * max_train_points_per_cluster (capped).  Calls @p fn on
 * each such point below @p limit, in increasing order, until it returns
 * true; returns the point it stopped at, or -1.
 */
typedef bool (*drop_fn)(void *user, int64_t n);

static int64_t for_each_drop(const ann_mem_inputs *in, int64_t limit, drop_fn fn, void *user)
{
    if (in->algo != ANN_ALGO_IVF_FLAT)
        return -1;
    const int64_t L = in->n_lists;
    const double f = (double)(float)in->kmeans_trainset_fraction;
    const int64_t Cc = in->max_train_points_per_cluster > 0 ? L * in->max_train_points_per_cluster : 0;
    /* n_t = L while floor(f n) <= L, i.e. up to about (L + 1) / f; n_t = Cc from about Cc / f on.
     * The sequences include a margin: a point that is not a drop only costs one evaluation. */
    const int64_t a_end = (int64_t)ceil((double)(L + 1) / f) + L;
    int64_t ra = 1, rb = 1;
    if (Cc > 0) {
        rb = (int64_t)floor((double)Cc / f / (double)Cc) - 1;
        if (rb < 1)
            rb = 1;
    }
    for (int64_t count = 0; count < 1000000; count++) {
        int64_t da = (ra + 1) * L - 1;
        if (da > a_end || da >= limit)
            da = INT64_MAX;
        int64_t db = Cc > 0 ? (rb + 1) * Cc - 1 : INT64_MAX;
        if (db >= limit)
            db = INT64_MAX;
        int64_t d = da < db ? da : db;
        if (d == INT64_MAX)
            return -1;
        if (d == da)
            ra++;
        if (d == db)
            rb++;
        if (fn(user, d))
            return d;
    }
    return -1;
}

typedef struct drop_ctx {
    const ann_mem_inputs *in;
    ann_mem_space space;
    uint64_t m;
    ann_mem_estimate *tmp;
    int64_t prev; /* the last drop point that fitted */
} drop_ctx;

static bool drop_fails(void *user, int64_t n)
{
    drop_ctx *c = user;
    if (peak_at(c->in, n, c->space, c->tmp) > c->m)
        return true;
    c->prev = n;
    return false;
}

/* Largest N such that every n <= N fits in m (0 when N = 1 does not). */
static int64_t solve_n_max(const ann_mem_inputs *in, ann_mem_space space, uint64_t m, int64_t guess,
                           ann_mem_estimate *tmp)
{
    if (peak_at(in, 1, space, tmp) > m)
        return 0;
    int64_t lo = 1, hi;
    if (guess < 1)
        guess = 1;
    if (guess > N_SEARCH_MAX)
        guess = N_SEARCH_MAX;
    if (peak_at(in, guess, space, tmp) <= m) {
        lo = guess;
        hi = guess;
        for (;;) { /* gallop up */
            if (hi >= N_SEARCH_MAX) {
                if (peak_at(in, N_SEARCH_MAX, space, tmp) <= m)
                    return N_SEARCH_MAX;
                hi = N_SEARCH_MAX;
                break;
            }
            int64_t next = hi < N_SEARCH_MAX / 2 ? hi * 2 : N_SEARCH_MAX;
            if (peak_at(in, next, space, tmp) > m) {
                hi = next;
                break;
            }
            lo = hi = next;
        }
    } else {
        hi = guess;
    }
    while (hi - lo > 1) { /* peak(lo) fits, peak(hi) does not */
        int64_t mid = lo + (hi - lo) / 2;
        if (peak_at(in, mid, space, tmp) <= m)
            lo = mid;
        else
            hi = mid;
    }
    /* Between drop points the peak grows with N; check that none below lo fails. */
    drop_ctx c = {in, space, m, tmp, 0};
    int64_t d = for_each_drop(in, lo, drop_fails, &c);
    if (d < 0)
        return lo;
    lo = c.prev; /* fits (or 0) */
    hi = d;      /* fails; the peak grows on (lo, hi] */
    if (lo < 1) {
        if (peak_at(in, 1, space, tmp) > m)
            return 0;
        lo = 1;
    }
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (peak_at(in, mid, space, tmp) <= m)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

static int64_t linear_n_max(uint64_t m, double a, double b)
{
    if ((double)m < b)
        return 0;
    if (a <= 0)
        return N_SEARCH_MAX;
    double n = floor(((double)m - b) / a);
    return n > (double)N_SEARCH_MAX ? N_SEARCH_MAX : (int64_t)n;
}

ann_status ann_mem_capacity_compute(const ann_mem_inputs *in, ann_mem_space space, const ann_mem_budget *budget,
                                    ann_mem_capacity *out)
{
    ann_mem_estimate *est = malloc(2 * sizeof *est);
    if (!est)
        return ann_set_error(ANN_ERR_NOMEM, "out of memory");
    ann_mem_estimate *tmp = est + 1;
    memset(out, 0, sizeof *out);
    out->h_measured = NAN;
    out->n_max = -1;
    out->n_max_linear = -1;
    ann_status st = ann_mem_estimate_compute(in, est);
    if (st != ANN_OK) {
        free(est);
        return st;
    }
    const ann_mem_side *side = space == ANN_MEM_DEVICE ? &est->device : &est->host;
    out->b_per_vector = side->b_per_vector;
    out->b_fixed = side->b_fixed;
    out->h = est->headroom;
    if (!side->used || space == ANN_MEM_TOTAL) {
        free(est);
        return ANN_OK;
    }
    if (budget->observed_peak > 0) {
        int64_t n_obs = budget->observed_rows > 0 ? budget->observed_rows : in->rows;
        uint64_t p = peak_at(in, n_obs, space, tmp);
        if (p > 0 && p != UINT64_MAX)
            out->h_measured = ((double)budget->observed_peak - (double)p) / (double)p;
    }
    if (budget->headroom >= 0)
        out->h = budget->headroom;
    else if (!isnan(out->h_measured))
        out->h = out->h_measured > 0 ? out->h_measured : 0.0;
    if (budget->free == 0) {
        free(est);
        return ANN_OK;
    }
    out->known = true;
    uint64_t avail = budget->free > budget->other ? budget->free - budget->other : 0;
    double usable = out->h < 1.0 ? floor((double)avail * (1.0 - out->h)) : 0.0;
    out->m_usable = usable >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)usable;
    out->fits = side->peak <= out->m_usable;

    int64_t guess = linear_n_max(out->m_usable, side->b_per_vector, side->b_fixed);
    out->n_max = solve_n_max(in, space, out->m_usable, guess, tmp);
    /* The linear form in force at N_max (at N = 1 when nothing fits). */
    ann_mem_inputs x = *in;
    x.rows = out->n_max > 0 ? out->n_max : 1;
    if (ann_mem_estimate_compute(&x, tmp) == ANN_OK) {
        const ann_mem_side *s = space == ANN_MEM_DEVICE ? &tmp->device : &tmp->host;
        out->b_per_vector = s->b_per_vector;
        out->b_fixed = s->b_fixed;
    }
    out->n_max_linear = linear_n_max(out->m_usable, out->b_per_vector, out->b_fixed);
    free(est);
    return ANN_OK;
}

ann_status ann_mem_ace_partitions(const ann_mem_inputs *in, uint64_t usable_host, uint64_t usable_device,
                                  int64_t *npartitions)
{
    ann_mem_inputs x = *in;
    x.npartitions = 1;
    ann_status st = check_inputs(&x);
    if (st != ANN_OK)
        return st;
    if (x.bytes_per_value == 0)
        x.bytes_per_value = (int32_t)ann_dtype_size(x.dtype);
    const uint64_t N = (uint64_t)x.rows, input = mul_sat(N, (uint64_t)x.dim * (uint64_t)x.bytes_per_value);
    /* partition_size_max does not grow with P: bisect the smallest P in [1, N] that fits. */
    uint64_t lo = 0, hi = N; /* P = lo does not fit (or is 0), P = hi is checked below */
#define ACE_FITS(P)                                                                                 \
    ((usable_device == 0 || ace_partition_max(&x, (P)) <= usable_device) &&                         \
     (usable_host == 0 || add_sat(input, ace_partition_max(&x, (P))) <= usable_host))
    if (!ACE_FITS(hi))
        return ann_set_error(ANN_ERR_INVALID_ARG,
                             "ace: no partition count fits: even %llu partitions need %.1f GiB per partition",
                             (unsigned long long)hi, (double)ace_partition_max(&x, hi) / GIB);
    while (hi - lo > 1) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (ACE_FITS(mid))
            hi = mid;
        else
            lo = mid;
    }
#undef ACE_FITS
    *npartitions = (int64_t)hi;
    return ANN_OK;
}

/* ------------------------------------------------------------------ */
/* Available host memory                                               */
/* ------------------------------------------------------------------ */

/* First unsigned number in file @p path, or 0 (also for "max"). */
static uint64_t read_u64_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    unsigned long long v = 0;
    if (fscanf(f, "%llu", &v) != 1)
        v = 0;
    fclose(f);
    return (uint64_t)v;
}

uint64_t ann_mem_host_available(void)
{
    uint64_t avail = 0;
    FILE *f = fopen("/proc/meminfo", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f)) {
            unsigned long long kb;
            if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
                avail = (uint64_t)kb * 1024;
                break;
            }
        }
        fclose(f);
    }
    /* A cgroup limit lowers what this process may use. */
    uint64_t lim = read_u64_file("/sys/fs/cgroup/memory.max");
    uint64_t cur = read_u64_file("/sys/fs/cgroup/memory.current");
    if (lim == 0) {
        lim = read_u64_file("/sys/fs/cgroup/memory/memory.limit_in_bytes");
        cur = read_u64_file("/sys/fs/cgroup/memory/memory.usage_in_bytes");
        if (lim >= ((uint64_t)1 << 62)) /* v1 "unlimited" is a huge number */
            lim = 0;
    }
    if (lim > 0) {
        uint64_t left = lim > cur ? lim - cur : 0;
        if (avail == 0 || left < avail)
            avail = left;
    }
    return avail;
}

/* ------------------------------------------------------------------ */
/* Checking a build before it starts                                   */
/* ------------------------------------------------------------------ */

static ann_status check_space(const ann_mem_inputs *in, const ann_mem_estimate *est, ann_mem_space space,
                              uint64_t limit, bool from_meminfo)
{
    const ann_mem_side *side = space == ANN_MEM_DEVICE ? &est->device : &est->host;
    if (!side->used || limit == 0)
        return ANN_OK;
    const double h = est->headroom;
    const uint64_t usable = (uint64_t)floor((double)limit * (1.0 - h));
    if (side->peak <= usable)
        return ANN_OK;
    ann_mem_budget b;
    ann_mem_budget_init(&b);
    b.free = limit;
    b.headroom = h;
    ann_mem_capacity cap;
    int64_t n_max = -1;
    if (ann_mem_capacity_compute(in, space, &b, &cap) == ANN_OK)
        n_max = cap.n_max;
    const bool host = space == ANN_MEM_HOST;
    const char *opt = host ? "--max-host-memory" : "--max-gpu-memory";
    char what[160];
    if (in->algo == ANN_ALGO_CAGRA)
        snprintf(what, sizeof what, "cagra build with %s, %lld x %lld %s", ann_mem_builder_name(in->build_algo),
                 (long long)in->rows, (long long)in->dim, ann_dtype_name(in->dtype));
    else
        snprintf(what, sizeof what, "%s build, %lld x %lld %s", ann_mem_model_name(in->algo), (long long)in->rows,
                 (long long)in->dim, ann_dtype_name(in->dtype));
    char limit_text[160];
    if (host && from_meminfo)
        snprintf(limit_text, sizeof limit_text, "the available host memory %.1f GiB (MemAvailable; %s sets another limit)",
                 (double)limit / GIB, opt);
    else
        snprintf(limit_text, sizeof limit_text, "%s %.1f GiB", opt, (double)limit / GIB);
    return ann_set_error(ANN_ERR_NOMEM,
                         "estimated peak %s memory %.1f GiB (%s: %s) exceeds %.1f GiB, the usable part of %s "
                         "(headroom %.2f); at most %lld rows fit: raise %s or build fewer rows",
                         host ? "host" : "device", (double)side->peak / GIB, what, side->peak_name,
                         (double)usable / GIB, limit_text, h, (long long)n_max, opt);
}

ann_status ann_mem_check(const ann_mem_inputs *in, uint64_t max_host_bytes, uint64_t max_device_bytes,
                         ann_mem_estimate *est)
{
    ann_mem_estimate local;
    if (!est)
        est = &local;
    ann_status st = ann_mem_estimate_compute(in, est);
    if (st != ANN_OK)
        return st;
    bool from_meminfo = false;
    if (max_host_bytes == 0) {
        max_host_bytes = ann_mem_host_available();
        from_meminfo = true;
    }
    st = check_space(in, est, ANN_MEM_HOST, max_host_bytes, from_meminfo);
    if (st == ANN_OK)
        st = check_space(in, est, ANN_MEM_DEVICE, max_device_bytes, false);
    return st;
}

ann_status ann_mem_check_build(ann_algo algo, const void *build_params, int64_t rows, int64_t dim, ann_dtype dtype,
                               uint64_t max_host_bytes, uint64_t max_device_bytes, bool on_device,
                               ann_mem_estimate *est)
{
    ann_mem_inputs in;
    ann_mem_inputs_init(&in, algo);
    in.rows = rows;
    in.dim = dim;
    in.dtype = dtype;
    in.input_on_host = true; /* the tools read the dataset into host memory */
    in.input_on_device = on_device && algo != ANN_ALGO_HNSW;
    in.device = on_device;
    switch (algo) {
    case ANN_ALGO_BRUTE_FORCE:
        if (build_params)
            in.metric = ((const ann_brute_force_params *)build_params)->metric;
        break;
    case ANN_ALGO_IVF_FLAT:
        if (build_params) {
            const ann_ivf_flat_params *p = build_params;
            in.metric = p->metric;
            in.n_lists = p->n_lists;
            in.kmeans_trainset_fraction = p->kmeans_trainset_fraction;
            in.max_train_points_per_cluster = p->max_train_points_per_cluster;
        }
        break;
    case ANN_ALGO_NN_DESCENT:
        if (build_params) {
            const ann_nn_descent_params *p = build_params;
            in.metric = p->metric;
            in.graph_degree = p->graph_degree;
            in.intermediate_graph_degree = p->intermediate_graph_degree;
            in.return_distances = p->return_distances;
            in.dist_comp_bytes = p->dist_comp_dtype == ANN_DIST_COMP_FP32   ? 4
                                 : p->dist_comp_dtype == ANN_DIST_COMP_FP16 ? 2
                                                                            : 0;
        }
        break;
    case ANN_ALGO_CAGRA:
        if (build_params) {
            const ann_cagra_params *p = build_params;
            in.metric = p->metric;
            in.graph_degree = p->graph_degree;
            in.intermediate_graph_degree = p->intermediate_graph_degree;
            /* auto may fall back to IVF-PQ, the smallest builder: a build that fits with it is not refused */
            in.build_algo = p->build_algo == ANN_CAGRA_BUILD_NN_DESCENT || p->build_algo == ANN_CAGRA_BUILD_BRUTE_FORCE
                                ? ANN_MEM_BUILD_NN_DESCENT
                            : p->build_algo == ANN_CAGRA_BUILD_ITERATIVE ? ANN_MEM_BUILD_ITERATIVE
                                                                         : ANN_MEM_BUILD_IVF_PQ;
            if (in.intermediate_graph_degree >= rows)
                in.intermediate_graph_degree = rows > 1 ? rows - 1 : 1;
            if (in.graph_degree > in.intermediate_graph_degree)
                in.graph_degree = in.intermediate_graph_degree;
        }
        break;
    case ANN_ALGO_HNSW:
        if (build_params)
            return ann_set_error(ANN_ERR_INVALID_ARG,
                                 "the memory model cannot read %s build params: pass NULL (defaults) or use "
                                 "ann_mem_check() with filled inputs",
                                 ann_algo_name(algo));
        break;
    default:
        return ann_set_error(ANN_ERR_UNSUPPORTED, "no memory model for algorithm %s", ann_algo_name(algo));
    }
    return ann_mem_check(&in, max_host_bytes, max_device_bytes, est);
}
