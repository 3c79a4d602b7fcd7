/*
 * ivf_pq_cpu.c - IVF-PQ on the CPU (ann/ivf_pq.h, ivf_pq_internal.h):
 * parameters and the graph-build preset, build, search, and the
 * all-neighbours kNN graph of CAGRA's build_algo ivf_pq.
 *
 * Product quantization: Jegou, Douze, Schmid, "Product Quantization for
 * Nearest Neighbor Search", IEEE TPAMI 33(1), 2011 (IVFADC: residuals of
 * a coarse quantizer, asymmetric distances from look-up tables).  The
 * variant and its defaults are cuVS's (notes/algorithms.md 4): a
 * rotation before the split into subspaces, balanced k-means (0.6) for
 * the coarse centers and the per-subspace codebooks, fp32 LUTs.
 *
 * Build  1. a random (seeded) subsample of the rows, float, L2-normalised
 *           for cosine; balanced k-means -> n_lists centers (L2 k-means
 *           for inner_product, cosine k-means for cosine);
 *        2. R: identity when rot_dim == dim and not forced, else random
 *           Gaussian columns orthonormalised by modified Gram-Schmidt;
 *        3. codebooks: k-means (L2) of each subspace's slice of the
 *           rotated residuals R(x - c) of at most
 *           max_train_points_per_pq_code x 2^pq_bits training rows;
 *        4. every row: nearest center, then per subspace the nearest
 *           codebook entry (ties: the smaller entry), written into the
 *           packed lists (layout: ivf_pq_internal.h).
 * Search per block of queries: one GEMM for the coarse scores and one for
 *        R q; per query the n_probes best lists (more while they hold
 *        fewer rows than asked for); per (query, list) the LUT
 *          L2, cosine: LUT[j][c] = sum_t ((R q - R c_l)_jt - P_j[c]_t)^2
 *          IP:         LUT[j][c] = -sum_t (R q)_jt P_j[c]_t (once per query),
 *                      plus -q.c_l per list;
 *        scan of the list's codes (SIMD kernels below), bounded top-k
 *        heap with the (score, id) tie-break.
 * Graph  every row is a query (in list order, so that consecutive queries
 *        read the same lists); its candidates are re-ranked with exact
 *        distances (ann_exact_dist, double), the row itself dropped.  The
 *        candidate search runs on the backend ann_backend_select picks for
 *        ANN_OP_IVF_PQ_SEARCH: here (search_block), or through the CUDA
 *        plugin's twin (cuda/ivf_pq_cuda.cu) on batches of rows, whose
 *        candidates are then refined here.
 *
 * Cosine differs from the reference on purpose: cuVS scores cosine like
 * inner product, -q.(c + r) on unit vectors (notes 4.3); here the rows
 * and queries are unit vectors too, but the score is the squared L2
 * distance between them, which ranks the same for exact unit vectors
 * (|a - b|^2 = 2 - 2 cos) and is far less hurt by the quantization
 * error: a code's error e moves -q.x by q.e but |q - x|^2 by about
 * 2 (x - q).e, and x - q is short for near neighbours.  Measured on
 * seeded clustered data (2500 x 40, 4-bit codes, refine_ratio 2):
 * graph recall 0.26 with -dot, 0.72 with L2, 0.72 for sqeuclidean.
 *
 * Everything per row, per subspace or per query is independent of the
 * others, and k-means is deterministic, so the result depends on the
 * seed but not on the number of threads.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define IVFPQ_X86 1
#else
#define IVFPQ_X86 0
#endif

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define IVFPQ_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define IVFPQ_CLONES
#endif

#include "cpu_ops.h"
#include "internal.h"
#include "ivf_pq_internal.h"

enum {
    QUERY_BLOCK = 16,     /* queries per coarse/rotation GEMM */
    ENCODE_BLOCK = 64,    /* rows per rotation GEMM while encoding */
    BATCH_ROWS = 4096,    /* rows between progress reports and interrupt checks */
};

/* ------------------------------------------------------------------ */
/* Parameters                                                          */
/* ------------------------------------------------------------------ */

void ann_ivf_pq_params_init(ann_ivf_pq_params *p)
{
    memset(p, 0, sizeof *p);
    p->metric = ANN_METRIC_SQEUCLIDEAN;
    p->n_lists = 1024;
    p->kmeans_n_iters = 20;
    p->kmeans_trainset_fraction = 0.5f;
    p->pq_bits = 8;
    p->pq_dim = 0;
    p->codebook_kind = ANN_IVF_PQ_CODEBOOK_PER_SUBSPACE;
    p->force_random_rotation = false;
    p->max_train_points_per_pq_code = 256;
}

void ann_ivf_pq_search_params_init(ann_ivf_pq_search_params *p)
{
    memset(p, 0, sizeof *p);
    p->n_probes = 20;
}

void ann_ivf_pq_graph_params_init(ann_ivf_pq_graph_params *p)
{
    memset(p, 0, sizeof *p);
    ann_ivf_pq_params_init(&p->index);
    p->index.n_lists = 0;
    p->index.kmeans_n_iters = 0;
    p->index.kmeans_trainset_fraction = 0.0f;
    p->index.pq_bits = 0;
    p->index.pq_dim = 0;
    ann_ivf_pq_search_params_init(&p->search);
    p->search.n_probes = 0;
    p->graph_degree = 64;
    p->refine_ratio = 2.0f;
    p->return_distances = true;
}

#define CODEBOOK_CHOICES "per_subspace|per_cluster"

static const ann_param_desc index_table[] = {
    {"n_lists", ANN_PARAM_INT32, offsetof(ann_ivf_pq_params, n_lists), 1, 1 << 24, NULL,
     "number of inverted lists (k-means clusters); needs rows >= n_lists"},
    {"kmeans_n_iters", ANN_PARAM_INT32, offsetof(ann_ivf_pq_params, kmeans_n_iters), 1, 1000, NULL,
     "balanced k-means iterations (coarse centers and codebooks)"},
    {"kmeans_trainset_fraction", ANN_PARAM_FLOAT, offsetof(ann_ivf_pq_params, kmeans_trainset_fraction), 1e-6, 1,
     NULL, "fraction of the rows (random, --seed) that train k-means"},
    {"pq_bits", ANN_PARAM_INT32, offsetof(ann_ivf_pq_params, pq_bits), 4, 8, NULL, "bits per PQ code"},
    {"pq_dim", ANN_PARAM_INT32, offsetof(ann_ivf_pq_params, pq_dim), 0, 8192, NULL,
     "PQ subspaces (0 = dim / 2 for dim >= 128, rounded down to a multiple of 32)"},
    {"codebook_kind", ANN_PARAM_ENUM, offsetof(ann_ivf_pq_params, codebook_kind), 0, 1, CODEBOOK_CHOICES,
     "per subspace, or per list (per_cluster: not yet)"},
    {"force_random_rotation", ANN_PARAM_BOOL, offsetof(ann_ivf_pq_params, force_random_rotation), 0, 1, NULL,
     "rotate randomly even when pq_dim divides dim"},
    {"max_train_points_per_pq_code", ANN_PARAM_INT32, offsetof(ann_ivf_pq_params, max_train_points_per_pq_code),
     1, 1 << 20, NULL, "codebook training rows per code"},
};

static const ann_param_desc search_table[] = {
    {"n_probes", ANN_PARAM_INT32, offsetof(ann_ivf_pq_search_params, n_probes), 1, 1 << 24, NULL,
     "lists scanned per query (clamped to n_lists)"},
};

#define GP(f) offsetof(ann_ivf_pq_graph_params, f)
static const ann_param_desc graph_table[] = {
    {"graph_degree", ANN_PARAM_INT32, GP(graph_degree), 1, 1024, NULL, "neighbours per row in the output graph"},
    {"refine_ratio", ANN_PARAM_FLOAT, GP(refine_ratio), 1, 64, NULL,
     "candidates refined exactly per row, / graph_degree (>= degree + 1)"},
    {"return_distances", ANN_PARAM_BOOL, GP(return_distances), 0, 1, NULL, "store the distances in the graph file"},
    {"n_lists", ANN_PARAM_INT32, GP(index.n_lists), 0, 1 << 24, NULL,
     "inverted lists (k-means clusters); 0: rows / 2000"},
    {"n_probes", ANN_PARAM_INT32, GP(search.n_probes), 0, 1 << 24, NULL,
     "lists searched per row; 0: sqrt(n_lists) / 20 + 4"},
    {"pq_dim", ANN_PARAM_INT32, GP(index.pq_dim), 0, 8192, NULL,
     "PQ subspaces; 0: from dim (the man page has the rule)"},
    {"pq_bits", ANN_PARAM_INT32, GP(index.pq_bits), 0, 8, NULL,
     "bits per PQ code, 4 to 8; 0: 8 for dim <= 32, else 4"},
    {"kmeans_n_iters", ANN_PARAM_INT32, GP(index.kmeans_n_iters), 0, 1000, NULL,
     "balanced k-means iterations; 0: 10"},
    {"kmeans_trainset_fraction", ANN_PARAM_FLOAT, GP(index.kmeans_trainset_fraction), 0, 1, NULL,
     "share of the rows that train k-means; 0: from rows"},
    {"max_train_points_per_pq_code", ANN_PARAM_INT32, GP(index.max_train_points_per_pq_code), 1, 1 << 20, NULL,
     "codebook training rows per code"},
    {"codebook_kind", ANN_PARAM_ENUM, GP(index.codebook_kind), 0, 1, CODEBOOK_CHOICES,
     "per subspace, or per list (per_cluster: not yet)"},
    {"force_random_rotation", ANN_PARAM_BOOL, GP(index.force_random_rotation), 0, 1, NULL,
     "rotate randomly even when pq_dim divides dim"},
};
#undef GP

