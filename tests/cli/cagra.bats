#!/usr/bin/env bats
# CAGRA end to end: annbuild --algo cagra from --graph and from each
# --build-algo (iterative, and what auto chooses), the degree rules,
# annsearch sweeps with comma lists, --filter / --allow, indexes without
# their vectors, cuVS version-5 files through annconvert (with source
# indices: content_map bit 1), corrupt files and the exit statuses of
# the contract.

load common

setup_file() {
    cd "$BATS_FILE_TMPDIR" || return 1
    # 3000 x 16 in 30 clusters, 100 queries; exact neighbours from the
    # independent oracle in gen_data.c.
    "$ANNKIT_GEN_DATA" -n 3000 -q 100 -d 16 -c 30 -s 11 -x 2 base.fbin q.fbin
    "$ANNKIT_GEN_DATA" knn -k 10 base.fbin q.fbin >truth.txt
    export PATH="$ANNKIT_BIN_DIR:$PATH"
    annconvert truth.txt truth.ivecs
    anngraph --algo nn_descent --graph-degree 32 --intermediate-graph-degree 48 base.fbin -o base.knn
    annbuild --algo cagra --graph-degree 16 --intermediate-graph-degree 32 base.fbin -o cagra.ann
}

setup() {
    common_setup
    cp "$BATS_FILE_TMPDIR"/{base.fbin,q.fbin,truth.txt,truth.ivecs,base.knn,cagra.ann} .
}

recall_of() {
    field recall "$1"
}

at_least() { # $1 value, $2 floor, $3 what
    awk -v r="$1" -v f="$2" 'BEGIN { exit !(r >= f) }' || fail "$3: $1 < $2"
}

@test "annbuild --algo cagra from each builder and from --graph: high recall" {
    for how in "--build-algo nn_descent" "--build-algo brute_force" "--build-algo auto" "--build-algo iterative" \
        "--graph base.knn"; do
        run --separate-stderr annbuild -v --algo cagra $how --graph-degree 16 --intermediate-graph-degree 32 \
            base.fbin -o x.ann
        assert_success
        [[ "$stderr" == *"built cagra index: 3000 rows x 16 dim, graph degree 16"* ]] || fail "$how: $stderr"
        run annsearch x.ann q.fbin -k 10 --truth truth.ivecs
        assert_success
        at_least "$(recall_of "$output")" 0.95 "recall with $how"
        rm -f x.ann
    done
    assert_no_temporaries
}

@test "annconvert --info shows a cagra index and its sections" {
    run annconvert --info cagra.ann
    assert_success
    assert_line "algorithm: cagra"
    assert_output --partial "graph_degree=16"
    assert_output --regexp "graph +[0-9]+ +192000"
    assert_output --regexp "data +[0-9]+ +192000"
}

@test "degree rules: a small dataset clamps the degrees, one row is an error" {
    annconvert --rows :20 base.fbin small.fbin
    run --separate-stderr annbuild -v --algo cagra small.fbin -o small.ann
    assert_success
    [[ "$stderr" == *"lowered to rows - 1 = 19"* ]] || fail "$stderr"
    [[ "$stderr" == *"graph degree 19"* ]] || fail "$stderr"
    annconvert --rows :1 base.fbin one.fbin
    run annbuild --algo cagra one.fbin -o one.ann
    assert_failure 1
    assert_output --partial "at least 2"
    [ ! -e one.ann ]
}

@test "--graph must match the dataset, and other algorithms refuse it" {
    annconvert --rows :2000 base.fbin part.fbin
    run annbuild --algo cagra --graph base.knn part.fbin -o x.ann
    assert_failure 1
    assert_output --partial "base.knn"
    run annbuild --algo cagra --graph base.knn --metric inner_product base.fbin -o x.ann
    assert_failure 1
    assert_output --partial "metric"
    run annbuild --algo cagra --graph missing.knn base.fbin -o x.ann
    assert_failure 1
    assert_output --partial "missing.knn"
    run annbuild --algo ivf_flat --graph base.knn base.fbin -o x.ann
    assert_failure 2
    run annbuild --algo brute_force --no-dataset base.fbin -o x.ann
    assert_failure 2
    [ ! -e x.ann ]
    assert_no_temporaries
}

