/*
 * cagra_file.c - cuVS's own serialized CAGRA index, version 5: writer and
 * reader (notes/algorithms.md 0.5 "npy scalar" primitive and 8 "CAGRA
 * serialization").
 *
 * The file is a stream of small NumPy .npy blobs after a 4-byte dtype
 * string:
 *   "<f4" | "<f2" | "|i1" | "|u1" (NUL-padded to 4 bytes)
 *   npy <i4 ()  version = 5
 *   npy <u4 ()  rows
 *   npy <u4 ()  dim
 *   npy <u4 ()  graph_degree
 *   npy <i4 ()  metric (cuVS DistanceType: 0 L2Expanded, 2 Cosine, 3 L1, 6 InnerProduct)
 *   npy <u4 (rows, graph_degree)  the graph
 *   npy <u4 ()  content_map: bit 0 dataset, bit 1 source indices
 *   [dataset]   npy <u4 () tag: 1 empty (then npy <u4 () suggested dim),
 *               2 strided: npy <i4 () cudaDataType (0 f32, 2 f16, 3 i8,
 *               8 u8), npy <i8 () rows, npy <u4 () dim, npy <u4 () stride,
 *               npy T (rows, dim), unpadded; 3 VPQ (not read here; as
 *               cuVS's dataset_serialize.hpp writes it: npy <i4 ()
 *               cudaDataType of the codebooks (0 f32, 2 f16), <i8 () rows,
 *               <u4 () dim, vq_n_centers, pq_n_centers, pq_len,
 *               encoded_row_length, then the vq codebook (vq_n_centers,
 *               dim), the pq codebook (pq_n_centers, pq_len) and the u1
 *               codes (rows, encoded_row_length): a u32 vq label, then
 *               ceil(dim / pq_len) pq codes of log2(pq_n_centers) bits)
 *   [source indices] npy <u4 (rows,): the id a search returns for each
 *               row (the index's row -> id map, index_internal.h)
 * Each npy blob: "\x93NUMPY", 0x01 0x00, uint16 LE header length, the
 * dict text "{'descr': '<u4', 'fortran_order': False, 'shape': (2, 3)}",
 * spaces and a newline so that 10 + header length is a multiple of 64
 * (a full 64 spaces when the dict already ends aligned), then the raw
 * little-endian data.  The reader parses every header and checks its
 * dtype and shape against what the stream position requires.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cagra_internal.h"
#include "index_internal.h"
#include "internal.h"

#define CUVS_CAGRA_VERSION 5

/* numpy dtype string of a vector dtype, and cudaDataType. */
static const char *np_descr(ann_dtype t)
{
    switch (t) {
    case ANN_DTYPE_F32: return "<f4";
    case ANN_DTYPE_F16: return "<f2";
    case ANN_DTYPE_I8: return "|i1";
    case ANN_DTYPE_U8: return "|u1";
    default: return NULL;
    }
}

static int cuda_dtype(ann_dtype t)
{
    switch (t) {
    case ANN_DTYPE_F32: return 0;
    case ANN_DTYPE_F16: return 2;
    case ANN_DTYPE_I8: return 3;
    default: return 8;
    }
}

static bool descr_dtype(const char *s, ann_dtype *t)
{
    static const ann_dtype all[] = {ANN_DTYPE_F32, ANN_DTYPE_F16, ANN_DTYPE_I8, ANN_DTYPE_U8};
    for (size_t i = 0; i < 4; i++)
        if (!strcmp(s, np_descr(all[i]))) {
            *t = all[i];
            return true;
        }
    return false;
}

/* ------------------------------- writer ------------------------------ */

/* An npy header for descr and shape (ndim 0, 1 or 2) into f. */
static bool npy_header(FILE *f, const char *descr, int ndim, uint64_t a, uint64_t b)
{
    char dict[192];
    char shape[64];
    if (ndim == 0)
        snprintf(shape, sizeof shape, "()");
    else if (ndim == 1)
        snprintf(shape, sizeof shape, "(%llu,)", (unsigned long long)a);
    else
        snprintf(shape, sizeof shape, "(%llu, %llu)", (unsigned long long)a, (unsigned long long)b);
    int len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s}", descr, shape);
    int pad = 64 - ((10 + len + 1) % 64);
    int hlen = len + pad + 1;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hlen & 0xff),
                             (unsigned char)(hlen >> 8)};
    if (fwrite(pre, 1, 10, f) != 10 || fwrite(dict, 1, (size_t)len, f) != (size_t)len)
        return false;
    for (int i = 0; i < pad; i++)
        if (fputc(' ', f) == EOF)
            return false;
    return fputc('\n', f) != EOF;
}

