#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""RamBlockAttributes with the series against RamBlockAttributes of 10.2.2.

The series makes RamBlockAttributes the one shared/private state of
guest_memfd RAM (run-merged notification, a constant-time count, rollback,
the in-place order).  This measures what that costs or saves in the
bookkeeping itself: QEMU's tests/bench/gmem-convert-bench, which uses only
the interface RamBlockAttributes had in 10.2.2, built twice with the same
compiler command lines: once as the build tree has it, once with
system/ram-block-attributes.c of the tag "base" (10.2.2) of the source
tree.  The two binaries run in alternating pairs (PAIRS, default 9; the
order flips each pair), each on a 1 TiB map with 200,000 random
conversions per range size, and this prints for each figure the median of
the per-pair ratios 10.2.2 / series: above 1, the series is faster.

Usage: bench/rba.py BUILD_DIR
"""

import os
import re
import shlex
import statistics
import subprocess
import sys

PAIRS = int(os.environ.get("PAIRS", "9"))
TARGET = "tests/bench/gmem-convert-bench"


def die(msg):
    print("bench: rba: " + msg, file=sys.stderr)
    sys.exit(1)


def build_base(obj):
    cmds = subprocess.run(["ninja", "-C", obj, "-t", "commands", TARGET],
                          check=True, capture_output=True,
                          text=True).stdout.splitlines()
    compile_cmd = next((c for c in cmds if " -c " in c and
                        c.endswith("system/ram-block-attributes.c")), None)
    link_cmd = next((c for c in cmds if "-o " + TARGET + " " in c), None)
    if not compile_cmd or not link_cmd:
        die("no build commands for " + TARGET + " in " + obj)
    argv = shlex.split(compile_cmd)
    src_file = argv[argv.index("-c") + 1]
    src = os.path.normpath(os.path.join(obj, src_file, "../.."))
    old_obj = argv[argv.index("-o") + 1]
    out = os.path.join(obj, "bench-rba-10.2.2")
    os.makedirs(os.path.join(out, "system"), exist_ok=True)
    base = subprocess.run(["git", "-C", src, "show",
                           "base:system/ram-block-attributes.c"],
                          capture_output=True, text=True)
    if base.returncode:
        die(src + " is not a git tree with the tag base (10.2.2), which "
            "make prepare makes: " + base.stderr.strip())
    with open(os.path.join(out, "system/ram-block-attributes.c"), "w") as f:
        f.write(base.stdout)
    # its "trace.h", as in the source tree
    with open(os.path.join(src, "system/trace.h")) as f:
        trace_h = f.read()
    with open(os.path.join(out, "system/trace.h"), "w") as f:
        f.write(trace_h)
    new_o = os.path.join(out, "ram-block-attributes.o")
    argv[argv.index("-c") + 1] = os.path.join(out,
                                              "system/ram-block-attributes.c")
    argv[argv.index("-o") + 1] = new_o
    for flag in ("-MQ", "-MF"):
        if flag in argv:
            i = argv.index(flag)
            del argv[i:i + 2]
    subprocess.run(argv, cwd=obj, check=True)
    largv = shlex.split(link_cmd)
    largv[largv.index("-o") + 1] = os.path.join(out, "gmem-convert-bench")
    largv[largv.index(old_obj)] = new_o
    subprocess.run(largv, cwd=obj, check=True)
    return os.path.join(out, "gmem-convert-bench")


def run(binary):
    out = subprocess.run([binary], check=True, capture_output=True,
                         text=True).stdout
    res = {}
    for line in out.splitlines():
        case, what, secs, notes = line.split()
        res[(case, what)] = (float(secs), int(notes))
    return res


def main():
    if len(sys.argv) != 2:
        die("usage: rba.py BUILD_DIR")
    obj = os.path.abspath(sys.argv[1])
    new = os.path.join(obj, TARGET)
    subprocess.run(["ninja", "-C", obj, TARGET], check=True,
                   capture_output=True)
    old = build_base(obj)
    ratios, times = {}, {}
    for p in range(PAIRS):
        order = [("10.2.2", old), ("series", new)]
        if p % 2:
            order.reverse()
        got = {name: run(b) for name, b in order}
        for key in got["series"]:
            o, n = got["10.2.2"][key], got["series"][key]
            ratios.setdefault(key, []).append(o[0] / max(n[0], 1e-9))
            times.setdefault(key, []).append((o[0], n[0], o[1], n[1]))
    print("bench: RamBlockAttributes, 10.2.2 / series, median of %d "
          "alternating pairs (1 TiB map, 200,000 conversions per range "
          "size; above 1: the series is faster)" % PAIRS)
    for key, rs in ratios.items():
        t = times[key]
        o = statistics.median(x[0] for x in t)
        n = statistics.median(x[1] for x in t)
        notes = "" if key[1] == "replay" else \
            "  notifications %d / %d" % (t[0][2], t[0][3])
        print("bench: rba %-14s %-6s 10.2.2 %8.1f ms  series %8.1f ms  "
              "ratio %.2f%s" % (key[0], key[1], o * 1e3, n * 1e3,
                                statistics.median(rs), notes))
    replay = statistics.median(x[1] for x in times[("mixed+syscall",
                                                    "replay")])
    print("bench: rba replay of all shared memory to a new listener that "
          "makes a system call per run: %.1f ms (goal <= 50 ms: %s)" %
          (replay * 1e3, "meets" if replay <= 0.05 else "MISSES"))


if __name__ == "__main__":
    main()
