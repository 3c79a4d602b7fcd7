#!/usr/bin/env bats
# anngraph: exact graphs against the independent oracle of gen_data.c,
# NN-Descent and IVF-PQ recall, the shape of every graph (no self, no repeats),
# duplicate vectors, too few rows, repeatable builds, corrupt graph files,
# graph <-> matrix round trips through annconvert, --eval, and the errors
# of the contract.

load common

setup_file() {
    cd "$BATS_FILE_TMPDIR" || return 1
    export PATH="$ANNKIT_BIN_DIR:$PATH"
    # 300 x 8 in 5 clusters; the exact 10 nearest other rows of each row:
    # the oracle's 11 nearest rows less the row itself (all rows distinct).
    "$ANNKIT_GEN_DATA" -n 300 -q 0 -d 8 -c 5 -s 11 small.fbin
    "$ANNKIT_GEN_DATA" knn -k 11 small.fbin small.fbin >knn11.txt
    "$ANNKIT_GEN_DATA" knn -k 11 -D small.fbin small.fbin >knn11_d.txt
    # 3000 x 16 in 5 wide clusters: NN-Descent has work to do here (its
    # initial graph alone has recall about 0.86).
    "$ANNKIT_GEN_DATA" -n 3000 -q 0 -d 16 -c 5 -x 3 -s 7 mid.fbin
    anngraph --graph-degree 16 --intermediate-graph-degree 32 mid.fbin -o mid.knn
}

setup() {
    common_setup
    cp "$BATS_FILE_TMPDIR"/{small.fbin,knn11.txt,knn11_d.txt,mid.fbin,mid.knn} .
}

# Each row of the text graph $1 (row i on line i+1) holds neither i nor a
# repeated id, all ids are below the row count, and every row has $2 ids.
assert_sound_graph() {
    awk -v deg="$2" '
        { if (NF != deg) { print "line " NR ": " NF " ids"; bad = 1 }
          delete seen
          for (j = 1; j <= NF; j++) {
              if ($j == NR - 1) { print "row " NR - 1 " holds itself"; bad = 1 }
              if ($j in seen) { print "row " NR - 1 " repeats " $j; bad = 1 }
              if ($j < 0) { print "row " NR - 1 ": id " $j; bad = 1 }
              seen[$j] = 1; if ($j > max) max = $j
          } }
        END { if (max >= NR) { print "id " max " >= " NR " rows"; bad = 1 }; exit bad }' "$1"
}

# The recall printed by anngraph --eval (text line in $1).
recall_of() {
    printf '%s\n' "$1" | sed -n 's/^recall \([0-9.]*\) .*/\1/p'
}

# True when $1 >= $2 (decimals).
at_least() {
    awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'
}

@test "a brute-force graph holds exactly the nearest other rows, ties by id, with their distances" {
    run --separate-stderr anngraph --algo brute_force --graph-degree 10 small.fbin -o exact.knn
    assert_success
    [ -z "$output" ] && [ -z "$stderr" ] || fail "output: $output, stderr: $stderr"
    annconvert --distances exact_d.txt exact.knn exact.txt
    # The oracle's rows less the row itself, the first 10.
    awk '{ c = 0; line = ""; for (j = 1; j <= NF && c < 10; j++) if ($j != NR - 1) {
        line = line (c ? " " : "") $j; c++ }; print line }' knn11.txt >expect.txt
    same_numbers expect.txt exact.txt
    # Distances (squared L2) as the oracle computes them, in double.
    awk '{ for (j = 2; j <= NF; j++) printf "%s%s", $j, (j < NF ? " " : "\n") }' knn11_d.txt >expect_d.txt
    paste expect_d.txt exact_d.txt | awk '{ n = NF / 2; for (j = 1; j <= n; j++) { a = $j; b = $(j + n);
        e = a - b; if (e < 0) e = -e; if (e > 1e-4 * (a + 1)) { print NR ": " a " vs " b; bad = 1 } } }
        END { exit bad }'
    run annconvert --info exact.knn
    assert_line "kind: graph"
    assert_line "algorithm: brute_force"
    assert_line "rows: 300"
    assert_line "dim: 10"
}

