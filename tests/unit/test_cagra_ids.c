/*
 * test_cagra_ids.c - CAGRA indexes with a row -> id map (cuVS source
 * indices): a search returns exactly ids[row] of the search without the
 * map (sparse ids and a permutation), filters are over the ids (graph
 * search and the filtered brute force past 90 % filtered out) and never
 * return a filtered id, the map survives save/load (plain and zstd),
 * extend continues after the largest id, the cuVS version-5 file carries
 * the map as content_map bit 1 and a uint32 (rows,) array (byte layout,
 * byte-identical round trip, truncated / repeated / too large ids), and
 * the error paths of ann_index_set_ids.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ann/ann.h"
#include "index_internal.h"
#include "testutil.h"

#define N 2000
#define D 16
#define NQ 100
#define K 10

static char tmpdir[] = "/tmp/test_cagra_ids.XXXXXX";

static const char *tmp_path(const char *name)
{
    static char buf[4][256];
    static int slot;
    slot = (slot + 1) % 4;
    snprintf(buf[slot], sizeof buf[slot], "%s/%s", tmpdir, name);
    return buf[slot];
}

/* CPU, 2 threads. */
static ann_exec cpu_exec(void)
{
    ann_exec ex;
    ann_exec_init(&ex);
    ex.device = ANN_DEVICE_CPU;
    ex.n_threads = 2;
    return ex;
}

/* A CAGRA index (degree 16 from 32) of the first @p n rows of @p x; NULL after a CHECK on failure. */
static ann_index *build(const float *x, int64_t n)
{
    ann_cagra_params p;
    ann_cagra_params_init(&p);
    p.graph_degree = 16;
    p.intermediate_graph_degree = 32;
    ann_matrix xm = ann_matrix_view((void *)x, n, D, ANN_DTYPE_F32);
    ann_exec ex = cpu_exec();
    ann_index *ix = NULL;
    CHECK(ann_index_build(ANN_ALGO_CAGRA, &p, &xm, &ex, &ix) == ANN_OK, "build: %s", ann_last_error());
    return ix;
}

/* Search @p ix (filtered when bits is not NULL); false (after a CHECK) on error. */
static bool search(const ann_index *ix, const float *q, const uint32_t *bits, int64_t nbits, int64_t *ids,
                   float *dist)
{
    ann_matrix qm = ann_matrix_view((void *)q, NQ, D, ANN_DTYPE_F32);
    ann_exec ex = cpu_exec();
    ann_status st = bits ? ann_index_search_filtered(ix, NULL, &qm, K, bits, nbits, &ex, ids, dist)
                         : ann_index_search(ix, NULL, &qm, K, &ex, ids, dist);
    CHECK(st == ANN_OK, "search: %s", ann_last_error());
    return st == ANN_OK;
}

/* True when results (@p ids, @p dist) are those of @p rows, @p rdist mapped through @p map. */
static bool same_mapped(const int64_t *ids, const float *dist, const int64_t *rows, const float *rdist,
                        const int64_t *map)
{
    for (int i = 0; i < NQ * K; i++) {
        const int64_t want = rows[i] >= 0 ? map[rows[i]] : -1;
        if (ids[i] != want || dist[i] != rdist[i]) {
            fprintf(stderr, "  slot %d: id %lld (want %lld), distance %g (want %g)\n", i, (long long)ids[i],
                    (long long)want, (double)dist[i], (double)rdist[i]);
            return false;
        }
    }
    return true;
}

/* Bitset helpers (bit i of word i / 32; ids at or past nbits are not set). */
static void set_bit(uint32_t *bits, int64_t i) { bits[i >> 5] |= 1u << (i & 31); }
static bool get_bit(const uint32_t *bits, int64_t nbits, int64_t i)
{
    return i >= 0 && i < nbits && ((bits[i >> 5] >> (i & 31)) & 1u);
}

