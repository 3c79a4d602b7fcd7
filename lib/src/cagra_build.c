/*
 * cagra_build.c - CAGRA graph construction on the CPU.
 *
 * Sources: Ootomo et al., "CAGRA: Highly Parallel Graph Construction and
 * Approximate Nearest Neighbor Search for GPUs", ICDE 2024, section IV;
 * notes/algorithms.md 6.1-6.3 (parameters, pipeline, optimize) and 13
 * (what a CPU version keeps).  The pipeline:
 *  1. initial kNN graph of intermediate_graph_degree (ideg) neighbours:
 *     the caller's graph, NN-Descent (ann_graph_build) or the exact graph;
 *  2. every row re-sorted by the exact distance from its row (float
 *     arithmetic on the original values, ties by id), duplicates and the
 *     row itself dropped (notes 13: "re-sort rows by exact distance before
 *     pruning regardless of builder");
 *  3. ann_cagra_optimize(): rank-based detour-count prune, reverse graph of
 *     the pruned graph ordered by column, merge with deg/2 protected
 *     forward edges (notes 6.3 (a)-(c)); with guarantee_connectivity, a
 *     spanning tree of the kNN graph goes first into every row (annkit's
 *     CPU form of notes 6.3 (d), see spanning_tree()).
 *
 * Detour counting costs ideg^2 membership tests per row; each row's
 * entries are tagged once in a per-thread array of size rows (the tag
 * holds a row epoch and the rank), so each test is one load: for
 * D = A[kAD], every id v of D's row with a current tag of rank kAB > kAD
 * adds one detour to kAB.
 *
 * Initial graph builders (build_algo, notes 6.1): brute_force (exact),
 * nn_descent (notes 5), ivf_pq (notes 4; wired by initial_graph_ivf_pq()),
 * iterative (notes 6.4: the graph grows by doubling, each round searching
 * the graph it has with CAGRA search and optimising the result; see
 * iterative_build(), which yields the final graph itself), and auto:
 * brute_force for small data, else nn_descent when NN-Descent's memory
 * model fits the host memory the build may use, else ivf_pq
 * (resolve_auto()).
 *
 * Measured (Fashion-MNIST train, 60000 x 784, graph_degree 32,
 * intermediate_graph_degree 64, --threads 2 on the shared 2-core machine
 * at load ~6, so walls are inflated): iterative 19.4-21.1 s wall, 12.6-13.6
 * s CPU, 447 MB peak RSS; nn_descent 24.4-29.1 s wall, 18.1-18.9 s CPU,
 * 836 MB; recall@10 on the 10000 test queries the same within 0.00003
 * (itopk 32: 0.99832 vs 0.99834; 64: 0.99969 vs 0.99971; 128: 0.99994
 * both).  The iterative time is ~95% CAGRA search (7 rounds, 236250
 * queries; the last, at itopk 97 -> 128, nearly half) and ~5% optimize.
 */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "ann/brute_force.h"
#include "ann/graph.h"
#include "ann/memory.h"
#include "ann/ivf_pq.h"
#include "cagra_internal.h"
#include "internal.h"

/* ------------------------- parameter table ------------------------- */

void ann_cagra_params_init(ann_cagra_params *p)
{
    memset(p, 0, sizeof *p);
    p->metric = ANN_METRIC_SQEUCLIDEAN;
    p->intermediate_graph_degree = 128;
    p->graph_degree = 64;
    p->build_algo = ANN_CAGRA_BUILD_AUTO;
    p->nn_descent_niter = 20;
    p->guarantee_connectivity = false;
    p->attach_dataset_on_build = true;
}

static const ann_param_desc cagra_build_table[] = {
    {"graph_degree", ANN_PARAM_INT32, offsetof(ann_cagra_params, graph_degree), 1, 1024, NULL,
     "neighbours per row of the final graph (lowered to intermediate_graph_degree)"},
    {"intermediate_graph_degree", ANN_PARAM_INT32, offsetof(ann_cagra_params, intermediate_graph_degree), 1, 1024,
     NULL, "neighbours per row of the initial kNN graph that is pruned (lowered to rows - 1)"},
    {"build_algo", ANN_PARAM_ENUM, offsetof(ann_cagra_params, build_algo), 0, 4,
     "auto|nn_descent|brute_force|ivf_pq|iterative",
     "initial kNN graph: auto = brute_force, nn_descent or ivf_pq by size and host memory; iterative = "
     "grown by CAGRA search"},
    {"nn_descent_niter", ANN_PARAM_INT32, offsetof(ann_cagra_params, nn_descent_niter), 1, 1000, NULL,
     "NN-Descent iterations of the initial graph"},
    {"guarantee_connectivity", ANN_PARAM_BOOL, offsetof(ann_cagra_params, guarantee_connectivity), 0, 1, NULL,
     "lead every row with spanning-tree edges, so every row is reachable from every other"},
};

const ann_param_desc *ann_cagra_param_table(size_t *n)
{
    *n = sizeof cagra_build_table / sizeof cagra_build_table[0];
    return cagra_build_table;
}

/* ------------------------------ memory ------------------------------ */

void *ann_cagra_alloc(size_t bytes)
{
    const size_t huge = (size_t)2 << 20;
    if (bytes < huge) {
        size_t n = (bytes + 63) / 64 * 64;
        return aligned_alloc(64, n ? n : 64);
    }
    size_t n = (bytes + huge - 1) / huge * huge;
    void *p = NULL;
    if (posix_memalign(&p, huge, n) != 0)
        return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, n, MADV_HUGEPAGE);
#endif
    return p;
}

/* ------------------------------ logging ----------------------------- */

