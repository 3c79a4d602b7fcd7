/*
 * test_vectors.c - unit tests of the vector-file readers and writers
 * (ann/vectors.h, formats/vec_*.c, formats/vectors.md).
 *
 * Round trips for every format and dtype it can hold (values compared
 * bit for bit), row ranges, PATH:NAME selection, HDF5 append and the
 * 'distance' attribute, npy versions 1-3, gzip idx, text with comments
 * and commas, stdin/stdout; and for every reader good, truncated, corrupt
 * and mismatched inputs, asserting the exact status and that
 * ann_last_error() names the file.  HDF5 fixtures that our writer never
 * makes (int16, fixed-length string attribute, groups, 3-D, chunked) are
 * made with the HDF5 C API.  When /usr/bin/python3 has h5py, the files
 * are also checked from h5py (skipped otherwise: the test never needs
 * Python).  Files live in a fresh directory under $TMPDIR (or /tmp).
 * Exit status 0 = all passed, 1 = a failure (each printed to stderr).
 */
#include "testfs.h"

#include <fcntl.h>
#include <math.h>

#include <hdf5.h>
#include <zlib.h>

#include "ann/container.h"
#include "ann/vectors.h"

static void spit_text(const char *path, const char *text)
{
    spit(path, text, strlen(text));
}

static void put32le(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put32be(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (24 - 8 * i));
}

/* --------------------------- test matrices --------------------------- */

/* A deterministic rows x cols matrix of dtype t with values that exercise the type's range. */
static ann_matrix make(int64_t rows, int64_t cols, ann_dtype t)
{
    ann_matrix m;
    if (ann_matrix_alloc(&m, rows, cols, t) != ANN_OK) {
        fprintf(stderr, "alloc failed\n");
        exit(1);
    }
    for (int64_t i = 0; i < rows; i++) {
        void *r = ann_matrix_row(&m, i);
        for (int64_t j = 0; j < cols; j++) {
            const int64_t k = i * cols + j;
            switch (t) {
            case ANN_DTYPE_F32: ((float *)r)[j] = (float)(k * 0.1 - 3.3) / 7.0f; break;
            case ANN_DTYPE_F16: ((uint16_t *)r)[j] = ann_f32_to_f16((float)(k % 200) * 0.25f - 20.0f); break;
            case ANN_DTYPE_I8: ((int8_t *)r)[j] = (int8_t)(k * 7 % 256 - 128); break;
            case ANN_DTYPE_U8: ((uint8_t *)r)[j] = (uint8_t)(k * 13 % 256); break;
            case ANN_DTYPE_I32: ((int32_t *)r)[j] = (int32_t)(k * 100003 % 2000000007 - 1000000000); break;
            case ANN_DTYPE_U32: ((uint32_t *)r)[j] = (uint32_t)(k * 2654435761u); break;
            case ANN_DTYPE_I64: ((int64_t *)r)[j] = (k - 50) * 1234567890123ll; break;
            case ANN_DTYPE_F64: ((double *)r)[j] = (double)k / 3.0 - 17.125; break;
            }
        }
    }
    return m;
}

/* True when @p a equals rows [b0, b0 + a.rows) of @p b bit for bit (same dtype and columns). */
static bool same_rows(const ann_matrix *a, const ann_matrix *b, int64_t b0)
{
    if (a->dtype != b->dtype || a->cols != b->cols || b0 + a->rows > b->rows)
        return false;
    const size_t rb = (size_t)a->cols * ann_dtype_size(a->dtype);
    for (int64_t i = 0; i < a->rows; i++)
        if (memcmp(ann_matrix_row(a, i), ann_matrix_row(b, b0 + i), rb) != 0)
            return false;
    return true;
}

static bool same(const ann_matrix *a, const ann_matrix *b)
{
    return a->rows == b->rows && same_rows(a, b, 0);
}

/* Numeric value of element (i, j) of @p m as double. */
static double val(const ann_matrix *m, int64_t i, int64_t j)
{
    const void *r = ann_matrix_row(m, i);
    switch (m->dtype) {
    case ANN_DTYPE_F32: return ((const float *)r)[j];
    case ANN_DTYPE_F16: return ann_f16_to_f32(((const uint16_t *)r)[j]);
    case ANN_DTYPE_I8: return ((const int8_t *)r)[j];
    case ANN_DTYPE_U8: return ((const uint8_t *)r)[j];
    case ANN_DTYPE_I32: return ((const int32_t *)r)[j];
    case ANN_DTYPE_U32: return ((const uint32_t *)r)[j];
    case ANN_DTYPE_I64: return (double)((const int64_t *)r)[j];
    case ANN_DTYPE_F64: return ((const double *)r)[j];
    }
    return NAN;
}

static ann_status read_range(const char *spec, int64_t b, int64_t e, ann_matrix *out)
{
    ann_read_opts o;
    ann_read_opts_init(&o);
    o.row_begin = b;
    o.row_end = e;
    return ann_vectors_read(spec, &o, out);
}

/*
 * Write @p m to @p spec, read it back whole and in slices, probe it, and
 * compare.  @p want_fmt is the format the probe must report.
 */
static void roundtrip(const char *spec, const ann_matrix *m, ann_vformat want_fmt)
{
    ann_write_opts wo;
    ann_write_opts_init(&wo);
    EXPECT(ann_vectors_write(spec, m, &wo), ANN_OK, NULL);
    ann_matrix r;
    EXPECT(ann_vectors_read(spec, NULL, &r), ANN_OK, NULL);
    CHECK(same(&r, m), "%s: %s %lld x %lld round trip differs (got %s %lld x %lld)", spec, ann_dtype_name(m->dtype),
          (long long)m->rows, (long long)m->cols, ann_dtype_name(r.dtype), (long long)r.rows, (long long)r.cols);
    CHECK(r.loc == ANN_LOC_HOST && r.owner != NULL, "%s: result must own its memory", spec);
    ann_matrix_release(&r);
    CHECK(r.data == NULL && r.owner == NULL, "release zeroes");
    if (m->rows >= 5) {
        EXPECT(read_range(spec, 2, 5, &r), ANN_OK, NULL);
        CHECK(r.rows == 3 && same_rows(&r, m, 2), "%s: rows 2:5", spec);
        ann_matrix_release(&r);
        EXPECT(read_range(spec, m->rows - 2, -1, &r), ANN_OK, NULL);
        CHECK(r.rows == 2 && same_rows(&r, m, m->rows - 2), "%s: last two rows", spec);
        ann_matrix_release(&r);
        EXPECT(read_range(spec, 3, 3, &r), ANN_OK, NULL);
        CHECK(r.rows == 0 && r.cols == m->cols, "%s: empty range", spec);
        ann_matrix_release(&r);
    }
    ann_vectors_info info;
    EXPECT(ann_vectors_probe(spec, ANN_VFMT_AUTO, &info), ANN_OK, NULL);
    CHECK(info.format == want_fmt && info.dtype == m->dtype && info.rows == m->rows && info.cols == m->cols,
          "%s: probe says %s %s %lld x %lld", spec, ann_vformat_name(info.format), ann_dtype_name(info.dtype),
          (long long)info.rows, (long long)info.cols);
}

/* Row range errors of @p spec holding @p rows rows; the message must name @p path. */
static void range_errors(const char *spec, const char *path, int64_t rows)
{
    ann_matrix r;
    EXPECT(read_range(spec, 0, rows + 1, &r), ANN_ERR_INVALID_ARG, path);
    EXPECT_MSG("outside the file");
    CHECK(r.data == NULL && r.owner == NULL, "zeroed on failure");
    EXPECT(read_range(spec, rows + 1, -1, &r), ANN_ERR_INVALID_ARG, path);
    EXPECT(read_range(spec, 3, 2, &r), ANN_ERR_INVALID_ARG, path);
    EXPECT(read_range(spec, -1, 2, &r), ANN_ERR_INVALID_ARG, path);
}

/* ------------------------------- tests ------------------------------- */

