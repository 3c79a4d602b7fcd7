/*
 * bf_cpu.c - exact kNN on the CPU (notes/algorithms.md section 1).
 *
 * Queries are cut into blocks of QB rows and, when there are too few
 * queries to keep every thread busy, the base set into slices.  Each
 * (query block, slice) work item walks its slice in blocks of BB rows:
 * one single-threaded sgemm gives the QB x BB dot products, from which a
 * ranking key (||x||^2 - 2 q.x for the L2 family, -q.x for inner product,
 * -q.x/|x| for cosine) is filtered against each query's current bound and
 * pushed into a bounded heap of k + 16 candidates.  Finally the candidates
 * of every slice are re-ranked with exact double-precision distances on
 * the original values and sorted by (distance, id), so that integer data
 * ranks exactly and the GEMM's rounding never decides the answer.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_ops.h"
#include "internal.h"

enum { QB = 256, BB = 512, RERANK_PAD = 16 };

static inline bool l2_family(ann_metric m)
{
    return m == ANN_METRIC_SQEUCLIDEAN || m == ANN_METRIC_EUCLIDEAN;
}

/*
 * Offer one query's row of a block to its heap: keys sc[j] (or, for the L2
 * family, ||x_j||^2 - 2 sc[j] from the raw dot products), 16 at a time
 * with a vectorised "any below the bound" test first, since after the
 * first blocks almost no candidate enters.
 */
static void scan_block(ann_topk *h, const float *sc, const float *nrm, int64_t bb, int64_t b0)
{
    float bound = ann_topk_bound(h);
    for (int64_t j = 0; j < bb; j += 16) {
        const int64_t e = j + 16 < bb ? j + 16 : bb;
        int any = 0;
        if (nrm) {
            for (int64_t t = j; t < e; t++)
                any |= nrm[t] - 2.0f * sc[t] < bound;
        } else {
            for (int64_t t = j; t < e; t++)
                any |= sc[t] < bound;
        }
        if (!any)
            continue;
        for (int64_t t = j; t < e; t++) {
            const float key = nrm ? nrm[t] - 2.0f * sc[t] : sc[t];
            if (key < bound) {
                ann_topk_push(h, key, b0 + t);
                bound = ann_topk_bound(h);
            }
        }
    }
}

/*
 * Fill scores (qb x bb, ld bb) for queries qf vs rows [b0, b0+bb): raw dot
 * products for the L2 family (scan_block adds the norms), ranking keys
 * otherwise.
 */
static void block_keys(const ann_bf_view *ix, const float *qf, int64_t qb, int64_t b0, int64_t bb,
                       float *xbuf, float *scores)
{
    const int64_t d = ix->dim;
    const float *xb;
    int64_t ldx = d;
    if (ix->dtype == ANN_DTYPE_F32) {
        xb = (const float *)((const char *)ix->data + b0 * ix->stride);
        ldx = ix->stride / 4;
    } else {
        for (int64_t j = 0; j < bb; j++)
            ann_row_to_f32((const char *)ix->data + (b0 + j) * ix->stride, ix->dtype, d, xbuf + j * d);
        xb = xbuf;
    }
    if (ix->metric == ANN_METRIC_L1) {
        for (int64_t i = 0; i < qb; i++)
            for (int64_t j = 0; j < bb; j++)
                scores[i * bb + j] = ann_l1_f32(qf + i * d, xb + j * ldx, d);
        return;
    }
    ann_gemm_abt(qb, bb, d, qf, d, xb, ldx, scores, bb);
    if (l2_family(ix->metric))
        return; /* the scan turns dots into ||x||^2 - 2 q.x itself (scan_block) */
    const float *nrm = ix->norms ? ix->norms + b0 : NULL;
    for (int64_t i = 0; i < qb; i++) {
        float *s = scores + i * bb;
        switch (ix->metric) {
        case ANN_METRIC_COSINE:
#pragma omp simd
            for (int64_t j = 0; j < bb; j++)
                s[j] = nrm[j] > 0 ? -s[j] / nrm[j] : 0.0f;
            break;
        default: /* inner product */
#pragma omp simd
            for (int64_t j = 0; j < bb; j++)
                s[j] = -s[j];
            break;
        }
    }
}