static void log_info(ann_exec *ex, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void log_info(ann_exec *ex, const char *fmt, ...)
{
    if (!ex || !ex->log)
        return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    ex->log(ex->log_user, 1, buf);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void progress(ann_exec *ex, const char *phase, int64_t done, int64_t total)
{
    if (ex && ex->progress)
        ex->progress(ex->progress_user, phase, done, total);
}

/* ------------------------------ optimize ---------------------------- */

/*
 * Prune one row (notes 6.3 (a)).  row: ideg ids of node a, rank order,
 * ids >= n or == a unusable.  tag: per-thread array of n + 1 entries
 * (tag[n] stays 0); tag[v] == (epoch << rbits | k) means v is in the row
 * at rank k (ranks fit rbits bits; epoch >= 1, so 0 never matches).
 * detour: 2^rbits entries.  Writes deg picks to out; returns the number
 * of usable distinct entries when it is below deg (an error for the
 * caller), else deg.
 *
 * The detour count is branch-free: for each id v of D's row (v >= n read
 * as n) it adds "tag current and rank above kd" to detour[rank of the
 * tag], a 0 to some slot when the tag is stale.  A data-dependent branch
 * there mispredicted about a third of the time and cost ~30% of the
 * prune (perf, Fashion-MNIST, ideg 65); the rows of the next D's are
 * prefetched, since they lie at random in the kNN graph.
 */
static int prune_row(const uint32_t *knn, int64_t n, int32_t ideg, int32_t deg, int64_t a, uint32_t *tag,
                     int rbits, uint32_t epoch, uint16_t *detour, uint32_t *out)
{
    const uint32_t *row = knn + a * ideg;
    const uint32_t mask = (1u << rbits) - 1, ep = epoch << rbits;
    const uint32_t un = (uint32_t)n;
    enum { UNUSABLE = 0xFFFF };
    int usable = 0;
    for (int32_t k = 0; k < ideg; k++) {
        const uint32_t v = row[k];
        if (v >= un || v == (uint64_t)a || (tag[v] & ~mask) == ep) {
            detour[k] = UNUSABLE; /* invalid, self, or a later copy of an id */
            continue;
        }
        detour[k] = 0;
        tag[v] = ep | (uint32_t)k;
        usable++;
    }
    if (usable < deg)
        return usable;
    /* for each D = row[kd], every id of D's row that sits in a's row at a rank above kd is a detour */
    enum { AHEAD = 2 };
    for (int32_t kd = 0; kd < AHEAD && kd < ideg; kd++)
        if (row[kd] < un)
            __builtin_prefetch(knn + (int64_t)row[kd] * ideg, 0, 1);
    for (int32_t kd = 0; kd < ideg; kd++) {
        if (kd + AHEAD < ideg && row[kd + AHEAD] < un) {
            const char *nx = (const char *)(knn + (int64_t)row[kd + AHEAD] * ideg);
            for (int64_t l = 0; l < (int64_t)ideg * 4 && l < 512; l += 64)
                __builtin_prefetch(nx + l, 0, 1);
        }
        if (detour[kd] == UNUSABLE)
            continue;
        const uint32_t *drow = knn + (int64_t)row[kd] * ideg;
        for (int32_t j = 0; j < ideg; j++) {
            uint32_t v = drow[j];
            v = v < un ? v : un;
            const uint32_t t = tag[v], r = t & mask;
            detour[r] = (uint16_t)(detour[r] + (((t & ~mask) == ep) & (r > (uint32_t)kd)));
        }
    }
    /* the deg smallest (detour, rank): a counting pass over detour values */
    int picked = 0;
    int32_t maxd = 0;
    for (int32_t k = 0; k < ideg; k++)
        if (detour[k] != UNUSABLE && detour[k] > maxd)
            maxd = detour[k];
    for (int32_t dv = 0; dv <= maxd && picked < deg; dv++)
        for (int32_t k = 0; k < ideg && picked < deg; k++)
            if (detour[k] == dv)
                out[picked++] = row[k];
    return picked;
}

/* ------------------------- spanning tree (MST) ------------------------ */

static int64_t uf_find(int64_t *parent, int64_t i)
{
    while (parent[i] != i) {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    return i;
}

/*
 * A spanning tree of the kNN graph in which no node has more than `cap`
 * tree edges: annkit's CPU form of notes 6.3 (d), which cuVS computes as
 * an approximate degree-constrained minimum spanning forest on the GPU.
 *  1. Kruskal by rank: for rank k = 0 .. ideg-1, for node i = 0 .. n-1,
 *     the edge i - knn[i][k] joins the tree when its ends are in different
 *     components and both have fewer than cap tree edges (rank stands for
 *     length: rows are sorted by exact distance);
 *  2. each component left apart from the largest joins it through one of
 *     its nodes i with room and the first node j = (i + 97 t) mod n,
 *     t = 1, 2, ..., of the largest component with room (the fallback of
 *     notes 6.3 (d)); when no node has room, a node may fill its whole
 *     row (row_max = deg) with tree edges.
 * mst[i * row_max ...] receives node i's tree neighbours in the order
 * their edges were added, nm[i] their number (at most row_max).
 */
static ann_status spanning_tree(const uint32_t *knn, int64_t n, int32_t ideg, int32_t cap, int32_t row_max,
                                uint32_t *mst, int32_t *nm)
{
    int64_t *parent = malloc((size_t)n * sizeof(int64_t));
    int64_t *size = malloc((size_t)n * sizeof(int64_t));
    if (!parent || !size) {
        free(parent);
        free(size);
        return ann_set_error(ANN_ERR_NOMEM, "cagra: out of memory for the spanning tree");
    }
    const int32_t stride = row_max;
    for (int64_t i = 0; i < n; i++) {
        parent[i] = i;
        size[i] = 1;
        nm[i] = 0;
    }
    int64_t components = n;
    for (int32_t k = 0; k < ideg && components > 1; k++)
        for (int64_t i = 0; i < n && components > 1; i++) {
            const uint32_t j = knn[i * ideg + k];
            if (j >= (uint64_t)n || j == (uint64_t)i || nm[i] >= cap || nm[j] >= cap)
                continue;
            int64_t a = uf_find(parent, i), b = uf_find(parent, j);
            if (a == b)
                continue;
            mst[i * stride + nm[i]++] = j;
            mst[(int64_t)j * stride + nm[j]++] = (uint32_t)i;
            if (size[a] < size[b]) {
                int64_t t = a;
                a = b;
                b = t;
            }
            parent[b] = a;
            size[a] += size[b];
            components--;
        }
    int64_t main_root = uf_find(parent, 0);
    for (int64_t r = 0; r < n && components > 1; r++)
        if (parent[r] == r && size[r] > size[main_root])
            main_root = r;
    for (int pass = 0; pass < 2 && components > 1; pass++) {
        /* pass 0 respects the cap; pass 1 lets a node fill its whole row with tree edges */
        const int32_t lim = pass == 0 ? cap : row_max;
        for (int64_t i = 0; i < n && components > 1; i++) {
            if (uf_find(parent, i) == main_root || nm[i] >= lim)
                continue;
            for (int64_t t = 1; t <= n; t++) {
                const int64_t j = (i + 97 * t) % n;
                if (j == i || nm[j] >= lim || uf_find(parent, j) != main_root)
                    continue;
                mst[i * stride + nm[i]++] = (uint32_t)j;
                mst[j * stride + nm[j]++] = (uint32_t)i;
                int64_t a = uf_find(parent, i);
                parent[a] = main_root;
                size[main_root] += size[a];
                components--;
                break;
            }
        }
    }
    free(parent);
    free(size);
    if (components > 1)
        return ann_set_error(ANN_ERR_INVALID_ARG,
                             "cagra: guarantee_connectivity: %lld graph components could not be joined with "
                             "graph_degree %d",
                             (long long)components, (int)row_max);
    return ANN_OK;
}

/*
 * Merge one row (notes 6.3 (c)), literally: start from the pruned row
 * (after the node's spanning-tree neighbours, when there are some: then
 * protected = max(tree neighbours, deg/2)), insert the reverse edges from
 * the last to the first at position `protected`, moving an id already
 * present behind it, skipping one in front of it, and dropping the last
 * entry when the id is new.
 */
static void merge_row(uint32_t *row, int32_t deg, const uint32_t *rev, int32_t nrev, const uint32_t *tree,
                      int32_t ntree)
{
    int32_t prot = deg / 2;
    if (ntree > 0) {
        uint32_t tmp[2048];
        int32_t m = 0;
        for (int32_t j = 0; j < ntree && m < deg; j++)
            tmp[m++] = tree[j];
        for (int32_t j = 0; j < deg && m < deg; j++) {
            bool dup = false;
            for (int32_t t = 0; t < ntree && !dup; t++)
                dup = tree[t] == row[j];
            if (!dup)
                tmp[m++] = row[j];
        }
        memcpy(row, tmp, (size_t)deg * sizeof(uint32_t));
        if (ntree > prot)
            prot = ntree;
    }
    for (int32_t kr = (nrev < deg ? nrev : deg) - 1; kr >= 0; kr--) {
        const uint32_t v = rev[kr];
        int32_t pos = -1;
        for (int32_t j = 0; j < deg; j++)
            if (row[j] == v) {
                pos = j;
                break;
            }
        if (pos >= 0 && pos < prot)
            continue;
        if (prot >= deg)
            continue;
        int32_t end = pos >= 0 ? pos : deg - 1; /* the slot that is overwritten */
        memmove(row + prot + 1, row + prot, (size_t)(end - prot) * sizeof(uint32_t));
        row[prot] = v;
    }
}

ann_status ann_cagra_optimize(const uint32_t *knn, int64_t n, int32_t ideg, int32_t deg, bool guarantee_connectivity,
                              int n_threads, uint32_t *out)
{
    if (guarantee_connectivity && deg < 2 && n > 2)
        return ann_set_error(ANN_ERR_INVALID_ARG, "cagra: guarantee_connectivity needs graph_degree >= 2 (got %d)",
                             (int)deg);
    if (n < 2 || ideg < 1 || deg < 1 || deg > ideg || ideg >= n || ideg > 65535 || deg > 2047)
        return ann_set_error(ANN_ERR_INVALID_ARG,
                             "cagra optimize: need 1 <= graph_degree (%d) <= intermediate_graph_degree (%d) < rows "
                             "(%lld)",
                             (int)deg, (int)ideg, (long long)n);
    if (n > (int64_t)UINT32_MAX - 1)
        return ann_set_error(ANN_ERR_INVALID_ARG, "cagra optimize: %lld rows do not fit uint32 ids", (long long)n);
    const int nt = ann_threads(n_threads);
    ann_status st = ANN_OK;
    uint32_t *rev = NULL, *tree = NULL;
    int32_t *nrev = NULL, *ntree = NULL;
    const int32_t cap = deg / 2 > 2 ? deg / 2 : 2; /* tree edges per node (deg >= 2) */
    int64_t bad_row = -1;
    int bad_usable = 0;

    /* (a) prune */
    int rbits = 1;
    while ((1 << rbits) < ideg)
        rbits++;
    const uint32_t max_epoch = (uint32_t)((1ull << (32 - rbits)) - 1);
#pragma omp parallel num_threads(nt)
    {
        uint32_t *tag = calloc((size_t)n + 1, sizeof(uint32_t));
        uint16_t *detour = malloc(((size_t)1 << rbits) * sizeof(uint16_t));
        uint32_t epoch = 0;
        bool ok = tag && detour;
        if (!ok) {
#pragma omp critical(cagra_opt_err)
            st = ANN_ERR_NOMEM;
        }
#pragma omp for schedule(dynamic, 256)
        for (int64_t a = 0; a < n; a++) {
            if (!ok)
                continue;
            if (epoch == max_epoch) { /* the epoch bits wrap: forget every tag */
                memset(tag, 0, ((size_t)n + 1) * sizeof(uint32_t));
                epoch = 0;
            }
            int got = prune_row(knn, n, ideg, deg, a, tag, rbits, ++epoch, detour, out + a * deg);
            if (got < deg) {
#pragma omp critical(cagra_opt_err)
                if (bad_row < 0 || a < bad_row) {
                    bad_row = a;
                    bad_usable = got;
                }
            }
        }
        free(tag);
        free(detour);
    }
    if (st == ANN_ERR_NOMEM)
        return ann_set_error(ANN_ERR_NOMEM, "cagra optimize: out of memory for per-thread stamps of %lld rows",
                             (long long)n);
    if (bad_row >= 0)
        return ann_set_error(ANN_ERR_INVALID_ARG,
                             "row %lld of the initial kNN graph has only %d distinct neighbours, graph_degree is %d",
                             (long long)bad_row, bad_usable, (int)deg);

    /* (b) reverse graph of the pruned graph, column by column, rows in order */
    rev = malloc((size_t)n * deg * sizeof(uint32_t));
    nrev = calloc((size_t)n, sizeof(int32_t));
    if (!rev || !nrev) {
        st = ann_set_error(ANN_ERR_NOMEM, "cagra optimize: out of memory for the reverse graph");
        goto cleanup;
    }
    for (int32_t c = 0; c < deg; c++)
        for (int64_t s = 0; s < n; s++) {
            const uint32_t t = out[s * deg + c];
            if (nrev[t] < deg)
                rev[(int64_t)t * deg + nrev[t]++] = (uint32_t)s;
        }

    /* (d) the spanning tree, whose edges lead every row */
    if (guarantee_connectivity) {
        tree = malloc((size_t)n * deg * sizeof(uint32_t));
        ntree = malloc((size_t)n * sizeof(int32_t));
        if (!tree || !ntree) {
            st = ann_set_error(ANN_ERR_NOMEM, "cagra optimize: out of memory for the spanning tree");
            goto cleanup;
        }
        if ((st = spanning_tree(knn, n, ideg, cap < deg ? cap : deg, deg, tree, ntree)) != ANN_OK)
            goto cleanup;
    }

    /* (c) merge */
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t a = 0; a < n; a++)
        merge_row(out + a * deg, deg, rev + a * deg, nrev[a], tree ? tree + a * deg : NULL,
                  tree ? ntree[a] : 0);

cleanup:
    free(rev);
    free(nrev);
    free(tree);
    free(ntree);
    return st;
}

/* ------------------------ exact re-sort of rows ---------------------- */

typedef struct key_id {
    float key;
    uint32_t id;
} key_id;

static int key_id_cmp(const void *pa, const void *pb)
{
    const key_id *a = pa, *b = pb;
    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

/* Smaller-is-better key between float rows x (norm nx) and y (norm ny). */
static float pair_key(ann_metric m, const float *x, const float *y, int64_t d, float nx, float ny)
{
    switch (m) {
    case ANN_METRIC_INNER_PRODUCT: return -ann_dot_f32(x, y, d);
    case ANN_METRIC_COSINE: return nx > 0 && ny > 0 ? 1.0f - ann_dot_f32(x, y, d) / (nx * ny) : 1.0f;
    case ANN_METRIC_L1: return ann_l1_f32(x, y, d);
    default: return ann_l2sq_f32(x, y, d);
    }
}

/*
 * Sort each row of knn (n x ideg, in place) by exact distance from its
 * row; duplicates, the row itself and ids >= n go to the end as
 * UINT32_MAX.
 */
static ann_status resort_rows(const ann_matrix *data, ann_metric metric, uint32_t *knn, int32_t ideg, ann_exec *ex)
{
    const int64_t n = data->rows, d = data->cols;
    const int nt = ann_threads(ex->n_threads);
    const bool f32 = data->dtype == ANN_DTYPE_F32;
    float *norms = NULL;
    ann_status st = ANN_OK;
    if (metric == ANN_METRIC_COSINE) {
        norms = malloc((size_t)n * sizeof(float) + 1);
        if (!norms)
            return ann_set_error(ANN_ERR_NOMEM, "cagra: out of memory for %lld norms", (long long)n);
        ann_row_norms(data->data, data->dtype, n, d, data->stride, true, norms, nt);
    }
    int failed = 0;
    progress(ex, "sort", 0, n);
#pragma omp parallel num_threads(nt)
    {
        float *xa = f32 ? NULL : malloc((size_t)d * sizeof(float));
        float *xb = f32 ? NULL : malloc((size_t)d * sizeof(float));
        key_id *buf = malloc((size_t)ideg * sizeof(key_id));
        const bool ok = buf && (f32 || (xa && xb));
        if (!ok) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 512)
        for (int64_t a = 0; a < n; a++) {
            if (!ok)
                continue;
            uint32_t *row = knn + a * ideg;
            const float *fa = f32 ? (const float *)ann_matrix_row(data, a) : xa;
            if (!f32)
                ann_row_to_f32(ann_matrix_row(data, a), data->dtype, d, xa);
            int m = 0;
            for (int32_t j = 0; j < ideg; j++) {
                uint32_t v = row[j];
                if (v >= (uint64_t)n || v == (uint64_t)a)
                    continue;
                const float *fb = f32 ? (const float *)ann_matrix_row(data, v) : xb;
                if (!f32)
                    ann_row_to_f32(ann_matrix_row(data, v), data->dtype, d, xb);
                float key = pair_key(metric, fa, fb, d, norms ? norms[a] : 0, norms ? norms[v] : 0);
                buf[m].key = key == key ? key : INFINITY; /* NaN data rank last */
                buf[m].id = v;
                m++;
            }
            qsort(buf, (size_t)m, sizeof(key_id), key_id_cmp);
            /* a repeated id has the same key, so (key, id) order puts the copies side by side */
            int w = 0;
            for (int j = 0; j < m; j++)
                if (w == 0 || buf[j].id != row[w - 1])
                    row[w++] = buf[j].id;
            for (int j = w; j < ideg; j++)
                row[j] = UINT32_MAX;
        }
        free(xa);
        free(xb);
        free(buf);
    }
    free(norms);
    if (failed)
        st = ann_set_error(ANN_ERR_NOMEM, "cagra: out of memory sorting the kNN graph");
    progress(ex, "sort", n, n);
    return st;
}

/* ------------------------- iterative build -------------------------- */

/*
 * A lossless compact copy of the rows of @p data (f32, rows x cols, any
 * row stride) for the CPU search of the iterative build: u8 when every
 * value is an integer in [0, 255], i8 for [-128, 127], f16 when every
 * value is exactly an IEEE binary16 value.  The same rule as index.c's
 * cagra_narrow(): the CPU kernels convert each element back to the same
 * float and run the same arithmetic, so keys (and the graph) are
 * bit-identical to an f32 search, while the search, which reads rows at
 * random, moves 4x (2x) fewer bytes.  Returns the rows x cols copy
 * (contiguous, ann_cagra_alloc'd; free()) and its dtype in *dt, or NULL
 * (search the original) for other dtypes, data that does not fit, short
 * memory, or ANNKIT_CAGRA_NARROW=0.  Threads: nt.
 */
static void *narrow_rows(const ann_matrix *data, int nt, ann_dtype *dt)
{
    const char *env = getenv("ANNKIT_CAGRA_NARROW");
    if (data->dtype != ANN_DTYPE_F32 || (env && !strcmp(env, "0")))
        return NULL;
    const int64_t n = data->rows, d = data->cols;
    int not_u8 = 0, not_i8 = 0, not_f16 = 0;
#pragma omp parallel for num_threads(nt) schedule(static) reduction(| : not_u8, not_i8)
    for (int64_t i = 0; i < n; i++) {
        const float *x = (const float *)ann_matrix_row(data, i);
        for (int64_t j = 0; j < d; j++) {
            const float v = x[j];
            const float c = v >= -128.0f && v <= 255.0f ? v : 0.5f; /* NaN and far values fail below */
            const int integral = (float)(int32_t)c == c;
            not_u8 |= !(integral && c >= 0.0f);
            not_i8 |= !(integral && c <= 127.0f);
        }
    }
    if (not_u8 && not_i8) {
#pragma omp parallel for num_threads(nt) schedule(dynamic, 64) reduction(| : not_f16)
        for (int64_t i = 0; i < n; i++) {
            const float *x = (const float *)ann_matrix_row(data, i);
            int bad = 0;
            for (int64_t j = 0; j < d && !bad && !not_f16; j++)
                bad = ann_f16_to_f32(ann_f32_to_f16(x[j])) != x[j];
            not_f16 |= bad;
        }
    }
    const ann_dtype t = !not_u8 ? ANN_DTYPE_U8 : !not_i8 ? ANN_DTYPE_I8 : !not_f16 ? ANN_DTYPE_F16 : ANN_DTYPE_F32;
    if (t == ANN_DTYPE_F32)
        return NULL;
    char *p = ann_cagra_alloc((size_t)n * d * ann_dtype_size(t));
    if (!p)
        return NULL;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        const float *x = (const float *)ann_matrix_row(data, i);
        for (int64_t j = 0; j < d; j++) {
            if (t == ANN_DTYPE_U8)
                ((uint8_t *)p)[i * d + j] = (uint8_t)x[j];
            else if (t == ANN_DTYPE_I8)
                ((int8_t *)p)[i * d + j] = (int8_t)x[j];
            else
                ((uint16_t *)p)[i * d + j] = ann_f32_to_f16(x[j]);
        }
    }
    *dt = t;
    return p;
}

/*
 * Give row @p a of a round's kNN list (row: width entries, m usable ones
 * first, rank order) at least @p target distinct usable entries among the
 * first @p qn rows: the search could not supply them (a graph of fewer
 * rows than the round's k, or too few reachable rows).  Candidates are
 * the rows (a + t) mod qn, t = 1, 2, ... not yet in the row (annkit's
 * soft failure, notes 12: "pad with valid ids"); then the whole row is
 * re-sorted by exact distance (pair_key, ties by id), so the prune still
 * sees a rank order.  xa, xb: d floats each; buf: width key_id entries;
 * norms: the rows' L2 norms for cosine, else NULL.
 * Returns the new number of usable entries (min(target, qn - 1)).
 */
static int pad_row(const ann_matrix *data, ann_metric metric, int64_t a, int64_t qn, uint32_t *row, int m,
                   int target, float *xa, float *xb, key_id *buf, const float *norms)
{
    const int64_t d = data->cols;
    for (int64_t t = 1; t < qn && m < target; t++) {
        const uint32_t v = (uint32_t)((a + t) % qn);
        bool present = false;
        for (int j = 0; j < m && !present; j++)
            present = row[j] == v;
        if (!present)
            row[m++] = v;
    }
    ann_row_to_f32(ann_matrix_row(data, a), data->dtype, d, xa);
    for (int j = 0; j < m; j++) {
        ann_row_to_f32(ann_matrix_row(data, row[j]), data->dtype, d, xb);
        const float key = pair_key(metric, xa, xb, d, norms ? norms[a] : 0, norms ? norms[row[j]] : 0);
        buf[j].key = key == key ? key : INFINITY;
        buf[j].id = row[j];
    }
    qsort(buf, (size_t)m, sizeof(key_id), key_id_cmp);
    for (int j = 0; j < m; j++)
        row[j] = buf[j].id;
    return m;
}

/* Queries per CAGRA search call of the iterative build (cuVS max_chunk_size, notes 6.4). */
#define ITER_CHUNK 8192

/*
 * build_algo iterative (notes/algorithms.md 6.4; cuVS
 * iterative_build_graph): the final rows x deg graph of @p data (rows x
 * dim, f32/f16/i8/u8, host; rows >= 2; 1 <= deg <= ideg <= rows - 1, as
 * clamped by the caller), made without any other kNN builder:
 *  - n0 = ceil(rows / 2), halved (rounding up) until n0 <= 64 x deg (at
 *    least 2); small_deg = max(deg / 2, min(deg, 24));
 *  - the initial graph on rows 0 .. n0-1 is deterministic:
 *    G[i][j] = (i + off_j) mod n0, off_0 = 1, off_j = max(off_{j-1} + 1,
 *    floor(((n0 - 1) / 2)^((j + 1) / small_deg))), with min(small_deg,
 *    n0 - 1) columns; the offset 1 makes it a ring, so it is connected;
 *  - each round with cur graph rows searches the first qn = min(2 cur,
 *    rows) rows as queries on the graph of the first cur rows (CAGRA
 *    search, itopk = next_deg + 32, k = next_deg + 1, batches of 8192),
 *    drops each query itself from its results, and optimises the qn x k
 *    list to next_deg (= small_deg while cur < rows, deg once the graph
 *    holds every row) with ann_cagra_optimize(); new rows (cur .. qn-1)
 *    thus bring their own neighbours, and old rows gain them through
 *    the reverse edges of the optimisation;
 *  - once the graph holds every row, one round at deg (k = deg + 1), then
 *    a final round with k = ideg + 1, itopk = k + 32, the only one with
 *    guarantee_connectivity;
 *  - inner_product (annkit's departure from cuVS): every round but the
 *    final one searches and prunes by squared L2, and the final round
 *    searches that graph by inner product and prunes the inner-product
 *    lists.  An inner-product kNN graph points almost every row at a few
 *    large-norm hubs (Fashion-MNIST, 20000 rows: 90 % of the rows are in
 *    no row's top 64), so rounds grown on it search it poorly: the final
 *    lists had recall 0.75 against the exact inner-product graph, 0.98
 *    with L2 rounds (search recall@10 at itopk 64: 0.84 -> 0.99).
 * Rounds: the doublings + 2.  The search goes through the backend that
 * ann_backend_select(ANN_OP_CAGRA_SEARCH) picks for ex (--device cuda:
 * CUDA, or ANN_ERR_BACKEND_UNAVAILABLE when it has no CAGRA search); the
 * CPU reads a lossless compact copy when the f32 values allow one
 * (narrow_rows()).  A search row list with fewer usable neighbours than
 * the round's degree (tiny graphs) is padded by pad_row().
 * Cosine (which cuVS does not build iteratively) searches and prunes by
 * cosine in every round, with the rows' L2 norms.
 * Output: *graph_out (rows x deg uint32, ann_cagra_alloc; free()).
 * Memory: the qn x min(k, qn - 1) uint32 list (at most rows x (ideg + 1),
 * cuVS's H_iter), the graph of the round and the next one, 8192 x k
 * result ids (int64) and distances, a compact copy of the vectors.
 * Errors: ANN_ERR_NOMEM, ANN_ERR_INTERRUPTED (checked between batches),
 * ANN_ERR_BACKEND_UNAVAILABLE, errors of the search and of
 * ann_cagra_optimize().  Threads: ex->n_threads (the search runs OpenMP
 * over queries; optimize over rows).  The graph does not depend on the
 * thread count (each query is searched on its own; optimize is
 * deterministic).  Progress: ("iterative", rounds done, rounds).
 */
static ann_status iterative_build(const ann_cagra_params *p, const ann_matrix *data, int32_t ideg, int32_t deg,
                                  ann_exec *ex, uint32_t **graph_out)
{
    const int64_t n = data->rows, d = data->cols;
    const int nt = ann_threads(ex->n_threads);
    const ann_backend_ops *ops = NULL;
    ann_status st = ann_backend_select(ex, ANN_OP_CAGRA_SEARCH, data->dtype, p->metric, &ops);
    if (st != ANN_OK)
        return st;

    int64_t n0 = (n + 1) / 2;
    while (n0 > 64 * (int64_t)deg)
        n0 = (n0 + 1) / 2;
    if (n0 < 2)
        n0 = 2; /* rows >= 2: a graph of one row has no edges */
    const int32_t min24 = deg < 24 ? deg : 24;
    const int32_t small_deg = deg / 2 > min24 ? deg / 2 : min24; /* max(deg / 2, min(deg, 24)) */
    int rounds = 2;
    for (int64_t c = n0; c < n; c = 2 * c < n ? 2 * c : n)
        rounds++;
    const int32_t kmax = ideg + 1;                             /* the largest k of a round */
    const int32_t wmax = (int64_t)kmax < n - 1 ? kmax : (int32_t)(n - 1); /* widest kNN list */

    uint32_t *graph = NULL, *next = NULL, *knn = NULL;
    int64_t *ids = NULL;
    float *dist = NULL, *norms = NULL, *xa = NULL, *xb = NULL;
    key_id *kbuf = NULL;
    void *narrow = NULL;
    ann_dtype vdt = data->dtype;

    /* the initial graph */
    int32_t gdeg = small_deg < n0 - 1 ? small_deg : (int32_t)(n0 - 1);
    graph = ann_cagra_alloc((size_t)n0 * gdeg * sizeof(uint32_t));
    knn = ann_cagra_alloc((size_t)n * wmax * sizeof(uint32_t));
    ids = malloc((size_t)ITER_CHUNK * kmax * sizeof(int64_t));
    dist = malloc((size_t)ITER_CHUNK * kmax * sizeof(float));
    xa = malloc((size_t)d * sizeof(float));
    xb = malloc((size_t)d * sizeof(float));
    kbuf = malloc((size_t)kmax * sizeof(key_id));
    if (!graph || !knn || !ids || !dist || !xa || !xb || !kbuf) {
        st = ann_set_error(ANN_ERR_NOMEM, "cagra iterative: out of memory for a %lld x %d neighbour list",
                           (long long)n, (int)wmax);
        goto cleanup;
    }
    {
        uint32_t off[1024];
        for (int32_t j = 0; j < gdeg; j++) {
            int64_t o = j == 0 ? 1 : (int64_t)off[j - 1] + 1;
            const double f = pow((double)(n0 - 1) / 2.0, (double)(j + 1) / (double)small_deg);
            if ((double)o < floor(f))
                o = (int64_t)floor(f);
            off[j] = (uint32_t)(o % n0);
        }
        for (int64_t i = 0; i < n0; i++)
            for (int32_t j = 0; j < gdeg; j++)
                graph[i * gdeg + j] = (uint32_t)((i + off[j]) % n0);
    }
    /* what the search reads: squared norms for the L2 family, L2 norms for cosine (the view's contract), the
       compact copy on the CPU */
    /* inner_product grows the graph by squared L2 (see above); only the last round is by inner product */
    const bool l2rounds = p->metric == ANN_METRIC_INNER_PRODUCT;
    const bool cosine = p->metric == ANN_METRIC_COSINE;
    if (p->metric == ANN_METRIC_SQEUCLIDEAN || p->metric == ANN_METRIC_EUCLIDEAN || l2rounds || cosine) {
        norms = malloc((size_t)n * sizeof(float));
        if (!norms) {
            st = ann_set_error(ANN_ERR_NOMEM, "cagra iterative: out of memory for %lld norms", (long long)n);
            goto cleanup;
        }
        ann_row_norms(data->data, data->dtype, n, d, data->stride, cosine, norms, nt); /* cosine: L2, else squared */
    }
    if (ops == ann_cpu_ops())
        narrow = narrow_rows(data, nt, &vdt);
    const void *vdata = narrow ? narrow : data->data;
    const int64_t vstride = narrow ? d * (int64_t)ann_dtype_size(vdt) : data->stride;
    log_info(ex,
             "cagra iterative: %d rounds from a %lld-row graph of degree %d (small degree %d), on %s%s%s", rounds,
             (long long)n0, (int)gdeg, (int)small_deg, ops->name, narrow ? ", search reads a lossless " : "",
             narrow ? ann_dtype_name(vdt) : "");

    int64_t cur = n0;
    bool last = false;
    progress(ex, "iterative", 0, rounds);
    for (int round = 1;; round++) {
        const double t0 = now_s();
        const int64_t qn = 2 * cur < n ? 2 * cur : n;
        const int32_t next_deg = cur == n ? deg : small_deg;
        int32_t k = next_deg + 1, itopk = next_deg + 32;
        if (last) {
            k = ideg + 1;
            itopk = k + 32;
        }
        const int32_t rdeg = (int64_t)next_deg < qn - 1 ? next_deg : (int32_t)(qn - 1); /* output degree */
        const int32_t w = (int64_t)k < qn - 1 ? k : (int32_t)(qn - 1);                 /* list width */

        ann_cagra_search_params sp;
        ann_cagra_search_params_init(&sp);
        sp.itopk_size = itopk;
        sp.max_queries = ITER_CHUNK;
        void *cache = NULL;
        const ann_metric rm = l2rounds && !last ? ANN_METRIC_SQEUCLIDEAN : p->metric;
        const ann_cagra_view v = {.metric = rm,
                                  .dtype = vdt,
                                  .rows = cur,
                                  .dim = d,
                                  .data = vdata,
                                  .stride = vstride,
                                  .norms = rm == ANN_METRIC_INNER_PRODUCT ? NULL : norms,
                                  .graph_degree = gdeg,
                                  .graph = graph,
                                  .filter = NULL,
                                  .filter_bits = 0,
                                  .filter_kept = cur,
                                  .device_cache = &cache};
        int64_t short_rows = 0;
        for (int64_t b0 = 0; b0 < qn && st == ANN_OK; b0 += ITER_CHUNK) {
            if (ann_interrupted(ex)) {
                st = ann_set_error(ANN_ERR_INTERRUPTED, "interrupted");
                break;
            }
            const int64_t bn = qn - b0 < ITER_CHUNK ? qn - b0 : ITER_CHUNK;
            ann_matrix q = *data;
            q.data = ann_matrix_row(data, b0);
            q.rows = bn;
            q.owner = NULL;
            if ((st = ops->cagra_search(&v, &sp, &q, k, ex->n_threads, ids, dist)) != ANN_OK)
                break;
            /* each query's results without itself (duplicates would sit side by side: sorted by (distance, id)) */
            int64_t shortb = 0;
#pragma omp parallel for num_threads(nt) schedule(static) reduction(+ : shortb)
            for (int64_t i = 0; i < bn; i++) {
                const int64_t a = b0 + i;
                const int64_t *r = ids + i * k;
                uint32_t *row = knn + a * w;
                int m = 0;
                for (int32_t j = 0; j < k && m < w; j++) {
                    const int64_t id = r[j];
                    if (id < 0 || id >= qn || id == a || (m > 0 && row[m - 1] == (uint32_t)id))
                        continue;
                    row[m++] = (uint32_t)id;
                }
                if (m < rdeg)
                    shortb++;
                for (int j = m; j < w; j++)
                    row[j] = UINT32_MAX;
            }
            short_rows += shortb;
        }
        if (cache && ops->cache_free)
            ops->cache_free(cache);
        if (st != ANN_OK)
            goto cleanup;
        /* rows the search could not fill (tiny graphs): padded, serially (rare) */
        if (short_rows > 0)
            for (int64_t a = 0; a < qn; a++) {
                uint32_t *row = knn + a * w;
                int m = 0;
                while (m < w && row[m] != UINT32_MAX)
                    m++;
                if (m < rdeg)
                    pad_row(data, rm, a, qn, row, m, rdeg, xa, xb, kbuf, cosine ? norms : NULL);
            }
        if (ann_interrupted(ex)) {
            st = ann_set_error(ANN_ERR_INTERRUPTED, "interrupted");
            goto cleanup;
        }
        const double t1 = now_s();
        next = ann_cagra_alloc((size_t)qn * rdeg * sizeof(uint32_t));
        if (!next) {
            st = ann_set_error(ANN_ERR_NOMEM, "cagra iterative: out of memory for a %lld x %d graph", (long long)qn,
                               (int)rdeg);
            goto cleanup;
        }
        st = ann_cagra_optimize(knn, qn, w, rdeg, last && p->guarantee_connectivity, ex->n_threads, next);
        if (st != ANN_OK)
            goto cleanup;
        free(graph);
        graph = next;
        next = NULL;
        gdeg = rdeg;
        log_info(ex,
                 "cagra iterative: round %d/%d: %lld queries on %lld rows (degree %d), itopk %d, k %d -> %lld x %d"
                 "%s in %.3f s (search %.3f s, optimize %.3f s)%s",
                 round, rounds, (long long)qn, (long long)cur, (int)v.graph_degree, (int)itopk, (int)k,
                 (long long)qn, (int)rdeg, last && p->guarantee_connectivity ? ", connected" : "", now_s() - t0,
                 t1 - t0, now_s() - t1, short_rows ? ", rows padded" : "");
        progress(ex, "iterative", round, rounds);
        const bool was_full = cur == n;
        cur = qn;
        if (last)
            break;
        last = was_full;
    }
    *graph_out = graph;
    graph = NULL;
cleanup:
    free(graph);
    free(next);
    free(knn);
    free(ids);
    free(dist);
    free(norms);
    free(xa);
    free(xb);
    free(kbuf);
    free(narrow);
    return st;
}

/* ------------------------ initial graph: IVF-PQ ---------------------- */

/*
 * The initial kNN graph of build_algo ivf_pq (notes 4 and 6.2): @p data
 * (rows x dim, host) -> *out, a rows x @p ideg graph (rows best first,
 * never the row itself) under p->metric, which the caller re-sorts by
 * exact distance and optimises like any other initial graph.
 * CAGRA's graph-build preset of notes 4.1 (ann_ivf_pq_graph_params with
 * every auto field left 0), graph_degree ideg; the candidates are refined
 * with exact distances (refine_ratio 2, ann/ivf_pq.h), so rows come back
 * in exact order.  euclidean is built as sqeuclidean (same order).
 * Errors: those of ann_graph_build() (ANN_ERR_UNSUPPORTED for l1 and
 * hamming, and for --device cuda: IVF-PQ runs on the CPU only).
 * Threads and progress: those of ex.
 */
static ann_status initial_graph_ivf_pq(const ann_cagra_params *p, const ann_matrix *data, int32_t ideg,
                                       ann_exec *ex, ann_graph **out)
{
    ann_ivf_pq_graph_params gp;
    ann_ivf_pq_graph_params_init(&gp);
    gp.index.metric = p->metric == ANN_METRIC_EUCLIDEAN ? ANN_METRIC_SQEUCLIDEAN : p->metric;
    gp.graph_degree = ideg;
    gp.return_distances = false;
    return ann_graph_build(ANN_ALGO_IVF_PQ, &gp, data, ex, out);
}

/* ------------------------------ auto -------------------------------- */

/*
 * build_algo auto (notes 6.1: cuVS takes NN-Descent when its buffers fit,
 * else IVF-PQ; annkit asks its memory model instead of trying to
 * allocate): brute_force while rows^2 x dim <= ANN_CAGRA_AUTO_BF_WORK;
 * else nn_descent when the host peak of the memory model "cagra with
 * builder nn_descent" (ann/memory.h: on the CPU annkit's own terms,
 * cpu_build_peak; with ex->device CUDA the reference's NND_host_peak =
 * N x (13 I + 912); headroom 0.30) at ideg/deg fits the host memory the build may use:
 * ex->max_host_memory bytes (annbuild --max-host-memory; the dataset is
 * counted, as annbuild's own check does), or when that is 0, the memory
 * available now (ann_mem_host_available(); the dataset, already in
 * memory, is not counted again; unknown = fits); else ivf_pq.  Device
 * memory is not part of the choice.  @p why receives the reason (for the
 * error message when the chosen builder cannot run).  The choice and the
 * reason are logged at level 1 (annbuild -v).  Returns an
 * ann_cagra_build_algo value; never fails (a model error keeps
 * nn_descent).
 */
static int32_t resolve_auto(const ann_cagra_params *p, const ann_matrix *data, int32_t ideg, int32_t deg,
                            ann_exec *ex, char *why, size_t why_len)
{
    const int64_t n = data->rows, d = data->cols;
    const double work = (double)n * (double)n * (double)d;
    if (work <= ANN_CAGRA_AUTO_BF_WORK) {
        snprintf(why, why_len, "rows^2 x dim = %.3g <= %.3g", work, ANN_CAGRA_AUTO_BF_WORK);
        log_info(ex, "cagra: build_algo auto: brute_force (%s)", why);
        return ANN_CAGRA_BUILD_BRUTE_FORCE;
    }
    ann_mem_inputs in;
    ann_mem_inputs_init(&in, ANN_ALGO_CAGRA);
    in.rows = n;
    in.dim = d;
    in.dtype = data->dtype;
    in.metric = p->metric;
    in.graph_degree = deg;
    in.intermediate_graph_degree = ideg;
    in.build_algo = ANN_MEM_BUILD_NN_DESCENT;
    in.n_threads = ex->n_threads;
    in.device = ex->device == ANN_DEVICE_CUDA;
    in.input_on_host = ex->max_host_memory > 0;
    const uint64_t limit = ex->max_host_memory > 0 ? ex->max_host_memory : ann_mem_host_available();
    ann_mem_estimate est;
    ann_status st = ann_mem_check(&in, limit, 0, &est);
    if (st == ANN_ERR_NOMEM) {
        snprintf(why, why_len, "NN-Descent does not fit: %s", ann_last_error());
        ann_clear_error();
        log_info(ex, "cagra: build_algo auto: ivf_pq (%s)", why);
        return ANN_CAGRA_BUILD_IVF_PQ;
    }
    if (st != ANN_OK) {
        snprintf(why, why_len, "the memory model failed: %s", ann_last_error());
        ann_clear_error();
    } else if (limit == 0) {
        snprintf(why, why_len, "host memory unknown; rows^2 x dim = %.3g > %.3g", work, ANN_CAGRA_AUTO_BF_WORK);
    } else {
        snprintf(why, why_len,
                 "estimated peak host memory %.2f GiB (%s) fits %.2f GiB, the usable part of %s %.2f GiB "
                 "(headroom %.2f)",
                 (double)est.host.peak / 1073741824.0, est.host.peak_name,
                 (double)limit * (1.0 - est.headroom) / 1073741824.0,
                 ex->max_host_memory > 0 ? "--max-host-memory" : "the available memory", (double)limit / 1073741824.0,
                 est.headroom);
    }
    log_info(ex, "cagra: build_algo auto: nn_descent (%s)", why);
    return ANN_CAGRA_BUILD_NN_DESCENT;
}

/* -------------------------------- build ----------------------------- */

static bool metrics_agree(ann_metric a, ann_metric b)
{
    bool l2a = a == ANN_METRIC_SQEUCLIDEAN || a == ANN_METRIC_EUCLIDEAN;
    bool l2b = b == ANN_METRIC_SQEUCLIDEAN || b == ANN_METRIC_EUCLIDEAN;
    return a == b || (l2a && l2b);
}

ann_status ann_cagra_build_graph(const ann_cagra_params *pin, const ann_matrix *data, const ann_graph *knn,
                                 ann_exec *ex, uint32_t **graph_out, int32_t *degree_out)
{
    *graph_out = NULL;
    *degree_out = 0;
    ann_cagra_params p = *pin;
    size_t nt_table;
    const ann_param_desc *table = ann_cagra_param_table(&nt_table);
    ann_status st = ann_params_check(table, nt_table, &p);
    if (st != ANN_OK)
        return st;
    const int64_t n = data->rows;
    if (n < 2)
        return ann_set_error(ANN_ERR_INVALID_ARG, "the dataset has %lld row%s: a CAGRA graph needs at least 2",
                             (long long)n, n == 1 ? "" : "s");
    if (n >= (int64_t)UINT32_MAX)
        return ann_set_error(ANN_ERR_INVALID_ARG, "cagra: %lld rows do not fit uint32 graph ids", (long long)n);
    if (p.metric == ANN_METRIC_HAMMING)
        return ann_set_error(ANN_ERR_UNSUPPORTED, "cagra: metric hamming is not available on the CPU");
    if (knn) {
        if (knn->rows != n)
            return ann_set_error(ANN_ERR_MISMATCH, "the kNN graph has %lld rows, the dataset %lld",
                                 (long long)knn->rows, (long long)n);
        if (!metrics_agree(knn->metric, p.metric))
            return ann_set_error(ANN_ERR_MISMATCH, "the kNN graph was made with metric %s, the index uses %s",
                                 ann_metric_name(knn->metric), ann_metric_name(p.metric));
        if (knn->degree < p.intermediate_graph_degree) {
            log_info(ex, "cagra: intermediate_graph_degree %d lowered to the kNN graph's degree %d",
                     (int)p.intermediate_graph_degree, (int)knn->degree);
            p.intermediate_graph_degree = knn->degree;
        }
    }
    if (p.intermediate_graph_degree >= n) {
        log_info(ex, "cagra: intermediate_graph_degree %d lowered to rows - 1 = %lld", (int)p.intermediate_graph_degree,
                 (long long)(n - 1));
        p.intermediate_graph_degree = (int32_t)(n - 1);
    }
    if (p.graph_degree > p.intermediate_graph_degree) {
        log_info(ex, "cagra: graph_degree %d lowered to intermediate_graph_degree %d", (int)p.graph_degree,
                 (int)p.intermediate_graph_degree);
        p.graph_degree = p.intermediate_graph_degree;
    }
    const int32_t ideg = p.intermediate_graph_degree, deg = p.graph_degree;
    /* a caller's graph is sorted at its full width, then cut to ideg */
    const int32_t width = knn ? knn->degree : ideg;
    char why[1400] = "";
    int32_t algo = p.build_algo;
    if (!knn && algo == ANN_CAGRA_BUILD_AUTO)
        algo = resolve_auto(&p, data, ideg, deg, ex, why, sizeof why);
    if (!knn && algo == ANN_CAGRA_BUILD_ITERATIVE) {
        /* the iterative builder yields the final graph itself (no re-sort, one optimize per round) */
        double t = now_s();
        if ((st = iterative_build(&p, data, ideg, deg, ex, graph_out)) != ANN_OK)
            return st;
        log_info(ex, "cagra: iterative graph of degree %d in %.3f s", (int)deg, now_s() - t);
        *degree_out = deg;
        return ANN_OK;
    }

    uint32_t *kg = malloc((size_t)n * width * sizeof(uint32_t));
    uint32_t *out = NULL;
    ann_graph *g = NULL;
    if (!kg) {
        st = ann_set_error(ANN_ERR_NOMEM, "cagra: out of memory for a %lld x %d kNN graph", (long long)n, (int)width);
        goto cleanup;
    }
    /* 1. the initial kNN graph */
    double t0 = now_s();
    if (knn) {
        memcpy(kg, knn->ids, (size_t)n * width * sizeof(uint32_t));
    } else {
        ann_algo which = algo == ANN_CAGRA_BUILD_BRUTE_FORCE ? ANN_ALGO_BRUTE_FORCE
                       : algo == ANN_CAGRA_BUILD_IVF_PQ      ? ANN_ALGO_IVF_PQ
                                                             : ANN_ALGO_NN_DESCENT;
        ann_metric gm = p.metric == ANN_METRIC_EUCLIDEAN ? ANN_METRIC_SQEUCLIDEAN : p.metric;
        if (which == ANN_ALGO_IVF_PQ) {
            st = initial_graph_ivf_pq(&p, data, ideg, ex, &g);
            if (st == ANN_ERR_UNSUPPORTED && p.build_algo == ANN_CAGRA_BUILD_AUTO) {
                char msg[1024];
                snprintf(msg, sizeof msg, "%s", ann_last_error());
                st = ann_set_error(st, "%s; build_algo auto chose ivf_pq because %s", msg, why);
            }
        } else if (which == ANN_ALGO_NN_DESCENT) {
            ann_nn_descent_params np;
            ann_nn_descent_params_init(&np);
            np.metric = gm;
            np.graph_degree = ideg;
            np.intermediate_graph_degree = ideg;
            np.max_iterations = p.nn_descent_niter;
            np.return_distances = false;
            st = ann_graph_build(ANN_ALGO_NN_DESCENT, &np, data, ex, &g);
        } else {
            ann_knn_graph_params kp;
            ann_knn_graph_params_init(&kp);
            kp.metric = gm;
            kp.graph_degree = ideg;
            kp.return_distances = false;
            st = ann_graph_build(ANN_ALGO_BRUTE_FORCE, &kp, data, ex, &g);
        }
        if (st != ANN_OK)
            goto cleanup;
        log_info(ex, "cagra: initial %s graph of degree %d in %.3f s", ann_algo_name(which), (int)ideg,
                 now_s() - t0);
        memcpy(kg, g->ids, (size_t)n * ideg * sizeof(uint32_t));
        ann_graph_free(g);
        g = NULL;
    }
    if (ann_interrupted(ex)) {
        st = ann_set_error(ANN_ERR_INTERRUPTED, "interrupted");
        goto cleanup;
    }
    /* 2. exact order */
    t0 = now_s();
    if ((st = resort_rows(data, p.metric, kg, width, ex)) != ANN_OK)
        goto cleanup;
    log_info(ex, "cagra: rows sorted by exact distance in %.3f s", now_s() - t0);
    if (width != ideg)
        for (int64_t i = 1; i < n; i++)
            memmove(kg + i * ideg, kg + i * width, (size_t)ideg * sizeof(uint32_t));
    if (ann_interrupted(ex)) {
        st = ann_set_error(ANN_ERR_INTERRUPTED, "interrupted");
        goto cleanup;
    }
    /* 3. optimize */
    out = ann_cagra_alloc((size_t)n * deg * sizeof(uint32_t));
    if (!out) {
        st = ann_set_error(ANN_ERR_NOMEM, "cagra: out of memory for a %lld x %d graph", (long long)n, (int)deg);
        goto cleanup;
    }
    progress(ex, "optimize", 0, 1);
    t0 = now_s();
    st = ann_cagra_optimize(kg, n, ideg, deg, p.guarantee_connectivity, ex->n_threads, out);
    progress(ex, "optimize", 1, 1);
    log_info(ex, "cagra: graph optimised (prune, reverse, merge) in %.3f s", now_s() - t0);
    if (st != ANN_OK)
        goto cleanup;
    *graph_out = out;
    *degree_out = deg;
    out = NULL;
cleanup:
    ann_graph_free(g);
    free(kg);
    free(out);
    return st;
}
