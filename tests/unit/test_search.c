/*
 * test_search.c - brute force and IVF-Flat on the CPU against a slow,
 * obviously correct oracle (double-precision distances, full sort by
 * (distance, id)), on seeded synthetic data, for every metric and dtype.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ann/ann.h"
#include "testutil.h"



/* Clustered data with integer values 0..255 (exact in every dtype but i8, which gets v - 128). */
static void make_data(float *x, int64_t n, int64_t d, int clusters)
{
    test_clustered(x, n, d, clusters, 40, 170, 25, 3);
}

typedef struct pair {
    double key;
    int64_t id;
} pair;

static int pair_cmp(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static double oracle_dist(ann_metric m, const float *q, const float *x, int64_t d)
{
    double s = 0, qq = 0, xx = 0;
    for (int64_t j = 0; j < d; j++) {
        double a = q[j], b = x[j];
        switch (m) {
        case ANN_METRIC_SQEUCLIDEAN:
        case ANN_METRIC_EUCLIDEAN: s += (a - b) * (a - b); break;
        case ANN_METRIC_L1: s += fabs(a - b); break;
        default: s += a * b; qq += a * a; xx += b * b; break;
        }
    }
    if (m == ANN_METRIC_EUCLIDEAN)
        return sqrt(s);
    if (m == ANN_METRIC_COSINE)
        return 1 - s / (sqrt(qq) * sqrt(xx));
    return s;
}

/* Exact top-k ids and returned-convention distances. */
static void oracle(ann_metric m, const float *x, int64_t n, const float *q, int64_t nq, int64_t d, int64_t k,
                   int64_t *ids, double *dist)
{
    pair *p = malloc((size_t)n * sizeof(pair));
    for (int64_t i = 0; i < nq; i++) {
        for (int64_t j = 0; j < n; j++) {
            double v = oracle_dist(m, q + i * d, x + j * d, d);
            p[j].key = m == ANN_METRIC_INNER_PRODUCT ? -v : v;
            p[j].id = j;
        }
        qsort(p, (size_t)n, sizeof(pair), pair_cmp);
        for (int64_t a = 0; a < k; a++) {
            ids[i * k + a] = a < n ? p[a].id : -1;
            dist[i * k + a] = a < n ? (m == ANN_METRIC_INNER_PRODUCT ? -p[a].key : p[a].key) : NAN;
        }
    }
    free(p);
}

static void test_brute_force(ann_metric m, ann_dtype dt)
{
    const int64_t n = 700, d = 24, nq = 150, k = 12;
    float *x = malloc((size_t)n * d * 4), *q = malloc((size_t)nq * d * 4);
    make_data(x, n, d, 6);
    make_data(q, nq, d, 6);
    /* exact duplicates and ties: rows 10..19 equal row 5 */
    for (int r = 10; r < 20; r++)
        memcpy(x + r * d, x + 5 * d, (size_t)d * 4);
    memcpy(q, x + 5 * d, (size_t)d * 4);
    if (dt == ANN_DTYPE_I8)
        for (int64_t i = 0; i < n * d; i++)
            x[i] -= 128;
    if (dt == ANN_DTYPE_I8)
        for (int64_t i = 0; i < nq * d; i++)
            q[i] -= 128;
    ann_matrix fx = ann_matrix_view(x, n, d, ANN_DTYPE_F32), data;
    CHECK(ann_matrix_convert(&fx, dt, &data) == ANN_OK, "convert");
    ann_matrix qm = ann_matrix_view(q, nq, d, ANN_DTYPE_F32);

    ann_brute_force_params bp;
    ann_brute_force_params_init(&bp);
    bp.metric = m;
    ann_exec ex;
    ann_exec_init(&ex);
    ex.device = ANN_DEVICE_CPU;
    ann_index *ix = NULL;
    ann_status st = ann_index_build(ANN_ALGO_BRUTE_FORCE, &bp, &data, &ex, &ix);
    CHECK(st == ANN_OK, "bf build %s/%s: %s", ann_metric_name(m), ann_dtype_name(dt), ann_last_error());
    if (st != ANN_OK)
        goto out;
    int64_t *ids = malloc((size_t)nq * k * 8), *eids = malloc((size_t)nq * k * 8);
    float *dd = malloc((size_t)nq * k * 4);
    double *ed = malloc((size_t)nq * k * 8);
    st = ann_index_search(ix, NULL, &qm, k, &ex, ids, dd);
    CHECK(st == ANN_OK, "bf search: %s", ann_last_error());
    oracle(m, x, n, q, nq, d, k, eids, ed);
    int bad = 0;
    for (int64_t i = 0; i < nq * k && bad < 3; i++) {
        double tol = 1e-5 * fmax(1.0, fabs(ed[i]));
        if (ids[i] != eids[i] || fabs(dd[i] - ed[i]) > tol) {
            CHECK(0, "bf %s/%s: query %lld rank %lld: got id %lld dist %.9g, want id %lld dist %.9g",
                  ann_metric_name(m), ann_dtype_name(dt), (long long)(i / k), (long long)(i % k),
                  (long long)ids[i], dd[i], (long long)eids[i], ed[i]);
            bad++;
        }
    }
    /* the single-query path (base split across threads) gives the same answer */
    ann_matrix q1 = ann_matrix_view(q, 1, d, ANN_DTYPE_F32);
    st = ann_index_search(ix, NULL, &q1, k, &ex, ids, dd);
    CHECK(st == ANN_OK && memcmp(ids, eids, (size_t)k * 8) == 0, "bf single query %s", ann_metric_name(m));
    /* k larger than rows pads with -1 and the worst distance */
    int64_t big = n + 5;
    int64_t *bids = malloc((size_t)big * 8);
    float *bd = malloc((size_t)big * 4);
    st = ann_index_search(ix, NULL, &q1, big, &ex, bids, bd);
    CHECK(st == ANN_OK && bids[n - 1] >= 0 && bids[n] == -1 && bd[n + 4] == ann_metric_worst(m),
          "bf k > rows padding");
    free(bids);
    free(bd);
    free(ids);
    free(eids);
    free(dd);
    free(ed);
    ann_index_free(ix);
out:
    ann_matrix_release(&data);
    free(x);
    free(q);
}

static double recall_of(const int64_t *got, const int64_t *want, int64_t nq, int64_t k)
{
    int64_t hit = 0;
    for (int64_t i = 0; i < nq; i++)
        for (int64_t a = 0; a < k; a++)
            for (int64_t b = 0; b < k; b++)
                if (got[i * k + a] == want[i * k + b]) {
                    hit++;
                    break;
                }
    return (double)hit / (double)(nq * k);
}

static void test_ivf_flat(ann_metric m, ann_dtype dt, int32_t n_lists)
{
    const int64_t n = 4000, d = 16, nq = 300, k = 10;
    float *x = malloc((size_t)n * d * 4), *q = malloc((size_t)nq * d * 4);
    make_data(x, n, d, 40);
    make_data(q, nq, d, 40);
    ann_matrix fx = ann_matrix_view(x, n, d, ANN_DTYPE_F32), data;
    CHECK(ann_matrix_convert(&fx, dt, &data) == ANN_OK, "convert");
    ann_matrix qm = ann_matrix_view(q, nq, d, ANN_DTYPE_F32);
    ann_ivf_flat_params p;
    ann_ivf_flat_params_init(&p);
    p.metric = m;
    p.n_lists = n_lists;
    ann_exec ex;
    ann_exec_init(&ex);
    ex.device = ANN_DEVICE_CPU;
    ann_index *ix = NULL;
    ann_status st = ann_index_build(ANN_ALGO_IVF_FLAT, &p, &data, &ex, &ix);
    CHECK(st == ANN_OK, "ivf build %s: %s", ann_metric_name(m), ann_last_error());
    if (st != ANN_OK)
        goto out;
    ann_index_info info;
    ann_index_get_info(ix, &info);
    CHECK(info.rows == n && info.n_lists == n_lists, "ivf info");
    int64_t *ids = malloc((size_t)nq * k * 8), *eids = malloc((size_t)nq * k * 8);
    float *dd = malloc((size_t)nq * k * 4);
    double *ed = malloc((size_t)nq * k * 8);
    oracle(m, x, n, q, nq, d, k, eids, ed);
    ann_ivf_flat_search_params sp;
    ann_ivf_flat_search_params_init(&sp);
    /* all lists probed: exact, in every mode */
    for (int mode = 0; mode < 3; mode++) {
        sp.search_mode = mode;
        sp.n_probes = n_lists;
        st = ann_index_search(ix, &sp, &qm, k, &ex, ids, dd);
        CHECK(st == ANN_OK, "ivf search: %s", ann_last_error());
        double r = recall_of(ids, eids, nq, k);
        CHECK(r >= 0.999, "ivf %s/%s mode %d all probes: recall %.4f", ann_metric_name(m), ann_dtype_name(dt),
              mode, r);
        for (int64_t i = 0; i < nq * k; i++)
            if (ids[i] == eids[i] && fabs(dd[i] - ed[i]) > 1e-4 * fmax(1, fabs(ed[i]))) {
                CHECK(0, "ivf distance %lld: %.8g vs %.8g", (long long)i, dd[i], ed[i]);
                break;
            }
    }
    /* a quarter of the lists: recall floor, and both modes agree */
    sp.n_probes = n_lists / 4 > 0 ? n_lists / 4 : 1;
    sp.search_mode = ANN_IVF_SEARCH_MATRIX;
    st = ann_index_search(ix, &sp, &qm, k, &ex, ids, dd);
    double rm = recall_of(ids, eids, nq, k);
    sp.search_mode = ANN_IVF_SEARCH_CSR;
    int64_t *ids2 = malloc((size_t)nq * k * 8);
    st = ann_index_search(ix, &sp, &qm, k, &ex, ids2, dd);
    double rc = recall_of(ids2, eids, nq, k);
    CHECK(rm >= (m == ANN_METRIC_INNER_PRODUCT ? 0.5 : 0.85) && fabs(rm - rc) < 0.005, "ivf %s quarter probes: matrix %.4f csr %.4f", ann_metric_name(m),
          rm, rc);
    /* max_codes = 1 scans only the nearest list: recall drops but stays positive */
    sp.max_codes = 1;
    st = ann_index_search(ix, &sp, &qm, k, &ex, ids2, dd);
    double r1 = recall_of(ids2, eids, nq, k);
    CHECK(st == ANN_OK && r1 > 0.1 && r1 < rm, "ivf max_codes=1 recall %.4f (quarter %.4f)", r1, rm);
    free(ids2);

    /* save, load (mapped), search again: same answer */
    char path[] = "/tmp/annkit-test-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    sp.max_codes = 0;
    sp.n_probes = 4;
    st = ann_index_search(ix, &sp, &qm, k, &ex, ids, dd);
    CHECK(ann_index_save(ix, path, m == ANN_METRIC_COSINE, 1) == ANN_OK, "save: %s", ann_last_error());
    ann_index *lx = NULL;
    st = ann_index_load(path, &lx);
    CHECK(st == ANN_OK, "load: %s", ann_last_error());
    if (lx) {
        int64_t *lids = malloc((size_t)nq * k * 8);
        float *ld = malloc((size_t)nq * k * 4);
        st = ann_index_search(lx, &sp, &qm, k, &ex, lids, ld);
        CHECK(st == ANN_OK && memcmp(ids, lids, (size_t)nq * k * 8) == 0, "loaded index answers differently");
        /* extend the loaded index with the queries themselves: each finds itself first */
        ann_matrix qconv;
        ann_matrix_convert(&qm, dt, &qconv);
        st = ann_index_extend(lx, &qconv, NULL, &ex);
        CHECK(st == ANN_OK, "extend: %s", ann_last_error());
        st = ann_index_search(lx, &sp, &qm, 1, &ex, lids, ld);
        int self = 0;
        for (int64_t i = 0; i < nq; i++)
            self += lids[i] >= n;
        CHECK(st == ANN_OK && (m == ANN_METRIC_INNER_PRODUCT || self >= nq * 95 / 100), "after extend, %d of %lld queries find a new row first", self,
              (long long)nq);
        ann_matrix_release(&qconv);
        free(lids);
        free(ld);
        ann_index_free(lx);
    }
    unlink(path);
    free(ids);
    free(eids);
    free(dd);
    free(ed);
    ann_index_free(ix);
out:
    ann_matrix_release(&data);
    free(x);
    free(q);
}

/*
 * Filtered IVF-Flat: with every list probed the answer equals the exact
 * search among the allowed rows (in both scan modes); with few probes no
 * filtered id ever comes back; above 90 % filtered the search is a filtered
 * brute force, exact again.
 */
static void test_ivf_flat_filter(void)
{
    const int64_t n = 3000, d = 12, nq = 100, k = 10;
    const int32_t n_lists = 24;
    float *x = malloc((size_t)n * d * 4), *q = malloc((size_t)nq * d * 4);
    make_data(x, n, d, 30);
    make_data(q, nq, d, 30);
    ann_matrix data = ann_matrix_view(x, n, d, ANN_DTYPE_F32), qm = ann_matrix_view(q, nq, d, ANN_DTYPE_F32);
    ann_ivf_flat_params p;
    ann_ivf_flat_params_init(&p);
    p.n_lists = n_lists;
    ann_exec ex;
    ann_exec_init(&ex);
    ex.device = ANN_DEVICE_CPU;
    ann_index *ix = NULL, *bf = NULL;
    CHECK(ann_index_build(ANN_ALGO_IVF_FLAT, &p, &data, &ex, &ix) == ANN_OK, "ivf build: %s", ann_last_error());
    CHECK(ann_index_build(ANN_ALGO_BRUTE_FORCE, NULL, &data, &ex, &bf) == ANN_OK, "bf build: %s", ann_last_error());
    uint32_t *bits = calloc((size_t)(n + 31) / 32, 4);
    int64_t *ids = malloc((size_t)nq * k * 8), *eids = malloc((size_t)nq * k * 8);
    float *dd = malloc((size_t)nq * k * 4), *ed = malloc((size_t)nq * k * 4);
    const double keep_share[] = {0.5, 0.05};
    for (int t = 0; t < 2 && ix && bf; t++) {
        memset(bits, 0, (size_t)(n + 31) / 32 * 4);
        for (int64_t i = 0; i < n; i++)
            if (urand() < keep_share[t])
                bits[i >> 5] |= 1u << (i & 31);
        /* the last id is cut off by n_bits: filtered out although its bit is set */
        bits[(n - 1) >> 5] |= 1u << ((n - 1) & 31);
        CHECK(ann_index_search_filtered(bf, NULL, &qm, k, bits, n - 1, &ex, eids, ed) == ANN_OK, "bf: %s",
              ann_last_error());
        ann_ivf_flat_search_params sp;
        ann_ivf_flat_search_params_init(&sp);
        for (int mode = 0; mode < 3; mode++) {
            sp.search_mode = mode;
            sp.n_probes = n_lists;
            ann_status st = ann_index_search_filtered(ix, &sp, &qm, k, bits, n - 1, &ex, ids, dd);
            CHECK(st == ANN_OK, "ivf filtered search: %s", ann_last_error());
            CHECK(memcmp(ids, eids, (size_t)nq * k * 8) == 0, "keep %.2f mode %d: all probes differ from the exact "
                  "filtered answer", keep_share[t], mode);
        }
        sp.n_probes = 2;
        ann_status st = ann_index_search_filtered(ix, &sp, &qm, k, bits, n - 1, &ex, ids, dd);
        CHECK(st == ANN_OK, "ivf filtered search: %s", ann_last_error());
        int64_t bad = 0, found = 0;
        for (int64_t i = 0; i < nq * k; i++) {
            if (ids[i] < 0)
                continue;
            found++;
            bad += ids[i] >= n - 1 || !((bits[ids[i] >> 5] >> (ids[i] & 31)) & 1u);
        }
        CHECK(bad == 0 && found > 0, "keep %.2f, 2 probes: %lld filtered ids returned (%lld found)", keep_share[t],
              (long long)bad, (long long)found);
    }
    free(bits);
    free(ids);
    free(eids);
    free(dd);
    free(ed);
    ann_index_free(ix);
    ann_index_free(bf);
    free(x);
    free(q);
}

/*
 * Row offsets of shards (ann_index_set_row_offset): saved and loaded for
 * brute_force and cagra, out of range refused, and an invalid meta
 * row_offset in a file is a format error.
 */
static void test_row_offset(void)
{
    enum { R = 200, DD = 8 };
    float *x = malloc((size_t)R * DD * sizeof(float));
    make_data(x, R, DD, 5);
    ann_matrix data = ann_matrix_view(x, R, DD, ANN_DTYPE_F32);
    ann_exec ex;
    ann_exec_init(&ex);
    ex.device = ANN_DEVICE_CPU;
    char path[] = "/tmp/annkit-test-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    const ann_algo algos[] = {ANN_ALGO_BRUTE_FORCE, ANN_ALGO_CAGRA};
    for (int a = 0; a < 2; a++) {
        ann_index *ix = NULL, *lx = NULL;
        CHECK(ann_index_build(algos[a], NULL, &data, &ex, &ix) == ANN_OK, "build: %s", ann_last_error());
        if (!ix)
            continue;
        CHECK(ann_index_set_row_offset(ix, -1) == ANN_ERR_INVALID_ARG, "negative offset accepted");
        CHECK(ann_index_set_row_offset(ix, INT64_MAX - 10) == ANN_ERR_INVALID_ARG, "overflowing offset accepted");
        CHECK(ann_index_set_row_offset(ix, 1000) == ANN_OK, "offset: %s", ann_last_error());
        CHECK(ann_index_save(ix, path, false, 1) == ANN_OK, "save: %s", ann_last_error());
        CHECK(ann_index_load(path, &lx) == ANN_OK, "load: %s", ann_last_error());
        if (lx) {
            ann_index_info info;
            ann_index_get_info(lx, &info);
            CHECK(info.row_offset == 1000, "%s: row_offset %lld after load", ann_algo_name(algos[a]),
                  (long long)info.row_offset);
        }
        ann_index_free(lx);
        ann_index_free(ix);
    }
    /* a brute-force file whose meta has row_offset=-5 */
    ann_container_writer *w = NULL;
    const char meta[] = "algo=brute_force\nrow_offset=-5\n";
    CHECK(ann_container_writer_create(ANN_KIND_INDEX, ANN_ALGO_BRUTE_FORCE, ANN_METRIC_INNER_PRODUCT, ANN_DTYPE_F32,
                                      R, DD, &w) == ANN_OK, "writer");
    if (w) {
        ann_container_add(w, "meta", meta, sizeof meta - 1, ANN_CODEC_NONE);
        ann_container_add(w, "data", x, (uint64_t)R * DD * sizeof(float), ANN_CODEC_NONE);
        CHECK(ann_container_write(w, path, 1) == ANN_OK, "write: %s", ann_last_error());
        ann_container_writer_free(w);
        ann_index *bad = NULL;
        ann_status st = ann_index_load(path, &bad);
        CHECK(st == ANN_ERR_FORMAT && strstr(ann_last_error(), "row_offset"), "bad row_offset: %d %s", (int)st,
              ann_last_error());
        ann_index_free(bad);
    }
    unlink(path);
    free(x);
}

static void test_errors(void)
{
    float x[40] = {0};
    ann_matrix m = ann_matrix_view(x, 10, 4, ANN_DTYPE_F32);
    ann_ivf_flat_params p;
    ann_ivf_flat_params_init(&p);
    p.n_lists = 11;
    ann_index *ix = NULL;
    ann_exec ex;
    ann_exec_init(&ex);
    ex.device = ANN_DEVICE_CPU;
    CHECK(ann_index_build(ANN_ALGO_IVF_FLAT, &p, &m, &ex, &ix) == ANN_ERR_INVALID_ARG && !ix,
          "rows < n_lists must fail");
    CHECK(strstr(ann_last_error(), "n_lists") != NULL, "message names n_lists: %s", ann_last_error());
    p.n_lists = 0;
    CHECK(ann_index_build(ANN_ALGO_IVF_FLAT, &p, &m, &ex, &ix) == ANN_ERR_INVALID_ARG, "n_lists 0 out of range");
    CHECK(ann_index_build(ANN_ALGO_IVF_PQ, NULL, &m, &ex, &ix) == ANN_ERR_UNSUPPORTED, "ivf_pq not yet");
    CHECK(ann_index_build(ANN_ALGO_BRUTE_FORCE, NULL, &m, &ex, &ix) == ANN_OK, "bf build");
    ann_matrix q = ann_matrix_view(x, 2, 3, ANN_DTYPE_F32);
    int64_t ids[4];
    float d[4];
    CHECK(ann_index_search(ix, NULL, &q, 2, &ex, ids, d) == ANN_ERR_MISMATCH, "dimension mismatch");
    CHECK(strstr(ann_last_error(), "dimension 3 does not match index dimension 4"), "mismatch text: %s",
          ann_last_error());
    q.cols = 4;
    CHECK(ann_index_search(ix, NULL, &q, 0, &ex, ids, d) == ANN_ERR_INVALID_ARG, "k = 0");
    ex.device = ANN_DEVICE_CUDA;
    ann_device got;
    if (ann_backend_resolve(ANN_DEVICE_CUDA, &got) != ANN_OK)
        CHECK(ann_index_search(ix, NULL, &q, 2, &ex, ids, d) == ANN_ERR_BACKEND_UNAVAILABLE,
              "--device cuda without GPU");
    ann_index_free(ix);
    /* parameter table parsing */
    size_t nt;
    const ann_param_desc *t = ann_ivf_flat_search_param_table(&nt);
    ann_ivf_flat_search_params sp;
    ann_ivf_flat_search_params_init(&sp);
    CHECK(ann_params_set(t, nt, &sp, "n_probes", "2K") == ANN_OK && sp.n_probes == 2000, "2K");
    CHECK(ann_params_set(t, nt, &sp, "search_mode", "csr") == ANN_OK && sp.search_mode == 1, "enum");
    CHECK(ann_params_set(t, nt, &sp, "n_probes", "0") == ANN_ERR_INVALID_ARG, "range");
    CHECK(ann_params_set(t, nt, &sp, "n_probes", "3x") == ANN_ERR_INVALID_ARG, "junk");
    CHECK(ann_params_set(t, nt, &sp, "search_mode", "fast") == ANN_ERR_INVALID_ARG, "bad enum");
    char buf[32];
    ann_params_format(&t[2], &sp, buf, sizeof buf);
    CHECK(strcmp(buf, "csr") == 0, "format enum: %s", buf);
    /* f16 round trip of representable values */
    CHECK(ann_f16_to_f32(ann_f32_to_f16(1.5f)) == 1.5f && ann_f16_to_f32(ann_f32_to_f16(-2048.0f)) == -2048.0f &&
              ann_f16_to_f32(ann_f32_to_f16(6.1035156e-05f)) == 6.1035156e-05f,
          "f16 round trip");
    CHECK(isinf(ann_f16_to_f32(ann_f32_to_f16(1e6f))), "f16 overflow to inf");
}

/* More exact ties than the k + 16 candidates: the lowest ids still win, for every query of a batch. */
static void test_many_ties(void)
{
    const int64_t n = 2000, d = 16, nq = 600, k = 10;
    float *x = malloc((size_t)n * d * 4), *q = malloc((size_t)nq * d * 4);
    make_data(x, n, d, 8);
    for (int64_t r = 1000; r < 1060; r++) /* 60 copies of row 7, after other rows */
        memcpy(x + r * d, x + 7 * d, (size_t)d * 4);
    for (int64_t i = 0; i < nq; i++)
        memcpy(q + i * d, x + 7 * d, (size_t)d * 4);
    ann_matrix xm = ann_matrix_view(x, n, d, ANN_DTYPE_F32), qm = ann_matrix_view(q, nq, d, ANN_DTYPE_F32);
    ann_index *ix = NULL;
    ann_exec ex;
    ann_exec_init(&ex);
    ex.device = ANN_DEVICE_CPU;
    CHECK(ann_index_build(ANN_ALGO_BRUTE_FORCE, NULL, &xm, &ex, &ix) == ANN_OK, "build");
    int64_t *ids = malloc((size_t)nq * k * 8);
    float *dd = malloc((size_t)nq * k * 4);
    CHECK(ann_index_search(ix, NULL, &qm, k, &ex, ids, dd) == ANN_OK, "search");
    int bad = 0;
    for (int64_t i = 0; i < nq && !bad; i++)
        for (int64_t j = 0; j < k; j++) {
            int64_t want = j == 0 ? 7 : 1000 + j - 1;
            if (ids[i * k + j] != want || dd[i * k + j] != 0.0f) {
                CHECK(0, "ties: query %lld rank %lld: id %lld dist %g, want id %lld dist 0", (long long)i,
                      (long long)j, (long long)ids[i * k + j], dd[i * k + j], (long long)want);
                bad = 1;
                break;
            }
        }
    ann_index_free(ix);
    free(ids);
    free(dd);
    free(x);
    free(q);
}

/* Bitwise hamming on u8 rows against a popcount oracle; refused on f32. */
static void test_hamming(void)
{
    const int64_t n = 500, d = 12, nq = 40, k = 7;
    uint8_t *x = malloc((size_t)n * d), *q = malloc((size_t)nq * d);
    for (int64_t i = 0; i < n * d; i++)
        x[i] = (uint8_t)(urand() * 256);
    for (int64_t i = 0; i < nq * d; i++)
        q[i] = (uint8_t)(urand() * 256);
    ann_matrix xm = ann_matrix_view(x, n, d, ANN_DTYPE_U8), qm = ann_matrix_view(q, nq, d, ANN_DTYPE_U8);
    ann_brute_force_params bp;
    ann_brute_force_params_init(&bp);
    bp.metric = ANN_METRIC_HAMMING;
    ann_index *ix = NULL;
    CHECK(ann_index_build(ANN_ALGO_BRUTE_FORCE, &bp, &xm, NULL, &ix) == ANN_OK, "hamming build: %s",
          ann_last_error());
    int64_t ids[40 * 7];
    float dd[40 * 7];
    CHECK(ix && ann_index_search(ix, NULL, &qm, k, NULL, ids, dd) == ANN_OK, "hamming search: %s", ann_last_error());
    pair *p = malloc((size_t)n * sizeof(pair));
    for (int64_t i = 0; i < nq && ix; i++) {
        for (int64_t r = 0; r < n; r++) {
            int c = 0;
            for (int64_t j = 0; j < d; j++)
                c += __builtin_popcount((unsigned)(q[i * d + j] ^ x[r * d + j]));
            p[r].key = c;
            p[r].id = r;
        }
        qsort(p, (size_t)n, sizeof(pair), pair_cmp);
        for (int64_t j = 0; j < k; j++)
            if (ids[i * k + j] != p[j].id || dd[i * k + j] != (float)p[j].key) {
                CHECK(0, "hamming query %lld rank %lld: %lld/%g vs %lld/%g", (long long)i, (long long)j,
                      (long long)ids[i * k + j], dd[i * k + j], (long long)p[j].id, p[j].key);
                i = nq;
                break;
            }
    }
    free(p);
    ann_index_free(ix);
    float f[4] = {0};
    ann_matrix fm = ann_matrix_view(f, 2, 2, ANN_DTYPE_F32);
    ix = NULL;
    CHECK(ann_index_build(ANN_ALGO_BRUTE_FORCE, &bp, &fm, NULL, &ix) == ANN_ERR_UNSUPPORTED && !ix,
          "hamming on f32 must be refused");
    free(x);
    free(q);
}

int main(void)
{
    test_rng = 12345;
    test_many_ties();
    test_hamming();
    const ann_metric metrics[] = {ANN_METRIC_SQEUCLIDEAN, ANN_METRIC_EUCLIDEAN, ANN_METRIC_INNER_PRODUCT,
                                  ANN_METRIC_COSINE, ANN_METRIC_L1};
    const ann_dtype dtypes[] = {ANN_DTYPE_F32, ANN_DTYPE_U8, ANN_DTYPE_F16, ANN_DTYPE_I8};
    for (int a = 0; a < 5; a++)
        for (int b = 0; b < 4; b++)
            test_brute_force(metrics[a], dtypes[b]);
    for (int a = 0; a < 5; a++)
        test_ivf_flat(metrics[a], ANN_DTYPE_F32, 32);
    test_ivf_flat(ANN_METRIC_SQEUCLIDEAN, ANN_DTYPE_U8, 300); /* hierarchical k-means */
    test_ivf_flat(ANN_METRIC_SQEUCLIDEAN, ANN_DTYPE_F16, 16);
    test_ivf_flat_filter();
    test_row_offset();
    test_errors();
    return test_finish("test_search");
}
