# SPDX-License-Identifier: GPL-2.0-or-later
"""A QMP client for the benchmarks: one line per message (QEMU's python
package, qemu.qmp, is not in the Debian source tree the build uses)."""

import json
import socket
import time


class Qmp:
    """Connected to the QMP server at the UNIX socket @path, with the
    capabilities negotiated; waits up to @timeout seconds for it"""

    def __init__(self, path, timeout=60):
        self.sock = socket.socket(socket.AF_UNIX)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock.connect(path)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.file = self.sock.makefile('rw')
        self.file.readline()                    # the greeting
        self.cmd('qmp_capabilities')

    def cmd(self, name, **args):
        """The response to @name: a dict with 'return' or 'error'; events
        before it are dropped"""
        msg = {'execute': name}
        if args:
            msg['arguments'] = args
        self.file.write(json.dumps(msg) + '\n')
        self.file.flush()
        while True:
            line = self.file.readline()
            if not line:
                raise EOFError('QMP: connection closed during ' + name)
            rsp = json.loads(line)
            if 'return' in rsp or 'error' in rsp:
                return rsp