/* Log callback counting the switches to the filtered brute force. */
static int log_hits;
static void count_log(void *user, int level, const char *msg)
{
    (void)user;
    (void)level;
    if (strstr(msg, "filtered brute force"))
        log_hits++;
}

/* ------------------------------------------------------------------------ */

/* Sparse ids and a permutation: every result is ids[row] of the plain search. */
static void test_search_maps(const float *x, const float *q)
{
    ann_index *ix = build(x, N);
    if (!ix)
        return;
    int64_t *r = malloc(NQ * K * 8), *got = malloc(NQ * K * 8), *map = malloc(N * 8);
    float *rd = malloc(NQ * K * 4), *gd = malloc(NQ * K * 4);
    if (!search(ix, q, NULL, 0, r, rd))
        goto out;
    ann_index_info info;
    ann_index_get_info(ix, &info);
    CHECK(!info.has_ids && info.id_bound == N, "no map: has_ids %d, id_bound %lld", info.has_ids,
          (long long)info.id_bound);
    CHECK(ann_index_row_ids(ix) == NULL, "no map: row ids NULL");

    for (int64_t i = 0; i < N; i++)
        map[i] = 1000 + 7 * i;
    CHECK(ann_index_set_ids(ix, map) == ANN_OK, "set sparse ids: %s", ann_last_error());
    ann_index_get_info(ix, &info);
    CHECK(info.has_ids && info.id_bound == 1000 + 7 * (N - 1) + 1, "sparse: has_ids %d, id_bound %lld",
          info.has_ids, (long long)info.id_bound);
    if (search(ix, q, NULL, 0, got, gd))
        CHECK(same_mapped(got, gd, r, rd, map), "sparse ids: results are not ids[row]");

    /* a permutation (Fisher-Yates) */
    for (int64_t i = 0; i < N; i++)
        map[i] = i;
    for (int64_t i = N - 1; i > 0; i--) {
        int64_t j = (int64_t)(urand() * (double)(i + 1));
        int64_t t = map[i];
        map[i] = map[j];
        map[j] = t;
    }
    CHECK(ann_index_set_ids(ix, map) == ANN_OK, "set permutation: %s", ann_last_error());
    if (search(ix, q, NULL, 0, got, gd))
        CHECK(same_mapped(got, gd, r, rd, map), "permutation: results are not ids[row]");

    /* removing the map gives the plain search back */
    CHECK(ann_index_set_ids(ix, NULL) == ANN_OK, "remove the map");
    if (search(ix, q, NULL, 0, got, gd))
        CHECK(!memcmp(got, r, NQ * K * 8), "without the map: row numbers again");

    /* bad maps are refused and leave the index as it was */
    for (int64_t i = 0; i < N; i++)
        map[i] = 5 * i;
    map[1500] = 5 * 20;
    ann_status st = ann_index_set_ids(ix, map);
    CHECK(st == ANN_ERR_INVALID_ARG && strstr(ann_last_error(), "rows 20 and 1500 have the same id 100"),
          "duplicate ids: %d %s", (int)st, ann_last_error());
    map[1500] = -3;
    st = ann_index_set_ids(ix, map);
    CHECK(st == ANN_ERR_INVALID_ARG && strstr(ann_last_error(), "negative"), "negative id: %d %s", (int)st,
          ann_last_error());
    CHECK(ann_index_row_ids(ix) == NULL, "a refused map was kept");
out:
    free(r);
    free(got);
    free(map);
    free(rd);
    free(gd);
    ann_index_free(ix);
}

/*
 * Filters over ids: the id-mapped index with a bitset over ids gives
 * exactly the mapped results of the plain index with the corresponding
 * bitset over rows, for the graph search and for the filtered brute
 * force, and never returns a filtered (or unknown) id.
 */
