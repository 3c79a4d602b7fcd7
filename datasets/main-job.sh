#!/usr/bin/env bash
# datasets/main-job.sh - the main job of README.md: make Fashion-MNIST in the
# ann-benchmarks layout (datasets/fashion-mnist.sh), then build and search a
# brute-force index (recall@10 must be 1.000) and an IVF-Flat index (recall@10
# >= 0.95 at the larger n_probes), printing recall and QPS per setting.
# Environment: ANNKIT_BIN (default build/tools), THREADS (default: all cores).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${ANNKIT_BIN:-$root/build/tools}
out=$root/datasets/out
fm=$out/fashion-mnist-784-euclidean.hdf5
threads=()
[ -n "${THREADS:-}" ] && threads=(--threads "$THREADS")

"$root/datasets/fashion-mnist.sh" "${threads[@]}"

echo "== brute force (exact): recall@10 should be 1.000"
"$bin/annbuild" -f --algo brute_force "${threads[@]}" "$fm:train" -o "$out/fm.bf"
"$bin/annsearch" "${threads[@]}" "$out/fm.bf" "$fm:test" -k 10 --truth "$fm:neighbors"

echo "== IVF-Flat, n_lists 1024: recall@10 >= 0.95 from n_probes 12 up"
"$bin/annbuild" -f --algo ivf_flat --n-lists 1024 "${threads[@]}" "$fm:train" -o "$out/fm.ivf"
"$bin/annsearch" "${threads[@]}" "$out/fm.ivf" "$fm:test" -k 10 --truth "$fm:neighbors" \
    --n-probes 4,8,12,16,32