@test "--metric is stored and the distances follow it" {
    anngraph --algo brute_force --graph-degree 5 small.fbin -o sq.knn
    anngraph --algo brute_force --graph-degree 5 --metric euclidean small.fbin -o l2.knn
    run annconvert --info l2.knn
    assert_line "metric: euclidean"
    annconvert --distances sq_d.txt sq.knn sq.txt
    annconvert --distances l2_d.txt l2.knn l2.txt
    same_numbers sq.txt l2.txt
    paste sq_d.txt l2_d.txt | awk '{ for (j = 1; j <= 5; j++) { a = sqrt($j); b = $(j + 5);
        e = a - b; if (e < 0) e = -e; if (e > 1e-4 * (a + 1)) { print NR ": " a " vs " b; bad = 1 } } }
        END { exit bad }'
    # inner_product: larger is better, each row sorted descending.
    anngraph --algo brute_force --graph-degree 5 --metric inner_product small.fbin -o ip.knn
    annconvert --distances ip_d.txt ip.knn ip.txt
    awk '{ for (j = 2; j <= NF; j++) if ($j > $(j - 1)) { print NR ": not descending"; bad = 1 } } END { exit bad }' ip_d.txt
}

@test "NN-Descent reaches recall 0.9 on clustered data, and its iterations improve the initial graph" {
    run --separate-stderr anngraph --eval --sample 0 mid.knn mid.fbin
    assert_success
    r=$(recall_of "$output")
    [[ "$output" == "recall $r (sample 3000 of 3000 rows, degree 16)" ]] || fail "line: $output"
    at_least "$r" 0.9 || fail "recall $r below 0.9"
    anngraph --graph-degree 16 --intermediate-graph-degree 32 --max-iterations 0 mid.fbin -o init.knn
    run anngraph --eval --sample 0 init.knn mid.fbin
    r0=$(recall_of "$output")
    at_least "$r" "$r0" || fail "recall $r after the iterations, $r0 before"
    run annconvert --info mid.knn
    assert_line "algorithm: nn_descent"
}

@test "no graph holds a row itself or a repeated neighbour, for every metric" {
    annconvert mid.knn mid.txt
    assert_sound_graph mid.txt 16
    for m in euclidean inner_product cosine l1; do
        anngraph --graph-degree 10 --intermediate-graph-degree 20 --metric "$m" small.fbin -o "$m.knn"
        annconvert "$m.knn" "$m.txt"
        assert_sound_graph "$m.txt" 10 || fail "--metric $m"
        run anngraph --eval --sample 0 "$m.knn" small.fbin
        at_least "$(recall_of "$output")" 0.9 || fail "--metric $m: $output"
    done
    anngraph --algo brute_force --graph-degree 10 small.fbin -o bf.knn
    annconvert bf.knn bf.txt
    assert_sound_graph bf.txt 10
}

@test "hamming graphs of u8 data, and hamming on float data is a data error" {
    awk 'BEGIN { srand(5); for (i = 0; i < 200; i++) { for (j = 0; j < 16; j++)
        printf "%s%d", j ? " " : "", int(rand() * 256); print "" } }' >bytes.txt
    annconvert --dtype u8 bytes.txt bytes.u8bin
    anngraph --metric hamming --graph-degree 8 bytes.u8bin -o h.knn
    annconvert --distances hd.txt h.knn h.txt
    assert_sound_graph h.txt 8
    # Bit counts: integers, ascending in each row.
    awk '{ for (j = 1; j <= NF; j++) { if ($j != int($j)) bad = 1; if (j > 1 && $j < $(j - 1)) bad = 1 } } END { exit bad }' hd.txt
    run --separate-stderr anngraph --metric hamming --graph-degree 8 small.fbin -o hf.knn
    assert_failure 1
    [[ "$stderr" == "anngraph: 'small.fbin': "*"hamming"* ]] || fail "stderr: $stderr"
    [ ! -e hf.knn ]
}

