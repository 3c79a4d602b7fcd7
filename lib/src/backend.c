/*
 * backend.c - backend registry and run-time selection (DESIGN.md "Backends").
 *
 * The CPU table is built in.  The CUDA table comes from the plugin
 * annkit-cuda.so, dlopen()ed on first need, and only after the cheap
 * check that the NVIDIA driver (libcuda.so.1) loads: without a driver
 * there is no GPU, and cuBLAS (about 0.1 s to load) is never touched.
 */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ann/backend.h"
#include "ann_config.h"
#include "backend_ops.h"
#include "cagra_internal.h"
#include "cpu_ops.h"
#include "ivf_pq_internal.h"
#include "nnd_cpu.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static int cpu_device_count(char *msg, size_t len)
{
    if (len)
        msg[0] = '\0';
    return 1;
}

static void cpu_describe(char *buf, size_t len)
{
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    snprintf(buf, len, "cpu: %d OpenMP threads, OpenBLAS sgemm, %s", threads,
             __builtin_cpu_supports("avx512f") ? "AVX-512" : __builtin_cpu_supports("avx2") ? "AVX2" : "SSE");
}

static bool cpu_supports(ann_op op, ann_dtype dtype, ann_metric metric)
{
    if (metric == ANN_METRIC_HAMMING) /* bitwise hamming: u8/i8 graphs and exact search */
        return (op == ANN_OP_NN_DESCENT || op == ANN_OP_BF_SEARCH) && (dtype == ANN_DTYPE_U8 || dtype == ANN_DTYPE_I8);
    if (op == ANN_OP_IVF_PQ_SEARCH) /* the metrics of ivf_pq_cpu.c */
        return metric != ANN_METRIC_L1;
    return true;
}

static ann_status cpu_nn_descent(const ann_nn_descent_params *p, const ann_matrix *data, int n_threads,
                                 uint64_t seed, uint32_t *ids, float *dist)
{
    ann_exec ex;
    ann_exec_init(&ex);
    ex.device = ANN_DEVICE_CPU;
    ex.n_threads = n_threads;
    ex.seed = seed;
    return ann_cpu_nn_descent(p, data, &ex, ids, dist);
}

static const ann_backend_ops cpu_table = {
    .abi = ANN_BACKEND_ABI,
    .name = "cpu",
    .device_count = cpu_device_count,
    .describe = cpu_describe,
    .supports = cpu_supports,
    .bf_search = ann_cpu_bf_search,
    .ivf_flat_search = ann_cpu_ivf_flat_search,
    .kmeans_fit = ann_cpu_kmeans_fit,
    .kmeans_predict = ann_cpu_kmeans_predict,
    .cache_free = NULL,
    .nn_descent = cpu_nn_descent,
    .cagra_search = ann_cpu_cagra_search,
    .ivf_pq_search = ann_ivf_pq_cpu_candidates,
};

const ann_backend_ops *ann_cpu_ops(void)
{
    return &cpu_table;
}

/* ------------------------------ CUDA -------------------------------- */

static pthread_once_t cuda_once = PTHREAD_ONCE_INIT;
static const ann_backend_ops *cuda_table;
static int cuda_devices;
static char cuda_reason[256] = "not compiled in (built with -Dcuda=disabled or without nvcc)";

static const ann_host_api host_api = {ANN_BACKEND_ABI, ann_set_error};

/* Try one plugin path; on success set cuda_table. */
static bool try_plugin(const char *path, char *why, size_t why_len)
{
    if (access(path, R_OK) != 0)
        return false;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(why, why_len, "cannot load CUDA plugin %s: %s", path, dlerror());
        return false;
    }
    ann_cuda_ops_fn fn;
    *(void **)&fn = dlsym(h, "annkit_cuda_ops");
    const ann_backend_ops *ops = fn ? fn(&host_api) : NULL;
    if (!ops || ops->abi != ANN_BACKEND_ABI) {
        snprintf(why, why_len, "CUDA plugin %s is not compatible with this annkit (ABI %d)", path,
                 ops ? ops->abi : -1);
        dlclose(h);
        return false;
    }
    cuda_table = ops;
    return true;
}