static void test_names(void)
{
    ann_vformat f;
    for (int v = ANN_VFMT_AUTO; v <= ANN_VFMT_ANNKIT; v++) {
        EXPECT(ann_vformat_parse(ann_vformat_name((ann_vformat)v), &f), ANN_OK, NULL);
        CHECK(f == (ann_vformat)v, "format %d name round trip", v);
    }
    static const char *const bins[] = {"fbin", "ibin", "u8bin", "i8bin", "f16bin", "BIN"};
    for (int i = 0; i < 6; i++) {
        EXPECT(ann_vformat_parse(bins[i], &f), ANN_OK, NULL);
        CHECK(f == ANN_VFMT_FBIN, "%s", bins[i]);
    }
    EXPECT(ann_vformat_parse("tsv", &f), ANN_OK, NULL);
    CHECK(f == ANN_VFMT_TEXT, "tsv");
    EXPECT(ann_vformat_parse("h5", &f), ANN_OK, NULL);
    CHECK(f == ANN_VFMT_HDF5, "h5");
    EXPECT(ann_vformat_parse("parquet", &f), ANN_ERR_INVALID_ARG, "parquet");

    /* extension detection for files that do not exist */
    static const struct { const char *p; ann_vformat f; ann_dtype e; } ext[] = {
        {"a.hdf5", ANN_VFMT_HDF5, ANN_DTYPE_F32},  {"a.H5", ANN_VFMT_HDF5, ANN_DTYPE_F32},
        {"a.fvecs", ANN_VFMT_FVECS, ANN_DTYPE_F32}, {"a.ivecs", ANN_VFMT_IVECS, ANN_DTYPE_I32},
        {"a.bvecs", ANN_VFMT_BVECS, ANN_DTYPE_U8},  {"a.fbin", ANN_VFMT_FBIN, ANN_DTYPE_F32},
        {"a.ibin", ANN_VFMT_FBIN, ANN_DTYPE_I32},   {"a.u8bin", ANN_VFMT_FBIN, ANN_DTYPE_U8},
        {"a.i8bin", ANN_VFMT_FBIN, ANN_DTYPE_I8},   {"a.f16bin", ANN_VFMT_FBIN, ANN_DTYPE_F16},
        {"d.x/a.npy", ANN_VFMT_NPY, ANN_DTYPE_F32}, {"a.tsv", ANN_VFMT_TEXT, ANN_DTYPE_F32},
        {"a.csv", ANN_VFMT_TEXT, ANN_DTYPE_F32},    {"-", ANN_VFMT_TEXT, ANN_DTYPE_F32},
        {"t10k-images-idx3-ubyte.gz", ANN_VFMT_IDX, ANN_DTYPE_F32},
    };
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        ann_dtype e = ANN_DTYPE_F64;
        EXPECT(ann_vformat_detect(strcmp(ext[i].p, "-") == 0 ? "-" : tp(ext[i].p), &f, &e), ANN_OK, NULL);
        CHECK(f == ext[i].f && e == ext[i].e, "detect %s: %s %s", ext[i].p, ann_vformat_name(f), ann_dtype_name(e));
    }
    const char *p = tp("data.xyz");
    EXPECT(ann_vformat_detect(p, &f, NULL), ANN_ERR_FORMAT, p);
    spit_text(p, "hello");
    EXPECT(ann_vformat_detect(p, &f, NULL), ANN_ERR_FORMAT, p);
    /* magic beats the extension: an npy file named .fbin */
    ann_matrix m = make(3, 2, ANN_DTYPE_F32);
    ann_write_opts wo;
    ann_write_opts_init(&wo);
    wo.format = ANN_VFMT_NPY;
    EXPECT(ann_vectors_write(tp("npy_named.fbin"), &m, &wo), ANN_OK, NULL);
    EXPECT(ann_vformat_detect(tp("npy_named.fbin"), &f, NULL), ANN_OK, NULL);
    CHECK(f == ANN_VFMT_NPY, "magic wins: %s", ann_vformat_name(f));
    ann_matrix r;
    EXPECT(ann_vectors_read(tp("npy_named.fbin"), NULL, &r), ANN_OK, NULL);
    CHECK(same(&r, &m), "npy named fbin");
    ann_matrix_release(&r);
    ann_matrix_release(&m);
}

static void test_spec_split(void)
{
    char path[256], name[64];
    EXPECT(ann_spec_split("x.hdf5:train", path, sizeof path, name, sizeof name), ANN_OK, NULL);
    CHECK(strcmp(path, "x.hdf5") == 0 && strcmp(name, "train") == 0, "%s %s", path, name);
    EXPECT(ann_spec_split("dir:a/x.h5:test", path, sizeof path, name, sizeof name), ANN_OK, NULL);
    CHECK(strcmp(path, "dir:a/x.h5") == 0 && strcmp(name, "test") == 0, "%s %s", path, name);
    EXPECT(ann_spec_split("a:b.fbin", path, sizeof path, name, sizeof name), ANN_OK, NULL);
    CHECK(strcmp(path, "a:b.fbin") == 0 && name[0] == '\0', "colon in a path: %s %s", path, name);
    EXPECT(ann_spec_split("plain.fbin", path, sizeof path, name, sizeof name), ANN_OK, NULL);
    CHECK(strcmp(path, "plain.fbin") == 0 && name[0] == '\0', "plain");
    EXPECT(ann_spec_split("x.hdf5:", path, sizeof path, name, sizeof name), ANN_OK, NULL);
    CHECK(strcmp(path, "x.hdf5") == 0 && name[0] == '\0', "empty name");
    /* an existing file without an HDF5 extension still splits */
    spit_text(tp("data.bin5"), "x");
    char spec[800];
    snprintf(spec, sizeof spec, "%s:ds", tp("data.bin5"));
    EXPECT(ann_spec_split(spec, path, sizeof path, name, sizeof name), ANN_OK, NULL);
    CHECK(strcmp(path, tp("data.bin5")) == 0 && strcmp(name, "ds") == 0, "existing prefix");
    /* an existing file whose name contains ':' is taken whole */
    ann_matrix m = make(6, 3, ANN_DTYPE_F32), r;
    const char *colon = tp("with:colon.fbin");
    EXPECT(ann_vectors_write(colon, &m, NULL), ANN_OK, NULL);
    EXPECT(ann_vectors_read(colon, NULL, &r), ANN_OK, NULL);
    CHECK(same(&r, &m), "file with colon");
    ann_matrix_release(&r);
    ann_matrix_release(&m);
    EXPECT(ann_spec_split("x.hdf5:train", path, 4, name, sizeof name), ANN_ERR_INVALID_ARG, "x.hdf5");
}

static void test_bin(void)
{
    static const struct { const char *ext; ann_dtype t; } kinds[] = {
        {"fbin", ANN_DTYPE_F32}, {"ibin", ANN_DTYPE_I32}, {"u8bin", ANN_DTYPE_U8},
        {"i8bin", ANN_DTYPE_I8}, {"f16bin", ANN_DTYPE_F16}, {"bin", ANN_DTYPE_F32},
    };
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        char name[32];
        snprintf(name, sizeof name, "m.%s", kinds[k].ext);
        ann_matrix m = make(17, 5, kinds[k].t);
        roundtrip(tp(name), &m, ANN_VFMT_FBIN);
        range_errors(tp(name), tp(name), 17);
        ann_matrix_release(&m);
    }
    /* byte layout: 8-byte header then the data */
    ann_matrix m = make(3, 4, ANN_DTYPE_F32);
    const char *p = tp("layout.fbin");
    ann_vectors_write(p, &m, NULL);
    size_t len;
    unsigned char *b = slurp(p, &len);
    CHECK(b && len == 8 + 48 && b[0] == 3 && b[4] == 4 && memcmp(b + 8, m.data, 48) == 0, "fbin layout");
    free(b);

    /* mapped result: writable copy-on-write, file unchanged */
    ann_matrix r;
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_OK, NULL);
    ((float *)r.data)[0] = 12345.0f;
    ann_matrix_release(&r);
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_OK, NULL);
    CHECK(((float *)r.data)[0] == ((float *)m.data)[0], "file unchanged by a write into the mapped matrix");
    ann_matrix_release(&r);

    /* size that disagrees with the header: the message of the brief */
    unsigned char hdr[100] = {0};
    put32le(hdr, 3);
    put32le(hdr + 4, 128);
    p = tp("q.fbin");
    spit(p, hdr, 100);
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_ERR_FORMAT, p);
    EXPECT_MSG("file size 100 does not match header (8 + 3 x 128 x 4 = 1544 bytes)");
    ann_vectors_info info;
    EXPECT(ann_vectors_probe(p, ANN_VFMT_AUTO, &info), ANN_ERR_FORMAT, p);
    /* too long by one byte */
    unsigned char *big = calloc(1, 8 + 48 + 1);
    put32le(big, 3);
    put32le(big + 4, 4);
    p = tp("long.fbin");
    spit(p, big, 8 + 48 + 1);
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_ERR_FORMAT, p);
    free(big);
    /* shorter than the header, and empty */
    p = tp("short.u8bin");
    spit(p, hdr, 5);
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_ERR_FORMAT, p);
    EXPECT_MSG("truncated");
    p = tp("empty.ibin");
    spit(p, hdr, 0);
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_ERR_FORMAT, p);
    /* huge header values do not overflow */
    put32le(hdr, 0xffffffffu);
    put32le(hdr + 4, 0xffffffffu);
    p = tp("huge.f16bin");
    spit(p, hdr, 8);
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_ERR_FORMAT, p);
    /* zero rows */
    put32le(hdr, 0);
    put32le(hdr + 4, 7);
    p = tp("zero.fbin");
    spit(p, hdr, 8);
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_OK, NULL);
    CHECK(r.rows == 0 && r.cols == 7, "zero rows");
    ann_matrix_release(&r);

    /* dtype the file cannot hold */
    ann_matrix mi = make(3, 4, ANN_DTYPE_I32), md = make(3, 4, ANN_DTYPE_F64);
    p = tp("wrong.fbin");
    EXPECT(ann_vectors_write(p, &mi, NULL), ANN_ERR_UNSUPPORTED, p);
    p = tp("wrong.ibin");
    EXPECT(ann_vectors_write(p, &m, NULL), ANN_ERR_UNSUPPORTED, p);
    ann_write_opts wo;
    ann_write_opts_init(&wo);
    wo.format = ANN_VFMT_FBIN;
    p = tp("f64.dat");
    EXPECT(ann_vectors_write(p, &md, &wo), ANN_ERR_UNSUPPORTED, p);
    /* explicit format with an unknown extension writes the matrix dtype */
    p = tp("ints.dat");
    EXPECT(ann_vectors_write(p, &mi, &wo), ANN_OK, NULL);
    ann_read_opts ro;
    ann_read_opts_init(&ro);
    ro.format = ANN_VFMT_FBIN;
    EXPECT(ann_vectors_read(p, &ro, &r), ANN_OK, NULL);   /* read back as f32 (no extension) */
    CHECK(r.dtype == ANN_DTYPE_F32 && r.rows == 3 && r.cols == 4 && memcmp(r.data, mi.data, 48) == 0,
          "bin with explicit format");
    ann_matrix_release(&r);
    /* a strided view is written row by row */
    ann_matrix view = m;
    view.rows = 2;
    view.cols = 2;
    p = tp("strided.fbin");
    EXPECT(ann_vectors_write(p, &view, NULL), ANN_OK, NULL);
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_OK, NULL);
    CHECK(r.rows == 2 && r.cols == 2 && val(&r, 1, 1) == val(&m, 1, 1) && val(&r, 1, 0) == val(&m, 1, 0),
          "strided write");
    ann_matrix_release(&r);
    /* device matrices are refused */
    ann_matrix dev = m;
    dev.loc = ANN_LOC_DEVICE;
    EXPECT(ann_vectors_write(tp("dev.fbin"), &dev, NULL), ANN_ERR_INVALID_ARG, "dev.fbin");
    ann_matrix_release(&mi);
    ann_matrix_release(&md);
    ann_matrix_release(&m);
}

