#!/usr/bin/env bash
# bench/run.sh - build annkit if needed, make Fashion-MNIST if missing, run the
# Fashion-MNIST benchmark (bench/bench_fashion_mnist.py). Installs nothing unless
# --venv is given. See bench/README.md.
set -euo pipefail

prog=run.sh
usage() {
    cat <<EOF
usage: bench/$prog [OPTIONS] [-- BENCH-OPTIONS...]

Build annkit if needed, make datasets/out/fashion-mnist-784-euclidean.hdf5 if it is
missing, and run bench/bench_fashion_mnist.py (annkit vs FAISS, k = 10, 2 threads).

  --peers LIST       comma list of annkit, faiss, hnswlib (default annkit,faiss)
  --hnswlib          add hnswlib (HNSW M=16, ef_construction=200) as a context peer
  --no-annkit        FAISS (and hnswlib) only; needs no annkit build
  --build-dir DIR    meson build directory (default: build); tools in DIR/tools
  --no-build         do not run meson/ninja; the tools must already exist
  --quick            1 run, n_probes 1,4,8,16,32, search mode auto only (smoke test)
  --verify           run datasets/verify_fashion_mnist.py on the dataset first
  --python PY        interpreter for the benchmark (default /usr/bin/python3, with
                     Debian's python3-faiss, python3-hnswlib, python3-h5py, python3-numpy)
  --venv DIR         use DIR/bin/python; when DIR does not exist, create it and
                     pip install faiss-cpu hnswlib h5py numpy (network needed once)
  -h, --help         this help

Everything after -- goes to bench_fashion_mnist.py (e.g. -- --n-lists 2048 --runs 5).
Environment: ANNKIT_BIN (tools directory; overrides --build-dir and skips the build).
Results: bench/out/fashion-mnist.jsonl and the table on stdout.
EOF
}

die()  { printf '%s: %s\n' "$prog" "$*" >&2; exit 1; }
udie() { printf '%s: %s\nTry %s --help.\n' "$prog" "$*" "$prog" >&2; exit 2; }
note() { printf '%s: %s\n' "$prog" "$*" >&2; }

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
peers=annkit,faiss
build_dir=build
do_build=1
quick=0
verify=0
python=/usr/bin/python3
venv=''
bench_args=()
while [ $# -gt 0 ]; do
    case $1 in
        --peers) [ $# -ge 2 ] || udie "option '$1' needs a value"; peers=$2; shift ;;
        --hnswlib) peers=$peers,hnswlib ;;
        --no-annkit) peers=$(printf '%s' "$peers" | tr ',' '\n' | { grep -vx annkit || true; } | paste -sd, -) ;;
        --build-dir) [ $# -ge 2 ] || udie "option '$1' needs a value"; build_dir=$2; shift ;;
        --no-build) do_build=0 ;;
        --quick) quick=1 ;;
        --verify) verify=1 ;;
        --python) [ $# -ge 2 ] || udie "option '$1' needs a value"; python=$2; shift ;;
        --venv) [ $# -ge 2 ] || udie "option '$1' needs a value"; venv=$2; shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; bench_args=("$@"); break ;;
        *) udie "unknown argument '$1'" ;;
    esac
    shift
done
[ -n "$peers" ] || udie "no peers left to run"
case ",$peers," in *,annkit,*) want_annkit=1 ;; *) want_annkit=0 ;; esac

cd "$root"
case $build_dir in /*) ;; *) build_dir=$root/$build_dir ;; esac

# ---- annkit tools
if [ -n "${ANNKIT_BIN:-}" ]; then
    bin=$ANNKIT_BIN
else
    bin=$build_dir/tools
    if [ "$do_build" -eq 1 ]; then
        if ! command -v meson >/dev/null || ! command -v ninja >/dev/null; then
            die "meson and ninja are needed to build annkit (or pass --no-build / set ANNKIT_BIN)"
        fi
        if [ ! -f "$build_dir/build.ninja" ]; then
            note "+ meson setup $build_dir"
            meson setup "$build_dir" >&2 || die "meson setup failed"
        fi
        note "+ ninja -C $build_dir"
        ninja -C "$build_dir" >&2 || die "the annkit build failed (--no-build runs the tools already built)"
    fi
fi
export ANNKIT_BIN=$bin
data=$root/datasets/out/fashion-mnist-784-euclidean.hdf5

# ---- dataset (always made with annkit's own tools)
if [ ! -e "$data" ]; then
    for t in annconvert annbuild annsearch; do
        [ -x "$bin/$t" ] || die "'$data' is missing and '$bin/$t' is not built; build annkit first"
    done
    note "+ datasets/fashion-mnist.sh"
    "$root/datasets/fashion-mnist.sh" >&2 || die "making the dataset failed"
fi
if [ "$verify" -eq 1 ]; then
    /usr/bin/python3 "$root/datasets/verify_fashion_mnist.py" "$data" || die "the dataset does not verify"
fi
if [ "$want_annkit" -eq 1 ]; then
    for t in annbuild annsearch; do
        [ -x "$bin/$t" ] || die "'$bin/$t' not found; build annkit, set ANNKIT_BIN, or run with --no-annkit"
    done
fi

# ---- interpreter
if [ -n "$venv" ]; then
    if [ ! -x "$venv/bin/python" ]; then
        note "creating venv '$venv' (pip install faiss-cpu hnswlib h5py numpy)"
        /usr/bin/python3 -m venv "$venv" || die "cannot create venv '$venv'"
        "$venv/bin/python" -m pip install --quiet faiss-cpu hnswlib h5py numpy \
            || die "pip install into '$venv' failed"
    fi
    python=$venv/bin/python
fi
"$python" -c 'import h5py, numpy' 2>/dev/null \
    || die "'$python' cannot import h5py and numpy (apt install python3-h5py python3-numpy)"

# ---- benchmark
args=(--data "$data" --annkit-bin "$bin" --peers "$peers")
if [ "$quick" -eq 1 ]; then
    args+=(--runs 1 --n-probes "1,4,8,16,32" --search-modes auto --hnsw-ef "16,32,64,128")
fi
note "+ $python bench/bench_fashion_mnist.py ${args[*]} ${bench_args[*]+${bench_args[*]}}"
exec "$python" "$root/bench/bench_fashion_mnist.py" "${args[@]}" ${bench_args[@]+"${bench_args[@]}"}