@test "--build-algo ivf_pq reaches the recall of the other builders; --guarantee-connectivity builds" {
    run annbuild --algo cagra --build-algo ivf_pq --graph-degree 16 --intermediate-graph-degree 32 base.fbin \
        -o pq.ann
    assert_success
    run annsearch pq.ann q.fbin -k 10 --truth truth.ivecs
    at_least "$(recall_of "$output")" 0.95 "recall with the ivf_pq graph"
    run annbuild --algo cagra --build-algo ivf_pq --metric l1 base.fbin -o x.ann
    assert_failure 3
    [ ! -e x.ann ] || fail "ivf_pq left x.ann"
    run annbuild --algo cagra --guarantee-connectivity true --graph-degree 16 --intermediate-graph-degree 32 \
        base.fbin -o t.ann
    assert_success
    run annsearch t.ann q.fbin -k 10 --truth truth.ivecs
    at_least "$(recall_of "$output")" 0.95 "recall with the spanning tree"
    run annconvert --info t.ann
    assert_output --partial "guarantee_connectivity=1"
    run annbuild --algo cagra --build-algo bogus base.fbin -o x.ann
    assert_failure 2
    run annbuild --algo cagra --graph-degree 0 base.fbin -o x.ann
    assert_failure 2
    assert_no_temporaries
}

@test "--build-algo iterative: rounds logged, recall floor, same index twice, cosine" {
    run --separate-stderr annbuild -v --algo cagra --build-algo iterative --graph-degree 16 \
        --intermediate-graph-degree 32 --guarantee-connectivity true base.fbin -o it.ann
    assert_success
    # 3000 rows, degree 16: n0 = 750, rounds at 1500, 3000, 3000 (degree 16) and the final one (k = 33)
    [[ "$stderr" == *"cagra iterative: 4 rounds from a 750-row graph"* ]] || fail "$stderr"
    [[ "$stderr" == *"round 4/4: 3000 queries on 3000 rows"*"k 33"*"connected"* ]] || fail "$stderr"
    run annsearch it.ann q.fbin -k 10 --truth truth.ivecs --itopk-size 64
    assert_success
    at_least "$(recall_of "$output")" 0.95 "recall of the iterative graph"
    annbuild --algo cagra --build-algo iterative --graph-degree 16 --intermediate-graph-degree 32 \
        --guarantee-connectivity true --threads 1 base.fbin -o it1.ann
    cmp it.ann it1.ann || fail "the iterative build differs between 2 threads and 1"
    # cosine (which cuVS refuses) builds, every round by cosine
    annbuild --algo cagra --build-algo iterative --metric cosine --graph-degree 16 --intermediate-graph-degree 32 \
        base.fbin -o c.ann
    annbuild --algo brute_force --metric cosine base.fbin -o cbf.ann
    annsearch cbf.ann q.fbin -k 10 -o ctruth.ibin
    run annsearch c.ann q.fbin -k 10 --truth ctruth.ibin --itopk-size 64
    assert_success
    at_least "$(recall_of "$output")" 0.95 "recall of the iterative cosine graph"
    # two rows: the smallest graph the builder starts from
    annconvert --rows :2 base.fbin two.fbin
    run --separate-stderr annbuild -v --algo cagra --build-algo iterative two.fbin -o two.ann
    assert_success
    [[ "$stderr" == *"graph degree 1"* ]] || fail "$stderr"
    assert_no_temporaries
}

@test "--build-algo auto: brute_force for small data; nn_descent or ivf_pq by the host memory, logged at -v" {
    run --separate-stderr annbuild -v --algo cagra --graph-degree 16 --intermediate-graph-degree 32 \
        base.fbin -o a.ann
    assert_success
    [[ "$stderr" == *"build_algo auto: brute_force (rows^2 x dim"* ]] || fail "$stderr"
    # 70000 x 9: rows^2 x dim = 4.4e10 is above the exact builder's limit; NN-Descent's model needs about
    # 130 MB of host memory, more than --max-host-memory 48M allows (IVF-PQ's model, about 28 MB, fits the
    # 38.4 MB left after its headroom of 0.20): auto takes ivf_pq
    "$GEN" -n 70000 -d 9 -c 30 -s 5 big.fbin
    run --separate-stderr annbuild -v --algo cagra --graph-degree 16 --intermediate-graph-degree 32 \
        --max-host-memory 48M big.fbin -o big.ann
    [ "$status" -eq 0 ] || fail "status $status: $stderr"
    [[ "$stderr" == *"build_algo auto: ivf_pq (NN-Descent does not fit"* ]] || fail "$stderr"
    [ -e big.ann ]
    assert_no_temporaries
}

