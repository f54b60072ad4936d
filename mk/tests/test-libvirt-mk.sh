#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Tests of the libvirt build scripts' refusals, in TAP: each bad set-up
# must fail with exit status 1 and one line that names the problem and the
# fix.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0

check() {
    # check NAME EXPECTED-STATUS EXPECTED-TEXT COMMAND...
    name=$1 want=$2 text=$3
    shift 3
    n=$((n + 1))
    out=$("$@" 2>&1)
    rc=$?
    if [ $rc -eq "$want" ] && printf '%s\n' "$out" | grep -qF -- "$text"; then
        echo "ok $n - $name"
    else
        echo "not ok $n - $name (exit $rc)"
        printf '%s\n' "$out" | sed 's/^/# /'
    fi
}

echo "1..5"

# An apt-get that cannot fetch, as on a machine without the deb-src entry
mkdir -p "$tmp/bin"
printf '#!/bin/sh\necho "E: You must put some source URIs in your sources.list" >&2\nexit 100\n' \
    >"$tmp/bin/apt-get"
chmod +x "$tmp/bin/apt-get"

check "libvirt-fetch: no source and no cache" 1 \
    "cannot fetch libvirt=11.3.0-2~bpo12+1 (E: You must put some source URIs in your sources.list); run 'make setup'" \
    env PATH="$tmp/bin:$PATH" DL="$tmp/dl" LIBVIRT_CACHE="$tmp/none" CI= \
    "$top/mk/libvirt-fetch.sh"

# A cache whose tarball is corrupt is not used
mkdir -p "$tmp/cache"
echo corrupt >"$tmp/cache/libvirt_11.3.0.orig.tar.xz"
check "libvirt-fetch: corrupt cache refused" 1 "cannot fetch" \
    env PATH="$tmp/bin:$PATH" DL="$tmp/dl2" LIBVIRT_CACHE="$tmp/cache" CI=true \
    "$top/mk/libvirt-fetch.sh"

check "libvirt-fetch: LIBVIRT_TARBALL that does not exist" 1 \
    "LIBVIRT_TARBALL=$tmp/nope.tar.xz does not exist" \
    env LIBVIRT_TARBALL="$tmp/nope.tar.xz" DL="$tmp/dl3" "$top/mk/libvirt-fetch.sh"

# A tarball of another libvirt version
mkdir -p "$tmp/libvirt-9.0.0"
printf "project(\n  'libvirt', 'c',\n  version: '9.0.0',\n)\n" >"$tmp/libvirt-9.0.0/meson.build"
tar cJf "$tmp/libvirt-9.0.0.tar.xz" -C "$tmp" libvirt-9.0.0
check "libvirt-prepare: LIBVIRT_TARBALL of another version" 1 \
    "is libvirt 9.0.0, these patches need 11.3.0" \
    env LIBVIRT_TARBALL="$tmp/libvirt-9.0.0.tar.xz" LIBVIRT_TREE="$tmp/src" \
    "$top/mk/libvirt-prepare.sh"

check "libvirt-prepare: LIBVIRT_SRC that is not a libvirt tree" 1 \
    "LIBVIRT_SRC=$tmp/bin is not a libvirt source tree" \
    env LIBVIRT_SRC="$tmp/bin" LIBVIRT_TREE="$tmp/src2" "$top/mk/libvirt-prepare.sh"
