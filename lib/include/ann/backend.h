/*
 * ann/backend.h - which backends exist and which one runs.
 *
 * The CPU backend is always present.  The CUDA backend is a plugin
 * (annkit-cuda.so) loaded with dlopen() the first time a GPU is wanted,
 * and only when the driver (libcuda.so.1) loads; so CPU-only runs never
 * pay for cuBLAS and the tools start on hosts with no CUDA libraries.
 * The plugin is looked up in $ANNKIT_CUDA_PLUGIN, next to the executable,
 * in ../cuda/ of the executable (the build tree) and in the install libdir.
 */
#ifndef ANN_BACKEND_H_a7e3c1
#define ANN_BACKEND_H_a7e3c1

#include "ann/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/** What ann_backend_probe() reports about CUDA. */
typedef struct ann_backend_report {
    bool cuda_compiled;      /**< this build has a CUDA plugin */
    bool cuda_loaded;        /**< the plugin was found and loaded */
    int cuda_devices;        /**< devices found (0 when not loaded) */
    char cuda_detail[256];   /**< why not, or the device name and memory */
    char cpu_detail[128];    /**< OpenMP threads, BLAS, SIMD level */
} ann_backend_report;

/**
 * Probe the backends.  Loads the CUDA plugin when @p load_cuda (this costs
 * about 0.1 s: cuBLAS loads), else reports only what is compiled in.
 * Never fails; the reasons go to the detail strings.  Not thread-safe
 * against a concurrent first load.
 */
void ann_backend_probe(bool load_cuda, ann_backend_report *r);

/**
 * Resolve @p want for one operation: CPU stays CPU; CUDA loads the plugin
 * and needs a device, else ANN_ERR_BACKEND_UNAVAILABLE with the reason;
 * AUTO gives CUDA when that would succeed, else CPU.  Writes the choice
 * to @p got.
 */
ann_status ann_backend_resolve(ann_device want, ann_device *got);

#ifdef __cplusplus
}
#endif
#endif
