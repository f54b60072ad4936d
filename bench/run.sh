#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# All benchmarks; each prints ratios measured side by side in one run.
set -e
OBJ=$(cd "$1" && pwd)
for b in "$(dirname "$0")"/*.py; do
    /usr/bin/python3 "$b" "$OBJ"
done