static void test_texmex(void)
{
    ann_matrix mf = make(20, 8, ANN_DTYPE_F32), mi = make(20, 8, ANN_DTYPE_I32), mb = make(20, 8, ANN_DTYPE_U8);
    roundtrip(tp("a.fvecs"), &mf, ANN_VFMT_FVECS);
    roundtrip(tp("a.ivecs"), &mi, ANN_VFMT_IVECS);
    roundtrip(tp("a.bvecs"), &mb, ANN_VFMT_BVECS);
    range_errors(tp("a.fvecs"), tp("a.fvecs"), 20);
    range_errors(tp("a.bvecs"), tp("a.bvecs"), 20);

    size_t len;
    unsigned char *b = slurp(tp("a.fvecs"), &len);
    CHECK(b && len == 20 * (4 + 32) && b[0] == 8 && memcmp(b + 4, mf.data, 32) == 0 && b[36] == 8, "fvecs layout");
    ann_matrix r;

    /* record 7 claims dimension 12 (size still a whole number of records) */
    const char *p = tp("dim7.fvecs");
    put32le(b + 7 * 36, 12);
    spit(p, b, len);
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_ERR_FORMAT, p);
    EXPECT_MSG("record 7 has dimension 12, expected 8");
    /* a slice that avoids record 7 reads fine */
    EXPECT(read_range(p, 0, 7, &r), ANN_OK, NULL);
    CHECK(same_rows(&r, &mf, 0), "slice before the bad record");
    ann_matrix_release(&r);
    put32le(b + 7 * 36, 8);

    /* record 7 really has 12 dimensions: the size is not a multiple */
    unsigned char *odd = malloc(len + 16);
    memcpy(odd, b, 7 * 36);
    put32le(odd + 7 * 36, 12);
    memset(odd + 7 * 36 + 4, 0, 48);
    memcpy(odd + 8 * 36 + 16, b + 8 * 36, len - 8 * 36);
    p = tp("odd.fvecs");
    spit(p, odd, len + 16);
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_ERR_FORMAT, p);
    EXPECT_MSG("record 7 has dimension 12, expected 8");
    ann_vectors_info info;
    EXPECT(ann_vectors_probe(p, ANN_VFMT_AUTO, &info), ANN_ERR_FORMAT, p);
    free(odd);

    /* truncated last record */
    p = tp("trunc.fvecs");
    spit(p, b, len - 3);
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_ERR_FORMAT, p);
    EXPECT_MSG("truncated");
    /* negative / zero dimension */
    unsigned char neg[8];
    put32le(neg, 0xfffffff0u);
    p = tp("neg.ivecs");
    spit(p, neg, 8);
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_ERR_FORMAT, p);
    p = tp("tiny.bvecs");
    spit(p, neg, 2);
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_ERR_FORMAT, p);
    /* empty file: no vectors */
    p = tp("empty.fvecs");
    spit(p, neg, 0);
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_OK, NULL);
    CHECK(r.rows == 0, "empty fvecs");
    ann_matrix_release(&r);
    free(b);

    /* wrong dtype for the format */
    EXPECT(ann_vectors_write(tp("x.fvecs"), &mi, NULL), ANN_ERR_UNSUPPORTED, "x.fvecs");
    EXPECT(ann_vectors_write(tp("x.ivecs"), &mf, NULL), ANN_ERR_UNSUPPORTED, "x.ivecs");
    EXPECT(ann_vectors_write(tp("x.bvecs"), &mi, NULL), ANN_ERR_UNSUPPORTED, "x.bvecs");
    ann_matrix_release(&mf);
    ann_matrix_release(&mi);
    ann_matrix_release(&mb);
}

/* Write an npy file with a hand-made header (version @p major) and @p data. */
static void write_npy(const char *path, int major, const char *dict, const void *data, size_t n)
{
    unsigned char buf[4096];
    const size_t pre = major == 1 ? 10 : 12;
    size_t dl = strlen(dict);
    size_t total = ((pre + dl + 1 + 63) / 64) * 64;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major;
    buf[7] = 0;
    const size_t hlen = total - pre;
    if (major == 1) {
        buf[8] = (unsigned char)hlen;
        buf[9] = (unsigned char)(hlen >> 8);
    } else {
        put32le(buf + 8, (uint32_t)hlen);
    }
    memcpy(buf + pre, dict, dl);
    memset(buf + pre + dl, ' ', total - pre - dl - 1);
    buf[total - 1] = '\n';
    memcpy(buf + total, data, n);
    spit(path, buf, total + n);
}

