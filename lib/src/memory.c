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
 * lib/src/bf_cpu.c, lib/src/kmeans_cpu.c, lib/src/nnd_cpu.c,
 * lib/src/ivf_pq_cpu.c, lib/src/cagra_build.c and cuda/bf_cuda.cu.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ann/brute_force.h"
#include "ann/cagra.h"
#include "ann/graph.h"
#include "ann/ivf_flat.h"
#include "ann/ivf_pq.h"
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
    NND_CHUNK = 8192,       /* nnd_cpu.c CHUNK: rows joined between merges */
    NND_S_MAX = 32,         /* nnd_cpu.c S_MAX */
    NND_ROWS_PER_LIST = 128, /* nnd_cpu.c join_init ROWS_PER_LIST */
    NND_CAND_FACTOR = 32,   /* nnd_cpu.c CAND_FACTOR */
    NND_NEAR_LISTS = 48,    /* nnd_cpu.c NEAR_LISTS */
    NND_JOIN_TQ = 256,      /* nnd_cpu.c JOIN_TQ */
    NND_MAX_LISTS = 65536,  /* nnd_cpu.c join_init: n_lists cap */
    PQ_GROUP = 16,          /* ivf_pq_internal.h ANN_IVF_PQ_GROUP */
    PQ_QUERY_BLOCK = 16,    /* ivf_pq_cpu.c QUERY_BLOCK */
    PQ_ENCODE_BLOCK = 64,   /* ivf_pq_cpu.c ENCODE_BLOCK */
    PQ_LABEL_CHUNK = 16384, /* ivf_pq_cpu.c label_rows chunk */
    RANKED_BYTES = 16,      /* sizeof(ann_ranked) {double; int64_t} */
    LIST_IMBALANCE = 4,     /* assumed largest / average list of a balanced k-means */
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

