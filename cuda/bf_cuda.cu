/*
 * bf_cuda.cu - exact kNN (brute force) on CUDA; the twin of
 * lib/src/bf_cpu.c with the same results up to near-ties.
 *
 * Algorithm (notes/algorithms.md section 1, "tiled exact distances +
 * select-k", and ann/brute_force.h):
 *  1. The base set is cached on the device as f32 (f16/i8/u8 converted
 *     exactly: integers as is, no scaling) with its norms (squared L2 for
 *     the L2 family, L2 norm for cosine), in *view->device_cache, so that
 *     parameter sweeps do not upload it again.
 *  2. Queries go in batches of QB rows (converted to f32 on the device,
 *     exactly).  For each tile of TB base rows one cublasSgemm gives the
 *     QB x TB dot products, from which the ranking key of the CPU is
 *     formed: ||x||^2 - 2 q.x (L2 family), -q.x/|x| (cosine), -q.x (inner
 *     product), packed with the row number into a 64-bit (key, row) key
 *     (topk.cuh).
 *  3. Each query keeps its best kc = k + 16 keys ("running list").  The
 *     first tile fills it by a block radix select over the tile row; every
 *     later tile is first filtered against the query's current kc-th key
 *     (one coalesced pass over the GEMM output, survivors appended to a
 *     small per-query buffer with warp-aggregated atomics) and the
 *     survivors are merged into the running list by another radix select.
 *     Because the bound only tightens, few keys survive after the first
 *     tiles; a query whose survivors overflow the buffer falls back to a
 *     full select over that tile row (still exact).
 *  4. Re-rank: the kc candidates of each query get exact distances
 *     computed from the vectors in double precision (one warp per
 *     candidate), are sorted by (distance, id) with a block bitonic sort
 *     (inner product: by -dot, i.e. descending), and the best k are
 *     written in the returned convention (squared L2, L2, +dot, 1 - cos);
 *     slots beyond the number of rows get id -1 and the worst distance.
 *
 * Device memory per call stays within cu_workspace_budget() (1 GiB by
 * default) besides the cached base set.
 */
#include <cstring>
#include <new>

#include "cuda_common.cuh"
#include "topk.cuh"

