#!/usr/bin/env bats
# annbuild: algorithms, metrics and generated parameter options, row ranges,
# compression, safe output (-f, Ctrl-C), devices, and usage errors.

load common

setup_file() {
    cd "$BATS_FILE_TMPDIR" || return 1
    # 2000 x 16 in 20 clusters, 100 queries; the exact neighbours from the
    # independent oracle in gen_data.c.
    "$ANNKIT_GEN_DATA" -n 2000 -q 100 -d 16 -c 20 -s 7 base.fbin q.fbin
    "$ANNKIT_GEN_DATA" knn -k 10 base.fbin q.fbin >truth.txt
}

setup() {
    common_setup
    cp "$BATS_FILE_TMPDIR"/{base.fbin,q.fbin,truth.txt} .
}

@test "a brute-force index answers with the exact neighbours" {
    run --separate-stderr annbuild --algo brute_force base.fbin -o bf.ann
    assert_success
    [ -z "$output" ] && [ -z "$stderr" ] || fail "output: $output, stderr: $stderr"
    assert_no_temporaries
    run annconvert --info bf.ann
    assert_line "algorithm: brute_force"
    assert_line "metric: sqeuclidean"
    assert_line "rows: 2000"
    assert_line "dim: 16"
    annsearch bf.ann q.fbin -k 10 -o ids.txt
    same_numbers truth.txt ids.txt
}

@test "--metric is stored and changes the distances returned" {
    annbuild --algo brute_force base.fbin -o sq.ann
    annbuild --algo brute_force --metric euclidean base.fbin -o l2.ann
    run annconvert --info l2.ann
    assert_line "metric: euclidean"
    annsearch sq.ann q.fbin -k 5 -o sq.txt --distances sqd.txt
    annsearch l2.ann q.fbin -k 5 -o l2.txt --distances l2d.txt
    same_numbers sq.txt l2.txt
    # euclidean = sqrt(sqeuclidean)
    paste sqd.txt l2d.txt | awk '{ n = NF / 2; for (j = 1; j <= n; j++) { a = sqrt($j); b = $(j + n);
        e = a - b; if (e < 0) e = -e; if (e > 1e-4 * (a + 1)) { print NR ": " a " vs " b; bad = 1 } } }
        END { exit bad }'
    for m in inner_product cosine angular l2; do
        annbuild --algo brute_force --metric "$m" base.fbin -o "m-$m.ann"
    done
    run annconvert --info m-angular.ann
    assert_line "metric: cosine"
    run -2 annbuild --algo brute_force --metric manhattan base.fbin -o x.ann
    assert_output --partial "sqeuclidean"
    [ ! -e x.ann ]
}

@test "IVF-Flat takes its build parameters as options and reports with -v" {
    run --separate-stderr annbuild -v --algo ivf_flat --n-lists 32 --kmeans-n-iters 10 \
        --kmeans-trainset-fraction 0.8 --max-train-points-per-cluster 100 base.fbin -o ivf.ann
    assert_success
    [ -z "$output" ]
    [[ "$stderr" == *"annbuild: built ivf_flat index: 2000 rows x 16 dim, 32 lists"* ]] || fail "stderr: $stderr"
    [[ "$stderr" == *" s on cpu"* ]] || fail "stderr: $stderr"
    [[ "$stderr" == *"annbuild: wrote 'ivf.ann'"* ]] || fail "stderr: $stderr"
    run annconvert --info ivf.ann
    assert_line "algorithm: ivf_flat"
    assert_line "  n_lists=32"
    run annsearch ivf.ann q.fbin -k 10 --truth truth.txt --n-probes 32
    assert_success
    assert_output --partial "recall=1.0000"
}

@test "--help lists every build parameter with its range and default" {
    run annbuild --help
    assert_success
    assert_output --partial "--n-lists N"
    assert_output --partial "default 1024"
    assert_output --partial "--kmeans-n-iters N"
    assert_output --partial "--adaptive-centers BOOL"
    assert_output --partial "brute_force"
}

