/*
 * common.cu - helpers shared by every CUDA operation of annkit-cuda.so:
 * error reports through the host's set_error, the per-thread cuBLAS/stream
 * context, upload with conversion to f32, row norms, the row-major GEMM and
 * the one CUB sort (declarations and contracts in cuda_common.cuh).
 *
 * Source: notes/build.md section 3 (plugin layout; cuBLAS row-major trick
 * "C^T = B^T A^T"; CUB's two-phase temp-storage protocol).
 */
#include <cub/device/device_radix_sort.cuh>

#include <algorithm>
#include <cstring>
#include <mutex>

#include "cuda_common.cuh"

const ann_host_api *g_ann_host = nullptr;

/* "../cuda/bf_cuda.cu" -> "cuda/bf_cuda.cu" (meson passes paths relative to the build dir). */
static const char *short_file(const char *file)
{
    const char *best = file;
    for (const char *p = file; (p = std::strstr(p, "cuda/")) != nullptr; ++p)
        best = p;
    return best;
}

ann_status cu_report(cudaError_t e, const char *call, const char *file, int line)
{
    (void)cudaGetLastError(); /* clear a non-sticky error so later calls can work */
    const int n = (int)std::strcspn(call, "(");
    return g_ann_host->set_error(ANN_ERR_CUDA, "%.*s failed: %s (%s:%d)", n, call, cudaGetErrorString(e),
                                 short_file(file), line);
}

ann_status cu_report_alloc(cudaError_t e, size_t bytes, const char *file, int line)
{
    (void)cudaGetLastError();
    return g_ann_host->set_error(ANN_ERR_CUDA, "cudaMalloc(%zu bytes) failed: %s (%s:%d)", bytes,
                                 cudaGetErrorString(e), short_file(file), line);
}

ann_status cu_report_blas(cublasStatus_t s, const char *call, const char *file, int line)
{
    const int n = (int)std::strcspn(call, "(");
    return g_ann_host->set_error(ANN_ERR_CUDA, "%.*s failed: %s (%s:%d)", n, call, cublasGetStatusString(s),
                                 short_file(file), line);
}

/* ------------------------------ context ------------------------------ */

static thread_local CuCtx *t_ctx = nullptr;

ann_status cu_ctx_get(CuCtx **out)
{
    ann_status st = ANN_OK;
    CuCtx *c = t_ctx;
    size_t free_b = 0, total_b = 0;
    if (c) {
        *out = c;
        return ANN_OK;
    }
    c = new (std::nothrow) CuCtx();
    if (!c)
        return CU_FAIL(ANN_ERR_NOMEM, "out of host memory for a CUDA context");
    c->blas = nullptr;
    c->stream = nullptr;
    CU_CHECK(cudaGetDevice(&c->device));
    CU_CHECK(cudaDeviceGetAttribute(&c->sm_count, cudaDevAttrMultiProcessorCount, c->device));
    CU_CHECK(cudaMemGetInfo(&free_b, &total_b));
    c->free_mem = free_b;
    CU_CHECK(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    CUBLAS_CHECK(cublasCreate(&c->blas));
    CUBLAS_CHECK(cublasSetStream(c->blas, c->stream));
    /* FP32 arithmetic (the default math mode never uses TF32 for Sgemm) */
    CUBLAS_CHECK(cublasSetMathMode(c->blas, CUBLAS_DEFAULT_MATH));
    t_ctx = c;
    *out = c;
    return ANN_OK;
cleanup:
    if (c->blas)
        cublasDestroy(c->blas);
    if (c->stream)
        cudaStreamDestroy(c->stream);
    delete c;
    return st;
}

size_t cu_workspace_budget(const CuCtx *ctx)
{
    size_t b = (size_t)1 << 30;
    if (ctx->free_mem / 4 < b)
        b = ctx->free_mem / 4;
    if (b < ((size_t)64 << 20))
        b = (size_t)64 << 20;
    return b;
}

static std::mutex g_cache_mutex;

void cu_cache_lock()
{
    g_cache_mutex.lock();
}

void cu_cache_unlock()
{
    g_cache_mutex.unlock();
}

/* ----------------------------- conversion ---------------------------- */

/*
 * convert_to_f32: dst[i] = to_f32(src[i]) for i < n.
 * Launch: 1-D grid-stride, any shape (256 threads, <= 65535 blocks).
 * Layout: src and dst contiguous arrays of n elements.
 */
template <typename T>
__global__ void convert_to_f32(const T *__restrict__ src, int64_t n, float *__restrict__ dst)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        dst[i] = to_f32(src[i]);
}

