#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The reverse of prepare.sh, for developers: turn the commits base..gmem of
# $SRC back into patches/ and the overlay files at their paths in this repo.
# A file a commit adds is an overlay file (we own it; it lives whole in this
# repo, as the series leaves it); a file it modifies goes into the patch.
# A later commit that modifies an overlay file carries that change in its
# patch, as upstream would get it; prepare.sh undoes those changes to give
# the adding commit its version.  No commit may delete an overlay file.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
SRC=${SRC:-$top/build/qemu}
PATCHES=$top/patches

die() { echo "export: $*" >&2; exit 1; }
g() { git -C "$SRC" "$@"; }

[ -z "$(g status --porcelain --untracked-files=no)" ] ||
    die "$SRC has uncommitted changes: commit them first"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
: >"$tmp/series"
: >"$tmp/overlay"
: >"$tmp/owned"
n=0
for c in $(g rev-list --reverse base..gmem); do
    n=$((n + 1))
    subj=$(g log -1 --format=%s "$c")
    name=$(printf '%04d-%s.patch' "$n" \
        "$(echo "$subj" | sed 's/[^A-Za-z0-9]\{1,\}/-/g; s/^-//; s/-$//' | cut -c1-52 | sed 's/-$//')")
    added=$(g diff-tree --no-commit-id -r --diff-filter=A --name-only "$c")
    for f in $(g diff-tree --no-commit-id -r --diff-filter=DR --name-only "$c"); do
        grep -qx "$f" "$tmp/owned" &&
            die "$subj: deletes or renames $f, added by an earlier commit"
    done
    excl=
    for f in $added; do
        echo "$f" >>"$tmp/owned"
        excl="$excl :(exclude)$f"
        mkdir -p "$top/$(dirname "$f")"
        g show "gmem:$f" >"$top/$f"
        if [ "$(g ls-tree gmem -- "$f" | cut -c1-6)" = 100755 ]; then
            chmod +x "$top/$f"
        else
            chmod -x "$top/$f"
        fi
    done
    # shellcheck disable=SC2086
    g format-patch -1 --stdout --no-signature --zero-commit "$c" -- . $excl \
        >"$tmp/$name"
    echo "$name" >>"$tmp/series"
    [ -n "$added" ] && echo "$name $(echo $added)" >>"$tmp/overlay"
done

rm -f "$PATCHES"/*.patch
mkdir -p "$PATCHES"
cp "$tmp"/*.patch "$PATCHES"/ 2>/dev/null || true
{
    echo "# QEMU $(cat "$SRC/VERSION") + qemu-gmem, applied in this order (mk/prepare.sh)"
    cat "$tmp/series"
} >"$PATCHES/series"
{
    echo "# patch, then the new files (at their paths in this repository) it adds"
    cat "$tmp/overlay"
} >"$PATCHES/overlay"
g config gmem.generated "$(g rev-parse gmem)"
echo "export: $n patches written to patches/"
