#!/usr/bin/env bash
# datasets/synthetic.sh - a seeded synthetic scale set in the ann-benchmarks
# HDF5 layout, made with annsynth and annkit's tools:
#
#   annsynth makes ROWS + QUERIES rows in one stream (same cluster centers),
#   annconvert --rows splits them into train (first ROWS) and test (last QUERIES),
#   annbuild --algo brute_force --metric euclidean + annsearch -k 100 add the exact
#   neighbors (int32) and Euclidean distances (float32); attribute distance = 'euclidean'.
#
# Default: 1,000,000 x 128 train + 10,000 queries, 1000 clusters, sigma 0.15, seed 42
# -> datasets/out/synth-1m-128-euclidean.hdf5 (+ .txt with the parameters and SHA-256).
set -euo pipefail

prog=synthetic.sh
usage() {
    cat <<EOF
usage: datasets/$prog [-f] [--rows N] [--queries Q] [--dim D] [--clusters C]
                      [--sigma S] [--seed S] [--dtype f32|u8] [--k K] [--threads N] [-o OUT]

Make a seeded synthetic dataset (clustered Gaussian, see annsynth --help) in the
ann-benchmarks HDF5 layout, with exact ground truth from annkit's brute force.

  --rows N       train rows (default 1000000)
  --queries Q    test rows (default 10000)
  --dim D        dimension (default 128)
  --clusters C   cluster centers (default 1000)
  --sigma S      noise standard deviation; centers are uniform in [0,1)^D (default 0.15)
  --seed S       seed (default 42)
  --dtype T      f32 (default) or u8 (stored as uint8 in train/test)
  --k K          ground-truth neighbours per query (default 100)
  --threads N    threads for annbuild/annsearch (default: the tools' default)
  -o OUT         output (default: datasets/out/synth-<rows>-<dim>[-params]-euclidean.hdf5)
  -f, --force    rebuild even when OUT exists
  -h, --help     this help

Environment:
  ANNKIT_BIN   directory of annconvert, annbuild, annsearch (default: <repo>/build/tools)
  ANNSYNTH     the annsynth executable (default: \$ANNKIT_BIN/../datasets/annsynth; when it
               is missing, datasets/synth.c is compiled with cc into a temporary directory)
EOF
}

die()  { printf '%s: %s\n' "$prog" "$*" >&2; exit 1; }
udie() { printf '%s: %s\nTry %s --help.\n' "$prog" "$*" "$prog" >&2; exit 2; }
note() { printf '%s: %s\n' "$prog" "$*" >&2; }

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rows=1000000 queries=10000 dim=128 clusters=1000 sigma=0.15 seed=42 dtype=f32 k=100
force=0 out='' threads=()
is_uint() { case $1 in ''|*[!0-9]*) return 1 ;; *) return 0 ;; esac; }
while [ $# -gt 0 ]; do
    case $1 in
        -f|--force) force=1; shift; continue ;;
        -h|--help) usage; exit 0 ;;
        --rows|--queries|--dim|--clusters|--sigma|--seed|--dtype|--k|--threads|-o|--output)
            [ $# -ge 2 ] || udie "option '$1' needs a value" ;;
        *) udie "unknown argument '$1'" ;;
    esac
    case $1 in
        --rows) rows=$2 ;;
        --queries) queries=$2 ;;
        --dim) dim=$2 ;;
        --clusters) clusters=$2 ;;
        --sigma) sigma=$2 ;;
        --seed) seed=$2 ;;
        --dtype) dtype=$2 ;;
        --k) k=$2 ;;
        --threads) is_uint "$2" || udie "--threads: '$2' is not a positive integer"; threads=(--threads "$2") ;;
        -o|--output) out=$2 ;;
    esac
    shift 2
done
for v in rows queries dim clusters k; do
    { is_uint "${!v}" && [ "${!v}" -gt 0 ]; } || udie "--$v: '${!v}' is not a positive integer"
