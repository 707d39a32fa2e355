"""Child processes bound to their parent: they die with it, even when it is killed with SIGKILL.

Used for the embedded broker. On Linux the child is started with prctl(PR_SET_PDEATHSIG), which the
kernel ties to the *thread* that forked it: `popen_bound` therefore forks from the main thread or
from a daemon thread that lives as long as the process. `terminate_group` stops a child's process
group.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import ctypes.util
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading

_PR_SET_PDEATHSIG = 1


def pdeathsig_preexec(sig: int = signal.SIGKILL):
    """A preexec_fn that asks the kernel to send `sig` to the child when its parent thread dies.

    Everything that could allocate or import (loading libc, building the ctypes function) happens
    here, before the fork; the returned function only calls prctl and getppid. Returns None where
    prctl does not exist (non-Linux).
    """
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    prctl = libc.prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    parent = os.getpid()

    def preexec() -> None:
        if prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        # The parent may have died between fork and prctl: then nobody would ever send the signal.
        if os.getppid() != parent:
            os.kill(os.getpid(), sig)

    return preexec


class _Spawner(threading.Thread):
    """A daemon thread that lives as long as the process and runs the Popen calls made off the main
    thread, so PR_SET_PDEATHSIG is tied to a thread that only ends with the process."""

    def __init__(self) -> None:
        super().__init__(name="parcours-broker-spawner", daemon=True)
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()

    def run(self) -> None:
        while True:
            fn, future = self._jobs.get()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except BaseException as exc:  # handed to the caller
                    future.set_exception(exc)

    def call(self, fn):
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._jobs.put((fn, future))
        return future.result()


_spawner: _Spawner | None = None
_spawner_lock = threading.Lock()


def popen_bound(argv: list[str], **kwargs) -> subprocess.Popen:
    """subprocess.Popen from a thread that lives as long as the process (see PR_SET_PDEATHSIG)."""
    global _spawner
    if threading.current_thread() is threading.main_thread():
        return subprocess.Popen(argv, **kwargs)
    with _spawner_lock:
        if _spawner is None:
            _spawner = _Spawner()
            _spawner.start()
    return _spawner.call(lambda: subprocess.Popen(argv, **kwargs))


def terminate_group(proc: subprocess.Popen, grace: float, workdir: str | None) -> None:
    """Stop the broker's process group (TERM, then KILL after `grace` seconds) and reap it.

    Module-level and free of references to the EmbeddedKafka object so that weakref.finalize can
    call it at exit or after garbage collection.
    """
    try:
        # not reaped yet, so its pid (= its process group id) cannot be reused
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    finally:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