static void cuda_load(void)
{
    if (!ANN_HAVE_CUDA && !getenv("ANNKIT_CUDA_PLUGIN"))
        return;
    void *drv = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!drv) {
        snprintf(cuda_reason, sizeof cuda_reason, "no NVIDIA driver (libcuda.so.1 not found), so no GPU");
        return;
    }
    char why[256] = "";
    const char *env = getenv("ANNKIT_CUDA_PLUGIN");
    bool ok = false;
    if (env && *env) {
        ok = try_plugin(env, why, sizeof why);
        if (!ok && !why[0])
            snprintf(why, sizeof why, "ANNKIT_CUDA_PLUGIN=%s: no such file", env);
    } else {
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n > 0) {
            exe[n] = '\0';
            char *slash = strrchr(exe, '/');
            if (slash)
                *slash = '\0';
            char path[PATH_MAX + 64];
            const char *rel[] = {"/annkit-cuda.so", "/../cuda/annkit-cuda.so", "/../../cuda/annkit-cuda.so"};
            for (size_t i = 0; i < 3 && !ok; i++) {
                snprintf(path, sizeof path, "%s%s", exe, rel[i]);
                ok = try_plugin(path, why, sizeof why);
            }
        }
        if (!ok)
            ok = try_plugin(ANN_PLUGIN_DIR "/annkit-cuda.so", why, sizeof why);
        if (!ok && !why[0])
            snprintf(why, sizeof why, "CUDA plugin annkit-cuda.so not found (set ANNKIT_CUDA_PLUGIN)");
    }
    if (!ok) {
        snprintf(cuda_reason, sizeof cuda_reason, "%s", why);
        return;
    }
    char msg[200] = "";
    cuda_devices = cuda_table->device_count(msg, sizeof msg);
    if (cuda_devices <= 0) {
        cuda_devices = 0;
        snprintf(cuda_reason, sizeof cuda_reason, "no usable GPU: %s", msg);
    } else {
        cuda_table->describe(cuda_reason, sizeof cuda_reason);
    }
}

void ann_backend_probe(bool load_cuda, ann_backend_report *r)
{
    memset(r, 0, sizeof *r);
    r->cuda_compiled = ANN_HAVE_CUDA;
    cpu_describe(r->cpu_detail, sizeof r->cpu_detail);
    if (load_cuda) {
        pthread_once(&cuda_once, cuda_load);
        r->cuda_loaded = cuda_table != NULL;
        r->cuda_devices = cuda_devices;
        snprintf(r->cuda_detail, sizeof r->cuda_detail, "%s", cuda_reason);
    } else {
        snprintf(r->cuda_detail, sizeof r->cuda_detail, "%s",
                 ANN_HAVE_CUDA ? "compiled in (plugin not loaded yet)" : cuda_reason);
    }
}

ann_status ann_backend_resolve(ann_device want, ann_device *got)
{
    if (want == ANN_DEVICE_CPU) {
        *got = ANN_DEVICE_CPU;
        return ANN_OK;
    }
    pthread_once(&cuda_once, cuda_load);
    if (cuda_table && cuda_devices > 0) {
        *got = ANN_DEVICE_CUDA;
        return ANN_OK;
    }
    if (want == ANN_DEVICE_CUDA)
        return ann_set_error(ANN_ERR_BACKEND_UNAVAILABLE, "--device cuda: %s", cuda_reason);
    *got = ANN_DEVICE_CPU;
    return ANN_OK;
}

ann_status ann_backend_select(ann_exec *ex, ann_op op, ann_dtype dtype, ann_metric metric,
                              const ann_backend_ops **ops)
{
    ann_device got;
    ann_status st = ann_backend_resolve(ex->device, &got);
    if (st != ANN_OK)
        return st;
    if (got == ANN_DEVICE_CUDA && cuda_table->supports(op, dtype, metric) &&
        (op != ANN_OP_NN_DESCENT || cuda_table->nn_descent) &&
        (op != ANN_OP_CAGRA_SEARCH || cuda_table->cagra_search) &&
        (op != ANN_OP_IVF_PQ_SEARCH || cuda_table->ivf_pq_search)) {
        *ops = cuda_table;
        ex->used = ANN_DEVICE_CUDA;
        return ANN_OK;
    }
    if (ex->device == ANN_DEVICE_CUDA)
        return ann_set_error(ANN_ERR_BACKEND_UNAVAILABLE,
                             "--device cuda: this operation is not supported on CUDA for dtype %s, metric %s",
                             ann_dtype_name(dtype), ann_metric_name(metric));
    if (!cpu_table.supports(op, dtype, metric))
        return ann_set_error(ANN_ERR_UNSUPPORTED, "metric %s is not supported for dtype %s",
                             ann_metric_name(metric), ann_dtype_name(dtype));
    *ops = &cpu_table;
    ex->used = ANN_DEVICE_CPU;
    return ANN_OK;
}
