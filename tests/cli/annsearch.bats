#!/usr/bin/env bats
# annsearch: exact results, recall (both definitions), parameter sweeps,
# output styles, result files, and the errors of the contract.

load common

setup_file() {
    cd "$BATS_FILE_TMPDIR" || return 1
    # 2000 x 16 in 20 clusters, 100 queries; exact neighbours and squared
    # distances from the independent oracle in gen_data.c.
    "$ANNKIT_GEN_DATA" -n 2000 -q 100 -d 16 -c 20 -s 7 base.fbin q.fbin
    "$ANNKIT_GEN_DATA" knn -k 10 base.fbin q.fbin >truth.txt
    "$ANNKIT_GEN_DATA" knn -k 10 -D base.fbin q.fbin >truth_d.txt
    export PATH="$ANNKIT_BIN_DIR:$PATH"
    annconvert truth.txt truth.ivecs
    annbuild --algo brute_force base.fbin -o bf.ann
    annbuild --algo ivf_flat --n-lists 32 base.fbin -o ivf.ann
}

setup() {
    common_setup
    cp "$BATS_FILE_TMPDIR"/{base.fbin,q.fbin,truth.txt,truth_d.txt,truth.ivecs,bf.ann,ivf.ann} .
}

# recall= of a text result line.
recall_of() {
    field recall "$1"
}

@test "brute force returns the exact neighbours and distances" {
    run --separate-stderr annsearch bf.ann q.fbin -k 10 -o ids.txt --distances d.txt
    assert_success
    [ -z "$stderr" ] || fail "stderr: $stderr"
    [ "${#lines[@]}" -eq 1 ]
    same_numbers truth.txt ids.txt
    paste truth_d.txt d.txt | awk '{ n = NF / 2; for (j = 1; j <= n; j++) { a = $j; b = $(j + n);
        e = a - b; if (e < 0) e = -e; if (e > 1e-4 * (a + 1)) { print NR ": " a " vs " b; bad = 1 } } }
        END { exit bad }'
}

@test "brute force has recall 1 with truth in any format" {
    annconvert truth.ivecs truth.hdf5:neighbors
    annconvert truth.ivecs truth.npy
    for gt in truth.txt truth.ivecs truth.npy truth.hdf5:neighbors truth.hdf5; do
        run --separate-stderr annsearch bf.ann q.fbin -k 10 --truth "$gt"
        assert_success
        [ "$(recall_of "$output")" = "1.0000" ] || fail "--truth $gt: $output"
    done
    # Fewer neighbours than the truth holds: only the first k count.
    run annsearch bf.ann q.fbin -k 3 --truth truth.ivecs
    [ "$(recall_of "$output")" = "1.0000" ] || fail "$output"
}

@test "IVF-Flat recall is high at a mid n_probes and exact when every list is probed" {
    run annsearch ivf.ann q.fbin -k 10 --truth truth.ivecs --n-probes 4
    assert_success
    r=$(recall_of "$output")
    awk -v r="$r" 'BEGIN { exit !(r >= 0.9) }' || fail "recall $r at n_probes 4"
    run annsearch ivf.ann q.fbin -k 10 --truth truth.ivecs --n-probes 32
    [ "$(recall_of "$output")" = "1.0000" ] || fail "$output"
    annsearch ivf.ann q.fbin -k 10 --n-probes 32 -o ids.txt
    same_numbers truth.txt ids.txt
}

@test "a comma list gives one line per value, in order, recall never decreasing" {
    run --separate-stderr annsearch ivf.ann q.fbin -k 10 --truth truth.ivecs --n-probes 1,2,4,8,32
    assert_success
    [ "${#lines[@]}" -eq 5 ] || fail "$output"
    prev=0
    i=0
    for p in 1 2 4 8 32; do
        line=${lines[$i]}
        [ "$(field n_probes "$line")" = "$p" ] || fail "line $i: $line"
        [ "$(field k "$line")" = 10 ] || fail "line $i: $line"
        r=$(recall_of "$line")
        awk -v a="$prev" -v b="$r" 'BEGIN { exit !(b >= a) }' || fail "recall fell: $output"
        [ -n "$(field qps "$line")" ] && [ -n "$(field seconds "$line")" ] || fail "line $i: $line"
        prev=$r
        i=$((i + 1))
    done
    [ "$prev" = "1.0000" ]
}

