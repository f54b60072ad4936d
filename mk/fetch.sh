#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Put the pinned QEMU orig tarball into $DL (default build/dl) and verify it.
# Order: $QEMU_TARBALL if set; an already verified download; in CI the shared
# cache first; Debian's source package (apt-get source); the shared cache.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
eval "$(sed -n 's/^\([A-Z0-9_]*\) *:= *\(.*\)$/\1="\2"/p' "$top/qemu-base.mk")"
DL=${DL:-$top/build/dl}
CACHE=${QEMU_CACHE:-$top/../shared/cache}
out=$DL/$QEMU_ORIG

die() { echo "fetch: $*" >&2; exit 1; }

verify() {
    [ -f "$1" ] || return 1
    sum=$(sha256sum "$1" | cut -d' ' -f1)
    [ "$sum" = "$QEMU_ORIG_SHA256" ]
}

mkdir -p "$DL"

if [ -n "${QEMU_TARBALL:-}" ]; then
    [ -f "$QEMU_TARBALL" ] || die "QEMU_TARBALL=$QEMU_TARBALL does not exist"
    # A user's own tarball: its VERSION is checked after extraction.
    echo "fetch: using QEMU_TARBALL=$QEMU_TARBALL"
    exit 0
fi

if verify "$out"; then
    exit 0
fi
rm -f "$out"

from_cache() {
    if verify "$CACHE/$QEMU_ORIG"; then
        cp "$CACHE/$QEMU_ORIG" "$out.tmp" && mv "$out.tmp" "$out"
        echo "fetch: using the cached copy $CACHE/$QEMU_ORIG (sha256 ok)"
        return 0
    fi
    return 1
}

if [ "${CI:-}" = true ] && from_cache; then
    exit 0
fi

echo "fetch: apt-get source --download-only $QEMU_DEB_SOURCE"
tmp=$(mktemp -d "$DL/apt.XXXXXX")
if (cd "$tmp" && apt-get source --download-only "$QEMU_DEB_SOURCE") \
        >"$tmp.log" 2>&1 && [ -f "$tmp/$QEMU_ORIG" ]; then
    if verify "$tmp/$QEMU_ORIG"; then
        mv "$tmp/$QEMU_ORIG" "$out"
        rm -rf "$tmp" "$tmp.log"
        echo "fetch: $QEMU_ORIG downloaded, sha256 ok"
        exit 0
    fi
    rm -rf "$tmp" "$tmp.log"
    die "downloaded $QEMU_ORIG has the wrong sha256 (want $QEMU_ORIG_SHA256)"
fi
reason=$(grep -E '^(E|W):' "$tmp.log" | head -1)
rm -rf "$tmp" "$tmp.log"

if from_cache; then
    exit 0
fi
die "cannot fetch $QEMU_DEB_SOURCE (${reason:-no deb-src entry?}); run 'make setup' to add the deb-src entry, or point the build at a QEMU $QEMU_VERSION source with QEMU_TARBALL=/path/to/tarball or QEMU_SRC=/path/to/tree"
