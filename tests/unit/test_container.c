/*
 * test_container.c - unit tests of the annkit container (formats/container.c,
 * formats/container.md), CRC-32C (formats/crc32c.c) and the meta helpers.
 *
 * Makes its files in a fresh directory under $TMPDIR (or /tmp) and
 * removes it.  Every corrupt-file case asserts the exact status and that
 * ann_last_error() names the file.  Exit status 0 = all passed, 1 = a
 * failure (each one printed to stderr).
 */
#include "testfs.h"

#include "ann/container.h"
#include "crc32c.h"

static void tpath(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s", tp(name));
}

/* ----------------------------- file helpers -------------------------- */

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t rd64(const unsigned char *p)
{
    return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32);
}

static void wr16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void wr32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void wr64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Recompute the header CRC (container.md 2) after editing header fields. */
static void fix_header_crc(unsigned char *b)
{
    wr32(b + 60, 0);
    wr32(b + 60, ann_crc32c(0, b, 64));
}

/* Recompute the table CRC after editing entries. */
static void fix_table_crc(unsigned char *b)
{
    const uint64_t t = rd64(b + 48);
    const uint32_t n = rd32(b + 56);
    wr32(b + t + 64 * (uint64_t)n, ann_crc32c(0, b + t, 64 * (size_t)n));
}

/* Offset of the table entry of section @p name in file bytes @p b, or 0. */
static size_t entry_of(const unsigned char *b, const char *name)
{
    const uint64_t t = rd64(b + 48);
    const uint32_t n = rd32(b + 56);
    for (uint32_t i = 0; i < n; i++)
        if (strcmp((const char *)b + t + 64 * i, name) == 0)
            return (size_t)(t + 64 * i);
    return 0;
}

/* ----------------------------- test data ----------------------------- */

#define N_CENTERS 1000
#define N_BIG (1 << 20)
#define N_NOISE 5000

static float centers[N_CENTERS];
static uint32_t *big;     /* compressible */
static unsigned char noise[N_NOISE];   /* incompressible */
static const char meta_text[] = "n_lists=1024\nkmeans_n_iters=20\r\n# comment\n\nname=fm=x\nneg=-42\nbad=12x\n";

static void make_data(void)
{
    uint64_t s = 88172645463325252ull;
    for (int i = 0; i < N_CENTERS; i++)
        centers[i] = (float)i * 0.25f - 7.0f;
    big = malloc(sizeof *big * N_BIG);
    for (int i = 0; i < N_BIG; i++)
        big[i] = (uint32_t)(i % 1000);
    for (int i = 0; i < N_NOISE; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        noise[i] = (unsigned char)(s >> 24);
    }
}

/* Write the standard test container to @p path. */
static ann_status write_standard(const char *path, int threads)
{
    ann_container_writer *w = NULL;
    ann_status st = ann_container_writer_create(ANN_KIND_INDEX, ANN_ALGO_IVF_FLAT, ANN_METRIC_INNER_PRODUCT,
                                                ANN_DTYPE_F32, 1234, 56, &w);
    if (st != ANN_OK)
        return st;
    st = ann_container_add(w, "meta", meta_text, sizeof meta_text - 1, ANN_CODEC_NONE);
    if (st == ANN_OK)
        st = ann_container_add(w, "centers", centers, sizeof centers, ANN_CODEC_NONE);
    if (st == ANN_OK)
        st = ann_container_add(w, "big", big, sizeof *big * N_BIG, ANN_CODEC_ZSTD);
    if (st == ANN_OK)
        st = ann_container_add(w, "noise", noise, sizeof noise, ANN_CODEC_ZSTD);
    if (st == ANN_OK)
        st = ann_container_add(w, "empty", NULL, 0, ANN_CODEC_ZSTD);
    if (st == ANN_OK)
        st = ann_container_write(w, path, threads);
    ann_container_writer_free(w);
    return st;
}

/* ------------------------------- tests ------------------------------- */

