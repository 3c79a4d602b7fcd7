/*
 * nnd_cpu.c - NN-Descent all-neighbours kNN graphs on the CPU.
 *
 * Sources: Dong, Moses, Li, "Efficient k-nearest neighbor graph
 * construction for generic similarity measures", WWW 2011; the GNND
 * variant of cuVS (Wang et al., CIKM 2021; notes/algorithms.md section 5)
 * for the sampling rules (new and old samples per row, reverse
 * lists, new/old flags).  What differs from the GPU reference, and why:
 *  - Initial graph: each row's nearest rows among the rows of its own and
 *    its nearest balanced k-means lists (an IVF self-join, join_init(),
 *    GEMM-bound and cheap), the role pynndescent's random-projection
 *    forest plays.  NN-Descent then needs few iterations.  L1 uses an
 *    IVF-Flat search of the data by itself (cluster_init()); the bitwise
 *    hamming metric starts from a random graph (distinct ids, never the
 *    row itself: sound for every N, unlike issue #2273).
 *  - Row ids are list positions: join_init permutes the f32 copy of the
 *    rows into list order (the original ids come back at output), so the
 *    joins, which mostly pair rows of nearby lists, read nearby memory.
 *  - Local join: all new x new and new x old pairs are compared (one
 *    small all-pairs block per row, read in place: ann_dot_pairs_f32)
 *    and every closer pair is proposed to both rows, as in classic
 *    NN-Descent, instead of only the best pairing.
 *  - Updates are deterministic: rows are joined in chunks; a chunk's
 *    proposals are filtered against the row bounds fixed at the chunk's
 *    start, bucketed by target, sorted by (distance, id) and merged into
 *    each row.  The result depends on the seed only, not on thread timing.
 *  - "Already sampled" is the new/old flag of each graph entry (an exact
 *    set), not a Bloom filter.
 * Termination: an iteration whose insertions are fewer than
 * termination_threshold x rows x intermediate_graph_degree ends the loop.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ann/graph.h"
#include "ann/index.h"
#include "ann/ivf_flat.h"
#include "cpu_ops.h"
#include "index_internal.h"
#include "internal.h"
#include "nnd_cpu.h"

enum { S_MAX = 32, CHUNK = 8192 };

typedef struct nnd {
    int64_t n, d;
    int64_t ld;            /* row stride of x in floats: d rounded up to 16, zero-padded */
    int K;
    ann_metric metric;
    float *x;              /* n x ld f32 (possibly rounded to fp16 values) */
    float *nrm;            /* squared norms (L2), norms (cosine) or NULL */
    const uint8_t *bits;   /* hamming: the raw bytes, n x d */
    int32_t *gid;          /* n x K, each row sorted by (dist, id) */
    float *gd;
    uint8_t *gnew;
} nnd;

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Distance key (smaller is better) between rows a and b, computed directly. */
static float direct_key(const nnd *g, int64_t a, int64_t b)
{
    const int64_t d = g->d, ld = g->ld;
    switch (g->metric) {
    case ANN_METRIC_HAMMING: {
        const uint8_t *x = g->bits + a * d, *y = g->bits + b * d;
        int c = 0;
        for (int64_t j = 0; j < d; j++)
            c += __builtin_popcount((unsigned)(x[j] ^ y[j]));
        return (float)c;
    }
    case ANN_METRIC_L1: return ann_l1_f32(g->x + a * ld, g->x + b * ld, d);
    case ANN_METRIC_INNER_PRODUCT: return -ann_dot_f32(g->x + a * ld, g->x + b * ld, d);
    case ANN_METRIC_COSINE: {
        float den = g->nrm[a] * g->nrm[b];
        return den > 0 ? 1.0f - ann_dot_f32(g->x + a * ld, g->x + b * ld, d) / den : 1.0f;
    }
    default: {
        float v = g->nrm[a] + g->nrm[b] - 2.0f * ann_dot_f32(g->x + a * ld, g->x + b * ld, d);
        return v > 0 ? v : 0;
    }
    }
}

/* Key from a dot product (GEMM path). */
static inline float dot_key(const nnd *g, int64_t a, int64_t b, float dot)
{
    switch (g->metric) {
    case ANN_METRIC_INNER_PRODUCT: return -dot;
    case ANN_METRIC_COSINE: {
        float den = g->nrm[a] * g->nrm[b];
        float v = den > 0 ? 1.0f - dot / den : 1.0f;
        return v > 4e-7f ? v : 0; /* below float resolution: identical directions */
    }
    default: {
        /* rounding leaves about 1e-7 x (|a|^2 + |b|^2) where a == b: report 0 below that */
        float v = g->nrm[a] + g->nrm[b] - 2.0f * dot;
        return v > 4e-7f * (g->nrm[a] + g->nrm[b]) ? v : 0;
    }
    }
}

static int pair_cmp(const void *pa, const void *pb)
{
    const float *a = pa, *b = pb;
    if (a[0] != b[0])
        return a[0] < b[0] ? -1 : 1;
    int32_t ia, ib;
    memcpy(&ia, a + 1, 4);
    memcpy(&ib, b + 1, 4);
    return (ia > ib) - (ia < ib);
}

/* Sort row i by (dist, id). */
static void sort_row(nnd *g, int64_t i)
{
    float tmp[2 * 1024];
    float *buf = g->K <= 1024 ? tmp : malloc((size_t)g->K * 2 * sizeof(float));
    if (!buf)
        return;
    for (int j = 0; j < g->K; j++) {
        buf[2 * j] = g->gd[i * g->K + j];
        memcpy(&buf[2 * j + 1], &g->gid[i * g->K + j], 4);
    }
    qsort(buf, (size_t)g->K, 2 * sizeof(float), pair_cmp);
    for (int j = 0; j < g->K; j++) {
        g->gd[i * g->K + j] = buf[2 * j];
        memcpy(&g->gid[i * g->K + j], &buf[2 * j + 1], 4);
    }
    if (buf != tmp)
        free(buf);
}

