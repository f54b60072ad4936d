#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# All tests: this project's qtests and unit tests, the upstream suites that
# touch memory backends, and checkpatch over the series.  Prints one
# summary line "check: N passed, N failed, N skipped" and fails if any
# test failed, or if a KVM test skipped although /dev/kvm is usable
# (other than for a kernel capability it found missing).
set -u

OBJ=$(cd "$1" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
logs=$OBJ/check-logs
mkdir -p "$logs"
rm -f "$logs"/*

# Our suites, run directly for their TAP output; upstream ones via meson.
OURS="qtest-x86_64/guest-memfd-test qtest-x86_64/guest-memfd-migration-test
    qtest-x86_64/guest-memfd-private-test qtest-x86_64/guest-memfd-convert-test
    qtest-x86_64/guest-memfd-launch-test qtest-x86_64/guest-memfd-refuse-test"
UPSTREAM="qtest-x86_64/qom-test qtest-x86_64/numa-test
    qtest-x86_64/qmp-cmd-test qtest-x86_64/test-hmp qtest-x86_64/qmp-test
    qtest-x86_64/device-introspect-test qtest-x86_64/ivshmem-test
    qtest-x86_64/qos-test"
UPSTREAM=${CHECK_UPSTREAM-$UPSTREAM}

kvm_usable=no
[ -r /dev/kvm ] && [ -w /dev/kvm ] && kvm_usable=yes

passed=0 failed=0 skipped=0
fail_names=

count() {
    # $1: TAP log, $2: suite name
    p=$(grep -c '^ok ' "$1" | tr -d ' ')
    f=$(grep -c '^not ok ' "$1" | tr -d ' ')
    s=$(grep -c '^ok .*# SKIP' "$1" | tr -d ' ')
    p=$((p - s))
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + s))
    [ "$f" -gt 0 ] && fail_names="$fail_names $2"
    echo "check: $2: $p passed, $f failed, $s skipped"
}

# The build scripts' own refusals
log=$logs/test-mk.tap
"$top/mk/tests/test-mk.sh" >"$log" 2>&1
sed 's/^/    /' "$log"
count "$log" mk/tests/test-mk.sh

for t in $OURS; do
    name=${t#*/}
    log=$logs/$name.tap
    echo "check: running $t"
    start=$(date +%s)
    (cd "$OBJ" && QTEST_QEMU_BINARY=./qemu-system-x86_64 \
        QTEST_QEMU_IMG=./qemu-img "tests/qtest/$name" --tap -k) \
        >"$log" 2>&1
    rc=$?
    sed 's/^/    /' "$log"
    count "$log" "$t"
    echo "check: $t took $(( $(date +%s) - start )) s"
    if [ $rc -ne 0 ] && ! grep -q '^not ok ' "$log"; then
        failed=$((failed + 1))
        fail_names="$fail_names $t(exit-$rc)"
    fi
    # With /dev/kvm usable, a test may skip only for a kernel capability
    # it found missing itself ("the kernel lacks ...")
    if [ $kvm_usable = yes ] &&
       grep '^ok .*# SKIP' "$log" | grep -qv '# SKIP the kernel lacks '; then
        echo "check: FAIL: $t skipped tests although /dev/kvm is usable"
        failed=$((failed + 1))
        fail_names="$fail_names $t(skipped-with-kvm)"
    fi
done

# The KVM model against the transcript a real v8 kernel gave in the
# kernel lab: every ioctl's result must match (tests/kernel-lab/)
log=$logs/diff-model.tap
DIFF_MODEL_IGNORE_ACCESS=ioctl "$top/tests/kernel-lab/diff-model.sh" "$OBJ" \
    >"$log" 2>&1
rc=$?
count "$log" tests/kernel-lab/diff-model.sh
if [ $rc -ne 0 ] && ! grep -q '^not ok ' "$log"; then
    failed=$((failed + 1))
    fail_names="$fail_names diff-model(exit-$rc)"
    tail -5 "$log"
