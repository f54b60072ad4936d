#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The whole change as a git format-patch series against the QEMU base, in
# build/series/, checked with the base tree's scripts/checkpatch.pl.
# Fails if checkpatch reports any error or warning, but for the reminder
# every linux-headers-only patch gets (named in the last line).
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
reminded=
for p in "$OUT"/[0-9]*.patch; do
    case $p in *0000-cover-letter.patch) continue ;; esac
    res=$(cd "$SRC" && perl scripts/checkpatch.pl --no-signoff "$p" 2>&1 || true)
    summary=$(echo "$res" | sed -n 's/^total: /total: /p' | tail -1)
    echo "series: $(basename "$p"): ${summary:-no result}"
    # A patch of linux-headers/ alone always gets checkpatch's reminder to
    # use scripts/update-linux-headers.sh, as every upstream header update
    # does; it cannot use it (the uAPI is not in any kernel yet).
    if ! grep '^diff --git' "$p" | grep -qv ' a/linux-headers/' &&
       [ "$(echo "$res" | grep -c '^WARNING')" = 1 ] &&
       echo "$res" | grep -q '^WARNING: added, moved or deleted file(s) imported from Linux'; then
        summary="total: 0 errors, 0 warnings (and the linux-headers reminder)"
        reminded="$reminded $(basename "$p" | cut -c1-4)"
    fi
    case $summary in
    "total: 0 errors, 0 warnings"*) ;;
    *) echo "$res" | grep -E -A4 '^(ERROR|WARNING)' | head -60; bad=1 ;;
    esac
done
# The last line is the summary that make check prints.
if [ $bad -eq 0 ]; then
    echo "series: checkpatch clean${reminded:+ but for the linux-headers reminder (patch$reminded)}"
fi
exit $bad