@test "several lists give the cartesian product, the first option slowest" {
    run annsearch ivf.ann q.fbin -k 10 --truth truth.ivecs --n-probes 2,8 --search-mode matrix,csr
    assert_success
    [ "${#lines[@]}" -eq 4 ] || fail "$output"
    expect="2 matrix,2 csr,8 matrix,8 csr"
    got=""
    for i in 0 1 2 3; do
        got="$got${got:+,}$(field n_probes "${lines[$i]}") $(field search_mode "${lines[$i]}")"
    done
    [ "$got" = "$expect" ] || fail "order: $got"
    # Both modes scan the same lists exactly: the same recall.
    [ "$(recall_of "${lines[0]}")" = "$(recall_of "${lines[1]}")" ]
    [ "$(recall_of "${lines[2]}")" = "$(recall_of "${lines[3]}")" ]
}

@test "the text lines are aligned" {
    run annsearch ivf.ann q.fbin -k 10 --truth truth.ivecs --n-probes 1,16
    assert_success
    a=${lines[0]%%recall=*}
    b=${lines[1]%%recall=*}
    [ "${#a}" -eq "${#b}" ] || fail "not aligned:\n$output"
}

@test "--json prints one object per setting with the standard names" {
    command -v python3 >/dev/null || skip "python3 is not installed"
    run --separate-stderr annsearch --json ivf.ann q.fbin -k 10 --truth truth.ivecs --n-probes 2,32
    assert_success
    [ "${#lines[@]}" -eq 2 ]
    printf '%s\n' "$output" | python3 -c '
import json, sys
rows = [json.loads(line) for line in sys.stdin]
assert [r["n_probes"] for r in rows] == [2, 32], rows
for r in rows:
    for key in ("recall", "qps", "k", "algo", "max_codes", "search_mode", "seconds", "n_queries"):
        assert key in r, (key, r)
    assert r["k"] == 10 and r["algo"] == "ivf_flat" and r["n_queries"] == 100, r
    assert isinstance(r["qps"], (int, float)) and r["qps"] > 0, r
assert rows[1]["recall"] == 1.0, rows
assert 0 <= rows[0]["recall"] <= 1, rows
'
    # Without truth, recall is null.
    run annsearch --json bf.ann q.fbin -k 5
    printf '%s\n' "$output" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
assert r["recall"] is None and r["algo"] == "brute_force" and r["k"] == 5, r'
}

@test "--tsv prints a header and tab-separated rows" {
    run --separate-stderr annsearch --tsv ivf.ann q.fbin -k 10 --truth truth.ivecs --n-probes 1,4,32
    assert_success
    [ "${#lines[@]}" -eq 4 ]
    assert_line --index 0 --regexp '^n_probes	.*	k	recall	qps	seconds$'
    printf '%s\n' "$output" | awk -F'\t' 'NR == 1 { n = NF } NF != n { print "line " NR; bad = 1 } END { exit bad }'
    [ "$(printf '%s\n' "${lines[3]}" | cut -f1)" = 32 ]
}

@test "-o writes the neighbours in every format, int32 when they fit" {
    n=0
    for out in r.ivecs r.ibin r.npy r.txt r.hdf5:ids; do
        n=$((n + 1))
        annsearch bf.ann q.fbin -k 10 -o "$out"
        annconvert "$out" "back$n.txt"
        same_numbers truth.txt "back$n.txt"
    done
    run annconvert --info r.npy
    assert_line "dtype: i32"
    run -2 annsearch bf.ann q.fbin -k 10 -o r.fvecs
    [ ! -e r.fvecs ]
    run -2 annsearch bf.ann q.fbin -k 10 -o r.bin --distances r.bin
    assert_no_temporaries
}

