/*
 * ivf_flat_cpu.c - IVF-Flat search on the CPU (ann/ivf_flat.h;
 * notes/algorithms.md 2.3; the packed-list "csr" design of
 * seeds/torch-ivf.md).
 *
 * 1. Coarse: one GEMM of queries x centers per block of queries, the
 *    n_probes best lists per query (ordered), cut short by max_codes.
 * 2. Scan, either
 *    - matrix: one thread per query walks its lists with SIMD dot
 *      products and a bounded heap, or
 *    - csr: (query, probe) pairs are grouped by list; for each list the
 *      queries that probe it are gathered and one sgemm against the list's
 *      contiguous rows scores them all; each pair keeps its local top-k in
 *      its own slot (no locks), and each query then merges its slots.
 *    Rows whose source id fails the view's filter are never pushed.
 * 3. The k survivors are re-ranked with exact double distances and sorted
 *    by (distance, id), so both modes return the same distances.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_ops.h"
#include "internal.h"

enum { COARSE_BLOCK = 256, TILE_Q = 128, TILE_R = 1024 };

typedef struct scan_ctx {
    const ann_ivf_flat_view *ix;
    const float *qf;       /* nq x d */
    const float *qnorm;    /* |q| for cosine (unused otherwise) */
    int32_t np;            /* probes per query (after clamping) */
    const int32_t *probes; /* nq x np, best first */
    const int32_t *nprobe; /* probes actually scanned per query (max_codes) */
} scan_ctx;

/* Rows [r0, r0+m) of the packed data as f32 (converted into buf when needed). */
static const float *rows_f32(const ann_ivf_flat_view *ix, int64_t r0, int64_t m, float *buf)
{
    const size_t es = ann_dtype_size(ix->dtype);
    const char *base = (const char *)ix->data + (size_t)r0 * ix->dim * es;
    if (ix->dtype == ANN_DTYPE_F32)
        return (const float *)base;
    for (int64_t i = 0; i < m; i++)
        ann_row_to_f32(base + (size_t)i * ix->dim * es, ix->dtype, ix->dim, buf + i * ix->dim);
    return buf;
}

/* Turn dot products s[0..m) of query q against packed rows [r0, r0+m) into ranking keys. */
static void dots_to_keys(const ann_ivf_flat_view *ix, int64_t r0, int64_t m, float *s)
{
    const float *nrm = ix->data_norms ? ix->data_norms + r0 : NULL;
    switch (ix->metric) {
    case ANN_METRIC_SQEUCLIDEAN:
    case ANN_METRIC_EUCLIDEAN:
#pragma omp simd
        for (int64_t j = 0; j < m; j++)
            s[j] = nrm[j] - 2.0f * s[j];
        break;
    case ANN_METRIC_COSINE:
#pragma omp simd
        for (int64_t j = 0; j < m; j++)
            s[j] = nrm[j] > 0 ? -s[j] / nrm[j] : 0.0f;
        break;
    default:
#pragma omp simd
        for (int64_t j = 0; j < m; j++)
            s[j] = -s[j];
        break;
    }
}

