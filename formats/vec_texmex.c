/*
 * vec_texmex.c - the INRIA TEXMEX formats of the SIFT1M / GIST1M / BIGANN
 * corpora (http://corpus-texmex.irisa.fr/): .fvecs (float32), .ivecs
 * (int32) and .bvecs (uint8).
 *
 * Layout (formats/vectors.md "texmex"): no file header; each record is an
 * int32 LE dimension d followed by d little-endian elements.  Every record
 * of a file must have the same d, so the row count is file size / (4 +
 * d x element size); a size that is not a multiple, or any record whose
 * dimension differs from the first, is an error that names the record.
 * Rows are copied out of a mapping of the file into a contiguous heap
 * matrix (the per-record dimension words make the rows non-contiguous).
 */
#include <stdlib.h>
#include <string.h>

#include "vec_internal.h"

#define WRITE_CHUNK ((size_t)4 << 20)

static int32_t get_i32le(const unsigned char *p)
{
    return (int32_t)((uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24));
}

static ann_dtype texmex_dtype(ann_vformat fmt)
{
    return fmt == ANN_VFMT_IVECS ? ANN_DTYPE_I32 : fmt == ANN_VFMT_BVECS ? ANN_DTYPE_U8 : ANN_DTYPE_F32;
}

static const char *texmex_ext(ann_vformat fmt)
{
    return fmt == ANN_VFMT_IVECS ? "ivecs" : fmt == ANN_VFMT_BVECS ? "bvecs" : "fvecs";
}

/*
 * Dimension, record size and row count of @p in; checks the first
 * record and that the size is a whole number of records (naming the first
 * record whose dimension differs when it is not).
 */
static ann_status texmex_shape(const annv_in *in, ann_vformat fmt, int64_t *dim, uint64_t *rec, int64_t *rows)
{
    const size_t es = ann_dtype_size(texmex_dtype(fmt));
    if (in->size == 0) {   /* an empty file holds no vectors */
        *dim = 0;
        *rec = 4;
        *rows = 0;
        return ANN_OK;
    }
    if (in->size < 4)
        return ann_set_error(ANN_ERR_FORMAT, "'%s': truncated: %llu bytes, shorter than one dimension word",
                             in->path, (unsigned long long)in->size);
    const int32_t d = get_i32le(in->data);
    if (d <= 0)
        return ann_set_error(ANN_ERR_FORMAT, "'%s': record 0 has dimension %d", in->path, (int)d);
    const uint64_t r = 4 + (uint64_t)d * es;
    if (in->size % r != 0) {
        uint64_t i = 0;
        for (; (i + 1) * r <= in->size; i++) {
            const int32_t di = get_i32le(in->data + i * r);
            if (di != d)
                return ann_set_error(ANN_ERR_FORMAT, "'%s': record %llu has dimension %d, expected %d", in->path,
                                     (unsigned long long)i, (int)di, (int)d);
        }
        return ann_set_error(ANN_ERR_FORMAT,
                             "'%s': truncated: file size %llu is not a multiple of the record size %llu "
                             "(4 + %d x %zu); record %llu has only %llu bytes", in->path,
                             (unsigned long long)in->size, (unsigned long long)r, (int)d, es,
                             (unsigned long long)i, (unsigned long long)(in->size - i * r));
    }
    *dim = d;
    *rec = r;
    *rows = (int64_t)(in->size / r);
    return ANN_OK;
}

/**
 * Read rows o->row_begin..o->row_end of texmex file @p path (@p fmt:
 * FVECS -> F32, IVECS -> I32, BVECS -> U8) into a new heap matrix
 * @p out.  Every record read is checked to have the file's dimension.
 * Copies rows on OpenMP threads.  Errors: ANN_ERR_IO, ANN_ERR_FORMAT
 * ("'a.fvecs': record 7 has dimension 12, expected 128", truncated last
 * record), ANN_ERR_INVALID_ARG (row range), ANN_ERR_NOMEM.
 */
