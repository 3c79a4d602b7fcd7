/*
 * kmeans_cpu.c - balanced k-means on the CPU (notes/algorithms.md 0.6).
 *
 * build_clusters: labels start as i mod c, centers are the means of those
 * groups, then "balancing EM" iterations: before every iteration but the
 * first, clusters of at most avg x threshold points are pulled toward a
 * pseudo-random point of a large cluster (weight min(size, 7)); E-step
 * by GEMM + argmin, M-step by means; for inner_product and cosine the
 * centers are L2-normalised.  For more than 256 clusters the fit is
 * hierarchical: round(sqrt(c)) mesoclusters, fine clusters shared out in
 * proportion to mesocluster sizes and trained inside each, then a joint
 * fine-tuning of max(n_iters / 10, 2) iterations.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_ops.h"
#include "internal.h"

enum { ROW_BLOCK = 256, HIER_MIN_CLUSTERS = 257 };

static const int32_t primes[40] = {29,   71,   113,  173,  229,  281,  349,  409,  463,  541,
                                   601,  659,  733,  809,  863,  941,  1013, 1069, 1151, 1223,
                                   1291, 1373, 1451, 1511, 1583, 1657, 1733, 1811, 1889, 1987,
                                   2053, 2129, 2213, 2287, 2357, 2423, 2531, 2617, 2687, 2741};

static bool metric_normalises(ann_metric m)
{
    return m == ANN_METRIC_INNER_PRODUCT || m == ANN_METRIC_COSINE;
}

static void normalise_rows(float *c, int64_t rows, int64_t d)
{
    for (int64_t i = 0; i < rows; i++) {
        double s = 0;
        for (int64_t j = 0; j < d; j++)
            s += (double)c[i * d + j] * c[i * d + j];
        if (s > 0) {
            float inv = (float)(1.0 / sqrt(s));
            for (int64_t j = 0; j < d; j++)
                c[i * d + j] *= inv;
        }
    }
}

/*
 * Nearest center of each of n f32 rows x (row stride ldx floats): the
 * shared E-step.  L2 family: argmin ||c||^2 - 2 x.c; inner product and
 * cosine: argmax x.c (cosine centers are unit length).
 */
static ann_status assign_f32(ann_metric metric, const float *centers, int32_t c, int64_t d, const float *x,
                             int64_t n, int64_t ldx, int nt, int32_t *labels)
{
    bool l2 = !metric_normalises(metric);
    float *cn = malloc((size_t)c * sizeof(float) + 1);
    if (!cn)
        return ann_set_error(ANN_ERR_NOMEM, "k-means: out of memory");
    for (int32_t j = 0; j < c; j++)
        cn[j] = l2 ? ann_dot_f32(centers + (int64_t)j * d, centers + (int64_t)j * d, d) : 0.0f;
    int failed = 0;
#pragma omp parallel num_threads(nt)
    {
        float *s = malloc((size_t)ROW_BLOCK * c * sizeof(float));
        if (!s)
            failed = 1;
#pragma omp for schedule(dynamic, 1)
        for (int64_t b = 0; b < n; b += ROW_BLOCK) {
            if (!s)
                continue;
            int64_t m = n - b < ROW_BLOCK ? n - b : ROW_BLOCK;
            ann_gemm_abt(m, c, d, x + b * ldx, ldx, centers, d, s, c);
            for (int64_t i = 0; i < m; i++) {
                const float *r = s + i * c;
                int32_t best = 0;
                float bk = INFINITY;
                for (int32_t j = 0; j < c; j++) {
                    float key = l2 ? cn[j] - 2.0f * r[j] : -r[j];
                    if (key < bk) {
                        bk = key;
                        best = j;
                    }
                }
                labels[b + i] = best;
            }
        }
        free(s);
    }
    free(cn);
    return failed ? ann_set_error(ANN_ERR_NOMEM, "k-means: out of memory for distance blocks") : ANN_OK;
}

/* M-step: centers = means of their points (empty clusters keep their center); sizes out. */
static ann_status update_centers(const float *x, int64_t n, int64_t d, const int32_t *labels, int32_t c,
                                 float *centers, int64_t *sizes, int nt)
{
    int64_t *start = calloc((size_t)c + 1, sizeof(int64_t));
    int64_t *order = malloc((size_t)n * sizeof(int64_t) + 1);
    if (!start || !order) {
        free(start);
        free(order);
        return ann_set_error(ANN_ERR_NOMEM, "k-means: out of memory");
    }
    for (int64_t i = 0; i < n; i++)
        start[labels[i] + 1]++;
    for (int32_t j = 0; j < c; j++)
        start[j + 1] += start[j];
    {
        int64_t *pos = malloc((size_t)c * sizeof(int64_t) + 1);
        if (!pos) {
            free(start);
            free(order);
            return ann_set_error(ANN_ERR_NOMEM, "k-means: out of memory");
        }
        memcpy(pos, start, (size_t)c * sizeof(int64_t));
        for (int64_t i = 0; i < n; i++)
            order[pos[labels[i]]++] = i;
        free(pos);
    }
#pragma omp parallel num_threads(nt)
    {
        double *acc = malloc((size_t)d * sizeof(double));
#pragma omp for schedule(dynamic, 4)
        for (int32_t j = 0; j < c; j++) {
            int64_t cnt = start[j + 1] - start[j];
            sizes[j] = cnt;
            if (cnt == 0 || !acc)
                continue;
            memset(acc, 0, (size_t)d * sizeof(double));
            for (int64_t p = start[j]; p < start[j + 1]; p++) {
                const float *r = x + order[p] * d;
                for (int64_t t = 0; t < d; t++)
                    acc[t] += r[t];
            }
            for (int64_t t = 0; t < d; t++)
                centers[(int64_t)j * d + t] = (float)(acc[t] / (double)cnt);
        }
        free(acc);
    }
    free(start);
    free(order);
    return ANN_OK;
}

