/*
 * kmeans_cuda.cu - balanced k-means (fit and predict) on CUDA; the twin of
 * lib/src/kmeans_cpu.c, step for step.
 *
 * Algorithm (notes/algorithms.md 0.6, as the CPU backend implements it):
 *  build_clusters(X, c): labels i mod c; centers = means of those groups
 *  (a cluster with no point keeps row j mod n as its center); then
 *  balancing EM (pullback 2, threshold 0.25): before every iteration but
 *  the first, each cluster with at most avg x threshold points is moved
 *  toward a pseudo-random point of a large cluster (size >= avg):
 *  center = (w center + point) / (w + 1), w = min(size, 7); the point is
 *  row (prime x ++counter) mod n, re-drawn until its cluster is large,
 *  with the prime chosen once per fit from the 40 primes by the seed (the
 *  first from seed mod 40 that does not divide n) and the counter shared
 *  by the whole fit; the first and every pullback-th adjustment add one
 *  iteration (at most 3 x iters + 2 in all).  For inner product and cosine
 *  the centers are L2-normalised before every E-step and at the end.
 *  E-step: GEMM (cuBLAS) + argmin of ||c||^2 - 2 x.c (L2 family) or -x.c,
 *  ties to the smaller label.  M-step: rows are sorted by label (CUB,
 *  stable, so each cluster's rows stay in row order) and each cluster's
 *  mean is summed in double in that order, which gives the CPU's centers
 *  bit for bit; empty clusters keep their center.
 *  More than 256 clusters: round(sqrt(c)) mesoclusters by build_clusters,
 *  fine clusters shared out in proportion to mesocluster sizes (the CPU's
 *  rounding and clamping), each mesocluster's rows (at most ceil(2n /
 *  n_meso), in row order) clustered by build_clusters, then one E- and
 *  M-step over all rows and max(n_iters / 10, 2) joint balancing
 *  iterations with pullback 5 and threshold 0.2.
 * The choice of the pull points needs the labels on the host; they are
 * copied back only in iterations where some cluster is small, and the
 * moves themselves run on the device.
 *
 * predict: nearest center by GEMM + argmin with the same keys (for cosine
 * the centers of a fit are unit length, so -x.c ranks like the cosine).
 */
#include <cmath>
#include <cstring>
#include <new>
#include <vector>

#include "cuda_common.cuh"

namespace {

constexpr int32_t kHierMinClusters = 257;
constexpr int64_t kPredictChunk = 1 << 20; /* rows converted and assigned at a time by predict */

const int32_t kPrimes[40] = {29,   71,   113,  173,  229,  281,  349,  409,  463,  541,  601,  659,  733,  809,
                             863,  941,  1013, 1069, 1151, 1223, 1291, 1373, 1451, 1511, 1583, 1657, 1733, 1811,
                             1889, 1987, 2053, 2129, 2213, 2287, 2357, 2423, 2531, 2617, 2687, 2741};

/* A pull of small cluster `l` toward row `i` with weight `wc`. */
struct Pull {
    int32_t l;
    float wc;
    int64_t i;
};

/* ------------------------------ kernels ------------------------------ */

/*
 * km_argmin: labels[r] = argmin_j key(r, j), key = cn[j] - 2 s[r][j] when cn
 * is given (L2 family) else -s[r][j]; NaN keys never win; ties and an
 * all-NaN row give the smallest j (0).
 * Launch: 1-D, one warp per row, blockDim a multiple of 32.
 * Layout: s row-major rows x c (ld c).
 */
__global__ void km_argmin(const float *__restrict__ s, int64_t rows, int c, const float *__restrict__ cn,
                          int32_t *__restrict__ labels)
{
    const int64_t w = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31;
    if (w >= rows)
        return;
    const float *row = s + w * c;
    float bk = __int_as_float(0x7f800000); /* +inf */
    int bj = INT32_MAX;
    for (int j = lane; j < c; j += 32) {
        const float key = cn ? cn[j] - 2.0f * row[j] : -row[j];
        if (key < bk) {
            bk = key;
            bj = j;
        }
    }
    for (int o = 16; o > 0; o >>= 1) {
        const float ok = __shfl_xor_sync(0xffffffffu, bk, o);
        const int oj = __shfl_xor_sync(0xffffffffu, bj, o);
        if (ok < bk || (ok == bk && oj < bj)) {
            bk = ok;
            bj = oj;
        }
    }
    if (lane == 0)
        labels[w] = bj == INT32_MAX ? 0 : bj;
}

/*
 * km_histogram: counts[labels[i]] += 1.
 * Launch: 1-D grid-stride, any shape.  Layout: labels n int32 in [0, c).
 */
__global__ void km_histogram(const int32_t *__restrict__ labels, int64_t n, unsigned *__restrict__ counts)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        atomicAdd(&counts[labels[i]], 1u);
}

