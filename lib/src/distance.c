/*
 * distance.c - CPU distance kernels, row conversion, norms and the GEMM
 * wrapper.  The float kernels are compiled for AVX-512, AVX2 and a
 * baseline and picked at load time (gcc target_clones); `omp simd`
 * reductions let the compiler reassociate sums into vector lanes.
 */
#include <cblas.h>
#include <pthread.h>
#include <math.h>
#include <string.h>

#include "internal.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define ANN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define ANN_CLONES
#endif

ANN_CLONES float ann_dot_f32(const float *a, const float *b, int64_t d)
{
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < d; j++)
        s += a[j] * b[j];
    return s;
}

ANN_CLONES float ann_l2sq_f32(const float *a, const float *b, int64_t d)
{
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < d; j++) {
        float t = a[j] - b[j];
        s += t * t;
    }
    return s;
}

ANN_CLONES float ann_l1_f32(const float *a, const float *b, int64_t d)
{
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < d; j++)
        s += fabsf(a[j] - b[j]);
    return s;
}

ANN_CLONES void ann_dot_rows_f32(const float *q, const float *x, int64_t n, int64_t d, int64_t ld, float *out)
{
    int64_t i = 0;
    /* four rows at a time: the query is loaded once per four rows */
    for (; i + 4 <= n; i += 4) {
        const float *x0 = x + i * ld, *x1 = x0 + ld, *x2 = x1 + ld, *x3 = x2 + ld;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
        for (int64_t j = 0; j < d; j++) {
            s0 += q[j] * x0[j];
            s1 += q[j] * x1[j];
            s2 += q[j] * x2[j];
            s3 += q[j] * x3[j];
        }
        out[i] = s0;
        out[i + 1] = s1;
        out[i + 2] = s2;
        out[i + 3] = s3;
    }
    for (; i < n; i++) {
        float s = 0;
        const float *xi = x + i * ld;
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < d; j++)
            s += q[j] * xi[j];
        out[i] = s;
    }
}

/*
 * One 4 x 4 tile of dot products: out[i][j] = a_i . b_j (row stride 4 in
 * out).  Explicit 16-lane vectors (unaligned loads) and a fixed lane sum:
 * the order of the additions, hence every bit of the result, does not
 * depend on where the rows lie in memory, so a row pair gives the same
 * value from any buffer, thread or tile.
 */
typedef float ann_v16 __attribute__((vector_size(64)));