@test "-o FILE.hdf5 writes neighbors and distances as ann-benchmarks files have them" {
    annconvert base.fbin bench.hdf5:train
    annconvert q.fbin bench.hdf5:test
    annbuild --algo brute_force --metric euclidean bench.hdf5:train -o l2.ann
    annsearch l2.ann bench.hdf5:test -k 10 -o bench.hdf5
    run annconvert --info bench.hdf5
    assert_line "distance: euclidean"
    assert_line --regexp '^  neighbors +100 x 10 i32$'
    assert_line --regexp '^  distances +100 x 10 f32$'
    assert_line --regexp '^  train +2000 x 16 f32$'
    annconvert bench.hdf5:neighbors n.txt
    same_numbers truth.txt n.txt
    # The same file as ground truth: both recalls, the base vectors from :train.
    run --separate-stderr annsearch ivf.ann bench.hdf5:test -k 10 --truth bench.hdf5 --n-probes 32
    assert_success
    [ "$(field recall "$output")" = "1.0000" ] || fail "$output"
    [ "$(field recall_threshold "$output")" = "1.0000" ] || fail "$output"
    # The datasets are replaced only with -f.
    run annsearch l2.ann bench.hdf5:test -k 10 -o bench.hdf5
    assert_failure 1
    assert_output --partial "-f"
    annsearch -f l2.ann bench.hdf5:test -k 5 -o bench.hdf5
    run annconvert --info bench.hdf5
    assert_line --regexp '^  neighbors +100 x 5 i32$'
    assert_no_temporaries
}

@test "ids and distances can go to two datasets of one HDF5 file" {
    annsearch bf.ann q.fbin -k 10 -o r.hdf5:ids --distances r.hdf5:dists
    run annconvert --info r.hdf5
    assert_line --regexp '^  ids +100 x 10 i32$'
    assert_line --regexp '^  dists +100 x 10 f32$'
    annconvert r.hdf5:ids ids.txt
    same_numbers truth.txt ids.txt
    annsearch bf.ann q.fbin -k 10 --distances d.txt
    annconvert r.hdf5:dists d2.txt
    cmp d.txt d2.txt
    run annsearch bf.ann q.fbin -k 10 -o r.hdf5:ids2 --distances r.hdf5:dists
    assert_failure 1
    assert_output --partial "'dists' exists"
    run annconvert --info r.hdf5
    refute_line --partial "ids2"
    assert_no_temporaries
}

@test "a cosine index marks its HDF5 results angular; sqeuclidean sets no attribute" {
    annbuild --algo brute_force --metric cosine base.fbin -o cos.ann
    annsearch cos.ann q.fbin -k 3 -o c.hdf5
    run annconvert --info c.hdf5
    assert_line "distance: angular"
    annsearch bf.ann q.fbin -k 3 -o s.hdf5
    run annconvert --info s.hdf5
    refute_line --partial "distance:"
}

@test "--data gives the ann-benchmarks recall, which credits ties" {
    run annsearch ivf.ann q.fbin -k 10 --truth truth.ivecs --data base.fbin --n-probes 1,32
    assert_success
    r1=$(field recall "${lines[0]}")
    t1=$(field recall_threshold "${lines[0]}")
    awk -v r="$r1" -v t="$t1" 'BEGIN { exit !(t >= r) }' || fail "$output"
    [ "$(field recall_threshold "${lines[1]}")" = "1.0000" ]
    # Every base row twice (row i + 2000 is row i): the exact search returns
    # the 5 nearest points twice each, so only half of the true ids match,
    # but every returned distance is within the 10th true distance.
    annconvert base.fbin - >a.txt
    cat a.txt a.txt | annconvert - dup.fbin
    annbuild --algo brute_force dup.fbin -o dup.ann
    run annsearch dup.ann q.fbin -k 10 --truth truth.ivecs --data dup.fbin
    assert_success
    [ "$(field recall "$output")" = "0.5000" ] || fail "$output"
    [ "$(field recall_threshold "$output")" = "1.0000" ] || fail "$output"
    run -2 annsearch ivf.ann q.fbin -k 10 --data base.fbin
}