/*
 * km_iota: v[i] = i.  Launch: 1-D grid-stride, any shape.
 */
__global__ void km_iota(uint32_t *__restrict__ v, int64_t n)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        v[i] = (uint32_t)i;
}

/*
 * km_means: centers[j] = mean of rows order[seg[j] .. seg[j+1]) of x,
 * summed in double in that order; empty clusters are left alone.
 * Launch: grid (c), block 128 threads over the dims.
 * Layout: x row-major n x d; order = row numbers sorted by label (stable);
 * seg = c + 1 offsets; centers row-major c x d.
 */
__global__ void km_means(const float *__restrict__ x, int64_t d, const uint32_t *__restrict__ order,
                         const int64_t *__restrict__ seg, float *__restrict__ centers)
{
    const int j = blockIdx.x;
    const int64_t p0 = seg[j], p1 = seg[j + 1];
    if (p1 == p0)
        return;
    for (int64_t t = threadIdx.x; t < d; t += blockDim.x) {
        double acc = 0;
        for (int64_t p = p0; p < p1; ++p)
            acc += x[(int64_t)order[p] * d + t];
        centers[(int64_t)j * d + t] = (float)(acc / (double)(p1 - p0));
    }
}

/*
 * km_normalise: scale each row to unit L2 norm (zero rows stay), exactly
 * as the CPU: s summed in double in order, inv = (float)(1 / sqrt(s)).
 * Launch: 1-D, one thread per row.  Layout: c row-major rows x d.
 */
__global__ void km_normalise(float *__restrict__ c, int rows, int64_t d)
{
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= rows)
        return;
    float *r = c + (int64_t)i * d;
    double s = 0;
    for (int64_t j = 0; j < d; ++j)
        s += (double)r[j] * r[j];
    if (s > 0) {
        const float inv = (float)(1.0 / sqrt(s));
        for (int64_t j = 0; j < d; ++j)
            r[j] *= inv;
    }
}

/*
 * km_pull: for each pull (l, wc, i): centers[l] = (wc centers[l] + x[i]) / (wc + 1)
 * in float, as the CPU.  The pulled clusters are distinct.
 * Launch: grid (pulls), block 128 threads over the dims.
 * Layout: x row-major n x d, centers row-major c x d.
 */
__global__ void km_pull(const Pull *__restrict__ pulls, const float *__restrict__ x, int64_t d,
                        float *__restrict__ centers)
{
    const Pull p = pulls[blockIdx.x];
    float *ct = centers + (int64_t)p.l * d;
    const float *xi = x + p.i * d;
    for (int64_t t = threadIdx.x; t < d; t += blockDim.x)
        ct[t] = (p.wc * ct[t] + xi[t]) / (p.wc + 1.0f);
}

/*
 * km_init_labels: labels[i] = i mod c.  Launch: 1-D grid-stride, any shape.
 */
__global__ void km_init_labels(int32_t *__restrict__ labels, int64_t n, int c)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        labels[i] = (int32_t)(i % c);
}

/*
 * km_gather_rows: dst[i] = src[idx[i] mod n_src] for i < m (rows of d floats).
 * Launch: 1-D grid-stride over m x d elements, any shape.
 * Layout: row-major f32 matrices; idx m int64.
 */