const ann_param_desc *ann_ivf_pq_param_table(size_t *n)
{
    *n = sizeof index_table / sizeof index_table[0];
    return index_table;
}

const ann_param_desc *ann_ivf_pq_search_param_table(size_t *n)
{
    *n = sizeof search_table / sizeof search_table[0];
    return search_table;
}

const ann_param_desc *ann_ivf_pq_graph_param_table(size_t *n)
{
    *n = sizeof graph_table / sizeof graph_table[0];
    return graph_table;
}

static ann_status check_metric_kind(ann_metric m, int32_t codebook_kind)
{
    switch (m) {
    case ANN_METRIC_SQEUCLIDEAN:
    case ANN_METRIC_EUCLIDEAN:
    case ANN_METRIC_INNER_PRODUCT:
    case ANN_METRIC_COSINE:
        break;
    case ANN_METRIC_L1:
    case ANN_METRIC_HAMMING:
        return ann_set_error(ANN_ERR_UNSUPPORTED,
                             "ivf_pq: metric %s is not supported (sqeuclidean, euclidean, inner_product, cosine)",
                             ann_metric_name(m));
    default:
        return ann_set_error(ANN_ERR_INVALID_ARG, "ivf_pq: unknown metric %d", (int)m);
    }
    if (codebook_kind == ANN_IVF_PQ_CODEBOOK_PER_CLUSTER)
        return ann_set_error(ANN_ERR_UNSUPPORTED,
                             "ivf_pq: codebook_kind per_cluster is not available in this version (per_subspace)");
    return ANN_OK;
}

ann_status ann_ivf_pq_graph_params_check(const ann_ivf_pq_graph_params *p)
{
    size_t n;
    const ann_param_desc *t = ann_ivf_pq_graph_param_table(&n);
    ann_status st = ann_params_check(t, n, p);
    if (st != ANN_OK)
        return st;
    if (p->index.pq_bits != 0 && p->index.pq_bits < 4)
        return ann_set_error(ANN_ERR_INVALID_ARG, "pq_bits = %d: expected 0 (auto) or 4 to 8", (int)p->index.pq_bits);
    return check_metric_kind(p->index.metric, p->index.codebook_kind);
}

/* cuVS calculate_pq_dim: dim / 2 from 128 on, rounded down to 32s, else the largest power of two <= dim. */
static int32_t auto_pq_dim(int64_t dim)
{
    int64_t d = dim >= 128 ? dim / 2 : dim;
    if (d / 32 * 32 > 0)
        return (int32_t)(d / 32 * 32);
    int64_t r = 1;
    while (r * 2 <= d)
        r *= 2;
    return (int32_t)r;
}

ann_status ann_ivf_pq_graph_params_resolve(const ann_ivf_pq_graph_params *p, int64_t rows, int64_t dim,
                                           ann_ivf_pq_graph_params *out)
{
    ann_status st = ann_ivf_pq_graph_params_check(p);
    if (st != ANN_OK)
        return st;
    if (rows <= p->graph_degree)
        return ann_set_error(ANN_ERR_INVALID_ARG, "the dataset has %lld rows: a graph of degree %d needs at least %d rows",
                             (long long)rows, (int)p->graph_degree, (int)p->graph_degree + 1);
    if (dim < 1)
        return ann_set_error(ANN_ERR_INVALID_ARG, "ivf_pq: the dataset has no columns");
    ann_ivf_pq_graph_params r = *p;
    ann_ivf_pq_params *ip = &r.index;
    /* CAGRA's graph-build preset (notes 4.1) for each field left at 0. */
    if (ip->pq_bits == 0)
        ip->pq_bits = dim <= 32 ? 8 : 4;
    if (ip->pq_dim == 0)
        ip->pq_dim = dim <= 32    ? 16
                   : dim <= 64    ? 32
                   : dim <= 128   ? 64
                   : dim <= 192   ? 96
                                  : (int32_t)((dim / 2 + 127) / 128 * 128);
    if (ip->n_lists == 0)
        ip->n_lists = rows / 2000 > 1 ? (int32_t)(rows / 2000 > (1 << 24) ? (1 << 24) : rows / 2000) : 1;
    if (ip->kmeans_n_iters == 0)
        ip->kmeans_n_iters = 10;
    if (ip->kmeans_trainset_fraction == 0.0f) {
        double f = 1.0 / sqrt((double)rows * 1e-5);
        double lo = fmin(1.0, 32.0 * ip->n_lists / (double)rows);
        ip->kmeans_trainset_fraction = (float)fmin(1.0, fmax(lo, f));
    }
    if (r.search.n_probes == 0)
        r.search.n_probes = (int32_t)lround(sqrt((double)ip->n_lists) / 20.0 + 4.0);
    if (r.search.n_probes > ip->n_lists)
        r.search.n_probes = ip->n_lists;
    if (ip->n_lists > rows)
        return ann_set_error(ANN_ERR_INVALID_ARG, "ivf_pq: n_lists = %d exceeds the %lld rows of the dataset",
                             (int)ip->n_lists, (long long)rows);
    *out = r;
    return ANN_OK;
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in (0, 1). */
static double uniform01(uint64_t *s)
{
    return ((double)(splitmix64(s) >> 11) + 0.5) / 9007199254740992.0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void log_at(ann_exec *ex, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void log_at(ann_exec *ex, int level, const char *fmt, ...)
{
    if (!ex || !ex->log)
        return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    ex->log(ex->log_user, level, buf);
}

static void normalise(float *x, int64_t d)
{
    double s = 0;
    for (int64_t j = 0; j < d; j++)
        s += (double)x[j] * x[j];
    if (s > 0) {
        float inv = (float)(1.0 / sqrt(s));
        for (int64_t j = 0; j < d; j++)
            x[j] *= inv;
    }
}

/* Row i of data as floats (L2-normalised for cosine when @p norm). */
static void load_row(const ann_matrix *data, int64_t i, bool norm, float *dst)
{
    ann_row_to_f32(ann_matrix_row(data, i), data->dtype, data->cols, dst);
    if (norm)
        normalise(dst, data->cols);
}

/* out (m x rot_dim) = x (m x dim) R^T, or a copy for the identity. */
static void rotate_rows(const ann_ivf_pq_cpu_index *ix, const float *x, int64_t m, float *out)
{
    if (!ix->rotation)
        memcpy(out, x, (size_t)m * ix->dim * sizeof(float));
    else
        ann_gemm_abt(m, ix->rot_dim, ix->dim, x, ix->dim, ix->rotation, ix->dim, out, ix->rot_dim);
}

/*
 * A random rot_dim x dim matrix with orthonormal columns: dim Gaussian
 * vectors of rot_dim values (its columns), orthonormalised by modified
 * Gram-Schmidt in double; each step updates the remaining vectors in
 * parallel (independent, so the result does not depend on the threads).
 */
static ann_status make_rotation(int32_t rot_dim, int64_t dim, uint64_t seed, int nt, float *R)
{
    double *q = malloc((size_t)dim * rot_dim * sizeof(double));
    if (!q)
        return ann_set_error(ANN_ERR_NOMEM, "ivf_pq: out of memory for a %d x %lld rotation", (int)rot_dim,
                             (long long)dim);
    uint64_t s = seed ^ 0x6a09e667f3bcc909ull;
    for (int64_t i = 0; i < dim * rot_dim; i += 2) { /* Box-Muller */
        double u = uniform01(&s), v = uniform01(&s), r = sqrt(-2.0 * log(u));
        q[i] = r * cos(2.0 * M_PI * v);
        if (i + 1 < dim * rot_dim)
            q[i + 1] = r * sin(2.0 * M_PI * v);
    }
    for (int64_t k = 0; k < dim; k++) {
        double *qk = q + k * rot_dim, ss = 0;
        for (int32_t t = 0; t < rot_dim; t++)
            ss += qk[t] * qk[t];
        double inv = ss > 0 ? 1.0 / sqrt(ss) : 0.0;
        for (int32_t t = 0; t < rot_dim; t++)
            qk[t] *= inv;
#pragma omp parallel for num_threads(nt) schedule(static) if ((dim - k) * rot_dim > 65536)
        for (int64_t j = k + 1; j < dim; j++) {
            double *qj = q + j * rot_dim, c = 0;
            for (int32_t t = 0; t < rot_dim; t++)
                c += qj[t] * qk[t];
            for (int32_t t = 0; t < rot_dim; t++)
                qj[t] -= c * qk[t];
        }
    }
    for (int32_t r = 0; r < rot_dim; r++)
        for (int64_t c = 0; c < dim; c++)
            R[(int64_t)r * dim + c] = (float)q[c * rot_dim + r];
    free(q);
    return ANN_OK;
}

/* ------------------------------------------------------------------ */
/* LUT scan kernels                                                    */
/* ------------------------------------------------------------------ */

/*
 * All kernels add the same floats in the same order per row (4-bit: the
 * even subspaces into one sum, the odd into another, then the two;
 * otherwise subspace by subspace), so they return identical scores.
 * 4-bit codes have SIMD kernels: a 16-float table is one AVX-512
 * register, and one vpermps looks up 16 rows (3.6 cycles per 2
 * subspaces x 16 rows on the Zen 4 development machine, 12x the scalar
 * loop; AVX2: 2.7x slower than AVX-512).  For 5 to 8 bits the plain
 * gather-add loop is used: AVX-512 and AVX2 gathers were measured 1.6x
 * and 2.2x slower than it there.
 */

static void scan4_scalar(const uint8_t *codes, int64_t n_groups, int32_t chunks, int32_t book, const float *lut,
                         float *out)
{
    (void)book;
    for (int64_t g = 0; g < n_groups; g++) {
        const uint8_t *c = codes + g * chunks * ANN_IVF_PQ_GROUP;
        float ev[ANN_IVF_PQ_GROUP] = {0}, od[ANN_IVF_PQ_GROUP] = {0};
        for (int32_t p = 0; p < chunks; p++) {
            const float *le = lut + 32 * p, *lo = le + 16;
            const uint8_t *b = c + p * ANN_IVF_PQ_GROUP;
            for (int r = 0; r < ANN_IVF_PQ_GROUP; r++) {
                ev[r] += le[b[r] & 15];
                od[r] += lo[b[r] >> 4];
            }
        }
        for (int r = 0; r < ANN_IVF_PQ_GROUP; r++)
            out[g * ANN_IVF_PQ_GROUP + r] = ev[r] + od[r];
    }
}

static void scan8_scalar(const uint8_t *codes, int64_t n_groups, int32_t chunks, int32_t book, const float *lut,
                         float *out)
{
    for (int64_t g = 0; g < n_groups; g++) {
        const uint8_t *c = codes + g * chunks * ANN_IVF_PQ_GROUP;
        float acc[ANN_IVF_PQ_GROUP] = {0};
        for (int32_t j = 0; j < chunks; j++) {
            const float *l = lut + (int64_t)j * book;
            const uint8_t *b = c + j * ANN_IVF_PQ_GROUP;
            for (int r = 0; r < ANN_IVF_PQ_GROUP; r++)
                acc[r] += l[b[r]];
        }
        memcpy(out + g * ANN_IVF_PQ_GROUP, acc, sizeof acc);
    }
}

#if IVFPQ_X86
/* 16 rows per register: vpermps looks up 16 four-bit codes in a 16-float table. */
__attribute__((target("avx512f"))) static void scan4_avx512(const uint8_t *codes, int64_t n_groups,
                                                           int32_t chunks, int32_t book, const float *lut,
                                                           float *out)
{
    (void)book;
    const int64_t gb = (int64_t)chunks * ANN_IVF_PQ_GROUP;
    int64_t g = 0;
    for (; g + 2 <= n_groups; g += 2) { /* two groups: four independent sums */
        const uint8_t *c0 = codes + g * gb, *c1 = c0 + gb;
        __m512 e0 = _mm512_setzero_ps(), o0 = _mm512_setzero_ps();
        __m512 e1 = _mm512_setzero_ps(), o1 = _mm512_setzero_ps();
        for (int32_t p = 0; p < chunks; p++) {
            const __m512 le = _mm512_loadu_ps(lut + 32 * p), lo = _mm512_loadu_ps(lut + 32 * p + 16);
            const __m512i v0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(c0 + 16 * p)));
            const __m512i v1 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(c1 + 16 * p)));
            e0 = _mm512_add_ps(e0, _mm512_permutexvar_ps(v0, le));
            o0 = _mm512_add_ps(o0, _mm512_permutexvar_ps(_mm512_srli_epi32(v0, 4), lo));
            e1 = _mm512_add_ps(e1, _mm512_permutexvar_ps(v1, le));
            o1 = _mm512_add_ps(o1, _mm512_permutexvar_ps(_mm512_srli_epi32(v1, 4), lo));
        }
        _mm512_storeu_ps(out + g * 16, _mm512_add_ps(e0, o0));
        _mm512_storeu_ps(out + (g + 1) * 16, _mm512_add_ps(e1, o1));
    }
    for (; g < n_groups; g++) {
        const uint8_t *c0 = codes + g * gb;
        __m512 e0 = _mm512_setzero_ps(), o0 = _mm512_setzero_ps();
        for (int32_t p = 0; p < chunks; p++) {
            const __m512i v0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(c0 + 16 * p)));
            e0 = _mm512_add_ps(e0, _mm512_permutexvar_ps(v0, _mm512_loadu_ps(lut + 32 * p)));
            o0 = _mm512_add_ps(o0, _mm512_permutexvar_ps(_mm512_srli_epi32(v0, 4), _mm512_loadu_ps(lut + 32 * p + 16)));
        }
        _mm512_storeu_ps(out + g * 16, _mm512_add_ps(e0, o0));
    }
}