/* Pull clusters of <= avg*thr points toward points of large clusters; true if any moved. */
static bool adjust_centers(const float *x, int64_t n, int64_t d, const int32_t *labels, int32_t c,
                           float *centers, const int64_t *sizes, float thr, int32_t prime, uint64_t *counter)
{
    double avg = (double)n / c;
    bool moved = false;
    for (int32_t l = 0; l < c; l++) {
        if ((double)sizes[l] > avg * thr)
            continue;
        int64_t i = -1;
        for (int64_t tries = 0; tries < n; tries++) {
            int64_t cand = (int64_t)(((uint64_t)prime * ++*counter) % (uint64_t)n);
            if ((double)sizes[labels[cand]] >= avg) {
                i = cand;
                break;
            }
        }
        if (i < 0)
            continue;
        float wc = (float)(sizes[l] < 7 ? sizes[l] : 7);
        float *ct = centers + (int64_t)l * d;
        const float *xi = x + i * d;
        for (int64_t t = 0; t < d; t++)
            ct[t] = (wc * ct[t] + xi[t]) / (wc + 1.0f);
        moved = true;
    }
    return moved;
}

typedef struct em_ctx {
    ann_metric metric;
    int nt;
    int32_t prime;
    uint64_t counter;
} em_ctx;

/* Balancing EM iterations from the current centers; labels and sizes are outputs. */
static ann_status balancing_em(em_ctx *e, const float *x, int64_t n, int64_t d, int32_t c, int32_t iters,
                               int pullback, float thr, float *centers, int32_t *labels, int64_t *sizes)
{
    int adjustments = 0;
    const int32_t max_iters = 3 * iters + 2;
    for (int32_t it = 0; it < iters && it < max_iters; it++) {
        if (it > 0 && adjust_centers(x, n, d, labels, c, centers, sizes, thr, e->prime, &e->counter)) {
            if (adjustments % pullback == 0)
                iters++;
            adjustments++;
        }
        if (metric_normalises(e->metric))
            normalise_rows(centers, c, d);
        ann_status st = assign_f32(e->metric, centers, c, d, x, n, d, e->nt, labels);
        if (st == ANN_OK)
            st = update_centers(x, n, d, labels, c, centers, sizes, e->nt);
        if (st != ANN_OK)
            return st;
    }
    if (metric_normalises(e->metric))
        normalise_rows(centers, c, d);
    return ANN_OK;
}

/* build_clusters: init labels i mod c, centers = group means, then balancing EM (pullback 2, thr 0.25). */
static ann_status build_clusters(em_ctx *e, const float *x, int64_t n, int64_t d, int32_t c, int32_t iters,
                                 float *centers, int32_t *labels, int64_t *sizes)
{
    for (int64_t i = 0; i < n; i++)
        labels[i] = (int32_t)(i % c);
    for (int32_t j = 0; j < c; j++) /* a center for clusters that get no point */
        memcpy(centers + (int64_t)j * d, x + (int64_t)(j % n) * d, (size_t)d * sizeof(float));
    ann_status st = update_centers(x, n, d, labels, c, centers, sizes, e->nt);
    if (st != ANN_OK)
        return st;
    return balancing_em(e, x, n, d, c, iters, 2, 0.25f, centers, labels, sizes);
}