@test "sweeps: comma lists give one line per setting, recall grows with itopk" {
    run --separate-stderr annsearch --tsv cagra.ann q.fbin -k 10 --truth truth.ivecs \
        --itopk-size 32,64,128 --max-iterations 0,4
    assert_success
    [ "${#lines[@]}" -eq 7 ] || fail "$output"
    [[ "${lines[0]}" == itopk_size* ]] || fail "header: ${lines[0]}"
    r32=$(awk -F'\t' 'NR == 2 { print $15 }' <<<"$output")
    r128=$(awk -F'\t' 'NR == 6 { print $15 }' <<<"$output")
    at_least "$r128" 0.98 "recall at itopk 128"
    at_least "$r128" "$r32" "recall at 128 vs 32"
    run annsearch --json cagra.ann q.fbin -k 10 --truth truth.ivecs --search-width 1,4 --num-random-samplings 2
    assert_success
    [ "${#lines[@]}" -eq 2 ]
    [[ "${lines[1]}" == *'"algo":"cagra"'*'"search_width":4'* ]] || fail "${lines[1]}"
    # GPU-only knobs are accepted (and ignored on the CPU); bad values are usage errors
    run annsearch cagra.ann q.fbin -k 10 --team-size 8 --thread-block-size 128 --search-algo multi_cta \
        --hashmap-mode hash --max-queries 10
    assert_success
    run annsearch cagra.ann q.fbin -k 10 --team-size 5
    assert_failure 1
    run annsearch cagra.ann q.fbin -k 10 --itopk-size 0
    assert_failure 2
    run annsearch cagra.ann q.fbin -k 10 --n-probes 4
    assert_failure 2
}

@test "results are sorted, repeatable across thread counts, and distances are squared L2" {
    annsearch --threads 1 cagra.ann q.fbin -k 10 -o a.txt --distances ad.txt
    annsearch --threads 2 cagra.ann q.fbin -k 10 -o b.txt --distances bd.txt
    same_numbers a.txt b.txt
    same_numbers ad.txt bd.txt
    awk '{ for (j = 2; j <= NF; j++) if ($j < $(j - 1)) { print NR; bad = 1 } } END { exit bad }' ad.txt
    "$ANNKIT_GEN_DATA" knn -k 10 -D base.fbin q.fbin >td.txt
    # the nearest neighbour's distance matches the oracle's on (nearly) every query
    n=$(paste td.txt ad.txt | awk '{ e = $1 - $11; if (e < 0) e = -e; if (e <= 1e-3 * ($1 + 1)) ok++ } END { print ok }')
    [ "$n" -ge 98 ] || fail "$n of 100 first distances match"
}

@test "--filter: filtered rows are never returned; >90% filtered is exact brute force" {
    # bit i of byte i/8: 0x55 keeps the even rows
    head -c 375 /dev/zero | tr '\000' '\125' >even.bits
    annsearch cagra.ann q.fbin -k 10 --filter even.bits -o ids.txt
    awk '{ for (j = 1; j <= NF; j++) if ($j % 2) { print "odd id " $j; bad = 1 } } END { exit bad }' ids.txt
    # keep 100 rows (>96% filtered): the brute-force path, which -v reports, gives the exact answer
    { head -c 12 /dev/zero | tr '\000' '\377'; printf '\017'; head -c 362 /dev/zero; } >few.bits
    run --separate-stderr annsearch -v cagra.ann q.fbin -k 5 --filter few.bits -o few.txt
    assert_success
    [[ "$stderr" == *"filtered brute force"* ]] || fail "$stderr"
    seq 0 99 >allowed.txt
    annbuild --algo brute_force base.fbin -o bf.ann
    annsearch bf.ann q.fbin -k 5 --allow allowed.txt -o bf_few.txt
    same_numbers few.txt bf_few.txt
    awk '{ for (j = 1; j <= NF; j++) if ($j >= 100) { bad = 1 } } END { exit bad }' few.txt
    # a bitset of the wrong size is a data error
    head -c 100 /dev/zero >short.bits
    run annsearch cagra.ann q.fbin -k 10 --filter short.bits
    assert_failure 1
    assert_output --partial "short.bits"
}

