/*
 * cagra_extend.c - adding vectors to a CAGRA graph (cuVS cagra::extend;
 * notes/algorithms.md 6.5), on the CPU.
 *
 * The new rows are linked in chunks of at most a quarter of the rows the
 * graph already has (and 8192), so an index grows by a quarter at a time
 * and each new row finds its neighbours among rows that are already
 * linked, earlier chunks' new rows included (measured: chunks as large as
 * the graph lose 0.06 recall@10 at itopk 32 when the rows double; quarter
 * chunks match a graph built over all the rows).  For every new row:
 *  1. a CAGRA search of the current graph (the rows before the chunk) for
 *     min(2 x degree, rows) candidates, itopk_size max(4 x degree, 256);
 *  2. the rank-based detour count of ann_cagra_optimize (a): candidate j
 *     is a detour of every earlier candidate i whose graph row holds it;
 *     the degree candidates of smallest (detour count, rank) form the new
 *     row;
 *  3. reverse edges: the new row goes into the rows of its first
 *     degree / 2 neighbours, at position degree / 2, unless it is there
 *     already; the forward half of those rows stays, and of their tail
 *     half the entry with the most incoming edges drops (the last one on
 *     ties), so no row loses its only way in.
 * No row ever holds itself or a duplicate.
 */
#include <stdlib.h>
#include <string.h>

#include "cagra_internal.h"
#include "internal.h"

/*
 * Insert @p u at position deg / 2 of @p row (deg entries), unless
 * present.  The entry of the tail half with the most incoming edges
 * (@p indeg; the last one on ties) drops, so rows reached only through
 * this one stay reachable; the entries between shift right by one.
 */
static void insert_reverse(uint32_t *row, int32_t deg, uint32_t u, uint32_t *indeg)
{
    for (int32_t j = 0; j < deg; j++)
        if (row[j] == u)
            return;
    const int32_t at = deg / 2 < deg - 1 ? deg / 2 : deg - 1;
    int32_t drop = deg - 1;
    for (int32_t j = deg - 2; j >= at; j--)
        if (indeg[row[j]] > indeg[row[drop]])
            drop = j;
    indeg[row[drop]]--;
    memmove(row + at + 1, row + at, (size_t)(drop - at) * sizeof(uint32_t));
    row[at] = u;
    indeg[u]++;
}

/*
 * The row of new node @p u from its search candidates @p cand (K of them,
 * best first, -1 = empty): detour-count order over the current graph @p g,
 * then, if fewer than deg distinct candidates exist, the candidates'
 * own neighbours in order.  @p work holds K int32 + K bytes.
 */
static void new_row(const uint32_t *g, int32_t deg, const int64_t *cand, int64_t K, uint32_t u, int32_t *detour,
                    unsigned char *used, uint32_t *row)
{
    for (int64_t j = 0; j < K; j++) {
        detour[j] = cand[j] < 0 ? INT32_MAX : 0;
        used[j] = 0;
    }
    for (int64_t i = 0; i < K; i++) {
        if (cand[i] < 0)
            continue;
        const uint32_t *gi = g + (size_t)cand[i] * deg;
        for (int64_t j = i + 1; j < K; j++) {
            if (cand[j] < 0)
                continue;
            for (int32_t t = 0; t < deg; t++)
                if (gi[t] == (uint32_t)cand[j]) {
                    detour[j]++;
                    break;
                }
        }
    }
    int32_t n = 0;
    while (n < deg) {
        int64_t best = -1;
        for (int64_t j = 0; j < K; j++)
            if (!used[j] && detour[j] != INT32_MAX && (best < 0 || detour[j] < detour[best]))
                best = j;
        if (best < 0)
            break;
        used[best] = 1;
        bool dup = (uint32_t)cand[best] == u;
        for (int32_t t = 0; t < n && !dup; t++)
            dup = row[t] == (uint32_t)cand[best];
        if (!dup)
            row[n++] = (uint32_t)cand[best];
    }
    /* too few candidates (tiny graphs): two hops from the candidates */
    for (int64_t i = 0; i < K && n < deg; i++) {
        if (cand[i] < 0)
            continue;
        const uint32_t *gi = g + (size_t)cand[i] * deg;
        for (int32_t t = 0; t < deg && n < deg; t++) {
            bool dup = gi[t] == u;
            for (int32_t s = 0; s < n && !dup; s++)
                dup = row[s] == gi[t];
            if (!dup)
                row[n++] = gi[t];
        }
    }
    /* still short (fewer than deg + 1 rows reachable): lowest ids not yet taken */
    for (uint32_t v = 0; n < deg && v < u; v++) {
        bool dup = false;
        for (int32_t s = 0; s < n && !dup; s++)
            dup = row[s] == v;
        if (!dup)
            row[n++] = v;
    }
}

