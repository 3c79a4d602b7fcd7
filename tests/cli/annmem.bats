#!/usr/bin/env bats
# annmem: the command-line contract, the documentation's worked examples,
# number parsing, --json/--tsv, capacity, and --measure against real
# annbuild runs.  The tools are in $ANNKIT_BIN_DIR.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

setup_file() {
    export BIN="${ANNKIT_BIN_DIR:?ANNKIT_BIN_DIR must name the directory of the tools}"
    export DATA="$BATS_FILE_TMPDIR"
    # 40000 x 64 seeded uniform vectors, made with awk and annconvert only
    awk 'BEGIN { srand(7); for (i = 0; i < 40000; i++) { l = "";
         for (j = 0; j < 64; j++) l = l (j ? " " : "") sprintf("%.3f", rand()); print l } }' \
        > "$DATA/base.txt"
    "$BIN/annconvert" -f "$DATA/base.txt" "$DATA/base.fbin"
}

setup() {
    cd "$BATS_TEST_TMPDIR" || return 1
    PATH="$BIN:$PATH"
}

# Value of the jq path $1 in the JSON on stdin (python3 when jq is missing).
jget() {
    if command -v jq > /dev/null; then
        jq -r "$1"
    elif command -v python3 > /dev/null; then
        python3 -c 'import json, sys
d = json.load(sys.stdin)
for k in sys.argv[1].lstrip(".").replace("[", ".").replace("]", "").split("."):
    d = d[int(k)] if k.isdigit() else d[k]
print("null" if d is None else str(d).lower() if isinstance(d, bool) else d)' "$1"
    else
        skip "neither jq nor python3 to read JSON"
    fi
}

# bytes of term $2 in the JSON $1
term_bytes() {
    if command -v jq > /dev/null; then
        printf '%s' "$1" | jq -r "[.terms[] | select(.name == \"$2\") | .bytes][0]"
    elif command -v python3 > /dev/null; then
        printf '%s' "$1" | python3 -c 'import json, sys
t = [t["bytes"] for t in json.load(sys.stdin)["terms"] if t["name"] == sys.argv[1]]
print(t[0] if t else "null")' "$2"
    else
        skip "neither jq nor python3 to read JSON"
    fi
}

# ---------------------------------------------------------------- contract

@test "annmem --help prints the usage to stdout and exits 0" {
    run annmem --help
    assert_success
    assert_line --partial "Usage: annmem MODEL [OPTIONS]"
    assert_output --partial "--measure"
}

@test "annmem -V prints the versions" {
    run annmem -V
    assert_success
    assert_line --index 0 --partial "annmem (annkit)"
}

@test "usage errors exit 2 with a hint" {
    for args in "" "bogus --rows 1 --dim 2" "cagra --rows 1e6" "cagra --rows 12x --dim 3" \
                "cagra --dim 3 --rows 1 extra" "cagra --dim 4 --rows 5 --json --tsv" \
                "cagra --dim 8 --rows 10 --headroom 2" "cagra --dim 8 --rows 10 --bogus" \
                "cagra --dim 8" "cagra --dim 8 --rows 10 -- true" "--measure" \
                "cagra --dim 8 --rows 10 --build-algo auto" "cagra --dim 8 --rows 10 --phase scan" \
                "cagra --dim 8 --rows 10 --free -1" "nn_descent --dim 8 --rows 10 --return-distances maybe"; do
        run annmem $args
        [ "$status" -eq 2 ] || { echo "args '$args': status $status: $output"; return 1; }
        [[ "$output" == *"Try 'annmem --help'."* ]] || { echo "args '$args': $output"; return 1; }
        [[ "$output" == annmem:* ]] || { echo "args '$args': $output"; return 1; }
    done
}

@test "a phase that a model does not cover exits 3" {
    run annmem nn_descent --rows 100 --dim 8 --phase search
    assert_failure 3
    assert_output --partial "NN-Descent does not search"
    run annmem ivf_flat --rows 100 --dim 8 --phase search
    assert_failure 3
}

# ------------------------------------------------- the documentation's examples