@test "queries whose dimension differs from the index fail with the DESIGN message" {
    "$GEN" -n 10 -q 0 -d 8 q8.fbin
    run --separate-stderr annsearch bf.ann q8.fbin -k 3
    assert_failure 1
    [ "$stderr" = "annsearch: 'q8.fbin': dimension 8 does not match index dimension 16" ] || fail "stderr: $stderr"
    [ -z "$output" ]
}

@test "--device cuda without a GPU exits 3" {
    if have_gpu; then
        annsearch --device cuda bf.ann q.fbin -k 3
        skip "a GPU is present: --device cuda ran"
    fi
    run --separate-stderr annsearch --device cuda bf.ann q.fbin -k 3 -o r.ivecs
    assert_failure 3
    [[ "$stderr" == "annsearch: "*"cuda"* ]] || fail "stderr: $stderr"
    [ -z "$output" ]
    [ ! -e r.ivecs ]
    assert_no_temporaries
}

@test "-o needs -f to replace a file" {
    annsearch bf.ann q.fbin -k 10 -o r.ivecs
    cp r.ivecs before.ivecs
    run --separate-stderr annsearch bf.ann q.fbin -k 3 -o r.ivecs
    assert_failure 1
    [[ "$stderr" == "annsearch: 'r.ivecs': "*"-f"* ]] || fail "stderr: $stderr"
    cmp r.ivecs before.ivecs
    annsearch -f bf.ann q.fbin -k 3 -o r.ivecs
    run annconvert --info r.ivecs
    assert_line "shape: 100 x 3"
    assert_no_temporaries
}

@test "-o - prints the neighbours on stdout and the result line on stderr" {
    run --separate-stderr annsearch bf.ann q.fbin -k 10 --truth truth.txt -o -
    assert_success
    [ "${#lines[@]}" -eq 100 ]
    printf '%s\n' "$output" >ids.txt
    same_numbers truth.txt ids.txt
    [[ "$stderr" == *"recall=1.0000"* ]] || fail "stderr: $stderr"
}

@test "--batch and --repeat change the timing, not the results" {
    annsearch ivf.ann q.fbin -k 10 --n-probes 4 -o a.txt
    annsearch ivf.ann q.fbin -k 10 --n-probes 4 --batch 7 -o b.txt
    annsearch ivf.ann q.fbin -k 10 --n-probes 4 --batch 1K --repeat 3 -o c.txt
    annsearch ivf.ann q.fbin -k 10 --n-probes 4 --batch 64GiB -o d.txt
    cmp a.txt b.txt
    cmp a.txt c.txt
    cmp a.txt d.txt
    run annsearch --json ivf.ann q.fbin -k 10 --batch 7 --repeat 2
    assert_output --partial '"batch":7,"repeat":2'
}

@test "k larger than the index fills the empty slots with -1" {
    annbuild --algo brute_force --rows :5 base.fbin -o five.ann
    annsearch five.ann q.fbin -k 7 -o r.txt
    awk '{ if ($6 != -1 || $7 != -1 || $5 == -1) { print "row " NR ": " $0; bad = 1 } } END { exit bad }' r.txt
}

@test "usage errors exit 2" {
    run -2 annsearch bf.ann q.fbin
    assert_output --partial "-k"
    run -2 annsearch bf.ann q.fbin -k 0
    run -2 annsearch bf.ann q.fbin -k ten
    run -2 annsearch bf.ann -k 3
    run -1 annsearch bf.ann q.fbin extra -k 3   # two shards and the queries 'extra': no such file
    run -2 annsearch ivf.ann q.fbin -k 3 --n-probes 0
    assert_output --partial "n_probes"
    run -2 annsearch ivf.ann q.fbin -k 3 --n-probes 1,x
    run -2 annsearch ivf.ann q.fbin -k 3 --n-lists 4
    run -2 annsearch bf.ann q.fbin -k 3 --n-probes 4
    assert_output --partial "does not apply to brute_force indexes"
    run -2 annsearch bf.ann q.fbin -k 3 --batch 0
    run -2 annsearch bf.ann q.fbin -k 3 --json --repeat 0
}