static void test_npy(void)
{
    static const ann_dtype all[] = {ANN_DTYPE_F32, ANN_DTYPE_F16, ANN_DTYPE_I8,  ANN_DTYPE_U8,
                                    ANN_DTYPE_I32, ANN_DTYPE_U32, ANN_DTYPE_I64, ANN_DTYPE_F64};
    for (size_t k = 0; k < 8; k++) {
        char name[32];
        snprintf(name, sizeof name, "m_%s.npy", ann_dtype_name(all[k]));
        ann_matrix m = make(11, 3, all[k]);
        roundtrip(tp(name), &m, ANN_VFMT_NPY);
        ann_matrix_release(&m);
    }
    range_errors(tp("m_f32.npy"), tp("m_f32.npy"), 11);

    /* what we write: version 1.0, data at a multiple of 64, NumPy's header text */
    size_t len;
    unsigned char *b = slurp(tp("m_f32.npy"), &len);
    const size_t hlen = b ? (size_t)b[8] | ((size_t)b[9] << 8) : 0;
    CHECK(b && memcmp(b, "\x93NUMPY\x01\x00", 8) == 0 && (10 + hlen) % 64 == 0 && b[10 + hlen - 1] == '\n' &&
              len == 10 + hlen + 11 * 3 * 4,
          "npy v1 layout");
    static const char npy_dict[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (11, 3), }";
    CHECK(b && memcmp(b + 10, npy_dict, sizeof npy_dict - 1) == 0 && b[10 + sizeof npy_dict - 1] == ' ',
          "npy header text: %.70s", b ? (const char *)b + 10 : "");
    free(b);

    /* versions 2.0 and 3.0, 1-D and 3-D shapes, big-endian, double quotes */
    float v[24];
    for (int i = 0; i < 24; i++)
        v[i] = (float)i * 1.5f;
    ann_matrix r;
    const char *p = tp("v2.npy");
    write_npy(p, 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 6), }", v, sizeof v);
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_OK, NULL);
    CHECK(r.rows == 4 && r.cols == 6 && r.dtype == ANN_DTYPE_F32 && memcmp(r.data, v, sizeof v) == 0, "npy v2");
    ann_matrix_release(&r);
    p = tp("v3.npy");
    write_npy(p, 3, "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2, 3, 4)}", v, sizeof v);
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_OK, NULL);
    CHECK(r.rows == 2 && r.cols == 12 && memcmp(r.data, v, sizeof v) == 0, "npy v3, 3-D");
    ann_matrix_release(&r);
    p = tp("1d.npy");
    write_npy(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (24,), }", v, sizeof v);
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_OK, NULL);
    CHECK(r.rows == 24 && r.cols == 1 && memcmp(r.data, v, sizeof v) == 0, "npy 1-D");
    ann_matrix_release(&r);
    p = tp("order.npy");   /* keys in another order, no trailing comma */
    write_npy(p, 1, "{'shape': (6, 4), 'fortran_order': False, 'descr': '<f4'}", v, sizeof v);
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_OK, NULL);
    CHECK(r.rows == 6 && r.cols == 4, "npy key order");
    ann_matrix_release(&r);
    unsigned char be[sizeof v];
    for (int i = 0; i < 24; i++) {
        uint32_t w;
        memcpy(&w, &v[i], 4);
        w = __builtin_bswap32(w);
        memcpy(be + 4 * i, &w, 4);
    }
    p = tp("be.npy");
    write_npy(p, 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (4, 6), }", be, sizeof be);
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_OK, NULL);
    CHECK(r.rows == 4 && memcmp(r.data, v, sizeof v) == 0, "npy big-endian swapped");
    ann_matrix_release(&r);
    p = tp("bool.npy");
    write_npy(p, 1, "{'descr': '|b1', 'fortran_order': False, 'shape': (2, 3), }", "\1\0\1\0\0\1", 6);
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_OK, NULL);
    CHECK(r.dtype == ANN_DTYPE_U8 && r.rows == 2 && memcmp(r.data, "\1\0\1\0\0\1", 6) == 0, "npy bool");
    ann_matrix_release(&r);

    /* errors */
    p = tp("magic.npy");
    write_npy(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 6), }", v, sizeof v);
    b = slurp(p, &len);
    b[1] = 'X';
    spit(p, b, len);
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_ERR_FORMAT, p);   /* .npy extension, magic wrong */
    EXPECT_MSG("bad magic");
    free(b);
    p = tp("fortran.npy");
    write_npy(p, 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (4, 6), }", v, sizeof v);
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_ERR_UNSUPPORTED, p);
    EXPECT_MSG("Fortran");
    p = tp("short.npy");
    write_npy(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 6), }", v, sizeof v - 4);
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_ERR_FORMAT, p);
    EXPECT_MSG("does not match header");
    ann_vectors_info info;
    EXPECT(ann_vectors_probe(p, ANN_VFMT_AUTO, &info), ANN_ERR_FORMAT, p);
    p = tp("complex.npy");
    write_npy(p, 1, "{'descr': '<c8', 'fortran_order': False, 'shape': (3, 4), }", v, sizeof v);
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_ERR_UNSUPPORTED, p);
    p = tp("struct.npy");
    write_npy(p, 1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3, 4), }", v, sizeof v);
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_ERR_UNSUPPORTED, p);
    p = tp("v9.npy");
    write_npy(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 6), }", v, sizeof v);
    b = slurp(p, &len);
    b[6] = 9;
    spit(p, b, len);
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_ERR_VERSION, p);
    free(b);
    p = tp("garbled.npy");
    write_npy(p, 1, "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (4, 6), }", v, sizeof v);
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_ERR_FORMAT, p);
    p = tp("noshape.npy");
    write_npy(p, 1, "{'descr': '<f4', 'fortran_order': False}", v, sizeof v);
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_ERR_FORMAT, p);
    EXPECT_MSG("shape");
    p = tp("hlen.npy");   /* header length past the end of the file */
    spit(p, "\x93NUMPY\x01\x00\xff\x7f{", 11);
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_ERR_FORMAT, p);
    EXPECT_MSG("truncated");
    p = tp("tiny.npy");
    spit(p, "\x93NUM", 4);
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_ERR_FORMAT, p);
}

/* Encode @p n values of idx type @p type big-endian into @p out; returns bytes written. */
static size_t idx_file(unsigned char *out, unsigned type, unsigned rank, const uint32_t *dims, const void *data,
                       size_t esize, size_t n)
{
    out[0] = out[1] = 0;
    out[2] = (unsigned char)type;
    out[3] = (unsigned char)rank;
    size_t o = 4;
    for (unsigned i = 0; i < rank; i++, o += 4)
        put32be(out + o, dims[i]);
    const unsigned char *d = data;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < esize; k++)
            out[o + i * esize + k] = d[i * esize + esize - 1 - k];   /* host little-endian -> big-endian */
    return o + n * esize;
}

static void gz_spit(const char *path, const void *b, size_t len)
{
    gzFile gz = gzopen(path, "wb");
    if (!gz || gzwrite(gz, b, (unsigned)len) != (int)len)
        fprintf(stderr, "cannot gzip %s\n", path);
    if (gz)
        gzclose(gz);
}

