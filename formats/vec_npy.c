/*
 * vec_npy.c - NumPy .npy files, format versions 1.0, 2.0 and 3.0
 * (numpy/lib/format.py and NEP 1, "A simple file format for NumPy
 * arrays"; formats/vectors.md "npy").
 *
 * Layout: magic "\x93NUMPY", major and minor version bytes, the header
 * length (uint16 LE in 1.0, uint32 LE in 2.0 and 3.0), then the header: a
 * Python dict literal {'descr': ..., 'fortran_order': ..., 'shape': ...}
 * padded with spaces and ended by '\n' (3.0 allows UTF-8 in it), then the
 * raw array.  We read C-order arrays of '<f4' '<f2' '|i1' '|u1' '<i4'
 * '<u4' '<i8' '<f8' (and '|b1' as u8; big-endian '>' variants are
 * byte-swapped on a copy); little-endian arrays are memory-mapped.
 * Writing produces version 1.0 with the header padded so that the data
 * starts at a multiple of 64 bytes, as current NumPy does (older NumPy
 * padded to 16).  Version 2.0 is only needed for headers over 65535
 * bytes, which a 2-D shape never reaches, so we always write 1.0.
 */
#include <stdlib.h>
#include <string.h>

#include "vec_internal.h"

#define NPY_MAX_DIMS 32
#define NPY_ALIGN 64

static const unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

typedef struct npy_header {
    ann_dtype dtype;
    bool swap;        /* big-endian multi-byte elements */
    int ndim;
    int64_t shape[NPY_MAX_DIMS];
    uint64_t data_off;
    int64_t rows, cols;
} npy_header;

/* ---------------------- header dict parser ------------------------- */

typedef struct parser {
    const char *p, *end;
} parser;

static void skip_ws(parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static bool eat(parser *ps, char c)
{
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == c) {
        ps->p++;
        return true;
    }
    return false;
}

/* A quoted Python string without escapes, into buf. */
static bool parse_str(parser *ps, char *buf, size_t len)
{
    skip_ws(ps);
    if (ps->p >= ps->end || (*ps->p != '\'' && *ps->p != '"'))
        return false;
    const char q = *ps->p++;
    size_t i = 0;
    while (ps->p < ps->end && *ps->p != q) {
        if (*ps->p == '\\' || i + 1 >= len)
            return false;
        buf[i++] = *ps->p++;
    }
    if (ps->p >= ps->end)
        return false;
    ps->p++;
    buf[i] = '\0';
    return true;
}

static bool parse_word(parser *ps, const char *w)
{
    skip_ws(ps);
    const size_t n = strlen(w);
    if ((size_t)(ps->end - ps->p) >= n && memcmp(ps->p, w, n) == 0) {
        ps->p += n;
        return true;
    }
    return false;
}

/* A tuple of non-negative integers: "()", "(3,)", "(3, 4)". */
static bool parse_shape(parser *ps, npy_header *h)
{
    if (!eat(ps, '('))
        return false;
    h->ndim = 0;
    for (;;) {
        if (eat(ps, ')'))
            return true;
        skip_ws(ps);
        int64_t v = 0;
        const char *start = ps->p;
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
            if (v > (INT64_MAX - 9) / 10)
                return false;
            v = v * 10 + (*ps->p++ - '0');
        }
        if (ps->p == start || h->ndim >= NPY_MAX_DIMS)
            return false;
        if (ps->p < ps->end && *ps->p == 'L')   /* Python 2 long */
            ps->p++;
        h->shape[h->ndim++] = v;
        if (!eat(ps, ',')) {
            if (!eat(ps, ')'))
                return false;
            return true;
        }
    }
}

/* Map a descr string; ANN_ERR_UNSUPPORTED for types we do not read. */
static ann_status parse_descr(const char *path, const char *d, npy_header *h)
{
    static const struct { const char *code; ann_dtype t; } types[] = {
        {"f4", ANN_DTYPE_F32}, {"f2", ANN_DTYPE_F16}, {"i1", ANN_DTYPE_I8}, {"u1", ANN_DTYPE_U8},
        {"b1", ANN_DTYPE_U8},  {"i4", ANN_DTYPE_I32}, {"u4", ANN_DTYPE_U32}, {"i8", ANN_DTYPE_I64},
        {"f8", ANN_DTYPE_F64},
    };
    const char order = d[0];
    if ((order == '<' || order == '>' || order == '|' || order == '=') && strlen(d) == 3) {
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strcmp(d + 1, types[i].code) == 0) {
                h->dtype = types[i].t;
                h->swap = order == '>' && ann_dtype_size(types[i].t) > 1;
                return ANN_OK;
            }
    }
    return ann_set_error(ANN_ERR_UNSUPPORTED,
                         "'%s': npy dtype '%s' is not supported (expected '<f4', '<f2', '|i1', '|u1', "
                         "'<i4', '<u4', '<i8' or '<f8')", path, d);
}

