#!/usr/bin/env bats
# The man pages: mandoc -Tlint clean, every long option of a tool's --help
# documented in its page, exactly the four exit statuses, and every
# example runs.
#
# Convention for EXAMPLES: inside a .Bd block of the EXAMPLES section, each
# line that starts with "$ " is a command.  The commands of one page run in
# order, with bash, in one scratch directory that holds base.fbin (2000 x 16
# float32 in 20 clusters) and queries.fbin (100 x 16); each must exit 0.

load common

MAN_DIR="$ANNKIT_SRC_DIR/man"
PAGES="annbuild.1 annconvert.1 annsearch.1 anngraph.1 annkit.7"

# The text of a page as a reader sees it, without overstrike.
render() {
    mandoc -Tascii -O width=300 "$MAN_DIR/$1" | sed 's/.\x08//g'
}

# The "$ " commands of the EXAMPLES section of page $1, unescaped.
examples() {
    awk '
        /^\.Sh / { in_sec = ($0 == ".Sh EXAMPLES") }
        in_sec && /^\.Bd/ { in_blk = 1; next }
        in_blk && /^\.Ed/ { in_blk = 0; next }
        in_sec && in_blk && /^\$ / { print substr($0, 3) }
    ' "$MAN_DIR/$1" | sed -e 's/\\(aq/'"'"'/g' -e 's/\\-/-/g' -e 's/\\&//g' -e 's/\\e/\\/g'
}

setup() {
    common_setup
    command -v mandoc >/dev/null || skip "mandoc is not installed"
}

@test "mandoc -Tlint finds nothing to report" {
    cd "$MAN_DIR"    # so that the .Xr references between the pages resolve
    for page in $PAGES; do
        run mandoc -Tlint "$page"
        [ "$status" -eq 0 ] && [ -z "$output" ] || fail "$page: $output"
    done
    # The other pages of man/ (file formats, later tools): no warnings or errors.
    for page in *.[1-9]; do
        run mandoc -Tlint -W warning "$page"
        [ "$status" -eq 0 ] && [ -z "$output" ] || fail "$page: $output"
    done
}

@test "every long option of each tool's --help is in its man page" {
    for t in $ANNKIT_TOOLS; do
        [ -f "$MAN_DIR/$t.1" ] || fail "no man page $t.1"
        text=$(render "$t.1")
        opts=$("$t" --help | grep -o -- '--[a-z][a-z0-9-]*' | sort -u)
        [ -n "$opts" ] || fail "$t --help lists no long options"
        for o in $opts; do
            grep -q -- "$o\\b" <<<"$text" || fail "$t.1 does not document $o"
        done
        # And every short option.
        for o in $("$t" --help | grep -o -E '^ +-[a-zA-Z]\b' | tr -d ' '); do
            grep -q -- "$o\\b" <<<"$text" || fail "$t.1 does not document $o"
        done
    done
}

@test "the pages have the standard sections" {
    for page in $PAGES; do
        for sec in NAME DESCRIPTION ENVIRONMENT "EXIT STATUS" EXAMPLES "SEE ALSO"; do
            grep -qx "\\.Sh $sec" "$MAN_DIR/$page" || fail "$page has no $sec"
        done
    done
    for page in annbuild.1 annconvert.1 annsearch.1 anngraph.1; do
        for sec in SYNOPSIS OPTIONS FILES; do
            grep -qx "\\.Sh $sec" "$MAN_DIR/$page" || fail "$page has no $sec"
        done
        for var in ANNKIT_CUDA_PLUGIN OMP_NUM_THREADS; do
            grep -q "^\\.It Ev $var\$" "$MAN_DIR/$page" || fail "$page does not describe $var"
        done
    done
}

@test "EXIT STATUS lists exactly 0, 1, 2 and 3" {
    for page in $PAGES; do
        got=$(awk '/^\.Sh / { s = ($0 == ".Sh EXIT STATUS") } s && /^\.It / { printf "%s ", $2 }' "$MAN_DIR/$page")
        [ "$got" = "0 1 2 3 " ] || fail "$page: EXIT STATUS lists: $got"
    done
}

@test "the examples are extracted" {
    for page in $PAGES; do
        n=$(examples "$page" | wc -l)
        [ "$n" -ge 3 ] || fail "$page: only $n example commands"
    done
    examples annconvert.1 | grep -qF "printf '1 2 3\\n4 5 6\\n' | annconvert - small.fvecs"
}

run_examples() {
    "$GEN" -n 2000 -q 100 -d 16 -c 20 -s 5 base.fbin queries.fbin
    while IFS= read -r cmd; do
        run bash -o pipefail -c "$cmd"
        [ "$status" -eq 0 ] || fail "$1: '$cmd' failed with status $status: $output"
    done < <(examples "$1")
    assert_no_temporaries
}

@test "the EXAMPLES of annconvert(1) run" {
    run_examples annconvert.1
    run annconvert --info small.fvecs
    assert_line "shape: 2 x 3"
}

@test "the EXAMPLES of annbuild(1) run" {
    run_examples annbuild.1
    [ -s base.ivf ] && [ -s shard0.ivf ] && [ -s bench.bf ]
}

@test "the EXAMPLES of annsearch(1) run" {
    run_examples annsearch.1
    run annconvert --info bench.hdf5
    assert_line --regexp '^  neighbors +100 x 100 i32$'
}

@test "the EXAMPLES of anngraph(1) run" {
    run_examples anngraph.1
    [ -s base.knn ] && [ -s exact.knn ] && [ -s head.knn ] && [ -s copy.knn ]
    cmp <(annconvert base.knn - ) <(annconvert copy.knn - )
}

@test "the EXAMPLES of annkit(7) run" {
    run_examples annkit.7
    [ -s truth.ivecs ]
}
