/*
 * vec_bin.c - the big-ann-benchmarks / DiskANN / cuVS "bin" family:
 * .fbin (float32), .ibin (int32), .u8bin (uint8), .i8bin (int8) and
 * cuVS's .f16bin (IEEE binary16).
 *
 * Layout (big-ann-benchmarks benchmark/dataset_io.py; cuVS datasets
 * documentation; formats/vectors.md "bin"): uint32 LE n, uint32 LE d,
 * then n x d little-endian elements, row-major.  The element type is not
 * stored: it comes from the file extension.  As in the reference reader
 * the file size must equal 8 + n x d x element size exactly.  Files are
 * memory-mapped and the returned matrix points into the mapping.
 */
#include <string.h>

#include "vec_internal.h"

#define BIN_HEADER 8

static uint32_t get_u32le(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static bool bin_elem_ok(ann_dtype t)
{
    return t == ANN_DTYPE_F32 || t == ANN_DTYPE_I32 || t == ANN_DTYPE_U8 || t == ANN_DTYPE_I8 ||
           t == ANN_DTYPE_F16;
}

static const char *bin_ext(ann_dtype t)
{
    switch (t) {
    case ANN_DTYPE_F32: return "fbin";
    case ANN_DTYPE_I32: return "ibin";
    case ANN_DTYPE_U8: return "u8bin";
    case ANN_DTYPE_I8: return "i8bin";
    case ANN_DTYPE_F16: return "f16bin";
    default: return "?";
    }
}

/* Check the header of @p in against its size; fills n and d. */
static ann_status bin_header(const annv_in *in, ann_dtype elem, int64_t *n, int64_t *d)
{
    const size_t es = ann_dtype_size(elem);
    if (in->size < BIN_HEADER)
        return ann_set_error(ANN_ERR_FORMAT, "'%s': truncated: %llu bytes, shorter than the %d-byte header",
                             in->path, (unsigned long long)in->size, BIN_HEADER);
    const uint32_t rows = get_u32le(in->data), cols = get_u32le(in->data + 4);
    uint64_t payload;
    if (!annv_bytes(rows, cols, es, &payload))
        return ann_set_error(ANN_ERR_FORMAT, "'%s': file size %llu does not match header (%d + %u x %u x %zu bytes)",
                             in->path, (unsigned long long)in->size, BIN_HEADER, rows, cols, es);
    const uint64_t expect = BIN_HEADER + payload;
    if (in->size != expect)
        return ann_set_error(ANN_ERR_FORMAT,
                             "'%s': file size %llu does not match header (%d + %u x %u x %zu = %llu bytes)",
                             in->path, (unsigned long long)in->size, BIN_HEADER, rows, cols, es,
                             (unsigned long long)expect);
    *n = rows;
    *d = cols;
    return ANN_OK;
}

/**
 * Read rows o->row_begin..o->row_end of the bin file @p path whose
 * elements are @p elem (F32, I32, U8, I8 or F16) into @p out, which maps
 * the file (no copy) when the data is aligned.  Errors: ANN_ERR_IO,
 * ANN_ERR_FORMAT (short header, size that disagrees with the header),
 * ANN_ERR_INVALID_ARG (row range), ANN_ERR_NOMEM.  Thread-safe.
 */
ann_status annv_bin_read(const char *path, ann_dtype elem, const ann_read_opts *o, ann_matrix *out)
{
    annv_in in;
    int64_t n = 0, d = 0, b = 0, e = 0;
    ann_status st = annv_in_open(&in, path);
    if (st != ANN_OK)
        return st;
    st = bin_header(&in, elem, &n, &d);
    if (st == ANN_OK)
        st = annv_resolve_rows(path, o, n, &b, &e);
    if (st == ANN_OK)
        st = annv_in_matrix(&in, in.data + BIN_HEADER + (size_t)b * (size_t)d * ann_dtype_size(elem), e - b, d,
                            elem, out);
    annv_in_close(&in);
    return st;
}

/** Fill @p info from the header of bin file @p path (elements @p elem).  Errors as annv_bin_read(). */
ann_status annv_bin_probe(const char *path, ann_dtype elem, ann_vectors_info *info)
{
    annv_in in;
    int64_t n = 0, d = 0;
    ann_status st = annv_in_open(&in, path);
    if (st != ANN_OK)
        return st;
    st = bin_header(&in, elem, &n, &d);
    if (st == ANN_OK) {
        info->dtype = elem;
        info->rows = n;
        info->cols = d;
    }
    annv_in_close(&in);
    return st;
}

/**
 * Write @p m as a bin file.  When @p elem_known (the extension named the
 * element type) the matrix must have dtype @p elem; otherwise any of F32,
 * I32, U8, I8, F16 is written as is.  Errors: ANN_ERR_UNSUPPORTED (dtype
 * the file cannot hold, more than 2^32 - 1 rows or columns), ANN_ERR_IO,
 * ANN_ERR_INVALID_ARG.
 */
ann_status annv_bin_write(const char *path, ann_dtype elem, bool elem_known, const ann_matrix *m)
{
    ann_status st = annv_check_matrix(path, m);
    if (st != ANN_OK)
        return st;
    if (elem_known && m->dtype != elem)
        return ann_set_error(ANN_ERR_UNSUPPORTED, "'%s': a .%s file holds %s elements, not %s", path,
                             bin_ext(elem), ann_dtype_name(elem), ann_dtype_name(m->dtype));
    if (!bin_elem_ok(m->dtype))
        return ann_set_error(ANN_ERR_UNSUPPORTED,
                             "'%s': bin files hold f32, i32, u8, i8 or f16 elements, not %s", path,
                             ann_dtype_name(m->dtype));
    if (m->rows > UINT32_MAX || m->cols > UINT32_MAX)
        return ann_set_error(ANN_ERR_UNSUPPORTED, "'%s': %lld x %lld does not fit the 32-bit bin header", path,
                             (long long)m->rows, (long long)m->cols);
    unsigned char h[BIN_HEADER];
    const uint32_t n = (uint32_t)m->rows, d = (uint32_t)m->cols;
    for (int i = 0; i < 4; i++) {
        h[i] = (unsigned char)(n >> (8 * i));
        h[4 + i] = (unsigned char)(d >> (8 * i));
    }
    annv_out out;
    st = annv_out_open(&out, path);
    if (st != ANN_OK)
        return st;
    st = annv_out_write(&out, h, sizeof h);
    if (st == ANN_OK)
        st = annv_out_rows(&out, m);
    if (st != ANN_OK) {
        annv_out_abort(&out);
        return st;
    }
    return annv_out_close(&out);
}