namespace {

constexpr int kRerankPad = 16;           /* re-ranked candidates = k + 16 (as the CPU) */
constexpr int64_t kTileCols = 32768;     /* base rows per GEMM tile */
constexpr int64_t kMaxQueryBatch = 16384;
constexpr int kSmemRanked = 2048;        /* re-rank sorts up to this many in shared memory */

/* ------------------------------- cache ------------------------------- */

struct BfCache {
    CuCacheBase base;
    /* what is cached (a view with other values gets a fresh cache) */
    const void *src;
    const float *src_norms;
    int64_t rows, dim, stride;
    ann_dtype dtype;
    ann_metric metric;
    /* device copies */
    float *x;      /* rows x dim f32 */
    float *xnorm;  /* rows (NULL for inner product) */
};

void bf_cache_destroy(CuCacheBase *b)
{
    BfCache *c = reinterpret_cast<BfCache *>(b);
    cu_free(c->x);
    cu_free(c->xnorm);
    delete c;
}

bool bf_cache_matches(const BfCache *c, const ann_bf_view *ix)
{
    return c->src == ix->data && c->src_norms == ix->norms && c->rows == ix->rows && c->dim == ix->dim &&
           c->stride == ix->stride && c->dtype == ix->dtype && c->metric == ix->metric;
}

ann_status bf_cache_build(CuCtx *ctx, const ann_bf_view *ix, BfCache **out)
{
    ann_status st = ANN_OK;
    BfCache *c = new (std::nothrow) BfCache();
    if (!c)
        return CU_FAIL(ANN_ERR_NOMEM, "out of host memory for the brute-force device cache");
    c->base.magic = kCuCacheMagic;
    c->base.destroy = bf_cache_destroy;
    c->src = ix->data;
    c->src_norms = ix->norms;
    c->rows = ix->rows;
    c->dim = ix->dim;
    c->stride = ix->stride;
    c->dtype = ix->dtype;
    c->metric = ix->metric;
    c->x = nullptr;
    c->xnorm = nullptr;
    CU_MALLOC(&c->x, (size_t)ix->rows * ix->dim * sizeof(float));
    ANN_TRY(cu_upload_f32(ctx, ix->data, ix->rows, ix->dim, ix->stride, ix->dtype, c->x));
    if (ix->metric != ANN_METRIC_INNER_PRODUCT) {
        CU_MALLOC(&c->xnorm, (size_t)ix->rows * sizeof(float));
        if (ix->norms)
            CU_CHECK(cudaMemcpyAsync(c->xnorm, ix->norms, (size_t)ix->rows * sizeof(float), cudaMemcpyHostToDevice,
                                     ctx->stream));
        else
            ANN_TRY(cu_row_norms(ctx, c->x, ANN_DTYPE_F32, ix->rows, ix->dim, ix->metric == ANN_METRIC_COSINE,
                                 c->xnorm));
    }
    CU_CHECK(cudaStreamSynchronize(ctx->stream));
    *out = c;
    return ANN_OK;
cleanup:
    bf_cache_destroy(&c->base);
    return st;
}

/*
 * The cache of this view: the one in *view->device_cache when it matches,
 * else a new one stored there (or, without a cache slot, a private one the
 * caller frees: *owned).
 */
ann_status bf_cache_get(CuCtx *ctx, const ann_bf_view *ix, BfCache **out, bool *owned)
{
    return cu_cache_get(ctx, ix, bf_cache_build, bf_cache_matches, bf_cache_destroy, out, owned);
}

/* ------------------------------ kernels ------------------------------ */

/* The CPU's ranking key from a dot product (smaller is better). */
__device__ __forceinline__ float bf_rank_key(int metric, float dot, float xn)
{
    if (metric == kMetricL2)
        return xn - 2.0f * dot;
    if (metric == kMetricCos)
        return xn > 0.0f ? -dot / xn : 0.0f;
    return -dot;
}

/*
 * bf_filter: append the (key, row) pairs of one GEMM tile that beat the
 * query's current bound thr[r] to cand[r][0 .. cap); cnt[r] counts all of
 * them (a count above cap means overflow).
 * Launch: grid (ceil(cols / 1024), rows of the batch), block 256 threads,
 * each thread 4 consecutive columns.
 * Layout: dots row-major, row r at dots + r * ld (ld a multiple of 4,
 * 16-byte aligned); xn = norms of the tile's rows (NULL for inner product);
 * cand row-major with row length cap.
 */
__global__ void __launch_bounds__(256) bf_filter(const float *__restrict__ dots, int64_t ld, int cols, uint32_t col0,
                                                 const float *__restrict__ xn, int metric,
                                                 const uint64_t *__restrict__ thr, uint64_t *__restrict__ cand,
                                                 int cap, unsigned *__restrict__ cnt)
{
    const int r = blockIdx.y;
    const uint64_t bound = thr[r];
    const float *drow = dots + (int64_t)r * ld;
    const int j0 = (blockIdx.x * blockDim.x + threadIdx.x) * 4;
    float v[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    if (j0 + 3 < cols) {
        const float4 f = *reinterpret_cast<const float4 *>(drow + j0);
        v[0] = f.x;
        v[1] = f.y;
        v[2] = f.z;
        v[3] = f.w;
    } else {
        for (int u = 0; u < 4; ++u)
            if (j0 + u < cols)
                v[u] = drow[j0 + u];
    }
#pragma unroll
    for (int u = 0; u < 4; ++u) {
        const int j = j0 + u;
        uint64_t key = ~0ull;
        if (j < cols)
            key = topk::make_key(bf_rank_key(metric, v[u], xn ? xn[j] : 0.0f), col0 + (uint32_t)j);
        const bool pass = key < bound;
        const unsigned slot = topk::warp_append(&cnt[r], pass);
        if (pass && slot < (unsigned)cap)
            cand[(int64_t)r * cap + slot] = key;
    }
}

/*
 * bf_merge: new running list of query r = the kc smallest keys of
 * (run_in[r][0 .. nrun)) + (the filtered survivors cand[r], or the whole
 * tile row when force_full or the survivors overflowed); thr[r] = its
 * largest key (the bound for the next tile).
 * Launch: grid (rows of the batch), block topk::kSelectThreads.
 * Layout: run_in/run_out row-major with row length kc; cand row length cap;
 * dots row r at dots + r * ld with the tile's cols columns, column j being
 * base row col0 + j; xn the tile's norms (NULL for inner product).
 */
__global__ void __launch_bounds__(topk::kSelectThreads)
    bf_merge(const float *__restrict__ dots, int64_t ld, int cols, uint32_t col0, const float *__restrict__ xn,
             int metric, const uint64_t *__restrict__ run_in, int nrun, uint64_t *__restrict__ run_out, int kc,
             const uint64_t *__restrict__ cand, int cap, const unsigned *__restrict__ cnt, bool force_full,
             uint64_t *__restrict__ thr)
{
    __shared__ topk::SelectShared sh;
    __shared__ uint64_t wmax[topk::kSelectThreads / 32];
    const int r = blockIdx.x;
    const uint64_t *rin = run_in + (int64_t)r * kc;
    uint64_t *rout = run_out + (int64_t)r * kc;
    const unsigned c = force_full ? 0u : cnt[r];
    if (!force_full && c == 0) {
        for (int i = threadIdx.x; i < nrun; i += blockDim.x)
            rout[i] = rin[i];
        return;
    }
    const bool full = force_full || c > (unsigned)cap;
    const float *drow = dots + (int64_t)r * ld;
    const uint64_t *crow = cand + (int64_t)r * cap;
    auto get = [&](int64_t i) -> uint64_t {
        if (i < nrun)
            return rin[i];
        const int64_t j = i - nrun;
        if (full)
            return topk::make_key(bf_rank_key(metric, drow[j], xn ? xn[j] : 0.0f), col0 + (uint32_t)j);
        return crow[j];
    };
    const int64_t m = nrun + (full ? (int64_t)cols : (int64_t)c);
    const int64_t n = topk::block_select_smallest(get, m, kc, rout, sh);
    uint64_t mx = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
        mx = rout[i] > mx ? rout[i] : mx;
    for (int o = 16; o > 0; o >>= 1) {
        const uint64_t y = __shfl_xor_sync(0xffffffffu, mx, o);
        mx = y > mx ? y : mx;
    }
    if ((threadIdx.x & 31) == 0)
        wmax[threadIdx.x >> 5] = mx;
    __syncthreads();
    if (threadIdx.x == 0) {
        mx = wmax[0];
        for (int w = 1; w < topk::kSelectThreads / 32; ++w)
            mx = wmax[w] > mx ? wmax[w] : mx;
        thr[r] = n == kc ? mx : ~0ull;
    }
}

/*
 * bf_rerank: exact distances (double, from the f32 copies of the original
 * values) of query r to its kc candidates, sorted by (key, row) with key =
 * distance (-dot for inner product), best k written to ids/dist[r][0 .. k)
 * in the returned convention; slots >= kout get -1 / worst.
 * Launch: grid (rows of the batch), block 256 threads (8 warps, one
 * candidate per warp at a time); dynamic shared memory P * 16 bytes when
 * scratch is NULL, else scratch + r * P is used.
 * Layout: q (batch x dim) and x (rows x dim) row-major f32; run row length
 * kc; ids/dist row length k; P a power of two >= kc.
 */
__global__ void __launch_bounds__(256)
    bf_rerank(const float *__restrict__ q, const float *__restrict__ x, int64_t dim,
              const uint64_t *__restrict__ run, int kc, int64_t k, int64_t kout, int metric, bool sqrt_out,
              topk::Ranked *scratch, int P, float worst, int64_t *__restrict__ ids, float *__restrict__ dist)
{
    extern __shared__ topk::Ranked rk_smem[];
    const int r = blockIdx.x;
    topk::Ranked *buf = scratch ? scratch + (int64_t)r * P : rk_smem;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const float *qr = q + (int64_t)r * dim;
    for (int c = warp; c < P; c += blockDim.x >> 5) {
        if (c >= kc) {
            if (lane == 0)
                buf[c] = topk::Ranked{~0ull, ~0ull};
            continue;
        }
        const uint32_t row = topk::key_tie(run[(int64_t)r * kc + c]);
        const float *xr = x + (int64_t)row * dim;
        double s = 0, qq = 0, xx = 0;
        for (int64_t j = lane; j < dim; j += 32) {
            const double a = qr[j], b = xr[j];
            if (metric == kMetricL2) {
                const double u = a - b;
                s += u * u;
            } else {
                s += a * b;
                qq += a * a;
                xx += b * b;
            }
        }
        s = topk::warp_sum(s);
        double val;
        if (metric == kMetricL2) {
            val = sqrt_out ? sqrt(s) : s;
        } else if (metric == kMetricIP) {
            val = -s;
        } else {
            qq = topk::warp_sum(qq);
            xx = topk::warp_sum(xx);
            val = (qq > 0 && xx > 0) ? 1.0 - s / (sqrt(qq) * sqrt(xx)) : 1.0;
        }
        if (lane == 0)
            buf[c] = topk::Ranked{topk::double_order(val), row};
    }
    __syncthreads();
    topk::block_bitonic_sort(buf, P);
    for (int64_t j = threadIdx.x; j < k; j += blockDim.x) {
        const int64_t o = (int64_t)r * k + j;
        if (j < kout) {
            const double v = topk::order_double(buf[j].key);
            ids[o] = (int64_t)buf[j].tie;
            dist[o] = (float)(metric == kMetricIP ? -v : v);
        } else {
            ids[o] = -1;
            dist[o] = worst;
        }
    }
}

} // namespace

/* ------------------------------- driver ------------------------------ */

/**
 * CUDA brute-force search (backend_ops.h bf_search): semantics of
 * ann_cpu_bf_search(); the algorithm is described at the top of this file.
 */
ann_status cu_bf_search(const ann_bf_view *ix, const ann_matrix *q, int64_t k, int n_threads, int64_t *ids,
                        float *dist)
{
    (void)n_threads;
    ann_status st = ANN_OK;
    CuCtx *ctx = nullptr;
    BfCache *cache = nullptr;
    bool owned = false;
    float *d_q = nullptr, *d_dots = nullptr, *d_dist = nullptr;
    uint64_t *d_run[2] = {nullptr, nullptr};
    uint64_t *d_cand = nullptr, *d_thr = nullptr;
    unsigned *d_cnt = nullptr;
    topk::Ranked *d_scratch = nullptr;
    int64_t *d_ids = nullptr;
    const int64_t nq = q->rows, n = ix->rows, dim = ix->dim;
    const int metric = cu_metric_kind(ix->metric);
    const bool sqrt_out = ix->metric == ANN_METRIC_EUCLIDEAN;
    const float worst = cu_worst(ix->metric);
    int64_t kc = 0, kout = 0, tb = 0, qb = 0, cap = 0, P = 0, per_row = 0;
    size_t budget = 0, smem = 0;

    if (k < 1)
        return CU_FAIL(ANN_ERR_INVALID_ARG, "brute force: k = %lld must be at least 1", (long long)k);
    if (!cu_metric_ok(ix->metric))
        return CU_FAIL(ANN_ERR_UNSUPPORTED, "brute force on CUDA: metric %d is not supported", (int)ix->metric);
    if (!cu_dtype_ok(ix->dtype) || !cu_dtype_ok(q->dtype))
        return CU_FAIL(ANN_ERR_UNSUPPORTED, "brute force on CUDA: dtype not supported");
    if (q->cols != dim)
        return CU_FAIL(ANN_ERR_MISMATCH, "brute force: queries have dimension %lld, the index %lld",
                       (long long)q->cols, (long long)dim);
    if (n >= (int64_t)UINT32_MAX || dim > INT32_MAX)
        return CU_FAIL(ANN_ERR_UNSUPPORTED, "brute force on CUDA: %lld rows x %lld dims is too large",
                       (long long)n, (long long)dim);
    if (nq <= 0)
        return ANN_OK;
    if (n <= 0) {
        for (int64_t i = 0; i < nq * k; ++i) {
            ids[i] = -1;
            dist[i] = worst;
        }
        return ANN_OK;
    }

    ANN_TRY(cu_ctx_get(&ctx));
    ANN_TRY(bf_cache_get(ctx, ix, &cache, &owned));

    kc = cu_min64(k + kRerankPad, n);
    kout = cu_min64(k, n);
    tb = cu_min64(cu_round_up(n, 32), cu_max64(kTileCols, cu_round_up(kc, 32)));
    cap = cu_max64(2 * kc, 512);
    P = cu_pow2_ceil(kc);
    if (kc > INT32_MAX / 4)
        ANN_TRY(CU_FAIL(ANN_ERR_UNSUPPORTED, "brute force on CUDA: k = %lld is too large", (long long)k));
    budget = cu_workspace_budget(ctx);
    per_row = tb * 4 + dim * 4 + 2 * kc * 8 + cap * 8 + 16 + k * 12 + (P > kSmemRanked ? P * 16 : 0);
    qb = cu_max64(1, cu_min64((int64_t)(budget / (size_t)per_row), cu_min64(nq, kMaxQueryBatch)));

    CU_MALLOC(&d_q, (size_t)qb * dim * sizeof(float));
    CU_MALLOC(&d_dots, (size_t)qb * tb * sizeof(float));
    CU_MALLOC(&d_run[0], (size_t)qb * kc * sizeof(uint64_t));
    CU_MALLOC(&d_run[1], (size_t)qb * kc * sizeof(uint64_t));
    CU_MALLOC(&d_cand, (size_t)qb * cap * sizeof(uint64_t));
    CU_MALLOC(&d_thr, (size_t)qb * sizeof(uint64_t));
    CU_MALLOC(&d_cnt, (size_t)qb * sizeof(unsigned));
    CU_MALLOC(&d_ids, (size_t)qb * k * sizeof(int64_t));
    CU_MALLOC(&d_dist, (size_t)qb * k * sizeof(float));
    if (P > kSmemRanked)
        CU_MALLOC(&d_scratch, (size_t)qb * P * sizeof(topk::Ranked));
    smem = P > kSmemRanked ? 0 : (size_t)P * sizeof(topk::Ranked);

    for (int64_t b0 = 0; b0 < nq; b0 += qb) {
        const int64_t bq = cu_min64(qb, nq - b0);
        int cur = 0;
        ANN_TRY(cu_upload_f32(ctx, (const char *)q->data + b0 * q->stride, bq, dim, q->stride, q->dtype, d_q));
        int64_t t = 0;
        for (int64_t c0 = 0; c0 < n; c0 += tb, ++t) {
            const int64_t cols = cu_min64(tb, n - c0);
            const float *xn = cache->xnorm ? cache->xnorm + c0 : nullptr;
            ANN_TRY(cu_gemm_abt(ctx, bq, cols, dim, d_q, cache->x + c0 * dim, d_dots, tb));
            if (t > 0) {
                CU_CHECK(cudaMemsetAsync(d_cnt, 0, (size_t)bq * sizeof(unsigned), ctx->stream));
                const dim3 grid((unsigned)cu_div_up(cols, 1024), (unsigned)bq);
                bf_filter<<<grid, 256, 0, ctx->stream>>>(d_dots, tb, (int)cols, (uint32_t)c0, xn, metric, d_thr,
                                                         d_cand, (int)cap, d_cnt);
                CU_LAUNCHED("bf_filter");
            }
            bf_merge<<<(unsigned)bq, topk::kSelectThreads, 0, ctx->stream>>>(
                d_dots, tb, (int)cols, (uint32_t)c0, xn, metric, d_run[cur], t > 0 ? (int)kc : 0, d_run[cur ^ 1],
                (int)kc, d_cand, (int)cap, d_cnt, t == 0, d_thr);
            CU_LAUNCHED("bf_merge");
            cur ^= 1;
        }
        bf_rerank<<<(unsigned)bq, 256, smem, ctx->stream>>>(d_q, cache->x, dim, d_run[cur], (int)kc, k, kout, metric,
                                                            sqrt_out, d_scratch, (int)P, worst, d_ids, d_dist);
        CU_LAUNCHED("bf_rerank");
        CU_CHECK(cudaMemcpyAsync(ids + b0 * k, d_ids, (size_t)bq * k * sizeof(int64_t), cudaMemcpyDeviceToHost,
                                 ctx->stream));
        CU_CHECK(cudaMemcpyAsync(dist + b0 * k, d_dist, (size_t)bq * k * sizeof(float), cudaMemcpyDeviceToHost,
                                 ctx->stream));
        CU_CHECK(cudaStreamSynchronize(ctx->stream));
    }

cleanup:
    if (ctx && st != ANN_OK)
        (void)cudaStreamSynchronize(ctx->stream);
    cu_free(d_q);
    cu_free(d_dots);
    cu_free(d_run[0]);
    cu_free(d_run[1]);
    cu_free(d_cand);
    cu_free(d_thr);
    cu_free(d_cnt);
    cu_free(d_scratch);
    cu_free(d_ids);
    cu_free(d_dist);
    if (owned && cache)
        bf_cache_destroy(&cache->base);
    return st;
}
