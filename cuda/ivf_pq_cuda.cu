/*
 * ivf_pq_cuda.cu - the IVF-PQ candidate search on CUDA; the twin of
 * search_block() / select_probes() in lib/src/ivf_pq_cpu.c (backend_ops.h
 * ivf_pq_search; notes/algorithms.md 4.2-4.3).  The kNN-graph build
 * (ann_ivf_pq_cpu_knn_graph) trains and encodes on the CPU, calls this
 * for batches of rows, and refines the candidates exactly on the CPU.
 *
 * Per batch of queries (already unit length for cosine):
 *  1. Coarse: one cublasSgemm of the queries against the centers (dots),
 *     one against the rotation (R q; the queries themselves when the
 *     rotation is the identity).
 *  2. Probes (ivf_pq_coarse, one block per query): the CPU's key
 *     (||c||^2 - 2 q.c for sqeuclidean/euclidean, -q.c for inner_product
 *     and cosine), ties by list id; the Pmax best lists (radix select +
 *     bitonic sort, topk.cuh), then the CPU rule: the n_probes first, and
 *     more in that order while they hold fewer than n_cand rows.  Pmax,
 *     computed on the host, is the smallest count >= n_probes whose
 *     smallest lists already hold n_cand rows, so no query can need more.
 *  3. Scan (ivf_pq_scan, one block per (query, probe) pair): the pair's
 *     LUT in shared memory (global scratch when it does not fit), built
 *     with the CPU's formula and float operation order, the first term
 *     rounded as a product and each further one added by an FMA (as
 *     GCC compiles the CPU's AVX-512 clones of lut_l2/lut_ip; CPUs
 *     without AVX-512 round twice, which moves scores by an ulp or so):
 *       L2, cosine: LUT[j][c] = sum_t ((R q - R c_l)_jt - P_j[c]_t)^2
 *       IP:         LUT[j][c] = -sum_t (R q)_jt P_j[c]_t, plus -q.c_l;
 *     then every row of the list sums its LUT entries in the CPU scan
 *     kernels' order (4-bit: even subspaces, odd subspaces, then the two),
 *     so that equal LUTs give bit-identical scores.  Each score becomes a
 *     64-bit key (score, rank of the source id; topk.cuh) written to the
 *     query's sample array.
 *  4. Select (ivf_pq_final, one block per query): the n_cand smallest
 *     keys (radix select), sorted (bitonic): ids and scores best first,
 *     ties by id, -1 / +inf for empty slots: the CPU's candidate buffer.
 * Samples cost 8 bytes per (query, scanned row); sub-batches keep them
 * and every other buffer within the workspace budget.
 *
 * The device cache holds the centers and their norms, R c, R, the
 * codebooks, the offsets, the codes and the id <-> rank maps.
 */
#include <algorithm>
#include <cstring>
#include <new>
#include <vector>

#include "cuda_common.cuh"
#include "topk.cuh"