/* Coarse search: probes (nq x np) best first and the per-query probe counts under max_codes. */
static ann_status coarse(const ann_ivf_flat_view *ix, const float *qf, int64_t nq, int32_t np, int64_t max_codes,
                         int nt, int32_t *probes, int32_t *nprobe)
{
    const int64_t d = ix->dim;
    const int32_t L = ix->n_lists;
    const bool l2 = ix->metric == ANN_METRIC_SQEUCLIDEAN || ix->metric == ANN_METRIC_EUCLIDEAN ||
                    ix->metric == ANN_METRIC_L1;
    int failed = 0;
#pragma omp parallel num_threads(nt)
    {
        float *s = malloc((size_t)COARSE_BLOCK * L * sizeof(float));
        float *hk = malloc((size_t)np * sizeof(float));
        int64_t *hi = malloc((size_t)np * sizeof(int64_t));
        if (!s || !hk || !hi)
            failed = 1;
#pragma omp for schedule(dynamic, 1)
        for (int64_t b = 0; b < nq; b += COARSE_BLOCK) {
            if (!s || !hk || !hi)
                continue;
            int64_t m = nq - b < COARSE_BLOCK ? nq - b : COARSE_BLOCK;
            ann_gemm_abt(m, L, d, qf + b * d, d, ix->centers, d, s, L);
            for (int64_t i = 0; i < m; i++) {
                ann_topk h;
                ann_topk_init(&h, hk, hi, np);
                const float *r = s + i * L;
                for (int32_t l = 0; l < L; l++) {
                    float key = l2 ? ix->center_norms[l] - 2.0f * r[l] : -r[l];
                    if (key < ann_topk_bound(&h) || h.n < np)
                        ann_topk_push(&h, key, l);
                }
                ann_topk_sort(&h);
                int32_t *pr = probes + (b + i) * np;
                int32_t cnt = 0;
                int64_t scanned = 0;
                for (int32_t j = 0; j < h.n; j++) {
                    pr[j] = (int32_t)hi[j];
                    if (max_codes <= 0 || scanned < max_codes) {
                        cnt++;
                        scanned += ix->list_offsets[hi[j] + 1] - ix->list_offsets[hi[j]];
                    }
                }
                nprobe[b + i] = cnt;
            }
        }
        free(s);
        free(hk);
        free(hi);
    }
    return failed ? ann_set_error(ANN_ERR_NOMEM, "ivf_flat: out of memory in coarse search") : ANN_OK;
}

/* matrix mode: each query scans its lists; best k keys into ck/ci (k per query), counts into cn. */
static ann_status scan_matrix(const scan_ctx *c, int64_t nq, int64_t k, int nt, float *ck, int64_t *ci,
                              int64_t *cr, int32_t *cn)
{
    const ann_ivf_flat_view *ix = c->ix;
    const int64_t d = ix->dim;
    int64_t max_list = 0;
    for (int32_t l = 0; l < ix->n_lists; l++) {
        int64_t sz = ix->list_offsets[l + 1] - ix->list_offsets[l];
        if (sz > max_list)
            max_list = sz;
    }
    int64_t chunk = max_list < TILE_R ? max_list : TILE_R;
    int failed = 0;
#pragma omp parallel num_threads(nt)
    {
        float *s = malloc((size_t)(chunk + 1) * sizeof(float));
        float *buf = ix->dtype == ANN_DTYPE_F32 ? NULL : malloc((size_t)(chunk + 1) * d * sizeof(float));
        if (!s || (ix->dtype != ANN_DTYPE_F32 && !buf))
            failed = 1;
#pragma omp for schedule(dynamic, 16)
        for (int64_t i = 0; i < nq; i++) {
            if (failed)
                continue;
            ann_topk h;
            ann_topk_init(&h, ck + i * k, ci + i * k, (int)k);
            h.aux = cr + i * k;
            const float *q = c->qf + i * d;
            for (int32_t p = 0; p < c->nprobe[i]; p++) {
                int32_t l = c->probes[i * c->np + p];
                for (int64_t r0 = ix->list_offsets[l]; r0 < ix->list_offsets[l + 1]; r0 += chunk) {
                    int64_t m = ix->list_offsets[l + 1] - r0 < chunk ? ix->list_offsets[l + 1] - r0 : chunk;
                    const float *x = rows_f32(ix, r0, m, buf);
                    if (ix->metric == ANN_METRIC_L1) {
                        for (int64_t j = 0; j < m; j++)
                            s[j] = ann_l1_f32(q, x + j * d, d);
                    } else {
                        ann_dot_rows_f32(q, x, m, d, d, s);
                        dots_to_keys(ix, r0, m, s);
                    }
                    float bound = ann_topk_bound(&h);
                    for (int64_t j = 0; j < m; j++)
                        if (s[j] <= bound && ann_ivf_keep(ix, ix->list_ids[r0 + j])) {
                            ann_topk_push_aux(&h, s[j], ix->list_ids[r0 + j], r0 + j);
                            bound = ann_topk_bound(&h);
                        }
                }
            }
            cn[i] = h.n;
        }
        free(s);
        free(buf);
    }
    return failed ? ann_set_error(ANN_ERR_NOMEM, "ivf_flat: out of memory in list scan") : ANN_OK;
}

