/*
 * types.c - element types, metrics, devices, matrices (allocation,
 * ownership, conversion) and IEEE binary16 conversion.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>

#include "ann/core.h"
#include "ann_config.h"
#include "matrix_owner.h"

/* ---------------------------- dtypes -------------------------------- */

size_t ann_dtype_size(ann_dtype t)
{
    switch (t) {
    case ANN_DTYPE_F32: return 4;
    case ANN_DTYPE_F16: return 2;
    case ANN_DTYPE_I8: return 1;
    case ANN_DTYPE_U8: return 1;
    case ANN_DTYPE_I32: return 4;
    case ANN_DTYPE_U32: return 4;
    case ANN_DTYPE_I64: return 8;
    case ANN_DTYPE_F64: return 8;
    }
    return 0;
}

static const struct { const char *name; ann_dtype t; } dtype_names[] = {
    {"f32", ANN_DTYPE_F32}, {"f16", ANN_DTYPE_F16}, {"i8", ANN_DTYPE_I8},  {"u8", ANN_DTYPE_U8},
    {"i32", ANN_DTYPE_I32}, {"u32", ANN_DTYPE_U32}, {"i64", ANN_DTYPE_I64}, {"f64", ANN_DTYPE_F64},
    {"float32", ANN_DTYPE_F32}, {"float", ANN_DTYPE_F32}, {"float16", ANN_DTYPE_F16},
    {"half", ANN_DTYPE_F16}, {"int8", ANN_DTYPE_I8}, {"uint8", ANN_DTYPE_U8},
    {"int32", ANN_DTYPE_I32}, {"uint32", ANN_DTYPE_U32}, {"int64", ANN_DTYPE_I64},
    {"float64", ANN_DTYPE_F64}, {"double", ANN_DTYPE_F64},
};

const char *ann_dtype_name(ann_dtype t)
{
    for (size_t i = 0; i < 8; i++)
        if (dtype_names[i].t == t)
            return dtype_names[i].name;
    return "?";
}

ann_status ann_dtype_parse(const char *name, ann_dtype *out)
{
    for (size_t i = 0; i < sizeof dtype_names / sizeof dtype_names[0]; i++)
        if (strcasecmp(name, dtype_names[i].name) == 0) {
            *out = dtype_names[i].t;
            return ANN_OK;
        }
    return ann_set_error(ANN_ERR_INVALID_ARG,
                         "unknown dtype '%s' (expected f32, f16, i8, u8, i32, u32, i64, f64)", name);
}

/* ---------------------------- metrics ------------------------------- */

static const struct { const char *name; ann_metric m; } metric_names[] = {
    {"sqeuclidean", ANN_METRIC_SQEUCLIDEAN}, {"euclidean", ANN_METRIC_EUCLIDEAN},
    {"inner_product", ANN_METRIC_INNER_PRODUCT}, {"cosine", ANN_METRIC_COSINE},
    {"l1", ANN_METRIC_L1}, {"hamming", ANN_METRIC_HAMMING},
    {"l2", ANN_METRIC_SQEUCLIDEAN}, {"ip", ANN_METRIC_INNER_PRODUCT},
    {"dot", ANN_METRIC_INNER_PRODUCT}, {"angular", ANN_METRIC_COSINE},
};

const char *ann_metric_name(ann_metric m)
{
    for (size_t i = 0; i < 6; i++)
        if (metric_names[i].m == m)
            return metric_names[i].name;
    return "?";
}

ann_status ann_metric_parse(const char *name, ann_metric *out)
{
    for (size_t i = 0; i < sizeof metric_names / sizeof metric_names[0]; i++)
        if (strcasecmp(name, metric_names[i].name) == 0) {
            *out = metric_names[i].m;
            return ANN_OK;
        }
    return ann_set_error(ANN_ERR_INVALID_ARG,
                         "unknown metric '%s' (expected sqeuclidean, euclidean, inner_product, "
                         "cosine, l1, hamming)", name);
}

bool ann_metric_larger_is_better(ann_metric m)
{
    return m == ANN_METRIC_INNER_PRODUCT;
}

float ann_metric_worst(ann_metric m)
{
    return ann_metric_larger_is_better(m) ? -INFINITY : INFINITY;
}

/* ---------------------------- devices ------------------------------- */