@test "ground truth with too few rows or columns is a data error" {
    annconvert --rows :50 truth.ivecs short.ivecs
    run --separate-stderr annsearch bf.ann q.fbin -k 3 --truth short.ivecs
    assert_failure 1
    [[ "$stderr" == *"short.ivecs"* ]] || fail "stderr: $stderr"
    run --separate-stderr annsearch bf.ann q.fbin -k 20 --truth truth.ivecs
    assert_failure 1
    [[ "$stderr" == *"truth.ivecs"*"k = 20"* ]] || fail "stderr: $stderr"
}

@test "an index file with a flipped byte is rejected with the file named" {
    size=$(stat -c %s bf.ann)
    "$GEN" flip bf.ann $((size / 2))
    run --separate-stderr annsearch bf.ann q.fbin -k 3 -o r.ivecs
    assert_failure 1
    [[ "$stderr" == "annsearch: "*"'bf.ann'"* ]] || fail "stderr: $stderr"
    [ ! -e r.ivecs ]
    assert_no_temporaries
    : >empty.ann
    run --separate-stderr annsearch empty.ann q.fbin -k 3
    assert_failure 1
    [[ "$stderr" == *"'empty.ann'"* ]] || fail "stderr: $stderr"
    run --separate-stderr annsearch q.fbin q.fbin -k 3
    assert_failure 1
    [[ "$stderr" == *"'q.fbin'"* ]] || fail "stderr: $stderr"
}

@test "--help lists the search parameters, and -v the load time" {
    run annsearch --help
    assert_output --partial "--n-probes N"
    assert_output --partial "matrix|csr|auto, default auto"
    run --separate-stderr annsearch -v ivf.ann q.fbin -k 3
    assert_success
    [[ "$stderr" == *"annsearch: loaded 'ivf.ann': ivf_flat, 2000 rows x 16 dim"* ]] || fail "stderr: $stderr"
}

@test "shards built with --rows search as one index: same ids and distances as the whole" {
    annbuild --algo brute_force --rows :700 base.fbin -o s0.ann
    annbuild --algo brute_force --rows 700:1500 base.fbin -o s1.ann
    annbuild --algo brute_force --rows 1500: base.fbin -o s2.ann
    annconvert --info s1.ann | grep -qx '  row_offset=700' || fail "$(annconvert --info s1.ann)"
    annconvert --info s0.ann | grep -q row_offset && fail "row_offset written for offset 0"
    annsearch bf.ann q.fbin -k 10 -o whole.ivecs --distances whole_d.fbin
    # operands in any order
    annsearch s2.ann s0.ann s1.ann q.fbin -k 10 -o sh.ivecs --distances sh_d.fbin
    cmp whole.ivecs sh.ivecs || fail "ids differ"
    cmp whole_d.fbin sh_d.fbin || fail "distances differ"
    run annsearch s0.ann s1.ann s2.ann q.fbin -k 10 --truth truth.ivecs
    assert_success
    [ "$(recall_of "$output")" = "1.0000" ] || fail "$output"
    # one shard alone returns global row numbers
    annsearch s2.ann q.fbin -k 10 -o one.txt
    awk '{ for (j = 1; j <= NF; j++) if ($j < 1500 || $j >= 2000) { print "row " NR ": " $j; bad = 1 } }
        END { exit bad }' one.txt
}