namespace {

constexpr int kThreads = topk::kSelectThreads; /* every kernel of this file */
constexpr int kCoarseSmem = 4096;              /* probe sort in shared memory up to this many keys */
constexpr int kFinalSmem = 4096;               /* candidate sort in shared memory up to this many keys */
constexpr int64_t kMaxCoarseBatch = 65536;
constexpr size_t kDefaultSmem = 48 * 1024;     /* above this a kernel opts in */
constexpr int kGroup = 16;                     /* rows per code group (ANN_IVF_PQ_GROUP) */

/* ------------------------------- cache ------------------------------- */

struct PqCache {
    CuCacheBase base;
    /* what is cached */
    const float *src_centers, *src_cnorms, *src_crot, *src_rot, *src_pq;
    const int64_t *src_offsets, *src_goffsets, *src_ids;
    const uint8_t *src_codes;
    int64_t rows, dim;
    int32_t n_lists, pq_dim, pq_bits, pq_len, rot_dim, chunks;
    ann_metric metric;
    /* device copies */
    float *centers;        /* n_lists x dim */
    float *cnorm;          /* n_lists squared norms */
    float *centers_rot;    /* n_lists x rot_dim */
    float *rotation;       /* rot_dim x dim, NULL = identity */
    float *pq_centers;     /* pq_dim x pq_len x book */
    int64_t *offsets;      /* n_lists + 1 */
    int64_t *goffsets;     /* n_lists + 1 */
    uint8_t *codes;        /* groups x chunks x 16 */
    uint32_t *rank_of_row; /* packed row -> rank of its source id */
    int64_t *id_of_rank;   /* rank -> id; NULL when the ids are 0..rows-1 (id = rank) */
    /* host: prefix[t] = rows of the t smallest lists (t = 0..n_lists) */
    std::vector<int64_t> prefix;
};

void pq_cache_destroy(CuCacheBase *b)
{
    PqCache *c = reinterpret_cast<PqCache *>(b);
    cu_free(c->centers);
    cu_free(c->cnorm);
    cu_free(c->centers_rot);
    cu_free(c->rotation);
    cu_free(c->pq_centers);
    cu_free(c->offsets);
    cu_free(c->goffsets);
    cu_free(c->codes);
    cu_free(c->rank_of_row);
    cu_free(c->id_of_rank);
    delete c;
}

bool pq_cache_matches(const PqCache *c, const ann_ivf_pq_view *ix)
{
    return c->src_centers == ix->centers && c->src_cnorms == ix->center_norms && c->src_crot == ix->centers_rot &&
           c->src_rot == ix->rotation && c->src_pq == ix->pq_centers && c->src_offsets == ix->list_offsets &&
           c->src_goffsets == ix->group_offsets && c->src_ids == ix->list_ids && c->src_codes == ix->codes &&
           c->rows == ix->rows && c->dim == ix->dim && c->n_lists == ix->n_lists && c->pq_dim == ix->pq_dim &&
           c->pq_bits == ix->pq_bits && c->pq_len == ix->pq_len && c->rot_dim == ix->rot_dim &&
           c->chunks == ix->chunks && c->metric == ix->metric;
}

/* Copy @p bytes of host @p src to a new device buffer *@p dst (on ctx->stream). */
ann_status upload(CuCtx *ctx, void **dst, const void *src, size_t bytes)
{
    ann_status st = ANN_OK;
    CU_MALLOC(dst, bytes);
    if (bytes)
        CU_CHECK(cudaMemcpyAsync(*dst, src, bytes, cudaMemcpyHostToDevice, ctx->stream));
cleanup:
    return st;
}

ann_status pq_cache_build(CuCtx *ctx, const ann_ivf_pq_view *ix, PqCache **out)
{
    ann_status st = ANN_OK;
    const int64_t n = ix->rows, dim = ix->dim, rd = ix->rot_dim;
    const int32_t L = ix->n_lists;
    const size_t book = (size_t)1 << ix->pq_bits;
    std::vector<uint32_t> rank_of_row;
    std::vector<int64_t> id_of_rank;
    bool identity = true;
    PqCache *c = new (std::nothrow) PqCache();
    if (!c)
        return CU_FAIL(ANN_ERR_NOMEM, "out of host memory for the IVF-PQ device cache");
    c->base.magic = kCuCacheMagic;
    c->base.destroy = pq_cache_destroy;
    c->src_centers = ix->centers;
    c->src_cnorms = ix->center_norms;
    c->src_crot = ix->centers_rot;
    c->src_rot = ix->rotation;
    c->src_pq = ix->pq_centers;
    c->src_offsets = ix->list_offsets;
    c->src_goffsets = ix->group_offsets;
    c->src_ids = ix->list_ids;
    c->src_codes = ix->codes;
    c->rows = n;
    c->dim = dim;
    c->n_lists = L;
    c->pq_dim = ix->pq_dim;
    c->pq_bits = ix->pq_bits;
    c->pq_len = ix->pq_len;
    c->rot_dim = ix->rot_dim;
    c->chunks = ix->chunks;
    c->metric = ix->metric;
    try {
        /* ranks: the ids themselves when they are 0..n-1 (each once), else their order */
        identity = cu_id_ranks(ix->list_ids, n, &rank_of_row, NULL, &id_of_rank);
        std::vector<int64_t> sizes((size_t)L);
        for (int32_t l = 0; l < L; ++l)
            sizes[(size_t)l] = ix->list_offsets[l + 1] - ix->list_offsets[l];
        std::sort(sizes.begin(), sizes.end());
        c->prefix.assign((size_t)L + 1, 0);
        for (int32_t l = 0; l < L; ++l)
            c->prefix[(size_t)l + 1] = c->prefix[(size_t)l] + sizes[(size_t)l];
    } catch (...) {
        st = CU_FAIL(ANN_ERR_NOMEM, "out of host memory for the id ranks of %lld rows", (long long)n);
        goto cleanup;
    }
    ANN_TRY(upload(ctx, (void **)&c->centers, ix->centers, (size_t)L * dim * sizeof(float)));
    ANN_TRY(upload(ctx, (void **)&c->cnorm, ix->center_norms, (size_t)L * sizeof(float)));
    ANN_TRY(upload(ctx, (void **)&c->centers_rot, ix->centers_rot, (size_t)L * rd * sizeof(float)));
    if (ix->rotation)
        ANN_TRY(upload(ctx, (void **)&c->rotation, ix->rotation, (size_t)rd * dim * sizeof(float)));
    ANN_TRY(upload(ctx, (void **)&c->pq_centers, ix->pq_centers, (size_t)ix->pq_dim * ix->pq_len * book * sizeof(float)));
    ANN_TRY(upload(ctx, (void **)&c->offsets, ix->list_offsets, (size_t)(L + 1) * sizeof(int64_t)));
    ANN_TRY(upload(ctx, (void **)&c->goffsets, ix->group_offsets, (size_t)(L + 1) * sizeof(int64_t)));
    ANN_TRY(upload(ctx, (void **)&c->codes, ix->codes, (size_t)ix->group_offsets[L] * ix->chunks * kGroup));
    ANN_TRY(upload(ctx, (void **)&c->rank_of_row, rank_of_row.data(), (size_t)n * sizeof(uint32_t)));
    if (!identity)
        ANN_TRY(upload(ctx, (void **)&c->id_of_rank, id_of_rank.data(), (size_t)n * sizeof(int64_t)));
    /* the host vectors must outlive the copies */
    CU_CHECK(cudaStreamSynchronize(ctx->stream));
    *out = c;
    return ANN_OK;
cleanup:
    (void)cudaStreamSynchronize(ctx->stream);
    pq_cache_destroy(&c->base);
    return st;
}

/* The cache of this view (see bf_cache_get in bf_cuda.cu). */
ann_status pq_cache_get(CuCtx *ctx, const ann_ivf_pq_view *ix, PqCache **out, bool *owned)
{
    return cu_cache_get(ctx, ix, pq_cache_build, pq_cache_matches, pq_cache_destroy, out, owned);
}

/* ------------------------------ kernels ------------------------------ */

/*
 * ivf_pq_coarse: the lists query r scans, best first, by the CPU's rule:
 * key cnorm[l] - 2 q.c_l (cnorm given: L2 family) or -q.c_l, ties by list
 * id; the n_probes first, then more while fewer than `need` rows are
 * covered (at most Pmax, the host's bound).  probes[r][0..cnt[r]) are the
 * lists, off[r][j] where list j's rows start in the query's samples,
 * tot[r] the query's samples.  2.0f x dot is exact, so a contracted
 * c - 2 d equals the CPU's rounding.
 * Launch: grid (queries of the batch), block kThreads; dynamic shared
 * memory P2 x 8 bytes when scratch is NULL (else scratch + r x P2).
 * Layout: dots row-major (row length n_lists); probes/off row length Pmax;
 * P2 = power of two >= min(Pmax, n_lists).
 */
__global__ void __launch_bounds__(kThreads)
    ivf_pq_coarse(const float *__restrict__ dots, int n_lists, const float *__restrict__ cnorm, int n_probes,
                  int Pmax, int64_t need, const int64_t *__restrict__ offsets, uint64_t *scratch, int P2,
                  int32_t *__restrict__ probes, int32_t *__restrict__ cnt, int64_t *__restrict__ off,
                  int64_t *__restrict__ tot)
{
    extern __shared__ uint64_t pq_co_smem[];
    __shared__ topk::SelectShared sh;
    const int r = blockIdx.x;
    uint64_t *buf = scratch ? scratch + (int64_t)r * P2 : pq_co_smem;
    const float *drow = dots + (int64_t)r * n_lists;
    auto get = [&](int64_t l) -> uint64_t {
        const float key = cnorm ? cnorm[l] - 2.0f * drow[l] : -drow[l];
        return topk::make_key(key, (uint32_t)l);
    };
    const int64_t n = topk::block_select_smallest(get, n_lists, Pmax, buf, sh);
    for (int64_t i = n + threadIdx.x; i < P2; i += blockDim.x)
        buf[i] = ~0ull;
    __syncthreads();
    topk::block_bitonic_sort(buf, P2);
    if (threadIdx.x == 0) {
        int64_t have = 0;
        int c = 0;
        for (; c < n && (c < n_probes || have < need); ++c) {
            const uint32_t l = topk::key_tie(buf[c]);
            probes[(int64_t)r * Pmax + c] = (int32_t)l;
            off[(int64_t)r * Pmax + c] = have;
            have += offsets[l + 1] - offsets[l];
        }
        cnt[r] = c;
        tot[r] = have;
    }
}

/*
 * ivf_pq_scan: for every pair p = (query s of the sub-batch, probe j) with
 * j < cnt, the pair's LUT (lut_floats = tables x book floats; 4-bit:
 * 2 x chunks tables, the padding table of an odd pq_dim 0; else pq_dim
 * tables), then the PQ score of every row of the list as a key (score,
 * rank of its source id) at samples[qoff[s] + off[j] + local row].
 * Launch: 1-D grid of any size (blocks loop over pairs), block kThreads;
 * dynamic shared memory lut_floats x 4 bytes when glut is NULL, else each
 * block uses glut + blockIdx.x x lut_floats (gridDim.x slots).
 * Layout: rq (rot_dim) and dots (n_lists) rows of the coarse batch, query
 * s at row s0 + s; probes/cnt/off as ivf_pq_coarse wrote them; codes in
 * groups of 16 rows x chunks bytes (ivf_pq_internal.h).
 */
template <bool kFour>
__global__ void __launch_bounds__(kThreads)
    ivf_pq_scan(const float *__restrict__ rq, const float *__restrict__ dots, bool ip,
                const float *__restrict__ centers_rot, const float *__restrict__ pq_centers,
                const uint8_t *__restrict__ codes, const int64_t *__restrict__ offsets,
                const int64_t *__restrict__ goffsets, const uint32_t *__restrict__ rank_of_row, int pq_dim,
                int pq_len, int rot_dim, int book, int chunks, int n_lists, const int32_t *__restrict__ probes,
                const int32_t *__restrict__ cnt, const int64_t *__restrict__ off, int Pmax, int64_t s0,
                int64_t n_pairs, const int64_t *__restrict__ qoff, float *glut, int64_t lut_floats,
                uint64_t *__restrict__ samples)
{
    extern __shared__ float pq_lut_smem[];
    float *lut = glut ? glut + (int64_t)blockIdx.x * lut_floats : pq_lut_smem;
    const int tid = threadIdx.x;
    for (int64_t pair = blockIdx.x; pair < n_pairs; pair += gridDim.x) {
        const int64_t s = pair / Pmax, r = s0 + s;
        const int j = (int)(pair % Pmax);
        if (j >= cnt[r]) /* uniform over the block */
            continue;
        const int l = probes[r * Pmax + j];
        const float *q = rq + r * rot_dim, *cr = centers_rot + (int64_t)l * rot_dim;
        __syncthreads(); /* the previous pair's scan is done with the LUT */
        for (int64_t e = tid; e < lut_floats; e += blockDim.x) {
            const int jj = (int)(e / book), c = (int)(e % book);
            float acc = 0.0f;
            if (jj < pq_dim) {
                const float *P = pq_centers + (int64_t)jj * pq_len * book + c;
                const int64_t b = (int64_t)jj * pq_len;
                for (int t = 0; t < pq_len; ++t) {
                    const float pc = P[(int64_t)t * book];
                    const float u = ip ? -q[b + t] : __fsub_rn(__fsub_rn(q[b + t], cr[b + t]), pc);
                    const float w = ip ? pc : u;
                    acc = t == 0 ? __fmul_rn(u, w) : __fmaf_rn(u, w, acc);
                }
            }
            lut[e] = acc;
        }
        __syncthreads();
        const float cst = ip ? -dots[r * n_lists + l] : 0.0f;
        const int64_t r0 = offsets[l], nr = offsets[l + 1] - r0, g0 = goffsets[l];
        uint64_t *out = samples + qoff[s] + off[r * Pmax + j];
        for (int64_t x = tid; x < nr; x += blockDim.x) {
            const uint8_t *cb = codes + (g0 + x / kGroup) * chunks * kGroup + (x % kGroup);
            float score;
            if (kFour) {
                float ev = 0.0f, od = 0.0f;
                for (int p = 0; p < chunks; ++p) {
                    const unsigned v = cb[p * kGroup];
                    ev += lut[32 * p + (v & 15u)];
                    od += lut[32 * p + 16 + (v >> 4)];
                }
                score = ev + od;
            } else {
                float acc = 0.0f;
                for (int p = 0; p < chunks; ++p)
                    acc += lut[p * book + cb[p * kGroup]];
                score = acc;
            }
            out[x] = topk::make_key(cst + score, rank_of_row[r0 + x]);
        }
    }
}

/*
 * ivf_pq_final: the n_cand smallest sample keys of query s of the
 * sub-batch (radix select), sorted: ids (source ids, via id_of_rank when
 * given, else the rank) and scores best first; -1 / +inf for slots beyond
 * the query's samples.
 * Launch: grid (queries of the sub-batch), block kThreads; dynamic shared
 * memory P2 x 8 bytes when scratch is NULL (else scratch + s x P2).
 * Layout: query s's samples at samples + qoff[s], tot[s0 + s] of them;
 * ids/scores row-major, row length n_cand; P2 = power of two >= n_cand.
 */
__global__ void __launch_bounds__(kThreads)
    ivf_pq_final(const uint64_t *__restrict__ samples, const int64_t *__restrict__ qoff,
                 const int64_t *__restrict__ tot, int64_t s0, int64_t n_cand, const int64_t *__restrict__ id_of_rank,
                 uint64_t *scratch, int P2, int64_t *__restrict__ ids, float *__restrict__ scores)
{
    extern __shared__ uint64_t pq_fin_smem[];
    __shared__ topk::SelectShared sh;
    const int s = blockIdx.x;
    uint64_t *buf = scratch ? scratch + (int64_t)s * P2 : pq_fin_smem;
    const uint64_t *base = samples + qoff[s];
    auto get = [&](int64_t i) -> uint64_t { return base[i]; };
    const int64_t kk = topk::block_select_smallest(get, tot[s0 + s], n_cand, buf, sh);
    for (int64_t i = kk + threadIdx.x; i < P2; i += blockDim.x)
        buf[i] = ~0ull;
    __syncthreads();
    topk::block_bitonic_sort(buf, P2);
    for (int64_t j = threadIdx.x; j < n_cand; j += blockDim.x) {
        const int64_t o = (int64_t)s * n_cand + j;
        if (j < kk) {
            const uint32_t rank = topk::key_tie(buf[j]);
            ids[o] = id_of_rank ? id_of_rank[rank] : (int64_t)rank;
            scores[o] = topk::key_score(buf[j]);
        } else {
            ids[o] = -1;
            scores[o] = __int_as_float(0x7f800000); /* +inf */
        }
    }
}

/* Grow a device buffer to at least @p bytes (contents are not kept). */
ann_status grow(void **p, size_t *cap, size_t bytes)
{
    ann_status st = ANN_OK;
    if (bytes <= *cap)
        return ANN_OK;
    cu_free(*p);
    *p = nullptr;
    *cap = 0;
    CU_MALLOC(p, bytes);
    *cap = bytes;
cleanup:
    return st;
}

/* Launch ivf_pq_scan<kFour> (see there) with @p grid blocks and @p smem bytes of dynamic shared memory. */
template <bool kFour>
ann_status launch_scan(CuCtx *ctx, const PqCache *c, unsigned grid, size_t smem, const float *d_rq,
                       const float *d_dots, bool ip, int book, const int32_t *d_probes, const int32_t *d_cnt,
                       const int64_t *d_off, int Pmax, int64_t s0, int64_t n_pairs, const int64_t *d_qoff,
                       float *d_glut, int64_t lut_floats, uint64_t *d_samples)
{
    ann_status st = ANN_OK;
    if (smem > kDefaultSmem)
        CU_CHECK(cudaFuncSetAttribute(ivf_pq_scan<kFour>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    ivf_pq_scan<kFour><<<grid, kThreads, smem, ctx->stream>>>(
        d_rq, d_dots, ip, c->centers_rot, c->pq_centers, c->codes, c->offsets, c->goffsets, c->rank_of_row,
        c->pq_dim, c->pq_len, c->rot_dim, book, c->chunks, c->n_lists, d_probes, d_cnt, d_off, Pmax, s0, n_pairs,
        d_qoff, d_glut, lut_floats, d_samples);
    CU_LAUNCHED("ivf_pq_scan");
cleanup:
    return st;
}

} // namespace

/* ------------------------------- driver ------------------------------ */

/**
 * CUDA IVF-PQ candidate search (backend_ops.h ivf_pq_search): semantics of
 * ann_ivf_pq_cpu_candidates() (search_block() in lib/src/ivf_pq_cpu.c);
 * the algorithm is described at the top of this file.  @p q: n x dim
 * queries on the host (any vector dtype, used as floats; unit length for
 * cosine).  Writes n x n_cand ids (int64, -1 empty) and PQ scores
 * (+inf empty), best first, ties by id.  n_threads is unused.
 * Errors: ANN_ERR_INVALID_ARG, ANN_ERR_MISMATCH (dimension),
 * ANN_ERR_UNSUPPORTED (metric, pq_bits, sizes), ANN_ERR_NOMEM, ANN_ERR_CUDA.
 */
ann_status cu_ivf_pq_search(const ann_ivf_pq_view *ix, const ann_matrix *q, int32_t n_probes, int64_t n_cand,
                            int n_threads, int64_t *ids, float *scores)
{
    (void)n_threads;
    ann_status st = ANN_OK;
    CuCtx *ctx = nullptr;
    PqCache *cache = nullptr;
    bool owned = false;
    const int64_t nq = q->rows, dim = ix->dim, n = ix->rows, rd = ix->rot_dim;
    const int32_t L = ix->n_lists;
    const bool l2_probe = ix->metric == ANN_METRIC_SQEUCLIDEAN || ix->metric == ANN_METRIC_EUCLIDEAN;
    const bool ip = ix->metric == ANN_METRIC_INNER_PRODUCT;
    const bool four = ix->pq_bits == 4;
    const int book = 1 << ix->pq_bits;
    const int64_t lut_floats = (four ? 2 * (int64_t)ix->chunks : (int64_t)ix->chunks) * book;
    const size_t lut_bytes = (size_t)lut_floats * sizeof(float);
    int np = 0, Pmax = 0, P2c = 0, P2k = 0, optin = 0;
    int64_t qc = 0, per_query = 0, sample_budget = 0, slots = 0;
    size_t budget = 0;
    bool lut_in_smem = true;
    /* device buffers */
    float *d_q = nullptr, *d_dots = nullptr, *d_rqbuf = nullptr, *d_scores = nullptr, *d_glut = nullptr;
    int32_t *d_probes = nullptr, *d_cnt = nullptr;
    int64_t *d_off = nullptr, *d_tot = nullptr, *d_qoff = nullptr, *d_ids = nullptr;
    uint64_t *d_cscratch = nullptr, *d_fscratch = nullptr;
    void *d_samples = nullptr;
    size_t samples_cap = 0;
    /* host buffers */
    std::vector<int64_t> h_tot, h_qoff;

    if (n_cand < 1)
        return CU_FAIL(ANN_ERR_INVALID_ARG, "ivf_pq: n_cand = %lld must be at least 1", (long long)n_cand);
    if (!cu_metric_ok(ix->metric))
        return CU_FAIL(ANN_ERR_UNSUPPORTED, "ivf_pq on CUDA: metric %d is not supported", (int)ix->metric);
    if (!cu_dtype_ok(q->dtype))
        return CU_FAIL(ANN_ERR_UNSUPPORTED, "ivf_pq on CUDA: query dtype not supported");
    if (q->cols != dim)
        return CU_FAIL(ANN_ERR_MISMATCH, "ivf_pq: queries have dimension %lld, the index %lld", (long long)q->cols,
                       (long long)dim);
    if (ix->pq_bits < 4 || ix->pq_bits > 8 || ix->book != book ||
        ix->chunks != (four ? (ix->pq_dim + 1) / 2 : ix->pq_dim) || rd != (int64_t)ix->pq_dim * ix->pq_len)
        return CU_FAIL(ANN_ERR_UNSUPPORTED, "ivf_pq on CUDA: inconsistent index (pq_bits %d, pq_dim %d, chunks %d)",
                       (int)ix->pq_bits, (int)ix->pq_dim, (int)ix->chunks);
    if (L < 1 || n >= (int64_t)UINT32_MAX || dim > INT32_MAX || rd > INT32_MAX)
        return CU_FAIL(ANN_ERR_UNSUPPORTED, "ivf_pq on CUDA: %lld rows, %d lists is out of range", (long long)n,
                       (int)L);
    if (n_cand > INT32_MAX / 32)
        return CU_FAIL(ANN_ERR_UNSUPPORTED, "ivf_pq on CUDA: n_cand = %lld is too large", (long long)n_cand);
    if (nq <= 0)
        return ANN_OK;
    np = (int)cu_max64(1, cu_min64(n_probes, L));

    ANN_TRY(cu_ctx_get(&ctx));
    ANN_TRY(pq_cache_get(ctx, ix, &cache, &owned));
    CU_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, ctx->device));