static bool npy_scalar(FILE *f, const char *descr, const void *v, size_t size)
{
    return npy_header(f, descr, 0, 0, 0) && fwrite(v, 1, size, f) == size;
}

static bool put_u32(FILE *f, uint32_t v) { return npy_scalar(f, "<u4", &v, 4); }
static bool put_i32(FILE *f, int32_t v) { return npy_scalar(f, "<i4", &v, 4); }

ann_status ann_cagra_save_cuvs(const ann_index *ix, const char *path, bool include_dataset)
{
    ann_cagra_parts pt;
    ann_status st = ann_index_cagra_parts(ix, &pt);
    if (st != ANN_OK)
        return st;
    if (include_dataset && !pt.data)
        return ann_set_error(ANN_ERR_INVALID_ARG, "the index holds no vectors: it can only be written without the "
                                                  "dataset");
    if (pt.rows >= (int64_t)UINT32_MAX || pt.dim > UINT32_MAX)
        return ann_set_error(ANN_ERR_INVALID_ARG, "%lld rows x %lld dim do not fit the cuVS file's uint32 fields",
                             (long long)pt.rows, (long long)pt.dim);
    if (pt.metric == ANN_METRIC_EUCLIDEAN)
        return ann_set_error(ANN_ERR_UNSUPPORTED,
                             "metric euclidean has no cuVS CAGRA equivalent (cuVS CAGRA searches sqeuclidean); rebuild "
                             "with --metric sqeuclidean");
    /* source indices: the file's IdxT is uint32, so every id must fit one */
    const int64_t *row_ids = ann_index_row_ids(ix);
    uint32_t *src = NULL;
    if (row_ids) {
        if (!(src = malloc((size_t)pt.rows * 4)))
            return ann_set_error(ANN_ERR_NOMEM, "out of memory for %lld source indices", (long long)pt.rows);
        for (int64_t i = 0; i < pt.rows; i++) {
            if (row_ids[i] < 0 || row_ids[i] > (int64_t)UINT32_MAX) {
                free(src);
                return ann_set_error(ANN_ERR_INVALID_ARG,
                                     "row %lld has id %lld, which does not fit the cuVS file's uint32 source indices",
                                     (long long)i, (long long)row_ids[i]);
            }
            src[i] = (uint32_t)row_ids[i];
        }
    }
    const char *descr = np_descr(pt.dtype);
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(src);
        return ann_set_error(ANN_ERR_IO, "'%s': %s", path, strerror(errno));
    }
    char head[4] = {0, 0, 0, 0};
    memcpy(head, descr, 3);
    const uint64_t gcount = (uint64_t)pt.rows * (uint64_t)pt.graph_degree;
    const size_t es = ann_dtype_size(pt.dtype);
    bool ok = fwrite(head, 1, 4, f) == 4 && put_i32(f, CUVS_CAGRA_VERSION) && put_u32(f, (uint32_t)pt.rows) &&
              put_u32(f, (uint32_t)pt.dim) && put_u32(f, (uint32_t)pt.graph_degree) && put_i32(f, (int32_t)pt.metric) &&
              npy_header(f, "<u4", 2, (uint64_t)pt.rows, (uint64_t)pt.graph_degree) &&
              fwrite(pt.graph, 4, gcount, f) == gcount &&
              put_u32(f, (include_dataset ? 1u : 0u) | (src ? 2u : 0u));
    if (ok && include_dataset) {
        const uint32_t stride = (uint32_t)(((uint64_t)pt.dim * es + 15) / 16 * 16 / es);
        const int64_t n = pt.rows;
        ok = put_u32(f, 2) && put_i32(f, cuda_dtype(pt.dtype)) && npy_scalar(f, "<i8", &n, 8) &&
             put_u32(f, (uint32_t)pt.dim) && put_u32(f, stride) &&
             npy_header(f, descr, 2, (uint64_t)pt.rows, (uint64_t)pt.dim) &&
             fwrite(pt.data, es * (size_t)pt.dim, (size_t)pt.rows, f) == (size_t)pt.rows;
    }
    if (ok && src)
        ok = npy_header(f, "<u4", 1, (uint64_t)pt.rows, 0) && fwrite(src, 4, (size_t)pt.rows, f) == (size_t)pt.rows;
    free(src);
    if (fflush(f) != 0)
        ok = false;
    int err = errno;
    if (fclose(f) != 0 && ok) {
        ok = false;
        err = errno;
    }
    if (!ok)
        return ann_set_error(ANN_ERR_IO, "'%s': write failed: %s", path, strerror(err));
    return ANN_OK;
}