static void test_filters(const float *x, const float *q)
{
    ann_index *plain = build(x, N);
    ann_index *ix = build(x, N);
    if (!plain || !ix)
        goto done;
    int64_t map[N];
    for (int64_t i = 0; i < N; i++)
        map[i] = 1000 + 7 * i;
    CHECK(ann_index_set_ids(ix, map) == ANN_OK, "set ids");
    const int64_t id_bits = 1000 + 7 * N;
    uint32_t *idf = calloc((size_t)(id_bits + 31) / 32, 4), *rowf = calloc((N + 31) / 32, 4);
    int64_t *r = malloc(NQ * K * 8), *got = malloc(NQ * K * 8);
    float *rd = malloc(NQ * K * 4), *gd = malloc(NQ * K * 4);

    for (int pass = 0; pass < 3; pass++) {
        memset(idf, 0, (size_t)(id_bits + 31) / 32 * 4);
        memset(rowf, 0, (N + 31) / 32 * 4);
        int64_t nbits = id_bits;
        for (int64_t v = 0; v < id_bits; v++) {
            const bool is_id = v >= 1000 && (v - 1000) % 7 == 0;
            const int64_t row = is_id ? (v - 1000) / 7 : -1;
            bool keep;
            if (pass == 0)
                keep = !is_id || row % 3 == 0;  /* a third of the rows; bits of unknown ids set too */
            else if (pass == 1)
                keep = !is_id || row < 60;      /* 97 % filtered out: the filtered brute force */
            else
                keep = true;                    /* all kept, but nbits cuts off the ids of rows >= 1200 */
            if (keep)
                set_bit(idf, v);
        }
        if (pass == 2)
            nbits = 1000 + 7 * 1200;
        for (int64_t row = 0; row < N; row++)
            if (get_bit(idf, nbits, map[row]))
                set_bit(rowf, row);
        ann_matrix qm = ann_matrix_view((void *)q, NQ, D, ANN_DTYPE_F32);
        ann_exec ex = cpu_exec();
        ex.log = count_log;
        log_hits = 0;
        CHECK(ann_index_search_filtered(plain, NULL, &qm, K, rowf, N, &ex, r, rd) == ANN_OK, "plain filtered");
        CHECK(ann_index_search_filtered(ix, NULL, &qm, K, idf, nbits, &ex, got, gd) == ANN_OK, "mapped filtered: %s",
              ann_last_error());
        CHECK(log_hits == (pass == 1 ? 2 : 0), "pass %d: %d brute-force switches logged", pass, log_hits);
        CHECK(same_mapped(got, gd, r, rd, map), "pass %d: filtered results are not ids[row] of the row filter",
              pass);
        int bad = 0, found = 0;
        for (int i = 0; i < NQ * K; i++) {
            if (got[i] < 0)
                continue;
            found++;
            const bool known = got[i] >= 1000 && (got[i] - 1000) % 7 == 0 && got[i] < 1000 + 7 * N;
            bad += !known || !get_bit(idf, nbits, got[i]);
        }
        CHECK(bad == 0 && found == NQ * K, "pass %d: %d filtered or unknown ids returned, %d of %d slots filled",
              pass, bad, found, NQ * K);
    }
    /* an empty filter over ids: nothing at all */
    memset(idf, 0, (size_t)(id_bits + 31) / 32 * 4);
    if (search(ix, q, idf, id_bits, got, gd)) {
        int filled = 0;
        for (int i = 0; i < NQ * K; i++)
            filled += got[i] != -1;
        CHECK(filled == 0, "an empty filter returned %d ids", filled);
    }
    /* a filter over row numbers (ids < 1000) allows nothing here */
    memset(idf, 0xff, (size_t)(id_bits + 31) / 32 * 4);
    if (search(ix, q, idf, 1000, got, gd))
        CHECK(got[0] == -1, "a filter of 1000 bits allowed id %lld", (long long)got[0]);
    free(idf);
    free(rowf);
    free(r);
    free(got);
    free(rd);
    free(gd);
done:
    ann_index_free(plain);
    ann_index_free(ix);
}

