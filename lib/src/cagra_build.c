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
 * entries are stamped once in a per-thread array of size rows (the stamp
 * holds the rank), so each test is one load: for D = A[kAD], every id v
 * of D's row with stamp[v] = rank kAB > kAD adds one detour to kAB.
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
     "initial kNN graph: auto = brute_force while rows^2 x dim <= 4e10, else nn_descent (ivf_pq, iterative: "
     "not yet)"},
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
 * ids >= n or == a unusable.  stamp/rank: per-thread arrays of n entries;
 * stamp[v] == epoch means v is in the row at rank rank[v].  Writes deg
 * picks to out; returns the number of usable distinct entries when it is
 * below deg (an error for the caller), else deg.
 */
static int prune_row(const uint32_t *knn, int64_t n, int32_t ideg, int32_t deg, int64_t a, uint32_t *stamp,
                     uint16_t *rank, uint32_t epoch, uint16_t *detour, uint32_t *out)
{
    const uint32_t *row = knn + a * ideg;
    enum { UNUSABLE = 0xFFFF };
    int usable = 0;
    for (int32_t k = 0; k < ideg; k++) {
        uint32_t v = row[k];
        if (v >= (uint64_t)n || v == (uint64_t)a || stamp[v] == epoch) {
            detour[k] = UNUSABLE; /* invalid, self, or a later copy of an id */
            continue;
        }
        detour[k] = 0;
        stamp[v] = epoch;
        rank[v] = (uint16_t)k;
        usable++;
    }
    if (usable < deg)
        return usable;
    /* for each D = row[kd], every id of D's row that sits in a's row at a rank above kd is a detour */
    for (int32_t kd = 0; kd < ideg; kd++) {
        if (detour[kd] == UNUSABLE)
            continue;
        const uint32_t *drow = knn + (int64_t)row[kd] * ideg;
        for (int32_t j = 0; j < ideg; j++) {
            uint32_t v = drow[j];
            if (v < (uint64_t)n && stamp[v] == epoch && rank[v] > kd)
                detour[rank[v]]++;
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
#pragma omp parallel num_threads(nt)
    {
        uint32_t *stamp = calloc((size_t)n, sizeof(uint32_t));
        uint16_t *rank = malloc((size_t)n * sizeof(uint16_t));
        uint16_t *detour = malloc((size_t)ideg * sizeof(uint16_t));
        uint32_t epoch = 0;
        bool ok = stamp && rank && detour;
        if (!ok) {
#pragma omp critical(cagra_opt_err)
            st = ANN_ERR_NOMEM;
        }
#pragma omp for schedule(dynamic, 256)
        for (int64_t a = 0; a < n; a++) {
            if (!ok)
                continue;
            int got = prune_row(knn, n, ideg, deg, a, stamp, rank, ++epoch, detour, out + a * deg);
            if (got < deg) {
#pragma omp critical(cagra_opt_err)
                if (bad_row < 0 || a < bad_row) {
                    bad_row = a;
                    bad_usable = got;
                }
            }
        }
        free(stamp);
        free(rank);
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
    } else if (p.build_algo == ANN_CAGRA_BUILD_IVF_PQ || p.build_algo == ANN_CAGRA_BUILD_ITERATIVE) {
        return ann_set_error(ANN_ERR_UNSUPPORTED,
                             "cagra: build_algo %s is not available in this version (use nn_descent or brute_force, "
                             "or --graph FILE)",
                             p.build_algo == ANN_CAGRA_BUILD_IVF_PQ ? "ivf_pq" : "iterative");
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
        ann_algo which = p.build_algo == ANN_CAGRA_BUILD_BRUTE_FORCE ? ANN_ALGO_BRUTE_FORCE
                       : p.build_algo == ANN_CAGRA_BUILD_NN_DESCENT  ? ANN_ALGO_NN_DESCENT
                       : (double)n * (double)n * (double)data->cols <= ANN_CAGRA_AUTO_BF_WORK
                           ? ANN_ALGO_BRUTE_FORCE
                                                                      : ANN_ALGO_NN_DESCENT;
        ann_metric gm = p.metric == ANN_METRIC_EUCLIDEAN ? ANN_METRIC_SQEUCLIDEAN : p.metric;
        if (which == ANN_ALGO_NN_DESCENT) {
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
