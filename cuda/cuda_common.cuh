/*
 * cuda_common.cuh - shared pieces of the CUDA backend plugin annkit-cuda.so.
 *
 * - Check macros: every CUDA runtime, cuBLAS and CUB call goes through one
 *   of them; a failure is reported through the host's set_error (the
 *   plugin links nothing of the library and never prints) as
 *   "cudaMalloc(4096 bytes) failed: out of memory (cuda/bf_cuda.cu:123)"
 *   and the function jumps to its `cleanup:` label, which frees what it
 *   allocated.  Functions that use the macros declare `ann_status st` and
 *   every variable that lives past a check before the first check.
 * - The per-thread context: one cuBLAS handle bound to one non-blocking
 *   stream per host thread (searches on one index may run concurrently).
 * - Element conversions f16/i8/u8 -> f32 (integers are used as is, no
 *   1/256 scaling: notes/algorithms.md 0.2 allows either, and the CPU
 *   backend uses the raw values).
 * - Host helpers every operation uses (defined in common.cu): upload with
 *   conversion to f32, row norms, the row-major "A . B^T" GEMM through
 *   cuBLAS's column-major interface, a CUB radix sort of (u32, u32) pairs,
 *   and the device-cache header.
 *
 * Source: notes/build.md section 3 (the dlopen()ed plugin layout) and its
 * gotchas 6 (no device = cudaErrorInsufficientDriver/NoDevice) and 9
 * (few CUB instantiations).
 */
#ifndef ANNKIT_CUDA_COMMON_CUH
#define ANNKIT_CUDA_COMMON_CUH

#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <vector>

#include <cstddef>
#include <cstdint>

#include "backend_ops.h"

/* ------------------------------------------------------------------ */
/* Error reporting                                                     */
/* ------------------------------------------------------------------ */

/** The host API given to annkit_cuda_ops() (set once, read-only after). */
extern const ann_host_api *g_ann_host;

/** Report a failed CUDA runtime call @p call (its text) at file:line; returns ANN_ERR_CUDA. */
ann_status cu_report(cudaError_t e, const char *call, const char *file, int line);
/** Report a failed cudaMalloc of @p bytes; returns ANN_ERR_CUDA. */
ann_status cu_report_alloc(cudaError_t e, size_t bytes, const char *file, int line);
/** Report a failed cuBLAS call; returns ANN_ERR_CUDA. */
ann_status cu_report_blas(cublasStatus_t s, const char *call, const char *file, int line);
/** Report any other failure with a status and a printf-style message (host set_error). */
#define CU_FAIL(status, ...) (g_ann_host->set_error((status), __VA_ARGS__))

