#!/usr/bin/env bats
# annconvert: round trips between every format (values exact), row ranges,
# element types, normalisation, --info, HDF5 append, stdin/stdout, and
# corrupt inputs that must fail cleanly.

load common

setup() {
    common_setup
    # 200 x 8 clustered float32 rows, and 20 queries of the same shape.
    "$GEN" -n 200 -q 20 -d 8 -c 5 -s 11 base.fbin q.fbin
}

# annconvert IN OUT must fail with status 1, name IN in the message and
# leave neither OUT nor a temporary file behind.
assert_fails_cleanly() {
    local in=$1 out=$2
    run --separate-stderr annconvert "$in" "$out"
    [ "$status" -eq 1 ] || fail "annconvert $in $out: status $status, stderr: $stderr"
    [[ "$stderr" == "annconvert: "*"'$in'"* ]] || fail "message does not quote '$in': $stderr"
    [ -z "$output" ] || fail "wrote to stdout: $output"
    [ ! -e "$out" ] || fail "$out was left behind"
    assert_no_temporaries
}

@test "float32 round trips through every format are exact" {
    for out in x.npy x.fvecs x.fbin x.txt x.tsv x.csv x.hdf5:train; do
        annconvert base.fbin "$out"
        annconvert "$out" back.fbin
        cmp base.fbin back.fbin || fail "round trip through $out changed the values"
        rm -f back.fbin
    done
    assert_no_temporaries
}

@test "a chain of conversions through all formats ends where it started" {
    annconvert base.fbin a.fvecs
    annconvert a.fvecs b.npy
    annconvert b.npy c.hdf5:train
    annconvert c.hdf5:train d.txt
    annconvert d.txt e.fbin
    cmp base.fbin e.fbin
}

@test "int32 ids round trip through ivecs, ibin, npy, HDF5 and text" {
    "$GEN" knn -k 7 base.fbin q.fbin >truth.txt
    annconvert truth.txt t.ivecs
    annconvert t.ivecs t.ibin
    annconvert t.ibin t.npy
    annconvert t.npy t.hdf5:neighbors
    annconvert t.hdf5:neighbors t2.ivecs
    annconvert t2.ivecs t.txt
    cmp t.ivecs t2.ivecs
    same_numbers truth.txt t.txt
    run annconvert --info t.ibin
    assert_line "dtype: i32"
    assert_line "shape: 20 x 7"
}

@test "uint8 and int8 values round trip through bvecs, u8bin, i8bin and npy" {
    awk 'BEGIN { for (i = 0; i < 8; i++) { for (j = 0; j < 32; j++) printf "%s%d", j ? " " : "", (i * 32 + j) % 256; print "" } }' >u8.txt
    annconvert --dtype u8 u8.txt a.bvecs
    annconvert a.bvecs a.u8bin
    annconvert a.u8bin a.npy
    annconvert a.npy b.bvecs
    cmp a.bvecs b.bvecs
    annconvert b.bvecs back.txt
    same_numbers u8.txt back.txt
    run annconvert --info a.u8bin
    assert_line "dtype: u8"

    printf -- '-128 -1 0 1 127\n5 -5 6 -6 7\n' >i8.txt
    annconvert --dtype i8 i8.txt a.i8bin
    annconvert a.i8bin a8.npy
    annconvert a8.npy back8.txt
    same_numbers i8.txt back8.txt
    run annconvert --info a.i8bin
    assert_line "dtype: i8"
}

@test "--dtype f16 rounds once, and f16 files round trip exactly" {
    annconvert --dtype f16 base.fbin h.f16bin
    annconvert h.f16bin h.npy
    annconvert h.npy h2.f16bin
    cmp h.f16bin h2.f16bin
    run annconvert --info h.npy
    assert_line "dtype: f16"
    # Every value within the half-precision rounding error of the original.
    annconvert base.fbin orig.txt
    annconvert --dtype f32 h.f16bin half.txt
    paste orig.txt half.txt | awk -v d=8 '{
        for (j = 1; j <= d; j++) { a = $j; b = $(j + d); e = a - b; if (e < 0) e = -e;
            m = a < 0 ? -a : a; if (e > m / 1000 + 1e-4) { print "row " NR ": " a " vs " b; bad = 1 } } }
        END { exit bad }'
}