/* Bitwise hamming on u8/i8 rows: exact integer counts, a heap of k per query. */
static ann_status bf_hamming(const ann_bf_view *ix, const ann_matrix *q, int64_t k, int nt, int64_t *ids,
                             float *dist)
{
    const int64_t d = ix->dim, n = ix->rows;
    if (q->dtype != ANN_DTYPE_U8 && q->dtype != ANN_DTYPE_I8)
        return ann_set_error(ANN_ERR_UNSUPPORTED, "hamming: queries must be u8 or i8 (got %s)",
                             ann_dtype_name(q->dtype));
    int failed = 0;
#pragma omp parallel num_threads(nt)
    {
        float *hk = malloc((size_t)k * sizeof(float));
        int64_t *hi = malloc((size_t)k * sizeof(int64_t));
        if (!hk || !hi)
            failed = 1;
#pragma omp for schedule(dynamic, 4)
        for (int64_t i = 0; i < q->rows; i++) {
            if (!hk || !hi)
                continue;
            const uint8_t *a = ann_matrix_row(q, i);
            ann_topk h;
            ann_topk_init(&h, hk, hi, (int)k);
            for (int64_t r = 0; r < n; r++) {
                const uint8_t *b = (const uint8_t *)ix->data + r * ix->stride;
                int64_t c = 0, j = 0;
                for (; j + 8 <= d; j += 8) {
                    uint64_t x, y;
                    memcpy(&x, a + j, 8);
                    memcpy(&y, b + j, 8);
                    c += __builtin_popcountll(x ^ y);
                }
                for (; j < d; j++)
                    c += __builtin_popcount((unsigned)(a[j] ^ b[j]));
                if ((float)c <= ann_topk_bound(&h))
                    ann_topk_push(&h, (float)c, r);
            }
            ann_topk_sort(&h);
            for (int64_t j = 0; j < k; j++) {
                ids[i * k + j] = j < h.n ? hi[j] : -1;
                dist[i * k + j] = j < h.n ? hk[j] : INFINITY;
            }
        }
        free(hk);
        free(hi);
    }
    return failed ? ann_set_error(ANN_ERR_NOMEM, "brute force: out of memory") : ANN_OK;
}