/* 8 rows per register: a 16-entry table is two vpermps of 8 entries and a blend on bit 3. */
__attribute__((target("avx2"))) static void scan4_avx2(const uint8_t *codes, int64_t n_groups, int32_t chunks,
                                                       int32_t book, const float *lut, float *out)
{
    (void)book;
    const int64_t gb = (int64_t)chunks * ANN_IVF_PQ_GROUP;
    for (int64_t g = 0; g < n_groups; g++) {
        for (int h = 0; h < 2; h++) {
            const uint8_t *c = codes + g * gb + 8 * h;
            __m256 e = _mm256_setzero_ps(), o = _mm256_setzero_ps();
            for (int32_t p = 0; p < chunks; p++) {
                const float *l = lut + 32 * p;
                const __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(c + 16 * p)));
                const __m256i vh = _mm256_srli_epi32(v, 4);
                __m256 a = _mm256_permutevar8x32_ps(_mm256_loadu_ps(l), v);
                __m256 b = _mm256_permutevar8x32_ps(_mm256_loadu_ps(l + 8), v);
                e = _mm256_add_ps(e, _mm256_blendv_ps(a, b, _mm256_castsi256_ps(_mm256_slli_epi32(v, 28))));
                a = _mm256_permutevar8x32_ps(_mm256_loadu_ps(l + 16), vh);
                b = _mm256_permutevar8x32_ps(_mm256_loadu_ps(l + 24), vh);
                o = _mm256_add_ps(o, _mm256_blendv_ps(a, b, _mm256_castsi256_ps(_mm256_slli_epi32(vh, 28))));
            }
            _mm256_storeu_ps(out + g * 16 + 8 * h, _mm256_add_ps(e, o));
        }
    }
}

#endif

int ann_ivf_pq_scan_kernels(bool four, ann_ivf_pq_scan_fn out[3])
{
    out[0] = four ? scan4_scalar : scan8_scalar;
    out[1] = out[2] = NULL;
#if IVFPQ_X86
    if (four && __builtin_cpu_supports("avx2"))
        out[1] = scan4_avx2;
    if (four && __builtin_cpu_supports("avx512f"))
        out[2] = scan4_avx512;
#endif
    return 3;
}

static ann_ivf_pq_scan_fn pick_scan(int32_t pq_bits)
{
    ann_ivf_pq_scan_fn k[3];
    ann_ivf_pq_scan_kernels(pq_bits == 4, k);
    return k[2] ? k[2] : k[1] ? k[1] : k[0];
}

/* ------------------------------------------------------------------ */
/* LUTs and encoding                                                   */
/* ------------------------------------------------------------------ */

/* L2: lut[j][c] = sum_t (r_jt - P_j[c]_t)^2 for the rotated residual r = R q - R c_l. */
IVFPQ_CLONES static void lut_l2(const ann_ivf_pq_cpu_index *ix, const float *r, float *lut)
{
    const int32_t book = ix->book, len = ix->pq_len;
    for (int32_t j = 0; j < ix->pq_dim; j++) {
        float *L = lut + (int64_t)j * book;
        const float *P = ix->pq_centers + (int64_t)j * len * book;
        const float v0 = r[(int64_t)j * len];
        for (int32_t c = 0; c < book; c++) {
            float u = v0 - P[c];
            L[c] = u * u;
        }
        for (int32_t t = 1; t < len; t++) {
            const float v = r[(int64_t)j * len + t];
            const float *Pt = P + (int64_t)t * book;
            for (int32_t c = 0; c < book; c++) {
                float u = v - Pt[c];
                L[c] += u * u;
            }
        }
    }
}

/* Inner product / cosine: lut[j][c] = -sum_t (R q)_jt P_j[c]_t. */
IVFPQ_CLONES static void lut_ip(const ann_ivf_pq_cpu_index *ix, const float *rq, float *lut)
{
    const int32_t book = ix->book, len = ix->pq_len;
    for (int32_t j = 0; j < ix->pq_dim; j++) {
        float *L = lut + (int64_t)j * book;
        const float *P = ix->pq_centers + (int64_t)j * len * book;
        const float v0 = -rq[(int64_t)j * len];
        for (int32_t c = 0; c < book; c++)
            L[c] = v0 * P[c];
        for (int32_t t = 1; t < len; t++) {
            const float v = -rq[(int64_t)j * len + t];
            const float *Pt = P + (int64_t)t * book;
            for (int32_t c = 0; c < book; c++)
                L[c] += v * Pt[c];
        }
    }
}

/* Nearest codebook entry of each subspace of the rotated residual r (ties: the smaller entry). */
IVFPQ_CLONES static void encode_residual(const ann_ivf_pq_cpu_index *ix, const float *r, uint8_t *code)
{
    const int32_t book = ix->book, len = ix->pq_len;
    float dd[256];
    for (int32_t j = 0; j < ix->pq_dim; j++) {
        const float *P = ix->pq_centers + (int64_t)j * len * book;
        for (int32_t c = 0; c < book; c++)
            dd[c] = 0.0f;
        for (int32_t t = 0; t < len; t++) {
            const float v = r[(int64_t)j * len + t];
            const float *Pt = P + (int64_t)t * book;
            for (int32_t c = 0; c < book; c++) {
                float u = v - Pt[c];
                dd[c] += u * u;
            }
        }
        int32_t best = 0;
        for (int32_t c = 1; c < book; c++)
            if (dd[c] < dd[best])
                best = c;
        code[j] = (uint8_t)best;
    }
}