@test "duplicate vectors do not break the build" {
    # Every row twice, and row 0 twenty more times.
    annconvert small.fbin s.txt
    { cat s.txt s.txt; for _ in $(seq 20); do head -1 s.txt; done; } >dup.txt
    annconvert dup.txt dup.fbin
    for algo in nn_descent brute_force ivf_pq; do
        anngraph --algo "$algo" --graph-degree 12 dup.fbin -o "$algo.knn"
        annconvert --distances "$algo-d.txt" "$algo.knn" "$algo.txt"
        assert_sound_graph "$algo.txt" 12 || fail "--algo $algo"
        # Each row has a twin: the nearest distance is 0 (exact for brute
        # force and IVF-PQ's refined candidates; NN-Descent's GEMM
        # distances carry float rounding).
        awk -v tol="$([ "$algo" = nn_descent ] && echo 1e-3 || echo 0)" \
            '$1 > tol { print "row " NR - 1 ": " $1; bad = 1 } END { exit bad }' "$algo-d.txt" || fail "--algo $algo"
        run anngraph --eval --sample 0 "$algo.knn" dup.fbin
        at_least "$(recall_of "$output")" 0.9 || fail "--algo $algo: $output"
    done
    # The exact graph: row 5's first neighbour is its twin, row 305.
    [ "$(sed -n 6p brute_force.txt | awk '{ print $1 }')" = 305 ]
}

@test "a dataset needs more rows than the degree" {
    annconvert --rows :16 small.fbin s16.fbin
    for algo in nn_descent brute_force ivf_pq; do
        run --separate-stderr anngraph --algo "$algo" --graph-degree 16 s16.fbin -o g.knn
        assert_failure 1
        [ -z "$output" ]
        [[ "$stderr" == "anngraph: "*"'s16.fbin'"* ]] || fail "stderr: $stderr"
        [[ "$stderr" == *"16 rows"*"degree 16"* ]] || fail "the message names neither rows nor degree: $stderr"
        [ ! -e g.knn ]
        assert_no_temporaries
    done
    # degree + 1 rows: every row's neighbours are all the other rows.
    annconvert --rows :17 small.fbin s17.fbin
    anngraph --graph-degree 16 s17.fbin -o g17.knn
    annconvert g17.knn g17.txt
    assert_sound_graph g17.txt 16
}

@test "the same seed and threads give the same file" {
    anngraph --threads 2 --seed 5 --graph-degree 8 --intermediate-graph-degree 16 small.fbin -o a.knn
    anngraph --threads 2 --seed 5 --graph-degree 8 --intermediate-graph-degree 16 small.fbin -o b.knn
    cmp a.knn b.knn
    anngraph --threads 1 --seed 5 --graph-degree 8 --intermediate-graph-degree 16 small.fbin -o c.knn
    anngraph --threads 1 --seed 5 --graph-degree 8 --intermediate-graph-degree 16 small.fbin -o d.knn
    cmp c.knn d.knn
}

@test "corrupt graph files are rejected with status 1 and the file named" {
    anngraph --graph-degree 8 --intermediate-graph-degree 16 small.fbin -o g.knn
    # A header byte, a byte of the ids, a truncated file, an index file.
    cp g.knn head.knn && "$GEN" flip head.knn 24
    cp g.knn ids.knn && "$GEN" flip ids.knn 3000
    head -c 5000 g.knn >short.knn
    annbuild --algo brute_force small.fbin -o index.knn
    for f in head.knn ids.knn short.knn index.knn; do
        run --separate-stderr anngraph --eval "$f" small.fbin
        [ "$status" -eq 1 ] || fail "--eval $f: status $status: $stderr"
        [ -z "$output" ] || fail "--eval $f: stdout: $output"
        [[ "$stderr" == "anngraph: "*"'$f'"* ]] || fail "--eval $f: $stderr"
        run --separate-stderr annconvert --to graph "$f" copy.knn
        [ "$status" -eq 1 ] || fail "annconvert --to graph $f: status $status: $stderr"
        [[ "$stderr" == "annconvert: "*"'$f'"* ]] || fail "annconvert $f: $stderr"
        [ ! -e copy.knn ]
    done
    run --separate-stderr anngraph --eval index.knn small.fbin
    [[ "$stderr" == *"not a graph"* ]] || fail "stderr: $stderr"
    for f in head.knn ids.knn short.knn; do
        run annconvert "$f" out.npy
        assert_failure 1
        [ ! -e out.npy ]
    done
    assert_no_temporaries
}

