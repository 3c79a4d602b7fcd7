/*
 * vec_idx.c - the IDX format of the MNIST and Fashion-MNIST files
 * (Y. LeCun, "THE MNIST DATABASE of handwritten digits", file formats
 * section; formats/vectors.md "idx"), read only, plain or gzip-compressed.
 *
 * Layout, big-endian throughout: two zero bytes, a type byte (0x08 u8,
 * 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64), a rank byte r >= 1,
 * r uint32 dimensions, then the elements in row-major order.  The matrix
 * has dim0 rows and the product of the other dimensions as columns
 * (images N x 28 x 28 -> N x 784; labels N -> N x 1).  Elements keep
 * their type (u8 images stay U8) except i16, which becomes I32.
 *
 * The file is read through zlib's gzread, which decompresses files that
 * start with the gzip magic 1f 8b and passes other files through, so
 * "train-images-idx3-ubyte.gz" and its gunzipped copy read the same.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "vec_internal.h"

#define IDX_MAX_RANK 16
#define GZ_CHUNK ((size_t)1 << 28)

typedef struct idx_header {
    unsigned type, rank;
    uint32_t dims[IDX_MAX_RANK];
    int64_t rows, cols;
    size_t esize;          /* bytes per element in the file */
    ann_dtype dtype;       /* element type of the result */
    uint64_t header_len;   /* 4 + 4 r */
} idx_header;

/* Element size and result dtype of an idx type byte; 0 when unknown. */
static size_t idx_type(unsigned type, ann_dtype *dt)
{
    switch (type) {
    case 0x08: *dt = ANN_DTYPE_U8; return 1;
    case 0x09: *dt = ANN_DTYPE_I8; return 1;
    case 0x0B: *dt = ANN_DTYPE_I32; return 2;
    case 0x0C: *dt = ANN_DTYPE_I32; return 4;
    case 0x0D: *dt = ANN_DTYPE_F32; return 4;
    case 0x0E: *dt = ANN_DTYPE_F64; return 8;
    default: return 0;
    }
}

/* Open @p path ("-" = stdin) for gzread.  Errors: ANN_ERR_IO. */
static ann_status idx_open(const char *path, gzFile *out)
{
    int fd = strcmp(path, "-") == 0 ? dup(STDIN_FILENO) : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ann_set_error(ANN_ERR_IO, "'%s': cannot open: %s", path, strerror(errno));
    gzFile gz = gzdopen(fd, "rb");
    if (!gz) {
        close(fd);
        return ann_set_error(ANN_ERR_NOMEM, "'%s': cannot start zlib", path);
    }
    gzbuffer(gz, 1u << 20);
    *out = gz;
    return ANN_OK;
}

/* zlib's error text without the "<fd:N>: " prefix that gzdopen streams carry. */
static const char *gz_message(gzFile gz, int *errnum)
{
    const char *msg = gzerror(gz, errnum);
    if (msg && msg[0] == '<') {
        const char *colon = strstr(msg, ">: ");
        if (colon)
            msg = colon + 3;
    }
    return msg ? msg : "unknown error";
}

/* Read up to @p n bytes; returns the count, or -1 after setting the error. */
static int64_t gz_read_all(gzFile gz, const char *path, void *buf, uint64_t n, ann_status *st)
{
    uint64_t got = 0;
    while (got < n) {
        const uint64_t want = n - got > GZ_CHUNK ? GZ_CHUNK : n - got;
        const int k = gzread(gz, (char *)buf + got, (unsigned)want);
        if (k < 0) {
            int errnum;
            const char *msg = gz_message(gz, &errnum);
            if (errnum == Z_ERRNO)
                *st = ann_set_error(ANN_ERR_IO, "'%s': read failed: %s", path, strerror(errno));
            else
                *st = ann_set_error(ANN_ERR_FORMAT, "'%s': corrupt gzip data: %s", path, msg);
            return -1;
        }
        if (k == 0)
            break;
        got += (uint64_t)k;
    }
    /* gzread reports a truncated gzip stream as a short read; a zlib error here is a corrupt stream */
    if (got < n) {
        int errnum;
        const char *msg = gz_message(gz, &errnum);
        if (errnum != Z_OK && errnum != Z_BUF_ERROR) {
            *st = ann_set_error(ANN_ERR_FORMAT, "'%s': corrupt gzip data: %s", path, msg);
            return -1;
        }
    }
    return (int64_t)got;
}