static void test_crc(void)
{
    const char *check = "123456789";
    CHECK(ann_crc32c_sw(0, check, 9) == 0xE3069283u, "sw check value %08x", ann_crc32c_sw(0, check, 9));
    CHECK(ann_crc32c_hw(0, check, 9) == 0xE3069283u, "hw check value %08x", ann_crc32c_hw(0, check, 9));
    CHECK(ann_crc32c(0, check, 9) == 0xE3069283u, "dispatch check value");
    CHECK(ann_crc32c(0, "", 0) == 0, "empty crc");
    /* RFC 3720 B.4: 32 bytes of zeros -> 0x8A9136AA, of 0xFF -> 0x62A8AB43 */
    unsigned char z[32], ff[32];
    memset(z, 0, sizeof z);
    memset(ff, 0xff, sizeof ff);
    CHECK(ann_crc32c(0, z, 32) == 0x8A9136AAu, "zeros %08x", ann_crc32c(0, z, 32));
    CHECK(ann_crc32c(0, ff, 32) == 0x62A8AB43u, "ones %08x", ann_crc32c(0, ff, 32));
    /* sw == hw at every length and alignment; chaining */
    unsigned char buf[1100];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(i * 131 + 7);
    int bad = 0;
    for (size_t off = 0; off < 9; off++)
        for (size_t len = 0; len + off <= sizeof buf; len += 37)
            if (ann_crc32c_sw(0, buf + off, len) != ann_crc32c_hw(0, buf + off, len))
                bad++;
    CHECK(bad == 0, "%d sw/hw mismatches", bad);
    const uint32_t whole = ann_crc32c(0, buf, sizeof buf);
    CHECK(ann_crc32c(ann_crc32c(0, buf, 333), buf + 333, sizeof buf - 333) == whole, "chaining");
    CHECK(ann_crc32c_sw(ann_crc32c_hw(0, buf, 100), buf + 100, sizeof buf - 100) == whole, "mixed chaining");
    fprintf(stderr, "crc32c: hardware %s\n", ann_crc32c_has_hw() ? "yes" : "no");
}

static void test_names(void)
{
    static const char *const names[] = {"brute_force", "ivf_flat", "ivf_sq", "ivf_pq", "cagra", "hnsw", "nn_descent"};
    for (int i = 0; i < 7; i++) {
        ann_algo a;
        EXPECT(ann_algo_parse(names[i], &a), ANN_OK, NULL);
        CHECK(a == (ann_algo)(i + 1), "%s parsed to %d", names[i], (int)a);
        CHECK(strcmp(ann_algo_name(a), names[i]) == 0, "name of %d is %s", (int)a, ann_algo_name(a));
    }
    ann_algo a;
    EXPECT(ann_algo_parse("IVF-Flat", &a), ANN_OK, NULL);
    CHECK(a == ANN_ALGO_IVF_FLAT, "dash spelling");
    EXPECT(ann_algo_parse("kdtree", &a), ANN_ERR_INVALID_ARG, "kdtree");
    EXPECT(ann_algo_parse("none", &a), ANN_ERR_INVALID_ARG, "none");
    CHECK(strcmp(ann_algo_name((ann_algo)99), "?") == 0, "unknown algo name");
    CHECK(strcmp(ann_algo_name(ANN_ALGO_NONE), "none") == 0, "none name");
}

static void test_meta(void)
{
    char v[64];
    const size_t n = sizeof meta_text - 1;
    CHECK(ann_meta_get(meta_text, n, "n_lists", v, sizeof v) && strcmp(v, "1024") == 0, "n_lists '%s'", v);
    CHECK(ann_meta_get(meta_text, n, "kmeans_n_iters", v, sizeof v) && strcmp(v, "20") == 0, "crlf '%s'", v);
    CHECK(ann_meta_get(meta_text, n, "name", v, sizeof v) && strcmp(v, "fm=x") == 0, "value with '=' '%s'", v);
    CHECK(!ann_meta_get(meta_text, n, "n_list", v, sizeof v), "prefix must not match");
    CHECK(!ann_meta_get(meta_text, n, "# comment", v, sizeof v), "comment");
    CHECK(!ann_meta_get(meta_text, n, "missing", NULL, 0), "missing");
    CHECK(ann_meta_get(meta_text, n, "n_lists", NULL, 0), "presence only");
    CHECK(ann_meta_get(meta_text, n, "n_lists", v, 3) && strcmp(v, "10") == 0, "truncated value '%s'", v);
    CHECK(!ann_meta_get(meta_text, 5, "n_lists", v, sizeof v), "length respected");
    int64_t x = 0;
    EXPECT(ann_meta_get_i64(meta_text, n, "n_lists", "f.idx", &x), ANN_OK, NULL);
    CHECK(x == 1024, "i64 %lld", (long long)x);
    EXPECT(ann_meta_get_i64(meta_text, n, "neg", "f.idx", &x), ANN_OK, NULL);
    CHECK(x == -42, "neg %lld", (long long)x);
    EXPECT(ann_meta_get_i64(meta_text, n, "bad", "f.idx", &x), ANN_ERR_FORMAT, "f.idx");
    EXPECT_MSG("bad");
    EXPECT(ann_meta_get_i64(meta_text, n, "nothing", "f.idx", &x), ANN_ERR_FORMAT, "f.idx");
    EXPECT_MSG("nothing");
}