/*
 * csr mode: pairs grouped by list, one GEMM per (list, query tile, row
 * tile).  Slot (query i, probe p) keeps its local best k in sk/si at
 * ((i * np) + p) * k, count in sn.  Then each query merges its slots into
 * ck/ci/cn.
 */
static ann_status scan_csr(const scan_ctx *c, int64_t nq, int64_t k, int nt, float *ck, int64_t *ci, int64_t *cr,
                          int32_t *cn)
{
    const ann_ivf_flat_view *ix = c->ix;
    const int64_t d = ix->dim;
    const int32_t L = ix->n_lists, np = c->np;
    ann_status st = ANN_OK;
    int64_t *start = calloc((size_t)L + 1, sizeof(int64_t));
    int64_t *pairs = malloc((size_t)nq * np * sizeof(int64_t) + 1); /* i * np + p */
    int32_t *order = malloc((size_t)L * sizeof(int32_t));
    float *sk = malloc((size_t)nq * np * k * sizeof(float) + 1);
    int64_t *si = malloc((size_t)nq * np * k * sizeof(int64_t) + 1);
    int64_t *sr = malloc((size_t)nq * np * k * sizeof(int64_t) + 1);
    int32_t *sn = calloc((size_t)nq * np + 1, sizeof(int32_t));
    if (!start || !pairs || !order || !sk || !si || !sr || !sn) {
        st = ann_set_error(ANN_ERR_NOMEM, "ivf_flat: out of memory for %lld x %d probe slots", (long long)nq,
                           (int)np);
        goto cleanup;
    }
    for (int64_t i = 0; i < nq; i++)
        for (int32_t p = 0; p < c->nprobe[i]; p++)
            start[c->probes[i * np + p] + 1]++;
    for (int32_t l = 0; l < L; l++)
        start[l + 1] += start[l];
    {
        int64_t *pos = malloc((size_t)L * sizeof(int64_t));
        if (!pos) {
            st = ann_set_error(ANN_ERR_NOMEM, "ivf_flat: out of memory");
            goto cleanup;
        }
        memcpy(pos, start, (size_t)L * sizeof(int64_t));
        for (int64_t i = 0; i < nq; i++)
            for (int32_t p = 0; p < c->nprobe[i]; p++)
                pairs[pos[c->probes[i * np + p]]++] = i * np + p;
        free(pos);
    }
    /* biggest work first, for dynamic scheduling */
    {
        int64_t *work = malloc((size_t)L * sizeof(int64_t));
        if (!work) {
            st = ann_set_error(ANN_ERR_NOMEM, "ivf_flat: out of memory");
            goto cleanup;
        }
        for (int32_t l = 0; l < L; l++) {
            order[l] = l;
            work[l] = (start[l + 1] - start[l]) * (ix->list_offsets[l + 1] - ix->list_offsets[l]);
        }
        /* insertion-free: simple heap-less sort by work, descending */
        for (int32_t a = 1; a < L; a++) {
            int32_t v = order[a];
            int32_t b = a - 1;
            while (b >= 0 && work[order[b]] < work[v]) {
                order[b + 1] = order[b];
                b--;
            }
            order[b + 1] = v;
        }
        free(work);
    }
    int failed = 0;
#pragma omp parallel num_threads(nt)
    {
        float *qs = malloc((size_t)TILE_Q * d * sizeof(float));
        float *s = malloc((size_t)TILE_Q * TILE_R * sizeof(float));
        float *buf = ix->dtype == ANN_DTYPE_F32 ? NULL : malloc((size_t)TILE_R * d * sizeof(float));
        ann_topk *heaps = malloc(TILE_Q * sizeof(ann_topk));
        if (!qs || !s || !heaps || (ix->dtype != ANN_DTYPE_F32 && !buf))
            failed = 1;
#pragma omp for schedule(dynamic, 1)
        for (int32_t oi = 0; oi < L; oi++) {
            if (failed)
                continue;
            const int32_t l = order[oi];
            const int64_t p0 = start[l], p1 = start[l + 1];
            const int64_t lr0 = ix->list_offsets[l], lr1 = ix->list_offsets[l + 1];
            for (int64_t t0 = p0; t0 < p1; t0 += TILE_Q) {
                const int64_t m = p1 - t0 < TILE_Q ? p1 - t0 : TILE_Q;
                for (int64_t a = 0; a < m; a++) {
                    int64_t slot = pairs[t0 + a];
                    memcpy(qs + a * d, c->qf + (slot / np) * d, (size_t)d * sizeof(float));
                    ann_topk_init(&heaps[a], sk + slot * k, si + slot * k, (int)k);
                    heaps[a].aux = sr + slot * k;
                }
                for (int64_t r0 = lr0; r0 < lr1; r0 += TILE_R) {
                    const int64_t nr = lr1 - r0 < TILE_R ? lr1 - r0 : TILE_R;
                    const float *x = rows_f32(ix, r0, nr, buf);
                    if (ix->metric == ANN_METRIC_L1) {
                        for (int64_t a = 0; a < m; a++)
                            for (int64_t j = 0; j < nr; j++)
                                s[a * nr + j] = ann_l1_f32(qs + a * d, x + j * d, d);
                    } else {
                        ann_gemm_abt(m, nr, d, qs, d, x, d, s, nr);
                    }
                    for (int64_t a = 0; a < m; a++) {
                        float *row = s + a * nr;
                        if (ix->metric != ANN_METRIC_L1)
                            dots_to_keys(ix, r0, nr, row);
                        ann_topk *h = &heaps[a];
                        float bound = ann_topk_bound(h);
                        for (int64_t j = 0; j < nr; j++)
                            if (row[j] <= bound && ann_ivf_keep(ix, ix->list_ids[r0 + j])) {
                                ann_topk_push_aux(h, row[j], ix->list_ids[r0 + j], r0 + j);
                                bound = ann_topk_bound(h);
                            }
                    }
                }
                for (int64_t a = 0; a < m; a++)
                    sn[pairs[t0 + a]] = heaps[a].n;
            }
        }
        free(qs);
        free(s);
        free(buf);
        free(heaps);
    }
    if (failed) {
        st = ann_set_error(ANN_ERR_NOMEM, "ivf_flat: out of memory for scan buffers");
        goto cleanup;
    }
    /* merge each query's slots */
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i = 0; i < nq; i++) {
        ann_topk h;
        ann_topk_init(&h, ck + i * k, ci + i * k, (int)k);
        h.aux = cr + i * k;
        for (int32_t p = 0; p < c->nprobe[i]; p++) {
            int64_t slot = i * np + p;
            for (int32_t j = 0; j < sn[slot]; j++)
                ann_topk_push_aux(&h, sk[slot * k + j], si[slot * k + j], sr[slot * k + j]);
        }
        cn[i] = h.n;
    }