static int grid_for(int64_t n, int threads)
{
    int64_t b = cu_div_up(n, threads);
    return (int)(b < 1 ? 1 : b > 65535 ? 65535 : b);
}

ann_status cu_upload_f32(CuCtx *ctx, const void *host, int64_t rows, int64_t dim, int64_t stride, ann_dtype t,
                         float *dst)
{
    ann_status st = ANN_OK;
    void *stage = nullptr;
    const size_t es = cu_dtype_size(t);
    const size_t row_bytes = (size_t)dim * es;
    int64_t chunk = 0;
    if (rows <= 0 || dim <= 0)
        return ANN_OK;
    if (t == ANN_DTYPE_F32) {
        CU_CHECK(cudaMemcpy2DAsync(dst, row_bytes, host, (size_t)stride, row_bytes, (size_t)rows,
                                   cudaMemcpyHostToDevice, ctx->stream));
        return ANN_OK;
    }
    chunk = (int64_t)(((size_t)64 << 20) / (row_bytes ? row_bytes : 1));
    if (chunk < 1)
        chunk = 1;
    if (chunk > rows)
        chunk = rows;
    CU_MALLOC(&stage, (size_t)chunk * row_bytes);
    for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
        const int64_t m = cu_min64(chunk, rows - r0);
        const int64_t n = m * dim;
        CU_CHECK(cudaMemcpy2DAsync(stage, row_bytes, (const char *)host + r0 * stride, (size_t)stride, row_bytes,
                                   (size_t)m, cudaMemcpyHostToDevice, ctx->stream));
        switch (t) {
        case ANN_DTYPE_F16:
            convert_to_f32<__half><<<grid_for(n, 256), 256, 0, ctx->stream>>>((const __half *)stage, n,
                                                                              dst + r0 * dim);
            break;
        case ANN_DTYPE_I8:
            convert_to_f32<int8_t><<<grid_for(n, 256), 256, 0, ctx->stream>>>((const int8_t *)stage, n,
                                                                              dst + r0 * dim);
            break;
        default:
            convert_to_f32<uint8_t><<<grid_for(n, 256), 256, 0, ctx->stream>>>((const uint8_t *)stage, n,
                                                                               dst + r0 * dim);
            break;
        }
        CU_LAUNCHED("convert_to_f32");
    }
    /* the staging buffer is reused by the next chunk only after the stream reaches it */
    CU_CHECK(cudaStreamSynchronize(ctx->stream));
cleanup:
    cu_free(stage);
    return st;
}

/*
 * row_norms_kernel: out[r] = sum_j x[r][j]^2 (double accumulation, summed
 * in j order by one thread, as the CPU does), or its square root.
 * Launch: 1-D, one thread per row, any block size.
 * Layout: x contiguous row-major rows x dim of T.
 */
template <typename T>
__global__ void row_norms_kernel(const T *__restrict__ x, int64_t rows, int64_t dim, bool sqrt_norm,
                                 float *__restrict__ out)
{
    const int64_t r = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (r >= rows)
        return;
    const T *p = x + r * dim;
    double s = 0;
    for (int64_t j = 0; j < dim; ++j) {
        const double v = (double)to_f32(p[j]);
        s += v * v;
    }
    out[r] = (float)(sqrt_norm ? sqrt(s) : s);
}

ann_status cu_row_norms(CuCtx *ctx, const void *x, ann_dtype t, int64_t rows, int64_t dim, bool sqrt_norm,
                        float *out)
{
    ann_status st = ANN_OK;
    const int threads = 128;
    const unsigned blocks = (unsigned)cu_max64(1, cu_div_up(rows, threads));
    if (rows <= 0)
        return ANN_OK;
    switch (t) {
    case ANN_DTYPE_F32:
        row_norms_kernel<float><<<blocks, threads, 0, ctx->stream>>>((const float *)x, rows, dim, sqrt_norm, out);
        break;
    case ANN_DTYPE_F16:
        row_norms_kernel<__half><<<blocks, threads, 0, ctx->stream>>>((const __half *)x, rows, dim, sqrt_norm, out);
        break;
    case ANN_DTYPE_I8:
        row_norms_kernel<int8_t><<<blocks, threads, 0, ctx->stream>>>((const int8_t *)x, rows, dim, sqrt_norm, out);
        break;
    default:
        row_norms_kernel<uint8_t><<<blocks, threads, 0, ctx->stream>>>((const uint8_t *)x, rows, dim, sqrt_norm,
                                                                       out);
        break;
    }
    CU_LAUNCHED("row_norms_kernel");
cleanup:
    return st;
}