/* Where subspace j of packed row pr lives: its byte and shift. */
static inline uint8_t *code_byte(const ann_ivf_pq_cpu_index *ix, int32_t list, int64_t pr, int32_t j, int *shift)
{
    const int64_t local = pr - ix->list_offsets[list];
    const int64_t g = ix->group_offsets[list] + local / ANN_IVF_PQ_GROUP;
    const int32_t chunk = ix->pq_bits == 4 ? j / 2 : j;
    *shift = ix->pq_bits == 4 ? 4 * (j & 1) : 0;
    return ix->codes + (g * ix->chunks + chunk) * ANN_IVF_PQ_GROUP + local % ANN_IVF_PQ_GROUP;
}

/* ------------------------------------------------------------------ */
/* Build                                                               */
/* ------------------------------------------------------------------ */

void ann_ivf_pq_cpu_free(ann_ivf_pq_cpu_index *ix)
{
    if (!ix)
        return;
    free(ix->centers);
    free(ix->center_norms);
    free(ix->centers_rot);
    free(ix->rotation);
    free(ix->pq_centers);
    free(ix->list_offsets);
    free(ix->group_offsets);
    free(ix->list_ids);
    free(ix->codes);
    free(ix);
}

static bool vector_dtype(ann_dtype t)
{
    return t == ANN_DTYPE_F32 || t == ANN_DTYPE_F16 || t == ANN_DTYPE_I8 || t == ANN_DTYPE_U8;
}

/* Rows of a sorted random sample of n_train of n rows (selection sampling, Knuth's algorithm S). */
static void sample_rows(int64_t n, int64_t n_train, uint64_t seed, int64_t *rows)
{
    uint64_t s = seed ^ 0x3c6ef372fe94f82bull;
    int64_t need = n_train, m = 0;
    for (int64_t i = 0; i < n && m < n_train; i++)
        if (uniform01(&s) * (double)(n - i) < (double)need) {
            rows[m++] = i;
            need--;
        }
}

/*
 * Codebooks: subspace j is trained by balanced k-means (L2) on column
 * slice j of the rotated residuals rres (n x rot_dim), independently of
 * the others (one thread each).  With fewer rows than codes, the missing
 * entries copy entry 0 (never chosen: ties go to the smaller entry).
 */
static ann_status train_codebooks(ann_ivf_pq_cpu_index *ix, float *rres, int64_t n, int32_t n_iters,
                                  uint64_t seed, int nt)
{
    const int32_t book = ix->book, len = ix->pq_len;
    const int32_t c_eff = n < book ? (int32_t)n : book;
    ann_status st = ANN_OK;
    char why[256] = "";
#pragma omp parallel num_threads(nt)
    {
        float *cb = malloc((size_t)book * len * sizeof(float));
        ann_status mine = cb ? ANN_OK : ann_set_error(ANN_ERR_NOMEM, "ivf_pq: out of memory for a codebook");
#pragma omp for schedule(dynamic, 1)
        for (int32_t j = 0; j < ix->pq_dim; j++) {
            if (mine != ANN_OK)
                continue;
            ann_matrix v = {rres + (int64_t)j * len, n, len, (int64_t)ix->rot_dim * 4,
                            ANN_DTYPE_F32, ANN_LOC_HOST, NULL};
            ann_kmeans_params kp = {ANN_METRIC_SQEUCLIDEAN, c_eff, n_iters, seed + (uint64_t)j};
            mine = ann_cpu_kmeans_fit(&kp, &v, 1, cb);
            if (mine != ANN_OK)
                continue;
            float *P = ix->pq_centers + (int64_t)j * len * book;
            for (int32_t c = 0; c < book; c++)
                for (int32_t t = 0; t < len; t++)
                    P[(int64_t)t * book + c] = cb[(int64_t)(c < c_eff ? c : 0) * len + t];
        }
        free(cb);
        if (mine != ANN_OK) {
#pragma omp critical(ivf_pq_codebook_error)
            if (st == ANN_OK) {
                st = mine;
                snprintf(why, sizeof why, "%s", ann_last_error()); /* the worker's thread-local text */
            }
        }
    }
    return st == ANN_OK ? ANN_OK : ann_set_error(st, "%s", why);
}

/* Labels of every row: nearest coarse center, by batches of converted rows. */
static ann_status label_rows(const ann_ivf_pq_cpu_index *ix, const ann_matrix *data, int nt, int32_t *labels)
{
    const int64_t n = data->rows, d = data->cols, chunk = 16384;
    const bool norm = ix->metric == ANN_METRIC_COSINE;
    if (data->dtype == ANN_DTYPE_F32 && !norm)
        return ann_cpu_kmeans_predict(ix->coarse_metric, ix->centers, ix->n_lists, data, nt, labels);
    float *buf = malloc((size_t)(n < chunk ? n : chunk) * d * sizeof(float) + 1);
    if (!buf)
        return ann_set_error(ANN_ERR_NOMEM, "ivf_pq: out of memory");
    ann_status st = ANN_OK;
    for (int64_t b = 0; b < n && st == ANN_OK; b += chunk) {
        int64_t m = n - b < chunk ? n - b : chunk;
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t i = 0; i < m; i++)
            load_row(data, b + i, norm, buf + i * d);
        ann_matrix v = ann_matrix_view(buf, m, d, ANN_DTYPE_F32);
        st = ann_cpu_kmeans_predict(ix->coarse_metric, ix->centers, ix->n_lists, &v, nt, labels + b);
    }
    free(buf);
    return st;
}

