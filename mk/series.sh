#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The change as the three postings upstream would get, each a git
# format-patch series with a cover letter, in build/series/:
#
#   1-fixes/      fixes to upstream code                       [PATCH]
#   2-backend/    memory-backend-guest-memfd for Linux 6.18    [PATCH]
#   3-in-place/   in-place conversion and confidential launch,
#                 on the proposed kernel interface              [RFC PATCH]
#
# Each applies on top of the one before.  The first patch of the series
# (pc-bios: building from a source tree without prebuilt firmware) is for
# this repository's build from Debian's source package and is not posted.
# Every patch is checked with the base tree's scripts/checkpatch.pl; fails
# if checkpatch reports any error or warning.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
SRC=${SRC:-$top/build/qemu}
OUT=${OUT:-$top/build/series}

die() { echo "series: $*" >&2; exit 1; }

# The first commit of each part, by subject
LOCAL_FIRST='pc-bios: build from source trees without prebuilt firmware'
FIXES_FIRST='physmem: fix the error paths of guest_memfd RAM blocks'
BACKEND_FIRST='physmem: take the size of an unseekable file from fstat'
INPLACE_FIRST='confidential-guest-support: add in-place conversion and a launch phase'

commit_of() {
    c=$(git -C "$SRC" log --format=%H --fixed-strings --grep="$1" base..gmem |
        tail -1)
    [ -n "$c" ] || die "no commit \"$1\" in base..gmem"
    echo "$c"
}
local_c=$(commit_of "$LOCAL_FIRST")
fixes_c=$(commit_of "$FIXES_FIRST")
backend_c=$(commit_of "$BACKEND_FIRST")
inplace_c=$(commit_of "$INPLACE_FIRST")
[ "$(git -C "$SRC" rev-parse "$fixes_c^")" = "$local_c" ] ||
    die "the fixes must follow \"$LOCAL_FIRST\" directly"

# posting DIR PREFIX FROM TO SUBJECT BLURB-FILE
posting() {
    dir=$OUT/$1
    git -C "$SRC" format-patch -q --zero-commit --cover-letter \
        --subject-prefix="$2" -o "$dir" "$3..$4"
    cover=$dir/0000-cover-letter.patch
    sed -i "s|\*\*\* SUBJECT HERE \*\*\*|$5|" "$cover"
    awk -v blurb="$6" '
        /\*\*\* BLURB HERE \*\*\*/ { while ((getline l < blurb) > 0) print l; next }
        { print }' "$cover" >"$cover.new"
    mv "$cover.new" "$cover"
    echo "series: $1: $(ls "$dir" | grep -vc '^0000-cover-letter') patches [$2]"
}

rm -rf "$OUT"
mkdir -p "$OUT"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

cat >"$tmp/1" <<'EOF'
Three fixes found while backing guest RAM with a guest_memfd mapped by
QEMU: the error paths of RAM blocks with a guest_memfd leaked it and the
discard requirement, a KVM_HC_MAP_GPA_RANGE that could not be met
stopped the VM instead of returning an error to the guest, and turning
on the dirty log (calc-dirty-rate) aborted a VM with guest_memfd memory,
as KVM refuses to log memory slots bound to a guest_memfd.
EOF
cat >"$tmp/2" <<'EOF'
Linux 6.18 lets QEMU map a guest_memfd (GUEST_MEMFD_FLAG_MMAP) and have
it start shared (GUEST_MEMFD_FLAG_INIT_SHARED), so that guest RAM can be
one guest_memfd for an ordinary VM.  This series adds
memory-backend-guest-memfd for that: RAM, NUMA nodes and DIMMs in a
guest_memfd (whose size QEMU takes from fstat(), as it cannot seek),
bound to memory slots without VM memory attributes, dirty
logging through QEMU's mapping, preallocation, and refusals with a
reason where the host or the set-up cannot work (no KVM, an old kernel,
share=off, postcopy, virtio-mem), with its document and its qtests
(tests/qtest/guest-memfd-test, guest-memfd-migration-test).

Applies on top of the fixes series.
EOF
cat >"$tmp/3" <<'EOF'
RFC: the guest_memfd in-place conversion series for KVM (v8, "KVM:
guest_memfd: In-place conversion support") lets shared and private
memory be the same pages of one guest_memfd, converted with an ioctl on
the guest_memfd.  The kernel interface is not merged: capability numbers
moved with every revision, and everything here that rests on it is
marked unstable.

This series extends RamBlockAttributes (notification per run of pages,
a constant-time count, undo, discard in two steps, holds for mapped
memory) to stay the one shared/private state of guest_memfd RAM, works
out from the kernel what it can do (capabilities per revision, confirmed
by converting a scratch page), converts guest RAM in
place for guest requests and QEMU's own (content requests ZERO/PRESERVE,
EAGAIN retries, listeners in order), keeps host accesses away from
private memory and memory that devices map shared, launches SEV-SNP and
TDX guests in place, adds sw-protected-guest for
KVM_X86_SW_PROTECTED_VM, and reports it all in query-kvm-guest-memfd.
Tests run against a model of the kernel that follows the posted series,
and against a kernel carrying it.  The tests and the documentation of
conversion come after the patches that convert (the engine, its report,
guest requests, host accesses, device mappings), those of the SEV-SNP and
TDX launch after the launch patches.

Applies on top of the memory-backend-guest-memfd series.
EOF
posting 1-fixes PATCH "$local_c" "$(git -C "$SRC" rev-parse "$backend_c^")" \
    'guest_memfd and KVM_HC_MAP_GPA_RANGE fixes' "$tmp/1"
posting 2-backend PATCH "$(git -C "$SRC" rev-parse "$backend_c^")" \
    "$(git -C "$SRC" rev-parse "$inplace_c^")" \
    'memory-backend-guest-memfd: guest RAM in a mapped guest_memfd' "$tmp/2"
posting 3-in-place 'RFC PATCH' "$(git -C "$SRC" rev-parse "$inplace_c^")" \
    gmem 'guest_memfd in-place shared/private conversion' "$tmp/3"
echo "series: not posted: $LOCAL_FIRST (this repository's build)"

bad=0
for p in "$OUT"/*/[0-9]*.patch; do
    case $p in *0000-cover-letter.patch) continue ;; esac
    res=$(cd "$SRC" && perl scripts/checkpatch.pl "$p" 2>&1 || true)
    summary=$(echo "$res" | sed -n 's/^total: /total: /p' | tail -1)
    echo "series: ${p#"$OUT"/}: ${summary:-no result}"
    case $summary in
    "total: 0 errors, 0 warnings"*) ;;
    *) echo "$res" | grep -E -A4 '^(ERROR|WARNING)' | head -60; bad=1 ;;
    esac
done
[ $bad -eq 0 ] && echo "series: checkpatch clean"
exit $bad
