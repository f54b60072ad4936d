#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build the tree after each patch of the series, in a separate work tree
# and build directory (build/bisect, build/bisect-obj), as a reviewer
# bisecting it would, and run the series' tests that exist at that patch:
# the guest_memfd unit tests and qtests (tests/qtest/guest-memfd*-test).
# Slow: one full build, then one incremental build per patch.
# SERIES_BUILD_FROM=N starts at patch N (after building patch N-1 first).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
SRC=$top/build/qemu
WT=$top/build/bisect
OBJ=$top/build/bisect-obj
FLAGS=$(make -s -C "$top" print-configure-flags)

if [ ! -d "$WT" ]; then
    git -C "$SRC" worktree add -q --detach "$WT" base
fi
# The series' tests present in $OBJ: 0, or 1 with what failed on stdout
run_tests() {
    local failed= t
    for t in test-kvm-gmem-caps test-kvm-gmem-convert test-gmem-launch-plan; do
        [ -x "$OBJ/tests/unit/$t" ] || continue
        "$OBJ/tests/unit/$t" >"$OBJ/test-$n-$t.log" 2>&1 ||
            failed="$failed $t"
    done
    for t in "$OBJ"/tests/qtest/guest-memfd*-test; do
        [ -x "$t" ] || continue
        (cd "$OBJ" && QTEST_QEMU_BINARY=./qemu-system-x86_64 "$t") \
            >"$OBJ/test-$n-$(basename "$t").log" 2>&1 ||
            failed="$failed $(basename "$t")"
    done
    [ -z "$failed" ] && return 0
    echo "$failed"
    return 1
}

from=${SERIES_BUILD_FROM:-1}
n=0
for c in $(git -C "$SRC" rev-list --reverse base..gmem); do
    n=$((n + 1))
    [ "$n" -ge $((from - 1)) ] || continue
    git -C "$WT" checkout -q --detach "$c"
    subj=$(git -C "$WT" log -1 --format=%s)
    if [ ! -f "$OBJ/build.ninja" ]; then
        mkdir -p "$OBJ"
        (cd "$OBJ" && eval "\"$WT/configure\" $FLAGS" >configure.log 2>&1)
    fi
    # The option ROMs (linuxboot_dma.bin, kvmvapic.bin...) are built by
    # make, not by ninja; without them -kernel cannot boot the test guest.
    if ninja -C "$OBJ" >"$OBJ/ninja-$n.log" 2>&1 &&
       make -C "$OBJ" pc-bios/optionrom/all >>"$OBJ/ninja-$n.log" 2>&1 &&
       "$top/mk/firmware.sh" "$OBJ" >>"$OBJ/ninja-$n.log" 2>&1; then
        [ "$n" -ge "$from" ] || continue
        if failed=$(run_tests); then
            echo "series-build: patch $n builds, tests pass: $subj"
        else
            echo "series-build: patch $n builds, tests FAIL ($failed): $subj"
            exit 1
        fi
    else
        echo "series-build: patch $n FAILS to build: $subj"
        grep -E 'error|FAILED' "$OBJ/ninja-$n.log" | head -20
        exit 1
    fi
done
echo "series-build: patches $from-$n build and pass their tests"