/* Random initial row: K distinct ids != i. */
static void random_row(nnd *g, int64_t i, uint64_t seed)
{
    uint64_t s = seed ^ ((uint64_t)i * 0xd1b54a32d192ed03ull);
    int32_t *row = g->gid + i * g->K;
    int m = 0;
    while (m < g->K) {
        int64_t v = (int64_t)(splitmix(&s) % (uint64_t)g->n);
        if (v == i)
            continue;
        bool dup = false;
        for (int j = 0; j < m && !dup; j++)
            dup = row[j] == v;
        if (!dup)
            row[m++] = (int32_t)v;
    }
    for (int j = 0; j < g->K; j++)
        g->gd[i * g->K + j] = direct_key(g, i, row[j]);
    sort_row(g, i);
}

/*
 * Complete row i, whose first `found` entries are set, with random
 * distinct ids other than i (keys computed directly), then sort it when
 * anything was added: the initial graph of rows that had too few
 * candidates (tiny data).
 */
static void top_up_row(nnd *g, int64_t i, int found, uint64_t seed)
{
    const int K = g->K;
    int32_t *row = g->gid + i * K;
    float *rowd = g->gd + i * K;
    uint64_t s = seed ^ ((uint64_t)i * 0x9e3779b97f4a7c15ull);
    for (int c = found; c < K;) {
        int64_t v = (int64_t)(splitmix(&s) % (uint64_t)g->n);
        bool dup = v == i;
        for (int j = 0; j < c && !dup; j++)
            dup = row[j] == v;
        if (!dup) {
            row[c] = (int32_t)v;
            rowd[c++] = direct_key(g, i, v);
        }
    }
    if (found < K)
        sort_row(g, i);
}

/*
 * Initial graph from an IVF-Flat search of the data by itself: K + 1
 * nearest rows among n_probes clusters, without the row itself; rows left
 * short are topped up with random distinct ids.
 */
static ann_status cluster_init(nnd *g, const ann_matrix *data, ann_exec *ex, int32_t *order)
{
    const int64_t n = g->n;
    const int K = g->K;
    ann_ivf_flat_params ip;
    ann_ivf_flat_params_init(&ip);
    ip.metric = g->metric == ANN_METRIC_INNER_PRODUCT ? ANN_METRIC_INNER_PRODUCT
              : g->metric == ANN_METRIC_COSINE        ? ANN_METRIC_COSINE
              : g->metric == ANN_METRIC_L1            ? ANN_METRIC_L1
                                                      : ANN_METRIC_SQEUCLIDEAN;
    /*
     * About 32 x (K + 1) candidates per row, lists of about 128 rows: this
     * GEMM-bound search is cheap next to an NN-Descent iteration, and the
     * better the initial graph, the fewer iterations (measured on
     * Fashion-MNIST: 8 x gave recall 0.90 before the first iteration).
     */
    int64_t lists = n / 128;
    ip.n_lists = (int32_t)(lists < 1 ? 1 : lists > 65536 ? 65536 : lists);
    ip.kmeans_n_iters = 10;
    ip.kmeans_trainset_fraction = 0.25f;
    ann_ivf_flat_search_params sp;
    ann_ivf_flat_search_params_init(&sp);
    int64_t per_list = n / ip.n_lists;
    int64_t probes = (32 * (K + 1) + per_list - 1) / (per_list > 0 ? per_list : 1);
    sp.n_probes = (int32_t)(probes < 2 ? 2 : probes > ip.n_lists ? ip.n_lists : probes);
    sp.search_mode = ANN_IVF_SEARCH_CSR;

    ann_exec cex = *ex;
    cex.device = ANN_DEVICE_CPU;
    cex.progress = NULL;
    ann_index *ix = NULL;
    ann_status st = ann_index_build(ANN_ALGO_IVF_FLAT, &ip, data, &cex, &ix);
    if (st != ANN_OK)
        return st;
    const int64_t kk = K + 1;
    const int64_t batch = 8192;
    int64_t *ids = malloc((size_t)batch * kk * sizeof(int64_t));
    float *dist = malloc((size_t)batch * kk * sizeof(float));
    ann_ivf_flat_view view;
    if ((st = ann_index_ivf_view(ix, &view)) != ANN_OK)
        goto cleanup;
    /* rows grouped by cluster: joining them in this order keeps neighbours' vectors in cache */
    for (int64_t r = 0; r < n; r++)
        order[r] = (int32_t)view.list_ids[r];
    if (!ids || !dist) {
        st = ann_set_error(ANN_ERR_NOMEM, "nn_descent: out of memory for the initial graph");
        goto cleanup;
    }
    for (int64_t b0 = 0; b0 < n && st == ANN_OK; b0 += batch) {
        int64_t m = n - b0 < batch ? n - b0 : batch;
        ann_matrix q = *data;
        q.owner = NULL;
        q.data = (char *)data->data + b0 * data->stride;
        q.rows = m;
        st = ann_cpu_ivf_flat_search_ex(&view, &sp, &q, kk, ex->n_threads, false, ids, dist);
        if (st != ANN_OK)
            break;
#pragma omp parallel for num_threads(ann_threads(ex->n_threads)) schedule(static)
        for (int64_t r = 0; r < m; r++) {
            const int64_t i = b0 + r;
            int32_t *row = g->gid + i * K;
            float *rowd = g->gd + i * K;
            int c = 0;
            for (int64_t j = 0; j < kk && c < K; j++) {
                int64_t v = ids[r * kk + j];
                if (v < 0 || v == i)
                    continue;
                rowd[c] = ann_key(g->metric == ANN_METRIC_EUCLIDEAN ? ANN_METRIC_SQEUCLIDEAN : g->metric,
                                  dist[r * kk + j]);
                row[c++] = (int32_t)v;
            }
            top_up_row(g, i, c, ex->seed);
        }
    }
cleanup:
    free(ids);
    free(dist);
    ann_index_free(ix);
    return st;
}