/* Read and check the idx header.  @p quiet: return ANN_ERR_FORMAT without setting the message. */
static ann_status idx_header_read(gzFile gz, const char *path, idx_header *h, bool quiet)
{
    unsigned char b[4 + 4 * IDX_MAX_RANK];
    ann_status st = ANN_OK;
    memset(h, 0, sizeof *h);
    int64_t got = gz_read_all(gz, path, b, 4, &st);
    if (got < 0)
        return quiet ? ANN_ERR_FORMAT : st;
    if (got < 4 || b[0] != 0 || b[1] != 0)
        return quiet ? ANN_ERR_FORMAT : ann_set_error(ANN_ERR_FORMAT, "'%s': not an idx file (bad magic)", path);
    h->type = b[2];
    h->rank = b[3];
    h->esize = idx_type(h->type, &h->dtype);
    if (h->esize == 0)
        return quiet ? ANN_ERR_FORMAT
                     : ann_set_error(ANN_ERR_FORMAT, "'%s': unknown idx element type 0x%02x", path, h->type);
    if (h->rank < 1 || h->rank > IDX_MAX_RANK)
        return quiet ? ANN_ERR_FORMAT
                     : ann_set_error(ANN_ERR_FORMAT, "'%s': idx rank %u is not supported (1 to %d)", path, h->rank,
                                     IDX_MAX_RANK);
    got = gz_read_all(gz, path, b + 4, 4 * h->rank, &st);
    if (got < 0)
        return quiet ? ANN_ERR_FORMAT : st;
    if (got < 4 * (int64_t)h->rank)
        return quiet ? ANN_ERR_FORMAT
                     : ann_set_error(ANN_ERR_FORMAT, "'%s': truncated idx header (rank %u)", path, h->rank);
    h->cols = 1;
    for (unsigned i = 0; i < h->rank; i++) {
        const unsigned char *p = b + 4 + 4 * i;
        h->dims[i] = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
        if (i > 0 && __builtin_mul_overflow(h->cols, (int64_t)h->dims[i], &h->cols))
            return quiet ? ANN_ERR_FORMAT : ann_set_error(ANN_ERR_FORMAT, "'%s': idx dimensions are too large", path);
    }
    h->rows = h->dims[0];
    uint64_t bytes;
    if (!annv_bytes(h->rows, h->cols, h->esize, &bytes))
        return quiet ? ANN_ERR_FORMAT : ann_set_error(ANN_ERR_FORMAT, "'%s': idx dimensions are too large", path);
    h->header_len = 4 + 4 * (uint64_t)h->rank;
    return ANN_OK;
}

/**
 * True when @p path starts with a consistent idx header; for a file that
 * is not gzip-compressed the size must also equal header + data exactly,
 * because the idx magic (two zero bytes) is weak.  Never sets the error
 * text.
 */