ANN_CLONES static void dot_tile_4x4(const float *a0, const float *a1, const float *a2, const float *a3,
                                    const float *b0, const float *b1, const float *b2, const float *b3, int64_t d,
                                    float *out)
{
    ann_v16 s[16] = {0};
    int64_t j = 0;
    for (; j + 16 <= d; j += 16) {
        ann_v16 x0, x1, x2, x3, y0, y1, y2, y3; /* unaligned loads */
        memcpy(&x0, a0 + j, 64), memcpy(&x1, a1 + j, 64), memcpy(&x2, a2 + j, 64), memcpy(&x3, a3 + j, 64);
        memcpy(&y0, b0 + j, 64), memcpy(&y1, b1 + j, 64), memcpy(&y2, b2 + j, 64), memcpy(&y3, b3 + j, 64);
        s[0] += x0 * y0, s[1] += x0 * y1, s[2] += x0 * y2, s[3] += x0 * y3;
        s[4] += x1 * y0, s[5] += x1 * y1, s[6] += x1 * y2, s[7] += x1 * y3;
        s[8] += x2 * y0, s[9] += x2 * y1, s[10] += x2 * y2, s[11] += x2 * y3;
        s[12] += x3 * y0, s[13] += x3 * y1, s[14] += x3 * y2, s[15] += x3 * y3;
    }
    if (j < d) { /* the last d % 16 elements, zero-padded */
        const size_t rb = (size_t)(d - j) * sizeof(float);
        ann_v16 x0 = {0}, x1 = {0}, x2 = {0}, x3 = {0}, y0 = {0}, y1 = {0}, y2 = {0}, y3 = {0};
        memcpy(&x0, a0 + j, rb), memcpy(&x1, a1 + j, rb), memcpy(&x2, a2 + j, rb), memcpy(&x3, a3 + j, rb);
        memcpy(&y0, b0 + j, rb), memcpy(&y1, b1 + j, rb), memcpy(&y2, b2 + j, rb), memcpy(&y3, b3 + j, rb);
        s[0] += x0 * y0, s[1] += x0 * y1, s[2] += x0 * y2, s[3] += x0 * y3;
        s[4] += x1 * y0, s[5] += x1 * y1, s[6] += x1 * y2, s[7] += x1 * y3;
        s[8] += x2 * y0, s[9] += x2 * y1, s[10] += x2 * y2, s[11] += x2 * y3;
        s[12] += x3 * y0, s[13] += x3 * y1, s[14] += x3 * y2, s[15] += x3 * y3;
    }
    /* transpose-and-add: four rounds of halving leave lane t holding the sum of s[t] */
    typedef int ann_i16 __attribute__((vector_size(64)));
    const ann_i16 l1 = {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23};
    const ann_i16 h1 = {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31};
    const ann_i16 l2 = {0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27};
    const ann_i16 h2 = {4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31};
    const ann_i16 l3 = {0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29};
    const ann_i16 h3 = {2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31};
    const ann_i16 l4 = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
    const ann_i16 h4 = {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31};
    ann_v16 u[8], w[4], x[2], r;
    for (int i = 0; i < 8; i++)
        u[i] = __builtin_shuffle(s[2 * i], s[2 * i + 1], l1) + __builtin_shuffle(s[2 * i], s[2 * i + 1], h1);
    for (int i = 0; i < 4; i++)
        w[i] = __builtin_shuffle(u[2 * i], u[2 * i + 1], l2) + __builtin_shuffle(u[2 * i], u[2 * i + 1], h2);
    for (int i = 0; i < 2; i++)
        x[i] = __builtin_shuffle(w[2 * i], w[2 * i + 1], l3) + __builtin_shuffle(w[2 * i], w[2 * i + 1], h3);
    r = __builtin_shuffle(x[0], x[1], l4) + __builtin_shuffle(x[0], x[1], h4);
    memcpy(out, &r, 64);
}

void ann_dot_block_f32(const float *a, int64_t lda, int64_t m, const float *b, int64_t ldb, int64_t n, int64_t d,
                       float *c, int64_t ldc)
{
    float t[16];
    for (int64_t i = 0; i < m; i += 4) {
        const float *a0 = a + i * lda;
        const float *a1 = i + 1 < m ? a0 + lda : a0, *a2 = i + 2 < m ? a0 + 2 * lda : a0;
        const float *a3 = i + 3 < m ? a0 + 3 * lda : a0;
        for (int64_t j = 0; j < n; j += 4) {
            const float *b0 = b + j * ldb;
            const float *b1 = j + 1 < n ? b0 + ldb : b0, *b2 = j + 2 < n ? b0 + 2 * ldb : b0;
            const float *b3 = j + 3 < n ? b0 + 3 * ldb : b0;
            dot_tile_4x4(a0, a1, a2, a3, b0, b1, b2, b3, d, t);
            for (int64_t x = 0; x < 4 && i + x < m; x++)
                for (int64_t y = 0; y < 4 && j + y < n; y++)
                    c[(i + x) * ldc + j + y] = t[x * 4 + y];
        }
    }
}

void ann_dot_pairs_f32(const float *const *rows, int m1, int m, int64_t d, float *g)
{
    const float *r[ANN_DOT_PAIRS_MAX + 4];
    const int mp = (m + 3) & ~3;
    for (int i = 0; i < mp; i++)
        r[i] = rows[i < m ? i : 0];
    float t[16];
    for (int a = 0; a < m1; a += 4)
        for (int b = a & ~3; b < mp; b += 4) {
            /* the tile's rows a..a+3 need columns b > a only: skip tiles wholly on or below the diagonal */
            if (b + 3 <= a)
                continue;
            dot_tile_4x4(r[a], r[a + 1], r[a + 2], r[a + 3], r[b], r[b + 1], r[b + 2], r[b + 3], d, t);
            for (int i = 0; i < 4 && a + i < m1; i++)
                for (int j = 0; j < 4 && b + j < m; j++)
                    g[(a + i) * m + b + j] = t[i * 4 + j];
        }
}

