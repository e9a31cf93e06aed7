#!/usr/bin/env python3
"""Write a file into a sandbox, run it, read the file it produced.

    PYTHONPATH=clients/python python3 write_run_read.py
"""
import json

from sandpool import Sandbox

SCRIPT = """
import json
with open("/home/sandbox/input.json") as f:
    numbers = json.load(f)["numbers"]
with open("/home/sandbox/output.json", "w") as f:
    json.dump({"sum": sum(numbers), "max": max(numbers)}, f)
print("processed", len(numbers), "numbers")
"""

# The session (and everything in its sandbox) ends when the with block
# does, also when an exception leaves it.
with Sandbox() as sb:
    sb.write_file("/home/sandbox/job.py", SCRIPT)
    sb.write_file("/home/sandbox/input.json", json.dumps({"numbers": [3, 1, 4, 1, 5, 9, 2, 6]}))
    run = sb.run(["python3", "job.py"], cwd="/home/sandbox", check=True)
    print(run.stdout, end="")
    print(json.loads(sb.read_file("/home/sandbox/output.json")))
    print([e.name for e in sb.list_dir("/home/sandbox")])