@test "cagra: the worked examples of seeds/cagra.md" {
    run annmem cagra --rows 1e6 --dim 1024 --graph-degree 64 --intermediate-graph-degree 128 \
        --n-lists 1024 --train-set-ratio 10 --batch 1024 --free-host 1TiB
    assert_success
    assert_line --regexp '^  dataset_size +device +4096000000 +3906\.25 '
    assert_line --regexp '^  graph_size +host +256000000 +244\.14 '
    assert_line --regexp '^  IVFPQ_build_peak +device +414194304 +395\.01 '
    assert_line --regexp '^  IVFPQ_search_peak +device +5242880 +5\.00 '
    assert_line --regexp '^  optimize_peak +device +644000000 +614\.17 '
    assert_line --regexp '^\* build_peak_ivf_pq +device +4740000000 +4520\.42 '
    run annmem cagra --phase search --rows 1e6 --dim 1024 --graph-degree 64 --batch 100 -k 10 --free-host 1TiB
    assert_success
    assert_line --regexp '^  query_size +device +409600 +0\.39 '
    assert_line --regexp '^  result_size +device +8000 +0\.0076 '
    assert_line --regexp '^  workspace_size +device +417600 +0\.40 '
    assert_line --regexp '^\* search_memory +device +4352417600 +4150\.79 '
}

@test "nn_descent: the worked examples of seeds/nn-descent.md (the formula wins)" {
    run annmem nn_descent --rows 1e6 --dim 128 --graph-degree 64 --intermediate-graph-degree 128 \
        --dist-comp-dtype fp16 --input device --free-host 1TiB
    assert_success
    assert_line --regexp '^  graph_size +host +256000000 +244\.14 '
    assert_line --regexp '^  distances_size +device +256000000 +244\.14 '
    assert_line --regexp '^  index_size +total +512000000 +488\.28 '
    assert_line --regexp '^  compute_dataset_size +device +256000000 +244\.14 '
    assert_line --regexp '^  device_workspace_size +device +276000000 +263\.21 '
    assert_line --regexp '^\* device_build_peak +device +1304000000 +1243\.59 '
    # the example prints 2212.52 MiB, without the R*N*G*4 term of its formula
    assert_line --regexp '^\* host_workspace_size +host +2576000000 +2456\.67 '
    assert_output --partial "E_G=96 E_I=192"
}

@test "ivf_pq: the terms of annkit's IVF-PQ graph build, its preset resolved" {
    # 5000 x 40 f32, G = 16, 2 threads (the hand-computed case of tests/unit/test_memory.c)
    run annmem ivf_pq --rows 5000 --dim 40 --graph-degree 16 --threads 2 --free-host 1GiB
    assert_success
    assert_output --partial "model: ivf_pq, phase build"
    assert_output --partial "n_lists=2 pq_dim=32 pq_bits=4 pq_len=2 rot_dim=64 chunks=16"
    assert_output --partial "candidates=32"
    assert_line --regexp '^  input_size +host +800000 +0\.76 +N\*D\*B$'
    assert_line --regexp '^  codes_size +host +80385 +0\.08 '
    assert_line --regexp '^  rotation_size +host +10240 '
    assert_line --regexp '^  codebook_train_size +host +1734176 '
    assert_line --regexp '^\* build_peak +host +3219160 +3\.07 '
    out=$(annmem ivf_pq --rows 5000 --dim 40 --graph-degree 16 --threads 2 --free-host 1GiB --json)
    [ "$(printf '%s' "$out" | jget .model)" = ivf_pq ]
    [ "$(term_bytes "$out" build_peak)" = 3219160 ]
    [ "$(printf '%s' "$out" | jget .host.peak_term)" = build_peak ]
    [ "$(printf '%s' "$out" | jget .host.h)" = 0.2 ]
    [ "$(printf '%s' "$out" | jget .derived.n_lists)" = 2 ]
    [ "$(printf '%s' "$out" | jget .inputs.refine_ratio)" = 2 ]
    for t in graph_size distances_size centers_size pq_centers_size list_offsets_size list_ids_size \
             index_size train_size kmeans_fit_size rotation_scratch_size encode_size search_scratch_size; do
        [ "$(term_bytes "$out" "$t")" != null ] || { echo "missing $t"; return 1; }
    done
    # the options that change memory
    a=$(annmem ivf_pq --rows 5000 --dim 40 --threads 2 --json --pq-dim 8 --pq-bits 8 --n-lists 10 \
        --refine-ratio 4 --return-distances false)
    [ "$(printf '%s' "$a" | jget .derived.candidates)" = 256 ]
    [ "$(printf '%s' "$a" | jget .derived.chunks)" = 8 ]
    [ "$(term_bytes "$a" distances_size)" = 0 ]
    [ "$(term_bytes "$a" pq_centers_size)" = $((8 * 5 * 256 * 4)) ]
    run annmem ivf_pq --rows 5000 --dim 40 --pq-bits 3
    assert_failure 2
    run annmem ivf_pq --rows 5000 --dim 40 --metric l1
    assert_failure 3
}