/* Parse and check the whole preamble of @p in. */
static ann_status npy_parse(const annv_in *in, npy_header *h)
{
    const char *path = in->path;
    memset(h, 0, sizeof *h);
    if (in->size < 8 || memcmp(in->data, npy_magic, 6) != 0)
        return ann_set_error(ANN_ERR_FORMAT, "'%s': not a .npy file (bad magic)", path);
    const unsigned major = in->data[6], minor = in->data[7];
    uint64_t hlen, pre;
    if (major == 1) {
        if (in->size < 10)
            return ann_set_error(ANN_ERR_FORMAT, "'%s': truncated npy header", path);
        hlen = (uint64_t)in->data[8] | ((uint64_t)in->data[9] << 8);
        pre = 10;
    } else if (major == 2 || major == 3) {
        if (in->size < 12)
            return ann_set_error(ANN_ERR_FORMAT, "'%s': truncated npy header", path);
        hlen = (uint64_t)in->data[8] | ((uint64_t)in->data[9] << 8) | ((uint64_t)in->data[10] << 16) |
               ((uint64_t)in->data[11] << 24);
        pre = 12;
    } else {
        return ann_set_error(ANN_ERR_VERSION, "'%s': npy format version %u.%u is not supported (1.0, 2.0, 3.0)",
                             path, major, minor);
    }
    if (hlen > in->size - pre)
        return ann_set_error(ANN_ERR_FORMAT, "'%s': truncated: the npy header needs %llu bytes, the file has %llu",
                             path, (unsigned long long)(pre + hlen), (unsigned long long)in->size);
    h->data_off = pre + hlen;

    parser ps = {(const char *)in->data + pre, (const char *)in->data + pre + hlen};
    bool have_descr = false, have_order = false, have_shape = false, fortran = false;
    char descr[32];
    if (!eat(&ps, '{'))
        goto bad_header;
    while (!eat(&ps, '}')) {
        char key[32];
        if (!parse_str(&ps, key, sizeof key) || !eat(&ps, ':'))
            goto bad_header;
        if (strcmp(key, "descr") == 0) {
            if (!parse_str(&ps, descr, sizeof descr))
                return ann_set_error(ANN_ERR_UNSUPPORTED,
                                     "'%s': npy dtype is not a simple type (structured arrays are not supported)",
                                     path);
            have_descr = true;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (parse_word(&ps, "True"))
                fortran = true;
            else if (!parse_word(&ps, "False"))
                goto bad_header;
            have_order = true;
        } else if (strcmp(key, "shape") == 0) {
            if (!parse_shape(&ps, h))
                goto bad_header;
            have_shape = true;
        } else {
            return ann_set_error(ANN_ERR_FORMAT, "'%s': npy header has an unexpected key '%s'", path, key);
        }
        if (!eat(&ps, ',')) {
            if (!eat(&ps, '}'))
                goto bad_header;
            break;
        }
    }
    if (!have_descr || !have_order || !have_shape)
        return ann_set_error(ANN_ERR_FORMAT, "'%s': npy header lacks the key '%s'", path,
                             !have_descr ? "descr" : !have_order ? "fortran_order" : "shape");
    ann_status st = parse_descr(path, descr, h);
    if (st != ANN_OK)
        return st;
    if (fortran && h->ndim > 1)
        return ann_set_error(ANN_ERR_UNSUPPORTED,
                             "'%s': Fortran-order (column-major) arrays are not supported; save a C-order "
                             "array (numpy.ascontiguousarray)", path);

    /* rows = shape[0], cols = product of the rest; () is 1 x 1, (n,) is n x 1. */
    h->rows = h->ndim > 0 ? h->shape[0] : 1;
    h->cols = 1;
    for (int i = 1; i < h->ndim; i++)
        if (__builtin_mul_overflow(h->cols, h->shape[i], &h->cols))
            return ann_set_error(ANN_ERR_FORMAT, "'%s': npy shape is too large", path);
    uint64_t bytes;
    const size_t es = ann_dtype_size(h->dtype);
    if (!annv_bytes(h->rows, h->cols, es, &bytes) || bytes > in->size - h->data_off || bytes < in->size - h->data_off)
        return ann_set_error(ANN_ERR_FORMAT,
                             "'%s': file size %llu does not match header (%llu + %lld x %lld x %zu = %llu bytes)",
                             path, (unsigned long long)in->size, (unsigned long long)h->data_off,
                             (long long)h->rows, (long long)h->cols, es,
                             (unsigned long long)(h->data_off + (uint64_t)h->rows * (uint64_t)h->cols * es));
    return ANN_OK;

bad_header:
    return ann_set_error(ANN_ERR_FORMAT, "'%s': malformed npy header near byte %lld", path,
                         (long long)(ps.p - (const char *)in->data));
}