/*
 * Initial graph for the GEMM metrics (sqeuclidean, inner_product, cosine):
 * an IVF self-join organised by list.  Balanced k-means (about
 * ROWS_PER_LIST rows per list, on a strided sample) gives every row a
 * list.  Each row then probes its own list and the P - 1 other lists whose
 * centres are nearest the row, chosen among the NEAR_LISTS centres nearest
 * its list's centre (so the coarse step costs NEAR_LISTS, not n_lists, dot
 * products per row); P makes about CAND_FACTOR x (K + 1) candidates per
 * row.  A list's rows are handled by one thread: for each probed list, the
 * rows probing it are compared with it in one GEMM block, and each row
 * keeps one heap of its K nearest (ties by id), so no per-probe partial
 * results are kept or merged.  Rows left short (tiny data) are topped up
 * with random distinct ids.
 * The rows of g->x and g->nrm are permuted in place into list order, and
 * from then on a row's id is its position: the join reads each list as
 * one block, and NN-Descent's joins, which mostly pair rows of nearby
 * lists, read nearby memory.  perm[p] receives the original row of
 * position p.  Fills g->gid/gd (rows sorted by (dist, id), in positions).
 * Threads: nt.  The L1 metric uses cluster_init (no GEMM form).
 */
enum { ROWS_PER_LIST = 128, CAND_FACTOR = 32, NEAR_LISTS = 48, JOIN_TQ = 256, KMEANS_ITERS = 5 };
#define KMEANS_TRAIN_FRACTION 0.25

/* Centre keys from dot products: smaller is nearer (centres of IP/cosine k-means are unit length). */
static inline float centre_key(ann_metric km, float cnorm, float dot)
{
    return km == ANN_METRIC_SQEUCLIDEAN ? cnorm - 2.0f * dot : -dot;
}

/* Reorder the rows of x (n x ld) and nrm (n, may be NULL) in place: row p becomes old row perm[p]. */
static ann_status permute_rows(float *x, float *nrm, int64_t n, int64_t ld, const int32_t *perm)
{
    uint8_t *done = calloc((size_t)n + 1, 1);
    float *tmp = malloc((size_t)ld * sizeof(float));
    if (!done || !tmp) {
        free(done);
        free(tmp);
        return ann_set_error(ANN_ERR_NOMEM, "nn_descent: out of memory");
    }
    for (int64_t r = 0; r < n; r++) { /* follow each cycle of perm once */
        if (done[r])
            continue;
        memcpy(tmp, x + r * ld, (size_t)ld * sizeof(float));
        const float tn = nrm ? nrm[r] : 0;
        int64_t cur = r;
        for (;;) {
            done[cur] = 1;
            const int64_t src = perm[cur];
            if (src == r)
                break;
            memcpy(x + cur * ld, x + src * ld, (size_t)ld * sizeof(float));
            if (nrm)
                nrm[cur] = nrm[src];
            cur = src;
        }
        memcpy(x + cur * ld, tmp, (size_t)ld * sizeof(float));
        if (nrm)
            nrm[cur] = tn;
    }
    free(done);
    free(tmp);
    return ANN_OK;
}

