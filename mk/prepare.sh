#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Make $SRC (default build/qemu) the patched QEMU tree, as a git repository:
#   tag "base"   the pristine QEMU source (tarball or QEMU_SRC tree),
#   branch gmem  one commit per entry of patches/series, each being the
#                patch plus the new files patches/overlay assigns to it.
# Commits are built in a scratch index, then checked out, so files whose
# content did not change keep their timestamps and ninja stays incremental.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
eval "$(sed -n 's/^\([A-Z0-9_]*\) *:= *\(.*\)$/\1="\2"/p' "$top/qemu-base.mk")"
SRC=${SRC:-$top/build/qemu}
DL=${DL:-$top/build/dl}
PATCHES=$top/patches

die() { echo "prepare: $*" >&2; exit 1; }

# The tree is generated: its committer is the build, whoever runs it.
GIT_COMMITTER_NAME=qemu-gmem
GIT_COMMITTER_EMAIL=qemu-gmem@localhost
GIT_AUTHOR_NAME=$GIT_COMMITTER_NAME
GIT_AUTHOR_EMAIL=$GIT_COMMITTER_EMAIL
export GIT_COMMITTER_NAME GIT_COMMITTER_EMAIL GIT_AUTHOR_NAME GIT_AUTHOR_EMAIL
g() { git -C "$SRC" "$@"; }

if [ -n "${QEMU_SRC:-}" ]; then
    [ -f "$QEMU_SRC/VERSION" ] || die "QEMU_SRC=$QEMU_SRC is not a QEMU source tree"
    origin="tree:$(cd "$QEMU_SRC" && pwd)"
elif [ -n "${QEMU_TARBALL:-}" ]; then
    origin="tarball:$(cd "$(dirname "$QEMU_TARBALL")" && pwd)/$(basename "$QEMU_TARBALL")"
else
    origin="tarball:$DL/$QEMU_ORIG"
fi

# 1. The base commit, made once per origin.
if [ ! -d "$SRC/.git" ] || [ "$(g config --get gmem.origin || true)" != "$origin" ]; then
    echo "prepare: extracting QEMU $QEMU_VERSION from ${origin#*:}"
    rm -rf "$SRC" "$SRC.tmp"
    mkdir -p "$SRC.tmp"
    case $origin in
    tree:*)
        (cd "${origin#tree:}" && tar cf - --exclude=./.git --exclude=./build .) |
            tar xf - -C "$SRC.tmp" ;;
    tarball:*)
        tar xf "${origin#tarball:}" -C "$SRC.tmp" --strip-components=1 ;;
    esac
    ver=$(cat "$SRC.tmp/VERSION" 2>/dev/null || echo unknown)
    if [ "$ver" != "$QEMU_VERSION" ]; then
        rm -rf "$SRC.tmp"
        die "${origin#*:} is QEMU $ver, this patch set needs $QEMU_VERSION"
    fi
    git -C "$SRC.tmp" init -q
    git -C "$SRC.tmp" config core.autocrlf false
    git -C "$SRC.tmp" add -A -f .
    git -C "$SRC.tmp" commit -q -m "QEMU $QEMU_VERSION" \
        -m "Pristine base: ${origin#*:}"
    git -C "$SRC.tmp" tag base
    git -C "$SRC.tmp" config gmem.origin "$origin"
    mv "$SRC.tmp" "$SRC"
fi

# Work committed in $SRC by hand would be lost: export it first.
gen=$(g config --get gmem.generated || true)
cur=$(g rev-parse -q --verify refs/heads/gmem || true)
if [ -n "$gen" ] && [ -n "$cur" ] && [ "$gen" != "$cur" ]; then
    die "$SRC has commits not in patches/: run mk/export.sh, or 'git -C $SRC reset --hard $gen' to drop them"
fi
if [ -n "$(g status --porcelain --untracked-files=no)" ]; then
    die "$SRC has uncommitted changes: commit and export them, or 'git -C $SRC checkout -f .'"
fi

# 2. The series, one commit per patch, in a scratch index.
idx=$(mktemp "$SRC/.git/gmem-index.XXXXXX")
msgdir=$(mktemp -d)
trap 'rm -f "$idx"; rm -rf "$msgdir"' EXIT INT TERM
sed -e 's/#.*//' "$PATCHES/series" | grep -v '^ *$' >"$msgdir/order" || true

# A new file as the patch that adds it (number $2) has it: this repository
# holds the series' final version; undo, newest first, what the later
# patches change in it.  Prints the path of that version.
version_at() {
    d=$(mktemp -d "$msgdir/v.XXXXXX")
    mkdir -p "$d/$(dirname "$1")"
    cp "$top/$1" "$d/$1"
    for later in $(sed -n "$(($2 + 1)),\$p" "$msgdir/order" | tac); do
        grep -q "^diff --git a/$1 b/$1\$" "$PATCHES/$later" || continue
        (cd "$d" && git apply -R --include="$1" --whitespace=nowarn \
            "$PATCHES/$later") ||
            die "$later: its change to $1 does not undo from $1 in this repository"
    done
    echo "$d/$1"
}

export GIT_INDEX_FILE="$idx"
g read-tree base
head=$(g rev-parse base)
n=0
for p in $(sed -e 's/#.*//' "$PATCHES/series"); do
    n=$((n + 1))
    f=$PATCHES/$p
    [ -f "$f" ] || die "patches/series names $p, which does not exist"
    if grep -q '^diff --git ' "$f"; then
        g apply --cached --whitespace=nowarn "$f" ||
            die "$p does not apply (patch $n of the series)"
    fi
    for new in $(awk -v p="$p" '$1 == p { for (i = 2; i <= NF; i++) print $i }' \
                 "$PATCHES/overlay"); do
        [ -f "$top/$new" ] || die "patches/overlay: $new (for $p) does not exist"
        mode=100644
        [ -x "$top/$new" ] && mode=100755
        sha=$(git -C "$SRC" hash-object -w "$(version_at "$new" $n)")
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

# Files in patches/overlay must all belong to a patch in the series.
for p in $(awk '!/^#/ && NF { print $1 }' "$PATCHES/overlay"); do
    grep -qx "$p" "$PATCHES/series" ||
        die "patches/overlay names $p, which is not in patches/series"
done

# 3. Check it out; only files that differ are rewritten.
g update-ref refs/heads/gmem "$head"
g config gmem.generated "$head"
g checkout -q -f gmem
echo "prepare: $SRC is QEMU $QEMU_VERSION + $n patches ($(g rev-parse --short HEAD))"