/* The map is saved as section 'ids' and comes back; an index without one has no such section. */
static void test_save_load(const float *x, const float *q)
{
    ann_index *ix = build(x, N);
    if (!ix)
        return;
    int64_t map[N];
    for (int64_t i = 0; i < N; i++)
        map[i] = 3 * (N - 1 - i) + 11;
    int64_t *a = malloc(NQ * K * 8), *b = malloc(NQ * K * 8);
    float *da = malloc(NQ * K * 4), *db = malloc(NQ * K * 4);
    const char *plain = tmp_path("plain.cagra");
    CHECK(ann_index_save(ix, plain, false, 2) == ANN_OK, "save without map");
    ann_container *c = NULL;
    if (ann_container_open(plain, &c) == ANN_OK) {
        CHECK(!ann_container_has(c, "ids"), "an index without a map has no ids section");
        ann_container_close(c);
    }
    CHECK(ann_index_set_ids(ix, map) == ANN_OK, "set ids");
    search(ix, q, NULL, 0, a, da);
    for (int z = 0; z < 2; z++) {
        const char *path = tmp_path(z ? "z.cagra" : "a.cagra");
        CHECK(ann_index_save(ix, path, z == 1, 2) == ANN_OK, "save: %s", ann_last_error());
        c = NULL;
        if (ann_container_open(path, &c) == ANN_OK) {
            const void *p;
            CHECK(ann_container_get_sized(c, "ids", 8 * N, &p) == ANN_OK && !memcmp(p, map, 8 * N),
                  "section ids holds the map");
            ann_container_close(c);
        }
        ann_index *ld = NULL;
        CHECK(ann_index_load(path, &ld) == ANN_OK, "load: %s", ann_last_error());
        if (!ld)
            continue;
        const int64_t *m = ann_index_row_ids(ld);
        CHECK(m && !memcmp(m, map, 8 * N), "the map comes back");
        if (search(ld, q, NULL, 0, b, db))
            CHECK(!memcmp(a, b, NQ * K * 8) && !memcmp(da, db, NQ * K * 4), "same results after load");
        ann_index_free(ld);
    }
    free(a);
    free(b);
    free(da);
    free(db);
    ann_index_free(ix);
}