static ann_status join_init(nnd *g, int nt, uint64_t seed, int32_t *perm)
{
    const int64_t n = g->n, d = g->d, ld = g->ld;
    const int K = g->K;
    const int64_t rpl = ROWS_PER_LIST, cf = CAND_FACTOR, nearl = NEAR_LISTS;
    int64_t L = n / rpl;
    L = L < 1 ? 1 : L > 65536 ? 65536 : L;
    const int32_t nl = (int32_t)L;
    const ann_metric km = g->metric == ANN_METRIC_INNER_PRODUCT ? ANN_METRIC_INNER_PRODUCT
                        : g->metric == ANN_METRIC_COSINE        ? ANN_METRIC_COSINE
                                                                : ANN_METRIC_SQEUCLIDEAN;
    const int64_t per_list = n / nl; /* rpl, unless n_lists hit its cap */
    int64_t P = (cf * (K + 1) + per_list - 1) / per_list;
    P = P < 2 ? 2 : P > nl ? nl : P;
    int64_t NC = nearl > 2 * P ? nearl : 2 * P;
    NC = NC > nl ? nl : NC;
    ann_status st = ANN_OK;
    float *centers = malloc((size_t)nl * d * sizeof(float));
    float *cnorm = malloc((size_t)nl * sizeof(float));
    int32_t *labels = malloc((size_t)n * sizeof(int32_t) + 1);
    int64_t *off = calloc((size_t)nl + 1, sizeof(int64_t));
    float *pn = malloc((size_t)n * sizeof(float) + 1);
    int32_t *near = malloc((size_t)nl * NC * sizeof(int32_t));
    int32_t *lorder = malloc((size_t)nl * sizeof(int32_t));
    if (!centers || !cnorm || !labels || !off || !pn || !near || !lorder) {
        st = ann_set_error(ANN_ERR_NOMEM, "nn_descent: out of memory for the initial graph");
        goto cleanup;
    }
    /* 1. balanced k-means on a strided sample, then every row's list */
    {
        int64_t n_train = (int64_t)(KMEANS_TRAIN_FRACTION * (double)n);
        if (n_train < nl)
            n_train = nl;
        int64_t ratio = n / n_train > 1 ? n / n_train : 1;
        ann_matrix all = ann_matrix_view((void *)g->x, n, d, ANN_DTYPE_F32);
        all.stride = ld * (int64_t)sizeof(float);
        ann_matrix train = all;
        train.rows = n / ratio;
        train.stride = all.stride * ratio;
        ann_kmeans_params kp = {km, nl, KMEANS_ITERS, seed};
        if ((st = ann_cpu_kmeans_fit(&kp, &train, nt, centers)) != ANN_OK)
            goto cleanup;
        if ((st = ann_cpu_kmeans_predict(km, centers, nl, &all, nt, labels)) != ANN_OK)
            goto cleanup;
    }
    for (int32_t l = 0; l < nl; l++)
        cnorm[l] = ann_dot_f32(centers + (int64_t)l * d, centers + (int64_t)l * d, d);
    /* 2. rows packed by list (stable), in place, with their norms */
    for (int64_t i = 0; i < n; i++)
        off[labels[i] + 1]++;
    for (int32_t l = 0; l < nl; l++)
        off[l + 1] += off[l];
    {
        int64_t *pos = malloc((size_t)nl * sizeof(int64_t));
        if (!pos) {
            st = ann_set_error(ANN_ERR_NOMEM, "nn_descent: out of memory");
            goto cleanup;
        }
        memcpy(pos, off, (size_t)nl * sizeof(int64_t));
        for (int64_t i = 0; i < n; i++)
            perm[pos[labels[i]]++] = (int32_t)i;
        free(pos);
    }
    if ((st = permute_rows(g->x, g->nrm, n, ld, perm)) != ANN_OK)
        goto cleanup;
    const float *xp = g->x;
    for (int64_t r = 0; r < n; r++)
        pn[r] = g->nrm ? g->nrm[r] : 0;
    /* 3. the NC centres nearest each list's centre, itself first (blocks of CB centres: no n_lists^2 matrix) */
    {
        enum { CB = 64 };
        int failed = 0;
#pragma omp parallel num_threads(nt)
        {
            float *hk = malloc((size_t)NC * sizeof(float));
            int64_t *hi = malloc((size_t)NC * sizeof(int64_t));
            float *cc = malloc((size_t)CB * nl * sizeof(float));
            if (!hk || !hi || !cc)
                failed = 1;
#pragma omp for schedule(dynamic, 1)
            for (int32_t b0 = 0; b0 < nl; b0 += CB) {
                if (!hk || !hi || !cc)
                    continue;
                const int32_t nb = nl - b0 < CB ? nl - b0 : CB;
                /* fixed-order sums: the same bits in every thread's buffer */
                ann_dot_block_f32(centers + (int64_t)b0 * d, d, nb, centers, d, nl, d, cc, nl);
                for (int32_t l = b0; l < b0 + nb; l++) {
                    ann_topk h;
                    ann_topk_init(&h, hk, hi, (int)NC - 1);
                    const float *row = cc + (int64_t)(l - b0) * nl;
                    for (int32_t m = 0; m < nl; m++)
                        if (m != l)
                            ann_topk_push(&h, centre_key(km, cnorm[m], row[m]), m);
                    ann_topk_sort(&h);
                    near[(int64_t)l * NC] = l;
                    for (int j = 0; j < h.n; j++)
                        near[(int64_t)l * NC + 1 + j] = (int32_t)hi[j];
                }
            }
            free(hk);
            free(hi);
            free(cc);
        }
        if (failed) {
            st = ann_set_error(ANN_ERR_NOMEM, "nn_descent: out of memory");
            goto cleanup;
        }
    }
    /* biggest lists first, for dynamic scheduling (ties by list) */
    {
        ann_ranked *bys = malloc((size_t)nl * sizeof(ann_ranked));
        if (!bys) {
            st = ann_set_error(ANN_ERR_NOMEM, "nn_descent: out of memory");
            goto cleanup;
        }
        for (int32_t l = 0; l < nl; l++) {
            bys[l].key = -(double)(off[l + 1] - off[l]);
            bys[l].id = l;
        }
        qsort(bys, (size_t)nl, sizeof(ann_ranked), ann_ranked_cmp);
        for (int32_t l = 0; l < nl; l++)
            lorder[l] = (int32_t)bys[l].id;
        free(bys);
    }
    int64_t smax = 0;
    for (int32_t l = 0; l < nl; l++)
        smax = off[l + 1] - off[l] > smax ? off[l + 1] - off[l] : smax;
    /* 4. per list (one thread each): the rows' probes, one GEMM block per probed list, one heap per row */
    {
        int failed = 0;
#pragma omp parallel num_threads(nt)
        {
            const int64_t tq = JOIN_TQ;
            float *cbuf = calloc((size_t)NC * ld, sizeof(float));
            /* 64-byte aligned, like xp's rows in every thread: OpenBLAS's results depend (in the
               last bits) on the operands' alignment, and the graph must not depend on the thread */
            float *G = aligned_alloc(64, ((size_t)tq * (NC > smax ? NC : smax) * sizeof(float) + 64) & ~(size_t)63);
            float *qbuf = aligned_alloc(64, ((size_t)tq * ld * sizeof(float) + 64) & ~(size_t)63);
            int32_t *prb = malloc((size_t)tq * P * sizeof(int32_t)); /* local centre indexes */
            int32_t *cnt = malloc((size_t)(NC + 1) * sizeof(int32_t));
            int32_t *who = malloc((size_t)tq * P * sizeof(int32_t));
            float *hk = malloc((size_t)tq * K * sizeof(float));
            int64_t *hi = malloc((size_t)tq * K * sizeof(int64_t));
            ann_topk *heaps = malloc((size_t)tq * sizeof(ann_topk));
            float *pk = malloc((size_t)P * sizeof(float)); /* one row's probe keys */
            const bool ok = cbuf && G && qbuf && prb && cnt && who && hk && hi && heaps && pk;
            if (!ok)
                failed = 1;
#pragma omp for schedule(dynamic, 1)
            for (int32_t li = 0; li < nl; li++) {
                if (!ok)
                    continue;
                const int32_t l = lorder[li];
                const int32_t *nb = near + (int64_t)l * NC;
                for (int64_t c = 0; c < NC; c++)
                    memcpy(cbuf + c * ld, centers + (int64_t)nb[c] * d, (size_t)d * sizeof(float));
                for (int64_t t0 = off[l]; t0 < off[l + 1]; t0 += tq) {
                    const int64_t mq = off[l + 1] - t0 < tq ? off[l + 1] - t0 : tq;
                    /* coarse: own list first, then the P - 1 nearest other centres of nb */
                    ann_dot_block_f32(xp + t0 * ld, ld, mq, cbuf, ld, NC, ld, G, NC); /* any alignment, same bits */
                    for (int64_t a = 0; a < mq; a++) {
                        int32_t *pr = prb + a * P;
                        int np = 0;
                        pr[np++] = 0;
                        for (int32_t c = 1; c < NC; c++) {
                            float k = centre_key(km, cnorm[nb[c]], G[a * NC + c]);
                            if (np == P && k >= pk[np - 1])
                                continue;
                            int j = np < P ? np++ : np - 1;
                            while (j > 1 && pk[j - 1] > k) {
                                pk[j] = pk[j - 1];
                                pr[j] = pr[j - 1];
                                j--;
                            }
                            pk[j] = k;
                            pr[j] = c;
                        }
                        for (int j = np; j < P; j++)
                            pr[j] = -1;
                        ann_topk_init(&heaps[a], hk + a * K, hi + a * K, K);
                    }
                    /* rows probing each centre (counting sort) */
                    memset(cnt, 0, (size_t)(NC + 1) * sizeof(int32_t));
                    for (int64_t a = 0; a < mq * P; a++)
                        if (prb[a] >= 0)
                            cnt[prb[a] + 1]++;
                    for (int64_t c = 0; c < NC; c++)
                        cnt[c + 1] += cnt[c];
                    for (int64_t a = 0; a < mq; a++)
                        for (int64_t j = 0; j < P; j++)
                            if (prb[a * P + j] >= 0)
                                who[cnt[prb[a * P + j]]++] = (int32_t)a;
                    for (int64_t c = NC; c > 0; c--)
                        cnt[c] = cnt[c - 1];
                    cnt[0] = 0;
                    for (int64_t c = 0; c < NC; c++) {
                        const int64_t m = cnt[c + 1] - cnt[c];
                        const int32_t u = nb[c];
                        const int64_t u0 = off[u], sz = off[u + 1] - off[u];
                        if (m == 0 || sz == 0)
                            continue;
                        const int32_t *w = who + cnt[c];
                        const float *qa = xp + t0 * ld;
                        if (m < mq) {
                            for (int64_t a = 0; a < m; a++)
                                memcpy(qbuf + a * ld, xp + (t0 + w[a]) * ld, (size_t)ld * sizeof(float));
                            qa = qbuf;
                        }
                        if (d >= 256) /* in-place tiles beat the packed GEMM on long rows */
                            ann_dot_block_f32(qa, ld, m, xp + u0 * ld, ld, sz, ld, G, sz);
                        else
                            ann_gemm_abt(m, sz, d, qa, ld, xp + u0 * ld, ld, G, sz);
                        for (int64_t a = 0; a < m; a++) {
                            const int64_t qa_i = m < mq ? w[a] : a;
                            float *s = G + a * sz;
                            const float *cn = pn + u0;
                            if (g->metric == ANN_METRIC_COSINE) {
#pragma omp simd
                                for (int64_t j = 0; j < sz; j++)
                                    s[j] = cn[j] > 0 ? -s[j] / cn[j] : 0.0f;
                            } else if (g->metric == ANN_METRIC_INNER_PRODUCT) {
#pragma omp simd
                                for (int64_t j = 0; j < sz; j++)
                                    s[j] = -s[j];
                            } else {
#pragma omp simd
                                for (int64_t j = 0; j < sz; j++)
                                    s[j] = cn[j] - 2.0f * s[j];
                            }
                            ann_topk *h = &heaps[qa_i];
                            const int64_t self = t0 + qa_i;
                            float bound = ann_topk_bound(h);
                            for (int64_t j = 0; j < sz; j++)
                                if (s[j] <= bound && u0 + j != self) {
                                    ann_topk_push(h, s[j], u0 + j);
                                    bound = ann_topk_bound(h);
                                }
                        }
                    }
                    /* rows out: sorted, keys made whole */
                    for (int64_t a = 0; a < mq; a++) {
                        ann_topk *h = &heaps[a];
                        ann_topk_sort(h);
                        const int64_t i = t0 + a;
                        const float qn = pn[t0 + a];
                        int32_t *row = g->gid + i * K;
                        float *rowd = g->gd + i * K;
                        for (int c = 0; c < h->n; c++) {
                            row[c] = (int32_t)h->id[c];
                            float v = h->key[c];
                            if (g->metric == ANN_METRIC_COSINE) {
                                v = qn > 0 ? 1.0f + v / qn : 1.0f;
                                v = v > 4e-7f ? v : 0;
                            } else if (g->metric != ANN_METRIC_INNER_PRODUCT) {
                                v += qn;
                                v = v > 4e-7f * (qn + g->nrm[h->id[c]]) ? v : 0;
                            }
                            rowd[c] = v;
                        }
                        top_up_row(g, i, h->n, seed);
                    }
                }
            }
            free(cbuf);
            free(G);
            free(qbuf);
            free(prb);
            free(cnt);
            free(who);
            free(hk);
            free(hi);
            free(heaps);
            free(pk);
        }
        if (failed)
            st = ann_set_error(ANN_ERR_NOMEM, "nn_descent: out of memory for the initial graph");
    }
cleanup:
    free(centers);
    free(cnorm);
    free(labels);
    free(off);
    free(pn);
    free(near);
    free(lorder);
    return st;
}

