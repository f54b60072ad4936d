#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Tests of the build scripts' refusals, in TAP: each bad set-up must fail
# with exit status 1 and one line that names the problem and the fix.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
fails=0

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
        fails=$((fails + 1))
    fi
}

# The package mirror comes from this machine's own apt sources
mirror() {
    # mirror NAME EXPECTED: apt_uris_for_suite over $tmp/apt
    n=$((n + 1))
    got=$(APT_ETC="$tmp/apt" sh -c '. "$1"; apt_uris_for_suite bookworm "$2"' \
          sh "$top/mk/apt-mirror.sh" "$tmp/apt/sources.list.d/qemu-gmem.sources" |
          head -1)
    if [ "$got" = "$2" ]; then
        echo "ok $n - $1"
    else
        echo "not ok $n - $1 (got '$got', want '$2')"
        fails=$((fails + 1))
    fi
}
mkdir -p "$tmp/apt/sources.list.d"
cat >"$tmp/apt/sources.list.d/debian.sources" <<'SRC'
Types: deb
# a comment
URIs: http://mirror.invalid/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://mirror.invalid/debian-security
Suites: bookworm-security
Components: main
SRC
mirror "mirror: deb822 source of the release's suite" http://mirror.invalid/debian
cat >"$tmp/apt/sources.list.d/qemu-gmem.sources" <<'SRC'
Types: deb
URIs: http://ours.invalid/debian
Suites: bookworm
SRC
mirror "mirror: our own file is skipped" http://mirror.invalid/debian
printf 'deb [arch=amd64] http://local.invalid/debian bookworm main\n' \
    >"$tmp/apt/sources.list"
mirror "mirror: one-line sources.list first" http://local.invalid/debian
printf '# deb http://local.invalid/debian bookworm main\n' >"$tmp/apt/sources.list"
sed -i 's/^Types: deb$/Types: deb\nEnabled: no/' "$tmp/apt/sources.list.d/debian.sources"
mirror "mirror: none enabled" ""
rm -rf "$tmp/apt"

# An apt-get that cannot fetch, as on a machine without the deb-src entry
mkdir -p "$tmp/bin"
printf '#!/bin/sh\necho "E: You must put some source URIs in your sources.list" >&2\nexit 100\n' \
    >"$tmp/bin/apt-get"
chmod +x "$tmp/bin/apt-get"

check "fetch: no source and no cache" 1 \
    "cannot fetch qemu=1:10.2.2+ds-1 (E: You must put some source URIs in your sources.list); run 'make setup'" \
    env PATH="$tmp/bin:$PATH" DL="$tmp/dl" QEMU_CACHE="$tmp/none" CI= \
    "$top/mk/fetch.sh"

# A cache whose tarball is corrupt is not used
mkdir -p "$tmp/cache"
echo corrupt >"$tmp/cache/qemu_10.2.2+ds.orig.tar.xz"
check "fetch: corrupt cache refused" 1 "cannot fetch" \
    env PATH="$tmp/bin:$PATH" DL="$tmp/dl2" QEMU_CACHE="$tmp/cache" CI=true \
    "$top/mk/fetch.sh"

check "fetch: QEMU_TARBALL that does not exist" 1 \
    "QEMU_TARBALL=$tmp/nope.tar.xz does not exist" \
    env QEMU_TARBALL="$tmp/nope.tar.xz" DL="$tmp/dl3" "$top/mk/fetch.sh"

# A tarball of another QEMU version
mkdir -p "$tmp/qemu-9.0.0"
echo 9.0.0 >"$tmp/qemu-9.0.0/VERSION"
tar cJf "$tmp/qemu-9.0.0.tar.xz" -C "$tmp" qemu-9.0.0
check "prepare: QEMU_TARBALL of another version" 1 \
    "is QEMU 9.0.0, this patch set needs 10.2.2" \
    env QEMU_TARBALL="$tmp/qemu-9.0.0.tar.xz" SRC="$tmp/src" \
    "$top/mk/prepare.sh"

check "prepare: QEMU_SRC that is not a QEMU tree" 1 \
    "QEMU_SRC=$tmp/bin is not a QEMU source tree" \
    env QEMU_SRC="$tmp/bin" SRC="$tmp/src2" "$top/mk/prepare.sh"

# export.sh and prepare.sh round trip, with a new file that a later patch
# changes: the repository holds its final version, the later patch the
# change, and prepare.sh gives back the very same commits
roundtrip() {
    t=$tmp/rt
    mkdir -p "$t/top/mk" "$t/top/patches" "$t/q"
    cp "$top/mk/prepare.sh" "$top/mk/export.sh" "$t/top/mk/"
    cp "$top/qemu-base.mk" "$t/top/"
    sed -n 's/^QEMU_VERSION *:= *//p' "$top/qemu-base.mk" >"$t/q/VERSION"
    printf 'upstream\n' >"$t/q/up.c"
    printf '# series\n' >"$t/top/patches/series"
    printf '# overlay\n' >"$t/top/patches/overlay"
    env QEMU_SRC="$t/q" SRC="$t/src" "$t/top/mk/prepare.sh" >/dev/null || return 1
    (
        cd "$t/src" &&
        printf 'one\ntwo\n' >new.c && printf 'upstream\nfirst\n' >up.c &&
        git add -A && git -c user.name=t -c user.email=t@t commit -qm "add new.c" &&
        printf 'one\n2\ntwo\nthree\n' >new.c && printf 'upstream\nsecond\n' >up.c &&
        git add -A && git -c user.name=t -c user.email=t@t commit -qm "change new.c"
    ) || return 1
    want=$(git -C "$t/src" log --format=%T base..gmem)
    SRC="$t/src" "$t/top/mk/export.sh" >/dev/null || return 1
    printf 'one\n2\ntwo\nthree\n' | cmp -s - "$t/top/new.c" || return 1
    grep -q '^diff --git a/new.c b/new.c' "$t/top/patches/0002-change-new-c.patch" ||
        return 1
    grep -q '^diff --git a/new.c' "$t/top/patches/0001-add-new-c.patch" && return 1
    rm -rf "$t/src"
    env QEMU_SRC="$t/q" SRC="$t/src" "$t/top/mk/prepare.sh" >/dev/null || return 1
    [ "$(git -C "$t/src" log --format=%T base..gmem)" = "$want" ]
}
n=$((n + 1))
if roundtrip; then
    echo "ok $n - export/prepare: a later patch changes a new file"
else
    echo "not ok $n - export/prepare: a later patch changes a new file"
    fails=$((fails + 1))
fi

echo "1..$n"
[ $fails -eq 0 ]