/* Extend continues after the largest id; explicit ids must be new; without a map nothing changes. */
static void test_extend(const float *x)
{
    const int64_t n0 = N - 100;
    ann_index *ix = build(x, n0);
    ann_index *plain = build(x, n0);
    if (!ix || !plain)
        goto out;
    int64_t map[N];
    for (int64_t i = 0; i < n0; i++)
        map[i] = 1000 + 7 * i;
    map[17] = 50000; /* the largest id is not the last row's */
    CHECK(ann_index_set_ids(ix, map) == ANN_OK, "set ids");
    ann_exec ex = cpu_exec();
    ann_matrix more = ann_matrix_view((void *)(x + (size_t)n0 * D), 50, D, ANN_DTYPE_F32);
    int64_t want[50];
    for (int i = 0; i < 50; i++)
        want[i] = 7;
    want[49] = 1000; /* already the id of row 0 */
    ann_status st = ann_index_extend(ix, &more, want, &ex);
    CHECK(st == ANN_ERR_INVALID_ARG && strstr(ann_last_error(), "same id"), "repeated new ids: %d %s", (int)st,
          ann_last_error());
    for (int i = 0; i < 50; i++)
        want[i] = 20 + i;
    want[3] = 20; /* twice among the new rows */
    st = ann_index_extend(ix, &more, want, &ex);
    CHECK(st == ANN_ERR_INVALID_ARG, "ids repeated among the new rows: %d", (int)st);
    ann_index_info info;
    ann_index_get_info(ix, &info);
    CHECK(info.rows == n0 && info.id_bound == 50001, "a failed extend changed the index (%lld rows)",
          (long long)info.rows);

    CHECK(ann_index_extend(ix, &more, NULL, &ex) == ANN_OK, "extend: %s", ann_last_error());
    for (int i = 0; i < 50; i++)
        want[i] = 20 + i; /* free ids below the largest one are fine */
    ann_matrix last = ann_matrix_view((void *)(x + (size_t)(n0 + 50) * D), 50, D, ANN_DTYPE_F32);
    CHECK(ann_index_extend(ix, &last, want, &ex) == ANN_OK, "extend with ids: %s", ann_last_error());
    ann_index_get_info(ix, &info);
    CHECK(info.rows == N && info.has_ids, "rows after extend: %lld", (long long)info.rows);
    const int64_t *m = ann_index_row_ids(ix);
    if (m) {
        int bad = 0;
        for (int64_t i = 0; i < n0; i++)
            bad += m[i] != map[i];
        for (int64_t i = 0; i < 50; i++)
            bad += m[n0 + i] != 50001 + i;
        for (int64_t i = 0; i < 50; i++)
            bad += m[n0 + 50 + i] != 20 + i;
        CHECK(bad == 0, "%d ids wrong after extend", bad);
    }
    /* each new row finds itself (distance 0) under its id; k = 1 over its own vector */
    {
        int64_t id[100];
        float d[100];
        ann_matrix qm = ann_matrix_view((void *)(x + (size_t)n0 * D), 100, D, ANN_DTYPE_F32);
        CHECK(ann_index_search(ix, NULL, &qm, 1, &ex, id, d) == ANN_OK, "search new rows");
        int hit = 0;
        for (int i = 0; i < 100; i++)
            hit += d[i] == 0 && id[i] >= 0;
        CHECK(hit == 100, "%d of 100 new rows found at distance 0", hit);
        int own = 0;
        for (int i = 0; i < 100; i++)
            own += id[i] == (i < 50 ? 50001 + i : 20 + (i - 50));
        CHECK(own >= 95, "%d of 100 new rows returned under their own id", own);
    }
    /* without a map: ids are row numbers, as before */
    int64_t rowids[50];
    for (int i = 0; i < 50; i++)
        rowids[i] = n0 + i;
    rowids[10] = 3;
    CHECK(ann_index_extend(plain, &more, rowids, &ex) == ANN_ERR_UNSUPPORTED, "no map: ids must be row numbers");
    CHECK(ann_index_extend(plain, &more, NULL, &ex) == ANN_OK, "no map: extend");
    ann_index_get_info(plain, &info);
    CHECK(!info.has_ids && info.id_bound == n0 + 50 && ann_index_row_ids(plain) == NULL,
          "no map after extend: has_ids %d id_bound %lld", info.has_ids, (long long)info.id_bound);
out:
    ann_index_free(ix);
    ann_index_free(plain);
}

/* ------------------------------ cuVS file -------------------------------- */

/* The whole file @p path (malloc'd, *len bytes), or NULL. */
static unsigned char *slurp(const char *path, long *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    *len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)*len + 1);
    if (b && fread(b, 1, (size_t)*len, f) != (size_t)*len) {
        free(b);
        b = NULL;
    }
    fclose(f);
    return b;
}

/* Write @p len bytes of @p b to @p path. */
static void spit(const char *path, const unsigned char *b, long len)
{
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(b, 1, (size_t)len, f) == (size_t)len, "write %s", path);
    if (f)
        fclose(f);
}

/*
 * The npy blob the writer must end with, written out by hand from the
 * npy 1.0 rules (notes/algorithms.md 0.5): magic, version 1.0, header
 * length, dict, spaces up to a multiple of 64 with the newline, data.
 */
static long expected_tail(const int64_t *map, int64_t n, unsigned char *out)
{
    char dict[128];
    const int len = snprintf(dict, sizeof dict, "{'descr': '<u4', 'fortran_order': False, 'shape': (%lld,)}",
                             (long long)n);
    const int pad = 64 - (10 + len + 1) % 64, hlen = len + pad + 1;
    long o = 0;
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    out[8] = (unsigned char)(hlen & 0xff);
    out[9] = (unsigned char)(hlen >> 8);
    o = 10;
    memcpy(out + o, dict, (size_t)len);
    o += len;
    memset(out + o, ' ', (size_t)pad);
    o += pad;
    out[o++] = '\n';
    for (int64_t i = 0; i < n; i++) {
        const uint32_t v = (uint32_t)map[i];
        out[o++] = (unsigned char)v;
        out[o++] = (unsigned char)(v >> 8);
        out[o++] = (unsigned char)(v >> 16);
        out[o++] = (unsigned char)(v >> 24);
    }
    return o;
}