/* ------------------------------- reader ------------------------------ */

typedef struct reader {
    const char *path;
    const unsigned char *p;
    size_t size;
    size_t off;
} reader;

/* One parsed npy header. */
typedef struct npy {
    char descr[8];
    int ndim;
    uint64_t shape[2];
    size_t data_off; /* where the data start */
} npy;

static ann_status bad(const reader *r, size_t off, const char *what)
{
    return ann_set_error(ANN_ERR_FORMAT, "'%s': offset %zu: %s (cuVS CAGRA file)", r->path, off, what);
}

/* Find "'key':" in the dict text and return what follows (spaces skipped), or NULL. */
static const char *dict_value(const char *dict, const char *key)
{
    char pat[32];
    snprintf(pat, sizeof pat, "'%s':", key);
    const char *s = strstr(dict, pat);
    if (!s)
        return NULL;
    s += strlen(pat);
    while (*s == ' ')
        s++;
    return s;
}

/* Parse the npy header at r->off; on success r->off is at the data. */
static ann_status npy_read(reader *r, npy *h)
{
    const size_t at = r->off;
    if (r->size - r->off < 10 || memcmp(r->p + r->off, "\x93NUMPY", 6) != 0)
        return bad(r, at, "expected an npy header (\\x93NUMPY)");
    const unsigned major = r->p[r->off + 6];
    size_t hlen, pre;
    if (major == 1) {
        hlen = (size_t)r->p[r->off + 8] | (size_t)r->p[r->off + 9] << 8;
        pre = 10;
    } else if (major == 2 || major == 3) {
        if (r->size - r->off < 12)
            return bad(r, at, "truncated npy header");
        hlen = (size_t)r->p[r->off + 8] | (size_t)r->p[r->off + 9] << 8 | (size_t)r->p[r->off + 10] << 16 |
               (size_t)r->p[r->off + 11] << 24;
        pre = 12;
    } else {
        return bad(r, at, "unknown npy version");
    }
    if (hlen > 4096 || r->size - r->off - pre < hlen)
        return bad(r, at, "npy header length runs past the end of the file");
    char dict[4097];
    memcpy(dict, r->p + r->off + pre, hlen);
    dict[hlen] = '\0';
    memset(h, 0, sizeof *h);
    const char *v = dict_value(dict, "descr");
    if (!v || *v != '\'')
        return bad(r, at, "npy header has no 'descr'");
    size_t n = strcspn(v + 1, "'");
    if (n == 0 || n >= sizeof h->descr || v[1 + n] != '\'')
        return bad(r, at, "npy 'descr' is not a short quoted string");
    memcpy(h->descr, v + 1, n);
    v = dict_value(dict, "fortran_order");
    if (!v || strncmp(v, "False", 5) != 0)
        return bad(r, at, "npy array is not in C order (fortran_order must be False)");
    v = dict_value(dict, "shape");
    if (!v || *v != '(')
        return bad(r, at, "npy header has no 'shape'");
    v++;
    while (*v == ' ')
        v++;
    while (*v != ')') {
        if (h->ndim == 2)
            return bad(r, at, "npy array has more than 2 dimensions");
        char *end;
        errno = 0;
        unsigned long long x = strtoull(v, &end, 10);
        if (end == v || errno)
            return bad(r, at, "npy 'shape' is not a tuple of integers");
        h->shape[h->ndim++] = x;
        v = end;
        while (*v == ' ' || *v == ',')
            v++;
        if (!*v)
            return bad(r, at, "npy 'shape' is not closed");
    }
    r->off += pre + hlen;
    h->data_off = r->off;
    return ANN_OK;
}