done
is_uint "$seed" || udie "--seed: '$seed' is not a non-negative integer"
case $dtype in f32|u8) ;; *) udie "--dtype: '$dtype' is not f32 or u8" ;; esac
[ "$k" -le "$rows" ] || udie "--k ($k) is larger than --rows ($rows)"

human() {   # 1000000 -> 1m, 100000 -> 100k
    local n=$1
    if [ $((n % 1000000)) -eq 0 ]; then echo "$((n / 1000000))m"
    elif [ $((n % 1000)) -eq 0 ]; then echo "$((n / 1000))k"
    else echo "$n"; fi
}
if [ -z "$out" ]; then
    name="synth-$(human "$rows")-$dim"
    [ "$queries" = 10000 ] || name+="-q$(human "$queries")"
    [ "$clusters" = 1000 ] || name+="-c$clusters"
    [ "$sigma" = 0.15 ] || name+="-sigma$sigma"
    [ "$seed" = 42 ] || name+="-seed$seed"
    [ "$dtype" = f32 ] || name+="-$dtype"
    [ "$k" = 100 ] || name+="-k$k"
    out=$root/datasets/out/$name-euclidean.hdf5
fi

if [ -e "$out" ] && [ "$force" -eq 0 ]; then
    note "'$out' exists; nothing to do (use -f to rebuild)"
    exit 0
fi

bin=${ANNKIT_BIN:-$root/build/tools}
for t in annconvert annbuild annsearch; do
    [ -x "$bin/$t" ] || die "'$bin/$t' not found or not executable; build annkit (meson setup build && ninja -C build) or set ANNKIT_BIN"
done

outdir=$(dirname "$out")
mkdir -p "$outdir"
tmp=$(mktemp -d "$outdir/.synthetic.XXXXXX")
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

synth=${ANNSYNTH:-$bin/../datasets/annsynth}
if [ ! -x "$synth" ]; then
    cc=${CC:-cc}
    command -v "$cc" >/dev/null 2>&1 || die "no annsynth at '$synth' and no C compiler to build it"
    note "no annsynth at '$synth'; compiling datasets/synth.c"
    "$cc" -std=gnu11 -O2 -ffp-contract=off -o "$tmp/annsynth" "$root/datasets/synth.c" -lm \
        || die "cannot compile datasets/synth.c"
    synth=$tmp/annsynth
fi

run() {
    note "+ $*"
    "$@" || die "step failed (exit $?): $*"
}

start=$SECONDS
ext=fbin; [ "$dtype" = u8 ] && ext=u8bin
all=$tmp/all.$ext
h5=$tmp/data.hdf5
total=$((rows + queries))
run "$synth" --rows "$total" --dim "$dim" --clusters "$clusters" --sigma "$sigma" \
    --seed "$seed" --dtype "$dtype" "$all"
run "$bin/annconvert" --rows "0:$rows" "$all" "$h5:train"
run "$bin/annconvert" --rows "$rows:$total" "$all" "$h5:test"
rm -f "$all"
run "$bin/annbuild" --algo brute_force --metric euclidean ${threads[@]+"${threads[@]}"} \
    "$h5:train" -o "$tmp/train.bf"
run "$bin/annsearch" ${threads[@]+"${threads[@]}"} "$tmp/train.bf" "$h5:test" -k "$k" -o "$h5"
rm -f "$tmp/train.bf"

sum=$(sha256sum "$h5" | cut -d' ' -f1)
{
    echo "made by datasets/synthetic.sh"
    echo "annsynth --rows $total --dim $dim --clusters $clusters --sigma $sigma --seed $seed --dtype $dtype"
    echo "train = rows 0:$rows, test = rows $rows:$total, ground truth k = $k (annkit brute force, euclidean)"
    echo "sha256 $sum"
} >"$tmp/params.txt"
mv -f "$h5" "$out"
mv -f "$tmp/params.txt" "${out%.hdf5}.txt"
note "wrote '$out' in $((SECONDS - start)) s (sha256 $sum)"