__global__ void km_gather_rows(const float *__restrict__ src, int64_t n_src, const int64_t *__restrict__ idx,
                               int64_t m, int64_t d, float *__restrict__ dst)
{
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < m * d; e += (int64_t)gridDim.x * blockDim.x) {
        const int64_t i = e / d, t = e % d;
        const int64_t r = idx ? idx[i] % n_src : i % n_src;
        dst[e] = src[r * d + t];
    }
}

unsigned grid_1d(int64_t work, int threads)
{
    const int64_t b = cu_div_up(work, threads);
    return (unsigned)(b < 1 ? 1 : b > 65535 ? 65535 : b);
}

/* ------------------------------ the fit ------------------------------ */

/* State and workspace of one fit or predict. */
struct Km {
    CuCtx *ctx = nullptr;
    bool normalise = false;   /* inner product / cosine */
    int64_t d = 0;
    int32_t prime = 29;
    uint64_t counter = 0;
    int64_t n_max = 0;        /* rows the buffers hold */
    int32_t c_max = 0;        /* clusters the buffers hold */
    int64_t score_rows = 0;   /* rows per GEMM block */
    float *scores = nullptr;  /* score_rows x c_max */
    float *cn = nullptr;      /* c_max */
    int32_t *labels = nullptr;
    uint32_t *lab_sorted = nullptr, *iota = nullptr, *order = nullptr;
    unsigned *hist = nullptr; /* c_max */
    int64_t *seg = nullptr;   /* c_max + 1 */
    Pull *pulls = nullptr;    /* c_max */
    void *sort_tmp = nullptr;
    size_t sort_cap = 0;
    std::vector<int32_t> h_labels;
    std::vector<unsigned> h_hist;
    std::vector<int64_t> h_seg;
    std::vector<Pull> h_pulls;

    ~Km()
    {
        cu_free(scores);
        cu_free(cn);
        cu_free(labels);
        cu_free(lab_sorted);
        cu_free(iota);
        cu_free(order);
        cu_free(hist);
        cu_free(seg);
        cu_free(pulls);
        cu_free(sort_tmp);
    }
};

/* Allocate the workspace for up to n rows and c clusters (fit: with the M-step buffers). */
ann_status km_alloc(Km &k, int64_t n, int32_t c, bool fit)
{
    ann_status st = ANN_OK;
    const size_t budget = cu_workspace_budget(k.ctx);
    k.n_max = n;
    k.c_max = c;
    k.score_rows = cu_max64(1, cu_min64(n, (int64_t)(budget / 2 / ((size_t)c * sizeof(float)))));
    CU_MALLOC(&k.scores, (size_t)k.score_rows * c * sizeof(float));
    CU_MALLOC(&k.cn, (size_t)c * sizeof(float));
    CU_MALLOC(&k.labels, (size_t)n * sizeof(int32_t));
    if (fit) {
        if (n > (int64_t)UINT32_MAX)
            ANN_TRY(CU_FAIL(ANN_ERR_UNSUPPORTED, "k-means on CUDA: %lld training rows is too many", (long long)n));
        CU_MALLOC(&k.lab_sorted, (size_t)n * sizeof(uint32_t));
        CU_MALLOC(&k.iota, (size_t)n * sizeof(uint32_t));
        CU_MALLOC(&k.order, (size_t)n * sizeof(uint32_t));
        CU_MALLOC(&k.hist, (size_t)c * sizeof(unsigned));
        CU_MALLOC(&k.seg, (size_t)(c + 1) * sizeof(int64_t));
        CU_MALLOC(&k.pulls, (size_t)c * sizeof(Pull));
        km_iota<<<grid_1d(n, 256), 256, 0, k.ctx->stream>>>(k.iota, n);
        CU_LAUNCHED("km_iota");
        try {
            k.h_labels.resize((size_t)n);
            k.h_hist.resize((size_t)c);
            k.h_seg.resize((size_t)c + 1);
            k.h_pulls.reserve((size_t)c);
        } catch (...) {
            ANN_TRY(CU_FAIL(ANN_ERR_NOMEM, "k-means: out of host memory for %lld labels", (long long)n));
        }
    }
cleanup:
    return st;
}