ann_status ann_ivf_pq_cpu_build(const ann_ivf_pq_params *p_in, const ann_matrix *data, ann_exec *ex,
                                ann_ivf_pq_cpu_index **out)
{
    *out = NULL;
    ann_exec dflt;
    if (!ex) {
        ann_exec_init(&dflt);
        ex = &dflt;
    }
    ann_ivf_pq_params p = *p_in;
    size_t ntab;
    const ann_param_desc *tab = ann_ivf_pq_param_table(&ntab);
    ann_status st = ann_params_check(tab, ntab, &p);
    if (st == ANN_OK)
        st = check_metric_kind(p.metric, p.codebook_kind);
    if (st != ANN_OK)
        return st;
    if (data->loc != ANN_LOC_HOST || !vector_dtype(data->dtype))
        return ann_set_error(ANN_ERR_UNSUPPORTED, "ivf_pq: dataset of dtype %s (expected f32, f16, i8, u8 on the host)",
                             ann_dtype_name(data->dtype));
    const int64_t n = data->rows, d = data->cols;
    if (n < 1 || d < 1)
        return ann_set_error(ANN_ERR_INVALID_ARG, "ivf_pq: empty dataset (%lld x %lld)", (long long)n, (long long)d);
    if (p.n_lists > n)
        return ann_set_error(ANN_ERR_INVALID_ARG, "ivf_pq: n_lists = %d exceeds the %lld rows of the dataset",
                             (int)p.n_lists, (long long)n);
    if (p.pq_dim == 0)
        p.pq_dim = auto_pq_dim(d);
    const int nt = ann_threads(ex->n_threads);
    const bool norm = p.metric == ANN_METRIC_COSINE;

    ann_ivf_pq_cpu_index *ix = calloc(1, sizeof *ix);
    if (!ix)
        return ann_set_error(ANN_ERR_NOMEM, "ivf_pq: out of memory");
    ix->metric = p.metric;
    ix->coarse_metric = norm ? ANN_METRIC_COSINE : ANN_METRIC_SQEUCLIDEAN;
    ix->rows = n;
    ix->dim = d;
    ix->n_lists = p.n_lists;
    ix->pq_dim = p.pq_dim;
    ix->pq_bits = p.pq_bits;
    ix->pq_len = (int32_t)((d + p.pq_dim - 1) / p.pq_dim);
    ix->rot_dim = ix->pq_dim * ix->pq_len;
    ix->book = 1 << p.pq_bits;
    ix->chunks = p.pq_bits == 4 ? (p.pq_dim + 1) / 2 : p.pq_dim;
    const int64_t L = ix->n_lists, rd = ix->rot_dim;

    int64_t *train_rows = NULL, *pos = NULL;
    float *train = NULL, *res = NULL, *rres = NULL;
    int32_t *labels = NULL, *all_labels = NULL;
    ix->centers = malloc((size_t)L * d * sizeof(float));
    ix->center_norms = malloc((size_t)L * sizeof(float));
    ix->centers_rot = malloc((size_t)L * rd * sizeof(float));
    ix->pq_centers = malloc((size_t)ix->pq_dim * ix->pq_len * ix->book * sizeof(float));
    ix->list_offsets = calloc((size_t)L + 1, sizeof(int64_t));
    ix->group_offsets = calloc((size_t)L + 1, sizeof(int64_t));
    ix->list_ids = malloc((size_t)n * sizeof(int64_t));
    if (!ix->centers || !ix->center_norms || !ix->centers_rot || !ix->pq_centers || !ix->list_offsets ||
        !ix->group_offsets || !ix->list_ids) {
        st = ann_set_error(ANN_ERR_NOMEM, "ivf_pq: out of memory for an index of %lld rows", (long long)n);
        goto cleanup;
    }

    /* 1. Training subsample (notes 4.2: n / max(1, n / max(fraction x n, n_lists)) rows). */
    int64_t want = (int64_t)((double)p.kmeans_trainset_fraction * (double)n);
    if (want < p.n_lists)
        want = p.n_lists;
    const int64_t ratio = n / want > 1 ? n / want : 1;
    const int64_t n_train = n / ratio;
    /* every row of float data that needs no normalising: train on the data itself, not a copy */
    const bool direct = n_train == n && data->dtype == ANN_DTYPE_F32 && !norm && data->stride % 4 == 0;
    ann_matrix tv;
    train_rows = direct ? NULL : malloc((size_t)n_train * sizeof(int64_t));
    train = direct ? NULL : malloc((size_t)n_train * d * sizeof(float));
    labels = malloc((size_t)n_train * sizeof(int32_t));
    if ((!direct && (!train_rows || !train)) || !labels) {
        st = ann_set_error(ANN_ERR_NOMEM, "ivf_pq: out of memory for %lld training rows", (long long)n_train);
        goto cleanup;
    }
    if (direct) {
        tv = *data;
        tv.owner = NULL;
    } else {
        sample_rows(n, n_train, ex->seed, train_rows);
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t i = 0; i < n_train; i++)
            load_row(data, train_rows[i], norm, train + i * d);
        tv = ann_matrix_view(train, n_train, d, ANN_DTYPE_F32);
    }

    /* 2. Coarse centers. */
    ann_kmeans_params kp = {ix->coarse_metric, p.n_lists, p.kmeans_n_iters, ex->seed};
    if ((st = ann_cpu_kmeans_fit(&kp, &tv, nt, ix->centers)) != ANN_OK)
        goto cleanup;
    for (int64_t l = 0; l < L; l++)
        ix->center_norms[l] = ann_dot_f32(ix->centers + l * d, ix->centers + l * d, d);
    if ((st = ann_cpu_kmeans_predict(ix->coarse_metric, ix->centers, p.n_lists, &tv, nt, labels)) != ANN_OK)
        goto cleanup;
    if (ann_interrupted(ex)) {
        st = ann_set_error(ANN_ERR_INTERRUPTED, "interrupted");
        goto cleanup;
    }

    /* 3. Rotation. */
    if (rd != d || p.force_random_rotation) {
        ix->rotation = malloc((size_t)rd * d * sizeof(float));
        if (!ix->rotation) {
            st = ann_set_error(ANN_ERR_NOMEM, "ivf_pq: out of memory for the rotation");
            goto cleanup;
        }
        if ((st = make_rotation((int32_t)rd, d, ex->seed, nt, ix->rotation)) != ANN_OK)
            goto cleanup;
    }
    rotate_rows(ix, ix->centers, L, ix->centers_rot);

    /* 4. Codebooks from the rotated residuals of a strided part of the subsample. */
    {
        int64_t n_pq = (int64_t)p.max_train_points_per_pq_code * ix->book;
        if (n_pq > n_train)
            n_pq = n_train;
        res = malloc((size_t)n_pq * d * sizeof(float));
        rres = malloc((size_t)n_pq * rd * sizeof(float));
        if (!res || !rres) {
            st = ann_set_error(ANN_ERR_NOMEM, "ivf_pq: out of memory for %lld codebook training rows",
                               (long long)n_pq);
            goto cleanup;
        }
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t i = 0; i < n_pq; i++) {
            const int64_t s = (int64_t)((double)i * (double)n_train / (double)n_pq);
            const float *x = ann_matrix_row(&tv, s), *c = ix->centers + (int64_t)labels[s] * d;
            for (int64_t t = 0; t < d; t++)
                res[i * d + t] = x[t] - c[t];
        }
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
        for (int64_t b = 0; b < n_pq; b += ENCODE_BLOCK)
            rotate_rows(ix, res + b * d, n_pq - b < ENCODE_BLOCK ? n_pq - b : ENCODE_BLOCK, rres + b * rd);
        free(res);
        res = NULL;
        free(train);
        train = NULL;
        if ((st = train_codebooks(ix, rres, n_pq, p.kmeans_n_iters, ex->seed, nt)) != ANN_OK)
            goto cleanup;
        free(rres);
        rres = NULL;
    }
    if (ann_interrupted(ex)) {
        st = ann_set_error(ANN_ERR_INTERRUPTED, "interrupted");
        goto cleanup;
    }

    /* 5. Lists: every row's label, then list offsets (rows and groups) and ids sorted by row. */
    all_labels = malloc((size_t)n * sizeof(int32_t));
    pos = malloc((size_t)n * sizeof(int64_t));
    if (!all_labels || !pos) {
        st = ann_set_error(ANN_ERR_NOMEM, "ivf_pq: out of memory for %lld labels", (long long)n);
        goto cleanup;
    }
    if ((st = label_rows(ix, data, nt, all_labels)) != ANN_OK)
        goto cleanup;
    for (int64_t i = 0; i < n; i++)
        ix->list_offsets[all_labels[i] + 1]++;
    for (int64_t l = 0; l < L; l++) {
        const int64_t sz = ix->list_offsets[l + 1];
        ix->group_offsets[l + 1] = ix->group_offsets[l] + (sz + ANN_IVF_PQ_GROUP - 1) / ANN_IVF_PQ_GROUP;
        ix->list_offsets[l + 1] += ix->list_offsets[l];
    }
    {
        int64_t *fill = malloc((size_t)L * sizeof(int64_t));
        if (!fill) {
            st = ann_set_error(ANN_ERR_NOMEM, "ivf_pq: out of memory");
            goto cleanup;
        }
        memcpy(fill, ix->list_offsets, (size_t)L * sizeof(int64_t));
        for (int64_t i = 0; i < n; i++) {
            pos[i] = fill[all_labels[i]]++;
            ix->list_ids[pos[i]] = i;
        }
        free(fill);
    }
    ix->codes = calloc((size_t)ix->group_offsets[L] * ix->chunks * ANN_IVF_PQ_GROUP + 1, 1);
    if (!ix->codes) {
        st = ann_set_error(ANN_ERR_NOMEM, "ivf_pq: out of memory for the codes");
        goto cleanup;
    }

    /* 6. Encode: residual, rotation, nearest entries, written at the row's packed place. */
    for (int64_t b0 = 0; b0 < n && st == ANN_OK; b0 += BATCH_ROWS) {
        const int64_t b1 = n - b0 < BATCH_ROWS ? n : b0 + BATCH_ROWS;
        int failed = 0;
#pragma omp parallel num_threads(nt)
        {
            float *x = malloc((size_t)ENCODE_BLOCK * d * sizeof(float));
            float *r = malloc((size_t)ENCODE_BLOCK * rd * sizeof(float));
            uint8_t *code = malloc((size_t)ix->pq_dim + 1);
            if (!x || !r || !code)
                failed = 1;
#pragma omp for schedule(dynamic, 1)
            for (int64_t e0 = b0; e0 < b1; e0 += ENCODE_BLOCK) {
                if (!x || !r || !code)
                    continue;
                const int64_t m = b1 - e0 < ENCODE_BLOCK ? b1 - e0 : ENCODE_BLOCK;
                for (int64_t i = 0; i < m; i++) {
                    float *xi = x + i * d;
                    const float *c = ix->centers + (int64_t)all_labels[e0 + i] * d;
                    load_row(data, e0 + i, norm, xi);
                    for (int64_t t = 0; t < d; t++)
                        xi[t] -= c[t];
                }
                rotate_rows(ix, x, m, r);
                for (int64_t i = 0; i < m; i++) {
                    encode_residual(ix, r + i * rd, code);
                    const int32_t l = all_labels[e0 + i];
                    for (int32_t j = 0; j < ix->pq_dim; j++) {
                        int shift;
                        uint8_t *byte = code_byte(ix, l, pos[e0 + i], j, &shift);
                        *byte |= (uint8_t)(code[j] << shift);
                    }
                }
            }
            free(x);
            free(r);
            free(code);
        }
        if (failed)
            st = ann_set_error(ANN_ERR_NOMEM, "ivf_pq: out of memory while encoding");
        else if (ann_interrupted(ex))
            st = ann_set_error(ANN_ERR_INTERRUPTED, "interrupted");
        else if (ex->progress)
            ex->progress(ex->progress_user, "ivf_pq_build", b1, n);
    }

cleanup:
    free(train_rows);
    free(train);
    free(labels);
    free(res);
    free(rres);
    free(all_labels);
    free(pos);
    if (st != ANN_OK) {
        ann_ivf_pq_cpu_free(ix);
        return st;
    }
    *out = ix;
    return ANN_OK;
}

void ann_ivf_pq_cpu_reconstruct(const ann_ivf_pq_cpu_index *ix, int64_t row, float *out)
{
    int32_t l = 0;
    while (l + 1 < ix->n_lists && ix->list_offsets[l + 1] <= row)
        l++;
    memcpy(out, ix->centers_rot + (int64_t)l * ix->rot_dim, (size_t)ix->rot_dim * sizeof(float));
    for (int32_t j = 0; j < ix->pq_dim; j++) {
        int shift;
        const uint8_t *byte = code_byte(ix, l, row, j, &shift);
        const int32_t c = (*byte >> shift) & (ix->book - 1);
        for (int32_t t = 0; t < ix->pq_len; t++)
            out[(int64_t)j * ix->pq_len + t] +=
                ix->pq_centers[((int64_t)j * ix->pq_len + t) * ix->book + c];
    }
}

/* ------------------------------------------------------------------ */
/* Search                                                              */
/* ------------------------------------------------------------------ */

/*
 * The k best (key, id) pairs of a stream, ties by id: candidates no worse
 * than the bound are appended to a buffer of 2k; when it is full, a
 * quickselect keeps the k best and the bound becomes the worst of them.
 * Amortised O(1) per candidate, where a heap costs O(log k) per insertion.
 */
typedef struct cbuf {
    float *key;
    int64_t *id;
    int64_t n, k, cap;
    float bound;
} cbuf;

static inline bool pair_less(float ka, int64_t ia, float kb, int64_t ib)
{
    return ka < kb || (ka == kb && ia < ib);
}