@test "--dtype converts integers by rounding to nearest" {
    printf '1.4 2.6 -1.6\n100.2 -7.7 0\n' | annconvert --dtype i32 - r.ivecs
    run annconvert r.ivecs -
    assert_success
    [ "$(echo "$output" | tr -s ' \t' ' ')" = "$(printf '1 3 -2\n100 -8 0')" ] || fail "got: $output"
    printf '1 2\n3 4\n' | annconvert --dtype f64 - d.npy
    run annconvert --info d.npy
    assert_line "dtype: f64"
    printf '1 2\n3 4\n' | annconvert --dtype i64 - l.npy
    run annconvert --info l.npy
    assert_line "dtype: i64"
}

@test "a format that holds one element type gets lossless conversions only" {
    # int64 ids into ivecs: converted, nothing changes.
    "$GEN" knn -k 5 base.fbin q.fbin >truth.txt
    annconvert --dtype i64 truth.txt gt.hdf5:neighbors
    annconvert gt.hdf5:neighbors gt.ivecs
    annconvert gt.ivecs gt.txt
    same_numbers truth.txt gt.txt
    # float vectors into ivecs would change them: refused with a hint.
    run --separate-stderr annconvert base.fbin x.ivecs
    assert_failure 1
    [[ "$stderr" == *"'x.ivecs'"*"--dtype"* ]] || fail "message: $stderr"
    [ ! -e x.ivecs ]
    assert_no_temporaries
    # An explicit --dtype that the format cannot hold is a usage error.
    run -2 annconvert --dtype f32 truth.txt y.ivecs
    [ ! -e y.ivecs ]
}

@test "--rows takes exactly the rows asked for" {
    annconvert --rows 10:20 base.fbin part.fbin
    run annconvert --info part.fbin
    assert_line "shape: 10 x 8"
    # Rows 10..19 of 8 float32 values: bytes 8 + 10*32 .. 8 + 20*32 of the file.
    cmp <(tail -c +$((8 + 10 * 32 + 1)) base.fbin | head -c 320) <(tail -c +9 part.fbin)

    annconvert --rows :5 base.fbin head.npy
    run annconvert --info head.npy
    assert_line "shape: 5 x 8"
    annconvert --rows 195: base.fbin tail.fvecs
    run annconvert --info tail.fvecs
    assert_line "shape: 5 x 8"
    annconvert tail.fvecs tail.fbin
    cmp <(tail -c 160 base.fbin) <(tail -c +9 tail.fbin)

    run --separate-stderr annconvert --rows 150:300 base.fbin over.fbin
    assert_failure 1
    [[ "$stderr" == *"base.fbin"* ]] || fail "message: $stderr"
    [ ! -e over.fbin ]
    assert_no_temporaries
}

@test "--normalize gives unit rows" {
    run annconvert --normalize base.fbin -
    assert_success
    [ "${#lines[@]}" -eq 200 ]
    echo "$output" | awk '{ s = 0; for (j = 1; j <= NF; j++) s += $j * $j;
        if (s < 0.99999 || s > 1.00001) { print "row " NR " has squared norm " s; bad = 1 } }
        END { exit bad }'
    # Zero rows stay zero; integer input is normalised in f32.
    printf '0 0 0\n3 4 0\n' | annconvert --normalize - n.fbin
    run annconvert n.fbin -
    [ "$(echo "$output" | tr -s ' \t' ' ')" = "$(printf '0 0 0\n0.600000024 0.800000012 0')" ] || fail "got: $output"
}

@test "--info describes vector files without converting them" {
    annconvert base.fbin a.npy
    annconvert base.fbin a.fvecs
    annconvert base.fbin a.txt
    for f in base.fbin a.npy a.fvecs a.txt; do
        run --separate-stderr annconvert --info "$f"
        assert_success
        assert_line "file: $f"
        assert_line "kind: vectors"
        assert_line "shape: 200 x 8"
        assert_line "dtype: f32"
    done
    run annconvert --info a.npy
    assert_line "format: npy"
    run annconvert --info a.fvecs
    assert_line "format: fvecs"
}

@test "--info lists the datasets of an HDF5 file and its distance attribute" {
    annconvert --distance angular base.fbin b.hdf5:train
    annconvert q.fbin b.hdf5:test
    run annconvert --info b.hdf5
    assert_success
    assert_line "format: hdf5"
    assert_line "distance: angular"
    assert_line --regexp '^  train +200 x 8 f32$'
    assert_line --regexp '^  test +20 x 8 f32$'
    run annconvert --info b.hdf5:test
    assert_success
    assert_line "dataset: test"
    assert_line "shape: 20 x 8"
}

