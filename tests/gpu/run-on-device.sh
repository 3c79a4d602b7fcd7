#!/usr/bin/env bash
# run-on-device.sh - run the compiled CPU-vs-CUDA consistency test and the GPU
# benchmark on a machine with a GPU.  Builds nothing.
#
#   tests/gpu/run-on-device.sh LIBDIR [BUILDDIR]
#
# LIBDIR   directory of shared libraries the binaries need there (libcublas.so.13,
#          libcublasLt.so.13, HDF5, OpenBLAS, ...), prepended to LD_LIBRARY_PATH.
# BUILDDIR the meson build directory holding tests/test_consistency,
#          tests/bench_gpu and cuda/annkit-cuda.so (default: build).
# Logs go to $OUT (when set, e.g. on the lent device machine) or to BUILDDIR.
# The consistency test includes the NN-Descent graphs (CPU builds of 20000
# rows: about a minute on 16 cores) and the CAGRA searches (indexes built on
# the CPU, each setting searched on both backends: well under a minute); the
# benchmark's NN-Descent part builds 1M-row graphs on CUDA and 100k-row ones
# on both backends, and its CAGRA part builds a 1M-row index (NN-Descent on
# CUDA, optimize on the CPU) and sweeps itopk / search_width on both
# backends (a few minutes).  Environment passes through:
# ANNKIT_GPU_TEST_ONLY=search|nnd|cagra|ivf_pq (ivf_pq: CPU-vs-CUDA IVF-PQ
# graphs of 20000 rows, seconds), ANNKIT_BENCH_ONLY=search|nnd|cagra,
# e.g. ANNKIT_GPU_TEST_ONLY=cagra ANNKIT_BENCH_ONLY=cagra for CAGRA alone.
# Exit status: that of the consistency test (0 pass, 1 fail, 77 skipped),
# or 2 for a usage error or missing binaries; a failing benchmark makes it 1.
set -u
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 LIBDIR [BUILDDIR]" >&2
    exit 2
fi
libdir=$(cd "$1" && pwd) || { echo "$0: '$1': no such directory" >&2; exit 2; }
build=${2:-build}
for f in "$build/tests/test_consistency" "$build/tests/bench_gpu" "$build/cuda/annkit-cuda.so"; do
    if [ ! -e "$f" ]; then
        echo "$0: '$f' not found (build with CUDA first)" >&2
        exit 2
    fi
done
logdir=${OUT:-$build}
export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export ANNKIT_CUDA_PLUGIN
ANNKIT_CUDA_PLUGIN=$(cd "$build/cuda" && pwd)/annkit-cuda.so

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
echo "== plugin dependencies"
ldd "$ANNKIT_CUDA_PLUGIN" | grep -E 'not found|cublas|cudart' || true

echo "== consistency test"
start=$(date +%s)
"$build/tests/test_consistency" 2>&1 | tee "$logdir/consistency.log"
rc=${PIPESTATUS[0]}
echo "== consistency test: exit $rc ($(( $(date +%s) - start )) s)"

echo "== benchmark"
start=$(date +%s)
"$build/tests/bench_gpu" 2>&1 | tee "$logdir/bench_gpu.log"
brc=${PIPESTATUS[0]}
echo "== benchmark: exit $brc ($(( $(date +%s) - start )) s)"
if [ "$rc" -eq 0 ] && [ "$brc" -ne 0 ] && [ "$brc" -ne 77 ]; then
    rc=1
fi
exit "$rc"