/* Reorder so that the first k of n pairs are the k smallest by (key, id) (Hoare quickselect). */
static void pair_select(float *key, int64_t *id, int64_t n, int64_t k)
{
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2;
        int64_t a = lo, b = mid, c = hi, piv; /* median of three */
        if (pair_less(key[b], id[b], key[a], id[a])) {
            int64_t t = a; a = b; b = t;
        }
        if (pair_less(key[c], id[c], key[b], id[b]))
            b = pair_less(key[c], id[c], key[a], id[a]) ? a : c;
        piv = b;
        const float pk = key[piv];
        const int64_t pi = id[piv];
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (pair_less(key[i], id[i], pk, pi))
                i++;
            while (pair_less(pk, pi, key[j], id[j]))
                j--;
            if (i <= j) {
                float tk = key[i];
                key[i] = key[j];
                key[j] = tk;
                int64_t ti = id[i];
                id[i] = id[j];
                id[j] = ti;
                i++;
                j--;
            }
        }
        if (k - 1 <= j)
            hi = j;
        else if (k - 1 >= i)
            lo = i;
        else
            break;
    }
}

static void cbuf_shrink(cbuf *b)
{
    pair_select(b->key, b->id, b->n, b->k);
    b->n = b->k;
    float w = b->key[0];
    for (int64_t i = 1; i < b->k; i++)
        if (b->key[i] > w)
            w = b->key[i];
    b->bound = w;
}

static inline void cbuf_push(cbuf *b, float key, int64_t id)
{
    b->key[b->n] = key;
    b->id[b->n] = id;
    if (++b->n == b->cap)
        cbuf_shrink(b);
}

/* The best min(n, k) pairs, sorted, into key/id; returns their number. */
static int32_t cbuf_finish(cbuf *b, float *key, int64_t *id)
{
    if (b->n > b->k)
        cbuf_shrink(b);
    ann_pairs_sort(b->key, b->id, b->n);
    memcpy(key, b->key, (size_t)b->n * sizeof(float));
    memcpy(id, b->id, (size_t)b->n * sizeof(int64_t));
    return (int32_t)b->n;
}

/* What one thread needs to search blocks of QUERY_BLOCK queries. */
typedef struct scratch {
    float *coarse;     /* QUERY_BLOCK x n_lists dot products */
    float *rq;         /* QUERY_BLOCK x rot_dim */
    float *resid;      /* rot_dim */
    float *lut;        /* 2 x chunks (4-bit) or pq_dim tables of book floats; the padding table stays 0 */
    float *scores;     /* largest list, rounded up to groups */
    float *pk;         /* n_lists: probe heap */
    int64_t *pi;
    int32_t *probes;   /* n_lists */
    float *bk;         /* candidate buffer: 2k + 1 */
    int64_t *bi;
} scratch;

static void scratch_free(scratch *s)
{
    free(s->coarse);
    free(s->rq);
    free(s->resid);
    free(s->lut);
    free(s->scores);
    free(s->pk);
    free(s->pi);
    free(s->probes);
    free(s->bk);
    free(s->bi);
    memset(s, 0, sizeof *s);
}

static bool scratch_alloc(const ann_ivf_pq_cpu_index *ix, int64_t k, scratch *s)
{
    int64_t max_groups = 1;
    for (int32_t l = 0; l < ix->n_lists; l++)
        if (ix->group_offsets[l + 1] - ix->group_offsets[l] > max_groups)
            max_groups = ix->group_offsets[l + 1] - ix->group_offsets[l];
    const int64_t tables = ix->pq_bits == 4 ? 2 * (int64_t)ix->chunks : ix->chunks;
    s->coarse = malloc((size_t)QUERY_BLOCK * ix->n_lists * sizeof(float));
    s->rq = malloc((size_t)QUERY_BLOCK * ix->rot_dim * sizeof(float));
    s->resid = malloc((size_t)ix->rot_dim * sizeof(float));
    s->lut = calloc((size_t)tables * ix->book, sizeof(float));
    s->scores = malloc((size_t)max_groups * ANN_IVF_PQ_GROUP * sizeof(float));
    s->pk = malloc((size_t)ix->n_lists * sizeof(float));
    s->pi = malloc((size_t)ix->n_lists * sizeof(int64_t));
    s->probes = malloc((size_t)ix->n_lists * sizeof(int32_t));
    s->bk = malloc((size_t)(2 * k + 1) * sizeof(float));
    s->bi = malloc((size_t)(2 * k + 1) * sizeof(int64_t));
    if (s->coarse && s->rq && s->resid && s->lut && s->scores && s->pk && s->pi && s->probes && s->bk && s->bi)
        return true;
    scratch_free(s);
    return false;
}

/*
 * The lists to scan for one query, best first, from its coarse dot
 * products: the n_probes best by (key, list), and more in that order
 * while they hold fewer than @p need rows.  Returns their number.
 */
static int32_t select_probes(const ann_ivf_pq_cpu_index *ix, const float *dots, int32_t np, int64_t need,
                             scratch *s)
{
    const bool l2 = ix->metric == ANN_METRIC_SQEUCLIDEAN || ix->metric == ANN_METRIC_EUCLIDEAN;
    for (int pass = 0; pass < 2; pass++) {
        const int32_t cap = pass == 0 ? np : ix->n_lists;
        ann_topk h;
        ann_topk_init(&h, s->pk, s->pi, cap);
        for (int32_t l = 0; l < ix->n_lists; l++) {
            const float key = l2 ? ix->center_norms[l] - 2.0f * dots[l] : -dots[l];
            if (key <= ann_topk_bound(&h))
                ann_topk_push(&h, key, l);
        }
        ann_topk_sort(&h);
        int64_t have = 0;
        int32_t cnt = 0;
        for (int32_t i = 0; i < h.n && (i < np || have < need); i++) {
            s->probes[cnt++] = (int32_t)s->pi[i];
            have += ix->list_offsets[s->pi[i] + 1] - ix->list_offsets[s->pi[i]];
        }
        if (have >= need || cap == ix->n_lists)
            return cnt;
    }
    return 0; /* not reached */
}

/*
 * Search m queries qf (m x dim floats, unit length for cosine) for their
 * k best rows by PQ score ("smaller is better": squared L2 distance in
 * the rotated space, or -dot for inner_product): keys/ids (m x k, best
 * first, ties by id) and counts (m).
 */
static void search_block(const ann_ivf_pq_cpu_index *ix, ann_ivf_pq_scan_fn scan, const float *qf, int64_t m,
                         int32_t np, int64_t k, scratch *s, float *keys, int64_t *ids, int32_t *counts)
{
    const int64_t d = ix->dim, rd = ix->rot_dim;
    const bool l2 = ix->metric != ANN_METRIC_INNER_PRODUCT; /* cosine: L2 on unit vectors */
    ann_gemm_abt(m, ix->n_lists, d, qf, d, ix->centers, d, s->coarse, ix->n_lists);
    rotate_rows(ix, qf, m, s->rq);
    for (int64_t i = 0; i < m; i++) {
        const float *dots = s->coarse + i * ix->n_lists, *rq = s->rq + i * rd;
        const int32_t nprobe = select_probes(ix, dots, np, k, s);
        cbuf h = {s->bk, s->bi, 0, k, 2 * k, INFINITY};
        if (!l2)
            lut_ip(ix, rq, s->lut);
        for (int32_t pp = 0; pp < nprobe; pp++) {
            const int32_t l = s->probes[pp];
            float cst = 0.0f;
            if (l2) {
                const float *cr = ix->centers_rot + (int64_t)l * rd;
                for (int64_t t = 0; t < rd; t++)
                    s->resid[t] = rq[t] - cr[t];
                lut_l2(ix, s->resid, s->lut);
            } else {
                cst = -dots[l];
            }
            const int64_t g0 = ix->group_offsets[l], ng = ix->group_offsets[l + 1] - g0;
            const int64_t r0 = ix->list_offsets[l], nr = ix->list_offsets[l + 1] - r0;
            scan(ix->codes + g0 * ix->chunks * ANN_IVF_PQ_GROUP, ng, ix->chunks, ix->book, s->lut, s->scores);
            const float *sc = s->scores;
            const int64_t *lid = ix->list_ids + r0;
            for (int64_t r = 0; r < nr; r++) {
                const float key = cst + sc[r];
                if (key <= h.bound)
                    cbuf_push(&h, key, lid[r]);
            }
        }
        counts[i] = cbuf_finish(&h, keys + i * k, ids + i * k);
    }
}