/* E-step: labels of the n rows of x (device f32, n x d) against c centers (device). */
ann_status km_assign(Km &k, const float *x, int64_t n, const float *centers, int32_t c, int32_t *labels)
{
    ann_status st = ANN_OK;
    const float *cn = nullptr;
    if (!k.normalise) {
        ANN_TRY(cu_row_norms(k.ctx, centers, ANN_DTYPE_F32, c, k.d, false, k.cn));
        cn = k.cn;
    }
    for (int64_t b = 0; b < n; b += k.score_rows) {
        const int64_t m = cu_min64(k.score_rows, n - b);
        ANN_TRY(cu_gemm_abt(k.ctx, m, c, k.d, x + b * k.d, centers, k.scores, c));
        km_argmin<<<(unsigned)cu_div_up(m * 32, 256), 256, 0, k.ctx->stream>>>(k.scores, m, c, cn, labels + b);
        CU_LAUNCHED("km_argmin");
    }
cleanup:
    return st;
}

/* M-step: centers = means (empty clusters keep theirs); k.h_hist = sizes on the host. */
ann_status km_update(Km &k, const float *x, int64_t n, const int32_t *labels, int32_t c, float *centers)
{
    ann_status st = ANN_OK;
    CU_CHECK(cudaMemsetAsync(k.hist, 0, (size_t)c * sizeof(unsigned), k.ctx->stream));
    km_histogram<<<grid_1d(n, 256), 256, 0, k.ctx->stream>>>(labels, n, k.hist);
    CU_LAUNCHED("km_histogram");
    CU_CHECK(cudaMemcpyAsync(k.h_hist.data(), k.hist, (size_t)c * sizeof(unsigned), cudaMemcpyDeviceToHost,
                             k.ctx->stream));
    CU_CHECK(cudaStreamSynchronize(k.ctx->stream));
    k.h_seg[0] = 0;
    for (int32_t j = 0; j < c; ++j)
        k.h_seg[(size_t)j + 1] = k.h_seg[(size_t)j] + k.h_hist[(size_t)j];
    CU_CHECK(cudaMemcpyAsync(k.seg, k.h_seg.data(), (size_t)(c + 1) * sizeof(int64_t), cudaMemcpyHostToDevice,
                             k.ctx->stream));
    ANN_TRY(cu_sort_pairs_u32(k.ctx, n, cu_bits_for((uint64_t)c), reinterpret_cast<const uint32_t *>(labels),
                              k.lab_sorted, k.iota, k.order, &k.sort_tmp, &k.sort_cap));
    km_means<<<(unsigned)c, 128, 0, k.ctx->stream>>>(x, k.d, k.order, k.seg, centers);
    CU_LAUNCHED("km_means");
    /* h_seg must stay untouched until the copy above ran */
    CU_CHECK(cudaStreamSynchronize(k.ctx->stream));
cleanup:
    return st;
}

/* Pull small clusters toward points of large ones (CPU adjust_centers); *moved = any moved. */
ann_status km_adjust(Km &k, const float *x, int64_t n, const int32_t *labels, int32_t c, float *centers, float thr,
                     bool *moved)
{
    ann_status st = ANN_OK;
    const double avg = (double)n / c;
    bool any_small = false;
    *moved = false;
    for (int32_t l = 0; l < c && !any_small; ++l)
        any_small = (double)k.h_hist[(size_t)l] <= avg * thr;
    if (!any_small)
        return ANN_OK;
    CU_CHECK(cudaMemcpyAsync(k.h_labels.data(), labels, (size_t)n * sizeof(int32_t), cudaMemcpyDeviceToHost,
                             k.ctx->stream));
    CU_CHECK(cudaStreamSynchronize(k.ctx->stream));
    k.h_pulls.clear();
    for (int32_t l = 0; l < c; ++l) {
        const int64_t size = k.h_hist[(size_t)l];
        if ((double)size > avg * thr)
            continue;
        int64_t i = -1;
        for (int64_t tries = 0; tries < n; ++tries) {
            const int64_t cand = (int64_t)(((uint64_t)k.prime * ++k.counter) % (uint64_t)n);
            if ((double)k.h_hist[(size_t)k.h_labels[(size_t)cand]] >= avg) {
                i = cand;
                break;
            }
        }
        if (i < 0)
            continue;
        k.h_pulls.push_back(Pull{l, (float)(size < 7 ? size : 7), i});
    }
    if (k.h_pulls.empty())
        return ANN_OK;
    CU_CHECK(cudaMemcpyAsync(k.pulls, k.h_pulls.data(), k.h_pulls.size() * sizeof(Pull), cudaMemcpyHostToDevice,
                             k.ctx->stream));
    km_pull<<<(unsigned)k.h_pulls.size(), 128, 0, k.ctx->stream>>>(k.pulls, x, k.d, centers);
    CU_LAUNCHED("km_pull");
    CU_CHECK(cudaStreamSynchronize(k.ctx->stream));
    *moved = true;
cleanup:
    return st;
}