    /* no query scans more lists than the smallest count >= np whose smallest lists hold n_cand rows */
    Pmax = np;
    while (Pmax < L && cache->prefix[(size_t)Pmax] < n_cand)
        ++Pmax;
    P2c = (int)cu_pow2_ceil(Pmax);
    P2k = (int)cu_pow2_ceil(n_cand);
    lut_in_smem = lut_bytes <= (size_t)optin;
    budget = cu_workspace_budget(ctx);
    sample_budget = (int64_t)(budget / 2 / sizeof(uint64_t));
    per_query = (int64_t)L * 4 + dim * 4 + (ix->rotation ? rd * 4 : 0) + (int64_t)Pmax * (4 + 8) + 4 + 8 + 8 +
                n_cand * 12 + (P2c > kCoarseSmem ? (int64_t)P2c * 8 : 0) + (P2k > kFinalSmem ? (int64_t)P2k * 8 : 0);
    qc = cu_max64(1, cu_min64((int64_t)(budget / 2) / per_query, cu_min64(nq, kMaxCoarseBatch)));
    if (!lut_in_smem)
        slots = cu_max64(1, cu_min64((int64_t)(budget / 4 / lut_bytes), (int64_t)ctx->sm_count * 2));

    try {
        h_tot.resize((size_t)qc);
        h_qoff.resize((size_t)qc);
    } catch (...) {
        ANN_TRY(CU_FAIL(ANN_ERR_NOMEM, "ivf_pq: out of host memory"));
    }
    CU_MALLOC(&d_q, (size_t)qc * dim * sizeof(float));
    CU_MALLOC(&d_dots, (size_t)qc * L * sizeof(float));
    if (ix->rotation)
        CU_MALLOC(&d_rqbuf, (size_t)qc * rd * sizeof(float));
    CU_MALLOC(&d_probes, (size_t)qc * Pmax * sizeof(int32_t));
    CU_MALLOC(&d_cnt, (size_t)qc * sizeof(int32_t));
    CU_MALLOC(&d_off, (size_t)qc * Pmax * sizeof(int64_t));
    CU_MALLOC(&d_tot, (size_t)qc * sizeof(int64_t));
    CU_MALLOC(&d_qoff, (size_t)qc * sizeof(int64_t));
    CU_MALLOC(&d_ids, (size_t)qc * n_cand * sizeof(int64_t));
    CU_MALLOC(&d_scores, (size_t)qc * n_cand * sizeof(float));
    if (P2c > kCoarseSmem)
        CU_MALLOC(&d_cscratch, (size_t)qc * P2c * sizeof(uint64_t));
    if (P2k > kFinalSmem)
        CU_MALLOC(&d_fscratch, (size_t)qc * P2k * sizeof(uint64_t));
    if (!lut_in_smem)
        CU_MALLOC(&d_glut, (size_t)slots * lut_bytes);