@test "shards: inner_product merges largest first; IVF-Flat shards; JSON lists every index" {
    annbuild --algo brute_force --metric inner_product base.fbin -o ip.ann
    annbuild --algo brute_force --metric inner_product --rows :1000 base.fbin -o ip0.ann
    annbuild --algo brute_force --metric inner_product --rows 1000: base.fbin -o ip1.ann
    annsearch ip.ann q.fbin -k 10 -o a.txt
    annsearch ip0.ann ip1.ann q.fbin -k 10 -o b.txt
    same_numbers a.txt b.txt
    annbuild --algo ivf_flat --n-lists 8 --rows :1000 base.fbin -o v0.ann
    annbuild --algo ivf_flat --n-lists 8 --rows 1000: base.fbin -o v1.ann
    annsearch v0.ann v1.ann q.fbin -k 10 --n-probes 8 -o c.txt
    same_numbers truth.txt c.txt
    run --separate-stderr annsearch --json v0.ann v1.ann q.fbin -k 10 --n-probes 2
    assert_success
    [[ "$output" == *'"index":["v0.ann","v1.ann"]'* ]] || fail "$output"
}

@test "shards: a filter over the global rows; overlapping or unlike shards are refused" {
    annbuild --algo brute_force --rows :1000 base.fbin -o s0.ann
    annbuild --algo brute_force --rows 1000: base.fbin -o s1.ann
    # allow the odd rows only (ids are global)
    seq 1 2 1999 >odd.txt
    annsearch bf.ann q.fbin -k 10 --allow odd.txt -o a.txt
    annsearch s0.ann s1.ann q.fbin -k 10 --allow odd.txt -o b.txt
    same_numbers a.txt b.txt
    awk '{ for (j = 1; j <= NF; j++) if ($j % 2 == 0) bad = 1 } END { exit bad }' b.txt || fail "even id returned"
    run --separate-stderr annsearch s0.ann s0.ann q.fbin -k 10
    [ "$status" -eq 1 ] || fail "overlap: status $status"
    [[ "$stderr" == *overlap* ]] || fail "$stderr"
    annbuild --algo ivf_flat --n-lists 8 --rows 1000: base.fbin -o v1.ann
    run --separate-stderr annsearch s0.ann v1.ann q.fbin -k 10
    [ "$status" -eq 1 ] || fail "unlike shards: status $status"
    [[ "$stderr" == *"same algorithm"* ]] || fail "$stderr"
}

@test "IVF-Flat takes filters: no filtered id comes back, all probes equal the filtered exact answer" {
    seq 0 3 1999 >allow.txt
    annsearch bf.ann q.fbin -k 10 --allow allow.txt -o a.txt
    annsearch ivf.ann q.fbin -k 10 --allow allow.txt --n-probes 32 -o b.txt
    same_numbers a.txt b.txt
    annsearch ivf.ann q.fbin -k 10 --allow allow.txt --n-probes 2 -o c.txt
    awk '{ for (j = 1; j <= NF; j++) if ($j != -1 && $j % 3 != 0) bad = 1 } END { exit bad }' c.txt ||
        fail "filtered id returned"
}

@test "cagra shards without their vectors take the whole dataset with --data" {
    annbuild --algo cagra --build-algo brute_force --graph-degree 16 --intermediate-graph-degree 32 \
        --no-dataset --rows :1200 base.fbin -o c0.ann
    annbuild --algo cagra --build-algo brute_force --graph-degree 16 --intermediate-graph-degree 32 \
        --no-dataset --rows 1200: base.fbin -o c1.ann
    run -1 annsearch c0.ann c1.ann q.fbin -k 10
    run --separate-stderr annsearch c0.ann c1.ann q.fbin -k 10 --data base.fbin --truth truth.ivecs --itopk-size 64
    assert_success
    r=$(recall_of "$output")
    awk -v r="$r" 'BEGIN { exit !(r >= 0.95) }' || fail "recall $r"
    head -c 800 base.fbin >short.fbin   # not a vector file of enough rows
    run -1 annsearch c0.ann c1.ann q.fbin -k 10 --data short.fbin --truth truth.ivecs
}
