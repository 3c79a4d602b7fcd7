/*
 * recall.c - recall@k by id intersection and by the ann-benchmarks
 * distance-threshold rule (notes/formats-and-anchors.md 3.3).
 */
#include <math.h>
#include <stdlib.h>

#include "ann/recall.h"
#include "internal.h"

static int64_t truth_id(const ann_matrix *t, int64_t i, int64_t j)
{
    const void *r = ann_matrix_row(t, i);
    switch (t->dtype) {
    case ANN_DTYPE_I32: return ((const int32_t *)r)[j];
    case ANN_DTYPE_U32: return ((const uint32_t *)r)[j];
    case ANN_DTYPE_I64: return ((const int64_t *)r)[j];
    case ANN_DTYPE_F32: return (int64_t)((const float *)r)[j];
    case ANN_DTYPE_F64: return (int64_t)((const double *)r)[j];
    default: return -1;
    }
}

static ann_status check_truth(const ann_matrix *truth, int64_t n, int64_t k)
{
    if (truth->rows < n)
        return ann_set_error(ANN_ERR_MISMATCH, "ground truth has %lld rows, fewer than the %lld queries",
                             (long long)truth->rows, (long long)n);
    if (truth->cols < k)
        return ann_set_error(ANN_ERR_MISMATCH, "ground truth has %lld neighbours per query, fewer than k = %lld",
                             (long long)truth->cols, (long long)k);
    return ANN_OK;
}

ann_status ann_recall_ids(const int64_t *found, int64_t n, int64_t k, const ann_matrix *truth, double *recall)
{
    ann_status st = check_truth(truth, n, k);
    if (st != ANN_OK)
        return st;
    int64_t hits = 0;
#pragma omp parallel for reduction(+ : hits) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        for (int64_t a = 0; a < k; a++) {
            int64_t id = found[i * k + a];
            if (id < 0)
                continue;
            bool dup = false;
            for (int64_t b = 0; b < a && !dup; b++)
                dup = found[i * k + b] == id;
            if (dup)
                continue;
            for (int64_t b = 0; b < k; b++)
                if (truth_id(truth, i, b) == id) {
                    hits++;
                    break;
                }
        }
    }
    *recall = n > 0 ? (double)hits / ((double)n * k) : 0.0;
    return ANN_OK;
}

/* ann-benchmarks distance: euclidean for the L2 family (and l1 as its own), 1 - cos for cosine and inner product. */
static double ab_dist(ann_metric m, const float *q, const void *x, ann_dtype t, int64_t d)
{
    switch (m) {
    case ANN_METRIC_COSINE:
    case ANN_METRIC_INNER_PRODUCT: return ann_exact_dist(ANN_METRIC_COSINE, q, x, t, d);
    case ANN_METRIC_L1: return ann_exact_dist(ANN_METRIC_L1, q, x, t, d);
    default: return ann_exact_dist(ANN_METRIC_EUCLIDEAN, q, x, t, d);
    }
}

ann_status ann_recall_threshold(const int64_t *found, int64_t n, int64_t k, const ann_matrix *truth,
                                const ann_matrix *data, const ann_matrix *queries, ann_metric metric,
                                double *recall)
{
    ann_status st = check_truth(truth, n, k);
    if (st != ANN_OK)
        return st;
    if (queries->rows < n || queries->cols != data->cols)
        return ann_set_error(ANN_ERR_MISMATCH, "queries (%lld x %lld) do not match the data (dim %lld)",
                             (long long)queries->rows, (long long)queries->cols, (long long)data->cols);
    const int64_t d = data->cols;
    int64_t hits = 0, bad = -1;
#pragma omp parallel reduction(+ : hits)
    {
        float *q = malloc((size_t)d * sizeof(float));
#pragma omp for schedule(static)
        for (int64_t i = 0; i < n; i++) {
            if (!q)
                continue;
            ann_row_to_f32(ann_matrix_row(queries, i), queries->dtype, d, q);
            int64_t tk = truth_id(truth, i, k - 1);
            if (tk < 0 || tk >= data->rows) {
#pragma omp critical
                bad = i;
                continue;
            }
            double thr = ab_dist(metric, q, ann_matrix_row(data, tk), data->dtype, d) + 1e-3;
            for (int64_t a = 0; a < k; a++) {
                int64_t id = found[i * k + a];
                if (id < 0 || id >= data->rows)
                    continue;
                if (ab_dist(metric, q, ann_matrix_row(data, id), data->dtype, d) <= thr)
                    hits++;
            }
        }
        free(q);
    }
    if (bad >= 0)
        return ann_set_error(ANN_ERR_INVALID_ARG, "ground truth row %lld names id %lld, outside the %lld data rows",
                             (long long)bad, (long long)truth_id(truth, bad, k - 1), (long long)data->rows);
    *recall = n > 0 ? (double)hits / ((double)n * k) : 0.0;
    return ANN_OK;
}