ann_status ann_device_parse(const char *name, ann_device *out)
{
    if (strcasecmp(name, "auto") == 0) *out = ANN_DEVICE_AUTO;
    else if (strcasecmp(name, "cpu") == 0) *out = ANN_DEVICE_CPU;
    else if (strcasecmp(name, "cuda") == 0 || strcasecmp(name, "gpu") == 0) *out = ANN_DEVICE_CUDA;
    else
        return ann_set_error(ANN_ERR_INVALID_ARG, "unknown device '%s' (expected auto, cpu, cuda)", name);
    return ANN_OK;
}

const char *ann_device_name(ann_device d)
{
    switch (d) {
    case ANN_DEVICE_AUTO: return "auto";
    case ANN_DEVICE_CPU: return "cpu";
    case ANN_DEVICE_CUDA: return "cuda";
    }
    return "?";
}

void ann_exec_init(ann_exec *ex)
{
    memset(ex, 0, sizeof *ex);
    ex->device = ANN_DEVICE_AUTO;
    ex->seed = 42;
    ex->used = ANN_DEVICE_CPU;
}

const char *ann_version(void)
{
    return ANN_VERSION;
}

/* ---------------------------- matrices ------------------------------ */

/* What an owning matrix's `owner` points to. */
typedef struct matrix_owner {
    int kind;        /* 1 heap, 2 mmap */
    void *base;
    size_t len;
} matrix_owner;

void *ann_aligned_calloc(size_t bytes)
{
    if (bytes == 0)
        bytes = 1;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded < bytes)
        return NULL;
    void *p = aligned_alloc(64, rounded);
    if (p)
        memset(p, 0, rounded);
    return p;
}

static ann_status adopt(ann_matrix *m, int kind, void *base, size_t len)
{
    matrix_owner *o = malloc(sizeof *o);
    if (!o)
        return ann_set_error(ANN_ERR_NOMEM, "out of memory");
    o->kind = kind;
    o->base = base;
    o->len = len;
    m->owner = o;
    return ANN_OK;
}

ann_status ann_matrix_adopt_heap(ann_matrix *m, void *ptr)
{
    return adopt(m, 1, ptr, 0);
}

ann_status ann_matrix_adopt_mmap(ann_matrix *m, void *map_base, size_t map_len)
{
    return adopt(m, 2, map_base, map_len);
}

ann_matrix ann_matrix_view(void *data, int64_t rows, int64_t cols, ann_dtype dtype)
{
    ann_matrix m = {data, rows, cols, cols * (int64_t)ann_dtype_size(dtype), dtype, ANN_LOC_HOST, NULL};
    return m;
}

ann_status ann_matrix_alloc(ann_matrix *out, int64_t rows, int64_t cols, ann_dtype dtype)
{
    memset(out, 0, sizeof *out);
    size_t es = ann_dtype_size(dtype);
    if (rows < 0 || cols < 0 || es == 0)
        return ann_set_error(ANN_ERR_INVALID_ARG, "matrix of %lld x %lld elements of dtype %d",
                             (long long)rows, (long long)cols, (int)dtype);
    if (cols > 0 && (uint64_t)rows > (SIZE_MAX / 2) / ((uint64_t)cols * es))
        return ann_set_error(ANN_ERR_NOMEM, "matrix of %lld x %lld is too large",
                             (long long)rows, (long long)cols);
    size_t bytes = (size_t)rows * (size_t)cols * es;
    void *p = ann_aligned_calloc(bytes);
    if (!p)
        return ann_set_error(ANN_ERR_NOMEM, "cannot allocate %zu bytes for a %lld x %lld matrix",
                             bytes, (long long)rows, (long long)cols);
    *out = ann_matrix_view(p, rows, cols, dtype);
    if (adopt(out, 1, p, bytes) != ANN_OK) {
        free(p);
        memset(out, 0, sizeof *out);
        return ANN_ERR_NOMEM;
    }
    return ANN_OK;
}

void ann_matrix_release(ann_matrix *m)
{
    if (!m)
        return;
    matrix_owner *o = m->owner;
    if (o) {
        if (o->kind == 1)
            free(o->base);
        else if (o->kind == 2)
            munmap(o->base, o->len);
        free(o);
    }
    memset(m, 0, sizeof *m);
}

/* ---------------------------- binary16 ------------------------------ */

float ann_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t ann_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) /* inf or NaN */
        return sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0);
    if (ax >= 0x477ff000u) /* rounds to >= 65520: overflow to inf */
        return sign | 0x7c00;
    if (ax < 0x38800000u) { /* subnormal half or zero */
        if (ax < 0x33000000u)
            return sign;
        uint32_t e = ax >> 23;
        uint32_t man = (ax & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e; /* 14 .. 24 */
        uint32_t half = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1)))
            half++;
        return sign | (uint16_t)half;
    }
    uint32_t half = ((ax >> 13) - ((127 - 15) << 10));
    uint32_t rem = ax & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1)))
        half++;
    return sign | (uint16_t)half;
}