@test "--allow takes text lists and vector files; bad ids are refused; ivf_flat filters too" {
    printf '5 17, 250\n# a comment\n2999\n' >allow.txt
    run annsearch cagra.ann q.fbin -k 4 --allow allow.txt -o ids.txt
    assert_success
    awk '{ for (j = 1; j <= NF; j++) if ($j != 5 && $j != 17 && $j != 250 && $j != 2999) bad = 1 } END { exit bad }' ids.txt
    printf '5\n17\n250\n2999\n' | annconvert --dtype i32 - allow.ibin
    run annsearch cagra.ann q.fbin -k 4 --allow allow.ibin -o ids2.txt
    assert_success
    same_numbers ids.txt ids2.txt
    printf '3000\n' >bad.txt
    run annsearch cagra.ann q.fbin -k 4 --allow bad.txt
    assert_failure 1
    assert_output --partial "3000"
    printf 'x\n' >junk.txt
    run annsearch cagra.ann q.fbin -k 4 --allow junk.txt
    assert_failure 1
    run annsearch cagra.ann q.fbin -k 4 --allow allow.txt --filter allow.txt
    assert_failure 2
    annbuild --algo ivf_flat --n-lists 8 base.fbin -o ivf.ann
    run annsearch ivf.ann q.fbin -k 4 --allow allow.txt -o ivf_ids.txt
    assert_success
    awk '{ for (j = 1; j <= NF; j++) if ($j != 5 && $j != 17 && $j != 250 && $j != 2999 && $j != -1) bad = 1 } END { exit bad }' ivf_ids.txt
}

@test "--no-dataset: the index needs --data, which must match" {
    run annbuild --algo cagra --no-dataset --graph-degree 16 --intermediate-graph-degree 32 base.fbin -o g.ann
    assert_success
    [ "$(stat -c %s g.ann)" -lt "$(stat -c %s cagra.ann)" ]
    run annsearch g.ann q.fbin -k 10
    assert_failure 1
    assert_output --partial "--data"
    run annsearch g.ann q.fbin -k 10 --data base.fbin --truth truth.ivecs
    assert_success
    at_least "$(recall_of "$output")" 0.95 "recall with --data"
    annsearch g.ann q.fbin -k 10 --data base.fbin -o g.txt
    annsearch cagra.ann q.fbin -k 10 -o c.txt
    same_numbers g.txt c.txt
    annconvert --rows :2999 base.fbin fewer.fbin
    run annsearch g.ann q.fbin -k 10 --data fewer.fbin
    assert_failure 1
    assert_output --partial "rows"
    # an index with its vectors still wants --truth with --data
    run annsearch cagra.ann q.fbin -k 10 --data base.fbin
    assert_failure 2
}