ann_status km_normalise_centers(Km &k, float *centers, int32_t c)
{
    ann_status st = ANN_OK;
    km_normalise<<<(unsigned)cu_div_up(c, 128), 128, 0, k.ctx->stream>>>(centers, c, k.d);
    CU_LAUNCHED("km_normalise");
cleanup:
    return st;
}

/* Balancing EM iterations from the current centers (CPU balancing_em). */
ann_status km_balancing_em(Km &k, const float *x, int64_t n, int32_t c, int32_t iters, int pullback, float thr,
                           float *centers)
{
    ann_status st = ANN_OK;
    int adjustments = 0;
    const int32_t max_iters = 3 * iters + 2;
    for (int32_t it = 0; it < iters && it < max_iters; ++it) {
        bool moved = false;
        if (it > 0) {
            ANN_TRY(km_adjust(k, x, n, k.labels, c, centers, thr, &moved));
            if (moved) {
                if (adjustments % pullback == 0)
                    ++iters;
                ++adjustments;
            }
        }
        if (k.normalise)
            ANN_TRY(km_normalise_centers(k, centers, c));
        ANN_TRY(km_assign(k, x, n, centers, c, k.labels));
        ANN_TRY(km_update(k, x, n, k.labels, c, centers));
    }
    if (k.normalise)
        ANN_TRY(km_normalise_centers(k, centers, c));
cleanup:
    return st;
}

/* build_clusters: labels i mod c, centers = their means (else row j mod n), balancing EM (2, 0.25). */
ann_status km_build_clusters(Km &k, const float *x, int64_t n, int32_t c, int32_t iters, float *centers)
{
    ann_status st = ANN_OK;
    km_init_labels<<<grid_1d(n, 256), 256, 0, k.ctx->stream>>>(k.labels, n, c);
    CU_LAUNCHED("km_init_labels");
    km_gather_rows<<<grid_1d((int64_t)c * k.d, 256), 256, 0, k.ctx->stream>>>(x, n, nullptr, c, k.d, centers);
    CU_LAUNCHED("km_gather_rows");
    ANN_TRY(km_update(k, x, n, k.labels, c, centers));
    ANN_TRY(km_balancing_em(k, x, n, c, iters, 2, 0.25f, centers));
cleanup:
    return st;
}

} // namespace

/**
 * CUDA balanced k-means (backend_ops.h kmeans_fit): the CPU's
 * ann_cpu_kmeans_fit() step for step, with E- and M-steps on the device.
 */