ann_status ann_ivf_pq_cpu_search(const ann_ivf_pq_cpu_index *ix, const ann_ivf_pq_search_params *p,
                                 const ann_matrix *q, int64_t k, ann_exec *ex, int64_t *ids, float *dist)
{
    if (q->cols != ix->dim)
        return ann_set_error(ANN_ERR_INVALID_ARG, "ivf_pq: queries of dimension %lld for an index of dimension %lld",
                             (long long)q->cols, (long long)ix->dim);
    if (k < 1 || p->n_probes < 1)
        return ann_set_error(ANN_ERR_INVALID_ARG, "ivf_pq: k = %lld, n_probes = %d", (long long)k, (int)p->n_probes);
    const int nt = ann_threads(ex ? ex->n_threads : 0);
    const int32_t np = p->n_probes < ix->n_lists ? p->n_probes : ix->n_lists;
    const int64_t d = ix->dim, nq = q->rows;
    const bool norm = ix->metric == ANN_METRIC_COSINE;
    const ann_ivf_pq_scan_fn scan = pick_scan(ix->pq_bits);
    int failed = 0;
#pragma omp parallel num_threads(nt)
    {
        scratch s;
        memset(&s, 0, sizeof s);
        float *qf = malloc((size_t)QUERY_BLOCK * d * sizeof(float));
        int32_t cnt[QUERY_BLOCK];
        bool ok = qf && scratch_alloc(ix, k, &s);
        if (!ok)
            failed = 1;
#pragma omp for schedule(dynamic, 1)
        for (int64_t b = 0; b < nq; b += QUERY_BLOCK) {
            if (!ok)
                continue;
            const int64_t m = nq - b < QUERY_BLOCK ? nq - b : QUERY_BLOCK;
            for (int64_t i = 0; i < m; i++)
                load_row(q, b + i, norm, qf + i * d);
            search_block(ix, scan, qf, m, np, k, &s, dist + b * k, ids + b * k, cnt);
            for (int64_t i = 0; i < m; i++) {
                float *od = dist + (b + i) * k;
                int64_t *oi = ids + (b + i) * k;
                for (int64_t j = 0; j < k; j++) {
                    if (j >= cnt[i]) {
                        oi[j] = -1;
                        od[j] = ann_metric_worst(ix->metric);
                    } else if (ix->metric == ANN_METRIC_INNER_PRODUCT) {
                        od[j] = -od[j];
                    } else if (ix->metric == ANN_METRIC_COSINE) {
                        od[j] = 0.5f * od[j]; /* |a - b|^2 / 2 = 1 - cos for unit vectors */
                    } else if (ix->metric == ANN_METRIC_EUCLIDEAN) {
                        od[j] = sqrtf(fmaxf(0.0f, od[j]));
                    }
                }
            }
        }
        free(qf);
        scratch_free(&s);
    }
    if (failed)
        return ann_set_error(ANN_ERR_NOMEM, "ivf_pq: out of memory for search buffers");
    return ANN_OK;
}

void ann_ivf_pq_cpu_view(const ann_ivf_pq_cpu_index *ix, void **device_cache, ann_ivf_pq_view *out)
{
    memset(out, 0, sizeof *out);
    out->metric = ix->metric;
    out->coarse_metric = ix->coarse_metric;
    out->rows = ix->rows;
    out->dim = ix->dim;
    out->n_lists = ix->n_lists;
    out->pq_dim = ix->pq_dim;
    out->pq_bits = ix->pq_bits;
    out->pq_len = ix->pq_len;
    out->rot_dim = ix->rot_dim;
    out->book = ix->book;
    out->chunks = ix->chunks;
    out->centers = ix->centers;
    out->center_norms = ix->center_norms;
    out->centers_rot = ix->centers_rot;
    out->rotation = ix->rotation;
    out->pq_centers = ix->pq_centers;
    out->list_offsets = ix->list_offsets;
    out->group_offsets = ix->group_offsets;
    out->list_ids = ix->list_ids;
    out->codes = ix->codes;
    out->device_cache = device_cache;
}

/* An index over the arrays of view @p v (not copied; the search only reads them). */
static void index_of_view(const ann_ivf_pq_view *v, ann_ivf_pq_cpu_index *ix)
{
    memset(ix, 0, sizeof *ix);
    ix->metric = v->metric;
    ix->coarse_metric = v->coarse_metric;
    ix->rows = v->rows;
    ix->dim = v->dim;
    ix->n_lists = v->n_lists;
    ix->pq_dim = v->pq_dim;
    ix->pq_bits = v->pq_bits;
    ix->pq_len = v->pq_len;
    ix->rot_dim = v->rot_dim;
    ix->book = v->book;
    ix->chunks = v->chunks;
    ix->centers = (float *)v->centers;
    ix->center_norms = (float *)v->center_norms;
    ix->centers_rot = (float *)v->centers_rot;
    ix->rotation = (float *)v->rotation;
    ix->pq_centers = (float *)v->pq_centers;
    ix->list_offsets = (int64_t *)v->list_offsets;
    ix->group_offsets = (int64_t *)v->group_offsets;
    ix->list_ids = (int64_t *)v->list_ids;
    ix->codes = (uint8_t *)v->codes;
}

ann_status ann_ivf_pq_cpu_candidates(const ann_ivf_pq_view *v, const ann_matrix *q, int32_t n_probes, int64_t n_cand,
                                     int n_threads, int64_t *ids, float *scores)
{
    if (q->cols != v->dim || q->dtype != ANN_DTYPE_F32)
        return ann_set_error(ANN_ERR_INVALID_ARG, "ivf_pq: queries of %s x %lld for an index of dimension %lld (f32)",
                             ann_dtype_name(q->dtype), (long long)q->cols, (long long)v->dim);
    if (n_cand < 1 || n_probes < 1)
        return ann_set_error(ANN_ERR_INVALID_ARG, "ivf_pq: n_cand = %lld, n_probes = %d", (long long)n_cand,
                             (int)n_probes);
    ann_ivf_pq_cpu_index ix;
    index_of_view(v, &ix);
    const int nt = ann_threads(n_threads);
    const int32_t np = n_probes < ix.n_lists ? n_probes : ix.n_lists;
    const int64_t d = ix.dim, nq = q->rows;
    const ann_ivf_pq_scan_fn scan = pick_scan(ix.pq_bits);
    int failed = 0;
#pragma omp parallel num_threads(nt)
    {
        scratch s;
        memset(&s, 0, sizeof s);
        float *qf = malloc((size_t)QUERY_BLOCK * d * sizeof(float));
        int32_t cnt[QUERY_BLOCK];
        bool ok = qf && scratch_alloc(&ix, n_cand, &s);
        if (!ok)
            failed = 1;
#pragma omp for schedule(dynamic, 1)
        for (int64_t b = 0; b < nq; b += QUERY_BLOCK) {
            if (!ok)
                continue;
            const int64_t m = nq - b < QUERY_BLOCK ? nq - b : QUERY_BLOCK;
            for (int64_t i = 0; i < m; i++)
                load_row(q, b + i, false, qf + i * d);
            search_block(&ix, scan, qf, m, np, n_cand, &s, scores + b * n_cand, ids + b * n_cand, cnt);
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = cnt[i]; j < n_cand; j++) {
                    ids[(b + i) * n_cand + j] = -1;
                    scores[(b + i) * n_cand + j] = INFINITY;
                }
        }
        free(qf);
        scratch_free(&s);
    }
    if (failed)
        return ann_set_error(ANN_ERR_NOMEM, "ivf_pq: out of memory for search buffers");
    return ANN_OK;
}

/* ------------------------------------------------------------------ */
/* The kNN graph                                                       */
/* ------------------------------------------------------------------ */

/*
 * Row @p self of the graph from its @p cnt candidates cid (source ids):
 * exact distances of its original values @p q (dim floats) to each
 * (ann_exact_dist, double), sorted by (distance, id), the row itself
 * dropped, the first deg written to out_ids / out_dist (row self).  cv:
 * cnt entries of scratch, xf: dim floats.  Returns 1 when the row was
 * among its candidates, else 0.
 */
static int64_t refine_row(const ann_matrix *data, ann_metric metric, int64_t self, const float *q, const int64_t *cid,
                          int32_t cnt, int64_t deg, ann_ranked *cv, float *xf, uint32_t *out_ids, float *out_dist)
{
    const int64_t d = data->cols, n = data->rows;
    int64_t found = 0;
    for (int32_t j = 0; j < cnt; j++) {
        const int64_t id = cid[j];
        const void *x = (const char *)data->data + id * data->stride;
        if (data->dtype != ANN_DTYPE_F32) {
            ann_row_to_f32(x, data->dtype, d, xf);
            x = xf;
        }
        double v = ann_exact_dist(metric, q, x, ANN_DTYPE_F32, d);
        cv[j].key = metric == ANN_METRIC_INNER_PRODUCT ? -v : v;
        cv[j].id = id;
        found += id == self;
    }
    qsort(cv, (size_t)cnt, sizeof(ann_ranked), ann_ranked_cmp);
    uint32_t *orow = out_ids + self * deg;
    float *drow = out_dist ? out_dist + self * deg : NULL;
    int64_t c = 0;
    for (int32_t j = 0; j < cnt && c < deg; j++) {
        if (cv[j].id == self)
            continue;
        orow[c] = (uint32_t)cv[j].id;
        if (drow)
            drow[c] = (float)(metric == ANN_METRIC_INNER_PRODUCT ? -cv[j].key : cv[j].key);
        c++;
    }
    for (; c < deg; c++) { /* not reached: there are always deg + 1 candidates */
        orow[c] = (uint32_t)((self + 1 + c) % n);
        if (drow)
            drow[c] = ann_metric_worst(metric);
    }
    return found;
}

/*
 * The candidate search and refine of the graph on the CPU: every thread
 * searches blocks of QUERY_BLOCK rows (in packed order) and refines them.
 * Returns the status; *self_found gets the rows found among their own
 * candidates.
 */
