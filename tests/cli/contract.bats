#!/usr/bin/env bats
# The command-line contract every annkit tool keeps (DESIGN.md, "The
# command-line contract"): help, version, usage errors, missing inputs,
# messages on stderr that start with the tool's name.

load common

# A command line of tool $1 whose only input, $2, does not exist; fails
# for a tool that reads no file (annmem computes from its options).
missing_input_args() {
    case "$1" in
    annconvert) echo "$2 out.fbin" ;;
    annbuild) echo "--algo brute_force $2 -o out.ann" ;;
    annsearch) echo "$2 queries.fbin -k 1" ;;
    anngraph) echo "--algo nn_descent $2 -o out.graph" ;;
    annmem) return 1 ;;
    *) echo "$2" ;;
    esac
}

@test "every tool exists and is executable" {
    for t in $ANNKIT_TOOLS; do
        [ -x "$ANNKIT_BIN_DIR/$t" ] || fail "$t is not built in $ANNKIT_BIN_DIR"
    done
}

@test "--help prints to stdout only, exits 0, and names the tool on its first line" {
    for t in $ANNKIT_TOOLS; do
        run --separate-stderr "$t" --help
        assert_success
        [ -z "$stderr" ] || fail "$t --help wrote to stderr: $stderr"
        [[ "${lines[0]}" == *"$t"* ]] || fail "$t: first line does not name the tool: ${lines[0]}"
        [ "${#lines[@]}" -gt 5 ] || fail "$t: help too short"
    done
}

@test "-h and --help print the same text" {
    for t in $ANNKIT_TOOLS; do
        long=$("$t" --help)
        short=$("$t" -h)
        [ "$long" = "$short" ] || fail "$t: -h differs from --help"
    done
}

@test "--help lists the common options" {
    for t in $ANNKIT_TOOLS; do
        run "$t" --help
        for opt in --help --version --quiet --verbose --force --device --threads --seed; do
            assert_output --partial -- "$opt"
        done
    done
}

@test "--version and -V exit 0, name the tool and the library, and list the backends" {
    for t in $ANNKIT_TOOLS; do
        run --separate-stderr "$t" --version
        assert_success
        [ -z "$stderr" ] || fail "$t --version wrote to stderr: $stderr"
        assert_line --index 0 --regexp "^$t .*[0-9]+\.[0-9]+\.[0-9]+"
        assert_line --regexp '^library: .*[0-9]+\.[0-9]+\.[0-9]+'
        assert_line --regexp '^  cpu: '
        assert_line --regexp '^  cuda: '
        version=$output
        run "$t" -V
        assert_success
        [ "$output" = "$version" ] || fail "$t: -V differs from --version"
    done
}

@test "an unknown option exits 2 with one message and a hint, and nothing on stdout" {
    for t in $ANNKIT_TOOLS; do
        for bad in --no-such-option -Z; do
            run --separate-stderr "$t" "$bad"
            [ "$status" -eq 2 ] || fail "$t $bad: status $status"
            [ -z "$output" ] || fail "$t $bad: wrote to stdout"
            [[ "$stderr" == "$t: "*"$bad"* ]] || fail "$t $bad: message: $stderr"
            [[ "$stderr" == *"Try '$t --help'."* ]] || fail "$t $bad: no hint: $stderr"
            [ "$(printf '%s\n' "$stderr" | wc -l)" -eq 2 ] || fail "$t $bad: not two lines: $stderr"
        done
    done
}

@test "an option missing its argument exits 2" {
    for t in $ANNKIT_TOOLS; do
        run -2 "$t" --threads
        assert_output --partial "requires an argument"
        assert_output --partial "Try '$t --help'."
    done
}

@test "bad values of the common options exit 2" {
    for t in $ANNKIT_TOOLS; do
        run -2 "$t" --threads 2x x y
        assert_output --partial "--threads"
        run -2 "$t" --threads -1 x y
        run -2 "$t" --seed 99999999999999999999999 x y
        assert_output --partial "too large"
        run -2 "$t" --device tpu x y
        assert_output --partial "--device"
    done
}

@test "missing operands exit 2" {
    for t in $ANNKIT_TOOLS; do
        run --separate-stderr "$t"
        [ "$status" -eq 2 ] || fail "$t without operands: status $status"
        [[ "$stderr" == "$t: "* ]] || fail "$t: message does not start with the tool's name: $stderr"
    done
}

@test "a missing input exits 1 and the message quotes the path" {
    for t in $ANNKIT_TOOLS; do
        args=$(missing_input_args "$t" no-such-file.fbin) || continue
        # shellcheck disable=SC2086
        run --separate-stderr "$t" $args
        [ "$status" -eq 1 ] || fail "$t: status $status: $stderr"
        [ -z "$output" ] || fail "$t: wrote to stdout: $output"
        [[ "$stderr" == "$t: "*"'no-such-file.fbin'"* ]] || fail "$t: message: $stderr"
        assert_no_temporaries
        [ ! -e out.fbin ] && [ ! -e out.ann ] || fail "$t: left an output behind"
    done
}

@test "-q keeps error messages" {
    for t in $ANNKIT_TOOLS; do
        args=$(missing_input_args "$t" no-such-file.fbin) || continue
        # shellcheck disable=SC2086
        run "$t" -q $args
        assert_failure 1
        assert_output --partial "no-such-file.fbin"
    done
}

@test "option values are parsed the same with '=' and as the next argument" {
    "$GEN" -n 50 -q 5 -d 4 base.fbin q.fbin
    annconvert --rows=0:10 base.fbin a.fbin
    annconvert --rows 0:10 base.fbin b.fbin
    cmp a.fbin b.fbin
    run annconvert --info a.fbin
    assert_line "shape: 10 x 4"
}

@test "numbers take suffixes and exponents, and reject junk and overflow" {
    "$GEN" -n 3000 -q 5 -d 4 base.fbin
    annconvert --rows 1K:2e3 base.fbin a.fbin
    run annconvert --info a.fbin
    assert_line "shape: 1000 x 4"
    annconvert --rows :1Ki base.fbin b.fbin
    run annconvert --info b.fbin
    assert_line "shape: 1024 x 4"
    run -2 annconvert --rows 1.5:3 base.fbin c.fbin
    run -2 annconvert --rows 10Q: base.fbin c.fbin
    run -2 annconvert --rows :20000000000000000000 base.fbin c.fbin
    run -2 annconvert --rows 5:5 base.fbin c.fbin
    run -2 annconvert --rows 10:2 base.fbin c.fbin
    run -2 annconvert --rows 10 base.fbin c.fbin
    [ ! -e c.fbin ]
}