@test "graphs round trip through npy, ivecs, ibin, text and HDF5 with their ids unchanged" {
    annconvert --distances ref_d.fbin mid.knn ref.npy
    for f in ids.npy ids.ivecs ids.ibin ids.txt ids.hdf5:neighbors; do
        annconvert -f --distances d.fvecs mid.knn "$f"
        annconvert --to graph --distances d.fvecs "$f" back.knn
        annconvert --distances back_d.fbin back.knn back.npy
        cmp ref.npy back.npy || fail "ids changed through $f"
        cmp ref_d.fbin back_d.fbin || fail "distances changed through $f"
        run annconvert --info back.knn
        assert_line "kind: graph"
        assert_line "rows: 3000"
        assert_line "dim: 16"
        rm -f back.knn back.npy back_d.fbin
    done
    # The sections themselves: ids and distances of the copy equal the original's.
    annconvert --to graph --distances d.fvecs ids.ivecs back.knn
    size=$((3000 * 16 * 4))
    cmp <(tail -c $((2 * size)) mid.knn) <(tail -c $((2 * size)) back.knn)
    # A graph file read with --to graph is copied, here compressed.
    annconvert --to graph --compress mid.knn z.knn
    run annconvert --info z.knn
    assert_line --regexp '^  ids +[0-9]+ +192000  zstd$'
    annconvert z.knn z.npy
    cmp ref.npy z.npy
    assert_no_temporaries
}

@test "--eval prints one line or one JSON object, and samples with --seed" {
    run --separate-stderr anngraph --eval mid.knn mid.fbin
    assert_success
    [ -z "$stderr" ]
    assert_output --regexp '^recall [01]\.[0-9]{4} \(sample 1000 of 3000 rows, degree 16\)$'
    run --separate-stderr anngraph --eval --json --sample 500 --seed 9 mid.knn mid.fbin
    assert_success
    [ "${#lines[@]}" -eq 1 ]
    json=$output
    command -v python3 >/dev/null || skip "python3 is not installed"
    python3 -c '
import json, sys
o = json.loads(sys.argv[1])
assert o["graph"] == "mid.knn" and o["dataset"] == "mid.fbin", o
assert o["algo"] == "nn_descent" and o["metric"] == "sqeuclidean", o
assert o["rows"] == 3000 and o["degree"] == 16 and o["sample"] == 500 and o["seed"] == 9, o
assert 0.9 <= o["recall"] <= 1 and o["seconds"] >= 0, o
' "$json"
    # The same seed samples the same rows.
    a=$(anngraph --eval --json --sample 100 --seed 3 mid.knn mid.fbin | sed 's/,"seconds":[^}]*//')
    b=$(anngraph --eval --json --sample 100 --seed 3 mid.knn mid.fbin | sed 's/,"seconds":[^}]*//')
    [ "$a" = "$b" ]
}

@test "--eval needs the rows the graph was built from" {
    anngraph --graph-degree 8 --intermediate-graph-degree 16 --rows 100:300 small.fbin -o part.knn
    run annconvert --info part.knn
    assert_line "rows: 200"
    run --separate-stderr anngraph --eval part.knn small.fbin
    assert_failure 1
    [[ "$stderr" == "anngraph: 'small.fbin': 300 rows, but the graph 'part.knn' has 200"* ]] || fail "stderr: $stderr"
    run anngraph --eval --sample 0 --rows 100:300 part.knn small.fbin
    assert_success
    at_least "$(recall_of "$output")" 0.9 || fail "$output"
}

