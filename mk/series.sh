#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The whole change as a git format-patch series against the QEMU base, in
# build/series/, checked with the base tree's scripts/checkpatch.pl.
# Fails if checkpatch reports any error or warning.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
SRC=${SRC:-$top/build/qemu}
OUT=${OUT:-$top/build/series}

rm -rf "$OUT"
git -C "$SRC" format-patch -q --zero-commit --cover-letter \
    --subject-prefix="PATCH qemu-gmem" -o "$OUT" base..gmem
n=$(ls "$OUT" | grep -vc '^0000-cover-letter' || true)
echo "series: $n patches in $OUT"

bad=0
for p in "$OUT"/[0-9]*.patch; do
    case $p in *0000-cover-letter.patch) continue ;; esac
    res=$(cd "$SRC" && perl scripts/checkpatch.pl --no-signoff "$p" 2>&1 || true)
    summary=$(echo "$res" | sed -n 's/^total: /total: /p' | tail -1)
    echo "series: $(basename "$p"): ${summary:-no result}"
    case $summary in
    "total: 0 errors, 0 warnings"*) ;;
    *) echo "$res" | grep -E -A4 '^(ERROR|WARNING)' | head -60; bad=1 ;;
    esac
done
[ $bad -eq 0 ] && echo "series: checkpatch clean"
exit $bad
