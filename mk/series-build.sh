#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build the tree after each patch of the series, in a separate work tree
# and build directory (build/bisect, build/bisect-obj), as a reviewer
# bisecting it would.  Slow: one full build, then one incremental build
# per patch.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
SRC=$top/build/qemu
WT=$top/build/bisect
OBJ=$top/build/bisect-obj
FLAGS=$(make -s -C "$top" print-configure-flags)

if [ ! -d "$WT" ]; then
    git -C "$SRC" worktree add -q --detach "$WT" base
fi
n=0
for c in $(git -C "$SRC" rev-list --reverse base..gmem); do
    n=$((n + 1))
    git -C "$WT" checkout -q --detach "$c"
    subj=$(git -C "$WT" log -1 --format=%s)
    if [ ! -f "$OBJ/build.ninja" ]; then
        mkdir -p "$OBJ"
        (cd "$OBJ" && eval "\"$WT/configure\" $FLAGS" >configure.log 2>&1)
    fi
    if ninja -C "$OBJ" >"$OBJ/ninja-$n.log" 2>&1; then
        echo "series-build: patch $n builds: $subj"
    else
        echo "series-build: patch $n FAILS to build: $subj"
        grep -E 'error|FAILED' "$OBJ/ninja-$n.log" | head -20
        exit 1
    fi
done
echo "series-build: all $n patches build"