@test "--return-distances false writes no distances section" {
    anngraph --return-distances false --graph-degree 8 --intermediate-graph-degree 16 small.fbin -o nd.knn
    run annconvert --info nd.knn
    assert_line "sections: 2"
    refute_line --regexp '^  distances '
    run --separate-stderr annconvert --distances d.npy nd.knn ids.npy
    assert_failure 1
    [[ "$stderr" == *"'nd.knn'"*"no distances"* ]] || fail "stderr: $stderr"
    [ ! -e ids.npy ] && [ ! -e d.npy ]
    assert_no_temporaries
}

@test "--help lists every parameter with its range and default" {
    run --separate-stderr anngraph --help
    assert_success
    for o in --algo --metric --output --rows --compress --format --eval --sample --json \
        --graph-degree --intermediate-graph-degree --max-iterations --termination-threshold \
        --return-distances --dist-comp-dtype --refine-ratio --n-lists --n-probes --pq-dim --pq-bits \
        --kmeans-n-iters --kmeans-trainset-fraction --max-train-points-per-pq-code --codebook-kind \
        --force-random-rotation; do
        assert_output --partial -- "$o"
    done
    assert_output --partial "ivf_pq parameters (with --algo ivf_pq):"
    assert_output --partial "1..64, default 2"
    assert_output --partial "0..8, default 0"
    assert_output --partial "per_subspace|per_cluster, default per_subspace"
    assert_output --partial "1..1024, default 64"
    assert_output --partial "1..1024, default 128"
    assert_output --partial "0..1000, default 20"
    assert_output --partial "0..1, default 0.0001"
    assert_output --partial "auto|fp32|fp16, default auto"
    assert_output --partial "true|false, default true"
}

@test "usage errors exit 2, unavailable algorithms exit 3" {
    run -2 anngraph --algo ivf_flat small.fbin -o g.knn
    assert_output --partial "annbuild"
    run -2 anngraph --algo no_such small.fbin -o g.knn
    assert_output --partial "nn_descent, brute_force"
    run -2 anngraph --algo brute_force --max-iterations 3 small.fbin -o g.knn
    assert_output --partial "does not apply to --algo brute_force"
    run -2 anngraph --graph-degree 0 small.fbin -o g.knn
    run -2 anngraph --graph-degree 2000 small.fbin -o g.knn
    run -2 anngraph --termination-threshold 2 small.fbin -o g.knn
    run -2 anngraph --return-distances maybe small.fbin -o g.knn
    run -2 anngraph --dist-comp-dtype fp8 small.fbin -o g.knn
    run -2 anngraph --metric nope small.fbin -o g.knn
    run -2 anngraph small.fbin
    run -2 anngraph small.fbin mid.fbin -o g.knn
    run -2 anngraph --sample 10 small.fbin -o g.knn
    run -2 anngraph --json small.fbin -o g.knn
    run -2 anngraph --eval -o g.knn mid.knn mid.fbin
    run -2 anngraph --eval --graph-degree 8 mid.knn mid.fbin
    run -2 anngraph --eval mid.knn
    [ ! -e g.knn ]
    # A variant of an algorithm that this version does not have: 3.
    run --separate-stderr anngraph --algo ivf_pq --codebook-kind per_cluster small.fbin -o g.knn
    assert_failure 3
    [[ "$stderr" == "anngraph: "*"per_cluster"*"not available"* ]] || fail "stderr: $stderr"
    [ ! -e g.knn ]
}

@test "the output is binary, and replaced only with -f" {
    run -2 anngraph --graph-degree 8 small.fbin -o -
    anngraph --graph-degree 8 --intermediate-graph-degree 16 small.fbin -o g.knn
    cp g.knn before.knn
    run --separate-stderr anngraph --graph-degree 4 small.fbin -o g.knn
    assert_failure 1
    [[ "$stderr" == *"'g.knn'"*"-f"* ]] || fail "stderr: $stderr"
    cmp g.knn before.knn
    anngraph -f --graph-degree 4 small.fbin -o g.knn
    run annconvert --info g.knn
    assert_line "dim: 4"
    assert_no_temporaries
}