static void test_cuvs(const float *x, const float *q)
{
    ann_index *ix = build(x, N);
    if (!ix)
        return;
    int64_t map[N];
    for (int64_t i = 0; i < N; i++)
        map[i] = 4000000000ll - 3 * i; /* ids above 2^31: the full uint32 range is read back */
    int64_t *a = malloc(NQ * K * 8), *b = malloc(NQ * K * 8);
    float *da = malloc(NQ * K * 4), *db = malloc(NQ * K * 4);
    unsigned char *tail = malloc(128 + 4 * N);
    const long tail_len = expected_tail(map, N, tail);
    const char *plain = tmp_path("plain.cuvs"), *with = tmp_path("ids.cuvs"), *graph = tmp_path("graph.cuvs");
    CHECK(ann_cagra_save_cuvs(ix, plain, true) == ANN_OK, "save without map");
    CHECK(ann_index_set_ids(ix, map) == ANN_OK, "set ids");
    search(ix, q, NULL, 0, a, da);
    CHECK(ann_cagra_save_cuvs(ix, with, true) == ANN_OK, "save with map: %s", ann_last_error());
    CHECK(ann_cagra_save_cuvs(ix, graph, false) == ANN_OK, "save graph only with map: %s", ann_last_error());
    long lp = 0, lw = 0, lg = 0;
    unsigned char *bp = slurp(plain, &lp), *bw = slurp(with, &lw), *bg = slurp(graph, &lg);
    if (!bp || !bw || !bg) {
        CHECK(false, "read the cuVS files back");
        goto out;
    }
    /* the file with ids is the file without, content_map 1 -> 3, then the array; graph only: 0 -> 2 */
    CHECK(lw == lp + tail_len && !memcmp(bw + lp, tail, (size_t)tail_len), "the source indices blob at the end");
    long cm = -1; /* content_map data: the u32 right after the graph, i.e. the last 4 bytes of the graph-only file */
    if (lg > tail_len + 4) {
        cm = lg - tail_len - 4;
        CHECK(!memcmp(bg + lg - tail_len, tail, (size_t)tail_len), "graph only: the blob at the end");
        CHECK(bg[cm] == 2 && !bg[cm + 1] && !bg[cm + 2] && !bg[cm + 3], "graph only: content_map 2 (%u)", bg[cm]);
        CHECK(bw[cm] == 3 && bp[cm] == 1, "content_map 3 with the dataset (%u), 1 without ids (%u)", bw[cm], bp[cm]);
        CHECK(!memcmp(bw, bp, (size_t)cm) && !memcmp(bw + cm + 1, bp + cm + 1, (size_t)(lp - cm - 1)),
              "with and without ids, the files differ only in content_map and the blob");
    }
    /* import: the map, the same answers, a byte-identical export */
    ann_index *cv = NULL;
    CHECK(ann_cagra_load_cuvs(with, &cv) == ANN_OK, "load: %s", ann_last_error());
    if (cv) {
        const int64_t *m = ann_index_row_ids(cv);
        CHECK(m && !memcmp(m, map, 8 * N), "imported map");
        if (search(cv, q, NULL, 0, b, db))
            CHECK(!memcmp(a, b, NQ * K * 8) && !memcmp(da, db, NQ * K * 4), "same results after import");
        /* through the annkit container and back */
        const char *mid = tmp_path("mid.cagra"), *again = tmp_path("again.cuvs");
        CHECK(ann_index_save(cv, mid, true, 2) == ANN_OK, "save container");
        ann_index_free(cv);
        cv = NULL;
        CHECK(ann_index_load(mid, &cv) == ANN_OK, "load container");
        if (cv) {
            CHECK(ann_cagra_save_cuvs(cv, again, true) == ANN_OK, "export again");
            long la = 0;
            unsigned char *ba = slurp(again, &la);
            CHECK(ba && la == lw && !memcmp(ba, bw, (size_t)lw), "cuVS -> annkit -> cuVS is not byte-identical");
            free(ba);
        }
        ann_index_free(cv);
        cv = NULL;
    }
    CHECK(ann_cagra_load_cuvs(graph, &cv) == ANN_OK, "load graph only: %s", ann_last_error());
    if (cv) {
        CHECK(!ann_cagra_has_dataset(cv) && ann_index_row_ids(cv) && !memcmp(ann_index_row_ids(cv), map, 8 * N),
              "graph only: the map without the vectors");
        ann_index_free(cv);
        cv = NULL;
    }
    /* a truncated array: one line naming the file and the field */
    const char *bad = tmp_path("bad.cuvs");
    for (long cut = 1; cut <= tail_len; cut += tail_len - 1) {
        spit(bad, bw, lw - cut);
        ann_status st = ann_cagra_load_cuvs(bad, &cv);
        const char *e = ann_last_error();
        CHECK(st == ANN_ERR_FORMAT && !cv && strstr(e, bad) && !strchr(e, '\n') &&
                  (cut == tail_len || strstr(e, "source_indices")),
              "cut %ld: %d %s", cut, (int)st, e);
    }
    /* a wrong shape and a repeated id */
    unsigned char *bb = malloc((size_t)lw);
    memcpy(bb, bw, (size_t)lw);
    char *shape = NULL;
    for (long i = lp; i + 7 <= lp + 80 && !shape; i++)
        if (!memcmp(bb + i, "(2000,)", 7))
            shape = (char *)bb + i;
    CHECK(shape != NULL, "shape text in the blob");
    if (shape) {
        memcpy(shape, "(1999,)", 7);
        spit(bad, bb, lw - 4);
        ann_status st = ann_cagra_load_cuvs(bad, &cv);
        CHECK(st == ANN_ERR_FORMAT && strstr(ann_last_error(), "source_indices") && strstr(ann_last_error(), bad),
              "wrong length: %d %s", (int)st, ann_last_error());
    }
    memcpy(bb, bw, (size_t)lw);
    memcpy(bb + lw - 4, bb + lw - 8, 4); /* the last row gets the id of the one before */
    spit(bad, bb, lw);
    ann_status st = ann_cagra_load_cuvs(bad, &cv);
    CHECK(st == ANN_ERR_FORMAT && strstr(ann_last_error(), bad) && strstr(ann_last_error(), "rows 1998 and 1999"),
          "repeated id: %d %s", (int)st, ann_last_error());
    free(bb);
    /* an id that does not fit uint32 cannot be exported */
    map[5] = 4294967296ll;
    CHECK(ann_index_set_ids(ix, map) == ANN_OK, "set a large id");
    st = ann_cagra_save_cuvs(ix, tmp_path("big.cuvs"), true);
    CHECK(st == ANN_ERR_INVALID_ARG && strstr(ann_last_error(), "row 5"), "id above uint32: %d %s", (int)st,
          ann_last_error());
out:
    free(bp);
    free(bw);
    free(bg);
    free(tail);
    free(a);
    free(b);
    free(da);
    free(db);
    ann_index_free(ix);
}

int main(void)
{
    test_rng = 0x2545f4914f6cdd1dull;
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    float *x = malloc((size_t)N * D * sizeof(float)), *q = malloc((size_t)NQ * D * sizeof(float));
    test_clustered(x, N, D, 20, 40, 170, 30, 2);
    test_clustered(q, NQ, D, 20, 40, 170, 30, 2);
    test_search_maps(x, q);
    test_filters(x, q);
    test_save_load(x, q);
    test_extend(x);
    test_cuvs(x, q);
    free(x);
    free(q);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_finish("test_cagra_ids");
}