static uint64_t ceil_div(uint64_t a, uint64_t b)
{
    return a / b + (a % b != 0);
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

/* annkit's CPU builders (defined with them below). */
static int threads_of(const ann_mem_inputs *in);
static int nnd_cpu_terms(const ann_mem_inputs *in, ann_mem_estimate *e, uint64_t G_out, uint64_t K_in,
                         bool with_dist);
static bool ivfpq_workspace(const ann_mem_inputs *in, uint64_t G, double refine, lin *out);
static bool nnd_workspace(const ann_mem_inputs *in, uint64_t G, uint64_t K, lin *out);
static void model_ivf_pq(const ann_mem_inputs *in, ann_mem_estimate *e);

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
        {"ivf_pq", ANN_ALGO_IVF_PQ},
    };
    for (size_t i = 0; name && i < sizeof models / sizeof models[0]; i++) {
        if (name_eq(name, models[i].name)) {
            *out = models[i].algo;
            return ANN_OK;
        }
    }
    return ann_set_error(ANN_ERR_INVALID_ARG,
                         "unknown model '%s' (cagra, nn_descent, brute_force, ivf_flat, ace, ivf_pq)",
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
    case ANN_ALGO_IVF_PQ: return "ivf_pq";
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
    in->refine_ratio = 2.0;
    in->max_train_points_per_pq_code = 256;
    if (algo == ANN_ALGO_IVF_PQ) { /* the graph preset: auto (ann/ivf_pq.h) */
        in->n_lists = 0;
        in->kmeans_trainset_fraction = 0.0;
    }
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

/*
 * The ivf_pq graph parameters of @p in for a dataset of @p n rows, resolved
 * by the library (ann_ivf_pq_graph_params_resolve(), so that the model
 * follows the build's rules), and the coarse k-means training rows of
 * ann_ivf_pq_cpu_build to *n_train.  Below the smallest dataset the build
 * accepts (n <= graph_degree, or fewer rows than a given n_lists), the
 * auto fields are those of that smallest dataset: the capacity search
 * evaluates every N >= 1.  Errors: those of the resolve function
 * (ANN_ERR_INVALID_ARG naming the field, ANN_ERR_UNSUPPORTED).
 */
static ann_status ivfpq_resolve(const ann_mem_inputs *in, int64_t n, ann_ivf_pq_graph_params *out, int64_t *n_train)
{
    ann_ivf_pq_graph_params p;
    ann_ivf_pq_graph_params_init(&p);
    p.index.metric = in->metric;
    p.index.n_lists = in->n_lists > INT32_MAX ? INT32_MAX : (int32_t)in->n_lists;
    p.index.pq_dim = in->pq_dim;
    p.index.pq_bits = in->pq_bits;
    p.index.kmeans_trainset_fraction = (float)in->kmeans_trainset_fraction;
    p.index.force_random_rotation = in->force_random_rotation;
    p.index.max_train_points_per_pq_code = in->max_train_points_per_pq_code;
    p.search.n_probes = in->n_probes;
    p.graph_degree = in->graph_degree > INT32_MAX ? INT32_MAX : (int32_t)in->graph_degree;
    p.refine_ratio = (float)in->refine_ratio;
    p.return_distances = in->return_distances;
    int64_t rows = n;
    if (rows <= p.graph_degree)
        rows = (int64_t)p.graph_degree + 1;
    if (p.index.n_lists > rows)
        rows = p.index.n_lists;
    ann_status st = ann_ivf_pq_graph_params_resolve(&p, rows, in->dim, out);
    if (st != ANN_OK)
        return st;
    /* ann_ivf_pq_cpu_build step 1: n / max(1, n / max(fraction x n, n_lists)) rows */
    int64_t want = (int64_t)((double)out->index.kmeans_trainset_fraction * (double)n);
    if (want < out->index.n_lists)
        want = out->index.n_lists;
    const int64_t ratio = n / want > 1 ? n / want : 1;
    *n_train = n / ratio;
    return ANN_OK;
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
    case ANN_ALGO_IVF_PQ: {
        ann_ivf_pq_graph_params r;
        int64_t n_train;
        ann_status st = ivfpq_resolve(in, in->rows, &r, &n_train);
        if (st != ANN_OK) {
            char why[512]; /* the message is rewritten in the buffer it is read from: copy it first */
            snprintf(why, sizeof why, "%s", ann_last_error());
            return strncmp(why, "ivf_pq", 6) == 0 ? ann_set_error(st, "%s", why) : ann_set_error(st, "ivf_pq: %s", why);
        }
        break;
    }
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
#define SRC_NND_CPU_PEAK "annkit: lib/src/nnd_cpu.c ann_cpu_nn_descent (the CPU build)"
#define SRC_CAGRA_CPU "annkit: lib/src/cagra_build.c ann_cagra_build_graph"
#define SRC_CAGRA_OPT_CPU "annkit: lib/src/cagra_build.c ann_cagra_optimize"
#define SRC_CAGRA_ATTACH "annkit: lib/src/index.c ann_index_attach_dataset, cagra_narrow"
#define SRC_PQ_GRAPH "annkit: lib/src/ivf_pq_cpu.c ann_ivf_pq_cpu_knn_graph (initial_graph_ivf_pq)"
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
    int inp = -1;
    if (in->input_on_host) {
        inp = add_term(e, "input_size", ANN_MEM_HOST, lin_rows(N, D * B), "N*D*B", SRC_INPUT);
        host_peak = add_term(e, "host_build_peak", ANN_MEM_HOST, lin_add(term_lin(e, inp), term_lin(e, host_peak)),
                             host_formula, SRC_INPUT);
    }
    /* annkit's CPU build (lib/src/cagra_build.c) with the nn_descent or ivf_pq builder */
    lin cws;
    bool have_ws = false;
    const char *cws_formula = NULL;
    if (!in->device && !in->input_on_device && in->build_algo == ANN_MEM_BUILD_NN_DESCENT) {
        have_ws = nnd_workspace(in, I, I, &cws);
        cws_formula = "the nn_descent model's cpu_workspace_size with G = I, no distances";
    } else if (!in->device && !in->input_on_device && in->build_algo == ANN_MEM_BUILD_IVF_PQ) {
        have_ws = ivfpq_workspace(in, I, 2.0, &cws);
        cws_formula = "the ivf_pq model's build_peak - input_size with G = I, refine_ratio 2, auto preset, "
                     "no distances";
    }
    if (!have_ws) {
        set_peak(e, host_peak);
        return;
    }
    const uint64_t nt = (uint64_t)threads_of(in);
    int w = add_term(e, "cpu_initial_graph_size", ANN_MEM_HOST, cws, cws_formula,
                     in->build_algo == ANN_MEM_BUILD_NN_DESCENT ? SRC_NND_CPU_PEAK : SRC_PQ_GRAPH);
    int kg = add_term(e, "cpu_knn_size", ANN_MEM_HOST, lin_rows(N, I * 4), "N*I*4 (the initial graph, kept)",
                      SRC_CAGRA_CPU);
    lin opt_tmp = lin_max(lin_rows(N, nt * 4), lin_rows(N, 8 * G + 8 + 16));
    int op = add_term(e, "cpu_optimize_size", ANN_MEM_HOST, lin_add(lin_rows(N, G * 4), opt_tmp),
                      "N*G*4 + max(threads*N*4, N*(8*G + 8 + 16)) (graph, stamps or reverse graph and tree)",
                      SRC_CAGRA_OPT_CPU);
    /* the index then takes its own copy of the rows (2 MiB pages), their norms and, for f32 rows
     * whose values fit u8, i8 or f16, a narrowed copy (at most f16) */
    lin ix = lin_rows(N, D * B + 4 * (has_norms(in->metric) ? 1 : 0) + (in->dtype == ANN_DTYPE_F32 ? D * 2 : 0));
    ix = lin_add(ix, lin_fixed((uint64_t)2 << 20));
    int at = add_term(e, "cpu_index_size", ANN_MEM_HOST, lin_add(lin_rows(N, G * 4), ix),
                      "N*G*4 + N*D*B + 4*N*M_l2 + [f32] N*D*2 + 2 MiB (the graph, the index's rows, norms, "
                      "narrowed rows)",
                      SRC_CAGRA_ATTACH);
    lin cpu = lin_max(lin_add(term_lin(e, kg), lin_max(term_lin(e, w), term_lin(e, op))), term_lin(e, at));
    if (inp >= 0)
        cpu = lin_add(term_lin(e, inp), cpu);
    set_peak(e, add_term(e, "cpu_build_peak", ANN_MEM_HOST, cpu,
                         inp >= 0 ? "input_size + max(cpu_knn_size + max(cpu_initial_graph_size, cpu_optimize_size), "
                                    "cpu_index_size)"
                                  : "max(cpu_knn_size + max(cpu_initial_graph_size, cpu_optimize_size), cpu_index_size)",
                         SRC_CAGRA_CPU));
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
    int inp = -1;
    if (in->input_on_host) {
        inp = add_term(e, "input_size", ANN_MEM_HOST, lin_rows(N, D * B_in), "N*D*B_in", SRC_INPUT);
        hw = add_term(e, "host_build_peak", ANN_MEM_HOST, lin_add(term_lin(e, inp), hws),
                      "input_size + host_workspace_size", SRC_INPUT);
    }
    if (in->device || in->input_on_device) { /* a CUDA build: the docs' host terms */
        set_peak(e, hw);
        return;
    }
    /* annkit's CPU NN-Descent: graph.c raises I to G; the output has G ids per row */
    const uint64_t G_req = (uint64_t)in->graph_degree, I_req = (uint64_t)in->intermediate_graph_degree;
    const uint64_t G_out = G_req < N ? G_req : N - 1;
    int ws = nnd_cpu_terms(in, e, G_out, I_req > G_req ? I_req : G_req, in->return_distances);
    lin cpu = term_lin(e, ws);
    if (inp >= 0)
        cpu = lin_add(term_lin(e, inp), cpu);
    set_peak(e, add_term(e, "cpu_build_peak", ANN_MEM_HOST, cpu,
                         inp >= 0 ? "input_size + cpu_workspace_size" : "cpu_workspace_size", SRC_NND_CPU_PEAK));
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
/* annkit's CPU builders: k-means, NN-Descent, the IVF-PQ graph        */
/* ------------------------------------------------------------------ */

#define SRC_KMEANS_FIT "annkit: lib/src/kmeans_cpu.c ann_cpu_kmeans_fit"
#define SRC_NND_CPU "annkit: lib/src/nnd_cpu.c ann_cpu_nn_descent"
#define SRC_NND_JOIN "annkit: lib/src/nnd_cpu.c join_init, permute_rows"
#define SRC_NND_L1 "annkit: lib/src/nnd_cpu.c cluster_init (an ivf_flat index of the data)"
#define SRC_PQ_INDEX "annkit: lib/src/ivf_pq_cpu.c ann_ivf_pq_cpu_build (ann_ivf_pq_cpu_index)"
#define SRC_PQ_BUILD "annkit: lib/src/ivf_pq_cpu.c ann_ivf_pq_cpu_build"
#define SRC_PQ_SEARCH "annkit: lib/src/ivf_pq_cpu.c ann_ivf_pq_cpu_knn_graph, scratch_alloc"
#define SRC_GRAPH_OUT "annkit: lib/src/graph.c graph_alloc"

/* count x per bytes, where count grows by d_count per vector. */
static lin lin_part(uint64_t count, double d_count, uint64_t per)
{
    lin r = {mul_sat(count, per), d_count * (double)per, 0.0};
    return r;
}

/*
 * Bytes ann_cpu_kmeans_fit() allocates for @p T training rows (growing by
 * @p dT per vector) of dimension @p D into @p L clusters with @p nt
 * threads: the f32 copy and labels of the rows (plus, hierarchical from
 * 257 clusters, the rows of one mesocluster, at most ceil(T / 8) since
 * n_meso = round(sqrt(L)) >= 16: a bound that does not fall as L grows),
 * the offsets, and the larger of the assignment and update scratch (the
 * terms of the ivf_flat model).
 */
static lin kmeans_fit_lin(uint64_t T, double dT, uint64_t D, uint64_t L, uint64_t nt)
{
    const bool hier = L >= KM_HIER_MIN;
    const uint64_t n_meso = hier ? (uint64_t)lround(sqrt((double)L)) : 0;
    const uint64_t T_sub = hier ? ceil_div(T, 8) : 0;
    const double dT_sub = hier ? dT / 8.0 : 0.0;
    lin r = lin_add(lin_part(T, dT, D * 4 + 4), lin_part(T_sub, dT_sub, D * 4 + 4));
    r = lin_add(r, lin_fixed(8 * (L + 1) + (hier ? 8 * (L + 1) + n_meso * (D * 4 + 8) : 0)));
    lin assign = lin_fixed(4 * L + nt * KM_ROW_BLOCK * L * 4);
    lin update = lin_add(lin_part(T, dT, 8), lin_fixed(8 * (L + 1) + 8 * L + nt * D * 8));
    return lin_add(r, lin_max(assign, update));
}

/*
 * annkit's CPU NN-Descent (ann_cpu_nn_descent) of @p in: adds its cpu_*
 * terms to @p e and returns the index of cpu_workspace_size, every byte
 * the build holds besides the dataset: the output graph (@p G_out ids per
 * row, and as many distances when @p with_dist), the f32 rows padded to
 * ld = roundup(D, 16) floats (none for hamming), their norms, the
 * intermediate graph of @p K_in = min(max(I, G), N - 1) entries per row
 * (ids, distances, new flags), the samples, and the larger of the
 * initial-graph phase (k-means lists of join_init, or the ivf_flat index
 * of cluster_init for l1) and an iteration's scratch.
 */
static int nnd_cpu_terms(const ann_mem_inputs *in, ann_mem_estimate *e, uint64_t G_out, uint64_t K_in,
                         bool with_dist)
{
    const uint64_t N = (uint64_t)in->rows, D = (uint64_t)in->dim;
    const uint64_t nt = (uint64_t)threads_of(in);
    const uint64_t K = K_in < N - 1 ? K_in : (N > 1 ? N - 1 : 1);
    uint64_t S = (uint64_t)lround(sqrt(2.0 * (double)K));
    S = S < 8 ? 8 : S > NND_S_MAX ? NND_S_MAX : S;
    const bool hamming = in->metric == ANN_METRIC_HAMMING;
    const uint64_t ld = round_up(D, 16);
    const uint64_t M_n = has_norms(in->metric) ? 1 : 0;
    const bool random_init = hamming || N <= 4 * (K + 1);
    const bool l1 = in->metric == ANN_METRIC_L1;

    add_count(e, "cpu_K", (double)K, "min(max(I, G), N-1): the CPU's intermediate degree");
    add_count(e, "cpu_S", (double)S, "clamp(round(sqrt(2*cpu_K)), 8, 32): CPU samples per row");
    add_count(e, "cpu_ld", (double)ld, "roundup(D, 16): floats per padded CPU row");

    lin out = lin_rows(N, G_out * 4 * (with_dist ? 2 : 1));
    int t_out = add_term(e, "cpu_graph_out_size", ANN_MEM_HOST, out, with_dist ? "N*G*4 + N*G*4" : "N*G*4",
                         SRC_GRAPH_OUT);
    int t_rows = add_term(e, "cpu_rows_size", ANN_MEM_HOST, hamming ? lin_zero : lin_rows(N, ld * 4),
                          hamming ? "0 (hamming reads the dataset)" : "N*cpu_ld*4", SRC_NND_CPU);
    int t_nrm = add_term(e, "cpu_norms_size", ANN_MEM_HOST, lin_rows(N, 4 * M_n), "N*4*M_l2", SRC_NND_CPU);
    int t_graph = add_term(e, "cpu_knn_size", ANN_MEM_HOST, lin_rows(N, K * 9), "N*cpu_K*(4 + 4 + 1)",
                           SRC_NND_CPU);
    /* newf, oldf, revn, revo; their four counts; bstart; order; perm (join_init only) */
    const uint64_t perm = random_init || l1 ? 0 : 4;
    lin samples = lin_add(lin_rows(N, 16 * S + 16 + 8 + 4 + perm), lin_fixed(8));
    int t_smp = add_term(e, "cpu_samples_size", ANN_MEM_HOST, samples,
                         perm ? "N*cpu_S*4*4 + N*4*4 + (N+1)*8 + N*4 + N*4" : "N*cpu_S*4*4 + N*4*4 + (N+1)*8 + N*4",
                         SRC_NND_CPU);

    /* Initial graph. */
    lin init = lin_zero;
    const char *init_formula = "0 (random initial graph)";
    const char *init_src = SRC_NND_CPU;
    if (!random_init && l1) {
        /* cluster_init: an ivf_flat index of the data (the ivf_flat model without its input) */
        ann_mem_inputs x;
        ann_mem_inputs_init(&x, ANN_ALGO_IVF_FLAT);
        x.rows = in->rows;
        x.dim = in->dim;
        x.dtype = in->dtype;
        x.bytes_per_value = in->bytes_per_value;
        x.metric = ANN_METRIC_L1;
        x.n_threads = in->n_threads;
        x.n_lists = (int64_t)(N / NND_ROWS_PER_LIST < 1 ? 1 : N / NND_ROWS_PER_LIST > NND_MAX_LISTS ? NND_MAX_LISTS
                                                                                         : N / NND_ROWS_PER_LIST);
        x.kmeans_trainset_fraction = 0.25;
        ann_mem_estimate *sub = malloc(sizeof *sub);
        if (sub && ann_mem_estimate_compute(&x, sub) == ANN_OK) {
            const ann_mem_term *bp = ann_mem_term_find(sub, "build_peak");
            const ann_mem_term *ip = ann_mem_term_find(sub, "input_size");
            lin a = {bp->bytes - ip->bytes, bp->per_vector - ip->per_vector, bp->fixed - ip->fixed};
            init = lin_add(a, lin_fixed(NND_CHUNK * (K + 1) * 12));
        }
        free(sub);
        init_formula = "ivf_flat build_peak - input_size (n_lists = N/128, fraction 0.25) + 8192*(cpu_K+1)*12";
        init_src = SRC_NND_L1;
    } else if (!random_init) {
        /* join_init: lists of ~128 rows, k-means on a quarter of the rows, the rows permuted in place */
        const uint64_t nl = N / NND_ROWS_PER_LIST < 1 ? 1 : N / NND_ROWS_PER_LIST > NND_MAX_LISTS ? NND_MAX_LISTS
                                                                                            : N / NND_ROWS_PER_LIST;
        const double dnl = N / NND_ROWS_PER_LIST > NND_MAX_LISTS ? 0.0 : 1.0 / NND_ROWS_PER_LIST;
        const uint64_t per_list_min = N / nl > NND_ROWS_PER_LIST ? N / nl : NND_ROWS_PER_LIST;
        /* P and the largest list as bounds that do not fall as N grows (per_list >= 128) */
        uint64_t P = ceil_div(NND_CAND_FACTOR * (K + 1), NND_ROWS_PER_LIST);
        P = P < 2 ? 2 : P;
        uint64_t NC = NND_NEAR_LISTS > 2 * P ? NND_NEAR_LISTS : 2 * P;
        NC = NC > nl ? nl : NC;
        const uint64_t smax = LIST_IMBALANCE * per_list_min;
        uint64_t T = N / 4 < nl ? nl : N / 4;
        const uint64_t ratio = N / T > 1 ? N / T : 1;
        T = N / ratio;
        lin lists = lin_add(lin_part(nl, dnl, D * 4 + 4 + 8 + NC * 4 + 4), lin_fixed(8));
        lists = lin_add(lists, lin_rows(N, 4 + 4)); /* labels, pn */
        lin km = kmeans_fit_lin(T, 1.0 / (double)ratio, D, nl, nt);
        lin perm_tmp = lin_add(lin_rows(N, 1), lin_fixed(ld * 4));
        const uint64_t tq = NND_JOIN_TQ;
        uint64_t per_thread = NC * ld * 4 + tq * (NC > smax ? NC : smax) * 4 + tq * ld * 4 + tq * P * 8 + (NC + 1) * 4 +
                              tq * K * 12 + tq * BF_TOPK_BYTES + P * 4;
        lin join = lin_fixed(nt * per_thread);
        if (N / nl > NND_ROWS_PER_LIST) /* at the list cap, the largest list grows with N */
            join.a = (double)(nt * tq * 4 * LIST_IMBALANCE) / (double)nl;
        init = lin_add(lists, lin_max(lin_max(km, perm_tmp), join));
        init_formula = "n_lists*(D*4 + 16 + NC*4) + N*8 + max(k-means of N/4 rows, N + ld*4, "
                       "threads*join scratch); n_lists = clamp(N/128, 1, 65536)";
        init_src = SRC_NND_JOIN;
    }
    int t_init = add_term(e, "cpu_init_size", ANN_MEM_HOST, init, init_formula, init_src);

    /* An iteration: reverse-sample counters, then the joins' proposals and merge stamps. */
    lin seen = lin_rows(N, 8);
    const uint64_t chunk = N < NND_CHUNK ? N : NND_CHUNK;
    lin props = N < NND_CHUNK ? lin_rows(N, 3 * S * 12) : lin_fixed(chunk * 3 * S * 12);
    lin join = lin_add(lin_add(props, lin_rows(N, 8 + nt * 4)), lin_fixed(nt * (16 * S * S * 4 + K * 9)));
    int t_iter = add_term(e, "cpu_iteration_size", ANN_MEM_HOST, lin_max(seen, join),
                          "max(N*8, min(N, 8192)*3*cpu_S*12 + N*8 + threads*(N*4 + 16*cpu_S^2*4 + cpu_K*9))",
                          SRC_NND_CPU);

    lin ws = lin_add(lin_add(term_lin(e, t_out), term_lin(e, t_rows)),
                     lin_add(term_lin(e, t_nrm), term_lin(e, t_graph)));
    ws = lin_add(ws, term_lin(e, t_smp));
    ws = lin_add(ws, lin_max(term_lin(e, t_init), term_lin(e, t_iter)));
    return add_term(e, "cpu_workspace_size", ANN_MEM_HOST, ws,
                    "cpu_graph_out_size + cpu_rows_size + cpu_norms_size + cpu_knn_size + cpu_samples_size + "
                    "max(cpu_init_size, cpu_iteration_size)",
                    SRC_NND_CPU);
}

/*
 * The ivf_pq graph build of @p in (anngraph --algo ivf_pq): every term,
 * peak "build_peak" = input_size + the index arrays allocated first + the
 * largest of the phases that do not coexist.  The parameters must resolve
 * (check_inputs() did); the model then adds nothing.
 */
static void model_ivf_pq(const ann_mem_inputs *in, ann_mem_estimate *e)
{
    ann_ivf_pq_graph_params r;
    int64_t n_train_i;
    if (ivfpq_resolve(in, in->rows, &r, &n_train_i) != ANN_OK)
        return;
    const uint64_t N = (uint64_t)in->rows, D = (uint64_t)in->dim, B = (uint64_t)in->bytes_per_value;
    const uint64_t nt = (uint64_t)threads_of(in);
    const uint64_t L = (uint64_t)r.index.n_lists, pq_dim = (uint64_t)r.index.pq_dim;
    const uint64_t bits = (uint64_t)r.index.pq_bits, book = (uint64_t)1 << bits;
    const uint64_t pq_len = (D + pq_dim - 1) / pq_dim, rd = pq_dim * pq_len;
    const uint64_t chunks = bits == 4 ? (pq_dim + 1) / 2 : pq_dim;
    const bool rotate = rd != D || r.index.force_random_rotation;
    const bool cosine = r.index.metric == ANN_METRIC_COSINE;
    const uint64_t G = (uint64_t)r.graph_degree, R = r.return_distances ? 1 : 0;
    const uint64_t T = (uint64_t)n_train_i;
    const bool direct = T == N && in->dtype == ANN_DTYPE_F32 && B == 4 && !cosine;
    const double dT = (double)T / (double)N; /* 1 / ratio */
    uint64_t n_pq = (uint64_t)r.index.max_train_points_per_pq_code * book;
    double d_pq = 0.0;
    if (n_pq >= T) {
        n_pq = T;
        d_pq = dT;
    }
    int64_t n_cand = (int64_t)ceil((double)G * (double)r.refine_ratio);
    if (n_cand < (int64_t)G + 1)
        n_cand = (int64_t)G + 1;
    if (n_cand > (int64_t)N)
        n_cand = (int64_t)N;
    const uint64_t C = (uint64_t)n_cand;
    const uint64_t tables = bits == 4 ? 2 * chunks : chunks;
    const uint64_t list_max = LIST_IMBALANCE * ceil_div(N, L) < N ? LIST_IMBALANCE * ceil_div(N, L) : N;
    const uint64_t groups_max = ceil_div(list_max, PQ_GROUP);

    add_count(e, "n_lists", (double)L, in->n_lists ? "as given" : "auto: max(1, N/2000)");
    add_count(e, "pq_dim", (double)pq_dim, in->pq_dim ? "as given" : "auto: from D (ann/ivf_pq.h)");
    add_count(e, "pq_bits", (double)bits, in->pq_bits ? "as given" : "auto: 8 for D <= 32, else 4");
    add_count(e, "pq_len", (double)pq_len, "ceil(D/pq_dim)");
    add_count(e, "rot_dim", (double)rd, "pq_dim*pq_len");
    add_count(e, "chunks", (double)chunks, "16-byte chunks per group: ceil(pq_dim/2) for 4 bits, else pq_dim");
    add_count(e, "fraction", (double)r.index.kmeans_trainset_fraction,
              in->kmeans_trainset_fraction > 0 ? "as given" : "auto: clamp(1/sqrt(N*1e-5), min(1, 32*n_lists/N), 1)");
    add_count(e, "n_train", (double)T, "N/max(1, N/max(floor(fraction*N), n_lists))");
    add_count(e, "n_pq", (double)n_pq, "min(max_train_points_per_pq_code*2^pq_bits, n_train)");
    add_count(e, "n_probes", (double)r.search.n_probes, in->n_probes ? "as given (<= n_lists)" : "auto: round(sqrt(n_lists)/20 + 4)");
    add_count(e, "candidates", (double)C, "min(N, max(G + 1, ceil(G*refine_ratio)))");
    add_count(e, "threads", (double)nt, "OpenMP threads");

    /* What lives through the whole build. */
    int inp = add_term(e, "input_size", ANN_MEM_HOST, lin_rows(N, D * B), "N*D*B", SRC_INPUT);
    int gr = add_term(e, "graph_size", ANN_MEM_HOST, lin_rows(N, G * 4), "N*G*4", SRC_GRAPH_OUT);
    int ds = add_term(e, "distances_size", ANN_MEM_HOST, lin_rows(N, R * G * 4), "R*N*G*4", SRC_GRAPH_OUT);
    /* n_lists grows by 1/2000 per vector while it is auto */
    const double dL = in->n_lists == 0 && N / 2000 > 1 && N / 2000 < ((uint64_t)1 << 24) ? 1.0 / 2000.0 : 0.0;
    int cen = add_term(e, "centers_size", ANN_MEM_HOST, lin_part(L, dL, (D + 1 + rd) * 4),
                       "n_lists*(D + 1 + rot_dim)*4 (centers, norms, rotated centers)", SRC_PQ_INDEX);
    int rot = add_term(e, "rotation_size", ANN_MEM_HOST, lin_fixed(rotate ? rd * D * 4 : 0),
                       rotate ? "rot_dim*D*4" : "0 (rot_dim = D, no forced rotation)", SRC_PQ_INDEX);
    int pqc = add_term(e, "pq_centers_size", ANN_MEM_HOST, lin_fixed(pq_dim * pq_len * book * 4),
                       "pq_dim*pq_len*2^pq_bits*4", SRC_PQ_INDEX);
    int off = add_term(e, "list_offsets_size", ANN_MEM_HOST, lin_part(L + 1, dL, 16),
                       "2*(n_lists + 1)*8 (rows and groups)", SRC_PQ_INDEX);
    int ids = add_term(e, "list_ids_size", ANN_MEM_HOST, lin_rows(N, 8), "N*8", SRC_PQ_INDEX);
    lin codes = lin_add(lin_part(N / PQ_GROUP + L, 1.0 / PQ_GROUP + dL, chunks * PQ_GROUP), lin_fixed(1));
    int cod = add_term(e, "codes_size", ANN_MEM_HOST, codes, "(N/16 + n_lists)*chunks*16 (groups of 16 rows, at most)",
                       SRC_PQ_INDEX);
    lin index = lin_add(lin_add(term_lin(e, cen), term_lin(e, rot)), lin_add(term_lin(e, pqc), term_lin(e, off)));
    index = lin_add(index, lin_add(term_lin(e, ids), term_lin(e, cod)));
    add_term(e, "index_size", ANN_MEM_HOST, index,
             "centers_size + rotation_size + pq_centers_size + list_offsets_size + list_ids_size + codes_size",
             SRC_PQ_INDEX);
    /* allocated at the start and kept: everything but the rotation and the codes */
    lin base = lin_add(lin_add(term_lin(e, inp), term_lin(e, gr)), term_lin(e, ds));
    base = lin_add(base, lin_add(lin_add(term_lin(e, cen), term_lin(e, pqc)), lin_add(term_lin(e, off), term_lin(e, ids))));

    /* Phase 1: the training subsample (a copy unless the data are used directly), its labels, k-means. */
    lin carried = lin_part(T, dT, direct ? 4 : 12); /* labels (+ sample ids), kept to the end of the build */
    lin train = lin_add(carried, direct ? lin_zero : lin_part(T, dT, D * 4));
    int tr = add_term(e, "train_size", ANN_MEM_HOST, train,
                      direct ? "n_train*4 (labels; the rows themselves are trained on)"
                             : "n_train*(D*4 + 8 + 4) (f32 copy, sample ids, labels)",
                      SRC_PQ_BUILD);
    int km = add_term(e, "kmeans_fit_size", ANN_MEM_HOST, kmeans_fit_lin(T, dT, D, L, nt),
                      "n_train*(D*4 + 4) (+ hierarchical ceil(n_train/8)*(D*4 + 4) + ...) + "
                      "max(threads*256*n_lists*4, 8*n_train + threads*8*D) + offsets",
                      SRC_KMEANS_FIT);
    lin ph_train = lin_add(term_lin(e, tr), term_lin(e, km));
    /* Phase 2: the rotation, made in doubles. */
    int rs = add_term(e, "rotation_scratch_size", ANN_MEM_HOST, lin_fixed(rotate ? D * rd * 8 : 0),
                      rotate ? "D*rot_dim*8" : "0", SRC_PQ_BUILD);
    lin ph_rot = lin_add(lin_add(term_lin(e, tr), term_lin(e, rot)), term_lin(e, rs));
    /* Phase 3: residuals of n_pq rows, rotated; then (the f32 copy freed) one codebook k-means per thread. */
    lin res = lin_part(n_pq, d_pq, (D + rd) * 4);
    lin cb_thread = lin_fixed(nt * (book * pq_len * 4));
    const uint64_t c_eff = n_pq < book ? n_pq : book;
    cb_thread = lin_add(cb_thread, kmeans_fit_lin(n_pq, d_pq, pq_len, c_eff, 1));
    if (nt > 1) { /* every thread may train one */
        lin one = kmeans_fit_lin(n_pq, d_pq, pq_len, c_eff, 1);
        for (uint64_t t = 1; t < nt && t < pq_dim; t++)
            cb_thread = lin_add(cb_thread, one);
    }
    lin cb = lin_max(lin_add(term_lin(e, tr), res), lin_add(lin_add(carried, lin_part(n_pq, d_pq, rd * 4)), cb_thread));
    int cbt = add_term(e, "codebook_train_size", ANN_MEM_HOST, lin_add(cb, term_lin(e, rot)),
                       "rotation_size + max(train_size + n_pq*(D + rot_dim)*4, "
                       "n_train*(4|12) + n_pq*rot_dim*4 + min(threads, pq_dim)*(codebook k-means of n_pq x pq_len))",
                       SRC_PQ_BUILD);
    /* Phase 4: every row's list and place, the codes, the encoding scratch. */
    lin lab_scratch = lin_fixed(4 * L + nt * KM_ROW_BLOCK * L * 4);
    if (cosine || in->dtype != ANN_DTYPE_F32 || B != 4)
        lab_scratch = lin_add(lab_scratch, N < PQ_LABEL_CHUNK ? lin_rows(N, D * 4) : lin_fixed(PQ_LABEL_CHUNK * D * 4));
    lin enc_thread = lin_fixed(nt * (PQ_ENCODE_BLOCK * (D + rd) * 4 + pq_dim + 1));
    lin enc = lin_add(lin_add(carried, lin_rows(N, 12)), lin_add(term_lin(e, rot), term_lin(e, cod)));
    enc = lin_add(enc, lin_max(lin_max(lab_scratch, lin_part(L, dL, 8)), enc_thread));
    int en = add_term(e, "encode_size", ANN_MEM_HOST, enc,
                      "n_train*(4|12) + N*(4 + 8) (labels, places) + rotation_size + codes_size + "
                      "max(label scratch, threads*(64*(D + rot_dim)*4 + pq_dim + 1))",
                      SRC_PQ_BUILD);
    /* Phase 5: every row searched for its candidates, then refined (per thread). */
    uint64_t per = PQ_QUERY_BLOCK * D * 4 * (cosine ? 2 : 1) + D * 4 + PQ_QUERY_BLOCK * C * 12 + C * RANKED_BYTES;
    per += PQ_QUERY_BLOCK * L * 4 + PQ_QUERY_BLOCK * rd * 4 + rd * 4 + tables * book * 4 +
           groups_max * PQ_GROUP * 4 + L * 16 + (2 * C + 1) * 12;
    int ss = add_term(e, "search_scratch_size", ANN_MEM_HOST, lin_fixed(nt * per),
                      "threads*(16*D*4*(1|2) + D*4 + 16*candidates*12 + candidates*16 + 16*n_lists*4 + "
                      "17*rot_dim*4 + LUT + largest list*4 + n_lists*16 + (2*candidates + 1)*12); "
                      "largest list <= 4*ceil(N/n_lists) rows",
                      SRC_PQ_SEARCH);
    lin ph_search = lin_add(lin_add(term_lin(e, rot), term_lin(e, cod)), term_lin(e, ss));

    lin phases = lin_max(lin_max(ph_train, ph_rot), lin_max(term_lin(e, cbt), lin_max(term_lin(e, en), ph_search)));
    set_peak(e, add_term(e, "build_peak", ANN_MEM_HOST, lin_add(base, phases),
                         "input_size + graph_size + distances_size + centers_size + pq_centers_size + "
                         "list_offsets_size + list_ids_size + max(train_size + kmeans_fit_size, train_size + "
                         "rotation_size + rotation_scratch_size, codebook_train_size, encode_size, "
                         "rotation_size + codes_size + search_scratch_size)",
                         SRC_PQ_BUILD));
}

/*
 * What annkit's CPU IVF-PQ graph build of @p in with @p G ids per row
 * (refine_ratio @p refine, the auto preset, no distances) holds besides
 * the dataset, as a linear form, into *out.  Returns false when the
 * parameters do not resolve (l1, hamming): no such CPU build.
 */
static bool ivfpq_workspace(const ann_mem_inputs *in, uint64_t G, double refine, lin *out)
{
    ann_mem_inputs x;
    ann_mem_inputs_init(&x, ANN_ALGO_IVF_PQ);
    x.rows = in->rows;
    x.dim = in->dim;
    x.dtype = in->dtype;
    x.bytes_per_value = in->bytes_per_value;
    x.metric = in->metric == ANN_METRIC_EUCLIDEAN ? ANN_METRIC_SQEUCLIDEAN : in->metric;
    x.n_threads = in->n_threads;
    x.graph_degree = (int64_t)G;
    x.refine_ratio = refine;
    x.return_distances = false;
    ann_mem_estimate *sub = malloc(sizeof *sub);
    bool ok = false;
    if (sub && ann_mem_estimate_compute(&x, sub) == ANN_OK) {
        const ann_mem_term *bp = ann_mem_term_find(sub, "build_peak");
        const ann_mem_term *ip = ann_mem_term_find(sub, "input_size");
        if (bp && ip) {
            lin a = {bp->bytes - ip->bytes, bp->per_vector - ip->per_vector, bp->fixed - ip->fixed};
            *out = a;
            ok = true;
        }
    }
    ann_clear_error();
    free(sub);
    return ok;
}

/*
 * What annkit's CPU NN-Descent of @p in with @p G ids per row out,
 * intermediate degree @p K and no distances holds besides the dataset
 * (cpu_workspace_size), into *out.  Returns false only when out of memory.
 */
static bool nnd_workspace(const ann_mem_inputs *in, uint64_t G, uint64_t K, lin *out)
{
    ann_mem_estimate *sub = calloc(1, sizeof *sub);
    if (!sub)
        return false;
    sub->in = *in;
    int i = nnd_cpu_terms(in, sub, G, K, false);
    *out = term_lin(sub, i);
    free(sub);
    return i >= 0;
}

/* ------------------------------------------------------------------ */
/* ACE (seeds/hnsw-ace.md, AceParams.npartitions)                      */
/* ------------------------------------------------------------------ */

#define SRC_ACE "hnsw-ace.md: AceParams npartitions"

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
        /* the docs' rule: 0.20 for IVF-PQ builds (and searches), 0.30 for NN-Descent and iterative builds */
        return in->build_algo == ANN_MEM_BUILD_IVF_PQ ? 0.20 : 0.30;
    case ANN_ALGO_IVF_PQ:
        return 0.20; /* an IVF-PQ build, as in the docs */
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
    case ANN_ALGO_IVF_PQ:
        model_ivf_pq(&est->in, est);
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
 * Points where the peak can drop as N grows: the k-means training rows
 * of ivf_flat and ivf_pq (ivfpq_drops() below).  ivf_flat's
 * n / floor(n / n_t) fall back when the ratio steps up, at
 * n = (r + 1) * n_t - 1 where n_t is constant: n_t = n_lists (small N) and
 * n_t = n_lists * max_train_points_per_cluster (capped).  Calls @p fn on
 * each such point below @p limit, in increasing order, until it returns
 * true; returns the point it stopped at, or -1.
 */
typedef bool (*drop_fn)(void *user, int64_t n);

/* ivf_pq: the k-means sampling ratio of ann_ivf_pq_cpu_build at N = n (n / n_train would not be exact). */
static int64_t ivfpq_ratio(const ann_mem_inputs *in, int64_t n)
{
    ann_ivf_pq_graph_params r;
    int64_t n_train;
    if (ivfpq_resolve(in, n, &r, &n_train) != ANN_OK)
        return -1;
    int64_t want = (int64_t)((double)r.index.kmeans_trainset_fraction * (double)n);
    if (want < r.index.n_lists)
        want = r.index.n_lists;
    return n / want > 1 ? n / want : 1;
}

/*
 * ivf_pq: the peak falls where the sampling ratio steps up (n_train =
 * n / ratio falls), so the local maxima are the points n - 1 where
 * ratio(n) > ratio(n - 1).  Below 65536 every n is looked at; above, the
 * ratio (about 1 / fraction, or sqrt(n x 1e-5) while the fraction is
 * auto) only grows but for rounding next to a step: each step is found by
 * bisection, and a window of 4 x ratio + 64 points on each side of it is
 * looked at.  At most 10^5 steps.
 */
static int64_t ivfpq_drops(const ann_mem_inputs *in, int64_t limit, drop_fn fn, void *user)
{
    ann_clear_error();
    int64_t prev = ivfpq_ratio(in, 1);
    const int64_t scan_end = limit < 65536 ? limit : 65536;
    for (int64_t n = 2; n <= scan_end; n++) {
        const int64_t r = ivfpq_ratio(in, n);
        if (r > prev && fn(user, n - 1))
            return n - 1;
        prev = r;
    }
    int64_t n0 = scan_end;
    for (int steps = 0; n0 < limit && steps < 100000; steps++) {
        const int64_t r0 = ivfpq_ratio(in, n0);
        int64_t lo = n0, hi = limit;
        if (r0 < 0 || ivfpq_ratio(in, hi) <= r0)
            break;
        while (hi - lo > 1) { /* ratio(lo) <= r0 < ratio(hi) */
            const int64_t mid = lo + (hi - lo) / 2;
            if (ivfpq_ratio(in, mid) > r0)
                hi = mid;
            else
                lo = mid;
        }
        int64_t w0 = hi - 4 * r0 - 64, w1 = hi + 4 * r0 + 64;
        w0 = w0 <= n0 ? n0 + 1 : w0;
        w1 = w1 > limit ? limit : w1;
        prev = ivfpq_ratio(in, w0 - 1);
        for (int64_t n = w0; n <= w1; n++) {
            const int64_t r = ivfpq_ratio(in, n);
            if (r > prev && fn(user, n - 1))
                return n - 1;
            prev = r;
        }
        n0 = w1;
    }
    ann_clear_error();
    return -1;
}

static int64_t for_each_drop(const ann_mem_inputs *in, int64_t limit, drop_fn fn, void *user)
{
    if (in->algo == ANN_ALGO_IVF_PQ)
        return ivfpq_drops(in, limit, fn, user);
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
    case ANN_ALGO_IVF_PQ:
        if (build_params) {
            const ann_ivf_pq_graph_params *p = build_params;
            in.metric = p->index.metric;
            in.n_lists = p->index.n_lists;
            in.pq_dim = p->index.pq_dim;
            in.pq_bits = p->index.pq_bits;
            in.kmeans_trainset_fraction = p->index.kmeans_trainset_fraction;
            in.force_random_rotation = p->index.force_random_rotation;
            in.max_train_points_per_pq_code = p->index.max_train_points_per_pq_code;
            in.n_probes = p->search.n_probes;
            in.graph_degree = p->graph_degree;
            in.refine_ratio = p->refine_ratio;
            in.return_distances = p->return_distances;
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