cleanup:
    free(start);
    free(pairs);
    free(order);
    free(sk);
    free(si);
    free(sr);
    free(sn);
    return st;
}

ann_status ann_cpu_ivf_flat_search(const ann_ivf_flat_view *ix, const ann_ivf_flat_search_params *p,
                                   const ann_matrix *q, int64_t k, int n_threads, int64_t *ids, float *dist)
{
    return ann_cpu_ivf_flat_search_ex(ix, p, q, k, n_threads, true, ids, dist);
}

ann_status ann_cpu_ivf_flat_search_ex(const ann_ivf_flat_view *ix, const ann_ivf_flat_search_params *p,
                                      const ann_matrix *q, int64_t k, int n_threads, bool rerank, int64_t *ids,
                                      float *dist)
{
    const int64_t d = ix->dim;
    const int nt = ann_threads(n_threads);
    const int32_t np = p->n_probes < ix->n_lists ? p->n_probes : ix->n_lists;
    const int64_t nq_all = q->rows;
    /* bound the csr slot memory: batches of queries */
    int64_t batch = nq_all;
    const int64_t slot_bytes = (int64_t)np * k * 12 + 64;
    if (batch * slot_bytes > ((int64_t)256 << 20))
        batch = ((int64_t)256 << 20) / slot_bytes > 64 ? ((int64_t)256 << 20) / slot_bytes : 64;

    ann_status st = ANN_OK;
    float *qf = malloc((size_t)batch * d * sizeof(float) + 1);
    int32_t *probes = malloc((size_t)batch * np * sizeof(int32_t) + 1);
    int32_t *nprobe = malloc((size_t)batch * sizeof(int32_t) + 1);
    float *ck = malloc((size_t)batch * k * sizeof(float) + 1);
    int64_t *ci = malloc((size_t)batch * k * sizeof(int64_t) + 1);
    int64_t *cr = malloc((size_t)batch * k * sizeof(int64_t) + 1);
    int32_t *cn = malloc((size_t)batch * sizeof(int32_t) + 1);
    if (!qf || !probes || !nprobe || !ck || !ci || !cr || !cn) {
        st = ann_set_error(ANN_ERR_NOMEM, "ivf_flat: out of memory for a batch of %lld queries", (long long)batch);
        goto cleanup;
    }
    for (int64_t b0 = 0; b0 < nq_all && st == ANN_OK; b0 += batch) {
        const int64_t nq = nq_all - b0 < batch ? nq_all - b0 : batch;
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t i = 0; i < nq; i++)
            ann_row_to_f32(ann_matrix_row(q, b0 + i), q->dtype, d, qf + i * d);
        st = coarse(ix, qf, nq, np, p->max_codes, nt, probes, nprobe);
        if (st != ANN_OK)
            break;
        scan_ctx c = {ix, qf, NULL, np, probes, nprobe};
        int32_t mode = p->search_mode;
        if (mode == ANN_IVF_SEARCH_AUTO) {
            double avg_group = (double)nq * np / ix->n_lists;
            mode = avg_group >= 8.0 * ix->n_lists / 512.0 ? ANN_IVF_SEARCH_CSR : ANN_IVF_SEARCH_MATRIX;
        }
        st = mode == ANN_IVF_SEARCH_CSR ? scan_csr(&c, nq, k, nt, ck, ci, cr, cn)
                                        : scan_matrix(&c, nq, k, nt, ck, ci, cr, cn);
        if (st != ANN_OK)
            break;
        /* exact re-rank of the survivors; packed row -> source id */
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t i = 0; i < nq; i++) {
            ann_ranked cand[1024];
            ann_ranked *cv = k <= 1024 ? cand : malloc((size_t)k * sizeof(ann_ranked));
            int32_t m = cn[i];
            for (int32_t j = 0; j < m && cv; j++) {
                int64_t row = cr[i * k + j];
                double v;
                if (rerank) {
                    v = ann_exact_dist(ix->metric, qf + i * d,
                                       (const char *)ix->data + (size_t)row * d * ann_dtype_size(ix->dtype),
                                       ix->dtype, d);
                } else { /* the scan's key, in the returned convention */
                    float key = ck[i * k + j];
                    v = ix->metric == ANN_METRIC_INNER_PRODUCT ? -key
                      : ix->metric == ANN_METRIC_SQEUCLIDEAN || ix->metric == ANN_METRIC_EUCLIDEAN
                          ? fmax(0.0, (double)key + ann_dot_f32(qf + i * d, qf + i * d, d))
                      : ix->metric == ANN_METRIC_COSINE ? 1.0 + key / sqrt(fmax(1e-30, ann_dot_f32(qf + i * d, qf + i * d, d)))
                                                        : key;
                    if (ix->metric == ANN_METRIC_EUCLIDEAN)
                        v = sqrt(v);
                }
                cv[j].key = ix->metric == ANN_METRIC_INNER_PRODUCT ? -v : v;
                cv[j].id = ci[i * k + j];
            }
            if (!cv)
                m = 0;
            qsort(cv, (size_t)m, sizeof(ann_ranked), ann_ranked_cmp);
            int64_t *oid = ids + (b0 + i) * k;
            float *od = dist + (b0 + i) * k;
            for (int64_t j = 0; j < k; j++) {
                if (j < m) {
                    oid[j] = cv[j].id;
                    od[j] = (float)(ix->metric == ANN_METRIC_INNER_PRODUCT ? -cv[j].key : cv[j].key);
                } else {
                    oid[j] = -1;
                    od[j] = ann_metric_worst(ix->metric);
                }
            }
            if (cv != cand)
                free(cv);
        }
    }

cleanup:
    free(qf);
    free(probes);
    free(nprobe);
    free(ck);
    free(ci);
    free(cr);
    free(cn);
    return st;
}
