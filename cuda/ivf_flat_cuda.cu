/*
 * ivf_flat_cuda.cu - IVF-Flat search on CUDA; the twin of
 * lib/src/ivf_flat_cpu.c (same probes, same max_codes rule, same
 * survivors up to near-ties, same exact re-rank).
 *
 * Algorithm (notes/algorithms.md 2.3; the packed-list "csr" grouping of
 * seeds/torch-ivf.md, as ann/ivf_flat.h describes it):
 *  1. Coarse: one cublasSgemm of a batch of queries against the centers;
 *     per query the n_probes best lists by the CPU's key (||c||^2 - 2 q.c
 *     for the L2 family, -q.c for inner product and cosine, whose centers
 *     are unit length), ties by list id, in order (block radix select +
 *     bitonic sort, topk.cuh).  max_codes > 0: the lists are taken in
 *     that order while fewer than max_codes vectors have been scanned, a
 *     list is scanned whole (exactly the CPU rule: the list that crosses
 *     the cap is still scanned, the following ones are not).
 *  2. Grouping: the (query, probe) pairs of a sub-batch are sorted by list
 *     id (CUB radix sort) and cut into work items of up to 16 pairs of one
 *     list.
 *  3. Scan: one block per work item streams the list's rows through shared
 *     memory in tiles of up to 256 rows x 32 dims (converted from the
 *     stored dtype) and computes the distances of all its queries to every
 *     row, so each row is read once per 16 queries.  Ranking keys as the
 *     CPU's: squared L2 (direct sum of squared differences in float),
 *     -q.x/|x| for cosine, -q.x for inner product, packed with the rank of
 *     the row's id (ids ordered like the ranks) into 64-bit keys that are
 *     written to a per-query "sample" array.
 *  4. Select + re-rank: one block per query selects its k smallest sample
 *     keys (radix select), recomputes their exact distances in double from
 *     the original values, sorts by (distance, id) and writes ids and
 *     distances in the returned convention; missing results are -1 / worst.
 * Materialising the samples costs 8 bytes per (query, scanned row) against
 * dim x element-size bytes of list data and 2 x dim flops per distance, so
 * it is cheap next to the scan, and one code path serves every k (k > 256
 * included).  Sub-batches keep the samples within the workspace budget.
 *
 * The device cache holds the centers, the packed data in its own dtype, the
 * norms, list offsets and the id <-> rank maps (ids are usually 0..n-1, the
 * rank is then the id itself).
 */
#include <algorithm>
#include <cstring>
#include <new>
#include <vector>

#include "cuda_common.cuh"
#include "topk.cuh"