/* Read a scalar (shape ()) of dtype descr and size bytes into v. */
static ann_status get_scalar(reader *r, const char *descr, void *v, size_t size, const char *field)
{
    const size_t at = r->off;
    npy h;
    ann_status st = npy_read(r, &h);
    if (st != ANN_OK)
        return st;
    char msg[160];
    if (strcmp(h.descr, descr) != 0 || h.ndim != 0) {
        snprintf(msg, sizeof msg, "field '%s' should be an npy scalar of dtype %s (found dtype %s, %d dimensions)",
                 field, descr, h.descr, h.ndim);
        return bad(r, at, msg);
    }
    if (r->size - r->off < size) {
        snprintf(msg, sizeof msg, "field '%s' is truncated", field);
        return bad(r, at, msg);
    }
    memcpy(v, r->p + r->off, size);
    r->off += size;
    return ANN_OK;
}

/* Read an npy array header of descr and shape (a, b); r->off moves past the data. */
static ann_status get_array(reader *r, const char *descr, uint64_t a, uint64_t b, size_t es, const char *field,
                            const void **data)
{
    const size_t at = r->off;
    npy h;
    ann_status st = npy_read(r, &h);
    if (st != ANN_OK)
        return st;
    char msg[200];
    if (strcmp(h.descr, descr) != 0 || h.ndim != 2 || h.shape[0] != a || h.shape[1] != b) {
        snprintf(msg, sizeof msg, "field '%s' should be an npy array %s (%llu, %llu) (found %s with %d dimensions)",
                 field, descr, (unsigned long long)a, (unsigned long long)b, h.descr, h.ndim);
        return bad(r, at, msg);
    }
    const uint64_t bytes = a * b * es;
    if (a && (bytes / a / es != b || r->size - r->off < bytes)) {
        snprintf(msg, sizeof msg, "field '%s' (%llu x %llu) runs past the end of the file", field,
                 (unsigned long long)a, (unsigned long long)b);
        return bad(r, at, msg);
    }
    *data = r->p + r->off;
    r->off += bytes;
    return ANN_OK;
}

/*
 * Read a 1-D npy array header of @p descr and shape (@p n,) whose
 * elements are @p es bytes; *data points at its data in the mapping and
 * r->off moves past them.  Errors: ANN_ERR_FORMAT naming the file, the
 * offset and @p field (wrong dtype or shape, data past the end).
 */
static ann_status get_vector(reader *r, const char *descr, uint64_t n, size_t es, const char *field,
                             const void **data)
{
    const size_t at = r->off;
    npy h;
    ann_status st = npy_read(r, &h);
    if (st != ANN_OK)
        return st;
    char msg[200];
    if (strcmp(h.descr, descr) != 0 || h.ndim != 1 || h.shape[0] != n) {
        snprintf(msg, sizeof msg, "field '%s' should be an npy array %s (%llu,) (found %s with %d dimensions, %llu "
                                  "values first)",
                 field, descr, (unsigned long long)n, h.descr, h.ndim, (unsigned long long)h.shape[0]);
        return bad(r, at, msg);
    }
    if (r->size - r->off < n * es) {
        snprintf(msg, sizeof msg, "field '%s' (%llu values) runs past the end of the file: only %zu of %llu bytes",
                 field, (unsigned long long)n, r->size - r->off, (unsigned long long)(n * es));
        return bad(r, at, msg);
    }
    *data = r->p + r->off;
    r->off += n * es;
    return ANN_OK;
}

bool ann_cagra_cuvs_detect(const char *path)
{
    unsigned char b[10];
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    size_t n = fread(b, 1, sizeof b, f);
    fclose(f);
    if (n < 10 || b[3] != 0 || memcmp(b + 4, "\x93NUMPY", 6) != 0)
        return false;
    ann_dtype t;
    char s[4] = {(char)b[0], (char)b[1], (char)b[2], 0};
    return descr_dtype(s, &t);
}