@test "--info reads an MNIST idx file" {
    # magic 00 00 08 (u8) 02 (rank 2), dims 2 and 3 big-endian, 6 bytes of data.
    printf '\000\000\010\002\000\000\000\002\000\000\000\003\001\002\003\004\005\006' >t.idx
    run annconvert --info t.idx
    assert_success
    assert_line "format: idx"
    assert_line "shape: 2 x 3"
    assert_line "dtype: u8"
    run annconvert t.idx -
    assert_success
    [ "$(echo "$output" | tr -s ' \t' ' ')" = "$(printf '1 2 3\n4 5 6')" ] || fail "got: $output"
}

@test "--info describes an index file: header, sections and meta" {
    annbuild --algo ivf_flat --n-lists 4 --compress base.fbin -o ix.ann
    run --separate-stderr annconvert --info ix.ann
    assert_success
    assert_line "kind: index"
    assert_line "format: annkit"
    assert_line --regexp '^version: 1\.[0-9]+$'
    assert_line "algorithm: ivf_flat"
    assert_line "metric: sqeuclidean"
    assert_line "rows: 200"
    assert_line "dim: 8"
    assert_line --regexp '^  meta +[0-9]+ +[0-9]+  (none|zstd)$'
    assert_line --regexp '^  n_lists=4$'
    assert_line --regexp 'zstd$'
}

@test "--info goes on after a bad file and fails with status 1" {
    run --separate-stderr annconvert --info base.fbin missing.fbin q.fbin
    assert_failure 1
    assert_line "file: base.fbin"
    assert_line "file: q.fbin"
    [[ "$stderr" == *"'missing.fbin'"* ]] || fail "message: $stderr"
}

@test "HDF5 output adds datasets to an existing file and replaces one only with -f" {
    annconvert --distance euclidean base.fbin b.hdf5:train
    annconvert q.fbin b.hdf5:test
    cp b.hdf5 before.hdf5
    run --separate-stderr annconvert q.fbin b.hdf5:train
    assert_failure 1
    [[ "$stderr" == *"'b.hdf5'"*"train"*"-f"* ]] || fail "message: $stderr"
    cmp b.hdf5 before.hdf5
    assert_no_temporaries

    annconvert -f q.fbin b.hdf5:train
    run annconvert --info b.hdf5
    assert_line --regexp '^  train +20 x 8 f32$'
    assert_line --regexp '^  test +20 x 8 f32$'
    assert_line "distance: euclidean"
    annconvert b.hdf5:train t.fbin
    cmp q.fbin t.fbin
}

@test "an HDF5 output needs a dataset name, and a non-HDF5 file in the way needs -f" {
    run -2 annconvert base.fbin b.hdf5
    assert_output --partial "b.hdf5:NAME"
    [ ! -e b.hdf5 ]
    cp base.fbin fake.hdf5
    run annconvert q.fbin fake.hdf5:test
    assert_failure 1
    assert_output --partial "-f"
    cmp base.fbin fake.hdf5
    annconvert -f q.fbin fake.hdf5:test
    run annconvert --info fake.hdf5
    assert_line "format: hdf5"
}

@test "an existing output is replaced only with -f" {
    annconvert base.fbin o.npy
    cp o.npy o.before
    run --separate-stderr annconvert q.fbin o.npy
    assert_failure 1
    [[ "$stderr" == "annconvert: 'o.npy': "*"-f"* ]] || fail "message: $stderr"
    cmp o.npy o.before
    assert_no_temporaries
    annconvert -f q.fbin o.npy
    run annconvert --info o.npy
    assert_line "shape: 20 x 8"
}

@test "the output keeps the permissions that the umask gives" {
    umask 022
    annconvert base.fbin p.npy
    [ "$(stat -c %a p.npy)" = 644 ]
    umask 077
    annconvert base.fbin p2.npy
    [ "$(stat -c %a p2.npy)" = 600 ]
}

@test "text goes through stdin and stdout" {
    printf '1 2 3\n4 5 6\n' | annconvert - s.fvecs
    run --separate-stderr annconvert s.fvecs -
    assert_success
    [ "$(echo "$output" | tr -s ' \t' ' ')" = "$(printf '1 2 3\n4 5 6')" ] || fail "got: $output"
    # Text keeps every float32 exactly.
    annconvert base.fbin - | annconvert - back.fbin
    cmp base.fbin back.fbin
}

@test "binary formats are never written to stdout" {
    run -2 annconvert --output-format npy base.fbin -
    assert_output --partial "stdout"
}