/* -------------------------------- GEMM ------------------------------- */

ann_status cu_gemm_abt(CuCtx *ctx, int64_t m, int64_t n, int64_t kd, const float *a, const float *b, float *c,
                       int64_t ldc)
{
    ann_status st = ANN_OK;
    const float one = 1.0f, zero = 0.0f;
    if (m <= 0 || n <= 0)
        return ANN_OK;
    if (m > INT32_MAX || n > INT32_MAX || kd > INT32_MAX || ldc > INT32_MAX)
        return CU_FAIL(ANN_ERR_INTERNAL, "GEMM of %lld x %lld x %lld is too large for cuBLAS int sizes",
                       (long long)m, (long long)n, (long long)kd);
    /*
     * Row-major C[m][ldc] is column-major C^T (n x m, ld ldc).  C^T = B . A^T
     * where, column-major, B (row-major n x kd) is kd x n with ld kd, taken
     * transposed, and A (row-major m x kd) is kd x m with ld kd.
     */
    CUBLAS_CHECK(cublasSgemm(ctx->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)n, (int)m, (int)kd, &one, b, (int)kd, a,
                             (int)kd, &zero, c, (int)ldc));
cleanup:
    return st;
}

/* -------------------------------- sort ------------------------------- */

ann_status cu_sort_pairs_u32(CuCtx *ctx, int64_t n, int end_bit, const uint32_t *keys_in, uint32_t *keys_out,
                             const uint32_t *vals_in, uint32_t *vals_out, void **temp, size_t *temp_cap)
{
    ann_status st = ANN_OK;
    size_t need = 0;
    if (n <= 0)
        return ANN_OK;
    if (n > INT32_MAX)
        return CU_FAIL(ANN_ERR_INTERNAL, "sort of %lld pairs is too large", (long long)n);
    CU_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, need, keys_in, keys_out, vals_in, vals_out, (int)n, 0,
                                             end_bit, ctx->stream));
    if (need > *temp_cap) {
        cu_free(*temp);
        *temp = nullptr;
        *temp_cap = 0;
        CU_MALLOC(temp, need);
        *temp_cap = need;
    }
    CU_CHECK(cub::DeviceRadixSort::SortPairs(*temp, need, keys_in, keys_out, vals_in, vals_out, (int)n, 0, end_bit,
                                             ctx->stream));
cleanup:
    return st;
}

bool cu_id_ranks(const int64_t *ids, int64_t n, std::vector<uint32_t> *rank_of_row,
                 std::vector<uint32_t> *row_of_rank, std::vector<int64_t> *id_of_rank)
{
    rank_of_row->resize((size_t)n);
    bool identity = true;
    std::vector<uint8_t> seen((size_t)n, 0);
    for (int64_t r = 0; r < n && identity; ++r) {
        const int64_t id = ids[r];
        if (id < 0 || id >= n || seen[(size_t)id])
            identity = false;
        else
            seen[(size_t)id] = 1;
    }
    std::vector<uint32_t> local;
    std::vector<uint32_t> &inv = row_of_rank ? *row_of_rank : local;
    inv.resize((size_t)n);
    if (identity) {
        for (int64_t r = 0; r < n; ++r) {
            (*rank_of_row)[(size_t)r] = (uint32_t)ids[r];
            inv[(size_t)ids[r]] = (uint32_t)r;
        }
        return true;
    }
    for (int64_t r = 0; r < n; ++r)
        inv[(size_t)r] = (uint32_t)r;
    std::stable_sort(inv.begin(), inv.end(), [ids](uint32_t a, uint32_t b) { return ids[a] < ids[b]; });
    id_of_rank->resize((size_t)n);
    for (int64_t r = 0; r < n; ++r) {
        (*rank_of_row)[inv[(size_t)r]] = (uint32_t)r;
        (*id_of_rank)[(size_t)r] = ids[inv[(size_t)r]];
    }
    return false;
}
