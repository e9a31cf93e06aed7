#!/usr/bin/env python3
"""Stream a long command's output line by line, as it is written.

    PYTHONPATH=clients/python python3 stream_lines.py
"""
import time

from sandpool import Sandbox

CMD = "for i in 1 2 3 4 5; do echo line $i; sleep 0.2; done; echo done >&2"

t0 = time.monotonic()
with Sandbox() as sb:
    # Events come as the command writes; chunks are not lines, so join them.
    partial = {"stdout": "", "stderr": ""}
    with sb.stream(CMD, timeout=30) as stream:
        for ev in stream:
            if ev.type in ("stdout", "stderr"):
                buf = partial[ev.type] + ev.data
                *lines, partial[ev.type] = buf.split("\n")
                for line in lines:
                    print("%5.2fs %s: %s" % (time.monotonic() - t0, ev.type, line))
    print("exit code", stream.result.exit_code)

    # The same with callbacks: run() returns the whole result at the end.
    r = sb.run(CMD, on_stdout=lambda d: print("got", repr(d)))
    print("again:", r.exit_code, len(r.stdout.splitlines()), "lines")