@test "cuVS CAGRA files: export with and without the dataset, import, same answers" {
    annconvert --to cagra-v5 cagra.ann x.cuvs
    annconvert --to cagra-v5 --no-dataset cagra.ann g.cuvs
    [ "$(head -c 3 x.cuvs)" = "<f4" ]
    [ "$(od -A n -t x1 -j 3 -N 7 x.cuvs | tr -d ' ')" = "00934e554d5059" ]
    run annconvert --info x.cuvs
    assert_success
    assert_line "format: cuvs-cagra (serialization version 5)"
    assert_line "graph degree: 16"
    assert_line "dataset: included"
    run annconvert --info g.cuvs
    assert_line "dataset: not included"
    annconvert x.cuvs back.ann
    annconvert --compress g.cuvs gback.ann
    annsearch cagra.ann q.fbin -k 10 -o a.txt
    annsearch back.ann q.fbin -k 10 -o b.txt
    annsearch gback.ann q.fbin -k 10 --data base.fbin -o c.txt
    same_numbers a.txt b.txt
    same_numbers a.txt c.txt
    # the round trip is byte-identical
    annconvert --to cagra-v5 back.ann y.cuvs
    cmp x.cuvs y.cuvs
    # not a cagra index; existing output; euclidean has no cuVS counterpart
    annbuild --algo brute_force base.fbin -o bf.ann
    run annconvert --to cagra-v5 bf.ann z.cuvs
    assert_failure 1
    run annconvert --to cagra-v5 cagra.ann x.cuvs
    assert_failure 1
    annbuild --algo cagra --metric euclidean --graph-degree 8 --intermediate-graph-degree 16 base.fbin -o e.ann
    run annconvert --to cagra-v5 e.ann e.cuvs
    assert_failure 3
    run annconvert --to cagra-v5 --rows :10 cagra.ann w.cuvs
    assert_failure 2
    assert_no_temporaries
}