@test "nn_descent: annkit's CPU terms are the host peak on the CPU, the docs' on CUDA" {
    out=$(annmem nn_descent --rows 60000 --dim 784 --threads 2 --free-host 1TiB --json)
    [ "$(printf '%s' "$out" | jget .host.peak_term)" = cpu_build_peak ]
    # f32 rows padded to 784 floats, the intermediate graph of 128 ids, distances and flags
    [ "$(term_bytes "$out" cpu_rows_size)" = $((60000 * 784 * 4)) ]
    [ "$(term_bytes "$out" cpu_knn_size)" = $((60000 * 128 * 9)) ]
    [ "$(printf '%s' "$out" | jget .inputs.build)" = cpu ]
    out=$(annmem nn_descent --device cuda --rows 60000 --dim 784 --free-host 1TiB --json)
    [ "$(printf '%s' "$out" | jget .host.peak_term)" = host_build_peak ]
    [ "$(term_bytes "$out" cpu_rows_size)" = null ]
}

# ---------------------------------------------------------------- numbers

@test "numbers accept 1e6, 10M and 64GiB" {
    a=$(annmem brute_force --rows 1e6 --dim 8 --free 64GiB --json)
    b=$(annmem brute_force --rows 1000000 --dim 8 --free 68719476736 --json)
    [ "$a" = "$b" ]
    [ "$(printf '%s' "$a" | jget .inputs.N)" = 1000000 ]
    [ "$(printf '%s' "$a" | jget .host.m_free)" = 68719476736 ]
    c=$(annmem cagra --rows 10M --dim 96 --free 512MiB --free-host 1GiB --json)
    [ "$(printf '%s' "$c" | jget .inputs.N)" = 10000000 ]
    [ "$(printf '%s' "$c" | jget .device.m_free)" = 536870912 ]
    [ "$(printf '%s' "$c" | jget .host.m_free)" = 1073741824 ]
    run annmem cagra --rows 1.5e3 --dim 8 --free-host 1GiB
    assert_success
    assert_output --partial "N=1500 "
    run annmem cagra --rows 1.5 --dim 8
    assert_failure 2
}

# ---------------------------------------------------------------- output

@test "--json is one parseable object with every term" {
    # the docs' cuVS build: --device cuda (on the CPU, cagra's IVF-PQ build has annkit's terms)
    run annmem cagra --device cuda --rows 1e6 --dim 1024 --free 80GiB --free-host 512GiB --json
    assert_success
    [ "${#lines[@]}" -eq 1 ]
    [ "$(printf '%s' "$output" | jget .model)" = cagra ]
    [ "$(term_bytes "$output" dataset_size)" = 4096000000 ]
    [ "$(term_bytes "$output" build_peak_ivf_pq)" = 4740000000 ]
    [ "$(printf '%s' "$output" | jget .device.peak_term)" = build_peak_ivf_pq ]
    [ "$(printf '%s' "$output" | jget .device.h)" = 0.2 ]
    # M_usable = (80 GiB - 0) * 0.8; N_max = floor(M_usable / 4740)
    [ "$(printf '%s' "$output" | jget .device.m_usable)" = 68719476736 ]
    [ "$(printf '%s' "$output" | jget .device.n_max)" = $((68719476736 / 4740)) ]
    for t in IVFPQ_build_peak IVFPQ_search_peak NND_device_peak NND_host_peak D_iter G_tmp Q_tile \
             R_tile H_iter W_iter optimize_peak iterative_device_peak iterative_host_peak \
             build_peak_nn_descent query_size result_size workspace_size search_memory; do
        [ "$(term_bytes "$output" "$t")" != null ] || { echo "missing $t"; return 1; }
    done
}