ann_status annv_texmex_read(const char *path, ann_vformat fmt, const ann_read_opts *o, ann_matrix *out)
{
    annv_in in;
    int64_t d = 0, n = 0, b = 0, e = 0;
    uint64_t rec = 0;
    const ann_dtype dt = texmex_dtype(fmt);
    const size_t es = ann_dtype_size(dt);
    ann_status st = annv_in_open(&in, path);
    if (st != ANN_OK)
        return st;
    st = texmex_shape(&in, fmt, &d, &rec, &n);
    if (st == ANN_OK)
        st = annv_resolve_rows(path, o, n, &b, &e);
    if (st == ANN_OK)
        st = ann_matrix_alloc(out, e - b, d, dt);
    if (st != ANN_OK)
        goto cleanup;

    const unsigned char *base = in.data;
    const size_t rb = (size_t)d * es;
    int64_t bad = INT64_MAX;
#pragma omp parallel for schedule(static) reduction(min : bad)
    for (int64_t i = b; i < e; i++) {
        const unsigned char *r = base + (uint64_t)i * rec;
        if (get_i32le(r) != d) {
            if (i < bad)
                bad = i;
            continue;
        }
        memcpy((unsigned char *)out->data + (size_t)(i - b) * rb, r + 4, rb);
    }
    if (bad != INT64_MAX) {
        st = ann_set_error(ANN_ERR_FORMAT, "'%s': record %lld has dimension %d, expected %lld", path,
                           (long long)bad, (int)get_i32le(base + (uint64_t)bad * rec), (long long)d);
        ann_matrix_release(out);
    }
cleanup:
    annv_in_close(&in);
    return st;
}

/** Fill @p info (dtype, rows, cols) from the first record and the size of @p path.  Errors as annv_texmex_read(). */
ann_status annv_texmex_probe(const char *path, ann_vformat fmt, ann_vectors_info *info)
{
    annv_in in;
    int64_t d = 0, n = 0;
    uint64_t rec = 0;
    ann_status st = annv_in_open(&in, path);
    if (st != ANN_OK)
        return st;
    st = texmex_shape(&in, fmt, &d, &rec, &n);
    if (st == ANN_OK) {
        info->dtype = texmex_dtype(fmt);
        info->rows = n;
        info->cols = d;
    }
    annv_in_close(&in);
    return st;
}

/**
 * Write @p m as texmex file @p path: fvecs needs F32, ivecs I32, bvecs
 * U8, and the dimension must fit an int32.  Errors: ANN_ERR_UNSUPPORTED
 * (dtype), ANN_ERR_IO, ANN_ERR_INVALID_ARG, ANN_ERR_NOMEM.
 */
ann_status annv_texmex_write(const char *path, ann_vformat fmt, const ann_matrix *m)
{
    const ann_dtype dt = texmex_dtype(fmt);
    ann_status st = annv_check_matrix(path, m);
    if (st != ANN_OK)
        return st;
    if (m->dtype != dt)
        return ann_set_error(ANN_ERR_UNSUPPORTED, "'%s': %s files hold %s elements, not %s", path, texmex_ext(fmt),
                             ann_dtype_name(dt), ann_dtype_name(m->dtype));
    if (m->cols > INT32_MAX || (m->cols == 0 && m->rows > 0))
        return ann_set_error(ANN_ERR_UNSUPPORTED, "'%s': dimension %lld cannot be stored in a %s file", path,
                             (long long)m->cols, texmex_ext(fmt));
    const size_t rb = (size_t)m->cols * ann_dtype_size(dt);
    const size_t rec = 4 + rb;
    const size_t per_chunk = rec >= WRITE_CHUNK ? 1 : WRITE_CHUNK / rec;
    unsigned char *buf = NULL;
    annv_out out;
    st = annv_out_open(&out, path);
    if (st != ANN_OK)
        return st;
    buf = malloc(per_chunk * rec);
    if (!buf) {
        st = ann_set_error(ANN_ERR_NOMEM, "'%s': cannot allocate a write buffer", path);
        goto cleanup;
    }
    const uint32_t dw = (uint32_t)m->cols;
    const unsigned char dword[4] = {(unsigned char)dw, (unsigned char)(dw >> 8), (unsigned char)(dw >> 16),
                                    (unsigned char)(dw >> 24)};
    for (int64_t i = 0; i < m->rows && st == ANN_OK;) {
        size_t k = 0;
        for (; k < per_chunk && i < m->rows; k++, i++) {
            memcpy(buf + k * rec, dword, 4);
            memcpy(buf + k * rec + 4, ann_matrix_row(m, i), rb);
        }
        st = annv_out_write(&out, buf, k * rec);
    }
cleanup:
    free(buf);
    if (st != ANN_OK) {
        annv_out_abort(&out);
        return st;
    }
    return annv_out_close(&out);
}