/** Check a CUDA runtime call; on failure set st and goto cleanup. */
#define CU_CHECK(call)                                                       \
    do {                                                                     \
        cudaError_t e_ = (call);                                             \
        if (e_ != cudaSuccess) {                                             \
            st = cu_report(e_, #call, __FILE__, __LINE__);                   \
            goto cleanup;                                                    \
        }                                                                    \
    } while (0)

/** cudaMalloc @p bytes (at least 1) into *@p pp; on failure set st and goto cleanup. */
#define CU_MALLOC(pp, bytes)                                                 \
    do {                                                                     \
        size_t b_ = (size_t)(bytes);                                         \
        cudaError_t e_ = cudaMalloc((void **)(pp), b_ ? b_ : 1);             \
        if (e_ != cudaSuccess) {                                             \
            st = cu_report_alloc(e_, b_, __FILE__, __LINE__);                \
            goto cleanup;                                                    \
        }                                                                    \
    } while (0)

/** Check that the last kernel launch was accepted; @p name is the kernel. */
#define CU_LAUNCHED(name)                                                    \
    do {                                                                     \
        cudaError_t e_ = cudaGetLastError();                                 \
        if (e_ != cudaSuccess) {                                             \
            st = cu_report(e_, "launch of " name, __FILE__, __LINE__);       \
            goto cleanup;                                                    \
        }                                                                    \
    } while (0)

/** Check a cuBLAS call; on failure set st and goto cleanup. */
#define CUBLAS_CHECK(call)                                                   \
    do {                                                                     \
        cublasStatus_t s_ = (call);                                          \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                   \
            st = cu_report_blas(s_, #call, __FILE__, __LINE__);              \
            goto cleanup;                                                    \
        }                                                                    \
    } while (0)

/** Propagate an ann_status from a helper (which already set the message). */
#define ANN_TRY(expr)                                                        \
    do {                                                                     \
        ann_status t_ = (expr);                                              \
        if (t_ != ANN_OK) {                                                  \
            st = t_;                                                         \
            goto cleanup;                                                    \
        }                                                                    \
    } while (0)

/** cudaFree that ignores NULL and errors (cleanup paths). */
static inline void cu_free(void *p)
{
    if (p)
        (void)cudaFree(p);
}

/* ------------------------------------------------------------------ */
/* Per-thread context                                                  */
/* ------------------------------------------------------------------ */

/** One cuBLAS handle on one non-blocking stream, private to a host thread. */
struct CuCtx {
    cublasHandle_t blas;
    cudaStream_t stream;
    int device;
    int sm_count;
    size_t free_mem;   /* device memory free when the context was made */
};

/**
 * The calling thread's context, created on first use (cuBLAS handle,
 * stream).  It lives until the process ends: a thread_local destructor
 * would run after the CUDA runtime may have been torn down.
 */
ann_status cu_ctx_get(CuCtx **out);

/**
 * Workspace budget in bytes for one operation's temporary buffers: 1 GiB,
 * or a quarter of the free device memory when that is less (at least
 * 64 MiB).  Cached data (index copies) are not counted.
 */
size_t cu_workspace_budget(const CuCtx *ctx);

/* ------------------------------------------------------------------ */
/* Device caches                                                       */
/* ------------------------------------------------------------------ */

/** First member of every device cache, so that cache_free can destroy any of them. */
struct CuCacheBase {
    uint32_t magic;                         /* kCuCacheMagic */
    void (*destroy)(CuCacheBase *self);     /* frees device memory and self */
};

constexpr uint32_t kCuCacheMagic = 0x41434348u; /* "ACCH" */

/** Lock serialising creation and replacement of device caches (searches may run concurrently). */
void cu_cache_lock();
/** Unlock, see cu_cache_lock(). */
void cu_cache_unlock();

/**
 * The device cache of an index view: the one in *view->device_cache when it
 * was made by `destroy`'s kind and `matches` the view, else a new one from
 * `build` stored there (an old one of another kind or shape is destroyed).
 * Without a cache slot the new cache is private and *owned tells the
 * caller to destroy it.  Thread-safe (cu_cache_lock).
 */
template <typename Cache, typename View>
ann_status cu_cache_get(CuCtx *ctx, const View *ix, ann_status (*build)(CuCtx *, const View *, Cache **),
                        bool (*matches)(const Cache *, const View *), void (*destroy)(CuCacheBase *),
                        Cache **out, bool *owned)
{
    *owned = false;
    if (!ix->device_cache) {
        *owned = true;
        return build(ctx, ix, out);
    }
    cu_cache_lock();
    CuCacheBase *b = reinterpret_cast<CuCacheBase *>(*ix->device_cache);
    if (b && b->magic == kCuCacheMagic && b->destroy == destroy && matches(reinterpret_cast<Cache *>(b), ix)) {
        *out = reinterpret_cast<Cache *>(b);
        cu_cache_unlock();
        return ANN_OK;
    }
    if (b && b->magic == kCuCacheMagic)
        b->destroy(b);
    *ix->device_cache = nullptr;
    Cache *c = nullptr;
    ann_status st = build(ctx, ix, &c);
    if (st == ANN_OK) {
        *ix->device_cache = c;
        *out = c;
    }
    cu_cache_unlock();
    return st;
}

/* ------------------------------------------------------------------ */
/* Element conversion                                                  */
/* ------------------------------------------------------------------ */

/** Element value as float: f32 as is, f16 converted, i8/u8 as their integer value. */
template <typename T> __device__ __forceinline__ float to_f32(T v);
template <> __device__ __forceinline__ float to_f32<float>(float v) { return v; }
template <> __device__ __forceinline__ float to_f32<__half>(__half v) { return __half2float(v); }
template <> __device__ __forceinline__ float to_f32<int8_t>(int8_t v) { return (float)v; }
template <> __device__ __forceinline__ float to_f32<uint8_t>(uint8_t v) { return (float)v; }

/** True for the vector dtypes the CUDA backend handles (f32, f16, i8, u8). */
static inline bool cu_dtype_ok(ann_dtype t)
{
    return t == ANN_DTYPE_F32 || t == ANN_DTYPE_F16 || t == ANN_DTYPE_I8 || t == ANN_DTYPE_U8;
}

/** Element size of a vector dtype (0 for others). */
static inline size_t cu_dtype_size(ann_dtype t)
{
    switch (t) {
    case ANN_DTYPE_F32: return 4;
    case ANN_DTYPE_F16: return 2;
    case ANN_DTYPE_I8:
    case ANN_DTYPE_U8: return 1;
    default: return 0;
    }
}

/** True for the metrics the CUDA backend handles (L2 family, inner product, cosine). */
static inline bool cu_metric_ok(ann_metric m)
{
    return m == ANN_METRIC_SQEUCLIDEAN || m == ANN_METRIC_EUCLIDEAN || m == ANN_METRIC_INNER_PRODUCT ||
           m == ANN_METRIC_COSINE;
}

/** Metric classes used inside kernels (runtime argument, uniform per launch). */
enum CuMetricKind : int { kMetricL2 = 0, kMetricIP = 1, kMetricCos = 2 };

static inline int cu_metric_kind(ann_metric m)
{
    return m == ANN_METRIC_INNER_PRODUCT ? kMetricIP : m == ANN_METRIC_COSINE ? kMetricCos : kMetricL2;
}

/** The "worst" distance of an empty result slot: +inf, -inf for inner product. */
static inline float cu_worst(ann_metric m)
{
    return m == ANN_METRIC_INNER_PRODUCT ? -__builtin_huge_valf() : __builtin_huge_valf();
}

static inline int64_t cu_div_up(int64_t a, int64_t b) { return (a + b - 1) / b; }
static inline int64_t cu_round_up(int64_t a, int64_t b) { return cu_div_up(a, b) * b; }
static inline int64_t cu_min64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t cu_max64(int64_t a, int64_t b) { return a > b ? a : b; }

/** Smallest power of two >= n (n >= 1). */
static inline int64_t cu_pow2_ceil(int64_t n)
{
    int64_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

/* ------------------------------------------------------------------ */
/* Host helpers (common.cu)                                            */
/* ------------------------------------------------------------------ */

/**
 * Copy @p rows rows of @p dim elements of dtype @p t from host memory
 * (@p host, row stride @p stride bytes) into the contiguous device f32
 * matrix @p dst (rows x dim), converting on the device in chunks through a
 * bounded staging buffer.  Enqueued on ctx->stream; returns when the host
 * memory may be reused.
 */
ann_status cu_upload_f32(CuCtx *ctx, const void *host, int64_t rows, int64_t dim, int64_t stride, ann_dtype t,
                         float *dst);

/**
 * Per-row norms of a contiguous device matrix of dtype @p t (rows x dim):
 * squared L2 norm, or the L2 norm when @p sqrt_norm; accumulated in double,
 * stored as float (the CPU's ann_row_norms()).
 */
ann_status cu_row_norms(CuCtx *ctx, const void *x, ann_dtype t, int64_t rows, int64_t dim, bool sqrt_norm,
                        float *out);

/**
 * Ranks of the @p n source ids @p ids of an IVF index's packed rows, for
 * the device caches of ivf_flat_cuda.cu and ivf_pq_cuda.cu: results are
 * selected by rank (u32) and turned back into ids at the end.  When the
 * ids are exactly 0 .. n-1, each once, rank = id, *id_of_rank stays empty
 * and the function returns true; otherwise ranks follow id order (ties by
 * packed row: std::stable_sort), id_of_rank[rank] holds the id, and it
 * returns false.  rank_of_row gets n entries; row_of_rank, when not NULL,
 * gets the inverse permutation.  Host only; throws std::bad_alloc.
 */
bool cu_id_ranks(const int64_t *ids, int64_t n, std::vector<uint32_t> *rank_of_row,
                 std::vector<uint32_t> *row_of_rank, std::vector<int64_t> *id_of_rank);

/**
 * Row-major C (m x n, leading dimension ldc floats) = A (m x kd) . B^T,
 * B being n x kd; A and B contiguous row-major device matrices.  One
 * cublasSgemm in FP32 (C^T = B . A^T in cuBLAS's column-major view).
 */
ann_status cu_gemm_abt(CuCtx *ctx, int64_t m, int64_t n, int64_t kd, const float *a, const float *b, float *c,
                       int64_t ldc);

/**
 * Stable radix sort of @p n (key, value) u32 pairs by the low @p end_bit
 * bits of the key (CUB DeviceRadixSort::SortPairs, the plugin's one CUB
 * instantiation).  *@p temp / *@p temp_cap is a reusable device scratch
 * buffer, grown as needed; the caller frees it.
 */
ann_status cu_sort_pairs_u32(CuCtx *ctx, int64_t n, int end_bit, const uint32_t *keys_in, uint32_t *keys_out,
                             const uint32_t *vals_in, uint32_t *vals_out, void **temp, size_t *temp_cap);

/** Number of bits needed to represent values 0..v (at least 1). */
static inline int cu_bits_for(uint64_t v)
{
    int b = 1;
    while (b < 64 && (v >> b) != 0)
        b++;
    return b;
}

/* ------------------------------------------------------------------ */
/* Operations (one per .cu file), wired into the table in plugin.cu     */
/* ------------------------------------------------------------------ */

ann_status cu_bf_search(const ann_bf_view *ix, const ann_matrix *q, int64_t k, int n_threads, int64_t *ids,
                        float *dist);
ann_status cu_ivf_flat_search(const ann_ivf_flat_view *ix, const ann_ivf_flat_search_params *p,
                              const ann_matrix *q, int64_t k, int n_threads, int64_t *ids, float *dist);
ann_status cu_kmeans_fit(const ann_kmeans_params *p, const ann_matrix *train, int n_threads, float *centers);
ann_status cu_kmeans_predict(ann_metric metric, const float *centers, int32_t n_clusters, const ann_matrix *x,
                             int n_threads, int32_t *labels);
ann_status cu_nn_descent(const ann_nn_descent_params *p, const ann_matrix *data, int n_threads, uint64_t seed,
                         uint32_t *ids, float *dist);
ann_status cu_cagra_search(const ann_cagra_view *ix, const ann_cagra_search_params *p, const ann_matrix *q,
                           int64_t k, int n_threads, int64_t *ids, float *dist);
ann_status cu_ivf_pq_search(const ann_ivf_pq_view *ix, const ann_matrix *q, int32_t n_probes, int64_t n_cand,
                            int n_threads, int64_t *ids, float *scores);

#endif
