#!/bin/bash
# Build the libFuzzer harness of the guest_memfd conversion engine with
# clang (ASan, UBSan) in a QEMU build of its own (build/fuzz/obj,
# configured with --enable-fuzzing: meson target
# tests/unit/fuzz-kvm-gmem-convert), and run it.
#   mk/fuzz.sh build          configure build/fuzz/obj and build the harness
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
FO=$F/obj
TARGET=tests/unit/fuzz-kvm-gmem-convert
BIN=$FO/$TARGET

build() {
    mkdir -p "$F/corpus" "$FO"
    if ! command -v clang >/dev/null; then
        echo "fuzz: clang is not installed: run make setup" >&2
        exit 1
    fi
    if [ ! -f "$FO/build.ninja" ]; then
        local cc=clang cxx=clang++
        if command -v ccache >/dev/null; then
            cc="ccache clang" cxx="ccache clang++"
        fi
        (cd "$FO" && "$Q/configure" --cc="$cc" --cxx="$cxx" \
            --target-list=x86_64-softmmu --without-default-features \
            --enable-kvm --enable-fuzzing --enable-asan --enable-ubsan \
            --extra-cflags=-fno-sanitize-recover=undefined \
            --disable-docs --disable-rust --disable-download \
            --disable-install-blobs \
            --python=/usr/bin/python3) >"$F/configure.log" 2>&1 || {
            tail -20 "$F/configure.log"
            echo "fuzz: configuring $FO failed ($F/configure.log)" >&2
            exit 1
        }
    fi
    ninja -C "$FO" "$TARGET" >"$F/build.log" 2>&1 || {
        tail -20 "$F/build.log"
        echo "fuzz: building $TARGET failed ($F/build.log)" >&2
        exit 1
    }
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
        tests/qtest/guest-memfd-convert-test --tap -p /x86_64/guest-memfd/convert-smp) \
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