@test "-v reports the build time and the graph's shape on stderr only" {
    run --separate-stderr anngraph -v --graph-degree 8 --intermediate-graph-degree 16 small.fbin -o g.knn
    assert_success
    [ -z "$output" ]
    [[ "$stderr" == *"anngraph: read 'small.fbin': 300 x 8 f32"* ]] || fail "stderr: $stderr"
    [[ "$stderr" =~ anngraph:\ built\ nn_descent\ graph:\ 300\ rows\ x\ degree\ 8,\ sqeuclidean,\ with\ distances,.*\ [0-9.]+\ s\ on\ cpu ]] || fail "stderr: $stderr"
    [[ "$stderr" == *"anngraph: wrote 'g.knn'"* ]] || fail "stderr: $stderr"
    run --separate-stderr anngraph -q -f --graph-degree 8 small.fbin -o g.knn
    [ -z "$stderr" ]
}

@test "progress shows the iterations on a terminal only" {
    command -v script >/dev/null || skip "script(1) is not installed"
    run script -qec "anngraph --graph-degree 16 --intermediate-graph-degree 32 mid.fbin -o a.knn" /dev/null
    assert_success
    assert_output --regexp 'anngraph: nn_descent [0-9]+/[0-9]+ \([0-9.]+ s\)'
    run script -qec "anngraph -q --graph-degree 16 --intermediate-graph-degree 32 mid.fbin -o b.knn" /dev/null
    assert_success
    assert_output ""
}

@test "--device cpu works, and --device cuda without a GPU exits 3" {
    anngraph --device cpu --graph-degree 8 --intermediate-graph-degree 16 small.fbin -o cpu.knn
    run anngraph --eval --device cpu cpu.knn small.fbin
    assert_success
    if have_gpu; then
        # NN-Descent may not have a CUDA version yet: then exit 3, never a
        # silent fallback to the CPU.  The exact graph and --eval do.
        run --separate-stderr anngraph --device cuda --graph-degree 8 small.fbin -o gpu.knn
        if [ "$status" -eq 3 ]; then
            [[ "$stderr" == "anngraph: "*"--device cuda: "*"not supported on CUDA"* ]] || fail "stderr: $stderr"
            [ ! -e gpu.knn ]
        else
            assert_success
        fi
        anngraph --device cuda --algo brute_force --graph-degree 8 small.fbin -o gpu-bf.knn
        anngraph --eval --device cuda --sample 0 cpu.knn small.fbin
        skip "a GPU is present: --device cuda ran"
    fi
    run --separate-stderr anngraph --device cuda --graph-degree 8 small.fbin -o gpu.knn
    assert_failure 3
    [[ "$stderr" == "anngraph: "*"cuda"* ]] || fail "stderr: $stderr"
    [ ! -e gpu.knn ]
    run --separate-stderr anngraph --eval --device cuda cpu.knn small.fbin
    assert_failure 3
    assert_no_temporaries
}

@test "SIGINT during a build removes the temporary file" {
    "$GEN" -n 20000 -q 0 -d 32 -c 1 -s 3 big.fbin
    set -m
    anngraph --device cpu --threads 1 --graph-degree 64 --max-iterations 1000 \
        --termination-threshold 0 big.fbin -o big.knn 3>&- &
    pid=$!
    set +m
    for _ in $(seq 100); do
        [ -n "$(find . -maxdepth 1 -name '.big.knn.tmp.*')" ] && break
        sleep 0.1
    done
    [ -n "$(find . -maxdepth 1 -name '.big.knn.tmp.*')" ] || fail "no temporary file appeared"
    sleep 0.5
    kill -INT "$pid"
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid"
        fail "anngraph did not stop"
    fi
    status=0
    wait "$pid" || status=$?
    [ "$status" -eq 130 ] || fail "status $status"
    [ ! -e big.knn ]
    assert_no_temporaries
}