ann_status ann_cagra_extend_graph(const ann_cagra_view *base, int64_t n_new, ann_exec *ex, uint32_t *graph)
{
    const int32_t deg = base->graph_degree;
    const int64_t n0 = base->rows - n_new, total = base->rows;
    if (n0 <= deg)
        return ann_set_error(ANN_ERR_INVALID_ARG, "cagra extend: the index has %lld rows, not more than its degree %d",
                             (long long)n0, (int)deg);
    const ann_backend_ops *ops;
    ann_status st = ann_backend_select(ex, ANN_OP_CAGRA_SEARCH, base->dtype, base->metric, &ops);
    if (st != ANN_OK)
        return st;
    const int64_t max_chunk = 8192;
    const int64_t K_max = 2 * (int64_t)deg;
    int64_t *ids = malloc((size_t)max_chunk * K_max * sizeof(int64_t));
    float *dist = malloc((size_t)max_chunk * K_max * sizeof(float));
    if (!ids || !dist) {
        free(ids);
        free(dist);
        return ann_set_error(ANN_ERR_NOMEM, "cagra extend: out of memory for %lld candidates",
                             (long long)max_chunk * K_max);
    }
    ann_cagra_search_params sp;
    ann_cagra_search_params_init(&sp);
    sp.itopk_size = 4 * deg > 256 ? 4 * deg : 256;
    const size_t rb = (size_t)base->stride;
    uint32_t *indeg = calloc((size_t)total, sizeof(uint32_t));
    if (!indeg) {
        free(ids);
        free(dist);
        return ann_set_error(ANN_ERR_NOMEM, "cagra extend: out of memory");
    }
    for (int64_t i = 0; i < n0 * deg; i++)
        indeg[graph[i]]++;
    void *cache = NULL;
    int64_t cur = n0;
    while (cur < total && st == ANN_OK) {
        int64_t c = total - cur;
        if (c > (cur + 3) / 4)
            c = (cur + 3) / 4;
        if (c > max_chunk)
            c = max_chunk;
        const int64_t K = K_max < cur ? K_max : cur;
        ann_cagra_view v = *base;
        v.rows = cur;
        v.filter = NULL;
        v.filter_bits = 0;
        v.filter_kept = cur;
        v.graph = graph;
        v.device_cache = &cache;
        ann_matrix q = ann_matrix_view((char *)base->data + (size_t)cur * rb, c, base->dim, base->dtype);
        q.stride = (int64_t)rb;
        st = ops->cagra_search(&v, &sp, &q, K, ex->n_threads, ids, dist);
        /* the graph changes every chunk: a device copy would be stale */
        if (cache && ops->cache_free)
            ops->cache_free(cache);
        cache = NULL;
        if (st != ANN_OK)
            break;
        int failed = 0;
#pragma omp parallel num_threads(ann_threads(ex->n_threads))
        {
            int32_t *detour = malloc((size_t)K * sizeof(int32_t));
            unsigned char *used = malloc((size_t)K);
            if (!detour || !used)
                failed = 1;
#pragma omp for schedule(dynamic, 64)
            for (int64_t i = 0; i < c; i++)
                if (detour && used)
                    new_row(graph, deg, ids + i * K, K, (uint32_t)(cur + i), detour, used,
                            graph + (size_t)(cur + i) * deg);
            free(detour);
            free(used);
        }
        if (failed) {
            st = ann_set_error(ANN_ERR_NOMEM, "cagra extend: out of memory");
            break;
        }
        /* reverse edges, in row order (deterministic) */
        for (int64_t i = 0; i < c * deg; i++)
            indeg[graph[(size_t)cur * deg + i]]++;
        for (int64_t i = 0; i < c; i++) {
            const uint32_t u = (uint32_t)(cur + i);
            const uint32_t *row = graph + (size_t)u * deg;
            const int32_t half = deg / 2 > 0 ? deg / 2 : 1;
            for (int32_t t = 0; t < half; t++)
                if (row[t] < (uint32_t)cur)
                    insert_reverse(graph + (size_t)row[t] * deg, deg, u, indeg);
        }
        cur += c;
        if (ex->progress)
            ex->progress(ex->progress_user, "extend", cur - n0, n_new);
        if (ann_interrupted(ex))
            st = ann_set_error(ANN_ERR_INTERRUPTED, "interrupted");
    }
    free(ids);
    free(dist);
    free(indeg);
    return st;
}