ann_status ann_cpu_kmeans_fit(const ann_kmeans_params *p, const ann_matrix *train, int n_threads,
                              float *centers)
{
    const int64_t n = train->rows, d = train->cols;
    const int32_t c = p->n_clusters;
    if (c < 1 || n < c)
        return ann_set_error(ANN_ERR_INVALID_ARG, "k-means: %lld training rows for %d clusters",
                             (long long)n, (int)c);
    em_ctx e = {p->metric, ann_threads(n_threads), 0, 0};
    int pi = (int)(p->seed % 40);
    for (int t = 0; t < 40 && n % primes[pi] == 0; t++)
        pi = (pi + 1) % 40;
    e.prime = primes[pi];

    ann_status st = ANN_OK;
    float *x = malloc((size_t)n * d * sizeof(float) + 1);
    int32_t *labels = malloc((size_t)n * sizeof(int32_t) + 1);
    int64_t *sizes = calloc((size_t)c + 1, sizeof(int64_t));
    float *sub = NULL;
    int32_t *sub_labels = NULL;
    int64_t *sub_sizes = NULL, *meso_sizes = NULL;
    float *meso = NULL;
    if (!x || !labels || !sizes) {
        st = ann_set_error(ANN_ERR_NOMEM, "k-means: out of memory for %lld x %lld training rows",
                           (long long)n, (long long)d);
        goto cleanup;
    }
#pragma omp parallel for num_threads(e.nt) schedule(static)
    for (int64_t i = 0; i < n; i++)
        ann_row_to_f32(ann_matrix_row(train, i), train->dtype, d, x + i * d);

    if (c < HIER_MIN_CLUSTERS) {
        st = build_clusters(&e, x, n, d, c, p->n_iters, centers, labels, sizes);
        goto cleanup;
    }

    /* Hierarchical: mesoclusters first. */
    int32_t n_meso = (int32_t)lround(sqrt((double)c));
    meso = malloc((size_t)n_meso * d * sizeof(float));
    meso_sizes = calloc((size_t)n_meso, sizeof(int64_t));
    sub = malloc((size_t)n * d * sizeof(float) + 1);
    sub_labels = malloc((size_t)n * sizeof(int32_t) + 1);
    sub_sizes = calloc((size_t)c + 1, sizeof(int64_t));
    if (!meso || !meso_sizes || !sub || !sub_labels || !sub_sizes) {
        st = ann_set_error(ANN_ERR_NOMEM, "k-means: out of memory");
        goto cleanup;
    }
    st = build_clusters(&e, x, n, d, n_meso, p->n_iters, meso, labels, meso_sizes);
    if (st != ANN_OK)
        goto cleanup;
    {
        int64_t rem_lists = c, rem_rows = n, done = 0;
        const int64_t cap = (2 * n + n_meso - 1) / n_meso;
        for (int32_t m = 0; m < n_meso; m++) {
            int64_t nf;
            if (m == n_meso - 1)
                nf = rem_lists;
            else if (meso_sizes[m] == 0)
                nf = 0;
            else {
                nf = llround((double)rem_lists * meso_sizes[m] / (double)rem_rows);
                if (nf < 1)
                    nf = 1;
                if (nf > rem_lists - (n_meso - 1 - m) && rem_lists > n_meso - 1 - m)
                    nf = rem_lists - (n_meso - 1 - m) > 0 ? rem_lists - (n_meso - 1 - m) : 0;
            }
            rem_lists -= nf;
            rem_rows -= meso_sizes[m];
            if (nf <= 0)
                continue;
            int64_t ni = 0;
            for (int64_t i = 0; i < n && ni < cap; i++)
                if (labels[i] == m)
                    memcpy(sub + (ni++) * d, x + i * d, (size_t)d * sizeof(float));
            if (ni == 0) { /* an empty mesocluster with lists to place: seed from any rows */
                for (; ni < nf && ni < n; ni++)
                    memcpy(sub + ni * d, x + ((ni * 7919) % n) * d, (size_t)d * sizeof(float));
            }
            st = build_clusters(&e, sub, ni, d, (int32_t)nf, p->n_iters, centers + done * d, sub_labels,
                                sub_sizes);
            if (st != ANN_OK)
                goto cleanup;
            done += nf;
        }
    }
    /* Joint fine-tuning from the concatenated centers. */
    st = assign_f32(e.metric, centers, c, d, x, n, d, e.nt, labels);
    if (st == ANN_OK)
        st = update_centers(x, n, d, labels, c, centers, sizes, e.nt);
    if (st == ANN_OK) {
        int32_t ft = p->n_iters / 10 > 2 ? p->n_iters / 10 : 2;
        st = balancing_em(&e, x, n, d, c, ft, 5, 0.2f, centers, labels, sizes);
    }

cleanup:
    free(x);
    free(labels);
    free(sizes);
    free(sub);
    free(sub_labels);
    free(sub_sizes);
    free(meso);
    free(meso_sizes);
    return st;
}

ann_status ann_cpu_kmeans_predict(ann_metric metric, const float *centers, int32_t n_clusters,
                                  const ann_matrix *x, int n_threads, int32_t *labels)
{
    const int64_t n = x->rows, d = x->cols;
    const int nt = ann_threads(n_threads);
    if (x->dtype == ANN_DTYPE_F32 && x->stride % 4 == 0)
        return assign_f32(metric, centers, n_clusters, d, x->data, n, x->stride / 4, nt, labels);
    /* convert in chunks to bound memory */
    const int64_t chunk = 65536;
    float *buf = malloc((size_t)(n < chunk ? n : chunk) * d * sizeof(float) + 1);
    if (!buf)
        return ann_set_error(ANN_ERR_NOMEM, "k-means predict: out of memory");
    ann_status st = ANN_OK;
    for (int64_t b = 0; b < n && st == ANN_OK; b += chunk) {
        int64_t m = n - b < chunk ? n - b : chunk;
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t i = 0; i < m; i++)
            ann_row_to_f32(ann_matrix_row(x, b + i), x->dtype, d, buf + i * d);
        st = assign_f32(metric, centers, n_clusters, d, buf, m, d, nt, labels + b);
    }
    free(buf);
    return st;
}