ann_status cu_kmeans_fit(const ann_kmeans_params *p, const ann_matrix *train, int n_threads, float *centers)
{
    (void)n_threads;
    ann_status st = ANN_OK;
    Km k;
    const int64_t n = train->rows, d = train->cols;
    const int32_t c = p->n_clusters;
    float *d_x = nullptr, *d_centers = nullptr, *d_sub = nullptr, *d_meso = nullptr;
    int64_t *d_idx = nullptr;
    int32_t n_meso = 0;
    int64_t cap = 0, sub_rows = 0;
    std::vector<int32_t> meso_labels;
    std::vector<int64_t> meso_sizes, idx;

    if (c < 1 || n < c)
        return CU_FAIL(ANN_ERR_INVALID_ARG, "k-means: %lld training rows for %d clusters", (long long)n, (int)c);
    if (!cu_dtype_ok(train->dtype))
        return CU_FAIL(ANN_ERR_UNSUPPORTED, "k-means on CUDA: dtype not supported");
    if (!cu_metric_ok(p->metric))
        return CU_FAIL(ANN_ERR_UNSUPPORTED, "k-means on CUDA: metric %d is not supported", (int)p->metric);
    ANN_TRY(cu_ctx_get(&k.ctx));
    k.normalise = p->metric == ANN_METRIC_INNER_PRODUCT || p->metric == ANN_METRIC_COSINE;
    k.d = d;
    {
        int pi = (int)(p->seed % 40);
        for (int t = 0; t < 40 && n % kPrimes[pi] == 0; ++t)
            pi = (pi + 1) % 40;
        k.prime = kPrimes[pi];
    }
    ANN_TRY(km_alloc(k, n, c, true));
    CU_MALLOC(&d_x, (size_t)n * d * sizeof(float));
    CU_MALLOC(&d_centers, (size_t)c * d * sizeof(float));
    ANN_TRY(cu_upload_f32(k.ctx, train->data, n, d, train->stride, train->dtype, d_x));

    if (c < kHierMinClusters) {
        ANN_TRY(km_build_clusters(k, d_x, n, c, p->n_iters, d_centers));
    } else {
        /* mesoclusters */
        n_meso = (int32_t)std::lround(std::sqrt((double)c));
        cap = (2 * n + n_meso - 1) / n_meso;
        sub_rows = cu_min64(n, cu_max64(cap, c));
        CU_MALLOC(&d_meso, (size_t)n_meso * d * sizeof(float));
        CU_MALLOC(&d_sub, (size_t)sub_rows * d * sizeof(float));
        CU_MALLOC(&d_idx, (size_t)sub_rows * sizeof(int64_t));
        ANN_TRY(km_build_clusters(k, d_x, n, n_meso, p->n_iters, d_meso));
        try {
            meso_labels.resize((size_t)n);
            meso_sizes.assign(k.h_hist.begin(), k.h_hist.begin() + n_meso);
            idx.reserve((size_t)sub_rows);
        } catch (...) {
            ANN_TRY(CU_FAIL(ANN_ERR_NOMEM, "k-means: out of host memory"));
        }
        CU_CHECK(cudaMemcpyAsync(meso_labels.data(), k.labels, (size_t)n * sizeof(int32_t), cudaMemcpyDeviceToHost,
                                 k.ctx->stream));
        CU_CHECK(cudaStreamSynchronize(k.ctx->stream));
        {
            int64_t rem_lists = c, rem_rows = n, done = 0;
            for (int32_t m = 0; m < n_meso; ++m) {
                int64_t nf;
                if (m == n_meso - 1)
                    nf = rem_lists;
                else if (meso_sizes[(size_t)m] == 0)
                    nf = 0;
                else {
                    nf = std::llround((double)rem_lists * meso_sizes[(size_t)m] / (double)rem_rows);
                    if (nf < 1)
                        nf = 1;
                    if (nf > rem_lists - (n_meso - 1 - m) && rem_lists > n_meso - 1 - m)
                        nf = rem_lists - (n_meso - 1 - m) > 0 ? rem_lists - (n_meso - 1 - m) : 0;
                }
                rem_lists -= nf;
                rem_rows -= meso_sizes[(size_t)m];
                if (nf <= 0)
                    continue;
                idx.clear();
                for (int64_t i = 0; i < n && (int64_t)idx.size() < cap; ++i)
                    if (meso_labels[(size_t)i] == m)
                        idx.push_back(i);
                if (idx.empty()) /* an empty mesocluster with lists to place: seed from any rows */
                    for (int64_t i = 0; i < nf && i < n; ++i)
                        idx.push_back((i * 7919) % n);
                const int64_t ni = (int64_t)idx.size();
                CU_CHECK(cudaMemcpyAsync(d_idx, idx.data(), (size_t)ni * sizeof(int64_t), cudaMemcpyHostToDevice,
                                         k.ctx->stream));
                km_gather_rows<<<grid_1d(ni * d, 256), 256, 0, k.ctx->stream>>>(d_x, n, d_idx, ni, d, d_sub);
                CU_LAUNCHED("km_gather_rows");
                ANN_TRY(km_build_clusters(k, d_sub, ni, (int32_t)nf, p->n_iters, d_centers + done * d));
                done += nf;
            }
        }
        /* joint fine-tuning from the concatenated centers */
        ANN_TRY(km_assign(k, d_x, n, d_centers, c, k.labels));
        ANN_TRY(km_update(k, d_x, n, k.labels, c, d_centers));
        ANN_TRY(km_balancing_em(k, d_x, n, c, p->n_iters / 10 > 2 ? p->n_iters / 10 : 2, 5, 0.2f, d_centers));
    }
    CU_CHECK(cudaMemcpyAsync(centers, d_centers, (size_t)c * d * sizeof(float), cudaMemcpyDeviceToHost,
                             k.ctx->stream));
    CU_CHECK(cudaStreamSynchronize(k.ctx->stream));

cleanup:
    if (k.ctx && st != ANN_OK)
        (void)cudaStreamSynchronize(k.ctx->stream);
    cu_free(d_x);
    cu_free(d_centers);
    cu_free(d_sub);
    cu_free(d_meso);
    cu_free(d_idx);
    return st;
}