static void test_idx(void)
{
    /* images: 10 x 3 x 4 u8 */
    unsigned char px[120];
    for (int i = 0; i < 120; i++)
        px[i] = (unsigned char)(i * 2 + 1);
    unsigned char buf[2048];
    const uint32_t dims[3] = {10, 3, 4};
    size_t n = idx_file(buf, 0x08, 3, dims, px, 1, 120);
    const char *plain = tp("train-images-idx3-ubyte");
    spit(plain, buf, n);
    const char *gz = tp("train-images-idx3-ubyte.gz");
    gz_spit(gz, buf, n);
    const char *renamed = tp("images.dat.gz");   /* detected by magic */
    gz_spit(renamed, buf, n);
    const char *paths[3] = {plain, gz, renamed};
    for (int k = 0; k < 3; k++) {
        ann_matrix r;
        EXPECT(ann_vectors_read(paths[k], NULL, &r), ANN_OK, NULL);
        CHECK(r.dtype == ANN_DTYPE_U8 && r.rows == 10 && r.cols == 12 && memcmp(r.data, px, 120) == 0, "idx %s", paths[k]);
        ann_matrix_release(&r);
        EXPECT(read_range(paths[k], 4, 7, &r), ANN_OK, NULL);
        CHECK(r.rows == 3 && memcmp(r.data, px + 48, 36) == 0, "idx range %s", paths[k]);
        ann_matrix_release(&r);
        ann_vectors_info info;
        EXPECT(ann_vectors_probe(paths[k], ANN_VFMT_AUTO, &info), ANN_OK, NULL);
        CHECK(info.format == ANN_VFMT_IDX && info.rows == 10 && info.cols == 12 && info.dtype == ANN_DTYPE_U8,
              "idx probe %s", paths[k]);
        range_errors(paths[k], paths[k], 10);
    }
    /* labels: rank 1 */
    const uint32_t ldims[1] = {6};
    n = idx_file(buf, 0x08, 1, ldims, "\0\1\2\3\4\5", 1, 6);
    const char *labels = tp("t10k-labels-idx1-ubyte.gz");
    gz_spit(labels, buf, n);
    ann_matrix r;
    EXPECT(ann_vectors_read(labels, NULL, &r), ANN_OK, NULL);
    CHECK(r.rows == 6 && r.cols == 1 && ((uint8_t *)r.data)[5] == 5, "labels");
    ann_matrix_release(&r);

    /* every element type, big-endian: i8, i16 -> i32, i32, f32, f64 */
    const int8_t i8[4] = {-128, -1, 0, 127};
    const int16_t i16[4] = {-32768, -2, 300, 32767};
    const int32_t i32[4] = {INT32_MIN, -5, 70000, INT32_MAX};
    const float f32[4] = {-1.5f, 0.0f, 3.25e10f, 1e-30f};
    const double f64[4] = {-1e300, 0.1, 2.5, 1e-300};
    const uint32_t d22[2] = {2, 2};
    const struct { unsigned type; const void *data; size_t es; ann_dtype t; const char *name; } types[] = {
        {0x09, i8, 1, ANN_DTYPE_I8, "i8.idx"},    {0x0B, i16, 2, ANN_DTYPE_I32, "i16.idx"},
        {0x0C, i32, 4, ANN_DTYPE_I32, "i32.idx"}, {0x0D, f32, 4, ANN_DTYPE_F32, "f32.idx"},
        {0x0E, f64, 8, ANN_DTYPE_F64, "f64.idx"},
    };
    for (size_t k = 0; k < 5; k++) {
        n = idx_file(buf, types[k].type, 2, d22, types[k].data, types[k].es, 4);
        const char *p = tp(types[k].name);
        spit(p, buf, n);
        EXPECT(ann_vectors_read(p, NULL, &r), ANN_OK, NULL);
        bool ok = r.dtype == types[k].t && r.rows == 2 && r.cols == 2;
        for (int i = 0; ok && i < 4; i++) {
            double want = types[k].type == 0x09   ? i8[i]
                          : types[k].type == 0x0B ? i16[i]
                          : types[k].type == 0x0C ? i32[i]
                          : types[k].type == 0x0D ? f32[i]
                                                  : f64[i];
            ok = val(&r, i / 2, i % 2) == want;
        }
        CHECK(ok, "idx type 0x%02x", types[k].type);
        ann_matrix_release(&r);
    }

    /* errors */
    n = idx_file(buf, 0x08, 3, dims, px, 1, 120);
    const char *p = tp("trunc.idx");
    spit(p, buf, n - 1);
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_ERR_FORMAT, p);
    EXPECT_MSG("truncated");
    EXPECT(read_range(p, 9, 10, &r), ANN_ERR_FORMAT, p);
    p = tp("trunc.idx.gz");   /* gzip stream of a truncated file */
    gz_spit(p, buf, n - 10);
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_ERR_FORMAT, p);
    {   /* a cut gzip stream */
        gz_spit(tp("whole.gz"), buf, n);
        size_t gl;
        unsigned char *g = slurp(tp("whole.gz"), &gl);
        p = tp("cut-idx3-ubyte.gz");
        spit(p, g, gl - 12);
        EXPECT(ann_vectors_read(p, NULL, &r), ANN_ERR_FORMAT, p);
        /* corrupt deflate data */
        for (size_t i = 12; i < gl - 8; i++)
            g[i] ^= 0x55;
        p = tp("corrupt-idx3-ubyte.gz");
        spit(p, g, gl);
        EXPECT(ann_vectors_read(p, NULL, &r), ANN_ERR_FORMAT, p);
        free(g);
    }
    p = tp("extra.idx");
    buf[n] = 0;
    spit(p, buf, n + 1);
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_ERR_FORMAT, p);
    EXPECT_MSG("continues");
    unsigned char bad[16] = {0, 0, 0x07, 1, 0, 0, 0, 1, 9};
    p = tp("type.idx");
    spit(p, bad, 9);
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_ERR_FORMAT, p);
    EXPECT_MSG("type");
    bad[2] = 0x08;
    bad[3] = 0;
    p = tp("rank0.idx");
    spit(p, bad, 9);
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_ERR_FORMAT, p);
    p = tp("magic.idx");
    spit(p, "\1\2\3\4\5\6\7\0", 8);
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_ERR_FORMAT, p);
    EXPECT_MSG("not an idx file");
    /* idx cannot be written */
    ann_matrix m = make(2, 2, ANN_DTYPE_U8);
    EXPECT(ann_vectors_write(tp("out.idx"), &m, NULL), ANN_ERR_UNSUPPORTED, "out.idx");
    ann_matrix_release(&m);
}

static void test_text(void)
{
    const char *p = tp("a.txt");
    spit_text(p, "\xEF\xBB\xBF# a comment\n"
                 "1 2 3\n"
                 "\n"
                 "   # indented comment\n"
                 "4,5,6\n"
                 "7\t8\t9\r\n"
                 "  10 ,  11,12  # trailing comment\n"
                 "-1.5e3, nan, inf,\n"
                 "0x10 1e-3 -0\n");
    ann_matrix r;
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_OK, NULL);
    CHECK(r.dtype == ANN_DTYPE_F32 && r.rows == 6 && r.cols == 3, "text shape %lld x %lld", (long long)r.rows,
          (long long)r.cols);
    if (r.rows == 6) {
        CHECK(val(&r, 0, 0) == 1 && val(&r, 1, 1) == 5 && val(&r, 2, 2) == 9 && val(&r, 3, 0) == 10 &&
                  val(&r, 3, 2) == 12 && val(&r, 4, 0) == -1500 && isnan(val(&r, 4, 1)) && isinf(val(&r, 4, 2)) &&
                  val(&r, 5, 0) == 16 && (float)val(&r, 5, 1) == 1e-3f,
              "text values");
    }
    ann_matrix_release(&r);
    EXPECT(read_range(p, 1, 3, &r), ANN_OK, NULL);
    CHECK(r.rows == 2 && val(&r, 0, 0) == 4 && val(&r, 1, 0) == 7, "text range");
    ann_matrix_release(&r);
    range_errors(p, p, 6);
    ann_vectors_info info;
    EXPECT(ann_vectors_probe(p, ANN_VFMT_AUTO, &info), ANN_OK, NULL);
    CHECK(info.format == ANN_VFMT_TEXT && info.rows == 6 && info.cols == 3, "text probe");

    /* ragged rows name the line */
    p = tp("ragged.tsv");
    spit_text(p, "# header\n1\t2\t3\n4\t5\t6\n\n7\t8\n");
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_ERR_FORMAT, p);
    EXPECT_MSG("line 5 has 2 values, expected 3");
    EXPECT(ann_vectors_probe(p, ANN_VFMT_AUTO, &info), ANN_ERR_FORMAT, p);
    p = tp("word.csv");
    spit_text(p, "1,2\n3,abc\n");
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_ERR_FORMAT, p);
    EXPECT_MSG("line 2: 'abc' is not a number");
    p = tp("glued.csv");
    spit_text(p, "1,2x\n");
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_ERR_FORMAT, p);
    p = tp("emptyfield.csv");
    spit_text(p, "1,,2\n");
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_ERR_FORMAT, p);
    EXPECT_MSG("empty field");
    p = tp("binary.txt");
    spit(p, "1 2\n\0\0\n", 7);
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_ERR_FORMAT, p);
    /* text_cols fixes the column count */
    p = tp("cols.txt");
    spit_text(p, "1 2 3\n4 5 6\n");
    ann_read_opts o;
    ann_read_opts_init(&o);
    o.text_cols = 4;
    EXPECT(ann_vectors_read(p, &o, &r), ANN_ERR_FORMAT, p);
    EXPECT_MSG("line 1 has 3 values, expected 4");
    o.text_cols = 3;
    EXPECT(ann_vectors_read(p, &o, &r), ANN_OK, NULL);
    ann_matrix_release(&r);
    /* only comments: zero rows */
    p = tp("none.txt");
    spit_text(p, "# nothing\n\n");
    EXPECT(ann_vectors_read(p, NULL, &r), ANN_OK, NULL);
    CHECK(r.rows == 0, "no rows");
    ann_matrix_release(&r);

    /* writing: f32 round-trips exactly with 9 digits; integers print as integers */
    ann_matrix m = make(9, 5, ANN_DTYPE_F32);
    roundtrip(tp("m.tsv"), &m, ANN_VFMT_TEXT);
    ann_matrix_release(&m);
    static const ann_dtype ints[] = {ANN_DTYPE_I8, ANN_DTYPE_U8, ANN_DTYPE_I32, ANN_DTYPE_U32, ANN_DTYPE_I64,
                                     ANN_DTYPE_F16, ANN_DTYPE_F64};
    for (size_t k = 0; k < sizeof ints / sizeof ints[0]; k++) {
        m = make(4, 3, ints[k]);
        p = tp("ints.txt");
        EXPECT(ann_vectors_write(p, &m, NULL), ANN_OK, NULL);
        EXPECT(ann_vectors_read(p, NULL, &r), ANN_OK, NULL);
        bool ok = r.rows == 4 && r.cols == 3;
        for (int64_t i = 0; ok && i < 4; i++)
            for (int64_t j = 0; ok && j < 3; j++)
                ok = (float)val(&m, i, j) == (float)val(&r, i, j);
        CHECK(ok, "text values of %s", ann_dtype_name(ints[k]));
        ann_matrix_release(&r);
        if (ints[k] == ANN_DTYPE_I64) {
            size_t len;
            char *t = (char *)slurp(p, &len);
            CHECK(t && strstr(t, "-61728394506150\t") == t, "i64 printed exactly: %.40s", t ? t : "");
            CHECK(t && strchr(t, 'e') == NULL && strchr(t, '.') == NULL, "no exponent for integers");
            free(t);
        }
        ann_matrix_release(&m);
    }
    /* precision option */
    m = make(1, 1, ANN_DTYPE_F64);
    ((double *)m.data)[0] = 3.14159265358979;
    ann_write_opts wo;
    ann_write_opts_init(&wo);
    wo.text_precision = 3;
    p = tp("prec.txt");
    EXPECT(ann_vectors_write(p, &m, &wo), ANN_OK, NULL);
    size_t len;
    char *t = (char *)slurp(p, &len);
    CHECK(t && strcmp(t, "3.14\n") == 0, "precision 3: '%s'", t ? t : "");
    free(t);
    ann_matrix_release(&m);
}