@test "--rows builds over a slice of the dataset" {
    annbuild --algo brute_force --rows 500:1500 base.fbin -o part.ann
    run annconvert --info part.ann
    assert_line "rows: 1000"
    annbuild --algo brute_force --rows :1K base.fbin -o head.ann
    run annconvert --info head.ann
    assert_line "rows: 1000"
    run annconvert --info part.ann
    assert_line "  row_offset=500"
    # The slice answers like an index of the converted slice, with its ids
    # shifted by the first row (global row numbers).
    annconvert --rows 500:1500 base.fbin part.fbin
    annbuild --algo brute_force part.fbin -o part2.ann
    annsearch part.ann q.fbin -k 5 -o a.txt
    annsearch part2.ann q.fbin -k 5 -o b.txt
    awk '{ for (j = 1; j <= NF; j++) $j += 500; print }' b.txt >b500.txt
    same_numbers a.txt b500.txt
    run annbuild --algo brute_force --rows 1900:2100 base.fbin -o over.ann
    assert_failure 1
    [ ! -e over.ann ]
    assert_no_temporaries
}

@test "--compress stores zstd sections and searches the same" {
    annbuild --algo ivf_flat --n-lists 16 base.fbin -o raw.ann
    annbuild --algo ivf_flat --n-lists 16 --compress base.fbin -o z.ann
    run annconvert --info z.ann
    assert_line --regexp 'zstd$'
    run annconvert --info raw.ann
    refute_line --regexp 'zstd$'
    annsearch raw.ann q.fbin -k 10 --n-probes 4 -o a.txt
    annsearch z.ann q.fbin -k 10 --n-probes 4 -o b.txt
    cmp a.txt b.txt
}

@test "the same seed gives the same index" {
    annbuild --algo ivf_flat --n-lists 16 --seed 5 base.fbin -o a.ann
    annbuild --algo ivf_flat --n-lists 16 --seed 5 base.fbin -o b.ann
    cmp a.ann b.ann
    run annconvert --info a.ann
    assert_success
}

@test "an unknown or missing algorithm is a usage error that lists the algorithms" {
    run --separate-stderr annbuild --algo nonesuch base.fbin -o x.ann
    assert_failure 2
    [[ "$stderr" == *"brute_force"*"ivf_flat"* ]] || fail "stderr: $stderr"
    run -2 annbuild base.fbin -o x.ann
    assert_output --partial "--algo"
    run -2 annbuild --algo nn_descent base.fbin -o x.ann
    assert_output --partial "anngraph"
    [ ! -e x.ann ]
}

@test "algorithms known but not in this build exit 3" {
    avail=$(annbuild --help | sed -n 's/.*index algorithm: //p')
    n=0
    for a in ivf_sq ivf_pq cagra hnsw; do
        case ", $avail," in *", $a,"*) continue ;; esac
        run --separate-stderr annbuild --algo "$a" base.fbin -o x.ann
        [ "$status" -eq 3 ] || fail "--algo $a: status $status"
        [[ "$stderr" == *"not available in this build"* ]] || fail "stderr: $stderr"
        n=$((n + 1))
    done
    [ ! -e x.ann ]
    [ "$n" -gt 0 ] || skip "every algorithm is available"
}

@test "parameters are checked against the algorithm's table" {
    run -2 annbuild --algo brute_force --n-lists 8 base.fbin -o x.ann
    assert_output --partial "does not apply to --algo brute_force"
    run -2 annbuild --algo ivf_flat --n-lists 0 base.fbin -o x.ann
    assert_output --partial "n_lists"
    run -2 annbuild --algo ivf_flat --n-lists many base.fbin -o x.ann
    run -2 annbuild --algo ivf_flat --kmeans-trainset-fraction 2 base.fbin -o x.ann
    run -2 annbuild --algo ivf_flat --adaptive-centers maybe base.fbin -o x.ann
    run -2 annbuild --algo ivf_flat --n-probes 4 base.fbin -o x.ann
    [ ! -e x.ann ]
    assert_no_temporaries
}

@test "more lists than rows is a data error naming the dataset" {
    run --separate-stderr annbuild --algo ivf_flat --n-lists 4096 base.fbin -o x.ann
    assert_failure 1
    [[ "$stderr" == "annbuild: "*"base.fbin"* ]] || fail "stderr: $stderr"
    [ ! -e x.ann ]
    assert_no_temporaries
}