void ann_row_to_f32(const void *src, ann_dtype t, int64_t d, float *dst)
{
    switch (t) {
    case ANN_DTYPE_F32: memcpy(dst, src, (size_t)d * 4); break;
    case ANN_DTYPE_U8:
        for (int64_t j = 0; j < d; j++)
            dst[j] = ((const uint8_t *)src)[j];
        break;
    case ANN_DTYPE_I8:
        for (int64_t j = 0; j < d; j++)
            dst[j] = ((const int8_t *)src)[j];
        break;
    case ANN_DTYPE_F16:
        for (int64_t j = 0; j < d; j++)
            dst[j] = ann_f16_to_f32(((const uint16_t *)src)[j]);
        break;
    default:
        for (int64_t j = 0; j < d; j++)
            dst[j] = 0;
        break;
    }
}

static inline double elem(const void *x, ann_dtype t, int64_t j)
{
    switch (t) {
    case ANN_DTYPE_F32: return ((const float *)x)[j];
    case ANN_DTYPE_U8: return ((const uint8_t *)x)[j];
    case ANN_DTYPE_I8: return ((const int8_t *)x)[j];
    case ANN_DTYPE_F16: return ann_f16_to_f32(((const uint16_t *)x)[j]);
    default: return 0;
    }
}

ANN_CLONES double ann_exact_dist(ann_metric m, const float *q, const void *x, ann_dtype t, int64_t d)
{
    double s = 0, qq = 0, xx = 0;
    switch (m) {
    case ANN_METRIC_SQEUCLIDEAN:
    case ANN_METRIC_EUCLIDEAN:
        if (t == ANN_DTYPE_F32) {
            const float *xf = x;
#pragma omp simd reduction(+ : s)
            for (int64_t j = 0; j < d; j++) {
                double u = (double)q[j] - xf[j];
                s += u * u;
            }
        } else {
            for (int64_t j = 0; j < d; j++) {
                double u = (double)q[j] - elem(x, t, j);
                s += u * u;
            }
        }
        return m == ANN_METRIC_EUCLIDEAN ? sqrt(s) : s;
    case ANN_METRIC_INNER_PRODUCT:
        for (int64_t j = 0; j < d; j++)
            s += (double)q[j] * elem(x, t, j);
        return s;
    case ANN_METRIC_COSINE:
        for (int64_t j = 0; j < d; j++) {
            double v = elem(x, t, j);
            s += (double)q[j] * v;
            qq += (double)q[j] * q[j];
            xx += v * v;
        }
        return (qq > 0 && xx > 0) ? 1.0 - s / (sqrt(qq) * sqrt(xx)) : 1.0;
    case ANN_METRIC_L1:
        for (int64_t j = 0; j < d; j++)
            s += fabs((double)q[j] - elem(x, t, j));
        return s;
    case ANN_METRIC_HAMMING:
        break;
    }
    return 0;
}

void ann_row_norms(const void *data, ann_dtype t, int64_t rows, int64_t d, int64_t stride, bool norm_sqrt,
                   float *out, int n_threads)
{
#pragma omp parallel num_threads(ann_threads(n_threads))
    {
        float *buf = malloc((size_t)d * sizeof(float));
#pragma omp for schedule(static)
        for (int64_t i = 0; i < rows; i++) {
            const char *r = (const char *)data + i * stride;
            const float *f = (const float *)r;
            if (t != ANN_DTYPE_F32 && buf) {
                ann_row_to_f32(r, t, d, buf);
                f = buf;
            }
            double s = 0;
            for (int64_t j = 0; j < d; j++)
                s += (double)f[j] * f[j];
            out[i] = (float)(norm_sqrt ? sqrt(s) : s);
        }
        free(buf);
    }
}

/*
 * annkit parallelises over blocks itself and calls sgemm from inside its
 * OpenMP regions.  OpenBLAS's own threading must then be off: with it on,
 * concurrent calls contend for OpenBLAS's shared buffers and spin (small
 * searches ran 50-250x slower on 2 threads).  Set once, before any GEMM.
 */
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

static void blas_single_threaded(void)
{
    openblas_set_num_threads(1);
}

void ann_gemm_abt(int64_t m, int64_t n, int64_t kd, const float *a, int64_t lda, const float *b, int64_t ldb,
                  float *c, int64_t ldc)
{
    if (m <= 0 || n <= 0)
        return;
    pthread_once(&blas_once, blas_single_threaded);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)kd, 1.0f, a, (int)lda, b,
                (int)ldb, 0.0f, c, (int)ldc);
}
