#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Make $LIBVIRT_TREE (default build/libvirt) the patched libvirt tree, as a
# git repository, the way mk/prepare.sh makes build/qemu:
#   tag "base"   the pristine libvirt source (tarball or LIBVIRT_SRC tree),
#   branch gmem  one commit per entry of libvirt/patches/series, each being
#                the patch plus the new files libvirt/patches/overlay assigns
#                to it (they live in libvirt/ at their libvirt paths).
# Commits are built in a scratch index, then checked out, so files whose
# content did not change keep their timestamps and ninja stays incremental.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
eval "$(sed -n 's/^\([A-Z0-9_]*\) *:= *\(.*\)$/\1="\2"/p' "$top/libvirt-base.mk")"
SRC=${LIBVIRT_TREE:-$top/build/libvirt}
DL=${DL:-$top/build/dl}
PATCHES=$top/libvirt/patches
FILES=$top/libvirt

die() { echo "libvirt-prepare: $*" >&2; exit 1; }

GIT_COMMITTER_NAME=qemu-gmem
GIT_COMMITTER_EMAIL=qemu-gmem@localhost
GIT_AUTHOR_NAME=$GIT_COMMITTER_NAME
GIT_AUTHOR_EMAIL=$GIT_COMMITTER_EMAIL
export GIT_COMMITTER_NAME GIT_COMMITTER_EMAIL GIT_AUTHOR_NAME GIT_AUTHOR_EMAIL
g() { git -C "$SRC" "$@"; }

version_of() {
    sed -n "s/^ *version: *'\([0-9.]*\)'.*/\1/p" "$1/meson.build" 2>/dev/null | head -1
}

if [ -n "${LIBVIRT_SRC:-}" ]; then
    [ -f "$LIBVIRT_SRC/meson.build" ] || die "LIBVIRT_SRC=$LIBVIRT_SRC is not a libvirt source tree"
    origin="tree:$(cd "$LIBVIRT_SRC" && pwd)"
elif [ -n "${LIBVIRT_TARBALL:-}" ]; then
    origin="tarball:$(cd "$(dirname "$LIBVIRT_TARBALL")" && pwd)/$(basename "$LIBVIRT_TARBALL")"
else
    origin="tarball:$DL/$LIBVIRT_ORIG"
fi

# 1. The base commit, made once per origin.
if [ ! -d "$SRC/.git" ] || [ "$(g config --get gmem.origin || true)" != "$origin" ]; then
    echo "libvirt-prepare: extracting libvirt $LIBVIRT_VERSION from ${origin#*:}"
    rm -rf "$SRC" "$SRC.tmp"
    mkdir -p "$SRC.tmp"
    case $origin in
    tree:*)
        (cd "${origin#tree:}" && tar cf - --exclude=./.git --exclude=./build .) |
            tar xf - -C "$SRC.tmp" ;;
    tarball:*)
        tar xf "${origin#tarball:}" -C "$SRC.tmp" --strip-components=1 ;;
    esac
    ver=$(version_of "$SRC.tmp")
    if [ "$ver" != "$LIBVIRT_VERSION" ]; then
        rm -rf "$SRC.tmp"
        die "${origin#*:} is libvirt ${ver:-unknown}, these patches need $LIBVIRT_VERSION"
    fi
    git -C "$SRC.tmp" init -q
    git -C "$SRC.tmp" config core.autocrlf false
    # keycodemapdb is a git submodule upstream, not part of libvirt's own
    # tree: left untracked, libvirt's syntax-check (which lists the files
    # to check with git) passes over it as it does upstream.
    echo /subprojects/keycodemapdb/ >>"$SRC.tmp/.git/info/exclude"
    git -C "$SRC.tmp" add -A -f . ':!subprojects/keycodemapdb'
    git -C "$SRC.tmp" commit -q -m "libvirt $LIBVIRT_VERSION" \
        -m "Pristine base: ${origin#*:}"
    git -C "$SRC.tmp" tag base
    git -C "$SRC.tmp" config gmem.origin "$origin"
    mv "$SRC.tmp" "$SRC"
fi

# Work committed in $SRC by hand would be lost: export it first.
gen=$(g config --get gmem.generated || true)
cur=$(g rev-parse -q --verify refs/heads/gmem || true)
if [ -n "$gen" ] && [ -n "$cur" ] && [ "$gen" != "$cur" ]; then
    die "$SRC has commits not in libvirt/patches/: run mk/libvirt-export.sh, or 'git -C $SRC reset --hard $gen' to drop them"
fi
if [ -n "$(g status --porcelain --untracked-files=no)" ]; then
    die "$SRC has uncommitted changes: commit and export them, or 'git -C $SRC checkout -f .'"
fi

# 2. The series, one commit per patch, in a scratch index.
idx=$(mktemp "$SRC/.git/gmem-index.XXXXXX")
msgdir=$(mktemp -d)
trap 'rm -f "$idx"; rm -rf "$msgdir"' EXIT INT TERM
export GIT_INDEX_FILE="$idx"
g read-tree base
head=$(g rev-parse base)
n=0
touch "$PATCHES/series" "$PATCHES/overlay"
for p in $(sed -e 's/#.*//' "$PATCHES/series"); do
    n=$((n + 1))
    f=$PATCHES/$p
    [ -f "$f" ] || die "libvirt/patches/series names $p, which does not exist"
    if grep -q '^diff --git ' "$f"; then
        g apply --cached --whitespace=nowarn "$f" ||
            die "$p does not apply (patch $n of the series)"
    fi
    for new in $(awk -v p="$p" '$1 == p { for (i = 2; i <= NF; i++) print $i }' \
                 "$PATCHES/overlay"); do
        [ -f "$FILES/$new" ] || die "libvirt/patches/overlay: libvirt/$new (for $p) does not exist"
        mode=100644
        [ -x "$FILES/$new" ] && mode=100755
        sha=$(git -C "$SRC" hash-object -w "$FILES/$new")
        g update-index --add --cacheinfo "$mode,$sha,$new"
    done
    tree=$(g write-tree)
    git mailinfo -b "$msgdir/msg" "$msgdir/diff" <"$f" >"$msgdir/info"
    subject=$(sed -n 's/^Subject: //p' "$msgdir/info")
    [ -n "$subject" ] || die "$p has no Subject: header"
    GIT_AUTHOR_NAME=$(sed -n 's/^Author: //p' "$msgdir/info")
    GIT_AUTHOR_EMAIL=$(sed -n 's/^Email: //p' "$msgdir/info")
    GIT_AUTHOR_DATE=$(sed -n 's/^Date: //p' "$msgdir/info")
    export GIT_AUTHOR_NAME GIT_AUTHOR_EMAIL GIT_AUTHOR_DATE
    head=$(printf '%s\n\n%s\n' "$subject" "$(cat "$msgdir/msg")" |
           g commit-tree "$tree" -p "$head")
done
unset GIT_INDEX_FILE

for p in $(awk '!/^#/ && NF { print $1 }' "$PATCHES/overlay"); do
    grep -qx "$p" "$PATCHES/series" ||
        die "libvirt/patches/overlay names $p, which is not in libvirt/patches/series"
done

# 3. Check it out; only files that differ are rewritten.
g update-ref refs/heads/gmem "$head"
g config gmem.generated "$head"
g checkout -q -f gmem
echo "libvirt-prepare: $SRC is libvirt $LIBVIRT_VERSION + $n patches ($(g rev-parse --short HEAD))"