@test "--max-host-memory refuses a graph that does not fit, before any work" {
    run --separate-stderr anngraph --max-host-memory 10K mid.fbin -o g.knn
    assert_failure 1
    [[ "$stderr" == *"estimated peak host memory"* ]] || fail "stderr: $stderr"
    [ ! -e g.knn ] || fail "a graph was written"
    # IVF-PQ graphs have their model too (annmem ivf_pq): the estimate, the limit and the option are named
    run --separate-stderr anngraph --algo ivf_pq --max-host-memory 1MiB --graph-degree 8 mid.fbin -o g.knn
    assert_failure 1
    [[ "$stderr" == "anngraph: estimated peak host memory "*"(ivf_pq build, "*": build_peak) exceeds "* ]] ||
        fail "stderr: $stderr"
    [[ "$stderr" == *"the usable part of --max-host-memory 0.0 GiB (headroom 0.20)"*"raise --max-host-memory"* ]] ||
        fail "stderr: $stderr"
    [[ "$stderr" != *"not checked"* ]] || fail "stderr: $stderr"
    [ ! -e g.knn ] || fail "a graph was written"
    # a limit the build fits is no obstacle
    run --separate-stderr anngraph --algo ivf_pq --max-host-memory 1GiB --graph-degree 8 mid.fbin -o g.knn
    assert_success
    [ -e g.knn ]
    run anngraph --max-gpu-memory much mid.fbin -o g.knn
    assert_failure 2
}

@test "IVF-PQ graphs reach recall 0.9, with the preset and with 4-bit codes in several lists" {
    run --separate-stderr anngraph -v --algo ivf_pq --graph-degree 16 mid.fbin -o pq.knn
    assert_success
    [ -z "$output" ] || fail "stdout: $output"
    # -v: the resolved preset (3000 x 16: one list, 8-bit codes, 16 subspaces) and the self-included ratio.
    [[ "$stderr" == *"n_lists 1, pq_dim 16 x 1 (rot_dim 16, no rotation), pq_bits 8"* ]] || fail "stderr: $stderr"
    [[ "$stderr" == *"32 candidates per row"* ]] || fail "stderr: $stderr"
    [[ "$stderr" == *"self-included ratio 1.0000"* ]] || fail "stderr: $stderr"
    run anngraph --eval --sample 0 pq.knn mid.fbin
    at_least "$(recall_of "$output")" 0.9 || fail "$output"
    annconvert --distances pq_d.txt pq.knn pq.txt
    assert_sound_graph pq.txt 16
    # Exact distances, ascending.
    awk '{ for (j = 2; j <= NF; j++) if ($j < $(j - 1)) { print NR ": not ascending"; bad = 1 } } END { exit bad }' pq_d.txt
    run annconvert --info pq.knn
    assert_line "algorithm: ivf_pq"
    assert_line "dim: 16"
    # 4-bit codes, a random rotation (12 subspaces of 2: rot_dim 24 > 16), 6 lists of which 2 are searched.
    anngraph --algo ivf_pq --graph-degree 16 --pq-bits 4 --pq-dim 12 --n-lists 6 --n-probes 2 \
        --refine-ratio 3 mid.fbin -o pq4.knn
    run anngraph --eval --sample 0 pq4.knn mid.fbin
    at_least "$(recall_of "$output")" 0.9 || fail "4-bit: $output"
    annconvert pq4.knn pq4.txt
    assert_sound_graph pq4.txt 16
}