/* Run @p fn with file @p in on stdin (or NULL) and stdout going to @p out (or NULL). */
static void with_stdio(const char *in, const char *out, void (*fn)(void))
{
    fflush(stdout);
    int sin = dup(0), sout = dup(1);
    if (in) {
        int fd = open(in, O_RDONLY);
        dup2(fd, 0);
        close(fd);
        clearerr(stdin);
    }
    if (out) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        close(fd);
    }
    fn();
    fflush(stdout);
    dup2(sin, 0);
    dup2(sout, 1);
    close(sin);
    close(sout);
    clearerr(stdin);
}

static void stdin_text(void)
{
    ann_matrix r;
    EXPECT(ann_vectors_read("-", NULL, &r), ANN_OK, NULL);
    CHECK(r.rows == 2 && r.cols == 2 && val(&r, 1, 1) == 4, "text from stdin");
    ann_matrix_release(&r);
}

static void stdin_fbin(void)
{
    ann_read_opts o;
    ann_read_opts_init(&o);
    o.format = ANN_VFMT_FBIN;
    o.row_begin = 1;
    ann_matrix r;
    EXPECT(ann_vectors_read("-", &o, &r), ANN_OK, NULL);
    CHECK(r.rows == 4 && r.cols == 3 && r.dtype == ANN_DTYPE_F32, "fbin from stdin");
    ann_matrix_release(&r);
}

static void stdout_text(void)
{
    ann_matrix m = make(2, 2, ANN_DTYPE_I32);
    EXPECT(ann_vectors_write("-", &m, NULL), ANN_OK, NULL);
    ann_matrix_release(&m);
}

static void test_stdio(void)
{
    spit_text(tp("in.txt"), "1 2\n3 4\n");
    with_stdio(tp("in.txt"), NULL, stdin_text);
    ann_matrix m = make(5, 3, ANN_DTYPE_F32);
    ann_vectors_write(tp("in.fbin"), &m, NULL);
    ann_matrix_release(&m);
    with_stdio(tp("in.fbin"), NULL, stdin_fbin);
    with_stdio(NULL, tp("out.txt"), stdout_text);
    size_t len;
    char *t = (char *)slurp(tp("out.txt"), &len);
    CHECK(t && strcmp(t, "-1000000000\t-999899997\n-999799994\t-999699991\n") == 0, "text to stdout: '%s'",
          t ? t : "");
    free(t);
}

/* ------------------------------- HDF5 -------------------------------- */

static void test_hdf5(void)
{
    static const ann_dtype all[] = {ANN_DTYPE_F32, ANN_DTYPE_F16, ANN_DTYPE_I8,  ANN_DTYPE_U8,
                                    ANN_DTYPE_I32, ANN_DTYPE_U32, ANN_DTYPE_I64, ANN_DTYPE_F64};
    char spec[800];
    for (size_t k = 0; k < 8; k++) {
        char name[32];
        snprintf(name, sizeof name, "m_%s.hdf5", ann_dtype_name(all[k]));
        snprintf(spec, sizeof spec, "%s:data", tp(name));
        ann_matrix m = make(13, 4, all[k]);
        roundtrip(spec, &m, ANN_VFMT_HDF5);
        ann_matrix_release(&m);
    }

    /* an ann-benchmarks file: create train with the distance attribute, append the rest */
    const char *f = tp("ab.hdf5");
    ann_matrix train = make(50, 6, ANN_DTYPE_F32), test = make(7, 6, ANN_DTYPE_F32);
    ann_matrix nb = make(7, 10, ANN_DTYPE_I32), dist = make(7, 10, ANN_DTYPE_F32);
    ann_write_opts wo;
    ann_write_opts_init(&wo);
    wo.hdf5_distance = "euclidean";
    snprintf(spec, sizeof spec, "%s:train", f);
    EXPECT(ann_vectors_write(spec, &train, &wo), ANN_OK, NULL);
    ann_write_opts_init(&wo);
    wo.hdf5_append = true;
    snprintf(spec, sizeof spec, "%s:test", f);
    EXPECT(ann_vectors_write(spec, &test, &wo), ANN_OK, NULL);
    snprintf(spec, sizeof spec, "%s:neighbors", f);
    EXPECT(ann_vectors_write(spec, &nb, &wo), ANN_OK, NULL);
    snprintf(spec, sizeof spec, "%s:distances", f);
    EXPECT(ann_vectors_write(spec, &dist, &wo), ANN_OK, NULL);

    ann_vectors_info info;
    EXPECT(ann_vectors_probe(f, ANN_VFMT_AUTO, &info), ANN_OK, NULL);
    CHECK(info.format == ANN_VFMT_HDF5 && strcmp(info.hdf5_distance, "euclidean") == 0, "distance '%s'",
          info.hdf5_distance);
    CHECK(strstr(info.hdf5_datasets, "train") && strstr(info.hdf5_datasets, "test") &&
              strstr(info.hdf5_datasets, "neighbors") && strstr(info.hdf5_datasets, "distances"),
          "datasets '%s'", info.hdf5_datasets);
    snprintf(spec, sizeof spec, "%s:neighbors", f);
    EXPECT(ann_vectors_probe(spec, ANN_VFMT_AUTO, &info), ANN_OK, NULL);
    CHECK(info.dtype == ANN_DTYPE_I32 && info.rows == 7 && info.cols == 10, "neighbors probe");
    ann_matrix r;
    snprintf(spec, sizeof spec, "%s:train", f);
    EXPECT(read_range(spec, 10, 20, &r), ANN_OK, NULL);
    CHECK(r.rows == 10 && same_rows(&r, &train, 10), "train slice");
    ann_matrix_release(&r);
    range_errors(spec, f, 50);
    snprintf(spec, sizeof spec, "%s:/test", f);   /* absolute dataset path */
    EXPECT(ann_vectors_read(spec, NULL, &r), ANN_OK, NULL);
    CHECK(same(&r, &test), "test");
    ann_matrix_release(&r);

    /* the appends kept the attribute; an existing dataset needs replace */
    snprintf(spec, sizeof spec, "%s:test", f);
    EXPECT(ann_vectors_write(spec, &nb, &wo), ANN_ERR_INVALID_ARG, f);
    EXPECT_MSG("already exists");
    wo.hdf5_replace = true;
    wo.hdf5_distance = "angular";
    EXPECT(ann_vectors_write(spec, &nb, &wo), ANN_OK, NULL);
    EXPECT(ann_vectors_read(spec, NULL, &r), ANN_OK, NULL);
    CHECK(same(&r, &nb), "replaced test");
    ann_matrix_release(&r);
    EXPECT(ann_vectors_probe(f, ANN_VFMT_AUTO, &info), ANN_OK, NULL);
    CHECK(strcmp(info.hdf5_distance, "angular") == 0, "distance replaced: '%s'", info.hdf5_distance);
    ann_write_opts_init(&wo);
    wo.hdf5_append = true;
    snprintf(spec, sizeof spec, "%s:test", f);
    wo.hdf5_replace = true;
    EXPECT(ann_vectors_write(spec, &test, &wo), ANN_OK, NULL);
    /* without append the file is replaced by a new one */
    const char *f2 = tp("fresh.hdf5");
    snprintf(spec, sizeof spec, "%s:a", f2);
    ann_vectors_write(spec, &test, NULL);
    snprintf(spec, sizeof spec, "%s:b", f2);
    ann_vectors_write(spec, &test, NULL);
    EXPECT(ann_vectors_probe(f2, ANN_VFMT_AUTO, &info), ANN_OK, NULL);
    CHECK(strcmp(info.hdf5_datasets, "b") == 0 && info.hdf5_distance[0] == '\0', "new file: '%s'", info.hdf5_datasets);
    /* append to a missing file creates it; nested names create groups */
    const char *f3 = tp("appended.h5");
    snprintf(spec, sizeof spec, "%s:grp/inner", f3);
    EXPECT(ann_vectors_write(spec, &test, &wo), ANN_OK, NULL);
    EXPECT(ann_vectors_read(spec, NULL, &r), ANN_OK, NULL);
    CHECK(same(&r, &test), "nested dataset");
    ann_matrix_release(&r);

    /* errors: missing dataset, no name, not HDF5, non-dataset, name on a non-HDF5 file */
    snprintf(spec, sizeof spec, "%s:tset", f);
    EXPECT(ann_vectors_read(spec, NULL, &r), ANN_ERR_FORMAT, f);
    EXPECT_MSG("no dataset 'tset' (datasets: ");
    EXPECT_MSG("neighbors");
    EXPECT(ann_vectors_probe(spec, ANN_VFMT_AUTO, &info), ANN_ERR_FORMAT, f);
    EXPECT(ann_vectors_read(f, NULL, &r), ANN_ERR_FORMAT, f);
    EXPECT_MSG("train");
    snprintf(spec, sizeof spec, "%s:grp", f3);
    EXPECT(ann_vectors_read(spec, NULL, &r), ANN_ERR_FORMAT, f3);
    snprintf(spec, sizeof spec, "%s:grp/nothing/deeper", f3);
    EXPECT(ann_vectors_read(spec, NULL, &r), ANN_ERR_FORMAT, f3);
    const char *fake = tp("fake.hdf5");
    spit_text(fake, "this is not HDF5 at all\n");
    snprintf(spec, sizeof spec, "%s:train", fake);
    EXPECT(ann_vectors_read(spec, NULL, &r), ANN_ERR_FORMAT, fake);
    EXPECT_MSG("not an HDF5 file");
    EXPECT(ann_vectors_write(spec, &train, &wo), ANN_ERR_FORMAT, fake);   /* append to a non-HDF5 file */
    {   /* truncated and corrupted copies of a good file */
        size_t len;
        unsigned char *b = slurp(f, &len);
        const char *cut = tp("cut.hdf5");
        spit(cut, b, len - 200);
        snprintf(spec, sizeof spec, "%s:train", cut);
        EXPECT(ann_vectors_read(spec, NULL, &r), ANN_ERR_FORMAT, cut);
        const char *bent = tp("bent.hdf5");
        for (size_t i = 8; i < 96 && i < len; i++)   /* superblock after the signature */
            b[i] ^= 0xA5;
        spit(bent, b, len);
        snprintf(spec, sizeof spec, "%s:train", bent);
        EXPECT(ann_vectors_read(spec, NULL, &r), ANN_ERR_FORMAT, bent);
        EXPECT(ann_vectors_probe(bent, ANN_VFMT_AUTO, &info), ANN_ERR_FORMAT, bent);
        free(b);
    }
    const char *missing = tp("missing.hdf5");
    snprintf(spec, sizeof spec, "%s:train", missing);
    EXPECT(ann_vectors_read(spec, NULL, &r), ANN_ERR_IO, missing);
    EXPECT(ann_vectors_write(f, &train, NULL), ANN_ERR_INVALID_ARG, f);   /* writing needs a name */
    snprintf(spec, sizeof spec, "%s:x", tp("data.fbin"));
    ann_vectors_write(tp("data.fbin"), &train, NULL);
    EXPECT(ann_vectors_read(spec, NULL, &r), ANN_ERR_INVALID_ARG, "data.fbin");
    snprintf(spec, sizeof spec, "%s/nodir/x.hdf5:train", tmpdir);
    EXPECT(ann_vectors_write(spec, &train, NULL), ANN_ERR_IO, "nodir/x.hdf5");

    ann_matrix_release(&train);
    ann_matrix_release(&test);
    ann_matrix_release(&nb);
    ann_matrix_release(&dist);
}