# The npy 1.0 header of a '<u4' vector of $1 values, written by hand from
# the npy rules (notes/algorithms.md 0.5): magic, version 1.0, header
# length (little-endian u16), the dict, spaces and a newline up to a
# multiple of 64 bytes.
npy_u4_header() {
    local dict="{'descr': '<u4', 'fortran_order': False, 'shape': ($1,)}"
    local pad=$((64 - (10 + ${#dict} + 1) % 64))
    local hlen=$((${#dict} + pad + 1))
    printf '\223NUMPY\001\000'
    printf "\\$(printf %03o $((hlen & 255)))\\$(printf %03o $((hlen >> 8)))"
    printf '%s%*s\n' "$dict" "$pad" ''
}

# A cuVS CAGRA file with source indices by hand: $1 the cuVS file without
# them, $2 its graph-only twin (whose last 4 bytes are content_map, at the
# same offset in $1), $3 a text list of the rows' ids, $4 the output.
# content_map gets bit 1 and the (rows,) uint32 array goes at the end.
add_source_indices() {
    local cm=$(($(stat -c %s "$2") - 4))
    local n
    n=$(wc -l <"$3")
    cp "$1" "$4"
    local bits
    bits=$(od -A n -t u1 -j "$cm" -N 1 "$1" | tr -d ' ')
    printf "\\$(printf %03o $((bits | 2)))" | dd of="$4" bs=1 seek="$cm" conv=notrunc status=none
    npy_u4_header "$n" >>"$4"
    annconvert -f --dtype i32 "$3" ids.ibin # 8-byte header (rows, 1), then the ids as little-endian int32
    tail -c +9 ids.ibin >>"$4"
}

@test "cuVS files with source indices: import, mapped ids, filters over ids, extend, byte-identical export" {
    annconvert --to cagra-v5 cagra.ann x.cuvs
    annconvert --to cagra-v5 --no-dataset cagra.ann g.cuvs
    # a permutation: row r has id 2999 - r
    seq 2999 -1 0 >perm.txt
    add_source_indices x.cuvs g.cuvs perm.txt p.cuvs
    [ "$(stat -c %s p.cuvs)" -eq $(($(stat -c %s x.cuvs) + 128 + 12000)) ]
    run annconvert --info p.cuvs
    assert_success
    assert_line "dataset: included"
    assert_line "source indices: included (ids below 3000)"
    run annconvert --info x.cuvs
    assert_line "source indices: not included"
    run --separate-stderr annconvert -v p.cuvs p.ann
    assert_success
    [[ "$stderr" == *"with source indices"* ]] || fail "$stderr"
    run annconvert --info p.ann
    assert_output --regexp "ids +[0-9]+ +24000"
    # every id is 2999 - the row the index without source indices returns
    annsearch cagra.ann q.fbin -k 10 -o rows.txt --distances rd.txt
    annsearch p.ann q.fbin -k 10 -o ids.txt --distances id.txt
    awk '{ for (j = 1; j <= NF; j++) $j = 2999 - $j; print }' rows.txt >want.txt
    same_numbers want.txt ids.txt
    same_numbers rd.txt id.txt
    # filters are over the ids: keeping even ids keeps odd rows (2999 - r even)
    head -c 375 /dev/zero | tr '\000' '\125' >even.bits
    head -c 375 /dev/zero | tr '\000' '\252' >odd.bits
    annsearch p.ann q.fbin -k 10 --filter even.bits -o f_ids.txt
    awk '{ for (j = 1; j <= NF; j++) if ($j % 2) { print "odd id " $j; bad = 1 } } END { exit bad }' f_ids.txt
    annsearch cagra.ann q.fbin -k 10 --filter odd.bits -o f_rows.txt
    awk '{ for (j = 1; j <= NF; j++) $j = 2999 - $j; print }' f_rows.txt >f_want.txt
    same_numbers f_want.txt f_ids.txt
    # more than 90 % filtered out: the filtered brute force returns ids too
    seq 0 99 >allowed.txt
    run --separate-stderr annsearch -v p.ann q.fbin -k 5 --allow allowed.txt -o few.txt
    assert_success
    [[ "$stderr" == *"filtered brute force"* ]] || fail "$stderr"
    awk '{ for (j = 1; j <= NF; j++) if ($j < 0 || $j >= 100) { print "id " $j; bad = 1 } } END { exit bad }' few.txt
    seq 2900 2999 >allowed_rows.txt
    annsearch cagra.ann q.fbin -k 5 --allow allowed_rows.txt -o few_rows.txt
    awk '{ for (j = 1; j <= NF; j++) $j = 2999 - $j; print }' few_rows.txt >few_want.txt
    same_numbers few_want.txt few.txt
    # export: byte-identical to the hand-written file, through a compressed index too
    annconvert --to cagra-v5 p.ann back.cuvs
    cmp p.cuvs back.cuvs
    annconvert --compress p.cuvs pz.ann
    annconvert --to cagra-v5 pz.ann backz.cuvs
    cmp p.cuvs backz.cuvs
    # graph only, with sparse ids: row r has id 1000 + 7 r
    seq 1000 7 21993 >sparse.txt
    add_source_indices g.cuvs g.cuvs sparse.txt s.cuvs
    run annconvert --info s.cuvs
    assert_line "dataset: not included"
    assert_line "source indices: included (ids below 21994)"
    annconvert s.cuvs s.ann
    annsearch s.ann q.fbin -k 10 --data base.fbin -o s_ids.txt
    awk '{ for (j = 1; j <= NF; j++) $j = 1000 + 7 * $j; print }' rows.txt >s_want.txt
    same_numbers s_want.txt s_ids.txt
    annconvert --to cagra-v5 --no-dataset s.ann s_back.cuvs
    cmp s.cuvs s_back.cuvs
    # filters name ids, up to the largest (21993), not rows: allow the ids of rows 0 to 99
    seq 1000 7 1693 >s_allow.txt
    annsearch s.ann q.fbin -k 5 --data base.fbin --allow s_allow.txt -o s_few.txt
    awk '{ for (j = 1; j <= NF; j++) if ($j < 1000 || $j > 1693 || ($j - 1000) % 7) { print "id " $j; bad = 1 } }
         END { exit bad }' s_few.txt
    echo 21994 >over.txt
    run annsearch s.ann q.fbin -k 5 --data base.fbin --allow over.txt
    assert_failure 1
    assert_output --partial "id 21994 is not an id of the index (0 .. 21993)"
    # a bitset covers ceil(21994 / 8) = 2750 bytes; one sized by the 3000 rows is refused
    head -c 2750 /dev/zero | tr '\000' '\377' >all.bits
    annsearch s.ann q.fbin -k 10 --data base.fbin --filter all.bits -o s_all.txt
    same_numbers s_want.txt s_all.txt
    run annsearch s.ann q.fbin -k 10 --data base.fbin --filter even.bits
    assert_failure 1
    assert_output --partial "a bitset of 21994 ids has 2750 bytes"
    # extend: the new rows (the queries) get the ids after the largest, 3000 and up
    annbuild --extend p.ann q.fbin -o e.ann
    annsearch e.ann q.fbin -k 1 -o e_ids.txt
    seq 3000 3099 >e_want.txt
    same_numbers e_want.txt e_ids.txt
    # the index without source indices extends as before: row numbers
    annbuild --extend cagra.ann q.fbin -o ce.ann
    annsearch ce.ann q.fbin -k 1 -o ce_ids.txt
    same_numbers e_want.txt ce_ids.txt
    run annconvert --info ce.ann
    refute_output --regexp "ids +[0-9]+"
    assert_no_temporaries
}

@test "a bad source index array exits 1 with one line naming the file" {
    annconvert --to cagra-v5 cagra.ann x.cuvs
    annconvert --to cagra-v5 --no-dataset cagra.ann g.cuvs
    seq 2999 -1 0 >perm.txt
    add_source_indices x.cuvs g.cuvs perm.txt p.cuvs
    # truncated array
    head -c $(($(stat -c %s p.cuvs) - 10)) p.cuvs >t.cuvs
    run --separate-stderr annconvert t.cuvs t.ann
    assert_failure 1
    [ "${#stderr_lines[@]}" -eq 1 ] || fail "$stderr"
    [[ "$stderr" == *"t.cuvs"*"source_indices"*"runs past the end"* ]] || fail "$stderr"
    [ ! -e t.ann ]
    run --separate-stderr annconvert --info t.cuvs
    assert_failure 1
    [[ "$stderr" == *"t.cuvs"* ]] || fail "$stderr"
    # the array left out altogether
    head -c $(stat -c %s x.cuvs) p.cuvs >n.cuvs
    run --separate-stderr annconvert n.cuvs n.ann
    assert_failure 1
    [ "${#stderr_lines[@]}" -eq 1 ] || fail "$stderr"
    [[ "$stderr" == *"n.cuvs"* ]] || fail "$stderr"
    # an id twice
    { seq 2999 -1 1; echo 5; } >dup.txt
    add_source_indices x.cuvs g.cuvs dup.txt d.cuvs
    run --separate-stderr annconvert d.cuvs d.ann
    assert_failure 1
    [ "${#stderr_lines[@]}" -eq 1 ] || fail "$stderr"
    [[ "$stderr" == *"d.cuvs"*"same id 5"* ]] || fail "$stderr"
    # the wrong length: one id short
    seq 2999 -1 1 >short.txt
    add_source_indices x.cuvs g.cuvs short.txt w.cuvs
    run --separate-stderr annconvert w.cuvs w.ann
    assert_failure 1
    [[ "$stderr" == *"w.cuvs"*"source_indices"* ]] || fail "$stderr"
    [ ! -e d.ann ] && [ ! -e w.ann ]
    assert_no_temporaries
}

@test "corrupt files exit 1 naming the file" {
    annconvert --to cagra-v5 cagra.ann x.cuvs
    # truncated cuVS file
    head -c 50000 x.cuvs >t.cuvs
    run annconvert t.cuvs t.ann
    assert_failure 1
    assert_output --partial "t.cuvs"
    [ ! -e t.ann ]
    # version 6 instead of 5 (data of the first npy scalar: 4 + 128 bytes in)
    cp x.cuvs v.cuvs
    printf '\006' | dd of=v.cuvs bs=1 seek=132 conv=notrunc status=none
    run annconvert v.cuvs v.ann
    assert_failure 1
    assert_output --partial "version 6"
    # a flipped byte in the graph section of an annkit index: checksum
    cp cagra.ann bad.ann
    size=$(stat -c %s cagra.ann)
    "$ANNKIT_GEN_DATA" flip bad.ann $((size / 3))
    run annsearch bad.ann q.fbin -k 10
    assert_failure 1
    assert_output --partial "bad.ann"
    # truncated annkit index
    head -c 1000 cagra.ann >short.ann
    run annsearch short.ann q.fbin -k 10
    assert_failure 1
    assert_output --partial "short.ann"
}

@test "--device cuda without a GPU exits 3" {
    have_gpu && skip "a GPU is present"
    run annbuild --device cuda --algo cagra base.fbin -o x.ann
    assert_failure 3
    [ ! -e x.ann ]
    run annsearch --device cuda cagra.ann q.fbin -k 10
    assert_failure 3
}