fi
if [ $kvm_usable = yes ] && grep -q '^1\.\.0 # SKIP' "$log"; then
    failed=$((failed + 1))
    fail_names="$fail_names diff-model(skipped-with-kvm)"
fi

# Unit tests of this project's pure logic
for u in $(cd "$OBJ" && find tests/unit -maxdepth 1 -type f -perm -u+x \
             \( -name 'test-kvm-gmem-*' -o -name 'test-gmem-*' \) | sort); do
    log=$logs/$(basename "$u").tap
    (cd "$OBJ" && "$u" --tap -k) >"$log" 2>&1
    count "$log" "$u"
done

if [ -n "$UPSTREAM" ]; then
    echo "check: running upstream suites: $(echo $UPSTREAM)"
    start=$(date +%s)
    # shellcheck disable=SC2086
    (cd "$OBJ" && meson test --no-rebuild --print-errorlogs $UPSTREAM) \
        >"$logs/upstream.log" 2>&1
    grep -E '^ *[0-9]+/[0-9]+ ' "$logs/upstream.log" | sed 's/^/    /'
    ok=$(sed -n 's/^Ok: *\([0-9]*\).*/\1/p' "$logs/upstream.log")
    sub=$(sed -n 's/.* OK .* \([0-9]*\) subtests passed.*/\1/p' \
          "$logs/upstream.log" | awk '{ n += $1 } END { print n + 0 }')
    bad=$(sed -n 's/^Fail: *\([0-9]*\).*/\1/p' "$logs/upstream.log")
    to=$(sed -n 's/^Timeout: *\([0-9]*\).*/\1/p' "$logs/upstream.log")
    sk=$(sed -n 's/^Skipped: *\([0-9]*\).*/\1/p' "$logs/upstream.log")
    passed=$((passed + sub))
    failed=$((failed + ${bad:-0} + ${to:-0}))
    skipped=$((skipped + ${sk:-0}))
    if [ -z "$ok" ] || [ $((${bad:-0} + ${to:-0})) -gt 0 ]; then
        [ -n "$ok" ] || failed=$((failed + 1))
        fail_names="$fail_names upstream"
        tail -40 "$logs/upstream.log"
    fi
    echo "check: upstream suites took $(( $(date +%s) - start )) s"
fi

# libvirt with the libvirt/ series: its meson suites and a real virtqemud
# (make check passes LIBVIRT_OBJ)
if [ -n "${LIBVIRT_OBJ:-}" ]; then
    "$top/mk/libvirt-check.sh" "$OBJ" "$LIBVIRT_OBJ" >"$logs/libvirt.log" 2>&1
    grep -v '^libvirt-check: ' "$logs/libvirt.log"
    lv=$(sed -n 's/^libvirt-check: \([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped$/\1 \2 \3/p' \
         "$logs/libvirt.log")
    [ -n "$lv" ] || lv="0 1 0"
    set -- $lv
    passed=$((passed + $1)) failed=$((failed + $2)) skipped=$((skipped + $3))
    [ "$2" -gt 0 ] && fail_names="$fail_names libvirt"
fi

# A short fuzzing run of the conversion engine (make fuzz for the long one)
log=$logs/fuzz.log
if "$top/mk/fuzz.sh" smoke "${FUZZ_SECS:-60}" >"$log" 2>&1; then
    passed=$((passed + 1))
    grep '^fuzz:' "$log" | sed 's/^/check: /'
else
    failed=$((failed + 1))
    fail_names="$fail_names fuzz"
    cat "$log"
fi

# The series is what would be posted: checkpatch must be clean.
if "$top/mk/series.sh" >"$logs/series.log" 2>&1; then
    passed=$((passed + 1))
    echo "check: checkpatch: clean"
else
    failed=$((failed + 1))
    fail_names="$fail_names checkpatch"
    tail -30 "$logs/series.log"
fi

[ -n "$fail_names" ] && echo "check: failed:$fail_names"
echo "check: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