namespace {

constexpr int kScanThreads = 256;
constexpr int kScanQ = 16;          /* pairs (queries) per work item */
constexpr int kScanDC = 32;         /* dims per shared-memory chunk */
constexpr int kCoarseSmem = 4096;   /* coarse probe sort in shared memory up to this many */
constexpr int kFinalSmem = 1024;    /* final select/sort in shared memory up to this many */
constexpr int64_t kMaxCoarseBatch = 65536;

struct ScanItem {
    int32_t list;
    int32_t start;  /* first pair in the sorted pair array */
    int32_t count;  /* pairs, 1 .. kScanQ */
    int32_t pad;
};

/* ------------------------------- cache ------------------------------- */

struct IvfCache {
    CuCacheBase base;
    /* what is cached */
    const void *src_data;
    const float *src_centers, *src_cnorms, *src_dnorms;
    const int64_t *src_offsets, *src_ids;
    int64_t rows, dim;
    int32_t n_lists;
    ann_dtype dtype;
    ann_metric metric;
    /* device copies */
    float *centers;          /* n_lists x dim */
    float *cnorm;            /* n_lists squared norms (L2 family only) */
    void *data;              /* rows x dim in dtype, packed by list */
    float *dnorm;            /* rows L2 norms (cosine only) */
    int64_t *offsets;        /* n_lists + 1 */
    uint32_t *rank_of_row;   /* packed row -> rank of its id */
    uint32_t *row_of_rank;   /* inverse */
    int64_t *id_of_rank;     /* rank -> id; NULL when the ids are 0..rows-1 (id = rank) */
};

void ivf_cache_destroy(CuCacheBase *b)
{
    IvfCache *c = reinterpret_cast<IvfCache *>(b);
    cu_free(c->centers);
    cu_free(c->cnorm);
    cu_free(c->data);
    cu_free(c->dnorm);
    cu_free(c->offsets);
    cu_free(c->rank_of_row);
    cu_free(c->row_of_rank);
    cu_free(c->id_of_rank);
    delete c;
}

bool ivf_cache_matches(const IvfCache *c, const ann_ivf_flat_view *ix)
{
    return c->src_data == ix->data && c->src_centers == ix->centers && c->src_cnorms == ix->center_norms &&
           c->src_dnorms == ix->data_norms && c->src_offsets == ix->list_offsets && c->src_ids == ix->list_ids &&
           c->rows == ix->rows && c->dim == ix->dim && c->n_lists == ix->n_lists && c->dtype == ix->dtype &&
           c->metric == ix->metric;
}

ann_status ivf_cache_build(CuCtx *ctx, const ann_ivf_flat_view *ix, IvfCache **out)
{
    ann_status st = ANN_OK;
    const int64_t n = ix->rows, dim = ix->dim;
    const int32_t L = ix->n_lists;
    std::vector<uint32_t> rank_of_row, row_of_rank;
    std::vector<int64_t> id_of_rank;
    bool identity = true;
    IvfCache *c = new (std::nothrow) IvfCache();
    if (!c)
        return CU_FAIL(ANN_ERR_NOMEM, "out of host memory for the IVF-Flat device cache");
    c->base.magic = kCuCacheMagic;
    c->base.destroy = ivf_cache_destroy;
    c->src_data = ix->data;
    c->src_centers = ix->centers;
    c->src_cnorms = ix->center_norms;
    c->src_dnorms = ix->data_norms;
    c->src_offsets = ix->list_offsets;
    c->src_ids = ix->list_ids;
    c->rows = n;
    c->dim = dim;
    c->n_lists = L;
    c->dtype = ix->dtype;
    c->metric = ix->metric;
    try {
        identity = cu_id_ranks(ix->list_ids, n, &rank_of_row, &row_of_rank, &id_of_rank);
    } catch (...) {
        st = CU_FAIL(ANN_ERR_NOMEM, "out of host memory for the id ranks of %lld rows", (long long)n);
        goto cleanup;
    }
    CU_MALLOC(&c->centers, (size_t)L * dim * sizeof(float));
    CU_CHECK(cudaMemcpyAsync(c->centers, ix->centers, (size_t)L * dim * sizeof(float), cudaMemcpyHostToDevice,
                             ctx->stream));
    if (ix->metric == ANN_METRIC_SQEUCLIDEAN || ix->metric == ANN_METRIC_EUCLIDEAN) {
        CU_MALLOC(&c->cnorm, (size_t)L * sizeof(float));
        if (ix->center_norms)
            CU_CHECK(cudaMemcpyAsync(c->cnorm, ix->center_norms, (size_t)L * sizeof(float), cudaMemcpyHostToDevice,
                                     ctx->stream));
        else
            ANN_TRY(cu_row_norms(ctx, c->centers, ANN_DTYPE_F32, L, dim, false, c->cnorm));
    }
    CU_MALLOC(&c->data, (size_t)n * dim * cu_dtype_size(ix->dtype));
    CU_CHECK(cudaMemcpyAsync(c->data, ix->data, (size_t)n * dim * cu_dtype_size(ix->dtype), cudaMemcpyHostToDevice,
                             ctx->stream));
    if (ix->metric == ANN_METRIC_COSINE) {
        CU_MALLOC(&c->dnorm, (size_t)n * sizeof(float));
        if (ix->data_norms)
            CU_CHECK(cudaMemcpyAsync(c->dnorm, ix->data_norms, (size_t)n * sizeof(float), cudaMemcpyHostToDevice,
                                     ctx->stream));
        else
            ANN_TRY(cu_row_norms(ctx, c->data, ix->dtype, n, dim, true, c->dnorm));
    }
    CU_MALLOC(&c->offsets, (size_t)(L + 1) * sizeof(int64_t));
    CU_CHECK(cudaMemcpyAsync(c->offsets, ix->list_offsets, (size_t)(L + 1) * sizeof(int64_t),
                             cudaMemcpyHostToDevice, ctx->stream));
    CU_MALLOC(&c->rank_of_row, (size_t)n * sizeof(uint32_t));
    CU_CHECK(cudaMemcpyAsync(c->rank_of_row, rank_of_row.data(), (size_t)n * sizeof(uint32_t),
                             cudaMemcpyHostToDevice, ctx->stream));
    CU_MALLOC(&c->row_of_rank, (size_t)n * sizeof(uint32_t));
    CU_CHECK(cudaMemcpyAsync(c->row_of_rank, row_of_rank.data(), (size_t)n * sizeof(uint32_t),
                             cudaMemcpyHostToDevice, ctx->stream));
    if (!identity) {
        CU_MALLOC(&c->id_of_rank, (size_t)n * sizeof(int64_t));
        CU_CHECK(cudaMemcpyAsync(c->id_of_rank, id_of_rank.data(), (size_t)n * sizeof(int64_t),
                                 cudaMemcpyHostToDevice, ctx->stream));
    }
    /* the host vectors must outlive the copies */
    CU_CHECK(cudaStreamSynchronize(ctx->stream));
    *out = c;
    return ANN_OK;
cleanup:
    (void)cudaStreamSynchronize(ctx->stream);
    ivf_cache_destroy(&c->base);
    return st;
}

/* The cache of this view (see bf_cache_get in bf_cuda.cu). */
ann_status ivf_cache_get(CuCtx *ctx, const ann_ivf_flat_view *ix, IvfCache **out, bool *owned)
{
    return cu_cache_get(ctx, ix, ivf_cache_build, ivf_cache_matches, ivf_cache_destroy, out, owned);
}

/* ------------------------------ kernels ------------------------------ */

/*
 * ivf_coarse: the n_probes best lists of query r, best first (key: cnorm[l]
 * - 2 q.c_l when cnorm is given (L2 family), else -q.c_l; ties by list id),
 * and the scan plan under max_codes: lim[r][j] = the list's size when it is
 * scanned, else 0; off[r][j] = where its rows start in the query's sample
 * array; tot[r] = the query's number of samples.
 * Launch: grid (queries of the batch), block topk::kSelectThreads; dynamic
 * shared memory P2 * 8 bytes when scratch is NULL (else scratch + r * P2).
 * Layout: dots row-major, row length n_lists (ld); probes/lim/off row
 * length n_probes; P2 = power of two >= n_probes.
 */
__global__ void __launch_bounds__(topk::kSelectThreads)
    ivf_coarse(const float *__restrict__ dots, int n_lists, const float *__restrict__ cnorm, int n_probes,
               int64_t max_codes, const int64_t *__restrict__ offsets, uint64_t *scratch, int P2,
               int32_t *__restrict__ probes, int32_t *__restrict__ lim, int64_t *__restrict__ off,
               int64_t *__restrict__ tot)
{
    extern __shared__ uint64_t co_smem[];
    __shared__ topk::SelectShared sh;
    const int r = blockIdx.x;
    uint64_t *buf = scratch ? scratch + (int64_t)r * P2 : co_smem;
    const float *drow = dots + (int64_t)r * n_lists;
    auto get = [&](int64_t l) -> uint64_t {
        const float key = cnorm ? cnorm[l] - 2.0f * drow[l] : -drow[l];
        return topk::make_key(key, (uint32_t)l);
    };
    const int64_t n = topk::block_select_smallest(get, n_lists, n_probes, buf, sh);
    for (int64_t i = n + threadIdx.x; i < P2; i += blockDim.x)
        buf[i] = ~0ull;
    __syncthreads();
    topk::block_bitonic_sort(buf, P2);
    int32_t *pr = probes + (int64_t)r * n_probes;
    for (int j = threadIdx.x; j < n_probes; j += blockDim.x)
        pr[j] = (int32_t)topk::key_tie(buf[j]);
    if (threadIdx.x == 0) {
        int64_t scanned = 0;
        for (int j = 0; j < n_probes; ++j) {
            const uint32_t l = topk::key_tie(buf[j]);
            const int64_t size = offsets[l + 1] - offsets[l];
            const bool take = max_codes <= 0 || scanned < max_codes;
            lim[(int64_t)r * n_probes + j] = take ? (int32_t)size : 0;
            off[(int64_t)r * n_probes + j] = scanned;
            if (take)
                scanned += size;
        }
        tot[r] = scanned;
    }
}

/*
 * ivf_pair_keys: for the pairs p = (query s0 + p / P, probe p % P) of a
 * sub-batch: sort key = list id (n_lists when the pair scans nothing),
 * value = p; counts[list] += 1 for the pairs that scan.
 * Launch: 1-D grid-stride over n_pairs, any shape.
 * Layout: probes/lim row-major (coarse batch x P).
 */
__global__ void ivf_pair_keys(const int32_t *__restrict__ probes, const int32_t *__restrict__ lim, int64_t s0, int P,
                              int64_t n_pairs, int n_lists, uint32_t *__restrict__ keys, uint32_t *__restrict__ vals,
                              unsigned *__restrict__ counts)
{
    for (int64_t p = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; p < n_pairs;
         p += (int64_t)gridDim.x * blockDim.x) {
        const int64_t g = s0 * P + p;
        const bool scans = lim[g] > 0;
        const int32_t l = probes[g];
        keys[p] = scans ? (uint32_t)l : (uint32_t)n_lists;
        vals[p] = (uint32_t)p;
        if (scans)
            atomicAdd(&counts[l], 1u);
    }
}

/*
 * ivf_scan: distances of the (up to 16) queries of one work item to the
 * rows of its list, written as (ranking key, rank) keys into the samples.
 * Launch: grid (work items), block kScanThreads (256).  Threads are
 * (row, group of 4 queries): with n queries the block takes 256 / G rows
 * per tile, G = 1, 2 or 4 groups; rows of a tile are staged in shared
 * memory kScanDC dims at a time (row pitch kScanDC + 1: conflict-free),
 * the item's queries too (read as broadcasts).  keep (NULL = no filter)
 * is a bitset over packed rows: a row whose bit is 0 gets the key ~0
 * (never a result; ivf_final skips it).
 * Layout: data packed rows (row stride dim elements of T), list l = rows
 * [offsets[l], offsets[l+1]); q the coarse batch's queries, row-major f32;
 * pair value v = (query v / P of the sub-batch, probe v % P), its plan at
 * lim/off[(s0 + v / P) * P + v % P]; qoff = sample offset of each query of
 * the sub-batch.
 */
template <typename T, bool kL2>
__global__ void __launch_bounds__(kScanThreads)
    ivf_scan(const T *__restrict__ data, int64_t dim, const int64_t *__restrict__ offsets,
             const float *__restrict__ q, bool cosine, const float *__restrict__ dnorm,
             const uint32_t *__restrict__ rank_of_row, const ScanItem *__restrict__ items,
             const uint32_t *__restrict__ pair_vals, const int32_t *__restrict__ lim,
             const int64_t *__restrict__ off, const int64_t *__restrict__ qoff, int P, int64_t s0,
             const uint32_t *__restrict__ keep, uint64_t *__restrict__ samples)
{
    __shared__ float sx[kScanThreads][kScanDC + 1];
    __shared__ float sq[kScanQ][kScanDC];
    __shared__ int64_t s_qrow[kScanQ], s_out[kScanQ];
    __shared__ int s_lim[kScanQ];
    __shared__ int s_maxlim;
    const int tid = threadIdx.x;
    const ScanItem it = items[blockIdx.x];
    const int n = it.count;
    if (tid < kScanQ) {
        int64_t qrow = 0, out = 0;
        int l = 0;
        if (tid < n) {
            const uint32_t v = pair_vals[it.start + tid];
            const int64_t qi = v / (uint32_t)P, j = v % (uint32_t)P;
            const int64_t g = (s0 + qi) * P + j;
            qrow = s0 + qi;
            l = lim[g];
            out = qoff[qi] + off[g];
        }
        s_qrow[tid] = qrow;
        s_out[tid] = out;
        s_lim[tid] = l;
    }
    __syncthreads();
    if (tid == 0) {
        int m = 0;
        for (int g = 0; g < n; ++g)
            m = s_lim[g] > m ? s_lim[g] : m;
        s_maxlim = m;
    }
    __syncthreads();
    const int groups = n <= 4 ? 1 : n <= 8 ? 2 : 4;
    const int rt = kScanThreads / groups;
    const int my_row = tid % rt, my_grp = tid / rt;
    const int64_t base = offsets[it.list];
    const int64_t maxlim = s_maxlim;
    for (int64_t r0 = 0; r0 < maxlim; r0 += rt) {
        float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        for (int64_t d0 = 0; d0 < dim; d0 += kScanDC) {
            const int dc = (int)(dim - d0 < kScanDC ? dim - d0 : kScanDC);
            for (int e = tid; e < rt * kScanDC; e += kScanThreads) {
                const int r = e / kScanDC, d = e % kScanDC;
                const int64_t gr = r0 + r;
                float v = 0.0f;
                if (gr < maxlim && d < dc)
                    v = to_f32(data[(base + gr) * dim + d0 + d]);
                sx[r][d] = v;
            }
            for (int e = tid; e < kScanQ * kScanDC; e += kScanThreads) {
                const int g = e / kScanDC, d = e % kScanDC;
                float v = 0.0f;
                if (g < n && d < dc)
                    v = q[s_qrow[g] * dim + d0 + d];
                sq[g][d] = v;
            }
            __syncthreads();
            for (int d = 0; d < dc; ++d) {
                const float xv = sx[my_row][d];
#pragma unroll
                for (int u = 0; u < 4; ++u) {
                    const float qv = sq[my_grp * 4 + u][d];
                    if (kL2) {
                        const float t = qv - xv;
                        acc[u] = fmaf(t, t, acc[u]);
                    } else {
                        acc[u] = fmaf(qv, xv, acc[u]);
                    }
                }
            }
            __syncthreads();
        }
        const int64_t gr = r0 + my_row;
#pragma unroll
        for (int u = 0; u < 4; ++u) {
            const int g = my_grp * 4 + u;
            if (g < n && gr < s_lim[g]) {
                float key;
                if (kL2) {
                    key = acc[u];
                } else if (cosine) {
                    const float xn = dnorm[base + gr];
                    key = xn > 0.0f ? -acc[u] / xn : 0.0f;
                } else {
                    key = -acc[u];
                }
                const int64_t row = base + gr;
                samples[s_out[g] + gr] = keep && !((keep[row >> 5] >> (row & 31)) & 1u)
                                             ? ~0ull /* filtered out: never selected as a result */
                                             : topk::make_key(key, rank_of_row[row]);
            }
        }
    }
}

/*
 * ivf_final: query qi of the sub-batch: the k smallest of its samples, their
 * exact distances in double from the original values, sorted by (distance,
 * id rank), written as ids (rank mapped back to the id) and distances in
 * the returned convention; slots beyond the samples get -1 / worst.
 * Launch: grid (queries of the sub-batch), block topk::kSelectThreads;
 * dynamic shared memory P2 * 24 bytes when sel_scratch is NULL, else the
 * scratch arrays at qi * P2 are used.
 * Layout: samples of query qi at samples + qoff[qi], tot[s0 + qi] of them;
 * q the coarse batch's f32 queries; data packed rows of T; ids/dist row
 * length k, row qi; P2 = power of two >= min(k, max samples).
 */
template <typename T>
__global__ void __launch_bounds__(topk::kSelectThreads)
    ivf_final(const uint64_t *__restrict__ samples, const int64_t *__restrict__ qoff, const int64_t *__restrict__ tot,
              int64_t s0, const float *__restrict__ q, const T *__restrict__ data, int64_t dim,
              const uint32_t *__restrict__ row_of_rank, const int64_t *__restrict__ id_of_rank, int64_t k,
              int metric, bool sqrt_out, float worst, uint64_t *sel_scratch, topk::Ranked *rk_scratch, int P2,
              int64_t *__restrict__ ids, float *__restrict__ dist)
{
    extern __shared__ uint64_t fin_smem[];
    __shared__ topk::SelectShared sh;
    const int qi = blockIdx.x;
    uint64_t *sel = sel_scratch ? sel_scratch + (int64_t)qi * P2 : fin_smem;
    topk::Ranked *rk = rk_scratch ? rk_scratch + (int64_t)qi * P2 : reinterpret_cast<topk::Ranked *>(fin_smem + P2);
    const uint64_t *srow = samples + qoff[qi];
    const int64_t m = tot[s0 + qi];
    auto get = [&](int64_t i) -> uint64_t { return srow[i]; };
    const int64_t kk = topk::block_select_smallest(get, m, k, sel, sh);
    const float *qr = q + (s0 + qi) * dim;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    for (int64_t c = warp; c < P2; c += blockDim.x >> 5) {
        if (c >= kk || sel[c] == ~0ull) { /* empty, or a filtered row */
            if (lane == 0)
                rk[c] = topk::Ranked{~0ull, ~0ull};
            continue;
        }
        const uint32_t rank = topk::key_tie(sel[c]);
        const T *xr = data + (int64_t)row_of_rank[rank] * dim;
        double s = 0, qq = 0, xx = 0;
        for (int64_t j = lane; j < dim; j += 32) {
            const double a = qr[j], b = to_f32(xr[j]);
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
            rk[c] = topk::Ranked{topk::double_order(val), rank};
    }
    __syncthreads();
    topk::block_bitonic_sort(rk, P2);
    for (int64_t j = threadIdx.x; j < k; j += blockDim.x) {
        const int64_t o = (int64_t)qi * k + j;
        if (j < kk && rk[j].tie != ~0ull) {
            const uint32_t rank = (uint32_t)rk[j].tie;
            const double v = topk::order_double(rk[j].key);
            ids[o] = id_of_rank ? id_of_rank[rank] : (int64_t)rank;
            dist[o] = (float)(metric == kMetricIP ? -v : v);
        } else {
            ids[o] = -1;
            dist[o] = worst;
        }
    }
}

/* Launch ivf_scan and ivf_final for element type T. */
template <typename T>
ann_status launch_scan_final(CuCtx *ctx, const IvfCache *c, int metric, const float *d_q, const ScanItem *d_items,
                             int64_t n_items, const uint32_t *d_vals, const int32_t *d_lim, const int64_t *d_off,
                             const int64_t *d_qoff, const int64_t *d_tot, int P, int64_t s0, int64_t bs,
                             const uint32_t *d_keep, uint64_t *d_samples, int64_t k, bool sqrt_out, float worst,
                             uint64_t *d_sel, topk::Ranked *d_rk, int P2, int64_t *d_ids, float *d_dist)
{
    ann_status st = ANN_OK;
    const T *data = static_cast<const T *>(c->data);
    const size_t smem = d_sel ? 0 : (size_t)P2 * (sizeof(uint64_t) + sizeof(topk::Ranked));
    if (n_items > 0) {
        if (metric == kMetricL2)
            ivf_scan<T, true><<<(unsigned)n_items, kScanThreads, 0, ctx->stream>>>(
                data, c->dim, c->offsets, d_q, false, c->dnorm, c->rank_of_row, d_items, d_vals, d_lim, d_off, d_qoff,
                P, s0, d_keep, d_samples);
        else
            ivf_scan<T, false><<<(unsigned)n_items, kScanThreads, 0, ctx->stream>>>(
                data, c->dim, c->offsets, d_q, metric == kMetricCos, c->dnorm, c->rank_of_row, d_items, d_vals, d_lim,
                d_off, d_qoff, P, s0, d_keep, d_samples);
        CU_LAUNCHED("ivf_scan");
    }
    ivf_final<T><<<(unsigned)bs, topk::kSelectThreads, smem, ctx->stream>>>(
        d_samples, d_qoff, d_tot, s0, d_q, data, c->dim, c->row_of_rank, c->id_of_rank, k, metric, sqrt_out, worst,
        d_sel, d_rk, P2, d_ids, d_dist);
    CU_LAUNCHED("ivf_final");
cleanup:
    return st;
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

} // namespace

/* ------------------------------- driver ------------------------------ */

/**
 * CUDA IVF-Flat search (backend_ops.h ivf_flat_search): semantics of
 * ann_cpu_ivf_flat_search(); the algorithm is described at the top of
 * this file.  p->search_mode is ignored (the GPU always groups by list).
 */
ann_status cu_ivf_flat_search(const ann_ivf_flat_view *ix, const ann_ivf_flat_search_params *p,
                              const ann_matrix *q, int64_t k, int n_threads, int64_t *ids, float *dist)
{
    (void)n_threads;
    ann_status st = ANN_OK;
    CuCtx *ctx = nullptr;
    IvfCache *cache = nullptr;
    bool owned = false;
    const int64_t nq = q->rows, dim = ix->dim, n = ix->rows;
    const int32_t L = ix->n_lists;
    const int metric = cu_metric_kind(ix->metric);
    const bool sqrt_out = ix->metric == ANN_METRIC_EUCLIDEAN;
    const float worst = cu_worst(ix->metric);
    const int64_t max_codes = p ? p->max_codes : 0;
    int P = 0, P2c = 0, P2k = 0, end_bit = 1;
    int64_t qc = 0, per_query = 0, sample_budget = 0;
    size_t budget = 0;
    /* device buffers */
    float *d_q = nullptr, *d_dots = nullptr, *d_dist = nullptr;
    int32_t *d_probes = nullptr, *d_lim = nullptr;
    int64_t *d_off = nullptr, *d_tot = nullptr, *d_qoff = nullptr, *d_ids = nullptr;
    uint64_t *d_cscratch = nullptr, *d_sel = nullptr;
    topk::Ranked *d_rk = nullptr;
    uint32_t *d_kin = nullptr, *d_kout = nullptr, *d_vin = nullptr, *d_vout = nullptr, *d_keep = nullptr;
    unsigned *d_counts = nullptr;
    void *d_items = nullptr, *d_samples = nullptr, *d_sort_tmp = nullptr;
    size_t items_cap = 0, samples_cap = 0, sort_tmp_cap = 0;
    /* host buffers */
    std::vector<int64_t> h_tot, h_qoff;
    std::vector<uint32_t> h_counts;
    std::vector<ScanItem> h_items;
    std::vector<uint32_t> h_keep;

    if (k < 1)
        return CU_FAIL(ANN_ERR_INVALID_ARG, "ivf_flat: k = %lld must be at least 1", (long long)k);
    if (!cu_metric_ok(ix->metric))
        return CU_FAIL(ANN_ERR_UNSUPPORTED, "ivf_flat on CUDA: metric %d is not supported", (int)ix->metric);
    if (!cu_dtype_ok(ix->dtype) || !cu_dtype_ok(q->dtype))
        return CU_FAIL(ANN_ERR_UNSUPPORTED, "ivf_flat on CUDA: dtype not supported");
    if (q->cols != dim)
        return CU_FAIL(ANN_ERR_MISMATCH, "ivf_flat: queries have dimension %lld, the index %lld",
                       (long long)q->cols, (long long)dim);
    if (L < 1 || n >= (int64_t)UINT32_MAX || dim > INT32_MAX)
        return CU_FAIL(ANN_ERR_UNSUPPORTED, "ivf_flat on CUDA: %lld rows, %d lists is out of range", (long long)n,
                       (int)L);
    if (k > INT32_MAX / 32)
        return CU_FAIL(ANN_ERR_UNSUPPORTED, "ivf_flat on CUDA: k = %lld is too large", (long long)k);
    if (nq <= 0)
        return ANN_OK;
    P = (int)cu_max64(1, cu_min64(p ? p->n_probes : 20, L));

    ANN_TRY(cu_ctx_get(&ctx));
    ANN_TRY(ivf_cache_get(ctx, ix, &cache, &owned));

    P2c = (int)cu_pow2_ceil(P);
    P2k = (int)cu_pow2_ceil(cu_max64(1, cu_min64(k, n)));
    end_bit = cu_bits_for((uint64_t)L);
    budget = cu_workspace_budget(ctx);
    sample_budget = (int64_t)(budget / 2 / sizeof(uint64_t));
    per_query = (int64_t)L * 4 + dim * 4 + (int64_t)P * (4 + 4 + 8 + 16) + 32 + k * 12 +
                (P2c > kCoarseSmem ? (int64_t)P2c * 8 : 0) + (P2k > kFinalSmem ? (int64_t)P2k * 24 : 0);
    qc = cu_max64(1, cu_min64((int64_t)(budget / 2) / per_query, cu_min64(nq, kMaxCoarseBatch)));
    if (qc * P > INT32_MAX)
        qc = cu_max64(1, INT32_MAX / P);

    try {
        h_tot.resize((size_t)qc);
        h_qoff.resize((size_t)qc);
        h_counts.resize((size_t)L);
    } catch (...) {
        ANN_TRY(CU_FAIL(ANN_ERR_NOMEM, "ivf_flat: out of host memory"));
    }

    CU_MALLOC(&d_q, (size_t)qc * dim * sizeof(float));
    CU_MALLOC(&d_dots, (size_t)qc * L * sizeof(float));
    CU_MALLOC(&d_probes, (size_t)qc * P * sizeof(int32_t));
    CU_MALLOC(&d_lim, (size_t)qc * P * sizeof(int32_t));
    CU_MALLOC(&d_off, (size_t)qc * P * sizeof(int64_t));
    CU_MALLOC(&d_tot, (size_t)qc * sizeof(int64_t));
    CU_MALLOC(&d_qoff, (size_t)qc * sizeof(int64_t));
    CU_MALLOC(&d_kin, (size_t)qc * P * sizeof(uint32_t));
    CU_MALLOC(&d_kout, (size_t)qc * P * sizeof(uint32_t));
    CU_MALLOC(&d_vin, (size_t)qc * P * sizeof(uint32_t));
    CU_MALLOC(&d_vout, (size_t)qc * P * sizeof(uint32_t));
    CU_MALLOC(&d_counts, (size_t)L * sizeof(unsigned));
    CU_MALLOC(&d_ids, (size_t)qc * k * sizeof(int64_t));
    CU_MALLOC(&d_dist, (size_t)qc * k * sizeof(float));
    if (ix->filter) { /* the filter over source ids, as a bitset over packed rows */
        try {
            h_keep.assign((size_t)((n + 31) / 32), 0u);
        } catch (...) {
            ANN_TRY(CU_FAIL(ANN_ERR_NOMEM, "ivf_flat: out of host memory for the filter"));
        }
        for (int64_t r = 0; r < n; ++r) {
            const int64_t id = ix->list_ids[r];
            if (id >= 0 && id < ix->filter_bits && ((ix->filter[id >> 5] >> (id & 31)) & 1u))
                h_keep[(size_t)(r >> 5)] |= 1u << (r & 31);
        }
        CU_MALLOC(&d_keep, h_keep.size() * sizeof(uint32_t) + 4);
        CU_CHECK(cudaMemcpyAsync(d_keep, h_keep.data(), h_keep.size() * sizeof(uint32_t), cudaMemcpyHostToDevice,
                                 ctx->stream));
    }
    if (P2c > kCoarseSmem)
        CU_MALLOC(&d_cscratch, (size_t)qc * P2c * sizeof(uint64_t));
    if (P2k > kFinalSmem) {
        CU_MALLOC(&d_sel, (size_t)qc * P2k * sizeof(uint64_t));
        CU_MALLOC(&d_rk, (size_t)qc * P2k * sizeof(topk::Ranked));
    }

    for (int64_t c0 = 0; c0 < nq; c0 += qc) {
        const int64_t bc = cu_min64(qc, nq - c0);
        ANN_TRY(cu_upload_f32(ctx, (const char *)q->data + c0 * q->stride, bc, dim, q->stride, q->dtype, d_q));
        ANN_TRY(cu_gemm_abt(ctx, bc, L, dim, d_q, cache->centers, d_dots, L));
        ivf_coarse<<<(unsigned)bc, topk::kSelectThreads, d_cscratch ? 0 : (size_t)P2c * 8, ctx->stream>>>(
            d_dots, L, cache->cnorm, P, max_codes, cache->offsets, d_cscratch, P2c, d_probes, d_lim, d_off, d_tot);
        CU_LAUNCHED("ivf_coarse");
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
            const int64_t bs = s1 - s0, n_pairs = bs * P;
            ANN_TRY(grow(&d_samples, &samples_cap, (size_t)cu_max64(total, 1) * sizeof(uint64_t)));
            CU_CHECK(cudaMemcpyAsync(d_qoff, h_qoff.data(), (size_t)bs * sizeof(int64_t), cudaMemcpyHostToDevice,
                                     ctx->stream));
            CU_CHECK(cudaMemsetAsync(d_counts, 0, (size_t)L * sizeof(unsigned), ctx->stream));
            ivf_pair_keys<<<(unsigned)cu_min64(cu_div_up(n_pairs, 256), 65535), 256, 0, ctx->stream>>>(
                d_probes, d_lim, s0, P, n_pairs, L, d_kin, d_vin, d_counts);
            CU_LAUNCHED("ivf_pair_keys");
            ANN_TRY(cu_sort_pairs_u32(ctx, n_pairs, end_bit, d_kin, d_kout, d_vin, d_vout, &d_sort_tmp,
                                      &sort_tmp_cap));
            CU_CHECK(cudaMemcpyAsync(h_counts.data(), d_counts, (size_t)L * sizeof(unsigned),
                                     cudaMemcpyDeviceToHost, ctx->stream));
            CU_CHECK(cudaStreamSynchronize(ctx->stream));
            h_items.clear();
            try {
                int64_t seg = 0;
                for (int32_t l = 0; l < L; ++l) {
                    const int64_t cnt = h_counts[(size_t)l];
                    for (int64_t s = 0; s < cnt; s += kScanQ)
                        h_items.push_back(ScanItem{l, (int32_t)(seg + s), (int32_t)cu_min64(kScanQ, cnt - s), 0});
                    seg += cnt;
                }
            } catch (...) {
                ANN_TRY(CU_FAIL(ANN_ERR_NOMEM, "ivf_flat: out of host memory for the scan plan"));
            }
            const int64_t n_items = (int64_t)h_items.size();
            if (n_items > 0) {
                ANN_TRY(grow(&d_items, &items_cap, (size_t)n_items * sizeof(ScanItem)));
                CU_CHECK(cudaMemcpyAsync(d_items, h_items.data(), (size_t)n_items * sizeof(ScanItem),
                                         cudaMemcpyHostToDevice, ctx->stream));
            }
            {
                const ScanItem *items = static_cast<const ScanItem *>(d_items);
                uint64_t *samples = static_cast<uint64_t *>(d_samples);
                switch (ix->dtype) {
                case ANN_DTYPE_F32:
                    st = launch_scan_final<float>(ctx, cache, metric, d_q, items, n_items, d_vout, d_lim, d_off,
                                                  d_qoff, d_tot, P, s0, bs, d_keep, samples, k, sqrt_out, worst,
                                                  d_sel, d_rk, P2k, d_ids, d_dist);
                    break;
                case ANN_DTYPE_F16:
                    st = launch_scan_final<__half>(ctx, cache, metric, d_q, items, n_items, d_vout, d_lim, d_off,
                                                   d_qoff, d_tot, P, s0, bs, d_keep, samples, k, sqrt_out, worst, d_sel,
                                                   d_rk, P2k, d_ids, d_dist);
                    break;
                case ANN_DTYPE_I8:
                    st = launch_scan_final<int8_t>(ctx, cache, metric, d_q, items, n_items, d_vout, d_lim, d_off,
                                                   d_qoff, d_tot, P, s0, bs, d_keep, samples, k, sqrt_out, worst, d_sel,
                                                   d_rk, P2k, d_ids, d_dist);
                    break;
                default:
                    st = launch_scan_final<uint8_t>(ctx, cache, metric, d_q, items, n_items, d_vout, d_lim, d_off,
                                                    d_qoff, d_tot, P, s0, bs, d_keep, samples, k, sqrt_out,
                                                    worst, d_sel, d_rk, P2k, d_ids, d_dist);
                    break;
                }
                if (st != ANN_OK)
                    goto cleanup;
            }
            CU_CHECK(cudaMemcpyAsync(ids + (c0 + s0) * k, d_ids, (size_t)bs * k * sizeof(int64_t),
                                     cudaMemcpyDeviceToHost, ctx->stream));
            CU_CHECK(cudaMemcpyAsync(dist + (c0 + s0) * k, d_dist, (size_t)bs * k * sizeof(float),
                                     cudaMemcpyDeviceToHost, ctx->stream));
            /* h_items / h_qoff are reused by the next sub-batch */
            CU_CHECK(cudaStreamSynchronize(ctx->stream));
            s0 = s1;
        }
    }

cleanup:
    if (ctx && st != ANN_OK)
        (void)cudaStreamSynchronize(ctx->stream);
    cu_free(d_q);
    cu_free(d_dots);
    cu_free(d_dist);
    cu_free(d_probes);
    cu_free(d_lim);
    cu_free(d_off);
    cu_free(d_tot);
    cu_free(d_qoff);
    cu_free(d_ids);
    cu_free(d_cscratch);
    cu_free(d_sel);
    cu_free(d_rk);
    cu_free(d_kin);
    cu_free(d_kout);
    cu_free(d_vin);
    cu_free(d_vout);
    cu_free(d_keep);
    cu_free(d_counts);
    cu_free(d_items);
    cu_free(d_samples);
    cu_free(d_sort_tmp);
    if (owned && cache)
        ivf_cache_destroy(&cache->base);
    return st;
}