@test "the output is required, binary, and replaced only with -f" {
    run -2 annbuild --algo brute_force base.fbin
    assert_output --partial "-o"
    run -2 annbuild --algo brute_force base.fbin -o -
    annbuild --algo brute_force base.fbin -o bf.ann
    cp bf.ann before.ann
    run --separate-stderr annbuild --algo brute_force --rows :10 base.fbin -o bf.ann
    assert_failure 1
    [[ "$stderr" == "annbuild: 'bf.ann': "*"-f"* ]] || fail "stderr: $stderr"
    cmp bf.ann before.ann
    annbuild -f --algo brute_force --rows :10 base.fbin -o bf.ann
    run annconvert --info bf.ann
    assert_line "rows: 10"
    assert_no_temporaries
}

@test "--max-host-memory refuses a build that does not fit, before any work" {
    run --separate-stderr annbuild --algo ivf_flat --n-lists 16 --max-host-memory 100K base.fbin -o ivf.ann
    assert_failure 1
    [[ "$stderr" == *"estimated peak host memory"* ]] || fail "stderr: $stderr"
    [[ "$stderr" == *"--max-host-memory"* ]] || fail "stderr: $stderr"
    [[ "$stderr" == *"rows fit"* ]] || fail "stderr: $stderr"
    [ ! -e ivf.ann ] || fail "an index was written"
    assert_no_temporaries
    # the same build with room enough succeeds
    annbuild --algo ivf_flat --n-lists 16 --max-host-memory 1GiB base.fbin -o ivf.ann
    [ -s ivf.ann ]
    run annbuild --algo ivf_flat --max-host-memory lots base.fbin -o x.ann
    assert_failure 2
}

@test "an output in a missing directory fails before reading the data" {
    run --separate-stderr annbuild --algo brute_force base.fbin -o no/such/dir/x.ann
    assert_failure 1
    [[ "$stderr" == *"no/such/dir/x.ann"* ]] || fail "stderr: $stderr"
}

@test "HDF5 datasets are read by name" {
    annconvert base.fbin b.hdf5:train
    annbuild --algo brute_force b.hdf5:train -o h.ann
    annbuild --algo brute_force base.fbin -o f.ann
    annsearch h.ann q.fbin -k 3 -o a.txt
    annsearch f.ann q.fbin -k 3 -o b.txt
    cmp a.txt b.txt
    run --separate-stderr annbuild --algo brute_force b.hdf5 -o x.ann
    assert_failure 1
    [[ "$stderr" == *"train"* ]] || fail "stderr: $stderr"
    run annbuild --algo brute_force b.hdf5:nope -o x.ann
    assert_failure 1
    [ ! -e x.ann ]
}

@test "--format reads a file whose name says nothing" {
    cp base.fbin data.raw
    annbuild --algo brute_force --format fbin data.raw -o r.ann
    run annconvert --info r.ann
    assert_line "rows: 2000"
}

@test "integer datasets are indexed as f32" {
    printf '0 0\n10 0\n0 10\n' | annconvert --dtype i32 - pts.npy
    annbuild --algo brute_force pts.npy -o pts.ann
    run annconvert --info pts.ann
    assert_line "dtype: f32"
    printf '9 1\n' | annconvert - one.fbin
    run --separate-stderr annsearch pts.ann one.fbin -k 1 -o -
    assert_success
    assert_output "1"
}

@test "progress shows on a terminal only, and not with -q" {
    command -v script >/dev/null || skip "script(1) is not installed"
    run script -qec "annbuild --algo ivf_flat --n-lists 16 base.fbin -o a.ann" /dev/null
    assert_success
    assert_output --regexp 'annbuild: [a-z_]+ [0-9]+/[0-9]+ \([0-9.]+ s\)'
    run script -qec "annbuild -q --algo ivf_flat --n-lists 16 base.fbin -o b.ann" /dev/null
    assert_success
    assert_output ""
    run --separate-stderr annbuild --algo ivf_flat --n-lists 16 base.fbin -o c.ann
    [ -z "$stderr" ]
}

@test "--device cpu works, and --device cuda without a GPU exits 3" {
    annbuild --device cpu --algo brute_force base.fbin -o cpu.ann
    if have_gpu; then
        annbuild --device cuda --algo brute_force base.fbin -o gpu.ann
        skip "a GPU is present: --device cuda ran"
    fi
    run --separate-stderr annbuild --device cuda --algo brute_force base.fbin -o gpu.ann
    assert_failure 3
    [[ "$stderr" == "annbuild: "*"cuda"* ]] || fail "stderr: $stderr"
    [ ! -e gpu.ann ]
    assert_no_temporaries
}