ann_status ann_cagra_load_cuvs(const char *path, ann_index **out)
{
    *out = NULL;
    ann_status st = ANN_OK;
    uint32_t *graph = NULL;
    void *data = NULL;
    int64_t *src = NULL;     /* source indices, when the file has them */
    size_t src_at = 0;
    void *map = MAP_FAILED;
    size_t map_len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ann_set_error(ANN_ERR_IO, "'%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        st = ann_set_error(ANN_ERR_IO, "'%s': %s", path, strerror(errno));
        goto cleanup;
    }
    map_len = (size_t)sb.st_size;
    if (map_len < 14) {
        st = ann_set_error(ANN_ERR_FORMAT, "'%s': %zu bytes is too short for a cuVS CAGRA file", path, map_len);
        goto cleanup;
    }
    map = mmap(NULL, map_len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        st = ann_set_error(ANN_ERR_IO, "'%s': mmap: %s", path, strerror(errno));
        goto cleanup;
    }
    reader r = {path, map, map_len, 0};
    char head[4];
    memcpy(head, r.p, 4);
    ann_dtype dtype;
    if (head[3] != 0 || !descr_dtype((char[4]){head[0], head[1], head[2], 0}, &dtype)) {
        st = bad(&r, 0, "the first 4 bytes are not a numpy dtype string (<f4, <f2, |i1, |u1)");
        goto cleanup;
    }
    r.off = 4;
    int32_t version, metric_raw;
    uint32_t rows, dim, deg, content;
    if ((st = get_scalar(&r, "<i4", &version, 4, "version")) != ANN_OK)
        goto cleanup;
    if (version != CUVS_CAGRA_VERSION) {
        st = ann_set_error(ANN_ERR_VERSION, "'%s': cuVS CAGRA file version %d (only version %d is read)", path,
                           (int)version, CUVS_CAGRA_VERSION);
        goto cleanup;
    }
    if ((st = get_scalar(&r, "<u4", &rows, 4, "rows")) != ANN_OK ||
        (st = get_scalar(&r, "<u4", &dim, 4, "dim")) != ANN_OK ||
        (st = get_scalar(&r, "<u4", &deg, 4, "graph_degree")) != ANN_OK)
        goto cleanup;
    const size_t metric_at = r.off;
    if ((st = get_scalar(&r, "<i4", &metric_raw, 4, "metric")) != ANN_OK)
        goto cleanup;
    if (rows < 1 || dim < 1 || deg < 1 || deg > 65536) {
        char msg[160];
        snprintf(msg, sizeof msg, "rows %u, dim %u, graph_degree %u: rows and dim must be >= 1, degree in 1..65536",
                 rows, dim, deg);
        st = bad(&r, 4, msg);
        goto cleanup;
    }
    ann_metric metric = (ann_metric)metric_raw;
    if (metric_raw != ANN_METRIC_SQEUCLIDEAN && metric_raw != ANN_METRIC_EUCLIDEAN &&
        metric_raw != ANN_METRIC_COSINE && metric_raw != ANN_METRIC_L1 && metric_raw != ANN_METRIC_INNER_PRODUCT) {
        if (metric_raw == ANN_METRIC_HAMMING) {
            st = ann_set_error(ANN_ERR_UNSUPPORTED, "'%s': metric BitwiseHamming (20) is not available for CAGRA "
                                                    "indexes here",
                               path);
        } else {
            char msg[80];
            snprintf(msg, sizeof msg, "metric %d is not a CAGRA metric (0, 2, 3, 6)", (int)metric_raw);
            st = bad(&r, metric_at, msg);
        }
        goto cleanup;
    }
    const void *gp;
    const size_t graph_at = r.off;
    if ((st = get_array(&r, "<u4", rows, deg, 4, "graph", &gp)) != ANN_OK)
        goto cleanup;
    const uint64_t gcount = (uint64_t)rows * deg;
    graph = ann_cagra_alloc(gcount * 4);
    if (!graph) {
        st = ann_set_error(ANN_ERR_NOMEM, "'%s': out of memory for a %u x %u graph", path, rows, deg);
        goto cleanup;
    }
    memcpy(graph, gp, gcount * 4);
    for (uint64_t i = 0; i < gcount; i++)
        if (graph[i] >= rows) {
            char msg[160];
            snprintf(msg, sizeof msg, "graph row %llu holds id %u, not below %u rows", (unsigned long long)(i / deg),
                     graph[i], rows);
            st = bad(&r, graph_at, msg);
            goto cleanup;
        }
    if ((st = get_scalar(&r, "<u4", &content, 4, "content_map")) != ANN_OK)
        goto cleanup;
    if (content & 1u) {
        uint32_t tag;
        const size_t tag_at = r.off;
        if ((st = get_scalar(&r, "<u4", &tag, 4, "dataset tag")) != ANN_OK)
            goto cleanup;
        if (tag == 3) {
            st = ann_set_error(ANN_ERR_UNSUPPORTED, "'%s': the dataset is VPQ-compressed (CAGRA-Q), which is not "
                                                    "available here",
                               path);
            goto cleanup;
        }
        if (tag == 1) {
            uint32_t suggested;
            if ((st = get_scalar(&r, "<u4", &suggested, 4, "suggested dim")) != ANN_OK)
                goto cleanup;
        } else if (tag == 2) {
            int32_t cdt;
            int64_t n_rows;
            uint32_t ddim, stride;
            const size_t at = r.off;
            if ((st = get_scalar(&r, "<i4", &cdt, 4, "cudaDataType")) != ANN_OK ||
                (st = get_scalar(&r, "<i8", &n_rows, 8, "dataset rows")) != ANN_OK ||
                (st = get_scalar(&r, "<u4", &ddim, 4, "dataset dim")) != ANN_OK ||
                (st = get_scalar(&r, "<u4", &stride, 4, "dataset stride")) != ANN_OK)
                goto cleanup;
            if (cdt != cuda_dtype(dtype) || n_rows != (int64_t)rows || ddim != dim || stride < dim) {
                char msg[200];
                snprintf(msg, sizeof msg,
                         "dataset record (cudaDataType %d, rows %lld, dim %u, stride %u) does not match the index "
                         "(%s, %u rows, dim %u)",
                         (int)cdt, (long long)n_rows, ddim, stride, np_descr(dtype), rows, dim);
                st = bad(&r, at, msg);
                goto cleanup;
            }
            const void *dp;
            const size_t es = ann_dtype_size(dtype);
            if ((st = get_array(&r, np_descr(dtype), rows, dim, es, "dataset", &dp)) != ANN_OK)
                goto cleanup;
            data = ann_cagra_alloc((size_t)rows * dim * es);
            if (!data) {
                st = ann_set_error(ANN_ERR_NOMEM, "'%s': out of memory for the dataset", path);
                goto cleanup;
            }
            memcpy(data, dp, (size_t)rows * dim * es);
        } else {
            char msg[80];
            snprintf(msg, sizeof msg, "unknown dataset tag %u (1 empty, 2 strided, 3 VPQ)", tag);
            st = bad(&r, tag_at, msg);
            goto cleanup;
        }
    }
    if (content & 2u) {
        const void *sp = NULL;
        src_at = r.off;
        if ((st = get_vector(&r, "<u4", rows, 4, "source_indices", &sp)) != ANN_OK)
            goto cleanup;
        if (!(src = malloc((size_t)rows * sizeof(int64_t)))) {
            st = ann_set_error(ANN_ERR_NOMEM, "'%s': out of memory for %u source indices", path, rows);
            goto cleanup;
        }
        const unsigned char *b = sp;
        for (uint32_t i = 0; i < rows; i++)
            src[i] = (int64_t)((uint32_t)b[4 * (size_t)i] | (uint32_t)b[4 * (size_t)i + 1] << 8 |
                               (uint32_t)b[4 * (size_t)i + 2] << 16 | (uint32_t)b[4 * (size_t)i + 3] << 24);
        if ((st = ann_ids_check(src, rows)) != ANN_OK) {
            char why[200];
            snprintf(why, sizeof why, "field 'source_indices': %s", ann_last_error());
            st = st == ANN_ERR_NOMEM ? st : bad(&r, src_at, why);
            goto cleanup;
        }
    }
    st = ann_index_cagra_adopt(NULL, metric, dtype, rows, dim, (int32_t)deg, graph, data, 0, out);
    graph = NULL;
    data = NULL;
    if (st == ANN_OK && src && (st = ann_index_set_ids(*out, src)) != ANN_OK) {
        ann_index_free(*out);
        *out = NULL;
    }
cleanup:
    free(graph);
    free(data);
    free(src);
    if (map != MAP_FAILED)
        munmap(map, map_len);
    close(fd);
    return st;
}