@test "binary formats are never written to a terminal, text is" {
    command -v script >/dev/null || skip "script(1) is not installed"
    # script runs the command on a new pseudo-terminal, its /dev/tty.
    run script -qec "annconvert --output-format npy base.fbin /dev/tty" /dev/null
    assert_failure 2
    assert_output --partial "refusing to write binary data to a terminal"
    run script -qec "annconvert --output-format text --rows :2 base.fbin /dev/tty" /dev/null
    assert_success
    [ "${#lines[@]}" -eq 2 ]
}

@test "a device or FIFO output is written in place" {
    annconvert --output-format fbin base.fbin /dev/null
    annconvert --output-format npy base.fbin /dev/null
    mkfifo pipe.fvecs
    annconvert pipe.fvecs back.fbin &
    annconvert base.fbin pipe.fvecs
    wait $!
    cmp base.fbin back.fbin
    assert_no_temporaries
}

@test "--format and --output-format override the names" {
    cp base.fbin data.raw
    run -1 annconvert data.raw x.npy
    run annconvert --format fbin data.raw x.npy
    assert_success
    annconvert --output-format npy base.fbin out.data
    run annconvert --info out.data
    assert_line "format: npy"
    run -2 annconvert --format nonsense data.raw y.npy
    run -2 annconvert base.fbin out.unknownext
    run -2 annconvert base.fbin out.idx
    run -2 annconvert --distance euclidean base.fbin x.fvecs
    run -2 annconvert --distance cityblock base.fbin x.hdf5:train
    run -2 annconvert --dtype f8 base.fbin x.npy
    run -2 annconvert base.fbin
    run -2 annconvert base.fbin a.npy b.npy
    run -2 annconvert --info
    run -2 annconvert --info --rows :5 base.fbin
}

@test "a truncated fbin fails cleanly" {
    head -c 100 base.fbin >trunc.fbin
    assert_fails_cleanly trunc.fbin out.npy
}

@test "an npy file with a bad magic fails cleanly" {
    annconvert base.fbin good.npy
    { printf 'X'; tail -c +2 good.npy; } >bad.npy
    assert_fails_cleanly bad.npy out.fbin
    run --separate-stderr annconvert --format npy --info bad.npy
    assert_failure 1
}

@test "an fvecs file whose records disagree on the dimension fails cleanly" {
    # Record 1: dim 2 and two floats; record 2: dim 3 and three floats.
    printf '\002\000\000\000\000\000\200\077\000\000\000\100' >bad.fvecs
    printf '\003\000\000\000\000\000\200\077\000\000\000\100\000\000\100\100' >>bad.fvecs
    assert_fails_cleanly bad.fvecs out.fbin
    # Same record size, different declared dimension.
    printf '\002\000\000\000\000\000\200\077\000\000\000\100' >bad2.fvecs
    printf '\003\000\000\000\000\000\200\077\000\000\000\100' >>bad2.fvecs
    assert_fails_cleanly bad2.fvecs out.fbin
}

@test "an empty file fails cleanly" {
    : >empty.fbin
    : >empty.npy
    : >empty.hdf5
    for f in empty.fbin empty.npy empty.hdf5:train; do
        run --separate-stderr annconvert "$f" out.fvecs
        [ "$status" -eq 1 ] || fail "$f: status $status"
        [[ "$stderr" == *"'empty."* ]] || fail "$f: message: $stderr"
        [ ! -e out.fvecs ]
        assert_no_temporaries
    done
}

@test "an index file with a flipped header byte is rejected with the file named" {
    annbuild --algo brute_force base.fbin -o ix.ann
    "$GEN" flip ix.ann 20
    run --separate-stderr annconvert --info ix.ann
    assert_failure 1
    [[ "$stderr" == "annconvert: "*"'ix.ann'"* ]] || fail "message: $stderr"
    [ -z "$output" ]
}

@test "converting an index file as vectors fails with status 1" {
    annbuild --algo brute_force base.fbin -o ix.ann
    assert_fails_cleanly ix.ann out.fbin
}

@test "a failed HDF5 append leaves the original file untouched" {
    annconvert base.fbin b.hdf5:train
    cp b.hdf5 before.hdf5
    head -c 50 base.fbin >trunc.fbin
    run annconvert trunc.fbin b.hdf5:test
    assert_failure 1
    cmp b.hdf5 before.hdf5
    assert_no_temporaries
}