static void test_roundtrip(int threads)
{
    char path[600];
    tpath(path, sizeof path, "std.idx");
    EXPECT(write_standard(path, threads), ANN_OK, NULL);

    ann_container_info pi;
    EXPECT(ann_container_probe(path, &pi), ANN_OK, NULL);
    CHECK(pi.major == 1 && pi.minor == 0 && pi.kind == ANN_KIND_INDEX && pi.algo == ANN_ALGO_IVF_FLAT &&
              pi.metric == ANN_METRIC_INNER_PRODUCT && pi.dtype == ANN_DTYPE_F32 && pi.rows == 1234 && pi.dim == 56 &&
              pi.n_sections == 5,
          "probe fields");
    struct stat sb;
    stat(path, &sb);
    CHECK(pi.file_size == (uint64_t)sb.st_size, "file size");

    ann_container *c = NULL;
    EXPECT(ann_container_open(path, &c), ANN_OK, NULL);
    if (!c)
        return;
    const ann_container_info *h = ann_container_header(c);
    CHECK(h->rows == 1234 && h->dim == 56 && h->n_sections == 5 && h->algo == ANN_ALGO_IVF_FLAT, "open header");
    CHECK(strcmp(ann_container_path(c), path) == 0, "path");
    CHECK(ann_container_has(c, "centers") && !ann_container_has(c, "nothing"), "has");

    const void *p;
    uint64_t size;
    EXPECT(ann_container_get(c, "centers", &p, &size), ANN_OK, NULL);
    CHECK(size == sizeof centers && memcmp(p, centers, sizeof centers) == 0, "centers bytes");
    CHECK(((uintptr_t)p % 64) == 0, "raw section is 64-byte aligned in the mapping");
    EXPECT(ann_container_get(c, "big", &p, &size), ANN_OK, NULL);
    CHECK(size == sizeof *big * N_BIG && memcmp(p, big, (size_t)size) == 0, "big bytes");
    CHECK(((uintptr_t)p % 64) == 0, "decoded section is 64-byte aligned");
    EXPECT(ann_container_get(c, "noise", &p, &size), ANN_OK, NULL);
    CHECK(size == sizeof noise && memcmp(p, noise, sizeof noise) == 0, "noise bytes");
    EXPECT(ann_container_get(c, "meta", &p, &size), ANN_OK, NULL);
    CHECK(size == sizeof meta_text - 1 && memcmp(p, meta_text, (size_t)size) == 0, "meta bytes");
    EXPECT(ann_container_get(c, "empty", &p, &size), ANN_OK, NULL);
    CHECK(size == 0, "empty size");
    /* second fetch returns the same pointer */
    const void *p1, *p2;
    ann_container_get(c, "big", &p1, NULL);
    ann_container_get(c, "big", &p2, NULL);
    CHECK(p1 == p2, "cached");

    EXPECT(ann_container_get_sized(c, "centers", sizeof centers, &p), ANN_OK, NULL);
    EXPECT(ann_container_get_sized(c, "centers", 12, &p), ANN_ERR_FORMAT, path);
    EXPECT_MSG("centers");
    EXPECT(ann_container_get(c, "lists", &p, &size), ANN_ERR_FORMAT, path);
    EXPECT_MSG("'lists'");

    const char *name;
    uint64_t stored, raw;
    ann_codec codec;
    EXPECT(ann_container_section_info(c, 2, &name, &stored, &raw, &codec), ANN_OK, NULL);
    CHECK(strcmp(name, "big") == 0 && codec == ANN_CODEC_ZSTD && stored < raw / 10 && raw == sizeof *big * N_BIG,
          "big is compressed: %s %llu/%llu codec %d", name, (unsigned long long)stored, (unsigned long long)raw,
          (int)codec);
    EXPECT(ann_container_section_info(c, 3, &name, &stored, &raw, &codec), ANN_OK, NULL);
    CHECK(strcmp(name, "noise") == 0 && codec == ANN_CODEC_NONE && stored == raw, "incompressible stays raw");
    EXPECT(ann_container_section_info(c, 4, &name, &stored, &raw, &codec), ANN_OK, NULL);
    CHECK(codec == ANN_CODEC_NONE && stored == 0, "empty section raw");
    EXPECT(ann_container_section_info(c, 5, &name, &stored, &raw, &codec), ANN_ERR_INVALID_ARG, path);

    /* concurrent first fetches */
    ann_container_close(c);
    EXPECT(ann_container_open(path, &c), ANN_OK, NULL);
    int errs = 0;
#pragma omp parallel for reduction(+ : errs)
    for (int i = 0; i < 16; i++) {
        const void *q;
        uint64_t s;
        if (ann_container_get(c, (i & 1) ? "big" : "centers", &q, &s) != ANN_OK)
            errs++;
        else if ((i & 1) ? memcmp(q, big, (size_t)s) != 0 : memcmp(q, centers, (size_t)s) != 0)
            errs++;
    }
    CHECK(errs == 0, "concurrent fetch errors %d", errs);
    ann_container_close(c);
    ann_container_close(NULL);

    /* layout rules of container.md 4: table at 64, sections 64-aligned, in order */
    size_t len;
    unsigned char *b = slurp(path, &len);
    CHECK(b && memcmp(b, "\x89" "ANNKIT\n", 8) == 0, "magic");
    CHECK(b && rd32(b + 12) == 0x01020304u && b[12] == 0x04, "endian tag little-endian");
    CHECK(b && rd64(b + 48) == 64, "table offset");
    for (int i = 0; b && i < 5; i++) {
        const uint64_t off = rd64(b + 64 + 64 * i + 24);
        CHECK(off % 64 == 0, "section %d offset %llu", i, (unsigned long long)off);
    }
    free(b);
}