    for (int64_t c0 = 0; c0 < nq; c0 += qc) {
        const int64_t bc = cu_min64(qc, nq - c0);
        const float *d_rq = ix->rotation ? d_rqbuf : d_q;
        ANN_TRY(cu_upload_f32(ctx, (const char *)q->data + c0 * q->stride, bc, dim, q->stride, q->dtype, d_q));
        ANN_TRY(cu_gemm_abt(ctx, bc, L, dim, d_q, cache->centers, d_dots, L));
        if (ix->rotation)
            ANN_TRY(cu_gemm_abt(ctx, bc, rd, dim, d_q, cache->rotation, d_rqbuf, rd));
        ivf_pq_coarse<<<(unsigned)bc, kThreads, d_cscratch ? 0 : (size_t)P2c * 8, ctx->stream>>>(
            d_dots, L, l2_probe ? cache->cnorm : nullptr, np, Pmax, n_cand, cache->offsets, d_cscratch, P2c,
            d_probes, d_cnt, d_off, d_tot);
        CU_LAUNCHED("ivf_pq_coarse");
        CU_CHECK(cudaMemcpyAsync(h_tot.data(), d_tot, (size_t)bc * sizeof(int64_t), cudaMemcpyDeviceToHost,
                                 ctx->stream));
        CU_CHECK(cudaStreamSynchronize(ctx->stream));

        for (int64_t s0 = 0; s0 < bc;) {
            /* a sub-batch of queries whose samples fit the budget (at least one query) */
            int64_t s1 = s0, total = 0;
            while (s1 < bc && (s1 == s0 || total + h_tot[(size_t)s1] <= sample_budget)) {
                h_qoff[(size_t)(s1 - s0)] = total;
                total += h_tot[(size_t)s1];
                ++s1;
            }
            const int64_t bs = s1 - s0, n_pairs = bs * Pmax;
            const unsigned grid = (unsigned)(lut_in_smem ? cu_min64(n_pairs, (int64_t)1 << 24) : cu_min64(n_pairs, slots));
            const size_t smem = lut_in_smem ? lut_bytes : 0;
            ANN_TRY(grow(&d_samples, &samples_cap, (size_t)cu_max64(total, 1) * sizeof(uint64_t)));
            CU_CHECK(cudaMemcpyAsync(d_qoff, h_qoff.data(), (size_t)bs * sizeof(int64_t), cudaMemcpyHostToDevice,
                                     ctx->stream));
            if (four)
                ANN_TRY(launch_scan<true>(ctx, cache, grid, smem, d_rq, d_dots, ip, book, d_probes, d_cnt, d_off,
                                          Pmax, s0, n_pairs, d_qoff, d_glut, lut_floats,
                                          static_cast<uint64_t *>(d_samples)));
            else
                ANN_TRY(launch_scan<false>(ctx, cache, grid, smem, d_rq, d_dots, ip, book, d_probes, d_cnt, d_off,
                                           Pmax, s0, n_pairs, d_qoff, d_glut, lut_floats,
                                           static_cast<uint64_t *>(d_samples)));
            ivf_pq_final<<<(unsigned)bs, kThreads, d_fscratch ? 0 : (size_t)P2k * 8, ctx->stream>>>(
                static_cast<const uint64_t *>(d_samples), d_qoff, d_tot, s0, n_cand, cache->id_of_rank, d_fscratch,
                P2k, d_ids, d_scores);
            CU_LAUNCHED("ivf_pq_final");
            CU_CHECK(cudaMemcpyAsync(ids + (c0 + s0) * n_cand, d_ids, (size_t)bs * n_cand * sizeof(int64_t),
                                     cudaMemcpyDeviceToHost, ctx->stream));
            CU_CHECK(cudaMemcpyAsync(scores + (c0 + s0) * n_cand, d_scores, (size_t)bs * n_cand * sizeof(float),
                                     cudaMemcpyDeviceToHost, ctx->stream));
            /* h_qoff is reused by the next sub-batch */
            CU_CHECK(cudaStreamSynchronize(ctx->stream));
            s0 = s1;
        }
    }

cleanup:
    if (ctx && st != ANN_OK)
        (void)cudaStreamSynchronize(ctx->stream);
    cu_free(d_q);
    cu_free(d_dots);
    cu_free(d_rqbuf);
    cu_free(d_scores);
    cu_free(d_glut);
    cu_free(d_probes);
    cu_free(d_cnt);
    cu_free(d_off);
    cu_free(d_tot);
    cu_free(d_qoff);
    cu_free(d_ids);
    cu_free(d_cscratch);
    cu_free(d_fscratch);
    cu_free(d_samples);
    if (owned && cache)
        pq_cache_destroy(&cache->base);
    return st;
}