@test "-v reports what was read and written on stderr only" {
    run --separate-stderr annconvert -v base.fbin v.npy
    assert_success
    [ -z "$output" ]
    [[ "$stderr" == *"annconvert: read 'base.fbin': 200 x 8 f32"* ]] || fail "stderr: $stderr"
    [[ "$stderr" == *"annconvert: wrote 'v.npy'"* ]] || fail "stderr: $stderr"
    run --separate-stderr annconvert -q q.fbin q.npy
    [ -z "$stderr" ]
}

# ------------------------------------------------------------------
# Graph files (anngraph): export as matrices, import with --to graph
# ------------------------------------------------------------------

@test "--info describes a graph file: header, sections and meta" {
    anngraph --algo brute_force --graph-degree 6 base.fbin -o g.knn
    run --separate-stderr annconvert --info g.knn
    assert_success
    assert_line "kind: graph"
    assert_line "format: annkit"
    assert_line "algorithm: brute_force"
    assert_line "dtype: u32"
    assert_line "rows: 200"
    assert_line "dim: 6"
    assert_line --regexp '^  ids +4800 +4800  none$'
    assert_line --regexp '^  distances +4800 +4800  none$'
    assert_line "  graph_degree=6"
    assert_line "  has_distances=1"
}

@test "a graph exports its ids as int32, or as the type --dtype names" {
    anngraph --algo brute_force --graph-degree 6 base.fbin -o g.knn
    "$GEN" knn -k 7 base.fbin base.fbin | awk '{ for (j = 2; j <= NF; j++) printf "%s%s", $j, (j < NF ? " " : "\n") }' >expect.txt
    for out in g.npy g.ivecs g.ibin g.txt g.hdf5:neighbors; do
        annconvert g.knn "$out"
        if [ "$out" != g.txt ]; then   # text reads back as f32
            run annconvert --info "$out"
            assert_line "dtype: i32"
        fi
        annconvert "$out" back.txt
        same_numbers expect.txt back.txt || fail "through $out"
        rm back.txt
    done
    run annconvert --info g.npy
    assert_line "shape: 200 x 6"
    for t in u32 i64; do
        annconvert --dtype "$t" g.knn "g-$t.npy"
        run annconvert --info "g-$t.npy"
        assert_line "dtype: $t"
        annconvert "g-$t.npy" back.txt
        same_numbers expect.txt back.txt
        rm back.txt
    done
    # Text to stdout, a slice of rows.
    run --separate-stderr annconvert --rows 10:12 g.knn -
    assert_success
    [ "${#lines[@]}" -eq 2 ]
    [ "$(printf '%s\n' "$output" | tr -s ' \t' ' ')" = "$(sed -n 11,12p expect.txt)" ]
}

@test "--distances writes a graph's distances, also into the same HDF5 file" {
    anngraph --algo brute_force --graph-degree 6 base.fbin -o g.knn
    "$GEN" knn -k 7 -D base.fbin base.fbin | awk '{ for (j = 2; j <= NF; j++) printf "%s%s", $j, (j < NF ? " " : "\n") }' >expect_d.txt
    annconvert --distances d.fvecs g.knn ids.ivecs
    annconvert d.fvecs d.txt
    paste expect_d.txt d.txt | awk '{ n = NF / 2; for (j = 1; j <= n; j++) { a = $j; b = $(j + n);
        e = a - b; if (e < 0) e = -e; if (e > 1e-4 * (a + 1)) { print NR ": " a " vs " b; bad = 1 } } }
        END { exit bad }'
    annconvert --distance euclidean --distances g.hdf5:distances g.knn g.hdf5:neighbors
    run annconvert --info g.hdf5
    assert_line "distance: euclidean"
    assert_line --regexp '^  neighbors +200 x 6 i32$'
    assert_line --regexp '^  distances +200 x 6 f32$'
    run -2 annconvert -f --distances g.hdf5:neighbors g.knn g.hdf5:neighbors
    run -2 annconvert --distances x.npy g.knn x.npy
    run -2 annconvert --distances - g.knn -
    # Distances do not fit an integer format.
    run --separate-stderr annconvert --distances d.ivecs g.knn ids2.ivecs
    assert_failure 1
    [ ! -e d.ivecs ] && [ ! -e ids2.ivecs ]
    assert_no_temporaries
}