static ann_status graph_search_cpu(const ann_ivf_pq_cpu_index *ix, const ann_ivf_pq_graph_params *p,
                                   const ann_matrix *data, ann_exec *ex, int64_t n_cand, uint32_t *out_ids,
                                   float *out_dist, int64_t *self_found)
{
    const int64_t n = data->rows, d = data->cols, deg = p->graph_degree;
    const ann_metric metric = p->index.metric;
    const int nt = ann_threads(ex->n_threads);
    const ann_ivf_pq_scan_fn scan = pick_scan(ix->pq_bits);
    const bool norm = metric == ANN_METRIC_COSINE;
    ann_status st = ANN_OK;
    /* Queries in packed (list) order: consecutive queries probe the same lists. */
    for (int64_t b0 = 0; b0 < n && st == ANN_OK; b0 += BATCH_ROWS) {
        const int64_t b1 = n - b0 < BATCH_ROWS ? n : b0 + BATCH_ROWS;
        int failed = 0;
        int64_t found = 0;
#pragma omp parallel num_threads(nt) reduction(+ : found)
        {
            scratch s;
            memset(&s, 0, sizeof s);
            float *qo = malloc((size_t)QUERY_BLOCK * d * sizeof(float)); /* original values */
            float *qn = norm ? malloc((size_t)QUERY_BLOCK * d * sizeof(float)) : NULL;
            float *xf = malloc((size_t)d * sizeof(float));
            float *ck = malloc((size_t)QUERY_BLOCK * n_cand * sizeof(float));
            int64_t *ci = malloc((size_t)QUERY_BLOCK * n_cand * sizeof(int64_t));
            ann_ranked *cv = malloc((size_t)n_cand * sizeof(ann_ranked));
            int32_t cnt[QUERY_BLOCK];
            bool ok = qo && (qn || !norm) && xf && ck && ci && cv && scratch_alloc(ix, n_cand, &s);
            if (!ok)
                failed = 1;
#pragma omp for schedule(dynamic, 1)
            for (int64_t e0 = b0; e0 < b1; e0 += QUERY_BLOCK) {
                if (!ok)
                    continue;
                const int64_t m = b1 - e0 < QUERY_BLOCK ? b1 - e0 : QUERY_BLOCK;
                for (int64_t i = 0; i < m; i++) {
                    load_row(data, ix->list_ids[e0 + i], false, qo + i * d);
                    if (norm) {
                        memcpy(qn + i * d, qo + i * d, (size_t)d * sizeof(float));
                        normalise(qn + i * d, d);
                    }
                }
                search_block(ix, scan, norm ? qn : qo, m, p->search.n_probes, n_cand, &s, ck, ci, cnt);
                for (int64_t i = 0; i < m; i++)
                    found += refine_row(data, metric, ix->list_ids[e0 + i], qo + i * d, ci + i * n_cand, cnt[i],
                                        deg, cv, xf, out_ids, out_dist);
            }
            free(qo);
            free(qn);
            free(xf);
            free(ck);
            free(ci);
            free(cv);
            scratch_free(&s);
        }
        *self_found += found;
        if (failed)
            st = ann_set_error(ANN_ERR_NOMEM, "ivf_pq: out of memory for search buffers");
        else if (ann_interrupted(ex))
            st = ann_set_error(ANN_ERR_INTERRUPTED, "interrupted");
        else if (ex->progress)
            ex->progress(ex->progress_user, "ivf_pq", b1, n);
    }
    return st;
}

/*
 * The candidate search through a backend's ivf_pq_search op (CUDA), the
 * refine on the CPU: batches of rows in packed order (up to 16384, fewer
 * for large n_cand, so that the candidate buffers stay near 48 MiB), each
 * searched by one call, then refined by nt threads.  The device copy of
 * the index lives in a cache freed at the end.  Same contract as
 * graph_search_cpu().
 */
static ann_status graph_search_op(const ann_backend_ops *ops, const ann_ivf_pq_cpu_index *ix,
                                  const ann_ivf_pq_graph_params *p, const ann_matrix *data, ann_exec *ex,
                                  int64_t n_cand, uint32_t *out_ids, float *out_dist, int64_t *self_found)
{
    const int64_t n = data->rows, d = data->cols, deg = p->graph_degree;
    const ann_metric metric = p->index.metric;
    const int nt = ann_threads(ex->n_threads);
    const bool norm = metric == ANN_METRIC_COSINE;
    int64_t batch = ((int64_t)1 << 22) / n_cand;
    batch = batch < QUERY_BLOCK ? QUERY_BLOCK : batch > 16384 ? 16384 : batch;
    if (batch > n)
        batch = n;
    void *cache = NULL;
    ann_ivf_pq_view view;
    ann_ivf_pq_cpu_view(ix, &cache, &view);
    ann_status st = ANN_OK;
    float *qb = malloc((size_t)batch * d * sizeof(float));
    float *ck = malloc((size_t)batch * n_cand * sizeof(float));
    int64_t *ci = malloc((size_t)batch * n_cand * sizeof(int64_t));
    if (!qb || !ck || !ci) {
        st = ann_set_error(ANN_ERR_NOMEM, "ivf_pq: out of memory for a batch of %lld queries", (long long)batch);
        goto done;
    }
    for (int64_t b0 = 0; b0 < n && st == ANN_OK; b0 += batch) {
        const int64_t m = n - b0 < batch ? n - b0 : batch;
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t i = 0; i < m; i++)
            load_row(data, ix->list_ids[b0 + i], norm, qb + i * d);
        ann_matrix qm = ann_matrix_view(qb, m, d, ANN_DTYPE_F32);
        if ((st = ops->ivf_pq_search(&view, &qm, p->search.n_probes, n_cand, ex->n_threads, ci, ck)) != ANN_OK)
            break;
        int failed = 0;
        int64_t found = 0;
#pragma omp parallel num_threads(nt) reduction(+ : found)
        {
            float *qo = malloc((size_t)d * sizeof(float));
            float *xf = malloc((size_t)d * sizeof(float));
            ann_ranked *cv = malloc((size_t)n_cand * sizeof(ann_ranked));
            const bool ok = qo && xf && cv;
            if (!ok)
                failed = 1;
#pragma omp for schedule(dynamic, 64)
            for (int64_t i = 0; i < m; i++) {
                if (!ok)
                    continue;
                const int64_t self = ix->list_ids[b0 + i];
                const int64_t *cid = ci + i * n_cand;
                int32_t cnt = 0;
                while (cnt < n_cand && cid[cnt] >= 0)
                    cnt++;
                load_row(data, self, false, qo);
                found += refine_row(data, metric, self, qo, cid, cnt, deg, cv, xf, out_ids, out_dist);
            }
            free(qo);
            free(xf);
            free(cv);
        }
        *self_found += found;
        if (failed)
            st = ann_set_error(ANN_ERR_NOMEM, "ivf_pq: out of memory for refine buffers");
        else if (ann_interrupted(ex))
            st = ann_set_error(ANN_ERR_INTERRUPTED, "interrupted");
        else if (ex->progress)
            ex->progress(ex->progress_user, "ivf_pq", b0 + m, n);
    }
done:
    if (cache && ops->cache_free)
        ops->cache_free(cache);
    free(qb);
    free(ck);
    free(ci);
    return st;
}

ann_status ann_ivf_pq_cpu_knn_graph(const ann_ivf_pq_graph_params *p_in, const ann_matrix *data, ann_exec *ex,
                                    uint32_t *out_ids, float *out_dist)
{
    ann_exec dflt;
    if (!ex) {
        ann_exec_init(&dflt);
        ex = &dflt;
    }
    ann_ivf_pq_graph_params p;
    ann_status st = ann_ivf_pq_graph_params_resolve(p_in, data->rows, data->cols, &p);
    if (st != ANN_OK)
        return st;
    const int64_t n = data->rows, d = data->cols;
    const ann_metric metric = p.index.metric;
    int64_t n_cand = (int64_t)ceil((double)p.graph_degree * p.refine_ratio);
    if (n_cand < p.graph_degree + 1)
        n_cand = p.graph_degree + 1;
    if (n_cand > n)
        n_cand = n;
    /* the backend of the candidate search, chosen before the build: --device cuda that cannot run fails now */
    const ann_backend_ops *ops = NULL;
    if ((st = ann_backend_select(ex, ANN_OP_IVF_PQ_SEARCH, data->dtype, metric, &ops)) != ANN_OK)
        return st;
    const bool on_cpu = ops == ann_cpu_ops();

    const double t0 = now_s();
    ann_ivf_pq_cpu_index *ix = NULL;
    if ((st = ann_ivf_pq_cpu_build(&p.index, data, ex, &ix)) != ANN_OK)
        return st;
    const double t1 = now_s();
    log_at(ex, 1,
           "ivf_pq: %lld x %lld, n_lists %d, pq_dim %d x %d (rot_dim %d, %s rotation), pq_bits %d, "
           "k-means %d iterations on %.3g %% of the rows, n_probes %d, %lld candidates per row; trained and "
           "encoded in %.3f s",
           (long long)n, (long long)d, (int)ix->n_lists, (int)ix->pq_dim, (int)ix->pq_len, (int)ix->rot_dim,
           ix->rotation ? "random" : "no", (int)ix->pq_bits, (int)p.index.kmeans_n_iters,
           100.0 * p.index.kmeans_trainset_fraction, (int)p.search.n_probes, (long long)n_cand, t1 - t0);
    log_at(ex, 1, "ivf_pq: training and encoding on the cpu, candidate search on %s, exact refine on the cpu",
           ops->name);

    int64_t self_found = 0;
    if (on_cpu)
        st = graph_search_cpu(ix, &p, data, ex, n_cand, out_ids, out_dist, &self_found);
    else
        st = graph_search_op(ops, ix, &p, data, ex, n_cand, out_ids, out_dist, &self_found);
    if (st == ANN_OK) {
        const double ratio = (double)self_found / (double)n;
        log_at(ex, 1, "ivf_pq: searched (%s) and refined %lld rows in %.3f s; self-included ratio %.4f", ops->name,
               (long long)n, now_s() - t1, ratio);
        if (ratio < 0.05)
            log_at(ex, 0,
                   "ivf_pq: only %.1f %% of the rows are among their own candidates (self-included ratio "
                   "below 5 %%): %s",
                   100.0 * ratio,
                   metric == ANN_METRIC_INNER_PRODUCT
                       ? "with inner_product, rows of small norm are seldom their own best match; otherwise the "
                         "IVF-PQ settings are too coarse (raise n_probes, pq_dim or pq_bits)"
                       : "the IVF-PQ settings are too coarse for this data (raise n_probes, pq_dim or pq_bits)");
    }
    ann_ivf_pq_cpu_free(ix);
    return st;
}