/**
 * CUDA k-means predict (backend_ops.h kmeans_predict): nearest center of
 * every row by GEMM + argmin, keys as ann_cpu_kmeans_predict().
 */
ann_status cu_kmeans_predict(ann_metric metric, const float *centers, int32_t n_clusters, const ann_matrix *x,
                             int n_threads, int32_t *labels)
{
    (void)n_threads;
    ann_status st = ANN_OK;
    Km k;
    const int64_t n = x->rows, d = x->cols;
    const int64_t chunk = cu_min64(n, kPredictChunk);
    float *d_x = nullptr, *d_centers = nullptr;

    if (n_clusters < 1)
        return CU_FAIL(ANN_ERR_INVALID_ARG, "k-means predict: %d clusters", (int)n_clusters);
    if (!cu_dtype_ok(x->dtype))
        return CU_FAIL(ANN_ERR_UNSUPPORTED, "k-means predict on CUDA: dtype not supported");
    if (!cu_metric_ok(metric))
        return CU_FAIL(ANN_ERR_UNSUPPORTED, "k-means predict on CUDA: metric %d is not supported", (int)metric);
    if (n <= 0)
        return ANN_OK;
    ANN_TRY(cu_ctx_get(&k.ctx));
    k.normalise = metric == ANN_METRIC_INNER_PRODUCT || metric == ANN_METRIC_COSINE;
    k.d = d;
    ANN_TRY(km_alloc(k, chunk, n_clusters, false));
    CU_MALLOC(&d_x, (size_t)chunk * d * sizeof(float));
    CU_MALLOC(&d_centers, (size_t)n_clusters * d * sizeof(float));
    CU_CHECK(cudaMemcpyAsync(d_centers, centers, (size_t)n_clusters * d * sizeof(float), cudaMemcpyHostToDevice,
                             k.ctx->stream));
    for (int64_t b = 0; b < n; b += chunk) {
        const int64_t m = cu_min64(chunk, n - b);
        ANN_TRY(cu_upload_f32(k.ctx, (const char *)x->data + b * x->stride, m, d, x->stride, x->dtype, d_x));
        ANN_TRY(km_assign(k, d_x, m, d_centers, n_clusters, k.labels));
        CU_CHECK(cudaMemcpyAsync(labels + b, k.labels, (size_t)m * sizeof(int32_t), cudaMemcpyDeviceToHost,
                                 k.ctx->stream));
        CU_CHECK(cudaStreamSynchronize(k.ctx->stream));
    }
cleanup:
    if (k.ctx && st != ANN_OK)
        (void)cudaStreamSynchronize(k.ctx->stream);
    cu_free(d_x);
    cu_free(d_centers);
    return st;
}