static void test_writer_errors(void)
{
    ann_container_writer *w = NULL;
    EXPECT(ann_container_writer_create(ANN_KIND_GRAPH, ANN_ALGO_NN_DESCENT, ANN_METRIC_SQEUCLIDEAN, ANN_DTYPE_F32, 10,
                                       4, &w), ANN_OK, NULL);
    EXPECT(ann_container_add(w, "a_name_that_is_too_long_", "x", 1, ANN_CODEC_NONE), ANN_ERR_INVALID_ARG,
           "a_name_that_is_too_long_");
    EXPECT(ann_container_add(w, "a_name_of_23_bytes_ok__", "x", 1, ANN_CODEC_NONE), ANN_OK, NULL);
    EXPECT(ann_container_add(w, "", "x", 1, ANN_CODEC_NONE), ANN_ERR_INVALID_ARG, NULL);
    EXPECT(ann_container_add(w, "graph", "abcd", 4, ANN_CODEC_NONE), ANN_OK, NULL);
    EXPECT(ann_container_add(w, "graph", "abcd", 4, ANN_CODEC_NONE), ANN_ERR_INVALID_ARG, "graph");
    EXPECT(ann_container_add(w, "nodata", NULL, 4, ANN_CODEC_NONE), ANN_ERR_INVALID_ARG, "nodata");
    EXPECT(ann_container_add(w, "codec", "x", 1, (ann_codec)7), ANN_ERR_INVALID_ARG, "codec");
    char path[600];
    tpath(path, sizeof path, "no/such/dir/g.knn");
    EXPECT(ann_container_write(w, path, 1), ANN_ERR_IO, path);
    /* without a meta section the writer adds an empty one */
    tpath(path, sizeof path, "g.knn");
    EXPECT(ann_container_write(w, path, 0), ANN_OK, NULL);
    ann_container_writer_free(w);
    ann_container_writer_free(NULL);
    ann_container *c = NULL;
    EXPECT(ann_container_open(path, &c), ANN_OK, NULL);
    if (c) {
        const void *p;
        uint64_t size = 99;
        CHECK(ann_container_has(c, "meta"), "meta added");
        EXPECT(ann_container_get(c, "meta", &p, &size), ANN_OK, NULL);
        CHECK(size == 0, "empty meta");
        EXPECT(ann_container_get_sized(c, "graph", 4, &p), ANN_OK, NULL);
        CHECK(memcmp(p, "abcd", 4) == 0, "graph bytes");
        CHECK(ann_container_header(c)->kind == ANN_KIND_GRAPH, "kind");
        ann_container_close(c);
    }
    EXPECT(ann_container_writer_create(ANN_KIND_INDEX, ANN_ALGO_BRUTE_FORCE, ANN_METRIC_SQEUCLIDEAN, ANN_DTYPE_F32,
                                       -1, 4, &w), ANN_ERR_INVALID_ARG, NULL);
    CHECK(w == NULL, "no writer on failure");
}