/*
 * Whether row a already holds v, found by its distance: the row is sorted,
 * so a binary search finds where `dist` would go and only entries within
 * rounding of it are compared (a pair's distance from two different GEMMs
 * differs in the last bits).  Most join pairs are already neighbours;
 * dropping them here saves queuing, sorting and merging them.
 */
static bool in_row(const nnd *g, int64_t a, int32_t v, float dist)
{
    const float *d = g->gd + a * g->K;
    const int32_t *id = g->gid + a * g->K;
    if (g->K <= 128) { /* short rows: a branch-free vector scan of the ids beats the search */
        int hit = 0;
#pragma omp simd reduction(| : hit)
        for (int j = 0; j < g->K; j++)
            hit |= id[j] == v;
        return hit;
    }
    const float tol = 1e-4f * fabsf(dist) + 1e-30f;
    int lo = 0, hi = g->K;
    while (lo < hi) { /* first entry >= dist - tol */
        int mid = (lo + hi) / 2;
        if (d[mid] < dist - tol)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (int j = lo; j < g->K && d[j] <= dist + tol; j++)
        if (id[j] == v)
            return true;
    return false;
}

/* A proposal: insert `src` into row `dst` at distance `dist`. */
typedef struct prop {
    int32_t dst, src;
    float dist;
} prop;

typedef struct pbuf {
    prop *p;
    size_t n, cap;
} pbuf;

static int pbuf_push(pbuf *b, int32_t dst, int32_t src, float dist)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 4096;
        prop *p = realloc(b->p, cap * sizeof(prop));
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    b->p[b->n++] = (prop){dst, src, dist};
    return 0;
}