/* --------------------------- conversion ----------------------------- */

static double load_elem(const void *row, int64_t j, ann_dtype t)
{
    switch (t) {
    case ANN_DTYPE_F32: return ((const float *)row)[j];
    case ANN_DTYPE_F16: return ann_f16_to_f32(((const uint16_t *)row)[j]);
    case ANN_DTYPE_I8: return ((const int8_t *)row)[j];
    case ANN_DTYPE_U8: return ((const uint8_t *)row)[j];
    case ANN_DTYPE_I32: return ((const int32_t *)row)[j];
    case ANN_DTYPE_U32: return ((const uint32_t *)row)[j];
    case ANN_DTYPE_I64: return (double)((const int64_t *)row)[j];
    case ANN_DTYPE_F64: return ((const double *)row)[j];
    }
    return 0;
}

static double sat(double v, double lo, double hi)
{
    if (isnan(v))
        return 0;
    v = nearbyint(v);
    return v < lo ? lo : v > hi ? hi : v;
}

static void store_elem(void *row, int64_t j, ann_dtype t, double v)
{
    switch (t) {
    case ANN_DTYPE_F32: ((float *)row)[j] = (float)v; break;
    case ANN_DTYPE_F16: ((uint16_t *)row)[j] = ann_f32_to_f16((float)v); break;
    case ANN_DTYPE_I8: ((int8_t *)row)[j] = (int8_t)sat(v, -128, 127); break;
    case ANN_DTYPE_U8: ((uint8_t *)row)[j] = (uint8_t)sat(v, 0, 255); break;
    case ANN_DTYPE_I32: ((int32_t *)row)[j] = (int32_t)sat(v, INT32_MIN, INT32_MAX); break;
    case ANN_DTYPE_U32: ((uint32_t *)row)[j] = (uint32_t)sat(v, 0, UINT32_MAX); break;
    case ANN_DTYPE_I64: ((int64_t *)row)[j] = (int64_t)sat(v, -9.2233720368547748e18, 9.2233720368547748e18); break;
    case ANN_DTYPE_F64: ((double *)row)[j] = v; break;
    }
}

ann_status ann_matrix_convert(const ann_matrix *src, ann_dtype to, ann_matrix *out)
{
    if (src->loc != ANN_LOC_HOST)
        return ann_set_error(ANN_ERR_INVALID_ARG, "ann_matrix_convert: source is not in host memory");
    ann_status st = ann_matrix_alloc(out, src->rows, src->cols, to);
    if (st != ANN_OK)
        return st;
    const int64_t rows = src->rows, cols = src->cols;
    if (src->dtype == to) {
        size_t rb = (size_t)cols * ann_dtype_size(to);
        for (int64_t i = 0; i < rows; i++)
            memcpy(ann_matrix_row(out, i), ann_matrix_row(src, i), rb);
        return ANN_OK;
    }
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < rows; i++) {
        const void *r = ann_matrix_row(src, i);
        void *w = ann_matrix_row(out, i);
        if (src->dtype == ANN_DTYPE_U8 && to == ANN_DTYPE_F32) {
            for (int64_t j = 0; j < cols; j++)
                ((float *)w)[j] = ((const uint8_t *)r)[j];
        } else {
            for (int64_t j = 0; j < cols; j++)
                store_elem(w, j, to, load_elem(r, j, src->dtype));
        }
    }
    return ANN_OK;
}

ann_status ann_matrix_normalize_rows(ann_matrix *m)
{
    if (m->dtype != ANN_DTYPE_F32 || m->loc != ANN_LOC_HOST)
        return ann_set_error(ANN_ERR_INVALID_ARG, "row normalisation needs an f32 host matrix (got %s)",
                             ann_dtype_name(m->dtype));
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < m->rows; i++) {
        float *r = ann_matrix_row(m, i);
        double s = 0;
        for (int64_t j = 0; j < m->cols; j++)
            s += (double)r[j] * r[j];
        if (s > 0) {
            float inv = (float)(1.0 / sqrt(s));
            for (int64_t j = 0; j < m->cols; j++)
                r[j] *= inv;
        }
    }
    return ANN_OK;
}
