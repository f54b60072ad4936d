#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The libvirt side of 'make check': the libvirt build scripts' refusals
# (mk/tests/test-libvirt-mk.sh, TAP), libvirt's whole meson test suite
# (qemuxmlconftest, virschematest, domaincapstest, qemucapabilitiestest and
# the rest) in the patched build, then the real-daemon test
# (mk/libvirt-daemon-test.sh, TAP).  Its last line is
# "libvirt-check: N passed, N failed, N skipped" for mk/check.sh to add up;
# a meson test program counts as one test.  Fails if anything failed, or if
# the daemon test skipped although /dev/kvm is usable.
#
# Usage: mk/libvirt-check.sh QEMU_OBJ LIBVIRT_OBJ
set -u

QOBJ=$(cd "$1" && pwd)
LOBJ=$(cd "$2" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
logs=$LOBJ/check-logs
mkdir -p "$logs"
rm -f "$logs"/*

passed=0 failed=0 skipped=0

# The libvirt build scripts' refusals
log=$logs/test-libvirt-mk.tap
"$top/mk/tests/test-libvirt-mk.sh" >"$log" 2>&1
sed 's/^/    /' "$log"
p=$(grep -c '^ok ' "$log") f=$(grep -c '^not ok ' "$log")
[ $((p + f)) -eq "$(sed -n 's/^1\.\.//p' "$log")" ] || f=$((f + 1))
passed=$((passed + p)) failed=$((failed + f))
echo "check: mk/tests/test-libvirt-mk.sh: $p passed, $f failed, 0 skipped"

echo "check: running libvirt's meson test suite"
start=$(date +%s)
(cd "$LOBJ" && meson test --no-rebuild --print-errorlogs --num-processes 2) \
    >"$logs/meson.log" 2>&1
rc=$?
for t in qemuxmlconftest virschematest domaincapstest qemucapabilitiestest; do
    grep -E "^ *[0-9]+/[0-9]+ .*/ $t +" "$logs/meson.log" | sed 's/^ */    /'
done
num() { sed -n "s/^$1: *\([0-9]*\).*/\1/p" "$logs/meson.log"; }
ok=$(num Ok) bad=$(num Fail) to=$(num Timeout) up=$(num 'Unexpected Pass') sk=$(num Skipped)
passed=$((passed + ${ok:-0}))
failed=$((failed + ${bad:-0} + ${to:-0} + ${up:-0}))
skipped=$((skipped + ${sk:-0}))
if [ -z "$ok" ] || [ $rc -ne 0 ]; then
    [ -n "$ok" ] || failed=$((failed + 1))
    grep -E '^ *[0-9]+/[0-9]+ .*(FAIL|TIMEOUT|ERROR)' "$logs/meson.log" | sed 's/^ */    /'
    tail -40 "$logs/meson.log"
fi
echo "check: libvirt meson suite: ${ok:-0} passed, $(( ${bad:-0} + ${to:-0} + ${up:-0} )) failed, ${sk:-0} skipped, $(( $(date +%s) - start )) s"

echo "check: running mk/libvirt-daemon-test.sh (virtqemud + virsh, KVM)"
start=$(date +%s)
log=$logs/daemon-test.tap
"$top/mk/libvirt-daemon-test.sh" "$QOBJ" "$LOBJ" >"$log" 2>&1
rc=$?
sed 's/^/    /' "$log"
p=$(grep -c '^ok ' "$log")
f=$(grep -c '^not ok ' "$log")
s=$(grep -c '^ok .*# SKIP' "$log")
p=$((p - s))
plan=$(sed -n 's/^1\.\.\([0-9]*\)$/\1/p' "$log")
if [ $rc -ne 0 ] || [ $((p + f + s)) -ne "${plan:-0}" ]; then
    # a bail-out or a crash: what did not run failed
    missing=$(( ${plan:-1} - p - f - s ))
    [ $missing -gt 0 ] || missing=1
    [ $f -gt 0 ] && [ $rc -ne 0 ] && [ $((p + f + s)) -eq "${plan:-0}" ] && missing=0
    f=$((f + missing))
fi
if [ -r /dev/kvm ] && [ -w /dev/kvm ] && [ "$s" -gt 0 ]; then
    echo "check: FAIL: the libvirt daemon test skipped although /dev/kvm is usable"
    f=$((f + 1))
fi
passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
echo "check: libvirt daemon test: $p passed, $f failed, $s skipped, $(( $(date +%s) - start )) s"

echo "libvirt-check: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
