#!/usr/bin/env bash
# datasets/fashion-mnist.sh - make fashion-mnist-784-euclidean.hdf5 the way
# ann-benchmarks does (notes/formats-and-anchors.md 3.5), with annkit's tools:
#
#   train     = the 60000 images of train-images-idx3-ubyte.gz, float32, 784 dims, file order
#   test      = the 10000 images of t10k-images-idx3-ubyte.gz, float32, 784 dims, file order
#   neighbors = exact top-100 train ids per test row by Euclidean distance
#               (ties by lower id; annkit brute force), int32
#   distances = the matching Euclidean (not squared) distances, float32
#   attribute distance = 'euclidean'
#
# Source: Debian package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist).
# Tools: $ANNKIT_BIN (default: build/tools under the repository root).
# Output: datasets/out/fashion-mnist-784-euclidean.hdf5 (skipped when it exists, unless -f).
set -euo pipefail

prog=fashion-mnist.sh
usage() {
    cat <<EOF
usage: datasets/$prog [-f] [--verify] [-o OUT] [--threads N]

Build fashion-mnist-784-euclidean.hdf5 (ann-benchmarks layout) from Debian's
dataset-fashion-mnist with annconvert, annbuild --algo brute_force and annsearch.

  -f, --force     rebuild even when OUT exists
  --verify        run datasets/verify_fashion_mnist.py on the result
  -o OUT          output path (default: datasets/out/fashion-mnist-784-euclidean.hdf5)
  --threads N     threads for annbuild/annsearch (default: the tools' default)
  -h, --help      this help

Environment:
  ANNKIT_BIN          directory of annconvert, annbuild, annsearch (default: <repo>/build/tools)
  FASHION_MNIST_DIR   directory of the idx files (default: /usr/share/datasets/fashion-mnist)
EOF
}

die()   { printf '%s: %s\n' "$prog" "$*" >&2; exit 1; }
udie()  { printf '%s: %s\nTry %s --help.\n' "$prog" "$*" "$prog" >&2; exit 2; }
note()  { printf '%s: %s\n' "$prog" "$*" >&2; }

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
force=0
verify=0
out=
threads=()
while [ $# -gt 0 ]; do
    case $1 in
        -f|--force) force=1 ;;
        --verify) verify=1 ;;
        -o|--output) [ $# -ge 2 ] || udie "option '$1' needs a value"; out=$2; shift ;;
        --threads) [ $# -ge 2 ] || udie "option '$1' needs a value"
                   case $2 in ''|*[!0-9]*) udie "--threads: '$2' is not a positive integer" ;; esac
                   threads=(--threads "$2"); shift ;;
        -h|--help) usage; exit 0 ;;
        *) udie "unknown argument '$1'" ;;
    esac
    shift
done

bin=${ANNKIT_BIN:-$root/build/tools}
src=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
[ -n "$out" ] || out=$root/datasets/out/fashion-mnist-784-euclidean.hdf5

if [ -e "$out" ] && [ "$force" -eq 0 ]; then
    note "'$out' exists; nothing to do (use -f to rebuild)"
    if [ "$verify" -eq 1 ]; then
        exec /usr/bin/python3 "$root/datasets/verify_fashion_mnist.py" "$out"
    fi
    exit 0
fi

for t in annconvert annbuild annsearch; do
    [ -x "$bin/$t" ] || die "'$bin/$t' not found or not executable; build annkit (meson setup build && ninja -C build) or set ANNKIT_BIN"
done
train_idx=$src/train-images-idx3-ubyte.gz
test_idx=$src/t10k-images-idx3-ubyte.gz
for f in "$train_idx" "$test_idx"; do
    [ -r "$f" ] || die "'$f' not found; install Debian's dataset-fashion-mnist (apt install dataset-fashion-mnist) or set FASHION_MNIST_DIR"
done

outdir=$(dirname "$out")
mkdir -p "$outdir"
# Work in a temporary directory beside the output, so the final mv is a rename.
tmp=$(mktemp -d "$outdir/.fashion-mnist.XXXXXX")
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
h5=$tmp/fashion-mnist-784-euclidean.hdf5

run() {
    note "+ ${*#"$bin/"}"
    "$@" || die "step failed (exit $?): $*"
}

start=$SECONDS
run "$bin/annconvert" --dtype f32 "$train_idx" "$h5:train"
run "$bin/annconvert" --dtype f32 "$test_idx" "$h5:test"
run "$bin/annbuild" --algo brute_force --metric euclidean ${threads[@]+"${threads[@]}"} \
    "$h5:train" -o "$tmp/train.bf"
run "$bin/annsearch" ${threads[@]+"${threads[@]}"} "$tmp/train.bf" "$h5:test" -k 100 -o "$h5"
rm -f "$tmp/train.bf"

mv -f "$h5" "$out"
note "wrote '$out' in $((SECONDS - start)) s"
if command -v sha256sum >/dev/null 2>&1; then
    note "sha256 $(sha256sum "$out" | cut -d' ' -f1)"
fi
if [ "$verify" -eq 1 ]; then
    /usr/bin/python3 "$root/datasets/verify_fashion_mnist.py" "$out"
fi