bool annv_idx_sniff(const char *path)
{
    gzFile gz = NULL;
    idx_header h;
    struct stat sb;
    char saved[1024];
    if (strcmp(path, "-") == 0 || stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
        return false;
    snprintf(saved, sizeof saved, "%s", ann_last_error());
    bool ok = idx_open(path, &gz) == ANN_OK;
    if (ok) {
        ok = idx_header_read(gz, path, &h, true) == ANN_OK;
        if (ok && gzdirect(gz))
            ok = (uint64_t)sb.st_size == h.header_len + (uint64_t)h.rows * (uint64_t)h.cols * h.esize;
        gzclose(gz);
    }
    ann_set_error(ANN_OK, "%s", saved);
    return ok;
}

/**
 * Read rows o->row_begin..o->row_end of the idx file @p path (plain or
 * gzip, "-" = stdin) into a new heap matrix @p out: dim0 rows, product of
 * the other dimensions as columns; U8, I8, I32 (from i32 or i16), F32 or
 * F64.  Errors: ANN_ERR_IO, ANN_ERR_FORMAT (bad magic, unknown type,
 * truncated data, corrupt gzip stream, data after the array),
 * ANN_ERR_INVALID_ARG (row range), ANN_ERR_NOMEM.  Thread-safe.
 */
ann_status annv_idx_read(const char *path, const ann_read_opts *o, ann_matrix *out)
{
    gzFile gz = NULL;
    idx_header h;
    int64_t b = 0, e = 0;
    void *tmp = NULL;
    memset(out, 0, sizeof *out);
    ann_status st = idx_open(path, &gz);
    if (st != ANN_OK)
        return st;
    st = idx_header_read(gz, path, &h, false);
    if (st == ANN_OK)
        st = annv_resolve_rows(path, o, h.rows, &b, &e);
    if (st != ANN_OK)
        goto cleanup;

    const uint64_t row_bytes = (uint64_t)h.cols * h.esize;
    const uint64_t skip = (uint64_t)b * row_bytes;
    const uint64_t n = (uint64_t)(e - b) * (uint64_t)h.cols;   /* elements to read */
    if (skip > 0) {   /* gzseek decompresses and discards on compressed files, seeks on plain ones */
        const z_off_t target = (z_off_t)(h.header_len + skip);
        if (gzseek(gz, target, SEEK_SET) != target) {
            st = ann_set_error(ANN_ERR_FORMAT, "'%s': truncated: the data ends before row %lld", path, (long long)b);
            goto cleanup;
        }
    }
    st = ann_matrix_alloc(out, e - b, h.cols, h.dtype);
    if (st != ANN_OK)
        goto cleanup;
    void *dst = out->data;
    if (h.type == 0x0B) {   /* i16 is widened to i32 after reading */
        tmp = malloc(n * 2 > 0 ? n * 2 : 1);
        if (!tmp) {
            st = ann_set_error(ANN_ERR_NOMEM, "'%s': cannot allocate %llu bytes", path, (unsigned long long)(n * 2));
            goto cleanup;
        }
        dst = tmp;
    }
    const int64_t got = gz_read_all(gz, path, dst, n * h.esize, &st);
    if (got < 0)
        goto cleanup;
    if ((uint64_t)got < n * h.esize) {
        if (skip == 0)
            st = ann_set_error(ANN_ERR_FORMAT, "'%s': truncated: the %u x %lld array of %zu-byte elements needs "
                               "%llu data bytes, the file has %llu", path, h.dims[0], (long long)h.cols, h.esize,
                               (unsigned long long)((uint64_t)h.rows * row_bytes), (unsigned long long)got);
        else
            st = ann_set_error(ANN_ERR_FORMAT, "'%s': truncated: the %u x %lld array of %zu-byte elements ends "
                               "before row %lld", path, h.dims[0], (long long)h.cols, h.esize,
                               (long long)(b + (int64_t)((uint64_t)got / (row_bytes ? row_bytes : 1))));
        goto cleanup;
    }
    if (e == h.rows) {
        unsigned char extra;
        const int64_t k = gz_read_all(gz, path, &extra, 1, &st);
        if (k < 0)
            goto cleanup;
        if (k > 0) {
            st = ann_set_error(ANN_ERR_FORMAT, "'%s': data continues after the %u x %lld array", path, h.dims[0],
                               (long long)h.cols);
            goto cleanup;
        }
    }
    if (h.esize > 1)   /* big-endian to host order */
        annv_bswap(dst, (size_t)n, h.esize);
    if (h.type == 0x0B) {
        const int16_t *s16 = tmp;
        int32_t *d32 = out->data;
        for (uint64_t i = 0; i < n; i++)
            d32[i] = s16[i];
    }
cleanup:
    free(tmp);
    gzclose(gz);
    if (st != ANN_OK)
        ann_matrix_release(out);
    return st;
}

/** Fill @p info from the idx header of @p path (dtype as annv_idx_read returns it).  Errors as annv_idx_read(). */
ann_status annv_idx_probe(const char *path, ann_vectors_info *info)
{
    gzFile gz = NULL;
    idx_header h;
    ann_status st = idx_open(path, &gz);
    if (st != ANN_OK)
        return st;
    st = idx_header_read(gz, path, &h, false);
    if (st == ANN_OK) {
        info->dtype = h.dtype;
        info->rows = h.rows;
        info->cols = h.cols;
    }
    gzclose(gz);
    return st;
}