@test "--tsv has a header and one row per term" {
    run annmem nn_descent --rows 1e6 --dim 128 --tsv --free 16GiB --free-host 64GiB
    assert_success
    assert_line --index 0 "$(printf 'kind\tname\tspace\tvalue\tMiB\tpeak\tformula')"
    assert_line "$(printf 'term\tdevice_workspace_size\tdevice\t276000000\t263.21\t0\tN*S*S_idx + N*S*4 + N*4 + 2*N*8')"
    assert_line --regexp "$(printf '^answer\tN_max\t(device|host)\t[0-9]+\t')"
}

# ---------------------------------------------------------------- capacity

@test "capacity: M_usable, N_max and the smaller space as the answer" {
    # nn_descent: device 1304 B/vector (input on device), host 2576 B/vector
    out=$(annmem nn_descent --rows 1000 --dim 128 --input device --free 1000000000 --other 100000000 \
          --free-host 10000000000 --headroom 0.25 --json)
    [ "$(printf '%s' "$out" | jget .device.m_usable)" = 675000000 ]
    [ "$(printf '%s' "$out" | jget .device.n_max)" = $((675000000 / 1304)) ]
    [ "$(printf '%s' "$out" | jget .host.n_max)" = $((7500000000 / 2576)) ]
    [ "$(printf '%s' "$out" | jget .n_max)" = $((675000000 / 1304)) ]
    [ "$(printf '%s' "$out" | jget .limited_by)" = device ]
}

@test "capacity: without --rows the terms are shown at N = N_max" {
    out=$(annmem ivf_flat --dim 64 --n-lists 64 --threads 2 --free 1GiB --json)
    n=$(printf '%s' "$out" | jget .n_max)
    [ "$n" -gt 1000000 ]
    [ "$(printf '%s' "$out" | jget .inputs.N)" = "$n" ]
    [ "$(printf '%s' "$out" | jget .host.fits)" = true ]
    # one more vector does not fit
    out=$(annmem ivf_flat --dim 64 --n-lists 64 --threads 2 --free 1GiB --rows $((n + 1)) --json)
    [ "$(printf '%s' "$out" | jget .host.fits)" = false ]
}

@test "capacity: --observed-peak gives H_measured, used as H" {
    # brute_force build of 1000 x 10 f32, sqeuclidean: 2 * 40000 + 4000 = 84000 B
    out=$(annmem brute_force --rows 1000 --dim 10 --observed-peak 105000 --free 1GiB --json)
    [ "$(printf '%s' "$out" | jget .host.h_measured)" = 0.25 ]
    [ "$(printf '%s' "$out" | jget .host.h)" = 0.25 ]
    out=$(annmem brute_force --rows 1000 --dim 10 --observed-peak 105000 --headroom 0.5 --free 1GiB --json)
    [ "$(printf '%s' "$out" | jget .host.h)" = 0.5 ]
}

@test "ace: npartitions is derived from the free memory" {
    out=$(annmem ace --rows 1e6 --dim 128 --free 200000000 --headroom 0 --free-host 1TiB --json)
    [ "$(printf '%s' "$out" | jget .inputs.npartitions)" = 16 ]
    [ "$(term_bytes "$out" partition_size_max)" -le 200000000 ]
}

# ---------------------------------------------------------------- --measure

@test "--measure: annbuild brute_force beside the model" {
    run annmem --json --measure -- annbuild --algo brute_force --threads 2 "$DATA/base.fbin" -o bf.idx -f
    assert_success
    [ -f bf.idx ]
    [ "$(printf '%s' "$output" | jget .model)" = brute_force ]
    [ "$(printf '%s' "$output" | jget .inputs.N)" = 40000 ]
    [ "$(printf '%s' "$output" | jget .inputs.D)" = 64 ]
    [ "$(printf '%s' "$output" | jget .measured.exit_status)" = 0 ]
    [ "$(printf '%s' "$output" | jget .measured.device)" = "not measured" ]
    peak=$(printf '%s' "$output" | jget .measured.host_peak)
    est=$(printf '%s' "$output" | jget .measured.host_estimate)
    # input + data + norms = 2 * 40000 * 64 * 4 + 4 * 40000
    [ "$est" -eq 20640000 ]
    # the process needs what the model counts, plus its own libraries (some MiB)
    [ "$peak" -ge "$est" ]
    [ "$peak" -le $((est + 64 * 1048576)) ]
    h=$(printf '%s' "$output" | jget .measured.h_measured)
    awk -v h="$h" 'BEGIN { exit !(h >= 0 && h < 4) }'
}