@test "--to graph imports ids and distances, checked, with the metric given" {
    printf '1 2\n2 0\n0 1\n1 0\n' >ids.txt
    printf '0.5 1\n0.25 2\n1 3\n4 5\n' >d.txt
    run --separate-stderr annconvert --to graph --metric cosine --distances d.txt ids.txt g.knn
    assert_success
    [ -z "$output" ] && [ -z "$stderr" ]
    run annconvert --info g.knn
    assert_line "kind: graph"
    assert_line "algorithm: none"
    assert_line "metric: cosine"
    assert_line "rows: 4"
    assert_line "dim: 2"
    annconvert --distances d2.txt g.knn ids2.txt
    same_numbers ids.txt ids2.txt
    same_numbers d.txt d2.txt
    # Without --metric: sqeuclidean; without --distances: none stored.
    annconvert --to graph ids.txt plain.knn
    run annconvert --info plain.knn
    assert_line "metric: sqeuclidean"
    assert_line "sections: 2"
    # --compress, and a graph file in is copied.
    anngraph --algo brute_force --metric cosine --graph-degree 6 base.fbin -o g6.knn
    annconvert --to graph --compress g6.knn z.knn
    run annconvert --info z.knn
    assert_line --regexp '^  ids +[0-9]+ +4800  zstd$'
    assert_line "metric: cosine"
    assert_line "algorithm: brute_force"
    annconvert g6.knn a.npy
    annconvert z.knn b.npy
    cmp a.npy b.npy
}

@test "--to graph rejects ids that do not make a graph, with the file named" {
    printf '1 2\n0 2\n0 3\n' >range.txt
    printf '1 2\n0 2\n0 -1\n' >negative.txt
    printf '1 2\n0 2.5\n0 1\n' >fraction.txt
    printf '1 2\n1 2\n0 1\n' >self.txt
    printf '1 1\n0 2\n0 1\n' >repeat.txt
    printf '1\n' >onerow.txt
    printf '0 1\n16777216 1\n' >huge.txt
    for f in range.txt negative.txt fraction.txt self.txt repeat.txt onerow.txt huge.txt; do
        run --separate-stderr annconvert --to graph "$f" g.knn
        [ "$status" -eq 1 ] || fail "$f: status $status: $stderr"
        [[ "$stderr" == "annconvert: '$f': "* ]] || fail "$f: message: $stderr"
        [ ! -e g.knn ] || fail "$f: g.knn written"
    done
    run --separate-stderr annconvert --to graph range.txt g.knn
    [[ "$stderr" == *"row 2, column 1"*"3"* ]] || fail "the message names no row: $stderr"
    run --separate-stderr annconvert --to graph huge.txt g.knn
    [[ "$stderr" == *"16777216"*"f32"* ]] || fail "message: $stderr"
    # Distances of another shape.
    printf '1 2\n0 2\n0 1\n' >ids.txt
    printf '1 2\n3 4\n' >d.txt
    run --separate-stderr annconvert --to graph --distances d.txt ids.txt g.knn
    assert_failure 1
    [[ "$stderr" == "annconvert: 'd.txt': "* ]] || fail "message: $stderr"
    [ ! -e g.knn ]
    assert_no_temporaries
}

@test "graph options are usage errors where they do not apply" {
    anngraph --algo brute_force --graph-degree 4 base.fbin -o g.knn
    printf '1 2\n0 2\n0 1\n' >ids.txt
    run -2 annconvert --metric cosine base.fbin x.npy
    run -2 annconvert --compress base.fbin x.npy
    run -2 annconvert --distances d.npy base.fbin x.npy
    run -2 annconvert --to nothing ids.txt x.knn
    run -2 annconvert --to graph --dtype i32 ids.txt x.knn
    run -2 annconvert --to graph --rows :2 ids.txt x.knn
    run -2 annconvert --to graph --metric nope ids.txt x.knn
    run -2 annconvert --to graph ids.txt -
    run -2 annconvert --to graph --metric l1 g.knn x.knn
    run -2 annconvert --normalize g.knn x.npy
    run -2 annconvert --info --to graph g.knn
    run --separate-stderr annconvert --to hnswlib g.knn x.hnsw
    assert_failure 3
    [[ "$stderr" == "annconvert: --to hnswlib: not available in this build"* ]] || fail "$stderr"
    [ ! -e x.npy ] && [ ! -e x.knn ] && [ ! -e x.hnsw ]
    # An existing graph output needs -f.
    annconvert --to graph ids.txt y.knn
    run annconvert --to graph ids.txt y.knn
    assert_failure 1
    annconvert -f --to graph ids.txt y.knn
}