static int prop_cmp(const void *pa, const void *pb)
{
    const prop *a = pa, *b = pb;
    if (a->dist != b->dist)
        return a->dist < b->dist ? -1 : 1;
    return (a->src > b->src) - (a->src < b->src);
}

/* Merge sorted proposals p[0..m) into row t; returns the number inserted. */
static int merge_row(nnd *g, int64_t t, prop *p, int64_t m, int32_t *mid, float *md, uint8_t *mnew,
                     uint32_t *stamp, uint32_t epoch)
{
    const int K = g->K;
    int32_t *rid = g->gid + t * K;
    float *rd = g->gd + t * K;
    uint8_t *rn = g->gnew + t * K;
    int a = 0, out = 0, ins = 0;
    int64_t b = 0;
    /* stamp[v] == epoch: v is in the row or already taken from the proposals */
    for (int j = 0; j < K; j++)
        stamp[rid[j]] = epoch;
    while (out < K && (a < K || b < m)) {
        while (b < m && stamp[p[b].src] == epoch)
            b++;
        bool take_row;
        if (a >= K)
            take_row = false;
        else if (b >= m)
            take_row = true;
        else
            take_row = rd[a] < p[b].dist || (rd[a] == p[b].dist && rid[a] < p[b].src);
        if (take_row) {
            mid[out] = rid[a];
            md[out] = rd[a];
            mnew[out] = rn[a];
            a++;
        } else if (b < m) {
            mid[out] = p[b].src;
            md[out] = p[b].dist;
            mnew[out] = 1;
            stamp[p[b].src] = epoch;
            ins++;
            b++;
        } else {
            break;
        }
        out++;
    }
    if (ins) {
        memcpy(rid, mid, (size_t)K * sizeof(int32_t));
        memcpy(rd, md, (size_t)K * sizeof(float));
        memcpy(rn, mnew, (size_t)K);
    }
    return ins;
}