/* Fixtures our writer never makes, written with the HDF5 C API: int16, 1-D, 3-D, chunked+deflate,
 * big-endian, scalar, strings, a fixed-length ASCII 'distance' as old ann-benchmarks files have. */
static void test_hdf5_fixtures(void)
{
    const char *f = tp("fixtures.hdf5");
    hid_t file = H5Fcreate(f, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    int16_t s16[6] = {-32768, -1, 0, 1, 300, 32767};
    hsize_t d2[2] = {3, 2}, d1[1] = {6}, d3[3] = {2, 3, 2};
    hid_t sp2 = H5Screate_simple(2, d2, NULL), sp1 = H5Screate_simple(1, d1, NULL), sp3 = H5Screate_simple(3, d3, NULL);
    hid_t ds = H5Dcreate2(file, "i16", H5T_STD_I16LE, sp2, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_INT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, s16);
    H5Dclose(ds);
    float fl[12];
    for (int i = 0; i < 12; i++)
        fl[i] = (float)i - 5.5f;
    ds = H5Dcreate2(file, "one_d", H5T_IEEE_F32BE, sp1, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, fl);
    H5Dclose(ds);
    ds = H5Dcreate2(file, "three_d", H5T_IEEE_F32LE, sp3, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, fl);
    H5Dclose(ds);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hsize_t chunk[2] = {2, 2};
    H5Pset_chunk(dcpl, 2, chunk);
    H5Pset_deflate(dcpl, 6);
    hsize_t d6[2] = {6, 2};
    hid_t sp6 = H5Screate_simple(2, d6, NULL);
    ds = H5Dcreate2(file, "chunked", H5T_IEEE_F32LE, sp6, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, fl);
    H5Dclose(ds);
    H5Pclose(dcpl);
    hid_t scal = H5Screate(H5S_SCALAR);
    ds = H5Dcreate2(file, "scalar", H5T_STD_I32LE, scal, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int one = 1;
    H5Dwrite(ds, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, &one);
    H5Dclose(ds);
    hid_t st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, 4);
    ds = H5Dcreate2(file, "strings", st, sp1, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(ds);
    ds = H5Dcreate2(file, "u64", H5T_STD_U64LE, sp1, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(ds);
    H5Tset_size(st, 9);   /* fixed-length, NUL-padded ASCII like numpy bytes 'S9' */
    H5Tset_strpad(st, H5T_STR_NULLPAD);
    hid_t a = H5Acreate2(file, "distance", st, scal, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, st, "euclidean");
    H5Aclose(a);
    H5Tclose(st);
    H5Sclose(scal);
    H5Sclose(sp1);
    H5Sclose(sp2);
    H5Sclose(sp3);
    H5Sclose(sp6);
    H5Fclose(file);

    char spec[800];
    ann_matrix r;
    snprintf(spec, sizeof spec, "%s:i16", f);
    EXPECT(ann_vectors_read(spec, NULL, &r), ANN_OK, NULL);
    CHECK(r.dtype == ANN_DTYPE_I32 && r.rows == 3 && r.cols == 2 && val(&r, 0, 0) == -32768 && val(&r, 2, 1) == 32767,
          "int16 widened");
    ann_matrix_release(&r);
    snprintf(spec, sizeof spec, "%s:one_d", f);
    EXPECT(ann_vectors_read(spec, NULL, &r), ANN_OK, NULL);
    CHECK(r.dtype == ANN_DTYPE_F32 && r.rows == 6 && r.cols == 1 && memcmp(r.data, fl, 24) == 0, "1-D big-endian");
    ann_matrix_release(&r);
    snprintf(spec, sizeof spec, "%s:three_d", f);
    EXPECT(read_range(spec, 1, 2, &r), ANN_OK, NULL);
    CHECK(r.rows == 1 && r.cols == 6 && memcmp(r.data, fl + 6, 24) == 0, "3-D slice");
    ann_matrix_release(&r);
    snprintf(spec, sizeof spec, "%s:chunked", f);
    EXPECT(read_range(spec, 1, 5, &r), ANN_OK, NULL);
    CHECK(r.rows == 4 && r.cols == 2 && memcmp(r.data, fl + 2, 32) == 0, "chunked deflate slice");
    ann_matrix_release(&r);
    snprintf(spec, sizeof spec, "%s:scalar", f);
    EXPECT(ann_vectors_read(spec, NULL, &r), ANN_ERR_FORMAT, f);
    EXPECT_MSG("scalar");
    snprintf(spec, sizeof spec, "%s:strings", f);
    EXPECT(ann_vectors_read(spec, NULL, &r), ANN_ERR_UNSUPPORTED, f);
    snprintf(spec, sizeof spec, "%s:u64", f);
    EXPECT(ann_vectors_read(spec, NULL, &r), ANN_ERR_UNSUPPORTED, f);
    ann_vectors_info info;
    EXPECT(ann_vectors_probe(f, ANN_VFMT_AUTO, &info), ANN_OK, NULL);
    CHECK(strcmp(info.hdf5_distance, "euclidean") == 0, "fixed-length distance '%s'", info.hdf5_distance);
}

/* The h5py cross-check (skipped when /usr/bin/python3 has no h5py). */
static void test_h5py(void)
{
    if (access("/usr/bin/python3", X_OK) != 0 ||
        system("/usr/bin/python3 -c 'import h5py, numpy' >/dev/null 2>&1") != 0) {
        fprintf(stderr, "h5py not available: skipping the h5py cross-check\n");
        return;
    }
    /* our file, read by h5py */
    const char *f = tp("for_h5py.hdf5");
    char spec[800];
    ann_matrix train = make(30, 4, ANN_DTYPE_F32), nb = make(5, 3, ANN_DTYPE_I64), h = make(2, 2, ANN_DTYPE_F16);
    ann_write_opts wo;
    ann_write_opts_init(&wo);
    wo.hdf5_distance = "euclidean";
    snprintf(spec, sizeof spec, "%s:train", f);
    ann_vectors_write(spec, &train, &wo);
    wo.hdf5_append = true;
    wo.hdf5_distance = NULL;
    snprintf(spec, sizeof spec, "%s:neighbors", f);
    ann_vectors_write(spec, &nb, &wo);
    snprintf(spec, sizeof spec, "%s:half", f);
    ann_vectors_write(spec, &h, &wo);
    const char *py = tp("check.py");
    char script[2048];
    snprintf(script, sizeof script,
             "import h5py, numpy as np, sys\n"
             "f = h5py.File(sys.argv[1], 'r')\n"
             "d = f.attrs['distance']\n"
             "assert isinstance(d, str) and d == 'euclidean', repr(d)\n"
             "t = f['train']\n"
             "assert t.dtype == np.float32 and t.shape == (30, 4), (t.dtype, t.shape)\n"
             "assert t.chunks is None and t.compression is None\n"
             "k = np.arange(120, dtype=np.float64)\n"
             "assert np.array_equal(t[:].ravel(), ((k * 0.1 - 3.3) / 7.0).astype(np.float32) / np.float32(1)) or "
             "np.allclose(t[:].ravel(), (k * 0.1 - 3.3) / 7.0, rtol=1e-6)\n"
             "n = f['neighbors']\n"
             "assert n.dtype == np.int64 and n.shape == (5, 3) and n[0, 0] == -50 * 1234567890123\n"
             "assert f['half'].dtype == np.float16 and f['half'][0, 0] == -20.0\n"
             "assert sorted(f.keys()) == ['half', 'neighbors', 'train']\n"
             "g = h5py.File(sys.argv[2], 'w')\n"
             "g.create_dataset('train', data=np.arange(12, dtype=np.float64).reshape(4, 3))\n"
             "g.create_dataset('neighbors', data=np.arange(8, dtype=np.int64).reshape(2, 4))\n"
             "g.create_dataset('test', data=np.ones((2, 3), dtype=np.float16))\n"
             "g.create_dataset('flags', data=np.array([[True, False], [False, True]]))\n"
             "g.attrs['distance'] = 'angular'\n"
             "g.close()\n");
    spit_text(py, script);
    const char *theirs = tp("from_h5py.hdf5");
    char cmd[2400];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s' '%s'", py, f, theirs);
    CHECK(system(cmd) == 0, "h5py cannot read our file as ann-benchmarks does (see the Python error above)");

    /* h5py's file, read by us */
    ann_vectors_info info;
    EXPECT(ann_vectors_probe(theirs, ANN_VFMT_AUTO, &info), ANN_OK, NULL);
    CHECK(strcmp(info.hdf5_distance, "angular") == 0, "h5py distance '%s'", info.hdf5_distance);
    ann_matrix r;
    snprintf(spec, sizeof spec, "%s:train", theirs);
    EXPECT(ann_vectors_read(spec, NULL, &r), ANN_OK, NULL);
    CHECK(r.dtype == ANN_DTYPE_F64 && r.rows == 4 && r.cols == 3 && val(&r, 3, 2) == 11, "h5py float64");
    ann_matrix_release(&r);
    snprintf(spec, sizeof spec, "%s:neighbors", theirs);
    EXPECT(ann_vectors_read(spec, NULL, &r), ANN_OK, NULL);
    CHECK(r.dtype == ANN_DTYPE_I64 && val(&r, 1, 3) == 7, "h5py int64");
    ann_matrix_release(&r);
    snprintf(spec, sizeof spec, "%s:test", theirs);
    EXPECT(ann_vectors_read(spec, NULL, &r), ANN_OK, NULL);
    CHECK(r.dtype == ANN_DTYPE_F16 && val(&r, 1, 2) == 1.0, "h5py float16");
    ann_matrix_release(&r);
    snprintf(spec, sizeof spec, "%s:flags", theirs);
    EXPECT(ann_vectors_read(spec, NULL, &r), ANN_OK, NULL);
    CHECK(r.cols == 2 && val(&r, 0, 0) == 1 && val(&r, 0, 1) == 0 && val(&r, 1, 1) == 1, "h5py bool");
    ann_matrix_release(&r);
    ann_matrix_release(&train);
    ann_matrix_release(&nb);
    ann_matrix_release(&h);
}

static void test_misc(void)
{
    ann_matrix r;
    const char *missing = tp("nothing.fbin");
    EXPECT(ann_vectors_read(missing, NULL, &r), ANN_ERR_IO, missing);
    EXPECT_MSG("No such file");
    ann_vectors_info info;
    EXPECT(ann_vectors_probe(missing, ANN_VFMT_AUTO, &info), ANN_ERR_IO, missing);
    const char *unknown = tp("mystery.dat");
    spit_text(unknown, "xyz");
    EXPECT(ann_vectors_read(unknown, NULL, &r), ANN_ERR_FORMAT, unknown);
    EXPECT(ann_vectors_read(tmpdir, NULL, &r), ANN_ERR_IO, tmpdir);
    EXPECT_MSG("is a directory");
    ann_read_opts o;
    ann_read_opts_init(&o);
    o.format = ANN_VFMT_FBIN;
    EXPECT(ann_vectors_read(tmpdir, &o, &r), ANN_ERR_IO, tmpdir);
    ann_matrix m = make(2, 2, ANN_DTYPE_F32);
    EXPECT(ann_vectors_write(tp("out.unknown"), &m, NULL), ANN_ERR_INVALID_ARG, "out.unknown");
    EXPECT(ann_vectors_write(tp("nodir/out.fbin"), &m, NULL), ANN_ERR_IO, "nodir/out.fbin");
    ann_matrix_release(&m);

    /* an annkit container is not a vector file, but probe describes it */
    ann_container_writer *w;
    ann_container_writer_create(ANN_KIND_INDEX, ANN_ALGO_BRUTE_FORCE, ANN_METRIC_SQEUCLIDEAN, ANN_DTYPE_U8, 77, 9, &w);
    const char *idx = tp("index.ann");
    ann_container_write(w, idx, 1);
    ann_container_writer_free(w);
    EXPECT(ann_vectors_read(idx, NULL, &r), ANN_ERR_FORMAT, idx);
    EXPECT(ann_vectors_probe(idx, ANN_VFMT_AUTO, &info), ANN_OK, NULL);
    CHECK(info.format == ANN_VFMT_ANNKIT && info.rows == 77 && info.cols == 9 && info.dtype == ANN_DTYPE_U8,
          "annkit probe");
    ann_vformat f;
    EXPECT(ann_vformat_detect(idx, &f, NULL), ANN_OK, NULL);
    CHECK(f == ANN_VFMT_ANNKIT, "annkit detected");

    /* a larger file: 20000 x 128 through fbin (mapped) and fvecs (copied) */
    m = make(20000, 128, ANN_DTYPE_F32);
    EXPECT(ann_vectors_write(tp("big.fbin"), &m, NULL), ANN_OK, NULL);
    EXPECT(ann_vectors_write(tp("big.fvecs"), &m, NULL), ANN_OK, NULL);
    EXPECT(ann_vectors_read(tp("big.fbin"), NULL, &r), ANN_OK, NULL);
    CHECK(same(&r, &m), "big fbin");
    ann_matrix_release(&r);
    EXPECT(ann_vectors_read(tp("big.fvecs"), NULL, &r), ANN_OK, NULL);
    CHECK(same(&r, &m), "big fvecs");
    ann_matrix_release(&r);
    ann_matrix_release(&m);
}

int main(void)
{
    if (test_dir_make("vectors") != 0)
        return 1;
    test_names();
    test_spec_split();
    test_bin();
    test_texmex();
    test_npy();
    test_idx();
    test_text();
    test_stdio();
    test_hdf5();
    test_hdf5_fixtures();
    test_h5py();
    test_misc();
    return test_dir_finish("test_vectors");
}
