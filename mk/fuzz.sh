#!/bin/bash
# Build the libFuzzer harness of the guest_memfd conversion engine with
# clang (ASan, UBSan) against build/obj's libqemuutil.a, and run it.
#   mk/fuzz.sh build          build build/fuzz/fuzz-kvm-gmem-convert
#   mk/fuzz.sh smoke [SECS]   run it for SECS seconds (default 60)
#   mk/fuzz.sh campaign [N]   run N executions (default 10^7), then the
#                             SMP conversion stress qtest for long
#                             (GMEM_STRESS_ROUNDS requests per vCPU,
#                             default 200000)
# Prints the executions and crashes; exits 1 on a crash or a failure.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
Q=$top/build/qemu
O=$top/build/obj
F=$top/build/fuzz
BIN=$F/fuzz-kvm-gmem-convert

build() {
    mkdir -p "$F/corpus"
    if ! command -v clang >/dev/null; then
        echo "fuzz: clang is not installed: run make setup" >&2
        exit 1
    fi
    # shellcheck disable=SC2046
    clang -g -O1 -fsanitize=fuzzer,address,undefined \
        -fno-sanitize-recover=undefined -D_GNU_SOURCE \
        -D_FILE_OFFSET_BITS=64 -std=gnu11 -Wall -Werror \
        -iquote "$O" -iquote "$Q" -iquote "$Q/include" \
        -iquote "$Q/tests/unit" -iquote "$Q/host/include/x86_64" \
        -iquote "$Q/host/include/generic" -isystem "$Q/linux-headers" \
        $(pkg-config --cflags glib-2.0) \
        "$Q/tests/unit/fuzz-kvm-gmem-convert.c" \
        "$Q/accel/kvm/kvm-gmem-convert.c" "$Q/accel/kvm/kvm-gmem-caps.c" \
        "$Q/system/ram-block-attributes.c" \
        "$Q/tests/unit/ram-discard-manager-stubs.c" \
        "$O"/libqom.a.p/*.o "$O"/libevent-loop-base.a.p/*.o \
        -Wl,--start-group "$O/libqemuutil.a" \
        -Wl,--end-group \
        $(pkg-config --libs glib-2.0) -lnuma -lm -pthread -o "$BIN"
}

run() {
    local log=$F/run.log
    rm -f "$F"/crash-* "$F"/leak-* "$F"/timeout-*
    set +e
    (cd "$F" && "$BIN" -print_final_stats=1 "$@" corpus) >"$log" 2>&1
    local rc=$?
    set -e
    local execs crashes
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    crashes=$(find "$F" -maxdepth 1 -name 'crash-*' -o -maxdepth 1 \
              -name 'leak-*' -o -maxdepth 1 -name 'timeout-*' | wc -l)
    echo "fuzz: ${execs:-0} executions, $crashes crashes"
    if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
        grep -E 'ERROR|SUMMARY|assert' "$log" | head -20
        echo "fuzz: reproduce with $BIN $(ls "$F"/crash-* 2>/dev/null | head -1)"
        exit 1
    fi
}

case "${1:-smoke}" in
build) build ;;
smoke) build; run -max_total_time="${2:-60}" ;;
campaign)
    build
    run -runs="${2:-10000000}"
    rounds=${GMEM_STRESS_ROUNDS:-200000}
    echo "fuzz: SMP conversion stress, 4 vCPUs x $rounds requests"
    set +e
    (cd "$O" && GMEM_STRESS_ROUNDS=$rounds \
        QTEST_QEMU_BINARY=./qemu-system-x86_64 \
        tests/qtest/guest-memfd-test --tap -p /x86_64/guest-memfd/convert-smp) \
        >"$F/stress.log" 2>&1
    rc=$?
    set -e
    grep -E '^(ok|not ok)' "$F/stress.log" || true
    if [ $rc -ne 0 ] || ! grep -q '^ok ' "$F/stress.log"; then
        tail -20 "$F/stress.log"
        exit 1
    fi ;;
*) echo "usage: $0 build|smoke [SECS]|campaign [N]" >&2; exit 2 ;;
esac
