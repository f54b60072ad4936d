#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The reverse of mk/libvirt-prepare.sh, for developers: turn the commits
# base..gmem of $LIBVIRT_TREE (build/libvirt) back into libvirt/patches/ and
# the new files at their libvirt paths under libvirt/.  A file a commit adds
# is an overlay file (it lives whole in this repository); a file it modifies
# goes into the patch.  A later commit may not modify an overlay file:
# squash the change into the commit that adds it.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
SRC=${LIBVIRT_TREE:-$top/build/libvirt}
PATCHES=$top/libvirt/patches
FILES=$top/libvirt

die() { echo "libvirt-export: $*" >&2; exit 1; }
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
    for f in $(g diff-tree --no-commit-id -r --diff-filter=MDR --name-only "$c"); do
        grep -qx "$f" "$tmp/owned" &&
            die "$subj: modifies $f, added by an earlier commit; squash it there"
    done
    excl=
    for f in $added; do
        echo "$f" >>"$tmp/owned"
        excl="$excl :(exclude)$f"
        case $f in patches/*) die "$subj: adds $f, which would clash with libvirt/patches/" ;; esac
        mkdir -p "$FILES/$(dirname "$f")"
        g show "$c:$f" >"$FILES/$f"
        if [ "$(g ls-tree "$c" -- "$f" | cut -c1-6)" = 100755 ]; then
            chmod +x "$FILES/$f"
        else
            chmod -x "$FILES/$f"
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
    echo "# libvirt 11.3.0 + qemu-gmem, applied in this order (mk/libvirt-prepare.sh)"
    cat "$tmp/series"
} >"$PATCHES/series"
{
    echo "# patch, then the new files (at their paths under libvirt/) it adds"
    cat "$tmp/overlay"
} >"$PATCHES/overlay"
g config gmem.generated "$(g rev-parse gmem)"
echo "libvirt-export: $n patches written to libvirt/patches/"