ann_status ann_cpu_nn_descent(const ann_nn_descent_params *p, const ann_matrix *data, ann_exec *ex,
                              uint32_t *out_ids, float *out_dist)
{
    const int64_t n = data->rows, d = data->cols;
    const int nt = ann_threads(ex->n_threads);
    int K = p->intermediate_graph_degree;
    if (K > n - 1)
        K = (int)(n - 1);
    /*
     * Samples per row and kind: sqrt(2 K), 8 to 32 (10 for K = 48, 16 for
     * K = 128).  The initial graph is already good, so smaller samples over
     * a few iterations reach a given recall sooner than the reference's 32.
     */
    const int s0 = (int)lround(sqrt(2.0 * K));
    const int S = s0 < 8 ? 8 : s0 > S_MAX ? S_MAX : s0;
    int deg = p->graph_degree < K ? p->graph_degree : K;
    const int64_t ld = (d + 15) / 16 * 16;
    nnd g = {n, d, ld, K, p->metric, NULL, NULL, NULL, NULL, NULL, NULL};
    ann_status st = ANN_OK;
    float *x = NULL, *nrm = NULL;
    int32_t *newf = NULL, *oldf = NULL, *revn = NULL, *revo = NULL;
    int32_t *nnew = NULL, *nold = NULL, *nrevn = NULL, *nrevo = NULL;
    int64_t *bstart = NULL;
    int32_t *order = NULL, *perm = NULL; /* join order of the rows; original row of each row id (NULL: itself) */
    prop *sorted = NULL;
    pbuf *bufs = NULL;

    if (p->metric == ANN_METRIC_HAMMING) {
        g.bits = data->stride == d ? data->data : NULL;
        if (!g.bits)
            return ann_set_error(ANN_ERR_UNSUPPORTED, "nn_descent: hamming needs contiguous u8/i8 rows");
    } else {
        x = aligned_alloc(64, ((size_t)n * ld * sizeof(float) + 64) & ~(size_t)63);
        if (!x)
            return ann_set_error(ANN_ERR_NOMEM, "nn_descent: out of memory for %lld x %lld floats",
                                 (long long)n, (long long)d);
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t i = 0; i < n; i++) {
            ann_row_to_f32(ann_matrix_row(data, i), data->dtype, d, x + i * ld);
            for (int64_t j = d; j < ld; j++)
                x[i * ld + j] = 0;
            if (p->dist_comp_dtype == ANN_DIST_COMP_FP16)
                for (int64_t j = 0; j < d; j++)
                    x[i * ld + j] = ann_f16_to_f32(ann_f32_to_f16(x[i * ld + j]));
        }
        g.x = x;
        if (p->metric != ANN_METRIC_INNER_PRODUCT && p->metric != ANN_METRIC_L1) {
            nrm = malloc((size_t)n * sizeof(float) + 1);
            if (!nrm) {
                st = ann_set_error(ANN_ERR_NOMEM, "nn_descent: out of memory");
                goto cleanup;
            }
            ann_row_norms(x, ANN_DTYPE_F32, n, d, ld * 4, p->metric == ANN_METRIC_COSINE, nrm, nt);
            g.nrm = nrm;
        }
    }
    g.gid = malloc((size_t)n * K * sizeof(int32_t) + 1);
    g.gd = malloc((size_t)n * K * sizeof(float) + 1);
    g.gnew = malloc((size_t)n * K + 1);
    newf = malloc((size_t)n * S * sizeof(int32_t) + 1);
    oldf = malloc((size_t)n * S * sizeof(int32_t) + 1);
    revn = malloc((size_t)n * S * sizeof(int32_t) + 1);
    revo = malloc((size_t)n * S * sizeof(int32_t) + 1);
    nnew = calloc((size_t)n, sizeof(int32_t));
    nold = calloc((size_t)n, sizeof(int32_t));
    nrevn = calloc((size_t)n, sizeof(int32_t));
    nrevo = calloc((size_t)n, sizeof(int32_t));
    bstart = malloc(((size_t)n + 1) * sizeof(int64_t));
    order = malloc((size_t)n * sizeof(int32_t) + 1);
    bufs = calloc((size_t)nt, sizeof(pbuf));
    if (!g.gid || !g.gd || !g.gnew || !newf || !oldf || !revn || !revo || !nnew || !nold || !nrevn || !nrevo ||
        !bstart || !order || !bufs) {
        st = ann_set_error(ANN_ERR_NOMEM, "nn_descent: out of memory for a %lld x %d graph", (long long)n, K);
        goto cleanup;
    }
    memset(g.gnew, 1, (size_t)n * K);
    for (int64_t i = 0; i < n; i++)
        order[i] = (int32_t)i;

    /* initial graph */
    if (p->metric == ANN_METRIC_HAMMING || n <= 4 * (int64_t)(K + 1)) {
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t i = 0; i < n; i++)
            random_row(&g, i, ex->seed);
    } else {
        if (p->metric == ANN_METRIC_L1) {
            st = cluster_init(&g, data, ex, order);
        } else if (!(perm = malloc((size_t)n * sizeof(int32_t)))) {
            st = ann_set_error(ANN_ERR_NOMEM, "nn_descent: out of memory");
        } else {
            st = join_init(&g, nt, ex->seed, perm); /* row ids are list positions from here on */
        }
        if (st != ANN_OK)
            goto cleanup;
    }

    const bool gemm = p->metric != ANN_METRIC_L1 && p->metric != ANN_METRIC_HAMMING;
    const double stop_below = (double)p->termination_threshold * (double)n * K;
    uint64_t rng = ex->seed ^ 0x5851f42d4c957f2dull;
    for (int32_t it = 0; it < p->max_iterations; it++) {
        if (ann_interrupted(ex)) {
            st = ann_set_error(ANN_ERR_INTERRUPTED, "interrupted");
            goto cleanup;
        }
        if (ex->progress)
            ex->progress(ex->progress_user, "nn_descent", it, p->max_iterations);
        /* 1. forward samples: up to S new entries (flagged old from now on) and S old ones */
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t i = 0; i < n; i++) {
            int nf = 0, of = 0;
            for (int j = 0; j < K; j++) {
                if (g.gnew[i * K + j]) {
                    if (nf < S) {
                        newf[i * S + nf++] = g.gid[i * K + j];
                        g.gnew[i * K + j] = 0;
                    }
                } else if (of < S) {
                    oldf[i * S + of++] = g.gid[i * K + j];
                }
            }
            nnew[i] = nf;
            nold[i] = of;
        }
        /* 2. reverse samples, capped at S per row by reservoir sampling (serial: repeatable) */
        memset(nrevn, 0, (size_t)n * sizeof(int32_t));
        memset(nrevo, 0, (size_t)n * sizeof(int32_t));
        {
            int32_t *seen_n = calloc((size_t)n, sizeof(int32_t)), *seen_o = calloc((size_t)n, sizeof(int32_t));
            if (!seen_n || !seen_o) {
                free(seen_n);
                free(seen_o);
                st = ann_set_error(ANN_ERR_NOMEM, "nn_descent: out of memory");
                goto cleanup;
            }
            for (int64_t u = 0; u < n; u++) {
                for (int32_t j = 0; j < nnew[u]; j++) {
                    int32_t v = newf[u * S + j];
                    int32_t c = seen_n[v]++;
                    if (c < S)
                        revn[(int64_t)v * S + c] = (int32_t)u;
                    else {
                        uint64_t r = splitmix(&rng) % (uint64_t)(c + 1);
                        if (r < (uint64_t)S)
                            revn[(int64_t)v * S + r] = (int32_t)u;
                    }
                }
                for (int j = 0; j < nold[u]; j++) {
                    int32_t v = oldf[u * S + j];
                    int32_t c = seen_o[v]++;
                    if (c < S)
                        revo[(int64_t)v * S + c] = (int32_t)u;
                    else {
                        uint64_t r = splitmix(&rng) % (uint64_t)(c + 1);
                        if (r < (uint64_t)S)
                            revo[(int64_t)v * S + r] = (int32_t)u;
                    }
                }
            }
            for (int64_t v = 0; v < n; v++) {
                nrevn[v] = seen_n[v] < S ? seen_n[v] : S;
                nrevo[v] = seen_o[v] < S ? seen_o[v] : S;
            }
            free(seen_n);
            free(seen_o);
        }
        /* 3. local joins, chunk by chunk; proposals merged deterministically after each chunk */
        int64_t updates = 0;
        for (int64_t c0 = 0; c0 < n; c0 += CHUNK) {
            const int64_t c1 = c0 + CHUNK < n ? c0 + CHUNK : n;
            int failed = 0;
#pragma omp parallel num_threads(nt)
            {
                int tid = 0;
#ifdef _OPENMP
                tid = omp_get_thread_num();
#endif
                pbuf *pb = &bufs[tid];
                pb->n = 0;
                int32_t ids[4 * S_MAX];
                float *G = malloc((size_t)4 * S * 4 * S * sizeof(float));
                if (!G)
                    failed = 1;
#pragma omp for schedule(dynamic, 16)
                for (int64_t pos = c0; pos < c1; pos++) {
                    const int64_t u = order[pos];
                    if (!G)
                        continue;
                    /* Nw = new fwd + new rev (dedup), then Od = old fwd + old rev minus Nw */
                    int m1 = 0, m = 0;
                    for (int pass = 0; pass < 4; pass++) {
                        const int32_t *src = pass == 0 ? newf + u * S : pass == 1 ? revn + u * S
                                           : pass == 2 ? oldf + u * S : revo + u * S;
                        int cnt = pass == 0 ? nnew[u] : pass == 1 ? nrevn[u] : pass == 2 ? nold[u] : nrevo[u];
                        for (int j = 0; j < cnt; j++) {
                            int32_t v = src[j];
                            bool dup = false;
                            for (int t = 0; t < m && !dup; t++)
                                dup = ids[t] == v;
                            if (!dup)
                                ids[m++] = v;
                        }
                        if (pass == 1)
                            m1 = m;
                    }
                    if (m1 == 0 || m < 2)
                        continue;
                    /* the pair loop reads each sample's graph row: fetch them while the GEMM runs */
                    for (int t = 0; t < m; t++) {
                        const char *rd = (const char *)(g.gd + (int64_t)ids[t] * K);
                        const char *ri = (const char *)(g.gid + (int64_t)ids[t] * K);
                        for (int64_t off = 0; off < (int64_t)K * 4; off += 64) {
                            __builtin_prefetch(rd + off);
                            __builtin_prefetch(ri + off);
                        }
                    }
                    if (gemm) {
                        const float *rp[4 * S_MAX];
                        for (int t = 0; t < m; t++)
                            rp[t] = g.x + (int64_t)ids[t] * ld;
                        ann_dot_pairs_f32(rp, m1, m, ld, G);
                    }
                    for (int a = 0; a < m1; a++) {
                        const int32_t ia = ids[a];
                        const float wa = g.gd[(int64_t)ia * K + K - 1];
                        for (int b = a + 1; b < m; b++) {
                            const int32_t ib = ids[b];
                            float dist = gemm ? dot_key(&g, ia, ib, G[a * m + b]) : direct_key(&g, ia, ib);
                            if (dist < wa && !in_row(&g, ia, ib, dist))
                                failed |= pbuf_push(pb, ia, ib, dist);
                            if (dist < g.gd[(int64_t)ib * K + K - 1] && !in_row(&g, ib, ia, dist))
                                failed |= pbuf_push(pb, ib, ia, dist);
                        }
                    }
                }
                free(G);
            }
            if (failed) {
                st = ann_set_error(ANN_ERR_NOMEM, "nn_descent: out of memory for join proposals");
                goto cleanup;
            }
            /* bucket proposals by target row */
            size_t total = 0;
            memset(bstart, 0, ((size_t)n + 1) * sizeof(int64_t));
            for (int t = 0; t < nt; t++) {
                total += bufs[t].n;
                for (size_t j = 0; j < bufs[t].n; j++)
                    bstart[bufs[t].p[j].dst + 1]++;
            }
            for (int64_t v = 0; v < n; v++)
                bstart[v + 1] += bstart[v];
            prop *ns = realloc(sorted, total * sizeof(prop) + 1);
            if (!ns) {
                st = ann_set_error(ANN_ERR_NOMEM, "nn_descent: out of memory for %zu proposals", total);
                goto cleanup;
            }
            sorted = ns;
            {
                int64_t *pos = malloc((size_t)n * sizeof(int64_t));
                if (!pos) {
                    st = ann_set_error(ANN_ERR_NOMEM, "nn_descent: out of memory");
                    goto cleanup;
                }
                memcpy(pos, bstart, (size_t)n * sizeof(int64_t));
                for (int t = 0; t < nt; t++)
                    for (size_t j = 0; j < bufs[t].n; j++)
                        sorted[pos[bufs[t].p[j].dst]++] = bufs[t].p[j];
                free(pos);
            }
#pragma omp parallel num_threads(nt) reduction(+ : updates)
            {
                int32_t *mid = malloc((size_t)K * sizeof(int32_t));
                float *md = malloc((size_t)K * sizeof(float));
                uint8_t *mn = malloc((size_t)K);
                uint32_t *stamp = calloc((size_t)n, sizeof(uint32_t));
                uint32_t epoch = 0;
#pragma omp for schedule(dynamic, 64)
                for (int64_t v = 0; v < n; v++) {
                    int64_t m = bstart[v + 1] - bstart[v];
                    if (m == 0 || !mid || !md || !mn || !stamp)
                        continue;
                    /* only proposals better than the row's worst can enter */
                    prop *pv = sorted + bstart[v];
                    const float worst = g.gd[v * K + K - 1];
                    int64_t keep = 0;
                    for (int64_t j = 0; j < m; j++)
                        if (pv[j].dist < worst)
                            pv[keep++] = pv[j];
                    if (keep == 0)
                        continue;
                    qsort(pv, (size_t)keep, sizeof(prop), prop_cmp);
                    updates += merge_row(&g, v, pv, keep, mid, md, mn, stamp, ++epoch);
                }
                free(mid);
                free(md);
                free(mn);
                free(stamp);
            }
        }
        if ((double)updates < stop_below)
            break;
    }
    if (ex->progress)
        ex->progress(ex->progress_user, "nn_descent", p->max_iterations, p->max_iterations);

    /* 4. output: the first deg entries of each (sorted) row, in original row ids, ties by original id */
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        const int64_t o = perm ? perm[i] : i;
        uint32_t *oid = out_ids + o * deg;
        float key[1024];
        for (int j = 0; j < deg; j++) {
            const int32_t v = g.gid[i * K + j];
            oid[j] = (uint32_t)(perm ? perm[v] : v);
            key[j] = g.gd[i * K + j];
            if (g.nrm && p->metric != ANN_METRIC_COSINE &&
                key[j] <= 4e-7f * (g.nrm[i] + g.nrm[v])) /* initial-graph rounding */
                key[j] = 0;
            /* rows are sorted by (key, row id): re-order runs of equal keys by original id */
            for (int t = j; perm && t > 0 && key[t - 1] == key[t] && oid[t - 1] > oid[t]; t--) {
                const uint32_t ti = oid[t];
                oid[t] = oid[t - 1];
                oid[t - 1] = ti;
                const float tk = key[t];
                key[t] = key[t - 1];
                key[t - 1] = tk;
            }
        }
        if (out_dist)
            for (int j = 0; j < deg; j++)
                out_dist[o * deg + j] = p->metric == ANN_METRIC_EUCLIDEAN     ? sqrtf(key[j])
                                      : p->metric == ANN_METRIC_INNER_PRODUCT ? -key[j]
                                                                              : key[j];
    }

cleanup:
    free(x);
    free(nrm);
    free(g.gid);
    free(g.gd);
    free(g.gnew);
    free(newf);
    free(oldf);
    free(revn);
    free(revo);
    free(nnew);
    free(nold);
    free(nrevn);
    free(nrevo);
    free(bstart);
    free(order);
    free(perm);
    free(sorted);
    if (bufs)
        for (int t = 0; t < nt; t++)
            free(bufs[t].p);
    free(bufs);
    return st;
}
