/*
 * plugin.cu - the CUDA backend's operation table and the plugin's only
 * exported symbol, annkit_cuda_ops() (lib/src/backend_ops.h).
 *
 * The plugin (annkit-cuda.so: kernels, cuBLAS, CUB; cudart linked
 * statically) is dlopen()ed by the library only when a GPU is wanted and
 * the driver loads (notes/build.md section 3).  It links nothing of the
 * library: errors go through host->set_error, and it never prints.
 * Without a usable GPU, device_count() reports 0 with the reason
 * (cudaErrorInsufficientDriver without a driver, cudaErrorNoDevice with a
 * driver and no GPU; notes/build.md gotcha 6).
 */
#include <cstdio>
#include <cstring>

#include "cuda_common.cuh"

namespace {

int cu_device_count(char *msg, size_t len)
{
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (msg && len)
        msg[0] = '\0';
    if (e != cudaSuccess) {
        if (msg && len)
            std::snprintf(msg, len, "cudaGetDeviceCount: %s (%s)", cudaGetErrorString(e), cudaGetErrorName(e));
        (void)cudaGetLastError();
        return 0;
    }
    if (n <= 0) {
        if (msg && len)
            std::snprintf(msg, len, "no CUDA device");
        return 0;
    }
    return n;
}

void cu_describe(char *buf, size_t len)
{
    char why[160];
    int dev = 0, rt = 0;
    cudaDeviceProp prop;
    if (!buf || !len)
        return;
    const int n = cu_device_count(why, sizeof why);
    if (n <= 0) {
        std::snprintf(buf, len, "cuda: no usable GPU (%s)", why);
        return;
    }
    if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&prop, dev) != cudaSuccess) {
        (void)cudaGetLastError();
        std::snprintf(buf, len, "cuda: %d device(s), properties unavailable", n);
        return;
    }
    (void)cudaRuntimeGetVersion(&rt);
    std::snprintf(buf, len, "cuda: %s (SM %d.%d, %d SMs, %.1f GiB), device %d of %d, CUDA runtime %d.%d", prop.name,
                  prop.major, prop.minor, prop.multiProcessorCount,
                  (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0), dev, n, rt / 1000, (rt % 1000) / 10);
}

bool cu_supports(ann_op op, ann_dtype dtype, ann_metric metric)
{
    switch (op) {
    case ANN_OP_BF_SEARCH:
    case ANN_OP_IVF_FLAT_SEARCH:
    case ANN_OP_KMEANS_FIT:
    case ANN_OP_KMEANS_PREDICT:
        return cu_dtype_ok(dtype) && cu_metric_ok(metric);
    case ANN_OP_NN_DESCENT:
        if (metric == ANN_METRIC_HAMMING) /* bitwise hamming: bytes */
            return dtype == ANN_DTYPE_U8 || dtype == ANN_DTYPE_I8;
        return cu_dtype_ok(dtype) && (cu_metric_ok(metric) || metric == ANN_METRIC_L1);
    case ANN_OP_CAGRA_SEARCH: /* cagra_cuda.cu: the CPU's metrics but hamming */
        return cu_dtype_ok(dtype) && (cu_metric_ok(metric) || metric == ANN_METRIC_L1);
    case ANN_OP_IVF_PQ_SEARCH: /* ivf_pq_cuda.cu: the CPU's metrics (L2 family, inner product, cosine) */
        return cu_dtype_ok(dtype) && cu_metric_ok(metric);
    }
    return false;
}

void cu_cache_free(void *cache)
{
    CuCacheBase *b = static_cast<CuCacheBase *>(cache);
    if (b && b->magic == kCuCacheMagic && b->destroy) {
        b->magic = 0;
        b->destroy(b);
    }
}

const ann_backend_ops kCudaOps = {
    ANN_BACKEND_ABI,
    "cuda",
    cu_device_count,
    cu_describe,
    cu_supports,
    cu_bf_search,
    cu_ivf_flat_search,
    cu_kmeans_fit,
    cu_kmeans_predict,
    cu_cache_free,
    cu_nn_descent,
    cu_cagra_search,
    cu_ivf_pq_search,
};

} // namespace

/**
 * The plugin's entry point: the CUDA operation table, or NULL when @p host
 * is missing or speaks another ABI.  The library calls it once after
 * dlopen(); @p host must stay valid while the plugin is loaded.
 */
extern "C" __attribute__((visibility("default"))) const ann_backend_ops *annkit_cuda_ops(const ann_host_api *host)
{
    if (!host || host->abi != ANN_BACKEND_ABI || !host->set_error)
        return nullptr;
    g_ann_host = host;
    return &kCudaOps;
}