# Start a long IVF build in the background, with SIGINT not ignored (a
# background job of a non-interactive shell ignores it), and wait until its
# temporary file exists.  Sets $pid.
start_long_build() {
    "$GEN" -n 20000 -q 1 -d 32 -c 50 -s 3 big.fbin
    set -m
    # One CPU thread, so that it takes seconds on any machine.
    annbuild --device cpu --threads 1 --algo ivf_flat --n-lists 256 --kmeans-n-iters 1000 \
        --kmeans-trainset-fraction 1 --max-train-points-per-cluster 0 big.fbin -o big.ann 3>&- &
    pid=$!
    set +m
    for _ in $(seq 100); do
        [ -n "$(find . -maxdepth 1 -name '.big.ann.tmp.*')" ] && break
        sleep 0.1
    done
    [ -n "$(find . -maxdepth 1 -name '.big.ann.tmp.*')" ] || fail "no temporary file appeared"
    sleep 0.5 # into k-means
}

# Wait for $pid at most 10 s; its status in $status.
wait_build() {
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid"
        fail "annbuild did not stop"
    fi
    status=0
    wait "$pid" || status=$?
}

@test "Ctrl-C during a build removes the temporary file" {
    start_long_build
    kill -INT "$pid"
    wait_build
    [ "$status" -eq 130 ] || fail "status $status"
    [ ! -e big.ann ]
    assert_no_temporaries
}

@test "SIGTERM during a build removes the temporary file" {
    start_long_build
    kill -TERM "$pid"
    wait_build
    [ "$status" -eq 143 ] || fail "status $status"
    [ ! -e big.ann ]
    assert_no_temporaries
}

@test "--extend adds rows to an index: the same answers as building on all rows" {
    annconvert --rows :1500 base.fbin a.fbin
    annconvert --rows 1500: base.fbin b.fbin
    annbuild --algo brute_force a.fbin -o a.ann
    run --separate-stderr annbuild --extend a.ann b.fbin -o ab.ann
    assert_success
    assert_no_temporaries
    run annconvert --info ab.ann
    assert_line "rows: 2000"
    annsearch ab.ann q.fbin -k 10 -o ids.txt
    same_numbers truth.txt ids.txt
    # IVF-Flat: all lists probed is exact after extending too
    annbuild --algo ivf_flat --n-lists 8 a.fbin -o a.ivf
    annbuild --extend a.ivf b.fbin -o ab.ivf
    annsearch ab.ivf q.fbin -k 10 --n-probes 8 -o ivf.txt
    same_numbers truth.txt ivf.txt
    run annbuild --extend a.ann --algo ivf_flat b.fbin -o x.ann
    assert_failure 2
    run annbuild --extend missing.ann b.fbin -o x.ann
    assert_failure 1
}

@test "--extend links new rows into a CAGRA graph: recall as high as a graph of all rows" {
    annconvert --rows :1000 base.fbin a.fbin
    annconvert --rows 1000: base.fbin b.fbin
    annconvert truth.txt truth.ivecs
    common="--algo cagra --build-algo brute_force --graph-degree 16 --intermediate-graph-degree 32"
    annbuild $common a.fbin -o a.cagra
    annbuild --extend a.cagra b.fbin -o ab.cagra
    run annconvert --info ab.cagra
    assert_line "rows: 2000"
    run annsearch ab.cagra q.fbin -k 10 --truth truth.ivecs --itopk-size 64
    assert_success
    r=$(field recall "$output")
    awk -v r="$r" 'BEGIN { exit !(r >= 0.97) }' || fail "recall $r after extend"
    # every new row is found by a search for itself
    annsearch ab.cagra b.fbin -k 1 -o self.txt
    awk '{ if ($1 != NR + 999) bad++ } END { exit bad > 10 }' self.txt || fail "new rows not found"
    # an index without its vectors cannot grow
    annbuild $common --no-dataset a.fbin -o nod.cagra
    run --separate-stderr annbuild --extend nod.cagra b.fbin -o x.cagra
    assert_failure 1
    [[ "$stderr" == *"no vectors"* ]] || fail "$stderr"
}