/**
 * Read rows o->row_begin..o->row_end of the .npy file @p path into
 * @p out, in the file's dtype.  Little-endian data is memory-mapped (no
 * copy); big-endian data is copied and swapped.  Errors: ANN_ERR_IO,
 * ANN_ERR_FORMAT (bad magic, malformed header, size that disagrees with
 * the shape), ANN_ERR_VERSION (format version other than 1, 2, 3),
 * ANN_ERR_UNSUPPORTED (Fortran order, other dtypes), ANN_ERR_INVALID_ARG
 * (row range), ANN_ERR_NOMEM.  Thread-safe.
 */
ann_status annv_npy_read(const char *path, const ann_read_opts *o, ann_matrix *out)
{
    annv_in in;
    npy_header h;
    int64_t b = 0, e = 0;
    ann_status st = annv_in_open(&in, path);
    if (st != ANN_OK)
        return st;
    st = npy_parse(&in, &h);
    if (st == ANN_OK)
        st = annv_resolve_rows(path, o, h.rows, &b, &e);
    if (st == ANN_OK) {
        const size_t es = ann_dtype_size(h.dtype);
        const unsigned char *p = in.data + h.data_off + (size_t)b * (size_t)h.cols * es;
        if (!h.swap) {
            st = annv_in_matrix(&in, p, e - b, h.cols, h.dtype, out);
        } else {
            st = ann_matrix_alloc(out, e - b, h.cols, h.dtype);
            if (st == ANN_OK) {
                const size_t n = (size_t)(e - b) * (size_t)h.cols;
                memcpy(out->data, p, n * es);
                annv_bswap(out->data, n, es);
            }
        }
    }
    annv_in_close(&in);
    return st;
}

/** Fill @p info from the header of @p path.  Errors as annv_npy_read(). */
ann_status annv_npy_probe(const char *path, ann_vectors_info *info)
{
    annv_in in;
    npy_header h;
    ann_status st = annv_in_open(&in, path);
    if (st != ANN_OK)
        return st;
    st = npy_parse(&in, &h);
    if (st == ANN_OK) {
        info->dtype = h.dtype;
        info->rows = h.rows;
        info->cols = h.cols;
    }
    annv_in_close(&in);
    return st;
}

static const char *npy_descr(ann_dtype t)
{
    switch (t) {
    case ANN_DTYPE_F32: return "<f4";
    case ANN_DTYPE_F16: return "<f2";
    case ANN_DTYPE_I8: return "|i1";
    case ANN_DTYPE_U8: return "|u1";
    case ANN_DTYPE_I32: return "<i4";
    case ANN_DTYPE_U32: return "<u4";
    case ANN_DTYPE_I64: return "<i8";
    case ANN_DTYPE_F64: return "<f8";
    }
    return NULL;
}

/**
 * Write @p m (any dtype) as a 2-D C-order .npy file, version 1.0 with
 * the data at a multiple of 64 bytes (a 2-D header never needs 2.0),
 * with the header text NumPy itself writes:
 * "{'descr': '<f4', 'fortran_order': False, 'shape': (R, C), }".
 * Errors: ANN_ERR_IO, ANN_ERR_INVALID_ARG.
 */
ann_status annv_npy_write(const char *path, const ann_matrix *m)
{
    ann_status st = annv_check_matrix(path, m);
    if (st != ANN_OK)
        return st;
    char dict[160];
    const int dl = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%lld, %lld), }",
                            npy_descr(m->dtype), (long long)m->rows, (long long)m->cols);
    /* preamble (10 bytes for 1.0) + dict + padding spaces + '\n' is a multiple of 64 */
    unsigned char head[256];
    const size_t pre = 10;
    const size_t total = ((pre + (size_t)dl + 1 + NPY_ALIGN - 1) / NPY_ALIGN) * NPY_ALIGN;
    const size_t hlen = total - pre;   /* always < 65536 for this header */
    memcpy(head, npy_magic, 6);
    head[6] = 1;
    head[7] = 0;
    head[8] = (unsigned char)(hlen & 0xff);
    head[9] = (unsigned char)(hlen >> 8);
    memcpy(head + pre, dict, (size_t)dl);
    memset(head + pre + dl, ' ', total - pre - (size_t)dl - 1);
    head[total - 1] = '\n';

    annv_out out;
    st = annv_out_open(&out, path);
    if (st != ANN_OK)
        return st;
    st = annv_out_write(&out, head, total);
    if (st == ANN_OK)
        st = annv_out_rows(&out, m);
    if (st != ANN_OK) {
        annv_out_abort(&out);
        return st;
    }
    return annv_out_close(&out);
}