ann_status ann_cpu_bf_search(const ann_bf_view *ix, const ann_matrix *q, int64_t k, int n_threads,
                             int64_t *ids, float *dist)
{
    if (ix->metric == ANN_METRIC_HAMMING)
        return bf_hamming(ix, q, k, ann_threads(n_threads), ids, dist);
    const int64_t nq = q->rows, d = ix->dim, n = ix->rows;
    const int nt = ann_threads(n_threads);
    const int64_t kk = k + RERANK_PAD < n ? k + RERANK_PAD : n;
    if ((ix->metric == ANN_METRIC_SQEUCLIDEAN || ix->metric == ANN_METRIC_EUCLIDEAN ||
         ix->metric == ANN_METRIC_COSINE) && !ix->norms)
        return ann_set_error(ANN_ERR_INTERNAL, "brute force: index has no norms");

    /* Enough query blocks for every thread, or else split the base set. */
    const int64_t n_qblocks = (nq + QB - 1) / QB;
    int64_t n_slices = n_qblocks >= 4 * nt ? 1 : nt;
    if (n_slices > (n + BB - 1) / BB)
        n_slices = (n + BB - 1) / BB;
    if (n_slices < 1)
        n_slices = 1;
    const int64_t slice_rows = (n + n_slices - 1) / n_slices;

    ann_status st = ANN_OK;
    float *qf = malloc((size_t)nq * d * sizeof(float) + 1);
    float *rkey = malloc((size_t)n_slices * nq * kk * sizeof(float) + 1);
    int64_t *rid = malloc((size_t)n_slices * nq * kk * sizeof(int64_t) + 1);
    int *rcount = calloc((size_t)n_slices * nq + 1, sizeof(int));
    if (!qf || !rkey || !rid || !rcount) {
        st = ann_set_error(ANN_ERR_NOMEM, "brute force: out of memory for %lld queries x %lld candidates",
                           (long long)nq, (long long)kk);
        goto cleanup;
    }
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i = 0; i < nq; i++)
        ann_row_to_f32(ann_matrix_row(q, i), q->dtype, d, qf + i * d);

    if (kk > 0) {
        int failed = 0;
#pragma omp parallel num_threads(nt)
        {
            float *scores = malloc((size_t)QB * BB * sizeof(float));
            float *xbuf = ix->dtype == ANN_DTYPE_F32 ? NULL : malloc((size_t)BB * d * sizeof(float));
            ann_topk *heaps = malloc(QB * sizeof(ann_topk));
            if (!scores || !heaps || (ix->dtype != ANN_DTYPE_F32 && !xbuf)) {
#pragma omp atomic write
                failed = 1;
            }
#pragma omp for schedule(dynamic, 1) collapse(2)
            for (int64_t qbi = 0; qbi < n_qblocks; qbi++) {
                for (int64_t s = 0; s < n_slices; s++) {
                    if (failed)
                        continue;
                    const int64_t q0 = qbi * QB, qb = nq - q0 < QB ? nq - q0 : QB;
                    const int64_t lo = s * slice_rows, hi = lo + slice_rows < n ? lo + slice_rows : n;
                    for (int64_t i = 0; i < qb; i++) {
                        size_t off = ((size_t)s * nq + q0 + i) * kk;
                        ann_topk_init(&heaps[i], rkey + off, rid + off, (int)kk);
                    }
                    for (int64_t b0 = lo; b0 < hi; b0 += BB) {
                        const int64_t bb = hi - b0 < BB ? hi - b0 : BB;
                        block_keys(ix, qf + q0 * d, qb, b0, bb, xbuf, scores);
                        const float *nrm = l2_family(ix->metric) ? ix->norms + b0 : NULL;
                        for (int64_t i = 0; i < qb; i++)
                            scan_block(&heaps[i], scores + i * bb, nrm, bb, b0);
                    }
                    for (int64_t i = 0; i < qb; i++)
                        rcount[(size_t)s * nq + q0 + i] = heaps[i].n;
                }
            }
            free(scores);
            free(xbuf);
            free(heaps);
        }
        if (failed) {
            st = ann_set_error(ANN_ERR_NOMEM, "brute force: out of memory for work buffers");
            goto cleanup;
        }
    }

    /* Exact re-rank of every slice's candidates, then the best k. */
    {
        int failed = 0;
#pragma omp parallel num_threads(nt)
        {
            ann_ranked *c = malloc((size_t)(n_slices * kk + 1) * sizeof(ann_ranked));
            if (!c) {
#pragma omp atomic write
                failed = 1;
            }
#pragma omp for schedule(static)
            for (int64_t i = 0; i < nq; i++) {
                if (!c)
                    continue;
                int64_t m = 0;
                double full_worst = -INFINITY; /* worst exact key among slices whose heap filled up */
                for (int64_t s = 0; s < n_slices; s++) {
                    size_t off = ((size_t)s * nq + i) * kk;
                    const int cnt = rcount[(size_t)s * nq + i];
                    for (int j = 0; j < cnt; j++) {
                        int64_t id = rid[off + j];
                        double v = ann_exact_dist(ix->metric, qf + i * d,
                                                  (const char *)ix->data + id * ix->stride, ix->dtype, d);
                        c[m].key = ix->metric == ANN_METRIC_INNER_PRODUCT ? -v : v;
                        c[m].id = id;
                        if (cnt == kk && kk < n && c[m].key > full_worst)
                            full_worst = c[m].key;
                        m++;
                    }
                }
                qsort(c, (size_t)m, sizeof(ann_ranked), ann_ranked_cmp);
                /*
                 * When a full slice's candidates all tie (to rounding) with the k-th
                 * best, more rows of that distance may have been left out by the
                 * GEMM's rounding: settle this query by an exact scan of every row.
                 */
                if (m >= k && full_worst > -INFINITY &&
                    full_worst <= c[k - 1].key + 1e-6 * fabs(c[k - 1].key) + 1e-30) {
                    ann_ranked *all = malloc((size_t)n * sizeof(ann_ranked));
                    if (all) {
                        for (int64_t r = 0; r < n; r++) {
                            double v = ann_exact_dist(ix->metric, qf + i * d,
                                                      (const char *)ix->data + r * ix->stride, ix->dtype, d);
                            all[r].key = ix->metric == ANN_METRIC_INNER_PRODUCT ? -v : v;
                            all[r].id = r;
                        }
                        qsort(all, (size_t)n, sizeof(ann_ranked), ann_ranked_cmp);
                        m = m < n ? m : n;
                        memcpy(c, all, (size_t)m * sizeof(ann_ranked));
                        free(all);
                    }
                }
                for (int64_t j = 0; j < k; j++) {
                    if (j < m) {
                        ids[i * k + j] = c[j].id;
                        dist[i * k + j] =
                            (float)(ix->metric == ANN_METRIC_INNER_PRODUCT ? -c[j].key : c[j].key);
                    } else {
                        ids[i * k + j] = -1;
                        dist[i * k + j] = ann_metric_worst(ix->metric);
                    }
                }
            }
            free(c);
        }
        if (failed)
            st = ann_set_error(ANN_ERR_NOMEM, "brute force: out of memory for re-ranking");
    }

cleanup:
    free(qf);
    free(rkey);
    free(rid);
    free(rcount);
    return st;
}
