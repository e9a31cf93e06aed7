#!/usr/bin/env python3
"""Run a Python snippet in a fresh sandbox and print its output.

    PYTHONPATH=clients/python python3 run_python_snippet.py
"""
import sandpool

SNIPPET = """
import platform, sys
print("hello from", platform.python_implementation(), sys.version.split()[0])
print(sum(i * i for i in range(10)))
"""

# One shot: a sandbox from the pool, one command, destroyed afterwards.
result = sandpool.run(["python3", "-c", SNIPPET], timeout=10)
if result.ok:
    print(result.stdout, end="")
else:
    print("failed (exit %s, signal %s):\n%s" % (result.exit_code, result.signal, result.stderr))
