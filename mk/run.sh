#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# The main job; see mk/run.py.  RAM=, MACHINE= and GUEST_ARGS= tune it.
exec /usr/bin/python3 "$(dirname "$0")/run.py" "$@"