/* Open @p bytes written to a fresh file: returns the status, fetching @p fetch (if not NULL) after a successful open. */
static ann_status open_bytes(const char *name, const unsigned char *bytes, size_t len, const char *fetch,
                             char *path, size_t path_len)
{
    tpath(path, path_len, name);
    spit(path, bytes, len);
    ann_container *c = NULL;
    ann_status st = ann_container_open(path, &c);
    if (st == ANN_OK && fetch) {
        const void *p;
        uint64_t size;
        st = ann_container_get(c, fetch, &p, &size);
    }
    ann_container_close(c);
    return st;
}

static void test_corrupt(void)
{
    char good[600], path[600];
    tpath(good, sizeof good, "good.idx");
    if (write_standard(good, 1) != ANN_OK) {
        CHECK(0, "cannot write %s", good);
        return;
    }
    size_t len;
    unsigned char *orig = slurp(good, &len);
    unsigned char *b = malloc(len);
    const size_t e_centers = entry_of(orig, "centers"), e_big = entry_of(orig, "big"), e_noise = entry_of(orig, "noise");
    CHECK(e_centers && e_big && e_noise, "entries found");
    const uint64_t off_centers = rd64(orig + e_centers + 24), off_big = rd64(orig + e_big + 24);

#define RESET() memcpy(b, orig, len)

    RESET();
    b[1] = 'B';
    EXPECT(open_bytes("magic.idx", b, len, NULL, path, sizeof path), ANN_ERR_FORMAT, path);
    EXPECT_MSG("not an annkit file");
    {
        ann_container_info ci;
        EXPECT(ann_container_probe(path, &ci), ANN_ERR_FORMAT, path);
        EXPECT_MSG("not an annkit file");
    }
    /* a text file */
    EXPECT(open_bytes("text.idx", (const unsigned char *)"hello world\n", 12, NULL, path, sizeof path), ANN_ERR_FORMAT,
           path);
    EXPECT_MSG("not an annkit file");

    RESET();
    wr16(b + 8, 2);
    fix_header_crc(b);
    EXPECT(open_bytes("major.idx", b, len, NULL, path, sizeof path), ANN_ERR_VERSION, path);
    {
        ann_container_info ci;
        EXPECT(ann_container_probe(path, &ci), ANN_ERR_VERSION, path);
    }
    /* a future major version with a different layout: version reported, not checksum */
    RESET();
    wr16(b + 8, 3);
    EXPECT(open_bytes("major3.idx", b, len, NULL, path, sizeof path), ANN_ERR_VERSION, path);

    RESET();
    wr16(b + 10, 7);
    fix_header_crc(b);
    EXPECT(open_bytes("minor.idx", b, len, "big", path, sizeof path), ANN_OK, NULL);

    RESET();
    b[33] ^= 0x10;   /* a bit of rows */
    EXPECT(open_bytes("hdrcrc.idx", b, len, NULL, path, sizeof path), ANN_ERR_CHECKSUM, path);
    EXPECT_MSG("header checksum");

    RESET();
    wr32(b + 12, 0x04030201u);
    fix_header_crc(b);
    EXPECT(open_bytes("bigendian.idx", b, len, NULL, path, sizeof path), ANN_ERR_FORMAT, path);
    EXPECT_MSG("big-endian");
    RESET();
    wr32(b + 12, 0x11223344u);
    fix_header_crc(b);
    EXPECT(open_bytes("tag.idx", b, len, NULL, path, sizeof path), ANN_ERR_FORMAT, path);
    EXPECT_MSG("endianness");

    RESET();
    wr64(b + 32, (uint64_t)-5);
    fix_header_crc(b);
    EXPECT(open_bytes("negrows.idx", b, len, NULL, path, sizeof path), ANN_ERR_FORMAT, path);
    EXPECT_MSG("rows");

    /* flipped bit inside a raw section: open succeeds, the fetch fails */
    RESET();
    b[off_centers + 100] ^= 0x04;
    EXPECT(open_bytes("secbit.idx", b, len, NULL, path, sizeof path), ANN_OK, NULL);
    EXPECT(open_bytes("secbit.idx", b, len, "centers", path, sizeof path), ANN_ERR_CHECKSUM, path);
    EXPECT_MSG("'centers'");
    EXPECT(open_bytes("secbit.idx", b, len, "noise", path, sizeof path), ANN_OK, NULL);
    /* flipped bit inside a zstd section */
    RESET();
    b[off_big + 20] ^= 0x80;
    EXPECT(open_bytes("zbit.idx", b, len, "big", path, sizeof path), ANN_ERR_CHECKSUM, path);
    EXPECT_MSG("'big'");

    /* flipped bit in the table */
    RESET();
    b[e_centers + 30] ^= 0x01;
    EXPECT(open_bytes("tablebit.idx", b, len, NULL, path, sizeof path), ANN_ERR_CHECKSUM, path);
    EXPECT_MSG("table checksum");

    /* truncated: by one byte, inside the table, inside the header, empty */
    EXPECT(open_bytes("trunc1.idx", orig, len - 1, NULL, path, sizeof path), ANN_ERR_FORMAT, path);
    EXPECT_MSG("past the end of the file");
    EXPECT(open_bytes("trunc2.idx", orig, 100, NULL, path, sizeof path), ANN_ERR_FORMAT, path);
    EXPECT_MSG("section table");
    EXPECT(open_bytes("trunc3.idx", orig, 30, NULL, path, sizeof path), ANN_ERR_FORMAT, path);
    EXPECT_MSG("truncated");
    {
        ann_container_info ci;
        EXPECT(ann_container_probe(path, &ci), ANN_ERR_FORMAT, path);
        EXPECT_MSG("truncated");
    }
    EXPECT(open_bytes("trunc4.idx", orig, 0, NULL, path, sizeof path), ANN_ERR_FORMAT, path);

    /* section past the end of the file (the message quoted in the brief) */
    RESET();
    wr64(b + e_centers + 24, (uint64_t)len + 64 - (len % 64));
    fix_table_crc(b);
    EXPECT(open_bytes("pasteof.idx", b, len, NULL, path, sizeof path), ANN_ERR_FORMAT, path);
    EXPECT_MSG("section 'centers' ends at byte");
    EXPECT_MSG("past the end of the file");
    /* size overflow */
    RESET();
    wr64(b + e_centers + 32, UINT64_MAX - 10);
    wr64(b + e_centers + 40, UINT64_MAX - 10);
    fix_table_crc(b);
    EXPECT(open_bytes("overflow.idx", b, len, NULL, path, sizeof path), ANN_ERR_FORMAT, path);
    EXPECT_MSG("past the end");

    RESET();
    wr64(b + e_centers + 24, off_centers + 8);
    fix_table_crc(b);
    EXPECT(open_bytes("misaligned.idx", b, len, NULL, path, sizeof path), ANN_ERR_FORMAT, path);
    EXPECT_MSG("multiple of 64");

    RESET();
    wr64(b + e_centers + 24, 0);
    fix_table_crc(b);
    EXPECT(open_bytes("inheader.idx", b, len, NULL, path, sizeof path), ANN_ERR_FORMAT, path);
    EXPECT_MSG("header");

    RESET();
    wr64(b + e_centers + 24, 64);
    fix_table_crc(b);
    EXPECT(open_bytes("intable.idx", b, len, NULL, path, sizeof path), ANN_ERR_FORMAT, path);
    EXPECT_MSG("overlaps the section table");

    RESET();
    wr64(b + e_noise + 24, off_centers);
    fix_table_crc(b);
    EXPECT(open_bytes("overlap.idx", b, len, NULL, path, sizeof path), ANN_ERR_FORMAT, path);
    EXPECT_MSG("overlap");

    RESET();
    wr64(b + e_centers + 40, sizeof centers + 4);
    fix_table_crc(b);
    EXPECT(open_bytes("rawsize.idx", b, len, NULL, path, sizeof path), ANN_ERR_FORMAT, path);
    EXPECT_MSG("raw size");

    RESET();
    memcpy(b + e_noise, "centers\0", 8);
    fix_table_crc(b);
    EXPECT(open_bytes("dup.idx", b, len, NULL, path, sizeof path), ANN_ERR_FORMAT, path);
    EXPECT_MSG("twice");

    RESET();
    memset(b + e_noise, 'x', 24);
    fix_table_crc(b);
    EXPECT(open_bytes("noterm.idx", b, len, NULL, path, sizeof path), ANN_ERR_FORMAT, path);
    EXPECT_MSG("NUL");

    /* zstd frame whose content size differs from raw_size */
    RESET();
    wr64(b + e_big + 40, rd64(orig + e_big + 40) - 4);
    fix_table_crc(b);
    EXPECT(open_bytes("zraw.idx", b, len, NULL, path, sizeof path), ANN_OK, NULL);
    EXPECT(open_bytes("zraw.idx", b, len, "big", path, sizeof path), ANN_ERR_FORMAT, path);
    EXPECT_MSG("zstd");

    /* zstd section that is not a zstd frame (checksum made consistent) */
    RESET();
    {
        const uint64_t stored = rd64(b + e_big + 32);
        memset(b + off_big, 0x5a, 16);
        wr32(b + e_big + 52, ann_crc32c(0, b + off_big, (size_t)stored));
        fix_table_crc(b);
    }
    EXPECT(open_bytes("notzstd.idx", b, len, "big", path, sizeof path), ANN_ERR_FORMAT, path);
    EXPECT_MSG("zstd");

    RESET();
    wr32(b + e_noise + 48, 9);
    fix_table_crc(b);
    EXPECT(open_bytes("codec.idx", b, len, NULL, path, sizeof path), ANN_OK, NULL);
    EXPECT(open_bytes("codec.idx", b, len, "noise", path, sizeof path), ANN_ERR_FORMAT, path);
    EXPECT_MSG("codec");

    /* a table that claims more entries than the file holds */
    RESET();
    wr32(b + 56, 100000);
    fix_header_crc(b);
    EXPECT(open_bytes("ntable.idx", b, len, NULL, path, sizeof path), ANN_ERR_FORMAT, path);
    EXPECT_MSG("section table");
    RESET();
    wr64(b + 48, 8);
    fix_header_crc(b);
    EXPECT(open_bytes("tableoff.idx", b, len, NULL, path, sizeof path), ANN_ERR_FORMAT, path);

    /* trailing bytes after the last section are allowed (container.md 4) */
    {
        unsigned char *longer = calloc(1, len + 100);
        memcpy(longer, orig, len);
        EXPECT(open_bytes("trailing.idx", longer, len + 100, "big", path, sizeof path), ANN_OK, NULL);
        free(longer);
    }

    /* missing file, directory */
    tpath(path, sizeof path, "missing.idx");
    ann_container *c = NULL;
    EXPECT(ann_container_open(path, &c), ANN_ERR_IO, path);
    CHECK(c == NULL, "no container on failure");
    ann_container_info ci;
    EXPECT(ann_container_probe(path, &ci), ANN_ERR_IO, path);
    EXPECT(ann_container_open(tmpdir, &c), ANN_ERR_IO, tmpdir);

#undef RESET
    free(b);
    free(orig);
}

int main(void)
{
    if (test_dir_make("container") != 0)
        return 1;
    make_data();
    test_crc();
    test_names();
    test_meta();
    test_roundtrip(1);
    test_roundtrip(2);
    test_writer_errors();
    test_corrupt();
    free(big);
    return test_dir_finish("test_container");
}