@test "IVF-PQ graphs for every metric are sound, with the stored metric and distances" {
    for m in euclidean inner_product cosine; do
        anngraph --algo ivf_pq --graph-degree 10 --metric "$m" small.fbin -o "$m.knn"
        annconvert --distances "$m-d.txt" "$m.knn" "$m.txt"
        assert_sound_graph "$m.txt" 10 || fail "--metric $m"
        run annconvert --info "$m.knn"
        assert_line "metric: $m"
        run anngraph --eval --sample 0 "$m.knn" small.fbin
        at_least "$(recall_of "$output")" "$([ "$m" = inner_product ] && echo 0.7 || echo 0.9)" || fail "--metric $m: $output"
    done
    # inner_product: larger is better, each row descending.
    awk '{ for (j = 2; j <= NF; j++) if ($j > $(j - 1)) { print NR ": not descending"; bad = 1 } } END { exit bad }' inner_product-d.txt
    # The exact graph's distances: the same as brute force's where the ids agree.
    anngraph --algo brute_force --graph-degree 10 --metric euclidean small.fbin -o bf.knn
    annconvert --distances bf-d.txt bf.knn bf.txt
    paste -d '|' euclidean.txt euclidean-d.txt bf.txt bf-d.txt | awk -F'|' '{
        split($1, a, " "); split($2, ad, " "); split($3, b, " "); split($4, bd, " ");
        for (i = 1; i <= 10; i++) for (j = 1; j <= 10; j++)
            if (a[i] == b[j] && ad[i] != bd[j]) { print NR ": id " a[i] ": " ad[i] " vs " bd[j]; bad = 1 } }
        END { exit bad }'
}

@test "IVF-PQ: the same seed gives the same file, whatever the threads; --return-distances false" {
    anngraph --algo ivf_pq --threads 2 --seed 5 --graph-degree 8 --pq-bits 4 --n-lists 3 mid.fbin -o a.knn
    anngraph --algo ivf_pq --threads 2 --seed 5 --graph-degree 8 --pq-bits 4 --n-lists 3 mid.fbin -o b.knn
    anngraph --algo ivf_pq --threads 1 --seed 5 --graph-degree 8 --pq-bits 4 --n-lists 3 mid.fbin -o c.knn
    cmp a.knn b.knn
    cmp a.knn c.knn
    anngraph --algo ivf_pq --return-distances false --graph-degree 8 small.fbin -o nd.knn
    run annconvert --info nd.knn
    assert_line "sections: 2"
}

@test "IVF-PQ parameter errors: usage 2, data 1, unavailable 3, nothing written" {
    for bad in "--pq-bits 3" "--pq-bits 9" "--refine-ratio 0.5" "--n-probes -1" "--pq-dim 9000" \
        "--kmeans-trainset-fraction 2" "--codebook-kind kmeans" "--force-random-rotation maybe" \
        "--max-iterations 3" "--intermediate-graph-degree 32"; do
        run --separate-stderr anngraph --algo ivf_pq $bad small.fbin -o g.knn
        [ "$status" -eq 2 ] || fail "$bad: status $status: $stderr"
        [[ "$stderr" == "anngraph: "* ]] || fail "$bad: $stderr"
    done
    run --separate-stderr anngraph --algo ivf_pq --pq-bits 3 small.fbin -o g.knn
    [[ "$stderr" == *"pq_bits = 3"*"0 (auto) or 4 to 8"* ]] || fail "stderr: $stderr"
    run --separate-stderr anngraph --algo ivf_pq --max-iterations 3 small.fbin -o g.knn
    [[ "$stderr" == *"does not apply to --algo ivf_pq"* ]] || fail "stderr: $stderr"
    run -2 anngraph --n-lists 4 small.fbin -o g.knn
    assert_output --partial "does not apply to --algo nn_descent"
    for m in l1 hamming; do
        run --separate-stderr anngraph --algo ivf_pq --metric "$m" small.fbin -o g.knn
        [ "$status" -eq 3 ] || fail "--metric $m: status $status: $stderr"
        [[ "$stderr" == *"metric $m is not supported"* ]] || fail "--metric $m: $stderr"
    done
    # More lists than rows: a property of the data, status 1, the file named.
    run --separate-stderr anngraph --algo ivf_pq --graph-degree 8 --n-lists 301 small.fbin -o g.knn
    assert_failure 1
    [[ "$stderr" == "anngraph: 'small.fbin': "*"n_lists = 301 exceeds the 300 rows"* ]] || fail "stderr: $stderr"
    [ ! -e g.knn ]
    assert_no_temporaries
}