@test "--measure: annbuild ivf_flat, its parameters and --rows A:B" {
    run annmem --measure -- annbuild --algo ivf_flat --n-lists 32 --kmeans-n-iters 5 --threads 2 \
        --rows 5000:35000 "$DATA/base.fbin" -o ivf.idx -f
    assert_success
    assert_output --partial "model: ivf_flat, phase build"
    assert_output --partial "N=30000 D=64 B=4 (f32)"
    assert_output --partial "n_lists=32"
    assert_line --regexp '^  host peak: +measured [0-9]+ B .*ru_maxrss\), estimate [0-9]+ B .*build_peak\)$'
    assert_line --regexp '^  H_measured: +[0-9.-]+$'
}

@test "--measure: anngraph --algo ivf_pq and nn_descent pick their models from the command line" {
    run annmem --json --measure -- anngraph --algo ivf_pq --graph-degree 16 --pq-bits 8 --threads 2 \
        "$DATA/base.fbin" -o pq.knn -f
    assert_success
    [ -f pq.knn ]
    [ "$(printf '%s' "$output" | jget .model)" = ivf_pq ]
    [ "$(printf '%s' "$output" | jget .inputs.N)" = 40000 ]
    [ "$(printf '%s' "$output" | jget .inputs.G)" = 16 ]
    [ "$(printf '%s' "$output" | jget .inputs.pq_bits)" = 8 ]
    peak=$(printf '%s' "$output" | jget .measured.host_peak)
    est=$(printf '%s' "$output" | jget .measured.host_estimate)
    # the model counts the allocations; the process adds its libraries (some MiB)
    [ "$peak" -ge $((est * 9 / 10)) ] || { echo "peak $peak est $est"; return 1; }
    [ "$peak" -le $((est + 64 * 1048576)) ] || { echo "peak $peak est $est"; return 1; }
    run annmem --json --measure -- anngraph --graph-degree 16 --intermediate-graph-degree 32 --threads 2 \
        "$DATA/base.fbin" -o nnd.knn -f
    assert_success
    [ "$(printf '%s' "$output" | jget .model)" = nn_descent ]
    [ "$(printf '%s' "$output" | jget .host.peak_term)" = cpu_build_peak ]
    peak=$(printf '%s' "$output" | jget .measured.host_peak)
    est=$(printf '%s' "$output" | jget .measured.host_estimate)
    [ "$peak" -ge $((est * 8 / 10)) ] || { echo "peak $peak est $est"; return 1; }
    [ "$peak" -le $((est + 64 * 1048576)) ] || { echo "peak $peak est $est"; return 1; }
}

@test "--measure: the command's stdout does not mix into the report" {
    run annmem brute_force --rows 10 --dim 4 --json --measure -- sh -c 'echo noise; exit 0'
    assert_success
    [ "$(printf '%s' "$output" | grep -c '^{')" -eq 1 ]
    annmem brute_force --rows 10 --dim 4 --json --measure -- sh -c 'echo noise' 2> /dev/null | jget .model
}

@test "--measure: failures" {
    run annmem brute_force --rows 10 --dim 4 --measure -- sh -c 'exit 5'
    assert_failure 1
    assert_output --partial "exited with status 5"
    run annmem brute_force --rows 10 --dim 4 --measure -- /nonexistent/annbuild
    assert_failure 1
    assert_output --partial "cannot run"
    run annmem --measure -- sh -c true
    assert_failure 2
    assert_output --partial "give MODEL"
    run annmem --measure -- annbuild --algo ivf_pq "$DATA/base.fbin" -o x -f
    assert_failure 3
    run annmem --measure -- annbuild --algo brute_force "$DATA/missing.fbin" -o x -f
    assert_failure 1
    assert_output --partial "missing.fbin"
}
