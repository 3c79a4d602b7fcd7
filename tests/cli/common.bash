# Shared setup of the annkit CLI suites (loaded by every tests/cli/*.bats).
#
# Environment (set by tests/cli/cli_tests.meson; set them by hand to run a
# suite directly with `bats tests/cli/annsearch.bats`):
#   ANNKIT_BIN_DIR   directory holding the built tools (build/tools)
#   ANNKIT_SRC_DIR   the source root (for man/)
#   ANNKIT_GEN_DATA  the gen_data helper built from tests/cli/gen_data.c
#   ANNKIT_TOOLS     space-separated names of the built tools (default: all three)

bats_require_minimum_version 1.5.0
load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

: "${ANNKIT_BIN_DIR:?set ANNKIT_BIN_DIR to the directory of the built tools}"
: "${ANNKIT_GEN_DATA:?set ANNKIT_GEN_DATA to the built tests/cli/gen_data}"
ANNKIT_SRC_DIR="${ANNKIT_SRC_DIR:-$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}"
ANNKIT_TOOLS="${ANNKIT_TOOLS:-annconvert annbuild annsearch}"
PATH="$ANNKIT_BIN_DIR:$PATH"
GEN="$ANNKIT_GEN_DATA"
export PATH ANNKIT_SRC_DIR

# Every test runs in its own scratch directory (a suite that needs more
# setup defines setup() itself and calls this first).
common_setup() {
    cd "$BATS_TEST_TMPDIR" || return 1
}
setup() {
    common_setup
}

# No leftovers of the safe-output machinery in the current directory.
assert_no_temporaries() {
    local left
    left=$(find . -maxdepth 1 -name '.*.tmp.*' | head -5)
    if [ -n "$left" ]; then
        echo "temporary files left behind: $left" >&2
        return 1
    fi
}

# The ids files of two runs hold the same numbers, whatever the separators.
same_numbers() {
    diff <(tr -s ' \t' '  ' <"$1" | sed 's/^ //; s/ $//') \
         <(tr -s ' \t' '  ' <"$2" | sed 's/^ //; s/ $//')
}

# Value of "key=value" in a text result line ($1 = key, $2 = line).
field() {
    printf '%s\n' "$2" | tr -s ' ' '\n' | sed -n "s/^$1=//p"
}

# True when CUDA can run here (then --device cuda must not fail).
have_gpu() {
    annbuild --version | grep -Eq 'cuda: [1-9][0-9]* device'
}
